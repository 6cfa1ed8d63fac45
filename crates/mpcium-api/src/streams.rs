//! JetStream stream and durable-consumer definitions of the original (docs/wire.md §2), as plain
//! data for whoever talks to NATS. The Go node and Go client both `CreateOrUpdate` these, so ours
//! must be identical or the two sides fight over the configuration.

use std::time::Duration;

use crate::ids::ClientId;
use crate::subjects;

/// Stream retention policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Keep until limits (the server default).
    Limits,
    /// Keep while a consumer is interested.
    Interest,
    /// Delete once acknowledged.
    WorkQueue,
}

/// Stream storage backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// On disk (the server default).
    File,
    /// In memory.
    Memory,
}

/// A stream configuration. Fields not listed are server defaults (discard old, one replica).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    /// Stream name.
    pub name: &'static str,
    /// Subjects captured.
    pub subjects: &'static [&'static str],
    /// Description (`Stream for <name>`).
    pub description: &'static str,
    /// Retention policy.
    pub retention: Retention,
    /// Storage backend.
    pub storage: Storage,
    /// Maximum message age; `None` = unlimited.
    pub max_age: Option<Duration>,
    /// Maximum stream size in bytes.
    pub max_bytes: i64,
    /// De-duplication window for `Nats-Msg-Id` (the server default, stated explicitly).
    pub duplicate_window: Duration,
}

const SEVEN_DAYS: Duration = Duration::from_secs(7 * 24 * 60 * 60);
const STREAM_MAX_BYTES: i64 = 100_000_000;
const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// `mpc-keygen`: keygen requests. The original computes Interest retention but never applies it,
/// so the stream has server-default **Limits** retention (requests kept 7 days after ack).
pub const KEYGEN_REQUEST_STREAM: StreamSpec = StreamSpec {
    name: "mpc-keygen",
    subjects: &[subjects::KEYGEN_REQUEST_FILTER],
    description: "Stream for mpc-keygen",
    retention: Retention::Limits,
    storage: Storage::File,
    max_age: Some(SEVEN_DAYS),
    max_bytes: STREAM_MAX_BYTES,
    duplicate_window: DEFAULT_DUPLICATE_WINDOW,
};

/// `mpc-signing`: sign requests (same configuration as [`KEYGEN_REQUEST_STREAM`]).
pub const SIGNING_REQUEST_STREAM: StreamSpec = StreamSpec {
    name: "mpc-signing",
    subjects: &[subjects::SIGNING_REQUEST_FILTER],
    description: "Stream for mpc-signing",
    retention: Retention::Limits,
    storage: Storage::File,
    max_age: Some(SEVEN_DAYS),
    max_bytes: STREAM_MAX_BYTES,
    duplicate_window: DEFAULT_DUPLICATE_WINDOW,
};

/// `mpc`: result events, WorkQueue retention, no age limit.
pub const RESULT_STREAM: StreamSpec = StreamSpec {
    name: "mpc",
    subjects: &subjects::RESULT_STREAM_SUBJECTS,
    description: "Stream for mpc",
    retention: Retention::WorkQueue,
    storage: Storage::File,
    max_age: None,
    max_bytes: STREAM_MAX_BYTES,
    duplicate_window: DEFAULT_DUPLICATE_WINDOW,
};

/// A durable pull consumer. All of the original's consumers use explicit acks and deliver-all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSpec {
    /// Durable name (already sanitized; also the consumer `Name`).
    pub durable_name: String,
    /// Stream it reads.
    pub stream: &'static str,
    /// Filter subject.
    pub filter_subject: String,
    /// Ack wait.
    pub ack_wait: Duration,
    /// Maximum deliveries.
    pub max_deliver: i64,
    /// Redelivery back-off (empty = none).
    pub backoff: Vec<Duration>,
    /// Maximum unacknowledged messages.
    pub max_ack_pending: i64,
}

/// Default `max_concurrent_keygen` (the keygen consumer's `MaxAckPending`).
pub const DEFAULT_MAX_CONCURRENT_KEYGEN: i64 = 2;
/// Default `max_concurrent_signing` (the signing consumer's `MaxAckPending`).
pub const DEFAULT_MAX_CONCURRENT_SIGNING: i64 = 20;

const THIRTY_SECONDS: Duration = Duration::from_secs(30);

/// The signing consumer's AckWait, the first delivery's (the original waits 30 s). A node
/// working on a request acknowledges progress five times per AckWait, so a request held by a
/// node that died or was cut off before it could tell its peers goes to another node after
/// 1.5 s instead of 30 s (docs/wire.md, our departures).
pub const SIGNING_ACK_WAIT: Duration = Duration::from_millis(1500);

/// The signing consumer's BackOff (JetStream takes its first value as the AckWait): later
/// deliveries wait longer, so the four span about half a minute (a NATS leader election takes
/// 4 to 9 s) before JetStream gives a request up.
pub const SIGNING_BACKOFF: [Duration; 3] =
    [SIGNING_ACK_WAIT, Duration::from_secs(5), Duration::from_secs(10)];

fn request_consumer(
    name: &str,
    stream: &'static str,
    filter: &str,
    max_ack_pending: i64,
    ack_wait: Duration,
    backoff: Vec<Duration>,
) -> ConsumerSpec {
    ConsumerSpec {
        durable_name: sanitize_consumer_name(name),
        stream,
        filter_subject: filter.to_owned(),
        ack_wait,
        max_deliver: 4,
        backoff,
        max_ack_pending,
    }
}

/// The shared keygen request consumer `mpc_keygen_consumer` (each request reaches one node).
pub fn keygen_request_consumer(max_concurrent_keygen: i64) -> ConsumerSpec {
    request_consumer(
        "mpc-keygen-consumer",
        KEYGEN_REQUEST_STREAM.name,
        subjects::KEYGEN_REQUEST_FILTER,
        max_concurrent_keygen,
        THIRTY_SECONDS,
        vec![THIRTY_SECONDS; 3],
    )
}

/// The shared signing request consumer `mpc_signing_consumer`.
pub fn signing_request_consumer(max_concurrent_signing: i64) -> ConsumerSpec {
    request_consumer(
        "mpc-signing-consumer",
        SIGNING_REQUEST_STREAM.name,
        subjects::SIGNING_REQUEST_FILTER,
        max_concurrent_signing,
        SIGNING_ACK_WAIT,
        SIGNING_BACKOFF.to_vec(),
    )
}

/// Go `event.ResultConsumerName`: `base` or `base.<clientID>` (before sanitizing).
pub fn result_consumer_name(base: &str, client: Option<&ClientId>) -> String {
    match client {
        Some(c) => format!("{base}.{c}"),
        None => base.to_owned(),
    }
}

fn result_consumer(base: &str, client: Option<&ClientId>, filter: String) -> ConsumerSpec {
    ConsumerSpec {
        durable_name: sanitize_consumer_name(&result_consumer_name(base, client)),
        stream: RESULT_STREAM.name,
        filter_subject: filter,
        ack_wait: THIRTY_SECONDS,
        max_deliver: 3,
        backoff: Vec::new(),
        max_ack_pending: 1000,
    }
}

/// Keygen result consumer: `mpc_keygen_result[_<clientID>]` on `mpc.mpc_keygen_result.[<clientID>.]*`.
pub fn keygen_result_consumer(client: Option<&ClientId>) -> ConsumerSpec {
    result_consumer("mpc_keygen_result", client, subjects::keygen_result_filter(client))
}

/// Signing result consumer: `mpc_signing_result[_<clientID>]` on
/// `mpc.mpc_signing_result.[<clientID>.]complete`.
pub fn signing_result_consumer(client: Option<&ClientId>) -> ConsumerSpec {
    result_consumer("mpc_signing_result", client, subjects::signing_result_filter(client))
}

/// Reshare result consumer: `mpc_reshare_result[_<clientID>]` on
/// `mpc.mpc_reshare_result.[<clientID>.]*`.
pub fn reshare_result_consumer(client: Option<&ClientId>) -> ConsumerSpec {
    result_consumer("mpc_reshare_result", client, subjects::reshare_result_filter(client))
}

/// The three unscoped result consumers every node creates at start, as the original's node does
/// (docs/wire.md §2.3): `mpc_keygen_result`, `mpc_signing_result`, `mpc_reshare_result` on `mpc`. Nodes
/// never read them; a client without a `ClientID` binds to them by name.
pub fn node_result_consumers() -> [ConsumerSpec; 3] {
    [keygen_result_consumer(None), signing_result_consumer(None), reshare_result_consumer(None)]
}

/// The original's consumer-name sanitizer: `.`, `:`, space and `-` → `_`; `>` → `all`;
/// `*` → `any`; then `_` is prefixed if the first character is neither a letter nor `_`.
///
/// Go tests the first *byte* as a Latin-1 rune (`unicode.IsLetter(rune(name[0]))`); we do the
/// same, so a name starting with a multi-byte UTF-8 letter gets the same treatment as in Go.
pub fn sanitize_consumer_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '.' | ':' | ' ' | '-' => out.push('_'),
            '>' => out.push_str("all"),
            '*' => out.push_str("any"),
            other => out.push(other),
        }
    }
    if let Some(&first) = out.as_bytes().first() {
        let first_rune = char::from(first);
        if !first_rune.is_alphabetic() && first != b'_' {
            out.insert(0, '_');
        }
    }
    out
}
