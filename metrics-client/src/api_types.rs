//! The serde types of the three metrics APIs' responses (`metrics.k8s.io`,
//! `custom.metrics.k8s.io`, `external.metrics.k8s.io`), written by hand.
//!
//! Why not the `k8s-metrics` crate (0.29.0, built on k8s-openapi 0.29, the
//! line the workspace pins)? Checked before writing these:
//! * its container `usage` is a struct with two required fields, `cpu` and
//!   `memory`. Upstream it is a `ResourceList` map: a container that lacks the
//!   resource must give the pod "no sample" (contract 1.7), not fail the
//!   whole response, and other resource names must survive;
//! * `metrics.k8s.io/v1` is only compiled with k8s-openapi's `v1_37` feature,
//!   while the workspace pins `v1_36`, and we must prefer v1 when a server offers it;
//! * it has no `custom.metrics.k8s.io/v1beta1`, which older adapters still serve;
//! * its quantity helpers go through `f64`, while the decision core needs
//!   exact milli-values (contract 0.2), so we pass quantities on as strings.
//!
//! The shapes follow `k8s.io/metrics/pkg/apis/*` field for field. Fields the
//! HPA never reads are still decoded where cheap, so the types can serve an
//! e2e test or `kubectl top`-like tooling.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ListMeta, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize};

/// API group of the resource metrics API.
pub const METRICS_GROUP: &str = "metrics.k8s.io";
/// API group of the custom metrics API.
pub const CUSTOM_METRICS_GROUP: &str = "custom.metrics.k8s.io";
/// API group of the external metrics API.
pub const EXTERNAL_METRICS_GROUP: &str = "external.metrics.k8s.io";

/// `metrics.k8s.io` `PodMetrics`; v1beta1 and v1 share this schema.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodMetrics {
    /// Name, namespace and, with metrics-server 0.6+, the pod's labels.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// When the samples were taken (the earliest container timestamp).
    #[serde(default)]
    pub timestamp: Option<Time>,
    /// The window the usage was averaged over, as a Go duration string (`"14.982s"`).
    #[serde(default)]
    pub window: Option<String>,
    /// Per-container usage.
    #[serde(default, deserialize_with = "null_as_default")]
    pub containers: Vec<ContainerMetrics>,
}

/// Usage of one container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerMetrics {
    /// Container name.
    pub name: String,
    /// Resource name (`cpu`, `memory`, ...) to quantity.
    #[serde(default, deserialize_with = "null_as_default")]
    pub usage: BTreeMap<String, Quantity>,
}

/// `metrics.k8s.io` `NodeMetrics`; v1beta1 and v1 share this schema.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeMetrics {
    /// Node name and labels.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// When the sample was taken.
    #[serde(default)]
    pub timestamp: Option<Time>,
    /// Averaging window, as a Go duration string.
    #[serde(default)]
    pub window: Option<String>,
    /// Resource name to quantity.
    #[serde(default, deserialize_with = "null_as_default")]
    pub usage: BTreeMap<String, Quantity>,
}

/// A list response of any of the metrics APIs (`PodMetricsList`, `MetricValueList`, ...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "T: Deserialize<'de>"))]
pub struct MetricsList<T> {
    /// `kind` of the list; checked against the expected kind, as client-go's decoder does.
    #[serde(default)]
    pub kind: Option<String>,
    /// `apiVersion` of the list.
    #[serde(default)]
    pub api_version: Option<String>,
    /// List metadata.
    #[serde(default)]
    pub metadata: ListMeta,
    /// The items; `null` reads as empty, as in Go.
    #[serde(default, deserialize_with = "null_as_default")]
    pub items: Vec<T>,
}

/// `custom.metrics.k8s.io/v1beta2` `MetricIdentifier`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricIdentifier {
    /// Metric name.
    pub name: String,
    /// The metric selector the adapter applied, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// `custom.metrics.k8s.io/v1beta2` `MetricValue`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricValueV1beta2 {
    /// The object the value describes.
    #[serde(default)]
    pub described_object: ObjectReference,
    /// Which metric this is.
    #[serde(default)]
    pub metric: MetricIdentifier,
    /// When the value was produced.
    #[serde(default)]
    pub timestamp: Option<Time>,
    /// Window of a rate metric; absent means the HPA's 60s default.
    #[serde(default)]
    pub window_seconds: Option<i64>,
    /// The value.
    pub value: Quantity,
}

/// `custom.metrics.k8s.io/v1beta1` `MetricValue`: the metric name and selector
/// sit at the top level instead of under `metric`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricValueV1beta1 {
    /// The object the value describes.
    #[serde(default)]
    pub described_object: ObjectReference,
    /// Metric name.
    #[serde(default)]
    pub metric_name: String,
    /// When the value was produced.
    #[serde(default)]
    pub timestamp: Option<Time>,
    /// Window of a rate metric.
    #[serde(default)]
    pub window_seconds: Option<i64>,
    /// The value.
    pub value: Quantity,
    /// The metric selector the adapter applied, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// `external.metrics.k8s.io/v1beta1` `ExternalMetricValue`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalMetricValue {
    /// Metric name.
    #[serde(default)]
    pub metric_name: String,
    /// Labels identifying this series.
    #[serde(default, deserialize_with = "null_as_default")]
    pub metric_labels: BTreeMap<String, String>,
    /// When the value was produced.
    #[serde(default)]
    pub timestamp: Option<Time>,
    /// Window of a rate metric, in seconds (the JSON name is `window`).
    #[serde(default, rename = "window")]
    pub window_seconds: Option<i64>,
    /// The value.
    pub value: Quantity,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Go's zero `time.Time` (`0001-01-01T00:00:00Z`), what a missing timestamp decodes to upstream.
pub fn go_zero_time() -> Timestamp {
    // Seconds from 0001-01-01 to the Unix epoch; well inside jiff's range.
    Timestamp::from_second(-62_135_596_800).unwrap_or(Timestamp::MIN)
}

/// The timestamp of an optional `metav1.Time`, Go's zero time when absent.
pub fn time_or_zero(t: &Option<Time>) -> Timestamp {
    t.as_ref().map(|t| t.0).unwrap_or_else(go_zero_time)
}

/// Parses a Go `time.Duration` string as `metav1.Duration` serializes it
/// (`"15s"`, `"14.982s"`, `"1m30s"`, `"500ms"`, `"0s"`). Negative durations
/// are rejected: a metrics window cannot be negative.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let rest = text.strip_prefix('+').unwrap_or(text);
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() || rest.starts_with('-') {
        return None;
    }
    let mut rest = rest;
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(num_len);
        if number.is_empty() || number == "." {
            return None;
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let mut frac_nanos: u128 = 0;
        let mut scale: u128 = 1;
        for d in frac.bytes() {
            if !d.is_ascii_digit() {
                return None;
            }
            // Beyond 1e-12 of an hour nothing changes at nanosecond precision.
            if scale < 1_000_000_000_000_000 {
                frac_nanos = frac_nanos * 10 + u128::from(d - b'0');
                scale *= 10;
            }
        }
        total_nanos = total_nanos
            .checked_add(whole.checked_mul(unit_nanos)?)?
            .checked_add(frac_nanos * unit_nanos / scale)?;
        rest = after;
    }
    let nanos = u64::try_from(total_nanos).ok()?;
    Some(Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_as_metrics_server_writes_them_parse() {
        let cases = [
            ("15s", Duration::from_secs(15)),
            ("14.982s", Duration::from_millis(14_982)),
            ("1m0s", Duration::from_secs(60)),
            ("1m30.5s", Duration::from_millis(90_500)),
            ("500ms", Duration::from_millis(500)),
            ("1h2m3s", Duration::from_secs(3723)),
            ("0s", Duration::ZERO),
            ("0", Duration::ZERO),
            ("1.5µs", Duration::from_nanos(1500)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_go_duration(text), Some(want), "{text}");
        }
        for bad in ["", "15", "-1s", "1x", "s", ".s"] {
            assert_eq!(parse_go_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn container_without_a_resource_decodes_instead_of_failing_the_list() {
        let list: MetricsList<PodMetrics> = serde_json::from_value(serde_json::json!({
            "kind": "PodMetricsList",
            "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {},
            "items": [{
                "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "x"}},
                "timestamp": "2026-01-01T00:00:00Z",
                "window": "15s",
                "containers": [{"name": "c", "usage": {"memory": "1Mi"}}]
            }]
        }))
        .expect("decodes");
        let pod = &list.items[0];
        assert_eq!(pod.containers[0].usage.get("cpu"), None);
        assert_eq!(pod.containers[0].usage["memory"].0, "1Mi");
    }

    #[test]
    fn v1beta1_and_v1beta2_metric_values_and_external_values_decode() {
        let v2: MetricValueV1beta2 = serde_json::from_value(serde_json::json!({
            "describedObject": {"kind": "Pod", "name": "p", "namespace": "ns", "apiVersion": "v1"},
            "metric": {"name": "rps"},
            "timestamp": "2026-01-01T00:00:00Z",
            "windowSeconds": 30,
            "value": "250m"
        }))
        .expect("v1beta2");
        assert_eq!(v2.metric.name, "rps");
        assert_eq!(v2.window_seconds, Some(30));
        let v1: MetricValueV1beta1 = serde_json::from_value(serde_json::json!({
            "describedObject": {"kind": "Pod", "name": "p"},
            "metricName": "rps",
            "timestamp": "2026-01-01T00:00:00Z",
            "value": "3"
        }))
        .expect("v1beta1");
        assert_eq!(v1.metric_name, "rps");
        assert_eq!(v1.window_seconds, None);
        let ext: ExternalMetricValue = serde_json::from_value(serde_json::json!({
            "metricName": "queue",
            "metricLabels": {"q": "jobs"},
            "timestamp": "2026-01-01T00:00:00Z",
            "window": 60,
            "value": "10"
        }))
        .expect("external");
        assert_eq!(ext.window_seconds, Some(60));
        assert_eq!(time_or_zero(&None).to_string(), "0001-01-01T00:00:00Z");
    }
}
