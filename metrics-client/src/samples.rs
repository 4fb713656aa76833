//! What the client hands to the operator: plain, serde-friendly samples with
//! the fields the HPA reads (contract 1.7), and nothing Kubernetes-typed.
//!
//! Quantities stay strings (`"250m"`, `"64Mi"`): the decision core owns the
//! exact `MilliValue()` conversion (contract 0.2), and one parser is better
//! than two that might round differently.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::api_types;

/// The window the HPA assumes when a custom metric carries no `windowSeconds`
/// (`metricServerDefaultMetricWindow` upstream).
pub const DEFAULT_CUSTOM_METRIC_WINDOW: Duration = Duration::from_secs(60);

/// Usage of one container of a pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerUsage {
    /// Container name.
    pub name: String,
    /// Resource name to quantity string, exactly as the API returned it.
    pub usage: BTreeMap<String, String>,
}

/// One `PodMetrics` item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodSample {
    /// Pod name (the key the HPA matches against its pod list).
    pub name: String,
    /// The pod's labels as the metrics API copied them (empty with providers that do not).
    pub labels: BTreeMap<String, String>,
    /// When the sample was taken; Go's zero time if the API left it out.
    pub timestamp: Timestamp,
    /// The window the usage covers; zero if absent (a bad one fails the list).
    pub window: Duration,
    /// Containers in the order the API listed them. Zero containers means
    /// the pod has no sample (contract 1.7).
    pub containers: Vec<ContainerUsage>,
}

impl PodSample {
    /// The quantities of `resource` for every listed container, or `None`
    /// when the pod has no whole-pod sample: zero containers, or any container
    /// lacking the resource (contract 1.7). The caller sums the milli-values.
    pub fn pod_usage(&self, resource: &str) -> Option<Vec<&str>> {
        if self.containers.is_empty() {
            return None;
        }
        self.containers
            .iter()
            .map(|c| c.usage.get(resource).map(String::as_str))
            .collect()
    }

    /// The quantity of `resource` in the first container named `container`,
    /// or `None` (no sample) if there is no such container or it lacks the resource.
    pub fn container_usage(&self, container: &str, resource: &str) -> Option<&str> {
        self.containers
            .iter()
            .find(|c| c.name == container)
            .and_then(|c| c.usage.get(resource))
            .map(String::as_str)
    }

    pub(crate) fn from_api(item: &api_types::PodMetrics) -> Self {
        Self {
            name: item.metadata.name.clone().unwrap_or_default(),
            labels: item.metadata.labels.clone().unwrap_or_default(),
            timestamp: api_types::time_or_zero(&item.timestamp),
            window: item
                .window
                .as_deref()
                .and_then(api_types::parse_go_duration)
                .unwrap_or_default(),
            containers: item
                .containers
                .iter()
                .map(|c| ContainerUsage {
                    name: c.name.clone(),
                    usage: c
                        .usage
                        .iter()
                        .map(|(k, v)| (k.clone(), v.0.clone()))
                        .collect(),
                })
                .collect(),
        }
    }
}

/// The answer to one `PodMetrics` LIST, already filtered to one selector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodMetricsSnapshot {
    /// Namespace that was listed.
    pub namespace: String,
    /// `metrics.k8s.io/v1` or `metrics.k8s.io/v1beta1`: which version answered.
    pub api_version: String,
    /// The items in API order (metrics-server sorts them by name).
    pub pods: Vec<PodSample>,
}

impl PodMetricsSnapshot {
    /// The timestamp upstream reports as "the metric timestamp": the first item's (logging only).
    pub fn first_timestamp(&self) -> Option<Timestamp> {
        self.pods.first().map(|p| p.timestamp)
    }
}

/// The object a custom metric value describes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescribedObject {
    /// `apiVersion` of the object.
    pub api_version: String,
    /// `kind` of the object.
    pub kind: String,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Name (the pod name for Pods metrics).
    pub name: String,
}

/// One item of a custom-metrics `MetricValueList` (Pods and Object metrics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricSample {
    /// The object the value belongs to.
    pub described_object: DescribedObject,
    /// Metric name as the adapter reported it.
    pub metric_name: String,
    /// The value as a quantity string.
    pub value: String,
    /// When the value was produced.
    pub timestamp: Timestamp,
    /// `windowSeconds` as sent; see [`MetricSample::window`].
    pub window_seconds: Option<i64>,
}

impl MetricSample {
    /// The sample window the HPA uses: `windowSeconds`, or 60s when absent.
    pub fn window(&self) -> Duration {
        match self.window_seconds {
            Some(s) => Duration::from_secs(u64::try_from(s).unwrap_or(0)),
            None => DEFAULT_CUSTOM_METRIC_WINDOW,
        }
    }

    pub(crate) fn from_v1beta2(item: &api_types::MetricValueV1beta2) -> Self {
        Self {
            described_object: described(&item.described_object),
            metric_name: item.metric.name.clone(),
            value: item.value.0.clone(),
            timestamp: api_types::time_or_zero(&item.timestamp),
            window_seconds: item.window_seconds,
        }
    }

    pub(crate) fn from_v1beta1(item: &api_types::MetricValueV1beta1) -> Self {
        Self {
            described_object: described(&item.described_object),
            metric_name: item.metric_name.clone(),
            value: item.value.0.clone(),
            timestamp: api_types::time_or_zero(&item.timestamp),
            window_seconds: item.window_seconds,
        }
    }
}

fn described(r: &k8s_openapi::api::core::v1::ObjectReference) -> DescribedObject {
    DescribedObject {
        api_version: r.api_version.clone().unwrap_or_default(),
        kind: r.kind.clone().unwrap_or_default(),
        namespace: r.namespace.clone().unwrap_or_default(),
        name: r.name.clone().unwrap_or_default(),
    }
}

/// One series of an `ExternalMetricValueList`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalSample {
    /// Metric name.
    pub metric_name: String,
    /// Labels identifying the series.
    pub metric_labels: BTreeMap<String, String>,
    /// The value as a quantity string.
    pub value: String,
    /// When the value was produced (upstream reports the first item's).
    pub timestamp: Timestamp,
    /// `window` as sent, in seconds.
    pub window_seconds: Option<i64>,
}

impl ExternalSample {
    pub(crate) fn from_api(item: &api_types::ExternalMetricValue) -> Self {
        Self {
            metric_name: item.metric_name.clone(),
            metric_labels: item.metric_labels.clone(),
            value: item.value.0.clone(),
            timestamp: api_types::time_or_zero(&item.timestamp),
            window_seconds: item.window_seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(containers: &[(&str, &[(&str, &str)])]) -> PodSample {
        PodSample {
            name: "p".into(),
            labels: BTreeMap::new(),
            timestamp: api_types::go_zero_time(),
            window: Duration::from_secs(15),
            containers: containers
                .iter()
                .map(|(name, usage)| ContainerUsage {
                    name: name.to_string(),
                    usage: usage
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn whole_pod_sample_is_missing_when_any_container_lacks_the_resource() {
        let full = pod(&[("a", &[("cpu", "10m")]), ("b", &[("cpu", "5m")])]);
        assert_eq!(full.pod_usage("cpu"), Some(vec!["10m", "5m"]));
        let partial = pod(&[("a", &[("cpu", "10m")]), ("b", &[("memory", "1Mi")])]);
        assert_eq!(partial.pod_usage("cpu"), None);
        assert_eq!(pod(&[]).pod_usage("cpu"), None);
    }

    #[test]
    fn container_sample_takes_the_first_container_with_that_name() {
        let p = pod(&[
            ("a", &[("memory", "1Mi")]),
            ("b", &[("cpu", "7m")]),
            ("b", &[("cpu", "9m")]),
        ]);
        assert_eq!(p.container_usage("b", "cpu"), Some("7m"));
        assert_eq!(p.container_usage("a", "cpu"), None);
        assert_eq!(p.container_usage("zzz", "cpu"), None);
    }
}
