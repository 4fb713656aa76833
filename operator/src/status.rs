//! Building `status` from a decision: the HPA mirror (currentMetrics shapes per type, contract 5)
//! and Tidal's block (REFERENCE and TARGETS strings for `kubectl get`, persisted history).

use k8s_openapi::api::autoscaling::v2::{
    ContainerResourceMetricStatus, CrossVersionObjectReference, ExternalMetricStatus,
    MetricIdentifier, MetricStatus, MetricValueStatus, ObjectMetricStatus, PodsMetricStatus,
    ResourceMetricStatus,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use scaling::quantity::{format_milli, format_milli_binary};
use scaling::{MetricOutcome, MetricReport};
use tidal_crds::{MetricSpec, MetricTarget};

fn quantity(milli: i64, binary: bool) -> Quantity {
    Quantity(if binary {
        format_milli_binary(milli)
    } else {
        format_milli(milli)
    })
}

fn value_status(current: &scaling::MetricValueStatus) -> MetricValueStatus {
    MetricValueStatus {
        average_utilization: current.average_utilization,
        average_value: current.average_value.map(|v| quantity(v, current.binary)),
        value: current.value.map(|v| quantity(v, current.binary)),
    }
}

fn identifier(m: &tidal_crds::MetricIdentifier) -> MetricIdentifier {
    MetricIdentifier {
        name: m.name.clone(),
        selector: m.selector.clone(),
    }
}

fn reference(r: &tidal_crds::CrossVersionObjectReference) -> CrossVersionObjectReference {
    CrossVersionObjectReference {
        api_version: r.api_version.clone(),
        kind: r.kind.clone(),
        name: r.name.clone(),
    }
}

/// `status.currentMetrics`: one entry per spec metric; a failed metric leaves upstream's
/// zero-valued entry (`type: ""`, which kubectl prints as `<unknown>`).
pub fn current_metrics(spec: &[MetricSpec], reports: &[MetricReport]) -> Vec<MetricStatus> {
    spec.iter()
        .zip(reports)
        .map(|(metric, report)| {
            let MetricOutcome::Proposal { current, .. } = &report.outcome else {
                return MetricStatus::default();
            };
            let current = value_status(current);
            let mut status = MetricStatus {
                type_: metric.type_.clone(),
                ..MetricStatus::default()
            };
            if let Some(r) = &metric.resource {
                status.resource = Some(ResourceMetricStatus {
                    name: r.name.clone(),
                    current,
                });
            } else if let Some(r) = &metric.container_resource {
                status.container_resource = Some(ContainerResourceMetricStatus {
                    name: r.name.clone(),
                    container: r.container.clone(),
                    current,
                });
            } else if let Some(p) = &metric.pods {
                status.pods = Some(PodsMetricStatus {
                    metric: identifier(&p.metric),
                    current,
                });
            } else if let Some(o) = &metric.object {
                status.object = Some(ObjectMetricStatus {
                    described_object: reference(&o.described_object),
                    metric: identifier(&o.metric),
                    current,
                });
            } else if let Some(e) = &metric.external {
                status.external = Some(ExternalMetricStatus {
                    metric: identifier(&e.metric),
                    current,
                });
            }
            status
        })
        .collect()
}

fn target_text(target: &MetricTarget) -> String {
    match (
        &target.average_utilization,
        &target.average_value,
        &target.value,
    ) {
        (Some(u), _, _) if target.type_ == "Utilization" => format!("{u}%"),
        (_, Some(v), _) if target.type_ == "AverageValue" => v.0.clone(),
        (_, _, Some(v)) => v.0.clone(),
        (_, Some(v), _) => v.0.clone(),
        (Some(u), _, _) => format!("{u}%"),
        _ => "<unset>".to_string(),
    }
}

fn current_text(target: &MetricTarget, current: &MetricValueStatus) -> String {
    if let (true, Some(u)) = (target.type_ == "Utilization", current.average_utilization) {
        return format!("{u}%");
    }
    current
        .average_value
        .as_ref()
        .or(current.value.as_ref())
        .map_or_else(|| "<unknown>".to_string(), |q| q.0.clone())
}

/// TARGETS as `kubectl get hpa` prints it: `name: current/target` per metric, `<unknown>` for a
/// metric without a current value.
pub fn targets(spec: &[MetricSpec], current: &[MetricStatus]) -> String {
    let parts: Vec<String> = spec
        .iter()
        .enumerate()
        .map(|(i, metric)| {
            let (name, target) = if let Some(r) = &metric.resource {
                (r.name.clone(), &r.target)
            } else if let Some(r) = &metric.container_resource {
                (format!("{}/{}", r.container, r.name), &r.target)
            } else if let Some(p) = &metric.pods {
                (p.metric.name.clone(), &p.target)
            } else if let Some(o) = &metric.object {
                (o.metric.name.clone(), &o.target)
            } else if let Some(e) = &metric.external {
                (e.metric.name.clone(), &e.target)
            } else {
                return format!("{}: <unknown>", metric.type_);
            };
            let status = current.get(i).and_then(|s| {
                s.resource
                    .as_ref()
                    .map(|r| &r.current)
                    .or(s.container_resource.as_ref().map(|r| &r.current))
                    .or(s.pods.as_ref().map(|r| &r.current))
                    .or(s.object.as_ref().map(|r| &r.current))
                    .or(s.external.as_ref().map(|r| &r.current))
            });
            let now = status.map_or_else(|| "<unknown>".to_string(), |c| current_text(target, c));
            format!("{name}: {now}/{}", target_text(target))
        })
        .collect();
    if parts.is_empty() {
        // An empty list means the API default, CPU at 80% of requests.
        return "cpu: <unknown>/80%".to_string();
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Vec<MetricSpec> {
        serde_json::from_value(serde_json::json!([
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "512Mi"}}},
            {"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "Value", "value": "30"}}}
        ]))
        .expect("spec")
    }

    fn proposal(current: scaling::MetricValueStatus) -> MetricReport {
        MetricReport {
            kind: String::new(),
            name: String::new(),
            container: None,
            outcome: MetricOutcome::Proposal {
                replicas: 3,
                current,
            },
        }
    }

    #[test]
    fn current_metrics_follow_the_hpa_shapes_and_formats() {
        let reports = vec![
            proposal(scaling::MetricValueStatus {
                average_utilization: Some(40),
                average_value: Some(200),
                ..Default::default()
            }),
            proposal(scaling::MetricValueStatus {
                average_value: Some(300 * 1024 * 1024 * 1000),
                binary: true,
                ..Default::default()
            }),
            MetricReport {
                kind: "External".into(),
                name: "queue".into(),
                container: None,
                outcome: MetricOutcome::Failed {
                    reason: "FailedGetExternalMetric".into(),
                    message: "boom".into(),
                },
            },
        ];
        let statuses = current_metrics(&spec(), &reports);
        let json = serde_json::to_value(&statuses).expect("json");
        assert_eq!(
            json[0],
            serde_json::json!({"type": "Resource", "resource": {"name": "cpu",
                "current": {"averageUtilization": 40, "averageValue": "200m"}}})
        );
        assert_eq!(json[1]["resource"]["current"]["averageValue"], "300Mi");
        assert_eq!(
            json[2],
            serde_json::json!({"type": ""}),
            "failed metrics leave a zero entry"
        );
        assert_eq!(
            targets(&spec(), &statuses),
            "cpu: 40%/50%, memory: 300Mi/512Mi, queue: <unknown>/30"
        );
    }

    #[test]
    fn targets_of_the_default_metric_list() {
        assert_eq!(targets(&[], &[]), "cpu: <unknown>/80%");
    }
}
