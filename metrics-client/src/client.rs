//! The exact client: the requests kube-controller-manager makes (contract
//! 1.7), version discovery, and the diagnosis of failures through the
//! APIService that should serve the API.
//!
//! Requests go through [`kube::Client::send`] rather than kube's typed `Api`
//! so the URI is byte-for-byte client-go's (see [`crate::encode`]) and the
//! HTTP status stays visible: a 404 or 503 is where the diagnosis starts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, StatusCode, header};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{APIGroupList, APIResourceList};
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::client::Body;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::encode::uri;
use crate::error::{ApiServiceState, Error, MetricsApi, Result};
use crate::samples::{ExternalSample, MetricSample, PodMetricsSnapshot, PodSample};
use crate::wire::{self, MetricsList};

/// How long one metrics request may take. The HPA loop runs every 15s by
/// default; a metrics call that has not answered in 10s would push the whole
/// pass past its period, so it is better reported as a failure of this pass.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long discovery results are kept. Upstream invalidates its custom
/// metrics discovery cache once per sync period (15s by default).
pub const DEFAULT_DISCOVERY_TTL: Duration = Duration::from_secs(15);

/// Tunables of [`MetricsClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Limit on one request, the body included.
    pub request_timeout: Duration,
    /// How long discovered API versions are reused.
    pub discovery_ttl: Duration,
    /// On 404/503, read the APIService to say what is wrong (one extra GET per failure).
    pub diagnose_apiservice: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            discovery_ttl: DEFAULT_DISCOVERY_TTL,
            diagnose_apiservice: true,
        }
    }
}

/// Version of `metrics.k8s.io` in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResourceMetricsVersion {
    /// `metrics.k8s.io/v1` (GA in Kubernetes 1.37), preferred when served.
    V1,
    /// `metrics.k8s.io/v1beta1`, what every metrics-server serves.
    V1beta1,
}

impl ResourceMetricsVersion {
    /// `v1` or `v1beta1`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceMetricsVersion::V1 => "v1",
            ResourceMetricsVersion::V1beta1 => "v1beta1",
        }
    }
}

/// Version of `custom.metrics.k8s.io` in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CustomMetricsVersion {
    /// `custom.metrics.k8s.io/v1beta2`, preferred.
    V1beta2,
    /// `custom.metrics.k8s.io/v1beta1`, served by older adapters.
    V1beta1,
}

impl CustomMetricsVersion {
    /// `v1beta2` or `v1beta1`.
    pub fn as_str(self) -> &'static str {
        match self {
            CustomMetricsVersion::V1beta2 => "v1beta2",
            CustomMetricsVersion::V1beta1 => "v1beta1",
        }
    }
}

/// What discovery found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiVersions {
    /// The resource metrics version: v1 if listed, else v1beta1 (also when
    /// the group is missing: the request then fails and is diagnosed).
    pub resource: ResourceMetricsVersion,
    /// The custom metrics version, or upstream's reason why there is none.
    pub custom: Result<CustomMetricsVersion, String>,
}

/// The object an Object metric describes, resolved to its request path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ObjectTarget {
    /// `kind: Namespace` in the core group: the HPA's own namespace is used,
    /// whatever name the spec gives (upstream ignores it too).
    Namespace,
    /// A namespaced object.
    Object {
        /// `resource[.group]` as Go's `GroupResource.String()` prints it, e.g. `deployments.apps`.
        resource: String,
        /// The object's name.
        name: String,
    },
}

/// Reads the three metrics APIs with kube-controller-manager's request shapes.
///
/// Cheap to clone; clones share the discovery and mapping caches.
#[derive(Clone)]
pub struct MetricsClient {
    client: kube::Client,
    config: ClientConfig,
    state: Arc<State>,
}

#[derive(Default)]
struct State {
    // An async mutex held across the discovery request, so concurrent
    // reconciles wait for one discovery instead of all doing their own.
    discovery: tokio::sync::Mutex<Option<(Instant, ApiVersions)>>,
    mappings: std::sync::Mutex<HashMap<(String, String), String>>,
}

/// Everything about one request that error messages need.
struct Call<'a> {
    api: MetricsApi,
    version: &'a str,
    /// Go's `GroupResource.String()` plus the name, for client-go style texts.
    what: String,
    uri: String,
}

impl Call<'_> {
    fn apiservice(&self) -> String {
        format!("{}.{}", self.version, self.api.group())
    }
}

impl MetricsClient {
    /// A client with default tunables. Works with any [`kube::Client`]: a
    /// real cluster's, or a mocked service in tests.
    pub fn new(client: kube::Client) -> Self {
        Self::with_config(client, ClientConfig::default())
    }

    /// A client with explicit tunables.
    pub fn with_config(client: kube::Client, config: ClientConfig) -> Self {
        Self {
            client,
            config,
            state: Arc::new(State::default()),
        }
    }

    /// The tunables in use.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Drops cached discovery and kind-to-resource mappings. The operator
    /// calls this once per sync period, as upstream does.
    pub async fn invalidate_discovery(&self) {
        *self.state.discovery.lock().await = None;
        if let Ok(mut m) = self.state.mappings.lock() {
            m.clear();
        }
    }

    /// The API versions to use, from cache or a fresh `GET /apis`.
    pub async fn api_versions(&self) -> Result<ApiVersions> {
        let mut cached = self.state.discovery.lock().await;
        if let Some((at, versions)) = cached.as_ref()
            && at.elapsed() < self.config.discovery_ttl
        {
            return Ok(versions.clone());
        }
        let call = Call {
            api: MetricsApi::Custom,
            version: "v1beta2",
            what: String::new(),
            uri: "/apis".to_string(),
        };
        let groups: APIGroupList = self.get_json(&call, "APIGroupList").await?;
        let versions = choose_versions(&groups);
        tracing::debug!(?versions, "discovered metrics API versions");
        *cached = Some((Instant::now(), versions.clone()));
        Ok(versions)
    }

    async fn resource_version(&self) -> ResourceMetricsVersion {
        match self.api_versions().await {
            Ok(v) => v.resource,
            Err(err) => {
                // Upstream's resource metrics client does not depend on
                // discovery; neither should we: fall back to v1beta1.
                tracing::warn!(%err, "discovery failed, using metrics.k8s.io/v1beta1");
                ResourceMetricsVersion::V1beta1
            }
        }
    }

    async fn custom_version(&self) -> Result<CustomMetricsVersion> {
        let versions = self
            .api_versions()
            .await
            .map_err(|e| relabel(e, MetricsApi::Custom))?;
        versions.custom.map_err(|upstream| Error::NotRegistered {
            api: MetricsApi::Custom,
            upstream,
        })
    }

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
        let list: MetricsList<wire::PodMetrics> = self.get_json(&call, "PodMetricsList").await?;
        // Go decodes `window` with time.ParseDuration and fails the whole
        // list on a bad one; so do we, rather than invent a zero window.
        if let Some(bad) = list.items.iter().find_map(|i| {
            i.window
                .as_deref()
                .filter(|w| wire::parse_go_duration(w).is_none())
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
            pods: list.items.iter().map(PodSample::from_wire).collect(),
        })
    }

    /// A Pods metric: `GET /apis/custom.metrics.k8s.io/<ver>/namespaces/<ns>/pods/*/<metric>?labelSelector=<sel>&metricLabelSelector=<msel>`
    /// (`*` is sent as `%2A`, as client-go escapes it; empty selectors are left out).
    pub async fn pods_metric(
        &self,
        namespace: &str,
        selector: &str,
        metric: &str,
        metric_selector: &str,
    ) -> Result<Vec<MetricSample>> {
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

    /// An External metric: `GET /apis/external.metrics.k8s.io/v1beta1/namespaces/<ns>/<metric>?labelSelector=<msel>`.
    pub async fn external_metric(
        &self,
        namespace: &str,
        metric: &str,
        metric_selector: &str,
    ) -> Result<Vec<ExternalSample>> {
        let call = Call {
            api: MetricsApi::External,
            version: "v1beta1",
            what: format!("{metric}.external.metrics.k8s.io"),
            uri: uri(
                &format!("/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}"),
                &[("labelSelector", metric_selector)],
            ),
        };
        let list: MetricsList<wire::ExternalMetricValue> =
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
        Ok(list.items.iter().map(ExternalSample::from_wire).collect())
    }

    /// Resolves an Object metric's `describedObject` (`apiVersion`, `kind`,
    /// `name`) to its request path, like upstream's REST mapper: the
    /// Namespace kind is special, anything else is looked up in
    /// `GET /apis/<group>/<version>` (or `/api/v1`) and cached.
    pub async fn object_target(
        &self,
        api_version: &str,
        kind: &str,
        name: &str,
    ) -> Result<ObjectTarget> {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        if kind == "Namespace" && group.is_empty() {
            return Ok(ObjectTarget::Namespace);
        }
        let group_kind = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let key = (api_version.to_string(), kind.to_string());
        if let Some(resource) = self
            .state
            .mappings
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return Ok(ObjectTarget::Object {
                resource,
                name: name.to_string(),
            });
        }
        let path = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        let call = Call {
            api: MetricsApi::Custom,
            version: "v1beta2",
            what: String::new(),
            uri: uri(&path, &[]),
        };
        let mapping_error = |detail: String| Error::ResourceMapping {
            group_kind: group_kind.clone(),
            detail,
        };
        let list: APIResourceList = self
            .get_json(&call, "APIResourceList")
            .await
            .map_err(|e| mapping_error(e.upstream_cause()))?;
        let plural = list
            .resources
            .iter()
            .find(|r| r.kind == kind && !r.name.contains('/'))
            .map(|r| r.name.clone())
            .ok_or_else(|| {
                mapping_error(format!(
                    "no matches for kind {kind:?} in version {api_version:?}"
                ))
            })?;
        // Go's GroupResource.String(): the bare resource for the core group.
        let resource = if group.is_empty() {
            plural
        } else {
            format!("{plural}.{group}")
        };
        if let Ok(mut m) = self.state.mappings.lock() {
            m.insert(key, resource.clone());
        }
        Ok(ObjectTarget::Object {
            resource,
            name: name.to_string(),
        })
    }

    async fn get_metric_values(
        &self,
        call: &Call<'_>,
        version: CustomMetricsVersion,
    ) -> Result<Vec<MetricSample>> {
        Ok(match version {
            CustomMetricsVersion::V1beta2 => {
                let list: MetricsList<wire::MetricValueV1beta2> =
                    self.get_json(call, "MetricValueList").await?;
                list.items.iter().map(MetricSample::from_v1beta2).collect()
            }
            CustomMetricsVersion::V1beta1 => {
                let list: MetricsList<wire::MetricValueV1beta1> =
                    self.get_json(call, "MetricValueList").await?;
                list.items.iter().map(MetricSample::from_v1beta1).collect()
            }
        })
    }

    /// GET with the timeout; returns status and body.
    async fn get(&self, call: &Call<'_>) -> Result<(StatusCode, Vec<u8>)> {
        let request = Request::get(call.uri.as_str())
            .header(header::ACCEPT, "application/json")
            .body(Body::empty())
            .map_err(|e| Error::Transport {
                api: call.api,
                detail: format!("invalid request URI {:?}: {e}", call.uri),
                apiservice_state: None,
            })?;
        let exchange = async {
            let response = self.client.send(request).await?;
            let status = response.status();
            let body = response.into_body().collect_bytes().await?;
            Ok::<_, kube::Error>((status, body.to_vec()))
        };
        match tokio::time::timeout(self.config.request_timeout, exchange).await {
            Err(_) => Err(Error::Timeout {
                api: call.api,
                request: call.uri.clone(),
                apiservice: call.apiservice(),
                timeout: self.config.request_timeout,
                apiservice_state: None,
            }),
            Ok(Err(e)) => Err(Error::Transport {
                api: call.api,
                detail: e.to_string(),
                apiservice_state: None,
            }),
            Ok(Ok(answer)) => Ok(answer),
        }
    }

    /// GET, then decode a JSON object of the expected `kind`; failures are diagnosed.
    async fn get_json<T: DeserializeOwned>(&self, call: &Call<'_>, kind: &str) -> Result<T> {
        let (status, body) = match self.get(call).await {
            Ok(answer) => answer,
            Err(e) => return Err(self.with_apiservice_state(call, e).await),
        };
        if !status.is_success() {
            return Err(self.diagnose(call, status, &body).await);
        }
        let malformed = |detail: String| Error::Malformed {
            api: call.api,
            request: call.uri.clone(),
            apiservice: call.apiservice(),
            detail,
        };
        let value: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| malformed(format!("{e} in body {}", excerpt(&body))))?;
        // client-go's decoder refuses a body without the expected kind; a
        // wrong Service behind the APIService often answers 200 with JSON.
        let got = value.get("kind").and_then(|k| k.as_str()).unwrap_or("");
        if got != kind {
            return Err(malformed(format!(
                "expected kind {kind:?}, got {got:?} in body {}",
                excerpt(&body)
            )));
        }
        serde_json::from_value(value).map_err(|e| malformed(format!("{e} in {kind}")))
    }

    /// Whether a failure of `call` should be explained by its APIService's state: only metrics
    /// paths have one (discovery and mapping requests go to the Kubernetes API server itself).
    fn diagnosable(&self, call: &Call<'_>) -> bool {
        self.config.diagnose_apiservice
            && call
                .uri
                .starts_with(&format!("/apis/{}/", call.api.group()))
    }

    /// Adds the APIService's `Available` state to a timeout or transport failure, so the
    /// condition says whether the aggregator already knows the server is gone.
    async fn with_apiservice_state(&self, call: &Call<'_>, e: Error) -> Error {
        if !self.diagnosable(call) {
            return e;
        }
        let apiservice = call.apiservice();
        match e {
            Error::Timeout {
                api,
                request,
                apiservice: name,
                timeout,
                ..
            } => Error::Timeout {
                api,
                request,
                apiservice: name,
                timeout,
                apiservice_state: Some(
                    self.apiservice_state(&apiservice)
                        .await
                        .describe(&apiservice),
                ),
            },
            Error::Transport { api, detail, .. } => Error::Transport {
                api,
                detail,
                apiservice_state: Some(
                    self.apiservice_state(&apiservice)
                        .await
                        .describe(&apiservice),
                ),
            },
            other => other,
        }
    }

    /// Turns an unsuccessful answer into the error that names the cause.
    async fn diagnose(&self, call: &Call<'_>, status: StatusCode, body: &[u8]) -> Error {
        let upstream = client_go_message(status, body, &call.what);
        let code = status.as_u16();
        let apiservice = call.apiservice();
        let generic = |upstream: String| {
            if code == 503 {
                Error::ServiceUnavailable {
                    api: call.api,
                    apiservice: apiservice.clone(),
                    apiservice_check: Some("not checked".to_string()),
                    upstream,
                }
            } else {
                Error::Status {
                    api: call.api,
                    code,
                    request: call.uri.clone(),
                    upstream,
                    apiservice_state: None,
                }
            }
        };
        if !self.diagnosable(call) {
            return generic(upstream);
        }
        if code >= 500 && code != 503 {
            // 500, 502, 504...: the aggregator answered for a server it could not use.
            return Error::Status {
                api: call.api,
                code,
                request: call.uri.clone(),
                upstream,
                apiservice_state: Some(
                    self.apiservice_state(&apiservice)
                        .await
                        .describe(&apiservice),
                ),
            };
        }
        if !(code == 404 || code == 503) {
            return generic(upstream);
        }
        match self.apiservice_state(&apiservice).await {
            ApiServiceState::Missing => Error::ApiServiceMissing {
                api: call.api,
                apiservice,
                upstream,
            },
            ApiServiceState::NotAvailable { reason, message } => Error::ApiServiceUnavailable {
                api: call.api,
                apiservice,
                reason,
                message,
                upstream,
            },
            ApiServiceState::Available if code == 503 => Error::ServiceUnavailable {
                api: call.api,
                apiservice,
                apiservice_check: None,
                upstream,
            },
            ApiServiceState::Available => generic(upstream),
            ApiServiceState::Unknown(why) if code == 503 => Error::ServiceUnavailable {
                api: call.api,
                apiservice,
                apiservice_check: Some(why),
                upstream,
            },
            ApiServiceState::Unknown(_) => generic(upstream),
        }
    }

    async fn apiservice_state(&self, name: &str) -> ApiServiceState {
        let call = Call {
            api: MetricsApi::Resource,
            version: "v1",
            what: "apiservices.apiregistration.k8s.io".to_string(),
            uri: uri(
                &format!("/apis/apiregistration.k8s.io/v1/apiservices/{name}"),
                &[],
            ),
        };
        let (status, body) = match self.get(&call).await {
            Ok(answer) => answer,
            Err(e) => return ApiServiceState::Unknown(e.upstream_cause()),
        };
        if status == StatusCode::NOT_FOUND {
            return ApiServiceState::Missing;
        }
        if !status.is_success() {
            return ApiServiceState::Unknown(client_go_message(status, &body, &call.what));
        }
        let service: APIService = match serde_json::from_slice(&body) {
            Ok(s) => s,
            Err(e) => return ApiServiceState::Unknown(format!("malformed APIService: {e}")),
        };
        let available = service
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Available"));
        match available {
            Some(c) if c.status == "True" => ApiServiceState::Available,
            Some(c) => ApiServiceState::NotAvailable {
                reason: c.reason.clone().unwrap_or_default(),
                message: c.message.clone().unwrap_or_default(),
            },
            // A fresh APIService has no conditions until the aggregator checks it.
            None => ApiServiceState::NotAvailable {
                reason: "NoAvailableCondition".to_string(),
                message: "the aggregator has not reported availability yet".to_string(),
            },
        }
    }
}

/// Chooses versions from the group list, as upstream does: for custom
/// metrics the group's preferred version if we know it, else the first
/// listed version we know.
fn choose_versions(groups: &APIGroupList) -> ApiVersions {
    let find = |name: &str| groups.groups.iter().find(|g| g.name == name);
    let resource = match find(wire::METRICS_GROUP) {
        Some(g) if g.versions.iter().any(|v| v.version == "v1") => ResourceMetricsVersion::V1,
        _ => ResourceMetricsVersion::V1beta1,
    };
    let known = |group_version: &str| match group_version {
        "custom.metrics.k8s.io/v1beta2" => Some(CustomMetricsVersion::V1beta2),
        "custom.metrics.k8s.io/v1beta1" => Some(CustomMetricsVersion::V1beta1),
        _ => None,
    };
    let custom = match find(wire::CUSTOM_METRICS_GROUP) {
        None => Err("no custom metrics API (custom.metrics.k8s.io) registered".to_string()),
        Some(g) => g
            .preferred_version
            .as_ref()
            .and_then(|p| known(&p.group_version))
            .or_else(|| g.versions.iter().find_map(|v| known(&v.group_version)))
            .ok_or_else(|| "no known available metric versions found".to_string()),
    };
    ApiVersions { resource, custom }
}

/// The text client-go would build for an unsuccessful response: the
/// Status message when the body is a Status, else its generic text for the
/// code followed by `(get <resource>[ <name>])`.
fn client_go_message(status: StatusCode, body: &[u8], what: &str) -> String {
    if let Ok(s) = serde_json::from_slice::<kube::core::Status>(body)
        && !s.message.is_empty()
    {
        return s.message;
    }
    let text = String::from_utf8_lossy(body).trim().to_string();
    let generic = match status.as_u16() {
        400 => "the server rejected our request for an unknown reason".to_string(),
        401 => "Unauthorized".to_string(),
        403 => "the server does not allow access to the requested resource".to_string(),
        404 => "the server could not find the requested resource".to_string(),
        429 => "the server has received too many requests and has asked us to try again later"
            .to_string(),
        503 => "the server is currently unable to handle the request".to_string(),
        504 => "the server was unable to return a response in the time allotted, but may still be processing the request".to_string(),
        _ => format!("an error on the server ({text:?}) has prevented the request from succeeding"),
    };
    if what.is_empty() {
        generic
    } else {
        format!("{generic} (get {what})")
    }
}

fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 120;
    let text = String::from_utf8_lossy(body);
    let cut: String = text.chars().take(MAX).collect();
    if text.chars().count() > MAX {
        format!("{cut:?}...")
    } else {
        format!("{cut:?}")
    }
}

fn relabel(e: Error, api: MetricsApi) -> Error {
    match e {
        Error::Timeout {
            request,
            apiservice,
            timeout,
            apiservice_state,
            ..
        } => Error::Timeout {
            api,
            request,
            apiservice,
            timeout,
            apiservice_state,
        },
        Error::Transport {
            detail,
            apiservice_state,
            ..
        } => Error::Transport {
            api,
            detail,
            apiservice_state,
        },
        Error::Status {
            code,
            request,
            upstream,
            apiservice_state,
            ..
        } => Error::Status {
            api,
            code,
            request,
            upstream,
            apiservice_state,
        },
        Error::ServiceUnavailable {
            apiservice,
            apiservice_check,
            upstream,
            ..
        } => Error::ServiceUnavailable {
            api,
            apiservice,
            apiservice_check,
            upstream,
        },
        other => other,
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{APIGroup, GroupVersionForDiscovery};

    fn group(name: &str, preferred: Option<&str>, versions: &[&str]) -> APIGroup {
        let gv = |v: &str| GroupVersionForDiscovery {
            group_version: format!("{name}/{v}"),
            version: v.to_string(),
        };
        APIGroup {
            name: name.to_string(),
            preferred_version: preferred.map(gv),
            versions: versions.iter().map(|v| gv(v)).collect(),
            server_address_by_client_cidrs: None,
        }
    }

    #[test]
    fn discovery_prefers_metrics_v1_and_custom_preferred_version() {
        let groups = APIGroupList {
            groups: vec![
                group("metrics.k8s.io", Some("v1"), &["v1", "v1beta1"]),
                group(
                    "custom.metrics.k8s.io",
                    Some("v1beta2"),
                    &["v1beta2", "v1beta1"],
                ),
            ],
        };
        let v = choose_versions(&groups);
        assert_eq!(v.resource, ResourceMetricsVersion::V1);
        assert_eq!(v.custom, Ok(CustomMetricsVersion::V1beta2));
    }

    #[test]
    fn discovery_falls_back_to_v1beta1_and_first_known_custom_version() {
        let groups = APIGroupList {
            groups: vec![
                group("metrics.k8s.io", Some("v1beta1"), &["v1beta1"]),
                group("custom.metrics.k8s.io", Some("v2"), &["v2", "v1beta1"]),
            ],
        };
        let v = choose_versions(&groups);
        assert_eq!(v.resource, ResourceMetricsVersion::V1beta1);
        assert_eq!(v.custom, Ok(CustomMetricsVersion::V1beta1));
    }

    #[test]
    fn discovery_without_custom_metrics_group_gives_upstream_text() {
        let v = choose_versions(&APIGroupList { groups: vec![] });
        assert_eq!(v.resource, ResourceMetricsVersion::V1beta1);
        assert_eq!(
            v.custom,
            Err("no custom metrics API (custom.metrics.k8s.io) registered".to_string())
        );
        let unknown = APIGroupList {
            groups: vec![group("custom.metrics.k8s.io", Some("v9"), &["v9"])],
        };
        assert_eq!(
            choose_versions(&unknown).custom,
            Err("no known available metric versions found".to_string())
        );
    }

    #[test]
    fn client_go_messages_for_non_status_bodies_name_the_resource() {
        assert_eq!(
            client_go_message(
                StatusCode::SERVICE_UNAVAILABLE,
                b"service unavailable\n",
                "pods.metrics.k8s.io"
            ),
            "the server is currently unable to handle the request (get pods.metrics.k8s.io)"
        );
        assert_eq!(
            client_go_message(
                StatusCode::NOT_FOUND,
                b"404 page not found",
                "pods.metrics.k8s.io"
            ),
            "the server could not find the requested resource (get pods.metrics.k8s.io)"
        );
        let status = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"the server could not find the metric rps for pods","reason":"NotFound","code":404}"#;
        assert_eq!(
            client_go_message(
                StatusCode::NOT_FOUND,
                status,
                "pods.custom.metrics.k8s.io *"
            ),
            "the server could not find the metric rps for pods"
        );
    }
}
