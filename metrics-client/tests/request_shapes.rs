//! Pins the exact request of every metrics call to kube-controller-manager's
//! (contract 1.7). These tests stay when real-cluster tests arrive: a change
//! of shape must be a deliberate change of these URIs.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use tidal_metrics_client::{ObjectTarget, ResourceMetricsVersion, Selector};

const POD_LIST_V1BETA1: &str =
    "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dnginx-deploy";

#[tokio::test]
async fn resource_metrics_list_sends_the_canonical_selector_to_v1beta1() {
    let (client, verifier) = mock_client();
    let items = vec![
        pod_item(
            "default",
            "nginx-1",
            &[("app", "nginx-deploy")],
            ts(0),
            "12m",
            "20Mi",
        ),
        pod_item(
            "default",
            "nginx-2",
            &[("app", "nginx-deploy")],
            ts(-3),
            "250u",
            "1Gi",
        ),
    ];
    let server = verifier.run(vec![
        expect_discovery(&["v1beta1"], &[]),
        expect_json(POD_LIST_V1BETA1, pod_metrics_list("v1beta1", items)),
    ]);
    let metrics = metrics_client(client);
    let got = metrics.pod_metrics("default", "app=nginx-deploy").await;
    drop(metrics);
    server.await.expect("verifier");

    let got = got.expect("pod metrics");
    assert_eq!(got.api_version, "metrics.k8s.io/v1beta1");
    assert_eq!(got.pods.len(), 2);
    let first = &got.pods[0];
    assert_eq!(first.name, "nginx-1");
    assert_eq!(first.timestamp, ts(0));
    assert_eq!(first.window, Duration::from_millis(15_012));
    assert_eq!(first.labels["app"], "nginx-deploy");
    assert_eq!(first.pod_usage("cpu"), Some(vec!["12m"]));
    assert_eq!(got.pods[1].container_usage("app", "memory"), Some("1Gi"));
    assert_eq!(got.first_timestamp(), Some(ts(0)));
}

#[tokio::test]
async fn resource_metrics_prefer_v1_when_discovery_offers_it() {
    let (client, verifier) = mock_client();
    let server = verifier.run(vec![
        expect_discovery(&["v1", "v1beta1"], &[]),
        expect_json(
            "/apis/metrics.k8s.io/v1/namespaces/shop/pods?labelSelector=app%3Dx%2Ctier+in+%28api%2Cweb%29",
            pod_metrics_list("v1", vec![pod_item("shop", "x-1", &[("app", "x")], ts(0), "1", "1Mi")]),
        ),
    ]);
    let metrics = metrics_client(client);
    // The caller passes the canonical string; here built from a parsed selector.
    let selector = Selector::parse("tier in (web, api), app=x")
        .expect("valid")
        .to_string();
    let versions = metrics.api_versions().await;
    let got = metrics.pod_metrics("shop", &selector).await;
    drop(metrics);
    server.await.expect("verifier");

    assert_eq!(
        versions.expect("discovery").resource,
        ResourceMetricsVersion::V1
    );
    assert_eq!(got.expect("pod metrics").api_version, "metrics.k8s.io/v1");
}

#[tokio::test]
async fn discovery_is_cached_until_invalidated() {
    let (client, verifier) = mock_client();
    let list = pod_metrics_list(
        "v1beta1",
        vec![pod_item(
            "default",
            "p",
            &[("app", "nginx-deploy")],
            ts(0),
            "1m",
            "1Mi",
        )],
    );
    let server = verifier.run(vec![
        expect_discovery(&["v1beta1"], &[]),
        expect_json(POD_LIST_V1BETA1, list.clone()),
        expect_json(POD_LIST_V1BETA1, list.clone()),
        expect_discovery(&["v1"], &[]),
        expect_json(
            "/apis/metrics.k8s.io/v1/namespaces/default/pods?labelSelector=app%3Dnginx-deploy",
            list,
        ),
    ]);
    let metrics = metrics_client(client);
    let a = metrics.pod_metrics("default", "app=nginx-deploy").await;
    let b = metrics.pod_metrics("default", "app=nginx-deploy").await;
    metrics.invalidate_discovery().await;
    let c = metrics.pod_metrics("default", "app=nginx-deploy").await;
    drop(metrics);
    let seen = server.await.expect("verifier");

    assert!(a.is_ok() && b.is_ok() && c.is_ok());
    assert_eq!(seen.iter().filter(|u| *u == "/apis").count(), 2);
}

#[tokio::test]
async fn pods_metric_uses_the_wildcard_name_and_both_selectors_on_v1beta2() {
    let (client, verifier) = mock_client();
    let body = json!({
        "kind": "MetricValueList",
        "apiVersion": "custom.metrics.k8s.io/v1beta2",
        "metadata": {},
        "items": [{
            "describedObject": {"kind": "Pod", "namespace": "shop", "name": "web-1", "apiVersion": "/v1"},
            "metric": {"name": "http_requests", "selector": {"matchLabels": {"verb": "GET"}}},
            "timestamp": ts(0).to_string(),
            "windowSeconds": 30,
            "value": "1500m"
        }, {
            "describedObject": {"kind": "Pod", "namespace": "shop", "name": "web-2", "apiVersion": "/v1"},
            "metric": {"name": "http_requests"},
            "timestamp": ts(0).to_string(),
            "value": "2"
        }]
    });
    let server = verifier.run(vec![
        expect_discovery(&["v1beta1"], &["v1beta2", "v1beta1"]),
        expect_json(
            "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/%2A/http_requests?labelSelector=app%3Dweb&metricLabelSelector=verb%3DGET",
            body,
        ),
    ]);
    let metrics = metrics_client(client);
    let got = metrics
        .pods_metric("shop", "app=web", "http_requests", "verb=GET")
        .await;
    drop(metrics);
    server.await.expect("verifier");

    let got = got.expect("pods metric");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].described_object.name, "web-1");
    assert_eq!(got[0].value, "1500m");
    assert_eq!(got[0].window(), Duration::from_secs(30));
    // No windowSeconds: the HPA assumes one minute.
    assert_eq!(got[1].window(), Duration::from_secs(60));
}

#[tokio::test]
async fn pods_metric_leaves_out_an_empty_metric_selector_and_speaks_v1beta1() {
    let (client, verifier) = mock_client();
    let body = json!({
        "kind": "MetricValueList",
        "apiVersion": "custom.metrics.k8s.io/v1beta1",
        "metadata": {},
        "items": [{
            "describedObject": {"kind": "Pod", "namespace": "shop", "name": "web-1", "apiVersion": "/v1"},
            "metricName": "queue_depth",
            "timestamp": ts(0).to_string(),
            "windowSeconds": 15,
            "value": "7"
        }]
    });
    let server = verifier.run(vec![
        expect_discovery(&["v1beta1"], &["v1beta1"]),
        expect_json(
            "/apis/custom.metrics.k8s.io/v1beta1/namespaces/shop/pods/%2A/queue_depth?labelSelector=app%3Dweb",
            body,
        ),
    ]);
    let metrics = metrics_client(client);
    let got = metrics
        .pods_metric("shop", "app=web", "queue_depth", "")
        .await;
    drop(metrics);
    server.await.expect("verifier");

    let got = got.expect("pods metric");
    assert_eq!(got[0].metric_name, "queue_depth");
    assert_eq!(got[0].window_seconds, Some(15));
}

fn one_value(kind: &str, name: &str, metric: &str) -> serde_json::Value {
    json!({
        "kind": "MetricValueList",
        "apiVersion": "custom.metrics.k8s.io/v1beta2",
        "metadata": {},
        "items": [{
            "describedObject": {"kind": kind, "namespace": "shop", "name": name, "apiVersion": "apps/v1"},
            "metric": {"name": metric},
            "timestamp": ts(0).to_string(),
            "value": "42"
        }]
    })
}

#[tokio::test]
async fn object_metric_maps_the_kind_to_resource_dot_group_once() {
    let (client, verifier) = mock_client();
    let resources = json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "apps/v1",
        "resources": [
            {"name": "deployments", "singularName": "deployment", "namespaced": true, "kind": "Deployment", "verbs": ["get"]},
            {"name": "deployments/scale", "singularName": "", "namespaced": true, "kind": "Scale", "verbs": ["get"]}
        ]
    });
    let path = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/deployments.apps/web/requests_per_second";
    let server = verifier.run(vec![
        expect_discovery(&["v1beta1"], &["v1beta2"]),
        expect_json("/apis/apps/v1", resources),
        expect_json(path, one_value("Deployment", "web", "requests_per_second")),
        expect_json(
            &format!("{path}?metricLabelSelector=route%3D%2Fcheckout"),
            one_value("Deployment", "web", "requests_per_second"),
        ),
    ]);
    let metrics = metrics_client(client);
    let target = metrics.object_target("apps/v1", "Deployment", "web").await;
    let again = metrics.object_target("apps/v1", "Deployment", "web").await;
    let target = target.expect("mapped");
    assert_eq!(again.as_ref(), Ok(&target));
    let plain = metrics
        .object_metric("shop", &target, "requests_per_second", "")
        .await;
    let selected = metrics
        .object_metric("shop", &target, "requests_per_second", "route=/checkout")
        .await;
    drop(metrics);
    server.await.expect("verifier");

    assert_eq!(
        target,
        ObjectTarget::Object {
            resource: "deployments.apps".into(),
            name: "web".into()
        }
    );
    assert_eq!(plain.expect("object metric").value, "42");
    assert!(selected.is_ok());
}

#[tokio::test]
async fn object_metric_on_a_core_kind_has_no_group_suffix() {
    let (client, verifier) = mock_client();
    let resources = json!({
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [{"name": "services", "singularName": "service", "namespaced": true, "kind": "Service", "verbs": ["get"]}]
    });
    let server = verifier.run(vec![
        expect_discovery(&["v1beta1"], &["v1beta2"]),
        expect_json("/api/v1", resources),
        expect_json(
            "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/services/frontend/rps",
            one_value("Service", "frontend", "rps"),
        ),
    ]);
    let metrics = metrics_client(client);
    let target = metrics
        .object_target("v1", "Service", "frontend")
        .await
        .expect("mapped");
    let got = metrics.object_metric("shop", &target, "rps", "").await;
    drop(metrics);
    server.await.expect("verifier");
    assert!(got.is_ok(), "{got:?}");
}

#[tokio::test]
async fn object_metric_of_kind_namespace_asks_for_the_own_namespace() {
    let (client, verifier) = mock_client();
    let server = verifier.run(vec![
        expect_discovery(&["v1beta1"], &["v1beta2"]),
        expect_json(
            "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/metrics/queue_depth?metricLabelSelector=queue%3Dorders",
            one_value("Namespace", "shop", "queue_depth"),
        ),
    ]);
    let metrics = metrics_client(client);
    // The spec's describedObject.name is ignored, as upstream ignores it.
    let target = metrics
        .object_target("v1", "Namespace", "some-other-namespace")
        .await
        .expect("namespace needs no mapping");
    assert_eq!(target, ObjectTarget::Namespace);
    let got = metrics
        .object_metric("shop", &target, "queue_depth", "queue=orders")
        .await;
    drop(metrics);
    server.await.expect("verifier");
    assert!(got.is_ok(), "{got:?}");
}

#[tokio::test]
async fn external_metric_sends_the_metric_selector_as_label_selector_without_discovery() {
    let (client, verifier) = mock_client();
    let body = json!({
        "kind": "ExternalMetricValueList",
        "apiVersion": "external.metrics.k8s.io/v1beta1",
        "metadata": {},
        "items": [
            {"metricName": "queue_messages_ready", "metricLabels": {"queue": "worker"}, "timestamp": ts(0).to_string(), "value": "30"},
            {"metricName": "queue_messages_ready", "metricLabels": {"queue": "worker", "shard": "2"}, "timestamp": ts(-1).to_string(), "window": 60, "value": "12"}
        ]
    });
    let empty_selector_body = json!({
        "kind": "ExternalMetricValueList",
        "apiVersion": "external.metrics.k8s.io/v1beta1",
        "metadata": {},
        "items": [{"metricName": "backlog", "metricLabels": {}, "timestamp": ts(0).to_string(), "value": "1"}]
    });
    let server = verifier.run(vec![
        expect_json(
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/queue_messages_ready?labelSelector=queue%3Dworker",
            body,
        ),
        expect_json(
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/backlog",
            empty_selector_body,
        ),
    ]);
    let metrics = metrics_client(client);
    // The canonical string of matchLabels {queue: worker}, as the operator renders it.
    let msel = "queue=worker".to_string();
    let got = metrics
        .external_metric("shop", "queue_messages_ready", &msel)
        .await;
    let unselected = metrics.external_metric("shop", "backlog", "").await;
    drop(metrics);
    server.await.expect("verifier");

    let got = got.expect("external metric");
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].metric_labels["shard"], "2");
    assert_eq!(got[1].window_seconds, Some(60));
    assert_eq!(got[0].timestamp, ts(0));
    assert!(unselected.is_ok());
}
