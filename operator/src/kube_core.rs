//! Conversions between Kubernetes objects and the pure decision core's typed inputs.
//!
//! Pods are converted directly (the hot path: every pod of every target, every sync). The
//! spec has its own room, [`crate::reconcile::spec`], typed to typed and checked against the
//! `tidal calc` reader so both read an AutoScaler alike.

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerCondition;
use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use scaling::{ConditionStatus, PodPhase, PodReady, ResourceList};
use tidal_crds::{DecisionHistory, RecommendationRun, ScaleEventRecord};

/// Kubernetes time → decision time.
pub fn time_in(t: &Timestamp) -> scaling::Time {
    scaling::Time::from_unix_nanos(t.as_nanosecond())
}

/// Decision time → Kubernetes time. Instants outside jiff's range (never produced by the
/// core for real inputs) are clamped rather than panicking.
pub fn time_out(t: scaling::Time) -> Timestamp {
    Timestamp::from_nanosecond(t.unix_nanos()).unwrap_or(if t.unix_nanos() < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

fn requests(list: Option<&BTreeMap<String, Quantity>>) -> ResourceList {
    list.into_iter()
        .flatten()
        .filter_map(|(name, q)| match scaling::Quantity::parse(&q.0) {
            Ok(parsed) => Some((name.clone(), parsed.milli_value())),
            Err(err) => {
                // The API server validated it; a value we cannot read counts as missing, which
                // fails the metric with upstream's "missing request" error instead of guessing.
                tracing::warn!(resource = %name, quantity = %q.0, error = %err, "unreadable request");
                None
            }
        })
        .collect()
}

fn container(c: &Container) -> scaling::Container {
    scaling::Container {
        name: c.name.clone(),
        requests: requests(c.resources.as_ref().and_then(|r| r.requests.as_ref())),
        restart_always: c.restart_policy.as_deref() == Some("Always"),
    }
}

/// A cached pod → what the decision reads of it (contract 1.6).
pub fn pod(p: &Pod) -> scaling::Pod {
    let status = p.status.as_ref();
    let spec = p.spec.as_ref();
    scaling::Pod {
        name: p.metadata.name.clone().unwrap_or_default(),
        labels: p.metadata.labels.clone().unwrap_or_default(),
        deleting: p.metadata.deletion_timestamp.is_some(),
        phase: match status.and_then(|s| s.phase.as_deref()) {
            Some("Pending") => PodPhase::Pending,
            Some("Running") => PodPhase::Running,
            Some("Succeeded") => PodPhase::Succeeded,
            Some("Failed") => PodPhase::Failed,
            _ => PodPhase::Unknown,
        },
        start_time: status
            .and_then(|s| s.start_time.as_ref())
            .map(|t| time_in(&t.0)),
        ready: status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .map(|c| PodReady {
                status: condition_status(&c.status),
                last_transition_time: c
                    .last_transition_time
                    .as_ref()
                    .map_or(scaling::Time::ZERO, |t| time_in(&t.0)),
            }),
        containers: spec
            .map(|s| s.containers.iter().map(container).collect())
            .unwrap_or_default(),
        init_containers: spec
            .and_then(|s| s.init_containers.as_ref())
            .map(|c| c.iter().map(container).collect())
            .unwrap_or_default(),
        pod_requests: spec
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref())
            .map(|r| requests(Some(r))),
    }
}

fn condition_status(s: &str) -> ConditionStatus {
    match s {
        "True" => ConditionStatus::True,
        "False" => ConditionStatus::False,
        _ => ConditionStatus::Unknown,
    }
}

/// Stored conditions → decision conditions.
pub fn conditions_in(
    list: Option<&Vec<HorizontalPodAutoscalerCondition>>,
) -> Vec<scaling::Condition> {
    list.into_iter()
        .flatten()
        .map(|c| scaling::Condition {
            kind: c.type_.clone(),
            status: c.status.clone(),
            reason: c.reason.clone().unwrap_or_default(),
            message: c.message.clone().unwrap_or_default(),
            last_transition_time: c.last_transition_time.as_ref().map(|t| time_in(&t.0)),
        })
        .collect()
}

/// Decision conditions → stored conditions.
pub fn conditions_out(list: &[scaling::Condition]) -> Vec<HorizontalPodAutoscalerCondition> {
    list.iter()
        .map(|c| HorizontalPodAutoscalerCondition {
            type_: c.kind.clone(),
            status: c.status.clone(),
            reason: Some(c.reason.clone()),
            message: Some(c.message.clone()),
            last_transition_time: c.last_transition_time.map(|t| Time(time_out(t))),
        })
        .collect()
}

/// Persisted history → decision memory, restored at `now`: the recommendation runs as
/// `scaling::persist` restores them (the last run lasting until `now`). A history written by a
/// version that stored one recommendation per sync is read as the runs of those points.
pub fn history_in(h: &DecisionHistory, now: scaling::Time) -> scaling::History {
    let events = |list: &[ScaleEventRecord]| {
        list.iter()
            .map(|e| scaling::ScaleEvent {
                replica_change: e.replica_change,
                timestamp: time_in(&e.timestamp.0),
                outdated: e.outdated,
            })
            .collect()
    };
    let runs: Vec<scaling::persist::RecommendationRun> = if h.recommendation_runs.is_empty() {
        let points: Vec<scaling::Recommendation> = h
            .recommendations
            .iter()
            .map(|r| scaling::Recommendation {
                replicas: r.replicas,
                timestamp: time_in(&r.timestamp.0),
            })
            .collect();
        // Every point the old version kept: no horizon is known here, and reading more is the
        // safe side.
        let horizon = scaling::Duration::from_nanos(
            points
                .iter()
                .map(|p| now.unix_nanos() - p.timestamp.unix_nanos())
                .max()
                .unwrap_or(0)
                .max(0),
        );
        scaling::persist::recommendation_runs(&points, now, horizon)
    } else {
        h.recommendation_runs
            .iter()
            .map(|r| scaling::persist::RecommendationRun {
                replicas: r.replicas,
                since: r.since.as_ref().map(|t| time_in(&t.0)),
            })
            .collect()
    };
    scaling::History {
        recommendations: Some(scaling::persist::recommendations_from_runs(&runs, now)),
        scale_up_events: events(&h.scale_up_events),
        scale_down_events: events(&h.scale_down_events),
    }
}

/// The persisted scale intent → the core's.
pub fn intent_in(r: &tidal_crds::ScaleIntentRecord) -> scaling::ScaleIntent {
    scaling::ScaleIntent {
        from: r.from_replicas,
        to: r.to_replicas,
        at: time_in(&r.timestamp.0),
        recommendation: r.recommended_replicas,
    }
}

/// The core's scale intent → its persisted form.
pub fn intent_out(i: &scaling::ScaleIntent) -> tidal_crds::ScaleIntentRecord {
    tidal_crds::ScaleIntentRecord {
        from_replicas: i.from,
        to_replicas: i.to,
        // Whole seconds rounded up, as `history_out` stores instants: the recommendation and
        // the scale event then count a fraction of a second longer, never shorter.
        timestamp: Time(time_out(scaling::persist::ceil_to_second(i.at))),
        recommended_replicas: i.recommendation,
    }
}

/// The scale intent persisted in `obj`'s status, if any.
pub fn persisted_intent(obj: &tidal_crds::AutoScaler) -> Option<scaling::ScaleIntent> {
    obj.status
        .as_ref()
        .and_then(|s| s.tidal.as_ref())
        .and_then(|t| t.scale_intent.as_ref())
        .map(intent_in)
}

/// Decision memory → persisted history, at the decision's instant `now`: the recommendations
/// as runs of equal values within `horizon` (the longest stabilization window, see
/// `scaling::persist`), so a sync that recommends the same size again persists the same thing;
/// scale events as they are. Instants are stored in whole seconds, rounded up: a recommendation
/// or scale event then counts a fraction of a second longer, never shorter.
pub fn history_out(
    h: &scaling::History,
    now: scaling::Time,
    horizon: scaling::Duration,
) -> DecisionHistory {
    let events = |list: &[scaling::ScaleEvent]| {
        list.iter()
            .map(|e| ScaleEventRecord {
                replica_change: e.replica_change,
                timestamp: Time(time_out(scaling::persist::ceil_to_second(e.timestamp))),
                outdated: e.outdated,
            })
            .collect()
    };
    let runs = scaling::persist::recommendation_runs(
        h.recommendations.as_deref().unwrap_or_default(),
        now,
        horizon,
    );
    DecisionHistory {
        recommendation_runs: runs
            .iter()
            .map(|r| RecommendationRun {
                replicas: r.replicas,
                since: r.since.map(|t| Time(time_out(t))),
            })
            .collect(),
        recommendations: Vec::new(),
        scale_up_events: events(&h.scale_up_events),
        scale_down_events: events(&h.scale_down_events),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_persisted_intent_keeps_its_recommendation_and_rounds_its_instant_up() {
        let at = scaling::Time::parse_rfc3339("2026-12-04T10:00:00.250Z").expect("time");
        let intent = scaling::ScaleIntent {
            from: 10,
            to: 12,
            at,
            recommendation: Some(12),
        };
        let json = serde_json::to_value(intent_out(&intent)).expect("json");
        assert_eq!(json["recommendedReplicas"], 12);
        let back: tidal_crds::ScaleIntentRecord = serde_json::from_value(json).expect("record");
        let back = intent_in(&back);
        assert_eq!(back.recommendation, Some(12));
        assert_eq!(
            back.at,
            scaling::Time::parse_rfc3339("2026-12-04T10:00:01Z").expect("time")
        );
    }

    #[test]
    fn go_zero_time_survives_the_round_trip() {
        let zero = scaling::Time::ZERO;
        assert_eq!(time_in(&time_out(zero)), zero);
    }

    #[test]
    fn pods_keep_readiness_requests_and_sidecars() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-1", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}],
                     "initContainers": [{"name": "proxy", "restartPolicy": "Always",
                                         "resources": {"requests": {"cpu": "100m"}}}]},
            "status": {"phase": "Running", "startTime": "2026-01-01T00:00:00Z",
                       "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": "2026-01-01T00:00:10Z"}]}
        }))
        .expect("pod");
        let p = super::pod(&pod);
        assert_eq!(p.name, "web-1");
        assert_eq!(p.phase, PodPhase::Running);
        assert_eq!(
            scaling::resource_get(&p.containers[0].requests, "cpu"),
            Some(500)
        );
        assert_eq!(
            scaling::resource_get(&p.containers[0].requests, "memory"),
            Some(1_073_741_824_000)
        );
        assert!(p.init_containers[0].restart_always);
        let ready = p.ready.expect("ready condition");
        assert_eq!(ready.status, ConditionStatus::False);
        assert_eq!(
            ready.last_transition_time,
            scaling::Time::parse_rfc3339("2026-01-01T00:00:10Z").expect("time")
        );
    }

    #[test]
    fn a_pod_without_ready_condition_has_none() {
        let pod: Pod =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}})).expect("pod");
        let p = super::pod(&pod);
        assert!(p.ready.is_none() && p.start_time.is_none());
        assert_eq!(p.phase, PodPhase::Unknown);
    }

    #[test]
    fn history_round_trips_as_runs_with_outdated_flags_and_rounded_up_instants() {
        let t = |s: &str| scaling::Time::parse_rfc3339(s).expect("time");
        let rec = |replicas, at| scaling::Recommendation {
            replicas,
            timestamp: t(at),
        };
        let history = scaling::History {
            recommendations: Some(vec![
                rec(5, "2026-03-01T10:00:00Z"),
                rec(3, "2026-03-01T09:58:00.5Z"),
                rec(3, "2026-03-01T09:58:15Z"),
                rec(4, "2026-03-01T09:50:00Z"),
            ]),
            scale_up_events: vec![scaling::ScaleEvent {
                replica_change: 2,
                timestamp: t("2026-03-01T09:59:00.2Z"),
                outdated: true,
            }],
            scale_down_events: vec![],
        };
        let now = t("2026-03-01T10:00:00Z");
        let out = history_out(&history, now, scaling::Duration::from_seconds(300));
        let json = serde_json::to_value(&out).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                // 09:50 is older than the 300 s horizon; 3 began at 09:58:00.5, stored as :01.
                "recommendationRuns": [{"replicas": 3}, {"replicas": 5, "since": "2026-03-01T10:00:00Z"}],
                "scaleUpEvents": [{"replicaChange": 2, "timestamp": "2026-03-01T09:59:01Z", "outdated": true}],
                "scaleDownEvents": []
            })
        );
        let back: DecisionHistory = serde_json::from_value(json).expect("history");
        let later = t("2026-03-01T10:01:00Z");
        let restored = history_in(&back, later);
        assert_eq!(
            restored.recommendations,
            Some(vec![
                rec(3, "2026-03-01T09:59:59.999999999Z"),
                rec(5, "2026-03-01T10:00:00Z"),
                rec(5, "2026-03-01T10:01:00Z"),
            ]),
            "3 until 5 began, 5 until the restore"
        );
        assert_eq!(
            restored.scale_up_events[0].timestamp,
            t("2026-03-01T09:59:01Z")
        );
        assert!(restored.scale_up_events[0].outdated);
        // Persisted again: the same runs.
        assert_eq!(
            history_out(&restored, later, scaling::Duration::from_seconds(300)).recommendation_runs,
            out.recommendation_runs
        );
    }

    #[test]
    fn a_history_of_one_recommendation_per_sync_is_read_as_runs() {
        let old: DecisionHistory = serde_json::from_value(serde_json::json!({
            "recommendations": [
                {"replicas": 2, "timestamp": "2026-03-01T10:00:30Z"},
                {"replicas": 6, "timestamp": "2026-03-01T10:00:00Z"},
                {"replicas": 6, "timestamp": "2026-03-01T10:00:15Z"}
            ]
        }))
        .expect("history");
        let t = |s: &str| scaling::Time::parse_rfc3339(s).expect("time");
        let restored = history_in(&old, t("2026-03-01T10:01:00Z"));
        let recs = restored.recommendations.expect("recommendations");
        let replicas: Vec<i32> = recs.iter().map(|r| r.replicas).collect();
        assert_eq!(replicas, [6, 2, 2]);
        // 6 counts until 2 began (later than its last point at :15, never earlier).
        assert_eq!(recs[0].timestamp, t("2026-03-01T10:00:29.999999999Z"));
    }

    #[test]
    fn conditions_round_trip() {
        let conditions = vec![scaling::Condition {
            kind: "AbleToScale".into(),
            status: "True".into(),
            reason: "ReadyForNewScale".into(),
            message: "recommended size matches current size".into(),
            last_transition_time: Some(
                scaling::Time::parse_rfc3339("2026-03-01T10:00:00Z").expect("t"),
            ),
        }];
        assert_eq!(
            conditions_in(Some(&conditions_out(&conditions))),
            conditions
        );
    }
}
