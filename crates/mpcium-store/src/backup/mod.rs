//! Encrypted incremental backups: the file format ([`format`]), the writer ([`run_backup_once`]),
//! the reader ([`BackupFile`]) and a periodic scheduler ([`BackupScheduler`]).
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

mod format;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod reader;
mod scheduler;
mod writer;

pub(crate) use format::Frame;
pub use format::{
    BACKUP_MAGIC, BackupMetadata, CHUNK_TARGET, LATEST_FILE, LatestVersion, read_latest, validate_node_name,
};
pub use reader::BackupFile;
pub use scheduler::{BackupConfig, BackupScheduler, DEFAULT_BACKUP_DIR, DEFAULT_PERIOD};
pub use writer::{BackupOutcome, run_backup_once};
