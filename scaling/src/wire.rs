//! The `tidal calc` format (shared/conformance/FORMAT.md): a thin layer that
//! reads the input JSON into [`DecisionInput`] with precise field paths in its
//! errors, and renders a [`Decision`] as the output JSON.

use crate::error::{Error, Result};
use crate::model::{
    AutoscalerSpec, AutoscalerStatus, Behavior, Condition, ConditionStatus, Config, Container,
    ContainerMetrics, Decision, DecisionInput, FeatureGates, History, MetricIdentifier,
    MetricOutcome, MetricSpec, MetricTarget, MetricValue, MetricValues, ObjectMeta,
    ObjectReference, OtherAutoscaler, Pod, PodMetrics, PodPhase, PodReady, PolicyType,
    Recommendation, ResourceList, Scale, ScaleEvent, ScaleRead, ScalingPolicy, ScalingRules,
    SelectPolicy,
};
use crate::quantity::{Quantity, format_milli, format_milli_binary};
use crate::selector::{LabelSelector, LabelSelectorRequirement, Labels};
use crate::time::{Duration, Time};
use serde_json::{Map, Value, json};

/// A parsed `tidal calc` input: the decision input plus the simulated outcome
/// of the scale write (`scale.updateError`).
#[derive(Debug, Clone, PartialEq)]
pub struct CalcInput {
    /// The decision input.
    pub input: DecisionInput,
    /// `scale.updateError`: writing the scale fails with this error.
    pub update_error: Option<String>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn input_error(field: &str, message: impl Into<String>) -> Error {
    Error::Input {
        field: if field.is_empty() {
            "input".to_string()
        } else {
            field.to_string()
        },
        message: message.into(),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn expected(path: &str, what: &str, v: &Value) -> Error {
    input_error(path, format!("expected {what}, found {}", json_type(v)))
}

fn missing(path: &str, what: &str) -> Error {
    input_error(path, format!("required {what} is missing"))
}

/// Typed access to the fields of one JSON object.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    fn new(value: &'a Value, path: &str) -> Result<Obj<'a>> {
        match value {
            Value::Object(map) => Ok(Obj {
                map,
                path: path.to_string(),
            }),
            other => Err(expected(path, "an object", other)),
        }
    }

    fn field_path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The field, with JSON `null` treated as absent.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn opt_obj(&self, key: &str) -> Result<Option<Obj<'a>>> {
        self.get(key)
            .map(|v| Obj::new(v, &self.field_path(key)))
            .transpose()
    }

    fn req_obj(&self, key: &str) -> Result<Obj<'a>> {
        self.opt_obj(key)?
            .ok_or_else(|| missing(&self.field_path(key), "object"))
    }

    fn opt_array(&self, key: &str) -> Result<Option<Vec<(String, &'a Value)>>> {
        let path = self.field_path(key);
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (format!("{path}[{i}]"), v))
                    .collect(),
            )),
            Some(other) => Err(expected(&path, "an array", other)),
        }
    }

    fn array(&self, key: &str) -> Result<Vec<(String, &'a Value)>> {
        Ok(self.opt_array(key)?.unwrap_or_default())
    }

    fn opt_str(&self, key: &str) -> Result<Option<&'a str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(expected(&self.field_path(key), "a string", other)),
        }
    }

    fn str_or(&self, key: &str, default: &str) -> Result<String> {
        Ok(self.opt_str(key)?.unwrap_or(default).to_string())
    }

    fn req_str(&self, key: &str) -> Result<String> {
        self.opt_str(key)?
            .map(str::to_string)
            .ok_or_else(|| missing(&self.field_path(key), "string"))
    }

    fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(expected(&self.field_path(key), "a boolean", other)),
        }
    }

    fn opt_i32(&self, key: &str) -> Result<Option<i32>> {
        self.get(key)
            .map(|v| int32(v, &self.field_path(key)))
            .transpose()
    }

    fn req_i32(&self, key: &str) -> Result<i32> {
        self.opt_i32(key)?
            .ok_or_else(|| missing(&self.field_path(key), "integer"))
    }

    fn opt_number(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or_else(|| input_error(&self.field_path(key), "expected a finite number")),
            Some(other) => Err(expected(&self.field_path(key), "a number", other)),
        }
    }

    fn opt_seconds(&self, key: &str) -> Result<Option<Duration>> {
        let path = self.field_path(key);
        match self.get(key) {
            None => Ok(None),
            Some(v @ Value::Number(_)) => seconds(v, &path).map(Some),
            Some(other) => Err(expected(&path, "a number of seconds", other)),
        }
    }

    fn opt_quantity(&self, key: &str) -> Result<Option<Quantity>> {
        self.get(key)
            .map(|v| quantity(v, &self.field_path(key)))
            .transpose()
    }

    fn req_quantity(&self, key: &str) -> Result<Quantity> {
        self.opt_quantity(key)?
            .ok_or_else(|| missing(&self.field_path(key), "quantity"))
    }

    fn opt_time(&self, key: &str) -> Result<Option<Time>> {
        let path = self.field_path(key);
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Time::parse_rfc3339(s)
                .map(Some)
                .map_err(|e| input_error(&path, e.to_string())),
            Some(other) => Err(expected(&path, "an RFC 3339 time string", other)),
        }
    }

    fn req_time(&self, key: &str) -> Result<Time> {
        self.opt_time(key)?
            .ok_or_else(|| missing(&self.field_path(key), "time"))
    }

    fn opt_string_map(&self, key: &str) -> Result<Labels> {
        let Some(o) = self.opt_obj(key)? else {
            return Ok(Labels::new());
        };
        let mut out = Labels::new();
        for (k, v) in o.map {
            match v {
                Value::String(s) => {
                    out.insert(k.clone(), s.clone());
                }
                other => return Err(expected(&o.field_path(k), "a string", other)),
            }
        }
        Ok(out)
    }

    fn resource_list(&self, key: &str) -> Result<ResourceList> {
        let Some(o) = self.opt_obj(key)? else {
            return Ok(ResourceList::new());
        };
        let mut out = ResourceList::new();
        for (k, v) in o.map {
            out.insert(k.clone(), quantity(v, &o.field_path(k))?.milli_value());
        }
        Ok(out)
    }
}

fn int32(v: &Value, path: &str) -> Result<i32> {
    let Value::Number(n) = v else {
        return Err(expected(path, "an integer", v));
    };
    let wide: Option<i128> = if let Some(i) = n.as_i64() {
        Some(i128::from(i))
    } else if let Some(u) = n.as_u64() {
        Some(i128::from(u))
    } else {
        n.as_f64()
            .filter(|f| f.is_finite() && f.fract() == 0.0 && f.abs() < 1e30)
            .map(|f| f as i128)
    };
    let Some(wide) = wide else {
        return Err(input_error(path, format!("expected an integer, found {n}")));
    };
    i32::try_from(wide)
        .map_err(|_| input_error(path, format!("{n} does not fit in a 32-bit integer")))
}

fn seconds(v: &Value, path: &str) -> Result<Duration> {
    let Value::Number(n) = v else {
        return Err(expected(path, "a number of seconds", v));
    };
    if let Some(i) = n.as_i64() {
        return Ok(Duration::from_nanos(i128::from(i) * 1_000_000_000));
    }
    match n.as_f64() {
        Some(f) if f.is_finite() && f.abs() < 1e18 => {
            Ok(Duration::from_nanos((f * 1e9).round() as i128))
        }
        _ => Err(input_error(
            path,
            format!("{n} is not a usable number of seconds"),
        )),
    }
}

fn quantity(v: &Value, path: &str) -> Result<Quantity> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                match n.as_f64() {
                    // Rust prints the shortest round-trip decimal, never an exponent.
                    Some(f) if f.is_finite() => format!("{f}"),
                    _ => return Err(input_error(path, format!("{n} is not a quantity"))),
                }
            }
        }
        other => return Err(expected(path, "a quantity (string or number)", other)),
    };
    Quantity::parse(&text).map_err(|e| input_error(path, e.to_string()))
}

fn positive_quantity(o: &Obj<'_>, key: &str) -> Result<Option<Quantity>> {
    let q = o.opt_quantity(key)?;
    if let Some(q) = q
        && q.milli_value() <= 0
    {
        return Err(input_error(&o.field_path(key), "a target must be positive"));
    }
    Ok(q)
}

/// Reads a `tidal calc` input document.
pub fn parse_input(root: &Value) -> Result<CalcInput> {
    let root = Obj::new(root, "")?;
    let now = root.req_time("now")?;
    let config = parse_config(&root)?;
    let metadata = match root.opt_obj("metadata")? {
        None => ObjectMeta::default(),
        Some(m) => ObjectMeta {
            name: m.str_or("name", "autoscaler")?,
            namespace: m.str_or("namespace", "default")?,
        },
    };
    let spec = spec_from(&root.req_obj("spec")?)?;
    let status = parse_status(&root)?;
    let scale_obj = root.req_obj("scale")?;
    let scale = match scale_obj.opt_str("getError")? {
        // The GET failed: there are no replicas to read.
        Some(e) => ScaleRead::Failed(e.to_string()),
        None => {
            let spec_replicas = scale_obj.req_i32("specReplicas")?;
            ScaleRead::Read(Scale {
                spec_replicas,
                status_replicas: scale_obj
                    .opt_i32("statusReplicas")?
                    .unwrap_or(spec_replicas),
                selector: scale_obj.str_or("selector", "")?,
            })
        }
    };
    let update_error = scale_obj.opt_str("updateError")?.map(str::to_string);

    let mut pods = Vec::new();
    for (path, v) in root.array("pods")? {
        pods.push(parse_pod(&Obj::new(v, &path)?)?);
    }
    let pod_metrics = match root.opt_str("podMetricsError")? {
        Some(e) => Err(e.to_string()),
        None => {
            let mut items = Vec::new();
            for (path, v) in root.array("podMetrics")? {
                items.push(parse_pod_metrics(&Obj::new(v, &path)?, now)?);
            }
            Ok(items)
        }
    };
    let mut metric_values = Vec::new();
    for (path, v) in root.array("metricValues")? {
        metric_values.push(parse_metric_values(&Obj::new(v, &path)?, now)?);
    }
    let mut other_autoscalers = Vec::new();
    for (path, v) in root.array("otherAutoScalers")? {
        let o = Obj::new(v, &path)?;
        other_autoscalers.push(OtherAutoscaler {
            name: o.str_or("name", "")?,
            namespace: o.opt_str("namespace")?.map(str::to_string),
            selector: o.str_or("selector", "")?,
        });
    }
    let history = root
        .opt_obj("history")?
        .map(|h| parse_history(&h))
        .transpose()?;
    Ok(CalcInput {
        input: DecisionInput {
            now,
            config,
            metadata,
            spec,
            status,
            scale,
            pods,
            pod_metrics,
            metric_values,
            other_autoscalers,
            history,
        },
        update_error,
    })
}

/// Reads an `autoscaling/v2` `HorizontalPodAutoscalerSpec` JSON object (the
/// `spec` of an AutoScaler) with the same rules and errors as `tidal calc`;
/// error paths start at `spec`.
pub fn parse_spec(spec: &Value) -> Result<AutoscalerSpec> {
    spec_from(&Obj::new(spec, "spec")?)
}

/// Reads a Pod object (`kubectl get pod -o json` shape) as `tidal calc` does;
/// error paths start at `path`.
pub fn parse_pod_object(pod: &Value, path: &str) -> Result<Pod> {
    parse_pod(&Obj::new(pod, path)?)
}

fn parse_config(root: &Obj<'_>) -> Result<Config> {
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

fn parse_object_ref(o: &Obj<'_>) -> Result<ObjectReference> {
    Ok(ObjectReference {
        api_version: o.str_or("apiVersion", "")?,
        kind: o.str_or("kind", "")?,
        name: o.str_or("name", "")?,
    })
}

fn spec_from(o: &Obj<'_>) -> Result<AutoscalerSpec> {
    let scale_target_ref = parse_object_ref(&o.req_obj("scaleTargetRef")?)?;
    let min_replicas = o.opt_i32("minReplicas")?;
    let max_replicas = o.req_i32("maxReplicas")?;
    let mut metrics = Vec::new();
    for (path, v) in o.array("metrics")? {
        metrics.push(parse_metric(&Obj::new(v, &path)?)?);
    }
    let behavior = o
        .opt_obj("behavior")?
        .map(|b| parse_behavior(&b))
        .transpose()?;
    Ok(AutoscalerSpec {
        scale_target_ref,
        min_replicas,
        max_replicas,
        metrics,
        behavior,
    })
}

fn parse_target(o: &Obj<'_>) -> Result<MetricTarget> {
    let Some(t) = o.opt_obj("target")? else {
        return Ok(MetricTarget::default());
    };
    let average_utilization = t.opt_i32("averageUtilization")?;
    if let Some(u) = average_utilization
        && u <= 0
    {
        return Err(input_error(
            &t.field_path("averageUtilization"),
            "a target must be positive",
        ));
    }
    Ok(MetricTarget {
        kind: t.str_or("type", "")?,
        value: positive_quantity(&t, "value")?,
        average_value: positive_quantity(&t, "averageValue")?,
        average_utilization,
    })
}

fn parse_label_selector(o: &Obj<'_>, key: &str) -> Result<Option<LabelSelector>> {
    let Some(s) = o.opt_obj(key)? else {
        return Ok(None);
    };
    let mut sel = LabelSelector {
        match_labels: s.opt_string_map("matchLabels")?,
        match_expressions: Vec::new(),
    };
    for (path, v) in s.array("matchExpressions")? {
        let e = Obj::new(v, &path)?;
        let mut values = Vec::new();
        for (vpath, item) in e.array("values")? {
            match item {
                Value::String(s) => values.push(s.clone()),
                other => return Err(expected(&vpath, "a string", other)),
            }
        }
        sel.match_expressions.push(LabelSelectorRequirement {
            key: e.str_or("key", "")?,
            operator: e.str_or("operator", "")?,
            values,
        });
    }
    Ok(Some(sel))
}

fn parse_identifier(o: &Obj<'_>) -> Result<MetricIdentifier> {
    let m = o.req_obj("metric")?;
    Ok(MetricIdentifier {
        name: m.req_str("name")?,
        selector: parse_label_selector(&m, "selector")?,
    })
}

fn parse_metric(o: &Obj<'_>) -> Result<MetricSpec> {
    let kind = o.req_str("type")?;
    Ok(match kind.as_str() {
        "Resource" => {
            let r = o.req_obj("resource")?;
            MetricSpec::Resource {
                name: r.req_str("name")?,
                target: parse_target(&r)?,
            }
        }
        "ContainerResource" => {
            let r = o.req_obj("containerResource")?;
            MetricSpec::ContainerResource {
                name: r.req_str("name")?,
                container: r.req_str("container")?,
                target: parse_target(&r)?,
            }
        }
        "Pods" => {
            let p = o.req_obj("pods")?;
            let metric = parse_identifier(&p)?;
            let t = p.req_obj("target")?;
            let average_value = positive_quantity(&t, "averageValue")?
                .ok_or_else(|| missing(&t.field_path("averageValue"), "quantity"))?;
            MetricSpec::Pods {
                metric,
                average_value,
            }
        }
        "Object" => {
            let ob = o.req_obj("object")?;
            MetricSpec::Object {
                described_object: parse_object_ref(&ob.req_obj("describedObject")?)?,
                metric: parse_identifier(&ob)?,
                target: parse_target(&ob)?,
            }
        }
        "External" => {
            let e = o.req_obj("external")?;
            MetricSpec::External {
                metric: parse_identifier(&e)?,
                target: parse_target(&e)?,
            }
        }
        _ => MetricSpec::Unknown(kind),
    })
}

fn parse_rules(o: &Obj<'_>) -> Result<ScalingRules> {
    let select_policy = match o.opt_str("selectPolicy")? {
        None => None,
        Some("Max") => Some(SelectPolicy::Max),
        Some("Min") => Some(SelectPolicy::Min),
        Some("Disabled") => Some(SelectPolicy::Disabled),
        Some(other) => {
            return Err(input_error(
                &o.field_path("selectPolicy"),
                format!("{other:?} is not one of Max, Min, Disabled"),
            ));
        }
    };
    let policies = match o.opt_array("policies")? {
        None => None,
        Some(items) if items.is_empty() => {
            return Err(input_error(
                &o.field_path("policies"),
                "must not be empty (omit it for the defaults)",
            ));
        }
        Some(items) => {
            let mut out = Vec::new();
            for (path, v) in items {
                let p = Obj::new(v, &path)?;
                let kind = match p.req_str("type")?.as_str() {
                    "Pods" => PolicyType::Pods,
                    "Percent" => PolicyType::Percent,
                    other => {
                        return Err(input_error(
                            &p.field_path("type"),
                            format!("{other:?} is not one of Pods, Percent"),
                        ));
                    }
                };
                out.push(ScalingPolicy {
                    kind,
                    value: p.req_i32("value")?,
                    period_seconds: p.req_i32("periodSeconds")?,
                });
            }
            Some(out)
        }
    };
    Ok(ScalingRules {
        stabilization_window_seconds: o.opt_i32("stabilizationWindowSeconds")?,
        select_policy,
        policies,
        tolerance: o.opt_quantity("tolerance")?,
    })
}

fn parse_behavior(o: &Obj<'_>) -> Result<Behavior> {
    Ok(Behavior {
        scale_up: o.opt_obj("scaleUp")?.map(|r| parse_rules(&r)).transpose()?,
        scale_down: o
            .opt_obj("scaleDown")?
            .map(|r| parse_rules(&r))
            .transpose()?,
    })
}

fn parse_status(root: &Obj<'_>) -> Result<AutoscalerStatus> {
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

fn condition_status(s: &str) -> ConditionStatus {
    match s {
        "True" => ConditionStatus::True,
        "False" => ConditionStatus::False,
        _ => ConditionStatus::Unknown,
    }
}

fn parse_container(o: &Obj<'_>) -> Result<Container> {
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

fn parse_pod(o: &Obj<'_>) -> Result<Pod> {
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

fn parse_window(o: &Obj<'_>, key: &str) -> Result<Option<Duration>> {
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

const DEFAULT_WINDOW: Duration = Duration::from_seconds(60);

fn parse_pod_metrics(o: &Obj<'_>, now: Time) -> Result<PodMetrics> {
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

fn parse_metric_values(o: &Obj<'_>, now: Time) -> Result<MetricValues> {
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

fn parse_events(h: &Obj<'_>, key: &str) -> Result<Vec<ScaleEvent>> {
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

fn parse_history(h: &Obj<'_>) -> Result<History> {
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

// ---------------------------------------------------------------------------
// Output

fn render_time(t: Option<Time>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.to_rfc3339()))
}

fn render_history(h: &History) -> Value {
    let recs = h.recommendations.as_ref().map_or(Value::Null, |rs| {
        Value::Array(
            rs.iter()
                .map(|r| json!({"replicas": r.replicas, "timestamp": r.timestamp.to_rfc3339()}))
                .collect(),
        )
    });
    let events = |es: &[ScaleEvent]| -> Value {
        Value::Array(
            es.iter()
                .map(|e| {
                    json!({
                        "replicaChange": e.replica_change,
                        "timestamp": e.timestamp.to_rfc3339(),
                        "outdated": e.outdated,
                    })
                })
                .collect(),
        )
    };
    json!({
        "recommendations": recs,
        "scaleUpEvents": events(&h.scale_up_events),
        "scaleDownEvents": events(&h.scale_down_events),
    })
}

/// Renders a decision as the `tidal calc` output object.
pub fn render_output(d: &Decision) -> Value {
    let metrics: Vec<Value> = d
        .metrics
        .iter()
        .map(|m| {
            let mut o = Map::new();
            o.insert("type".into(), Value::String(m.kind.clone()));
            o.insert("name".into(), Value::String(m.name.clone()));
            if let Some(c) = &m.container {
                o.insert("container".into(), Value::String(c.clone()));
            }
            match &m.outcome {
                MetricOutcome::Proposal { replicas, current } => {
                    o.insert("proposedReplicas".into(), json!(replicas));
                    let fmt = |v: i64| {
                        if current.binary {
                            format_milli_binary(v)
                        } else {
                            format_milli(v)
                        }
                    };
                    let mut c = Map::new();
                    if let Some(u) = current.average_utilization {
                        c.insert("averageUtilization".into(), json!(u));
                    }
                    if let Some(v) = current.average_value {
                        c.insert("averageValue".into(), Value::String(fmt(v)));
                    }
                    if let Some(v) = current.value {
                        c.insert("value".into(), Value::String(fmt(v)));
                    }
                    o.insert("current".into(), Value::Object(c));
                }
                MetricOutcome::Failed { reason, message } => {
                    o.insert(
                        "error".into(),
                        json!({"reason": reason, "message": message}),
                    );
                }
            }
            Value::Object(o)
        })
        .collect();
    let conditions: Vec<Value> = d
        .conditions
        .iter()
        .map(|c| {
            json!({
                "type": c.kind,
                "status": c.status,
                "reason": c.reason,
                "message": c.message,
                "lastTransitionTime": render_time(c.last_transition_time),
            })
        })
        .collect();
    let events: Vec<Value> = d
        .events
        .iter()
        .map(|e| json!({"type": e.kind.as_str(), "reason": e.reason, "message": e.message}))
        .collect();
    json!({
        "desiredReplicas": d.desired_replicas,
        "currentReplicas": d.current_replicas,
        "rescale": d.rescale,
        "reason": d.reason,
        "metrics": metrics,
        "conditions": conditions,
        "events": events,
        "history": d.history.as_ref().map_or(Value::Null, render_history),
        "lastScaleTimeUpdated": d.last_scale_time_updated,
    })
}
