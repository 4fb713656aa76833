//! Pod grouping (`groupPods`, contract 2.2): joins a metric's samples to the
//! listed pods by name, classifies every pod, and describes the result for the
//! trace.

use std::cmp::Ordering;

use super::Ctx;
use crate::model::{ConditionStatus, Pod, PodPhase};
use crate::time::{Duration, Time};
use crate::trace::{PODS_LISTED_PER_CLASS, PodClass, PodReason, PodTrace, PodsTrace, ReasonCount};

/// One metric sample (`metricsclient.PodMetric`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Sample {
    pub value: i64,
    pub timestamp: Time,
    pub window: Duration,
}

/// Everything known about one pod name.
///
/// Go keeps a sample map, a request map and three name sets, all keyed by pod
/// name; one entry per distinct name has the same semantics: the last sample
/// and the last pod of a name win, and class membership is per name.
#[derive(Debug, Clone)]
pub(super) struct NameEntry<'s> {
    /// Index in `Ctx::pods` of the last listed pod with this name; `None` for a
    /// sample whose pod is not listed (an extraneous sample).
    pub pod: Option<usize>,
    /// The last sample with this name.
    pub sample: Option<&'s Sample>,
    pub unready: bool,
    pub missing: bool,
    pub ignored: bool,
    /// Why the (last) pod of this name got its class, for the trace.
    pub reason: PodReason,
    /// The value in the working sample map: removed for ignored and unready
    /// pods, filled in by rebalancing.
    pub active: Option<i64>,
}

/// The pods of one metric after grouping.
pub(super) struct Grouped<'s> {
    /// One entry per distinct name, in name order.
    pub entries: Vec<NameEntry<'s>>,
    /// Pods counted as ready (per pod, as upstream counts them).
    pub ready_pod_count: i64,
}

impl Grouped<'_> {
    pub fn active_len(&self) -> usize {
        self.entries.iter().filter(|e| e.active.is_some()).count()
    }

    pub fn unready_len(&self) -> usize {
        self.entries.iter().filter(|e| e.unready).count()
    }

    pub fn missing_len(&self) -> usize {
        self.entries.iter().filter(|e| e.missing).count()
    }
}

/// A name and its position in the list it comes from.
type Named<'n> = (&'n str, usize);

/// The names of one list with their positions, in name order.
struct ByName<'n> {
    named: Vec<Named<'n>>,
    /// The list was strictly increasing as given: no name occurs twice, so
    /// every run of equal names has length one. (`false` says nothing.)
    unique: bool,
}

/// Puts names in name order. A list that is already strictly increasing is
/// the usual case (the operator lists pods by name and metrics-server returns
/// them so): one pass checks it, and shows that no name occurs twice. Any
/// other list is sorted; the sort is stable, so that a name given twice keeps
/// the order it was given in.
fn by_name<'n>(names: impl Iterator<Item = &'n str>) -> ByName<'n> {
    let mut named: Vec<Named<'n>> = names.zip(0..).collect();
    let unique = named.is_sorted_by(|a, b| a.0 < b.0);
    if !unique {
        named.sort_by(|a, b| a.0.cmp(b.0));
    }
    ByName { named, unique }
}

/// Takes the run of names at the front of `names` that are equal to the first
/// one (a single name when the list is unique).
fn take_run<'a, 'n>(names: &mut &'a [Named<'n>], unique: bool) -> &'a [Named<'n>] {
    let len = match names.split_first() {
        None => 0,
        Some(_) if unique => 1,
        Some((first, tail)) => 1 + tail.iter().take_while(|n| n.0 == first.0).count(),
    };
    let (run, rest) = names.split_at(len);
    *names = rest;
    run
}

/// Whether pod `i` and sample `i` name the same pod for every `i`, with the names strictly
/// increasing (so none occurs twice and name order is the order given).
fn aligned(pods: &[Pod], samples: &[(&str, Sample)]) -> bool {
    pods.len() == samples.len()
        && pods.iter().zip(samples).all(|(p, s)| p.name == s.0)
        && pods.windows(2).all(|w| w[0].name < w[1].name)
}

/// Joins samples to pods by name: calls `visit` once per distinct name, in
/// name order, with the positions of the pods of that name (in the order
/// given; none for a sample whose pod is not listed) and the last sample of
/// that name (Go's sample map keeps the last).
fn join_by_name<'s>(
    pods: &[Pod],
    samples: &'s [(&str, Sample)],
    mut visit: impl FnMut(&[Named<'_>], Option<&'s Sample>),
) {
    // The operator's case: pods listed by name, metrics-server's samples in the same order, one
    // per pod. Pairing them in place needs one comparison per pod and no sorted copies, a
    // third of the general path's work; anything else falls through to the sorted merge.
    if aligned(pods, samples) {
        for (i, (pod, sample)) in pods.iter().zip(samples).enumerate() {
            visit(&[(pod.name.as_str(), i)], Some(&sample.1));
        }
        return;
    }
    let pod_names = by_name(pods.iter().map(|p| p.name.as_str()));
    let sample_names = by_name(samples.iter().map(|s| s.0));
    let (mut pods_left, mut samples_left) =
        (pod_names.named.as_slice(), sample_names.named.as_slice());
    loop {
        let order = match (pods_left.first(), samples_left.first()) {
            (Some(pod), Some(sample)) => pod.0.cmp(sample.0),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => break,
        };
        let pods_named = if order == Ordering::Greater {
            &[]
        } else {
            take_run(&mut pods_left, pod_names.unique)
        };
        let samples_named = if order == Ordering::Less {
            &[]
        } else {
            take_run(&mut samples_left, sample_names.unique)
        };
        let sample = samples_named
            .last()
            .and_then(|(_, j)| samples.get(*j))
            .map(|(_, sample)| sample);
        visit(pods_named, sample);
    }
}

/// Classifies the pods (contract 2.2) and drops ignored and unready samples.
pub(super) fn group_pods<'s>(
    ctx: &Ctx<'_>,
    samples: &'s [(&str, Sample)],
    resource: &str,
) -> Grouped<'s> {
    let is_cpu = resource == "cpu";
    let mut entries = Vec::with_capacity(ctx.pods.len());
    let mut ready_pod_count = 0i64;
    join_by_name(ctx.pods, samples, |pods_named, sample| {
        let mut entry = NameEntry {
            pod: None,
            sample,
            unready: false,
            missing: false,
            ignored: false,
            reason: PodReason::Counted,
            active: None,
        };
        for (_, i) in pods_named {
            let Some(pod) = ctx.pods.get(*i) else {
                continue;
            };
            // Every pod of the name is classified; the last one's reason is reported.
            entry.pod = Some(*i);
            entry.reason = classify(ctx, pod, sample, is_cpu);
            match entry.reason.class() {
                PodClass::Ready => ready_pod_count += 1,
                PodClass::Unready => entry.unready = true,
                PodClass::Missing => entry.missing = true,
                PodClass::Ignored => entry.ignored = true,
            }
        }
        if !entry.ignored && !entry.unready {
            entry.active = sample.map(|s| s.value);
        }
        entries.push(entry);
    });
    Grouped {
        entries,
        ready_pod_count,
    }
}

/// Why one pod is counted as it is, with the rules in upstream's order.
fn classify(ctx: &Ctx<'_>, pod: &Pod, sample: Option<&Sample>, is_cpu: bool) -> PodReason {
    if pod.deleting {
        return PodReason::Deleting;
    }
    if pod.phase == PodPhase::Failed {
        return PodReason::PhaseFailed;
    }
    if pod.phase == PodPhase::Pending {
        return PodReason::PhasePending;
    }
    let Some(sample) = sample else {
        return PodReason::NoSample;
    };
    if is_cpu && let Some(reason) = cpu_sample_unready(ctx, pod, sample) {
        return reason;
    }
    PodReason::Counted
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

/// The pods of one metric for the trace: every pod name counted by reason, at
/// most [`PODS_LISTED_PER_CLASS`] of each class listed (the first ones in name
/// order). One pass over the entries.
pub(super) fn trace_pods(ctx: &Ctx<'_>, g: &Grouped, requests: Option<&[i64]>) -> PodsTrace {
    let mut by_reason = [0u32; PodReason::ALL.len()];
    let mut listed_per_class = [0usize; PodClass::ALL.len()];
    let mut listed = Vec::new();
    let mut extraneous = 0u32;
    for entry in &g.entries {
        let Some((index, pod)) = entry.pod.and_then(|i| ctx.pods.get(i).map(|p| (i, p))) else {
            extraneous += 1;
            continue;
        };
        if let Some(c) = by_reason.get_mut(entry.reason.index()) {
            *c += 1;
        }
        let class = entry.reason.class() as usize;
        if let Some(n) = listed_per_class.get_mut(class)
            && *n < PODS_LISTED_PER_CLASS
        {
            *n += 1;
            listed.push(PodTrace {
                name: pod.name.clone(),
                reason: entry.reason,
                usage_milli: entry.sample.map(|s| s.value),
                request_milli: requests.and_then(|r| r.get(index).copied()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(value: i64) -> Sample {
        Sample {
            value,
            timestamp: Time::ZERO,
            window: Duration::default(),
        }
    }

    fn pod(name: &str) -> Pod {
        Pod {
            name: name.to_string(),
            labels: Default::default(),
            deleting: false,
            phase: PodPhase::Running,
            start_time: None,
            ready: None,
            containers: vec![],
            init_containers: vec![],
            pod_requests: None,
        }
    }

    /// What the join visits: (positions of the pods, value of the sample) per name.
    fn visited(samples: &[(&str, Sample)], pods: &[Pod]) -> Vec<(Vec<usize>, Option<i64>)> {
        let mut out = Vec::new();
        join_by_name(pods, samples, |named, sample| {
            out.push((named.iter().map(|n| n.1).collect(), sample.map(|s| s.value)));
        });
        out
    }

    /// (pod name, its sample value) for every pod, sorted, and the number of names.
    fn joined(samples: &[(&str, Sample)], pods: &[Pod]) -> (Vec<(String, Option<i64>)>, usize) {
        let names = visited(samples, pods);
        let mut out: Vec<(String, Option<i64>)> = names
            .iter()
            .flat_map(|(positions, value)| {
                positions
                    .iter()
                    .map(move |i| (pods[*i].name.clone(), *value))
            })
            .collect();
        out.sort();
        (out, names.len())
    }

    proptest! {
        #[test]
        fn the_join_does_not_depend_on_the_order_of_pods(
            names in prop::collection::btree_set("[a-z]{1,3}-[0-9a-f]{1,12}", 1..40),
            keep_sample in prop::collection::vec(any::<bool>(), 40),
            rotate in 0usize..40,
        ) {
            let names: Vec<String> = names.into_iter().collect();
            let samples_all: Vec<(&str, Sample)> =
                names.iter().enumerate().map(|(i, n)| (n.as_str(), sample(i as i64))).collect();
            let samples_some: Vec<(&str, Sample)> = samples_all
                .iter()
                .zip(&keep_sample)
                .filter(|(_, k)| **k)
                .map(|(s, _)| *s)
                .collect();
            let pods: Vec<Pod> = names.iter().map(|n| pod(n)).collect();
            let mut shuffled = pods.clone();
            let r = rotate % shuffled.len();
            shuffled.rotate_left(r);
            shuffled.reverse();
            let aligned = joined(&samples_all, &pods);
            prop_assert_eq!(&aligned, &joined(&samples_all, &shuffled));
            prop_assert_eq!(joined(&samples_some, &pods), joined(&samples_some, &shuffled));
            prop_assert_eq!(aligned.1, names.len());
        }
    }

    #[test]
    fn duplicate_names_keep_the_last_sample_and_the_last_pod() {
        let samples = vec![("a", sample(1)), ("b", sample(2)), ("a", sample(3))];
        let pods = vec![pod("a"), pod("b"), pod("a")];
        let names = visited(&samples, &pods);
        assert_eq!(names.len(), 2);
        assert_eq!(
            names[0],
            (vec![0, 2], Some(3)),
            "both pods a, the last sample of a"
        );
        assert_eq!(names[1], (vec![1], Some(2)));
    }

    #[test]
    fn names_are_visited_in_name_order_whatever_the_order_given() {
        let samples = vec![("z", sample(1)), ("b", sample(2)), ("a", sample(3))];
        let pods = vec![pod("b"), pod("c"), pod("a")];
        assert_eq!(
            visited(&samples, &pods),
            vec![
                (vec![2], Some(3)),
                (vec![0], Some(2)),
                (vec![1], None),
                (vec![], Some(1)),
            ]
        );
    }
}
