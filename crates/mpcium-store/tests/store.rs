//! Store behaviour: encryption at rest, integrity, namespaces, password rotation.

use mpcium_store::rekey::{change_password, prepare_data_key_rotation, rotate_data_key};
use mpcium_store::{MAX_VALUE_LEN, RecordKey, ShareKind, Store, StoreError, StoreOptions};
use redb::{ReadableDatabase, TableDefinition};

const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("records");
const PW: &[u8] = b"correct horse battery staple";
const PW2: &[u8] = b"another long enough password";

fn opts() -> StoreOptions {
    StoreOptions::insecure_for_tests()
}

fn raw_get(path: &std::path::Path, key: &str) -> Vec<u8> {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let t = txn.open_table(RECORDS).unwrap();
    t.get(key).unwrap().unwrap().value().to_vec()
}

fn raw_put(path: &std::path::Path, key: &str, value: &[u8]) {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(RECORDS).unwrap().insert(key, value).unwrap();
    txn.commit().unwrap();
}

#[test]
fn round_trip_and_no_plaintext_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node0.db");
    let share = b"PLAINTEXT-MARKER-ecdsa-share".repeat(100);
    {
        let store = Store::create(&path, PW, &opts()).unwrap();
        store.put_share(ShareKind::Ecdsa, "wallet-1", 0, &share).unwrap();
        store.put_share(ShareKind::Eddsa, "wallet-1", 0, b"ed").unwrap();
        store.put_setup("pre_params_0", b"setup").unwrap();
        assert_eq!(
            store.get_share(ShareKind::Ecdsa, "wallet-1", 0).unwrap().unwrap().as_slice(),
            share.as_slice()
        );
        assert!(store.get_share(ShareKind::Ecdsa, "wallet-1", 1).unwrap().is_none());
    }
    let store = Store::open(&path, PW, &opts()).unwrap();
    assert_eq!(
        store.get_share(ShareKind::Ecdsa, "wallet-1", 0).unwrap().unwrap().as_slice(),
        share.as_slice()
    );
    assert_eq!(store.get_setup("pre_params_0").unwrap().unwrap().as_slice(), b"setup");
    assert_eq!(store.keys_with_prefix("ecdsa:").unwrap(), vec!["ecdsa:wallet-1_v0".to_owned()]);
    assert!(store.delete(&RecordKey::share(ShareKind::Eddsa, "wallet-1", 0).unwrap()).unwrap());
    assert!(store.get_share(ShareKind::Eddsa, "wallet-1", 0).unwrap().is_none());
    drop(store);
    let bytes = std::fs::read(&path).unwrap();
    assert!(!bytes.windows(16).any(|w| w == b"PLAINTEXT-MARKER"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
fn wrong_password_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    Store::create(&path, PW, &opts()).unwrap().put_setup("x", b"y").unwrap();
    let err = Store::open(&path, b"wrong password entirely", &opts()).unwrap_err();
    assert!(matches!(err, StoreError::WrongPassword), "{err}");
    assert!(err.to_string().contains("wrong password"));
}

#[test]
fn production_policy_refuses_weak_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(Store::create(&path, PW, &opts()).unwrap());
    let err = Store::open(&path, PW, &StoreOptions::production()).unwrap_err();
    assert!(matches!(err, StoreError::WeakKdf { .. }), "{err}");
    let err = Store::create(dir.path().join("t.db"), b"", &opts()).unwrap_err();
    assert!(matches!(err, StoreError::PasswordTooShort { len: 0, min: 1 }), "{err}");
}

/// One rule with config validation (`badger_password`) and the original: any non-empty
/// password, also under the production key-derivation policy.
#[test]
fn any_non_empty_password_creates_and_reopens_a_production_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(Store::create(&path, b"x", &StoreOptions::production()).unwrap());
    let s = Store::open(&path, b"x", &StoreOptions::production()).unwrap();
    drop(s);
    assert!(matches!(Store::open(&path, b"y", &StoreOptions::production()), Err(StoreError::WrongPassword)));
    let err = Store::open_or_create(dir.path().join("t.db"), b"", &StoreOptions::production()).unwrap_err();
    assert!(err.to_string().contains("must not be empty"), "{err}");
}

#[test]
fn flipped_byte_in_stored_value_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(Store::create(&path, PW, &opts()).unwrap().put_share(ShareKind::Ecdsa, "w", 0, &[7u8; 1000]));
    let mut raw = raw_get(&path, "ecdsa:w_v0");
    let mid = raw.len() / 2;
    raw[mid] ^= 0x01;
    raw_put(&path, "ecdsa:w_v0", &raw);
    let store = Store::open(&path, PW, &opts()).unwrap();
    let err = store.get_share(ShareKind::Ecdsa, "w", 0).unwrap_err();
    assert!(matches!(&err, StoreError::Corrupt { key } if key == "ecdsa:w_v0"), "{err}");
}

#[test]
fn value_swapped_between_keys_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let s = Store::create(&path, PW, &opts()).unwrap();
        s.put_share(ShareKind::Ecdsa, "alice", 0, b"alice share").unwrap();
        s.put_share(ShareKind::Ecdsa, "bob", 0, b"bob share").unwrap();
    }
    let alice = raw_get(&path, "ecdsa:alice_v0");
    raw_put(&path, "ecdsa:bob_v0", &alice);
    let s = Store::open(&path, PW, &opts()).unwrap();
    assert_eq!(s.get_share(ShareKind::Ecdsa, "alice", 0).unwrap().unwrap().as_slice(), b"alice share");
    let err = s.get_share(ShareKind::Ecdsa, "bob", 0).unwrap_err();
    assert!(matches!(&err, StoreError::Corrupt { key } if key == "ecdsa:bob_v0"), "{err}");
}

#[test]
fn keys_and_values_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::create(dir.path().join("s.db"), PW, &opts()).unwrap();
    assert!(matches!(RecordKey::new(""), Err(StoreError::InvalidKey { .. })));
    let too_big = vec![0u8; MAX_VALUE_LEN + 1];
    let err = s.put_setup("big", &too_big).unwrap_err();
    assert!(matches!(err, StoreError::ValueTooLarge { .. }), "{err}");
    assert!(s.get_setup("big").unwrap().is_none());
}

#[test]
fn presignature_take_is_one_shot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let s = Store::create(&path, PW, &opts()).unwrap();
        s.put_presignature("w1", "p1", b"presig-1").unwrap();
        s.put_presignature("w1", "p2", b"presig-2").unwrap();
        s.put_presignature("w2", "p1", b"other wallet").unwrap();
        assert_eq!(s.count_presignatures("w1").unwrap(), 2);
        assert_eq!(s.take_presignature("w1", "p1").unwrap().unwrap().as_slice(), b"presig-1");
        assert!(s.take_presignature("w1", "p1").unwrap().is_none());
    }
    // The take was durable: after reopening the taken presignature is still gone.
    let s = Store::open(&path, PW, &opts()).unwrap();
    assert!(s.take_presignature("w1", "p1").unwrap().is_none());
    let (id, v) = s.take_any_presignature("w1").unwrap().unwrap();
    assert_eq!((id.as_str(), v.as_slice()), ("p2", &b"presig-2"[..]));
    assert!(s.take_any_presignature("w1").unwrap().is_none());
    assert_eq!(s.count_presignatures("w2").unwrap(), 1);
}

#[test]
fn presignature_ids_by_prefix_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::create(dir.path().join("s.db"), PW, &opts()).unwrap();
    for id in ["v1-a-02", "v1-a-01", "v1-b-01", "v2-a-01"] {
        s.put_presignature("w", id, id.as_bytes()).unwrap();
    }
    s.put_presignature("w2", "v1-a-09", b"x").unwrap();
    assert_eq!(s.presignature_ids("w", "v1-a-").unwrap(), vec!["v1-a-01", "v1-a-02"]);
    assert_eq!(s.presignature_ids("w", "").unwrap().len(), 4);
    assert!(s.delete_presignature("w", "v1-a-01").unwrap());
    assert!(!s.delete_presignature("w", "v1-a-01").unwrap());
    assert_eq!(s.presignature_ids("w", "v1-a-").unwrap(), vec!["v1-a-02"]);
    assert!(s.take_presignature("w", "v1-a-01").unwrap().is_none());
    assert_eq!(s.presignature_ids("w2", "v1-").unwrap(), vec!["v1-a-09"]);
}

#[test]
fn presignature_ids_are_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::create(dir.path().join("s.db"), PW, &opts()).unwrap();
    s.put_presignature("w", "p1", b"first").unwrap();
    let err = s.put_presignature("w", "p1", b"second").unwrap_err();
    assert!(
        matches!(&err, StoreError::PresignatureExists { wallet_id, presig_id } if wallet_id == "w" && presig_id == "p1"),
        "{err}"
    );
    assert_eq!(s.take_presignature("w", "p1").unwrap().unwrap().as_slice(), b"first");
    // The same id in another wallet is another presignature.
    s.put_presignature("w2", "p1", b"other").unwrap();
}

#[test]
fn concurrent_takes_hand_out_each_presignature_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = std::sync::Arc::new(Store::create(dir.path().join("s.db"), PW, &opts()).unwrap());
    for i in 0..20 {
        s.put_presignature("w", &format!("p{i:02}"), format!("v{i}").as_bytes()).unwrap();
    }
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                while let Some((id, _)) = s.take_any_presignature("w").unwrap() {
                    got.push(id);
                }
                got
            })
        })
        .collect();
    let mut all: Vec<String> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    all.sort();
    let expected: Vec<String> = (0..20).map(|i| format!("p{i:02}")).collect();
    assert_eq!(all, expected);
}

#[test]
fn replay_journal_refuses_duplicates_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let s = Store::create(&path, PW, &opts()).unwrap();
        s.record_request("w1", "tx-1").unwrap();
        let err = s.record_request("w1", "tx-1").unwrap_err();
        assert!(matches!(err, StoreError::DuplicateRequest { .. }), "{err}");
        s.record_request("w1", "tx-2").unwrap();
        s.record_request("w2", "tx-1").unwrap();
    }
    let s = Store::open(&path, PW, &opts()).unwrap();
    assert!(s.contains_request("w1", "tx-1").unwrap());
    assert!(!s.contains_request("w1", "tx-3").unwrap());
    let err = s.record_request("w1", "tx-1").unwrap_err();
    assert!(
        matches!(&err, StoreError::DuplicateRequest { wallet_id, tx_id } if wallet_id == "w1" && tx_id == "tx-1")
    );
    assert!(err.to_string().contains("replay refused"));
}

#[test]
fn change_password_rewraps_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    Store::create(&path, PW, &opts()).unwrap().put_setup("a", b"value").unwrap();
    change_password(&path, PW, PW2, &opts()).unwrap();
    assert!(matches!(Store::open(&path, PW, &opts()), Err(StoreError::WrongPassword)));
    let s = Store::open(&path, PW2, &opts()).unwrap();
    assert_eq!(s.get_setup("a").unwrap().unwrap().as_slice(), b"value");
    drop(s);
    assert!(matches!(change_password(&path, PW, PW2, &opts()), Err(StoreError::WrongPassword)));
}

fn contents(s: &Store) -> Vec<(String, Vec<u8>)> {
    s.keys_with_prefix("")
        .unwrap()
        .into_iter()
        .map(|k| {
            let v = s.get(&RecordKey::new(k.clone()).unwrap()).unwrap().unwrap().to_vec();
            (k, v)
        })
        .collect()
}

#[test]
fn rotation_interrupted_before_rename_leaves_old_store_working() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let before = {
        let s = Store::create(&path, PW, &opts()).unwrap();
        s.put_share(ShareKind::Ecdsa, "w", 0, &[1u8; 5000]).unwrap();
        s.put_presignature("w", "p", b"presig").unwrap();
        s.record_request("w", "tx").unwrap();
        contents(&s)
    };
    // Crash simulation: the new file is fully written and synced, the rename never happens.
    let prepared = prepare_data_key_rotation(&path, PW, PW2, &opts()).unwrap();
    let staged = prepared.staged_path().to_owned();
    assert!(staged.exists());
    drop(prepared);
    let s = Store::open(&path, PW, &opts()).unwrap();
    assert_eq!(contents(&s), before);
    drop(s);
    assert!(matches!(Store::open(&path, PW2, &opts()), Err(StoreError::WrongPassword)));

    // A later rotation replaces the stale copy and completes.
    rotate_data_key(&path, PW, PW2, &opts()).unwrap();
    assert!(!staged.exists());
    assert!(matches!(Store::open(&path, PW, &opts()), Err(StoreError::WrongPassword)));
    let s = Store::open(&path, PW2, &opts()).unwrap();
    // Everything but the presignatures, which a rotation drops (a copy of the old file would
    // otherwise hold them too: two stores, two uses).
    let mut kept = before.clone();
    kept.retain(|(k, _)| !k.starts_with("presig:"));
    assert_eq!(kept.len(), before.len() - 1);
    assert_eq!(contents(&s), kept);
    assert_eq!(s.count_presignatures("w").unwrap(), 0);
    assert!(matches!(s.record_request("w", "tx"), Err(StoreError::DuplicateRequest { .. })));
}

#[test]
fn rotation_changes_the_data_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    Store::create(&path, PW, &opts()).unwrap().put_setup("a", b"value").unwrap();
    let before = raw_get(&path, "setup:a");
    rotate_data_key(&path, PW, PW2, &opts()).unwrap();
    let after = raw_get(&path, "setup:a");
    assert_ne!(before, after);
    // The old ciphertext does not decrypt under the new data key.
    raw_put(&path, "setup:a", &before);
    let s = Store::open(&path, PW2, &opts()).unwrap();
    assert!(matches!(s.get_setup("a"), Err(StoreError::Corrupt { .. })));
}

#[test]
fn second_open_is_refused_while_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let _s = Store::create(&path, PW, &opts()).unwrap();
    let err = Store::open(&path, PW, &opts()).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
}

#[test]
fn put_many_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::create(dir.path().join("s.db"), PW, &opts()).unwrap();
    let ecdsa = RecordKey::share(ShareKind::Ecdsa, "w", 0).unwrap();
    let eddsa = RecordKey::share(ShareKind::Eddsa, "w", 0).unwrap();
    s.put_many(&[(ecdsa.clone(), &b"e1"[..]), (eddsa.clone(), &b"d1"[..])]).unwrap();
    assert_eq!(s.get(&eddsa).unwrap().unwrap().as_slice(), b"d1");
    let too_big = vec![0u8; MAX_VALUE_LEN + 1];
    let err = s.put_many(&[(ecdsa.clone(), &b"e2"[..]), (eddsa.clone(), too_big.as_slice())]).unwrap_err();
    assert!(matches!(err, StoreError::ValueTooLarge { .. }));
    assert_eq!(s.get(&ecdsa).unwrap().unwrap().as_slice(), b"e1", "nothing of a refused batch is written");
}

#[test]
fn existing_parent_directory_mode_is_left_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    drop(Store::create(dir.path().join("s.db"), PW, &opts()).unwrap());
    assert_eq!(std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777, 0o755);
    let nested = dir.path().join("new/sub");
    drop(Store::create(nested.join("s.db"), PW, &opts()).unwrap());
    assert_eq!(std::fs::metadata(&nested).unwrap().permissions().mode() & 0o777, 0o700);
}

#[test]
fn shares_are_create_only_and_stored_together_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::create(dir.path().join("s.db"), PW, &opts()).unwrap();
    s.put_share(ShareKind::Ecdsa, "w", 1, b"live share").unwrap();
    let err = s.put_share(ShareKind::Ecdsa, "w", 1, b"replayed keygen").unwrap_err();
    assert!(matches!(err, StoreError::RecordExists { ref key } if key == "ecdsa:w_v1"), "{err}");
    assert_eq!(s.get_share(ShareKind::Ecdsa, "w", 1).unwrap().unwrap().as_slice(), b"live share");
    // One of two exists: neither is written.
    let err =
        s.put_shares(&[(ShareKind::Eddsa, "w", 1, b"ed"), (ShareKind::Ecdsa, "w", 1, b"again")]).unwrap_err();
    assert!(matches!(err, StoreError::RecordExists { .. }), "{err}");
    assert!(s.get_share(ShareKind::Eddsa, "w", 1).unwrap().is_none(), "half a pair was written");
    s.put_shares(&[(ShareKind::Eddsa, "w", 1, b"ed"), (ShareKind::Ecdsa, "w", 2, b"v2")]).unwrap();
    assert_eq!(s.get_share(ShareKind::Eddsa, "w", 1).unwrap().unwrap().as_slice(), b"ed");
    // Versions of this wallet only, not of a wallet whose id extends it.
    s.put_share(ShareKind::Ecdsa, "w_v1x", 7, b"other wallet").unwrap();
    assert_eq!(s.share_versions(ShareKind::Ecdsa, "w").unwrap(), vec![1, 2]);
    assert_eq!(s.share_versions(ShareKind::Ecdsa, "w_v1x").unwrap(), vec![7]);
    assert!(s.delete_share(ShareKind::Ecdsa, "w", 1).unwrap());
    assert_eq!(s.share_versions(ShareKind::Ecdsa, "w").unwrap(), vec![2]);
}

#[test]
fn bans_are_durable_per_wallet_and_lifted_by_a_newer_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let ban = |node: &str, v: u32| mpcium_store::Ban {
        node_id: node.into(),
        key_version: v,
        reason: "OT consistency check failed".into(),
        at: "2026-12-04T00:00:00Z".into(),
    };
    {
        let s = Store::create(&path, PW, &opts()).unwrap();
        s.put_ban("w1", &ban("node2", 1)).unwrap();
        s.put_ban("w2", &ban("node1", 3)).unwrap();
    }
    let s = Store::open(&path, PW, &opts()).unwrap();
    assert_eq!(s.bans("w1").unwrap(), vec![ban("node2", 1)]);
    assert_eq!(s.all_bans().unwrap(), vec![ban("node2", 1), ban("node1", 3)]);
    // A wallet id with ':' (escaped in the key) has its own bans, apart from a plain prefix of it.
    s.put_ban("w1:x", &ban("node0", 2)).unwrap();
    assert_eq!(s.bans("w1:x").unwrap(), vec![ban("node0", 2)]);
    assert_eq!(s.bans("w1").unwrap(), vec![ban("node2", 1)]);
    assert_eq!(s.lift_bans_before("w1", 1).unwrap(), 0, "same version: still banned");
    assert_eq!(s.lift_bans_before("w1", 2).unwrap(), 1);
    assert!(s.bans("w1").unwrap().is_empty());
    assert_eq!(s.bans("w2").unwrap().len(), 1);
}

#[test]
fn taproot_shares_are_a_third_kind_stored_with_the_others_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::create(dir.path().join("s.db"), PW, &opts()).unwrap();
    s.put_share(ShareKind::Taproot, "w", 1, b"live taproot").unwrap();
    // A keygen's three shares: the taproot one exists, so none of the three is written.
    let err = s
        .put_shares(&[
            (ShareKind::Ecdsa, "w", 1, b"ec"),
            (ShareKind::Eddsa, "w", 1, b"ed"),
            (ShareKind::Taproot, "w", 1, b"replayed"),
        ])
        .unwrap_err();
    assert!(matches!(err, StoreError::RecordExists { ref key } if key == "taproot:w_v1"), "{err}");
    assert!(s.get_share(ShareKind::Ecdsa, "w", 1).unwrap().is_none());
    assert!(s.get_share(ShareKind::Eddsa, "w", 1).unwrap().is_none());
    assert_eq!(s.get_share(ShareKind::Taproot, "w", 1).unwrap().unwrap().as_slice(), b"live taproot");
    s.put_shares(&[
        (ShareKind::Ecdsa, "w2", 1, b"ec"),
        (ShareKind::Eddsa, "w2", 1, b"ed"),
        (ShareKind::Taproot, "w2", 1, b"tr"),
    ])
    .unwrap();
    assert_eq!(s.get_share(ShareKind::Taproot, "w2", 1).unwrap().unwrap().as_slice(), b"tr");
    // Kinds do not see each other's versions.
    s.put_share(ShareKind::Taproot, "w2", 2, b"tr2").unwrap();
    assert_eq!(s.share_versions(ShareKind::Taproot, "w2").unwrap(), vec![1, 2]);
    assert_eq!(s.share_versions(ShareKind::Ecdsa, "w2").unwrap(), vec![1]);
    assert!(s.delete_share(ShareKind::Taproot, "w2", 1).unwrap());
    assert_eq!(s.share_versions(ShareKind::Taproot, "w2").unwrap(), vec![2]);
}
