//! The side-by-side comparison (`tidal-e2e compare`, `make demo`): the
//! built-in HPA and Tidal on twin workloads under the same demand.
//!
//! In one new namespace: two kwok Deployments, `hpa` and `tidal`, from the same
//! template (CPU request, readiness delay, one replica to start); an
//! `autoscaling/v2` HPA on `hpa`; on `tidal`, the AutoScaler that
//! `tidal convert` makes of the same HPA (the same `tidal_crds::hpa` code),
//! retargeted; a `tidal operator` for that namespace with the cluster's HPA
//! settings. One load driver per Deployment replays the same trace from the
//! same instant. Every second both sides are sampled (Deployment, autoscaler
//! status, PodMetrics); at the end each side's timeline is written as CSV,
//! with the plot (PNG, SVG) and the summary table.
//!
//! With [`CompareConfig::pods_metric`] both sides scale on a Pods metric (AverageValue) served
//! by the cluster's metrics adapter instead of CPU: the trace's value is the metric's total,
//! written to each side's Ready pods through the adapter's write API (the load drivers still
//! set the same CPU, which neither autoscaler then reads).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscaler, HorizontalPodAutoscalerStatus};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DynamicObject, PostParams};
use kube::{Api, Client};
use tidal_report::summary::{
    ChangeReaction, Divergence, MetricsReaction, Summary, SummaryConfig, change_reactions,
    divergence, metrics_reactions, quantile, summarize, sync_instants,
};
use tidal_report::{DemandTrace, Sample, Step, Timeline, plot, table};

use crate::adapter::{Feed, MetricFeed, MetricsAdapter, format_value};
use crate::driver::{Driver, RunningDriver, SharedDemand};
use crate::equal_cost::{self, AtTidalCost, CostPoint};
use crate::harness::Harness;
use crate::operator::{self, OperatorBuilder};
use crate::scrape_clock::ScrapeClock;
use crate::workload::KwokWorkload;
use crate::{crd, metrics, wait};

/// Legend and column name of the built-in HPA's side.
pub const HPA_SIDE: &str = "built-in HPA";
/// Legend and column name of Tidal's side.
pub const TIDAL_SIDE: &str = "Tidal";
/// metrics-server's `--metric-resolution` on the local cluster (cluster.sh).
pub const METRICS_RESOLUTION: Duration = Duration::from_secs(10);
/// How often a Pods metric's values are written to the adapter: well under a sync period.
const METRIC_FEED_TICK: Duration = Duration::from_millis(500);

/// Everything a comparison run is configured with.
#[derive(Debug, Clone)]
pub struct CompareConfig {
    /// The demand both sides get.
    pub trace: DemandTrace,
    /// Where the CSVs, plots and summary go.
    pub out_dir: PathBuf,
    /// CPU request of every pod, millicores.
    pub cpu_request_millicores: u32,
    /// Running → Ready delay of every pod.
    pub ready_delay: Duration,
    /// HPA `minReplicas`.
    pub min_replicas: i32,
    /// HPA `maxReplicas`.
    pub max_replicas: i32,
    /// HPA CPU `averageUtilization` target, percent.
    pub target_utilization: i32,
    /// Tidal's `--sync-period`: set it to kube-controller-manager's
    /// `--horizontal-pod-autoscaler-sync-period` for identical configuration.
    pub sync_period: Duration,
    /// Tidal's `--downscale-stabilization` (same reasoning).
    pub downscale_stabilization: Duration,
    /// Tidal's `--tolerance` (kcm's default 0.1 unless the cluster changes it).
    pub tolerance: f64,
    /// Tidal's `--metrics-batching` (on is Tidal's default; off makes exactly
    /// kube-controller-manager's PodMetrics request).
    pub metrics_batching: bool,
    /// How often the status line is printed.
    pub status_every: Duration,
    /// Timing skew allowed when comparing the two replica timelines.
    pub divergence_skew: Duration,
    /// Scale on this Pods metric from the metrics adapter instead of CPU.
    pub pods_metric: Option<PodsMetric>,
    /// Tidal's `--reconcile-on-fresh-metrics` (on is its default; off keeps the timer alone,
    /// deciding when kube-controller-manager would).
    pub fresh_metrics: bool,
    /// How often both sides are sampled; the reaction figures are seen at this granularity.
    pub sample_every: Duration,
    /// The load drivers change usage only between metrics-server scrapes, so both sides get
    /// the same samples (see [`crate::scrape_clock`]). A change can then wait up to half a
    /// resolution; reactions count from when the driver applied a step, so they do not include
    /// that wait (`make compare-reaction` turns it on; the reaction test and `make demo` keep
    /// the trace's instants).
    pub usage_between_scrapes: bool,
    /// More built-in HPA sides at these CPU targets (percent, below `target_utilization`), for
    /// the overload at equal replica-seconds (see [`crate::equal_cost`]); CPU only.
    pub hpa_cost_targets: Vec<i32>,
}

/// A Pods metric target for both sides (`tidal-e2e compare --pods-metric NAME=AVERAGE`).
#[derive(Debug, Clone, PartialEq)]
pub struct PodsMetric {
    /// Metric name, e.g. `requests-per-second`.
    pub name: String,
    /// `target.averageValue` per pod; the trace's value is the total over the Ready pods.
    pub average_value: f64,
}

impl std::str::FromStr for PodsMetric {
    type Err = String;

    /// `NAME=AVERAGE`, e.g. `requests-per-second=50`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!("{s:?}: expected NAME=AVERAGE with AVERAGE > 0, e.g. requests-per-second=50")
        };
        let (name, average) = s.split_once('=').ok_or_else(bad)?;
        let average_value: f64 = average.trim().parse().map_err(|_| bad())?;
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !(valid_name && average_value > 0.0 && average_value.is_finite()) {
            return Err(bad());
        }
        Ok(Self {
            name: name.to_owned(),
            average_value,
        })
    }
}

impl CompareConfig {
    /// Defaults matching the local cluster: 100m requests, 5 s readiness
    /// delay, 1..10 replicas at 50 % CPU, kcm's sync period and downscale
    /// stabilization as cluster.sh sets them (`TIDAL_HPA_SYNC_PERIOD`,
    /// `TIDAL_HPA_DOWNSCALE_STABILIZATION`, default 5s and 30s), tolerance
    /// 0.1, Tidal's metrics batching on, a status line every 10 s, and a
    /// skew of one sync period plus one metrics resolution (see
    /// [`Self::default_skew`]).
    pub fn new(trace: DemandTrace, out_dir: PathBuf) -> Self {
        let sync_period = env_seconds("TIDAL_HPA_SYNC_PERIOD", 5);
        Self {
            trace,
            out_dir,
            cpu_request_millicores: 100,
            ready_delay: Duration::from_secs(5),
            min_replicas: 1,
            max_replicas: 10,
            target_utilization: 50,
            sync_period,
            downscale_stabilization: env_seconds("TIDAL_HPA_DOWNSCALE_STABILIZATION", 30),
            tolerance: 0.1,
            metrics_batching: true,
            status_every: Duration::from_secs(10),
            divergence_skew: Self::default_skew(sync_period),
            pods_metric: None,
            fresh_metrics: true,
            sample_every: Duration::from_secs(1),
            usage_between_scrapes: false,
            hpa_cost_targets: Vec::new(),
        }
    }

    /// One sync period plus one metrics resolution. The two controllers run
    /// independent sync timers, so the same new sample reaches their
    /// decisions up to one period apart; the side that scaled later gets its
    /// new pods Ready later, and a metrics scrape in between sees them on one
    /// side only, which can delay the next decision by one more resolution.
    pub fn default_skew(sync_period: Duration) -> Duration {
        sync_period + METRICS_RESOLUTION
    }

    fn summary_config(&self) -> SummaryConfig {
        match &self.pods_metric {
            // The per-pod CPU the drivers set is the per-pod metric value in millicores, so
            // the metric's target as a percentage of the request is the same overload line.
            Some(m) => SummaryConfig::new(
                m.average_value / f64::from(self.cpu_request_millicores.max(1)) * 100.0,
                self.tolerance,
            ),
            None => SummaryConfig::new(f64::from(self.target_utilization), self.tolerance),
        }
    }

    /// One line describing the configuration, for the summary.
    pub fn describe(&self) -> String {
        let target = match &self.pods_metric {
            Some(m) => format!(
                "Pods metric {} (metrics adapter) target {} per pod, the trace as its total; {}m CPU requests",
                m.name, m.average_value, self.cpu_request_millicores
            ),
            None => format!(
                "CPU target {}% of {}m requests",
                self.target_utilization, self.cpu_request_millicores
            ),
        };
        format!(
            "{target}, {}..{} replicas, pods Ready {}s after start; \
             sync {}s, downscale stabilization {}s, tolerance {} (kube-controller-manager and Tidal); \
             Tidal metrics batching {}, reconcile on fresh metrics {}; {}{}sampled every {}s",
            self.min_replicas,
            self.max_replicas,
            self.ready_delay.as_secs_f64(),
            self.sync_period.as_secs_f64(),
            self.downscale_stabilization.as_secs_f64(),
            self.tolerance,
            if self.metrics_batching { "on" } else { "off" },
            if self.fresh_metrics { "on" } else { "off" },
            if self.usage_between_scrapes {
                "usage changed between metrics scrapes; "
            } else {
                ""
            },
            if self.hpa_cost_targets.is_empty() {
                String::new()
            } else {
                format!(
                    "the built-in HPA also at {} on their own Deployments; ",
                    self.hpa_cost_targets
                        .iter()
                        .map(|t| format!("{t}%"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            self.sample_every.as_secs_f64(),
        )
    }
}

fn env_seconds(var: &str, default: u64) -> Duration {
    let secs = std::env::var(var)
        .ok()
        .and_then(|s| s.trim().trim_end_matches('s').parse::<u64>().ok())
        .unwrap_or(default);
    Duration::from_secs(secs)
}

/// What a comparison produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The namespace it ran in (deleted afterwards unless kept).
    pub namespace: String,
    /// The built-in HPA's side.
    pub hpa: Timeline,
    /// Tidal's side.
    pub tidal: Timeline,
    /// The trace's steps.
    pub steps: Vec<Step>,
    /// Per-side figures.
    pub hpa_summary: Summary,
    /// Per-side figures.
    pub tidal_summary: Summary,
    /// Replicas compared at every HPA sync from the first instant both
    /// autoscalers had reported a decision.
    pub divergence: Divergence,
    /// Reaction after the first post-step metrics sample, built-in HPA.
    pub hpa_reactions: Vec<MetricsReaction>,
    /// Reaction after the first post-step metrics sample, Tidal.
    pub tidal_reactions: Vec<MetricsReaction>,
    /// Every replica change of the built-in HPA, with the time since the newest sample.
    pub hpa_changes: Vec<ChangeReaction>,
    /// Every replica change of Tidal, with the time since the newest sample.
    pub tidal_changes: Vec<ChangeReaction>,
    /// Tidal's namespace-wide PodMetrics LISTs per metrics resolution (batching mode).
    pub lists_per_resolution: Option<f64>,
    /// Every built-in HPA run's cost and overload (the pair's first), with
    /// [`CompareConfig::hpa_cost_targets`]; empty without.
    pub hpa_costs: Vec<CostPoint>,
    /// The built-in HPA's overload at Tidal's replica-seconds, with
    /// [`CompareConfig::hpa_cost_targets`].
    pub hpa_at_tidal_cost: Option<AtTidalCost>,
    /// The summary as printed.
    pub summary_text: String,
    /// The PNG plot.
    pub png: PathBuf,
    /// The SVG plot.
    pub svg: PathBuf,
    /// Every file written.
    pub files: Vec<PathBuf>,
}

/// One side under test: its workload, its driver, how to read its autoscaler.
struct Side {
    name: String,
    workload: KwokWorkload,
    driver: Option<RunningDriver>,
    timeline: Timeline,
    /// The built-in HPA decides it (else Tidal).
    builtin: bool,
    /// An extra HPA side at a lower target ([`CompareConfig::hpa_cost_targets`]): only its
    /// replicas and utilization are sampled, nothing for the reaction figures.
    cost_target: Option<i32>,
}

impl Side {
    fn new(name: String, workload: KwokWorkload, builtin: bool, cost_target: Option<i32>) -> Self {
        Self {
            name,
            workload,
            driver: None,
            timeline: Timeline::new(),
            builtin,
            cost_target,
        }
    }
}

/// Runs the comparison; `status` receives the progress lines (one every
/// [`CompareConfig::status_every`]) and the final summary is returned.
pub async fn run(
    harness: &Harness,
    config: &CompareConfig,
    mut status: impl FnMut(&str),
) -> anyhow::Result<Outcome> {
    let client = harness.client();
    crd::install(client).await?;
    let ns_guard = harness.namespace("compare").await?;
    let ns = ns_guard.name().to_owned();
    status(&format!("namespace {ns}: {}", config.describe()));

    let template = |name: &str| {
        KwokWorkload::new(name)
            .cpu_request(format!("{}m", config.cpu_request_millicores))
            .ready_delay(config.ready_delay)
    };
    anyhow::ensure!(
        config.hpa_cost_targets.is_empty() || config.pods_metric.is_none(),
        "the built-in HPA's runs at other targets (--hpa-cost-targets) are for CPU targets only"
    );
    let mut sides = vec![
        Side::new(HPA_SIDE.to_owned(), template("hpa"), true, None),
        Side::new(TIDAL_SIDE.to_owned(), template("tidal"), false, None),
    ];
    for &target in &config.hpa_cost_targets {
        let name = format!("hpa-{target}");
        let workload = template(&name);
        sides.push(Side::new(
            format!("{HPA_SIDE} at {target}%"),
            workload,
            true,
            Some(target),
        ));
    }
    for side in &sides {
        side.workload.create_deployment(client, &ns).await?;
    }
    for side in &sides {
        wait::ready_pods(
            client,
            &ns,
            &side.workload.selector(),
            1,
            Duration::from_secs(90),
        )
        .await
        .with_context(|| format!("waiting for the first {} pod", side.workload.name()))?;
    }

    let operator = OperatorBuilder::new(&ns)
        .flag("sync-period", secs(config.sync_period))
        .flag(
            "downscale-stabilization",
            secs(config.downscale_stabilization),
        )
        .flag("tolerance", config.tolerance.to_string())
        .flag(
            "metrics-batching",
            if config.metrics_batching { "on" } else { "off" },
        )
        .flag(
            "reconcile-on-fresh-metrics",
            if config.fresh_metrics { "on" } else { "off" },
        )
        .start()
        .await?;

    // The HPA, and the AutoScaler converted from the same object.
    let hpa = hpa_for(config, "hpa")?;
    let mut for_tidal = hpa.clone();
    for_tidal.metadata.name = Some("tidal".into());
    for_tidal.spec.scale_target_ref.name = "tidal".into();
    let autoscaler = tidal_crds::hpa::autoscaler_from_hpa(&for_tidal)?;
    let autoscaler: DynamicObject = serde_json::from_value(serde_json::to_value(&autoscaler)?)?;
    let hpas = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), &ns);
    hpas.create(&PostParams::default(), &hpa)
        .await
        .context("creating the HPA")?;
    for side in &sides {
        if let Some(target) = side.cost_target {
            let hpa = hpa_at(config, side.workload.name(), target)?;
            hpas.create(&PostParams::default(), &hpa)
                .await
                .with_context(|| format!("creating the HPA at {target}%"))?;
        }
    }
    operator::autoscalers(client, &ns)
        .create(&PostParams::default(), &autoscaler)
        .await
        .context("creating the AutoScaler")?;

    // Both drivers replay the trace from (nearly) the same instant; the run
    // clock starts with them.
    let trace = Arc::new(config.trace.clone());
    let metric_total = SharedDemand::new(config.trace.at(0.0));
    let mut feeds = Vec::new();
    if let Some(m) = &config.pods_metric {
        let adapter = MetricsAdapter::discover(client).await?;
        for side in &sides {
            let feed = Feed::PerPod {
                selector: side.workload.selector(),
                metric: m.name.clone(),
            };
            feeds.push(
                MetricFeed::start(
                    adapter.clone(),
                    client.clone(),
                    &ns,
                    feed,
                    metric_total.clone(),
                    METRIC_FEED_TICK,
                )
                .await?,
            );
        }
    }
    // Between scrapes, every sample of either side holds one tick's usage: the sides see
    // equal samples for equal demand and Ready pods.
    let clock = RunClock::start(ScrapeClock::new(METRICS_RESOLUTION));
    for side in &mut sides {
        let mut driver = Driver::new(client.clone(), &ns, side.workload.selector());
        if config.usage_between_scrapes {
            driver = driver.between_scrapes(clock.scrapes.clone());
        }
        side.driver = Some(driver.spawn(trace.clone()));
    }

    let length = Duration::from_secs_f64(config.trace.duration_seconds());
    let mut tick = tokio::time::interval(config.sample_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_status = Duration::ZERO;
    while clock.start.elapsed() <= length {
        tick.tick().await;
        let seconds = clock.start.elapsed().as_secs_f64();
        metric_total.set(config.trace.at(seconds));
        let samples = futures::future::join_all(
            sides
                .iter()
                .map(|side| sample(client, &ns, side, config, &clock)),
        )
        .await;
        for (side, s) in sides.iter_mut().zip(samples) {
            match s {
                Ok(s) => side.timeline.push(s),
                Err(e) => {
                    tracing::warn!(side = %side.name, error = %format!("{e:#}"), "sample failed")
                }
            }
        }
        if clock.start.elapsed() >= next_status {
            next_status += config.status_every;
            status(&status_line(seconds, length, &sides));
        }
        if !operator.is_running() {
            anyhow::bail!(
                "the tidal operator exited during the comparison; its log: {}",
                operator.log_path().display()
            );
        }
    }
    for side in &mut sides {
        if let Some(d) = side.driver.take() {
            d.stop().await?;
        }
    }
    for feed in feeds {
        feed.stop().await;
    }
    let lists = MetricsLists {
        lists: operator.metric("tidal_pod_metrics_lists_total ").await,
        seconds: clock.start.elapsed().as_secs_f64(),
    };
    drop(operator);

    let mut sides = sides.into_iter();
    let (Some(hpa_side), Some(tidal_side)) = (sides.next(), sides.next()) else {
        anyhow::bail!("the comparison lost its two sides");
    };
    let costlier: Vec<(String, i32, Timeline)> = sides
        .filter_map(|s| {
            s.cost_target
                .map(|t| (s.workload.name().to_owned(), t, s.timeline))
        })
        .collect();
    let outcome = report(
        config,
        ns,
        [hpa_side.timeline, tidal_side.timeline],
        &costlier,
        &lists,
    )?;
    drop(ns_guard);
    Ok(outcome)
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

/// The HPA both sides are configured from.
pub fn hpa_for(config: &CompareConfig, target: &str) -> anyhow::Result<HorizontalPodAutoscaler> {
    hpa_at(config, target, config.target_utilization)
}

/// The same HPA at another CPU utilization target.
fn hpa_at(
    config: &CompareConfig,
    target: &str,
    utilization: i32,
) -> anyhow::Result<HorizontalPodAutoscaler> {
    let mut spec = operator::cpu_utilization_spec(
        operator::WorkloadKind::Deployment,
        target,
        config.min_replicas,
        config.max_replicas,
        utilization,
    );
    spec["scaleTargetRef"]["name"] = target.into();
    if let Some(m) = &config.pods_metric {
        spec["metrics"] = serde_json::json!([{
            "type": "Pods",
            "pods": {
                "metric": { "name": m.name },
                "target": { "type": "AverageValue", "averageValue": format_value(m.average_value) }
            }
        }]);
    }
    let hpa = serde_json::json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": target}, "spec": spec,
    });
    serde_json::from_value(hpa).context("building the HPA")
}

/// The run's clocks: the run clock every figure is on, the wall time it started at (metrics
/// timestamps are wall times), and the scrape instants learnt from those timestamps.
struct RunClock {
    start: Instant,
    wall: Timestamp,
    scrapes: ScrapeClock,
}

impl RunClock {
    fn start(scrapes: ScrapeClock) -> Self {
        Self {
            start: Instant::now(),
            wall: Timestamp::now(),
            scrapes,
        }
    }

    /// A wall time on the run clock, seconds.
    fn run_seconds(&self, wall: Timestamp) -> f64 {
        (wall.as_millisecond() - self.wall.as_millisecond()) as f64 / 1000.0
    }
}

/// One observation of one side.
async fn sample(
    client: &Client,
    ns: &str,
    side: &Side,
    config: &CompareConfig,
    clock: &RunClock,
) -> anyhow::Result<Sample> {
    let name = side.workload.name();
    let seconds = clock.start.elapsed().as_secs_f64();
    let deployment = Api::<Deployment>::namespaced(client.clone(), ns)
        .get(name)
        .await?;
    let replicas = deployment.spec.and_then(|s| s.replicas).unwrap_or(0);
    let ready_replicas = deployment
        .status
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    let cost_only = side.cost_target.is_some();
    let status: Option<HorizontalPodAutoscalerStatus> = if cost_only {
        None
    } else if side.builtin {
        Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns)
            .get(name)
            .await?
            .status
    } else {
        operator::view(client, ns, name).await?.status
    };
    // A metrics failure is recorded as "no sample", not a failed read: the
    // replicas are still worth having.
    let newest = if cost_only {
        None
    } else {
        metrics::pod_usage(client, ns, &side.workload.selector())
            .await
            .ok()
    }
    .and_then(|pods| {
        pods.iter()
            .filter_map(|p| p.timestamp.parse::<Timestamp>().ok())
            .max()
    });
    if let Some(ts) = newest {
        clock.scrapes.observe(ts);
    }
    let metrics_seconds = newest.map(|ts| clock.run_seconds(ts));
    let report = side.driver.as_ref().and_then(RunningDriver::latest);
    let demand_millicores = report.as_ref().map_or_else(
        || config.trace.at(seconds).millicores,
        |r| r.demand.millicores,
    );
    let utilization_percent = report
        .as_ref()
        .filter(|r| r.ready > 0)
        .map(|r| r.per_pod_millicores / f64::from(config.cpu_request_millicores.max(1)) * 100.0);
    let conditions = status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    format!(
                        "{}={}/{}",
                        c.type_,
                        c.status,
                        c.reason.as_deref().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join(";")
        })
        .unwrap_or_default();
    Ok(Sample {
        seconds,
        demand_millicores,
        replicas,
        ready_replicas,
        utilization_percent,
        desired_replicas: status.as_ref().map(|s| s.desired_replicas),
        metrics_seconds,
        conditions,
    })
}

fn status_line(seconds: f64, length: Duration, sides: &[Side]) -> String {
    let demand = sides
        .iter()
        .find_map(|s| s.timeline.samples().last())
        .map_or(0.0, |s| s.demand_millicores);
    let mut line = format!(
        "[{:>4.0}s/{:.0}s] demand {:.0}m",
        seconds,
        length.as_secs_f64(),
        demand
    );
    for side in sides {
        match side.timeline.samples().last() {
            // Only replicas are sampled for the HPA's runs at other targets.
            Some(s) if side.cost_target.is_some() => line.push_str(&format!(
                " | {}: {} replicas, {} ready",
                side.name, s.replicas, s.ready_replicas
            )),
            Some(s) => line.push_str(&format!(
                " | {}: {} replicas, {} ready, desired {}",
                side.name,
                s.replicas,
                s.ready_replicas,
                // The HPA's status shows desiredReplicas 0 before its first decision.
                s.desired_replicas
                    .filter(|_| s.conditions.contains("ScalingActive=True"))
                    .map_or_else(|| "-".to_owned(), |d| d.to_string())
            )),
            None => line.push_str(&format!(" | {}: no sample yet", side.name)),
        }
    }
    line
}

/// Tidal's namespace-wide PodMetrics LISTs over a run (batching mode).
#[derive(Debug, Clone, Copy)]
struct MetricsLists {
    /// `tidal_pod_metrics_lists_total` at the end (`None`: not read).
    lists: Option<f64>,
    /// The run's length.
    seconds: f64,
}

/// Summaries, divergence, reactions, files.
fn report(
    config: &CompareConfig,
    namespace: String,
    [hpa, tidal]: [Timeline; 2],
    costlier: &[(String, i32, Timeline)],
    lists: &MetricsLists,
) -> anyhow::Result<Outcome> {
    let steps = config.trace.steps();
    let sc = config.summary_config();
    let hpa_summary = summarize(&hpa, &steps, &sc);
    let tidal_summary = summarize(&tidal, &steps, &sc);
    let cost = |label: String, s: &Summary| CostPoint {
        label,
        replica_seconds: s.replica_seconds,
        overload_seconds: s.overload_seconds,
    };
    let target = config.target_utilization;
    let mut hpa_costs = Vec::new();
    if !costlier.is_empty() {
        hpa_costs.push(cost(format!("{HPA_SIDE} at {target}%"), &hpa_summary));
        for (_, t, timeline) in costlier {
            let s = summarize(timeline, &steps, &sc);
            hpa_costs.push(cost(format!("{HPA_SIDE} at {t}%"), &s));
        }
    }
    let tidal_cost = cost(format!("{TIDAL_SIDE} at {target}%"), &tidal_summary);
    // Compare from the first instant both autoscalers had decided on
    // metrics (ScalingActive=True): before that one side may not have synced
    // on a sample yet (the HPA's status even shows desiredReplicas 0 then).
    let decided = |t: &Timeline| {
        t.samples()
            .iter()
            .find(|s| s.conditions.contains("ScalingActive=True"))
            .map(|s| s.seconds)
    };
    let end = hpa.duration_seconds().min(tidal.duration_seconds());
    // A side that never decided leaves nothing to compare (the test fails on that).
    let start = match (decided(&hpa), decided(&tidal)) {
        (Some(a), Some(b)) => a.max(b),
        _ => f64::INFINITY,
    };
    let instants = sync_instants(start, end, config.sync_period.as_secs_f64());
    let divergence = divergence(
        &hpa,
        &tidal,
        &instants,
        config.divergence_skew.as_secs_f64(),
    );
    let hpa_reactions = metrics_reactions(&hpa, &steps);
    let tidal_reactions = metrics_reactions(&tidal, &steps);

    let mut text = format!(
        "Built-in HPA vs Tidal, trace {} ({:.0}s), namespace {namespace}\n{}\n\n",
        config.trace.name(),
        config.trace.duration_seconds(),
        config.describe()
    );
    text.push_str(&table::render_table(
        &[(HPA_SIDE, &hpa_summary), (TIDAL_SIDE, &tidal_summary)],
        Some(&divergence),
        &sc,
    ));
    text.push_str(
        "\nreaction: from the first PodMetrics sample taken after the step being visible \
         to the first replica change\n",
    );
    for (h, t) in hpa_reactions.iter().zip(&tidal_reactions) {
        let fmt = |r: &MetricsReaction| match (r.reaction_seconds(), r.sample_visible_seconds) {
            (Some(x), Some(v)) => format!("{x:.1}s (sample visible at {v:.0}s)"),
            (None, Some(v)) => format!("no scale (sample visible at {v:.0}s)"),
            _ => "no new sample".to_owned(),
        };
        text.push_str(&format!(
            "  step at {:.0}s ({:.0}m -> {:.0}m): {HPA_SIDE} {}, {TIDAL_SIDE} {}\n",
            h.step.seconds,
            h.step.from_millicores,
            h.step.to_millicores,
            fmt(h),
            fmt(t)
        ));
    }

    let hpa_changes = change_reactions(&hpa);
    let tidal_changes = change_reactions(&tidal);
    text.push_str(&step_up_distribution(&hpa_reactions, &tidal_reactions));
    text.push_str(&reaction_distribution(&hpa_changes, &tidal_changes));
    let lists_per_resolution = lists
        .lists
        .filter(|_| config.metrics_batching && lists.seconds > 0.0)
        .map(|n| n / (lists.seconds / METRICS_RESOLUTION.as_secs_f64()));
    if let (Some(n), Some(per)) = (lists.lists, lists_per_resolution) {
        text.push_str(&format!(
            "Tidal's PodMetrics LISTs: {n:.0} in {:.0}s for 1 namespace = {per:.2} per namespace per metrics resolution ({}s)\n",
            lists.seconds,
            METRICS_RESOLUTION.as_secs()
        ));
    }

    let hpa_at_tidal_cost = (!hpa_costs.is_empty()).then(|| {
        text.push_str(&equal_cost::render(
            &hpa_costs,
            &tidal_cost,
            sc.overload_threshold_percent(),
        ));
        equal_cost::hpa_at_cost(&hpa_costs, tidal_cost.replica_seconds)
    });

    let dir = &config.out_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut files = vec![
        hpa.write_csv(dir.join("hpa.csv"))?,
        tidal.write_csv(dir.join("tidal.csv"))?,
    ];
    for (name, _, timeline) in costlier {
        files.push(timeline.write_csv(dir.join(format!("{name}.csv")))?);
    }
    let (png, svg) = (dir.join("compare.png"), dir.join("compare.svg"));
    let plot_sides = [
        plot::Side {
            name: HPA_SIDE,
            timeline: &hpa,
        },
        plot::Side {
            name: TIDAL_SIDE,
            timeline: &tidal,
        },
    ];
    let trace_name = Path::new(config.trace.name()).file_name().map_or_else(
        || config.trace.name().to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    let title = format!("{trace_name}: built-in HPA vs Tidal");
    plot::write_png(&png, &title, &plot_sides, plot::DEFAULT_SIZE)?;
    plot::write_svg(&svg, &title, &plot_sides, plot::DEFAULT_SIZE)?;
    let summary_path = dir.join("summary.txt");
    std::fs::write(&summary_path, &text)
        .with_context(|| format!("writing {}", summary_path.display()))?;
    files.extend([png.clone(), svg.clone(), summary_path]);
    Ok(Outcome {
        namespace,
        hpa,
        tidal,
        steps,
        hpa_summary,
        tidal_summary,
        divergence,
        hpa_reactions,
        tidal_reactions,
        hpa_changes,
        tidal_changes,
        lists_per_resolution,
        hpa_costs,
        hpa_at_tidal_cost,
        summary_text: text,
        png,
        svg,
        files,
    })
}

/// The reaction to each step up after the first sample showing it (p50, p90, max): the
/// decisions a new sample drives. Steps down wait for the downscale stabilization window on
/// both sides, whatever the samples do.
pub fn step_up_distribution(hpa: &[MetricsReaction], tidal: &[MetricsReaction]) -> String {
    let line = |side: &str, reactions: &[MetricsReaction]| {
        let v: Vec<f64> = reactions
            .iter()
            .filter(|r| r.step.to_millicores > r.step.from_millicores)
            .filter_map(MetricsReaction::reaction_seconds)
            .collect();
        let q = |p: f64| quantile(&v, p).map_or_else(|| "-".to_owned(), |x| format!("{x:.2}s"));
        format!(
            "  {side}: {} steps up, p50 {}, p90 {}, max {}\n",
            v.len(),
            q(0.5),
            q(0.9),
            q(1.0)
        )
    };
    format!(
        "\nreaction to each step up after the first sample showing it became visible:\n{}{}",
        line(HPA_SIDE, hpa),
        line(TIDAL_SIDE, tidal)
    )
}

/// The reaction of every replica change after the newest metrics sample, per side (p50, p90,
/// p99, max), and whether both sides went through the same sizes in the same order.
pub fn reaction_distribution(hpa: &[ChangeReaction], tidal: &[ChangeReaction]) -> String {
    let line = |side: &str, changes: &[ChangeReaction]| {
        let v: Vec<f64> = changes
            .iter()
            .filter_map(|c| c.after_sample_seconds)
            .collect();
        let q = |p: f64| quantile(&v, p).map_or_else(|| "-".to_owned(), |x| format!("{x:.2}s"));
        format!(
            "  {side}: {} changes, p50 {}, p90 {}, p99 {}, max {}\n",
            v.len(),
            q(0.5),
            q(0.9),
            q(0.99),
            q(1.0)
        )
    };
    let sizes = |changes: &[ChangeReaction]| -> Vec<i32> { changes.iter().map(|c| c.to).collect() };
    let same = sizes(hpa) == sizes(tidal);
    format!(
        "\nreaction of every replica change after the newest PodMetrics sample became visible:\n{}{}  sizes in order: {HPA_SIDE} {:?}, {TIDAL_SIDE} {:?} ({})\n",
        line(HPA_SIDE, hpa),
        line(TIDAL_SIDE, tidal),
        sizes(hpa),
        sizes(tidal),
        if same { "same" } else { "different" }
    )
}

/// The default output directory for a trace: `<artifacts>/compare-<trace file stem>`.
pub fn default_out_dir(trace_path: &Path) -> PathBuf {
    let stem = trace_path
        .file_stem()
        .map_or_else(|| "trace".into(), |s| s.to_string_lossy().into_owned());
    crate::timeline::artifacts_dir().join(format!("compare-{stem}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> CompareConfig {
        let trace = DemandTrace::parse_csv("t.csv", "0,40\n30,40\n30,400\n60,400\n")
            .unwrap_or_else(|e| panic!("{e}"));
        CompareConfig::new(trace, PathBuf::from("/tmp/x"))
    }

    #[test]
    fn both_sides_get_the_same_hpa_spec_but_their_own_target() {
        let c = config();
        let hpa = hpa_for(&c, "hpa").unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(hpa.spec.scale_target_ref.name, "hpa");
        assert_eq!(hpa.spec.max_replicas, c.max_replicas);
        let mut twin = hpa.clone();
        twin.spec.scale_target_ref.name = "tidal".into();
        let autoscaler =
            tidal_crds::hpa::autoscaler_from_hpa(&twin).unwrap_or_else(|e| panic!("{e}"));
        let mut spec = serde_json::to_value(&autoscaler.spec).unwrap_or_default();
        spec["scaleTargetRef"]["name"] = "hpa".into();
        assert_eq!(spec, serde_json::to_value(&hpa.spec).unwrap_or_default());
    }

    #[test]
    fn a_pods_metric_replaces_cpu_in_both_sides_spec_and_bad_ones_are_refused() {
        let mut c = config();
        c.pods_metric = Some(
            "requests-per-second=50"
                .parse()
                .unwrap_or_else(|e| panic!("{e}")),
        );
        let hpa = hpa_for(&c, "hpa").unwrap_or_else(|e| panic!("{e:#}"));
        let metrics = hpa.spec.metrics.unwrap_or_default();
        assert_eq!(metrics.len(), 1);
        let pods = metrics[0].pods.as_ref().expect("a Pods metric");
        assert_eq!(pods.metric.name, "requests-per-second");
        assert_eq!(
            pods.target.average_value.as_ref().map(|q| q.0.as_str()),
            Some("50")
        );
        assert!(c.describe().contains("Pods metric requests-per-second"));
        for bad in ["rps", "rps=0", "rps=-1", "=5", "r/s=5", "rps=x"] {
            let err = bad.parse::<PodsMetric>().expect_err(bad);
            assert!(err.contains("NAME=AVERAGE"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_default_skew_is_one_sync_period_plus_one_metrics_resolution() {
        assert_eq!(
            CompareConfig::default_skew(Duration::from_secs(5)),
            Duration::from_secs(15)
        );
        assert!(config().describe().contains("batching on"));
    }
}
