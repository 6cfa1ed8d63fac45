//! The [`Presignature`] a [`Presign`](super::Presign) run leaves each signer, and its stored
//! format: `[format version: u16 BE][postcard body][SHA-256 of what precedes]`.

use std::fmt;

use k256::AffinePoint;
use k256::Scalar;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::protocol::{ExecutionId, PartyId};

/// The only presignature format this code reads and writes.
pub const PRESIGNATURE_FORMAT_VERSION: u16 = 1;

/// A one-shot share of a signature nonce, made by [`Presign`](super::Presign) before the message is known.
///
/// It signs exactly one message: [`SignOnline`](super::SignOnline) consumes it by move, and it cannot be cloned.
/// Signing two messages with copies of the same presignature reveals the key, so a node that
/// persists a pool must delete each entry before using it. The secret values are zeroized on drop.
///
/// The key it signs for (master key or an HD child) is fixed when it is made: applying a
/// derivation tweak after the nonce is known enables related-key attacks on ECDSA with
/// presignatures (Groth–Shoup 2022), so the path is bound at presign time.
pub struct Presignature {
    pub(super) presign_id: ExecutionId,
    pub(super) me: PartyId,
    pub(super) signers: Vec<PartyId>,
    pub(super) public_key: k256::PublicKey,
    pub(super) nonce_point: AffinePoint,
    /// This party's share of `u = φ·k` (k the nonce, φ the inversion mask).
    pub(super) u: Scalar,
    /// This party's share of `φ·x·r` (x the secret key).
    pub(super) vr: Scalar,
    /// This party's share of φ.
    pub(super) phi: Scalar,
}

#[derive(Serialize, Deserialize)]
struct PresignatureBody {
    presign_id: ExecutionId,
    me: PartyId,
    signers: Vec<PartyId>,
    public_key: AffinePoint,
    nonce_point: AffinePoint,
    u: Scalar,
    vr: Scalar,
    phi: Scalar,
}

impl Drop for PresignatureBody {
    fn drop(&mut self) {
        self.u.zeroize();
        self.vr.zeroize();
        self.phi.zeroize();
    }
}

impl Drop for Presignature {
    fn drop(&mut self) {
        self.u.zeroize();
        self.vr.zeroize();
        self.phi.zeroize();
    }
}

impl fmt::Debug for Presignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presignature")
            .field("presign_id", &self.presign_id)
            .field("me", &self.me)
            .field("signers", &self.signers)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Why a stored presignature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresignatureError {
    /// Written by a format this code does not know.
    #[error(
        "unknown presignature format version {0} (this build reads version {PRESIGNATURE_FORMAT_VERSION})"
    )]
    UnknownVersion(u16),
    /// Cut short, checksum mismatch, or undecodable.
    #[error("presignature blob is corrupted: {0}")]
    Corrupted(String),
    /// Decodes, but its fields contradict each other.
    #[error("presignature is inconsistent: {0}")]
    Inconsistent(String),
}

impl Presignature {
    /// The run that made it; every signer's copy has the same id.
    pub fn id(&self) -> ExecutionId {
        self.presign_id
    }

    /// The signer that holds this share of the presignature.
    pub fn party_id(&self) -> PartyId {
        self.me
    }

    /// The parties that must join the online round (sorted).
    pub fn signers(&self) -> &[PartyId] {
        &self.signers
    }

    /// The key the signature will verify under (a child key if it was made with a path).
    pub fn public_key(&self) -> k256::PublicKey {
        self.public_key
    }

    /// Encode as `[format version: u16 BE][postcard body][SHA-256 of what precedes]`; secret.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, PresignatureError> {
        let body = PresignatureBody {
            presign_id: self.presign_id,
            me: self.me,
            signers: self.signers.clone(),
            public_key: *self.public_key.as_affine(),
            nonce_point: self.nonce_point,
            u: self.u,
            vr: self.vr,
            phi: self.phi,
        };
        let mut out = Zeroizing::new(PRESIGNATURE_FORMAT_VERSION.to_be_bytes().to_vec());
        let encoded = Zeroizing::new(
            postcard::to_allocvec(&body)
                .map_err(|e| PresignatureError::Corrupted(format!("cannot encode: {e}")))?,
        );
        out.extend_from_slice(&encoded);
        let checksum = Sha256::digest(out.as_slice());
        out.extend_from_slice(&checksum);
        Ok(out)
    }

    /// Decode and check a presignature written by [`Presignature::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PresignatureError> {
        if bytes.len() < 2 + 32 {
            return Err(PresignatureError::Corrupted(format!("only {} bytes", bytes.len())));
        }
        let version = u16::from_be_bytes([bytes[0], bytes[1]]);
        if version != PRESIGNATURE_FORMAT_VERSION {
            return Err(PresignatureError::UnknownVersion(version));
        }
        let (content, checksum) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(content).as_slice() != checksum {
            return Err(PresignatureError::Corrupted("checksum mismatch".into()));
        }
        let b: PresignatureBody = postcard::from_bytes(&content[2..])
            .map_err(|e| PresignatureError::Corrupted(format!("cannot decode: {e}")))?;
        let sorted = b.signers.windows(2).all(|w| w[0] < w[1]);
        if !sorted || !b.signers.contains(&b.me) || b.signers.len() < 2 || b.signers.contains(&0) {
            return Err(PresignatureError::Inconsistent(format!(
                "signers {:?} with me = {}",
                b.signers, b.me
            )));
        }
        if b.nonce_point == AffinePoint::IDENTITY {
            return Err(PresignatureError::Inconsistent("nonce point is the identity".into()));
        }
        let public_key = k256::PublicKey::from_affine(b.public_key)
            .map_err(|_| PresignatureError::Inconsistent("public key is the identity".into()))?;
        Ok(Self {
            presign_id: b.presign_id,
            me: b.me,
            signers: b.signers.clone(),
            public_key,
            nonce_point: b.nonce_point,
            u: b.u,
            vr: b.vr,
            phi: b.phi,
        })
    }
}

impl Serialize for Presignature {
    /// As the checked, versioned bytes of [`Presignature::to_bytes`].
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let bytes = self.to_bytes().map_err(serde::ser::Error::custom)?;
        s.serialize_bytes(&bytes)
    }
}

impl<'de> Deserialize<'de> for Presignature {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Presignature;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an mpcium ECDSA presignature blob")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Presignature, E> {
                Presignature::from_bytes(v).map_err(E::custom)
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Presignature, E> {
                let v = Zeroizing::new(v);
                Presignature::from_bytes(&v).map_err(E::custom)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Presignature, A::Error> {
                let mut v = Zeroizing::new(Vec::new());
                while let Some(b) = seq.next_element::<u8>()? {
                    v.push(b);
                }
                Presignature::from_bytes(&v).map_err(serde::de::Error::custom)
            }
        }
        d.deserialize_bytes(Visitor)
    }
}
