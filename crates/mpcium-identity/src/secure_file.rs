//! Writing files that may hold secrets, through `mpcium-fs` (the store's writer too): created
//! 0600 (directories 0700) through a temporary file in the same directory, fsynced, then moved
//! into place and the directory fsynced, so a reader never sees half a key and a crash leaves
//! either the old file or the new one.

use std::fs;
use std::path::Path;

use mpcium_fs::{IfExists, PrivateFileError};

use crate::error::IdentityError;

impl From<PrivateFileError> for IdentityError {
    fn from(e: PrivateFileError) -> Self {
        match e {
            PrivateFileError::AlreadyExists { path } => IdentityError::AlreadyExists { path },
            PrivateFileError::Io { path, source } => IdentityError::Io { path, source },
        }
    }
}

/// Creates `dir` (and parents) with mode 0700 if it does not exist. An existing directory is
/// left as it is.
pub fn create_private_dir(dir: &Path) -> Result<(), IdentityError> {
    Ok(mpcium_fs::create_private_dir_if_missing(dir)?)
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
    let if_exists = if overwrite { IfExists::Replace } else { IfExists::Refuse };
    Ok(mpcium_fs::write_private_file(path, contents, if_exists)?)
}

/// Reads a whole file, naming it in the error.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, IdentityError> {
    fs::read(path).map_err(|e| IdentityError::io(path, e))
}
