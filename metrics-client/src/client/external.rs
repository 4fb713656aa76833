//! External metrics (`external.metrics.k8s.io/v1beta1`).

use super::{Call, MetricsClient};
use crate::api_types::{self, MetricsList};
use crate::encode::uri;
use crate::error::{Error, MetricsApi, Result};
use crate::samples::ExternalSample;

impl MetricsClient {
    /// An External metric: `GET /apis/external.metrics.k8s.io/v1beta1/namespaces/<ns>/<metric>?labelSelector=<msel>`.
    pub async fn external_metric(
        &self,
        namespace: &str,
        metric: &str,
        metric_selector: &str,
    ) -> Result<Vec<ExternalSample>> {
        super::custom::check_path_segment(MetricsApi::External, "metric name", metric)?;
        let call = Call {
            api: MetricsApi::External,
            version: "v1beta1",
            what: format!("{metric}.external.metrics.k8s.io"),
            uri: uri(
                &format!("/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}"),
                &[("labelSelector", metric_selector)],
            ),
        };
        let list: MetricsList<api_types::ExternalMetricValue> =
            self.get_json(&call, "ExternalMetricValueList").await?;
        if list.items.is_empty() {
            return Err(Error::NoMetrics {
                api: MetricsApi::External,
                detail: format!(
                    "the adapter returned no series of metric {metric:?} with selector {metric_selector:?} in namespace {namespace:?}: check the adapter's configuration for this metric and `kubectl get --raw '{}'`",
                    call.uri
                ),
            });
        }
        Ok(list.items.iter().map(ExternalSample::from_api).collect())
    }
}
