//! Configuration of mpcium-rs: the `config.yaml` of the original `mpcium` (docs/wire.md §12.2).
//!
//! * [`NodeConfig`]: everything a node reads, validated, with the original's defaults.
//! * [`ClientConfig`]: the subset `mpcium-cli` needs (`environment`, `nats.*`).
//!
//! **Sources and precedence** (highest first): command-line overrides ([`NodeOverrides`]),
//! environment variables, the file, defaults. Every key can be overridden by the environment
//! variable named like the key, upper-cased, `.` → `_` (`NATS_URL`, `MPC_THRESHOLD`,
//! `BADGER_PASSWORD`, `HEALTHCHECK_ADDRESS`, `PRESIGN_POOL_SIZE`, …; lists such as
//! `PRESIGN_WALLETS` are comma- or space-separated; the per-authorizer key map cannot be set
//! from the environment). Empty variables are ignored. Unlike the original (viper decodes some
//! keys only if they appear in the file), an override applies **whether or not the key is in
//! the file**.
//!
//! **Errors and warnings.** The first invalid or missing value stops loading with one
//! [`ConfigError`] naming the key. Unknown keys are not errors: they come back as
//! [`ConfigWarning`]s for the caller to log. `consul.*` is accepted with a warning (mpcium-rs
//! uses NATS JetStream KV); the dead keys `session_warm_up_delay_ms`, `mpcium_version` and the
//! example-only `aws.*` are accepted silently.
//!
//! **Additions of mpcium-rs** (all optional): `nats.replicas` (1, 3 or 5; 1: copies of each
//! JetStream stream, KV bucket and durable consumer in a NATS cluster), `nats.url` may list
//! several servers separated by commas (failover), `security.strict_requests` (bool, false),
//! `presign.pool_size` (per wallet, 8, 0 = off), `presign.wallets` (list, empty = every wallet
//! that has signed), `key_pool.size` (keys made ahead of their wallets, 0 = off),
//! `limits.max_request_bytes` (1 MiB), `limits.requests_per_second.*` and
//! `limits.peer_messages_*` (rates: `limits.rs`), `node.heartbeat_seconds` (5),
//! `policy.rules` (approval rules by value: see the `policy` module; a list of maps, so the
//! environment cannot set it).
//!
//! Secrets (`badger_password`, `nats.password`) are [`SecretString`]s: zeroized on drop and
//! printed as `<redacted>` by `Debug`.

mod client;
mod error;
mod keys;
mod limits;
mod locate;
mod nats;
mod node;
mod policy;
mod raw;
mod secret;
pub mod template;

use std::path::{Path, PathBuf};

pub use client::ClientConfig;
pub use error::{ConfigError, ConfigWarning};
pub use keys::{KeyAlgorithm, PublicKey};
pub use limits::*;
pub use locate::{default_config_paths, find_config_file};
pub use nats::{
    DEFAULT_NATS_CA_CERT, DEFAULT_NATS_CLIENT_CERT, DEFAULT_NATS_CLIENT_KEY, DEFAULT_NATS_REPLICAS,
    DEFAULT_NATS_URL, Environment, NATS_REPLICAS_ALLOWED, NatsConfig, NatsTlsConfig,
};
pub use node::*;
pub use policy::{PolicyConfig, PolicyRule};
pub use raw::env_var_name;
pub use secret::SecretString;

/// A loaded configuration with the warnings found while loading it and the file it came from.
#[derive(Debug)]
pub struct Loaded<T> {
    /// The validated configuration.
    pub config: T,
    /// Unknown or ignored keys (log them).
    pub warnings: Vec<ConfigWarning>,
    /// The file that was read.
    pub path: PathBuf,
}

/// Reads the process environment (the source used by the `load` functions).
fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

impl NodeConfig {
    /// Finds (see [`find_config_file`]) and loads the node configuration, applying the process
    /// environment and `overrides`.
    pub fn load(path: Option<&Path>, overrides: NodeOverrides) -> Result<Loaded<NodeConfig>, ConfigError> {
        let path = find_config_file(path, home_dir().as_deref())?;
        let text = locate::read_config_file(&path)?;
        let (config, warnings) = Self::from_yaml(&text, &process_env, overrides)?;
        Ok(Loaded { config, warnings, path })
    }

    /// Parses and validates YAML text; `env` looks up an environment variable by name.
    pub fn from_yaml(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
        overrides: NodeOverrides,
    ) -> Result<(NodeConfig, Vec<ConfigWarning>), ConfigError> {
        Self::from_values(raw::Values::parse(text, env)?, overrides)
    }
}

impl ClientConfig {
    /// Finds (see [`find_config_file`]) and loads the client view, applying the process
    /// environment.
    pub fn load(path: Option<&Path>) -> Result<Loaded<ClientConfig>, ConfigError> {
        let path = find_config_file(path, home_dir().as_deref())?;
        let text = locate::read_config_file(&path)?;
        let (config, warnings) = Self::from_yaml(&text, &process_env)?;
        Ok(Loaded { config, warnings, path })
    }

    /// Parses and validates YAML text; `env` looks up an environment variable by name.
    pub fn from_yaml(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(ClientConfig, Vec<ConfigWarning>), ConfigError> {
        Self::from_values(raw::Values::parse(text, env)?)
    }
}
