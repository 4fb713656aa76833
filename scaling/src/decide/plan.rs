//! The first phase (contract 1.3 steps 1–10): the scale target, the
//! short-circuits, the metrics, normalization and the scale-from-zero floor.

use super::metrics::{Metrics, compute_replicas_for_metrics, tolerances};
use super::{Plan, State, finished, warning};
use crate::calculator::Ctx;
use crate::conditions::{
    ABLE_TO_SCALE, REASON_SUCCEEDED_GET_SCALE, SCALED_TO_ZERO, SCALING_ACTIVE, SCALING_LIMITED,
    remove_condition, set_condition,
};
use crate::conditions::{
    REASON_FAILED_COMPUTE_METRICS_REPLICAS, REASON_FAILED_GET_SCALE, REASON_SCALING_DISABLED,
};
use crate::model::{
    Condition, ConditionStatus, Decision, DecisionInput, MetricSpec, Recommendation, Scale,
    ScaleRead,
};
use crate::normalize::{self, BehaviorRules};
use crate::time::Time;
use crate::trace::{DecisionTrace, TraceTime};

const ABOVE_MAX: &str = "Current number of replicas above Spec.MaxReplicas";
const BELOW_MIN: &str = "Current number of replicas below Spec.MinReplicas";
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
            events.push(warning(REASON_FAILED_GET_SCALE, err.clone()));
            set_condition(
                &mut conditions,
                ABLE_TO_SCALE,
                ConditionStatus::False,
                REASON_FAILED_GET_SCALE,
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
            REASON_SCALING_DISABLED,
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
                .push(warning(REASON_FAILED_COMPUTE_METRICS_REPLICAS, err));
            let s = state;
            return finished(now, {
                let previous = s.previous_desired;
                s.unwritten(previous, String::new())
            });
        }
        Metrics::Held { name } => {
            // No recommendation is remembered: the metrics said nothing this sync.
            state.trace.stopped = Some(format!("the current size is held by {name}"));
            state.trace.desired_replicas = current;
            let s = state;
            return finished(now, s.unwritten(current, String::new()));
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
