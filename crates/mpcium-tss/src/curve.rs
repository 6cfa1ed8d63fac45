//! The small curve abstraction the generic protocols (resharing, HD) are written against.
//!
//! [`Curve`] exposes only what Feldman VSS and additive key tweaks need: scalar and point
//! arithmetic, canonical encodings, and decoding that *validates* (a decoded point is on the
//! curve, not the identity and in the prime-order subgroup; a decoded scalar is canonical).
//! Two implementations: [`Secp256k1`] on `k256` 0.14 (the generation `dkls23` uses) and
//! [`Ed25519`] on `curve25519-dalek` 4 (the version `frost-ed25519` 3 uses).

use std::fmt::Debug;
use std::ops::{Add, Mul, Neg, Sub};

use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, Zeroizing};

use crate::protocol::KeyType;

/// A prime-order group with its scalar field, as used by the threshold protocols.
pub trait Curve: Copy + Clone + Debug + PartialEq + Eq + Send + Sync + 'static {
    /// The key type this curve serves.
    const KEY_TYPE: KeyType;
    /// Length of a canonical scalar encoding.
    const SCALAR_LEN: usize;
    /// Length of a point encoding.
    const POINT_LEN: usize;

    /// An element of the scalar field (integers modulo the group order).
    type Scalar: Copy
        + Eq
        + Send
        + Sync
        + Zeroize
        + Add<Output = Self::Scalar>
        + Sub<Output = Self::Scalar>
        + Mul<Output = Self::Scalar>
        + Neg<Output = Self::Scalar>
        + 'static;
    /// A group element.
    type Point: Copy
        + Eq
        + Debug
        + Send
        + Sync
        + Add<Output = Self::Point>
        + Mul<Self::Scalar, Output = Self::Point>
        + 'static;

    /// The standard generator G.
    fn generator() -> Self::Point;
    /// The neutral element.
    fn identity() -> Self::Point;
    /// The scalar `v` (party ids, polynomial evaluation points).
    fn scalar_from_u64(v: u64) -> Self::Scalar;
    /// `1/s`, or `None` for zero.
    fn invert(s: &Self::Scalar) -> Option<Self::Scalar>;
    /// The canonical encoding (big-endian for secp256k1, little-endian for Ed25519).
    fn scalar_to_bytes(s: &Self::Scalar) -> Zeroizing<Vec<u8>>;
    /// Decode a canonical scalar; `None` if the length is wrong or the value is not reduced.
    fn scalar_from_bytes(bytes: &[u8]) -> Option<Self::Scalar>;
    /// Reduce 64 uniformly random bytes to a scalar (negligible bias).
    fn scalar_from_wide(bytes: &[u8; 64]) -> Self::Scalar;
    /// The standard point encoding (33-byte SEC1 compressed; 32-byte Ed25519).
    fn point_to_bytes(p: &Self::Point) -> Vec<u8>;
    /// Decode and validate a point: on the curve, canonical, not the identity, in the prime-order
    /// subgroup. `None` otherwise.
    fn point_from_bytes(bytes: &[u8]) -> Option<Self::Point>;

    /// Whether `s` is zero.
    fn is_zero(s: &Self::Scalar) -> bool {
        *s == Self::scalar_from_u64(0)
    }

    /// A uniformly random scalar from the operating system's generator.
    fn random_scalar() -> Self::Scalar {
        let mut wide = Zeroizing::new([0u8; 64]);
        OsRng.fill_bytes(wide.as_mut());
        Self::scalar_from_wide(&wide)
    }

    /// Hash to a scalar: SHA-512 over a domain tag and each part, all length-prefixed, reduced
    /// modulo the group order.
    fn hash_to_scalar(domain: &[u8], parts: &[&[u8]]) -> Self::Scalar {
        let mut h = Sha512::new();
        h.update((domain.len() as u64).to_be_bytes());
        h.update(domain);
        for part in parts {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        let wide: [u8; 64] = h.finalize().into();
        Self::scalar_from_wide(&wide)
    }
}

/// secp256k1 (`k256`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Secp256k1;

impl Curve for Secp256k1 {
    const KEY_TYPE: KeyType = KeyType::Secp256k1;
    const SCALAR_LEN: usize = 32;
    const POINT_LEN: usize = 33;
    type Scalar = k256::Scalar;
    type Point = k256::ProjectivePoint;

    fn generator() -> Self::Point {
        k256::ProjectivePoint::GENERATOR
    }

    fn identity() -> Self::Point {
        k256::ProjectivePoint::IDENTITY
    }

    fn scalar_from_u64(v: u64) -> Self::Scalar {
        k256::Scalar::from(v)
    }

    fn invert(s: &Self::Scalar) -> Option<Self::Scalar> {
        use k256::elliptic_curve::ff::Field;
        Option::from(Field::invert(s))
    }

    fn scalar_to_bytes(s: &Self::Scalar) -> Zeroizing<Vec<u8>> {
        use k256::elliptic_curve::ff::PrimeField;
        Zeroizing::new(s.to_repr().to_vec())
    }

    fn scalar_from_bytes(bytes: &[u8]) -> Option<Self::Scalar> {
        use k256::elliptic_curve::ff::PrimeField;
        let repr = k256::FieldBytes::try_from(bytes).ok()?;
        Option::from(k256::Scalar::from_repr(repr))
    }

    fn scalar_from_wide(bytes: &[u8; 64]) -> Self::Scalar {
        use k256::elliptic_curve::ff::FromUniformBytes;
        k256::Scalar::from_uniform_bytes(bytes)
    }

    fn point_to_bytes(p: &Self::Point) -> Vec<u8> {
        use k256::elliptic_curve::group::GroupEncoding;
        p.to_bytes().to_vec()
    }

    fn point_from_bytes(bytes: &[u8]) -> Option<Self::Point> {
        use k256::elliptic_curve::group::{Group, GroupEncoding};
        let repr = k256::CompressedPoint::try_from(bytes).ok()?;
        let p: k256::ProjectivePoint = Option::from(k256::ProjectivePoint::from_bytes(&repr))?;
        // secp256k1 has cofactor 1: every valid non-identity point is in the prime-order group.
        (!bool::from(p.is_identity())).then_some(p)
    }
}

/// Ed25519's group (`curve25519-dalek`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ed25519;

impl Curve for Ed25519 {
    const KEY_TYPE: KeyType = KeyType::Ed25519;
    const SCALAR_LEN: usize = 32;
    const POINT_LEN: usize = 32;
    type Scalar = curve25519_dalek::Scalar;
    type Point = curve25519_dalek::EdwardsPoint;

    fn generator() -> Self::Point {
        curve25519_dalek::constants::ED25519_BASEPOINT_POINT
    }

    fn identity() -> Self::Point {
        use curve25519_dalek::traits::Identity;
        curve25519_dalek::EdwardsPoint::identity()
    }

    fn scalar_from_u64(v: u64) -> Self::Scalar {
        curve25519_dalek::Scalar::from(v)
    }

    fn invert(s: &Self::Scalar) -> Option<Self::Scalar> {
        (!Self::is_zero(s)).then(|| s.invert())
    }

    fn scalar_to_bytes(s: &Self::Scalar) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(s.to_bytes().to_vec())
    }

    fn scalar_from_bytes(bytes: &[u8]) -> Option<Self::Scalar> {
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Option::from(curve25519_dalek::Scalar::from_canonical_bytes(arr))
    }

    fn scalar_from_wide(bytes: &[u8; 64]) -> Self::Scalar {
        curve25519_dalek::Scalar::from_bytes_mod_order_wide(bytes)
    }

    fn point_to_bytes(p: &Self::Point) -> Vec<u8> {
        p.compress().to_bytes().to_vec()
    }

    fn point_from_bytes(bytes: &[u8]) -> Option<Self::Point> {
        let compressed = curve25519_dalek::edwards::CompressedEdwardsY::from_slice(bytes).ok()?;
        let p = compressed.decompress()?;
        // `decompress` accepts a non-reduced y; only the canonical encoding is accepted here so a
        // point has exactly one wire form (hashes over encodings stay unambiguous).
        let canonical = p.compress() == compressed;
        (canonical && !p.is_small_order() && p.is_torsion_free()).then_some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip<C: Curve>() {
        let s = C::random_scalar();
        assert!(C::scalar_from_bytes(&C::scalar_to_bytes(&s)) == Some(s));
        let p = C::generator() * s;
        assert_eq!(C::point_from_bytes(&C::point_to_bytes(&p)), Some(p));
        assert_eq!(C::point_from_bytes(&C::point_to_bytes(&C::identity())), None, "identity refused");
        assert_eq!(C::point_from_bytes(&[]), None);
        let inv = C::invert(&s).unwrap();
        assert!(inv * s == C::scalar_from_u64(1));
        assert!(C::invert(&C::scalar_from_u64(0)).is_none());
        assert!(C::scalar_from_bytes(&[0xff; 32]).is_none(), "non-canonical scalar refused");
        assert!(C::hash_to_scalar(b"d", &[b"a", b"bc"]) != C::hash_to_scalar(b"d", &[b"ab", b"c"]));
    }

    #[test]
    fn secp256k1_encodings_and_arithmetic() {
        roundtrip::<Secp256k1>();
    }

    #[test]
    fn ed25519_encodings_and_arithmetic() {
        roundtrip::<Ed25519>();
    }

    #[test]
    fn ed25519_refuses_small_order_and_torsion_points() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        // A point of order 8 and a point with a torsion component are both refused.
        let small = EIGHT_TORSION[1];
        assert_eq!(Ed25519::point_from_bytes(small.compress().as_bytes()), None);
        let mixed = Ed25519::generator() + small;
        assert_eq!(Ed25519::point_from_bytes(mixed.compress().as_bytes()), None);
        // A non-canonical y (y + p) is refused: y = 1 encoded as 2^255 - 18.
        let mut non_canonical = [0xffu8; 32];
        non_canonical[0] = 0xee;
        non_canonical[31] = 0x7f;
        assert_eq!(Ed25519::point_from_bytes(&non_canonical), None);
    }
}
