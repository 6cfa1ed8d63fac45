//! Threshold signing: [`Presign`] (the message-independent rounds), [`SignOnline`] (the last
//! round, from a [`Presignature`]) and [`Sign`] (both in one run), all driven by the one signer
//! state machine of [`super::signer`].

use serde::{Deserialize, Serialize};

use super::hd::HdPath;
use super::keyshare::KeyShare;
use super::presignature::Presignature;
use super::signer::{Outcome, SignCore};
use crate::driver::Driver;
use crate::protocol::{Action, ExecutionId, PartyId, Protocol, ProtocolError};

/// A finished ECDSA signature in the original's result format (docs/wire.md §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcdsaSignature {
    /// `r`, 32 bytes big-endian.
    pub r: [u8; 32],
    /// `s`, 32 bytes big-endian, normalised to the lower half of the order (low-S).
    pub s: [u8; 32],
    /// The recovery id: bit 0 = parity of R's y (after low-S), bit 1 = R.x was reduced mod n.
    pub recovery_id: u8,
}

fn expect_presignature(a: Action<Outcome>) -> Result<Action<Presignature>, ProtocolError> {
    Ok(match a {
        Action::Wait => Action::Wait,
        Action::SendMany(b) => Action::SendMany(b),
        Action::SendPrivate(p, b) => Action::SendPrivate(p, b),
        Action::Return(Outcome::Presignature(p)) => Action::Return(*p),
        Action::Return(Outcome::Signature(_)) => {
            return Err(ProtocolError::Internal("presign run produced a signature".into()));
        }
    })
}

fn expect_signature(a: Action<Outcome>) -> Result<Action<EcdsaSignature>, ProtocolError> {
    Ok(match a {
        Action::Wait => Action::Wait,
        Action::SendMany(b) => Action::SendMany(b),
        Action::SendPrivate(p, b) => Action::SendPrivate(p, b),
        Action::Return(Outcome::Signature(s)) => Action::Return(s),
        Action::Return(Outcome::Presignature(_)) => {
            return Err(ProtocolError::Internal("signing run stopped at a presignature".into()));
        }
    })
}

/// The message-independent part of a signature (dkls23 signing phases 1–3), two message rounds:
/// 1. private, to each co-signer: the first message of the pairwise multiplication (OT
///    extension) and a commitment to this party's nonce point;
/// 2. private: the multiplication's answer, the opened nonce commitment, the Lagrange-weighted
///    public share and the consistency values (checked: OT consistency, commitments, gamma
///    checks, the public shares summing to the key).
///
/// Output: a [`Presignature`] for the key (or the HD child of [`HdPath`]) and these signers.
pub struct Presign(Driver<SignCore>);

impl Presign {
    /// Start presigning with `share` among `signers` (exactly `t + 1` sorted ids, including this
    /// party), optionally for an HD child key.
    pub fn new(
        eid: ExecutionId,
        share: &KeyShare,
        signers: &[PartyId],
        hd: Option<&HdPath>,
    ) -> Result<Self, ProtocolError> {
        SignCore::presign(eid, share, signers, hd, None).map(|core| Self(Driver::new(core)))
    }
}

impl Protocol for Presign {
    type Output = Presignature;
    fn poke(&mut self) -> Result<Action<Presignature>, ProtocolError> {
        self.0.poke().and_then(expect_presignature)
    }
    fn message(&mut self, from: PartyId, data: Vec<u8>) {
        self.0.message(from, data);
    }
}

/// The online round: each signer broadcasts its share `(u_i, w_i)` of the signature, computed
/// from its [`Presignature`] and the 32-byte digest; everyone combines `s = Σw / Σu` and checks
/// the signature against the public key before returning it.
pub struct SignOnline(Driver<SignCore>);

impl SignOnline {
    /// Sign `digest` (the 32-byte message hash, e.g. Keccak-256) with a presignature. `eid` is
    /// this signing run's id; every signer must use its copy of the same presignature.
    pub fn new(eid: ExecutionId, presignature: Presignature, digest: [u8; 32]) -> Self {
        Self(Driver::new(SignCore::online(eid, presignature, digest)))
    }
}

impl Protocol for SignOnline {
    type Output = EcdsaSignature;
    fn poke(&mut self) -> Result<Action<EcdsaSignature>, ProtocolError> {
        self.0.poke().and_then(expect_signature)
    }
    fn message(&mut self, from: PartyId, data: Vec<u8>) {
        self.0.message(from, data);
    }
    /// The online round is ~0.2 ms of scalar arithmetic and a verification.
    fn long_steps(&self) -> bool {
        false
    }
}

/// A full signature in one run: [`Presign`]'s two rounds (bound to the digest) then the online
/// round, three message rounds in all.
pub struct Sign(Driver<SignCore>);

impl Sign {
    /// Sign `digest` with `share` among `signers` (exactly `t + 1` sorted ids, including this
    /// party), optionally with an HD child key.
    pub fn new(
        eid: ExecutionId,
        share: &KeyShare,
        signers: &[PartyId],
        digest: [u8; 32],
        hd: Option<&HdPath>,
    ) -> Result<Self, ProtocolError> {
        SignCore::presign(eid, share, signers, hd, Some(digest)).map(|core| Self(Driver::new(core)))
    }
}

impl Protocol for Sign {
    type Output = EcdsaSignature;
    fn poke(&mut self) -> Result<Action<EcdsaSignature>, ProtocolError> {
        self.0.poke().and_then(expect_signature)
    }
    fn message(&mut self, from: PartyId, data: Vec<u8>) {
        self.0.message(from, data);
    }
}
