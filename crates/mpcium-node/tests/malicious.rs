//! A malicious peer in a real 3-node cluster (feature `test-malice`): node2 runs the honest code
//! but its outbound protocol messages cheat in one of four ways. For each, an EdDSA signing
//! session that needs all three nodes (threshold 2) must end on every honest node naming node2
//! (seen in the client's error event and in each honest node's "session failed" log line), the
//! client must get exactly one answer (no silent retry), every node's stored shares must be
//! byte-for-byte what they were, and once node2 behaves again the next signatures (EdDSA and
//! ECDSA) must verify under the wallet's original public keys.
//!
//! The tests run one after another (a lock): they read one process-wide log capture, and four
//! clusters at once would only slow each other down on a small machine.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use mpcium_api::ErrorCode;
use mpcium_node::transport::Misbehaviour;
use mpcium_store::Store;
use mpcium_testkit::node::{Cluster, ClusterSpec, WireClient, ecdsa_verify, eddsa_verify};

const HONEST: [&str; 2] = ["node0", "node1"];
const CULPRIT: &str = "node2";
const WALLET: &str = "wallet-m";

/// Every log line of the process (all nodes of a test run in it).
static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Capture every log line (installed before the harness's own subscriber, which then stays out).
fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info,mpcium_node=debug,async_nats=warn"))
            .with_ansi(false)
            .with_writer(|| LogWriter)
            .init();
    });
}

fn log_text() -> String {
    String::from_utf8_lossy(&LOG.lock().unwrap()).into_owned()
}

/// The "session failed" lines logged since `mark` (a byte offset of the log), by node.
fn failures_since(mark: usize) -> BTreeMap<String, Vec<String>> {
    let text = log_text();
    let mut by_node: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text[mark.min(text.len())..].lines().filter(|l| l.contains("session failed")) {
        let node = line.split("node=").nth(1).and_then(|s| s.split_whitespace().next()).unwrap_or("?");
        by_node.entry(node.to_owned()).or_default().push(line.to_owned());
    }
    by_node
}

/// Every share, setup and key record of a node's store.
fn snapshot(store: &Store) -> BTreeMap<String, Vec<u8>> {
    mpcium_testkit::node::share_records(store)
}

/// A cluster of three nodes with threshold 2 (every signature needs node2; node2 never pulls a
/// request, so node0 or node1 coordinates), a wallet, and a handle on each node's store.
struct Setup {
    c: Cluster,
    w: WireClient,
    /// Each node's store, as its latest start opened it.
    stores: Arc<Mutex<Vec<Option<Arc<Store>>>>>,
    /// The session timeout nodes start with, in milliseconds.
    timeout_ms: Arc<AtomicU64>,
    ecdsa_pub: Vec<u8>,
    eddsa_pub: Vec<u8>,
}

async fn setup() -> Setup {
    capture_logs();
    let stores: Arc<Mutex<Vec<Option<Arc<Store>>>>> = Arc::new(Mutex::new(vec![None, None, None]));
    let timeout_ms = Arc::new(AtomicU64::new(30_000));
    let (seen, timeout) = (stores.clone(), timeout_ms.clone());
    let spec = ClusterSpec {
        tweak: Some(Arc::new(move |i, params| {
            params.service.session_timeout = Duration::from_millis(timeout.load(Ordering::SeqCst));
            // The culprit only takes part: these tests are about an honest coordinator's answer.
            // (A culprit that coordinates answers whatever it likes: THREAT-MODEL.md, insider.)
            params.service.pulls_requests = i != 2;
            seen.lock().unwrap()[i] = Some(params.store.clone());
        })),
        ..ClusterSpec::new(3, 2)
    };
    let c = Cluster::start(spec).await;
    let w = c.client("malice").await;
    let kg = w.keygen(WALLET).await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
    Setup {
        ecdsa_pub: kg.ecdsa_pub_key.unwrap().to_vec(),
        eddsa_pub: kg.eddsa_pub_key.unwrap().to_vec(),
        c,
        w,
        stores,
        timeout_ms,
    }
}

impl Setup {
    fn misbehave(&self, mode: Option<Misbehaviour>) {
        self.c.nodes[2].as_ref().unwrap().malice().set(mode);
    }

    fn snapshots(&self) -> Vec<BTreeMap<String, Vec<u8>>> {
        self.stores.lock().unwrap().iter().map(|s| snapshot(s.as_ref().unwrap())).collect()
    }

    /// Restart every node with a shorter session timeout (keygen needed the long one).
    async fn shorten_session_timeout(&mut self, timeout: Duration) {
        self.timeout_ms.store(timeout.as_millis() as u64, Ordering::SeqCst);
        for i in 0..3 {
            // Let go of the store so the node can reopen it (the restart hands us the new one).
            self.stores.lock().unwrap()[i] = None;
            self.c.restart_node(i).await;
        }
        self.c.wait_all_ready().await;
    }

    async fn sign_eddsa(&self, tx_id: &str) -> mpcium_api::SigningResultEvent {
        let ev = self.w.sign(&self.w.sign_msg("ed25519", WALLET, tx_id, tx_id.as_bytes(), None)).await;
        assert_eq!(ev.tx_id, tx_id, "{ev:?}");
        ev
    }

    async fn sign_eddsa_ok(&self, tx_id: &str) {
        let ev = self.sign_eddsa(tx_id).await;
        assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
        eddsa_verify(&self.eddsa_pub, tx_id.as_bytes(), &ev);
    }

    /// A session with node2 cheating: the client gets `code` naming node2, once; each honest
    /// node logged a failure of that session naming node2 and nobody else.
    async fn sign_fails_naming_node2(&self, tx_id: &str, code: ErrorCode, blame: &str) {
        let mark = LOG.lock().unwrap().len();
        let started = Instant::now();
        let ev = self.sign_eddsa(tx_id).await;
        eprintln!("{tx_id}: {:?} after {:?}: {}", ev.error_code, started.elapsed(), ev.error_reason);
        assert_eq!(ev.error_code, Some(code), "{ev:?}");
        let named = format!("{blame} [\"{CULPRIT}\"]");
        assert!(ev.error_reason.contains(&named), "the reason names node2 alone ({named}): {ev:?}");
        for honest in HONEST {
            assert!(!ev.error_reason.contains(&format!("\"{honest}\"")), "an honest node is blamed: {ev:?}");
        }
        // The honest nodes log their outcome as they finish, around the time the coordinator
        // answers; wait for both lines.
        let deadline = Instant::now() + Duration::from_secs(20);
        let failures = loop {
            let f = failures_since(mark);
            if HONEST.iter().all(|n| f.contains_key(*n)) || Instant::now() > deadline {
                break f;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        for honest in HONEST {
            let lines =
                failures.get(honest).unwrap_or_else(|| panic!("{honest} logged no failure: {failures:#?}"));
            for line in lines {
                assert!(
                    line.contains(&format!("culprits=[\"{CULPRIT}\"]")),
                    "{honest} blames someone else: {line}"
                );
            }
        }
        // Exactly one answer: nobody retried the session with the same peers behind our back.
        assert!(
            self.w.try_next_sign_result(Duration::from_secs(2)).await.is_none(),
            "a second result for {tx_id}"
        );
    }

    /// node2 behaves again: the next signatures verify under the original keys, and no share
    /// changed anywhere.
    async fn recovers(&self, before: &[BTreeMap<String, Vec<u8>>], tag: &str) {
        self.misbehave(None);
        self.sign_eddsa_ok(&format!("{tag}-after")).await;
        let digest = [0x42u8; 32];
        let ev =
            self.w.sign(&self.w.sign_msg("secp256k1", WALLET, &format!("{tag}-ecdsa"), &digest, None)).await;
        assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
        ecdsa_verify(&self.ecdsa_pub, &digest, &ev);
        let after = self.snapshots();
        for (i, (b, a)) in before.iter().zip(&after).enumerate() {
            assert!(b.keys().any(|k| k.starts_with("eddsa:")) && b.keys().any(|k| k.starts_with("ecdsa:")));
            assert_eq!(b, a, "node{i}'s stored records changed");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_corrupted_round_message_is_blamed_on_its_sender() {
    let _serial = SERIAL.lock().await;
    let s = setup().await;
    let before = s.snapshots();
    // EdDSA signing: message 0 is the nonce commitment, message 1 the signature share.
    s.misbehave(Some(Misbehaviour::CorruptRound { seq: 0 }));
    s.sign_fails_naming_node2("corrupt-commitment", ErrorCode::OperationAborted, "faulty nodes").await;
    s.misbehave(Some(Misbehaviour::CorruptRound { seq: 1 }));
    s.sign_fails_naming_node2("corrupt-share", ErrorCode::OperationAborted, "faulty nodes").await;
    s.recovers(&before, "corrupt").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_equivocating_broadcaster_is_blamed() {
    let _serial = SERIAL.lock().await;
    let s = setup().await;
    let before = s.snapshots();
    for (round, seq) in [("commitment", 0), ("share", 1)] {
        s.misbehave(Some(Misbehaviour::Equivocate { seq }));
        s.sign_fails_naming_node2(
            &format!("equivocate-{round}"),
            ErrorCode::OperationAborted,
            "faulty nodes",
        )
        .await;
    }
    s.recovers(&before, "equivocate").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_replayed_from_an_earlier_session_is_blamed() {
    let _serial = SERIAL.lock().await;
    let s = setup().await;
    let before = s.snapshots();
    // The first session with the switch on has nothing earlier to replay: node2 takes part
    // honestly and remembers its messages.
    s.misbehave(Some(Misbehaviour::ReplayOldSession));
    s.sign_eddsa_ok("replay-recorded").await;
    s.sign_fails_naming_node2("replay-next", ErrorCode::OperationAborted, "faulty nodes").await;
    s.recovers(&before, "replay").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_with_a_spoofed_sender_are_dropped_and_the_spoofer_is_named_missing() {
    let _serial = SERIAL.lock().await;
    // Forged messages are dropped, so the session can only time out: keep that short. The
    // client's answer comes after every try: 4 deliveries of 2 sessions each (a session that
    // times out with every member present runs once more), ~79 s at 8 s against the test
    // client's 90 s wait; at 5 s, ~55 s. Honest sessions here take well under a second.
    let mut s = setup().await;
    s.shorten_session_timeout(Duration::from_secs(5)).await;
    let before = s.snapshots();
    let mark = LOG.lock().unwrap().len();
    s.misbehave(Some(Misbehaviour::SpoofIdentity { as_node: "node0".into() }));
    s.sign_fails_naming_node2("spoofed", ErrorCode::SessionTimeout, "waiting for").await;
    let dropped = log_text()[mark..].matches("bad signature from node0").count();
    assert!(dropped >= 1, "the forged envelopes were dropped at the signature check");
    s.recovers(&before, "spoof").await;
}

/// dkls23's rule: a counterparty whose OT-extension data fails the consistency check is banned
/// for that key for good (each pass or fail leaks a bit of the honest node's OT secret). A
/// 3-node t=1 cluster with presignature pools: node2 flips the last byte of its first protocol
/// message of every session (in a DKLs23 presign or signature: its OT-extension data, the
/// consistency check's input). Both honest nodes ban it durably; no DKLs23 session with it runs
/// for that key afterwards (counted in the honest nodes' logs) while signing goes on with the
/// other two; the ban survives a restart; a reshare (fresh OT state) lifts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_peer_that_tampers_ot_messages_is_banned_for_that_key_until_a_reshare() {
    const W: &str = "wallet-ban";
    let _serial = SERIAL.lock().await;
    capture_logs();
    let stores: Arc<Mutex<Vec<Option<Arc<Store>>>>> = Arc::new(Mutex::new(vec![None, None, None]));
    let ports: Vec<u16> = (0..3).map(|_| mpcium_testkit::free_port().unwrap()).collect();
    let (seen, tweak_ports) = (stores.clone(), ports.clone());
    let spec = ClusterSpec {
        tweak: Some(Arc::new(move |i, p: &mut mpcium_node::daemon::NodeParams| {
            p.service.presign =
                mpcium_node::presign::PresignSettings { pool_size: 2, wallets: vec![W.into()] };
            p.health_address = Some(format!("127.0.0.1:{}", tweak_ports[i]));
            seen.lock().unwrap()[i] = Some(p.store.clone());
        })),
        ..ClusterSpec::new(3, 1)
    };
    let mut c = Cluster::start(spec).await;
    let w = c.client("bans").await;
    let kg = w.keygen(W).await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
    let pubkey = kg.ecdsa_pub_key.unwrap().to_vec();
    let banned_by = |i: usize| -> bool {
        let stores = stores.lock().unwrap();
        stores[i]
            .as_ref()
            .unwrap()
            .bans(W)
            .unwrap()
            .iter()
            .any(|b| b.node_id == CULPRIT && b.key_version == 1)
    };
    let sign_ok = |tx: String| {
        let w = &w;
        let pubkey = &pubkey;
        async move {
            let digest = [0x5au8; 32];
            let ev = w.sign(&w.sign_msg("secp256k1", W, &tx, &digest, None)).await;
            assert_eq!(ev.result_type.as_str(), "success", "{tx}: {ev:?}");
            ecdsa_verify(pubkey, &digest, &ev);
        }
    };

    c.nodes[2].as_ref().unwrap().malice().set(Some(Misbehaviour::CorruptRound { seq: 0 }));
    // Signatures use up the pools; the sessions that refill them, and full signatures, run with
    // node2 until each honest node has caught it once.
    let mut n = 0;
    while !(banned_by(0) && banned_by(1)) {
        assert!(n < 60, "node2 was not banned by both honest nodes after {n} requests");
        let digest = [0x11u8; 32];
        let _ = w.sign(&w.sign_msg("secp256k1", W, &format!("catch-{n}"), &digest, None)).await;
        n += 1;
    }
    // Sessions in flight at the ban end; from then on no DKLs23 run of either honest node with
    // node2 may start (every run with it fails and logs "session failed").
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mark = LOG.lock().unwrap().len();
    for i in 0..8 {
        sign_ok(format!("after-ban-{i}")).await;
    }
    // Let the pools refill (their refill pass runs every 2 s).
    tokio::time::sleep(Duration::from_secs(6)).await;
    let failures = failures_since(mark);
    for honest in HONEST {
        let with_culprit: Vec<_> =
            failures.get(honest).into_iter().flatten().filter(|l| l.contains(CULPRIT)).collect();
        assert!(with_culprit.is_empty(), "{honest} ran sessions with the banned node: {with_culprit:#?}");
    }
    for i in [0, 1] {
        let text = mpcium_testkit::node::http_get(ports[i], "/metrics").await;
        assert_eq!(mpcium_testkit::node::metric(&text, "mpcium_bans"), 1, "node{i}");
    }
    assert!(log_text().contains("DKLs23 counterparty banned for this key"), "the ban is logged");

    // The ban is durable: node0 restarts on its store and still refuses node2.
    stores.lock().unwrap()[0] = None;
    c.restart_node(0).await;
    c.wait_all_ready().await;
    assert!(banned_by(0), "the ban did not survive a restart");
    assert_eq!(
        mpcium_testkit::node::metric(
            &mpcium_testkit::node::http_get(ports[0], "/metrics").await,
            "mpcium_bans"
        ),
        1
    );
    let mark = LOG.lock().unwrap().len();
    for i in 0..4 {
        sign_ok(format!("after-restart-{i}")).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let failures = failures_since(mark);
    assert!(
        failures.get("node0").into_iter().flatten().all(|l| !l.contains(CULPRIT)),
        "node0 ran a session with node2 after its restart: {failures:#?}"
    );

    // A reshare gives the key a new version with fresh OT state: the bans are lifted and node2
    // (honest again) signs.
    c.nodes[2].as_ref().unwrap().malice().set(None);
    let all: Vec<&str> = c.ids.iter().map(String::as_str).collect();
    let ev = w.reshare("secp256k1", W, "lift-bans", &all, 1).await;
    assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
    for i in [0, 1] {
        assert!(
            stores.lock().unwrap()[i].as_ref().unwrap().bans(W).unwrap().is_empty(),
            "node{i} kept a ban"
        );
        assert_eq!(
            mpcium_testkit::node::metric(
                &mpcium_testkit::node::http_get(ports[i], "/metrics").await,
                "mpcium_bans"
            ),
            0,
            "node{i}"
        );
    }
    for i in 0..6 {
        sign_ok(format!("after-reshare-{i}")).await;
    }
}
