//! The ECDSA presignature pool over a real cluster: pools fill in the background, signatures
//! use them (one online round) and verify, pools survive a restart, a co-signer that lost its
//! copies makes the coordinator fall back to a full signature, and a reshare retires the old
//! presignatures.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Cluster, ClusterSpec, ecdsa_verify, http_get};
use mpcium_node::presign::PresignSettings;

const WALLET: &str = "wallet-pool";
const POOL: usize = 3;

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing in:\n{text}"))
}

async fn metrics_of(ports: &[u16], i: usize) -> String {
    http_get(ports[i], "/metrics").await
}

async fn total(ports: &[u16], name: &str) -> u64 {
    let mut sum = 0;
    for i in 0..ports.len() {
        sum += metric(&metrics_of(ports, i).await, name);
    }
    sum
}

/// Wait until every running node owns a full pool.
async fn wait_pools_full(ports: &[u16], nodes: &[usize]) {
    for &i in nodes {
        let mut last = 0;
        for _ in 0..600 {
            last = metric(&metrics_of(ports, i).await, "mpcium_presign_pool_size");
            if last as usize >= POOL {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(last as usize >= POOL, "node{i} owns {last} presignatures, want {POOL}");
    }
}

/// Open a stopped node's store once its last tasks have let go of it.
async fn open_stopped_store(c: &Cluster, i: usize) -> mpcium_store::Store {
    for _ in 0..400 {
        if let Ok(s) = c.open_store(i) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    c.open_store(i).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signatures_use_the_pool_survive_restarts_and_fall_back_when_a_copy_is_gone() {
    let ports: Vec<u16> = (0..3).map(|_| mpcium_testkit::free_port().unwrap()).collect();
    let tweak_ports = ports.clone();
    let spec = ClusterSpec {
        tweak: Some(Arc::new(move |i, p: &mut mpcium_node::daemon::NodeParams| {
            p.service.presign = PresignSettings { pool_size: POOL, wallets: vec![WALLET.into()] };
            p.health_address = Some(format!("127.0.0.1:{}", tweak_ports[i]));
        })),
        ..ClusterSpec::new(3, 1)
    };
    let mut c = Cluster::start(spec).await;
    let w = c.client("pool-suite").await;
    let kg = w.keygen(WALLET).await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
    let pubkey = kg.ecdsa_pub_key.clone().unwrap();

    // Every node keeps POOL presignatures of its own for the listed wallet.
    wait_pools_full(&ports, &[0, 1, 2]).await;
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
    ecdsa_verify(&common::ecdsa_child(&pubkey, &c.chain_code, &path), &digest, &ev);

    // Pools are durable: restart every node; they come back full and still sign.
    wait_pools_full(&ports, &[0, 1, 2]).await;
    for i in 0..3 {
        c.restart_node(i).await;
    }
    c.wait_all_ready().await;
    wait_pools_full(&ports, &[0, 1, 2]).await;
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
    wait_pools_full(&ports, &[0, 1, 2]).await;
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
