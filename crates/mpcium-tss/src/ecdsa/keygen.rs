//! Distributed key generation ([`Keygen`]) and the per-pair setup of a committee that already
//! holds Shamir shares ([`Setup`]). Both run dkls23's DKG; `Setup` skips its first round.

use std::collections::BTreeMap;

use dkls23::DkgSession;
use dkls23::protocols::Parameters;
use dkls23::protocols::dkg::{
    BroadcastDerivationPhase2to4, BroadcastDerivationPhase3to4, ProofCommitment, TransmitInitMulPhase3to4,
    TransmitInitZeroSharePhase2to4, TransmitInitZeroSharePhase3to4,
};
use k256::{AffinePoint, ProjectivePoint, Scalar, Secp256k1};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::abort::{map_abort, to_id, to_index};
use super::fragments;
use super::keyshare::{KeyShare, interpolate};
use super::wire::{self, Inbox, Kind, RoundShape};
use crate::driver::{Driver, Machine, Outbox};
use crate::protocol::{Action, ExecutionId, PartyId, Protocol, ProtocolError};

/// Keygen: 1 = polynomial fragments, 2 = commitments, 3 = openings and OT setup.
const KEYGEN_SHAPE: &[RoundShape] = &[RoundShape::PRIVATE, RoundShape::BOTH, RoundShape::BOTH];
/// Setup: 1 = commitments, 2 = openings and OT setup (the shares already exist).
const SETUP_SHAPE: &[RoundShape] = &[RoundShape::BOTH, RoundShape::BOTH];
/// What a member outside the committee gets of a [`Setup`] run inside a resharing: the
/// broadcasts of every round of [`SETUP_SHAPE`], nothing private.
pub(super) const SETUP_BROADCASTS: &[RoundShape] = &[RoundShape::BROADCAST, RoundShape::BROADCAST];

type Curve = Secp256k1;

#[derive(Serialize, Deserialize)]
struct CommitBroadcast {
    proof: ProofCommitment<Curve>,
    chain_code: BroadcastDerivationPhase2to4,
}

#[derive(Serialize, Deserialize)]
struct RevealPrivate {
    zero_seed: TransmitInitZeroSharePhase3to4,
    mul_init: TransmitInitMulPhase3to4<Curve>,
}

/// What [`Setup`] must end with: the public side of the sharing it was given.
struct Expected {
    public_key: AffinePoint,
    public_shares: BTreeMap<PartyId, AffinePoint>,
}

enum Stage {
    Start,
    Fragments,
    Commit,
    Reveal,
    Done,
}

/// The dkls23 DKG as a sans-IO state machine; `first_round` is 1 for keygen, 0 for setup (which
/// has no fragment round, so its commit round is its round 1).
struct Dkg {
    eid: ExecutionId,
    me: PartyId,
    threshold: u16,
    peers: Vec<PartyId>,
    session: Option<DkgSession<Curve>>,
    own_share: Option<Zeroizing<Scalar>>,
    own_fragment: Option<Zeroizing<Scalar>>,
    expected: Option<Expected>,
    commit_round: u8,
    stage: Stage,
    inbox: Inbox,
    proofs: Vec<ProofCommitment<Curve>>,
    zero_commits: Vec<TransmitInitZeroSharePhase2to4>,
    chain_commits: BTreeMap<dkls23::protocols::PartyIndex, BroadcastDerivationPhase2to4>,
    own_reveal: Option<BroadcastDerivationPhase3to4>,
}

fn check_committee(me: PartyId, threshold: u16, n: u16) -> Result<Parameters, ProtocolError> {
    if !(2..=255).contains(&n) {
        return Err(ProtocolError::InvalidInput(format!("committee size {n} must be within 2..=255")));
    }
    if threshold < 1 || threshold >= n {
        return Err(ProtocolError::InvalidInput(format!(
            "threshold {threshold} must satisfy 1 <= t < n = {n}"
        )));
    }
    if me < 1 || me > n {
        return Err(ProtocolError::InvalidInput(format!("party id {me} is not within 1..={n}")));
    }
    // Our t tolerates t corrupt parties, so t + 1 sign; dkls23's threshold is the signer count.
    let signers =
        u8::try_from(threshold + 1).map_err(|_| ProtocolError::InvalidInput("threshold too large".into()))?;
    let count = u8::try_from(n).map_err(|_| ProtocolError::InvalidInput("committee too large".into()))?;
    Parameters::new(signers, count).map_err(|e| ProtocolError::InvalidInput(e.to_string()))
}

impl Dkg {
    fn new(
        eid: ExecutionId,
        me: PartyId,
        threshold: u16,
        n: u16,
        own_share: Option<Zeroizing<Scalar>>,
        expected: Option<Expected>,
    ) -> Result<Self, ProtocolError> {
        let parameters = check_committee(me, threshold, n)?;
        let peers: Vec<PartyId> = (1..=n).filter(|p| *p != me).collect();
        let (shape, commit_round) = if own_share.is_some() { (SETUP_SHAPE, 1) } else { (KEYGEN_SHAPE, 2) };
        let session = DkgSession::new(parameters, to_index(me)?, eid.as_bytes().to_vec());
        Ok(Self {
            eid,
            me,
            threshold,
            inbox: Inbox::new(eid, peers.iter().copied(), shape),
            peers,
            session: Some(session),
            own_share,
            own_fragment: None,
            expected,
            commit_round,
            stage: Stage::Start,
            proofs: Vec::new(),
            zero_commits: Vec::new(),
            chain_commits: BTreeMap::new(),
            own_reveal: None,
        })
    }

    fn session(&mut self) -> Result<&mut DkgSession<Curve>, ProtocolError> {
        self.session.as_mut().ok_or_else(|| ProtocolError::Internal("DKG session already consumed".into()))
    }

    fn abort(&self, e: dkls23::protocols::Abort) -> ProtocolError {
        map_abort(e, &self.peers)
    }

    /// Run every step whose inputs are present; `Ok(None)` means wait for messages.
    fn step(&mut self, out: &mut Outbox) -> Result<Option<KeyShare>, ProtocolError> {
        loop {
            match self.stage {
                Stage::Start => {
                    if let Some(share) = self.own_share.take() {
                        self.commit(out, vec![*share])?;
                        self.stage = Stage::Commit;
                    } else {
                        let fragments = Zeroizing::new(self.session()?.phase1());
                        self.own_fragment = fragments::send(&self.eid, self.me, &fragments, out)?;
                        self.stage = Stage::Fragments;
                    }
                }
                Stage::Fragments => {
                    let Some(mut round) = self.inbox.take_round(1) else { return Ok(None) };
                    let fragments = fragments::gather(self.own_fragment.as_ref(), &mut round)?;
                    self.own_fragment = None;
                    self.commit(out, fragments.to_vec())?;
                    self.stage = Stage::Commit;
                }
                Stage::Commit => {
                    let r = self.commit_round;
                    let Some(mut round) = self.inbox.take_round(r) else { return Ok(None) };
                    for (from, msg) in &mut round {
                        let from = *from;
                        let b: CommitBroadcast = wire::decode(from, r, &msg.take(from, r, Kind::Broadcast)?)?;
                        let z: TransmitInitZeroSharePhase2to4 =
                            wire::decode(from, r, &msg.take(from, r, Kind::Private)?)?;
                        if to_id(b.proof.index) != from || to_id(b.chain_code.sender_index) != from {
                            return Err(ProtocolError::faulty(from, "commitment claims another sender"));
                        }
                        if to_id(z.parties.sender) != from || to_id(z.parties.receiver) != self.me {
                            return Err(ProtocolError::faulty(from, "zero-share commitment misaddressed"));
                        }
                        if let Some(exp) = &self.expected
                            && exp.public_shares.get(&from) != Some(&b.proof.proof.point)
                        {
                            return Err(ProtocolError::faulty(
                                from,
                                "proves a share other than its public share",
                            ));
                        }
                        self.proofs.push(b.proof);
                        self.chain_commits.insert(b.chain_code.sender_index, b.chain_code);
                        self.zero_commits.push(z);
                    }
                    self.reveal(out)?;
                    self.stage = Stage::Reveal;
                }
                Stage::Reveal => {
                    let r = self.commit_round + 1;
                    let Some(round) = self.inbox.take_round(r) else { return Ok(None) };
                    return self.finish(round).map(Some);
                }
                Stage::Done => return Err(ProtocolError::Internal("DKG already finished".into())),
            }
        }
    }

    /// DKG phase 2: prove our share, commit to the zero-share seeds and the chain-code part.
    fn commit(&mut self, out: &mut Outbox, fragments: Vec<Scalar>) -> Result<(), ProtocolError> {
        let fragments = Zeroizing::new(fragments);
        let (proof, zero_commits, chain_code) = {
            let peers = self.peers.clone();
            self.session()?.phase2(&fragments).map_err(|e| map_abort(e, &peers))?
        };
        let r = self.commit_round;
        let bcast = CommitBroadcast { proof: proof.clone(), chain_code: chain_code.clone() };
        out.broadcast(wire::encode(&self.eid, r, Kind::Broadcast, &bcast)?);
        for z in zero_commits {
            let to = to_id(z.parties.receiver);
            out.private(to, wire::encode(&self.eid, r, Kind::Private, &z)?);
        }
        self.proofs.push(proof);
        self.chain_commits.insert(chain_code.sender_index, chain_code);
        Ok(())
    }

    /// DKG phase 3: open the commitments and start the OT base setup with every peer.
    fn reveal(&mut self, out: &mut Outbox) -> Result<(), ProtocolError> {
        let (zero_seeds, mul_inits, chain_code) = {
            let peers = self.peers.clone();
            self.session()?.phase3().map_err(|e| map_abort(e, &peers))?
        };
        let r = self.commit_round + 1;
        out.broadcast(wire::encode(&self.eid, r, Kind::Broadcast, &chain_code)?);
        let mut mul_by_receiver: BTreeMap<_, _> =
            mul_inits.into_iter().map(|m| (m.parties.receiver, m)).collect();
        for zero_seed in zero_seeds {
            let receiver = zero_seed.parties.receiver;
            let mul_init = mul_by_receiver.remove(&receiver).ok_or_else(|| {
                ProtocolError::Internal(format!("no OT setup message for party {receiver}"))
            })?;
            let msg = RevealPrivate { zero_seed, mul_init };
            out.private(to_id(receiver), wire::encode(&self.eid, r, Kind::Private, &msg)?);
        }
        self.own_reveal = Some(chain_code);
        Ok(())
    }

    /// DKG phase 4: check every opening and finish the pairwise OT setup.
    fn finish(&mut self, mut round: BTreeMap<PartyId, wire::PeerRound>) -> Result<KeyShare, ProtocolError> {
        let r = self.commit_round + 1;
        let mut zero_seeds = Vec::with_capacity(self.peers.len());
        let mut mul_inits = Vec::with_capacity(self.peers.len());
        let mut chain_reveals = BTreeMap::new();
        let own =
            self.own_reveal.take().ok_or_else(|| ProtocolError::Internal("own opening missing".into()))?;
        chain_reveals.insert(own.sender_index, own);
        for (from, msg) in &mut round {
            let from = *from;
            let b: BroadcastDerivationPhase3to4 =
                wire::decode(from, r, &msg.take(from, r, Kind::Broadcast)?)?;
            let p: RevealPrivate = wire::decode(from, r, &Zeroizing::new(msg.take(from, r, Kind::Private)?))?;
            if to_id(b.sender_index) != from {
                return Err(ProtocolError::faulty(from, "chain-code opening claims another sender"));
            }
            for parties in [&p.zero_seed.parties, &p.mul_init.parties] {
                if to_id(parties.sender) != from || to_id(parties.receiver) != self.me {
                    return Err(ProtocolError::faulty(from, "opening or OT setup message misaddressed"));
                }
            }
            chain_reveals.insert(b.sender_index, b);
            zero_seeds.push(p.zero_seed);
            mul_inits.push(p.mul_init);
        }
        self.stage = Stage::Done;
        let session =
            self.session.take().ok_or_else(|| ProtocolError::Internal("DKG session consumed".into()))?;
        let (party, package) = session
            .phase4(
                &self.proofs,
                &self.zero_commits,
                &zero_seeds,
                &mul_inits,
                &self.chain_commits,
                &chain_reveals,
                |_| String::new(),
            )
            .map_err(|e| self.abort(e))?;
        if let Some(exp) = &self.expected
            && party.pk != exp.public_key
        {
            return Err(ProtocolError::Internal("set-up key differs from the given public key".into()));
        }
        let n = self.peers.len() + 1;
        let mut public_shares = BTreeMap::new();
        for id in 1..=n as PartyId {
            let point = package
                .verifying_share(to_index(id)?)
                .ok_or_else(|| ProtocolError::Internal(format!("no public share for party {id}")))?;
            public_shares.insert(id, *point);
        }
        KeyShare::new(party, self.threshold, public_shares)
            .map_err(|e| ProtocolError::Internal(e.to_string()))
    }
}

impl Machine for Dkg {
    type Output = KeyShare;
    fn record(&mut self, from: PartyId, data: Vec<u8>) -> Result<(), ProtocolError> {
        self.inbox.receive(from, data)
    }
    fn advance(&mut self, out: &mut Outbox) -> Result<Option<KeyShare>, ProtocolError> {
        self.step(out)
    }
}

/// Distributed key generation for a `t`-of-`n` committee (any `t + 1` parties sign).
///
/// Parties are `1..=n`. Three message rounds, then a local finish:
/// 1. each party sends every other one a point of its random polynomial (private);
/// 2. each party broadcasts a proof of knowledge of its summed share (Fischlin DLog proof, bound
///    to the execution id) and a commitment to its chain-code part, and commits privately to
///    each pairwise zero-sharing seed;
/// 3. each party opens those commitments and sends every peer the first messages of the
///    base-OT setup for the pairwise multiplication (in both directions).
///
/// The result is checked (polynomial consistency of all shares, proofs, openings, OT setup); a
/// failed check aborts naming the peer when the engine can tell who it was, else every peer.
pub struct Keygen(Driver<Dkg>);

impl Keygen {
    /// Start a key generation as party `me` of `1..=n`, threshold `t` (`1 <= t < n <= 255`).
    pub fn new(eid: ExecutionId, me: PartyId, threshold: u16, n: u16) -> Result<Self, ProtocolError> {
        Dkg::new(eid, me, threshold, n, None, None).map(|dkg| Self(Driver::new(dkg)))
    }
}

impl Protocol for Keygen {
    type Output = KeyShare;
    fn poke(&mut self) -> Result<Action<KeyShare>, ProtocolError> {
        self.0.poke()
    }
    fn message(&mut self, from: PartyId, data: Vec<u8>) {
        self.0.message(from, data);
    }
}

/// What a new holder brings to [`Setup`]: its Shamir share of the key and the public side of the
/// sharing, as produced by a resharing.
pub struct SetupInput {
    /// This holder's id in the new committee (`1..=n`).
    pub me: PartyId,
    /// The new threshold `t` (any `t + 1` holders sign).
    pub threshold: u16,
    /// This holder's secret share: the sharing polynomial evaluated at `me`.
    pub share: Zeroizing<Scalar>,
    /// The wallet's public key (unchanged by resharing).
    pub public_key: k256::PublicKey,
    /// Every holder's public share (`share · G`), keyed `1..=n`.
    pub public_shares: BTreeMap<PartyId, k256::PublicKey>,
}

impl std::fmt::Debug for SetupInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupInput")
            .field("me", &self.me)
            .field("threshold", &self.threshold)
            .field("share", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Turn Shamir shares held by a committee (after a resharing, or an import) into DKLs23 key
/// shares: every pair runs the base-OT setup and agrees zero-sharing seeds.
///
/// This is dkls23's DKG from its second round on, with each party's "sum of fragments" being
/// its given share. Two message rounds:
/// 1. broadcast a proof of knowledge of the share (checked against the holder's public share
///    given in [`SetupInput`], so a holder that lies about its share is named) and commitments;
/// 2. openings and base-OT setup.
///
/// The engine re-checks that the proven shares lie on one polynomial of degree `t` whose value
/// at 0 is the public key.
pub struct Setup(Driver<Dkg>);

impl Setup {
    /// Check the input (own share matches its public share, public shares interpolate to the
    /// key) and start.
    pub fn new(eid: ExecutionId, input: SetupInput) -> Result<Self, ProtocolError> {
        let n = u16::try_from(input.public_shares.len())
            .map_err(|_| ProtocolError::InvalidInput("too many public shares".into()))?;
        let ids: Vec<PartyId> = input.public_shares.keys().copied().collect();
        if ids != (1..=n).collect::<Vec<_>>() {
            return Err(ProtocolError::InvalidInput(format!(
                "public shares must be keyed 1..=n, got {ids:?}"
            )));
        }
        let public_shares: BTreeMap<PartyId, AffinePoint> =
            input.public_shares.iter().map(|(id, pk)| (*id, *pk.as_affine())).collect();
        let own = (ProjectivePoint::GENERATOR * *input.share).to_affine();
        if public_shares.get(&input.me) != Some(&own) {
            return Err(ProtocolError::InvalidInput("own share does not match its public share".into()));
        }
        let t = usize::from(input.threshold);
        let basis: Vec<(Scalar, AffinePoint)> =
            public_shares.iter().take(t + 1).map(|(id, pt)| (Scalar::from(u64::from(*id)), *pt)).collect();
        let public_key = *input.public_key.as_affine();
        if interpolate(&basis, Scalar::ZERO) != Some(public_key) {
            return Err(ProtocolError::InvalidInput(
                "public shares do not interpolate to the public key".into(),
            ));
        }
        for (id, pt) in public_shares.iter().skip(t + 1) {
            if interpolate(&basis, Scalar::from(u64::from(*id))) != Some(*pt) {
                return Err(ProtocolError::InvalidInput(format!(
                    "public share {id} is off the degree-{t} polynomial"
                )));
            }
        }
        let expected = Expected { public_key, public_shares };
        Dkg::new(eid, input.me, input.threshold, n, Some(input.share), Some(expected))
            .map(|dkg| Self(Driver::new(dkg)))
    }
}

impl Protocol for Setup {
    type Output = KeyShare;
    fn poke(&mut self) -> Result<Action<KeyShare>, ProtocolError> {
        self.0.poke()
    }
    fn message(&mut self, from: PartyId, data: Vec<u8>) {
        self.0.message(from, data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_broadcasts_cover_every_setup_round() {
        assert_eq!(SETUP_BROADCASTS.len(), SETUP_SHAPE.len());
        for (witness, round) in SETUP_BROADCASTS.iter().zip(SETUP_SHAPE) {
            assert_eq!(witness.broadcast, round.broadcast);
            assert!(!witness.private);
        }
    }
}
