//! Command-line interface of the `tidal` binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tidal: an exact, explainable HorizontalPodAutoscaler.
#[derive(Debug, Parser)]
#[command(name = "tidal", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `tidal`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compute one autoscaler decision offline from a decision input (JSON or YAML).
    Calc {
        /// Input file; standard input when absent or `-`.
        file: Option<PathBuf>,
    },
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Calc { file } => crate::calc::run(file.as_deref()),
    }
}
