//! The `tidal` binary's command line: the clap definition, the dispatch, and one module per
//! subcommand. `tidal operator` hands over to [`crate::runtime`]; every other subcommand lives
//! here. (`crate::convert` is the reconciler's object conversion; `tidal convert` is
//! [`convert`] in this folder.)

pub mod calc;
pub mod cluster;
pub mod convert;
pub mod doctor;
pub mod explain;
mod input;
pub mod simulate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

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
    Convert(convert::ConvertArgs),
    /// Explain an AutoScaler's last decision step by step (`--now`: recompute from live data).
    Explain(Box<explain::ExplainArgs>),
    /// Diagnose the resource-metrics pipeline (APIService, metrics-server, PodMetrics, requests).
    Doctor(doctor::DoctorArgs),
    /// Replay a demand trace through the decision core offline and report/plot the replicas.
    Simulate(Box<simulate::SimulateArgs>),
}

/// The name the binary goes by when invoked as `argv0`: `kubectl tidal` when kubectl runs it
/// as a plugin (the file is `kubectl-tidal`, perhaps with an extension), else `tidal`.
pub fn invoked_name(argv0: &std::ffi::OsStr) -> &'static str {
    let file = std::path::Path::new(argv0)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("");
    if file == "kubectl-tidal" {
        "kubectl tidal"
    } else {
        "tidal"
    }
}

/// Parses a command line (exits with clap's usage error on bad arguments), naming the
/// program after how it was invoked.
pub fn parse_from(args: impl IntoIterator<Item = std::ffi::OsString>) -> Cli {
    let args: Vec<std::ffi::OsString> = args.into_iter().collect();
    let name = args.first().map_or("tidal", |argv0| invoked_name(argv0));
    let matches = Cli::command()
        .name(name)
        .bin_name(name)
        .get_matches_from(args);
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Calc { file } => calc::run(file.as_deref()),
        Command::Operator(args) => run_operator(*args),
        Command::Convert(args) => convert::run(&args),
        Command::Explain(args) => explain::run(*args),
        Command::Doctor(args) => doctor::run(args),
        Command::Simulate(args) => simulate::run(*args),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn the_plugin_file_name_makes_it_kubectl_tidal() {
        assert_eq!(
            invoked_name(OsStr::new("/usr/local/bin/kubectl-tidal")),
            "kubectl tidal"
        );
        assert_eq!(
            invoked_name(OsStr::new("kubectl-tidal.exe")),
            "kubectl tidal"
        );
        assert_eq!(invoked_name(OsStr::new("/usr/bin/tidal")), "tidal");
        assert_eq!(invoked_name(OsStr::new("tidal-dev")), "tidal");
        let help = Cli::command()
            .name("kubectl tidal")
            .bin_name("kubectl tidal")
            .render_help();
        assert!(help.to_string().contains("kubectl tidal"), "{help}");
    }
}
