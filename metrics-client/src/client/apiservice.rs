//! Why a metrics API failed, read from the APIService that should serve it: missing, not
//! Available (with the aggregator's reason), or Available while the server behind it fails.

use http::StatusCode;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;

use super::request::client_go_message;
use super::{Call, MetricsClient};
use crate::encode::uri;
use crate::error::{ApiServiceState, Error, MetricsApi};

impl MetricsClient {
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
    pub(super) async fn with_apiservice_state(&self, call: &Call<'_>, e: Error) -> Error {
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
    pub(super) async fn diagnose(&self, call: &Call<'_>, status: StatusCode, body: &[u8]) -> Error {
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
