//! Record key names and the namespaces the node uses.
//!
//! Layout (the first two are the original mpcium's):
//! - `ecdsa:<walletID>_v<N>` / `eddsa:<walletID>_v<N>`: key shares;
//! - `taproot:<walletID>_v<N>` **(ours)**: Taproot (BIP340 Schnorr over secp256k1) key shares;
//! - `setup:<name>`: engine setup data (e.g. pre-parameters);
//! - `presig:<walletID>:<presigID>`: presignatures, consumed by [`crate::Store::take_presignature`];
//! - `replay:<walletID>:<txID>`: the replay-protection journal;
//! - `legacy:ecdsa:<walletID>_v<N>` / `legacy:eddsa:…`: shares imported from the original, staged.
//!
//! Every key is injective in its parts for any wallet id the wire accepts (`mpcium_api::ids`:
//! up to 256 bytes, `:`, `/`, `=`, non-ASCII allowed). Share keys need no escaping: the prefix is
//! fixed and the version is the digits after the last `_v`. Where a `:` ends the wallet id
//! (`presig:`, `replay:`), an id containing `:` is written `:` + base64url (no padding) of its
//! bytes, so its key starts `presig::`/`replay::`; a plain id is non-empty and has no `:`, so it
//! keeps its old encoding byte for byte (stores written before this escaping keep working) and
//! no escaped key can equal or extend a plain one. See [`wallet_component`].

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{Result, StoreError};

/// Longest accepted key name, in bytes. Room for the longest keys of the longest ids the wire
/// accepts (`replay:` + an escaped 256-byte wallet id + a 256-byte tx id is 607 bytes).
pub const MAX_KEY_LEN: usize = 1024;
/// Longest accepted value, in bytes (a 120 KB ECDSA share fits many times over).
pub const MAX_VALUE_LEN: usize = 16 * 1024 * 1024;

pub(crate) const PRESIG_PREFIX: &str = "presig:";
pub(crate) const REPLAY_PREFIX: &str = "replay:";
pub(crate) const SETUP_PREFIX: &str = "setup:";
pub(crate) const BAN_PREFIX: &str = "ban:";
pub(crate) const LEGACY_PREFIX: &str = "legacy:";
pub(crate) const POOLED_PREFIX: &str = "keypool:";

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
            Some("longer than 1024 bytes (MAX_KEY_LEN)")
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

    /// `ecdsa:<walletID>_v<N>`, `eddsa:<walletID>_v<N>` or `taproot:<walletID>_v<N>`.
    pub fn share(kind: ShareKind, wallet_id: &str, version: u32) -> Result<Self> {
        component(wallet_id)?;
        Self::new(format!("{}:{wallet_id}_v{version}", kind.prefix()))
    }

    /// `legacy:ecdsa:<walletID>_v<N>` / `legacy:eddsa:<walletID>_v<N>`: a share imported from the
    /// original mpcium, staged until the cluster converts it (see [`crate::LegacyShareRecord`]).
    pub fn legacy(kind: ShareKind, wallet_id: &str, version: u32) -> Result<Self> {
        component(wallet_id)?;
        Self::new(format!("{LEGACY_PREFIX}{}:{wallet_id}_v{version}", kind.prefix()))
    }

    /// `setup:<name>`.
    pub fn setup(name: &str) -> Result<Self> {
        component(name)?;
        Self::new(format!("{SETUP_PREFIX}{name}"))
    }

    /// `presig:<walletID>:<presigID>` (the wallet id escaped as [`wallet_component`] says).
    pub fn presignature(wallet_id: &str, presig_id: &str) -> Result<Self> {
        component(presig_id)?;
        Self::new(format!("{}{presig_id}", presignature_prefix(wallet_id)?))
    }

    /// `keypool:<poolID>`: a key made ahead of its wallet (see [`crate::Store::put_pooled_key`]).
    pub fn pooled_key(pool_id: &str) -> Result<Self> {
        component(pool_id)?;
        Self::new(format!("{POOLED_PREFIX}{pool_id}"))
    }

    /// `ban:<walletID>:<nodeID>` (the wallet id escaped as [`wallet_component`] says): a node this node never runs DKLs23 with for the wallet's
    /// ECDSA key (until a reshare replaces it).
    pub fn ban(wallet_id: &str, node_id: &str) -> Result<Self> {
        component(node_id)?;
        Self::new(format!("{BAN_PREFIX}{}:{node_id}", wallet_component(wallet_id)?))
    }

    /// `replay:<walletID>:<txID>` (the wallet id escaped as [`wallet_component`] says).
    pub fn replay(wallet_id: &str, tx_id: &str) -> Result<Self> {
        component(tx_id)?;
        Self::new(format!("{REPLAY_PREFIX}{}:{tx_id}", wallet_component(wallet_id)?))
    }

    /// The key name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the record is excluded from the change log and therefore from backups.
    ///
    /// Presignatures are: restoring a backup taken before a presignature was consumed would
    /// resurrect it, and reusing a presignature leaks the key share. A data-key rotation drops
    /// them for the same reason (see [`crate::rekey`]). Keys made ahead of their wallet
    /// (`keypool:`) are too: a restored one could be handed to a second wallet; once handed to
    /// a wallet its shares are ordinary share records, backed up.
    pub fn is_ephemeral(&self) -> bool {
        self.0.starts_with(PRESIG_PREFIX) || self.0.starts_with(POOLED_PREFIX)
    }
}

impl std::fmt::Display for RecordKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which signature scheme a key share belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ShareKind {
    /// Threshold ECDSA over secp256k1.
    Ecdsa,
    /// Threshold EdDSA over Ed25519.
    Eddsa,
    /// Threshold BIP340 Schnorr over secp256k1 (Taproot key-path spends); ours, the original
    /// has no such share.
    Taproot,
}

impl ShareKind {
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            ShareKind::Ecdsa => "ecdsa",
            ShareKind::Eddsa => "eddsa",
            ShareKind::Taproot => "taproot",
        }
    }
}

fn component(part: &str) -> Result<()> {
    if part.is_empty() {
        return Err(StoreError::InvalidKey { key: part.to_owned(), reason: "empty component" });
    }
    Ok(())
}

/// A wallet id as it appears before a `:` in a key: itself when it has no `:` (the encoding of
/// every key written before escaping existed), else `:` + base64url without padding.
///
/// Injective and prefix-free once the `:` after it is appended: a plain component is non-empty
/// and `:`-free, an escaped one starts with `:` and its base64url text has no `:`, so the first
/// (plain) or second (escaped) `:` ends the wallet part, and plain and escaped ids differ in the
/// first byte. So a prefix scan for one wallet never sees another wallet's records.
pub(crate) fn wallet_component(wallet_id: &str) -> Result<Cow<'_, str>> {
    component(wallet_id)?;
    Ok(if wallet_id.contains(':') {
        Cow::Owned(format!(":{}", URL_SAFE_NO_PAD.encode(wallet_id)))
    } else {
        Cow::Borrowed(wallet_id)
    })
}

/// `presig:<walletID>:`, the common prefix of a wallet's presignature keys.
pub(crate) fn presignature_prefix(wallet_id: &str) -> Result<String> {
    Ok(format!("{PRESIG_PREFIX}{}:", wallet_component(wallet_id)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_validation() {
        assert_eq!(RecordKey::share(ShareKind::Ecdsa, "w1", 0).unwrap().as_str(), "ecdsa:w1_v0");
        assert_eq!(RecordKey::share(ShareKind::Eddsa, "w1", 3).unwrap().as_str(), "eddsa:w1_v3");
        assert_eq!(RecordKey::share(ShareKind::Taproot, "w1", 3).unwrap().as_str(), "taproot:w1_v3");
        assert_eq!(RecordKey::replay("w", "t:x").unwrap().as_str(), "replay:w:t:x");
        assert!(RecordKey::new("").is_err());
        assert!(RecordKey::new("a".repeat(MAX_KEY_LEN + 1)).is_err());
        assert!(RecordKey::new("a\nb").is_err());
        assert!(RecordKey::replay("", "t").is_err());
        assert!(RecordKey::presignature("", "p").is_err());
        assert!(RecordKey::share(ShareKind::Ecdsa, "", 0).is_err());
        assert!(RecordKey::presignature("w", "p").unwrap().is_ephemeral());
        assert!(!RecordKey::share(ShareKind::Ecdsa, "w", 1).unwrap().is_ephemeral());
        assert_eq!(RecordKey::pooled_key("kp-n0-1").unwrap().as_str(), "keypool:kp-n0-1");
        assert!(RecordKey::pooled_key("kp-n0-1").unwrap().is_ephemeral());
        assert!(RecordKey::pooled_key("").is_err());
    }

    /// Ids the wire accepts (`mpcium_api::ids::validate_token`: no `.`, `*`, `>`, whitespace or
    /// control characters, at most 256 bytes) that contain the separators and escape characters.
    fn awkward_ids() -> Vec<String> {
        let mut ids: Vec<String> = [
            "w",
            "w:",
            ":w",
            "w:0",
            "w:0:1",
            "::",
            ":",
            "=",
            "=w",
            "w=",
            "=Ojo",
            ":Ojo",
            "a/b",
            "a/b:c",
            "w_v1",
            "w_v1_v2",
            "wallet-é",
            "钱包:0",
            "e\u{301}",
            "%3A",
            "w%3A0",
            "~:~",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        ids.push("0a7b2c9e-47c2-4d1e-9f3a-2b1c0d9e8f7a:0".to_owned());
        ids.push("a".repeat(256));
        ids.push(format!("{}:", "a".repeat(255)));
        ids.push(":".repeat(256));
        ids.push("é".repeat(128));
        ids
    }

    #[test]
    fn plain_ids_keep_their_encoding() {
        // Byte for byte what stores written before escaping contain.
        assert_eq!(RecordKey::presignature("w1", "p:x").unwrap().as_str(), "presig:w1:p:x");
        assert_eq!(RecordKey::replay("w=/é", "t").unwrap().as_str(), "replay:w=/é:t");
        assert_eq!(RecordKey::share(ShareKind::Ecdsa, "a:b", 2).unwrap().as_str(), "ecdsa:a:b_v2");
        // `w:0` → `:` + base64url("w:0").
        assert_eq!(RecordKey::presignature("w:0", "p").unwrap().as_str(), "presig::dzow:p");
        assert_eq!(RecordKey::replay("w:0", "t:1").unwrap().as_str(), "replay::dzow:t:1");
    }

    #[test]
    fn keys_are_injective_and_prefixes_disjoint_for_every_accepted_id() {
        let ids = awkward_ids();
        let mut seen = std::collections::HashSet::new();
        for id in &ids {
            assert!(id.len() <= 256);
            for key in [
                RecordKey::share(ShareKind::Ecdsa, id, 0).unwrap(),
                RecordKey::share(ShareKind::Ecdsa, id, 1).unwrap(),
                RecordKey::share(ShareKind::Eddsa, id, 0).unwrap(),
                RecordKey::share(ShareKind::Taproot, id, 0).unwrap(),
                RecordKey::presignature(id, "p").unwrap(),
                RecordKey::presignature(id, "p:1").unwrap(),
                RecordKey::replay(id, "t").unwrap(),
                RecordKey::replay(id, &"t".repeat(256)).unwrap(),
            ] {
                assert!(seen.insert(key.clone()), "two (id, part) pairs map to {key}");
            }
        }
        for a in &ids {
            let pa = presignature_prefix(a).unwrap();
            for b in ids.iter().filter(|b| *b != a) {
                let pb = presignature_prefix(b).unwrap();
                assert!(!pb.starts_with(&pa), "prefix of {a:?} ({pa}) covers {b:?} ({pb})");
                let key = RecordKey::presignature(b, "p").unwrap();
                assert!(!key.as_str().starts_with(&pa), "scan of {a:?} would see {key}");
            }
        }
    }
}
