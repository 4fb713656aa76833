//! Tidal's stale and missing data policy per metric (`spec.tidal.metricPolicies`): judging a
//! metric's samples against the policy's maximum age, and what its `whenUnavailable` makes of
//! the metric's proposal. A metric without a policy, a fresh one, or one under `Upstream` is
//! used exactly as upstream uses it.

use std::collections::HashMap;

use crate::calculator::{Ctx, find_answer};
use crate::model::{
    Availability, MetricPolicy, MetricSpec, MetricValue, PodPhase, WhenUnavailable,
};
use crate::time::{Duration, Time};
use crate::trace::MetricPolicyTrace;

/// The policy that names `spec`, if any (the first one, should two name it).
pub(super) fn policy_for<'a>(
    policies: &'a [MetricPolicy],
    spec: &MetricSpec,
) -> Option<&'a MetricPolicy> {
    policies.iter().find(|p| policy_names(p, spec))
}

/// Whether `policy` applies to the spec metric `spec`.
pub fn policy_names(policy: &MetricPolicy, spec: &MetricSpec) -> bool {
    spec.identity().is_some_and(|(name, container)| {
        policy.metric.kind == spec.type_name()
            && policy.metric.name == name
            && policy.metric.container.as_deref() == container
    })
}

/// A metric's data as its policy judges it.
pub(super) struct Judgement {
    pub availability: Availability,
    /// The oldest sample's age, when the metric read any.
    pub oldest: Option<Duration>,
    /// Which sample or pod made it stale.
    pub detail: Option<String>,
}

/// Judges one metric: `Missing` when it could not be computed, else `Stale` when the policy
/// sets a maximum age and a sample the metric read is older, or a pod that has run longer
/// than that has no sample (the pod-based metrics), else `Fresh`.
pub(super) fn judge(
    ctx: &Ctx<'_>,
    spec: &MetricSpec,
    policy: &MetricPolicy,
    computed: bool,
) -> Judgement {
    let ages = sample_ages(ctx, spec);
    let oldest = ages.oldest;
    if !computed {
        return Judgement {
            availability: Availability::Missing,
            oldest,
            detail: None,
        };
    }
    let stale = policy.max_sample_age.and_then(|max| {
        if let Some((pod, running)) = &ages.unsampled
            && running.as_nanos() > max.as_nanos()
        {
            return Some(format!(
                "pod {pod} has run {}s without a sample",
                running.whole_seconds()
            ));
        }
        match (&ages.oldest, &ages.oldest_pod) {
            (Some(age), pod) if age.as_nanos() > max.as_nanos() => Some(match pod {
                Some(pod) => format!("pod {pod}'s sample is {}s old", age.whole_seconds()),
                None => format!("the sample is {}s old", age.whole_seconds()),
            }),
            _ => None,
        }
    });
    Judgement {
        availability: if stale.is_some() {
            Availability::Stale
        } else {
            Availability::Fresh
        },
        oldest,
        detail: stale,
    }
}

/// What the policy makes of the metric in the combination of proposals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Effect {
    /// Used as computed (fresh, or `Upstream`).
    AsComputed,
    /// The metric proposes this many replicas instead.
    Propose(i32),
    /// Left out of the combination.
    Ignore,
    /// The whole decision keeps the current size.
    Hold,
}

/// The effect of `policy` on a metric judged `availability` whose proposal (when computed) is
/// `proposal`, with `current` replicas on the scale.
pub(super) fn effect(
    policy: &MetricPolicy,
    availability: Availability,
    proposal: Option<i32>,
    current: i32,
) -> Effect {
    if availability == Availability::Fresh {
        return Effect::AsComputed;
    }
    match policy.when_unavailable {
        WhenUnavailable::Upstream => Effect::AsComputed,
        WhenUnavailable::Hold => Effect::Hold,
        WhenUnavailable::Ignore => Effect::Ignore,
        WhenUnavailable::ScaleUpOnly => Effect::Propose(proposal.unwrap_or(current).max(current)),
        WhenUnavailable::Fixed(n) => Effect::Propose(n),
    }
}

/// The trace of a policy at work.
pub(super) fn trace(
    policy: &MetricPolicy,
    judged: &Judgement,
    effect: Effect,
) -> MetricPolicyTrace {
    MetricPolicyTrace {
        availability: judged.availability.as_str().to_string(),
        when_unavailable: policy.when_unavailable.as_str().to_string(),
        max_sample_age_seconds: policy.max_sample_age.map(Duration::whole_seconds),
        oldest_sample_age_seconds: judged.oldest.map(Duration::whole_seconds),
        detail: judged.detail.clone(),
        effect: match effect {
            Effect::AsComputed => None,
            Effect::Propose(n) => Some(format!("proposes {n}")),
            Effect::Ignore => Some("ignored".to_string()),
            Effect::Hold => Some("held the current size".to_string()),
        },
    }
}

/// The `MetricPolicy` condition's and event's words for one unavailable metric. They name the
/// metric, its state and what the policy does, and hold no ages or proposals, so that they do
/// not change from one sync to the next while the state lasts.
pub(super) fn message(
    spec: &MetricSpec,
    policy: &MetricPolicy,
    availability: Availability,
) -> String {
    let what = match spec {
        MetricSpec::ContainerResource {
            name, container, ..
        } => format!("ContainerResource metric {name} of container {container}"),
        _ => format!("{} metric {}", spec.type_name(), policy.metric.name),
    };
    let state = match (availability, policy.max_sample_age) {
        (Availability::Stale, Some(max)) => format!(
            "is stale (a sample older than {}s, or a pod running longer without one)",
            max.whole_seconds()
        ),
        (Availability::Stale, None) => "is stale".to_string(),
        _ => "is missing".to_string(),
    };
    let does = match policy.when_unavailable {
        WhenUnavailable::Upstream => "policy Upstream uses it as the built-in HPA does".to_string(),
        WhenUnavailable::Hold => "policy Hold keeps the current size".to_string(),
        WhenUnavailable::Ignore => {
            "policy Ignore decides on the other metrics without it".to_string()
        }
        WhenUnavailable::ScaleUpOnly => {
            "policy ScaleUpOnly lets it raise the size but never lower it".to_string()
        }
        WhenUnavailable::Fixed(n) => format!("policy Fixed proposes {n} replicas for it"),
    };
    format!("{what} {state}: {does}")
}

/// The sample ages of one metric's data.
#[derive(Default)]
struct Ages {
    oldest: Option<Duration>,
    /// The pod whose sample is the oldest (pod-based metrics).
    oldest_pod: Option<String>,
    /// The longest-running counted pod without a sample, and how long it has run.
    unsampled: Option<(String, Duration)>,
}

fn age(now: Time, at: Time) -> Duration {
    Duration::from_nanos(now.unix_nanos() - at.unix_nanos())
}

/// The ages of the samples `spec` reads. Pod-based metrics consider the pods upstream counts
/// (running, not being deleted); Object and External metrics their answer's items.
fn sample_ages(ctx: &Ctx<'_>, spec: &MetricSpec) -> Ages {
    match spec {
        MetricSpec::Resource { .. } | MetricSpec::ContainerResource { .. } => {
            let Ok(samples) = ctx.pod_metrics else {
                return Ages::default();
            };
            pod_ages(ctx, samples.iter().map(|m| (m.name.as_str(), m.timestamp)))
        }
        MetricSpec::Pods { metric, .. } => {
            let items = answer(ctx, "Pods", metric, None);
            pod_ages(
                ctx,
                items
                    .iter()
                    .map(|i| (i.pod_name.as_deref().unwrap_or(""), i.timestamp)),
            )
        }
        MetricSpec::Object {
            described_object,
            metric,
            ..
        } => item_ages(
            ctx.now,
            answer(ctx, "Object", metric, Some(described_object)),
        ),
        MetricSpec::External { metric, .. } => {
            item_ages(ctx.now, answer(ctx, "External", metric, None))
        }
        MetricSpec::Unknown(_) => Ages::default(),
    }
}

fn answer<'a>(
    ctx: &Ctx<'a>,
    kind: &str,
    metric: &crate::model::MetricIdentifier,
    object: Option<&crate::model::ObjectReference>,
) -> &'a [MetricValue] {
    match find_answer(ctx, kind, metric, object).map(|a| &a.answer) {
        Some(Ok(items)) => items,
        _ => &[],
    }
}

fn item_ages(now: Time, items: &[MetricValue]) -> Ages {
    Ages {
        oldest: items.iter().map(|i| age(now, i.timestamp)).max(),
        ..Ages::default()
    }
}

fn pod_ages<'s>(ctx: &Ctx<'_>, samples: impl Iterator<Item = (&'s str, Time)>) -> Ages {
    // A pod listed twice counts with its newest sample.
    let mut newest: HashMap<&str, Time> = HashMap::new();
    for (name, at) in samples {
        let e = newest.entry(name).or_insert(at);
        if at.after(*e) {
            *e = at;
        }
    }
    let mut ages = Ages::default();
    for pod in ctx
        .pods
        .iter()
        .filter(|p| !p.deleting && p.phase == PodPhase::Running)
    {
        match newest.get(pod.name.as_str()) {
            Some(at) => {
                let a = age(ctx.now, *at);
                if ages.oldest.is_none_or(|o| a.as_nanos() > o.as_nanos()) {
                    ages.oldest = Some(a);
                    ages.oldest_pod = Some(pod.name.clone());
                }
            }
            None => {
                if let Some(start) = pod.start_time {
                    let running = age(ctx.now, start);
                    if ages
                        .unsampled
                        .as_ref()
                        .is_none_or(|(_, r)| running.as_nanos() > r.as_nanos())
                    {
                        ages.unsampled = Some((pod.name.clone(), running));
                    }
                }
            }
        }
    }
    ages
}
