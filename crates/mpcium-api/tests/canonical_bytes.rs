//! The bytes an initiator and authorizers sign (docs/wire.md §5), checked byte for byte against strings
//! written by hand from the spec and from Go's `encoding/json` rules.

use mpcium_api::canonical::{SigningMode, keygen_signed_bytes, reshare_signed_bytes, sign_signed_bytes};
use mpcium_api::{
    AuthorizerSignature, GenerateKeyMessage, InitiatorMessage, KeyType, ResharingMessage, SignTxMessage,
    authorizer_payload,
};

fn spec_sign_message() -> SignTxMessage {
    SignTxMessage {
        key_type: KeyType::Secp256k1,
        wallet_id: "wallet-123".into(),
        network_internal_code: "BTC".into(),
        tx_id: "tx-456".into(),
        tx: Some(b"transaction-data".to_vec()),
        signature: Some(b"signature-data".to_vec()),
        derivation_path: Some(vec![44, 60, 0, 0, 0]),
        authorizer_signatures: vec![AuthorizerSignature {
            authorizer_id: "a1".into(),
            signature: Some(vec![1]),
        }],
    }
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

#[test]
fn keygen_signs_the_wallet_id_bytes() {
    assert_eq!(keygen_signed_bytes("test-wallet-123"), b"test-wallet-123");
    let msg = GenerateKeyMessage {
        wallet_id: "wället<1>".into(),
        signature: Some(vec![7]),
        authorizer_signatures: vec![],
    };
    // No JSON escaping: raw UTF-8 of the ID.
    assert_eq!(msg.signed_bytes(SigningMode::Compatible), "wället<1>".as_bytes());
    assert_eq!(msg.signed_bytes(SigningMode::Strict), "wället<1>".as_bytes());
    assert_eq!(msg.initiator_id(), "wället<1>");
}

#[test]
fn sign_bytes_match_the_spec_example() {
    let msg = spec_sign_message();
    assert_eq!(
        text(sign_signed_bytes(&msg, SigningMode::Compatible)),
        r#"{"key_type":"secp256k1","wallet_id":"wallet-123","network_internal_code":"BTC","tx_id":"tx-456","tx":"dHJhbnNhY3Rpb24tZGF0YQ=="}"#
    );
    // Signature, derivation path and authorizers are not covered (compatible mode).
    let mut other = msg.clone();
    other.derivation_path = None;
    other.signature = None;
    other.authorizer_signatures.clear();
    assert_eq!(other.signed_bytes(SigningMode::Compatible), msg.signed_bytes(SigningMode::Compatible));
    assert_eq!(msg.initiator_id(), "tx-456");
}

#[test]
fn strict_sign_bytes_append_the_derivation_path() {
    let mut msg = spec_sign_message();
    assert_eq!(
        text(msg.signed_bytes(SigningMode::Strict)),
        r#"{"key_type":"secp256k1","wallet_id":"wallet-123","network_internal_code":"BTC","tx_id":"tx-456","tx":"dHJhbnNhY3Rpb24tZGF0YQ==","derivation_path":[44,60,0,0,0]}"#
    );
    msg.derivation_path = None;
    assert!(text(msg.signed_bytes(SigningMode::Strict)).ends_with(r#""derivation_path":null}"#));
    msg.derivation_path = Some(vec![]);
    assert!(text(msg.signed_bytes(SigningMode::Strict)).ends_with(r#""derivation_path":[]}"#));
}

#[test]
fn sign_bytes_nil_and_empty_tx_differ_like_go() {
    let mut msg = spec_sign_message();
    msg.tx = None;
    assert!(text(msg.signed_bytes(SigningMode::Compatible)).ends_with(r#""tx":null}"#));
    msg.tx = Some(vec![]);
    assert!(text(msg.signed_bytes(SigningMode::Compatible)).ends_with(r#""tx":""}"#));
}

#[test]
fn sign_bytes_use_go_string_escaping() {
    let msg = SignTxMessage {
        key_type: KeyType::Unsupported("a\"b".into()),
        wallet_id: "<w&1>".into(),
        network_internal_code: "line\nsep\u{2028}para\u{2029}".into(),
        tx_id: "tab\tbs\\slash/bell\u{7}del\u{7f}ff\u{c}bs\u{8}".into(),
        tx: Some(vec![0xff, 0xfe, 0x00]),
        ..SignTxMessage::default()
    };
    assert_eq!(
        text(msg.signed_bytes(SigningMode::Compatible)),
        "{\"key_type\":\"a\\\"b\",\"wallet_id\":\"\\u003cw\\u00261\\u003e\",\
         \"network_internal_code\":\"line\\nsep\\u2028para\\u2029\",\
         \"tx_id\":\"tab\\tbs\\\\slash/bell\\u0007del\u{7f}ff\\fbs\\b\",\"tx\":\"//4A\"}"
    );
}

#[test]
fn sign_bytes_of_a_decoded_go_client_request() {
    // What the Go client publishes; the node re-derives the signed bytes from the decoded values.
    let body = br#"{"key_type":"ed25519","wallet_id":"w\u003c1","network_internal_code":"SOL","tx_id":"t","tx":"AAEC","signature":"c2ln","derivation_path":null}"#;
    let msg = SignTxMessage::from_json(body).unwrap();
    assert_eq!(msg.wallet_id, "w<1");
    assert_eq!(
        text(msg.signed_bytes(SigningMode::Compatible)),
        r#"{"key_type":"ed25519","wallet_id":"w\u003c1","network_internal_code":"SOL","tx_id":"t","tx":"AAEC"}"#
    );
    assert_eq!(msg.to_json().as_bytes(), body);
}

#[test]
fn reshare_bytes_match_the_spec_example() {
    let msg = ResharingMessage {
        session_id: "s1".into(),
        node_ids: Some(vec!["a".into(), "b".into()]),
        new_threshold: 1,
        key_type: KeyType::Ed25519,
        wallet_id: "w1".into(),
        signature: Some(vec![1, 2]),
        authorizer_signatures: vec![AuthorizerSignature::default()],
    };
    assert_eq!(
        text(reshare_signed_bytes(&msg)),
        r#"{"session_id":"s1","node_ids":["a","b"],"new_threshold":1,"key_type":"ed25519","wallet_id":"w1"}"#
    );
    assert_eq!(msg.signed_bytes(SigningMode::Strict), reshare_signed_bytes(&msg));
    assert_eq!(msg.initiator_id(), "w1");
}

#[test]
fn reshare_bytes_with_absent_and_empty_node_ids() {
    let mut msg = ResharingMessage {
        session_id: "s".into(),
        node_ids: None,
        new_threshold: 0,
        key_type: KeyType::Missing,
        wallet_id: "".into(),
        ..ResharingMessage::default()
    };
    assert_eq!(
        text(reshare_signed_bytes(&msg)),
        r#"{"session_id":"s","node_ids":null,"new_threshold":0,"key_type":"","wallet_id":""}"#
    );
    msg.node_ids = Some(vec![]);
    assert!(text(reshare_signed_bytes(&msg)).contains(r#""node_ids":[],"#));
}

#[test]
fn authorizer_payloads_per_message_type() {
    let keygen = GenerateKeyMessage {
        wallet_id: "w1".into(),
        signature: Some(vec![1, 2, 3]),
        authorizer_signatures: vec![],
    };
    assert_eq!(
        text(authorizer_payload(&keygen, SigningMode::Compatible)),
        r#"{"initiator_id":"w1","initiator_raw":"dzE=","initiator_sig":"AQID"}"#
    );

    let mut sign = spec_sign_message();
    sign.tx = Some(b"tx".to_vec());
    sign.signature = None;
    let raw = r#"{"key_type":"secp256k1","wallet_id":"wallet-123","network_internal_code":"BTC","tx_id":"tx-456","tx":"dHg="}"#;
    use base64::Engine as _;
    let raw_b64 = base64::engine::general_purpose::STANDARD.encode(raw);
    assert_eq!(
        text(authorizer_payload(&sign, SigningMode::Compatible)),
        format!(r#"{{"initiator_id":"tx-456","initiator_raw":"{raw_b64}","initiator_sig":null}}"#)
    );
    // Strict mode changes the embedded raw bytes.
    assert_ne!(
        authorizer_payload(&sign, SigningMode::Strict),
        authorizer_payload(&sign, SigningMode::Compatible)
    );

    let reshare = ResharingMessage {
        session_id: "s1".into(),
        node_ids: None,
        new_threshold: 2,
        key_type: KeyType::Secp256k1,
        wallet_id: "w9".into(),
        signature: Some(vec![]),
        authorizer_signatures: vec![],
    };
    let payload = text(authorizer_payload(&reshare, SigningMode::Compatible));
    assert!(payload.starts_with(r#"{"initiator_id":"w9","initiator_raw":""#), "{payload}");
    assert!(payload.ends_with(r#","initiator_sig":""}"#), "{payload}");
}
