//! `mpcium-cli version`.

/// Prints `mpcium-cli version <crate version>`.
pub fn run() -> anyhow::Result<()> {
    println!("mpcium-cli version {}", env!("CARGO_PKG_VERSION"));
    Ok(())
}
