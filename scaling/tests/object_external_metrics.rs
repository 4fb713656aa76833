//! Pods, Object and External metrics (contract 2.5, 2.7, 2.8, 7.7, 7.8).
#![allow(clippy::unwrap_used, clippy::type_complexity)]

mod common;
use common::*;
use serde_json::{Value, json};

fn with_answer(mut v: Value, answer: Value) -> Value {
    v["metricValues"] = json!([answer]);
    v
}

fn external_answer(values: &[&str]) -> Value {
    let items: Vec<Value> = values.iter().map(|x| json!({"value": x})).collect();
    json!({"type": "External", "metric": {"name": "queue", "selector": {"matchLabels": {"q": "jobs"}}}, "items": items})
}

fn object_answer(value: &str) -> Value {
    json!({"type": "Object", "describedObject": {"kind": "Ingress", "name": "main"}, "metric": {"name": "hits"},
           "items": [{"value": value}]})
}

/// `n` running pods, `ready` of them Ready.
fn pods(v: &mut Value, n: usize, ready: usize) {
    let list: Vec<Value> = (0..n)
        .map(|i| {
            let mut p = pod(&format!("p{i}"), "1");
            if i >= ready {
                p["status"]["conditions"][0]["status"] = json!("False");
            }
            p
        })
        .collect();
    v["pods"] = Value::Array(list);
}

#[test]
fn pods_metric_averages_every_sample_with_integer_truncation() {
    // (20 + 21 + 21) / 3 = 20.666 -> 20666m; within 10% of 20 -> no change.
    let mut v = with_answer(
        input(3, json!([pods_metric("20")])),
        json!({"type": "Pods", "metric": {"name": "qps"}, "items": [
            {"describedObject": {"name": "p0"}, "value": "20"},
            {"describedObject": {"name": "p1"}, "value": "21"},
            {"describedObject": {"name": "p2"}, "value": "21"}]}),
    );
    pods(&mut v, 3, 3);
    let d = run(&v);
    assert_eq!(current(&d, 0).average_value, Some(20666));
    assert_eq!(proposal(&d, 0), 3);
    // A 1% scale-up tolerance makes the same data scale up.
    v["spec"]["behavior"] = json!({"scaleUp": {"tolerance": "0.01"}});
    assert_eq!(proposal(&run(&v), 0), 4);
}

#[test]
fn pods_metric_missing_pods_get_the_target_on_scale_down() {
    // 5 replicas, samples for 3 at 20, 19, 21 (average 20) against target 20:
    // ratio 1.0 with missing pods -> rebalanced, still within tolerance.
    let mut v = with_answer(
        input(5, json!([pods_metric("20")])),
        json!({"type": "Pods", "metric": {"name": "qps"}, "items": [
            {"describedObject": {"name": "p0"}, "value": "20"},
            {"describedObject": {"name": "p1"}, "value": "19"},
            {"describedObject": {"name": "p2"}, "value": "21"}]}),
    );
    pods(&mut v, 5, 5);
    assert_eq!(proposal(&run(&v), 0), 5);
    // Average 10 against 20: the two missing pods count at the target (20):
    // (30 + 40) / 5 = 14 -> 0.7 -> ceil(0.7 x 5) = 4.
    v["metricValues"][0]["items"] = json!([
        {"describedObject": {"name": "p0"}, "value": "10"},
        {"describedObject": {"name": "p1"}, "value": "10"},
        {"describedObject": {"name": "p2"}, "value": "10"}]);
    assert_eq!(proposal(&run(&v), 0), 4);
}

#[test]
fn pods_metric_errors_name_the_metric() {
    let mut v = input(2, json!([pods_metric("20")]));
    pods(&mut v, 2, 2);
    let (reason, message) = failure(&run(&v), 0);
    assert_eq!(reason, "FailedGetPodsMetric");
    assert_eq!(
        message,
        "unable to get metric qps: no metrics returned from custom metrics API"
    );
    let v = with_answer(
        v,
        json!({"type": "Pods", "metric": {"name": "qps"}, "error": "boom"}),
    );
    assert_eq!(
        failure(&run(&v), 0).1,
        "unable to get metric qps: unable to fetch metrics from custom metrics API: boom"
    );
}

#[test]
fn a_bad_metric_selector_fails_with_the_type_reason() {
    let bad = json!({"matchExpressions": [{"key": "k", "operator": "In", "values": []}]});
    let mut p = input(1, json!([pods_metric("1")]));
    p["spec"]["metrics"][0]["pods"]["metric"]["selector"] = bad.clone();
    assert_eq!(failure(&run(&p), 0).0, "FailedGetPodsMetric");
    let mut o = input(1, json!([object_metric("Value", "1")]));
    o["spec"]["metrics"][0]["object"]["metric"]["selector"] = bad.clone();
    assert_eq!(failure(&run(&o), 0).0, "FailedGetObjectMetric");
    let mut e = input(1, json!([external_metric("Value", "1")]));
    e["spec"]["metrics"][0]["external"]["metric"]["selector"] =
        json!({"matchExpressions": [{"key": "k", "operator": "Bogus"}]});
    let (reason, message) = failure(&run(&e), 0);
    assert_eq!(reason, "FailedGetExternalMetric");
    assert_eq!(message, "\"Bogus\" is not a valid label selector operator");
}

#[test]
fn object_value_multiplies_by_running_and_ready_pods_only() {
    // usage 50 / target 10 = 5 x 1 ready pod (3 listed, 2 unready) = 5.
    let mut v = with_answer(
        input(3, json!([object_metric("Value", "10")])),
        object_answer("50"),
    );
    pods(&mut v, 3, 1);
    let d = run(&v);
    assert_eq!(proposal(&d, 0), 5);
    assert_eq!(current(&d, 0).value, Some(50_000));
    assert_eq!(d.reason, "Ingress metric hits above target");
    // Deleting pods are not excluded; pending ones are.
    v["pods"][1]["status"]["conditions"][0]["status"] = json!("True");
    v["pods"][1]["metadata"]["deletionTimestamp"] = json!(NOW);
    v["pods"][2]["status"]["conditions"][0]["status"] = json!("True");
    v["pods"][2]["status"]["phase"] = json!("Pending");
    assert_eq!(proposal(&run(&v), 0), 10);
}

#[test]
fn object_value_within_tolerance_never_lists_pods() {
    // No pods at all, but the ratio is within tolerance: no error.
    let v = with_answer(
        input(3, json!([object_metric("Value", "20")])),
        object_answer("20666m"),
    );
    assert_eq!(proposal(&run(&v), 0), 3);
    let v = with_answer(
        input(3, json!([object_metric("Value", "10")])),
        object_answer("20"),
    );
    assert_eq!(
        failure(&run(&v), 0).1,
        "unable to calculate ready pods: no pods returned by selector while calculating replica count"
    );
}

#[test]
fn object_value_saturates_at_int32_max() {
    let mut v = with_answer(
        input(3, json!([object_metric("Value", "1m")])),
        object_answer("9223372036854775807m"),
    );
    pods(&mut v, 3, 3);
    let d = run(&v);
    assert_eq!(proposal(&d, 0), i32::MAX);
    assert_eq!(current(&d, 0).value, Some(i64::MAX));
}

#[test]
fn object_target_type_must_match_the_field() {
    let mut v = with_answer(
        input(3, json!([object_metric("Value", "10")])),
        object_answer("50"),
    );
    v["spec"]["metrics"][0]["object"]["target"] = json!({"type": "AverageValue", "value": "10"});
    let (reason, message) = failure(&run(&v), 0);
    assert_eq!(reason, "FailedGetObjectMetric");
    assert_eq!(
        message,
        "invalid object metric source: neither a value target nor an average value target was set"
    );
}

#[test]
fn object_answers_need_exactly_one_item() {
    let mut v = with_answer(
        input(3, json!([object_metric("Value", "10")])),
        object_answer("50"),
    );
    v["metricValues"][0]["items"] = json!([{"value": "1"}, {"value": "2"}]);
    let message = failure(&run(&v), 0).1;
    assert!(
        message.ends_with(
            "the custom metrics API server returned 2 results when we asked for exactly one"
        ),
        "{message}"
    );
    v["metricValues"] = json!([]);
    let message = failure(&run(&v), 0).1;
    assert!(
        message.ends_with("returned 0 results when we asked for exactly one"),
        "{message}"
    );
}

#[test]
fn object_average_value_uses_status_replicas_and_is_named_external() {
    // 20 over 3 status replicas against 5 per pod: ratio 1.33 -> ceil(20/5) = 4; average ceil(6.67) = 6667m.
    let v = with_answer(
        input(3, json!([object_metric("AverageValue", "5")])),
        object_answer("20"),
    );
    let d = run(&v);
    assert_eq!(proposal(&d, 0), 4);
    assert_eq!(current(&d, 0).average_value, Some(6667));
    assert_eq!(d.reason, "external metric hits(nil) above target");
    // Spec replicas do not matter, status replicas do.
    let mut v2 = v.clone();
    v2["scale"]["statusReplicas"] = json!(4);
    assert_eq!(proposal(&run(&v2), 0), 4);
    v2["metricValues"][0]["items"][0]["value"] = json!("20166m");
    assert_eq!(
        proposal(&run(&v2), 0),
        4,
        "within tolerance keeps status replicas"
    );
}

#[test]
fn per_pod_targets_with_zero_status_replicas_ignore_tolerance() {
    // FORMAT B.2: ceil(usage / target), no reported average.
    let mut v = with_answer(
        input(2, json!([external_metric("AverageValue", "10")])),
        external_answer(&["25"]),
    );
    v["scale"]["statusReplicas"] = json!(0);
    let d = run(&v);
    assert_eq!(proposal(&d, 0), 3);
    assert_eq!(current(&d, 0).average_value, None);
    v["metricValues"][0]["items"][0]["value"] = json!("0");
    assert_eq!(proposal(&run(&v), 0), 0);
}

#[test]
fn external_values_are_summed_and_capped() {
    let mut v = with_answer(
        input(3, json!([external_metric("Value", "14334m")])),
        external_answer(&["5", "3600m"]),
    );
    pods(&mut v, 5, 5);
    v["scale"]["specReplicas"] = json!(5);
    let d = run(&v);
    assert_eq!(current(&d, 0).value, Some(8600));
    assert_eq!(proposal(&d, 0), 3);
    // Overflowing sums cap at INT64_MAX: against an INT64_MAX target that is within tolerance.
    let mut v = with_answer(
        input(3, json!([external_metric("Value", "9223372036854775807m")])),
        external_answer(&["4611686018427387904m", "4611686018427387904m"]),
    );
    pods(&mut v, 3, 3);
    let d = run(&v);
    assert_eq!(current(&d, 0).value, Some(i64::MAX));
    assert_eq!(proposal(&d, 0), 3);
}

#[test]
fn external_average_value_wins_over_value_and_saturates() {
    let mut v = with_answer(
        input(1, json!([external_metric("Value", "1")])),
        external_answer(&["9223372036854775807m"]),
    );
    v["spec"]["metrics"][0]["external"]["target"] =
        json!({"type": "Value", "value": "1", "averageValue": "1m"});
    let d = run(&v);
    assert_eq!(proposal(&d, 0), i32::MAX);
    assert_eq!(current(&d, 0).average_value, Some(i64::MAX));
    assert_eq!(current(&d, 0).value, None);
    // A huge per-pod target keeps the replicas.
    v["spec"]["metrics"][0]["external"]["target"] =
        json!({"type": "AverageValue", "averageValue": "9223372036854775807m"});
    assert_eq!(proposal(&run(&v), 0), 1);
}

#[test]
fn external_per_pod_scale_up_down_and_tolerance() {
    let rows: &[(i32, &str, &str, i32, i64)] = &[
        (3, "2150m", "8600m", 4, 2867),
        (5, "2867m", "8600m", 3, 1720),
        (3, "2900m", "8600m", 3, 2867),
    ];
    for (replicas, target, value, want, avg) in rows {
        let v = with_answer(
            input(*replicas, json!([external_metric("AverageValue", target)])),
            external_answer(&[value]),
        );
        let d = run(&v);
        assert_eq!(proposal(&d, 0), *want, "{target}");
        assert_eq!(current(&d, 0).average_value, Some(*avg), "{target}");
    }
}

#[test]
fn external_metric_name_embeds_the_go_selector_string() {
    let v = with_answer(
        input(1, json!([external_metric("AverageValue", "1")])),
        external_answer(&["3"]),
    );
    let d = run(&v);
    assert_eq!(
        d.events[0].message,
        "New size: 3; reason: external metric queue(&LabelSelector{MatchLabels:map[string]string{q: jobs,},MatchExpressions:[]LabelSelectorRequirement{},}) above target"
    );
}

#[test]
fn external_errors_carry_namespace_name_and_selector() {
    let v = with_answer(
        input(1, json!([external_metric("Value", "1")])),
        json!({"type": "External", "metric": {"name": "queue"}, "error": "unavailable"}),
    );
    let (reason, message) = failure(&run(&v), 0);
    assert_eq!(reason, "FailedGetExternalMetric");
    assert_eq!(
        message,
        "unable to get external metric shop/queue/&LabelSelector{MatchLabels:map[string]string{q: jobs,},MatchExpressions:[]LabelSelectorRequirement{},}: unable to fetch metrics from external metrics API: unavailable"
    );
    let v = input(1, json!([external_metric("Value", "1")]));
    assert!(
        failure(&run(&v), 0)
            .1
            .ends_with("no metrics returned from external metrics API")
    );
}

#[test]
fn answers_match_on_type_name_selector_and_object() {
    // The first answer has another selector, the second matches.
    let mut v = input(1, json!([external_metric("AverageValue", "1")]));
    v["metricValues"] = json!([
        {"type": "External", "metric": {"name": "queue", "selector": {"matchLabels": {"q": "other"}}}, "items": [{"value": "9"}]},
        {"type": "Pods", "metric": {"name": "queue"}, "items": [{"describedObject": {"name": "x"}, "value": "8"}]},
        {"type": "External", "metric": {"name": "queue"}, "items": [{"value": "2"}]}
    ]);
    assert_eq!(proposal(&run(&v), 0), 2);
    let mut o = input(3, json!([object_metric("Value", "10")]));
    o["metricValues"] = json!([
        {"type": "Object", "describedObject": {"kind": "Service", "name": "main"}, "metric": {"name": "hits"}, "items": [{"value": "100"}]},
        {"type": "Object", "metric": {"name": "hits"}, "items": [{"value": "10"}]}
    ]);
    assert_eq!(proposal(&run(&o), 0), 3);
}

#[test]
fn scale_from_zero_uses_ceil_of_the_ratio_without_tolerance() {
    let mut v = with_answer(
        input(0, json!([object_metric("Value", "15")])),
        object_answer("16"),
    );
    v["spec"]["minReplicas"] = json!(0);
    v["status"]["conditions"] = json!([{"type": "ScaledToZero", "status": "True", "reason": "ScaledToZero", "message": ""}]);
    let d = run(&v);
    assert_eq!(
        proposal(&d, 0),
        2,
        "ceil(16/15) with no tolerance and no pods"
    );
    assert_eq!(d.desired_replicas, 2);
    // A huge ratio is clamped to INT32_MAX (FORMAT B.3) before maxReplicas applies.
    v["metricValues"][0]["items"][0]["value"] = json!("9223372036854775807m");
    v["spec"]["metrics"][0]["object"]["target"]["value"] = json!("1m");
    let d = run(&v);
    assert_eq!(proposal(&d, 0), i32::MAX);
    assert_eq!(
        d.desired_replicas, 4,
        "legacy scale-up limit from zero is the minimum, 4"
    );
}

#[test]
fn negative_external_sums_are_kept_not_treated_as_overflow() {
    // Contract 2.7 caps only an overflowing sum; a negative total stays negative.
    let v = with_answer(
        input(4, json!([external_metric("AverageValue", "1")])),
        external_answer(&["-3", "1"]),
    );
    let d = run(&v);
    assert_eq!(current(&d, 0).average_value, Some(-500));
    assert_eq!(proposal(&d, 0), -2);
    assert_eq!(
        d.desired_replicas, 1,
        "desired is max(0, proposal), then minReplicas"
    );
}
