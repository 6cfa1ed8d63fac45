//! A malicious coordinator in a real 3-node cluster (t=1, feature `test-malice`): node2 uses its
//! own identity and transport to announce sessions nobody asked for, built from signed client
//! requests it saw (replays) or with values of its own choosing. For each, the honest nodes
//! (node0, node1) must refuse with a clear code before any protocol runs, store nothing, and keep
//! every share byte for byte; signing must go on afterwards under the wallet's public keys.
//! Each test is one line of THREAT-MODEL.md.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use mpcium_api::ErrorCode;
use mpcium_api::KeygenResultEvent;
use mpcium_node::control::{SessionOp, SessionStart};
use mpcium_node::service::announced_session_id;
use mpcium_store::Store;
use mpcium_testkit::node::{
    Cluster, ClusterSpec, WireClient, assert_all_refused, ecdsa_verify, eddsa_verify, taproot_verify,
};

const ATTACKER: usize = 2;
const HONEST: [usize; 2] = [0, 1];

/// A cluster of 3 nodes (t=1) and a handle on each node's store.
async fn cluster() -> (Cluster, Stores) {
    let stores: Stores = Arc::new(Mutex::new(vec![None, None, None]));
    let seen = stores.clone();
    let spec = ClusterSpec {
        tweak: Some(Arc::new(move |i, params| {
            seen.lock().unwrap()[i] = Some(params.store.clone());
        })),
        ..ClusterSpec::new(3, 1)
    };
    (Cluster::start(spec).await, stores)
}

type Stores = Arc<Mutex<Vec<Option<Arc<Store>>>>>;

/// Every share and setup record of each honest node's store.
fn snapshots(stores: &Stores) -> Vec<BTreeMap<String, Vec<u8>>> {
    let stores = stores.lock().unwrap();
    HONEST
        .iter()
        .map(|i| mpcium_testkit::node::share_records(stores[*i].as_ref().expect("node started")))
        .collect()
}

fn start(op: SessionOp, c: &Cluster, body: &[u8]) -> SessionStart {
    SessionStart::new(op, &c.ids[ATTACKER], c.ids.clone(), 1, 1, "").with_request(body)
}

/// A signature with each of the wallet's three keys, verified under the keys of its keygen.
async fn sign_all(w: &WireClient, wallet: &str, kg: &KeygenResultEvent, tag: &str) {
    let digest = [7u8; 32];
    let ev = w.sign(&w.sign_msg("secp256k1", wallet, &format!("{tag}-e"), &digest, None)).await;
    ecdsa_verify(kg.ecdsa_pub_key.as_deref().unwrap(), &digest, &ev);
    let ev = w.sign(&w.sign_msg("ed25519", wallet, &format!("{tag}-d"), b"solana tx", None)).await;
    eddsa_verify(kg.eddsa_pub_key.as_deref().unwrap(), b"solana tx", &ev);
    let ev = w.sign(&w.sign_msg("taproot", wallet, &format!("{tag}-t"), &digest, None)).await;
    taproot_verify(kg.taproot_pub_key.as_deref().unwrap(), None, &digest, &ev);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replayed_keygen_or_a_keygen_on_the_coordinators_terms_stores_nothing() {
    let (c, stores) = cluster().await;
    let attacker = c.node(ATTACKER).transport();
    let w = c.client("insider-keygen").await;
    let kg = w.keygen("wallet-k").await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
    let before = snapshots(&stores);

    // The client's keygen request, seen once, replayed at the live wallet's version.
    let body = w.keygen_body("wallet-k");
    let mut replay = start(SessionOp::Keygen, &c, &body);
    replay.request_id = "wallet-k#999.1".into();
    assert_all_refused(
        &c.announce(attacker, replay.clone(), &HONEST).await,
        ErrorCode::KeyAlreadyExists,
        "replayed keygen",
    );

    // Same, after the attacker deleted the wallet's key info (every node may write the bucket):
    // the honest nodes' own shares still say the wallet exists.
    let kv = jetstream_kv(&c, mpcium_node::registry::KEYINFO_BUCKET).await;
    let saved: Vec<(String, _)> = {
        let mut out = Vec::new();
        for curve in ["ecdsa", "eddsa", "taproot"] {
            let key = mpcium_node::registry::keyinfo_key(curve, "wallet-k");
            out.push((key.clone(), kv.get(&key).await.unwrap().unwrap()));
            kv.delete(&key).await.unwrap();
        }
        out
    };
    replay.request_id = "wallet-k#1000.1".into();
    assert_all_refused(
        &c.announce(attacker, replay, &HONEST).await,
        ErrorCode::KeyAlreadyExists,
        "keygen after key info deleted",
    );
    for (key, value) in saved {
        kv.put(&key, value).await.unwrap();
    }

    // A new wallet the client asked for, on the coordinator's terms: another threshold, or a
    // committee without node1.
    let body = w.keygen_body("wallet-new");
    let mut low = start(SessionOp::Keygen, &c, &body);
    low.request_id = "wallet-new#5.1".into();
    low.threshold = 0;
    assert_all_refused(
        &c.announce(attacker, low, &HONEST).await,
        ErrorCode::InvalidThreshold,
        "keygen with t=0",
    );
    let mut picked = start(SessionOp::Keygen, &c, &body);
    picked.request_id = "wallet-new#6.1".into();
    picked.participants = vec![c.ids[0].clone(), c.ids[2].clone()];
    let outcomes = c.announce(attacker, picked, &[0]).await;
    assert_all_refused(
        &outcomes,
        ErrorCode::IncompatiblePeerIds,
        "keygen with a committee of the coordinator's choice",
    );
    // A request id that names another wallet than the signed request.
    let mut renamed = start(SessionOp::Keygen, &c, &body);
    renamed.request_id = "wallet-other#7.1".into();
    assert_all_refused(
        &c.announce(attacker, renamed, &HONEST).await,
        ErrorCode::MessageVerification,
        "keygen under another id",
    );

    let after = snapshots(&stores);
    assert_eq!(before, after, "an honest node's store changed");
    assert!(
        after.iter().all(|s| !s.keys().any(|k| k.contains("wallet-new"))),
        "a share of wallet-new was stored"
    );
    sign_all(&w, "wallet-k", &kg, "after").await;
    // A signing request the client sent once, replayed by the coordinator as another request
    // message: refused by the participants themselves (the cluster's claim names the first).
    for (key_type, tx_id, tx) in [
        ("secp256k1", "after-e", &[7u8; 32][..]),
        ("ed25519", "after-d", &b"solana tx"[..]),
        ("taproot", "after-t", &[7u8; 32][..]),
    ] {
        let body = w.sign_msg(key_type, "wallet-k", tx_id, tx, None).to_json().into_bytes();
        let mut replay = start(SessionOp::Sign, &c, &body);
        replay.participants = vec![c.ids[0].clone(), c.ids[1].clone()];
        replay.request_id = format!("{tx_id}#99999.1");
        assert_all_refused(
            &c.announce(attacker, replay, &HONEST).await,
            ErrorCode::SessionDuplicate,
            "replayed signing request",
        );
    }
    // The wallet the client asked for is still made on the cluster's terms when it asks.
    let kg = w.keygen("wallet-new").await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reshare_runs_only_on_the_signed_committee_and_threshold_and_only_once() {
    let (c, stores) = cluster().await;
    let attacker = c.node(ATTACKER).transport();
    let w = c.client("insider-reshare").await;
    let kg = w.keygen("wallet-r").await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
    let ecdsa_pub = kg.ecdsa_pub_key.clone().unwrap();
    let all: Vec<&str> = c.ids.iter().map(String::as_str).collect();
    // A reshare the client asked for (same committee, t=1): it runs, once.
    let ev = w.reshare("secp256k1", "wallet-r", "rs-1", &all, 1).await;
    assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
    let before = snapshots(&stores);
    let signed = w.reshare_body("secp256k1", "wallet-r", "rs-1", &all, 1);
    let keyinfo_kv = jetstream_kv(&c, mpcium_node::registry::KEYINFO_BUCKET).await;
    let info_key = mpcium_node::registry::keyinfo_key("ecdsa", "wallet-r");
    let info_bytes = keyinfo_kv.get(&info_key).await.unwrap().unwrap();
    let info: mpcium_node::registry::KeyInfo = serde_json::from_slice(&info_bytes).unwrap();
    let old_key = mpcium_node::service::old_key_digest(info.threshold, &info.public_key, &info.public_shares);
    let reshare = |new: &[usize], t: u32, run: &str| {
        let mut s = start(SessionOp::Reshare, &c, &signed);
        s.key_version = 2;
        s.threshold = t;
        s.new_participants = new.iter().map(|i| c.ids[*i].clone()).collect();
        s.dealers = vec![c.ids[0].clone(), c.ids[2].clone()];
        s.request_id = format!("rs-1#{run}");
        s.old_key = Some(old_key.clone());
        s
    };
    // The key moved to {node1, attacker}: node0 is not in that committee but deals.
    let outcomes = c.announce(attacker, reshare(&[1, 2], 1, "9001"), &HONEST).await;
    assert_all_refused(
        &outcomes,
        ErrorCode::MessageVerification,
        "reshare to a committee the client never signed",
    );
    // The threshold lowered... or raised: any value the client did not sign.
    assert_all_refused(
        &c.announce(attacker, reshare(&[0, 1, 2], 2, "9002"), &HONEST).await,
        ErrorCode::MessageVerification,
        "reshare to t=2",
    );
    // The very request the client signed, run again (a replay): refused cluster-wide.
    let outcomes = c.announce(attacker, reshare(&[0, 1, 2], 1, "9003"), &HONEST).await;
    assert_all_refused(&outcomes, ErrorCode::SessionDuplicate, "replayed reshare request");
    // Dealers that are not t+1 distinct holders.
    let mut bad = reshare(&[0, 1, 2], 1, "9004");
    bad.dealers = vec![c.ids[0].clone(), c.ids[0].clone()];
    assert_all_refused(
        &c.announce(attacker, bad, &HONEST).await,
        ErrorCode::IncompatiblePeerIds,
        "dealers that are not t+1 holders",
    );
    // The key info rewritten with another public share for the attacker (which would move the
    // key to a public key of its choosing), its holders' signatures kept: no honest node
    // believes it (every holder signs the key info), so nobody deals anything. (Behind that, a
    // dealer also compares the announced old key with its own share: `ERROR_DATA_CORRUPTION`.)
    let mut forged = info.clone();
    let attacker_party = forged.public_shares.keys().copied().max().unwrap();
    let other = forged.public_shares.values().next().unwrap().clone();
    forged.public_shares.insert(attacker_party, other);
    keyinfo_kv.put(&info_key, serde_json::to_vec(&forged).unwrap().into()).await.unwrap();
    let mut moved = reshare(&[0, 1, 2], 1, "9006");
    moved.old_key = Some(mpcium_node::service::old_key_digest(
        forged.threshold,
        &forged.public_key,
        &forged.public_shares,
    ));
    let outcomes = c.announce(attacker, moved, &HONEST).await;
    assert_all_refused(&outcomes, ErrorCode::KeyInfoLoad, "reshare against forged public shares");
    assert!(outcomes.values().all(|(_, _, reason)| reason.contains("not signed by")), "{outcomes:?}");
    // An announcement whose old key is not the one in the key info is refused by everyone.
    keyinfo_kv.put(&info_key, info_bytes.clone()).await.unwrap();
    let mut wrong = reshare(&[0, 1, 2], 1, "9007");
    wrong.old_key = Some("00".repeat(32));
    assert_all_refused(
        &c.announce(attacker, wrong, &HONEST).await,
        ErrorCode::MessageVerification,
        "reshare with another old key",
    );
    // The execution id binds the threshold: one start, two thresholds, two ids.
    let (a, b) = (reshare(&[0, 1, 2], 1, "x"), reshare(&[0, 1, 2], 2, "x"));
    assert_ne!(announced_session_id(&a), announced_session_id(&b));
    // And its coordinator: the same terms from another node are another session (a peer that
    // announces them first does not make the members take the coordinator's start for a replay).
    let other = SessionStart { coordinator: c.ids[0].clone(), ..a.clone() };
    assert_ne!(a.coordinator, other.coordinator);
    assert_ne!(announced_session_id(&a), announced_session_id(&other));
    // Even with the cluster's replay record deleted, each honest node remembers the run itself.
    let kv = jetstream_kv(&c, mpcium_node::registry::REQUESTS_BUCKET).await;
    let mut keys = kv.keys().await.unwrap();
    use futures_util::StreamExt;
    while let Some(Ok(k)) = keys.next().await {
        kv.purge(&k).await.unwrap();
    }
    let outcomes = c.announce(attacker, reshare(&[0, 1, 2], 1, "9005"), &HONEST).await;
    assert_all_refused(&outcomes, ErrorCode::SessionDuplicate, "replay after the cluster record was deleted");

    let after = snapshots(&stores);
    assert_eq!(before, after, "an honest node's store changed");
    sign_all(&w, "wallet-r", &kg, "after").await;
    // Once a node signed with the new version, its share of the old one is gone (with t
    // others' old shares it would still be the key).
    let versions = |i: usize| {
        let stores = stores.lock().unwrap();
        stores[i].as_ref().unwrap().share_versions(mpcium_store::ShareKind::Ecdsa, "wallet-r").unwrap()
    };
    let mut n = 0;
    while HONEST.iter().any(|i| versions(*i) != vec![2]) {
        assert!(n < 20, "old shares kept after {n} signatures: {:?}", HONEST.map(versions));
        let digest = [n as u8; 32];
        let ev = w.sign(&w.sign_msg("secp256k1", "wallet-r", &format!("retire-{n}"), &digest, None)).await;
        ecdsa_verify(&ecdsa_pub, &digest, &ev);
        n += 1;
    }
    assert_eq!(versions(0), vec![2]);
}

async fn jetstream_kv(c: &Cluster, bucket: &str) -> async_nats::jetstream::kv::Store {
    let client = async_nats::connect(c.server.url()).await.unwrap();
    async_nats::jetstream::new(client).get_key_value(bucket).await.unwrap()
}

/// A coordinator that changes a Taproot request's merkle root (another output key, e.g. one
/// with a script path it controls), or drops it, announces a request no initiator signed: every
/// participant verifies the client's signature over the root itself and refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_taproot_merkle_root_changed_by_the_coordinator_is_refused() {
    let (c, stores) = cluster().await;
    let attacker = c.node(ATTACKER).transport();
    let w = c.client("insider-taproot").await;
    let kg = w.keygen("wallet-t").await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
    let before = snapshots(&stores);
    let sighash = [9u8; 32];
    let signed = w.taproot_msg("wallet-t", "tx-root", &sighash, None, Some([1; 32]));
    let mut other_root = signed.clone();
    other_root.taproot_merkle_root = Some(vec![2; 32]);
    let mut no_root = signed.clone();
    no_root.taproot_merkle_root = None;
    for (what, req, run) in
        [("another merkle root", other_root, "1"), ("the merkle root dropped", no_root, "2")]
    {
        let mut s = start(SessionOp::Sign, &c, req.to_json().as_bytes());
        s.participants = vec![c.ids[0].clone(), c.ids[1].clone()];
        s.request_id = format!("tx-root#{run}");
        assert_all_refused(
            &c.announce(attacker, s, &HONEST).await,
            ErrorCode::InvalidInitiatorSignature,
            what,
        );
    }
    assert_eq!(before, snapshots(&stores), "an honest node's store changed");
    // The request as the client signed it is served, for the root it names.
    let ev = w.sign_request(&signed).await;
    let p = kg.taproot_pub_key.as_deref().unwrap();
    taproot_verify(p, Some(&[1; 32]), &sighash, &ev);
}
