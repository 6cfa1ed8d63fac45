//! Reading a backup: the header, then each sealed chunk authenticated and its frames parsed
//! (recovery replays files through [`BackupFile`]; the fuzz entry points share the same code).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::format::{
    ALGO, BACKUP_MAGIC, BackupMetadata, FORMAT, Frame, MAX_CHUNK_CT, MAX_META_LEN, chunk_aad, chunk_nonce,
    parse_frames,
};
use crate::crypto::{self, TAG_LEN};
use crate::error::{Result, StoreError};

/// A backup file whose header was parsed (not yet authenticated: that happens per chunk).
#[derive(Debug, Clone)]
pub struct BackupFile {
    /// Path of the file.
    pub path: PathBuf,
    /// Its metadata.
    pub meta: BackupMetadata,
    header: Vec<u8>,
}

impl BackupFile {
    /// Reads and parses the header of `path`.
    pub fn read_header(path: &Path) -> Result<Self> {
        let mut f = File::open(path).map_err(|e| StoreError::io(path, e))?;
        let (meta, header) = read_header_from(&mut f, path)?;
        Ok(BackupFile { path: path.to_owned(), meta, header })
    }

    /// Decrypts the file chunk by chunk, calling `apply` with each chunk's frames. Fails on any
    /// authentication error, reordering, or truncation (no chunk flagged last at the end).
    pub(crate) fn replay(&self, key: &[u8; 32], apply: impl FnMut(Vec<Frame>) -> Result<()>) -> Result<u64> {
        let file = File::open(&self.path).map_err(|e| StoreError::io(&self.path, e))?;
        let mut r = BufReader::new(file);
        let mut skip = vec![0u8; self.header.len()];
        r.read_exact(&mut skip).map_err(|e| StoreError::io(&self.path, e))?;
        replay_chunks(&mut r, &self.path, &self.header, &self.meta, key, apply)
    }
}

/// Parses the header (magic, metadata length, metadata JSON) at the start of `r`; returns the
/// metadata and the header bytes every chunk authenticates. `path` only names the file in errors.
pub(super) fn read_header_from(r: &mut impl Read, path: &Path) -> Result<(BackupMetadata, Vec<u8>)> {
    let corrupt =
        |reason: &str| StoreError::BackupCorrupt { file: path.to_owned(), reason: reason.to_owned() };
    let mut magic = [0u8; 16];
    read_exact_or(r, &mut magic, || corrupt("truncated header"))?;
    if &magic != BACKUP_MAGIC {
        return Err(corrupt("bad magic (not an mpcium-rs backup)"));
    }
    let mut len = [0u8; 4];
    read_exact_or(r, &mut len, || corrupt("truncated header"))?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_META_LEN {
        return Err(corrupt("metadata length out of range"));
    }
    let mut json = vec![0u8; len];
    read_exact_or(r, &mut json, || corrupt("truncated metadata"))?;
    let meta: BackupMetadata =
        serde_json::from_slice(&json).map_err(|e| corrupt(&format!("metadata is not valid JSON: {e}")))?;
    if meta.format != FORMAT || meta.algo != ALGO {
        return Err(corrupt("unsupported format or algorithm"));
    }
    let mut header = Vec::with_capacity(20 + len);
    header.extend_from_slice(BACKUP_MAGIC);
    header.extend_from_slice(&(len as u32).to_be_bytes());
    header.extend_from_slice(&json);
    Ok((meta, header))
}

/// Reads the sealed chunks that follow the header in `r` (see [`BackupFile::replay`]).
pub(super) fn replay_chunks(
    r: &mut impl Read,
    path: &Path,
    header: &[u8],
    meta: &BackupMetadata,
    key: &[u8; 32],
    mut apply: impl FnMut(Vec<Frame>) -> Result<()>,
) -> Result<u64> {
    let corrupt = |reason: String| StoreError::BackupCorrupt { file: path.to_owned(), reason };
    let prefix = meta.nonce_prefix().ok_or_else(|| corrupt("bad nonce in metadata".to_owned()))?;
    let mut index = 0u64;
    let mut entries = 0u64;
    loop {
        let mut len = [0u8; 4];
        match r.read(&mut len[..1]) {
            Ok(0) => return Err(corrupt("truncated: the final chunk is missing".to_owned())),
            Ok(_) => {}
            Err(e) => return Err(StoreError::io(path, e)),
        }
        read_exact_or(r, &mut len[1..], || corrupt("truncated chunk length".to_owned()))?;
        let len = u32::from_be_bytes(len) as usize;
        if !(TAG_LEN..=MAX_CHUNK_CT).contains(&len) {
            return Err(corrupt(format!("chunk {index} has an invalid length")));
        }
        let mut ct = vec![0u8; len];
        read_exact_or(r, &mut ct, || corrupt(format!("chunk {index} is truncated")))?;
        let nonce = chunk_nonce(&prefix, index);
        let (plain, last) = match crypto::open_with_nonce(key, &nonce, &chunk_aad(header, index, false), &ct)
        {
            Some(p) => (p, false),
            None => match crypto::open_with_nonce(key, &nonce, &chunk_aad(header, index, true), &ct) {
                Some(p) => (p, true),
                None => {
                    return Err(corrupt(format!(
                        "chunk {index} failed authentication (tampered, or header altered)"
                    )));
                }
            },
        };
        let frames = parse_frames(&plain).map_err(|reason| corrupt(format!("chunk {index}: {reason}")))?;
        entries += frames.len() as u64;
        apply(frames)?;
        index += 1;
        if last {
            let mut extra = [0u8; 1];
            return match r.read(&mut extra) {
                Ok(0) => Ok(entries),
                Ok(_) => Err(corrupt("data after the final chunk".to_owned())),
                Err(e) => Err(StoreError::io(path, e)),
            };
        }
    }
}

fn read_exact_or(r: &mut impl Read, buf: &mut [u8], err: impl FnOnce() -> StoreError) -> Result<()> {
    r.read_exact(buf).map_err(|_| err())
}
