//! Errors and warnings produced while loading `config.yaml`.

use std::fmt;
use std::path::PathBuf;

/// Why a configuration could not be loaded. Every variant about a value names the key
/// (dotted path, e.g. `nats.url`) so the operator knows what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No config file was given and none of the default locations holds one.
    #[error("no config file found; looked for {}", display_paths(.searched))]
    NotFound {
        /// The paths that were tried, in order.
        searched: Vec<PathBuf>,
    },
    /// The config file exists (or was named) but could not be read.
    #[error("cannot read config file {}: {source}", .path.display())]
    Read {
        /// The file that failed.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not YAML of the expected shape (e.g. a section that is not a mapping).
    #[error("config file is not valid YAML: {message}")]
    Yaml {
        /// Parser message, with line and column.
        message: String,
    },
    /// A required key is absent or empty.
    #[error("config key `{key}` is required but missing or empty")]
    Missing {
        /// Dotted key path.
        key: String,
    },
    /// A key has a value that cannot be used.
    #[error("config key `{key}` is invalid: {reason}")]
    Invalid {
        /// Dotted key path.
        key: String,
        /// What is wrong with the value (never the value itself when it is a secret).
        reason: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid { key: key.into(), reason: reason.into() }
    }

    pub(crate) fn missing(key: impl Into<String>) -> Self {
        Self::Missing { key: key.into() }
    }
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// Something in the file that does not stop the node but that the operator should see.
/// Returned to the caller (who logs them); this crate never prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigWarning {
    /// A key this implementation does not know (probably a typo).
    UnknownKey {
        /// Dotted key path.
        key: String,
    },
    /// A key of the original that is read but has no effect here.
    Ignored {
        /// Dotted key path.
        key: String,
        /// Why it has no effect.
        reason: &'static str,
    },
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownKey { key } => write!(f, "unknown config key `{key}` (ignored)"),
            Self::Ignored { key, reason } => write!(f, "config key `{key}` is ignored: {reason}"),
        }
    }
}
