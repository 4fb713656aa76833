//! Tidal's own extensions of the AutoScaler spec (`spec.tidal`): fields the HPA does not
//! have, each optional, so a converted HPA decides exactly as upstream.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Tidal's per-AutoScaler extensions. Each field overrides the operator flag of the same name.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TidalSpec {
    /// `Active` (default) writes the scale; `Shadow` decides and reports but never writes the
    /// scale (run beside a live HPA to compare); `Paused` keeps the status fresh, writes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Reconcile period for this AutoScaler (flag `--sync-period`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub sync_period_seconds: Option<i32>,
    /// CPU samples may be discarded this long after pod start (`--cpu-initialization-period`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 3600))]
    pub cpu_initialization_period_seconds: Option<i32>,
    /// Readiness flips this soon after start count as never ready (`--initial-readiness-delay`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 3600))]
    pub initial_readiness_delay_seconds: Option<i32>,
    /// What Tidal does when another field manager changes the target's `spec.replicas`
    /// (default: report it and keep writing, exactly as the built-in HPA does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_fight: Option<ReplicaFightSpec>,
    /// What Tidal does when a metric's data is stale or missing, per metric (default for every
    /// metric: exactly as the built-in HPA does). At most one entry per metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    #[schemars(extend("x-kubernetes-validations" = [
        {
            "rule": "self.all(p, self.exists_one(q, q.type == p.type && q.name == p.name && (has(q.container) ? q.container : '') == (has(p.container) ? p.container : '')))",
            "message": "two entries name the same metric; keep one policy per metric"
        }
    ]))]
    pub metric_policies: Option<Vec<MetricPolicySpec>>,
}

/// `spec.tidal.metricPolicies[]`: the stale and missing data policy of one `spec.metrics` entry,
/// named by its type and its resource or metric name (and container, for ContainerResource).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "self.type == 'ContainerResource' ? has(self.container) : !has(self.container)",
        "message": "container is required with type ContainerResource and allowed with no other type",
        "fieldPath": ".container"
    },
    {
        "rule": "(has(self.whenUnavailable) && self.whenUnavailable == 'Fixed') == has(self.fixedReplicas)",
        "message": "fixedReplicas is required with whenUnavailable: Fixed and allowed with no other value",
        "fieldPath": ".fixedReplicas"
    }
]))]
pub struct MetricPolicySpec {
    /// The metric's type in `spec.metrics`.
    #[serde(rename = "type")]
    pub kind: MetricPolicyType,
    /// The resource name (`cpu`, `memory`) or the metric name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The container, for a ContainerResource metric only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub container: Option<String>,
    /// A sample older than this is stale, and so is a pod that has run longer without a sample
    /// (default: never stale, only missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub max_sample_age_seconds: Option<i32>,
    /// What to do while the metric is stale or missing (default `Upstream`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_unavailable: Option<WhenUnavailable>,
    /// The replicas this metric proposes under `whenUnavailable: Fixed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub fixed_replicas: Option<i32>,
}

/// The metric types a policy can name.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum MetricPolicyType {
    /// `type: Resource`.
    #[default]
    Resource,
    /// `type: ContainerResource`.
    ContainerResource,
    /// `type: Pods`.
    Pods,
    /// `type: Object`.
    Object,
    /// `type: External`.
    External,
}

impl MetricPolicyType {
    /// The `spec.metrics[].type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricPolicyType::Resource => "Resource",
            MetricPolicyType::ContainerResource => "ContainerResource",
            MetricPolicyType::Pods => "Pods",
            MetricPolicyType::Object => "Object",
            MetricPolicyType::External => "External",
        }
    }
}

/// What Tidal does while a metric is stale or missing.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum WhenUnavailable {
    /// As the built-in HPA: a stale sample is used as if fresh, a missing metric blocks
    /// scale-down and lets the other metrics scale up; the state is reported only.
    #[default]
    Upstream,
    /// Keep the current size, whatever the other metrics propose.
    Hold,
    /// Decide on the other metrics without this one (hold when none is left).
    Ignore,
    /// This metric may raise the size but never lower it.
    ScaleUpOnly,
    /// This metric proposes `fixedReplicas`.
    Fixed,
}

impl WhenUnavailable {
    /// The API string.
    pub fn as_str(self) -> &'static str {
        match self {
            WhenUnavailable::Upstream => "Upstream",
            WhenUnavailable::Hold => "Hold",
            WhenUnavailable::Ignore => "Ignore",
            WhenUnavailable::ScaleUpOnly => "ScaleUpOnly",
            WhenUnavailable::Fixed => "Fixed",
        }
    }
}

/// `spec.tidal.replicaFight`: the answer to another writer of the target's replicas.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!has(self.yieldSeconds) || (has(self.policy) && self.policy == 'Yield')",
        "message": "yieldSeconds applies only with policy Yield; set policy: Yield or remove yieldSeconds",
        "fieldPath": ".yieldSeconds"
    }
]))]
pub struct ReplicaFightSpec {
    /// `Report` (default) or `Yield`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<ReplicaFightPolicy>,
    /// How long Tidal stops writing under `Yield` (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub yield_seconds: Option<i32>,
}

/// What Tidal does when another field manager changed the target's replicas. `Report`
/// (default): a `ReplicaFight` condition, a Warning event and a counter; the scale is decided
/// and written as before. `Yield`: the same, and no scale write for `yieldSeconds` after Tidal
/// saw the change.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ReplicaFightPolicy {
    /// Report it; keep deciding and writing.
    #[default]
    Report,
    /// Report it and stop writing the scale for `yieldSeconds`.
    Yield,
}

/// How an AutoScaler acts on its decisions.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Mode {
    /// Decide and write the scale.
    #[default]
    Active,
    /// Decide and report (status, metrics, events) but never write the scale.
    Shadow,
    /// Keep the status fresh; write nothing to the target.
    Paused,
}
