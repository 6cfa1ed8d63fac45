//! # mpcium-fs: durable private files
//!
//! Every file of mpcium-rs that may hold a secret (key shares' backups, identities, key files,
//! passwords) is written through [`write_private_file`]: a temporary file (mode 0600) in the same
//! directory, written and fsynced, then moved into place and the directory fsynced. A reader
//! never sees half a file, and after a crash the name holds either the old contents or the new.
//! What happens to an existing file is the caller's explicit choice ([`IfExists`]): replaced
//! atomically by a rename, or never touched (the final step is then a hard link, which fails
//! atomically if the name is taken, so two writers cannot both win).
//!
//! The store and the identity files share this crate (it depends on nothing of ours), so both
//! get the same durability.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Mode of every file written here.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every directory created here.
pub const DIR_MODE: u32 = 0o700;

/// What [`write_private_file`] does when the destination exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IfExists {
    /// Replace it atomically (rename over it).
    Replace,
    /// Leave it alone and fail with [`PrivateFileError::AlreadyExists`].
    Refuse,
}

/// Why a private file or directory could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PrivateFileError {
    /// The destination exists and [`IfExists::Refuse`] was asked for.
    #[error("{} already exists; refusing to overwrite it", .path.display())]
    AlreadyExists {
        /// The existing path.
        path: PathBuf,
    },
    /// A file-system call failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl PrivateFileError {
    fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}

type Result<T> = std::result::Result<T, PrivateFileError>;

/// Writes `contents` to `path` with mode 0600, durably and atomically (see the crate docs);
/// `if_exists` says what happens to an existing file. A missing parent directory is created
/// with mode 0700. On failure the temporary file is removed and `path` is as it was.
pub fn write_private_file(path: &Path, contents: &[u8], if_exists: IfExists) -> Result<()> {
    if if_exists == IfExists::Refuse && fs::symlink_metadata(path).is_ok() {
        return Err(PrivateFileError::AlreadyExists { path: path.to_owned() });
    }
    let parent = parent_dir(path);
    create_private_dir_if_missing(&parent)?;
    let temp = temp_name(path)?;
    // A file of that name can only be a crash leftover of an earlier process with our pid.
    let _ = fs::remove_file(&temp);
    let written = write_new(&temp, contents).and_then(|()| match if_exists {
        IfExists::Replace => fs::rename(&temp, path).map_err(|e| PrivateFileError::io(path, e)),
        IfExists::Refuse => {
            let linked = fs::hard_link(&temp, path).map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    PrivateFileError::AlreadyExists { path: path.to_owned() }
                } else {
                    PrivateFileError::io(path, e)
                }
            });
            let _ = fs::remove_file(&temp);
            linked
        }
    });
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    // The new name survives a crash only once its directory is on disk too.
    sync_dir(&parent)
}

/// Creates a new empty file with mode 0600, failing with [`PrivateFileError::AlreadyExists`] if
/// the name is taken.
pub fn create_private_file(path: &Path) -> Result<File> {
    OpenOptions::new().write(true).create_new(true).mode(FILE_MODE).open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            PrivateFileError::AlreadyExists { path: path.to_owned() }
        } else {
            PrivateFileError::io(path, e)
        }
    })
}

/// Creates `dir` (and missing parents) with mode 0700 if it is missing; leaves an existing
/// directory's mode alone (it may be the working directory or a system directory).
pub fn create_private_dir_if_missing(dir: &Path) -> Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir).map_err(|e| PrivateFileError::io(dir, e))
}

/// Creates `dir` (and missing parents) with mode 0700; tightens an existing one to 0700.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    create_private_dir_if_missing(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE)).map_err(|e| PrivateFileError::io(dir, e))
}

/// Renames `from` to `to` (replacing `to`) and fsyncs the directory of `to`.
pub fn rename_durably(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| PrivateFileError::io(to, e))?;
    sync_parent(to)
}

/// Fsyncs the directory holding `path`, making a rename or creation there durable.
pub fn sync_parent(path: &Path) -> Result<()> {
    sync_dir(&parent_dir(path))
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

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| PrivateFileError::io(dir, e))
}

/// `.<name>.tmp-<pid>-<n>` beside `path`: distinct between the writers of this host at any
/// moment (the process id) and between the writes of this process (the counter).
fn temp_name(path: &Path) -> Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| PrivateFileError::io(path, io::Error::other("path has no file name")))?;
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    Ok(path.with_file_name(format!(".{}.tmp-{}-{n}", name.to_string_lossy(), std::process::id())))
}

fn write_new(temp: &Path, contents: &[u8]) -> Result<()> {
    let mut file = create_private_file(temp)?;
    file.write_all(contents).and_then(|()| file.sync_all()).map_err(|e| PrivateFileError::io(temp, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replace_writes_0600_and_replaces_atomically_leaving_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        let f = sub.join("x");
        write_private_file(&f, b"one", IfExists::Replace).unwrap();
        assert_eq!(mode(&sub), 0o700, "a missing parent is created private");
        let before = fs::metadata(&f).unwrap();
        write_private_file(&f, b"two", IfExists::Replace).unwrap();
        assert_eq!(fs::read(&f).unwrap(), b"two");
        assert_eq!(mode(&f), 0o600);
        // Replaced by a rename (a new inode), never rewritten in place: a reader holding the old
        // file keeps the old contents whole.
        use std::os::unix::fs::MetadataExt;
        assert_ne!(fs::metadata(&f).unwrap().ino(), before.ino());
        assert_eq!(names(&sub), ["x"]);
    }

    #[test]
    fn refuse_never_replaces_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("key.json");
        write_private_file(&f, b"first", IfExists::Refuse).unwrap();
        assert_eq!(mode(&f), 0o600);
        let err = write_private_file(&f, b"second", IfExists::Refuse).unwrap_err();
        assert!(matches!(&err, PrivateFileError::AlreadyExists { path } if path == &f), "{err:?}");
        assert_eq!(fs::read(&f).unwrap(), b"first");
        assert_eq!(names(dir.path()), ["key.json"], "no temporary file left behind");
    }

    #[test]
    fn a_refusing_writer_does_not_follow_a_dangling_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &f).unwrap();
        assert!(matches!(
            write_private_file(&f, b"x", IfExists::Refuse),
            Err(PrivateFileError::AlreadyExists { .. })
        ));
        assert!(!dir.path().join("elsewhere").exists());
    }

    #[test]
    fn private_dirs_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("p/q");
        ensure_private_dir(&sub).unwrap();
        assert_eq!(mode(&sub), 0o700);
        fs::set_permissions(&sub, fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir_if_missing(&sub).unwrap();
        assert_eq!(mode(&sub), 0o755, "an existing directory is left alone");
        ensure_private_dir(&sub).unwrap();
        assert_eq!(mode(&sub), 0o700, "ensure tightens it");
        let f = sub.join("new");
        drop(create_private_file(&f).unwrap());
        assert_eq!(mode(&f), 0o600);
        assert!(matches!(create_private_file(&f), Err(PrivateFileError::AlreadyExists { .. })));
        let moved = sub.join("moved");
        rename_durably(&f, &moved).unwrap();
        assert!(moved.exists() && !f.exists());
        assert_eq!(sibling(&moved, ".tmp"), sub.join("moved.tmp"));
        assert_eq!(parent_dir(Path::new("bare")), PathBuf::from("."));
    }
}
