//! The in-process cluster: a real nats-server process and `n` nodes started with
//! `mpcium_node::daemon::start` in the test process (real NATS client, real encrypted stores in a
//! temp dir), which can be stopped and restarted on the same store.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::{SigningKey, VerifyingKey};
use mpcium_node::daemon::{NodeParams, RunningNode, start};
use mpcium_store::{Store, StoreOptions};
use rand_core::{OsRng, RngCore};

use super::params::TestNode;
use super::wire::WireClient;
use crate::NatsServer;

/// The store password of every test node.
pub const STORE_PASSWORD: &[u8] = b"test-password-123";

/// A last change to a node's parameters before it starts (node index, params).
pub type Tweak = Arc<dyn Fn(usize, &mut NodeParams) + Send + Sync>;

/// How a test cluster is made.
pub struct ClusterSpec {
    /// Number of nodes (`node0`, `node1`, ...).
    pub n: usize,
    /// `mpc_threshold` of new keys.
    pub threshold: u32,
    /// Which node serves `/health` and `/metrics` (if any).
    pub health_on: Option<usize>,
    /// A last change to each node's parameters before it starts (index, params).
    pub tweak: Option<Tweak>,
    /// Start only these nodes at first (the others are configured peers, started later with
    /// [`Cluster::start_node`]); `None` starts all.
    pub start_only: Option<Vec<usize>>,
}

impl ClusterSpec {
    /// `n` nodes, threshold `t`, no health endpoint, no tweaks.
    pub fn new(n: usize, threshold: u32) -> Self {
        Self { n, threshold, health_on: None, tweak: None, start_only: None }
    }
}

/// A running test cluster.
pub struct Cluster {
    pub server: NatsServer,
    pub nodes: Vec<Option<RunningNode>>,
    pub ids: Vec<String>,
    pub keys: Vec<SigningKey>,
    pub initiator: SigningKey,
    pub chain_code: [u8; 32],
    pub health_port: u16,
    spec: ClusterSpec,
    dir: tempfile::TempDir,
}

/// Log to the test's captured output (shown when a test fails).
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info,mpcium_node=debug,async_nats=warn"))
        .with_test_writer()
        .try_init();
}

impl Cluster {
    /// Start a nats-server and every node, and wait until all see each other ready.
    pub async fn start(spec: ClusterSpec) -> Cluster {
        init_logging();
        let server = NatsServer::start().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut initiator_seed = [0u8; 32];
        OsRng.fill_bytes(&mut initiator_seed);
        let initiator = SigningKey::from_bytes(&initiator_seed);
        let mut chain_code = [0u8; 32];
        OsRng.fill_bytes(&mut chain_code);
        let ids: Vec<String> = (0..spec.n).map(|i| format!("node{i}")).collect();
        let keys: Vec<SigningKey> = (0..spec.n).map(|_| SigningKey::generate(&mut OsRng)).collect();
        let health_port = crate::free_port().unwrap();
        let mut c =
            Cluster { server, nodes: Vec::new(), ids, keys, initiator, chain_code, health_port, spec, dir };
        for i in 0..c.spec.n {
            let node = match &c.spec.start_only {
                Some(only) if !only.contains(&i) => None,
                _ => Some(c.start_node_process(i).await),
            };
            c.nodes.push(node);
        }
        c.wait_all_ready().await;
        c
    }

    /// Replace the last change made to each node's parameters (for nodes started from now on).
    pub fn set_tweak(&mut self, tweak: Tweak) {
        self.spec.tweak = Some(tweak);
    }

    /// The path of node `i`'s store.
    pub fn store_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node{i}.db"))
    }

    /// Open node `i`'s store (created the first time).
    pub fn open_store(&self, i: usize) -> Result<Store, mpcium_store::StoreError> {
        Store::open_or_create(self.store_path(i), STORE_PASSWORD, &StoreOptions::insecure_for_tests())
    }

    /// The parameters node `i` starts with (its store is opened, or created the first time).
    pub fn params(&self, i: usize) -> NodeParams {
        self.params_with(i, self.open_store(i).unwrap())
    }

    /// The parameters node `i` starts with, on an opened store.
    pub fn params_with(&self, i: usize, store: Store) -> NodeParams {
        let peers: HashMap<String, VerifyingKey> =
            self.ids.iter().cloned().zip(self.keys.iter().map(|k| k.verifying_key())).collect();
        let mut params = TestNode {
            id: &self.ids[i],
            name: &self.ids[i],
            identity: &self.keys[i],
            peers,
            store,
            threshold: self.spec.threshold,
            chain_code: self.chain_code,
            initiator: &self.initiator.verifying_key(),
            nats_url: self.server.url(),
        }
        .params();
        params.health_address =
            (self.spec.health_on == Some(i)).then(|| format!("127.0.0.1:{}", self.health_port));
        if let Some(tweak) = &self.spec.tweak {
            tweak(i, &mut params);
        }
        params
    }

    async fn start_node_process(&self, i: usize) -> RunningNode {
        start(self.params(i)).await.unwrap()
    }

    /// Stop node `i` gracefully (readiness withdrawn); its store stays on disk.
    pub async fn stop_node(&mut self, i: usize) {
        if let Some(node) = self.nodes[i].take() {
            node.shutdown().await;
        }
    }

    /// Start node `i` again on its store.
    pub async fn restart_node(&mut self, i: usize) {
        self.stop_node(i).await;
        self.start_node(i).await;
    }

    /// Start node `i` (not running) on its store.
    pub async fn start_node(&mut self, i: usize) {
        assert!(self.nodes[i].is_none(), "node{i} is running");
        // The store is single-writer: wait until the stopped node's tasks let go of it.
        let mut last = None;
        for _ in 0..400 {
            match self.open_store(i) {
                Ok(store) => {
                    self.nodes[i] = Some(start(self.params_with(i, store)).await.unwrap());
                    return;
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("node{i}'s store did not reopen: {last:?}");
    }

    /// Wait until every running node sees every running node ready.
    pub async fn wait_all_ready(&self) {
        let running: Vec<String> =
            self.ids.iter().zip(&self.nodes).filter(|(_, n)| n.is_some()).map(|(id, _)| id.clone()).collect();
        for n in self.nodes.iter().flatten() {
            let mut ready = Vec::new();
            for _ in 0..400 {
                ready = n.directory().ready();
                if running.iter().all(|id| ready.contains(id)) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            assert!(running.iter().all(|id| ready.contains(id)), "ready: {ready:?}, want {running:?}");
        }
    }

    /// A running node.
    pub fn node(&self, i: usize) -> &RunningNode {
        self.nodes[i].as_ref().expect("node running")
    }

    /// Wait until every running node sees exactly the running nodes ready (a stopped node's
    /// readiness withdrawn).
    pub async fn wait_ready_exactly(&self) {
        let mut want: Vec<String> =
            self.ids.iter().zip(&self.nodes).filter(|(_, n)| n.is_some()).map(|(id, _)| id.clone()).collect();
        want.sort();
        for n in self.nodes.iter().flatten() {
            let mut ready = Vec::new();
            for _ in 0..400 {
                ready = n.directory().ready();
                ready.sort();
                if ready == want {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            assert_eq!(ready, want, "ready peers");
        }
    }

    /// A wire client under `client_id`, with its own durable result consumers.
    pub async fn client(&self, client_id: &str) -> WireClient {
        WireClient::connect(&self.server.url(), client_id, self.initiator.clone()).await
    }
}

/// This process's resident set size in KiB (`VmRSS` of /proc/self/status; the nodes run in it).
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Every share, setup and key record of a node's store (key → stored bytes), to compare a
/// store before and after.
pub fn share_records(store: &Store) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    for prefix in ["ecdsa:", "eddsa:", "setup:"] {
        for key in store.keys_with_prefix(prefix).unwrap() {
            let record = mpcium_store::RecordKey::new(key.clone()).unwrap();
            out.insert(key, store.get(&record).unwrap().unwrap().to_vec());
        }
    }
    out
}

/// Open a stopped node's store once its last tasks have let go of it.
pub async fn open_stopped_store(c: &Cluster, i: usize) -> Store {
    for _ in 0..400 {
        if let Ok(s) = c.open_store(i) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    c.open_store(i).unwrap()
}

/// A cluster of `n` nodes with threshold `t` whose presignature pools keep `pool` entries for
/// `wallet`, each node serving `/metrics` on the port at its index.
pub fn pool_cluster(n: usize, t: u32, pool: usize, wallet: &str) -> (ClusterSpec, Vec<u16>) {
    let ports: Vec<u16> = (0..n).map(|_| crate::free_port().unwrap()).collect();
    let (tweak_ports, wallet) = (ports.clone(), wallet.to_owned());
    let spec = ClusterSpec {
        tweak: Some(Arc::new(move |i, p: &mut NodeParams| {
            p.service.presign =
                mpcium_node::presign::PresignSettings { pool_size: pool, wallets: vec![wallet.clone()] };
            p.health_address = Some(format!("127.0.0.1:{}", tweak_ports[i]));
        })),
        ..ClusterSpec::new(n, t)
    };
    (spec, ports)
}
