//! Node-to-node transport over core NATS.
//!
//! Each node listens on its own subject `mpcium.node.<node id>` (so per-node NATS permissions
//! can allow a node to subscribe only to its own inbox, and a client to publish on none of
//! them). Every inbound [`Envelope`] is decoded, its signature checked against the sender's
//! identity key, its private payload opened with the pair key, and then routed by session id to
//! the [`SessionInbox`] of a running session. Messages for a session that has not started here
//! yet (a fast peer's first round can overtake the session start) wait in a bounded buffer for a
//! short time. Session starts go to the node's dispatcher through [`Transport::listen`].
//!
//! Memory is bounded against a flooding peer (every bound drops and counts, see
//! [`TransportCounters`]): messages buffered for sessions not started yet ([`MAX_PENDING_BYTES`]
//! in all, [`MAX_PENDING_SESSIONS`] sessions of at most [`MAX_PENDING_PER_SESSION`] messages), the
//! queue of each running session ([`SESSION_QUEUE`] messages, [`MAX_QUEUED_BYTES`] over all
//! sessions), and the session starts being handled at once ([`MAX_CONCURRENT_STARTS`]: a start
//! over it is refused at once with `ERROR_CONCURRENCY_LIMIT`, so its coordinator does not wait).
//! A session start is taken once: a second start for a session id that runs here, or ran here
//! within [`START_MEMORY`], is a replay and ignored (it would otherwise replace the running
//! session's route and kill it).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::control::{AbortNotice, Control, DoneReport};
use crate::envelope::{Envelope, EnvelopeError, Kind, Payload};
use crate::registry::PeerDirectory;

#[cfg(feature = "test-malice")]
mod malice;
#[cfg(feature = "test-malice")]
pub use malice::{MaliceSwitch, Misbehaviour};

/// The subject prefix of node inboxes.
pub const NODE_SUBJECT_PREFIX: &str = "mpcium.node";
/// How long messages for a not-yet-started session are kept.
const PENDING_TTL: Duration = Duration::from_secs(30);
/// How long to wait for the server to confirm our inbox subscription.
const SYNC_TIMEOUT: Duration = Duration::from_secs(10);
/// How many not-yet-started sessions may have buffered messages.
pub const MAX_PENDING_SESSIONS: usize = 4096;
/// How many messages one not-yet-started session may buffer.
pub const MAX_PENDING_PER_SESSION: usize = 512;
/// How many bytes all not-yet-started sessions may buffer together (a DKLs23 keygen message is
/// ~100 KB, a signing message a few KB: room for hundreds of sessions' first rounds).
pub const MAX_PENDING_BYTES: usize = 64 * 1024 * 1024;
/// How many messages a running session's queue holds (a session reads as fast as it computes;
/// a round of n parties brings at most ~2n messages, and n ≤ 255).
pub const SESSION_QUEUE: usize = 1024;
/// How many bytes the queues of all running sessions may hold together.
pub const MAX_QUEUED_BYTES: usize = 256 * 1024 * 1024;
/// How many session starts this node handles at once, as a participant. Coordinators cap their
/// own sessions (`max_concurrent_signing`, `max_concurrent_keygen`, one presign session at a
/// time); this leaves room for every node of a large cluster coordinating at full load.
pub const MAX_CONCURRENT_STARTS: usize = 512;
/// How long a session id is remembered after its start, so a replayed start is ignored (longer
/// than any session may run).
pub const START_MEMORY: Duration = Duration::from_secs(30 * 60);
/// How many started session ids are remembered at most (the oldest are forgotten first).
pub const MAX_REMEMBERED_STARTS: usize = 65536;
/// How long a coordinator waits for a participant to acknowledge a session start before it
/// counts the participant absent (a crashed process is known at once: NATS answers "no
/// responders"; this bounds a peer that is cut off but still has its subscription).
pub const START_ACK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long after a peer's process is first seen a "no responders" from it means "its
/// subscription has not reached our NATS server yet" (a cluster propagates interest between
/// servers after the ready record may have arrived), not "gone": the request is retried.
pub const NEW_PEER_GRACE: Duration = Duration::from_secs(2);
/// The pause between such retries.
const NOT_YET_RETRY: Duration = Duration::from_millis(50);
/// How often a running session looks at its node's NATS connection.
const CONNECTION_CHECK: Duration = Duration::from_millis(50);
/// The NATS header of a session start that names the acknowledgement subject of the client
/// request the session serves. If the coordinator goes away, each participant that took the
/// start hands the request back to JetStream (a NAK with a short delay), so another node runs it
/// within a second instead of after the consumer's redelivery back-off. Not signed: all it can
/// cause is an early redelivery, which the request claims and settled results make harmless.
pub const HANDBACK_HEADER: &str = "Mpcium-Handback";
/// The header naming the coordinator of a request note ([`Transport::note_request`]).
pub const HANDBACK_FROM_HEADER: &str = "Mpcium-Handback-From";
/// The only subjects taken as hand-back subjects: acknowledgements of signing requests.
const HANDBACK_PREFIX: &str = "$JS.ACK.mpc-signing.";
/// How long a hand-back subject is kept (past the request's AckWait and first BackOff).
const HANDBACK_MEMORY: Duration = Duration::from_secs(90);
/// How many hand-back subjects are kept per coordinator (the oldest go first).
const MAX_HANDBACKS_PER_COORDINATOR: usize = 1024;
/// The sequence number of a refusal sent outside a protocol run (as the service's aborts).
const REFUSAL_SEQ: u32 = u32::MAX - 1;

/// The session id a participant's outcome report travels under (the service's `done_id` is the
/// same function).
pub fn done_id(session: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"mpcium-rs/done/v1");
    h.update(session);
    h.finalize().into()
}

/// What the transport dropped or refused, for `/metrics`.
#[derive(Debug, Default)]
pub struct TransportCounters {
    /// Messages dropped because a buffer or queue was full.
    pub dropped: AtomicU64,
    /// Session starts ignored as replays.
    pub replayed_starts: AtomicU64,
    /// Session starts refused because [`MAX_CONCURRENT_STARTS`] were being handled.
    pub refused_starts: AtomicU64,
}

impl TransportCounters {
    /// The counters in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, help, value) in [
            (
                "mpcium_transport_dropped_total",
                "Messages dropped: a buffer or queue was full.",
                &self.dropped,
            ),
            (
                "mpcium_session_starts_replayed_total",
                "Session starts ignored as replays.",
                &self.replayed_starts,
            ),
            (
                "mpcium_session_starts_refused_total",
                "Session starts refused: too many handled at once.",
                &self.refused_starts,
            ),
        ] {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
            out.push_str(&format!("{name} {}\n", value.load(Ordering::Relaxed)));
        }
        out
    }
}

/// The inbox subject of a node.
pub fn node_subject(node_id: &str) -> String {
    format!("{NODE_SUBJECT_PREFIX}.{node_id}")
}

/// Why sending failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// No pair key with that peer (it is not ready).
    #[error("peer {0} is not ready (no exchange key)")]
    PeerNotReady(String),
    /// The envelope could not be built.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// NATS refused the publish.
    #[error("publish to {subject}: {source}")]
    Publish {
        /// The subject.
        subject: String,
        /// What NATS said.
        source: async_nats::Error,
    },
    /// Subscribing failed.
    #[error("subscribe: {0}")]
    Subscribe(async_nats::Error),
}

/// What a [`Transport::probe`] found.
#[derive(Debug)]
pub enum Probe {
    /// The peer acknowledged.
    Answered,
    /// Nobody subscribes the peer's inbox: its process is gone.
    Gone,
    /// The peer did not acknowledge in time.
    Silent,
    /// Our own connection failed; nothing is known about the peer.
    Failed(TransportError),
}

/// A verified inbound message.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The envelope (signature checked).
    pub envelope: Envelope,
    /// Its payload: opened for a private message (wiped when dropped), as is otherwise.
    pub payload: Payload,
}

impl Inbound {
    /// The bytes it holds (what the memory bounds count).
    fn size(&self) -> usize {
        self.envelope.payload.len() + self.payload.len()
    }
}

/// A session start that arrived for this node.
#[derive(Debug)]
pub struct StartRequest {
    /// The envelope that carried it.
    pub envelope: Envelope,
    /// The decoded control message.
    pub control: Control,
    /// One of the [`MAX_CONCURRENT_STARTS`] slots, held until the request is dropped (keep it
    /// alive while the session is handled).
    pub slot: OwnedSemaphorePermit,
}

/// Per coordinator: when each hand-back subject was seen, and the subject.
type Handbacks = HashMap<String, VecDeque<(Instant, String)>>;

struct Pending {
    since: Instant,
    messages: Vec<Inbound>,
    bytes: usize,
}

#[derive(Default)]
struct Routes {
    live: HashMap<[u8; 32], mpsc::Sender<Inbound>>,
    pending: HashMap<[u8; 32], Pending>,
    pending_bytes: usize,
    /// Session ids started here (or opened), oldest first, for [`START_MEMORY`].
    started: VecDeque<([u8; 32], Instant)>,
    started_ids: HashSet<[u8; 32]>,
}

impl Routes {
    /// Remember `id` as started; false if it was already (a replayed start).
    fn remember_start(&mut self, id: [u8; 32], now: Instant) -> bool {
        while let Some((old, at)) = self.started.front().copied() {
            if now.duration_since(at) < START_MEMORY && self.started.len() < MAX_REMEMBERED_STARTS {
                break;
            }
            self.started.pop_front();
            self.started_ids.remove(&old);
        }
        if self.live.contains_key(&id) || !self.started_ids.insert(id) {
            return false;
        }
        self.started.push_back((id, now));
        true
    }
}

/// The node's connection to its peers.
#[derive(Clone)]
pub struct Transport {
    client: async_nats::Client,
    identity: SigningKey,
    dir: PeerDirectory,
    routes: Arc<Mutex<Routes>>,
    /// Bytes in the queues of running sessions.
    queued: Arc<AtomicUsize>,
    start_slots: Arc<Semaphore>,
    counters: Arc<TransportCounters>,
    /// Per coordinator, the acknowledgement subjects of the client requests its recent
    /// sessions with this node served (see [`HANDBACK_HEADER`]).
    handbacks: Arc<Mutex<Handbacks>>,
    #[cfg(feature = "test-malice")]
    malice: MaliceSwitch,
}

/// The receiving end of one session's messages; unregisters itself when dropped.
pub struct SessionInbox {
    id: [u8; 32],
    rx: mpsc::Receiver<Inbound>,
    routes: Arc<Mutex<Routes>>,
    queued: Arc<AtomicUsize>,
}

impl SessionInbox {
    /// The next message, or `None` if the transport is gone.
    pub async fn recv(&mut self) -> Option<Inbound> {
        let m = self.rx.recv().await?;
        self.queued.fetch_sub(m.size(), Ordering::Relaxed);
        Some(m)
    }

    /// The session id.
    pub fn id(&self) -> [u8; 32] {
        self.id
    }
}

impl Drop for SessionInbox {
    fn drop(&mut self) {
        if let Ok(mut routes) = self.routes.lock() {
            routes.live.remove(&self.id);
        }
        self.rx.close();
        while let Ok(m) = self.rx.try_recv() {
            self.queued.fetch_sub(m.size(), Ordering::Relaxed);
        }
    }
}

impl Transport {
    /// A transport for this node (call [`listen`](Self::listen) to start receiving).
    pub fn new(client: async_nats::Client, identity: SigningKey, dir: PeerDirectory) -> Self {
        Self {
            client,
            identity,
            dir,
            routes: Arc::new(Mutex::new(Routes::default())),
            queued: Arc::new(AtomicUsize::new(0)),
            start_slots: Arc::new(Semaphore::new(MAX_CONCURRENT_STARTS)),
            counters: Arc::new(TransportCounters::default()),
            handbacks: Arc::default(),
            #[cfg(feature = "test-malice")]
            malice: MaliceSwitch::default(),
        }
    }

    /// The NATS connection.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// This node's peer directory.
    pub fn directory(&self) -> &PeerDirectory {
        &self.dir
    }

    /// How many times this node's NATS connection was established: a session notes it at its
    /// start, and a change (or a connection that is down) means messages sent to this node in
    /// between may be lost (see [`connection_lost`](Self::connection_lost)).
    pub fn connection_epoch(&self) -> u64 {
        self.client.statistics().connects.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Resolves once this node's NATS connection is up.
    pub async fn connected(&self) {
        while self.client.connection_state() != async_nats::connection::State::Connected {
            tokio::time::sleep(CONNECTION_CHECK).await;
        }
    }

    /// Resolves once this node's NATS connection dropped after `epoch` was read: core NATS
    /// drops what is published to a subscription while its connection is away, so a session
    /// running across the drop may wait for a message that will never come.
    pub async fn connection_lost(&self, epoch: u64) {
        loop {
            if self.connection_epoch() != epoch
                || self.client.connection_state() != async_nats::connection::State::Connected
            {
                return;
            }
            tokio::time::sleep(CONNECTION_CHECK).await;
        }
    }

    /// This node's identity signature over `statement` (a result attestation; its bytes start
    /// with a domain no envelope's signed bytes share).
    pub fn sign_statement(&self, statement: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer as _;
        self.identity.sign(statement).to_bytes()
    }

    /// What this transport dropped or refused.
    pub fn counters(&self) -> Arc<TransportCounters> {
        self.counters.clone()
    }

    /// Subscribe to this node's inbox; session starts are sent to the returned channel.
    pub async fn listen(&self) -> Result<mpsc::Receiver<StartRequest>, TransportError> {
        let mut sub = self
            .client
            .subscribe(node_subject(self.dir.me()))
            .await
            .map_err(|e| TransportError::Subscribe(e.into()))?;
        // Make sure the server has the subscription before anyone is told we are listening.
        self.sync_with_server().await?;
        let (tx, rx) = mpsc::channel(1024);
        let this = self.clone();
        tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                // A request (a session start, or a liveness probe) is acknowledged on receipt:
                // the sender learns this process is there and reads its inbox.
                if let Some(reply) = msg.reply {
                    let _ = this.client.publish(reply, bytes::Bytes::new()).await;
                }
                if msg.payload.is_empty() {
                    // A probe, or a coordinator's note of a request it took.
                    let header =
                        |name: &str| msg.headers.as_ref().and_then(|h| h.get(name)).map(|v| v.to_string());
                    if let (Some(from), Some(subject)) =
                        (header(HANDBACK_FROM_HEADER), header(HANDBACK_HEADER))
                        && this.dir.identity(&from).is_some()
                    {
                        this.remember_handback(&from, &subject);
                    }
                    continue;
                }
                let handback =
                    msg.headers.as_ref().and_then(|h| h.get(HANDBACK_HEADER)).map(|v| v.to_string());
                this.accept(&msg.payload, handback, &tx).await;
            }
        });
        Ok(rx)
    }

    /// Wait until the server has processed everything this connection sent before. `flush` only
    /// writes the socket; a message to ourselves comes back only after the server took in the
    /// earlier subscriptions, because it handles one connection's commands in order.
    async fn sync_with_server(&self) -> Result<(), TransportError> {
        let inbox = self.client.new_inbox();
        let mut probe =
            self.client.subscribe(inbox.clone()).await.map_err(|e| TransportError::Subscribe(e.into()))?;
        self.client
            .publish(inbox.clone(), bytes::Bytes::new())
            .await
            .map_err(|e| TransportError::Publish { subject: inbox, source: e.into() })?;
        match tokio::time::timeout(SYNC_TIMEOUT, probe.next()).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(TransportError::Subscribe("connection closed while subscribing".into())),
            Err(_) => Err(TransportError::Subscribe("the server did not confirm the subscription".into())),
        }
    }

    async fn accept(&self, bytes: &[u8], handback: Option<String>, starts: &mpsc::Sender<StartRequest>) {
        let envelope = match Envelope::decode(bytes) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "dropping malformed envelope");
                return;
            }
        };
        let Some(key) = self.dir.identity(&envelope.sender) else {
            tracing::warn!(sender = %envelope.sender, "dropping envelope from an unknown node");
            return;
        };
        if let Err(e) = envelope.verify(key) {
            tracing::warn!(error = %e, "dropping envelope");
            return;
        }
        let payload = match envelope.kind {
            Kind::Private => {
                let Some(pair) = self.dir.pair_key(&envelope.sender) else {
                    tracing::warn!(sender = %envelope.sender, "private envelope from a peer without exchange key");
                    return;
                };
                match envelope.open(self.dir.me(), &pair) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(error = %e, "dropping envelope");
                        return;
                    }
                }
            }
            _ => Payload::from(envelope.payload.clone()),
        };
        if envelope.kind == Kind::Control
            && let Ok(control @ Control::Start(_)) = Control::decode(&payload)
        {
            if let (Some(subject), Control::Start(s)) = (&handback, &control)
                && s.coordinator == envelope.sender
            {
                self.remember_handback(&envelope.sender, subject);
            }
            self.take_start(envelope, control, starts).await;
            return;
        }
        self.route(Inbound { envelope, payload });
    }

    /// Hand a session start to the dispatcher, once per session id and within
    /// [`MAX_CONCURRENT_STARTS`].
    async fn take_start(&self, envelope: Envelope, control: Control, starts: &mpsc::Sender<StartRequest>) {
        let fresh = self.routes.lock().is_ok_and(|mut r| r.remember_start(envelope.session, Instant::now()));
        if !fresh {
            self.counters.replayed_starts.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(sender = %envelope.sender, "session start for a session started before (a replay); ignored");
            return;
        }
        let Ok(slot) = self.start_slots.clone().try_acquire_owned() else {
            self.counters.refused_starts.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(sender = %envelope.sender, "too many sessions at once; session start refused");
            self.refuse_start(&envelope, &control).await;
            return;
        };
        if starts.send(StartRequest { envelope, control, slot }).await.is_err() {
            tracing::warn!("session start dropped: dispatcher gone");
        }
    }

    /// Tell a refused session's members (its coordinator with an outcome report) at once, so
    /// nobody waits for this node until the session times out.
    async fn refuse_start(&self, envelope: &Envelope, control: &Control) {
        let Control::Start(start) = control else { return };
        let code = mpcium_api::ErrorCode::ConcurrencyLimit.as_str().to_owned();
        let reason = format!("{} handles {MAX_CONCURRENT_STARTS} sessions already", self.dir.me());
        let mut members: Vec<String> =
            start.participants.iter().chain(&start.new_participants).chain(&start.dealers).cloned().collect();
        members.sort();
        members.dedup();
        members.retain(|m| m != self.dir.me());
        let notice = AbortNotice { code: code.clone(), reason: reason.clone(), culprits: vec![] };
        let abort = Control::Abort(notice).encode();
        let report = DoneReport {
            ok: false,
            code,
            reason,
            output: serde_json::Value::Null,
            attestation: String::new(),
            key_infos: Vec::new(),
        };
        let done = Control::Done(report).encode();
        let sent = async {
            self.send_public(Kind::Control, envelope.session, REFUSAL_SEQ, &members, abort).await?;
            self.send_public(
                Kind::Control,
                done_id(&envelope.session),
                0,
                std::slice::from_ref(&envelope.sender),
                done,
            )
            .await
        };
        if let Err(e) = sent.await {
            tracing::warn!(error = %e, "could not tell a refused session's members");
        }
    }

    fn route(&self, inbound: Inbound) {
        let Ok(mut routes) = self.routes.lock() else { return };
        let id = inbound.envelope.session;
        if let Some(tx) = routes.live.get(&id) {
            let size = inbound.size();
            if self.queued.load(Ordering::Relaxed) + size > MAX_QUEUED_BYTES {
                self.drop_message("the running sessions' queues are full");
                return;
            }
            self.queued.fetch_add(size, Ordering::Relaxed);
            match tx.try_send(inbound) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.queued.fetch_sub(size, Ordering::Relaxed);
                    self.drop_message("a session's queue is full");
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.queued.fetch_sub(size, Ordering::Relaxed);
                    routes.live.remove(&id);
                }
            }
            return;
        }
        let now = Instant::now();
        let mut expired = 0;
        routes.pending.retain(|_, p| {
            let keep = now.duration_since(p.since) < PENDING_TTL;
            if !keep {
                expired += p.bytes;
            }
            keep
        });
        routes.pending_bytes -= expired;
        if !routes.pending.contains_key(&id) && routes.pending.len() >= MAX_PENDING_SESSIONS {
            self.drop_message("too many unknown sessions buffered");
            return;
        }
        let size = inbound.size();
        if routes.pending_bytes + size > MAX_PENDING_BYTES {
            self.drop_message("the buffer of unknown sessions is full");
            return;
        }
        let pending = routes.pending.entry(id).or_insert_with(|| Pending {
            since: now,
            messages: Vec::new(),
            bytes: 0,
        });
        if pending.messages.len() >= MAX_PENDING_PER_SESSION {
            self.drop_message("an unknown session's buffer is full");
            return;
        }
        pending.messages.push(inbound);
        pending.bytes += size;
        routes.pending_bytes += size;
    }

    fn drop_message(&self, why: &'static str) {
        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(why, "dropping a message");
    }

    /// Start receiving a session's messages (including those that arrived before). The id is
    /// remembered like a start's, so a start for it arriving later is a replay.
    pub fn open_session(&self, id: [u8; 32]) -> SessionInbox {
        let (tx, rx) = mpsc::channel(SESSION_QUEUE);
        if let Ok(mut routes) = self.routes.lock() {
            if let Some(pending) = routes.pending.remove(&id) {
                routes.pending_bytes -= pending.bytes;
                for m in pending.messages {
                    let size = m.size();
                    if tx.try_send(m).is_ok() {
                        self.queued.fetch_add(size, Ordering::Relaxed);
                    }
                }
            }
            routes.remember_start(id, Instant::now());
            routes.live.insert(id, tx);
        }
        SessionInbox { id, rx, routes: self.routes.clone(), queued: self.queued.clone() }
    }

    /// Sign once and send a broadcast or control envelope to each of `to`.
    pub async fn send_public(
        &self,
        kind: Kind,
        session: [u8; 32],
        seq: u32,
        to: &[String],
        payload: Vec<u8>,
    ) -> Result<Envelope, TransportError> {
        #[cfg(feature = "test-malice")]
        if let Some(env) = self.send_public_maliciously(kind, session, seq, to, &payload).await? {
            return Ok(env);
        }
        let env = Envelope::seal_public(kind, session, self.dir.me(), seq, payload, &self.identity)?;
        let bytes = bytes::Bytes::from(env.encode());
        for node in to {
            if node == self.dir.me() {
                continue;
            }
            self.publish(node, bytes.clone()).await?;
        }
        Ok(env)
    }

    /// Seal for `to` and send a private envelope.
    pub async fn send_private(
        &self,
        session: [u8; 32],
        seq: u32,
        to: &str,
        plaintext: &[u8],
    ) -> Result<(), TransportError> {
        #[cfg(feature = "test-malice")]
        if self.send_private_maliciously(session, seq, to, plaintext).await? {
            return Ok(());
        }
        let pair = self.dir.pair_key(to).ok_or_else(|| TransportError::PeerNotReady(to.to_owned()))?;
        let env = Envelope::seal_private(session, self.dir.me(), to, seq, plaintext, &pair, &self.identity)?;
        self.publish(to, env.encode().into()).await
    }

    /// Send a session start (a public control envelope) to each of `to` as a NATS request, and
    /// wait for each to acknowledge it (see [`listen`](Self::listen)). Returns the members that
    /// are absent: NATS answered "no responders" (nobody subscribes their inbox: the process is
    /// gone) or they did not acknowledge within [`START_ACK_TIMEOUT`] (cut off, or stalled).
    /// Each is marked absent in the directory; the others received the start.
    /// `handback`: the acknowledgement subject of the client request the session serves (see
    /// [`HANDBACK_HEADER`]).
    pub async fn announce(
        &self,
        session: [u8; 32],
        to: &[String],
        payload: Vec<u8>,
        handback: Option<&str>,
    ) -> Result<Vec<String>, TransportError> {
        let mut headers = async_nats::HeaderMap::new();
        if let Some(subject) = handback {
            headers.insert(HANDBACK_HEADER, subject);
        }
        let env =
            Envelope::seal_public(Kind::Control, session, self.dir.me(), u32::MAX, payload, &self.identity)?;
        let bytes = bytes::Bytes::from(env.encode());
        let acks = to.iter().filter(|n| *n != self.dir.me()).map(|node| {
            let (bytes, headers) = (bytes.clone(), headers.clone());
            async move { (node, self.probe(node, bytes, headers, START_ACK_TIMEOUT).await) }
        });
        let mut absent = Vec::new();
        for (node, answer) in futures_util::future::join_all(acks).await {
            match answer {
                Probe::Answered => {}
                Probe::Gone | Probe::Silent => absent.push(node.clone()),
                Probe::Failed(e) => return Err(e),
            }
        }
        Ok(absent)
    }

    /// Send `bytes` to `node` as a request and wait up to `timeout` for its acknowledgement;
    /// the answer updates the directory's view of the peer (absent or present).
    pub async fn probe(
        &self,
        node: &str,
        bytes: bytes::Bytes,
        headers: async_nats::HeaderMap,
        timeout: Duration,
    ) -> Probe {
        let subject = node_subject(node);
        let began = tokio::time::Instant::now();
        let answer = loop {
            let request = async_nats::Request::new()
                .payload(bytes.clone())
                .headers(headers.clone())
                .timeout(Some(timeout));
            let answer = self.client.send_request(subject.clone(), request).await;
            let not_yet = matches!(&answer, Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders)
                && self.dir.is_new(node, NEW_PEER_GRACE)
                && began.elapsed() + NOT_YET_RETRY < timeout;
            if !not_yet {
                break answer;
            }
            tokio::time::sleep(NOT_YET_RETRY).await;
        };
        match answer {
            Ok(_) => {
                self.dir.mark_present(node);
                Probe::Answered
            }
            Err(e) => match e.kind() {
                async_nats::RequestErrorKind::NoResponders => {
                    self.dir.mark_absent(node);
                    self.hand_back_requests_of(node).await;
                    Probe::Gone
                }
                async_nats::RequestErrorKind::TimedOut => {
                    // Only when our own connection is up: otherwise nobody could have answered.
                    if self.client.connection_state() == async_nats::connection::State::Connected {
                        self.dir.mark_absent(node);
                        self.hand_back_requests_of(node).await;
                        Probe::Silent
                    } else {
                        Probe::Failed(TransportError::Publish { subject, source: e.into() })
                    }
                }
                _ => Probe::Failed(TransportError::Publish { subject, source: e.into() }),
            },
        }
    }

    /// Tell every peer with a live ready record that this node took the client request whose
    /// acknowledgement subject is `subject`, before it does anything with it (see
    /// [`HANDBACK_HEADER`]): if this node goes away, they hand it back even if no session of it
    /// was announced yet. One empty message per peer; not signed (all it can cause is an early
    /// redelivery of a signing request).
    pub async fn note_request(&self, subject: &str) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(HANDBACK_HEADER, subject);
        headers.insert(HANDBACK_FROM_HEADER, self.dir.me());
        for peer in self.dir.known_peers() {
            if let Err(e) = self
                .client
                .publish_with_headers(node_subject(&peer), headers.clone(), bytes::Bytes::new())
                .await
            {
                tracing::debug!(error = %e, "could not note a request to a peer");
            }
        }
        // Out of this process before the work starts: a note still in the client's buffer dies
        // with a killed process, and the request would wait for its AckWait.
        if let Err(e) = self.client.flush().await {
            tracing::debug!(error = %e, "could not flush the request notes");
        }
    }

    /// Remember the request a coordinator's session serves (its acknowledgement subject), to
    /// hand it back if the coordinator goes away. Only signing requests' subjects are taken.
    fn remember_handback(&self, coordinator: &str, subject: &str) {
        let valid = subject.starts_with(HANDBACK_PREFIX)
            && subject.len() <= 512
            && !subject.contains(|c: char| c.is_whitespace() || c == '*' || c == '>');
        if !valid {
            return;
        }
        let now = Instant::now();
        let Ok(mut all) = self.handbacks.lock() else { return };
        let list = all.entry(coordinator.to_owned()).or_default();
        while list.front().is_some_and(|(at, _)| now.duration_since(*at) > HANDBACK_MEMORY)
            || list.len() >= MAX_HANDBACKS_PER_COORDINATOR
        {
            list.pop_front();
        }
        if !list.iter().any(|(_, s)| s == subject) {
            list.push_back((now, subject.to_owned()));
        }
    }

    /// A coordinator is absent: hand the requests its recent sessions served back to JetStream
    /// for immediate redelivery to a live node, instead of their redelivery after AckWait and
    /// BackOff (5 s for signing). A request that was answered already is acknowledged and stays so (the
    /// server ignores the notice); one that runs again is answered with its settled result if
    /// the coordinator published one (`Registry::settle_result`).
    async fn hand_back_requests_of(&self, coordinator: &str) {
        let taken =
            self.handbacks.lock().ok().and_then(|mut all| all.remove(coordinator)).unwrap_or_default();
        let now = Instant::now();
        let nak = bytes::Bytes::from(format!("-NAK {{\"delay\":{}}}", Duration::from_millis(10).as_nanos()));
        let mut handed = 0;
        for (_, subject) in taken.iter().filter(|(at, _)| now.duration_since(*at) <= HANDBACK_MEMORY) {
            if self.client.publish(subject.clone(), nak.clone()).await.is_ok() {
                handed += 1;
            }
        }
        if handed > 0 {
            tracing::info!(
                coordinator,
                handed,
                "handed an absent coordinator's requests back for redelivery"
            );
        }
    }

    async fn publish(&self, node: &str, bytes: bytes::Bytes) -> Result<(), TransportError> {
        let subject = node_subject(node);
        self.client
            .publish(subject.clone(), bytes)
            .await
            .map_err(|e| TransportError::Publish { subject, source: e.into() })
    }
}
