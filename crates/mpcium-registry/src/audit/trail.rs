//! Reading the trail back: every entry of `mpc-audit` in stream order, each node's chain checked
//! against the nodes' identity keys (`mpcium-cli audit verify`), and entries picked by wallet,
//! transaction or time (`mpcium-cli audit show`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use ed25519_dalek::VerifyingKey;
use futures_util::StreamExt;

use super::entry::{self, AuditEntry, GENESIS_HASH};
use super::{AUDIT_STREAM, AUDIT_SUBJECT_PREFIX};

/// One stored message of the stream.
#[derive(Debug, Clone)]
pub struct StoredEntry {
    /// Its stream sequence.
    pub stream_seq: u64,
    /// The subject's node token (`mpc.audit.<node>`).
    pub subject_node: String,
    /// The payload (the entry's canonical bytes).
    pub payload: Vec<u8>,
    /// The signature header, if present.
    pub signature: Option<String>,
}

/// Why the trail could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TrailError {
    /// JetStream failed (no stream, no connection, ...).
    #[error("reading stream {AUDIT_STREAM}: {0}")]
    Read(String),
}

fn read_error(e: impl std::fmt::Display) -> TrailError {
    TrailError::Read(e.to_string())
}

/// How long reading waits for the next message before it concludes the stream ended early.
const READ_IDLE: Duration = Duration::from_secs(10);

/// Every message of the stream, in stream order.
pub async fn read_all(js: &jetstream::Context) -> Result<Vec<StoredEntry>, TrailError> {
    let mut stream = js.get_stream(AUDIT_STREAM).await.map_err(read_error)?;
    let last = stream.info().await.map_err(read_error)?.state.last_sequence;
    let mut out = Vec::new();
    if stream.cached_info().state.messages == 0 {
        return Ok(out);
    }
    let ordered = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: format!("{AUDIT_SUBJECT_PREFIX}.>"),
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(read_error)?;
    let mut messages = ordered.messages().await.map_err(read_error)?;
    loop {
        let msg = tokio::time::timeout(READ_IDLE, messages.next())
            .await
            .map_err(|_| read_error("no message within 10 s before the stream's end"))?
            .ok_or_else(|| read_error("the consumer ended before the stream's end"))?
            .map_err(read_error)?;
        let info = msg.info().map_err(read_error)?;
        let (stream_seq, pending) = (info.stream_sequence, info.pending);
        let subject_node = msg.subject.as_str().rsplit('.').next().unwrap_or("").to_owned();
        let signature =
            msg.headers.as_ref().and_then(|h| h.get(entry::SIGNATURE_HEADER)).map(|v| v.as_str().to_owned());
        out.push(StoredEntry { stream_seq, subject_node, payload: msg.payload.to_vec(), signature });
        // Entries appended while reading are left for the next read.
        if pending == 0 || stream_seq >= last {
            break;
        }
    }
    Ok(out)
}

/// The first thing wrong with a node's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainProblem {
    /// The node whose chain it is (the subject's token).
    pub node: String,
    /// The entry's own sequence number when it could be read (else the expected one).
    pub seq: u64,
    /// Its stream sequence.
    pub stream_seq: u64,
    /// What is wrong.
    pub what: String,
}

impl std::fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "node {} entry seq {} (stream seq {}): {}", self.node, self.seq, self.stream_seq, self.what)
    }
}

/// The outcome of checking every chain.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Entries per node that checked.
    pub checked: BTreeMap<String, u64>,
    /// The first bad entry of each node whose chain does not check, in node order.
    pub problems: Vec<ChainProblem>,
}

impl VerifyReport {
    /// Whether every chain checked.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Check every node's chain. Per node, in stream order: every entry's signature verifies under
/// that node's key (so an edited or forged entry is named first, wherever it sits), then the
/// sequence numbers run 1, 2, 3… without a gap or repeat (a deleted or reordered entry) and each
/// `prev_hash` is the hash of the entry before it.
pub fn verify(stored: &[StoredEntry], keys: &HashMap<String, VerifyingKey>) -> VerifyReport {
    let mut by_node: BTreeMap<&str, Vec<&StoredEntry>> = BTreeMap::new();
    for s in stored {
        by_node.entry(s.subject_node.as_str()).or_default().push(s);
    }
    let mut report = VerifyReport::default();
    for (node, entries) in by_node {
        match verify_chain(node, &entries, keys.get(node)) {
            Ok(n) => {
                report.checked.insert(node.to_owned(), n);
            }
            Err(p) => report.problems.push(p),
        }
    }
    report
}

fn verify_chain(
    node: &str,
    entries: &[&StoredEntry],
    key: Option<&VerifyingKey>,
) -> Result<u64, ChainProblem> {
    let problem = |s: &StoredEntry, seq: u64, what: String| ChainProblem {
        node: node.to_owned(),
        seq,
        stream_seq: s.stream_seq,
        what,
    };
    let claimed = |s: &StoredEntry| entry::parse(&s.payload).map(|e| e.seq).unwrap_or(0);
    let Some(key) = key else {
        let first = entries[0];
        return Err(problem(first, claimed(first), "no identity key known for this node".into()));
    };
    let mut verified = Vec::with_capacity(entries.len());
    for s in entries {
        let v = entry::open(&s.payload, s.signature.as_deref(), key)
            .map_err(|e| problem(s, claimed(s), e.to_string()))?;
        if v.entry().node_id != node {
            return Err(problem(
                s,
                v.entry().seq,
                format!("names node {} but sits on {node}'s subject", v.entry().node_id),
            ));
        }
        verified.push((*s, v));
    }
    let (mut expected_seq, mut expected_hash) = (1u64, GENESIS_HASH.to_owned());
    for (s, v) in &verified {
        let e = v.entry();
        if e.seq != expected_seq {
            let what = if e.seq > expected_seq {
                format!("entries {expected_seq}..{} are missing (deleted)", e.seq - 1)
            } else {
                format!("out of order or repeated: seq {expected_seq} expected")
            };
            return Err(problem(s, e.seq, what));
        }
        if e.prev_hash != expected_hash {
            return Err(problem(s, e.seq, "prev_hash is not the hash of the entry before it".into()));
        }
        expected_seq += 1;
        expected_hash = v.hash().to_owned();
    }
    Ok(verified.len() as u64)
}

/// Which entries `audit show` lists.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this wallet.
    pub wallet: Option<String>,
    /// Only this transaction id.
    pub tx: Option<String>,
    /// Only entries whose work ended at or after this time (ms since the Unix epoch).
    pub since_ms: Option<u64>,
}

impl Filter {
    /// Whether an entry passes.
    pub fn matches(&self, e: &AuditEntry) -> bool {
        self.wallet.as_ref().is_none_or(|w| *w == e.record.wallet_id)
            && self.tx.as_ref().is_none_or(|t| e.record.tx_id.as_ref() == Some(t))
            && self.since_ms.is_none_or(|s| e.record.finished_at_ms >= s)
    }
}

/// The readable entries that pass `filter`, in stream order (unchecked: `verify` says whether
/// they can be trusted).
pub fn select(stored: &[StoredEntry], filter: &Filter) -> Vec<AuditEntry> {
    stored.iter().filter_map(|s| entry::parse(&s.payload).ok()).filter(|e| filter.matches(e)).collect()
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::audit::entry::{AuditRecord, ENTRY_VERSION, Outcome, RecordKind, payload_hash, seal};

    fn record(tx: &str) -> AuditRecord {
        AuditRecord {
            kind: RecordKind::Request,
            operation: "sign".into(),
            request_id: format!("{tx}#1.1"),
            session_id: None,
            wallet_id: "w".into(),
            tx_id: Some(tx.into()),
            key_type: Some("ed25519".into()),
            client_id: None,
            coordinator: "n0".into(),
            participants: vec!["n0".into()],
            attempts: 1,
            outcome: Outcome::Success,
            error_code: None,
            error_reason: None,
            culprits: vec![],
            policy: vec![],
            started_at_ms: 10,
            finished_at_ms: 20,
        }
    }

    fn chain(key: &SigningKey, n: u64) -> Vec<StoredEntry> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let e = AuditEntry {
                    version: ENTRY_VERSION,
                    node_id: "n0".into(),
                    seq,
                    prev_hash: prev.clone(),
                    dropped_before: 0,
                    written_at_ms: 0,
                    record: record(&format!("tx-{seq}")),
                };
                let s = seal(e, key);
                prev = payload_hash(&s.payload);
                StoredEntry {
                    stream_seq: seq,
                    subject_node: "n0".into(),
                    payload: s.payload,
                    signature: Some(s.signature_hex),
                }
            })
            .collect()
    }

    #[test]
    fn intact_deleted_reordered_and_edited_chains() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let keys = HashMap::from([("n0".to_owned(), key.verifying_key())]);
        let good = chain(&key, 4);
        let report = verify(&good, &keys);
        assert!(report.ok(), "{:?}", report.problems);
        assert_eq!(report.checked["n0"], 4);

        let mut deleted = good.clone();
        deleted.remove(1);
        let p = &verify(&deleted, &keys).problems[0];
        assert_eq!((p.seq, p.stream_seq), (3, 3), "{p}");
        assert!(p.what.contains("missing"), "{p}");

        let mut reordered = good.clone();
        reordered.swap(1, 2);
        let p = &verify(&reordered, &keys).problems[0];
        assert_eq!(p.seq, 3, "{p}");

        let mut edited = good.clone();
        edited[2].payload =
            String::from_utf8(edited[2].payload.clone()).unwrap().replace("tx-3", "tx-X").into_bytes();
        let p = &verify(&edited, &keys).problems[0];
        assert_eq!(p.seq, 3, "{p}");
        assert!(p.what.contains("signature"), "{p}");

        let mut truncated_head = good.clone();
        truncated_head.remove(0);
        assert!(!verify(&truncated_head, &keys).ok());

        assert!(!verify(&good, &HashMap::new()).ok(), "an unknown node does not check");
    }

    #[test]
    fn filter_by_wallet_tx_and_time() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let stored = chain(&key, 3);
        let f = Filter { tx: Some("tx-2".into()), ..Default::default() };
        assert_eq!(select(&stored, &f).len(), 1);
        let f = Filter { wallet: Some("other".into()), ..Default::default() };
        assert!(select(&stored, &f).is_empty());
        let f = Filter { since_ms: Some(21), ..Default::default() };
        assert!(select(&stored, &f).is_empty());
    }
}
