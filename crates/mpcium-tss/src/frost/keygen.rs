//! FROST distributed key generation (RFC 9591 companion DKG, `frost_core::keys::dkg`) as a
//! sans-IO protocol, for any [`Suite`].
//!
//! Rounds:
//! 1. Everyone broadcasts its round-1 package: Feldman commitments to a random polynomial of
//!    degree t and a Schnorr proof of knowledge of its constant term.
//! 2. After all round-1 packages arrive, everyone verifies each proof (a bad one aborts naming
//!    its sender), sends each other party its share privately, and broadcasts the SHA-256 of
//!    every round-1 package it saw (its own included), bound to the execution id.
//! 3. After all shares and confirmations: a confirmation that differs from ours aborts naming
//!    its sender (someone equivocated; the transport should have prevented it); each share is
//!    verified against its sender's commitments (a bad one aborts naming the sender); the
//!    result is a validated [`KeyShare`].

use std::collections::BTreeMap;

use frost_core::keys::dkg::{self, round1, round2};
use frost_core::{Error, Identifier};
use rand_core::OsRng;
use sha2::{Digest, Sha256};

use super::keyshare::KeyShare;
use super::{Suite, identifier, party_of, wire};
use crate::driver::{Driver, Machine, Outbox};
use crate::protocol::{Action, ExecutionId, PartyId, Protocol, ProtocolError};

const TAG_ROUND1: u8 = 1;
const TAG_ROUND2: u8 = 2;
const TAG_CONFIRM: u8 = 3;

enum Stage<S: Suite> {
    Start,
    Round1(Box<round1::SecretPackage<S::Cs>>),
    Round2(Box<round2::SecretPackage<S::Cs>>),
    Done,
}

/// One party's run of the DKG: t-of-n, any `t + 1` of the `n` parties can sign.
pub struct Keygen<S: Suite>(Driver<KeygenCore<S>>);

/// [`Keygen`]'s state machine.
struct KeygenCore<S: Suite> {
    exec: ExecutionId,
    me: PartyId,
    parties: Vec<PartyId>,
    threshold: u16,
    stage: Stage<S>,
    round1: BTreeMap<Identifier<S::Cs>, round1::Package<S::Cs>>,
    /// Every round-1 package as received (own included), for the confirmation hash.
    round1_bytes: BTreeMap<PartyId, Vec<u8>>,
    round2: BTreeMap<Identifier<S::Cs>, round2::Package<S::Cs>>,
    my_digest: Option<[u8; 32]>,
    confirmations: BTreeMap<PartyId, [u8; 32]>,
}

impl<S: Suite> Keygen<S> {
    /// Start party `me` of a DKG among `parties` (ids ≥ 1, distinct) with threshold `t`
    /// (`1 ≤ t < n`; a signature needs `t + 1` parties).
    pub fn new(
        exec: ExecutionId,
        me: PartyId,
        parties: &[PartyId],
        threshold: u16,
    ) -> Result<Self, ProtocolError> {
        let mut sorted = parties.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != parties.len() || sorted.first() == Some(&0) || !sorted.contains(&me) {
            return Err(ProtocolError::InvalidInput(
                "parties must be distinct, non-zero and include me".into(),
            ));
        }
        if threshold == 0 || usize::from(threshold) >= sorted.len() {
            return Err(ProtocolError::InvalidInput(format!(
                "threshold {threshold} for {} parties",
                sorted.len()
            )));
        }
        Ok(Self(Driver::new(KeygenCore {
            exec,
            me,
            parties: sorted,
            threshold,
            stage: Stage::Start,
            round1: BTreeMap::new(),
            round1_bytes: BTreeMap::new(),
            round2: BTreeMap::new(),
            my_digest: None,
            confirmations: BTreeMap::new(),
        })))
    }
}

impl<S: Suite> KeygenCore<S> {
    fn n(&self) -> u16 {
        // `new` checked the committee fits in u16 ids.
        self.parties.len() as u16
    }

    fn others(&self) -> impl Iterator<Item = PartyId> + '_ {
        self.parties.iter().copied().filter(move |p| *p != self.me)
    }

    fn blame(&self, err: Error<S::Cs>, what: &str) -> ProtocolError {
        let culprit = match &err {
            Error::InvalidProofOfKnowledge { culprit } => Some(*culprit),
            Error::InvalidSecretShare { culprit: Some(c) } => Some(*c),
            _ => None,
        };
        match culprit.and_then(|c| party_of::<S>(&c)) {
            Some(p) => ProtocolError::faulty(p, format!("{what}: {err}")),
            None => ProtocolError::Internal(format!("{what}: {err}")),
        }
    }

    fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"mpcium-tss/");
        h.update(S::NAME.as_bytes());
        h.update(b"/keygen/round1/v1");
        h.update(self.exec.as_bytes());
        for (p, bytes) in &self.round1_bytes {
            h.update(p.to_be_bytes());
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        }
        h.finalize().into()
    }

    fn step(&mut self, out: &mut Outbox) -> Result<Option<KeyShare<S>>, ProtocolError> {
        loop {
            match std::mem::replace(&mut self.stage, Stage::Done) {
                Stage::Start => {
                    let me =
                        identifier::<S>(self.me).map_err(|e| ProtocolError::InvalidInput(e.to_string()))?;
                    let (secret, package) = dkg::part1(me, self.n(), self.threshold + 1, OsRng)
                        .map_err(|e| ProtocolError::Internal(format!("dkg part1: {e}")))?;
                    let bytes = package.serialize().map_err(|e| ProtocolError::Internal(e.to_string()))?;
                    out.broadcast(wire::seal(TAG_ROUND1, &self.exec, &bytes));
                    self.round1_bytes.insert(self.me, bytes);
                    self.stage = Stage::Round1(Box::new(secret));
                }
                Stage::Round1(secret) => {
                    if self.round1.len() + 1 < self.parties.len() {
                        self.stage = Stage::Round1(secret);
                        return Ok(None);
                    }
                    let (secret2, packages) =
                        dkg::part2(*secret, &self.round1).map_err(|e| self.blame(e, "round 1"))?;
                    for to in self.others().collect::<Vec<_>>() {
                        let id = identifier::<S>(to).map_err(|e| ProtocolError::Internal(e.to_string()))?;
                        let package = packages
                            .get(&id)
                            .ok_or_else(|| ProtocolError::Internal("missing share".into()))?;
                        let bytes = zeroize::Zeroizing::new(
                            package.serialize().map_err(|e| ProtocolError::Internal(e.to_string()))?,
                        );
                        out.private(to, wire::seal(TAG_ROUND2, &self.exec, &bytes));
                    }
                    let digest = self.digest();
                    out.broadcast(wire::seal(TAG_CONFIRM, &self.exec, &digest));
                    self.my_digest = Some(digest);
                    self.stage = Stage::Round2(Box::new(secret2));
                }
                Stage::Round2(secret) => {
                    let others = self.parties.len() - 1;
                    if self.round2.len() < others || self.confirmations.len() < others {
                        self.stage = Stage::Round2(secret);
                        return Ok(None);
                    }
                    if let Some((&p, _)) =
                        self.confirmations.iter().find(|(_, d)| Some(**d) != self.my_digest)
                    {
                        return Err(ProtocolError::faulty(
                            p,
                            "saw other round-1 packages than we did (equivocation by someone, or a false confirmation)",
                        ));
                    }
                    let (kp, pkp) = dkg::part3(&secret, &self.round1, &self.round2)
                        .map_err(|e| self.blame(e, "round 2"))?;
                    let share = KeyShare::from_frost(self.me, self.threshold, &kp, &pkp)
                        .map_err(|e| ProtocolError::Internal(format!("DKG result: {e}")))?;
                    return Ok(Some(share));
                }
                Stage::Done => return Err(ProtocolError::Internal("poked after the result".into())),
            }
        }
    }

    fn file(&mut self, from: PartyId, data: &[u8]) -> Result<(), ProtocolError> {
        if from == self.me || !self.parties.contains(&from) {
            return Err(ProtocolError::faulty(from, "message from a party outside the committee"));
        }
        let (tag, body) = wire::open(from, &self.exec, data)?;
        let id = identifier::<S>(from).map_err(|e| ProtocolError::Internal(e.to_string()))?;
        let malformed = |e: Error<S::Cs>| ProtocolError::faulty(from, format!("malformed message: {e}"));
        match tag {
            TAG_ROUND1 => {
                let package = round1::Package::<S::Cs>::deserialize(body).map_err(malformed)?;
                let degree_ok = package
                    .commitment()
                    .serialize()
                    .is_ok_and(|c| c.len() == usize::from(self.threshold) + 1);
                if !degree_ok {
                    return Err(ProtocolError::faulty(from, "commitment vector of the wrong length"));
                }
                if self.round1.insert(id, package).is_some() {
                    return Err(ProtocolError::faulty(from, "second round-1 package"));
                }
                self.round1_bytes.insert(from, body.to_vec());
            }
            TAG_ROUND2 => {
                let package = round2::Package::<S::Cs>::deserialize(body).map_err(malformed)?;
                if self.round2.insert(id, package).is_some() {
                    return Err(ProtocolError::faulty(from, "second round-2 package"));
                }
            }
            TAG_CONFIRM => {
                let digest: [u8; 32] = body
                    .try_into()
                    .map_err(|_| ProtocolError::faulty(from, "confirmation of the wrong length"))?;
                if self.confirmations.insert(from, digest).is_some() {
                    return Err(ProtocolError::faulty(from, "second confirmation"));
                }
            }
            _ => return Err(ProtocolError::faulty(from, "unknown message tag")),
        }
        Ok(())
    }
}

impl<S: Suite> Protocol for Keygen<S> {
    type Output = KeyShare<S>;

    fn poke(&mut self) -> Result<Action<KeyShare<S>>, ProtocolError> {
        self.0.poke()
    }

    fn message(&mut self, from: PartyId, data: Vec<u8>) {
        self.0.message(from, data);
    }
}

impl<S: Suite> Machine for KeygenCore<S> {
    type Output = KeyShare<S>;

    fn record(&mut self, from: PartyId, data: Vec<u8>) -> Result<(), ProtocolError> {
        self.file(from, &data)
    }

    fn advance(&mut self, out: &mut Outbox) -> Result<Option<KeyShare<S>>, ProtocolError> {
        self.step(out)
    }
}
