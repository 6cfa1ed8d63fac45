//! `mpcium-cli bans`: the DKLs23 bans the nodes announced in `mpc_bans`. A node bans a
//! counterparty for a wallet's ECDSA key when that counterparty's OT-extension data failed the
//! consistency check; the ban holds until a reshare gives the key a new version. Each node's own
//! store is the authority (it enforces its bans itself); this lists what they announced.

use clap::Args;

use crate::cmd::Context;
use crate::cmd::register_peers::EnvironmentArg;
use crate::nats_client;

/// Flags of `bans`.
#[derive(Debug, Args)]
pub struct BansArgs {
    /// Only this wallet.
    #[arg(short = 'w', long)]
    pub wallet: Option<String>,
    /// Print JSON (one array) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Overrides the config's `environment` (production uses the NATS credentials and TLS files).
    #[arg(short = 'e', long, value_enum)]
    pub environment: Option<EnvironmentArg>,
}

/// Runs the command.
pub fn run(ctx: &Context, args: BansArgs) -> anyhow::Result<()> {
    let config = ctx.client_config(args.environment)?;
    let mut bans = nats_client::runtime()?.block_on(async {
        let client = nats_client::connect(&config).await?;
        let registry = nats_client::open_registry(client, Some(config.nats.replicas)).await?;
        anyhow::Ok(match &args.wallet {
            Some(wallet) => registry.ban_notices(wallet).await?,
            None => registry.all_ban_notices().await?,
        })
    })?;
    bans.sort_by(|a, b| (&a.wallet_id, &a.by, &a.banned).cmp(&(&b.wallet_id, &b.by, &b.banned)));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&bans)?);
        return Ok(());
    }
    if bans.is_empty() {
        println!("no bans");
        return Ok(());
    }
    println!("{:<40} {:<38} {:<38} key version", "wallet", "banned by", "banned node");
    for b in &bans {
        println!("{:<40} {:<38} {:<38} {}", b.wallet_id, b.by, b.banned, b.key_version);
    }
    Ok(())
}
