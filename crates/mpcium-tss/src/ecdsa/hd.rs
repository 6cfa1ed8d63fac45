//! Non-hardened BIP32 public derivation (docs/wire.md §11): the child keys a wallet signs for.
//!
//! For each index `i < 2^31`: `I = HMAC-SHA512(chain code, SEC1-compressed parent ‖ i as u32 BE)`,
//! `IL` (first 32 bytes, big-endian) must be below the curve order and non-zero, the child key is
//! `parent + IL·G` and the child chain code is `I[32..]`. The tweak of a path is the sum of its
//! `IL`s; signing for the child adds it to every signer's share.

use hmac::{Hmac, KeyInit, Mac};
use k256::elliptic_curve::PrimeField;
use k256::elliptic_curve::sec1::ToSec1Point;
use k256::sha2::Sha512;
use k256::{FieldBytes, ProjectivePoint, Scalar};

/// The first hardened index; hardened derivation needs the whole secret and is not possible here.
pub const HARDENED: u32 = 1 << 31;

/// A derivation to sign with: the cluster's master chain code and a non-hardened path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HdPath {
    /// The master chain code (one value for the whole cluster, docs/wire.md §11).
    pub chain_code: [u8; 32],
    /// The child indexes, each below 2^31.
    pub path: Vec<u32>,
}

/// Why a derivation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HdError {
    /// The index is hardened (≥ 2^31).
    #[error("index {0} is hardened (>= 2^31); only non-hardened derivation is possible")]
    Hardened(u32),
    /// `IL` was not below the order, or the child key is the identity (probability ~2^-127).
    #[error("index {0} gives an invalid child key; use the next index")]
    InvalidChild(u32),
}

/// A derived public key with what deriving further from it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildKey {
    /// The child public key.
    pub public_key: k256::PublicKey,
    /// The child chain code.
    pub chain_code: [u8; 32],
    /// The sum of the `IL`s along the path: child secret = parent secret + tweak.
    pub tweak: Scalar,
}

/// Derive the child public key at `path` and the tweak to add to the secret key.
pub fn derive_child(
    public_key: &k256::PublicKey,
    chain_code: &[u8; 32],
    path: &[u32],
) -> Result<(k256::PublicKey, Scalar), HdError> {
    derive_child_key(public_key, chain_code, path).map(|c| (c.public_key, c.tweak))
}

/// [`derive_child`], also returning the child chain code.
pub fn derive_child_key(
    public_key: &k256::PublicKey,
    chain_code: &[u8; 32],
    path: &[u32],
) -> Result<ChildKey, HdError> {
    let mut key = *public_key;
    let mut chain = *chain_code;
    let mut tweak = Scalar::ZERO;
    for &index in path {
        if index >= HARDENED {
            return Err(HdError::Hardened(index));
        }
        let mut mac =
            <Hmac<Sha512> as KeyInit>::new_from_slice(&chain).map_err(|_| HdError::InvalidChild(index))?;
        mac.update(key.as_affine().to_sec1_point(true).as_bytes());
        mac.update(&index.to_be_bytes());
        let i = mac.finalize().into_bytes();
        let mut il_bytes = FieldBytes::default();
        il_bytes.copy_from_slice(&i[..32]);
        let il: Option<Scalar> = Scalar::from_repr(il_bytes).into();
        let il = il.filter(|s| !bool::from(s.is_zero())).ok_or(HdError::InvalidChild(index))?;
        let child = ProjectivePoint::from(*key.as_affine()) + ProjectivePoint::GENERATOR * il;
        key = k256::PublicKey::from_affine(child.to_affine()).map_err(|_| HdError::InvalidChild(index))?;
        chain.copy_from_slice(&i[32..]);
        tweak += il;
    }
    Ok(ChildKey { public_key: key, chain_code: chain, tweak })
}
