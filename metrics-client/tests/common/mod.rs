//! A mocked API server for the metrics client: it asserts the exact method,
//! path and query of every request and serves canned bodies.
#![allow(dead_code, missing_docs)]

use std::sync::{Arc, Mutex};

use http::{Method, Request, Response};
use k8s_openapi::jiff::Timestamp;
use kube::client::Body;
use serde_json::{Value, json};
use tidal_metrics_client::{Clock, MetricsClient};
use tokio::task::JoinHandle;
use tower_test::mock::{self, Handle};

/// What the mock answers to one expected request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A status and a body.
    Body(u16, String),
    /// Never answer (a hung metrics server).
    Hang,
    /// Fail the connection (the Kubernetes API server refused it).
    Refused,
}

/// One request the test expects, by its exact URI (path and raw query).
#[derive(Debug, Clone)]
pub struct Expect {
    pub uri: String,
    pub reply: Reply,
}

pub fn expect(uri: &str, status: u16, body: impl Into<String>) -> Expect {
    Expect {
        uri: uri.to_string(),
        reply: Reply::Body(status, body.into()),
    }
}

pub fn expect_json(uri: &str, body: Value) -> Expect {
    expect(uri, 200, body.to_string())
}

pub fn expect_refused(uri: &str) -> Expect {
    Expect {
        uri: uri.to_string(),
        reply: Reply::Refused,
    }
}

pub fn expect_hang(uri: &str) -> Expect {
    Expect {
        uri: uri.to_string(),
        reply: Reply::Hang,
    }
}

pub struct ApiServerVerifier(Handle<Request<Body>, Response<Body>>);

/// A kube client whose requests go to the returned verifier.
pub fn mock_client() -> (kube::Client, ApiServerVerifier) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (
        kube::Client::new(service, "default"),
        ApiServerVerifier(handle),
    )
}

impl ApiServerVerifier {
    /// Serves the expectations, each exactly once, in any order (requests
    /// with the same URI get their replies in the order given). Panics on a
    /// request that is not expected or is not a GET. When every client is
    /// dropped, checks that nothing expected is left and returns the URIs seen.
    pub fn run(self, expectations: Vec<Expect>) -> JoinHandle<Vec<String>> {
        let mut handle = self.0;
        tokio::spawn(async move {
            let mut remaining = expectations;
            let mut seen = Vec::new();
            let mut hung = Vec::new();
            while let Some((request, send)) = handle.next_request().await {
                let uri = request.uri().to_string();
                assert_eq!(request.method(), Method::GET, "unexpected method for {uri}");
                seen.push(uri.clone());
                let Some(i) = remaining.iter().position(|e| e.uri == uri) else {
                    panic!(
                        "unexpected request GET {uri}\n  still expected: {:?}",
                        remaining.iter().map(|e| &e.uri).collect::<Vec<_>>()
                    );
                };
                match remaining.remove(i).reply {
                    Reply::Hang => hung.push(send),
                    Reply::Refused => send.send_error(std::io::Error::new(
                        std::io::ErrorKind::ConnectionRefused,
                        "dial tcp 127.0.0.1:6443: connect: connection refused",
                    )),
                    Reply::Body(status, body) => send.send_response(
                        Response::builder()
                            .status(status)
                            .header("content-type", "application/json")
                            .body(Body::from(body.into_bytes()))
                            .expect("valid response"),
                    ),
                }
            }
            drop(hung);
            assert!(
                remaining.is_empty(),
                "expected requests never made: {:?}",
                remaining.iter().map(|e| &e.uri).collect::<Vec<_>>()
            );
            seen
        })
    }
}

pub fn metrics_client(client: kube::Client) -> MetricsClient {
    MetricsClient::new(client)
}

/// `GET /apis` answer listing the given metrics groups.
pub fn discovery(metrics: &[&str], custom: &[&str]) -> Value {
    let group = |name: &str, versions: &[&str]| {
        let gv = |v: &&str| json!({"groupVersion": format!("{name}/{v}"), "version": v});
        json!({
            "name": name,
            "versions": versions.iter().map(gv).collect::<Vec<_>>(),
            "preferredVersion": gv(&versions[0]),
        })
    };
    let mut groups = vec![group("apps", &["v1"])];
    if !metrics.is_empty() {
        groups.push(group("metrics.k8s.io", metrics));
    }
    if !custom.is_empty() {
        groups.push(group("custom.metrics.k8s.io", custom));
    }
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn expect_discovery(metrics: &[&str], custom: &[&str]) -> Expect {
    expect_json("/apis", discovery(metrics, custom))
}

pub fn ts(secs_after_base: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs_after_base).expect("in range")
}

/// One PodMetrics item with a single container `app`.
pub fn pod_item(
    namespace: &str,
    name: &str,
    labels: &[(&str, &str)],
    at: Timestamp,
    cpu: &str,
    memory: &str,
) -> Value {
    let labels: serde_json::Map<String, Value> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "creationTimestamp": "2027-01-01T00:00:00Z"
        },
        "timestamp": at.to_string(),
        "window": "15.012s",
        "containers": [{"name": "app", "usage": {"cpu": cpu, "memory": memory}}]
    })
}

pub fn pod_metrics_list(version: &str, items: Vec<Value>) -> Value {
    json!({
        "kind": "PodMetricsList",
        "apiVersion": format!("metrics.k8s.io/{version}"),
        "metadata": {},
        "items": items
    })
}

/// A clock the test moves by hand.
pub fn manual_clock(start: Timestamp) -> (Clock, Arc<Mutex<Timestamp>>) {
    let now = Arc::new(Mutex::new(start));
    let read = now.clone();
    let clock: Clock = Arc::new(move || *read.lock().expect("clock"));
    (clock, now)
}

pub fn apiservice(name: &str, available: Option<(&str, &str, &str)>) -> Value {
    let conditions = match available {
        None => json!([]),
        Some((status, reason, message)) => json!([{
            "type": "Available",
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": "2027-01-01T00:00:00Z"
        }]),
    };
    json!({
        "kind": "APIService",
        "apiVersion": "apiregistration.k8s.io/v1",
        "metadata": {"name": name},
        "spec": {
            "group": "metrics.k8s.io",
            "version": "v1beta1",
            "groupPriorityMinimum": 100,
            "versionPriority": 100,
            "service": {"name": "metrics-server", "namespace": "kube-system"}
        },
        "status": {"conditions": conditions}
    })
}

pub fn not_found_status(message: &str) -> String {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "NotFound",
        "code": 404
    })
    .to_string()
}
