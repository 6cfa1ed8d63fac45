//! A presignature is used once cluster-wide, not once per disk: copies brought back by restoring
//! old store files are refused (each signer's create-only record in `mpc_presig_used`), the
//! coordinator signs in full instead, and the signatures verify.

use std::time::Duration;

use mpcium_testkit::node::{Cluster, ecdsa_verify, total, wait_pools_full};

const WALLET: &str = "wallet-oneshot";
const POOL: usize = 2;

/// Stop every node and wait until each store file is closed (it opens again).
async fn stop_all(c: &mut Cluster) {
    for i in 0..3 {
        c.stop_node(i).await;
        let mut closed = false;
        for _ in 0..400 {
            if c.open_store(i).is_ok() {
                closed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(closed, "node{i}'s store stayed open");
    }
}

async fn start_all(c: &mut Cluster) {
    for i in 0..3 {
        c.start_node(i).await;
    }
    c.wait_all_ready().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn presignatures_from_a_restored_store_are_refused_and_signing_falls_back() {
    let (spec, ports) = mpcium_testkit::node::pool_cluster(3, 1, POOL, WALLET);
    let mut c = Cluster::start(spec).await;
    let w = c.client("oneshot-suite").await;
    let kg = w.keygen(WALLET).await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
    let pubkey = kg.ecdsa_pub_key.clone().unwrap();
    wait_pools_full(&ports, &[0, 1, 2], POOL).await;

    // Copy every node's store aside with its full pool (nodes stopped: redb is closed).
    stop_all(&mut c).await;
    let aside = tempfile::tempdir().unwrap();
    let mut held_before = Vec::new();
    for i in 0..3 {
        held_before.push(c.open_store(i).unwrap().presignature_ids(WALLET, "").unwrap());
        std::fs::copy(c.store_path(i), aside.path().join(format!("node{i}.db"))).unwrap();
    }
    assert!(held_before.iter().all(|ids| ids.len() >= POOL), "{held_before:?}");
    start_all(&mut c).await;

    // Sign: the coordinators use presignatures of the copied pools.
    for k in 0..6u8 {
        let digest = [k + 1; 32];
        let ev = w.sign(&w.sign_msg("secp256k1", WALLET, &format!("tx-first-{k}"), &digest, None)).await;
        assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
        ecdsa_verify(&pubkey, &digest, &ev);
    }
    let used_first = total(&ports, "mpcium_presign_used_total").await;
    assert!(used_first >= 1, "no signature used a presignature");
    assert_eq!(total(&ports, "mpcium_presign_reuse_refused_total").await, 0, "nothing was reused yet");

    // Put the old store files back: every signer of a used presignature holds its copy again.
    stop_all(&mut c).await;
    let mut restored_used = 0;
    for (i, held) in held_before.iter().enumerate() {
        let now: Vec<String> = c.open_store(i).unwrap().presignature_ids(WALLET, "").unwrap();
        restored_used += held.iter().filter(|id| !now.contains(id)).count();
        std::fs::copy(aside.path().join(format!("node{i}.db")), c.store_path(i)).unwrap();
        assert_eq!(&c.open_store(i).unwrap().presignature_ids(WALLET, "").unwrap(), held);
    }
    assert!(restored_used >= 2, "a used presignature has at least two signers: {restored_used}");
    start_all(&mut c).await;

    // Sign until a coordinator picks a restored, used presignature (each picks its oldest, and
    // the used ones are the oldest): it is refused, the signature is made in full, and verifies.
    let mut refused = 0;
    let mut signed = 0;
    for k in 0..30u8 {
        let digest = [k + 0x40; 32];
        let ev = w.sign(&w.sign_msg("secp256k1", WALLET, &format!("tx-again-{k}"), &digest, None)).await;
        assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
        ecdsa_verify(&pubkey, &digest, &ev);
        signed += 1;
        refused = total(&ports, "mpcium_presign_reuse_refused_total").await;
        if refused >= 1 && signed >= 6 {
            break;
        }
    }
    assert!(refused >= 1, "no restored presignature was refused in {signed} signatures");
    let missed = total(&ports, "mpcium_presign_missed_total").await;
    assert!(missed >= 1, "a refused presignature must make its coordinator sign in full");
    let used = total(&ports, "mpcium_presign_used_total").await;
    assert_eq!(used + missed, signed, "every ECDSA signature is counted once");
}
