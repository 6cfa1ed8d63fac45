//! The key pool (`key_pool.size`) in a real 3-node cluster (t=1) on a real nats-server: keys
//! made ahead go to one wallet each, the wallets sign under the keys the keygen reported, the
//! pool fills again; and a coordinator (node2, feature `test-malice`, announcing with its own
//! identity) cannot hand a pooled key to a wallet it chose, hand another node's pooled key, or
//! hand one key to two wallets, not even from a copied disk. Lines of THREAT-MODEL.md.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mpcium_api::{ErrorCode, KeygenResultEvent};
use mpcium_node::control::{SessionOp, SessionStart};
use mpcium_node::keypool::{KeyPoolSettings, PoolId};
use mpcium_store::{ShareKind, Store};
use mpcium_testkit::node::{
    Cluster, ClusterSpec, WireClient, assert_all_refused, ecdsa_verify, eddsa_verify, taproot_verify,
};

const ATTACKER: usize = 2;
const HONEST: [usize; 2] = [0, 1];
/// Keys each node keeps made ahead.
const POOL: usize = 2;

type Stores = Arc<Mutex<Vec<Option<Arc<Store>>>>>;

/// A cluster of 3 nodes (t=1) keeping `POOL` keys made ahead each, and a handle on each store.
async fn cluster() -> (Cluster, Stores) {
    let stores: Stores = Arc::new(Mutex::new(vec![None, None, None]));
    let seen = stores.clone();
    let spec = ClusterSpec {
        tweak: Some(Arc::new(move |i, params| {
            params.service.key_pool = KeyPoolSettings { size: POOL };
            // A forged hand-over the attacker does not take part in ends at this timeout.
            params.service.session_timeout = Duration::from_secs(10);
            seen.lock().unwrap()[i] = Some(params.store.clone());
        })),
        ..ClusterSpec::new(3, 1)
    };
    (Cluster::start(spec).await, stores)
}

fn store(stores: &Stores, i: usize) -> Arc<Store> {
    stores.lock().unwrap()[i].clone().expect("node started")
}

/// The pooled key ids node `i` holds.
fn pooled(stores: &Stores, i: usize) -> BTreeSet<String> {
    store(stores, i).pooled_key_ids("").unwrap().into_iter().collect()
}

/// Wait until every node holds `POOL` pooled keys of every owner.
async fn wait_full(stores: &Stores, c: &Cluster) {
    for _ in 0..1200 {
        let full = (0..3).all(|i| {
            let held = pooled(stores, i);
            c.ids.iter().all(|owner| PoolId::owned_by(held.iter().cloned(), owner).len() >= POOL)
        });
        if full {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the pools did not fill: {:?}", (0..3).map(|i| pooled(stores, i)).collect::<Vec<_>>());
}

/// A signature with each of the wallet's three keys, verified under the keys of its keygen.
async fn sign_all(w: &WireClient, wallet: &str, kg: &KeygenResultEvent) {
    let digest = [7u8; 32];
    let ev = w.sign(&w.sign_msg("secp256k1", wallet, &format!("{wallet}-e"), &digest, None)).await;
    ecdsa_verify(kg.ecdsa_pub_key.as_deref().unwrap(), &digest, &ev);
    let ev = w.sign(&w.sign_msg("ed25519", wallet, &format!("{wallet}-d"), b"solana tx", None)).await;
    eddsa_verify(kg.eddsa_pub_key.as_deref().unwrap(), b"solana tx", &ev);
    let ev = w.sign(&w.sign_msg("taproot", wallet, &format!("{wallet}-t"), &digest, None)).await;
    taproot_verify(kg.taproot_pub_key.as_deref().unwrap(), None, &digest, &ev);
}

async fn presig_used_kv(c: &Cluster) -> async_nats::jetstream::kv::Store {
    let client = async_nats::connect(c.server.url()).await.unwrap();
    async_nats::jetstream::new(client).get_key_value(mpcium_node::registry::PRESIG_USED_BUCKET).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keygens_take_keys_made_ahead_once_and_the_pool_fills_again() {
    let (c, stores) = cluster().await;
    wait_full(&stores, &c).await;
    let w = c.client("key-pool").await;
    let used_kv = presig_used_kv(&c).await;
    for wallet in ["pool-w1", "pool-w2", "pool-w3"] {
        let before: Vec<BTreeSet<String>> = (0..3).map(|i| pooled(&stores, i)).collect();
        let kg = w.keygen(wallet).await;
        assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
        // Exactly one pooled key left every node's store: the same one everywhere.
        let gone: Vec<BTreeSet<String>> =
            (0..3).map(|i| before[i].difference(&pooled(&stores, i)).cloned().collect()).collect();
        assert_eq!(gone[0].len(), 1, "{wallet}: pooled keys gone at node0: {gone:?}");
        assert!(gone.iter().all(|g| *g == gone[0]), "{wallet}: different keys gone: {gone:?}");
        let id = gone[0].iter().next().unwrap().clone();
        for (i, node) in c.ids.iter().enumerate() {
            // Each holder recorded the hand-over cluster-wide, naming the wallet.
            let key = mpcium_node::registry::pooled_key_used_key(node, &id);
            let record = used_kv.get(&key).await.unwrap().unwrap_or_else(|| panic!("no record {key}"));
            assert_eq!(&record[..], wallet.as_bytes());
            // And holds the wallet's three shares.
            for kind in [ShareKind::Ecdsa, ShareKind::Eddsa, ShareKind::Taproot] {
                assert_eq!(
                    store(&stores, i).share_versions(kind, wallet).unwrap(),
                    vec![1],
                    "{node} {kind:?}"
                );
            }
        }
        sign_all(&w, wallet, &kg).await;
    }
    wait_full(&stores, &c).await;
    // A keygen request for an existing wallet hands nothing over.
    let before: Vec<BTreeSet<String>> = (0..3).map(|i| pooled(&stores, i)).collect();
    let again = w.keygen("pool-w1").await;
    assert_eq!(again.result_type.as_str(), "error", "{again:?}");
    assert_eq!(again.error_code, Some(ErrorCode::KeyAlreadyExists), "{again:?}");
    assert_eq!(before, (0..3).map(|i| pooled(&stores, i)).collect::<Vec<_>>(), "a pooled key was spent");
}

fn keygen_start(c: &Cluster, body: &[u8], request_id: &str, pooled_key: &str) -> SessionStart {
    SessionStart {
        pooled_key: Some(pooled_key.to_owned()),
        ..SessionStart::new(SessionOp::Keygen, &c.ids[ATTACKER], c.ids.clone(), 1, 1, request_id)
    }
    .with_request(body)
}

/// Whether honest node `i` holds a share of `wallet`.
fn holds_wallet(stores: &Stores, i: usize, wallet: &str) -> bool {
    [ShareKind::Ecdsa, ShareKind::Eddsa, ShareKind::Taproot]
        .iter()
        .any(|k| !store(stores, i).share_versions(*k, wallet).unwrap().is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_coordinator_cannot_hand_a_pooled_key_to_two_wallets_or_hand_another_nodes_key() {
    let (c, stores) = cluster().await;
    let attacker = c.node(ATTACKER).transport();
    wait_full(&stores, &c).await;
    let w = c.client("key-pool-insider").await;
    let honest_key = PoolId::owned_by(pooled(&stores, 0), &c.ids[0]).remove(0);
    let own = PoolId::owned_by(pooled(&stores, 0), &c.ids[ATTACKER]).remove(0);

    // Another node's pooled key, for a wallet the client asked for.
    let body = w.keygen_body("forged-a");
    let outcomes =
        c.announce(attacker, keygen_start(&c, &body, "forged-a#1.1", honest_key.as_str()), &HONEST).await;
    assert_all_refused(&outcomes, ErrorCode::MessageVerification, "another node's pooled key");
    // A pooled key nobody holds.
    let unknown = PoolId::new(&c.ids[ATTACKER]);
    let outcomes =
        c.announce(attacker, keygen_start(&c, &body, "forged-a#2.1", unknown.as_str()), &HONEST).await;
    assert_all_refused(&outcomes, ErrorCode::KeyNotFound, "a pooled key nobody holds");

    // Its own pooled key, handed over without taking part itself (only the honest nodes hear
    // the announcement): the honest nodes record the hand-over, then wait for the attacker in
    // the agreement round and give up; neither stores the wallet, and the key is spent.
    let copies: Vec<Vec<u8>> = HONEST
        .iter()
        .map(|i| store(&stores, *i).pooled_key(own.as_str()).unwrap().unwrap().to_vec())
        .collect();
    let outcomes = c.announce(attacker, keygen_start(&c, &body, "forged-a#3.1", own.as_str()), &HONEST).await;
    assert_all_refused(&outcomes, ErrorCode::SessionTimeout, "a hand-over the owner does not finish");
    for i in HONEST {
        assert!(!holds_wallet(&stores, i, "forged-a"), "node{i} stored a wallet the others did not");
        assert!(store(&stores, i).pooled_key(own.as_str()).unwrap().is_none(), "node{i} kept a spent key");
    }

    // The same key from a copied disk, for another wallet: refused by the cluster-wide record.
    for (i, copy) in HONEST.iter().zip(&copies) {
        store(&stores, *i).put_pooled_key(own.as_str(), copy).unwrap();
    }
    let body = w.keygen_body("forged-b");
    let outcomes = c.announce(attacker, keygen_start(&c, &body, "forged-b#1.1", own.as_str()), &HONEST).await;
    assert_all_refused(&outcomes, ErrorCode::SessionDuplicate, "a spent pooled key from a copied disk");
    for i in HONEST {
        assert!(!holds_wallet(&stores, i, "forged-b"), "node{i} stored forged-b");
    }

    // The wallets the client asked for are still made, on the cluster's terms, when it asks.
    for wallet in ["forged-a", "forged-b"] {
        let kg = w.keygen(wallet).await;
        assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
        sign_all(&w, wallet, &kg).await;
    }
}
