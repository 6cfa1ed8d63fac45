//! Errors of reading and writing identity and key files.

use std::path::PathBuf;

use crate::passphrase::PassphraseError;

/// What went wrong with an identity, key or peers file. Messages name the file; none contains
/// key material.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading, writing or renaming a file failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The target exists and overwriting was not asked for.
    #[error("{} already exists; refusing to overwrite it", .path.display())]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// A JSON file does not have the expected shape.
    #[error("{}: invalid JSON: {reason}", .path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// Parser message.
        reason: String,
    },
    /// A key (in a file or given as text) cannot be decoded.
    #[error("{what}: {reason}")]
    InvalidKey {
        /// Which key or file.
        what: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The private key does not belong to the public key recorded next to it.
    #[error("{}: the private key does not match the public key in {}", .key_path.display(), .identity_path.display())]
    PublicKeyMismatch {
        /// The private key file.
        key_path: PathBuf,
        /// The identity file holding the expected public key.
        identity_path: PathBuf,
    },
    /// The passphrase does not open the age file.
    #[error("{}: wrong passphrase (or not encrypted with a passphrase)", .path.display())]
    WrongPassphrase {
        /// The age file.
        path: PathBuf,
    },
    /// The age file is malformed or asks for more scrypt work than we allow.
    #[error("{}: cannot decrypt: {reason}", .path.display())]
    Decrypt {
        /// The age file.
        path: PathBuf,
        /// The age library's reason.
        reason: String,
    },
    /// A passphrase-protected file was asked for without a passphrase, or vice versa.
    #[error("{}: {reason}", .path.display())]
    PassphraseNeeded {
        /// The key file.
        path: PathBuf,
        /// What is missing.
        reason: &'static str,
    },
    /// age encryption failed.
    #[error("age encryption failed: {0}")]
    Encrypt(String),
    /// A new passphrase does not meet the rules.
    #[error(transparent)]
    Passphrase(#[from] PassphraseError),
    /// A name (node, initiator, authorizer) cannot be used.
    #[error("invalid name `{name}`: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why.
        reason: String,
    },
    /// `peers.json` is malformed or inconsistent.
    #[error("{}: {reason}", .path.display())]
    InvalidPeers {
        /// The peers file (or `<text>` when parsed from memory).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A node is not listed in `peers.json`.
    #[error("node `{node}` is not listed in {}", .path.display())]
    UnknownNode {
        /// The node name looked up.
        node: String,
        /// The peers file.
        path: PathBuf,
    },
    /// The operating system's random number generator failed.
    #[error("random number generator failed: {0}")]
    Random(String),
}

impl IdentityError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    pub(crate) fn invalid_key(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidKey { what: what.into(), reason: reason.into() }
    }
}

/// Fills `buf` from the OS random number generator.
pub(crate) fn random_bytes(buf: &mut [u8]) -> Result<(), IdentityError> {
    getrandom::fill(buf).map_err(|e| IdentityError::Random(e.to_string()))
}
