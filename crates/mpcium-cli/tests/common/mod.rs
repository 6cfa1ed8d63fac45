//! What the CLI's integration tests share.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Run `mpcium-cli` in `dir` (where its `config.yaml` is), with no NATS settings inherited from
/// the environment.
// Each test file compiles this module on its own; not every one runs the CLI in a directory.
#[allow(dead_code)]
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

/// The `mpcium-cli` binary under test.
#[allow(dead_code)]
pub fn cli_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mpcium-cli"))
}

/// The `mpcium` node binary next to mpcium-cli, if it has been built (`cargo build -p
/// mpcium-node`; `cargo test --workspace` builds it). Under CI (`CI=true`, set by `.ci/run`) its
/// absence fails the test: a test that skips in CI proves nothing.
#[allow(dead_code)]
pub fn node_binary() -> Option<PathBuf> {
    let path = cli_binary().with_file_name("mpcium");
    if path.is_file() {
        return Some(path);
    }
    assert!(
        !mpcium_testkit::in_ci(),
        "no `mpcium` binary next to {} under CI (cargo build -p mpcium-node)",
        cli_binary().display()
    );
    None
}
