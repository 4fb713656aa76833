//! Resource metrics (`metrics.k8s.io`): the PodMetrics of the pods a selector matches.

use super::{Call, MetricsClient};
use crate::api_types::{self, MetricsList};
use crate::encode::uri;
use crate::error::{Error, MetricsApi, Result};
use crate::samples::{PodMetricsSnapshot, PodSample};

impl MetricsClient {
    /// Resource metrics for the pods matching `selector` (the canonical
    /// selector string) in `namespace`:
    /// `GET /apis/metrics.k8s.io/<ver>/namespaces/<ns>/pods?labelSelector=<sel>`.
    ///
    /// An empty answer is [`Error::NoMetrics`], as upstream.
    pub async fn pod_metrics(&self, namespace: &str, selector: &str) -> Result<PodMetricsSnapshot> {
        let snapshot = self.list_pod_metrics(namespace, selector).await?;
        if snapshot.pods.is_empty() {
            return Err(no_pod_metrics(namespace, selector));
        }
        Ok(snapshot)
    }

    /// The same LIST without the empty check (the batching source lists whole namespaces).
    pub(crate) async fn list_pod_metrics(
        &self,
        namespace: &str,
        selector: &str,
    ) -> Result<PodMetricsSnapshot> {
        let version = self.resource_version().await;
        let call = Call {
            api: MetricsApi::Resource,
            version: version.as_str(),
            what: "pods.metrics.k8s.io".to_string(),
            uri: uri(
                &format!(
                    "/apis/metrics.k8s.io/{}/namespaces/{namespace}/pods",
                    version.as_str()
                ),
                &[("labelSelector", selector)],
            ),
        };
        let list: MetricsList<api_types::PodMetrics> =
            self.get_json(&call, "PodMetricsList").await?;
        // Go decodes `window` with time.ParseDuration and fails the whole
        // list on a bad one; so do we, rather than invent a zero window.
        if let Some(bad) = list.items.iter().find_map(|i| {
            i.window
                .as_deref()
                .filter(|w| api_types::parse_go_duration(w).is_none())
        }) {
            return Err(Error::Malformed {
                api: call.api,
                request: call.uri.clone(),
                apiservice: call.apiservice(),
                detail: format!("time: invalid duration {bad:?} in PodMetricsList"),
            });
        }
        Ok(PodMetricsSnapshot {
            namespace: namespace.to_string(),
            api_version: format!("metrics.k8s.io/{}", version.as_str()),
            pods: list.items.iter().map(PodSample::from_api).collect(),
        })
    }
}

pub(crate) fn no_pod_metrics(namespace: &str, selector: &str) -> Error {
    Error::NoMetrics {
        api: MetricsApi::Resource,
        detail: format!(
            "the API returned no PodMetrics for pods matching {selector:?} in namespace {namespace:?}; metrics-server lists a pod only once it is Running and scraped twice: wait a scrape interval or two, then check `kubectl top pod -n {namespace} -l '{selector}'`"
        ),
    }
}
