//! The `AutoScaler` custom resource (`autoscaling.tidal.dev/v1alpha1`).
//!
//! The spec mirrors `autoscaling/v2` `HorizontalPodAutoscalerSpec` field for field and JSON
//! name for name, so an HPA becomes an AutoScaler (and back) by changing `apiVersion`/`kind`.
//! The spec types are our own rather than k8s-openapi's because the CRD schema has to carry the
//! upstream API validation (OpenAPI bounds and CEL rules) on each nested field, which cannot be
//! attached to foreign types. Leaf types that serialize identically (`Quantity`, `LabelSelector`,
//! `Time`, the status entries) are reused from k8s-openapi.
//!
//! Every CEL message names the field it rejects, because the API server prefixes the message
//! with the path of the object that carries the rule and users read that line to fix the YAML.

use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscalerCondition, MetricStatus};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub mod hpa;
mod schema;
mod tidal;

pub use schema::{crd, crd_yaml};
pub use tidal::*;

/// The crate's one error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input that cannot be converted; `field` is its path (e.g. `spec.metrics[0].type`).
    #[error("{field}: {message}")]
    Invalid {
        /// Path of the offending field, `.` for the whole document.
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// API group of the AutoScaler resource.
pub const GROUP: &str = "autoscaling.tidal.dev";
/// API version of the AutoScaler resource.
pub const VERSION: &str = "v1alpha1";

/// Desired state of an AutoScaler: the `autoscaling/v2` HorizontalPodAutoscaler spec.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "autoscaling.tidal.dev",
    version = "v1alpha1",
    kind = "AutoScaler",
    plural = "autoscalers",
    shortname = "tas",
    category = "all",
    namespaced,
    status = "AutoScalerStatus",
    doc = "Scales any workload with a scale subresource exactly as a HorizontalPodAutoscaler would.",
    printcolumn = r#"{"name":"Reference","type":"string","jsonPath":".status.tidal.reference","description":"Kind/name of the scale target"}"#,
    printcolumn = r#"{"name":"Targets","type":"string","jsonPath":".status.tidal.targets","description":"current/target of each metric"}"#,
    printcolumn = r#"{"name":"MinPods","type":"integer","jsonPath":".spec.minReplicas"}"#,
    printcolumn = r#"{"name":"MaxPods","type":"integer","jsonPath":".spec.maxReplicas"}"#,
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".status.currentReplicas"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!has(self.minReplicas) || self.minReplicas != 0 || (has(self.metrics) && self.metrics.exists(m, m.type == 'Object' || m.type == 'External'))",
        "message": "minReplicas may be 0 only when at least one metric is of type Object or External; set minReplicas to 1 or more, or add such a metric",
        "fieldPath": ".minReplicas"
    },
    {
        "rule": "!has(self.minReplicas) || self.maxReplicas >= self.minReplicas",
        "message": "maxReplicas must be greater than or equal to minReplicas",
        "fieldPath": ".maxReplicas"
    },
    {
        "rule": "self.scaleTargetRef.kind == 'ReplicationController' ? (!has(self.scaleTargetRef.apiVersion) || !self.scaleTargetRef.apiVersion.matches('/.*/')) : (has(self.scaleTargetRef.apiVersion) && self.scaleTargetRef.apiVersion.matches('^[^/]+/[^/]*$'))",
        "message": "apiVersion must be group/version, e.g. apps/v1 (only a ReplicationController may name the core group: v1)",
        "fieldPath": ".scaleTargetRef.apiVersion"
    },
    {
        "rule": "!has(self.tidal) || !has(self.tidal.metricPolicies) || self.tidal.metricPolicies.all(p, (has(self.metrics) && size(self.metrics) > 0) ? self.metrics.exists(m, m.type == p.type && ((m.type == 'Resource' && has(m.resource) && m.resource.name == p.name) || (m.type == 'ContainerResource' && has(m.containerResource) && m.containerResource.name == p.name && has(p.container) && m.containerResource.container == p.container) || (m.type == 'Pods' && has(m.pods) && m.pods.metric.name == p.name) || (m.type == 'Object' && has(m.object) && m.object.metric.name == p.name) || (m.type == 'External' && has(m.external) && m.external.metric.name == p.name))) : (p.type == 'Resource' && p.name == 'cpu'))",
        "message": "each metricPolicies entry must name a metric of spec.metrics by type and name (and container), or Resource cpu when spec.metrics is empty; fix the entry or remove it",
        "fieldPath": ".tidal.metricPolicies"
    }
]))]
pub struct AutoScalerSpec {
    /// The target whose scale subresource is read and written.
    pub scale_target_ref: CrossVersionObjectReference,
    /// Lower bound for the replica count (default 1; 0 only with an Object or External metric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0), extend("default" = 1))]
    pub min_replicas: Option<i32>,
    /// Upper bound for the replica count.
    #[schemars(range(min = 1))]
    pub max_replicas: i32,
    /// The metrics whose maximum proposal decides the replica count (default: CPU at 80%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub metrics: Option<Vec<MetricSpec>>,
    /// Scaling behavior per direction (stabilization windows, rate policies, tolerance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<Behavior>,
    /// Tidal's extensions. Absent on a converted HPA; dropped (with a warning) on the way back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tidal: Option<TidalSpec>,
}

/// Identifies the scale target (`autoscaling/v2` `CrossVersionObjectReference`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrossVersionObjectReference {
    /// API version of the referent, e.g. `apps/v1`: `version` or `group/version` (upstream's
    /// `ParseGroupVersion`; the scale target must also name a group, see the spec's rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[^/]*(/[^/]*)?$"))]
    pub api_version: Option<String>,
    /// Kind of the referent, e.g. `Deployment` (a path segment, as upstream requires).
    #[schemars(schema_with = "schema::path_segment")]
    pub kind: String,
    /// Name of the referent (a path segment). Upstream bounds neither kind nor name in length,
    /// so neither do we.
    #[schemars(schema_with = "schema::path_segment")]
    pub name: String,
}

/// One metric (`autoscaling/v2` `MetricSpec`): `type` names which source block is set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.resource) == (self.type == 'Resource')", "message": "resource must be set when type is Resource, and only then"},
    {"rule": "has(self.containerResource) == (self.type == 'ContainerResource')", "message": "containerResource must be set when type is ContainerResource, and only then"},
    {"rule": "has(self.pods) == (self.type == 'Pods')", "message": "pods must be set when type is Pods, and only then"},
    {"rule": "has(self.object) == (self.type == 'Object')", "message": "object must be set when type is Object, and only then"},
    {"rule": "has(self.external) == (self.type == 'External')", "message": "external must be set when type is External, and only then"}
]))]
pub struct MetricSpec {
    /// The metric source type: `Resource`, `ContainerResource`, `Pods`, `Object` or `External`.
    #[serde(rename = "type")]
    #[schemars(schema_with = "schema::metric_source_type")]
    pub type_: String,
    /// A resource metric of the pods (e.g. CPU), averaged over the target's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceMetricSource>,
    /// A resource metric of one container in each pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_resource: Option<ContainerResourceMetricSource>,
    /// A custom metric of each pod, averaged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<PodsMetricSource>,
    /// A custom metric describing a single Kubernetes object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectMetricSource>,
    /// A metric not tied to any Kubernetes object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalMetricSource>,
}

/// `autoscaling/v2` `ResourceMetricSource`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceMetricSource {
    /// The resource name, e.g. `cpu` or `memory`.
    #[schemars(length(min = 1))]
    pub name: String,
    /// The target value.
    pub target: MetricTarget,
}

/// `autoscaling/v2` `ContainerResourceMetricSource`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "self.name.contains('/') ? self.name.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$') : (self.name in ['cpu', 'memory', 'ephemeral-storage'] || (self.name.startsWith('hugepages-') && self.name.matches('^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$')))",
        "message": "name must be a standard resource for containers (cpu, memory, ephemeral-storage, hugepages-<size>) or a qualified extended resource name",
        "fieldPath": ".name"
    }
]))]
pub struct ContainerResourceMetricSource {
    /// The resource name, e.g. `cpu`.
    #[schemars(length(min = 1, max = 317))]
    pub name: String,
    /// The container whose usage counts (a DNS-1123 label, as a container's name is).
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub container: String,
    /// The target value.
    pub target: MetricTarget,
}

/// `autoscaling/v2` `PodsMetricSource`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodsMetricSource {
    /// The metric name and selector.
    pub metric: MetricIdentifier,
    /// The target value.
    pub target: MetricTarget,
}

/// `autoscaling/v2` `ObjectMetricSource`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMetricSource {
    /// The object the metric describes.
    pub described_object: CrossVersionObjectReference,
    /// The metric name and selector.
    pub metric: MetricIdentifier,
    /// The target value.
    pub target: MetricTarget,
}

/// `autoscaling/v2` `ExternalMetricSource`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalMetricSource {
    /// The metric name and selector.
    pub metric: MetricIdentifier,
    /// The target value.
    pub target: MetricTarget,
}

/// `autoscaling/v2` `MetricIdentifier`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricIdentifier {
    /// The metric name (a path segment: it becomes part of the metrics API request path).
    #[schemars(schema_with = "schema::path_segment")]
    pub name: String,
    /// Narrows the metric series (passed to the metrics API as `metricLabelSelector`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// `autoscaling/v2` `MetricTarget`. As upstream, `type` must be one of the three names, but
/// which value field is required depends on the metric source (see `schema::metric_target_rules`),
/// not on `type`: the HPA admits e.g. an Object target of type `Utilization` with a `value`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricTarget {
    /// `Utilization`, `Value` or `AverageValue`.
    #[serde(rename = "type")]
    #[schemars(schema_with = "schema::metric_target_type")]
    pub type_: String,
    /// Target value of the metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::positive_quantity")]
    pub value: Option<Quantity>,
    /// Target average of the metric over the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::positive_quantity")]
    pub average_value: Option<Quantity>,
    /// Target average utilization in percent of the pods' requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub average_utilization: Option<i32>,
}

/// `autoscaling/v2` `HorizontalPodAutoscalerBehavior`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Behavior {
    /// Rules for scaling up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up: Option<ScalingRules>,
    /// Rules for scaling down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<ScalingRules>,
}

/// `autoscaling/v2` `HPAScalingRules`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalingRules {
    /// Seconds of past recommendations considered (0..3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 3600))]
    pub stabilization_window_seconds: Option<i32>,
    /// How the policies combine: `Max`, `Min` or `Disabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::select_policy")]
    pub select_policy: Option<String>,
    /// Rate limits; a given list replaces the defaults and must not be empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32))]
    pub policies: Option<Vec<ScalingPolicy>>,
    /// Ratio band around the target inside which nothing changes (e.g. `0.05`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::non_negative_quantity")]
    pub tolerance: Option<Quantity>,
}

/// `autoscaling/v2` `HPAScalingPolicy`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalingPolicy {
    /// `Pods` or `Percent`.
    #[serde(rename = "type")]
    #[schemars(schema_with = "schema::policy_type")]
    pub type_: String,
    /// Pods or percent allowed to change per period (> 0).
    #[schemars(range(min = 1))]
    pub value: i32,
    /// Length of the period in seconds (1..1800).
    #[schemars(range(min = 1, max = 1800))]
    pub period_seconds: i32,
}

/// Observed state: mirrors `autoscaling/v2` `HorizontalPodAutoscalerStatus`, plus Tidal's block.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoScalerStatus {
    /// The generation the controller last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the controller last changed the target's scale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<Time>,
    /// Replicas of the target as last seen (`scale.spec.replicas`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_replicas: Option<i32>,
    /// The replica count the controller last decided on.
    #[serde(default)]
    pub desired_replicas: i32,
    /// The last values of each metric, in spec order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_metrics: Option<Vec<MetricStatus>>,
    /// AbleToScale, ScalingActive, ScalingLimited and ScaledToZero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<HorizontalPodAutoscalerCondition>>,
    /// Tidal's own status fields, kept apart from the HPA mirror.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tidal: Option<TidalStatus>,
}

/// Tidal's extension of the status: what `kubectl get` shows and what the HPA lacks.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TidalStatus {
    /// `Kind/name` of the scale target, as `kubectl get hpa` prints REFERENCE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Current/target per metric, as `kubectl get hpa` prints TARGETS (e.g. `cpu: 40%/50%`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<String>,
    /// The decision memory (recommendations and scale events), persisted so that a restart or
    /// a fail-over neither scales down early nor grants a fresh rate-limit budget. Upstream
    /// keeps this in process memory only (contract 7.1); this is a deliberate improvement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<DecisionHistory>,
    /// The last decision, step by step (`tidal explain` prints it). Bounded: per metric at
    /// most 5 pods of each class are listed by name, the rest only counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decision: Option<scaling::DecisionTrace>,
    /// The last decision that wrote the target's scale, kept while later decisions change
    /// nothing (`tidal explain --last-scale` prints it). With reconciles on every fresh
    /// sample, `lastDecision` is soon a decision that kept the size; this one says why the
    /// target has it. Bounded as `lastDecision`, and written only with a scale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_decision: Option<scaling::DecisionTrace>,
    /// A scale write announced before it was made, present only between that write and the
    /// status write that records it. A successor that finds it compares the target's size, so
    /// a crash or fail-over in between neither loses the scale event nor spends its rate-limit
    /// budget twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_intent: Option<ScaleIntentRecord>,
    /// The last change of the target's `spec.replicas` by another field manager: who, how,
    /// when, the values, and (under `Yield`) until when Tidal does not write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_replica_fight: Option<scaling::fight::ReplicaFight>,
    /// How long the last scale took, from the newest PodMetrics sample its decision read
    /// (resource metrics only: other metric APIs carry no sample time Tidal can trust).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_lag: Option<ScaleLag>,
}

/// The lag of one scale, measured from the sample that triggered it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleLag {
    /// The newest PodMetrics sample's timestamp the decision read.
    pub sample_time: Time,
    /// The size written.
    pub replicas: i32,
    /// Seconds from the sample to the decision.
    pub decision_seconds: f64,
    /// Seconds from the sample to the scale write's answer.
    pub scale_write_seconds: f64,
    /// Seconds from the sample to the pods asked for being Ready (scale-ups; absent until
    /// they are, or when the scale went down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods_ready_seconds: Option<f64>,
}

/// A scale write about to be made.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleIntentRecord {
    /// The size read before the write.
    pub from_replicas: i32,
    /// The size being written.
    pub to_replicas: i32,
    /// The decision's time (the scale event's timestamp).
    pub timestamp: Time,
    /// The recommendation the decision recorded (its stabilization memory, which the
    /// scale-down window reads): a successor adds it to the restored history whether or not
    /// the write landed. Absent in intents written by earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommended_replicas: Option<i32>,
}

/// Persisted decision memory, bounded by the longest stabilization window and policy period.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecisionHistory {
    /// Past recommendations as runs of equal values, oldest first: each run lasts until the
    /// next one began, the last one until the history is read back. Unlike one entry per sync,
    /// it does not change while the recommendation does not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recommendation_runs: Vec<RecommendationRun>,
    /// Past recommendations one per sync, as versions before `recommendationRuns` wrote them:
    /// read (as runs), never written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recommendations: Vec<RecommendationRecord>,
    /// Past scale-up events.
    #[serde(default)]
    pub scale_up_events: Vec<ScaleEventRecord>,
    /// Past scale-down events.
    #[serde(default)]
    pub scale_down_events: Vec<ScaleEventRecord>,
}

/// A run of equal recommendations.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecommendationRun {
    /// Recommended replicas.
    pub replicas: i32,
    /// When the run began (rounded up to the second); absent for the oldest run, whose
    /// beginning no window reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
}

/// One past recommendation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecommendationRecord {
    /// Recommended replicas.
    pub replicas: i32,
    /// When it was made.
    pub timestamp: Time,
}

/// One past scale change made by this controller.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleEventRecord {
    /// Absolute change in replicas.
    pub replica_change: i32,
    /// When it happened.
    pub timestamp: Time,
    /// Older than the longest period when last checked (sticky, as upstream).
    #[serde(default)]
    pub outdated: bool,
}
