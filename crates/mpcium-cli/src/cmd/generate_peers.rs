//! `mpcium-cli generate-peers`: writes `peers.json` (node name → random UUID v4 node ID).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use mpcium_identity::{DEFAULT_PEERS_FILE, Peers};

/// Flags of `generate-peers`.
#[derive(Debug, Args)]
pub struct GeneratePeersArgs {
    /// Number of nodes (names node0 … node{n-1}).
    #[arg(short = 'n', long, value_parser = clap::value_parser!(u16).range(1..))]
    pub number: u16,
    /// Output file; an existing file is never replaced.
    #[arg(short = 'o', long, default_value = DEFAULT_PEERS_FILE)]
    pub output: PathBuf,
}

/// Runs the command.
pub fn run(args: GeneratePeersArgs) -> anyhow::Result<()> {
    let peers = Peers::generate(usize::from(args.number))?;
    peers.write(&args.output, false).with_context(|| format!("cannot write {}", args.output.display()))?;
    println!("Generated {} peers in {}", peers.len(), args.output.display());
    Ok(())
}
