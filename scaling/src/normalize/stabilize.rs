//! Stabilization over the recommendation memory (contract 4.2 legacy, 4.3.2
//! with behavior): the value, the recommendation that held it, and the memory
//! update, in one pass per step.

use super::{BehaviorRules, Limit, SCALE_DOWN_STABILIZED, SCALE_UP_STABILIZED};
use crate::model::Recommendation;
use crate::time::{Duration, Time};
use crate::trace::{BoundBy, StabilizationTrace, TraceTime};

/// A stabilized recommendation with its trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Stabilized {
    /// The stabilized replica count.
    pub replicas: i32,
    /// The `AbleToScale` reason and message when `replicas` differs from the proposal.
    pub reason: Limit,
    /// How the value was reached (what `tidal explain` shows).
    pub trace: StabilizationTrace,
}

/// `stabilizeRecommendation` (legacy): the maximum of `desired` and every
/// recommendation not older than `window`; stores `(desired, now)`.
pub fn stabilize_legacy(
    recs: &mut Vec<Recommendation>,
    desired: i32,
    now: Time,
    window: Duration,
) -> Stabilized {
    let cutoff = now - window;
    let inside = |r: &Recommendation| !r.timestamp.before(cutoff);
    let result = recs
        .iter()
        .filter(|r| inside(r))
        .map(|r| r.replicas)
        .fold(desired, i32::max);
    let trace = StabilizationTrace {
        behavior: false,
        proposal: desired,
        up_window_seconds: None,
        down_window_seconds: window.whole_seconds(),
        in_up_window: 0,
        in_down_window: count(recs, inside),
        up_bound: None,
        down_bound: result,
        bound_by: (result != desired)
            .then(|| newest_with(recs, result, inside))
            .flatten()
            .map(|r| bound_by(now, r, "down")),
        result,
    };
    // The last recommendation that left the window makes room for the new one.
    let reuse = recs.iter().rposition(|r| !inside(r));
    store_recommendation(recs, reuse, desired, now);
    Stabilized {
        replicas: result,
        // Legacy stabilization only ever holds a scale-down.
        reason: SCALE_DOWN_STABILIZED,
        trace,
    }
}

/// `stabilizeRecommendationWithBehaviors`: the value in `[upRec, downRec]`
/// closest to `current`; stores `(desired, now)`.
pub fn stabilize_with_behavior(
    recs: &mut Vec<Recommendation>,
    desired: i32,
    current: i32,
    now: Time,
    rules: &BehaviorRules,
) -> Stabilized {
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
    let trace = StabilizationTrace {
        behavior: true,
        proposal: desired,
        up_window_seconds: Some(i64::from(rules.up.window_seconds)),
        down_window_seconds: i64::from(rules.down.window_seconds),
        in_up_window: count(recs, in_up),
        in_down_window: count(recs, in_down),
        up_bound: Some(up_bound),
        down_bound,
        bound_by: bound,
        result,
    };
    let reuse = recs
        .iter()
        .rposition(|r| r.timestamp.before(up_cut) && r.timestamp.before(down_cut));
    store_recommendation(recs, reuse, desired, now);
    Stabilized {
        replicas: result,
        reason: if desired >= current {
            SCALE_UP_STABILIZED
        } else {
            SCALE_DOWN_STABILIZED
        },
        trace,
    }
}

fn store_recommendation(
    recs: &mut Vec<Recommendation>,
    reuse: Option<usize>,
    replicas: i32,
    now: Time,
) {
    let entry = Recommendation {
        replicas,
        timestamp: now,
    };
    match reuse.and_then(|i| recs.get_mut(i)) {
        Some(slot) => *slot = entry,
        None => recs.push(entry),
    }
}

fn count(recs: &[Recommendation], inside: impl Fn(&Recommendation) -> bool) -> u32 {
    u32::try_from(recs.iter().filter(|r| inside(r)).count()).unwrap_or(u32::MAX)
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
        age_seconds: (now.unix_nanos() - r.timestamp.unix_nanos()) as f64 / 1e9,
        window: window.into(),
    }
}
