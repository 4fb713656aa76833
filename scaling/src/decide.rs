//! One reconcile (contract 1.3, steps 1–13), split in two phases around the
//! only side effect the core cannot perform: writing the scale.
//!
//! * [`plan`] computes everything up to the scale write: conditions, events,
//!   metric reports, the new recommendation memory and, if any, the replica
//!   count to write ([`Plan::scale_write`]).
//! * [`Plan::complete`] takes the outcome of that write (`Ok(())` when it
//!   succeeded, or the error text) and finishes the decision: `SuccessfulRescale`
//!   or `FailedRescale`, the scale-event memory, `ScaledToZero`, and the status
//!   values to write.
//!
//! A caller without I/O (`tidal calc`, tests) uses [`decide`] with the write
//! outcome known up front.

use crate::calculator::{Ctx, Tolerances, compute_metric};
use crate::model::{
    Condition, ConditionStatus, Decision, DecisionInput, Event, EventType, History, MetricOutcome,
    MetricReport, MetricSpec, Recommendation, Scale, ScaleRead,
};
use crate::normalize::{self, BehaviorRules};
use crate::selector::Selector;
use crate::time::Time;
use crate::trace::{DecisionTrace, MetricTrace, TraceTime};

use crate::conditions::{
    ABLE_TO_SCALE, REASON_SUCCEEDED_GET_SCALE, REASON_SUCCEEDED_RESCALE, SCALED_TO_ZERO,
    SCALING_ACTIVE, SCALING_LIMITED, remove_condition, set_condition,
};

const ABOVE_MAX: &str = "Current number of replicas above Spec.MaxReplicas";
const BELOW_MIN: &str = "Current number of replicas below Spec.MinReplicas";

/// The first phase of a decision: everything before the scale write.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    now: Time,
    state: State,
    /// Set when the decision stops before the write (or without one).
    finished: Option<Decision>,
    /// The replica count to write, when the decision rescales.
    write: Option<i32>,
}

/// What the second phase needs.
#[derive(Debug, Clone, PartialEq)]
struct State {
    conditions: Vec<Condition>,
    events: Vec<Event>,
    history: History,
    metrics: Vec<MetricReport>,
    current: i32,
    previous_desired: i32,
    reason: String,
    min: i32,
    has_object_or_external: bool,
    scale_to_zero_gate: bool,
    behavior: Option<BehaviorRules>,
    trace: DecisionTrace,
}

impl Plan {
    /// The replica count the controller must now write to the scale, if any.
    pub fn scale_write(&self) -> Option<i32> {
        if self.finished.is_some() {
            None
        } else {
            self.write
        }
    }

    /// Finishes the decision with the outcome of the scale write. The outcome
    /// is ignored when [`Plan::scale_write`] is `None`.
    pub fn complete(self, write_result: Result<(), String>) -> Decision {
        if let Some(d) = self.finished {
            return d;
        }
        let now = self.now;
        let mut s = self.state;
        let Some(desired) = self.write else {
            // No write: the status reports the current size.
            s.trace.desired_replicas = s.current;
            return Decision {
                desired_replicas: s.current,
                current_replicas: s.current,
                rescale: false,
                reason: String::new(),
                metrics: s.metrics,
                conditions: s.conditions,
                events: s.events,
                history: Some(s.history),
                last_scale_time_updated: false,
                trace: s.trace,
            };
        };
        s.trace.desired_replicas = desired;
        s.trace.reason.clone_from(&s.reason);
        match write_result {
            Err(err) => {
                s.trace.write_error = Some(err.clone());
                s.events.push(warning(
                    "FailedRescale",
                    format!("New size: {desired}; reason: {}; error: {err}", s.reason),
                ));
                set_condition(
                    &mut s.conditions,
                    ABLE_TO_SCALE,
                    ConditionStatus::False,
                    "FailedUpdateScale",
                    format!("the HPA controller was unable to update the target scale: {err}"),
                    now,
                );
                Decision {
                    desired_replicas: s.previous_desired,
                    current_replicas: s.current,
                    rescale: false,
                    reason: s.reason,
                    metrics: s.metrics,
                    conditions: s.conditions,
                    events: s.events,
                    history: Some(s.history),
                    last_scale_time_updated: false,
                    trace: s.trace,
                }
            }
            Ok(()) => {
                s.trace.rescale = true;
                set_condition(
                    &mut s.conditions,
                    ABLE_TO_SCALE,
                    ConditionStatus::True,
                    REASON_SUCCEEDED_RESCALE,
                    format!("the HPA controller was able to update the target scale to {desired}"),
                    now,
                );
                s.events.push(Event {
                    kind: EventType::Normal,
                    reason: "SuccessfulRescale".to_string(),
                    message: format!("New size: {desired}; reason: {}", s.reason),
                });
                if let Some(rules) = &s.behavior {
                    let h = &mut s.history;
                    normalize::store_scale_event(
                        &mut h.scale_up_events,
                        &mut h.scale_down_events,
                        rules,
                        s.current,
                        desired,
                        now,
                    );
                }
                if s.scale_to_zero_gate {
                    if s.current > 0 && desired == 0 && s.min == 0 && s.has_object_or_external {
                        set_condition(
                            &mut s.conditions,
                            SCALED_TO_ZERO,
                            ConditionStatus::True,
                            SCALED_TO_ZERO,
                            "the HPA controller scaled the workload to zero".to_string(),
                            now,
                        );
                    } else {
                        set_condition(
                            &mut s.conditions,
                            SCALED_TO_ZERO,
                            ConditionStatus::False,
                            "NotScaledToZero",
                            "the HPA controller did not scale the workload to zero".to_string(),
                            now,
                        );
                    }
                } else {
                    remove_condition(&mut s.conditions, SCALED_TO_ZERO);
                }
                Decision {
                    desired_replicas: desired,
                    current_replicas: s.current,
                    rescale: true,
                    reason: s.reason,
                    metrics: s.metrics,
                    conditions: s.conditions,
                    events: s.events,
                    history: Some(s.history),
                    last_scale_time_updated: true,
                    trace: s.trace,
                }
            }
        }
    }
}

/// Runs a whole decision; `write` is called with the new size when the
/// decision writes the scale and returns that write's outcome.
pub fn decide(input: &DecisionInput, write: impl FnOnce(i32) -> Result<(), String>) -> Decision {
    let p = plan(input);
    match p.scale_write() {
        Some(n) => {
            let outcome = write(n);
            p.complete(outcome)
        }
        None => p.complete(Ok(())),
    }
}

fn warning(reason: &str, message: String) -> Event {
    Event {
        kind: EventType::Warning,
        reason: reason.to_string(),
        message,
    }
}

/// The scale target's `apiVersion` must be `version` or `group/version`
/// (FORMAT 3.4). Upstream's `schema.ParseGroupVersion` rejects more than one
/// `/`; an empty group or version parses there but then finds no REST mapping,
/// which fails the same way.
fn parse_group_version(api_version: &str) -> Result<(), String> {
    let valid = match api_version.split_once('/') {
        None => !api_version.is_empty(),
        Some((group, version)) => {
            !group.is_empty() && !version.is_empty() && !version.contains('/')
        }
    };
    if valid {
        Ok(())
    } else {
        Err(format!("unexpected GroupVersion string: {api_version}"))
    }
}

/// The metric outcome of `computeReplicasForMetrics`.
enum Metrics {
    /// Scaling may proceed with this proposal (an error may still be reported).
    Valid { replicas: i32, name: String },
    /// Nothing may be scaled; the error goes into `FailedComputeMetricsReplicas`.
    Fatal(String),
}

/// Runs the first phase of a decision.
pub fn plan(input: &DecisionInput) -> Plan {
    let now = input.now;
    let gates = input.config.feature_gates;
    let mut conditions = input.status.conditions.clone();
    let mut events = Vec::new();

    // Steps 1–2: the scale target.
    let scale: Result<&Scale, String> =
        match parse_group_version(&input.spec.scale_target_ref.api_version) {
            Err(e) => Err(e),
            Ok(()) => match &input.scale {
                ScaleRead::Read(s) => Ok(s),
                ScaleRead::Failed(e) => Err(e.clone()),
            },
        };
    let min = input.spec.min_replicas.unwrap_or(1);
    let max = input.spec.max_replicas;
    let mut trace = DecisionTrace {
        time: TraceTime(now),
        min_replicas: min,
        max_replicas: max,
        ..DecisionTrace::default()
    };
    let scale = match scale {
        Ok(s) => s,
        Err(err) => {
            trace.stopped = Some(format!("the target's scale could not be read: {err}"));
            trace.desired_replicas = input.status.desired_replicas;
            events.push(warning("FailedGetScale", err.clone()));
            set_condition(
                &mut conditions,
                ABLE_TO_SCALE,
                ConditionStatus::False,
                "FailedGetScale",
                format!("the HPA controller was unable to get the target's current scale: {err}"),
                now,
            );
            return finished(
                now,
                Decision {
                    desired_replicas: input.status.desired_replicas,
                    current_replicas: input.status.current_replicas,
                    rescale: false,
                    reason: String::new(),
                    metrics: Vec::new(),
                    conditions,
                    events,
                    history: input.history.clone(),
                    last_scale_time_updated: false,
                    trace,
                },
            );
        }
    };
    set_condition(
        &mut conditions,
        ABLE_TO_SCALE,
        ConditionStatus::True,
        REASON_SUCCEEDED_GET_SCALE,
        "the HPA controller was able to get the target's current scale".to_string(),
        now,
    );
    let current = scale.spec_replicas;
    trace.current_replicas = Some(current);

    // Step 3: seed the recommendation memory.
    let mut history = input.history.clone().unwrap_or_default();
    if history.recommendations.is_none() {
        history.recommendations = Some(vec![Recommendation {
            replicas: current,
            timestamp: now,
        }]);
    }

    // Step 4 and the API defaults.
    let spec = &input.spec;
    let default_metrics;
    let metric_specs: &[MetricSpec] = if spec.metrics.is_empty() {
        default_metrics = [MetricSpec::default_cpu()];
        &default_metrics
    } else {
        &spec.metrics
    };
    let has_object_or_external = metric_specs.iter().any(MetricSpec::is_object_or_external);
    let behavior = spec
        .behavior
        .as_ref()
        .map(|b| BehaviorRules::with_defaults(b, &input.config));
    let scaled_to_zero = gates.scale_to_zero
        && conditions
            .iter()
            .find(|c| c.kind == SCALED_TO_ZERO)
            .is_some_and(|c| c.status == ConditionStatus::True.as_str());

    let mut state = State {
        conditions,
        events,
        history,
        metrics: Vec::new(),
        current,
        previous_desired: input.status.desired_replicas,
        reason: String::new(),
        min,
        has_object_or_external,
        scale_to_zero_gate: gates.scale_to_zero,
        behavior,
        trace,
    };

    // Step 5: short-circuits before any metric work.
    // Contract 4.5: `(min != 0 && scaledToZero) || (scaledToZero && hasObjOrExt)`.
    let compute_at_zero = scaled_to_zero && (min != 0 || has_object_or_external);
    if current == 0 && !compute_at_zero {
        state.trace.stopped =
            Some("the target has 0 replicas: scaling is disabled, nothing computed".to_string());
        set_condition(
            &mut state.conditions,
            SCALING_ACTIVE,
            ConditionStatus::False,
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero".to_string(),
            now,
        );
        if !gates.scale_to_zero {
            remove_condition(&mut state.conditions, SCALED_TO_ZERO);
        }
        return Plan {
            now,
            state,
            finished: None,
            write: None,
        };
    }
    if current > max {
        state.trace.stopped = Some(format!(
            "current replicas ({current}) above maxReplicas ({max}): scale to maxReplicas, no metrics computed"
        ));
        state.reason = ABOVE_MAX.to_string();
        return Plan {
            now,
            state,
            finished: None,
            write: Some(max),
        };
    }
    // At zero with metrics allowed, the floor of step 9 replaces this short-circuit.
    if current < min && current != 0 {
        state.trace.stopped = Some(format!(
            "current replicas ({current}) below minReplicas ({min}): scale to minReplicas, no metrics computed"
        ));
        state.reason = BELOW_MIN.to_string();
        return Plan {
            now,
            state,
            finished: None,
            write: Some(min),
        };
    }

    // Step 6: metrics.
    let tolerances = tolerances(input);
    let ctx = Ctx {
        now,
        config: &input.config,
        namespace: &input.metadata.namespace,
        pods: &input.pods,
        pod_metrics: &input.pod_metrics,
        metric_values: &input.metric_values,
        tolerances,
        spec_replicas: current,
        status_replicas: scale.status_replicas,
    };
    let outcome = compute_replicas_for_metrics(input, scale, &ctx, metric_specs, &mut state);
    let (metric_replicas, metric_name) = match outcome {
        Metrics::Fatal(err) => {
            state.trace.stopped = Some(format!("no replica count computed: {err}"));
            state.trace.desired_replicas = state.previous_desired;
            state
                .events
                .push(warning("FailedComputeMetricsReplicas", err));
            let s = state;
            return finished(
                now,
                Decision {
                    desired_replicas: s.previous_desired,
                    current_replicas: s.current,
                    rescale: false,
                    reason: String::new(),
                    metrics: s.metrics,
                    conditions: s.conditions,
                    events: s.events,
                    history: Some(s.history),
                    last_scale_time_updated: false,
                    trace: s.trace,
                },
            );
        }
        Metrics::Valid { replicas, name } => (replicas, name),
    };

    // Step 7.
    let mut desired = 0;
    let mut rescale_metric = String::new();
    if metric_replicas > desired {
        desired = metric_replicas;
        rescale_metric = metric_name;
    }
    if desired > current {
        state.reason = format!("{rescale_metric} above target");
    }
    if desired < current {
        state.reason = "All metrics below target".to_string();
    }
    state.trace.proposal = Some(desired);
    state.trace.proposal_metric = (!rescale_metric.is_empty()).then(|| rescale_metric.clone());

    // Step 8: normalization. Each step returns its value and its trace together.
    let recs = state.history.recommendations.get_or_insert_with(Vec::new);
    let stabilized = match &state.behavior {
        None => {
            normalize::stabilize_legacy(recs, desired, now, input.config.downscale_stabilization)
        }
        Some(rules) => normalize::stabilize_with_behavior(recs, desired, current, now, rules),
    };
    let (reason, message) = if stabilized.replicas != desired {
        stabilized.reason
    } else {
        normalize::READY_FOR_NEW_SCALE
    };
    set_condition(
        &mut state.conditions,
        ABLE_TO_SCALE,
        ConditionStatus::True,
        reason,
        message.to_string(),
        now,
    );
    let h = &state.history;
    let limited = match &state.behavior {
        None => normalize::convert_legacy(current, stabilized.replicas, min, max, &input.config),
        Some(rules) => normalize::convert_with_behavior(
            current,
            stabilized.replicas,
            min,
            max,
            rules,
            &h.scale_up_events,
            &h.scale_down_events,
            now,
        ),
    };
    let (reason, message) = limited.reason;
    set_scaling_limited(
        &mut state.conditions,
        limited.replicas != stabilized.replicas,
        reason,
        message,
        now,
    );
    state.trace.stabilization = Some(stabilized.trace);
    state.trace.limits = Some(limited.trace);
    desired = limited.replicas;

    // Step 9: the scale-from-zero floor.
    if current == 0 && min != 0 && scaled_to_zero && desired < min {
        desired = min;
        state.trace.scale_from_zero_floor = true;
        if state.reason.is_empty() {
            state.reason = BELOW_MIN.to_string();
        }
    }

    // Step 10.
    let write = (desired != current).then_some(desired);
    Plan {
        now,
        state,
        finished: None,
        write,
    }
}

fn finished(now: Time, d: Decision) -> Plan {
    Plan {
        now,
        state: State {
            conditions: Vec::new(),
            events: Vec::new(),
            history: History::default(),
            metrics: Vec::new(),
            current: 0,
            previous_desired: 0,
            reason: String::new(),
            min: 0,
            has_object_or_external: false,
            scale_to_zero_gate: false,
            behavior: None,
            trace: DecisionTrace::default(),
        },
        finished: Some(d),
        write: None,
    }
}

fn set_scaling_limited(
    conditions: &mut Vec<Condition>,
    limited: bool,
    reason: &str,
    message: &str,
    now: Time,
) {
    let status = if limited {
        ConditionStatus::True
    } else {
        ConditionStatus::False
    };
    set_condition(
        conditions,
        SCALING_LIMITED,
        status,
        reason,
        message.to_string(),
        now,
    );
}

/// The cluster tolerance, overridden per direction by `behavior.*.tolerance`
/// when the gate is on (contract 2.1).
fn tolerances(input: &DecisionInput) -> Tolerances {
    let mut t = Tolerances {
        down: input.config.tolerance,
        up: input.config.tolerance,
    };
    if input.config.feature_gates.configurable_tolerance
        && let Some(b) = &input.spec.behavior
    {
        if let Some(q) = b.scale_up.as_ref().and_then(|r| r.tolerance) {
            t.up = q.as_approximate_f64();
        }
        if let Some(q) = b.scale_down.as_ref().and_then(|r| r.tolerance) {
            t.down = q.as_approximate_f64();
        }
    }
    t
}

/// Selector validation (contract 1.5); `Err` carries the fatal error text.
fn validate_selector(
    input: &DecisionInput,
    scale: &Scale,
    state: &mut State,
    now: Time,
) -> Result<(), String> {
    let selector = scale.selector.as_str();
    if selector.is_empty() {
        let msg = "selector is required".to_string();
        state.events.push(warning("SelectorRequired", msg.clone()));
        set_condition(
            &mut state.conditions,
            SCALING_ACTIVE,
            ConditionStatus::False,
            "InvalidSelector",
            "the HPA target's scale is missing a selector".to_string(),
            now,
        );
        return Err(msg);
    }
    if let Err(e) = Selector::parse(selector) {
        let msg =
            format!("couldn't convert selector into a corresponding internal selector object: {e}");
        state.events.push(warning("InvalidSelector", msg.clone()));
        set_condition(
            &mut state.conditions,
            SCALING_ACTIVE,
            ConditionStatus::False,
            "InvalidSelector",
            msg.clone(),
            now,
        );
        return Err(msg);
    }
    // The pods are already those the selector lists, so this autoscaler counts
    // as soon as there is a pod; any other one that matches a pod conflicts.
    if input.pods.is_empty() {
        return Ok(());
    }
    let me = &input.metadata;
    let mut keys = vec![format!("{}/{}", me.namespace, me.name)];
    for other in &input.other_autoscalers {
        let namespace = other.namespace.as_deref().unwrap_or(&me.namespace);
        if namespace != me.namespace || other.name == me.name || other.selector.is_empty() {
            continue;
        }
        let Ok(sel) = Selector::parse(&other.selector) else {
            // An unparsable selector is never registered upstream.
            continue;
        };
        if input.pods.iter().any(|p| sel.matches(&p.labels)) {
            keys.push(format!("{namespace}/{}", other.name));
        }
    }
    if keys.len() > 1 {
        let msg = format!(
            "pods by selector {selector} are controlled by multiple HPAs: [{}]",
            keys.join(" ")
        );
        state.events.push(warning("AmbiguousSelector", msg.clone()));
        set_condition(
            &mut state.conditions,
            SCALING_ACTIVE,
            ConditionStatus::False,
            "AmbiguousSelector",
            msg.clone(),
            now,
        );
        return Err(msg);
    }
    Ok(())
}

/// `computeReplicasForMetrics` (contract 3).
fn compute_replicas_for_metrics(
    input: &DecisionInput,
    scale: &Scale,
    ctx: &Ctx<'_>,
    specs: &[MetricSpec],
    state: &mut State,
) -> Metrics {
    let now = input.now;
    if let Err(e) = validate_selector(input, scale, state, now) {
        return Metrics::Fatal(e);
    }
    let mut replicas = 0i32;
    let mut name = String::new();
    let mut invalid = 0usize;
    let mut first_failure: Option<(&'static str, String, String)> = None;
    for spec in specs {
        let (report_name, container) = report_identity(spec);
        let mut trace = MetricTrace {
            kind: spec.type_name().to_string(),
            name: report_name.clone(),
            container: container.clone(),
            ..MetricTrace::default()
        };
        let computed = compute_metric(ctx, spec, &mut trace);
        match &computed {
            Ok(p) => trace.proposal = Some(p.replicas),
            Err(f) => trace.error = Some(format!("{}: {}", f.reason, f.inner)),
        }
        state.trace.metrics.push(trace);
        match computed {
            Ok(p) => {
                // Upstream's `replicas == 0 ||` lets a later proposal replace a zero.
                if replicas == 0 || p.replicas > replicas {
                    replicas = p.replicas;
                    name = p.metric_name;
                }
                state.metrics.push(MetricReport {
                    kind: spec.type_name().to_string(),
                    name: report_name,
                    container,
                    outcome: MetricOutcome::Proposal {
                        replicas: p.replicas,
                        current: p.current,
                    },
                });
            }
            Err(f) => {
                state.events.push(warning(f.reason, f.inner.clone()));
                state.metrics.push(MetricReport {
                    kind: spec.type_name().to_string(),
                    name: report_name,
                    container,
                    outcome: MetricOutcome::Failed {
                        reason: f.reason.to_string(),
                        message: f.inner.clone(),
                    },
                });
                if first_failure.is_none() {
                    first_failure = Some((f.reason, f.inner, f.outer));
                }
                invalid += 1;
            }
        }
    }
    let error = first_failure.as_ref().map(|(_, _, outer)| {
        format!(
            "invalid metrics ({invalid} invalid out of {}), first error is: {outer}",
            specs.len()
        )
    });
    if let Some((reason, inner, _)) = &first_failure
        && (invalid >= specs.len() || replicas < ctx.spec_replicas)
    {
        set_condition(
            &mut state.conditions,
            SCALING_ACTIVE,
            ConditionStatus::False,
            reason,
            format!("the HPA was unable to compute the replica count: {inner}"),
            now,
        );
        return Metrics::Fatal(error.unwrap_or_default());
    }
    set_condition(
        &mut state.conditions,
        SCALING_ACTIVE,
        ConditionStatus::True,
        "ValidMetricFound",
        format!("the HPA was able to successfully calculate a replica count from {name}"),
        now,
    );
    Metrics::Valid { replicas, name }
}

fn report_identity(spec: &MetricSpec) -> (String, Option<String>) {
    match spec {
        MetricSpec::Resource { name, .. } => (name.clone(), None),
        MetricSpec::ContainerResource {
            name, container, ..
        } => (name.clone(), Some(container.clone())),
        MetricSpec::Pods { metric, .. }
        | MetricSpec::Object { metric, .. }
        | MetricSpec::External { metric, .. } => (metric.name.clone(), None),
        MetricSpec::Unknown(_) => (String::new(), None),
    }
}
