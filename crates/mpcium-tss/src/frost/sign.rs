//! FROST signing (RFC 9591) as a sans-IO protocol, every signer acting as its own coordinator,
//! for any [`Suite`].
//!
//! Rounds (exactly `t + 1` signers):
//! 1. Each signer draws its nonce pair and broadcasts the commitments.
//! 2. With every commitment in, each signer builds the same signing package (commitments and
//!    message) and broadcasts its signature share.
//! 3. With every share in, each signer aggregates and verifies the signature under the signing
//!    key (the group key, or the key the suite's wrapper derived: an HD child, a BIP341 output
//!    key). If it does not verify, FROST's cheater detection checks every share against the
//!    signer's public share and the run aborts naming the signers whose shares are wrong. The
//!    output is the ciphersuite's 64-byte signature (`R ‖ S` for Ed25519, BIP340 for Taproot).
//!
//! Round 1 may be done ahead ([`Nonce::draw`], RFC 9591's preprocessing): each signer draws a
//! nonce pair before the message is known and hands out its commitments; a signature whose
//! signers all drew theirs ahead starts at round 2 ([`Sign::with_nonce`]). The message and the
//! signing key may be chosen after the commitments: the binding factors and the challenge hash
//! the signing key, the message and every commitment, which is what makes preprocessing safe
//! (and how `frost-secp256k1-tr` applies its BIP341 tweak after round 1). A nonce must sign once:
//! [`Nonce`] is consumed by [`Sign::with_nonce`], cannot be copied or serialized, and is zeroized
//! when dropped.

use std::collections::BTreeMap;

use frost_core::keys::{KeyPackage, PublicKeyPackage};
use frost_core::{CheaterDetection, Error, Identifier, SigningPackage, round1, round2};
use rand_core::OsRng;

use super::keyshare::KeyShare;
use super::{Suite, identifier, party_of, wire};
use crate::driver::{Driver, Machine, Outbox};
use crate::protocol::{Action, ExecutionId, PartyId, Protocol, ProtocolError};

const TAG_COMMITMENTS: u8 = 1;
const TAG_SHARE: u8 = 2;

/// A 64-byte Schnorr signature in the ciphersuite's standard encoding.
pub type Signature = [u8; 64];

/// One signer's run.
pub struct Sign<S: Suite>(Driver<SignCore<S>>);

/// A signer's nonce pair drawn before its signature (round 1 done ahead). Only the process that
/// drew it holds it: no `Clone`, no serialization, zeroized on drop (`frost-core`'s
/// `SigningNonces`), so one nonce cannot sign twice, not even after a restart.
pub struct Nonce<S: Suite> {
    nonces: round1::SigningNonces<S::Cs>,
    /// The commitments' encoding, kept from the draw: [`Sign::with_nonce`] compares the
    /// signer's own entry with it instead of parsing it again (a parse checks each point's
    /// subgroup, a scalar multiplication per point, which the signer's own points do not need).
    encoded: Vec<u8>,
}

impl<S: Suite> Nonce<S> {
    /// Draw a nonce pair for a later signature with `share` (or a key derived from it; the
    /// share only hedges the randomness, RFC 9591 §4.1) and return it with its commitments'
    /// encoding, which the signer hands to whoever will coordinate that signature.
    pub fn draw(share: &KeyShare<S>) -> Result<(Self, Vec<u8>), ProtocolError> {
        let (nonces, commitments) = round1::commit(share.key_package().signing_share(), &mut OsRng);
        let bytes = commitments.serialize().map_err(|e| ProtocolError::Internal(e.to_string()))?;
        Ok((Self { nonces, encoded: bytes.clone() }, bytes))
    }

    /// The encoding of this nonce's commitments (as [`draw`](Self::draw) returned it).
    pub fn commitments(&self) -> &[u8] {
        &self.encoded
    }
}

impl<S: Suite> std::fmt::Debug for Nonce<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Nonce(<secret>)")
    }
}

/// [`Sign`]'s state machine.
struct SignCore<S: Suite> {
    exec: ExecutionId,
    me: PartyId,
    signers: Vec<PartyId>,
    message: Vec<u8>,
    /// The packages of the key being signed for (tweaked by the caller where the suite says so).
    key_package: KeyPackage<S::Cs>,
    public_key_package: PublicKeyPackage<S::Cs>,
    nonces: Option<round1::SigningNonces<S::Cs>>,
    commitments: BTreeMap<Identifier<S::Cs>, round1::SigningCommitments<S::Cs>>,
    package: Option<SigningPackage<S::Cs>>,
    shares: BTreeMap<Identifier<S::Cs>, round2::SignatureShare<S::Cs>>,
    started: bool,
}

impl<S: Suite> Sign<S> {
    /// Check the signer set against `share` (exactly `t + 1` distinct committee members, this
    /// party included) and start signing `message` under the key of `packages`: `share`'s own
    /// FROST packages, or those of a key derived from it.
    pub(crate) fn start(
        exec: ExecutionId,
        share: &KeyShare<S>,
        signers: &[PartyId],
        message: &[u8],
        packages: (KeyPackage<S::Cs>, PublicKeyPackage<S::Cs>),
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
        let (key_package, public_key_package) = packages;
        Ok(Self(Driver::new(SignCore {
            exec,
            me: share.party(),
            signers: sorted,
            message: message.to_vec(),
            key_package,
            public_key_package,
            nonces: None,
            commitments: BTreeMap::new(),
            package: None,
            shares: BTreeMap::new(),
            started: false,
        })))
    }
}

impl<S: Suite> Sign<S> {
    /// Skip round 1: sign with `nonce`, drawn ahead by this signer, under `commitments`, every
    /// signer's commitments by party id (the encodings [`Nonce::draw`] returned), as the
    /// coordinator assigned them. The commitments must name exactly the signers and hold this
    /// signer's own unchanged. Call before the first `poke`.
    pub fn with_nonce(
        mut self,
        nonce: Nonce<S>,
        commitments: &BTreeMap<PartyId, Vec<u8>>,
    ) -> Result<Self, ProtocolError> {
        let core = self.0.machine_mut();
        if core.started {
            return Err(ProtocolError::InvalidInput("the run has started already".into()));
        }
        if !commitments.keys().eq(core.signers.iter()) {
            return Err(ProtocolError::InvalidInput(format!(
                "commitments for {:?}, signers {:?}",
                commitments.keys().collect::<Vec<_>>(),
                core.signers
            )));
        }
        let mut parsed = BTreeMap::new();
        for (party, bytes) in commitments {
            let c = if *party == core.me {
                // Its own, unchanged: the points it drew, already known to be valid.
                if *bytes != nonce.encoded {
                    return Err(ProtocolError::InvalidInput(
                        "this signer's commitments are not its nonce's".into(),
                    ));
                }
                *nonce.nonces.commitments()
            } else {
                round1::SigningCommitments::<S::Cs>::deserialize(bytes).map_err(|e| {
                    ProtocolError::InvalidInput(format!("malformed commitments of party {party}: {e}"))
                })?
            };
            let id = identifier::<S>(*party).map_err(|e| ProtocolError::Internal(e.to_string()))?;
            parsed.insert(id, c);
        }
        core.commitments = parsed;
        core.nonces = Some(nonce.nonces);
        core.started = true;
        Ok(self)
    }
}

impl<S: Suite> SignCore<S> {
    fn step(&mut self, out: &mut Outbox) -> Result<Option<Signature>, ProtocolError> {
        let me = identifier::<S>(self.me).map_err(|e| ProtocolError::Internal(e.to_string()))?;
        if !self.started {
            self.started = true;
            let (nonces, commitments) = round1::commit(self.key_package.signing_share(), &mut OsRng);
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
            let share = round2::sign(&package, &nonces, &self.key_package)
                .map_err(|e| ProtocolError::Internal(format!("signing: {e}")))?;
            out.broadcast(wire::seal(TAG_SHARE, &self.exec, &share.serialize()));
            self.shares.insert(me, share);
            self.package = Some(package);
        }
        if self.shares.len() < self.signers.len() {
            return Ok(None);
        }
        let package = self.package.as_ref().ok_or_else(|| ProtocolError::Internal("no package".into()))?;
        let signature = frost_core::aggregate_custom(
            package,
            &self.shares,
            &self.public_key_package,
            CheaterDetection::AllCheaters,
        )
        .map_err(|e| match e {
            Error::InvalidSignatureShare { culprits } => ProtocolError::Faulty {
                parties: culprits.iter().filter_map(party_of::<S>).collect(),
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
        if from == self.me || !self.signers.contains(&from) {
            return Err(ProtocolError::faulty(from, "message from a party that is not signing"));
        }
        let (tag, body) = wire::open(from, &self.exec, data)?;
        let id = identifier::<S>(from).map_err(|e| ProtocolError::Internal(e.to_string()))?;
        let malformed = |e: Error<S::Cs>| ProtocolError::faulty(from, format!("malformed message: {e}"));
        match tag {
            TAG_COMMITMENTS => {
                let c = round1::SigningCommitments::<S::Cs>::deserialize(body).map_err(malformed)?;
                if self.commitments.insert(id, c).is_some() {
                    return Err(ProtocolError::faulty(from, "second commitment"));
                }
            }
            TAG_SHARE => {
                let s = round2::SignatureShare::<S::Cs>::deserialize(body).map_err(malformed)?;
                if self.shares.insert(id, s).is_some() {
                    return Err(ProtocolError::faulty(from, "second signature share"));
                }
            }
            _ => return Err(ProtocolError::faulty(from, "unknown message tag")),
        }
        Ok(())
    }
}

impl<S: Suite> Protocol for Sign<S> {
    type Output = Signature;

    fn poke(&mut self) -> Result<Action<Signature>, ProtocolError> {
        self.0.poke()
    }

    fn message(&mut self, from: PartyId, data: Vec<u8>) {
        self.0.message(from, data);
    }

    /// The costliest step, aggregating and verifying, is a few hundred microseconds.
    fn long_steps(&self) -> bool {
        false
    }
}

impl<S: Suite> Machine for SignCore<S> {
    type Output = Signature;

    fn record(&mut self, from: PartyId, data: Vec<u8>) -> Result<(), ProtocolError> {
        self.file(from, &data)
    }

    fn advance(&mut self, out: &mut Outbox) -> Result<Option<Signature>, ProtocolError> {
        self.step(out)
    }
}
