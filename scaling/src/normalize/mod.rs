//! Normalization of the metric proposal (contract section 4): stabilization
//! windows over the recommendation memory, the legacy clamp, behavior rate
//! limits over the scale-event memory, and storing scale events.
//!
//! Each step returns its value together with its part of the decision trace
//! ([`Stabilized`], [`Limited`]): the trace is what the step computed, not a
//! second derivation of it.

mod limits;
mod release;
mod stabilize;

pub use limits::{
    Limited, changes_in_period, convert_legacy, convert_with_behavior, legacy_scale_up_limit,
    scale_down_limit, scale_up_limit, store_scale_event,
};
pub use release::{held, next_release};
pub use stabilize::{Stabilized, stabilize_legacy, stabilize_with_behavior};

use crate::conditions::{
    REASON_DESIRED_WITHIN_RANGE, REASON_READY_FOR_NEW_SCALE, REASON_SCALE_DOWN_LIMIT,
    REASON_SCALE_DOWN_STABILIZED, REASON_SCALE_UP_LIMIT, REASON_SCALE_UP_STABILIZED,
    REASON_TOO_FEW_REPLICAS, REASON_TOO_MANY_REPLICAS,
};
use crate::model::{Behavior, Config, PolicyType, ScalingPolicy, ScalingRules, SelectPolicy};

/// One direction's scaling rules after API defaulting (contract 4.3.1, 4.3.4).
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// Stabilization window in seconds.
    pub window_seconds: i32,
    /// How policies combine.
    pub select_policy: SelectPolicy,
    /// Rate-limit policies.
    pub policies: Vec<ScalingPolicy>,
}

/// Both directions' rules after defaulting.
#[derive(Debug, Clone, PartialEq)]
pub struct BehaviorRules {
    /// `scaleUp`.
    pub up: Rules,
    /// `scaleDown`.
    pub down: Rules,
}

const DEFAULT_PERIOD_SECONDS: i32 = 15;

impl BehaviorRules {
    /// Fills every unset field of `behavior` with the API defaults; the
    /// scale-down window defaults to the controller's downscale flag.
    pub fn with_defaults(behavior: &Behavior, config: &Config) -> BehaviorRules {
        let up_defaults = Rules {
            window_seconds: 0,
            select_policy: SelectPolicy::Max,
            policies: vec![
                ScalingPolicy {
                    kind: PolicyType::Pods,
                    value: 4,
                    period_seconds: DEFAULT_PERIOD_SECONDS,
                },
                ScalingPolicy {
                    kind: PolicyType::Percent,
                    value: 100,
                    period_seconds: DEFAULT_PERIOD_SECONDS,
                },
            ],
        };
        let flag = config.downscale_stabilization.whole_seconds();
        let down_defaults = Rules {
            window_seconds: flag.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
            select_policy: SelectPolicy::Max,
            policies: vec![ScalingPolicy {
                kind: PolicyType::Percent,
                value: 100,
                period_seconds: DEFAULT_PERIOD_SECONDS,
            }],
        };
        BehaviorRules {
            up: fill(behavior.scale_up.as_ref(), up_defaults),
            down: fill(behavior.scale_down.as_ref(), down_defaults),
        }
    }
}

fn fill(given: Option<&ScalingRules>, defaults: Rules) -> Rules {
    let Some(g) = given else { return defaults };
    Rules {
        window_seconds: g
            .stabilization_window_seconds
            .unwrap_or(defaults.window_seconds),
        select_policy: g.select_policy.unwrap_or(defaults.select_policy),
        policies: g.policies.clone().unwrap_or(defaults.policies),
    }
}

/// Why a value was (or was not) limited: `(reason, message)`.
pub type Limit = (&'static str, &'static str);

const WITHIN_RANGE: Limit = (
    REASON_DESIRED_WITHIN_RANGE,
    "the desired count is within the acceptable range",
);
const TOO_MANY: Limit = (
    REASON_TOO_MANY_REPLICAS,
    "the desired replica count is more than the maximum replica count",
);
const TOO_FEW: Limit = (
    REASON_TOO_FEW_REPLICAS,
    "the desired replica count is less than the minimum replica count",
);
const SCALE_UP_LIMIT: Limit = (
    REASON_SCALE_UP_LIMIT,
    "the desired replica count is increasing faster than the maximum scale rate",
);
const SCALE_DOWN_LIMIT: Limit = (
    REASON_SCALE_DOWN_LIMIT,
    "the desired replica count is decreasing faster than the maximum scale rate",
);
/// `AbleToScale` reason when stabilization held a scale-down.
pub const SCALE_DOWN_STABILIZED: Limit = (
    REASON_SCALE_DOWN_STABILIZED,
    "recent recommendations were higher than current one, applying the highest recent recommendation",
);
/// `AbleToScale` reason when stabilization held a scale-up.
pub const SCALE_UP_STABILIZED: Limit = (
    REASON_SCALE_UP_STABILIZED,
    "recent recommendations were lower than current one, applying the lowest recent recommendation",
);
/// `AbleToScale` reason when stabilization left the proposal as it was.
pub const READY_FOR_NEW_SCALE: Limit = (
    REASON_READY_FOR_NEW_SCALE,
    "recommended size matches current size",
);
