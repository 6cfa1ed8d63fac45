//! This node's inbox: every inbound envelope verified, opened and routed to its session's
//! [`SessionInbox`], buffered for a session not started yet, or taken as a session start (once,
//! and within [`MAX_CONCURRENT_STARTS`]); all within the memory bounds.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::{
    HANDBACK_FROM_HEADER, HANDBACK_HEADER, Inbound, MAX_CONCURRENT_STARTS, MAX_PENDING_BYTES,
    MAX_PENDING_BYTES_PER_PEER, MAX_PENDING_PER_SESSION, MAX_PENDING_SESSIONS, MAX_PENDING_SESSIONS_PER_PEER,
    MAX_QUEUED_BYTES, MAX_REMEMBERED_STARTS, SESSION_QUEUE, START_MEMORY, StartRequest, Transport,
    TransportError, done_id, node_subject,
};
use crate::control::{AbortNotice, Control, DoneReport};
use crate::envelope::{Envelope, Kind, Payload};

/// How long messages for a not-yet-started session are kept.
const PENDING_TTL: Duration = Duration::from_secs(30);
/// How many messages of one peer wait to be verified and routed (past it they are dropped and
/// counted as over the peer's rate).
const PEER_QUEUE: usize = 4096;
/// How often the buffer of not-yet-started sessions is swept of expired ones.
const PENDING_SWEEP: Duration = Duration::from_secs(1);
/// How long to wait for the server to confirm our inbox subscription.
const SYNC_TIMEOUT: Duration = Duration::from_secs(10);

/// The sequence number of a refusal sent outside a protocol run (as the service's aborts).
const REFUSAL_SEQ: u32 = u32::MAX - 1;

/// A remembered session start: its session id and sender (`None`: opened here).
type StartKey = ([u8; 32], Option<String>);

struct Pending {
    since: Instant,
    /// As they came: verified when the session opens.
    messages: Vec<Envelope>,
    bytes: usize,
    /// The sender of its first message (whose share of [`MAX_PENDING_SESSIONS`] it takes).
    opened_by: String,
}

/// One sender's part of the buffer of not-yet-started sessions: at most a quarter of it each
/// ([`MAX_PENDING_SESSIONS_PER_PEER`], [`MAX_PENDING_BYTES_PER_PEER`]), so a flooding peer
/// cannot fill it for the others.
#[derive(Default)]
struct SenderPending {
    sessions: usize,
    bytes: usize,
}

#[derive(Default)]
pub(super) struct Routes {
    live: HashMap<[u8; 32], mpsc::Sender<Inbound>>,
    pending: HashMap<[u8; 32], Pending>,
    pending_bytes: usize,
    pending_by_sender: HashMap<String, SenderPending>,
    last_sweep: Option<Instant>,
    /// Session starts taken here, by session id and sender (`None`: a session opened here, whose
    /// start is a replay from any sender), oldest first, for [`START_MEMORY`]. Per sender, so a
    /// peer that sends a start under the id of another coordinator's session first does not make
    /// that coordinator's start a "replay" here (the id binds its coordinator, who alone may
    /// start it: `service::on_start`).
    started: VecDeque<(StartKey, Instant)>,
    started_ids: HashSet<StartKey>,
}

impl Routes {
    /// Forget a pending session's share of its senders' parts.
    fn release(&mut self, pending: &Pending) {
        self.pending_bytes -= pending.bytes;
        if let Some(p) = self.pending_by_sender.get_mut(&pending.opened_by) {
            p.sessions = p.sessions.saturating_sub(1);
        }
        for m in &pending.messages {
            if let Some(p) = self.pending_by_sender.get_mut(&m.sender) {
                p.bytes = p.bytes.saturating_sub(m.payload.len());
            }
        }
        self.pending_by_sender.retain(|_, p| p.sessions > 0 || p.bytes > 0);
    }

    /// Remember a start of session `id` from `sender` (`None`: opened here); false if it was
    /// already taken (a replayed start), or the session is running or was opened here.
    fn remember_start(&mut self, id: [u8; 32], sender: Option<&str>, now: Instant) -> bool {
        while let Some((_, at)) = self.started.front() {
            if now.duration_since(*at) < START_MEMORY && self.started.len() < MAX_REMEMBERED_STARTS {
                break;
            }
            if let Some((old, _)) = self.started.pop_front() {
                self.started_ids.remove(&old);
            }
        }
        if self.live.contains_key(&id) || self.started_ids.contains(&(id, None)) {
            return false;
        }
        let key = (id, sender.map(str::to_owned));
        if !self.started_ids.insert(key.clone()) {
            return false;
        }
        self.started.push_back((key, now));
        true
    }
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
            // One worker per peer (configured ids and `unknown`): one peer's messages never
            // wait behind another's, and this loop only reads headers and acknowledges.
            let mut workers: HashMap<String, mpsc::Sender<(bytes::Bytes, Option<String>)>> = HashMap::new();
            while let Some(msg) = sub.next().await {
                // Over its sender's rate: dropped before anything else (no acknowledgement
                // either: a coordinator over the rate finds this node absent).
                let peer = if msg.payload.is_empty() {
                    None
                } else {
                    match this.peer_limits.admit(&msg.payload, &this.dir, &this.counters) {
                        Some(peer) => Some(peer.to_owned()),
                        None => continue,
                    }
                };
                // A request (a session start, or a liveness probe) is acknowledged on receipt:
                // the sender learns this process is there and reads its inbox.
                if let Some(reply) = msg.reply {
                    let _ = this.client.publish(reply, bytes::Bytes::new()).await;
                }
                let Some(peer) = peer else {
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
                };
                let handback =
                    msg.headers.as_ref().and_then(|h| h.get(HANDBACK_HEADER)).map(|v| v.to_string());
                let worker = workers.entry(peer.clone()).or_insert_with(|| this.peer_worker(tx.clone()));
                if worker.try_send((msg.payload, handback)).is_err() {
                    this.counters.count_peer(&peer, false);
                    this.drop_message("a peer's inbound queue is full");
                }
            }
        });
        Ok(rx)
    }

    /// A task that verifies and routes one peer's messages in order.
    fn peer_worker(
        &self,
        starts: mpsc::Sender<StartRequest>,
    ) -> mpsc::Sender<(bytes::Bytes, Option<String>)> {
        let (tx, mut rx) = mpsc::channel::<(bytes::Bytes, Option<String>)>(PEER_QUEUE);
        let this = self.clone();
        tokio::spawn(async move {
            while let Some((bytes, handback)) = rx.recv().await {
                this.accept(&bytes, handback, &starts).await;
            }
        });
        tx
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
        if self.dir.identity(&envelope.sender).is_none() {
            tracing::warn!(sender = %envelope.sender, "dropping envelope from an unknown node");
            return;
        }
        // A session start is checked at once; anything else is checked when its session runs
        // here (`route`): messages for sessions that never start cost no signature check.
        if envelope.kind == Kind::Control
            && let Ok(control @ Control::Start(_)) = Control::decode(&envelope.payload)
        {
            let Some(inbound) = self.verified(envelope) else { return };
            if let (Some(subject), Control::Start(s)) = (&handback, &control)
                && s.coordinator == inbound.envelope.sender
            {
                self.remember_handback(&inbound.envelope.sender, subject);
            }
            self.take_start(inbound.envelope, control, starts).await;
            return;
        }
        self.route(envelope);
    }

    /// An envelope whose signature verifies, its private payload opened; `None` (logged)
    /// otherwise.
    fn verified(&self, envelope: Envelope) -> Option<Inbound> {
        let Some(key) = self.dir.identity(&envelope.sender) else {
            tracing::warn!(sender = %envelope.sender, "dropping envelope from an unknown node");
            return None;
        };
        if let Err(e) = envelope.verify(key) {
            tracing::warn!(error = %e, "dropping envelope");
            return None;
        }
        let payload = match envelope.kind {
            Kind::Private => {
                let Some(pair) = self.dir.pair_key(&envelope.sender) else {
                    tracing::warn!(sender = %envelope.sender, "private envelope from a peer without exchange key");
                    return None;
                };
                match envelope.open(self.dir.me(), &pair) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(error = %e, "dropping envelope");
                        return None;
                    }
                }
            }
            _ => Payload::from(envelope.payload.clone()),
        };
        Some(Inbound { envelope, payload })
    }

    /// Hand a session start to the dispatcher, once per session id and within
    /// [`MAX_CONCURRENT_STARTS`].
    async fn take_start(&self, envelope: Envelope, control: Control, starts: &mpsc::Sender<StartRequest>) {
        // Known senders only reach here (`accept`), so the buckets are bounded by the cluster.
        if !self.peer_limits.admit_start(&envelope.sender) {
            let n = self.counters.throttled_starts.fetch_add(1, Ordering::Relaxed) + 1;
            if n == 1 || n.is_multiple_of(1000) {
                tracing::warn!(sender = %envelope.sender, throttled = n, "session starts over a fifth of limits.peer_messages_per_second; dropped");
            }
            return;
        }
        let fresh = self
            .routes
            .lock()
            .is_ok_and(|mut r| r.remember_start(envelope.session, Some(&envelope.sender), Instant::now()));
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
        let code = mpcium_api::ErrorCode::ConcurrencyLimit;
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
            code: Some(code),
            reason,
            output: None,
            attestation: String::new(),
            key_infos: Vec::new(),
            nonces: Vec::new(),
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

    /// A running session's message is verified and queued; one for a session not started here
    /// is buffered as it came (verified when the session opens).
    fn route(&self, envelope: Envelope) {
        let id = envelope.session;
        let live = self.routes.lock().ok().and_then(|r| r.live.get(&id).cloned());
        if let Some(tx) = live {
            let Some(inbound) = self.verified(envelope) else { return };
            self.queue(&tx, inbound);
            return;
        }
        let Ok(mut routes) = self.routes.lock() else { return };
        if let Some(tx) = routes.live.get(&id).cloned() {
            // Opened meanwhile.
            drop(routes);
            let Some(inbound) = self.verified(envelope) else { return };
            self.queue(&tx, inbound);
            return;
        }
        self.buffer(&mut routes, envelope);
    }

    /// Put a verified message in its running session's queue, within the bounds.
    fn queue(&self, tx: &mpsc::Sender<Inbound>, inbound: Inbound) {
        let id = inbound.envelope.session;
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
                if let Ok(mut routes) = self.routes.lock() {
                    routes.live.remove(&id);
                }
            }
        }
    }

    /// Keep an unverified message for a session not started here, within the bounds.
    fn buffer(&self, routes: &mut Routes, envelope: Envelope) {
        let id = envelope.session;
        let now = Instant::now();
        if routes.last_sweep.is_none_or(|at| now.duration_since(at) >= PENDING_SWEEP) {
            routes.last_sweep = Some(now);
            let expired: Vec<[u8; 32]> = routes
                .pending
                .iter()
                .filter(|(_, p)| now.duration_since(p.since) >= PENDING_TTL)
                .map(|(k, _)| *k)
                .collect();
            for key in expired {
                if let Some(p) = routes.pending.remove(&key) {
                    routes.release(&p);
                }
            }
        }
        let sender = envelope.sender.clone();
        let (sender_sessions, sender_bytes) =
            routes.pending_by_sender.get(&sender).map(|p| (p.sessions, p.bytes)).unwrap_or_default();
        let new_session = !routes.pending.contains_key(&id);
        if new_session && routes.pending.len() >= MAX_PENDING_SESSIONS {
            self.drop_message("too many unknown sessions buffered");
            return;
        }
        if new_session && sender_sessions >= MAX_PENDING_SESSIONS_PER_PEER {
            self.drop_message("too many unknown sessions buffered from one peer");
            return;
        }
        let size = envelope.payload.len();
        if routes.pending_bytes + size > MAX_PENDING_BYTES {
            self.drop_message("the buffer of unknown sessions is full");
            return;
        }
        if sender_bytes + size > MAX_PENDING_BYTES_PER_PEER {
            self.drop_message("one peer's part of the buffer of unknown sessions is full");
            return;
        }
        let pending = routes.pending.entry(id).or_insert_with(|| Pending {
            since: now,
            messages: Vec::new(),
            bytes: 0,
            opened_by: sender.clone(),
        });
        if pending.messages.iter().filter(|m| m.sender == sender).count() >= MAX_PENDING_PER_SESSION {
            self.drop_message("one peer's part of an unknown session's buffer is full");
            return;
        }
        pending.messages.push(envelope);
        pending.bytes += size;
        routes.pending_bytes += size;
        let part = routes.pending_by_sender.entry(sender).or_default();
        part.bytes += size;
        if new_session {
            part.sessions += 1;
        }
    }

    fn drop_message(&self, why: &'static str) {
        let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        // Logged now and then, not per message: a flood must not become a flood of log lines.
        if dropped == 1 || dropped.is_multiple_of(1000) {
            tracing::warn!(why, dropped, "dropping a message (every 1000th drop is logged)");
        }
    }

    /// Start receiving a session's messages (including those that arrived before). The id is
    /// remembered like a start's, so a start for it arriving later is a replay.
    pub fn open_session(&self, id: [u8; 32]) -> SessionInbox {
        let (tx, rx) = mpsc::channel(SESSION_QUEUE);
        if let Ok(mut routes) = self.routes.lock() {
            if let Some(pending) = routes.pending.remove(&id) {
                routes.release(&pending);
                // Checked now, in order, before anything that arrives after the route is in.
                for m in pending.messages.into_iter().filter_map(|m| self.verified(m)) {
                    let size = m.size();
                    if tx.try_send(m).is_ok() {
                        self.queued.fetch_add(size, Ordering::Relaxed);
                    }
                }
            }
            routes.remember_start(id, None, Instant::now());
            routes.live.insert(id, tx);
        }
        SessionInbox { id, rx, routes: self.routes.clone(), queued: self.queued.clone() }
    }
}
