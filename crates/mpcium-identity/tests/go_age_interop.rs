//! Interop with Go's `age` tool (filippo.io/age, Debian package `age`), whose passphrase
//! prompts are driven through a TTY by `expect`. Skipped, with a printed reason, when either
//! tool is not on PATH, except in CI (`CI=true`, as `.ci/run` sets and installs both): there a
//! missing tool fails the tests, so they cannot silently stop running.

use std::path::Path;
use std::process::Command;

use mpcium_identity::{IdentityError, KeyProtection, SignerAlgorithm, SignerKey, age_file, create_initiator};

const PASS: &str = "go interop passphrase!";

const ENCRYPT: &str = r#"set timeout 60
spawn age -p -o [lindex $argv 2] [lindex $argv 1]
expect "passphrase"
send "[lindex $argv 0]\r"
expect "onfirm"
send "[lindex $argv 0]\r"
expect eof
lassign [wait] pid spawnid os_error value
exit $value
"#;

const DECRYPT: &str = r#"set timeout 60
spawn age -d -o [lindex $argv 2] [lindex $argv 1]
expect "passphrase"
send "[lindex $argv 0]\r"
expect eof
lassign [wait] pid spawnid os_error value
exit $value
"#;

fn on_path(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success())
}

fn tools_available() -> bool {
    for tool in ["age", "expect"] {
        if !on_path(tool) {
            assert!(
                !mpcium_testkit::in_ci(),
                "`{tool}` is not on PATH, and CI must run these tests (apt-get install -y age expect)"
            );
            eprintln!("SKIPPED: `{tool}` is not on PATH (apt-get install -y age expect)");
            return false;
        }
    }
    true
}

fn run_expect(dir: &Path, script: &str, args: [&Path; 2]) -> bool {
    let script_path = dir.join("script.exp");
    std::fs::write(&script_path, script).unwrap();
    let out = Command::new("expect").arg(&script_path).arg(PASS).args(args).output().unwrap();
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    }
    out.status.success()
}

#[test]
fn go_age_decrypts_our_key_file() {
    if !tools_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_, key, files) = create_initiator(
        dir.path(),
        "init",
        SignerAlgorithm::Ed25519,
        KeyProtection::Passphrase(PASS),
        false,
    )
    .unwrap();
    let out = dir.path().join("plain.key");
    assert!(run_expect(dir.path(), DECRYPT, [&files.key, &out]), "Go age failed to decrypt");
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text, key.to_key_file_text().unwrap().as_str());
}

#[test]
fn we_decrypt_go_age_files() {
    if !tools_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = SignerKey::generate(SignerAlgorithm::P256).unwrap();
    let plain = dir.path().join("k.txt");
    std::fs::write(&plain, key.to_key_file_text().unwrap().as_bytes()).unwrap();
    let sealed = dir.path().join("k.key.age");
    assert!(run_expect(dir.path(), ENCRYPT, [&plain, &sealed]), "Go age failed to encrypt");

    let loaded = SignerKey::load(&sealed, SignerAlgorithm::P256, Some(PASS)).unwrap();
    assert_eq!(loaded.public_key_hex().unwrap(), key.public_key_hex().unwrap());
    let bytes = std::fs::read(&sealed).unwrap();
    let err = age_file::decrypt_with_passphrase(&bytes, "wrong passphrase", &sealed).unwrap_err();
    assert!(matches!(err, IdentityError::WrongPassphrase { .. }), "{err}");
}
