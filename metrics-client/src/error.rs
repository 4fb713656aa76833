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
            MetricsApi::Resource => crate::api_types::METRICS_GROUP,
            MetricsApi::Custom => crate::api_types::CUSTOM_METRICS_GROUP,
            MetricsApi::External => crate::api_types::EXTERNAL_METRICS_GROUP,
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

/// What reading an APIService told us, worded for messages by [`ApiServiceState::describe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiServiceState {
    /// Its `Available` condition is `True`.
    Available,
    /// Its `Available` condition is not `True` (or not reported yet).
    NotAvailable {
        /// The condition's reason, e.g. `FailedDiscoveryCheck`, `MissingEndpoints`.
        reason: String,
        /// The condition's message.
        message: String,
    },
    /// No such APIService.
    Missing,
    /// It could not be read; why.
    Unknown(String),
}

impl ApiServiceState {
    /// One clause naming the APIService and its `Available` state, e.g.
    /// `APIService v1beta1.metrics.k8s.io is not Available: MissingEndpoints: ...`.
    pub fn describe(&self, apiservice: &str) -> String {
        match self {
            ApiServiceState::Available => format!("APIService {apiservice} is Available"),
            ApiServiceState::NotAvailable { reason, message } => {
                format!("APIService {apiservice} is not Available: {reason}: {message}")
            }
            ApiServiceState::Missing => format!("APIService {apiservice} is not registered"),
            ApiServiceState::Unknown(why) => {
                format!("the Available state of APIService {apiservice} is unknown ({why})")
            }
        }
    }
}

/// Everything that can go wrong while reading metrics.
///
/// `Clone` because the batching source hands one failed namespace request to
/// every autoscaler that shares it. The text is [`Error::prefix`] (upstream's
/// `unable to fetch metrics from <api> metrics API`, when the failure has it)
/// then [`Error::cause`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.render())]
pub enum Error {
    /// The APIService that should serve the API does not exist.
    ApiServiceMissing {
        /// The API asked.
        api: MetricsApi,
        /// `<version>.<group>`, e.g. `v1beta1.metrics.k8s.io`.
        apiservice: String,
        /// The client-go style text of the failed request.
        upstream: String,
    },

    /// The APIService exists but its `Available` condition is not `True`.
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
    Status {
        /// The API asked.
        api: MetricsApi,
        /// HTTP status code.
        code: u16,
        /// The request URI.
        request: String,
        /// The client-go style text of the failure.
        upstream: String,
        /// For server errors (5xx) on a metrics path: the APIService's state, as
        /// [`ApiServiceState::describe`] words it.
        apiservice_state: Option<String>,
    },

    /// No answer within the configured timeout.
    Timeout {
        /// The API asked.
        api: MetricsApi,
        /// The request URI.
        request: String,
        /// `<version>.<group>`.
        apiservice: String,
        /// The timeout that expired.
        timeout: Duration,
        /// The APIService's state when it was read after the timeout.
        apiservice_state: Option<String>,
    },

    /// The Kubernetes API server itself could not be reached.
    Transport {
        /// The API asked.
        api: MetricsApi,
        /// The transport error.
        detail: String,
        /// The APIService's state when it was read after the failure (usually unknown too).
        apiservice_state: Option<String>,
    },

    /// A name that would go into the request path is not one path segment: no request was
    /// made (client-go's request builder refuses it the same way).
    InvalidName {
        /// The API that would have been asked.
        api: MetricsApi,
        /// What the name is (e.g. `metric name`), as the spec calls it.
        field: String,
        /// The name as given.
        name: String,
        /// Why it is not a path segment (client-go's words, e.g. `may not contain '/'`).
        why: String,
    },

    /// The body was not the expected list.
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
    NoMetrics {
        /// The API asked.
        api: MetricsApi,
        /// What was asked for, and what to check.
        detail: String,
    },

    /// An Object metric request returned other than exactly one item.
    NotExactlyOne {
        /// How many items came back.
        count: usize,
        /// The request URI.
        request: String,
    },

    /// Discovery found no usable version of the API.
    NotRegistered {
        /// The API asked.
        api: MetricsApi,
        /// Upstream's text, e.g. `no custom metrics API (custom.metrics.k8s.io) registered`.
        upstream: String,
    },

    /// The described object's kind could not be mapped to a resource.
    ResourceMapping {
        /// `Kind.group` as Go prints a GroupKind.
        group_kind: String,
        /// Why the mapping failed.
        detail: String,
    },

    /// A selector string given to the client did not parse.
    InvalidSelector(#[from] crate::selector::SelectorError),
}

fn with_state(state: &Option<String>) -> String {
    state.as_ref().map(|s| format!("; {s}")).unwrap_or_default()
}

impl Error {
    /// The API the failure concerns, when it has one.
    fn api(&self) -> Option<MetricsApi> {
        match self {
            Error::ApiServiceMissing { api, .. }
            | Error::ApiServiceUnavailable { api, .. }
            | Error::ServiceUnavailable { api, .. }
            | Error::Status { api, .. }
            | Error::Timeout { api, .. }
            | Error::Transport { api, .. }
            | Error::InvalidName { api, .. }
            | Error::Malformed { api, .. }
            | Error::NotRegistered { api, .. }
            | Error::NoMetrics { api, .. } => Some(*api),
            Error::NotExactlyOne { .. } | Error::ResourceMapping { .. } => Some(MetricsApi::Custom),
            Error::InvalidSelector(_) => None,
        }
    }

    /// Upstream's `unable to fetch metrics from <api> metrics API` when the failure is a
    /// fetch failure (every variant but `NoMetrics` and `InvalidSelector`).
    pub fn prefix(&self) -> Option<String> {
        match self {
            Error::NoMetrics { .. } | Error::InvalidSelector(_) => None,
            _ => self
                .api()
                .map(|api| format!("unable to fetch metrics from {api} metrics API")),
        }
    }

    /// The message without [`Error::prefix`]: the failure, its cause and the next step. (For
    /// `NoMetrics` and `InvalidSelector`, which have no prefix, the whole message.)
    pub fn cause(&self) -> String {
        match self {
            Error::ApiServiceMissing {
                api,
                apiservice,
                upstream,
            } => format!(
                "{upstream}: APIService {apiservice} is not registered, so nothing serves {group}; install {provider} and check `kubectl get apiservice {apiservice}`",
                group = api.group(),
                provider = api.provider()
            ),
            Error::ApiServiceUnavailable {
                apiservice,
                reason,
                message,
                upstream,
                ..
            } => format!(
                "{upstream}: {state}; {hint}; check `kubectl get apiservice {apiservice} -o yaml`",
                state = ApiServiceState::NotAvailable {
                    reason: reason.clone(),
                    message: message.clone()
                }
                .describe(apiservice),
                hint = unavailable_hint(reason)
            ),
            Error::ServiceUnavailable {
                apiservice,
                apiservice_check,
                upstream,
                ..
            } => format!(
                "{upstream}; the server behind APIService {apiservice} did not answer; {state}; if this persists check `kubectl get apiservice {apiservice}` and that server's pods and logs",
                state = apiservice_state_note(apiservice, apiservice_check)
            ),
            Error::Status {
                api,
                code,
                request,
                upstream,
                apiservice_state,
            } => format!(
                "{upstream}{state}; {hint}",
                state = with_state(apiservice_state),
                hint = status_hint(*api, *code, request)
            ),
            Error::Timeout {
                request,
                apiservice,
                timeout,
                apiservice_state,
                ..
            } => format!(
                "GET {request} got no answer within {timeout:?}{state}; the server behind APIService {apiservice} is slow or unreachable: check `kubectl get apiservice {apiservice}` and that server's pods and logs",
                state = with_state(apiservice_state)
            ),
            Error::Transport {
                detail,
                apiservice_state,
                ..
            } => format!(
                "{detail}{state}; Tidal could not talk to the Kubernetes API server: check its connectivity and credentials",
                state = with_state(apiservice_state)
            ),
            Error::InvalidName {
                field, name, why, ..
            } => format!(
                "invalid {field} {name:?}: [{why}]: it is not a valid path segment, so no request was made; fix the {field} in the AutoScaler's spec"
            ),
            Error::Malformed {
                api,
                request,
                apiservice,
                detail,
            } => format!(
                "malformed response to GET {request}: {detail}; the server registered as APIService {apiservice} does not answer like the {api} metrics API: check which Service `kubectl get apiservice {apiservice} -o yaml` points to"
            ),
            Error::NoMetrics { api, detail } => {
                format!("no metrics returned from {api} metrics API: {detail}")
            }
            Error::NotExactlyOne { count, request } => format!(
                "the custom metrics API server returned {count} results when we asked for exactly one; check the adapter's answer with `kubectl get --raw '{request}'`"
            ),
            Error::NotRegistered { api, upstream } => format!(
                "{upstream}; install {provider} and check `kubectl get apiservices | grep {group}`",
                group = api.group(),
                provider = api.provider()
            ),
            Error::ResourceMapping { group_kind, detail } => format!(
                "unable to map kind {group_kind} to resource: {detail}; check the describedObject's apiVersion and kind against `kubectl api-resources`"
            ),
            Error::InvalidSelector(e) => format!(
                "couldn't convert selector into a corresponding internal selector object: {e}"
            ),
        }
    }

    fn render(&self) -> String {
        match self.prefix() {
            Some(prefix) => format!("{prefix}: {}", self.cause()),
            None => self.cause(),
        }
    }

    /// Upstream's text without [`Error::prefix`] and without Tidal's diagnosis.
    pub fn upstream_cause(&self) -> String {
        match self {
            Error::ApiServiceMissing { upstream, .. }
            | Error::ApiServiceUnavailable { upstream, .. }
            | Error::ServiceUnavailable { upstream, .. }
            | Error::Status { upstream, .. }
            | Error::NotRegistered { upstream, .. } => upstream.clone(),
            Error::Timeout { request, .. } => {
                format!("Get \"{request}\": context deadline exceeded")
            }
            Error::Transport { detail, .. } | Error::Malformed { detail, .. } => detail.clone(),
            Error::InvalidName {
                field, name, why, ..
            } => format!("invalid {field} {name:?}: [{why}]"),
            Error::NoMetrics { api, .. } => format!("no metrics returned from {api} metrics API"),
            Error::NotExactlyOne { count, .. } => format!(
                "the custom metrics API server returned {count} results when we asked for exactly one"
            ),
            Error::ResourceMapping { group_kind, detail } => {
                format!("unable to map kind {group_kind} to resource: {detail}")
            }
            Error::InvalidSelector(e) => format!(
                "couldn't convert selector into a corresponding internal selector object: {e}"
            ),
        }
    }

    /// The message kube-controller-manager would produce for the same
    /// failure, without Tidal's diagnosis (for strict-compatibility output).
    pub fn upstream_message(&self) -> String {
        match self.prefix() {
            Some(prefix) => format!("{prefix}: {}", self.upstream_cause()),
            None => self.upstream_cause(),
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
            Error::InvalidName { .. } => "invalid_name",
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

fn apiservice_state_note(apiservice: &str, check: &Option<String>) -> String {
    match check {
        None => format!(
            "{} (usually a restart or overload)",
            ApiServiceState::Available.describe(apiservice)
        ),
        Some(why) => ApiServiceState::Unknown(why.clone()).describe(apiservice),
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
