//! The public side of Taproot keys: BIP341 output keys, BIP340 verification and HD children of
//! an internal key. Public data only.

use k256::elliptic_curve::PrimeField;
use k256::{FieldBytes, ProjectivePoint, Scalar};
use sha2::{Digest, Sha256};

use crate::curve::{Curve, Secp256k1};
use crate::ecdsa::{HdError, derive_child_key};

/// Why a Taproot key operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaprootError {
    /// The bytes are not the x coordinate (or SEC1 encoding) of a secp256k1 point.
    #[error("not a valid secp256k1 public key")]
    InvalidKey,
    /// The tweak hash is not below the group order or the tweaked key is the identity
    /// (probability ~2^-128; BIP341 says such a key cannot be used).
    #[error("the tweaked key is invalid")]
    InvalidTweak,
    /// The signature is malformed or does not verify.
    #[error("invalid BIP340 signature")]
    InvalidSignature,
    /// The HD derivation failed.
    #[error(transparent)]
    Hd(#[from] HdError),
}

/// An HD child of an internal key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    /// The child internal key C = lift(P) + δ·G, SEC1 compressed.
    pub public_key: [u8; 33],
    /// C x-only.
    pub x_only: [u8; 32],
    /// δ: the shares of lift(P) shifted by δ are shares of C.
    pub tweak: Scalar,
}

/// BIP340's tagged hash `SHA256(SHA256(tag) ‖ SHA256(tag) ‖ …)`, ready for the data.
fn tagged(tag: &[u8]) -> Sha256 {
    let tag_hash = Sha256::digest(tag);
    let mut h = Sha256::new();
    h.update(tag_hash);
    h.update(tag_hash);
    h
}

/// The even-Y point with x coordinate `x` (BIP340 `lift_x`).
fn lift_x(x: &[u8; 32]) -> Result<ProjectivePoint, TaprootError> {
    let mut sec = [0u8; 33];
    sec[0] = 0x02;
    sec[1..].copy_from_slice(x);
    Secp256k1::point_from_bytes(&sec).ok_or(TaprootError::InvalidKey)
}

fn x_only(p: &ProjectivePoint) -> [u8; 32] {
    let mut x = [0u8; 32];
    x.copy_from_slice(&Secp256k1::point_to_bytes(p)[1..]);
    x
}

/// BIP341's `t = int(hash_TapTweak(x(P) ‖ merkle_root))` (just `x(P)` without a root, BIP86).
pub fn tap_tweak(internal_x_only: &[u8; 32], merkle_root: Option<&[u8; 32]>) -> Result<Scalar, TaprootError> {
    let mut h = tagged(b"TapTweak");
    h.update(internal_x_only);
    if let Some(root) = merkle_root {
        h.update(root);
    }
    let mut bytes = FieldBytes::default();
    bytes.copy_from_slice(&h.finalize());
    Option::from(Scalar::from_repr(bytes)).ok_or(TaprootError::InvalidTweak)
}

/// BIP341's output key Q = lift_x(P) + t·G, x-only (BIP86 when `merkle_root` is `None`).
pub fn output_key(
    internal_x_only: &[u8; 32],
    merkle_root: Option<&[u8; 32]>,
) -> Result<[u8; 32], TaprootError> {
    let p = lift_x(internal_x_only)?;
    let q = p + ProjectivePoint::GENERATOR * tap_tweak(internal_x_only, merkle_root)?;
    if q == ProjectivePoint::IDENTITY {
        return Err(TaprootError::InvalidTweak);
    }
    Ok(x_only(&q))
}

/// Verify a BIP340 signature under an x-only key.
pub fn verify(output_x_only: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> Result<(), TaprootError> {
    let mut sec = [0u8; 33];
    sec[0] = 0x02;
    sec[1..].copy_from_slice(output_x_only);
    let key = frost_secp256k1_tr::VerifyingKey::deserialize(&sec).map_err(|_| TaprootError::InvalidKey)?;
    let signature =
        frost_secp256k1_tr::Signature::deserialize(signature).map_err(|_| TaprootError::InvalidSignature)?;
    key.verify(message, &signature).map_err(|_| TaprootError::InvalidSignature)
}

/// The HD child of the internal key `internal_key` (SEC1 compressed) at `path`: non-hardened
/// BIP32 public derivation of lift(P) = `0x02 ‖ x(P)` with `chain_code`.
pub fn derive_child(
    internal_key: &[u8; 33],
    chain_code: &[u8; 32],
    path: &[u32],
) -> Result<Derived, TaprootError> {
    if !matches!(internal_key[0], 0x02 | 0x03) {
        return Err(TaprootError::InvalidKey);
    }
    let mut lifted = *internal_key;
    lifted[0] = 0x02;
    let parent = k256::PublicKey::from_sec1_bytes(&lifted).map_err(|_| TaprootError::InvalidKey)?;
    let child = derive_child_key(&parent, chain_code, path)?;
    let point = ProjectivePoint::from(*child.public_key.as_affine());
    let mut public_key = [0u8; 33];
    public_key.copy_from_slice(&Secp256k1::point_to_bytes(&point));
    Ok(Derived { public_key, x_only: x_only(&point), tweak: child.tweak })
}
