//! Request validation and limits (our node's checks before any cryptography).

use mpcium_api::validate::{HARDENED_OFFSET, MAX_DERIVATION_DEPTH, MAX_EDDSA_TX_BYTES};
use mpcium_api::{
    ErrorCode, GenerateKeyMessage, IdError, IdKind, KeyType, ResharingMessage, SignTxMessage, ValidationError,
};

fn sign(key_type: KeyType, tx_len: usize) -> SignTxMessage {
    SignTxMessage {
        key_type,
        wallet_id: "w1".into(),
        network_internal_code: "ETH".into(),
        tx_id: "tx1".into(),
        tx: Some(vec![1; tx_len]),
        signature: Some(vec![1]),
        derivation_path: None,
        authorizer_signatures: vec![],
    }
}

fn reshare(nodes: Option<&[&str]>, threshold: i64) -> ResharingMessage {
    ResharingMessage {
        session_id: "s1".into(),
        node_ids: nodes.map(|n| n.iter().map(|s| s.to_string()).collect()),
        new_threshold: threshold,
        key_type: KeyType::Secp256k1,
        wallet_id: "w1".into(),
        signature: None,
        authorizer_signatures: vec![],
    }
}

#[test]
fn keygen_checks_the_wallet_id() {
    let mut msg = GenerateKeyMessage { wallet_id: "w-1".into(), ..Default::default() };
    assert_eq!(msg.validate(), Ok(()));
    msg.wallet_id = "".into();
    let err = msg.validate().unwrap_err();
    assert_eq!(err, ValidationError::Id(IdError::Empty(IdKind::WalletId)));
    assert_eq!(err.error_code(), ErrorCode::MsgValidation);
    msg.wallet_id = "a.b".into();
    assert!(msg.validate().is_err());
}

#[test]
fn sign_tx_sizes_per_key_type() {
    assert_eq!(sign(KeyType::Secp256k1, 32).validate(), Ok(()));
    assert_eq!(sign(KeyType::Secp256k1, 31).validate(), Err(ValidationError::EcdsaTxLength(31)));
    assert_eq!(sign(KeyType::Secp256k1, 33).validate(), Err(ValidationError::EcdsaTxLength(33)));
    let mut no_tx = sign(KeyType::Secp256k1, 0);
    no_tx.tx = None;
    assert_eq!(no_tx.validate(), Err(ValidationError::EcdsaTxLength(0)));

    assert_eq!(sign(KeyType::Ed25519, 1).validate(), Ok(()));
    assert_eq!(sign(KeyType::Ed25519, MAX_EDDSA_TX_BYTES).validate(), Ok(()));
    assert_eq!(
        sign(KeyType::Ed25519, MAX_EDDSA_TX_BYTES + 1).validate(),
        Err(ValidationError::EddsaTxLength(MAX_EDDSA_TX_BYTES + 1))
    );
    assert_eq!(sign(KeyType::Ed25519, 0).validate(), Err(ValidationError::EddsaTxLength(0)));
}

#[test]
fn sign_rejects_unknown_key_types() {
    for kt in [KeyType::Missing, KeyType::Unsupported("p256".into())] {
        let err = sign(kt.clone(), 32).validate().unwrap_err();
        assert_eq!(err, ValidationError::UnsupportedKeyType(kt.as_str().into()));
        assert_eq!(err.error_code(), ErrorCode::MsgValidation);
    }
}

#[test]
fn sign_derivation_path_rules() {
    let mut msg = sign(KeyType::Secp256k1, 32);
    msg.derivation_path = Some(vec![44, 60, 0, 0, HARDENED_OFFSET - 1]);
    assert_eq!(msg.validate(), Ok(()));
    msg.derivation_path = Some(vec![]);
    assert_eq!(msg.validate(), Ok(()));
    msg.derivation_path = Some(vec![44, HARDENED_OFFSET, 0]);
    let err = msg.validate().unwrap_err();
    assert_eq!(err, ValidationError::HardenedIndex { position: 1, index: HARDENED_OFFSET });
    assert_eq!(err.error_code(), ErrorCode::MsgValidation);
    msg.derivation_path = Some(vec![u32::MAX]);
    assert!(msg.validate().is_err());
    msg.derivation_path = Some(vec![0; MAX_DERIVATION_DEPTH]);
    assert_eq!(msg.validate(), Ok(()));
    msg.derivation_path = Some(vec![0; MAX_DERIVATION_DEPTH + 1]);
    assert_eq!(msg.validate(), Err(ValidationError::PathTooDeep(MAX_DERIVATION_DEPTH + 1)));
}

#[test]
fn sign_checks_ids() {
    let mut msg = sign(KeyType::Ed25519, 10);
    msg.tx_id = "tx 1".into();
    assert_eq!(
        msg.validate(),
        Err(ValidationError::Id(IdError::BadCharacter { kind: IdKind::TxId, found: ' ' }))
    );
    let mut msg = sign(KeyType::Ed25519, 10);
    msg.wallet_id = "w>".into();
    assert!(msg.validate().is_err());
}

#[test]
fn reshare_rules() {
    assert_eq!(reshare(Some(&["a", "b", "c"]), 1).validate(), Ok(()));
    assert_eq!(reshare(Some(&["a", "b", "c"]), 2).validate(), Ok(()));

    let mut empty_session = reshare(Some(&["a", "b"]), 1);
    empty_session.session_id = "".into();
    assert_eq!(empty_session.validate(), Err(ValidationError::Id(IdError::Empty(IdKind::SessionId))));

    assert_eq!(reshare(None, 1).validate(), Err(ValidationError::NoNodeIds));
    assert_eq!(reshare(Some(&[]), 1).validate(), Err(ValidationError::NoNodeIds));
    assert_eq!(
        reshare(Some(&["a", "b", "a"]), 1).validate(),
        Err(ValidationError::DuplicateNodeId("a".into()))
    );
    assert!(reshare(Some(&["a", "b.c"]), 1).validate().is_err());

    for t in [0, 3, -1, i64::MAX] {
        let err = reshare(Some(&["a", "b", "c"]), t).validate().unwrap_err();
        assert_eq!(err, ValidationError::Threshold { threshold: t, committee: 3 });
        assert_eq!(err.error_code(), ErrorCode::InvalidThreshold);
    }

    let mut bad_type = reshare(Some(&["a", "b"]), 1);
    bad_type.key_type = KeyType::Unsupported("rsa".into());
    assert_eq!(bad_type.validate(), Err(ValidationError::UnsupportedKeyType("rsa".into())));
}
