//! Min/max and rate limits (contract 4.2 legacy clamp, 4.3.3–4.3.5 behavior
//! policies) and the scale-event memory they read.

use super::{
    BehaviorRules, Limit, Rules, SCALE_DOWN_LIMIT, SCALE_UP_LIMIT, TOO_FEW, TOO_MANY, WITHIN_RANGE,
};
use crate::model::{Config, PolicyType, ScaleEvent, ScalingPolicy, SelectPolicy};
use crate::time::{Duration, Time};
use crate::trace::{LimitsTrace, PolicyTrace};

/// A limited replica count with its trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Limited {
    /// The replica count after the limits.
    pub replicas: i32,
    /// The `ScalingLimited` reason and message (`DesiredWithinRange` when no limit applied).
    pub reason: Limit,
    /// How the value was reached (what `tidal explain` shows).
    pub trace: LimitsTrace,
}

/// The direction of a change, as the policies see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

fn direction_name(current: i32, desired: i32) -> &'static str {
    match desired.cmp(&current) {
        std::cmp::Ordering::Greater => "up",
        std::cmp::Ordering::Less => "down",
        std::cmp::Ordering::Equal => "none",
    }
}

/// The trace fields every limits step has; the callers add what their limits used.
fn base_trace(
    current: i32,
    desired: i32,
    min: i32,
    max: i32,
    outcome: (i32, Limit),
) -> LimitsTrace {
    let (result, (applied, message)) = outcome;
    LimitsTrace {
        min_replicas: min,
        max_replicas: max,
        input: desired,
        direction: direction_name(current, desired).into(),
        legacy_scale_up_limit: None,
        select_policy: None,
        policies: Vec::new(),
        rate_limit: None,
        applied: applied.into(),
        message: message.into(),
        result,
    }
}

/// The legacy scale-up limit without `behavior` (`calculateScaleUpLimit`):
/// `max(factor x current, minimum)`, truncated as upstream's int32 conversion.
pub fn legacy_scale_up_limit(current: i32, config: &Config) -> i32 {
    (config.legacy_scale_up_limit_factor * f64::from(current))
        .max(config.legacy_scale_up_limit_minimum) as i32
}

/// `convertDesiredReplicasWithRules` (legacy clamp).
pub fn convert_legacy(current: i32, desired: i32, min: i32, max: i32, config: &Config) -> Limited {
    let scale_up_limit = legacy_scale_up_limit(current, config);
    let (max_allowed, limiting) = if max > scale_up_limit {
        (scale_up_limit, SCALE_UP_LIMIT)
    } else {
        (max, TOO_MANY)
    };
    let (replicas, reason) = if desired < min {
        (min, TOO_FEW)
    } else if desired > max_allowed {
        (max_allowed, limiting)
    } else {
        (desired, WITHIN_RANGE)
    };
    let mut trace = base_trace(current, desired, min, max, (replicas, reason));
    trace.legacy_scale_up_limit = Some(scale_up_limit);
    Limited {
        replicas,
        reason,
        trace,
    }
}

/// `getReplicasChangePerPeriod`: the changes strictly inside the last period.
pub fn changes_in_period(period_seconds: i32, events: &[ScaleEvent], now: Time) -> i64 {
    let cutoff = now - Duration::from_seconds(i64::from(period_seconds));
    events
        .iter()
        .filter(|e| e.timestamp.after(cutoff))
        .map(|e| i64::from(e.replica_change))
        .sum()
}

fn saturate(v: i64) -> i32 {
    v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// The replicas at the start of `policy`'s period.
fn period_start(
    current: i32,
    policy: &ScalingPolicy,
    up: &[ScaleEvent],
    down: &[ScaleEvent],
    now: Time,
) -> i64 {
    i64::from(current) - changes_in_period(policy.period_seconds, up, now)
        + changes_in_period(policy.period_seconds, down, now)
}

/// The bound one policy allows from `start` replicas.
fn policy_limit(direction: Direction, policy: &ScalingPolicy, start: i64) -> i32 {
    let value = i64::from(policy.value);
    let fraction = f64::from(policy.value) / 100.0;
    match (direction, policy.kind) {
        (Direction::Up, PolicyType::Pods) => saturate(start + value),
        // Rounded up so that a small percentage still allows one pod.
        (Direction::Up, PolicyType::Percent) => (start as f64 * (1.0 + fraction)).ceil() as i32,
        (Direction::Down, PolicyType::Pods) => saturate(start - value),
        // Truncated toward zero, as Go's int32 conversion does.
        (Direction::Down, PolicyType::Percent) => (start as f64 * (1.0 - fraction)) as i32,
    }
}

/// Combines the policies' bounds as `selectPolicy` says: `Max` allows the
/// biggest change (the highest bound up, the lowest down), `Min` the smallest,
/// `Disabled` none. An empty list gives the fold's start value, as upstream.
fn select(
    select_policy: SelectPolicy,
    direction: Direction,
    current: i32,
    limits: impl Iterator<Item = i32>,
) -> i32 {
    let highest = match select_policy {
        SelectPolicy::Disabled => return current,
        SelectPolicy::Max => direction == Direction::Up,
        SelectPolicy::Min => direction == Direction::Down,
    };
    if highest {
        limits.fold(i32::MIN, i32::max)
    } else {
        limits.fold(i32::MAX, i32::min)
    }
}

/// The policies of one direction evaluated at `now`, for the trace and for [`select`].
fn evaluate_policies(
    direction: Direction,
    current: i32,
    up: &[ScaleEvent],
    down: &[ScaleEvent],
    rules: &Rules,
    now: Time,
) -> Vec<PolicyTrace> {
    rules
        .policies
        .iter()
        .map(|p| {
            let start = period_start(current, p, up, down, now);
            PolicyTrace {
                kind: match p.kind {
                    PolicyType::Pods => "Pods",
                    PolicyType::Percent => "Percent",
                }
                .into(),
                value: p.value,
                period_seconds: p.period_seconds,
                replicas_at_period_start: start,
                limit: policy_limit(direction, p, start),
            }
        })
        .collect()
}

fn rate_limit(
    direction: Direction,
    current: i32,
    up: &[ScaleEvent],
    down: &[ScaleEvent],
    rules: &Rules,
    now: Time,
) -> i32 {
    // The same evaluation the decision's trace records, so the two cannot differ.
    let policies = evaluate_policies(direction, current, up, down, rules, now);
    select(
        rules.select_policy,
        direction,
        current,
        policies.iter().map(|p| p.limit),
    )
}

/// `calculateScaleUpLimitWithScalingRules`.
pub fn scale_up_limit(
    current: i32,
    up: &[ScaleEvent],
    down: &[ScaleEvent],
    rules: &Rules,
    now: Time,
) -> i32 {
    rate_limit(Direction::Up, current, up, down, rules, now)
}

/// `calculateScaleDownLimitWithBehaviors`.
pub fn scale_down_limit(
    current: i32,
    up: &[ScaleEvent],
    down: &[ScaleEvent],
    rules: &Rules,
    now: Time,
) -> i32 {
    rate_limit(Direction::Down, current, up, down, rules, now)
}

fn select_policy_name(p: SelectPolicy) -> &'static str {
    match p {
        SelectPolicy::Max => "Max",
        SelectPolicy::Min => "Min",
        SelectPolicy::Disabled => "Disabled",
    }
}

/// `convertDesiredReplicasWithBehaviorRate`: min/max and rate limits, in the
/// direction of the change only.
#[allow(clippy::too_many_arguments)]
pub fn convert_with_behavior(
    current: i32,
    desired: i32,
    min: i32,
    max: i32,
    rules: &BehaviorRules,
    up: &[ScaleEvent],
    down: &[ScaleEvent],
    now: Time,
) -> Limited {
    let (direction, direction_rules) = match desired.cmp(&current) {
        std::cmp::Ordering::Greater => (Direction::Up, &rules.up),
        std::cmp::Ordering::Less => (Direction::Down, &rules.down),
        std::cmp::Ordering::Equal => {
            return Limited {
                replicas: desired,
                reason: WITHIN_RANGE,
                trace: base_trace(current, desired, min, max, (desired, WITHIN_RANGE)),
            };
        }
    };
    let policies = evaluate_policies(direction, current, up, down, direction_rules, now);
    let selected = select(
        direction_rules.select_policy,
        direction,
        current,
        policies.iter().map(|p| p.limit),
    );
    // The rate limit never asks for a change against the direction taken.
    let rate_limit = match direction {
        Direction::Up => selected.max(current),
        Direction::Down => selected.min(current),
    };
    let (replicas, reason) = match direction {
        Direction::Up => {
            let (allowed, limiting) = if max > rate_limit {
                (rate_limit, SCALE_UP_LIMIT)
            } else {
                (max, TOO_MANY)
            };
            if desired > allowed {
                (allowed, limiting)
            } else {
                (desired, WITHIN_RANGE)
            }
        }
        Direction::Down => {
            let (allowed, limiting) = if min < rate_limit {
                (rate_limit, SCALE_DOWN_LIMIT)
            } else {
                (min, TOO_FEW)
            };
            if desired < allowed {
                (allowed, limiting)
            } else {
                (desired, WITHIN_RANGE)
            }
        }
    };
    let mut trace = base_trace(current, desired, min, max, (replicas, reason));
    trace.select_policy = Some(select_policy_name(direction_rules.select_policy).into());
    trace.policies = policies;
    trace.rate_limit = Some(rate_limit);
    Limited {
        replicas,
        reason,
        trace,
    }
}

/// `storeScaleEvent`: marks events older than the direction's longest policy
/// period as outdated (sticky) and reuses the last outdated slot.
pub fn store_scale_event(
    up: &mut Vec<ScaleEvent>,
    down: &mut Vec<ScaleEvent>,
    rules: &BehaviorRules,
    previous: i32,
    new: i32,
    now: Time,
) {
    let (events, policies, change) = if new > previous {
        (up, &rules.up.policies, i64::from(new) - i64::from(previous))
    } else {
        (
            down,
            &rules.down.policies,
            i64::from(previous) - i64::from(new),
        )
    };
    let longest = policies.iter().map(|p| p.period_seconds).fold(0, i32::max);
    let cutoff = now - Duration::from_seconds(i64::from(longest));
    let mut reuse = None;
    for (i, e) in events.iter_mut().enumerate() {
        if e.timestamp.before(cutoff) {
            e.outdated = true;
        }
        if e.outdated {
            reuse = Some(i);
        }
    }
    let event = ScaleEvent {
        replica_change: saturate(change),
        timestamp: now,
        outdated: false,
    };
    match reuse.and_then(|i| events.get_mut(i)) {
        Some(slot) => *slot = event,
        None => events.push(event),
    }
}
