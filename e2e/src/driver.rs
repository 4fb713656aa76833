//! The load driver: turns a demand over time into per-pod usage that kwok
//! reports to metrics-server.
//!
//! Every tick it lists the workload's pods and sets each Ready pod's
//! `kwok.x-k8s.io/usage-cpu` (and, when the demand has memory,
//! `kwok.x-k8s.io/usage-memory`) annotation to demand ÷ Ready pods, as a
//! Service spreads requests over its endpoints: scaling out lowers per-pod
//! usage, as it would in production. Running pods that are not Ready get no
//! traffic and so only an idle CPU usage.
//!
//! kwok reports a pod's annotated usage for every container of the pod, so a
//! pod with two containers uses twice the share: give driven workloads one
//! container.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::demand::{Demand, DemandTrace};
use crate::error::Result;
use crate::quantity;
use crate::scrape_clock::ScrapeClock;
use crate::wait::{is_ready, pods};

/// kwok's per-pod CPU usage annotation (read by the cluster's
/// `usage-from-annotation` ClusterResourceUsage).
pub const USAGE_CPU_ANNOTATION: &str = "kwok.x-k8s.io/usage-cpu";
/// kwok's per-pod memory usage annotation.
pub const USAGE_MEMORY_ANNOTATION: &str = "kwok.x-k8s.io/usage-memory";

/// Patches in flight at once: enough for a couple of hundred pods per second
/// on loopback without queueing behind the apiserver's default limits.
const PATCH_CONCURRENCY: usize = 16;

/// Where the driver gets the total demand for an instant.
pub trait DemandSource: Send + Sync {
    /// Total demand `elapsed` after the driver started.
    fn demand(&self, elapsed: Duration) -> Demand;
}

impl DemandSource for DemandTrace {
    fn demand(&self, elapsed: Duration) -> Demand {
        self.at(elapsed.as_secs_f64())
    }
}

/// A demand a test changes while the driver runs (e.g. "raise the load once
/// the workload is settled"), for phases tied to what the cluster did rather
/// than to fixed times.
#[derive(Clone)]
pub struct SharedDemand(Arc<Mutex<Demand>>);

impl SharedDemand {
    /// Starts at `initial`.
    pub fn new(initial: Demand) -> Self {
        Self(Arc::new(Mutex::new(initial)))
    }

    /// Sets the demand from the next tick on.
    pub fn set(&self, demand: Demand) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = demand;
    }

    /// The current demand.
    pub fn get(&self) -> Demand {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl DemandSource for SharedDemand {
    fn demand(&self, _elapsed: Duration) -> Demand {
        self.get()
    }
}

/// What one tick did.
#[derive(Debug, Clone)]
pub struct TickReport {
    /// Time since the driver started.
    pub elapsed: Duration,
    /// When the tick's patches had all been answered.
    pub applied_at: Instant,
    /// Total demand applied.
    pub demand: Demand,
    /// Pods matching the selector and not being deleted.
    pub pods: usize,
    /// Of those, Ready ones (the ones that share the demand).
    pub ready: usize,
    /// Usage set on each Ready pod, in millicores (as written, rounded).
    pub per_pod_millicores: f64,
    /// Pods whose annotations changed this tick.
    pub patched: usize,
    /// Patches that failed (a pod deleted meanwhile, for instance).
    pub failed: usize,
}

/// Applies demand to the pods matching a label selector in one namespace.
#[derive(Clone)]
pub struct Driver {
    client: Client,
    namespace: String,
    selector: String,
    tick: Duration,
    idle_millicores: f64,
    scrapes: Option<ScrapeClock>,
}

impl Driver {
    /// A driver with a one-second tick and zero idle usage.
    pub fn new(client: Client, namespace: impl Into<String>, selector: impl Into<String>) -> Self {
        Self {
            client,
            namespace: namespace.into(),
            selector: selector.into(),
            tick: Duration::from_secs(1),
            idle_millicores: 0.0,
            scrapes: None,
        }
    }

    /// Time between ticks.
    pub fn tick(mut self, tick: Duration) -> Self {
        self.tick = tick;
        self
    }

    /// Changes usage only between metrics-server scrapes as `clock` predicts them: a tick in
    /// the last seconds before a scrape is skipped, so no sample mixes two ticks' usage.
    pub fn between_scrapes(mut self, clock: ScrapeClock) -> Self {
        self.scrapes = Some(clock);
        self
    }

    /// CPU usage of Running pods that are not Ready (they get no requests).
    pub fn idle_millicores(mut self, m: f64) -> Self {
        self.idle_millicores = m;
        self
    }

    /// One tick: spreads `demand` over the Ready pods now.
    pub async fn apply(&self, demand: Demand, elapsed: Duration) -> Result<TickReport> {
        let all = pods(&self.client, &self.namespace, &self.selector).await?;
        let live: Vec<&Pod> = all
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        let ready = live.iter().filter(|p| is_ready(p)).count();
        let share = |total: f64| {
            if ready == 0 {
                0.0
            } else {
                total / ready as f64
            }
        };
        let cpu_ready = quantity::format_cpu(share(demand.millicores));
        let cpu_idle = quantity::format_cpu(self.idle_millicores);
        let mem_ready = demand
            .memory_bytes
            .map(|m| quantity::format_bytes(share(m)));

        let mut patches = Vec::new();
        for pod in &live {
            let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
            if !running {
                continue; // not started: nothing could be using resources
            }
            let mut want = vec![(
                USAGE_CPU_ANNOTATION,
                if is_ready(pod) { &cpu_ready } else { &cpu_idle },
            )];
            if is_ready(pod)
                && let Some(m) = &mem_ready
            {
                want.push((USAGE_MEMORY_ANNOTATION, m));
            }
            let current = pod.metadata.annotations.as_ref();
            let changed: serde_json::Map<String, serde_json::Value> = want
                .into_iter()
                .filter(|(k, v)| current.and_then(|a| a.get(*k)) != Some(*v))
                .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v.clone())))
                .collect();
            if let (false, Some(name)) = (changed.is_empty(), pod.metadata.name.clone()) {
                patches.push((
                    name,
                    serde_json::json!({ "metadata": { "annotations": changed } }),
                ));
            }
        }

        let api = Api::<Pod>::namespaced(self.client.clone(), &self.namespace);
        let params = PatchParams::default();
        let results: Vec<bool> = futures::stream::iter(patches)
            .map(|(name, body)| {
                let (api, params) = (&api, &params);
                async move {
                    match api.patch(&name, params, &Patch::Merge(&body)).await {
                        Ok(_) => true,
                        Err(e) => {
                            tracing::debug!(pod = %name, error = %e, "usage patch failed");
                            false
                        }
                    }
                }
            })
            .buffer_unordered(PATCH_CONCURRENCY)
            .collect()
            .await;
        let patched = results.iter().filter(|ok| **ok).count();
        Ok(TickReport {
            elapsed,
            applied_at: Instant::now(),
            demand,
            pods: live.len(),
            ready,
            per_pod_millicores: quantity::cpu_millis(&cpu_ready).unwrap_or(0.0),
            patched,
            failed: results.len() - patched,
        })
    }

    /// Ticks until `duration` has passed (forever when `None`), calling
    /// `on_tick` after each. A failed tick is logged and the next one tried:
    /// a blip of the apiserver should not end a long load run.
    pub async fn run<S, F>(
        &self,
        source: &S,
        duration: Option<Duration>,
        mut on_tick: F,
    ) -> Result<()>
    where
        S: DemandSource + ?Sized,
        F: FnMut(&TickReport),
    {
        let start = Instant::now();
        let mut interval = tokio::time::interval(self.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let elapsed = start.elapsed();
            if duration.is_some_and(|d| elapsed > d) {
                return Ok(());
            }
            if self
                .scrapes
                .as_ref()
                .is_some_and(|c| !c.open(Instant::now()))
            {
                continue;
            }
            match self.apply(source.demand(elapsed), elapsed).await {
                Ok(report) => on_tick(&report),
                Err(e) => tracing::warn!(error = %e, "driver tick failed"),
            }
        }
    }

    /// Runs the driver in the background until [`RunningDriver::stop`].
    pub fn spawn(self, source: Arc<dyn DemandSource>) -> RunningDriver {
        let (stop_tx, stop_rx) = oneshot::channel();
        let (report_tx, report_rx) = watch::channel(None);
        let handle = tokio::spawn(async move {
            tokio::select! {
                r = self.run(source.as_ref(), None, |r| { let _ = report_tx.send(Some(r.clone())); }) => r,
                _ = stop_rx => Ok(()),
            }
        });
        RunningDriver {
            stop: stop_tx,
            reports: report_rx,
            handle,
        }
    }
}

/// A driver running in the background.
pub struct RunningDriver {
    stop: oneshot::Sender<()>,
    reports: watch::Receiver<Option<TickReport>>,
    handle: JoinHandle<Result<()>>,
}

impl RunningDriver {
    /// The latest tick's report.
    pub fn latest(&self) -> Option<TickReport> {
        self.reports.borrow().clone()
    }

    /// A receiver of every tick's report, for observers running beside the test.
    pub fn reports(&self) -> watch::Receiver<Option<TickReport>> {
        self.reports.clone()
    }

    /// Waits for the first tick that satisfies `pred` (checked from the
    /// latest one on).
    pub async fn wait_for(&mut self, pred: impl Fn(&TickReport) -> bool) -> Option<TickReport> {
        self.reports
            .wait_for(|r| r.as_ref().is_some_and(&pred))
            .await
            .ok()
            .and_then(|r| r.clone())
    }

    /// Stops the driver and returns how its task ended.
    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        match self.handle.await {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_demand_is_read_at_every_tick() {
        let d = SharedDemand::new(Demand::cpu(100.0));
        assert_eq!(d.demand(Duration::ZERO).millicores, 100.0);
        d.set(Demand::cpu(900.0));
        assert_eq!(d.demand(Duration::from_secs(5)).millicores, 900.0);
    }

    #[test]
    fn a_trace_is_sampled_at_the_elapsed_time() {
        let t = match DemandTrace::parse_csv("t", "0,0\n10,1000\n") {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(t.demand(Duration::from_millis(2500)).millicores, 250.0);
    }
}
