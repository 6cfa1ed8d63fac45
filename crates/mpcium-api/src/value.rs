//! **(ours)** The value a signing request moves: two optional fields, `asset` and `amount`, that
//! the original's `SignTxMessage` does not have (docs/wire.md §4, §5.1). They exist so that
//! approval policies by value (`policy.rules`, [`crate::policy`]) can ask for more authorizers on
//! large transfers.
//!
//! - [`Amount`]: a non-negative integer in the asset's smallest unit, written as a decimal string
//!   of any size (`"0"`, `"1000000"`, a 78-digit uint256): digits only, no sign, no whitespace, no
//!   leading zero, at most [`MAX_AMOUNT_DIGITS`] digits. Amounts compare as integers (by length,
//!   then digit by digit), never through a float.
//! - [`SignTxRequest`]: a signing request as our nodes read it: the original's [`SignTxMessage`]
//!   and the two fields. Both present, the initiator signs seven fields
//!   ([`crate::canonical::sign_request_signed_bytes`]); both absent, the original's five, so its
//!   clients keep working byte for byte. One without the other is refused
//!   ([`ValidationError::HalfValue`]).
//! - The same request also carries our optional `taproot_merkle_root` (32 bytes, base64 as Go
//!   writes `[]byte`): the BIP341 script tree root a `taproot` signature commits to. Present, it
//!   is signed after the value fields; absent, the signed bytes are unchanged.

use std::cmp::Ordering;
use std::fmt;

use serde::Deserialize;

use crate::decode::{self, DecodeError, go_bytes};
use crate::key_type::KeyType;
use crate::request::SignTxMessage;
use crate::validate::{TAPROOT_MERKLE_ROOT_BYTES, ValidationError};

/// Most digits an [`Amount`] may have (a uint256 has 78; this leaves room, and bounds the text).
pub const MAX_AMOUNT_DIGITS: usize = 128;
/// Longest `asset`, in bytes.
pub const MAX_ASSET_BYTES: usize = 128;

/// Why a text is not an [`Amount`].
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AmountError {
    /// The text is empty.
    #[error("amount is empty")]
    Empty,
    /// A character other than `0`–`9` (a sign, a space, a decimal point, …).
    #[error("amount must be decimal digits only (no sign, spaces or decimal point)")]
    NotDigits,
    /// `0` followed by more digits.
    #[error("amount must not have leading zeros")]
    LeadingZero,
    /// More than [`MAX_AMOUNT_DIGITS`] digits.
    #[error("amount has more than {MAX_AMOUNT_DIGITS} digits")]
    TooLong,
}

/// A non-negative integer of any size, in its one canonical decimal form (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Amount(String);

impl Amount {
    /// Parses the canonical decimal form; anything else is refused, never normalised.
    pub fn parse(text: &str) -> Result<Self, AmountError> {
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AmountError::NotDigits);
        }
        if text.len() > 1 && text.starts_with('0') {
            return Err(AmountError::LeadingZero);
        }
        if text.len() > MAX_AMOUNT_DIGITS {
            return Err(AmountError::TooLong);
        }
        Ok(Self(text.to_owned()))
    }

    /// The decimal text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Ord for Amount {
    /// Canonical decimals (no leading zeros): the longer is larger; equal lengths compare digit
    /// by digit.
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.len().cmp(&other.0.len()).then_with(|| self.0.as_bytes().cmp(other.0.as_bytes()))
    }
}

impl PartialOrd for Amount {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The checked value of a request: both fields, the amount parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxValue {
    /// `asset`, as the initiator wrote (and signed) it.
    pub asset: String,
    /// `amount`.
    pub amount: Amount,
}

/// A signing request as our nodes read it: the original's message and our two optional fields.
///
/// Wire: the fields of [`SignTxMessage`], with `"asset":…,"amount":…` and then
/// `"taproot_merkle_root":…` after `derivation_path` when present (Go clients ignore unknown
/// fields; the original's nodes ignore these).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SignTxRequest {
    /// The original's fields.
    pub message: SignTxMessage,
    /// `asset` (e.g. `BTC`); `None` when absent or `null`.
    pub asset: Option<String>,
    /// `amount` in the asset's smallest unit, a decimal string; `None` when absent or `null`.
    pub amount: Option<String>,
    /// `taproot_merkle_root` (base64): the BIP341 script tree root the Taproot output key
    /// commits to; `None` when absent or `null` (a BIP86 key-path-only output).
    pub taproot_merkle_root: Option<Vec<u8>>,
}

/// A request is the original's message with two more fields: read its fields through it.
impl std::ops::Deref for SignTxRequest {
    type Target = SignTxMessage;
    fn deref(&self) -> &SignTxMessage {
        &self.message
    }
}

/// The two fields, read from the same body as the message.
#[derive(Deserialize)]
struct ValueFields {
    #[serde(default)]
    asset: Option<String>,
    #[serde(default)]
    amount: Option<String>,
    #[serde(default, deserialize_with = "go_bytes")]
    taproot_merkle_root: Option<Vec<u8>>,
}

impl SignTxRequest {
    /// A request without a value (the original's shape).
    pub fn new(message: SignTxMessage) -> Self {
        Self { message, asset: None, amount: None, taproot_merkle_root: None }
    }

    /// A request with both value fields.
    pub fn with_value(message: SignTxMessage, asset: impl Into<String>, amount: impl Into<String>) -> Self {
        Self { message, asset: Some(asset.into()), amount: Some(amount.into()), taproot_merkle_root: None }
    }

    /// The request with a `taproot_merkle_root` (for key type `taproot`).
    pub fn with_taproot_merkle_root(mut self, root: impl Into<Vec<u8>>) -> Self {
        self.taproot_merkle_root = Some(root.into());
        self
    }

    /// Decodes a request body (at most [`decode::MAX_MESSAGE_BYTES`]): the original's fields as
    /// [`SignTxMessage::from_json`] reads them, and `asset` / `amount` as JSON strings (another
    /// JSON type is a decoding error), and `taproot_merkle_root` as base64.
    pub fn from_json(body: &[u8]) -> Result<Self, DecodeError> {
        let message = SignTxMessage::from_json(body)?;
        let ours: ValueFields = decode::from_json(body, "SignTxMessage")?;
        Ok(Self {
            message,
            asset: ours.asset,
            amount: ours.amount,
            taproot_merkle_root: ours.taproot_merkle_root,
        })
    }

    /// Encodes the request: the original's bytes exactly when it has none of our fields.
    pub fn to_json(&self) -> String {
        self.message.to_json_with_ours(
            self.asset.as_deref(),
            self.amount.as_deref(),
            self.taproot_merkle_root.as_deref(),
        )
    }

    /// The value: `None` when both fields are absent; an error when one is missing or either
    /// is malformed.
    pub fn value(&self) -> Result<Option<TxValue>, ValidationError> {
        match (&self.asset, &self.amount) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(ValidationError::HalfValue { present: "asset", missing: "amount" }),
            (None, Some(_)) => Err(ValidationError::HalfValue { present: "amount", missing: "asset" }),
            (Some(asset), Some(amount)) => {
                if asset.is_empty() || asset.len() > MAX_ASSET_BYTES || asset.chars().any(char::is_control) {
                    return Err(ValidationError::Asset);
                }
                let amount = Amount::parse(amount).map_err(ValidationError::Amount)?;
                Ok(Some(TxValue { asset: asset.clone(), amount }))
            }
        }
    }

    /// The Taproot merkle root: `None` when absent; an error when present on another key type
    /// than `taproot` or not [`TAPROOT_MERKLE_ROOT_BYTES`] long.
    pub fn merkle_root(&self) -> Result<Option<[u8; TAPROOT_MERKLE_ROOT_BYTES]>, ValidationError> {
        let Some(root) = &self.taproot_merkle_root else { return Ok(None) };
        if self.message.key_type != KeyType::Taproot {
            return Err(ValidationError::MerkleRootWithoutTaproot(self.message.key_type.as_str().to_owned()));
        }
        let root: [u8; TAPROOT_MERKLE_ROOT_BYTES] =
            root.as_slice().try_into().map_err(|_| ValidationError::MerkleRootLength(root.len()))?;
        Ok(Some(root))
    }

    /// The message's checks ([`SignTxMessage::validate`]), the value's ([`Self::value`]) and the
    /// merkle root's ([`Self::merkle_root`]).
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.message.validate()?;
        self.value()?;
        self.merkle_root().map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(s: &str) -> Amount {
        Amount::parse(s).unwrap()
    }

    #[test]
    fn amounts_parse_only_in_canonical_form() {
        for ok in ["0", "1", "1000000", &"9".repeat(MAX_AMOUNT_DIGITS)] {
            assert_eq!(amount(ok).as_str(), ok);
        }
        let bad = [
            ("", AmountError::Empty),
            ("-1", AmountError::NotDigits),
            ("+1", AmountError::NotDigits),
            (" 1", AmountError::NotDigits),
            ("1 ", AmountError::NotDigits),
            ("1.5", AmountError::NotDigits),
            ("1e6", AmountError::NotDigits),
            ("١", AmountError::NotDigits),
            ("00", AmountError::LeadingZero),
            ("0100", AmountError::LeadingZero),
        ];
        for (text, want) in bad {
            assert_eq!(Amount::parse(text), Err(want), "{text:?}");
        }
        assert_eq!(Amount::parse(&"1".repeat(MAX_AMOUNT_DIGITS + 1)), Err(AmountError::TooLong));
    }

    #[test]
    fn amounts_compare_as_integers_of_any_size() {
        assert!(amount("9") < amount("10"));
        assert!(amount("1000001") > amount("1000000"));
        assert!(amount("0") < amount("1"));
        assert_eq!(amount("42").cmp(&amount("42")), Ordering::Equal);
        // Beyond u128 (39 digits) and f64 precision.
        let big = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
        let bigger = "115792089237316195423570985008687907853269984665640564039457584007913129639936";
        assert!(amount(big) < amount(bigger));
        assert!(amount(&format!("1{}", "0".repeat(100))) > amount(big));
    }

    #[test]
    fn value_fields_go_together_and_decode_as_strings() {
        let base = r#"{"key_type":"secp256k1","wallet_id":"w","tx_id":"t""#;
        let req = SignTxRequest::from_json(format!("{base}}}").as_bytes()).unwrap();
        assert_eq!(req.value(), Ok(None));
        let req =
            SignTxRequest::from_json(format!(r#"{base},"asset":null,"amount":null}}"#).as_bytes()).unwrap();
        assert_eq!(req.value(), Ok(None));
        let req =
            SignTxRequest::from_json(format!(r#"{base},"asset":"BTC","amount":"5"}}"#).as_bytes()).unwrap();
        assert_eq!(req.value(), Ok(Some(TxValue { asset: "BTC".into(), amount: amount("5") })));
        let req = SignTxRequest::from_json(format!(r#"{base},"asset":"BTC"}}"#).as_bytes()).unwrap();
        let err = req.value().unwrap_err();
        assert_eq!(err, ValidationError::HalfValue { present: "asset", missing: "amount" });
        assert_eq!(err.error_code(), crate::ErrorCode::MsgValidation);
        assert!(err.to_string().contains("amount"), "{err}");
        let req = SignTxRequest::from_json(format!(r#"{base},"amount":"5"}}"#).as_bytes()).unwrap();
        assert_eq!(
            req.value().unwrap_err(),
            ValidationError::HalfValue { present: "amount", missing: "asset" }
        );
        let req =
            SignTxRequest::from_json(format!(r#"{base},"asset":"BTC","amount":"05"}}"#).as_bytes()).unwrap();
        assert_eq!(req.value().unwrap_err(), ValidationError::Amount(AmountError::LeadingZero));
        let req =
            SignTxRequest::from_json(format!(r#"{base},"asset":"","amount":"5"}}"#).as_bytes()).unwrap();
        assert_eq!(req.value().unwrap_err(), ValidationError::Asset);
        let err =
            SignTxRequest::from_json(format!(r#"{base},"asset":"BTC","amount":5}}"#).as_bytes()).unwrap_err();
        assert_eq!(err.error_code(), crate::ErrorCode::UnmarshalFailure);
    }

    #[test]
    fn encoding_adds_the_value_only_when_present() {
        let message = SignTxMessage {
            wallet_id: "w".into(),
            tx_id: "t".into(),
            tx: Some(vec![1]),
            ..Default::default()
        };
        let plain = SignTxRequest::new(message.clone());
        assert_eq!(plain.to_json(), message.to_json());
        let valued = SignTxRequest::with_value(message, "BTC", "1000");
        let json = valued.to_json();
        assert!(json.ends_with(r#""derivation_path":null,"asset":"BTC","amount":"1000"}"#), "{json}");
        assert_eq!(SignTxRequest::from_json(json.as_bytes()).unwrap(), valued);
    }
}
