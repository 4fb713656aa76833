//! `tidal-e2e`: the load driver and trace tools, for use by hand or from
//! scripts against the local control plane (see e2e/README.md).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tidal_e2e::driver::Driver;
use tidal_e2e::harness::Harness;
use tidal_e2e::trace::Trace;

#[derive(Parser)]
#[command(name = "tidal-e2e", about = "Tidal's e2e load driver and trace tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply a demand trace to a workload's pods: every tick, each Ready
    /// pod's kwok usage annotations are set to demand ÷ Ready pods.
    Drive {
        /// Namespace of the workload.
        #[arg(short, long)]
        namespace: String,
        /// Label selector of the workload's pods, e.g. app=web.
        #[arg(short = 'l', long)]
        selector: String,
        /// Trace file (.csv: seconds,millicores[,memory]; or .yaml).
        #[arg(short, long)]
        trace: PathBuf,
        /// Milliseconds between ticks.
        #[arg(long, default_value_t = 1000)]
        tick_ms: u64,
        /// CPU millicores set on Running pods that are not Ready.
        #[arg(long, default_value_t = 0.0)]
        idle_millicores: f64,
        /// Start the trace again when it ends, until interrupted.
        #[arg(long)]
        repeat: bool,
    },
    /// Print a trace's demand once per step, to check a trace file.
    Trace {
        /// Trace file.
        trace: PathBuf,
        /// Seconds between printed samples.
        #[arg(long, default_value_t = 10.0)]
        step: f64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Drive {
            namespace,
            selector,
            trace,
            tick_ms,
            idle_millicores,
            repeat,
        } => {
            let trace = Trace::from_path(&trace)?;
            let harness = Harness::connect().await?;
            let driver = Driver::new(harness.client().clone(), &namespace, &selector)
                .tick(Duration::from_millis(tick_ms))
                .idle_millicores(idle_millicores);
            let length = Duration::from_secs_f64(trace.duration_seconds());
            println!("seconds,demand_millicores,pods,ready,per_pod_millicores,patched,failed");
            loop {
                let run = driver.run(&trace, Some(length), |r| {
                    println!(
                        "{:.1},{:.0},{},{},{:.0},{},{}",
                        r.elapsed.as_secs_f64(),
                        r.demand.millicores,
                        r.pods,
                        r.ready,
                        r.per_pod_millicores,
                        r.patched,
                        r.failed
                    );
                });
                tokio::select! {
                    r = run => r.with_context(|| format!("driving {namespace}/{selector}"))?,
                    _ = tokio::signal::ctrl_c() => return Ok(()),
                }
                if !repeat {
                    return Ok(());
                }
            }
        }
        Command::Trace { trace, step } => {
            anyhow::ensure!(step > 0.0, "--step must be positive");
            let trace = Trace::from_path(&trace)?;
            println!("seconds,millicores,memory_bytes");
            let mut t = 0.0;
            while t <= trace.duration_seconds() + 1e-9 {
                let d = trace.at(t);
                let mem = d
                    .memory_bytes
                    .map(|m| format!("{m:.0}"))
                    .unwrap_or_default();
                println!("{t:.1},{:.0},{mem}", d.millicores);
                t += step;
            }
            Ok(())
        }
    }
}
