//! Keys made ahead of their wallet (the node's key pool): one record per pooled key, holding
//! what the node needs to hand it to a wallet later (its shares and the committee it was made
//! with, encoded by the node). A pooled key is handed to a wallet at most once on this disk:
//! [`Store::assign_pooled_key`] removes the record and creates the wallet's share records in
//! one durable transaction. Pooled keys are never backed up ([`RecordKey::is_ephemeral`]); the
//! node also records each hand-over cluster-wide, so a copied disk cannot hand one out twice.

use zeroize::Zeroizing;

use crate::error::{Result, StoreError};
use crate::keys::{POOLED_PREFIX, RecordKey, ShareKind};
use crate::store::{RECORDS, Store, append_change, check_value, insert_new};

impl Store {
    /// Stores a pooled key, create-only: an id that exists gives
    /// [`StoreError::PooledKeyExists`] and the stored one is left as it is.
    pub fn put_pooled_key(&self, pool_id: &str, data: &[u8]) -> Result<()> {
        let key = RecordKey::pooled_key(pool_id)?;
        check_value(&key, data)?;
        let sealed = self.seal_value(&key, data)?;
        let txn = self.begin_write()?;
        if !insert_new(&txn, &key, &sealed)? {
            txn.abort()?;
            return Err(StoreError::PooledKeyExists { pool_id: pool_id.to_owned() });
        }
        txn.commit()?;
        Ok(())
    }

    /// Reads a pooled key without taking it.
    pub fn pooled_key(&self, pool_id: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        self.get(&RecordKey::pooled_key(pool_id)?)
    }

    /// The ids of the pooled keys that start with `id_prefix`, in ascending order.
    pub fn pooled_key_ids(&self, id_prefix: &str) -> Result<Vec<String>> {
        let keys = self.keys_with_prefix(&format!("{POOLED_PREFIX}{id_prefix}"))?;
        Ok(keys.into_iter().map(|k| k[POOLED_PREFIX.len()..].to_owned()).collect())
    }

    /// Deletes a pooled key (durably); returns whether it was there.
    pub fn delete_pooled_key(&self, pool_id: &str) -> Result<bool> {
        self.delete(&RecordKey::pooled_key(pool_id)?)
    }

    /// Hands a pooled key to a wallet: removes the pooled record and creates `shares` (the
    /// wallet's share records, create-only) in one durable transaction. Nothing changes when
    /// the pooled key is absent ([`StoreError::PooledKeyMissing`]) or a share record exists
    /// ([`StoreError::RecordExists`]).
    pub fn assign_pooled_key(&self, pool_id: &str, shares: &[(ShareKind, &str, u32, &[u8])]) -> Result<()> {
        let pooled = RecordKey::pooled_key(pool_id)?;
        let sealed = self.seal_shares(shares)?;
        let txn = self.begin_write()?;
        let removed = {
            let mut records = txn.open_table(RECORDS)?;
            records.remove(pooled.as_str())?.is_some()
        };
        if !removed {
            txn.abort()?;
            return Err(StoreError::PooledKeyMissing { pool_id: pool_id.to_owned() });
        }
        for (key, bytes) in &sealed {
            if !insert_new(&txn, key, bytes)? {
                txn.abort()?;
                return Err(StoreError::RecordExists { key: key.as_str().to_owned() });
            }
        }
        for (key, _) in &sealed {
            append_change(&txn, key)?;
        }
        txn.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{Store, StoreError, StoreOptions};

    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::create(dir.path().join("db"), b"a test password", &StoreOptions::insecure_for_tests())
            .unwrap();
        (dir, s)
    }

    #[test]
    fn a_pooled_key_goes_to_one_wallet_once() {
        let (_d, s) = store();
        s.put_pooled_key("kp-n0-a", b"pooled").unwrap();
        assert!(matches!(s.put_pooled_key("kp-n0-a", b"other"), Err(StoreError::PooledKeyExists { .. })));
        assert_eq!(s.pooled_key("kp-n0-a").unwrap().unwrap().as_slice(), b"pooled");
        assert_eq!(s.pooled_key_ids("kp-n0-").unwrap(), vec!["kp-n0-a".to_owned()]);
        let shares: [(ShareKind, &str, u32, &[u8]); 2] =
            [(ShareKind::Ecdsa, "w1", 1, b"e"), (ShareKind::Eddsa, "w1", 1, b"d")];
        s.assign_pooled_key("kp-n0-a", &shares).unwrap();
        assert!(s.pooled_key("kp-n0-a").unwrap().is_none());
        assert_eq!(s.get_share(ShareKind::Ecdsa, "w1", 1).unwrap().unwrap().as_slice(), b"e");
        let again: [(ShareKind, &str, u32, &[u8]); 1] = [(ShareKind::Ecdsa, "w2", 1, b"e")];
        assert!(matches!(s.assign_pooled_key("kp-n0-a", &again), Err(StoreError::PooledKeyMissing { .. })));
        assert!(s.get_share(ShareKind::Ecdsa, "w2", 1).unwrap().is_none());
    }

    #[test]
    fn an_existing_wallet_keeps_its_shares_and_the_pooled_key_stays() {
        let (_d, s) = store();
        s.put_share(ShareKind::Eddsa, "w1", 1, b"live").unwrap();
        s.put_pooled_key("kp-n0-a", b"pooled").unwrap();
        let shares: [(ShareKind, &str, u32, &[u8]); 2] =
            [(ShareKind::Ecdsa, "w1", 1, b"e"), (ShareKind::Eddsa, "w1", 1, b"d")];
        assert!(matches!(s.assign_pooled_key("kp-n0-a", &shares), Err(StoreError::RecordExists { .. })));
        assert_eq!(s.get_share(ShareKind::Eddsa, "w1", 1).unwrap().unwrap().as_slice(), b"live");
        assert!(s.get_share(ShareKind::Ecdsa, "w1", 1).unwrap().is_none());
        assert!(s.pooled_key("kp-n0-a").unwrap().is_some());
    }

    #[test]
    fn pooled_keys_are_not_in_the_change_log() {
        let (_d, s) = store();
        let before = s.change_head().unwrap();
        s.put_pooled_key("kp-n0-a", b"pooled").unwrap();
        assert!(s.delete_pooled_key("kp-n0-a").unwrap());
        assert_eq!(s.change_head().unwrap(), before);
    }
}
