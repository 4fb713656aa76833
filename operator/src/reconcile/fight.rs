//! The replica-fight check of one reconcile: compares the target's replicas with what this
//! process last saw or wrote, reads the target's managedFields only when they differ, and asks
//! the pure `scaling::fight` what to report and whether to yield.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use k8s_openapi::jiff::Timestamp;
use scaling::ScaleRead;
use scaling::fight::{self, Assessment, FieldsEntry, Policy, Seen};
use tidal_crds::{AutoScaler, Mode, ReplicaFightPolicy};

use super::observe::Observed;
use super::outcome::Stance;
use crate::hpa_conflict::Overlap;
use crate::kube_core;

/// `spec.tidal.replicaFight` as the core reads it (default `Report`).
pub fn policy(obj: &AutoScaler) -> Policy {
    let spec = obj
        .spec
        .tidal
        .as_ref()
        .and_then(|t| t.replica_fight.as_ref());
    match spec.and_then(|s| s.policy).unwrap_or_default() {
        ReplicaFightPolicy::Report => Policy::Report,
        ReplicaFightPolicy::Yield => Policy::Yield(
            spec.and_then(|s| s.yield_seconds)
                .map_or(fight::DEFAULT_YIELD, |s| {
                    scaling::Duration::from_seconds(i64::from(s))
                }),
        ),
    }
}

/// The target's identity in the replicas memory: `apiVersion/Kind/name`.
pub fn target_id(obj: &AutoScaler) -> String {
    let r = &obj.spec.scale_target_ref;
    format!(
        "{}/{}/{}",
        r.api_version.as_deref().unwrap_or_default(),
        r.kind,
        r.name
    )
}

/// The replicas read in this reconcile, if the scale was read.
pub fn read_replicas(observed: &Observed) -> Option<i32> {
    match &observed.scale {
        ScaleRead::Read(s) => Some(s.spec_replicas),
        ScaleRead::Failed(_) => None,
    }
}

/// Whether a change of replicas can be a fight in this stance: only while Tidal is the one that
/// writes. Shadow and Paused never write; beside a built-in HPA the HPA writes and
/// `ConflictingHPA` already says so.
pub fn watches(stance: &Stance) -> bool {
    stance.mode == Mode::Active && stance.overlap == Overlap::None
}

/// The fight check of `obj` at `now`: `seen` is what the last reconcile of this term left.
pub async fn check(
    obj: &AutoScaler,
    stance: &Stance,
    observed: &Observed,
    seen: Option<&Seen>,
    now: Timestamp,
) -> Assessment {
    let now = kube_core::time_in(&now);
    let change = read_replicas(observed)
        .filter(|_| watches(stance))
        .and_then(|replicas| fight::change(seen, &target_id(obj), replicas));
    let detected = match (change, &observed.target) {
        (Some(change), Some((target, _))) => {
            let fields = target
                .managed_fields()
                .await
                .map(|entries| entries.iter().map(fields_entry).collect::<Vec<_>>())
                .map_err(|e| e.to_string());
            let last_write = seen.and_then(|s| s.last_write.as_ref());
            Some(fight::report(
                change,
                fields.as_deref().map_err(Clone::clone),
                last_write,
                now,
            ))
        }
        _ => None,
    };
    if let Some(f) = &detected {
        tracing::warn!(manager = %f.manager, from = f.from, to = f.to, "replicas changed by another field manager");
    }
    let stored = obj
        .status
        .as_ref()
        .and_then(|s| s.tidal.as_ref())
        .and_then(|t| t.last_replica_fight.clone());
    fight::assess(policy(obj), detected, stored, now)
}

/// One managedFields entry as the core reads it.
pub fn fields_entry(e: &ManagedFieldsEntry) -> FieldsEntry {
    FieldsEntry {
        manager: e.manager.clone().unwrap_or_default(),
        operation: e.operation.clone().unwrap_or_default(),
        subresource: e.subresource.clone().unwrap_or_default(),
        time: e.time.as_ref().map(|t| kube_core::time_in(&t.0)),
        fields: e
            .fields_v1
            .as_ref()
            .map(|f| f.0.clone())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, Time};

    fn autoscaler(tidal: serde_json::Value) -> AutoScaler {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "autoscaling.tidal.dev/v1alpha1", "kind": "AutoScaler",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "maxReplicas": 10, "tidal": tidal}
        }))
        .expect("autoscaler")
    }

    #[test]
    fn without_a_replica_fight_setting_the_policy_is_report() {
        assert_eq!(policy(&autoscaler(serde_json::json!({}))), Policy::Report);
        assert_eq!(
            policy(&autoscaler(serde_json::json!({"replicaFight": {}}))),
            Policy::Report
        );
    }

    #[test]
    fn yield_takes_its_seconds_or_five_minutes() {
        assert_eq!(
            policy(&autoscaler(
                serde_json::json!({"replicaFight": {"policy": "Yield", "yieldSeconds": 90}})
            )),
            Policy::Yield(scaling::Duration::from_seconds(90))
        );
        assert_eq!(
            policy(&autoscaler(
                serde_json::json!({"replicaFight": {"policy": "Yield"}})
            )),
            Policy::Yield(fight::DEFAULT_YIELD)
        );
    }

    #[test]
    fn the_target_id_names_version_kind_and_name() {
        assert_eq!(
            target_id(&autoscaler(serde_json::json!({}))),
            "apps/v1/Deployment/web"
        );
    }

    #[test]
    fn managed_fields_entries_keep_manager_operation_subresource_time_and_fields() {
        let entry: ManagedFieldsEntry = ManagedFieldsEntry {
            manager: Some("kubectl".into()),
            operation: Some("Update".into()),
            subresource: Some("scale".into()),
            time: Some(Time("2026-03-01T10:00:00Z".parse().expect("timestamp"))),
            fields_v1: Some(FieldsV1(serde_json::json!({"f:spec": {"f:replicas": {}}}))),
            ..ManagedFieldsEntry::default()
        };
        let got = fields_entry(&entry);
        assert_eq!(
            (
                got.manager.as_str(),
                got.operation.as_str(),
                got.subresource.as_str()
            ),
            ("kubectl", "Update", "scale")
        );
        assert_eq!(
            got.time.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-03-01T10:00:00Z")
        );
        assert!(fight::owns_replicas(&got.fields));
    }
}
