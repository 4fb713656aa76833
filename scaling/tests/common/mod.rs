//! Builders shared by the behaviour tests: decision inputs written in the
//! `tidal calc` JSON shape (readable, and the same path users take).
#![allow(dead_code, clippy::unwrap_used)]

use scaling::{Decision, MetricOutcome, MetricValueStatus, Time, decide, format};
use serde_json::{Value, json};

/// The instant every scenario runs at.
pub const NOW: &str = "2026-03-01T10:00:00Z";

/// `NOW` shifted by `seconds` (negative is earlier), RFC 3339.
pub fn at(seconds: i64) -> String {
    let now = Time::parse_rfc3339(NOW).unwrap();
    let t = if seconds >= 0 {
        now + scaling::Duration::from_seconds(seconds)
    } else {
        now - scaling::Duration::from_seconds(-seconds)
    };
    t.to_rfc3339()
}

/// Go's zero time: "started long ago".
pub const LONG_AGO: &str = "0001-01-01T00:00:00Z";

/// The upstream test configuration (CPU initialization 120 s, readiness delay 10 s, factor 8).
pub fn test_config() -> Value {
    json!({
        "tolerance": 0.1, "cpuInitializationPeriodSeconds": 120, "initialReadinessDelaySeconds": 10,
        "downscaleStabilizationSeconds": 300, "legacyScaleUpLimitFactor": 8, "legacyScaleUpLimitMinimum": 4,
        "featureGates": {"HPAConfigurableTolerance": true, "HPAScaleToZero": true, "PodLevelResources": true}
    })
}

/// A Resource Utilization metric.
pub fn cpu_utilization(target: i32) -> Value {
    json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}})
}

/// A Resource AverageValue metric.
pub fn resource_average(resource: &str, target: &str) -> Value {
    json!({"type": "Resource", "resource": {"name": resource, "target": {"type": "AverageValue", "averageValue": target}}})
}

/// A Pods metric named `qps`.
pub fn pods_metric(target: &str) -> Value {
    json!({"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": target}}})
}

/// An Object metric on `Ingress/main`.
pub fn object_metric(kind: &str, target: &str) -> Value {
    let target = if kind == "Value" {
        json!({"type": "Value", "value": target})
    } else {
        json!({"type": "AverageValue", "averageValue": target})
    };
    json!({"type": "Object", "object": {"describedObject": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "main"},
        "metric": {"name": "hits"}, "target": target}})
}

/// An External metric named `queue` with a `matchLabels` selector.
pub fn external_metric(kind: &str, target: &str) -> Value {
    let target = if kind == "Value" {
        json!({"type": "Value", "value": target})
    } else {
        json!({"type": "AverageValue", "averageValue": target})
    };
    json!({"type": "External", "external": {"metric": {"name": "queue", "selector": {"matchLabels": {"q": "jobs"}}}, "target": target}})
}

/// An input with `replicas` current replicas, no pods, and the given metrics.
pub fn input(replicas: i32, metrics: Value) -> Value {
    json!({
        "now": NOW,
        "config": test_config(),
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 1, "maxReplicas": 100, "metrics": metrics},
        "status": {"currentReplicas": replicas, "desiredReplicas": replicas},
        "scale": {"specReplicas": replicas, "statusReplicas": replicas, "selector": "app=web"},
        "pods": [], "podMetrics": [], "history": {"recommendations": []}
    })
}

/// A running pod with one container requesting `cpu`, started long ago and Ready.
pub fn pod(name: &str, cpu: &str) -> Value {
    json!({
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]},
        "status": {"phase": "Running", "startTime": LONG_AGO,
                   "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": LONG_AGO}]}
    })
}

/// A PodMetrics item with one container using `cpu` (and 512Mi memory), sampled at `NOW`.
pub fn sample(name: &str, cpu: &str) -> Value {
    json!({"metadata": {"name": name}, "timestamp": NOW, "window": "60s",
           "containers": [{"name": "app", "usage": {"cpu": cpu, "memory": "512Mi"}}]})
}

/// `n` ready pods requesting 1 CPU, with samples `usages` (milli) for the first ones.
pub fn pods_with_usage(v: &mut Value, n: usize, usages: &[i64]) {
    let pods: Vec<Value> = (0..n).map(|i| pod(&format!("p{i}"), "1")).collect();
    let samples: Vec<Value> = usages
        .iter()
        .enumerate()
        .map(|(i, u)| sample(&format!("p{i}"), &format!("{u}m")))
        .collect();
    v["pods"] = Value::Array(pods);
    v["podMetrics"] = Value::Array(samples);
}

/// Parses and decides; scale writes succeed.
pub fn run(v: &Value) -> Decision {
    let calc = format::parse_input(v).unwrap_or_else(|e| panic!("test input invalid: {e}"));
    let err = calc.update_error.clone();
    decide(&calc.input, |_| err.map_or(Ok(()), Err))
}

/// The proposal of metric `i`, panicking with the failure if it failed.
pub fn proposal(d: &Decision, i: usize) -> i32 {
    match &d.metrics[i].outcome {
        MetricOutcome::Proposal { replicas, .. } => *replicas,
        MetricOutcome::Failed { reason, message } => {
            panic!("metric {i} failed: {reason}: {message}")
        }
    }
}

/// The reported current value of metric `i`.
pub fn current(d: &Decision, i: usize) -> MetricValueStatus {
    match &d.metrics[i].outcome {
        MetricOutcome::Proposal { current, .. } => *current,
        MetricOutcome::Failed { reason, message } => {
            panic!("metric {i} failed: {reason}: {message}")
        }
    }
}

/// The failure of metric `i`: (reason, message).
pub fn failure(d: &Decision, i: usize) -> (String, String) {
    match &d.metrics[i].outcome {
        MetricOutcome::Failed { reason, message } => (reason.clone(), message.clone()),
        MetricOutcome::Proposal { replicas, .. } => panic!("metric {i} proposed {replicas}"),
    }
}

/// `(status, reason)` of condition `kind`, if present.
pub fn condition(d: &Decision, kind: &str) -> Option<(String, String)> {
    d.conditions
        .iter()
        .find(|c| c.kind == kind)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// Condition triples in order.
pub fn conditions(d: &Decision) -> Vec<(String, String, String)> {
    d.conditions
        .iter()
        .map(|c| (c.kind.clone(), c.status.clone(), c.reason.clone()))
        .collect()
}

/// `(type, reason)` of every event, in order.
pub fn events(d: &Decision) -> Vec<(String, String)> {
    d.events
        .iter()
        .map(|e| (e.kind.as_str().to_string(), e.reason.clone()))
        .collect()
}
