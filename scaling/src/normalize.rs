//! Normalization of the metric proposal (contract section 4): stabilization
//! windows over the recommendation memory, the legacy clamp, behavior rate
//! limits over the scale-event memory, and storing scale events.

use crate::model::{
    Behavior, Config, PolicyType, Recommendation, ScaleEvent, ScalingPolicy, ScalingRules,
    SelectPolicy,
};
use crate::time::{Duration, Time};
use crate::trace::{BoundBy, LimitsTrace, PolicyTrace, StabilizationTrace, TraceTime};

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
    "DesiredWithinRange",
    "the desired count is within the acceptable range",
);
const TOO_MANY: Limit = (
    "TooManyReplicas",
    "the desired replica count is more than the maximum replica count",
);
const TOO_FEW: Limit = (
    "TooFewReplicas",
    "the desired replica count is less than the minimum replica count",
);
const SCALE_UP_LIMIT: Limit = (
    "ScaleUpLimit",
    "the desired replica count is increasing faster than the maximum scale rate",
);
const SCALE_DOWN_LIMIT: Limit = (
    "ScaleDownLimit",
    "the desired replica count is decreasing faster than the maximum scale rate",
);
/// `AbleToScale` reason when stabilization held a scale-down.
pub const SCALE_DOWN_STABILIZED: Limit = (
    "ScaleDownStabilized",
    "recent recommendations were higher than current one, applying the highest recent recommendation",
);
/// `AbleToScale` reason when stabilization held a scale-up.
pub const SCALE_UP_STABILIZED: Limit = (
    "ScaleUpStabilized",
    "recent recommendations were lower than current one, applying the lowest recent recommendation",
);

fn store_recommendation(
    recs: &mut Vec<Recommendation>,
    reuse: Option<usize>,
    entry: Recommendation,
) {
    match reuse.and_then(|i| recs.get_mut(i)) {
        Some(slot) => *slot = entry,
        None => recs.push(entry),
    }
}

/// `stabilizeRecommendation` (legacy): the maximum of `desired` and every
/// recommendation not older than `window`; stores `(desired, now)`.
pub fn stabilize_legacy(
    recs: &mut Vec<Recommendation>,
    desired: i32,
    now: Time,
    window: Duration,
) -> i32 {
    let cutoff = now - window;
    let mut max = desired;
    let mut reuse = None;
    for (i, r) in recs.iter().enumerate() {
        if r.timestamp.before(cutoff) {
            reuse = Some(i);
        } else if r.replicas > max {
            max = r.replicas;
        }
    }
    store_recommendation(
        recs,
        reuse,
        Recommendation {
            replicas: desired,
            timestamp: now,
        },
    );
    max
}

/// `stabilizeRecommendationWithBehaviors`: the value in `[upRec, downRec]`
/// closest to `current`; stores `(desired, now)`. Returns the value and the
/// `AbleToScale` reason to use if it differs from `desired`.
pub fn stabilize_with_behavior(
    recs: &mut Vec<Recommendation>,
    desired: i32,
    current: i32,
    now: Time,
    rules: &BehaviorRules,
) -> (i32, Limit) {
    let up_cut = now - Duration::from_seconds(i64::from(rules.up.window_seconds));
    let down_cut = now - Duration::from_seconds(i64::from(rules.down.window_seconds));
    let mut up_rec = desired;
    let mut down_rec = desired;
    let mut reuse = None;
    for (i, r) in recs.iter().enumerate() {
        if r.timestamp.after(up_cut) {
            up_rec = up_rec.min(r.replicas);
        }
        if r.timestamp.after(down_cut) {
            down_rec = down_rec.max(r.replicas);
        }
        if r.timestamp.before(up_cut) && r.timestamp.before(down_cut) {
            reuse = Some(i);
        }
    }
    let mut rec = current;
    if rec < up_rec {
        rec = up_rec;
    }
    if rec > down_rec {
        rec = down_rec;
    }
    store_recommendation(
        recs,
        reuse,
        Recommendation {
            replicas: desired,
            timestamp: now,
        },
    );
    let reason = if desired >= current {
        SCALE_UP_STABILIZED
    } else {
        SCALE_DOWN_STABILIZED
    };
    (rec, reason)
}

/// `convertDesiredReplicasWithRules` (legacy clamp).
pub fn convert_legacy(
    current: i32,
    desired: i32,
    min: i32,
    max: i32,
    config: &Config,
) -> (i32, Limit) {
    let limit = (config.legacy_scale_up_limit_factor * f64::from(current))
        .max(config.legacy_scale_up_limit_minimum) as i32;
    let (max_allowed, limiting) = if max > limit {
        (limit, SCALE_UP_LIMIT)
    } else {
        (max, TOO_MANY)
    };
    if desired < min {
        (min, TOO_FEW)
    } else if desired > max_allowed {
        (max_allowed, limiting)
    } else {
        (desired, WITHIN_RANGE)
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

/// `calculateScaleUpLimitWithScalingRules`.
pub fn scale_up_limit(
    current: i32,
    up: &[ScaleEvent],
    down: &[ScaleEvent],
    rules: &Rules,
    now: Time,
) -> i32 {
    let (mut result, pick): (i32, fn(i32, i32) -> i32) = match rules.select_policy {
        SelectPolicy::Disabled => return current,
        SelectPolicy::Min => (i32::MAX, std::cmp::min),
        SelectPolicy::Max => (i32::MIN, std::cmp::max),
    };
    for p in &rules.policies {
        let start = period_start(current, p, up, down, now);
        let proposed = match p.kind {
            PolicyType::Pods => saturate(start + i64::from(p.value)),
            // Rounded up so that a small percentage still allows one pod.
            PolicyType::Percent => {
                (start as f64 * (1.0 + f64::from(p.value) / 100.0)).ceil() as i32
            }
        };
        result = pick(result, proposed);
    }
    result
}

/// `calculateScaleDownLimitWithBehaviors`.
pub fn scale_down_limit(
    current: i32,
    up: &[ScaleEvent],
    down: &[ScaleEvent],
    rules: &Rules,
    now: Time,
) -> i32 {
    let (mut result, pick): (i32, fn(i32, i32) -> i32) = match rules.select_policy {
        SelectPolicy::Disabled => return current,
        SelectPolicy::Min => (i32::MIN, std::cmp::max),
        SelectPolicy::Max => (i32::MAX, std::cmp::min),
    };
    for p in &rules.policies {
        let start = period_start(current, p, up, down, now);
        let proposed = match p.kind {
            PolicyType::Pods => saturate(start - i64::from(p.value)),
            // Truncated toward zero, as Go's int32 conversion does.
            PolicyType::Percent => (start as f64 * (1.0 - f64::from(p.value) / 100.0)) as i32,
        };
        result = pick(result, proposed);
    }
    result
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
) -> (i32, Limit) {
    if desired > current {
        let limit = scale_up_limit(current, up, down, &rules.up, now).max(current);
        let (allowed, limiting) = if max > limit {
            (limit, SCALE_UP_LIMIT)
        } else {
            (max, TOO_MANY)
        };
        if desired > allowed {
            return (allowed, limiting);
        }
    } else if desired < current {
        let limit = scale_down_limit(current, up, down, &rules.down, now).min(current);
        let (allowed, limiting) = if min < limit {
            (limit, SCALE_DOWN_LIMIT)
        } else {
            (min, TOO_FEW)
        };
        if desired < allowed {
            return (allowed, limiting);
        }
    }
    (desired, WITHIN_RANGE)
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

// ---------------------------------------------------------------------------
// The trace of this step (what `tidal explain` shows). These re-read the same
// memory the functions above read, before it is updated; they change nothing.

fn age_seconds(now: Time, then: Time) -> f64 {
    (now.unix_nanos() - then.unix_nanos()) as f64 / 1e9
}

/// The newest recommendation in `recs` that satisfies `inside` and has `replicas`.
fn newest_with(
    recs: &[Recommendation],
    replicas: i32,
    inside: impl Fn(&Recommendation) -> bool,
) -> Option<&Recommendation> {
    recs.iter()
        .filter(|r| inside(r) && r.replicas == replicas)
        .max_by_key(|r| r.timestamp)
}

fn bound_by(now: Time, r: &Recommendation, window: &'static str) -> BoundBy {
    BoundBy {
        replicas: r.replicas,
        timestamp: TraceTime(r.timestamp),
        age_seconds: age_seconds(now, r.timestamp),
        window: window.into(),
    }
}

/// The stabilization step that [`stabilize_legacy`] or [`stabilize_with_behavior`]
/// is about to run: `recs` is the memory before the step. The result is
/// computed the same way (the decision checks that the two agree in tests).
pub fn trace_stabilization(
    recs: &[Recommendation],
    desired: i32,
    current: i32,
    now: Time,
    legacy_window: Duration,
    rules: Option<&BehaviorRules>,
) -> StabilizationTrace {
    match rules {
        None => {
            let cutoff = now - legacy_window;
            let inside = |r: &Recommendation| !r.timestamp.before(cutoff);
            let in_window = recs.iter().filter(|r| inside(r)).count();
            let down_bound = recs
                .iter()
                .filter(|r| inside(r))
                .map(|r| r.replicas)
                .fold(desired, i32::max);
            let result = down_bound;
            StabilizationTrace {
                behavior: false,
                proposal: desired,
                up_window_seconds: None,
                down_window_seconds: legacy_window.whole_seconds(),
                in_up_window: 0,
                in_down_window: u32::try_from(in_window).unwrap_or(u32::MAX),
                up_bound: None,
                down_bound,
                bound_by: (result != desired)
                    .then(|| newest_with(recs, result, inside))
                    .flatten()
                    .map(|r| bound_by(now, r, "down")),
                result,
            }
        }
        Some(rules) => {
            let up_cut = now - Duration::from_seconds(i64::from(rules.up.window_seconds));
            let down_cut = now - Duration::from_seconds(i64::from(rules.down.window_seconds));
            let in_up = |r: &Recommendation| r.timestamp.after(up_cut);
            let in_down = |r: &Recommendation| r.timestamp.after(down_cut);
            let up_bound = recs
                .iter()
                .filter(|r| in_up(r))
                .map(|r| r.replicas)
                .fold(desired, i32::min);
            let down_bound = recs
                .iter()
                .filter(|r| in_down(r))
                .map(|r| r.replicas)
                .fold(desired, i32::max);
            let result = current.max(up_bound).min(down_bound);
            let bound = if result == desired {
                None
            } else if result == up_bound {
                newest_with(recs, result, in_up).map(|r| bound_by(now, r, "up"))
            } else if result == down_bound {
                newest_with(recs, result, in_down).map(|r| bound_by(now, r, "down"))
            } else {
                None
            };
            StabilizationTrace {
                behavior: true,
                proposal: desired,
                up_window_seconds: Some(i64::from(rules.up.window_seconds)),
                down_window_seconds: i64::from(rules.down.window_seconds),
                in_up_window: u32::try_from(recs.iter().filter(|r| in_up(r)).count())
                    .unwrap_or(u32::MAX),
                in_down_window: u32::try_from(recs.iter().filter(|r| in_down(r)).count())
                    .unwrap_or(u32::MAX),
                up_bound: Some(up_bound),
                down_bound,
                bound_by: bound,
                result,
            }
        }
    }
}

fn select_policy_name(p: SelectPolicy) -> &'static str {
    match p {
        SelectPolicy::Max => "Max",
        SelectPolicy::Min => "Min",
        SelectPolicy::Disabled => "Disabled",
    }
}

/// The limits step as [`convert_legacy`] ran it, with its outcome.
pub fn trace_limits_legacy(
    current: i32,
    desired: i32,
    min: i32,
    max: i32,
    config: &Config,
    outcome: (i32, Limit),
) -> LimitsTrace {
    let limit = (config.legacy_scale_up_limit_factor * f64::from(current))
        .max(config.legacy_scale_up_limit_minimum) as i32;
    let (result, (applied, message)) = outcome;
    LimitsTrace {
        min_replicas: min,
        max_replicas: max,
        input: desired,
        direction: direction(current, desired).into(),
        legacy_scale_up_limit: Some(limit),
        select_policy: None,
        policies: Vec::new(),
        rate_limit: None,
        applied: applied.into(),
        message: message.into(),
        result,
    }
}

fn direction(current: i32, desired: i32) -> &'static str {
    match desired.cmp(&current) {
        std::cmp::Ordering::Greater => "up",
        std::cmp::Ordering::Less => "down",
        std::cmp::Ordering::Equal => "none",
    }
}

/// The limits step as [`convert_with_behavior`] ran it, with its outcome.
#[allow(clippy::too_many_arguments)]
pub fn trace_limits_behavior(
    current: i32,
    desired: i32,
    min: i32,
    max: i32,
    rules: &BehaviorRules,
    up: &[ScaleEvent],
    down: &[ScaleEvent],
    now: Time,
    outcome: (i32, Limit),
) -> LimitsTrace {
    let (result, (applied, message)) = outcome;
    let dir = direction(current, desired);
    let mut t = LimitsTrace {
        min_replicas: min,
        max_replicas: max,
        input: desired,
        direction: dir.into(),
        legacy_scale_up_limit: None,
        select_policy: None,
        policies: Vec::new(),
        rate_limit: None,
        applied: applied.into(),
        message: message.into(),
        result,
    };
    let (r, is_up) = match dir {
        "up" => (&rules.up, true),
        "down" => (&rules.down, false),
        _ => return t,
    };
    t.select_policy = Some(select_policy_name(r.select_policy).into());
    for p in &r.policies {
        let start = period_start(current, p, up, down, now);
        let limit = match (p.kind, is_up) {
            (PolicyType::Pods, true) => saturate(start + i64::from(p.value)),
            (PolicyType::Percent, true) => {
                (start as f64 * (1.0 + f64::from(p.value) / 100.0)).ceil() as i32
            }
            (PolicyType::Pods, false) => saturate(start - i64::from(p.value)),
            (PolicyType::Percent, false) => {
                (start as f64 * (1.0 - f64::from(p.value) / 100.0)) as i32
            }
        };
        t.policies.push(PolicyTrace {
            kind: match p.kind {
                PolicyType::Pods => "Pods",
                PolicyType::Percent => "Percent",
            }
            .into(),
            value: p.value,
            period_seconds: p.period_seconds,
            replicas_at_period_start: start,
            limit,
        });
    }
    t.rate_limit = Some(if is_up {
        scale_up_limit(current, up, down, r, now).max(current)
    } else {
        scale_down_limit(current, up, down, r, now).min(current)
    });
    t
}
