//! The coordinator's side of a session: announce it, take part if this node is a member,
//! collect every member's outcome, and agree on one output with the members' attestations.

use std::time::Duration;

use mpcium_api::ErrorCode;

use super::check::OwnRequest;
use super::participant::connection_lost;
use super::{Agreed, Failure, Output, Service, done_id, peer_code, session_id, session_members, wallet_of};
use crate::control::{Control, SessionOp, SessionStart};
use crate::envelope::Kind;

impl Service {
    /// Announce a session to its participants, take part if this node is one, and wait for
    /// every participant's outcome. Returns the (agreed) output with the participants'
    /// attestations of it that verify.
    pub(super) async fn coordinate_attested(
        &self,
        start: SessionStart,
        own: Option<OwnRequest>,
    ) -> Result<Agreed, Failure> {
        let session = session_id(&start)?;
        let done = done_id(&session);
        let mut done_inbox = self.transport.open_session(done);
        let members = session_members(&start);
        let others: Vec<String> = members.iter().filter(|p| *p != self.me()).cloned().collect();
        super::audit::note_session(&members);
        // Acknowledged by each, or the attempt ends at once (`service/reselect.rs`).
        self.announce_start(&start, session, &others).await?;
        // One deadline for the whole session, this node's own part included: a coordinator whose
        // own part timed out on a dead peer must not then wait a second full timeout for it.
        let deadline = tokio::time::Instant::now() + self.cfg.session_timeout + Duration::from_secs(5);
        let mut outputs = std::collections::BTreeMap::new();
        let mut signatures = std::collections::BTreeMap::new();
        let mut key_infos = std::collections::BTreeMap::new();
        if members.iter().any(|p| p == self.me()) {
            // The coordinator verified the request when it pulled it.
            let mine = self.participate(&start, session, own).await;
            let made = self.made_keyinfos.take(&session);
            if let Err(f) = &mine {
                super::audit::note_culprits(&f.culprits);
            }
            if mine.is_ok() {
                key_infos.insert(self.me().to_owned(), made);
            }
            outputs.insert(self.me().to_owned(), mine);
        }
        // Done reports sent while this node's connection is down are lost: a signature stops.
        let epoch = self.transport.connection_epoch();
        let watch_connection = start.op == SessionOp::Sign;
        while outputs.len() < members.len() {
            let report = tokio::select! {
                report = tokio::time::timeout_at(deadline, done_inbox.recv()) => report,
                _ = self.transport.connection_lost(epoch), if watch_connection => return Err(connection_lost()),
            };
            match report {
                Ok(Some(m)) => {
                    if !members.contains(&m.envelope.sender) || m.envelope.kind != Kind::Control {
                        continue;
                    }
                    let decoded = Control::decode(&m.payload);
                    if let Err(e) = &decoded {
                        // Signed by a member, so its own fault: named, not waited out.
                        tracing::warn!(node = %m.envelope.sender, error = %e, "undecodable control message");
                        outputs.entry(m.envelope.sender.clone()).or_insert_with(|| {
                            Err(Failure::new(
                                ErrorCode::MessageFormat,
                                format!("{} sent an undecodable report: {e}", m.envelope.sender),
                            ))
                        });
                    }
                    if let Ok(Control::Done(report)) = decoded {
                        if report.ok && !outputs.contains_key(&m.envelope.sender) {
                            signatures.insert(m.envelope.sender.clone(), report.attestation.clone());
                            key_infos.insert(m.envelope.sender.clone(), report.key_infos.clone());
                            self.keep_offers(&start, &m.envelope.sender, report.nonces.clone());
                        }
                        let outcome = if report.ok {
                            report.output.ok_or_else(|| {
                                Failure::new(
                                    ErrorCode::MessageFormat,
                                    format!("{} reported success without an outcome", m.envelope.sender),
                                )
                            })
                        } else {
                            Err(Failure::new(
                                peer_code(&report.code.unwrap_or(ErrorCode::OperationAborted)),
                                report.reason,
                            ))
                        };
                        outputs.entry(m.envelope.sender.clone()).or_insert(outcome);
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    let missing: Vec<String> =
                        start.participants.iter().filter(|p| !outputs.contains_key(*p)).cloned().collect();
                    super::audit::note_culprits(&missing);
                    return Err(Failure::new(
                        ErrorCode::SessionTimeout,
                        format!("no outcome from {missing:?}"),
                    ));
                }
            }
        }
        // This node's own failure first when it names culprits: the reason the client reads
        // must not be chosen by another node (a peer could word it to blame an honest one).
        // A failure of its own that blames nobody (it heard from everyone, the run still did not
        // finish) says less than a peer's that names who stayed silent.
        // A failure that can lead to a re-run (a lost connection, a timeout, an absent peer:
        // `service/sign.rs`) never hides another member's failed check: the request must not run
        // again around a check that failed (selective-failure probing).
        let check_failed = |n: &String, o: &Result<Output, Failure>| {
            n != self.me() && o.as_ref().is_err_and(|f| !may_rerun(f))
        };
        let a_peer_check_failed = outputs.iter().any(|(n, o)| check_failed(n, o));
        if let Some(Err(f)) = outputs.get(self.me())
            && (f.names_culprits() || outputs.iter().all(|(n, o)| n == self.me() || o.is_ok()))
            && !(may_rerun(f) && a_peer_check_failed)
        {
            return Err(Failure::new(f.code.clone(), format!("{}: {}", self.me(), f.reason)));
        }
        if let Some((node, Err(f))) = outputs.iter().find(|(n, o)| check_failed(n, o)) {
            return Err(Failure::of_member(node, f));
        }
        let mut agreed: Option<Output> = None;
        // This node's own output is among the agreed ones when it took part: it signs the agreed
        // statement below, once.
        let mine = outputs.get(self.me()).is_some_and(Result::is_ok);
        for (node, outcome) in outputs {
            match outcome {
                // Its own failure is not a member's: `Failure::failed_member` never names this node.
                Err(f) if node == self.me() => {
                    return Err(Failure::new(f.code, format!("{node}: {}", f.reason)));
                }
                Err(f) => return Err(Failure::of_member(&node, &f)),
                Ok(v) => match &agreed {
                    None => agreed = Some(v),
                    Some(a) if *a == v => {}
                    Some(_) => {
                        return Err(Failure::new(
                            ErrorCode::DataCorruption,
                            format!("{node} reports a different result"),
                        ));
                    }
                },
            }
        }
        let output =
            agreed.ok_or_else(|| Failure::new(ErrorCode::InsufficientParticipants, "no participants"))?;
        if matches!(start.op, SessionOp::Keygen | SessionOp::Reshare) {
            self.store_signed_keyinfos(&wallet_of(&start), key_infos).await?;
        }
        let attestations = self.verified_attestations(&start, &output, signatures, mine);
        Ok(Agreed { output, attestations })
    }
}

/// Whether a failure is one the signing path may run again after (`service/sign.rs`): never a
/// failed check, a ban, a refusal or a tampering verdict.
fn may_rerun(f: &Failure) -> bool {
    matches!(f.code, ErrorCode::NetworkConnection | ErrorCode::SessionTimeout | ErrorCode::PeerUnavailable)
}

/// Whether a request's final failure may be gone on another delivery (`service/intake.rs` gives
/// it back to JetStream instead of answering): re-runnable, and naming nobody. A silent member
/// named by a timeout is answered at once, as a failed check is.
pub(super) fn is_transient(f: &Failure) -> bool {
    may_rerun(f) && !f.names_culprits()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unattributed_re_runnable_failure_is_transient() {
        for code in [ErrorCode::NetworkConnection, ErrorCode::SessionTimeout, ErrorCode::PeerUnavailable] {
            assert!(is_transient(&Failure::new(code.clone(), "x")), "{code:?}");
            let named = Failure { culprits: vec!["node2".into()], ..Failure::new(code.clone(), "x") };
            assert!(!is_transient(&named), "{code:?} naming a culprit");
        }
        for code in [
            ErrorCode::MessageVerification,
            ErrorCode::DataCorruption,
            ErrorCode::OperationAborted,
            ErrorCode::NotMajority,
            ErrorCode::SessionDuplicate,
            ErrorCode::KeyNotFound,
        ] {
            assert!(!is_transient(&Failure::new(code.clone(), "x")), "{code:?}");
        }
    }

    #[test]
    fn a_members_failure_passed_on_names_the_member_and_its_code() {
        let theirs = Failure::new(ErrorCode::InvalidSessionType, "wallet not warm");
        let passed = Failure::of_member("node2", &theirs);
        assert_eq!(passed.failed_member(), Some(("node2", &ErrorCode::InvalidSessionType)));
        assert_eq!(passed.code, ErrorCode::InvalidSessionType);
        assert_eq!(passed.reason, "node2: wallet not warm");
        assert_eq!(theirs.failed_member(), None, "a node's own failure names no member");
        let aborted: Failure = crate::session::SessionError::PeerAborted {
            by: "node1".into(),
            code: ErrorCode::ResourceExhausted,
            reason: "busy".into(),
            culprits: Vec::new(),
        }
        .into();
        assert_eq!(aborted.failed_member(), Some(("node1", &ErrorCode::ResourceExhausted)));
    }
}
