//! Flags and passphrase handling shared by the commands that write key files
//! (`generate-identity`, `generate-initiator`, `generate-authorizer`).
//!
//! A key-file passphrase comes from the terminal (asked twice, no echo) or, for scripts and
//! tests, from `--passphrase-file`; never from a command-line value.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use mpcium_identity::{SignerAlgorithm, confirm_new_passphrase, validate_new_passphrase};
use zeroize::Zeroizing;

/// `-e/--encrypt` and `--passphrase-file`.
#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// Encrypt the private key with a passphrase (age/scrypt, `.age` file).
    #[arg(short = 'e', long)]
    pub encrypt: bool,
    /// Read the passphrase from this file (first line) instead of asking on the terminal.
    #[arg(long, value_name = "FILE", requires = "encrypt")]
    pub passphrase_file: Option<PathBuf>,
}

impl EncryptArgs {
    /// The new passphrase when `--encrypt` is set, checked against the rules
    /// (≥ 12 characters, ≥ 1 that is not a letter or digit).
    pub fn new_passphrase(&self) -> anyhow::Result<Option<Zeroizing<String>>> {
        if !self.encrypt {
            return Ok(None);
        }
        let passphrase = match &self.passphrase_file {
            Some(path) => {
                let passphrase = read_passphrase_file(path)?;
                validate_new_passphrase(&passphrase)
                    .with_context(|| format!("passphrase in {}", path.display()))?;
                passphrase
            }
            None => prompt_new_passphrase()?,
        };
        Ok(Some(passphrase))
    }
}

/// The first line of `path` (without its line ending; other whitespace is kept).
fn read_passphrase_file(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    let content = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read passphrase file {}", path.display()))?,
    );
    let first_line = content.lines().next().unwrap_or("");
    if first_line.is_empty() {
        bail!("passphrase file {} is empty", path.display());
    }
    Ok(Zeroizing::new(first_line.to_owned()))
}

fn prompt_new_passphrase() -> anyhow::Result<Zeroizing<String>> {
    let read = |label: &str| -> anyhow::Result<Zeroizing<String>> {
        rpassword::prompt_password(label).map(Zeroizing::new).context(
            "cannot read the passphrase from the terminal (use --passphrase-file when not interactive)",
        )
    };
    let first = read("Enter passphrase to encrypt the private key: ")?;
    let second = read("Confirm passphrase: ")?;
    confirm_new_passphrase(&first, &second)?;
    Ok(first)
}

/// `-a/--algorithm` of initiator and authorizer keys.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AlgorithmArg {
    /// Ed25519 (default).
    Ed25519,
    /// ECDSA P-256.
    P256,
}

impl From<AlgorithmArg> for SignerAlgorithm {
    fn from(a: AlgorithmArg) -> Self {
        match a {
            AlgorithmArg::Ed25519 => SignerAlgorithm::Ed25519,
            AlgorithmArg::P256 => SignerAlgorithm::P256,
        }
    }
}
