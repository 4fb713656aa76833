//! The decision, step by step: what `tidal explain` shows.
//!
//! A [`DecisionTrace`] is produced by every decision next to the [`crate::Decision`]
//! it explains. It is data only (no formatting): the numbers each step used, in the
//! order the steps ran, so a user can redo the arithmetic by hand.
//!
//! Its size is bounded so the operator can store it in the AutoScaler's status:
//! per metric, at most [`PODS_LISTED_PER_CLASS`] pods of each class (ready,
//! unready, missing, ignored) are listed by name, in the order the pods were given;
//! every pod is still counted, by class and by reason. Recommendations are not
//! listed, only the one that bound the stabilized value. Building it costs one
//! pass over the pods already grouped and a few small allocations, so it is
//! always on.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::time::Time;

/// An instant in a trace, serialized as RFC 3339. Formatting waits until the
/// trace is serialized, so a decision does not pay for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TraceTime(pub Time);

impl Default for TraceTime {
    fn default() -> Self {
        TraceTime(Time::UNIX_EPOCH)
    }
}

impl Serialize for TraceTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for TraceTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Time::parse_rfc3339(&text)
            .map(TraceTime)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for TraceTime {
    fn schema_name() -> Cow<'static, str> {
        "TraceTime".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "format": "date-time"})
    }
    fn inline_schema() -> bool {
        true
    }
}

/// How many pods of each class a metric's trace lists by name (the rest are counted).
pub const PODS_LISTED_PER_CLASS: usize = 5;

/// How a pod was counted for one metric (contract 2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum PodClass {
    /// Its sample counts as it is.
    Ready,
    /// Not ready: its sample is left out (or counted as 0 on a scale-up).
    Unready,
    /// Ready, but without a sample: counted as 0 on a scale-up, as its
    /// request share (or the target) on a scale-down.
    Missing,
    /// Not counted at all.
    Ignored,
}

impl PodClass {
    /// All classes in display order.
    pub const ALL: [PodClass; 4] = [
        PodClass::Ready,
        PodClass::Unready,
        PodClass::Missing,
        PodClass::Ignored,
    ];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            PodClass::Ready => "ready",
            PodClass::Unready => "unready",
            PodClass::Missing => "missing",
            PodClass::Ignored => "ignored",
        }
    }
}

/// Why a pod got its class (contract 2.2, in the order the rules are checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum PodReason {
    /// Ready and sampled: counted.
    Counted,
    /// `metadata.deletionTimestamp` is set.
    Deleting,
    /// `status.phase` is Failed.
    PhaseFailed,
    /// `status.phase` is Pending.
    PhasePending,
    /// No sample for this pod in the metrics answer.
    NoSample,
    /// CPU only: the pod has no Ready condition or no start time.
    NoReadinessInfo,
    /// CPU only: within the CPU initialization period and not Ready.
    InitializingNotReady,
    /// CPU only: within the CPU initialization period, and the sample was taken
    /// less than one metric window after the pod became Ready.
    SampleBeforeReady,
    /// CPU only: past the initialization period, not Ready, and it went unready
    /// within the initial readiness delay after start (never became ready).
    NeverBecameReady,
}

impl PodReason {
    /// All reasons, in rule order.
    pub const ALL: [PodReason; 9] = [
        PodReason::Counted,
        PodReason::Deleting,
        PodReason::PhaseFailed,
        PodReason::PhasePending,
        PodReason::NoSample,
        PodReason::NoReadinessInfo,
        PodReason::InitializingNotReady,
        PodReason::SampleBeforeReady,
        PodReason::NeverBecameReady,
    ];

    /// The class this reason puts a pod in.
    pub fn class(self) -> PodClass {
        match self {
            PodReason::Counted => PodClass::Ready,
            PodReason::Deleting | PodReason::PhaseFailed => PodClass::Ignored,
            PodReason::NoSample => PodClass::Missing,
            PodReason::PhasePending
            | PodReason::NoReadinessInfo
            | PodReason::InitializingNotReady
            | PodReason::SampleBeforeReady
            | PodReason::NeverBecameReady => PodClass::Unready,
        }
    }

    /// One line for a human.
    pub fn describe(self) -> &'static str {
        match self {
            PodReason::Counted => "ready, sample counted",
            PodReason::Deleting => "being deleted",
            PodReason::PhaseFailed => "phase Failed",
            PodReason::PhasePending => "phase Pending",
            PodReason::NoSample => "no metrics sample for this pod",
            PodReason::NoReadinessInfo => "no Ready condition or no start time (CPU rule)",
            PodReason::InitializingNotReady => {
                "not Ready within the CPU initialization period (CPU rule)"
            }
            PodReason::SampleBeforeReady => {
                "sample older than one metric window after becoming Ready, within the CPU initialization period (CPU rule)"
            }
            PodReason::NeverBecameReady => {
                "went unready within the initial readiness delay and never became Ready (CPU rule)"
            }
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// One listed pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct PodTrace {
    /// Pod name.
    pub name: String,
    /// Why it was counted as it was (its class follows from the reason).
    pub reason: PodReason,
    /// Its sample, milli-units, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_milli: Option<i64>,
    /// Its request of the metric's resource, milli-units (Utilization targets only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_milli: Option<i64>,
}

/// How many pods had one reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ReasonCount {
    /// The reason.
    pub reason: PodReason,
    /// Pods with it.
    pub count: u32,
}

/// The pods one metric looked at.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct PodsTrace {
    /// Pods counted as ready.
    pub ready: u32,
    /// Pods counted as unready.
    pub unready: u32,
    /// Ready pods without a sample.
    pub missing: u32,
    /// Pods not counted.
    pub ignored: u32,
    /// Pod counts by reason (reasons with no pod are left out).
    #[serde(default)]
    pub by_reason: Vec<ReasonCount>,
    /// Up to [`PODS_LISTED_PER_CLASS`] pods of each class, in the order given.
    #[serde(default)]
    pub listed: Vec<PodTrace>,
    /// Pods counted but not listed.
    #[serde(default)]
    pub not_listed: u32,
    /// Samples whose pod is not among the target's pods (not counted).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub extraneous_samples: u32,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl PodsTrace {
    /// The count of one class.
    pub fn count(&self, class: PodClass) -> u32 {
        match class {
            PodClass::Ready => self.ready,
            PodClass::Unready => self.unready,
            PodClass::Missing => self.missing,
            PodClass::Ignored => self.ignored,
        }
    }
}

/// The metric's target as the spec gives it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct TargetTrace {
    /// `Utilization`, `AverageValue` or `Value`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `averageUtilization`, percent of request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_utilization: Option<i32>,
    /// `averageValue` or `value`, milli-units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_milli: Option<i64>,
}

/// The tolerance band around a ratio of 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ToleranceTrace {
    /// Lowest ratio that does not scale down (`1 - scaleDown tolerance`).
    pub low: f64,
    /// Highest ratio that does not scale up (`1 + scaleUp tolerance`).
    pub high: f64,
    /// The raw ratio lies in `[low, high]`: no change from this metric.
    pub within: bool,
}

/// The second pass of a pod-based metric when pods were unready or missing (contract 2.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct RebalanceTrace {
    /// What missing pods were counted as (`0`, their request share, the target), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_as: Option<String>,
    /// Unready pods were counted as 0 (a scale-up with unready pods).
    pub unready_as_zero: bool,
    /// The ratio over the rebalanced samples.
    pub ratio: f64,
    /// Pods the rebalanced ratio is multiplied by.
    pub pods: u32,
    /// Why the proposal is the current size instead, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_current_because: Option<String>,
}

/// One metric's computation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct MetricTrace {
    /// Spec metric type (`Resource`, `Pods`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// Resource or metric name.
    pub name: String,
    /// Container, for ContainerResource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The target.
    pub target: TargetTrace,
    /// How the pods were counted (pod-based metrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<PodsTrace>,
    /// Sum of the counted samples (pod-based) or the metric value (Object/External), milli.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_milli: Option<i64>,
    /// Sum of the counted pods' requests, milli (Utilization targets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_milli: Option<i64>,
    /// Average of the counted samples, milli.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_milli: Option<i64>,
    /// Utilization, percent of request (Utilization targets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilization: Option<i32>,
    /// Raw usage ratio (current / target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    /// The tolerance band and whether the raw ratio is inside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<ToleranceTrace>,
    /// The rebalancing pass, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebalanced: Option<RebalanceTrace>,
    /// Pods the raw ratio was multiplied by (when no rebalancing ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiplied_by_pods: Option<i64>,
    /// Replicas this metric proposes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal: Option<i32>,
    /// The failure reason and message, when the metric failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The metric's `spec.tidal.metricPolicies` entry and what it judged and did, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<MetricPolicyTrace>,
}

/// A metric's stale and missing data policy at work (`spec.tidal.metricPolicies`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct MetricPolicyTrace {
    /// `Fresh`, `Stale` or `Missing`.
    pub availability: String,
    /// The policy's `whenUnavailable` (`Upstream`, `Hold`, `Ignore`, `ScaleUpOnly`, `Fixed`).
    pub when_unavailable: String,
    /// The policy's `maxSampleAgeSeconds`, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sample_age_seconds: Option<i64>,
    /// Age of the oldest sample the metric read, whole seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_sample_age_seconds: Option<i64>,
    /// Why the metric is stale (which sample or pod), when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// What the policy made of the metric, when it changed anything: `held the current size`,
    /// `ignored`, `proposes 3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
}

/// Stabilization over the recommendation window (contract 4.2).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct StabilizationTrace {
    /// `true` with `spec.behavior` (both windows), `false` for the legacy downscale window.
    pub behavior: bool,
    /// The metrics' proposal going in.
    pub proposal: i32,
    /// Scale-up window, seconds (behavior only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_window_seconds: Option<i64>,
    /// Scale-down window, seconds.
    pub down_window_seconds: i64,
    /// Past recommendations inside the scale-up window.
    pub in_up_window: u32,
    /// Past recommendations inside the scale-down window.
    pub in_down_window: u32,
    /// Lowest recommendation in the scale-up window, with the proposal (behavior only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_bound: Option<i32>,
    /// Highest recommendation in the scale-down window, with the proposal.
    pub down_bound: i32,
    /// The stored recommendation that bound the result, when it is not the proposal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_by: Option<BoundBy>,
    /// The stabilized value.
    pub result: i32,
}

/// The recommendation that held the stabilized value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct BoundBy {
    /// Its replicas.
    pub replicas: i32,
    /// When it was made.
    pub timestamp: TraceTime,
    /// Seconds before this decision.
    pub age_seconds: f64,
    /// `up` (the scale-up window's minimum) or `down` (the scale-down window's maximum).
    pub window: Cow<'static, str>,
}

/// One rate-limit policy as evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct PolicyTrace {
    /// `Pods` or `Percent`.
    #[serde(rename = "type")]
    pub kind: Cow<'static, str>,
    /// Its value.
    pub value: i32,
    /// Its period.
    pub period_seconds: i32,
    /// Replicas at the start of the period (current less this direction's changes in it).
    pub replicas_at_period_start: i64,
    /// The bound this policy allows.
    pub limit: i32,
}

/// Min/max and rate limits (contract 4.3, 4.4).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct LimitsTrace {
    /// `minReplicas` after defaulting.
    pub min_replicas: i32,
    /// `maxReplicas`.
    pub max_replicas: i32,
    /// The value going in (the stabilized recommendation).
    pub input: i32,
    /// `up`, `down` or `none`.
    pub direction: Cow<'static, str>,
    /// Legacy (no behavior): `max(factor x current, minimum)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy_scale_up_limit: Option<i32>,
    /// `selectPolicy` of the direction taken (behavior only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select_policy: Option<Cow<'static, str>>,
    /// The direction's policies as evaluated (behavior only).
    #[serde(default)]
    pub policies: Vec<PolicyTrace>,
    /// The rate limit those policies give (behavior only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<i32>,
    /// The `ScalingLimited` reason: which limit applied (`DesiredWithinRange` when none).
    pub applied: Cow<'static, str>,
    /// The condition message.
    pub message: Cow<'static, str>,
    /// The value coming out.
    pub result: i32,
}

/// One decision, step by step.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct DecisionTrace {
    /// When the decision was made.
    pub time: TraceTime,
    /// `scale.spec.replicas` (absent when the scale could not be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_replicas: Option<i32>,
    /// `minReplicas` after defaulting.
    pub min_replicas: i32,
    /// `maxReplicas`.
    pub max_replicas: i32,
    /// Why the decision stopped before computing a proposal, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Each metric, in spec order.
    #[serde(default)]
    pub metrics: Vec<MetricTrace>,
    /// The largest proposal, before stabilization and limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal: Option<i32>,
    /// The metric that made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal_metric: Option<String>,
    /// The stabilization step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stabilization: Option<StabilizationTrace>,
    /// The limits step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsTrace>,
    /// The scale-from-zero floor raised the value to `minReplicas`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub scale_from_zero_floor: bool,
    /// The replica count decided.
    pub desired_replicas: i32,
    /// The scale was written with it.
    pub rescale: bool,
    /// The rescale reason text (empty when nothing was written).
    #[serde(default)]
    pub reason: String,
    /// The scale write's error, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_error: Option<String>,
}

impl DecisionTrace {
    /// Whether `other` records the same decision as `self`, made at another instant: equal in
    /// everything but what moves with the clock alone while nothing else does, namely the
    /// decision's instant, how many past recommendations each window holds (it grows while a
    /// window fills and wobbles by one with sync jitter at its edge), the age of the
    /// recommendation that held the result (its instant is compared), and a metric policy's
    /// sample ages (its availability and effect are compared).
    pub fn same_decision(&self, other: &DecisionTrace) -> bool {
        fn steady(trace: &DecisionTrace) -> DecisionTrace {
            let mut t = trace.clone();
            t.time = TraceTime::default();
            // A metric policy's sample ages (and the detail that quotes one) move with the
            // clock between two samples.
            for m in &mut t.metrics {
                if let Some(p) = m.policy.as_mut() {
                    p.oldest_sample_age_seconds = None;
                    p.detail = None;
                }
            }
            if let Some(s) = t.stabilization.as_mut() {
                s.in_up_window = 0;
                s.in_down_window = 0;
                if let Some(b) = s.bound_by.as_mut() {
                    b.age_seconds = 0.0;
                }
            }
            t
        }
        steady(self) == steady(other)
    }
}

#[cfg(test)]
mod same_decision_tests {
    use super::*;

    fn held(at: i64, in_window: u32, age: f64) -> DecisionTrace {
        let time = |s: i64| TraceTime(Time::UNIX_EPOCH + crate::Duration::from_seconds(s));
        DecisionTrace {
            time: time(at),
            current_replicas: Some(4),
            desired_replicas: 4,
            stabilization: Some(StabilizationTrace {
                proposal: 2,
                in_down_window: in_window,
                down_bound: 4,
                bound_by: Some(BoundBy {
                    replicas: 4,
                    timestamp: time(10),
                    age_seconds: age,
                    window: "down".into(),
                }),
                result: 4,
                ..StabilizationTrace::default()
            }),
            ..DecisionTrace::default()
        }
    }

    #[test]
    fn a_metric_policys_sample_age_is_the_clock_but_its_verdict_is_the_decision() {
        let with = |age: i64, availability: &str| {
            let mut t = held(30, 2, 20.0);
            t.metrics.push(MetricTrace {
                policy: Some(MetricPolicyTrace {
                    availability: availability.into(),
                    when_unavailable: "Hold".into(),
                    oldest_sample_age_seconds: Some(age),
                    detail: Some(format!("the sample is {age}s old")),
                    ..MetricPolicyTrace::default()
                }),
                ..MetricTrace::default()
            });
            t
        };
        assert!(with(3, "Fresh").same_decision(&with(9, "Fresh")));
        assert!(!with(3, "Fresh").same_decision(&with(90, "Stale")));
    }

    #[test]
    fn the_same_decision_later_differs_only_in_what_the_clock_moves() {
        assert!(held(30, 2, 20.0).same_decision(&held(45, 3, 35.0)));
        let mut other = held(45, 3, 35.0);
        if let Some(s) = other.stabilization.as_mut() {
            s.proposal = 1;
        }
        assert!(!held(30, 2, 20.0).same_decision(&other), "another proposal");
        let mut other = held(45, 3, 35.0);
        if let Some(b) = other
            .stabilization
            .as_mut()
            .and_then(|s| s.bound_by.as_mut())
        {
            b.timestamp = TraceTime(Time::UNIX_EPOCH);
        }
        assert!(
            !held(30, 2, 20.0).same_decision(&other),
            "held by another recommendation"
        );
        let mut other = held(45, 3, 35.0);
        other.desired_replicas = 3;
        assert!(!held(30, 2, 20.0).same_decision(&other));
    }
}
