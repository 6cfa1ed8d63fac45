//! What the CLI's integration tests share.

use std::path::Path;
use std::process::{Command, Output};

/// Run `mpcium-cli` in `dir` (where its `config.yaml` is), with no NATS settings inherited from
/// the environment.
pub fn cli_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mpcium-cli"))
        .args(args)
        .current_dir(dir)
        .env_remove("NATS_URL")
        .env_remove("ENVIRONMENT")
        .output()
        .unwrap()
}
