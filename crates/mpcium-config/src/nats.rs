//! The parts of `config.yaml` both the node and the CLI read: `environment` and `nats.*`.

use std::path::PathBuf;

use crate::error::ConfigError;
use crate::raw::Values;
use crate::secret::SecretString;

/// `nats.url` when unset: the NATS client's own default.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";
/// `nats.replicas` when unset: one copy of every stream and bucket (a single nats-server).
pub const DEFAULT_NATS_REPLICAS: usize = 1;
/// The values `nats.replicas` accepts: JetStream replicates by Raft, so an odd count (a majority
/// of 3 survives one lost server, of 5 two); 5 is JetStream's maximum.
pub const NATS_REPLICAS_ALLOWED: [usize; 3] = [1, 3, 5];
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
    /// `nats.url`: one server URL, or several separated by commas (as the Go client accepts), so
    /// the node fails over to another server of a NATS cluster. [`NatsConfig::servers`] splits it.
    pub url: String,
    /// `nats.replicas` (1, 3 or 5; default 1): how many servers of a NATS cluster hold each
    /// stream, KV bucket and durable consumer the node or the CLI creates. Use 3 with a
    /// 3-server cluster so the loss of one server loses nothing.
    pub replicas: usize,
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
        let servers = split_servers(&url);
        if servers.is_empty() {
            return Err(values.invalid("nats.url", "lists no server"));
        }
        for server in &servers {
            let scheme_ok = ["nats://", "tls://", "ws://", "wss://"].iter().any(|s| server.starts_with(s))
                || !server.contains("://");
            if !scheme_ok {
                return Err(values.invalid(
                    "nats.url",
                    format!("`{server}` has an unknown scheme (use nats://, tls://, ws:// or wss://)"),
                ));
            }
        }
        let replicas = match values.text("nats.replicas") {
            None => DEFAULT_NATS_REPLICAS,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if NATS_REPLICAS_ALLOWED.contains(&n) => n,
                _ => {
                    return Err(values.invalid(
                        "nats.replicas",
                        format!(
                            "`{text}` is not 1, 3 or 5 (copies of each JetStream stream and bucket: 1 for a \
                             single nats-server, 3 or 5 for a NATS cluster of at least that many servers)"
                        ),
                    ));
                }
            },
        };
        let path = |key: &str, default: &str| PathBuf::from(values.text(key).unwrap_or(default));
        let tls = NatsTlsConfig {
            client_cert: path("nats.tls.client_cert", DEFAULT_NATS_CLIENT_CERT),
            client_key: path("nats.tls.client_key", DEFAULT_NATS_CLIENT_KEY),
            ca_cert: path("nats.tls.ca_cert", DEFAULT_NATS_CA_CERT),
        };
        let username = values.text("nats.username").map(str::to_owned);
        let password = values.take_secret("nats.password").map(SecretString::new);
        Ok(Self { url, replicas, username, password, tls })
    }

    /// The servers of `nats.url`, in the order written (split at commas, blanks trimmed).
    pub fn servers(&self) -> Vec<String> {
        split_servers(&self.url)
    }
}

/// `a, b,c` → `["a", "b", "c"]`; empty items are dropped.
fn split_servers(url: &str) -> Vec<String> {
    url.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}
