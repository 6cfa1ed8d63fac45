//! `mpcium-cli generate-initiator`: the event initiator's signing key,
//! `<dir>/<name>.identity.json` and `<dir>/<name>.key` (or `.key.age`).

use std::path::PathBuf;

use clap::Args;
use mpcium_identity::{DEFAULT_INITIATOR_NAME, KeyProtection, create_initiator};

use crate::key_output::{AlgorithmArg, EncryptArgs};

/// Flags of `generate-initiator`.
#[derive(Debug, Args)]
pub struct GenerateInitiatorArgs {
    /// Initiator name (file name prefix).
    #[arg(short = 'n', long, default_value = DEFAULT_INITIATOR_NAME)]
    pub node_name: String,
    /// Directory for the files.
    #[arg(short = 'o', long, default_value = ".")]
    pub output_dir: PathBuf,
    #[command(flatten)]
    pub encrypt: EncryptArgs,
    /// Replace existing files.
    #[arg(short = 'f', long)]
    pub overwrite: bool,
    /// Key algorithm.
    #[arg(short = 'a', long, value_enum, default_value = "ed25519")]
    pub algorithm: AlgorithmArg,
}

/// Runs the command.
pub fn run(args: GenerateInitiatorArgs) -> anyhow::Result<()> {
    let passphrase = args.encrypt.new_passphrase()?;
    let protection = match &passphrase {
        Some(p) => KeyProtection::Passphrase(p),
        None => KeyProtection::Plain,
    };
    let (identity, _key, files) = create_initiator(
        &args.output_dir,
        &args.node_name,
        args.algorithm.into(),
        protection,
        args.overwrite,
    )?;
    println!("Algorithm:   {}", identity.algorithm.as_deref().unwrap_or("ed25519"));
    println!("Public key:  {}  (event_initiator_pubkey)", identity.public_key);
    println!("Identity:    {}", files.identity.display());
    println!("Private key: {}", files.key.display());
    Ok(())
}
