//! `mpcium-cli`: operator tool for mpcium nodes.
//!
//! Each command lives in its own module under [`cmd`]; `main` only parses arguments and
//! dispatches.

mod cmd;
mod config;
mod key_output;
mod nats_client;
mod password;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Command-line interface of `mpcium-cli`.
#[derive(Debug, Parser)]
#[command(name = "mpcium-cli", about = "Operator tool for mpcium nodes", disable_version_flag = true)]
struct Cli {
    /// Path of the node's config.yaml (the store commands read `badger_password`, `db_path` and
    /// `backup_dir`; register-peers reads `environment` and `nats.*`).
    #[arg(short = 'c', long, global = true, value_name = "config.yaml")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write peers.json: node names node0… with random UUID node IDs.
    GeneratePeers(cmd::generate_peers::GeneratePeersArgs),
    /// Generate a node's Ed25519 identity and private key files.
    GenerateIdentity(cmd::generate_identity::GenerateIdentityArgs),
    /// Generate the event initiator's signing key files.
    GenerateInitiator(cmd::generate_initiator::GenerateInitiatorArgs),
    /// Generate an authorizer's signing key files.
    GenerateAuthorizer(cmd::generate_authorizer::GenerateAuthorizerArgs),
    /// Write every peer of a peers file into the registry (NATS KV bucket `mpc_peers`).
    RegisterPeers(cmd::register_peers::RegisterPeersArgs),
    /// Run a local development cluster: nats-server and n nodes, generated on the first run.
    Devnet(cmd::devnet::DevnetArgs),
    /// Restore a node's store from its encrypted backup files.
    Recover(cmd::recover::RecoverArgs),
    /// Change the store password (optionally re-encrypting every value under a new data key).
    Rekey(cmd::rekey::RekeyArgs),
    /// Load a running cluster with keygen, signing or resharing requests and report throughput
    /// and latency.
    Benchmark(cmd::benchmark::BenchmarkArgs),
    /// List the DKLs23 bans the nodes announced (wallet, banning node, banned node, key version).
    Bans(cmd::bans::BansArgs),
    /// Show the cluster at a glance: peers, readiness, versions, presignature pools, bans and
    /// latest errors (registry in NATS KV, and each node's /metrics given with --metrics).
    Status(cmd::status::StatusArgs),
    /// The nodes' tamper-evident audit trail: `show` lists entries (by wallet, tx, time);
    /// `verify` checks every node's signed hash chain and exits non-zero at a bad entry.
    Audit(cmd::audit::AuditArgs),
    /// Take over an original mpcium node's wallets: `import` stages its shares (from its
    /// stopped Badger store or its backups) for the cluster to convert (MIGRATING.md).
    Migrate(cmd::migrate::MigrateArgs),
    /// Print the version.
    Version,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    let ctx = cmd::Context { config_path: cli.config };
    let result = match cli.command {
        Command::GeneratePeers(args) => cmd::generate_peers::run(args),
        Command::GenerateIdentity(args) => cmd::generate_identity::run(args),
        Command::GenerateInitiator(args) => cmd::generate_initiator::run(args),
        Command::GenerateAuthorizer(args) => cmd::generate_authorizer::run(args),
        Command::RegisterPeers(args) => cmd::register_peers::run(&ctx, args),
        Command::Bans(args) => cmd::bans::run(&ctx, args),
        Command::Devnet(args) => cmd::devnet::run(args),
        Command::Recover(args) => cmd::recover::run(&ctx, args),
        Command::Rekey(args) => cmd::rekey::run(&ctx, args),
        Command::Benchmark(args) => cmd::benchmark::run(&ctx, args),
        Command::Status(args) => cmd::status::run(&ctx, args),
        Command::Audit(args) => cmd::audit::run(&ctx, args),
        Command::Migrate(args) => cmd::migrate::run(&ctx, args),
        Command::Version => cmd::version::run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
