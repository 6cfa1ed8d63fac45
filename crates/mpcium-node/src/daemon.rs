//! Wiring one node together: NATS, registry, transport, store, backups and the request service.
//! `mpcium start` calls [`start`] after reading its files; tests call it with in-memory values.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::{SigningKey, VerifyingKey};
use mpcium_api::AuthorizationPolicy;
use mpcium_store::{BackupConfig, BackupScheduler, Store};

use crate::drain::{Drain, DrainReport};
use crate::pairkey::ExchangeKey;
use crate::registry::{Heartbeat, PeerDirectory, Registry, now_ms};
use crate::service::{Service, ServiceConfig};
use crate::transport::Transport;
pub use mpcium_registry::connect::{cluster_options, install_tls_provider, nats_servers};

/// The log line that tells operators (and the devnet and e2e harnesses) the node is serving.
pub const READY_LINE: &str = "[READY] Node is ready";

/// Everything a node needs, already read and checked.
pub struct NodeParams {
    /// This node's id.
    pub node_id: String,
    /// This node's name (for backups and logs).
    pub node_name: String,
    /// Its Ed25519 identity.
    pub identity: SigningKey,
    /// Every cluster node's identity key (self included), by node id.
    pub peers: HashMap<String, VerifyingKey>,
    /// NATS connection options and URL.
    pub nats_url: String,
    /// NATS connection options (TLS, credentials).
    pub nats_options: async_nats::ConnectOptions,
    /// The opened key-share store.
    pub store: Arc<Store>,
    /// Backups, if enabled.
    pub backup: Option<BackupConfig>,
    /// Heartbeat period.
    pub heartbeat: Duration,
    /// The request service's settings.
    pub service: ServiceConfig,
    /// Peer registrations to make at start (`--peers`): name → id.
    pub register_peers: Vec<(String, String)>,
    /// Where to serve `/health` and `/metrics` (`healthcheck.enabled` + `healthcheck.address`).
    pub health_address: Option<String>,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// NATS refused this node: wrong user or password, a client certificate the server does not
    /// accept, or a server certificate we do not trust. Retrying would not help.
    #[error(
        "NATS at {url} refused the connection ({source}): check nats.username, nats.password and nats.tls.*"
    )]
    NatsRefused {
        /// The URL.
        url: String,
        /// What the server or the TLS handshake said.
        source: async_nats::ConnectError,
    },
    /// NATS is unreachable or refused us.
    #[error("cannot connect to NATS at {url}: {source}")]
    Nats {
        /// The URL.
        url: String,
        /// What failed.
        source: async_nats::ConnectError,
    },
    /// The registry could not be opened.
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    /// Listening failed.
    #[error(transparent)]
    Transport(#[from] crate::transport::TransportError),
    /// The backup scheduler could not start.
    #[error("backups: {0}")]
    Backup(#[from] mpcium_store::StoreError),
    /// A stream or consumer could not be created or brought to `nats.replicas`.
    #[error(transparent)]
    Replicas(#[from] crate::replicas::ReplicaError),
    /// The result consumers on `mpc` could not be created.
    #[error(transparent)]
    ResultConsumers(#[from] crate::result_consumers::ResultConsumerError),
    /// The health endpoint could not listen.
    #[error("healthcheck.address {address}: {source}")]
    Health {
        /// The address.
        address: String,
        /// Why.
        source: std::io::Error,
    },
}

/// How long [`RunningNode::shutdown`] waits for work in flight: a session's own timeout (30 s)
/// plus the coordinator's margin, so a session that can still finish is not cut short.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(35);

/// A running node; [`RunningNode::shutdown`] withdraws it gracefully.
pub struct RunningNode {
    node_id: String,
    registry: Registry,
    stop: tokio::sync::watch::Sender<bool>,
    service: tokio::task::JoinHandle<()>,
    drain: Drain,
    metrics: Arc<crate::health::Metrics>,
    audit_writer: crate::audit::AuditWriter,
    health: Option<tokio::task::JoinHandle<()>>,
    backup: Option<BackupScheduler>,
    client: async_nats::Client,
    directory: PeerDirectory,
    #[cfg(feature = "test-malice")]
    malice: crate::transport::MaliceSwitch,
    /// The node's transport, for tests that play a malicious coordinator with its identity.
    #[cfg(feature = "test-malice")]
    transport: Transport,
}

impl RunningNode {
    /// The node's view of ready peers.
    pub fn directory(&self) -> &PeerDirectory {
        &self.directory
    }

    /// This node's misbehaviour switch (off unless a test turns it on).
    #[cfg(feature = "test-malice")]
    pub fn malice(&self) -> &crate::transport::MaliceSwitch {
        &self.malice
    }

    /// This node's transport: a test sends what a malicious node would (any control message,
    /// signed with this node's identity) and reads the answers.
    #[cfg(feature = "test-malice")]
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Requests and sessions in flight on this node now.
    pub fn in_flight(&self) -> usize {
        self.drain.in_flight()
    }

    /// The request service's counters.
    pub fn metrics(&self) -> Arc<crate::health::Metrics> {
        self.metrics.clone()
    }

    /// Shut down gracefully, waiting up to [`DEFAULT_DRAIN_TIMEOUT`] for work in flight.
    pub async fn shutdown(self) -> DrainReport {
        self.shutdown_within(DEFAULT_DRAIN_TIMEOUT).await
    }

    /// Withdraw readiness (peers stop picking this node), stop taking requests, let the work in
    /// flight finish for up to `deadline` and hand back or answer the rest (see [`crate::drain`]),
    /// then stop serving and flush NATS.
    pub async fn shutdown_within(self, deadline: Duration) -> DrainReport {
        // The heartbeat stops first so it cannot re-announce the readiness withdrawn next.
        let _ = self.stop.send(true);
        if let Err(e) = self.registry.withdraw(&self.node_id).await {
            tracing::warn!(error = %e, "could not withdraw readiness");
        }
        let report = self.drain.drain(deadline).await;
        self.service.abort();
        // After the drain: the work it let finish has queued its audit records.
        self.audit_writer.finish().await;
        if let Some(h) = &self.health {
            h.abort();
        }
        if let Some(b) = self.backup {
            b.stop();
        }
        let _ = self.client.flush().await;
        tracing::info!(
            in_flight = report.in_flight_at_start,
            abandoned = report.abandoned,
            elapsed_ms = report.elapsed.as_millis() as u64,
            "node stopped"
        );
        report
    }

    /// Stop abruptly, as a crash would (readiness is left to expire). For tests.
    pub fn kill(self) {
        let _ = self.stop.send(true);
        self.service.abort();
        self.audit_writer.abort();
    }
}

/// The prefix of a node's reply inboxes: its own, so that NATS permissions can give each node
/// (and each client) a separate `_INBOX_<id>.>` and nobody reads another's replies.
pub fn inbox_prefix(node_id: &str) -> String {
    format!("_INBOX_{node_id}")
}

/// Connect to NATS. A refusal (credentials, certificates) ends the start at once with the reason;
/// a server that is not reachable yet is retried in the background, so nodes may start first.
async fn connect(params: &NodeParams) -> Result<async_nats::Client, StartError> {
    install_tls_provider();
    let url = &params.nats_url;
    let servers = nats_servers(url);
    let options = cluster_options(
        params
            .nats_options
            .clone()
            .name(format!("mpcium-{}", params.node_name))
            .custom_inbox_prefix(inbox_prefix(&params.node_id)),
    )
    .event_callback(|event| async move {
        match event {
            async_nats::Event::Connected => tracing::info!("NATS connected"),
            async_nats::Event::Disconnected => tracing::warn!("NATS disconnected; reconnecting"),
            other => tracing::debug!(event = %other, "NATS event"),
        }
    });
    match options.clone().connect(servers.clone()).await {
        Ok(client) => Ok(client),
        Err(source) if is_refusal(&source) => Err(StartError::NatsRefused { url: url.clone(), source }),
        Err(e) => {
            tracing::warn!(url = %url, error = %e, "NATS not reachable yet; retrying in the background");
            options
                .retry_on_initial_connect()
                .connect(servers)
                .await
                .map_err(|source| StartError::Nats { url: url.clone(), source })
        }
    }
}

/// Whether a connection error is the server (or the TLS handshake) saying no, as opposed to the
/// server not being there.
fn is_refusal(e: &async_nats::ConnectError) -> bool {
    use async_nats::ConnectErrorKind as K;
    match e.kind() {
        K::Authentication | K::AuthorizationViolation | K::Tls => true,
        // A TLS 1.3 server checks the client certificate after the client has finished its side
        // of the handshake, so its refusal arrives as an alert on the next read.
        K::Io => {
            let mut source = std::error::Error::source(e);
            while let Some(err) = source {
                if err.downcast_ref::<async_nats::rustls::Error>().is_some() {
                    return true;
                }
                if let Some(io) = err.downcast_ref::<std::io::Error>()
                    && io.get_ref().is_some_and(|inner| inner.is::<async_nats::rustls::Error>())
                {
                    return true;
                }
                source = err.source();
            }
            false
        }
        _ => false,
    }
}

/// Start a node.
pub async fn start(params: NodeParams) -> Result<RunningNode, StartError> {
    let client = connect(&params).await?;
    let js = async_nats::jetstream::new(client.clone());
    let heartbeat = Heartbeat::every(params.heartbeat);
    let replicas = params.service.replicas;
    let registry = Registry::open_with_replicas(&js, heartbeat, replicas).await?;
    for (name, id) in &params.register_peers {
        match registry.register_peer(name, id).await {
            Ok(true) => tracing::info!(name, id, "peer registered"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "peer registration skipped"),
        }
    }
    let directory = PeerDirectory::new(&params.node_id, params.peers, ExchangeKey::generate(), heartbeat.ttl);
    let transport = Transport::new(client.clone(), params.identity.clone(), directory.clone())
        .with_peer_rate(params.service.limits.peer_messages);
    let starts = transport.listen().await?;
    #[cfg(feature = "test-malice")]
    let malice = transport.malice().clone();
    #[cfg(feature = "test-malice")]
    let test_transport = transport.clone();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let backup = match params.backup {
        Some(cfg) => Some(BackupScheduler::start(params.store.clone(), cfg)?),
        None => None,
    };
    let threshold = params.service.threshold as usize;
    let transport_counters = transport.counters();
    let results_js = js.clone();
    let probes = transport.clone();
    // The writer starts once `ensure_streams` below made `mpc-audit`; records queue meanwhile.
    let (audit, audit_writer) =
        crate::audit::writer::prepare(js.clone(), params.node_id.clone(), params.identity.clone());
    let service = Service::new(params.service, js, registry.clone(), transport, params.store.clone(), audit);
    let health = match &params.health_address {
        Some(address) => {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .map_err(|source| StartError::Health { address: address.clone(), source })?;
            tracing::info!(address = %address, "serving /health and /metrics");
            let view = Arc::new(crate::health::HealthView {
                dir: directory.clone(),
                client: client.clone(),
                threshold,
                metrics: service.metrics(),
                transport: transport_counters,
            });
            Some(tokio::spawn(crate::health::serve(listener, view)))
        }
        None => None,
    };
    service.ensure_streams().await?;
    let audit_writer = audit_writer.start();
    crate::result_consumers::ensure_result_consumers_with_replicas(&results_js, replicas).await?;
    let started_at_ms = now_ms();
    registry.announce_at_start(&directory, &params.identity, started_at_ms).await?;
    registry.spawn_heartbeat(
        directory.clone(),
        params.identity.clone(),
        heartbeat,
        started_at_ms,
        stop_rx.clone(),
    );
    crate::liveness::spawn(probes, stop_rx.clone());
    registry.spawn_watch(directory.clone(), stop_rx);
    let drain = service.drainer();
    let metrics = service.metrics();
    let service = tokio::spawn(async move {
        if let Err(e) = service.run(starts).await {
            tracing::error!(error = %e, "request service stopped");
        }
    });
    tracing::info!(node = %params.node_id, "{READY_LINE}");
    Ok(RunningNode {
        node_id: params.node_id,
        registry,
        stop,
        service,
        drain,
        metrics,
        audit_writer,
        health,
        backup,
        client,
        directory,
        #[cfg(feature = "test-malice")]
        malice,
        #[cfg(feature = "test-malice")]
        transport: test_transport,
    })
}

/// Why `nats.*` cannot be turned into connection options.
#[derive(Debug, thiserror::Error)]
pub enum NatsOptionsError {
    /// `nats.username` without `nats.password` (or the reverse).
    #[error("nats.username and nats.password go together: set both or neither")]
    HalfCredentials,
    /// A `nats.tls.*` file is missing or unreadable.
    #[error("{key}: cannot read {path}: {source}")]
    TlsFile {
        /// The config key.
        key: &'static str,
        /// The path it names.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The NATS connection options of a node config. As the original: in production, TLS is required,
/// the server is verified with `nats.tls.ca_cert`, the node presents `nats.tls.client_cert` /
/// `client_key`, and `nats.username`/`nats.password` are sent; in development nothing of that.
/// The TLS files are checked here so a wrong path is named before any connection attempt.
pub fn nats_options(
    cfg: &mpcium_config::NatsConfig,
    environment: mpcium_config::Environment,
) -> Result<async_nats::ConnectOptions, NatsOptionsError> {
    install_tls_provider();
    let options = async_nats::ConnectOptions::new();
    if environment != mpcium_config::Environment::Production {
        return Ok(options);
    }
    let options = match (&cfg.username, &cfg.password) {
        (Some(user), Some(pass)) => options.user_and_password(user.clone(), pass.expose().to_owned()),
        (None, None) => options,
        _ => return Err(NatsOptionsError::HalfCredentials),
    };
    for (key, path) in [
        ("nats.tls.ca_cert", &cfg.tls.ca_cert),
        ("nats.tls.client_cert", &cfg.tls.client_cert),
        ("nats.tls.client_key", &cfg.tls.client_key),
    ] {
        std::fs::File::open(path).map_err(|source| NatsOptionsError::TlsFile {
            key,
            path: path.clone(),
            source,
        })?;
    }
    Ok(options
        .require_tls(true)
        .add_root_certificates(cfg.tls.ca_cert.clone())
        .add_client_certificate(cfg.tls.client_cert.clone(), cfg.tls.client_key.clone()))
}

/// Why a config's authorization or approval rules cannot be used (the config checked both, so
/// this means the two crates disagree).
#[derive(Debug, thiserror::Error)]
pub enum AuthorizationSetupError {
    /// An authorizer key.
    #[error(transparent)]
    Key(#[from] mpcium_api::verify::KeyParseError),
    /// A rule's `amount_above`.
    #[error("policy rule `{rule}`: amount_above: {source}")]
    Amount {
        /// The rule's name.
        rule: String,
        /// What is wrong with it.
        source: mpcium_api::AmountError,
    },
}

/// The authorization policy of a node config: `authorization.*` and the approval rules of
/// `policy.rules`, which use its keys.
pub fn authorization_policy(
    cfg: &mpcium_config::AuthorizationConfig,
    policy: &mpcium_config::PolicyConfig,
) -> Result<AuthorizationPolicy, AuthorizationSetupError> {
    let mut keys = std::collections::BTreeMap::new();
    for (id, key) in &cfg.authorizer_public_keys {
        keys.insert(id.clone(), api_key(key)?);
    }
    let mut rules = Vec::with_capacity(policy.rules.len());
    for rule in &policy.rules {
        let amount_above = mpcium_api::Amount::parse(&rule.amount_above)
            .map_err(|source| AuthorizationSetupError::Amount { rule: rule.name.clone(), source })?;
        rules.push(mpcium_api::ApprovalRule {
            name: rule.name.clone(),
            network_internal_code: rule.network_internal_code.clone(),
            asset: rule.asset.clone(),
            wallet_ids: rule.wallet_ids.clone(),
            amount_above,
            require_authorizers: rule.require_authorizers.clone(),
            min_authorizers: rule.min_authorizers,
        });
    }
    Ok(AuthorizationPolicy { enabled: cfg.enabled, required: cfg.required_authorizers.clone(), keys, rules })
}

/// Convert a config public key into the verifier's.
pub fn api_key(
    key: &mpcium_config::PublicKey,
) -> Result<mpcium_api::verify::PublicKey, mpcium_api::verify::KeyParseError> {
    match key {
        mpcium_config::PublicKey::Ed25519(bytes) => {
            mpcium_api::verify::PublicKey::parse(mpcium_api::verify::Algorithm::Ed25519, &hex::encode(bytes))
        }
        mpcium_config::PublicKey::P256 { spki_der } => {
            mpcium_api::verify::PublicKey::parse(mpcium_api::verify::Algorithm::P256, &hex::encode(spki_der))
        }
    }
}
