//! `mpcium-cli recover`: rebuild a node's store from its encrypted backups.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use mpcium_store::backup::DEFAULT_BACKUP_DIR;
use mpcium_store::{StoreOptions, recover};

use super::Context;
use crate::password::{PasswordArgs, current_password};

/// Arguments of `recover`.
#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// Directory holding the `backup-*.enc` files (default: config `backup_dir`, else ./backups).
    #[arg(short = 'b', long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Path of the store file to create.
    #[arg(short = 'r', long, value_name = "PATH")]
    pub recovery_path: PathBuf,
    /// Replace an existing file at the recovery path.
    #[arg(short = 'f', long)]
    pub force: bool,
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// Runs the recovery; the store password is also the backup password.
pub fn run(ctx: &Context, args: RecoverArgs) -> anyhow::Result<()> {
    let config = ctx.store_config()?;
    let backup_dir = args
        .backup_dir
        .or_else(|| config.backup_dir.clone().filter(|d| !d.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_BACKUP_DIR));
    let password = current_password(&args.password, &config, "backup encryption key (store password)")?;
    let report = recover(
        &backup_dir,
        &args.recovery_path,
        password.as_bytes(),
        &StoreOptions::production(),
        args.force,
    )
    .with_context(|| format!("recovery from {} failed", backup_dir.display()))?;
    println!(
        "recovered {} keys of node {} from {} backup files into {}",
        report.keys,
        report.node_name,
        report.files.len(),
        args.recovery_path.display()
    );
    Ok(())
}
