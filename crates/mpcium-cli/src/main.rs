//! `mpcium-cli`: the operator's tool. One module per command under `cmd/`; this file only parses
//! the command line and dispatches.

mod cmd;

use clap::{Parser, Subcommand};

/// Operator CLI for an mpcium cluster.
#[derive(Parser)]
#[command(name = "mpcium-cli", disable_version_flag = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the version.
    Version,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Version => cmd::version::run(),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
