//! Threshold signing: [`Presign`] (the message-independent rounds), [`SignOnline`] (the last
//! round, from a [`Presignature`]) and [`Sign`] (both in one run).

use std::collections::BTreeMap;
use std::fmt;

use dkls23::protocols::signing::{
    KeepPhase1to2, KeepPhase2to3, SignData, TransmitPhase1to2, TransmitPhase2to3, UniqueKeep1to2,
    UniqueKeep2to3,
};
use k256::ecdsa::signature::hazmat::PrehashVerifier;
use k256::elliptic_curve::ops::Reduce;
use k256::elliptic_curve::point::AffineCoordinates;
use k256::elliptic_curve::scalar::IsHigh;
use k256::{AffinePoint, FieldBytes, ProjectivePoint, Scalar, Secp256k1};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::abort::{map_abort, to_id, to_index};
use super::hd::{HdPath, derive_child};
use super::keyshare::{DklsParty, KeyShare};
use super::wire::{self, Inbox, Kind, Outbox, RoundShape, Stepped, flushed_poke};
use crate::protocol::{Action, ExecutionId, PartyId, Protocol, ProtocolError};

type Curve = Secp256k1;

const PRESIGN_SHAPE: &[RoundShape] = &[RoundShape::PRIVATE, RoundShape::PRIVATE];
const ONLINE_SHAPE: &[RoundShape] = &[RoundShape::BROADCAST];
const SIGN_SHAPE: &[RoundShape] = &[RoundShape::PRIVATE, RoundShape::PRIVATE, RoundShape::BROADCAST];

/// The only presignature format this code reads and writes.
pub const PRESIGNATURE_FORMAT_VERSION: u16 = 1;

/// A finished ECDSA signature in the original's result format (spec §3.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcdsaSignature {
    /// `r`, 32 bytes big-endian.
    pub r: [u8; 32],
    /// `s`, 32 bytes big-endian, normalised to the lower half of the order (low-S).
    pub s: [u8; 32],
    /// The recovery id: bit 0 = parity of R's y (after low-S), bit 1 = R.x was reduced mod n.
    pub recovery_id: u8,
}

/// A one-shot share of a signature nonce, made by [`Presign`] before the message is known.
///
/// It signs exactly one message: [`SignOnline`] consumes it by move, and it cannot be cloned.
/// Signing two messages with copies of the same presignature reveals the key, so a node that
/// persists a pool must delete each entry before using it. The secret values are zeroized on drop.
///
/// The key it signs for (master key or an HD child) is fixed when it is made: applying a
/// derivation tweak after the nonce is known enables related-key attacks on ECDSA with
/// presignatures (Groth–Shoup 2022), so the path is bound at presign time.
pub struct Presignature {
    presign_id: ExecutionId,
    me: PartyId,
    signers: Vec<PartyId>,
    public_key: k256::PublicKey,
    nonce_point: AffinePoint,
    /// This party's share of `u = φ·k` (k the nonce, φ the inversion mask).
    u: Scalar,
    /// This party's share of `φ·x·r` (x the secret key).
    vr: Scalar,
    /// This party's share of φ.
    phi: Scalar,
}

#[derive(Serialize, Deserialize)]
struct PresignatureBody {
    presign_id: ExecutionId,
    me: PartyId,
    signers: Vec<PartyId>,
    public_key: AffinePoint,
    nonce_point: AffinePoint,
    u: Scalar,
    vr: Scalar,
    phi: Scalar,
}

impl Drop for PresignatureBody {
    fn drop(&mut self) {
        self.u.zeroize();
        self.vr.zeroize();
        self.phi.zeroize();
    }
}

impl Drop for Presignature {
    fn drop(&mut self) {
        self.u.zeroize();
        self.vr.zeroize();
        self.phi.zeroize();
    }
}

impl fmt::Debug for Presignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presignature")
            .field("presign_id", &self.presign_id)
            .field("me", &self.me)
            .field("signers", &self.signers)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Why a stored presignature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresignatureError {
    /// Written by a format this code does not know.
    #[error(
        "unknown presignature format version {0} (this build reads version {PRESIGNATURE_FORMAT_VERSION})"
    )]
    UnknownVersion(u16),
    /// Cut short, checksum mismatch, or undecodable.
    #[error("presignature blob is corrupted: {0}")]
    Corrupted(String),
    /// Decodes, but its fields contradict each other.
    #[error("presignature is inconsistent: {0}")]
    Inconsistent(String),
}

impl Presignature {
    /// The run that made it; every signer's copy has the same id.
    pub fn id(&self) -> ExecutionId {
        self.presign_id
    }

    /// The signer that holds this share of the presignature.
    pub fn party_id(&self) -> PartyId {
        self.me
    }

    /// The parties that must join the online round (sorted).
    pub fn signers(&self) -> &[PartyId] {
        &self.signers
    }

    /// The key the signature will verify under (a child key if it was made with a path).
    pub fn public_key(&self) -> k256::PublicKey {
        self.public_key
    }

    /// Encode as `[format version: u16 BE][postcard body][SHA-256 of what precedes]`; secret.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, PresignatureError> {
        let body = PresignatureBody {
            presign_id: self.presign_id,
            me: self.me,
            signers: self.signers.clone(),
            public_key: *self.public_key.as_affine(),
            nonce_point: self.nonce_point,
            u: self.u,
            vr: self.vr,
            phi: self.phi,
        };
        let mut out = Zeroizing::new(PRESIGNATURE_FORMAT_VERSION.to_be_bytes().to_vec());
        let encoded = Zeroizing::new(
            postcard::to_allocvec(&body)
                .map_err(|e| PresignatureError::Corrupted(format!("cannot encode: {e}")))?,
        );
        out.extend_from_slice(&encoded);
        let checksum = Sha256::digest(out.as_slice());
        out.extend_from_slice(&checksum);
        Ok(out)
    }

    /// Decode and check a presignature written by [`Presignature::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PresignatureError> {
        if bytes.len() < 2 + 32 {
            return Err(PresignatureError::Corrupted(format!("only {} bytes", bytes.len())));
        }
        let version = u16::from_be_bytes([bytes[0], bytes[1]]);
        if version != PRESIGNATURE_FORMAT_VERSION {
            return Err(PresignatureError::UnknownVersion(version));
        }
        let (content, checksum) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(content).as_slice() != checksum {
            return Err(PresignatureError::Corrupted("checksum mismatch".into()));
        }
        let b: PresignatureBody = postcard::from_bytes(&content[2..])
            .map_err(|e| PresignatureError::Corrupted(format!("cannot decode: {e}")))?;
        let sorted = b.signers.windows(2).all(|w| w[0] < w[1]);
        if !sorted || !b.signers.contains(&b.me) || b.signers.len() < 2 || b.signers.contains(&0) {
            return Err(PresignatureError::Inconsistent(format!(
                "signers {:?} with me = {}",
                b.signers, b.me
            )));
        }
        if b.nonce_point == AffinePoint::IDENTITY {
            return Err(PresignatureError::Inconsistent("nonce point is the identity".into()));
        }
        let public_key = k256::PublicKey::from_affine(b.public_key)
            .map_err(|_| PresignatureError::Inconsistent("public key is the identity".into()))?;
        Ok(Self {
            presign_id: b.presign_id,
            me: b.me,
            signers: b.signers.clone(),
            public_key,
            nonce_point: b.nonce_point,
            u: b.u,
            vr: b.vr,
            phi: b.phi,
        })
    }
}

impl Serialize for Presignature {
    /// As the checked, versioned bytes of [`Presignature::to_bytes`].
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let bytes = self.to_bytes().map_err(serde::ser::Error::custom)?;
        s.serialize_bytes(&bytes)
    }
}

impl<'de> Deserialize<'de> for Presignature {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Presignature;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an mpcium ECDSA presignature blob")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Presignature, E> {
                Presignature::from_bytes(v).map_err(E::custom)
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Presignature, E> {
                let v = Zeroizing::new(v);
                Presignature::from_bytes(&v).map_err(E::custom)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Presignature, A::Error> {
                let mut v = Zeroizing::new(Vec::new());
                while let Some(b) = seq.next_element::<u8>()? {
                    v.push(b);
                }
                Presignature::from_bytes(&v).map_err(serde::de::Error::custom)
            }
        }
        d.deserialize_bytes(Visitor)
    }
}

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
enum Outcome {
    Presignature(Box<Presignature>),
    Signature(EcdsaSignature),
}

/// Presign rounds + online round, driven by which parts are present.
struct SignCore {
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
    outbox: Outbox,
    /// A result held back until the messages sent in the same step are out.
    pending: Option<Result<Outcome, ProtocolError>>,
}

impl SignCore {
    fn presign(
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
            outbox: Outbox::default(),
            pending: None,
        })
    }

    fn online(eid: ExecutionId, presignature: Presignature, digest: [u8; 32]) -> Self {
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
            outbox: Outbox::default(),
            pending: None,
        }
    }

    fn party(&self) -> Result<(&DklsParty, &SignData), ProtocolError> {
        match (&self.party, &self.data) {
            (Some(p), Some(d)) => Ok((p, d)),
            _ => Err(ProtocolError::Internal("signing state already consumed".into())),
        }
    }

    fn step(&mut self) -> Result<Option<Outcome>, ProtocolError> {
        loop {
            match std::mem::replace(&mut self.stage, Stage::Done) {
                Stage::Start => {
                    let (party, data) = self.party()?;
                    let (unique, kept, transmit) =
                        party.sign_phase1(data).map_err(|e| map_abort(e, &self.peers))?;
                    for t in &transmit {
                        self.outbox.private(
                            to_id(t.parties.receiver),
                            wire::encode(&self.eid, 1, Kind::Private, t)?,
                        );
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
                        self.outbox.private(
                            to_id(t.parties.receiver),
                            wire::encode(&self.eid, 2, Kind::Private, t)?,
                        );
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
                        self.outbox.broadcast(wire::encode(&self.eid, r, Kind::Broadcast, &own)?);
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

    /// The next action (see [`flushed_poke`]).
    fn poke(&mut self) -> Result<Action<Outcome>, ProtocolError> {
        flushed_poke(self)
    }
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
pub struct Presign(SignCore);

impl Presign {
    /// Start presigning with `share` among `signers` (exactly `t + 1` sorted ids, including this
    /// party), optionally for an HD child key.
    pub fn new(
        eid: ExecutionId,
        share: &KeyShare,
        signers: &[PartyId],
        hd: Option<&HdPath>,
    ) -> Result<Self, ProtocolError> {
        SignCore::presign(eid, share, signers, hd, None).map(Self)
    }
}

impl Protocol for Presign {
    type Output = Presignature;
    fn poke(&mut self) -> Result<Action<Presignature>, ProtocolError> {
        self.0.poke().and_then(expect_presignature)
    }
    fn message(&mut self, from: PartyId, data: Vec<u8>) {
        self.0.inbox.receive(from, data);
    }
}

/// The online round: each signer broadcasts its share `(u_i, w_i)` of the signature, computed
/// from its [`Presignature`] and the 32-byte digest; everyone combines `s = Σw / Σu` and checks
/// the signature against the public key before returning it.
pub struct SignOnline(SignCore);

impl SignOnline {
    /// Sign `digest` (the 32-byte message hash, e.g. Keccak-256) with a presignature. `eid` is
    /// this signing run's id; every signer must use its copy of the same presignature.
    pub fn new(eid: ExecutionId, presignature: Presignature, digest: [u8; 32]) -> Self {
        Self(SignCore::online(eid, presignature, digest))
    }
}

impl Protocol for SignOnline {
    type Output = EcdsaSignature;
    fn poke(&mut self) -> Result<Action<EcdsaSignature>, ProtocolError> {
        self.0.poke().and_then(expect_signature)
    }
    fn message(&mut self, from: PartyId, data: Vec<u8>) {
        self.0.inbox.receive(from, data);
    }
}

/// A full signature in one run: [`Presign`]'s two rounds (bound to the digest) then the online
/// round, three message rounds in all.
pub struct Sign(SignCore);

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
        SignCore::presign(eid, share, signers, hd, Some(digest)).map(Self)
    }
}

impl Protocol for Sign {
    type Output = EcdsaSignature;
    fn poke(&mut self) -> Result<Action<EcdsaSignature>, ProtocolError> {
        self.0.poke().and_then(expect_signature)
    }
    fn message(&mut self, from: PartyId, data: Vec<u8>) {
        self.0.inbox.receive(from, data);
    }
}

impl Stepped for SignCore {
    type Out = Outcome;
    fn outbox(&mut self) -> &mut Outbox {
        &mut self.outbox
    }
    fn pending(&mut self) -> &mut Option<Result<Outcome, ProtocolError>> {
        &mut self.pending
    }
    fn fault(&mut self) -> Option<ProtocolError> {
        self.inbox.fault()
    }
    fn advance(&mut self) -> Result<Option<Outcome>, ProtocolError> {
        self.step()
    }
    fn finish(&mut self) {
        self.stage = Stage::Done;
    }
}
