//! The signer's state machine behind [`Presign`](super::Presign), [`SignOnline`](super::SignOnline)
//! and [`Sign`](super::Sign): dkls23's signing phases 1–3 kept as a [`Presignature`], then the
//! online round, each part run when its inputs are present.

use std::collections::BTreeMap;

use dkls23::protocols::signing::{
    KeepPhase1to2, KeepPhase2to3, SignData, TransmitPhase1to2, TransmitPhase2to3, UniqueKeep1to2,
    UniqueKeep2to3,
};
use k256::ecdsa::signature::hazmat::PrehashVerifier;
use k256::elliptic_curve::ops::Reduce;
use k256::elliptic_curve::point::AffineCoordinates;
use k256::elliptic_curve::scalar::IsHigh;
use k256::{FieldBytes, ProjectivePoint, Scalar, Secp256k1};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::abort::{map_abort, to_id, to_index};
use super::hd::{HdPath, derive_child};
use super::keyshare::{DklsParty, KeyShare};
use super::presignature::Presignature;
use super::sign::EcdsaSignature;
use super::wire::{self, Inbox, Kind, RoundShape};
use crate::driver::{Machine, Outbox};
use crate::protocol::{ExecutionId, PartyId, ProtocolError};

type Curve = Secp256k1;

const PRESIGN_SHAPE: &[RoundShape] = &[RoundShape::PRIVATE, RoundShape::PRIVATE];
const ONLINE_SHAPE: &[RoundShape] = &[RoundShape::BROADCAST];
const SIGN_SHAPE: &[RoundShape] = &[RoundShape::PRIVATE, RoundShape::PRIVATE, RoundShape::BROADCAST];

/// The digest the presign rounds bind their sub-sessions to when the message is not known yet.
fn presign_binding(eid: &ExecutionId) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"mpcium-tss/ecdsa/presign-binding/v1");
    h.update(eid.as_bytes());
    h.finalize().into()
}

fn scalar_from_digest(digest: &[u8; 32]) -> Scalar {
    <Scalar as Reduce<FieldBytes>>::reduce(&FieldBytes::from(*digest))
}

fn check_signers(share: &KeyShare, signers: &[PartyId]) -> Result<(), ProtocolError> {
    let sorted = signers.windows(2).all(|w| w[0] < w[1]);
    let want = usize::from(share.threshold()) + 1;
    if !sorted || signers.len() != want {
        return Err(ProtocolError::InvalidInput(format!(
            "signers must be {want} strictly increasing party ids, got {signers:?}"
        )));
    }
    if !signers.contains(&share.id()) {
        return Err(ProtocolError::InvalidInput(format!("party {} is not among the signers", share.id())));
    }
    if let Some(p) = signers.iter().find(|p| share.public_share(**p).is_none()) {
        return Err(ProtocolError::InvalidInput(format!("signer {p} is not a participant of this key")));
    }
    Ok(())
}

/// The dkls23 party state to sign with: the share's own, or shifted to an HD child key.
fn signing_party(share: &KeyShare, hd: Option<&HdPath>) -> Result<DklsParty, ProtocolError> {
    let mut party = share.party.clone();
    if let Some(hd) = hd {
        let (child, tweak) = derive_child(&share.public_key(), &hd.chain_code, &hd.path)
            .map_err(|e| ProtocolError::InvalidInput(e.to_string()))?;
        // Every signer adds the same public tweak to its Shamir share; Lagrange weights sum to
        // one, so the joint secret moves by the tweak and the public key to the child key.
        party.poly_point += tweak;
        party.pk = *child.as_affine();
        party.derivation_data.poly_point = party.poly_point;
        party.derivation_data.pk = party.pk;
    }
    Ok(party)
}

#[derive(Serialize, Deserialize)]
struct OnlineShare {
    presign_id: ExecutionId,
    u: Scalar,
    w: Scalar,
}

impl Drop for OnlineShare {
    fn drop(&mut self) {
        self.u.zeroize();
        self.w.zeroize();
    }
}

enum Stage {
    Start,
    Round1(UniqueKeep1to2<Curve>, BTreeMap<dkls23::protocols::PartyIndex, KeepPhase1to2<Curve>>),
    Round2(UniqueKeep2to3<Curve>, BTreeMap<dkls23::protocols::PartyIndex, KeepPhase2to3<Curve>>),
    Online(Presignature, [u8; 32]),
    Done,
}

/// What the engine produces: a presignature (presign only) or a signature.
pub(super) enum Outcome {
    Presignature(Box<Presignature>),
    Signature(EcdsaSignature),
}

/// Presign rounds + online round, driven by which parts are present.
pub(super) struct SignCore {
    eid: ExecutionId,
    me: PartyId,
    peers: Vec<PartyId>,
    party: Option<DklsParty>,
    data: Option<SignData>,
    /// The message digest, if known; without it the run stops at the presignature.
    digest: Option<[u8; 32]>,
    /// The digest the presign sub-sessions are bound to (the real one when known).
    binding: [u8; 32],
    online_round: u8,
    online_sent: bool,
    stage: Stage,
    inbox: Inbox,
}

impl SignCore {
    pub(super) fn presign(
        eid: ExecutionId,
        share: &KeyShare,
        signers: &[PartyId],
        hd: Option<&HdPath>,
        digest: Option<[u8; 32]>,
    ) -> Result<Self, ProtocolError> {
        check_signers(share, signers)?;
        let me = share.id();
        let peers: Vec<PartyId> = signers.iter().copied().filter(|p| *p != me).collect();
        let binding = digest.unwrap_or_else(|| presign_binding(&eid));
        let data = SignData {
            sign_id: eid.as_bytes().to_vec(),
            counterparties: peers.iter().map(|p| to_index(*p)).collect::<Result<_, _>>()?,
            message_hash: binding,
        };
        let shape = if digest.is_some() { SIGN_SHAPE } else { PRESIGN_SHAPE };
        Ok(Self {
            eid,
            me,
            inbox: Inbox::new(eid, peers.iter().copied(), shape),
            peers,
            party: Some(signing_party(share, hd)?),
            data: Some(data),
            digest,
            binding,
            online_round: 3,
            online_sent: false,
            stage: Stage::Start,
        })
    }

    pub(super) fn online(eid: ExecutionId, presignature: Presignature, digest: [u8; 32]) -> Self {
        let me = presignature.me;
        let peers: Vec<PartyId> = presignature.signers.iter().copied().filter(|p| *p != me).collect();
        Self {
            eid,
            me,
            inbox: Inbox::new(eid, peers.iter().copied(), ONLINE_SHAPE),
            peers,
            party: None,
            data: None,
            digest: Some(digest),
            binding: digest,
            online_round: 1,
            online_sent: false,
            stage: Stage::Online(presignature, digest),
        }
    }

    fn party(&self) -> Result<(&DklsParty, &SignData), ProtocolError> {
        match (&self.party, &self.data) {
            (Some(p), Some(d)) => Ok((p, d)),
            _ => Err(ProtocolError::Internal("signing state already consumed".into())),
        }
    }

    fn step(&mut self, out: &mut Outbox) -> Result<Option<Outcome>, ProtocolError> {
        loop {
            match std::mem::replace(&mut self.stage, Stage::Done) {
                Stage::Start => {
                    let (party, data) = self.party()?;
                    let (unique, kept, transmit) =
                        party.sign_phase1(data).map_err(|e| map_abort(e, &self.peers))?;
                    for t in &transmit {
                        out.private(to_id(t.parties.receiver), wire::encode(&self.eid, 1, Kind::Private, t)?);
                    }
                    self.stage = Stage::Round1(unique, kept);
                }
                Stage::Round1(unique, kept) => {
                    let Some(mut round) = self.inbox.take_round(1) else {
                        self.stage = Stage::Round1(unique, kept);
                        return Ok(None);
                    };
                    let mut received: Vec<TransmitPhase1to2> = Vec::with_capacity(round.len());
                    for (from, msg) in &mut round {
                        let m: TransmitPhase1to2 =
                            wire::decode(*from, 1, &msg.take(*from, 1, Kind::Private)?)?;
                        self.check_route(*from, m.parties.sender, m.parties.receiver)?;
                        received.push(m);
                    }
                    let (party, data) = self.party()?;
                    let (unique, kept, transmit) = party
                        .sign_phase2(data, unique, kept, &received)
                        .map_err(|e| map_abort(e, &self.peers))?;
                    for t in &transmit {
                        out.private(to_id(t.parties.receiver), wire::encode(&self.eid, 2, Kind::Private, t)?);
                    }
                    self.stage = Stage::Round2(unique, kept);
                }
                Stage::Round2(unique, kept) => {
                    let Some(mut round) = self.inbox.take_round(2) else {
                        self.stage = Stage::Round2(unique, kept);
                        return Ok(None);
                    };
                    let mut received: Vec<TransmitPhase2to3<Curve>> = Vec::with_capacity(round.len());
                    for (from, msg) in &mut round {
                        let m: TransmitPhase2to3<Curve> =
                            wire::decode(*from, 2, &Zeroizing::new(msg.take(*from, 2, Kind::Private)?))?;
                        self.check_route(*from, m.parties.sender, m.parties.receiver)?;
                        received.push(m);
                    }
                    let presignature = self.finish_presign(unique, kept, &received)?;
                    match self.digest {
                        Some(digest) => self.stage = Stage::Online(presignature, digest),
                        None => return Ok(Some(Outcome::Presignature(Box::new(presignature)))),
                    }
                }
                Stage::Online(presignature, digest) => {
                    let r = self.online_round;
                    if !self.online_sent {
                        let m = scalar_from_digest(&digest);
                        let own = OnlineShare {
                            presign_id: presignature.presign_id,
                            u: presignature.u,
                            w: m * presignature.phi + presignature.vr,
                        };
                        out.broadcast(wire::encode(&self.eid, r, Kind::Broadcast, &own)?);
                        self.online_sent = true;
                    }
                    let Some(mut round) = self.inbox.take_round(r) else {
                        self.stage = Stage::Online(presignature, digest);
                        return Ok(None);
                    };
                    return self
                        .combine(presignature, &digest, &mut round)
                        .map(|s| Some(Outcome::Signature(s)));
                }
                Stage::Done => return Err(ProtocolError::Internal("signing already finished".into())),
            }
        }
    }
}

impl SignCore {
    /// A peer's message must name it as sender and us as receiver.
    fn check_route(
        &self,
        from: PartyId,
        sender: dkls23::protocols::PartyIndex,
        receiver: dkls23::protocols::PartyIndex,
    ) -> Result<(), ProtocolError> {
        if to_id(sender) != from || to_id(receiver) != self.me {
            return Err(ProtocolError::faulty(from, "signing message misaddressed"));
        }
        Ok(())
    }

    /// dkls23's phase 3 (all checks on the peers' second messages), kept as a presignature.
    ///
    /// dkls23 returns `w = m·φ_i + v_i·r` for the digest `m` the sub-sessions were bound to; we
    /// keep `v_i·r = w - m·φ_i` so the online round can use any digest.
    fn finish_presign(
        &mut self,
        unique: UniqueKeep2to3<Curve>,
        kept: BTreeMap<dkls23::protocols::PartyIndex, KeepPhase2to3<Curve>>,
        received: &[TransmitPhase2to3<Curve>],
    ) -> Result<Presignature, ProtocolError> {
        let phi = unique.inversion_mask;
        let mut nonce_point = ProjectivePoint::from(unique.instance_point);
        for m in received {
            nonce_point += m.instance_point;
        }
        let (party, data) = self.party()?;
        let public_key = k256::PublicKey::from_affine(party.pk)
            .map_err(|_| ProtocolError::Internal("signing key is the identity".into()))?;
        let (_x, broadcast) =
            party.sign_phase3(data, unique, kept, received).map_err(|e| map_abort(e, &self.peers))?;
        let vr = broadcast.w - scalar_from_digest(&self.binding) * phi;
        let mut signers = self.peers.clone();
        signers.push(self.me);
        signers.sort_unstable();
        // The multiplication state is no longer needed: drop (and so wipe) it now.
        self.party = None;
        self.data = None;
        Ok(Presignature {
            presign_id: self.eid,
            me: self.me,
            signers,
            public_key,
            nonce_point: nonce_point.to_affine(),
            u: broadcast.u,
            vr,
            phi,
        })
    }

    /// The online round: s = Σw / Σu, normalised to low-S, checked against the key.
    fn combine(
        &self,
        presignature: Presignature,
        digest: &[u8; 32],
        round: &mut BTreeMap<PartyId, wire::PeerRound>,
    ) -> Result<EcdsaSignature, ProtocolError> {
        let r_round = self.online_round;
        let m = scalar_from_digest(digest);
        let mut u_sum = presignature.u;
        let mut w_sum = m * presignature.phi + presignature.vr;
        for (from, msg) in round.iter_mut() {
            let share: OnlineShare =
                wire::decode(*from, r_round, &Zeroizing::new(msg.take(*from, r_round, Kind::Broadcast)?))?;
            if share.presign_id != presignature.presign_id {
                return Err(ProtocolError::faulty(*from, "online share made from another presignature"));
            }
            u_sum += share.u;
            w_sum += share.w;
        }
        // Nothing in the last round can be checked per sender: a bad share shows only as an
        // invalid signature, so every other signer is blamed.
        let blame_all =
            |reason: &str| ProtocolError::Faulty { parties: self.peers.clone(), reason: reason.into() };
        let u_inv: Option<Scalar> = u_sum.invert().into();
        let mut s = w_sum * u_inv.ok_or_else(|| blame_all("online shares sum to a zero denominator"))?;
        let x_bytes = presignature.nonce_point.x();
        let r = <Scalar as Reduce<FieldBytes>>::reduce(&x_bytes);
        let mut y_odd = bool::from(presignature.nonce_point.y_is_odd());
        if bool::from(s.is_high()) {
            s = -s;
            y_odd = !y_odd;
        }
        let x_reduced = r.to_bytes() != x_bytes;
        let sig = k256::ecdsa::Signature::from_scalars(r.to_bytes(), s.to_bytes())
            .map_err(|_| blame_all("online shares give r or s = 0"))?;
        let key = k256::ecdsa::VerifyingKey::from(presignature.public_key);
        key.verify_prehash(digest, &sig).map_err(|_| {
            blame_all("the combined signature does not verify: a signer sent a bad online share")
        })?;
        let mut out = EcdsaSignature {
            r: [0; 32],
            s: [0; 32],
            recovery_id: u8::from(y_odd) | (u8::from(x_reduced) << 1),
        };
        out.r.copy_from_slice(&r.to_bytes());
        out.s.copy_from_slice(&s.to_bytes());
        Ok(out)
    }
}

impl Machine for SignCore {
    type Output = Outcome;
    fn record(&mut self, from: PartyId, data: Vec<u8>) -> Result<(), ProtocolError> {
        self.inbox.receive(from, data)
    }
    fn advance(&mut self, out: &mut Outbox) -> Result<Option<Outcome>, ProtocolError> {
        self.step(out)
    }
}
