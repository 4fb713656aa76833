//! When metrics-server scrapes, so load drivers can change usage between
//! scrapes rather than across one.
//!
//! kwok reports the usage a pod's annotation holds at the instant of the
//! scrape. A driver sets a new per-pod usage with one PATCH per pod; when a
//! scrape lands in the middle of those patches, the sample mixes old and new
//! usage (say 2 of 8 pods already at the lower value) and an autoscaler
//! recommends a size that neither demand calls for. Two sides driven by the
//! same trace then get different samples for that resolution, which the
//! agreement comparison would read as a different decision. Holding usage
//! changes back for the last seconds before the next expected scrape makes
//! every sample a snapshot of one tick: both sides see the same per-pod
//! usage for the same demand and Ready count.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;

/// Time after a seen scrape timestamp before a change may start. The
/// metrics API gives timestamps in whole seconds, truncated, so the scrape
/// itself was up to a second later; half a second more covers metrics-server
/// staggering its node scrapes (a few ms per node) and a loaded scheduler.
const SETTLE: Duration = Duration::from_millis(1500);

/// Time before the next expected scrape in which no change may start: a
/// driver tick lists the pods, patches them and kwok's informer must see the
/// patches, which takes well under a second on loopback but up to a couple
/// under a fully loaded CI machine.
const MARGIN: Duration = Duration::from_millis(3500);

/// The instant of the newest scrape seen, shared by every driver of a run.
#[derive(Debug, Clone)]
pub struct ScrapeClock {
    newest: Arc<Mutex<Option<Instant>>>,
    resolution: Duration,
}

impl ScrapeClock {
    /// A clock for metrics-server's `--metric-resolution`; it knows no scrape yet.
    pub fn new(resolution: Duration) -> Self {
        Self {
            newest: Arc::new(Mutex::new(None)),
            resolution,
        }
    }

    /// Records a PodMetrics sample timestamp (the instant kwok answered the scrape).
    pub fn observe(&self, timestamp: Timestamp) {
        let age_ms = Timestamp::now().as_millisecond() - timestamp.as_millisecond();
        let age = Duration::from_millis(u64::try_from(age_ms).unwrap_or(0));
        let at = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
        let mut newest = self.newest.lock().unwrap_or_else(PoisonError::into_inner);
        if newest.is_none_or(|n| at > n) {
            *newest = Some(at);
        }
    }

    /// Whether a usage change started `now` finishes before the next scrape.
    /// Before any scrape is seen there is nothing to align to, so it is open.
    pub fn open(&self, now: Instant) -> bool {
        let newest = *self.newest.lock().unwrap_or_else(PoisonError::into_inner);
        newest.is_none_or(|n| open_at(now.saturating_duration_since(n), self.resolution))
    }
}

/// Whether `since` the newest seen scrape falls in the open part of the
/// scrape cycle. Taken modulo the resolution, so scrapes not yet seen (the
/// sampler reads timestamps once a second) are predicted from the last one.
fn open_at(since: Duration, resolution: Duration) -> bool {
    if resolution <= SETTLE + MARGIN {
        return true; // no room to align in: never hold changes back
    }
    let phase = Duration::from_nanos(
        u64::try_from(since.as_nanos() % resolution.as_nanos()).unwrap_or(u64::MAX),
    );
    phase >= SETTLE && phase < resolution - MARGIN
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN: Duration = Duration::from_secs(10);

    fn at(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn changes_start_after_the_scrape_settles_and_stop_well_before_the_next() {
        assert!(!open_at(at(0), TEN));
        assert!(!open_at(at(1_499), TEN));
        assert!(open_at(at(1_500), TEN));
        assert!(open_at(at(6_499), TEN));
        assert!(!open_at(at(6_500), TEN));
        assert!(!open_at(at(9_999), TEN));
    }

    #[test]
    fn scrapes_not_yet_seen_are_predicted_from_the_last_one() {
        assert!(!open_at(at(11_200), TEN));
        assert!(open_at(at(13_000), TEN));
        assert!(!open_at(at(37_000), TEN));
    }

    #[test]
    fn a_resolution_too_short_to_align_in_never_holds_changes() {
        assert!(open_at(at(0), Duration::from_secs(4)));
    }

    #[test]
    fn a_clock_that_has_seen_no_scrape_is_open_and_one_that_has_follows_the_cycle() {
        let clock = ScrapeClock::new(TEN);
        let now = Instant::now();
        assert!(clock.open(now));
        clock.observe(Timestamp::now());
        assert!(!clock.open(Instant::now()), "just scraped: still settling");
        assert!(
            !clock.open(Instant::now() + at(1_000)),
            "the scrape may be a second later"
        );
        assert!(clock.open(Instant::now() + at(3_000)));
        assert!(!clock.open(Instant::now() + at(8_000)));
    }

    #[test]
    fn an_older_timestamp_does_not_move_the_clock_back() {
        let clock = ScrapeClock::new(TEN);
        clock.observe(Timestamp::now());
        clock.observe(Timestamp::now() - jiff_secs(3));
        assert!(!clock.open(Instant::now() + at(8_000)));
    }

    fn jiff_secs(s: i64) -> k8s_openapi::jiff::SignedDuration {
        k8s_openapi::jiff::SignedDuration::from_secs(s)
    }
}
