//! Typed inputs and outputs of one decision.
//!
//! These types carry parsed values only (milli-values, instants, durations), so
//! the decision itself never parses. [`crate::wire`] builds them from the
//! `tidal calc` JSON; the operator builds them from the objects it watches.

use crate::quantity::Quantity;
use crate::selector::{LabelSelector, Labels};
use crate::time::{Duration, Time};

/// kube-controller-manager flags that shape the decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `--horizontal-pod-autoscaler-tolerance` (both directions).
    pub tolerance: f64,
    /// `--horizontal-pod-autoscaler-cpu-initialization-period`.
    pub cpu_initialization_period: Duration,
    /// `--horizontal-pod-autoscaler-initial-readiness-delay`.
    pub initial_readiness_delay: Duration,
    /// `--horizontal-pod-autoscaler-downscale-stabilization`.
    pub downscale_stabilization: Duration,
    /// Legacy scale-up factor (upstream constant 2.0).
    pub legacy_scale_up_limit_factor: f64,
    /// Legacy scale-up minimum (upstream constant 4.0).
    pub legacy_scale_up_limit_minimum: f64,
    /// Feature gates that change the decision.
    pub feature_gates: FeatureGates,
}

impl Default for Config {
    /// The production defaults of kube-controller-manager.
    fn default() -> Self {
        Config {
            tolerance: 0.1,
            cpu_initialization_period: Duration::from_seconds(300),
            initial_readiness_delay: Duration::from_seconds(30),
            downscale_stabilization: Duration::from_seconds(300),
            legacy_scale_up_limit_factor: 2.0,
            legacy_scale_up_limit_minimum: 4.0,
            feature_gates: FeatureGates::default(),
        }
    }
}

/// The feature gates the decision depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureGates {
    /// `HPAConfigurableTolerance`: per-direction `behavior.*.tolerance`.
    pub configurable_tolerance: bool,
    /// `HPAScaleToZero`: the `ScaledToZero` condition and scaling from zero.
    pub scale_to_zero: bool,
    /// `PodLevelResources`: pod-level requests replace summed container requests.
    pub pod_level_resources: bool,
}

impl Default for FeatureGates {
    /// The 1.37 reading of the contract: all three on.
    fn default() -> Self {
        FeatureGates {
            configurable_tolerance: true,
            scale_to_zero: true,
            pod_level_resources: true,
        }
    }
}

/// Name and namespace of the autoscaler (used in messages and the overlap check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
}

impl Default for ObjectMeta {
    fn default() -> Self {
        ObjectMeta {
            name: "autoscaler".to_string(),
            namespace: "default".to_string(),
        }
    }
}

/// `CrossVersionObjectReference`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectReference {
    /// `apiVersion` (`group/version` or `version`).
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `name`.
    pub name: String,
}

/// The autoscaler spec (`autoscaling/v2` `HorizontalPodAutoscalerSpec`), before defaulting.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AutoscalerSpec {
    /// `scaleTargetRef`.
    pub scale_target_ref: ObjectReference,
    /// `minReplicas` (absent means 1).
    pub min_replicas: Option<i32>,
    /// `maxReplicas`.
    pub max_replicas: i32,
    /// `metrics` (empty means CPU at 80% utilization).
    pub metrics: Vec<MetricSpec>,
    /// `behavior` (absent selects the legacy normalization).
    pub behavior: Option<Behavior>,
}

/// One entry of `spec.metrics`.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricSpec {
    /// `type: Resource`.
    Resource {
        /// Resource name (`cpu`, `memory`, …).
        name: String,
        /// The target.
        target: MetricTarget,
    },
    /// `type: ContainerResource`.
    ContainerResource {
        /// Resource name.
        name: String,
        /// Container name.
        container: String,
        /// The target.
        target: MetricTarget,
    },
    /// `type: Pods`.
    Pods {
        /// The metric.
        metric: MetricIdentifier,
        /// Target average value per pod (milli).
        average_value: Quantity,
    },
    /// `type: Object`.
    Object {
        /// The object the metric describes.
        described_object: ObjectReference,
        /// The metric.
        metric: MetricIdentifier,
        /// The target.
        target: MetricTarget,
    },
    /// `type: External`.
    External {
        /// The metric.
        metric: MetricIdentifier,
        /// The target.
        target: MetricTarget,
    },
    /// Any other `type`; the metric fails with `InvalidMetricSourceType`.
    Unknown(String),
}

impl MetricSpec {
    /// The `type` string of this metric.
    pub fn type_name(&self) -> &str {
        match self {
            MetricSpec::Resource { .. } => "Resource",
            MetricSpec::ContainerResource { .. } => "ContainerResource",
            MetricSpec::Pods { .. } => "Pods",
            MetricSpec::Object { .. } => "Object",
            MetricSpec::External { .. } => "External",
            MetricSpec::Unknown(t) => t,
        }
    }

    /// Whether this is an Object or External metric (they can scale from zero).
    pub fn is_object_or_external(&self) -> bool {
        matches!(
            self,
            MetricSpec::Object { .. } | MetricSpec::External { .. }
        )
    }

    /// The CPU utilization metric the API server defaults an empty list to.
    pub fn default_cpu() -> MetricSpec {
        MetricSpec::Resource {
            name: "cpu".to_string(),
            target: MetricTarget {
                kind: "Utilization".to_string(),
                average_utilization: Some(80),
                ..MetricTarget::default()
            },
        }
    }
}

/// `MetricTarget`. Which field the controller reads depends on the metric type.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricTarget {
    /// `type` (`Utilization`, `Value`, `AverageValue`).
    pub kind: String,
    /// `value`.
    pub value: Option<Quantity>,
    /// `averageValue`.
    pub average_value: Option<Quantity>,
    /// `averageUtilization` (percent of request).
    pub average_utilization: Option<i32>,
}

/// `MetricIdentifier`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricIdentifier {
    /// Metric name.
    pub name: String,
    /// Metric selector (`None` is Go's nil).
    pub selector: Option<LabelSelector>,
}

/// `spec.behavior`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Behavior {
    /// `scaleUp`.
    pub scale_up: Option<ScalingRules>,
    /// `scaleDown`.
    pub scale_down: Option<ScalingRules>,
}

/// `HPAScalingRules`, each field optional as in the API.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScalingRules {
    /// `stabilizationWindowSeconds`.
    pub stabilization_window_seconds: Option<i32>,
    /// `selectPolicy`.
    pub select_policy: Option<SelectPolicy>,
    /// `policies` (`Some(empty)` is rejected by the API).
    pub policies: Option<Vec<ScalingPolicy>>,
    /// `tolerance` (KEP-4951).
    pub tolerance: Option<Quantity>,
}

/// `selectPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectPolicy {
    /// Allow the biggest change.
    Max,
    /// Allow the smallest change.
    Min,
    /// No change in this direction.
    Disabled,
}

/// `HPAScalingPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScalingPolicy {
    /// `type`.
    pub kind: PolicyType,
    /// `value`.
    pub value: i32,
    /// `periodSeconds`.
    pub period_seconds: i32,
}

/// `HPAScalingPolicyType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyType {
    /// A number of pods per period.
    Pods,
    /// A percentage of the replicas at the start of the period.
    Percent,
}

/// Status condition status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionStatus {
    /// `True`.
    True,
    /// `False`.
    False,
    /// `Unknown`, or any other string.
    Unknown,
}

impl ConditionStatus {
    /// The API string.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

/// An autoscaler status condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// `type`.
    pub kind: String,
    /// `status`, kept as given.
    pub status: String,
    /// `reason`.
    pub reason: String,
    /// `message`.
    pub message: String,
    /// `lastTransitionTime`.
    pub last_transition_time: Option<Time>,
}

/// The autoscaler status before the decision (what the controller reads of it).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AutoscalerStatus {
    /// `desiredReplicas`.
    pub desired_replicas: i32,
    /// `currentReplicas`.
    pub current_replicas: i32,
    /// `conditions`, in list order.
    pub conditions: Vec<Condition>,
}

/// The target's scale subresource as the controller's GET saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum ScaleRead {
    /// The GET succeeded.
    Read(Scale),
    /// The GET (or the scale target reference) failed with this error.
    Failed(String),
}

/// A successfully read scale subresource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scale {
    /// `spec.replicas`.
    pub spec_replicas: i32,
    /// `status.replicas`.
    pub status_replicas: i32,
    /// `status.selector`.
    pub selector: String,
}

/// A pod phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodPhase {
    /// `Pending`.
    Pending,
    /// `Running`.
    Running,
    /// `Succeeded`.
    Succeeded,
    /// `Failed`.
    Failed,
    /// `Unknown` or anything else.
    Unknown,
}

/// The `Ready` condition of a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodReady {
    /// `status`.
    pub status: ConditionStatus,
    /// `lastTransitionTime` (Go's zero time when absent).
    pub last_transition_time: Time,
}

/// Resource amounts by resource name, in milli-units (a `ResourceList`).
///
/// `cpu` and `memory` are looked up for every container of every pod; they are
/// kept inline as well, so that a lookup does not follow a pointer to each
/// entry's name. Build it with `collect()` or `From<Vec<_>>`; for a name that
/// occurs twice the first entry counts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceList {
    entries: Vec<(String, i64)>,
    cpu: Option<i64>,
    memory: Option<i64>,
}

impl ResourceList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry (a later duplicate of a name is kept but never read).
    pub fn insert(&mut self, name: String, milli: i64) {
        match name.as_str() {
            "cpu" if self.cpu.is_none() => self.cpu = Some(milli),
            "memory" if self.memory.is_none() => self.memory = Some(milli),
            _ => {}
        }
        self.entries.push((name, milli));
    }

    /// The amount of `name`, if listed.
    #[inline]
    pub fn get(&self, name: &str) -> Option<i64> {
        match name {
            "cpu" => self.cpu,
            "memory" => self.memory,
            _ => self
                .entries
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| *v),
        }
    }

    /// The entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i64)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), *v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl FromIterator<(String, i64)> for ResourceList {
    fn from_iter<I: IntoIterator<Item = (String, i64)>>(iter: I) -> Self {
        let mut list = ResourceList::new();
        for (name, milli) in iter {
            list.insert(name, milli);
        }
        list
    }
}

impl From<Vec<(String, i64)>> for ResourceList {
    fn from(entries: Vec<(String, i64)>) -> Self {
        entries.into_iter().collect()
    }
}

/// Looks up a resource in a [`ResourceList`].
#[inline]
pub fn resource_get(list: &ResourceList, name: &str) -> Option<i64> {
    list.get(name)
}

/// A container of a pod spec.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Container {
    /// `name`.
    pub name: String,
    /// `resources.requests`.
    pub requests: ResourceList,
    /// `restartPolicy: Always` (a sidecar when it is an init container).
    pub restart_always: bool,
}

/// What the controller reads of a pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Pod {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.labels`.
    pub labels: Labels,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// `status.phase`.
    pub phase: PodPhase,
    /// `status.startTime`.
    pub start_time: Option<Time>,
    /// The `Ready` condition, if there is one.
    pub ready: Option<PodReady>,
    /// `spec.containers`.
    pub containers: Vec<Container>,
    /// `spec.initContainers`.
    pub init_containers: Vec<Container>,
    /// `spec.resources.requests` (pod-level requests), if set.
    pub pod_requests: Option<ResourceList>,
}

/// One `PodMetrics` item of the `metrics.k8s.io` LIST.
#[derive(Debug, Clone, PartialEq)]
pub struct PodMetrics {
    /// `metadata.name`.
    pub name: String,
    /// `timestamp`.
    pub timestamp: Time,
    /// `window`.
    pub window: Duration,
    /// `containers`.
    pub containers: Vec<ContainerMetrics>,
}

/// One container of a `PodMetrics` item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerMetrics {
    /// `name`.
    pub name: String,
    /// `usage`, milli-values.
    pub usage: ResourceList,
}

/// A custom or external metrics API answer the decision may need.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricValues {
    /// `Pods`, `Object` or `External`.
    pub kind: String,
    /// The metric name.
    pub metric_name: String,
    /// The metric selector the answer is for; `None` when the answer does not say.
    pub selector: Option<Option<LabelSelector>>,
    /// For Object answers: the described object's kind and name, if given.
    pub described_object: Option<(String, String)>,
    /// The items, or the error of the API call.
    pub answer: Result<Vec<MetricValue>, String>,
}

/// One `MetricValue` / `ExternalMetricValue` item.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricValue {
    /// `describedObject.name` (the pod, for Pods metrics).
    pub pod_name: Option<String>,
    /// `value`, milli.
    pub value: i64,
    /// `timestamp`.
    pub timestamp: Time,
    /// `windowSeconds`.
    pub window: Duration,
}

/// Another autoscaler registered in the namespace (for the overlap guard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherAutoscaler {
    /// Its name.
    pub name: String,
    /// Its namespace, if known.
    pub namespace: Option<String>,
    /// The selector string it registered (`""`: not reconciled yet, matches nothing).
    pub selector: String,
}

/// A remembered unstabilized recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recommendation {
    /// Recommended replicas.
    pub replicas: i32,
    /// When.
    pub timestamp: Time,
}

/// A remembered scale change made by this controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleEvent {
    /// Absolute change.
    pub replica_change: i32,
    /// When.
    pub timestamp: Time,
    /// Older than the longest policy period when last checked (sticky).
    pub outdated: bool,
}

/// The controller's in-memory decision history for one autoscaler.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct History {
    /// Recommendations; `None` means this controller has no memory yet (it seeds one).
    pub recommendations: Option<Vec<Recommendation>>,
    /// Scale-up events.
    pub scale_up_events: Vec<ScaleEvent>,
    /// Scale-down events.
    pub scale_down_events: Vec<ScaleEvent>,
}

/// Everything one decision reads.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionInput {
    /// The instant of the reconcile.
    pub now: Time,
    /// Controller configuration.
    pub config: Config,
    /// The autoscaler's name and namespace.
    pub metadata: ObjectMeta,
    /// The spec, as stored (defaults are applied by the decision).
    pub spec: AutoscalerSpec,
    /// The status before the decision.
    pub status: AutoscalerStatus,
    /// The scale subresource read.
    pub scale: ScaleRead,
    /// The pods the pod lister returns for the target's selector.
    pub pods: Vec<Pod>,
    /// The PodMetrics LIST answer, or its error.
    pub pod_metrics: Result<Vec<PodMetrics>, String>,
    /// Custom and external metrics API answers.
    pub metric_values: Vec<MetricValues>,
    /// Other autoscalers in the namespace.
    pub other_autoscalers: Vec<OtherAutoscaler>,
    /// The decision memory; `None` on the first reconcile.
    pub history: Option<History>,
}

/// Event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// `Normal`.
    Normal,
    /// `Warning`.
    Warning,
}

impl EventType {
    /// The API string.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// An event the controller records on the autoscaler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `Normal` or `Warning`.
    pub kind: EventType,
    /// Reason.
    pub reason: String,
    /// Message.
    pub message: String,
}

/// `MetricValueStatus`: what `status.currentMetrics` reports for one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetricValueStatus {
    /// `averageUtilization` (percent).
    pub average_utilization: Option<i32>,
    /// `averageValue`, milli.
    pub average_value: Option<i64>,
    /// `value`, milli.
    pub value: Option<i64>,
    /// Render quantities in BinarySI (memory).
    pub binary: bool,
}

/// The per-metric outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricOutcome {
    /// The metric produced a proposal.
    Proposal {
        /// Proposed replicas (before stabilization and limits).
        replicas: i32,
        /// The reported current value.
        current: MetricValueStatus,
    },
    /// The metric failed.
    Failed {
        /// Condition and event reason (`FailedGetResourceMetric`, …).
        reason: String,
        /// The per-metric error text.
        message: String,
    },
}

/// One entry of the decision's metric report, in spec order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricReport {
    /// The spec metric's type.
    pub kind: String,
    /// Resource name or metric name (`""` for unknown types).
    pub name: String,
    /// Container, for ContainerResource.
    pub container: Option<String>,
    /// Proposal or failure.
    pub outcome: MetricOutcome,
}

/// What one reconcile decides, reports and remembers.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// `status.desiredReplicas` to write.
    pub desired_replicas: i32,
    /// `status.currentReplicas` to write.
    pub current_replicas: i32,
    /// The scale was changed by this decision (a write happened and succeeded).
    pub rescale: bool,
    /// The rescale reason text when a write was attempted, else empty.
    pub reason: String,
    /// Per-metric reports (empty when metrics were not computed).
    pub metrics: Vec<MetricReport>,
    /// `status.conditions` after the decision.
    pub conditions: Vec<Condition>,
    /// Events emitted, in order.
    pub events: Vec<Event>,
    /// The memory after the decision (`None` only if there was none and the scale was unreadable).
    pub history: Option<History>,
    /// `status.lastScaleTime` must be set to `now`.
    pub last_scale_time_updated: bool,
    /// How the decision was reached, step by step (what `tidal explain` shows).
    pub trace: crate::trace::DecisionTrace,
}
