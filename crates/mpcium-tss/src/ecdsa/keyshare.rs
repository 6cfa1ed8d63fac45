//! One party's ECDSA key share: the dkls23 party state plus what the node needs to use it.

use std::collections::BTreeMap;
use std::fmt;

use dkls23::protocols::{Party, PartyIndex};
use k256::elliptic_curve::sec1::ToSec1Point;
use k256::{AffinePoint, ProjectivePoint, Scalar, Secp256k1};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::abort::{to_id, to_index};
use crate::protocol::PartyId;

/// The dkls23 party state on secp256k1.
pub(crate) type DklsParty = Party<Secp256k1>;

/// The only key-share format this code reads and writes.
pub const KEY_SHARE_FORMAT_VERSION: u16 = 1;

/// Why a key share was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyShareError {
    /// The blob was written by a format this code does not know.
    #[error("unknown key share format version {0} (this build reads version {KEY_SHARE_FORMAT_VERSION})")]
    UnknownVersion(u16),
    /// The blob is cut short or its checksum does not match (storage corruption).
    #[error("key share blob is corrupted: {0}")]
    Corrupted(String),
    /// The share decodes but its contents contradict each other.
    #[error("key share is inconsistent: {0}")]
    Inconsistent(String),
}

/// One party's share of a threshold ECDSA key (secp256k1, DKLs23).
///
/// Every way to obtain one (a protocol's result, [`KeyShare::from_bytes`], serde) checks it first,
/// so a `KeyShare` in hand is internally consistent: its public shares interpolate to the public
/// key, its own public share matches its secret share, and it holds pairwise multiplication state
/// for exactly the other participants. The secret state is zeroized on drop (dkls23's `Party`
/// wipes itself) and never printed by `Debug`.
pub struct KeyShare {
    pub(crate) party: DklsParty,
    pub(crate) threshold: u16,
    pub(crate) public_shares: BTreeMap<PartyId, AffinePoint>,
    public_key: k256::PublicKey,
}

#[derive(Serialize)]
struct BodyRef<'a> {
    party: &'a DklsParty,
    threshold: u16,
    public_shares: &'a BTreeMap<PartyId, AffinePoint>,
}

#[derive(Deserialize)]
struct BodyOwned {
    party: DklsParty,
    threshold: u16,
    public_shares: BTreeMap<PartyId, AffinePoint>,
}

const CHECKSUM_LEN: usize = 32;

impl KeyShare {
    /// Assemble and check a share (used by the protocols that produce one).
    pub(crate) fn new(
        party: DklsParty,
        threshold: u16,
        public_shares: BTreeMap<PartyId, AffinePoint>,
    ) -> Result<Self, KeyShareError> {
        let public_key = k256::PublicKey::from_affine(party.pk)
            .map_err(|_| KeyShareError::Inconsistent("public key is the identity".into()))?;
        let share = Self { party, threshold, public_shares, public_key };
        share.validate()?;
        Ok(share)
    }

    /// This party's id (its 1-based position in the committee).
    pub fn id(&self) -> PartyId {
        to_id(self.party.party_index)
    }

    /// The threshold `t`: any `t + 1` participants can sign, `t` learn nothing.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    /// Every participant's id, `1..=n`.
    pub fn participants(&self) -> Vec<PartyId> {
        self.public_shares.keys().copied().collect()
    }

    /// The wallet's (master) public key.
    pub fn public_key(&self) -> k256::PublicKey {
        self.public_key
    }

    /// The public key in the wire format of the original (§3.7): X ‖ Y, 32 bytes each, big-endian.
    pub fn public_key_xy(&self) -> [u8; 64] {
        let encoded = self.party.pk.to_sec1_point(false);
        let mut out = [0u8; 64];
        out.copy_from_slice(&encoded.as_bytes()[1..65]);
        out
    }

    /// Participant `p`'s public share (its secret share times the generator).
    pub fn public_share(&self, p: PartyId) -> Option<k256::PublicKey> {
        self.public_shares.get(&p).and_then(|pt| k256::PublicKey::from_affine(*pt).ok())
    }

    /// Encode as `[format version: u16 BE][postcard body][SHA-256 of what precedes]`. The result
    /// holds secret material: store it encrypted, with mode 0600.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, KeyShareError> {
        let mut out = Zeroizing::new(KEY_SHARE_FORMAT_VERSION.to_be_bytes().to_vec());
        let body =
            BodyRef { party: &self.party, threshold: self.threshold, public_shares: &self.public_shares };
        let encoded = Zeroizing::new(
            postcard::to_allocvec(&body)
                .map_err(|e| KeyShareError::Corrupted(format!("cannot encode: {e}")))?,
        );
        out.extend_from_slice(&encoded);
        let checksum = Sha256::digest(out.as_slice());
        out.extend_from_slice(&checksum);
        Ok(out)
    }

    /// Decode and check a share written by [`KeyShare::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyShareError> {
        if bytes.len() < 2 + CHECKSUM_LEN {
            return Err(KeyShareError::Corrupted(format!("only {} bytes", bytes.len())));
        }
        let version = u16::from_be_bytes([bytes[0], bytes[1]]);
        if version != KEY_SHARE_FORMAT_VERSION {
            return Err(KeyShareError::UnknownVersion(version));
        }
        let (content, checksum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        if Sha256::digest(content).as_slice() != checksum {
            return Err(KeyShareError::Corrupted("checksum mismatch".into()));
        }
        let body: BodyOwned = postcard::from_bytes(&content[2..])
            .map_err(|e| KeyShareError::Corrupted(format!("cannot decode: {e}")))?;
        Self::new(body.party, body.threshold, body.public_shares)
    }

    /// Check that every part of the share agrees with every other.
    fn validate(&self) -> Result<(), KeyShareError> {
        let bad = |m: String| Err(KeyShareError::Inconsistent(m));
        let p = &self.party;
        let n = self.public_shares.len();
        let me = self.id();
        let expected_ids: Vec<PartyId> = (1..=n as PartyId).collect();
        if !(2..=255).contains(&n) || self.participants() != expected_ids {
            return bad(format!(
                "participants must be 1..=n with 2 <= n <= 255, got {:?}",
                self.participants()
            ));
        }
        let t = usize::from(self.threshold);
        if t < 1 || t >= n {
            return bad(format!("threshold {t} must satisfy 1 <= t < n = {n}"));
        }
        // dkls23's own threshold counts signers: t + 1.
        if usize::from(p.parameters.threshold) != t + 1 || usize::from(p.parameters.share_count) != n {
            return bad(format!(
                "engine parameters ({} signers of {}) do not match t = {t}, n = {n}",
                p.parameters.threshold, p.parameters.share_count
            ));
        }
        let own = (ProjectivePoint::GENERATOR * p.poly_point).to_affine();
        if self.public_shares.get(&me) != Some(&own) {
            return bad(format!("public share of party {me} does not match its secret share"));
        }
        // The first t + 1 shares define the polynomial; the key and every other share must lie on it.
        let basis: Vec<(Scalar, AffinePoint)> = self
            .public_shares
            .iter()
            .take(t + 1)
            .map(|(id, pt)| (Scalar::from(u64::from(*id)), *pt))
            .collect();
        if interpolate(&basis, Scalar::ZERO) != Some(p.pk) {
            return bad("public shares do not interpolate to the public key".into());
        }
        for (id, pt) in self.public_shares.iter().skip(t + 1) {
            if interpolate(&basis, Scalar::from(u64::from(*id))) != Some(*pt) {
                return bad(format!("public share of party {id} is not on the sharing polynomial"));
            }
        }
        let peers: Vec<PartyIndex> = expected_ids
            .iter()
            .filter(|id| **id != me)
            .map(|id| to_index(*id))
            .collect::<Result<_, _>>()
            .map_err(|e| KeyShareError::Inconsistent(e.to_string()))?;
        if !p.mul_senders.keys().eq(peers.iter()) || !p.mul_receivers.keys().eq(peers.iter()) {
            return bad("pairwise multiplication state does not cover exactly the other participants".into());
        }
        if p.zero_share.seeds.len() != n - 1 {
            return bad(format!("{} zero-share seeds for {} peers", p.zero_share.seeds.len(), n - 1));
        }
        Ok(())
    }
}

/// Evaluate at `x` the polynomial (in the exponent) through `points`; `None` on repeated x values.
pub(crate) fn interpolate(points: &[(Scalar, AffinePoint)], x: Scalar) -> Option<AffinePoint> {
    let mut acc = ProjectivePoint::IDENTITY;
    for (i, (xi, pi)) in points.iter().enumerate() {
        let mut num = Scalar::ONE;
        let mut den = Scalar::ONE;
        for (j, (xj, _)) in points.iter().enumerate() {
            if i != j {
                num *= x - xj;
                den *= *xi - xj;
            }
        }
        let inv: Option<Scalar> = den.invert().into();
        acc += ProjectivePoint::from(*pi) * (num * inv?);
    }
    Some(acc.to_affine())
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare")
            .field("id", &self.id())
            .field("threshold", &self.threshold)
            .field("participants", &self.participants())
            .field("public_key", &hex::encode(self.party.pk.to_sec1_point(true).as_bytes()))
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl Serialize for KeyShare {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let bytes = self.to_bytes().map_err(serde::ser::Error::custom)?;
        s.serialize_bytes(&bytes)
    }
}

impl<'de> Deserialize<'de> for KeyShare {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = KeyShare;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an mpcium ECDSA key share blob")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<KeyShare, E> {
                KeyShare::from_bytes(v).map_err(E::custom)
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<KeyShare, E> {
                let v = Zeroizing::new(v);
                KeyShare::from_bytes(&v).map_err(E::custom)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<KeyShare, A::Error> {
                let mut v = Zeroizing::new(Vec::new());
                while let Some(b) = seq.next_element::<u8>()? {
                    v.push(b);
                }
                KeyShare::from_bytes(&v).map_err(serde::de::Error::custom)
            }
        }
        d.deserialize_bytes(Visitor)
    }
}
