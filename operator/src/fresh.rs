//! Reconciling when fresh resource metrics appear, not only when the sync timer fires
//! (`--reconcile-on-fresh-metrics`).
//!
//! The built-in HPA decides on its timer: a new sample waits up to a whole sync period for the
//! next sync. metrics-server scrapes every pod of a namespace at once, once per resolution, and
//! each sample carries its `timestamp` and `window`, so the next sample's arrival can be
//! anticipated: one namespace-wide LIST shortly after `newest timestamp + resolution` usually
//! finds it. When it does, every AutoScaler of that namespace that reads resource metrics is
//! reconciled at once; the reconcile reads the same shared response (batching mode), so it
//! decides on exactly the sample that triggered it.
//!
//! Requests: at most one LIST per namespace per second ([`MIN_INTERVAL`]); on average one per
//! resolution plus the misses. "Shortly after" is learnt per namespace
//! ([`tidal_metrics_client::cadence`]): polls settle just after the samples become visible with a
//! miss now and then (a miss costs one extra LIST and at most a second of reaction), and
//! consecutive misses back off to one poll per resolution, so a stalled metrics pipeline costs
//! no more than the timer does. In batching mode the poller looks again when the shared
//! response stops being the freshest, which the batching source times by the same learning:
//! the poller's LIST is the one the next reconcile would have made, not one more.
//!
//! Custom, object and external metrics have no freshness signal (their APIs give a timestamp
//! per value but no cadence, and adapters compute them on request), so AutoScalers that read
//! only those stay on the timer. The timer stays for everyone: stabilization windows, policies
//! and readiness are time-based, and a reconcile requeues itself one sync period later.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use tidal_crds::AutoScaler;
use tidal_metrics_client::cadence::{Cadence, MIN_INTERVAL};
use tidal_metrics_client::{PodMetricsSource, batch};

use crate::leader::Leadership;

/// How often the set of namespaces and their AutoScalers is re-read from the cache. A new
/// AutoScaler is reconciled at once anyway (its creation is a spec change); this only decides
/// how soon fresh samples also trigger it.
const REFRESH: Duration = Duration::from_secs(5);

/// Whether fresh PodMetrics samples bear on `obj`'s decision: it reads a Resource or
/// ContainerResource metric (no metrics at all means the default CPU utilization).
pub fn reads_resource_metrics(obj: &AutoScaler) -> bool {
    match obj.spec.metrics.as_deref() {
        None | Some([]) => true,
        Some(metrics) => metrics
            .iter()
            .any(|m| m.type_ == "Resource" || m.type_ == "ContainerResource"),
    }
}

/// The AutoScalers reading resource metrics, per namespace, shared by the pollers.
type Targets = Arc<std::sync::RwLock<HashMap<String, Vec<ObjectRef<AutoScaler>>>>>;

/// The AutoScalers reading resource metrics, per namespace.
fn by_namespace(store: &Store<AutoScaler>) -> HashMap<String, Vec<ObjectRef<AutoScaler>>> {
    let mut map: HashMap<String, Vec<ObjectRef<AutoScaler>>> = HashMap::new();
    for obj in store.state() {
        if reads_resource_metrics(&obj)
            && let Some(ns) = obj.namespace()
        {
            map.entry(ns).or_default().push(ObjectRef::from_obj(&obj));
        }
    }
    map
}

/// Polls each namespace with AutoScalers reading resource metrics, and sends those AutoScalers
/// to `trigger` when new samples appear. Only the leader polls (followers make no metrics
/// calls). Runs until `trigger`'s receiver is gone.
pub async fn run(
    store: Store<AutoScaler>,
    source: Arc<PodMetricsSource>,
    leadership: Leadership,
    polls: prometheus::IntCounterVec,
    trigger: UnboundedSender<ObjectRef<AutoScaler>>,
) {
    let targets: Targets = Arc::default();
    let mut pollers: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut tick = tokio::time::interval(REFRESH);
    while !trigger.is_closed() {
        tick.tick().await;
        let now = by_namespace(&store);
        let wanted: HashSet<String> = now.keys().cloned().collect();
        *targets
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = now;
        pollers.retain(|ns, task| {
            let keep = wanted.contains(ns) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        for ns in wanted {
            if pollers.contains_key(&ns) {
                continue;
            }
            let poller = poll_namespace(
                ns.clone(),
                source.clone(),
                leadership.clone(),
                polls.clone(),
                targets.clone(),
                trigger.clone(),
            );
            pollers.insert(ns, tokio::spawn(poller));
        }
    }
    for task in pollers.values() {
        task.abort();
    }
}

async fn poll_namespace(
    namespace: String,
    source: Arc<PodMetricsSource>,
    leadership: Leadership,
    polls: prometheus::IntCounterVec,
    targets: Targets,
    trigger: UnboundedSender<ObjectRef<AutoScaler>>,
) {
    let config = source.batching_config();
    let mut cadence = Cadence::default();
    loop {
        if !leadership.is_leader() {
            // A new term starts from scratch: the samples seen before may be long gone.
            cadence = Cadence::default();
            tokio::time::sleep(MIN_INTERVAL).await;
            continue;
        }
        let result = source.namespace_snapshot(&namespace).await;
        let fetched_at = Timestamp::now();
        let (newest, resolution) = match &result {
            Ok(snapshot) => (
                snapshot.pods.iter().map(|p| p.timestamp).max(),
                batch::resolution(snapshot, &config),
            ),
            Err(_) => (None, config.resolution.unwrap_or(batch::DEFAULT_RESOLUTION)),
        };
        let polled = cadence.polled(fetched_at, newest, resolution);
        let result = match (&result, polled.fresh) {
            (Err(_), _) => "error",
            (Ok(_), true) => "fresh",
            (Ok(_), false) => "unchanged",
        };
        polls.with_label_values(&[result]).inc();
        if polled.fresh {
            let due = targets
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&namespace)
                .cloned()
                .unwrap_or_default();
            tracing::debug!(namespace, autoscalers = due.len(), newest = ?newest, delay = ?cadence.delay(), "fresh pod metrics");
            for obj in due {
                if trigger.unbounded_send(obj).is_err() {
                    return;
                }
            }
        }
        // Batching mode: when the shared response expires (its LIST serves the reconciles too).
        let next = source.reuse_until(&namespace).await.unwrap_or(polled.next);
        let now = Timestamp::now();
        let wait = if next > now {
            next.duration_since(now).unsigned_abs()
        } else {
            Duration::ZERO
        };
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_autoscalers_reading_resource_metrics_are_triggered() {
        let with = |metrics: serde_json::Value| -> AutoScaler {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "autoscaling.tidal.dev/v1alpha1", "kind": "AutoScaler",
                "metadata": {"name": "a", "namespace": "shop"},
                "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "a"}, "maxReplicas": 3,
                         "metrics": metrics}
            }))
            .expect("autoscaler")
        };
        assert!(reads_resource_metrics(&with(serde_json::json!([]))));
        assert!(reads_resource_metrics(&with(serde_json::json!([
            {"type": "External", "external": {"metric": {"name": "q"}, "target": {"type": "Value", "value": "1"}}},
            {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app",
                "target": {"type": "Utilization", "averageUtilization": 50}}}
        ]))));
        assert!(!reads_resource_metrics(&with(serde_json::json!([
            {"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {"type": "AverageValue", "averageValue": "1"}}}
        ]))));
    }
}
