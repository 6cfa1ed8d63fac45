//! `mpcium-cli generate-authorizer`: an authorizer's signing key,
//! `<dir>/<name>.authorizer.identity.json` and `<dir>/<name>.authorizer.key` (or `.key.age`).

use std::path::PathBuf;

use clap::Args;
use mpcium_identity::{KeyProtection, create_authorizer, validate_authorizer_name};

use crate::key_output::{AlgorithmArg, EncryptArgs};

/// Flags of `generate-authorizer`.
#[derive(Debug, Args)]
pub struct GenerateAuthorizerArgs {
    /// Authorizer name (`^[a-zA-Z0-9_-]+$`); its ID in `authorization.authorizer_public_keys`.
    #[arg(short = 'n', long)]
    pub name: String,
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
pub fn run(args: GenerateAuthorizerArgs) -> anyhow::Result<()> {
    // Reject a bad name before asking for a passphrase.
    validate_authorizer_name(&args.name)?;
    let passphrase = args.encrypt.new_passphrase()?;
    let protection = match &passphrase {
        Some(p) => KeyProtection::Passphrase(p),
        None => KeyProtection::Plain,
    };
    let (identity, _key, files) =
        create_authorizer(&args.output_dir, &args.name, args.algorithm.into(), protection, args.overwrite)?;
    println!("Authorizer:  {} ({})", identity.name, identity.algorithm);
    println!("Public key:  {}", identity.public_key);
    println!("Identity:    {}", files.identity.display());
    println!("Private key: {}", files.key.display());
    Ok(())
}
