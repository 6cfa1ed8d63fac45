//! One module per command.

pub mod audit;
pub mod bans;
pub mod benchmark;
pub mod devnet;
pub mod generate_authorizer;
pub mod generate_identity;
pub mod generate_initiator;
pub mod generate_peers;
pub mod migrate;
pub mod recover;
pub mod register_peers;
pub mod rekey;
pub mod status;
pub mod version;

use std::path::PathBuf;

use crate::config::StoreConfig;

/// What every command may need from the global flags.
#[derive(Debug)]
pub struct Context {
    /// `--config` path, if given.
    pub config_path: Option<PathBuf>,
}

impl Context {
    /// Loads the config file if `--config` was given; an empty config otherwise.
    pub fn store_config(&self) -> anyhow::Result<StoreConfig> {
        match &self.config_path {
            Some(path) => StoreConfig::load(path),
            None => Ok(StoreConfig::default()),
        }
    }

    /// Loads the client config (`--config`, else the usual places), logs its warnings, and
    /// applies `-e/--environment` when given.
    pub fn client_config(
        &self,
        environment: Option<register_peers::EnvironmentArg>,
    ) -> anyhow::Result<mpcium_config::ClientConfig> {
        let loaded = mpcium_config::ClientConfig::load(self.config_path.as_deref())?;
        for warning in &loaded.warnings {
            tracing::warn!(file = %loaded.path.display(), "{warning}");
        }
        let mut config = loaded.config;
        if let Some(environment) = environment {
            config.environment = environment.into();
        }
        Ok(config)
    }
}
