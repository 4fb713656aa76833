//! Pod classification (contract 2.2): ignored, unready, missing or ready, with
//! the CPU-only readiness rules. Each row puts the pod under test beside one
//! ready reference pod under two utilization metrics (targets 10% and 200%);
//! every class gives a different pair of proposals (FORMAT Appendix A).
#![allow(clippy::unwrap_used, clippy::type_complexity)]

mod common;
use common::*;
use serde_json::{Value, json};

#[derive(Debug, PartialEq)]
enum Class {
    Ready,
    Unready,
    Missing,
    Ignored,
}

/// The test pod requests 3 units and uses 0.6 when it has a sample; the
/// reference pod requests 1 and uses 1.
fn classify(resource: &str, test_pod: Value, test_sample: Option<Value>) -> Class {
    let metric = |target: i32| json!({"type": "Resource", "resource": {"name": resource, "target": {"type": "Utilization", "averageUtilization": target}}});
    let mut v = input(2, json!([metric(10), metric(200)]));
    let reference = json!({
        "metadata": {"name": "reference"},
        "spec": {"containers": [{"name": "app", "resources": {"requests": {resource: "1"}}}]},
        "status": {"phase": "Running", "startTime": LONG_AGO,
                   "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": LONG_AGO}]}
    });
    v["pods"] = json!([reference, test_pod]);
    let mut samples = vec![
        json!({"metadata": {"name": "reference"}, "timestamp": NOW, "window": "60s",
                                  "containers": [{"name": "app", "usage": {resource: "1"}}]}),
    ];
    samples.extend(test_sample);
    v["podMetrics"] = Value::Array(samples);
    let d = run(&v);
    match (
        proposal(&d, 0),
        proposal(&d, 1),
        current(&d, 0).average_utilization,
    ) {
        (8, 1, Some(40)) => Class::Ready,
        (5, 1, Some(100)) => Class::Unready,
        (5, 2, Some(100)) => Class::Missing,
        (10, 1, Some(100)) => Class::Ignored,
        other => panic!("unexpected proposals {other:?}"),
    }
}

struct PodFacts {
    phase: &'static str,
    deleting: bool,
    start: Option<String>,
    /// (status, lastTransitionTime)
    ready: Option<(&'static str, String)>,
}

fn test_pod(resource: &str, f: &PodFacts) -> Value {
    let mut status = json!({"phase": f.phase});
    if let Some(s) = &f.start {
        status["startTime"] = json!(s);
    }
    if let Some((st, ltt)) = &f.ready {
        status["conditions"] = json!([{"type": "Ready", "status": st, "lastTransitionTime": ltt}]);
    }
    let mut metadata = json!({"name": "test-pod"});
    if f.deleting {
        metadata["deletionTimestamp"] = json!(NOW);
    }
    json!({"metadata": metadata,
           "spec": {"containers": [{"name": "app", "resources": {"requests": {resource: "3"}}}]},
           "status": status})
}

fn test_sample(resource: &str, timestamp: &str, window: &str) -> Value {
    json!({"metadata": {"name": "test-pod"}, "timestamp": timestamp, "window": window,
           "containers": [{"name": "app", "usage": {resource: "600m"}}]})
}

fn facts(phase: &'static str, start: Option<i64>, ready: Option<(&'static str, i64)>) -> PodFacts {
    PodFacts {
        phase,
        deleting: false,
        start: start.map(at),
        ready: ready.map(|(s, t)| (s, at(t))),
    }
}

#[test]
fn pods_are_classified_in_upstream_order() {
    // (name, resource, facts, sample (timestamp offset, window) or none, class)
    let long = |ready: Option<(&'static str, i64)>| PodFacts {
        phase: "Running",
        deleting: false,
        start: Some(LONG_AGO.to_string()),
        ready: ready.map(|(s, _)| (s, LONG_AGO.to_string())),
    };
    let rows: Vec<(&str, &str, PodFacts, Option<(i64, &str)>, Class)> = vec![
        (
            "ready running pod counts",
            "cpu",
            long(Some(("True", 0))),
            Some((0, "60s")),
            Class::Ready,
        ),
        (
            "deleting pod is ignored even with a sample",
            "cpu",
            PodFacts {
                deleting: true,
                ..long(Some(("True", 0)))
            },
            Some((0, "60s")),
            Class::Ignored,
        ),
        (
            "failed pod is ignored",
            "cpu",
            PodFacts {
                phase: "Failed",
                ..long(Some(("True", 0)))
            },
            Some((0, "60s")),
            Class::Ignored,
        ),
        (
            "failed pod without sample is ignored, not missing",
            "cpu",
            PodFacts {
                phase: "Failed",
                ..long(None)
            },
            None,
            Class::Ignored,
        ),
        (
            "pending pod is unready with a sample",
            "cpu",
            PodFacts {
                phase: "Pending",
                ..long(None)
            },
            Some((0, "60s")),
            Class::Unready,
        ),
        (
            "pending pod is unready without a sample",
            "memory",
            PodFacts {
                phase: "Pending",
                ..long(None)
            },
            None,
            Class::Unready,
        ),
        (
            "running pod without sample is missing",
            "cpu",
            long(Some(("True", 0))),
            None,
            Class::Missing,
        ),
        (
            "cpu: no Ready condition is unready",
            "cpu",
            long(None),
            Some((0, "60s")),
            Class::Unready,
        ),
        (
            "cpu: no start time is unready",
            "cpu",
            PodFacts {
                start: None,
                ..long(Some(("True", 0)))
            },
            Some((0, "60s")),
            Class::Unready,
        ),
        (
            "memory: no Ready condition still counts",
            "memory",
            long(None),
            Some((0, "60s")),
            Class::Ready,
        ),
        (
            "memory: NotReady pod with a sample counts",
            "memory",
            long(Some(("False", 0))),
            Some((0, "60s")),
            Class::Ready,
        ),
        (
            "memory: Succeeded pod with a sample counts",
            "memory",
            PodFacts {
                phase: "Succeeded",
                ..long(None)
            },
            Some((0, "60s")),
            Class::Ready,
        ),
        // Initialization period (120 s): started 60 s ago.
        (
            "cpu init: Ready with a sample a full window after the transition counts",
            "cpu",
            facts("Running", Some(-60), Some(("True", -30))),
            Some((0, "30s")),
            Class::Ready,
        ),
        (
            "cpu init: sample exactly one window after the transition counts (strict Before)",
            "cpu",
            facts("Running", Some(-60), Some(("True", -30))),
            Some((0, "30s")),
            Class::Ready,
        ),
        (
            "cpu init: sample less than a window after the transition is unready",
            "cpu",
            facts("Running", Some(-60), Some(("True", -30))),
            Some((-1, "30s")),
            Class::Unready,
        ),
        (
            "cpu init: NotReady is unready",
            "cpu",
            facts("Running", Some(-60), Some(("False", -50))),
            Some((0, "1s")),
            Class::Unready,
        ),
        (
            "cpu init: Unknown readiness with a fresh sample counts",
            "cpu",
            facts("Running", Some(-60), Some(("Unknown", -50))),
            Some((0, "10s")),
            Class::Ready,
        ),
        (
            "cpu init: Unknown readiness with a stale sample is unready",
            "cpu",
            facts("Running", Some(-60), Some(("Unknown", -50))),
            Some((-45, "10s")),
            Class::Unready,
        ),
        (
            "cpu init ends strictly: start + period == now is initialized",
            "cpu",
            facts("Running", Some(-120), Some(("True", -1))),
            Some((0, "60s")),
            Class::Ready,
        ),
        (
            "cpu init: one second before the end is still initializing",
            "cpu",
            facts("Running", Some(-119), Some(("True", -1))),
            Some((0, "60s")),
            Class::Unready,
        ),
        // After initialization: NotReady only matters if it never became ready.
        (
            "cpu: unready within the readiness delay after start is unready",
            "cpu",
            facts("Running", Some(-600), Some(("False", -595))),
            Some((0, "60s")),
            Class::Unready,
        ),
        (
            "cpu: unready after the readiness delay still counts",
            "cpu",
            facts("Running", Some(-600), Some(("False", -540))),
            Some((0, "60s")),
            Class::Ready,
        ),
        (
            "cpu: transition exactly at start + delay counts (strict After)",
            "cpu",
            facts("Running", Some(-600), Some(("False", -590))),
            Some((0, "60s")),
            Class::Ready,
        ),
        (
            "cpu: Ready True after initialization counts even with an old sample",
            "cpu",
            facts("Running", Some(-600), Some(("True", -10))),
            Some((-500, "60s")),
            Class::Ready,
        ),
    ];
    for (name, resource, f, s, want) in rows {
        let sample = s.map(|(ts, w)| test_sample(resource, &at(ts), w));
        let got = classify(resource, test_pod(resource, &f), sample);
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn ready_condition_without_transition_time_is_the_zero_time() {
    // Started 60 s ago (initializing), Ready with no lastTransitionTime: the
    // zero time plus a window is long past, so the sample counts.
    let pod = json!({"metadata": {"name": "test-pod"},
        "spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": "3"}}}]},
        "status": {"phase": "Running", "startTime": at(-60), "conditions": [{"type": "Ready", "status": "True"}]}});
    assert_eq!(
        classify("cpu", pod, Some(test_sample("cpu", NOW, "60s"))),
        Class::Ready
    );
}

#[test]
fn container_resource_cpu_applies_the_cpu_readiness_rule() {
    let mut v = input(
        2,
        json!([{"type": "ContainerResource", "containerResource": {
        "name": "cpu", "container": "app", "target": {"type": "Utilization", "averageUtilization": 10}}}]),
    );
    v["pods"] = json!([
        pod("a", "1"),
        test_pod("cpu", &facts("Running", Some(-60), None))
    ]);
    v["pods"][1]["spec"]["containers"][0]["name"] = json!("app");
    v["podMetrics"] = json!([sample("a", "1"), test_sample("cpu", NOW, "60s")]);
    let d = run(&v);
    // test-pod has no Ready condition: unready, so only "a" is averaged.
    assert_eq!(current(&d, 0).average_utilization, Some(100));
}

#[test]
fn pods_metrics_never_check_readiness() {
    let mut v = input(2, json!([pods_metric("10")]));
    v["pods"] = json!([
        pod("a", "1"),
        test_pod("cpu", &facts("Running", Some(-10), Some(("False", -5))))
    ]);
    v["metricValues"] = json!([{"type": "Pods", "metric": {"name": "qps"}, "items": [
        {"describedObject": {"kind": "Pod", "name": "a"}, "value": "10"},
        {"describedObject": {"kind": "Pod", "name": "test-pod"}, "value": "30"}]}]);
    let d = run(&v);
    assert_eq!(current(&d, 0).average_value, Some(20_000));
    assert_eq!(proposal(&d, 0), 4);
}

#[test]
fn no_sample_left_after_dropping_unready_pods_is_an_error() {
    let mut v = input(1, json!([cpu_utilization(50)]));
    v["pods"] = json!([test_pod("cpu", &facts("Pending", None, None))]);
    v["podMetrics"] = json!([test_sample("cpu", NOW, "60s")]);
    let d = run(&v);
    let (reason, message) = failure(&d, 0);
    assert_eq!(reason, "FailedGetResourceMetric");
    assert_eq!(
        message,
        "failed to get cpu utilization: did not receive metrics for targeted pods (pods might be unready)"
    );
}
