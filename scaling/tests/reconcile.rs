//! One whole reconcile (contract 1.3, 1.5, 3, 4.5, 5): short-circuits,
//! scale to and from zero, selector validation, several metrics, tolerance,
//! write failures, condition mechanics and the decision memory.
#![allow(clippy::unwrap_used, clippy::type_complexity)]

mod common;
use common::*;
use scaling::{Plan, Time, format, plan};
use serde_json::{Value, json};

fn object_input(current: i32, target: &str, usage: &str) -> Value {
    let mut v = input(current, json!([object_metric("Value", target)]));
    v["metricValues"] =
        json!([{"type": "Object", "metric": {"name": "hits"}, "items": [{"value": usage}]}]);
    let pods: Vec<Value> = (0..current.max(0))
        .map(|i| pod(&format!("p{i}"), "1"))
        .collect();
    v["pods"] = Value::Array(pods);
    v
}

fn triples(list: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    list.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

#[test]
fn tolerance_bounds_are_inclusive_on_both_sides() {
    // ratio = usage / target, default tolerance 0.1.
    let rows: &[(&str, &str, i32)] = &[
        ("11", "10", 4),   // 1.1: within -> current
        ("111", "100", 5), // 1.11: outside
        ("9", "10", 4),    // 0.9: within
        ("89", "100", 4),  // 0.89 x 4 = 3.56 -> 4
        ("88", "100", 4),
        ("70", "100", 3),
        ("10", "10", 4),
    ];
    for (usage, target, want) in rows {
        let d = run(&object_input(4, target, usage));
        assert_eq!(proposal(&d, 0), *want, "{usage}/{target}");
    }
}

#[test]
fn per_direction_tolerance_needs_behavior_and_the_gate() {
    let mut v = object_input(4, "10", "10500m"); // ratio 1.05 -> within 10%
    assert_eq!(proposal(&run(&v), 0), 4);
    v["spec"]["behavior"] = json!({"scaleUp": {"tolerance": "0.01"}});
    assert_eq!(proposal(&run(&v), 0), 5, "1% scale-up tolerance");
    v["config"]["featureGates"]["HPAConfigurableTolerance"] = json!(false);
    assert_eq!(proposal(&run(&v), 0), 4, "gate off: cluster tolerance");
    let mut v = object_input(4, "10", "8"); // 0.8
    v["spec"]["behavior"] =
        json!({"scaleUp": {"tolerance": "0"}, "scaleDown": {"tolerance": "0.36"}});
    assert_eq!(
        proposal(&run(&v), 0),
        4,
        "within a 36% scale-down tolerance"
    );
    v["spec"]["behavior"]["scaleDown"]["tolerance"] = json!("0.15");
    assert_eq!(
        proposal(&run(&v), 0),
        4,
        "ceil(0.8 x 4) = 4 but outside tolerance"
    );
    let mut v = object_input(4, "10", "10"); // exactly 1 with zero tolerances
    v["spec"]["behavior"] = json!({"scaleUp": {"tolerance": "0"}, "scaleDown": {"tolerance": "0"}});
    assert_eq!(proposal(&run(&v), 0), 4);
}

#[test]
fn tolerance_quantities_are_read_as_approximate_floats() {
    // 1 - AsApproximateFloat64("0.7") = 1 - 7 x 0.1 = 0.29999999999999993, which
    // includes a ratio of 0.3; 1 - 0.7 (the float literal) would not.
    let mut v = object_input(10, "10", "3");
    v["spec"]["behavior"] = json!({"scaleDown": {"tolerance": "0.7"}});
    assert_eq!(proposal(&run(&v), 0), 10);
    v["spec"]["behavior"]["scaleDown"]["tolerance"] = json!("699m");
    assert_eq!(proposal(&run(&v), 0), 3);
}

#[test]
fn replicas_above_max_or_below_min_short_circuit_without_metrics() {
    let mut v = object_input(12, "10", "500");
    v["spec"]["maxReplicas"] = json!(10);
    // Even a disabled scale-down behavior does not stop it (contract 7.12).
    v["spec"]["behavior"] = json!({"scaleDown": {"selectPolicy": "Disabled"}});
    let d = run(&v);
    assert_eq!(d.desired_replicas, 10);
    assert!(d.rescale);
    assert_eq!(
        d.reason,
        "Current number of replicas above Spec.MaxReplicas"
    );
    assert!(d.metrics.is_empty());
    assert_eq!(
        d.events[0].message,
        "New size: 10; reason: Current number of replicas above Spec.MaxReplicas"
    );
    assert_eq!(
        conditions(&d),
        triples(&[
            ("AbleToScale", "True", "SucceededRescale"),
            ("ScaledToZero", "False", "NotScaledToZero")
        ])
    );
    let h = d.history.unwrap();
    assert_eq!(h.scale_down_events.len(), 1, "stored: behavior is set");
    assert_eq!(h.scale_down_events[0].replica_change, 2);
    assert_eq!(h.recommendations.unwrap().len(), 0, "no normalization ran");

    let mut v = object_input(1, "10", "1");
    v["spec"]["minReplicas"] = json!(3);
    let d = run(&v);
    assert_eq!(d.desired_replicas, 3);
    assert_eq!(
        d.reason,
        "Current number of replicas below Spec.MinReplicas"
    );
    assert!(d.metrics.is_empty());
}

#[test]
fn zero_replicas_disable_scaling_unless_scaled_to_zero() {
    let mut v = object_input(0, "10", "50");
    v["spec"]["minReplicas"] = json!(1);
    let d = run(&v);
    assert_eq!(d.desired_replicas, 0);
    assert!(!d.rescale);
    assert!(d.metrics.is_empty());
    assert!(d.events.is_empty());
    assert_eq!(
        conditions(&d),
        triples(&[
            ("AbleToScale", "True", "SucceededGetScale"),
            ("ScalingActive", "False", "ScalingDisabled")
        ])
    );
    // With the ScaledToZero condition the metrics are computed and minReplicas is the floor.
    v["status"]["conditions"] = json!([{"type": "ScaledToZero", "status": "True", "reason": "ScaledToZero", "message": "m", "lastTransitionTime": at(-600)}]);
    v["spec"]["minReplicas"] = json!(2);
    v["metricValues"][0]["items"][0]["value"] = json!("1");
    let d = run(&v);
    assert_eq!(proposal(&d, 0), 1);
    assert_eq!(d.desired_replicas, 2);
    assert_eq!(d.reason, "Ingress metric hits above target");
    assert_eq!(
        conditions(&d),
        triples(&[
            ("ScaledToZero", "False", "NotScaledToZero"),
            ("AbleToScale", "True", "SucceededRescale"),
            ("ScalingActive", "True", "ValidMetricFound"),
            ("ScalingLimited", "True", "TooFewReplicas")
        ])
    );
    // Gate off: the condition is ignored and removed.
    v["config"]["featureGates"]["HPAScaleToZero"] = json!(false);
    let d = run(&v);
    assert_eq!(d.desired_replicas, 0);
    assert_eq!(condition(&d, "ScaledToZero"), None);
}

#[test]
fn scale_from_zero_floor_applies_after_normalization() {
    // Behavior path: a zero proposal at zero is kept by normalization; the floor lifts it to min.
    let mut v = object_input(0, "10", "0");
    v["spec"]["minReplicas"] = json!(2);
    v["spec"]["behavior"] = json!({});
    v["status"]["conditions"] = json!([{"type": "ScaledToZero", "status": "True", "reason": "ScaledToZero", "message": ""}]);
    let d = run(&v);
    assert_eq!(proposal(&d, 0), 0);
    assert_eq!(d.desired_replicas, 2);
    assert_eq!(
        d.reason,
        "Current number of replicas below Spec.MinReplicas"
    );
    // min 0 with an Object metric: metrics computed, zero stays zero without a write.
    v["spec"]["minReplicas"] = json!(0);
    let d = run(&v);
    assert_eq!(d.desired_replicas, 0);
    assert!(!d.rescale);
    assert_eq!(condition(&d, "ScaledToZero").unwrap().0, "True");
    // min 0 with only a Resource metric: scaling stays disabled.
    v["spec"]["metrics"] = json!([cpu_utilization(50)]);
    let d = run(&v);
    assert_eq!(condition(&d, "ScalingActive").unwrap().1, "ScalingDisabled");
}

#[test]
fn scaled_to_zero_is_set_only_for_object_or_external_scale_downs_to_zero() {
    let mut v = object_input(5, "10", "0");
    v["spec"]["minReplicas"] = json!(0);
    let d = run(&v);
    assert_eq!(d.desired_replicas, 0);
    assert_eq!(
        condition(&d, "ScaledToZero").unwrap(),
        ("True".into(), "ScaledToZero".into())
    );
    // Any metric type may bring min 0 to zero, but only Object/External mark it.
    let mut r = input(2, json!([cpu_utilization(50)]));
    r["spec"]["minReplicas"] = json!(0);
    pods_with_usage(&mut r, 2, &[0, 0]);
    let d = run(&r);
    assert_eq!(d.desired_replicas, 0);
    assert_eq!(
        condition(&d, "ScaledToZero").unwrap(),
        ("False".into(), "NotScaledToZero".into())
    );
    r["config"]["featureGates"]["HPAScaleToZero"] = json!(false);
    r["status"]["conditions"] =
        json!([{"type": "ScaledToZero", "status": "True", "reason": "x", "message": ""}]);
    let d = run(&r);
    assert_eq!(
        condition(&d, "ScaledToZero"),
        None,
        "gate off: removed on rescale"
    );
}

#[test]
fn an_unreadable_scale_keeps_the_previous_status_and_memory() {
    let mut v = object_input(3, "10", "50");
    v["status"] = json!({"currentReplicas": 7, "desiredReplicas": 8});
    v["scale"]["getError"] = json!("deployments.apps \"web\" not found");
    v.as_object_mut().unwrap().remove("history");
    let d = run(&v);
    assert_eq!(
        (d.desired_replicas, d.current_replicas, d.rescale),
        (8, 7, false)
    );
    assert_eq!(d.history, None);
    assert_eq!(
        events(&d),
        vec![("Warning".to_string(), "FailedGetScale".to_string())]
    );
    assert_eq!(d.events[0].message, "deployments.apps \"web\" not found");
    assert_eq!(
        conditions(&d),
        triples(&[("AbleToScale", "False", "FailedGetScale")])
    );
    // A scale target apiVersion that is not `version` or `group/version` fails the same way.
    for api_version in ["apps/v1/extra", "", "/", "apps/", "/v1"] {
        let mut v = object_input(3, "10", "50");
        v["spec"]["scaleTargetRef"]["apiVersion"] = json!(api_version);
        let d = run(&v);
        assert_eq!(d.events[0].reason, "FailedGetScale", "{api_version:?}");
        assert_eq!(
            d.events[0].message,
            format!("unexpected GroupVersion string: {api_version}")
        );
        assert_eq!(
            d.history.unwrap().recommendations.unwrap().len(),
            0,
            "given memory is kept"
        );
    }
    for api_version in ["v1", "apps/v1", "autoscaling.example.com/v1beta1"] {
        let mut v = object_input(3, "10", "50");
        v["spec"]["scaleTargetRef"]["apiVersion"] = json!(api_version);
        assert!(run(&v).rescale, "{api_version:?}");
    }
}

#[test]
fn selector_problems_disable_scaling_with_two_events() {
    let rows: &[(&str, &str, &str)] = &[
        ("", "SelectorRequired", "InvalidSelector"),
        ("cheddar cheese", "InvalidSelector", "InvalidSelector"),
        ("app in (web", "InvalidSelector", "InvalidSelector"),
    ];
    for (selector, event, reason) in rows {
        let mut v = object_input(3, "10", "50");
        v["scale"]["selector"] = json!(selector);
        v["status"]["desiredReplicas"] = json!(9);
        let d = run(&v);
        assert_eq!(d.desired_replicas, 9, "{selector:?}: previous desired");
        assert!(d.metrics.is_empty());
        assert_eq!(
            events(&d),
            vec![
                ("Warning".to_string(), event.to_string()),
                (
                    "Warning".to_string(),
                    "FailedComputeMetricsReplicas".to_string()
                )
            ],
            "{selector:?}"
        );
        assert_eq!(
            condition(&d, "ScalingActive").unwrap(),
            ("False".into(), reason.to_string())
        );
        assert_eq!(d.history.unwrap().recommendations.unwrap().len(), 0);
    }
}

#[test]
fn overlapping_autoscalers_are_ambiguous_only_when_they_match_a_pod() {
    let others = |list: Value| {
        let mut v = object_input(3, "10", "50");
        v["otherAutoScalers"] = list;
        run(&v)
    };
    let ambiguous =
        |d: &scaling::Decision| condition(d, "ScalingActive").unwrap().1 == "AmbiguousSelector";
    assert!(!ambiguous(&others(
        json!([{"name": "a", "selector": "cheddar=cheese"}])
    )));
    assert!(ambiguous(&others(
        json!([{"name": "a", "selector": "app=web"}])
    )));
    assert!(
        ambiguous(&others(json!([{"name": "a", "selector": "app"}]))),
        "partial overlap"
    );
    assert!(
        !ambiguous(&others(json!([{"name": "a", "selector": ""}]))),
        "not reconciled yet"
    );
    assert!(
        !ambiguous(&others(json!([{"name": "a", "selector": "app=="}]))),
        "matches no label"
    );
    assert!(!ambiguous(&others(
        json!([{"name": "a", "namespace": "other", "selector": "app=web"}])
    )));
    assert!(
        !ambiguous(&others(json!([{"name": "web", "selector": "app=web"}]))),
        "itself"
    );
    let d = others(json!([{"name": "a", "selector": "app=web"}]));
    assert_eq!(
        d.events[0].message,
        "pods by selector app=web are controlled by multiple HPAs: [shop/web shop/a]"
    );
    // No pods: nothing can conflict.
    let mut v = object_input(3, "10", "10");
    v["pods"] = json!([]);
    v["otherAutoScalers"] = json!([{"name": "a", "selector": "app=web"}]);
    assert!(!ambiguous(&run(&v)));
}

#[test]
fn several_metrics_take_the_max_and_never_scale_down_on_partial_data() {
    let two = |ext_value: &str, obj_value: &str, current: i32| {
        let mut v = input(
            current,
            json!([
                object_metric("Value", "10"),
                external_metric("AverageValue", "1")
            ]),
        );
        let pods: Vec<Value> = (0..current).map(|i| pod(&format!("p{i}"), "1")).collect();
        v["pods"] = Value::Array(pods);
        v["metricValues"] = json!([
            {"type": "Object", "metric": {"name": "hits"}, "items": [{"value": obj_value}]},
            {"type": "External", "metric": {"name": "queue"}, "items": [{"value": ext_value}]}]);
        v
    };
    // Max of the valid proposals, named after the winner.
    let d = run(&two("6", "20", 3));
    assert_eq!((proposal(&d, 0), proposal(&d, 1)), (6, 6));
    assert_eq!(
        d.reason, "Ingress metric hits above target",
        "ties keep the earlier metric"
    );
    let d = run(&two("7", "20", 3));
    assert!(d.reason.starts_with("external metric queue("));
    // One broken metric: a scale-up proceeds (with a warning), a scale-down does not.
    let mut up = two("7", "20", 3);
    up["metricValues"][0] = json!({"type": "Object", "metric": {"name": "hits"}, "error": "down"});
    let d = run(&up);
    assert_eq!(d.desired_replicas, 7);
    assert_eq!(
        events(&d),
        vec![
            ("Warning".to_string(), "FailedGetObjectMetric".to_string()),
            ("Normal".to_string(), "SuccessfulRescale".to_string())
        ]
    );
    assert_eq!(
        condition(&d, "ScalingActive").unwrap().1,
        "ValidMetricFound"
    );
    let mut down = two("1", "20", 3);
    down["metricValues"][0] =
        json!({"type": "Object", "metric": {"name": "hits"}, "error": "down"});
    down["status"]["desiredReplicas"] = json!(3);
    let d = run(&down);
    assert_eq!((d.desired_replicas, d.rescale), (3, false));
    assert_eq!(d.metrics.len(), 2, "metric entries are reported");
    assert_eq!(
        condition(&d, "ScalingActive").unwrap(),
        ("False".into(), "FailedGetObjectMetric".into())
    );
    assert_eq!(
        d.events.last().unwrap().reason,
        "FailedComputeMetricsReplicas"
    );
    assert_eq!(
        d.events.last().unwrap().message,
        "invalid metrics (1 invalid out of 2), first error is: failed to get object metric value: unable to get metric hits: Ingress on shop main/unable to fetch metrics from custom metrics API: down"
    );
}

#[test]
fn unknown_metric_types_fail_with_invalid_metric_source_type() {
    let mut v = input(3, json!([{"type": "CheddarCheese"}]));
    v["status"]["desiredReplicas"] = json!(3);
    let d = run(&v);
    assert_eq!(
        failure(&d, 0),
        (
            "InvalidMetricSourceType".into(),
            "unknown metric source type \"CheddarCheese\"".into()
        )
    );
    assert_eq!(d.metrics[0].name, "");
    assert_eq!(
        d.events.last().unwrap().message,
        "invalid metrics (1 invalid out of 1), first error is: unknown metric source type \"CheddarCheese\""
    );
}

#[test]
fn an_empty_metric_list_is_cpu_at_eighty_percent() {
    let mut v = input(2, json!([]));
    pods_with_usage(&mut v, 2, &[1600, 1600]);
    let d = run(&v);
    assert_eq!(d.metrics.len(), 1);
    assert_eq!(current(&d, 0).average_utilization, Some(160));
    assert_eq!(d.desired_replicas, 4);
}

#[test]
fn a_failed_scale_write_reports_and_keeps_the_previous_desired() {
    let mut v = object_input(3, "10", "50");
    v["status"]["desiredReplicas"] = json!(3);
    v["scale"]["updateError"] = json!("the object has been modified");
    let d = run(&v);
    assert_eq!(
        (d.desired_replicas, d.current_replicas, d.rescale),
        (3, 3, false)
    );
    assert_eq!(d.reason, "Ingress metric hits above target");
    assert_eq!(d.events.last().unwrap().reason, "FailedRescale");
    assert_eq!(
        d.events.last().unwrap().message,
        "New size: 15; reason: Ingress metric hits above target; error: the object has been modified"
    );
    assert_eq!(
        condition(&d, "AbleToScale").unwrap(),
        ("False".into(), "FailedUpdateScale".into())
    );
    assert_eq!(condition(&d, "ScaledToZero"), None);
    assert_eq!(
        d.history.unwrap().recommendations.unwrap().len(),
        1,
        "recommendation stored"
    );
}

#[test]
fn the_two_phase_api_separates_the_decision_from_the_write() {
    let v = object_input(3, "10", "50");
    let calc = format::parse_input(&v).unwrap();
    let p: Plan = plan(&calc.input);
    assert_eq!(p.scale_write(), Some(15));
    let ok = p.clone().complete(Ok(()));
    let failed = p.complete(Err("boom".to_string()));
    assert!(ok.rescale && !failed.rescale);
    assert!(ok.last_scale_time_updated && !failed.last_scale_time_updated);
    // No write planned: the outcome is ignored.
    let v = object_input(3, "10", "10");
    let p = plan(&format::parse_input(&v).unwrap().input);
    assert_eq!(p.scale_write(), None);
    assert!(!p.complete(Err("ignored".to_string())).rescale);
}

#[test]
fn conditions_keep_their_order_and_change_time_only_with_the_status() {
    let earlier = at(-3600);
    let mut v = object_input(3, "10", "10");
    v["status"]["conditions"] = json!([
        {"type": "ScalingLimited", "status": "False", "reason": "DesiredWithinRange", "message": "x", "lastTransitionTime": earlier},
        {"type": "Custom", "status": "True", "reason": "Kept", "message": "y", "lastTransitionTime": earlier},
        {"type": "AbleToScale", "status": "True", "reason": "Old", "message": "z", "lastTransitionTime": earlier}
    ]);
    let d = run(&v);
    assert_eq!(
        conditions(&d),
        triples(&[
            ("ScalingLimited", "False", "DesiredWithinRange"),
            ("Custom", "True", "Kept"),
            ("AbleToScale", "True", "ReadyForNewScale"),
            ("ScalingActive", "True", "ValidMetricFound")
        ])
    );
    let t = |i: usize| d.conditions[i].last_transition_time.unwrap();
    let earlier = Time::parse_rfc3339(&earlier).unwrap();
    let now = Time::parse_rfc3339(NOW).unwrap();
    assert_eq!((t(0), t(1), t(2), t(3)), (earlier, earlier, earlier, now));
    assert_eq!(
        d.conditions[2].message,
        "recommended size matches current size"
    );
}

#[test]
fn the_first_reconcile_seeds_the_memory_and_holds_a_scale_down() {
    let mut v = object_input(5, "10", "20");
    v.as_object_mut().unwrap().remove("history");
    let d = run(&v);
    assert_eq!(proposal(&d, 0), 10);
    let mut v = object_input(5, "10", "1");
    v.as_object_mut().unwrap().remove("history");
    let d = run(&v);
    assert_eq!(
        d.desired_replicas, 5,
        "the seed (5, now) holds the scale-down"
    );
    assert_eq!(
        condition(&d, "AbleToScale").unwrap().1,
        "ScaleDownStabilized"
    );
    let recs = d.history.unwrap().recommendations.unwrap();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].replicas, 5);
}

#[test]
fn desired_never_goes_below_zero_and_reasons_follow_the_direction() {
    // A negative external sum proposes a negative count: desired is 0, then min.
    let mut v = input(3, json!([external_metric("Value", "1")]));
    v["pods"] = json!([pod("a", "1"), pod("b", "1"), pod("c", "1")]);
    v["metricValues"] =
        json!([{"type": "External", "metric": {"name": "queue"}, "items": [{"value": "-5"}]}]);
    let d = run(&v);
    assert!(proposal(&d, 0) < 0);
    assert_eq!(d.desired_replicas, 1);
    assert_eq!(d.reason, "All metrics below target");
}
