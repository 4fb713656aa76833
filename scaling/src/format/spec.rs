//! The `spec` of an AutoScaler (`autoscaling/v2` `HorizontalPodAutoscalerSpec`):
//! metrics, targets, metric selectors and behavior.

use super::json::{Obj, expected, input_error, missing, positive_quantity};
use crate::error::Result;
use crate::model::{
    AutoscalerSpec, Behavior, MetricIdentifier, MetricPolicy, MetricPolicyFields, MetricSpec,
    MetricTarget, ObjectReference, PolicyType, ScalingPolicy, ScalingRules, SelectPolicy,
    check_metric_policies,
};
use crate::selector::{LabelSelector, LabelSelectorRequirement};
use serde_json::Value;

pub(super) fn parse_object_ref(o: &Obj<'_>) -> Result<ObjectReference> {
    Ok(ObjectReference {
        api_version: o.str_or("apiVersion", "")?,
        kind: o.str_or("kind", "")?,
        name: o.str_or("name", "")?,
    })
}

pub(super) fn spec_from(o: &Obj<'_>) -> Result<AutoscalerSpec> {
    let scale_target_ref = parse_object_ref(&o.req_obj("scaleTargetRef")?)?;
    let min_replicas = o.opt_i32("minReplicas")?;
    let max_replicas = o.req_i32("maxReplicas")?;
    let mut metrics = Vec::new();
    for (path, v) in o.array("metrics")? {
        metrics.push(parse_metric(&Obj::new(v, &path)?)?);
    }
    let behavior = o
        .opt_obj("behavior")?
        .map(|b| parse_behavior(&b))
        .transpose()?;
    Ok(AutoscalerSpec {
        scale_target_ref,
        min_replicas,
        max_replicas,
        metrics,
        behavior,
    })
}

pub(super) fn parse_target(o: &Obj<'_>) -> Result<MetricTarget> {
    let Some(t) = o.opt_obj("target")? else {
        return Ok(MetricTarget::default());
    };
    let average_utilization = t.opt_i32("averageUtilization")?;
    if let Some(u) = average_utilization
        && u <= 0
    {
        return Err(input_error(
            &t.field_path("averageUtilization"),
            "a target must be positive",
        ));
    }
    Ok(MetricTarget {
        kind: t.str_or("type", "")?,
        value: positive_quantity(&t, "value")?,
        average_value: positive_quantity(&t, "averageValue")?,
        average_utilization,
    })
}

pub(super) fn parse_label_selector(o: &Obj<'_>, key: &str) -> Result<Option<LabelSelector>> {
    let Some(s) = o.opt_obj(key)? else {
        return Ok(None);
    };
    let mut sel = LabelSelector {
        match_labels: s.opt_string_map("matchLabels")?,
        match_expressions: Vec::new(),
    };
    for (path, v) in s.array("matchExpressions")? {
        let e = Obj::new(v, &path)?;
        let mut values = Vec::new();
        for (vpath, item) in e.array("values")? {
            match item {
                Value::String(s) => values.push(s.clone()),
                other => return Err(expected(&vpath, "a string", other)),
            }
        }
        sel.match_expressions.push(LabelSelectorRequirement {
            key: e.str_or("key", "")?,
            operator: e.str_or("operator", "")?,
            values,
        });
    }
    Ok(Some(sel))
}

pub(super) fn parse_identifier(o: &Obj<'_>) -> Result<MetricIdentifier> {
    let m = o.req_obj("metric")?;
    Ok(MetricIdentifier {
        name: m.req_str("name")?,
        selector: parse_label_selector(&m, "selector")?,
    })
}

pub(super) fn parse_metric(o: &Obj<'_>) -> Result<MetricSpec> {
    let kind = o.req_str("type")?;
    Ok(match kind.as_str() {
        "Resource" => {
            let r = o.req_obj("resource")?;
            MetricSpec::Resource {
                name: r.req_str("name")?,
                target: parse_target(&r)?,
            }
        }
        "ContainerResource" => {
            let r = o.req_obj("containerResource")?;
            MetricSpec::ContainerResource {
                name: r.req_str("name")?,
                container: r.req_str("container")?,
                target: parse_target(&r)?,
            }
        }
        "Pods" => {
            let p = o.req_obj("pods")?;
            let metric = parse_identifier(&p)?;
            let t = p.req_obj("target")?;
            let average_value = positive_quantity(&t, "averageValue")?
                .ok_or_else(|| missing(&t.field_path("averageValue"), "quantity"))?;
            MetricSpec::Pods {
                metric,
                average_value,
            }
        }
        "Object" => {
            let ob = o.req_obj("object")?;
            MetricSpec::Object {
                described_object: parse_object_ref(&ob.req_obj("describedObject")?)?,
                metric: parse_identifier(&ob)?,
                target: parse_target(&ob)?,
            }
        }
        "External" => {
            let e = o.req_obj("external")?;
            MetricSpec::External {
                metric: parse_identifier(&e)?,
                target: parse_target(&e)?,
            }
        }
        _ => MetricSpec::Unknown(kind),
    })
}

pub(super) fn parse_rules(o: &Obj<'_>) -> Result<ScalingRules> {
    let select_policy = match o.opt_str("selectPolicy")? {
        None => None,
        Some("Max") => Some(SelectPolicy::Max),
        Some("Min") => Some(SelectPolicy::Min),
        Some("Disabled") => Some(SelectPolicy::Disabled),
        Some(other) => {
            return Err(input_error(
                &o.field_path("selectPolicy"),
                format!("{other:?} is not one of Max, Min, Disabled"),
            ));
        }
    };
    let policies = match o.opt_array("policies")? {
        None => None,
        Some(items) if items.is_empty() => {
            return Err(input_error(
                &o.field_path("policies"),
                "must not be empty (omit it for the defaults)",
            ));
        }
        Some(items) => {
            let mut out = Vec::new();
            for (path, v) in items {
                let p = Obj::new(v, &path)?;
                let kind = match p.req_str("type")?.as_str() {
                    "Pods" => PolicyType::Pods,
                    "Percent" => PolicyType::Percent,
                    other => {
                        return Err(input_error(
                            &p.field_path("type"),
                            format!("{other:?} is not one of Pods, Percent"),
                        ));
                    }
                };
                out.push(ScalingPolicy {
                    kind,
                    value: p.req_i32("value")?,
                    period_seconds: p.req_i32("periodSeconds")?,
                });
            }
            Some(out)
        }
    };
    Ok(ScalingRules {
        stabilization_window_seconds: o.opt_i32("stabilizationWindowSeconds")?,
        select_policy,
        policies,
        tolerance: o.opt_quantity("tolerance")?,
    })
}

pub(super) fn parse_behavior(o: &Obj<'_>) -> Result<Behavior> {
    Ok(Behavior {
        scale_up: o.opt_obj("scaleUp")?.map(|r| parse_rules(&r)).transpose()?,
        scale_down: o
            .opt_obj("scaleDown")?
            .map(|r| parse_rules(&r))
            .transpose()?,
    })
}

/// `spec.tidal.metricPolicies` (Tidal's extension), checked against `spec.metrics`.
pub(super) fn parse_metric_policies(
    o: &Obj<'_>,
    spec: &AutoscalerSpec,
) -> Result<Vec<MetricPolicy>> {
    let Some(tidal) = o.opt_obj("tidal")? else {
        return Ok(Vec::new());
    };
    let list_path = tidal.field_path("metricPolicies");
    let mut policies = Vec::new();
    for (path, v) in tidal.array("metricPolicies")? {
        let p = Obj::new(v, &path)?;
        let fields = MetricPolicyFields {
            kind: p.opt_str("type")?.unwrap_or(""),
            name: p.opt_str("name")?.unwrap_or(""),
            container: p.opt_str("container")?,
            max_sample_age_seconds: p.opt_i32("maxSampleAgeSeconds")?,
            when_unavailable: p.opt_str("whenUnavailable")?,
            fixed_replicas: p.opt_i32("fixedReplicas")?,
        };
        policies.push(
            fields
                .check()
                .map_err(|(field, message)| input_error(&p.field_path(field), message))?,
        );
    }
    check_metric_policies(&spec.metrics, &policies)
        .map_err(|(i, message)| input_error(&format!("{list_path}[{i}]"), message))?;
    Ok(policies)
}
