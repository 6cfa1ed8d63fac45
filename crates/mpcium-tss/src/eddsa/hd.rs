//! Non-hardened HD derivation for Ed25519 exactly as the original mpcium does it (docs/wire.md §11);
//! this is neither SLIP-10 nor BIP32-Ed25519, but clients derive addresses with it.
//!
//! Per path index `i` (< 2^31): `I = HMAC-SHA512(key = chain code, ser_P(parent) ‖ be32(i))`
//! where `ser_P` is `0x02` (affine Y even) or `0x03` (Y odd) followed by the affine **X**
//! coordinate as 32 bytes big-endian; `IL` = first half as a big-endian integer mod ℓ (zero
//! refused); child = parent + IL·G; the next chain code is the second half. The tweak is Σ IL.

use curve25519_dalek::{EdwardsPoint, Scalar};
use hmac::{Hmac, KeyInit, Mac};
use k256::elliptic_curve::bigint::modular::{FixedMontyForm, FixedMontyParams};
use k256::elliptic_curve::bigint::{Odd, U256};
use sha2_011::Sha512;

use crate::curve::{Curve, Ed25519};

/// Why a derivation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HdError {
    /// Only non-hardened indexes (< 2^31) can be derived from a public key.
    #[error("hardened index {0} cannot be derived (only indexes below 2^31)")]
    Hardened(u32),
    /// The parent key is not a valid Ed25519 public key.
    #[error("invalid parent public key")]
    InvalidPublicKey,
    /// IL was zero modulo ℓ or the child is degenerate (probability ~2^-252).
    #[error("index {0} gives an invalid child; use another index")]
    InvalidChild(u32),
}

/// A derived child key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Derived {
    /// The child public key, standard 32-byte Ed25519 encoding.
    pub public_key: [u8; 32],
    /// The child chain code.
    pub chain_code: [u8; 32],
    /// The tweak δ: child = parent + δ·G (shares are shifted by δ to sign for the child).
    pub tweak: Scalar,
}

/// Derive the child of `public_key` along `path` (every index < 2^31).
pub fn derive_child(public_key: &[u8; 32], chain_code: &[u8; 32], path: &[u32]) -> Result<Derived, HdError> {
    let mut point = Ed25519::point_from_bytes(public_key).ok_or(HdError::InvalidPublicKey)?;
    let mut chain = *chain_code;
    let mut tweak = Scalar::ZERO;
    for &index in path {
        if index >= 0x8000_0000 {
            return Err(HdError::Hardened(index));
        }
        let mut mac =
            <Hmac<Sha512> as KeyInit>::new_from_slice(&chain).map_err(|_| HdError::InvalidPublicKey)?;
        mac.update(&serialize_point(&point).ok_or(HdError::InvalidPublicKey)?);
        mac.update(&index.to_be_bytes());
        let out = mac.finalize().into_bytes();
        let (il, ir) = out.split_at(32);
        // IL is big-endian; dalek's reduction takes little-endian.
        let mut le = [0u8; 32];
        for (d, s) in le.iter_mut().zip(il.iter().rev()) {
            *d = *s;
        }
        let il = Scalar::from_bytes_mod_order(le);
        if il == Scalar::ZERO {
            return Err(HdError::InvalidChild(index));
        }
        point += Ed25519::generator() * il;
        // The identity and the other small-order points (x = 0 among them) are refused here.
        if Ed25519::point_from_bytes(point.compress().as_bytes()).is_none() {
            return Err(HdError::InvalidChild(index));
        }
        tweak += il;
        chain.copy_from_slice(ir);
    }
    Ok(Derived { public_key: point.compress().to_bytes(), chain_code: chain, tweak })
}

/// `ser_P`: 0x02/0x03 by the parity of affine Y, then affine X big-endian (33 bytes). `None`
/// only for a point whose encoding is not on the curve (impossible for a decoded point).
pub fn serialize_point(point: &EdwardsPoint) -> Option<[u8; 33]> {
    let y_le = point.compress().to_bytes();
    let mut out = [0u8; 33];
    // The encoding holds Y little-endian in the low 255 bits: bit 0 of byte 0 is Y's parity.
    out[0] = if y_le[0] & 1 == 1 { 0x03 } else { 0x02 };
    out[1..].copy_from_slice(affine_x(point)?.to_be_bytes().as_ref());
    Some(out)
}

/// p = 2^255 - 19.
const P: U256 = U256::from_be_hex("7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffed");
/// d = -121665/121666 mod p.
const D: U256 = U256::from_be_hex("52036cee2b6ffe738cc740797779e89800700a4d4141d8ab75eb4dca135978a3");
/// sqrt(-1) mod p = 2^((p-1)/4).
const SQRT_M1: U256 = U256::from_be_hex("2b8324804fc1df0b2b4d00993dfbd7a72f431806ad2fe478c4ee1b274a0ea0b0");

type Fe = FixedMontyForm<{ U256::LIMBS }>;

/// The affine X coordinate, recovered from the encoding: x² = (y² − 1)/(d·y² + 1), sign from
/// the encoding's top bit. Public data only, so variable-time arithmetic is fine.
fn affine_x(point: &EdwardsPoint) -> Option<U256> {
    let params = FixedMontyParams::new_vartime(Option::from(Odd::new(P))?);
    let fe = |v: &U256| Fe::new(v, &params);
    let mut y_le = point.compress().to_bytes();
    let x_odd = y_le[31] >> 7 == 1;
    y_le[31] &= 0x7f;
    let y = fe(&U256::from_le_slice(&y_le));
    let one = Fe::one(&params);
    let y2 = y.square();
    let u = y2 - one;
    let v = fe(&D) * y2 + one;
    let x2 = u * Option::<Fe>::from(v.invert_vartime())?;
    // p ≡ 5 (mod 8): a square root of x2 is x2^((p+3)/8), possibly times sqrt(-1).
    let mut x = x2.pow_vartime(&P.wrapping_add(&U256::from_u8(3)).shr_vartime(3));
    if x.square().retrieve() != x2.retrieve() {
        x *= fe(&SQRT_M1);
    }
    if x.square().retrieve() != x2.retrieve() {
        return None;
    }
    let mut x = x.retrieve();
    let is_odd = x.to_be_bytes().as_ref()[31] & 1 == 1;
    if is_odd != x_odd && x != U256::ZERO {
        x = P.wrapping_sub(&x);
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_point_serialises_with_its_known_coordinates() {
        // RFC 8032 base point: x = 15112221349535400772501151409588531511454012693041857206046113283949847762202,
        // y = 4/5 (even).
        let ser = serialize_point(&Ed25519::generator()).unwrap();
        assert_eq!(ser[0], 0x02);
        let x = U256::from_be_hex("216936d3cd6e53fec0a4e231fdd6dc5c692cc7609525a7b2c9562d608f25d51a");
        assert_eq!(&ser[1..], x.to_be_bytes().as_ref());
        // -G has the same Y and X negated.
        let neg = serialize_point(&-Ed25519::generator()).unwrap();
        assert_eq!(&neg[1..], P.wrapping_sub(&x).to_be_bytes().as_ref());
    }

    #[test]
    fn hardened_indexes_are_refused() {
        let pk = Ed25519::generator().compress().to_bytes();
        assert_eq!(derive_child(&pk, &[1; 32], &[44, 0x8000_0000]), Err(HdError::Hardened(0x8000_0000)));
        assert_eq!(derive_child(&[0; 32], &[1; 32], &[1]), Err(HdError::InvalidPublicKey));
    }
}
