//! File-system helpers: private files and directories, atomic replacement, UTC timestamps.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{Result, StoreError};

/// Mode of every file this crate writes.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every directory this crate creates.
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` (and missing parents) with mode 0700; tightens an existing one to 0700.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .map_err(|e| StoreError::io(dir, e))?;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE)).map_err(|e| StoreError::io(dir, e))
}

/// Creates `dir` (and missing parents) with mode 0700 if it is missing; leaves an existing
/// directory's mode alone (it may be the working directory or a system directory).
pub fn create_private_dir_if_missing(dir: &Path) -> Result<()> {
    if dir.exists() {
        return Ok(());
    }
    fs::DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir).map_err(|e| StoreError::io(dir, e))
}

/// Creates a new empty file with mode 0600, failing if it exists.
pub fn create_private_file(path: &Path) -> Result<File> {
    OpenOptions::new().write(true).create_new(true).mode(FILE_MODE).open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            StoreError::AlreadyExists { path: path.to_owned() }
        } else {
            StoreError::io(path, e)
        }
    })
}

/// Writes `bytes` to `path` atomically: temporary file (0600) in the same directory, fsync,
/// rename, fsync of the directory. A crash leaves either the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = sibling(path, ".tmp");
    // A leftover from a crash is ours to replace.
    let _ = fs::remove_file(&tmp);
    let mut file = create_private_file(&tmp)?;
    file.write_all(bytes).map_err(|e| StoreError::io(&tmp, e))?;
    file.sync_all().map_err(|e| StoreError::io(&tmp, e))?;
    drop(file);
    rename_durably(&tmp, path)
}

/// Renames `from` to `to` (replacing `to`) and fsyncs the parent directory.
pub fn rename_durably(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| StoreError::io(to, e))?;
    sync_parent(to)
}

/// Fsyncs the directory holding `path`, making a rename or creation durable.
pub fn sync_parent(path: &Path) -> Result<()> {
    let parent = parent_dir(path);
    File::open(&parent).and_then(|d| d.sync_all()).map_err(|e| StoreError::io(parent, e))
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// `path` with `suffix` appended to its file name.
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// A UTC calendar time, to the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UtcTime(OffsetDateTime);

impl UtcTime {
    /// The current time.
    pub fn now() -> Self {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        Self::from_unix(secs)
    }

    /// Converts seconds since the Unix epoch (a time past what `time` represents gives the epoch).
    pub fn from_unix(secs: u64) -> Self {
        let t = i64::try_from(secs).ok().and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok());
        UtcTime(t.unwrap_or(OffsetDateTime::UNIX_EPOCH))
    }

    /// RFC 3339, e.g. `2026-11-21T20:18:23Z` (empty past the year 9999).
    pub fn rfc3339(&self) -> String {
        self.0.format(&Rfc3339).unwrap_or_default()
    }

    /// The backup file-name form, e.g. `2026-11-21_20-18-23`.
    pub fn file_stamp(&self) -> String {
        let t = self.0;
        format!(
            "{:04}-{:02}-{:02}_{:02}-{:02}-{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting() {
        assert_eq!(UtcTime::from_unix(0).rfc3339(), "1970-01-01T00:00:00Z");
        // 2024-02-29 12:34:56 UTC (leap day).
        assert_eq!(UtcTime::from_unix(1_709_210_096).file_stamp(), "2024-02-29_12-34-56");
        assert_eq!(UtcTime::from_unix(1_795_292_303).rfc3339(), "2026-11-21T20:18:23Z");
    }

    #[test]
    fn atomic_write_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        ensure_private_dir(&sub).unwrap();
        let f = sub.join("x");
        write_atomic(&f, b"one").unwrap();
        write_atomic(&f, b"two").unwrap();
        assert_eq!(fs::read(&f).unwrap(), b"two");
        assert_eq!(fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(&sub).unwrap().permissions().mode() & 0o777, 0o700);
        assert!(!sibling(&f, ".tmp").exists());
    }
}
