//! The batching source makes one PodMetrics LIST per namespace per metrics
//! window for any number of autoscalers, and gives each the same samples the
//! exact per-autoscaler request gives.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use futures::future::join_all;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;
use tidal_metrics_client::{
    BatchedPodMetrics, BatchingConfig, BatchingMode, Error, MetricsClient, PodMetricsSnapshot,
    PodMetricsSource,
};

const NAMESPACES: [&str; 2] = ["team-a", "team-b"];
const APPS_PER_NAMESPACE: usize = 25;

fn selector(app: usize) -> String {
    format!("app=app-{app}")
}

/// Every pod of a namespace: two per app, plus pods no autoscaler selects.
/// `at` is the sample time; usage differs per window so windows are told apart.
fn namespace_items(namespace: &str, at: Timestamp, window: u32) -> Vec<Value> {
    let mut items = Vec::new();
    for app in 0..APPS_PER_NAMESPACE {
        for replica in 0..2 {
            items.push(pod_item(
                namespace,
                &format!("app-{app}-{replica}"),
                &[
                    ("app", &format!("app-{app}")),
                    ("pod-template-hash", "5d9c"),
                ],
                at,
                &format!("{}m", 100 * window as usize + app + replica),
                "64Mi",
            ));
        }
    }
    items.push(pod_item(
        namespace,
        "unrelated",
        &[("app", "db")],
        at,
        "5m",
        "1Gi",
    ));
    items
}

/// What metrics-server would answer to the exact request: the items whose
/// pod has label `app=app-<n>` (filtered here without the crate's matcher).
fn exact_items(namespace: &str, app: usize, at: Timestamp, window: u32) -> Vec<Value> {
    let want = format!("app-{app}");
    namespace_items(namespace, at, window)
        .into_iter()
        .filter(|i| i["metadata"]["labels"]["app"] == want.as_str())
        .collect()
}

fn namespace_list_uri(namespace: &str) -> String {
    format!("/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods")
}

async fn all_autoscalers(source: &PodMetricsSource) -> Vec<Result<PodMetricsSnapshot, Error>> {
    let calls = NAMESPACES.iter().flat_map(|ns| {
        (0..APPS_PER_NAMESPACE)
            .map(move |app| async move { source.pod_metrics(ns, &selector(app)).await })
    });
    join_all(calls).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_autoscalers_in_two_namespaces_make_one_request_per_namespace_per_window() {
    // Window 1: samples taken at t=-5s with 15.012s windows, so nothing
    // newer can exist before t=10.012s. Window 2: samples at t=10s.
    let window_1 = ts(-5);
    let window_2 = ts(10);
    let mut expectations = vec![expect_discovery(&["v1beta1"], &[])];
    for ns in NAMESPACES {
        expectations.push(expect_json(
            &namespace_list_uri(ns),
            pod_metrics_list("v1beta1", namespace_items(ns, window_1, 1)),
        ));
    }
    for ns in NAMESPACES {
        expectations.push(expect_json(
            &namespace_list_uri(ns),
            pod_metrics_list("v1beta1", namespace_items(ns, window_2, 2)),
        ));
    }
    let (client, verifier) = mock_client();
    let server = verifier.run(expectations);
    let (clock, now) = manual_clock(ts(0));
    let source = PodMetricsSource::Batched(BatchedPodMetrics::with_clock(
        MetricsClient::new(client),
        BatchingConfig::default(),
        clock,
    ));

    // All 50 at once, then all 50 again later in the same window.
    let first = all_autoscalers(&source).await;
    *now.lock().expect("clock") = ts(9);
    let same_window = all_autoscalers(&source).await;
    // The newest sample is now one resolution old: new data may exist.
    *now.lock().expect("clock") = ts(11);
    let second = all_autoscalers(&source).await;
    let requests = match &source {
        PodMetricsSource::Batched(b) => b.requests_made(),
        PodMetricsSource::Exact(_) => unreachable!(),
    };
    drop(source);
    let seen = server.await.expect("verifier");

    for ns in NAMESPACES {
        let uri = namespace_list_uri(ns);
        assert_eq!(
            seen.iter().filter(|u| **u == uri).count(),
            2,
            "{ns}: {seen:?}"
        );
    }
    assert_eq!(
        seen.len(),
        1 + 4,
        "one discovery and two windows x two namespaces"
    );
    assert_eq!(requests, 4);
    assert_eq!(
        first, same_window,
        "a reused response gives the same samples"
    );
    for (a, b) in first.iter().zip(&second) {
        let (a, b) = (a.as_ref().expect("window 1"), b.as_ref().expect("window 2"));
        assert_eq!(a.pods.len(), 2);
        assert_eq!(a.pods[0].timestamp, window_1);
        assert_eq!(b.pods[0].timestamp, window_2);
        assert_ne!(a.pods[0].containers, b.pods[0].containers);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_mode_returns_the_same_per_pod_samples_as_exact_mode() {
    let at = ts(-2);
    // Exact mode: one request per autoscaler, filtered by the "server".
    let mut expectations = vec![expect_discovery(&["v1beta1"], &[])];
    for ns in NAMESPACES {
        for app in 0..APPS_PER_NAMESPACE {
            expectations.push(expect_json(
                &format!("{}?labelSelector=app%3Dapp-{app}", namespace_list_uri(ns)),
                pod_metrics_list("v1beta1", exact_items(ns, app, at, 1)),
            ));
        }
    }
    let (client, verifier) = mock_client();
    let server = verifier.run(expectations);
    let exact = PodMetricsSource::new(
        MetricsClient::new(client),
        BatchingMode::Off,
        BatchingConfig::default(),
    );
    assert_eq!(exact.mode(), BatchingMode::Off);
    let exact_results = all_autoscalers(&exact).await;
    drop(exact);
    let exact_seen = server.await.expect("exact verifier");
    assert_eq!(exact_seen.len(), 1 + 50);

    // Batched mode: the namespace-wide list, filtered here.
    let mut expectations = vec![expect_discovery(&["v1beta1"], &[])];
    for ns in NAMESPACES {
        expectations.push(expect_json(
            &namespace_list_uri(ns),
            pod_metrics_list("v1beta1", namespace_items(ns, at, 1)),
        ));
    }
    let (client, verifier) = mock_client();
    let server = verifier.run(expectations);
    let batched = PodMetricsSource::new(
        MetricsClient::new(client),
        BatchingMode::On,
        BatchingConfig::default(),
    );
    assert_eq!(batched.mode(), BatchingMode::On);
    let batched_results = all_autoscalers(&batched).await;
    drop(batched);
    server.await.expect("batched verifier");

    assert_eq!(exact_results.len(), 50);
    for (i, (e, b)) in exact_results.iter().zip(&batched_results).enumerate() {
        let e = e.as_ref().expect("exact samples");
        assert_eq!(e.pods.len(), 2, "autoscaler {i}");
        assert_eq!(Ok(e), b.as_ref(), "autoscaler {i}");
    }
}

#[tokio::test]
async fn a_selector_matching_nothing_gives_the_exact_modes_error() {
    let (client, verifier) = mock_client();
    let server = verifier.run(vec![
        expect_discovery(&["v1beta1"], &[]),
        expect_json(
            &namespace_list_uri("team-a"),
            pod_metrics_list("v1beta1", namespace_items("team-a", ts(0), 1)),
        ),
    ]);
    let (clock, _) = manual_clock(ts(0));
    let batched =
        BatchedPodMetrics::with_clock(MetricsClient::new(client), BatchingConfig::default(), clock);
    let got = batched.pod_metrics("team-a", "app=nobody").await;
    let by_name = batched
        .pod_metrics_for_pods(
            "team-a",
            &BTreeSet::from(["app-3-1".to_string(), "gone".to_string()]),
            "app=app-3",
        )
        .await;
    drop(batched);
    server.await.expect("verifier");

    let err = got.expect_err("nothing matches");
    assert_eq!(
        err.upstream_message(),
        "no metrics returned from resource metrics API"
    );
    assert!(err.to_string().contains("\"app=nobody\""), "{err}");
    let by_name = by_name.expect("named pod");
    assert_eq!(by_name.pods.len(), 1);
    assert_eq!(by_name.pods[0].name, "app-3-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_namespace_request_is_shared_until_error_ttl_then_retried() {
    let (client, verifier) = mock_client();
    let server = verifier.run(vec![
        expect_discovery(&["v1beta1"], &[]),
        expect(&namespace_list_uri("team-a"), 503, "service unavailable"),
        expect_json(
            "/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io",
            apiservice(
                "v1beta1.metrics.k8s.io",
                Some((
                    "False",
                    "MissingEndpoints",
                    "endpoints for service/metrics-server in \"kube-system\" have no addresses",
                )),
            ),
        ),
        expect_json(
            &namespace_list_uri("team-a"),
            pod_metrics_list("v1beta1", namespace_items("team-a", ts(5), 1)),
        ),
    ]);
    let (clock, now) = manual_clock(ts(0));
    let batched = BatchedPodMetrics::with_clock(
        MetricsClient::new(client),
        BatchingConfig {
            error_ttl: Duration::from_secs(5),
            ..BatchingConfig::default()
        },
        clock,
    );
    let selectors: Vec<String> = (0..10).map(selector).collect();
    let failures = join_all(selectors.iter().map(|s| batched.pod_metrics("team-a", s))).await;
    *now.lock().expect("clock") = ts(6);
    let recovered = batched.pod_metrics("team-a", "app=app-1").await;
    drop(batched);
    server.await.expect("verifier");

    for f in &failures {
        assert!(
            matches!(f, Err(Error::ApiServiceUnavailable { reason, .. }) if reason == "MissingEndpoints"),
            "{f:?}"
        );
    }
    assert!(recovered.is_ok(), "{recovered:?}");
}

/// A batching source for "team-a" on a manual clock at t=0, with a 10 s resolution, serving
/// samples at t=-5 then t=5, one LIST each; the poller has looked once and said it looks again
/// by `until`.
struct Led {
    source: BatchedPodMetrics,
    now: std::sync::Arc<std::sync::Mutex<Timestamp>>,
    server: tokio::task::JoinHandle<Vec<String>>,
}

impl Led {
    async fn polled(until: Timestamp) -> Led {
        let mut expectations = vec![expect_discovery(&["v1beta1"], &[])];
        for (i, at) in [ts(-5), ts(5)].into_iter().enumerate() {
            expectations.push(expect_json(
                &namespace_list_uri("team-a"),
                pod_metrics_list("v1beta1", namespace_items("team-a", at, i as u32 + 1)),
            ));
        }
        let (client, verifier) = mock_client();
        let server = verifier.run(expectations);
        let (clock, now) = manual_clock(ts(0));
        let source = BatchedPodMetrics::with_clock(
            MetricsClient::new(client),
            BatchingConfig {
                resolution: Some(Duration::from_secs(10)),
                ..BatchingConfig::default()
            },
            clock,
        );
        let first = source.poll("team-a").await.expect("poll");
        assert_eq!(first.pods[0].timestamp, ts(-5));
        source.lead("team-a", until).await;
        Led {
            source,
            now,
            server,
        }
    }

    /// A reconcile's read at `t`: the newest sample it got, and the LISTs made so far.
    async fn read_at(&self, t: i64) -> (Timestamp, u64) {
        *self.now.lock().expect("clock") = ts(t);
        let got = self
            .source
            .pod_metrics("team-a", "app=app-1")
            .await
            .expect("read");
        (got.pods[0].timestamp, self.source.requests_made())
    }

    async fn done(self) {
        drop(self.source);
        self.server.await.expect("verifier");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciles_reuse_the_response_the_poller_vouches_for_until_its_next_poll() {
    // A newer sample is due at t=5, but the metrics server is late with it; the poller, having
    // looked at t=0, says it looks again by t=8.
    let led = Led::polled(ts(8)).await;
    let while_led = [led.read_at(6).await, led.read_at(7).await];
    let after = led.read_at(8).await;
    led.done().await;

    assert_eq!(
        while_led,
        [(ts(-5), 1), (ts(-5), 1)],
        "no reconcile LISTs between the poll and the poller's next poll"
    );
    assert_eq!(
        after,
        (ts(5), 2),
        "once the poller is overdue, a reconcile LISTs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_lists_again_whatever_it_vouched_for() {
    let led = Led::polled(ts(8)).await;
    // Past `newest + resolution` (t=5) and the one-second floor: the poller looks.
    *led.now.lock().expect("clock") = ts(6);
    let polled = led.source.poll("team-a").await.expect("poll");
    let lists = led.source.requests_made();
    led.done().await;

    assert_eq!(lists, 2);
    assert_eq!(polled.pods[0].timestamp, ts(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vouch_never_outlasts_max_age() {
    // max_age is 15 s by default: a poller that says "by t=100" is not believed past t=15.
    let led = Led::polled(ts(100)).await;
    let reads = [led.read_at(14).await, led.read_at(15).await];
    led.done().await;

    assert_eq!(reads, [(ts(-5), 1), (ts(5), 2)]);
}
