//! The node's audit writer: one task per node that seals records into its hash chain and appends
//! them to `mpc-audit`, off the request path.
//!
//! Request and session code hands records to [`AuditLog::record`], which never waits: a bounded
//! queue ([`QUEUE_CAPACITY`]) feeds the writer. A record that finds the queue full is not
//! written; it is counted (`/metrics`, a warning) and the next entry written carries the count
//! in `dropped_before`, so the loss shows in the chain itself.
//!
//! The writer continues the chain a previous run of the node left: at start it reads the node's
//! last entry from the stream (its `seq` and the hash of its payload). An append is retried until
//! JetStream stores it (every entry's `Nats-Msg-Id` is `<node>.<seq>`, so a retry whose first
//! try was stored after all is deduplicated): a sequence number is never skipped. At shutdown
//! the writer gets [`FLUSH_FOR`] to write what is queued; what is still queued then is lost, and
//! counted as dropped in the log line.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, stream::LastRawMessageErrorKind};
use ed25519_dalek::SigningKey;
use tokio::sync::{mpsc, watch};

use super::entry::{self, AuditEntry, AuditRecord, ENTRY_VERSION, GENESIS_HASH};
use super::{AUDIT_STREAM, node_subject};

/// Records queued for the writer at most. Generous: a record is a few hundred bytes, and a
/// queue this long covers minutes of a NATS outage at a busy node's request rate.
pub const QUEUE_CAPACITY: usize = 16_384;

/// How long a stopping node's writer may take to write what is queued.
pub const FLUSH_FOR: Duration = Duration::from_secs(5);

/// Counters of the audit writer (for `/metrics`).
#[derive(Debug, Default)]
pub struct AuditCounters {
    /// Entries stored in the stream.
    pub written: AtomicU64,
    /// Records not written because the queue was full (or still queued at shutdown).
    pub dropped: AtomicU64,
    /// Appends JetStream did not take at the first try.
    pub retries: AtomicU64,
    /// Dropped since the last entry written (carried by the next entry).
    unreported_drops: AtomicU64,
}

/// The handle request and session code records through. Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<AuditRecord>,
    counters: Arc<AuditCounters>,
}

impl AuditLog {
    /// Queue a record for the writer; never waits. A full queue drops and counts it.
    pub fn record(&self, record: AuditRecord) {
        if let Err(e) = self.queue.try_send(record) {
            let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            self.counters.unreported_drops.fetch_add(1, Ordering::Relaxed);
            let why = match e {
                mpsc::error::TrySendError::Full(_) => "queue full",
                mpsc::error::TrySendError::Closed(_) => "writer stopped",
            };
            tracing::warn!(dropped, why, "audit record not written");
        }
    }

    /// The writer's counters.
    pub fn counters(&self) -> Arc<AuditCounters> {
        self.counters.clone()
    }
}

/// The running writer: stop it with [`AuditWriter::finish`].
pub struct AuditWriter {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl AuditWriter {
    /// Write what is queued (for up to [`FLUSH_FOR`]) and stop.
    pub async fn finish(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Stop at once, as a crash would (for tests).
    pub fn abort(self) {
        self.task.abort();
    }
}

/// Start the node's writer. It reads the head of the node's chain once `mpc-audit` exists
/// ([`super::ensure_stream`]), retrying meanwhile; records queue until then.
pub fn spawn(js: jetstream::Context, node_id: String, key: SigningKey) -> (AuditLog, AuditWriter) {
    let (log, pending) = prepare(js, node_id, key);
    (log, pending.start())
}

/// The node's log, to record into at once, and its writer, to start once `mpc-audit` exists
/// (a node makes the stream after assembling the service that records): records queue
/// meanwhile.
pub fn prepare(js: jetstream::Context, node_id: String, key: SigningKey) -> (AuditLog, PendingWriter) {
    let (queue, records) = mpsc::channel(QUEUE_CAPACITY);
    let counters = Arc::new(AuditCounters::default());
    let chain = Chain { js, subject: node_subject(&node_id), node_id, key, counters: counters.clone() };
    (AuditLog { queue, counters }, PendingWriter { chain, records })
}

/// A writer not started yet (see [`prepare`]).
pub struct PendingWriter {
    chain: Chain,
    records: mpsc::Receiver<AuditRecord>,
}

impl PendingWriter {
    /// Start writing what is queued and what comes.
    pub fn start(self) -> AuditWriter {
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(self.chain.run(self.records, stop_rx));
        AuditWriter { stop, task }
    }
}

/// Where the node's chain stands: the last entry's seq and payload hash.
struct Head {
    seq: u64,
    hash: String,
}

struct Chain {
    js: jetstream::Context,
    node_id: String,
    subject: String,
    key: SigningKey,
    counters: Arc<AuditCounters>,
}

/// The pause between tries of a failed read or append, at most.
const MAX_PAUSE: Duration = Duration::from_secs(2);

impl Chain {
    async fn run(self, mut records: mpsc::Receiver<AuditRecord>, mut stop: watch::Receiver<bool>) {
        let resumed = tokio::select! {
            head = self.resume() => Some(head),
            _ = stop.wait_for(|s| *s) => None,
        };
        let mut deadline: Option<tokio::time::Instant> = None;
        let mut head = match resumed {
            Some(head) => head,
            // Stopping before the chain was read: the flush time covers reading it too.
            None => {
                let at = tokio::time::Instant::now() + FLUSH_FOR;
                deadline = Some(at);
                match tokio::time::timeout_at(at, self.resume()).await {
                    Ok(head) => head,
                    Err(_) => {
                        self.lose_queued(&mut records, "the node stopped before its audit chain was read");
                        return;
                    }
                }
            }
        };
        tracing::info!(seq = head.seq, "audit chain continues");
        loop {
            let record = match deadline {
                None => tokio::select! {
                    record = records.recv() => record,
                    _ = stop.wait_for(|s| *s) => {
                        deadline = Some(tokio::time::Instant::now() + FLUSH_FOR);
                        continue;
                    }
                },
                Some(at) => match records.try_recv() {
                    Ok(r) if tokio::time::Instant::now() < at => Some(r),
                    Ok(r) => {
                        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                        drop(r);
                        self.lose_queued(&mut records, "audit flush time over at shutdown");
                        return;
                    }
                    Err(_) => return,
                },
            };
            let Some(record) = record else { return };
            let dropped_before = self.counters.unreported_drops.swap(0, Ordering::Relaxed);
            loop {
                let entry = AuditEntry {
                    version: ENTRY_VERSION,
                    node_id: self.node_id.clone(),
                    seq: head.seq + 1,
                    prev_hash: head.hash.clone(),
                    dropped_before,
                    written_at_ms: crate::now_ms(),
                    record: record.clone(),
                };
                let sealed = entry::seal(entry, &self.key);
                match self.append(&sealed, deadline).await {
                    Appended::Stored => {
                        self.counters.written.fetch_add(1, Ordering::Relaxed);
                        head = Head { seq: sealed.entry.seq, hash: entry::payload_hash(&sealed.payload) };
                        break;
                    }
                    Appended::Taken => {
                        // Another entry holds this seq: a publication of a previous run of this
                        // node landed after this run read its head. Continue after it.
                        tracing::warn!(
                            seq = sealed.entry.seq,
                            "audit seq already taken; re-reading the chain's head"
                        );
                        let resumed = match deadline {
                            None => Some(self.resume().await),
                            Some(at) => tokio::time::timeout_at(at, self.resume()).await.ok(),
                        };
                        let Some(resumed) = resumed else {
                            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                            self.lose_queued(&mut records, "audit flush time over at shutdown");
                            return;
                        };
                        head = resumed;
                    }
                    Appended::OutOfTime => {
                        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                        self.lose_queued(&mut records, "audit flush time over at shutdown");
                        return;
                    }
                }
            }
        }
    }

    fn lose_queued(&self, records: &mut mpsc::Receiver<AuditRecord>, why: &str) {
        records.close();
        let mut lost = 0u64;
        while records.try_recv().is_ok() {
            lost += 1;
        }
        self.counters.dropped.fetch_add(lost, Ordering::Relaxed);
        let dropped = self.counters.dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(lost, dropped, "{why}: audit records not written");
        }
    }

    /// The head of this node's chain as the stream holds it, retried until the stream answers.
    async fn resume(&self) -> Head {
        let mut pause = Duration::from_millis(100);
        loop {
            match self.read_head().await {
                Ok(head) => return head,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read this node's last audit entry yet; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                }
            }
        }
    }

    async fn read_head(&self) -> Result<Head, async_nats::Error> {
        let stream = self.js.get_stream(AUDIT_STREAM).await?;
        match stream.get_last_raw_message_by_subject(&self.subject).await {
            Ok(last) => {
                // The chain continues from what the stream holds, even an entry that does not
                // verify: `mpcium-cli audit verify` names that one, and a node must not stop
                // recording because someone damaged its history.
                let seq = match entry::parse(&last.payload) {
                    Ok(e) => e.seq,
                    Err(e) => {
                        tracing::error!(error = %e, stream_seq = last.sequence, "this node's last audit entry is unreadable; continuing after it");
                        0
                    }
                };
                Ok(Head { seq, hash: entry::payload_hash(&last.payload) })
            }
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {
                Ok(Head { seq: 0, hash: GENESIS_HASH.to_owned() })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Append until JetStream stores the entry (or says its seq is taken); gives up only when a
    /// shutdown's flush time ran out.
    async fn append(&self, sealed: &entry::SealedEntry, deadline: Option<tokio::time::Instant>) -> Appended {
        let mut pause = Duration::from_millis(100);
        loop {
            match self.append_once(sealed).await {
                Ok(appended) => return appended,
                Err(e) => {
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(seq = sealed.entry.seq, error = %e, "audit entry not stored yet; retrying");
                }
            }
            if deadline.is_some_and(|d| tokio::time::Instant::now() + pause >= d) {
                return Appended::OutOfTime;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }

    async fn append_once(&self, sealed: &entry::SealedEntry) -> Result<Appended, async_nats::Error> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(entry::SIGNATURE_HEADER, sealed.signature_hex.as_str());
        let msg_id = format!("{}.{}", self.node_id, sealed.entry.seq);
        headers.insert(mpcium_api::subjects::MSG_ID_HEADER, msg_id.as_str());
        let ack = self
            .js
            .publish_with_headers(self.subject.clone(), headers, sealed.payload.clone().into())
            .await?;
        let ack = tokio::time::timeout(Duration::from_secs(5), ack)
            .await
            .map_err(|_| "no JetStream ack within 5 s")??;
        if !ack.duplicate {
            return Ok(Appended::Stored);
        }
        // The same Nats-Msg-Id was stored before: this entry (an earlier try whose ack was lost)
        // or another with the same seq.
        let stream = self.js.get_stream(AUDIT_STREAM).await?;
        let stored = stream.get_raw_message(ack.sequence).await?;
        Ok(if stored.payload[..] == sealed.payload[..] { Appended::Stored } else { Appended::Taken })
    }
}

/// What became of an append.
enum Appended {
    /// The entry is in the stream.
    Stored,
    /// Another entry of this node holds its seq.
    Taken,
    /// A stopping node's flush time ran out first.
    OutOfTime,
}
