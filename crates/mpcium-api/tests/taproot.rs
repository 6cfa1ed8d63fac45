//! Our Taproot additions to the wire (docs/wire.md §4, §5.1, §6): key type `taproot`, the
//! request field `taproot_merkle_root`, the keygen event's `taproot_pub_key`. Checked byte for
//! byte against strings written by hand; without the new fields, the original's bytes exactly.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mpcium_api::attestation::Statement;
use mpcium_api::canonical::{sign_request_signed_bytes, sign_signed_bytes};
use mpcium_api::validate::{TAPROOT_MERKLE_ROOT_BYTES, TAPROOT_TX_BYTES};
use mpcium_api::{
    EcdsaPublicKeyXY, ErrorCode, InitiatorMessage, KeyType, KeygenResultEvent, ResharingMessage,
    SignTxMessage, SignTxRequest, SigningMode, SigningResultEvent, ValidationError,
};

fn message(key_type: KeyType, tx_len: usize) -> SignTxMessage {
    SignTxMessage {
        key_type,
        wallet_id: "wallet-123".into(),
        network_internal_code: "BTC".into(),
        tx_id: "tx-456".into(),
        tx: Some(vec![0xab; tx_len]),
        signature: Some(b"signature-data".to_vec()),
        derivation_path: Some(vec![0, 7]),
        authorizer_signatures: vec![],
    }
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

#[test]
fn taproot_is_a_supported_key_type_and_signs_a_32_byte_sighash() {
    assert_eq!(KeyType::from_wire("taproot"), KeyType::Taproot);
    assert_eq!(KeyType::Taproot.as_str(), "taproot");
    let ok = SignTxRequest::new(message(KeyType::Taproot, TAPROOT_TX_BYTES));
    assert_eq!(ok.validate(), Ok(()));
    for len in [0, 31, 33, 64] {
        let err = SignTxRequest::new(message(KeyType::Taproot, len)).validate().unwrap_err();
        assert_eq!(err, ValidationError::TaprootTxLength(len));
        assert_eq!(err.error_code(), ErrorCode::MsgValidation);
        assert!(err.to_string().contains("BIP341"), "{err}");
    }
    // Reshare and refresh requests may name the Taproot key.
    let reshare = ResharingMessage {
        session_id: "s1".into(),
        node_ids: Some(vec!["a".into(), "b".into()]),
        new_threshold: 1,
        key_type: KeyType::Taproot,
        wallet_id: "w1".into(),
        signature: None,
        authorizer_signatures: vec![],
    };
    assert_eq!(reshare.validate(), Ok(()));
}

#[test]
fn the_merkle_root_is_for_taproot_only_and_32_bytes() {
    let root = [0x11; TAPROOT_MERKLE_ROOT_BYTES];
    let req = SignTxRequest::new(message(KeyType::Taproot, 32)).with_taproot_merkle_root(root);
    assert_eq!(req.validate(), Ok(()));
    assert_eq!(req.merkle_root(), Ok(Some(root)));
    assert_eq!(SignTxRequest::new(message(KeyType::Taproot, 32)).merkle_root(), Ok(None));

    for len in [0, 31, 33] {
        let req = SignTxRequest::new(message(KeyType::Taproot, 32)).with_taproot_merkle_root(vec![1; len]);
        let err = req.validate().unwrap_err();
        assert_eq!(err, ValidationError::MerkleRootLength(len));
        assert_eq!(err.error_code(), ErrorCode::MsgValidation);
    }
    for (kind, tx_len) in [(KeyType::Secp256k1, 32), (KeyType::Ed25519, 10)] {
        let req = SignTxRequest::new(message(kind.clone(), tx_len)).with_taproot_merkle_root(root);
        let err = req.validate().unwrap_err();
        assert_eq!(err, ValidationError::MerkleRootWithoutTaproot(kind.as_str().to_owned()));
        assert_eq!(err.error_code(), ErrorCode::MsgValidation);
        assert!(err.to_string().contains("taproot_merkle_root"), "{err}");
    }
}

#[test]
fn signed_bytes_cover_the_merkle_root_and_are_unchanged_without_it() {
    let msg = message(KeyType::Taproot, 32);
    let tx = b64(&[0xab; 32]);
    let plain = SignTxRequest::new(msg.clone());
    for mode in [SigningMode::Compatible, SigningMode::Strict] {
        assert_eq!(plain.signed_bytes(mode), sign_signed_bytes(&msg, mode));
    }
    assert_eq!(
        text(plain.signed_bytes(SigningMode::Compatible)),
        format!(
            r#"{{"key_type":"taproot","wallet_id":"wallet-123","network_internal_code":"BTC","tx_id":"tx-456","tx":"{tx}"}}"#
        )
    );

    let root = [0x22; 32];
    let with_root = SignTxRequest::new(msg.clone()).with_taproot_merkle_root(root);
    let root64 = b64(&root);
    assert_eq!(
        text(with_root.signed_bytes(SigningMode::Compatible)),
        format!(
            r#"{{"key_type":"taproot","wallet_id":"wallet-123","network_internal_code":"BTC","tx_id":"tx-456","tx":"{tx}","taproot_merkle_root":"{root64}"}}"#
        )
    );
    assert_eq!(
        text(sign_request_signed_bytes(&with_root, SigningMode::Strict)),
        format!(
            r#"{{"key_type":"taproot","wallet_id":"wallet-123","network_internal_code":"BTC","tx_id":"tx-456","tx":"{tx}","taproot_merkle_root":"{root64}","derivation_path":[0,7]}}"#
        )
    );
    // With a value too: asset and amount first, then the root.
    let valued = SignTxRequest::with_value(msg, "BTC", "5000").with_taproot_merkle_root(root);
    assert!(
        text(valued.signed_bytes(SigningMode::Compatible))
            .ends_with(&format!(r#""asset":"BTC","amount":"5000","taproot_merkle_root":"{root64}"}}"#))
    );
    // Another root is other bytes: a root altered after signing fails the signature check.
    let other = SignTxRequest::new(message(KeyType::Taproot, 32)).with_taproot_merkle_root([0x23; 32]);
    assert_ne!(other.signed_bytes(SigningMode::Compatible), with_root.signed_bytes(SigningMode::Compatible));
}

#[test]
fn the_merkle_root_travels_after_the_value_and_round_trips() {
    let plain = SignTxRequest::new(message(KeyType::Taproot, 32));
    assert_eq!(plain.to_json(), plain.message.to_json(), "without it: the Go client's bytes");
    let req = SignTxRequest::with_value(message(KeyType::Taproot, 32), "BTC", "1")
        .with_taproot_merkle_root([0x33; 32]);
    let json = req.to_json();
    let root64 = b64(&[0x33; 32]);
    assert!(
        json.ends_with(&format!(
            r#""derivation_path":[0,7],"asset":"BTC","amount":"1","taproot_merkle_root":"{root64}"}}"#
        )),
        "{json}"
    );
    assert_eq!(SignTxRequest::from_json(json.as_bytes()).unwrap(), req);
    // `null` is absent (Go `[]byte`); a non-base64 value is a decoding error.
    let body = r#"{"key_type":"taproot","wallet_id":"w","tx_id":"t","taproot_merkle_root":null}"#;
    assert_eq!(SignTxRequest::from_json(body.as_bytes()).unwrap().taproot_merkle_root, None);
    let body = r#"{"key_type":"taproot","wallet_id":"w","tx_id":"t","taproot_merkle_root":"!!"}"#;
    let err = SignTxRequest::from_json(body.as_bytes()).unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::UnmarshalFailure);
    // The original's decoder ignores the field.
    let msg = SignTxMessage::from_json(json.as_bytes()).unwrap();
    assert_eq!(msg, req.message);
}

#[test]
fn keygen_event_carries_the_taproot_key_only_when_present() {
    let ecdsa = EcdsaPublicKeyXY([1; 64]);
    let plain = KeygenResultEvent::success("w1", &ecdsa, &[2; 32]);
    let event = plain.clone().with_taproot_pub_key(&[3; 32]);
    let json = event.to_json();
    assert_eq!(
        json,
        format!(
            r#"{{"wallet_id":"w1","ecdsa_pub_key":"{}","eddsa_pub_key":"{}","result_type":"success","error_reason":"","error_code":"","taproot_pub_key":"{}"}}"#,
            b64(&[1; 64]),
            b64(&[2; 32]),
            b64(&[3; 32])
        )
    );
    // Everything before our field is the original's event, byte for byte.
    let original = plain.to_json();
    assert_eq!(json[..original.len() - 1], original[..original.len() - 1]);
    assert!(!original.contains("taproot"));
    assert_eq!(KeygenResultEvent::from_json(json.as_bytes()).unwrap(), event);
    // An event without the field (the original's, or an error) decodes with `None`.
    let decoded = KeygenResultEvent::from_json(original.as_bytes()).unwrap();
    assert_eq!(decoded.taproot_pub_key, None);
    let error = KeygenResultEvent::error("w1", ErrorCode::KeyGeneration, "x");
    assert!(!error.to_json().contains("taproot"));
}

#[test]
fn taproot_signing_result_has_a_64_byte_signature_and_null_r_s() {
    let event = SigningResultEvent::taproot_success("w1", "tx1", "BTC", &[0u8; 64]);
    let zeros64 = "A".repeat(86) + "==";
    let expected = format!(
        r#"{{"result_type":"success","error_code":"","error_reason":"","is_timeout":false,"network_internal_code":"BTC","wallet_id":"w1","tx_id":"tx1","r":null,"s":null,"signature_recovery":null,"signature":"{zeros64}"}}"#
    );
    assert_eq!(event.to_json(), expected);
    assert_eq!(SigningResultEvent::from_json(expected.as_bytes()).unwrap(), event);
}

#[test]
fn keygen_attestation_covers_the_taproot_key() {
    let keygen = |taproot_pub_key| Statement::Keygen {
        wallet_id: "w",
        ecdsa_pub_key: &[1; 64],
        eddsa_pub_key: &[2; 32],
        taproot_pub_key,
    };
    let (base, with, other) = (keygen(None), keygen(Some(&[3; 32])), keygen(Some(&[4; 32])));
    assert!(with.to_bytes().starts_with(&base.to_bytes()));
    assert_ne!(with.to_bytes(), other.to_bytes());
}
