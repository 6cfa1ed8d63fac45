//! Writing a backup: one consistent snapshot of what changed since the last backup, sealed chunk
//! by chunk into a temporary file that is renamed into place only when complete.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use mpcium_fs::IfExists;
use redb::{ReadableDatabase, ReadableTable};
use zeroize::Zeroizing;

use super::format::{
    ALGO, BackupMetadata, CHUNK_TARGET, FORMAT, LATEST_FILE, LatestVersion, NONCE_PREFIX_LEN, OP_DEL, OP_PUT,
    chunk_aad, chunk_nonce, encode_header, read_latest, validate_node_name,
};
use crate::crypto;
use crate::error::{Result, StoreError};
use crate::fsutil::UtcTime;
use crate::keys::{MAX_VALUE_LEN, RecordKey};
use crate::store::{CHANGES, RECORDS, Store, open_record};

/// What [`run_backup_once`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupOutcome {
    /// The new backup file.
    pub file: PathBuf,
    /// Its version number.
    pub version: u64,
    /// Change-log range `(since, next_since]` it covers.
    pub since: u64,
    /// End of the covered range.
    pub next_since: u64,
    /// Whether it is a full backup.
    pub full: bool,
    /// Number of PUT and DEL frames.
    pub entries: u64,
}

/// Writes one backup of what changed since the last one into `backup_dir` (created 0700).
///
/// The first backup, and the first after the password or store changed (a new backup key), is
/// a full one; later ones hold only the keys changed since. Returns `None` (and writes nothing)
/// when nothing changed.
pub fn run_backup_once(store: &Store, backup_dir: &Path, node_name: &str) -> Result<Option<BackupOutcome>> {
    validate_node_name(node_name)?;
    let _serialised = store.lock_backups();
    mpcium_fs::ensure_private_dir(backup_dir)?;
    let latest = read_latest(backup_dir)?;
    let key = store.backup_key();
    let key_id = key.id();

    // One read transaction = one consistent snapshot for the whole backup.
    let txn = store.db().begin_read()?;
    let changes = txn.open_table(CHANGES)?;
    let records = txn.open_table(RECORDS)?;
    let head = changes.last()?.map(|(k, _)| k.value()).unwrap_or(0);
    let since_latest = latest.as_ref().map(|l| l.since).unwrap_or(0);
    let full = match &latest {
        None => true,
        Some(l) => l.key_id.as_deref() != Some(key_id.as_str()) || l.since > head,
    };
    if head == 0 || (!full && since_latest == head) {
        tracing::debug!(node = node_name, head, "backup skipped: nothing changed");
        return Ok(None);
    }
    let since = if full { 0 } else { since_latest };
    let version = latest.as_ref().map(|l| l.version).unwrap_or(0) + 1;
    let now = UtcTime::now();
    let nonce_prefix: [u8; NONCE_PREFIX_LEN] = crypto::random_array()?;
    let meta = BackupMetadata {
        format: FORMAT,
        algo: ALGO.to_owned(),
        kdf: key.kdf.clone(),
        nonce: hex::encode(nonce_prefix),
        created_at: now.rfc3339(),
        node_name: node_name.to_owned(),
        version,
        since,
        next_since: head,
        full,
        encryption_key_id: key_id.clone(),
    };
    let header = encode_header(&meta)?;
    let file_name = format!("backup-{node_name}-{}-{version}.enc", now.file_stamp());
    let path = backup_dir.join(&file_name);
    let tmp = mpcium_fs::sibling(&path, ".tmp");
    let _ = fs::remove_file(&tmp);
    let file = mpcium_fs::create_private_file(&tmp)?;
    let mut writer = ChunkWriter::new(BufWriter::new(file), &key.key, &nonce_prefix, &header, &tmp);
    let written = (|| -> Result<u64> {
        writer.out.write_all(&header).map_err(|e| StoreError::io(&tmp, e))?;
        let mut entries = 0u64;
        let dek = store.dek();
        if full {
            for entry in records.iter()? {
                let (k, v) = entry?;
                let name = k.value();
                let rk = RecordKey::new(name)?;
                if rk.is_ephemeral() {
                    continue;
                }
                let plain = open_record(dek, name, v.value())?;
                writer.put(name, &plain)?;
                entries += 1;
            }
        } else {
            let mut changed = BTreeSet::new();
            for entry in changes.range(since + 1..=head)? {
                let (_, k) = entry?;
                changed.insert(k.value().to_owned());
            }
            for name in &changed {
                match records.get(name.as_str())? {
                    Some(v) => {
                        let plain = open_record(dek, name, v.value())?;
                        writer.put(name, &plain)?;
                    }
                    None => writer.delete(name)?,
                }
                entries += 1;
            }
        }
        let out = writer.finish()?;
        let file = out.into_inner().map_err(|e| StoreError::io(&tmp, e.into_error()))?;
        file.sync_all().map_err(|e| StoreError::io(&tmp, e))?;
        Ok(entries)
    })();
    let entries = match written {
        Ok(n) => n,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    mpcium_fs::rename_durably(&tmp, &path)?;
    let latest = LatestVersion { version, since: head, updated_at: now.rfc3339(), key_id: Some(key_id) };
    let json = serde_json::to_vec(&latest).map_err(|_| StoreError::Crypto("latest.version encoding"))?;
    mpcium_fs::write_private_file(&backup_dir.join(LATEST_FILE), &json, IfExists::Replace)?;
    tracing::info!(file = %file_name, version, since, next_since = head, full, entries, "backup written");
    Ok(Some(BackupOutcome { file: path, version, since, next_since: head, full, entries }))
}

/// Buffers frames and writes sealed chunks.
struct ChunkWriter<'a, W: Write> {
    out: W,
    key: &'a [u8; 32],
    prefix: &'a [u8; NONCE_PREFIX_LEN],
    header: &'a [u8],
    path: &'a Path,
    buf: Zeroizing<Vec<u8>>,
    index: u64,
}

impl<'a, W: Write> ChunkWriter<'a, W> {
    fn new(
        out: W,
        key: &'a [u8; 32],
        prefix: &'a [u8; NONCE_PREFIX_LEN],
        header: &'a [u8],
        path: &'a Path,
    ) -> Self {
        ChunkWriter {
            out,
            key,
            prefix,
            header,
            path,
            buf: Zeroizing::new(Vec::with_capacity(CHUNK_TARGET + 1024)),
            index: 0,
        }
    }

    fn frame_start(&mut self, op: u8, key: &str) -> Result<()> {
        let len = u16::try_from(key.len())
            .map_err(|_| StoreError::InvalidKey { key: key.to_owned(), reason: "longer than 512 bytes" })?;
        self.buf.push(op);
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(key.as_bytes());
        Ok(())
    }

    fn put(&mut self, key: &str, value: &[u8]) -> Result<()> {
        let len = u32::try_from(value.len()).map_err(|_| StoreError::ValueTooLarge {
            key: key.to_owned(),
            len: value.len(),
            max: MAX_VALUE_LEN,
        })?;
        if !self.buf.is_empty() && self.buf.len() + value.len() > CHUNK_TARGET {
            self.flush(false)?;
        }
        self.frame_start(OP_PUT, key)?;
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(value);
        Ok(())
    }

    fn delete(&mut self, key: &str) -> Result<()> {
        if self.buf.len() > CHUNK_TARGET {
            self.flush(false)?;
        }
        self.frame_start(OP_DEL, key)
    }

    fn flush(&mut self, last: bool) -> Result<()> {
        let nonce = chunk_nonce(self.prefix, self.index);
        let ct =
            crypto::seal_with_nonce(self.key, &nonce, &chunk_aad(self.header, self.index, last), &self.buf)?;
        let len = u32::try_from(ct.len()).map_err(|_| StoreError::Crypto("chunk too large"))?;
        self.out
            .write_all(&len.to_be_bytes())
            .and_then(|()| self.out.write_all(&ct))
            .map_err(|e| StoreError::io(self.path, e))?;
        self.buf.clear();
        self.index += 1;
        Ok(())
    }

    fn finish(mut self) -> Result<W> {
        self.flush(true)?;
        Ok(self.out)
    }
}
