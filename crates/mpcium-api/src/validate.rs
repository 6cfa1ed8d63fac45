//! Semantic checks on decoded requests, run by our node before any cryptography.
//!
//! Limits (ours; the original checks almost nothing):
//! - the body is at most [`MAX_MESSAGE_BYTES`](crate::decode::MAX_MESSAGE_BYTES) (checked while
//!   decoding);
//! - wallet, tx and session IDs are valid subject tokens ([`crate::ids::validate_token`]);
//! - `key_type` is `secp256k1`, `ed25519` or **(ours)** `taproot`;
//! - ECDSA `tx` is exactly [`ECDSA_TX_BYTES`] (the digest; the original silently accepts shorter
//!   values), EdDSA `tx` is 1..=[`MAX_EDDSA_TX_BYTES`] bytes, Taproot `tx` is exactly
//!   [`TAPROOT_TX_BYTES`] (the BIP341 signature hash);
//! - `derivation_path` has at most [`MAX_DERIVATION_DEPTH`] non-hardened indexes (< 2^31);
//! - sign **(ours)**: `asset` and `amount` together or not at all, `amount` a canonical decimal
//!   integer ([`crate::value`]);
//! - sign **(ours)**: `taproot_merkle_root` only with key type `taproot`, and exactly
//!   [`TAPROOT_MERKLE_ROOT_BYTES`];
//! - reshare: `node_ids` non-empty, distinct, valid tokens; `1 ≤ new_threshold < len(node_ids)`.

use crate::error_code::ErrorCode;
use crate::ids::{IdError, IdKind, validate_token};
use crate::key_type::KeyType;
use crate::request::{GenerateKeyMessage, ResharingMessage, SignTxMessage};

/// ECDSA requests sign a 32-byte digest.
pub const ECDSA_TX_BYTES: usize = 32;
/// Taproot requests sign a BIP341 signature hash (BIP340 signs 32-byte messages here).
pub const TAPROOT_TX_BYTES: usize = 32;
/// A BIP341 script tree's merkle root.
pub const TAPROOT_MERKLE_ROOT_BYTES: usize = 32;
/// Largest EdDSA message, in bytes (256 KiB: far above any chain's transaction size, and its
/// base64 fits the 1 MiB body limit).
pub const MAX_EDDSA_TX_BYTES: usize = 256 * 1024;
/// Deepest derivation path (BIP32 stores depth in one byte).
pub const MAX_DERIVATION_DEPTH: usize = 255;
/// First hardened index; hardened derivation needs the private key and is not supported.
pub const HARDENED_OFFSET: u32 = 1 << 31;

/// A request is well-formed JSON but not acceptable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValidationError {
    /// A bad identifier.
    #[error(transparent)]
    Id(#[from] IdError),
    /// `key_type` is not `secp256k1`, `ed25519` or `taproot`.
    #[error(
        "validation failed: unsupported key_type {0:?} (expected \"secp256k1\", \"ed25519\" or \"taproot\")"
    )]
    UnsupportedKeyType(String),
    /// ECDSA `tx` is not a 32-byte digest.
    #[error("validation failed: secp256k1 tx must be a {ECDSA_TX_BYTES}-byte digest, got {0} bytes")]
    EcdsaTxLength(usize),
    /// EdDSA `tx` is empty or too long.
    #[error("validation failed: ed25519 tx must be 1..={MAX_EDDSA_TX_BYTES} bytes, got {0}")]
    EddsaTxLength(usize),
    /// **(ours)** Taproot `tx` is not a 32-byte BIP341 signature hash.
    #[error(
        "validation failed: taproot tx must be the {TAPROOT_TX_BYTES}-byte BIP341 signature hash, got {0} bytes"
    )]
    TaprootTxLength(usize),
    /// **(ours)** `taproot_merkle_root` on a request whose key type is not `taproot`.
    #[error("validation failed: taproot_merkle_root is only for key_type \"taproot\", not {0:?}")]
    MerkleRootWithoutTaproot(String),
    /// **(ours)** `taproot_merkle_root` is not 32 bytes.
    #[error(
        "validation failed: taproot_merkle_root must be {TAPROOT_MERKLE_ROOT_BYTES} bytes, got {0} bytes"
    )]
    MerkleRootLength(usize),
    /// A derivation index is hardened.
    #[error(
        "validation failed: derivation_path[{position}] = {index} is hardened (>= 2^31); only non-hardened derivation is supported"
    )]
    HardenedIndex {
        /// Position in the path.
        position: usize,
        /// The index.
        index: u32,
    },
    /// The derivation path is too deep.
    #[error("validation failed: derivation_path has {0} elements, the maximum is {MAX_DERIVATION_DEPTH}")]
    PathTooDeep(usize),
    /// `node_ids` missing or empty.
    #[error("validation failed: node_ids must list the new committee")]
    NoNodeIds,
    /// A node ID appears twice.
    #[error("validation failed: node_ids lists {0:?} twice")]
    DuplicateNodeId(String),
    /// **(ours)** `asset` without `amount` or the reverse: they go together.
    #[error("validation failed: {present} is present but {missing} is missing; asset and amount go together")]
    HalfValue {
        /// The field that is present.
        present: &'static str,
        /// The field that is missing.
        missing: &'static str,
    },
    /// **(ours)** `asset` is empty, too long or holds control characters.
    #[error(
        "validation failed: asset must be 1..={} bytes without control characters",
        crate::value::MAX_ASSET_BYTES
    )]
    Asset,
    /// **(ours)** `amount` is not a canonical non-negative decimal integer.
    #[error("validation failed: {0}")]
    Amount(crate::value::AmountError),
    /// `new_threshold` out of range for the committee.
    #[error(
        "invalid threshold: new_threshold {threshold} must be at least 1 and below the committee size {committee}"
    )]
    Threshold {
        /// The requested threshold.
        threshold: i64,
        /// `len(node_ids)`.
        committee: usize,
    },
}

impl ValidationError {
    /// `ERROR_INVALID_THRESHOLD` for a bad threshold, `ERROR_MSG_VALIDATION` otherwise.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            ValidationError::Threshold { .. } => ErrorCode::InvalidThreshold,
            _ => ErrorCode::MsgValidation,
        }
    }
}

fn supported_key_type(key_type: &KeyType) -> Result<(), ValidationError> {
    if key_type.is_supported() {
        Ok(())
    } else {
        Err(ValidationError::UnsupportedKeyType(key_type.as_str().to_owned()))
    }
}

impl GenerateKeyMessage {
    /// Checks the wallet ID.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_token(IdKind::WalletId, &self.wallet_id)?;
        Ok(())
    }
}

impl SignTxMessage {
    /// Checks IDs, key type, `tx` size and the derivation path.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_token(IdKind::WalletId, &self.wallet_id)?;
        validate_token(IdKind::TxId, &self.tx_id)?;
        supported_key_type(&self.key_type)?;
        let tx_len = self.tx.as_ref().map_or(0, Vec::len);
        match self.key_type {
            KeyType::Secp256k1 if tx_len != ECDSA_TX_BYTES => {
                return Err(ValidationError::EcdsaTxLength(tx_len));
            }
            KeyType::Ed25519 if tx_len == 0 || tx_len > MAX_EDDSA_TX_BYTES => {
                return Err(ValidationError::EddsaTxLength(tx_len));
            }
            KeyType::Taproot if tx_len != TAPROOT_TX_BYTES => {
                return Err(ValidationError::TaprootTxLength(tx_len));
            }
            _ => {}
        }
        let path = self.derivation_path.as_deref().unwrap_or_default();
        if path.len() > MAX_DERIVATION_DEPTH {
            return Err(ValidationError::PathTooDeep(path.len()));
        }
        if let Some((position, &index)) = path.iter().enumerate().find(|(_, i)| **i >= HARDENED_OFFSET) {
            return Err(ValidationError::HardenedIndex { position, index });
        }
        Ok(())
    }
}

impl ResharingMessage {
    /// Checks IDs, key type, the new committee and the threshold.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_token(IdKind::SessionId, &self.session_id)?;
        validate_token(IdKind::WalletId, &self.wallet_id)?;
        supported_key_type(&self.key_type)?;
        let nodes = self.node_ids.as_deref().unwrap_or_default();
        if nodes.is_empty() {
            return Err(ValidationError::NoNodeIds);
        }
        for (i, node) in nodes.iter().enumerate() {
            validate_token(IdKind::NodeId, node)?;
            if nodes[..i].contains(node) {
                return Err(ValidationError::DuplicateNodeId(node.clone()));
            }
        }
        let committee = nodes.len();
        let fits = usize::try_from(self.new_threshold).is_ok_and(|t| t >= 1 && t < committee);
        if !fits {
            return Err(ValidationError::Threshold { threshold: self.new_threshold, committee });
        }
        Ok(())
    }
}
