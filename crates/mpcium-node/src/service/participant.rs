//! A participant's side of a session: take a session start, check the announcement and the
//! client's request it carries, run this node's part of the protocol, tell the others at once
//! when it fails, and report the outcome to the coordinator.

use std::time::Duration;

use mpcium_api::ErrorCode;

use super::check::{self, OwnRequest};
use super::{Failure, Output, Service, done_id, keygen, session_id, session_members};
use crate::control::{AbortNotice, Control, DoneReport, SessionOp, SessionStart};
use crate::drain::Phase;
use crate::envelope::Kind;
use crate::transport::StartRequest;

/// The sequence number of an abort notice sent outside the protocol run (session starts use
/// `u32::MAX`; protocol messages count up from 0).
pub(super) const ABORT_SEQ: u32 = u32::MAX - 1;

impl Service {
    pub(super) async fn on_start(&self, start: StartRequest) {
        let Control::Start(s) = start.control else { return };
        if start.envelope.sender != s.coordinator {
            tracing::warn!(sender = %start.envelope.sender, "session start not sent by its coordinator; ignored");
            return;
        }
        let outcome = self.participate(&s, start.envelope.session, None).await;
        let key_infos = self.made_keyinfos.take(&start.envelope.session);
        let nonces = self.made_offers.take(&start.envelope.session);
        let report = match outcome {
            Ok(output) => DoneReport {
                ok: true,
                code: None,
                reason: String::new(),
                attestation: self.attest(&s, &output),
                output: Some(output),
                key_infos,
                nonces,
            },
            Err(f) => DoneReport {
                ok: false,
                code: Some(f.code),
                reason: f.reason,
                output: None,
                attestation: String::new(),
                key_infos: Vec::new(),
                nonces: Vec::new(),
            },
        };
        let report = Control::Done(report).encode();
        let send = || async {
            if let Err(e) = self
                .transport
                .send_public(
                    Kind::Control,
                    done_id(&start.envelope.session),
                    0,
                    std::slice::from_ref(&s.coordinator),
                    report.clone(),
                )
                .await
            {
                tracing::warn!(error = %e, "could not report to the coordinator");
            }
        };
        let epoch = self.transport.connection_epoch();
        send().await;
        // A report written just before this node's NATS connection dropped may be lost with the
        // connection: sent again once it is back (the coordinator keeps the first it gets).
        if s.op == SessionOp::Sign
            && tokio::time::timeout(RESEND_WINDOW, self.transport.connection_lost(epoch)).await.is_ok()
        {
            self.transport.connected().await;
            tracing::info!("the NATS connection dropped right after a done report; sending it again");
            send().await;
        }
    }

    /// This node's part of a session: verify the client's request (unless this node did as the
    /// coordinator: `own`), check the announcement against it, then run the protocol. The
    /// outcome is recorded in the audit trail.
    pub(super) async fn participate(
        &self,
        start: &SessionStart,
        session: [u8; 32],
        own: Option<OwnRequest>,
    ) -> Result<Output, Failure> {
        let started_at_ms = crate::registry::now_ms();
        if !matches!(start.op, SessionOp::Presign | SessionOp::KeyPool) {
            self.key_pool.note_client_work(std::time::Instant::now());
        }
        let mut policy = Vec::new();
        let outcome = self.participate_unrecorded(start, session, own, &mut policy).await;
        self.audit_session(start, session, &outcome, policy, started_at_ms);
        outcome
    }

    async fn participate_unrecorded(
        &self,
        start: &SessionStart,
        session: [u8; 32],
        own: Option<OwnRequest>,
        policy: &mut Vec<String>,
    ) -> Result<Output, Failure> {
        if session_id(start)? != session {
            return Err(Failure::new(
                ErrorCode::MessageVerification,
                "session id does not match its announcement",
            ));
        }
        // Past the drain deadline the others hear "aborted" at once (the notice below) instead of
        // timing out on this node. A signature whose node lost its NATS connection meanwhile
        // stops the same way, with `ERROR_NETWORK_CONNECTION`: messages to it may have been
        // dropped, and the coordinator runs the request again (`service/sign.rs`).
        let epoch = self.transport.connection_epoch();
        let watch_connection = matches!(start.op, SessionOp::Sign | SessionOp::Presign);
        let outcome = tokio::select! {
            outcome = self.participate_checked(start, session, own, policy) => outcome,
            _ = self.drain.reached(Phase::Abandoning) => Err(shutting_down()),
            _ = self.transport.connection_lost(epoch), if watch_connection => Err(connection_lost()),
        };
        if let Err(f) = &outcome
            && !f.peers_told
        {
            // Failed before or after the protocol: stop the others now instead of letting
            // them wait for this node until their session times out.
            let others: Vec<String> = session_members(start).into_iter().filter(|p| p != self.me()).collect();
            self.send_abort(start, session, &others, &f.code, &f.reason).await;
        }
        outcome
    }

    /// Tell `members` to stop each protocol run of the session, with `code` and `reason`.
    pub(super) async fn send_abort(
        &self,
        start: &SessionStart,
        session: [u8; 32],
        members: &[String],
        code: &ErrorCode,
        reason: &str,
    ) {
        if members.is_empty() {
            return;
        }
        let notice = AbortNotice { code: code.clone(), reason: reason.to_owned(), culprits: vec![] };
        let abort = Control::Abort(notice).encode();
        for run in protocol_runs(start, session) {
            if let Err(e) =
                self.transport.send_public(Kind::Control, run, ABORT_SEQ, members, abort.clone()).await
            {
                tracing::warn!(error = %e, "could not send an abort notice");
            }
        }
    }

    /// `policy` gets the approval rules that applied to the request, once it verified here.
    async fn participate_checked(
        &self,
        start: &SessionStart,
        session: [u8; 32],
        own: Option<OwnRequest>,
        policy: &mut Vec<String>,
    ) -> Result<Output, Failure> {
        if !session_members(start).iter().any(|p| p == self.me()) {
            return Err(Failure::new(ErrorCode::ParticipantNotFound, "not a participant"));
        }
        self.metrics.session_started();
        // Open before the checks: the others' first messages wait here, not in the transport's
        // short-lived buffer. A keygen opens one inbox per protocol run instead.
        let per_run = matches!(start.op, SessionOp::Keygen | SessionOp::KeyPool);
        let mut inbox = (!per_run).then(|| self.transport.open_session(session));
        if start.pooled_key.is_some() && start.op != SessionOp::Keygen {
            return Err(Failure::new(
                ErrorCode::MessageVerification,
                "only a keygen hands over a pooled key",
            ));
        }
        if start.op == SessionOp::KeyPool {
            return self.key_pool_part(start, session).await;
        }
        if start.op == SessionOp::Presign {
            let inbox = inbox.as_mut().expect("opened above");
            // Another owner's refill is not client work (it is in the drain's count, not in the
            // pool's idea of busy: `PresignPool::refill_sessions`).
            let _joined = (start.coordinator != self.me()).then(|| self.pool.joined_presign());
            return self.presign_part(start, session, inbox).await;
        }
        let coordinating = own.is_some();
        let request = self.verified_request(start, own)?;
        self.admit_session(start, &request)?;
        match (request, inbox.as_mut()) {
            (OwnRequest::Keygen(req), _) => {
                let checked = self.check_keygen_start(start, &req).await?;
                self.keygen_part(start, checked, session).await
            }
            (OwnRequest::Sign(req, known), Some(inbox)) => {
                // Verified here (or by this node as the coordinator): the approval rules by value
                // were evaluated by this node itself, whatever the coordinator did.
                policy.extend_from_slice(req.policy().rules());
                check::request_id_names(start, &req.tx_id)?;
                let info = match known {
                    // The coordinator's own part: it claimed the request and loaded the key info
                    // when it took it.
                    Some(info) if coordinating => *info,
                    _ => {
                        // Two registry reads at once (each a NATS round trip); the claim's
                        // verdict comes first.
                        let kind = super::key_type_of(&req.key_type)?;
                        let (claim, info) = tokio::join!(
                            self.check_sign_claim(start, &req),
                            self.load_keyinfo(kind, &req.wallet_id)
                        );
                        claim?;
                        info?
                    }
                };
                self.sign_part(start, &req, session, inbox, info).await
            }
            (OwnRequest::Reshare(req), Some(inbox)) => {
                let checked = self.check_reshare_start(start, req).await?;
                self.reshare_part(start, checked, session, inbox).await
            }
            _ => Err(Failure::new(ErrorCode::InvalidSessionType, "request does not match the operation")),
        }
    }
}

/// The failure of work abandoned at shutdown.
pub(super) fn shutting_down() -> Failure {
    Failure::new(ErrorCode::OperationAborted, "the node is shutting down")
}

/// How long after sending a done report a dropped NATS connection makes this node send it again.
const RESEND_WINDOW: Duration = Duration::from_secs(1);

/// The failure of a session whose node lost its NATS connection while it ran.
pub(super) fn connection_lost() -> Failure {
    Failure::new(
        ErrorCode::NetworkConnection,
        "this node's NATS connection dropped during the session; messages to it may be lost",
    )
}

/// The ids of the protocol runs of an announced session: its own id, or for a keygen one per
/// key (abort notices go to each).
pub(super) fn protocol_runs(start: &SessionStart, session: [u8; 32]) -> Vec<[u8; 32]> {
    match start.op {
        SessionOp::Keygen | SessionOp::KeyPool => {
            keygen::KEYGEN_KINDS.into_iter().map(|k| keygen::run_id(session, k)).collect()
        }
        _ => vec![session],
    }
}
