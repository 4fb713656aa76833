//! The CLI around [`super::simulate`]: reads the spec and trace files, runs each side and
//! writes the summary table, timelines and plot with `tidal-report`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use tidal_report::{DemandTrace, Timeline, plot, summary, table};

use super::{Outage, OutageMode, World, simulate};
use crate::args::{DecisionFlags, parse_duration};

/// Flags of `tidal simulate`.
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// The AutoScaler to simulate (YAML or JSON manifest).
    #[arg(long)]
    pub spec: PathBuf,
    /// Demand trace: CSV `seconds,millicores[,memory]` or YAML `points:`.
    #[arg(long)]
    pub trace: PathBuf,
    /// A second AutoScaler to run side by side; `defaults` for the same spec with the
    /// built-in behavior (no `spec.behavior`) on the sync timer alone, as the built-in HPA
    /// decides; `timer` for the same spec on the sync timer alone.
    #[arg(long)]
    pub compare: Option<String>,
    /// Also decide as soon as new samples are scraped, as the operator's
    /// `--reconcile-on-fresh-metrics` (default on); `off`: the sync timer alone.
    #[arg(long, value_enum, default_value = "on")]
    pub reconcile_on_fresh_metrics: crate::args::Toggle,
    /// Directory for the timelines (CSV), summary and plot (PNG and SVG).
    #[arg(long, default_value = "simulate-out")]
    pub out_dir: PathBuf,
    /// Autoscaler sync period.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub sync_period: std::time::Duration,
    /// Seconds into the trace of the first decision.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub first_sync: std::time::Duration,
    /// metrics-server's --metric-resolution.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub metric_resolution: std::time::Duration,
    /// How long a new pod stays Pending.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub pod_startup: std::time::Duration,
    /// How long a started pod runs before it is Ready.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub ready_delay: std::time::Duration,
    /// CPU request of each pod, millicores.
    #[arg(long, default_value_t = 100)]
    pub cpu_request_millicores: i64,
    /// CPU use of a pod that is not Ready, millicores.
    #[arg(long, default_value_t = 0.0)]
    pub idle_millicores: f64,
    /// Replicas at the start (default: minReplicas).
    #[arg(long)]
    pub replicas: Option<i32>,
    /// A metrics-server outage, FROM-TO into the trace (e.g. `120s-300s`), to see what the
    /// AutoScaler's `spec.tidal.metricPolicies` do with stale or missing data.
    #[arg(long, value_parser = parse_outage_window)]
    pub metrics_outage: Option<(f64, f64)>,
    /// What the outage looks like: `frozen` (the last samples are served with their old
    /// timestamps: stale) or `missing` (the metrics API fails).
    #[arg(long, value_enum, default_value = "frozen")]
    pub outage_mode: OutageMode,
    /// The decision flags, as for `tidal operator`.
    #[command(flatten)]
    pub decision: DecisionFlags,
}

impl SimulateArgs {
    /// The simulated world these flags describe.
    pub fn world(&self) -> Result<World, String> {
        if self.sync_period.is_zero() || self.metric_resolution.is_zero() {
            return Err("--sync-period and --metric-resolution must be longer than 0s".into());
        }
        if self.cpu_request_millicores <= 0 {
            return Err("--cpu-request-millicores must be positive (e.g. 100)".into());
        }
        Ok(World {
            sync_period: self.sync_period.as_secs_f64(),
            first_sync: self.first_sync.as_secs_f64(),
            metric_resolution: self.metric_resolution.as_secs_f64(),
            pod_startup: self.pod_startup.as_secs_f64(),
            ready_delay: self.ready_delay.as_secs_f64(),
            cpu_request_millicores: self.cpu_request_millicores,
            idle_millicores: self.idle_millicores,
            initial_replicas: self.replicas,
            config: self.decision.config(),
            metrics_outage: self.metrics_outage.map(|(from, to)| Outage {
                from,
                to,
                mode: self.outage_mode,
            }),
            fresh_metrics: self.reconcile_on_fresh_metrics.is_on(),
        })
    }
}

/// Reads an AutoScaler manifest (YAML or JSON) as a decision-core spec, with the operator's
/// own reader; errors name the file and the field.
pub fn read_spec(path: &Path) -> Result<(String, Side), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read --spec {}: {e}", path.display()))?;
    let obj: tidal_crds::AutoScaler = serde_yaml::from_str(&text).map_err(|e| {
        format!(
            "{} is not an AutoScaler manifest: {e} (apiVersion: autoscaling.tidal.dev/v1alpha1, kind: AutoScaler)",
            path.display()
        )
    })?;
    let spec = crate::reconcile::spec::autoscaler_spec(&obj.spec)
        .map_err(|e| format!("{}: invalid spec: {e}", path.display()))?;
    let policies = crate::reconcile::spec::metric_policies(&obj.spec, &spec)
        .map_err(|e| format!("{}: invalid spec: {e}", path.display()))?;
    // The simulated workload has CPU demand and CPU requests only.
    for (i, m) in spec.metrics.iter().enumerate() {
        let cpu = matches!(m, scaling::MetricSpec::Resource { name, .. } if name == "cpu")
            || matches!(m, scaling::MetricSpec::ContainerResource { name, container, .. } if name == "cpu" && container == "app");
        if !cpu {
            return Err(format!(
                "{}: spec.metrics[{i}] ({} {}) cannot be simulated: simulate models CPU demand only; \
                 remove the metric or use a Resource cpu metric",
                path.display(),
                m.type_name(),
                match m {
                    scaling::MetricSpec::Resource { name, .. }
                    | scaling::MetricSpec::ContainerResource { name, .. } => name.clone(),
                    scaling::MetricSpec::Pods { metric, .. }
                    | scaling::MetricSpec::Object { metric, .. }
                    | scaling::MetricSpec::External { metric, .. } => metric.name.clone(),
                    scaling::MetricSpec::Unknown(t) => t.clone(),
                }
            ));
        }
    }
    let name = obj
        .metadata
        .name
        .unwrap_or_else(|| path.display().to_string());
    Ok((name, Side { spec, policies }))
}

/// One simulated AutoScaler: its spec and its metric policies.
#[derive(Debug, Clone)]
pub struct Side {
    /// The spec as the decision core reads it.
    pub spec: scaling::AutoscalerSpec,
    /// `spec.tidal.metricPolicies`.
    pub policies: Vec<scaling::MetricPolicy>,
}

/// The CPU Utilization target of a spec, for the summary's overload threshold (80 when none).
fn cpu_target(spec: &scaling::AutoscalerSpec) -> f64 {
    let metrics = if spec.metrics.is_empty() {
        vec![scaling::MetricSpec::default_cpu()]
    } else {
        spec.metrics.clone()
    };
    metrics
        .iter()
        .find_map(|m| match m {
            scaling::MetricSpec::Resource { name, target } if name == "cpu" => {
                target.average_utilization.map(f64::from)
            }
            _ => None,
        })
        .unwrap_or(80.0)
}

/// Runs `tidal simulate`.
pub fn run(args: SimulateArgs) -> ExitCode {
    match simulate_files(&args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("tidal simulate: {err}");
            ExitCode::from(2)
        }
    }
}

fn simulate_files(args: &SimulateArgs) -> Result<String, String> {
    let world = args.world()?;
    let trace = DemandTrace::from_path(&args.trace)
        .map_err(|e| format!("--trace {}: {e}", args.trace.display()))?;
    let (name, side) = read_spec(&args.spec)?;
    let spec = side.spec.clone();
    let timer = World {
        fresh_metrics: false,
        ..world.clone()
    };
    let mut sides = vec![(name, side.clone(), world.clone())];
    match args.compare.as_deref() {
        None => {}
        Some("defaults") => {
            // The built-in HPA: no behavior, no Tidal extensions, its timer alone.
            let mut defaults = side.spec.clone();
            defaults.behavior = None;
            sides.push((
                "built-in defaults".to_string(),
                Side {
                    spec: defaults,
                    policies: Vec::new(),
                },
                timer,
            ));
        }
        Some("timer") => sides.push(("sync timer only".to_string(), side.clone(), timer)),
        Some(other) => {
            let (name, other) = read_spec(Path::new(other))?;
            sides.push((name, other, world.clone()));
        }
    }
    let timelines: Vec<Timeline> = sides
        .iter()
        .map(|(_, s, w)| simulate(&s.spec, &s.policies, &trace, w))
        .collect();
    std::fs::create_dir_all(&args.out_dir)
        .map_err(|e| format!("cannot create --out-dir {}: {e}", args.out_dir.display()))?;
    let config = summary::SummaryConfig::new(cpu_target(&spec), world.config.tolerance);
    let steps = trace.steps();
    let summaries: Vec<summary::Summary> = timelines
        .iter()
        .map(|t| summary::summarize(t, &steps, &config))
        .collect();
    let named: Vec<(&str, &summary::Summary)> = sides
        .iter()
        .zip(&summaries)
        .map(|((n, _, _), s)| (n.as_str(), s))
        .collect();
    let divergence = (timelines.len() == 2).then(|| {
        let instants = summary::sync_instants(
            world.first_sync,
            trace.duration_seconds(),
            world.sync_period,
        );
        summary::divergence(&timelines[0], &timelines[1], &instants, 0.0)
    });
    let table_text = table::render_table(&named, divergence.as_ref(), &config);
    let mut files = Vec::new();
    for (i, t) in timelines.iter().enumerate() {
        let path = args.out_dir.join(format!("side-{}.csv", i + 1));
        files.push(
            t.write_csv(&path)
                .map_err(|e| format!("writing {}: {e}", path.display()))?,
        );
    }
    let plot_sides: Vec<plot::Side<'_>> = sides
        .iter()
        .zip(&timelines)
        .map(|((n, _, _), t)| plot::Side {
            name: n,
            timeline: t,
        })
        .collect();
    let png = args.out_dir.join("plot.png");
    let svg = args.out_dir.join("plot.svg");
    plot::write_png(&png, trace.name(), &plot_sides, plot::DEFAULT_SIZE)
        .map_err(|e| format!("writing {}: {e}", png.display()))?;
    plot::write_svg(&svg, trace.name(), &plot_sides, plot::DEFAULT_SIZE)
        .map_err(|e| format!("writing {}: {e}", svg.display()))?;
    let summary_path = args.out_dir.join("summary.txt");
    std::fs::write(&summary_path, &table_text)
        .map_err(|e| format!("writing {}: {e}", summary_path.display()))?;
    let mut out = table_text;
    out.push_str(&format!(
        "\nwrote {}, {}, {} and {}\n",
        files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        summary_path.display(),
        png.display(),
        svg.display()
    ));
    Ok(out)
}

/// Parses `--metrics-outage FROM-TO` (`120s-180s`, `2m-3m`).
fn parse_outage_window(s: &str) -> Result<(f64, f64), String> {
    let (from, to) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?} is not FROM-TO, e.g. 120s-180s"))?;
    let from = parse_duration(from.trim())?.as_secs_f64();
    let to = parse_duration(to.trim())?.as_secs_f64();
    if to <= from {
        return Err(format!("{s:?}: the outage must end after it starts"));
    }
    Ok((from, to))
}
