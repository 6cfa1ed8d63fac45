//! Bans announced cluster-wide (`mpc_bans`, one key per wallet): which node banned which for a
//! wallet's ECDSA key version. The authority is each node's own ban list in its store, which it
//! enforces itself; this bucket only lets a coordinator pick signers that will not refuse each
//! other. A forged or deleted entry can cost availability (a pair avoided, or a session that a
//! participant then refuses), never a key.

use async_nats::jetstream::kv;
use serde::{Deserialize, Serialize};

use super::{BANS_BUCKET, Registry, RegistryError, keyinfo_key, kv_err};

/// One node's ban of another for a wallet's ECDSA key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanNotice {
    /// The wallet whose ECDSA key the ban is for.
    pub wallet_id: String,
    /// The node that banned.
    pub by: String,
    /// The banned node.
    pub banned: String,
    /// The key version whose pairwise OT state is spent.
    pub key_version: u32,
}

/// How often a conflicting update is retried before giving up.
const UPDATE_TRIES: usize = 8;

impl Registry {
    /// The bans announced for a wallet (any version).
    pub async fn ban_notices(&self, wallet_id: &str) -> Result<Vec<BanNotice>, RegistryError> {
        let key = keyinfo_key("ban", wallet_id);
        let Some(bytes) = self.bans.get(&key).await.map_err(|e| kv_err(BANS_BUCKET)(e.into()))? else {
            return Ok(Vec::new());
        };
        serde_json::from_slice(&bytes).map_err(|e| RegistryError::Corrupt {
            bucket: BANS_BUCKET,
            key,
            reason: e.to_string(),
        })
    }

    /// Every ban announced, over all wallets.
    pub async fn all_ban_notices(&self) -> Result<Vec<BanNotice>, RegistryError> {
        use futures_util::StreamExt;
        let mut keys = self.bans.keys().await.map_err(|e| kv_err(BANS_BUCKET)(e.into()))?;
        let mut out = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| kv_err(BANS_BUCKET)(e.into()))?;
            let Some(bytes) = self.bans.get(&key).await.map_err(|e| kv_err(BANS_BUCKET)(e.into()))? else {
                continue;
            };
            let list: Vec<BanNotice> = serde_json::from_slice(&bytes).map_err(|e| {
                RegistryError::Corrupt { bucket: BANS_BUCKET, key: key.clone(), reason: e.to_string() }
            })?;
            out.extend(list);
        }
        Ok(out)
    }

    /// Add a ban to a wallet's announced list (compare-and-set, retried on a conflict); entries
    /// of versions older than `notice.key_version` are dropped.
    pub async fn announce_ban(&self, wallet_id: &str, notice: BanNotice) -> Result<(), RegistryError> {
        let key = keyinfo_key("ban", wallet_id);
        for _ in 0..UPDATE_TRIES {
            let entry = self.bans.entry(&key).await.map_err(|e| kv_err(BANS_BUCKET)(e.into()))?;
            let (mut list, revision) = match &entry {
                Some(e) if e.operation == kv::Operation::Put => {
                    (serde_json::from_slice::<Vec<BanNotice>>(&e.value).unwrap_or_default(), Some(e.revision))
                }
                Some(e) => (Vec::new(), Some(e.revision)),
                None => (Vec::new(), None),
            };
            list.retain(|n| n.key_version >= notice.key_version && n != &notice);
            list.push(notice.clone());
            let bytes = serde_json::to_vec(&list).unwrap_or_default();
            let written = match revision {
                Some(rev) => self.bans.update(&key, bytes.into(), rev).await.is_ok(),
                None => self.bans.create(&key, bytes.into()).await.is_ok(),
            };
            if written {
                return Ok(());
            }
        }
        Err(RegistryError::Corrupt { bucket: BANS_BUCKET, key, reason: "too many concurrent updates".into() })
    }
}
