//! `mpcium-cli rekey`: change a store's password, atomically.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use mpcium_store::StoreOptions;
use mpcium_store::rekey::{change_password, rotate_data_key};

use super::Context;
use crate::password::{PasswordArgs, current_password, prompt_twice, read_password_file};

/// Arguments of `rekey`.
#[derive(Debug, Args)]
pub struct RekeyArgs {
    /// Path of the store file.
    #[arg(long, value_name = "PATH")]
    pub db_path: PathBuf,
    /// File whose trimmed content is the new password (otherwise prompted twice).
    #[arg(long, value_name = "FILE")]
    pub new_password_file: Option<PathBuf>,
    /// Also re-encrypt every value under a new data key (written to a new file, then renamed
    /// over the old one).
    #[arg(long)]
    pub rotate_data_key: bool,
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// Runs the password change.
pub fn run(ctx: &Context, args: RekeyArgs) -> anyhow::Result<()> {
    let config = ctx.store_config()?;
    let old = current_password(&args.password, &config, "current store password")?;
    let new = match &args.new_password_file {
        Some(path) => read_password_file(path)?,
        None => prompt_twice("new store password")?,
    };
    if *old == *new {
        anyhow::bail!("the new password is the same as the current one");
    }
    let options = StoreOptions::production();
    let path = &args.db_path;
    if args.rotate_data_key {
        rotate_data_key(path, old.as_bytes(), new.as_bytes(), &options)
            .with_context(|| format!("rekey of {} failed; the store is unchanged", path.display()))?;
        println!("re-encrypted {} under a new data key and password", path.display());
    } else {
        change_password(path, old.as_bytes(), new.as_bytes(), &options)
            .with_context(|| format!("rekey of {} failed; the store is unchanged", path.display()))?;
        println!("changed the password of {}", path.display());
    }
    Ok(())
}
