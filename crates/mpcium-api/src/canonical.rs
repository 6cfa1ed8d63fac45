//! The exact bytes an initiator and an authorizer sign (docs/wire.md §5).
//!
//! The node re-derives these bytes from the *decoded* request, so they must equal what Go's
//! `json.Marshal` produces from the same values; they are written with [`crate::gojson`].
//!
//! | request | signed bytes ([`SigningMode::Compatible`]) | initiator ID |
//! |---|---|---|
//! | keygen | UTF-8 of `wallet_id` | `wallet_id` |
//! | sign | `{"key_type","wallet_id","network_internal_code","tx_id","tx"}` | `tx_id` |
//! | reshare | `{"session_id","node_ids","new_threshold","key_type","wallet_id"}` | `wallet_id` |
//!
//! **Our extension, [`SigningMode::Strict`]** (`security.strict_requests`): the original leaves
//! `derivation_path` outside the signature, so a signed sign request can be replayed with another
//! path (docs/wire.md §13). In strict mode the sign bytes are the five compatible fields followed by
//! `"derivation_path"` in Go JSON (`null` when absent, `[]` when empty, else `[44,60,0,0,0]`):
//! `{"key_type":…,"wallet_id":…,"network_internal_code":…,"tx_id":…,"tx":…,"derivation_path":[…]}`.
//! Keygen and reshare bytes already cover every request field and are the same in both modes.
//!
//! **Our value fields** ([`crate::value`]): a sign request with `asset` and `amount` signs
//! `{"key_type","wallet_id","network_internal_code","tx_id","tx","asset","amount"}` (then
//! `"derivation_path"` in strict mode); without them, the bytes above exactly. Authorizers sign
//! the same [`authorizer_payload`], whose `initiator_raw` is then the seven-field bytes.
//!
//! **Our Taproot field**: a sign request with `taproot_merkle_root` signs
//! `"taproot_merkle_root":<base64>` after `tx` (and after `asset`/`amount` when present), before
//! strict mode's `"derivation_path"`; without it, the bytes above exactly.
//! Go and TypeScript clients can only produce compatible-mode signatures.

use crate::gojson::ObjectWriter;
use crate::request::{AuthorizerSignature, GenerateKeyMessage, ResharingMessage, SignTxMessage};
use crate::value::SignTxRequest;

/// Which definition of the signed bytes is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SigningMode {
    /// The original's bytes: Go and TypeScript clients work unchanged.
    #[default]
    Compatible,
    /// Our `security.strict_requests` mode: sign bytes also cover `derivation_path`.
    Strict,
}

/// A request that carries an initiator signature (Go `types.InitiatorMessage`).
pub trait InitiatorMessage {
    /// The bytes the initiator signs, in `mode`.
    fn signed_bytes(&self, mode: SigningMode) -> Vec<u8>;
    /// The initiator's signature as received (`None` = JSON `null`).
    fn initiator_signature(&self) -> Option<&[u8]>;
    /// The "initiator ID" placed in the authorizer payload.
    fn initiator_id(&self) -> &str;
    /// The authorizer signatures attached to the request.
    fn authorizer_signatures(&self) -> &[AuthorizerSignature];
}

/// Keygen signed bytes: the wallet ID itself (no JSON).
pub fn keygen_signed_bytes(wallet_id: &str) -> Vec<u8> {
    wallet_id.as_bytes().to_vec()
}

/// Sign-request signed bytes (see the module docs for both modes).
pub fn sign_signed_bytes(msg: &SignTxMessage, mode: SigningMode) -> Vec<u8> {
    sign_bytes(msg, None, None, mode)
}

/// **(ours)** Signed bytes of a request that may carry a value or a Taproot merkle root
/// ([`SignTxRequest`]): the five fields of [`sign_signed_bytes`], then `"asset"` and `"amount"`
/// (Go JSON strings) when present, then `"taproot_merkle_root"` (base64) when present, then
/// `"derivation_path"` in strict mode; without our fields, exactly [`sign_signed_bytes`].
pub fn sign_request_signed_bytes(req: &SignTxRequest, mode: SigningMode) -> Vec<u8> {
    let value = match (&req.asset, &req.amount) {
        (None, None) => None,
        // A half value is refused before any signature check (`SignTxRequest::validate`); its
        // bytes still cover what is there.
        (asset, amount) => Some((asset.as_deref(), amount.as_deref())),
    };
    sign_bytes(&req.message, value, req.taproot_merkle_root.as_deref(), mode)
}

fn sign_bytes(
    msg: &SignTxMessage,
    value: Option<(Option<&str>, Option<&str>)>,
    taproot_merkle_root: Option<&[u8]>,
    mode: SigningMode,
) -> Vec<u8> {
    let mut w = ObjectWriter::new();
    w.string("key_type", msg.key_type.as_str())
        .string("wallet_id", &msg.wallet_id)
        .string("network_internal_code", &msg.network_internal_code)
        .string("tx_id", &msg.tx_id)
        .bytes("tx", msg.tx.as_deref());
    if let Some((asset, amount)) = value {
        if let Some(asset) = asset {
            w.string("asset", asset);
        }
        if let Some(amount) = amount {
            w.string("amount", amount);
        }
    }
    if let Some(root) = taproot_merkle_root {
        w.bytes("taproot_merkle_root", Some(root));
    }
    if mode == SigningMode::Strict {
        w.u32_array("derivation_path", msg.derivation_path.as_deref());
    }
    w.finish().into_bytes()
}

/// Reshare signed bytes: the message without `signature` and `authorizer_signatures`.
pub fn reshare_signed_bytes(msg: &ResharingMessage) -> Vec<u8> {
    let mut w = ObjectWriter::new();
    w.string("session_id", &msg.session_id)
        .string_array("node_ids", msg.node_ids.as_deref())
        .integer("new_threshold", msg.new_threshold)
        .string("key_type", msg.key_type.as_str())
        .string("wallet_id", &msg.wallet_id);
    w.finish().into_bytes()
}

/// The bytes every authorizer signs (Go `types.ComposeAuthorizerRaw`):
/// `{"initiator_id":…,"initiator_raw":<base64 signed bytes>,"initiator_sig":<base64|null>}`.
///
/// It embeds the initiator's signature, so an initiator must sign once and reuse that signature
/// (randomised P-256/KMS signatures differ on every call).
pub fn authorizer_payload(msg: &impl InitiatorMessage, mode: SigningMode) -> Vec<u8> {
    let raw = msg.signed_bytes(mode);
    let mut w = ObjectWriter::new();
    w.string("initiator_id", msg.initiator_id())
        .bytes("initiator_raw", Some(&raw))
        .bytes("initiator_sig", msg.initiator_signature());
    w.finish().into_bytes()
}

impl InitiatorMessage for GenerateKeyMessage {
    fn signed_bytes(&self, _mode: SigningMode) -> Vec<u8> {
        keygen_signed_bytes(&self.wallet_id)
    }
    fn initiator_signature(&self) -> Option<&[u8]> {
        self.signature.as_deref()
    }
    fn initiator_id(&self) -> &str {
        &self.wallet_id
    }
    fn authorizer_signatures(&self) -> &[AuthorizerSignature] {
        &self.authorizer_signatures
    }
}

impl InitiatorMessage for SignTxMessage {
    fn signed_bytes(&self, mode: SigningMode) -> Vec<u8> {
        sign_signed_bytes(self, mode)
    }
    fn initiator_signature(&self) -> Option<&[u8]> {
        self.signature.as_deref()
    }
    fn initiator_id(&self) -> &str {
        &self.tx_id
    }
    fn authorizer_signatures(&self) -> &[AuthorizerSignature] {
        &self.authorizer_signatures
    }
}

impl InitiatorMessage for SignTxRequest {
    fn signed_bytes(&self, mode: SigningMode) -> Vec<u8> {
        sign_request_signed_bytes(self, mode)
    }
    fn initiator_signature(&self) -> Option<&[u8]> {
        self.message.signature.as_deref()
    }
    fn initiator_id(&self) -> &str {
        &self.message.tx_id
    }
    fn authorizer_signatures(&self) -> &[AuthorizerSignature] {
        &self.message.authorizer_signatures
    }
}

impl InitiatorMessage for ResharingMessage {
    fn signed_bytes(&self, _mode: SigningMode) -> Vec<u8> {
        reshare_signed_bytes(self)
    }
    fn initiator_signature(&self) -> Option<&[u8]> {
        self.signature.as_deref()
    }
    fn initiator_id(&self) -> &str {
        &self.wallet_id
    }
    fn authorizer_signatures(&self) -> &[AuthorizerSignature] {
        &self.authorizer_signatures
    }
}
