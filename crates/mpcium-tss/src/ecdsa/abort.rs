//! Translation between our party ids and dkls23's, and from dkls23's abort reports to
//! [`ProtocolError`].

use dkls23::protocols::{Abort, AbortKind, AbortReason, PartyIndex};

use crate::protocol::{PartyId, ProtocolError};

/// dkls23 numbers parties with a non-zero `u8`; ours are `u16`, so committees are capped at 255.
pub(crate) fn to_index(p: PartyId) -> Result<PartyIndex, ProtocolError> {
    u8::try_from(p)
        .ok()
        .and_then(|b| PartyIndex::new(b).ok())
        .ok_or_else(|| ProtocolError::InvalidInput(format!("party id {p} is outside 1..=255")))
}

pub(crate) fn to_id(i: PartyIndex) -> PartyId {
    PartyId::from(i.as_u8())
}

/// Map a dkls23 abort to our error, naming the peer it blames.
///
/// dkls23 reports most failed checks with the counterparty inside the reason. A few checks
/// (polynomial consistency of the DKG, a trivial key, the final signature) cannot tell who cheated:
/// those blame every peer of the run, so the caller never silently retries with any of them.
pub(crate) fn map_abort(abort: Abort, peers: &[PartyId]) -> ProtocolError {
    let reason = abort.description();
    if let AbortKind::BanCounterparty(p) = abort.kind {
        return ProtocolError::Ban { parties: vec![to_id(p)], reason };
    }
    let blamed = match &abort.reason {
        AbortReason::UnexpectedSender { sender } | AbortReason::DuplicateSender { sender } => Some(*sender),
        AbortReason::MissingMessageFromParty { party }
        | AbortReason::MissingCommittedPoint { party }
        | AbortReason::ChainCodeCommitmentFailed { party } => Some(*party),
        AbortReason::SessionBindingMismatch { counterparty }
        | AbortReason::ProofVerificationFailed { counterparty }
        | AbortReason::CommitmentMismatch { counterparty }
        | AbortReason::TrivialInstancePoint { counterparty }
        | AbortReason::OtConsistencyCheckFailed { counterparty }
        | AbortReason::MultiplicationVerificationFailed { counterparty, .. }
        | AbortReason::GammaUInconsistency { counterparty }
        | AbortReason::ZeroShareDecommitFailed { counterparty } => Some(*counterparty),
        AbortReason::PolynomialInconsistency
        | AbortReason::TrivialPublicKey
        | AbortReason::TrivialKeyShare
        | AbortReason::SignatureVerificationFailed
        | AbortReason::ZeroDenominator => {
            return ProtocolError::Faulty { parties: peers.to_vec(), reason };
        }
        _ => None,
    };
    match blamed {
        // A check on our own contribution cannot be a peer's fault.
        Some(p) if p != abort.index => ProtocolError::faulty(to_id(p), reason),
        _ => ProtocolError::Internal(format!("dkls23: {reason}")),
    }
}
