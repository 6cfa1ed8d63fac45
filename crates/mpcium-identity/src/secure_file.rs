//! Writing files that may hold secrets: created 0600 (directories 0700) through a temporary file
//! in the same directory, fsynced, then moved into place and the directory fsynced, so a reader
//! never sees half a key and a crash leaves either the old file or the new one.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{IdentityError, random_bytes};

/// Creates `dir` (and parents) with mode 0700 if it does not exist. An existing directory is
/// left as it is.
pub fn create_private_dir(dir: &Path) -> Result<(), IdentityError> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| IdentityError::io(dir, e))
}

/// Fails with [`IdentityError::AlreadyExists`] if `path` exists and `overwrite` is false.
/// Commands check all their outputs with this before writing any, so they write all or none.
pub fn ensure_writable(path: &Path, overwrite: bool) -> Result<(), IdentityError> {
    if !overwrite && fs::symlink_metadata(path).is_ok() {
        return Err(IdentityError::AlreadyExists { path: path.to_path_buf() });
    }
    Ok(())
}

/// Writes `contents` to `path` with mode 0600. Without `overwrite` an existing file is never
/// replaced (the final step is a hard link, which fails atomically if the name is taken).
pub fn write_private_file(path: &Path, contents: &[u8], overwrite: bool) -> Result<(), IdentityError> {
    ensure_writable(path, overwrite)?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_private_dir(&parent)?;
    let file_name = path
        .file_name()
        .ok_or_else(|| IdentityError::io(path, std::io::Error::other("path has no file name")))?;
    let mut suffix = [0u8; 8];
    random_bytes(&mut suffix)?;
    let temp = parent.join(format!(".{}.tmp-{}", file_name.to_string_lossy(), hex::encode(suffix)));

    let result = write_temp(&temp, contents).and_then(|()| {
        if overwrite {
            fs::rename(&temp, path).map_err(|e| IdentityError::io(path, e))
        } else {
            let linked = fs::hard_link(&temp, path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    IdentityError::AlreadyExists { path: path.to_path_buf() }
                } else {
                    IdentityError::io(path, e)
                }
            });
            let _ = fs::remove_file(&temp);
            linked
        }
    });
    if result.is_err() {
        let _ = fs::remove_file(&temp);
        return result;
    }
    // The new name must survive a crash too, as the store's writer makes its own (a rename or
    // link is durable only once its directory is).
    fs::File::open(&parent).and_then(|d| d.sync_all()).map_err(|e| IdentityError::io(&parent, e))
}

fn write_temp(temp: &Path, contents: &[u8]) -> Result<(), IdentityError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(temp)
        .map_err(|e| IdentityError::io(temp, e))?;
    file.write_all(contents).and_then(|()| file.sync_all()).map_err(|e| IdentityError::io(temp, e))
}

/// Reads a whole file, naming it in the error.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, IdentityError> {
    fs::read(path).map_err(|e| IdentityError::io(path, e))
}
