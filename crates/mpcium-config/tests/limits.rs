//! Tests of `limits.requests_per_second.*` and `limits.peer_messages_*`: defaults (requests
//! unlimited, so existing configs behave as before), values from the file and the environment,
//! and errors naming the key.

use std::collections::HashMap;

use mpcium_config::*;

const ED_PUB: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const CHAIN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn with(extra: &str) -> String {
    format!(
        "environment: development\nbadger_password: \"s3cret-badger-pw\"\nmpc_threshold: 1\n\
         event_initiator_pubkey: \"{ED_PUB}\"\nchain_code: \"{CHAIN}\"\n{extra}\n"
    )
}

fn load_env(text: &str, env: &[(&str, &str)]) -> Result<(NodeConfig, Vec<ConfigWarning>), ConfigError> {
    let map: HashMap<String, String> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    NodeConfig::from_yaml(text, &|k| map.get(k).cloned(), NodeOverrides::default())
}

fn load(text: &str) -> NodeConfig {
    let (config, warnings) = load_env(text, &[]).expect("valid config");
    assert!(warnings.is_empty(), "{warnings:?}");
    config
}

#[test]
fn request_rates_are_unlimited_and_peer_messages_have_a_safe_default_when_unset() {
    let c = load(&with(""));
    assert_eq!(c.limits.requests_per_second, RequestRates { per_wallet: None, cluster: None });
    assert_eq!(
        c.limits.peer_messages,
        Rate {
            per_second: DEFAULT_PEER_MESSAGES_PER_SECOND,
            burst: 2 * DEFAULT_PEER_MESSAGES_PER_SECOND as u32
        }
    );
    assert_eq!(c.limits.max_request_bytes, DEFAULT_MAX_REQUEST_BYTES);
}

#[test]
fn rates_and_bursts_are_read_from_the_file() {
    let c = load(&with(
        "limits:\n  requests_per_second:\n    per_wallet: 0.5\n    cluster: 200\n    cluster_burst: 50\n  \
         peer_messages_per_second: 800\n  peer_messages_burst: 900",
    ));
    // A burst left out is the rate rounded up, at least one.
    assert_eq!(c.limits.requests_per_second.per_wallet, Some(Rate { per_second: 0.5, burst: 1 }));
    assert_eq!(c.limits.requests_per_second.cluster, Some(Rate { per_second: 200.0, burst: 50 }));
    assert_eq!(c.limits.peer_messages, Rate { per_second: 800.0, burst: 900 });
    let c = load(&with("limits:\n  requests_per_second:\n    per_wallet: 2.5"));
    assert_eq!(c.limits.requests_per_second.per_wallet, Some(Rate { per_second: 2.5, burst: 3 }));
    assert_eq!(c.limits.requests_per_second.cluster, None);
}

#[test]
fn rates_come_from_the_environment_too() {
    let (c, _) = load_env(
        &with(""),
        &[
            ("LIMITS_REQUESTS_PER_SECOND_PER_WALLET", "3"),
            ("LIMITS_REQUESTS_PER_SECOND_PER_WALLET_BURST", "6"),
            ("LIMITS_PEER_MESSAGES_PER_SECOND", "100"),
        ],
    )
    .unwrap();
    assert_eq!(c.limits.requests_per_second.per_wallet, Some(Rate { per_second: 3.0, burst: 6 }));
    assert_eq!(c.limits.peer_messages, Rate { per_second: 100.0, burst: 200 });
    let e = load_env(&with(""), &[("LIMITS_REQUESTS_PER_SECOND_CLUSTER", "fast")]).unwrap_err();
    assert!(e.to_string().contains("LIMITS_REQUESTS_PER_SECOND_CLUSTER"), "{e}");
}

#[test]
fn bad_rates_are_fatal_and_name_the_key() {
    let cases = [
        ("limits.requests_per_second.per_wallet", "    per_wallet: 0"),
        ("limits.requests_per_second.per_wallet", "    per_wallet: -1"),
        ("limits.requests_per_second.per_wallet", "    per_wallet: lots"),
        ("limits.requests_per_second.per_wallet", "    per_wallet: \"inf\""),
        ("limits.requests_per_second.cluster", "    cluster: 2000000"),
        ("limits.requests_per_second.cluster_burst", "    cluster: 5\n    cluster_burst: 0"),
        ("limits.requests_per_second.cluster_burst", "    cluster: 5\n    cluster_burst: 1.5"),
        // A burst without its rate is a mistake, not "unlimited".
        ("limits.requests_per_second.per_wallet_burst", "    per_wallet_burst: 10"),
    ];
    for (key, lines) in cases {
        let text = with(&format!("limits:\n  requests_per_second:\n{lines}"));
        let e = load_env(&text, &[]).expect_err(lines);
        match &e {
            ConfigError::Invalid { key: got, .. } => assert_eq!(got, key, "{lines}: {e}"),
            other => panic!("{lines}: unexpected error {other}"),
        }
        assert!(e.to_string().contains(key), "{e}");
    }
    for (key, line) in [
        ("limits.peer_messages_per_second", "  peer_messages_per_second: 0"),
        ("limits.peer_messages_per_second", "  peer_messages_per_second: nan"),
        ("limits.peer_messages_burst", "  peer_messages_burst: 0"),
    ] {
        let e = load_env(&with(&format!("limits:\n{line}")), &[]).expect_err(line);
        assert!(matches!(&e, ConfigError::Invalid { key: got, .. } if got == key), "{line}: {e}");
    }
}

#[test]
fn an_unknown_rate_key_is_a_warning() {
    let (_, warnings) =
        load_env(&with("limits:\n  requests_per_second:\n    per_wallett: 1"), &[]).expect("loads");
    assert_eq!(
        warnings,
        vec![ConfigWarning::UnknownKey { key: "limits.requests_per_second.per_wallett".into() }]
    );
}
