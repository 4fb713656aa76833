//! What selecting one AutoScaler's pods costs a reconcile, against the pod count of the
//! cluster: the flat store every reconcile used to filter (kube's `reflector::Store`,
//! `state_filter` over every pod) beside the namespace and label index (`pods::PodIndex`).
//! 100 namespaces, workloads of 10 pods each (`app=<name>`, plus a `pod-template-hash`), one
//! AutoScaler per workload selecting `app=<name>`.
//! Run: `cargo bench -p tidal --bench pod_selection`.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_main};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{reflector, watcher};
use tidal::pods::{CachedPod, PodIndex};

const NAMESPACES: usize = 100;
const PODS_PER_WORKLOAD: usize = 10;

fn pod(namespace: &str, app: &str, i: usize) -> Pod {
    let mut pod = Pod::default();
    pod.metadata.name = Some(format!("{app}-7d9f8c-{i:05}"));
    pod.metadata.namespace = Some(namespace.to_string());
    pod.metadata.labels = Some(BTreeMap::from([
        ("app".to_string(), app.to_string()),
        ("pod-template-hash".to_string(), "7d9f8c".to_string()),
    ]));
    pod
}

/// `pods` pods in [`NAMESPACES`] namespaces; returns them and one selector per workload.
fn cluster(pods: usize) -> (Vec<Pod>, Vec<(String, scaling::Selector)>) {
    let workloads = pods / PODS_PER_WORKLOAD;
    let mut all = Vec::with_capacity(pods);
    let mut selectors = Vec::with_capacity(workloads);
    for w in 0..workloads {
        let namespace = format!("ns-{:03}", w % NAMESPACES);
        let app = format!("app-{w:05}");
        for i in 0..PODS_PER_WORKLOAD {
            all.push(pod(&namespace, &app, i));
        }
        selectors.push((
            namespace,
            scaling::Selector::parse(&format!("app={app}")).expect("selector"),
        ));
    }
    (all, selectors)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("select_one_autoscalers_pods");
    for pods in [1_000, 10_000] {
        let (all, selectors) = cluster(pods);
        let (store, mut writer) = reflector::store::<Pod>();
        let (index, mut index_writer) = PodIndex::new();
        writer.apply_watcher_event(&watcher::Event::Init);
        index_writer.apply(watcher::Event::Init);
        for p in &all {
            writer.apply_watcher_event(&watcher::Event::InitApply(p.clone()));
            index_writer.apply(watcher::Event::InitApply(CachedPod::from(p)));
        }
        writer.apply_watcher_event(&watcher::Event::InitDone);
        index_writer.apply(watcher::Event::InitDone);
        // Every reconcile of a sync cycle selects a different AutoScaler's pods.
        let mut next = 0;
        let mut pick = move || {
            next = (next + 1) % selectors.len();
            selectors[next].clone()
        };
        let empty = BTreeMap::new();
        group.bench_function(BenchmarkId::new("flat_store_state_filter", pods), |b| {
            b.iter_batched(
                &mut pick,
                |(namespace, selector)| {
                    let found = store.state_filter(|pod| {
                        pod.metadata.namespace.as_deref() == Some(namespace.as_str())
                            && selector.matches(pod.metadata.labels.as_ref().unwrap_or(&empty))
                    });
                    assert_eq!(found.len(), PODS_PER_WORKLOAD);
                    black_box(found)
                },
                criterion::BatchSize::SmallInput,
            )
        });
        group.bench_function(BenchmarkId::new("pod_index_select", pods), |b| {
            b.iter_batched(
                &mut pick,
                |(namespace, selector)| {
                    let found = index.select(&namespace, &selector);
                    assert_eq!(found.len(), PODS_PER_WORKLOAD);
                    black_box(found)
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

// The macro's generated function has no doc comment.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
use group::benches;
criterion_main!(benches);
