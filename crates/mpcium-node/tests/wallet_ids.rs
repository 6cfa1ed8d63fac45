//! Wallet ids as the original's TypeScript client makes them (`<uuid>:<index>`) work end to end
//! over a real cluster: keygen, the presignature pool (its store keys escape the `:`) and
//! signatures that use it.

use std::time::Duration;

use mpcium_testkit::node::{Cluster, ecdsa_verify, http_get, metric};

const WALLET: &str = "0a7b2c9e-47c2-4d1e-9f3a-2b1c0d9e8f7a:0";
const POOL: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn presignature_pool_fills_and_signs_for_a_wallet_id_with_a_colon() {
    let (spec, ports) = mpcium_testkit::node::pool_cluster(3, 1, POOL, WALLET);
    let mut c = Cluster::start(spec).await;
    let w = c.client("colon-ids").await;
    let kg = w.keygen(WALLET).await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
    let pubkey = kg.ecdsa_pub_key.clone().unwrap();

    for (i, port) in ports.iter().enumerate() {
        let mut owned = 0;
        for _ in 0..1200 {
            owned = metric(&http_get(*port, "/metrics").await, "mpcium_presign_pool_size");
            if owned as usize >= POOL {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(owned as usize >= POOL, "node{i} owns {owned} presignatures of {WALLET}, want {POOL}");
    }

    let mut used = 0;
    for k in 0..3u8 {
        let digest = [k + 1; 32];
        let ev = w.sign(&w.sign_msg("secp256k1", WALLET, &format!("tx-colon-{k}"), &digest, None)).await;
        assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
        ecdsa_verify(&pubkey, &digest, &ev);
    }
    for port in &ports {
        used += metric(&http_get(*port, "/metrics").await, "mpcium_presign_used_total");
    }
    assert!(used >= 1, "no signature of {WALLET} used a presignature");

    // The records sit under the escaped key, and the store lists them by the plain wallet id.
    c.stop_node(0).await;
    let mut store = c.open_store(0);
    for _ in 0..400 {
        if store.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        store = c.open_store(0);
    }
    let store = store.unwrap();
    assert!(!store.presignature_ids(WALLET, "").unwrap().is_empty());
    assert!(store.keys_with_prefix("presig::").unwrap().len() >= POOL);
    assert!(store.keys_with_prefix(&format!("presig:{WALLET}")).unwrap().is_empty());
    for i in 1..3 {
        c.stop_node(i).await;
    }
}
