//! What the CLI's integration tests share.

use std::path::{Path, PathBuf};
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

/// Write a development `config.yaml` pointing at `nats_url` into `dir`; its path.
// Each test file compiles this module on its own; not every one writes a config.
#[allow(dead_code)]
pub fn dev_config(dir: &Path, nats_url: &str) -> PathBuf {
    let config = dir.join("config.yaml");
    std::fs::write(&config, format!("environment: development\nnats:\n  url: \"{nats_url}\"\n")).unwrap();
    config
}
