//! The scale harness (`tidal-e2e scale`, `make scale`): kube-controller-manager's HPA
//! controller and Tidal on the same N objects, what each costs and whether each keeps up.
//!
//! For each N: N kwok Deployments (one pod each, a constant CPU usage at the target, so no
//! decision changes anything) spread over K new namespaces. Then, each over the same window:
//! * `baseline`: kube-controller-manager's CPU and the API server's request counts with no
//!   autoscaler at all;
//! * `kcm`: N autoscaling/v2 HPAs under kube-controller-manager as the cluster runs it;
//! * `kcm-qps`: the same after restarting kube-controller-manager with its client's QPS and
//!   burst raised (`cluster.sh restart-component`), as a platform team at that scale would;
//!   its default client settings are put back afterwards;
//! * `tidal`: the HPAs deleted, the same specs as AutoScalers, Tidal as its own process (the
//!   `tidal` binary beside `tidal-e2e`, a release build under `make scale`), with
//!   kube-controller-manager's sync period.
//!
//! Per phase: CPU-seconds from `/proc/PID/stat` (kube-controller-manager's above its
//! baseline; Tidal's whole process), peak RSS (`VmHWM`), syncs done against syncs due
//! (N × window ÷ sync period), the lag before each sync (kube-controller-manager: its HPA
//! workqueue's queue duration; Tidal: `tidal_sync_lag_seconds`), and API, metrics and status
//! requests per sync cycle. Tidal's requests come from its own client-side counters;
//! kube-controller-manager's from the API server's `apiserver_request_total` in the window
//! minus the same counts in the baseline window (every client of the API server, so other
//! kube-controller-manager controllers and kwok's steady work cancel out only as far as they
//! are steady). Output: `scale-N.csv` (one row per phase), `requests-N.csv` (per phase, verb
//! and resource), `summary.md`, and `scale.svg` (each figure against N) when several N ran.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail, ensure};
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};

use crate::harness::{Harness, TestNamespace};
use crate::operator::{self, Operator, OperatorBuilder, WorkloadKind};
use crate::workload::KwokWorkload;

/// kube-controller-manager's default client QPS and burst (its `--kube-api-qps` and
/// `--kube-api-burst`), put back after the `kcm-qps` phase.
pub const KCM_DEFAULT_QPS: u32 = 20;
/// See [`KCM_DEFAULT_QPS`].
pub const KCM_DEFAULT_BURST: u32 = 30;
/// Linux reports process CPU time in clock ticks of `USER_HZ`, which is 100 on every
/// architecture Linux exposes to user space through /proc.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;
/// CPU request of every pod: 10,000 of them fit on 2 nodes of 64 CPUs.
const CPU_REQUEST: &str = "10m";
/// CPU usage of every pod: 4.5m, which both controllers read as 5m, exactly the 50 % target, so
/// no HPA and no AutoScaler ever wants to scale and every sync is the steady-state case. Not
/// 5m: metrics-server's rates jitter in the last digits around the configured usage (5000255n,
/// 4999832n, ... seen), and a CPU quantity is read in millicores rounded up
/// (`Quantity.MilliValue()`), so 5m read as 5m or 6m, 50 % or 60 %, from one scrape to the
/// next: both controllers rewrote their status and some scaled (2026-12-03).
const CPU_USAGE: &str = "4500u";
/// The HPAs' CPU utilization target.
const TARGET_UTILIZATION: i32 = 50;
/// Objects created at once: enough to keep the API server busy, few enough not to hit its
/// max-in-flight limit.
const CREATE_CONCURRENCY: usize = 16;

/// Which controller runs during a measured phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// N HPAs, kube-controller-manager as the cluster runs it.
    Kcm,
    /// N HPAs, kube-controller-manager with its client QPS and burst raised.
    KcmQps,
    /// N AutoScalers, Tidal.
    Tidal,
}

impl Phase {
    /// The phase's name in CSVs, tables and plots.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Kcm => "kcm",
            Phase::KcmQps => "kcm-qps",
            Phase::Tidal => "tidal",
        }
    }

    /// Parses a phase name.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        match s {
            "kcm" => Ok(Phase::Kcm),
            "kcm-qps" => Ok(Phase::KcmQps),
            "tidal" => Ok(Phase::Tidal),
            other => bail!("unknown phase {other:?} (kcm, kcm-qps, tidal)"),
        }
    }
}

/// What a scale run is configured with.
#[derive(Debug, Clone)]
pub struct ScaleConfig {
    /// The object counts, one full run each.
    pub objects: Vec<usize>,
    /// Namespaces the objects are spread over.
    pub namespaces: usize,
    /// Length of each measured window (the baseline's too).
    pub window: Duration,
    /// Time between a phase's start and its window: the controller lists, starts its
    /// workers and reaches its steady rhythm [default: 2 sync periods + 10 s].
    pub warmup: Option<Duration>,
    /// The phases to run, in this order.
    pub phases: Vec<Phase>,
    /// kube-controller-manager's `--kube-api-qps` in the `kcm-qps` phase.
    pub kcm_qps: u32,
    /// kube-controller-manager's `--kube-api-burst` in the `kcm-qps` phase.
    pub kcm_burst: u32,
    /// Tidal's `--concurrency` (reconciles at once); the default is kube-controller-manager's
    /// 5 HPA workers, so both phases run the same number at once.
    pub tidal_concurrency: u16,
    /// Whether kube-controller-manager runs with `kcm_qps`/`kcm_burst` while the objects are
    /// created and deleted (restarted with its defaults before the baseline). At its default
    /// QPS it makes about 10 pods a second: some 8 minutes each way at 5,000.
    pub raise_qps_for_setup: bool,
    /// Where the CSVs, the table and the plot go.
    pub out_dir: PathBuf,
    /// `cluster.sh`, for restarting kube-controller-manager.
    pub cluster_script: PathBuf,
}

impl ScaleConfig {
    /// Every phase, kube-controller-manager's QPS raised to 500 and burst to 1,000.
    pub fn new(objects: Vec<usize>, namespaces: usize, window: Duration, out_dir: PathBuf) -> Self {
        ScaleConfig {
            objects,
            namespaces,
            window,
            warmup: None,
            phases: vec![Phase::Kcm, Phase::KcmQps, Phase::Tidal],
            kcm_qps: 500,
            kcm_burst: 1000,
            tidal_concurrency: KCM_HPA_WORKERS,
            raise_qps_for_setup: true,
            out_dir,
            cluster_script: Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster/cluster.sh"),
        }
    }
}

/// One measured phase at one N: a row of `scale-N.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The phase.
    pub phase: Phase,
    /// N.
    pub objects: usize,
    /// K.
    pub namespaces: usize,
    /// Syncs the controller runs at once (kube-controller-manager's HPA workers, Tidal's
    /// `--concurrency`).
    pub workers: u16,
    /// The window, seconds.
    pub window_seconds: f64,
    /// The sync period both controllers ran with, seconds.
    pub sync_period_seconds: f64,
    /// N × window ÷ sync period.
    pub syncs_due: f64,
    /// Syncs that started and ended within the window.
    pub syncs_done: f64,
    /// The controller's CPU-seconds in the window (kube-controller-manager's above its
    /// baseline).
    pub cpu_seconds: f64,
    /// kube-controller-manager's CPU-seconds over a window of the same length without any
    /// autoscaler.
    pub kcm_baseline_cpu_seconds: f64,
    /// `cpu_seconds` ÷ `syncs_done`, milliseconds.
    pub cpu_ms_per_sync: f64,
    /// The controller process's peak resident memory (`VmHWM`), MiB.
    pub peak_rss_mib: f64,
    /// Median wait before a sync (estimated from histogram buckets), seconds.
    pub lag_p50_seconds: f64,
    /// 99th percentile of the same.
    pub lag_p99_seconds: f64,
    /// API requests per sync cycle (one cycle = one sync period).
    pub api_requests_per_cycle: f64,
    /// metrics.k8s.io (and custom/external metrics) requests per cycle.
    pub metrics_requests_per_cycle: f64,
    /// Status writes per cycle.
    pub status_writes_per_cycle: f64,
    /// Where the request figures come from.
    pub requests_source: &'static str,
}

/// kube-controller-manager's HPA workers: `--concurrent-horizontal-pod-autoscaler-syncs`,
/// whose default cluster.sh leaves alone.
pub const KCM_HPA_WORKERS: u16 = 5;

/// Where kube-controller-manager's request figures come from (no comma: a CSV cell).
pub const KCM_REQUESTS_SOURCE: &str =
    "apiserver_request_total of kube-apiserver and metrics-server minus the baseline window";
/// Where Tidal's request figures come from.
pub const TIDAL_REQUESTS_SOURCE: &str = "tidal_api_requests_total";

/// The CSV header of [`Row`].
pub const CSV_HEADER: &str = "phase,objects,namespaces,workers,window_seconds,sync_period_seconds,syncs_due,syncs_done,cpu_seconds,kcm_baseline_cpu_seconds,cpu_ms_per_sync,peak_rss_mib,lag_p50_seconds,lag_p99_seconds,api_requests_per_cycle,metrics_requests_per_cycle,status_writes_per_cycle,requests_source";

impl Row {
    /// The row as CSV, in [`CSV_HEADER`]'s order.
    pub fn csv(&self) -> String {
        format!(
            "{},{},{},{},{:.0},{:.0},{:.0},{:.0},{:.3},{:.3},{:.3},{:.1},{:.4},{:.4},{:.2},{:.2},{:.2},{}",
            self.phase.name(),
            self.objects,
            self.namespaces,
            self.workers,
            self.window_seconds,
            self.sync_period_seconds,
            self.syncs_due,
            self.syncs_done,
            self.cpu_seconds,
            self.kcm_baseline_cpu_seconds,
            self.cpu_ms_per_sync,
            self.peak_rss_mib,
            self.lag_p50_seconds,
            self.lag_p99_seconds,
            self.api_requests_per_cycle,
            self.metrics_requests_per_cycle,
            self.status_writes_per_cycle,
            self.requests_source,
        )
    }
}

/// What a whole run produced.
#[derive(Debug)]
pub struct Outcome {
    /// Every row, by N then phase.
    pub rows: Vec<Row>,
    /// The per-N CSVs.
    pub csvs: Vec<PathBuf>,
    /// The markdown summary.
    pub summary: PathBuf,
    /// The plot, when more than one N ran.
    pub plot: Option<PathBuf>,
}

// ------------------------------------------------------------------ Prometheus text

/// One scrape of a Prometheus text endpoint: `(name, labels, value)`.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Scrape {
    /// Reads the text exposition format (comments skipped, unreadable lines ignored).
    pub fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(parse_sample)
            .collect();
        Scrape { samples }
    }

    /// Samples of `name` whose labels include every `(key, value)` of `matching`.
    pub fn series<'a>(
        &'a self,
        name: &'a str,
        matching: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = (&'a BTreeMap<String, String>, f64)> + 'a {
        self.samples
            .iter()
            .filter(move |(n, labels, _)| {
                n == name
                    && matching
                        .iter()
                        .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, labels, value)| (labels, *value))
    }

    /// The sum of [`Scrape::series`].
    pub fn sum(&self, name: &str, matching: &[(&str, &str)]) -> f64 {
        self.series(name, matching).map(|(_, v)| v).sum()
    }

    /// A histogram's cumulative buckets `(le, count)`, summed over the matching series,
    /// sorted by bound (`+Inf` last).
    pub fn buckets(&self, histogram: &str, matching: &[(&str, &str)]) -> Vec<(f64, f64)> {
        let name = format!("{histogram}_bucket");
        let mut by_le: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
        for (labels, value) in self.series(&name, matching) {
            let Some(le) = labels.get("le").and_then(|le| parse_float(le)) else {
                continue;
            };
            // f64 bounds as sortable keys: all bounds are non-negative.
            by_le.entry(le.to_bits()).or_insert((le, 0.0)).1 += value;
        }
        let mut buckets: Vec<(f64, f64)> = by_le.into_values().collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        buckets
    }
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

fn parse_sample(line: &str) -> Option<(String, BTreeMap<String, String>, f64)> {
    let (series, rest) = match line.find('{') {
        Some(_) => {
            let close = line.rfind('}')?;
            (&line[..close + 1], &line[close + 1..])
        }
        None => line.split_at(line.find(' ')?),
    };
    let value = parse_float(rest.split_whitespace().next()?)?;
    let Some(open) = series.find('{') else {
        return Some((series.to_string(), BTreeMap::new(), value));
    };
    let name = series[..open].to_string();
    let mut labels = BTreeMap::new();
    let mut body = &series[open + 1..series.len() - 1];
    while let Some(eq) = body.find("=\"") {
        let key = body[..eq].trim_start_matches(',').trim().to_string();
        let mut value = String::new();
        let mut chars = body[eq + 2..].char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(if escaped == 'n' { '\n' } else { escaped });
                    }
                }
                '"' => {
                    end = Some(eq + 2 + i + 1);
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(key, value);
        body = &body[end?..];
    }
    Some((name, labels, value))
}

/// The `q` quantile of the observations between two scrapes of a cumulative histogram,
/// interpolated linearly within the bucket as Prometheus' `histogram_quantile` does; an
/// answer in the `+Inf` bucket is the highest finite bound (a lower limit). `None` without
/// observations.
pub fn quantile(q: f64, before: &[(f64, f64)], after: &[(f64, f64)]) -> Option<f64> {
    let delta: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, count)| {
            let earlier = before
                .iter()
                .find(|(b, _)| b == le)
                .map_or(0.0, |(_, c)| *c);
            (*le, (count - earlier).max(0.0))
        })
        .collect();
    let total = delta.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for (le, count) in &delta {
        if *count >= rank {
            if le.is_infinite() {
                return Some(lower.0);
            }
            let width = count - lower.1;
            let within = if width > 0.0 {
                (rank - lower.1) / width
            } else {
                1.0
            };
            return Some(lower.0 + (le - lower.0) * within);
        }
        lower = (*le, *count);
    }
    Some(lower.0)
}

// ------------------------------------------------------------------ processes

/// A process's CPU time (user + system) from `/proc/PID/stat`, seconds.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    cpu_seconds_of_stat(&stat).ok_or_else(|| anyhow!("unreadable /proc/{pid}/stat: {stat}"))
}

/// The CPU seconds in one `/proc/PID/stat` line: the command may hold spaces and
/// parentheses, so fields are counted after its last `)`; utime and stime are fields 14 and
/// 15 of the line, the 12th and 13th after the command.
pub fn cpu_seconds_of_stat(stat: &str) -> Option<f64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / CLOCK_TICKS_PER_SECOND)
}

/// A process's peak resident memory (`VmHWM`), MiB.
pub fn peak_rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .ok_or_else(|| anyhow!("no VmHWM in /proc/{pid}/status"))
}

/// The process of a component of the cluster in `KUBECONFIG` (cluster.sh keeps the kubeconfig
/// in the cluster's directory, and kwokctl a pid file per component under it).
fn component_pid(component: &str) -> anyhow::Result<u32> {
    let kubeconfig = PathBuf::from(std::env::var_os("KUBECONFIG").context("KUBECONFIG")?);
    let clusters = kubeconfig
        .parent()
        .context("KUBECONFIG has no directory")?
        .join("kwok/clusters");
    for entry in std::fs::read_dir(&clusters)
        .with_context(|| format!("{} (is this cluster.sh's cluster?)", clusters.display()))?
    {
        let pidfile = entry?.path().join(format!("pids/{component}.pid"));
        if let Ok(text) = std::fs::read_to_string(&pidfile) {
            let pid: u32 = text
                .trim()
                .parse()
                .with_context(|| format!("{component}.pid"))?;
            ensure!(
                Path::new(&format!("/proc/{pid}")).exists(),
                "{component} (pid {pid}) is not running"
            );
            return Ok(pid);
        }
    }
    bail!("no {component} pid file under {}", clusters.display())
}

fn kcm_pid() -> anyhow::Result<u32> {
    component_pid("kube-controller-manager")
}

/// A flag of the running kube-controller-manager (`--name=value`), if it was given one.
pub fn kcm_flag(name: &str) -> anyhow::Result<Option<String>> {
    Ok(flag_of(kcm_pid()?, name).ok())
}

/// A flag's value on a process's command line (`--name=value`).
fn flag_of(pid: u32, name: &str) -> anyhow::Result<String> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))?;
    let prefix = format!("--{name}=");
    cmdline
        .split(|b| *b == 0)
        .filter_map(|a| std::str::from_utf8(a).ok())
        .find_map(|a| a.strip_prefix(&prefix).map(str::to_string))
        .ok_or_else(|| anyhow!("pid {pid} has no --{name}"))
}

/// A Go duration as kube-controller-manager's flags write it (`5s`, `1m0s`, `500ms`).
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let mut total = 0.0;
    let mut number = String::new();
    let mut rest = s;
    while !rest.is_empty() {
        let c = rest.chars().next()?;
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            rest = &rest[1..];
            continue;
        }
        let (unit, scale) = [("ms", 0.001), ("h", 3600.0), ("m", 60.0), ("s", 1.0)]
            .into_iter()
            .find(|(u, _)| rest.starts_with(u))?;
        total += number.parse::<f64>().ok()? * scale;
        number.clear();
        rest = &rest[unit.len()..];
    }
    (number.is_empty() && total > 0.0).then(|| Duration::from_secs_f64(total))
}

/// GETs `/metrics` of kube-controller-manager's secure port. kwokctl starts it with
/// `--authorization-always-allow-paths` including /metrics and anonymous authentication on,
/// so no credentials are needed; its serving certificate is self-signed (loopback only).
async fn kcm_scrape(pid: u32) -> anyhow::Result<Scrape> {
    let port = flag_of(pid, "secure-port")?;
    let address = flag_of(pid, "bind-address").unwrap_or_else(|_| "127.0.0.1".into());
    let mut config = kube::Config::new(format!("https://{address}:{port}").parse()?);
    config.accept_invalid_certs = true;
    let client = Client::try_from(config)?;
    let text = client
        .request_text(http::Request::get("/metrics").body(Vec::new())?)
        .await
        .context("kube-controller-manager /metrics")?;
    Ok(Scrape::parse(&text))
}

/// GETs metrics-server's /metrics. The API server does not count the requests it proxies to
/// an aggregated API in its own `apiserver_request_total`; metrics-server, a generic API
/// server itself, does. It authorizes /metrics by delegation, so the harness's own (admin)
/// credentials are used; its serving certificate is not for 127.0.0.1.
async fn metrics_server_scrape(harness: &Harness) -> anyhow::Result<Scrape> {
    let pid = component_pid("metrics-server")?;
    let port = flag_of(pid, "secure-port")?;
    let address = flag_of(pid, "bind-address").unwrap_or_else(|_| "127.0.0.1".into());
    let mut config = harness.config().clone();
    config.cluster_url = format!("https://{address}:{port}").parse()?;
    config.accept_invalid_certs = true;
    config.root_cert = None;
    let client = Client::try_from(config)?;
    let text = client
        .request_text(http::Request::get("/metrics").body(Vec::new())?)
        .await
        .context("metrics-server /metrics")?;
    Ok(Scrape::parse(&text))
}

async fn tidal_scrape(tidal: &Operator) -> anyhow::Result<Scrape> {
    let (_, body) = tidal
        .admin_get("/metrics")
        .await
        .context("Tidal's /metrics did not answer")?;
    Ok(Scrape::parse(&body))
}

async fn apiserver_scrape(client: &Client) -> anyhow::Result<Scrape> {
    let text = client
        .request_text(http::Request::get("/metrics").body(Vec::new())?)
        .await
        .context("kube-apiserver /metrics")?;
    Ok(Scrape::parse(&text))
}

/// Requests by `(verb, resource[.group][/subresource])` counted by the API server.
fn apiserver_requests(scrape: &Scrape) -> BTreeMap<(String, String), f64> {
    let mut out = BTreeMap::new();
    for (labels, value) in scrape.series("apiserver_request_total", &[]) {
        let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
        let mut resource = get("resource");
        if resource.is_empty() {
            continue;
        }
        if !get("group").is_empty() {
            resource = format!("{resource}.{}", get("group"));
        }
        if !get("subresource").is_empty() {
            resource = format!("{resource}/{}", get("subresource"));
        }
        // The API server counts HTTP-style verbs; name them as the audit log and Tidal's
        // counters do.
        let verb = match get("verb").as_str() {
            "PUT" => "update".to_string(),
            "POST" => "create".to_string(),
            other => other.to_lowercase(),
        };
        *out.entry((verb, resource)).or_insert(0.0) += value;
    }
    out
}

/// Tidal's own client-side counts, by the same key.
fn tidal_requests(scrape: &Scrape) -> BTreeMap<(String, String), f64> {
    let mut out = BTreeMap::new();
    for (labels, value) in scrape.series("tidal_api_requests_total", &[]) {
        let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
        *out.entry((get("verb"), get("resource"))).or_insert(0.0) += value;
    }
    out
}

fn delta(
    before: &BTreeMap<(String, String), f64>,
    after: &BTreeMap<(String, String), f64>,
) -> BTreeMap<(String, String), f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .collect()
}

/// Whether a request is a metrics API read.
fn is_metrics(resource: &str) -> bool {
    resource.ends_with(".metrics.k8s.io")
        || resource.contains(".custom.metrics.k8s.io")
        || resource.contains(".external.metrics.k8s.io")
}

/// Whether a request writes an autoscaler's status.
fn is_status_write(verb: &str, resource: &str) -> bool {
    matches!(verb, "update" | "patch" | "apply")
        && (resource == "horizontalpodautoscalers.autoscaling/status"
            || resource == "autoscalers.autoscaling.tidal.dev/status")
}

// ------------------------------------------------------------------ the run

/// Runs every N in `config.objects`; `progress` gets a line at each step.
pub async fn run(
    harness: &Harness,
    config: &ScaleConfig,
    mut progress: impl FnMut(String),
) -> anyhow::Result<Outcome> {
    ensure!(!config.objects.is_empty(), "no object counts given");
    ensure!(config.namespaces > 0, "--namespaces must be at least 1");
    std::fs::create_dir_all(&config.out_dir)
        .with_context(|| format!("creating {}", config.out_dir.display()))?;
    let mut rows = Vec::new();
    let mut csvs = Vec::new();
    let mut requests_csv = String::from("phase,objects,verb,resource,per_cycle\n");
    for &n in &config.objects {
        let (n_rows, n_requests) = run_one(harness, config, n, &mut progress).await?;
        let path = config.out_dir.join(format!("scale-{n}.csv"));
        let mut csv = format!("{CSV_HEADER}\n");
        for row in &n_rows {
            csv.push_str(&row.csv());
            csv.push('\n');
        }
        std::fs::write(&path, csv).with_context(|| format!("writing {}", path.display()))?;
        progress(format!("scale: N={n}: wrote {}", path.display()));
        csvs.push(path);
        requests_csv.push_str(&n_requests);
        // After each N, so a run that fails at a larger N keeps what it measured.
        std::fs::write(config.out_dir.join("requests.csv"), &requests_csv)?;
        rows.extend(n_rows);
    }
    let summary = config.out_dir.join("summary.md");
    std::fs::write(&summary, summary_table(&rows))?;
    let plot = if config.objects.len() > 1 {
        let path = config.out_dir.join("scale.svg");
        std::fs::write(&path, svg_plot(&rows))?;
        Some(path)
    } else {
        None
    };
    Ok(Outcome {
        rows,
        csvs,
        summary,
        plot,
    })
}

/// The node capacity check: every pod must run, or syncs measure Pending pods.
async fn check_capacity(client: &Client, n: usize) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let kwok = nodes
        .list(&ListParams::default().labels("type=kwok"))
        .await?;
    let capacity: i64 = kwok
        .items
        .iter()
        .filter_map(|node| {
            node.status
                .as_ref()?
                .allocatable
                .as_ref()?
                .get("pods")?
                .0
                .parse::<i64>()
                .ok()
        })
        .sum();
    let pods: Api<Pod> = Api::all(client.clone());
    let placed = pods
        .list(&ListParams::default().fields("spec.nodeName!="))
        .await?
        .items
        .len();
    let free = usize::try_from(capacity)
        .unwrap_or(0)
        .saturating_sub(placed);
    ensure!(
        free >= n,
        "the cluster's kwok nodes hold {capacity} pods and {placed} are placed, so {n} more do not fit: \
         start a cluster for this N with TIDAL_NODES × TIDAL_NODE_PODS ≥ N + {placed}, e.g. \
         `TIDAL_NODES={} TIDAL_NODE_PODS=250 e2e/cluster/cluster.sh up` (see README, Performance)",
        (n + placed).div_ceil(250).max(2)
    );
    Ok(())
}

fn hpa_spec(target: &str) -> anyhow::Result<serde_json::Value> {
    Ok(operator::cpu_utilization_spec(
        WorkloadKind::Deployment,
        target,
        1,
        3,
        TARGET_UTILIZATION,
    ))
}

/// The objects of one N: namespaces (deleted when dropped) and `(namespace, name)` pairs.
struct Objects {
    namespaces: Vec<TestNamespace>,
    names: Vec<(String, String)>,
}

async fn create_objects(
    harness: &Harness,
    n: usize,
    k: usize,
    progress: &mut impl FnMut(String),
) -> anyhow::Result<Objects> {
    let mut namespaces = Vec::new();
    for _ in 0..k {
        namespaces.push(harness.namespace("tidal-scale").await?);
    }
    let names: Vec<(String, String)> = (0..n)
        .map(|i| (namespaces[i % k].name().to_string(), format!("w-{i}")))
        .collect();
    let client = harness.client().clone();
    let started = Instant::now();
    futures::stream::iter(names.iter().cloned())
        .map(|(ns, name)| {
            let client = client.clone();
            async move {
                KwokWorkload::new(name)
                    .cpu_request(CPU_REQUEST)
                    .memory_request("16Mi")
                    .cpu_usage(CPU_USAGE)
                    .ready_delay(Duration::ZERO)
                    .create_deployment(&client, &ns)
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    progress(format!(
        "scale: N={n}: {n} Deployments created in {k} namespaces in {:.0}s; waiting for their pods",
        started.elapsed().as_secs_f64()
    ));
    // kube-controller-manager creates the ReplicaSets and pods at its client's QPS (20): about
    // 10 pods a second, minutes at 10,000. Pods are counted, not Deployments: the Deployments'
    // ready counts come later still, behind the same rate limit.
    let deadline = Instant::now() + Duration::from_secs(180 + n as u64 / 5);
    let mut last = Instant::now();
    loop {
        let mut ready = 0;
        for ns in &namespaces {
            let pods: Api<Pod> = Api::namespaced(client.clone(), ns.name());
            ready += pods
                .list(&ListParams::default())
                .await?
                .items
                .iter()
                .filter(|p| {
                    p.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
                })
                .count();
        }
        if ready >= n {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "only {ready} of {n} pods are Ready (capacity? see kwok nodes)"
        );
        if last.elapsed() >= Duration::from_secs(15) {
            progress(format!("scale: N={n}: {ready}/{n} pods Ready"));
            last = Instant::now();
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    progress(format!(
        "scale: N={n}: every pod Ready after {:.0}s",
        started.elapsed().as_secs_f64()
    ));
    Ok(Objects { namespaces, names })
}

async fn create_hpas(client: &Client, objects: &Objects) -> anyhow::Result<()> {
    futures::stream::iter(objects.names.iter().cloned())
        .map(|(ns, name)| {
            let client = client.clone();
            async move {
                let hpa: HorizontalPodAutoscaler = serde_json::from_value(serde_json::json!({
                    "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                    "metadata": {"name": name, "namespace": ns},
                    "spec": hpa_spec(&name)?,
                }))?;
                Api::<HorizontalPodAutoscaler>::namespaced(client, &ns)
                    .create(&PostParams::default(), &hpa)
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

async fn delete_hpas(client: &Client, objects: &Objects) -> anyhow::Result<()> {
    for ns in &objects.namespaces {
        Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns.name())
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await?;
    }
    Ok(())
}

async fn create_autoscalers(client: &Client, objects: &Objects) -> anyhow::Result<()> {
    futures::stream::iter(objects.names.iter().cloned())
        .map(|(ns, name)| {
            let client = client.clone();
            async move {
                operator::create_autoscaler(&client, &ns, &name, hpa_spec(&name)?).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Restarts kube-controller-manager with `--kube-api-qps` and `--kube-api-burst` set.
fn restart_kcm(config: &ScaleConfig, qps: u32, burst: u32) -> anyhow::Result<()> {
    let output = std::process::Command::new(&config.cluster_script)
        .args([
            "restart-component".to_string(),
            "kube-controller-manager".into(),
            format!("--kube-api-qps={qps}"),
            format!("--kube-api-burst={burst}"),
        ])
        .output()
        .with_context(|| format!("running {}", config.cluster_script.display()))?;
    ensure!(
        output.status.success(),
        "cluster.sh restart-component failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// Polls kube-controller-manager's /metrics once a second until `ready` holds for a scrape;
/// returns its pid then, or fails after `timeout` saying it did not `what`.
async fn wait_kcm(
    what: &str,
    timeout: Duration,
    ready: impl Fn(&Scrape) -> bool,
) -> anyhow::Result<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(pid) = kcm_pid()
            && let Ok(scrape) = kcm_scrape(pid).await
            && ready(&scrape)
        {
            return Ok(pid);
        }
        ensure!(
            Instant::now() < deadline,
            "kube-controller-manager did not {what} within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Waits until a restarted kube-controller-manager runs its HPA controller: its /metrics
/// answers and the HPA workqueue has had items. The new process first waits for the leader
/// Lease, which the old one does not release, so /metrics alone comes up to 15 s too early.
async fn wait_kcm_hpa_controller(timeout: Duration) -> anyhow::Result<u32> {
    wait_kcm("start its HPA controller", timeout, |s| {
        s.sum("workqueue_adds_total", &KCM_QUEUE) > 0.0
    })
    .await
}

const KCM_QUEUE: [(&str, &str); 1] = [("name", "horizontalpodautoscaler")];

/// Restarts kube-controller-manager with `qps` and `burst` and waits until the new process
/// holds the leader Lease (`leader_election_master_status`): before that it runs no
/// controller. Returns its pid.
async fn restart_kcm_leading(config: &ScaleConfig, qps: u32, burst: u32) -> anyhow::Result<u32> {
    restart_kcm(config, qps, burst)?;
    wait_kcm("lead after its restart", Duration::from_secs(120), |s| {
        s.sum(
            "leader_election_master_status",
            &[("name", "kube-controller-manager")],
        ) >= 1.0
    })
    .await
}

/// One N: objects, baseline, phases, cleanup. Returns the rows and `requests.csv` lines.
async fn run_one(
    harness: &Harness,
    config: &ScaleConfig,
    n: usize,
    progress: &mut impl FnMut(String),
) -> anyhow::Result<(Vec<Row>, String)> {
    let client = harness.client().clone();
    check_capacity(&client, n).await?;
    if config.phases.contains(&Phase::Tidal) {
        let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
            Api::all(client.clone());
        ensure!(
            crds.get_opt("autoscalers.autoscaling.tidal.dev")
                .await?
                .is_some(),
            "the AutoScaler CRD is not installed: `tidal crd | kubectl apply -f -` first"
        );
    }
    let kcm = kcm_pid()?;
    let period_text =
        flag_of(kcm, "horizontal-pod-autoscaler-sync-period").unwrap_or_else(|_| "15s".into());
    let period = parse_go_duration(&period_text)
        .ok_or_else(|| anyhow!("unreadable kube-controller-manager sync period {period_text}"))?;
    // Tidal gets kube-controller-manager's downscale stabilization too: it sets how much
    // recommendation history each controller keeps.
    let stabilization = flag_of(kcm, "horizontal-pod-autoscaler-downscale-stabilization")
        .ok()
        .and_then(|d| parse_go_duration(&d))
        .unwrap_or(Duration::from_secs(300));
    let warmup = config
        .warmup
        .unwrap_or(period * 2 + Duration::from_secs(10));
    let window = config.window;
    let cycles = window.as_secs_f64() / period.as_secs_f64();
    let due = n as f64 * cycles;
    progress(format!(
        "scale: N={n} in {} namespaces, sync period {period:?}, window {window:?}, warm-up {warmup:?}",
        config.namespaces
    ));
    if config.raise_qps_for_setup {
        progress(format!(
            "scale: N={n}: kube-controller-manager at --kube-api-qps={} --kube-api-burst={} to create the objects",
            config.kcm_qps, config.kcm_burst
        ));
        restart_kcm_leading(config, config.kcm_qps, config.kcm_burst).await?;
    }
    let objects = create_objects(harness, n, config.namespaces, progress).await?;
    let kcm = if config.raise_qps_for_setup {
        progress(format!(
            "scale: N={n}: kube-controller-manager back at its client defaults ({KCM_DEFAULT_QPS}/{KCM_DEFAULT_BURST})"
        ));
        let pid = restart_kcm_leading(config, KCM_DEFAULT_QPS, KCM_DEFAULT_BURST).await?;
        // Its start (informers listing every pod) must not count as the baseline's.
        tokio::time::sleep(warmup).await;
        pid
    } else {
        tokio::time::sleep(Duration::from_secs(5)).await;
        kcm
    };

    // Baseline: no autoscaler.
    progress(format!("scale: N={n}: baseline window (no autoscaler)"));
    let api_before = apiserver_requests(&apiserver_scrape(&client).await?);
    let cpu_before = cpu_seconds(kcm)?;
    tokio::time::sleep(window).await;
    let baseline_cpu = cpu_seconds(kcm)? - cpu_before;
    let baseline_requests = delta(
        &api_before,
        &apiserver_requests(&apiserver_scrape(&client).await?),
    );
    progress(format!(
        "scale: N={n}: kube-controller-manager baseline {baseline_cpu:.2} CPU-s in {window:?}"
    ));

    let mut rows = Vec::new();
    let mut requests_lines = String::new();
    let mut hpas = false;
    for &phase in &config.phases {
        let row_requests: BTreeMap<(String, String), f64>;
        let mut row = Row {
            phase,
            objects: n,
            namespaces: config.namespaces,
            workers: match phase {
                Phase::Tidal => config.tidal_concurrency,
                Phase::Kcm | Phase::KcmQps => KCM_HPA_WORKERS,
            },
            window_seconds: window.as_secs_f64(),
            sync_period_seconds: period.as_secs_f64(),
            syncs_due: due,
            syncs_done: 0.0,
            cpu_seconds: 0.0,
            kcm_baseline_cpu_seconds: baseline_cpu,
            cpu_ms_per_sync: 0.0,
            peak_rss_mib: 0.0,
            lag_p50_seconds: 0.0,
            lag_p99_seconds: 0.0,
            api_requests_per_cycle: 0.0,
            metrics_requests_per_cycle: 0.0,
            status_writes_per_cycle: 0.0,
            requests_source: "",
        };
        match phase {
            Phase::Kcm | Phase::KcmQps => {
                // Before a restart: the restarted controller is known to run once its HPA
                // workqueue has had items, which needs HPAs (kcm-qps run alone hung here).
                if !hpas {
                    create_hpas(&client, &objects).await?;
                    hpas = true;
                }
                let pid = if phase == Phase::KcmQps {
                    progress(format!(
                        "scale: N={n}: restarting kube-controller-manager with --kube-api-qps={} --kube-api-burst={}",
                        config.kcm_qps, config.kcm_burst
                    ));
                    restart_kcm(config, config.kcm_qps, config.kcm_burst)?;
                    wait_kcm_hpa_controller(Duration::from_secs(120)).await?
                } else {
                    kcm_pid()?
                };
                progress(format!(
                    "scale: N={n}: {}: {n} HPAs, warming up",
                    phase.name()
                ));
                tokio::time::sleep(warmup).await;
                let (api0, ms0, kcm0, cpu0) = (
                    apiserver_requests(&apiserver_scrape(&client).await?),
                    apiserver_requests(&metrics_server_scrape(harness).await?),
                    kcm_scrape(pid).await?,
                    cpu_seconds(pid)?,
                );
                progress(format!(
                    "scale: N={n}: {}: measuring {window:?}",
                    phase.name()
                ));
                tokio::time::sleep(window).await;
                let (api1, ms1, kcm1, cpu1) = (
                    apiserver_requests(&apiserver_scrape(&client).await?),
                    apiserver_requests(&metrics_server_scrape(harness).await?),
                    kcm_scrape(pid).await?,
                    cpu_seconds(pid)?,
                );
                row.cpu_seconds = (cpu1 - cpu0) - baseline_cpu;
                row.peak_rss_mib = peak_rss_mib(pid)?;
                row.syncs_done = kcm1.sum("workqueue_work_duration_seconds_count", &KCM_QUEUE)
                    - kcm0.sum("workqueue_work_duration_seconds_count", &KCM_QUEUE);
                let (b0, b1) = (
                    kcm0.buckets("workqueue_queue_duration_seconds", &KCM_QUEUE),
                    kcm1.buckets("workqueue_queue_duration_seconds", &KCM_QUEUE),
                );
                row.lag_p50_seconds = quantile(0.5, &b0, &b1).unwrap_or(f64::NAN);
                row.lag_p99_seconds = quantile(0.99, &b0, &b1).unwrap_or(f64::NAN);
                // The phase's requests above the baseline's, per request kind.
                let phase_requests = delta(&api0, &api1);
                let mut requests: BTreeMap<(String, String), f64> = phase_requests
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            (v - baseline_requests.get(k).copied().unwrap_or(0.0)).max(0.0),
                        )
                    })
                    .filter(|(_, v)| *v > 0.0)
                    .collect();
                // The metrics API reads, as metrics-server counted them (kcm is its only
                // client during the window).
                requests.extend(delta(&ms0, &ms1).into_iter().filter(|(_, v)| *v > 0.0));
                row_requests = requests;
                row.requests_source = KCM_REQUESTS_SOURCE;
                if phase == Phase::KcmQps {
                    progress(format!(
                        "scale: N={n}: putting kube-controller-manager's client defaults back ({KCM_DEFAULT_QPS}/{KCM_DEFAULT_BURST})"
                    ));
                    restart_kcm(config, KCM_DEFAULT_QPS, KCM_DEFAULT_BURST)?;
                    wait_kcm_hpa_controller(Duration::from_secs(120)).await?;
                }
            }
            Phase::Tidal => {
                if hpas {
                    delete_hpas(&client, &objects).await?;
                    hpas = false;
                }
                create_autoscalers(&client, &objects).await?;
                let lease_namespace = objects.namespaces[0].name().to_string();
                let mut tidal: Operator = OperatorBuilder::new(lease_namespace)
                    .all_namespaces()
                    .flag("leader-election", "off")
                    .flag("concurrency", config.tidal_concurrency.to_string())
                    .flag("sync-period", format!("{}ms", period.as_millis()))
                    .flag(
                        "downscale-stabilization",
                        format!("{}ms", stabilization.as_millis()),
                    )
                    .start()
                    .await?;
                progress(format!(
                    "scale: N={n}: tidal: {n} AutoScalers, operator pid {:?}, warming up",
                    tidal.pid()
                ));
                tokio::time::sleep(warmup).await;
                let pid = tidal.pid().context("the operator exited")?;
                let (m0, cpu0) = (tidal_scrape(&tidal).await?, cpu_seconds(pid)?);
                progress(format!("scale: N={n}: tidal: measuring {window:?}"));
                tokio::time::sleep(window).await;
                let (m1, cpu1) = (tidal_scrape(&tidal).await?, cpu_seconds(pid)?);
                row.cpu_seconds = cpu1 - cpu0;
                row.peak_rss_mib = peak_rss_mib(pid)?;
                row.syncs_done = m1.sum("tidal_reconciliations_total", &[])
                    - m0.sum("tidal_reconciliations_total", &[]);
                let (b0, b1) = (
                    m0.buckets("tidal_sync_lag_seconds", &[]),
                    m1.buckets("tidal_sync_lag_seconds", &[]),
                );
                row.lag_p50_seconds = quantile(0.5, &b0, &b1).unwrap_or(f64::NAN);
                row.lag_p99_seconds = quantile(0.99, &b0, &b1).unwrap_or(f64::NAN);
                row_requests = delta(&tidal_requests(&m0), &tidal_requests(&m1))
                    .into_iter()
                    .filter(|(_, v)| *v > 0.0)
                    .collect();
                row.requests_source = TIDAL_REQUESTS_SOURCE;
                tidal.terminate(Duration::from_secs(20)).await?;
                for ns in &objects.namespaces {
                    operator::autoscalers(&client, ns.name())
                        .delete_collection(&DeleteParams::default(), &ListParams::default())
                        .await?;
                }
            }
        }
        row.cpu_ms_per_sync = if row.syncs_done > 0.0 {
            row.cpu_seconds * 1000.0 / row.syncs_done
        } else {
            f64::NAN
        };
        // `+ 0.0` turns an empty sum's -0.0 into 0.
        row.api_requests_per_cycle = row_requests.values().sum::<f64>() / cycles + 0.0;
        row.metrics_requests_per_cycle = row_requests
            .iter()
            .filter(|((_, r), _)| is_metrics(r))
            .map(|(_, v)| v)
            .sum::<f64>()
            / cycles
            + 0.0;
        row.status_writes_per_cycle = row_requests
            .iter()
            .filter(|((verb, r), _)| is_status_write(verb, r))
            .map(|(_, v)| v)
            .sum::<f64>()
            / cycles
            + 0.0;
        for ((verb, resource), count) in &row_requests {
            let _ = writeln!(
                requests_lines,
                "{},{n},{verb},{resource},{:.2}",
                phase.name(),
                count / cycles
            );
        }
        progress(format!(
            "scale: N={n}: {}: syncs {:.0}/{:.0}, CPU {:.2} s ({:.2} ms/sync), RSS {:.0} MiB, lag p50 {:.3} s p99 {:.3} s, {:.1} requests/cycle ({:.1} metrics, {:.1} status writes)",
            phase.name(),
            row.syncs_done,
            row.syncs_due,
            row.cpu_seconds,
            row.cpu_ms_per_sync,
            row.peak_rss_mib,
            row.lag_p50_seconds,
            row.lag_p99_seconds,
            row.api_requests_per_cycle,
            row.metrics_requests_per_cycle,
            row.status_writes_per_cycle
        ));
        rows.push(row);
    }
    if hpas {
        delete_hpas(&client, &objects).await?;
    }
    if config.raise_qps_for_setup {
        restart_kcm_leading(config, config.kcm_qps, config.kcm_burst).await?;
    }
    progress(format!("scale: N={n}: deleting the namespaces"));
    let names: Vec<String> = objects
        .namespaces
        .iter()
        .map(|ns| ns.name().to_string())
        .collect();
    drop(objects);
    // At the default QPS kube-controller-manager deletes about 10 pods a second.
    wait_namespaces_gone(&client, &names, Duration::from_secs(300 + n as u64 / 5)).await?;
    if config.raise_qps_for_setup {
        // The next N, and whoever uses the cluster next, find it as it was.
        restart_kcm_leading(config, KCM_DEFAULT_QPS, KCM_DEFAULT_BURST).await?;
    }
    Ok((rows, requests_lines))
}

/// The next N needs the pods' capacity back.
async fn wait_namespaces_gone(
    client: &Client,
    names: &[String],
    timeout: Duration,
) -> anyhow::Result<()> {
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let deadline = Instant::now() + timeout;
    loop {
        let mut left = 0;
        for name in names {
            if namespaces.get_opt(name).await?.is_some() {
                left += 1;
            }
        }
        if left == 0 {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{left} namespaces still terminating after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

// ------------------------------------------------------------------ reports

fn figure(value: f64, decimals: usize) -> String {
    if value.is_nan() {
        "n/a".into()
    } else {
        format!("{value:.decimals$}")
    }
}

/// The markdown table of every row.
pub fn summary_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| N | phase | workers | syncs done / due | CPU-s (ms/sync) | peak RSS MiB | lag p50 / p99 s | API req/cycle | metrics req/cycle | status writes/cycle |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} / {:.0} | {} ({}) | {:.0} | {} / {} | {} | {} | {} |",
            r.objects,
            r.phase.name(),
            r.workers,
            r.syncs_done,
            r.syncs_due,
            figure(r.cpu_seconds, 2),
            figure(r.cpu_ms_per_sync, 2),
            r.peak_rss_mib,
            figure(r.lag_p50_seconds, 3),
            figure(r.lag_p99_seconds, 3),
            figure(r.api_requests_per_cycle, 1),
            figure(r.metrics_requests_per_cycle, 1),
            figure(r.status_writes_per_cycle, 1),
        );
    }
    if let Some(first) = rows.first() {
        let _ = writeln!(
            out,
            "\nWindow {:.0} s per phase, sync period {:.0} s; kcm CPU is above its baseline without \
             HPAs (kcm rows' `kcm_baseline_cpu_seconds` in the CSVs); kcm requests are the API \
             server's counts above the baseline window's (every client; metrics reads as \
             metrics-server counted them), Tidal's its own client-side counts. Lags are \
             estimated from histogram buckets; one equal to the largest finite bucket bound \
             (10 s for kcm's workqueue histogram, 65.5 s for Tidal's) means at least that.",
            first.window_seconds, first.sync_period_seconds
        );
    }
    out
}

/// The figures plotted against N, with how to read each from a row.
type Figure = (&'static str, fn(&Row) -> f64);

const FIGURES: [Figure; 6] = [
    ("syncs done / due", |r| r.syncs_done / r.syncs_due),
    ("CPU ms per sync", |r| r.cpu_ms_per_sync),
    ("peak RSS MiB", |r| r.peak_rss_mib),
    ("sync lag p99 s", |r| r.lag_p99_seconds),
    ("API requests per cycle", |r| r.api_requests_per_cycle),
    ("status writes per cycle", |r| r.status_writes_per_cycle),
];

/// One small panel per figure, each phase a line against N (log scale).
pub fn svg_plot(rows: &[Row]) -> String {
    const W: f64 = 320.0;
    const H: f64 = 220.0;
    const M: f64 = 40.0;
    let colours = [
        (Phase::Kcm, "#d62728"),
        (Phase::KcmQps, "#ff7f0e"),
        (Phase::Tidal, "#1f77b4"),
    ];
    let ns: Vec<f64> = rows.iter().map(|r| r.objects as f64).collect();
    let (lo, hi) = (
        ns.iter()
            .copied()
            .fold(f64::INFINITY, f64::min)
            .max(1.0)
            .log10(),
        ns.iter().copied().fold(0.0, f64::max).max(1.0).log10(),
    );
    let span = if hi > lo { hi - lo } else { 1.0 };
    let columns = 3.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        W * columns,
        H * 2.0 + 30.0
    );
    for (i, (title, get)) in FIGURES.iter().enumerate() {
        let (x0, y0) = ((i % 3) as f64 * W, (i / 3) as f64 * H + 30.0);
        let values: Vec<f64> = rows.iter().map(get).filter(|v| v.is_finite()).collect();
        let top = values.iter().copied().fold(0.0, f64::max).max(1e-9) * 1.1;
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" font-weight=\"bold\">{title}</text>\n<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n<text x=\"{}\" y=\"{}\">{}</text>",
            x0 + M,
            y0 + 12.0,
            x0 + M,
            y0 + H - M,
            x0 + W - 10.0,
            y0 + H - M,
            x0 + M,
            y0 + 20.0,
            x0 + M,
            y0 + H - M,
            x0 + 2.0,
            y0 + 28.0,
            figure(top, 2),
        );
        let x = |n: f64| x0 + M + (n.max(1.0).log10() - lo) / span * (W - M - 20.0);
        let y = |v: f64| y0 + H - M - v / top * (H - M - 30.0);
        let mut labelled = std::collections::BTreeSet::new();
        for r in rows {
            if labelled.insert(r.objects) {
                let _ = writeln!(
                    svg,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                    x(r.objects as f64),
                    y0 + H - M + 14.0,
                    r.objects
                );
            }
        }
        for (phase, colour) in colours {
            let points: Vec<String> = rows
                .iter()
                .filter(|r| r.phase == phase)
                .map(|r| (r.objects as f64, get(r)))
                .filter(|(_, v)| v.is_finite())
                .map(|(n, v)| format!("{:.1},{:.1}", x(n), y(v)))
                .collect();
            if !points.is_empty() {
                let _ = writeln!(
                    svg,
                    "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
                    points.join(" ")
                );
            }
        }
    }
    for (i, (phase, colour)) in colours.iter().enumerate() {
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"16\" fill=\"{colour}\" font-weight=\"bold\">{}</text>",
            10.0 + i as f64 * 90.0,
            phase.name()
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP workqueue_adds_total adds
# TYPE workqueue_adds_total counter
workqueue_adds_total{name="horizontalpodautoscaler"} 120
workqueue_adds_total{name="deployment"} 7
workqueue_queue_duration_seconds_bucket{name="horizontalpodautoscaler",le="0.1"} 10
workqueue_queue_duration_seconds_bucket{name="horizontalpodautoscaler",le="1"} 90
workqueue_queue_duration_seconds_bucket{name="horizontalpodautoscaler",le="10"} 100
workqueue_queue_duration_seconds_bucket{name="horizontalpodautoscaler",le="+Inf"} 100
apiserver_request_total{code="200",component="apiserver",group="metrics.k8s.io",resource="pods",scope="namespace",subresource="",verb="LIST",version="v1beta1"} 4
apiserver_request_total{code="200",component="apiserver",group="autoscaling",resource="horizontalpodautoscalers",scope="namespace",subresource="status",verb="PUT",version="v2"} 2
process_cpu_seconds_total 3.5
label_with_escapes{path="a\"b,c"} 1
"#;

    #[test]
    fn scrapes_are_read_by_name_and_labels() {
        let scrape = Scrape::parse(TEXT);
        assert_eq!(scrape.sum("workqueue_adds_total", &KCM_QUEUE), 120.0);
        assert_eq!(scrape.sum("workqueue_adds_total", &[]), 127.0);
        assert_eq!(scrape.sum("process_cpu_seconds_total", &[]), 3.5);
        assert_eq!(scrape.sum("label_with_escapes", &[("path", "a\"b,c")]), 1.0);
        let requests = apiserver_requests(&scrape);
        assert_eq!(
            requests[&("list".into(), "pods.metrics.k8s.io".into())],
            4.0
        );
        assert_eq!(
            requests[&(
                "update".into(),
                "horizontalpodautoscalers.autoscaling/status".into()
            )],
            2.0
        );
        assert!(is_metrics("pods.metrics.k8s.io"));
        assert!(is_status_write(
            "update",
            "horizontalpodautoscalers.autoscaling/status"
        ));
        assert!(is_status_write(
            "patch",
            "autoscalers.autoscaling.tidal.dev/status"
        ));
        assert!(!is_status_write(
            "get",
            "autoscalers.autoscaling.tidal.dev/status"
        ));
    }

    #[test]
    fn quantiles_come_from_the_observations_between_two_scrapes() {
        let after = Scrape::parse(TEXT).buckets("workqueue_queue_duration_seconds", &KCM_QUEUE);
        assert_eq!(after.len(), 4);
        let none: Vec<(f64, f64)> = Vec::new();
        // 100 observations: 10 ≤ 0.1 s, 80 in (0.1, 1], 10 in (1, 10].
        let p50 = quantile(0.5, &none, &after).expect("p50");
        assert!((p50 - (0.1 + 0.9 * 40.0 / 80.0)).abs() < 1e-9, "{p50}");
        let p99 = quantile(0.99, &none, &after).expect("p99");
        assert!((p99 - (1.0 + 9.0 * 9.0 / 10.0)).abs() < 1e-9, "{p99}");
        // Nothing observed in between: no quantile, not zero.
        assert_eq!(quantile(0.5, &after, &after), None);
        // Everything past the last finite bound: that bound, a lower limit.
        let before = vec![(1.0, 0.0), (f64::INFINITY, 0.0)];
        let slow = vec![(1.0, 0.0), (f64::INFINITY, 5.0)];
        assert_eq!(quantile(0.5, &before, &slow), Some(1.0));
    }

    #[test]
    fn cpu_time_is_read_after_the_command_even_with_spaces_and_parentheses() {
        let stat = "4242 (kube (controller) m) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 566 0 0 20 0 12 0 100 0 0";
        assert_eq!(cpu_seconds_of_stat(stat), Some(18.0));
        assert_eq!(cpu_seconds_of_stat("garbage"), None);
    }

    #[test]
    fn go_durations_of_the_sync_period_flag_are_read() {
        assert_eq!(parse_go_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_go_duration("1m0s"), Some(Duration::from_secs(60)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("5"), None);
        assert_eq!(parse_go_duration("soon"), None);
    }

    fn row(phase: Phase, n: usize) -> Row {
        Row {
            phase,
            objects: n,
            namespaces: 2,
            workers: 5,
            window_seconds: 60.0,
            sync_period_seconds: 5.0,
            syncs_due: n as f64 * 12.0,
            syncs_done: n as f64 * 10.0,
            cpu_seconds: 1.5,
            kcm_baseline_cpu_seconds: 0.5,
            cpu_ms_per_sync: 1.5,
            peak_rss_mib: 50.0,
            lag_p50_seconds: 0.01,
            lag_p99_seconds: 0.2,
            api_requests_per_cycle: 100.0,
            metrics_requests_per_cycle: 2.0,
            status_writes_per_cycle: f64::NAN,
            requests_source: "tidal_api_requests_total",
        }
    }

    #[test]
    fn every_row_fills_every_csv_column_and_the_table_says_what_is_missing() {
        for source in [KCM_REQUESTS_SOURCE, TIDAL_REQUESTS_SOURCE] {
            let r = Row {
                requests_source: source,
                ..row(Phase::Kcm, 100)
            };
            assert_eq!(
                r.csv().split(',').count(),
                CSV_HEADER.split(',').count(),
                "{}",
                r.csv()
            );
        }
        let r = row(Phase::Tidal, 100);
        let table = summary_table(&[r]);
        assert!(
            table.contains("| 100 | tidal | 5 | 1000 / 1200 |"),
            "{table}"
        );
        assert!(table.contains("| n/a |"), "{table}");
    }

    #[test]
    fn the_plot_draws_one_line_per_phase_per_figure() {
        let rows = [
            row(Phase::Kcm, 100),
            row(Phase::Kcm, 1000),
            row(Phase::Tidal, 100),
            row(Phase::Tidal, 1000),
        ];
        let svg = svg_plot(&rows);
        // Six figures, two phases with points; status writes are NaN throughout.
        assert_eq!(svg.matches("<polyline").count(), 5 * 2, "{svg}");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
    }
}
