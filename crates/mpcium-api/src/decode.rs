//! Go-tolerant decoding helpers for `serde` (how Go's `json.Unmarshal` reads the original's structs).
//!
//! Go behaviours reproduced: a JSON `null` leaves a string or number field at its zero value; a
//! `[]byte` field is standard base64 *with* padding, where `\r` and `\n` inside the text are ignored
//! and non-zero trailing bits are accepted (Go's `StdEncoding` is not `Strict`); `null` gives a nil
//! slice, `""` an empty one. Wrong JSON types are errors.
//!
//! Deliberate differences (stricter than Go, documented here once): duplicate object keys are an
//! error (Go keeps the last one; rejecting avoids two parsers seeing different requests), keys are
//! matched case-sensitively (Go also accepts `"WALLET_ID"`; no real client sends that), and invalid
//! UTF-8 or lone surrogates in strings are errors (Go replaces them with U+FFFD).

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::error_code::ErrorCode;

/// Largest request or event body we decode, in bytes (1 MiB, the NATS server's default
/// `max_payload`). Larger bodies are refused before parsing.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// Why a JSON body could not be decoded into a wire type.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The body exceeds [`MAX_MESSAGE_BYTES`].
    #[error("message validation failed: body of {size} bytes exceeds the maximum of {max} bytes")]
    TooLarge {
        /// Size of the body received.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The body is not a JSON object.
    #[error("failed to unmarshal {what}: expected a JSON object")]
    NotAnObject {
        /// The wire type being decoded.
        what: &'static str,
    },
    /// Not JSON, or a field has the wrong JSON type (the message names field, line and column).
    #[error("failed to unmarshal {what}: {source}")]
    Json {
        /// The wire type being decoded, e.g. `SignTxMessage`.
        what: &'static str,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
}

impl DecodeError {
    /// The code to report: an oversized body is a validation failure, everything else is
    /// `ERROR_UNMARSHAL_FAILURE` (what the original's request consumer reports).
    pub fn error_code(&self) -> ErrorCode {
        match self {
            DecodeError::TooLarge { .. } => ErrorCode::MsgValidation,
            DecodeError::NotAnObject { .. } | DecodeError::Json { .. } => ErrorCode::UnmarshalFailure,
        }
    }
}

/// Decodes `body` as `T` after checking it against [`MAX_MESSAGE_BYTES`].
pub(crate) fn from_json<T: DeserializeOwned>(body: &[u8], what: &'static str) -> Result<T, DecodeError> {
    if body.len() > MAX_MESSAGE_BYTES {
        return Err(DecodeError::TooLarge { size: body.len(), max: MAX_MESSAGE_BYTES });
    }
    // serde's derived structs also accept a JSON array of field values; Go does not. Refuse
    // anything but an object up front so both parsers agree on what a request is.
    let first = body.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first.is_some_and(|b| *b != b'{') {
        return Err(DecodeError::NotAnObject { what });
    }
    serde_json::from_slice(body).map_err(|source| DecodeError::Json { what, source })
}

/// A nested Go struct: must be a JSON object (serde would also take an array of field values).
pub fn object_only<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
    T::deserialize(serde_json::Value::Object(map)).map_err(serde::de::Error::custom)
}

/// A Go slice of structs: `null` → empty, otherwise an array of JSON objects.
pub fn object_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    #[derive(Deserialize)]
    #[serde(bound = "U: DeserializeOwned")]
    struct Item<U>(#[serde(deserialize_with = "object_only")] U);
    let items: Option<Vec<Item<T>>> = Option::deserialize(d)?;
    Ok(items.unwrap_or_default().into_iter().map(|Item(t)| t).collect())
}

/// Standard alphabet, padding required, trailing bits tolerated: Go's `base64.StdEncoding`.
const GO_STD_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// Decodes base64 text the way Go's `base64.StdEncoding.DecodeString` does.
pub fn go_base64_decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    if text.contains(['\r', '\n']) {
        let cleaned: String = text.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        GO_STD_BASE64.decode(cleaned)
    } else {
        GO_STD_BASE64.decode(text)
    }
}

/// A Go `[]byte` field: `null` → `None` (nil), a base64 string → `Some(bytes)`.
pub fn go_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    match text {
        None => Ok(None),
        Some(t) => go_base64_decode(&t)
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("invalid base64 in byte field: {e}"))),
    }
}

/// A Go value field (string, int, slice, struct) where `null` means "leave the zero value".
pub fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_requires_padding_like_go() {
        assert_eq!(go_base64_decode("aGk=").unwrap(), b"hi");
        assert!(go_base64_decode("aGk").is_err());
        assert!(go_base64_decode("aG=k").is_err());
    }

    #[test]
    fn base64_ignores_newlines_and_tolerates_trailing_bits_like_go() {
        assert_eq!(go_base64_decode("aG\r\nk=").unwrap(), b"hi");
        // "aGl=" carries non-zero trailing bits; Go's non-strict StdEncoding accepts it.
        assert_eq!(go_base64_decode("aGl=").unwrap(), b"hi");
    }

    #[test]
    fn base64_rejects_url_alphabet() {
        assert!(go_base64_decode("-_-_").is_err());
    }
}
