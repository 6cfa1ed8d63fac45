//! Taproot (issue #12) over a real cluster: a nats-server process and four nodes (t=1). Keygen
//! makes the wallet's Taproot key with its other two; BIP340 signatures for the BIP86 output
//! key, for a script tree's merkle root and for an HD child are each checked by an independent
//! verifier (k256's `schnorr`, not the engine's frost crate) under the output key Q that
//! `mpcium_tss::taproot::output_key` computes from the internal key P of the keygen event. The
//! key is reshared 4→3 and 3→4 and refreshed, and signs again under the same P. A wallet made before Taproot
//! support answers `ERROR_KEY_NOT_FOUND` with its reason; a merkle root altered after the client
//! signed is refused.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use mpcium_api::{ErrorCode, SigningResultEvent};
use mpcium_client::ResultTrust;
use mpcium_node::registry::{KEYINFO_BUCKET, keyinfo_key};
use mpcium_node::service::NO_TAPROOT_KEY;
use mpcium_store::{ShareKind, Store};
use mpcium_testkit::node::{Cluster, ClusterSpec, WireClient, ecdsa_verify};

const WALLET: &str = "w-taproot";

/// BIP340, by RustCrypto's k256: `signature` over `message` under the x-only key `q`.
fn bip340_verify(q: &[u8; 32], message: &[u8; 32], signature: &[u8]) -> Result<(), k256::schnorr::Error> {
    let key = k256::schnorr::VerifyingKey::from_bytes(&(*q).into())?;
    let sig = k256::schnorr::Signature::try_from(signature)?;
    key.verify_raw(message, &sig)
}

/// A success whose 64-byte signature verifies under `q` (and only the signature: `r`/`s` null),
/// with `q` as its verifying key.
fn assert_taproot(ev: &SigningResultEvent, q: &[u8; 32], message: &[u8; 32]) {
    assert_eq!(ev.error_code, None, "{}", ev.error_reason);
    assert_eq!((&ev.r, &ev.s, &ev.signature_recovery), (&None, &None, &None), "{ev:?}");
    let sig = ev.signature.as_deref().expect("a signature");
    assert_eq!(sig.len(), 64);
    bip340_verify(q, message, sig).expect("BIP340 signature under the output key");
    assert_eq!(ev.verifying_key.as_deref(), Some(q.as_slice()));
}

fn output_key(p: &[u8; 32], merkle_root: Option<&[u8; 32]>) -> [u8; 32] {
    mpcium_tss::taproot::output_key(p, merkle_root).unwrap()
}

async fn sign_bip86(w: &WireClient, p: &[u8; 32], tx_id: &str, sighash: [u8; 32]) -> SigningResultEvent {
    let ev = w.sign_request(&w.taproot_msg(WALLET, tx_id, &sighash, None, None)).await;
    assert_taproot(&ev, &output_key(p, None), &sighash);
    ev
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn taproot_signs_bip86_merkle_root_and_hd_and_keeps_its_key_through_reshares() {
    let stores: Arc<Mutex<Vec<Option<Arc<Store>>>>> = Arc::new(Mutex::new(vec![None; 4]));
    let seen = stores.clone();
    let spec = ClusterSpec {
        tweak: Some(Arc::new(move |i, params| seen.lock().unwrap()[i] = Some(params.store.clone()))),
        ..ClusterSpec::new(4, 1)
    };
    let c = Cluster::start(spec).await;
    let w = c.client("taproot").await;
    let trust = ResultTrust::new(
        c.ids.iter().cloned().zip(c.keys.iter().map(|k| k.verifying_key())).collect::<BTreeMap<_, _>>(),
        1,
    );

    // Keygen: three keys, all attested (the Taproot key too).
    let kg = w.keygen(WALLET).await;
    assert_eq!(kg.error_code, None, "{}", kg.error_reason);
    let p: [u8; 32] = kg.taproot_pub_key.clone().expect("taproot_pub_key").try_into().unwrap();
    assert_eq!(kg.ecdsa_pub_key.as_ref().map(Vec::len), Some(64));
    assert_eq!(kg.eddsa_pub_key.as_ref().map(Vec::len), Some(32));
    trust.check_keygen(&kg).expect("every node vouches for the three keys");
    for (i, store) in stores.lock().unwrap().iter().enumerate() {
        let versions = store.as_ref().unwrap().share_versions(ShareKind::Taproot, WALLET).unwrap();
        assert_eq!(versions, [1], "node{i}");
    }

    // (a) BIP86: Q = P + H_TapTweak(P)·G.
    let sighash = [0x5a; 32];
    let req = w.taproot_msg(WALLET, "tx-bip86", &sighash, None, None);
    let ev = w.sign_request(&req).await;
    assert_taproot(&ev, &output_key(&p, None), &sighash);
    trust.check_signing(&req.message, &ev).expect("t+1 nodes vouch for the signature");

    // (b) A script tree's merkle root: Q = P + H_TapTweak(P ‖ root)·G, not the BIP86 key.
    let root = [0xc3; 32];
    let ev = w.sign_request(&w.taproot_msg(WALLET, "tx-root", &sighash, None, Some(root))).await;
    let q_root = output_key(&p, Some(&root));
    assert_taproot(&ev, &q_root, &sighash);
    assert!(bip340_verify(&output_key(&p, None), &sighash, ev.signature.as_deref().unwrap()).is_err());

    // (c) HD: the child of lift(P) at the path (cluster chain code), then BIP86 on the child.
    let path = vec![0, 7, 42];
    let ev = w.sign_request(&w.taproot_msg(WALLET, "tx-hd", &sighash, Some(path.clone()), None)).await;
    let lifted: [u8; 33] = [&[0x02][..], &p].concat().try_into().unwrap();
    let child = mpcium_tss::taproot::derive_child(&lifted, &c.chain_code, &path).unwrap();
    assert_ne!(child.x_only, p);
    assert_taproot(&ev, &output_key(&child.x_only, None), &sighash);
    // A path and a root together.
    let ev =
        w.sign_request(&w.taproot_msg(WALLET, "tx-hd-root", &sighash, Some(path.clone()), Some(root))).await;
    assert_taproot(&ev, &output_key(&child.x_only, Some(&root)), &sighash);

    // A merkle root altered after the client signed: the initiator signature does not cover it.
    let mut altered = w.taproot_msg(WALLET, "tx-altered", &sighash, None, Some(root));
    altered.taproot_merkle_root = Some(vec![0xc4; 32]);
    let ev = w.sign_request(&altered).await;
    assert_eq!(ev.error_code, Some(ErrorCode::InvalidInitiatorSignature), "{}", ev.error_reason);
    // Nor is a root removed after signing.
    let mut stripped = w.taproot_msg(WALLET, "tx-stripped", &sighash, None, Some(root));
    stripped.taproot_merkle_root = None;
    let ev = w.sign_request(&stripped).await;
    assert_eq!(ev.error_code, Some(ErrorCode::InvalidInitiatorSignature), "{}", ev.error_reason);
    // A sighash that is not 32 bytes, and a root on an ECDSA request, are refused before signing.
    let short = w.sign_msg("taproot", WALLET, "tx-short", &[1; 31], None);
    let ev = w.sign(&short).await;
    assert_eq!(ev.error_code, Some(ErrorCode::MsgValidation), "{}", ev.error_reason);
    let mut ecdsa_root = w.taproot_msg(WALLET, "tx-ecdsa-root", &sighash, None, Some(root));
    ecdsa_root.message.key_type = mpcium_api::KeyType::Secp256k1;
    let ev = w.sign_request(&ecdsa_root).await;
    assert_eq!(ev.error_code, Some(ErrorCode::MsgValidation), "{}", ev.error_reason);

    // Reshare 4→3 (t=1), then 3→4 (t=2): the same P, and signatures verify under its Q.
    let rs = w.reshare("taproot", WALLET, "rs-taproot-1", &["node0", "node1", "node2"], 1).await;
    assert_eq!(rs.error_code, None, "{}", rs.error_reason);
    assert_eq!(rs.pub_key.as_deref(), Some(p.as_slice()), "reshare keeps the internal key");
    sign_bip86(&w, &p, "tx-after-rs-1", [0x61; 32]).await;
    let rs = w.reshare("taproot", WALLET, "rs-taproot-2", &["node0", "node1", "node2", "node3"], 2).await;
    assert_eq!(rs.error_code, None, "{}", rs.error_reason);
    assert_eq!(rs.pub_key.as_deref(), Some(p.as_slice()), "reshare keeps the internal key");
    sign_bip86(&w, &p, "tx-after-rs-2", [0x62; 32]).await;
    let ev = w.sign_request(&w.taproot_msg(WALLET, "tx-after-rs-2-root", &sighash, None, Some(root))).await;
    assert_taproot(&ev, &q_root, &sighash);
    // A refresh (same committee and threshold, new shares): the same P again.
    let rs = w.reshare("taproot", WALLET, "rs-taproot-3", &["node0", "node1", "node2", "node3"], 2).await;
    assert_eq!(rs.error_code, None, "{}", rs.error_reason);
    assert_eq!(rs.pub_key.as_deref(), Some(p.as_slice()), "refresh keeps the internal key");
    sign_bip86(&w, &p, "tx-after-refresh", [0x63; 32]).await;
    let kv = async_nats::jetstream::new(async_nats::connect(c.server.url()).await.unwrap())
        .get_key_value(KEYINFO_BUCKET)
        .await
        .unwrap();
    let info: mpcium_node::registry::KeyInfo =
        serde_json::from_slice(&kv.get(keyinfo_key("taproot", WALLET)).await.unwrap().unwrap()).unwrap();
    assert_eq!((info.version, info.threshold, info.participant_peer_ids.len()), (4, 2, 4));
    // The other keys were not touched by the Taproot reshares.
    let digest = [0x77; 32];
    let ev = w.sign(&w.sign_msg("secp256k1", WALLET, "tx-ecdsa", &digest, None)).await;
    ecdsa_verify(kg.ecdsa_pub_key.as_deref().unwrap(), &digest, &ev);

    // A wallet made before Taproot support: its ECDSA and EdDSA keys only (played by removing
    // the Taproot key info and shares of a new wallet).
    let old = w.keygen("w-before-taproot").await;
    assert_eq!(old.error_code, None, "{}", old.error_reason);
    kv.delete(keyinfo_key("taproot", "w-before-taproot")).await.unwrap();
    for store in stores.lock().unwrap().iter() {
        assert!(store.as_ref().unwrap().delete_share(ShareKind::Taproot, "w-before-taproot", 1).unwrap());
    }
    let req = w.taproot_msg("w-before-taproot", "tx-before", &sighash, None, None);
    let ev = w.sign_request(&req).await;
    assert_eq!(ev.error_code, Some(ErrorCode::KeyNotFound), "{}", ev.error_reason);
    assert_eq!(ev.error_reason, NO_TAPROOT_KEY);
    let rs = w.reshare("taproot", "w-before-taproot", "rs-before", &["node0", "node1", "node2"], 1).await;
    assert_eq!(rs.error_code, Some(ErrorCode::KeyNotFound), "{}", rs.error_reason);
    assert_eq!(rs.error_reason, NO_TAPROOT_KEY);
    let ev = w.sign(&w.sign_msg("secp256k1", "w-before-taproot", "tx-before-ecdsa", &digest, None)).await;
    ecdsa_verify(old.ecdsa_pub_key.as_deref().unwrap(), &digest, &ev);
    // A wallet that does not exist at all says so.
    let ev = w.sign_request(&w.taproot_msg("w-nowhere", "tx-nowhere", &sighash, None, None)).await;
    assert_eq!(ev.error_code, Some(ErrorCode::KeyNotFound), "{}", ev.error_reason);
    assert!(ev.error_reason.contains("not found"), "{}", ev.error_reason);
}

/// Presignatures are DKLs23's: with the wallet's pools full, Taproot signatures neither use nor
/// miss one (the counters of the ECDSA path stay still) and leave the pools as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn taproot_signatures_never_take_a_presignature() {
    use mpcium_testkit::node::{taproot_verify, total, wait_pools_full};
    const POOL: usize = 2;
    let (spec, ports) = mpcium_testkit::node::pool_cluster(3, 1, POOL, "w-pool-taproot");
    let c = Cluster::start(spec).await;
    let w = c.client("taproot-pool").await;
    let kg = w.keygen("w-pool-taproot").await;
    assert_eq!(kg.error_code, None, "{}", kg.error_reason);
    wait_pools_full(&ports, &[0, 1, 2], POOL).await;
    let counters = async || {
        (
            total(&ports, "mpcium_presign_used_total").await,
            total(&ports, "mpcium_presign_missed_total").await,
            total(&ports, "mpcium_presign_pool_size").await,
        )
    };
    let before = counters().await;
    for k in 0..4u8 {
        let sighash = [k + 1; 32];
        let ev = w
            .sign_request(&w.taproot_msg("w-pool-taproot", &format!("tx-tp-{k}"), &sighash, None, None))
            .await;
        taproot_verify(kg.taproot_pub_key.as_deref().unwrap(), None, &sighash, &ev);
    }
    assert_eq!(counters().await, before, "a Taproot signature touched the presignature pool");
    // The same counters do move for an ECDSA signature (so the check above can fail).
    let digest = [9u8; 32];
    let ev = w.sign(&w.sign_msg("secp256k1", "w-pool-taproot", "tx-ecdsa-pool", &digest, None)).await;
    ecdsa_verify(kg.ecdsa_pub_key.as_deref().unwrap(), &digest, &ev);
    let (used, missed, _) = counters().await;
    assert_eq!(used + missed, before.0 + before.1 + 1);
}
