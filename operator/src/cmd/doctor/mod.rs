//! `tidal doctor`: diagnoses the resource-metrics pipeline the way an expert would, in order:
//! the `metrics.k8s.io` APIServices, the metrics-server behind them, the PodMetrics of each
//! target's pods, and the pods themselves (CPU requests, Pending). Known failure texts are
//! mapped to their cause and fix by [`diagnose`], a pure function.
//!
//! It runs with the user's credentials and only reads. Whatever it may not read (403) is
//! reported as "could not check", never as a failure, and never silently passed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use tidal_crds::AutoScaler;
use tidal_metrics_client::MetricsClient;

use crate::cmd::explain::{get_autoscaler, parse_target};
use crate::scale::Resolver;

/// PodMetrics older than this are stale: metrics-server's resolution is at most 60s by
/// default, so two missed scrapes and then some.
const FRESH: Duration = Duration::from_secs(150);

/// Flags of `tidal doctor`.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// Check every AutoScaler of this namespace (their pods, metrics and requests).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Check only this AutoScaler (`namespace/name`).
    #[arg(long)]
    pub target: Option<String>,
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Works.
    Ok,
    /// Worth knowing; not a failure.
    Info,
    /// Broken: scaling cannot work (or not fully) until it is fixed.
    Fail,
    /// Could not be checked (usually: forbidden for this user).
    Skipped,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Outcome.
    pub status: Status,
    /// What was checked.
    pub what: String,
    /// What was found.
    pub detail: String,
    /// Cause and fix, when known.
    pub diagnosis: Option<Diagnosis>,
}

/// A known failure: what it means and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    /// Short name of the cause.
    pub cause: &'static str,
    /// What to do.
    pub fix: &'static str,
}

/// Maps a failure text (an APIService condition message, an AutoScaler condition or event
/// message, a metrics-server log line) to its known cause. The rules are checked in order;
/// the first that matches wins, so more specific texts come first.
pub fn diagnose(text: &str) -> Option<Diagnosis> {
    let t = text.to_ascii_lowercase();
    let has = |s: &str| t.contains(s);
    if has("x509") && has("doesn't contain any ip sans") {
        return Some(Diagnosis {
            cause: "metrics-server cannot verify the kubelets' serving certificates (self-signed, without IP SANs)",
            fix: "set `serverTLSBootstrap: true` in every kubelet's configuration and approve the \
                  kubelet-serving CSRs (`kubectl get csr`, `kubectl certificate approve <name>`, or \
                  an auto-approver); do not use --kubelet-insecure-tls, which turns verification off",
        });
    }
    if has(":10250") && (has("i/o timeout") || has("deadline exceeded") || has("no route to host"))
    {
        return Some(Diagnosis {
            cause: "metrics-server's scrapes of the kubelets on port 10250 time out",
            fix: "allow TCP 10250 from the metrics-server pods to every node (firewall, security \
                  group or NetworkPolicy)",
        });
    }
    if has("missing request for cpu") || has("missing pod-level request for cpu") {
        return Some(Diagnosis {
            cause: "a container of the target's pods has no CPU request, so CPU utilization cannot be computed",
            fix: "set resources.requests.cpu on every container (and restartable init container) \
                  of the pod template, or use an AverageValue target instead of Utilization",
        });
    }
    if has("failing or missing response") && has("connection refused") {
        return Some(Diagnosis {
            cause: "nothing answers at metrics-server's address: metrics-server is not running (or not listening)",
            fix: "start metrics-server (check its Deployment, pods and logs: \
                  `kubectl -n kube-system get deploy,pods -l k8s-app=metrics-server`)",
        });
    }
    if has("failing or missing response") {
        return Some(Diagnosis {
            cause: "the API server's aggregator gets no answer from metrics-server",
            fix: "if the API server's host runs no kube-proxy (it cannot reach Service IPs), start \
                  kube-apiserver with --enable-aggregator-routing=true; otherwise let the API server \
                  reach the metrics-server pods on their port (firewall)",
        });
    }
    if has("servicenotfound") || has("missingendpoints") || has("no endpoints") {
        return Some(Diagnosis {
            cause: "the APIService points at a Service with no ready metrics-server behind it",
            fix: "make metrics-server's pods Ready (see its Deployment and pod logs), or fix \
                  spec.service of the APIService",
        });
    }
    if has("metrics api not available")
        || has("the server is currently unable to handle the request")
        || has("could not find the requested resource (get pods.metrics.k8s.io)")
        || has("not registered")
    {
        return Some(Diagnosis {
            cause: "Metrics API not available",
            fix: "install metrics-server (its manifest registers APIService v1beta1.metrics.k8s.io) \
                  and check `kubectl get apiservice v1beta1.metrics.k8s.io`",
        });
    }
    if has("did not receive metrics for targeted pods")
        || has("no metrics returned from resource metrics api")
    {
        return Some(Diagnosis {
            cause: "metrics-server has no samples for the target's pods yet",
            fix: "wait one metrics resolution after pods start; if it persists, read metrics-server's \
                  logs for scrape errors",
        });
    }
    None
}

/// Runs `tidal doctor`.
pub fn run(args: DoctorArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(err) => {
            eprintln!("tidal doctor: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(doctor(&args)) {
        Ok(checks) => {
            print!("{}", render(&checks));
            if checks.iter().any(|c| c.status == Status::Fail) {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(err) => {
            eprintln!("tidal doctor: {err}");
            ExitCode::from(2)
        }
    }
}

/// The report as text: one line per check, cause and fix under failures, a summary.
pub fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        let tag = match c.status {
            Status::Ok => "[ OK ]",
            Status::Info => "[INFO]",
            Status::Fail => "[FAIL]",
            Status::Skipped => "[SKIP]",
        };
        let _ = writeln!(out, "{tag} {}: {}", c.what, c.detail);
        if let Some(d) = &c.diagnosis {
            let _ = writeln!(out, "       cause: {}", d.cause);
            let _ = writeln!(out, "       fix:   {}", squeeze(d.fix));
        }
    }
    let fails = checks.iter().filter(|c| c.status == Status::Fail).count();
    let skipped = checks
        .iter()
        .filter(|c| c.status == Status::Skipped)
        .count();
    let _ = match (fails, skipped) {
        (0, 0) => writeln!(out, "healthy: every check passed"),
        (0, n) => writeln!(
            out,
            "healthy as far as visible: {n} checks could not be made"
        ),
        (n, _) => writeln!(out, "{n} problem(s) found"),
    };
    out
}

/// Collapses the runs of spaces that line continuations leave in the fix texts.
fn squeeze(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn check(status: Status, what: impl Into<String>, detail: impl Into<String>) -> Check {
    Check {
        status,
        what: what.into(),
        detail: detail.into(),
        diagnosis: None,
    }
}

fn failed(what: impl Into<String>, detail: impl Into<String>, text: &str) -> Check {
    Check {
        status: Status::Fail,
        what: what.into(),
        detail: detail.into(),
        diagnosis: diagnose(text),
    }
}

/// A read that may be forbidden: `Err(check)` is the "could not check" line.
fn forbidden_or(err: kube::Error, what: &str) -> Check {
    match &err {
        kube::Error::Api(e) if e.code == 403 || e.code == 401 => check(
            Status::Skipped,
            what,
            format!("could not check {what}: forbidden for this user"),
        ),
        _ => check(
            Status::Skipped,
            what,
            format!(
                "could not check {what}: {}",
                crate::cmd::explain::api_error(&err, "read it")
            ),
        ),
    }
}

async fn doctor(args: &DoctorArgs) -> Result<Vec<Check>, String> {
    let client = Client::try_default().await.map_err(|e| {
        format!("cannot build a Kubernetes client: {e} (set KUBECONFIG or run inside a cluster)")
    })?;
    let mut checks = Vec::new();
    let available = apiservices(&client, &mut checks).await;
    metrics_server(&client, &mut checks, available.as_ref()).await;

    let targets: Vec<AutoScaler> = match (&args.target, &args.namespace) {
        (Some(t), ns) => {
            let (ns, name) = parse_target(t, ns.as_deref())?;
            vec![get_autoscaler(&client, &ns, &name).await?]
        }
        (None, Some(ns)) => {
            let api: Api<AutoScaler> = Api::namespaced(client.clone(), ns);
            match api.list(&ListParams::default()).await {
                Ok(list) => {
                    if list.items.is_empty() {
                        checks.push(check(
                            Status::Info,
                            format!("AutoScalers in {ns}"),
                            "none; only the metrics pipeline was checked",
                        ));
                    }
                    list.items
                }
                Err(e) => {
                    checks.push(forbidden_or(e, &format!("AutoScalers in {ns}")));
                    Vec::new()
                }
            }
        }
        (None, None) => Vec::new(),
    };
    for target in &targets {
        autoscaler(&client, target, &mut checks).await;
    }
    Ok(checks)
}

/// The APIService of `v1beta1.metrics.k8s.io`, and `v1` if registered. Returns the service
/// behind the one that serves (`namespace`, `name`), when known.
async fn apiservices(client: &Client, checks: &mut Vec<Check>) -> Option<(String, String)> {
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
async fn metrics_server(
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

fn pod_cpu_gaps(pod: &Pod) -> Vec<String> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let pod_level = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .is_some_and(|r| r.contains_key("cpu"));
    if pod_level {
        return Vec::new();
    }
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .filter(|c| {
            !c.resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .is_some_and(|r| r.contains_key("cpu"))
        })
        .map(|c| c.name.clone())
        .collect()
}

fn uses_cpu_utilization(obj: &AutoScaler) -> bool {
    match obj.spec.metrics.as_deref() {
        None | Some([]) => true,
        Some(metrics) => metrics.iter().any(|m| {
            let (name, target) = match (&m.resource, &m.container_resource) {
                (Some(r), _) => (r.name.as_str(), &r.target),
                (None, Some(c)) => (c.name.as_str(), &c.target),
                _ => return false,
            };
            name == "cpu" && target.type_ == "Utilization"
        }),
    }
}

/// The target's pods, their PodMetrics and requests, and the AutoScaler's own conditions.
async fn autoscaler(client: &Client, obj: &AutoScaler, checks: &mut Vec<Check>) {
    let ns = obj.namespace().unwrap_or_default();
    let key = format!("{ns}/{}", obj.name_any());
    let what = format!("AutoScaler {key}");

    // Its own conditions carry the errors the operator met.
    let conditions = obj
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    if let Some(c) = conditions
        .iter()
        .find(|c| c.type_ == "ScalingActive" && c.status == "False")
    {
        let message = c.message.clone().unwrap_or_default();
        checks.push(failed(
            &what,
            format!(
                "ScalingActive=False ({}: {message})",
                c.reason.clone().unwrap_or_default()
            ),
            &message,
        ));
    } else if conditions.is_empty() {
        checks.push(check(
            Status::Info,
            &what,
            "no status yet: the operator has not reconciled it",
        ));
    } else {
        checks.push(check(Status::Ok, &what, "ScalingActive is not False"));
    }

    // The pods, through the scale subresource's selector as the operator reads them.
    let target_ref = &obj.spec.scale_target_ref;
    let resolver = Resolver::new(client.clone(), Duration::from_secs(60));
    let scale_what = format!("scale of {}/{}", target_ref.kind, target_ref.name);
    let scale = match resolver
        .resolve(
            &ns,
            target_ref.api_version.as_deref(),
            &target_ref.kind,
            &target_ref.name,
        )
        .await
    {
        Ok(target) => target.get().await,
        Err(e) => Err(e),
    };
    let selector = match scale {
        Ok(s) => s.status.and_then(|s| s.selector).unwrap_or_default(),
        Err(e) => {
            let text = e.to_string();
            if text.contains("403") || text.to_ascii_lowercase().contains("forbidden") {
                checks.push(check(
                    Status::Skipped,
                    &scale_what,
                    format!("could not check {scale_what}: forbidden for this user"),
                ));
            } else {
                checks.push(failed(&scale_what, text.clone(), &text));
            }
            return;
        }
    };
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let pods = match pods_api
        .list(&ListParams::default().labels(&selector))
        .await
    {
        Ok(list) => list.items,
        Err(e) => {
            checks.push(forbidden_or(e, &format!("pods of {key}")));
            return;
        }
    };
    let pods_what = format!("pods of {key} ({selector})");
    if pods.is_empty() {
        checks.push(check(
            Status::Info,
            &pods_what,
            "no pods match the target's selector",
        ));
        return;
    }
    let pending: Vec<String> = pods
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending"))
        .map(|p| {
            let why = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| {
                    c.iter()
                        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
                })
                .and_then(|c| c.message.clone())
                .unwrap_or_else(|| "not started yet".to_string());
            format!("{} ({why})", p.name_any())
        })
        .collect();
    if pending.is_empty() {
        checks.push(check(
            Status::Ok,
            &pods_what,
            format!("{} pods, none Pending", pods.len()),
        ));
    } else {
        checks.push(Check {
            status: Status::Fail,
            what: pods_what.clone(),
            detail: format!("{} of {} pods Pending: {}", pending.len(), pods.len(), pending.join(", ")),
            diagnosis: Some(Diagnosis {
                cause: "Pending pods count as unready: they add no capacity and hold back scale-ups",
                fix: "make them schedulable (see `kubectl describe pod`: resources, node selectors, taints, quotas)",
            }),
        });
    }
    if uses_cpu_utilization(obj) {
        let gaps: Vec<String> = pods
            .iter()
            .flat_map(|p| {
                let pod = p.name_any();
                pod_cpu_gaps(p)
                    .into_iter()
                    .map(move |c| format!("container {c} of Pod {pod}"))
            })
            .collect();
        let what = format!("CPU requests of {key}'s pods");
        if gaps.is_empty() {
            checks.push(check(Status::Ok, &what, "every container requests CPU"));
        } else {
            let first = gaps.first().cloned().unwrap_or_default();
            checks.push(failed(
                &what,
                format!("missing request for cpu in {}", gaps.join(", ")),
                &format!("missing request for cpu in {first}"),
            ));
        }
    }

    // PodMetrics: present and fresh for every running pod.
    let metrics = MetricsClient::new(client.clone());
    let what = format!("PodMetrics of {key}");
    match metrics.pod_metrics(&ns, &selector).await {
        Err(e) => {
            let text = e.to_string();
            if text.contains("403") || text.to_ascii_lowercase().contains("forbidden") {
                checks.push(check(
                    Status::Skipped,
                    &what,
                    format!("could not check {what}: forbidden for this user"),
                ));
            } else {
                checks.push(failed(&what, text.clone(), &text));
            }
        }
        Ok(snapshot) => {
            let now = Timestamp::now();
            let samples: BTreeMap<&str, Timestamp> = snapshot
                .pods
                .iter()
                .map(|s| (s.name.as_str(), s.timestamp))
                .collect();
            let running: Vec<String> = pods
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .map(ResourceExt::name_any)
                .collect();
            let missing: Vec<&String> = running
                .iter()
                .filter(|p| !samples.contains_key(p.as_str()))
                .collect();
            let stale: Vec<String> = running
                .iter()
                .filter_map(|p| {
                    let t = samples.get(p.as_str())?;
                    let age = now.duration_since(*t).as_secs_f64();
                    (age > FRESH.as_secs_f64()).then(|| format!("{p} ({age:.0}s old)"))
                })
                .collect();
            if missing.is_empty() && stale.is_empty() {
                checks.push(check(
                    Status::Ok,
                    &what,
                    format!("{} running pods, all with fresh samples", running.len()),
                ));
            } else {
                let mut detail = Vec::new();
                if !missing.is_empty() {
                    detail.push(format!(
                        "no sample for {}",
                        missing
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                if !stale.is_empty() {
                    detail.push(format!(
                        "samples older than {}s for {}",
                        FRESH.as_secs(),
                        stale.join(", ")
                    ));
                }
                checks.push(failed(
                    &what,
                    detail.join("; "),
                    "did not receive metrics for targeted pods",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every known failure text, as the components print it, maps to its cause.
    #[test]
    fn known_failure_texts_map_to_their_diagnosis() {
        let cases: &[(&str, &str)] = &[
            ("Metrics API not available", "Metrics API not available"),
            (
                "unable to get metrics for resource cpu: unable to fetch metrics from resource metrics API: the server is currently unable to handle the request (get pods.metrics.k8s.io)",
                "Metrics API not available",
            ),
            (
                "APIService v1beta1.metrics.k8s.io is not registered",
                "Metrics API not available",
            ),
            (
                "Failed to scrape node\" err=\"Get \\\"https://10.0.0.5:10250/metrics/resource\\\": x509: cannot validate certificate for 10.0.0.5 because it doesn't contain any IP SANs\" node=\"worker-1\"",
                "metrics-server cannot verify the kubelets' serving certificates (self-signed, without IP SANs)",
            ),
            (
                "Failed to scrape node\" err=\"Get \\\"https://192.168.1.20:10250/metrics/resource\\\": dial tcp 192.168.1.20:10250: i/o timeout\"",
                "metrics-server's scrapes of the kubelets on port 10250 time out",
            ),
            (
                "Get \"https://10.1.2.3:10250/metrics/resource\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
                "metrics-server's scrapes of the kubelets on port 10250 time out",
            ),
            (
                "FailedDiscoveryCheck failing or missing response from https://10.96.12.7:443/apis/metrics.k8s.io/v1beta1: Get \"https://10.96.12.7:443/apis/metrics.k8s.io/v1beta1\": context deadline exceeded",
                "the API server's aggregator gets no answer from metrics-server",
            ),
            (
                "FailedDiscoveryCheck failing or missing response from https://127.0.0.1:32753/apis/metrics.k8s.io/v1beta1: Get \"https://127.0.0.1:32753/apis/metrics.k8s.io/v1beta1\": dial tcp 127.0.0.1:32753: connect: connection refused",
                "nothing answers at metrics-server's address: metrics-server is not running (or not listening)",
            ),
            (
                "MissingEndpoints endpoints for service/metrics-server in \"kube-system\" have no addresses with port name \"https\"",
                "the APIService points at a Service with no ready metrics-server behind it",
            ),
            (
                "ServiceNotFound service/metrics-server in \"kube-system\" is not present",
                "the APIService points at a Service with no ready metrics-server behind it",
            ),
            (
                "the HPA was unable to compute the replica count: failed to get cpu utilization: missing request for cpu in container app of Pod web-7d9f-abcde",
                "a container of the target's pods has no CPU request, so CPU utilization cannot be computed",
            ),
            (
                "failed to get cpu utilization: did not receive metrics for targeted pods (pods might be unready)",
                "metrics-server has no samples for the target's pods yet",
            ),
        ];
        for (text, cause) in cases {
            let d = diagnose(text).unwrap_or_else(|| panic!("no diagnosis for {text:?}"));
            assert_eq!(d.cause, *cause, "{text}");
        }
        assert_eq!(diagnose("all checks passed"), None);
    }

    #[test]
    fn the_ip_san_fix_is_certificate_bootstrap_not_insecure_tls() {
        let d = diagnose(
            "x509: cannot validate certificate for 10.0.0.5 because it doesn't contain any IP SANs",
        )
        .expect("diagnosis");
        assert!(d.fix.contains("serverTLSBootstrap: true"));
        assert!(d.fix.contains("kubelet-serving CSRs"));
        assert!(d.fix.contains("do not use --kubelet-insecure-tls"));
    }

    #[test]
    fn the_aggregator_fix_names_enable_aggregator_routing() {
        let d = diagnose("failing or missing response from https://10.96.0.9:443/apis/metrics.k8s.io/v1beta1: i/o timeout")
            .expect("diagnosis");
        assert!(d.fix.contains("--enable-aggregator-routing=true") && d.fix.contains("kube-proxy"));
    }

    #[test]
    fn forbidden_reads_are_skipped_not_failed_and_the_summary_says_so() {
        let checks = vec![
            check(Status::Ok, "APIService v1beta1.metrics.k8s.io", "Available"),
            check(
                Status::Skipped,
                "Deployment kube-system/metrics-server",
                "could not check Deployment kube-system/metrics-server: forbidden for this user",
            ),
        ];
        let text = render(&checks);
        assert!(
            text.contains("[SKIP]") && text.contains("forbidden"),
            "{text}"
        );
        assert!(
            text.contains("healthy as far as visible: 1 checks could not be made"),
            "{text}"
        );
        let mut failing = checks.clone();
        failing.push(failed(
            "PodMetrics of a/b",
            "no sample for p",
            "did not receive metrics for targeted pods",
        ));
        let text = render(&failing);
        assert!(
            text.contains("[FAIL]")
                && text.contains("cause:")
                && text.contains("1 problem(s) found"),
            "{text}"
        );
    }
}
