//! Tests that disturb the shared control plane: they stop cluster
//! components that every other test depends on. Run them alone, after the
//! others, and only on purpose:
//!
//! ```sh
//! TIDAL_E2E_DISRUPTIVE=1 cargo test -p tidal-e2e --test operator_disruptive -- --ignored --test-threads 1
//! ```
//!
//! Without `TIDAL_E2E_DISRUPTIVE=1` each test returns at once (a plain
//! `cargo test -- --ignored` of the whole crate must not take metrics-server
//! away from tests running beside it).

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::os::unix::ffi::OsStringExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use tidal_e2e::crd;
use tidal_e2e::driver::{Driver, SharedDemand};
use tidal_e2e::harness::Harness;
use tidal_e2e::metrics;
use tidal_e2e::operator::{self, OperatorBuilder, Scaled, WorkloadKind, condition_text};
use tidal_e2e::trace::Demand;
use tidal_e2e::wait;
use tidal_e2e::workload::KwokWorkload;

const DISRUPTIVE_ENV: &str = "TIDAL_E2E_DISRUPTIVE";
const SYNC: Duration = Duration::from_secs(5);

fn enabled() -> bool {
    let on = std::env::var_os(DISRUPTIVE_ENV).is_some_and(|v| v == "1");
    if !on {
        eprintln!("skipped: set {DISRUPTIVE_ENV}=1 and run this binary alone");
    }
    on
}

/// The cluster's metrics-server process, as kwokctl's binary runtime
/// started it (a daemon whose arguments name the cluster's directory).
/// Stopping it keeps what is needed to start it again exactly so; dropping
/// the guard starts it again if the test did not.
struct MetricsServer {
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    cwd: PathBuf,
    pid_file: PathBuf,
    log: PathBuf,
    stopped: bool,
}

fn split_nul(bytes: Vec<u8>) -> Vec<OsString> {
    bytes
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| OsString::from_vec(s.to_vec()))
        .collect()
}

impl MetricsServer {
    /// Finds the process of the cluster whose kubeconfig is `KUBECONFIG`.
    fn find() -> anyhow::Result<(u32, Self)> {
        let kubeconfig = PathBuf::from(
            std::env::var_os("KUBECONFIG").ok_or_else(|| anyhow!("KUBECONFIG unset"))?,
        );
        let cluster_dir = kubeconfig
            .parent()
            .ok_or_else(|| anyhow!("KUBECONFIG has no directory"))?;
        let needle = cluster_dir.join("kwok").display().to_string();
        for entry in std::fs::read_dir("/proc")? {
            let entry = entry?;
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let args = split_nul(cmdline);
            let Some(exe) = args.first() else { continue };
            let is_ms = Path::new(exe)
                .file_name()
                .is_some_and(|n| n == "metrics-server");
            let ours = args.iter().any(|a| a.to_string_lossy().contains(&needle));
            if !(is_ms && ours) {
                continue;
            }
            let env = split_nul(std::fs::read(entry.path().join("environ"))?)
                .into_iter()
                .filter_map(|kv| {
                    let kv = kv.into_vec();
                    let eq = kv.iter().position(|b| *b == b'=')?;
                    Some((
                        OsString::from_vec(kv[..eq].to_vec()),
                        OsString::from_vec(kv[eq + 1..].to_vec()),
                    ))
                })
                .collect();
            let cwd = std::fs::read_link(entry.path().join("cwd"))?;
            let clusters = Path::new(&needle).join("clusters");
            let name = std::fs::read_dir(&clusters)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.join("pids").join("metrics-server.pid").is_file())
                .ok_or_else(|| anyhow!("no metrics-server.pid under {}", clusters.display()))?;
            return Ok((
                pid,
                MetricsServer {
                    args,
                    env,
                    cwd,
                    pid_file: name.join("pids").join("metrics-server.pid"),
                    log: name.join("logs").join("metrics-server.log"),
                    stopped: false,
                },
            ));
        }
        bail!("no metrics-server process under {needle}")
    }

    /// Stops the running metrics-server (SIGTERM, then waits for it to go).
    fn stop() -> anyhow::Result<Self> {
        let (pid, mut ms) = Self::find()?;
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()?;
        if !status.success() {
            bail!("kill -TERM {pid} failed");
        }
        let start = Instant::now();
        while Path::new(&format!("/proc/{pid}")).exists() {
            if start.elapsed() > Duration::from_secs(20) {
                bail!("metrics-server {pid} did not exit");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        ms.stopped = true;
        eprintln!("stopped metrics-server (pid {pid})");
        Ok(ms)
    }

    /// Starts it again with the same arguments, environment and directory,
    /// detached (its own process group, as kwokctl left it), and records
    /// the new pid where kwokctl and cluster.sh look for it.
    fn start(&mut self) -> anyhow::Result<()> {
        if !self.stopped {
            return Ok(());
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(&self.args[0])
            .args(&self.args[1..])
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.cwd)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("restarting metrics-server")?;
        std::fs::write(&self.pid_file, child.id().to_string())?;
        eprintln!("started metrics-server again (pid {})", child.id());
        self.stopped = false;
        Ok(())
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Err(e) = self.start() {
            eprintln!("COULD NOT RESTART metrics-server: {e:#}; run e2e/cluster/cluster.sh up");
        }
    }
}

/// With the resource metrics API gone, the operator changes nothing and
/// says why (ScalingActive=False naming the APIService); once the API
/// answers again it acts within one sync period.
#[tokio::test]
#[ignore = "needs the local control plane: make e2e; disruptive: run alone"]
async fn without_the_metrics_api_nothing_scales_and_it_recovers_within_one_sync()
-> anyhow::Result<()> {
    if !enabled() {
        return Ok(());
    }
    let h = Harness::connect().await?;
    let ns = h.namespace("op-metrics-down").await?;
    let c = h.client();
    crd::install(c).await?;

    let web = KwokWorkload::new("web")
        .replicas(2)
        .cpu_request("100m")
        .ready_delay(Duration::from_secs(2));
    web.create_deployment(c, ns.name()).await?;
    wait::ready_pods(c, ns.name(), &web.selector(), 2, Duration::from_secs(60)).await?;
    let _op = OperatorBuilder::new(ns.name())
        .flag("sync-period", "5s")
        .flag("downscale-stabilization", "30s")
        .start()
        .await?;
    operator::create_autoscaler(
        c,
        ns.name(),
        "web",
        operator::cpu_utilization_spec(WorkloadKind::Deployment, "web", 1, 8, 50),
    )
    .await?;
    let scaled = Scaled::named(c, ns.name(), WorkloadKind::Deployment, "web");
    // 100m over two pods: on target, the size holds at 2.
    let demand = SharedDemand::new(Demand::cpu(100.0));
    let driver = Driver::new(c.clone(), ns.name(), web.selector()).spawn(Arc::new(demand.clone()));

    let outcome = async {
        scaled
            .until("a valid metric", Duration::from_secs(90), || async {
                let v = scaled.view().await?;
                Ok(v.condition("ScalingActive")
                    .is_some_and(|c| c.status == "True")
                    .then_some(()))
            })
            .await?;
        let before = scaled.spec_replicas().await?;

        let mut ms = MetricsServer::stop()?;
        let t_stop = Instant::now();
        // Load that would need 8 pods, if anyone could see it.
        demand.set(Demand::cpu(400.0));
        let failed = scaled
            .until(
                "ScalingActive=False naming the APIService",
                Duration::from_secs(60),
                || async {
                    let v = scaled.view().await?;
                    let c = v.condition("ScalingActive").cloned();
                    let named = c.as_ref().is_some_and(|c| {
                        c.status == "False"
                            && c.reason.as_deref() == Some("FailedGetResourceMetric")
                            && c.message
                                .as_deref()
                                .is_some_and(|m| m.contains("APIService v1beta1.metrics.k8s.io"))
                    });
                    Ok(named.then_some(c))
                },
            )
            .await?;
        println!(
            "{:?} after the stop: {} {:?}",
            t_stop.elapsed(),
            condition_text(failed.as_ref()),
            failed.as_ref().and_then(|c| c.message.clone())
        );
        // A further three syncs without metrics: still no scale action.
        let quiet_until = Instant::now() + 3 * SYNC;
        while Instant::now() < quiet_until {
            let now = scaled.spec_replicas().await?;
            anyhow::ensure!(now == before, "scaled {before} -> {now} without metrics");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }

        ms.start()?;
        // The API is back once PodMetrics are listed again (two scrapes).
        let t_api = scaled
            .until("PodMetrics again", Duration::from_secs(90), || async {
                let usage = metrics::pod_usage(c, ns.name(), &web.selector())
                    .await
                    .unwrap_or_default();
                Ok((!usage.is_empty()).then(Instant::now))
            })
            .await?;
        let t_active = scaled
            .until(
                "ScalingActive=True again",
                Duration::from_secs(60),
                || async {
                    let v = scaled.view().await?;
                    Ok(v.condition("ScalingActive")
                        .is_some_and(|c| c.status == "True")
                        .then(Instant::now))
                },
            )
            .await?;
        let recovery = t_active.saturating_duration_since(t_api);
        println!("ScalingActive=True {recovery:?} after PodMetrics were listed again");
        anyhow::ensure!(
            recovery <= SYNC + Duration::from_secs(2),
            "recovered {recovery:?} after the API returned, more than one sync ({SYNC:?})"
        );
        scaled
            .wait_replicas(
                "the scale-out after recovery",
                Duration::from_secs(60),
                |r| r > before,
            )
            .await?;
        anyhow::Ok(())
    }
    .await;
    driver.stop().await?;
    outcome
}
