//! One request: a GET with the timeout through [`kube::Client::send`], the decoding of the
//! expected kind, and the texts client-go would print for a failed answer.

use http::{Request, StatusCode, header};
use kube::client::Body;
use serde::de::DeserializeOwned;

use super::{Call, MetricsClient};
use crate::error::{Error, Result};

impl MetricsClient {
    /// GET with the timeout; returns status and body.
    pub(super) async fn get(&self, call: &Call<'_>) -> Result<(StatusCode, Vec<u8>)> {
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
    pub(super) async fn get_json<T: DeserializeOwned>(
        &self,
        call: &Call<'_>,
        kind: &str,
    ) -> Result<T> {
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
}

/// The text client-go would build for an unsuccessful response: the
/// Status message when the body is a Status, else its generic text for the
/// code followed by `(get <resource>[ <name>])`.
pub(super) fn client_go_message(status: StatusCode, body: &[u8], what: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
