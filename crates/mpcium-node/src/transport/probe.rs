//! Reaching peers with acknowledged requests (session starts and liveness probes), which mark
//! them present or absent in the directory, and watching this node's own NATS connection.

use std::time::Duration;

use super::{HANDBACK_HEADER, Transport, TransportError, node_subject};
use crate::envelope::{Envelope, Kind};

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

/// This node's NATS connection as one poller sees it (async-nats has no event stream a
/// library can subscribe to after the connection is made: the daemon owns its callback).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ConnectionState {
    /// How many times the connection was established.
    epoch: u64,
    /// Whether it is up now.
    up: bool,
}

/// One poller per transport publishes the connection's state; sessions wait on the watch
/// instead of polling each on its own. It stops when every receiver is gone.
pub(super) fn watch_connection(client: async_nats::Client) -> tokio::sync::watch::Receiver<ConnectionState> {
    let (tx, rx) = tokio::sync::watch::channel(ConnectionState::of(&client));
    tokio::spawn(async move {
        while !tx.is_closed() {
            tokio::time::sleep(CONNECTION_CHECK).await;
            let now = ConnectionState::of(&client);
            tx.send_if_modified(|seen| std::mem::replace(seen, now) != now);
        }
    });
    rx
}

impl ConnectionState {
    /// The client's state right now.
    fn of(client: &async_nats::Client) -> Self {
        Self {
            epoch: client.statistics().connects.load(std::sync::atomic::Ordering::Relaxed),
            up: client.connection_state() == async_nats::connection::State::Connected,
        }
    }
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

impl Transport {
    /// How many times this node's NATS connection was established: a session notes it at its
    /// start, and a change (or a connection that is down) means messages sent to this node in
    /// between may be lost (see [`connection_lost`](Self::connection_lost)).
    pub fn connection_epoch(&self) -> u64 {
        ConnectionState::of(&self.client).epoch
    }

    /// Whether the connection is up right now (read from the client, not the poller's view).
    fn is_connected(&self) -> bool {
        ConnectionState::of(&self.client).up
    }

    /// Resolves once this node's NATS connection is up.
    pub async fn connected(&self) {
        if self.is_connected() {
            return;
        }
        let mut watch = self.connection.clone();
        let _ = watch.wait_for(|c| c.up).await;
    }

    /// Resolves once this node's NATS connection dropped after `epoch` was read: core NATS
    /// drops what is published to a subscription while its connection is away, so a session
    /// running across the drop may wait for a message that will never come.
    pub async fn connection_lost(&self, epoch: u64) {
        if self.connection_epoch() != epoch || !self.is_connected() {
            return;
        }
        // The poller's view may lag the live one by a check; an older epoch is not a drop.
        let mut watch = self.connection.clone();
        if watch.wait_for(|c| c.epoch > epoch || (c.epoch == epoch && !c.up)).await.is_err() {
            // The poller is gone only when the transport is: nothing to wait for.
            std::future::pending::<()>().await;
        }
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
        let epoch = self.connection_epoch();
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
            // Our own connection dropped or changed meanwhile: a "no responders" or a silence
            // then says nothing about the peer (the new server may not know its inbox yet).
            Err(e) if self.connection_epoch() != epoch || !self.is_connected() => {
                Probe::Failed(TransportError::Publish { subject, source: e.into() })
            }
            Err(e) => match e.kind() {
                async_nats::RequestErrorKind::NoResponders => {
                    self.dir.mark_absent(node);
                    self.hand_back_requests_of(node).await;
                    Probe::Gone
                }
                async_nats::RequestErrorKind::TimedOut => {
                    self.dir.mark_absent(node);
                    self.hand_back_requests_of(node).await;
                    Probe::Silent
                }
                _ => Probe::Failed(TransportError::Publish { subject, source: e.into() }),
            },
        }
    }
}
