//! Presign sessions are rate-limited per owner: a node that floods a participant with presign
//! session starts is refused with `ERROR_RESOURCE_EXHAUSTED` once its burst is spent, while the
//! other owners' pools still refill through that participant, and signing goes on.

use std::collections::HashMap;
use std::time::Duration;

use mpcium_node::control::{Control, SessionOp, SessionStart};
use mpcium_node::envelope::Kind;
use mpcium_node::pairkey::ExchangeKey;
use mpcium_node::presign::{PRESIGN_BURST_MIN, PresigId};
use mpcium_node::registry::PeerDirectory;
use mpcium_node::transport::{Transport, done_id};
use mpcium_testkit::node::{Cluster, ecdsa_verify, http_get, metric, open_stopped_store, wait_pools_full};

const WALLET: &str = "wallet-flood";
const POOL: usize = 3;
const FLOOD: usize = 40;

/// A presign session start of owner node0 with co-signer node1, and its session id, exactly
/// as node0's refiller would announce it.
fn presign_start(version: u32) -> (SessionStart, [u8; 32]) {
    let participants = vec!["node0".to_owned(), "node1".to_owned()];
    let id = PresigId::new(version, "node0", &[1, 2]);
    let request = format!(r#"{{"wallet_id":"{WALLET}","key_type":"secp256k1"}}"#);
    let start = SessionStart::new(SessionOp::Presign, "node0", participants, version, 1, id.as_str())
        .with_request(request.as_bytes());
    let session = mpcium_node::service::announced_session_id(&start).expect("a well-formed start");
    (start, session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_presign_flood_from_one_owner_is_refused_and_other_owners_still_refill() {
    let (spec, ports) = mpcium_testkit::node::pool_cluster(3, 1, POOL, WALLET);
    let mut c = Cluster::start(spec).await;
    assert_eq!(c.ids, ["node0", "node1", "node2"]);
    let w = c.client("flood-suite").await;
    let kg = w.keygen(WALLET).await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
    let pubkey = kg.ecdsa_pub_key.clone().unwrap();
    wait_pools_full(&ports, &[0, 1, 2], POOL).await;

    // node0 turns malicious: it announces presign sessions to node1 as fast as it can.
    let identities: HashMap<String, _> =
        c.ids.iter().cloned().zip(c.keys.iter().map(|k| k.verifying_key())).collect();
    let dir = PeerDirectory::new("node0", identities, ExchangeKey::generate(), Duration::from_secs(5));
    let client = async_nats::connect(c.server.url()).await.unwrap();
    let flooder = Transport::new(client, c.keys[0].clone(), dir);
    let _starts = flooder.listen().await.unwrap();
    let mut reports = Vec::new();
    for _ in 0..FLOOD {
        let (start, session) = presign_start(1);
        reports.push(flooder.open_session(done_id(&session)));
        flooder
            .send_public(Kind::Control, session, u32::MAX, &["node1".into()], Control::Start(start).encode())
            .await
            .unwrap();
    }
    // The sessions within the burst run (and wait for node0's rounds); the others are refused
    // at once.
    let mut refused = 0;
    for inbox in &mut reports {
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), inbox.recv()).await
            && let Ok(Control::Done(d)) = Control::decode(&m.payload)
        {
            assert!(!d.ok, "{d:?}");
            assert_eq!(d.code, Some(mpcium_api::ErrorCode::ResourceExhausted), "{d:?}");
            refused += 1;
        }
    }
    // The burst, and what refills while the flood is sent, pass.
    assert!(refused >= FLOOD - PRESIGN_BURST_MIN - 10, "only {refused} of {FLOOD} refused");
    let throttled = metric(&http_get(ports[1], "/metrics").await, "mpcium_presign_throttled_total");
    assert!(throttled >= refused as u64, "node1 counted {throttled} refusals, {refused} seen");

    // Another owner refills through node1 as before: node2 lost its pool, and with node0 gone
    // node1 is its only possible co-signer.
    c.stop_node(0).await;
    c.stop_node(2).await;
    let store = open_stopped_store(&c, 2).await;
    for id in store.presignature_ids(WALLET, "").unwrap() {
        assert!(store.delete_presignature(WALLET, &id).unwrap());
    }
    drop(store);
    c.start_node(2).await;
    wait_pools_full(&ports, &[2], POOL).await;
    let made = metric(&http_get(ports[2], "/metrics").await, "mpcium_presign_made_total");
    assert!(made as usize >= POOL, "node2 made {made} presignatures with node1");

    // Signing goes on and verifies.
    for k in 0..4u8 {
        let digest = [k + 1; 32];
        let ev = w.sign(&w.sign_msg("secp256k1", WALLET, &format!("tx-flood-{k}"), &digest, None)).await;
        assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
        ecdsa_verify(&pubkey, &digest, &ev);
    }
}
