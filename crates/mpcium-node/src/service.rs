//! The node's request handling: the coordinator side (pull a client request from JetStream,
//! check it, pick the participants, announce the sessions, collect the outcomes, publish one
//! result event, then ack) and the participant side (check the announced request itself, run the
//! protocol, store the share, report to the coordinator).
//!
//! Every request is checked in full before any work (JSON, ids, sizes, initiator signature,
//! authorization) and every failure is answered with an error event carrying the code of the
//! place it happened: nothing is dropped silently (the original drops signing requests with a
//! bad signature, spec §3.10).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, stream};
use futures_util::StreamExt;
/// The sequence number of an abort notice sent outside the protocol run (session starts use
/// `u32::MAX`; protocol messages count up from 0).
const ABORT_SEQ: u32 = u32::MAX - 1;

/// How long a starting node waits for t+1 ready nodes before it pulls requests.
const QUORUM_WAIT: Duration = Duration::from_secs(30);

/// The core NATS subject of reshare requests (the original's).
pub const RESHARE_SUBJECT: &str = "mpc:reshare";

use mpcium_api::{
    AuthorizationPolicy, ClientId, ErrorCode, GenerateKeyMessage, SignTxMessage, SigningMode,
    SigningResultEvent, subjects,
};
use mpcium_store::{ShareKind, Store};
use mpcium_tss::{ExecutionContext, ExecutionId, KeyType, Operation, PartyId};
use tokio::sync::Semaphore;

use crate::control::{AbortNotice, Control, DoneReport, SessionOp, SessionOutput as Output, SessionStart};
use crate::drain::{Drain, Phase};
use crate::envelope::Kind;
use crate::health::Metrics;
use crate::presign::{PresignPool, PresignSettings};
use crate::registry::{Claim, KeyInfo, Registry};
use crate::session::{SessionError, SessionSpec, run_protocol};
use crate::transport::{SessionInbox, StartRequest, Transport};

mod bans;
mod check;
mod keygen;
mod presign;
mod quorum;
mod reshare;

pub use check::old_key_digest;
use check::{OwnRequest, Verified};

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

    /// Create the client-facing streams if absent (same configs as the Go node).
    pub async fn ensure_streams(&self) -> Result<(), async_nats::Error> {
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
            self.js.get_or_create_stream(config).await?;
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
        tokio::try_join!(keygen, signing, reshare, participant, pool)?;
        Ok(())
    }

    async fn consume(
        self: Arc<Self>,
        spec: mpcium_api::streams::ConsumerSpec,
        stream_name: &str,
        keygen: bool,
    ) -> Result<(), async_nats::Error> {
        let stream = self.js.get_stream(stream_name).await?;
        let consumer = stream
            .get_or_create_consumer(
                &spec.durable_name,
                pull::Config {
                    durable_name: Some(spec.durable_name.clone()),
                    filter_subject: spec.filter_subject.clone(),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: spec.ack_wait,
                    max_deliver: spec.max_deliver,
                    backoff: spec.backoff.clone(),
                    max_ack_pending: spec.max_ack_pending,
                    ..Default::default()
                },
            )
            .await?;
        let _puller = self.drain.track_puller();
        self.wait_for_quorum().await;
        let mut messages = consumer.messages().await?;
        tracing::info!(consumer = %spec.durable_name, "pulling requests");
        // Pulled but not started when the drain began.
        let mut held = Vec::new();
        loop {
            let msg = tokio::select! {
                msg = messages.next() => msg,
                _ = self.drain.reached(Phase::Draining) => break,
            };
            let Some(msg) = msg else { break };
            let msg = match msg {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "request consumer error");
                    continue;
                }
            };
            let slots = if keygen { self.keygen_slots.clone() } else { self.signing_slots.clone() };
            let permit = tokio::select! {
                permit = slots.acquire_owned() => permit,
                _ = self.drain.reached(Phase::Draining) => {
                    held.push(msg);
                    break;
                }
            };
            let Ok(permit) = permit else { break };
            let this = self.clone();
            let in_flight = self.drain.track();
            tokio::spawn(async move {
                let (_permit, _in_flight) = (permit, in_flight);
                this.handle_request(msg, keygen).await;
            });
        }
        // Draining: collect what the pull has delivered (or still delivers, until the server sees
        // our pull requests go) but we did not start; withdraw the pull requests (dropping the
        // stream unsubscribes); only then hand it all back, so a request naked here cannot be
        // redelivered to this node's withdrawn pull and sit there until AckWait. Other nodes
        // take it at once.
        let linger_until = tokio::time::Instant::now() + HAND_BACK_LINGER;
        while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(
            linger_until.min(tokio::time::Instant::now() + HAND_BACK_IDLE),
            messages.next(),
        )
        .await
        {
            held.push(msg);
        }
        drop(messages);
        for msg in &held {
            hand_back(msg).await;
        }
        tracing::info!(consumer = %spec.durable_name, handed_back = held.len(), "stopped pulling requests");
        Ok(())
    }

    /// Requests queued while the cluster was down would be answered `ERROR_NOT_MAJORITY` by the
    /// first node back: pull only once t+1 nodes are ready (or after a bounded wait, so a node
    /// alone still answers, with that error, rather than never).
    async fn wait_for_quorum(&self) {
        let need = self.cfg.threshold as usize + 1;
        let until = tokio::time::Instant::now() + QUORUM_WAIT;
        while self.transport.directory().ready().len() < need && tokio::time::Instant::now() < until {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = self.drain.reached(Phase::Draining) => return,
            }
        }
    }

    async fn handle_request(&self, msg: jetstream::Message, keygen: bool) {
        tracing::debug!(subject = %msg.subject, "request pulled");
        let client = msg
            .headers
            .as_ref()
            .and_then(|h| h.get(subjects::CLIENT_ID_HEADER))
            .map(|v| v.as_str().to_owned())
            .and_then(|v| ClientId::parse(&v).ok().flatten());
        let (seq, delivered) = msg.info().map(|i| (i.stream_sequence, i.delivered)).unwrap_or((0, 0));
        let delivery = format!("{seq}.{delivered}");
        let claim = seq.to_string();
        // Keep the request from being redelivered while we work (AckWait is 30 s).
        let progress = {
            let msg = msg.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    if msg.ack_with(jetstream::AckKind::Progress).await.is_err() {
                        break;
                    }
                }
            })
        };
        let subject_token = msg.subject.as_str().rsplit('.').next().unwrap_or("").to_owned();
        let started = std::time::Instant::now();
        // A redelivery of a request that was answered already (its ack was lost, or it waited in a
        // pull of a node that was cut off) is answered with the settled result, not run again.
        let answered = if keygen {
            GenerateKeyMessage::from_json(&msg.payload).ok().map(|m| {
                (
                    subjects::keygen_result_subject(client.as_ref(), &m.wallet_id),
                    subjects::keygen_idempotency_key(client.as_ref(), &m.wallet_id, Some(&claim)),
                )
            })
        } else {
            SignTxMessage::from_json(&msg.payload).ok().map(|m| {
                (
                    subjects::signing_result_subject(client.as_ref()),
                    subjects::signing_idempotency_key(client.as_ref(), &m.tx_id, Some(&claim)),
                )
            })
        };
        if let Some((subject, key)) = answered
            && let Ok(Some(event)) = self.registry.settled_result(&key).await
        {
            tracing::info!(subject = %msg.subject, "request answered before; republishing its result");
            progress.abort();
            let body = String::from_utf8_lossy(&event).into_owned();
            match self.publish(subject, key, body).await {
                Ok(()) => drop(msg.ack().await),
                Err(e) => {
                    tracing::error!(error = %e, "could not republish a result; leaving the request for redelivery");
                    let _ = msg.ack_with(jetstream::AckKind::Nak(Some(Duration::from_secs(1)))).await;
                }
            }
            return;
        }
        let work = async {
            if keygen {
                let event =
                    self.coordinate_keygen(&msg.payload, client.as_ref(), &delivery, &subject_token).await;
                self.metrics.record(
                    "keygen",
                    event.error_code.as_ref().map(|c| c.as_str()),
                    started.elapsed(),
                );
                // One result per request message: redeliveries of it share the key (stream
                // sequence), a new request with the same id gets its own answer.
                let key = subjects::keygen_idempotency_key(client.as_ref(), &event.wallet_id, Some(&claim));
                self.publish(
                    subjects::keygen_result_subject(client.as_ref(), &event.wallet_id),
                    key,
                    event.to_json(),
                )
                .await
            } else {
                let event = self
                    .coordinate_sign(&msg.payload, client.as_ref(), &delivery, &claim, &subject_token)
                    .await;
                self.metrics.record("sign", event.error_code.as_ref().map(|c| c.as_str()), started.elapsed());
                let key = subjects::signing_idempotency_key(client.as_ref(), &event.tx_id, Some(&claim));
                self.publish(subjects::signing_result_subject(client.as_ref()), key, event.to_json()).await
            }
        };
        let published = tokio::select! {
            published = work => published,
            _ = self.drain.reached(Phase::Abandoning) => {
                // Shutting down past the drain deadline: JetStream gives the request to another
                // node (or to this one after its restart). A result already published is
                // deduplicated by its Nats-Msg-Id (the stream sequence).
                progress.abort();
                // After the pullers withdrew their pull requests (see `consume`).
                let _ = tokio::time::timeout(Duration::from_secs(3), self.drain.pullers_stopped()).await;
                hand_back(&msg).await;
                return;
            }
        };
        progress.abort();
        match published {
            Ok(()) => {
                if let Err(e) = msg.ack().await {
                    tracing::warn!(error = %e, "ack failed");
                }
            }
            Err(e) => {
                // Not acked: JetStream redelivers and the request is answered then.
                tracing::error!(error = %e, "could not publish a result; leaving the request for redelivery");
                let _ = msg.ack_with(jetstream::AckKind::Nak(Some(Duration::from_secs(1)))).await;
            }
        }
    }

    /// Publish a result event, or the one settled earlier for the same request message (see
    /// [`Registry::settle_result`]): a client never gets two different results for one request.
    async fn publish(&self, subject: String, msg_id: String, body: String) -> Result<(), async_nats::Error> {
        let body = self.registry.settle_result(&msg_id, body.into()).await?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(subjects::MSG_ID_HEADER, msg_id.as_str());
        self.js.publish_with_headers(subject, headers, body).await?.await?;
        Ok(())
    }

    // ---------- signing ----------

    async fn coordinate_sign(
        &self,
        body: &[u8],
        client: Option<&ClientId>,
        delivery: &str,
        claim: &str,
        subject_token: &str,
    ) -> SigningResultEvent {
        let req = match self.verify_sign(body) {
            Ok(r) => r,
            Err(err) => {
                let (req, f) = *err;
                // An unreadable request has no tx id: answer under the subject's token, so the
                // client can tell which request failed.
                let tx_id = if req.tx_id.is_empty() { subject_token } else { req.tx_id.as_str() };
                return SigningResultEvent::error(
                    &req.wallet_id,
                    tx_id,
                    &req.network_internal_code,
                    f.code,
                    &f.reason,
                );
            }
        };
        let (wallet, tx_id, network) =
            (req.wallet_id.clone(), req.tx_id.clone(), req.network_internal_code.clone());
        let malformed = || {
            SigningResultEvent::error(
                &wallet,
                &tx_id,
                &network,
                ErrorCode::SignatureGeneration,
                "malformed signature from the participants",
            )
        };
        match self.sign(req, body, client, delivery, claim).await {
            Ok(Output::EcdsaSignature { r, s, v }) => match (hex_to::<32>(&r), hex_to::<32>(&s)) {
                (Some(r), Some(s)) => SigningResultEvent::ecdsa_success(&wallet, &tx_id, &network, &r, &s, v),
                _ => malformed(),
            },
            Ok(Output::EddsaSignature { signature }) => match hex_to::<64>(&signature) {
                Some(sig) => SigningResultEvent::eddsa_success(&wallet, &tx_id, &network, &sig),
                None => malformed(),
            },
            Ok(_) => malformed(),
            Err(f) => SigningResultEvent::error(&wallet, &tx_id, &network, f.code, &f.reason),
        }
    }

    async fn sign(
        &self,
        req: Verified<SignTxMessage>,
        body: &[u8],
        client: Option<&ClientId>,
        delivery: &str,
        claim: &str,
    ) -> Result<Output, Failure> {
        let kind = key_type_of(&req.key_type)?;
        let info = self.load_keyinfo(kind, &req.wallet_id).await?;
        match self
            .registry
            .claim_request(&req.wallet_id, &req.tx_id, claim)
            .await
            .map_err(|e| Failure::new(ErrorCode::StorageWrite, e.to_string()))?
        {
            Claim::New | Claim::Same => {}
            Claim::Duplicate => {
                return Err(Failure::new(
                    ErrorCode::SessionDuplicate,
                    format!(
                        "duplicate signing request detected for walletID={} txID={}",
                        req.wallet_id, req.tx_id
                    ),
                ));
            }
        }
        let ready = self.transport.directory().ready();
        let mut candidates: Vec<String> =
            info.participant_peer_ids.iter().filter(|p| ready.contains(p)).cloned().collect();
        candidates.sort();
        let need = info.threshold as usize + 1;
        if candidates.len() < need {
            return Err(Failure::new(
                ErrorCode::NotMajority,
                format!(
                    "{} of {} participants ready, {need} needed",
                    candidates.len(),
                    info.participant_peer_ids.len()
                ),
            ));
        }
        // DKLs23 pairs that must not sign together (a ban after a failed OT check).
        let apart = if kind == KeyType::Secp256k1 {
            self.ban_conflicts(&req.wallet_id, info.version).await
        } else {
            Vec::new()
        };
        let eligible = quorum::Eligible { ready, apart };
        let signers = quorum::pick_signers(&candidates, self.me(), &req.tx_id, need, &eligible.apart)
            .ok_or_else(|| {
                Failure::new(
                    ErrorCode::NotMajority,
                    format!("no {need} ready participants without a ban between them"),
                )
            })?;
        if kind == KeyType::Secp256k1 && req.derivation_path.as_ref().is_none_or(|p| p.is_empty()) {
            self.pool.note_signing(&req.wallet_id);
            let attempt = self.sign_with_presignature(&req, body, client, delivery, &info, &eligible).await;
            self.metrics.presign.count_use(matches!(attempt, Some(Ok(_))));
            match attempt {
                Some(Err(f)) if f.code == ErrorCode::ResourceExhausted => {
                    tracing::info!(reason = %f.reason, "presignature unusable; signing in full");
                }
                Some(outcome) => return outcome,
                None => {}
            }
        }
        let start = SessionStart {
            op: SessionOp::Sign,
            coordinator: self.me().to_owned(),
            request: String::new(),
            client_id: client.map(|c| c.as_str().to_owned()),
            participants: signers,
            new_participants: Vec::new(),
            key_version: info.version,
            threshold: info.threshold,
            request_id: format!("{}#{delivery}", req.tx_id),
            dealers: Vec::new(),
            presignature: None,
            old_key: None,
        }
        .with_request(body);
        self.coordinate(start, Some(OwnRequest::Sign(req))).await
    }

    // ---------- coordination ----------

    /// Announce a session to its participants, take part if this node is one, and wait for
    /// every participant's outcome. Returns the (agreed) output.
    async fn coordinate(&self, start: SessionStart, own: Option<OwnRequest>) -> Result<Output, Failure> {
        let session = session_id(&start)?;
        let done = done_id(&session);
        let mut done_inbox = self.transport.open_session(done);
        let members = session_members(&start);
        let others: Vec<String> = members.iter().filter(|p| *p != self.me()).cloned().collect();
        self.transport
            .send_public(Kind::Control, session, u32::MAX, &others, Control::Start(start.clone()).encode())
            .await
            .map_err(|e| Failure::new(ErrorCode::PeerUnavailable, e.to_string()))?;
        // One deadline for the whole session, this node's own part included: a coordinator whose
        // own part timed out on a dead peer must not then wait a second full timeout for it.
        let deadline = tokio::time::Instant::now() + self.cfg.session_timeout + Duration::from_secs(5);
        let mut outputs = std::collections::BTreeMap::new();
        if members.iter().any(|p| p == self.me()) {
            // The coordinator verified the request when it pulled it.
            let mine = self.participate(&start, session, own).await;
            outputs.insert(self.me().to_owned(), mine);
        }
        while outputs.len() < members.len() {
            match tokio::time::timeout_at(deadline, done_inbox.recv()).await {
                Ok(Some(m)) => {
                    if !members.contains(&m.envelope.sender) || m.envelope.kind != Kind::Control {
                        continue;
                    }
                    if let Ok(Control::Done(report)) = Control::decode(&m.payload) {
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
        agreed.ok_or_else(|| Failure::new(ErrorCode::InsufficientParticipants, "no participants"))
    }

    async fn on_start(&self, start: StartRequest) {
        let Control::Start(s) = start.control else { return };
        if start.envelope.sender != s.coordinator {
            tracing::warn!(sender = %start.envelope.sender, "session start not sent by its coordinator; ignored");
            return;
        }
        let outcome = self.participate(&s, start.envelope.session, None).await;
        let report = match outcome {
            Ok(output) => DoneReport {
                ok: true,
                code: String::new(),
                reason: String::new(),
                output: serde_json::to_value(output).unwrap_or_default(),
            },
            Err(f) => DoneReport {
                ok: false,
                code: f.code.as_str().to_owned(),
                reason: f.reason,
                output: serde_json::Value::Null,
            },
        };
        if let Err(e) = self
            .transport
            .send_public(
                Kind::Control,
                done_id(&start.envelope.session),
                0,
                std::slice::from_ref(&s.coordinator),
                Control::Done(report).encode(),
            )
            .await
        {
            tracing::warn!(error = %e, "could not report to the coordinator");
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
        // timing out on this node.
        let outcome = tokio::select! {
            outcome = self.participate_checked(start, session, own) => outcome,
            _ = self.drain.reached(Phase::Abandoning) => Err(shutting_down()),
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

    /// A wallet's key info for one curve, or `ERROR_KEY_NOT_FOUND`.
    async fn load_keyinfo(&self, kind: KeyType, wallet: &str) -> Result<KeyInfo, Failure> {
        self.registry
            .keyinfo(curve_name(kind), wallet)
            .await
            .map_err(|e| Failure::new(ErrorCode::KeyInfoLoad, e.to_string()))?
            .ok_or_else(|| Failure::new(ErrorCode::KeyNotFound, format!("wallet {wallet} not found")))
    }

    fn spec(&self, session: [u8; 32], nodes: &[String], ids: &[PartyId], me: PartyId) -> SessionSpec {
        SessionSpec {
            id: session,
            parties: ids.iter().copied().zip(nodes.iter().cloned()).collect(),
            me,
            timeout: self.cfg.session_timeout,
        }
    }

    async fn sign_part(
        &self,
        start: &SessionStart,
        req: &SignTxMessage,
        session: [u8; 32],
        inbox: &mut SessionInbox,
    ) -> Result<Output, Failure> {
        let kind = key_type_of(&req.key_type)?;
        let info = self.load_keyinfo(kind, &req.wallet_id).await?;
        if info.version != start.key_version || info.threshold != start.threshold {
            return Err(Failure::new(
                ErrorCode::SessionStale,
                "key version or threshold differs from the announcement",
            ));
        }
        let distinct = start.participants.windows(2).all(|w| w[0] < w[1]);
        if !distinct || start.participants.len() != info.threshold as usize + 1 {
            return Err(Failure::new(
                ErrorCode::InsufficientParticipants,
                "a signature needs exactly t+1 distinct holders",
            ));
        }
        if kind == KeyType::Secp256k1 {
            self.refuse_banned(&req.wallet_id, info.version, &start.participants)?;
        }
        let ids = party_ids(&info.participant_peer_ids, &start.participants)?;
        let me = party_ids(&info.participant_peer_ids, &[self.me().to_owned()])?[0];
        if kind == KeyType::Secp256k1 {
            self.pool.note_cosigning(&req.wallet_id); // warm here for others' presign sessions
        }
        let spec = self.spec(session, &start.participants, &ids, me);
        let mut signers = ids.clone();
        signers.sort_unstable();
        if let Some(id) = &start.presignature {
            return self.sign_online_part(start, req, &info, id, &signers, me, &spec, inbox).await;
        }
        let stored = self
            .store
            .get_share(share_kind(kind), &req.wallet_id, info.version)
            .map_err(|e| Failure::new(ErrorCode::KeyLoad, e.to_string()))?
            .ok_or_else(|| Failure::new(ErrorCode::KeyNotFound, "no share for this wallet on this node"))?;
        let eid = ExecutionId(session);
        let tx = req.tx.clone().unwrap_or_default();
        let path = req.derivation_path.clone().unwrap_or_default();
        match kind {
            KeyType::Secp256k1 => {
                let share = mpcium_tss::ecdsa::KeyShare::from_bytes(&stored)
                    .map_err(|e| Failure::new(ErrorCode::KeyDecoding, e.to_string()))?;
                let digest: [u8; 32] = tx
                    .as_slice()
                    .try_into()
                    .map_err(|_| Failure::new(ErrorCode::MsgValidation, "tx must be 32 bytes"))?;
                let hd = (!path.is_empty())
                    .then_some(mpcium_tss::ecdsa::HdPath { chain_code: self.cfg.chain_code, path });
                let proto = mpcium_tss::ecdsa::Sign::new(eid, &share, &signers, digest, hd.as_ref())
                    .map_err(|e| Failure::new(ErrorCode::SigningFailure, e.to_string()))?;
                let sig = self.run_dkls(&req.wallet_id, info.version, inbox, &spec, proto).await?;
                Ok(Output::EcdsaSignature { r: hex(&sig.r), s: hex(&sig.s), v: sig.recovery_id })
            }
            KeyType::Ed25519 => {
                let share = mpcium_tss::eddsa::KeyShare::from_bytes(&stored)
                    .map_err(|e| Failure::new(ErrorCode::KeyDecoding, e.to_string()))?;
                let proto = if path.is_empty() {
                    mpcium_tss::eddsa::Sign::new(eid, &share, &signers, &tx)
                } else {
                    mpcium_tss::eddsa::Sign::with_derivation(
                        eid,
                        &share,
                        &signers,
                        &tx,
                        &self.cfg.chain_code,
                        &path,
                    )
                }
                .map_err(|e| Failure::new(ErrorCode::SigningFailure, e.to_string()))?;
                let sig = run_protocol(&self.transport, inbox, &spec, proto).await?;
                Ok(Output::EddsaSignature { signature: hex(&sig) })
            }
        }
    }
}

/// How long a stopping puller keeps handing back requests still arriving, at most, and after how
/// long without one it stops.
const HAND_BACK_LINGER: Duration = Duration::from_secs(1);
const HAND_BACK_IDLE: Duration = Duration::from_millis(150);

/// Give a pulled request back to JetStream for immediate redelivery (to any node). The delay is
/// explicit because a nak without one is delayed by the consumer's BackOff (30 s) instead.
async fn hand_back(msg: &jetstream::Message) {
    let nak = jetstream::AckKind::Nak(Some(Duration::from_millis(10)));
    if let Err(e) = msg.ack_with(nak).await {
        tracing::warn!(error = %e, "could not hand a request back; it is redelivered after AckWait");
    }
}

/// The failure of work abandoned at shutdown.
fn shutting_down() -> Failure {
    Failure::new(ErrorCode::OperationAborted, "the node is shutting down")
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
