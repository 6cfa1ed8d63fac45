//! Connecting to the cluster's NATS server as the config says, and opening the registry.
//!
//! As in the original, credentials and TLS files are used only in production; development
//! connects to `nats.url` as it is.

use std::time::Duration;

use anyhow::Context as _;
use mpcium_config::{ClientConfig, DEFAULT_HEARTBEAT_SECONDS, Environment};
use mpcium_registry::{Heartbeat, Registry};

/// How long a connection attempt may take before the command gives up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `config.nats.url` (with user/password and TLS client certificate in production);
/// a `nats.url` listing several servers (comma-separated) is tried in order.
pub async fn connect(config: &ClientConfig) -> anyhow::Result<async_nats::Client> {
    mpcium_registry::connect::install_tls_provider();
    let nats = &config.nats;
    let mut options = mpcium_registry::connect::cluster_options(
        async_nats::ConnectOptions::new().connection_timeout(CONNECT_TIMEOUT),
    );
    if config.environment == Environment::Production {
        if let (Some(user), Some(password)) = (&nats.username, &nats.password) {
            options = options.user_and_password(user.clone(), password.expose().to_owned());
        }
        options = options
            .require_tls(true)
            .add_root_certificates(nats.tls.ca_cert.clone())
            .add_client_certificate(nats.tls.client_cert.clone(), nats.tls.client_key.clone());
    }
    tokio::time::timeout(CONNECT_TIMEOUT, options.connect(nats.servers()))
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))
        .and_then(|r| r.map_err(anyhow::Error::from))
        .with_context(|| format!("cannot connect to NATS at {}", nats.url))
}

/// Opens (creating when absent) the registry buckets. The readiness bucket's TTL follows the
/// default heartbeat, which is what a node uses unless `node.heartbeat_seconds` is changed.
/// With `replicas` (`nats.replicas` of the config) buckets are created with that many copies and
/// existing ones brought to it, as a node does; `None` creates with one and changes nothing.
pub async fn open_registry(client: async_nats::Client, replicas: Option<usize>) -> anyhow::Result<Registry> {
    let js = async_nats::jetstream::new(client);
    let heartbeat = Heartbeat::every(Duration::from_secs(DEFAULT_HEARTBEAT_SECONDS));
    match replicas {
        Some(n) => Registry::open_with_replicas(&js, heartbeat, n).await,
        None => Registry::open(&js, heartbeat).await,
    }
    .context("cannot open the registry (is JetStream enabled on the server?)")
}

/// A single-threaded tokio runtime for a command's network work.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
