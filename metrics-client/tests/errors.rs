//! The failures users hit in the metrics pipeline each give a typed error
//! whose message keeps upstream's text, names the cause and the next step.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use tidal_metrics_client::{ClientConfig, Error, MetricsApi, MetricsClient};

const POD_LIST: &str =
    "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dnginx-deploy";
const APISERVICE: &str = "/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io";

/// Runs one resource-metrics request against the expectations and returns its error.
async fn resource_error(expectations: Vec<Expect>, config: ClientConfig) -> Error {
    let (client, verifier) = mock_client();
    let server = verifier.run(expectations);
    let metrics = MetricsClient::with_config(client, config);
    let got = metrics.pod_metrics("default", "app=nginx-deploy").await;
    drop(metrics);
    server.await.expect("verifier");
    got.expect_err("the request must fail")
}

fn assert_mentions(err: &Error, parts: &[&str]) {
    let text = err.to_string();
    for part in parts {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }
}

#[tokio::test]
async fn missing_apiservice_is_diagnosed_from_a_404() {
    let err = resource_error(
        vec![
            expect_discovery(&[], &[]),
            expect(POD_LIST, 404, "404 page not found\n"),
            expect(
                APISERVICE,
                404,
                not_found_status(
                    "apiservices.apiregistration.k8s.io \"v1beta1.metrics.k8s.io\" not found",
                ),
            ),
        ],
        ClientConfig::default(),
    )
    .await;
    assert!(
        matches!(&err, Error::ApiServiceMissing { apiservice, .. } if apiservice == "v1beta1.metrics.k8s.io"),
        "{err:?}"
    );
    assert!(err.to_string().starts_with(
        "unable to fetch metrics from resource metrics API: the server could not find the requested resource (get pods.metrics.k8s.io)"
    ));
    assert_mentions(
        &err,
        &[
            "APIService v1beta1.metrics.k8s.io is not registered",
            "install metrics-server",
            "`kubectl get apiservice v1beta1.metrics.k8s.io`",
        ],
    );
    assert_eq!(
        err.upstream_message(),
        "unable to fetch metrics from resource metrics API: the server could not find the requested resource (get pods.metrics.k8s.io)"
    );
}

#[tokio::test]
async fn unavailable_apiservice_reports_its_reason_message_and_what_to_check() {
    let cases = [
        (
            "FailedDiscoveryCheck",
            "failing or missing response from https://10.96.12.7:443/apis/metrics.k8s.io/v1beta1: bad status from https://10.96.12.7:443/apis/metrics.k8s.io/v1beta1: 403",
            "serving certificate",
        ),
        (
            "MissingEndpoints",
            "endpoints for service/metrics-server in \"kube-system\" have no addresses with port name \"https\"",
            "no ready endpoints",
        ),
        (
            "ServiceNotFound",
            "service/metrics-server in \"kube-system\" is not present",
            "spec.service",
        ),
    ];
    for (reason, message, hint) in cases {
        let err = resource_error(
            vec![
                expect_discovery(&["v1beta1"], &[]),
                expect(POD_LIST, 503, "service unavailable\n"),
                expect_json(
                    APISERVICE,
                    apiservice("v1beta1.metrics.k8s.io", Some(("False", reason, message))),
                ),
            ],
            ClientConfig::default(),
        )
        .await;
        assert!(
            matches!(&err, Error::ApiServiceUnavailable { reason: r, .. } if r == reason),
            "{reason}: {err:?}"
        );
        assert_mentions(
            &err,
            &[
                "unable to fetch metrics from resource metrics API: the server is currently unable to handle the request (get pods.metrics.k8s.io)",
                &format!("APIService v1beta1.metrics.k8s.io is not Available: {reason}: {message}"),
                hint,
                "`kubectl get apiservice v1beta1.metrics.k8s.io -o yaml`",
            ],
        );
    }
}

#[tokio::test]
async fn service_unavailable_while_the_apiservice_is_available_is_called_transient() {
    let err = resource_error(
        vec![
            expect_discovery(&["v1beta1"], &[]),
            expect(POD_LIST, 503, ""),
            expect_json(
                APISERVICE,
                apiservice(
                    "v1beta1.metrics.k8s.io",
                    Some(("True", "Passed", "all checks passed")),
                ),
            ),
        ],
        ClientConfig::default(),
    )
    .await;
    assert!(
        matches!(
            &err,
            Error::ServiceUnavailable {
                apiservice_check: None,
                ..
            }
        ),
        "{err:?}"
    );
    assert_mentions(
        &err,
        &[
            "the server is currently unable to handle the request (get pods.metrics.k8s.io)",
            "APIService v1beta1.metrics.k8s.io is Available",
            "if this persists check `kubectl get apiservice v1beta1.metrics.k8s.io`",
        ],
    );
    assert_eq!(err.kind(), "service_unavailable");
}

#[tokio::test]
async fn service_unavailable_still_names_the_cause_when_the_apiservice_cannot_be_read() {
    let forbidden = json!({
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
        "message": "apiservices.apiregistration.k8s.io \"v1beta1.metrics.k8s.io\" is forbidden: User \"system:serviceaccount:tidal:tidal\" cannot get resource \"apiservices\""
    });
    let err = resource_error(
        vec![
            expect_discovery(&["v1beta1"], &[]),
            expect(POD_LIST, 503, "service unavailable"),
            expect(APISERVICE, 403, forbidden.to_string()),
        ],
        ClientConfig::default(),
    )
    .await;
    assert!(
        matches!(
            &err,
            Error::ServiceUnavailable {
                apiservice_check: Some(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert_mentions(
        &err,
        &[
            "the server is currently unable to handle the request",
            "the Available state of APIService v1beta1.metrics.k8s.io is unknown",
            "cannot get resource \"apiservices\"",
        ],
    );
}

#[tokio::test]
async fn empty_resource_metrics_list_is_upstreams_no_metrics_error_with_what_to_check() {
    let err = resource_error(
        vec![
            expect_discovery(&["v1beta1"], &[]),
            expect_json(POD_LIST, pod_metrics_list("v1beta1", vec![])),
        ],
        ClientConfig::default(),
    )
    .await;
    assert!(
        matches!(
            &err,
            Error::NoMetrics {
                api: MetricsApi::Resource,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("no metrics returned from resource metrics API")
    );
    assert_mentions(
        &err,
        &[
            "\"app=nginx-deploy\"",
            "`kubectl top pod -n default -l 'app=nginx-deploy'`",
        ],
    );
    assert_eq!(
        err.upstream_message(),
        "no metrics returned from resource metrics API"
    );
}

#[tokio::test]
async fn empty_custom_and_external_lists_use_their_own_upstream_words() {
    let (client, verifier) = mock_client();
    let server = verifier.run(vec![
        expect_discovery(&["v1beta1"], &["v1beta2"]),
        expect_json(
            "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/%2A/rps?labelSelector=app%3Dweb",
            json!({"kind": "MetricValueList", "apiVersion": "custom.metrics.k8s.io/v1beta2", "metadata": {}, "items": []}),
        ),
        expect_json(
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/backlog",
            json!({"kind": "ExternalMetricValueList", "apiVersion": "external.metrics.k8s.io/v1beta1", "metadata": {}, "items": null}),
        ),
    ]);
    let metrics = metrics_client(client);
    let custom = metrics.pods_metric("shop", "app=web", "rps", "").await;
    let external = metrics.external_metric("shop", "backlog", "").await;
    drop(metrics);
    server.await.expect("verifier");

    let custom = custom.expect_err("empty custom list");
    assert_eq!(
        custom.upstream_message(),
        "no metrics returned from custom metrics API"
    );
    assert_mentions(&custom, &["metric \"rps\"", "kubectl get --raw"]);
    let external = external.expect_err("empty external list");
    assert_eq!(
        external.upstream_message(),
        "no metrics returned from external metrics API"
    );
    assert_mentions(
        &external,
        &["metric \"backlog\"", "adapter's configuration"],
    );
}

#[tokio::test]
async fn malformed_bodies_are_named_with_where_they_came_from() {
    let bodies = [
        "<html><body>Welcome to nginx!</body></html>".to_string(),
        json!({"paths": ["/healthz", "/version"]}).to_string(),
        json!({"kind": "PodMetricsList", "items": [{"metadata": {"name": "p"}, "timestamp": "yesterday"}]}).to_string(),
        json!({"kind": "PodMetricsList", "items": [{"metadata": {"name": "p"}, "containers": "none"}]}).to_string(),
        json!({"kind": "PodMetricsList", "items": [{"metadata": {"name": "p"}, "window": "fifteen seconds"}]}).to_string(),
    ];
    for body in bodies {
        let err = resource_error(
            vec![
                expect_discovery(&["v1beta1"], &[]),
                expect(POD_LIST, 200, body.clone()),
            ],
            ClientConfig::default(),
        )
        .await;
        assert!(matches!(&err, Error::Malformed { .. }), "{body}: {err:?}");
        assert_mentions(
            &err,
            &[
                "unable to fetch metrics from resource metrics API: malformed response to GET /apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dnginx-deploy",
                "`kubectl get apiservice v1beta1.metrics.k8s.io -o yaml`",
            ],
        );
    }
}

#[tokio::test]
async fn a_hung_metrics_server_times_out_with_the_apiservice_to_check() {
    let config = ClientConfig {
        request_timeout: Duration::from_millis(200),
        ..ClientConfig::default()
    };
    let err = resource_error(
        vec![
            expect_discovery(&["v1beta1"], &[]),
            expect_hang(POD_LIST),
            expect_json(
                APISERVICE,
                apiservice(
                    "v1beta1.metrics.k8s.io",
                    Some(("False", "FailedDiscoveryCheck", "context deadline exceeded")),
                ),
            ),
        ],
        config,
    )
    .await;
    assert!(matches!(&err, Error::Timeout { .. }), "{err:?}");
    assert_mentions(
        &err,
        &[
            "unable to fetch metrics from resource metrics API: GET /apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dnginx-deploy got no answer within 200ms",
            "APIService v1beta1.metrics.k8s.io is not Available: FailedDiscoveryCheck: context deadline exceeded",
            "`kubectl get apiservice v1beta1.metrics.k8s.io`",
        ],
    );
}

#[tokio::test]
async fn a_refused_connection_names_the_apiservice_state_it_could_not_read() {
    let err = resource_error(
        vec![
            expect_discovery(&["v1beta1"], &[]),
            expect_refused(POD_LIST),
            expect_refused(APISERVICE),
        ],
        ClientConfig::default(),
    )
    .await;
    assert!(matches!(&err, Error::Transport { .. }), "{err:?}");
    assert_mentions(
        &err,
        &[
            "connection refused",
            "the Available state of APIService v1beta1.metrics.k8s.io is unknown",
            "could not talk to the Kubernetes API server",
        ],
    );
    assert_eq!(err.kind(), "transport");
}

#[tokio::test]
async fn server_errors_other_than_503_name_the_apiservice_state() {
    for code in [500u16, 502, 504] {
        let err = resource_error(
            vec![
                expect_discovery(&["v1beta1"], &[]),
                expect(POD_LIST, code, "proxy error"),
                expect_json(
                    APISERVICE,
                    apiservice(
                        "v1beta1.metrics.k8s.io",
                        Some(("False", "MissingEndpoints", "no ready endpoints")),
                    ),
                ),
            ],
            ClientConfig::default(),
        )
        .await;
        assert!(
            matches!(&err, Error::Status { code: c, .. } if *c == code),
            "{code}: {err:?}"
        );
        assert_mentions(
            &err,
            &[
                "APIService v1beta1.metrics.k8s.io is not Available: MissingEndpoints: no ready endpoints",
            ],
        );
    }
}

#[tokio::test]
async fn the_cause_is_the_message_without_upstreams_prefix_for_every_failure() {
    let err = resource_error(
        vec![
            expect_discovery(&["v1beta1"], &[]),
            expect(POD_LIST, 503, "service unavailable"),
            expect_json(
                APISERVICE,
                apiservice(
                    "v1beta1.metrics.k8s.io",
                    Some(("False", "MissingEndpoints", "no ready endpoints")),
                ),
            ),
        ],
        ClientConfig::default(),
    )
    .await;
    let prefix = err.prefix().expect("a fetch failure has upstream's prefix");
    assert_eq!(prefix, "unable to fetch metrics from resource metrics API");
    assert_eq!(err.to_string(), format!("{prefix}: {}", err.cause()));
    assert!(
        err.cause()
            .starts_with("the server is currently unable to handle the request"),
        "{}",
        err.cause()
    );
    let no_metrics = resource_error(
        vec![
            expect_discovery(&["v1beta1"], &[]),
            expect_json(POD_LIST, pod_metrics_list("v1beta1", vec![])),
        ],
        ClientConfig::default(),
    )
    .await;
    assert_eq!(no_metrics.prefix(), None);
    assert_eq!(no_metrics.cause(), no_metrics.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_discovery_is_shared_by_concurrent_callers_and_remembered_briefly() {
    let (client, verifier) = mock_client();
    // Exactly one GET /apis is served: a second would fail the verifier.
    let server = verifier.run(vec![expect("/apis", 500, "etcd is sad")]);
    let metrics = metrics_client(client);
    let at_once = futures::future::join_all((0..5).map(|_| metrics.api_versions())).await;
    let soon_after = metrics.api_versions().await;
    drop(metrics);
    let seen = server.await.expect("verifier");
    assert_eq!(seen, vec!["/apis".to_string()]);
    assert!(at_once.iter().all(Result::is_err), "{at_once:?}");
    assert!(soon_after.is_err());
}

#[tokio::test]
async fn a_failed_discovery_is_asked_again_after_its_ttl() {
    let (client, verifier) = mock_client();
    let server = verifier.run(vec![
        expect("/apis", 500, "etcd is sad"),
        expect_discovery(&["v1beta1"], &["v1beta2"]),
    ]);
    let ttl = Duration::from_millis(100);
    let metrics = MetricsClient::with_config(
        client,
        ClientConfig {
            failed_discovery_ttl: ttl,
            ..ClientConfig::default()
        },
    );
    let failed = metrics.api_versions().await;
    tokio::time::sleep(ttl).await;
    let recovered = metrics.api_versions().await;
    drop(metrics);
    server.await.expect("verifier");
    assert!(failed.is_err());
    assert!(recovered.is_ok(), "{recovered:?}");
}

#[tokio::test]
async fn failed_discovery_does_not_block_resource_metrics() {
    let (client, verifier) = mock_client();
    let server = verifier.run(vec![
        expect("/apis", 500, "etcd is sad"),
        expect_json(
            POD_LIST,
            pod_metrics_list(
                "v1beta1",
                vec![pod_item(
                    "default",
                    "p",
                    &[("app", "nginx-deploy")],
                    ts(0),
                    "1m",
                    "1Mi",
                )],
            ),
        ),
    ]);
    let metrics = metrics_client(client);
    let got = metrics.pod_metrics("default", "app=nginx-deploy").await;
    drop(metrics);
    server.await.expect("verifier");
    assert!(got.is_ok(), "{got:?}");
}

#[tokio::test]
async fn custom_metrics_without_an_adapter_say_so_in_upstream_words() {
    let (client, verifier) = mock_client();
    let server = verifier.run(vec![expect_discovery(&["v1beta1"], &[])]);
    let metrics = metrics_client(client);
    let got = metrics.pods_metric("shop", "app=web", "rps", "").await;
    drop(metrics);
    server.await.expect("verifier");
    let err = got.expect_err("no adapter");
    assert_eq!(
        err.upstream_message(),
        "unable to fetch metrics from custom metrics API: no custom metrics API (custom.metrics.k8s.io) registered"
    );
    assert_mentions(&err, &["install a custom metrics adapter"]);
}

#[tokio::test]
async fn unknown_custom_metric_404_with_an_available_apiservice_points_at_the_adapter() {
    let (client, verifier) = mock_client();
    let server = verifier.run(vec![
        expect_discovery(&["v1beta1"], &["v1beta2"]),
        expect(
            "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/%2A/rps?labelSelector=app%3Dweb",
            404,
            not_found_status("the server could not find the metric rps for pods"),
        ),
        expect_json(
            "/apis/apiregistration.k8s.io/v1/apiservices/v1beta2.custom.metrics.k8s.io",
            apiservice("v1beta2.custom.metrics.k8s.io", Some(("True", "Passed", "all checks passed"))),
        ),
    ]);
    let metrics = metrics_client(client);
    let got = metrics.pods_metric("shop", "app=web", "rps", "").await;
    drop(metrics);
    server.await.expect("verifier");
    let err = got.expect_err("unknown metric");
    assert!(matches!(&err, Error::Status { code: 404, .. }), "{err:?}");
    assert_eq!(
        err.upstream_message(),
        "unable to fetch metrics from custom metrics API: the server could not find the metric rps for pods"
    );
    assert_mentions(
        &err,
        &["`kubectl get --raw /apis/custom.metrics.k8s.io/v1beta2`"],
    );
}

#[tokio::test]
async fn object_metric_with_two_items_is_upstreams_exactly_one_error() {
    let (client, verifier) = mock_client();
    let item = json!({
        "describedObject": {"kind": "Namespace", "name": "shop", "apiVersion": "v1"},
        "metric": {"name": "q"}, "timestamp": ts(0).to_string(), "value": "1"
    });
    let server = verifier.run(vec![
        expect_discovery(&["v1beta1"], &["v1beta2"]),
        expect_json(
            "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/metrics/q",
            json!({"kind": "MetricValueList", "apiVersion": "custom.metrics.k8s.io/v1beta2", "metadata": {}, "items": [item.clone(), item]}),
        ),
    ]);
    let metrics = metrics_client(client);
    let got = metrics
        .object_metric(
            "shop",
            &tidal_metrics_client::ObjectTarget::Namespace,
            "q",
            "",
        )
        .await;
    drop(metrics);
    server.await.expect("verifier");
    let err = got.expect_err("two items");
    assert_eq!(
        err.upstream_message(),
        "unable to fetch metrics from custom metrics API: the custom metrics API server returned 2 results when we asked for exactly one"
    );
}

#[tokio::test]
async fn an_unknown_kind_in_an_object_metric_names_the_kind_and_where_to_look() {
    let (client, verifier) = mock_client();
    let server = verifier.run(vec![expect(
        "/apis/example.com/v1",
        404,
        "404 page not found",
    )]);
    let metrics = metrics_client(client);
    let got = metrics
        .object_target("example.com/v1", "Queue", "orders")
        .await;
    drop(metrics);
    server.await.expect("verifier");
    let err = got.expect_err("group not served");
    assert_eq!(
        err.upstream_message(),
        "unable to fetch metrics from custom metrics API: unable to map kind Queue.example.com to resource: the server could not find the requested resource"
    );
    assert_mentions(&err, &["`kubectl api-resources`"]);
}
