//! The node's request handling: the coordinator side (pull a client request from JetStream,
//! check it, pick the participants, announce the sessions, collect the outcomes, publish one
//! result event, then ack) and the participant side (check the announced request itself, run the
//! protocol, store the share, report to the coordinator).
//!
//! Sessions themselves run in `coordinator` (announce, collect and agree on the outcomes) and
//! `participant` (take a session start, check it, run this node's part, report).
//!
//! Every request is checked in full before any work (JSON, ids, sizes, initiator signature,
//! authorization) and every failure is answered with an error event carrying the code of the
//! place it happened: nothing is dropped silently (the original drops signing requests with a
//! bad signature, docs/wire.md §8.2).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use mpcium_api::{AuthorizationPolicy, ErrorCode, SigningMode};
use mpcium_store::{ShareKind, Store};
use mpcium_tss::{ExecutionContext, ExecutionId, KeyType, Operation, PartyId};
use tokio::sync::Semaphore;

use crate::control::{SessionOp, SessionOutput as Output, SessionStart};
use crate::drain::Drain;
use crate::health::Metrics;
use crate::keypool::{KeyPool, KeyPoolSettings};
use crate::presign::{PresignPool, PresignSettings};
use crate::registry::{KeyInfo, Registry};
use crate::session::{SessionError, SessionSpec};
use crate::transport::{StartRequest, Transport};

mod attest;
mod audit;
mod bans;
mod cache;
mod check;
mod coordinator;
mod drawn_nonces;
mod import;
mod intake;
mod keygen;
mod keyinfo;
mod keypool;
mod limits;
mod participant;
mod presign;
mod quorum;
mod reselect;
mod reshare;
mod sign;

pub use check::old_key_digest;
pub use keyinfo::{SignedKeyInfo, statement as keyinfo_statement};

/// How long a starting node waits for t+1 ready nodes before it pulls requests.
const QUORUM_WAIT: Duration = Duration::from_secs(30);

/// The reason of a Taproot request for a wallet that has the other keys but no Taproot key.
pub const NO_TAPROOT_KEY: &str = "wallet has no taproot key: created before taproot support";

/// The core NATS subject of reshare requests (the original's).
pub const RESHARE_SUBJECT: &str = "mpc:reshare";

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
    /// `limits.requests_per_second.*` and `limits.peer_messages_*`.
    pub limits: crate::limits::LimitSettings,
    /// How long one protocol session may take.
    pub session_timeout: Duration,
    /// `presign.*`: the ECDSA presignature pool.
    pub presign: PresignSettings,
    /// `key_pool.*`: keys made ahead of their wallets.
    pub key_pool: KeyPoolSettings,
    /// `nats.replicas`: copies of the request and result streams and of the request consumers
    /// in the NATS cluster (see [`crate::replicas`]).
    pub replicas: usize,
    /// Whether this node pulls client requests (keygen, signing, resharing) and so coordinates
    /// them. `mpcium start` always does; a node that does not still takes part in the sessions
    /// others start. Tests turn it off for a misbehaving participant that must not be the
    /// coordinator (whose own failure report would be the client's answer).
    pub pulls_requests: bool,
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
    key_pool: KeyPool,
    drain: Drain,
    made_keyinfos: keyinfo::MadeKeyInfos,
    audit: crate::audit::AuditLog,
    request_limits: limits::RequestLimiter,
    shares: cache::ShareCache,
    verified: cache::VerifiedSignatures,
    /// FROST nonces this node drew for coordinators (in memory only: `crate::nonces`).
    nonce_book: crate::nonces::NonceBook,
    /// Co-signers' commitments this node may name as coordinator.
    nonce_stock: crate::nonces::CommitmentStock,
    /// Commitments this node drew in sessions whose done report is not sent yet.
    made_offers: drawn_nonces::MadeOffers,
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
    /// The error this failure came from, kept for logs and callers that look inside (its text
    /// is the reason).
    source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
    /// Who this node's own run named: a failed check's culprits or who stayed silent (also for
    /// the audit trail).
    culprits: Vec<String>,
}

/// Another member's failure as a coordinator passes it on: the source of its [`Failure`].
#[derive(Debug, thiserror::Error)]
#[error("{member}: {reason}")]
struct MemberFailure {
    member: String,
    code: ErrorCode,
    reason: String,
}

impl Failure {
    fn new(code: ErrorCode, reason: impl Into<String>) -> Self {
        Self { code, reason: reason.into(), peers_told: false, source: None, culprits: Vec::new() }
    }

    /// Another member's failure as this node passes it on: its code, its reason after its name.
    fn of_member(member: &str, f: &Failure) -> Self {
        let source =
            MemberFailure { member: member.to_owned(), code: f.code.clone(), reason: f.reason.clone() };
        Self {
            source: Some(std::sync::Arc::new(source)),
            ..Self::new(f.code.clone(), format!("{member}: {}", f.reason))
        }
    }

    /// Whether this node's own run named culprits.
    fn names_culprits(&self) -> bool {
        !self.culprits.is_empty()
    }

    /// The other member this failure is from, with the code it gave (`None` when the failure is
    /// this node's own).
    fn failed_member(&self) -> Option<(&str, &ErrorCode)> {
        let source = self.source.as_deref()?;
        if let Some(m) = source.downcast_ref::<MemberFailure>() {
            return Some((&m.member, &m.code));
        }
        match source.downcast_ref::<SessionError>()? {
            SessionError::PeerAborted { by, code, .. } => Some((by.as_str(), code)),
            _ => None,
        }
    }

    /// A failure with `code` caused by an error: its text is the reason, the error the source
    /// (for `map_err`).
    fn because<E>(code: ErrorCode) -> impl FnOnce(E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        move |e| {
            let reason = e.to_string();
            Self { source: Some(std::sync::Arc::new(e)), ..Self::new(code, reason) }
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.reason)
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
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
        let culprits = e.culprits().to_vec();
        let reason = e.to_string();
        Self { code, reason, peers_told: true, culprits, source: Some(std::sync::Arc::new(e)) }
    }
}

/// A code a peer reported: one of the wire's known codes, or `ERROR_OPERATION_ABORTED` (a peer
/// does not get to put free text where clients and metrics expect a code).
fn peer_code(code: &ErrorCode) -> ErrorCode {
    match code {
        ErrorCode::Other(_) => ErrorCode::OperationAborted,
        known => known.clone(),
    }
}

fn curve_name(kind: KeyType) -> &'static str {
    match kind {
        KeyType::Secp256k1 => "ecdsa",
        KeyType::Ed25519 => "eddsa",
        KeyType::Taproot => "taproot",
    }
}

fn share_kind(kind: KeyType) -> ShareKind {
    match kind {
        KeyType::Secp256k1 => ShareKind::Ecdsa,
        KeyType::Ed25519 => ShareKind::Eddsa,
        KeyType::Taproot => ShareKind::Taproot,
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
    /// Assemble the service; it records to the audit trail through `audit`.
    pub fn new(
        cfg: ServiceConfig,
        js: jetstream::Context,
        registry: Registry,
        transport: Transport,
        store: Arc<Store>,
        audit: crate::audit::AuditLog,
    ) -> Arc<Self> {
        let keygen_slots = Arc::new(Semaphore::new(cfg.max_concurrent_keygen.max(1)));
        let signing_slots = Arc::new(Semaphore::new(cfg.max_concurrent_signing.max(1)));
        let metrics = Arc::new(Metrics::with_audit(audit.counters()));
        let pool = PresignPool::new(cfg.presign.clone());
        let key_pool = KeyPool::new(cfg.key_pool);
        let request_limits = limits::RequestLimiter::new(cfg.limits.requests);
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
            key_pool,
            drain: Drain::new(),
            made_keyinfos: Default::default(),
            shares: Default::default(),
            verified: Default::default(),
            nonce_book: Default::default(),
            nonce_stock: Default::default(),
            made_offers: Default::default(),
            audit,
            request_limits,
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
    /// `nats.replicas` copies), and the audit trail's `mpc-audit` (ours); an existing stream with
    /// another replica count is updated in place, the rest of its configuration kept.
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
        crate::audit::ensure_stream(&self.js, self.cfg.replicas).await?;
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
        // The futures above do nothing until polled: a node that pulls no requests never polls them.
        let pulls = self.cfg.pulls_requests;
        let intake = async move {
            if pulls {
                tokio::try_join!(keygen, signing, reshare)?;
            }
            Ok::<(), async_nats::Error>(())
        };
        let pool = self.clone().keep_pool_warm();
        let key_pool = self.clone().keep_key_pool_full();
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
        tokio::try_join!(intake, participant, pool, key_pool, retire)?;
        Ok(())
    }

    /// A wallet's key info for one curve, checked (signed by every holder it lists, not older
    /// than a share held here: `service/keyinfo.rs`), or `ERROR_KEY_NOT_FOUND`.
    async fn load_keyinfo(&self, kind: KeyType, wallet: &str) -> Result<KeyInfo, Failure> {
        let info = self
            .registry
            .keyinfo(curve_name(kind), wallet)
            .await
            .map_err(Failure::because(ErrorCode::KeyInfoLoad))?;
        let Some(info) = info else { return Err(self.key_not_found(kind, wallet).await) };
        self.check_keyinfo(kind, wallet, info)
    }

    /// Why a wallet has no key info of `kind`: a wallet made before Taproot support (or imported
    /// from the original) has the other keys but no Taproot key; otherwise it does not exist.
    async fn key_not_found(&self, kind: KeyType, wallet: &str) -> Failure {
        if kind == KeyType::Taproot
            && matches!(self.registry.keyinfo(curve_name(KeyType::Secp256k1), wallet).await, Ok(Some(_)))
        {
            return Failure::new(ErrorCode::KeyNotFound, NO_TAPROOT_KEY);
        }
        Failure::new(ErrorCode::KeyNotFound, format!("wallet {wallet} not found"))
    }

    /// This node's share of `wallet`'s `kind` key at `version`, parsed once per stored value
    /// (`service/cache.rs`).
    fn load_share<T, E>(
        &self,
        kind: KeyType,
        wallet: &str,
        version: u32,
        parse: impl FnOnce(&[u8]) -> Result<T, E>,
    ) -> Result<Arc<T>, Failure>
    where
        T: std::any::Any + Send + Sync,
        E: std::error::Error + Send + Sync + 'static,
    {
        let stored = self
            .store
            .get_share(share_kind(kind), wallet, version)
            .map_err(Failure::because(ErrorCode::KeyLoad))?
            .ok_or_else(|| Failure::new(ErrorCode::KeyNotFound, "no share for this wallet on this node"))?;
        self.shares
            .get_or_parse(share_kind(kind), wallet, version, &stored, parse)
            .map_err(Failure::because(ErrorCode::KeyDecoding))
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
    Ok(mpcium_tss::reshare::OldKey::new(
        u16::try_from(info.threshold).map_err(|_| Failure::new(ErrorCode::InvalidThreshold, "threshold"))?,
        point(&info.public_key)?,
        public_shares,
    ))
}

fn hex_vec(text: &str) -> Option<Vec<u8>> {
    hex::decode(text).ok()
}

/// The BIP340 x-only form of a secp256k1 point (its X, 32 bytes big-endian).
fn x_only(p: &k256::ProjectivePoint) -> [u8; 32] {
    let xy = ecdsa_xy(p);
    let mut out = [0u8; 32];
    out.copy_from_slice(&xy[..32]);
    out
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
        "taproot" => Ok(KeyType::Taproot),
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
        // One announcement for the three keys; each key's run has its own id (`keygen::run_id`).
        SessionOp::Keygen | SessionOp::KeyPool => (Operation::Keygen, KeyType::Secp256k1),
        SessionOp::Sign | SessionOp::Presign | SessionOp::Reshare => {
            let body = start.request_bytes().map_err(Failure::because(ErrorCode::MessageFormat))?;
            let kt = announced_key_type(&body);
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
    // The coordinator too: two nodes announcing the same terms run two sessions, so a peer that
    // announces an honest coordinator's terms first (or sends a start under their id) does not
    // make the members ignore the honest start as a replay.
    let mut terms = ExecutionId::new(&ctx)
        .bind(b"coordinator", &[start.coordinator.as_bytes()])
        .bind(b"threshold", &[&threshold])
        .bind(b"dealers", &dealers)
        .bind(b"old-key", &old_key);
    // The nonces drawn ahead too (each signer's id and commitments): a participant that took
    // its nonce signs only with those exact others.
    // A pool keygen is told apart from a wallet's keygen by more than its request id; the key a
    // keygen hands over is bound, so a member hands it only to the wallet the others agreed on.
    if start.op == SessionOp::KeyPool {
        terms = terms.bind(b"key-pool", &[]);
    }
    if let Some(pooled) = &start.pooled_key {
        terms = terms.bind(b"pooled-key", &[pooled.as_bytes()]);
    }
    if !start.nonces.is_empty() {
        let nonces: Vec<Vec<u8>> =
            start.nonces.iter().map(|n| serde_json::to_vec(n).unwrap_or_default()).collect();
        let nonces: Vec<&[u8]> = nonces.iter().map(Vec::as_slice).collect();
        terms = terms.bind(b"nonces", &nonces);
    }
    Ok(terms.0)
}

/// The key type a session start's request names (`secp256k1` when it names none it knows).
fn announced_key_type(request: &[u8]) -> KeyType {
    let key_type = serde_json::from_slice::<serde_json::Value>(request)
        .ok()
        .and_then(|v| v.get("key_type").and_then(|k| k.as_str()).map(str::to_owned))
        .unwrap_or_default();
    match key_type.as_str() {
        "ed25519" => KeyType::Ed25519,
        "taproot" => KeyType::Taproot,
        _ => KeyType::Secp256k1,
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

#[cfg(test)]
mod failure_tests {
    use super::*;

    #[test]
    fn a_failure_keeps_the_error_it_came_from() {
        let io = std::io::Error::other("disk on fire");
        let f = Err::<(), _>(io).map_err(Failure::because(ErrorCode::StorageWrite)).unwrap_err();
        assert_eq!(f.code, ErrorCode::StorageWrite);
        assert_eq!(f.reason, "disk on fire");
        let source = std::error::Error::source(&f).expect("the source is kept");
        assert_eq!(source.to_string(), "disk on fire");
        assert!(source.downcast_ref::<std::io::Error>().is_some());
    }
}
