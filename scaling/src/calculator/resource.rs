//! Resource and ContainerResource metrics (`computeStatusForResourceMetricGeneric`,
//! `GetResourceReplicas`): samples from the PodMetrics answer and the pods'
//! requests (contract 2.2–2.4).

use super::pods::{Sample, group_pods, trace_pods};
use super::replicas::{MissingFill, plain_replicas, rebalance, utilization_ratio};
use super::{Ctx, NO_PODS, NO_READY_SAMPLES, Proposal, trace_target};
use crate::model::{MetricTarget, MetricValueStatus, resource_get};
use crate::trace::MetricTrace;

fn resource_samples<'a>(
    ctx: &Ctx<'a>,
    resource: &str,
    container: &str,
) -> Result<Vec<(&'a str, Sample)>, String> {
    let items = match ctx.pod_metrics {
        Err(e) => {
            return Err(format!(
                "unable to fetch metrics from resource metrics API: {e}"
            ));
        }
        Ok(items) => items,
    };
    if items.is_empty() {
        return Err("no metrics returned from resource metrics API".to_string());
    }
    let mut out = Vec::with_capacity(items.len());
    for m in items {
        let sample = |value| Sample {
            value,
            timestamp: m.timestamp,
            window: m.window,
        };
        if container.is_empty() {
            // A pod with no containers, or any container without the resource, has no sample.
            if m.containers.is_empty() {
                continue;
            }
            let mut sum = 0i64;
            let mut complete = true;
            for c in &m.containers {
                match resource_get(&c.usage, resource) {
                    Some(v) => sum = sum.saturating_add(v),
                    None => {
                        complete = false;
                        break;
                    }
                }
            }
            if complete {
                out.push((m.name.as_str(), sample(sum)));
            }
        } else if let Some(c) = m.containers.iter().find(|c| c.name == container)
            && let Some(v) = resource_get(&c.usage, resource)
        {
            out.push((m.name.as_str(), sample(v)));
        }
    }
    Ok(out)
}

fn pod_requests(ctx: &Ctx<'_>, container: &str, resource: &str) -> Result<Vec<i64>, String> {
    let pod_level = ctx.config.feature_gates.pod_level_resources;
    let mut out = Vec::with_capacity(ctx.pods.len());
    for pod in ctx.pods {
        // Only cpu and memory are pod-level resources (FORMAT B.4).
        let pod_level_set = pod
            .pod_requests
            .as_ref()
            .is_some_and(|r| r.get("cpu").is_some() || r.get("memory").is_some());
        if pod_level && pod_level_set && container.is_empty() {
            let requests = pod.pod_requests.as_ref();
            match requests.and_then(|r| resource_get(r, resource)) {
                Some(v) => out.push(v),
                None => {
                    return Err(format!(
                        "missing pod-level request for {resource} in Pod {}",
                        pod.name
                    ));
                }
            }
            continue;
        }
        let mut sum = 0i64;
        let mut found = false;
        let sidecars = pod.init_containers.iter().filter(|c| c.restart_always);
        for c in pod.containers.iter().chain(sidecars) {
            if container.is_empty() || container == c.name {
                match resource_get(&c.requests, resource) {
                    Some(v) => sum = sum.saturating_add(v),
                    None => {
                        return Err(format!(
                            "missing request for {resource} in container {} of Pod {}",
                            c.name, pod.name
                        ));
                    }
                }
            }
            if container == c.name {
                found = true;
                break;
            }
        }
        if !container.is_empty() && !found {
            return Err(format!(
                "container {container} not found in Pod {}",
                pod.name
            ));
        }
        out.push(sum);
    }
    Ok(out)
}

/// `computeStatusForResourceMetricGeneric`.
pub(super) fn resource_metric(
    ctx: &Ctx<'_>,
    name: &str,
    container: &str,
    target: &MetricTarget,
    trace: &mut MetricTrace,
) -> Result<Proposal, String> {
    let binary = name == "memory";
    trace_target(trace, target);
    if let Some(av) = target.average_value {
        trace.target.kind = "AverageValue".to_string();
        trace.target.average_utilization = None;
        let samples = resource_samples(ctx, name, container)
            .map_err(|e| format!("unable to get metrics for resource {name}: {e}"))
            .and_then(|s| plain_replicas(ctx, s, av.milli_value(), name, trace))
            .map_err(|e| format!("failed to get {name} usage: {e}"))?;
        let (replicas, usage) = samples;
        return Ok(Proposal {
            replicas,
            metric_name: format!("{name} resource"),
            current: MetricValueStatus {
                average_value: Some(usage),
                binary,
                ..MetricValueStatus::default()
            },
        });
    }
    let Some(utilization_target) = target.average_utilization else {
        return Err("invalid resource metric source: neither an average utilization target nor an average value (usage) target was set".to_string());
    };
    let (replicas, utilization, raw) =
        resource_utilization_replicas(ctx, utilization_target, name, container, trace)
            .map_err(|e| format!("failed to get {name} utilization: {e}"))?;
    let metric_name = if container.is_empty() {
        format!("{name} resource utilization (percentage of request)")
    } else {
        format!("{name} container resource utilization (percentage of request)")
    };
    Ok(Proposal {
        replicas,
        metric_name,
        current: MetricValueStatus {
            average_utilization: Some(utilization),
            average_value: Some(raw),
            binary,
            ..MetricValueStatus::default()
        },
    })
}

/// `GetResourceReplicas`: (replicas, utilization %, raw average).
fn resource_utilization_replicas(
    ctx: &Ctx<'_>,
    target: i32,
    resource: &str,
    container: &str,
    trace: &mut MetricTrace,
) -> Result<(i32, i32, i64), String> {
    let samples = resource_samples(ctx, resource, container)
        .map_err(|e| format!("unable to get metrics for resource {resource}: {e}"))?;
    if ctx.pods.is_empty() {
        return Err(NO_PODS.to_string());
    }
    let mut g = group_pods(ctx, &samples, resource);
    if g.active_len() == 0 {
        trace.pods = Some(trace_pods(ctx, &g, None));
        return Err(NO_READY_SAMPLES.to_string());
    }
    let requests = match pod_requests(ctx, container, resource) {
        Ok(r) => r,
        Err(e) => {
            trace.pods = Some(trace_pods(ctx, &g, None));
            return Err(e);
        }
    };
    trace.pods = Some(trace_pods(ctx, &g, Some(&requests)));
    let u = utilization_ratio(&g, &requests, target)?;
    trace.usage_milli = Some(u.usage_total);
    trace.requests_milli = Some(u.requests_total);
    trace.average_milli = Some(u.average);
    trace.utilization = Some(u.percent);
    let fill = MissingFill::Request {
        requests: &requests,
        percent: i64::from(target.max(100)),
    };
    let replicas = rebalance(
        ctx,
        &mut g,
        ctx.spec_replicas,
        u.ratio,
        fill,
        |g| utilization_ratio(g, &requests, target).map(|r| r.ratio),
        trace,
    )?;
    Ok((replicas, u.percent, u.average))
}
