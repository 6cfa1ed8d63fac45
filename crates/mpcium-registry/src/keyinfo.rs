//! Wallet key info (`mpc_keyinfo`): the record, its KV key, and reading and writing it.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::{KEYINFO_BUCKET, Registry, RegistryError, kv_err, retry};

/// The original's per-wallet key metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// The node ids holding a share (a set; the order carries no meaning).
    pub participant_peer_ids: Vec<String>,
    /// t: a signature needs t+1 of them.
    pub threshold: u32,
    /// The key version (1 after keygen, +1 per reshare).
    pub version: u32,
    /// Our addition (absent in the original's records): the public key (curve encoding, hex).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub public_key: String,
    /// Our addition: every holder's public share by party id (hex), so any node, and a newcomer
    /// of a reshare, can check a resharing against the key without holding a share.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub public_shares: BTreeMap<u16, String>,
    /// Our addition: each listed holder's Ed25519 signature (base64) over the rest
    /// (`service/keyinfo.rs`); nodes believe a key info only when every holder signed it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub signatures: BTreeMap<String, String>,
    /// Our addition: for a version made by a reshare, the client's signed reshare request
    /// (base64), so an old holder left out can check that a client asked for it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request: String,
}

/// The KV key for a wallet's key info: `<curve>.<wallet>`, where a wallet id made only of
/// `[A-Za-z0-9_-]` (and `=` after the first character) is used as it is and any other id is
/// written `=` + base64url, so every wallet id maps to a distinct legal KV key.
pub fn keyinfo_key(curve: &str, wallet_id: &str) -> String {
    let plain = !wallet_id.is_empty()
        && !wallet_id.starts_with('=')
        && wallet_id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'='));
    if plain {
        format!("{curve}.{wallet_id}")
    } else {
        format!("{curve}.={}", URL_SAFE_NO_PAD.encode(wallet_id))
    }
}

impl Registry {
    /// The keys of the key-info bucket (`<curve>.<wallet>`, see [`keyinfo_key`]).
    pub async fn keyinfo_keys(&self) -> Result<Vec<String>, RegistryError> {
        let mut out = Vec::new();
        let mut keys = self.keyinfo.keys().await.map_err(|e| kv_err(KEYINFO_BUCKET)(e.into()))?;
        while let Some(key) = keys.next().await {
            out.push(key.map_err(|e| kv_err(KEYINFO_BUCKET)(e.into()))?);
        }
        Ok(out)
    }

    /// Every key info put from now on, after the latest of each key (for
    /// `service/keyinfo.rs`: old holders left out by a reshare).
    pub async fn watch_keyinfo(&self) -> Result<async_nats::jetstream::kv::Watch, RegistryError> {
        self.keyinfo.watch_with_history(">").await.map_err(|e| kv_err(KEYINFO_BUCKET)(e.into()))
    }

    /// A wallet's key info for one curve, if the wallet exists.
    pub async fn keyinfo(&self, curve: &str, wallet_id: &str) -> Result<Option<KeyInfo>, RegistryError> {
        let key = keyinfo_key(curve, wallet_id);
        let Some(bytes) =
            retry::get(&self.keyinfo, &key).await.map_err(|e| kv_err(KEYINFO_BUCKET)(e.into()))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| RegistryError::Corrupt {
            bucket: KEYINFO_BUCKET,
            key,
            reason: e.to_string(),
        })
    }

    /// Write a wallet's key info (the coordinator, with every holder's signature).
    pub async fn put_keyinfo(
        &self,
        curve: &str,
        wallet_id: &str,
        info: &KeyInfo,
    ) -> Result<(), RegistryError> {
        let key = keyinfo_key(curve, wallet_id);
        let bytes = serde_json::to_vec(info).map_err(|e| RegistryError::Corrupt {
            bucket: KEYINFO_BUCKET,
            key: key.clone(),
            reason: e.to_string(),
        })?;
        retry::put(&self.keyinfo, &key, bytes.into()).await.map_err(|e| kv_err(KEYINFO_BUCKET)(e.into()))?;
        Ok(())
    }

    /// Remove a wallet's key info for one curve (a keygen that made only one of its two keys).
    pub async fn delete_keyinfo(&self, curve: &str, wallet_id: &str) -> Result<(), RegistryError> {
        self.keyinfo.delete(keyinfo_key(curve, wallet_id)).await.map_err(|e| kv_err(KEYINFO_BUCKET)(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyinfo_keys_are_legal_and_distinct() {
        assert_eq!(keyinfo_key("ecdsa", "wallet-1_A"), "ecdsa.wallet-1_A");
        let odd = keyinfo_key("eddsa", "a:b");
        assert!(odd.starts_with("eddsa.="), "{odd}");
        assert_ne!(keyinfo_key("eddsa", "=x"), keyinfo_key("eddsa", "x"));
        for id in ["a:b", "=x", "ü", "a b"] {
            let k = keyinfo_key("ecdsa", id);
            assert!(k.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_=.".contains(&b)), "{k}");
        }
    }
}
