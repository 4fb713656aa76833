//! Reconciling when fresh resource metrics appear, not only when the sync timer fires
//! (`--reconcile-on-fresh-metrics`).
//!
//! The built-in HPA decides on its timer: a new sample waits up to a whole sync period for the
//! next sync. metrics-server scrapes every pod of a namespace at once, once per resolution, and
//! each sample carries its `timestamp` and `window`, so the next sample's arrival can be
//! anticipated: one namespace-wide LIST shortly after `newest timestamp + resolution` usually
//! finds it. When it does, every AutoScaler of that namespace that reads resource metrics is
//! reconciled at once; the reconcile reads the same shared response (batching mode), so it
//! decides on exactly the sample that triggered it.
//!
//! Requests: at most one LIST per namespace per second ([`MIN_INTERVAL`]); on average one per
//! resolution plus the misses. Reconciles reuse the poller's response until its next poll
//! ([`PodMetricsSource::lead`]), so they add no LISTs while a late sample is awaited, however
//! many AutoScalers the namespace has. "Shortly after" is learnt per namespace ([`Cadence`]): each
//! anticipated poll that finds the sample shortens the expected delay a little, each one that
//! misses lengthens it more, so the polls settle just after the samples become visible with a
//! miss now and then (a miss costs one extra LIST and at most a second of reaction).
//! Consecutive misses back off to one poll per resolution, so a stalled metrics pipeline costs
//! no more than the timer does.
//!
//! Custom, object and external metrics have no freshness signal (their APIs give a timestamp
//! per value but no cadence, and adapters compute them on request), so AutoScalers that read
//! only those stay on the timer. The timer stays for everyone: stabilization windows, policies
//! and readiness are time-based, and a reconcile requeues itself one sync period later.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use tidal_crds::AutoScaler;
use tidal_metrics_client::{PodMetricsSource, batch};

use crate::leader::Leadership;

/// The shortest time between two LISTs of one namespace.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// How much an anticipated poll that found its sample shortens the expected delay.
const SETTLE: Duration = Duration::from_millis(25);

/// How much an anticipated poll that missed lengthens it: with [`SETTLE`], about one miss in
/// ten anticipated polls once the delay has settled.
const BACK_OFF: Duration = Duration::from_millis(250);

/// How long after its planned next poll reconciles still take the poller's word that nothing
/// newer is visible ([`PodMetricsSource::lead`]).
const LEAD_SLACK: Duration = MIN_INTERVAL;

/// How often the set of namespaces and their AutoScalers is re-read from the cache. A new
/// AutoScaler is reconciled at once anyway (its creation is a spec change); this only decides
/// how soon fresh samples also trigger it.
const REFRESH: Duration = Duration::from_secs(5);

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

/// Until when reconciles may reuse the response a poll got, instead of LISTing the same
/// samples again while a late sample is awaited: the poller's next poll, plus slack for a
/// poller that wakes late on a busy machine. Only when the poll found samples: a namespace
/// without any (a metrics-server just restarted, new pods) is polled only once per
/// resolution, and its reconciles must see the first samples as soon as they are there.
pub fn lead_until(newest: Option<Timestamp>, polled: &Polled) -> Option<Timestamp> {
    newest?;
    Some(
        polled
            .next
            .checked_add(LEAD_SLACK)
            .unwrap_or(Timestamp::MAX),
    )
}

/// Whether fresh PodMetrics samples bear on `obj`'s decision: it reads a Resource or
/// ContainerResource metric (no metrics at all means the default CPU utilization).
pub fn reads_resource_metrics(obj: &AutoScaler) -> bool {
    match obj.spec.metrics.as_deref() {
        None | Some([]) => true,
        Some(metrics) => metrics
            .iter()
            .any(|m| m.type_ == "Resource" || m.type_ == "ContainerResource"),
    }
}

/// The AutoScalers reading resource metrics, per namespace, shared by the pollers.
type Targets = Arc<std::sync::RwLock<HashMap<String, Vec<ObjectRef<AutoScaler>>>>>;

/// The AutoScalers reading resource metrics, per namespace.
fn by_namespace(store: &Store<AutoScaler>) -> HashMap<String, Vec<ObjectRef<AutoScaler>>> {
    let mut map: HashMap<String, Vec<ObjectRef<AutoScaler>>> = HashMap::new();
    for obj in store.state() {
        if reads_resource_metrics(&obj)
            && let Some(ns) = obj.namespace()
        {
            map.entry(ns).or_default().push(ObjectRef::from_obj(&obj));
        }
    }
    map
}

/// Polls each namespace with AutoScalers reading resource metrics, and sends those AutoScalers
/// to `trigger` when new samples appear. Only the leader polls (followers make no metrics
/// calls). Runs until `trigger`'s receiver is gone.
pub async fn run(
    store: Store<AutoScaler>,
    source: Arc<PodMetricsSource>,
    leadership: Leadership,
    polls: prometheus::IntCounterVec,
    trigger: UnboundedSender<ObjectRef<AutoScaler>>,
) {
    let targets: Targets = Arc::default();
    let mut pollers: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut tick = tokio::time::interval(REFRESH);
    while !trigger.is_closed() {
        tick.tick().await;
        let now = by_namespace(&store);
        let wanted: HashSet<String> = now.keys().cloned().collect();
        *targets
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = now;
        pollers.retain(|ns, task| {
            let keep = wanted.contains(ns) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        for ns in wanted {
            if pollers.contains_key(&ns) {
                continue;
            }
            let poller = poll_namespace(
                ns.clone(),
                source.clone(),
                leadership.clone(),
                polls.clone(),
                targets.clone(),
                trigger.clone(),
            );
            pollers.insert(ns, tokio::spawn(poller));
        }
    }
    for task in pollers.values() {
        task.abort();
    }
}

async fn poll_namespace(
    namespace: String,
    source: Arc<PodMetricsSource>,
    leadership: Leadership,
    polls: prometheus::IntCounterVec,
    targets: Targets,
    trigger: UnboundedSender<ObjectRef<AutoScaler>>,
) {
    let config = source.batching_config();
    let mut cadence = Cadence::default();
    loop {
        if !leadership.is_leader() {
            // A new term starts from scratch: the samples seen before may be long gone.
            cadence = Cadence::default();
            tokio::time::sleep(MIN_INTERVAL).await;
            continue;
        }
        let result = source.namespace_snapshot(&namespace).await;
        let fetched_at = Timestamp::now();
        let (newest, resolution) = match &result {
            Ok(snapshot) => (
                snapshot.pods.iter().map(|p| p.timestamp).max(),
                batch::resolution(snapshot, &config),
            ),
            Err(_) => (None, config.resolution.unwrap_or(batch::DEFAULT_RESOLUTION)),
        };
        let polled = cadence.polled(fetched_at, newest, resolution);
        if let Some(until) = lead_until(newest, &polled) {
            source.lead(&namespace, until).await;
        }
        let result = match (&result, polled.fresh) {
            (Err(_), _) => "error",
            (Ok(_), true) => "fresh",
            (Ok(_), false) => "unchanged",
        };
        polls.with_label_values(&[result]).inc();
        if polled.fresh {
            let due = targets
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&namespace)
                .cloned()
                .unwrap_or_default();
            tracing::debug!(namespace, autoscalers = due.len(), newest = ?newest, delay = ?cadence.delay(), "fresh pod metrics");
            for obj in due {
                if trigger.unbounded_send(obj).is_err() {
                    return;
                }
            }
        }
        let now = Timestamp::now();
        let wait = if polled.next > now {
            polled.next.duration_since(now).unsigned_abs()
        } else {
            Duration::ZERO
        };
        tokio::time::sleep(wait).await;
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

    #[test]
    fn reconciles_take_the_pollers_word_only_when_it_found_samples() {
        let polled = Polled {
            fresh: false,
            next: at(10_000),
        };
        assert_eq!(lead_until(Some(at(0)), &polled), Some(at(11_000)));
        assert_eq!(lead_until(None, &polled), None, "no samples: no lead");
    }

    #[test]
    fn only_autoscalers_reading_resource_metrics_are_triggered() {
        let with = |metrics: serde_json::Value| -> AutoScaler {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "autoscaling.tidal.dev/v1alpha1", "kind": "AutoScaler",
                "metadata": {"name": "a", "namespace": "shop"},
                "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "a"}, "maxReplicas": 3,
                         "metrics": metrics}
            }))
            .expect("autoscaler")
        };
        assert!(reads_resource_metrics(&with(serde_json::json!([]))));
        assert!(reads_resource_metrics(&with(serde_json::json!([
            {"type": "External", "external": {"metric": {"name": "q"}, "target": {"type": "Value", "value": "1"}}},
            {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app",
                "target": {"type": "Utilization", "averageUtilization": 50}}}
        ]))));
        assert!(!reads_resource_metrics(&with(serde_json::json!([
            {"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {"type": "AverageValue", "averageValue": "1"}}}
        ]))));
    }
}
