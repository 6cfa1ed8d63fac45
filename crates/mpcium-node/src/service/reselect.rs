//! Quorum re-selection: what a coordinator does when a chosen participant cannot take part.
//!
//! Session starts are NATS requests that every participant's transport acknowledges on receipt
//! ([`crate::transport::Transport::announce`]): "no responders" (the process is gone) or no
//! acknowledgement within `START_ACK_TIMEOUT` (cut off) marks the participant absent and ends the
//! attempt at once. While a session runs, the coordinator watches the directory's absence marks
//! ([`crate::liveness`] probes every peer twice a second) and abandons a session one of whose
//! members went away, telling the others to stop. The signing path
//! ([`Service::sign`](super::Service::sign)) then runs the same request again with t+1 other
//! ready holders, within the request's deadline.
//!
//! Only absence leads to a re-run: an attempt whose failure is a timeout or an unavailable peer
//! *and* whose members include a node this node itself found absent. A failed protocol check,
//! a ban, a peer's refusal or a tampering verdict ends the request with its culprit named, as
//! before; a re-run never includes a node found absent during the request, and never a pair kept
//! apart by a ban (the signer choice avoids them).

use mpcium_api::ErrorCode;

use super::check::OwnRequest;
use super::{Failure, Service, session_id, session_members};
use crate::control::{Control, SessionStart};

tokio::task_local! {
    /// The acknowledgement subject of the client request the current task serves (set by the
    /// intake around a signing request), sent with each session start so the participants can
    /// hand the request back if this coordinator goes away (see
    /// [`crate::transport::HANDBACK_HEADER`]).
    pub(super) static HANDBACK: Option<String>;
}

fn handback() -> Option<String> {
    HANDBACK.try_with(|h| h.clone()).ok().flatten()
}

/// A failed attempt and the members found absent during it (empty: not an absence, no re-run).
pub(super) type Attempt = Result<super::Agreed, (Failure, Vec<String>)>;

/// Whether a failure can be the effect of an absent member (never a failed check or a refusal).
fn absence_kind(f: &Failure) -> bool {
    matches!(f.code, ErrorCode::PeerUnavailable | ErrorCode::SessionTimeout)
}

impl Service {
    /// Announce a session: each other member acknowledges the start, or the attempt ends at once
    /// naming the absent ones (the members that took the start are told to stop).
    pub(super) async fn announce_start(
        &self,
        start: &SessionStart,
        session: [u8; 32],
        others: &[String],
    ) -> Result<(), Failure> {
        let absent = self
            .transport
            .announce(session, others, Control::Start(start.clone()).encode(), handback().as_deref())
            .await
            .map_err(Failure::because(ErrorCode::PeerUnavailable))?;
        if absent.is_empty() {
            return Ok(());
        }
        super::audit::note_culprits(&absent);
        let reason = format!("{absent:?} did not acknowledge the session start (absent)");
        let took: Vec<String> = others.iter().filter(|o| !absent.contains(o)).cloned().collect();
        self.tell_to_stop(start, session, &took, &reason).await;
        Err(Failure::new(ErrorCode::PeerUnavailable, reason))
    }

    /// [`coordinate_attested`](Service::coordinate_attested), abandoned as soon as one of the session's members is
    /// found absent. A failure comes with the members found absent when it can be their effect.
    pub(super) async fn coordinate_watched(&self, start: SessionStart, own: Option<OwnRequest>) -> Attempt {
        let dir = self.transport.directory().clone();
        let others: Vec<String> = session_members(&start).into_iter().filter(|m| m != self.me()).collect();
        let gone = || others.iter().filter(|m| dir.is_absent(m)).cloned().collect::<Vec<_>>();
        let session = session_id(&start).map_err(|f| (f, Vec::new()))?;
        let mut changes = dir.absence_changes();
        let run = self.coordinate_attested(start.clone(), own);
        tokio::pin!(run);
        let abandoned = loop {
            tokio::select! {
                biased;
                outcome = &mut run => {
                    return outcome.map_err(|f| {
                        let gone = if absence_kind(&f) { gone() } else { Vec::new() };
                        (f, gone)
                    });
                }
                changed = changes.changed() => {
                    if changed.is_err() {
                        return run.await.map_err(|f| (f, Vec::new()));
                    }
                    let gone = gone();
                    if !gone.is_empty() {
                        break gone;
                    }
                }
            }
        };
        super::audit::note_culprits(&abandoned);
        let reason = format!("{abandoned:?} went away during the session");
        let live: Vec<String> = others.iter().filter(|m| !abandoned.contains(m)).cloned().collect();
        self.tell_to_stop(&start, session, &live, &reason).await;
        Err((Failure::new(ErrorCode::PeerUnavailable, reason), abandoned))
    }

    /// An abort notice to `members` for each protocol run of the session.
    async fn tell_to_stop(&self, start: &SessionStart, session: [u8; 32], members: &[String], reason: &str) {
        self.send_abort(start, session, members, &ErrorCode::PeerUnavailable, reason).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_absence_can_re_run() {
        for code in [ErrorCode::PeerUnavailable, ErrorCode::SessionTimeout] {
            assert!(absence_kind(&Failure::new(code, "x")));
        }
        for code in [
            ErrorCode::OperationAborted,
            ErrorCode::DataCorruption,
            ErrorCode::MessageVerification,
            ErrorCode::SessionDuplicate,
            ErrorCode::ResourceExhausted,
            ErrorCode::ConcurrencyLimit,
            ErrorCode::SigningFailure,
        ] {
            assert!(!absence_kind(&Failure::new(code.clone(), "x")), "{code:?}");
        }
    }
}
