//! Result events published to stream `mpc` (docs/wire.md §6, Go `pkg/event`).
//!
//! `to_json` writes Go's bytes exactly (field order, `null` for absent byte fields, `""` for the
//! error code and reason of a success). `from_json` is Go-tolerant like the request decoders,
//! except that `result_type` must be `"success"` or `"error"`.

use serde::{Deserialize, Deserializer};

use crate::attestation::{self, Attestation};
use crate::decode::{self, DecodeError, go_bytes, null_as_default};
use crate::error_code::{ErrorCode, optional_error_code};
use crate::gojson::ObjectWriter;
use crate::key_type::KeyType;

/// `result_type` of every event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultType {
    /// `"success"`.
    Success,
    /// `"error"`.
    Error,
}

impl ResultType {
    /// The wire text.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultType::Success => "success",
            ResultType::Error => "error",
        }
    }
}

impl<'de> Deserialize<'de> for ResultType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "success" => Ok(ResultType::Success),
            "error" => Ok(ResultType::Error),
            other => Err(serde::de::Error::custom(format!(
                "unknown result_type {other:?} (expected \"success\" or \"error\")"
            ))),
        }
    }
}

/// A secp256k1 public key as events carry it: 32-byte big-endian X ‖ 32-byte big-endian Y,
/// zero-padded, without the SEC1 `0x04` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EcdsaPublicKeyXY(pub [u8; 64]);

/// A coordinate or a SEC1 encoding had the wrong size.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PublicKeyFormatError {
    /// An affine coordinate longer than 32 bytes.
    #[error("coordinate of {0} bytes does not fit 32 bytes")]
    CoordinateTooLong(usize),
    /// Not a 65-byte uncompressed SEC1 point (`0x04 ‖ X ‖ Y`).
    #[error("expected a 65-byte uncompressed SEC1 point starting with 0x04")]
    NotUncompressedSec1,
}

impl EcdsaPublicKeyXY {
    /// From big-endian affine coordinates of at most 32 bytes each (left-padded with zeros).
    pub fn from_coordinates(x: &[u8], y: &[u8]) -> Result<Self, PublicKeyFormatError> {
        let mut out = [0u8; 64];
        let (x_half, y_half) = out.split_at_mut(32);
        for (coordinate, half) in [(x, x_half), (y, y_half)] {
            if coordinate.len() > 32 {
                return Err(PublicKeyFormatError::CoordinateTooLong(coordinate.len()));
            }
            half[32 - coordinate.len()..].copy_from_slice(coordinate);
        }
        Ok(Self(out))
    }

    /// From an uncompressed SEC1 encoding (`0x04 ‖ X ‖ Y`, 65 bytes).
    pub fn from_sec1_uncompressed(sec1: &[u8]) -> Result<Self, PublicKeyFormatError> {
        match sec1 {
            [0x04, rest @ ..] if rest.len() == 64 => {
                let mut out = [0u8; 64];
                out.copy_from_slice(rest);
                Ok(Self(out))
            }
            _ => Err(PublicKeyFormatError::NotUncompressedSec1),
        }
    }
}

/// Keygen result (Go `event.KeygenResultEvent`), subject `mpc.mpc_keygen_result.[<clientID>.]<walletID>`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct KeygenResultEvent {
    /// `wallet_id`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub wallet_id: String,
    /// `ecdsa_pub_key`: 64-byte X‖Y on success, `null` on error.
    #[serde(default, deserialize_with = "go_bytes")]
    pub ecdsa_pub_key: Option<Vec<u8>>,
    /// `eddsa_pub_key`: 32-byte Ed25519 key on success, `null` on error.
    #[serde(default, deserialize_with = "go_bytes")]
    pub eddsa_pub_key: Option<Vec<u8>>,
    /// **(ours)** `taproot_pub_key`: the 32-byte BIP340 x-only *internal* key P of the wallet's
    /// Taproot key (the output key Q is derived from it, BIP341); written only when present
    /// (after the original's fields), so error events and the original's bytes are unchanged.
    #[serde(default, deserialize_with = "go_bytes")]
    pub taproot_pub_key: Option<Vec<u8>>,
    /// `result_type`.
    pub result_type: ResultType,
    /// `error_reason`: `""` on success.
    #[serde(default, deserialize_with = "null_as_default")]
    pub error_reason: String,
    /// `error_code`: `""` (here `None`) on success.
    #[serde(default, deserialize_with = "optional_error_code")]
    pub error_code: Option<ErrorCode>,
    /// Our addition: the participants' signatures over this result (see [`crate::attestation`]);
    /// written only when present, so an event without them is the original's bytes.
    #[serde(default, deserialize_with = "null_as_default")]
    pub attestations: Vec<Attestation>,
}

impl KeygenResultEvent {
    /// The original's two keys of a new wallet (see [`Self::with_taproot_pub_key`] for ours).
    pub fn success(wallet_id: &str, ecdsa: &EcdsaPublicKeyXY, eddsa: &[u8; 32]) -> Self {
        Self {
            wallet_id: wallet_id.to_owned(),
            ecdsa_pub_key: Some(ecdsa.0.to_vec()),
            eddsa_pub_key: Some(eddsa.to_vec()),
            taproot_pub_key: None,
            result_type: ResultType::Success,
            error_reason: String::new(),
            error_code: None,
            attestations: Vec::new(),
        }
    }

    /// A failed keygen.
    pub fn error(wallet_id: &str, code: ErrorCode, reason: &str) -> Self {
        Self {
            wallet_id: wallet_id.to_owned(),
            ecdsa_pub_key: None,
            eddsa_pub_key: None,
            taproot_pub_key: None,
            result_type: ResultType::Error,
            error_reason: reason.to_owned(),
            error_code: Some(code),
            attestations: Vec::new(),
        }
    }

    /// The event with the wallet's Taproot internal key (x-only, 32 bytes).
    pub fn with_taproot_pub_key(mut self, taproot: &[u8; 32]) -> Self {
        self.taproot_pub_key = Some(taproot.to_vec());
        self
    }

    /// Decodes an event body.
    pub fn from_json(body: &[u8]) -> Result<Self, DecodeError> {
        decode::from_json(body, "KeygenResultEvent")
    }

    /// Encodes exactly as the original node's `json.Marshal` does.
    pub fn to_json(&self) -> String {
        let mut w = ObjectWriter::new();
        w.string("wallet_id", &self.wallet_id)
            .bytes("ecdsa_pub_key", self.ecdsa_pub_key.as_deref())
            .bytes("eddsa_pub_key", self.eddsa_pub_key.as_deref())
            .string("result_type", self.result_type.as_str())
            .string("error_reason", &self.error_reason)
            .string("error_code", code_text(&self.error_code));
        if let Some(taproot) = &self.taproot_pub_key {
            w.bytes("taproot_pub_key", Some(taproot));
        }
        append_attestations(&mut w, &self.attestations);
        w.finish()
    }
}

/// Our additions go after the original's fields, and only when there are any.
fn append_attestations(w: &mut ObjectWriter, attestations: &[Attestation]) {
    if !attestations.is_empty() {
        w.raw("attestations", &attestation::to_json(attestations));
    }
}

fn code_text(code: &Option<ErrorCode>) -> &str {
    code.as_ref().map_or("", ErrorCode::as_str)
}

/// Signing result (Go `event.SigningResultEvent`), subject
/// `mpc.mpc_signing_result.[<clientID>.]complete`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SigningResultEvent {
    /// `result_type`.
    pub result_type: ResultType,
    /// `error_code`: `""` (here `None`) on success.
    #[serde(default, deserialize_with = "optional_error_code")]
    pub error_code: Option<ErrorCode>,
    /// `error_reason`: `""` on success.
    #[serde(default, deserialize_with = "null_as_default")]
    pub error_reason: String,
    /// `is_timeout`: true only for the max-delivery event.
    #[serde(default, deserialize_with = "null_as_default")]
    pub is_timeout: bool,
    /// `network_internal_code`, echoed from the request.
    #[serde(default, deserialize_with = "null_as_default")]
    pub network_internal_code: String,
    /// `wallet_id`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub wallet_id: String,
    /// `tx_id`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tx_id: String,
    /// `r`: ECDSA, 32 bytes big-endian; otherwise `null`.
    #[serde(default, deserialize_with = "go_bytes")]
    pub r: Option<Vec<u8>>,
    /// `s`: ECDSA, 32 bytes big-endian, low-S; otherwise `null`.
    #[serde(default, deserialize_with = "go_bytes")]
    pub s: Option<Vec<u8>>,
    /// `signature_recovery`: ECDSA, 1 byte recovery id; otherwise `null`.
    #[serde(default, deserialize_with = "go_bytes")]
    pub signature_recovery: Option<Vec<u8>>,
    /// `signature`: EdDSA, 64 bytes R‖S; Taproot, the 64-byte BIP340 signature; otherwise `null`.
    #[serde(default, deserialize_with = "go_bytes")]
    pub signature: Option<Vec<u8>>,
    /// Our addition: the key the signature verifies with (the wallet's key or its HD child;
    /// ECDSA 64-byte X‖Y, EdDSA 32 bytes, Taproot the 32-byte x-only output key Q), vouched for by the attestations; written only when
    /// present.
    #[serde(default, deserialize_with = "go_bytes")]
    pub verifying_key: Option<Vec<u8>>,
    /// Our addition: the participants' signatures over this result (see [`crate::attestation`]);
    /// written only when present, so an event without them is the original's bytes.
    #[serde(default, deserialize_with = "null_as_default")]
    pub attestations: Vec<Attestation>,
}

impl SigningResultEvent {
    fn base(result_type: ResultType, wallet_id: &str, tx_id: &str, network_internal_code: &str) -> Self {
        Self {
            result_type,
            error_code: None,
            error_reason: String::new(),
            is_timeout: false,
            network_internal_code: network_internal_code.to_owned(),
            wallet_id: wallet_id.to_owned(),
            tx_id: tx_id.to_owned(),
            r: None,
            s: None,
            signature_recovery: None,
            signature: None,
            verifying_key: None,
            attestations: Vec::new(),
        }
    }

    /// ECDSA success: `r`, `s` (already low-S normalised by the caller) and the recovery id.
    pub fn ecdsa_success(
        wallet_id: &str,
        tx_id: &str,
        network_internal_code: &str,
        r: &[u8; 32],
        s: &[u8; 32],
        recovery_id: u8,
    ) -> Self {
        let mut e = Self::base(ResultType::Success, wallet_id, tx_id, network_internal_code);
        e.r = Some(r.to_vec());
        e.s = Some(s.to_vec());
        e.signature_recovery = Some(vec![recovery_id]);
        e
    }

    /// EdDSA success: the 64-byte Ed25519 signature.
    pub fn eddsa_success(
        wallet_id: &str,
        tx_id: &str,
        network_internal_code: &str,
        signature: &[u8; 64],
    ) -> Self {
        let mut e = Self::base(ResultType::Success, wallet_id, tx_id, network_internal_code);
        e.signature = Some(signature.to_vec());
        e
    }

    /// **(ours)** Taproot success: the 64-byte BIP340 signature (`r`, `s` and
    /// `signature_recovery` stay `null`, as for EdDSA).
    pub fn taproot_success(
        wallet_id: &str,
        tx_id: &str,
        network_internal_code: &str,
        signature: &[u8; 64],
    ) -> Self {
        // The same event as EdDSA's: only the signature scheme behind the 64 bytes differs.
        Self::eddsa_success(wallet_id, tx_id, network_internal_code, signature)
    }

    /// A failed signing.
    pub fn error(
        wallet_id: &str,
        tx_id: &str,
        network_internal_code: &str,
        code: ErrorCode,
        reason: &str,
    ) -> Self {
        let mut e = Self::base(ResultType::Error, wallet_id, tx_id, network_internal_code);
        e.error_code = Some(code);
        e.error_reason = reason.to_owned();
        e
    }

    /// The event for a request whose JetStream deliveries ran out (`is_timeout` = true,
    /// `ERROR_MAX_DELIVERY_ATTEMPTS`, the original's reason text). Unlike the original, which
    /// decodes the request as an event and so echoes the initiator's request signature in
    /// `signature`, ours leaves `signature` null: that field means "the MPC signature".
    pub fn max_delivery_exceeded(wallet_id: &str, tx_id: &str, network_internal_code: &str) -> Self {
        let mut e = Self::error(
            wallet_id,
            tx_id,
            network_internal_code,
            ErrorCode::MaxDeliveryAttempts,
            MAX_DELIVERY_REASON,
        );
        e.is_timeout = true;
        e
    }

    /// Decodes an event body.
    pub fn from_json(body: &[u8]) -> Result<Self, DecodeError> {
        decode::from_json(body, "SigningResultEvent")
    }

    /// Encodes exactly as the original node's `json.Marshal` does.
    pub fn to_json(&self) -> String {
        let mut w = ObjectWriter::new();
        w.string("result_type", self.result_type.as_str())
            .string("error_code", code_text(&self.error_code))
            .string("error_reason", &self.error_reason)
            .boolean("is_timeout", self.is_timeout)
            .string("network_internal_code", &self.network_internal_code)
            .string("wallet_id", &self.wallet_id)
            .string("tx_id", &self.tx_id)
            .bytes("r", self.r.as_deref())
            .bytes("s", self.s.as_deref())
            .bytes("signature_recovery", self.signature_recovery.as_deref())
            .bytes("signature", self.signature.as_deref());
        if let Some(key) = &self.verifying_key {
            w.bytes("verifying_key", Some(key));
        }
        append_attestations(&mut w, &self.attestations);
        w.finish()
    }
}

/// `error_reason` of the max-delivery event, as the original writes it.
pub const MAX_DELIVERY_REASON: &str = "Signing failed: maximum delivery attempts exceeded";

/// Reshare result (Go `event.ResharingResultEvent`), subject
/// `mpc.mpc_reshare_result.[<clientID>.]<sessionID>`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ResharingResultEvent {
    /// `wallet_id`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub wallet_id: String,
    /// `new_threshold`, echoed from the request.
    #[serde(default, deserialize_with = "null_as_default")]
    pub new_threshold: i64,
    /// `key_type`, echoed from the request.
    #[serde(default)]
    pub key_type: KeyType,
    /// `pub_key`: the unchanged public key (64-byte X‖Y or 32-byte Ed25519); `null` on error.
    #[serde(default, deserialize_with = "go_bytes")]
    pub pub_key: Option<Vec<u8>>,
    /// `result_type`.
    pub result_type: ResultType,
    /// `error_reason`: `""` on success.
    #[serde(default, deserialize_with = "null_as_default")]
    pub error_reason: String,
    /// `error_code`: `""` (here `None`) on success.
    #[serde(default, deserialize_with = "optional_error_code")]
    pub error_code: Option<ErrorCode>,
    /// Our addition: the participants' signatures over this result (see [`crate::attestation`]);
    /// written only when present, so an event without them is the original's bytes.
    #[serde(default, deserialize_with = "null_as_default")]
    pub attestations: Vec<Attestation>,
}

impl ResharingResultEvent {
    /// A completed reshare; `pub_key` is the wallet's (unchanged) key in event encoding.
    pub fn success(wallet_id: &str, new_threshold: i64, key_type: KeyType, pub_key: &[u8]) -> Self {
        Self {
            wallet_id: wallet_id.to_owned(),
            new_threshold,
            key_type,
            pub_key: Some(pub_key.to_vec()),
            result_type: ResultType::Success,
            error_reason: String::new(),
            error_code: None,
            attestations: Vec::new(),
        }
    }

    /// A failed reshare.
    pub fn error(
        wallet_id: &str,
        new_threshold: i64,
        key_type: KeyType,
        code: ErrorCode,
        reason: &str,
    ) -> Self {
        Self {
            wallet_id: wallet_id.to_owned(),
            new_threshold,
            key_type,
            pub_key: None,
            result_type: ResultType::Error,
            error_reason: reason.to_owned(),
            error_code: Some(code),
            attestations: Vec::new(),
        }
    }

    /// Decodes an event body.
    pub fn from_json(body: &[u8]) -> Result<Self, DecodeError> {
        decode::from_json(body, "ResharingResultEvent")
    }

    /// Encodes exactly as the original node's `json.Marshal` does.
    pub fn to_json(&self) -> String {
        let mut w = ObjectWriter::new();
        w.string("wallet_id", &self.wallet_id)
            .integer("new_threshold", self.new_threshold)
            .string("key_type", self.key_type.as_str())
            .bytes("pub_key", self.pub_key.as_deref())
            .string("result_type", self.result_type.as_str())
            .string("error_reason", &self.error_reason)
            .string("error_code", code_text(&self.error_code));
        append_attestations(&mut w, &self.attestations);
        w.finish()
    }
}
