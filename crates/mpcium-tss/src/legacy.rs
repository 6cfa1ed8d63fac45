//! Shares imported from another threshold system: the original mpcium's tss-lib keys.
//!
//! tss-lib keeps Shamir shares of a degree-`t` polynomial at its *party keys* (large numbers
//! made from node ids, reduced modulo the group order), where our keys sit at `x = 1..=n`. An
//! imported share is therefore never used to sign: it only *deals*, as a dealer of the
//! curve-generic redistribution ([`crate::reshare`]) at its own x-coordinate
//! ([`OldKey::evaluation_points`]), onto a committee of ours. That run preserves the public key
//! and checks each dealer's commitments against its public share, as for our own keys.
//!
//! Before a share may deal it is checked against the public data that came with it
//! ([`LegacyShare::check`] → [`CheckedLegacyShare`], the only form the conversion takes): the
//! x-coordinates are distinct and non-zero, the secret matches its holder's public share, and
//! the public shares lie on one polynomial of degree *exactly* the stated threshold whose value
//! at 0 is the public key. So a share of another wallet, a corrupted public share, or a
//! threshold that does not match the shares is refused on the holder's own machine, before any
//! message leaves it.

use std::fmt;

use zeroize::Zeroizing;

use crate::curve::Curve;
use crate::protocol::PartyId;
use crate::reshare::{OldKey, lagrange_at};

/// One holder of an imported key, as the imported data lists it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LegacyHolder<C: Curve> {
    /// The x-coordinate of its Shamir share.
    pub x: C::Scalar,
    /// Its public share `x_i·G`.
    pub public_share: C::Point,
}

/// An imported share as read, not yet checked.
pub struct LegacyShare<C: Curve> {
    /// The threshold the key info states (`t`: a signature needs `t + 1` shares).
    pub threshold: u16,
    /// The key's public key.
    pub public_key: C::Point,
    /// Every holder of the key, in a fixed order (it numbers the old ids `1..=n`).
    pub holders: Vec<LegacyHolder<C>>,
    /// Which of `holders` this share belongs to.
    pub me: usize,
    /// The secret share (its value at `holders[me].x`).
    pub secret: Zeroizing<C::Scalar>,
}

impl<C: Curve> fmt::Debug for LegacyShare<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LegacyShare")
            .field("threshold", &self.threshold)
            .field("public_key", &self.public_key)
            .field("holders", &self.holders.len())
            .field("me", &self.me)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Why an imported share was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LegacyError {
    /// The holder list or threshold cannot describe a threshold key.
    #[error("{holders} holders with threshold {threshold}: need 1 <= threshold < holders")]
    Shape {
        /// Number of holders listed.
        holders: usize,
        /// The stated threshold.
        threshold: u16,
    },
    /// `me` is not an index of the holder list.
    #[error("this share's holder (index {0}) is not in the holder list")]
    NotAHolder(usize),
    /// A holder's x-coordinate is zero or repeats another's.
    #[error("holder {0}'s x-coordinate is zero or repeats another holder's")]
    BadPoint(usize),
    /// The secret does not belong to this holder's public share (a share of another key).
    #[error("the secret share does not match this holder's public share (a share of another key?)")]
    SecretMismatch,
    /// The first `t + 1` public shares do not interpolate to the public key.
    #[error("the public shares do not interpolate to the public key at threshold {0}")]
    NotThePublicKey(u16),
    /// A further holder's public share is off the polynomial the first `t + 1` define.
    #[error(
        "holder {holder}'s public share is not on a degree-{threshold} polynomial with the others: the threshold does not match the shares"
    )]
    OffPolynomial {
        /// The holder's index.
        holder: usize,
        /// The stated threshold.
        threshold: u16,
    },
    /// The encoded share cannot be read (wrong curve, truncated, an invalid point or scalar).
    #[error("malformed imported share: {0}")]
    Malformed(&'static str),
    /// `t` public shares already give the public key: the polynomial's degree is below `t`.
    #[error("the shares' threshold is below the stated {0}: the threshold does not match the shares")]
    DegreeBelow(u16),
}

/// An imported share that passed [`LegacyShare::check`].
pub struct CheckedLegacyShare<C: Curve>(LegacyShare<C>);

impl<C: Curve> fmt::Debug for CheckedLegacyShare<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CheckedLegacyShare").field(&self.0).finish()
    }
}

/// `Σ_i l_i(x)·P_i`: the value at `x` of the polynomial through `(xs[i], points[i])`.
fn interpolate_at<C: Curve>(xs: &[C::Scalar], points: &[C::Point], x: &C::Scalar) -> Option<C::Point> {
    let mut acc = C::identity();
    for (i, p) in points.iter().enumerate() {
        acc = acc + *p * lagrange_at::<C>(xs, i, x)?;
    }
    Some(acc)
}

const ENCODING_TAG: &[u8; 4] = b"LGS1";

impl<C: Curve> LegacyShare<C> {
    /// The share's bytes for the store: tag, key type, threshold, holder count, `me`, public
    /// key, each holder's x-coordinate and public share, the secret (curve encodings).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::new());
        out.extend_from_slice(ENCODING_TAG);
        out.push(C::KEY_TYPE as u8);
        out.extend_from_slice(&self.threshold.to_be_bytes());
        out.extend_from_slice(&(self.holders.len() as u32).to_be_bytes());
        out.extend_from_slice(&(self.me as u32).to_be_bytes());
        out.extend_from_slice(&C::point_to_bytes(&self.public_key));
        for h in &self.holders {
            out.extend_from_slice(&C::scalar_to_bytes(&h.x));
            out.extend_from_slice(&C::point_to_bytes(&h.public_share));
        }
        out.extend_from_slice(&C::scalar_to_bytes(&self.secret));
        out
    }

    /// Read [`Self::to_bytes`]' output (unchecked: call [`Self::check`] next).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, LegacyError> {
        let mut rest = bytes.strip_prefix(ENCODING_TAG).ok_or(LegacyError::Malformed("tag"))?;
        let mut take = |n: usize, what: &'static str| -> Result<&[u8], LegacyError> {
            if rest.len() < n {
                return Err(LegacyError::Malformed(what));
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        if take(1, "key type")?[0] != C::KEY_TYPE as u8 {
            return Err(LegacyError::Malformed("a share of another curve"));
        }
        let threshold = u16::from_be_bytes(
            take(2, "threshold")?.try_into().map_err(|_| LegacyError::Malformed("threshold"))?,
        );
        let n = u32::from_be_bytes(
            take(4, "holders")?.try_into().map_err(|_| LegacyError::Malformed("holders"))?,
        );
        let me = u32::from_be_bytes(take(4, "me")?.try_into().map_err(|_| LegacyError::Malformed("me"))?);
        if n > u32::from(PartyId::MAX) {
            return Err(LegacyError::Malformed("holders"));
        }
        let point = |b: &[u8]| C::point_from_bytes(b).ok_or(LegacyError::Malformed("point"));
        let scalar = |b: &[u8]| C::scalar_from_bytes(b).ok_or(LegacyError::Malformed("scalar"));
        let public_key = point(take(C::POINT_LEN, "public key")?)?;
        let mut holders = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let x = scalar(take(C::SCALAR_LEN, "x")?)?;
            let public_share = point(take(C::POINT_LEN, "public share")?)?;
            holders.push(LegacyHolder { x, public_share });
        }
        let secret = Zeroizing::new(scalar(take(C::SCALAR_LEN, "secret")?)?);
        if !rest.is_empty() {
            return Err(LegacyError::Malformed("trailing bytes"));
        }
        Ok(Self { threshold, public_key, holders, me: me as usize, secret })
    }

    /// Check the share against its public data (see the module docs).
    pub fn check(self) -> Result<CheckedLegacyShare<C>, LegacyError> {
        let n = self.holders.len();
        let t = usize::from(self.threshold);
        if self.threshold == 0 || t >= n || n > usize::from(PartyId::MAX) {
            return Err(LegacyError::Shape { holders: n, threshold: self.threshold });
        }
        let Some(mine) = self.holders.get(self.me) else {
            return Err(LegacyError::NotAHolder(self.me));
        };
        let xs: Vec<C::Scalar> = self.holders.iter().map(|h| h.x).collect();
        for (i, x) in xs.iter().enumerate() {
            if C::is_zero(x) || xs[..i].contains(x) {
                return Err(LegacyError::BadPoint(i));
            }
        }
        if C::generator() * *self.secret != mine.public_share {
            return Err(LegacyError::SecretMismatch);
        }
        let points: Vec<C::Point> = self.holders.iter().map(|h| h.public_share).collect();
        let zero = C::scalar_from_u64(0);
        let at_zero = interpolate_at::<C>(&xs[..=t], &points[..=t], &zero).ok_or(LegacyError::BadPoint(0))?;
        if at_zero != self.public_key {
            return Err(LegacyError::NotThePublicKey(self.threshold));
        }
        for j in t + 1..n {
            let there =
                interpolate_at::<C>(&xs[..=t], &points[..=t], &xs[j]).ok_or(LegacyError::BadPoint(j))?;
            if there != points[j] {
                return Err(LegacyError::OffPolynomial { holder: j, threshold: self.threshold });
            }
        }
        let below = interpolate_at::<C>(&xs[..t], &points[..t], &zero).ok_or(LegacyError::BadPoint(0))?;
        if below == self.public_key {
            return Err(LegacyError::DegreeBelow(self.threshold));
        }
        Ok(CheckedLegacyShare(self))
    }
}

impl<C: Curve> CheckedLegacyShare<C> {
    /// The key's public data in the form resharing takes: old ids `1..=n` in holder order, at
    /// the imported x-coordinates.
    pub fn old_key(&self) -> OldKey<C> {
        let ids = (1..=self.0.holders.len() as PartyId).zip(&self.0.holders);
        let mut old = OldKey::new(
            self.0.threshold,
            self.0.public_key,
            ids.clone().map(|(id, h)| (id, h.public_share)).collect(),
        );
        old.evaluation_points = ids.map(|(id, h)| (id, h.x)).collect();
        old
    }

    /// This share's old id in [`Self::old_key`].
    pub fn old_id(&self) -> PartyId {
        self.0.me as PartyId + 1
    }

    /// The key's public key.
    pub fn public_key(&self) -> C::Point {
        self.0.public_key
    }

    /// The stated (and checked) threshold.
    pub fn threshold(&self) -> u16 {
        self.0.threshold
    }

    /// The secret share, for dealing.
    pub fn secret(&self) -> Zeroizing<C::Scalar> {
        self.0.secret.clone()
    }
}
