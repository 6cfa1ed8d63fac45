//! Runs the built `mpcium-cli` binary: `recover`, `rekey`, `version`, password sources.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mpcium_store::{RecordKey, ShareKind, Store, StoreError, StoreOptions, run_backup_once};

const PW: &str = "correct horse battery staple";
const PW2: &str = "a brand new long password";

fn prod() -> StoreOptions {
    StoreOptions::production()
}

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mpcium-cli")).args(args).env_remove("BADGER_PASSWORD").output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn write_file(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
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

/// A store with two backups (a full one and an incremental one); returns the expected contents.
fn node_with_backups(tmp: &Path) -> (PathBuf, Vec<(String, Vec<u8>)>) {
    let backups = tmp.join("backups");
    let store = Store::create(tmp.join("node0.db"), PW.as_bytes(), &prod()).unwrap();
    store.put_share(ShareKind::Ecdsa, "w1", 0, &[1u8; 2000]).unwrap();
    store.put_share(ShareKind::Eddsa, "w1", 0, &[2u8; 100]).unwrap();
    run_backup_once(&store, &backups, "node0").unwrap().unwrap();
    store.put(&mpcium_store::RecordKey::share(ShareKind::Ecdsa, "w1", 0).unwrap(), &[3u8; 2000]).unwrap();
    store.record_request("w1", "tx-1").unwrap();
    run_backup_once(&store, &backups, "node0").unwrap().unwrap();
    (backups, contents(&store))
}

#[test]
fn version_prints_crate_version() {
    let out = cli(&["version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("mpcium-cli version {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn recover_restores_and_reports_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let (backups, expected) = node_with_backups(tmp.path());
    let pwfile = write_file(tmp.path(), "pw", &format!("  {PW}\n"));
    let wrong = write_file(tmp.path(), "wrong", "not the right password");
    let empty = write_file(tmp.path(), "empty", " \n");
    let target = tmp.path().join("restored/sub/node0.db");
    let b = backups.to_str().unwrap();
    let t = target.to_str().unwrap();

    // Empty password file.
    let out = cli(&["recover", "-b", b, "-r", t, "--password-file", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is empty"), "{}", stderr(&out));

    // Wrong password: refused, nothing created.
    let out = cli(&["recover", "-b", b, "-r", t, "--password-file", wrong.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("wrong password"), "{}", stderr(&out));
    assert!(!target.exists());

    // Success (password trimmed).
    let out = cli(&["recover", "-b", b, "-r", t, "--password-file", pwfile.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("from 2 backup files"));
    assert_eq!(mode(&target), 0o600);
    assert_eq!(mode(target.parent().unwrap()), 0o700);
    let s = Store::open(&target, PW.as_bytes(), &prod()).unwrap();
    assert_eq!(contents(&s), expected);
    drop(s);

    // Existing path: refused without --force, replaced with it.
    let out = cli(&["recover", "-b", b, "-r", t, "--password-file", pwfile.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    let out = cli(&["recover", "-b", b, "-r", t, "--force", "--password-file", pwfile.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Missing first (full) file: a chain gap, and no new file.
    let mut files: Vec<PathBuf> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "enc"))
        .collect();
    files.sort_by_key(|p| mpcium_store::backup::BackupFile::read_header(p).unwrap().meta.version);
    for f in &files {
        assert_eq!(mode(f), 0o600);
    }
    assert_eq!(mode(&backups), 0o700);
    std::fs::remove_file(&files[0]).unwrap();
    let other = tmp.path().join("other.db");
    let out = cli(&[
        "recover",
        "-b",
        b,
        "-r",
        other.to_str().unwrap(),
        "--password-file",
        pwfile.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("backup chain gap"), "{}", stderr(&out));
    assert!(!other.exists());
}

#[test]
fn recover_takes_password_from_config_and_env() {
    let tmp = tempfile::tempdir().unwrap();
    let (backups, expected) = node_with_backups(tmp.path());
    let config = write_file(
        tmp.path(),
        "config.yaml",
        &format!(
            "environment: development\nbadger_password: \"{PW}\"\nbackup_dir: \"{}\"\nnats:\n  url: nats://127.0.0.1:4222\n",
            backups.display()
        ),
    );
    let target = tmp.path().join("from-config.db");
    let out = cli(&["-c", config.to_str().unwrap(), "recover", "-r", target.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(contents(&Store::open(&target, PW.as_bytes(), &prod()).unwrap()), expected);

    // BADGER_PASSWORD overrides the config value.
    let target2 = tmp.path().join("from-env.db");
    let out = Command::new(env!("CARGO_BIN_EXE_mpcium-cli"))
        .args(["-c", config.to_str().unwrap(), "recover", "-r", target2.to_str().unwrap()])
        .env("BADGER_PASSWORD", "an overriding wrong password")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("wrong password"), "{}", stderr(&out));
}

#[test]
fn rekey_changes_password_and_rotates_data_key() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("node0.db");
    {
        let s = Store::create(&db, PW.as_bytes(), &prod()).unwrap();
        s.put_share(ShareKind::Ecdsa, "w", 0, b"share").unwrap();
    }
    let old = write_file(tmp.path(), "old", PW);
    let new = write_file(tmp.path(), "new", PW2);
    let d = db.to_str().unwrap();

    // Wrong current password: refused, store intact.
    let out = cli(&[
        "rekey",
        "--db-path",
        d,
        "--password-file",
        new.to_str().unwrap(),
        "--new-password-file",
        old.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("wrong password"), "{}", stderr(&out));

    let out = cli(&[
        "rekey",
        "--db-path",
        d,
        "--password-file",
        old.to_str().unwrap(),
        "--new-password-file",
        new.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(matches!(Store::open(&db, PW.as_bytes(), &prod()), Err(StoreError::WrongPassword)));
    {
        let s = Store::open(&db, PW2.as_bytes(), &prod()).unwrap();
        assert_eq!(s.get_share(ShareKind::Ecdsa, "w", 0).unwrap().unwrap().as_slice(), b"share");
    }

    let out = cli(&[
        "rekey",
        "--db-path",
        d,
        "--rotate-data-key",
        "--password-file",
        new.to_str().unwrap(),
        "--new-password-file",
        old.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode(&db), 0o600);
    assert!(!tmp.path().join("node0.db.rekey-tmp").exists());
    let s = Store::open(&db, PW.as_bytes(), &prod()).unwrap();
    assert_eq!(s.get_share(ShareKind::Ecdsa, "w", 0).unwrap().unwrap().as_slice(), b"share");
    drop(s);

    // Any non-empty new password is accepted (the rule of config validation and the original);
    // an empty one is refused.
    let short = write_file(tmp.path(), "short", "short");
    let out = cli(&[
        "rekey",
        "--db-path",
        d,
        "--password-file",
        old.to_str().unwrap(),
        "--new-password-file",
        short.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    drop(Store::open(&db, b"short", &prod()).unwrap());
    let empty = write_file(tmp.path(), "empty", "\n");
    let out = cli(&[
        "rekey",
        "--db-path",
        d,
        "--password-file",
        short.to_str().unwrap(),
        "--new-password-file",
        empty.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is empty"), "{}", stderr(&out));
    drop(Store::open(&db, b"short", &prod()).unwrap());
}

#[test]
fn no_password_source_is_an_error_not_a_hang() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mpcium-cli"))
        .args([
            "recover",
            "-b",
            tmp.path().to_str().unwrap(),
            "-r",
            tmp.path().join("x.db").to_str().unwrap(),
        ])
        .env_remove("BADGER_PASSWORD")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--password-file"), "{}", stderr(&out));
}
