//! Where `config.yaml` is found when no path is given, and reading it.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::ConfigError;

/// The default locations, in search order: `./config.yaml`, `/etc/mpcium/config.yaml`,
/// `$HOME/.mpcium/config.yaml` (the last only when `home` is known).
pub fn default_config_paths(home: Option<&Path>) -> Vec<PathBuf> {
    let mut paths = vec![PathBuf::from("config.yaml"), PathBuf::from("/etc/mpcium/config.yaml")];
    if let Some(home) = home {
        paths.push(home.join(".mpcium").join("config.yaml"));
    }
    paths
}

/// The config file to use: `explicit` if given (it must exist), else the first default
/// location that is a file. A missing file is an error, as in the original.
pub fn find_config_file(explicit: Option<&Path>, home: Option<&Path>) -> Result<PathBuf, ConfigError> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let candidates = default_config_paths(home);
    candidates.iter().find(|p| p.is_file()).cloned().ok_or(ConfigError::NotFound { searched: candidates })
}

/// Reads the whole file as UTF-8. The text may hold passwords, so it is wiped when dropped.
pub(crate) fn read_config_file(path: &Path) -> Result<Zeroizing<String>, ConfigError> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })
}
