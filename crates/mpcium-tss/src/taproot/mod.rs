//! Threshold BIP340 Schnorr on secp256k1 for Taproot key-path spends: the [`crate::frost`]
//! engine with `frost-secp256k1-tr` (FROST(secp256k1, SHA-256) with BIP340 challenges and
//! even-Y handling, BIP341 tweaks).
//!
//! # Keys
//! The **internal key** P is the DKG's output key. `frost-secp256k1-tr` already commits the
//! DKG's raw sum to an unspendable script path there (P = lift(P₀) + H_TapTweak(P₀)·G), so no
//! DKG participant can hide a script path in P. Clients see P x-only ([`KeyShare::x_only_public_key`]).
//!
//! # Signing
//! [`Sign::new`] signs for the BIP341 **output key** Q = lift(P) + H_TapTweak(P ‖ root)·G
//! ([`output_key`]): with no merkle root, BIP86's Q = lift(P) + H_TapTweak(P)·G (key-path spend,
//! no script tree). The shares are lifted and tweaked inside the engine (negating every share
//! when a key has odd Y, adding the tweak to every share), which keeps them on one polynomial, so
//! FROST's share verification and blame work unchanged. The output is a 64-byte BIP340 signature
//! that verifies under Q's x coordinate ([`verify`]).
//!
//! # HD
//! [`Sign::with_derivation`] signs for the child C = lift(P) + δ·G, δ the non-hardened BIP32
//! public derivation of lift(P) (`0x02 ‖ x(P)`) along the path with the cluster's chain code
//! (the same derivation as the ECDSA keys, [`crate::ecdsa::derive_child_key`]), then for C's
//! output key as above ([`derive_child`]).

mod bip341;

use crate::curve::{Curve, Secp256k1};
use crate::frost::{self, Suite};
use crate::protocol::{ExecutionId, PartyId, ProtocolError};

pub use crate::frost::{KEY_SHARE_VERSION, KeyShareError, Signature};
pub use bip341::{Derived, TaprootError, derive_child, output_key, tap_tweak, verify};

/// FROST(secp256k1, SHA-256) with BIP340/341 over [`Secp256k1`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaprootSuite;

impl Suite for TaprootSuite {
    type Cs = frost_secp256k1_tr::Secp256K1Sha256TR;
    type Curve = Secp256k1;
    /// SEC1 compressed: the prefix byte and X (serde has no 33-byte arrays).
    type PointRepr = (u8, [u8; 32]);
    const NAME: &'static str = "taproot";

    fn point_repr(p: &k256::ProjectivePoint) -> (u8, [u8; 32]) {
        let bytes = Secp256k1::point_to_bytes(p);
        let mut x = [0u8; 32];
        x.copy_from_slice(&bytes[1..]);
        (bytes[0], x)
    }

    fn point_from_repr(r: &(u8, [u8; 32])) -> Option<k256::ProjectivePoint> {
        let mut bytes = [0u8; 33];
        bytes[0] = r.0;
        bytes[1..].copy_from_slice(&r.1);
        Secp256k1::point_from_bytes(&bytes)
    }
}

/// One party's run of the Taproot DKG.
pub type Keygen = frost::Keygen<TaprootSuite>;
/// One signer's run of FROST(secp256k1, SHA-256) for a BIP341 output key.
pub type Sign = frost::Sign<TaprootSuite>;
/// A signer's nonce pair for a later FROST(secp256k1, SHA-256) signature, drawn ahead.
pub type Nonce = frost::Nonce<TaprootSuite>;
/// One party's share of a threshold Taproot internal key.
pub type KeyShare = frost::KeyShare<TaprootSuite>;
/// One member's resharing run of a Taproot key.
pub type Reshare = frost::Reshare<TaprootSuite>;
/// What a Taproot resharing run returns to a member.
pub type ReshareResult = frost::ReshareResult<TaprootSuite>;

impl frost::KeyShare<TaprootSuite> {
    /// The internal key P, SEC1 compressed (its Y may be odd).
    pub fn public_key_bytes(&self) -> [u8; 33] {
        let mut out = [0u8; 33];
        out.copy_from_slice(&Secp256k1::point_to_bytes(&self.public_key()));
        out
    }

    /// The internal key P x-only (BIP340): what clients are given.
    pub fn x_only_public_key(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&self.public_key_bytes()[1..]);
        out
    }

    /// This share lifted to the even-Y internal key (negated when P's Y is odd).
    fn lifted(&self) -> Result<Self, KeyShareError> {
        if self.public_key_bytes()[0] == 0x03 { self.negated() } else { Ok(self.clone()) }
    }
}

impl frost::Sign<TaprootSuite> {
    /// Start signing `message` (a BIP341 sighash) with `share` among `signers` (exactly `t + 1`
    /// committee members, this party included) for the output key of the share's internal key
    /// and `merkle_root` (BIP86 when `None`).
    pub fn new(
        exec: ExecutionId,
        share: &KeyShare,
        signers: &[PartyId],
        message: &[u8],
        merkle_root: Option<[u8; 32]>,
    ) -> Result<Self, ProtocolError> {
        use frost_secp256k1_tr::keys::Tweak;
        let root = merkle_root.as_ref().map(<[u8; 32]>::as_slice);
        let packages =
            (share.key_package().clone().tweak(root), share.public_key_package().clone().tweak(root));
        Self::start(exec, share, signers, message, packages)
    }

    /// Like [`new`](Self::new), for the output key of the HD child of the internal key at `path`
    /// ([`derive_child`] with the cluster's `chain_code`).
    pub fn with_derivation(
        exec: ExecutionId,
        share: &KeyShare,
        signers: &[PartyId],
        message: &[u8],
        merkle_root: Option<[u8; 32]>,
        chain_code: &[u8; 32],
        path: &[u32],
    ) -> Result<Self, ProtocolError> {
        let derived = derive_child(&share.public_key_bytes(), chain_code, path)
            .map_err(|e| ProtocolError::InvalidInput(format!("derivation: {e}")))?;
        Self::for_child(exec, share, signers, message, merkle_root, &derived)
    }

    /// Like [`with_derivation`](Self::with_derivation), for a child the caller derived already
    /// ([`derive_child`] of this share's internal key), so the derivation runs once.
    pub fn for_child(
        exec: ExecutionId,
        share: &KeyShare,
        signers: &[PartyId],
        message: &[u8],
        merkle_root: Option<[u8; 32]>,
        derived: &Derived,
    ) -> Result<Self, ProtocolError> {
        let child = share
            .lifted()
            .and_then(|lifted| lifted.tweaked(&derived.tweak))
            .map_err(|e| ProtocolError::Internal(format!("derived share: {e}")))?;
        if child.public_key_bytes() != derived.public_key {
            return Err(ProtocolError::Internal("derived share does not match the derived key".into()));
        }
        Self::new(exec, &child, signers, message, merkle_root)
    }
}
