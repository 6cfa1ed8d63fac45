//! Initiator (and authorizer) signers: what signs the canonical request bytes.
//!
//! Rules of the wire (docs/wire.md §5.2): `ed25519` = RFC 8032 signature over the raw bytes (64 bytes);
//! `p256` = ECDSA P-256 over SHA-256 of the raw bytes, ASN.1 DER. [`LocalSigner`] holds the key in
//! memory (from the original's key files, plain or age-encrypted); `KmsSigner` (feature `kms`)
//! asks AWS KMS.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use ed25519_dalek::Signer as _;
use mpcium_api::Algorithm;
use mpcium_identity::{IdentityError, SignerAlgorithm, SignerKey, parse_p256_private_key};
use p256::ecdsa::signature::Signer as _;
use zeroize::Zeroizing;

/// The future a [`Signer`] returns.
pub type SignFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<u8>, SignerError>> + Send + 'a>>;

/// Signs request bytes as an initiator or an authorizer (Go `client.Signer`).
///
/// Object safe: the client holds it as `Arc<dyn Signer>`.
pub trait Signer: Send + Sync {
    /// Signs `message` (the raw bytes; hashing, if any, is the algorithm's business).
    fn sign<'a>(&'a self, message: &'a [u8]) -> SignFuture<'a>;
    /// The signature algorithm the nodes must be configured with.
    fn algorithm(&self) -> Algorithm;
    /// The public key as the node config expects it (`event_initiator_pubkey`): ed25519 = hex of
    /// the 32 bytes, p256 = hex of the PKIX DER.
    fn public_key_hex(&self) -> Result<String, SignerError>;
}

/// A signer could not load its key or sign.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    /// Reading, decrypting or parsing a key file failed.
    #[error("initiator key: {0}")]
    Key(#[from] IdentityError),
    /// Reading a key file failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The key file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key does not suit the requested algorithm (e.g. a KMS key that is not P-256).
    #[error("key does not suit {expected}: {reason}")]
    WrongKey {
        /// The algorithm asked for.
        expected: Algorithm,
        /// What is wrong.
        reason: String,
    },
    /// A remote signer (KMS) failed.
    #[error("remote signer: {0}")]
    Remote(String),
}

/// An in-memory Ed25519 or P-256 key (Go `client.NewLocalSigner`). `Debug` never shows the
/// secret.
#[derive(Debug, Clone)]
pub struct LocalSigner {
    key: SignerKey,
}

fn to_identity_algorithm(algorithm: Algorithm) -> SignerAlgorithm {
    match algorithm {
        Algorithm::Ed25519 => SignerAlgorithm::Ed25519,
        Algorithm::P256 => SignerAlgorithm::P256,
    }
}

fn invalid_key(what: String, reason: impl Into<String>) -> IdentityError {
    IdentityError::InvalidKey { what, reason: reason.into() }
}

/// Puts the file name into a key parsing error (which names only the key kind).
fn name_file(e: IdentityError, file: String) -> IdentityError {
    match e {
        IdentityError::InvalidKey { what, reason } => invalid_key(file, format!("{what}: {reason}")),
        other => other,
    }
}

impl LocalSigner {
    /// Wraps a key already loaded (for example by `mpcium-identity`).
    pub fn from_key(key: SignerKey) -> Self {
        Self { key }
    }

    /// A fresh random key (tests, development).
    pub fn generate(algorithm: Algorithm) -> Result<Self, SignerError> {
        Ok(Self { key: SignerKey::generate(to_identity_algorithm(algorithm))? })
    }

    /// Loads the original's initiator key file formats:
    /// - ed25519: hex of the 32-byte seed;
    /// - p256: DER (PKCS#8 or SEC1), raw or as hex text.
    ///
    /// A path ending in `.age` is an age passphrase file and needs `passphrase` (take it from a
    /// prompt, a file or the environment, never from the command line).
    pub fn from_file(
        algorithm: Algorithm,
        path: &Path,
        passphrase: Option<&str>,
    ) -> Result<Self, SignerError> {
        let raw = Zeroizing::new(
            std::fs::read(path).map_err(|source| SignerError::Io { path: path.to_path_buf(), source })?,
        );
        let body = if path.extension().is_some_and(|e| e == "age") {
            let passphrase = passphrase.ok_or_else(|| IdentityError::PassphraseNeeded {
                path: path.to_path_buf(),
                reason: "this key file is age-encrypted; a passphrase is needed",
            })?;
            mpcium_identity::age_file::decrypt_with_passphrase(&raw, passphrase, path)?
        } else {
            raw
        };
        let what = path.display().to_string();
        let key = match algorithm {
            Algorithm::Ed25519 => {
                let text = std::str::from_utf8(&body)
                    .map_err(|_| invalid_key(what.clone(), "ed25519 key file must be hex text"))?;
                SignerKey::from_key_file_text(SignerAlgorithm::Ed25519, text)
                    .map_err(|e| name_file(e, what))?
            }
            Algorithm::P256 => {
                // Binary DER, or hex text around it (trailing newline tolerated).
                let trimmed = body.trim_ascii();
                SignerKey::P256(parse_p256_private_key(trimmed).map_err(|e| name_file(e, what))?)
            }
        };
        Ok(Self { key })
    }

    /// The key's algorithm.
    pub fn key_algorithm(&self) -> Algorithm {
        match self.key.algorithm() {
            SignerAlgorithm::Ed25519 => Algorithm::Ed25519,
            SignerAlgorithm::P256 => Algorithm::P256,
        }
    }

    fn sign_now(&self, message: &[u8]) -> Vec<u8> {
        match &self.key {
            SignerKey::Ed25519(k) => k.sign(message).to_bytes().to_vec(),
            SignerKey::P256(k) => {
                let signing_key = p256::ecdsa::SigningKey::from(k);
                let signature: p256::ecdsa::Signature = signing_key.sign(message);
                signature.to_der().as_bytes().to_vec()
            }
        }
    }
}

impl Signer for LocalSigner {
    fn sign<'a>(&'a self, message: &'a [u8]) -> SignFuture<'a> {
        let signature = self.sign_now(message);
        Box::pin(async move { Ok(signature) })
    }

    fn algorithm(&self) -> Algorithm {
        self.key_algorithm()
    }

    fn public_key_hex(&self) -> Result<String, SignerError> {
        Ok(self.key.public_key_hex()?)
    }
}
