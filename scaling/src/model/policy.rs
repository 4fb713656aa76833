//! Tidal's per-metric stale and missing data policy (`spec.tidal.metricPolicies`): an
//! extension the built-in HPA lacks, applied only to the metrics it names. Without a policy, or
//! with `Upstream`, a metric is used exactly as kube-controller-manager uses it.

use crate::time::Duration;

/// Which `spec.metrics` entry a policy applies to: the metric's type and its resource or metric
/// name (and the container, for `ContainerResource`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetricRef {
    /// `Resource`, `ContainerResource`, `Pods`, `Object` or `External`.
    pub kind: String,
    /// The resource name (`cpu`) or the metric name.
    pub name: String,
    /// The container, for `ContainerResource` only.
    pub container: Option<String>,
}

/// What a metric's data is, as its policy judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// Every sample is younger than the policy's maximum age (or the policy sets none).
    Fresh,
    /// The metric was computed, but from a sample older than the maximum age, or a pod that
    /// has run longer than that has no sample at all.
    Stale,
    /// The metric could not be computed (no samples, or the metrics API failed).
    Missing,
}

impl Availability {
    /// `Fresh`, `Stale` or `Missing`.
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Fresh => "Fresh",
            Availability::Stale => "Stale",
            Availability::Missing => "Missing",
        }
    }
}

/// What the decision does with a metric that is stale or missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenUnavailable {
    /// As the built-in HPA: a stale sample is used as if fresh; a missing metric blocks
    /// scale-down and lets the other metrics scale up. The state is reported only.
    #[default]
    Upstream,
    /// Keep the current size, whatever the other metrics propose.
    Hold,
    /// Decide on the other metrics as if this one were not in the spec (hold the current size
    /// when no other metric is left).
    Ignore,
    /// This metric may raise the size but never lower it: it proposes at least the current
    /// size (the current size when it is missing).
    ScaleUpOnly,
    /// This metric proposes this many replicas (combined with the others as usual).
    Fixed(i32),
}

impl WhenUnavailable {
    /// The API name (`Upstream`, `Hold`, `Ignore`, `ScaleUpOnly`, `Fixed`).
    pub fn as_str(self) -> &'static str {
        match self {
            WhenUnavailable::Upstream => "Upstream",
            WhenUnavailable::Hold => "Hold",
            WhenUnavailable::Ignore => "Ignore",
            WhenUnavailable::ScaleUpOnly => "ScaleUpOnly",
            WhenUnavailable::Fixed(_) => "Fixed",
        }
    }
}

/// One entry of `spec.tidal.metricPolicies`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetricPolicy {
    /// The metric it applies to.
    pub metric: MetricRef,
    /// Samples older than this are stale (`None`: a metric is never stale, only missing).
    pub max_sample_age: Option<Duration>,
    /// What to do when the metric is stale or missing.
    pub when_unavailable: WhenUnavailable,
}

/// A policy's API fields, before they are checked (`spec.tidal.metricPolicies[i]`).
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricPolicyFields<'a> {
    /// `type`.
    pub kind: &'a str,
    /// `name`.
    pub name: &'a str,
    /// `container`.
    pub container: Option<&'a str>,
    /// `maxSampleAgeSeconds`.
    pub max_sample_age_seconds: Option<i32>,
    /// `whenUnavailable` (absent: `Upstream`).
    pub when_unavailable: Option<&'a str>,
    /// `fixedReplicas`.
    pub fixed_replicas: Option<i32>,
}

impl MetricPolicyFields<'_> {
    /// Checks the fields as the CRD's rules do (for specs that reach the core around them, and
    /// for `tidal calc`). `Err` is (the field under the entry, what is wrong and how to fix it).
    pub fn check(&self) -> Result<MetricPolicy, (&'static str, String)> {
        const KINDS: [&str; 5] = [
            "Resource",
            "ContainerResource",
            "Pods",
            "Object",
            "External",
        ];
        if !KINDS.contains(&self.kind) {
            return Err((
                "type",
                format!(
                    "unknown metric type {:?}; use one of {}",
                    self.kind,
                    KINDS.join(", ")
                ),
            ));
        }
        if self.name.is_empty() {
            return Err((
                "name",
                "must name the resource (cpu) or the metric the policy applies to".to_string(),
            ));
        }
        match (self.kind == "ContainerResource", self.container) {
            (true, None | Some("")) => {
                return Err((
                    "container",
                    "required for a ContainerResource metric: name its container".to_string(),
                ));
            }
            (false, Some(_)) => {
                return Err((
                    "container",
                    "applies to ContainerResource metrics only; remove it".to_string(),
                ));
            }
            _ => {}
        }
        let max_sample_age = match self.max_sample_age_seconds {
            Some(s) if s < 1 => {
                return Err((
                    "maxSampleAgeSeconds",
                    format!("must be at least 1 second, not {s}"),
                ));
            }
            s => s.map(|s| Duration::from_seconds(i64::from(s))),
        };
        let when_unavailable = match (
            self.when_unavailable.unwrap_or("Upstream"),
            self.fixed_replicas,
        ) {
            ("Fixed", Some(n)) if n >= 0 => WhenUnavailable::Fixed(n),
            ("Fixed", Some(n)) => {
                return Err(("fixedReplicas", format!("must be 0 or more, not {n}")));
            }
            ("Fixed", None) => {
                return Err((
                    "fixedReplicas",
                    "required with whenUnavailable: Fixed; set the replica count to propose"
                        .to_string(),
                ));
            }
            (_, Some(_)) => {
                return Err((
                    "fixedReplicas",
                    "applies only with whenUnavailable: Fixed; remove it or set Fixed".to_string(),
                ));
            }
            ("Upstream", None) => WhenUnavailable::Upstream,
            ("Hold", None) => WhenUnavailable::Hold,
            ("Ignore", None) => WhenUnavailable::Ignore,
            ("ScaleUpOnly", None) => WhenUnavailable::ScaleUpOnly,
            (other, None) => {
                return Err((
                    "whenUnavailable",
                    format!(
                        "unknown value {other:?}; use Upstream, Hold, Ignore, ScaleUpOnly or Fixed"
                    ),
                ));
            }
        };
        Ok(MetricPolicy {
            metric: MetricRef {
                kind: self.kind.to_string(),
                name: self.name.to_string(),
                container: self.container.map(str::to_string),
            },
            max_sample_age,
            when_unavailable,
        })
    }
}

/// Checks that each policy names a metric of `metrics` (the spec's, or the CPU default when it
/// lists none) and that no two name the same one. `Err` is (the entry's index, the message).
pub fn check_metric_policies(
    metrics: &[super::MetricSpec],
    policies: &[MetricPolicy],
) -> Result<(), (usize, String)> {
    let default = [super::MetricSpec::default_cpu()];
    let metrics = if metrics.is_empty() {
        &default[..]
    } else {
        metrics
    };
    for (i, p) in policies.iter().enumerate() {
        if policies[..i].iter().any(|q| q.metric == p.metric) {
            return Err((
                i,
                "names the same metric as an earlier entry; keep one policy per metric".to_string(),
            ));
        }
        let named = metrics.iter().any(|m| crate::decide::policy_names(p, m));
        if !named {
            let container = p
                .metric
                .container
                .as_deref()
                .map(|c| format!(" of container {c}"))
                .unwrap_or_default();
            return Err((
                i,
                format!(
                    "names {} metric {}{container}, which spec.metrics does not list; fix type/name/container or remove the entry",
                    p.metric.kind, p.metric.name
                ),
            ));
        }
    }
    Ok(())
}
