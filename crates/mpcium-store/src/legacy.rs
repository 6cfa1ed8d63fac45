//! Shares imported from the original mpcium (its tss-lib shares), staged here by
//! `mpcium-cli migrate import` until the cluster converts them onto its own committee. A staged
//! share never signs; it only deals once, in that conversion. Like key shares, staged shares are
//! written once and all of one import or none.

use zeroize::Zeroizing;

use crate::error::{Result, StoreError};
use crate::keys::{LEGACY_PREFIX, RecordKey, ShareKind};
use crate::store::{Store, check_value};

const MAGIC: &[u8; 4] = b"MLS1";

/// A staged imported share: the original's node ids of every holder (in the order the share's
/// holder list numbers them) and the share itself (`mpcium_tss::legacy::LegacyShare` bytes,
/// opaque here).
pub struct LegacyShareRecord {
    /// The original's node id of each holder.
    pub holders: Vec<String>,
    /// The encoded share (secret).
    pub share: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for LegacyShareRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegacyShareRecord")
            .field("holders", &self.holders)
            .field("share", &"<redacted>")
            .finish()
    }
}

impl LegacyShareRecord {
    fn encode(&self) -> Option<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(Vec::with_capacity(self.share.len() + 64 * self.holders.len()));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&u16::try_from(self.holders.len()).ok()?.to_be_bytes());
        for h in &self.holders {
            out.extend_from_slice(&u16::try_from(h.len()).ok()?.to_be_bytes());
            out.extend_from_slice(h.as_bytes());
        }
        out.extend_from_slice(&self.share);
        Some(out)
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let rest = bytes.strip_prefix(MAGIC)?;
        let take = |rest: &mut &[u8], n: usize| -> Option<Vec<u8>> {
            if rest.len() < n {
                return None;
            }
            let (head, tail) = rest.split_at(n);
            *rest = tail;
            Some(head.to_vec())
        };
        let mut rest = rest;
        let count = u16::from_be_bytes(take(&mut rest, 2)?.try_into().ok()?);
        let mut holders = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let len = u16::from_be_bytes(take(&mut rest, 2)?.try_into().ok()?);
            holders.push(String::from_utf8(take(&mut rest, usize::from(len))?).ok()?);
        }
        Some(Self { holders, share: Zeroizing::new(rest.to_vec()) })
    }
}

/// The `<kind>:<wallet>_v<N>` part of a legacy key.
fn parse_legacy_key(key: &str) -> Option<(ShareKind, String, u32)> {
    let rest = key.strip_prefix(LEGACY_PREFIX)?;
    let (kind, rest) = if let Some(r) = rest.strip_prefix("ecdsa:") {
        (ShareKind::Ecdsa, r)
    } else {
        (ShareKind::Eddsa, rest.strip_prefix("eddsa:")?)
    };
    let (wallet, version) = rest.rsplit_once("_v")?;
    Some((kind, wallet.to_owned(), version.parse().ok()?))
}

impl Store {
    /// Stages imported shares in one durable transaction: all of them, or none when a wallet
    /// already has a staged share of that kind or a share of ours
    /// ([`StoreError::RecordExists`] naming it).
    pub fn put_legacy_shares(&self, entries: &[(ShareKind, &str, u32, &LegacyShareRecord)]) -> Result<()> {
        let mut sealed = Vec::with_capacity(entries.len());
        for (kind, wallet, version, record) in entries {
            let key = RecordKey::legacy(*kind, wallet, *version)?;
            if let Some((v, _)) = self.legacy_share(*kind, wallet)? {
                return Err(StoreError::RecordExists {
                    key: RecordKey::legacy(*kind, wallet, v)?.as_str().to_owned(),
                });
            }
            if let Some(v) = self.share_versions(*kind, wallet)?.first() {
                return Err(StoreError::RecordExists {
                    key: RecordKey::share(*kind, wallet, *v)?.as_str().to_owned(),
                });
            }
            let value = record.encode().ok_or_else(|| StoreError::Corrupt { key: key.to_string() })?;
            check_value(&key, &value)?;
            sealed.push((key.clone(), self.seal_value(&key, &value)?));
        }
        self.insert_all_new(&sealed)
    }

    /// The staged imported share of a wallet's key of one kind, with its version.
    pub fn legacy_share(&self, kind: ShareKind, wallet_id: &str) -> Result<Option<(u32, LegacyShareRecord)>> {
        RecordKey::legacy(kind, wallet_id, 0)?;
        let prefix = format!("{LEGACY_PREFIX}{}:{wallet_id}_v", kind.prefix());
        for key in self.keys_with_prefix(&prefix)? {
            let Some(version) = key[prefix.len()..].parse::<u32>().ok() else { continue };
            let record_key = RecordKey::legacy(kind, wallet_id, version)?;
            let Some(bytes) = self.get(&record_key)? else { continue };
            let record = LegacyShareRecord::decode(&bytes).ok_or(StoreError::Corrupt { key })?;
            return Ok(Some((version, record)));
        }
        Ok(None)
    }

    /// Every staged imported share: kind, wallet id, version.
    pub fn legacy_shares(&self) -> Result<Vec<(ShareKind, String, u32)>> {
        Ok(self.keys_with_prefix(LEGACY_PREFIX)?.iter().filter_map(|k| parse_legacy_key(k)).collect())
    }

    /// Drops a staged share once the cluster has converted it; returns whether it existed.
    pub fn delete_legacy_share(&self, kind: ShareKind, wallet_id: &str, version: u32) -> Result<bool> {
        self.delete(&RecordKey::legacy(kind, wallet_id, version)?)
    }
}
