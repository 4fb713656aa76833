//! Time of one decision over 10, 100, 1,000 and 10,000 pods with a CPU
//! utilization metric. Inputs are built once; only `scaling::decide` is timed.
//! Run: `cargo bench -p scaling`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_main};
use scaling::{
    AutoscalerSpec, AutoscalerStatus, ConditionStatus, Config, Container, ContainerMetrics,
    DecisionInput, Duration, History, Labels, MetricSpec, ObjectMeta, ObjectReference, Pod,
    PodMetrics, PodPhase, PodReady, Recommendation, Scale, ScaleRead, Time, decide,
};
use std::hint::black_box;

/// A Deployment-like workload: two containers per pod (app + sidecar), cpu and
/// memory requests, Ready for an hour, metrics a few seconds old, usage spread
/// around 65% of the request so the decision is a real scale-up.
pub fn workload(pods: usize) -> DecisionInput {
    let now = Time::from_unix_nanos(1_772_359_200 * 1_000_000_000);
    let hour_ago = now - Duration::from_seconds(3600);
    let mut labels = Labels::new();
    labels.insert("app".to_string(), "web".to_string());
    labels.insert("pod-template-hash".to_string(), "7d9f8b6c5".to_string());
    let pod_list: Vec<Pod> = (0..pods)
        .map(|i| Pod {
            name: format!("web-7d9f8b6c5-{i:05x}"),
            labels: labels.clone(),
            deleting: false,
            phase: PodPhase::Running,
            start_time: Some(hour_ago),
            ready: Some(PodReady {
                status: ConditionStatus::True,
                last_transition_time: hour_ago + Duration::from_seconds(20),
            }),
            containers: vec![
                Container {
                    name: "app".to_string(),
                    requests: vec![
                        ("cpu".to_string(), 500),
                        ("memory".to_string(), 536_870_912_000),
                    ]
                    .into(),
                    restart_always: false,
                },
                Container {
                    name: "proxy".to_string(),
                    requests: vec![
                        ("cpu".to_string(), 100),
                        ("memory".to_string(), 67_108_864_000),
                    ]
                    .into(),
                    restart_always: false,
                },
            ],
            init_containers: Vec::new(),
            pod_requests: None,
        })
        .collect();
    let metrics: Vec<PodMetrics> = (0..pods)
        .map(|i| PodMetrics {
            name: format!("web-7d9f8b6c5-{i:05x}"),
            timestamp: now - Duration::from_seconds(10),
            window: Duration::from_seconds(30),
            containers: vec![
                ContainerMetrics {
                    name: "app".to_string(),
                    usage: vec![
                        ("cpu".to_string(), 300 + (i as i64 * 37) % 100),
                        ("memory".to_string(), 300_000_000_000),
                    ]
                    .into(),
                },
                ContainerMetrics {
                    name: "proxy".to_string(),
                    usage: vec![
                        ("cpu".to_string(), 50),
                        ("memory".to_string(), 30_000_000_000),
                    ]
                    .into(),
                },
            ],
        })
        .collect();
    let replicas = pods as i32;
    DecisionInput {
        now,
        config: Config::default(),
        metadata: ObjectMeta {
            name: "web".to_string(),
            namespace: "shop".to_string(),
        },
        spec: AutoscalerSpec {
            scale_target_ref: ObjectReference {
                api_version: "apps/v1".to_string(),
                kind: "Deployment".to_string(),
                name: "web".to_string(),
            },
            min_replicas: Some(1),
            max_replicas: replicas * 4,
            metrics: vec![MetricSpec::default_cpu()],
            behavior: None,
        },
        status: AutoscalerStatus {
            desired_replicas: replicas,
            current_replicas: replicas,
            conditions: Vec::new(),
        },
        scale: ScaleRead::Read(Scale {
            spec_replicas: replicas,
            status_replicas: replicas,
            selector: "app=web".to_string(),
        }),
        pods: pod_list,
        pod_metrics: Ok(metrics),
        metric_values: Vec::new(),
        other_autoscalers: Vec::new(),
        history: Some(History {
            recommendations: Some(vec![Recommendation {
                replicas,
                timestamp: now - Duration::from_seconds(60),
            }]),
            ..History::default()
        }),
        metric_policies: Vec::new(),
    }
}

/// The same workload with the pod list in an order unrelated to the metrics
/// list, as a pod cache may return it: the join has to sort it first.
pub fn unsorted_workload(pods: usize) -> DecisionInput {
    let mut input = workload(pods);
    // A fixed permutation (stride coprime with the length), not a sort.
    let n = input.pods.len();
    let stride = (1..n.max(2)).rev().find(|s| gcd(*s, n) == 1).unwrap_or(1);
    let original = std::mem::take(&mut input.pods);
    input.pods = (0..n)
        .filter_map(|i| original.get((i * stride) % n).cloned())
        .collect();
    input
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn bench_decision(c: &mut Criterion) {
    let mut group = c.benchmark_group("decision_cpu_utilization");
    for pods in [10usize, 100, 1_000, 10_000] {
        let input = workload(pods);
        group.throughput(Throughput::Elements(pods as u64));
        group.bench_with_input(BenchmarkId::from_parameter(pods), &input, |b, input| {
            b.iter(|| decide(black_box(input), |_| Ok(())));
        });
    }
    group.finish();
    let mut group = c.benchmark_group("decision_cpu_utilization_unsorted_pods");
    for pods in [1_000usize, 10_000] {
        let input = unsorted_workload(pods);
        group.throughput(Throughput::Elements(pods as u64));
        group.bench_with_input(BenchmarkId::from_parameter(pods), &input, |b, input| {
            b.iter(|| decide(black_box(input), |_| Ok(())));
        });
    }
    group.finish();
}

// The macro generates an undocumented public function.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench_decision);
}
use group::benches;
criterion_main!(benches);
