//! Every wallet id the wire accepts (`mpcium_api::ids`: up to 256 bytes; `:`, `/`, `=`, non-ASCII
//! allowed) works in every namespace of the store, and wallets never see each other's records.

use mpcium_store::{RecordKey, ShareKind, Store, StoreError, StoreOptions, recover, run_backup_once};

const PW: &[u8] = b"correct horse battery staple";

fn opts() -> StoreOptions {
    StoreOptions::insecure_for_tests()
}

/// Ids chosen so that a naive `<wallet>:<id>` layout would mix them up: `w` is a prefix of `w:0`,
/// `w:0`'s presignature `1` and `w`'s presignature `0:1` would share one key, `=…` look like
/// escaped ids.
fn wallet_ids() -> Vec<String> {
    let mut ids: Vec<String> =
        ["w", "w:0", "w:0:1", ":", "::w", "=dzow", "=", "a/b", "a/b:c", "wallet=é", "钱包:0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    ids.push("0a7b2c9e-47c2-4d1e-9f3a-2b1c0d9e8f7a:0".to_owned());
    ids.push("b".repeat(256));
    ids.push(format!("{}:9", "c".repeat(254)));
    ids.push("é:".repeat(85) + "x");
    for id in &ids {
        assert!(mpcium_api_rules_accept(id), "{id:?} is not an id the wire accepts");
    }
    ids
}

/// The wire's rule (`mpcium_api::ids::validate_token`), restated so this crate keeps no
/// dependency on the API crate: 1..=256 bytes, none of `.`, `*`, `>`, whitespace, control.
fn mpcium_api_rules_accept(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 256
        && !id.chars().any(|c| matches!(c, '.' | '*' | '>') || c.is_whitespace() || c.is_control())
}

#[test]
fn every_accepted_wallet_id_has_its_own_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path().join("node0.db"), PW, &opts()).unwrap();
    let ids = wallet_ids();
    for (i, id) in ids.iter().enumerate() {
        store.put_share(ShareKind::Ecdsa, id, 0, format!("share-{i}").as_bytes()).unwrap();
        store.put_presignature(id, "1", format!("presig-{i}-1").as_bytes()).unwrap();
        store.put_presignature(id, "0:1", format!("presig-{i}-0:1").as_bytes()).unwrap();
        store.put_presignature(id, &"p".repeat(300), format!("presig-{i}-long").as_bytes()).unwrap();
        store.record_request(id, &"t".repeat(256)).unwrap();
    }
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            store.get_share(ShareKind::Ecdsa, id, 0).unwrap().unwrap().as_slice(),
            format!("share-{i}").as_bytes()
        );
        assert_eq!(store.count_presignatures(id).unwrap(), 3, "{id:?}");
        assert_eq!(
            store.presignature_ids(id, "").unwrap(),
            vec!["0:1".to_owned(), "1".to_owned(), "p".repeat(300)]
        );
        assert_eq!(store.presignature_ids(id, "0").unwrap(), vec!["0:1".to_owned()]);
        assert!(matches!(
            store.record_request(id, &"t".repeat(256)),
            Err(StoreError::DuplicateRequest { .. })
        ));
        assert!(!store.contains_request(id, "t").unwrap());
    }
    // Taking and deleting touch only the named wallet.
    for (i, id) in ids.iter().enumerate() {
        let (pid, value) = store.take_any_presignature(id).unwrap().unwrap();
        assert_eq!((pid.as_str(), value.as_slice()), ("0:1", format!("presig-{i}-0:1").as_bytes()));
        assert_eq!(
            store.take_presignature(id, "1").unwrap().unwrap().as_slice(),
            format!("presig-{i}-1").as_bytes()
        );
        assert!(store.delete_presignature(id, &"p".repeat(300)).unwrap());
        assert_eq!(store.count_presignatures(id).unwrap(), 0);
        for later in &ids[i + 1..] {
            assert_eq!(store.count_presignatures(later).unwrap(), 3, "{later:?} lost records to {id:?}");
        }
    }
}

#[test]
fn plain_ids_keep_the_keys_older_stores_hold() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path().join("node0.db"), PW, &opts()).unwrap();
    store.put_presignature("w1", "v0-node0-1", b"p").unwrap();
    store.put_presignature("w=/é", "v0-node0-2", b"p").unwrap();
    store.record_request("w1", "tx:1").unwrap();
    store.put_share(ShareKind::Eddsa, "w:1", 3, b"s").unwrap();
    store.put_presignature("w:1", "v0-node0-3", b"p").unwrap();
    assert_eq!(
        store.keys_with_prefix("").unwrap(),
        vec![
            "eddsa:w:1_v3", // share keys never needed escaping: fixed prefix, version after the last `_v`
            "presig::dzox:v0-node0-3", // `:` + base64url("w:1")
            "presig:w1:v0-node0-1",
            "presig:w=/é:v0-node0-2",
            "replay:w1:tx:1",
        ]
    );
    // A record written under the old layout by an older node is found by the new code.
    assert_eq!(RecordKey::presignature("w1", "v0-node0-1").unwrap().as_str(), "presig:w1:v0-node0-1");
}

#[test]
fn escaped_ids_survive_backup_and_recovery() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("node0.db");
    let backups = tmp.path().join("backups");
    let long_colon_id = format!("{}:9", "c".repeat(254));
    {
        let store = Store::create(&db, PW, &opts()).unwrap();
        store.put_share(ShareKind::Ecdsa, &long_colon_id, 0, b"share").unwrap();
        store.record_request(&long_colon_id, &"t".repeat(256)).unwrap();
        run_backup_once(&store, &backups, "node0").unwrap().unwrap();
    }
    std::fs::remove_file(&db).unwrap();
    let restored = tmp.path().join("restored.db");
    recover(&backups, &restored, PW, &opts(), false).unwrap();
    let s = Store::open(&restored, PW, &opts()).unwrap();
    assert_eq!(s.get_share(ShareKind::Ecdsa, &long_colon_id, 0).unwrap().unwrap().as_slice(), b"share");
    assert!(s.contains_request(&long_colon_id, &"t".repeat(256)).unwrap());
}
