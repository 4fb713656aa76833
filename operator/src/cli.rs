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
    /// Run the controller.
    Operator(Box<crate::args::OperatorArgs>),
    /// Print the AutoScaler CustomResourceDefinition YAML.
    Crd,
    /// Convert an autoscaling/v2 HorizontalPodAutoscaler to an AutoScaler, or back with `--to hpa`.
    Convert(crate::hpa::ConvertArgs),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Calc { file } => crate::calc::run(file.as_deref()),
        Command::Operator(args) => run_operator(*args),
        Command::Convert(args) => crate::hpa::run(&args),
        Command::Crd => match tidal_crds::crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("tidal crd: {err}");
                ExitCode::FAILURE
            }
        },
    }
}

fn run_operator(args: crate::args::OperatorArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("tidal operator: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(crate::runtime::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tidal operator: {err:#}");
            ExitCode::FAILURE
        }
    }
}
