//! The crate's one error type.
//!
//! Every `Display` starts with the text kube-controller-manager would put in
//! the HPA's condition (contract 1.7: `unable to fetch metrics from <api>
//! metrics API: <err>`, `no metrics returned from <api> metrics API`, ...), so
//! people and tools that grep for upstream messages still find them; what
//! follows is Tidal's diagnosis: the cause and the next step. The bare
//! upstream text is available from [`Error::upstream_message`].

use std::fmt;
use std::time::Duration;

/// Which of the three metrics APIs a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum MetricsApi {
    /// `metrics.k8s.io` (Resource and ContainerResource metrics).
    Resource,
    /// `custom.metrics.k8s.io` (Pods and Object metrics).
    Custom,
    /// `external.metrics.k8s.io` (External metrics).
    External,
}

impl MetricsApi {
    /// The API group.
    pub fn group(self) -> &'static str {
        match self {
            MetricsApi::Resource => crate::wire::METRICS_GROUP,
            MetricsApi::Custom => crate::wire::CUSTOM_METRICS_GROUP,
            MetricsApi::External => crate::wire::EXTERNAL_METRICS_GROUP,
        }
    }

    /// What usually serves this API, for the "next step" part of messages.
    fn provider(self) -> &'static str {
        match self {
            MetricsApi::Resource => "metrics-server (or another resource metrics provider)",
            MetricsApi::Custom => "a custom metrics adapter (for example prometheus-adapter)",
            MetricsApi::External => "an external metrics adapter (for example KEDA)",
        }
    }
}

impl fmt::Display for MetricsApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The words upstream uses in "unable to fetch metrics from <x> metrics API".
        f.write_str(match self {
            MetricsApi::Resource => "resource",
            MetricsApi::Custom => "custom",
            MetricsApi::External => "external",
        })
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while reading metrics.
///
/// `Clone` because the batching source hands one failed namespace request to
/// every autoscaler that shares it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The APIService that should serve the API does not exist.
    #[error(
        "unable to fetch metrics from {api} metrics API: {upstream}: APIService {apiservice} is not registered, so nothing serves {group}; install {provider} and check `kubectl get apiservice {apiservice}`",
        group = api.group(),
        provider = api.provider()
    )]
    ApiServiceMissing {
        /// The API asked.
        api: MetricsApi,
        /// `<version>.<group>`, e.g. `v1beta1.metrics.k8s.io`.
        apiservice: String,
        /// The client-go style text of the failed request.
        upstream: String,
    },

    /// The APIService exists but its `Available` condition is not `True`.
    #[error(
        "unable to fetch metrics from {api} metrics API: {upstream}: APIService {apiservice} is not available ({reason}: {message}); {hint}; check `kubectl get apiservice {apiservice} -o yaml`",
        hint = unavailable_hint(reason)
    )]
    ApiServiceUnavailable {
        /// The API asked.
        api: MetricsApi,
        /// `<version>.<group>`.
        apiservice: String,
        /// The `Available` condition's reason, e.g. `FailedDiscoveryCheck`, `MissingEndpoints`.
        reason: String,
        /// The `Available` condition's message.
        message: String,
        /// The client-go style text of the failed request.
        upstream: String,
    },

    /// 503 while the APIService looks available (or could not be read).
    #[error(
        "unable to fetch metrics from {api} metrics API: {upstream}; the server behind APIService {apiservice} did not answer{state}; if this persists check `kubectl get apiservice {apiservice}` and that server's pods and logs",
        state = apiservice_state_note(apiservice_check)
    )]
    ServiceUnavailable {
        /// The API asked.
        api: MetricsApi,
        /// `<version>.<group>`.
        apiservice: String,
        /// `None` when the APIService reports `Available=True`; otherwise why it could not be read.
        apiservice_check: Option<String>,
        /// The client-go style text, e.g. `the server is currently unable to handle the request (get pods.metrics.k8s.io)`.
        upstream: String,
    },

    /// Any other unsuccessful HTTP status (403, 404 for an unknown metric, 500, ...).
    #[error(
        "unable to fetch metrics from {api} metrics API: {upstream}; {hint}",
        hint = status_hint(*api, *code, request)
    )]
    Status {
        /// The API asked.
        api: MetricsApi,
        /// HTTP status code.
        code: u16,
        /// The request URI.
        request: String,
        /// The client-go style text of the failure.
        upstream: String,
    },

    /// No answer within the configured timeout.
    #[error(
        "unable to fetch metrics from {api} metrics API: GET {request} got no answer within {timeout:?}; the server behind APIService {apiservice} is slow or unreachable: check `kubectl get apiservice {apiservice}` and that server's pods and logs"
    )]
    Timeout {
        /// The API asked.
        api: MetricsApi,
        /// The request URI.
        request: String,
        /// `<version>.<group>`.
        apiservice: String,
        /// The timeout that expired.
        timeout: Duration,
    },

    /// The Kubernetes API server itself could not be reached.
    #[error(
        "unable to fetch metrics from {api} metrics API: {detail}; Tidal could not talk to the Kubernetes API server: check its connectivity and credentials"
    )]
    Transport {
        /// The API asked.
        api: MetricsApi,
        /// The transport error.
        detail: String,
    },

    /// The body was not the expected list.
    #[error(
        "unable to fetch metrics from {api} metrics API: malformed response to GET {request}: {detail}; the server registered as APIService {apiservice} does not answer like the {api} metrics API: check which Service `kubectl get apiservice {apiservice} -o yaml` points to"
    )]
    Malformed {
        /// The API asked.
        api: MetricsApi,
        /// The request URI.
        request: String,
        /// `<version>.<group>`.
        apiservice: String,
        /// What was wrong with the body.
        detail: String,
    },

    /// The API answered with an empty list.
    #[error("no metrics returned from {api} metrics API: {detail}")]
    NoMetrics {
        /// The API asked.
        api: MetricsApi,
        /// What was asked for, and what to check.
        detail: String,
    },

    /// An Object metric request returned other than exactly one item.
    #[error(
        "unable to fetch metrics from custom metrics API: the custom metrics API server returned {count} results when we asked for exactly one; check the adapter's answer with `kubectl get --raw '{request}'`"
    )]
    NotExactlyOne {
        /// How many items came back.
        count: usize,
        /// The request URI.
        request: String,
    },

    /// Discovery found no usable version of the API.
    #[error(
        "unable to fetch metrics from {api} metrics API: {upstream}; install {provider} and check `kubectl get apiservices | grep {group}`",
        group = api.group(),
        provider = api.provider()
    )]
    NotRegistered {
        /// The API asked.
        api: MetricsApi,
        /// Upstream's text, e.g. `no custom metrics API (custom.metrics.k8s.io) registered`.
        upstream: String,
    },

    /// The described object's kind could not be mapped to a resource.
    #[error(
        "unable to fetch metrics from custom metrics API: unable to map kind {group_kind} to resource: {detail}; check the describedObject's apiVersion and kind against `kubectl api-resources`"
    )]
    ResourceMapping {
        /// `Kind.group` as Go prints a GroupKind.
        group_kind: String,
        /// Why the mapping failed.
        detail: String,
    },

    /// A selector string given to the client did not parse.
    #[error("couldn't convert selector into a corresponding internal selector object: {0}")]
    InvalidSelector(#[from] crate::selector::SelectorError),
}

impl Error {
    /// The message kube-controller-manager would produce for the same
    /// failure, without Tidal's diagnosis (for strict-compatibility output).
    pub fn upstream_message(&self) -> String {
        let fetch = |api: &MetricsApi, err: &str| {
            format!("unable to fetch metrics from {api} metrics API: {err}")
        };
        match self {
            Error::ApiServiceMissing { api, upstream, .. }
            | Error::ApiServiceUnavailable { api, upstream, .. }
            | Error::ServiceUnavailable { api, upstream, .. }
            | Error::Status { api, upstream, .. }
            | Error::NotRegistered { api, upstream } => fetch(api, upstream),
            Error::Timeout { api, request, .. } => fetch(
                api,
                &format!("Get \"{request}\": context deadline exceeded"),
            ),
            Error::Transport { api, detail } => fetch(api, detail),
            Error::Malformed { api, detail, .. } => fetch(api, detail),
            Error::NoMetrics { api, .. } => format!("no metrics returned from {api} metrics API"),
            Error::NotExactlyOne { count, .. } => fetch(
                &MetricsApi::Custom,
                &format!(
                    "the custom metrics API server returned {count} results when we asked for exactly one"
                ),
            ),
            Error::ResourceMapping { group_kind, detail } => fetch(
                &MetricsApi::Custom,
                &format!("unable to map kind {group_kind} to resource: {detail}"),
            ),
            Error::InvalidSelector(e) => {
                format!(
                    "couldn't convert selector into a corresponding internal selector object: {e}"
                )
            }
        }
    }

    /// A fixed, bounded label for Prometheus (`error` label of Tidal's metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::ApiServiceMissing { .. } => "apiservice_missing",
            Error::ApiServiceUnavailable { .. } => "apiservice_unavailable",
            Error::ServiceUnavailable { .. } => "service_unavailable",
            Error::Status { .. } => "status",
            Error::Timeout { .. } => "timeout",
            Error::Transport { .. } => "transport",
            Error::Malformed { .. } => "malformed",
            Error::NoMetrics { .. } => "no_metrics",
            Error::NotExactlyOne { .. } => "not_exactly_one",
            Error::NotRegistered { .. } => "not_registered",
            Error::ResourceMapping { .. } => "resource_mapping",
            Error::InvalidSelector(_) => "invalid_selector",
        }
    }
}

fn unavailable_hint(reason: &str) -> &'static str {
    // Reasons set by kube-aggregator's availability controller.
    match reason {
        "MissingEndpoints" => {
            "its Service has no ready endpoints: check that the metrics server's pods are running and ready"
        }
        "ServiceNotFound" => {
            "the Service it points to does not exist: check spec.service of the APIService"
        }
        "FailedDiscoveryCheck" => {
            "the Kubernetes API server cannot reach it or gets bad answers: check the metrics server's logs, its serving certificate, and network policies between the control plane and its pods"
        }
        "ServiceAccessError" | "EndpointsAccessError" => {
            "the aggregator cannot read its Service or Endpoints: check the control plane's permissions"
        }
        _ => "check the metrics server's pods and logs",
    }
}

fn apiservice_state_note(check: &Option<String>) -> String {
    match check {
        None => " although the APIService reports Available=True (usually a restart or overload)"
            .to_string(),
        Some(why) => format!(" (APIService state unknown: {why})"),
    }
}

fn status_hint(api: MetricsApi, code: u16, request: &str) -> String {
    match code {
        401 | 403 => format!(
            "Tidal's service account may not read {group}: grant it get and list on that group's resources",
            group = api.group()
        ),
        404 => {
            // `/apis/<group>/<version>` lists what the adapter serves.
            let base: Vec<&str> = request
                .split('?')
                .next()
                .unwrap_or("")
                .split('/')
                .take(4)
                .collect();
            format!(
                "the server does not know this metric for these objects: list what it serves with `kubectl get --raw {}`",
                base.join("/")
            )
        }
        _ => "check the metrics server's pods and logs".to_string(),
    }
}
