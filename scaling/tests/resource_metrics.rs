//! Resource and ContainerResource metrics (contract 1.7, 2.3–2.6): usage
//! sums, requests (containers, sidecars, pod-level), truncated utilization,
//! AverageValue, missing/unready rebalancing and the direction checks.
#![allow(clippy::unwrap_used, clippy::type_complexity)]

mod common;
use common::*;
use scaling::MetricOutcome;
use serde_json::{Value, json};

/// One pod under a CPU Utilization 100% target whose usage is 1200m; the
/// reported utilization shows the request the controller computed.
fn utilization_with_pod_spec(
    spec: Value,
    pod_level_gate: bool,
    metric: Value,
) -> Result<i32, (String, String)> {
    let mut v = input(1, json!([metric]));
    v["config"]["featureGates"]["PodLevelResources"] = json!(pod_level_gate);
    v["pods"] = json!([{"metadata": {"name": "p"}, "spec": spec,
        "status": {"phase": "Running", "startTime": LONG_AGO,
                   "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": LONG_AGO}]}}]);
    v["podMetrics"] = json!([{"metadata": {"name": "p"}, "timestamp": NOW,
        "containers": [{"name": "app", "usage": {"cpu": "1200m"}}]}]);
    let d = run(&v);
    match &d.metrics[0].outcome {
        MetricOutcome::Proposal { current, .. } => Ok(current.average_utilization.unwrap_or(-1)),
        MetricOutcome::Failed { reason, message } => Err((reason.clone(), message.clone())),
    }
}

#[test]
fn requests_are_computed_like_calculate_requests() {
    let c = |name: &str, req: Value| json!({"name": name, "resources": {"requests": req}});
    let sidecar = |name: &str, cpu: &str| json!({"name": name, "restartPolicy": "Always", "resources": {"requests": {"cpu": cpu}}});
    let util = cpu_utilization(100);
    let container_util = json!({"type": "ContainerResource", "containerResource": {
        "name": "cpu", "container": "app", "target": {"type": "Utilization", "averageUtilization": 100}}});
    // (name, pod spec, PodLevelResources gate, metric, expected utilization or error text)
    let rows: Vec<(&str, Value, bool, Value, Result<i32, &str>)> = vec![
        (
            "containers are summed",
            json!({"containers": [c("app", json!({"cpu": "100m"})), c("b", json!({"cpu": "50m"}))]}),
            true,
            util.clone(),
            Ok(800),
        ),
        (
            "restartable init containers (sidecars) count",
            json!({"containers": [c("app", json!({"cpu": "100m"}))],
            "initContainers": [c("init", json!({"cpu": "20m"})), sidecar("side", "50m")]}),
            true,
            util.clone(),
            Ok(800),
        ),
        (
            "ordinary init containers never count, even without a request",
            json!({"containers": [c("app", json!({"cpu": "150m"}))],
            "initContainers": [c("init", json!({}))]}),
            true,
            util.clone(),
            Ok(800),
        ),
        (
            "pod-level requests replace the containers' sum",
            json!({"containers": [c("app", json!({})), c("b", json!({"cpu": "50m"}))],
            "resources": {"requests": {"cpu": "800m"}}}),
            true,
            util.clone(),
            Ok(150),
        ),
        (
            "pod-level requests are ignored with the gate off",
            json!({"containers": [c("app", json!({"cpu": "100m"})), c("b", json!({"cpu": "50m"}))],
            "resources": {"requests": {"cpu": "800m"}}}),
            false,
            util.clone(),
            Ok(800),
        ),
        (
            "pod-level requests without the metric's resource fail",
            json!({"containers": [c("app", json!({"cpu": "150m"}))],
            "resources": {"requests": {"memory": "1Gi"}}}),
            true,
            util.clone(),
            Err("missing pod-level request for cpu in Pod p"),
        ),
        (
            "pod-level requests of an unsupported resource are not pod-level requests",
            json!({"containers": [c("app", json!({"cpu": "150m"}))],
            "resources": {"requests": {"ephemeral-storage": "1Gi"}}}),
            true,
            util.clone(),
            Ok(800),
        ),
        (
            "a container without the request fails the metric",
            json!({"containers": [c("app", json!({"cpu": "100m"})), c("b", json!({}))]}),
            true,
            util.clone(),
            Err("missing request for cpu in container b of Pod p"),
        ),
        (
            "a named container uses only its own request",
            json!({"containers": [c("other", json!({})), c("app", json!({"cpu": "400m"}))],
            "resources": {"requests": {"cpu": "800m"}}}),
            true,
            container_util.clone(),
            Ok(300),
        ),
        (
            "a named sidecar can be the container",
            json!({"containers": [c("main", json!({"cpu": "1"}))],
            "initContainers": [sidecar("app", "600m")]}),
            true,
            container_util.clone(),
            Ok(200),
        ),
        (
            "a renamed container fails the metric",
            json!({"containers": [c("main", json!({"cpu": "1"}))]}),
            true,
            container_util.clone(),
            Err("container app not found in Pod p"),
        ),
    ];
    for (name, spec, gate, metric, want) in rows {
        let got = utilization_with_pod_spec(spec, gate, metric);
        match (want, got) {
            (Ok(w), Ok(g)) => assert_eq!(g, w, "{name}"),
            (Err(w), Err((_, msg))) => assert!(msg.ends_with(w), "{name}: {msg}"),
            (w, g) => panic!("{name}: want {w:?}, got {g:?}"),
        }
    }
}

#[test]
fn a_missing_request_on_an_ignored_pod_still_fails_the_metric() {
    let mut v = input(1, json!([cpu_utilization(50)]));
    let mut failed = pod("gone", "1");
    failed["status"]["phase"] = json!("Failed");
    failed["spec"]["containers"][0]["resources"]["requests"] = json!({});
    v["pods"] = json!([pod("a", "1"), failed]);
    v["podMetrics"] = json!([sample("a", "500m")]);
    let (reason, message) = failure(&run(&v), 0);
    assert_eq!(reason, "FailedGetResourceMetric");
    assert_eq!(
        message,
        "failed to get cpu utilization: missing request for cpu in container app of Pod gone"
    );
}

#[test]
fn pod_usage_sums_every_listed_container_and_needs_all_of_them() {
    // Two containers report cpu: summed. A pod whose metrics lack cpu on one
    // container, or list no container, has no sample (it is missing).
    let mut v = input(3, json!([cpu_utilization(100)]));
    v["pods"] = json!([pod("a", "1"), pod("b", "1"), pod("c", "1")]);
    v["podMetrics"] = json!([
        {"metadata": {"name": "a"}, "containers": [{"name": "x", "usage": {"cpu": "300m"}}, {"name": "y", "usage": {"cpu": "200m"}}]},
        {"metadata": {"name": "b"}, "containers": [{"name": "x", "usage": {"cpu": "300m"}}, {"name": "y", "usage": {"memory": "1Mi"}}]},
        {"metadata": {"name": "c"}, "containers": []}
    ]);
    let d = run(&v);
    // Only "a" has a sample: 500m of 1 = 50%; b and c are missing.
    assert_eq!(current(&d, 0).average_utilization, Some(50));
    assert_eq!(current(&d, 0).average_value, Some(500));
}

#[test]
fn container_metrics_use_the_first_container_of_that_name() {
    let mut v = input(
        2,
        json!([{"type": "ContainerResource", "containerResource": {
        "name": "cpu", "container": "app", "target": {"type": "AverageValue", "averageValue": "100m"}}}]),
    );
    v["pods"] = json!([pod("a", "1"), pod("b", "1")]);
    v["podMetrics"] = json!([
        {"metadata": {"name": "a"}, "containers": [{"name": "side", "usage": {"cpu": "900m"}}, {"name": "app", "usage": {"cpu": "100m"}}]},
        {"metadata": {"name": "b"}, "containers": [{"name": "app", "usage": {"cpu": "100m"}}]}
    ]);
    let d = run(&v);
    assert_eq!(current(&d, 0).average_value, Some(100));
    assert_eq!(proposal(&d, 0), 2);
    assert_eq!(d.reason, "");
}

#[test]
fn utilization_is_truncated_to_an_integer_percent_before_the_ratio() {
    // 3 x 1000m request; usage 1010+1030+1020 = 3060 -> 102% (not 102.0).
    // 1999/2000 -> 99% truncated; raw average is an integer division too.
    let rows: &[(&[i64], i32, i32, i64)] = &[
        (&[1010, 1030, 1020], 100, 102, 1020),
        (&[999, 1000], 100, 99, 999),
        (&[1, 2], 100, 0, 1),
        (&[333, 333, 334], 30, 33, 333),
    ];
    for (usages, target, util, raw) in rows {
        let mut v = input(usages.len() as i32, json!([cpu_utilization(*target)]));
        pods_with_usage(&mut v, usages.len(), usages);
        let d = run(&v);
        assert_eq!(
            current(&d, 0).average_utilization,
            Some(*util),
            "{usages:?}"
        );
        assert_eq!(current(&d, 0).average_value, Some(*raw), "{usages:?}");
    }
}

#[test]
fn utilization_scales_by_ready_pods_on_the_fast_path() {
    // 3 pods at 50% against a 30% target: ceil(50/30 x 3) = 5.
    let mut v = input(3, json!([cpu_utilization(30)]));
    pods_with_usage(&mut v, 3, &[300, 500, 700]);
    assert_eq!(proposal(&run(&v), 0), 5);
}

#[test]
fn samples_of_unknown_pods_are_skipped_in_the_ratio_but_counted_in_the_replicas() {
    // Pods p0..p3 with 1 CPU; metrics also for two pods the lister does not know.
    let mut v = input(4, json!([cpu_utilization(100)]));
    pods_with_usage(&mut v, 4, &[4000, 9500, 3000, 7000]);
    let extra = |n: &str, u: &str| sample(n, u);
    v["podMetrics"]
        .as_array_mut()
        .unwrap()
        .push(extra("x", "3200m"));
    v["podMetrics"]
        .as_array_mut()
        .unwrap()
        .push(extra("y", "2000m"));
    let d = run(&v);
    assert_eq!(current(&d, 0).average_utilization, Some(587));
    assert_eq!(current(&d, 0).average_value, Some(5875));
    assert_eq!(proposal(&d, 0), 24);
}

#[test]
fn samples_matching_no_pod_fail_with_no_metrics_matched_known_pods() {
    let mut v = input(1, json!([cpu_utilization(100)]));
    v["pods"] = json!([pod("p0", "1")]);
    v["podMetrics"] = json!([sample("an-older-pod-name", "100m")]);
    let (_, message) = failure(&run(&v), 0);
    assert!(
        message.ends_with("did not receive metrics for targeted pods (pods might be unready)")
            || message.ends_with("no metrics returned matched known pods"),
        "{message}"
    );
}

#[test]
fn metric_fetch_errors_are_wrapped_like_upstream() {
    let mut v = input(
        1,
        json!([cpu_utilization(100), resource_average("memory", "1Gi")]),
    );
    v["pods"] = json!([pod("p0", "1")]);
    v["podMetricsError"] = json!("the server is currently unable to handle the request");
    let d = run(&v);
    assert_eq!(
        failure(&d, 0).1,
        "failed to get cpu utilization: unable to get metrics for resource cpu: unable to fetch metrics from resource metrics API: the server is currently unable to handle the request"
    );
    assert_eq!(
        failure(&d, 1).1,
        "failed to get memory usage: unable to get metrics for resource memory: unable to fetch metrics from resource metrics API: the server is currently unable to handle the request"
    );
    v.as_object_mut().unwrap().remove("podMetricsError");
    let d = run(&v);
    assert_eq!(
        failure(&d, 0).1,
        "failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API"
    );
    v["podMetrics"] = json!([sample("p0", "1")]);
    v["pods"] = json!([]);
    let d = run(&v);
    assert_eq!(
        failure(&d, 0).1,
        "failed to get cpu utilization: no pods returned by selector while calculating replica count"
    );
}

#[test]
fn a_resource_target_without_utilization_or_value_fails() {
    let mut v = input(
        1,
        json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}}]),
    );
    v["pods"] = json!([pod("p0", "1")]);
    v["podMetrics"] = json!([sample("p0", "1")]);
    let (reason, message) = failure(&run(&v), 0);
    assert_eq!(reason, "FailedGetResourceMetric");
    assert_eq!(
        message,
        "invalid resource metric source: neither an average utilization target nor an average value (usage) target was set"
    );
}

#[test]
fn average_value_targets_average_all_samples_and_skip_requests() {
    // No requests at all: AverageValue does not need them. (2500+1000+1001)/3 = 1500 (truncated).
    let mut v = input(3, json!([resource_average("cpu", "500m")]));
    pods_with_usage(&mut v, 3, &[2500, 1000, 1001]);
    for p in v["pods"].as_array_mut().unwrap() {
        p["spec"]["containers"][0]["resources"]["requests"] = json!({});
    }
    let d = run(&v);
    assert_eq!(current(&d, 0).average_value, Some(1500));
    assert_eq!(proposal(&d, 0), 9);
    assert_eq!(d.reason, "cpu resource above target");
}

#[test]
fn memory_status_is_reported_in_binary_si() {
    let mut v = input(1, json!([resource_average("memory", "256Mi")]));
    v["pods"] = json!([pod("p0", "1")]);
    v["podMetrics"] = json!([sample("p0", "1")]);
    let d = run(&v);
    let out = scaling::format::render_output(&d);
    assert_eq!(out["metrics"][0]["current"]["averageValue"], json!("512Mi"));
    assert_eq!(proposal(&d, 0), 2);
}

/// (usages per pod or None for missing, readiness per pod, current, target) -> proposal
fn rebalanced(usages: &[Option<i64>], unready: &[bool], requests: &[&str], target: i32) -> i32 {
    let n = usages.len();
    let mut v = input(n as i32, json!([cpu_utilization(target)]));
    let pods: Vec<Value> = (0..n)
        .map(|i| {
            let mut p = pod(&format!("p{i}"), requests.get(i).copied().unwrap_or("1"));
            if unready.get(i).copied().unwrap_or(false) {
                p["status"]["conditions"][0]["status"] = json!("False");
            }
            p
        })
        .collect();
    let samples: Vec<Value> = usages
        .iter()
        .enumerate()
        .filter_map(|(i, u)| u.map(|u| sample(&format!("p{i}"), &format!("{u}m"))))
        .collect();
    v["pods"] = Value::Array(pods);
    v["podMetrics"] = Value::Array(samples);
    proposal(&run(&v), 0)
}

#[test]
fn missing_and_unready_pods_are_rebalanced_in_the_safe_direction() {
    let rows: Vec<(&str, Vec<Option<i64>>, Vec<bool>, Vec<&str>, i32, i32)> = vec![
        (
            "scale-up: unready pods count as 0 and scale less",
            vec![Some(300), Some(500), Some(700)],
            vec![true, false, false],
            vec![],
            30,
            4,
        ),
        // 4000m over 2 ready pods is 200%; with the missing pod at 0, 133% -> ceil(2.66 x 3).
        (
            "scale-up: missing pods count as 0",
            vec![None, Some(2000), Some(2000)],
            vec![],
            vec![],
            50,
            8,
        ),
        (
            "scale-down: missing pods count as 100% of request",
            vec![Some(400), Some(95), None, None],
            vec![],
            vec![],
            100,
            3,
        ),
        (
            "scale-down: target above 100% fills missing pods at the target",
            vec![Some(200), Some(100), Some(100), None],
            vec![true, false, false, false],
            vec!["1", "1", "2", "2"],
            300,
            2,
        ),
        (
            "scale-down: unready pods stay out",
            vec![Some(100), Some(300), Some(500), Some(250), Some(250)],
            vec![false, false, false, true, true],
            vec![],
            50,
            2,
        ),
        (
            "no change: rebalanced ratio within tolerance",
            vec![Some(2000), Some(1900), Some(2100), None, None],
            vec![],
            vec![],
            200,
            5,
        ),
        (
            "no change: rebalancing would flip to scale-up",
            vec![Some(100), Some(450), None],
            vec![true, false, false],
            vec![],
            50,
            3,
        ),
        (
            "no change: unready rebalancing flips a scale-up",
            vec![Some(400), Some(500), Some(700)],
            vec![false, true, true],
            vec![],
            30,
            3,
        ),
        (
            "no change: surge pod without metrics cannot reverse the direction",
            vec![Some(100), Some(100), None],
            vec![],
            vec![],
            50,
            3,
        ),
        (
            "ratio exactly 1 with a missing pod: no fill, no change",
            vec![Some(1000), None],
            vec![],
            vec![],
            100,
            2,
        ),
    ];
    for (name, usages, unready, requests, target, want) in rows {
        assert_eq!(
            rebalanced(&usages, &unready, &requests, target),
            want,
            "{name}"
        );
    }
}

#[test]
fn sample_count_direction_guard_keeps_current_during_a_surge() {
    // Rolling update with maxSurge: 2 replicas, 3 pods, the surge pod has no
    // metrics. Scale-down ratio; the missing pod pushes the sample count to 3,
    // ceil(0.55 x 3) = 2 ≤ 2 is fine. With replicas at 1 the new count (2) would
    // be a scale-up on a scale-down ratio, so the current count is kept.
    let mut v = input(1, json!([cpu_utilization(50)]));
    v["pods"] = json!([pod("a", "1"), pod("b", "1"), pod("surge", "1")]);
    v["podMetrics"] = json!([sample("a", "100m"), sample("b", "100m")]);
    let d = run(&v);
    assert_eq!(proposal(&d, 0), 1);
    assert_eq!(current(&d, 0).average_utilization, Some(10));
}

#[test]
fn status_reports_values_before_rebalancing() {
    let mut v = input(3, json!([cpu_utilization(30)]));
    pods_with_usage(&mut v, 3, &[300, 500, 700]);
    v["pods"][0]["status"]["conditions"][0]["status"] = json!("False");
    let d = run(&v);
    assert_eq!(current(&d, 0).average_utilization, Some(60));
    assert_eq!(current(&d, 0).average_value, Some(600));
    assert_eq!(proposal(&d, 0), 4);
}

#[test]
fn duplicate_metric_items_keep_the_last_one() {
    let mut v = input(1, json!([cpu_utilization(100)]));
    v["pods"] = json!([pod("p0", "1")]);
    v["podMetrics"] = json!([sample("p0", "100m"), sample("p0", "900m")]);
    assert_eq!(current(&run(&v), 0).average_utilization, Some(90));
}
