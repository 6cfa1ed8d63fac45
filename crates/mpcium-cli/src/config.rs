//! The few config.yaml keys the store commands need.
//!
//! A deliberately small reader (the node's full config module may replace it): unknown keys
//! are ignored, and `BADGER_PASSWORD` in the environment overrides `badger_password`.

use std::path::Path;

use anyhow::Context as _;
use serde::Deserialize;
use zeroize::Zeroize;

/// Store-related keys of config.yaml.
#[derive(Default, Deserialize)]
pub struct StoreConfig {
    /// The store password.
    #[serde(default)]
    badger_password: Option<String>,
    /// Directory of the node's store.
    #[serde(default)]
    pub db_path: Option<String>,
    /// Directory of the backups.
    #[serde(default)]
    pub backup_dir: Option<String>,
}

impl StoreConfig {
    /// Reads `path` (YAML).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let mut text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let parsed = serde_saphyr::from_str::<StoreConfig>(&text)
            .with_context(|| format!("config file {} is not valid YAML", path.display()));
        text.zeroize();
        parsed
    }

    /// `BADGER_PASSWORD` from the environment if set and non-empty, else `badger_password`.
    pub fn password(&self) -> Option<zeroize::Zeroizing<String>> {
        if let Ok(env) = std::env::var("BADGER_PASSWORD") {
            let env = zeroize::Zeroizing::new(env);
            if !env.is_empty() {
                return Some(env);
            }
        }
        self.badger_password.as_ref().filter(|p| !p.is_empty()).map(|p| zeroize::Zeroizing::new(p.clone()))
    }
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("badger_password", &self.badger_password.as_ref().map(|_| "<redacted>"))
            .field("db_path", &self.db_path)
            .field("backup_dir", &self.backup_dir)
            .finish()
    }
}

impl Drop for StoreConfig {
    fn drop(&mut self) {
        if let Some(p) = self.badger_password.as_mut() {
            p.zeroize();
        }
    }
}
