//! The `tidal calc` input layer: defaults, and precise errors that name the
//! field for malformed input (FORMAT 1, 3, Appendix B).
#![allow(clippy::unwrap_used, clippy::type_complexity)]

mod common;
use common::*;
use scaling::{MetricSpec, ScaleRead, Time, format};
use serde_json::{Value, json};

fn base() -> Value {
    let mut v = input(3, json!([cpu_utilization(50)]));
    pods_with_usage(&mut v, 3, &[100, 200, 300]);
    v
}

fn set(v: &mut Value, path: &[&str], value: Value) {
    let mut cursor = v;
    for key in &path[..path.len() - 1] {
        cursor = if let Ok(i) = key.parse::<usize>() {
            &mut cursor[i]
        } else {
            &mut cursor[*key]
        };
    }
    let last = path[path.len() - 1];
    if value.is_null() && last != "null" {
        if let Some(o) = cursor.as_object_mut() {
            o.remove(last);
        }
    } else {
        cursor[last] = value;
    }
}

#[test]
fn malformed_input_names_the_field() {
    // (path, value (null removes the field), expected error text)
    let rows: Vec<(&[&str], Value, &str)> = vec![
        (
            &["spec", "maxReplicas"],
            Value::Null,
            "spec.maxReplicas: required integer is missing",
        ),
        (
            &["spec", "maxReplicas"],
            json!("ten"),
            "spec.maxReplicas: expected an integer, found a string",
        ),
        (
            &["spec", "maxReplicas"],
            json!(3.5),
            "spec.maxReplicas: expected an integer, found 3.5",
        ),
        (
            &["spec", "maxReplicas"],
            json!(4_000_000_000u64),
            "spec.maxReplicas: 4000000000 does not fit in a 32-bit integer",
        ),
        (&["now"], Value::Null, "now: required time is missing"),
        (
            &["now"],
            json!("yesterday"),
            "now: invalid time \"yesterday\": expected YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)",
        ),
        (
            &["now"],
            json!("2026-02-30T00:00:00Z"),
            "now: invalid time \"2026-02-30T00:00:00Z\": day out of range",
        ),
        (&["spec"], Value::Null, "spec: required object is missing"),
        (
            &["spec", "scaleTargetRef"],
            Value::Null,
            "spec.scaleTargetRef: required object is missing",
        ),
        (
            &["spec"],
            json!([]),
            "spec: expected an object, found an array",
        ),
        (&["scale"], Value::Null, "scale: required object is missing"),
        (
            &["scale", "specReplicas"],
            Value::Null,
            "scale.specReplicas: required integer is missing",
        ),
        (
            &["pods", "1", "metadata", "name"],
            Value::Null,
            "pods[1].metadata.name: required string is missing",
        ),
        (
            &["pods", "0", "status", "startTime"],
            json!("soon"),
            "pods[0].status.startTime: invalid time \"soon\": expected YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)",
        ),
        (
            &[
                "pods",
                "2",
                "spec",
                "containers",
                "0",
                "resources",
                "requests",
                "cpu",
            ],
            json!("1.5.5"),
            "pods[2].spec.containers[0].resources.requests.cpu: invalid quantity \"1.5.5\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        ),
        (
            &["podMetrics", "0", "containers", "0", "usage", "cpu"],
            json!("12x"),
            "podMetrics[0].containers[0].usage.cpu: invalid quantity \"12x\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        ),
        (
            &["podMetrics", "0", "containers", "0", "usage", "cpu"],
            json!("1ki"),
            "podMetrics[0].containers[0].usage.cpu: invalid quantity \"1ki\": unable to parse quantity's suffix",
        ),
        (
            &["podMetrics", "0", "window"],
            json!("1 minute"),
            "podMetrics[0].window: time: unknown unit \" minute\" in duration \"1 minute\"",
        ),
        (
            &["podMetrics", "0", "window"],
            json!("60"),
            "podMetrics[0].window: time: missing unit in duration \"60\"",
        ),
        (
            &[
                "spec",
                "metrics",
                "0",
                "resource",
                "target",
                "averageUtilization",
            ],
            json!(0),
            "spec.metrics[0].resource.target.averageUtilization: a target must be positive",
        ),
        (
            &["spec", "metrics", "0", "resource", "target", "averageValue"],
            json!("-1"),
            "spec.metrics[0].resource.target.averageValue: a target must be positive",
        ),
        (
            &["spec", "metrics", "0", "resource"],
            Value::Null,
            "spec.metrics[0].resource: required object is missing",
        ),
        (
            &["spec", "metrics", "0", "type"],
            Value::Null,
            "spec.metrics[0].type: required string is missing",
        ),
        (
            &["spec", "behavior"],
            json!({"scaleUp": {"policies": []}}),
            "spec.behavior.scaleUp.policies: must not be empty (omit it for the defaults)",
        ),
        (
            &["spec", "behavior"],
            json!({"scaleDown": {"selectPolicy": "Fastest"}}),
            "spec.behavior.scaleDown.selectPolicy: \"Fastest\" is not one of Max, Min, Disabled",
        ),
        (
            &["spec", "behavior"],
            json!({"scaleDown": {"policies": [{"type": "Replicas", "value": 1, "periodSeconds": 15}]}}),
            "spec.behavior.scaleDown.policies[0].type: \"Replicas\" is not one of Pods, Percent",
        ),
        (
            &["spec", "behavior"],
            json!({"scaleDown": {"policies": [{"type": "Pods", "periodSeconds": 15}]}}),
            "spec.behavior.scaleDown.policies[0].value: required integer is missing",
        ),
        (
            &["spec", "behavior"],
            json!({"scaleUp": {"tolerance": "five"}}),
            "spec.behavior.scaleUp.tolerance: invalid quantity \"five\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        ),
        (
            &["history", "recommendations"],
            json!([{"replicas": 3}]),
            "history.recommendations[0].timestamp: required time is missing",
        ),
        (
            &["history", "scaleUpEvents"],
            json!([{"replicaChange": "2", "timestamp": NOW}]),
            "history.scaleUpEvents[0].replicaChange: expected an integer, found a string",
        ),
        (
            &["config", "tolerance"],
            json!("0.1"),
            "config.tolerance: expected a number, found a string",
        ),
        (
            &["config", "featureGates", "HPAScaleToZero"],
            json!("yes"),
            "config.featureGates.HPAScaleToZero: expected a boolean, found a string",
        ),
        (
            &["metricValues"],
            json!([{"type": "Pods", "metric": {"name": "qps"}, "items": [{"value": "1"}]}]),
            "metricValues[0].items[0].describedObject.name: required string is missing",
        ),
        (
            &["metricValues"],
            json!([{"type": "External", "metric": {"name": "q"}, "items": [{}]}]),
            "metricValues[0].items[0].value: required quantity is missing",
        ),
        (
            &["pods"],
            json!({}),
            "pods: expected an array, found an object",
        ),
    ];
    for (path, value, want) in rows {
        let mut v = base();
        set(&mut v, path, value);
        match format::parse_input(&v) {
            Ok(_) => panic!("{path:?}: accepted, want {want:?}"),
            Err(e) => assert_eq!(e.to_string(), want, "{path:?}"),
        }
    }
    assert_eq!(
        format::parse_input(&json!([1, 2])).unwrap_err().to_string(),
        "input: expected an object, found an array"
    );
}

#[test]
fn absent_optional_fields_take_the_documented_defaults() {
    let v = json!({"now": NOW, "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "w"}, "maxReplicas": 5},
                   "scale": {"specReplicas": 2}});
    let c = format::parse_input(&v).unwrap().input;
    assert_eq!(c.config, scaling::Config::default());
    assert_eq!(
        (c.metadata.name.as_str(), c.metadata.namespace.as_str()),
        ("autoscaler", "default")
    );
    assert_eq!(c.spec.min_replicas, None);
    assert!(c.spec.metrics.is_empty());
    assert_eq!(c.spec.behavior, None);
    assert_eq!(c.status, scaling::AutoscalerStatus::default());
    assert_eq!(
        c.scale,
        ScaleRead::Read(scaling::Scale {
            spec_replicas: 2,
            status_replicas: 2,
            selector: String::new()
        })
    );
    assert_eq!(c.pod_metrics, Ok(vec![]));
    assert_eq!(c.history, None);
}

#[test]
fn lenient_fields_follow_format_md() {
    let mut v = base();
    // Numbers where quantities are expected; numeric windows are seconds.
    v["pods"][0]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = json!(0.5);
    v["podMetrics"][0]["window"] = json!(30);
    v["podMetrics"][1]["window"] = json!("1m30s");
    v["podMetrics"][2]
        .as_object_mut()
        .unwrap()
        .remove("timestamp");
    // Unknown fields are ignored; null is absent; behavior {} is the behavior path.
    v["spec"]["unknownField"] = json!({"x": 1});
    v["status"] = Value::Null;
    v["spec"]["behavior"] = json!({});
    let c = format::parse_input(&v).unwrap().input;
    assert_eq!(c.pods[0].containers[0].requests.get("cpu"), Some(500));
    let items = c.pod_metrics.unwrap();
    assert_eq!(items[0].window, scaling::Duration::from_seconds(30));
    assert_eq!(items[1].window, scaling::Duration::from_seconds(90));
    assert_eq!(items[2].timestamp, Time::parse_rfc3339(NOW).unwrap());
    assert!(c.spec.behavior.is_some());
    // An unknown metric type is a metric failure, not an input error.
    let mut u = base();
    u["spec"]["metrics"] = json!([{"type": "CheddarCheese"}]);
    let c = format::parse_input(&u).unwrap().input;
    assert_eq!(
        c.spec.metrics[0],
        MetricSpec::Unknown("CheddarCheese".to_string())
    );
    // An Object target whose type does not match its field is a metric failure too.
    let mut o = base();
    o["spec"]["metrics"] = json!([{"type": "Object", "object": {"describedObject": {"kind": "Ingress", "name": "m"},
        "metric": {"name": "hits"}, "target": {"type": "Value", "averageValue": "1"}}}]);
    assert!(format::parse_input(&o).is_ok());
}

#[test]
fn output_renders_canonical_quantities_and_utc_times() {
    let mut v = base();
    v["now"] = json!("2026-03-01T11:00:00.250+01:00");
    let d = run(&v);
    let out = format::render_output(&d);
    assert_eq!(out["metrics"][0]["current"]["averageValue"], json!("200m"));
    assert_eq!(
        out["metrics"][0]["current"]["averageUtilization"],
        json!(20)
    );
    assert_eq!(
        out["history"]["recommendations"][0]["timestamp"],
        json!("2026-03-01T10:00:00.25Z")
    );
    assert_eq!(
        out["conditions"][0]["lastTransitionTime"],
        json!("2026-03-01T10:00:00.25Z")
    );
    for key in [
        "desiredReplicas",
        "currentReplicas",
        "rescale",
        "reason",
        "metrics",
        "conditions",
        "events",
        "history",
    ] {
        assert!(out.get(key).is_some(), "{key}");
    }
}
