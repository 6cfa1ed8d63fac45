//! A real cluster: a nats-server process and three nodes (in-process, real NATS client), driven
//! by a client that speaks the original's wire protocol byte for byte. Keygen makes both keys;
//! ECDSA, EdDSA and HD signatures verify with independent verifiers; every error path answers
//! with its exact code.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use ed25519_dalek::{Signer, SigningKey};
use futures_util::StreamExt;
use mpcium_api::{
    ErrorCode, KeygenResultEvent, ResharingMessage, ResharingResultEvent, SignTxMessage, SigningMode,
    SigningResultEvent, subjects,
};
use mpcium_node::daemon::{NodeParams, RunningNode, start};
use mpcium_node::service::ServiceConfig;
use mpcium_store::{Store, StoreOptions};
use mpcium_testkit::NatsServer;
use rand_core::{OsRng, RngCore};

const CLIENT: &str = "e2e-suite";

struct Cluster {
    server: NatsServer,
    nodes: Vec<RunningNode>,
    initiator: SigningKey,
    chain_code: [u8; 32],
    js: jetstream::Context,
    health_port: u16,
    keygen_results: jetstream::consumer::Consumer<pull::Config>,
    sign_results: jetstream::consumer::Consumer<pull::Config>,
    reshare_results: jetstream::consumer::Consumer<pull::Config>,
    raw: async_nats::Client,
    _dir: tempfile::TempDir,
}

async fn cluster() -> Cluster {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info,mpcium_node=debug,async_nats=warn"))
        .with_test_writer()
        .try_init();
    let server = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let initiator = SigningKey::generate(&mut OsRng);
    let mut chain_code = [0u8; 32];
    OsRng.fill_bytes(&mut chain_code);
    let ids: Vec<String> = (0..3).map(|i| format!("node{i}")).collect();
    let keys: Vec<SigningKey> = (0..3).map(|_| SigningKey::generate(&mut OsRng)).collect();
    let peers: HashMap<String, _> = ids.iter().cloned().zip(keys.iter().map(|k| k.verifying_key())).collect();
    let initiator_hex: String =
        initiator.verifying_key().to_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let health_port = mpcium_testkit::free_port().unwrap();
    let mut nodes = Vec::new();
    for i in 0..3 {
        let store = Store::create(
            dir.path().join(format!("node{i}.db")),
            b"test-password-123",
            &StoreOptions::insecure_for_tests(),
        )
        .unwrap();
        let params = NodeParams {
            node_id: ids[i].clone(),
            node_name: ids[i].clone(),
            identity: keys[i].clone(),
            peers: peers.clone(),
            nats_url: server.url(),
            nats_options: async_nats::ConnectOptions::new(),
            store: Arc::new(store),
            backup: None,
            heartbeat: Duration::from_millis(500),
            service: ServiceConfig {
                threshold: 1,
                chain_code,
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
                session_timeout: Duration::from_secs(30),
            },
            register_peers: Vec::new(),
            health_address: (i == 0).then(|| format!("127.0.0.1:{}", health_port)),
        };
        nodes.push(start(params).await.unwrap());
    }
    for n in &nodes {
        for _ in 0..200 {
            if n.directory().ready().len() == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(n.directory().ready().len(), 3, "all nodes ready");
    }
    let js = jetstream::new(async_nats::connect(server.url()).await.unwrap());
    let results = js.get_stream("mpc").await.unwrap();
    let consumer = |name: &str, filter: String| pull::Config {
        durable_name: Some(name.to_owned()),
        filter_subject: filter,
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ..Default::default()
    };
    let client = mpcium_api::ClientId::parse(CLIENT).unwrap();
    let keygen_results = results
        .get_or_create_consumer(
            "mpc_keygen_result_e2e-suite",
            consumer("mpc_keygen_result_e2e-suite", subjects::keygen_result_filter(client.as_ref())),
        )
        .await
        .unwrap();
    let sign_results = results
        .get_or_create_consumer(
            "mpc_signing_result_e2e-suite",
            consumer("mpc_signing_result_e2e-suite", subjects::signing_result_filter(client.as_ref())),
        )
        .await
        .unwrap();
    let reshare_results = results
        .get_or_create_consumer(
            "mpc_reshare_result_e2e-suite",
            consumer("mpc_reshare_result_e2e-suite", subjects::reshare_result_filter(client.as_ref())),
        )
        .await
        .unwrap();
    let raw = async_nats::connect(server.url()).await.unwrap();
    Cluster {
        server,
        nodes,
        initiator,
        chain_code,
        js,
        health_port,
        keygen_results,
        sign_results,
        reshare_results,
        raw,
        _dir: dir,
    }
}

impl Cluster {
    async fn publish(&self, subject: String, body: Vec<u8>) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(subjects::CLIENT_ID_HEADER, CLIENT);
        self.js.publish_with_headers(subject, headers, body.into()).await.unwrap().await.unwrap();
    }

    async fn next_result(consumer: &jetstream::consumer::Consumer<pull::Config>) -> Vec<u8> {
        let mut batch =
            consumer.fetch().max_messages(1).expires(Duration::from_secs(60)).messages().await.unwrap();
        let msg = tokio::time::timeout(Duration::from_secs(90), batch.next())
            .await
            .expect("a result")
            .unwrap()
            .unwrap();
        msg.ack().await.unwrap();
        msg.payload.to_vec()
    }

    async fn keygen_raw(&self, wallet: &str, body: Vec<u8>) -> KeygenResultEvent {
        self.publish(subjects::keygen_request_subject(wallet), body).await;
        KeygenResultEvent::from_json(&Self::next_result(&self.keygen_results).await).unwrap()
    }

    async fn keygen(&self, wallet: &str) -> KeygenResultEvent {
        let sig = self.initiator.sign(wallet.as_bytes()).to_bytes();
        let msg = mpcium_api::GenerateKeyMessage {
            wallet_id: wallet.into(),
            signature: Some(sig.to_vec()),
            authorizer_signatures: vec![],
        };
        self.keygen_raw(wallet, msg.to_json().into_bytes()).await
    }

    fn sign_msg(
        &self,
        key_type: &str,
        wallet: &str,
        tx_id: &str,
        tx: &[u8],
        path: Option<Vec<u32>>,
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
        let raw = mpcium_api::canonical::sign_signed_bytes(&msg, SigningMode::Compatible);
        msg.signature = Some(self.initiator.sign(&raw).to_bytes().to_vec());
        msg
    }

    async fn reshare(
        &self,
        key_type: &str,
        wallet: &str,
        session: &str,
        nodes: &[&str],
        t: i64,
    ) -> ResharingResultEvent {
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
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(subjects::CLIENT_ID_HEADER, CLIENT);
        self.raw.publish_with_headers("mpc:reshare", headers, msg.to_json().into()).await.unwrap();
        self.raw.flush().await.unwrap();
        ResharingResultEvent::from_json(&Self::next_result(&self.reshare_results).await).unwrap()
    }

    async fn sign_raw(&self, tx_id: &str, body: Vec<u8>) -> SigningResultEvent {
        self.publish(subjects::signing_request_subject(tx_id), body).await;
        SigningResultEvent::from_json(&Self::next_result(&self.sign_results).await).unwrap()
    }

    async fn sign(&self, msg: &SignTxMessage) -> SigningResultEvent {
        self.sign_raw(&msg.tx_id, msg.to_json().into_bytes()).await
    }
}

fn ecdsa_verify(pub_xy: &[u8], digest: &[u8; 32], ev: &SigningResultEvent) {
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

async fn http_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keygen_sign_and_error_paths_over_a_real_cluster() {
    let c = cluster().await;

    // Keygen makes both keys.
    let kg = c.keygen("wallet-1").await;
    eprintln!("keygen: {kg:?}");
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
    let ecdsa_pub = kg.ecdsa_pub_key.clone().unwrap();
    let eddsa_pub = kg.eddsa_pub_key.clone().unwrap();
    assert_eq!((ecdsa_pub.len(), eddsa_pub.len()), (64, 32));

    // ECDSA over a 32-byte digest.
    let digest = [0x11u8; 32];
    let ev = c.sign(&c.sign_msg("secp256k1", "wallet-1", "tx-ecdsa-1", &digest, None)).await;
    assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
    assert_eq!(ev.tx_id, "tx-ecdsa-1");
    ecdsa_verify(&ecdsa_pub, &digest, &ev);

    // EdDSA over the exact message.
    let message = b"solana message bytes";
    let ev = c.sign(&c.sign_msg("ed25519", "wallet-1", "tx-eddsa-1", message, None)).await;
    assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&eddsa_pub.clone().try_into().unwrap()).unwrap();
    let sig = ed25519_dalek::Signature::from_bytes(&ev.signature.clone().unwrap().try_into().unwrap());
    vk.verify_strict(message, &sig).unwrap();

    // HD: [44,60,0,0,0] verifies under the BIP32-derived child key.
    let path = vec![44, 60, 0, 0, 0];
    let ev = c.sign(&c.sign_msg("secp256k1", "wallet-1", "tx-hd-1", &digest, Some(path.clone()))).await;
    assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
    let mut sec1 = vec![4u8];
    sec1.extend_from_slice(&ecdsa_pub);
    let master = k256::PublicKey::from_sec1_bytes(&sec1).unwrap();
    let (child, _) = mpcium_tss::ecdsa::derive_child(&master, &c.chain_code, &path).unwrap();
    use k256::elliptic_curve::sec1::ToSec1Point;
    let child_xy = &child.to_sec1_point(false).as_bytes()[1..].to_vec();
    ecdsa_verify(child_xy, &digest, &ev);

    // A replayed tx id is refused durably.
    let again = c.sign(&c.sign_msg("secp256k1", "wallet-1", "tx-ecdsa-1", &digest, None)).await;
    assert_eq!(again.error_code, Some(ErrorCode::SessionDuplicate), "{again:?}");

    // Unknown wallet.
    let ev = c.sign(&c.sign_msg("ed25519", "no-such-wallet", "tx-x", b"m", None)).await;
    assert_eq!(ev.error_code, Some(ErrorCode::KeyNotFound), "{ev:?}");

    // Bad initiator signature: an error event at once (the original stays silent).
    let mut bad = c.sign_msg("ed25519", "wallet-1", "tx-bad-sig", b"m", None);
    bad.signature = Some(vec![7u8; 64]);
    let ev = c.sign(&bad).await;
    assert_eq!(ev.error_code, Some(ErrorCode::InvalidInitiatorSignature), "{ev:?}");

    // Malformed JSON.
    let ev = c.sign_raw("tx-junk", b"{not json".to_vec()).await;
    assert_eq!(ev.error_code, Some(ErrorCode::UnmarshalFailure), "{ev:?}");

    // Keygen of an existing wallet.
    let kg = c.keygen("wallet-1").await;
    assert_eq!(kg.error_code, Some(ErrorCode::KeyAlreadyExists), "{kg:?}");

    // Reshare ECDSA from 3 nodes (t=1) to {node0, node1}, then sign with the new shares.
    let rs = c.reshare("secp256k1", "wallet-1", "reshare-1", &["node0", "node1"], 1).await;
    assert_eq!(rs.result_type.as_str(), "success", "{rs:?}");
    assert_eq!(rs.pub_key.as_deref(), Some(ecdsa_pub.as_slice()), "the public key is unchanged");
    let digest2 = [0x22u8; 32];
    let ev = c.sign(&c.sign_msg("secp256k1", "wallet-1", "tx-after-reshare", &digest2, None)).await;
    assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
    ecdsa_verify(&ecdsa_pub, &digest2, &ev);

    // Reshare EdDSA to all three with t=2 (every signature now needs all three), then sign.
    let rs = c.reshare("ed25519", "wallet-1", "reshare-2", &["node0", "node1", "node2"], 2).await;
    assert_eq!(rs.result_type.as_str(), "success", "{rs:?}");
    let ev = c.sign(&c.sign_msg("ed25519", "wallet-1", "tx-eddsa-2", b"after reshare", None)).await;
    assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
    let sig = ed25519_dalek::Signature::from_bytes(&ev.signature.clone().unwrap().try_into().unwrap());
    vk.verify_strict(b"after reshare", &sig).unwrap();

    // A reshare to a node that is not in the cluster is refused with its code.
    let rs = c.reshare("ed25519", "wallet-1", "reshare-3", &["node0", "stranger"], 1).await;
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
