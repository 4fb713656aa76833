//! `tidal-e2e`: the load driver and trace tools, for use by hand or from
//! scripts against the local control plane (see e2e/README.md).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tidal_e2e::compare::{self, CompareConfig};
use tidal_e2e::demand::DemandTrace;
use tidal_e2e::driver::Driver;
use tidal_e2e::harness::Harness;
use tidal_e2e::scale::{self, Phase, ScaleConfig};

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
    /// Run the built-in HPA and Tidal side by side on twin kwok Deployments
    /// driven by the same trace; write a CSV per side, a plot (PNG, SVG) and
    /// the summary table, and print a status line while it runs.
    Compare {
        /// Trace file (.csv or .yaml), e.g. e2e/traces/demo.csv.
        #[arg(short, long)]
        trace: PathBuf,
        /// Output directory (default: e2e/artifacts/compare-<trace name>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Tidal's metrics batching (`on` is its default; `off` makes exactly
        /// kube-controller-manager's PodMetrics request).
        #[arg(long, default_value = "on", value_parser = ["on", "off"])]
        metrics_batching: String,
        /// Tidal's sync period, seconds [default: the cluster's HPA sync
        /// period, TIDAL_HPA_SYNC_PERIOD or 5].
        #[arg(long)]
        sync_period_seconds: Option<u64>,
        /// Tidal's downscale stabilization, seconds [default: the cluster's,
        /// TIDAL_HPA_DOWNSCALE_STABILIZATION or 30].
        #[arg(long)]
        downscale_stabilization_seconds: Option<u64>,
        /// Tidal's tolerance (kube-controller-manager's default).
        #[arg(long, default_value_t = 0.1)]
        tolerance: f64,
        /// CPU request per pod, millicores.
        #[arg(long, default_value_t = 100)]
        cpu_request_millicores: u32,
        /// Running-to-Ready delay of each pod, seconds.
        #[arg(long, default_value_t = 5)]
        ready_delay_seconds: u64,
        /// HPA CPU utilization target, percent.
        #[arg(long, default_value_t = 50)]
        target_utilization: i32,
        /// Scale on a Pods metric of the cluster's metrics adapter instead of CPU:
        /// NAME=AVERAGE (target averageValue per pod); the trace's value is the metric's total
        /// over the Ready pods, e.g. `requests-per-second=50`.
        #[arg(long)]
        pods_metric: Option<compare::PodsMetric>,
        /// HPA minReplicas.
        #[arg(long, default_value_t = 1)]
        min_replicas: i32,
        /// HPA maxReplicas.
        #[arg(long, default_value_t = 10)]
        max_replicas: i32,
        /// Seconds between status lines.
        #[arg(long, default_value_t = 10)]
        status_seconds: u64,
        /// Tidal's `--reconcile-on-fresh-metrics` (`on` is its default; `off` decides on the
        /// sync timer alone, as kube-controller-manager does).
        #[arg(long, default_value = "on", value_parser = ["on", "off"])]
        fresh_metrics: String,
        /// Milliseconds between samples of both sides; the reaction figures are seen at this
        /// granularity.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(100..=10_000))]
        sample_every_ms: u64,
        /// Change usage only between metrics-server scrapes, so both sides get the same
        /// samples (the agreement test's setting); a step can then reach the pods up to half
        /// a resolution late.
        #[arg(long)]
        usage_between_scrapes: bool,
        /// Also run the built-in HPA at these lower CPU targets, percent, comma-separated (e.g.
        /// 45,40), each on its own Deployment: the summary then gives its overload at Tidal's
        /// replica-seconds, interpolated between the runs (CPU only).
        #[arg(long, value_delimiter = ',')]
        hpa_cost_targets: Vec<i32>,
    },
    /// kube-controller-manager's HPA controller and Tidal at N objects: CPU, memory, syncs
    /// done vs due, sync lag, API requests per sync cycle; a CSV per N, a summary table and
    /// (several N) a plot. Needs cluster.sh's cluster with room for N pods (README,
    /// Performance); restarts its kube-controller-manager for the kcm-qps phase.
    Scale {
        /// Object counts, comma-separated: one full run each, e.g. 100,1000.
        #[arg(long, value_delimiter = ',', required = true)]
        objects: Vec<usize>,
        /// Namespaces the objects are spread over.
        #[arg(long, default_value_t = 10)]
        namespaces: usize,
        /// Seconds of each measured window (the baseline's too).
        #[arg(long, default_value_t = 120)]
        window: u64,
        /// Seconds between a phase's start and its window [default: 2 sync periods + 10].
        #[arg(long)]
        warmup: Option<u64>,
        /// Phases, in order (kcm, kcm-qps, tidal).
        #[arg(long, value_delimiter = ',', default_value = "kcm,kcm-qps,tidal")]
        phases: Vec<String>,
        /// kube-controller-manager's --kube-api-qps in the kcm-qps phase.
        #[arg(long, default_value_t = 500)]
        kcm_qps: u32,
        /// kube-controller-manager's --kube-api-burst in the kcm-qps phase.
        #[arg(long, default_value_t = 1000)]
        kcm_burst: u32,
        /// Tidal's --concurrency in the tidal phase [default: kube-controller-manager's 5 HPA
        /// workers].
        #[arg(long, default_value_t = scale::KCM_HPA_WORKERS, value_parser = clap::value_parser!(u16).range(1..))]
        tidal_concurrency: u16,
        /// Create and delete the objects under kube-controller-manager's default client QPS
        /// (about 10 pods a second). By default it runs with --kcm-qps and --kcm-burst for
        /// that and is restarted with its defaults before the baseline.
        #[arg(long)]
        setup_at_default_qps: bool,
        /// Output directory.
        #[arg(long, default_value = "e2e/artifacts/scale")]
        out: PathBuf,
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
            // The scale harness reads kube-controller-manager's and metrics-server's /metrics
            // over loopback with their self-signed certificates: kube warns on every such
            // client.
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kube_client::client::tls=error".into()),
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
            let trace = DemandTrace::from_path(&trace)?;
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
        Command::Compare {
            trace: trace_path,
            out,
            metrics_batching,
            sync_period_seconds,
            downscale_stabilization_seconds,
            tolerance,
            cpu_request_millicores,
            ready_delay_seconds,
            target_utilization,
            pods_metric,
            min_replicas,
            max_replicas,
            status_seconds,
            fresh_metrics,
            sample_every_ms,
            usage_between_scrapes,
            hpa_cost_targets,
        } => {
            let trace = DemandTrace::from_path(&trace_path)?;
            let out = out.unwrap_or_else(|| compare::default_out_dir(&trace_path));
            let mut config = CompareConfig::new(trace, out);
            config.metrics_batching = metrics_batching == "on";
            config.fresh_metrics = fresh_metrics == "on";
            config.sample_every = Duration::from_millis(sample_every_ms);
            config.usage_between_scrapes = usage_between_scrapes;
            if let Some(s) = sync_period_seconds {
                anyhow::ensure!(s > 0, "--sync-period-seconds must be positive");
                config.sync_period = Duration::from_secs(s);
                config.divergence_skew = CompareConfig::default_skew(config.sync_period);
            }
            if let Some(s) = downscale_stabilization_seconds {
                config.downscale_stabilization = Duration::from_secs(s);
            }
            anyhow::ensure!(
                (0.0..1.0).contains(&tolerance),
                "--tolerance must be at least 0 and below 1"
            );
            anyhow::ensure!(
                (1..=max_replicas).contains(&min_replicas),
                "--min-replicas must be between 1 and --max-replicas"
            );
            anyhow::ensure!(
                target_utilization > 0,
                "--target-utilization must be positive"
            );
            anyhow::ensure!(
                cpu_request_millicores > 0,
                "--cpu-request-millicores must be positive"
            );
            if let Some(bad) = hpa_cost_targets
                .iter()
                .find(|&&t| !(1..target_utilization).contains(&t))
            {
                anyhow::bail!(
                    "--hpa-cost-targets: {bad} is not between 1 and --target-utilization ({target_utilization}) exclusive; \
                     lower targets buy the built-in HPA replicas, e.g. --hpa-cost-targets 45,40"
                );
            }
            anyhow::ensure!(
                hpa_cost_targets.is_empty() || pods_metric.is_none(),
                "--hpa-cost-targets works with CPU targets only; drop it or --pods-metric"
            );
            config.hpa_cost_targets = hpa_cost_targets;
            config.tolerance = tolerance;
            config.cpu_request_millicores = cpu_request_millicores;
            config.ready_delay = Duration::from_secs(ready_delay_seconds);
            config.target_utilization = target_utilization;
            config.pods_metric = pods_metric;
            config.min_replicas = min_replicas;
            config.max_replicas = max_replicas;
            config.status_every = Duration::from_secs(status_seconds.max(1));
            let harness = Harness::connect().await?;
            let run = compare::run(&harness, &config, |line| println!("{line}"));
            let outcome = tokio::select! {
                r = run => r?,
                _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
            };
            println!("\n{}", outcome.summary_text);
            println!(
                "plot: {} (and {})",
                outcome.png.display(),
                outcome.svg.display()
            );
            println!("timelines and summary: {}", config.out_dir.display());
            Ok(())
        }
        Command::Scale {
            objects,
            namespaces,
            window,
            warmup,
            phases,
            kcm_qps,
            kcm_burst,
            tidal_concurrency,
            setup_at_default_qps,
            out,
        } => {
            anyhow::ensure!(window > 0, "--window must be positive");
            let mut config =
                ScaleConfig::new(objects, namespaces, Duration::from_secs(window), out);
            config.warmup = warmup.map(Duration::from_secs);
            config.phases = phases
                .iter()
                .map(|p| Phase::parse(p))
                .collect::<anyhow::Result<_>>()?;
            config.kcm_qps = kcm_qps;
            config.kcm_burst = kcm_burst;
            config.tidal_concurrency = tidal_concurrency;
            config.raise_qps_for_setup = !setup_at_default_qps;
            let harness = Harness::connect().await?;
            let run = scale::run(&harness, &config, |line| {
                println!(
                    "[{}] {line}",
                    k8s_openapi::jiff::Timestamp::now().strftime("%H:%M:%S")
                );
            });
            let outcome = tokio::select! {
                r = run => r?,
                _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
            };
            println!("\n{}", std::fs::read_to_string(&outcome.summary)?);
            for csv in &outcome.csvs {
                println!("csv: {}", csv.display());
            }
            if let Some(plot) = &outcome.plot {
                println!("plot: {}", plot.display());
            }
            println!("summary: {}", outcome.summary.display());
            Ok(())
        }
        Command::Trace { trace, step } => {
            anyhow::ensure!(step > 0.0, "--step must be positive");
            let trace = DemandTrace::from_path(&trace)?;
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
