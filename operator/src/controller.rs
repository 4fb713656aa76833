//! The AutoScaler reconciler: observe (scale, pods, metrics), decide with the pure core, act
//! (write the scale per mode and leadership), report (status, events, Prometheus).
//!
//! One reconcile is contract 1.3 steps 1-13; the decision itself is `scaling::plan` and
//! `Plan::complete`, with the scale write between them.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};
use scaling::{MetricValue, MetricValues, ScaleRead};
use tidal_crds::{AutoScaler, AutoScalerStatus, Mode, TidalStatus};
use tidal_metrics_client::{
    BatchingConfig, BatchingMode, MetricsClient, PodMetricsSource, PodSample,
};
use tokio::sync::Mutex;

use crate::hpa_conflict::{self, Overlap};
use crate::leader::Leadership;
use crate::metrics::{Action as MetricAction, ErrorKind, Metrics};
use crate::scale::{self, Resolver};
use crate::{Error, convert, pods, status};

/// How long a reconcile waits for the HPA watch's first list before it reports the
/// `ConflictingHPA` check as unknown (and, in Active mode, does not write).
const HPA_LIST_WAIT: Duration = Duration::from_secs(5);

/// Controller-wide settings from the flags.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Default reconcile period (`--sync-period`).
    pub sync_period: Duration,
    /// The decision configuration (`--tolerance`, windows, delays).
    pub config: scaling::Config,
}

/// Everything a reconcile needs, shared by all workers.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Scale subresource access through discovery.
    pub scales: Resolver,
    /// The shared, pruned pod cache.
    pub pods: Store<Pod>,
    /// The AutoScaler cache (for the overlapping-selector check).
    pub autoscalers: Store<AutoScaler>,
    /// The built-in HPAs (for the `ConflictingHPA` check) and whether their watch has listed.
    pub hpas: HpaWatch,
    /// Selectors of other HPAs' targets, kept one sync period.
    hpa_selectors: hpa_conflict::SelectorCache,
    /// Resource metrics, batched or exact.
    pub pod_metrics: PodMetricsSource,
    /// Custom and external metrics.
    pub metrics_client: MetricsClient,
    /// Event recorder (for events outside the decision, e.g. FailedUpdateStatus).
    pub recorder: Recorder,
    /// Identity events are reported under.
    reporter: Reporter,
    /// Decision events by `(namespace/name, reason)`: the last message and the recorder that
    /// published it. kube's recorder folds every event with the same object and reason into
    /// one series that keeps the *first* message, so a second "New size: N" would only bump
    /// the count of the first. Upstream counts only identical messages together; a changed
    /// message is a new event, published through a fresh recorder.
    event_recorders: Mutex<HashMap<(String, String), (String, Recorder)>>,
    /// Prometheus families.
    pub metrics: Metrics,
    /// Whether this replica may write.
    pub leadership: Leadership,
    /// Flags.
    pub settings: Settings,
    /// Decision memory of the current leadership term, by `namespace/name`. The persisted copy
    /// in status is the source after a restart or fail-over.
    memory: Mutex<Memory>,
}

#[derive(Default)]
struct Memory {
    /// Increments each time this replica becomes leader; entries of older terms are stale.
    term: u64,
    was_leader: bool,
    histories: HashMap<String, (u64, scaling::History)>,
    /// Selector each AutoScaler registered in its last reconcile (contract 1.5 step 3).
    selectors: HashMap<String, String>,
    /// `tidal_decisions_total` reasons each AutoScaler has used, so its series can be removed.
    reasons: HashMap<String, BTreeSet<String>>,
}

/// The shared HPA cache.
#[derive(Clone)]
pub struct HpaWatch {
    /// The pruned HPAs.
    pub store: Store<HorizontalPodAutoscaler>,
    /// True once the watch has listed every HPA once.
    pub synced: tokio::sync::watch::Receiver<bool>,
}

/// Per-AutoScaler state of AutoScalers for which `alive(namespace/name)` is false: decision
/// memory, registered selectors, decision reasons, and the event recorders. Returns the keys
/// forgotten with the reasons each had used (for their Prometheus series).
fn forget_deleted<R>(
    memory: &mut Memory,
    recorders: &mut HashMap<(String, String), (String, R)>,
    alive: impl Fn(&str) -> bool,
) -> Vec<(String, BTreeSet<String>)> {
    let mut gone: BTreeSet<String> = BTreeSet::new();
    gone.extend(memory.histories.keys().filter(|k| !alive(k)).cloned());
    gone.extend(memory.selectors.keys().filter(|k| !alive(k)).cloned());
    gone.extend(memory.reasons.keys().filter(|k| !alive(k)).cloned());
    gone.extend(
        recorders
            .keys()
            .map(|(k, _)| k)
            .filter(|k| !alive(k))
            .cloned(),
    );
    memory.histories.retain(|k, _| !gone.contains(k));
    memory.selectors.retain(|k, _| !gone.contains(k));
    recorders.retain(|(k, _), _| !gone.contains(k));
    gone.into_iter()
        .map(|k| {
            let reasons = memory.reasons.remove(&k).unwrap_or_default();
            (k, reasons)
        })
        .collect()
}

impl Context {
    /// Builds the context.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: Client,
        pods: Store<Pod>,
        autoscalers: Store<AutoScaler>,
        hpas: HpaWatch,
        pod_metrics: PodMetricsSource,
        metrics_client: MetricsClient,
        reporter: Reporter,
        metrics: Metrics,
        leadership: Leadership,
        settings: Settings,
    ) -> Self {
        Context {
            scales: Resolver::new(client.clone(), settings.sync_period),
            recorder: Recorder::new(client.clone(), reporter.clone()),
            client,
            pods,
            autoscalers,
            hpas,
            hpa_selectors: hpa_conflict::SelectorCache::new(settings.sync_period),
            pod_metrics,
            metrics_client,
            reporter,
            event_recorders: Mutex::new(HashMap::new()),
            metrics,
            leadership,
            settings,
            memory: Mutex::new(Memory::default()),
        }
    }

    /// Drops everything kept per AutoScaler (decision memory, selectors, event recorders,
    /// Prometheus series) for AutoScalers no longer in the cache. The runtime calls it once per
    /// sync period: a sweep also catches deletions missed while the watch relisted.
    pub async fn forget_deleted(&self) -> usize {
        let alive = |key: &str| {
            key.split_once('/').is_some_and(|(ns, name)| {
                self.autoscalers
                    .get(&ObjectRef::new(name).within(ns))
                    .is_some()
            })
        };
        let gone = {
            let mut memory = self.memory.lock().await;
            let mut recorders = self.event_recorders.lock().await;
            forget_deleted(&mut memory, &mut recorders, alive)
        };
        for (key, reasons) in &gone {
            if let Some((ns, name)) = key.split_once('/') {
                self.metrics
                    .forget(ns, name, reasons.iter().map(String::as_str));
            }
        }
        gone.len()
    }
}

/// Requeue delay after an error: upstream retries only at the next sync, never faster.
pub fn error_policy(obj: Arc<AutoScaler>, err: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(autoscaler = %scale::key(obj.as_ref()), error = %err, "reconcile failed");
    Action::requeue(sync_period(&obj, &ctx.settings))
}

fn sync_period(obj: &AutoScaler, settings: &Settings) -> Duration {
    obj.spec
        .tidal
        .as_ref()
        .and_then(|t| t.sync_period_seconds)
        .and_then(|s| u64::try_from(s).ok())
        .filter(|s| *s > 0)
        .map_or(settings.sync_period, Duration::from_secs)
}

fn mode(obj: &AutoScaler) -> Mode {
    obj.spec
        .tidal
        .as_ref()
        .and_then(|t| t.mode)
        .unwrap_or_default()
}

fn decision_config(obj: &AutoScaler, settings: &Settings) -> scaling::Config {
    let mut config = settings.config.clone();
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

/// One reconcile of one AutoScaler.
pub async fn reconcile(obj: Arc<AutoScaler>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let key = scale::key(obj.as_ref());
    let requeue = Action::requeue(sync_period(&obj, &ctx.settings));
    ctx.metrics
        .autoscalers
        .set(i64::try_from(ctx.autoscalers.state().len()).unwrap_or(i64::MAX));

    let leader = ctx.leadership.is_leader();
    let term = {
        let mut memory = ctx.memory.lock().await;
        if leader && !memory.was_leader {
            // A new term: whatever we remembered may be stale; the persisted history is newer.
            memory.term += 1;
            memory.histories.clear();
        }
        memory.was_leader = leader;
        memory.term
    };
    ctx.metrics.leader.set(i64::from(leader));
    if !leader {
        // Hot standby: the caches stay warm, but no metrics calls and no writes.
        ctx.metrics
            .follower_skipped_writes
            .with_label_values(&["reconcile"])
            .inc();
        return Ok(requeue);
    }

    let span = tracing::info_span!("reconcile", autoscaler = %key);
    let _enter = span.enter();
    let now = Timestamp::now();
    let outcome = decide_and_act(&obj, &ctx, &key, term, now).await;
    let (action, error_kind) = match &outcome {
        Ok(action) => (*action, ErrorKind::None),
        Err(Error::Spec(_)) => (MetricAction::None, ErrorKind::Spec),
        Err(_) => (MetricAction::None, ErrorKind::Internal),
    };
    ctx.metrics
        .reconciliations
        .with_label_values(&[action.label(), error_kind.label()])
        .inc();
    ctx.metrics
        .reconciliation_duration
        .with_label_values(&[action.label(), error_kind.label()])
        .observe(started.elapsed().as_secs_f64());
    outcome.map(|_| requeue)
}

/// What the reconcile observed of the target.
struct Observed {
    scale: ScaleRead,
    target: Option<(scale::Target, k8s_openapi::api::autoscaling::v1::Scale)>,
    pods: Vec<scaling::Pod>,
    pod_metrics: Result<Vec<scaling::PodMetrics>, String>,
    metric_values: Vec<MetricValues>,
}

async fn decide_and_act(
    obj: &AutoScaler,
    ctx: &Context,
    key: &str,
    term: u64,
    now: Timestamp,
) -> Result<MetricAction, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let spec_json = serde_json::to_value(&obj.spec).map_err(|e| Error::Spec(e.to_string()))?;
    let spec = scaling::wire::parse_spec(&spec_json).map_err(|e| Error::Spec(e.to_string()))?;

    let sources = Sources {
        scales: &ctx.scales,
        pods: PodSource::Cache(&ctx.pods),
        pod_metrics: &ctx.pod_metrics,
        metrics_client: &ctx.metrics_client,
    };
    let observed = observe(obj, &sources, &namespace, &spec).await?;
    let old_status = obj.status.clone().unwrap_or_default();

    let history = {
        let memory = ctx.memory.lock().await;
        match memory.histories.get(key) {
            Some((t, h)) if *t == term => Some(h.clone()),
            _ => old_status
                .tidal
                .as_ref()
                .and_then(|t| t.history.as_ref())
                .map(convert::history_in),
        }
    };
    let others = {
        let memory = ctx.memory.lock().await;
        memory
            .selectors
            .iter()
            .filter(|(other, _)| other.as_str() != key)
            .filter_map(|(other, selector)| {
                let (ns, other_name) = other.split_once('/')?;
                let alive = ctx
                    .autoscalers
                    .get(&ObjectRef::new(other_name).within(ns))
                    .is_some();
                (ns == namespace && alive).then(|| scaling::OtherAutoscaler {
                    name: other_name.to_string(),
                    namespace: Some(ns.to_string()),
                    selector: selector.clone(),
                })
            })
            .collect()
    };

    let overlap = {
        let target_ref = &obj.spec.scale_target_ref;
        let own = hpa_conflict::TargetKey::of(
            target_ref.api_version.as_deref(),
            &target_ref.kind,
            &target_ref.name,
        );
        let own_selector = match &observed.scale {
            ScaleRead::Read(s) => s.selector.as_str(),
            ScaleRead::Failed(_) => "",
        };
        // Right after a start the HPA list is usually milliseconds away: wait a little for it
        // rather than report (and act on) "unknown".
        let mut listed = ctx.hpas.synced.clone();
        let synced = *listed.borrow()
            || tokio::time::timeout(HPA_LIST_WAIT, listed.wait_for(|s| *s))
                .await
                .is_ok_and(|r| r.is_ok());
        hpa_conflict::find(
            &ctx.hpas.store,
            synced,
            &ctx.hpa_selectors,
            &ctx.scales,
            &namespace,
            own.as_ref(),
            own_selector,
            &observed.pods,
        )
        .await
    };
    let mode = mode(obj);
    // Two writers on one scale fight; in Active mode Tidal steps back while an HPA is there
    // (or while it cannot know). Shadow and Paused never write anyway.
    let blocked = mode == Mode::Active && overlap != Overlap::None;

    let input = scaling::DecisionInput {
        now: convert::time_in(&now),
        config: decision_config(obj, &ctx.settings),
        metadata: scaling::ObjectMeta {
            name: name.clone(),
            namespace: namespace.clone(),
        },
        spec,
        status: scaling::AutoscalerStatus {
            desired_replicas: old_status.desired_replicas,
            current_replicas: old_status.current_replicas.unwrap_or_default(),
            conditions: convert::conditions_in(old_status.conditions.as_ref()),
        },
        scale: observed.scale.clone(),
        pods: observed.pods,
        pod_metrics: observed.pod_metrics,
        metric_values: observed.metric_values,
        other_autoscalers: others,
        history: history.clone(),
    };

    let plan = scaling::plan(&input);
    let current = match &observed.scale {
        ScaleRead::Read(s) => s.spec_replicas,
        ScaleRead::Failed(_) => old_status.current_replicas.unwrap_or_default(),
    };
    let mut action = MetricAction::None;
    let mut decision = match (plan.scale_write(), mode) {
        (Some(replicas), Mode::Active) if !blocked => {
            let result = match &observed.target {
                Some((target, scale_obj)) => target
                    .write(scale_obj.clone(), replicas)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                None => Err("the target's scale was not read".to_string()),
            };
            if result.is_ok() {
                action = if replicas > current {
                    MetricAction::ScaleUp
                } else {
                    MetricAction::ScaleDown
                };
            }
            plan.complete(result)
        }
        // Shadow: the decision is recorded as if written, so it keeps mirroring the controller
        // that really writes (the built-in HPA it runs beside); only the write is skipped.
        // Blocked by an HPA: decided but not written, and not remembered (see below).
        (Some(_), Mode::Shadow | Mode::Active) => plan.complete(Ok(())),
        (Some(_), Mode::Paused) => plan.complete(Ok(())),
        (None, _) => plan.complete(Ok(())),
    };

    if mode != Mode::Active || blocked {
        // Nothing was written: the stored trace must not claim a rescale.
        decision.trace.rescale = false;
    }

    // Remember the selector this AutoScaler registered, for the other AutoScalers' overlap check.
    if let ScaleRead::Read(s) = &observed.scale {
        ctx.memory
            .lock()
            .await
            .selectors
            .insert(key.to_string(), s.selector.clone());
    }
    let paused = mode == Mode::Paused;
    let (new_history, persisted_history) =
        history_after(paused, blocked, &overlap, history, decision.history.clone());
    if let Some(h) = &new_history {
        ctx.memory
            .lock()
            .await
            .histories
            .insert(key.to_string(), (term, h.clone()));
    }

    let mut conditions = convert::conditions_out(&decision.conditions);
    if paused {
        set_paused_condition(&mut conditions, &now);
    }
    let conflict = hpa_conflict::condition(&overlap, mode == Mode::Active);
    match &conflict {
        Some((status, reason, message)) => {
            set_condition(
                &mut conditions,
                hpa_conflict::CONDITION,
                status,
                reason,
                message,
                &now,
            );
        }
        None => conditions.retain(|c| c.type_ != hpa_conflict::CONDITION),
    }
    if blocked && let Some((_, _, message)) = &conflict {
        set_condition(
            &mut conditions,
            "ScalingActive",
            "False",
            hpa_conflict::SCALING_BLOCKED,
            message,
            &now,
        );
        // Nothing was written: do not claim the rescale the decision would have made.
        if conditions
            .iter()
            .any(|c| c.type_ == "AbleToScale" && c.reason.as_deref() == Some("SucceededRescale"))
        {
            set_condition(
                &mut conditions,
                "AbleToScale",
                "True",
                "SucceededGetScale",
                "the HPA controller was able to get the target's current scale",
                &now,
            );
        }
    }
    if paused || blocked {
        // The core recomputes these from the stored ones every sync (e.g. ScalingActive back to
        // True) and the overrides above turn them again: without this the transition time
        // would move, and the status be rewritten, at every sync.
        keep_transition_times(
            &mut conditions,
            old_status.conditions.as_deref().unwrap_or_default(),
            &["AbleToScale", "ScalingActive"],
        );
    }
    let current_metrics = status::current_metrics(
        obj.spec.metrics.as_deref().unwrap_or_default(),
        &decision.metrics,
    );
    let new_status = AutoScalerStatus {
        observed_generation: obj.metadata.generation,
        last_scale_time: if decision.last_scale_time_updated && !paused && !blocked {
            Some(Time(now))
        } else {
            old_status.last_scale_time.clone()
        },
        current_replicas: Some(decision.current_replicas),
        desired_replicas: decision.desired_replicas,
        current_metrics: if decision.metrics.is_empty() {
            None
        } else {
            Some(current_metrics.clone())
        },
        conditions: Some(conditions),
        tidal: Some(TidalStatus {
            reference: Some(scale::reference(
                &obj.spec.scale_target_ref.kind,
                &obj.spec.scale_target_ref.name,
            )),
            targets: Some(status::targets(
                obj.spec.metrics.as_deref().unwrap_or_default(),
                &current_metrics,
            )),
            history: persisted_history.as_ref().map(convert::history_out),
            last_decision: Some(last_decision(
                old_status.tidal.as_ref(),
                decision.trace.clone(),
            )),
        }),
    };

    ctx.metrics
        .desired_replicas
        .with_label_values(&[&namespace, &name])
        .set(i64::from(decision.desired_replicas));
    ctx.metrics
        .current_replicas
        .with_label_values(&[&namespace, &name])
        .set(i64::from(decision.current_replicas));
    let able_to_scale = new_status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "AbleToScale");
    if let Some(c) = able_to_scale {
        let reason = c.reason.clone().unwrap_or_default();
        ctx.metrics
            .decisions
            .with_label_values(&[&namespace, &name, reason.as_str()])
            .inc();
        ctx.memory
            .lock()
            .await
            .reasons
            .entry(key.to_string())
            .or_default()
            .insert(reason);
    }

    if blocked {
        // The decision's own events would describe writes that did not happen.
        if let Some((_, _, message)) = &conflict {
            let warning = scaling::Event {
                kind: scaling::EventType::Warning,
                reason: hpa_conflict::SCALING_BLOCKED.to_string(),
                message: message.clone(),
            };
            publish_events(obj, ctx, &[warning], false).await;
        }
    } else if !paused {
        publish_events(obj, ctx, &decision.events, mode == Mode::Shadow).await;
    }
    if new_status != old_status {
        write_status(obj, ctx, new_status).await?;
    }
    Ok(action)
}

/// The decision memory to keep in this process and to persist in status, after a decision:
/// `(memory, persisted)`.
fn history_after(
    paused: bool,
    blocked: bool,
    overlap: &Overlap,
    before: Option<scaling::History>,
    decided: Option<scaling::History>,
) -> (Option<scaling::History>, Option<scaling::History>) {
    if paused || *overlap == Overlap::Unknown {
        // Paused writes nothing; and while nothing is known about HPAs yet, a restart must not
        // lose its persisted window because the HPA watch had not listed yet.
        (before.clone(), before)
    } else if blocked {
        // The HPA is the one scaling: recording Tidal's would-be scale events would spend a
        // rate-limit budget on writes that never happened. Tidal keeps no memory while
        // blocked and, when the HPA goes, starts as a new HPA would (seeded with the current
        // size, so no early scale-down at the handover).
        (Some(scaling::History::default()), None)
    } else {
        (decided.clone(), decided)
    }
}

/// For the condition types in `types`: where the status equals the stored one, the stored
/// transition time stands.
fn keep_transition_times(
    conditions: &mut [HorizontalPodAutoscalerCondition],
    stored: &[HorizontalPodAutoscalerCondition],
    types: &[&str],
) {
    for c in conditions
        .iter_mut()
        .filter(|c| types.contains(&c.type_.as_str()))
    {
        if let Some(old) = stored
            .iter()
            .find(|o| o.type_ == c.type_ && o.status == c.status)
        {
            c.last_transition_time = old.last_transition_time.clone();
        }
    }
}

/// Sets one condition, keeping its transition time unless the status changes.
fn set_condition(
    conditions: &mut Vec<HorizontalPodAutoscalerCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &Timestamp,
) {
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = Some(Time(*now));
            }
            c.status = status.into();
            c.reason = Some(reason.into());
            c.message = Some(message.into());
        }
        None => conditions.push(HorizontalPodAutoscalerCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_transition_time: Some(Time(*now)),
        }),
    }
}

/// The trace to store: the new one, unless it equals the stored one in everything but its time.
/// A steady state then writes no status at all (as before traces existed), and the stored time
/// says since when this exact decision has stood.
fn last_decision(old: Option<&TidalStatus>, new: scaling::DecisionTrace) -> scaling::DecisionTrace {
    match old.and_then(|t| t.last_decision.as_ref()) {
        Some(stored)
            if scaling::DecisionTrace {
                time: stored.time,
                ..new.clone()
            } == *stored =>
        {
            stored.clone()
        }
        _ => new,
    }
}

/// The decision input of one reconcile: what was observed, the stored status and the memory.
fn decision_input(
    obj: &AutoScaler,
    spec: scaling::AutoscalerSpec,
    observed: Observed,
    config: scaling::Config,
    history: Option<scaling::History>,
    now: Timestamp,
) -> scaling::DecisionInput {
    let old_status = obj.status.clone().unwrap_or_default();
    scaling::DecisionInput {
        now: convert::time_in(&now),
        config,
        metadata: scaling::ObjectMeta {
            name: obj.name_any(),
            namespace: obj.namespace().unwrap_or_default(),
        },
        spec,
        status: scaling::AutoscalerStatus {
            desired_replicas: old_status.desired_replicas,
            current_replicas: old_status.current_replicas.unwrap_or_default(),
            conditions: convert::conditions_in(old_status.conditions.as_ref()),
        },
        scale: observed.scale,
        pods: observed.pods,
        pod_metrics: observed.pod_metrics,
        metric_values: observed.metric_values,
        other_autoscalers: Vec::new(),
        history,
    }
}

/// One decision from live data, read the way a reconcile reads it (scale subresource, a pod
/// LIST by the target's selector, the exact per-autoscaler metrics requests), for
/// `tidal explain --now`. Nothing is written: no scale, no status, no events. The decision
/// memory is the one persisted in status. Other AutoScalers' selectors and HPAs are known
/// only to the operator, so the overlapping-selector checks are not repeated.
pub async fn decide_live(
    client: &Client,
    obj: &AutoScaler,
    settings: &Settings,
    now: Timestamp,
) -> Result<scaling::Decision, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let spec_json = serde_json::to_value(&obj.spec).map_err(|e| Error::Spec(e.to_string()))?;
    let spec = scaling::wire::parse_spec(&spec_json).map_err(|e| Error::Spec(e.to_string()))?;
    let scales = Resolver::new(client.clone(), settings.sync_period);
    let metrics_client = MetricsClient::new(client.clone());
    let pod_metrics = PodMetricsSource::new(
        metrics_client.clone(),
        BatchingMode::Off,
        BatchingConfig::default(),
    );
    let sources = Sources {
        scales: &scales,
        pods: PodSource::Live(client),
        pod_metrics: &pod_metrics,
        metrics_client: &metrics_client,
    };
    let mut observed = observe(obj, &sources, &namespace, &spec).await?;
    observed.target = None;
    let history = obj
        .status
        .as_ref()
        .and_then(|s| s.tidal.as_ref())
        .and_then(|t| t.history.as_ref())
        .map(convert::history_in);
    let input = decision_input(
        obj,
        spec,
        observed,
        decision_config(obj, settings),
        history,
        now,
    );
    let mut decision = scaling::plan(&input).complete(Ok(()));
    // Computed, not written: the trace must not claim a rescale.
    decision.trace.rescale = false;
    Ok(decision)
}

fn set_paused_condition(
    conditions: &mut Vec<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerCondition>,
    now: &Timestamp,
) {
    let message =
        "spec.tidal.mode is Paused: Tidal computes and reports but does not write the scale";
    match conditions.iter_mut().find(|c| c.type_ == "AbleToScale") {
        Some(c) => {
            if c.status != "False" {
                c.last_transition_time = Some(Time(*now));
            }
            c.status = "False".into();
            c.reason = Some("Paused".into());
            c.message = Some(message.into());
        }
        None => conditions.insert(
            0,
            k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerCondition {
                type_: "AbleToScale".into(),
                status: "False".into(),
                reason: Some("Paused".into()),
                message: Some(message.into()),
                last_transition_time: Some(Time(*now)),
            },
        ),
    }
}

/// Where a reconcile reads the target's pods.
pub enum PodSource<'a> {
    /// The operator's shared, pruned pod cache.
    Cache(&'a Store<Pod>),
    /// A live LIST by the target's selector (`tidal explain --now`, which has no cache).
    Live(&'a Client),
}

/// What a reconcile reads through: the operator's context, or live clients for `explain --now`.
pub struct Sources<'a> {
    /// Scale subresources.
    pub scales: &'a Resolver,
    /// The target's pods.
    pub pods: PodSource<'a>,
    /// Resource metrics.
    pub pod_metrics: &'a PodMetricsSource,
    /// Custom and external metrics.
    pub metrics_client: &'a MetricsClient,
}

async fn observe(
    obj: &AutoScaler,
    ctx: &Sources<'_>,
    namespace: &str,
    spec: &scaling::AutoscalerSpec,
) -> Result<Observed, Error> {
    let target_ref = &obj.spec.scale_target_ref;
    let read = async {
        let target = ctx
            .scales
            .resolve(
                namespace,
                target_ref.api_version.as_deref(),
                &target_ref.kind,
                &target_ref.name,
            )
            .await?;
        let scale = target.get().await?;
        Ok::<_, scale::ScaleError>((target, scale))
    };
    let (target, scale_read) = match read.await {
        Ok((target, scale_obj)) => {
            let read = ScaleRead::Read(scaling::Scale {
                spec_replicas: scale_obj
                    .spec
                    .as_ref()
                    .and_then(|s| s.replicas)
                    .unwrap_or(0),
                status_replicas: scale_obj.status.as_ref().map_or(0, |s| s.replicas),
                selector: scale_obj
                    .status
                    .as_ref()
                    .and_then(|s| s.selector.clone())
                    .unwrap_or_default(),
            });
            (Some((target, scale_obj)), read)
        }
        Err(err) => (None, ScaleRead::Failed(err.to_string())),
    };

    let mut observed = Observed {
        scale: scale_read,
        target,
        pods: Vec::new(),
        pod_metrics: Ok(Vec::new()),
        metric_values: Vec::new(),
    };
    let ScaleRead::Read(scale_seen) = &observed.scale else {
        return Ok(observed);
    };
    let Ok(selector) = scaling::Selector::parse(&scale_seen.selector) else {
        // The decision reports the invalid selector; nothing to fetch.
        return Ok(observed);
    };
    if scale_seen.selector.is_empty() {
        return Ok(observed);
    }
    observed.pods = match &ctx.pods {
        PodSource::Cache(store) => {
            pods::select(store, namespace, |labels| selector.matches(labels))
                .iter()
                .map(|p| convert::pod(p))
                .collect()
        }
        PodSource::Live(client) => {
            let api: Api<Pod> = Api::namespaced((*client).clone(), namespace);
            // The same selection the cache makes: list by the canonical selector, then match
            // again (the server's selector grammar and ours agree; this keeps them honest).
            api.list(&ListParams::default().labels(&selector.to_string()))
                .await?
                .items
                .iter()
                .filter(|p| {
                    selector.matches(p.metadata.labels.as_ref().unwrap_or(&Default::default()))
                })
                .map(convert::pod)
                .collect()
        }
    };
    // The core joins pods and samples by name in one linear pass when both are sorted
    // (metrics-server returns samples sorted by name; the cache does not).
    observed.pods.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    // The same canonical string kube-controller-manager sends as `labelSelector`.
    let canonical = selector.to_string();

    let needs_pod_metrics = spec.metrics.is_empty()
        || spec.metrics.iter().any(|m| {
            matches!(
                m,
                scaling::MetricSpec::Resource { .. }
                    | scaling::MetricSpec::ContainerResource { .. }
            )
        });
    if needs_pod_metrics {
        observed.pod_metrics = api_answer(
            ctx.pod_metrics
                .pod_metrics(namespace, &canonical)
                .await
                .map(|snapshot| snapshot.pods.iter().map(pod_sample).collect()),
        );
    }
    for (metric, crd_metric) in spec
        .metrics
        .iter()
        .zip(obj.spec.metrics.as_deref().unwrap_or_default())
    {
        if let Some(values) = fetch_metric(ctx, namespace, &canonical, metric, crd_metric).await {
            observed.metric_values.push(values);
        }
    }
    Ok(observed)
}

fn pod_sample(sample: &PodSample) -> scaling::PodMetrics {
    scaling::PodMetrics {
        name: sample.name.clone(),
        timestamp: convert::time_in(&sample.timestamp),
        window: scaling::Duration::from_nanos(sample.window.as_nanos() as i128),
        containers: sample
            .containers
            .iter()
            .map(|c| scaling::ContainerMetrics {
                name: c.name.clone(),
                usage: c
                    .usage
                    .iter()
                    .filter_map(|(resource, q)| {
                        scaling::Quantity::parse(q)
                            .ok()
                            .map(|q| (resource.clone(), q.milli_value()))
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn metric_value(
    value: &str,
    timestamp: &Timestamp,
    window: Duration,
    pod: Option<String>,
) -> Option<MetricValue> {
    Some(MetricValue {
        pod_name: pod,
        value: scaling::Quantity::parse(value).ok()?.milli_value(),
        timestamp: convert::time_in(timestamp),
        window: scaling::Duration::from_nanos(window.as_nanos() as i128),
    })
}

/// A metrics API answer as the core expects it: an empty list stays an empty answer (the core
/// words that error exactly as upstream does), and errors lose the "unable to fetch metrics
/// from … metrics API: " prefix, which the core adds itself.
fn api_answer<T>(result: Result<Vec<T>, tidal_metrics_client::Error>) -> Result<Vec<T>, String> {
    match result {
        Err(tidal_metrics_client::Error::NoMetrics { .. }) => Ok(Vec::new()),
        other => other.map_err(api_error),
    }
}

fn api_error(err: tidal_metrics_client::Error) -> String {
    err.cause()
}

/// Fetches the custom or external metric one spec entry needs (`None` for resource metrics).
async fn fetch_metric(
    ctx: &Sources<'_>,
    namespace: &str,
    pod_selector: &str,
    metric: &scaling::MetricSpec,
    crd: &tidal_crds::MetricSpec,
) -> Option<MetricValues> {
    let metric_selector = |m: &tidal_crds::MetricIdentifier| -> Result<String, String> {
        tidal_metrics_client::label_selector_string(m.selector.as_ref()).map_err(|e| e.to_string())
    };
    match (metric, crd) {
        (
            scaling::MetricSpec::Pods { metric: id, .. },
            tidal_crds::MetricSpec { pods: Some(p), .. },
        ) => {
            let answer = match metric_selector(&p.metric) {
                Ok(msel) => api_answer(
                    ctx.metrics_client
                        .pods_metric(namespace, pod_selector, &p.metric.name, &msel)
                        .await
                        .map(|items| {
                            items
                                .iter()
                                .filter_map(|s| {
                                    metric_value(
                                        &s.value,
                                        &s.timestamp,
                                        s.window(),
                                        Some(s.described_object.name.clone()),
                                    )
                                })
                                .collect()
                        }),
                ),
                Err(e) => Err(e),
            };
            Some(MetricValues {
                kind: "Pods".into(),
                metric_name: id.name.clone(),
                selector: None,
                described_object: None,
                answer,
            })
        }
        (
            scaling::MetricSpec::Object { metric: id, .. },
            tidal_crds::MetricSpec {
                object: Some(o), ..
            },
        ) => {
            let answer = async {
                let msel = metric_selector(&o.metric)?;
                let target = ctx
                    .metrics_client
                    .object_target(
                        o.described_object.api_version.as_deref().unwrap_or(""),
                        &o.described_object.kind,
                        &o.described_object.name,
                    )
                    .await
                    .map_err(api_error)?;
                let sample = ctx
                    .metrics_client
                    .object_metric(namespace, &target, &o.metric.name, &msel)
                    .await
                    .map_err(api_error)?;
                Ok(
                    metric_value(&sample.value, &sample.timestamp, sample.window(), None)
                        .into_iter()
                        .collect(),
                )
            }
            .await;
            Some(MetricValues {
                kind: "Object".into(),
                metric_name: id.name.clone(),
                selector: None,
                described_object: None,
                answer,
            })
        }
        (
            scaling::MetricSpec::External { metric: id, .. },
            tidal_crds::MetricSpec {
                external: Some(e), ..
            },
        ) => {
            let answer = match metric_selector(&e.metric) {
                Ok(msel) => api_answer(
                    ctx.metrics_client
                        .external_metric(namespace, &e.metric.name, &msel)
                        .await
                        .map(|items| {
                            items
                                .iter()
                                .filter_map(|s| {
                                    let window = Duration::from_secs(
                                        s.window_seconds
                                            .and_then(|w| u64::try_from(w).ok())
                                            .unwrap_or(60),
                                    );
                                    metric_value(&s.value, &s.timestamp, window, None)
                                })
                                .collect()
                        }),
                ),
                Err(err) => Err(err),
            };
            Some(MetricValues {
                kind: "External".into(),
                metric_name: id.name.clone(),
                selector: None,
                described_object: None,
                answer,
            })
        }
        _ => None,
    }
}

async fn publish_events(obj: &AutoScaler, ctx: &Context, events: &[scaling::Event], shadow: bool) {
    let reference = obj.object_ref(&());
    for event in events {
        let note = if shadow {
            format!("(shadow mode, scale not written) {}", event.message)
        } else {
            event.message.clone()
        };
        let recorder = {
            let mut recorders = ctx.event_recorders.lock().await;
            let slot = (scale::key(obj), event.reason.clone());
            match recorders.get(&slot) {
                Some((last, recorder)) if *last == note => recorder.clone(),
                _ => {
                    let recorder = Recorder::new(ctx.client.clone(), ctx.reporter.clone());
                    recorders.insert(slot, (note.clone(), recorder.clone()));
                    recorder
                }
            }
        };
        let result = recorder
            .publish(
                &KubeEvent {
                    type_: match event.kind {
                        scaling::EventType::Normal => EventType::Normal,
                        scaling::EventType::Warning => EventType::Warning,
                    },
                    reason: event.reason.clone(),
                    note: Some(note),
                    action: "Reconcile".into(),
                    secondary: None,
                },
                &reference,
            )
            .await;
        if let Err(err) = result {
            tracing::warn!(reason = %event.reason, error = %err, "could not record event");
        }
    }
}

async fn write_status(
    obj: &AutoScaler,
    ctx: &Context,
    status: AutoScalerStatus,
) -> Result<(), Error> {
    let api: Api<AutoScaler> =
        Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let mut updated = obj.clone();
    updated.status = Some(status);
    // A full-object UpdateStatus with the cached resourceVersion, as upstream: a conflict means
    // someone changed the object, and the next sync writes again. History is kept in memory
    // meanwhile, so a lost status write loses nothing.
    match api
        .replace_status(&obj.name_any(), &PostParams::default(), &updated)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => {
            tracing::debug!("status write conflicted; the next sync writes again");
            Ok(())
        }
        Err(err) => {
            let reference = obj.object_ref(&());
            let _ = ctx
                .recorder
                .publish(
                    &KubeEvent {
                        type_: EventType::Warning,
                        reason: "FailedUpdateStatus".into(),
                        note: Some(err.to_string()),
                        action: "UpdateStatus".into(),
                        secondary: None,
                    },
                    &reference,
                )
                .await;
            Err(err.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleted_autoscalers_lose_their_memory_selectors_reasons_and_recorders() {
        let mut memory = Memory::default();
        let mut recorders: HashMap<(String, String), (String, ())> = HashMap::new();
        for key in ["shop/web", "shop/gone"] {
            memory
                .histories
                .insert(key.into(), (1, scaling::History::default()));
            memory.selectors.insert(key.into(), "app=web".into());
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

        let keys: Vec<&str> = gone.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["other/only-events", "shop/gone"]);
        assert!(gone[1].1.contains("ReadyForNewScale"));
        assert_eq!(memory.histories.keys().collect::<Vec<_>>(), ["shop/web"]);
        assert_eq!(memory.selectors.keys().collect::<Vec<_>>(), ["shop/web"]);
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
        memory.selectors.insert("shop/web".into(), "app=web".into());
        let mut recorders: HashMap<(String, String), (String, ())> = HashMap::new();
        assert!(forget_deleted(&mut memory, &mut recorders, |_| true).is_empty());
        assert_eq!(memory.selectors.len(), 1);
    }

    #[test]
    fn overridden_conditions_keep_their_stored_transition_time_while_their_status_holds() {
        let t0 = Timestamp::from_second(1_000).expect("t0");
        let t1 = Timestamp::from_second(2_000).expect("t1");
        let mut stored = Vec::new();
        set_condition(
            &mut stored,
            "ScalingActive",
            "False",
            "ConflictingHPA",
            "m",
            &t0,
        );
        set_condition(
            &mut stored,
            "AbleToScale",
            "True",
            "SucceededGetScale",
            "m",
            &t0,
        );
        // This sync: the core turned ScalingActive True (transition t1), the override False again.
        let mut now = Vec::new();
        set_condition(
            &mut now,
            "ScalingActive",
            "True",
            "ValidMetricFound",
            "m",
            &t1,
        );
        set_condition(
            &mut now,
            "ScalingActive",
            "False",
            "ConflictingHPA",
            "m",
            &t1,
        );
        set_condition(&mut now, "AbleToScale", "False", "Paused", "m", &t1);
        keep_transition_times(&mut now, &stored, &["ScalingActive", "AbleToScale"]);
        assert_eq!(
            now[0].last_transition_time,
            Some(Time(t0)),
            "same status: stored time"
        );
        assert_eq!(
            now[1].last_transition_time,
            Some(Time(t1)),
            "status changed: new time"
        );
    }

    fn remembered(replicas: i32) -> scaling::History {
        scaling::History {
            recommendations: Some(vec![scaling::Recommendation {
                replicas,
                timestamp: scaling::Time::parse_rfc3339("2026-01-01T00:00:00Z").expect("time"),
            }]),
            ..scaling::History::default()
        }
    }

    #[test]
    fn an_unlisted_hpa_watch_keeps_the_persisted_window() {
        // Active, HPA watch not listed yet (the first reconcile after a restart): blocked, but
        // the restored history must survive, in memory and in status.
        let (memory, persisted) = history_after(
            false,
            true,
            &Overlap::Unknown,
            Some(remembered(5)),
            Some(remembered(1)),
        );
        assert_eq!(memory, Some(remembered(5)));
        assert_eq!(persisted, Some(remembered(5)));
    }

    #[test]
    fn a_conflicting_hpa_leaves_no_memory_and_the_handover_starts_fresh() {
        let overlap = Overlap::Conflicts(vec![]);
        let (memory, persisted) = history_after(
            false,
            true,
            &overlap,
            Some(remembered(5)),
            Some(remembered(6)),
        );
        let memory = memory.expect("memory");
        assert_eq!(memory.recommendations, None, "seeded again at the handover");
        assert_eq!(persisted, None);
    }

    #[test]
    fn paused_keeps_and_active_records_the_decision() {
        let (m, p) = history_after(
            true,
            false,
            &Overlap::None,
            Some(remembered(5)),
            Some(remembered(1)),
        );
        assert_eq!((m, p), (Some(remembered(5)), Some(remembered(5))));
        let (m, p) = history_after(
            false,
            false,
            &Overlap::None,
            Some(remembered(5)),
            Some(remembered(1)),
        );
        assert_eq!((m, p), (Some(remembered(1)), Some(remembered(1))));
    }

    #[test]
    fn set_condition_keeps_the_transition_time_while_the_status_holds() {
        let t0 = Timestamp::from_second(1_000).expect("t0");
        let t1 = Timestamp::from_second(2_000).expect("t1");
        let mut conditions = Vec::new();
        set_condition(
            &mut conditions,
            "ConflictingHPA",
            "True",
            "SameScaleTarget",
            "a",
            &t0,
        );
        set_condition(
            &mut conditions,
            "ConflictingHPA",
            "True",
            "OverlappingSelector",
            "b",
            &t1,
        );
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].last_transition_time, Some(Time(t0)));
        assert_eq!(conditions[0].reason.as_deref(), Some("OverlappingSelector"));
        set_condition(
            &mut conditions,
            "ConflictingHPA",
            "Unknown",
            "HPACacheNotSynced",
            "c",
            &t1,
        );
        assert_eq!(conditions[0].last_transition_time, Some(Time(t1)));
    }
}
