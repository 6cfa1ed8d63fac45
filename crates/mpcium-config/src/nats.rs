//! The parts of `config.yaml` both the node and the CLI read: `environment` and `nats.*`.

use std::path::PathBuf;

use crate::error::ConfigError;
use crate::raw::Values;
use crate::secret::SecretString;

/// `nats.url` when unset: the NATS client's own default.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";
/// `nats.tls.client_cert` when unset.
pub const DEFAULT_NATS_CLIENT_CERT: &str = "./certs/client-cert.pem";
/// `nats.tls.client_key` when unset.
pub const DEFAULT_NATS_CLIENT_KEY: &str = "./certs/client-key.pem";
/// `nats.tls.ca_cert` when unset.
pub const DEFAULT_NATS_CA_CERT: &str = "./certs/rootCA.pem";

/// `environment`: exactly `production` or `development` (case-sensitive, as the original).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// NATS with TLS and user/password, JSON logs.
    Production,
    /// Plain NATS, human-readable logs.
    Development,
}

impl Environment {
    pub(crate) fn from_values(values: &Values) -> Result<Self, ConfigError> {
        match values.text("environment") {
            None => Err(ConfigError::missing("environment")),
            Some("production") => Ok(Self::Production),
            Some("development") => Ok(Self::Development),
            Some(other) => {
                Err(values.invalid("environment", format!("`{other}` is not `production` or `development`")))
            }
        }
    }
}

/// `nats.*`. The original uses the credentials and TLS files only in production; so should the
/// connection code that reads this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsConfig {
    /// `nats.url`.
    pub url: String,
    /// `nats.username` (production only).
    pub username: Option<String>,
    /// `nats.password` (production only).
    pub password: Option<SecretString>,
    /// `nats.tls.*` (production only).
    pub tls: NatsTlsConfig,
}

/// `nats.tls.*`: client certificate, its key, and the CA that signed the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsTlsConfig {
    /// `nats.tls.client_cert`.
    pub client_cert: PathBuf,
    /// `nats.tls.client_key`.
    pub client_key: PathBuf,
    /// `nats.tls.ca_cert`.
    pub ca_cert: PathBuf,
}

impl NatsConfig {
    pub(crate) fn from_values(values: &mut Values) -> Result<Self, ConfigError> {
        let url = values.text("nats.url").unwrap_or(DEFAULT_NATS_URL).to_owned();
        let scheme_ok = ["nats://", "tls://", "ws://", "wss://"].iter().any(|s| url.starts_with(s))
            || !url.contains("://");
        if !scheme_ok {
            return Err(values.invalid(
                "nats.url",
                format!("`{url}` has an unknown scheme (use nats://, tls://, ws:// or wss://)"),
            ));
        }
        let path = |key: &str, default: &str| PathBuf::from(values.text(key).unwrap_or(default));
        let tls = NatsTlsConfig {
            client_cert: path("nats.tls.client_cert", DEFAULT_NATS_CLIENT_CERT),
            client_key: path("nats.tls.client_key", DEFAULT_NATS_CLIENT_KEY),
            ca_cert: path("nats.tls.ca_cert", DEFAULT_NATS_CA_CERT),
        };
        let username = values.text("nats.username").map(str::to_owned);
        let password = values.take_secret("nats.password").map(SecretString::new);
        Ok(Self { url, username, password, tls })
    }
}
