//! The exact client: the requests kube-controller-manager makes (contract
//! 1.7), version discovery, and the diagnosis of failures through the
//! APIService that should serve the API.
//!
//! Requests go through [`kube::Client::send`] rather than kube's typed `Api`
//! so the URI is byte-for-byte client-go's (see [`crate::encode`]) and the
//! HTTP status stays visible: a 404 or 503 is where the diagnosis starts.
//!
//! This module holds the client and its public types; its methods are in one
//! file per concern: `resource`, `custom` and `external` metrics,
//! `discovery` (versions and kind-to-resource mappings), `request` (one
//! GET and client-go's failure texts) and `apiservice` (why it failed).

mod apiservice;
mod custom;
mod discovery;
mod external;
mod request;
mod resource;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::MetricsApi;

pub(crate) use resource::no_pod_metrics;

/// How long one metrics request may take. The HPA loop runs every 15s by
/// default; a metrics call that has not answered in 10s would push the whole
/// pass past its period, so it is better reported as a failure of this pass.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long discovery results are kept. Upstream invalidates its custom
/// metrics discovery cache once per sync period (15s by default).
pub const DEFAULT_DISCOVERY_TTL: Duration = Duration::from_secs(15);

/// How long a failed discovery is remembered by default.
pub const DEFAULT_FAILED_DISCOVERY_TTL: Duration = Duration::from_secs(5);

/// Tunables of [`MetricsClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Limit on one request, the body included.
    pub request_timeout: Duration,
    /// How long discovered API versions are reused.
    pub discovery_ttl: Duration,
    /// How long a failed discovery is remembered: the reconciles of one sync share it instead
    /// of each asking again (each could wait out the request timeout), and a metrics API that
    /// comes back is seen within seconds.
    pub failed_discovery_ttl: Duration,
    /// On 404/503, read the APIService to say what is wrong (one extra GET per failure).
    pub diagnose_apiservice: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            discovery_ttl: DEFAULT_DISCOVERY_TTL,
            failed_discovery_ttl: DEFAULT_FAILED_DISCOVERY_TTL,
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
    // The last (or running) discovery: concurrent reconciles join one request instead of
    // all making their own, and the lock is only held to read or replace it.
    discovery: std::sync::Mutex<Option<discovery::Discovery>>,
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
}
