//! FROST(Ed25519, SHA-512) signing (RFC 9591) as a sans-IO protocol, every signer acting as its
//! own coordinator.
//!
//! Rounds (exactly `t + 1` signers):
//! 1. Each signer draws its nonce pair and broadcasts the commitments.
//! 2. With every commitment in, each signer builds the same signing package (commitments and
//!    message) and broadcasts its signature share.
//! 3. With every share in, each signer aggregates and verifies the signature under the group
//!    key (child key with a derivation path). If it does not verify, FROST's cheater detection
//!    checks every share against the signer's public share and the run aborts naming the
//!    signers whose shares are wrong. The output is the standard 64-byte signature `R ‖ S`,
//!    which verifies with any RFC 8032 verifier (`ed25519-dalek` `verify_strict`).

use std::collections::BTreeMap;

use frost_ed25519::{Error as FrostError, Identifier, SigningPackage, round1, round2};
use rand_core::OsRng;

use super::hd::{HdError, derive_child};
use super::keyshare::{KeyShare, identifier, party_of};
use super::wire;
use crate::driver::{Driver, Machine, Outbox};
use crate::protocol::{Action, ExecutionId, PartyId, Protocol, ProtocolError};

const TAG_COMMITMENTS: u8 = 1;
const TAG_SHARE: u8 = 2;

/// A standard Ed25519 signature: `R ‖ S`.
pub type Signature = [u8; 64];

/// One signer's run.
pub struct Sign(Driver<SignCore>);

/// [`Sign`]'s state machine.
struct SignCore {
    exec: ExecutionId,
    share: KeyShare,
    signers: Vec<PartyId>,
    message: Vec<u8>,
    nonces: Option<round1::SigningNonces>,
    commitments: BTreeMap<Identifier, round1::SigningCommitments>,
    package: Option<SigningPackage>,
    shares: BTreeMap<Identifier, round2::SignatureShare>,
    started: bool,
}

impl Sign {
    /// Start signing `message` with `share` among `signers` (exactly `t + 1` committee members,
    /// this party included).
    pub fn new(
        exec: ExecutionId,
        share: &KeyShare,
        signers: &[PartyId],
        message: &[u8],
    ) -> Result<Self, ProtocolError> {
        let mut sorted = signers.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != signers.len() || sorted.len() != usize::from(share.threshold()) + 1 {
            return Err(ProtocolError::InvalidInput(format!(
                "need exactly {} distinct signers, got {signers:?}",
                usize::from(share.threshold()) + 1
            )));
        }
        if !sorted.contains(&share.party()) {
            return Err(ProtocolError::InvalidInput("this party is not among the signers".into()));
        }
        if let Some(s) = sorted.iter().find(|s| !share.public_shares().contains_key(s)) {
            return Err(ProtocolError::InvalidInput(format!("signer {s} is not in the committee")));
        }
        Ok(Self(Driver::new(SignCore {
            exec,
            share: share.clone(),
            signers: sorted,
            message: message.to_vec(),
            nonces: None,
            commitments: BTreeMap::new(),
            package: None,
            shares: BTreeMap::new(),
            started: false,
        })))
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
        let child = share
            .tweaked(&derived.tweak)
            .map_err(|e| ProtocolError::Internal(format!("tweaked share: {e}")))?;
        Self::new(exec, &child, signers, message)
    }
}

impl SignCore {
    fn step(&mut self, out: &mut Outbox) -> Result<Option<Signature>, ProtocolError> {
        let me = identifier(self.share.party()).map_err(|e| ProtocolError::Internal(e.to_string()))?;
        if !self.started {
            self.started = true;
            let (nonces, commitments) = round1::commit(self.share.key_package().signing_share(), &mut OsRng);
            let bytes = commitments.serialize().map_err(|e| ProtocolError::Internal(e.to_string()))?;
            out.broadcast(wire::seal(TAG_COMMITMENTS, &self.exec, &bytes));
            self.commitments.insert(me, commitments);
            self.nonces = Some(nonces);
        }
        if self.package.is_none() {
            if self.commitments.len() < self.signers.len() {
                return Ok(None);
            }
            let package = SigningPackage::new(self.commitments.clone(), &self.message);
            let nonces =
                self.nonces.take().ok_or_else(|| ProtocolError::Internal("nonces used twice".into()))?;
            let share = round2::sign(&package, &nonces, self.share.key_package())
                .map_err(|e| ProtocolError::Internal(format!("signing: {e}")))?;
            out.broadcast(wire::seal(TAG_SHARE, &self.exec, &share.serialize()));
            self.shares.insert(me, share);
            self.package = Some(package);
        }
        if self.shares.len() < self.signers.len() {
            return Ok(None);
        }
        let package = self.package.as_ref().ok_or_else(|| ProtocolError::Internal("no package".into()))?;
        let signature = frost_ed25519::aggregate_custom(
            package,
            &self.shares,
            self.share.public_key_package(),
            frost_ed25519::CheaterDetection::AllCheaters,
        )
        .map_err(|e| match e {
            FrostError::InvalidSignatureShare { culprits } => ProtocolError::Faulty {
                parties: culprits.iter().filter_map(party_of).collect(),
                reason: "signature share does not verify against the signer's public share".into(),
            },
            other => ProtocolError::Internal(format!("aggregation: {other}")),
        })?;
        let bytes = signature.serialize().map_err(|e| ProtocolError::Internal(e.to_string()))?;
        let signature: Signature = bytes
            .as_slice()
            .try_into()
            .map_err(|_| ProtocolError::Internal("signature is not 64 bytes".into()))?;
        Ok(Some(signature))
    }

    fn file(&mut self, from: PartyId, data: &[u8]) -> Result<(), ProtocolError> {
        if from == self.share.party() || !self.signers.contains(&from) {
            return Err(ProtocolError::faulty(from, "message from a party that is not signing"));
        }
        let (tag, body) = wire::open(from, &self.exec, data)?;
        let id = identifier(from).map_err(|e| ProtocolError::Internal(e.to_string()))?;
        let malformed = |e: FrostError| ProtocolError::faulty(from, format!("malformed message: {e}"));
        match tag {
            TAG_COMMITMENTS => {
                let c = round1::SigningCommitments::deserialize(body).map_err(malformed)?;
                if self.commitments.insert(id, c).is_some() {
                    return Err(ProtocolError::faulty(from, "second commitment"));
                }
            }
            TAG_SHARE => {
                let s = round2::SignatureShare::deserialize(body).map_err(malformed)?;
                if self.shares.insert(id, s).is_some() {
                    return Err(ProtocolError::faulty(from, "second signature share"));
                }
            }
            _ => return Err(ProtocolError::faulty(from, "unknown message tag")),
        }
        Ok(())
    }
}

impl Protocol for Sign {
    type Output = Signature;

    fn poke(&mut self) -> Result<Action<Signature>, ProtocolError> {
        self.0.poke()
    }

    fn message(&mut self, from: PartyId, data: Vec<u8>) {
        self.0.message(from, data);
    }
}

impl Machine for SignCore {
    type Output = Signature;

    fn record(&mut self, from: PartyId, data: Vec<u8>) -> Result<(), ProtocolError> {
        self.file(from, &data)
    }

    fn advance(&mut self, out: &mut Outbox) -> Result<Option<Signature>, ProtocolError> {
        self.step(out)
    }
}
