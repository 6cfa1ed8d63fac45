//! Encrypted incremental backups and recovery.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mpcium_store::backup::{BackupFile, read_latest};
use mpcium_store::{
    BackupConfig, BackupScheduler, KdfParams, RecordKey, ShareKind, Store, StoreError, StoreOptions, recover,
    run_backup_once,
};

const PW: &[u8] = b"correct horse battery staple";
const PW2: &[u8] = b"another long enough password";

fn opts() -> StoreOptions {
    StoreOptions::insecure_for_tests()
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

fn backup_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "enc"))
        .collect();
    files.sort_by_key(|p| BackupFile::read_header(p).unwrap().meta.version);
    files
}

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn backup_wipe_recover_gives_identical_contents() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("node0.db");
    let backups = tmp.path().join("backups");
    let store = Store::create(&db, PW, &opts()).unwrap();
    for i in 0..50 {
        store.put_share(ShareKind::Ecdsa, &format!("w{i}"), 0, &vec![i as u8; 3000]).unwrap();
        store.put_share(ShareKind::Eddsa, &format!("w{i}"), 0, &vec![i as u8; 300]).unwrap();
    }
    store.put_share(ShareKind::Taproot, "w0", 0, &[7; 300]).unwrap();
    store.put_setup("pre_params_0", b"pp0").unwrap();
    store.record_request("w1", "tx1").unwrap();
    store.put_presignature("w1", "p1", b"never backed up").unwrap();
    let outcome = run_backup_once(&store, &backups, "node0").unwrap().unwrap();
    assert!(outcome.full);
    assert_eq!(outcome.version, 1);
    assert_eq!(outcome.entries, 103);
    let name = outcome.file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("backup-node0-") && name.ends_with("-1.enc"), "{name}");
    assert_eq!(std::fs::metadata(&outcome.file).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&backups).unwrap().permissions().mode() & 0o777, 0o700);
    let latest = read_latest(&backups).unwrap().unwrap();
    assert_eq!((latest.version, latest.since), (1, store.change_head().unwrap()));

    // Nothing changed: no new file.
    assert!(run_backup_once(&store, &backups, "node0").unwrap().is_none());
    assert_eq!(backup_files(&backups).len(), 1);

    let mut expected = contents(&store);
    expected.retain(|(k, _)| !k.starts_with("presig:"));
    drop(store);
    std::fs::remove_file(&db).unwrap();

    let restored = tmp.path().join("restored.db");
    let report = recover(&backups, &restored, PW, &opts(), false).unwrap();
    assert_eq!(report.files.len(), 1);
    assert_eq!(report.node_name, "node0");
    let s = Store::open(&restored, PW, &opts()).unwrap();
    assert_eq!(contents(&s), expected);
    assert_eq!(s.get_share(ShareKind::Taproot, "w0", 0).unwrap().unwrap().as_slice(), &[7; 300]);
    assert_eq!(s.count_presignatures("w1").unwrap(), 0);
    assert!(matches!(s.record_request("w1", "tx1"), Err(StoreError::DuplicateRequest { .. })));
    assert_eq!(std::fs::metadata(&restored).unwrap().permissions().mode() & 0o777, 0o600);
}

/// Builds a 3-file chain: base, then overwrite + new key, then delete + new key.
fn three_backups(tmp: &Path) -> (PathBuf, Vec<(String, Vec<u8>)>) {
    let backups = tmp.join("backups");
    let store = Store::create(tmp.join("node1.db"), PW, &opts()).unwrap();
    store.put_share(ShareKind::Ecdsa, "a", 0, b"a-v0").unwrap();
    store.put_share(ShareKind::Ecdsa, "b", 0, b"b-v0").unwrap();
    store.put_share(ShareKind::Ecdsa, "c", 0, b"c-v0").unwrap();
    let b1 = run_backup_once(&store, &backups, "node1").unwrap().unwrap();
    // The raw record layer (shares themselves are create-only): an overwrite is still a change.
    store.put(&RecordKey::share(ShareKind::Ecdsa, "a", 0).unwrap(), b"a-v0-overwritten").unwrap();
    store.put_share(ShareKind::Eddsa, "d", 0, b"d-v0").unwrap();
    let b2 = run_backup_once(&store, &backups, "node1").unwrap().unwrap();
    store.delete(&RecordKey::share(ShareKind::Ecdsa, "b", 0).unwrap()).unwrap();
    store.put_share(ShareKind::Ecdsa, "e", 1, b"e-v1").unwrap();
    let b3 = run_backup_once(&store, &backups, "node1").unwrap().unwrap();
    assert!(b1.full && !b2.full && !b3.full);
    assert_eq!((b2.since, b3.since), (b1.next_since, b2.next_since));
    assert_eq!((b2.entries, b3.entries), (2, 2), "incremental backups hold only changed keys");
    (backups, contents(&store))
}

#[test]
fn incremental_chain_of_three_restores_fully() {
    let tmp = tempfile::tempdir().unwrap();
    let (backups, expected) = three_backups(tmp.path());
    let restored = tmp.path().join("restored.db");
    let report = recover(&backups, &restored, PW, &opts(), false).unwrap();
    assert_eq!(report.files.len(), 3);
    let s = Store::open(&restored, PW, &opts()).unwrap();
    let got = contents(&s);
    assert_eq!(got, expected);
    assert!(got.iter().any(|(k, v)| k == "ecdsa:a_v0" && v == b"a-v0-overwritten"));
    assert!(!got.iter().any(|(k, _)| k == "ecdsa:b_v0"));
}

#[test]
fn missing_middle_file_is_a_clear_error_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (backups, _) = three_backups(tmp.path());
    let files = backup_files(&backups);
    let expected_since = BackupFile::read_header(&files[0]).unwrap().meta.next_since;
    let found_since = BackupFile::read_header(&files[2]).unwrap().meta.since;
    std::fs::remove_file(&files[1]).unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let restored = out.join("restored.db");
    let err = recover(&backups, &restored, PW, &opts(), false).unwrap_err();
    match &err {
        StoreError::BackupChainGap { expected, found, .. } => {
            assert_eq!((*expected, *found), (expected_since, found_since));
        }
        other => panic!("unexpected {other}"),
    }
    assert!(err.to_string().contains("a backup file is missing"));
    assert!(dir_entries(&out).is_empty(), "left behind: {:?}", dir_entries(&out));
}

#[test]
fn missing_newest_file_is_detected_through_latest_version() {
    let tmp = tempfile::tempdir().unwrap();
    let (backups, _) = three_backups(tmp.path());
    let files = backup_files(&backups);
    std::fs::remove_file(&files[2]).unwrap();
    let err = recover(&backups, &tmp.path().join("r.db"), PW, &opts(), false).unwrap_err();
    assert!(matches!(err, StoreError::BackupChainTruncated { expected: 3, found: 2 }), "{err}");
}

#[test]
fn wrong_password_is_refused_before_restoring() {
    let tmp = tempfile::tempdir().unwrap();
    let (backups, _) = three_backups(tmp.path());
    let restored = tmp.path().join("r.db");
    let err = recover(&backups, &restored, PW2, &opts(), false).unwrap_err();
    assert!(matches!(err, StoreError::WrongPassword), "{err}");
    assert!(!restored.exists());
}

fn assert_corrupt_detected(mutate: impl Fn(&mut Vec<u8>)) {
    let tmp = tempfile::tempdir().unwrap();
    let (backups, _) = three_backups(tmp.path());
    let files = backup_files(&backups);
    let mut bytes = std::fs::read(&files[1]).unwrap();
    mutate(&mut bytes);
    std::fs::write(&files[1], &bytes).unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let err = recover(&backups, &out.join("r.db"), PW, &opts(), false).unwrap_err();
    assert!(matches!(&err, StoreError::BackupCorrupt { file, .. } if *file == files[1]), "{err}");
    assert!(dir_entries(&out).is_empty());
}

#[test]
fn flipped_byte_in_backup_payload_is_detected() {
    assert_corrupt_detected(|b| {
        let last = b.len() - 5;
        b[last] ^= 0x40;
    });
}

#[test]
fn altered_backup_metadata_is_detected() {
    // Change the creation time inside the JSON metadata: same length, still valid JSON, but
    // the header is authenticated as associated data.
    assert_corrupt_detected(|b| {
        let pos = b.windows(11).position(|w| w == b"created_at\"").unwrap() + 14;
        b[pos] = if b[pos] == b'1' { b'2' } else { b'1' };
    });
}

#[test]
fn truncated_backup_is_detected() {
    assert_corrupt_detected(|b| {
        let n = b.len() - 3;
        b.truncate(n);
    });
    assert_corrupt_detected(|b| b.truncate(30));
}

#[test]
fn existing_recovery_path_needs_force() {
    let tmp = tempfile::tempdir().unwrap();
    let (backups, expected) = three_backups(tmp.path());
    let restored = tmp.path().join("r.db");
    std::fs::write(&restored, b"something precious").unwrap();
    let err = recover(&backups, &restored, PW, &opts(), false).unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
    assert_eq!(std::fs::read(&restored).unwrap(), b"something precious");
    recover(&backups, &restored, PW, &opts(), true).unwrap();
    assert_eq!(contents(&Store::open(&restored, PW, &opts()).unwrap()), expected);
}

#[test]
fn password_change_starts_a_new_full_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let backups = tmp.path().join("backups");
    let mut store = Store::create(tmp.path().join("n.db"), PW, &opts()).unwrap();
    store.put_setup("a", b"1").unwrap();
    run_backup_once(&store, &backups, "n").unwrap().unwrap();
    store.put_setup("b", b"2").unwrap();
    run_backup_once(&store, &backups, "n").unwrap().unwrap();
    store.change_password(PW2, &opts()).unwrap();
    // Nothing changed in the data, but the backup key did: a full backup under the new key.
    let b3 = run_backup_once(&store, &backups, "n").unwrap().unwrap();
    assert!(b3.full);
    assert_eq!(b3.version, 3);
    store.put_setup("c", b"3").unwrap();
    assert!(!run_backup_once(&store, &backups, "n").unwrap().unwrap().full);
    let r = recover(&backups, &tmp.path().join("r.db"), PW2, &opts(), false).unwrap();
    assert_eq!(r.files.len(), 2, "recovery starts at the newest full backup");
    assert_eq!(contents(&Store::open(tmp.path().join("r.db"), PW2, &opts()).unwrap()), contents(&store));
    assert!(matches!(
        recover(&backups, &tmp.path().join("r2.db"), PW, &opts(), false),
        Err(StoreError::WrongPassword)
    ));
}

#[test]
fn mixed_nodes_and_empty_dirs_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let backups = tmp.path().join("backups");
    std::fs::create_dir(&backups).unwrap();
    let err = recover(&backups, &tmp.path().join("r.db"), PW, &opts(), false).unwrap_err();
    assert!(matches!(err, StoreError::NoBackups { .. }), "{err}");
    for node in ["n1", "n2"] {
        let s = Store::create(tmp.path().join(format!("{node}.db")), PW, &opts()).unwrap();
        s.put_setup("x", node.as_bytes()).unwrap();
        run_backup_once(&s, &backups, node).unwrap().unwrap();
        // Each node keeps its own latest.version; remove it so the second node starts afresh.
        std::fs::remove_file(backups.join("latest.version")).unwrap();
    }
    let err = recover(&backups, &tmp.path().join("r.db"), PW, &opts(), false).unwrap_err();
    assert!(matches!(err, StoreError::MixedNodes { .. }), "{err}");
    assert!(matches!(
        run_backup_once(&Store::create(tmp.path().join("z.db"), PW, &opts()).unwrap(), &backups, "../evil"),
        Err(StoreError::InvalidNodeName(_))
    ));
}

#[test]
fn scheduler_backs_up_periodically() {
    let tmp = tempfile::tempdir().unwrap();
    let backups = tmp.path().join("backups");
    let store = std::sync::Arc::new(Store::create(tmp.path().join("n.db"), PW, &opts()).unwrap());
    store.put_setup("a", b"1").unwrap();
    let mut config = BackupConfig::new("node7");
    config.dir = backups.clone();
    config.period = std::time::Duration::from_millis(50);
    let scheduler = BackupScheduler::start(store.clone(), config).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while read_latest(&backups).ok().flatten().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    store.put_setup("b", b"2").unwrap();
    let head = store.change_head().unwrap();
    while read_latest(&backups).ok().flatten().is_none_or(|l| l.since < head)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    scheduler.stop();
    let latest = read_latest(&backups).unwrap().unwrap();
    assert_eq!(latest.since, head);
    assert_eq!(backup_files(&backups).len() as u64, latest.version);
    assert_eq!(latest.version, 2, "no file is written while nothing changes");
}

#[test]
fn concurrent_backup_runs_never_claim_the_same_version() {
    let tmp = tempfile::tempdir().unwrap();
    let backups = tmp.path().join("backups");
    let store = std::sync::Arc::new(Store::create(tmp.path().join("n.db"), PW, &opts()).unwrap());
    for round in 0..5 {
        store.put_setup(&format!("k{round}"), b"v").unwrap();
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let (s, d) = (store.clone(), backups.clone());
                std::thread::spawn(move || run_backup_once(&s, &d, "n").unwrap())
            })
            .collect();
        let written = handles.into_iter().filter_map(|h| h.join().unwrap()).count();
        assert_eq!(written, 1, "exactly one run sees the change; the others find nothing new");
    }
    let r = recover(&backups, &tmp.path().join("r.db"), PW, &opts(), false).unwrap();
    assert_eq!(r.files.len(), 5);
    assert_eq!(r.keys, 5);
}

/// The in-memory reader the fuzz targets use runs the recovery parser: sealed frames decode,
/// a flipped ciphertext byte fails authentication, and a malformed frame behind a valid tag is
/// refused without a panic.
#[test]
fn in_memory_backup_decoder_reads_sealed_frames_and_refuses_tampering() {
    use mpcium_store::backup::BackupMetadata;
    use mpcium_store::backup::fuzzing::{decode_backup, seal_backup};
    use mpcium_store::kdf::KdfRecord;

    let key = [7u8; 32];
    let meta = BackupMetadata {
        format: 1,
        algo: "XChaCha20-Poly1305".into(),
        kdf: KdfRecord::fresh(KdfParams::INSECURE_TEST).unwrap(),
        nonce: "00112233445566778899aabbccddeeff".into(),
        created_at: "2026-11-22T00:00:00Z".into(),
        node_name: "node0".into(),
        version: 1,
        since: 0,
        next_since: 2,
        full: true,
        encryption_key_id: "0011223344556677".into(),
    };
    // PUT "ecdsa:w_v1" = [1,2,3], then DEL "eddsa:w_v1".
    let mut frames = vec![1u8, 0, 10];
    frames.extend_from_slice(b"ecdsa:w_v1");
    frames.extend_from_slice(&3u32.to_be_bytes());
    frames.extend_from_slice(&[1, 2, 3]);
    frames.extend_from_slice(&[2, 0, 10]);
    frames.extend_from_slice(b"eddsa:w_v1");
    let file = seal_backup(&meta, &[&frames[..20], &frames[20..]], &key).unwrap();
    let (read_meta, count) = decode_backup(&file, &key).unwrap();
    assert_eq!(read_meta, meta);
    assert_eq!(count, 2);

    let mut tampered = file.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let err = decode_backup(&tampered, &key).unwrap_err().to_string();
    assert!(err.contains("failed authentication"), "{err}");

    let bad_frame = seal_backup(&meta, &[&[9, 0, 1, b'k']], &key).unwrap();
    let err = decode_backup(&bad_frame, &key).unwrap_err().to_string();
    assert!(err.contains("unknown frame type 9"), "{err}");
}
