//! Record key names and the namespaces the node uses.
//!
//! Layout (the first two are the original mpcium's):
//! - `ecdsa:<walletID>_v<N>` / `eddsa:<walletID>_v<N>`: key shares;
//! - `setup:<name>`: engine setup data (e.g. pre-parameters);
//! - `presig:<walletID>:<presigID>`: presignatures, consumed by [`crate::Store::take_presignature`];
//! - `replay:<walletID>:<txID>`: the replay-protection journal.

use crate::error::{Result, StoreError};

/// Longest accepted key name, in bytes.
pub const MAX_KEY_LEN: usize = 512;
/// Longest accepted value, in bytes (a 120 KB ECDSA share fits many times over).
pub const MAX_VALUE_LEN: usize = 16 * 1024 * 1024;

pub(crate) const PRESIG_PREFIX: &str = "presig:";
pub(crate) const REPLAY_PREFIX: &str = "replay:";
pub(crate) const SETUP_PREFIX: &str = "setup:";
pub(crate) const BAN_PREFIX: &str = "ban:";

/// A validated record key name: 1..=[`MAX_KEY_LEN`] bytes, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordKey(String);

impl RecordKey {
    /// Validates an arbitrary key name.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let reason = if name.is_empty() {
            Some("empty")
        } else if name.len() > MAX_KEY_LEN {
            Some("longer than 512 bytes")
        } else if name.chars().any(char::is_control) {
            Some("contains a control character")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(StoreError::InvalidKey { key: name, reason }),
            None => Ok(RecordKey(name)),
        }
    }

    /// `ecdsa:<walletID>_v<N>` or `eddsa:<walletID>_v<N>`.
    pub fn share(kind: ShareKind, wallet_id: &str, version: u32) -> Result<Self> {
        component(wallet_id)?;
        Self::new(format!("{}:{wallet_id}_v{version}", kind.prefix()))
    }

    /// `setup:<name>`.
    pub fn setup(name: &str) -> Result<Self> {
        component(name)?;
        Self::new(format!("{SETUP_PREFIX}{name}"))
    }

    /// `presig:<walletID>:<presigID>`.
    pub fn presignature(wallet_id: &str, presig_id: &str) -> Result<Self> {
        first_component(wallet_id)?;
        component(presig_id)?;
        Self::new(format!("{PRESIG_PREFIX}{wallet_id}:{presig_id}"))
    }

    /// `ban:<walletID>:<nodeID>`: a node this node never runs DKLs23 with for the wallet's
    /// ECDSA key (until a reshare replaces it).
    pub fn ban(wallet_id: &str, node_id: &str) -> Result<Self> {
        first_component(wallet_id)?;
        component(node_id)?;
        Self::new(format!("{BAN_PREFIX}{wallet_id}:{node_id}"))
    }

    /// `replay:<walletID>:<txID>`.
    pub fn replay(wallet_id: &str, tx_id: &str) -> Result<Self> {
        first_component(wallet_id)?;
        component(tx_id)?;
        Self::new(format!("{REPLAY_PREFIX}{wallet_id}:{tx_id}"))
    }

    /// The key name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the record is excluded from the change log and therefore from backups.
    ///
    /// Presignatures are: restoring a backup taken before a presignature was consumed would
    /// resurrect it, and reusing a presignature leaks the key share. A data-key rotation drops
    /// them for the same reason (see [`crate::rekey`]).
    pub fn is_ephemeral(&self) -> bool {
        self.0.starts_with(PRESIG_PREFIX)
    }
}

impl std::fmt::Display for RecordKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which signature scheme a key share belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShareKind {
    /// Threshold ECDSA over secp256k1.
    Ecdsa,
    /// Threshold EdDSA over Ed25519.
    Eddsa,
}

impl ShareKind {
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            ShareKind::Ecdsa => "ecdsa",
            ShareKind::Eddsa => "eddsa",
        }
    }
}

fn component(part: &str) -> Result<()> {
    if part.is_empty() {
        return Err(StoreError::InvalidKey { key: part.to_owned(), reason: "empty component" });
    }
    Ok(())
}

/// A component followed by `:` must not contain `:`, so that the key parses unambiguously.
pub(crate) fn first_component(part: &str) -> Result<()> {
    component(part)?;
    if part.contains(':') {
        return Err(StoreError::InvalidKey {
            key: part.to_owned(),
            reason: "wallet id must not contain ':'",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_validation() {
        assert_eq!(RecordKey::share(ShareKind::Ecdsa, "w1", 0).unwrap().as_str(), "ecdsa:w1_v0");
        assert_eq!(RecordKey::share(ShareKind::Eddsa, "w1", 3).unwrap().as_str(), "eddsa:w1_v3");
        assert_eq!(RecordKey::replay("w", "t:x").unwrap().as_str(), "replay:w:t:x");
        assert!(RecordKey::new("").is_err());
        assert!(RecordKey::new("a".repeat(MAX_KEY_LEN + 1)).is_err());
        assert!(RecordKey::new("a\nb").is_err());
        assert!(RecordKey::replay("w:1", "t").is_err());
        assert!(RecordKey::share(ShareKind::Ecdsa, "", 0).is_err());
        assert!(RecordKey::presignature("w", "p").unwrap().is_ephemeral());
        assert!(!RecordKey::share(ShareKind::Ecdsa, "w", 1).unwrap().is_ephemeral());
    }
}
