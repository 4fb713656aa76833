//! When a namespace's PodMetrics will next have new samples, learnt from the samples seen:
//! pure, shared by the batching source (how long a response stays the freshest) and the
//! operator's fresh-metrics poller (when to look again).
//!
//! metrics-server scrapes every pod of a namespace at once, once per resolution, and each sample
//! carries its `timestamp`, so the next sample is due at `newest + resolution`. It becomes
//! visible in the API some time after that (the scrape, metrics-server's storing, the LIST); the
//! time grows with the pods per scrape and the machine's load (seconds at 10,000 pods on 2
//! cores). [`Cadence`] learns that delay: a look that finds the sample shortens it a little, one
//! that misses lengthens it more, so looks settle just after samples become visible with a miss
//! now and then. Consecutive misses back off to one look per resolution, so a stalled metrics
//! pipeline costs no more than one LIST per resolution.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

/// The shortest time between two LISTs of one namespace.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// How much an anticipated poll that found its sample shortens the expected delay.
const SETTLE: Duration = Duration::from_millis(25);

/// How much an anticipated poll that missed lengthens it: with [`SETTLE`], about one miss in
/// ten anticipated polls once the delay has settled.
const BACK_OFF: Duration = Duration::from_millis(250);

/// When to poll one namespace for new samples, and whether a poll found them; pure.
#[derive(Debug, Clone, PartialEq)]
pub struct Cadence {
    /// The newest sample timestamp seen so far.
    newest: Option<Timestamp>,
    /// Expected time from a sample's timestamp to it being visible in the API.
    delay: Duration,
    /// Polls in a row that expected a new sample and found none.
    misses: u32,
}

impl Default for Cadence {
    fn default() -> Self {
        Cadence {
            newest: None,
            delay: Duration::from_millis(500),
            misses: 0,
        }
    }
}

/// What one poll found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polled {
    /// Samples newer than any seen before appeared (never on the first poll: everything is
    /// reconciled at start anyway).
    pub fresh: bool,
    /// When to poll next.
    pub next: Timestamp,
}

impl Cadence {
    /// The expected delay from a sample's timestamp to its visibility, as learnt so far.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// Records a poll made at `fetched_at` whose newest sample is `newest` (`None`: no samples
    /// or the request failed), on a metrics pipeline producing samples every `resolution`.
    pub fn polled(
        &mut self,
        fetched_at: Timestamp,
        newest: Option<Timestamp>,
        resolution: Duration,
    ) -> Polled {
        let add = |t: Timestamp, d: Duration| t.checked_add(d).unwrap_or(Timestamp::MAX);
        let resolution = resolution.max(MIN_INTERVAL);
        let expected = self.newest.map(|n| add(n, resolution));
        let fresh = match (self.newest, newest) {
            (Some(seen), Some(now)) => now > seen,
            _ => false,
        };
        if fresh {
            if self.misses > 0 {
                self.delay = (self.delay + BACK_OFF).min(resolution);
            } else {
                self.delay = self.delay.saturating_sub(SETTLE);
            }
            self.misses = 0;
        } else if expected.is_some_and(|e| fetched_at >= e) {
            self.misses = self.misses.saturating_add(1);
        }
        if newest.is_some() {
            self.newest = self.newest.max(newest);
        }
        let floor = add(fetched_at, MIN_INTERVAL);
        let next = match self.newest {
            None => add(fetched_at, resolution),
            Some(n) if self.misses == 0 => add(n, resolution + self.delay),
            Some(_) => {
                // The sample is late: retry soon, then less and less often, at most once per
                // resolution while the pipeline stays stalled.
                let backoff =
                    MIN_INTERVAL.saturating_mul(1u32 << self.misses.min(8).saturating_sub(1));
                add(fetched_at, backoff.min(resolution))
            }
        };
        Polled {
            fresh,
            next: next.clamp(floor, add(fetched_at, resolution + self.delay)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(1_800_000_000_000 + ms).expect("in range")
    }

    const RES: Duration = Duration::from_secs(5);

    #[test]
    fn the_first_poll_is_never_fresh_and_the_next_comes_after_one_resolution_and_the_delay() {
        let mut c = Cadence::default();
        let p = c.polled(at(200), Some(at(0)), RES);
        assert!(!p.fresh);
        assert_eq!(p.next, at(5_500));
    }

    #[test]
    fn a_newer_sample_is_fresh_and_an_anticipated_hit_shortens_the_delay() {
        let mut c = Cadence::default();
        c.polled(at(200), Some(at(0)), RES);
        let p = c.polled(at(5_500), Some(at(5_000)), RES);
        assert!(p.fresh);
        assert_eq!(c.delay(), Duration::from_millis(475));
        assert_eq!(p.next, at(10_475));
        // The same sample again is not fresh.
        let again = c.polled(at(6_600), Some(at(5_000)), RES);
        assert!(!again.fresh);
    }

    #[test]
    fn a_miss_retries_after_a_second_and_lengthens_the_delay_once_found() {
        let mut c = Cadence::default();
        c.polled(at(200), Some(at(0)), RES);
        let miss = c.polled(at(5_500), Some(at(0)), RES);
        assert!(!miss.fresh);
        assert_eq!(miss.next, at(6_500));
        let hit = c.polled(at(6_500), Some(at(5_000)), RES);
        assert!(hit.fresh);
        assert_eq!(c.delay(), Duration::from_millis(750));
        assert_eq!(hit.next, at(10_750));
    }

    #[test]
    fn the_delay_settles_where_about_one_poll_in_ten_misses() {
        // Samples every 5 s become visible 300 ms after their timestamp; each poll sees
        // the sample if it comes at or after that.
        let visible_after = Duration::from_millis(300);
        let mut c = Cadence::default();
        let mut now = at(0);
        let (mut polls, mut fresh, mut worst) = (0u32, 0u32, Duration::ZERO);
        c.polled(now, None, RES);
        let mut next = at(100);
        for _ in 0..2_000 {
            now = next;
            let ms = now.as_millisecond() - at(0).as_millisecond();
            let cycles = (ms - visible_after.as_millis() as i64).div_euclid(5_000);
            let newest = (cycles >= 0).then(|| at(cycles * 5_000));
            let p = c.polled(now, newest, RES);
            polls += 1;
            if p.fresh {
                fresh += 1;
                let visible = newest.expect("fresh means a sample") + visible_after;
                worst = worst.max(now.duration_since(visible).unsigned_abs());
            }
            assert!(p.next.duration_since(now).unsigned_abs() >= MIN_INTERVAL);
            next = p.next;
        }
        let per_sample = f64::from(polls) / f64::from(fresh);
        assert!(per_sample <= 1.2, "{polls} polls for {fresh} samples");
        assert!(
            worst <= Duration::from_millis(1_300),
            "worst reaction {worst:?}"
        );
    }

    #[test]
    fn a_stalled_pipeline_backs_off_to_one_poll_per_resolution() {
        let mut c = Cadence::default();
        c.polled(at(0), Some(at(0)), RES);
        let mut now = at(5_500);
        let mut gaps = Vec::new();
        for _ in 0..8 {
            let p = c.polled(now, Some(at(0)), RES);
            assert!(!p.fresh);
            gaps.push(p.next.duration_since(now).unsigned_abs().as_secs());
            now = p.next;
        }
        assert_eq!(gaps, [1, 2, 4, 5, 5, 5, 5, 5]);
    }

    #[test]
    fn no_samples_poll_once_per_resolution() {
        let mut c = Cadence::default();
        let p = c.polled(at(0), None, RES);
        assert_eq!(p.next, at(5_000));
        let p = c.polled(at(5_000), None, RES);
        assert!(!p.fresh);
        assert_eq!(p.next, at(10_000));
    }
}
