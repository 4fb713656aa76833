//! The AutoScaler spec as the decision core reads it: one typed conversion from the CRD's
//! spec to `scaling::AutoscalerSpec`, used by the reconciler and by `explain --now`.
//!
//! It reads exactly what `tidal calc`'s reader (`scaling::format::parse_spec`) reads from the
//! same spec as JSON, with the same checks and the same field paths in its errors: the CRD's
//! schema and CEL rules already reject most bad values, and what is left (a quantity the core
//! cannot read, an empty policy list written around the schema) fails here naming the field.

use scaling::{
    Behavior, LabelSelector, LabelSelectorRequirement, MetricIdentifier, MetricSpec, MetricTarget,
    ObjectReference, PolicyType, Quantity, ScalingPolicy, ScalingRules, SelectPolicy,
};
use tidal_crds as crd;

/// A field path (`spec.metrics[0].resource`), grown one step at a time.
#[derive(Clone)]
struct Path(String);

impl Path {
    fn field(&self, key: &str) -> Path {
        Path(format!("{}.{key}", self.0))
    }

    fn index(&self, i: usize) -> Path {
        Path(format!("{}[{i}]", self.0))
    }

    fn error(&self, message: impl Into<String>) -> scaling::Error {
        scaling::Error::Input {
            field: self.0.clone(),
            message: message.into(),
        }
    }

    /// `parse_spec`'s error for an absent required block.
    fn missing(&self, what: &str) -> scaling::Error {
        self.error(format!("required {what} is missing"))
    }
}

/// The CRD spec → the core's spec. Errors name the field (`spec.metrics[0].resource.target.value`).
pub fn autoscaler_spec(
    spec: &crd::AutoScalerSpec,
) -> Result<scaling::AutoscalerSpec, scaling::Error> {
    let path = Path("spec".to_string());
    let metrics_path = path.field("metrics");
    let metrics = spec
        .metrics
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, m)| metric(m, &metrics_path.index(i)))
        .collect::<Result<_, _>>()?;
    let behavior = spec
        .behavior
        .as_ref()
        .map(|b| behavior(b, &path.field("behavior")))
        .transpose()?;
    Ok(scaling::AutoscalerSpec {
        scale_target_ref: reference(&spec.scale_target_ref),
        min_replicas: spec.min_replicas,
        max_replicas: spec.max_replicas,
        metrics,
        behavior,
    })
}

/// `spec.tidal.metricPolicies` → the core's policies, checked as `tidal calc`'s reader checks
/// them (`scaling::format::parse_metric_policies`): each entry on its own, then against the
/// spec's metrics (`core`, as [`autoscaler_spec`] read it). Errors name the entry's field.
pub fn metric_policies(
    spec: &crd::AutoScalerSpec,
    core: &scaling::AutoscalerSpec,
) -> Result<Vec<scaling::MetricPolicy>, scaling::Error> {
    let list = Path("spec".to_string())
        .field("tidal")
        .field("metricPolicies");
    let entries = spec
        .tidal
        .as_ref()
        .and_then(|t| t.metric_policies.as_deref())
        .unwrap_or_default();
    let policies = entries
        .iter()
        .enumerate()
        .map(|(i, p)| {
            scaling::MetricPolicyFields {
                kind: p.kind.as_str(),
                name: &p.name,
                container: p.container.as_deref(),
                max_sample_age_seconds: p.max_sample_age_seconds,
                when_unavailable: p.when_unavailable.map(crd::WhenUnavailable::as_str),
                fixed_replicas: p.fixed_replicas,
            }
            .check()
            .map_err(|(field, message)| list.index(i).field(field).error(message))
        })
        .collect::<Result<Vec<_>, _>>()?;
    scaling::check_metric_policies(&core.metrics, &policies)
        .map_err(|(i, message)| list.index(i).error(message))?;
    Ok(policies)
}

fn reference(r: &crd::CrossVersionObjectReference) -> ObjectReference {
    ObjectReference {
        api_version: r.api_version.clone().unwrap_or_default(),
        kind: r.kind.clone(),
        name: r.name.clone(),
    }
}

/// The source block a metric's `type` names, or `parse_spec`'s error when it is absent.
fn block<'a, T>(block: Option<&'a T>, path: &Path, key: &str) -> Result<&'a T, scaling::Error> {
    block.ok_or_else(|| path.field(key).missing("object"))
}

fn metric(m: &crd::MetricSpec, path: &Path) -> Result<MetricSpec, scaling::Error> {
    Ok(match m.type_.as_str() {
        "Resource" => {
            let r = block(m.resource.as_ref(), path, "resource")?;
            MetricSpec::Resource {
                name: r.name.clone(),
                target: target(&r.target, &path.field("resource").field("target"))?,
            }
        }
        "ContainerResource" => {
            let r = block(m.container_resource.as_ref(), path, "containerResource")?;
            MetricSpec::ContainerResource {
                name: r.name.clone(),
                container: r.container.clone(),
                target: target(&r.target, &path.field("containerResource").field("target"))?,
            }
        }
        "Pods" => {
            let p = block(m.pods.as_ref(), path, "pods")?;
            let value_path = path.field("pods").field("target").field("averageValue");
            let average_value = positive_quantity(p.target.average_value.as_ref(), &value_path)?
                .ok_or_else(|| value_path.missing("quantity"))?;
            MetricSpec::Pods {
                metric: identifier(&p.metric),
                average_value,
            }
        }
        "Object" => {
            let o = block(m.object.as_ref(), path, "object")?;
            MetricSpec::Object {
                described_object: reference(&o.described_object),
                metric: identifier(&o.metric),
                target: target(&o.target, &path.field("object").field("target"))?,
            }
        }
        "External" => {
            let e = block(m.external.as_ref(), path, "external")?;
            MetricSpec::External {
                metric: identifier(&e.metric),
                target: target(&e.target, &path.field("external").field("target"))?,
            }
        }
        other => MetricSpec::Unknown(other.to_string()),
    })
}

fn target(t: &crd::MetricTarget, path: &Path) -> Result<MetricTarget, scaling::Error> {
    if let Some(u) = t.average_utilization
        && u <= 0
    {
        return Err(path
            .field("averageUtilization")
            .error("a target must be positive"));
    }
    Ok(MetricTarget {
        kind: t.type_.clone(),
        value: positive_quantity(t.value.as_ref(), &path.field("value"))?,
        average_value: positive_quantity(t.average_value.as_ref(), &path.field("averageValue"))?,
        average_utilization: t.average_utilization,
    })
}

fn quantity(
    q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    path: &Path,
) -> Result<Option<Quantity>, scaling::Error> {
    q.map(|q| Quantity::parse(&q.0).map_err(|e| path.error(e.to_string())))
        .transpose()
}

fn positive_quantity(
    q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    path: &Path,
) -> Result<Option<Quantity>, scaling::Error> {
    let q = quantity(q, path)?;
    if let Some(q) = q
        && q.milli_value() <= 0
    {
        return Err(path.error("a target must be positive"));
    }
    Ok(q)
}

fn identifier(m: &crd::MetricIdentifier) -> MetricIdentifier {
    MetricIdentifier {
        name: m.name.clone(),
        selector: m.selector.as_ref().map(label_selector),
    }
}

/// A `metav1.LabelSelector` as the core's; a missing `values` list is an empty one, as in Go.
pub fn label_selector(
    s: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
) -> LabelSelector {
    LabelSelector {
        match_labels: s.match_labels.clone().unwrap_or_default(),
        match_expressions: s
            .match_expressions
            .iter()
            .flatten()
            .map(|e| LabelSelectorRequirement {
                key: e.key.clone(),
                operator: e.operator.clone(),
                values: e.values.clone().unwrap_or_default(),
            })
            .collect(),
    }
}

/// The `metricLabelSelector` sent to the custom and external metrics APIs: Go's
/// `metav1.LabelSelectorAsSelector(selector).String()`. `None` (`labels.Nothing()`) and an
/// empty selector (`labels.Everything()`) both print as `""`. An invalid selector's error is
/// upstream's text, which becomes the metric's error.
pub fn metric_selector(selector: Option<&LabelSelector>) -> Result<String, String> {
    selector.map_or(Ok(String::new()), |s| {
        s.as_selector()
            .map(|s| s.to_string())
            .map_err(|e| e.to_string())
    })
}

fn behavior(b: &crd::Behavior, path: &Path) -> Result<Behavior, scaling::Error> {
    Ok(Behavior {
        scale_up: b
            .scale_up
            .as_ref()
            .map(|r| rules(r, &path.field("scaleUp")))
            .transpose()?,
        scale_down: b
            .scale_down
            .as_ref()
            .map(|r| rules(r, &path.field("scaleDown")))
            .transpose()?,
    })
}

fn rules(r: &crd::ScalingRules, path: &Path) -> Result<ScalingRules, scaling::Error> {
    let select_policy = match r.select_policy.as_deref() {
        None => None,
        Some("Max") => Some(SelectPolicy::Max),
        Some("Min") => Some(SelectPolicy::Min),
        Some("Disabled") => Some(SelectPolicy::Disabled),
        Some(other) => {
            return Err(path
                .field("selectPolicy")
                .error(format!("{other:?} is not one of Max, Min, Disabled")));
        }
    };
    let policies_path = path.field("policies");
    let policies = match r.policies.as_deref() {
        None => None,
        Some([]) => {
            return Err(policies_path.error("must not be empty (omit it for the defaults)"));
        }
        Some(list) => Some(
            list.iter()
                .enumerate()
                .map(|(i, p)| policy(p, &policies_path.index(i)))
                .collect::<Result<_, _>>()?,
        ),
    };
    Ok(ScalingRules {
        stabilization_window_seconds: r.stabilization_window_seconds,
        select_policy,
        policies,
        tolerance: quantity(r.tolerance.as_ref(), &path.field("tolerance"))?,
    })
}

fn policy(p: &crd::ScalingPolicy, path: &Path) -> Result<ScalingPolicy, scaling::Error> {
    let kind = match p.type_.as_str() {
        "Pods" => PolicyType::Pods,
        "Percent" => PolicyType::Percent,
        other => {
            return Err(path
                .field("type")
                .error(format!("{other:?} is not one of Pods, Percent")));
        }
    };
    Ok(ScalingPolicy {
        kind,
        value: p.value,
        period_seconds: p.period_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
    use proptest::prelude::*;

    /// What `tidal calc`'s reader makes of the same spec, as JSON.
    fn through_json(spec: &crd::AutoScalerSpec) -> Result<scaling::AutoscalerSpec, scaling::Error> {
        scaling::format::parse_spec(&serde_json::to_value(spec).expect("spec serializes"))
    }

    fn examples(dir: &str) -> Vec<(String, crd::AutoScaler)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("examples dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read_to_string(&path).expect("read example");
                // Invalid examples that are not even AutoScalers (wrong JSON types) are the
                // API server's to reject; only typed ones can reach the reconciler.
                if let Ok(obj) = serde_yaml::from_str::<crd::AutoScaler>(&text) {
                    out.push((path.display().to_string(), obj));
                }
            }
        }
        out
    }

    #[test]
    fn every_example_converts_as_the_calc_reader_reads_it() {
        let valid = examples("../crds/examples");
        assert!(valid.len() >= 8, "examples found: {}", valid.len());
        for (name, obj) in &valid {
            let typed = autoscaler_spec(&obj.spec);
            assert!(typed.is_ok(), "{name}: {typed:?}");
            assert_eq!(typed, through_json(&obj.spec), "{name}");
        }
        let invalid = examples("../crds/examples/invalid");
        assert!(!invalid.is_empty());
        for (name, obj) in &invalid {
            assert_eq!(
                autoscaler_spec(&obj.spec),
                through_json(&obj.spec),
                "{name}"
            );
        }
    }

    fn policies_through_json(
        spec: &crd::AutoScalerSpec,
    ) -> Result<Vec<scaling::MetricPolicy>, scaling::Error> {
        let json = serde_json::to_value(spec).expect("spec serializes");
        scaling::format::parse_metric_policies(&json)
    }

    #[test]
    fn metric_policies_convert_as_the_calc_reader_reads_them() {
        let valid = examples("../crds/examples/extensions");
        assert!(valid.len() >= 2, "examples found: {}", valid.len());
        let mut with_policies = 0;
        for (name, obj) in &valid {
            let core = autoscaler_spec(&obj.spec).expect(name);
            let typed = metric_policies(&obj.spec, &core);
            assert!(typed.is_ok(), "{name}: {typed:?}");
            with_policies += usize::from(typed.as_ref().is_ok_and(|p| !p.is_empty()));
            assert_eq!(typed, policies_through_json(&obj.spec), "{name}");
        }
        assert!(with_policies >= 2);
        // What the CRD's rules refuse is refused here too, naming the same entry.
        let invalid = examples("../crds/examples/extensions/invalid");
        let mut refused = 0;
        for (name, obj) in &invalid {
            let Ok(core) = autoscaler_spec(&obj.spec) else {
                continue;
            };
            let typed = metric_policies(&obj.spec, &core);
            assert_eq!(typed, policies_through_json(&obj.spec), "{name}");
            if let Err(e) = &typed {
                refused += 1;
                assert!(
                    e.to_string().starts_with("spec.tidal.metricPolicies["),
                    "{name}: {e}"
                );
            }
        }
        assert!(refused >= 8, "refused {refused}");
    }

    fn with_metric(metric: crd::MetricSpec) -> crd::AutoScalerSpec {
        crd::AutoScalerSpec {
            scale_target_ref: crd::CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: "web".into(),
            },
            min_replicas: None,
            max_replicas: 5,
            metrics: Some(vec![metric]),
            behavior: None,
            tidal: None,
        }
    }

    #[test]
    fn a_bad_quantity_names_its_field() {
        let spec = with_metric(crd::MetricSpec {
            type_: "External".into(),
            external: Some(crd::ExternalMetricSource {
                metric: crd::MetricIdentifier {
                    name: "queue".into(),
                    selector: None,
                },
                target: crd::MetricTarget {
                    type_: "Value".into(),
                    value: Some(meta_quantity("lots")),
                    ..Default::default()
                },
            }),
            ..Default::default()
        });
        let err = autoscaler_spec(&spec).expect_err("not a quantity");
        assert!(
            err.to_string()
                .starts_with("spec.metrics[0].external.target.value: "),
            "{err}"
        );
        assert_eq!(Err(err), through_json(&spec));
    }

    #[test]
    fn a_type_without_its_source_names_the_missing_block() {
        let spec = with_metric(crd::MetricSpec {
            type_: "Pods".into(),
            ..Default::default()
        });
        let err = autoscaler_spec(&spec).expect_err("no pods block");
        assert_eq!(
            err.to_string(),
            "spec.metrics[0].pods: required object is missing"
        );
        assert_eq!(Err(err), through_json(&spec));
    }

    fn meta_quantity(s: &str) -> k8s_openapi::apimachinery::pkg::api::resource::Quantity {
        k8s_openapi::apimachinery::pkg::api::resource::Quantity(s.to_string())
    }

    fn requirement(
        key: &str,
        operator: &str,
        values: Option<&[&str]>,
    ) -> meta::LabelSelectorRequirement {
        meta::LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: values.map(|v| v.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn metric_selectors_render_as_label_selector_as_selector_did() {
        let full = meta::LabelSelector {
            match_labels: Some([("z".into(), "1".into()), ("a".into(), "2".into())].into()),
            match_expressions: Some(vec![
                requirement("m", "NotIn", Some(&["y", "x"])),
                requirement("i", "In", Some(&["b", "a"])),
                requirement("b", "DoesNotExist", None),
                requirement("c", "Exists", Some(&[])),
            ]),
        };
        let cases = [
            (Some(full), Ok("a=2,!b,c,i in (a,b),m notin (x,y),z=1")),
            (None, Ok("")),
            (Some(meta::LabelSelector::default()), Ok("")),
            (
                Some(meta::LabelSelector {
                    match_labels: Some([("app".into(), "web".into())].into()),
                    ..Default::default()
                }),
                Ok("app=web"),
            ),
            (
                Some(meta::LabelSelector {
                    match_expressions: Some(vec![requirement("a", "Gt", Some(&["1"]))]),
                    ..Default::default()
                }),
                Err("\"Gt\" is not a valid label selector operator"),
            ),
            (
                Some(meta::LabelSelector {
                    match_expressions: Some(vec![requirement("a", "In", None)]),
                    ..Default::default()
                }),
                Err(
                    "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty",
                ),
            ),
            // Missing and empty `values` are the same nil slice upstream.
            (
                Some(meta::LabelSelector {
                    match_expressions: Some(vec![requirement("a", "In", Some(&[]))]),
                    ..Default::default()
                }),
                Err(
                    "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty",
                ),
            ),
        ];
        for (selector, want) in cases {
            let got = metric_selector(selector.as_ref().map(label_selector).as_ref());
            assert_eq!(got.as_deref().map_err(String::as_str), want, "{selector:?}");
        }
    }

    fn quantity_text() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "1", "0", "-1", "100m", "1.5", "2Ki", "50m", "0.05", "", "lots", "1e3", "+2",
        ])
        .prop_map(str::to_string)
    }

    fn opt_quantity()
    -> impl Strategy<Value = Option<k8s_openapi::apimachinery::pkg::api::resource::Quantity>> {
        prop::option::of(quantity_text().prop_map(|s| meta_quantity(&s)))
    }

    fn metric_target() -> impl Strategy<Value = crd::MetricTarget> {
        (
            prop::sample::select(vec!["Utilization", "Value", "AverageValue", ""]),
            opt_quantity(),
            opt_quantity(),
            prop::option::of(-2i32..200),
        )
            .prop_map(
                |(t, value, average_value, average_utilization)| crd::MetricTarget {
                    type_: t.to_string(),
                    value,
                    average_value,
                    average_utilization,
                },
            )
    }

    fn selector() -> impl Strategy<Value = Option<meta::LabelSelector>> {
        prop::option::of(
            (
                prop::option::of(prop::collection::btree_map("[a-c]", "[x-z]", 0..3)),
                prop::option::of(prop::collection::vec(
                    (
                        "[a-c]",
                        prop::sample::select(vec!["In", "NotIn", "Exists", "DoesNotExist", "Gt"]),
                        prop::option::of(prop::collection::vec("[x-z]", 0..3)),
                    )
                        .prop_map(|(key, operator, values)| {
                            meta::LabelSelectorRequirement {
                                key,
                                operator: operator.to_string(),
                                values,
                            }
                        }),
                    0..3,
                )),
            )
                .prop_map(|(match_labels, match_expressions)| meta::LabelSelector {
                    match_labels,
                    match_expressions,
                }),
        )
    }

    fn identifier() -> impl Strategy<Value = crd::MetricIdentifier> {
        ("[a-z]{1,6}", selector())
            .prop_map(|(name, selector)| crd::MetricIdentifier { name, selector })
    }

    fn reference() -> impl Strategy<Value = crd::CrossVersionObjectReference> {
        (
            prop::option::of("(apps/v1|v1)"),
            "[A-Z][a-z]{0,5}",
            "[a-z]{1,6}",
        )
            .prop_map(
                |(api_version, kind, name)| crd::CrossVersionObjectReference {
                    api_version,
                    kind,
                    name,
                },
            )
    }

    fn metric() -> impl Strategy<Value = crd::MetricSpec> {
        (
            prop::sample::select(vec![
                "Resource",
                "ContainerResource",
                "Pods",
                "Object",
                "External",
                "Custom",
            ]),
            prop::option::of(
                ("[a-z]{1,6}", metric_target())
                    .prop_map(|(name, target)| crd::ResourceMetricSource { name, target }),
            ),
            prop::option::of(("[a-z]{1,6}", "[a-z]{1,6}", metric_target()).prop_map(
                |(name, container, target)| crd::ContainerResourceMetricSource {
                    name,
                    container,
                    target,
                },
            )),
            prop::option::of(
                (identifier(), metric_target())
                    .prop_map(|(metric, target)| crd::PodsMetricSource { metric, target }),
            ),
            prop::option::of((reference(), identifier(), metric_target()).prop_map(
                |(described_object, metric, target)| crd::ObjectMetricSource {
                    described_object,
                    metric,
                    target,
                },
            )),
            prop::option::of(
                (identifier(), metric_target())
                    .prop_map(|(metric, target)| crd::ExternalMetricSource { metric, target }),
            ),
        )
            .prop_map(
                |(t, resource, container_resource, pods, object, external)| crd::MetricSpec {
                    type_: t.to_string(),
                    resource,
                    container_resource,
                    pods,
                    object,
                    external,
                },
            )
    }

    fn rules() -> impl Strategy<Value = crd::ScalingRules> {
        (
            prop::option::of(0i32..3600),
            prop::option::of(prop::sample::select(vec!["Max", "Min", "Disabled", "Most"])),
            prop::option::of(prop::collection::vec(
                (
                    prop::sample::select(vec!["Pods", "Percent", "Replicas"]),
                    1i32..100,
                    1i32..1800,
                )
                    .prop_map(|(t, value, period_seconds)| crd::ScalingPolicy {
                        type_: t.to_string(),
                        value,
                        period_seconds,
                    }),
                0..3,
            )),
            opt_quantity(),
        )
            .prop_map(
                |(stabilization_window_seconds, select_policy, policies, tolerance)| {
                    crd::ScalingRules {
                        stabilization_window_seconds,
                        select_policy: select_policy.map(str::to_string),
                        policies,
                        tolerance,
                    }
                },
            )
    }

    fn spec() -> impl Strategy<Value = crd::AutoScalerSpec> {
        (
            reference(),
            prop::option::of(0i32..5),
            1i32..50,
            prop::option::of(prop::collection::vec(metric(), 0..3)),
            prop::option::of(
                (prop::option::of(rules()), prop::option::of(rules())).prop_map(
                    |(scale_up, scale_down)| crd::Behavior {
                        scale_up,
                        scale_down,
                    },
                ),
            ),
        )
            .prop_map(
                |(scale_target_ref, min_replicas, max_replicas, metrics, behavior)| {
                    crd::AutoScalerSpec {
                        scale_target_ref,
                        min_replicas,
                        max_replicas,
                        metrics,
                        behavior,
                        tidal: None,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn the_typed_conversion_agrees_with_the_calc_reader(spec in spec()) {
            prop_assert_eq!(autoscaler_spec(&spec), through_json(&spec));
        }
    }
}
