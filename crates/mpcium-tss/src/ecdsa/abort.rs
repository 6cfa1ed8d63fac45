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
/// A ban comes first: dkls23 marks with [`AbortKind::BanCounterparty`] every failed check whose
/// outcome depends on the reused OT correlations (in 0.6.2 only signing does: the OT-extension
/// consistency check and the multiplication check of phase 2, the multiplication, gamma-u and
/// gamma-v checks of phase 3). Each pass or fail of such a check tells the counterparty a bit of
/// our OT secret, so the party must never take part in a DKLs23 session of this key again:
/// [`ProtocolError::Ban`]. The two reasons that exist only for such checks are bans even if a
/// later dkls23 were to report them as recoverable. The multiplication check of the DKG and
/// of refresh runs on fresh OT and stays an ordinary fault, as dkls23 reports it.
///
/// dkls23 reports most other failed checks with the counterparty inside the reason. A few
/// checks (polynomial consistency of the DKG, a trivial key, the final signature) cannot tell
/// who cheated: those blame every peer of the run, so the caller never silently retries with
/// any of them.
pub(crate) fn map_abort(abort: Abort, peers: &[PartyId]) -> ProtocolError {
    let reason = abort.description();
    let banned = match (&abort.kind, &abort.reason) {
        (AbortKind::BanCounterparty(p), _) => Some(*p),
        (
            AbortKind::Recoverable,
            AbortReason::OtConsistencyCheckFailed { counterparty }
            | AbortReason::GammaUInconsistency { counterparty },
        ) => Some(*counterparty),
        _ => None,
    };
    if let Some(p) = banned {
        // Banning ourselves would be a bug in the engine, not a peer's doing.
        if p == abort.index {
            return ProtocolError::Internal(format!("dkls23 asked to ban this party itself: {reason}"));
        }
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
        | AbortReason::MultiplicationVerificationFailed { counterparty, .. }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn index(i: u8) -> PartyIndex {
        PartyIndex::new(i).unwrap()
    }

    #[test]
    fn every_ban_kind_becomes_a_ban_naming_the_counterparty() {
        let reasons = [
            AbortReason::OtConsistencyCheckFailed { counterparty: index(3) },
            AbortReason::GammaUInconsistency { counterparty: index(3) },
            AbortReason::MultiplicationVerificationFailed { counterparty: index(3), detail: "x".into() },
        ];
        for reason in reasons {
            let err = map_abort(Abort::ban(index(1), index(3), reason.clone()), &[2, 3]);
            assert_eq!(err, ProtocolError::Ban { parties: vec![3], reason: reason.to_string() });
            assert!(err.is_ban());
            assert_eq!(err.culprits(), &[3]);
        }
    }

    #[test]
    fn reasons_only_ot_checks_give_are_bans_even_if_reported_recoverable() {
        for reason in [
            AbortReason::OtConsistencyCheckFailed { counterparty: index(2) },
            AbortReason::GammaUInconsistency { counterparty: index(2) },
        ] {
            let err = map_abort(Abort::recoverable(index(1), reason), &[2, 3]);
            assert!(err.is_ban(), "{err}");
            assert_eq!(err.culprits(), &[2]);
        }
    }

    #[test]
    fn a_recoverable_multiplication_failure_is_an_ordinary_fault() {
        // The DKG's and refresh's multiplication setup runs on fresh OT: nothing leaks.
        let reason =
            AbortReason::MultiplicationVerificationFailed { counterparty: index(2), detail: "x".into() };
        let err = map_abort(Abort::recoverable(index(1), reason), &[2, 3]);
        assert!(!err.is_ban());
        assert!(matches!(&err, ProtocolError::Faulty { parties, .. } if parties == &[2]), "{err}");
    }

    #[test]
    fn a_ban_of_oneself_is_an_internal_error() {
        let reason = AbortReason::OtConsistencyCheckFailed { counterparty: index(1) };
        let err = map_abort(Abort::ban(index(1), index(1), reason), &[2]);
        assert!(matches!(err, ProtocolError::Internal(_)), "{err}");
    }
}
