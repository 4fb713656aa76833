//! What every reconcile shares: the clients and caches it reads through, the flags, and the
//! per-AutoScaler memory kept between reconciles (decision history and the target's replicas
//! as last seen or written, both of this leadership term; registered selectors; decision
//! reasons and replica-fight managers counted), and how that memory is forgotten.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::Client;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{ObjectRef, Store};
use tidal_crds::AutoScaler;
use tidal_metrics_client::{MetricsClient, PodMetricsSource};
use tokio::sync::Mutex;

use super::observe::{PodSource, Recall, Sources};
use super::publish::Events;
use super::registry::Registry;
use super::schedule;
use crate::hpa_conflict;
use crate::index::NamespaceIndex;
use crate::kube_core;
use crate::leader::Leadership;
use crate::metrics::Metrics;
use crate::pods::PodIndex;
use crate::scale::Resolver;

/// Controller-wide settings from the flags.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Default reconcile period (`--sync-period`).
    pub sync_period: Duration,
    /// The decision configuration (`--tolerance`, windows, delays).
    pub config: scaling::Config,
    /// Decide again when a held decision's window or period releases, not at the next sync
    /// (with `--reconcile-on-fresh-metrics on`: decide as soon as anything changes).
    pub decide_on_release: bool,
}

impl Settings {
    /// This AutoScaler's reconcile period: `spec.tidal.syncPeriodSeconds`, else the flag.
    pub fn sync_period(&self, obj: &AutoScaler) -> Duration {
        obj.spec
            .tidal
            .as_ref()
            .and_then(|t| t.sync_period_seconds)
            .and_then(|s| u64::try_from(s).ok())
            .filter(|s| *s > 0)
            .map_or(self.sync_period, Duration::from_secs)
    }

    /// This AutoScaler's decision configuration: the flags, with its `spec.tidal` overrides.
    pub fn decision_config(&self, obj: &AutoScaler) -> scaling::Config {
        let mut config = self.config.clone();
        if let Some(t) = &obj.spec.tidal {
            if let Some(s) = t.cpu_initialization_period_seconds {
                config.cpu_initialization_period = scaling::Duration::from_seconds(i64::from(s));
            }
            if let Some(s) = t.initial_readiness_delay_seconds {
                config.initial_readiness_delay = scaling::Duration::from_seconds(i64::from(s));
            }
        }
        config
    }
}

/// The shared HPA cache.
#[derive(Clone)]
pub struct HpaWatch {
    /// The pruned HPAs, by namespace.
    pub store: NamespaceIndex<HorizontalPodAutoscaler>,
    /// True once the watch has listed every HPA once.
    pub synced: tokio::sync::watch::Receiver<bool>,
}

/// The shared watches a reconcile reads instead of listing.
pub struct Caches {
    /// The pods of every namespace watched, as the decision reads them, indexed by namespace and label.
    pub pods: PodIndex,
    /// The AutoScalers (for the overlapping-selector check and the sweep of deleted ones).
    pub autoscalers: Store<AutoScaler>,
    /// The built-in HPAs (for the `ConflictingHPA` check) and whether their watch has listed.
    pub hpas: HpaWatch,
}

/// The metrics APIs.
pub struct MetricsApis {
    /// Resource metrics, batched or exact.
    pub pods: std::sync::Arc<PodMetricsSource>,
    /// Custom and external metrics.
    pub client: MetricsClient,
}

/// Everything a reconcile needs, shared by all workers.
pub struct Context {
    /// Kubernetes client (status writes).
    pub client: Client,
    /// Scale subresource access through discovery.
    pub scales: Resolver,
    /// The shared watches.
    pub caches: Caches,
    /// The metrics APIs.
    pub metrics_apis: MetricsApis,
    /// Selectors of other HPAs' targets, kept one sync period.
    pub hpa_selectors: hpa_conflict::SelectorCache,
    /// Event publishing, one series per distinct message.
    pub events: Events,
    /// Prometheus families.
    pub metrics: Metrics,
    /// Whether this replica may write.
    pub leadership: Leadership,
    /// Flags.
    pub settings: Settings,
    /// Scale-ups waiting for their pods to be Ready (the last stage of the scaling lag).
    pub ready: std::sync::Arc<crate::lag::ReadyWatch>,
    /// When each AutoScaler's next periodic reconcile is due (`tidal_sync_lag_seconds`).
    pub schedule: schedule::Schedule,
    /// Per-AutoScaler memory of this process.
    memory: Mutex<Memory>,
}

/// Per-AutoScaler memory, by `namespace/name`. The persisted copy of the decision history in
/// status is the source after a restart or fail-over.
#[derive(Default)]
pub struct Memory {
    /// The leadership term the histories belong to (the Lease's transitions when this replica
    /// took it); a new term clears them, since another replica may have written meanwhile.
    term: Option<u64>,
    histories: HashMap<String, (u64, scaling::History)>,
    /// The target's replicas as the last reconcile of this term left them, and Tidal's last
    /// write: what tells another writer's change from Tidal's own.
    seen: HashMap<String, (u64, scaling::fight::Seen)>,
    /// Selector each AutoScaler registered in its last reconcile (contract 1.5 step 3).
    selectors: Registry,
    /// `tidal_decisions_total` reasons each AutoScaler has used, so its series can be removed.
    reasons: HashMap<String, BTreeSet<String>>,
    /// `tidal_replica_fights_total` managers each AutoScaler has counted, so its series can be
    /// removed.
    fight_managers: HashMap<String, BTreeSet<String>>,
}

/// What one reconcile leaves in memory for the next.
pub struct Remembered {
    /// The selector the target's scale reported, if it was read.
    pub selector: Option<String>,
    /// The decision memory to keep.
    pub history: Option<scaling::History>,
    /// The `AbleToScale` reason counted in `tidal_decisions_total`.
    pub reason: Option<String>,
    /// The target's replicas as this reconcile left them (`None`: keep what was remembered).
    pub seen: Option<scaling::fight::Seen>,
    /// The manager counted in `tidal_replica_fights_total`, when a fight was seen.
    pub fight_manager: Option<String>,
}

impl Context {
    /// Builds the context; the scale resolver and the HPA selector cache keep entries one sync
    /// period.
    pub fn new(
        client: Client,
        caches: Caches,
        metrics_apis: MetricsApis,
        reporter: Reporter,
        metrics: Metrics,
        leadership: Leadership,
        settings: Settings,
    ) -> Self {
        let mut scales = Resolver::new(client.clone(), settings.sync_period);
        scales.count_conflicts(metrics.scale_write_conflicts.clone());
        Context {
            scales,
            hpa_selectors: hpa_conflict::SelectorCache::new(settings.sync_period),
            events: Events::new(client.clone(), reporter, metrics.clone()),
            client,
            caches,
            metrics_apis,
            metrics,
            leadership,
            settings,
            ready: Default::default(),
            schedule: schedule::Schedule::default(),
            memory: Mutex::new(Memory::default()),
        }
    }

    /// What a reconcile reads through: the operator's caches and metrics clients.
    pub fn sources(&self) -> Sources<'_> {
        Sources {
            scales: &self.scales,
            pods: PodSource::Cache(&self.caches.pods),
            pod_metrics: &self.metrics_apis.pods,
            metrics_client: &self.metrics_apis.client,
        }
    }

    /// Whether `namespace/name` is still in the AutoScaler cache.
    fn alive(&self, key: &str) -> bool {
        key.split_once('/').is_some_and(|(ns, name)| {
            self.caches
                .autoscalers
                .get(&ObjectRef::new(name).within(ns))
                .is_some()
        })
    }

    /// The leadership term of this reconcile, or `None` on a follower. A new term forgets the
    /// remembered histories: whatever this replica remembered may be older than what the
    /// last leader persisted.
    pub async fn term(&self) -> Option<u64> {
        let term = self.leadership.term()?;
        let mut memory = self.memory.lock().await;
        if memory.term != Some(term) {
            memory.term = Some(term);
            memory.histories.clear();
            // The last leader wrote meanwhile: what this replica saw before is no baseline.
            memory.seen.clear();
        }
        Some(term)
    }

    /// What the decision of `obj` (`key`) remembers: its decision memory of this term, else
    /// the one persisted in status; and the selectors the other live AutoScalers of its
    /// namespace registered.
    /// A persisted history is restored as of `now`, the decision's instant.
    pub async fn recall(
        &self,
        obj: &AutoScaler,
        key: &str,
        term: u64,
        now: scaling::Time,
        pods: &[scaling::Pod],
    ) -> Recall {
        let persisted = obj
            .status
            .as_ref()
            .and_then(|s| s.tidal.as_ref())
            .and_then(|t| t.history.as_ref());
        let namespace = obj.metadata.namespace.as_deref().unwrap_or_default();
        let memory = self.memory.lock().await;
        let (history, intent) = match memory.histories.get(key) {
            Some((t, h)) if *t == term => (Some(h.clone()), None),
            _ => (
                persisted.map(|h| kube_core::history_in(h, now)),
                kube_core::persisted_intent(obj),
            ),
        };
        Recall {
            history,
            others: self.others(&memory, key, namespace, pods),
            intent,
        }
    }

    /// The target's replicas as the last reconcile of `key` in this term left them.
    pub async fn seen(&self, key: &str, term: u64) -> Option<scaling::fight::Seen> {
        let memory = self.memory.lock().await;
        match memory.seen.get(key) {
            Some((t, seen)) if *t == term => Some(seen.clone()),
            _ => None,
        }
    }

    /// The other live AutoScalers of `namespace` whose registered selectors could select one
    /// of `pods` (see [`Registry::candidates`]; the core decides which do).
    fn others(
        &self,
        memory: &Memory,
        key: &str,
        namespace: &str,
        pods: &[scaling::Pod],
    ) -> Vec<scaling::OtherAutoscaler> {
        let own = key.split_once('/').map_or(key, |(_, name)| name);
        memory
            .selectors
            .candidates(namespace, pods.iter().map(|p| &p.labels))
            .into_iter()
            .filter(|(name, _)| *name != own)
            .filter(|(name, _)| {
                self.caches
                    .autoscalers
                    .get(&ObjectRef::new(name).within(namespace))
                    .is_some()
            })
            .map(|(name, selector)| scaling::OtherAutoscaler {
                name: name.to_string(),
                namespace: Some(namespace.to_string()),
                selector: selector.to_string(),
            })
            .collect()
    }

    /// Keeps what this reconcile of `key` leaves for the next ones.
    pub async fn remember(&self, key: &str, term: u64, what: Remembered) {
        let mut memory = self.memory.lock().await;
        if let Some(selector) = what.selector {
            memory.selectors.register(key, selector);
        }
        if let Some(history) = what.history {
            memory.histories.insert(key.to_string(), (term, history));
        }
        if let Some(reason) = what.reason {
            memory
                .reasons
                .entry(key.to_string())
                .or_default()
                .insert(reason);
        }
        if let Some(seen) = what.seen {
            memory.seen.insert(key.to_string(), (term, seen));
        }
        if let Some(manager) = what.fight_manager {
            memory
                .fight_managers
                .entry(key.to_string())
                .or_default()
                .insert(manager);
        }
    }

    /// Drops everything kept per AutoScaler (decision memory, selectors, event recorders,
    /// Prometheus series) for AutoScalers no longer in the cache. The runtime calls it once per
    /// sync period: a sweep also catches deletions missed while the watch relisted.
    pub async fn forget_deleted(&self) -> usize {
        let gone = {
            let mut memory = self.memory.lock().await;
            let mut recorders = self.events.recorders.lock().await;
            forget_deleted(&mut memory, &mut recorders, |key| self.alive(key))
        };
        self.schedule.retain(|key| self.alive(key));
        for forgotten in &gone {
            if let Some((ns, name)) = forgotten.key.split_once('/') {
                self.ready.cancel(ns, name);
                self.metrics.forget(
                    ns,
                    name,
                    forgotten.reasons.iter().map(String::as_str),
                    forgotten.fight_managers.iter().map(String::as_str),
                );
            }
        }
        gone.len()
    }
}

/// One forgotten AutoScaler and the label values of its Prometheus series.
#[derive(Debug)]
pub struct Forgotten {
    /// `namespace/name`.
    pub key: String,
    /// The `tidal_decisions_total` reasons it used.
    pub reasons: BTreeSet<String>,
    /// The `tidal_replica_fights_total` managers it counted.
    pub fight_managers: BTreeSet<String>,
}

/// Per-AutoScaler state of AutoScalers for which `alive(namespace/name)` is false: decision
/// memory, replicas seen, registered selectors, decision reasons, fight managers, and the
/// event recorders. Returns what was forgotten (for their Prometheus series).
pub fn forget_deleted<R>(
    memory: &mut Memory,
    recorders: &mut HashMap<(String, String), (String, R)>,
    alive: impl Fn(&str) -> bool,
) -> Vec<Forgotten> {
    let mut gone: BTreeSet<String> = BTreeSet::new();
    gone.extend(memory.histories.keys().filter(|k| !alive(k)).cloned());
    gone.extend(memory.seen.keys().filter(|k| !alive(k)).cloned());
    gone.extend(memory.selectors.keys().filter(|k| !alive(k)));
    gone.extend(memory.reasons.keys().filter(|k| !alive(k)).cloned());
    gone.extend(memory.fight_managers.keys().filter(|k| !alive(k)).cloned());
    gone.extend(
        recorders
            .keys()
            .map(|(k, _)| k)
            .filter(|k| !alive(k))
            .cloned(),
    );
    memory.histories.retain(|k, _| !gone.contains(k));
    memory.seen.retain(|k, _| !gone.contains(k));
    memory.selectors.retain(|k| !gone.contains(k));
    recorders.retain(|(k, _), _| !gone.contains(k));
    gone.into_iter()
        .map(|key| Forgotten {
            reasons: memory.reasons.remove(&key).unwrap_or_default(),
            fight_managers: memory.fight_managers.remove(&key).unwrap_or_default(),
            key,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleted_autoscalers_lose_their_memory_selectors_reasons_fights_and_recorders() {
        let mut memory = Memory::default();
        let mut recorders: HashMap<(String, String), (String, ())> = HashMap::new();
        for key in ["shop/web", "shop/gone"] {
            memory
                .histories
                .insert(key.into(), (1, scaling::History::default()));
            memory.selectors.register(key, "app=web".into());
            memory.seen.insert(
                key.into(),
                (
                    1,
                    scaling::fight::Seen {
                        target: "apps/v1/Deployment/web".into(),
                        replicas: 2,
                        last_write: None,
                    },
                ),
            );
            memory
                .fight_managers
                .entry(key.into())
                .or_default()
                .insert("argocd".into());
            memory
                .reasons
                .entry(key.into())
                .or_default()
                .insert("ReadyForNewScale".into());
            recorders.insert(
                (key.into(), "SuccessfulRescale".into()),
                ("New size: 2".into(), ()),
            );
        }
        // A recorder can outlive the memory entries (events published before a failed status write).
        recorders.insert(
            ("other/only-events".into(), "FailedGetScale".into()),
            (String::new(), ()),
        );

        let gone = forget_deleted(&mut memory, &mut recorders, |k| k == "shop/web");

        let keys: Vec<&str> = gone.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["other/only-events", "shop/gone"]);
        assert!(gone[1].reasons.contains("ReadyForNewScale"));
        assert!(gone[1].fight_managers.contains("argocd"));
        assert_eq!(memory.seen.keys().collect::<Vec<_>>(), ["shop/web"]);
        assert_eq!(
            memory.fight_managers.keys().collect::<Vec<_>>(),
            ["shop/web"]
        );
        assert_eq!(memory.histories.keys().collect::<Vec<_>>(), ["shop/web"]);
        assert_eq!(memory.selectors.keys().collect::<Vec<_>>(), ["shop/web"]);
        assert_eq!(memory.selectors.len(), 1);
        assert_eq!(memory.reasons.keys().collect::<Vec<_>>(), ["shop/web"]);
        assert_eq!(
            recorders
                .keys()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>(),
            ["shop/web"]
        );
    }

    #[test]
    fn a_live_autoscaler_keeps_everything() {
        let mut memory = Memory::default();
        memory.selectors.register("shop/web", "app=web".into());
        let mut recorders: HashMap<(String, String), (String, ())> = HashMap::new();
        assert!(forget_deleted(&mut memory, &mut recorders, |_| true).is_empty());
        assert_eq!(memory.selectors.len(), 1);
    }
}
