//! The resource-metrics pipeline, cluster-wide: the `metrics.k8s.io` APIServices and the
//! metrics-server workload behind them.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::Client;
use kube::api::Api;

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
