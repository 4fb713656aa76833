//! Replica proposals per metric (contract sections 1.7, 2 and 3), with
//! upstream's error texts:
//! * [`pods`]: joining samples to pods and classifying the pods (`groupPods`);
//! * [`replicas`]: usage ratios, the tolerance, rebalancing, Object/External replica math;
//! * [`resource`]: Resource and ContainerResource metrics and the pods' requests;
//! * [`custom`]: Pods, Object and External metrics from the metrics API answers.

mod custom;
pub(crate) use custom::find_answer;
mod pods;
mod replicas;
mod resource;

use crate::conditions::{
    REASON_FAILED_GET_CONTAINER_RESOURCE_METRIC, REASON_FAILED_GET_EXTERNAL_METRIC,
    REASON_FAILED_GET_OBJECT_METRIC, REASON_FAILED_GET_PODS_METRIC,
    REASON_FAILED_GET_RESOURCE_METRIC, REASON_INVALID_METRIC_SOURCE_TYPE,
};
use crate::model::{
    Config, MetricSpec, MetricTarget, MetricValueStatus, MetricValues, Pod, PodMetrics,
};
use crate::time::Time;
use crate::trace::{MetricTrace, ToleranceTrace};

/// Per-direction tolerances (`Tolerances{scaleDown, scaleUp}` upstream).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Tolerances {
    pub down: f64,
    pub up: f64,
}

impl Tolerances {
    /// `(1 − down) ≤ r ≤ (1 + up)`, both ends inclusive.
    pub fn is_within(&self, ratio: f64) -> bool {
        (1.0 - self.down) <= ratio && ratio <= (1.0 + self.up)
    }

    /// The band and whether `ratio` is inside it, for the trace.
    pub fn trace(&self, ratio: f64) -> ToleranceTrace {
        ToleranceTrace {
            low: 1.0 - self.down,
            high: 1.0 + self.up,
            within: self.is_within(ratio),
        }
    }
}

/// What one metric computation can read.
pub(crate) struct Ctx<'a> {
    pub now: Time,
    pub config: &'a Config,
    pub namespace: &'a str,
    pub pods: &'a [Pod],
    pub pod_metrics: &'a Result<Vec<PodMetrics>, String>,
    pub metric_values: &'a [MetricValues],
    pub tolerances: Tolerances,
    /// `scale.spec.replicas`.
    pub spec_replicas: i32,
    /// `scale.status.replicas`.
    pub status_replicas: i32,
}

/// A successful per-metric computation.
pub(crate) struct Proposal {
    pub replicas: i32,
    pub metric_name: String,
    pub current: MetricValueStatus,
}

/// A failed per-metric computation.
pub(crate) struct Failure {
    /// Condition and event reason.
    pub reason: &'static str,
    /// The error the condition and the per-metric event carry.
    pub inner: String,
    /// The error with the type prefix, as `FailedComputeMetricsReplicas` reports it.
    pub outer: String,
}

pub(super) const NO_PODS: &str = "no pods returned by selector while calculating replica count";
pub(super) const NO_READY_SAMPLES: &str =
    "did not receive metrics for targeted pods (pods might be unready)";

pub(super) fn ceil_to_i32(f: f64) -> i32 {
    // Saturating where Go's float-to-int32 conversion would wrap.
    f.ceil() as i32
}

fn fail(reason: &'static str, inner: String, outer: String) -> Failure {
    Failure {
        reason,
        inner,
        outer,
    }
}

/// Computes one metric's proposal as `computeReplicasForMetric` does.
pub(crate) fn compute_metric(
    ctx: &Ctx<'_>,
    spec: &MetricSpec,
    trace: &mut MetricTrace,
) -> Result<Proposal, Failure> {
    match spec {
        MetricSpec::Resource { name, target } => {
            resource::resource_metric(ctx, name, "", target, trace).map_err(|inner| {
                let outer = format!("failed to get {name} resource metric value: {inner}");
                fail(REASON_FAILED_GET_RESOURCE_METRIC, inner, outer)
            })
        }
        MetricSpec::ContainerResource {
            name,
            container,
            target,
        } => resource::resource_metric(ctx, name, container, target, trace).map_err(|inner| {
            let outer = format!("failed to get {container} container metric value: {inner}");
            fail(REASON_FAILED_GET_CONTAINER_RESOURCE_METRIC, inner, outer)
        }),
        MetricSpec::Pods {
            metric,
            average_value,
        } => custom::pods_metric(ctx, metric, *average_value, trace).map_err(|inner| {
            let outer = format!("failed to get pods metric value: {inner}");
            fail(REASON_FAILED_GET_PODS_METRIC, inner, outer)
        }),
        MetricSpec::Object {
            described_object,
            metric,
            target,
        } => custom::object_metric(ctx, described_object, metric, target, trace).map_err(
            |(inner, returned)| {
                let outer = format!("failed to get object metric value: {returned}");
                fail(REASON_FAILED_GET_OBJECT_METRIC, inner, outer)
            },
        ),
        MetricSpec::External { metric, target } => {
            custom::external_metric(ctx, metric, target, trace).map_err(|(inner, returned)| {
                let outer = format!(
                    "failed to get {} external metric value: {returned}",
                    metric.name
                );
                fail(REASON_FAILED_GET_EXTERNAL_METRIC, inner, outer)
            })
        }
        MetricSpec::Unknown(t) => {
            let inner = format!("unknown metric source type {t:?}");
            Err(fail(
                REASON_INVALID_METRIC_SOURCE_TYPE,
                inner.clone(),
                inner,
            ))
        }
    }
}

/// The spec's target, as given (the calculators narrow it to what they read).
pub(super) fn trace_target(trace: &mut MetricTrace, target: &MetricTarget) {
    trace.target.kind.clone_from(&target.kind);
    trace.target.average_utilization = target.average_utilization;
    let value = if target.kind == "Value" {
        target.value.or(target.average_value)
    } else {
        target.average_value.or(target.value)
    };
    trace.target.value_milli = value.map(|q| q.milli_value());
}
