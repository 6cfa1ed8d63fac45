//! The bytes an initiator signs for a signing request with our `asset` / `amount` (docs/wire.md
//! §5.1), checked byte for byte against strings written by hand; without them, the original's
//! five-field bytes (`canonical_bytes.rs` checks those).

use base64::Engine as _;
use mpcium_api::canonical::{sign_request_signed_bytes, sign_signed_bytes};
use mpcium_api::{InitiatorMessage, KeyType, SignTxMessage, SignTxRequest, SigningMode, authorizer_payload};

fn message() -> SignTxMessage {
    SignTxMessage {
        key_type: KeyType::Secp256k1,
        wallet_id: "wallet-123".into(),
        network_internal_code: "BTC".into(),
        tx_id: "tx-456".into(),
        tx: Some(b"transaction-data".to_vec()),
        signature: Some(b"signature-data".to_vec()),
        derivation_path: Some(vec![44, 60, 0, 0, 0]),
        authorizer_signatures: vec![],
    }
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

#[test]
fn seven_field_sign_bytes_append_asset_and_amount() {
    let req = SignTxRequest::with_value(message(), "BTC", "1000000");
    assert_eq!(
        text(req.signed_bytes(SigningMode::Compatible)),
        r#"{"key_type":"secp256k1","wallet_id":"wallet-123","network_internal_code":"BTC","tx_id":"tx-456","tx":"dHJhbnNhY3Rpb24tZGF0YQ==","asset":"BTC","amount":"1000000"}"#
    );
    assert_eq!(
        text(sign_request_signed_bytes(&req, SigningMode::Strict)),
        r#"{"key_type":"secp256k1","wallet_id":"wallet-123","network_internal_code":"BTC","tx_id":"tx-456","tx":"dHJhbnNhY3Rpb24tZGF0YQ==","asset":"BTC","amount":"1000000","derivation_path":[44,60,0,0,0]}"#
    );
    // Go string escaping applies to the asset as to every string.
    let req = SignTxRequest::with_value(message(), "<A&B>", "0");
    assert!(
        text(req.signed_bytes(SigningMode::Compatible))
            .ends_with(r#""asset":"\u003cA\u0026B\u003e","amount":"0"}"#)
    );
}

#[test]
fn without_a_value_the_bytes_are_the_originals() {
    let req = SignTxRequest::new(message());
    for mode in [SigningMode::Compatible, SigningMode::Strict] {
        assert_eq!(req.signed_bytes(mode), sign_signed_bytes(&message(), mode));
    }
    assert_eq!(req.to_json(), message().to_json());
}

#[test]
fn the_authorizer_payload_embeds_the_seven_field_bytes() {
    let req = SignTxRequest::with_value(message(), "BTC", "1000000");
    let raw = base64::engine::general_purpose::STANDARD.encode(req.signed_bytes(SigningMode::Compatible));
    let sig = base64::engine::general_purpose::STANDARD.encode(b"signature-data");
    assert_eq!(
        text(authorizer_payload(&req, SigningMode::Compatible)),
        format!(r#"{{"initiator_id":"tx-456","initiator_raw":"{raw}","initiator_sig":"{sig}"}}"#)
    );
    assert_eq!(req.initiator_id(), "tx-456");
}
