//! Initiator keys, signature verification and the authorization rules (docs/wire.md §5, §12.2).
//! Signatures are made here with real keys; tampered ones must fail.

use std::collections::BTreeMap;

use base64::Engine as _;
use ed25519_dalek::Signer as _;
use p256::ecdsa::signature::Signer as _;
use p256::elliptic_curve::ff::PrimeField as _;
use p256::pkcs8::EncodePublicKey as _;

use mpcium_api::{
    Algorithm, AuthorizationError, AuthorizationPolicy, AuthorizerSignature, ErrorCode, GenerateKeyMessage,
    InitiatorMessage, KeyParseError, KeyType, PublicKey, ResharingMessage, SignTxMessage, SignatureError,
    SigningMode, authorizer_payload, verify_initiator,
};

const COMPAT: SigningMode = SigningMode::Compatible;

fn ed_signer(seed: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
}

fn ed_public(sk: &ed25519_dalek::SigningKey) -> PublicKey {
    PublicKey::parse(Algorithm::Ed25519, &hex::encode(sk.verifying_key().to_bytes())).unwrap()
}

fn p256_signer(seed: u8) -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap()
}

fn p256_der(sk: &p256::ecdsa::SigningKey) -> Vec<u8> {
    sk.verifying_key().to_public_key_der().unwrap().as_bytes().to_vec()
}

fn p256_public(sk: &p256::ecdsa::SigningKey) -> PublicKey {
    PublicKey::parse(Algorithm::P256, &hex::encode(p256_der(sk))).unwrap()
}

fn p256_sign(sk: &p256::ecdsa::SigningKey, msg: &[u8]) -> Vec<u8> {
    let sig: p256::ecdsa::Signature = sk.sign(msg);
    sig.to_der().as_bytes().to_vec()
}

fn keygen_signed_by(sk: &ed25519_dalek::SigningKey, wallet: &str) -> GenerateKeyMessage {
    GenerateKeyMessage {
        wallet_id: wallet.into(),
        signature: Some(sk.sign(wallet.as_bytes()).to_bytes().to_vec()),
        authorizer_signatures: vec![],
    }
}

fn sign_request() -> SignTxMessage {
    SignTxMessage {
        key_type: KeyType::Secp256k1,
        wallet_id: "w1".into(),
        network_internal_code: "ETH".into(),
        tx_id: "tx-1".into(),
        tx: Some(vec![0xab; 32]),
        signature: None,
        derivation_path: Some(vec![44, 60, 0, 0, 0]),
        authorizer_signatures: vec![],
    }
}

#[test]
fn ed25519_initiator_signature_verifies_and_tampering_fails() {
    let sk = ed_signer(1);
    let key = ed_public(&sk);
    let msg = keygen_signed_by(&sk, "wallet-1");
    assert_eq!(verify_initiator(&msg, &key, COMPAT), Ok(()));

    let mut tampered = msg.clone();
    tampered.wallet_id = "wallet-2".into();
    let err = verify_initiator(&tampered, &key, COMPAT).unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::InvalidInitiatorSignature);
    assert!(err.to_string().contains("invalid signature from initiator"), "{err}");
    assert_eq!(err.0, SignatureError::Invalid { algorithm: Algorithm::Ed25519 });

    let mut flipped = msg.clone();
    if let Some(sig) = flipped.signature.as_mut() {
        sig[5] ^= 1;
    }
    assert!(verify_initiator(&flipped, &key, COMPAT).is_err());

    let other_key = ed_public(&ed_signer(2));
    assert!(verify_initiator(&msg, &other_key, COMPAT).is_err());
}

#[test]
fn empty_missing_and_malformed_signatures_are_rejected() {
    let ed = ed_public(&ed_signer(1));
    let p = p256_public(&p256_signer(1));
    for key in [&ed, &p] {
        assert_eq!(key.verify(b"m", None), Err(SignatureError::Empty));
        assert_eq!(key.verify(b"m", Some(&[])), Err(SignatureError::Empty));
        assert_eq!(
            key.verify(b"m", Some(&[1, 2, 3])),
            Err(SignatureError::Malformed { algorithm: key.algorithm() })
        );
    }
    let msg =
        GenerateKeyMessage { wallet_id: "w".into(), signature: Some(vec![]), authorizer_signatures: vec![] };
    let err = verify_initiator(&msg, &ed, COMPAT).unwrap_err();
    assert_eq!(err.0, SignatureError::Empty);
    assert_eq!(err.error_code(), ErrorCode::InvalidInitiatorSignature);
}

#[test]
fn ed25519_verification_is_strict() {
    // Identity public key with R = identity, S = 0: Go's cofactorless check accepts this for any
    // message; verify_strict refuses small-order keys.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let key = PublicKey::parse(Algorithm::Ed25519, &hex::encode(identity)).unwrap();
    let mut sig = [0u8; 64];
    sig[0] = 1;
    assert_eq!(
        key.verify(b"anything", Some(&sig)),
        Err(SignatureError::Invalid { algorithm: Algorithm::Ed25519 })
    );
}

#[test]
fn p256_signature_over_sha256_verifies_including_high_s() {
    let sk = p256_signer(7);
    let key = p256_public(&sk);
    let raw = b"{\"key_type\":\"secp256k1\"}";
    let der = p256_sign(&sk, raw);
    assert_eq!(key.verify(raw, Some(&der)), Ok(()));
    assert_eq!(key.verify(b"other", Some(&der)), Err(SignatureError::Invalid { algorithm: Algorithm::P256 }));

    // Same signature with s replaced by n - s: Go's VerifyASN1 and KMS accept both forms.
    let sig = p256::ecdsa::Signature::from_der(&der).unwrap().normalize_s();
    let (r, s) = sig.split_scalars();
    let high_s = -*s.as_ref();
    let high = p256::ecdsa::Signature::from_scalars(r.to_repr(), high_s.to_repr()).unwrap();
    assert_ne!(high, sig);
    assert_eq!(key.verify(raw, Some(high.to_der().as_bytes())), Ok(()));
    assert_eq!(key.verify(raw, Some(sig.to_der().as_bytes())), Ok(()));

    // Trailing bytes after the DER SEQUENCE and raw r‖s are not ASN.1 signatures.
    let mut trailing = der.clone();
    trailing.push(0);
    assert_eq!(
        key.verify(raw, Some(&trailing)),
        Err(SignatureError::Malformed { algorithm: Algorithm::P256 })
    );
    assert!(key.verify(raw, Some(&sig.to_bytes())).is_err());
}

#[test]
fn p256_key_parsing_from_hex_0x_and_base64() {
    let sk = p256_signer(9);
    let der = p256_der(&sk);
    let expected = p256_public(&sk);
    let forms = [
        hex::encode(&der),
        format!("0x{}", hex::encode(&der)),
        hex::encode_upper(&der),
        base64::engine::general_purpose::STANDARD.encode(&der),
    ];
    for form in &forms {
        assert_eq!(PublicKey::parse(Algorithm::P256, form).as_ref(), Ok(&expected), "{form}");
    }
    // A secp256k1 SubjectPublicKeyInfo is not a P-256 key.
    let k1 = format!("3056301006072a8648ce3d020106052b8104000a03420004{}", "11".repeat(64));
    assert_eq!(PublicKey::parse(Algorithm::P256, &k1), Err(KeyParseError::P256));
    assert_eq!(PublicKey::parse(Algorithm::P256, "zz"), Err(KeyParseError::P256));
    assert_eq!(PublicKey::parse(Algorithm::P256, ""), Err(KeyParseError::Empty));
    // Raw 32-byte Ed25519 hex is not PKIX DER.
    assert!(PublicKey::parse(Algorithm::P256, &"ab".repeat(32)).is_err());
    let err = PublicKey::parse(Algorithm::P256, "zz").unwrap_err();
    assert_eq!(err.error_code(), ErrorCode::InvalidConfiguration);
}

#[test]
fn ed25519_key_parsing() {
    let sk = ed_signer(3);
    let hex_key = hex::encode(sk.verifying_key().to_bytes());
    assert!(PublicKey::parse(Algorithm::Ed25519, &hex_key).is_ok());
    assert_eq!(PublicKey::parse(Algorithm::Ed25519, &hex_key[..62]), Err(KeyParseError::Ed25519Length(31)));
    assert!(matches!(
        PublicKey::parse(Algorithm::Ed25519, &format!("0x{hex_key}")),
        Err(KeyParseError::Hex(_))
    ));
    assert_eq!(PublicKey::parse(Algorithm::Ed25519, ""), Err(KeyParseError::Empty));
    assert_eq!(Algorithm::parse("p256"), Ok(Algorithm::P256));
    assert_eq!(Algorithm::parse("ed25519"), Ok(Algorithm::Ed25519));
    assert_eq!(Algorithm::parse("rsa"), Err(KeyParseError::UnknownAlgorithm("rsa".into())));
}

#[test]
fn p256_initiator_on_sign_and_reshare_requests() {
    let sk = p256_signer(5);
    let key = p256_public(&sk);

    let mut sign = sign_request();
    sign.signature = Some(p256_sign(&sk, &sign.signed_bytes(COMPAT)));
    assert_eq!(verify_initiator(&sign, &key, COMPAT), Ok(()));

    let mut reshare = ResharingMessage {
        session_id: "s1".into(),
        node_ids: Some(vec!["n1".into(), "n2".into()]),
        new_threshold: 1,
        key_type: KeyType::Ed25519,
        wallet_id: "w1".into(),
        signature: None,
        authorizer_signatures: vec![],
    };
    reshare.signature = Some(p256_sign(&sk, &reshare.signed_bytes(COMPAT)));
    assert_eq!(verify_initiator(&reshare, &key, COMPAT), Ok(()));
    reshare.new_threshold = 2;
    assert!(verify_initiator(&reshare, &key, COMPAT).is_err());
}

#[test]
fn strict_mode_binds_the_derivation_path() {
    let sk = ed_signer(4);
    let key = ed_public(&sk);

    // Compatible signature: a replay with another path still verifies (the original's hole) ...
    let mut compat = sign_request();
    compat.signature = Some(sk.sign(&compat.signed_bytes(COMPAT)).to_bytes().to_vec());
    let mut replayed = compat.clone();
    replayed.derivation_path = Some(vec![44, 60, 0, 0, 1]);
    assert_eq!(verify_initiator(&replayed, &key, COMPAT), Ok(()));
    // ... but not in strict mode.
    assert!(verify_initiator(&compat, &key, SigningMode::Strict).is_err());

    let mut strict = sign_request();
    strict.signature = Some(sk.sign(&strict.signed_bytes(SigningMode::Strict)).to_bytes().to_vec());
    assert_eq!(verify_initiator(&strict, &key, SigningMode::Strict), Ok(()));
    let mut replayed = strict.clone();
    replayed.derivation_path = Some(vec![44, 60, 0, 0, 1]);
    assert!(verify_initiator(&replayed, &key, SigningMode::Strict).is_err());
    replayed.derivation_path = None;
    assert!(verify_initiator(&replayed, &key, SigningMode::Strict).is_err());
}

/// Signs an authorizer payload.
type AuthorizerSigner = fn(&[u8]) -> Vec<u8>;

/// A keygen request signed by the initiator and by the given authorizers.
fn keygen_with_authorizers(authorizers: &[(&str, AuthorizerSigner)]) -> GenerateKeyMessage {
    let mut msg = keygen_signed_by(&ed_signer(1), "wallet-auth");
    let payload = authorizer_payload(&msg, COMPAT);
    msg.authorizer_signatures = authorizers
        .iter()
        .map(|(id, sign)| AuthorizerSignature {
            authorizer_id: (*id).into(),
            signature: Some(sign(&payload)),
        })
        .collect();
    msg
}

fn policy(enabled: bool, required: &[&str]) -> AuthorizationPolicy {
    let mut keys = BTreeMap::new();
    keys.insert("ed".to_string(), ed_public(&ed_signer(10)));
    keys.insert("p".to_string(), p256_public(&p256_signer(11)));
    AuthorizationPolicy {
        enabled,
        required: required.iter().map(|s| s.to_string()).collect(),
        keys,
        rules: vec![],
    }
}

fn ed_auth(payload: &[u8]) -> Vec<u8> {
    ed_signer(10).sign(payload).to_bytes().to_vec()
}

fn p_auth(payload: &[u8]) -> Vec<u8> {
    p256_sign(&p256_signer(11), payload)
}

fn wrong_auth(payload: &[u8]) -> Vec<u8> {
    ed_signer(99).sign(payload).to_bytes().to_vec()
}

#[test]
fn authorization_disabled_ignores_everything() {
    let msg = keygen_with_authorizers(&[("nobody", wrong_auth as AuthorizerSigner)]);
    assert_eq!(policy(false, &["ed"]).authorize(&msg, COMPAT), Ok(()));
}

#[test]
fn authorization_with_nothing_required_or_supplied_passes() {
    let msg = keygen_with_authorizers(&[]);
    assert_eq!(policy(true, &[]).authorize(&msg, COMPAT), Ok(()));
}

#[test]
fn authorization_all_valid_with_mixed_algorithms() {
    let msg = keygen_with_authorizers(&[("ed", ed_auth as AuthorizerSigner), ("p", p_auth)]);
    assert_eq!(policy(true, &["ed"]).authorize(&msg, COMPAT), Ok(()));
    assert_eq!(policy(true, &["ed", "p"]).authorize(&msg, COMPAT), Ok(()));
    assert_eq!(policy(true, &[]).authorize(&msg, COMPAT), Ok(()));
}

#[test]
fn authorization_required_missing() {
    let msg = keygen_with_authorizers(&[("ed", ed_auth as AuthorizerSigner)]);
    let err = policy(true, &["ed", "p"]).authorize(&msg, COMPAT).unwrap_err();
    assert_eq!(err, AuthorizationError::MissingRequired("p".into()));
    assert_eq!(err.error_code(), ErrorCode::MissingAuthorizerSignature);
    assert_eq!(err.to_string(), "missing required authorizer signature: p");
}

#[test]
fn authorization_unknown_authorizer_fails() {
    let msg = keygen_with_authorizers(&[
        ("ed", ed_auth as AuthorizerSigner),
        ("ghost", ed_auth as AuthorizerSigner),
    ]);
    let err = policy(true, &[]).authorize(&msg, COMPAT).unwrap_err();
    assert_eq!(err, AuthorizationError::UnknownAuthorizer("ghost".into()));
    assert_eq!(err.error_code(), ErrorCode::InvalidAuthorizerSignature);
}

#[test]
fn authorization_bad_signature_fails() {
    let msg = keygen_with_authorizers(&[("ed", wrong_auth as AuthorizerSigner)]);
    let err = policy(true, &["ed"]).authorize(&msg, COMPAT).unwrap_err();
    assert_eq!(
        err,
        AuthorizationError::InvalidSignature {
            id: "ed".into(),
            source: SignatureError::Invalid { algorithm: Algorithm::Ed25519 },
        }
    );
    assert_eq!(err.error_code(), ErrorCode::InvalidAuthorizerSignature);
}

#[test]
fn authorization_partial_failure_fails() {
    // One good, one bad: every supplied signature must verify.
    let msg =
        keygen_with_authorizers(&[("ed", ed_auth as AuthorizerSigner), ("p", ed_auth as AuthorizerSigner)]);
    let err = policy(true, &["ed"]).authorize(&msg, COMPAT).unwrap_err();
    assert!(matches!(err, AuthorizationError::InvalidSignature { ref id, .. } if id == "p"));
}

#[test]
fn authorizer_signature_binds_the_initiator_signature() {
    let mut msg = keygen_with_authorizers(&[("ed", ed_auth as AuthorizerSigner)]);
    assert_eq!(policy(true, &[]).authorize(&msg, COMPAT), Ok(()));
    // A re-signed (different) initiator signature invalidates the authorizer's.
    msg.signature = Some(ed_signer(2).sign(b"wallet-auth").to_bytes().to_vec());
    assert!(policy(true, &[]).authorize(&msg, COMPAT).is_err());
}

#[test]
fn authorization_of_sign_requests_follows_the_mode() {
    let sk = ed_signer(1);
    let mut msg = sign_request();
    msg.signature = Some(sk.sign(&msg.signed_bytes(COMPAT)).to_bytes().to_vec());
    msg.authorizer_signatures = vec![AuthorizerSignature {
        authorizer_id: "ed".into(),
        signature: Some(ed_auth(&authorizer_payload(&msg, COMPAT))),
    }];
    assert_eq!(policy(true, &["ed"]).authorize(&msg, COMPAT), Ok(()));
    assert!(policy(true, &["ed"]).authorize(&msg, SigningMode::Strict).is_err());
}
