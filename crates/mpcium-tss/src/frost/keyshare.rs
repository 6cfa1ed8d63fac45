//! A party's FROST key share: FROST's `KeyPackage` and `PublicKeyPackage` plus our party id and
//! threshold, validated whenever one is built or loaded.

use std::collections::BTreeMap;
use std::fmt;

use frost_core::VerifyingKey;
use frost_core::keys::{KeyPackage, PublicKeyPackage, SigningShare, VerifyingShare};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::{Suite, identifier, party_of};
use crate::curve::Curve;
use crate::protocol::PartyId;
use crate::reshare::{NewShare, OldKey, lagrange_at};

type Point<S> = <<S as Suite>::Curve as Curve>::Point;
type Scalar<S> = <<S as Suite>::Curve as Curve>::Scalar;

/// Why a key share was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyShareError {
    /// The bytes are not a key share (truncated, corrupted, trailing data, bad checksum).
    #[error("malformed key share: {0}")]
    Malformed(String),
    /// A format version this build cannot read.
    #[error("unsupported key share version {0}")]
    UnsupportedVersion(u16),
    /// The fields decode but are inconsistent.
    #[error("inconsistent key share: {0}")]
    Inconsistent(String),
}

/// The current serialised format version.
pub const KEY_SHARE_VERSION: u16 = 1;

/// One party's share of a threshold Schnorr key (t-of-n: any `t + 1` shares sign).
///
/// Always valid: every constructor checks that the secret matches the party's public share,
/// that every public share lies on one degree-`t` polynomial whose value at 0 is the public key,
/// and that ids and thresholds agree. Secret material is zeroized on drop and never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyShare<S: Suite> {
    party: PartyId,
    threshold: u16,
    key_package: KeyPackage<S::Cs>,
    public_key_package: PublicKeyPackage<S::Cs>,
    /// Decoded copies of the public data in the packages.
    public_key: Point<S>,
    public_shares: BTreeMap<PartyId, Point<S>>,
}

impl<S: Suite> fmt::Debug for KeyShare<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare")
            .field("party", &self.party)
            .field("threshold", &self.threshold)
            .field("public_key", &hex::encode(S::Curve::point_to_bytes(&self.public_key)))
            .field("signing_share", &"<redacted>")
            .finish()
    }
}

fn point<S: Suite>(bytes: &[u8]) -> Result<Point<S>, KeyShareError> {
    S::Curve::point_from_bytes(bytes).ok_or_else(|| KeyShareError::Inconsistent("invalid point".into()))
}

/// The curve's and the ciphersuite's encodings agree (see [`Suite::Curve`]), so values cross
/// between the two through them.
fn share_scalar<S: Suite>(share: &SigningShare<S::Cs>) -> Result<Zeroizing<Scalar<S>>, KeyShareError> {
    let bytes = Zeroizing::new(share.serialize());
    S::Curve::scalar_from_bytes(&bytes)
        .map(Zeroizing::new)
        .ok_or_else(|| KeyShareError::Inconsistent("signing share encoding".into()))
}

fn share_point<S: Suite>(share: &VerifyingShare<S::Cs>) -> Result<Point<S>, KeyShareError> {
    let bytes = share.serialize().map_err(|e| KeyShareError::Inconsistent(e.to_string()))?;
    point::<S>(&bytes)
}

fn key_point<S: Suite>(key: &VerifyingKey<S::Cs>) -> Result<Point<S>, KeyShareError> {
    let bytes = key.serialize().map_err(|e| KeyShareError::Inconsistent(e.to_string()))?;
    point::<S>(&bytes)
}

impl<S: Suite> KeyShare<S> {
    /// Build a share from its parts (party id, threshold t, secret share, public key, every
    /// party's public share), checking them all.
    pub(crate) fn from_parts(
        party: PartyId,
        threshold: u16,
        secret: &Scalar<S>,
        public_key: &Point<S>,
        public_shares: &BTreeMap<PartyId, Point<S>>,
    ) -> Result<Self, KeyShareError> {
        let bad = |m: String| Err(KeyShareError::Inconsistent(m));
        if party == 0 || threshold == 0 {
            return bad("party id and threshold must be at least 1".into());
        }
        let n = public_shares.len();
        if usize::from(threshold) >= n {
            return bad(format!("threshold {threshold} needs more than {n} parties"));
        }
        if public_shares.get(&party) != Some(&(S::Curve::generator() * *secret)) {
            return bad("the secret share does not match the party's public share".into());
        }
        check_polynomial::<S>(threshold, public_key, public_shares)?;

        let min_signers = threshold + 1;
        let signing_share = SigningShare::<S::Cs>::deserialize(&S::Curve::scalar_to_bytes(secret))
            .map_err(|e| KeyShareError::Inconsistent(format!("signing share: {e}")))?;
        let verifying_key = VerifyingKey::<S::Cs>::deserialize(&S::Curve::point_to_bytes(public_key))
            .map_err(|e| KeyShareError::Inconsistent(format!("public key: {e}")))?;
        let mut verifying_shares = BTreeMap::new();
        for (&p, y) in public_shares {
            let share = VerifyingShare::<S::Cs>::deserialize(&S::Curve::point_to_bytes(y))
                .map_err(|e| KeyShareError::Inconsistent(format!("public share {p}: {e}")))?;
            verifying_shares.insert(identifier::<S>(p)?, share);
        }
        let me = identifier::<S>(party)?;
        let own_verifying =
            *verifying_shares.get(&me).ok_or_else(|| KeyShareError::Inconsistent("own share".into()))?;
        Ok(Self {
            party,
            threshold,
            key_package: KeyPackage::new(me, signing_share, own_verifying, verifying_key, min_signers),
            public_key_package: PublicKeyPackage::new(verifying_shares, verifying_key, Some(min_signers)),
            public_key: *public_key,
            public_shares: public_shares.clone(),
        })
    }

    /// Build and check a share from what FROST's DKG returned.
    pub(crate) fn from_frost(
        party: PartyId,
        threshold: u16,
        key_package: &KeyPackage<S::Cs>,
        public_key_package: &PublicKeyPackage<S::Cs>,
    ) -> Result<Self, KeyShareError> {
        let parts = Parts::<S>::from_frost(key_package, public_key_package)?;
        if *key_package.identifier() != identifier::<S>(party)? || *key_package.min_signers() != threshold + 1
        {
            return Err(KeyShareError::Inconsistent(
                "FROST key package does not match party or threshold".into(),
            ));
        }
        Self::from_parts(party, threshold, &parts.secret, &parts.public_key, &parts.public_shares)
    }

    /// Build and check a share from a resharing result.
    pub fn from_reshare(share: &NewShare<S::Curve>) -> Result<Self, KeyShareError> {
        Self::from_parts(
            share.party,
            share.threshold,
            &share.secret_share,
            &share.public_key,
            &share.public_shares,
        )
    }

    /// This party's id in the committee.
    pub fn party(&self) -> PartyId {
        self.party
    }

    /// The threshold t: a signature needs `t + 1` parties.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    /// The committee's party ids, ascending.
    pub fn parties(&self) -> Vec<PartyId> {
        self.public_shares().keys().copied().collect()
    }

    /// The group public key as a point.
    pub fn public_key(&self) -> Point<S> {
        self.public_key
    }

    /// Every party's public share, by party id.
    pub fn public_shares(&self) -> &BTreeMap<PartyId, Point<S>> {
        &self.public_shares
    }

    /// The public data of this key in the form resharing takes.
    pub fn old_key(&self) -> OldKey<S::Curve> {
        OldKey::new(self.threshold, self.public_key, self.public_shares.clone())
    }

    /// The secret share (for resharing).
    pub(crate) fn secret(&self) -> Result<Zeroizing<Scalar<S>>, KeyShareError> {
        share_scalar::<S>(self.key_package.signing_share())
    }

    pub(crate) fn key_package(&self) -> &KeyPackage<S::Cs> {
        &self.key_package
    }

    pub(crate) fn public_key_package(&self) -> &PublicKeyPackage<S::Cs> {
        &self.public_key_package
    }

    /// The share of the child key `public key + tweak·G`: every share (secret and public)
    /// shifted by the tweak, which keeps them on one polynomial.
    pub(crate) fn tweaked(&self, tweak: &Scalar<S>) -> Result<Self, KeyShareError> {
        let delta = S::Curve::generator() * *tweak;
        let secret = Zeroizing::new(*self.secret()? + *tweak);
        let shares = self.public_shares.iter().map(|(p, y)| (*p, *y + delta)).collect();
        Self::from_parts(self.party, self.threshold, &secret, &(self.public_key + delta), &shares)
    }

    /// The share of the negated key `-public key`: every share (secret and public) negated,
    /// which keeps them on one polynomial (BIP340's even-Y lift).
    pub(crate) fn negated(&self) -> Result<Self, KeyShareError> {
        let minus_one = -S::Curve::scalar_from_u64(1);
        let secret = Zeroizing::new(-*self.secret()?);
        let shares = self.public_shares.iter().map(|(p, y)| (*p, *y * minus_one)).collect();
        Self::from_parts(self.party, self.threshold, &secret, &(self.public_key * minus_one), &shares)
    }

    /// The versioned binary form: postcard-encoded fields followed by a SHA-256 checksum, so a
    /// truncated or flipped byte is refused on load. Secret: store encrypted.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, KeyShareError> {
        let wire = KeyShareV1::<S>::try_from(self)?;
        let mut bytes = Zeroizing::new(
            postcard::to_allocvec(&wire).map_err(|e| KeyShareError::Malformed(e.to_string()))?,
        );
        let sum = checksum::<S>(&bytes);
        bytes.extend_from_slice(&sum);
        Ok(bytes)
    }

    /// Load and check a share written by [`to_bytes`](Self::to_bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyShareError> {
        let (body, sum) = bytes
            .split_at_checked(bytes.len().saturating_sub(32))
            .filter(|(body, _)| !body.is_empty())
            .ok_or_else(|| KeyShareError::Malformed("too short".into()))?;
        if checksum::<S>(body) != sum {
            return Err(KeyShareError::Malformed("checksum mismatch".into()));
        }
        let (wire, rest): (KeyShareV1<S>, &[u8]) =
            postcard::take_from_bytes(body).map_err(|e| KeyShareError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(KeyShareError::Malformed("trailing bytes".into()));
        }
        Self::try_from(wire)
    }
}

fn checksum<S: Suite>(body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"mpcium-tss/");
    h.update(S::NAME.as_bytes());
    h.update(b"/key-share");
    h.update(body);
    h.finalize().into()
}

/// Check that the public shares lie on one polynomial of degree `threshold` through the
/// public key: interpolate from the first `t + 1` shares at 0 and at every other id.
fn check_polynomial<S: Suite>(
    threshold: u16,
    public_key: &Point<S>,
    public_shares: &BTreeMap<PartyId, Point<S>>,
) -> Result<(), KeyShareError> {
    let repeated = || KeyShareError::Inconsistent("repeated party id".into());
    let base: Vec<PartyId> = public_shares.keys().take(usize::from(threshold) + 1).copied().collect();
    let xs: Vec<Scalar<S>> = base.iter().map(|b| S::Curve::scalar_from_u64(u64::from(*b))).collect();
    let at = |x: &Scalar<S>| -> Result<Point<S>, KeyShareError> {
        let mut acc = S::Curve::identity();
        for (k, b) in base.iter().enumerate() {
            acc = acc + public_shares[b] * lagrange_at::<S::Curve>(&xs, k, x).ok_or_else(repeated)?;
        }
        Ok(acc)
    };
    if at(&S::Curve::scalar_from_u64(0))? != *public_key {
        return Err(KeyShareError::Inconsistent("public shares do not interpolate to the public key".into()));
    }
    for (&x, y) in public_shares.iter().skip(base.len()) {
        if at(&S::Curve::scalar_from_u64(u64::from(x)))? != *y {
            return Err(KeyShareError::Inconsistent(format!(
                "public share {x} is off the sharing polynomial"
            )));
        }
    }
    Ok(())
}

/// The scalars and points of a FROST key package pair.
struct Parts<S: Suite> {
    secret: Zeroizing<Scalar<S>>,
    public_key: Point<S>,
    public_shares: BTreeMap<PartyId, Point<S>>,
}

impl<S: Suite> Parts<S> {
    fn from_frost(kp: &KeyPackage<S::Cs>, pkp: &PublicKeyPackage<S::Cs>) -> Result<Self, KeyShareError> {
        if kp.verifying_key() != pkp.verifying_key() {
            return Err(KeyShareError::Inconsistent(
                "key package and public package disagree on the key".into(),
            ));
        }
        let mut public_shares = BTreeMap::new();
        for (id, share) in pkp.verifying_shares() {
            let p = party_of::<S>(id)
                .ok_or_else(|| KeyShareError::Inconsistent("identifier is not a party id".into()))?;
            public_shares.insert(p, share_point::<S>(share)?);
        }
        Ok(Self {
            secret: share_scalar::<S>(kp.signing_share())?,
            public_key: key_point::<S>(pkp.verifying_key())?,
            public_shares,
        })
    }
}

/// Serialised form, version 1: scalars in the curve's canonical 32-byte encoding, points in the
/// suite's stored form (for Ed25519 the 32-byte encoding, so the bytes are those of the shares
/// written before the engine served two suites).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(bound = "")]
struct KeyShareV1<S: Suite> {
    version: u16,
    party: u16,
    threshold: u16,
    signing_share: [u8; 32],
    public_key: S::PointRepr,
    public_shares: Vec<(u16, S::PointRepr)>,
}

impl<S: Suite> Drop for KeyShareV1<S> {
    fn drop(&mut self) {
        self.signing_share.zeroize();
    }
}

impl<S: Suite> TryFrom<&KeyShare<S>> for KeyShareV1<S> {
    type Error = KeyShareError;

    fn try_from(share: &KeyShare<S>) -> Result<Self, Self::Error> {
        let secret = S::Curve::scalar_to_bytes(&*share.secret()?);
        let signing_share = secret
            .as_slice()
            .try_into()
            .map_err(|_| KeyShareError::Inconsistent("scalar is not 32 bytes".into()))?;
        Ok(Self {
            version: KEY_SHARE_VERSION,
            party: share.party,
            threshold: share.threshold,
            signing_share,
            public_key: S::point_repr(&share.public_key),
            public_shares: share.public_shares.iter().map(|(p, y)| (*p, S::point_repr(y))).collect(),
        })
    }
}

/// Serialises as the versioned [`KeyShareV1`] form (secret included: encrypt at rest).
impl<S: Suite> serde::Serialize for KeyShare<S> {
    fn serialize<Ser: serde::Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        KeyShareV1::<S>::try_from(self).map_err(serde::ser::Error::custom)?.serialize(serializer)
    }
}

/// Deserialises the versioned [`KeyShareV1`] form and checks it like every constructor.
impl<'de, S: Suite> serde::Deserialize<'de> for KeyShare<S> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = KeyShareV1::<S>::deserialize(deserializer)?;
        Self::try_from(wire).map_err(serde::de::Error::custom)
    }
}

impl<S: Suite> TryFrom<KeyShareV1<S>> for KeyShare<S> {
    type Error = KeyShareError;

    fn try_from(wire: KeyShareV1<S>) -> Result<Self, Self::Error> {
        if wire.version != KEY_SHARE_VERSION {
            return Err(KeyShareError::UnsupportedVersion(wire.version));
        }
        let secret = S::Curve::scalar_from_bytes(&wire.signing_share)
            .map(Zeroizing::new)
            .ok_or_else(|| KeyShareError::Inconsistent("signing share is not a canonical scalar".into()))?;
        let invalid = || KeyShareError::Inconsistent("invalid point".into());
        let public_key = S::point_from_repr(&wire.public_key).ok_or_else(invalid)?;
        let mut shares = BTreeMap::new();
        for (p, y) in &wire.public_shares {
            if shares.insert(*p, S::point_from_repr(y).ok_or_else(invalid)?).is_some() {
                return Err(KeyShareError::Inconsistent(format!("public share {p} repeated")));
            }
        }
        Self::from_parts(wire.party, wire.threshold, &secret, &public_key, &shares)
    }
}
