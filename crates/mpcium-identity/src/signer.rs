//! Request-signing keys of event initiators and authorizers (docs/wire.md §12.1):
//!
//! * initiator: `<name>.identity.json` ([`InitiatorIdentity`]) and `<name>.key` / `<name>.key.age`;
//! * authorizer: `<name>.authorizer.identity.json` ([`AuthorizerIdentity`]) and
//!   `<name>.authorizer.key` / `.key.age`.
//!
//! Key file text: ed25519 = hex of the 32-byte seed; p256 = hex of the SEC1 DER `ECPrivateKey`.
//! Public key hex: ed25519 = the raw 32 bytes; p256 = PKIX `SubjectPublicKeyInfo` DER (91 bytes).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ed25519_dalek::SigningKey;
use p256::pkcs8::EncodePublicKey as _;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{IdentityError, random_bytes};
use crate::key_file::{KeyProtection, decode_hex, read_key_text};
use crate::meta::{current_user, machine_name, machine_os, now_rfc3339};
use crate::names::{validate_authorizer_name, validate_file_name_part};
use crate::secure_file::{create_private_dir, ensure_writable, read_file, write_private_file};

/// The default initiator name.
pub const DEFAULT_INITIATOR_NAME: &str = "event_initiator";

/// Signature algorithm of an initiator or authorizer key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignerAlgorithm {
    /// Ed25519.
    Ed25519,
    /// ECDSA P-256 with SHA-256.
    P256,
}

impl SignerAlgorithm {
    /// `ed25519` or `p256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ed25519 => "ed25519",
            Self::P256 => "p256",
        }
    }
}

impl fmt::Display for SignerAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SignerAlgorithm {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ed25519" => Ok(Self::Ed25519),
            "p256" => Ok(Self::P256),
            other => Err(IdentityError::InvalidKey {
                what: "algorithm".to_owned(),
                reason: format!("unsupported algorithm `{other}` (expected ed25519 or p256)"),
            }),
        }
    }
}

/// A private signing key of an initiator or authorizer. `Debug` shows only the algorithm and
/// the public key.
#[derive(Clone)]
pub enum SignerKey {
    /// Ed25519 key.
    Ed25519(SigningKey),
    /// P-256 key.
    P256(p256::SecretKey),
}

impl fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignerKey")
            .field("algorithm", &self.algorithm())
            .field("public_key", &self.public_key_hex().unwrap_or_default())
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl SignerKey {
    /// A fresh random key.
    pub fn generate(algorithm: SignerAlgorithm) -> Result<Self, IdentityError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        match algorithm {
            SignerAlgorithm::Ed25519 => {
                random_bytes(seed.as_mut())?;
                Ok(Self::Ed25519(SigningKey::from_bytes(&seed)))
            }
            SignerAlgorithm::P256 => loop {
                // A random 32-byte string is a valid scalar except with probability ~2^-32.
                random_bytes(seed.as_mut())?;
                if let Ok(key) = p256::SecretKey::from_slice(seed.as_ref()) {
                    return Ok(Self::P256(key));
                }
            },
        }
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> SignerAlgorithm {
        match self {
            Self::Ed25519(_) => SignerAlgorithm::Ed25519,
            Self::P256(_) => SignerAlgorithm::P256,
        }
    }

    /// The public key as written in identity files and config (`event_initiator_pubkey`).
    pub fn public_key_hex(&self) -> Result<String, IdentityError> {
        match self {
            Self::Ed25519(k) => Ok(hex::encode(k.verifying_key().as_bytes())),
            Self::P256(k) => k
                .public_key()
                .to_public_key_der()
                .map(|der| hex::encode(der.as_bytes()))
                .map_err(|e| IdentityError::invalid_key("p256 public key", e.to_string())),
        }
    }

    /// The text stored in the `.key` file.
    pub fn to_key_file_text(&self) -> Result<Zeroizing<String>, IdentityError> {
        match self {
            Self::Ed25519(k) => {
                let seed = Zeroizing::new(k.to_bytes());
                Ok(Zeroizing::new(hex::encode(seed.as_slice())))
            }
            Self::P256(k) => k
                .to_sec1_der()
                .map(|der| Zeroizing::new(hex::encode(der.as_slice())))
                .map_err(|e| IdentityError::invalid_key("p256 private key", e.to_string())),
        }
    }

    /// Parses `.key` file text for `algorithm`. Ed25519: hex of the 32-byte seed (a 64-byte
    /// seed‖public key is accepted too and checked). P-256: see [`parse_p256_private_key`].
    pub fn from_key_file_text(algorithm: SignerAlgorithm, text: &str) -> Result<Self, IdentityError> {
        match algorithm {
            SignerAlgorithm::Ed25519 => {
                let what = "ed25519 private key";
                let bytes = decode_hex(what, text.trim())?;
                match bytes.len() {
                    32 => {
                        let mut seed = Zeroizing::new([0u8; 32]);
                        seed.copy_from_slice(&bytes);
                        Ok(Self::Ed25519(SigningKey::from_bytes(&seed)))
                    }
                    64 => {
                        let mut pair = Zeroizing::new([0u8; 64]);
                        pair.copy_from_slice(&bytes);
                        SigningKey::from_keypair_bytes(&pair).map(Self::Ed25519).map_err(|_| {
                            IdentityError::invalid_key(what, "public half does not match the seed")
                        })
                    }
                    n => Err(IdentityError::invalid_key(
                        what,
                        format!("must be a 32-byte seed (64 hex chars), got {n} bytes"),
                    )),
                }
            }
            SignerAlgorithm::P256 => parse_p256_private_key(text.trim().as_bytes()).map(Self::P256),
        }
    }

    /// Loads a key file; a path ending in `.age` needs `passphrase`.
    pub fn load(
        path: &Path,
        algorithm: SignerAlgorithm,
        passphrase: Option<&str>,
    ) -> Result<Self, IdentityError> {
        let text = read_key_text(path, passphrase)?;
        Self::from_key_file_text(algorithm, &text).map_err(|e| match e {
            IdentityError::InvalidKey { reason, .. } => {
                IdentityError::invalid_key(path.display().to_string(), reason)
            }
            other => other,
        })
    }
}

/// Parses a P-256 private key given as PKCS#8 DER, SEC1 DER, or either as hex text (optional
/// `0x`), like the original client's loader.
pub fn parse_p256_private_key(input: &[u8]) -> Result<p256::SecretKey, IdentityError> {
    let what = "p256 private key";
    if let Ok(key) = p256::SecretKey::from_der(input) {
        return Ok(key);
    }
    let text = std::str::from_utf8(input)
        .map_err(|_| IdentityError::invalid_key(what, "neither DER (PKCS#8 or SEC1) nor hex text"))?;
    let der = decode_hex(what, text.trim())?;
    p256::SecretKey::from_der(&der)
        .map_err(|e| IdentityError::invalid_key(what, format!("not PKCS#8 or SEC1 DER: {e}")))
}

/// Contents of `<name>.identity.json` for an event initiator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitiatorIdentity {
    /// Initiator name.
    pub node_name: String,
    /// `ed25519` or `p256`; absent in old files (then ed25519).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    /// Public key hex (see module docs).
    pub public_key: String,
    /// Creation time, RFC 3339 UTC.
    pub created_at: String,
    /// User who created it.
    pub created_by: String,
    /// OS (Go `GOOS` spelling).
    pub machine_os: String,
    /// Host name.
    pub machine_name: String,
}

/// Contents of `<name>.authorizer.identity.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizerIdentity {
    /// Authorizer name (its ID in `authorization.authorizer_public_keys`).
    pub name: String,
    /// `ed25519` or `p256`.
    pub algorithm: String,
    /// Public key hex (see module docs).
    pub public_key: String,
    /// Creation time, RFC 3339 UTC.
    pub created_at: String,
    /// User who created it.
    pub created_by: String,
    /// OS (Go `GOOS` spelling).
    pub machine_os: String,
    /// Host name.
    pub machine_name: String,
}

impl InitiatorIdentity {
    /// The algorithm (ed25519 when the field is absent).
    pub fn algorithm(&self) -> Result<SignerAlgorithm, IdentityError> {
        self.algorithm.as_deref().unwrap_or("ed25519").parse()
    }

    /// Reads and parses the file.
    pub fn read(path: &Path) -> Result<Self, IdentityError> {
        read_json(path)
    }
}

impl AuthorizerIdentity {
    /// The algorithm.
    pub fn algorithm(&self) -> Result<SignerAlgorithm, IdentityError> {
        self.algorithm.parse()
    }

    /// Reads and parses the file.
    pub fn read(path: &Path) -> Result<Self, IdentityError> {
        read_json(path)
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, IdentityError> {
    let bytes = read_file(path)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| IdentityError::Json { path: path.to_path_buf(), reason: e.to_string() })
}

/// The two files written for an initiator or authorizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerFiles {
    /// The identity JSON.
    pub identity: PathBuf,
    /// The key file (`.key` or `.key.age`).
    pub key: PathBuf,
}

/// `<dir>/<name>.identity.json` and `<dir>/<name>.key[.age]`.
pub fn initiator_paths(dir: &Path, name: &str, encrypted: bool) -> SignerFiles {
    SignerFiles {
        identity: dir.join(format!("{name}.identity.json")),
        key: dir.join(KeyProtection::file_name_for(encrypted, &format!("{name}.key"))),
    }
}

/// `<dir>/<name>.authorizer.identity.json` and `<dir>/<name>.authorizer.key[.age]`.
pub fn authorizer_paths(dir: &Path, name: &str, encrypted: bool) -> SignerFiles {
    SignerFiles {
        identity: dir.join(format!("{name}.authorizer.identity.json")),
        key: dir.join(KeyProtection::file_name_for(encrypted, &format!("{name}.authorizer.key"))),
    }
}

/// Generates an initiator key and writes its two files (0600). Nothing is written if a target
/// exists and `overwrite` is false.
pub fn create_initiator(
    dir: &Path,
    name: &str,
    algorithm: SignerAlgorithm,
    protection: KeyProtection<'_>,
    overwrite: bool,
) -> Result<(InitiatorIdentity, SignerKey, SignerFiles), IdentityError> {
    validate_file_name_part(name)?;
    let files = initiator_paths(dir, name, protection.is_encrypted());
    ensure_writable(&files.identity, overwrite)?;
    ensure_writable(&files.key, overwrite)?;
    let key = SignerKey::generate(algorithm)?;
    let identity = InitiatorIdentity {
        node_name: name.to_owned(),
        algorithm: Some(algorithm.as_str().to_owned()),
        public_key: key.public_key_hex()?,
        created_at: now_rfc3339(),
        created_by: current_user(),
        machine_os: machine_os(),
        machine_name: machine_name(),
    };
    write_pair(dir, &files, &identity, &key, protection, overwrite)?;
    Ok((identity, key, files))
}

/// Generates an authorizer key and writes its two files (0600). The name must match
/// `^[a-zA-Z0-9_-]+$`. Nothing is written if a target exists and `overwrite` is false.
pub fn create_authorizer(
    dir: &Path,
    name: &str,
    algorithm: SignerAlgorithm,
    protection: KeyProtection<'_>,
    overwrite: bool,
) -> Result<(AuthorizerIdentity, SignerKey, SignerFiles), IdentityError> {
    validate_authorizer_name(name)?;
    let files = authorizer_paths(dir, name, protection.is_encrypted());
    ensure_writable(&files.identity, overwrite)?;
    ensure_writable(&files.key, overwrite)?;
    let key = SignerKey::generate(algorithm)?;
    let identity = AuthorizerIdentity {
        name: name.to_owned(),
        algorithm: algorithm.as_str().to_owned(),
        public_key: key.public_key_hex()?,
        created_at: now_rfc3339(),
        created_by: current_user(),
        machine_os: machine_os(),
        machine_name: machine_name(),
    };
    write_pair(dir, &files, &identity, &key, protection, overwrite)?;
    Ok((identity, key, files))
}

fn write_pair<T: Serialize>(
    dir: &Path,
    files: &SignerFiles,
    identity: &T,
    key: &SignerKey,
    protection: KeyProtection<'_>,
    overwrite: bool,
) -> Result<(), IdentityError> {
    create_private_dir(dir)?;
    let sealed = protection.seal(&key.to_key_file_text()?)?;
    let json = serde_json::to_string_pretty(identity)
        .map_err(|e| IdentityError::Json { path: files.identity.clone(), reason: e.to_string() })?;
    write_private_file(&files.key, &sealed, overwrite)?;
    write_private_file(&files.identity, json.as_bytes(), overwrite)
}
