//! The node's request handling: the coordinator side (pull a client request from JetStream,
//! check it, pick the participants, announce the sessions, collect the outcomes, publish one
//! result event, then ack) and the participant side (check the announced request itself, run the
//! protocol, store the share, report to the coordinator).
//!
//! Every request is checked in full before any work (JSON, ids, sizes, initiator signature,
//! authorization) and every failure is answered with an error event carrying the code of the
//! place it happened: nothing is dropped silently (the original drops signing requests with a
//! bad signature, docs/wire.md §8.2).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
/// The sequence number of an abort notice sent outside the protocol run (session starts use
/// `u32::MAX`; protocol messages count up from 0).
const ABORT_SEQ: u32 = u32::MAX - 1;

/// How long a starting node waits for t+1 ready nodes before it pulls requests.
const QUORUM_WAIT: Duration = Duration::from_secs(30);

/// The core NATS subject of reshare requests (the original's).
pub const RESHARE_SUBJECT: &str = "mpc:reshare";

use mpcium_api::{AuthorizationPolicy, ErrorCode, SigningMode};
use mpcium_store::{ShareKind, Store};
use mpcium_tss::{ExecutionContext, ExecutionId, KeyType, Operation, PartyId};
use tokio::sync::Semaphore;

use crate::control::{AbortNotice, Control, DoneReport, SessionOp, SessionOutput as Output, SessionStart};
use crate::drain::{Drain, Phase};
use crate::envelope::Kind;
use crate::health::Metrics;
use crate::presign::{PresignPool, PresignSettings};
use crate::registry::{KeyInfo, Registry};
use crate::session::{SessionError, SessionSpec};
use crate::transport::{StartRequest, Transport};

mod attest;
mod bans;
mod check;
mod intake;
mod keygen;
mod keyinfo;
mod presign;
mod quorum;
mod reselect;
mod reshare;
mod sign;

use check::OwnRequest;
pub use check::old_key_digest;
pub use keyinfo::{SignedKeyInfo, statement as keyinfo_statement};

/// What the service needs to know and own.
pub struct ServiceConfig {
    /// t of new keys (`mpc_threshold`).
    pub threshold: u32,
    /// The cluster's HD chain code.
    pub chain_code: [u8; 32],
    /// The initiator's public key.
    pub initiator: mpcium_api::verify::PublicKey,
    /// Authorizer rules.
    pub authorization: AuthorizationPolicy,
    /// `security.strict_requests`.
    pub strict_requests: bool,
    /// `max_concurrent_keygen`.
    pub max_concurrent_keygen: usize,
    /// `max_concurrent_signing`.
    pub max_concurrent_signing: usize,
    /// `limits.max_request_bytes`.
    pub max_request_bytes: usize,
    /// How long one protocol session may take.
    pub session_timeout: Duration,
    /// `presign.*`: the ECDSA presignature pool.
    pub presign: PresignSettings,
    /// `nats.replicas`: copies of the request and result streams and of the request consumers
    /// in the NATS cluster (see [`crate::replicas`]).
    pub replicas: usize,
}

/// The running request service of one node.
pub struct Service {
    cfg: ServiceConfig,
    js: jetstream::Context,
    registry: Registry,
    transport: Transport,
    store: Arc<Store>,
    keygen_slots: Arc<Semaphore>,
    signing_slots: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    pool: PresignPool,
    drain: Drain,
    made_keyinfos: keyinfo::MadeKeyInfos,
}

/// A session's agreed output and the participants' attestations of it that verify.
pub(crate) struct Agreed {
    output: Output,
    attestations: Vec<mpcium_api::Attestation>,
}

/// A failure with the wire code of where it happened.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The wire error code.
    pub code: ErrorCode,
    /// The reason text for the client.
    pub reason: String,
    /// Whether the session's other members already know (the session layer sent them an
    /// abort notice, or the failure came from one).
    peers_told: bool,
    /// Whether this node's own run named culprits (a failed check or who stayed silent).
    names_culprits: bool,
}

impl Failure {
    fn new(code: ErrorCode, reason: impl Into<String>) -> Self {
        Self { code, reason: reason.into(), peers_told: false, names_culprits: false }
    }
}

impl From<SessionError> for Failure {
    fn from(e: SessionError) -> Self {
        let code = match &e {
            SessionError::Timeout { .. } => ErrorCode::SessionTimeout,
            SessionError::Faulty { .. } | SessionError::Banned { .. } => ErrorCode::OperationAborted,
            // The code of the node that stopped the session, so the coordinator sees the cause.
            SessionError::PeerAborted { code, .. } => peer_code(code),
            SessionError::Invalid(_) => ErrorCode::SessionInitialization,
            SessionError::Transport(_) => ErrorCode::PeerUnavailable,
        };
        let names_culprits = !e.culprits().is_empty();
        Self { code, reason: e.to_string(), peers_told: true, names_culprits }
    }
}

/// A code a peer reported: one of the wire's known codes, or `ERROR_OPERATION_ABORTED` (a peer
/// does not get to put free text where clients and metrics expect a code).
fn peer_code(code: &str) -> ErrorCode {
    match ErrorCode::from_wire(code) {
        ErrorCode::Other(_) => ErrorCode::OperationAborted,
        known => known,
    }
}

fn curve_name(kind: KeyType) -> &'static str {
    match kind {
        KeyType::Secp256k1 => "ecdsa",
        KeyType::Ed25519 => "eddsa",
    }
}

fn share_kind(kind: KeyType) -> ShareKind {
    match kind {
        KeyType::Secp256k1 => ShareKind::Ecdsa,
        KeyType::Ed25519 => ShareKind::Eddsa,
    }
}

pub use crate::transport::done_id;

/// Party ids of a committee: position (1-based) in the sorted node id list.
fn party_ids(committee: &[String], nodes: &[String]) -> Result<Vec<PartyId>, Failure> {
    let mut sorted = committee.to_vec();
    sorted.sort();
    nodes
        .iter()
        .map(|n| {
            sorted.iter().position(|c| c == n).map(|i| (i + 1) as PartyId).ok_or_else(|| {
                Failure::new(ErrorCode::ParticipantNotFound, format!("{n} is not in the committee"))
            })
        })
        .collect()
}

impl Service {
    /// Assemble the service.
    pub fn new(
        cfg: ServiceConfig,
        js: jetstream::Context,
        registry: Registry,
        transport: Transport,
        store: Arc<Store>,
    ) -> Arc<Self> {
        let keygen_slots = Arc::new(Semaphore::new(cfg.max_concurrent_keygen.max(1)));
        let signing_slots = Arc::new(Semaphore::new(cfg.max_concurrent_signing.max(1)));
        let metrics = Arc::new(Metrics::default());
        let pool = PresignPool::new(cfg.presign.clone());
        let service = Arc::new(Self {
            cfg,
            js,
            registry,
            transport,
            store,
            keygen_slots,
            signing_slots,
            metrics,
            pool,
            drain: Drain::new(),
            made_keyinfos: Default::default(),
        });
        service.count_bans();
        service
    }

    /// The service's counters (for `/metrics`).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The service's shutdown switch (see [`crate::drain`]).
    pub fn drainer(&self) -> Drain {
        self.drain.clone()
    }

    fn mode(&self) -> SigningMode {
        if self.cfg.strict_requests { SigningMode::Strict } else { SigningMode::Compatible }
    }

    fn me(&self) -> &str {
        self.transport.directory().me()
    }

    /// Create the client-facing streams if absent (same configs as the Go node, with
    /// `nats.replicas` copies); an existing stream with another replica count is updated in
    /// place, the rest of its configuration kept.
    pub async fn ensure_streams(&self) -> Result<(), crate::replicas::ReplicaError> {
        for spec in [
            &mpcium_api::streams::KEYGEN_REQUEST_STREAM,
            &mpcium_api::streams::SIGNING_REQUEST_STREAM,
            &mpcium_api::streams::RESULT_STREAM,
        ] {
            let config = stream::Config {
                name: spec.name.to_owned(),
                subjects: spec.subjects.iter().map(|s| (*s).to_owned()).collect(),
                description: Some(spec.description.to_owned()),
                retention: match spec.retention {
                    mpcium_api::streams::Retention::Limits => stream::RetentionPolicy::Limits,
                    mpcium_api::streams::Retention::Interest => stream::RetentionPolicy::Interest,
                    mpcium_api::streams::Retention::WorkQueue => stream::RetentionPolicy::WorkQueue,
                },
                storage: match spec.storage {
                    mpcium_api::streams::Storage::File => stream::StorageType::File,
                    mpcium_api::streams::Storage::Memory => stream::StorageType::Memory,
                },
                max_age: spec.max_age.unwrap_or_default(),
                max_bytes: spec.max_bytes,
                duplicate_window: spec.duplicate_window,
                ..Default::default()
            };
            crate::replicas::ensure_stream(&self.js, config, self.cfg.replicas).await?;
        }
        Ok(())
    }

    /// Pull keygen and signing requests and serve session starts until the process ends.
    pub async fn run(
        self: Arc<Self>,
        mut starts: tokio::sync::mpsc::Receiver<StartRequest>,
    ) -> Result<(), async_nats::Error> {
        self.ensure_streams().await?;
        let keygen = self.clone().consume(
            mpcium_api::streams::keygen_request_consumer(self.cfg.max_concurrent_keygen as i64),
            mpcium_api::streams::KEYGEN_REQUEST_STREAM.name,
            true,
        );
        let signing = self.clone().consume(
            mpcium_api::streams::signing_request_consumer(self.cfg.max_concurrent_signing as i64),
            mpcium_api::streams::SIGNING_REQUEST_STREAM.name,
            false,
        );
        let reshare = self.clone().serve_reshare();
        let pool = self.clone().keep_pool_warm();
        let retire = self.clone().retire_when_left_out();
        let this = self.clone();
        let participant = async move {
            while let Some(start) = starts.recv().await {
                let this = this.clone();
                let in_flight = this.drain.track();
                tokio::spawn(async move {
                    let _in_flight = in_flight;
                    this.on_start(start).await
                });
            }
            Ok::<(), async_nats::Error>(())
        };
        tokio::try_join!(keygen, signing, reshare, participant, pool, retire)?;
        Ok(())
    }

    // ---------- coordination ----------

    /// Announce a session to its participants, take part if this node is one, and wait for
    /// every participant's outcome. Returns the (agreed) output with the participants'
    /// attestations of it that verify.
    async fn coordinate_attested(
        &self,
        start: SessionStart,
        own: Option<OwnRequest>,
    ) -> Result<Agreed, Failure> {
        let session = session_id(&start)?;
        let done = done_id(&session);
        let mut done_inbox = self.transport.open_session(done);
        let members = session_members(&start);
        let others: Vec<String> = members.iter().filter(|p| *p != self.me()).cloned().collect();
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
                        tracing::warn!(node = %m.envelope.sender, error = %e, "undecodable done report; ignored");
                    }
                    if let Ok(Control::Done(report)) = decoded {
                        if report.ok && !outputs.contains_key(&m.envelope.sender) {
                            signatures.insert(m.envelope.sender.clone(), report.attestation.clone());
                            key_infos.insert(m.envelope.sender.clone(), report.key_infos.clone());
                        }
                        let outcome = if report.ok {
                            serde_json::from_value::<Output>(report.output).map_err(|e| {
                                Failure::new(ErrorCode::MessageFormat, format!("malformed outcome: {e}"))
                            })
                        } else {
                            Err(Failure::new(peer_code(&report.code), report.reason))
                        };
                        outputs.entry(m.envelope.sender.clone()).or_insert(outcome);
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    let missing: Vec<_> =
                        start.participants.iter().filter(|p| !outputs.contains_key(*p)).collect();
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
        if let Some(Err(f)) = outputs.get(self.me())
            && (f.names_culprits || outputs.iter().all(|(n, o)| n == self.me() || o.is_ok()))
        {
            return Err(Failure::new(f.code.clone(), format!("{}: {}", self.me(), f.reason)));
        }
        let mut agreed: Option<Output> = None;
        // This node's own output is among the agreed ones when it took part: it signs the agreed
        // statement below, once.
        let mine = outputs.get(self.me()).is_some_and(Result::is_ok);
        for (node, outcome) in outputs {
            match outcome {
                Err(f) => return Err(Failure::new(f.code, format!("{node}: {}", f.reason))),
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

    async fn on_start(&self, start: StartRequest) {
        let Control::Start(s) = start.control else { return };
        if start.envelope.sender != s.coordinator {
            tracing::warn!(sender = %start.envelope.sender, "session start not sent by its coordinator; ignored");
            return;
        }
        let outcome = self.participate(&s, start.envelope.session, None).await;
        let key_infos = self.made_keyinfos.take(&start.envelope.session);
        let report = match outcome {
            Ok(output) => DoneReport {
                ok: true,
                code: String::new(),
                reason: String::new(),
                attestation: self.attest(&s, &output),
                output: serde_json::to_value(output).unwrap_or_default(),
                key_infos,
            },
            Err(f) => DoneReport {
                ok: false,
                code: f.code.as_str().to_owned(),
                reason: f.reason,
                output: serde_json::Value::Null,
                attestation: String::new(),
                key_infos: Vec::new(),
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
    /// coordinator: `own`), check the announcement against it, then run the protocol.
    async fn participate(
        &self,
        start: &SessionStart,
        session: [u8; 32],
        own: Option<OwnRequest>,
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
            outcome = self.participate_checked(start, session, own) => outcome,
            _ = self.drain.reached(Phase::Abandoning) => Err(shutting_down()),
            _ = self.transport.connection_lost(epoch), if watch_connection => Err(connection_lost()),
        };
        if let Err(f) = &outcome
            && !f.peers_told
        {
            // Failed before or after the protocol: stop the others now instead of letting
            // them wait for this node until their session times out.
            let others: Vec<String> = session_members(start).into_iter().filter(|p| p != self.me()).collect();
            let notice =
                AbortNotice { code: f.code.as_str().to_owned(), reason: f.reason.clone(), culprits: vec![] };
            for run in protocol_runs(start, session) {
                if let Err(e) = self
                    .transport
                    .send_public(
                        Kind::Control,
                        run,
                        ABORT_SEQ,
                        &others,
                        Control::Abort(notice.clone()).encode(),
                    )
                    .await
                {
                    tracing::warn!(error = %e, "could not send an abort notice");
                }
            }
        }
        outcome
    }

    async fn participate_checked(
        &self,
        start: &SessionStart,
        session: [u8; 32],
        own: Option<OwnRequest>,
    ) -> Result<Output, Failure> {
        if !session_members(start).iter().any(|p| p == self.me()) {
            return Err(Failure::new(ErrorCode::ParticipantNotFound, "not a participant"));
        }
        self.metrics.session_started();
        // Open before the checks: the others' first messages wait here, not in the transport's
        // short-lived buffer. A keygen opens one inbox per protocol run instead.
        let mut inbox = (start.op != SessionOp::Keygen).then(|| self.transport.open_session(session));
        if start.op == SessionOp::Presign {
            let inbox = inbox.as_mut().expect("opened above");
            return self.presign_part(start, session, inbox).await;
        }
        let coordinating = own.is_some();
        match (self.verified_request(start, own)?, inbox.as_mut()) {
            (OwnRequest::Keygen(req), _) => {
                let checked = self.check_keygen_start(start, &req).await?;
                self.keygen_part(start, checked, session).await
            }
            (OwnRequest::Sign(req), Some(inbox)) => {
                check::request_id_names(start, &req.tx_id)?;
                if !coordinating {
                    self.check_sign_claim(start, &req).await?;
                }
                self.sign_part(start, &req, session, inbox).await
            }
            (OwnRequest::Reshare(req), Some(inbox)) => {
                let checked = self.check_reshare_start(start, req).await?;
                self.reshare_part(start, checked, session, inbox).await
            }
            _ => Err(Failure::new(ErrorCode::InvalidSessionType, "request does not match the operation")),
        }
    }

    /// A wallet's key info for one curve, checked (signed by every holder it lists, not older
    /// than a share held here: `service/keyinfo.rs`), or `ERROR_KEY_NOT_FOUND`.
    async fn load_keyinfo(&self, kind: KeyType, wallet: &str) -> Result<KeyInfo, Failure> {
        let info = self
            .registry
            .keyinfo(curve_name(kind), wallet)
            .await
            .map_err(|e| Failure::new(ErrorCode::KeyInfoLoad, e.to_string()))?
            .ok_or_else(|| Failure::new(ErrorCode::KeyNotFound, format!("wallet {wallet} not found")))?;
        self.check_keyinfo(kind, wallet, info)
    }

    fn spec(&self, session: [u8; 32], nodes: &[String], ids: &[PartyId], me: PartyId) -> SessionSpec {
        SessionSpec {
            id: session,
            parties: ids.iter().copied().zip(nodes.iter().cloned()).collect(),
            me,
            timeout: self.cfg.session_timeout,
        }
    }
}

/// The failure of work abandoned at shutdown.
fn shutting_down() -> Failure {
    Failure::new(ErrorCode::OperationAborted, "the node is shutting down")
}

/// How long after sending a done report a dropped NATS connection makes this node send it again.
const RESEND_WINDOW: Duration = Duration::from_secs(1);

/// The failure of a session whose node lost its NATS connection while it ran.
fn connection_lost() -> Failure {
    Failure::new(
        ErrorCode::NetworkConnection,
        "this node's NATS connection dropped during the session; messages to it may be lost",
    )
}

/// Every node that takes part in an announced session: the participants, or for a reshare the
/// dealers and the new committee.
fn session_members(start: &SessionStart) -> Vec<String> {
    if start.op != SessionOp::Reshare {
        return start.participants.clone();
    }
    let mut all: Vec<String> = start.dealers.iter().chain(&start.new_participants).cloned().collect();
    all.sort();
    all.dedup();
    all
}

/// The public data of a key as stored in the key info: curve encoding of the key and shares, hex.
fn old_key_hex<C: mpcium_tss::curve::Curve>(
    k: &mpcium_tss::reshare::OldKey<C>,
) -> (String, std::collections::BTreeMap<u16, String>) {
    (
        hex(&C::point_to_bytes(&k.public_key)),
        k.public_shares.iter().map(|(p, y)| (*p, hex(&C::point_to_bytes(y)))).collect(),
    )
}

fn old_key_from_info<C: mpcium_tss::curve::Curve>(
    info: &KeyInfo,
) -> Result<mpcium_tss::reshare::OldKey<C>, Failure> {
    let point = |h: &str| {
        hex_vec(h)
            .and_then(|b| C::point_from_bytes(&b))
            .ok_or_else(|| Failure::new(ErrorCode::KeyInfoLoad, "key info holds no valid public key data"))
    };
    let mut public_shares = std::collections::BTreeMap::new();
    for (p, y) in &info.public_shares {
        public_shares.insert(*p, point(y)?);
    }
    Ok(mpcium_tss::reshare::OldKey {
        threshold: u16::try_from(info.threshold)
            .map_err(|_| Failure::new(ErrorCode::InvalidThreshold, "threshold"))?,
        public_key: point(&info.public_key)?,
        public_shares,
    })
}

fn hex_vec(text: &str) -> Option<Vec<u8>> {
    hex::decode(text).ok()
}

/// The original's 64-byte X‖Y form of a secp256k1 point.
fn ecdsa_xy(p: &k256::ProjectivePoint) -> [u8; 64] {
    use k256::elliptic_curve::sec1::ToSec1Point;
    let enc = p.to_affine().to_sec1_point(false);
    let mut out = [0u8; 64];
    if enc.as_bytes().len() == 65 {
        out.copy_from_slice(&enc.as_bytes()[1..]);
    }
    out
}

/// The engine for a request's `key_type`.
fn key_type_of(key_type: &mpcium_api::KeyType) -> Result<KeyType, Failure> {
    match key_type.as_str() {
        "secp256k1" => Ok(KeyType::Secp256k1),
        "ed25519" => Ok(KeyType::Ed25519),
        other => Err(Failure::new(ErrorCode::MsgValidation, format!("unsupported key_type {other:?}"))),
    }
}

/// The session id of an announced session, re-derived from its fields (`None`: its request
/// bytes are not base64).
pub fn announced_session_id(start: &SessionStart) -> Option<[u8; 32]> {
    session_id(start).ok()
}

/// The session id of an announced session, re-derived from its fields.
fn session_id(start: &SessionStart) -> Result<[u8; 32], Failure> {
    let (operation, key_type) = match start.op {
        // One announcement for both curves; each curve's run has its own id (`keygen::run_id`).
        SessionOp::Keygen => (Operation::Keygen, KeyType::Secp256k1),
        SessionOp::Sign | SessionOp::Presign | SessionOp::Reshare => {
            let body =
                start.request_bytes().map_err(|e| Failure::new(ErrorCode::MessageFormat, e.to_string()))?;
            let key_type = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("key_type").and_then(|k| k.as_str()).map(str::to_owned))
                .unwrap_or_default();
            let kt = if key_type == "ed25519" { KeyType::Ed25519 } else { KeyType::Secp256k1 };
            let op = match start.op {
                SessionOp::Sign => Operation::Sign,
                SessionOp::Presign => Operation::Presign,
                _ => Operation::Reshare,
            };
            (op, kt)
        }
    };
    let wallet = wallet_of(start);
    // A signature with a presignature is bound to that presignature's id too.
    let request_id = match &start.presignature {
        Some(p) => format!("{}@presignature:{p}", start.request_id),
        None => start.request_id.clone(),
    };
    let participants: Vec<&str> = start.participants.iter().map(String::as_str).collect();
    let new_participants: Vec<&str> = start.new_participants.iter().map(String::as_str).collect();
    let ctx = ExecutionContext {
        operation,
        key_type,
        wallet_id: &wallet,
        key_version: start.key_version,
        participants: &participants,
        new_participants: &new_participants,
        request_id: &request_id,
    };
    // The threshold and the dealers are the coordinator's choices too: bound, so a participant
    // that accepted them runs with exactly the others that did.
    let dealers: Vec<&[u8]> = start.dealers.iter().map(|d| d.as_bytes()).collect();
    let threshold = start.threshold.to_be_bytes();
    let old_key: Vec<&[u8]> = start.old_key.iter().map(|k| k.as_bytes()).collect();
    let terms = ExecutionId::new(&ctx)
        .bind(b"threshold", &[&threshold])
        .bind(b"dealers", &dealers)
        .bind(b"old-key", &old_key);
    Ok(terms.0)
}

/// The ids of the protocol runs of an announced session: its own id, or for a keygen one per
/// curve (abort notices go to each).
fn protocol_runs(start: &SessionStart, session: [u8; 32]) -> Vec<[u8; 32]> {
    match start.op {
        SessionOp::Keygen => {
            [KeyType::Secp256k1, KeyType::Ed25519].into_iter().map(|k| keygen::run_id(session, k)).collect()
        }
        _ => vec![session],
    }
}

fn wallet_of(start: &SessionStart) -> String {
    start
        .request_bytes()
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("wallet_id").and_then(|w| w.as_str()).map(str::to_owned))
        .unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

fn hex_to<const N: usize>(text: &str) -> Option<[u8; N]> {
    hex_vec(text)?.try_into().ok()
}
