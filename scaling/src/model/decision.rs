//! One decision's input and output: the decision memory that goes in and out
//! ([`History`]), everything a decision reads ([`DecisionInput`]) and what it
//! decides, reports and remembers ([`Decision`]).

use super::{
    AutoscalerSpec, AutoscalerStatus, Condition, Config, MetricPolicy, MetricValues, ObjectMeta,
    OtherAutoscaler, Pod, PodMetrics, ScaleRead,
};
use crate::time::Time;

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
    /// Tidal's per-metric stale and missing data policies (`spec.tidal.metricPolicies`);
    /// empty for the built-in HPA's behaviour.
    pub metric_policies: Vec<MetricPolicy>,
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
