//! The FROST engine (RFC 9591), generic over the ciphersuite: one implementation of keygen,
//! signing, key shares and resharing serves both Schnorr key types.
//!
//! A [`Suite`] names a `frost-core` ciphersuite and the [`Curve`] the generic resharing and HD
//! code work on (the same group, reached through the canonical encodings), plus the bits that
//! differ: the domain name in hashes and checksums and the point encoding of a stored share.
//! [`crate::eddsa`] instantiates it with `frost-ed25519`, [`crate::taproot`] with
//! `frost-secp256k1-tr` (BIP340 signatures, BIP341 tweaks).
//!
//! A key is t-of-n: any `t + 1` of the `n` holders sign (`min_signers = t + 1` in FROST terms).
//! Party ids are FROST identifiers (the same Shamir evaluation points), so shares move freely
//! between FROST and [`crate::reshare`].
//!
//! * [`Keygen`]: FROST DKG, 2 rounds plus a confirmation hash of the broadcast round; a bad proof
//!   of knowledge or a bad share names its sender.
//! * [`Sign`]: 2 rounds among exactly `t + 1` signers; everyone aggregates and verifies, and a
//!   bad signature share names its signer. One round when every signer drew its [`Nonce`] ahead.
//! * [`Reshare`]: new committee and/or threshold, or refresh, same public key.
//! * [`KeyShare`]: the validated, versioned, zeroized share.
//!
//! Every message carries the [`ExecutionId`](crate::ExecutionId) in its envelope and is refused
//! (blaming the sender) if it belongs to another run.

mod keygen;
mod keyshare;
mod reshare;
mod sign;
mod wire;

use frost_core::{Ciphersuite, Identifier};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::curve::Curve;
use crate::protocol::PartyId;

pub use keygen::Keygen;
pub use keyshare::{KEY_SHARE_VERSION, KeyShare, KeyShareError};
pub use reshare::{Reshare, ReshareResult};
pub use sign::{Nonce, Sign, Signature};

/// A FROST ciphersuite and the curve view of its group.
pub trait Suite: Copy + Clone + std::fmt::Debug + PartialEq + Eq + Send + Sync + 'static {
    /// The `frost-core` ciphersuite.
    type Cs: Ciphersuite;
    /// The same group for resharing, HD and validation. Its scalar and point encodings must be
    /// the ciphersuite's (FROST's `serialize` of a scalar or an element).
    type Curve: Curve;
    /// A point as a stored share holds it (postcard-encoded).
    type PointRepr: Serialize + DeserializeOwned;
    /// The domain name mixed into the confirmation hashes and the share checksum.
    const NAME: &'static str;

    /// The stored form of a point.
    fn point_repr(p: &<Self::Curve as Curve>::Point) -> Self::PointRepr;
    /// A point from its stored form, validated; `None` if it is not a valid point.
    fn point_from_repr(r: &Self::PointRepr) -> Option<<Self::Curve as Curve>::Point>;
}

/// The FROST identifier of a party id (the same Shamir evaluation point).
pub(crate) fn identifier<S: Suite>(party: PartyId) -> Result<Identifier<S::Cs>, KeyShareError> {
    Identifier::try_from(party).map_err(|_| KeyShareError::Inconsistent(format!("party id {party}")))
}

/// The party id of a FROST identifier we created (a small integer), if it is one.
pub(crate) fn party_of<S: Suite>(id: &Identifier<S::Cs>) -> Option<PartyId> {
    let bytes = id.serialize();
    // The scalar encoding is little-endian for Ed25519 and big-endian for secp256k1: look at
    // where the encoding of 1 puts its byte.
    let one = S::Curve::scalar_to_bytes(&S::Curve::scalar_from_u64(1));
    let little_endian = one.first() == Some(&1);
    if bytes.len() != one.len() || bytes.len() < 2 {
        return None;
    }
    let (low, rest) = if little_endian {
        let (low, rest) = bytes.split_at(2);
        ([low[1], low[0]], rest)
    } else {
        let (rest, low) = bytes.split_at(bytes.len() - 2);
        ([low[0], low[1]], rest)
    };
    if rest.iter().any(|b| *b != 0) {
        return None;
    }
    Some(u16::from_be_bytes(low))
}
