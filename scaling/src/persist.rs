//! The persisted form of the recommendation memory: runs of equal recommendations, so that a
//! steady state does not rewrite it at every sync.
//!
//! Upstream keeps one `(replicas, timestamp)` per sync and reuses the slots that left every
//! window; the decision itself keeps exactly that ([`crate::History`]). Persisting those points
//! as they are would change the status at every sync (a new timestamp each time), so every sync
//! would cost an API write even while nothing else changes. What is persisted instead is the
//! sequence of runs of equal values in time order, each with the instant it began:
//!
//! * a recommendation is in a stabilization window when its *latest* instant is (both windows
//!   look back from `now`); so a run is in a window exactly when its last recommendation is;
//! * restoring a run as lasting until the next run began, and the last run as lasting until the
//!   instant of the restore, can only add presence: every value that was in a window still is,
//!   for at least as long. Both windows only ever narrow the decision towards the current size
//!   when more values are present (the scale-down window takes the highest, the scale-up window
//!   the lowest), so the restored memory can delay a scale in either direction, never hasten
//!   one: by about the downtime (the last run counts as made until the restore, not until the
//!   crash), or by up to one window when no recommendation was being made before the restart
//!   (metrics failing, Paused: the last run's real end is not stored, to keep it unchanged).
//!   That keeps the guarantee a restart or fail-over gives: no scale-down before the window of
//!   the last high recommendation has passed, no scale-up before the scale-up window has;
//! * instants are stored in whole seconds (the Kubernetes `Time` format), rounded *up*, which
//!   again only prolongs the run before;
//! * the oldest run's beginning is never read (no run ends at it), so it is not stored at all;
//! * points older than the longest window ([`horizon`]) are left out: upstream keeps them until
//!   their slot is reused, but no window reads them. Reuse picks the *last* stale slot, so when
//!   more than one is stale (a window shorter than the sync period, or timing jitter) an old
//!   point can sit in a low slot for good while the newest slot is rewritten at every sync;
//!   counting such points would start a new run at every sync.
//!
//! The runs change only when the recommended value changes, or when the oldest run has left
//! the longest window; a sync that recommends the same size again leaves them as they were.
//! (A window lengthened later reads only what was persisted under the shorter one; until the
//! longer window has passed, a restart in that time may forget recommendations older than the
//! old window that upstream's memory would still hold in a stale slot.)

use crate::model::{AutoscalerSpec, Config, Recommendation};
use crate::normalize::BehaviorRules;
use crate::time::{Duration, Time};

/// A run of equal recommendations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecommendationRun {
    /// The recommended replicas.
    pub replicas: i32,
    /// When the run began, rounded up to a whole second; `None` for the oldest run.
    pub since: Option<Time>,
}

const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// `t` rounded up to a whole second.
pub fn ceil_to_second(t: Time) -> Time {
    let nanos = t.unix_nanos();
    let rem = nanos.rem_euclid(NANOS_PER_SECOND);
    if rem == 0 {
        t
    } else {
        Time::from_unix_nanos(nanos - rem + NANOS_PER_SECOND)
    }
}

/// How far back any stabilization window of `spec` under `config` reaches: the legacy
/// downscale window, or the longer of the behavior's two windows.
pub fn horizon(spec: &AutoscalerSpec, config: &Config) -> Duration {
    match &spec.behavior {
        None => config.downscale_stabilization,
        Some(behavior) => {
            let rules = BehaviorRules::with_defaults(behavior, config);
            Duration::from_seconds(i64::from(
                rules.up.window_seconds.max(rules.down.window_seconds),
            ))
        }
    }
}

/// The runs of equal values of the `recommendations` made within `horizon` of `now` (see
/// [`horizon`]), oldest first. Slot order does not matter: the points are taken in time order
/// (points at the same instant in slot order).
pub fn recommendation_runs(
    recommendations: &[Recommendation],
    now: Time,
    horizon: Duration,
) -> Vec<RecommendationRun> {
    // Inclusive, as the legacy window (`!before(cutoff)`); the behavior windows are exclusive.
    let cutoff = now - horizon;
    let mut points: Vec<&Recommendation> = recommendations
        .iter()
        .filter(|r| !r.timestamp.before(cutoff))
        .collect();
    points.sort_by_key(|r| r.timestamp);
    let mut runs: Vec<RecommendationRun> = Vec::new();
    for point in points {
        if runs.last().map(|r| r.replicas) != Some(point.replicas) {
            runs.push(RecommendationRun {
                replicas: point.replicas,
                since: Some(ceil_to_second(point.timestamp)),
            });
        }
    }
    if let Some(oldest) = runs.first_mut() {
        oldest.since = None;
    }
    runs
}

/// The recommendation memory restored from `runs` at `now`: each run becomes its first instant
/// (when stored) and the last instant before the next run began; the last run lasts until `now`.
/// [`recommendation_runs`] of the result at `now` gives `runs` back (for any horizon that reaches
/// back to the second run).
pub fn recommendations_from_runs(runs: &[RecommendationRun], now: Time) -> Vec<Recommendation> {
    let mut out = Vec::with_capacity(runs.len() * 2);
    for (i, run) in runs.iter().enumerate() {
        let end = match runs.get(i + 1) {
            // The next run began at `since`; this one's last point was strictly before it.
            Some(next) => next.since.map(|s| s - Duration::from_nanos(1)),
            None => Some(now),
        };
        if let Some(since) = run.since {
            out.push(Recommendation {
                replicas: run.replicas,
                timestamp: since,
            });
        }
        if let Some(end) = end.filter(|end| run.since.is_none_or(|since| end.after(since))) {
            out.push(Recommendation {
                replicas: run.replicas,
                timestamp: end,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Time {
        Time::UNIX_EPOCH + Duration::from_seconds(seconds)
    }

    fn rec(replicas: i32, t: Time) -> Recommendation {
        Recommendation {
            replicas,
            timestamp: t,
        }
    }

    #[test]
    fn instants_round_up_to_the_second() {
        assert_eq!(ceil_to_second(at(5)), at(5));
        assert_eq!(
            ceil_to_second(at(5) + Duration::from_nanos(1)),
            at(6),
            "rounded up, never down"
        );
        assert_eq!(ceil_to_second(at(-5) - Duration::from_nanos(1)), at(-5));
    }

    #[test]
    fn runs_follow_time_not_slot_order_and_forget_the_oldest_beginning() {
        let half = Duration::from_nanos(500_000_000);
        // Slot order as upstream's reuse leaves it: a new point in an old slot.
        let recs = [
            rec(4, at(60)),
            rec(5, at(15)),
            rec(5, at(30) + half),
            rec(3, at(45) + half),
            rec(3, at(75)),
        ];
        assert_eq!(
            recommendation_runs(&recs, at(75), Duration::from_seconds(60)),
            [
                RecommendationRun {
                    replicas: 5,
                    since: None
                },
                RecommendationRun {
                    replicas: 3,
                    since: Some(at(46))
                },
                RecommendationRun {
                    replicas: 4,
                    since: Some(at(60))
                },
                RecommendationRun {
                    replicas: 3,
                    since: Some(at(75))
                },
            ]
        );
    }

    #[test]
    fn a_restored_run_lasts_until_the_next_began_and_the_last_until_now() {
        let runs = [
            RecommendationRun {
                replicas: 5,
                since: None,
            },
            RecommendationRun {
                replicas: 3,
                since: Some(at(46)),
            },
        ];
        let restored = recommendations_from_runs(&runs, at(100));
        assert_eq!(
            restored,
            [
                rec(5, at(46) - Duration::from_nanos(1)),
                rec(3, at(46)),
                rec(3, at(100)),
            ]
        );
        assert_eq!(
            recommendation_runs(&restored, at(100), Duration::from_seconds(60)),
            runs
        );
    }

    #[test]
    fn points_older_than_every_window_are_left_out() {
        // A stale slot upstream has not reused yet, and the newest slot rewritten each sync.
        let recs = [rec(7, at(0)), rec(3, at(100))];
        let runs = recommendation_runs(&recs, at(100), Duration::from_seconds(60));
        assert_eq!(
            runs,
            [RecommendationRun {
                replicas: 3,
                since: None
            }]
        );
        // The window's own edge is inside it.
        let runs = recommendation_runs(&recs, at(60), Duration::from_seconds(60));
        assert_eq!(runs.len(), 2);
    }

    #[test]
    fn nothing_persisted_restores_nothing() {
        assert!(recommendation_runs(&[], at(1), Duration::from_seconds(1)).is_empty());
        assert!(recommendations_from_runs(&[], at(1)).is_empty());
    }
}
