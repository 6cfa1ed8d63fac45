//! What the service records in the audit trail (`crate::audit`): one entry per request this node
//! coordinated (from the intake, once its answer is settled) and one per session it took part
//! in (from [`Service::participate`]). Records are queued, never awaited: the request path does
//! not wait for JetStream.
//!
//! A request's sessions are counted, and their members and named culprits gathered, through a
//! task-local [`RequestTrace`] the intake puts around the request's work (sessions run in the
//! request's own task).

use std::sync::{Arc, Mutex};

use mpcium_api::ErrorCode;

use super::{Failure, Output, Service, session_members, wallet_of};
use crate::audit::{AuditRecord, Outcome, RecordKind};
use crate::control::{SessionOp, SessionStart};
use crate::registry::now_ms;

/// The sessions a coordinator ran for one request.
#[derive(Debug, Default, Clone)]
pub(super) struct RequestTrace {
    /// Sessions announced.
    pub(super) sessions: u32,
    /// The members of the last one.
    pub(super) participants: Vec<String>,
    /// Nodes named as faulty, banned, silent or absent by this node along the way.
    pub(super) culprits: Vec<String>,
    /// The approval rules that applied to the request (once it verified).
    pub(super) policy: Vec<String>,
}

tokio::task_local! {
    static TRACE: Arc<Mutex<RequestTrace>>;
}

/// Run `work` with a fresh trace; returns its output and the trace.
pub(super) async fn traced<F: std::future::Future>(work: F) -> (F::Output, RequestTrace) {
    let trace = Arc::new(Mutex::new(RequestTrace::default()));
    let out = TRACE.scope(trace.clone(), work).await;
    let trace = trace.lock().map(|t| t.clone()).unwrap_or_default();
    (out, trace)
}

fn with_trace(f: impl FnOnce(&mut RequestTrace)) {
    let _ = TRACE.try_with(|t| {
        if let Ok(mut t) = t.lock() {
            f(&mut t);
        }
    });
}

/// A session announced for the current request (no-op outside a traced request, e.g. a
/// presignature pool refill).
pub(super) fn note_session(members: &[String]) {
    with_trace(|t| {
        t.sessions += 1;
        t.participants = members.to_vec();
    });
}

/// Nodes named during the current request.
pub(super) fn note_culprits(culprits: &[String]) {
    with_trace(|t| {
        for c in culprits {
            if !t.culprits.contains(c) {
                t.culprits.push(c.clone());
            }
        }
    });
}

/// The approval rules that applied to the current request.
pub(super) fn note_policy(rules: &[String]) {
    with_trace(|t| t.policy = rules.to_vec());
}

/// The public fields of a client request, as the intake read them.
pub(super) struct RequestFacts {
    pub(super) operation: &'static str,
    pub(super) request_id: String,
    pub(super) wallet_id: String,
    pub(super) tx_id: Option<String>,
    pub(super) key_type: Option<String>,
    pub(super) client_id: Option<String>,
    pub(super) started_at_ms: u64,
}

fn request_key_type(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(body).ok()?.get("key_type")?.as_str().map(str::to_owned)
}

impl RequestFacts {
    /// Facts of a request: `key_type` read from its body when it has one.
    pub(super) fn new(operation: &'static str, body: &[u8], client: Option<&mpcium_api::ClientId>) -> Self {
        Self {
            operation,
            request_id: String::new(),
            wallet_id: String::new(),
            tx_id: None,
            key_type: request_key_type(body),
            client_id: client.map(|c| c.as_str().to_owned()),
            started_at_ms: now_ms(),
        }
    }
}

impl Service {
    /// Record a request this node coordinated.
    pub(super) fn audit_request(
        &self,
        facts: RequestFacts,
        trace: RequestTrace,
        outcome: Outcome,
        error: Option<(&ErrorCode, &str)>,
    ) {
        self.audit.record(AuditRecord {
            kind: RecordKind::Request,
            operation: facts.operation.to_owned(),
            request_id: facts.request_id,
            session_id: None,
            wallet_id: facts.wallet_id,
            tx_id: facts.tx_id,
            key_type: facts.key_type,
            client_id: facts.client_id,
            coordinator: self.me().to_owned(),
            participants: trace.participants,
            attempts: trace.sessions,
            outcome,
            error_code: error.map(|(c, _)| c.as_str().to_owned()),
            error_reason: error.map(|(_, r)| r.to_owned()),
            culprits: trace.culprits,
            policy: trace.policy,
            started_at_ms: facts.started_at_ms,
            finished_at_ms: now_ms(),
        });
    }

    /// Record this node's part in a session (`policy`: the approval rules that applied to its
    /// request, as this node evaluated them).
    pub(super) fn audit_session(
        &self,
        start: &SessionStart,
        session: [u8; 32],
        outcome: &Result<Output, Failure>,
        policy: Vec<String>,
        started_at_ms: u64,
    ) {
        let body = start.request_bytes().unwrap_or_default();
        let request = serde_json::from_slice::<serde_json::Value>(&body).ok();
        let field = |name: &str| {
            request.as_ref().and_then(|v| v.get(name)).and_then(|v| v.as_str()).map(str::to_owned)
        };
        let operation = match start.op {
            SessionOp::Keygen => "keygen",
            SessionOp::Sign => "sign",
            SessionOp::Presign => "presign",
            SessionOp::Reshare => "reshare",
            SessionOp::KeyPool => "key_pool",
        };
        let (result, error_code, error_reason, culprits) = match outcome {
            Ok(_) => (Outcome::Success, None, None, Vec::new()),
            Err(f) => (
                Outcome::Failure,
                Some(f.code.as_str().to_owned()),
                Some(f.reason.clone()),
                f.culprits.clone(),
            ),
        };
        self.audit.record(AuditRecord {
            kind: RecordKind::Session,
            operation: operation.to_owned(),
            request_id: start.request_id.clone(),
            session_id: Some(hex::encode(session)),
            wallet_id: wallet_of(start),
            tx_id: if start.op == SessionOp::Sign { field("tx_id") } else { None },
            key_type: field("key_type"),
            client_id: start.client_id.clone(),
            coordinator: start.coordinator.clone(),
            participants: session_members(start),
            attempts: 1,
            outcome: result,
            error_code,
            error_reason,
            culprits,
            policy,
            started_at_ms,
            finished_at_ms: now_ms(),
        });
    }
}
