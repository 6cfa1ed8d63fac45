//! Runs the built `mpcium-cli` binary: `generate-peers`, `generate-identity`,
//! `generate-initiator`, `generate-authorizer`. Every file must parse back with
//! `mpcium-identity` and have mode 0600.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use mpcium_identity::{
    AuthorizerIdentity, InitiatorIdentity, NodeIdentity, Peers, SignerAlgorithm, SignerKey,
    load_node_signing_key,
};

const PASS: &str = "long enough passphrase!";

fn cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mpcium-cli")).current_dir(dir).args(args).output().unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = cli(dir, args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command that must fail; returns its stderr.
fn fails(dir: &Path, args: &[&str]) -> String {
    let out = cli(dir, args);
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn passphrase_file(dir: &Path, content: &str) -> String {
    let p = dir.join("pass.txt");
    std::fs::write(&p, content).unwrap();
    p.to_str().unwrap().to_owned()
}

#[test]
fn generate_peers_writes_a_valid_file_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(d, &["generate-peers", "-n", "3"]);
    let path = d.join("peers.json");
    assert_eq!(mode(&path), 0o600);
    let peers = Peers::load(&path).unwrap();
    assert_eq!(peers.iter().map(|(n, _)| n).collect::<Vec<_>>(), ["node0", "node1", "node2"]);
    let before = std::fs::read(&path).unwrap();

    let err = fails(d, &["generate-peers", "-n", "2"]);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);

    ok(d, &["generate-peers", "--number", "1", "--output", "other.json"]);
    assert_eq!(Peers::load(&d.join("other.json")).unwrap().len(), 1);

    let err = fails(d, &["generate-peers", "-n", "0", "-o", "zero.json"]);
    assert!(err.contains("0"), "{err}");
    assert!(!d.join("zero.json").exists());
    fails(d, &["generate-peers"]);
}

#[test]
fn generate_identity_plain_and_encrypted() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(d, &["generate-peers", "-n", "2"]);
    let peers = Peers::load(&d.join("peers.json")).unwrap();

    ok(d, &["generate-identity", "-n", "node0"]);
    let dir = d.join("identity");
    let identity_path = dir.join("node0_identity.json");
    assert_eq!(mode(&identity_path), 0o600);
    assert_eq!(mode(&dir.join("node0_private.key")), 0o600);
    let identity = NodeIdentity::read(&identity_path).unwrap();
    assert_eq!(identity.node_id, peers.node_id("node0").unwrap());
    let key = load_node_signing_key(&dir, "node0", None).unwrap();
    assert_eq!(hex::encode(key.verifying_key().as_bytes()), identity.public_key);

    let err = fails(d, &["generate-identity", "-n", "node0"]);
    assert!(err.contains("already exists"), "{err}");
    ok(d, &["generate-identity", "-n", "node0", "-f"]);
    let replaced = NodeIdentity::read(&identity_path).unwrap();
    assert_ne!(replaced.public_key, identity.public_key);

    let pass = passphrase_file(d, &format!("{PASS}\n"));
    ok(d, &["generate-identity", "--node", "node1", "-e", "--passphrase-file", &pass, "-o", "ids"]);
    let key_path = d.join("ids/node1_private.key.age");
    assert_eq!(mode(&key_path), 0o600);
    let key = load_node_signing_key(&d.join("ids"), "node1", Some(PASS)).unwrap();
    let identity = NodeIdentity::read(&d.join("ids/node1_identity.json")).unwrap();
    assert_eq!(hex::encode(key.verifying_key().as_bytes()), identity.public_key);
    assert!(load_node_signing_key(&d.join("ids"), "node1", Some("other passphrase!")).is_err());
}

#[test]
fn generate_identity_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let err = fails(d, &["generate-identity", "-n", "node0"]);
    assert!(err.contains("peers.json"), "{err}");
    ok(d, &["generate-peers", "-n", "1"]);
    let err = fails(d, &["generate-identity", "-n", "node7"]);
    assert!(err.contains("node7") && err.contains("not listed"), "{err}");

    let weak = passphrase_file(d, "short");
    let err = fails(d, &["generate-identity", "-n", "node0", "-e", "--passphrase-file", &weak]);
    assert!(err.contains("at least 12"), "{err}");
    let err = fails(d, &["generate-identity", "-n", "node0", "--passphrase-file", &weak]);
    assert!(err.contains("--encrypt"), "{err}");
    assert!(!d.join("identity").exists(), "nothing written on error");
}

#[test]
fn generate_initiator_both_algorithms() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let out = ok(d, &["generate-initiator"]);
    let identity = InitiatorIdentity::read(&d.join("event_initiator.identity.json")).unwrap();
    assert!(out.contains(&identity.public_key));
    assert_eq!(identity.algorithm().unwrap(), SignerAlgorithm::Ed25519);
    assert_eq!(mode(&d.join("event_initiator.identity.json")), 0o600);
    assert_eq!(mode(&d.join("event_initiator.key")), 0o600);
    let key = SignerKey::load(&d.join("event_initiator.key"), SignerAlgorithm::Ed25519, None).unwrap();
    assert_eq!(key.public_key_hex().unwrap(), identity.public_key);

    let err = fails(d, &["generate-initiator"]);
    assert!(err.contains("already exists"), "{err}");

    let pass = passphrase_file(d, PASS);
    ok(d, &["generate-initiator", "-n", "p", "-a", "p256", "-o", "keys", "-e", "--passphrase-file", &pass]);
    let identity = InitiatorIdentity::read(&d.join("keys/p.identity.json")).unwrap();
    assert_eq!(identity.algorithm.as_deref(), Some("p256"));
    assert_eq!(mode(&d.join("keys/p.key.age")), 0o600);
    let key = SignerKey::load(&d.join("keys/p.key.age"), SignerAlgorithm::P256, Some(PASS)).unwrap();
    assert_eq!(key.public_key_hex().unwrap(), identity.public_key);

    let err = fails(d, &["generate-initiator", "-n", "x", "-a", "rsa"]);
    assert!(err.contains("rsa") && err.contains("p256"), "{err}");
    assert!(!d.join("x.identity.json").exists());
}

#[test]
fn generate_authorizer_and_name_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(d, &["generate-authorizer", "-n", "ops_1", "-a", "p256"]);
    let identity = AuthorizerIdentity::read(&d.join("ops_1.authorizer.identity.json")).unwrap();
    assert_eq!(identity.name, "ops_1");
    assert_eq!(identity.algorithm().unwrap(), SignerAlgorithm::P256);
    assert_eq!(mode(&d.join("ops_1.authorizer.identity.json")), 0o600);
    assert_eq!(mode(&d.join("ops_1.authorizer.key")), 0o600);
    let key = SignerKey::load(&d.join("ops_1.authorizer.key"), SignerAlgorithm::P256, None).unwrap();
    assert_eq!(key.public_key_hex().unwrap(), identity.public_key);

    let err = fails(d, &["generate-authorizer", "-n", "ops_1"]);
    assert!(err.contains("already exists"), "{err}");
    ok(d, &["generate-authorizer", "-n", "ops_1", "--overwrite"]);
    let replaced = AuthorizerIdentity::read(&d.join("ops_1.authorizer.identity.json")).unwrap();
    assert_eq!(replaced.algorithm().unwrap(), SignerAlgorithm::Ed25519);

    let pass = passphrase_file(d, PASS);
    ok(d, &["generate-authorizer", "-n", "enc", "-e", "--passphrase-file", &pass]);
    let key =
        SignerKey::load(&d.join("enc.authorizer.key.age"), SignerAlgorithm::Ed25519, Some(PASS)).unwrap();
    let identity = AuthorizerIdentity::read(&d.join("enc.authorizer.identity.json")).unwrap();
    assert_eq!(key.public_key_hex().unwrap(), identity.public_key);

    for bad in ["bad name", "../x", "a.b"] {
        let err = fails(d, &["generate-authorizer", "-n", bad]);
        assert!(err.contains("invalid name"), "{bad}: {err}");
    }
    fails(d, &["generate-authorizer"]);
}
