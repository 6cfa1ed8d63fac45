//! One audit entry: what it records, its canonical bytes, its place in the node's hash chain and
//! its signature by the node's Ed25519 identity key.
//!
//! The stream message's payload *is* the canonical bytes (compact JSON of [`AuditEntry`], fields
//! in declaration order), so a reader hashes and verifies exactly what was written and never
//! re-serialises. The signature travels in the [`SIGNATURE_HEADER`] header, over
//! [`SIGNING_DOMAIN`] ‖ payload.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The format version of [`AuditEntry`].
pub const ENTRY_VERSION: u32 = 1;

/// The header carrying the entry's Ed25519 signature (hex).
pub const SIGNATURE_HEADER: &str = "Mpcium-Audit-Signature";

/// Signed before the payload, so an audit signature can never be replayed as another message.
pub const SIGNING_DOMAIN: &[u8] = b"mpcium-audit-entry-v1\x00";

/// The `prev_hash` of a node's first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What kind of event an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// A client request this node handled as its coordinator (one entry per delivery it ran).
    Request,
    /// A protocol session this node took part in.
    Session,
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Answered with a result / this node's part finished.
    Success,
    /// Answered with an error / this node's part failed.
    Failure,
    /// A transient failure: the request went back to JetStream for another delivery.
    HandedBack,
}

/// The event itself: public request fields and what became of it, never secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Request or session.
    pub kind: RecordKind,
    /// `keygen`, `sign`, `reshare` or `presign`.
    pub operation: String,
    /// The request's id as the sessions carry it (`<tx id | wallet | session id>#<delivery>`).
    pub request_id: String,
    /// The session id (hex) for a session entry.
    pub session_id: Option<String>,
    /// The wallet.
    pub wallet_id: String,
    /// The transaction id of a signing request.
    pub tx_id: Option<String>,
    /// `secp256k1` or `ed25519` (none for a keygen, which makes both).
    pub key_type: Option<String>,
    /// The request's `ClientID` header, if any.
    pub client_id: Option<String>,
    /// The coordinator of the request or session.
    pub coordinator: String,
    /// The nodes that took part (for a request: the members of its last session).
    pub participants: Vec<String>,
    /// How many sessions the coordinator ran for the request (re-selections count).
    pub attempts: u32,
    /// How it ended.
    pub outcome: Outcome,
    /// The wire error code of a failure.
    pub error_code: Option<String>,
    /// The reason the client (or coordinator) was told.
    pub error_reason: Option<String>,
    /// Nodes this node's run named as faulty, banned or silent.
    pub culprits: Vec<String>,
    /// The approval rules by value (`policy.rules`) that applied to the request and were met,
    /// by name (absent in entries written before the field existed).
    #[serde(default)]
    pub policy: Vec<String>,
    /// When the work began (ms since the Unix epoch).
    pub started_at_ms: u64,
    /// When it ended.
    pub finished_at_ms: u64,
}

/// A record in its node's chain: the stream message's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// [`ENTRY_VERSION`].
    pub version: u32,
    /// The node that wrote (and signed) it.
    pub node_id: String,
    /// Its position in the node's chain, from 1, without gaps.
    pub seq: u64,
    /// SHA-256 (hex) of the previous entry's payload; [`GENESIS_HASH`] for seq 1.
    pub prev_hash: String,
    /// Records this node could not queue (its queue was full) since the previous entry: a loss
    /// the chain itself admits instead of hiding.
    pub dropped_before: u64,
    /// When the writer sealed it (ms since the Unix epoch).
    pub written_at_ms: u64,
    /// The event.
    pub record: AuditRecord,
}

/// An entry with its canonical bytes and signature, ready to publish.
#[derive(Debug, Clone)]
pub struct SealedEntry {
    /// The entry.
    pub entry: AuditEntry,
    /// Its canonical bytes (the message payload).
    pub payload: Vec<u8>,
    /// Hex of the signature over [`SIGNING_DOMAIN`] ‖ payload.
    pub signature_hex: String,
}

/// An entry whose signature verified under its node's identity key.
#[derive(Debug, Clone)]
pub struct VerifiedEntry {
    entry: AuditEntry,
    hash: String,
}

impl VerifiedEntry {
    /// The entry.
    pub fn entry(&self) -> &AuditEntry {
        &self.entry
    }

    /// SHA-256 (hex) of its payload: the next entry's `prev_hash`.
    pub fn hash(&self) -> &str {
        &self.hash
    }
}

/// Why an entry cannot be read or does not verify.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// The payload is not an entry.
    #[error("payload is not an audit entry: {0}")]
    Format(String),
    /// No signature header, or not 64 bytes of hex.
    #[error("missing or malformed signature header")]
    SignatureMissing,
    /// The signature does not verify: the entry was edited, or not written by that node.
    #[error("signature does not verify under the node's identity key (entry edited or forged)")]
    SignatureInvalid,
}

/// SHA-256 (hex) of an entry's payload.
pub fn payload_hash(payload: &[u8]) -> String {
    hex::encode(Sha256::digest(payload))
}

fn signed_bytes(payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(SIGNING_DOMAIN.len() + payload.len());
    bytes.extend_from_slice(SIGNING_DOMAIN);
    bytes.extend_from_slice(payload);
    bytes
}

/// Serialise and sign an entry.
pub fn seal(entry: AuditEntry, key: &SigningKey) -> SealedEntry {
    // A struct of strings, integers and enums always serialises.
    let payload = serde_json::to_vec(&entry).expect("an audit entry serialises");
    let signature_hex = hex::encode(key.sign(&signed_bytes(&payload)).to_bytes());
    SealedEntry { entry, payload, signature_hex }
}

/// Parse an entry without checking it (to name it in a report, or to resume a chain).
pub fn parse(payload: &[u8]) -> Result<AuditEntry, EntryError> {
    serde_json::from_slice(payload).map_err(|e| EntryError::Format(e.to_string()))
}

/// Parse an entry and verify its signature under `key`.
pub fn open(
    payload: &[u8],
    signature_hex: Option<&str>,
    key: &VerifyingKey,
) -> Result<VerifiedEntry, EntryError> {
    let entry = parse(payload)?;
    let signature: [u8; 64] = signature_hex
        .and_then(|h| hex::decode(h).ok())
        .and_then(|b| b.try_into().ok())
        .ok_or(EntryError::SignatureMissing)?;
    key.verify(&signed_bytes(payload), &Signature::from_bytes(&signature))
        .map_err(|_| EntryError::SignatureInvalid)?;
    Ok(VerifiedEntry { entry, hash: payload_hash(payload) })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn record() -> AuditRecord {
        AuditRecord {
            kind: RecordKind::Session,
            operation: "sign".into(),
            request_id: "tx-1#5.1".into(),
            session_id: Some("ab".into()),
            wallet_id: "w".into(),
            tx_id: Some("tx-1".into()),
            key_type: Some("ed25519".into()),
            client_id: None,
            coordinator: "node0".into(),
            participants: vec!["node0".into(), "node1".into()],
            attempts: 1,
            outcome: Outcome::Success,
            error_code: None,
            error_reason: None,
            culprits: vec![],
            policy: vec![],
            started_at_ms: 1,
            finished_at_ms: 2,
        }
    }

    fn entry() -> AuditEntry {
        AuditEntry {
            version: ENTRY_VERSION,
            node_id: "node0".into(),
            seq: 1,
            prev_hash: GENESIS_HASH.into(),
            dropped_before: 0,
            written_at_ms: 3,
            record: record(),
        }
    }

    #[test]
    fn a_sealed_entry_opens_and_an_edited_one_does_not() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let sealed = seal(entry(), &key);
        let opened = open(&sealed.payload, Some(&sealed.signature_hex), &key.verifying_key()).unwrap();
        assert_eq!(opened.entry(), &sealed.entry);
        assert_eq!(opened.hash(), payload_hash(&sealed.payload));

        let edited = String::from_utf8(sealed.payload.clone()).unwrap().replace("node1", "node9");
        let err = open(edited.as_bytes(), Some(&sealed.signature_hex), &key.verifying_key()).unwrap_err();
        assert!(matches!(err, EntryError::SignatureInvalid), "{err}");

        let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
        assert!(matches!(
            open(&sealed.payload, Some(&sealed.signature_hex), &other),
            Err(EntryError::SignatureInvalid)
        ));
        assert!(matches!(
            open(&sealed.payload, None, &key.verifying_key()),
            Err(EntryError::SignatureMissing)
        ));
    }

    #[test]
    fn canonical_bytes_are_stable() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let a = seal(entry(), &key);
        let b = seal(parse(&a.payload).unwrap(), &key);
        assert_eq!(a.payload, b.payload, "re-serialising a parsed entry gives the same bytes");
    }
}
