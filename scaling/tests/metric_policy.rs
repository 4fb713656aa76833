//! `spec.tidal.metricPolicies`: what each `whenUnavailable` does with a missing or stale
//! metric, that fresh data and `Upstream` decide exactly as upstream, and the reader's checks.

use scaling::conditions::{METRIC_POLICY, SCALING_ACTIVE};
use scaling::{Decision, EventType, decide, format};
use serde_json::{Value, json};

const NOW: &str = "2026-12-02T10:00:00Z";

/// Two External metrics, `queue` (20 against 10 per replica: proposes 2) and `lag`; four
/// replicas; no scale-down window, so a lower proposal is written at once.
fn input(lag: Value, policies: Value) -> Value {
    json!({
        "now": NOW,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "worker"},
            "minReplicas": 1,
            "maxReplicas": 10,
            "metrics": [
                {"type": "External", "external": {"metric": {"name": "queue"},
                    "target": {"type": "AverageValue", "averageValue": "10"}}},
                {"type": "External", "external": {"metric": {"name": "lag"},
                    "target": {"type": "AverageValue", "averageValue": "10"}}}
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
            "tidal": {"metricPolicies": policies}
        },
        "status": {"currentReplicas": 4, "desiredReplicas": 4},
        "scale": {"specReplicas": 4, "statusReplicas": 4, "selector": "app=worker"},
        "metricValues": [
            {"type": "External", "metric": {"name": "queue"}, "items": [{"value": "20"}]},
            lag
        ]
    })
}

fn lag_missing() -> Value {
    json!({"type": "External", "metric": {"name": "lag"},
           "error": "the server is currently unable to handle the request"})
}

/// `lag` at `value` (per replica: `value / 10` replicas), sampled `age` seconds ago.
fn lag_at(value: i64, age: i64) -> Value {
    let at = scaling::Time::parse_rfc3339(NOW)
        .map(|t| t - scaling::Duration::from_seconds(age))
        .map(|t| t.to_rfc3339())
        .unwrap_or_default();
    json!({"type": "External", "metric": {"name": "lag"},
           "items": [{"value": value.to_string(), "timestamp": at}]})
}

fn lag_policy(fields: Value) -> Value {
    let mut p = json!({"type": "External", "name": "lag"});
    if let (Some(p), Some(f)) = (p.as_object_mut(), fields.as_object()) {
        p.extend(f.clone());
    }
    json!([p])
}

fn run(doc: &Value) -> Decision {
    let calc = format::parse_input(doc).unwrap_or_else(|e| panic!("input: {e}"));
    decide(&calc.input, |_| Ok(()))
}

fn condition(d: &Decision, kind: &str) -> Option<(String, String, String)> {
    d.conditions
        .iter()
        .find(|c| c.kind == kind)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

fn warnings(d: &Decision, reason: &str) -> Vec<String> {
    d.events
        .iter()
        .filter(|e| e.kind == EventType::Warning && e.reason == reason)
        .map(|e| e.message.clone())
        .collect()
}

#[test]
fn without_a_policy_a_missing_metric_blocks_the_scale_down_as_upstream() {
    let d = run(&input(lag_missing(), json!([])));
    assert_eq!((d.desired_replicas, d.rescale), (4, false));
    let active = condition(&d, SCALING_ACTIVE).expect("ScalingActive");
    assert_eq!(
        (active.0.as_str(), active.1.as_str()),
        ("False", "FailedGetExternalMetric")
    );
    assert_eq!(condition(&d, METRIC_POLICY), None);
}

#[test]
fn upstream_policy_decides_the_same_and_reports_the_missing_metric() {
    let plain = run(&input(lag_missing(), json!([])));
    let d = run(&input(
        lag_missing(),
        lag_policy(json!({"whenUnavailable": "Upstream"})),
    ));
    assert_eq!(
        (d.desired_replicas, d.rescale),
        (plain.desired_replicas, plain.rescale)
    );
    assert_eq!(
        condition(&d, SCALING_ACTIVE),
        condition(&plain, SCALING_ACTIVE)
    );
    let (status, reason, message) = condition(&d, METRIC_POLICY).expect("MetricPolicy");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "MetricMissing")
    );
    assert!(
        message.contains("External metric lag is missing"),
        "{message}"
    );
    assert!(message.contains("policy Upstream"), "{message}");
    assert_eq!(warnings(&d, "MetricMissing"), vec![message]);
}

#[test]
fn ignore_decides_on_the_other_metrics_so_a_missing_one_no_longer_blocks_scale_down() {
    let d = run(&input(
        lag_missing(),
        lag_policy(json!({"whenUnavailable": "Ignore"})),
    ));
    assert_eq!((d.desired_replicas, d.rescale), (2, true));
    let active = condition(&d, SCALING_ACTIVE).expect("ScalingActive");
    assert_eq!(active.0, "True");
    // The failure itself is still reported as upstream reports it.
    assert_eq!(warnings(&d, "FailedGetExternalMetric").len(), 1);
    let lag = &d.trace.metrics[1];
    let policy = lag.policy.as_ref().expect("policy trace");
    assert_eq!(
        (policy.availability.as_str(), policy.effect.as_deref()),
        ("Missing", Some("ignored"))
    );
}

#[test]
fn hold_keeps_the_current_size_whatever_the_other_metrics_propose() {
    let d = run(&input(
        lag_missing(),
        lag_policy(json!({"whenUnavailable": "Hold"})),
    ));
    assert_eq!((d.desired_replicas, d.rescale), (4, false));
    let (_, reason, message) = condition(&d, METRIC_POLICY).expect("MetricPolicy");
    assert_eq!(reason, "MetricMissing");
    assert!(
        message.contains("policy Hold keeps the current size"),
        "{message}"
    );
}

#[test]
fn fixed_proposes_its_size_for_the_metric_and_the_largest_proposal_wins() {
    let d = run(&input(
        lag_missing(),
        lag_policy(json!({"whenUnavailable": "Fixed", "fixedReplicas": 6})),
    ));
    assert_eq!((d.desired_replicas, d.rescale), (6, true));
    assert!(d.reason.contains("lag (Fixed policy)"), "{}", d.reason);
    let d = run(&input(
        lag_missing(),
        lag_policy(json!({"whenUnavailable": "Fixed", "fixedReplicas": 1})),
    ));
    // queue's 2 is larger than the fixed 1.
    assert_eq!((d.desired_replicas, d.rescale), (2, true));
}

#[test]
fn scale_up_only_never_lowers_the_size_but_lets_a_stale_high_value_raise_it() {
    let d = run(&input(
        lag_missing(),
        lag_policy(json!({"whenUnavailable": "ScaleUpOnly"})),
    ));
    assert_eq!((d.desired_replicas, d.rescale), (4, false));
    let policy = json!({"whenUnavailable": "ScaleUpOnly", "maxSampleAgeSeconds": 60});
    let low = run(&input(lag_at(10, 120), lag_policy(policy.clone())));
    assert_eq!((low.desired_replicas, low.rescale), (4, false));
    let high = run(&input(lag_at(70, 120), lag_policy(policy)));
    assert_eq!((high.desired_replicas, high.rescale), (7, true));
}

#[test]
fn a_sample_older_than_the_maximum_age_is_stale_and_a_younger_one_is_fresh() {
    let policy = lag_policy(json!({"whenUnavailable": "Ignore", "maxSampleAgeSeconds": 60}));
    let stale = run(&input(lag_at(80, 61), policy.clone()));
    assert_eq!(stale.desired_replicas, 2, "the stale 80 is ignored");
    let (status, reason, message) = condition(&stale, METRIC_POLICY).expect("MetricPolicy");
    assert_eq!((status.as_str(), reason.as_str()), ("True", "MetricStale"));
    assert!(
        message.contains("is stale (a sample older than 60s"),
        "{message}"
    );
    let trace = stale.trace.metrics[1].policy.clone().expect("trace");
    assert_eq!(trace.oldest_sample_age_seconds, Some(61));
    assert_eq!(trace.detail.as_deref(), Some("the sample is 61s old"));

    let fresh = run(&input(lag_at(80, 60), policy));
    assert_eq!(
        fresh.desired_replicas, 8,
        "a 60 s old sample is within 60 s"
    );
    let (status, reason, _) = condition(&fresh, METRIC_POLICY).expect("MetricPolicy");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "MetricsFresh")
    );
    assert!(warnings(&fresh, "MetricStale").is_empty());
}

#[test]
fn upstream_uses_a_stale_sample_as_if_fresh_and_says_so() {
    let plain = run(&input(lag_at(80, 600), json!([])));
    let d = run(&input(
        lag_at(80, 600),
        lag_policy(json!({"maxSampleAgeSeconds": 60})),
    ));
    assert_eq!(d.desired_replicas, plain.desired_replicas);
    assert_eq!(d.desired_replicas, 8);
    assert_eq!(
        condition(&d, METRIC_POLICY).map(|c| c.1),
        Some("MetricStale".to_string())
    );
}

#[test]
fn when_every_metric_is_ignored_the_size_stays() {
    let mut doc = input(
        lag_missing(),
        json!([
            {"type": "External", "name": "queue", "whenUnavailable": "Ignore"},
            {"type": "External", "name": "lag", "whenUnavailable": "Ignore"}
        ]),
    );
    doc["metricValues"][0] =
        json!({"type": "External", "metric": {"name": "queue"}, "error": "down"});
    let d = run(&doc);
    assert_eq!((d.desired_replicas, d.rescale), (4, false));
    let (_, _, message) = condition(&d, METRIC_POLICY).expect("MetricPolicy");
    assert!(
        message.contains("queue") && message.contains("lag"),
        "{message}"
    );
}

/// One CPU metric over two pods; `b` has no sample and has run `b_running` seconds.
fn cpu_input(b_running: i64) -> Value {
    let started = |ago: i64| {
        scaling::Time::parse_rfc3339(NOW)
            .map(|t| (t - scaling::Duration::from_seconds(ago)).to_rfc3339())
            .unwrap_or_default()
    };
    let pod = |name: &str, ago: i64| {
        json!({"metadata": {"name": name, "labels": {"app": "web"}},
               "spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": "100m"}}}]},
               "status": {"phase": "Running", "startTime": started(ago),
                          "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": started(ago)}]}})
    };
    json!({
        "now": NOW,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 10,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 50}}}],
            "tidal": {"metricPolicies": [{"type": "Resource", "name": "cpu",
                "maxSampleAgeSeconds": 60, "whenUnavailable": "Hold"}]}
        },
        "scale": {"specReplicas": 2, "statusReplicas": 2, "selector": "app=web"},
        "pods": [pod("a", 3600), pod("b", b_running)],
        "podMetrics": [{"metadata": {"name": "a"}, "timestamp": started(5), "window": "15s",
                        "containers": [{"name": "app", "usage": {"cpu": "400m"}}]}]
    })
}

#[test]
fn a_pod_running_longer_than_the_maximum_age_without_a_sample_makes_the_metric_stale() {
    let d = run(&cpu_input(120));
    let (status, reason, _) = condition(&d, METRIC_POLICY).expect("MetricPolicy");
    assert_eq!((status.as_str(), reason.as_str()), ("True", "MetricStale"));
    assert_eq!((d.desired_replicas, d.rescale), (2, false), "Hold keeps 2");
    let detail = d.trace.metrics[0].policy.clone().and_then(|p| p.detail);
    assert_eq!(
        detail.as_deref(),
        Some("pod b has run 120s without a sample")
    );
}

#[test]
fn a_new_pod_without_a_sample_yet_is_not_stale() {
    let d = run(&cpu_input(30));
    let (status, _, _) = condition(&d, METRIC_POLICY).expect("MetricPolicy");
    assert_eq!(status, "False");
    // Upstream's missing-pod rule decides: a scale-up with b counted as 0.
    assert!(
        d.rescale && d.desired_replicas > 2,
        "{}",
        d.desired_replicas
    );
}

fn reader_error(policies: Value) -> String {
    match format::parse_input(&input(lag_missing(), policies)) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_reader_names_the_field_and_the_fix_for_a_bad_policy() {
    let e = reader_error(lag_policy(json!({"fixedReplicas": 3})));
    assert!(
        e.contains("spec.tidal.metricPolicies[0].fixedReplicas"),
        "{e}"
    );
    assert!(e.contains("only with whenUnavailable: Fixed"), "{e}");
    let e = reader_error(lag_policy(json!({"whenUnavailable": "Fixed"})));
    assert!(
        e.contains("metricPolicies[0].fixedReplicas") && e.contains("required"),
        "{e}"
    );
    let e = reader_error(json!([{"type": "External", "name": "nope"}]));
    assert!(e.contains("spec.tidal.metricPolicies[0]"), "{e}");
    assert!(e.contains("which spec.metrics does not list"), "{e}");
    let e = reader_error(json!([
        {"type": "External", "name": "lag"},
        {"type": "External", "name": "lag", "whenUnavailable": "Hold"}
    ]));
    assert!(
        e.contains("metricPolicies[1]") && e.contains("same metric"),
        "{e}"
    );
    let e = reader_error(lag_policy(json!({"maxSampleAgeSeconds": 0})));
    assert!(
        e.contains("maxSampleAgeSeconds") && e.contains("at least 1"),
        "{e}"
    );
    let e = reader_error(lag_policy(json!({"whenUnavailable": "Panic"})));
    assert!(
        e.contains("whenUnavailable") && e.contains("Upstream, Hold"),
        "{e}"
    );
}
