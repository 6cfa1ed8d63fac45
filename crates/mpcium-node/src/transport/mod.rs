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
//! in all, [`MAX_PENDING_SESSIONS`] sessions of at most [`MAX_PENDING_PER_SESSION`] messages per sender), the
//! queue of each running session ([`SESSION_QUEUE`] messages, [`MAX_QUEUED_BYTES`] over all
//! sessions), and the session starts being handled at once ([`MAX_CONCURRENT_STARTS`]: a start
//! over it is refused at once with `ERROR_CONCURRENCY_LIMIT`, so its coordinator does not wait).
//! A session start is taken once: a second start from the same sender for a session id, or any
//! start for a session id that runs here or was opened here, within [`START_MEMORY`], is a replay
//! and ignored (it would otherwise replace the running session's route and kill it). Remembered
//! per sender because session ids bind their coordinator: a peer's start under another
//! coordinator's id is refused later, and must not burn that id here first.
//!
//! Before any of that, each message is counted against its claimed sender's token bucket
//! (`limits.peer_messages_*`) and dropped unread over it; one peer may open at most a quarter of
//! the buffer of not-yet-started sessions ([`MAX_PENDING_SESSIONS_PER_PEER`],
//! [`MAX_PENDING_BYTES_PER_PEER`]).
//!
//! The parts: `inbox` (this node's inbox: verifying, routing and buffering what arrives, and
//! taking session starts), `peer_limits` (the per-peer message rate), `probe` (acknowledged
//! requests to peers, and this node's own connection), `handback` (the requests to hand back
//! when their coordinator goes away).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::control::Control;
use crate::envelope::{Envelope, EnvelopeError, Kind, Payload};
use crate::registry::PeerDirectory;

mod handback;
mod inbox;
#[cfg(feature = "test-malice")]
mod malice;
mod peer_limits;
mod probe;

pub use handback::{HANDBACK_FROM_HEADER, HANDBACK_HEADER};
pub use inbox::SessionInbox;
#[cfg(feature = "test-malice")]
pub use malice::{MaliceSwitch, Misbehaviour};
pub use peer_limits::{PeerCounts, UNKNOWN_PEER};
pub use probe::{NEW_PEER_GRACE, Probe, START_ACK_TIMEOUT};

use handback::Handbacks;
use inbox::Routes;

/// The subject prefix of node inboxes.
pub const NODE_SUBJECT_PREFIX: &str = "mpcium.node";
/// How many not-yet-started sessions may have buffered messages.
pub const MAX_PENDING_SESSIONS: usize = 4096;
/// How many messages one peer may buffer for one not-yet-started session (per peer, so a peer
/// that knows the id of a session about to start cannot fill its buffer and crowd out the
/// members' first messages).
pub const MAX_PENDING_PER_SESSION: usize = 512;
/// How many bytes all not-yet-started sessions may buffer together (a DKLs23 keygen message is
/// ~100 KB, a signing message a few KB: room for hundreds of sessions' first rounds).
pub const MAX_PENDING_BYTES: usize = 64 * 1024 * 1024;
/// How many not-yet-started sessions one peer's messages may open in the buffer (a quarter:
/// a flooding peer leaves the rest to the others).
pub const MAX_PENDING_SESSIONS_PER_PEER: usize = MAX_PENDING_SESSIONS / 4;
/// How many bytes one peer's messages may hold in that buffer.
pub const MAX_PENDING_BYTES_PER_PEER: usize = MAX_PENDING_BYTES / 4;
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
    /// Session starts dropped: over a fifth of the coordinator's `limits.peer_messages_per_second`.
    pub throttled_starts: AtomicU64,
    /// Per claimed sender (configured nodes and [`UNKNOWN_PEER`]): messages within and over
    /// `limits.peer_messages_per_second` (`transport/peer_limits.rs`).
    peers: Mutex<std::collections::BTreeMap<String, PeerCounts>>,
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
            (
                "mpcium_session_starts_throttled_total",
                "Session starts dropped: over a fifth of the coordinator's limits.peer_messages_per_second.",
                &self.throttled_starts,
            ),
        ] {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
            out.push_str(&format!("{name} {}\n", value.load(Ordering::Relaxed)));
        }
        let peers = self.peer_counts();
        for (name, help, value) in [
            (
                "mpcium_peer_messages_total",
                "Node-to-node messages taken in (within limits.peer_messages_per_second), by claimed sender.",
                (|c: &PeerCounts| c.received) as fn(&PeerCounts) -> u64,
            ),
            (
                "mpcium_peer_messages_dropped_total",
                "Node-to-node messages dropped unread: over limits.peer_messages_per_second, by claimed sender.",
                |c: &PeerCounts| c.dropped,
            ),
        ] {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
            for (peer, counts) in &peers {
                let label = peer.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                out.push_str(&format!("{name}{{peer=\"{label}\"}} {}\n", value(counts)));
            }
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
    /// This node's NATS connection: how many times it was made, and whether it is up.
    connection: tokio::sync::watch::Receiver<probe::ConnectionState>,
    /// Per-peer message rates (`limits.peer_messages_*`).
    peer_limits: Arc<peer_limits::PeerLimiter>,
    #[cfg(feature = "test-malice")]
    malice: MaliceSwitch,
}

impl Transport {
    /// A transport for this node (call [`listen`](Self::listen) to start receiving).
    pub fn new(client: async_nats::Client, identity: SigningKey, dir: PeerDirectory) -> Self {
        Self {
            connection: probe::watch_connection(client.clone()),
            client,
            identity,
            dir,
            routes: Arc::new(Mutex::new(Routes::default())),
            queued: Arc::new(AtomicUsize::new(0)),
            start_slots: Arc::new(Semaphore::new(MAX_CONCURRENT_STARTS)),
            counters: Arc::new(TransportCounters::default()),
            handbacks: Arc::default(),
            peer_limits: Arc::new(peer_limits::PeerLimiter::new(crate::limits::default_peer_rate())),
            #[cfg(feature = "test-malice")]
            malice: MaliceSwitch::default(),
        }
    }

    /// The same transport with another per-peer message rate (`limits.peer_messages_*`; the
    /// default is `mpcium_config::DEFAULT_PEER_MESSAGES_PER_SECOND`). Call before
    /// [`listen`](Self::listen).
    pub fn with_peer_rate(mut self, rate: crate::limits::Rate) -> Self {
        self.peer_limits = Arc::new(peer_limits::PeerLimiter::new(rate));
        self
    }

    /// The NATS connection.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// This node's peer directory.
    pub fn directory(&self) -> &PeerDirectory {
        &self.dir
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

    async fn publish(&self, node: &str, bytes: bytes::Bytes) -> Result<(), TransportError> {
        let subject = node_subject(node);
        self.client
            .publish(subject.clone(), bytes)
            .await
            .map_err(|e| TransportError::Publish { subject, source: e.into() })
    }
}
