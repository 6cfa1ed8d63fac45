//! Local signers from the original's key files (plain and age-encrypted) sign verifiably.

use mpcium_api::{Algorithm, PublicKey};
use mpcium_client::{LocalSigner, Signer, SignerError};
use mpcium_identity::{IdentityError, KeyProtection, SignerAlgorithm, create_initiator};
use p256::pkcs8::EncodePrivateKey as _;

const PASSPHRASE: &str = "correct horse battery staple";

async fn assert_signs_verifiably(signer: &LocalSigner, expected_public_hex: &str) {
    assert_eq!(signer.public_key_hex().unwrap(), expected_public_hex);
    let key = PublicKey::parse(signer.algorithm(), expected_public_hex).unwrap();
    let message =
        br#"{"key_type":"ed25519","wallet_id":"w","network_internal_code":"","tx_id":"t","tx":"AQ=="}"#;
    let signature = signer.sign(message).await.unwrap();
    key.verify(message, Some(&signature)).unwrap();
    assert!(key.verify(b"another message", Some(&signature)).is_err());
}

#[tokio::test]
async fn ed25519_hex_seed_file_plain_and_age() {
    let dir = tempfile::tempdir().unwrap();
    let (identity, _, files) =
        create_initiator(dir.path(), "plain", SignerAlgorithm::Ed25519, KeyProtection::Plain, false).unwrap();
    let signer = LocalSigner::from_file(Algorithm::Ed25519, &files.key, None).unwrap();
    assert_eq!(signer.algorithm(), Algorithm::Ed25519);
    assert_signs_verifiably(&signer, &identity.public_key).await;
    // Deterministic Ed25519: same bytes, same signature (what the Go nodes verify).
    assert_eq!(signer.sign(b"x").await.unwrap(), signer.sign(b"x").await.unwrap());

    let (identity, _, files) = create_initiator(
        dir.path(),
        "sealed",
        SignerAlgorithm::Ed25519,
        KeyProtection::Passphrase(PASSPHRASE),
        false,
    )
    .unwrap();
    assert!(files.key.to_string_lossy().ends_with(".key.age"));
    let signer = LocalSigner::from_file(Algorithm::Ed25519, &files.key, Some(PASSPHRASE)).unwrap();
    assert_signs_verifiably(&signer, &identity.public_key).await;
}

#[tokio::test]
async fn p256_files_hex_sec1_age_and_binary_pkcs8() {
    let dir = tempfile::tempdir().unwrap();
    let (identity, _, files) = create_initiator(
        dir.path(),
        "p256",
        SignerAlgorithm::P256,
        KeyProtection::Passphrase(PASSPHRASE),
        false,
    )
    .unwrap();
    let signer = LocalSigner::from_file(Algorithm::P256, &files.key, Some(PASSPHRASE)).unwrap();
    assert_eq!(signer.algorithm(), Algorithm::P256);
    assert_signs_verifiably(&signer, &identity.public_key).await;

    let (identity, _, files) =
        create_initiator(dir.path(), "p256plain", SignerAlgorithm::P256, KeyProtection::Plain, false)
            .unwrap();
    let signer = LocalSigner::from_file(Algorithm::P256, &files.key, None).unwrap();
    assert_signs_verifiably(&signer, &identity.public_key).await;

    // Binary PKCS#8 DER, as `openssl pkcs8 -outform DER` writes it.
    let secret = p256::SecretKey::from_slice(&[0x42; 32]).unwrap();
    let der = secret.to_pkcs8_der().unwrap();
    let path = dir.path().join("binary.der");
    std::fs::write(&path, der.as_bytes()).unwrap();
    let signer = LocalSigner::from_file(Algorithm::P256, &path, None).unwrap();
    let expected = {
        use p256::pkcs8::EncodePublicKey as _;
        hex::encode(secret.public_key().to_public_key_der().unwrap().as_bytes())
    };
    assert_signs_verifiably(&signer, &expected).await;
    // The same DER as hex text (with a trailing newline) is accepted too.
    let hex_path = dir.path().join("hex.key");
    std::fs::write(&hex_path, format!("{}\n", hex::encode(der.as_bytes()))).unwrap();
    let signer = LocalSigner::from_file(Algorithm::P256, &hex_path, None).unwrap();
    assert_signs_verifiably(&signer, &expected).await;
}

#[test]
fn bad_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, files) = create_initiator(
        dir.path(),
        "sealed",
        SignerAlgorithm::Ed25519,
        KeyProtection::Passphrase(PASSPHRASE),
        false,
    )
    .unwrap();
    let err = LocalSigner::from_file(Algorithm::Ed25519, &files.key, None).unwrap_err();
    assert!(matches!(err, SignerError::Key(IdentityError::PassphraseNeeded { .. })), "{err:?}");
    let err = LocalSigner::from_file(Algorithm::Ed25519, &files.key, Some("wrong passphrase!!")).unwrap_err();
    assert!(matches!(err, SignerError::Key(IdentityError::WrongPassphrase { .. })), "{err:?}");

    let junk = dir.path().join("junk.key");
    std::fs::write(&junk, "zz-not-hex").unwrap();
    let err = LocalSigner::from_file(Algorithm::Ed25519, &junk, None).unwrap_err();
    assert!(err.to_string().contains("junk.key"), "{err}");
    let err = LocalSigner::from_file(Algorithm::P256, &junk, None).unwrap_err();
    assert!(err.to_string().contains("junk.key"), "{err}");
    let err = LocalSigner::from_file(Algorithm::P256, &dir.path().join("absent.key"), None).unwrap_err();
    assert!(matches!(err, SignerError::Io { .. }), "{err:?}");
    // Debug never shows key material.
    let signer = LocalSigner::generate(Algorithm::Ed25519).unwrap();
    assert!(format!("{signer:?}").contains("<redacted>"));
}
