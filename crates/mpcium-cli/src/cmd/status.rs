//! `mpcium-cli status`: the cluster at a glance. Peers and readiness come from the registry
//! (NATS KV, reached as `-c config.yaml` / `NATS_URL` say); versions, presignature pools,
//! requests, bans and the latest errors from each node's `/metrics` (`--metrics host:port`, the
//! nodes' `healthcheck.address`; repeat per node).

use clap::Args;
use mpcium_registry::status::ClusterStatus;

use crate::cmd::Context;
use crate::cmd::register_peers::EnvironmentArg;
use crate::nats_client;

/// Flags of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A node's `healthcheck.address` (`host:port`), whose `/metrics` is read; repeat per node.
    #[arg(short = 'm', long = "metrics", value_name = "host:port")]
    pub metrics: Vec<String>,
    /// Overrides the config's `environment` (production uses the NATS credentials and TLS files).
    #[arg(short = 'e', long, value_enum)]
    pub environment: Option<EnvironmentArg>,
    /// Exit with status 1 unless every registered peer is ready and every metrics address answered.
    #[arg(long)]
    pub check: bool,
}

/// Runs the command.
pub fn run(ctx: &Context, args: StatusArgs) -> anyhow::Result<()> {
    let config = ctx.client_config(args.environment)?;
    let status = nats_client::runtime()?.block_on(async {
        let client = nats_client::connect(&config).await?;
        let registry = nats_client::open_registry(client, Some(config.nats.replicas)).await?;
        anyhow::Ok(ClusterStatus::collect(&registry, &args.metrics).await?)
    })?;
    print!("{}", status.render(mpcium_registry::now_ms()));
    if args.check {
        let ready = status.ready_count();
        if ready < status.peers.len() || !status.metrics_problems.is_empty() {
            anyhow::bail!(
                "{ready} of {} peers ready, {} metrics address(es) failed",
                status.peers.len(),
                status.metrics_problems.len()
            );
        }
    }
    Ok(())
}
