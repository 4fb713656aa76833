//! The autoscaler as the user wrote it: `metadata` and the `autoscaling/v2`
//! spec (metrics, targets, behavior), before defaulting.

use crate::quantity::Quantity;
use crate::selector::LabelSelector;

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

    /// The resource or metric name and, for ContainerResource, the container: what the status
    /// reports a metric by and what a `spec.tidal.metricPolicies` entry names it by. `None` for
    /// an unknown type.
    pub fn identity(&self) -> Option<(&str, Option<&str>)> {
        match self {
            MetricSpec::Resource { name, .. } => Some((name, None)),
            MetricSpec::ContainerResource {
                name, container, ..
            } => Some((name, Some(container))),
            MetricSpec::Pods { metric, .. }
            | MetricSpec::Object { metric, .. }
            | MetricSpec::External { metric, .. } => Some((&metric.name, None)),
            MetricSpec::Unknown(_) => None,
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
