//! `mpcium-cli version`.

/// Print `mpcium-cli version <version>` like the original.
pub fn run() -> anyhow::Result<()> {
    println!("mpcium-cli version {}", env!("CARGO_PKG_VERSION"));
    Ok(())
}
