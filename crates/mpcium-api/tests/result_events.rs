//! Result events (docs/wire.md §6), byte for byte against strings written by hand from the Go structs.

use mpcium_api::result::{MAX_DELIVERY_REASON, PublicKeyFormatError};
use mpcium_api::{
    EcdsaPublicKeyXY, ErrorCode, KeyType, KeygenResultEvent, ResharingResultEvent, ResultType,
    SigningResultEvent,
};

#[test]
fn keygen_success_bytes() {
    let mut xy = [0u8; 64];
    xy[31] = 1; // X = 1
    xy[63] = 2; // Y = 2
    let ecdsa = EcdsaPublicKeyXY::from_coordinates(&[1], &[2]).unwrap();
    assert_eq!(ecdsa.0, xy);
    let event = KeygenResultEvent::success("w1", &ecdsa, &[0xff; 32]);
    let expected = concat!(
        r#"{"wallet_id":"w1","#,
        r#""ecdsa_pub_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAg==","#,
        r#""eddsa_pub_key":"//////////////////////////////////////////8=","#,
        r#""result_type":"success","error_reason":"","error_code":""}"#
    );
    assert_eq!(event.to_json(), expected);
    assert_eq!(KeygenResultEvent::from_json(expected.as_bytes()).unwrap(), event);
}

#[test]
fn keygen_error_bytes() {
    let event = KeygenResultEvent::error(
        "w1",
        ErrorCode::NetworkTimeout,
        "Key generation timed out: keygen session timed out after 30s",
    );
    let expected = r#"{"wallet_id":"w1","ecdsa_pub_key":null,"eddsa_pub_key":null,"result_type":"error","error_reason":"Key generation timed out: keygen session timed out after 30s","error_code":"ERROR_NETWORK_TIMEOUT"}"#;
    assert_eq!(event.to_json(), expected);
    let decoded = KeygenResultEvent::from_json(expected.as_bytes()).unwrap();
    assert_eq!(decoded, event);
    assert_eq!(decoded.result_type, ResultType::Error);
}

#[test]
fn ecdsa_public_key_forms() {
    let mut sec1 = vec![0x04];
    sec1.extend((1..=64).collect::<Vec<u8>>());
    let key = EcdsaPublicKeyXY::from_sec1_uncompressed(&sec1).unwrap();
    assert_eq!(key.0.to_vec(), sec1[1..].to_vec());
    assert_eq!(
        EcdsaPublicKeyXY::from_sec1_uncompressed(&sec1[1..]),
        Err(PublicKeyFormatError::NotUncompressedSec1)
    );
    let mut compressed = vec![0x02];
    compressed.extend([7u8; 32]);
    assert!(EcdsaPublicKeyXY::from_sec1_uncompressed(&compressed).is_err());
    assert_eq!(
        EcdsaPublicKeyXY::from_coordinates(&[1; 33], &[1]),
        Err(PublicKeyFormatError::CoordinateTooLong(33))
    );
    // A full 32-byte coordinate is not shifted.
    let full = EcdsaPublicKeyXY::from_coordinates(&[9; 32], &[8; 32]).unwrap();
    assert_eq!(&full.0[..32], &[9; 32]);
    assert_eq!(&full.0[32..], &[8; 32]);
}

#[test]
fn signing_ecdsa_success_bytes() {
    let event = SigningResultEvent::ecdsa_success("w1", "tx1", "ETH", &[0u8; 32], &[0xff; 32], 1);
    let expected = concat!(
        r#"{"result_type":"success","error_code":"","error_reason":"","is_timeout":false,"#,
        r#""network_internal_code":"ETH","wallet_id":"w1","tx_id":"tx1","#,
        r#""r":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","#,
        r#""s":"//////////////////////////////////////////8=","#,
        r#""signature_recovery":"AQ==","signature":null}"#
    );
    assert_eq!(event.to_json(), expected);
    assert_eq!(SigningResultEvent::from_json(expected.as_bytes()).unwrap(), event);
}

#[test]
fn signing_eddsa_success_bytes() {
    let event = SigningResultEvent::eddsa_success("w1", "tx1", "SOL", &[0u8; 64]);
    let zeros64 = "A".repeat(86) + "==";
    let expected = format!(
        r#"{{"result_type":"success","error_code":"","error_reason":"","is_timeout":false,"network_internal_code":"SOL","wallet_id":"w1","tx_id":"tx1","r":null,"s":null,"signature_recovery":null,"signature":"{zeros64}"}}"#
    );
    assert_eq!(event.to_json(), expected);
    assert_eq!(SigningResultEvent::from_json(expected.as_bytes()).unwrap(), event);
}

#[test]
fn signing_error_and_timeout_bytes() {
    let event = SigningResultEvent::error(
        "w1",
        "tx1",
        "BTC",
        ErrorCode::SessionDuplicate,
        "Duplicate session: duplicate signing request detected for walletID=w1 txID=tx1",
    );
    assert_eq!(
        event.to_json(),
        r#"{"result_type":"error","error_code":"ERROR_SESSION_DUPLICATE","error_reason":"Duplicate session: duplicate signing request detected for walletID=w1 txID=tx1","is_timeout":false,"network_internal_code":"BTC","wallet_id":"w1","tx_id":"tx1","r":null,"s":null,"signature_recovery":null,"signature":null}"#
    );
    let timeout = SigningResultEvent::max_delivery_exceeded("w1", "tx1", "BTC");
    assert_eq!(
        timeout.to_json(),
        r#"{"result_type":"error","error_code":"ERROR_MAX_DELIVERY_ATTEMPTS","error_reason":"Signing failed: maximum delivery attempts exceeded","is_timeout":true,"network_internal_code":"BTC","wallet_id":"w1","tx_id":"tx1","r":null,"s":null,"signature_recovery":null,"signature":null}"#
    );
    assert_eq!(timeout.error_reason, MAX_DELIVERY_REASON);
}

#[test]
fn error_reasons_use_go_escaping() {
    let event = KeygenResultEvent::error("w<1>", ErrorCode::Unknown, "a & b\n\"c\"");
    assert_eq!(
        event.to_json(),
        r#"{"wallet_id":"w\u003c1\u003e","ecdsa_pub_key":null,"eddsa_pub_key":null,"result_type":"error","error_reason":"a \u0026 b\n\"c\"","error_code":"ERROR_UNKNOWN"}"#
    );
}

#[test]
fn resharing_success_and_error_bytes() {
    let event = ResharingResultEvent::success("w1", 2, KeyType::Ed25519, &[0xff; 32]);
    let expected = r#"{"wallet_id":"w1","new_threshold":2,"key_type":"ed25519","pub_key":"//////////////////////////////////////////8=","result_type":"success","error_reason":"","error_code":""}"#;
    assert_eq!(event.to_json(), expected);
    assert_eq!(ResharingResultEvent::from_json(expected.as_bytes()).unwrap(), event);

    let event = ResharingResultEvent::error(
        "w1",
        1,
        KeyType::Secp256k1,
        ErrorCode::InvalidInitiatorSignature,
        "Failed to verify initiator message: invalid signature from initiator",
    );
    let expected = r#"{"wallet_id":"w1","new_threshold":1,"key_type":"secp256k1","pub_key":null,"result_type":"error","error_reason":"Failed to verify initiator message: invalid signature from initiator","error_code":"ERROR_INVALID_INITIATOR_SIGNATURE"}"#;
    assert_eq!(event.to_json(), expected);
    assert_eq!(ResharingResultEvent::from_json(expected.as_bytes()).unwrap(), event);
}

#[test]
fn decoding_events_is_tolerant_but_checks_result_type() {
    // Unknown fields, a future error code, missing fields.
    let body = br#"{"result_type":"error","error_code":"ERROR_NEW_THING","tx_id":"t","extra":1}"#;
    let event = SigningResultEvent::from_json(body).unwrap();
    assert_eq!(event.error_code, Some(ErrorCode::Other("ERROR_NEW_THING".into())));
    assert_eq!(event.wallet_id, "");
    assert!(!event.is_timeout);
    assert_eq!(event.signature, None);

    let err = SigningResultEvent::from_json(br#"{"result_type":"done"}"#).unwrap_err();
    assert!(err.to_string().contains("unknown result_type \"done\""), "{err}");
    let err = SigningResultEvent::from_json(br#"{"result_type":"success","is_timeout":"no"}"#).unwrap_err();
    assert!(err.to_string().contains("expected a boolean"), "{err}");
}
