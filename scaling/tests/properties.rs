//! Property tests: no input makes the core panic; results stay within
//! [min, max]; a ratio within tolerance never changes the size; behavior rate
//! limits hold over simulated sequences of decisions (history out → history
//! in); stabilization never scales down below a recommendation in its window.
#![allow(clippy::unwrap_used, clippy::type_complexity)]

mod common;
use common::*;
use proptest::prelude::*;
use scaling::{
    AutoscalerSpec, AutoscalerStatus, Behavior, Condition, ConditionStatus, Config, Container,
    ContainerMetrics, DecisionInput, Duration, FeatureGates, History, LabelSelector,
    MetricIdentifier, MetricPolicy, MetricRef, MetricSpec, MetricTarget, MetricValue, MetricValues,
    ObjectMeta, ObjectReference, OtherAutoscaler, Pod, PodMetrics, PodPhase, PodReady, PolicyType,
    Quantity, Recommendation, Scale, ScaleEvent, ScaleRead, ScalingPolicy, ScalingRules,
    SelectPolicy, Selector, Time, WhenUnavailable, decide, format,
};
use serde_json::{Value, json};

const NAMES: &[&str] = &["a", "b", "c", "web-1", "web-2"];
const RESOURCES: &[&str] = &["cpu", "memory", "gpu"];
const SELECTORS: &[&str] = &[
    "",
    "app=web",
    "app in (web,api)",
    "!x",
    "n>3",
    "bad selector",
    "a=b,c!=d",
    "==",
    "app=web,",
];

fn now() -> Time {
    Time::parse_rfc3339(NOW).unwrap()
}

fn any_time() -> impl Strategy<Value = Time> {
    prop_oneof![
        Just(Time::ZERO),
        (-100_000i64..100_000).prop_map(|s| now() + Duration::from_seconds(s)),
        any::<i64>().prop_map(|n| Time::from_unix_nanos(i128::from(n))),
    ]
}

fn any_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0i64..1000).prop_map(Duration::from_seconds),
        any::<i64>().prop_map(|n| Duration::from_nanos(i128::from(n))),
    ]
}

fn any_milli() -> impl Strategy<Value = i64> {
    prop_oneof![
        -5i64..5_000,
        Just(0i64),
        Just(i64::MAX),
        Just(i64::MIN),
        any::<i64>()
    ]
}

fn any_i32() -> impl Strategy<Value = i32> {
    prop_oneof![-3i32..12, Just(i32::MAX), Just(i32::MIN), any::<i32>()]
}

fn name() -> impl Strategy<Value = String> {
    prop::sample::select(NAMES).prop_map(str::to_string)
}

fn resources() -> impl Strategy<Value = scaling::ResourceList> {
    prop::collection::vec(
        (
            prop::sample::select(RESOURCES).prop_map(str::to_string),
            any_milli(),
        ),
        0..3,
    )
    .prop_map(scaling::ResourceList::from)
}

fn container() -> BoxedStrategy<Container> {
    container_inner().boxed()
}

fn container_inner() -> impl Strategy<Value = Container> {
    (
        prop::sample::select(&["app", "side", ""][..]),
        resources(),
        any::<bool>(),
    )
        .prop_map(|(n, requests, restart_always)| Container {
            name: n.to_string(),
            requests,
            restart_always,
        })
}

fn pod() -> BoxedStrategy<Pod> {
    pod_inner().boxed()
}

fn pod_inner() -> impl Strategy<Value = Pod> {
    (
        name(),
        any::<bool>(),
        prop::sample::select(
            &[
                PodPhase::Running,
                PodPhase::Pending,
                PodPhase::Failed,
                PodPhase::Succeeded,
                PodPhase::Unknown,
            ][..],
        ),
        prop::option::of(any_time()),
        prop::option::of((
            prop::sample::select(
                &[
                    ConditionStatus::True,
                    ConditionStatus::False,
                    ConditionStatus::Unknown,
                ][..],
            ),
            any_time(),
        )),
        prop::collection::vec(container(), 0..3),
        prop::collection::vec(container(), 0..2),
        prop::option::of(resources()),
        prop::sample::select(&["web", "api", "other"][..]),
    )
        .prop_map(
            |(
                name,
                deleting,
                phase,
                start_time,
                ready,
                containers,
                init_containers,
                pod_requests,
                app,
            )| Pod {
                name,
                labels: [
                    ("app".to_string(), app.to_string()),
                    ("n".to_string(), "5".to_string()),
                ]
                .into_iter()
                .collect(),
                deleting,
                phase,
                start_time,
                ready: ready.map(|(status, last_transition_time)| PodReady {
                    status,
                    last_transition_time,
                }),
                containers,
                init_containers,
                pod_requests,
            },
        )
}

fn pod_metrics() -> BoxedStrategy<PodMetrics> {
    pod_metrics_inner().boxed()
}

fn pod_metrics_inner() -> impl Strategy<Value = PodMetrics> {
    (
        name(),
        any_time(),
        any_duration(),
        prop::collection::vec(
            (prop::sample::select(&["app", "side"][..]), resources()),
            0..3,
        ),
    )
        .prop_map(|(name, timestamp, window, cs)| PodMetrics {
            name,
            timestamp,
            window,
            containers: cs
                .into_iter()
                .map(|(n, usage)| ContainerMetrics {
                    name: n.to_string(),
                    usage,
                })
                .collect(),
        })
}

fn selector() -> impl Strategy<Value = Option<LabelSelector>> {
    prop_oneof![
        Just(None),
        Just(Some(LabelSelector::default())),
        Just(Some(LabelSelector {
            match_labels: [("q".to_string(), "jobs".to_string())]
                .into_iter()
                .collect(),
            match_expressions: vec![],
        })),
        Just(Some(LabelSelector {
            match_labels: Default::default(),
            match_expressions: vec![scaling::LabelSelectorRequirement {
                key: "k".into(),
                operator: "In".into(),
                values: vec![]
            }],
        })),
    ]
}

fn quantity() -> impl Strategy<Value = Quantity> {
    any_milli().prop_map(Quantity::from_milli)
}

fn target() -> BoxedStrategy<MetricTarget> {
    target_inner().boxed()
}

fn target_inner() -> impl Strategy<Value = MetricTarget> {
    (
        prop::sample::select(&["Utilization", "Value", "AverageValue", "Other"][..]),
        prop::option::of(quantity()),
        prop::option::of(quantity()),
        prop::option::of(any_i32()),
    )
        .prop_map(
            |(kind, value, average_value, average_utilization)| MetricTarget {
                kind: kind.to_string(),
                value,
                average_value,
                average_utilization,
            },
        )
}

fn identifier() -> impl Strategy<Value = MetricIdentifier> {
    (prop::sample::select(&["qps", "queue"][..]), selector()).prop_map(|(n, selector)| {
        MetricIdentifier {
            name: n.to_string(),
            selector,
        }
    })
}

fn metric_spec() -> BoxedStrategy<MetricSpec> {
    metric_spec_inner().boxed()
}

fn metric_spec_inner() -> impl Strategy<Value = MetricSpec> {
    prop_oneof![
        (prop::sample::select(RESOURCES), target()).prop_map(|(n, target)| MetricSpec::Resource {
            name: n.to_string(),
            target
        }),
        (
            prop::sample::select(RESOURCES),
            prop::sample::select(&["app", "side", "x"][..]),
            target()
        )
            .prop_map(|(n, c, target)| MetricSpec::ContainerResource {
                name: n.to_string(),
                container: c.to_string(),
                target
            }),
        (identifier(), quantity()).prop_map(|(metric, average_value)| MetricSpec::Pods {
            metric,
            average_value
        }),
        (
            identifier(),
            target(),
            prop::sample::select(&["Ingress", "Namespace"][..])
        )
            .prop_map(|(metric, target, kind)| MetricSpec::Object {
                described_object: ObjectReference {
                    api_version: "v1".into(),
                    kind: kind.into(),
                    name: "main".into()
                },
                metric,
                target,
            }),
        (identifier(), target())
            .prop_map(|(metric, target)| MetricSpec::External { metric, target }),
        Just(MetricSpec::Unknown("CheddarCheese".to_string())),
    ]
}

fn metric_values() -> BoxedStrategy<MetricValues> {
    metric_values_inner().boxed()
}

fn metric_values_inner() -> impl Strategy<Value = MetricValues> {
    (
        prop::sample::select(&["Pods", "Object", "External"][..]),
        prop::sample::select(&["qps", "queue"][..]),
        prop::option::of(selector()),
        prop::option::of(Just(("Ingress".to_string(), "main".to_string()))),
        prop::result::maybe_ok(
            prop::collection::vec(
                (
                    prop::option::of(name()),
                    any_milli(),
                    any_time(),
                    any_duration(),
                ),
                0..4,
            ),
            Just("error".to_string()),
        ),
    )
        .prop_map(
            |(kind, n, selector, described_object, answer)| MetricValues {
                kind: kind.to_string(),
                metric_name: n.to_string(),
                selector,
                described_object,
                answer: answer.map(|items| {
                    items
                        .into_iter()
                        .map(|(pod_name, value, timestamp, window)| MetricValue {
                            pod_name,
                            value,
                            timestamp,
                            window,
                        })
                        .collect()
                }),
            },
        )
}

fn rules() -> BoxedStrategy<ScalingRules> {
    rules_inner().boxed()
}

fn rules_inner() -> impl Strategy<Value = ScalingRules> {
    (
        prop::option::of(any_i32()),
        prop::option::of(prop::sample::select(
            &[SelectPolicy::Max, SelectPolicy::Min, SelectPolicy::Disabled][..],
        )),
        prop::option::of(prop::collection::vec(
            (
                prop::sample::select(&[PolicyType::Pods, PolicyType::Percent][..]),
                any_i32(),
                any_i32(),
            )
                .prop_map(|(kind, value, period_seconds)| ScalingPolicy {
                    kind,
                    value,
                    period_seconds,
                }),
            0..3,
        )),
        prop::option::of(quantity()),
    )
        .prop_map(
            |(stabilization_window_seconds, select_policy, policies, tolerance)| ScalingRules {
                stabilization_window_seconds,
                select_policy,
                policies,
                tolerance,
            },
        )
}

fn events() -> impl Strategy<Value = Vec<ScaleEvent>> {
    prop::collection::vec(
        (any_i32(), any_time(), any::<bool>()).prop_map(|(replica_change, timestamp, outdated)| {
            ScaleEvent {
                replica_change,
                timestamp,
                outdated,
            }
        }),
        0..4,
    )
}

fn history() -> BoxedStrategy<Option<History>> {
    history_inner().boxed()
}

fn history_inner() -> impl Strategy<Value = Option<History>> {
    prop::option::of((
        prop::option::of(prop::collection::vec(
            (any_i32(), any_time()).prop_map(|(replicas, timestamp)| Recommendation {
                replicas,
                timestamp,
            }),
            0..4,
        )),
        events(),
        events(),
    ))
    .prop_map(|h| {
        h.map(
            |(recommendations, scale_up_events, scale_down_events)| History {
                recommendations,
                scale_up_events,
                scale_down_events,
            },
        )
    })
}

fn decision_input() -> BoxedStrategy<DecisionInput> {
    decision_input_inner().boxed()
}

fn decision_input_inner() -> impl Strategy<Value = DecisionInput> {
    let config = (
        prop_oneof![Just(0.1f64), Just(0.0), -1.0f64..3.0, Just(f64::MAX)],
        any_duration(),
        any_duration(),
        any_duration(),
        prop_oneof![Just(2.0f64), -10.0f64..10.0],
        prop_oneof![Just(4.0f64), -10.0f64..10.0],
        any::<(bool, bool, bool)>(),
    )
        .prop_map(
            |(tolerance, cpu, delay, down, factor, minimum, (t, z, p))| Config {
                tolerance,
                cpu_initialization_period: cpu,
                initial_readiness_delay: delay,
                downscale_stabilization: down,
                legacy_scale_up_limit_factor: factor,
                legacy_scale_up_limit_minimum: minimum,
                feature_gates: FeatureGates {
                    configurable_tolerance: t,
                    scale_to_zero: z,
                    pod_level_resources: p,
                },
            },
        );
    let spec = (
        prop::option::of(any_i32()),
        any_i32(),
        prop::collection::vec(metric_spec(), 0..3),
        prop::option::of((prop::option::of(rules()), prop::option::of(rules()))),
        prop::sample::select(&["apps/v1", "v1", "a/b/c", ""][..]),
    )
        .prop_map(
            |(min_replicas, max_replicas, metrics, behavior, api)| AutoscalerSpec {
                scale_target_ref: ObjectReference {
                    api_version: api.to_string(),
                    kind: "Deployment".into(),
                    name: "web".into(),
                },
                min_replicas,
                max_replicas,
                metrics,
                behavior: behavior.map(|(scale_up, scale_down)| Behavior {
                    scale_up,
                    scale_down,
                }),
            },
        )
        .boxed();
    let conditions = prop::collection::vec(
        (
            prop::sample::select(
                &[
                    "AbleToScale",
                    "ScalingActive",
                    "ScalingLimited",
                    "ScaledToZero",
                    "Other",
                ][..],
            ),
            prop::sample::select(&["True", "False", "Unknown", ""][..]),
        )
            .prop_map(|(k, s)| Condition {
                kind: k.to_string(),
                status: s.to_string(),
                reason: String::new(),
                message: String::new(),
                last_transition_time: None,
            }),
        0..4,
    );
    let scale = prop_oneof![
        (any_i32(), any_i32(), prop::sample::select(SELECTORS)).prop_map(
            |(spec_replicas, status_replicas, s)| ScaleRead::Read(Scale {
                spec_replicas,
                status_replicas,
                selector: s.to_string(),
            })
        ),
        Just(ScaleRead::Failed("not found".to_string())),
    ];
    (
        (
            any_time(),
            config,
            spec,
            (any_i32(), any_i32(), conditions),
            scale,
        ),
        (
            prop::collection::vec(pod(), 0..6),
            prop::result::maybe_ok(
                prop::collection::vec(pod_metrics(), 0..6),
                Just("down".to_string()),
            ),
            prop::collection::vec(metric_values(), 0..4),
            prop::collection::vec(
                (
                    prop::sample::select(&["other", "web"][..]),
                    prop::sample::select(SELECTORS),
                )
                    .prop_map(|(n, s)| OtherAutoscaler {
                        name: n.to_string(),
                        namespace: None,
                        selector: s.to_string(),
                    }),
                0..2,
            ),
            history(),
        ),
    )
        .prop_map(
            |(
                (now, config, spec, (desired, current, conditions), scale),
                (pods, pod_metrics, metric_values, others, history),
            )| DecisionInput {
                now,
                config,
                metadata: ObjectMeta {
                    name: "web".into(),
                    namespace: "shop".into(),
                },
                spec,
                status: AutoscalerStatus {
                    desired_replicas: desired,
                    current_replicas: current,
                    conditions,
                },
                scale,
                pods,
                pod_metrics,
                metric_values,
                other_autoscalers: others,
                history,
                metric_policies: Vec::new(),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_input_makes_the_decision_panic(input in decision_input(), fail_write in any::<bool>()) {
        let d = decide(&input, |_| if fail_write { Err("conflict".to_string()) } else { Ok(()) });
        let _ = format::render_output(&d);
    }

    #[test]
    fn parsers_never_panic(s in ".{0,40}", t in "[0-9eEinumkKMGTP.+-]{0,24}") {
        let _ = Quantity::parse(&s);
        let _ = Quantity::parse(&t);
        let _ = Time::parse_rfc3339(&s);
        let _ = Duration::parse_go(&s);
        let _ = Duration::parse_go(&t);
        let _ = Selector::parse(&s);
    }

    #[test]
    fn selectors_round_trip_through_their_canonical_form(s in "[a-z!=<>(), 0-9]{0,20}") {
        if let Ok(sel) = Selector::parse(&s) {
            let again = Selector::parse(&sel.to_string()).unwrap();
            prop_assert_eq!(again, sel);
        }
    }
}

/// A valid calc input with one field replaced by an arbitrary JSON value.
fn mutated_input() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        Just(json!({})),
        Just(json!([])),
        Just(json!("1e3")),
        Just(json!("2026-03-01T10:00:00Z")),
    ];
    let paths: &[&[&str]] = &[
        &["now"],
        &["config", "tolerance"],
        &["config", "featureGates"],
        &["spec", "maxReplicas"],
        &["spec", "minReplicas"],
        &["spec", "metrics"],
        &["spec", "behavior"],
        &["status"],
        &["scale", "specReplicas"],
        &["scale", "selector"],
        &["pods"],
        &["podMetrics"],
        &["metricValues"],
        &["history"],
        &["history", "recommendations"],
        &["otherAutoScalers"],
        &["scale", "statusReplicas"],
        &["spec", "scaleTargetRef"],
    ];
    (prop::sample::select(paths), leaf).prop_map(|(path, value)| {
        let mut v = input(
            3,
            json!([cpu_utilization(50), external_metric("AverageValue", "1")]),
        );
        pods_with_usage(&mut v, 3, &[100, 200, 300]);
        v["spec"]["behavior"] =
            json!({"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}});
        let mut cursor = &mut v;
        for (i, key) in path.iter().enumerate() {
            if i + 1 == path.len() {
                cursor[*key] = value.clone();
            } else {
                cursor = &mut cursor[*key];
            }
        }
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn malformed_calc_documents_are_errors_not_panics(v in mutated_input()) {
        if let Ok(calc) = format::parse_input(&v) {
            let d = decide(&calc.input, |_| Ok(()));
            let _ = format::render_output(&d);
        }
    }
}

/// A decision whose External AverageValue metric proposes exactly `proposal`.
fn proposing(current: i32, proposal: i64, min: i32, max: i32) -> Value {
    let mut v = input(current, json!([external_metric("AverageValue", "1")]));
    v["config"]["tolerance"] = json!(0.0);
    v["spec"]["minReplicas"] = json!(min);
    v["spec"]["maxReplicas"] = json!(max);
    v["metricValues"] = json!([{"type": "External", "metric": {"name": "queue"}, "items": [{"value": proposal.to_string()}]}]);
    v
}

fn policy_json(p: &(bool, i32, i32)) -> Value {
    json!({"type": if p.0 { "Pods" } else { "Percent" }, "value": p.1, "periodSeconds": p.2})
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn results_stay_within_min_and_max(
        min in 1i32..20, span in 0i32..50, offset in 0i32..50, proposal in 0i64..200,
        behavior in any::<bool>(), window in 0i32..600, history_len in 0usize..4, outside in 0i32..4,
    ) {
        let max = min + span;
        // Mostly inside [min, max]; sometimes below or above it, where the
        // short-circuit itself must land on the bound.
        let current = match outside {
            0 => (min - 1 - offset % min).max(1),
            1 => max + 1 + offset,
            _ => min + offset % (span + 1),
        };
        prop_assume!(current >= 1);
        let mut v = proposing(current, proposal, min, max);
        if behavior {
            v["spec"]["behavior"] = json!({"scaleDown": {"stabilizationWindowSeconds": window}});
        }
        let recs: Vec<Value> = (0..history_len).map(|i| json!({"replicas": (i as i32) * 7, "timestamp": at(-(i as i64) * 100)})).collect();
        v["history"]["recommendations"] = Value::Array(recs);
        let d = run(&v);
        let size = if d.rescale { d.desired_replicas } else { d.current_replicas };
        prop_assert!(min <= size && size <= max, "{size} outside [{min}, {max}]");
    }

    #[test]
    fn a_ratio_within_tolerance_never_changes_the_size(
        current in 1i32..50, tolerance_pct in 0u32..50, num in 0u32..1000, target in 1i64..100_000,
    ) {
        // usage = target x r with r in [1 - t, 1 + t]; Object Value and External AverageValue.
        let t = f64::from(tolerance_pct) / 100.0;
        let r = (1.0 - t) + 2.0 * t * f64::from(num) / 1000.0;
        let usage = ((target as f64) * r).round() as i64;
        let ratio = usage as f64 / target as f64;
        prop_assume!((1.0 - t) <= ratio && ratio <= (1.0 + t));
        let mut v = input(current, json!([object_metric("Value", &format!("{target}m"))]));
        v["config"]["tolerance"] = json!(t);
        v["metricValues"] = json!([{"type": "Object", "metric": {"name": "hits"}, "items": [{"value": format!("{usage}m")}]}]);
        let d = run(&v);
        prop_assert_eq!(proposal(&d, 0), current);
        prop_assert!(!d.rescale);
        // Per pod: the total against target x replicas.
        let mut e = input(current, json!([external_metric("AverageValue", &format!("{target}m"))]));
        e["config"]["tolerance"] = json!(t);
        let total = i64::from(current) * usage;
        e["metricValues"] = json!([{"type": "External", "metric": {"name": "queue"}, "items": [{"value": format!("{total}m")}]}]);
        let per_pod_ratio = total as f64 / (target as f64 * f64::from(current));
        prop_assume!((1.0 - t) <= per_pod_ratio && per_pod_ratio <= (1.0 + t));
        prop_assert_eq!(proposal(&run(&e), 0), current);
    }

    #[test]
    fn utilization_within_tolerance_never_changes_the_size(
        pods in 1usize..8, target in 10i32..200, delta in -10i32..=10,
    ) {
        // Every pod requests 1 CPU and uses the same amount: utilization = target + delta%.
        let util = target + delta * target / 100;
        prop_assume!(util >= 0);
        let ratio = f64::from(util) / f64::from(target);
        prop_assume!((0.9..=1.1).contains(&ratio));
        let mut v = input(pods as i32, json!([cpu_utilization(target)]));
        let usages: Vec<i64> = vec![i64::from(util) * 10; pods];
        pods_with_usage(&mut v, pods, &usages);
        let d = run(&v);
        prop_assert_eq!(proposal(&d, 0), pods as i32);
    }
}

/// Sum of applied changes (signed) with timestamps in (t - period, t].
fn net_change(applied: &[(i64, i32)], t: i64, period: i32) -> i64 {
    applied
        .iter()
        .filter(|(at, _)| *at > t - i64::from(period) && *at <= t)
        .map(|(_, c)| i64::from(*c))
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn behavior_rate_limits_hold_over_a_sequence_of_decisions(
        up in prop::collection::vec((any::<bool>(), 1i32..20, 1i32..300), 1..3),
        down in prop::collection::vec((any::<bool>(), 1i32..60, 1i32..300), 1..3),
        steps in prop::collection::vec((1i64..120, 0i64..120), 1..25),
        start in 5i32..60,
    ) {
        // selectPolicy Min: every policy must hold.
        let behavior = json!({
            "scaleUp": {"selectPolicy": "Min", "policies": up.iter().map(policy_json).collect::<Vec<_>>()},
            "scaleDown": {"selectPolicy": "Min", "stabilizationWindowSeconds": 0, "policies": down.iter().map(policy_json).collect::<Vec<_>>()}
        });
        let mut current = start;
        let mut history = json!({"recommendations": []});
        let mut clock = 0i64;
        let mut applied: Vec<(i64, i32)> = Vec::new();
        for (advance, proposal) in steps {
            clock += advance;
            let mut v = proposing(current, proposal, 1, 200);
            v["now"] = json!(at(clock));
            v["spec"]["behavior"] = behavior.clone();
            v["history"] = history.clone();
            let d = run(&v);
            if d.rescale {
                applied.push((clock, d.desired_replicas - current));
                let after = i64::from(d.desired_replicas);
                if d.desired_replicas > current {
                    for (pods, value, period) in &up {
                        let net = net_change(&applied, clock, *period);
                        if *pods {
                            prop_assert!(net <= i64::from(*value), "Pods {value}/{period}s: +{net} at t={clock}");
                        } else {
                            let start = (after - net) as f64;
                            let limit = (start * (1.0 + f64::from(*value) / 100.0)).ceil() as i64;
                            prop_assert!(after <= limit.max(i64::from(current)), "Percent {value}/{period}s: {after} > {limit}");
                        }
                    }
                } else {
                    for (pods, value, period) in &down {
                        let net = -net_change(&applied, clock, *period);
                        if *pods {
                            prop_assert!(net <= i64::from(*value), "Pods -{value}/{period}s: -{net} at t={clock}");
                        } else {
                            let start = (after + net) as f64;
                            let limit = (start * (1.0 - f64::from(*value) / 100.0)) as i64;
                            prop_assert!(after >= limit, "Percent -{value}/{period}s: {after} < {limit}");
                        }
                    }
                }
                current = d.desired_replicas;
            }
            history = format::render_output(&d)["history"].clone();
        }
    }

    #[test]
    fn stabilization_never_scales_down_below_a_recommendation_in_the_window(
        window in 0i32..400,
        legacy in any::<bool>(),
        steps in prop::collection::vec((1i64..90, 0i64..40), 1..25),
        start in 1i32..40,
    ) {
        let mut current = start;
        let mut history = Value::Null;
        let mut clock = 0i64;
        // Every unstabilized recommendation, with its time (the seed included).
        let mut proposals: Vec<(i64, i64)> = vec![(0, i64::from(start))];
        for (i, (advance, proposal)) in steps.into_iter().enumerate() {
            if i > 0 {
                clock += advance;
            }
            let mut v = proposing(current, proposal, 1, 1000);
            v["now"] = json!(at(clock));
            if legacy {
                v["config"]["downscaleStabilizationSeconds"] = json!(window);
            } else {
                v["spec"]["behavior"] = json!({
                    "scaleUp": {"policies": [{"type": "Pods", "value": 100000, "periodSeconds": 15}]},
                    "scaleDown": {"stabilizationWindowSeconds": window, "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}
                });
            }
            if history.is_null() {
                v.as_object_mut().unwrap().remove("history");
            } else {
                v["history"] = history.clone();
            }
            let d = run(&v);
            proposals.push((clock, proposal));
            if d.rescale && d.desired_replicas < current {
                let after = i64::from(d.desired_replicas);
                for (t, p) in &proposals {
                    // Legacy counts entries at the cutoff; behavior only strictly after it.
                    let inside = if legacy { *t >= clock - i64::from(window) } else { *t > clock - i64::from(window) };
                    if inside {
                        prop_assert!(*p <= after, "scaled down to {after} with {p} recommended at t={t} (now {clock}, window {window})");
                    }
                }
            }
            if d.rescale {
                current = d.desired_replicas;
            }
            history = format::render_output(&d)["history"].clone();
        }
    }
}

/// A policy for every metric of `spec` (the CPU default when it lists none), each with one of
/// `actions` (cycled) and the maximum age `max_age`.
fn policies_for(
    spec: &AutoscalerSpec,
    actions: &[WhenUnavailable],
    max_age: Option<i64>,
) -> Vec<MetricPolicy> {
    let default = [MetricSpec::default_cpu()];
    let metrics = if spec.metrics.is_empty() {
        &default[..]
    } else {
        &spec.metrics[..]
    };
    let mut out: Vec<MetricPolicy> = Vec::new();
    for (i, m) in metrics.iter().enumerate() {
        let Some((name, container)) = m.identity() else {
            continue;
        };
        let metric = MetricRef {
            kind: m.type_name().to_string(),
            name: name.to_string(),
            container: container.map(str::to_string),
        };
        if out.iter().any(|p| p.metric == metric) {
            continue;
        }
        out.push(MetricPolicy {
            metric,
            max_sample_age: max_age.map(Duration::from_seconds),
            when_unavailable: actions[i % actions.len()],
        });
    }
    out
}

fn any_action() -> impl Strategy<Value = WhenUnavailable> {
    prop_oneof![
        Just(WhenUnavailable::Upstream),
        Just(WhenUnavailable::Hold),
        Just(WhenUnavailable::Ignore),
        Just(WhenUnavailable::ScaleUpOnly),
        (0..20i32).prop_map(WhenUnavailable::Fixed),
    ]
}

/// The decision without what only the policy adds: its condition, events and trace entries.
fn without_policy_reports(mut d: scaling::Decision) -> scaling::Decision {
    d.conditions
        .retain(|c| c.kind != scaling::conditions::METRIC_POLICY);
    d.events.retain(|e| {
        e.reason != scaling::conditions::REASON_METRIC_MISSING
            && e.reason != scaling::conditions::REASON_METRIC_STALE
    });
    for m in &mut d.trace.metrics {
        m.policy = None;
    }
    d
}

fn unavailable(d: &scaling::Decision) -> bool {
    d.trace
        .metrics
        .iter()
        .any(|m| m.policy.as_ref().is_some_and(|p| p.availability != "Fresh"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The default stays upstream's: a policy changes a decision only while its metric is
    /// stale or missing, and `Upstream` never does.
    #[test]
    fn policies_change_nothing_while_data_is_fresh_and_upstream_never_does(
        input in decision_input(),
        actions in prop::collection::vec(any_action(), 1..4),
        max_age in prop::option::of(1..600i64),
        upstream in any::<bool>(),
    ) {
        let plain = decide(&input, |_| Ok(()));
        let mut with = input.clone();
        let actions = if upstream { vec![WhenUnavailable::Upstream] } else { actions };
        with.metric_policies = policies_for(&with.spec, &actions, max_age);
        let d = decide(&with, |_| Ok(()));
        if upstream || !unavailable(&d) {
            prop_assert_eq!(without_policy_reports(d), plain);
        }
    }

    /// `Hold` keeps the size: while a held metric is stale or missing nothing is written
    /// (min and max are enforced before the metrics, as upstream does).
    #[test]
    fn hold_never_writes_while_its_metric_is_unavailable(
        input in decision_input(),
        max_age in prop::option::of(1..600i64),
    ) {
        let mut with = input;
        with.metric_policies = policies_for(&with.spec, &[WhenUnavailable::Hold], max_age);
        let d = decide(&with, |_| Ok(()));
        if unavailable(&d) {
            prop_assert!(!d.rescale, "held, yet wrote {}", d.desired_replicas);
            prop_assert_eq!(d.desired_replicas, d.current_replicas);
        }
    }

    /// `ScaleUpOnly` on every metric: while any is unavailable and the rest propose less, the
    /// decision never goes below the current size.
    #[test]
    fn scale_up_only_never_scales_down_on_unavailable_data(
        input in decision_input(),
        max_age in prop::option::of(1..600i64),
    ) {
        // A legacy scale-up factor below 1 caps even an unchanged size below the current one
        // (upstream does the same for any proposal); that is not the policy's doing.
        prop_assume!(input.config.legacy_scale_up_limit_factor >= 1.0);
        let mut with = input;
        with.metric_policies = policies_for(&with.spec, &[WhenUnavailable::ScaleUpOnly], max_age);
        let d = decide(&with, |_| Ok(()));
        let all_unavailable = !d.trace.metrics.is_empty()
            && d.trace.metrics.iter().all(|m| m.policy.as_ref().is_some_and(|p| p.availability != "Fresh"));
        // Likewise a legacy scale-up limit below the current size, which a negative size read
        // gives even at a factor of 1 or more (seen: -1 capped to max(2 x -1, -7.96) = -2).
        let cap = scaling::normalize::legacy_scale_up_limit(d.current_replicas, &with.config);
        if all_unavailable && d.rescale && cap >= d.current_replicas {
            let min = with.spec.min_replicas.unwrap_or(1);
            prop_assert!(
                d.desired_replicas >= d.current_replicas || d.current_replicas > with.spec.max_replicas,
                "{} -> {} (min {min})", d.current_replicas, d.desired_replicas
            );
        }
    }
}
