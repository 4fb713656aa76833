//! The metrics pipeline, cluster-wide: the `metrics.k8s.io` APIServices and the metrics-server
//! workload behind them; the custom and external metrics APIServices of an adapter.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::Client;
use kube::api::Api;

use tidal_crds::AutoScaler;

use super::diagnosis::Diagnosis;
use super::report::{Check, Status, check, failed, forbidden_or};

/// The APIService of `v1beta1.metrics.k8s.io`, and `v1` if registered. Returns the service
/// behind the one that serves (`namespace`, `name`), when known.
pub(super) async fn apiservices(
    client: &Client,
    checks: &mut Vec<Check>,
) -> Option<(String, String)> {
    let api: Api<APIService> = Api::all(client.clone());
    let mut service = None;
    for (name, required) in [
        ("v1beta1.metrics.k8s.io", true),
        ("v1.metrics.k8s.io", false),
    ] {
        let what = format!("APIService {name}");
        match api.get_opt(name).await {
            Err(e) => checks.push(forbidden_or(e, &what)),
            Ok(None) if required => checks.push(failed(
                what,
                "not registered: the Metrics API (resource metrics) is not available",
                "metrics api not available",
            )),
            Ok(None) => checks.push(check(
                Status::Info,
                what,
                "not registered (fine: Tidal reads v1beta1 when v1 is absent)",
            )),
            Ok(Some(svc)) => {
                let cond = svc
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .and_then(|c| c.iter().find(|c| c.type_ == "Available"));
                let reason = cond.and_then(|c| c.reason.clone()).unwrap_or_default();
                let message = cond.and_then(|c| c.message.clone()).unwrap_or_default();
                match cond.map(|c| c.status.as_str()) {
                    Some("True") => checks.push(check(
                        Status::Ok,
                        what,
                        format!("Available ({reason}: {message})"),
                    )),
                    status => checks.push(failed(
                        what,
                        format!(
                            "not Available (status {}, reason {reason}: {message})",
                            status.unwrap_or("unknown")
                        ),
                        &format!("{reason} {message}"),
                    )),
                }
                if service.is_none() {
                    // Available or not, the workload behind it is worth a look.
                    service = svc.spec.as_ref().and_then(|s| s.service.as_ref()).map(|s| {
                        (
                            s.namespace.clone().unwrap_or_default(),
                            s.name.clone().unwrap_or_default(),
                        )
                    });
                }
            }
        }
    }
    service
}

/// The metrics-server workload behind the APIService's Service.
pub(super) async fn metrics_server(
    client: &Client,
    checks: &mut Vec<Check>,
    service: Option<&(String, String)>,
) {
    let (ns, name) = match service {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() => (ns.clone(), name.clone()),
        _ => ("kube-system".to_string(), "metrics-server".to_string()),
    };
    let what = format!("metrics-server ({ns}/{name})");
    let svc_api: Api<Service> = Api::namespaced(client.clone(), &ns);
    match svc_api.get_opt(&name).await {
        Ok(Some(svc)) => {
            let spec = svc.spec.unwrap_or_default();
            if spec.type_.as_deref() == Some("ExternalName") {
                checks.push(check(
                    Status::Info,
                    &what,
                    format!(
                        "runs outside the cluster (Service is ExternalName -> {}); no Deployment to check, the APIService check above covers it",
                        spec.external_name.unwrap_or_default()
                    ),
                ));
                return;
            }
        }
        Ok(None) => {}
        Err(e) => checks.push(forbidden_or(e, &format!("Service {ns}/{name}"))),
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    match deployments.get_opt(&name).await {
        Err(e) => checks.push(forbidden_or(e, &format!("Deployment {ns}/{name}"))),
        Ok(None) => checks.push(check(
            Status::Info,
            &what,
            format!(
                "no Deployment {ns}/{name}; metrics-server may be installed under another name"
            ),
        )),
        Ok(Some(d)) => {
            let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let ready = d
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0);
            if ready >= 1 {
                checks.push(check(
                    Status::Ok,
                    &what,
                    format!("Deployment ready ({ready}/{want} replicas)"),
                ));
            } else {
                checks.push(failed(
                    &what,
                    format!("Deployment has {ready}/{want} ready replicas"),
                    "failing or missing response connection refused",
                ));
            }
        }
    }
}

/// Which metrics APIs served by an adapter the checked AutoScalers read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct AdapterUse {
    /// AutoScalers (`namespace/name`) with a Pods or Object metric: `custom.metrics.k8s.io`.
    pub custom: Vec<String>,
    /// AutoScalers with an External metric: `external.metrics.k8s.io`.
    pub external: Vec<String>,
}

impl AdapterUse {
    /// What `targets` read.
    pub(super) fn of(targets: &[AutoScaler]) -> Self {
        let mut uses = Self::default();
        for obj in targets {
            let key = format!(
                "{}/{}",
                obj.metadata.namespace.as_deref().unwrap_or_default(),
                obj.metadata.name.as_deref().unwrap_or_default()
            );
            let metrics = obj.spec.metrics.as_deref().unwrap_or_default();
            if metrics
                .iter()
                .any(|m| m.pods.is_some() || m.object.is_some())
            {
                uses.custom.push(key.clone());
            }
            if metrics.iter().any(|m| m.external.is_some()) {
                uses.external.push(key);
            }
        }
        uses
    }
}

/// An adapter's APIService that is registered but not Available: every client that discovers
/// APIs (kubectl, namespace deletion, the HPA) stumbles on it, used or not.
const ADAPTER_UNAVAILABLE: Diagnosis = Diagnosis {
    cause: "the adapter behind this APIService does not answer the API server's aggregator \
            (not running, not reachable, or failing)",
    fix: "look at the adapter's workload and logs (the Service in the APIService's spec.service \
          names it) and `kubectl get apiservice <name> -o yaml` for the aggregator's message; \
          delete the APIService if no adapter is meant to serve it",
};

/// A metrics API that AutoScalers read but that no adapter serves.
const ADAPTER_MISSING: Diagnosis = Diagnosis {
    cause: "no metrics adapter is registered for this API, so these metrics cannot be read \
            (ScalingActive=False with FailedGet*Metric)",
    fix: "install an adapter that serves it (for example prometheus-adapter or KEDA's metrics \
          server) and check `kubectl get apiservice`",
};

/// The custom and external metrics APIServices (served by an adapter, not by metrics-server).
/// Their state is always reported; a missing one is a failure only when a checked AutoScaler
/// reads it, an unavailable registered one always (it breaks API discovery for every client).
pub(super) async fn metrics_adapter(client: &Client, checks: &mut Vec<Check>, uses: &AdapterUse) {
    let api: Api<APIService> = Api::all(client.clone());
    for (group, versions, users, kinds) in [
        (
            "custom.metrics.k8s.io",
            &["v1beta2", "v1beta1"][..],
            &uses.custom,
            "Pods and Object metrics",
        ),
        (
            "external.metrics.k8s.io",
            &["v1beta1"][..],
            &uses.external,
            "External metrics",
        ),
    ] {
        let mut registered = false;
        let mut skipped = false;
        for version in versions {
            let name = format!("{version}.{group}");
            let what = format!("APIService {name}");
            match api.get_opt(&name).await {
                Err(e) => {
                    skipped = true;
                    checks.push(forbidden_or(e, &what));
                }
                Ok(None) => {}
                Ok(Some(svc)) => {
                    registered = true;
                    let cond = svc
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .and_then(|c| c.iter().find(|c| c.type_ == "Available"));
                    let reason = cond.and_then(|c| c.reason.clone()).unwrap_or_default();
                    let message = cond.and_then(|c| c.message.clone()).unwrap_or_default();
                    if cond.map(|c| c.status.as_str()) == Some("True") {
                        checks.push(check(
                            Status::Ok,
                            what,
                            format!("Available ({reason}: {message}); serves {kinds}"),
                        ));
                    } else {
                        checks.push(Check {
                            status: Status::Fail,
                            what,
                            detail: format!(
                                "not Available (status {}, reason {reason}: {message})",
                                cond.map_or("unknown", |c| c.status.as_str())
                            ),
                            diagnosis: Some(ADAPTER_UNAVAILABLE),
                        });
                    }
                }
            }
        }
        if registered || skipped {
            continue;
        }
        let what = format!("APIService {}.{group}", versions[versions.len() - 1]);
        if users.is_empty() {
            checks.push(check(
                Status::Info,
                what,
                format!("not registered (fine: no checked AutoScaler reads {kinds})"),
            ));
        } else {
            checks.push(Check {
                status: Status::Fail,
                what,
                detail: format!(
                    "not registered, but {kinds} are read by {}",
                    users.join(", ")
                ),
                diagnosis: Some(ADAPTER_MISSING),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn autoscaler(name: &str, metrics: serde_json::Value) -> AutoScaler {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "autoscaling.tidal.dev/v1alpha1", "kind": "AutoScaler",
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "maxReplicas": 3,
                "metrics": metrics,
            }
        }))
        .expect("a valid AutoScaler")
    }

    #[test]
    fn pods_and_object_metrics_need_the_custom_api_and_external_metrics_the_external_api() {
        let targets = [
            autoscaler(
                "cpu",
                serde_json::json!([{"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 50}}}]),
            ),
            autoscaler(
                "pods",
                serde_json::json!([{"type": "Pods", "pods": {"metric": {"name": "rps"},
                    "target": {"type": "AverageValue", "averageValue": "1"}}}]),
            ),
            autoscaler(
                "both",
                serde_json::json!([
                    {"type": "Object", "object": {"metric": {"name": "m"},
                        "describedObject": {"apiVersion": "v1", "kind": "Service", "name": "s"},
                        "target": {"type": "Value", "value": "1"}}},
                    {"type": "External", "external": {"metric": {"name": "q"},
                        "target": {"type": "Value", "value": "1"}}}]),
            ),
        ];
        assert_eq!(
            AdapterUse::of(&targets),
            AdapterUse {
                custom: vec!["ns/pods".into(), "ns/both".into()],
                external: vec!["ns/both".into()],
            }
        );
    }
}
