//! Conversion between a `HorizontalPodAutoscaler` (`autoscaling/v2`) and an
//! [`AutoScaler`], both ways, for `tidal convert` and the e2e comparison runner.
//!
//! The specs have the same JSON, field for field, so the conversion is a
//! change of `apiVersion`/`kind`; what this module adds is care at the edges:
//! - every HPA spec field survives HPA → AutoScaler → HPA unchanged (the
//!   property test in `tests/hpa_convert.rs` generates every field);
//! - a field the target type does not know is an error naming it, never
//!   silently dropped (a misspelt `averageUtilisation` would otherwise vanish);
//! - malformed input is an error naming the field's path (`spec.metrics[0]…`);
//! - `spec.tidal` has no HPA equivalent: converting back drops it and returns a
//!   warning naming what was dropped;
//! - metadata keeps what a user writes (name, namespace, generateName, labels,
//!   annotations) and drops what the API server sets (uid, resourceVersion,
//!   managedFields, creationTimestamp, generation, ownerReferences, status,
//!   kubectl's last-applied annotation), so the output of
//!   `--from-cluster` can be applied as a new object.

use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{AutoScaler, AutoScalerSpec, Error};

/// `apiVersion` of the HPA form this module reads and writes.
pub const HPA_API_VERSION: &str = "autoscaling/v2";
/// `kind` of an HPA.
pub const HPA_KIND: &str = "HorizontalPodAutoscaler";
/// `apiVersion` of an AutoScaler.
pub const AUTOSCALER_API_VERSION: &str = "autoscaling.tidal.dev/v1alpha1";
/// `kind` of an AutoScaler.
pub const AUTOSCALER_KIND: &str = "AutoScaler";

/// kubectl's copy of the last applied manifest: it describes the other kind,
/// so carrying it over would make a later `kubectl apply` compute a wrong diff.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Which way to convert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// HPA → AutoScaler.
    AutoScaler,
    /// AutoScaler → HPA (`spec.tidal` dropped with a warning).
    Hpa,
}

/// A converted object and what was dropped on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted<T> {
    /// The converted object.
    pub object: T,
    /// One line per dropped extension; empty when nothing was lost.
    pub warnings: Vec<String>,
}

/// The AutoScaler equivalent of an HPA: same spec, portable metadata.
pub fn autoscaler_from_hpa(hpa: &HorizontalPodAutoscaler) -> Result<AutoScaler, Error> {
    let spec: AutoScalerSpec = reshape(&hpa.spec, "spec")?;
    Ok(AutoScaler {
        metadata: portable(&hpa.metadata),
        spec,
        status: None,
    })
}

/// The HPA equivalent of an AutoScaler; `spec.tidal`, if set, is dropped and
/// reported in the warnings.
pub fn hpa_from_autoscaler(
    autoscaler: &AutoScaler,
) -> Result<Converted<HorizontalPodAutoscaler>, Error> {
    let mut spec = autoscaler.spec.clone();
    let mut warnings = Vec::new();
    if let Some(tidal) = spec.tidal.take() {
        let dropped = serde_json::to_string(&tidal).unwrap_or_else(|_| "{..}".into());
        warnings.push(format!(
            "spec.tidal {dropped} has no HorizontalPodAutoscaler equivalent and was dropped \
             (kube-controller-manager's flags decide sync period and delays for every HPA, and an \
             HPA always writes: no Shadow or Paused mode, no yielding to another writer of the \
             replicas)"
        ));
    }
    let spec: HorizontalPodAutoscalerSpec = reshape(&spec, "spec")?;
    Ok(Converted {
        object: HorizontalPodAutoscaler {
            metadata: portable(&autoscaler.metadata),
            spec,
            status: None,
        },
        warnings,
    })
}

/// Converts one user-supplied document (parsed JSON/YAML) to `target`,
/// checking its `apiVersion`/`kind`, the structure of its spec (errors name
/// the field path) and that no field would be dropped.
pub fn convert_document(doc: &Value, target: Target) -> Result<Converted<Value>, Error> {
    let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
    let (want_api, want_kind) = match target {
        Target::AutoScaler => (HPA_API_VERSION, HPA_KIND),
        Target::Hpa => (AUTOSCALER_API_VERSION, AUTOSCALER_KIND),
    };
    if (api_version, kind) != (want_api, want_kind) {
        return Err(Error::Invalid {
            field: if kind == want_kind {
                "apiVersion"
            } else {
                "kind"
            }
            .into(),
            message: wrong_kind_hint(api_version, kind, target),
        });
    }
    if doc.get("spec").is_none_or(Value::is_null) {
        return Err(Error::Invalid {
            field: "spec".into(),
            message: "missing: an autoscaler needs at least scaleTargetRef and maxReplicas".into(),
        });
    }
    // Only metadata and spec are converted; status is the controller's.
    let mut input = serde_json::Map::new();
    for key in ["apiVersion", "kind", "metadata", "spec"] {
        if let Some(v) = doc.get(key) {
            input.insert(key.into(), v.clone());
        }
    }
    let input = Value::Object(input);
    match target {
        Target::AutoScaler => {
            // Our spec type first: it requires what the API requires, where
            // k8s-openapi's would default a missing maxReplicas to 0.
            let spec: AutoScalerSpec = parse(&input["spec"], "spec")?;
            check_nothing_dropped(&input["spec"], &to_value(&spec)?, "spec")?;
            validate_spec(&spec)?;
            let hpa: HorizontalPodAutoscaler = parse(&input, "")?;
            check_nothing_dropped(&input["spec"], &to_value(&hpa.spec)?, "spec")?;
            let object = to_value(&autoscaler_from_hpa(&hpa)?)?;
            Ok(Converted {
                object,
                warnings: Vec::new(),
            })
        }
        Target::Hpa => {
            let autoscaler: AutoScaler = parse(&input, "")?;
            check_nothing_dropped(&input["spec"], &to_value(&autoscaler.spec)?, "spec")?;
            validate_spec(&autoscaler.spec)?;
            let converted = hpa_from_autoscaler(&autoscaler)?;
            Ok(Converted {
                object: to_value(&converted.object)?,
                warnings: converted.warnings,
            })
        }
    }
}

/// Checks what the API server would reject (the upstream HPA validation, which the CRD mirrors),
/// naming the field, so `tidal convert` fails before `kubectl apply` does. Reports the first
/// problem only.
pub fn validate_spec(spec: &AutoScalerSpec) -> Result<(), Error> {
    let bad = |field: String, message: &str| {
        Err(Error::Invalid {
            field,
            message: message.into(),
        })
    };
    let r = &spec.scale_target_ref;
    if let Some((field, message)) = reference_problem(r, "spec.scaleTargetRef") {
        return bad(field, &message);
    }
    let api_version = r.api_version.as_deref().unwrap_or("");
    let group_required = r.kind != "ReplicationController";
    if api_version.matches('/').count() > 1
        || (group_required
            && api_version
                .split_once('/')
                .is_none_or(|(g, _)| g.is_empty()))
    {
        return bad(
            "spec.scaleTargetRef.apiVersion".into(),
            "must be group/version, e.g. apps/v1 (only a ReplicationController may name the core group: v1)",
        );
    }
    if spec.max_replicas < 1 {
        return bad("spec.maxReplicas".into(), "must be at least 1");
    }
    let metrics = spec.metrics.as_deref().unwrap_or_default();
    if let Some(min) = spec.min_replicas {
        if min < 0 {
            return bad("spec.minReplicas".into(), "must not be negative");
        }
        if min > spec.max_replicas {
            return bad(
                "spec.maxReplicas".into(),
                "must be greater than or equal to minReplicas",
            );
        }
        if min == 0
            && !metrics
                .iter()
                .any(|m| m.type_ == "Object" || m.type_ == "External")
        {
            return bad(
                "spec.minReplicas".into(),
                "may be 0 only with an Object or External metric; set it to 1 or more",
            );
        }
    }
    for (i, m) in metrics.iter().enumerate() {
        if let Some((field, message)) = metric_problem(m) {
            return bad(format!("spec.metrics[{i}]{field}"), &message);
        }
    }
    let behavior = spec.behavior.as_ref();
    for (name, rules) in [
        ("scaleUp", behavior.and_then(|b| b.scale_up.as_ref())),
        ("scaleDown", behavior.and_then(|b| b.scale_down.as_ref())),
    ] {
        let Some(rules) = rules else { continue };
        let at = |f: &str| format!("spec.behavior.{name}.{f}");
        if rules
            .stabilization_window_seconds
            .is_some_and(|w| !(0..=3600).contains(&w))
        {
            return bad(at("stabilizationWindowSeconds"), "must be 0 to 3600");
        }
        if rules
            .select_policy
            .as_deref()
            .is_some_and(|p| !["Max", "Min", "Disabled"].contains(&p))
        {
            return bad(at("selectPolicy"), "must be Max, Min or Disabled");
        }
        if rules.policies.as_ref().is_some_and(Vec::is_empty) {
            return bad(
                at("policies"),
                "must not be empty when given (omit it for the defaults)",
            );
        }
        for (j, p) in rules.policies.iter().flatten().enumerate() {
            if p.type_ != "Pods" && p.type_ != "Percent" {
                return bad(
                    at(&format!("policies[{j}].type")),
                    "must be Pods or Percent",
                );
            }
            if p.value < 1 {
                return bad(at(&format!("policies[{j}].value")), "must be at least 1");
            }
            if !(1..=1800).contains(&p.period_seconds) {
                return bad(
                    at(&format!("policies[{j}].periodSeconds")),
                    "must be 1 to 1800",
                );
            }
        }
        if let Some(t) = &rules.tolerance
            && quantity_sign(t) < Some(0)
        {
            return bad(at("tolerance"), "must be a non-negative quantity");
        }
    }
    Ok(())
}

/// Upstream `IsPathSegmentName`: what may not be one segment of a request path.
pub fn path_segment_problem(name: &str) -> Option<&'static str> {
    match name {
        "." => Some("may not be '.'"),
        ".." => Some("may not be '..'"),
        _ if name.contains('/') => Some("may not contain '/'"),
        _ if name.contains('%') => Some("may not contain '%'"),
        _ => None,
    }
}

/// Upstream `ValidateCrossVersionObjectReference` without the apiVersion check (which differs
/// between the scale target and a described object): kind and name required path segments.
fn reference_problem(r: &crate::CrossVersionObjectReference, at: &str) -> Option<(String, String)> {
    for (field, value) in [("kind", &r.kind), ("name", &r.name)] {
        if value.is_empty() {
            return Some((format!("{at}.{field}"), "required".into()));
        }
        if let Some(why) = path_segment_problem(value) {
            return Some((
                format!("{at}.{field}"),
                format!("must be a valid path segment: {why}"),
            ));
        }
    }
    None
}

/// The sign of a quantity (`None` when it does not parse).
fn quantity_sign(q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity) -> Option<i32> {
    let v = scaling::Quantity::parse(&q.0).ok()?.as_approximate_f64();
    Some(if v > 0.0 {
        1
    } else if v < 0.0 {
        -1
    } else {
        0
    })
}

/// Upstream `validateMetricSpec` and the per-source checks, for one metric: the field path
/// below `spec.metrics[i]` and the message of the first problem.
fn metric_problem(m: &crate::MetricSpec) -> Option<(String, String)> {
    let problem = |field: &str, message: &str| Some((field.to_owned(), message.to_owned()));
    let block = match m.type_.as_str() {
        "Resource" => "resource",
        "ContainerResource" => "containerResource",
        "Pods" => "pods",
        "Object" => "object",
        "External" => "external",
        _ => {
            return problem(
                ".type",
                "must be Resource, ContainerResource, Pods, Object or External",
            );
        }
    };
    let present = [
        ("resource", m.resource.is_some()),
        ("containerResource", m.container_resource.is_some()),
        ("pods", m.pods.is_some()),
        ("object", m.object.is_some()),
        ("external", m.external.is_some()),
    ];
    if !present.iter().any(|(b, set)| *b == block && *set) {
        return problem(&format!(".{block}"), "required by the metric's type");
    }
    if present.iter().filter(|(_, set)| *set).count() > 1 {
        return problem("", "set only the source block that matches type");
    }
    // Which value fields the source requires, and which pair it forbids together.
    let (target, name, required, forbidden): (_, _, &[&str], Option<(&str, &str)>) = match block {
        "resource" => {
            let s = m.resource.as_ref()?;
            if s.name.is_empty() {
                return problem(".resource.name", "required, e.g. cpu");
            }
            (
                &s.target,
                None,
                &["averageUtilization", "averageValue"],
                Some(("averageUtilization", "averageValue")),
            )
        }
        "containerResource" => {
            let s = m.container_resource.as_ref()?;
            if !is_container_resource_name(&s.name) {
                return problem(
                    ".containerResource.name",
                    "must be a standard resource for containers (cpu, memory, ephemeral-storage, \
                     hugepages-<size>) or a qualified extended resource name",
                );
            }
            if !is_dns1123_label(&s.container) {
                return problem(
                    ".containerResource.container",
                    "must be a DNS-1123 label (a container's name)",
                );
            }
            (
                &s.target,
                None,
                &["averageUtilization", "averageValue"],
                Some(("averageUtilization", "averageValue")),
            )
        }
        "pods" => {
            let s = m.pods.as_ref()?;
            (&s.target, Some(&s.metric.name), &["averageValue"], None)
        }
        "object" => {
            let s = m.object.as_ref()?;
            if let Some(p) = reference_problem(&s.described_object, ".object.describedObject") {
                return Some(p);
            }
            if s.described_object
                .api_version
                .as_deref()
                .is_some_and(|v| v.matches('/').count() > 1)
            {
                return problem(
                    ".object.describedObject.apiVersion",
                    "must be version or group/version",
                );
            }
            (
                &s.target,
                Some(&s.metric.name),
                &["value", "averageValue"],
                None,
            )
        }
        _ => {
            let s = m.external.as_ref()?;
            (
                &s.target,
                Some(&s.metric.name),
                &["value", "averageValue"],
                Some(("value", "averageValue")),
            )
        }
    };
    let t = format!(".{block}.target");
    if let Some(name) = name {
        let at = format!(".{block}.metric.name");
        if name.is_empty() {
            return problem(&at, "required");
        }
        if let Some(why) = path_segment_problem(name) {
            return problem(&at, &format!("must be a valid path segment: {why}"));
        }
    }
    if !["Utilization", "Value", "AverageValue"].contains(&target.type_.as_str()) {
        return problem(
            &format!("{t}.type"),
            "must be Utilization, Value or AverageValue",
        );
    }
    let set = |f: &str| match f {
        "value" => target.value.is_some(),
        "averageValue" => target.average_value.is_some(),
        _ => target.average_utilization.is_some(),
    };
    if !required.iter().any(|f| set(f)) {
        return problem(
            &format!("{t}.{}", required[0]),
            &format!("required: set {}", required.join(" or ")),
        );
    }
    if let Some((a, b)) = forbidden
        && set(a)
        && set(b)
    {
        return problem(
            &format!("{t}.{b}"),
            &format!("may not be set together with {a}"),
        );
    }
    for (f, q) in [
        ("value", &target.value),
        ("averageValue", &target.average_value),
    ] {
        if q.as_ref().is_some_and(|q| quantity_sign(q) != Some(1)) {
            return problem(&format!("{t}.{f}"), "must be a positive quantity");
        }
    }
    if target.average_utilization.is_some_and(|u| u < 1) {
        return problem(&format!("{t}.averageUtilization"), "must be at least 1");
    }
    None
}

/// Upstream `ValidateContainerResourceName`, as the CRD's rule approximates it: without a `/` a
/// standard container resource (`cpu`, `memory`, `ephemeral-storage`, `hugepages-*`), with one a
/// qualified name (`prefix/name`).
fn is_container_resource_name(name: &str) -> bool {
    let qualified_part = |s: &str| {
        let b = s.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b.first().is_some_and(u8::is_ascii_alphanumeric)
            && b.last().is_some_and(u8::is_ascii_alphanumeric)
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    };
    match name.split_once('/') {
        None => {
            ["cpu", "memory", "ephemeral-storage"].contains(&name)
                || (name.starts_with("hugepages-") && qualified_part(name))
        }
        Some((prefix, rest)) => {
            !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(is_dns1123_label)
                && qualified_part(rest)
        }
    }
}

/// Upstream `IsDNS1123Label`.
fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 63
        && b.first().is_some_and(ok)
        && b.last().is_some_and(ok)
        && b.iter().all(|c| ok(c) || *c == b'-')
}

fn wrong_kind_hint(api_version: &str, kind: &str, target: Target) -> String {
    let got = format!("got apiVersion {api_version:?}, kind {kind:?}");
    match (target, kind) {
        (Target::AutoScaler, AUTOSCALER_KIND) => {
            format!("{got}: this is already an AutoScaler; use `--to hpa` to convert it back")
        }
        (Target::Hpa, HPA_KIND) if api_version == HPA_API_VERSION => {
            format!("{got}: this is already an HPA; use `--to autoscaler` to convert it")
        }
        (_, HPA_KIND) => format!(
            "{got}: only autoscaling/v2 is converted; fetch the v2 form with \
             `kubectl get hpa.v2.autoscaling NAME -o yaml`"
        ),
        (Target::AutoScaler, _) => {
            format!("{got}: expected {HPA_API_VERSION} {HPA_KIND}")
        }
        (Target::Hpa, _) => {
            format!("{got}: expected {AUTOSCALER_API_VERSION} {AUTOSCALER_KIND}")
        }
    }
}

/// Deserializes `value` into `T`, naming the failing field's path under `root`.
fn parse<T: DeserializeOwned>(value: &Value, root: &str) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = match (root, path.as_str()) {
            (r, ".") => r.to_owned(),
            ("", p) => p.to_owned(),
            (r, p) => format!("{r}.{p}"),
        };
        Error::Invalid {
            field: if field.is_empty() { ".".into() } else { field },
            message: e.into_inner().to_string(),
        }
    })
}

/// One serializable spec as another with the same JSON.
fn reshape<A: serde::Serialize, B: DeserializeOwned>(from: &A, root: &str) -> Result<B, Error> {
    parse(&to_value(from)?, root)
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, Error> {
    serde_json::to_value(v).map_err(|e| Error::Invalid {
        field: ".".into(),
        message: e.to_string(),
    })
}

/// Fails on the first field of `input` (not null) that `parsed` lacks: the
/// target type does not know it, and converting would silently lose it.
fn check_nothing_dropped(input: &Value, parsed: &Value, path: &str) -> Result<(), Error> {
    match (input, parsed) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                if v.is_null() {
                    continue;
                }
                let sub = format!("{path}.{k}");
                match b.get(k) {
                    Some(w) => check_nothing_dropped(v, w, &sub)?,
                    None => {
                        return Err(Error::Invalid {
                            field: sub,
                            message:
                                "unknown field: autoscaling/v2 has no such field (misspelt?); \
                                      converting would drop it"
                                    .into(),
                        });
                    }
                }
            }
            Ok(())
        }
        (Value::Array(a), Value::Array(b)) => a
            .iter()
            .zip(b)
            .enumerate()
            .try_for_each(|(i, (v, w))| check_nothing_dropped(v, w, &format!("{path}[{i}]"))),
        _ => Ok(()),
    }
}

/// What a user writes in metadata, without what the API server sets.
fn portable(meta: &ObjectMeta) -> ObjectMeta {
    let annotations = meta.annotations.clone().map(|mut a| {
        a.remove(LAST_APPLIED);
        a
    });
    ObjectMeta {
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        generate_name: meta.generate_name.clone(),
        labels: meta.labels.clone(),
        annotations: annotations.filter(|a| !a.is_empty()),
        ..ObjectMeta::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hpa_doc(spec: Value) -> Value {
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
               "metadata": {"name": "web", "namespace": "shop", "uid": "1234", "resourceVersion": "7",
                            "labels": {"app": "web"},
                            "annotations": {LAST_APPLIED: "{}", "team": "checkout"}},
               "spec": spec,
               "status": {"currentReplicas": 3, "desiredReplicas": 3}})
    }

    fn cpu_spec() -> Value {
        json!({"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
               "minReplicas": 1, "maxReplicas": 10,
               "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 50}}}]})
    }

    fn err(r: Result<Converted<Value>, Error>) -> (String, String) {
        match r {
            Err(Error::Invalid { field, message }) => (field, message),
            other => panic!("expected an invalid-input error, got {other:?}"),
        }
    }

    #[test]
    fn an_hpa_becomes_an_autoscaler_with_the_same_spec_and_portable_metadata() {
        let out = convert_document(&hpa_doc(cpu_spec()), Target::AutoScaler)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(out.warnings.is_empty());
        let o = out.object;
        assert_eq!(o["apiVersion"], AUTOSCALER_API_VERSION);
        assert_eq!(o["kind"], AUTOSCALER_KIND);
        assert_eq!(o["spec"], cpu_spec());
        assert_eq!(
            o["metadata"],
            json!({"name": "web", "namespace": "shop", "labels": {"app": "web"},
                   "annotations": {"team": "checkout"}})
        );
        assert!(o.get("status").is_none_or(Value::is_null));
    }

    #[test]
    fn converting_back_drops_spec_tidal_with_a_warning_naming_it() {
        let mut doc = hpa_doc(cpu_spec());
        doc["apiVersion"] = AUTOSCALER_API_VERSION.into();
        doc["kind"] = AUTOSCALER_KIND.into();
        doc["spec"]["tidal"] = json!({"mode": "Shadow", "syncPeriodSeconds": 30});
        let out = convert_document(&doc, Target::Hpa).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.object["spec"], cpu_spec());
        assert_eq!(out.object["kind"], HPA_KIND);
        assert_eq!(out.warnings.len(), 1);
        assert!(out.warnings[0].contains("spec.tidal"), "{:?}", out.warnings);
        assert!(out.warnings[0].contains("Shadow"), "{:?}", out.warnings);
    }

    #[test]
    fn a_misspelt_field_is_an_error_naming_it_not_a_silent_drop() {
        let mut spec = cpu_spec();
        spec["metrics"][0]["resource"]["target"]["averageUtilisation"] = json!(50);
        let (field, message) = err(convert_document(&hpa_doc(spec), Target::AutoScaler));
        assert_eq!(field, "spec.metrics[0].resource.target.averageUtilisation");
        assert!(message.contains("unknown field"), "{message}");
    }

    #[test]
    fn malformed_fields_are_named_by_path() {
        for (spec, want) in [
            (
                json!({"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "w"}}),
                "spec",
            ),
            (
                json!({"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "w"}, "maxReplicas": "ten"}),
                "spec.maxReplicas",
            ),
            (
                json!({"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "w"}, "maxReplicas": 3,
                       "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"averageUtilization": 5}}}]}),
                "spec.metrics[0].resource.target",
            ),
            (
                json!({"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "w"}, "maxReplicas": 3, "minReplicas": 5}),
                "spec.maxReplicas",
            ),
            (
                json!({"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "w"}, "maxReplicas": 3,
                       "metrics": [{"type": "Pods", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 5}}}]}),
                "spec.metrics[0].pods",
            ),
            (
                json!({"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "w"}, "maxReplicas": 3,
                       "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "value": "5"}}}]}),
                "spec.metrics[0].resource.target.averageUtilization",
            ),
            (
                json!({"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "w"}, "maxReplicas": 3,
                       "behavior": {"scaleDown": {"selectPolicy": "Fastest"}}}),
                "spec.behavior.scaleDown.selectPolicy",
            ),
            (
                json!({"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "w"}, "maxReplicas": 3,
                       "behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": "x", "periodSeconds": 1}]}}}),
                "spec.behavior.scaleUp.policies[0].value",
            ),
        ] {
            let (field, message) =
                err(convert_document(&hpa_doc(spec.clone()), Target::AutoScaler));
            assert_eq!(field, want, "{spec}: {message}");
        }
    }

    #[test]
    fn wrong_kinds_and_versions_say_what_to_do() {
        let mut v1 = hpa_doc(cpu_spec());
        v1["apiVersion"] = "autoscaling/v1".into();
        let (field, message) = err(convert_document(&v1, Target::AutoScaler));
        assert_eq!(field, "apiVersion");
        assert!(message.contains("hpa.v2.autoscaling"), "{message}");

        let mut already = hpa_doc(cpu_spec());
        already["apiVersion"] = AUTOSCALER_API_VERSION.into();
        already["kind"] = AUTOSCALER_KIND.into();
        let (field, message) = err(convert_document(&already, Target::AutoScaler));
        assert_eq!(field, "kind");
        assert!(message.contains("--to hpa"), "{message}");

        let (_, message) = err(convert_document(&hpa_doc(cpu_spec()), Target::Hpa));
        assert!(message.contains("--to autoscaler"), "{message}");

        let mut no_spec = hpa_doc(cpu_spec());
        no_spec["spec"] = Value::Null;
        assert_eq!(
            err(convert_document(&no_spec, Target::AutoScaler)).0,
            "spec"
        );
    }
}
