//! The registry against a real nats-server: nodes see each other become ready, derive the same
//! pair keys, drop a silent peer after the TTL, and ignore forged records.

use std::collections::HashMap;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use mpcium_node::pairkey::ExchangeKey;
use mpcium_node::registry::{Heartbeat, KeyInfo, PeerDirectory, ReadyRecord, Registry, RegistryError};
use mpcium_testkit::NatsServer;
use rand_core::OsRng;

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_become_ready_share_pair_keys_and_expire() {
    let server = NatsServer::start().unwrap();
    let ids: Vec<String> = (0..3).map(|i| format!("node-{i}")).collect();
    let keys: Vec<SigningKey> = (0..3).map(|_| SigningKey::generate(&mut OsRng)).collect();
    let identities: HashMap<String, _> =
        ids.iter().cloned().zip(keys.iter().map(|k| k.verifying_key())).collect();
    let hb = Heartbeat { period: Duration::from_millis(300), ttl: Duration::from_millis(1200) };

    let mut nodes = Vec::new();
    for i in 0..3 {
        let client = async_nats::connect(server.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let registry = Registry::open(&js, hb).await.unwrap();
        let dir = PeerDirectory::new(&ids[i], identities.clone(), ExchangeKey::generate(), hb.ttl);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let beat = registry.spawn_heartbeat(
            dir.clone(),
            keys[i].clone(),
            hb,
            mpcium_node::registry::now_ms(),
            stop_rx.clone(),
        );
        let watch = registry.spawn_watch(dir.clone(), stop_rx);
        nodes.push((registry, dir, stop_tx, beat, watch));
    }
    for (_, dir, ..) in &nodes {
        wait_for("all ready", || dir.ready().len() == 3).await;
    }
    let k01 = nodes[0].1.pair_key("node-1").unwrap();
    let k10 = nodes[1].1.pair_key("node-0").unwrap();
    assert_eq!(k01, k10, "both sides derive the same pair key");
    assert_ne!(k01, nodes[0].1.pair_key("node-2").unwrap());

    // A forged record (signed by the wrong key) for node-1 is ignored.
    let forged = ReadyRecord::new("node-1", &[7; 32], 1, &SigningKey::generate(&mut OsRng));
    assert!(!nodes[0].1.observe(&forged));
    assert_eq!(nodes[0].1.pair_key("node-1").unwrap(), k01);

    // node-2 stops its heartbeat without withdrawing (a crash): the others drop it after the TTL.
    let (_, _, stop2, beat2, watch2) = nodes.pop().unwrap();
    stop2.send(true).unwrap();
    beat2.await.unwrap();
    watch2.await.unwrap();
    wait_for("node-2 expired", || nodes[0].1.ready() == vec!["node-0".to_string(), "node-1".to_string()])
        .await;
    assert!(nodes[0].1.pair_key("node-2").is_some(), "the pair key outlives a late heartbeat");

    // node-1 withdraws (graceful shutdown): node-0 sees the delete at once.
    nodes[1].0.withdraw("node-1").await.unwrap();
    nodes[1].2.send(true).unwrap();
    wait_for("node-1 withdrawn", || nodes[0].1.ready() == vec!["node-0".to_string()]).await;
    // Its sessions in flight may still finish while it drains: the channel stays.
    assert_eq!(nodes[0].1.pair_key("node-1").unwrap(), k01, "a draining peer keeps its pair key");
    // When it comes back (a new process, a new exchange key) the new key replaces the old one.
    let back = ReadyRecord::new("node-1", &ExchangeKey::generate().public(), 2, &keys[1]);
    assert!(nodes[0].1.observe(&back));
    assert_ne!(nodes[0].1.pair_key("node-1").unwrap(), k01);
    assert_eq!(nodes[0].1.ready(), vec!["node-0".to_string(), "node-1".to_string()]);
    assert_eq!(nodes[0].1.incarnation("node-1"), Some(2), "the restart is visible");
}

#[tokio::test]
async fn peers_and_keyinfo_round_trip() {
    let server = NatsServer::start().unwrap();
    let js = async_nats::jetstream::new(async_nats::connect(server.url()).await.unwrap());
    let registry = Registry::open(&js, Heartbeat::every(Duration::from_secs(5))).await.unwrap();
    assert!(registry.register_peer("node0", "id-0").await.unwrap());
    assert!(!registry.register_peer("node0", "id-0").await.unwrap(), "same id again is a no-op");
    assert!(matches!(registry.register_peer("node0", "id-9").await, Err(RegistryError::Conflict { .. })));
    assert_eq!(registry.peers().await.unwrap().get("node0").map(String::as_str), Some("id-0"));

    assert_eq!(registry.keyinfo("ecdsa", "w:1").await.unwrap(), None);
    let info = KeyInfo {
        participant_peer_ids: vec!["a".into(), "b".into()],
        threshold: 1,
        version: 1,
        public_key: String::new(),
        public_shares: Default::default(),
        signatures: Default::default(),
        request: String::new(),
    };
    assert_eq!(
        serde_json::to_string(&info).unwrap(),
        r#"{"participant_peer_ids":["a","b"],"threshold":1,"version":1}"#,
        "the original's record shape when our additions are empty"
    );
    registry.put_keyinfo("ecdsa", "w:1", &info).await.unwrap();
    assert_eq!(registry.keyinfo("ecdsa", "w:1").await.unwrap(), Some(info));
    assert_eq!(registry.keyinfo("eddsa", "w:1").await.unwrap(), None);
}

#[tokio::test]
async fn a_request_is_claimed_once_and_a_participant_confirms_the_claim_it_finds() {
    use mpcium_node::registry::Claim;
    let server = NatsServer::start().unwrap();
    let js = async_nats::jetstream::new(async_nats::connect(server.url()).await.unwrap());
    let registry = Registry::open(&js, Heartbeat::every(Duration::from_secs(5))).await.unwrap();
    // The coordinator claims for its request message (stream sequence 7).
    assert_eq!(registry.claim_request("w:1", "tx-1", "7").await.unwrap(), Claim::New);
    assert_eq!(registry.claim_request("w:1", "tx-1", "7").await.unwrap(), Claim::Same);
    assert_eq!(registry.claim_request("w:1", "tx-1", "8").await.unwrap(), Claim::Duplicate);
    // A participant finds it: the same message, or another one (a replay).
    assert_eq!(registry.confirm_claim("w:1", "tx-1", "7").await.unwrap(), Claim::Same);
    assert_eq!(registry.confirm_claim("w:1", "tx-1", "8").await.unwrap(), Claim::Duplicate);
    // Nothing there yet (its coordinator's claim lost): the participant claims, and it sticks.
    assert_eq!(registry.confirm_claim("w:1", "tx-2", "9").await.unwrap(), Claim::New);
    assert_eq!(registry.claim_request("w:1", "tx-2", "10").await.unwrap(), Claim::Duplicate);
    assert_eq!(registry.confirm_claim("w:2", "tx-1", "8").await.unwrap(), Claim::New, "per wallet");
}
