//! Staged imported shares: written all together or not at all, never over a staged or live
//! share of the same wallet, listed, read back and dropped.

use mpcium_store::{LegacyShareRecord, ShareKind, Store, StoreError, StoreOptions};
use zeroize::Zeroizing;

fn record(tag: u8) -> LegacyShareRecord {
    LegacyShareRecord {
        holders: vec!["0d9a…-node0".into(), "node:1".into(), String::new()],
        share: Zeroizing::new(vec![tag; 300]),
    }
}

#[test]
fn staged_shares_are_all_or_nothing_and_never_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(
        dir.path().join("db"),
        b"correct horse battery staple",
        &StoreOptions::insecure_for_tests(),
    )
    .unwrap();
    let (a, b) = (record(1), record(2));
    store.put_legacy_shares(&[(ShareKind::Ecdsa, "w1", 1, &a), (ShareKind::Eddsa, "w1", 1, &b)]).unwrap();
    let (version, back) = store.legacy_share(ShareKind::Ecdsa, "w1").unwrap().unwrap();
    assert_eq!(version, 1);
    assert_eq!(back.holders, a.holders);
    assert_eq!(*back.share, *a.share);
    // A second import of w1 (any version) is refused, and w2 beside it is not written either.
    let err = store
        .put_legacy_shares(&[(ShareKind::Ecdsa, "w2", 1, &a), (ShareKind::Ecdsa, "w1", 0, &b)])
        .unwrap_err();
    assert!(matches!(err, StoreError::RecordExists { ref key } if key == "legacy:ecdsa:w1_v1"), "{err}");
    assert!(store.legacy_share(ShareKind::Ecdsa, "w2").unwrap().is_none());
    // A wallet that already has a share of ours is refused.
    store.put_share(ShareKind::Eddsa, "w3", 1, b"live").unwrap();
    let err = store.put_legacy_shares(&[(ShareKind::Eddsa, "w3", 0, &a)]).unwrap_err();
    assert!(matches!(err, StoreError::RecordExists { ref key } if key == "eddsa:w3_v1"), "{err}");
    // "w1_v1" is another wallet than "w1".
    assert!(store.legacy_share(ShareKind::Ecdsa, "w1_v1").unwrap().is_none());
    let mut listed = store.legacy_shares().unwrap();
    listed.sort_by(|x, y| x.1.cmp(&y.1).then(x.2.cmp(&y.2)));
    assert_eq!(listed, vec![(ShareKind::Ecdsa, "w1".to_owned(), 1), (ShareKind::Eddsa, "w1".to_owned(), 1)]);
    assert!(store.delete_legacy_share(ShareKind::Ecdsa, "w1", 1).unwrap());
    assert!(store.legacy_share(ShareKind::Ecdsa, "w1").unwrap().is_none());
}
