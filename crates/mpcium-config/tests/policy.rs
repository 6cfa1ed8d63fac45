//! `policy.rules`: read as written, defaults, and every bad rule refused naming its key.

use mpcium_config::*;

const ED_PUB: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const ED_PUB2: &str = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
const CHAIN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A valid config with two authorizers and `policy` appended.
fn config(policy: &str) -> String {
    format!(
        "environment: development\nbadger_password: \"pw\"\nmpc_threshold: 1\n\
         event_initiator_pubkey: \"{ED_PUB}\"\nchain_code: \"{CHAIN}\"\nnats:\n  url: nats://127.0.0.1:4222\n\
         authorization:\n  authorizer_public_keys:\n    approver1:\n      public_key: {ED_PUB}\n    \
         approver2:\n      public_key: {ED_PUB2}\n{policy}\n"
    )
}

fn load(text: &str) -> Result<(NodeConfig, Vec<ConfigWarning>), ConfigError> {
    NodeConfig::from_yaml(text, &|_| None, NodeOverrides::default())
}

/// The key of the error `policy` makes, and its message.
fn refused(policy: &str) -> (String, String) {
    let e = load(&config(policy)).expect_err("the policy should be refused");
    let msg = e.to_string();
    match e {
        ConfigError::Invalid { key, .. } | ConfigError::Missing { key } => (key, msg),
        other => panic!("unexpected error kind: {other}"),
    }
}

const ISSUE_EXAMPLE: &str = r#"policy:
  rules:
    - name: large-btc
      network_internal_code: btc
      asset: BTC
      wallet_ids: []
      amount_above: "1000000"
      require_authorizers: [approver1]
      min_authorizers: 1
    - name: huge
      amount_above: 500000000000000000000000000000000000000000
      wallet_ids: [w1, w2]
      require_authorizers: [approver1, approver2]"#;

#[test]
fn rules_are_read_as_written_with_min_defaulting_to_all() {
    let (c, warnings) = load(&config(ISSUE_EXAMPLE)).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        c.policy.rules,
        vec![
            PolicyRule {
                name: "large-btc".into(),
                network_internal_code: Some("btc".into()),
                asset: Some("BTC".into()),
                wallet_ids: vec![],
                amount_above: "1000000".into(),
                require_authorizers: vec!["approver1".into()],
                min_authorizers: 1,
            },
            PolicyRule {
                name: "huge".into(),
                network_internal_code: None,
                asset: None,
                wallet_ids: vec!["w1".into(), "w2".into()],
                amount_above: "500000000000000000000000000000000000000000".into(),
                require_authorizers: vec!["approver1".into(), "approver2".into()],
                min_authorizers: 2,
            },
        ]
    );
    let (c, _) = load(&config("")).unwrap();
    assert!(c.policy.rules.is_empty());
}

#[test]
fn bad_rules_stop_the_node_naming_the_key() {
    let rule = |body: &str| {
        format!(
            "policy:\n  rules:\n    - name: ok\n      amount_above: \"1\"\n      require_authorizers: [approver1]\n    - {body}"
        )
    };
    let cases: &[(&str, &str, &str)] = &[
        (
            "name: r\n      amount_above: \"1\"\n      require_authorizers: [carol]",
            "policy.rules[1].require_authorizers",
            "carol",
        ),
        (
            "name: r\n      amount_above: \"1\"\n      require_authorizers: [approver1, approver1]",
            "policy.rules[1].require_authorizers",
            "twice",
        ),
        (
            "name: r\n      amount_above: \"1\"\n      require_authorizers: []",
            "policy.rules[1].require_authorizers",
            "required",
        ),
        (
            "name: r\n      amount_above: \"1\"\n      require_authorizers: [approver1]\n      min_authorizers: 2",
            "policy.rules[1].min_authorizers",
            "between 1 and the 1",
        ),
        (
            "name: r\n      amount_above: \"1\"\n      require_authorizers: [approver1]\n      min_authorizers: 0",
            "policy.rules[1].min_authorizers",
            "between 1",
        ),
        (
            "name: r\n      amount_above: \"1\"\n      require_authorizers: [approver1]\n      min_authorizers: -1",
            "policy.rules[1].min_authorizers",
            "not a positive integer",
        ),
        (
            "name: r\n      amount_above: \"-5\"\n      require_authorizers: [approver1]",
            "policy.rules[1].amount_above",
            "non-negative",
        ),
        (
            "name: r\n      amount_above: \"1.5\"\n      require_authorizers: [approver1]",
            "policy.rules[1].amount_above",
            "decimal",
        ),
        (
            "name: r\n      amount_above: \"007\"\n      require_authorizers: [approver1]",
            "policy.rules[1].amount_above",
            "leading zeros",
        ),
        (
            "name: r\n      amount_above: \" 7\"\n      require_authorizers: [approver1]",
            "policy.rules[1].amount_above",
            "spaces",
        ),
        ("name: r\n      require_authorizers: [approver1]", "policy.rules[1].amount_above", "required"),
        (
            "name: ok\n      amount_above: \"1\"\n      require_authorizers: [approver1]",
            "policy.rules[1].name",
            "policy.rules[0]",
        ),
        ("amount_above: \"1\"\n      require_authorizers: [approver1]", "policy.rules[1].name", "required"),
        (
            "name: r\n      amount_above: \"1\"\n      wallet_ids: [\"\"]\n      require_authorizers: [approver1]",
            "policy.rules[1].wallet_ids",
            "empty",
        ),
    ];
    for (body, want_key, want_text) in cases {
        let (key, msg) = refused(&rule(body));
        assert_eq!(key, *want_key, "{body}: {msg}");
        assert!(msg.contains(want_text), "{body}: {msg:?} should contain {want_text:?}");
    }
}

#[test]
fn a_misspelt_rule_field_is_an_error_not_a_warning() {
    let text = config(
        "policy:\n  rules:\n    - name: r\n      amount_above: \"1\"\n      require_authorizers: [approver1]\n      min_authorizer: 1",
    );
    let e = load(&text).expect_err("unknown rule field");
    assert!(e.to_string().contains("min_authorizer"), "{e}");
    // An unknown key beside `rules` is a warning, as elsewhere.
    let (_, warnings) = load(&config("policy:\n  rulez: []")).unwrap();
    assert_eq!(warnings, vec![ConfigWarning::UnknownKey { key: "policy.rulez".into() }]);
}
