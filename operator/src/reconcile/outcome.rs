//! What follows from a decision, given the AutoScaler's mode, the HPA check and the
//! replica-fight check: the conditions (the core's, with the Paused, blocked-by-an-HPA and
//! yielding overrides, and `ReplicaFight`), the status to store, the decision memory to keep,
//! the events to publish and the Prometheus labels of what happened.
//!
//! Pure: no client, no clock, no `async`. The reconciler calls it between the scale write and
//! the publishing, and the tests here drive it directly.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use scaling::conditions::{
    self, ABLE_TO_SCALE, CONFLICTING_HPA, REASON_PAUSED, REASON_SUCCEEDED_GET_SCALE,
    REASON_SUCCEEDED_RESCALE, REASON_SUCCESSFUL_RESCALE, REPLICA_FIGHT, SCALING_ACTIVE,
};
use scaling::{Condition, ConditionStatus, MetricOutcome, MetricReport};
use tidal_crds::{AutoScaler, AutoScalerStatus, Mode, TidalStatus};

use crate::hpa_conflict::{self, Overlap};
use crate::metrics::{Action as MetricAction, ErrorKind};
use crate::{kube_core, scale, status};

/// `AbleToScale=False/Paused`'s message.
const PAUSED_MESSAGE: &str =
    "spec.tidal.mode is Paused: Tidal computes and reports but does not write the scale";
/// `AbleToScale=True/SucceededGetScale`'s message (upstream's words).
const GOT_SCALE_MESSAGE: &str = "the HPA controller was able to get the target's current scale";

/// The AutoScaler's mode (`spec.tidal.mode`, default Active).
pub fn mode(obj: &AutoScaler) -> Mode {
    obj.spec
        .tidal
        .as_ref()
        .and_then(|t| t.mode)
        .unwrap_or_default()
}

/// How this reconcile may act on its decision: the mode, what the HPA check found and what the
/// replica-fight check concluded.
#[derive(Debug, Clone, PartialEq)]
pub struct Stance {
    /// `spec.tidal.mode`.
    pub mode: Mode,
    /// Built-in HPAs on the same pods.
    pub overlap: Overlap,
    /// Another field manager's change of the target's replicas, and whether Tidal yields to it.
    pub fight: scaling::fight::Assessment,
}

impl Stance {
    /// Paused: reports, writes nothing.
    pub fn paused(&self) -> bool {
        self.mode == Mode::Paused
    }

    /// Active beside a built-in HPA (or before it can know): two writers on one scale fight,
    /// so Tidal decides but steps back. Shadow and Paused never write anyway.
    pub fn blocked(&self) -> bool {
        self.mode == Mode::Active && self.overlap != Overlap::None
    }

    /// Active, not blocked, and yielding to another manager's change of replicas
    /// (`spec.tidal.replicaFight.policy: Yield`): decided, not written.
    pub fn yielding(&self) -> bool {
        self.mode == Mode::Active && !self.blocked() && self.fight.yielding
    }

    /// Whether the decided scale is written.
    pub fn writes(&self) -> bool {
        self.mode == Mode::Active && !self.blocked() && !self.yielding()
    }
}

/// What the scale write did, as upstream's `action` label: `written` is the size a successful
/// write set (`None` when nothing was written or the write failed).
pub fn action(written: Option<i32>, current: i32) -> MetricAction {
    match written {
        Some(replicas) if replicas > current => MetricAction::ScaleUp,
        Some(_) => MetricAction::ScaleDown,
        None => MetricAction::None,
    }
}

/// Everything a reconcile reports and remembers after its decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The status to store (written only when it differs from the stored one).
    pub status: AutoScalerStatus,
    /// The decision memory this process keeps for the next sync.
    pub memory: Option<scaling::History>,
    /// The events to publish.
    pub events: Vec<scaling::Event>,
    /// Whether the events describe a decision that Shadow mode did not write.
    pub shadow: bool,
}

/// The outcome of `decision` for `obj` under `stance`. `before` is the memory the decision
/// started from; `now` the reconcile's instant and `horizon` how far back its longest
/// stabilization window reaches (what of the memory is persisted, see `scaling::persist`).
pub fn outcome(
    obj: &AutoScaler,
    stance: &Stance,
    before: Option<scaling::History>,
    mut decision: scaling::Decision,
    (now, horizon): (Timestamp, scaling::Duration),
) -> Outcome {
    if !stance.writes() {
        // Nothing was written: the stored trace must not claim a rescale.
        decision.trace.rescale = false;
    }
    let old = obj.status.clone().unwrap_or_default();
    // Yielding is paused for the memory: no recommendation or scale event for writes that did
    // not happen; what was remembered before ages out of its windows as usual.
    let (memory, persisted) = history_after(
        stance.paused() || stance.yielding(),
        stance.blocked(),
        &stance.overlap,
        before,
        decision.history.clone(),
    );
    let stored = kube_core::conditions_in(old.conditions.as_ref());
    let mut conditions = std::mem::take(&mut decision.conditions);
    let conflict = override_conditions(&mut conditions, stance, &stored, kube_core::time_in(&now));

    let events = if stance.blocked() {
        // The decision's own events would describe writes that did not happen.
        conflict
            .map(|message| scaling::Event {
                kind: scaling::EventType::Warning,
                reason: hpa_conflict::SCALING_BLOCKED.to_string(),
                message,
            })
            .into_iter()
            .collect()
    } else if stance.paused() {
        Vec::new()
    } else {
        let mut events = std::mem::take(&mut decision.events);
        if stance.yielding() {
            // Decided, not written: no SuccessfulRescale.
            events.retain(|e| e.reason != REASON_SUCCESSFUL_RESCALE);
        }
        events.extend(stance.fight.event.clone());
        events
    };
    Outcome {
        status: status_after(
            obj,
            &old,
            stance,
            &decision,
            conditions,
            persisted,
            (now, horizon),
        ),
        memory,
        events,
        shadow: stance.mode == Mode::Shadow,
    }
}

/// The core's conditions with the mode's overrides applied: Paused turns `AbleToScale` False,
/// the HPA check sets or removes `ConflictingHPA`, and blocked turns `ScalingActive` False and
/// withdraws a `SucceededRescale` that was never written. Returns the `ConflictingHPA`
/// message, if there is one.
fn override_conditions(
    conditions: &mut Vec<Condition>,
    stance: &Stance,
    stored: &[Condition],
    now: scaling::Time,
) -> Option<String> {
    if stance.paused() {
        let absent = !conditions.iter().any(|c| c.kind == ABLE_TO_SCALE);
        conditions::set_condition(
            conditions,
            ABLE_TO_SCALE,
            ConditionStatus::False,
            REASON_PAUSED,
            PAUSED_MESSAGE.to_string(),
            now,
        );
        if absent {
            // `set_condition` appends; AbleToScale leads the list, as the core orders it.
            conditions.rotate_right(1);
        }
    }
    let conflict = hpa_conflict::condition(&stance.overlap, stance.mode == Mode::Active);
    match &conflict {
        Some((status, reason, message)) => conditions::set_condition(
            conditions,
            CONFLICTING_HPA,
            *status,
            reason,
            message.clone(),
            now,
        ),
        None => conditions::remove_condition(conditions, CONFLICTING_HPA),
    }
    let message = conflict.map(|(_, _, message)| message);
    if stance.blocked()
        && let Some(message) = &message
    {
        conditions::set_condition(
            conditions,
            SCALING_ACTIVE,
            ConditionStatus::False,
            hpa_conflict::SCALING_BLOCKED,
            message.clone(),
            now,
        );
    }
    match &stance.fight.condition {
        Some((status, reason, message)) => conditions::set_condition(
            conditions,
            REPLICA_FIGHT,
            *status,
            reason,
            message.clone(),
            now,
        ),
        None => conditions::remove_condition(conditions, REPLICA_FIGHT),
    }
    if (stance.blocked() && message.is_some()) || stance.yielding() {
        // Nothing was written: do not claim the rescale the decision would have made.
        if conditions
            .iter()
            .any(|c| c.kind == ABLE_TO_SCALE && c.reason == REASON_SUCCEEDED_RESCALE)
        {
            conditions::set_condition(
                conditions,
                ABLE_TO_SCALE,
                ConditionStatus::True,
                REASON_SUCCEEDED_GET_SCALE,
                GOT_SCALE_MESSAGE.to_string(),
                now,
            );
        }
    }
    if stance.paused() || stance.blocked() || stance.yielding() {
        // The core recomputes these from the stored ones every sync (e.g. ScalingActive back to
        // True) and the overrides above turn them again: without this the transition time
        // would move, and the status be rewritten, at every sync.
        keep_transition_times(conditions, stored, &[ABLE_TO_SCALE, SCALING_ACTIVE]);
    }
    message
}

/// The status to store after `decision`, with `conditions` already overridden.
fn status_after(
    obj: &AutoScaler,
    old: &AutoScalerStatus,
    stance: &Stance,
    decision: &scaling::Decision,
    conditions: Vec<Condition>,
    persisted: Option<scaling::History>,
    (now, horizon): (Timestamp, scaling::Duration),
) -> AutoScalerStatus {
    let spec_metrics = obj.spec.metrics.as_deref().unwrap_or_default();
    let current_metrics = status::current_metrics(spec_metrics, &decision.metrics);
    let target = &obj.spec.scale_target_ref;
    AutoScalerStatus {
        observed_generation: obj.metadata.generation,
        // Shadow records the time too: its status mirrors the controller that really writes.
        last_scale_time: if decision.last_scale_time_updated
            && !stance.paused()
            && !stance.blocked()
            && !stance.yielding()
        {
            Some(Time(now))
        } else {
            old.last_scale_time.clone()
        },
        current_replicas: Some(decision.current_replicas),
        desired_replicas: decision.desired_replicas,
        current_metrics: (!decision.metrics.is_empty()).then(|| current_metrics.clone()),
        conditions: Some(kube_core::conditions_out(&conditions)),
        tidal: Some(TidalStatus {
            reference: Some(scale::reference(&target.kind, &target.name)),
            targets: Some(status::targets(spec_metrics, &current_metrics)),
            history: persisted
                .as_ref()
                .map(|h| kube_core::history_out(h, kube_core::time_in(&now), horizon)),
            last_decision: Some(last_decision(old.tidal.as_ref(), decision.trace.clone())),
            last_scale_decision: if decision.trace.rescale {
                Some(decision.trace.clone())
            } else {
                old.tidal
                    .as_ref()
                    .and_then(|t| t.last_scale_decision.clone())
            },
            // Settled by this decision (see `scaling::settle_intent`), so cleared.
            scale_intent: None,
            last_replica_fight: stance.fight.record.clone(),
            // Replaced by the reconcile when it measured a newer one.
            last_scale_lag: old.tidal.as_ref().and_then(|t| t.last_scale_lag.clone()),
        }),
    }
}

/// The `AbleToScale` reason of a status: what `tidal_decisions_total` counts.
pub fn deciding_reason(status: &AutoScalerStatus) -> Option<&str> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == ABLE_TO_SCALE)
        .map(|c| c.reason.as_deref().unwrap_or_default())
}

/// The decision memory to keep in this process and to persist in status, after a decision:
/// `(memory, persisted)`.
pub fn history_after(
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
pub fn keep_transition_times(conditions: &mut [Condition], stored: &[Condition], types: &[&str]) {
    for c in conditions
        .iter_mut()
        .filter(|c| types.contains(&c.kind.as_str()))
    {
        if let Some(old) = stored
            .iter()
            .find(|o| o.kind == c.kind && o.status == c.status)
        {
            c.last_transition_time = old.last_transition_time;
        }
    }
}

/// The trace to store: the new one, unless it records the same decision as the stored one
/// (`DecisionTrace::same_decision`: equal but for its instant, the window counts and the age of
/// the holding recommendation, which move with the clock alone). A steady state then writes no
/// status at all, and the stored trace is the first of the run of equal decisions: its time
/// says since when this decision has stood, its counts and ages are as of that time.
pub fn last_decision(
    old: Option<&TidalStatus>,
    new: scaling::DecisionTrace,
) -> scaling::DecisionTrace {
    match old.and_then(|t| t.last_decision.as_ref()) {
        Some(stored) if stored.same_decision(&new) => stored.clone(),
        _ => new,
    }
}

/// The labels of one metric computation (upstream's `metric_computation_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricComputation {
    /// What the metric's own proposal would do to the stored current size.
    pub action: MetricAction,
    /// `spec` for an unknown metric type, `internal` for any other failure.
    pub error: ErrorKind,
    /// The metric's type (a fixed label set).
    pub metric_type: &'static str,
}

/// One computation per metric the decision computed, labelled as upstream's
/// `computeReplicasForMetric` labels them: the proposal against the stored
/// `status.currentReplicas`, and a failure as action `none`.
pub fn metric_computations(
    reports: &[MetricReport],
    stored_current: i32,
) -> Vec<MetricComputation> {
    reports
        .iter()
        .map(|report| {
            let (action, error) = match &report.outcome {
                MetricOutcome::Proposal { replicas, .. } => (
                    match replicas.cmp(&stored_current) {
                        std::cmp::Ordering::Greater => MetricAction::ScaleUp,
                        std::cmp::Ordering::Less => MetricAction::ScaleDown,
                        std::cmp::Ordering::Equal => MetricAction::None,
                    },
                    ErrorKind::None,
                ),
                MetricOutcome::Failed { reason, .. }
                    if reason == scaling::conditions::REASON_INVALID_METRIC_SOURCE_TYPE =>
                {
                    (MetricAction::None, ErrorKind::Spec)
                }
                MetricOutcome::Failed { .. } => (MetricAction::None, ErrorKind::Internal),
            };
            MetricComputation {
                action,
                error,
                metric_type: metric_type_label(&report.kind),
            }
        })
        .collect()
}

/// The metric type as a bounded label: the API's five types, anything else `Unknown`.
fn metric_type_label(kind: &str) -> &'static str {
    match kind {
        "Resource" => "Resource",
        "ContainerResource" => "ContainerResource",
        "Pods" => "Pods",
        "Object" => "Object",
        "External" => "External",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hpa_conflict::Conflict;
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerCondition;
    use scaling::conditions::set_condition;

    fn t(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).expect("timestamp")
    }

    /// The default downscale window.
    const HORIZON: scaling::Duration = scaling::Duration::from_seconds(300);

    fn st(seconds: i64) -> scaling::Time {
        kube_core::time_in(&t(seconds))
    }

    fn condition(kind: &str, status: &str, reason: &str, at: i64) -> Condition {
        Condition {
            kind: kind.into(),
            status: status.into(),
            reason: reason.into(),
            message: "m".into(),
            last_transition_time: Some(st(at)),
        }
    }

    fn autoscaler(mode: Mode, stored: Option<AutoScalerStatus>) -> AutoScaler {
        let mut obj = AutoScaler::new(
            "web",
            tidal_crds::AutoScalerSpec {
                scale_target_ref: tidal_crds::CrossVersionObjectReference {
                    api_version: Some("apps/v1".into()),
                    kind: "Deployment".into(),
                    name: "web".into(),
                },
                min_replicas: None,
                max_replicas: 10,
                metrics: None,
                behavior: None,
                tidal: Some(tidal_crds::TidalSpec {
                    mode: Some(mode),
                    ..Default::default()
                }),
            },
        );
        obj.metadata.namespace = Some("shop".into());
        obj.metadata.generation = Some(3);
        obj.status = stored;
        obj
    }

    /// A decision that scaled from 2 to 4 (as the core reports a successful write).
    fn rescaled() -> scaling::Decision {
        scaling::Decision {
            desired_replicas: 4,
            current_replicas: 2,
            rescale: true,
            reason: "cpu resource utilization (percentage of request) above target".into(),
            metrics: Vec::new(),
            conditions: vec![
                condition(ABLE_TO_SCALE, "True", REASON_SUCCEEDED_RESCALE, 100),
                condition(SCALING_ACTIVE, "True", "ValidMetricFound", 100),
            ],
            events: vec![scaling::Event {
                kind: scaling::EventType::Normal,
                reason: "SuccessfulRescale".into(),
                message: "New size: 4; reason: cpu above target".into(),
            }],
            history: Some(remembered(4)),
            last_scale_time_updated: true,
            trace: scaling::DecisionTrace {
                time: scaling::trace::TraceTime(st(100)),
                desired_replicas: 4,
                rescale: true,
                ..Default::default()
            },
        }
    }

    fn stance(mode: Mode, overlap: Overlap) -> Stance {
        Stance {
            mode,
            overlap,
            fight: scaling::fight::Assessment::default(),
        }
    }

    /// Another manager set the replicas from 2 to 5 at 90 s; Tidal saw it at 100 s.
    fn fought(policy: scaling::fight::Policy) -> scaling::fight::Assessment {
        let entries = [scaling::fight::FieldsEntry {
            manager: "kubectl".into(),
            operation: "Update".into(),
            subresource: "scale".into(),
            time: Some(st(90)),
            fields: serde_json::json!({"f:spec": {"f:replicas": {}}}),
        }];
        let change = scaling::fight::Change { from: 2, to: 5 };
        let detected = scaling::fight::report(change, Ok(&entries), None, st(100));
        scaling::fight::assess(policy, Some(detected), None, st(100))
    }

    fn conflicting() -> Overlap {
        Overlap::Conflicts(vec![Conflict {
            hpa: "shop/web".into(),
            selector: "app=web".into(),
            same_target: true,
        }])
    }

    fn find<'a>(status: &'a AutoScalerStatus, kind: &str) -> &'a HorizontalPodAutoscalerCondition {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == kind)
            .unwrap_or_else(|| panic!("no {kind} in {:?}", status.conditions))
    }

    #[test]
    fn overridden_conditions_keep_their_stored_transition_time_while_their_status_holds() {
        let (t0, t1) = (st(1_000), st(2_000));
        let mut stored = Vec::new();
        set_condition(
            &mut stored,
            "ScalingActive",
            ConditionStatus::False,
            "ConflictingHPA",
            "m".into(),
            t0,
        );
        set_condition(
            &mut stored,
            "AbleToScale",
            ConditionStatus::True,
            "SucceededGetScale",
            "m".into(),
            t0,
        );
        // This sync: the core turned ScalingActive True (transition t1), the override False again.
        let mut now = Vec::new();
        set_condition(
            &mut now,
            "ScalingActive",
            ConditionStatus::True,
            "ValidMetricFound",
            "m".into(),
            t1,
        );
        set_condition(
            &mut now,
            "ScalingActive",
            ConditionStatus::False,
            "ConflictingHPA",
            "m".into(),
            t1,
        );
        set_condition(
            &mut now,
            "AbleToScale",
            ConditionStatus::False,
            "Paused",
            "m".into(),
            t1,
        );
        keep_transition_times(&mut now, &stored, &["ScalingActive", "AbleToScale"]);
        assert_eq!(
            now[0].last_transition_time,
            Some(t0),
            "same status: stored time"
        );
        assert_eq!(
            now[1].last_transition_time,
            Some(t1),
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
        let (t0, t1) = (st(1_000), st(2_000));
        let mut conditions = Vec::new();
        set_condition(
            &mut conditions,
            "ConflictingHPA",
            ConditionStatus::True,
            "SameScaleTarget",
            "a".into(),
            t0,
        );
        set_condition(
            &mut conditions,
            "ConflictingHPA",
            ConditionStatus::True,
            "OverlappingSelector",
            "b".into(),
            t1,
        );
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].last_transition_time, Some(t0));
        assert_eq!(conditions[0].reason, "OverlappingSelector");
        set_condition(
            &mut conditions,
            "ConflictingHPA",
            ConditionStatus::Unknown,
            "HPACacheNotSynced",
            "c".into(),
            t1,
        );
        assert_eq!(conditions[0].last_transition_time, Some(t1));
    }

    #[test]
    fn active_without_an_hpa_stores_the_decision_as_made() {
        let obj = autoscaler(Mode::Active, None);
        let out = outcome(
            &obj,
            &stance(Mode::Active, Overlap::None),
            None,
            rescaled(),
            (t(100), HORIZON),
        );
        let status = &out.status;
        assert_eq!(
            status.last_scale_time,
            Some(Time(t(100))),
            "written: lastScaleTime is now"
        );
        assert_eq!(
            (status.desired_replicas, status.current_replicas),
            (4, Some(2))
        );
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(
            find(status, ABLE_TO_SCALE).reason.as_deref(),
            Some(REASON_SUCCEEDED_RESCALE)
        );
        assert!(
            status
                .conditions
                .iter()
                .flatten()
                .all(|c| c.type_ != CONFLICTING_HPA)
        );
        let tidal = status.tidal.as_ref().expect("tidal status");
        assert_eq!(tidal.reference.as_deref(), Some("Deployment/web"));
        assert!(tidal.last_decision.as_ref().expect("trace").rescale);
        assert_eq!(
            tidal
                .history
                .as_ref()
                .map(|h| h.recommendation_runs.clone()),
            Some(vec![tidal_crds::RecommendationRun {
                replicas: 4,
                since: None
            }]),
            "the decision's memory, as runs"
        );
        assert_eq!(out.memory, Some(remembered(4)));
        assert_eq!(out.events.len(), 1);
        assert!(!out.shadow);
        assert_eq!(deciding_reason(status), Some(REASON_SUCCEEDED_RESCALE));
    }

    #[test]
    fn paused_turns_able_to_scale_false_writes_no_time_and_publishes_nothing() {
        let stored = AutoScalerStatus {
            last_scale_time: Some(Time(t(50))),
            ..Default::default()
        };
        let obj = autoscaler(Mode::Paused, Some(stored));
        let out = outcome(
            &obj,
            &stance(Mode::Paused, Overlap::None),
            Some(remembered(7)),
            rescaled(),
            (t(100), HORIZON),
        );
        let able = find(&out.status, ABLE_TO_SCALE);
        assert_eq!(
            (able.status.as_str(), able.reason.as_deref()),
            ("False", Some(REASON_PAUSED))
        );
        assert_eq!(able.message.as_deref(), Some(PAUSED_MESSAGE));
        assert_eq!(
            able.last_transition_time,
            Some(Time(t(100))),
            "True -> False: now"
        );
        assert_eq!(
            out.status.last_scale_time,
            Some(Time(t(50))),
            "not written: stored time"
        );
        assert!(out.events.is_empty());
        assert_eq!(
            out.memory,
            Some(remembered(7)),
            "paused keeps the memory it had"
        );
        assert!(
            !out.status
                .tidal
                .as_ref()
                .and_then(|t| t.last_decision.as_ref())
                .expect("trace")
                .rescale
        );
    }

    #[test]
    fn paused_puts_an_absent_able_to_scale_first() {
        let obj = autoscaler(Mode::Paused, None);
        let mut decision = rescaled();
        decision.conditions.retain(|c| c.kind != ABLE_TO_SCALE);
        let out = outcome(
            &obj,
            &stance(Mode::Paused, Overlap::None),
            None,
            decision,
            (t(100), HORIZON),
        );
        let kinds: Vec<&str> = out
            .status
            .conditions
            .iter()
            .flatten()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(kinds, [ABLE_TO_SCALE, SCALING_ACTIVE]);
    }

    #[test]
    fn paused_keeps_the_stored_transition_time_of_its_override() {
        let stored = AutoScalerStatus {
            conditions: Some(kube_core::conditions_out(&[condition(
                ABLE_TO_SCALE,
                "False",
                REASON_PAUSED,
                40,
            )])),
            ..Default::default()
        };
        let obj = autoscaler(Mode::Paused, Some(stored));
        let out = outcome(
            &obj,
            &stance(Mode::Paused, Overlap::None),
            None,
            rescaled(),
            (t(100), HORIZON),
        );
        assert_eq!(
            find(&out.status, ABLE_TO_SCALE).last_transition_time,
            Some(Time(t(40)))
        );
    }

    #[test]
    fn blocked_by_an_hpa_reports_the_conflict_and_claims_no_rescale() {
        let stored = AutoScalerStatus {
            last_scale_time: Some(Time(t(50))),
            ..Default::default()
        };
        let obj = autoscaler(Mode::Active, Some(stored));
        let out = outcome(
            &obj,
            &stance(Mode::Active, conflicting()),
            Some(remembered(7)),
            rescaled(),
            (t(100), HORIZON),
        );
        let status = &out.status;
        let active = find(status, SCALING_ACTIVE);
        assert_eq!(
            (active.status.as_str(), active.reason.as_deref()),
            ("False", Some(hpa_conflict::SCALING_BLOCKED))
        );
        assert_eq!(hpa_conflict::SCALING_BLOCKED, "ConflictingHPA");
        let conflict = find(status, CONFLICTING_HPA);
        assert_eq!(
            (conflict.status.as_str(), conflict.reason.as_deref()),
            ("True", Some(hpa_conflict::REASON_SAME_TARGET))
        );
        assert_eq!(active.message, conflict.message);
        let able = find(status, ABLE_TO_SCALE);
        assert_eq!(
            (able.status.as_str(), able.reason.as_deref()),
            ("True", Some(REASON_SUCCEEDED_GET_SCALE))
        );
        assert_eq!(able.message.as_deref(), Some(GOT_SCALE_MESSAGE));
        assert_eq!(
            status.last_scale_time,
            Some(Time(t(50))),
            "not written: stored time"
        );
        assert!(
            !status
                .tidal
                .as_ref()
                .and_then(|t| t.last_decision.as_ref())
                .expect("trace")
                .rescale
        );
        assert_eq!(status.tidal.as_ref().and_then(|t| t.history.as_ref()), None);
        assert_eq!(out.memory, Some(scaling::History::default()));
        // Only the warning: the decision's SuccessfulRescale did not happen.
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.events[0].reason, hpa_conflict::SCALING_BLOCKED);
        assert_eq!(out.events[0].kind, scaling::EventType::Warning);
        assert_eq!(
            Some(out.events[0].message.as_str()),
            conflict.message.as_deref()
        );
    }

    #[test]
    fn shadow_beside_an_hpa_is_informational_and_mirrors_the_decision() {
        let obj = autoscaler(Mode::Shadow, None);
        let out = outcome(
            &obj,
            &stance(Mode::Shadow, conflicting()),
            None,
            rescaled(),
            (t(100), HORIZON),
        );
        let conflict = find(&out.status, CONFLICTING_HPA);
        assert!(
            conflict
                .message
                .as_deref()
                .is_some_and(|m| m.contains("informational"))
        );
        assert_eq!(find(&out.status, SCALING_ACTIVE).status, "True");
        // Shadow records the decision as if written (it mirrors the HPA's status), but the
        // trace does not claim a write and the events carry the shadow note.
        assert_eq!(out.status.last_scale_time, Some(Time(t(100))));
        assert!(
            !out.status
                .tidal
                .as_ref()
                .and_then(|t| t.last_decision.as_ref())
                .expect("trace")
                .rescale
        );
        assert!(out.shadow);
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.memory, Some(remembered(4)));
    }

    #[test]
    fn a_resolved_conflict_removes_the_condition() {
        let stored = AutoScalerStatus {
            conditions: Some(kube_core::conditions_out(&[condition(
                CONFLICTING_HPA,
                "True",
                "SameScaleTarget",
                40,
            )])),
            ..Default::default()
        };
        let obj = autoscaler(Mode::Active, Some(stored));
        let mut decision = rescaled();
        decision
            .conditions
            .push(condition(CONFLICTING_HPA, "True", "SameScaleTarget", 40));
        let out = outcome(
            &obj,
            &stance(Mode::Active, Overlap::None),
            None,
            decision,
            (t(100), HORIZON),
        );
        assert!(
            out.status
                .conditions
                .iter()
                .flatten()
                .all(|c| c.type_ != CONFLICTING_HPA)
        );
    }

    #[test]
    fn an_unchanged_decision_keeps_the_stored_trace_time() {
        let first = outcome(
            &autoscaler(Mode::Active, None),
            &stance(Mode::Active, Overlap::None),
            None,
            rescaled(),
            (t(100), HORIZON),
        );
        let stored_trace = first
            .status
            .tidal
            .as_ref()
            .and_then(|t| t.last_decision.clone())
            .expect("trace");
        let obj = autoscaler(Mode::Active, Some(first.status.clone()));
        let mut again = rescaled();
        again.trace.time = scaling::trace::TraceTime(st(115));
        let out = outcome(
            &obj,
            &stance(Mode::Active, Overlap::None),
            None,
            again.clone(),
            (t(115), HORIZON),
        );
        assert_eq!(
            out.status
                .tidal
                .as_ref()
                .and_then(|t| t.last_decision.clone()),
            Some(stored_trace)
        );
        // A different decision stores its own trace and time.
        again.trace.desired_replicas = 5;
        let out = outcome(
            &obj,
            &stance(Mode::Active, Overlap::None),
            None,
            again.clone(),
            (t(115), HORIZON),
        );
        assert_eq!(
            out.status.tidal.and_then(|t| t.last_decision),
            Some(again.trace)
        );
    }

    #[test]
    fn the_last_scaling_decision_outlives_later_decisions_that_keep_the_size() {
        let scaled = outcome(
            &autoscaler(Mode::Active, None),
            &stance(Mode::Active, Overlap::None),
            None,
            rescaled(),
            (t(100), HORIZON),
        );
        let scaling_trace = rescaled().trace;
        let tidal = scaled.status.tidal.clone().expect("tidal status");
        assert_eq!(tidal.last_scale_decision, Some(scaling_trace.clone()));

        // A fresh sample 15 s later keeps the size: lastDecision moves on, the scale stays.
        let mut kept = rescaled();
        kept.rescale = false;
        kept.trace = scaling::DecisionTrace {
            time: scaling::trace::TraceTime(st(115)),
            desired_replicas: 4,
            current_replicas: Some(4),
            rescale: false,
            ..Default::default()
        };
        let obj = autoscaler(Mode::Active, Some(scaled.status.clone()));
        let out = outcome(
            &obj,
            &stance(Mode::Active, Overlap::None),
            None,
            kept.clone(),
            (t(115), HORIZON),
        );
        let tidal = out.status.tidal.expect("tidal status");
        assert_eq!(tidal.last_decision, Some(kept.trace));
        assert_eq!(tidal.last_scale_decision, Some(scaling_trace));
    }

    #[test]
    fn a_decision_that_wrote_nothing_is_not_recorded_as_the_last_scale() {
        for mode in [Mode::Shadow, Mode::Paused] {
            let out = outcome(
                &autoscaler(mode, None),
                &stance(mode, Overlap::None),
                None,
                rescaled(),
                (t(100), HORIZON),
            );
            let tidal = out.status.tidal.expect("tidal status");
            assert_eq!(tidal.last_scale_decision, None, "{mode:?}");
        }
        let out = outcome(
            &autoscaler(Mode::Active, None),
            &stance(Mode::Active, conflicting()),
            None,
            rescaled(),
            (t(100), HORIZON),
        );
        let tidal = out.status.tidal.expect("tidal status");
        assert_eq!(tidal.last_scale_decision, None, "blocked by an HPA");
    }

    #[test]
    fn actions_follow_the_size_written() {
        assert_eq!(action(Some(4), 2), MetricAction::ScaleUp);
        assert_eq!(action(Some(1), 2), MetricAction::ScaleDown);
        assert_eq!(action(None, 2), MetricAction::None);
    }

    #[test]
    fn metric_computations_are_labelled_as_upstream_labels_them() {
        let report = |kind: &str, outcome: MetricOutcome| MetricReport {
            kind: kind.into(),
            name: "m".into(),
            container: None,
            outcome,
        };
        let proposal = |replicas| MetricOutcome::Proposal {
            replicas,
            current: scaling::MetricValueStatus::default(),
        };
        let failed = |reason: &str| MetricOutcome::Failed {
            reason: reason.into(),
            message: "e".into(),
        };
        let got = metric_computations(
            &[
                report("Resource", proposal(5)),
                report("Pods", proposal(3)),
                report("External", proposal(1)),
                report("Object", failed("FailedGetObjectMetric")),
                report("Queue", failed("InvalidMetricSourceType")),
            ],
            3,
        );
        let labels: Vec<_> = got
            .iter()
            .map(|c| (c.action.label(), c.error.label(), c.metric_type))
            .collect();
        assert_eq!(
            labels,
            [
                ("scale_up", "none", "Resource"),
                ("none", "none", "Pods"),
                ("scale_down", "none", "External"),
                ("none", "internal", "Object"),
                ("none", "spec", "Unknown"),
            ]
        );
    }
    #[test]
    fn a_reported_fight_adds_its_condition_and_warning_and_leaves_the_decision_as_made() {
        let obj = autoscaler(Mode::Active, None);
        let mut stance = stance(Mode::Active, Overlap::None);
        stance.fight = fought(scaling::fight::Policy::Report);
        assert!(stance.writes(), "Report never changes what is written");
        let out = outcome(&obj, &stance, None, rescaled(), (t(100), HORIZON));
        let fight = find(&out.status, REPLICA_FIGHT);
        assert_eq!(
            (fight.status.as_str(), fight.reason.as_deref()),
            (
                "True",
                Some(conditions::REASON_REPLICAS_CHANGED_BY_OTHER_MANAGER)
            )
        );
        let message = fight.message.clone().unwrap_or_default();
        assert!(
            message.contains("from 2 to 5 by manager kubectl (Update, subresource scale"),
            "{message}"
        );
        assert_eq!(
            find(&out.status, ABLE_TO_SCALE).reason.as_deref(),
            Some(REASON_SUCCEEDED_RESCALE)
        );
        assert_eq!(out.status.last_scale_time, Some(Time(t(100))));
        assert_eq!(out.memory, Some(remembered(4)));
        let reasons: Vec<&str> = out.events.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "SuccessfulRescale",
                conditions::REASON_REPLICAS_CHANGED_BY_OTHER_MANAGER
            ]
        );
        assert_eq!(out.events[1].kind, scaling::EventType::Warning);
        let record = out
            .status
            .tidal
            .as_ref()
            .and_then(|t| t.last_replica_fight.as_ref())
            .expect("the fight is on record");
        assert_eq!((record.manager.as_str(), record.to), ("kubectl", 5));
    }

    #[test]
    fn yielding_writes_nothing_claims_no_rescale_and_keeps_the_memory() {
        let stored = AutoScalerStatus {
            last_scale_time: Some(Time(t(50))),
            ..Default::default()
        };
        let obj = autoscaler(Mode::Active, Some(stored));
        let mut stance = stance(Mode::Active, Overlap::None);
        stance.fight = fought(scaling::fight::Policy::Yield(
            scaling::Duration::from_seconds(60),
        ));
        assert!(stance.yielding() && !stance.writes());
        let out = outcome(
            &obj,
            &stance,
            Some(remembered(7)),
            rescaled(),
            (t(100), HORIZON),
        );
        let fight = find(&out.status, REPLICA_FIGHT);
        assert_eq!(
            fight.reason.as_deref(),
            Some(conditions::REASON_YIELDING_TO_OTHER_MANAGER)
        );
        assert!(
            fight
                .message
                .as_deref()
                .is_some_and(|m| m.contains("does not write the scale until")),
            "{fight:?}"
        );
        assert_eq!(
            find(&out.status, ABLE_TO_SCALE).reason.as_deref(),
            Some(REASON_SUCCEEDED_GET_SCALE)
        );
        assert_eq!(out.status.last_scale_time, Some(Time(t(50))));
        assert_eq!(out.memory, Some(remembered(7)));
        let trace = out
            .status
            .tidal
            .as_ref()
            .and_then(|t| t.last_decision.as_ref());
        assert!(!trace.expect("trace").rescale);
        let reasons: Vec<&str> = out.events.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(reasons, [conditions::REASON_YIELDING_TO_OTHER_MANAGER]);
    }

    #[test]
    fn without_a_fight_on_record_there_is_no_replica_fight_condition() {
        let stored = AutoScalerStatus {
            conditions: Some(kube_core::conditions_out(&[condition(
                REPLICA_FIGHT,
                "True",
                conditions::REASON_REPLICAS_CHANGED_BY_OTHER_MANAGER,
                40,
            )])),
            ..Default::default()
        };
        let obj = autoscaler(Mode::Active, Some(stored));
        let mut decision = rescaled();
        decision.conditions.push(condition(
            REPLICA_FIGHT,
            "True",
            conditions::REASON_REPLICAS_CHANGED_BY_OTHER_MANAGER,
            40,
        ));
        let out = outcome(
            &obj,
            &stance(Mode::Active, Overlap::None),
            None,
            decision,
            (t(100), HORIZON),
        );
        assert!(
            out.status
                .conditions
                .iter()
                .flatten()
                .all(|c| c.type_ != REPLICA_FIGHT)
        );
    }
}
