//! The tamper-evident audit trail (issue #15): every node appends one entry per request it
//! coordinates and per session it takes part in to the JetStream stream `mpc-audit`, on its own
//! subject `mpc.audit.<node id>`.
//!
//! - [`entry`]: what an entry holds, its canonical bytes, hash chain and Ed25519 signature.
//! - [`writer`]: the node's single writer task behind a bounded queue, which continues the chain
//!   across restarts and never skips a sequence number.
//! - [`trail`]: reading the stream back, checking each node's chain, and filtering entries.
//!
//! Each node's entries form a chain: entry n carries n and the SHA-256 of entry n-1's payload,
//! and is signed with the node's identity key. Anyone holding the nodes' identity public keys
//! detects an edited, forged, deleted (other than the newest) or reordered entry; what the chain
//! cannot show alone is the removal of a node's newest entries (ARCHITECTURE.md, "Audit trail").

use async_nats::jetstream::{self, stream};

pub mod entry;
pub mod trail;
pub mod writer;

pub use entry::{AuditEntry, AuditRecord, Outcome, RecordKind};
pub use writer::{AuditCounters, AuditLog, AuditWriter};

/// The stream's name.
pub const AUDIT_STREAM: &str = "mpc-audit";

/// Subjects of the stream: `mpc.audit.<node id>`.
pub const AUDIT_SUBJECT_PREFIX: &str = "mpc.audit";

/// The subject a node appends to.
pub fn node_subject(node_id: &str) -> String {
    format!("{AUDIT_SUBJECT_PREFIX}.{node_id}")
}

/// The stream's configuration: file storage, kept without age or size limits (the trail is
/// history; operators archive and purge it deliberately), replicas as `nats.replicas`.
pub fn stream_config() -> stream::Config {
    stream::Config {
        name: AUDIT_STREAM.to_owned(),
        subjects: vec![format!("{AUDIT_SUBJECT_PREFIX}.>")],
        description: Some("mpcium audit trail: per-node hash chains of signed entries".to_owned()),
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        ..Default::default()
    }
}

/// Create the stream when absent, and bring an existing one to `replicas` (see
/// [`crate::replicas::ensure_stream`]).
pub async fn ensure_stream(
    js: &jetstream::Context,
    replicas: usize,
) -> Result<stream::Stream, crate::replicas::ReplicaError> {
    crate::replicas::ensure_stream(js, stream_config(), replicas).await
}
