//! Key shares are written once: a share record is never overwritten (a replayed keygen or a
//! reshare announced at a stale version must not destroy a live share), and the shares a run
//! makes are stored together or not at all. Beside them, the bans of DKLs23 counterparties.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Result, StoreError};
use crate::keys::{BAN_PREFIX, RecordKey, ShareKind, wallet_component};
use crate::store::{RECORDS, Store, append_change, check_value, insert_new};

/// A counterparty this node must not run DKLs23 with for one wallet's ECDSA key: a failed OT
/// consistency check leaks bits of this node's OT secret to it (selective failure), so it is
/// excluded for good, until a reshare makes a key version with fresh OT state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ban {
    /// The banned node.
    pub node_id: String,
    /// The key version whose OT state is spent; the ban applies to this version.
    pub key_version: u32,
    /// What failed.
    pub reason: String,
    /// When (RFC 3339, UTC).
    pub at: String,
}

impl Store {
    /// Stores a key share (`ecdsa:`, `eddsa:` or `taproot:<walletID>_v<N>`), create-only:
    /// [`StoreError::RecordExists`] if that version is already stored.
    pub fn put_share(&self, kind: ShareKind, wallet_id: &str, version: u32, share: &[u8]) -> Result<()> {
        self.put_shares(&[(kind, wallet_id, version, share)])
    }

    /// Share records checked and sealed, ready for one write transaction.
    pub(crate) fn seal_shares(
        &self,
        shares: &[(ShareKind, &str, u32, &[u8])],
    ) -> Result<Vec<(RecordKey, Vec<u8>)>> {
        let mut sealed = Vec::with_capacity(shares.len());
        for (kind, wallet, version, value) in shares {
            let key = RecordKey::share(*kind, wallet, *version)?;
            check_value(&key, value)?;
            let bytes = self.seal_value(&key, value)?;
            sealed.push((key, bytes));
        }
        Ok(sealed)
    }

    /// Stores several shares in one durable transaction, create-only: all of them, or none
    /// when any is already stored.
    pub fn put_shares(&self, shares: &[(ShareKind, &str, u32, &[u8])]) -> Result<()> {
        let sealed = self.seal_shares(shares)?;
        self.insert_all_new(&sealed)
    }

    /// Writes sealed records in one durable transaction, create-only: all of them, or none
    /// ([`StoreError::RecordExists`] naming the first that is already stored).
    pub(crate) fn insert_all_new(&self, sealed: &[(RecordKey, Vec<u8>)]) -> Result<()> {
        let txn = self.begin_write()?;
        for (key, bytes) in sealed {
            if !insert_new(&txn, key, bytes)? {
                txn.abort()?;
                return Err(StoreError::RecordExists { key: key.as_str().to_owned() });
            }
        }
        for (key, _) in sealed {
            append_change(&txn, key)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Reads a key share.
    pub fn get_share(
        &self,
        kind: ShareKind,
        wallet_id: &str,
        version: u32,
    ) -> Result<Option<Zeroizing<Vec<u8>>>> {
        self.get(&RecordKey::share(kind, wallet_id, version)?)
    }

    /// Every version of a wallet's share of one kind held here, ascending.
    pub fn share_versions(&self, kind: ShareKind, wallet_id: &str) -> Result<Vec<u32>> {
        // Share keys hold the wallet id as it is (it ends the name but for `_v<N>`).
        RecordKey::share(kind, wallet_id, 0)?;
        let prefix = format!("{}:{wallet_id}_v", kind.prefix());
        let mut versions: Vec<u32> = self
            .keys_with_prefix(&prefix)?
            .iter()
            // Another wallet's id may extend this one ("a" and "a_v1x"): only `<digits>` remain.
            .filter_map(|k| k[prefix.len()..].parse().ok())
            .collect();
        versions.sort_unstable();
        Ok(versions)
    }

    /// Deletes a share version (an old version once a reshare made a newer one); returns
    /// whether it existed. Backups made before keep it (see ARCHITECTURE.md).
    pub fn delete_share(&self, kind: ShareKind, wallet_id: &str, version: u32) -> Result<bool> {
        self.delete(&RecordKey::share(kind, wallet_id, version)?)
    }

    /// Bans `ban.node_id` for `wallet_id`'s ECDSA key (durably; a later ban of the same node
    /// replaces the earlier one).
    pub fn put_ban(&self, wallet_id: &str, ban: &Ban) -> Result<()> {
        let key = RecordKey::ban(wallet_id, &ban.node_id)?;
        let bytes = serde_json::to_vec(ban).map_err(|_| StoreError::Corrupt { key: key.to_string() })?;
        self.put(&key, &bytes)
    }

    /// The bans held for a wallet.
    pub fn bans(&self, wallet_id: &str) -> Result<Vec<Ban>> {
        self.read_bans(&format!("{BAN_PREFIX}{}:", wallet_component(wallet_id)?))
    }

    /// Every ban held, over all wallets.
    pub fn all_bans(&self) -> Result<Vec<Ban>> {
        self.read_bans(BAN_PREFIX)
    }

    /// Forget a wallet's bans of versions older than `version` (a reshare made fresh OT state).
    pub fn lift_bans_before(&self, wallet_id: &str, version: u32) -> Result<usize> {
        let mut lifted = 0;
        for ban in self.bans(wallet_id)? {
            if ban.key_version < version && self.delete(&RecordKey::ban(wallet_id, &ban.node_id)?)? {
                lifted += 1;
            }
        }
        Ok(lifted)
    }

    /// Record `run` as the one run of `what` (e.g. a reshare request's session id) for a
    /// wallet, in the durable replay journal: `true` when `run` holds it (now or from before),
    /// `false` when another run does.
    pub fn claim_run(&self, wallet_id: &str, what: &str, run: &str) -> Result<bool> {
        let key = RecordKey::replay(wallet_id, what)?;
        let sealed = self.seal_value(&key, run.as_bytes())?;
        let txn = self.begin_write()?;
        let holder = {
            let mut records = txn.open_table(RECORDS)?;
            let existing = records.get(key.as_str())?.map(|v| v.value().to_vec());
            match existing {
                Some(bytes) => Some(self.open_value(key.as_str(), &bytes)?),
                None => {
                    records.insert(key.as_str(), sealed.as_slice())?;
                    None
                }
            }
        };
        match holder {
            Some(holder) => {
                txn.abort()?;
                Ok(holder.as_slice() == run.as_bytes())
            }
            None => {
                append_change(&txn, &key)?;
                txn.commit()?;
                Ok(true)
            }
        }
    }

    fn read_bans(&self, prefix: &str) -> Result<Vec<Ban>> {
        let mut out = Vec::new();
        for key in self.keys_with_prefix(prefix)? {
            let record = RecordKey::new(key.clone())?;
            let Some(bytes) = self.get(&record)? else { continue };
            out.push(serde_json::from_slice(&bytes).map_err(|_| StoreError::Corrupt { key })?);
        }
        Ok(out)
    }
}
