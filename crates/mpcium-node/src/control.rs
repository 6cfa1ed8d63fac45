//! Session control messages (JSON inside signed [`Kind::Control`](crate::envelope::Kind)
//! envelopes): the coordinator's session start, the broadcast echo, an abort, and a
//! participant's final report to the coordinator.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mpcium_api::{ClientId, ErrorCode};
use serde::{Deserialize, Serialize};

/// The largest control message accepted.
pub const MAX_CONTROL_BYTES: usize = 2 * 1024 * 1024;

/// A control message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Control {
    /// The coordinator announces a session to a participant.
    Start(SessionStart),
    /// What a participant received as broadcasts, for the reliable-broadcast check.
    Echo(EchoReport),
    /// A participant gave up; the others stop at once instead of waiting for a timeout.
    Abort(AbortNotice),
    /// A participant's outcome, sent to the coordinator.
    Done(DoneReport),
}

/// Why a control message was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Over [`MAX_CONTROL_BYTES`].
    #[error("control message of {0} bytes is over the limit")]
    TooLarge(usize),
    /// Not valid JSON of a known message.
    #[error("malformed control message: {0}")]
    Malformed(#[from] serde_json::Error),
}

impl Control {
    /// Encode as JSON bytes.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising these plain structs cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decode, with a size limit.
    pub fn decode(bytes: &[u8]) -> Result<Self, ControlError> {
        if bytes.len() > MAX_CONTROL_BYTES {
            return Err(ControlError::TooLarge(bytes.len()));
        }
        Ok(serde_json::from_slice(bytes)?)
    }
}

/// The operation a session runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionOp {
    /// Keygen of a wallet: its ECDSA, EdDSA and Taproot keys, three protocol runs, stored
    /// together.
    Keygen,
    /// A signature.
    Sign,
    /// A reshare.
    Reshare,
    /// Filling the presignature pool of a wallet.
    Presign,
    /// Keygen of a key made ahead of its wallet (`crate::keypool`): the same three DKGs as a
    /// keygen, stored under the pool id named in `request_id`; no client request.
    KeyPool,
}

/// The coordinator's announcement of a session. Every participant re-derives the session id
/// from these fields and checks the initiator's signature on `request` itself, so a
/// coordinator cannot make the others do work no initiator asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStart {
    /// What to run.
    pub op: SessionOp,
    /// The node that coordinates (and publishes the result).
    pub coordinator: String,
    /// The client's request exactly as received (base64), empty for internal sessions.
    pub request: String,
    /// The request's `ClientID` header, if any.
    pub client_id: Option<String>,
    /// The ordered participants (old committee for a reshare).
    pub participants: Vec<String>,
    /// The ordered new committee of a reshare; empty otherwise.
    pub new_participants: Vec<String>,
    /// The key version the session reads (keygen: creates).
    pub key_version: u32,
    /// The new threshold of a reshare (or the threshold of a keygen).
    pub threshold: u32,
    /// The request id bound into the session id (tx id, reshare session id, keygen request id).
    pub request_id: String,
    /// For a reshare: the old holders that deal (exactly old t + 1 of `participants`).
    #[serde(default)]
    pub dealers: Vec<String>,
    /// For an ECDSA signature: the presignature every participant uses (its id); `None` runs
    /// the full signing protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presignature: Option<String>,
    /// For a reshare: SHA-256 (hex) of the old key's public data every member deals or checks
    /// against (public key, threshold, public shares); each member compares it with its own
    /// view, and it is bound into the session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_key: Option<String>,
    /// For an EdDSA or Taproot signature: each signer's nonce drawn ahead (`crate::nonces`),
    /// sorted by node, one per participant; empty runs FROST's round 1 too. Bound into the
    /// session id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nonces: Vec<crate::nonces::NonceUse>,
    /// For a keygen: the key made ahead (`crate::keypool`, its pool id) every member hands to
    /// the wallet instead of running the DKGs; `None` runs them. Bound into the session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pooled_key: Option<String>,
}

impl SessionStart {
    /// A start of `op`, coordinated by `coordinator`, for `participants` at key version
    /// `key_version` and threshold `threshold`, under `request_id`. Every term of one operation
    /// only (the request, the client id, a reshare's committee and dealers, a presignature, drawn
    /// nonces, a pooled key) is empty: set those with struct update syntax.
    pub fn new(
        op: SessionOp,
        coordinator: impl Into<String>,
        participants: Vec<String>,
        key_version: u32,
        threshold: u32,
        request_id: impl Into<String>,
    ) -> Self {
        Self {
            op,
            coordinator: coordinator.into(),
            request: String::new(),
            client_id: None,
            participants,
            new_participants: Vec::new(),
            key_version,
            threshold,
            request_id: request_id.into(),
            dealers: Vec::new(),
            presignature: None,
            old_key: None,
            nonces: Vec::new(),
            pooled_key: None,
        }
    }

    /// The client's request bytes.
    pub fn request_bytes(&self) -> Result<Vec<u8>, base64::DecodeError> {
        STANDARD.decode(&self.request)
    }

    /// Set the request bytes.
    pub fn with_request(mut self, bytes: &[u8]) -> Self {
        self.request = STANDARD.encode(bytes);
        self
    }

    /// Carry a client's request: its bytes and the `ClientID` header it came with.
    pub fn with_client_request(mut self, client: Option<&ClientId>, bytes: &[u8]) -> Self {
        self.client_id = client.map(|c| c.as_str().to_owned());
        self.with_request(bytes)
    }
}

/// A session's request id: the id the client's request names (its tx id, wallet id or reshare
/// session id), `#`, and the coordinator's delivery (`<stream seq>.<delivery count>`, with
/// `.<attempt>` on a re-run), so every delivery and re-run of one request message is told apart.
pub fn request_id(named: &str, delivery: &str) -> String {
    format!("{named}#{delivery}")
}

/// The named id and the delivery of a request id (see [`request_id`]): split at the last `#`,
/// since a delivery has none. `None` when there is no `#`.
pub fn split_request_id(request_id: &str) -> Option<(&str, &str)> {
    request_id.rsplit_once('#')
}

/// The stream sequence of the request message a delivery names: every delivery and re-run of
/// one message has the same.
pub fn delivery_sequence(delivery: &str) -> &str {
    delivery.split('.').next().unwrap_or_default()
}

/// One broadcast a participant received: enough to prove equivocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EchoEntry {
    /// Who sent the broadcast.
    pub sender: String,
    /// Its sequence number.
    pub seq: u32,
    /// The envelope digest (base64).
    pub digest: String,
    /// The sender's signature over the digest (base64).
    pub signature: String,
}

/// Every broadcast a participant received in a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EchoReport {
    /// The entries, sorted by (sender, seq).
    pub entries: Vec<EchoEntry>,
}

/// A participant's abort.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortNotice {
    /// The wire error code (a peer's unknown code is read as `ERROR_OPERATION_ABORTED` by
    /// whoever acts on it).
    pub code: ErrorCode,
    /// Why.
    pub reason: String,
    /// The node ids it blames.
    pub culprits: Vec<String>,
}

fn code_or_empty<S: serde::Serializer>(code: &Option<ErrorCode>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(code.as_ref().map_or("", |c| c.as_str()))
}

/// A participant's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneReport {
    /// Success or not.
    pub ok: bool,
    /// On failure: the wire error code (`""` on success).
    #[serde(serialize_with = "code_or_empty", deserialize_with = "mpcium_api::optional_error_code")]
    pub code: Option<ErrorCode>,
    /// On failure: why.
    pub reason: String,
    /// On success: the operation's public output (`null` on failure).
    pub output: Option<SessionOutput>,
    /// On success: this participant's signature (base64) over the result's statement
    /// (`mpcium_api::attestation`); empty for sessions no client reads.
    #[serde(default)]
    pub attestation: String,
    /// On success: the key infos this participant computed and signed (keygen: both curves; a
    /// reshare's new holders: one), for the coordinator to write with every holder's signature.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_infos: Vec<crate::service::SignedKeyInfo>,
    /// On success of an EdDSA or Taproot signature: commitments of nonces this participant drew
    /// for the coordinator's next signatures with the same key (`crate::nonces`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nonces: Vec<crate::nonces::NonceOffer>,
}

/// What a session produced, as each participant reports it to the coordinator (hex strings;
/// the coordinator requires every participant to report the same).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SessionOutput {
    /// The public keys of a new wallet: ECDSA as the original's 64-byte X‖Y, EdDSA 32 bytes,
    /// Taproot the 32-byte x-only internal key.
    Keygen {
        /// The ECDSA public key.
        ecdsa: String,
        /// The EdDSA public key.
        eddsa: String,
        /// The Taproot internal key P, x-only.
        taproot: String,
    },
    /// An ECDSA signature.
    EcdsaSignature {
        /// r, 32 bytes.
        r: String,
        /// s, 32 bytes (low-S).
        s: String,
        /// The recovery id.
        v: u8,
        /// The key it verifies with (64-byte X‖Y of the wallet's key or its HD child).
        #[serde(default)]
        verifying_key: String,
    },
    /// An EdDSA signature, 64 bytes.
    EddsaSignature {
        /// R ‖ s.
        signature: String,
        /// The key it verifies with (the wallet's key or its HD child).
        #[serde(default)]
        verifying_key: String,
    },
    /// A BIP340 signature for a Taproot output key, 64 bytes.
    TaprootSignature {
        /// The BIP340 signature (R x-only ‖ s).
        signature: String,
        /// The x-only output key Q it verifies with (of the wallet's internal key or its HD
        /// child, with the request's merkle root).
        verifying_key: String,
    },
    /// The (unchanged) public key of a reshared wallet.
    Reshare {
        /// The public key in the key type's encoding.
        public_key: String,
    },
    /// A presignature made and stored under this id.
    Presignature {
        /// The presignature id.
        id: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_id_splits_back_even_when_the_named_id_holds_a_hash() {
        let id = request_id("tx#7", "12.1.2");
        assert_eq!(id, "tx#7#12.1.2");
        assert_eq!(split_request_id(&id), Some(("tx#7", "12.1.2")));
        assert_eq!(delivery_sequence("12.1.2"), "12");
        assert_eq!(delivery_sequence("12"), "12");
        assert_eq!(split_request_id("no-delivery"), None);
    }

    #[test]
    fn control_round_trips_and_rejects_junk() {
        let start = SessionStart {
            presignature: Some("v1-n0-0000000000000000aaaaaaaa-1.2".into()),
            ..SessionStart::new(SessionOp::Sign, "n0", vec!["n0".into(), "n1".into()], 1, 1, "tx")
        }
        .with_request(b"{\"x\":1}");
        let info = crate::registry::KeyInfo {
            participant_peer_ids: vec!["n0".into(), "n1".into()],
            threshold: 1,
            version: 1,
            public_key: "02ab".into(),
            public_shares: [(1, "02cd".to_owned()), (2, "02ef".to_owned())].into(),
            signatures: Default::default(),
            request: String::new(),
        };
        let done = Control::Done(DoneReport {
            ok: true,
            code: None,
            reason: String::new(),
            output: Some(SessionOutput::Reshare { public_key: "02ab".into() }),
            attestation: "c2ln".into(),
            key_infos: vec![crate::service::SignedKeyInfo {
                curve: "ecdsa".into(),
                info,
                signature: "c2ln".into(),
            }],
            nonces: vec![crate::nonces::NonceOffer {
                id: "00".into(),
                commitments: "ab".into(),
                signature: "c2ln".into(),
            }],
        });
        assert_eq!(Control::decode(&done.encode()).unwrap(), done, "integer map keys inside a tagged enum");
        let c = Control::Start(start.clone());
        let back = Control::decode(&c.encode()).unwrap();
        assert_eq!(back, c);
        assert_eq!(start.request_bytes().unwrap(), b"{\"x\":1}");
        assert!(Control::decode(b"{\"type\":\"nope\"}").is_err());
        assert!(Control::decode(b"not json").is_err());
        assert!(matches!(
            Control::decode(&vec![b' '; MAX_CONTROL_BYTES + 1]),
            Err(ControlError::TooLarge(_))
        ));
    }
}
