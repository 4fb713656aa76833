//! Prometheus metrics: the upstream HPA controller's metrics under the `tidal_` prefix, plus
//! per-AutoScaler replicas and decision reasons. Every label has a bounded value set: the
//! `namespace`/`name` pairs are bounded by the number of AutoScalers and are removed on delete.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::Error;

/// What a reconcile did to the target (upstream's `action` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The scale went up.
    ScaleUp,
    /// The scale went down.
    ScaleDown,
    /// The scale was not changed.
    None,
}

impl Action {
    /// The label value upstream uses.
    pub fn label(self) -> &'static str {
        match self {
            Action::ScaleUp => "scale_up",
            Action::ScaleDown => "scale_down",
            Action::None => "none",
        }
    }
}

/// Which kind of error a reconcile ended with (upstream's `error` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The AutoScaler's spec or its target is wrong (user action needed).
    Spec,
    /// Anything else: API errors, metrics pipeline, conflicts.
    Internal,
    /// No error.
    None,
}

impl ErrorKind {
    /// The label value upstream uses.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Spec => "spec",
            ErrorKind::Internal => "internal",
            ErrorKind::None => "none",
        }
    }
}

/// Buckets of `tidal_scaling_lag_seconds`: a fresh-sample reaction is under a second or two,
/// a timer-driven one up to a sync period plus a resolution, pods becoming Ready take longer.
const LAG_BUCKETS: [f64; 9] = [0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 40.0, 80.0];

/// The `stage` label of `tidal_scaling_lag_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LagStage {
    /// Sample to decision.
    Decision,
    /// Sample to the scale write's answer.
    ScaleWrite,
    /// Sample to the pods asked for being Ready.
    PodsReady,
}

impl LagStage {
    /// Every stage, for forgetting an AutoScaler's series.
    pub const ALL: [LagStage; 3] = [
        LagStage::Decision,
        LagStage::ScaleWrite,
        LagStage::PodsReady,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            LagStage::Decision => "decision",
            LagStage::ScaleWrite => "scale_write",
            LagStage::PodsReady => "pods_ready",
        }
    }
}

/// All metric families of the operator, registered in one registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// `tidal_reconciliations_total{action,error}`.
    pub reconciliations: IntCounterVec,
    /// `tidal_reconciliation_duration_seconds{action,error}`.
    pub reconciliation_duration: HistogramVec,
    /// `tidal_metric_computation_total{action,error,metric_type}`.
    pub metric_computations: IntCounterVec,
    /// `tidal_metric_computation_duration_seconds{action,error,metric_type}`.
    pub metric_computation_duration: HistogramVec,
    /// `tidal_num_autoscalers`.
    pub autoscalers: IntGauge,
    /// `tidal_desired_replicas{namespace,name}`.
    pub desired_replicas: IntGaugeVec,
    /// `tidal_current_replicas{namespace,name}`.
    pub current_replicas: IntGaugeVec,
    /// `tidal_decisions_total{namespace,name,reason}`: the condition reason that decided.
    pub decisions: IntCounterVec,
    /// `tidal_leader`: 1 while this replica holds the lease.
    pub leader: IntGauge,
    /// `tidal_follower_skipped_writes_total{kind}`: writes a standby would have made.
    pub follower_skipped_writes: IntCounterVec,
    /// `tidal_status_write_conflicts_total`: status writes answered 409 Conflict.
    pub status_write_conflicts: IntCounter,
    /// `tidal_status_write_conflict_retries_total{result}`: how the retry after a conflict
    /// ended (`written`, `conflict`, `gone`, `error`).
    pub status_write_conflict_retries: IntCounterVec,
    /// `tidal_scale_write_conflicts_total`: scale writes answered 409 Conflict (another writer
    /// changed the scale between Tidal's read and write); each is retried on a fresh read.
    pub scale_write_conflicts: IntCounter,
    /// `tidal_replica_fights_total{namespace,name,manager}`: changes of the target's replicas by
    /// another field manager. `manager` is bounded by the writers of each AutoScaler's target;
    /// its series go with the AutoScaler.
    pub replica_fights: IntCounterVec,
    /// `tidal_pod_metrics_lists_total`: namespace-wide PodMetrics LISTs of the batching source.
    pub pod_metrics_lists: IntCounter,
    /// `tidal_fresh_metrics_polls_total{result}`: polls for fresh samples (`fresh`: new
    /// samples found, `unchanged`, `error`).
    pub fresh_metrics_polls: IntCounterVec,
    /// `tidal_scaling_lag_seconds{namespace,name,stage}`: from the newest PodMetrics sample a
    /// decision read to the decision (`decision`), to its scale write (`scale_write`), and to
    /// the pods it asked for being Ready (`pods_ready`).
    pub scaling_lag: HistogramVec,
    /// `tidal_api_requests_total{verb,resource}`: requests this process sent to the API
    /// server, counted client-side (see [`crate::api_requests`]).
    pub api_requests: IntCounterVec,
    /// `tidal_sync_lag_seconds`: how late each periodic reconcile started after it was due
    /// (the previous reconcile's end plus its requeue delay).
    pub sync_lag: Histogram,
}

impl Metrics {
    /// Creates and registers every family.
    pub fn new() -> Result<Self, Error> {
        let registry = Registry::new();
        let buckets = prometheus::exponential_buckets(0.001, 2.0, 15)?;
        let metrics = Metrics {
            reconciliations: IntCounterVec::new(
                Opts::new(
                    "tidal_reconciliations_total",
                    "Reconciles of AutoScalers by action and error.",
                ),
                &["action", "error"],
            )?,
            reconciliation_duration: HistogramVec::new(
                HistogramOpts::new(
                    "tidal_reconciliation_duration_seconds",
                    "Duration of AutoScaler reconciles by action and error.",
                )
                .buckets(buckets.clone()),
                &["action", "error"],
            )?,
            metric_computations: IntCounterVec::new(
                Opts::new(
                    "tidal_metric_computation_total",
                    "Metric computations by action, error and metric type.",
                ),
                &["action", "error", "metric_type"],
            )?,
            metric_computation_duration: HistogramVec::new(
                HistogramOpts::new(
                    "tidal_metric_computation_duration_seconds",
                    "Duration of metric computations by action, error and metric type.",
                )
                .buckets(buckets),
                &["action", "error", "metric_type"],
            )?,
            autoscalers: IntGauge::new("tidal_num_autoscalers", "AutoScalers currently known.")?,
            desired_replicas: IntGaugeVec::new(
                Opts::new(
                    "tidal_desired_replicas",
                    "Desired replicas decided per AutoScaler.",
                ),
                &["namespace", "name"],
            )?,
            current_replicas: IntGaugeVec::new(
                Opts::new(
                    "tidal_current_replicas",
                    "Current replicas of each AutoScaler's target.",
                ),
                &["namespace", "name"],
            )?,
            decisions: IntCounterVec::new(
                Opts::new(
                    "tidal_decisions_total",
                    "Decisions per AutoScaler by the condition reason that decided them.",
                ),
                &["namespace", "name", "reason"],
            )?,
            leader: IntGauge::new(
                "tidal_leader",
                "1 while this replica holds the leader lease.",
            )?,
            follower_skipped_writes: IntCounterVec::new(
                Opts::new(
                    "tidal_follower_skipped_writes_total",
                    "Writes this replica would have made had it been the leader.",
                ),
                &["kind"],
            )?,
            status_write_conflicts: IntCounter::new(
                "tidal_status_write_conflicts_total",
                "AutoScaler status writes answered 409 Conflict.",
            )?,
            status_write_conflict_retries: IntCounterVec::new(
                Opts::new(
                    "tidal_status_write_conflict_retries_total",
                    "Status writes retried on a re-read AutoScaler after a conflict, by result.",
                ),
                &["result"],
            )?,
            scale_write_conflicts: IntCounter::new(
                "tidal_scale_write_conflicts_total",
                "Scale writes answered 409 Conflict; each is retried on a re-read scale, up to 5 attempts.",
            )?,
            pod_metrics_lists: IntCounter::new(
                "tidal_pod_metrics_lists_total",
                "Namespace-wide PodMetrics LISTs made by the batching metrics source (reconciles and the fresh-metrics poller together).",
            )?,
            fresh_metrics_polls: IntCounterVec::new(
                Opts::new(
                    "tidal_fresh_metrics_polls_total",
                    "Polls of a namespace for fresh PodMetrics samples, by result (fresh, unchanged, error).",
                ),
                &["result"],
            )?,
            scaling_lag: HistogramVec::new(
                HistogramOpts::new(
                    "tidal_scaling_lag_seconds",
                    "Time from the newest PodMetrics sample a decision read to the decision, to its scale write, and to the new pods being Ready, per AutoScaler.",
                )
                // Few buckets: one series set per AutoScaler, and thousands of AutoScalers.
                .buckets(LAG_BUCKETS.to_vec()),
                &["namespace", "name", "stage"],
            )?,
            replica_fights: IntCounterVec::new(
                Opts::new(
                    "tidal_replica_fights_total",
                    "Changes of an AutoScaler's target replicas by another field manager, by manager.",
                ),
                &["namespace", "name", "manager"],
            )?,
            api_requests: IntCounterVec::new(
                Opts::new(
                    "tidal_api_requests_total",
                    "Requests sent to the API server by verb and resource[.group][/subresource].",
                ),
                &["verb", "resource"],
            )?,
            sync_lag: Histogram::with_opts(
                HistogramOpts::new(
                    "tidal_sync_lag_seconds",
                    "How late each periodic reconcile started after it was due.",
                )
                // From 1 ms to about 65 s: a lag past a few sync periods means the workers
                // cannot keep up, and how far past no longer matters.
                .buckets(prometheus::exponential_buckets(0.001, 2.0, 17)?),
            )?,
            registry,
        };
        metrics
            .registry
            .register(Box::new(metrics.reconciliations.clone()))?;
        metrics
            .registry
            .register(Box::new(metrics.reconciliation_duration.clone()))?;
        metrics
            .registry
            .register(Box::new(metrics.metric_computations.clone()))?;
        metrics
            .registry
            .register(Box::new(metrics.metric_computation_duration.clone()))?;
        metrics
            .registry
            .register(Box::new(metrics.autoscalers.clone()))?;
        metrics
            .registry
            .register(Box::new(metrics.desired_replicas.clone()))?;
        metrics
            .registry
            .register(Box::new(metrics.current_replicas.clone()))?;
        metrics
            .registry
            .register(Box::new(metrics.decisions.clone()))?;
        metrics
            .registry
            .register(Box::new(metrics.leader.clone()))?;
        metrics
            .registry
            .register(Box::new(metrics.follower_skipped_writes.clone()))?;
        metrics
            .registry
            .register(Box::new(metrics.status_write_conflicts.clone()))?;
        metrics
            .registry
            .register(Box::new(metrics.status_write_conflict_retries.clone()))?;
        metrics
            .registry
            .register(Box::new(metrics.scale_write_conflicts.clone()))?;
        metrics
            .registry
            .register(Box::new(metrics.replica_fights.clone()))?;
        metrics
            .registry
            .register(Box::new(metrics.scaling_lag.clone()))?;
        metrics
            .registry
            .register(Box::new(metrics.pod_metrics_lists.clone()))?;
        metrics
            .registry
            .register(Box::new(metrics.fresh_metrics_polls.clone()))?;
        metrics
            .registry
            .register(Box::new(metrics.api_requests.clone()))?;
        metrics
            .registry
            .register(Box::new(metrics.sync_lag.clone()))?;
        Ok(metrics)
    }

    /// Forgets the per-AutoScaler series of a deleted AutoScaler, including its
    /// `tidal_decisions_total` series for each reason it used and its
    /// `tidal_replica_fights_total` series for each manager it counted.
    pub fn forget<'a>(
        &self,
        namespace: &str,
        name: &str,
        reasons: impl IntoIterator<Item = &'a str>,
        managers: impl IntoIterator<Item = &'a str>,
    ) {
        for manager in managers {
            let _ = self
                .replica_fights
                .remove_label_values(&[namespace, name, manager]);
        }
        let _ = self
            .desired_replicas
            .remove_label_values(&[namespace, name]);
        let _ = self
            .current_replicas
            .remove_label_values(&[namespace, name]);
        for stage in LagStage::ALL {
            let _ = self
                .scaling_lag
                .remove_label_values(&[namespace, name, stage.label()]);
        }
        for reason in reasons {
            let _ = self
                .decisions
                .remove_label_values(&[namespace, name, reason]);
        }
    }

    /// The text exposition of every family.
    pub fn render(&self) -> Result<String, Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|e| Error::Metrics(prometheus::Error::Msg(e.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposed_names_are_the_documented_ones() {
        let metrics = Metrics::new().expect("metrics");
        metrics
            .reconciliations
            .with_label_values(&[Action::ScaleUp.label(), ErrorKind::None.label()])
            .inc();
        metrics
            .reconciliation_duration
            .with_label_values(&[Action::None.label(), ErrorKind::Spec.label()])
            .observe(0.01);
        metrics
            .metric_computations
            .with_label_values(&["none", "none", "Resource"])
            .inc();
        metrics
            .metric_computation_duration
            .with_label_values(&["none", "none", "Resource"])
            .observe(0.001);
        metrics
            .desired_replicas
            .with_label_values(&["ns", "web"])
            .set(3);
        metrics
            .current_replicas
            .with_label_values(&["ns", "web"])
            .set(2);
        metrics
            .decisions
            .with_label_values(&["ns", "web", "SucceededRescale"])
            .inc();
        metrics
            .follower_skipped_writes
            .with_label_values(&["scale"])
            .inc();
        metrics
            .replica_fights
            .with_label_values(&["ns", "web", "kubectl"])
            .inc();
        metrics
            .api_requests
            .with_label_values(&["list", "pods.metrics.k8s.io"])
            .inc();
        metrics.sync_lag.observe(0.002);
        let text = metrics.render().expect("render");
        for name in [
            "tidal_reconciliations_total{action=\"scale_up\",error=\"none\"} 1",
            "tidal_reconciliation_duration_seconds_bucket",
            "tidal_metric_computation_total{action=\"none\",error=\"none\",metric_type=\"Resource\"} 1",
            "tidal_metric_computation_duration_seconds_count",
            "tidal_num_autoscalers 0",
            "tidal_desired_replicas{name=\"web\",namespace=\"ns\"} 3",
            "tidal_current_replicas{name=\"web\",namespace=\"ns\"} 2",
            "tidal_decisions_total{name=\"web\",namespace=\"ns\",reason=\"SucceededRescale\"} 1",
            "tidal_leader 0",
            "tidal_follower_skipped_writes_total{kind=\"scale\"} 1",
            "tidal_replica_fights_total{manager=\"kubectl\",name=\"web\",namespace=\"ns\"} 1",
            "tidal_api_requests_total{resource=\"pods.metrics.k8s.io\",verb=\"list\"} 1",
            "tidal_sync_lag_seconds_bucket{le=\"0.004\"} 1",
            "tidal_sync_lag_seconds_count 1",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }

    #[test]
    fn write_conflicts_are_exposed_under_their_documented_names() {
        let metrics = Metrics::new().expect("metrics");
        metrics.status_write_conflicts.inc();
        metrics.scale_write_conflicts.inc();
        metrics
            .status_write_conflict_retries
            .with_label_values(&["written"])
            .inc();
        let text = metrics.render().expect("render");
        for line in [
            "tidal_status_write_conflicts_total 1",
            "tidal_status_write_conflict_retries_total{result=\"written\"} 1",
            "tidal_scale_write_conflicts_total 1",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn deleted_autoscalers_leave_no_series() {
        let metrics = Metrics::new().expect("metrics");
        metrics
            .desired_replicas
            .with_label_values(&["ns", "gone"])
            .set(3);
        metrics
            .decisions
            .with_label_values(&["ns", "gone", "ScaleDownStabilized"])
            .inc();
        metrics
            .decisions
            .with_label_values(&["ns", "kept", "ScaleDownStabilized"])
            .inc();
        metrics
            .replica_fights
            .with_label_values(&["ns", "gone", "argocd"])
            .inc();
        metrics.forget("ns", "gone", ["ScaleDownStabilized"], ["argocd"]);
        assert!(metrics.render().expect("render").contains("kept"));
        assert!(!metrics.render().expect("render").contains("gone"));
    }
}
