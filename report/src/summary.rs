//! What a comparison reports per side (replica-seconds, overload, scale
//! events, reaction to each demand step, settling, peak) and between two
//! sides (per-sync divergence), computed from [`Timeline`]s.

use crate::demand::Step;
use crate::timeline::Timeline;

/// The autoscaler configuration the summary judges against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SummaryConfig {
    /// The CPU utilization target, percent of request.
    pub target_utilization_percent: f64,
    /// The autoscaler's tolerance (0.1 upstream): utilization above
    /// target × (1 + tolerance) counts as overload, as it would trigger a scale-up.
    pub tolerance: f64,
    /// A step's reaction has settled when the replicas then stay unchanged
    /// this long (or until the next step or the end, if that is this long).
    pub settle_hold_seconds: f64,
}

impl SummaryConfig {
    /// Target and tolerance, with a 30 s settle hold (longer than two HPA
    /// syncs at the local cluster's 5 s and than one 15 s default sync).
    pub fn new(target_utilization_percent: f64, tolerance: f64) -> Self {
        Self {
            target_utilization_percent,
            tolerance,
            settle_hold_seconds: 30.0,
        }
    }

    /// Utilization above which a sample counts as overloaded, percent.
    pub fn overload_threshold_percent(&self) -> f64 {
        self.target_utilization_percent * (1.0 + self.tolerance)
    }
}

/// How one side reacted to one demand step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReaction {
    /// The step.
    pub step: Step,
    /// Seconds from the step to the first sample whose replicas differ from
    /// those just before the step; `None` when they never changed before the
    /// next step (or the end).
    pub first_scale_seconds: Option<f64>,
    /// Seconds from the step to the last replica change before the next step,
    /// when the replicas then held for [`SummaryConfig::settle_hold_seconds`];
    /// 0 when they never changed; `None` when they were still moving.
    pub settle_seconds: Option<f64>,
}

/// One side's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Seconds from the first to the last sample.
    pub duration_seconds: f64,
    /// ∫ replicas dt (each sample's replicas held until the next sample).
    pub replica_seconds: f64,
    /// Time with per-pod utilization above [`SummaryConfig::overload_threshold_percent`].
    pub overload_seconds: f64,
    /// Number of replica changes.
    pub scale_events: usize,
    /// Largest replicas seen (0 for an empty timeline).
    pub max_replicas: i32,
    /// One entry per step, in order.
    pub steps: Vec<StepReaction>,
}

/// Computes one side's [`Summary`] from its timeline and the trace's steps.
pub fn summarize(timeline: &Timeline, steps: &[Step], config: &SummaryConfig) -> Summary {
    let samples = timeline.samples();
    let threshold = config.overload_threshold_percent();
    let mut replica_seconds = 0.0;
    let mut overload_seconds = 0.0;
    for w in samples.windows(2) {
        let dt = w[1].seconds - w[0].seconds;
        replica_seconds += f64::from(w[0].replicas) * dt;
        if w[0].utilization_percent.is_some_and(|u| u > threshold) {
            overload_seconds += dt;
        }
    }
    let changes: Vec<f64> = samples
        .windows(2)
        .filter(|w| w[0].replicas != w[1].replicas)
        .map(|w| w[1].seconds)
        .collect();
    let end = samples.last().map_or(0.0, |s| s.seconds);
    let reactions = steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let until = steps.get(i + 1).map_or(end, |n| n.seconds);
            let in_window: Vec<f64> = changes
                .iter()
                .copied()
                .filter(|&c| c > step.seconds && c <= until)
                .collect();
            let first_scale_seconds = in_window.first().map(|c| c - step.seconds);
            let settle_seconds = match in_window.last() {
                None => Some(0.0),
                Some(&last) if until - last >= config.settle_hold_seconds => {
                    Some(last - step.seconds)
                }
                Some(_) => None,
            };
            StepReaction {
                step: *step,
                first_scale_seconds,
                settle_seconds,
            }
        })
        .collect();
    Summary {
        duration_seconds: timeline.duration_seconds(),
        replica_seconds,
        overload_seconds,
        scale_events: changes.len(),
        max_replicas: samples.iter().map(|s| s.replicas).max().unwrap_or(0),
        steps: reactions,
    }
}

/// How long one side took to act on a step, counted from the moment the
/// first metrics sample taken after the step was visible (the earliest an
/// autoscaler could have known), rather than from the step itself.
///
/// The step counts from when the load driver applied it (the first timeline sample showing the
/// step's demand), which a driver that waits for the gap between scrapes makes later than the
/// trace's instant; a sample counts as taken after it when its timestamp is at most a second
/// before (metrics timestamps are truncated to whole seconds), so a sample scraped before the
/// step but visible only after it is not taken for the first that could show it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricsReaction {
    /// The step.
    pub step: Step,
    /// Run-clock seconds when the driver had applied the step (its first timeline sample with
    /// the step's demand; the trace's instant when none shows it).
    pub applied_seconds: f64,
    /// Run-clock seconds when a sample taken after the step was first seen (`None`: none
    /// before the next step).
    pub sample_visible_seconds: Option<f64>,
    /// Run-clock seconds of the first replica change after the step.
    pub first_scale_seconds: Option<f64>,
}

impl MetricsReaction {
    /// Seconds from the new sample being visible to the first replica change.
    pub fn reaction_seconds(&self) -> Option<f64> {
        Some(self.first_scale_seconds? - self.sample_visible_seconds?)
    }
}

/// For each step, when the driver applied it, when the first metrics sample taken after that
/// became visible (from [`crate::Sample::metrics_seconds`]) and when the replicas first
/// changed, all on the run clock, within the step's window (until the next step or the end).
pub fn metrics_reactions(timeline: &Timeline, steps: &[Step]) -> Vec<MetricsReaction> {
    let samples = timeline.samples();
    let end = samples.last().map_or(0.0, |s| s.seconds);
    steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let until = steps.get(i + 1).map_or(end, |n| n.seconds);
            let applied_seconds = samples
                .iter()
                .filter(|s| s.seconds >= step.seconds && s.seconds <= until)
                .find(|s| (s.demand_millicores - step.to_millicores).abs() < 0.5)
                .map_or(step.seconds, |s| s.seconds);
            let before = timeline.at(applied_seconds);
            let in_window = samples
                .iter()
                .filter(move |s| s.seconds > applied_seconds && s.seconds <= until);
            let sample_visible_seconds = samples
                .iter()
                .filter(|s| s.seconds >= applied_seconds && s.seconds <= until)
                .find(|s| s.metrics_seconds.is_some_and(|m| m > applied_seconds - 1.0))
                .map(|s| s.seconds);
            let mut last = before.map(|s| s.replicas);
            let first_scale_seconds = in_window
                .into_iter()
                .find(|s| {
                    let changed = last.is_some_and(|r| r != s.replicas);
                    last = Some(s.replicas);
                    changed
                })
                .map(|s| s.seconds);
            MetricsReaction {
                step: *step,
                applied_seconds,
                sample_visible_seconds,
                first_scale_seconds,
            }
        })
        .collect()
}

/// One replica change and how long after the newest metrics sample it came.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChangeReaction {
    /// Run-clock seconds of the first timeline sample showing the new replicas.
    pub seconds: f64,
    /// The replicas before and after.
    pub from: i32,
    /// See `from`.
    pub to: i32,
    /// Seconds from the newest metrics sample (visible at the change) becoming visible to the
    /// change; `None` when no metrics sample was visible yet.
    pub after_sample_seconds: Option<f64>,
}

/// Every replica change of `timeline`, each with the time since the newest metrics sample it
/// could have been decided on became visible: the first timeline sample that showed that
/// metrics timestamp. Both are seen at the timeline's sampling granularity, so a change and a
/// new sample seen in the same tick count as a reaction of 0 to that sample.
pub fn change_reactions(timeline: &Timeline) -> Vec<ChangeReaction> {
    let samples = timeline.samples();
    let mut out = Vec::new();
    // (metrics timestamp, run-clock seconds it was first seen)
    let mut newest: Option<(f64, f64)> = None;
    let mut last: Option<i32> = None;
    for s in samples {
        if let Some(m) = s.metrics_seconds
            && newest.is_none_or(|(seen, _)| m > seen)
        {
            newest = Some((m, s.seconds));
        }
        if let Some(from) = last
            && from != s.replicas
        {
            out.push(ChangeReaction {
                seconds: s.seconds,
                from,
                to: s.replicas,
                after_sample_seconds: newest.map(|(_, visible)| s.seconds - visible),
            });
        }
        last = Some(s.replicas);
    }
    out
}

/// The `q`-quantile (0..=1) of `values` by the nearest-rank method (no interpolation: every
/// figure reported is one that was measured); `None` when empty.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Both sides' replicas at one sync instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyncComparison {
    /// The instant, run-clock seconds.
    pub seconds: f64,
    /// Side A's replicas then.
    pub a: i32,
    /// Side B's replicas then.
    pub b: i32,
    /// Whether they count as agreeing (within the skew, see [`divergence`]).
    pub agree: bool,
}

/// How two sides' replica decisions differ, sync by sync.
#[derive(Debug, Clone, PartialEq)]
pub struct Divergence {
    /// The skew allowed, seconds.
    pub skew_seconds: f64,
    /// Every compared instant.
    pub comparisons: Vec<SyncComparison>,
}

impl Divergence {
    /// Instants compared.
    pub fn syncs(&self) -> usize {
        self.comparisons.len()
    }

    /// Instants where the sides disagree (beyond the skew).
    pub fn differing(&self) -> usize {
        self.comparisons.iter().filter(|c| !c.agree).count()
    }

    /// Largest |A − B| at any instant (skew not applied).
    pub fn max_abs_difference(&self) -> i32 {
        self.comparisons
            .iter()
            .map(|c| (c.a - c.b).abs())
            .max()
            .unwrap_or(0)
    }

    /// Mean |A − B| over the instants (skew not applied); 0 when none.
    pub fn mean_abs_difference(&self) -> f64 {
        if self.comparisons.is_empty() {
            return 0.0;
        }
        let sum: i32 = self.comparisons.iter().map(|c| (c.a - c.b).abs()).sum();
        f64::from(sum) / self.comparisons.len() as f64
    }

    /// The first instant where the sides disagree.
    pub fn first_difference(&self) -> Option<&SyncComparison> {
        self.comparisons.iter().find(|c| !c.agree)
    }
}

/// Instants `from`, `from + period`, … up to `to` inclusive (empty when
/// `period` is not positive).
pub fn sync_instants(from: f64, to: f64, period: f64) -> Vec<f64> {
    if period <= 0.0 || !period.is_finite() {
        return Vec::new();
    }
    let n = ((to - from) / period).floor();
    if n < 0.0 || !n.is_finite() {
        return Vec::new();
    }
    (0..=n as usize).map(|k| from + period * k as f64).collect()
}

/// Compares the replicas of `a` and `b` at each instant. Two autoscalers
/// deciding the same thing still write it at slightly different moments (each
/// has its own sync timer), so with `skew_seconds` > 0 an instant `t` agrees
/// when B held A's value at some moment in [t − skew, t + skew], i.e. when B
/// shifted by at most ±skew matches A there (either side may be the later one).
/// Instants before either timeline's first sample are skipped.
pub fn divergence(a: &Timeline, b: &Timeline, instants: &[f64], skew_seconds: f64) -> Divergence {
    let comparisons = instants
        .iter()
        .filter_map(|&t| {
            let (va, vb) = (a.at(t)?.replicas, b.at(t)?.replicas);
            let agree = va == vb || held_within(b, t, skew_seconds, va);
            Some(SyncComparison {
                seconds: t,
                a: va,
                b: vb,
                agree,
            })
        })
        .collect();
    Divergence {
        skew_seconds,
        comparisons,
    }
}

/// Whether `timeline` had `replicas` at some moment in [t − skew, t + skew].
fn held_within(timeline: &Timeline, t: f64, skew: f64, replicas: i32) -> bool {
    if skew <= 0.0 {
        return false;
    }
    let at_start = timeline
        .at(t - skew)
        .is_some_and(|s| s.replicas == replicas);
    at_start
        || timeline
            .samples()
            .iter()
            .filter(|s| s.seconds > t - skew && s.seconds <= t + skew)
            .any(|s| s.replicas == replicas)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::Sample;

    /// One sample per second with the given replicas and utilization.
    fn timeline(points: &[(i32, f64)]) -> Timeline {
        points
            .iter()
            .enumerate()
            .map(|(i, &(replicas, u))| Sample {
                seconds: i as f64,
                replicas,
                ready_replicas: replicas,
                utilization_percent: Some(u),
                ..Sample::default()
            })
            .collect()
    }

    fn step(seconds: f64) -> Step {
        Step {
            seconds,
            from_millicores: 100.0,
            to_millicores: 400.0,
        }
    }

    #[test]
    fn replica_seconds_hold_each_sample_until_the_next() {
        let t = timeline(&[(1, 0.0), (3, 0.0), (3, 0.0), (2, 0.0)]);
        let s = summarize(&t, &[], &SummaryConfig::new(50.0, 0.1));
        assert_eq!(s.replica_seconds, 1.0 + 3.0 + 3.0);
        assert_eq!(s.duration_seconds, 3.0);
        assert_eq!(s.max_replicas, 3);
        assert_eq!(s.scale_events, 2);
    }

    #[test]
    fn overload_counts_only_utilization_above_target_times_one_plus_tolerance() {
        // Target 50 %, tolerance 0.1: 55 % is the threshold and is not overload.
        let t = timeline(&[(1, 55.0), (1, 55.1), (1, 90.0), (1, 40.0), (1, 99.0)]);
        let s = summarize(&t, &[], &SummaryConfig::new(50.0, 0.1));
        assert_eq!(s.overload_seconds, 2.0);
    }

    #[test]
    fn first_scale_and_settle_are_measured_from_each_step() {
        let mut points = vec![(1, 0.0); 10];
        points.extend([(3, 0.0); 5]); // scale at 10 s
        points.extend([(4, 0.0); 45]); // and at 15 s, then hold to 59 s
        points.extend([(4, 0.0); 10]); // second step at 60 s: no change until 69 s
        let t = timeline(&points);
        let cfg = SummaryConfig::new(50.0, 0.1);
        let s = summarize(&t, &[step(4.0), step(60.0)], &cfg);
        assert_eq!(s.steps[0].first_scale_seconds, Some(6.0));
        assert_eq!(s.steps[0].settle_seconds, Some(11.0));
        assert_eq!(s.steps[1].first_scale_seconds, None);
        assert_eq!(s.steps[1].settle_seconds, Some(0.0));
    }

    #[test]
    fn a_step_still_moving_at_the_end_has_not_settled() {
        let t = timeline(&[(1, 0.0), (1, 0.0), (2, 0.0), (3, 0.0)]);
        let s = summarize(&t, &[step(0.5)], &SummaryConfig::new(50.0, 0.1));
        assert_eq!(s.steps[0].first_scale_seconds, Some(1.5));
        assert_eq!(s.steps[0].settle_seconds, None);
    }

    #[test]
    fn reaction_is_counted_from_the_first_newer_metrics_sample() {
        // Samples scraped at 0 and 10 (visible at 2 and 12); the step is at 5;
        // replicas change at 14.
        let t: Timeline = (0..20)
            .map(|i| Sample {
                seconds: f64::from(i),
                replicas: if i >= 14 { 3 } else { 1 },
                metrics_seconds: match i {
                    0..2 => None,
                    2..12 => Some(0.0),
                    _ => Some(10.0),
                },
                ..Sample::default()
            })
            .collect();
        let r = metrics_reactions(&t, &[step(5.0)]);
        assert_eq!(r[0].sample_visible_seconds, Some(12.0));
        assert_eq!(r[0].first_scale_seconds, Some(14.0));
        assert_eq!(r[0].reaction_seconds(), Some(2.0));
        // No newer sample, no reaction time.
        let r = metrics_reactions(&t, &[step(15.0)]);
        assert_eq!(
            (r[0].sample_visible_seconds, r[0].reaction_seconds()),
            (None, None)
        );
    }

    #[test]
    fn reaction_counts_from_a_sample_taken_after_the_driver_applied_the_step() {
        // The trace steps at 30 s; the driver, waiting for the gap between scrapes, applies
        // it at 33 s. The sample scraped at 29 s is visible only at 31 s and cannot show the
        // step; the one scraped at 39 s is visible at 40 s; replicas change at 40.5 s.
        let t: Timeline = (0..100)
            .map(|i| {
                let seconds = f64::from(i) * 0.5;
                Sample {
                    seconds,
                    demand_millicores: if seconds >= 33.0 { 400.0 } else { 100.0 },
                    replicas: if seconds >= 40.5 { 3 } else { 1 },
                    metrics_seconds: Some(if seconds >= 40.0 {
                        39.0
                    } else if seconds >= 31.0 {
                        29.0
                    } else {
                        19.0
                    }),
                    ..Sample::default()
                }
            })
            .collect();
        let r = metrics_reactions(&t, &[step(30.0)]);
        assert_eq!(r[0].applied_seconds, 33.0);
        assert_eq!(r[0].sample_visible_seconds, Some(40.0));
        assert_eq!(r[0].reaction_seconds(), Some(0.5));
    }

    #[test]
    fn sync_instants_cover_the_range_inclusively() {
        assert_eq!(sync_instants(2.0, 12.0, 5.0), vec![2.0, 7.0, 12.0]);
        assert!(sync_instants(2.0, 1.0, 5.0).is_empty());
        assert!(sync_instants(0.0, 10.0, 0.0).is_empty());
    }

    #[test]
    fn identical_timelines_never_diverge() {
        let t = timeline(&[(1, 0.0), (2, 0.0), (4, 0.0), (4, 0.0)]);
        let d = divergence(&t, &t, &[0.0, 1.0, 2.0, 3.0], 0.0);
        assert_eq!(
            (d.syncs(), d.differing(), d.max_abs_difference()),
            (4, 0, 0)
        );
    }

    #[test]
    fn a_lag_within_the_skew_agrees_and_beyond_it_differs() {
        // B does what A does, two seconds later.
        let a = timeline(&[(1, 0.0), (1, 0.0), (5, 0.0), (5, 0.0), (5, 0.0), (5, 0.0)]);
        let b = timeline(&[(1, 0.0), (1, 0.0), (1, 0.0), (1, 0.0), (5, 0.0), (5, 0.0)]);
        let instants = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0];
        let strict = divergence(&a, &b, &instants, 0.0);
        assert_eq!(strict.differing(), 2);
        assert_eq!(strict.first_difference().map(|c| c.seconds), Some(2.0));
        assert_eq!(strict.max_abs_difference(), 4);
        assert!((strict.mean_abs_difference() - 8.0 / 6.0).abs() < 1e-9);
        assert_eq!(divergence(&a, &b, &instants, 2.0).differing(), 0);
        assert_eq!(divergence(&a, &b, &instants, 1.0).differing(), 1);
    }

    #[test]
    fn different_decisions_differ_whatever_the_skew() {
        let a = timeline(&[(1, 0.0), (4, 0.0), (4, 0.0), (4, 0.0)]);
        let b = timeline(&[(1, 0.0), (3, 0.0), (3, 0.0), (3, 0.0)]);
        assert_eq!(divergence(&a, &b, &[1.0, 2.0, 3.0], 1.0).differing(), 3);
    }

    #[test]
    fn each_change_counts_from_when_the_newest_sample_before_it_became_visible() {
        // Samples at 0 (visible at 1) and 5 (visible at 6); changes at 3 and at 7.
        let t: Timeline = (0..10)
            .map(|i| Sample {
                seconds: f64::from(i),
                replicas: match i {
                    0..3 => 1,
                    3..7 => 2,
                    _ => 4,
                },
                metrics_seconds: match i {
                    0 => None,
                    1..6 => Some(0.0),
                    _ => Some(5.0),
                },
                ..Sample::default()
            })
            .collect();
        let r = change_reactions(&t);
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].from, r[0].to, r[0].after_sample_seconds),
            (1, 2, Some(2.0))
        );
        assert_eq!(
            (r[1].from, r[1].to, r[1].after_sample_seconds),
            (2, 4, Some(1.0))
        );
    }

    #[test]
    fn quantiles_are_measured_values_by_nearest_rank() {
        let v = [4.0, 1.0, 3.0, 2.0, 10.0];
        assert_eq!(quantile(&v, 0.5), Some(3.0));
        assert_eq!(quantile(&v, 0.9), Some(10.0));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
