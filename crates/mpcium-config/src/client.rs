//! [`ClientConfig`]: what `mpcium-cli` commands that talk to the cluster read from a node's
//! `config.yaml` (`environment`, `nats.*`). Node-only keys are neither required nor checked, so
//! the CLI works with a config whose chain code or initiator key is not yet filled in.

use crate::error::{ConfigError, ConfigWarning};
use crate::nats::{Environment, NatsConfig};
use crate::raw::Values;

/// The validated client view of `config.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// `environment`.
    pub environment: Environment,
    /// `nats.*`.
    pub nats: NatsConfig,
}

impl ClientConfig {
    pub(crate) fn from_values(mut values: Values) -> Result<(Self, Vec<ConfigWarning>), ConfigError> {
        let environment = Environment::from_values(&values)?;
        let nats = NatsConfig::from_values(&mut values)?;
        Ok((Self { environment, nats }, values.warnings))
    }
}
