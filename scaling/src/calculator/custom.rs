//! Pods, Object and External metrics (`computeStatusForPodsMetric`,
//! `computeStatusForObjectMetric`, `computeStatusForExternalMetric`): calc's
//! matching of a spec metric to the given metrics API answers (FORMAT 3.7) and
//! the proposals from them (contract 2.5–2.7).

use super::pods::Sample;
use super::replicas::{per_pod_replicas, plain_replicas, usage_ratio_replica_count};
use super::{Ctx, Proposal, trace_target};
use crate::model::{
    MetricIdentifier, MetricTarget, MetricValue, MetricValueStatus, MetricValues, ObjectReference,
};
use crate::quantity::Quantity;
use crate::selector::LabelSelector;
use crate::trace::MetricTrace;

/// calc's matching of a spec metric to a metrics API answer (FORMAT 3.7).
pub(crate) fn find_answer<'a>(
    ctx: &Ctx<'a>,
    kind: &str,
    metric: &MetricIdentifier,
    object: Option<&ObjectReference>,
) -> Option<&'a MetricValues> {
    ctx.metric_values.iter().find(|mv| {
        mv.kind == kind
            && mv.metric_name == metric.name
            && match &mv.selector {
                None => true,
                Some(sel) => LabelSelector::equivalent(sel.as_ref(), metric.selector.as_ref()),
            }
            && match (object, &mv.described_object) {
                (Some(o), Some((k, n))) => *k == o.kind && *n == o.name,
                _ => true,
            }
    })
}

fn answer_items(answer: Option<&MetricValues>) -> Result<&[MetricValue], &str> {
    match answer {
        None => Ok(&[]),
        Some(mv) => match &mv.answer {
            Ok(items) => Ok(items.as_slice()),
            Err(e) => Err(e.as_str()),
        },
    }
}

fn pods_metric_samples<'a>(
    ctx: &Ctx<'a>,
    metric: &MetricIdentifier,
) -> Result<Vec<(&'a str, Sample)>, String> {
    let items = answer_items(find_answer(ctx, "Pods", metric, None))
        .map_err(|e| format!("unable to fetch metrics from custom metrics API: {e}"))?;
    if items.is_empty() {
        return Err("no metrics returned from custom metrics API".to_string());
    }
    Ok(items
        .iter()
        .map(|it| {
            (
                it.pod_name.as_deref().unwrap_or(""),
                Sample {
                    value: it.value,
                    timestamp: it.timestamp,
                    window: it.window,
                },
            )
        })
        .collect())
}

fn object_metric_value(
    ctx: &Ctx<'_>,
    metric: &MetricIdentifier,
    object: &ObjectReference,
) -> Result<i64, String> {
    let fetch = || -> Result<i64, String> {
        let items = answer_items(find_answer(ctx, "Object", metric, Some(object)))
            .map_err(str::to_string)?;
        match items {
            [one] => Ok(one.value),
            _ => Err(format!(
                "the custom metrics API server returned {} results when we asked for exactly one",
                items.len()
            )),
        }
    };
    fetch().map_err(|e| {
        // Upstream's format arguments are out of order; the text is reproduced as emitted.
        format!(
            "unable to get metric {}: {} on {} {}/unable to fetch metrics from custom metrics API: {e}",
            metric.name, object.kind, ctx.namespace, object.name
        )
    })
}

fn external_metric_values(ctx: &Ctx<'_>, metric: &MetricIdentifier) -> Result<Vec<i64>, String> {
    LabelSelector::validate(metric.selector.as_ref()).map_err(|e| e.to_string())?;
    let fetch = || -> Result<Vec<i64>, String> {
        let items = answer_items(find_answer(ctx, "External", metric, None))
            .map_err(|e| format!("unable to fetch metrics from external metrics API: {e}"))?;
        if items.is_empty() {
            return Err("no metrics returned from external metrics API".to_string());
        }
        Ok(items.iter().map(|i| i.value).collect())
    };
    fetch().map_err(|e| {
        format!(
            "unable to get external metric {}/{}/{}: {e}",
            ctx.namespace,
            metric.name,
            LabelSelector::go_string(metric.selector.as_ref())
        )
    })
}

/// `computeStatusForPodsMetric`.
pub(super) fn pods_metric(
    ctx: &Ctx<'_>,
    metric: &MetricIdentifier,
    average_value: Quantity,
    trace: &mut MetricTrace,
) -> Result<Proposal, String> {
    trace.target.kind = "AverageValue".to_string();
    trace.target.value_milli = Some(average_value.milli_value());
    LabelSelector::validate(metric.selector.as_ref()).map_err(|e| e.to_string())?;
    let target = average_value.milli_value();
    let samples = pods_metric_samples(ctx, metric)
        .map_err(|e| format!("unable to get metric {}: {e}", metric.name))?;
    let (replicas, usage) = plain_replicas(ctx, samples, target, "", trace)?;
    Ok(Proposal {
        replicas,
        metric_name: format!("pods metric {}", metric.name),
        current: MetricValueStatus {
            average_value: Some(usage),
            ..MetricValueStatus::default()
        },
    })
}

/// `computeStatusForObjectMetric`: errors are (condition error, returned error).
pub(super) fn object_metric(
    ctx: &Ctx<'_>,
    object: &ObjectReference,
    metric: &MetricIdentifier,
    target: &MetricTarget,
    trace: &mut MetricTrace,
) -> Result<Proposal, (String, String)> {
    trace_target(trace, target);
    if let Err(e) = LabelSelector::validate(metric.selector.as_ref()) {
        return Err((e.to_string(), e.to_string()));
    }
    if target.kind == "Value"
        && let Some(value) = target.value
    {
        let mut run = || -> Result<(i32, i64), String> {
            let usage = object_metric_value(ctx, metric, object)?;
            trace.usage_milli = Some(usage);
            let ratio = usage as f64 / value.milli_value() as f64;
            Ok((usage_ratio_replica_count(ctx, ratio, trace)?, usage))
        };
        let (replicas, usage) = run().map_err(|e| (e.clone(), e))?;
        return Ok(Proposal {
            replicas,
            metric_name: format!("{} metric {}", object.kind, metric.name),
            current: MetricValueStatus {
                value: Some(usage),
                ..MetricValueStatus::default()
            },
        });
    }
    if target.kind == "AverageValue"
        && let Some(av) = target.average_value
    {
        let usage = object_metric_value(ctx, metric, object).map_err(|e| {
            (
                e.clone(),
                format!("failed to get {} object metric: {e}", metric.name),
            )
        })?;
        let (replicas, average) = per_pod_replicas(ctx, usage, av.milli_value(), trace);
        return Ok(Proposal {
            replicas,
            // Upstream labels per-pod Object metrics "external" (contract 7.8).
            metric_name: external_metric_name(metric),
            current: MetricValueStatus {
                average_value: average,
                ..MetricValueStatus::default()
            },
        });
    }
    let e =
        "invalid object metric source: neither a value target nor an average value target was set"
            .to_string();
    Err((e.clone(), e))
}

fn external_metric_name(metric: &MetricIdentifier) -> String {
    format!(
        "external metric {}({})",
        metric.name,
        LabelSelector::go_string(metric.selector.as_ref())
    )
}

/// The sum of all external series, staying at `INT64_MAX` once a partial sum
/// would overflow (contract 2.7).
///
/// Upstream's per-pod path detects overflow as "the wrapped sum went negative",
/// which also turns a legitimately negative sum into `INT64_MAX`; the contract
/// describes overflow only, and negative sums are kept here (a negative sum
/// below `INT64_MIN` saturates there).
fn external_sum(values: &[i64]) -> i64 {
    let mut usage = 0i64;
    for v in values {
        match usage.checked_add(*v) {
            Some(sum) => usage = sum,
            None if *v > 0 => return i64::MAX,
            None => usage = i64::MIN,
        }
    }
    usage
}

/// `computeStatusForExternalMetric`: errors are (condition error, returned error).
pub(super) fn external_metric(
    ctx: &Ctx<'_>,
    metric: &MetricIdentifier,
    target: &MetricTarget,
    trace: &mut MetricTrace,
) -> Result<Proposal, (String, String)> {
    trace_target(trace, target);
    if let Some(av) = target.average_value {
        let values = external_metric_values(ctx, metric).map_err(|e| {
            (
                e.clone(),
                format!("failed to get {} external metric: {e}", metric.name),
            )
        })?;
        let usage = external_sum(&values);
        let (replicas, average) = per_pod_replicas(ctx, usage, av.milli_value(), trace);
        return Ok(Proposal {
            replicas,
            metric_name: external_metric_name(metric),
            current: MetricValueStatus {
                average_value: average,
                ..MetricValueStatus::default()
            },
        });
    }
    if let Some(value) = target.value {
        let mut run = || -> Result<(i32, i64), String> {
            let values = external_metric_values(ctx, metric)?;
            let usage = external_sum(&values);
            trace.usage_milli = Some(usage);
            let ratio = usage as f64 / value.milli_value() as f64;
            Ok((usage_ratio_replica_count(ctx, ratio, trace)?, usage))
        };
        let (replicas, usage) = run().map_err(|e| {
            (
                e.clone(),
                format!("failed to get external metric {}: {e}", metric.name),
            )
        })?;
        return Ok(Proposal {
            replicas,
            metric_name: external_metric_name(metric),
            current: MetricValueStatus {
                value: Some(usage),
                ..MetricValueStatus::default()
            },
        });
    }
    let e = "invalid external metric source: neither a value target nor an average value target was set"
        .to_string();
    Err((e.clone(), e))
}
