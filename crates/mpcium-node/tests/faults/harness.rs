//! The process-level harness of the fault tests: a cluster of real `mpcium` node processes (the
//! binary this crate builds), each in its own directory laid out as an operator would (as
//! `mpcium-cli devnet` does: `identity/`, `peers.json`, `config.yaml`, `db/`), the store password
//! in a 0600 file passed with `--password-file` (never on the command line); a signing-result
//! collector that records every event per tx id; a publisher that retries until JetStream has
//! stored a request (with `Nats-Msg-Id` so a retry is not stored twice); and the network namespace
//! plumbing of the partition test.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull};
use ed25519_dalek::SigningKey;
use futures_util::StreamExt;
use mpcium_api::{SignTxMessage, SigningResultEvent, subjects};
use mpcium_identity::{
    KeyProtection, Peers, generate_node_identity, write_node_identity, write_private_file,
};
use rand_core::{OsRng, RngCore};

/// The node binary under test: this crate's `mpcium`, or `MPCIUM_NODE_BINARY` (e.g. a release
/// build).
pub fn node_binary() -> PathBuf {
    std::env::var_os("MPCIUM_NODE_BINARY")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_mpcium")), PathBuf::from)
}

/// One node process: its directory, health port, and the running child (if any).
pub struct NodeProcess {
    /// `node<i>`.
    pub name: String,
    /// Its working directory.
    pub dir: PathBuf,
    /// Where it serves `/health` (inside its network namespace, if any).
    pub health_port: u16,
    netns: Option<String>,
    child: Option<Child>,
}

impl NodeProcess {
    fn log_path(&self) -> PathBuf {
        self.dir.join("node.log")
    }

    fn log_len(&self) -> u64 {
        std::fs::metadata(self.log_path()).map(|m| m.len()).unwrap_or(0)
    }

    fn log_from(&self, offset: u64) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(self.log_path()) {
            let _ = f.seek(SeekFrom::Start(offset));
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// The last `lines` lines of its log (all incarnations).
    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.log_from(0);
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Start the process (in its namespace when it has one) and wait for its `[READY]` line;
    /// returns how long that took. Panics with the log tail if it exits or stays silent.
    pub async fn start(&mut self) -> Duration {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let offset = self.log_len();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).unwrap();
        let mut command = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns.as_str()]).arg(node_binary());
                c
            }
            None => Command::new(node_binary()),
        };
        command
            .args(["start", "-n", &self.name, "-c", "config.yaml", "--password-file", "store.password"])
            .current_dir(&self.dir)
            // The config file is all the node reads: no inherited MPCIUM_*/NATS_* overrides.
            .env_clear()
            .env("MPCIUM_LOG", "info,async_nats=info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let started = Instant::now();
        self.child = Some(command.spawn().unwrap());
        let deadline = started + Duration::from_secs(60);
        loop {
            if self.log_from(offset).contains(mpcium_node::daemon::READY_LINE) {
                return started.elapsed();
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("{} exited with {status} before it was ready:\n{}", self.name, self.log_tail(40));
            }
            assert!(Instant::now() < deadline, "{} not ready in 60 s:\n{}", self.name, self.log_tail(40));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `kill -9`: the node stops at once, as in a crash (its readiness is left to expire).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM (graceful: the node withdraws its readiness), then wait for it to exit.
    pub async fn terminate(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -TERM {} failed", child.id());
        let deadline = Instant::now() + Duration::from_secs(15);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} did not stop within 15 s of SIGTERM:\n{}", self.name, self.log_tail(30));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The length of its log now (an offset for [`wait_log_line`](Self::wait_log_line)).
    pub fn log_offset(&self) -> u64 {
        self.log_len()
    }

    /// Wait until its log holds `needle` after `offset`; returns how long that took.
    pub async fn wait_log_line(&self, offset: u64, needle: &str, limit: Duration) -> Duration {
        let started = Instant::now();
        while !self.log_from(offset).contains(needle) {
            assert!(
                started.elapsed() < limit,
                "{} logged no {needle:?} in {limit:?}:\n{}",
                self.name,
                self.log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        started.elapsed()
    }

    /// Whether the child is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Its `/health` JSON, if it answers (through `curl` inside its namespace when it has one).
    pub async fn health(&self) -> Option<String> {
        match &self.netns {
            None => http_get(self.health_port, "/health").await,
            Some(ns) => {
                let url = format!("http://127.0.0.1:{}/health", self.health_port);
                let ns = ns.clone();
                let out = tokio::task::spawn_blocking(move || {
                    Command::new("ip")
                        .args(["netns", "exec", ns.as_str(), "curl", "-s", "-m", "2", &url])
                        .output()
                })
                .await
                .ok()?
                .ok()?;
                out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
            }
        }
    }
}

/// A cluster of node processes sharing identities, a chain code and an initiator key.
pub struct ProcessCluster {
    /// The nodes, `node0` first.
    pub nodes: Vec<NodeProcess>,
    /// The initiator key requests are signed with.
    pub initiator: SigningKey,
    dir: Option<tempfile::TempDir>,
}

impl ProcessCluster {
    /// Lay out `netns.len()` nodes with threshold `t` for the server at `nats_url`; node `i` runs
    /// in network namespace `netns[i]` when given.
    pub fn prepare(t: usize, nats_url: &str, netns: &[Option<String>]) -> Self {
        let n = netns.len();
        let dir = tempfile::tempdir().unwrap();
        let initiator = SigningKey::generate(&mut OsRng);
        let mut chain_code = [0u8; 32];
        OsRng.fill_bytes(&mut chain_code);
        let peers = Peers::generate(n).unwrap();
        let names: Vec<String> = (0..n).map(|i| format!("node{i}")).collect();
        let identities: Vec<_> = names
            .iter()
            .map(|name| generate_node_identity(name, peers.node_id(name).unwrap()).unwrap())
            .collect();
        let mut nodes = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let node_dir = dir.path().join(name);
            mpcium_identity::create_private_dir(&node_dir).unwrap();
            peers.write(&node_dir.join("peers.json"), false).unwrap();
            let identity_dir = node_dir.join("identity");
            for (identity, key) in &identities {
                if &identity.node_name == name {
                    write_node_identity(&identity_dir, identity, key, KeyProtection::Plain, false).unwrap();
                } else {
                    let json = serde_json::to_string_pretty(identity).unwrap();
                    let path = mpcium_identity::node_identity_path(&identity_dir, &identity.node_name);
                    write_private_file(&path, json.as_bytes(), false).unwrap();
                }
            }
            let mut password = [0u8; 16];
            OsRng.fill_bytes(&mut password);
            write_private_file(&node_dir.join("store.password"), hex::encode(password).as_bytes(), false)
                .unwrap();
            let health_port = mpcium_testkit::free_port().unwrap();
            let config = format!(
                "environment: development\n\
                 db_path: \"./db\"\n\
                 backup_enabled: false\n\
                 mpc_threshold: {t}\n\
                 event_initiator_pubkey: \"{initiator}\"\n\
                 event_initiator_algorithm: ed25519\n\
                 chain_code: \"{chain}\"\n\
                 max_concurrent_keygen: 2\n\
                 max_concurrent_signing: 20\n\
                 nats:\n  url: \"{nats_url}\"\n\
                 healthcheck:\n  enabled: true\n  address: \"127.0.0.1:{health_port}\"\n\
                 node:\n  heartbeat_seconds: 1\n",
                initiator = hex::encode(initiator.verifying_key().as_bytes()),
                chain = hex::encode(chain_code),
            );
            write_private_file(&node_dir.join("config.yaml"), config.as_bytes(), false).unwrap();
            nodes.push(NodeProcess {
                name: name.clone(),
                dir: node_dir,
                health_port,
                netns: netns[i].clone(),
                child: None,
            });
        }
        Self { nodes, initiator, dir: Some(dir) }
    }

    /// Start every node (one after the other) and return how long each took to be ready.
    pub async fn start_all(&mut self) -> Vec<Duration> {
        let mut took = Vec::new();
        for node in &mut self.nodes {
            took.push(node.start().await);
        }
        took
    }

    /// Wait until node `i` reports NATS connected and exactly `ready` nodes ready; returns how
    /// long that took. Panics (with the node's log) after `limit`.
    pub async fn wait_peers_ready(&self, i: usize, ready: usize, limit: Duration) -> Duration {
        let started = Instant::now();
        let want = format!("\"peers_ready_count\":\"{ready}/{}\"", self.nodes.len());
        let mut last = None;
        while started.elapsed() < limit {
            last = self.nodes[i].health().await;
            if let Some(h) = &last
                && h.contains(&want)
                && h.contains("\"nats_connected\":true")
            {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "node{i} did not report {want} within {limit:?}; last /health: {last:?}\n{}",
            self.nodes[i].log_tail(40)
        );
    }

    /// Wait until every running node sees `ready` nodes ready.
    pub async fn wait_all_see(&self, ready: usize, limit: Duration) {
        for (i, node) in self.nodes.iter().enumerate() {
            if node.is_running() {
                self.wait_peers_ready(i, ready, limit).await;
            }
        }
    }

    /// Every node's log, for a failure message.
    pub fn logs(&self) -> String {
        self.nodes.iter().map(|n| format!("===== {} =====\n{}\n", n.name, n.log_tail(60))).collect()
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill9();
        }
        // MPCIUM_FAULTS_KEEP=1 keeps the nodes' directories (logs, stores) for a post-mortem.
        if std::env::var("MPCIUM_FAULTS_KEEP").is_ok_and(|v| v == "1")
            && let Some(dir) = self.dir.take()
        {
            eprintln!("[faults] node directories kept in {}", dir.keep().display());
        }
    }
}

/// A plain HTTP/1.1 GET on 127.0.0.1; `None` when nothing answers within 2 s.
pub async fn http_get(port: u16, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let get = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.ok()?;
        Some(out)
    };
    tokio::time::timeout(Duration::from_secs(2), get).await.ok().flatten()
}

/// One signing request of a load, and what its result must verify against.
#[derive(Clone)]
pub struct LoadRequest {
    /// The signed request.
    pub msg: SignTxMessage,
    /// ECDSA (a 32-byte digest) or EdDSA (the message itself).
    pub ecdsa: bool,
}

/// `count` requests on `wallet`, every third one ECDSA (the rest EdDSA, which is much cheaper).
pub fn signing_load(
    client: &super::common::WireClient,
    wallet: &str,
    prefix: &str,
    count: usize,
) -> Vec<LoadRequest> {
    (0..count)
        .map(|i| {
            let ecdsa = i % 3 == 0;
            let tx_id = format!("{prefix}-{i}");
            let msg = if ecdsa {
                let digest: [u8; 32] = sha2_digest(tx_id.as_bytes());
                client.sign_msg("secp256k1", wallet, &tx_id, &digest, None)
            } else {
                client.sign_msg("ed25519", wallet, &tx_id, format!("message {tx_id}").as_bytes(), None)
            };
            LoadRequest { msg, ecdsa }
        })
        .collect()
}

fn sha2_digest(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// Publish a signing request until JetStream acknowledges it stored it, retrying through an
/// outage; `Nats-Msg-Id` (the tx id) keeps a retry whose first attempt was stored from being
/// stored twice. Returns the number of failed attempts.
pub async fn publish_until_stored(js: &jetstream::Context, client_id: &str, msg: &SignTxMessage) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut failures = 0;
    loop {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(subjects::CLIENT_ID_HEADER, client_id);
        headers.insert(subjects::MSG_ID_HEADER, msg.tx_id.as_str());
        let body = msg.to_json().into_bytes();
        let stored = match js
            .publish_with_headers(subjects::signing_request_subject(&msg.tx_id), headers, body.into())
            .await
        {
            Ok(ack) => tokio::time::timeout(Duration::from_secs(5), ack).await.is_ok_and(|a| a.is_ok()),
            Err(_) => false,
        };
        if stored {
            return failures;
        }
        failures += 1;
        assert!(Instant::now() < deadline, "{} could not be published for 60 s", msg.tx_id);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One result event as received.
#[derive(Clone)]
pub struct Received {
    /// When it arrived.
    pub at: Instant,
    /// The event.
    pub event: SigningResultEvent,
    /// Its exact bytes (to tell a redelivery of the same event from a different result).
    pub raw: Vec<u8>,
}

/// Every signing result of one ClientID, per tx id, pulled by a background task that survives a
/// NATS outage.
#[derive(Clone)]
pub struct Collector {
    by_tx: Arc<Mutex<HashMap<String, Vec<Received>>>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Collector {
    /// Start pulling from the client's durable signing-result consumer (the one the wire client
    /// created; nothing else may fetch from it while the collector runs).
    pub async fn start(js: &jetstream::Context, client_id: &str) -> Self {
        let id = mpcium_api::ClientId::parse(client_id).unwrap();
        let name = format!("mpc_signing_result_{client_id}");
        let consumer: jetstream::consumer::Consumer<pull::Config> = js
            .get_stream("mpc")
            .await
            .unwrap()
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: subjects::signing_result_filter(id.as_ref()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let by_tx: Arc<Mutex<HashMap<String, Vec<Received>>>> = Arc::default();
        let sink = by_tx.clone();
        let task = tokio::spawn(async move {
            loop {
                let batch =
                    consumer.fetch().max_messages(100).expires(Duration::from_millis(500)).messages().await;
                let Ok(mut batch) = batch else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                // A fetch whose server died never ends on its own: bound each wait.
                while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(3), batch.next()).await
                {
                    let raw = msg.payload.to_vec();
                    let event = SigningResultEvent::from_json(&raw).unwrap();
                    sink.lock().unwrap().entry(event.tx_id.clone()).or_default().push(Received {
                        at: Instant::now(),
                        event,
                        raw,
                    });
                    let _ = msg.ack().await;
                }
            }
        });
        Self { by_tx, task: Arc::new(task) }
    }

    /// How many of `tx_ids` have at least one result.
    pub fn answered(&self, tx_ids: &[String]) -> usize {
        let map = self.by_tx.lock().unwrap();
        tx_ids.iter().filter(|t| map.contains_key(*t)).count()
    }

    /// Wait until each of `tx_ids` has a result; returns how many have one at the end.
    pub async fn wait_answered(&self, tx_ids: &[String], limit: Duration) -> usize {
        let started = Instant::now();
        while self.answered(tx_ids) < tx_ids.len() && started.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.answered(tx_ids)
    }

    /// Sample how many of `tx_ids` are answered, every `period`, in the background.
    pub fn progress(&self, tx_ids: Vec<String>, period: Duration) -> Progress {
        let samples: Arc<Mutex<Vec<usize>>> = Arc::default();
        let this = self.clone();
        let sink = samples.clone();
        let task = tokio::spawn(async move {
            loop {
                sink.lock().unwrap().push(this.answered(&tx_ids));
                tokio::time::sleep(period).await;
            }
        });
        Progress { samples, task }
    }

    /// Everything received so far.
    pub fn snapshot(&self) -> HashMap<String, Vec<Received>> {
        self.by_tx.lock().unwrap().clone()
    }

    /// Wait for the result of one tx id.
    pub async fn result_of(&self, tx_id: &str, limit: Duration) -> SigningResultEvent {
        let started = Instant::now();
        loop {
            if let Some(r) = self.by_tx.lock().unwrap().get(tx_id).and_then(|v| v.first()) {
                return r.event.clone();
            }
            assert!(started.elapsed() < limit, "no result for {tx_id} within {limit:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

/// Answered counts sampled at a fixed period (a timeline of a load).
pub struct Progress {
    samples: Arc<Mutex<Vec<usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// Stop sampling; the samples so far.
    pub fn finish(self) -> Vec<usize> {
        self.task.abort();
        self.samples.lock().unwrap().clone()
    }
}

/// The outcome of a load: per-code counts, and the checks every fault test makes.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Successful signatures (each verified).
    pub successes: usize,
    /// Error events by code.
    pub errors: BTreeMap<String, usize>,
    /// Requests without any result.
    pub unanswered: Vec<String>,
    /// Requests with two results that differ.
    pub conflicting: Vec<String>,
    /// Identical events received more than once (client-side redelivery; harmless).
    pub redelivered: usize,
}

/// Check every request of a load against the collected results: each success verifies under the
/// wallet's keys (k256 for ECDSA, ed25519-dalek for EdDSA); each error carries a code.
pub fn check_load(
    load: &[LoadRequest],
    results: &HashMap<String, Vec<Received>>,
    ecdsa_pub: &[u8],
    eddsa_pub: &[u8],
) -> Outcome {
    let mut out = Outcome::default();
    for req in load {
        let Some(events) = results.get(&req.msg.tx_id) else {
            out.unanswered.push(req.msg.tx_id.clone());
            continue;
        };
        let first = &events[0];
        for other in &events[1..] {
            if other.raw == first.raw {
                out.redelivered += 1;
            } else {
                out.conflicting.push(req.msg.tx_id.clone());
            }
        }
        let ev = &first.event;
        if ev.result_type.as_str() == "success" {
            let tx = req.msg.tx.clone().unwrap();
            if req.ecdsa {
                super::common::ecdsa_verify(ecdsa_pub, &tx.try_into().unwrap(), ev);
            } else {
                super::common::eddsa_verify(eddsa_pub, &tx, ev);
            }
            out.successes += 1;
        } else {
            let code = ev.error_code.as_ref().map(|c| c.as_str().to_owned());
            let code = code.unwrap_or_else(|| panic!("error event without a code: {:?}", ev));
            *out.errors.entry(code).or_default() += 1;
        }
    }
    out
}

/// A network namespace joined to the host by a veth pair; removed (with the pair) on drop, also
/// when the test fails.
pub struct Netns {
    /// The namespace's name.
    pub name: String,
    /// The host end of the veth pair.
    pub host_if: String,
    /// The host end's address (what the namespace reaches the host on).
    pub host_ip: String,
    /// The namespace end's address.
    pub ns_ip: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

impl Netns {
    /// Create namespace `mpf<pid>` and a /30 veth link to it; `Err` when not permitted.
    pub fn create() -> Result<Self, String> {
        let pid = std::process::id();
        let name = format!("mpf{pid}");
        ip(&["netns", "add", &name])?;
        // A /30 named after the pid, so parallel runs do not collide.
        let net = format!("10.{}.{}", 200 + (pid / 250 % 50), pid % 250);
        let guard = Self {
            name: name.clone(),
            host_if: format!("mpf{pid}h"),
            host_ip: format!("{net}.1"),
            ns_ip: format!("{net}.2"),
        };
        let ns_if = format!("mpf{pid}n");
        let ns_ip = guard.ns_ip.clone();
        ip(&["link", "add", &guard.host_if, "type", "veth", "peer", "name", &ns_if])?;
        ip(&["link", "set", &ns_if, "netns", &name])?;
        ip(&["addr", "add", &format!("{}/30", guard.host_ip), "dev", &guard.host_if])?;
        ip(&["link", "set", &guard.host_if, "up"])?;
        ip(&["netns", "exec", &name, "ip", "addr", "add", &format!("{ns_ip}/30"), "dev", &ns_if])?;
        ip(&["netns", "exec", &name, "ip", "link", "set", &ns_if, "up"])?;
        ip(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"])?;
        Ok(guard)
    }

    /// Cut the cable: the host end goes down, packets to and from the namespace are lost (no
    /// reset reaches either side).
    pub fn cut(&self) {
        ip(&["link", "set", &self.host_if, "down"]).unwrap();
    }

    /// Plug it back in.
    pub fn heal(&self) {
        ip(&["link", "set", &self.host_if, "up"]).unwrap();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}
