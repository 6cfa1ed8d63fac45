//! Tests of `config.yaml` loading: defaults, validation errors naming the key, environment
//! overrides, warnings, and redaction.

use std::collections::HashMap;
use std::time::Duration;

use mpcium_config::*;

// A valid Ed25519 public key (RFC 8032 test 1) and a P-256 SPKI DER key.
const ED_PUB: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const P256_SPKI_HEX: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";
const CHAIN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn minimal() -> String {
    format!(
        "environment: development\nbadger_password: \"s3cret-badger-pw\"\nmpc_threshold: 1\n\
         event_initiator_pubkey: \"{ED_PUB}\"\nchain_code: \"{CHAIN}\"\nnats:\n  url: nats://127.0.0.1:4222\n"
    )
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn load(text: &str) -> Result<(NodeConfig, Vec<ConfigWarning>), ConfigError> {
    NodeConfig::from_yaml(text, &no_env, NodeOverrides::default())
}

fn load_env(text: &str, env: &[(&str, &str)]) -> Result<NodeConfig, ConfigError> {
    let map: HashMap<String, String> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    NodeConfig::from_yaml(text, &|k| map.get(k).cloned(), NodeOverrides::default()).map(|(c, _)| c)
}

/// Loads `text` expecting an error; returns its key and message.
fn err(text: &str) -> (String, String) {
    let e = load(text).expect_err("config should be rejected");
    let msg = e.to_string();
    let key = match e {
        ConfigError::Invalid { key, .. } | ConfigError::Missing { key } => key,
        other => panic!("unexpected error kind: {other}"),
    };
    (key, msg)
}

/// The minimal config without `key` (and, for a section, its indented children).
fn without(key: &str) -> String {
    let mut out = Vec::new();
    let mut skipping = false;
    let text = minimal();
    for line in text.lines() {
        if line.starts_with(&format!("{key}:")) {
            skipping = true;
            continue;
        }
        if skipping && line.starts_with(' ') {
            continue;
        }
        skipping = false;
        out.push(line);
    }
    out.join("\n")
}

fn with(extra: &str) -> String {
    format!("{}{extra}\n", minimal())
}

#[test]
fn defaults_of_a_minimal_config() {
    let (c, warnings) = load(&minimal()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.environment, Environment::Development);
    assert_eq!(c.badger_password.expose(), "s3cret-badger-pw");
    assert_eq!(c.db_path, std::path::PathBuf::from("./db"));
    assert!(c.backup.enabled);
    assert_eq!(c.backup.period, Duration::from_secs(300));
    assert_eq!(c.backup.dir, std::path::PathBuf::from("./backups"));
    assert_eq!(c.nats.url, "nats://127.0.0.1:4222");
    assert_eq!(c.nats.username, None);
    assert!(c.nats.password.is_none());
    assert_eq!(c.nats.tls.client_cert, std::path::PathBuf::from("./certs/client-cert.pem"));
    assert_eq!(c.nats.tls.client_key, std::path::PathBuf::from("./certs/client-key.pem"));
    assert_eq!(c.nats.tls.ca_cert, std::path::PathBuf::from("./certs/rootCA.pem"));
    assert_eq!(c.mpc_threshold, 1);
    assert_eq!(c.event_initiator.algorithm(), KeyAlgorithm::Ed25519);
    assert_eq!(c.max_concurrent_keygen, 2);
    assert_eq!(c.max_concurrent_signing, 20);
    assert_eq!(hex::encode(c.chain_code), CHAIN);
    assert!(!c.healthcheck.enabled);
    assert_eq!(c.healthcheck.address, ":8080");
    assert_eq!(c.healthcheck.bind_address(), "0.0.0.0:8080");
    assert!(!c.authorization.enabled);
    assert!(c.authorization.required_authorizers.is_empty());
    assert!(c.authorization.authorizer_public_keys.is_empty());
    assert!(!c.security.strict_requests);
    assert_eq!(c.presign.pool_size, 8);
    assert!(c.presign.wallets.is_empty());
    assert_eq!(c.key_pool.size, 0, "the key pool is off unless asked for");
    assert_eq!(c.limits.max_request_bytes, 1024 * 1024);
    assert_eq!(c.node.heartbeat, Duration::from_secs(5));
}

#[test]
fn zero_and_empty_values_take_the_originals_defaults() {
    let text = with(
        "max_concurrent_keygen: 0\nmax_concurrent_signing: 0\nbackup_period_seconds: -5\n\
         db_path: \"\"\nbackup_dir: \"\"\nhealthcheck:\n  address: \"\"\nevent_initiator_algorithm: \"\"",
    );
    let (c, _) = load(&text).unwrap();
    assert_eq!(c.max_concurrent_keygen, 2);
    assert_eq!(c.max_concurrent_signing, 20);
    assert_eq!(c.backup.period, Duration::from_secs(300));
    assert_eq!(c.db_path, std::path::PathBuf::from("./db"));
    assert_eq!(c.backup.dir, std::path::PathBuf::from("./backups"));
    assert_eq!(c.healthcheck.address, ":8080");
    assert_eq!(c.event_initiator.algorithm(), KeyAlgorithm::Ed25519);
}

#[test]
fn every_key_is_read_from_a_full_file() {
    let text = format!(
        r#"
environment: production
badger_password: "pw-with-16-chars"
db_path: /var/lib/mpcium
backup_enabled: false
backup_period_seconds: 60
backup_dir: /var/backups
nats:
  url: tls://nats.example:4222
  username: node0
  password: nats-pw
  tls:
    client_cert: /c.pem
    client_key: /k.pem
    ca_cert: /ca.pem
mpc_threshold: 2
event_initiator_algorithm: p256
event_initiator_pubkey: "0x{P256_SPKI_HEX}"
max_concurrent_keygen: 3
max_concurrent_signing: 10
chain_code: {CHAIN}
healthcheck:
  enabled: true
  address: 127.0.0.1:9090
authorization:
  enabled: true
  required_authorizers: [alice]
  authorizer_public_keys:
    alice:
      public_key: {ED_PUB}
    bob:
      public_key: {P256_SPKI_HEX}
      algorithm: p256
security:
  strict_requests: true
presign:
  pool_size: 0
  wallets: [w1, w2]
key_pool:
  size: 4
limits:
  max_request_bytes: 4096
node:
  heartbeat_seconds: 2
session_warm_up_delay_ms: 100
mpcium_version: 0.3.5
"#
    );
    let (c, warnings) = load(&text).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.environment, Environment::Production);
    assert_eq!(c.db_path, std::path::PathBuf::from("/var/lib/mpcium"));
    assert!(!c.backup.enabled);
    assert_eq!(c.backup.period, Duration::from_secs(60));
    assert_eq!(c.nats.url, "tls://nats.example:4222");
    assert_eq!(c.nats.username.as_deref(), Some("node0"));
    assert_eq!(c.nats.password.as_ref().unwrap().expose(), "nats-pw");
    assert_eq!(c.nats.tls.ca_cert, std::path::PathBuf::from("/ca.pem"));
    assert_eq!(c.mpc_threshold, 2);
    assert_eq!(c.event_initiator, PublicKey::P256 { spki_der: hex::decode(P256_SPKI_HEX).unwrap() });
    assert_eq!(c.max_concurrent_keygen, 3);
    assert_eq!(c.max_concurrent_signing, 10);
    assert!(c.healthcheck.enabled);
    assert_eq!(c.healthcheck.bind_address(), "127.0.0.1:9090");
    assert!(c.authorization.enabled);
    assert_eq!(c.authorization.required_authorizers, vec!["alice".to_owned()]);
    assert_eq!(c.authorization.authorizer_public_keys["alice"].algorithm(), KeyAlgorithm::Ed25519);
    assert_eq!(c.authorization.authorizer_public_keys["bob"].algorithm(), KeyAlgorithm::P256);
    assert!(c.security.strict_requests);
    assert_eq!(c.presign.pool_size, 0);
    assert_eq!(c.presign.wallets, vec!["w1".to_owned(), "w2".to_owned()]);
    assert_eq!(c.key_pool.size, 4);
    assert_eq!(c.limits.max_request_bytes, 4096);
    assert_eq!(c.node.heartbeat, Duration::from_secs(2));
}

#[test]
fn p256_initiator_key_in_base64() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(hex::decode(P256_SPKI_HEX).unwrap());
    let text = with("event_initiator_algorithm: p256").replace(ED_PUB, &b64);
    let (c, _) = load(&text).unwrap();
    assert_eq!(c.event_initiator.algorithm(), KeyAlgorithm::P256);
}

#[test]
fn missing_required_keys_are_named() {
    for key in ["environment", "badger_password", "mpc_threshold", "event_initiator_pubkey", "chain_code"] {
        let e = load(&without(key)).expect_err(key);
        assert!(matches!(&e, ConfigError::Missing { key: k } if k == key), "{key}: {e}");
        assert!(e.to_string().contains(key), "{e}");
    }
}

/// `badger_password`: any non-empty value, the rule of the original and of the store
/// (`mpcium_store::MIN_PASSWORD_LEN` is 1; Argon2id stretches short passwords).
#[test]
fn badger_password_of_any_non_empty_length_is_accepted() {
    for pw in ["x", "short", "é", "a much longer passphrase than twelve bytes"] {
        let (c, _) =
            load(&minimal().replace("s3cret-badger-pw", pw)).unwrap_or_else(|e| panic!("{pw:?}: {e}"));
        assert_eq!(c.badger_password.expose(), pw);
    }
    let (key, msg) = err(&minimal().replace("s3cret-badger-pw", ""));
    assert_eq!(key, "badger_password", "{msg}");
}

#[test]
fn invalid_values_name_their_key() {
    let cases: &[(&str, &str)] = &[
        ("environment", "environment: Production"),
        ("mpc_threshold", "mpc_threshold: 0"),
        ("mpc_threshold", "mpc_threshold: two"),
        ("chain_code", "chain_code: abcd"),
        ("chain_code", "chain_code: zz23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
        ("event_initiator_pubkey", "event_initiator_pubkey: abcd"),
        ("event_initiator_pubkey", "event_initiator_pubkey: nothex"),
        ("event_initiator_algorithm", "event_initiator_algorithm: rsa"),
        ("max_concurrent_keygen", "max_concurrent_keygen: -1"),
        ("max_concurrent_signing", "max_concurrent_signing: many"),
        ("backup_enabled", "backup_enabled: yes"),
        ("backup_period_seconds", "backup_period_seconds: 1.5"),
        ("healthcheck.address", "healthcheck:\n  address: localhost"),
        ("healthcheck.enabled", "healthcheck:\n  enabled: maybe"),
        ("authorization.enabled", "authorization:\n  enabled: 2"),
        ("nats.url", "nats:\n  url: http://x:4222"),
        ("security.strict_requests", "security:\n  strict_requests: sure"),
        ("presign.pool_size", "presign:\n  pool_size: -1"),
        ("presign.pool_size", "presign:\n  pool_size: 100000"),
        ("key_pool.size", "key_pool:\n  size: -1"),
        ("key_pool.size", "key_pool:\n  size: 100000"),
        ("presign.wallets", "presign:\n  wallets: [\"\"]"),
        ("limits.max_request_bytes", "limits:\n  max_request_bytes: 0"),
        ("node.heartbeat_seconds", "node:\n  heartbeat_seconds: 0"),
    ];
    for (key, line) in cases {
        let first = line.split([':', '\n']).next().unwrap();
        let text = format!("{}\n{line}\n", without(first));
        let (got, msg) = err(&text);
        assert_eq!(&got, key, "case `{line}`: {msg}");
        assert!(msg.contains(key), "message should name {key}: {msg}");
    }
}

#[test]
fn p256_key_given_for_ed25519_algorithm_is_rejected() {
    let text = minimal().replace(ED_PUB, P256_SPKI_HEX);
    let (key, msg) = err(&text);
    assert_eq!(key, "event_initiator_pubkey");
    assert!(msg.contains("ed25519"), "{msg}");
}

#[test]
fn bad_authorizer_entries_are_fatal_and_named() {
    let (key, _) =
        err(&with("authorization:\n  authorizer_public_keys:\n    alice:\n      public_key: 1234"));
    assert_eq!(key, "authorization.authorizer_public_keys.alice.public_key");
    let (key, _) = err(&with(&format!(
        "authorization:\n  authorizer_public_keys:\n    alice:\n      public_key: {ED_PUB}\n      algorithm: rsa"
    )));
    assert_eq!(key, "authorization.authorizer_public_keys.alice.algorithm");
    let (key, _) = err(&with("authorization:\n  authorizer_public_keys:\n    alice:\n      algorithm: p256"));
    assert_eq!(key, "authorization.authorizer_public_keys.alice.public_key");
    let (key, msg) = err(&with("authorization:\n  required_authorizers: [carol]"));
    assert_eq!(key, "authorization.required_authorizers");
    assert!(msg.contains("carol"), "{msg}");
}

#[test]
fn environment_overrides_file_values() {
    let c = load_env(
        &minimal(),
        &[
            ("NATS_URL", "nats://10.0.0.1:4222"),
            ("MPC_THRESHOLD", "3"),
            ("BADGER_PASSWORD", "from-env-password"),
            ("HEALTHCHECK_ADDRESS", "127.0.0.1:8181"),
            ("BACKUP_ENABLED", "false"),
            ("PRESIGN_WALLETS", "a, b c"),
            ("NODE_HEARTBEAT_SECONDS", "7"),
        ],
    )
    .unwrap();
    assert_eq!(c.nats.url, "nats://10.0.0.1:4222");
    assert_eq!(c.mpc_threshold, 3);
    assert_eq!(c.badger_password.expose(), "from-env-password");
    assert_eq!(c.healthcheck.address, "127.0.0.1:8181");
    assert!(!c.backup.enabled);
    assert_eq!(c.presign.wallets, vec!["a", "b", "c"]);
    assert_eq!(c.node.heartbeat, Duration::from_secs(7));
}

#[test]
fn environment_applies_even_when_key_and_section_are_absent_from_file() {
    // The file has no `nats:` section, no badger_password, no environment: the original would
    // ignore these variables (or crash); we apply them.
    let text = without("badger_password")
        .replace("environment: development\n", "")
        .replace("nats:\n  url: nats://127.0.0.1:4222", "");
    let c = load_env(
        &text,
        &[
            ("ENVIRONMENT", "production"),
            ("BADGER_PASSWORD", "env-only-password"),
            ("NATS_URL", "tls://n:4222"),
            ("NATS_TLS_CA_CERT", "/etc/ca.pem"),
        ],
    )
    .unwrap();
    assert_eq!(c.environment, Environment::Production);
    assert_eq!(c.badger_password.expose(), "env-only-password");
    assert_eq!(c.nats.url, "tls://n:4222");
    assert_eq!(c.nats.tls.ca_cert, std::path::PathBuf::from("/etc/ca.pem"));
}

#[test]
fn empty_environment_variable_does_not_override() {
    let c = load_env(&minimal(), &[("NATS_URL", "")]).unwrap();
    assert_eq!(c.nats.url, "nats://127.0.0.1:4222");
}

#[test]
fn invalid_environment_value_names_key_and_variable() {
    let e = load_env(&minimal(), &[("MPC_THRESHOLD", "zero")]).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(&e, ConfigError::Invalid { key, .. } if key == "mpc_threshold"), "{msg}");
    assert!(msg.contains("MPC_THRESHOLD"), "{msg}");
}

#[test]
fn command_line_password_wins_over_file_and_environment() {
    let map: HashMap<&str, &str> = [("BADGER_PASSWORD", "env-password")].into();
    let (c, _) = NodeConfig::from_yaml(
        &minimal(),
        &|k| map.get(k).map(|v| (*v).to_owned()),
        NodeOverrides { badger_password: Some(SecretString::new("flag-password".into())) },
    )
    .unwrap();
    assert_eq!(c.badger_password.expose(), "flag-password");
}

#[test]
fn env_var_names_follow_viper_convention() {
    assert_eq!(env_var_name("nats.tls.client_cert"), "NATS_TLS_CLIENT_CERT");
    assert_eq!(env_var_name("mpc_threshold"), "MPC_THRESHOLD");
}

#[test]
fn unknown_and_ignored_keys_are_warnings() {
    let text = with(
        "consul:\n  address: localhost:8500\nnats_url: typo\nnats2: {}\nhealthcheck:\n  enabeld: true\n\
         authorization:\n  authorizer_public_keys:\n    alice:\n      public_key: d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\n      pubkey: x",
    );
    let (_, warnings) = load(&text).unwrap();
    let rendered: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert!(warnings.contains(&ConfigWarning::UnknownKey { key: "nats_url".into() }), "{rendered:?}");
    assert!(warnings.contains(&ConfigWarning::UnknownKey { key: "nats2".into() }), "{rendered:?}");
    assert!(
        warnings.contains(&ConfigWarning::UnknownKey { key: "healthcheck.enabeld".into() }),
        "{rendered:?}"
    );
    assert!(
        warnings.contains(&ConfigWarning::UnknownKey {
            key: "authorization.authorizer_public_keys.alice.pubkey".into()
        }),
        "{rendered:?}"
    );
    assert!(
        warnings.iter().any(|w| matches!(w, ConfigWarning::Ignored { key, .. } if key == "consul")),
        "{rendered:?}"
    );
    assert_eq!(warnings.len(), 5, "{rendered:?}");
}

#[test]
fn numeric_looking_strings_keep_their_text() {
    // An all-digit chain code must not be read as a YAML number.
    let digits = "1".repeat(64);
    let text = minimal().replace(&format!("\"{CHAIN}\""), &digits);
    let (c, _) = load(&text).unwrap();
    assert_eq!(c.chain_code, [0x11; 32]);
}

#[test]
fn malformed_yaml_is_an_error() {
    let e = load("environment: [development\n").unwrap_err();
    assert!(matches!(e, ConfigError::Yaml { .. }), "{e}");
    let e = load(&with("nats: [1, 2]")).unwrap_err();
    assert!(matches!(e, ConfigError::Yaml { .. }), "{e}");
}

#[test]
fn debug_output_masks_secrets() {
    let text = with("")
        .replace("url: nats://127.0.0.1:4222", "url: nats://127.0.0.1:4222\n  password: nats-secret-pw");
    let (c, _) = load(&text).unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains("s3cret-badger-pw"), "{debug}");
    assert!(!debug.contains("nats-secret-pw"), "{debug}");
    assert!(debug.contains("<redacted>"), "{debug}");
    assert_eq!(format!("{:?}", SecretString::new(String::new())), "<empty>");
}

#[test]
fn client_config_needs_only_environment_and_nats() {
    let (c, _) =
        ClientConfig::from_yaml("environment: development\nconsul:\n  address: x\n", &no_env).unwrap();
    assert_eq!(c.environment, Environment::Development);
    assert_eq!(c.nats.url, "nats://127.0.0.1:4222");
    let e = ClientConfig::from_yaml("nats:\n  url: nats://x:1\n", &no_env).unwrap_err();
    assert!(matches!(e, ConfigError::Missing { key } if key == "environment"));
}

#[test]
fn config_file_search_and_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let searched = default_config_paths(Some(home));
    assert_eq!(searched[0], std::path::PathBuf::from("config.yaml"));
    assert_eq!(searched[1], std::path::PathBuf::from("/etc/mpcium/config.yaml"));
    assert_eq!(searched[2], home.join(".mpcium/config.yaml"));

    let explicit = home.join("custom.yaml");
    let e = NodeConfig::load(Some(&explicit), NodeOverrides::default()).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }), "{e}");

    std::fs::write(&explicit, minimal()).unwrap();
    let loaded = NodeConfig::load(Some(&explicit), NodeOverrides::default()).unwrap();
    assert_eq!(loaded.path, explicit);
    assert_eq!(loaded.config.mpc_threshold, 1);

    std::fs::create_dir_all(home.join(".mpcium")).unwrap();
    std::fs::write(home.join(".mpcium/config.yaml"), "x: 1").unwrap();
    // Only the home candidate exists (unless the machine has one in . or /etc).
    if !std::path::Path::new("config.yaml").exists()
        && !std::path::Path::new("/etc/mpcium/config.yaml").exists()
    {
        assert_eq!(find_config_file(None, Some(home)).unwrap(), home.join(".mpcium/config.yaml"));
        let empty = tempfile::tempdir().unwrap();
        let e = find_config_file(None, Some(empty.path())).unwrap_err();
        assert!(matches!(&e, ConfigError::NotFound { searched } if searched.len() == 3), "{e}");
    }
}

#[test]
fn nats_replicas_is_1_3_or_5_and_defaults_to_1() {
    let (c, warnings) = load(&minimal()).unwrap();
    assert_eq!(c.nats.replicas, 1);
    assert!(warnings.is_empty(), "{warnings:?}");
    for n in [1usize, 3, 5] {
        let (c, warnings) = load(&with(&format!("  replicas: {n}"))).unwrap();
        assert_eq!(c.nats.replicas, n);
        assert!(warnings.is_empty(), "nats.replicas is a known key: {warnings:?}");
    }
    for bad in ["0", "2", "7", "three", "-3", "3.0"] {
        let (key, msg) = err(&with(&format!("  replicas: {bad}")));
        assert_eq!(key, "nats.replicas", "value {bad}: {msg}");
        assert!(msg.contains("nats.replicas") && msg.contains("1, 3 or 5"), "value {bad}: {msg}");
        assert!(msg.contains(&format!("`{bad}`")), "the message quotes the value: {msg}");
    }
    // From the environment too, naming the variable; and the client view (the CLI) reads it.
    let e = load_env(&minimal(), &[("NATS_REPLICAS", "2")]).unwrap_err().to_string();
    assert!(e.contains("nats.replicas") && e.contains("NATS_REPLICAS"), "{e}");
    assert_eq!(load_env(&minimal(), &[("NATS_REPLICAS", "3")]).unwrap().nats.replicas, 3);
    let (c, _) =
        ClientConfig::from_yaml("environment: development\nnats:\n  replicas: 5\n", &no_env).unwrap();
    assert_eq!(c.nats.replicas, 5);
    let e = ClientConfig::from_yaml("environment: development\nnats:\n  replicas: 4\n", &no_env).unwrap_err();
    assert!(e.to_string().contains("nats.replicas"), "{e}");
}

#[test]
fn nats_url_may_list_several_servers() {
    let text = format!(
        "{}\nnats:\n  url: \"nats://127.0.0.1:4222, nats://127.0.0.1:4223,nats://127.0.0.1:4224\"\n",
        without("nats")
    );
    let (c, _) = load(&text).unwrap();
    assert_eq!(
        c.nats.servers(),
        ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223", "nats://127.0.0.1:4224"],
        "in the order written, blanks trimmed"
    );
    assert_eq!(load(&minimal()).unwrap().0.nats.servers(), ["nats://127.0.0.1:4222"]);
    // Every listed server is checked.
    let (key, msg) = err(&format!("{}\nnats:\n  url: \"nats://a:4222,http://b:4222\"\n", without("nats")));
    assert_eq!(key, "nats.url");
    assert!(msg.contains("http://b:4222"), "names the bad entry: {msg}");
    let (key, _) = err(&format!("{}\nnats:\n  url: \" , \"\n", without("nats")));
    assert_eq!(key, "nats.url");
}
