//! The metrics step (contract 1.5 and 3): selector validation, the
//! ambiguous-selector guard, and every spec metric's proposal combined as
//! `computeReplicasForMetrics` does.

use super::policy::{self, Effect};
use super::{State, warning};
use crate::calculator::{Ctx, Tolerances, compute_metric};
use crate::conditions::{
    METRIC_POLICY, REASON_METRIC_MISSING, REASON_METRIC_STALE, REASON_METRICS_FRESH,
    remove_condition,
};
use crate::conditions::{
    REASON_AMBIGUOUS_SELECTOR, REASON_INVALID_SELECTOR, REASON_SELECTOR_REQUIRED,
    REASON_VALID_METRIC_FOUND,
};
use crate::conditions::{SCALING_ACTIVE, set_condition};
use crate::model::{
    Availability, ConditionStatus, DecisionInput, MetricOutcome, MetricReport, MetricSpec, Scale,
};
use crate::selector::Selector;
use crate::time::Time;
use crate::trace::MetricTrace;

/// The metric outcome of `computeReplicasForMetrics`.
pub(super) enum Metrics {
    /// Scaling may proceed with this proposal (an error may still be reported).
    Valid { replicas: i32, name: String },
    /// Nothing may be scaled; the error goes into `FailedComputeMetricsReplicas`.
    Fatal(String),
    /// A `Hold` policy (or `Ignore` on every metric) keeps the current size: nothing is
    /// scaled and nothing recommended, without an error.
    Held { name: String },
}

/// The cluster tolerance, overridden per direction by `behavior.*.tolerance`
/// when the gate is on (contract 2.1).
pub(super) fn tolerances(input: &DecisionInput) -> Tolerances {
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
        state
            .events
            .push(warning(REASON_SELECTOR_REQUIRED, msg.clone()));
        set_condition(
            &mut state.conditions,
            SCALING_ACTIVE,
            ConditionStatus::False,
            REASON_INVALID_SELECTOR,
            "the HPA target's scale is missing a selector".to_string(),
            now,
        );
        return Err(msg);
    }
    if let Err(e) = Selector::parse(selector) {
        let msg =
            format!("couldn't convert selector into a corresponding internal selector object: {e}");
        state
            .events
            .push(warning(REASON_INVALID_SELECTOR, msg.clone()));
        set_condition(
            &mut state.conditions,
            SCALING_ACTIVE,
            ConditionStatus::False,
            REASON_INVALID_SELECTOR,
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
        state
            .events
            .push(warning(REASON_AMBIGUOUS_SELECTOR, msg.clone()));
        set_condition(
            &mut state.conditions,
            SCALING_ACTIVE,
            ConditionStatus::False,
            REASON_AMBIGUOUS_SELECTOR,
            msg.clone(),
            now,
        );
        return Err(msg);
    }
    Ok(())
}

/// `computeReplicasForMetrics` (contract 3).
pub(super) fn compute_replicas_for_metrics(
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
    // Metrics left out by an `Ignore` policy count neither as valid nor as invalid.
    let mut counted = specs.len();
    let mut hold: Option<String> = None;
    let mut unavailable: Vec<(Availability, String)> = Vec::new();
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
        let mut effect = Effect::AsComputed;
        let mut policy_name = String::new();
        if let Some(p) = policy::policy_for(&input.metric_policies, spec) {
            policy_name = format!("{report_name} ({} policy)", p.when_unavailable.as_str());
            let judged = policy::judge(ctx, spec, p, computed.is_ok());
            effect = policy::effect(
                p,
                judged.availability,
                computed.as_ref().ok().map(|c| c.replicas),
                ctx.spec_replicas,
            );
            trace.policy = Some(policy::trace(p, &judged, effect));
            if judged.availability != Availability::Fresh {
                unavailable.push((
                    judged.availability,
                    policy::message(spec, p, judged.availability),
                ));
            }
        }
        state.trace.metrics.push(trace);
        // The metric's report and events stay what it computed; the policy changes only its
        // part in the combination.
        match effect {
            Effect::AsComputed => {}
            Effect::Ignore => counted -= 1,
            Effect::Hold => {
                hold.get_or_insert(policy_name.clone());
            }
            Effect::Propose(n) => {
                if replicas == 0 || n > replicas {
                    replicas = n;
                    name.clone_from(&policy_name);
                }
            }
        }
        let combine = effect == Effect::AsComputed;
        match computed {
            Ok(p) => {
                // Upstream's `replicas == 0 ||` lets a later proposal replace a zero.
                if combine && (replicas == 0 || p.replicas > replicas) {
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
                if combine {
                    if first_failure.is_none() {
                        first_failure = Some((f.reason, f.inner, f.outer));
                    }
                    invalid += 1;
                }
            }
        }
    }
    metric_policy_condition(input, state, &unavailable, now);
    // Every metric left out means nothing to decide on: the size stays, as under Hold.
    let held = hold.or_else(|| {
        (counted == 0).then(|| "no metric (each one ignored by its policy)".to_string())
    });
    let error = first_failure.as_ref().map(|(_, _, outer)| {
        format!(
            "invalid metrics ({invalid} invalid out of {}), first error is: {outer}",
            specs.len()
        )
    });
    if held.is_none()
        && let Some((reason, inner, _)) = &first_failure
        && (invalid >= counted || replicas < ctx.spec_replicas)
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
    let from = held.as_ref().unwrap_or(&name);
    set_condition(
        &mut state.conditions,
        SCALING_ACTIVE,
        ConditionStatus::True,
        REASON_VALID_METRIC_FOUND,
        format!("the HPA was able to successfully calculate a replica count from {from}"),
        now,
    );
    match held {
        Some(name) => Metrics::Held { name },
        None => Metrics::Valid { replicas, name },
    }
}

/// Tidal's `MetricPolicy` condition and events: absent without policies, `True` (and a
/// Warning event per metric) while a metric with a policy is stale or missing, else `False`.
fn metric_policy_condition(
    input: &DecisionInput,
    state: &mut State,
    unavailable: &[(Availability, String)],
    now: Time,
) {
    if input.metric_policies.is_empty() {
        remove_condition(&mut state.conditions, METRIC_POLICY);
        return;
    }
    let Some((first, _)) = unavailable.first() else {
        set_condition(
            &mut state.conditions,
            METRIC_POLICY,
            ConditionStatus::False,
            REASON_METRICS_FRESH,
            "every metric with a policy has fresh data".to_string(),
            now,
        );
        return;
    };
    let reason = |a: &Availability| match a {
        Availability::Missing => REASON_METRIC_MISSING,
        _ => REASON_METRIC_STALE,
    };
    for (a, message) in unavailable {
        state.events.push(warning(reason(a), message.clone()));
    }
    let message = unavailable
        .iter()
        .map(|(_, m)| m.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    set_condition(
        &mut state.conditions,
        METRIC_POLICY,
        ConditionStatus::True,
        reason(first),
        message,
        now,
    );
}

fn report_identity(spec: &MetricSpec) -> (String, Option<String>) {
    spec.identity()
        .map_or((String::new(), None), |(name, container)| {
            (name.to_string(), container.map(str::to_string))
        })
}
