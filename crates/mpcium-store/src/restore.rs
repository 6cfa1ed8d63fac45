//! Recovery: replaying a backup chain into a fresh store, all or nothing.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use redb::Durability;

use crate::backup::{BackupFile, Frame, read_latest};
use crate::error::{Result, StoreError};
use crate::kdf::{SecretKey, StoreOptions};
use crate::store::{RECORDS, Store, append_change, check_value, key_id};

/// What a successful recovery did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Backup files replayed, in order (starting at the newest full backup).
    pub files: Vec<PathBuf>,
    /// Keys present in the recovered store.
    pub keys: usize,
    /// Node the backups belong to.
    pub node_name: String,
}

/// Lists the backup files in `dir` and orders them into the chain to replay: from the newest
/// full backup on, each file's `since` must equal the previous file's `next_since`.
pub fn plan_chain(dir: &Path) -> Result<Vec<BackupFile>> {
    let entries = fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("backup-") && name.ends_with(".enc") {
            files.push(BackupFile::read_header(&entry.path())?);
        }
    }
    if files.is_empty() {
        return Err(StoreError::NoBackups { dir: dir.to_owned() });
    }
    // Order by the version in the (authenticated) metadata, not by file name: names sort
    // lexicographically wrong once versions reach two digits.
    files.sort_by_key(|f| f.meta.version);
    for pair in files.windows(2) {
        if pair[0].meta.node_name != pair[1].meta.node_name {
            return Err(StoreError::MixedNodes {
                first: pair[0].meta.node_name.clone(),
                second: pair[1].meta.node_name.clone(),
            });
        }
        if pair[0].meta.version == pair[1].meta.version {
            return Err(StoreError::BackupCorrupt {
                file: pair[1].path.clone(),
                reason: format!("duplicate backup version {}", pair[1].meta.version),
            });
        }
    }
    let newest = files.last().map(|f| f.meta.version).unwrap_or(0);
    if let Some(latest) = read_latest(dir)?
        && latest.version > newest
    {
        return Err(StoreError::BackupChainTruncated { expected: latest.version, found: newest });
    }
    let Some(base) = files.iter().rposition(|f| f.meta.full && f.meta.since == 0) else {
        return Err(StoreError::BackupChainGap {
            expected: 0,
            found: files[0].meta.since,
            file: files[0].path.clone(),
        });
    };
    let chain: Vec<BackupFile> = files.split_off(base);
    for pair in chain.windows(2) {
        if pair[1].meta.since != pair[0].meta.next_since || pair[1].meta.full {
            return Err(StoreError::BackupChainGap {
                expected: pair[0].meta.next_since,
                found: pair[1].meta.since,
                file: pair[1].path.clone(),
            });
        }
    }
    Ok(chain)
}

/// Replays the backups in `backup_dir` into a new store at `recovery_path`, encrypted with
/// `password` (which must also be the password the backups were made under).
///
/// The store is built at a temporary path beside `recovery_path` and renamed into place only
/// when every file decrypted and applied; on any error nothing is left behind. An existing
/// `recovery_path` is refused unless `force`, in which case it is replaced atomically.
pub fn recover(
    backup_dir: &Path,
    recovery_path: &Path,
    password: &[u8],
    options: &StoreOptions,
    force: bool,
) -> Result<RecoveryReport> {
    if recovery_path.is_dir() {
        return Err(StoreError::AlreadyExists { path: recovery_path.to_owned() });
    }
    if recovery_path.exists() && !force {
        return Err(StoreError::AlreadyExists { path: recovery_path.to_owned() });
    }
    let chain = plan_chain(backup_dir)?;

    // Derive each distinct backup key once, and check the password before writing anything.
    let mut keys: HashMap<String, SecretKey> = HashMap::new();
    for file in &chain {
        let cache_key = format!("{}/{}", file.meta.kdf.salt, file.meta.kdf.params);
        if !keys.contains_key(&cache_key) {
            let key = file.meta.kdf.derive(password, options.policy)?;
            keys.insert(cache_key.clone(), key);
        }
        let key = &keys[&cache_key];
        if key_id(key) != file.meta.encryption_key_id {
            return Err(StoreError::WrongPassword);
        }
    }

    let tmp = mpcium_fs::sibling(recovery_path, &format!(".recovering-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let result = (|| -> Result<usize> {
        let store = Store::create(&tmp, password, options)?;
        for file in &chain {
            let cache_key = format!("{}/{}", file.meta.kdf.salt, file.meta.kdf.params);
            apply_file(&store, file, &keys[&cache_key])?;
        }
        // A final durable commit makes every earlier non-durable commit persistent.
        let txn = store.begin_write()?;
        txn.commit()?;
        Ok(store.keys_with_prefix("")?.len())
    })();
    let keys_count = match result {
        Ok(n) => n,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    if let Err(e) = mpcium_fs::rename_durably(&tmp, recovery_path) {
        let _ = fs::remove_file(&tmp);
        return Err(e.into());
    }
    let node_name = chain.first().map(|f| f.meta.node_name.clone()).unwrap_or_default();
    tracing::info!(files = chain.len(), keys = keys_count, node = %node_name, path = %recovery_path.display(), "store recovered");
    Ok(RecoveryReport { files: chain.into_iter().map(|f| f.path).collect(), keys: keys_count, node_name })
}

fn apply_file(store: &Store, file: &BackupFile, key: &SecretKey) -> Result<u64> {
    file.replay(key, |frames| {
        let mut txn = store.db().begin_write()?;
        // Intermediate commits need not be durable: the recovery is only renamed into place
        // after a final durable commit, and a crash before that leaves only a temporary file.
        txn.set_durability(Durability::None)?;
        {
            let mut records = txn.open_table(RECORDS)?;
            for frame in &frames {
                match frame {
                    Frame::Put(k, v) => {
                        check_value(k, v)?;
                        let sealed = store.seal_value(k, v)?;
                        records.insert(k.as_str(), sealed.as_slice())?;
                    }
                    Frame::Del(k) => {
                        records.remove(k.as_str())?;
                    }
                }
            }
        }
        for frame in &frames {
            let (Frame::Put(k, _) | Frame::Del(k)) = frame;
            append_change(&txn, k)?;
        }
        txn.commit()?;
        Ok(())
    })
}
