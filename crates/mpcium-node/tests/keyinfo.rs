//! Signed key info (insider issue, item 4): every node may write `mpc_keyinfo`, so nodes believe
//! a key info only when every holder it lists signed it, and never one older than a share they
//! hold. A malicious node's writes are played by writing the bucket directly (what its NATS
//! credentials allow), signing with its real identity key where that helps it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _};
use mpcium_api::ErrorCode;
use mpcium_node::registry::{KEYINFO_BUCKET, KeyInfo, keyinfo_key};
use mpcium_node::service::keyinfo_statement;
use mpcium_testkit::node::{Cluster, ClusterSpec, eddsa_verify};

const WALLET: &str = "w-keyinfo";

async fn read(kv: &async_nats::jetstream::kv::Store, curve: &str) -> KeyInfo {
    let bytes = kv.get(keyinfo_key(curve, WALLET)).await.unwrap().expect("key info written");
    serde_json::from_slice(&bytes).unwrap()
}

async fn write(kv: &async_nats::jetstream::kv::Store, curve: &str, info: &KeyInfo) {
    kv.put(keyinfo_key(curve, WALLET), serde_json::to_vec(info).unwrap().into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn key_info_is_believed_only_when_signed_by_every_holder_and_never_rolled_back() {
    let c = Cluster::start(ClusterSpec::new(3, 1)).await;
    let client = c.client("keyinfo").await;
    let wallet = client.keygen(WALLET).await;
    assert_eq!(wallet.error_code, None, "{}", wallet.error_reason);
    let eddsa_key = wallet.eddsa_pub_key.clone().unwrap();

    let nats = async_nats::connect(c.server.url()).await.unwrap();
    let kv = async_nats::jetstream::new(nats).get_key_value(KEYINFO_BUCKET).await.unwrap();

    // Written by the coordinator with all three holders' signatures, each over this content.
    let genuine = read(&kv, "eddsa").await;
    assert_eq!(genuine.signatures.len(), 3);
    for (i, node) in c.ids.iter().enumerate() {
        let sig = Signature::from_slice(&STANDARD.decode(&genuine.signatures[node]).unwrap()).unwrap();
        let unsigned = KeyInfo { signatures: Default::default(), ..genuine.clone() };
        c.keys[i]
            .verifying_key()
            .verify_strict(&keyinfo_statement("eddsa", WALLET, &unsigned), &sig)
            .unwrap();
    }

    let mut n = 0;
    let mut sign = async |expect: Option<ErrorCode>| {
        n += 1;
        let tx = format!("message {n}");
        let ev =
            client.sign(&client.sign_msg("ed25519", WALLET, &format!("tx-{n}"), tx.as_bytes(), None)).await;
        assert_eq!(ev.error_code, expect, "{}", ev.error_reason);
        if expect.is_none() {
            eddsa_verify(&eddsa_key, tx.as_bytes(), &ev);
        }
        ev.error_reason
    };
    sign(None).await;

    // node2 (malicious) edits the content and keeps the signatures: threshold 0, or its own
    // public share; or strips the signatures; or signs a forged copy itself.
    let mut lowered = genuine.clone();
    lowered.threshold = 0;
    let mut forged_share = genuine.clone();
    forged_share.public_shares.insert(1, forged_share.public_shares[&3].clone());
    let stripped = KeyInfo { signatures: Default::default(), ..genuine.clone() };
    let mut self_signed = KeyInfo { threshold: 0, ..stripped.clone() };
    let sig = c.keys[2].sign(&keyinfo_statement("eddsa", WALLET, &self_signed)).to_bytes();
    self_signed.signatures.insert("node2".into(), STANDARD.encode(sig));
    for forged in [&lowered, &forged_share, &stripped, &self_signed] {
        write(&kv, "eddsa", forged).await;
        let reason = sign(Some(ErrorCode::KeyInfoLoad)).await;
        assert!(reason.contains("not signed by"), "{reason}");
    }
    write(&kv, "eddsa", &genuine).await;
    sign(None).await;

    // A reshare makes version 2, signed by the new committee; rolling the record back to the
    // (validly signed) version 1 is refused by the holders of version 2.
    let reshared =
        client.reshare("ed25519", WALLET, "reshare-keyinfo", &["node0", "node1", "node2"], 1).await;
    assert_eq!(reshared.error_code, None, "{}", reshared.error_reason);
    let v2 = read(&kv, "eddsa").await;
    assert_eq!((v2.version, v2.signatures.len()), (2, 3));
    sign(None).await;
    write(&kv, "eddsa", &genuine).await;
    let reason = sign(Some(ErrorCode::KeyInfoLoad)).await;
    assert!(reason.contains("holds version 2"), "{reason}");
    write(&kv, "eddsa", &v2).await;
    sign(None).await;
}

/// An old holder that neither deals nor stays (the session never hears of it) retires its old
/// share once the new key info, with the client's signed request in it, shows the reshare.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_old_holder_left_out_of_a_reshare_retires_its_share() {
    use std::sync::{Arc, Mutex};
    let stores: Arc<Mutex<Vec<Option<Arc<mpcium_store::Store>>>>> = Arc::new(Mutex::new(vec![None; 4]));
    let seen = stores.clone();
    let spec = ClusterSpec {
        tweak: Some(Arc::new(move |i, params| seen.lock().unwrap()[i] = Some(params.store.clone()))),
        ..ClusterSpec::new(4, 1)
    };
    let c = Cluster::start(spec).await;
    let client = c.client("left-out").await;
    let wallet = client.keygen("w-left").await;
    assert_eq!(wallet.error_code, None, "{}", wallet.error_reason);
    let versions = |i: usize| {
        let stores = stores.lock().unwrap();
        stores[i].as_ref().unwrap().share_versions(mpcium_store::ShareKind::Eddsa, "w-left").unwrap()
    };
    assert_eq!(versions(3), [1]);
    // t+1 = 2 dealers (node0, node1: the first ready old holders), new committee node0..node2:
    // node3 neither deals nor stays.
    let reshared = client.reshare("ed25519", "w-left", "reshare-left", &["node0", "node1", "node2"], 1).await;
    assert_eq!(reshared.error_code, None, "{}", reshared.error_reason);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !versions(3).is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "node3 still holds {:?}", versions(3));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The others keep what they need: the new holders version 2 (node0 and node1 drop version
    // 1 after their first signature with version 2), and the ECDSA key, not reshared, stays.
    for i in 0..3 {
        assert!(versions(i).contains(&2), "node{i}: {:?}", versions(i));
    }
    let ecdsa = stores.lock().unwrap()[3]
        .as_ref()
        .unwrap()
        .share_versions(mpcium_store::ShareKind::Ecdsa, "w-left")
        .unwrap();
    assert_eq!(ecdsa, [1]);
    let ev = client.sign(&client.sign_msg("ed25519", "w-left", "tx-left", b"after", None)).await;
    assert_eq!(ev.error_code, None, "{}", ev.error_reason);
    eddsa_verify(wallet.eddsa_pub_key.as_deref().unwrap(), b"after", &ev);
}
