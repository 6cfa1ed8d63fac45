//! Password rotation: re-wrapping the data key, or re-sealing every record under a new one.

use std::fs;
use std::path::{Path, PathBuf};

use redb::{ReadableDatabase, ReadableTable};

use crate::crypto;
use crate::error::{Result, StoreError};
use crate::kdf::StoreOptions;
use crate::keys::RecordKey;
use crate::store::{CHANGES, RECORDS, Store, open_record, seal_record};

/// Changes the password of the store at `path`: one durable transaction re-wraps the data key,
/// so an interruption leaves the old password working.
pub fn change_password(
    path: &Path,
    old_password: &[u8],
    new_password: &[u8],
    options: &StoreOptions,
) -> Result<()> {
    let mut store = Store::open(path, old_password, options)?;
    store.change_password(new_password, options)
}

/// Re-seals every record under a new data key and the new password, then atomically replaces
/// the store. Equivalent to [`prepare_data_key_rotation`] followed by
/// [`PreparedRotation::commit`].
pub fn rotate_data_key(
    path: &Path,
    old_password: &[u8],
    new_password: &[u8],
    options: &StoreOptions,
) -> Result<()> {
    prepare_data_key_rotation(path, old_password, new_password, options)?.commit()
}

/// A fully written and synced re-encrypted copy of a store, not yet renamed over the original.
/// Dropping it without [`Self::commit`] (or crashing) leaves the original store untouched; the
/// stale copy is replaced by the next rotation.
#[derive(Debug)]
#[must_use = "the rotation takes effect only after commit()"]
pub struct PreparedRotation {
    target: PathBuf,
    staged: PathBuf,
}

impl PreparedRotation {
    /// Path of the staged copy.
    pub fn staged_path(&self) -> &Path {
        &self.staged
    }

    /// Renames the staged copy over the original (atomic) and syncs the directory.
    pub fn commit(self) -> Result<()> {
        mpcium_fs::rename_durably(&self.staged, &self.target)?;
        tracing::info!(path = %self.target.display(), "store re-encrypted under a new data key");
        Ok(())
    }
}

/// Path of the staged copy used by a data-key rotation of `path`.
pub fn rotation_staging_path(path: &Path) -> PathBuf {
    mpcium_fs::sibling(path, ".rekey-tmp")
}

/// Writes a copy of the store at `path` with every record but the presignatures re-sealed under
/// a fresh data key wrapped by `new_password`, and the change log carried over. The original is
/// only read.
pub fn prepare_data_key_rotation(
    path: &Path,
    old_password: &[u8],
    new_password: &[u8],
    options: &StoreOptions,
) -> Result<PreparedRotation> {
    let old = Store::open(path, old_password, options)?;
    let staged = rotation_staging_path(path);
    match fs::remove_file(&staged) {
        Ok(()) => tracing::warn!(path = %staged.display(), "removed a stale rotation copy"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StoreError::io(&staged, e)),
    }
    let result = (|| -> Result<()> {
        let new_dek = crypto::random_key()?;
        let new = Store::create_with_dek(&staged, new_password, new_dek, options)?;
        let read = old.db().begin_read()?;
        let records = read.open_table(RECORDS)?;
        let changes = read.open_table(CHANGES)?;
        let txn = new.begin_write()?;
        {
            let mut new_records = txn.open_table(RECORDS)?;
            for entry in records.iter()? {
                let (k, v) = entry?;
                let name = k.value();
                // Presignatures are dropped, not carried over: the old file may live on (a copy,
                // a snapshot), and a presignature present in two stores could be used twice,
                // which gives the key away. The pools refill.
                if RecordKey::new(name)?.is_ephemeral() {
                    continue;
                }
                let plain = open_record(old.dek(), name, v.value())?;
                let sealed = seal_record(new.dek(), name, &plain)?;
                new_records.insert(name, sealed.as_slice())?;
            }
            let mut new_changes = txn.open_table(CHANGES)?;
            for entry in changes.iter()? {
                let (seq, k) = entry?;
                new_changes.insert(seq.value(), k.value())?;
            }
        }
        txn.commit()?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&staged);
        return Err(e);
    }
    Ok(PreparedRotation { target: path.to_owned(), staged })
}
