//! Encrypted incremental backups: file format, writer, reader, and a periodic scheduler.
//!
//! File layout:
//! ```text
//! MAGIC (16 bytes "MPCIUM-RS-BACKUP") || u32 BE meta_len || metadata JSON (meta_len bytes)
//! || chunk* where chunk = u32 BE ct_len || XChaCha20-Poly1305(backup key,
//!        nonce = nonce_prefix(16, from metadata) || u64 BE chunk index,
//!        aad   = MAGIC || u32 meta_len || metadata || u64 BE index || u8 last,
//!        plaintext = frame*)
//! frame = 0x01 PUT || u16 BE key_len || key || u32 BE value_len || value
//!       | 0x02 DEL || u16 BE key_len || key
//! ```
//! The header is authenticated by every chunk; chunk indices and the `last` flag make
//! reordering, dropping or truncating chunks detectable. Chunks hold whole frames, at most
//! [`CHUNK_TARGET`] bytes unless one value is bigger, so memory stays bounded.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::crypto::{self, NONCE_LEN, TAG_LEN};
use crate::error::{Result, StoreError};
use crate::fsutil::{self, UtcTime};
use crate::kdf::KdfRecord;
use crate::keys::{MAX_KEY_LEN, MAX_VALUE_LEN, RecordKey};
use crate::store::{CHANGES, RECORDS, Store, open_record};

/// First bytes of every backup file.
pub const BACKUP_MAGIC: &[u8; 16] = b"MPCIUM-RS-BACKUP";
/// Name of the file recording the newest backup, beside the backups.
pub const LATEST_FILE: &str = "latest.version";
/// Default backup period (the original's `backup_period_seconds` default).
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(300);
/// Default backup directory (the original's `backup_dir` default).
pub const DEFAULT_BACKUP_DIR: &str = "./backups";
/// Plaintext size at which a chunk is sealed and written.
pub const CHUNK_TARGET: usize = 1024 * 1024;

const FORMAT: u32 = 1;
const ALGO: &str = "XChaCha20-Poly1305";
const MAX_META_LEN: usize = 64 * 1024;
const NONCE_PREFIX_LEN: usize = 16;
const MAX_CHUNK_CT: usize = CHUNK_TARGET + MAX_VALUE_LEN + MAX_KEY_LEN + 16 + TAG_LEN;
const OP_PUT: u8 = 1;
const OP_DEL: u8 = 2;

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

/// Writes one backup of what changed since the last one into `backup_dir` (created 0700).
///
/// The first backup, and the first after the password or store changed (a new backup key), is
/// a full one; later ones hold only the keys changed since. Returns `None` (and writes nothing)
/// when nothing changed.
pub fn run_backup_once(store: &Store, backup_dir: &Path, node_name: &str) -> Result<Option<BackupOutcome>> {
    validate_node_name(node_name)?;
    let _serialised = store.lock_backups();
    fsutil::ensure_private_dir(backup_dir)?;
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
    let tmp = fsutil::sibling(&path, ".tmp");
    let _ = fs::remove_file(&tmp);
    let file = fsutil::create_private_file(&tmp)?;
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
    fsutil::rename_durably(&tmp, &path)?;
    let latest = LatestVersion { version, since: head, updated_at: now.rfc3339(), key_id: Some(key_id) };
    let json = serde_json::to_vec(&latest).map_err(|_| StoreError::Crypto("latest.version encoding"))?;
    fsutil::write_atomic(&backup_dir.join(LATEST_FILE), &json)?;
    tracing::info!(file = %file_name, version, since, next_since = head, full, entries, "backup written");
    Ok(Some(BackupOutcome { file: path, version, since, next_since: head, full, entries }))
}

fn encode_header(meta: &BackupMetadata) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(meta).map_err(|_| StoreError::Crypto("metadata encoding"))?;
    let len = u32::try_from(json.len()).map_err(|_| StoreError::Crypto("metadata too large"))?;
    let mut out = Vec::with_capacity(BACKUP_MAGIC.len() + 4 + json.len());
    out.extend_from_slice(BACKUP_MAGIC);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&json);
    Ok(out)
}

fn chunk_nonce(prefix: &[u8; NONCE_PREFIX_LEN], index: u64) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..NONCE_PREFIX_LEN].copy_from_slice(prefix);
    nonce[NONCE_PREFIX_LEN..].copy_from_slice(&index.to_be_bytes());
    nonce
}

fn chunk_aad(header: &[u8], index: u64, last: bool) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + 9);
    aad.extend_from_slice(header);
    aad.extend_from_slice(&index.to_be_bytes());
    aad.push(u8::from(last));
    aad
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

/// One PUT or DEL read back from a backup.
#[derive(Debug)]
pub(crate) enum Frame {
    Put(RecordKey, Zeroizing<Vec<u8>>),
    Del(RecordKey),
}

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
fn read_header_from(r: &mut impl Read, path: &Path) -> Result<(BackupMetadata, Vec<u8>)> {
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
fn replay_chunks(
    r: &mut impl Read,
    path: &Path,
    header: &[u8],
    meta: &BackupMetadata,
    key: &[u8; 32],
    mut apply: impl FnMut(Vec<Frame>) -> Result<()>,
) -> Result<u64> {
    let corrupt = |reason: String| StoreError::BackupCorrupt { file: path.to_owned(), reason };
    let prefix: [u8; NONCE_PREFIX_LEN] = hex::decode(&meta.nonce)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| corrupt("bad nonce in metadata".to_owned()))?;
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

/// In-memory entry points to the backup reader for the fuzz targets in `fuzz/` (recovery
/// itself reads files through [`BackupFile`]; both run the same parsing code). Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use std::path::Path;

    use super::{BackupMetadata, NONCE_PREFIX_LEN, chunk_aad, chunk_nonce, encode_header, read_header_from};
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
        let frames = super::replay_chunks(&mut r, path, &header, &meta, key, |frames| {
            for frame in &frames {
                if let super::Frame::Put(k, v) = frame {
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
        let prefix: [u8; NONCE_PREFIX_LEN] = hex::decode(&meta.nonce)
            .ok()
            .and_then(|v| v.try_into().ok())
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
}

fn read_exact_or(r: &mut impl Read, buf: &mut [u8], err: impl FnOnce() -> StoreError) -> Result<()> {
    r.read_exact(buf).map_err(|_| err())
}

fn parse_frames(mut b: &[u8]) -> std::result::Result<Vec<Frame>, String> {
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

/// Settings of the periodic backup (`backup_dir`, `backup_period_seconds`, node name).
#[derive(Clone, Debug)]
pub struct BackupConfig {
    /// Directory receiving the backup files.
    pub dir: PathBuf,
    /// Node name used in file names.
    pub node_name: String,
    /// Time between backups.
    pub period: Duration,
}

impl BackupConfig {
    /// Defaults: `./backups`, every 300 s.
    pub fn new(node_name: impl Into<String>) -> Self {
        BackupConfig {
            dir: PathBuf::from(DEFAULT_BACKUP_DIR),
            node_name: node_name.into(),
            period: DEFAULT_PERIOD,
        }
    }
}

/// Runs [`run_backup_once`] every `period` on a background thread until stopped or dropped.
/// Failures are logged and retried at the next period.
pub struct BackupScheduler {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<JoinHandle<()>>,
}

impl BackupScheduler {
    /// Starts the thread. The first backup runs after one period.
    pub fn start(store: Arc<Store>, config: BackupConfig) -> Result<Self> {
        validate_node_name(&config.node_name)?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = Arc::clone(&stop);
        let dir = config.dir.clone();
        let handle = std::thread::Builder::new()
            .name("mpcium-backup".to_owned())
            .spawn(move || {
                let (lock, cvar) = &*signal;
                let mut stopped = lock.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    if *stopped {
                        return;
                    }
                    let (guard, _) =
                        cvar.wait_timeout(stopped, config.period).unwrap_or_else(|p| p.into_inner());
                    stopped = guard;
                    if *stopped {
                        return;
                    }
                    if let Err(e) = run_backup_once(&store, &config.dir, &config.node_name) {
                        tracing::error!(error = %e, "periodic backup failed");
                    }
                }
            })
            .map_err(|e| StoreError::io(dir, e))?;
        Ok(BackupScheduler { stop, handle: Some(handle) })
    }

    /// Stops the thread and waits for a running backup to finish.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let (lock, cvar) = &*self.stop;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cvar.notify_all();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for BackupScheduler {
    fn drop(&mut self) {
        self.shutdown();
    }
}
