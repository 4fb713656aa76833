//! Where resource metrics come from: the exact per-autoscaler request
//! (upstream's behaviour) or Tidal's batching source, chosen by the
//! operator's `--metrics-batching=on|off`.
//!
//! Batching makes one namespace-wide `PodMetrics` LIST (no selector) and
//! filters it per autoscaler on the client side, through an index by label
//! pair built once per LIST. The union of several
//! selectors cannot be written as one selector (requirements only AND), so
//! "no selector" is the only single request that covers them all; the cost is
//! that pods no autoscaler targets come along.
//!
//! Client-side filtering uses the labels on each `PodMetrics` item.
//! metrics-server copies the pod's labels onto the item (its pod storage
//! builds the item's ObjectMeta from the pod's metadata, labels included, in
//! 0.6 and later; 0.3.x did not). The exact request is filtered by
//! metrics-server on the same pod labels, so both modes select the same pods.
//! For a provider that does not copy labels, [`BatchedPodMetrics::pod_metrics_for_pods`]
//! filters by the pod names the caller's pod cache matched instead.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::client::{MetricsClient, no_pod_metrics};
use crate::error::Result;
use crate::samples::{PodMetricsSnapshot, PodSample};
use crate::selector::{Selector, SelectorError};
use scaling::selector::Candidates;

/// metrics-server's default `--metric-resolution`, used when a response
/// gives no window to estimate the scrape interval from.
pub const DEFAULT_RESOLUTION: Duration = Duration::from_secs(15);

/// A wall clock, injectable so tests can move time.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The operator flag `--metrics-batching=on|off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BatchingMode {
    /// One LIST per namespace per metrics window, shared.
    #[default]
    On,
    /// Exactly upstream's request per autoscaler (drop-in fidelity experiments).
    Off,
}

impl FromStr for BatchingMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "on" => Ok(BatchingMode::On),
            "off" => Ok(BatchingMode::Off),
            other => Err(format!(
                "invalid metrics batching mode {other:?}: expected \"on\" or \"off\""
            )),
        }
    }
}

impl std::fmt::Display for BatchingMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BatchingMode::On => "on",
            BatchingMode::Off => "off",
        })
    }
}

/// How long the batching source reuses one namespace's response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchingConfig {
    /// How often the metrics API produces new samples (metrics-server's
    /// `--metric-resolution`). `None`: estimate it from the largest `window`
    /// in the response (metrics-server's window is the time between the two
    /// scrapes it used), else [`DEFAULT_RESOLUTION`].
    pub resolution: Option<Duration>,
    /// Never reuse a response longer than this after fetching it. Sample
    /// timestamps come from kubelets' clocks; this bounds what a clock skew can do.
    pub max_age: Duration,
    /// Never ask for one namespace more often than this, even when the
    /// samples are already older than a resolution (a stalled metrics server).
    pub min_interval: Duration,
    /// How long a failed request is shared before it is retried, so 50
    /// autoscalers in one namespace do not make 50 failing requests.
    pub error_ttl: Duration,
}

impl Default for BatchingConfig {
    fn default() -> Self {
        Self {
            resolution: None,
            max_age: DEFAULT_RESOLUTION,
            min_interval: Duration::from_secs(1),
            error_ttl: Duration::from_secs(5),
        }
    }
}

/// When a response fetched at `fetched_at` stops being the freshest data.
///
/// The next scrape happens one resolution after the last one, and the last
/// one happened no earlier than the newest sample, so no newer sample can
/// exist before `newest + resolution`. That instant is clamped to
/// `[fetched_at + min_interval, fetched_at + max_age]`.
pub fn reuse_until(
    fetched_at: Timestamp,
    snapshot: &PodMetricsSnapshot,
    config: &BatchingConfig,
) -> Timestamp {
    let add = |t: Timestamp, d: Duration| t.checked_add(d).unwrap_or(Timestamp::MAX);
    let floor = add(fetched_at, config.min_interval);
    let ceiling = add(fetched_at, config.max_age).max(floor);
    let Some(newest) = snapshot.pods.iter().map(|p| p.timestamp).max() else {
        return floor;
    };
    add(newest, resolution(snapshot, config)).clamp(floor, ceiling)
}

/// How often the metrics API produces new samples: the configured resolution, else the largest
/// `window` in `snapshot` (metrics-server's window is the time between the two scrapes it
/// used), else [`DEFAULT_RESOLUTION`].
pub fn resolution(snapshot: &PodMetricsSnapshot, config: &BatchingConfig) -> Duration {
    config.resolution.unwrap_or_else(|| {
        snapshot
            .pods
            .iter()
            .map(|p| p.window)
            .max()
            .filter(|w| !w.is_zero())
            .unwrap_or(DEFAULT_RESOLUTION)
    })
}

struct Entry {
    fetched_at: Timestamp,
    reuse_until: Timestamp,
    /// Until when the namespace's fresh-metrics poller looks again for newer samples
    /// ([`BatchedPodMetrics::lead`]). Reconciles reuse the response until then too: the
    /// poller LISTs when a newer sample is due and triggers the reconciles it finds one for,
    /// so a reconcile's own LIST in between would mostly fetch the same samples again. Without
    /// this, every second between `reuse_until` and the next sample becoming visible some
    /// reconcile LISTed the namespace again: about 1 + that delay in seconds per resolution,
    /// which grows with a metrics-server's load (16 and 24 LISTs per 5 s cycle for 10
    /// namespaces at 5,000 and 10,000 AutoScalers).
    led_until: Option<Timestamp>,
    result: Result<Arc<Listed>>,
}

/// One namespace LIST and its samples indexed by label pair, built once per LIST: a reconcile
/// then looks at the samples carrying a pair its selector requires, not at the whole namespace
/// (a thousand samples per reconcile at 10,000 AutoScalers in 10 namespaces).
struct Listed {
    snapshot: Arc<PodMetricsSnapshot>,
    hasher: RandomState,
    /// Hash of `(key, value)` → positions of the samples carrying that label, ascending. A
    /// hash rather than the strings, so the index copies no label: every candidate is matched
    /// against the whole selector anyway, and a collision only adds a candidate.
    by_pair: HashMap<u64, Vec<usize>>,
}

impl Listed {
    fn new(snapshot: Arc<PodMetricsSnapshot>) -> Self {
        let hasher = RandomState::new();
        let mut by_pair: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, sample) in snapshot.pods.iter().enumerate() {
            for (k, v) in &sample.labels {
                by_pair
                    .entry(hasher.hash_one((k.as_str(), v.as_str())))
                    .or_default()
                    .push(i);
            }
        }
        Listed {
            snapshot,
            hasher,
            by_pair,
        }
    }

    /// The samples `selector` matches, in API order.
    fn select(&self, selector: &Selector) -> Vec<PodSample> {
        let pods = &self.snapshot.pods;
        let matching = |p: &&PodSample| selector.matches(&p.labels);
        let narrowed = selector.narrowest(|key, value| {
            let positions = self.by_pair.get(&self.hasher.hash_one((key, value)))?;
            Some((positions, positions.len()))
        });
        match narrowed {
            Candidates::None => Vec::new(),
            Candidates::All => pods.iter().filter(matching).cloned().collect(),
            Candidates::Only(positions) => positions
                .iter()
                .map(|&i| &pods[i])
                .filter(matching)
                .cloned()
                .collect(),
        }
    }
}

/// Who reads a namespace's response: the poller does not reuse it on its own word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reader {
    Reconcile,
    Poller,
}

type Slot = Arc<tokio::sync::Mutex<Option<Entry>>>;

/// The batching source: one shared namespace-wide LIST per metrics window.
pub struct BatchedPodMetrics {
    client: MetricsClient,
    config: BatchingConfig,
    clock: Clock,
    // One async slot per namespace: the first caller holds it while it
    // fetches, the others wait and then read its result.
    namespaces: std::sync::Mutex<HashMap<String, Slot>>,
    requests: AtomicU64,
    on_request: Option<RequestHook>,
}

/// Called once per LIST a source makes (the operator counts them in Prometheus; this crate
/// does not depend on a metrics library).
pub type RequestHook = Arc<dyn Fn() + Send + Sync>;

impl BatchedPodMetrics {
    /// A batching source on the system clock.
    pub fn new(client: MetricsClient, config: BatchingConfig) -> Self {
        Self::with_clock(client, config, Arc::new(Timestamp::now))
    }

    /// A batching source on an explicit clock (tests).
    pub fn with_clock(client: MetricsClient, config: BatchingConfig, clock: Clock) -> Self {
        Self {
            client,
            config,
            clock,
            namespaces: std::sync::Mutex::new(HashMap::new()),
            requests: AtomicU64::new(0),
            on_request: None,
        }
    }

    /// How many namespace LISTs this source has made (for Tidal's own metrics).
    pub fn requests_made(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The namespace's samples filtered by `selector` (the canonical
    /// selector string), with the same result and errors as the exact request.
    pub async fn pod_metrics(&self, namespace: &str, selector: &str) -> Result<PodMetricsSnapshot> {
        let parsed = Selector::parse(selector).map_err(SelectorError::from)?;
        let listed = self.snapshot(namespace, Reader::Reconcile).await?;
        Self::found(
            namespace,
            &listed.snapshot,
            listed.select(&parsed),
            selector,
        )
    }

    /// The namespace's samples for the named pods: for metrics providers
    /// that do not copy pod labels onto `PodMetrics`. `selector` is only used
    /// in messages. Unlike the exact request, samples of pods the caller's
    /// cache does not know yet are dropped.
    pub async fn pod_metrics_for_pods(
        &self,
        namespace: &str,
        pods: &BTreeSet<String>,
        selector: &str,
    ) -> Result<PodMetricsSnapshot> {
        let all = self.namespace_snapshot(namespace).await?;
        let found = all
            .pods
            .iter()
            .filter(|p| pods.contains(&p.name))
            .cloned()
            .collect();
        Self::found(namespace, &all, found, selector)
    }

    /// `pods` of `namespace`'s LIST `all`, or the exact request's error when there are none.
    fn found(
        namespace: &str,
        all: &PodMetricsSnapshot,
        pods: Vec<PodSample>,
        selector: &str,
    ) -> Result<PodMetricsSnapshot> {
        if pods.is_empty() {
            return Err(no_pod_metrics(namespace, selector));
        }
        Ok(PodMetricsSnapshot {
            namespace: all.namespace.clone(),
            api_version: all.api_version.clone(),
            pods,
        })
    }

    /// Every sample of the namespace, from the shared response while it is
    /// still the freshest (or while the namespace's poller vouches for it, see
    /// [`BatchedPodMetrics::lead`]), else from a new LIST.
    pub async fn namespace_snapshot(&self, namespace: &str) -> Result<Arc<PodMetricsSnapshot>> {
        let listed = self.snapshot(namespace, Reader::Reconcile).await?;
        Ok(listed.snapshot.clone())
    }

    /// Every sample of the namespace for the fresh-metrics poller: the shared response while
    /// no newer sample can exist yet, else a new LIST. The poller's own [`BatchedPodMetrics::lead`]
    /// does not stop it from looking.
    pub async fn poll(&self, namespace: &str) -> Result<Arc<PodMetricsSnapshot>> {
        let listed = self.snapshot(namespace, Reader::Poller).await?;
        Ok(listed.snapshot.clone())
    }

    /// The namespace's poller will LIST again by `until`: reconciles reuse the current
    /// response until then (never longer than `max_age` after it was fetched, nor for a
    /// failed request). Called by the poller after each poll.
    pub async fn lead(&self, namespace: &str, until: Timestamp) {
        let slot = self.slot(namespace);
        let mut entry = slot.lock().await;
        if let Some(e) = entry.as_mut()
            && e.result.is_ok()
        {
            let ceiling = e
                .fetched_at
                .checked_add(self.config.max_age)
                .unwrap_or(Timestamp::MAX);
            e.led_until = Some(until.min(ceiling));
        }
    }

    fn slot(&self, namespace: &str) -> Slot {
        let mut map = self
            .namespaces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(namespace.to_string()).or_default().clone()
    }

    async fn snapshot(&self, namespace: &str, reader: Reader) -> Result<Arc<Listed>> {
        let slot = self.slot(namespace);
        let mut entry = slot.lock().await;
        let now = (self.clock)();
        if let Some(e) = entry.as_ref() {
            let led = reader == Reader::Reconcile && e.led_until.is_some_and(|u| now < u);
            if now < e.reuse_until || led {
                return e.result.clone();
            }
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(hook) = &self.on_request {
            hook();
        }
        let result = self
            .client
            .list_pod_metrics(namespace, "")
            .await
            .map(Arc::new);
        let fetched_at = (self.clock)();
        if let Ok(snapshot) = &result
            && !snapshot.pods.is_empty()
            && snapshot.pods.iter().all(|p| p.labels.is_empty())
        {
            // A provider that does not copy pod labels would make every
            // selector match nothing here while the exact request works.
            tracing::warn!(
                namespace,
                "no PodMetrics item carries labels: selector filtering cannot work with this metrics provider; use --metrics-batching=off or filter by pod names"
            );
        }
        let result = result.map(|snapshot| Arc::new(Listed::new(snapshot)));
        let until = match &result {
            Ok(listed) => reuse_until(fetched_at, &listed.snapshot, &self.config),
            Err(_) => fetched_at
                .checked_add(self.config.error_ttl)
                .unwrap_or(Timestamp::MAX),
        };
        tracing::debug!(namespace, %until, ok = result.is_ok(), "listed pod metrics for namespace");
        *entry = Some(Entry {
            fetched_at,
            reuse_until: until,
            led_until: None,
            result: result.clone(),
        });
        result
    }

    /// The configuration this source reuses responses by.
    pub fn config(&self) -> &BatchingConfig {
        &self.config
    }

    /// Forgets every shared response (for example when metrics-server restarted).
    pub fn clear(&self) {
        self.namespaces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

/// Resource metrics for an autoscaler, in the mode the operator chose.
pub enum PodMetricsSource {
    /// One request per autoscaler, exactly upstream's.
    Exact(MetricsClient),
    /// The shared namespace-wide request.
    Batched(BatchedPodMetrics),
}

impl PodMetricsSource {
    /// Builds the source for `--metrics-batching=<mode>`.
    pub fn new(client: MetricsClient, mode: BatchingMode, config: BatchingConfig) -> Self {
        match mode {
            BatchingMode::Off => PodMetricsSource::Exact(client),
            BatchingMode::On => PodMetricsSource::Batched(BatchedPodMetrics::new(client, config)),
        }
    }

    /// The mode this source runs in.
    pub fn mode(&self) -> BatchingMode {
        match self {
            PodMetricsSource::Exact(_) => BatchingMode::Off,
            PodMetricsSource::Batched(_) => BatchingMode::On,
        }
    }

    /// Every sample of `namespace`, to tell whether new samples appeared: in batching mode the
    /// shared response (a new LIST only once it is no longer the freshest), so whatever this
    /// fetch finds is what the reconciles it triggers read; in exact mode one namespace-wide
    /// LIST beside the per-autoscaler ones.
    pub async fn namespace_snapshot(&self, namespace: &str) -> Result<Arc<PodMetricsSnapshot>> {
        match self {
            PodMetricsSource::Exact(c) => c.list_pod_metrics(namespace, "").await.map(Arc::new),
            PodMetricsSource::Batched(b) => b.poll(namespace).await,
        }
    }

    /// The poller of `namespace` LISTs again by `until`, so reconciles may reuse the shared
    /// response until then (batching mode; the exact mode shares nothing).
    pub async fn lead(&self, namespace: &str, until: Timestamp) {
        if let PodMetricsSource::Batched(b) = self {
            b.lead(namespace, until).await;
        }
    }

    /// Calls `hook` for every namespace-wide LIST this source makes (batching mode; the
    /// exact mode's per-autoscaler requests are upstream's and not counted here).
    pub fn count_lists(&mut self, hook: RequestHook) {
        if let PodMetricsSource::Batched(b) = self {
            b.on_request = Some(hook);
        }
    }

    /// How long a response is reused (the exact mode reuses nothing; its resolution is
    /// estimated from the responses' windows).
    pub fn batching_config(&self) -> BatchingConfig {
        match self {
            PodMetricsSource::Exact(_) => BatchingConfig::default(),
            PodMetricsSource::Batched(b) => b.config().clone(),
        }
    }

    /// Samples of the pods matching `selector` (canonical string) in `namespace`.
    /// Both modes return the same pods and the same errors for the same cluster state.
    pub async fn pod_metrics(&self, namespace: &str, selector: &str) -> Result<PodMetricsSnapshot> {
        match self {
            PodMetricsSource::Exact(c) => c.pod_metrics(namespace, selector).await,
            PodMetricsSource::Batched(b) => b.pod_metrics(namespace, selector).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).expect("in range")
    }

    fn snapshot(samples: &[(i64, u64)]) -> PodMetricsSnapshot {
        PodMetricsSnapshot {
            namespace: "ns".into(),
            api_version: "metrics.k8s.io/v1beta1".into(),
            pods: samples
                .iter()
                .enumerate()
                .map(|(i, (ts, window))| PodSample {
                    name: format!("p{i}"),
                    labels: BTreeMap::new(),
                    timestamp: at(*ts),
                    window: Duration::from_secs(*window),
                    containers: vec![],
                })
                .collect(),
        }
    }

    /// The index only narrows where to look: for any selector it finds exactly the samples a
    /// scan of the whole namespace finds, in API order.
    #[test]
    fn the_label_index_selects_what_a_full_scan_selects_in_api_order() {
        let label_sets: [&[(&str, &str)]; 7] = [
            &[],
            &[("app", "web")],
            &[("app", "web"), ("tier", "front")],
            &[("app", "api")],
            &[("tier", "front")],
            &[("app", "web"), ("tier", "back")],
            &[("app", "web"), ("tier", "front"), ("track", "canary")],
        ];
        let mut s = snapshot(&[(0, 15); 21]);
        for (i, pod) in s.pods.iter_mut().enumerate() {
            pod.labels = label_sets[i % label_sets.len()]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        }
        let listed = Listed::new(Arc::new(s.clone()));
        for selector in [
            "app=web",
            "app==web,tier=front",
            "tier=front,app=web",
            "app in (web)",
            "app in (web,api)",
            "app=web,tier!=front",
            "app notin (api)",
            "tier",
            "!tier",
            "app=web,track=canary",
            "app=nobody",
            "app=web,tier=nowhere",
            "",
        ] {
            let parsed = Selector::parse(selector).expect("selector");
            let scanned: Vec<&str> = s
                .pods
                .iter()
                .filter(|p| parsed.matches(&p.labels))
                .map(|p| p.name.as_str())
                .collect();
            let selected = listed.select(&parsed);
            let indexed: Vec<&str> = selected.iter().map(|p| p.name.as_str()).collect();
            assert_eq!(indexed, scanned, "{selector:?}");
        }
    }

    #[test]
    fn response_is_reused_until_the_newest_sample_is_one_resolution_old() {
        let cfg = BatchingConfig::default();
        // Samples at t=-4 and t=-2, window 15s: the next scrape is at t>=13.
        let s = snapshot(&[(-4, 15), (-2, 15)]);
        assert_eq!(reuse_until(at(0), &s, &cfg), at(13));
        let explicit = BatchingConfig {
            resolution: Some(Duration::from_secs(10)),
            ..cfg.clone()
        };
        assert_eq!(reuse_until(at(0), &s, &explicit), at(8));
    }

    #[test]
    fn stale_samples_are_refetched_no_faster_than_min_interval() {
        let cfg = BatchingConfig::default();
        let s = snapshot(&[(-60, 15)]);
        assert_eq!(reuse_until(at(0), &s, &cfg), at(1));
        assert_eq!(reuse_until(at(0), &snapshot(&[]), &cfg), at(1));
    }

    #[test]
    fn samples_from_a_clock_ahead_are_reused_at_most_max_age() {
        let cfg = BatchingConfig::default();
        let s = snapshot(&[(120, 15)]);
        assert_eq!(reuse_until(at(0), &s, &cfg), at(15));
    }

    #[test]
    fn batching_mode_parses_the_operator_flag_values() {
        assert_eq!("on".parse::<BatchingMode>(), Ok(BatchingMode::On));
        assert_eq!("off".parse::<BatchingMode>(), Ok(BatchingMode::Off));
        assert!("yes".parse::<BatchingMode>().is_err());
        assert_eq!(BatchingMode::Off.to_string(), "off");
    }
}
