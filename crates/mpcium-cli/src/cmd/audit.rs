//! `mpcium-cli audit`: the nodes' audit trail (stream `mpc-audit`, see the node's
//! `audit` module). `show` lists entries, picked by wallet, transaction or time; `verify` checks
//! every node's hash chain and signatures against the nodes' identity public keys
//! (`<dir>/*_identity.json`, as a node reads its peers) and exits non-zero naming the first bad
//! entry of each chain that does not check.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use mpcium_registry::audit::{AuditEntry, trail};

use crate::cmd::Context;
use crate::cmd::register_peers::EnvironmentArg;
use crate::nats_client;

/// Flags of `audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Overrides the config's `environment` (production uses the NATS credentials and TLS files).
    #[arg(short = 'e', long, value_enum, global = true)]
    pub environment: Option<EnvironmentArg>,
    #[command(subcommand)]
    pub command: AuditCommand,
}

/// `audit show` or `audit verify`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit entries (every node's, in stream order).
    Show(ShowArgs),
    /// Check every node's chain: signatures, sequence numbers without gaps, hash links.
    Verify(VerifyArgs),
}

/// Flags of `audit show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Only this wallet.
    #[arg(short = 'w', long)]
    pub wallet: Option<String>,
    /// Only this transaction id.
    #[arg(short = 't', long)]
    pub tx: Option<String>,
    /// Only entries whose work ended at or after this time (RFC 3339, e.g. 2026-01-31T12:00:00Z).
    #[arg(long, value_name = "RFC3339")]
    pub since: Option<String>,
    /// Print JSON (one array of entries) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `audit verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Directory of the nodes' `<name>_identity.json` files.
    #[arg(long, value_name = "DIR", default_value = "identity")]
    pub identity_dir: PathBuf,
}

/// Runs the command.
pub fn run(ctx: &Context, args: AuditArgs) -> anyhow::Result<()> {
    let config = ctx.client_config(args.environment)?;
    let stored = nats_client::runtime()?.block_on(async {
        let client = nats_client::connect(&config).await?;
        let js = async_nats::jetstream::new(client);
        anyhow::Ok(trail::read_all(&js).await?)
    })?;
    match args.command {
        AuditCommand::Show(a) => show(&stored, a),
        AuditCommand::Verify(a) => verify(&stored, a),
    }
}

fn show(stored: &[trail::StoredEntry], args: ShowArgs) -> anyhow::Result<()> {
    let since_ms = args
        .since
        .as_deref()
        .map(mpcium_identity::parse_rfc3339_ms)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let filter = trail::Filter { wallet: args.wallet, tx: args.tx, since_ms };
    let entries = trail::select(stored, &filter);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    if entries.is_empty() {
        println!("no audit entries");
        return Ok(());
    }
    println!("{}", render_header());
    for e in &entries {
        println!("{}", render_row(e));
    }
    Ok(())
}

fn render_header() -> String {
    format!(
        "{:<20} {:<38} {:>6} {:<8} {:<8} {:<24} {:<24} {:<12} {:<32} {:<16} participants",
        "finished (UTC)", "node", "seq", "kind", "op", "wallet", "tx", "outcome", "error", "policy"
    )
}

fn render_row(e: &AuditEntry) -> String {
    let r = &e.record;
    let kind =
        serde_json::to_value(r.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    let outcome =
        serde_json::to_value(r.outcome).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    format!(
        "{:<20} {:<38} {:>6} {:<8} {:<8} {:<24} {:<24} {:<12} {:<32} {:<16} {}",
        mpcium_identity::rfc3339_utc(r.finished_at_ms / 1000),
        e.node_id,
        e.seq,
        kind,
        r.operation,
        r.wallet_id,
        r.tx_id.as_deref().unwrap_or("-"),
        outcome,
        r.error_code.as_deref().unwrap_or("-"),
        if r.policy.is_empty() { "-".to_owned() } else { r.policy.join(",") },
        r.participants.join(",")
    )
}

fn verify(stored: &[trail::StoredEntry], args: VerifyArgs) -> anyhow::Result<()> {
    let keys: HashMap<_, _> = mpcium_identity::load_peer_public_keys(&args.identity_dir)
        .with_context(|| format!("cannot read the nodes' identities in {}", args.identity_dir.display()))?
        .into_iter()
        .map(|(id, k)| (id, k.public_key))
        .collect();
    let report = trail::verify(stored, &keys);
    for (node, n) in &report.checked {
        println!("{node}: {n} entries, chain intact");
    }
    for p in &report.problems {
        println!("{p}");
    }
    match report.problems.first() {
        None => {
            println!("audit trail verified: {} entries of {} node(s)", stored.len(), report.checked.len());
            Ok(())
        }
        Some(first) => anyhow::bail!(
            "audit trail does not verify ({} chain(s) broken); first bad entry: {first}",
            report.problems.len()
        ),
    }
}
