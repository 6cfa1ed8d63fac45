//! Resharing and refresh of FROST keys: the curve-generic [`crate::reshare`] protocol, with
//! the result turned into a validated [`KeyShare`] (FROST key packages rebuilt from the new
//! share, identifiers = new party ids).

use crate::legacy::CheckedLegacyShare;
use crate::protocol::{Action, ExecutionId, PartyId, Protocol, ProtocolError};
use crate::reshare::{self as generic, OldKey, ReshareOutput, Roster};

use super::Suite;
use super::keyshare::KeyShare;

/// What a resharing run returns to a member.
#[derive(Debug)]
pub enum ReshareResult<S: Suite> {
    /// The member's share in the new committee.
    Share(Box<KeyShare<S>>),
    /// The member dealt but holds no share of the new committee.
    Retired,
}

/// One member's resharing run (see [`crate::reshare`] for rounds and checks).
pub struct Reshare<S: Suite> {
    inner: generic::Reshare<S::Curve>,
}

impl<S: Suite> Reshare<S> {
    /// Start member `me` (a transport id of `roster`). A dealer passes its current share; a
    /// newcomer passes `None` and the old key's public data in `old` (from any old share:
    /// [`KeyShare::old_key`]).
    pub fn new(
        exec: ExecutionId,
        me: PartyId,
        roster: Roster,
        new_threshold: u16,
        old: OldKey<S::Curve>,
        share: Option<&KeyShare<S>>,
    ) -> Result<Self, ProtocolError> {
        let dealer = roster.members().iter().any(|m| m.id == me && m.old.is_some());
        let secret = match share {
            Some(s) if dealer => Some(s.secret().map_err(|e| ProtocolError::InvalidInput(e.to_string()))?),
            _ => None,
        };
        Ok(Self { inner: generic::Reshare::new(exec, me, roster, new_threshold, old, secret)? })
    }

    /// Start member `me` of a conversion of an imported key ([`crate::legacy`]) onto a committee
    /// of ours: the imported holders deal from their x-coordinates ([`CheckedLegacyShare::old_key`]
    /// is `old`, and a dealer passes its checked share), the receivers end with FROST key shares
    /// of the same public key.
    pub fn import(
        exec: ExecutionId,
        me: PartyId,
        roster: Roster,
        new_threshold: u16,
        old: OldKey<S::Curve>,
        share: Option<&CheckedLegacyShare<S::Curve>>,
    ) -> Result<Self, ProtocolError> {
        let secret = share.map(|s| s.secret());
        Ok(Self { inner: generic::Reshare::new(exec, me, roster, new_threshold, old, secret)? })
    }

    /// Start this holder's part of a refresh of `share`'s committee (same ids, same threshold):
    /// `signers` (exactly `t + 1` committee members) deal, everyone receives a fresh share.
    pub fn refresh(
        exec: ExecutionId,
        share: &KeyShare<S>,
        signers: &[PartyId],
    ) -> Result<Self, ProtocolError> {
        let committee = share.parties();
        let roster = Roster::refresh(&committee, signers)?;
        Self::new(exec, share.party(), roster, share.threshold(), share.old_key(), Some(share))
    }
}

impl<S: Suite> Protocol for Reshare<S> {
    type Output = ReshareResult<S>;

    fn poke(&mut self) -> Result<Action<ReshareResult<S>>, ProtocolError> {
        Ok(match self.inner.poke()? {
            Action::Wait => Action::Wait,
            Action::SendMany(m) => Action::SendMany(m),
            Action::SendPrivate(to, m) => Action::SendPrivate(to, m),
            Action::Return(ReshareOutput::Retired) => Action::Return(ReshareResult::Retired),
            Action::Return(ReshareOutput::Share(new)) => Action::Return(ReshareResult::Share(Box::new(
                KeyShare::from_reshare(&new)
                    .map_err(|e| ProtocolError::Internal(format!("reshare result: {e}")))?,
            ))),
        })
    }

    fn message(&mut self, from: PartyId, data: Vec<u8>) {
        self.inner.message(from, data);
    }
}
