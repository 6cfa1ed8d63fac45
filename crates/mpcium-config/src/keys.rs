//! Public keys named in the config: the event initiator's (`event_initiator_pubkey`) and the
//! authorizers' (`authorization.authorizer_public_keys.<id>.public_key`).

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use p256::pkcs8::DecodePublicKey as _;

/// Signature algorithm of an initiator or authorizer key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// Ed25519 (the default when the key is empty).
    Ed25519,
    /// ECDSA over NIST P-256 with SHA-256.
    P256,
}

impl KeyAlgorithm {
    /// The spelling used in config and files: `ed25519` or `p256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ed25519 => "ed25519",
            Self::P256 => "p256",
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ed25519" => Ok(Self::Ed25519),
            "p256" => Ok(Self::P256),
            other => Err(format!("unsupported algorithm `{other}` (expected ed25519 or p256)")),
        }
    }
}

/// A verified-decodable public key of an initiator or authorizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// Ed25519 public key (32 bytes, a valid curve point).
    Ed25519([u8; 32]),
    /// P-256 public key as PKIX `SubjectPublicKeyInfo` DER (91 bytes for an uncompressed point).
    P256 {
        /// The DER bytes, as given.
        spki_der: Vec<u8>,
    },
}

impl PublicKey {
    /// Parses the text form used by the original for `algorithm`:
    /// ed25519 = hex of 32 bytes; p256 = hex (optional `0x`) or standard base64 of PKIX DER.
    pub fn parse(algorithm: KeyAlgorithm, text: &str) -> Result<Self, String> {
        match algorithm {
            KeyAlgorithm::Ed25519 => parse_ed25519(text),
            KeyAlgorithm::P256 => parse_p256(text),
        }
    }

    /// The algorithm of this key.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            Self::Ed25519(_) => KeyAlgorithm::Ed25519,
            Self::P256 { .. } => KeyAlgorithm::P256,
        }
    }
}

fn strip_0x(text: &str) -> &str {
    text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")).unwrap_or(text)
}

fn parse_ed25519(text: &str) -> Result<PublicKey, String> {
    let bytes = hex::decode(strip_0x(text)).map_err(|e| format!("ed25519 public key is not hex: {e}"))?;
    let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
        format!("ed25519 public key must be 32 bytes (64 hex chars), got {} bytes", bytes.len())
    })?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes)
        .map_err(|_| "ed25519 public key is not a valid curve point".to_owned())?;
    Ok(PublicKey::Ed25519(bytes))
}

fn parse_p256(text: &str) -> Result<PublicKey, String> {
    let der = match hex::decode(strip_0x(text)) {
        Ok(der) => der,
        Err(_) => base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| "p256 public key is neither hex nor base64".to_owned())?,
    };
    p256::PublicKey::from_public_key_der(&der)
        .map_err(|e| format!("p256 public key is not PKIX SubjectPublicKeyInfo DER: {e}"))?;
    Ok(PublicKey::P256 { spki_der: der })
}
