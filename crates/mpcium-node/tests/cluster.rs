//! A real cluster: a nats-server process and three nodes (in-process, real NATS client), driven
//! by a client that speaks the original's wire protocol byte for byte. Keygen makes both keys;
//! ECDSA, EdDSA and HD signatures verify with independent verifiers; every error path answers
//! with its exact code.

use mpcium_api::ErrorCode;
use mpcium_testkit::node::{Cluster, ClusterSpec, ecdsa_child, ecdsa_verify, eddsa_verify, http_get};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keygen_sign_and_error_paths_over_a_real_cluster() {
    let c = Cluster::start(ClusterSpec { health_on: Some(0), ..ClusterSpec::new(3, 1) }).await;
    let w = c.client("e2e-suite").await;

    // Keygen makes both keys.
    let kg = w.keygen("wallet-1").await;
    eprintln!("keygen: {kg:?}");
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
    let ecdsa_pub = kg.ecdsa_pub_key.clone().unwrap();
    let eddsa_pub = kg.eddsa_pub_key.clone().unwrap();
    assert_eq!((ecdsa_pub.len(), eddsa_pub.len()), (64, 32));

    // ECDSA over a 32-byte digest.
    let digest = [0x11u8; 32];
    let ev = w.sign(&w.sign_msg("secp256k1", "wallet-1", "tx-ecdsa-1", &digest, None)).await;
    assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
    assert_eq!(ev.tx_id, "tx-ecdsa-1");
    ecdsa_verify(&ecdsa_pub, &digest, &ev);

    // EdDSA over the exact message.
    let message = b"solana message bytes";
    let ev = w.sign(&w.sign_msg("ed25519", "wallet-1", "tx-eddsa-1", message, None)).await;
    assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
    eddsa_verify(&eddsa_pub, message, &ev);

    // HD: [44,60,0,0,0] verifies under the BIP32-derived child key.
    let path = vec![44, 60, 0, 0, 0];
    let ev = w.sign(&w.sign_msg("secp256k1", "wallet-1", "tx-hd-1", &digest, Some(path.clone()))).await;
    assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
    ecdsa_verify(&ecdsa_child(&ecdsa_pub, &c.chain_code, &path), &digest, &ev);

    // A replayed tx id is refused durably.
    let again = w.sign(&w.sign_msg("secp256k1", "wallet-1", "tx-ecdsa-1", &digest, None)).await;
    assert_eq!(again.error_code, Some(ErrorCode::SessionDuplicate), "{again:?}");

    // Unknown wallet.
    let ev = w.sign(&w.sign_msg("ed25519", "no-such-wallet", "tx-x", b"m", None)).await;
    assert_eq!(ev.error_code, Some(ErrorCode::KeyNotFound), "{ev:?}");

    // Bad initiator signature: an error event at once (the original stays silent).
    let mut bad = w.sign_msg("ed25519", "wallet-1", "tx-bad-sig", b"m", None);
    bad.signature = Some(vec![7u8; 64]);
    let ev = w.sign(&bad).await;
    assert_eq!(ev.error_code, Some(ErrorCode::InvalidInitiatorSignature), "{ev:?}");

    // Malformed JSON.
    let ev = w.sign_raw("tx-junk", b"{not json".to_vec()).await;
    assert_eq!(ev.error_code, Some(ErrorCode::UnmarshalFailure), "{ev:?}");

    // Keygen of an existing wallet.
    let kg = w.keygen("wallet-1").await;
    assert_eq!(kg.error_code, Some(ErrorCode::KeyAlreadyExists), "{kg:?}");

    // Reshare ECDSA from 3 nodes (t=1) to {node0, node1}, then sign with the new shares.
    let rs = w.reshare("secp256k1", "wallet-1", "reshare-1", &["node0", "node1"], 1).await;
    assert_eq!(rs.result_type.as_str(), "success", "{rs:?}");
    assert_eq!(rs.pub_key.as_deref(), Some(ecdsa_pub.as_slice()), "the public key is unchanged");
    let digest2 = [0x22u8; 32];
    let ev = w.sign(&w.sign_msg("secp256k1", "wallet-1", "tx-after-reshare", &digest2, None)).await;
    assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
    ecdsa_verify(&ecdsa_pub, &digest2, &ev);

    // Reshare EdDSA to all three with t=2 (every signature now needs all three), then sign.
    let rs = w.reshare("ed25519", "wallet-1", "reshare-2", &["node0", "node1", "node2"], 2).await;
    assert_eq!(rs.result_type.as_str(), "success", "{rs:?}");
    let ev = w.sign(&w.sign_msg("ed25519", "wallet-1", "tx-eddsa-2", b"after reshare", None)).await;
    assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
    eddsa_verify(&eddsa_pub, b"after reshare", &ev);

    // A reshare to a node that is not in the cluster is refused with its code.
    let rs = w.reshare("ed25519", "wallet-1", "reshare-3", &["node0", "stranger"], 1).await;
    assert_eq!(rs.error_code, Some(ErrorCode::ParticipantNotFound), "{rs:?}");

    // /health in the original's shape and /metrics counting what happened (node0 serves them).
    let health = http_get(c.health_port, "/health").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains(r#""status":"ready","live":true,"ready":true"#), "{health}");
    assert!(
        health.contains(r#""peers_ready_count":"3/3","all_peers_ready":true,"majority_ready":true"#),
        "{health}"
    );
    let metrics = http_get(c.health_port, "/metrics").await;
    assert!(metrics.contains("mpcium_peers_ready 3"), "{metrics}");
    assert!(metrics.contains("mpcium_sessions_total "), "{metrics}");
    assert!(http_get(c.health_port, "/nope").await.starts_with("HTTP/1.1 404"));

    drop(c.nodes);
    drop(c.server);
}
