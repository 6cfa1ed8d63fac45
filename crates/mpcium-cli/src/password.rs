//! Where passwords come from: a file, a prompt, or the config; never a command-line value.
//!
//! Precedence for the current password (as the original): `--password-file`, then
//! `--prompt-password`, then `BADGER_PASSWORD` / config `badger_password`, then an interactive
//! prompt when stdin is a terminal.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;
use zeroize::Zeroizing;

use crate::config::StoreConfig;

/// Flags selecting the source of the store password.
#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// File whose trimmed content is the store password (an empty file is an error).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Prompt for the store password (no echo), overriding the config.
    #[arg(short = 'p', long)]
    pub prompt_password: bool,
}

/// Reads a password file: trimmed content, empty is an error.
pub fn read_password_file(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    let raw = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read password file {}", path.display()))?,
    );
    let trimmed = Zeroizing::new(raw.trim().to_owned());
    if trimmed.is_empty() {
        bail!("password file {} is empty", path.display());
    }
    Ok(trimmed)
}

fn prompt(label: &str) -> anyhow::Result<Zeroizing<String>> {
    let pw = Zeroizing::new(
        rpassword::prompt_password(label).context("cannot read the password from the terminal")?,
    );
    if pw.is_empty() {
        bail!("empty password");
    }
    Ok(pw)
}

/// Prompts twice and requires both entries to match.
pub fn prompt_twice(label: &str) -> anyhow::Result<Zeroizing<String>> {
    let first = prompt(&format!("{label}: "))?;
    let second = prompt(&format!("Confirm {label}: "))?;
    if *first != *second {
        bail!("the two {label} entries do not match");
    }
    Ok(first)
}

/// Resolves the current store password (`what` names it in prompts and errors).
pub fn current_password(
    args: &PasswordArgs,
    config: &StoreConfig,
    what: &str,
) -> anyhow::Result<Zeroizing<String>> {
    if let Some(path) = &args.password_file {
        return read_password_file(path);
    }
    if args.prompt_password {
        return prompt(&format!("{what}: "));
    }
    if let Some(pw) = config.password() {
        return Ok(pw);
    }
    if std::io::stdin().is_terminal() {
        return prompt(&format!("{what}: "));
    }
    bail!(
        "no {what}: give --password-file, --prompt-password, BADGER_PASSWORD or badger_password in the config"
    )
}
