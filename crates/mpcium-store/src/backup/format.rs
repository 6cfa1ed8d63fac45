//! The backup file format: constants, the metadata block, `latest.version`, and the byte
//! layout of headers, chunk nonces and associated data, and frames (see the [module
//! docs](super)).

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::crypto::{NONCE_LEN, TAG_LEN};
use crate::error::{Result, StoreError};
use crate::kdf::KdfRecord;
use crate::keys::{MAX_KEY_LEN, MAX_VALUE_LEN, RecordKey};

/// First bytes of every backup file.
pub const BACKUP_MAGIC: &[u8; 16] = b"MPCIUM-RS-BACKUP";
/// Name of the file recording the newest backup, beside the backups.
pub const LATEST_FILE: &str = "latest.version";
/// Plaintext size at which a chunk is sealed and written.
pub const CHUNK_TARGET: usize = 1024 * 1024;

pub(super) const FORMAT: u32 = 1;
pub(super) const ALGO: &str = "XChaCha20-Poly1305";
pub(super) const MAX_META_LEN: usize = 64 * 1024;
pub(super) const NONCE_PREFIX_LEN: usize = 16;
pub(super) const MAX_CHUNK_CT: usize = CHUNK_TARGET + MAX_VALUE_LEN + MAX_KEY_LEN + 16 + TAG_LEN;
pub(super) const OP_PUT: u8 = 1;
pub(super) const OP_DEL: u8 = 2;

/// The JSON metadata block of a backup file (authenticated as associated data).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupMetadata {
    /// Format version of this layout.
    pub format: u32,
    /// AEAD algorithm of the chunks.
    pub algo: String,
    /// Argon2id salt and costs deriving the backup key from the store password.
    pub kdf: KdfRecord,
    /// Hex of the 16-byte nonce prefix; each chunk appends its u64 index.
    pub nonce: String,
    /// RFC 3339 UTC creation time.
    pub created_at: String,
    /// Node whose store this is.
    pub node_name: String,
    /// Backup number (1, 2, …), also in the file name.
    pub version: u64,
    /// Change-log position this backup starts after (0 for a full backup).
    pub since: u64,
    /// Change-log position this backup covers up to (inclusive).
    pub next_since: u64,
    /// Whether this backup holds the complete state (the base of a chain).
    pub full: bool,
    /// First 8 bytes (hex) of SHA-256("mpcium-backup-key-id" || backup key).
    pub encryption_key_id: String,
}

impl BackupMetadata {
    /// The 16-byte nonce prefix in [`BackupMetadata::nonce`]; `None` if it is not 16 bytes of hex.
    pub(super) fn nonce_prefix(&self) -> Option<[u8; NONCE_PREFIX_LEN]> {
        hex::decode(&self.nonce).ok().and_then(|v| v.try_into().ok())
    }
}

/// `latest.version`: `{"version","since","updated_at"}` as in the original, plus the key id
/// of the backup key in use (a different key forces a new full backup).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatestVersion {
    /// Number of the newest backup.
    pub version: u64,
    /// `next_since` of the newest backup.
    pub since: u64,
    /// RFC 3339 time of the update.
    pub updated_at: String,
    /// Key id of the newest backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// Checks a node name is safe inside a file name.
pub fn validate_node_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && name != "."
        && name != "..";
    if ok { Ok(()) } else { Err(StoreError::InvalidNodeName(name.to_owned())) }
}

/// Reads `latest.version` from `dir`; `None` if absent.
pub fn read_latest(dir: &Path) -> Result<Option<LatestVersion>> {
    let path = dir.join(LATEST_FILE);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::BackupCorrupt { file: path, reason: format!("invalid JSON: {e}") }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

/// The header bytes: magic, metadata length, metadata JSON.
pub(super) fn encode_header(meta: &BackupMetadata) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(meta).map_err(|_| StoreError::Crypto("metadata encoding"))?;
    let len = u32::try_from(json.len()).map_err(|_| StoreError::Crypto("metadata too large"))?;
    let mut out = Vec::with_capacity(BACKUP_MAGIC.len() + 4 + json.len());
    out.extend_from_slice(BACKUP_MAGIC);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&json);
    Ok(out)
}

pub(super) fn chunk_nonce(prefix: &[u8; NONCE_PREFIX_LEN], index: u64) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..NONCE_PREFIX_LEN].copy_from_slice(prefix);
    nonce[NONCE_PREFIX_LEN..].copy_from_slice(&index.to_be_bytes());
    nonce
}

pub(super) fn chunk_aad(header: &[u8], index: u64, last: bool) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + 9);
    aad.extend_from_slice(header);
    aad.extend_from_slice(&index.to_be_bytes());
    aad.push(u8::from(last));
    aad
}

/// One PUT or DEL read back from a backup.
#[derive(Debug)]
pub(crate) enum Frame {
    Put(RecordKey, Zeroizing<Vec<u8>>),
    Del(RecordKey),
}

/// Parses the frames of one opened chunk.
pub(super) fn parse_frames(mut b: &[u8]) -> std::result::Result<Vec<Frame>, String> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> std::result::Result<&'a [u8], String> {
        if b.len() < n {
            return Err("frame truncated".to_owned());
        }
        let (head, tail) = b.split_at(n);
        *b = tail;
        Ok(head)
    }
    let mut frames = Vec::new();
    while !b.is_empty() {
        let op = take(&mut b, 1)?[0];
        let klen = u16::from_be_bytes([take(&mut b, 1)?[0], take(&mut b, 1)?[0]]) as usize;
        let name = std::str::from_utf8(take(&mut b, klen)?).map_err(|_| "key is not UTF-8".to_owned())?;
        let key = RecordKey::new(name).map_err(|e| e.to_string())?;
        match op {
            OP_PUT => {
                let len_bytes: [u8; 4] =
                    take(&mut b, 4)?.try_into().map_err(|_| "frame truncated".to_owned())?;
                let vlen = u32::from_be_bytes(len_bytes) as usize;
                if vlen > MAX_VALUE_LEN {
                    return Err("value longer than the maximum".to_owned());
                }
                frames.push(Frame::Put(key, Zeroizing::new(take(&mut b, vlen)?.to_vec())));
            }
            OP_DEL => frames.push(Frame::Del(key)),
            other => return Err(format!("unknown frame type {other}")),
        }
    }
    Ok(frames)
}
