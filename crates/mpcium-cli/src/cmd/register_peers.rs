//! `mpcium-cli register-peers`: writes every `name → node id` of a peers file into the
//! registry's `mpc_peers` KV bucket (the original wrote Consul `mpc_peers/<name>`).
//!
//! A name already registered with the same id is skipped. A name registered with a different id
//! is a conflict: every conflict is reported and nothing is written, so a wrong peers file
//! cannot half-overwrite the membership of a running cluster.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use mpcium_config::Environment;
use mpcium_identity::{DEFAULT_PEERS_FILE, Peers};
use mpcium_registry::{Registry, RegistryError};

use crate::cmd::Context;
use crate::nats_client;

/// Flags of `register-peers`.
#[derive(Debug, Args)]
pub struct RegisterPeersArgs {
    /// The peers file (JSON object node name → node id).
    #[arg(short = 'p', long, default_value = DEFAULT_PEERS_FILE)]
    pub peers: PathBuf,
    /// Overrides the config's `environment` (production uses the NATS credentials and TLS files).
    #[arg(short = 'e', long, value_enum)]
    pub environment: Option<EnvironmentArg>,
}

/// `-e/--environment`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EnvironmentArg {
    /// TLS and credentials from the config.
    Production,
    /// Plain connection to `nats.url`.
    Development,
}

impl From<EnvironmentArg> for Environment {
    fn from(e: EnvironmentArg) -> Self {
        match e {
            EnvironmentArg::Production => Environment::Production,
            EnvironmentArg::Development => Environment::Development,
        }
    }
}

/// What one peer's registration did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Newly written.
    Registered,
    /// Already registered with the same id.
    Skipped,
}

/// A name registered with another id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// Node name.
    pub name: String,
    /// The id in the registry.
    pub existing: String,
    /// The id in the peers file.
    pub wanted: String,
}

/// Why registering failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// Some names are registered with other ids; nothing was written.
    #[error("{}", describe_conflicts(.0))]
    Conflicts(Vec<Conflict>),
    /// The registry failed.
    #[error(transparent)]
    Registry(RegistryError),
}

fn describe_conflicts(conflicts: &[Conflict]) -> String {
    let lines: Vec<String> = conflicts
        .iter()
        .map(|c| format!("  {}: registered id {}, peers file says {}", c.name, c.existing, c.wanted))
        .collect();
    format!(
        "conflict: {} peer(s) already registered with a different node id (nothing was written):\n{}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// Registers every peer (in name order). Conflicts are checked for all peers before anything is
/// written; a conflict appearing concurrently is still refused by the registry.
pub async fn register_all(
    registry: &Registry,
    peers: &Peers,
) -> Result<Vec<(String, Outcome)>, RegisterError> {
    let existing = registry.peers().await.map_err(RegisterError::Registry)?;
    let conflicts: Vec<Conflict> = peers
        .iter()
        .filter_map(|(name, id)| match existing.get(name) {
            Some(current) if current != id => {
                Some(Conflict { name: name.to_owned(), existing: current.clone(), wanted: id.to_owned() })
            }
            _ => None,
        })
        .collect();
    if !conflicts.is_empty() {
        return Err(RegisterError::Conflicts(conflicts));
    }
    let mut outcomes = Vec::with_capacity(peers.len());
    for (name, id) in peers.iter() {
        let outcome = match registry.register_peer(name, id).await {
            Ok(true) => Outcome::Registered,
            Ok(false) => Outcome::Skipped,
            Err(RegistryError::Conflict { name, existing, wanted }) => {
                return Err(RegisterError::Conflicts(vec![Conflict { name, existing, wanted }]));
            }
            Err(e) => return Err(RegisterError::Registry(e)),
        };
        outcomes.push((name.to_owned(), outcome));
    }
    Ok(outcomes)
}

/// Runs the command.
pub fn run(ctx: &Context, args: RegisterPeersArgs) -> anyhow::Result<()> {
    let peers = Peers::load(&args.peers)?;
    let config = ctx.client_config(args.environment)?;
    let outcomes = nats_client::runtime()?.block_on(async {
        let client = nats_client::connect(&config).await?;
        let registry = nats_client::open_registry(client.clone(), Some(config.nats.replicas)).await?;
        let outcomes = register_all(&registry, &peers).await;
        // Make sure the writes reached the server before the process exits.
        let _ = client.flush().await;
        outcomes.with_context(|| format!("registering the peers of {}", args.peers.display()))
    })?;
    let mut registered = 0;
    for (name, outcome) in &outcomes {
        let id = peers.node_id(name).unwrap_or_default();
        match outcome {
            Outcome::Registered => {
                registered += 1;
                println!("registered {name} = {id}");
            }
            Outcome::Skipped => println!("skipped    {name} = {id} (already registered)"),
        }
    }
    println!(
        "{registered} registered, {} skipped, in NATS KV bucket {} at {}",
        outcomes.len() - registered,
        mpcium_registry::PEERS_BUCKET,
        config.nats.url
    );
    Ok(())
}
