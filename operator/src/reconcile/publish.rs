//! Publishing an outcome: events on the AutoScaler, the status write, and the Prometheus
//! series of the decision.

use std::collections::HashMap;
use std::time::Duration;

use kube::api::{Api, PostParams};
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
    /// Recorders reporting as `reporter`.
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Events {
            recorder: Recorder::new(client.clone(), reporter.clone()),
            client,
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
        let mut updated = obj.clone();
        updated.status = Some(status);
        // A full-object UpdateStatus with the cached resourceVersion, as upstream: a conflict
        // means someone changed the object, and the next sync writes again. History is kept in
        // memory meanwhile, so a lost status write loses nothing.
        match api
            .replace_status(&obj.name_any(), &PostParams::default(), &updated)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => {
                tracing::debug!("status write conflicted; the next sync writes again");
                Ok(())
            }
            Err(err) => {
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
                Err(err.into())
            }
        }
    }
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
