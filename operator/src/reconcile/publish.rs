//! Publishing an outcome: events on the AutoScaler, the status write, and the Prometheus
//! series of the decision.

use std::collections::HashMap;
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use tidal_crds::{AutoScaler, AutoScalerStatus};
use tokio::sync::Mutex;

use super::outcome::MetricComputation;
use crate::metrics::Metrics;
use crate::{Error, scale};

/// The event recorders of this process.
pub struct Events {
    client: Client,
    /// Counts status write conflicts and how their retries end.
    metrics: Metrics,
    /// Identity events are reported under.
    reporter: Reporter,
    /// Recorder for events outside the decision (FailedUpdateStatus).
    recorder: Recorder,
    /// Decision events by `(namespace/name, reason)`: the last message and the recorder that
    /// published it. kube's recorder folds every event with the same object and reason into
    /// one series that keeps the *first* message, so a second "New size: N" would only bump
    /// the count of the first. Upstream counts only identical messages together; a changed
    /// message is a new event, published through a fresh recorder.
    pub(super) recorders: Mutex<HashMap<(String, String), (String, Recorder)>>,
}

impl Events {
    /// Recorders reporting as `reporter`; status write conflicts are counted in `metrics`.
    pub fn new(client: Client, reporter: Reporter, metrics: Metrics) -> Self {
        Events {
            recorder: Recorder::new(client.clone(), reporter.clone()),
            client,
            metrics,
            reporter,
            recorders: Mutex::new(HashMap::new()),
        }
    }

    /// Publishes the decision's events on `obj`; `shadow` notes that the scale was not written.
    pub async fn publish(&self, obj: &AutoScaler, events: &[scaling::Event], shadow: bool) {
        let reference = obj.object_ref(&());
        for event in events {
            let note = if shadow {
                format!("(shadow mode, scale not written) {}", event.message)
            } else {
                event.message.clone()
            };
            let recorder = {
                let mut recorders = self.recorders.lock().await;
                let slot = (scale::key(obj), event.reason.clone());
                match recorders.get(&slot) {
                    Some((last, recorder)) if *last == note => recorder.clone(),
                    _ => {
                        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
                        recorders.insert(slot, (note.clone(), recorder.clone()));
                        recorder
                    }
                }
            };
            let result = recorder
                .publish(
                    &KubeEvent {
                        type_: match event.kind {
                            scaling::EventType::Normal => EventType::Normal,
                            scaling::EventType::Warning => EventType::Warning,
                        },
                        reason: event.reason.clone(),
                        note: Some(note),
                        action: "Reconcile".into(),
                        secondary: None,
                    },
                    &reference,
                )
                .await;
            if let Err(err) = result {
                tracing::warn!(reason = %event.reason, error = %err, "could not record event");
            }
        }
    }

    /// Announces `intent` in the status (a merge patch of `status.tidal.scaleIntent` alone, so
    /// it cannot conflict) and returns the AutoScaler as written, for the status write that
    /// follows the scale write and clears it.
    pub async fn write_intent(
        &self,
        obj: &AutoScaler,
        intent: &scaling::ScaleIntent,
    ) -> Result<AutoScaler, Error> {
        let api: Api<AutoScaler> =
            Api::namespaced(self.client.clone(), &obj.namespace().unwrap_or_default());
        let patch = serde_json::json!({
            "status": {"tidal": {"scaleIntent": crate::kube_core::intent_out(intent)}}
        });
        api.patch_status(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(Error::from)
    }

    /// Writes `status` when it differs from the stored one.
    pub async fn write_status(
        &self,
        obj: &AutoScaler,
        status: AutoScalerStatus,
    ) -> Result<(), Error> {
        let unchanged = match &obj.status {
            Some(stored) => *stored == status,
            None => status == AutoScalerStatus::default(),
        };
        if unchanged {
            return Ok(());
        }
        let api: Api<AutoScaler> =
            Api::namespaced(self.client.clone(), &obj.namespace().unwrap_or_default());
        let name = obj.name_any();
        let mut updated = obj.clone();
        updated.status = Some(status.clone());
        // A full-object UpdateStatus with the cached resourceVersion, as upstream. The cached
        // object is often one write behind (this controller's own previous status write, or a
        // spec edit not yet seen), so a conflict is retried once on a fresh read instead of
        // losing the status until the next sync.
        let err = match api
            .replace_status(&name, &PostParams::default(), &updated)
            .await
        {
            Ok(_) => return Ok(()),
            Err(err) if is_conflict(&err) => err,
            Err(kube::Error::Api(e)) if e.code == 404 => {
                // Deleted since the cache saw it: no status, and no event about an object
                // that no longer exists.
                tracing::debug!("the AutoScaler was deleted; no status to write");
                return Ok(());
            }
            Err(err) => return Err(self.status_write_failed(obj, err).await),
        };
        self.metrics.status_write_conflicts.inc();
        tracing::debug!(error = %err, "status write conflicted; retrying on a fresh read");
        let retried = |result: &str| {
            self.metrics
                .status_write_conflict_retries
                .with_label_values(&[result])
                .inc();
        };
        let mut fresh = match api.get(&name).await {
            Ok(fresh) => fresh,
            Err(kube::Error::Api(e)) if e.code == 404 => {
                retried("gone");
                tracing::debug!("the AutoScaler was deleted; no status to write");
                return Ok(());
            }
            Err(err) => {
                // As before the retry existed: a conflict is not a failed reconcile, and the
                // next sync writes the status again.
                retried("error");
                tracing::warn!(error = %err, "re-reading the AutoScaler after a status conflict failed; the next sync writes again");
                return Ok(());
            }
        };
        // Only the status is ours to re-apply; the fresh read's resourceVersion is what makes
        // the write land.
        fresh.status = Some(status);
        match api
            .replace_status(&name, &PostParams::default(), &fresh)
            .await
        {
            Ok(_) => {
                retried("written");
                Ok(())
            }
            Err(err) if is_conflict(&err) => {
                self.metrics.status_write_conflicts.inc();
                retried("conflict");
                tracing::debug!("status write conflicted again; the next sync writes again");
                Ok(())
            }
            Err(err) => {
                retried("error");
                Err(self.status_write_failed(obj, err).await)
            }
        }
    }

    /// Records `FailedUpdateStatus` on `obj` and returns the error.
    async fn status_write_failed(&self, obj: &AutoScaler, err: kube::Error) -> Error {
        let reference = obj.object_ref(&());
        let _ = self
            .recorder
            .publish(
                &KubeEvent {
                    type_: EventType::Warning,
                    reason: "FailedUpdateStatus".into(),
                    note: Some(err.to_string()),
                    action: "UpdateStatus".into(),
                    secondary: None,
                },
                &reference,
            )
            .await;
        err.into()
    }
}

fn is_conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 409)
}

/// Sets the per-AutoScaler gauges from the new status and counts the decision under its
/// `AbleToScale` reason.
pub fn decision_series(
    metrics: &Metrics,
    obj: &AutoScaler,
    status: &AutoScalerStatus,
    reason: Option<&str>,
) {
    let namespace = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let labels = [namespace.as_str(), name.as_str()];
    metrics
        .desired_replicas
        .with_label_values(&labels)
        .set(i64::from(status.desired_replicas));
    metrics
        .current_replicas
        .with_label_values(&labels)
        .set(i64::from(status.current_replicas.unwrap_or_default()));
    if let Some(reason) = reason {
        metrics
            .decisions
            .with_label_values(&[&namespace, &name, reason])
            .inc();
    }
}

/// Counts one change of `obj`'s target replicas by `manager` (`tidal_replica_fights_total`).
pub fn replica_fight(metrics: &Metrics, obj: &AutoScaler, manager: &str) {
    let namespace = obj.namespace().unwrap_or_default();
    metrics
        .replica_fights
        .with_label_values(&[namespace.as_str(), obj.name_any().as_str(), manager])
        .inc();
}

/// Counts each metric computation and observes how long fetching it took (upstream times the
/// whole `computeReplicasForMetric`, which is mostly that fetch; the arithmetic is
/// microseconds). A metric without a fetch time observes zero.
pub fn metric_computations(
    metrics: &Metrics,
    computations: &[MetricComputation],
    fetch_times: &[Duration],
) {
    for (i, c) in computations.iter().enumerate() {
        let labels = [c.action.label(), c.error.label(), c.metric_type];
        metrics.metric_computations.with_label_values(&labels).inc();
        metrics
            .metric_computation_duration
            .with_label_values(&labels)
            .observe(
                fetch_times
                    .get(i)
                    .copied()
                    .unwrap_or_default()
                    .as_secs_f64(),
            );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Action, ErrorKind};
    use crate::mock_api::{Answer, api_server};
    use axum::http::Method;
    use serde_json::{Value, json};

    const OBJECT: &str = "/apis/autoscaling.tidal.dev/v1alpha1/namespaces/shop/autoscalers/web";

    fn autoscaler(resource_version: &str, desired: i32) -> Value {
        json!({
            "apiVersion": "autoscaling.tidal.dev/v1alpha1", "kind": "AutoScaler",
            "metadata": {"name": "web", "namespace": "shop", "resourceVersion": resource_version},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "maxReplicas": 10},
            "status": {"desiredReplicas": desired}
        })
    }

    fn events(client: Client, metrics: &Metrics) -> Events {
        Events::new(
            client,
            Reporter {
                controller: "tidal".into(),
                instance: None,
            },
            metrics.clone(),
        )
    }

    fn new_status(desired: i32) -> AutoScalerStatus {
        AutoScalerStatus {
            desired_replicas: desired,
            ..AutoScalerStatus::default()
        }
    }

    fn cached() -> AutoScaler {
        serde_json::from_value(autoscaler("1", 2)).expect("autoscaler")
    }

    #[tokio::test]
    async fn a_status_conflict_is_retried_once_on_a_fresh_read_and_counted() {
        let (client, seen) = api_server(vec![
            Answer::Conflict,
            Answer::Ok(autoscaler("7", 2)),
            Answer::Echo,
        ]);
        let metrics = Metrics::new().expect("metrics");
        events(client, &metrics)
            .write_status(&cached(), new_status(5))
            .await
            .expect("the retry writes the status");

        let seen = seen.lock().expect("seen");
        let calls: Vec<(Method, &str)> = seen
            .iter()
            .map(|(m, p, _)| (m.clone(), p.as_str()))
            .collect();
        let status_path = format!("{OBJECT}/status");
        assert_eq!(
            calls,
            [
                (Method::PUT, status_path.as_str()),
                (Method::GET, OBJECT),
                (Method::PUT, status_path.as_str()),
            ]
        );
        let retry = &seen[2].2;
        assert_eq!(
            retry["metadata"]["resourceVersion"], "7",
            "the fresh read's version"
        );
        assert_eq!(retry["status"]["desiredReplicas"], 5, "the new status");
        assert_eq!(metrics.status_write_conflicts.get(), 1);
        assert_eq!(
            metrics
                .status_write_conflict_retries
                .with_label_values(&["written"])
                .get(),
            1
        );
    }

    #[tokio::test]
    async fn a_second_status_conflict_ends_the_retries_without_failing_the_reconcile() {
        let (client, seen) = api_server(vec![
            Answer::Conflict,
            Answer::Ok(autoscaler("7", 2)),
            Answer::Conflict,
        ]);
        let metrics = Metrics::new().expect("metrics");
        events(client, &metrics)
            .write_status(&cached(), new_status(5))
            .await
            .expect("a conflict is not a failed reconcile");
        assert_eq!(seen.lock().expect("seen").len(), 3, "one retry only");
        assert_eq!(metrics.status_write_conflicts.get(), 2);
        assert_eq!(
            metrics
                .status_write_conflict_retries
                .with_label_values(&["conflict"])
                .get(),
            1
        );
    }

    #[tokio::test]
    async fn a_status_conflict_on_a_deleted_autoscaler_writes_nothing_more() {
        let (client, seen) = api_server(vec![Answer::Conflict, Answer::NotFound]);
        let metrics = Metrics::new().expect("metrics");
        events(client, &metrics)
            .write_status(&cached(), new_status(5))
            .await
            .expect("nothing left to write");
        assert_eq!(seen.lock().expect("seen").len(), 2);
        assert_eq!(
            metrics
                .status_write_conflict_retries
                .with_label_values(&["gone"])
                .get(),
            1
        );
    }

    #[test]
    fn metric_computations_move_their_counter_and_histogram() {
        let metrics = Metrics::new().expect("metrics");
        let computations = [
            MetricComputation {
                action: Action::ScaleUp,
                error: ErrorKind::None,
                metric_type: "Resource",
            },
            MetricComputation {
                action: Action::None,
                error: ErrorKind::Internal,
                metric_type: "External",
            },
        ];
        metric_computations(&metrics, &computations, &[Duration::from_millis(3)]);
        metric_computations(&metrics, &computations[..1], &[]);
        let text = metrics.render().expect("render");
        for line in [
            "tidal_metric_computation_total{action=\"scale_up\",error=\"none\",metric_type=\"Resource\"} 2",
            "tidal_metric_computation_total{action=\"none\",error=\"internal\",metric_type=\"External\"} 1",
            "tidal_metric_computation_duration_seconds_count{action=\"scale_up\",error=\"none\",metric_type=\"Resource\"} 2",
            "tidal_metric_computation_duration_seconds_sum{action=\"scale_up\",error=\"none\",metric_type=\"Resource\"} 0.003",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
