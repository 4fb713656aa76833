//! The observed state of one reconcile: controller configuration, the
//! autoscaler's status, pods, metrics API answers and the decision memory.

use super::json::{Obj, expected, input_error, missing, seconds};
use super::spec::parse_label_selector;
use crate::error::Result;
use crate::model::{
    AutoscalerStatus, Condition, ConditionStatus, Config, Container, ContainerMetrics,
    FeatureGates, History, MetricValue, MetricValues, Pod, PodMetrics, PodPhase, PodReady,
    Recommendation, ResourceList, ScaleEvent,
};
use crate::time::{Duration, Time};
use serde_json::Value;

pub(super) fn parse_config(root: &Obj<'_>) -> Result<Config> {
    let mut c = Config::default();
    let Some(o) = root.opt_obj("config")? else {
        return Ok(c);
    };
    if let Some(t) = o.opt_number("tolerance")? {
        c.tolerance = t;
    }
    if let Some(d) = o.opt_seconds("cpuInitializationPeriodSeconds")? {
        c.cpu_initialization_period = d;
    }
    if let Some(d) = o.opt_seconds("initialReadinessDelaySeconds")? {
        c.initial_readiness_delay = d;
    }
    if let Some(d) = o.opt_seconds("downscaleStabilizationSeconds")? {
        c.downscale_stabilization = d;
    }
    if let Some(f) = o.opt_number("legacyScaleUpLimitFactor")? {
        c.legacy_scale_up_limit_factor = f;
    }
    if let Some(f) = o.opt_number("legacyScaleUpLimitMinimum")? {
        c.legacy_scale_up_limit_minimum = f;
    }
    if let Some(g) = o.opt_obj("featureGates")? {
        let d = FeatureGates::default();
        c.feature_gates = FeatureGates {
            configurable_tolerance: g
                .opt_bool("HPAConfigurableTolerance")?
                .unwrap_or(d.configurable_tolerance),
            scale_to_zero: g.opt_bool("HPAScaleToZero")?.unwrap_or(d.scale_to_zero),
            pod_level_resources: g
                .opt_bool("PodLevelResources")?
                .unwrap_or(d.pod_level_resources),
        };
    }
    Ok(c)
}

pub(super) fn parse_status(root: &Obj<'_>) -> Result<AutoscalerStatus> {
    let Some(s) = root.opt_obj("status")? else {
        return Ok(AutoscalerStatus::default());
    };
    let mut conditions = Vec::new();
    for (path, v) in s.array("conditions")? {
        let c = Obj::new(v, &path)?;
        conditions.push(Condition {
            kind: c.str_or("type", "")?,
            status: c.str_or("status", "")?,
            reason: c.str_or("reason", "")?,
            message: c.str_or("message", "")?,
            last_transition_time: c.opt_time("lastTransitionTime")?,
        });
    }
    Ok(AutoscalerStatus {
        desired_replicas: s.opt_i32("desiredReplicas")?.unwrap_or(0),
        current_replicas: s.opt_i32("currentReplicas")?.unwrap_or(0),
        conditions,
    })
}

pub(super) fn condition_status(s: &str) -> ConditionStatus {
    match s {
        "True" => ConditionStatus::True,
        "False" => ConditionStatus::False,
        _ => ConditionStatus::Unknown,
    }
}

pub(super) fn parse_container(o: &Obj<'_>) -> Result<Container> {
    let requests = match o.opt_obj("resources")? {
        Some(r) => r.resource_list("requests")?,
        None => ResourceList::new(),
    };
    Ok(Container {
        name: o.str_or("name", "")?,
        requests,
        restart_always: o.opt_str("restartPolicy")? == Some("Always"),
    })
}

pub(super) fn parse_pod(o: &Obj<'_>) -> Result<Pod> {
    let meta = o.req_obj("metadata")?;
    let name = meta.req_str("name")?;
    let labels = meta.opt_string_map("labels")?;
    let deleting = meta.get("deletionTimestamp").is_some();
    let (mut containers, mut init_containers, mut pod_requests) = (Vec::new(), Vec::new(), None);
    if let Some(spec) = o.opt_obj("spec")? {
        for (path, v) in spec.array("containers")? {
            containers.push(parse_container(&Obj::new(v, &path)?)?);
        }
        for (path, v) in spec.array("initContainers")? {
            init_containers.push(parse_container(&Obj::new(v, &path)?)?);
        }
        if let Some(r) = spec.opt_obj("resources")?
            && r.get("requests").is_some()
        {
            pod_requests = Some(r.resource_list("requests")?);
        }
    }
    let (mut phase, mut start_time, mut ready) = (PodPhase::Running, None, None);
    if let Some(status) = o.opt_obj("status")? {
        phase = match status.opt_str("phase")? {
            None | Some("Running") => PodPhase::Running,
            Some("Pending") => PodPhase::Pending,
            Some("Succeeded") => PodPhase::Succeeded,
            Some("Failed") => PodPhase::Failed,
            Some(_) => PodPhase::Unknown,
        };
        start_time = status.opt_time("startTime")?;
        for (path, v) in status.array("conditions")? {
            let c = Obj::new(v, &path)?;
            if c.opt_str("type")? == Some("Ready") {
                ready = Some(PodReady {
                    status: condition_status(c.opt_str("status")?.unwrap_or("")),
                    last_transition_time: c.opt_time("lastTransitionTime")?.unwrap_or(Time::ZERO),
                });
                break;
            }
        }
    }
    Ok(Pod {
        name,
        labels,
        deleting,
        phase,
        start_time,
        ready,
        containers,
        init_containers,
        pod_requests,
    })
}

pub(super) fn parse_window(o: &Obj<'_>, key: &str) -> Result<Option<Duration>> {
    let path = o.field_path(key);
    match o.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Duration::parse_go(s)
            .map(Some)
            .map_err(|e| input_error(&path, e.to_string())),
        Some(v @ Value::Number(_)) => seconds(v, &path).map(Some),
        Some(other) => Err(expected(&path, "a Go duration string or seconds", other)),
    }
}

pub(super) const DEFAULT_WINDOW: Duration = Duration::from_seconds(60);

pub(super) fn parse_pod_metrics(o: &Obj<'_>, now: Time) -> Result<PodMetrics> {
    let meta = o.req_obj("metadata")?;
    let mut containers = Vec::new();
    for (path, v) in o.array("containers")? {
        let c = Obj::new(v, &path)?;
        containers.push(ContainerMetrics {
            name: c.str_or("name", "")?,
            usage: c.resource_list("usage")?,
        });
    }
    Ok(PodMetrics {
        name: meta.req_str("name")?,
        timestamp: o.opt_time("timestamp")?.unwrap_or(now),
        window: parse_window(o, "window")?.unwrap_or(DEFAULT_WINDOW),
        containers,
    })
}

pub(super) fn parse_metric_values(o: &Obj<'_>, now: Time) -> Result<MetricValues> {
    let kind = o.req_str("type")?;
    let (metric_name, selector) = match o.opt_obj("metric")? {
        Some(m) => {
            let selector = if m.get("selector").is_some() {
                Some(parse_label_selector(&m, "selector")?)
            } else {
                None
            };
            (m.str_or("name", "")?, selector)
        }
        None => (String::new(), None),
    };
    let described_object = match o.opt_obj("describedObject")? {
        Some(d) => Some((d.str_or("kind", "")?, d.str_or("name", "")?)),
        None => None,
    };
    let answer = match o.opt_str("error")? {
        Some(e) => Err(e.to_string()),
        None => {
            let mut items = Vec::new();
            for (path, v) in o.array("items")? {
                let it = Obj::new(v, &path)?;
                let pod_name = match it.opt_obj("describedObject")? {
                    Some(d) => d.opt_str("name")?.map(str::to_string),
                    None => None,
                };
                if kind == "Pods" && pod_name.is_none() {
                    return Err(missing(&it.field_path("describedObject.name"), "string"));
                }
                let window = match it.get("windowSeconds") {
                    None => DEFAULT_WINDOW,
                    Some(v) => seconds(v, &it.field_path("windowSeconds"))?,
                };
                items.push(MetricValue {
                    pod_name,
                    value: it.req_quantity("value")?.milli_value(),
                    timestamp: it.opt_time("timestamp")?.unwrap_or(now),
                    window,
                });
            }
            Ok(items)
        }
    };
    Ok(MetricValues {
        kind,
        metric_name,
        selector,
        described_object,
        answer,
    })
}

pub(super) fn parse_events(h: &Obj<'_>, key: &str) -> Result<Vec<ScaleEvent>> {
    let mut out = Vec::new();
    for (path, v) in h.array(key)? {
        let e = Obj::new(v, &path)?;
        out.push(ScaleEvent {
            replica_change: e.req_i32("replicaChange")?,
            timestamp: e.req_time("timestamp")?,
            outdated: e.opt_bool("outdated")?.unwrap_or(false),
        });
    }
    Ok(out)
}

pub(super) fn parse_history(h: &Obj<'_>) -> Result<History> {
    let recommendations = match h.opt_array("recommendations")? {
        None => None,
        Some(items) => {
            let mut out = Vec::new();
            for (path, v) in items {
                let r = Obj::new(v, &path)?;
                out.push(Recommendation {
                    replicas: r.req_i32("replicas")?,
                    timestamp: r.req_time("timestamp")?,
                });
            }
            Some(out)
        }
    };
    Ok(History {
        recommendations,
        scale_up_events: parse_events(h, "scaleUpEvents")?,
        scale_down_events: parse_events(h, "scaleDownEvents")?,
    })
}
