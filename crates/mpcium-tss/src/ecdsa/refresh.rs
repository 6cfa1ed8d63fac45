//! Proactive refresh: the same committee gets new shares of the same key (dkls23's refresh that
//! reuses the pairwise OT setup, so it costs a few milliseconds instead of a DKG).

use std::collections::BTreeMap;

use dkls23::protocols::dkg::ProofCommitment;
use dkls23::protocols::refresh::{
    KeepRefreshPhase2to3, KeepRefreshPhase3to4, TransmitRefreshPhase2to4, TransmitRefreshPhase3to4,
};
use k256::{AffinePoint, ProjectivePoint, Scalar, Secp256k1};
use zeroize::Zeroizing;

use super::abort::{map_abort, to_id};
use super::fragments;
use super::keyshare::{DklsParty, KeyShare};
use super::wire::{self, Inbox, Kind, RoundShape};
use crate::driver::{Driver, Machine, Outbox};
use crate::protocol::{Action, ExecutionId, PartyId, Protocol, ProtocolError};

type Curve = Secp256k1;

/// 1 = fragments of a zero-constant polynomial, 2 = proofs and seed commitments, 3 = openings.
const REFRESH_SHAPE: &[RoundShape] = &[RoundShape::PRIVATE, RoundShape::BOTH, RoundShape::PRIVATE];

enum Stage {
    Start,
    Fragments,
    Commit,
    Open,
    Done,
}

/// New shares of the same key for the same committee (every participant takes part).
///
/// Three message rounds, as in [`Keygen`](super::Keygen) but without the OT setup:
/// 1. each party deals a random polynomial with constant term zero (private fragments);
/// 2. each party broadcasts a proof of knowledge of its correction (Fischlin DLog proof) and
///    commits privately to new zero-sharing seeds;
/// 3. each party opens the seeds.
///
/// The corrections are checked to lie on one polynomial whose value at 0 is the identity, so
/// the public key cannot move. Old shares of other parties become useless against new ones.
pub struct Refresh(Driver<RefreshCore>);

/// [`Refresh`]'s state machine.
struct RefreshCore {
    eid: ExecutionId,
    me: PartyId,
    peers: Vec<PartyId>,
    party: DklsParty,
    threshold: u16,
    public_shares: BTreeMap<PartyId, AffinePoint>,
    stage: Stage,
    inbox: Inbox,
    own_fragment: Option<Zeroizing<Scalar>>,
    correction: Option<Zeroizing<Scalar>>,
    proofs: Vec<ProofCommitment<Curve>>,
    kept: Option<BTreeMap<dkls23::protocols::PartyIndex, KeepRefreshPhase2to3>>,
    commits: Vec<TransmitRefreshPhase2to4>,
    pending_kept3: Option<BTreeMap<dkls23::protocols::PartyIndex, KeepRefreshPhase3to4>>,
}

impl Refresh {
    /// Start refreshing `share`; every participant of the key must run it with the same `eid`.
    pub fn new(eid: ExecutionId, share: &KeyShare) -> Self {
        let me = share.id();
        let peers: Vec<PartyId> = share.participants().into_iter().filter(|p| *p != me).collect();
        Self(Driver::new(RefreshCore {
            eid,
            me,
            inbox: Inbox::new(eid, peers.iter().copied(), REFRESH_SHAPE),
            peers,
            party: share.party.clone(),
            threshold: share.threshold(),
            public_shares: share.public_shares.clone(),
            stage: Stage::Start,
            own_fragment: None,
            correction: None,
            proofs: Vec::new(),
            kept: None,
            commits: Vec::new(),
            pending_kept3: None,
        }))
    }
}

impl RefreshCore {
    fn step(&mut self, out: &mut Outbox) -> Result<Option<KeyShare>, ProtocolError> {
        loop {
            match self.stage {
                Stage::Start => {
                    let fragments = Zeroizing::new(self.party.refresh_phase1());
                    self.own_fragment = fragments::send(&self.eid, self.me, &fragments, out)?;
                    self.stage = Stage::Fragments;
                }
                Stage::Fragments => {
                    let Some(mut round) = self.inbox.take_round(1) else { return Ok(None) };
                    let fragments = fragments::gather(self.own_fragment.take().as_ref(), &mut round)?;
                    let (correction, proof, kept, commits) =
                        self.party.refresh_phase2(self.eid.as_bytes(), &fragments);
                    out.broadcast(wire::encode(&self.eid, 2, Kind::Broadcast, &proof)?);
                    for c in commits {
                        out.private(
                            to_id(c.parties.receiver),
                            wire::encode(&self.eid, 2, Kind::Private, &c)?,
                        );
                    }
                    self.correction = Some(Zeroizing::new(correction));
                    self.proofs.push(proof);
                    self.kept = Some(kept);
                    self.stage = Stage::Commit;
                }
                Stage::Commit => {
                    let Some(mut round) = self.inbox.take_round(2) else { return Ok(None) };
                    for (from, msg) in &mut round {
                        let from = *from;
                        let proof: ProofCommitment<Curve> =
                            wire::decode(from, 2, &msg.take(from, 2, Kind::Broadcast)?)?;
                        let commit: TransmitRefreshPhase2to4 =
                            wire::decode(from, 2, &msg.take(from, 2, Kind::Private)?)?;
                        if to_id(proof.index) != from {
                            return Err(ProtocolError::faulty(from, "proof claims another sender"));
                        }
                        if to_id(commit.parties.sender) != from || to_id(commit.parties.receiver) != self.me {
                            return Err(ProtocolError::faulty(from, "seed commitment misaddressed"));
                        }
                        self.proofs.push(proof);
                        self.commits.push(commit);
                    }
                    let kept =
                        self.kept.as_ref().ok_or_else(|| ProtocolError::Internal("seeds missing".into()))?;
                    let (kept3, openings) = self.party.refresh_phase3(kept);
                    for o in openings {
                        out.private(
                            to_id(o.parties.receiver),
                            wire::encode(&self.eid, 3, Kind::Private, &o)?,
                        );
                    }
                    self.kept = None;
                    self.stage = Stage::Open;
                    self.pending_kept3 = Some(kept3);
                }
                Stage::Open => {
                    let Some(mut round) = self.inbox.take_round(3) else { return Ok(None) };
                    let mut openings = Vec::with_capacity(round.len());
                    for (from, msg) in &mut round {
                        let o: TransmitRefreshPhase3to4 =
                            wire::decode(*from, 3, &Zeroizing::new(msg.take(*from, 3, Kind::Private)?))?;
                        if to_id(o.parties.sender) != *from || to_id(o.parties.receiver) != self.me {
                            return Err(ProtocolError::faulty(*from, "seed opening misaddressed"));
                        }
                        openings.push(o);
                    }
                    self.stage = Stage::Done;
                    return self.finish(&openings).map(Some);
                }
                Stage::Done => return Err(ProtocolError::Internal("refresh already finished".into())),
            }
        }
    }

    fn finish(&mut self, openings: &[TransmitRefreshPhase3to4]) -> Result<KeyShare, ProtocolError> {
        let correction =
            self.correction.take().ok_or_else(|| ProtocolError::Internal("correction missing".into()))?;
        let kept3 =
            self.pending_kept3.take().ok_or_else(|| ProtocolError::Internal("seeds missing".into()))?;
        let party = self
            .party
            .refresh_phase4(self.eid.as_bytes(), &correction, &self.proofs, &kept3, &self.commits, openings)
            .map_err(|e| map_abort(e, &self.peers))?;
        // Each public share moves by its party's proven correction point.
        let mut public_shares = BTreeMap::new();
        for proof in &self.proofs {
            let id = to_id(proof.index);
            let old = self
                .public_shares
                .get(&id)
                .ok_or_else(|| ProtocolError::faulty(id, "correction for a party outside the committee"))?;
            public_shares.insert(id, (ProjectivePoint::from(*old) + proof.proof.point).to_affine());
        }
        KeyShare::new(party, self.threshold, public_shares)
            .map_err(|e| ProtocolError::Internal(e.to_string()))
    }
}

impl Protocol for Refresh {
    type Output = KeyShare;

    fn poke(&mut self) -> Result<Action<KeyShare>, ProtocolError> {
        self.0.poke()
    }

    fn message(&mut self, from: PartyId, data: Vec<u8>) {
        self.0.message(from, data);
    }
}

impl Machine for RefreshCore {
    type Output = KeyShare;
    fn record(&mut self, from: PartyId, data: Vec<u8>) -> Result<(), ProtocolError> {
        self.inbox.receive(from, data)
    }
    fn advance(&mut self, out: &mut Outbox) -> Result<Option<KeyShare>, ProtocolError> {
        self.step(out)
    }
}
