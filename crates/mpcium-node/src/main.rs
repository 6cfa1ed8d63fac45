//! `mpcium`: the node daemon. `mpcium start -n node0` with the original's flags; `mpcium version`.
//!
//! Files are read from the working directory as the original does: `identity/` (this node's key
//! and every peer's `<name>_identity.json`) and `peers.json` (or `--peers`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand};
use mpcium_config::{Environment, NodeConfig, NodeOverrides, SecretString};
use mpcium_node::daemon::{NodeParams, api_key, authorization_policy, nats_options, start};
use mpcium_node::service::ServiceConfig;
use mpcium_store::{BackupConfig, Store, StoreOptions};

#[derive(Parser)]
#[command(name = "mpcium", disable_version_flag = true, about = "mpcium MPC wallet node")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the node.
    Start(StartArgs),
    /// Print the version.
    Version,
}

#[derive(clap::Args)]
struct StartArgs {
    /// Node name (a key of peers.json).
    #[arg(short = 'n', long = "name")]
    name: String,
    /// Config file (default: ./config.yaml, /etc/mpcium/config.yaml, $HOME/.mpcium/config.yaml).
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
    /// Read identity/<name>_private.key.age (age, passphrase) instead of the plain key.
    #[arg(short = 'd', long = "decrypt-private-key")]
    decrypt_private_key: bool,
    /// Prompt for the store password (twice, no echo).
    #[arg(short = 'p', long = "prompt-credentials")]
    prompt_credentials: bool,
    /// File holding the store password.
    #[arg(short = 'f', long = "password-file")]
    password_file: Option<PathBuf>,
    /// File holding the identity key's age passphrase.
    #[arg(short = 'k', long = "identity-password-file")]
    identity_password_file: Option<PathBuf>,
    /// peers.json to read (default ./peers.json); its peers are also registered in NATS KV.
    #[arg(long = "peers")]
    peers: Option<PathBuf>,
    /// Debug logging.
    #[arg(long)]
    debug: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!("mpcium version {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Start(args) => {
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("mpcium: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("mpcium: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn read_secret_file(path: &PathBuf, what: &str) -> Result<SecretString> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {what} file {}", path.display()))?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        bail!("{what} file {} is empty", path.display());
    }
    Ok(SecretString::new(trimmed.to_owned()))
}

fn init_logging(environment: Option<Environment>, debug: bool) {
    let level = if debug { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MPCIUM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},async_nats=warn")));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if environment == Some(Environment::Production) {
        builder.json().with_writer(std::io::stdout).init();
    } else {
        builder.with_writer(std::io::stderr).init();
    }
}

async fn run(args: StartArgs) -> Result<()> {
    // Passwords: file, then prompt, then the config (the original's precedence).
    let badger_password = match (&args.password_file, args.prompt_credentials) {
        (Some(path), _) => Some(read_secret_file(path, "password")?),
        (None, true) => {
            let a = rpassword::prompt_password("Store password: ").context("cannot read the password")?;
            let b =
                rpassword::prompt_password("Confirm store password: ").context("cannot read the password")?;
            if a != b {
                bail!("the passwords do not match");
            }
            Some(SecretString::new(a))
        }
        (None, false) => None,
    };
    let loaded = NodeConfig::load(args.config.as_deref(), NodeOverrides { badger_password })
        .map_err(|e| anyhow!("config: {e}"))?;
    let cfg = loaded.config;
    init_logging(Some(cfg.environment), args.debug);
    tracing::info!(config = %loaded.path.display(), "mpcium {} starting", env!("CARGO_PKG_VERSION"));
    for w in &loaded.warnings {
        tracing::warn!("config: {w}");
    }

    let peers_path = args.peers.clone().unwrap_or_else(|| PathBuf::from("peers.json"));
    let peers = mpcium_identity::Peers::load(&peers_path).map_err(|e| anyhow!("{e}"))?;
    let node_id = peers
        .node_id(&args.name)
        .ok_or_else(|| anyhow!("node {} is not in {}", args.name, peers_path.display()))?
        .to_owned();
    let identity_dir = PathBuf::from("identity");
    let passphrase = if args.decrypt_private_key {
        Some(match &args.identity_password_file {
            Some(path) => read_secret_file(path, "identity passphrase")?,
            None => SecretString::new(
                rpassword::prompt_password("Identity key passphrase: ")
                    .context("cannot read the passphrase")?,
            ),
        })
    } else {
        None
    };
    let identity = mpcium_identity::load_node_signing_key(
        &identity_dir,
        &args.name,
        passphrase.as_ref().map(|p| p.expose()),
    )
    .map_err(|e| anyhow!("identity: {e}"))?;
    let peer_keys =
        mpcium_identity::load_peer_public_keys(&identity_dir).map_err(|e| anyhow!("identity: {e}"))?;
    mpcium_identity::check_peer_keys(&peers, &peer_keys, &peers_path).map_err(|e| anyhow!("{e}"))?;
    let peer_map: HashMap<String, _> = peer_keys.into_iter().map(|(id, k)| (id, k.public_key)).collect();

    let db_path = cfg.db_path.join(format!("{}.db", args.name));
    if let Some(parent) = db_path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let store =
        Store::open_or_create(&db_path, cfg.badger_password.expose().as_bytes(), &StoreOptions::production())
            .map_err(|e| anyhow!("store {}: {e}", db_path.display()))?;
    let backup = cfg.backup.enabled.then(|| {
        let mut b = BackupConfig::new(args.name.clone());
        b.dir = cfg.backup.dir.clone();
        b.period = cfg.backup.period;
        b
    });

    let nats_options = nats_options(&cfg.nats, cfg.environment).map_err(|e| anyhow!("{e}"))?;
    let initiator = api_key(&cfg.event_initiator).map_err(|e| anyhow!("event_initiator_pubkey: {e}"))?;
    let authorization =
        authorization_policy(&cfg.authorization, &cfg.policy).map_err(|e| anyhow!("authorization: {e}"))?;
    let register_peers = if args.peers.is_some() {
        peers.iter().map(|(n, i)| (n.to_owned(), i.to_owned())).collect()
    } else {
        Vec::new()
    };
    let params = NodeParams {
        node_id,
        node_name: args.name.clone(),
        identity,
        peers: peer_map,
        nats_url: cfg.nats.url.clone(),
        nats_options,
        store: Arc::new(store),
        backup,
        heartbeat: cfg.node.heartbeat,
        service: ServiceConfig {
            threshold: cfg.mpc_threshold as u32,
            chain_code: cfg.chain_code,
            initiator,
            authorization,
            strict_requests: cfg.security.strict_requests,
            max_concurrent_keygen: cfg.max_concurrent_keygen,
            max_concurrent_signing: cfg.max_concurrent_signing,
            max_request_bytes: cfg.limits.max_request_bytes,
            limits: mpcium_node::limits::LimitSettings {
                requests: cfg.limits.requests_per_second,
                peer_messages: cfg.limits.peer_messages,
            },
            session_timeout: Duration::from_secs(30),
            key_pool: mpcium_node::keypool::KeyPoolSettings { size: cfg.key_pool.size },
            presign: mpcium_node::presign::PresignSettings {
                pool_size: cfg.presign.pool_size,
                wallets: cfg.presign.wallets.clone(),
            },
            replicas: cfg.nats.replicas,
            pulls_requests: true,
        },
        register_peers,
        health_address: cfg.healthcheck.enabled.then(|| cfg.healthcheck.bind_address()),
    };
    let node = start(params).await.map_err(|e| anyhow!("{e}"))?;
    wait_for_signal().await;
    tracing::info!("shutting down: draining requests in flight (a second signal stops at once)");
    // A second SIGINT/SIGTERM cuts the drain short: requests not acked are redelivered by
    // JetStream to the other nodes.
    tokio::select! {
        report = node.shutdown() => {
            tracing::info!(in_flight = report.in_flight_at_start, abandoned = report.abandoned, "drained");
        }
        _ = wait_for_signal() => tracing::warn!("second signal: stopping without waiting"),
    }
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
