//! Subjects, headers and idempotency keys of the client-facing wire (docs/wire.md §1, §3, §6.1, §8.1).
//! Pure functions; nothing here talks to NATS.
//!
//! A client ID scopes result routing: `None` gives the original's legacy, unscoped names.

use crate::ids::ClientId;

/// Header carrying the client ID on requests (and copied by nodes).
pub const CLIENT_ID_HEADER: &str = "ClientID";
/// Header carrying the per-delivery session uuid the pulling node assigns.
pub const SESSION_ID_HEADER: &str = "SessionID";
/// JetStream de-duplication header set on every result publish.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";

/// Prefix of keygen request subjects.
pub const KEYGEN_REQUEST_PREFIX: &str = "mpc.keygen_request";
/// Filter of the keygen request stream and consumer. The Go client also publishes to this exact
/// literal string (a `*` token, accepted by a non-pedantic server).
pub const KEYGEN_REQUEST_FILTER: &str = "mpc.keygen_request.*";
/// Prefix of sign request subjects.
pub const SIGNING_REQUEST_PREFIX: &str = "mpc.signing_request";
/// Filter of the signing request stream and consumer; also the Go client's literal subject.
pub const SIGNING_REQUEST_FILTER: &str = "mpc.signing_request.*";
/// Core-NATS subject of reshare requests (no JetStream).
pub const RESHARE_REQUEST_SUBJECT: &str = "mpc:reshare";
/// Core-NATS fan-out subject for keygen inside the original cluster (node ↔ node).
pub const INTERNAL_GENERATE_SUBJECT: &str = "mpc:generate";
/// Core-NATS fan-out subject for signing inside the original cluster (node ↔ node).
pub const INTERNAL_SIGN_SUBJECT: &str = "mpc:sign";

/// Prefix of keygen result subjects and idempotency keys.
pub const KEYGEN_RESULT_PREFIX: &str = "mpc.mpc_keygen_result";
/// Prefix of signing result subjects and idempotency keys.
pub const SIGNING_RESULT_PREFIX: &str = "mpc.mpc_signing_result";
/// Prefix of reshare result subjects and idempotency keys.
pub const RESHARE_RESULT_PREFIX: &str = "mpc.mpc_reshare_result";
/// Last token of every signing result subject.
pub const SIGNING_RESULT_COMPLETE_TOKEN: &str = "complete";

/// Subjects of the result stream `mpc`.
pub const RESULT_STREAM_SUBJECTS: [&str; 3] =
    ["mpc.mpc_keygen_result.>", "mpc.mpc_signing_result.>", "mpc.mpc_reshare_result.>"];

/// `mpc.keygen_request.<token>` (what the TS client publishes, with the wallet ID as token).
pub fn keygen_request_subject(token: &str) -> String {
    format!("{KEYGEN_REQUEST_PREFIX}.{token}")
}

/// `mpc.signing_request.<token>` (what the TS client publishes, with the tx ID as token).
pub fn signing_request_subject(token: &str) -> String {
    format!("{SIGNING_REQUEST_PREFIX}.{token}")
}

fn scoped_subject(prefix: &str, client: Option<&ClientId>, tail: &str) -> String {
    match client {
        Some(c) => format!("{prefix}.{c}.{tail}"),
        None => format!("{prefix}.{tail}"),
    }
}

/// `mpc.mpc_keygen_result.[<clientID>.]<walletID>`.
pub fn keygen_result_subject(client: Option<&ClientId>, wallet_id: &str) -> String {
    scoped_subject(KEYGEN_RESULT_PREFIX, client, wallet_id)
}

/// Filter of a keygen result consumer: `mpc.mpc_keygen_result.[<clientID>.]*`.
pub fn keygen_result_filter(client: Option<&ClientId>) -> String {
    scoped_subject(KEYGEN_RESULT_PREFIX, client, "*")
}

/// `mpc.mpc_signing_result.[<clientID>.]complete` (also the consumer filter).
pub fn signing_result_subject(client: Option<&ClientId>) -> String {
    scoped_subject(SIGNING_RESULT_PREFIX, client, SIGNING_RESULT_COMPLETE_TOKEN)
}

/// Filter of a signing result consumer (same as the subject).
pub fn signing_result_filter(client: Option<&ClientId>) -> String {
    signing_result_subject(client)
}

/// `mpc.mpc_reshare_result.[<clientID>.]<sessionID>`.
pub fn reshare_result_subject(client: Option<&ClientId>, session_id: &str) -> String {
    scoped_subject(RESHARE_RESULT_PREFIX, client, session_id)
}

/// Filter of a reshare result consumer: `mpc.mpc_reshare_result.[<clientID>.]*`.
pub fn reshare_result_filter(client: Option<&ClientId>) -> String {
    scoped_subject(RESHARE_RESULT_PREFIX, client, "*")
}

/// Go `event.ScopedOperationID`: `[<clientID>:]<id>`.
pub fn scoped_operation_id(client: Option<&ClientId>, id: &str) -> String {
    match client {
        Some(c) => format!("{c}:{id}"),
        None => id.to_owned(),
    }
}

fn idempotency_key(prefix: &str, client: Option<&ClientId>, base: &str, session: Option<&str>) -> String {
    let unique = match session.filter(|s| !s.is_empty()) {
        Some(s) => format!("{base}:{s}"),
        None => base.to_owned(),
    };
    format!("{prefix}.{}", scoped_operation_id(client, &unique))
}

/// `Nats-Msg-Id` of a keygen result: `mpc.mpc_keygen_result.[<clientID>:]<walletID>[:<SessionID>]`
/// (`session` = the `SessionID` header of the delivery, if any).
pub fn keygen_idempotency_key(client: Option<&ClientId>, wallet_id: &str, session: Option<&str>) -> String {
    idempotency_key(KEYGEN_RESULT_PREFIX, client, wallet_id, session)
}

/// `Nats-Msg-Id` of a signing result: `mpc.mpc_signing_result.[<clientID>:]<txID>[:<SessionID>]`.
/// The max-delivery event uses it with `session = None`.
pub fn signing_idempotency_key(client: Option<&ClientId>, tx_id: &str, session: Option<&str>) -> String {
    idempotency_key(SIGNING_RESULT_PREFIX, client, tx_id, session)
}

/// `Nats-Msg-Id` of a reshare result:
/// `mpc.mpc_reshare_result.[<clientID>:]<session_id>[:<SessionID>]`.
pub fn reshare_idempotency_key(client: Option<&ClientId>, session_id: &str, session: Option<&str>) -> String {
    idempotency_key(RESHARE_RESULT_PREFIX, client, session_id, session)
}
