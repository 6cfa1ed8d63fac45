//! Threshold EdDSA on Ed25519: the [`crate::frost`] engine with `frost-ed25519` (RFC 9591,
//! FROST(Ed25519, SHA-512)).
//!
//! A key is t-of-n: any `t + 1` of the `n` holders sign, and `t` is the original mpcium's
//! `mpc_threshold`.
//!
//! * [`Keygen`], [`Sign`], [`Reshare`], [`KeyShare`]: see [`crate::frost`]. A signature is the
//!   standard 64-byte `R ‖ S` and verifies with any RFC 8032 verifier (`ed25519-dalek`
//!   `verify_strict`). [`Sign::with_derivation`] signs for an HD child key.
//! * [`derive_child`]: the original's non-standard non-hardened Ed25519 derivation (docs/wire.md §11).

mod hd;

use crate::curve::{Curve, Ed25519};
use crate::frost::{self, Suite};
use crate::protocol::{ExecutionId, PartyId, ProtocolError};

pub use crate::frost::{KEY_SHARE_VERSION, KeyShareError, Signature};
pub use hd::{Derived, HdError, derive_child, serialize_point};

/// FROST(Ed25519, SHA-512) over [`Ed25519`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ed25519Suite;

impl Suite for Ed25519Suite {
    type Cs = frost_ed25519::Ed25519Sha512;
    type Curve = Ed25519;
    type PointRepr = [u8; 32];
    const NAME: &'static str = "eddsa";

    fn point_repr(p: &curve25519_dalek::EdwardsPoint) -> [u8; 32] {
        p.compress().to_bytes()
    }

    fn point_from_repr(r: &[u8; 32]) -> Option<curve25519_dalek::EdwardsPoint> {
        Ed25519::point_from_bytes(r)
    }
}

/// One party's run of the Ed25519 DKG.
pub type Keygen = frost::Keygen<Ed25519Suite>;
/// One signer's run of FROST(Ed25519, SHA-512).
pub type Sign = frost::Sign<Ed25519Suite>;
/// A signer's nonce pair for a later FROST(Ed25519, SHA-512) signature, drawn ahead.
pub type Nonce = frost::Nonce<Ed25519Suite>;
/// One party's share of a threshold Ed25519 key.
pub type KeyShare = frost::KeyShare<Ed25519Suite>;
/// One member's resharing run of an Ed25519 key.
pub type Reshare = frost::Reshare<Ed25519Suite>;
/// What an Ed25519 resharing run returns to a member.
pub type ReshareResult = frost::ReshareResult<Ed25519Suite>;

impl frost::KeyShare<Ed25519Suite> {
    /// The group public key in the standard 32-byte Ed25519 encoding.
    pub fn public_key_bytes(&self) -> [u8; 32] {
        self.public_key().compress().to_bytes()
    }
}

impl frost::Sign<Ed25519Suite> {
    /// Start signing `message` with `share` among `signers` (exactly `t + 1` committee members,
    /// this party included).
    pub fn new(
        exec: ExecutionId,
        share: &KeyShare,
        signers: &[PartyId],
        message: &[u8],
    ) -> Result<Self, ProtocolError> {
        let packages = (share.key_package().clone(), share.public_key_package().clone());
        Self::start(exec, share, signers, message, packages)
    }

    /// Like [`new`](Self::new), signing for the child key at `path` (docs/wire.md §11 derivation from
    /// the cluster's `chain_code`): every share is shifted by the derivation tweak.
    pub fn with_derivation(
        exec: ExecutionId,
        share: &KeyShare,
        signers: &[PartyId],
        message: &[u8],
        chain_code: &[u8; 32],
        path: &[u32],
    ) -> Result<Self, ProtocolError> {
        let derived = derive_child(&share.public_key_bytes(), chain_code, path)
            .map_err(|e: HdError| ProtocolError::InvalidInput(format!("derivation: {e}")))?;
        Self::for_child(exec, share, signers, message, &derived)
    }

    /// Like [`with_derivation`](Self::with_derivation), for a child the caller derived already
    /// ([`derive_child`] of this share's key), so the derivation runs once.
    pub fn for_child(
        exec: ExecutionId,
        share: &KeyShare,
        signers: &[PartyId],
        message: &[u8],
        derived: &Derived,
    ) -> Result<Self, ProtocolError> {
        let child = share
            .tweaked(&derived.tweak)
            .map_err(|e| ProtocolError::Internal(format!("tweaked share: {e}")))?;
        Self::new(exec, &child, signers, message)
    }
}
