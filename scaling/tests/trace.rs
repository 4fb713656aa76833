//! The decision trace: every number `tidal explain` prints comes from the same
//! computation that produced the decision, and agrees with it.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use scaling::trace::{PODS_LISTED_PER_CLASS, PodClass, PodReason};
use serde_json::json;

#[test]
fn scale_up_trace_names_the_metric_and_its_numbers() {
    let mut v = input(2, json!([cpu_utilization(50)]));
    v["pods"] = json!([pod("p0", "500m"), pod("p1", "500m")]);
    v["podMetrics"] = json!([sample("p0", "450m"), sample("p1", "450m")]);
    let d = run(&v);
    let t = &d.trace;
    assert_eq!(d.desired_replicas, 4);
    assert_eq!(t.desired_replicas, 4);
    assert!(t.rescale);
    assert_eq!(t.reason, d.reason);
    let m = &t.metrics[0];
    assert_eq!((m.kind.as_str(), m.name.as_str()), ("Resource", "cpu"));
    assert_eq!(m.target.average_utilization, Some(50));
    assert_eq!(m.usage_milli, Some(900));
    assert_eq!(m.requests_milli, Some(1000));
    assert_eq!(m.utilization, Some(90));
    assert_eq!(m.ratio, Some(90.0 / 50.0));
    let band = m.tolerance.unwrap();
    assert!(!band.within && (band.low - 0.9).abs() < 1e-9 && (band.high - 1.1).abs() < 1e-9);
    assert_eq!(m.multiplied_by_pods, Some(2));
    assert_eq!(m.proposal, Some(4));
    let pods = m.pods.as_ref().unwrap();
    assert_eq!(
        (pods.ready, pods.unready, pods.missing, pods.ignored),
        (2, 0, 0, 0)
    );
    assert_eq!(pods.listed[0].usage_milli, Some(450));
    assert_eq!(pods.listed[0].request_milli, Some(500));
    assert_eq!(t.proposal, Some(4));
    assert_eq!(
        t.proposal_metric.as_deref(),
        Some("cpu resource utilization (percentage of request)")
    );
    let limits = t.limits.as_ref().unwrap();
    assert_eq!(limits.applied, "DesiredWithinRange");
    assert_eq!((limits.input, limits.result), (4, 4));
}

#[test]
fn each_pod_class_is_counted_with_its_reason() {
    let mut v = input(5, json!([cpu_utilization(50)]));
    let mut pending = pod("pending", "1");
    pending["status"]["phase"] = json!("Pending");
    let mut deleting = pod("deleting", "1");
    deleting["metadata"]["deletionTimestamp"] = json!(NOW);
    let mut failed = pod("failed", "1");
    failed["status"]["phase"] = json!("Failed");
    v["pods"] = json!([
        pod("ready", "1"),
        pod("nosample", "1"),
        pending,
        deleting,
        failed
    ]);
    v["podMetrics"] = json!([
        sample("ready", "2000m"),
        sample("pending", "100m"),
        sample("stranger", "100m")
    ]);
    let t = run(&v).trace;
    let pods = t.metrics[0].pods.as_ref().unwrap();
    assert_eq!(
        (pods.ready, pods.unready, pods.missing, pods.ignored),
        (1, 1, 1, 2)
    );
    assert_eq!(pods.extraneous_samples, 1);
    let reason = |name: &str| {
        pods.listed
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.reason)
            .unwrap()
    };
    assert_eq!(reason("ready"), PodReason::Counted);
    assert_eq!(reason("nosample"), PodReason::NoSample);
    assert_eq!(reason("pending"), PodReason::PhasePending);
    assert_eq!(reason("deleting"), PodReason::Deleting);
    assert_eq!(reason("failed"), PodReason::PhaseFailed);
    // The raw ratio is 4 (200% of a 50% target); the missing pod counts as 0 and the unready
    // one as 0 in the second pass.
    let rb = t.metrics[0].rebalanced.as_ref().unwrap();
    assert!(rb.unready_as_zero);
    assert_eq!(rb.missing_as.as_deref(), Some("0"));
    // Upstream multiplies by the size of its sample map, which still holds the sample of the
    // pod outside the target: ready, missing, unready and the stranger.
    assert_eq!(rb.pods, 4);
}

#[test]
fn pod_lists_are_capped_per_class_and_every_pod_is_still_counted() {
    let mut v = input(40, json!([cpu_utilization(50)]));
    pods_with_usage(&mut v, 40, &[500; 30]);
    let t = run(&v).trace;
    let pods = t.metrics[0].pods.as_ref().unwrap();
    assert_eq!((pods.ready, pods.missing), (30, 10));
    let listed = |c: PodClass| pods.listed.iter().filter(|p| p.reason.class() == c).count();
    assert_eq!(listed(PodClass::Ready), PODS_LISTED_PER_CLASS);
    assert_eq!(listed(PodClass::Missing), PODS_LISTED_PER_CLASS);
    assert_eq!(pods.not_listed as usize, 40 - 2 * PODS_LISTED_PER_CLASS);
}

#[test]
fn a_held_scale_down_names_the_recommendation_that_held_it() {
    let mut v = input(6, json!([cpu_utilization(50)]));
    pods_with_usage(&mut v, 6, &[100; 6]);
    v["history"] = json!({"recommendations": [
        {"replicas": 6, "timestamp": at(-200)},
        {"replicas": 5, "timestamp": at(-100)},
        {"replicas": 3, "timestamp": at(-400)}
    ]});
    let d = run(&v);
    let s = d.trace.stabilization.as_ref().unwrap();
    assert!(!s.behavior);
    assert_eq!(s.down_window_seconds, 300);
    assert_eq!(s.in_down_window, 2);
    assert_eq!((s.proposal, s.result), (2, 6));
    let b = s.bound_by.as_ref().unwrap();
    assert_eq!((b.replicas, b.age_seconds), (6, 200.0));
    assert_eq!(d.desired_replicas, 6);
}

#[test]
fn behavior_policies_show_which_limit_applied() {
    let mut v = input(2, json!([cpu_utilization(50)]));
    pods_with_usage(&mut v, 2, &[5000, 5000]);
    v["spec"]["behavior"] = json!({"scaleUp": {"policies": [
        {"type": "Pods", "value": 1, "periodSeconds": 60},
        {"type": "Percent", "value": 50, "periodSeconds": 60}
    ], "selectPolicy": "Max"}});
    let d = run(&v);
    let l = d.trace.limits.as_ref().unwrap();
    assert_eq!(l.direction, "up");
    assert_eq!(l.select_policy.as_deref(), Some("Max"));
    assert_eq!(l.policies.len(), 2);
    assert_eq!(l.policies[0].limit, 3);
    assert_eq!(l.policies[1].limit, 3);
    assert_eq!(l.rate_limit, Some(3));
    assert_eq!(l.applied, "ScaleUpLimit");
    assert_eq!(l.result, 3);
    assert_eq!(d.desired_replicas, 3);
}

#[test]
fn failures_and_short_circuits_say_where_the_decision_stopped() {
    let v = input(2, json!([cpu_utilization(50)]));
    let t = run(&v).trace;
    assert!(
        t.stopped
            .as_deref()
            .unwrap()
            .contains("no replica count computed")
    );
    assert!(
        t.metrics[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with("FailedGetResourceMetric")
    );

    let mut v = input(200, json!([cpu_utilization(50)]));
    v["spec"]["maxReplicas"] = json!(10);
    let t = run(&v).trace;
    assert!(t.stopped.as_deref().unwrap().contains("above maxReplicas"));
    assert_eq!(t.desired_replicas, 10);
}

#[test]
fn the_trace_round_trips_through_json() {
    let mut v = input(2, json!([cpu_utilization(50)]));
    pods_with_usage(&mut v, 3, &[900, 900]);
    let t = run(&v).trace;
    let text = serde_json::to_string(&t).unwrap();
    assert!(text.contains("\"time\":\"2026-03-01T10:00:00Z\""), "{text}");
    let back: scaling::DecisionTrace = serde_json::from_str(&text).unwrap();
    assert_eq!(back, t);
}
