//! Node-to-node transport over core NATS.
//!
//! Each node listens on its own subject `mpcium.node.<node id>` (so per-node NATS permissions
//! can allow a node to subscribe only to its own inbox, and a client to publish on none of
//! them). Every inbound [`Envelope`] is decoded, its signature checked against the sender's
//! identity key, its private payload opened with the pair key, and then routed by session id to
//! the [`SessionInbox`] of a running session. Messages for a session that has not started here
//! yet (a fast peer's first round can overtake the session start) wait in a bounded buffer for a
//! short time. Session starts go to the node's dispatcher through [`Transport::starts`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::control::Control;
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
const MAX_PENDING_SESSIONS: usize = 4096;
/// How many messages one not-yet-started session may buffer.
const MAX_PENDING_PER_SESSION: usize = 512;

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

/// A session start that arrived for this node.
#[derive(Debug)]
pub struct StartRequest {
    /// The envelope that carried it.
    pub envelope: Envelope,
    /// The decoded control message.
    pub control: Control,
}

struct Pending {
    since: Instant,
    messages: Vec<Inbound>,
}

#[derive(Default)]
struct Routes {
    live: HashMap<[u8; 32], mpsc::UnboundedSender<Inbound>>,
    pending: HashMap<[u8; 32], Pending>,
}

/// The node's connection to its peers.
#[derive(Clone)]
pub struct Transport {
    client: async_nats::Client,
    identity: SigningKey,
    dir: PeerDirectory,
    routes: Arc<Mutex<Routes>>,
    #[cfg(feature = "test-malice")]
    malice: MaliceSwitch,
}

/// The receiving end of one session's messages; unregisters itself when dropped.
pub struct SessionInbox {
    id: [u8; 32],
    rx: mpsc::UnboundedReceiver<Inbound>,
    routes: Arc<Mutex<Routes>>,
}

impl SessionInbox {
    /// The next message, or `None` if the transport is gone.
    pub async fn recv(&mut self) -> Option<Inbound> {
        self.rx.recv().await
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
                this.accept(&msg.payload, &tx).await;
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

    async fn accept(&self, bytes: &[u8], starts: &mpsc::Sender<StartRequest>) {
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
            if starts.send(StartRequest { envelope, control }).await.is_err() {
                tracing::warn!("session start dropped: dispatcher gone");
            }
            return;
        }
        self.route(Inbound { envelope, payload });
    }

    fn route(&self, inbound: Inbound) {
        let Ok(mut routes) = self.routes.lock() else { return };
        let id = inbound.envelope.session;
        if let Some(tx) = routes.live.get(&id) {
            if tx.send(inbound).is_err() {
                routes.live.remove(&id);
            }
            return;
        }
        let now = Instant::now();
        routes.pending.retain(|_, p| now.duration_since(p.since) < PENDING_TTL);
        if !routes.pending.contains_key(&id) && routes.pending.len() >= MAX_PENDING_SESSIONS {
            tracing::warn!("too many unknown sessions buffered; dropping a message");
            return;
        }
        let pending =
            routes.pending.entry(id).or_insert_with(|| Pending { since: now, messages: Vec::new() });
        if pending.messages.len() < MAX_PENDING_PER_SESSION {
            pending.messages.push(inbound);
        }
    }

    /// Start receiving a session's messages (including those that arrived before).
    pub fn open_session(&self, id: [u8; 32]) -> SessionInbox {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut routes) = self.routes.lock() {
            if let Some(pending) = routes.pending.remove(&id) {
                for m in pending.messages {
                    let _ = tx.send(m);
                }
            }
            routes.live.insert(id, tx);
        }
        SessionInbox { id, rx, routes: self.routes.clone() }
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
