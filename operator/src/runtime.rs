//! Wires flags → client → caches → leader election → controller → admin server, and stops
//! cleanly on SIGTERM/SIGINT.

use std::sync::Arc;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::controller::Controller;
use kube::runtime::events::Reporter;
use kube::runtime::reflector;
use kube::runtime::{WatchStreamExt, predicates, watcher};
use tidal_crds::AutoScaler;
use tidal_metrics_client::{BatchingConfig, BatchingMode, MetricsClient, PodMetricsSource};

use crate::admin::{self, Readiness};
use crate::api_requests;
use crate::args::{LogFormat, OperatorArgs};
use crate::leader::{self, Leadership, LeaseConfig};
use crate::metrics::LagStage;
use crate::metrics::Metrics;
use crate::reconcile::{self, Caches, Context, HpaWatch, MetricsApis, Settings};
use crate::{fresh, hpa_conflict, lag, pods};

/// Installs the log subscriber for `--log-format`.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn"));
    // Colour codes only help a person at a terminal; in files and log collectors they break
    // grep and parsing.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Runs the operator until a termination signal.
pub async fn run(args: OperatorArgs) -> anyhow::Result<()> {
    init_logging(args.log_format);
    // First, so a bad or busy `--admin-addr` ends the process before anything runs without
    // its probes.
    let admin_listener = admin::bind(args.admin_addr).await?;
    let config = kube::Config::infer().await?;
    // Watches keep kube's defaults (no read timeout: a quiet watch is healthy, and the watcher
    // has its own idle timeout). Every other request goes through `calls`, where a server
    // that stops answering ends the request instead of a worker.
    let metrics = Metrics::new()?;
    // Both clients count their requests (`tidal_api_requests_total`).
    let client = api_requests::counted_client(config.clone(), metrics.api_requests.clone())?;
    let calls = api_requests::counted_client(call_config(config), metrics.api_requests.clone())?;
    let readiness = Arc::new(Readiness::default());
    let shutdown = tokio_util_shutdown();

    let admin = tokio::spawn(admin::serve(
        admin_listener,
        readiness.clone(),
        metrics.clone(),
        wait(shutdown.clone()),
    ));

    let identity = args.identity.clone().unwrap_or_else(default_identity);
    let (leadership, election) = if args.leader_election.is_on() {
        let namespace = args
            .leader_election_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".to_string());
        leader::elect(
            calls.clone(),
            LeaseConfig {
                namespace,
                name: args.leader_election_lease.clone(),
                identity: identity.clone(),
                duration: args.lease_duration,
            },
        )
        .await
        .map(|(leadership, election)| (leadership, Some(election)))?
    } else {
        (Leadership::always(), None)
    };
    readiness.set_leader_known();
    // `tidal_leader` follows the lease itself, not reconciles: a new leader with no
    // AutoScalers must still report 1.
    let leader_gauge = metrics.leader.clone();
    let mut lease_changes = leadership.clone();
    leader_gauge.set(i64::from(lease_changes.is_leader()));
    tokio::spawn(async move {
        while let Some(leader) = lease_changes.changed().await {
            leader_gauge.set(i64::from(leader));
        }
    });

    // The pods-Ready stage of `tidal_scaling_lag_seconds` is seen by the pod watch.
    let ready_watch = Arc::new(lag::ReadyWatch::default());
    let (pod_index, pod_driver) = {
        let (watch, lags) = (ready_watch.clone(), metrics.scaling_lag.clone());
        pods::cache(
            client.clone(),
            args.namespace.as_deref(),
            readiness.pod_watch().clone(),
            move |index, namespace| {
                let now = k8s_openapi::jiff::Timestamp::now();
                for arrived in watch.pods_changed(index, namespace, now) {
                    lags.with_label_values(&[
                        namespace,
                        &arrived.name,
                        LagStage::PodsReady.label(),
                    ])
                    .observe(arrived.seconds);
                }
            },
        )
    };
    // The tasks a correct reconcile depends on. One that ends (a panic included) would leave
    // the operator deciding from a frozen cache or never sweeping: the process stops instead,
    // with an error, so that its pod restarts.
    let mut essential = Essential::default();
    essential.spawn("pod watch", pod_driver);
    let (hpa_store, hpa_synced, hpa_driver) =
        hpa_conflict::cache(client.clone(), args.namespace.as_deref());
    essential.spawn("HPA watch", hpa_driver);

    let autoscalers: Api<AutoScaler> = match &args.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let (as_reader, as_writer) = reflector::store();
    // The AutoScaler list is known to be complete when the reflector passes InitDone. Readiness
    // must not wait on `as_reader.wait_until_ready()`: the controller waits on it too, and the
    // store's one-shot keeps a single waker, so the other waiter is never woken (it left /ready
    // false forever in about one start out of three).
    let (listed_tx, mut listed_rx) = tokio::sync::watch::channel(false);
    let autoscaler_watch = readiness.autoscaler_watch().clone();
    // `tidal_num_autoscalers` follows the watch, not the reconciles (a reconcile used to read
    // the store for it), so followers report it too and no reconcile pays for it.
    let known = metrics.autoscalers.clone();
    let known_store = as_reader.clone();
    // Reconcile on spec changes only: the controller's own status writes must not retrigger it
    // (upstream rate-limits status-only updates for the same reason). The timer requeue covers
    // everything else.
    let watch = watcher(autoscalers, watcher::Config::default()).modify(prune_autoscaler);
    let trigger = reflector::reflector(as_writer, watch)
        .inspect(move |event| {
            autoscaler_watch.observe(event);
            count_known(&known, &known_store, event);
            if matches!(event, Ok(watcher::Event::InitDone)) {
                let _ = listed_tx.send(true);
            }
        })
        .default_backoff()
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default());

    let metrics_client = MetricsClient::new(calls.clone());
    // Upstream drops its custom-metrics discovery cache about once per sync period, so a newly
    // installed adapter is picked up without a restart.
    let invalidating = metrics_client.clone();
    let period = args.sync_period;
    essential.spawn("metrics discovery refresh", async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            invalidating.invalidate_discovery().await;
        }
    });
    let batching = if args.metrics_batching.is_on() {
        BatchingMode::On
    } else {
        BatchingMode::Off
    };
    let mut pod_metrics =
        PodMetricsSource::new(metrics_client.clone(), batching, BatchingConfig::default());
    let lists = metrics.pod_metrics_lists.clone();
    pod_metrics.count_lists(Arc::new(move || lists.inc()));
    let pod_metrics = Arc::new(pod_metrics);
    let reporter = Reporter {
        controller: "tidal".into(),
        instance: Some(identity),
    };
    let mut ctx = Context::new(
        calls.clone(),
        Caches {
            pods: pod_index.clone(),
            autoscalers: as_reader.clone(),
            hpas: HpaWatch {
                store: hpa_store,
                synced: hpa_synced.clone(),
            },
        },
        MetricsApis {
            pods: pod_metrics.clone(),
            client: metrics_client,
        },
        reporter,
        metrics,
        leadership,
        Settings {
            sync_period: args.sync_period,
            config: args.decision.config(),
            decide_on_release: args.reconcile_on_fresh_metrics.is_on(),
        },
    );
    // An AutoScaler the API server no longer returns stays in a failing watch's store, and its
    // requeues would keep writing its scale: refuse scale writes while that watch fails. This
    // costs nothing per reconcile. Re-reading the AutoScaler before each write would be exact,
    // but costs a request per write and needs the AutoScaler's identity in the scale path; the
    // watch already tells us what we need, within its backoff.
    ctx.scales
        .refuse_writes_while_failing(readiness.autoscaler_watch().clone());
    ctx.ready = ready_watch;
    let ctx = Arc::new(ctx);

    // Per-AutoScaler state of deleted AutoScalers is dropped once per sync period.
    let sweeping = ctx.clone();
    essential.spawn("sweep of deleted AutoScalers", async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            let gone = sweeping.forget_deleted().await;
            if gone > 0 {
                tracing::debug!(gone, "forgot deleted AutoScalers");
            }
        }
    });

    let ready_flag = readiness.clone();
    let pods_ready = pod_index.clone();
    let mut hpas_listed = hpa_synced;
    tokio::spawn(async move {
        pods_ready.wait_until_listed().await;
        if listed_rx.wait_for(|listed| *listed).await.is_ok()
            && hpas_listed.wait_for(|listed| *listed).await.is_ok()
        {
            ready_flag.set_watches_synced();
            tracing::info!("caches synced");
        }
    });

    let controller_shutdown = shutdown.clone();
    let signal_readiness = readiness.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("termination signal: draining");
        signal_readiness.set_shutting_down();
        let _ = controller_shutdown.send(true);
    });

    let mut controller = Controller::for_stream(trigger, as_reader.clone());
    if args.reconcile_on_fresh_metrics.is_on() {
        // Fresh samples trigger reconciles besides the timer (see `fresh`).
        let (fresh_tx, fresh_rx) = futures::channel::mpsc::unbounded();
        controller = controller.reconcile_on(fresh_rx);
        essential.spawn(
            "fresh-metrics poller",
            fresh::run(
                as_reader,
                pod_metrics,
                ctx.leadership.clone(),
                ctx.metrics.fresh_metrics_polls.clone(),
                fresh_tx,
            ),
        );
    }
    let controller = controller
        .with_config(kube::runtime::controller::Config::default().concurrency(args.concurrency))
        .graceful_shutdown_on(wait(shutdown.clone()))
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|result| async move {
            // Watch errors surface here (e.g. the CRD is not installed: the AutoScaler list
            // answers 404 and readiness stays false); say so instead of failing silently.
            if let Err(err) = result {
                tracing::warn!(error = %err, "controller error");
            }
        });
    // Graceful shutdown lets running reconciles finish, but kube's controller also waits for
    // its store to become ready, which never happens while the AutoScaler list fails (e.g. no
    // CRD). Bound the wait so SIGTERM always ends the process.
    let deadline = async {
        wait(shutdown.clone()).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    let mut failed = None;
    let drained = tokio::select! {
        () = controller => true,
        () = deadline => {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "reconciles still running after the grace period; exiting");
            false
        }
        ended = essential.ended() => {
            tracing::error!(task = %ended, "an essential task ended; stopping so that the pod restarts");
            readiness.set_shutting_down();
            failed = Some(ended);
            false
        }
    };
    // Released only once every reconcile has finished, so no write of ours can follow another
    // replica's takeover; otherwise the lease is left to expire.
    if let Some(election) = election {
        if drained {
            election.release().await;
        } else {
            tracing::warn!(
                "not releasing the lease: a reconcile may still write; it expires on its own"
            );
        }
    }
    let _ = shutdown.send(true);
    let _ = admin.await;
    if let Some(ended) = failed {
        anyhow::bail!("stopped because {ended}");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Background tasks that must run as long as the operator does, by name.
#[derive(Default)]
pub struct Essential {
    tasks: tokio::task::JoinSet<()>,
    names: std::collections::HashMap<tokio::task::Id, &'static str>,
}

impl Essential {
    /// Runs `task` in the background as `name`.
    pub fn spawn(
        &mut self,
        name: &'static str,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let id = self.tasks.spawn(task).id();
        self.names.insert(id, name);
    }

    /// Waits until the first task ends and says which and how; pending forever without tasks.
    pub async fn ended(&mut self) -> String {
        let Some(ended) = self.tasks.join_next_with_id().await else {
            return std::future::pending().await;
        };
        let (id, how) = match ended {
            Ok((id, ())) => (id, "returned".to_string()),
            Err(err) if err.is_panic() => (err.id(), "panicked".to_string()),
            Err(err) => (err.id(), format!("was cancelled ({err})")),
        };
        let name = self.names.get(&id).copied().unwrap_or("a background task");
        format!("the {name} task {how}")
    }
}

/// Sets `gauge` to the size of `store` after a watch event that changes it (the reflector has
/// already applied the event). `Init` and `InitApply` leave the store as it was until `InitDone`.
pub fn count_known<K>(
    gauge: &prometheus::IntGauge,
    store: &reflector::Store<K>,
    event: &Result<watcher::Event<K>, watcher::Error>,
) where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    if matches!(
        event,
        Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone)
    ) {
        gauge.set(i64::try_from(store.len()).unwrap_or(i64::MAX));
    }
}

/// Longest wait for any byte of an answer to a one-shot request (GET, PUT, LIST, discovery,
/// metrics). The slowest legitimate answers are large LISTs, which stream well within this;
/// an aggregated API that hangs is given up on within one 15 s sync period plus a margin.
pub const CALL_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Longest wait to send a one-shot request.
pub const CALL_WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Longest wait to open a connection to the API server.
pub const CALL_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Drops what no reconcile reads from a cached AutoScaler: its managedFields, which list every
/// field of the status Tidal writes (the decision trace included) and were the larger part of
/// each cached object. A status write sends the cached object back without them, and the API
/// server keeps the stored ones when a write omits the field.
pub fn prune_autoscaler(obj: &mut AutoScaler) {
    obj.metadata.managed_fields = None;
}

/// The client configuration for everything but watches: kube's default has no read timeout,
/// so one hanging response would hold a reconcile worker forever.
pub fn call_config(mut config: kube::Config) -> kube::Config {
    config.connect_timeout = Some(CALL_CONNECT_TIMEOUT);
    config.read_timeout = Some(CALL_READ_TIMEOUT);
    config.write_timeout = Some(CALL_WRITE_TIMEOUT);
    // Count the read timeout from when a request is sent, not from when its pooled connection
    // went idle.
    config.reset_reader_on_write = true;
    config
}

type Shutdown = Arc<tokio::sync::watch::Sender<bool>>;

/// How long running reconciles may take to finish after SIGTERM; well inside Kubernetes'
/// default 30 s termination grace period.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

fn tokio_util_shutdown() -> Shutdown {
    Arc::new(tokio::sync::watch::channel(false).0)
}

async fn wait(shutdown: Shutdown) {
    let mut rx = shutdown.subscribe();
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// The Lease identity when `--identity` is not given: the pod name (`HOSTNAME`), else the
/// machine's host name, else one made of the process id and start time. Never a fixed
/// string: two replicas with the same identity would both take the lease as their own.
fn default_identity() -> String {
    let named = |name: Option<String>| name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    named(std::env::var("HOSTNAME").ok())
        .or_else(|| named(std::fs::read_to_string("/proc/sys/kernel/hostname").ok()))
        .unwrap_or_else(|| {
            let started = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            format!("tidal-{}-{started}", std::process::id())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_autoscaler_keeps_its_spec_and_status_but_not_its_managed_fields() {
        let mut obj: AutoScaler = serde_json::from_value(serde_json::json!({
            "apiVersion": "autoscaling.tidal.dev/v1alpha1", "kind": "AutoScaler",
            "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "7",
                         "managedFields": [{"manager": "tidal", "operation": "Update",
                                            "subresource": "status", "fieldsType": "FieldsV1",
                                            "fieldsV1": {"f:status": {"f:desiredReplicas": {}}}}]},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "maxReplicas": 4},
            "status": {"desiredReplicas": 2}
        }))
        .expect("autoscaler");
        let before = (obj.spec.clone(), obj.status.clone());
        prune_autoscaler(&mut obj);
        assert!(obj.metadata.managed_fields.is_none());
        assert_eq!(obj.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!((obj.spec, obj.status), before);
    }

    #[test]
    fn one_shot_calls_time_out_from_when_they_are_sent() {
        let config = call_config(kube::Config::new(
            "https://127.0.0.1:6443".parse().expect("url"),
        ));
        assert_eq!(config.read_timeout, Some(CALL_READ_TIMEOUT));
        assert_eq!(config.write_timeout, Some(CALL_WRITE_TIMEOUT));
        assert_eq!(config.connect_timeout, Some(CALL_CONNECT_TIMEOUT));
        assert!(config.reset_reader_on_write);
    }

    #[test]
    fn the_known_autoscalers_gauge_follows_the_watch() {
        let gauge = prometheus::IntGauge::new("known", "known").expect("gauge");
        let (store, mut writer) = reflector::store::<AutoScaler>();
        let autoscaler = |name: &str| -> AutoScaler {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "autoscaling.tidal.dev/v1alpha1", "kind": "AutoScaler",
                "metadata": {"name": name, "namespace": "shop"},
                "spec": {"scaleTargetRef": {"kind": "Deployment", "name": name}, "maxReplicas": 3}
            }))
            .expect("autoscaler")
        };
        let mut step = |event: watcher::Event<AutoScaler>| {
            writer.apply_watcher_event(&event);
            count_known(&gauge, &store, &Ok(event));
            gauge.get()
        };
        assert_eq!(step(watcher::Event::Init), 0);
        assert_eq!(step(watcher::Event::InitApply(autoscaler("a"))), 0);
        assert_eq!(step(watcher::Event::InitApply(autoscaler("b"))), 0);
        assert_eq!(step(watcher::Event::InitDone), 2);
        assert_eq!(step(watcher::Event::Apply(autoscaler("c"))), 3);
        assert_eq!(step(watcher::Event::Apply(autoscaler("c"))), 3);
        assert_eq!(step(watcher::Event::Delete(autoscaler("a"))), 2);
        // A relist without `b` drops it.
        step(watcher::Event::Init);
        step(watcher::Event::InitApply(autoscaler("c")));
        assert_eq!(step(watcher::Event::InitDone), 1);
    }

    #[tokio::test]
    async fn an_essential_task_that_panics_or_returns_is_named_when_it_ends() {
        let mut essential = Essential::default();
        essential.spawn("pod watch", std::future::pending());
        essential.spawn("sweep", async { panic!("boom") });
        assert_eq!(essential.ended().await, "the sweep task panicked");
        essential.spawn("HPA watch", async {});
        assert_eq!(essential.ended().await, "the HPA watch task returned");
    }

    #[tokio::test]
    async fn no_essential_task_ending_means_waiting() {
        let mut essential = Essential::default();
        essential.spawn("pod watch", std::future::pending());
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(50), essential.ended()).await;
        assert!(waited.is_err(), "nothing ended: {waited:?}");
    }
}
