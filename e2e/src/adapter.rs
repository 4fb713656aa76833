//! The custom and external metrics adapter of the local control plane: the test adapter of
//! `sigs.k8s.io/custom-metrics-apiserver`, which `cluster.sh up` starts and registers as
//! `v1beta1.custom.metrics.k8s.io` and `v1beta1.external.metrics.k8s.io`.
//!
//! It serves whatever custom metric values were last written to its plain-HTTP write API
//! (`POST /write-metrics/namespaces/NS/RESOURCE/NAME/METRIC`, the body a quantity as a JSON
//! string) and a fixed set of external metrics ([`EXTERNAL_METRICS`]). Its URL is found through
//! the cluster: `cluster.sh` keeps it in an annotation of the custom metrics APIService.
//!
//! [`MetricFeed`] is the load driver's counterpart for these metrics: every tick it writes a
//! total spread over a workload's Ready pods (a Pods metric), or divided by them (an Object
//! metric whose value falls as the workload grows, as a latency or a per-replica backlog does).

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::{Api, Client};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::driver::SharedDemand;
use crate::error::{Error, Result};
use crate::wait::{is_ready, pods};

/// The APIService whose annotation [`URL_ANNOTATION`] holds the write API's URL.
pub const CUSTOM_METRICS_APISERVICE: &str = "v1beta1.custom.metrics.k8s.io";
/// The external metrics APIService the same adapter serves.
pub const EXTERNAL_METRICS_APISERVICE: &str = "v1beta1.external.metrics.k8s.io";
/// Annotation (set by `cluster.sh`) with the write API's base URL, `http://127.0.0.1:PORT`.
pub const URL_ANNOTATION: &str = "e2e.tidal.dev/write-metrics-url";

/// One of the external metrics the test adapter serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExternalMetric {
    /// Metric name.
    pub name: &'static str,
    /// Its labels, which a metric selector matches.
    pub labels: &'static [(&'static str, &'static str)],
    /// Its value, whole units.
    pub value: i64,
}

/// The external metrics the test adapter serves, fixed in its code: values cannot be written;
/// a selector picks among them and the HPA sums what matches.
pub const EXTERNAL_METRICS: &[ExternalMetric] = &[
    ExternalMetric {
        name: "my-external-metric",
        labels: &[("foo", "bar")],
        value: 42,
    },
    ExternalMetric {
        name: "my-external-metric",
        labels: &[("foo", "baz")],
        value: 43,
    },
    ExternalMetric {
        name: "other-external-metric",
        labels: &[],
        value: 44,
    },
];

/// One answer of the write API must come within this long (loopback).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The adapter's write API.
#[derive(Debug, Clone)]
pub struct MetricsAdapter {
    addr: SocketAddr,
}

impl MetricsAdapter {
    /// The adapter registered on the cluster `client` talks to.
    pub async fn discover(client: &Client) -> Result<Self> {
        let api: Api<APIService> = Api::all(client.clone());
        let svc = api
            .get_opt(CUSTOM_METRICS_APISERVICE)
            .await?
            .ok_or_else(|| {
                Error::Adapter(format!(
                    "APIService {CUSTOM_METRICS_APISERVICE} is not registered: start the cluster \
                     with `e2e/cluster/cluster.sh up`, which starts the metrics adapter"
                ))
            })?;
        let url = svc
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(URL_ANNOTATION))
            .ok_or_else(|| {
                Error::Adapter(format!(
                    "APIService {CUSTOM_METRICS_APISERVICE} has no {URL_ANNOTATION} annotation: \
                     it was not registered by e2e/cluster/cluster.sh"
                ))
            })?;
        Self::from_url(url)
    }

    /// The write API at `url` (`http://HOST:PORT`, HOST an IP address).
    pub fn from_url(url: &str) -> Result<Self> {
        let addr = url
            .strip_prefix("http://")
            .map(|rest| rest.trim_end_matches('/'))
            .and_then(|hostport| hostport.parse::<SocketAddr>().ok())
            .ok_or_else(|| {
                Error::Adapter(format!(
                    "write API URL {url:?} is not http://IP:PORT (e.g. http://127.0.0.1:43111)"
                ))
            })?;
        Ok(Self { addr })
    }

    /// The write API's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sets custom metric `metric` of pod `namespace/pod` to `value` (a quantity, e.g. `"750m"`).
    pub async fn set_pod_metric(
        &self,
        namespace: &str,
        pod: &str,
        metric: &str,
        value: &str,
    ) -> Result<()> {
        self.set_object_metric(namespace, "pods", pod, metric, value)
            .await
    }

    /// Sets custom metric `metric` of the object `resource`/`name` in `namespace` to `value`.
    /// `resource` is the resource as the custom metrics API names it: `services`,
    /// `deployments.apps`. The object need not exist: the adapter serves what was written.
    pub async fn set_object_metric(
        &self,
        namespace: &str,
        resource: &str,
        name: &str,
        metric: &str,
        value: &str,
    ) -> Result<()> {
        let path = format!("/write-metrics/namespaces/{namespace}/{resource}/{name}/{metric}");
        let body = serde_json::Value::String(value.to_owned()).to_string();
        let addr = self.addr;
        let what = format!("POST {}{path}", self.url());
        tokio::task::spawn_blocking(move || post(addr, &path, &body))
            .await
            .map_err(|e| Error::Adapter(format!("{what}: {e}")))?
            .map_err(|e| Error::Adapter(format!("{what}: {e}")))
    }
}

/// One HTTP/1.1 POST on loopback; `Ok` on a 2xx answer. (A plain socket: the e2e crate has no
/// HTTP client besides kube's, which only talks to the API server.)
fn post(addr: SocketAddr, path: &str, body: &str) -> std::result::Result<(), String> {
    let mut stream = TcpStream::connect_timeout(&addr, WRITE_TIMEOUT).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(WRITE_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(WRITE_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    let status = answer.lines().next().unwrap_or_default();
    match status.split_whitespace().nth(1) {
        Some(code) if code.starts_with('2') => Ok(()),
        _ => Err(format!(
            "answered {:?}",
            answer.chars().take(300).collect::<String>()
        )),
    }
}

/// Formats `value` as a quantity in thousandths (`"2500"` → `"2500"`, 0.75 → `"750m"`).
pub fn format_value(value: f64) -> String {
    let milli = (value * 1000.0).round() as i64;
    if milli % 1000 == 0 {
        format!("{}", milli / 1000)
    } else {
        format!("{milli}m")
    }
}

/// How a [`MetricFeed`] turns its total into written values.
#[derive(Debug, Clone)]
pub enum Feed {
    /// Pods metric `metric` of every pod matching `selector`: a Ready pod gets total ÷ Ready
    /// pods, any other pod 0 (it serves nothing yet).
    PerPod {
        /// Label selector of the workload's pods.
        selector: String,
        /// Metric name.
        metric: String,
    },
    /// Object metric `metric` of `resource`/`name`: total ÷ Ready pods matching `selector`
    /// (the whole total while none is Ready).
    PerReadyPodOfObject {
        /// Custom metrics API resource, e.g. `services`.
        resource: String,
        /// Object name.
        name: String,
        /// Metric name.
        metric: String,
        /// Label selector of the pods that share the load.
        selector: String,
    },
    /// Object metric `metric` of `resource`/`name`: the total itself.
    Object {
        /// Custom metrics API resource, e.g. `services`.
        resource: String,
        /// Object name.
        name: String,
        /// Metric name.
        metric: String,
    },
}

/// Writes custom metric values every second from a total a test (or the comparison runner) sets.
pub struct MetricFeed {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl MetricFeed {
    /// Writes `feed` once now (so the first decisions see values) and then every `tick` in the
    /// background, from `total` (its millicores field is read as the metric's total).
    pub async fn start(
        adapter: MetricsAdapter,
        client: Client,
        namespace: &str,
        feed: Feed,
        total: SharedDemand,
        tick: Duration,
    ) -> Result<Self> {
        let state = Arc::new(FeedState {
            adapter,
            client,
            namespace: namespace.to_owned(),
            feed,
            written: Mutex::new(HashMap::new()),
        });
        write_once(&state, total.get().millicores).await?;
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut interval = tokio::time::interval(tick);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    _ = interval.tick() => {
                        if let Err(e) = write_once(&state, total.get().millicores).await {
                            tracing::warn!(error = %e, "metric feed tick failed");
                        }
                    }
                }
            }
        });
        Ok(Self { stop, task })
    }

    /// Stops writing (the adapter keeps serving the last values).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// What a feed writes with, and the per-pod values it last wrote.
struct FeedState {
    adapter: MetricsAdapter,
    client: Client,
    namespace: String,
    feed: Feed,
    written: Mutex<HashMap<String, f64>>,
}

async fn write_once(state: &FeedState, total: f64) -> Result<()> {
    let (adapter, client, ns) = (&state.adapter, &state.client, state.namespace.as_str());
    match &state.feed {
        Feed::PerPod { selector, metric } => {
            let live: Vec<_> = pods(client, ns, selector)
                .await?
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .collect();
            let ready = live.iter().filter(|p| is_ready(p)).count();
            let mut writes: Vec<(String, f64, f64)> = live
                .iter()
                .filter_map(|pod| {
                    let name = pod.metadata.name.clone()?;
                    let value = if is_ready(pod) {
                        total / ready as f64
                    } else {
                        0.0
                    };
                    Some((name, value, 0.0))
                })
                .collect();
            {
                let written = state.written.lock().unwrap_or_else(PoisonError::into_inner);
                for w in &mut writes {
                    w.2 = written.get(&w.0).copied().unwrap_or(0.0);
                }
            }
            // Falling values first: a controller reading between two writes then sees at most
            // the total, never an old share beside a new one (the sum momentarily above the
            // total would be an overshoot neither the HPA nor Tidal should be blamed for).
            writes.sort_by(|a, b| (a.1 - a.2).total_cmp(&(b.1 - b.2)));
            for (name, value, _) in writes {
                adapter
                    .set_pod_metric(ns, &name, metric, &format_value(value))
                    .await?;
                state
                    .written
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(name, value);
            }
        }
        Feed::PerReadyPodOfObject {
            resource,
            name,
            metric,
            selector,
        } => {
            let ready = pods(client, ns, selector)
                .await?
                .iter()
                .filter(|p| is_ready(p))
                .count()
                .max(1);
            adapter
                .set_object_metric(
                    ns,
                    resource,
                    name,
                    metric,
                    &format_value(total / ready as f64),
                )
                .await?;
        }
        Feed::Object {
            resource,
            name,
            metric,
        } => {
            adapter
                .set_object_metric(ns, resource, name, metric, &format_value(total))
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_written_as_whole_numbers_or_thousandths() {
        assert_eq!(format_value(2500.0), "2500");
        assert_eq!(format_value(0.75), "750m");
        assert_eq!(format_value(1000.0 / 3.0), "333333m");
        assert_eq!(format_value(0.0), "0");
    }

    #[test]
    fn the_write_url_must_be_http_to_an_ip_and_port() {
        assert_eq!(
            MetricsAdapter::from_url("http://127.0.0.1:43111/")
                .expect("valid")
                .url(),
            "http://127.0.0.1:43111"
        );
        for bad in [
            "127.0.0.1:1",
            "https://127.0.0.1:1",
            "http://localhost:1",
            "http://127.0.0.1",
        ] {
            let err = MetricsAdapter::from_url(bad).expect_err(bad).to_string();
            assert!(err.contains("http://IP:PORT"), "{bad}: {err}");
        }
    }
}
