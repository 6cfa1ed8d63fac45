//! Request messages a client sends (docs/wire.md §4): field names, order and encodings of the Go structs
//! in `pkg/types/initiator_msg.go`.
//!
//! Decoding (`from_json`) is Go-tolerant: unknown fields are ignored, missing fields and `null`
//! take the zero value, `[]byte` fields are base64 (see [`crate::decode`] for the exact rules and
//! our few stricter choices). Encoding (`to_json`) reproduces the Go client's bytes exactly.
//! Decoding checks only the JSON shape; the semantic checks live in [`crate::validate`].

use serde::Deserialize;

use crate::decode::{self, DecodeError, go_bytes, null_as_default, object_list};
use crate::gojson::ObjectWriter;
use crate::key_type::KeyType;

/// One authorizer's signature over the authorizer payload (Go `types.AuthorizerSignature`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct AuthorizerSignature {
    /// `authorizer_id`: the ID under which the node's config holds the authorizer's public key.
    #[serde(default, deserialize_with = "null_as_default")]
    pub authorizer_id: String,
    /// `signature` (base64): over [`crate::canonical::authorizer_payload`]. `None` = JSON `null`.
    #[serde(default, deserialize_with = "go_bytes")]
    pub signature: Option<Vec<u8>>,
}

impl AuthorizerSignature {
    fn to_json(&self) -> String {
        let mut w = ObjectWriter::new();
        w.string("authorizer_id", &self.authorizer_id).bytes("signature", self.signature.as_deref());
        w.finish()
    }
}

/// Writes `authorizer_signatures` with Go's `omitempty` (absent when the list is empty).
fn write_authorizers(w: &mut ObjectWriter, list: &[AuthorizerSignature]) {
    if list.is_empty() {
        return;
    }
    let items: Vec<String> = list.iter().map(AuthorizerSignature::to_json).collect();
    w.raw("authorizer_signatures", &format!("[{}]", items.join(",")));
}

/// Keygen request (Go `types.GenerateKeyMessage`). One request creates both the secp256k1 and the
/// Ed25519 key of the wallet.
///
/// Wire: `{"wallet_id":…,"signature":<base64|null>,"authorizer_signatures":[…]}` (the last field
/// omitted when empty).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct GenerateKeyMessage {
    /// `wallet_id`: the wallet to create; also the bytes the initiator signs.
    #[serde(default, deserialize_with = "null_as_default")]
    pub wallet_id: String,
    /// `signature` (base64): the initiator's signature. `None` = JSON `null`.
    #[serde(default, deserialize_with = "go_bytes")]
    pub signature: Option<Vec<u8>>,
    /// `authorizer_signatures` (omitted when empty).
    #[serde(default, deserialize_with = "object_list")]
    pub authorizer_signatures: Vec<AuthorizerSignature>,
}

impl GenerateKeyMessage {
    /// Decodes a request body (at most [`decode::MAX_MESSAGE_BYTES`]).
    pub fn from_json(body: &[u8]) -> Result<Self, DecodeError> {
        decode::from_json(body, "GenerateKeyMessage")
    }

    /// Encodes exactly as the Go client's `json.Marshal` does.
    pub fn to_json(&self) -> String {
        let mut w = ObjectWriter::new();
        w.string("wallet_id", &self.wallet_id).bytes("signature", self.signature.as_deref());
        write_authorizers(&mut w, &self.authorizer_signatures);
        w.finish()
    }
}

/// Sign request (Go `types.SignTxMessage`).
///
/// Wire: `{"key_type","wallet_id","network_internal_code","tx_id","tx","signature",
/// "derivation_path","authorizer_signatures"}`; `derivation_path` is `null` when absent,
/// `authorizer_signatures` omitted when empty.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct SignTxMessage {
    /// `key_type`: which of the wallet's keys signs.
    #[serde(default)]
    pub key_type: KeyType,
    /// `wallet_id`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub wallet_id: String,
    /// `network_internal_code`: opaque, echoed in the result.
    #[serde(default, deserialize_with = "null_as_default")]
    pub network_internal_code: String,
    /// `tx_id`: correlates the result; the "initiator ID" of the authorizer payload.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tx_id: String,
    /// `tx` (base64): ECDSA → the 32-byte digest to sign; EdDSA → the message itself;
    /// Taproot → the 32-byte BIP341 signature hash.
    #[serde(default, deserialize_with = "go_bytes")]
    pub tx: Option<Vec<u8>>,
    /// `signature` (base64): the initiator's signature.
    #[serde(default, deserialize_with = "go_bytes")]
    pub signature: Option<Vec<u8>>,
    /// `derivation_path`: non-hardened child indexes; `None` (JSON `null`) = the master key.
    #[serde(default)]
    pub derivation_path: Option<Vec<u32>>,
    /// `authorizer_signatures` (omitted when empty).
    #[serde(default, deserialize_with = "object_list")]
    pub authorizer_signatures: Vec<AuthorizerSignature>,
}

impl SignTxMessage {
    /// Decodes a request body (at most [`decode::MAX_MESSAGE_BYTES`]).
    pub fn from_json(body: &[u8]) -> Result<Self, DecodeError> {
        decode::from_json(body, "SignTxMessage")
    }

    /// Encodes exactly as the Go client's `json.Marshal` does.
    pub fn to_json(&self) -> String {
        self.to_json_with_ours(None, None, None)
    }

    /// The Go client's bytes with our `asset` / `amount`, then `taproot_merkle_root`, after
    /// `derivation_path`, each when given ([`crate::value::SignTxRequest`]).
    pub(crate) fn to_json_with_ours(
        &self,
        asset: Option<&str>,
        amount: Option<&str>,
        taproot_merkle_root: Option<&[u8]>,
    ) -> String {
        let mut w = ObjectWriter::new();
        w.string("key_type", self.key_type.as_str())
            .string("wallet_id", &self.wallet_id)
            .string("network_internal_code", &self.network_internal_code)
            .string("tx_id", &self.tx_id)
            .bytes("tx", self.tx.as_deref())
            .bytes("signature", self.signature.as_deref())
            .u32_array("derivation_path", self.derivation_path.as_deref());
        if let Some(asset) = asset {
            w.string("asset", asset);
        }
        if let Some(amount) = amount {
            w.string("amount", amount);
        }
        if let Some(root) = taproot_merkle_root {
            w.bytes("taproot_merkle_root", Some(root));
        }
        write_authorizers(&mut w, &self.authorizer_signatures);
        w.finish()
    }
}

/// Reshare request (Go `types.ResharingMessage`), sent over core NATS to `mpc:reshare`.
///
/// Wire: `{"session_id","node_ids","new_threshold","key_type","wallet_id","signature",
/// "authorizer_signatures"}`; `node_ids` is `null` when absent, `signature` and
/// `authorizer_signatures` are omitted when empty.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct ResharingMessage {
    /// `session_id`: names the result subject; must not be empty.
    #[serde(default, deserialize_with = "null_as_default")]
    pub session_id: String,
    /// `node_ids`: the new committee. `None` = JSON `null`.
    #[serde(default)]
    pub node_ids: Option<Vec<String>>,
    /// `new_threshold`: the new tss threshold t (t+1 parties sign).
    #[serde(default, deserialize_with = "null_as_default")]
    pub new_threshold: i64,
    /// `key_type`: which of the wallet's keys is reshared.
    #[serde(default)]
    pub key_type: KeyType,
    /// `wallet_id`; also the "initiator ID" of the authorizer payload.
    #[serde(default, deserialize_with = "null_as_default")]
    pub wallet_id: String,
    /// `signature` (base64, omitted when empty): the initiator's signature.
    #[serde(default, deserialize_with = "go_bytes")]
    pub signature: Option<Vec<u8>>,
    /// `authorizer_signatures` (omitted when empty).
    #[serde(default, deserialize_with = "object_list")]
    pub authorizer_signatures: Vec<AuthorizerSignature>,
}

impl ResharingMessage {
    /// Decodes a request body (at most [`decode::MAX_MESSAGE_BYTES`]).
    pub fn from_json(body: &[u8]) -> Result<Self, DecodeError> {
        decode::from_json(body, "ResharingMessage")
    }

    /// Encodes exactly as the Go client's `json.Marshal` does.
    pub fn to_json(&self) -> String {
        let mut w = ObjectWriter::new();
        w.string("session_id", &self.session_id)
            .string_array("node_ids", self.node_ids.as_deref())
            .integer("new_threshold", self.new_threshold)
            .string("key_type", self.key_type.as_str())
            .string("wallet_id", &self.wallet_id);
        // Go `omitempty` on a []byte: omitted when nil or empty.
        if let Some(sig) = self.signature.as_deref().filter(|s| !s.is_empty()) {
            w.bytes("signature", Some(sig));
        }
        write_authorizers(&mut w, &self.authorizer_signatures);
        w.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_round_trip_and_omitempty() {
        let msg = GenerateKeyMessage {
            wallet_id: "w1".into(),
            signature: Some(vec![1, 2, 3]),
            authorizer_signatures: vec![],
        };
        let json = msg.to_json();
        assert_eq!(json, r#"{"wallet_id":"w1","signature":"AQID"}"#);
        assert_eq!(GenerateKeyMessage::from_json(json.as_bytes()).unwrap(), msg);
    }

    #[test]
    fn keygen_with_authorizers() {
        let msg = GenerateKeyMessage {
            wallet_id: "w1".into(),
            signature: None,
            authorizer_signatures: vec![AuthorizerSignature {
                authorizer_id: "a1".into(),
                signature: Some(vec![0xff]),
            }],
        };
        let json = msg.to_json();
        assert_eq!(
            json,
            r#"{"wallet_id":"w1","signature":null,"authorizer_signatures":[{"authorizer_id":"a1","signature":"/w=="}]}"#
        );
        assert_eq!(GenerateKeyMessage::from_json(json.as_bytes()).unwrap(), msg);
    }

    #[test]
    fn sign_round_trip_with_null_and_present_path() {
        let mut msg = SignTxMessage {
            key_type: KeyType::Secp256k1,
            wallet_id: "wallet-123".into(),
            network_internal_code: "BTC".into(),
            tx_id: "tx-456".into(),
            tx: Some(b"transaction-data".to_vec()),
            signature: Some(vec![9; 3]),
            derivation_path: None,
            authorizer_signatures: vec![],
        };
        let json = msg.to_json();
        assert_eq!(
            json,
            r#"{"key_type":"secp256k1","wallet_id":"wallet-123","network_internal_code":"BTC","tx_id":"tx-456","tx":"dHJhbnNhY3Rpb24tZGF0YQ==","signature":"CQkJ","derivation_path":null}"#
        );
        assert_eq!(SignTxMessage::from_json(json.as_bytes()).unwrap(), msg);
        msg.derivation_path = Some(vec![44, 60, 0, 0, 0]);
        let json = msg.to_json();
        assert!(json.ends_with(r#""derivation_path":[44,60,0,0,0]}"#));
        assert_eq!(SignTxMessage::from_json(json.as_bytes()).unwrap(), msg);
    }

    #[test]
    fn reshare_omits_empty_signature_and_keeps_null_node_ids() {
        let msg = ResharingMessage {
            session_id: "s1".into(),
            node_ids: None,
            new_threshold: 1,
            key_type: KeyType::Ed25519,
            wallet_id: "w1".into(),
            signature: Some(vec![]),
            authorizer_signatures: vec![],
        };
        assert_eq!(
            msg.to_json(),
            r#"{"session_id":"s1","node_ids":null,"new_threshold":1,"key_type":"ed25519","wallet_id":"w1"}"#
        );
    }

    #[test]
    fn decoding_is_tolerant_where_go_is() {
        let body = br#"{"wallet_id":null,"extra":{"x":[1,2]},"tx":"","key_type":"p256","new":1}"#;
        let msg = SignTxMessage::from_json(body).unwrap();
        assert_eq!(msg.wallet_id, "");
        assert_eq!(msg.tx, Some(vec![]));
        assert_eq!(msg.signature, None);
        assert_eq!(msg.key_type, KeyType::Unsupported("p256".into()));
        assert_eq!(msg.derivation_path, None);
        let msg = SignTxMessage::from_json(b"{}").unwrap();
        assert_eq!(msg.key_type, KeyType::Missing);
    }

    #[test]
    fn wrong_types_are_clear_errors() {
        let cases: &[(&[u8], &str)] = &[
            (br#"{"wallet_id":5}"#, "invalid type: integer `5`, expected a string"),
            (br#"{"tx":"not base64!"}"#, "invalid base64"),
            (br#"{"derivation_path":[1.5]}"#, "invalid type: floating point"),
            (br#"{"derivation_path":[-1]}"#, "invalid value: integer `-1`"),
            (br#"{"derivation_path":[4294967296]}"#, "invalid value: integer `4294967296`"),
            (br#"{"tx":12}"#, "invalid type: integer `12`"),
            (b" [\"secp256k1\"]", "expected a JSON object"),
            (br#"{"authorizer_signatures":[["a","AQ=="]]}"#, "invalid type: sequence"),
            (br#"{"authorizer_signatures":{"a":1}}"#, "invalid type: map"),
            (b"{", "EOF"),
            (br#"{"wallet_id":"a","wallet_id":"b"}"#, "duplicate field `wallet_id`"),
        ];
        for (body, needle) in cases {
            let err = SignTxMessage::from_json(body).unwrap_err();
            assert_eq!(err.error_code(), crate::ErrorCode::UnmarshalFailure);
            let text = err.to_string();
            assert!(text.contains(needle), "{text:?} should contain {needle:?}");
            assert!(text.contains("SignTxMessage"), "{text}");
        }
    }

    #[test]
    fn oversized_bodies_are_refused_before_parsing() {
        let body = vec![b' '; decode::MAX_MESSAGE_BYTES + 1];
        let err = GenerateKeyMessage::from_json(&body).unwrap_err();
        assert!(matches!(err, DecodeError::TooLarge { .. }));
        assert_eq!(err.error_code(), crate::ErrorCode::MsgValidation);
    }

    #[test]
    fn reshare_decodes_go_client_output() {
        let body = br#"{"session_id":"s1","node_ids":["a","b"],"new_threshold":2,"key_type":"secp256k1","wallet_id":"w1","signature":"AQ=="}"#;
        let msg = ResharingMessage::from_json(body).unwrap();
        assert_eq!(msg.node_ids, Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(msg.new_threshold, 2);
        assert_eq!(msg.signature, Some(vec![1]));
        assert_eq!(msg.to_json().as_bytes(), body);
    }
}
