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

/// Tidal's `AbleToScale=False` reason in `Paused` mode.
pub const REASON_PAUSED: &str = "Paused";
/// Upstream's `AbleToScale=True` reason after a successful scale write.
pub const REASON_SUCCEEDED_RESCALE: &str = "SucceededRescale";
/// Upstream's `AbleToScale=True` reason when the scale was read and nothing was written.
pub const REASON_SUCCEEDED_GET_SCALE: &str = "SucceededGetScale";

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
