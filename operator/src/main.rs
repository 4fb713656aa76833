//! The `tidal` binary: parse arguments and hand over.

use clap::Parser;

fn main() -> std::process::ExitCode {
    tidal::cli::run(tidal::cli::Cli::parse())
}
