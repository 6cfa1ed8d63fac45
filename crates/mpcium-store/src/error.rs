//! The store's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the store, its backups, recovery and rekeying.
///
/// Messages name the offending key, file or parameter but never a secret.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The password did not unwrap the data-encryption key (the AEAD tag of the wrapped key is
    /// the key check), or the store header was altered.
    #[error("wrong password: the key check failed (or the store header was tampered with)")]
    WrongPassword,

    /// A stored value failed authentication: flipped bytes, truncation, or a value copied from
    /// another key.
    #[error("record {key:?} is corrupt or was tampered with (authentication failed)")]
    Corrupt {
        /// Key name of the record.
        key: String,
    },

    /// A key name (or one of its components) is not acceptable.
    #[error("invalid key name {key:?}: {reason}")]
    InvalidKey {
        /// The rejected key or component.
        key: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// A value exceeds [`crate::MAX_VALUE_LEN`].
    #[error("value for {key:?} is {len} bytes; the maximum is {max} bytes")]
    ValueTooLarge {
        /// Key name of the record.
        key: String,
        /// Size of the rejected value.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// A create-only write (a key share) found the record already there: nothing was written.
    #[error("record {key:?} already exists; a key share is never overwritten")]
    RecordExists {
        /// Key name of the existing record.
        key: String,
    },

    /// The replay-protection journal already holds this request.
    #[error("request (wallet {wallet_id:?}, tx {tx_id:?}) was already processed (replay refused)")]
    DuplicateRequest {
        /// Wallet of the request.
        wallet_id: String,
        /// Transaction / request id.
        tx_id: String,
    },

    /// A presignature id is already in use: ids are never reused or overwritten (two secrets
    /// under one id could be mistaken for each other, or one used twice).
    #[error("presignature {presig_id:?} of wallet {wallet_id:?} already exists (ids are never reused)")]
    PresignatureExists {
        /// Wallet of the presignature.
        wallet_id: String,
        /// The presignature id.
        presig_id: String,
    },

    /// A key made ahead of its wallet is already stored under this id (ids are never reused).
    #[error("pooled key {pool_id:?} already exists (ids are never reused)")]
    PooledKeyExists {
        /// The pool id.
        pool_id: String,
    },

    /// A key made ahead of its wallet is not (or no longer) stored: it was handed to a wallet
    /// before, or never made here.
    #[error("pooled key {pool_id:?} is not held here")]
    PooledKeyMissing {
        /// The pool id.
        pool_id: String,
    },

    /// Argon2id parameters below the production floor were used on a production path.
    #[error("Argon2id parameters {found} are below the production floor {floor}")]
    WeakKdf {
        /// The parameters that were refused.
        found: String,
        /// The minimum accepted in production.
        floor: String,
    },

    /// Argon2id parameters that are not valid at all (zero, absurdly large, unknown algorithm).
    #[error("invalid key-derivation parameters: {0}")]
    InvalidKdf(String),

    /// A new password is shorter than [`crate::MIN_PASSWORD_LEN`] (that is: empty).
    #[error("the store password must not be empty (got {len} bytes, need at least {min})")]
    PasswordTooShort {
        /// Length given.
        len: usize,
        /// Minimum length.
        min: usize,
    },

    /// The store file does not exist.
    #[error("store {path} does not exist")]
    NotFound {
        /// Path of the missing store.
        path: PathBuf,
    },

    /// Refused to create a store (or recover / rotate) over an existing path.
    #[error("{path} already exists")]
    AlreadyExists {
        /// The existing path.
        path: PathBuf,
    },

    /// The file is a redb database but has no mpcium header, or the header is malformed.
    #[error("{path} is not a valid mpcium store: {reason}")]
    BadHeader {
        /// Store path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// Another process (or handle) holds the store open.
    #[error("store {path} is already open by another process or handle")]
    Locked {
        /// Store path.
        path: PathBuf,
    },

    /// A backup file does not continue the chain where the previous one stopped.
    #[error(
        "backup chain gap before {file}: expected a backup starting at change {expected}, found one starting at {found} (a backup file is missing)"
    )]
    BackupChainGap {
        /// `next_since` of the previous file (0 when a full base backup was expected).
        expected: u64,
        /// `since` of the file found.
        found: u64,
        /// The file that does not fit.
        file: PathBuf,
    },

    /// `latest.version` names a newer backup than the newest file present.
    #[error(
        "latest.version records backup version {expected} but the newest backup file is version {found}: newer backup files are missing"
    )]
    BackupChainTruncated {
        /// Version recorded in `latest.version`.
        expected: u64,
        /// Newest version found on disk.
        found: u64,
    },

    /// A backup file is malformed, truncated or fails authentication.
    #[error("backup file {file} is corrupt, truncated or tampered with: {reason}")]
    BackupCorrupt {
        /// The bad file.
        file: PathBuf,
        /// What failed.
        reason: String,
    },

    /// The backup directory holds no backup files.
    #[error("no backup files (backup-*.enc) found in {dir}")]
    NoBackups {
        /// The directory searched.
        dir: PathBuf,
    },

    /// The backup directory mixes several nodes' backups.
    #[error("backup directory mixes backups of nodes {first:?} and {second:?}; recover one node at a time")]
    MixedNodes {
        /// One node name.
        first: String,
        /// Another node name.
        second: String,
    },

    /// A node name unsuitable for a backup file name.
    #[error("invalid node name {0:?}: use 1-64 characters from [A-Za-z0-9_.-]")]
    InvalidNodeName(String),

    /// An error of the underlying redb database.
    #[error("database error: {0}")]
    Database(#[from] redb::Error),

    /// A file-system operation failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    Rng,

    /// An encryption primitive failed where it cannot fail for valid sizes.
    #[error("internal cryptographic error: {0}")]
    Crypto(&'static str),
}

/// Result alias for the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io { path: path.into(), source }
    }
}

impl From<mpcium_fs::PrivateFileError> for StoreError {
    fn from(e: mpcium_fs::PrivateFileError) -> Self {
        match e {
            mpcium_fs::PrivateFileError::AlreadyExists { path } => StoreError::AlreadyExists { path },
            mpcium_fs::PrivateFileError::Io { path, source } => StoreError::Io { path, source },
        }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Database(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);
