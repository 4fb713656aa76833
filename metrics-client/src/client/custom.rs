//! Custom metrics (`custom.metrics.k8s.io`, v1beta2 or v1beta1): Pods and Object metrics.

use super::{Call, CustomMetricsVersion, MetricsClient, ObjectTarget};
use crate::api_types::{self, MetricsList};
use crate::encode::uri;
use crate::error::{Error, MetricsApi, Result};
use crate::samples::MetricSample;

/// Refuses a name that is not one path segment before it is placed into a request path, as
/// client-go's request builder does (`invalid resource "<name>": [may not contain '/']`): a
/// metric named `../../../../api/v1/namespaces/kube-system/secrets` must never become a GET of
/// something else. Upstream admission (and the AutoScaler CRD) already rejects such names;
/// this is the second line of defence for objects admitted before those rules existed.
///
/// The error ([`Error::InvalidName`]) names the field and the value.
pub(super) fn check_path_segment(api: MetricsApi, what: &str, name: &str) -> Result<()> {
    let problem = match name {
        "" => Some("may not be empty"),
        "." => Some("may not be '.'"),
        ".." => Some("may not be '..'"),
        _ if name.contains('/') => Some("may not contain '/'"),
        _ if name.contains('%') => Some("may not contain '%'"),
        _ => None,
    };
    match problem {
        None => Ok(()),
        Some(why) => Err(Error::InvalidName {
            api,
            field: what.to_string(),
            name: name.to_string(),
            why: why.to_string(),
        }),
    }
}

impl MetricsClient {
    /// A Pods metric: `GET /apis/custom.metrics.k8s.io/<ver>/namespaces/<ns>/pods/*/<metric>?labelSelector=<sel>&metricLabelSelector=<msel>`
    /// (`*` is sent as `%2A`, as client-go escapes it; empty selectors are left out).
    pub async fn pods_metric(
        &self,
        namespace: &str,
        selector: &str,
        metric: &str,
        metric_selector: &str,
    ) -> Result<Vec<MetricSample>> {
        check_path_segment(MetricsApi::Custom, "metric name", metric)?;
        let version = self.custom_version().await?;
        let call = Call {
            api: MetricsApi::Custom,
            version: version.as_str(),
            what: "pods.custom.metrics.k8s.io *".to_string(),
            uri: uri(
                &format!(
                    "/apis/custom.metrics.k8s.io/{}/namespaces/{namespace}/pods/*/{metric}",
                    version.as_str()
                ),
                &[
                    ("labelSelector", selector),
                    ("metricLabelSelector", metric_selector),
                ],
            ),
        };
        let samples = self.get_metric_values(&call, version).await?;
        if samples.is_empty() {
            return Err(Error::NoMetrics {
                api: MetricsApi::Custom,
                detail: format!(
                    "the adapter returned no values of metric {metric:?} for pods matching {selector:?} in namespace {namespace:?}: check the adapter's rules for this metric and `kubectl get --raw '{}'`",
                    call.uri
                ),
            });
        }
        Ok(samples)
    }

    /// An Object metric: `GET /apis/custom.metrics.k8s.io/<ver>/namespaces/<ns>/<resource[.group]>/<name>/<metric>?metricLabelSelector=<msel>`,
    /// or `.../namespaces/<ns>/metrics/<metric>` for the Namespace kind.
    /// Exactly one item must come back.
    pub async fn object_metric(
        &self,
        namespace: &str,
        target: &ObjectTarget,
        metric: &str,
        metric_selector: &str,
    ) -> Result<MetricSample> {
        check_path_segment(MetricsApi::Custom, "metric name", metric)?;
        if let ObjectTarget::Object { name, .. } = target {
            check_path_segment(MetricsApi::Custom, "describedObject name", name)?;
        }
        let version = self.custom_version().await?;
        let v = version.as_str();
        let (path, what) = match target {
            ObjectTarget::Namespace => (
                format!("/apis/custom.metrics.k8s.io/{v}/namespaces/{namespace}/metrics/{metric}"),
                format!("namespaces.custom.metrics.k8s.io {namespace}"),
            ),
            ObjectTarget::Object { resource, name } => (
                format!(
                    "/apis/custom.metrics.k8s.io/{v}/namespaces/{namespace}/{resource}/{name}/{metric}"
                ),
                format!("{resource}.custom.metrics.k8s.io {name}"),
            ),
        };
        let call = Call {
            api: MetricsApi::Custom,
            version: v,
            what,
            uri: uri(&path, &[("metricLabelSelector", metric_selector)]),
        };
        let mut samples = self.get_metric_values(&call, version).await?;
        if samples.len() != 1 {
            return Err(Error::NotExactlyOne {
                count: samples.len(),
                request: call.uri,
            });
        }
        Ok(samples.remove(0))
    }

    async fn get_metric_values(
        &self,
        call: &Call<'_>,
        version: CustomMetricsVersion,
    ) -> Result<Vec<MetricSample>> {
        Ok(match version {
            CustomMetricsVersion::V1beta2 => {
                let list: MetricsList<api_types::MetricValueV1beta2> =
                    self.get_json(call, "MetricValueList").await?;
                list.items.iter().map(MetricSample::from_v1beta2).collect()
            }
            CustomMetricsVersion::V1beta1 => {
                let list: MetricsList<api_types::MetricValueV1beta1> =
                    self.get_json(call, "MetricValueList").await?;
                list.items.iter().map(MetricSample::from_v1beta1).collect()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_not_one_path_segment_are_refused_with_the_name_in_the_error() {
        for (name, why) in [
            (
                "../../../../api/v1/namespaces/kube-system/secrets",
                "may not contain '/'",
            ),
            ("..", "may not be '..'"),
            (".", "may not be '.'"),
            ("qps%2F..", "may not contain '%'"),
            ("", "may not be empty"),
        ] {
            let err = check_path_segment(MetricsApi::External, "metric name", name)
                .expect_err(name)
                .to_string();
            assert!(err.contains(&format!("{name:?}")), "{name}: {err}");
            assert!(err.contains(why), "{name}: {err}");
            assert!(err.contains("metric name"), "{name}: {err}");
            assert!(err.contains("no request was made"), "{name}: {err}");
            // Bad input, not a connectivity problem: the hint must not send users there.
            assert!(!err.contains("could not talk"), "{name}: {err}");
        }
    }

    #[test]
    fn ordinary_metric_names_pass() {
        for name in [
            "requests_per_second",
            "queue-depth",
            "a.b.c",
            "http_requests{verb=GET}",
            "...",
        ] {
            assert!(
                check_path_segment(MetricsApi::Custom, "metric name", name).is_ok(),
                "{name}"
            );
        }
    }
}
