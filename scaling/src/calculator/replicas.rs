//! Replica math over grouped pods and metric values (upstream's
//! `replica_calculator.go` and `metrics/utilization.go`): usage ratios, the
//! tolerance check, rebalancing of missing and unready pods (contract 2.3–2.5),
//! and the Object/External proposals (contract 2.6, 2.7).

use super::pods::{Grouped, Sample, group_pods, trace_pods};
use super::{Ctx, NO_PODS, NO_READY_SAMPLES, ceil_to_i32};
use crate::model::{ConditionStatus, PodPhase};
use crate::trace::{MetricTrace, RebalanceTrace};

fn clamp_i32(v: i128) -> i32 {
    v.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32
}

/// `GetResourceUtilizationRatio`'s results, with the sums for the trace.
pub(super) struct Utilization {
    pub ratio: f64,
    pub percent: i32,
    pub average: i64,
    pub usage_total: i64,
    pub requests_total: i64,
}

pub(super) fn utilization_ratio(
    g: &Grouped,
    requests: &[i64],
    target: i32,
) -> Result<Utilization, String> {
    let mut metrics_total = 0i64;
    let mut requests_total = 0i64;
    let mut entries = 0i64;
    for entry in &g.entries {
        let Some(v) = entry.active else { continue };
        // A name without a listed pod has no request: an extraneous sample.
        let Some(r) = entry.pod.and_then(|i| requests.get(i)) else {
            continue;
        };
        metrics_total = metrics_total.saturating_add(v);
        requests_total = requests_total.saturating_add(*r);
        entries += 1;
    }
    if requests_total == 0 || entries == 0 {
        return Err("no metrics returned matched known pods".to_string());
    }
    let utilization = clamp_i32(i128::from(metrics_total) * 100 / i128::from(requests_total));
    Ok(Utilization {
        ratio: f64::from(utilization) / f64::from(target),
        percent: utilization,
        average: metrics_total / entries,
        usage_total: metrics_total,
        requests_total,
    })
}

/// (ratio, average, total) of the active samples against a plain target.
fn usage_ratio(g: &Grouped, target: i64) -> (f64, i64, i64) {
    let mut total = 0i64;
    let mut n = 0i64;
    for v in g.entries.iter().filter_map(|e| e.active) {
        total = total.saturating_add(v);
        n += 1;
    }
    let usage = if n == 0 { 0 } else { total / n };
    (usage as f64 / target as f64, usage, total)
}

/// What rebalancing gives a missing pod on a scale-down.
pub(super) enum MissingFill<'r> {
    /// A share of its request (Utilization targets).
    Request { requests: &'r [i64], percent: i64 },
    /// The target value (plain targets).
    Target(i64),
}

/// The common tail of `GetResourceReplicas` and `calcPlainMetricReplicas`:
/// fast path, rebalancing and the direction checks (contract 2.4 steps 6–8).
pub(super) fn rebalance(
    ctx: &Ctx<'_>,
    g: &mut Grouped,
    current: i32,
    usage_ratio: f64,
    fill: MissingFill<'_>,
    recompute: impl Fn(&Grouped) -> Result<f64, String>,
    trace: &mut MetricTrace,
) -> Result<i32, String> {
    let tolerance = ctx.tolerances.trace(usage_ratio);
    trace.ratio = Some(usage_ratio);
    trace.tolerance = Some(tolerance);
    let scale_up_with_unready = g.unready_len() > 0 && usage_ratio > 1.0;
    let missing = g.missing_len();
    if !scale_up_with_unready && missing == 0 {
        if tolerance.within {
            return Ok(current);
        }
        trace.multiplied_by_pods = Some(g.ready_pod_count);
        return Ok(ceil_to_i32(usage_ratio * g.ready_pod_count as f64));
    }
    let missing_as = if missing == 0 {
        None
    } else if usage_ratio < 1.0 {
        Some(match &fill {
            MissingFill::Request { percent, .. } => format!("{percent}% of their request"),
            MissingFill::Target(t) => format!("the target ({t}m)"),
        })
    } else if usage_ratio > 1.0 {
        Some("0".to_string())
    } else {
        None
    };
    if missing > 0 {
        for entry in g.entries.iter_mut().filter(|e| e.missing) {
            if usage_ratio < 1.0 {
                entry.active = Some(match &fill {
                    MissingFill::Request { requests, percent } => {
                        let request = entry.pod.and_then(|i| requests.get(i)).copied();
                        let request = request.unwrap_or(0);
                        let v = i128::from(request) * i128::from(*percent) / 100;
                        v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
                    }
                    MissingFill::Target(t) => *t,
                });
            } else if usage_ratio > 1.0 {
                entry.active = Some(0);
            }
        }
    }
    if scale_up_with_unready {
        for entry in g.entries.iter_mut().filter(|e| e.unready) {
            entry.active = Some(0);
        }
    }
    let new_ratio = recompute(g)?;
    let active = g.active_len();
    let mut rebalanced = RebalanceTrace {
        missing_as,
        unready_as_zero: scale_up_with_unready,
        ratio: new_ratio,
        pods: u32::try_from(active).unwrap_or(u32::MAX),
        kept_current_because: None,
    };
    let within = ctx.tolerances.is_within(new_ratio);
    if within || (usage_ratio < 1.0 && new_ratio > 1.0) || (usage_ratio > 1.0 && new_ratio < 1.0) {
        rebalanced.kept_current_because = Some(if within {
            "the rebalanced ratio is within the tolerance".to_string()
        } else {
            "rebalancing reversed the direction of the change".to_string()
        });
        trace.rebalanced = Some(rebalanced);
        return Ok(current);
    }
    let new_replicas = ceil_to_i32(new_ratio * active as f64);
    if (new_ratio < 1.0 && new_replicas > current) || (new_ratio > 1.0 && new_replicas < current) {
        rebalanced.kept_current_because = Some(format!(
            "{new_replicas} replicas would move against the ratio"
        ));
        trace.rebalanced = Some(rebalanced);
        return Ok(current);
    }
    trace.rebalanced = Some(rebalanced);
    Ok(new_replicas)
}

/// `calcPlainMetricReplicas`: (replicas, average usage).
pub(super) fn plain_replicas(
    ctx: &Ctx<'_>,
    samples: Vec<(&str, Sample)>,
    target: i64,
    resource: &str,
    trace: &mut MetricTrace,
) -> Result<(i32, i64), String> {
    if ctx.pods.is_empty() {
        return Err(NO_PODS.to_string());
    }
    let mut g = group_pods(ctx, &samples, resource);
    trace.pods = Some(trace_pods(ctx, &g, None));
    if g.active_len() == 0 {
        return Err(NO_READY_SAMPLES.to_string());
    }
    let (ratio, usage, total) = usage_ratio(&g, target);
    trace.usage_milli = Some(total);
    trace.average_milli = Some(usage);
    let replicas = rebalance(
        ctx,
        &mut g,
        ctx.spec_replicas,
        ratio,
        MissingFill::Target(target),
        |g| Ok(usage_ratio(g, target).0),
        trace,
    )?;
    Ok((replicas, usage))
}

/// `getUsageRatioReplicaCount`.
pub(super) fn usage_ratio_replica_count(
    ctx: &Ctx<'_>,
    usage_ratio: f64,
    trace: &mut MetricTrace,
) -> Result<i32, String> {
    trace.ratio = Some(usage_ratio);
    if ctx.spec_replicas == 0 {
        // Scale from zero: no tolerance, no pod count (clamped, FORMAT B.3).
        return Ok(ceil_to_i32(usage_ratio));
    }
    let tolerance = ctx.tolerances.trace(usage_ratio);
    trace.tolerance = Some(tolerance);
    if tolerance.within {
        return Ok(ctx.spec_replicas);
    }
    if ctx.pods.is_empty() {
        return Err(format!("unable to calculate ready pods: {NO_PODS}"));
    }
    let ready = ctx
        .pods
        .iter()
        .filter(|p| {
            p.phase == PodPhase::Running
                && p.ready.is_some_and(|r| r.status == ConditionStatus::True)
        })
        .count();
    trace.multiplied_by_pods = Some(ready as i64);
    let f = usage_ratio * ready as f64;
    Ok(if f > f64::from(i32::MAX) {
        i32::MAX
    } else {
        ceil_to_i32(f)
    })
}

/// The per-pod (AverageValue) Object/External computation against `status.replicas`.
/// Returns (replicas, reported average or `None` when `status.replicas` is 0).
pub(super) fn per_pod_replicas(
    ctx: &Ctx<'_>,
    usage: i64,
    target: i64,
    trace: &mut MetricTrace,
) -> (i32, Option<i64>) {
    let status = ctx.status_replicas;
    let mut replicas = status;
    let ratio = usage as f64 / (target as f64 * f64::from(status));
    trace.usage_milli = Some(usage);
    if status != 0 {
        trace.ratio = Some(ratio);
        trace.tolerance = Some(ctx.tolerances.trace(ratio));
    }
    if status == 0 || !ctx.tolerances.is_within(ratio) {
        let r = (usage as f64 / target as f64).ceil();
        replicas = if r > f64::from(i32::MAX) {
            i32::MAX
        } else {
            r as i32
        };
    }
    let average = if status == 0 {
        None
    } else if usage as f64 >= i64::MAX as f64 {
        Some(i64::MAX)
    } else {
        Some((usage as f64 / f64::from(status)).ceil() as i64)
    };
    (replicas, average)
}
