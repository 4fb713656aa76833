//! Client-side count of the operator's API requests by verb and resource
//! (`tidal_api_requests_total`): a tower layer on the kube client's service, so every request
//! the operator makes (watches, lists, scale reads and writes, status writes, metrics,
//! discovery, events, leases) is counted where it leaves the process. The scale harness divides
//! these by sync cycles to compare the operator's API cost with kube-controller-manager's.

use std::task::{Context as TaskContext, Poll};

use axum::http::{Method, Request, Uri};
use kube::Client;
use kube::client::ClientBuilder;
use prometheus::IntCounterVec;
use tower::Service;

use crate::Error;

/// A layer counting each request into `counter{verb,resource}` before passing it on.
#[derive(Clone)]
pub struct CountLayer {
    counter: IntCounterVec,
}

impl CountLayer {
    /// Counts into `counter`, whose labels are `verb` and `resource`.
    pub fn new(counter: IntCounterVec) -> Self {
        CountLayer { counter }
    }
}

impl<S> tower::Layer<S> for CountLayer {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Counted {
            inner,
            counter: self.counter.clone(),
        }
    }
}

/// The service [`CountLayer`] wraps around the client's.
#[derive(Clone)]
pub struct Counted<S> {
    inner: S,
    counter: IntCounterVec,
}

impl<S, B> Service<Request<B>> for Counted<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (verb, resource) = classify(request.method(), request.uri());
        self.counter.with_label_values(&[verb, &resource]).inc();
        self.inner.call(request)
    }
}

/// A client for `config` whose requests are counted into `counter`.
pub fn counted_client(config: kube::Config, counter: IntCounterVec) -> Result<Client, Error> {
    Ok(ClientBuilder::try_from(config)?
        .with_layer(&CountLayer::new(counter))
        .build())
}

/// The Kubernetes verb and the resource a request addresses, as the API server's audit log
/// names them: `list` vs `get` by whether a name is given, `watch` by the query; the resource
/// is `resource[.group][/subresource]` (e.g. `pods.metrics.k8s.io`, `deployments.apps/scale`),
/// and `discovery` for paths that name no resource. The label set is bounded by the API
/// surface, never by object names.
pub fn classify(method: &Method, uri: &Uri) -> (&'static str, String) {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    // `/api/v1/...` is the core group; `/apis/GROUP/VERSION/...` the others.
    let (group, rest) = match segments.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => ("", &[][..]),
    };
    // `namespaces/NS/RESOURCE...` is a namespaced resource; `namespaces` and `namespaces/NS`
    // address Namespace objects themselves.
    let rest = match rest {
        ["namespaces", _ns, tail @ ..] if !tail.is_empty() => tail,
        other => other,
    };
    let Some(resource) = rest.first() else {
        return ("get", "discovery".to_string());
    };
    let named = rest.len() > 1;
    let mut label = (*resource).to_string();
    if !group.is_empty() {
        label.push('.');
        label.push_str(group);
    }
    if let Some(sub) = rest.get(2) {
        label.push('/');
        label.push_str(sub);
    }
    let watching = uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
    let verb = match *method {
        Method::GET if watching => "watch",
        Method::GET if named => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "other",
    };
    (verb, label)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(method: Method, uri: &str) -> (&'static str, String) {
        classify(&method, &uri.parse().expect("uri"))
    }

    #[test]
    fn requests_are_named_by_verb_and_resource_as_the_audit_log_names_them() {
        let cases = [
            (
                Method::GET,
                "/api/v1/pods?watch=true&resourceVersion=5",
                "watch",
                "pods",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/shop/pods?labelSelector=app%3Dweb",
                "list",
                "pods",
            ),
            (
                Method::GET,
                "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods",
                "list",
                "pods.metrics.k8s.io",
            ),
            (
                Method::GET,
                "/apis/apps/v1/namespaces/shop/deployments/web/scale",
                "get",
                "deployments.apps/scale",
            ),
            (
                Method::PUT,
                "/apis/apps/v1/namespaces/shop/deployments/web/scale",
                "update",
                "deployments.apps/scale",
            ),
            (
                Method::PATCH,
                "/apis/autoscaling.tidal.dev/v1alpha1/namespaces/shop/autoscalers/web/status",
                "patch",
                "autoscalers.autoscaling.tidal.dev/status",
            ),
            (
                Method::POST,
                "/apis/events.k8s.io/v1/namespaces/shop/events",
                "create",
                "events.events.k8s.io",
            ),
            (Method::GET, "/api/v1/namespaces/shop", "get", "namespaces"),
            (Method::GET, "/api/v1/namespaces", "list", "namespaces"),
            (
                Method::GET,
                "/apis/custom.metrics.k8s.io/v1beta1",
                "get",
                "discovery",
            ),
            (Method::GET, "/apis", "get", "discovery"),
            (
                Method::DELETE,
                "/api/v1/namespaces/shop/pods",
                "deletecollection",
                "pods",
            ),
        ];
        for (method, uri, verb, resource) in cases {
            assert_eq!(
                class(method.clone(), uri),
                (verb, resource.to_string()),
                "{method} {uri}"
            );
        }
    }

    #[tokio::test]
    async fn every_request_through_the_client_is_counted_once() {
        let counter = IntCounterVec::new(
            prometheus::Opts::new("requests", "requests"),
            &["verb", "resource"],
        )
        .expect("counter");
        let answer = tower::service_fn(|_request: Request<kube::client::Body>| async {
            let body = serde_json::json!({
                "apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": []
            });
            Ok::<_, std::convert::Infallible>(
                axum::http::Response::builder()
                    .body(kube::client::Body::from(body.to_string().into_bytes()))
                    .expect("response"),
            )
        });
        let client = ClientBuilder::new(answer, "default")
            .with_layer(&CountLayer::new(counter.clone()))
            .build();
        let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
            kube::Api::namespaced(client, "shop");
        pods.list(&Default::default()).await.expect("first list");
        pods.list(&Default::default()).await.expect("second list");
        assert_eq!(counter.with_label_values(&["list", "pods"]).get(), 2);
        assert_eq!(counter.with_label_values(&["get", "pods"]).get(), 0);
    }
}
