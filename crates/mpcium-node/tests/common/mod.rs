//! The shared harness of the in-process cluster tests: a real nats-server process, `n` nodes
//! started with `mpcium_node::daemon::start` (real NATS client, real encrypted stores in a temp
//! dir) that can be stopped and restarted on the same store, and wire clients that speak the
//! original's protocol byte for byte, each under its own `ClientID`.
//!
//! Each test binary uses a different part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use futures_util::StreamExt;
use mpcium_api::{
    KeygenResultEvent, ResharingMessage, ResharingResultEvent, SignTxMessage, SigningMode,
    SigningResultEvent, subjects,
};
use mpcium_node::daemon::{NodeParams, RunningNode, start};
use mpcium_node::service::ServiceConfig;
use mpcium_store::{Store, StoreOptions};
use mpcium_testkit::NatsServer;
use rand_core::{OsRng, RngCore};

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
        let health_port = mpcium_testkit::free_port().unwrap();
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
        let initiator_hex = hex::encode(self.initiator.verifying_key().to_bytes());
        let mut params = NodeParams {
            node_id: self.ids[i].clone(),
            node_name: self.ids[i].clone(),
            identity: self.keys[i].clone(),
            peers,
            nats_url: self.server.url(),
            nats_options: async_nats::ConnectOptions::new(),
            store: Arc::new(store),
            backup: None,
            heartbeat: Duration::from_millis(500),
            service: ServiceConfig {
                threshold: self.spec.threshold,
                chain_code: self.chain_code,
                initiator: mpcium_api::verify::PublicKey::parse(
                    mpcium_api::verify::Algorithm::Ed25519,
                    &initiator_hex,
                )
                .unwrap(),
                authorization: Default::default(),
                strict_requests: false,
                max_concurrent_keygen: 2,
                max_concurrent_signing: 20,
                max_request_bytes: 1024 * 1024,
                limits: Default::default(),
                session_timeout: Duration::from_secs(30),
                // Off unless a test turns it on: background presign sessions would blur what
                // other tests measure.
                presign: mpcium_node::presign::PresignSettings::default(),
                replicas: 1,
            },
            register_peers: Vec::new(),
            health_address: (self.spec.health_on == Some(i))
                .then(|| format!("127.0.0.1:{}", self.health_port)),
        };
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

/// A client that speaks the original's wire protocol (JetStream requests with a `ClientID` header,
/// results from per-client durable consumers).
pub struct WireClient {
    pub client_id: String,
    pub initiator: SigningKey,
    pub js: jetstream::Context,
    pub raw: async_nats::Client,
    keygen_results: jetstream::consumer::Consumer<pull::Config>,
    sign_results: jetstream::consumer::Consumer<pull::Config>,
    reshare_results: jetstream::consumer::Consumer<pull::Config>,
}

impl WireClient {
    /// Connect and create the result consumers as the original's client does.
    pub async fn connect(url: &str, client_id: &str, initiator: SigningKey) -> WireClient {
        let raw = async_nats::connect(url).await.unwrap();
        let js = jetstream::new(raw.clone());
        let results = js.get_stream("mpc").await.unwrap();
        let consumer = |name: String, filter: String| pull::Config {
            durable_name: Some(name),
            filter_subject: filter,
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        };
        let id = mpcium_api::ClientId::parse(client_id).unwrap();
        let make = |kind: &str, filter: String| {
            let name = format!("mpc_{kind}_result_{client_id}");
            let results = results.clone();
            let cfg = consumer(name.clone(), filter);
            async move { results.get_or_create_consumer(&name, cfg).await.unwrap() }
        };
        let keygen_results = make("keygen", subjects::keygen_result_filter(id.as_ref())).await;
        let sign_results = make("signing", subjects::signing_result_filter(id.as_ref())).await;
        let reshare_results = make("reshare", subjects::reshare_result_filter(id.as_ref())).await;
        WireClient {
            client_id: client_id.to_owned(),
            initiator,
            js,
            raw,
            keygen_results,
            sign_results,
            reshare_results,
        }
    }

    fn headers(&self) -> async_nats::HeaderMap {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(subjects::CLIENT_ID_HEADER, self.client_id.as_str());
        headers
    }

    /// Publish a request body into JetStream (waits for the stream's ack).
    pub async fn publish(&self, subject: String, body: Vec<u8>) {
        self.js.publish_with_headers(subject, self.headers(), body.into()).await.unwrap().await.unwrap();
    }

    /// Publish many requests (subject, body), waiting for the stream's acks in bulk.
    pub async fn publish_all(&self, requests: Vec<(String, Vec<u8>)>) {
        for chunk in requests.chunks(256) {
            let mut acks = Vec::with_capacity(chunk.len());
            for (subject, body) in chunk {
                let ack = self.js.publish_with_headers(subject.clone(), self.headers(), body.clone().into());
                acks.push(ack.await.unwrap());
            }
            for ack in acks {
                ack.await.unwrap();
            }
        }
    }

    /// The next result of a consumer, acked; panics after `wait`.
    pub async fn next_result_within(
        consumer: &jetstream::consumer::Consumer<pull::Config>,
        wait: Duration,
    ) -> Option<Vec<u8>> {
        let mut batch = consumer.fetch().max_messages(1).expires(wait).messages().await.unwrap();
        let msg = tokio::time::timeout(wait + Duration::from_secs(5), batch.next()).await.ok()??.unwrap();
        msg.ack().await.unwrap();
        Some(msg.payload.to_vec())
    }

    async fn next_result(consumer: &jetstream::consumer::Consumer<pull::Config>) -> Vec<u8> {
        Self::next_result_within(consumer, Duration::from_secs(90)).await.expect("a result")
    }

    /// Every result that arrives on `consumer` within `expires`, up to `max`, acked.
    async fn fetch_batch(
        consumer: &jetstream::consumer::Consumer<pull::Config>,
        max: usize,
        expires: Duration,
    ) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut batch = consumer.batch().max_messages(max).expires(expires).messages().await.unwrap();
        while let Ok(Some(msg)) = tokio::time::timeout(expires + Duration::from_secs(5), batch.next()).await {
            let msg = msg.unwrap();
            msg.ack().await.unwrap();
            out.push(msg.payload.to_vec());
        }
        out
    }

    /// Collect signing results by tx id until every id in `want` has one (or `wait` passes), then
    /// for `quiet` more (to catch duplicates and strays). Every result is returned, `want` or not.
    pub async fn collect_sign_results(
        &self,
        want: &[String],
        wait: Duration,
        quiet: Duration,
    ) -> HashMap<String, Vec<SigningResultEvent>> {
        Self::collect(&self.sign_results, want, wait, quiet, |body| {
            let ev = SigningResultEvent::from_json(body).unwrap();
            (ev.tx_id.clone(), ev)
        })
        .await
    }

    /// Collect keygen results by wallet id, as [`WireClient::collect_sign_results`] does.
    pub async fn collect_keygen_results(
        &self,
        want: &[String],
        wait: Duration,
        quiet: Duration,
    ) -> HashMap<String, Vec<KeygenResultEvent>> {
        Self::collect(&self.keygen_results, want, wait, quiet, |body| {
            let ev = KeygenResultEvent::from_json(body).unwrap();
            (ev.wallet_id.clone(), ev)
        })
        .await
    }

    /// The loop behind the collectors: results keyed by `decode`'s id.
    async fn collect<E>(
        consumer: &jetstream::consumer::Consumer<pull::Config>,
        want: &[String],
        wait: Duration,
        quiet: Duration,
        decode: impl Fn(&[u8]) -> (String, E),
    ) -> HashMap<String, Vec<E>> {
        let mut got: HashMap<String, Vec<E>> = HashMap::new();
        let deadline = tokio::time::Instant::now() + wait;
        let mut quiet_until = None;
        loop {
            let now = tokio::time::Instant::now();
            if quiet_until.is_some_and(|q| now >= q) || now >= deadline {
                break;
            }
            for body in Self::fetch_batch(consumer, 500, Duration::from_millis(300)).await {
                let (id, ev) = decode(&body);
                got.entry(id).or_default().push(ev);
            }
            if quiet_until.is_none() && want.iter().all(|t| got.contains_key(t)) {
                quiet_until = Some(tokio::time::Instant::now() + quiet);
            }
        }
        got
    }

    /// Publish a keygen request for `wallet` without waiting for its result.
    pub async fn send_keygen(&self, wallet: &str) {
        self.publish(subjects::keygen_request_subject(wallet), self.keygen_body(wallet)).await;
    }

    /// The next signing result for this client (any tx).
    pub async fn next_sign_result(&self) -> SigningResultEvent {
        SigningResultEvent::from_json(&Self::next_result(&self.sign_results).await).unwrap()
    }

    /// The next signing result, or `None` when none comes within `wait`.
    pub async fn try_next_sign_result(&self, wait: Duration) -> Option<SigningResultEvent> {
        let bytes = Self::next_result_within(&self.sign_results, wait).await?;
        Some(SigningResultEvent::from_json(&bytes).unwrap())
    }

    /// The next keygen result for this client.
    pub async fn next_keygen_result(&self) -> KeygenResultEvent {
        KeygenResultEvent::from_json(&Self::next_result(&self.keygen_results).await).unwrap()
    }

    /// The next keygen result, or `None` when none comes within `wait`.
    pub async fn try_next_keygen_result(&self, wait: Duration) -> Option<KeygenResultEvent> {
        let bytes = Self::next_result_within(&self.keygen_results, wait).await?;
        Some(KeygenResultEvent::from_json(&bytes).unwrap())
    }

    /// Send a raw keygen body for `wallet` and wait for its result.
    pub async fn keygen_raw(&self, wallet: &str, body: Vec<u8>) -> KeygenResultEvent {
        self.publish(subjects::keygen_request_subject(wallet), body).await;
        self.next_keygen_result().await
    }

    /// A signed keygen request body.
    pub fn keygen_body(&self, wallet: &str) -> Vec<u8> {
        let sig = self.initiator.sign(wallet.as_bytes()).to_bytes();
        let msg = mpcium_api::GenerateKeyMessage {
            wallet_id: wallet.into(),
            signature: Some(sig.to_vec()),
            authorizer_signatures: vec![],
        };
        msg.to_json().into_bytes()
    }

    /// Keygen of both keys of `wallet`.
    pub async fn keygen(&self, wallet: &str) -> KeygenResultEvent {
        self.keygen_raw(wallet, self.keygen_body(wallet)).await
    }

    /// A signing request signed by the initiator (compatible mode: path not covered).
    pub fn sign_msg(
        &self,
        key_type: &str,
        wallet: &str,
        tx_id: &str,
        tx: &[u8],
        path: Option<Vec<u32>>,
    ) -> SignTxMessage {
        self.sign_msg_mode(key_type, wallet, tx_id, tx, path, SigningMode::Compatible)
    }

    /// A signing request signed by the initiator in the given mode.
    pub fn sign_msg_mode(
        &self,
        key_type: &str,
        wallet: &str,
        tx_id: &str,
        tx: &[u8],
        path: Option<Vec<u32>>,
        mode: SigningMode,
    ) -> SignTxMessage {
        let mut msg = SignTxMessage {
            key_type: mpcium_api::KeyType::from_wire(key_type),
            wallet_id: wallet.into(),
            network_internal_code: "test".into(),
            tx_id: tx_id.into(),
            tx: Some(tx.to_vec()),
            signature: None,
            derivation_path: path,
            authorizer_signatures: vec![],
        };
        let raw = mpcium_api::canonical::sign_signed_bytes(&msg, mode);
        msg.signature = Some(self.initiator.sign(&raw).to_bytes().to_vec());
        msg
    }

    /// Publish a signing request without waiting for its result.
    pub async fn send_sign(&self, msg: &SignTxMessage) {
        self.publish(subjects::signing_request_subject(&msg.tx_id), msg.to_json().into_bytes()).await;
    }

    /// Publish a raw signing body for `tx_id` and wait for the next signing result.
    pub async fn sign_raw(&self, tx_id: &str, body: Vec<u8>) -> SigningResultEvent {
        self.publish(subjects::signing_request_subject(tx_id), body).await;
        self.next_sign_result().await
    }

    /// Sign and wait for the result.
    pub async fn sign(&self, msg: &SignTxMessage) -> SigningResultEvent {
        self.sign_raw(&msg.tx_id, msg.to_json().into_bytes()).await
    }

    /// Reshare `wallet`'s `key_type` key to `nodes` with threshold `t`, and wait for the result.
    pub async fn reshare(
        &self,
        key_type: &str,
        wallet: &str,
        session: &str,
        nodes: &[&str],
        t: i64,
    ) -> ResharingResultEvent {
        let body = self.reshare_body(key_type, wallet, session, nodes, t);
        self.raw.publish_with_headers("mpc:reshare", self.headers(), body.into()).await.unwrap();
        self.raw.flush().await.unwrap();
        ResharingResultEvent::from_json(&Self::next_result(&self.reshare_results).await).unwrap()
    }

    /// A signed reshare request body.
    pub fn reshare_body(
        &self,
        key_type: &str,
        wallet: &str,
        session: &str,
        nodes: &[&str],
        t: i64,
    ) -> Vec<u8> {
        let mut msg = ResharingMessage {
            session_id: session.into(),
            node_ids: Some(nodes.iter().map(|n| n.to_string()).collect()),
            new_threshold: t,
            key_type: mpcium_api::KeyType::from_wire(key_type),
            wallet_id: wallet.into(),
            signature: None,
            authorizer_signatures: vec![],
        };
        let raw = mpcium_api::canonical::reshare_signed_bytes(&msg);
        msg.signature = Some(self.initiator.sign(&raw).to_bytes().to_vec());
        msg.to_json().into_bytes()
    }
}

/// Check an ECDSA result against the 64-byte uncompressed public key (x‖y): low-S, valid, and
/// its recovery id recovers the key.
pub fn ecdsa_verify(pub_xy: &[u8], digest: &[u8; 32], ev: &SigningResultEvent) {
    use k256::ecdsa::signature::hazmat::PrehashVerifier;
    let mut sec1 = vec![4u8];
    sec1.extend_from_slice(pub_xy);
    let vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).unwrap();
    let r: [u8; 32] = ev.r.clone().unwrap().try_into().unwrap();
    let s: [u8; 32] = ev.s.clone().unwrap().try_into().unwrap();
    let sig = k256::ecdsa::Signature::from_scalars(r, s).unwrap();
    assert!(sig.normalize_s() == sig, "low-S");
    vk.verify_prehash(digest, &sig).unwrap();
    let recid = k256::ecdsa::RecoveryId::from_byte(ev.signature_recovery.clone().unwrap()[0]).unwrap();
    assert_eq!(k256::ecdsa::VerifyingKey::recover_from_prehash(digest, &sig, recid).unwrap(), vk);
}

/// Check an EdDSA result against the 32-byte public key with `verify_strict`.
pub fn eddsa_verify(pub_key: &[u8], message: &[u8], ev: &SigningResultEvent) {
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&pub_key.try_into().unwrap()).unwrap();
    let sig = ed25519_dalek::Signature::from_bytes(&ev.signature.clone().unwrap().try_into().unwrap());
    vk.verify_strict(message, &sig).unwrap();
}

/// The BIP32 child of a 64-byte secp256k1 public key, as x‖y.
pub fn ecdsa_child(pub_xy: &[u8], chain_code: &[u8; 32], path: &[u32]) -> Vec<u8> {
    use k256::elliptic_curve::sec1::ToSec1Point;
    let mut sec1 = vec![4u8];
    sec1.extend_from_slice(pub_xy);
    let master = k256::PublicKey::from_sec1_bytes(&sec1).unwrap();
    let (child, _) = mpcium_tss::ecdsa::derive_child(&master, chain_code, path).unwrap();
    child.to_sec1_point(false).as_bytes()[1..].to_vec()
}

/// This process's resident set size in KiB (`VmRSS` of /proc/self/status; the nodes run in it).
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A plain HTTP/1.1 GET on 127.0.0.1, returning the whole response.
pub async fn http_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// The value of an unlabelled metric in a `/metrics` text.
pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing in:\n{text}"))
}

/// The sum of an unlabelled metric over the nodes serving `/metrics` on `ports`.
pub async fn total(ports: &[u16], name: &str) -> u64 {
    let mut sum = 0;
    for &port in ports {
        sum += metric(&http_get(port, "/metrics").await, name);
    }
    sum
}

/// Wait until each node `i` of `nodes` (serving `/metrics` on `ports[i]`) owns `pool`
/// presignatures.
pub async fn wait_pools_full(ports: &[u16], nodes: &[usize], pool: usize) {
    for &i in nodes {
        let mut last = 0;
        for _ in 0..600 {
            last = metric(&http_get(ports[i], "/metrics").await, "mpcium_presign_pool_size");
            if last as usize >= pool {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(last as usize >= pool, "node{i} owns {last} presignatures, want {pool}");
    }
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
    let ports: Vec<u16> = (0..n).map(|_| mpcium_testkit::free_port().unwrap()).collect();
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
