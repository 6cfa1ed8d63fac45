//! `mpcium-cli generate-identity`: a node's Ed25519 identity, `<dir>/<node>_identity.json` and
//! `<dir>/<node>_private.key` (or `.key.age` with `--encrypt`).

use std::path::PathBuf;

use clap::Args;
use mpcium_identity::{
    DEFAULT_IDENTITY_DIR, DEFAULT_PEERS_FILE, IdentityError, KeyProtection, Peers, generate_node_identity,
    write_node_identity,
};

use crate::key_output::EncryptArgs;

/// Flags of `generate-identity`.
#[derive(Debug, Args)]
pub struct GenerateIdentityArgs {
    /// Node name (must be listed in the peers file).
    #[arg(short = 'n', long)]
    pub node: String,
    /// The peers file giving the node's ID.
    #[arg(short = 'p', long, default_value = DEFAULT_PEERS_FILE)]
    pub peers: PathBuf,
    /// Directory for the identity files.
    #[arg(short = 'o', long, default_value = DEFAULT_IDENTITY_DIR)]
    pub output_dir: PathBuf,
    #[command(flatten)]
    pub encrypt: EncryptArgs,
    /// Replace existing files.
    #[arg(short = 'f', long)]
    pub overwrite: bool,
}

/// Runs the command.
pub fn run(args: GenerateIdentityArgs) -> anyhow::Result<()> {
    // Like the original, ask for the passphrase before doing anything else.
    let passphrase = args.encrypt.new_passphrase()?;
    let peers = Peers::load(&args.peers)?;
    let node_id = peers
        .node_id(&args.node)
        .ok_or_else(|| IdentityError::UnknownNode { node: args.node.clone(), path: args.peers.clone() })?;
    let (identity, key) = generate_node_identity(&args.node, node_id)?;
    let protection = match &passphrase {
        Some(p) => KeyProtection::Passphrase(p),
        None => KeyProtection::Plain,
    };
    let files = write_node_identity(&args.output_dir, &identity, &key, protection, args.overwrite)?;
    println!("Node:        {} ({})", identity.node_name, identity.node_id);
    println!("Public key:  {}", identity.public_key);
    println!("Identity:    {}", files.identity.display());
    println!("Private key: {}", files.private_key.display());
    Ok(())
}
