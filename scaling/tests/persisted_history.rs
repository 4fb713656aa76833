//! The persisted recommendation memory (runs of equal values, `scaling::persist`) against the
//! memory it stands for: restored after any downtime, it never lets a decision move further
//! from the current size than upstream's own memory would, in either direction, for legacy
//! and behavior stabilization; and a steady state does not change it.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use scaling::normalize::{BehaviorRules, Rules, stabilize_legacy, stabilize_with_behavior};
use scaling::persist::{recommendation_runs, recommendations_from_runs};
use scaling::{Duration, Recommendation, SelectPolicy, Time};

fn rules(up: i32, down: i32) -> BehaviorRules {
    let side = |window_seconds| Rules {
        window_seconds,
        select_policy: SelectPolicy::Max,
        policies: Vec::new(),
    };
    BehaviorRules {
        up: side(up),
        down: side(down),
    }
}

/// How one memory stabilizes a proposal.
#[derive(Debug, Clone, Copy)]
enum Stabilization {
    Legacy { window: i64 },
    Behavior { up: i32, down: i32 },
}

impl Stabilization {
    /// The longest window.
    fn horizon(self) -> Duration {
        match self {
            Stabilization::Legacy { window } => Duration::from_seconds(window),
            Stabilization::Behavior { up, down } => Duration::from_seconds(i64::from(up.max(down))),
        }
    }

    fn run(self, recs: &mut Vec<Recommendation>, desired: i32, current: i32, now: Time) -> i32 {
        match self {
            Stabilization::Legacy { window } => {
                stabilize_legacy(recs, desired, now, Duration::from_seconds(window)).replicas
            }
            Stabilization::Behavior { up, down } => {
                stabilize_with_behavior(recs, desired, current, now, &rules(up, down)).replicas
            }
        }
    }
}

fn stabilization() -> impl Strategy<Value = Stabilization> {
    prop_oneof![
        (0i64..120).prop_map(|window| Stabilization::Legacy { window }),
        (0i32..90, 0i32..120).prop_map(|(up, down)| Stabilization::Behavior { up, down }),
    ]
}

/// One sync: the gap since the previous one (nanoseconds), the proposal, the current size.
fn syncs(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<(i128, i32, i32)>> {
    // Gaps of up to 20 s, and often under 3 s (a spec change, a requeue after an error), where
    // an instant off by the rounding to seconds would show.
    let gap = prop_oneof![1i128..3_000_000_000, 1i128..20_000_000_000];
    prop::collection::vec((gap, 1i32..8, 1i32..8), len)
}

fn start() -> Time {
    Time::parse_rfc3339("2026-03-01T10:00:00.25Z").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn a_restored_memory_never_decides_further_from_the_current_size(
        how in stabilization(),
        before in syncs(1..40),
        downtime in 0i128..60_000_000_000,
        after in syncs(1..12),
    ) {
        let mut now = start();
        let mut memory: Vec<Recommendation> = Vec::new();
        for (gap, desired, current) in &before {
            now = now + Duration::from_nanos(*gap);
            how.run(&mut memory, *desired, *current, now);
        }
        // The restart: only the runs survive.
        let runs = recommendation_runs(&memory, now, how.horizon());
        now = now + Duration::from_nanos(downtime);
        let mut restored = recommendations_from_runs(&runs, now);
        for (i, (gap, desired, current)) in after.iter().enumerate() {
            if i > 0 {
                now = now + Duration::from_nanos(*gap);
            }
            let exact = how.run(&mut memory, *desired, *current, now);
            let from_runs = how.run(&mut restored, *desired, *current, now);
            match how {
                // Legacy stabilization only holds a scale-down: never lower.
                Stabilization::Legacy { .. } => prop_assert!(
                    from_runs >= exact,
                    "sync {i}: restored {from_runs} below upstream's {exact}"
                ),
                Stabilization::Behavior { .. } => {
                    let (lo, hi) = (exact.min(*current), exact.max(*current));
                    prop_assert!(
                        (lo..=hi).contains(&from_runs),
                        "sync {i}: restored {from_runs}, upstream's {exact}, current {current}"
                    );
                }
            }
        }
    }

    #[test]
    fn restoring_and_persisting_again_gives_the_same_runs(
        how in stabilization(),
        before in syncs(1..40),
        downtime in 0i128..60_000_000_000,
    ) {
        let mut now = start();
        let mut memory: Vec<Recommendation> = Vec::new();
        for (gap, desired, current) in &before {
            now = now + Duration::from_nanos(*gap);
            how.run(&mut memory, *desired, *current, now);
        }
        let runs = recommendation_runs(&memory, now, how.horizon());
        let later = now + Duration::from_nanos(downtime);
        let restored = recommendations_from_runs(&runs, later);
        // Persisted again right away (no downtime) or later with a horizon reaching back to
        // the second run's beginning: the same runs.
        let reach = runs.get(1).and_then(|r| r.since).map_or(how.horizon(), |since| {
            Duration::from_nanos((later.unix_nanos() - since.unix_nanos()).max(0) + how.horizon().as_nanos())
        });
        prop_assert_eq!(recommendation_runs(&restored, later, reach), runs);
    }

    #[test]
    fn an_unchanged_recommendation_leaves_the_runs_as_they_were(
        how in stabilization(),
        before in syncs(1..30),
        value in 1i32..8,
        jitter in prop::collection::vec(-2_000_000_000i128..2_000_000_000, 60),
    ) {
        let mut now = start();
        let mut memory: Vec<Recommendation> = Vec::new();
        for (gap, desired, current) in &before {
            now = now + Duration::from_nanos(*gap);
            how.run(&mut memory, *desired, *current, now);
        }
        // From here on the proposal is `value` at every sync, about every 15 s. The runs may
        // change when `value` begins, and while the slots of earlier values are reused (one
        // slot per sync); after that, never again.
        let slots = memory.len();
        let mut last = recommendation_runs(&memory, now, how.horizon());
        let mut changed_at = Vec::new();
        for (i, j) in jitter.iter().enumerate() {
            now = now + Duration::from_seconds(15) + Duration::from_nanos(*j);
            how.run(&mut memory, value, value, now);
            let runs = recommendation_runs(&memory, now, how.horizon());
            if runs != last {
                changed_at.push(i);
                last = runs;
            }
        }
        prop_assert!(changed_at.len() <= slots + 1, "changed at syncs {changed_at:?} with {slots} old slots");
        prop_assert!(
            changed_at.last().is_none_or(|i| *i < slots + 9),
            "changed at syncs {changed_at:?}: still changing after the old slots were reused"
        );
        // Once every earlier value has left its slots, one run remains.
        prop_assert_eq!(last.len(), 1);
    }
}

#[test]
fn a_run_that_ended_within_a_second_of_the_next_counts_until_its_last_recommendation_left() {
    let second = Time::parse_rfc3339("2026-03-01T10:00:00Z").unwrap();
    let at = |s: f64| second + Duration::from_nanos((s * 1e9) as i128);
    let how = Stabilization::Legacy { window: 60 };
    let mut memory = Vec::new();
    // High until 10.6 s, low from 10.9 s: the next run begins in the same second.
    for (t, desired) in [(0.0, 5), (5.0, 5), (10.6, 5), (10.9, 2)] {
        how.run(&mut memory, desired, 5, at(t));
    }
    let runs = recommendation_runs(&memory, at(10.9), how.horizon());
    // 60.3 s after the start of the window at 10.3 s: the 10.6 s recommendation is still in it.
    let now = at(70.3);
    let mut restored = recommendations_from_runs(&runs, now);
    let exact = how.run(&mut memory, 2, 5, now);
    assert_eq!(exact, 5, "upstream still holds the high recommendation");
    assert_eq!(
        how.run(&mut restored, 2, 5, now),
        5,
        "restored from {runs:?} as {restored:?}"
    );
}
