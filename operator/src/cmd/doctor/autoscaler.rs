//! One AutoScaler's side of the pipeline: its own conditions (metrics, and another writer of
//! its target's replicas), its target's pods (Pending, CPU requests) and their PodMetrics
//! (present and fresh).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerCondition;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use tidal_crds::AutoScaler;
use tidal_metrics_client::MetricsClient;

use super::diagnosis::Diagnosis;
use super::report::{Check, Status, check, failed, forbidden_or};
use crate::scale::Resolver;

/// PodMetrics older than this are stale: metrics-server's resolution is at most 60s by
/// default, so two missed scrapes and then some.
const FRESH: Duration = Duration::from_secs(150);

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

/// What another writer of the target's replicas means and how to stop it.
const FIGHT: Diagnosis = Diagnosis {
    cause: "another field manager sets the target's spec.replicas, and Tidal sets it back: replicas oscillate",
    fix: "stop the other writer from setting replicas (Argo CD: ignoreDifferences on /spec/replicas; \
          Helm or kustomize: leave replicas out of the manifest; another autoscaler: remove it), \
          or set spec.tidal.replicaFight.policy: Yield to step back for a while",
};

/// The `ReplicaFight` line of `key`'s report: a failure while the fight is on (Tidal's writes
/// are undone, or it yields), worth knowing once it stopped, nothing when there never was one.
pub(super) fn replica_fight(
    key: &str,
    conditions: &[HorizontalPodAutoscalerCondition],
) -> Option<Check> {
    let c = conditions
        .iter()
        .find(|c| c.type_ == scaling::conditions::REPLICA_FIGHT)?;
    let what = format!("replicas of {key}'s target");
    let detail = format!(
        "ReplicaFight={} ({}: {})",
        c.status,
        c.reason.as_deref().unwrap_or_default(),
        c.message.as_deref().unwrap_or_default()
    );
    Some(if c.status == "True" {
        Check {
            status: Status::Fail,
            what,
            detail,
            diagnosis: Some(FIGHT),
        }
    } else {
        check(Status::Info, what, detail)
    })
}

/// What a stale or missing metric under a policy means and what to do.
const METRIC_POLICY: Diagnosis = Diagnosis {
    cause: "a metric with a spec.tidal.metricPolicies entry is stale or missing, and its policy decides in its place",
    fix: "find why the metric stopped (metrics-server or the adapter: its logs, `kubectl get apiservice`;           a node whose kubelet stopped answering); `tidal explain` shows each sample's age and what the policy did",
};

/// The `MetricPolicy` line of `key`'s report: a failure while a policy stands in for a stale
/// or missing metric (scaling works only partly until the metric is back), nothing otherwise.
pub(super) fn metric_policy(
    key: &str,
    conditions: &[HorizontalPodAutoscalerCondition],
) -> Option<Check> {
    let c = conditions
        .iter()
        .find(|c| c.type_ == scaling::conditions::METRIC_POLICY && c.status == "True")?;
    Some(Check {
        status: Status::Fail,
        what: format!("metrics of {key}"),
        detail: format!(
            "MetricPolicy=True ({}: {})",
            c.reason.as_deref().unwrap_or_default(),
            c.message.as_deref().unwrap_or_default()
        ),
        diagnosis: Some(METRIC_POLICY),
    })
}

/// The target's pods, their PodMetrics and requests, and the AutoScaler's own conditions.
pub(super) async fn check_one(client: &Client, obj: &AutoScaler, checks: &mut Vec<Check>) {
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
    checks.extend(replica_fight(&key, &conditions));
    checks.extend(metric_policy(&key, &conditions));

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
            // By the answer's status, not its text: the text names the namespace, and a test
            // namespace such as `doctor-ok-31016-2-6403` contains "403".
            if matches!(
                e,
                tidal_metrics_client::Error::Status {
                    code: 401 | 403,
                    ..
                }
            ) {
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

    fn condition(status: &str, reason: &str) -> HorizontalPodAutoscalerCondition {
        HorizontalPodAutoscalerCondition {
            type_: "ReplicaFight".into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some("spec.replicas changed from 2 to 5 by manager argocd".into()),
            last_transition_time: None,
        }
    }

    #[test]
    fn a_replica_fight_fails_the_check_with_the_manager_cause_and_fix() {
        let got = replica_fight(
            "shop/web",
            &[condition("True", "ReplicasChangedByOtherManager")],
        )
        .expect("a check");
        assert_eq!(got.status, Status::Fail);
        assert!(got.detail.contains("by manager argocd"), "{}", got.detail);
        assert!(
            got.diagnosis
                .is_some_and(|d| d.fix.contains("ignoreDifferences"))
        );
    }

    #[test]
    fn a_policy_standing_in_for_a_stale_metric_fails_the_check_with_the_cause() {
        let mut c = condition("True", "MetricStale");
        c.type_ = "MetricPolicy".into();
        c.message =
            Some("External metric queue is stale: policy Hold keeps the current size".into());
        let got = metric_policy("shop/web", &[c.clone()]).expect("a line");
        assert_eq!(got.status, Status::Fail);
        assert!(
            got.detail.contains("MetricStale") && got.detail.contains("queue"),
            "{}",
            got.detail
        );
        assert!(got.diagnosis.is_some());
        c.status = "False".into();
        assert!(metric_policy("shop/web", &[c]).is_none());
    }

    #[test]
    fn an_ended_fight_is_information_and_no_fight_is_no_line() {
        let got = replica_fight("shop/web", &[condition("False", "NoRecentReplicaChange")])
            .expect("a check");
        assert_eq!(got.status, Status::Info);
        assert_eq!(replica_fight("shop/web", &[]), None);
    }
}
