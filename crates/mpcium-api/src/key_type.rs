//! The `key_type` field of sign and reshare requests and of reshare results.

use serde::{Deserialize, Deserializer};

/// Which wallet key a request addresses (Go `types.KeyType`, a free string on the wire).
///
/// Decoding never fails on an unknown value, as in Go: the exact text is kept in
/// [`KeyType::Unsupported`] so the signed bytes can be re-derived verbatim, and request validation
/// rejects it afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum KeyType {
    /// `"secp256k1"`: threshold ECDSA.
    Secp256k1,
    /// `"ed25519"`: threshold EdDSA.
    Ed25519,
    /// `"taproot"` **(ours)**: threshold BIP340 Schnorr over secp256k1 for Taproot key-path
    /// spends (BIP341). The original's clients never send it.
    Taproot,
    /// Any other non-empty text received on the wire.
    Unsupported(String),
    /// `""`, a missing field or `null` (Go's zero value), encoded as `""`.
    #[default]
    Missing,
}

impl KeyType {
    /// The exact wire text.
    pub fn as_str(&self) -> &str {
        match self {
            KeyType::Secp256k1 => "secp256k1",
            KeyType::Ed25519 => "ed25519",
            KeyType::Taproot => "taproot",
            KeyType::Unsupported(s) => s,
            KeyType::Missing => "",
        }
    }

    /// Maps wire text to a key type (never fails; see the type's docs).
    pub fn from_wire(s: &str) -> Self {
        match s {
            "secp256k1" => KeyType::Secp256k1,
            "ed25519" => KeyType::Ed25519,
            "taproot" => KeyType::Taproot,
            "" => KeyType::Missing,
            other => KeyType::Unsupported(other.to_owned()),
        }
    }

    /// True for the three key types the cluster can serve.
    pub fn is_supported(&self) -> bool {
        matches!(self, KeyType::Secp256k1 | KeyType::Ed25519 | KeyType::Taproot)
    }
}

impl std::fmt::Display for KeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for KeyType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        Ok(text.map_or(KeyType::Missing, |t| KeyType::from_wire(&t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_text_round_trips() {
        for s in ["secp256k1", "ed25519", "taproot", "", "Secp256k1", "Taproot", "p256"] {
            assert_eq!(KeyType::from_wire(s).as_str(), s);
        }
        assert!(KeyType::from_wire("ed25519").is_supported());
        assert!(!KeyType::from_wire("ED25519").is_supported());
        assert_eq!(KeyType::from_wire("taproot"), KeyType::Taproot);
        assert!(KeyType::Taproot.is_supported());
        assert!(!KeyType::from_wire("Taproot").is_supported());
        assert!(!KeyType::from_wire("").is_supported());
    }
}
