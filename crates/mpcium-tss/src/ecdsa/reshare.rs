//! Resharing an ECDSA key: the curve-generic Feldman redistribution ([`crate::reshare`]) moves
//! the key to the new committee and threshold, then the new holders run [`Setup`] (DKLs23's
//! pairwise OT setup) on their new Shamir shares. Refresh is the same with the same committee.
//!
//! One run, two phases; each message carries a phase byte. Phase 2 runs among the new holders
//! only, at their new ids, with its own execution id derived from the run's. Its broadcasts (the
//! share proofs, zero-share and chain-code commitments, the chain-code openings) are real
//! broadcasts of this run ([`Action::SendMany`], to every member), so the caller's reliable
//! broadcast covers them: a new holder that hands two holders different commitments is caught by
//! the echo instead of leaving them with different chain codes. A member that only deals
//! therefore witnesses phase 2: it checks the framing of every new holder's broadcast of both
//! setup rounds (and that nothing else reaches it), and returns [`ReshareResult::Retired`] only
//! once it has them all, so its view of the broadcasts is complete when it is compared.
//!
//! Phase 2's errors name parties by their transport ids, like phase 1's.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::keygen::{SETUP_BROADCASTS, Setup, SetupInput};
use super::keyshare::KeyShare;
use super::wire::Inbox;
use crate::curve::Secp256k1;
use crate::driver::{Driver, Machine, Outbox};
use crate::legacy::CheckedLegacyShare;
use crate::protocol::{Action, ExecutionId, PartyId, Protocol, ProtocolError};
use crate::reshare::{self as generic, OldKey, ReshareOutput, Roster};

const PHASE_REDISTRIBUTE: u8 = 1;
const PHASE_SETUP: u8 = 2;

/// What a member gets.
#[derive(Debug)]
pub enum ReshareResult {
    /// Its ECDSA key share in the new committee.
    Share(Box<KeyShare>),
    /// It dealt and holds no share of the new committee.
    Retired,
}

enum Phase {
    Redistribute(Box<generic::Reshare<Secp256k1>>),
    Setup(Box<Setup>),
    /// A member that only dealt, collecting the new holders' setup broadcasts (by transport id)
    /// before it retires; `rounds` is how many setup rounds it has complete.
    Witness {
        inbox: Box<Inbox>,
        rounds: usize,
    },
    Done,
}

/// One member's ECDSA resharing run.
pub struct Reshare(Driver<ReshareCore>);

/// [`Reshare`]'s state machine.
struct ReshareCore {
    exec: ExecutionId,
    phase: Phase,
    /// New id → transport id, for every new holder.
    new_to_transport: BTreeMap<PartyId, PartyId>,
    /// Transport id → new id.
    transport_to_new: BTreeMap<PartyId, PartyId>,
    /// Phase-2 messages that arrived while this member was still in phase 1.
    early: Vec<(PartyId, Vec<u8>)>,
}

impl KeyShare {
    /// The public data of this key in the form resharing takes.
    pub fn old_key(&self) -> OldKey<Secp256k1> {
        OldKey::new(
            self.threshold,
            self.public_key().to_projective(),
            self.public_shares.iter().map(|(p, a)| (*p, k256::ProjectivePoint::from(*a))).collect(),
        )
    }

    pub(crate) fn secret_share(&self) -> Zeroizing<k256::Scalar> {
        Zeroizing::new(self.party.poly_point)
    }
}

fn setup_id(exec: &ExecutionId) -> ExecutionId {
    let mut h = Sha256::new();
    h.update(b"mpcium-tss/ecdsa-reshare-setup/v1");
    h.update(exec.as_bytes());
    ExecutionId(h.finalize().into())
}

impl Reshare {
    /// Start member `me` (a transport id of `roster`). A dealer passes its current share; a
    /// newcomer passes `None` and the old key's public data in `old` ([`KeyShare::old_key`] of any
    /// old share). New ids must be `1..=n'` (DKLs23 numbers parties that way).
    pub fn new(
        exec: ExecutionId,
        me: PartyId,
        roster: Roster,
        new_threshold: u16,
        old: OldKey<Secp256k1>,
        share: Option<&KeyShare>,
    ) -> Result<Self, ProtocolError> {
        let dealer = roster.members().iter().any(|m| m.id == me && m.old.is_some());
        let secret = match share {
            Some(s) if dealer => Some(s.secret_share()),
            _ => None,
        };
        Self::with_secret(exec, me, roster, new_threshold, old, secret)
    }

    /// Start member `me` of a conversion of an imported key ([`crate::legacy`]) onto a committee
    /// of ours: the imported holders deal from their x-coordinates ([`CheckedLegacyShare::old_key`]
    /// is `old`, and a dealer passes its checked share), the receivers end with DKLs23 shares of
    /// the same public key.
    pub fn import(
        exec: ExecutionId,
        me: PartyId,
        roster: Roster,
        new_threshold: u16,
        old: OldKey<Secp256k1>,
        share: Option<&CheckedLegacyShare<Secp256k1>>,
    ) -> Result<Self, ProtocolError> {
        Self::with_secret(exec, me, roster, new_threshold, old, share.map(|s| s.secret()))
    }

    fn with_secret(
        exec: ExecutionId,
        me: PartyId,
        roster: Roster,
        new_threshold: u16,
        old: OldKey<Secp256k1>,
        secret: Option<Zeroizing<k256::Scalar>>,
    ) -> Result<Self, ProtocolError> {
        let new_to_transport: BTreeMap<PartyId, PartyId> =
            roster.members().iter().filter_map(|m| m.new.map(|n| (n, m.id))).collect();
        let n = new_to_transport.len() as PartyId;
        if new_to_transport.keys().copied().ne(1..=n) {
            return Err(ProtocolError::InvalidInput("new ids must be 1..=n' for DKLs23".into()));
        }
        let transport_to_new = new_to_transport.iter().map(|(n, t)| (*t, *n)).collect();
        let inner = generic::Reshare::new(exec, me, roster, new_threshold, old, secret)?;
        Ok(Self(Driver::new(ReshareCore {
            exec,
            phase: Phase::Redistribute(Box::new(inner)),
            new_to_transport,
            transport_to_new,
            early: Vec::new(),
        })))
    }

    /// A refresh of `share`'s committee (same ids and threshold): `signers` (exactly `t + 1`
    /// members) deal, everyone receives a fresh share and runs a fresh pairwise setup.
    pub fn refresh(exec: ExecutionId, share: &KeyShare, signers: &[PartyId]) -> Result<Self, ProtocolError> {
        let roster = Roster::refresh(&share.participants(), signers)?;
        Self::new(exec, share.id(), roster, share.threshold(), share.old_key(), Some(share))
    }
}

impl ReshareCore {
    fn tagged(phase: u8, data: Vec<u8>) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 1);
        out.push(phase);
        out.extend_from_slice(&data);
        out
    }

    fn start_setup(&mut self, new: generic::NewShare<Secp256k1>) -> Result<(), ProtocolError> {
        let to_pk = |p: &k256::ProjectivePoint| {
            k256::PublicKey::from_affine(p.to_affine())
                .map_err(|_| ProtocolError::Internal("identity point in a reshared key".into()))
        };
        let input = SetupInput {
            me: new.party,
            threshold: new.threshold,
            share: Zeroizing::new(*new.secret_share),
            public_key: to_pk(&new.public_key)?,
            public_shares: new
                .public_shares
                .iter()
                .map(|(p, y)| Ok((*p, to_pk(y)?)))
                .collect::<Result<_, ProtocolError>>()?,
        };
        self.phase = Phase::Setup(Box::new(Setup::new(setup_id(&self.exec), input)?));
        self.deliver_early()
    }

    /// After dealing, a member outside the new committee waits for the setup broadcasts.
    fn start_witness(&mut self) -> Result<(), ProtocolError> {
        let holders = self.new_to_transport.values().copied();
        let inbox = Inbox::new(setup_id(&self.exec), holders, SETUP_BROADCASTS);
        self.phase = Phase::Witness { inbox: Box::new(inbox), rounds: 0 };
        self.deliver_early()
    }

    fn deliver_early(&mut self) -> Result<(), ProtocolError> {
        for (from, data) in std::mem::take(&mut self.early) {
            self.deliver_setup(from, data)?;
        }
        Ok(())
    }

    fn deliver_setup(&mut self, from: PartyId, data: Vec<u8>) -> Result<(), ProtocolError> {
        match &mut self.phase {
            Phase::Setup(setup) => match self.transport_to_new.get(&from) {
                Some(new_id) => setup.message(*new_id, data),
                None => {
                    return Err(ProtocolError::faulty(
                        from,
                        "setup message from a member outside the new committee",
                    ));
                }
            },
            // The inbox refuses senders outside the new committee, private messages and
            // anything framed for another run or round.
            Phase::Witness { inbox, .. } => inbox.receive(from, data)?,
            Phase::Redistribute(_) | Phase::Done => {}
        }
        Ok(())
    }

    fn step(&mut self, out: &mut Outbox) -> Result<Option<ReshareResult>, ProtocolError> {
        loop {
            match &mut self.phase {
                Phase::Redistribute(inner) => match inner.poke()? {
                    Action::Wait => return Ok(None),
                    Action::SendMany(m) => out.broadcast(Self::tagged(PHASE_REDISTRIBUTE, m)),
                    Action::SendPrivate(to, m) => out.private(to, Self::tagged(PHASE_REDISTRIBUTE, m)),
                    Action::Return(ReshareOutput::Retired) => self.start_witness()?,
                    Action::Return(ReshareOutput::Share(new)) => self.start_setup(new)?,
                },
                Phase::Setup(setup) => {
                    match setup.poke().map_err(|e| to_transport(e, &self.new_to_transport))? {
                        Action::Wait => return Ok(None),
                        Action::SendMany(m) => out.broadcast(Self::tagged(PHASE_SETUP, m)),
                        Action::SendPrivate(to, m) => {
                            let transport = *self.new_to_transport.get(&to).ok_or_else(|| {
                                ProtocolError::Internal(format!("setup addressed unknown party {to}"))
                            })?;
                            out.private(transport, Self::tagged(PHASE_SETUP, m));
                        }
                        Action::Return(share) => {
                            self.phase = Phase::Done;
                            return Ok(Some(ReshareResult::Share(Box::new(share))));
                        }
                    }
                }
                Phase::Witness { inbox, rounds } => {
                    while *rounds < SETUP_BROADCASTS.len() && inbox.take_round(*rounds as u8 + 1).is_some() {
                        *rounds += 1;
                    }
                    if *rounds < SETUP_BROADCASTS.len() {
                        return Ok(None);
                    }
                    self.phase = Phase::Done;
                    return Ok(Some(ReshareResult::Retired));
                }
                Phase::Done => return Err(ProtocolError::Internal("resharing already finished".into())),
            }
        }
    }
}

/// An error of phase 2 (new ids) with the parties it names at their transport ids.
fn to_transport(e: ProtocolError, new_to_transport: &BTreeMap<PartyId, PartyId>) -> ProtocolError {
    e.rename_parties(|new| new_to_transport.get(&new).copied().unwrap_or(new))
}

impl Protocol for Reshare {
    type Output = ReshareResult;

    fn poke(&mut self) -> Result<Action<ReshareResult>, ProtocolError> {
        self.0.poke()
    }

    fn message(&mut self, from: PartyId, data: Vec<u8>) {
        self.0.message(from, data);
    }
}

impl Machine for ReshareCore {
    type Output = ReshareResult;

    fn record(&mut self, from: PartyId, data: Vec<u8>) -> Result<(), ProtocolError> {
        let Some((&phase, body)) = data.split_first() else {
            return Err(ProtocolError::faulty(from, "empty message"));
        };
        match (phase, &mut self.phase) {
            (PHASE_REDISTRIBUTE, Phase::Redistribute(inner)) => inner.message(from, body.to_vec()),
            // A late phase-1 message after this member moved on: its content was already
            // complete for us, so it is ignored rather than blamed.
            (PHASE_REDISTRIBUTE, _) => {}
            (PHASE_SETUP, Phase::Redistribute(_)) => self.early.push((from, body.to_vec())),
            (PHASE_SETUP, Phase::Setup(_) | Phase::Witness { .. }) => {
                self.deliver_setup(from, body.to_vec())?
            }
            (PHASE_SETUP, Phase::Done) => {}
            _ => return Err(ProtocolError::faulty(from, format!("unknown reshare phase {phase}"))),
        }
        Ok(())
    }

    fn advance(&mut self, out: &mut Outbox) -> Result<Option<ReshareResult>, ProtocolError> {
        self.step(out)
    }
}
