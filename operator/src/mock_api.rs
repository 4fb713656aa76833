//! A scripted Kubernetes API server for unit tests of write paths (tests only).

use std::sync::{Arc, Mutex};

use axum::http::{Method, Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

/// What the mock API server answers, in order: each request takes the next answer.
pub enum Answer {
    /// 409 Conflict.
    Conflict,
    /// 404 Not Found.
    NotFound,
    /// 200 with this body.
    Ok(Value),
    /// 200 echoing the request body.
    Echo,
}

/// The requests the mock API server received: `(method, path, body)`.
pub type Seen = Arc<Mutex<Vec<(Method, String, Value)>>>;

/// A mock API server that answers `script` in order and records what it received.
pub fn api_server(script: Vec<Answer>) -> (Client, Seen) {
    let script = Mutex::new(script.into_iter());
    routed(move |method, target, body| {
        let next = script.lock().expect("script").next();
        Some(match next {
            Some(Answer::Conflict) => failure(409, "Conflict", "Conflict"),
            Some(Answer::NotFound) => failure(404, "NotFound", "NotFound"),
            Some(Answer::Ok(value)) => (200, value),
            Some(Answer::Echo) => (200, body.clone()),
            None => panic!("unexpected request {method} {target}"),
        })
    })
}

/// A `Status` failure answer.
fn failure(code: u16, reason: &str, message: &str) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
               "reason": reason, "code": code, "message": message}),
    )
}

/// A mock API server that answers every request with `route(method, path and query, body)`:
/// `Some((code, body))`, or 404 for `None`. Records what it received, as [`api_server`].
pub fn routed(
    route: impl Fn(&Method, &str, &Value) -> Option<(u16, Value)> + Send + Sync + 'static,
) -> (Client, Seen) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let route = Arc::new(route);
    let service = tower::service_fn(move |req: Request<Body>| {
        let (record, route) = (record.clone(), route.clone());
        async move {
            let (parts, body) = req.into_parts();
            let bytes = body.collect_bytes().await.expect("request body");
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let target = parts
                .uri
                .path_and_query()
                .map_or(parts.uri.path(), |p| p.as_str())
                .to_string();
            record.lock().expect("record").push((
                parts.method.clone(),
                parts.uri.path().to_string(),
                body.clone(),
            ));
            let (code, answer) = route(&parts.method, &target, &body)
                .unwrap_or_else(|| failure(404, "NotFound", &target));
            Ok::<_, std::convert::Infallible>(
                Response::builder()
                    .status(code)
                    .body(Body::from(answer.to_string().into_bytes()))
                    .expect("response"),
            )
        }
    });
    (Client::new(service, "default"), seen)
}
