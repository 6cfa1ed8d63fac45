//! The ECDSA presignature pool over a real cluster: pools fill in the background, signatures
//! use them (one online round) and verify, pools survive a restart, a co-signer that lost its
//! copies makes the coordinator fall back to a full signature, and a reshare retires the old
//! presignatures.

use mpcium_testkit::node::{Cluster, ecdsa_verify, open_stopped_store, total, wait_pools_full};

const WALLET: &str = "wallet-pool";
const POOL: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signatures_use_the_pool_survive_restarts_and_fall_back_when_a_copy_is_gone() {
    let (spec, ports) = mpcium_testkit::node::pool_cluster(3, 1, POOL, WALLET);
    let mut c = Cluster::start(spec).await;
    let w = c.client("pool-suite").await;
    let kg = w.keygen(WALLET).await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
    let pubkey = kg.ecdsa_pub_key.clone().unwrap();

    // Every node keeps POOL presignatures of its own for the listed wallet.
    wait_pools_full(&ports, &[0, 1, 2], POOL).await;
    let made = total(&ports, "mpcium_presign_made_total").await;
    assert!(made >= 3 * POOL as u64, "made {made}");

    // Signatures with presignatures verify; each takes one from its coordinator's pool.
    for k in 0..6u8 {
        let digest = [k + 1; 32];
        let ev = w.sign(&w.sign_msg("secp256k1", WALLET, &format!("tx-pool-{k}"), &digest, None)).await;
        assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
        ecdsa_verify(&pubkey, &digest, &ev);
    }
    let used = total(&ports, "mpcium_presign_used_total").await;
    assert!(used >= 1, "no signature used a presignature");
    assert_eq!(used + total(&ports, "mpcium_presign_missed_total").await, 6);

    // A presignature with a derivation path is not pooled: an HD signature signs in full.
    let path = vec![44, 60, 0, 0, 7];
    let digest = [0x77; 32];
    let ev = w.sign(&w.sign_msg("secp256k1", WALLET, "tx-pool-hd", &digest, Some(path.clone()))).await;
    assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
    ecdsa_verify(&mpcium_testkit::node::ecdsa_child(&pubkey, &c.chain_code, &path), &digest, &ev);

    // Pools are durable: restart every node; they come back full and still sign.
    wait_pools_full(&ports, &[0, 1, 2], POOL).await;
    for i in 0..3 {
        c.restart_node(i).await;
    }
    c.wait_all_ready().await;
    wait_pools_full(&ports, &[0, 1, 2], POOL).await;
    assert_eq!(total(&ports, "mpcium_presign_made_total").await, 0, "nothing had to be remade");

    // node1 loses every presignature copy it holds (as after restoring an old disk): the
    // coordinators whose presignatures need node1 fall back to a full signature.
    c.stop_node(1).await;
    {
        let store = open_stopped_store(&c, 1).await;
        for id in store.presignature_ids(WALLET, "").unwrap() {
            assert!(store.delete_presignature(WALLET, &id).unwrap());
        }
    }
    c.restart_node(1).await;
    c.wait_all_ready().await;
    for k in 0..6u8 {
        let digest = [k + 0x40; 32];
        let ev = w.sign(&w.sign_msg("secp256k1", WALLET, &format!("tx-fallback-{k}"), &digest, None)).await;
        assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
        ecdsa_verify(&pubkey, &digest, &ev);
    }

    // A reshare retires the old presignatures; the pools refill for the new version and sign.
    let rs = w.reshare("secp256k1", WALLET, "pool-reshare", &["node0", "node1", "node2"], 1).await;
    assert_eq!(rs.result_type.as_str(), "success", "{rs:?}");
    wait_pools_full(&ports, &[0, 1, 2], POOL).await;
    for k in 0..3u8 {
        let digest = [k + 0x60; 32];
        let ev = w.sign(&w.sign_msg("secp256k1", WALLET, &format!("tx-after-{k}"), &digest, None)).await;
        assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
        ecdsa_verify(&pubkey, &digest, &ev);
    }
    for i in 0..3 {
        c.stop_node(i).await;
        let store = open_stopped_store(&c, i).await;
        let ids = store.presignature_ids(WALLET, "").unwrap();
        assert!(!ids.is_empty());
        assert!(ids.iter().all(|id| id.starts_with("v2-")), "only version-2 presignatures remain: {ids:?}");
    }
}

/// A key holder where the wallet is not warm refuses an owner's presign sessions; the owner
/// leaves it out of that wallet's refills for `COLD_RETRY` and fills its pool with the other
/// co-signers, instead of asking it again at every refill (issue #16: before, each refill failed
/// at its first refusal and the pool filled at a fraction of its pace).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_owner_fills_its_pool_without_a_cosigner_where_the_wallet_is_not_warm() {
    const WALLET: &str = "wallet-cold";
    const POOL: usize = 6;
    let (mut spec, ports) = mpcium_testkit::node::pool_cluster(3, 1, POOL, WALLET);
    // node2 holds the key but keeps only another wallet warm.
    let listed = spec.tweak.take().unwrap();
    spec.tweak = Some(std::sync::Arc::new(move |i, p: &mut mpcium_node::daemon::NodeParams| {
        listed(i, p);
        if i == 2 {
            p.service.presign.wallets = vec!["another-wallet".into()];
        }
    }));
    let c = Cluster::start(spec).await;
    let w = c.client("cold-suite").await;
    let kg = w.keygen(WALLET).await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
    let pubkey = kg.ecdsa_pub_key.clone().unwrap();
    wait_pools_full(&ports, &[0, 1], POOL).await;

    // Signatures take presignatures, and every use wakes a refill.
    for k in 0..12u8 {
        let digest = [k + 0x11; 32];
        let ev = w.sign(&w.sign_msg("secp256k1", WALLET, &format!("tx-cold-{k}"), &digest, None)).await;
        assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
        ecdsa_verify(&pubkey, &digest, &ev);
    }
    wait_pools_full(&ports, &[0, 1], POOL).await;
    let used = total(&ports, "mpcium_presign_used_total").await;
    assert!(used >= 6, "signatures used presignatures: {used}");
    // node2 was asked (and refused) only in each owner's first refill: at most one batch of
    // REFILL_IN_FLIGHT sessions per owner within COLD_RETRY.
    let refused = total(&ports[2..], "mpcium_presign_refused_not_warm_total").await;
    let batch = mpcium_node::presign::REFILL_IN_FLIGHT as u64;
    assert!((1..=2 * batch).contains(&refused), "node2 refused {refused} presign sessions");
    assert_eq!(total(&ports[..2], "mpcium_presign_refused_not_warm_total").await, 0);
}
