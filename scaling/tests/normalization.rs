//! Normalization (contract 4): legacy stabilization and clamp, behavior
//! defaults, stabilization windows, rate-limit policies and periods,
//! selectPolicy, and the scale-event memory. Scenarios use an External
//! AverageValue metric with target 1, so the metric proposes exactly N.
#![allow(clippy::unwrap_used, clippy::type_complexity)]

mod common;
use common::*;
use scaling::{Config, Duration, Recommendation, ScaleEvent, Time, normalize};
use serde_json::{Value, json};

/// A decision whose metric proposes `proposal` at `current` replicas.
fn proposing(current: i32, proposal: i32) -> Value {
    let mut v = input(current, json!([external_metric("AverageValue", "1")]));
    v["config"]["tolerance"] = json!(0.0);
    v["spec"]["maxReplicas"] = json!(1000);
    v["metricValues"] = json!([{"type": "External", "metric": {"name": "queue"}, "items": [{"value": proposal.to_string()}]}]);
    v
}

fn recs(list: &[(i32, i64)]) -> Value {
    Value::Array(
        list.iter()
            .map(|(r, t)| json!({"replicas": r, "timestamp": at(*t)}))
            .collect(),
    )
}

fn evs(list: &[(i32, i64)]) -> Value {
    Value::Array(
        list.iter()
            .map(|(c, t)| json!({"replicaChange": c, "timestamp": at(*t)}))
            .collect(),
    )
}

#[test]
fn legacy_stabilization_takes_the_max_inside_the_window() {
    // (recommendations (replicas, seconds ago), proposal, stabilized, history length)
    let rows: Vec<(&str, Vec<(i32, i64)>, i32, i32, usize)> = vec![
        ("empty memory", vec![], 5, 5, 1),
        ("stabilize", vec![(4, -120), (5, -60)], 3, 5, 3),
        (
            "no stabilize on scale-up",
            vec![(1, -120), (2, -60)],
            3,
            3,
            3,
        ),
        (
            "old recommendations are reused, not counted",
            vec![(10, -600), (9, -540)],
            3,
            3,
            2,
        ),
        (
            "stabilize with old ones",
            vec![(10, -600), (4, -60), (5, -120), (9, -540)],
            3,
            5,
            4,
        ),
        (
            "an entry exactly at the cutoff still counts",
            vec![(7, -300)],
            3,
            7,
            2,
        ),
        ("one second older is expired", vec![(7, -301)], 3, 3, 1),
    ];
    for (name, history, proposal, want, len) in rows {
        let mut v = proposing(10, proposal);
        v["history"]["recommendations"] = recs(&history);
        let d = run(&v);
        assert_eq!(d.desired_replicas, want, "{name}");
        let stored = d
            .history
            .as_ref()
            .unwrap()
            .recommendations
            .as_ref()
            .unwrap();
        assert_eq!(stored.len(), len, "{name}");
        assert!(
            stored
                .iter()
                .any(|r| r.replicas == proposal && r.timestamp == at_time(0)),
            "{name}: the unstabilized proposal is remembered"
        );
    }
}

#[test]
fn legacy_stabilization_reports_scale_down_stabilized() {
    let mut v = proposing(5, 3);
    v["history"]["recommendations"] = recs(&[(5, -60)]);
    let d = run(&v);
    assert_eq!(d.desired_replicas, 5);
    assert!(!d.rescale);
    assert_eq!(
        conditions(&d)[0],
        (
            "AbleToScale".into(),
            "True".into(),
            "ScaleDownStabilized".into()
        )
    );
}

#[test]
fn legacy_clamp_limits_scale_up_per_reconcile() {
    // (current, proposal, min, max, factor, minimum) -> (desired, ScalingLimited reason)
    let rows: &[(i32, i32, i32, i32, f64, f64, i32, &str)] = &[
        (5, 7, 3, 8, 8.0, 4.0, 7, "DesiredWithinRange"),
        (3, 1, 2, 8, 8.0, 4.0, 2, "TooFewReplicas"),
        (1, 0, 0, 10, 8.0, 4.0, 0, "DesiredWithinRange"),
        (3, 1000, 1, 2000, 8.0, 4.0, 24, "ScaleUpLimit"),
        (3, 1000, 1, 2000, 2.0, 4.0, 6, "ScaleUpLimit"),
        (1, 1000, 1, 2000, 2.0, 4.0, 4, "ScaleUpLimit"),
        (3, 1000, 1, 5, 2.0, 4.0, 5, "TooManyReplicas"),
        (3, 6, 1, 6, 2.0, 4.0, 6, "DesiredWithinRange"),
    ];
    for (current, proposal, min, max, factor, minimum, want, reason) in rows {
        let mut v = proposing(*current, *proposal);
        v["spec"]["minReplicas"] = json!(min);
        v["spec"]["maxReplicas"] = json!(max);
        v["config"]["legacyScaleUpLimitFactor"] = json!(factor);
        v["config"]["legacyScaleUpLimitMinimum"] = json!(minimum);
        let d = run(&v);
        assert_eq!(d.desired_replicas, *want, "{current}->{proposal}");
        let limited = condition(&d, "ScalingLimited").unwrap();
        assert_eq!(limited.1, *reason, "{current}->{proposal}");
        assert_eq!(
            limited.0,
            if *reason == "DesiredWithinRange" {
                "False"
            } else {
                "True"
            }
        );
    }
}

#[test]
fn behavior_defaults_fill_each_field_separately() {
    let config = Config::default();
    let b = scaling::Behavior {
        scale_up: Some(scaling::ScalingRules {
            select_policy: Some(scaling::SelectPolicy::Min),
            ..Default::default()
        }),
        scale_down: None,
    };
    let rules = normalize::BehaviorRules::with_defaults(&b, &config);
    assert_eq!(rules.up.window_seconds, 0);
    assert_eq!(rules.up.select_policy, scaling::SelectPolicy::Min);
    assert_eq!(rules.up.policies.len(), 2);
    assert_eq!(
        rules.down.window_seconds, 300,
        "scale-down window defaults to the flag"
    );
    assert_eq!(rules.down.select_policy, scaling::SelectPolicy::Max);
    assert_eq!(
        rules.down.policies,
        vec![scaling::ScalingPolicy {
            kind: scaling::PolicyType::Percent,
            value: 100,
            period_seconds: 15
        }]
    );
}

#[test]
fn behavior_rate_limits_follow_the_policies() {
    // (name, behavior, current, proposal, min, max, up events, down events, desired, ScalingLimited reason)
    let rows: Vec<(
        &str,
        Value,
        i32,
        i32,
        i32,
        i32,
        Vec<(i32, i64)>,
        Vec<(i32, i64)>,
        i32,
        &str,
    )> = vec![
        (
            "default scale-up: max(+4, +100%)",
            json!({}),
            10,
            50,
            1,
            1000,
            vec![],
            vec![],
            20,
            "ScaleUpLimit",
        ),
        (
            "default scale-up from 1: +4 wins",
            json!({}),
            1,
            50,
            1,
            1000,
            vec![],
            vec![],
            5,
            "ScaleUpLimit",
        ),
        (
            "pods policy larger than percent",
            json!({"scaleUp": {"policies": [{"type": "Pods", "value": 10, "periodSeconds": 60}, {"type": "Percent", "value": 50, "periodSeconds": 60}]}}),
            10,
            50,
            1,
            1000,
            vec![],
            vec![],
            20,
            "ScaleUpLimit",
        ),
        (
            "Min picks the smaller scale-up",
            json!({"scaleUp": {"selectPolicy": "Min", "policies": [{"type": "Pods", "value": 10, "periodSeconds": 60}, {"type": "Percent", "value": 50, "periodSeconds": 60}]}}),
            10,
            50,
            1,
            1000,
            vec![],
            vec![],
            15,
            "ScaleUpLimit",
        ),
        (
            "percent scale-up rounds up",
            json!({"scaleUp": {"policies": [{"type": "Percent", "value": 1, "periodSeconds": 60}]}}),
            3,
            1000,
            1,
            2000,
            vec![],
            vec![],
            4,
            "ScaleUpLimit",
        ),
        (
            "max below the rate limit gives TooManyReplicas",
            json!({"scaleUp": {"policies": [{"type": "Pods", "value": 100, "periodSeconds": 60}]}}),
            10,
            500,
            1,
            50,
            vec![],
            vec![],
            50,
            "TooManyReplicas",
        ),
        (
            "events inside the period use up the budget",
            json!({"scaleUp": {"policies": [{"type": "Pods", "value": 4, "periodSeconds": 60}]}}),
            10,
            50,
            1,
            1000,
            vec![(3, -30)],
            vec![],
            11,
            "ScaleUpLimit",
        ),
        (
            "an event exactly one period ago is outside (strict After)",
            json!({"scaleUp": {"policies": [{"type": "Pods", "value": 4, "periodSeconds": 60}]}}),
            10,
            50,
            1,
            1000,
            vec![(3, -60)],
            vec![],
            14,
            "ScaleUpLimit",
        ),
        (
            "budget exhausted: no scale-up at all",
            json!({"scaleUp": {"policies": [{"type": "Pods", "value": 4, "periodSeconds": 60}]}}),
            10,
            50,
            1,
            1000,
            vec![(5, -10)],
            vec![],
            10,
            "ScaleUpLimit",
        ),
        (
            "scale-down events in the period give budget back",
            json!({"scaleUp": {"policies": [{"type": "Pods", "value": 4, "periodSeconds": 60}]}}),
            10,
            50,
            1,
            1000,
            vec![],
            vec![(2, -10)],
            16,
            "ScaleUpLimit",
        ),
        (
            "Disabled scale-up keeps the size",
            json!({"scaleUp": {"selectPolicy": "Disabled"}}),
            10,
            50,
            1,
            1000,
            vec![],
            vec![],
            10,
            "ScaleUpLimit",
        ),
        (
            "default scale-down: -100% within the window-free rules",
            json!({"scaleDown": {"stabilizationWindowSeconds": 0}}),
            10,
            1,
            1,
            1000,
            vec![],
            vec![],
            1,
            "DesiredWithinRange",
        ),
        (
            "pods scale-down policy",
            json!({"scaleDown": {"stabilizationWindowSeconds": 0, "policies": [{"type": "Pods", "value": 5, "periodSeconds": 60}]}}),
            100,
            1,
            1,
            1000,
            vec![],
            vec![],
            95,
            "ScaleDownLimit",
        ),
        (
            "Max picks the biggest scale-down",
            json!({"scaleDown": {"stabilizationWindowSeconds": 0, "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}, {"type": "Percent", "value": 1, "periodSeconds": 60}]}}),
            100,
            1,
            1,
            1000,
            vec![],
            vec![],
            98,
            "ScaleDownLimit",
        ),
        (
            "Min picks the smallest scale-down",
            json!({"scaleDown": {"stabilizationWindowSeconds": 0, "selectPolicy": "Min", "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}, {"type": "Percent", "value": 1, "periodSeconds": 60}]}}),
            100,
            1,
            1,
            1000,
            vec![],
            vec![],
            99,
            "ScaleDownLimit",
        ),
        (
            "percent scale-down truncates",
            json!({"scaleDown": {"stabilizationWindowSeconds": 0, "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]}}),
            7,
            1,
            1,
            1000,
            vec![],
            vec![],
            3,
            "ScaleDownLimit",
        ),
        (
            "percent scale-down counts previous scale-downs",
            json!({"scaleDown": {"stabilizationWindowSeconds": 0, "policies": [{"type": "Percent", "value": 50, "periodSeconds": 120}]}}),
            100,
            0,
            1,
            1000,
            vec![],
            vec![(2, -100), (4, -60), (6, -20)],
            56,
            "ScaleDownLimit",
        ),
        (
            "min below the rate limit gives TooFewReplicas",
            json!({"scaleDown": {"stabilizationWindowSeconds": 0, "policies": [{"type": "Pods", "value": 50, "periodSeconds": 60}]}}),
            10,
            1,
            5,
            1000,
            vec![],
            vec![],
            5,
            "TooFewReplicas",
        ),
        (
            "Disabled scale-down keeps the size",
            json!({"scaleDown": {"stabilizationWindowSeconds": 0, "selectPolicy": "Disabled"}}),
            10,
            1,
            1,
            1000,
            vec![],
            vec![],
            10,
            "ScaleDownLimit",
        ),
    ];
    for (name, behavior, current, proposal, min, max, up, down, want, reason) in rows {
        let mut v = proposing(current, proposal);
        v["spec"]["behavior"] = behavior;
        v["spec"]["minReplicas"] = json!(min);
        v["spec"]["maxReplicas"] = json!(max);
        v["history"] = json!({"recommendations": [], "scaleUpEvents": evs(&up), "scaleDownEvents": evs(&down)});
        let d = run(&v);
        assert_eq!(d.desired_replicas, want, "{name}");
        assert_eq!(condition(&d, "ScalingLimited").unwrap().1, reason, "{name}");
    }
}

#[test]
fn empty_policy_lists_mean_no_change_with_max_and_unlimited_with_min() {
    let up_empty = normalize::Rules {
        window_seconds: 0,
        select_policy: scaling::SelectPolicy::Max,
        policies: vec![],
    };
    let now = Time::parse_rfc3339(NOW).unwrap();
    assert_eq!(
        normalize::scale_up_limit(10, &[], &[], &up_empty, now),
        i32::MIN
    );
    assert_eq!(
        normalize::scale_down_limit(10, &[], &[], &up_empty, now),
        i32::MAX
    );
    let min = normalize::Rules {
        select_policy: scaling::SelectPolicy::Min,
        ..up_empty
    };
    assert_eq!(normalize::scale_up_limit(10, &[], &[], &min, now), i32::MAX);
    assert_eq!(
        normalize::scale_down_limit(10, &[], &[], &min, now),
        i32::MIN
    );
}

#[test]
fn behavior_stabilization_holds_in_both_directions() {
    // (name, up window, down window, recommendations, current, proposal, desired, AbleToScale reason)
    let rows: Vec<(&str, i32, i32, Vec<(i32, i64)>, i32, i32, i32, &str)> = vec![
        (
            "empty memory scales down at once",
            0,
            0,
            vec![],
            5,
            3,
            3,
            "ReadyForNewScale",
        ),
        (
            "scale-down held by a higher recent recommendation",
            0,
            180,
            vec![(4, -120), (5, -60)],
            100,
            3,
            5,
            "ScaleDownStabilized",
        ),
        (
            "no scale-up stabilization with a zero window",
            0,
            300,
            vec![(4, -120), (5, -60)],
            1,
            3,
            3,
            "ReadyForNewScale",
        ),
        (
            "scale-up held by a lower recent recommendation",
            300,
            0,
            vec![(2, -60)],
            1,
            5,
            2,
            "ScaleUpStabilized",
        ),
        (
            "both windows freeze any size between the bounds",
            300,
            300,
            vec![(2, -60), (8, -30)],
            5,
            6,
            5,
            "ScaleUpStabilized",
        ),
        (
            "a zero window ignores an entry stamped now",
            0,
            0,
            vec![(9, 0)],
            5,
            3,
            3,
            "ReadyForNewScale",
        ),
        (
            "an entry exactly at the cutoff does not count (strict After)",
            0,
            60,
            vec![(9, -60)],
            5,
            3,
            3,
            "ReadyForNewScale",
        ),
    ];
    for (name, up, down, history, current, proposal, want, reason) in rows {
        let mut v = proposing(current, proposal);
        v["spec"]["behavior"] = json!({
            "scaleUp": {"stabilizationWindowSeconds": up, "policies": [{"type": "Pods", "value": 10000, "periodSeconds": 15}]},
            "scaleDown": {"stabilizationWindowSeconds": down, "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}
        });
        v["history"]["recommendations"] = recs(&history);
        let d = run(&v);
        assert_eq!(d.desired_replicas, want, "{name}");
        let able = if d.rescale {
            // Overwritten by the rescale; stabilization shows in the value only.
            None
        } else {
            condition(&d, "AbleToScale").map(|c| c.1)
        };
        if let Some(able) = able {
            assert_eq!(able, reason, "{name}");
        }
    }
}

#[test]
fn recommendations_reuse_the_last_slot_old_in_both_windows() {
    let mut recs_vec = vec![
        Recommendation {
            replicas: 10,
            timestamp: at_time(-1000),
        },
        Recommendation {
            replicas: 11,
            timestamp: at_time(-900),
        },
        Recommendation {
            replicas: 12,
            timestamp: at_time(-10),
        },
    ];
    let rules =
        normalize::BehaviorRules::with_defaults(&scaling::Behavior::default(), &Config::default());
    let now = at_time(0);
    let rec = normalize::stabilize_with_behavior(&mut recs_vec, 3, 5, now, &rules).replicas;
    assert_eq!(
        rec, 5,
        "held at the current size by the 12 inside the 300 s window"
    );
    assert_eq!(
        recs_vec[1],
        Recommendation {
            replicas: 3,
            timestamp: now
        },
        "last reusable slot"
    );
    assert_eq!(recs_vec.len(), 3);
    let mut legacy = vec![Recommendation {
        replicas: 1,
        timestamp: at_time(-10),
    }];
    normalize::stabilize_legacy(&mut legacy, 2, now, Duration::from_seconds(300));
    assert_eq!(legacy.len(), 2, "nothing expired: the list grows");
}

fn at_time(seconds: i64) -> Time {
    Time::parse_rfc3339(&at(seconds)).unwrap()
}

#[test]
fn scale_events_are_stored_only_after_a_successful_write_with_behavior() {
    // Without behavior the event memory is untouched.
    let mut v = proposing(10, 12);
    v["history"]["scaleUpEvents"] = evs(&[(1, -1000)]);
    let d = run(&v);
    assert!(d.rescale);
    let h = d.history.unwrap();
    assert_eq!(h.scale_up_events.len(), 1);
    assert!(!h.scale_up_events[0].outdated);
    // With behavior: stored after the write, replacing the last outdated event.
    v["spec"]["behavior"] = json!({});
    v["history"]["scaleUpEvents"] = evs(&[(1, -1000), (2, -900), (3, -5)]);
    let d = run(&v);
    let h = d.history.unwrap();
    let now = at_time(0);
    assert_eq!(
        h.scale_up_events[0],
        ScaleEvent {
            replica_change: 1,
            timestamp: at_time(-1000),
            outdated: true
        }
    );
    assert_eq!(
        h.scale_up_events[1],
        ScaleEvent {
            replica_change: 2,
            timestamp: now,
            outdated: false
        }
    );
    assert!(!h.scale_up_events[2].outdated);
    // A failed write stores no event.
    v["scale"]["updateError"] = json!("conflict");
    let d = run(&v);
    assert_eq!(d.history.unwrap().scale_up_events[1].replica_change, 2);
    assert!(!d.rescale);
}

#[test]
fn scale_event_outdating_uses_the_longest_period_of_that_direction() {
    let rules = normalize::BehaviorRules::with_defaults(
        &scaling::Behavior {
            scale_up: None,
            scale_down: Some(scaling::ScalingRules {
                policies: Some(vec![
                    scaling::ScalingPolicy {
                        kind: scaling::PolicyType::Pods,
                        value: 1,
                        period_seconds: 60,
                    },
                    scaling::ScalingPolicy {
                        kind: scaling::PolicyType::Percent,
                        value: 1,
                        period_seconds: 120,
                    },
                ]),
                ..Default::default()
            }),
        },
        &Config::default(),
    );
    let now = at_time(0);
    let mut up = vec![];
    let mut down = vec![
        ScaleEvent {
            replica_change: 1,
            timestamp: at_time(-121),
            outdated: false,
        },
        ScaleEvent {
            replica_change: 1,
            timestamp: at_time(-120),
            outdated: false,
        },
        ScaleEvent {
            replica_change: 1,
            timestamp: at_time(-90),
            outdated: true,
        },
    ];
    normalize::store_scale_event(&mut up, &mut down, &rules, 10, 7, now);
    assert!(up.is_empty());
    assert!(down[0].outdated, "older than the longest period");
    assert!(
        !down[1].outdated,
        "exactly at the cutoff is kept (strict Before)"
    );
    assert_eq!(
        down[2],
        ScaleEvent {
            replica_change: 3,
            timestamp: now,
            outdated: false
        },
        "sticky outdated slot reused"
    );
}
