//! In-memory entry points to the backup reader for the fuzz targets in `fuzz/` (recovery
//! itself reads files through [`BackupFile`](super::BackupFile); both run the same parsing code).
//! Only with the `fuzzing` feature; not a stable API.

use std::path::Path;

use super::format::{BackupMetadata, Frame, chunk_aad, chunk_nonce, encode_header};
use super::reader::{read_header_from, replay_chunks};
use crate::crypto;
use crate::error::{Result, StoreError};

const IN_MEMORY: &str = "<in-memory backup>";

/// Decodes a whole backup file held in `bytes` with the backup key `key`, as recovery reads a
/// file: header, then every chunk and its frames (each PUT value also passes the size check
/// recovery applies). Returns the metadata and the number of frames.
pub fn decode_backup(bytes: &[u8], key: &[u8; 32]) -> Result<(BackupMetadata, u64)> {
    let path = Path::new(IN_MEMORY);
    let mut r = bytes;
    let (meta, header) = read_header_from(&mut r, path)?;
    let frames = replay_chunks(&mut r, path, &header, &meta, key, |frames| {
        for frame in &frames {
            if let Frame::Put(k, v) = frame {
                crate::store::check_value(k, v)?;
            }
        }
        Ok(())
    })?;
    Ok((meta, frames))
}

/// Writes a backup file with header `meta` whose chunks carry `chunks` as plaintext (any
/// bytes, not only well-formed frames), sealed with `key`; the last chunk is flagged last.
/// Lets a fuzzer reach the frame parser behind the authenticated encryption.
pub fn seal_backup(meta: &BackupMetadata, chunks: &[&[u8]], key: &[u8; 32]) -> Result<Vec<u8>> {
    let prefix = meta
        .nonce_prefix()
        .ok_or(StoreError::Crypto("the metadata's nonce prefix is not 16 bytes of hex"))?;
    let header = encode_header(meta)?;
    let mut out = header.clone();
    for (i, chunk) in chunks.iter().enumerate() {
        let index = i as u64;
        let last = i + 1 == chunks.len();
        let ct = crypto::seal_with_nonce(
            key,
            &chunk_nonce(&prefix, index),
            &chunk_aad(&header, index, last),
            chunk,
        )?;
        let len = u32::try_from(ct.len()).map_err(|_| StoreError::Crypto("chunk too large"))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&ct);
    }
    Ok(out)
}
