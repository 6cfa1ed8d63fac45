//! Initiator public keys and signature checks (docs/wire.md §5.2, §12.2).
//!
//! - `ed25519`: key = hex of the 32-byte public key; signature = 64-byte RFC 8032 signature over
//!   the raw bytes. We use `verify_strict` (rejects small-order keys and `R`, non-canonical `S`),
//!   slightly stricter than Go's `ed25519.Verify`; honest signers never produce what it rejects.
//!   A key that is not a valid curve point is refused at parse time (Go accepts any 32 bytes).
//! - `p256`: key = PKIX (SubjectPublicKeyInfo) DER as hex (optional `0x` prefix) or standard
//!   base64; signature = ASN.1 DER `SEQUENCE{r,s}` ECDSA over SHA-256(raw bytes), as Go's
//!   `ecdsa.VerifyASN1` and AWS KMS `ECDSA_SHA_256`/`RAW`. High-S signatures are accepted (Go and
//!   KMS do not normalise S).
//!
//! An empty or missing signature is always rejected.

use p256::ecdsa::signature::Verifier as _;
use p256::pkcs8::DecodePublicKey as _;

use crate::canonical::{InitiatorMessage, SigningMode};
use crate::decode::go_base64_decode;
use crate::error_code::ErrorCode;

/// Signature algorithm of an initiator or authorizer key (config `event_initiator_algorithm`,
/// `authorization.authorizer_public_keys.<id>.algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `"ed25519"`.
    Ed25519,
    /// `"p256"` (ECDSA on NIST P-256 with SHA-256).
    P256,
}

impl Algorithm {
    /// The config text.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::P256 => "p256",
        }
    }

    /// Parses the config text (`"ed25519"` or `"p256"`, exact). The original treats an empty
    /// `event_initiator_algorithm` as `ed25519`; that default belongs to the config loader.
    pub fn parse(text: &str) -> Result<Self, KeyParseError> {
        match text {
            "ed25519" => Ok(Algorithm::Ed25519),
            "p256" => Ok(Algorithm::P256),
            other => Err(KeyParseError::UnknownAlgorithm(other.to_owned())),
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A configured key could not be parsed (a configuration error, reported at startup).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyParseError {
    /// The algorithm name is neither `ed25519` nor `p256`.
    #[error("unknown signature algorithm {0:?} (expected \"ed25519\" or \"p256\")")]
    UnknownAlgorithm(String),
    /// The key text is empty.
    #[error("public key is empty")]
    Empty,
    /// Ed25519 key text is not hex.
    #[error("invalid hex in ed25519 public key: {0}")]
    Hex(String),
    /// Ed25519 key is not 32 bytes.
    #[error("invalid ed25519 public key length: expected 32 bytes, got {0}")]
    Ed25519Length(usize),
    /// Ed25519 key bytes are not a curve point.
    #[error("ed25519 public key is not a valid curve point")]
    Ed25519Point,
    /// P-256 key text is neither hex nor base64 of a P-256 PKIX DER public key.
    #[error("p256 public key is neither hex nor base64 of a PKIX DER P-256 public key")]
    P256,
}

impl KeyParseError {
    /// Always `ERROR_INVALID_CONFIGURATION`.
    pub fn error_code(&self) -> ErrorCode {
        ErrorCode::InvalidConfiguration
    }
}

/// Why a signature did not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// No signature, or an empty one.
    #[error("signature is empty")]
    Empty,
    /// The signature bytes are not a well-formed signature for the algorithm.
    #[error("malformed {algorithm} signature")]
    Malformed {
        /// The key's algorithm.
        algorithm: Algorithm,
    },
    /// Well-formed, but does not verify under the key.
    #[error("invalid {algorithm} signature")]
    Invalid {
        /// The key's algorithm.
        algorithm: Algorithm,
    },
}

/// A public key that verifies initiator or authorizer signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// Ed25519 key.
    Ed25519(ed25519_dalek::VerifyingKey),
    /// ECDSA P-256 key.
    P256(p256::ecdsa::VerifyingKey),
}

impl PublicKey {
    /// Parses a configured key for `algorithm` (formats in the module docs).
    pub fn parse(algorithm: Algorithm, text: &str) -> Result<Self, KeyParseError> {
        match algorithm {
            Algorithm::Ed25519 => Self::parse_ed25519_hex(text),
            Algorithm::P256 => Self::parse_p256(text),
        }
    }

    /// Ed25519 from the hex of its 32 bytes (no `0x` prefix, as in the original).
    pub fn parse_ed25519_hex(text: &str) -> Result<Self, KeyParseError> {
        if text.is_empty() {
            return Err(KeyParseError::Empty);
        }
        let bytes = hex::decode(text).map_err(|e| KeyParseError::Hex(e.to_string()))?;
        let array: [u8; 32] =
            bytes.as_slice().try_into().map_err(|_| KeyParseError::Ed25519Length(bytes.len()))?;
        ed25519_dalek::VerifyingKey::from_bytes(&array)
            .map(PublicKey::Ed25519)
            .map_err(|_| KeyParseError::Ed25519Point)
    }

    /// P-256 from PKIX DER given as hex (optional `0x`) or, failing that, standard base64 —
    /// the original's order.
    pub fn parse_p256(text: &str) -> Result<Self, KeyParseError> {
        if text.is_empty() {
            return Err(KeyParseError::Empty);
        }
        let from_der = |der: &[u8]| p256::ecdsa::VerifyingKey::from_public_key_der(der).map(PublicKey::P256);
        let hex_text = text.strip_prefix("0x").unwrap_or(text);
        if let Ok(der) = hex::decode(hex_text)
            && let Ok(key) = from_der(&der)
        {
            return Ok(key);
        }
        let der = go_base64_decode(text).map_err(|_| KeyParseError::P256)?;
        from_der(&der).map_err(|_| KeyParseError::P256)
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            PublicKey::Ed25519(_) => Algorithm::Ed25519,
            PublicKey::P256(_) => Algorithm::P256,
        }
    }

    /// Checks `signature` over `message` (see the module docs for each algorithm's rules).
    pub fn verify(&self, message: &[u8], signature: Option<&[u8]>) -> Result<(), SignatureError> {
        let signature = signature.filter(|s| !s.is_empty()).ok_or(SignatureError::Empty)?;
        let algorithm = self.algorithm();
        match self {
            PublicKey::Ed25519(key) => {
                let sig = ed25519_dalek::Signature::from_slice(signature)
                    .map_err(|_| SignatureError::Malformed { algorithm })?;
                key.verify_strict(message, &sig).map_err(|_| SignatureError::Invalid { algorithm })
            }
            PublicKey::P256(key) => {
                let sig = p256::ecdsa::Signature::from_der(signature)
                    .map_err(|_| SignatureError::Malformed { algorithm })?;
                key.verify(message, &sig).map_err(|_| SignatureError::Invalid { algorithm })
            }
        }
    }
}

/// The initiator's signature on a request did not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid signature from initiator: {0}")]
pub struct InitiatorSignatureError(#[source] pub SignatureError);

impl InitiatorSignatureError {
    /// Always `ERROR_INVALID_INITIATOR_SIGNATURE`.
    pub fn error_code(&self) -> ErrorCode {
        ErrorCode::InvalidInitiatorSignature
    }
}

/// Verifies a request's initiator signature over its signed bytes in `mode`.
pub fn verify_initiator(
    msg: &impl InitiatorMessage,
    key: &PublicKey,
    mode: SigningMode,
) -> Result<(), InitiatorSignatureError> {
    key.verify(&msg.signed_bytes(mode), msg.initiator_signature()).map_err(InitiatorSignatureError)
}
