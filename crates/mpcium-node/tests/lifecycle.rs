//! A cluster's life: every node restarted on its store, two clients side by side, a node joining
//! through a reshare, a node down, and strict request signatures. Each test runs its own
//! nats-server and in-process nodes; signatures are checked by independent verifiers.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mpcium_api::{ErrorCode, SigningMode};
use mpcium_testkit::node::{Cluster, ClusterSpec, ecdsa_child, ecdsa_verify, eddsa_verify};

fn assert_success(ev: &mpcium_api::SigningResultEvent) {
    assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
}

/// Keys made before a full restart sign afterwards: the shares come back from the stores and the
/// wallet metadata from the registry.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_node_restarted_on_its_store_signs_with_the_same_wallet() {
    let mut c = Cluster::start(ClusterSpec::new(3, 1)).await;
    let w = c.client("restart-suite").await;
    let kg = w.keygen("wallet-r").await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
    let (ecdsa_pub, eddsa_pub) = (kg.ecdsa_pub_key.unwrap(), kg.eddsa_pub_key.unwrap());

    for i in 0..3 {
        c.stop_node(i).await;
    }
    for i in 0..3 {
        c.start_node(i).await;
    }
    c.wait_ready_exactly().await;

    let digest = [0x5au8; 32];
    let ev = w.sign(&w.sign_msg("secp256k1", "wallet-r", "tx-r-ecdsa", &digest, None)).await;
    assert_success(&ev);
    ecdsa_verify(&ecdsa_pub, &digest, &ev);
    let ev = w.sign(&w.sign_msg("ed25519", "wallet-r", "tx-r-eddsa", b"after restart", None)).await;
    assert_success(&ev);
    eddsa_verify(&eddsa_pub, b"after restart", &ev);
    let path = vec![44, 60, 0, 0, 7];
    let ev = w.sign(&w.sign_msg("secp256k1", "wallet-r", "tx-r-hd", &digest, Some(path.clone()))).await;
    assert_success(&ev);
    ecdsa_verify(&ecdsa_child(&ecdsa_pub, &c.chain_code, &path), &digest, &ev);

    // The replay journal survived too: a tx id used before the restart is still refused.
    let again = w.sign(&w.sign_msg("secp256k1", "wallet-r", "tx-r-ecdsa", &digest, None)).await;
    assert_eq!(again.error_code, Some(ErrorCode::SessionDuplicate), "{again:?}");
}

/// Results are scoped by ClientID: each client's consumers see its own keygen and signing results
/// and nothing of the other's, with requests interleaved.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_client_ids_each_get_only_their_own_results() {
    let c = Cluster::start(ClusterSpec::new(3, 1)).await;
    let a = c.client("client-a").await;
    let b = c.client("client-b").await;
    a.send_keygen("wallet-a").await;
    b.send_keygen("wallet-b").await;
    let quiet = Duration::from_secs(2);
    let ka = a.collect_keygen_results(&["wallet-a".into()], Duration::from_secs(90), quiet).await;
    let kb = b.collect_keygen_results(&["wallet-b".into()], Duration::from_secs(90), quiet).await;
    assert_eq!(ka.keys().collect::<Vec<_>>(), vec!["wallet-a"], "{ka:?}");
    assert_eq!(kb.keys().collect::<Vec<_>>(), vec!["wallet-b"], "{kb:?}");
    let (ka, kb) = (&ka["wallet-a"], &kb["wallet-b"]);
    assert_eq!((ka.len(), kb.len()), (1, 1));
    assert_eq!(ka[0].result_type.as_str(), "success", "{ka:?}");
    assert_eq!(kb[0].result_type.as_str(), "success", "{kb:?}");
    let pub_a = ka[0].eddsa_pub_key.clone().unwrap();
    let pub_b = kb[0].eddsa_pub_key.clone().unwrap();
    let ecdsa_a = ka[0].ecdsa_pub_key.clone().unwrap();

    // Interleaved: a-0, b-0, a-1, b-1, ... (EdDSA; one ECDSA each to cover both result shapes).
    let mut want_a = Vec::new();
    let mut want_b = Vec::new();
    for i in 0..8 {
        let (ta, tb) = (format!("a-tx-{i}"), format!("b-tx-{i}"));
        a.send_sign(&a.sign_msg("ed25519", "wallet-a", &ta, ta.as_bytes(), None)).await;
        b.send_sign(&b.sign_msg("ed25519", "wallet-b", &tb, tb.as_bytes(), None)).await;
        want_a.push(ta);
        want_b.push(tb);
    }
    a.send_sign(&a.sign_msg("secp256k1", "wallet-a", "a-tx-ecdsa", &[7u8; 32], None)).await;
    want_a.push("a-tx-ecdsa".into());
    let ra = a.collect_sign_results(&want_a, Duration::from_secs(60), quiet).await;
    let rb = b.collect_sign_results(&want_b, Duration::from_secs(60), quiet).await;
    let keys = |m: &std::collections::HashMap<String, Vec<_>>| m.keys().cloned().collect::<HashSet<String>>();
    assert_eq!(keys(&ra), want_a.iter().cloned().collect(), "client-a sees exactly its own");
    assert_eq!(keys(&rb), want_b.iter().cloned().collect(), "client-b sees exactly its own");
    for (tx, evs) in &ra {
        assert_eq!(evs.len(), 1, "{tx}: {evs:?}");
        assert_success(&evs[0]);
        if tx == "a-tx-ecdsa" {
            ecdsa_verify(&ecdsa_a, &[7u8; 32], &evs[0]);
        } else {
            eddsa_verify(&pub_a, tx.as_bytes(), &evs[0]);
        }
    }
    for (tx, evs) in &rb {
        assert_eq!(evs.len(), 1, "{tx}: {evs:?}");
        assert_success(&evs[0]);
        eddsa_verify(&pub_b, tx.as_bytes(), &evs[0]);
    }
}

/// A fourth node joins: keys made by three nodes (t=1) are reshared to four (t=2). Afterwards the
/// public keys are unchanged, three signers are needed (three ready: signs; two ready: refused)
/// and the signatures verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reshare_three_nodes_t1_to_four_nodes_t2_then_sign() {
    // Until `grown`, the cluster is node0..node2 only: node3 is not a configured peer.
    let grown = Arc::new(AtomicBool::new(false));
    let g = grown.clone();
    let spec = ClusterSpec {
        start_only: Some(vec![0, 1, 2]),
        tweak: Some(Arc::new(move |_, p: &mut mpcium_node::daemon::NodeParams| {
            if !g.load(Ordering::SeqCst) {
                p.peers.remove("node3");
            }
        })),
        ..ClusterSpec::new(4, 1)
    };
    let mut c = Cluster::start(spec).await;
    let w = c.client("join-suite").await;
    let kg = w.keygen("wallet-j").await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
    let (ecdsa_pub, eddsa_pub) = (kg.ecdsa_pub_key.unwrap(), kg.eddsa_pub_key.unwrap());

    // The operator adds node3 to every node's peers and restarts them; node3 starts.
    grown.store(true, Ordering::SeqCst);
    for i in 0..3 {
        c.restart_node(i).await;
    }
    c.start_node(3).await;
    c.wait_ready_exactly().await;

    let all = ["node0", "node1", "node2", "node3"];
    let rs = w.reshare("secp256k1", "wallet-j", "join-ecdsa", &all, 2).await;
    assert_eq!(rs.result_type.as_str(), "success", "{rs:?}");
    assert_eq!(rs.pub_key.as_deref(), Some(ecdsa_pub.as_slice()), "the ECDSA key is unchanged");
    let rs = w.reshare("ed25519", "wallet-j", "join-eddsa", &all, 2).await;
    assert_eq!(rs.result_type.as_str(), "success", "{rs:?}");
    assert_eq!(rs.pub_key.as_deref(), Some(eddsa_pub.as_slice()), "the EdDSA key is unchanged");

    let digest = [0x33u8; 32];
    let ev = w.sign(&w.sign_msg("secp256k1", "wallet-j", "tx-j-1", &digest, None)).await;
    assert_success(&ev);
    ecdsa_verify(&ecdsa_pub, &digest, &ev);
    let ev = w.sign(&w.sign_msg("ed25519", "wallet-j", "tx-j-2", b"four nodes", None)).await;
    assert_success(&ev);
    eddsa_verify(&eddsa_pub, b"four nodes", &ev);

    // The new member holds a working share: with node0 down, node3 is one of the three signers.
    c.stop_node(0).await;
    c.wait_ready_exactly().await;
    let ev = w.sign(&w.sign_msg("secp256k1", "wallet-j", "tx-j-3", &digest, None)).await;
    assert_success(&ev);
    ecdsa_verify(&ecdsa_pub, &digest, &ev);
    let ev = w.sign(&w.sign_msg("ed25519", "wallet-j", "tx-j-4", b"without node0", None)).await;
    assert_success(&ev);
    eddsa_verify(&eddsa_pub, b"without node0", &ev);

    // Two ready holders are no longer enough (t=2 needs three signers).
    c.stop_node(1).await;
    c.wait_ready_exactly().await;
    for (kt, tx, m) in [("secp256k1", "tx-j-5", digest.to_vec()), ("ed25519", "tx-j-6", b"two".to_vec())] {
        let ev = w.sign(&w.sign_msg(kt, "wallet-j", tx, &m, None)).await;
        assert_eq!(ev.error_code, Some(ErrorCode::NotMajority), "{ev:?}");
    }
}

/// With one node of three down, t=1 signing goes on with the other two, and keygen (which needs
/// every node) is refused with `ERROR_CLUSTER_NOT_READY` at once, not after a session timeout.
/// Both for a graceful stop (readiness withdrawn) and a crash (readiness expires).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_node_down_signing_goes_on_and_keygen_is_refused_quickly() {
    let mut c = Cluster::start(ClusterSpec::new(3, 1)).await;
    let w = c.client("down-suite").await;
    let kg = w.keygen("wallet-d").await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
    let (ecdsa_pub, eddsa_pub) = (kg.ecdsa_pub_key.unwrap(), kg.eddsa_pub_key.unwrap());

    c.stop_node(2).await;
    c.wait_ready_exactly().await;
    let digest = [0x44u8; 32];
    let ev = w.sign(&w.sign_msg("secp256k1", "wallet-d", "tx-d-1", &digest, None)).await;
    assert_success(&ev);
    ecdsa_verify(&ecdsa_pub, &digest, &ev);
    let ev = w.sign(&w.sign_msg("ed25519", "wallet-d", "tx-d-2", b"two of three", None)).await;
    assert_success(&ev);
    eddsa_verify(&eddsa_pub, b"two of three", &ev);

    let started = Instant::now();
    let kg = w.keygen("wallet-d2").await;
    let took = started.elapsed();
    assert_eq!(kg.error_code, Some(ErrorCode::ClusterNotReady), "{kg:?}");
    assert!(took < Duration::from_secs(5), "keygen refused after {took:?}");
    eprintln!("keygen refused with one node stopped in {took:?}");

    // A crash: node1 stops heartbeating without withdrawing; once its readiness expires, keygen
    // is refused at once again, and signing with one of three is refused too.
    c.restart_node(2).await;
    c.wait_ready_exactly().await;
    c.nodes[1].take().unwrap().kill();
    c.wait_ready_exactly().await;
    let started = Instant::now();
    let kg = w.keygen("wallet-d3").await;
    let took = started.elapsed();
    assert_eq!(kg.error_code, Some(ErrorCode::ClusterNotReady), "{kg:?}");
    assert!(took < Duration::from_secs(5), "keygen refused after {took:?}");
    let ev = w.sign(&w.sign_msg("ed25519", "wallet-d", "tx-d-3", b"after the crash", None)).await;
    assert_success(&ev);
    eddsa_verify(&eddsa_pub, b"after the crash", &ev);
}

/// `security.strict_requests`: the derivation path must be covered by the initiator's signature.
/// A request signed the compatible way with a path is refused with
/// `ERROR_INVALID_INITIATOR_SIGNATURE`; signed in strict mode it signs under the child key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn strict_requests_refuse_a_path_outside_the_signature() {
    let spec = ClusterSpec {
        tweak: Some(Arc::new(|_, p: &mut mpcium_node::daemon::NodeParams| {
            p.service.strict_requests = true;
        })),
        ..ClusterSpec::new(3, 1)
    };
    let c = Cluster::start(spec).await;
    let w = c.client("strict-suite").await;
    let kg = w.keygen("wallet-s").await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
    let (ecdsa_pub, eddsa_pub) = (kg.ecdsa_pub_key.unwrap(), kg.eddsa_pub_key.unwrap());
    let digest = [0x66u8; 32];
    let path = vec![44, 60, 0, 0, 3];

    // Compatible-mode signature, path not covered: refused.
    let ev = w.sign(&w.sign_msg("secp256k1", "wallet-s", "tx-s-1", &digest, Some(path.clone()))).await;
    assert_eq!(ev.error_code, Some(ErrorCode::InvalidInitiatorSignature), "{ev:?}");
    // The same request signed in strict mode, then with the path swapped after signing.
    let strict =
        w.sign_msg_mode("secp256k1", "wallet-s", "tx-s-2", &digest, Some(path.clone()), SigningMode::Strict);
    let mut swapped = strict.clone();
    swapped.tx_id = "tx-s-3".into();
    let ev = w.sign(&strict).await;
    assert_success(&ev);
    ecdsa_verify(&ecdsa_child(&ecdsa_pub, &c.chain_code, &path), &digest, &ev);
    let mut moved =
        w.sign_msg_mode("secp256k1", "wallet-s", "tx-s-4", &digest, Some(path), SigningMode::Strict);
    moved.derivation_path = Some(vec![44, 60, 0, 0, 4]);
    let ev = w.sign(&moved).await;
    assert_eq!(ev.error_code, Some(ErrorCode::InvalidInitiatorSignature), "{ev:?}");
    let ev = w.sign(&swapped).await;
    assert_eq!(ev.error_code, Some(ErrorCode::InvalidInitiatorSignature), "{ev:?}");
    // Strict mode without a path (`"derivation_path":null` in the signed bytes) signs too.
    let plain = w.sign_msg_mode("ed25519", "wallet-s", "tx-s-5", b"strict", None, SigningMode::Strict);
    let ev = w.sign(&plain).await;
    assert_success(&ev);
    eddsa_verify(&eddsa_pub, b"strict", &ev);
    // A Go client's (compatible) signature without a path does not verify in strict mode either,
    // unless its bytes happen to equal the strict ones (they never do: strict adds a field).
    let ev = w.sign(&w.sign_msg("ed25519", "wallet-s", "tx-s-6", b"compat", None)).await;
    assert_eq!(ev.error_code, Some(ErrorCode::InvalidInitiatorSignature), "{ev:?}");
}
