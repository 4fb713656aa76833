//! Replica proposals per metric (contract sections 1.7, 2 and 3): pod
//! classification, requests, usage ratios, missing/unready rebalancing, and the
//! Object/External calculators, with upstream's error texts.

use crate::fxhash::FxHashMap;
use crate::model::{
    ConditionStatus, Config, MetricIdentifier, MetricSpec, MetricTarget, MetricValue,
    MetricValueStatus, MetricValues, ObjectReference, Pod, PodMetrics, PodPhase, resource_get,
};
use crate::selector::LabelSelector;
use crate::time::{Duration, Time};
use crate::trace::{
    MetricTrace, PODS_LISTED_PER_CLASS, PodClass, PodReason, PodTrace, PodsTrace, ReasonCount,
    RebalanceTrace, ToleranceTrace,
};

/// Per-direction tolerances (`Tolerances{scaleDown, scaleUp}` upstream).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Tolerances {
    pub down: f64,
    pub up: f64,
}

impl Tolerances {
    /// `(1 − down) ≤ r ≤ (1 + up)`, both ends inclusive.
    pub fn is_within(&self, ratio: f64) -> bool {
        (1.0 - self.down) <= ratio && ratio <= (1.0 + self.up)
    }

    /// The band and whether `ratio` is inside it, for the trace.
    pub fn trace(&self, ratio: f64) -> ToleranceTrace {
        ToleranceTrace {
            low: 1.0 - self.down,
            high: 1.0 + self.up,
            within: self.is_within(ratio),
        }
    }
}

/// What one metric computation can read.
pub(crate) struct Ctx<'a> {
    pub now: Time,
    pub config: &'a Config,
    pub namespace: &'a str,
    pub pods: &'a [Pod],
    pub pod_metrics: &'a Result<Vec<PodMetrics>, String>,
    pub metric_values: &'a [crate::model::MetricValues],
    pub tolerances: Tolerances,
    /// `scale.spec.replicas`.
    pub spec_replicas: i32,
    /// `scale.status.replicas`.
    pub status_replicas: i32,
}

/// A successful per-metric computation.
pub(crate) struct Proposal {
    pub replicas: i32,
    pub metric_name: String,
    pub current: MetricValueStatus,
}

/// A failed per-metric computation.
pub(crate) struct Failure {
    /// Condition and event reason.
    pub reason: &'static str,
    /// The error the condition and the per-metric event carry.
    pub inner: String,
    /// The error with the type prefix, as `FailedComputeMetricsReplicas` reports it.
    pub outer: String,
}

/// One metric sample (`metricsclient.PodMetric`).
#[derive(Clone, Copy)]
struct Sample {
    value: i64,
    timestamp: Time,
    window: Duration,
}

const NO_PODS: &str = "no pods returned by selector while calculating replica count";
const NO_READY_SAMPLES: &str = "did not receive metrics for targeted pods (pods might be unready)";

fn ceil_to_i32(f: f64) -> i32 {
    // Saturating where Go's float-to-int32 conversion would wrap.
    f.ceil() as i32
}

fn clamp_i32(v: i128) -> i32 {
    v.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32
}

// ---------------------------------------------------------------------------
// Pod grouping (groupPods)

const NONE: u32 = u32::MAX;

/// Everything known about one name: its sample, its pod and its classes. Go
/// keeps these in a sample map, a request map and three name sets; one slot per
/// distinct name gives the same semantics (last sample wins, the last pod's
/// request wins, set membership) in one contiguous list.
#[derive(Clone, Copy)]
struct Slot {
    /// Index into the samples (the last one with this name), or `NONE`.
    sample: u32,
    /// Index of the last listed pod with this name, or `NONE`.
    pod: u32,
    unready: bool,
    missing: bool,
    ignored: bool,
    /// Why the (last) pod of this name got its class, for the trace.
    reason: PodReason,
    /// The value in the working sample map (after removal / rebalancing).
    active: Option<i64>,
}

impl Slot {
    const EMPTY: Slot = Slot {
        sample: NONE,
        pod: NONE,
        unready: false,
        missing: false,
        ignored: false,
        reason: PodReason::Counted,
        active: None,
    };
}

struct Grouped {
    slots: Vec<Slot>,
    ready_pod_count: i64,
}

impl Grouped {
    fn active_len(&self) -> usize {
        self.slots.iter().filter(|s| s.active.is_some()).count()
    }
    fn unready_len(&self) -> usize {
        self.slots.iter().filter(|s| s.unready).count()
    }
    fn missing_len(&self) -> usize {
        self.slots.iter().filter(|s| s.missing).count()
    }
}

/// Name equality without a call into `memcmp` (names are short).
#[inline]
fn name_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    if a.len() < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    let mut i = 0;
    while i + 8 <= a.len() {
        if word(a, i) != word(b, i) {
            return false;
        }
        i += 8;
    }
    // The last eight bytes overlap the last full word; that is harmless.
    let last = a.len() - 8;
    word(a, last) == word(b, last)
}

/// Eight bytes at `at`, big-endian so that integer order is byte order.
#[inline]
fn word(s: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    if let Some(src) = s.get(at..at + 8) {
        w.copy_from_slice(src);
    }
    u64::from_be_bytes(w)
}

/// Byte-wise name order, eight bytes at a time.
#[inline]
fn name_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let (x, y) = (word(a, i), word(b, i));
        if x != y {
            return x.cmp(&y);
        }
        i += 8;
    }
    if a.len() == b.len() && n >= 8 {
        // Equal prefix so far: an overlapping last word decides the rest.
        return word(a, n - 8).cmp(&word(b, n - 8));
    }
    for (x, y) in a[i..].iter().zip(&b[i..]) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// A pod name as a hash key, compared with [`name_eq`].
#[derive(Clone, Copy)]
struct Name<'a>(&'a str);

impl std::hash::Hash for Name<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write(self.0.as_bytes());
    }
}

impl PartialEq for Name<'_> {
    fn eq(&self, other: &Self) -> bool {
        name_eq(self.0, other.0)
    }
}

impl Eq for Name<'_> {}

fn strictly_sorted<'a>(mut names: impl Iterator<Item = &'a str>) -> bool {
    let Some(mut prev) = names.next() else {
        return true;
    };
    for n in names {
        if name_cmp(prev, n) != std::cmp::Ordering::Less {
            return false;
        }
        prev = n;
    }
    true
}

/// Whether `samples[i]` names `pods[i]` for every `i` and the names strictly
/// increase (so there are no duplicates); one pass touches each name once.
fn aligned_and_sorted(samples: &[(&str, Sample)], pods: &[Pod]) -> bool {
    let mut prev: Option<&str> = None;
    for ((name, _), pod) in samples.iter().zip(pods) {
        if !name_eq(name, &pod.name) {
            return false;
        }
        if let Some(p) = prev
            && name_cmp(p, name) != std::cmp::Ordering::Less
        {
            return false;
        }
        prev = Some(name);
    }
    true
}

/// Joins samples and pods by name: slots, and the slot of every pod.
///
/// metrics-server lists pods sorted by name, and a caller can sort its pod
/// list; two strictly sorted lists (no duplicate names) are joined by a linear
/// merge. Anything else goes through a hash join with Go's last-wins semantics.
fn join_by_name(samples: &[(&str, Sample)], pods: &[Pod]) -> (Vec<Slot>, Vec<u32>) {
    // The common case: one sample per pod, in the same (sorted) order.
    if samples.len() == pods.len() && aligned_and_sorted(samples, pods) {
        let slots = (0..pods.len() as u32)
            .map(|i| Slot {
                sample: i,
                pod: i,
                ..Slot::EMPTY
            })
            .collect();
        return (slots, (0..pods.len() as u32).collect());
    }
    let mut slots: Vec<Slot> = Vec::with_capacity(samples.len().max(pods.len()));
    let mut pod_slot: Vec<u32> = vec![NONE; pods.len()];
    // Pods first: a pod cache's order usually fails at once, metrics are often sorted.
    if strictly_sorted(pods.iter().map(|p| p.name.as_str()))
        && strictly_sorted(samples.iter().map(|s| s.0))
    {
        let (mut i, mut j) = (0usize, 0usize);
        loop {
            let order = match (samples.get(i), pods.get(j)) {
                (Some(s), Some(p)) => name_cmp(s.0, &p.name),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => break,
            };
            let mut slot = Slot::EMPTY;
            if order != std::cmp::Ordering::Greater {
                slot.sample = i as u32;
                i += 1;
            }
            if order != std::cmp::Ordering::Less {
                slot.pod = j as u32;
                if let Some(ps) = pod_slot.get_mut(j) {
                    *ps = slots.len() as u32;
                }
                j += 1;
            }
            slots.push(slot);
        }
        return (slots, pod_slot);
    }
    let mut index: FxHashMap<Name<'_>, u32> = FxHashMap::default();
    index.reserve(slots.capacity());
    for (i, (name, _)) in samples.iter().enumerate() {
        let k = *index.entry(Name(name)).or_insert_with(|| {
            slots.push(Slot::EMPTY);
            (slots.len() - 1) as u32
        });
        if let Some(slot) = slots.get_mut(k as usize) {
            slot.sample = i as u32;
        }
    }
    for (j, pod) in pods.iter().enumerate() {
        let k = *index.entry(Name(&pod.name)).or_insert_with(|| {
            slots.push(Slot::EMPTY);
            (slots.len() - 1) as u32
        });
        if let Some(slot) = slots.get_mut(k as usize) {
            slot.pod = j as u32;
        }
        if let Some(ps) = pod_slot.get_mut(j) {
            *ps = k;
        }
    }
    (slots, pod_slot)
}

/// Classifies the pods (contract 2.2) and drops ignored and unready samples.
fn group_pods(ctx: &Ctx<'_>, samples: &[(&str, Sample)], resource: &str) -> Grouped {
    let (mut slots, pod_slot) = join_by_name(samples, ctx.pods);
    let is_cpu = resource == "cpu";
    let mut ready_pod_count = 0i64;
    for (pod, k) in ctx.pods.iter().zip(&pod_slot) {
        let Some(slot) = slots.get_mut(*k as usize) else {
            continue;
        };
        if pod.deleting || pod.phase == PodPhase::Failed {
            slot.ignored = true;
            slot.reason = if pod.deleting {
                PodReason::Deleting
            } else {
                PodReason::PhaseFailed
            };
            continue;
        }
        if pod.phase == PodPhase::Pending {
            slot.unready = true;
            slot.reason = PodReason::PhasePending;
            continue;
        }
        let Some((_, sample)) = samples.get(slot.sample as usize) else {
            slot.missing = true;
            slot.reason = PodReason::NoSample;
            continue;
        };
        if is_cpu && let Some(reason) = cpu_sample_unready(ctx, pod, sample) {
            slot.unready = true;
            slot.reason = reason;
            continue;
        }
        slot.reason = PodReason::Counted;
        ready_pod_count += 1;
    }
    for slot in &mut slots {
        slot.active = if slot.ignored || slot.unready {
            None
        } else {
            samples.get(slot.sample as usize).map(|(_, s)| s.value)
        };
    }
    Grouped {
        slots,
        ready_pod_count,
    }
}

/// The CPU-only readiness rule of contract 2.2 step 4: why the sample does not
/// count, or `None` when it does.
fn cpu_sample_unready(ctx: &Ctx<'_>, pod: &Pod, sample: &Sample) -> Option<PodReason> {
    let (Some(ready), Some(start)) = (pod.ready, pod.start_time) else {
        return Some(PodReason::NoReadinessInfo);
    };
    if (start + ctx.config.cpu_initialization_period).after(ctx.now) {
        // Still initializing: only a sample taken a full window after the last
        // readiness change of a Ready pod counts.
        if ready.status == ConditionStatus::False {
            Some(PodReason::InitializingNotReady)
        } else if sample
            .timestamp
            .before(ready.last_transition_time + sample.window)
        {
            Some(PodReason::SampleBeforeReady)
        } else {
            None
        }
    } else {
        // Initialized: only a pod that went unready within the readiness delay
        // after start (and never became ready since) is discarded.
        (ready.status == ConditionStatus::False
            && (start + ctx.config.initial_readiness_delay).after(ready.last_transition_time))
        .then_some(PodReason::NeverBecameReady)
    }
}

/// The pods of one metric for the trace: every pod counted by reason, at most
/// [`PODS_LISTED_PER_CLASS`] of each class listed. One pass over the slots.
fn trace_pods(
    ctx: &Ctx<'_>,
    g: &Grouped,
    samples: &[(&str, Sample)],
    requests: Option<&[i64]>,
) -> PodsTrace {
    let mut by_reason = [0u32; PodReason::ALL.len()];
    let mut listed_per_class = [0usize; PodClass::ALL.len()];
    let mut listed = Vec::new();
    let mut extraneous = 0u32;
    for slot in &g.slots {
        let Some(pod) = ctx.pods.get(slot.pod as usize) else {
            extraneous += 1;
            continue;
        };
        if let Some(c) = by_reason.get_mut(slot.reason.index()) {
            *c += 1;
        }
        let class = slot.reason.class() as usize;
        if let Some(n) = listed_per_class.get_mut(class)
            && *n < PODS_LISTED_PER_CLASS
        {
            *n += 1;
            listed.push(PodTrace {
                name: pod.name.clone(),
                reason: slot.reason,
                usage_milli: samples.get(slot.sample as usize).map(|(_, s)| s.value),
                request_milli: requests.and_then(|r| r.get(slot.pod as usize).copied()),
            });
        }
    }
    listed.sort_by(|a, b| (a.reason.class(), &a.name).cmp(&(b.reason.class(), &b.name)));
    let mut t = PodsTrace {
        extraneous_samples: extraneous,
        ..PodsTrace::default()
    };
    for (reason, count) in PodReason::ALL.iter().zip(by_reason) {
        if count == 0 {
            continue;
        }
        match reason.class() {
            PodClass::Ready => t.ready += count,
            PodClass::Unready => t.unready += count,
            PodClass::Missing => t.missing += count,
            PodClass::Ignored => t.ignored += count,
        }
        t.by_reason.push(ReasonCount {
            reason: *reason,
            count,
        });
    }
    t.not_listed =
        (t.ready + t.unready + t.missing + t.ignored).saturating_sub(listed.len() as u32);
    t.listed = listed;
    t
}

// ---------------------------------------------------------------------------
// Metric fetching (metrics client)

fn resource_samples<'a>(
    ctx: &Ctx<'a>,
    resource: &str,
    container: &str,
) -> Result<Vec<(&'a str, Sample)>, String> {
    let items = match ctx.pod_metrics {
        Err(e) => {
            return Err(format!(
                "unable to fetch metrics from resource metrics API: {e}"
            ));
        }
        Ok(items) => items,
    };
    if items.is_empty() {
        return Err("no metrics returned from resource metrics API".to_string());
    }
    let mut out = Vec::with_capacity(items.len());
    for m in items {
        let sample = |value| Sample {
            value,
            timestamp: m.timestamp,
            window: m.window,
        };
        if container.is_empty() {
            // A pod with no containers, or any container without the resource, has no sample.
            if m.containers.is_empty() {
                continue;
            }
            let mut sum = 0i64;
            let mut complete = true;
            for c in &m.containers {
                match resource_get(&c.usage, resource) {
                    Some(v) => sum = sum.saturating_add(v),
                    None => {
                        complete = false;
                        break;
                    }
                }
            }
            if complete {
                out.push((m.name.as_str(), sample(sum)));
            }
        } else if let Some(c) = m.containers.iter().find(|c| c.name == container)
            && let Some(v) = resource_get(&c.usage, resource)
        {
            out.push((m.name.as_str(), sample(v)));
        }
    }
    Ok(out)
}

/// calc's matching of a spec metric to a metrics API answer (FORMAT 3.7).
fn find_answer<'a>(
    ctx: &Ctx<'a>,
    kind: &str,
    metric: &MetricIdentifier,
    object: Option<&ObjectReference>,
) -> Option<&'a MetricValues> {
    ctx.metric_values.iter().find(|mv| {
        mv.kind == kind
            && mv.metric_name == metric.name
            && match &mv.selector {
                None => true,
                Some(sel) => LabelSelector::equivalent(sel.as_ref(), metric.selector.as_ref()),
            }
            && match (object, &mv.described_object) {
                (Some(o), Some((k, n))) => *k == o.kind && *n == o.name,
                _ => true,
            }
    })
}

fn answer_items(answer: Option<&MetricValues>) -> Result<&[MetricValue], &str> {
    match answer {
        None => Ok(&[]),
        Some(mv) => match &mv.answer {
            Ok(items) => Ok(items.as_slice()),
            Err(e) => Err(e.as_str()),
        },
    }
}

fn pods_metric_samples<'a>(
    ctx: &Ctx<'a>,
    metric: &MetricIdentifier,
) -> Result<Vec<(&'a str, Sample)>, String> {
    let items = answer_items(find_answer(ctx, "Pods", metric, None))
        .map_err(|e| format!("unable to fetch metrics from custom metrics API: {e}"))?;
    if items.is_empty() {
        return Err("no metrics returned from custom metrics API".to_string());
    }
    Ok(items
        .iter()
        .map(|it| {
            (
                it.pod_name.as_deref().unwrap_or(""),
                Sample {
                    value: it.value,
                    timestamp: it.timestamp,
                    window: it.window,
                },
            )
        })
        .collect())
}

fn object_metric_value(
    ctx: &Ctx<'_>,
    metric: &MetricIdentifier,
    object: &ObjectReference,
) -> Result<i64, String> {
    let fetch = || -> Result<i64, String> {
        let items = answer_items(find_answer(ctx, "Object", metric, Some(object)))
            .map_err(str::to_string)?;
        match items {
            [one] => Ok(one.value),
            _ => Err(format!(
                "the custom metrics API server returned {} results when we asked for exactly one",
                items.len()
            )),
        }
    };
    fetch().map_err(|e| {
        // Upstream's format arguments are out of order; the text is reproduced as emitted.
        format!(
            "unable to get metric {}: {} on {} {}/unable to fetch metrics from custom metrics API: {e}",
            metric.name, object.kind, ctx.namespace, object.name
        )
    })
}

fn external_metric_values(ctx: &Ctx<'_>, metric: &MetricIdentifier) -> Result<Vec<i64>, String> {
    LabelSelector::validate(metric.selector.as_ref()).map_err(|e| e.to_string())?;
    let fetch = || -> Result<Vec<i64>, String> {
        let items = answer_items(find_answer(ctx, "External", metric, None))
            .map_err(|e| format!("unable to fetch metrics from external metrics API: {e}"))?;
        if items.is_empty() {
            return Err("no metrics returned from external metrics API".to_string());
        }
        Ok(items.iter().map(|i| i.value).collect())
    };
    fetch().map_err(|e| {
        format!(
            "unable to get external metric {}/{}/{}: {e}",
            ctx.namespace,
            metric.name,
            LabelSelector::go_string(metric.selector.as_ref())
        )
    })
}

// ---------------------------------------------------------------------------
// Requests (calculateRequests)

fn pod_requests(ctx: &Ctx<'_>, container: &str, resource: &str) -> Result<Vec<i64>, String> {
    let pod_level = ctx.config.feature_gates.pod_level_resources;
    let mut out = Vec::with_capacity(ctx.pods.len());
    for pod in ctx.pods {
        // Only cpu and memory are pod-level resources (FORMAT B.4).
        let pod_level_set = pod
            .pod_requests
            .as_ref()
            .is_some_and(|r| r.get("cpu").is_some() || r.get("memory").is_some());
        if pod_level && pod_level_set && container.is_empty() {
            let requests = pod.pod_requests.as_ref();
            match requests.and_then(|r| resource_get(r, resource)) {
                Some(v) => out.push(v),
                None => {
                    return Err(format!(
                        "missing pod-level request for {resource} in Pod {}",
                        pod.name
                    ));
                }
            }
            continue;
        }
        let mut sum = 0i64;
        let mut found = false;
        let sidecars = pod.init_containers.iter().filter(|c| c.restart_always);
        for c in pod.containers.iter().chain(sidecars) {
            if container.is_empty() || container == c.name {
                match resource_get(&c.requests, resource) {
                    Some(v) => sum = sum.saturating_add(v),
                    None => {
                        return Err(format!(
                            "missing request for {resource} in container {} of Pod {}",
                            c.name, pod.name
                        ));
                    }
                }
            }
            if container == c.name {
                found = true;
                break;
            }
        }
        if !container.is_empty() && !found {
            return Err(format!(
                "container {container} not found in Pod {}",
                pod.name
            ));
        }
        out.push(sum);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Usage ratios (metrics/utilization.go)

/// `GetResourceUtilizationRatio`'s results, with the sums for the trace.
struct Utilization {
    ratio: f64,
    percent: i32,
    average: i64,
    usage_total: i64,
    requests_total: i64,
}

fn utilization_ratio(g: &Grouped, requests: &[i64], target: i32) -> Result<Utilization, String> {
    let mut metrics_total = 0i64;
    let mut requests_total = 0i64;
    let mut entries = 0i64;
    for slot in &g.slots {
        let Some(v) = slot.active else { continue };
        // A name without a listed pod has no request: an extraneous sample.
        let Some(r) = requests.get(slot.pod as usize) else {
            continue;
        };
        metrics_total = metrics_total.saturating_add(v);
        requests_total = requests_total.saturating_add(*r);
        entries += 1;
    }
    if requests_total == 0 || entries == 0 {
        return Err("no metrics returned matched known pods".to_string());
    }
    let utilization = clamp_i32(i128::from(metrics_total) * 100 / i128::from(requests_total));
    Ok(Utilization {
        ratio: f64::from(utilization) / f64::from(target),
        percent: utilization,
        average: metrics_total / entries,
        usage_total: metrics_total,
        requests_total,
    })
}

/// (ratio, average, total) of the active samples against a plain target.
fn usage_ratio(g: &Grouped, target: i64) -> (f64, i64, i64) {
    let mut total = 0i64;
    let mut n = 0i64;
    for v in g.slots.iter().filter_map(|s| s.active) {
        total = total.saturating_add(v);
        n += 1;
    }
    let usage = if n == 0 { 0 } else { total / n };
    (usage as f64 / target as f64, usage, total)
}

// ---------------------------------------------------------------------------
// Pod-based calculators

/// What rebalancing gives a missing pod on a scale-down.
enum MissingFill<'r> {
    /// A share of its request (Utilization targets).
    Request { requests: &'r [i64], percent: i64 },
    /// The target value (plain targets).
    Target(i64),
}

/// The common tail of `GetResourceReplicas` and `calcPlainMetricReplicas`:
/// fast path, rebalancing and the direction checks (contract 2.4 steps 6–8).
fn rebalance(
    ctx: &Ctx<'_>,
    g: &mut Grouped,
    current: i32,
    usage_ratio: f64,
    fill: MissingFill<'_>,
    recompute: impl Fn(&Grouped) -> Result<f64, String>,
    trace: &mut MetricTrace,
) -> Result<i32, String> {
    let tolerance = ctx.tolerances.trace(usage_ratio);
    trace.ratio = Some(usage_ratio);
    trace.tolerance = Some(tolerance);
    let scale_up_with_unready = g.unready_len() > 0 && usage_ratio > 1.0;
    let missing = g.missing_len();
    if !scale_up_with_unready && missing == 0 {
        if tolerance.within {
            return Ok(current);
        }
        trace.multiplied_by_pods = Some(g.ready_pod_count);
        return Ok(ceil_to_i32(usage_ratio * g.ready_pod_count as f64));
    }
    let missing_as = if missing == 0 {
        None
    } else if usage_ratio < 1.0 {
        Some(match &fill {
            MissingFill::Request { percent, .. } => format!("{percent}% of their request"),
            MissingFill::Target(t) => format!("the target ({t}m)"),
        })
    } else if usage_ratio > 1.0 {
        Some("0".to_string())
    } else {
        None
    };
    if missing > 0 {
        for slot in g.slots.iter_mut().filter(|s| s.missing) {
            if usage_ratio < 1.0 {
                slot.active = Some(match &fill {
                    MissingFill::Request { requests, percent } => {
                        let request = requests.get(slot.pod as usize).copied().unwrap_or(0);
                        let v = i128::from(request) * i128::from(*percent) / 100;
                        v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
                    }
                    MissingFill::Target(t) => *t,
                });
            } else if usage_ratio > 1.0 {
                slot.active = Some(0);
            }
        }
    }
    if scale_up_with_unready {
        for slot in g.slots.iter_mut().filter(|s| s.unready) {
            slot.active = Some(0);
        }
    }
    let new_ratio = recompute(g)?;
    let active = g.active_len();
    let mut rebalanced = RebalanceTrace {
        missing_as,
        unready_as_zero: scale_up_with_unready,
        ratio: new_ratio,
        pods: u32::try_from(active).unwrap_or(u32::MAX),
        kept_current_because: None,
    };
    let within = ctx.tolerances.is_within(new_ratio);
    if within || (usage_ratio < 1.0 && new_ratio > 1.0) || (usage_ratio > 1.0 && new_ratio < 1.0) {
        rebalanced.kept_current_because = Some(if within {
            "the rebalanced ratio is within the tolerance".to_string()
        } else {
            "rebalancing reversed the direction of the change".to_string()
        });
        trace.rebalanced = Some(rebalanced);
        return Ok(current);
    }
    let new_replicas = ceil_to_i32(new_ratio * active as f64);
    if (new_ratio < 1.0 && new_replicas > current) || (new_ratio > 1.0 && new_replicas < current) {
        rebalanced.kept_current_because = Some(format!(
            "{new_replicas} replicas would move against the ratio"
        ));
        trace.rebalanced = Some(rebalanced);
        return Ok(current);
    }
    trace.rebalanced = Some(rebalanced);
    Ok(new_replicas)
}

/// `GetResourceReplicas`: (replicas, utilization %, raw average).
fn resource_utilization_replicas(
    ctx: &Ctx<'_>,
    target: i32,
    resource: &str,
    container: &str,
    trace: &mut MetricTrace,
) -> Result<(i32, i32, i64), String> {
    let samples = resource_samples(ctx, resource, container)
        .map_err(|e| format!("unable to get metrics for resource {resource}: {e}"))?;
    if ctx.pods.is_empty() {
        return Err(NO_PODS.to_string());
    }
    let mut g = group_pods(ctx, &samples, resource);
    if g.active_len() == 0 {
        trace.pods = Some(trace_pods(ctx, &g, &samples, None));
        return Err(NO_READY_SAMPLES.to_string());
    }
    let requests = match pod_requests(ctx, container, resource) {
        Ok(r) => r,
        Err(e) => {
            trace.pods = Some(trace_pods(ctx, &g, &samples, None));
            return Err(e);
        }
    };
    trace.pods = Some(trace_pods(ctx, &g, &samples, Some(&requests)));
    let u = utilization_ratio(&g, &requests, target)?;
    trace.usage_milli = Some(u.usage_total);
    trace.requests_milli = Some(u.requests_total);
    trace.average_milli = Some(u.average);
    trace.utilization = Some(u.percent);
    let fill = MissingFill::Request {
        requests: &requests,
        percent: i64::from(target.max(100)),
    };
    let replicas = rebalance(
        ctx,
        &mut g,
        ctx.spec_replicas,
        u.ratio,
        fill,
        |g| utilization_ratio(g, &requests, target).map(|r| r.ratio),
        trace,
    )?;
    Ok((replicas, u.percent, u.average))
}

/// `calcPlainMetricReplicas`: (replicas, average usage).
fn plain_replicas(
    ctx: &Ctx<'_>,
    samples: Vec<(&str, Sample)>,
    target: i64,
    resource: &str,
    trace: &mut MetricTrace,
) -> Result<(i32, i64), String> {
    if ctx.pods.is_empty() {
        return Err(NO_PODS.to_string());
    }
    let mut g = group_pods(ctx, &samples, resource);
    trace.pods = Some(trace_pods(ctx, &g, &samples, None));
    if g.active_len() == 0 {
        return Err(NO_READY_SAMPLES.to_string());
    }
    let (ratio, usage, total) = usage_ratio(&g, target);
    trace.usage_milli = Some(total);
    trace.average_milli = Some(usage);
    let replicas = rebalance(
        ctx,
        &mut g,
        ctx.spec_replicas,
        ratio,
        MissingFill::Target(target),
        |g| Ok(usage_ratio(g, target).0),
        trace,
    )?;
    Ok((replicas, usage))
}

// ---------------------------------------------------------------------------
// Object and External calculators

/// `getUsageRatioReplicaCount`.
fn usage_ratio_replica_count(
    ctx: &Ctx<'_>,
    usage_ratio: f64,
    trace: &mut MetricTrace,
) -> Result<i32, String> {
    trace.ratio = Some(usage_ratio);
    if ctx.spec_replicas == 0 {
        // Scale from zero: no tolerance, no pod count (clamped, FORMAT B.3).
        return Ok(ceil_to_i32(usage_ratio));
    }
    let tolerance = ctx.tolerances.trace(usage_ratio);
    trace.tolerance = Some(tolerance);
    if tolerance.within {
        return Ok(ctx.spec_replicas);
    }
    if ctx.pods.is_empty() {
        return Err(format!("unable to calculate ready pods: {NO_PODS}"));
    }
    let ready = ctx
        .pods
        .iter()
        .filter(|p| {
            p.phase == PodPhase::Running
                && p.ready.is_some_and(|r| r.status == ConditionStatus::True)
        })
        .count();
    trace.multiplied_by_pods = Some(ready as i64);
    let f = usage_ratio * ready as f64;
    Ok(if f > f64::from(i32::MAX) {
        i32::MAX
    } else {
        ceil_to_i32(f)
    })
}

/// The per-pod (AverageValue) Object/External computation against `status.replicas`.
/// Returns (replicas, reported average or `None` when `status.replicas` is 0).
fn per_pod_replicas(
    ctx: &Ctx<'_>,
    usage: i64,
    target: i64,
    trace: &mut MetricTrace,
) -> (i32, Option<i64>) {
    let status = ctx.status_replicas;
    let mut replicas = status;
    let ratio = usage as f64 / (target as f64 * f64::from(status));
    trace.usage_milli = Some(usage);
    if status != 0 {
        trace.ratio = Some(ratio);
        trace.tolerance = Some(ctx.tolerances.trace(ratio));
    }
    if status == 0 || !ctx.tolerances.is_within(ratio) {
        let r = (usage as f64 / target as f64).ceil();
        replicas = if r > f64::from(i32::MAX) {
            i32::MAX
        } else {
            r as i32
        };
    }
    let average = if status == 0 {
        None
    } else if usage as f64 >= i64::MAX as f64 {
        Some(i64::MAX)
    } else {
        Some((usage as f64 / f64::from(status)).ceil() as i64)
    };
    (replicas, average)
}

// ---------------------------------------------------------------------------
// computeReplicasForMetric

fn fail(reason: &'static str, inner: String, outer: String) -> Failure {
    Failure {
        reason,
        inner,
        outer,
    }
}

/// Computes one metric's proposal as `computeReplicasForMetric` does.
pub(crate) fn compute_metric(
    ctx: &Ctx<'_>,
    spec: &MetricSpec,
    trace: &mut MetricTrace,
) -> Result<Proposal, Failure> {
    match spec {
        MetricSpec::Resource { name, target } => resource_metric(ctx, name, "", target, trace)
            .map_err(|inner| {
                let outer = format!("failed to get {name} resource metric value: {inner}");
                fail("FailedGetResourceMetric", inner, outer)
            }),
        MetricSpec::ContainerResource {
            name,
            container,
            target,
        } => resource_metric(ctx, name, container, target, trace).map_err(|inner| {
            let outer = format!("failed to get {container} container metric value: {inner}");
            fail("FailedGetContainerResourceMetric", inner, outer)
        }),
        MetricSpec::Pods {
            metric,
            average_value,
        } => {
            trace.target.kind = "AverageValue".to_string();
            trace.target.value_milli = Some(average_value.milli_value());
            let mut run = || -> Result<Proposal, String> {
                LabelSelector::validate(metric.selector.as_ref()).map_err(|e| e.to_string())?;
                let target = average_value.milli_value();
                let samples = pods_metric_samples(ctx, metric)
                    .map_err(|e| format!("unable to get metric {}: {e}", metric.name))?;
                let (replicas, usage) = plain_replicas(ctx, samples, target, "", trace)?;
                Ok(Proposal {
                    replicas,
                    metric_name: format!("pods metric {}", metric.name),
                    current: MetricValueStatus {
                        average_value: Some(usage),
                        ..MetricValueStatus::default()
                    },
                })
            };
            run().map_err(|inner| {
                let outer = format!("failed to get pods metric value: {inner}");
                fail("FailedGetPodsMetric", inner, outer)
            })
        }
        MetricSpec::Object {
            described_object,
            metric,
            target,
        } => object_metric(ctx, described_object, metric, target, trace).map_err(
            |(inner, returned)| {
                let outer = format!("failed to get object metric value: {returned}");
                fail("FailedGetObjectMetric", inner, outer)
            },
        ),
        MetricSpec::External { metric, target } => external_metric(ctx, metric, target, trace)
            .map_err(|(inner, returned)| {
                let outer = format!(
                    "failed to get {} external metric value: {returned}",
                    metric.name
                );
                fail("FailedGetExternalMetric", inner, outer)
            }),
        MetricSpec::Unknown(t) => {
            let inner = format!("unknown metric source type {t:?}");
            Err(fail("InvalidMetricSourceType", inner.clone(), inner))
        }
    }
}

/// `computeStatusForResourceMetricGeneric`.
fn resource_metric(
    ctx: &Ctx<'_>,
    name: &str,
    container: &str,
    target: &MetricTarget,
    trace: &mut MetricTrace,
) -> Result<Proposal, String> {
    let binary = name == "memory";
    trace_target(trace, target);
    if let Some(av) = target.average_value {
        trace.target.kind = "AverageValue".to_string();
        trace.target.average_utilization = None;
        let samples = resource_samples(ctx, name, container)
            .map_err(|e| format!("unable to get metrics for resource {name}: {e}"))
            .and_then(|s| plain_replicas(ctx, s, av.milli_value(), name, trace))
            .map_err(|e| format!("failed to get {name} usage: {e}"))?;
        let (replicas, usage) = samples;
        return Ok(Proposal {
            replicas,
            metric_name: format!("{name} resource"),
            current: MetricValueStatus {
                average_value: Some(usage),
                binary,
                ..MetricValueStatus::default()
            },
        });
    }
    let Some(utilization_target) = target.average_utilization else {
        return Err("invalid resource metric source: neither an average utilization target nor an average value (usage) target was set".to_string());
    };
    let (replicas, utilization, raw) =
        resource_utilization_replicas(ctx, utilization_target, name, container, trace)
            .map_err(|e| format!("failed to get {name} utilization: {e}"))?;
    let metric_name = if container.is_empty() {
        format!("{name} resource utilization (percentage of request)")
    } else {
        format!("{name} container resource utilization (percentage of request)")
    };
    Ok(Proposal {
        replicas,
        metric_name,
        current: MetricValueStatus {
            average_utilization: Some(utilization),
            average_value: Some(raw),
            binary,
            ..MetricValueStatus::default()
        },
    })
}

/// `computeStatusForObjectMetric`: errors are (condition error, returned error).
fn object_metric(
    ctx: &Ctx<'_>,
    object: &ObjectReference,
    metric: &MetricIdentifier,
    target: &MetricTarget,
    trace: &mut MetricTrace,
) -> Result<Proposal, (String, String)> {
    trace_target(trace, target);
    if let Err(e) = LabelSelector::validate(metric.selector.as_ref()) {
        return Err((e.to_string(), e.to_string()));
    }
    if target.kind == "Value"
        && let Some(value) = target.value
    {
        let mut run = || -> Result<(i32, i64), String> {
            let usage = object_metric_value(ctx, metric, object)?;
            trace.usage_milli = Some(usage);
            let ratio = usage as f64 / value.milli_value() as f64;
            Ok((usage_ratio_replica_count(ctx, ratio, trace)?, usage))
        };
        let (replicas, usage) = run().map_err(|e| (e.clone(), e))?;
        return Ok(Proposal {
            replicas,
            metric_name: format!("{} metric {}", object.kind, metric.name),
            current: MetricValueStatus {
                value: Some(usage),
                ..MetricValueStatus::default()
            },
        });
    }
    if target.kind == "AverageValue"
        && let Some(av) = target.average_value
    {
        let usage = object_metric_value(ctx, metric, object).map_err(|e| {
            (
                e.clone(),
                format!("failed to get {} object metric: {e}", metric.name),
            )
        })?;
        let (replicas, average) = per_pod_replicas(ctx, usage, av.milli_value(), trace);
        return Ok(Proposal {
            replicas,
            // Upstream labels per-pod Object metrics "external" (contract 7.8).
            metric_name: external_metric_name(metric),
            current: MetricValueStatus {
                average_value: average,
                ..MetricValueStatus::default()
            },
        });
    }
    let e =
        "invalid object metric source: neither a value target nor an average value target was set"
            .to_string();
    Err((e.clone(), e))
}

/// The spec's target, as given (the calculators narrow it to what they read).
fn trace_target(trace: &mut MetricTrace, target: &MetricTarget) {
    trace.target.kind.clone_from(&target.kind);
    trace.target.average_utilization = target.average_utilization;
    let value = if target.kind == "Value" {
        target.value.or(target.average_value)
    } else {
        target.average_value.or(target.value)
    };
    trace.target.value_milli = value.map(|q| q.milli_value());
}

fn external_metric_name(metric: &MetricIdentifier) -> String {
    format!(
        "external metric {}({})",
        metric.name,
        LabelSelector::go_string(metric.selector.as_ref())
    )
}

/// The sum of all external series, staying at `INT64_MAX` once a partial sum
/// would overflow (contract 2.7).
///
/// Upstream's per-pod path detects overflow as "the wrapped sum went negative",
/// which also turns a legitimately negative sum into `INT64_MAX`; the contract
/// describes overflow only, and negative sums are kept here (a negative sum
/// below `INT64_MIN` saturates there).
fn external_sum(values: &[i64]) -> i64 {
    let mut usage = 0i64;
    for v in values {
        match usage.checked_add(*v) {
            Some(sum) => usage = sum,
            None if *v > 0 => return i64::MAX,
            None => usage = i64::MIN,
        }
    }
    usage
}

/// `computeStatusForExternalMetric`: errors are (condition error, returned error).
fn external_metric(
    ctx: &Ctx<'_>,
    metric: &MetricIdentifier,
    target: &MetricTarget,
    trace: &mut MetricTrace,
) -> Result<Proposal, (String, String)> {
    trace_target(trace, target);
    if let Some(av) = target.average_value {
        let values = external_metric_values(ctx, metric).map_err(|e| {
            (
                e.clone(),
                format!("failed to get {} external metric: {e}", metric.name),
            )
        })?;
        let usage = external_sum(&values);
        let (replicas, average) = per_pod_replicas(ctx, usage, av.milli_value(), trace);
        return Ok(Proposal {
            replicas,
            metric_name: external_metric_name(metric),
            current: MetricValueStatus {
                average_value: average,
                ..MetricValueStatus::default()
            },
        });
    }
    if let Some(value) = target.value {
        let mut run = || -> Result<(i32, i64), String> {
            let values = external_metric_values(ctx, metric)?;
            let usage = external_sum(&values);
            trace.usage_milli = Some(usage);
            let ratio = usage as f64 / value.milli_value() as f64;
            Ok((usage_ratio_replica_count(ctx, ratio, trace)?, usage))
        };
        let (replicas, usage) = run().map_err(|e| {
            (
                e.clone(),
                format!("failed to get external metric {}: {e}", metric.name),
            )
        })?;
        return Ok(Proposal {
            replicas,
            metric_name: external_metric_name(metric),
            current: MetricValueStatus {
                value: Some(usage),
                ..MetricValueStatus::default()
            },
        });
    }
    let e = "invalid external metric source: neither a value target nor an average value target was set"
        .to_string();
    Err((e.clone(), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn inline_name_comparisons_agree_with_str(a in "[a-z0-9-]{0,30}", b in "[a-z0-9-]{0,30}") {
            prop_assert_eq!(name_eq(&a, &b), a == b);
            prop_assert_eq!(name_cmp(&a, &b), a.as_str().cmp(b.as_str()));
            prop_assert!(name_eq(&a, &a.clone()));
            prop_assert_eq!(name_cmp(&a, &a.clone()), std::cmp::Ordering::Equal);
        }

        #[test]
        fn the_three_join_paths_agree(
            names in prop::collection::btree_set("[a-z]{1,3}-[0-9a-f]{1,12}", 1..40),
            keep_sample in prop::collection::vec(any::<bool>(), 40),
            rotate in 0usize..40,
        ) {
            let names: Vec<String> = names.into_iter().collect();
            let sample = |v: i64| Sample { value: v, timestamp: Time::ZERO, window: Duration::default() };
            let samples_all: Vec<(&str, Sample)> =
                names.iter().enumerate().map(|(i, n)| (n.as_str(), sample(i as i64))).collect();
            let samples_some: Vec<(&str, Sample)> = samples_all
                .iter()
                .zip(&keep_sample)
                .filter(|(_, k)| **k)
                .map(|(s, _)| *s)
                .collect();
            let pod = |n: &str| Pod {
                name: n.to_string(),
                labels: Default::default(),
                deleting: false,
                phase: PodPhase::Running,
                start_time: None,
                ready: None,
                containers: vec![],
                init_containers: vec![],
                pod_requests: None,
            };
            let pods: Vec<Pod> = names.iter().map(|n| pod(n)).collect();
            let mut shuffled = pods.clone();
            let r = rotate % shuffled.len();
            shuffled.rotate_left(r);
            shuffled.reverse();
            // (pod name -> sample value) must not depend on the path taken.
            let pairs = |samples: &[(&str, Sample)], pods: &[Pod]| {
                let (slots, pod_slot) = join_by_name(samples, pods);
                let mut out: Vec<(String, Option<i64>)> = pods
                    .iter()
                    .zip(&pod_slot)
                    .map(|(p, k)| {
                        let s = slots[*k as usize];
                        (p.name.clone(), samples.get(s.sample as usize).map(|x| x.1.value))
                    })
                    .collect();
                out.sort();
                (out, slots.len())
            };
            let aligned = pairs(&samples_all, &pods);
            prop_assert_eq!(&aligned, &pairs(&samples_all, &shuffled));
            prop_assert_eq!(pairs(&samples_some, &pods), pairs(&samples_some, &shuffled));
            prop_assert_eq!(aligned.1, names.len());
        }
    }

    #[test]
    fn duplicate_names_keep_the_last_sample_and_the_last_pod_on_every_path() {
        let sample = |v: i64| Sample {
            value: v,
            timestamp: Time::ZERO,
            window: Duration::default(),
        };
        let pod = |n: &str| Pod {
            name: n.to_string(),
            labels: Default::default(),
            deleting: false,
            phase: PodPhase::Running,
            start_time: None,
            ready: None,
            containers: vec![],
            init_containers: vec![],
            pod_requests: None,
        };
        let samples = vec![("a", sample(1)), ("b", sample(2)), ("a", sample(3))];
        let pods = vec![pod("a"), pod("b"), pod("a")];
        let (slots, pod_slot) = join_by_name(&samples, &pods);
        assert_eq!(slots.len(), 2);
        assert_eq!(pod_slot[0], pod_slot[2]);
        let a = slots[pod_slot[0] as usize];
        assert_eq!((a.sample, a.pod), (2, 2));
    }
}
