//! `tidal convert` is lossless: every field of an `autoscaling/v2` HPA spec,
//! generated at random (every metric source, every target type, selectors,
//! both behavior directions with windows, policies, selectPolicy and
//! tolerance), survives HPA → AutoScaler → HPA, and the AutoScaler's spec JSON
//! is the HPA's.

use std::path::Path;

use k8s_openapi::api::autoscaling::v2::{
    ContainerResourceMetricSource, CrossVersionObjectReference, ExternalMetricSource,
    HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscaler, HorizontalPodAutoscalerBehavior,
    HorizontalPodAutoscalerSpec, MetricIdentifier, MetricSpec, MetricTarget, ObjectMetricSource,
    PodsMetricSource, ResourceMetricSource,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};
use pretty_assertions::assert_eq;
use proptest::prelude::*;
use serde_json::Value;
use tidal_crds::hpa::{Target, autoscaler_from_hpa, convert_document, hpa_from_autoscaler};

fn name() -> impl Strategy<Value = String> {
    "[a-z]([a-z0-9-]{0,11}[a-z0-9])?"
}

fn quantity() -> impl Strategy<Value = Quantity> {
    prop_oneof![
        "[1-9][0-9]{0,4}m",
        "[1-9][0-9]{0,3}(Ki|Mi|Gi)",
        "0\\.[0-9]{0,2}[1-9]",
        "[1-9][0-9]{0,5}",
    ]
    .prop_map(Quantity)
}

fn selector() -> impl Strategy<Value = Option<LabelSelector>> {
    let labels = proptest::option::of(proptest::collection::btree_map(name(), name(), 0..3));
    let expr = (
        name(),
        prop_oneof![Just("In"), Just("NotIn"), Just("Exists")],
        proptest::option::of(proptest::collection::vec(name(), 1..3)),
    )
        .prop_map(|(key, op, values)| LabelSelectorRequirement {
            key,
            operator: op.into(),
            values,
        });
    let exprs = proptest::option::of(proptest::collection::vec(expr, 0..3));
    proptest::option::of(
        (labels, exprs).prop_map(|(match_labels, match_expressions)| LabelSelector {
            match_labels,
            match_expressions,
        }),
    )
}

fn reference() -> impl Strategy<Value = CrossVersionObjectReference> {
    (
        proptest::option::of(prop_oneof![
            Just("apps/v1".to_string()),
            Just("v1".to_string())
        ]),
        prop_oneof![Just("Deployment"), Just("StatefulSet"), Just("Service")],
        name(),
    )
        .prop_map(|(api_version, kind, name)| CrossVersionObjectReference {
            api_version,
            kind: kind.into(),
            name,
        })
}

/// A scale target the API server admits: a group/version for every kind but
/// ReplicationController, which alone may name the core group or leave apiVersion out.
fn scale_target() -> impl Strategy<Value = CrossVersionObjectReference> {
    let grouped = (
        prop_oneof![Just("apps/v1"), Just("example.com/v1beta1")],
        prop_oneof![Just("Deployment"), Just("StatefulSet")],
    )
        .prop_map(|(v, k)| (Some(v.to_string()), k));
    let core =
        proptest::option::of(Just("v1".to_string())).prop_map(|v| (v, "ReplicationController"));
    (prop_oneof![grouped, core], name()).prop_map(|((api_version, kind), name)| {
        CrossVersionObjectReference {
            api_version,
            kind: kind.into(),
            name,
        }
    })
}

/// A target of one of `types`, with exactly the matching value set.
fn target(types: &'static [&'static str]) -> impl Strategy<Value = MetricTarget> {
    (proptest::sample::select(types), 1..200i32, quantity()).prop_map(|(t, u, q)| {
        let mut target = MetricTarget {
            type_: t.into(),
            ..MetricTarget::default()
        };
        match t {
            "Utilization" => target.average_utilization = Some(u),
            "Value" => target.value = Some(q),
            _ => target.average_value = Some(q),
        }
        target
    })
}

fn identifier() -> impl Strategy<Value = MetricIdentifier> {
    (name(), selector()).prop_map(|(name, selector)| MetricIdentifier { name, selector })
}

fn metric() -> impl Strategy<Value = MetricSpec> {
    const RESOURCE: &[&str] = &["Utilization", "AverageValue"];
    const VALUE: &[&str] = &["Value", "AverageValue"];
    prop_oneof![
        (prop_oneof![Just("cpu"), Just("memory")], target(RESOURCE)).prop_map(|(n, target)| {
            MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: n.into(),
                    target,
                }),
                ..MetricSpec::default()
            }
        }),
        (name(), target(RESOURCE)).prop_map(|(container, target)| MetricSpec {
            type_: "ContainerResource".into(),
            container_resource: Some(ContainerResourceMetricSource {
                name: "cpu".into(),
                container,
                target
            }),
            ..MetricSpec::default()
        }),
        (identifier(), target(&["AverageValue"])).prop_map(|(metric, target)| MetricSpec {
            type_: "Pods".into(),
            pods: Some(PodsMetricSource { metric, target }),
            ..MetricSpec::default()
        }),
        (reference(), identifier(), target(VALUE)).prop_map(
            |(described_object, metric, target)| {
                MetricSpec {
                    type_: "Object".into(),
                    object: Some(ObjectMetricSource {
                        described_object,
                        metric,
                        target,
                    }),
                    ..MetricSpec::default()
                }
            }
        ),
        (identifier(), target(VALUE)).prop_map(|(metric, target)| MetricSpec {
            type_: "External".into(),
            external: Some(ExternalMetricSource { metric, target }),
            ..MetricSpec::default()
        }),
    ]
}

fn rules() -> impl Strategy<Value = Option<HPAScalingRules>> {
    let policy = (
        prop_oneof![Just("Pods"), Just("Percent")],
        1..500i32,
        1..=1800i32,
    )
        .prop_map(|(t, value, period_seconds)| HPAScalingPolicy {
            type_: t.into(),
            value,
            period_seconds,
        });
    proptest::option::of(
        (
            proptest::option::of(0..=3600i32),
            proptest::option::of(prop_oneof![Just("Max"), Just("Min"), Just("Disabled")]),
            proptest::option::of(proptest::collection::vec(policy, 1..4)),
            proptest::option::of(prop_oneof!["0\\.[0-9]{1,2}", "[1-9][0-9]m"].prop_map(Quantity)),
        )
            .prop_map(|(window, select, policies, tolerance)| HPAScalingRules {
                stabilization_window_seconds: window,
                select_policy: select.map(Into::into),
                policies,
                tolerance,
            }),
    )
}

fn spec() -> impl Strategy<Value = HorizontalPodAutoscalerSpec> {
    (
        scale_target(),
        proptest::option::of(1..5i32),
        5..100i32,
        proptest::option::of(proptest::collection::vec(metric(), 0..4)),
        proptest::option::of((rules(), rules()).prop_map(|(scale_up, scale_down)| {
            HorizontalPodAutoscalerBehavior {
                scale_up,
                scale_down,
            }
        })),
    )
        .prop_map(
            |(scale_target_ref, min_replicas, max_replicas, metrics, behavior)| {
                HorizontalPodAutoscalerSpec {
                    scale_target_ref,
                    min_replicas,
                    max_replicas,
                    metrics,
                    behavior,
                }
            },
        )
}

fn hpa() -> impl Strategy<Value = HorizontalPodAutoscaler> {
    (
        name(),
        proptest::option::of(proptest::collection::btree_map(name(), name(), 0..3)),
        spec(),
    )
        .prop_map(|(n, labels, spec)| HorizontalPodAutoscaler {
            metadata: ObjectMeta {
                name: Some(n),
                namespace: Some("shop".into()),
                labels,
                ..ObjectMeta::default()
            },
            spec,
            status: None,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_hpa_field_survives_the_round_trip_through_an_autoscaler(h in hpa()) {
        let autoscaler = autoscaler_from_hpa(&h).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(
            serde_json::to_value(&autoscaler.spec).ok(),
            serde_json::to_value(&h.spec).ok(),
            "AutoScaler spec JSON differs from the HPA's"
        );
        let back = hpa_from_autoscaler(&autoscaler).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(back.warnings.is_empty());
        prop_assert_eq!(&back.object.spec, &h.spec);
        prop_assert_eq!(&back.object.metadata, &h.metadata);
    }

    #[test]
    fn documents_convert_both_ways_unchanged(h in hpa()) {
        let doc = serde_json::to_value(&h).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let there = convert_document(&doc, Target::AutoScaler)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{doc:#}")))?;
        prop_assert_eq!(&there.object["kind"], "AutoScaler");
        let back = convert_document(&there.object, Target::Hpa)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{:#}", there.object)))?;
        prop_assert!(back.warnings.is_empty());
        prop_assert_eq!(&back.object, &doc);
    }
}

#[test]
fn every_checked_in_example_converts_to_an_hpa_and_back_unchanged() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        let doc: Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        let hpa = convert_document(&doc, Target::Hpa)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let back = convert_document(&hpa.object, Target::AutoScaler)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // A quantity written as a number comes back as its decimal text, as our type reads it.
        let mut want = doc.clone();
        let spec: tidal_crds::AutoScalerSpec = serde_json::from_value(doc["spec"].clone())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        want["spec"] = serde_json::to_value(spec).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.object, want, "{}", path.display());
        seen += 1;
    }
    assert!(seen >= 8, "only {seen} examples");
}
