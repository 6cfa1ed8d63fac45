//! A party's Ed25519 key share: FROST's `KeyPackage` and `PublicKeyPackage` plus our party id and
//! threshold, validated whenever one is built or loaded.

use std::collections::BTreeMap;
use std::fmt;

use curve25519_dalek::{EdwardsPoint, Scalar};
use frost_ed25519::Identifier;
use frost_ed25519::keys::{KeyPackage, PublicKeyPackage, SigningShare, VerifyingShare};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::curve::{Curve, Ed25519};
use crate::protocol::PartyId;
use crate::reshare::{NewShare, OldKey, lagrange_at_zero};

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

/// One party's share of a threshold Ed25519 key (t-of-n: any `t + 1` shares sign).
///
/// Always valid: every constructor checks that the secret matches the party's public share,
/// that every public share lies on one degree-`t` polynomial whose value at 0 is the public key,
/// and that ids and thresholds agree. Secret material is zeroized on drop and never printed.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "KeyShareV1")]
pub struct KeyShare {
    party: PartyId,
    threshold: u16,
    key_package: KeyPackage,
    public_key_package: PublicKeyPackage,
    /// Decoded copies of the public data in the packages (FROST keeps its accessors private).
    public_key: EdwardsPoint,
    public_shares: BTreeMap<PartyId, EdwardsPoint>,
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare")
            .field("party", &self.party)
            .field("threshold", &self.threshold)
            .field("public_key", &hex::encode(self.public_key_bytes()))
            .field("signing_share", &"<redacted>")
            .finish()
    }
}

/// The FROST identifier of a party id (the same Shamir evaluation point).
pub(crate) fn identifier(party: PartyId) -> Result<Identifier, KeyShareError> {
    Identifier::try_from(party).map_err(|_| KeyShareError::Inconsistent(format!("party id {party}")))
}

fn point(bytes: &[u8]) -> Result<EdwardsPoint, KeyShareError> {
    Ed25519::point_from_bytes(bytes).ok_or_else(|| KeyShareError::Inconsistent("invalid point".into()))
}

fn point_bytes(p: &EdwardsPoint) -> [u8; 32] {
    p.compress().to_bytes()
}

/// FROST keeps its scalar/element accessors crate-private; go through the encodings.
fn share_scalar(share: &SigningShare) -> Result<Zeroizing<Scalar>, KeyShareError> {
    let bytes = Zeroizing::new(share.serialize());
    Ed25519::scalar_from_bytes(&bytes)
        .map(Zeroizing::new)
        .ok_or_else(|| KeyShareError::Inconsistent("signing share encoding".into()))
}

fn share_point(share: &VerifyingShare) -> Result<EdwardsPoint, KeyShareError> {
    let bytes = share.serialize().map_err(|e| KeyShareError::Inconsistent(e.to_string()))?;
    point(&bytes)
}

fn key_point(key: &frost_ed25519::VerifyingKey) -> Result<EdwardsPoint, KeyShareError> {
    let bytes = key.serialize().map_err(|e| KeyShareError::Inconsistent(e.to_string()))?;
    point(&bytes)
}

impl KeyShare {
    /// Build a share from its parts (party id, threshold t, secret share, public key, every
    /// party's public share), checking them all.
    pub(crate) fn from_parts(
        party: PartyId,
        threshold: u16,
        secret: &Scalar,
        public_key: &EdwardsPoint,
        public_shares: &BTreeMap<PartyId, EdwardsPoint>,
    ) -> Result<Self, KeyShareError> {
        let bad = |m: String| Err(KeyShareError::Inconsistent(m));
        if party == 0 || threshold == 0 {
            return bad("party id and threshold must be at least 1".into());
        }
        let n = public_shares.len();
        if usize::from(threshold) >= n {
            return bad(format!("threshold {threshold} needs more than {n} parties"));
        }
        if public_shares.get(&party) != Some(&(Ed25519::generator() * *secret)) {
            return bad("the secret share does not match the party's public share".into());
        }
        check_polynomial(threshold, public_key, public_shares)?;

        let min_signers = threshold + 1;
        let signing_share = SigningShare::deserialize(secret.as_bytes())
            .map_err(|e| KeyShareError::Inconsistent(format!("signing share: {e}")))?;
        let verifying_key = frost_ed25519::VerifyingKey::deserialize(&point_bytes(public_key))
            .map_err(|e| KeyShareError::Inconsistent(format!("public key: {e}")))?;
        let mut verifying_shares = BTreeMap::new();
        for (&p, y) in public_shares {
            let share = VerifyingShare::deserialize(&point_bytes(y))
                .map_err(|e| KeyShareError::Inconsistent(format!("public share {p}: {e}")))?;
            verifying_shares.insert(identifier(p)?, share);
        }
        let me = identifier(party)?;
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
        key_package: &KeyPackage,
        public_key_package: &PublicKeyPackage,
    ) -> Result<Self, KeyShareError> {
        let parts = Parts::from_frost(key_package, public_key_package)?;
        if *key_package.identifier() != identifier(party)? || *key_package.min_signers() != threshold + 1 {
            return Err(KeyShareError::Inconsistent(
                "FROST key package does not match party or threshold".into(),
            ));
        }
        Self::from_parts(party, threshold, &parts.secret, &parts.public_key, &parts.public_shares)
    }

    /// Build and check a share from a resharing result.
    pub fn from_reshare(share: &NewShare<Ed25519>) -> Result<Self, KeyShareError> {
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

    /// The group public key in the standard 32-byte Ed25519 encoding.
    pub fn public_key_bytes(&self) -> [u8; 32] {
        point_bytes(&self.public_key)
    }

    /// The group public key as a point.
    pub fn public_key(&self) -> EdwardsPoint {
        self.public_key
    }

    /// Every party's public share, by party id.
    pub fn public_shares(&self) -> &BTreeMap<PartyId, EdwardsPoint> {
        &self.public_shares
    }

    /// The public data of this key in the form resharing takes.
    pub fn old_key(&self) -> OldKey<Ed25519> {
        OldKey::new(self.threshold, self.public_key, self.public_shares.clone())
    }

    /// The secret share (for resharing).
    pub(crate) fn secret(&self) -> Result<Zeroizing<Scalar>, KeyShareError> {
        share_scalar(self.key_package.signing_share())
    }

    pub(crate) fn key_package(&self) -> &KeyPackage {
        &self.key_package
    }

    pub(crate) fn public_key_package(&self) -> &PublicKeyPackage {
        &self.public_key_package
    }

    /// The share of the child key `public key + tweak·G`: every share (secret and public)
    /// shifted by the tweak, which keeps them on one polynomial.
    pub(crate) fn tweaked(&self, tweak: &Scalar) -> Result<Self, KeyShareError> {
        let delta = Ed25519::generator() * *tweak;
        let secret = Zeroizing::new(*self.secret()? + *tweak);
        let shares = self.public_shares.iter().map(|(p, y)| (*p, y + delta)).collect();
        Self::from_parts(self.party, self.threshold, &secret, &(self.public_key + delta), &shares)
    }

    /// The versioned binary form: postcard-encoded fields followed by a SHA-256 checksum, so a
    /// truncated or flipped byte is refused on load. Secret: store encrypted.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, KeyShareError> {
        let wire = KeyShareV1::try_from(self)?;
        let mut bytes = Zeroizing::new(
            postcard::to_allocvec(&wire).map_err(|e| KeyShareError::Malformed(e.to_string()))?,
        );
        let sum = checksum(&bytes);
        bytes.extend_from_slice(&sum);
        Ok(bytes)
    }

    /// Load and check a share written by [`to_bytes`](Self::to_bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyShareError> {
        let (body, sum) = bytes
            .split_at_checked(bytes.len().saturating_sub(32))
            .filter(|(body, _)| !body.is_empty())
            .ok_or_else(|| KeyShareError::Malformed("too short".into()))?;
        if checksum(body) != sum {
            return Err(KeyShareError::Malformed("checksum mismatch".into()));
        }
        let (wire, rest): (KeyShareV1, &[u8]) =
            postcard::take_from_bytes(body).map_err(|e| KeyShareError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(KeyShareError::Malformed("trailing bytes".into()));
        }
        Self::try_from(wire)
    }
}

fn checksum(body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"mpcium-tss/eddsa/key-share");
    h.update(body);
    h.finalize().into()
}

/// The party id of a FROST identifier we created (a small integer), if it is one.
pub(crate) fn party_of(id: &Identifier) -> Option<PartyId> {
    let bytes = id.serialize();
    // Little-endian scalar: a party id uses only the first two bytes.
    if bytes.len() != 32 || bytes[2..].iter().any(|b| *b != 0) {
        return None;
    }
    Some(u16::from_le_bytes([bytes[0], bytes[1]]))
}

/// Check that the public shares lie on one polynomial of degree `threshold` through the
/// public key: interpolate from the first `t + 1` shares at 0 and at every other id.
fn check_polynomial(
    threshold: u16,
    public_key: &EdwardsPoint,
    public_shares: &BTreeMap<PartyId, EdwardsPoint>,
) -> Result<(), KeyShareError> {
    let base: Vec<PartyId> = public_shares.keys().take(usize::from(threshold) + 1).copied().collect();
    let at = |x: PartyId| -> Result<EdwardsPoint, KeyShareError> {
        // Lagrange at x over `base`, by shifting the points: l_i(x) = lagrange_at_zero over (b - x).
        let mut acc = Ed25519::identity();
        let shifted: Vec<Scalar> =
            base.iter().map(|b| Scalar::from(u64::from(*b)) - Scalar::from(u64::from(x))).collect();
        for (k, b) in base.iter().enumerate() {
            let (mut num, mut den) = (Scalar::ONE, Scalar::ONE);
            for (m, _) in base.iter().enumerate().filter(|(m, _)| *m != k) {
                num *= shifted[m];
                den *= shifted[m] - shifted[k];
            }
            let inv = Ed25519::invert(&den)
                .ok_or_else(|| KeyShareError::Inconsistent("repeated party id".into()))?;
            acc += public_shares[b] * (num * inv);
        }
        Ok(acc)
    };
    // The first t+1 ids through 0 (fast path for the common check).
    let lambda_sum = base
        .iter()
        .map(|b| lagrange_at_zero::<Ed25519>(&base, *b).map(|l| public_shares[b] * l))
        .try_fold(Ed25519::identity(), |acc, p| p.map(|p| acc + p))
        .ok_or_else(|| KeyShareError::Inconsistent("repeated party id".into()))?;
    if lambda_sum != *public_key {
        return Err(KeyShareError::Inconsistent("public shares do not interpolate to the public key".into()));
    }
    for (&x, y) in public_shares.iter().skip(base.len()) {
        if at(x)? != *y {
            return Err(KeyShareError::Inconsistent(format!(
                "public share {x} is off the sharing polynomial"
            )));
        }
    }
    Ok(())
}

/// The scalars and points of a FROST key package pair.
struct Parts {
    secret: Zeroizing<Scalar>,
    public_key: EdwardsPoint,
    public_shares: BTreeMap<PartyId, EdwardsPoint>,
}

impl Parts {
    fn from_frost(kp: &KeyPackage, pkp: &PublicKeyPackage) -> Result<Self, KeyShareError> {
        if kp.verifying_key() != pkp.verifying_key() {
            return Err(KeyShareError::Inconsistent(
                "key package and public package disagree on the key".into(),
            ));
        }
        let mut public_shares = BTreeMap::new();
        for (id, share) in pkp.verifying_shares() {
            let p = party_of(id)
                .ok_or_else(|| KeyShareError::Inconsistent("identifier is not a party id".into()))?;
            public_shares.insert(p, share_point(share)?);
        }
        Ok(Self {
            secret: share_scalar(kp.signing_share())?,
            public_key: key_point(pkp.verifying_key())?,
            public_shares,
        })
    }
}

/// Serialised form, version 1. Scalars little-endian, points in the 32-byte Ed25519 encoding.
#[derive(serde::Serialize, serde::Deserialize)]
struct KeyShareV1 {
    version: u16,
    party: u16,
    threshold: u16,
    signing_share: [u8; 32],
    public_key: [u8; 32],
    public_shares: Vec<(u16, [u8; 32])>,
}

impl Drop for KeyShareV1 {
    fn drop(&mut self) {
        self.signing_share.zeroize();
    }
}

impl TryFrom<&KeyShare> for KeyShareV1 {
    type Error = KeyShareError;

    fn try_from(share: &KeyShare) -> Result<Self, Self::Error> {
        Ok(Self {
            version: KEY_SHARE_VERSION,
            party: share.party,
            threshold: share.threshold,
            signing_share: share.secret()?.to_bytes(),
            public_key: point_bytes(&share.public_key),
            public_shares: share.public_shares.iter().map(|(p, y)| (*p, point_bytes(y))).collect(),
        })
    }
}

/// Serialises as the versioned [`KeyShareV1`] form (secret included: encrypt at rest).
impl serde::Serialize for KeyShare {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        KeyShareV1::try_from(self).map_err(serde::ser::Error::custom)?.serialize(serializer)
    }
}

impl TryFrom<KeyShareV1> for KeyShare {
    type Error = KeyShareError;

    fn try_from(wire: KeyShareV1) -> Result<Self, Self::Error> {
        if wire.version != KEY_SHARE_VERSION {
            return Err(KeyShareError::UnsupportedVersion(wire.version));
        }
        let secret = Ed25519::scalar_from_bytes(&wire.signing_share)
            .map(Zeroizing::new)
            .ok_or_else(|| KeyShareError::Inconsistent("signing share is not a canonical scalar".into()))?;
        let public_key = point(&wire.public_key)?;
        let mut shares = BTreeMap::new();
        for (p, y) in &wire.public_shares {
            if shares.insert(*p, point(y)?).is_some() {
                return Err(KeyShareError::Inconsistent(format!("public share {p} repeated")));
            }
        }
        Self::from_parts(wire.party, wire.threshold, &secret, &public_key, &shares)
    }
}
