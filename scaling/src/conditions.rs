//! Condition types and the reasons Tidal adds beside upstream's, in one place: the core sets
//! upstream's conditions, the operator overrides them per mode (Paused, blocked by an HPA) and
//! adds its own. Users grep for these names (contract section 5), so they are spelled once.

use crate::model::{Condition, ConditionStatus};
use crate::time::Time;

/// Upstream: whether the target's scale could be read and written.
pub const ABLE_TO_SCALE: &str = "AbleToScale";
/// Upstream: whether metrics could be computed.
pub const SCALING_ACTIVE: &str = "ScalingActive";
/// Upstream: whether min/max or the behavior policies bound the result.
pub const SCALING_LIMITED: &str = "ScalingLimited";
/// Upstream (HPAScaleToZero): the target was scaled to zero.
pub const SCALED_TO_ZERO: &str = "ScaledToZero";
/// Tidal: a built-in HPA acts on the same pods.
pub const CONFLICTING_HPA: &str = "ConflictingHPA";
/// Tidal: another field manager changed the target's `spec.replicas` (see [`crate::fight`]).
pub const REPLICA_FIGHT: &str = "ReplicaFight";

/// Tidal: a metric with a `spec.tidal.metricPolicies` entry is stale or missing, and what its
/// policy did about it (see [`crate::MetricPolicy`]).
pub const METRIC_POLICY: &str = "MetricPolicy";
/// Tidal's `MetricPolicy=True` reason (and Warning event): a metric is missing.
pub const REASON_METRIC_MISSING: &str = "MetricMissing";
/// Tidal's `MetricPolicy=True` reason (and Warning event): a metric's samples are stale.
pub const REASON_METRIC_STALE: &str = "MetricStale";
/// Tidal's `MetricPolicy=False` reason: every metric with a policy has fresh data.
pub const REASON_METRICS_FRESH: &str = "MetricsFresh";

/// Tidal's `AbleToScale=False` reason in `Paused` mode.
pub const REASON_PAUSED: &str = "Paused";
/// Tidal's `ReplicaFight=True` reason (and Warning event) under the `Report` policy: another
/// manager changed `spec.replicas`; Tidal keeps deciding and writing as before.
pub const REASON_REPLICAS_CHANGED_BY_OTHER_MANAGER: &str = "ReplicasChangedByOtherManager";
/// Tidal's `ReplicaFight=True` reason (and Warning event) under the `Yield` policy: another
/// manager changed `spec.replicas` and Tidal writes no scale for the yield period.
pub const REASON_YIELDING_TO_OTHER_MANAGER: &str = "YieldingToOtherManager";
/// Tidal's `ReplicaFight=False` reason once no other manager changed `spec.replicas` for the
/// quiet period (the yield, or five minutes).
pub const REASON_NO_RECENT_REPLICA_CHANGE: &str = "NoRecentReplicaChange";
/// Upstream's `AbleToScale=True` reason after a successful scale write.
pub const REASON_SUCCEEDED_RESCALE: &str = "SucceededRescale";
/// Upstream's `AbleToScale=True` reason when the scale was read and nothing was written.
pub const REASON_SUCCEEDED_GET_SCALE: &str = "SucceededGetScale";

// Upstream's reasons, for conditions and events (contract section 5).
/// Event: the scale write failed.
pub const REASON_FAILED_RESCALE: &str = "FailedRescale";
/// `AbleToScale=False`: the scale write failed.
pub const REASON_FAILED_UPDATE_SCALE: &str = "FailedUpdateScale";
/// Event: the scale was written.
pub const REASON_SUCCESSFUL_RESCALE: &str = "SuccessfulRescale";
/// `ScaledToZero=False`: the target runs replicas.
pub const REASON_NOT_SCALED_TO_ZERO: &str = "NotScaledToZero";
/// `AbleToScale=False` and event: the scale could not be read.
pub const REASON_FAILED_GET_SCALE: &str = "FailedGetScale";
/// `ScalingActive=False`: the target has zero replicas.
pub const REASON_SCALING_DISABLED: &str = "ScalingDisabled";
/// Event: no metric gave a proposal.
pub const REASON_FAILED_COMPUTE_METRICS_REPLICAS: &str = "FailedComputeMetricsReplicas";
/// Event: the scale has no selector.
pub const REASON_SELECTOR_REQUIRED: &str = "SelectorRequired";
/// `ScalingActive=False` and event: the selector does not parse.
pub const REASON_INVALID_SELECTOR: &str = "InvalidSelector";
/// `ScalingActive=False` and event: another autoscaler selects the same pods.
pub const REASON_AMBIGUOUS_SELECTOR: &str = "AmbiguousSelector";
/// `ScalingActive=True`: a metric gave a proposal.
pub const REASON_VALID_METRIC_FOUND: &str = "ValidMetricFound";
/// `ScalingActive=False`: a Resource metric failed.
pub const REASON_FAILED_GET_RESOURCE_METRIC: &str = "FailedGetResourceMetric";
/// `ScalingActive=False`: a ContainerResource metric failed.
pub const REASON_FAILED_GET_CONTAINER_RESOURCE_METRIC: &str = "FailedGetContainerResourceMetric";
/// `ScalingActive=False`: a Pods metric failed.
pub const REASON_FAILED_GET_PODS_METRIC: &str = "FailedGetPodsMetric";
/// `ScalingActive=False`: an Object metric failed.
pub const REASON_FAILED_GET_OBJECT_METRIC: &str = "FailedGetObjectMetric";
/// `ScalingActive=False`: an External metric failed.
pub const REASON_FAILED_GET_EXTERNAL_METRIC: &str = "FailedGetExternalMetric";
/// `ScalingActive=False`: a metric of an unknown type.
pub const REASON_INVALID_METRIC_SOURCE_TYPE: &str = "InvalidMetricSourceType";
/// `ScalingLimited=False`: min/max and the policies left the proposal.
pub const REASON_DESIRED_WITHIN_RANGE: &str = "DesiredWithinRange";
/// `ScalingLimited=True`: capped at maxReplicas.
pub const REASON_TOO_MANY_REPLICAS: &str = "TooManyReplicas";
/// `ScalingLimited=True`: raised to minReplicas.
pub const REASON_TOO_FEW_REPLICAS: &str = "TooFewReplicas";
/// `ScalingLimited=True`: a scale-up rate limit applied.
pub const REASON_SCALE_UP_LIMIT: &str = "ScaleUpLimit";
/// `ScalingLimited=True`: a scale-down rate limit applied.
pub const REASON_SCALE_DOWN_LIMIT: &str = "ScaleDownLimit";
/// `AbleToScale=True`: stabilization held a scale-down.
pub const REASON_SCALE_DOWN_STABILIZED: &str = "ScaleDownStabilized";
/// `AbleToScale=True`: stabilization held a scale-up.
pub const REASON_SCALE_UP_STABILIZED: &str = "ScaleUpStabilized";
/// `AbleToScale=True`: stabilization left the proposal as it was.
pub const REASON_READY_FOR_NEW_SCALE: &str = "ReadyForNewScale";

/// `setCondition`: updates in place or appends; the transition time changes
/// only when the status does.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    kind: &str,
    status: ConditionStatus,
    reason: &str,
    message: String,
    now: Time,
) {
    let idx = match conditions.iter().position(|c| c.kind == kind) {
        Some(i) => i,
        None => {
            conditions.push(Condition {
                kind: kind.to_string(),
                status: String::new(),
                reason: String::new(),
                message: String::new(),
                last_transition_time: None,
            });
            conditions.len() - 1
        }
    };
    if let Some(c) = conditions.get_mut(idx) {
        if c.status != status.as_str() {
            c.last_transition_time = Some(now);
        }
        c.status = status.as_str().to_string();
        c.reason = reason.to_string();
        c.message = message;
    }
}

/// Removes every condition of `kind`.
pub fn remove_condition(conditions: &mut Vec<Condition>, kind: &str) {
    conditions.retain(|c| c.kind != kind);
}
