//! Whole reconciles against a mocked API server, synced at 15 s steps of a simulated clock:
//! what a steady state costs the API server (nothing after the first status write), that a
//! change is still written, and that a restart from the persisted status keeps it that way;
//! and how a scale write that another writer races (409) ends, as upstream's does.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::Method;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::runtime::events::Reporter;
use kube::runtime::{reflector, watcher};
use serde_json::{Value, json};
use tidal_crds::AutoScaler;
use tidal_metrics_client::{BatchingConfig, BatchingMode, MetricsClient, PodMetricsSource};

use super::context::Remembered;
use super::{Caches, Context, HpaWatch, MetricsApis, Settings, sync};
use crate::leader::Leadership;
use crate::metrics::Metrics;
use crate::mock_api::{Seen, routed};
use crate::pods::{CachedPod, PodIndex};

const SYNC_PERIOD: Duration = Duration::from_secs(15);

/// The simulated cluster: the clock the metrics samples follow and the CPU each pod uses.
#[derive(Clone)]
struct World {
    now: Arc<Mutex<Timestamp>>,
    usage: Arc<Mutex<String>>,
    /// How many of the next scale writes are answered 409 Conflict.
    scale_conflicts: Arc<AtomicUsize>,
    /// The AutoScaler was deleted: its status writes are answered 404.
    deleted: Arc<std::sync::atomic::AtomicBool>,
}

impl World {
    fn at(usage: &str) -> World {
        World {
            now: Arc::new(Mutex::new(Timestamp::UNIX_EPOCH)),
            usage: Arc::new(Mutex::new(usage.into())),
            scale_conflicts: Arc::new(AtomicUsize::new(0)),
            deleted: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }
}

fn api(world: World) -> (kube::Client, Seen) {
    routed(move |method, target, body| {
        let path = target.split('?').next().unwrap_or_default();
        match (method, path) {
            (&Method::GET, "/apis") => Some((
                200,
                json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                    {"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                     "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}},
                    {"name": "metrics.k8s.io",
                     "versions": [{"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}],
                     "preferredVersion": {"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}}
                ]}),
            )),
            (&Method::GET, "/apis/apps/v1") => Some((
                200,
                json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1",
                       "resources": [
                    {"name": "deployments", "singularName": "deployment", "namespaced": true,
                     "kind": "Deployment", "verbs": ["get", "list", "update"]},
                    {"name": "deployments/scale", "singularName": "", "namespaced": true,
                     "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "update"]}
                ]}),
            )),
            (&Method::GET, "/apis/apps/v1/namespaces/shop/deployments/web/scale") => Some((
                200,
                json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
                       "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "5"},
                       "spec": {"replicas": 2}, "status": {"replicas": 2, "selector": "app=web"}}),
            )),
            (&Method::GET, "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods") => {
                let now = *world.now.lock().expect("clock");
                let sampled = now - SignedDuration::from_secs(5);
                let usage = world.usage.lock().expect("usage").clone();
                let item = |name: &str| {
                    json!({"metadata": {"name": name, "namespace": "shop"},
                           "timestamp": sampled.to_string(), "window": "15s",
                           "containers": [{"name": "app", "usage": {"cpu": usage, "memory": "10Mi"}}]})
                };
                Some((
                    200,
                    json!({"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1",
                           "metadata": {}, "items": [item("web-1"), item("web-2")]}),
                ))
            }
            (&Method::PUT, "/apis/apps/v1/namespaces/shop/deployments/web/scale")
                if world
                    .scale_conflicts
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok() =>
            {
                Some((
                    409,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                           "reason": "Conflict", "code": 409,
                           "message": "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified"}),
                ))
            }
            (
                &Method::PATCH | &Method::PUT,
                "/apis/autoscaling.tidal.dev/v1alpha1/namespaces/shop/autoscalers/web/status",
            ) if world.deleted.load(Ordering::SeqCst) => Some((
                404,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                       "reason": "NotFound", "code": 404,
                       "message": "autoscalers.autoscaling.tidal.dev \"web\" not found"}),
            )),
            // The scale intent (a merge patch of the status): answered with the AutoScaler
            // carrying it.
            (
                &Method::PATCH,
                "/apis/autoscaling.tidal.dev/v1alpha1/namespaces/shop/autoscalers/web/status",
            ) => {
                let mut stored = serde_json::to_value(autoscaler()).expect("json");
                stored["status"] = body["status"].clone();
                Some((200, stored))
            }
            // Scale, status writes and events: accepted as sent.
            (&Method::PUT | &Method::PATCH | &Method::POST, _) => Some((200, body.clone())),
            _ => None,
        }
    })
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "shop", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": "100m"}}}]},
        "status": {"phase": "Running", "startTime": "2026-01-01T00:00:00Z",
                   "conditions": [{"type": "Ready", "status": "True",
                                   "lastTransitionTime": "2026-01-01T00:00:30Z"}]}
    }))
    .expect("pod")
}

fn autoscaler() -> AutoScaler {
    serde_json::from_value(json!({
        "apiVersion": "autoscaling.tidal.dev/v1alpha1", "kind": "AutoScaler",
        "metadata": {"name": "web", "namespace": "shop", "generation": 1, "resourceVersion": "1",
                     "uid": "00000000-0000-0000-0000-000000000001"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 1, "maxReplicas": 10,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                              "target": {"type": "Utilization", "averageUtilization": 50}}}]}
    }))
    .expect("autoscaler")
}

/// A fresh operator process: empty memory, caches holding the AutoScaler and its two pods.
fn operator(client: kube::Client, obj: &AutoScaler) -> Context {
    operator_with(client, obj, false)
}

/// [`operator`], deciding again when a held decision releases (`decide_on_release`).
fn operator_with(client: kube::Client, obj: &AutoScaler, decide_on_release: bool) -> Context {
    operator_among(client, obj, &[], decide_on_release)
}

/// [`operator_with`], its AutoScaler cache also holding `others`.
fn operator_among(
    client: kube::Client,
    obj: &AutoScaler,
    others: &[AutoScaler],
    decide_on_release: bool,
) -> Context {
    let (pods, mut pod_writer) = PodIndex::new();
    pod_writer.apply(watcher::Event::Init);
    for name in ["web-1", "web-2"] {
        pod_writer.apply(watcher::Event::InitApply(CachedPod::from(&pod(name))));
    }
    pod_writer.apply(watcher::Event::InitDone);
    let (autoscalers, mut as_writer) = reflector::store();
    for o in std::iter::once(obj).chain(others) {
        as_writer.apply_watcher_event(&watcher::Event::Apply(o.clone()));
    }
    let (hpa_store, _) = crate::index::NamespaceIndex::new();
    let metrics_client = MetricsClient::new(client.clone());
    Context::new(
        client,
        Caches {
            pods,
            autoscalers,
            hpas: HpaWatch {
                store: hpa_store,
                synced: tokio::sync::watch::channel(true).1,
            },
        },
        MetricsApis {
            pods: std::sync::Arc::new(PodMetricsSource::new(
                metrics_client.clone(),
                BatchingMode::Off,
                BatchingConfig::default(),
            )),
            client: metrics_client,
        },
        Reporter {
            controller: "tidal".into(),
            instance: None,
        },
        Metrics::new().expect("metrics"),
        Leadership::always(),
        Settings {
            sync_period: SYNC_PERIOD,
            config: scaling::Config::default(),
            decide_on_release,
        },
    )
}

/// Runs one sync at `now` and returns how many writes it sent; a status write is fed back into
/// `obj`, as the AutoScaler watch would deliver it.
async fn sync_once(
    ctx: &Context,
    obj: &mut AutoScaler,
    world: &World,
    seen: &Seen,
    now: Timestamp,
) -> usize {
    *world.now.lock().expect("clock") = now;
    let before = seen.lock().expect("seen").len();
    let term = ctx.term().await.expect("leading");
    sync(obj, ctx, (term, std::time::Instant::now()), now)
        .await
        .expect("sync");
    let seen = seen.lock().expect("seen");
    let writes: Vec<&(Method, String, Value)> = seen[before..]
        .iter()
        .filter(|(method, _, _)| *method != Method::GET)
        .collect();
    for (method, path, body) in &writes {
        if *method == Method::PUT && path.ends_with("/autoscalers/web/status") {
            *obj = serde_json::from_value(body.clone()).expect("written autoscaler");
        }
    }
    writes.len()
}

#[tokio::test]
async fn a_steady_state_writes_the_status_once_then_never_even_across_a_restart() {
    let world = World::at("50m");
    let (client, seen) = api(world.clone());
    let mut obj = autoscaler();
    let ctx = operator(client.clone(), &obj);
    let start: Timestamp = "2026-03-01T10:00:00Z".parse().expect("time");
    // Every 15 s give or take up to 300 ms, as timers drift; 40 syncs fill the 5 min window
    // and keep going past it.
    let at = |i: i64| {
        start
            + SignedDuration::from_secs(15 * i)
            + SignedDuration::from_millis((i * 7_919) % 600 - 300)
    };

    let mut writes = Vec::new();
    for i in 0..40 {
        writes.push(sync_once(&ctx, &mut obj, &world, &seen, at(i)).await);
    }
    assert_eq!(
        writes[0], 1,
        "the first sync writes the status: {:?}",
        writes
    );
    assert!(
        writes[1..].iter().all(|w| *w == 0),
        "writes per sync with an unchanged load: {writes:?}"
    );
    let tidal = obj
        .status
        .as_ref()
        .and_then(|s| s.tidal.as_ref())
        .expect("tidal status");
    let trace = tidal.last_decision.as_ref().expect("last decision");
    assert_eq!(
        trace.time.0,
        crate::kube_core::time_in(&at(0)),
        "the stored decision says since when it has stood"
    );
    assert_eq!(
        tidal
            .history
            .as_ref()
            .map(|h| serde_json::to_value(&h.recommendation_runs).expect("json")),
        Some(json!([{"replicas": 2}]))
    );

    // A changed load is written (52 % is inside the tolerance: same size, new currentMetrics).
    *world.usage.lock().expect("usage") = "52m".into();
    let changed = sync_once(&ctx, &mut obj, &world, &seen, at(40)).await;
    assert_eq!(changed, 1, "a new utilization is a new status");
    for i in 41..44 {
        assert_eq!(sync_once(&ctx, &mut obj, &world, &seen, at(i)).await, 0);
    }

    // A restart: a new process recalls the persisted status and finds nothing to write.
    let restarted = operator(client, &obj);
    for i in 45..50 {
        assert_eq!(
            sync_once(&restarted, &mut obj, &world, &seen, at(i)).await,
            0,
            "sync {i} after the restart wrote"
        );
    }
}

/// The reasons of the events a sync posted and the scale writes it sent, from `before` on.
fn events_and_scale_writes(seen: &Seen, before: usize) -> (Vec<String>, Vec<Value>) {
    let seen = seen.lock().expect("seen");
    let events = seen[before..]
        .iter()
        .filter(|(method, path, _)| *method == Method::POST && path.ends_with("/events"))
        .map(|(_, _, body)| body["reason"].as_str().unwrap_or_default().to_string())
        .collect();
    let scales = seen[before..]
        .iter()
        .filter(|(method, path, _)| *method == Method::PUT && path.ends_with("/web/scale"))
        .map(|(_, _, body)| body["spec"]["replicas"].clone())
        .collect();
    (events, scales)
}

#[tokio::test]
async fn a_scale_write_raced_by_another_writer_succeeds_on_the_retry_as_upstream_reports_it() {
    // 80 % on 2 pods at a 50 % target: 4 replicas.
    let world = World::at("80m");
    world.scale_conflicts.store(1, Ordering::SeqCst);
    let (client, seen) = api(world.clone());
    let mut obj = autoscaler();
    let ctx = operator(client, &obj);
    let now: Timestamp = "2026-03-01T10:00:00Z".parse().expect("time");
    let before = seen.lock().expect("seen").len();
    sync_once(&ctx, &mut obj, &world, &seen, now).await;
    let (events, scales) = events_and_scale_writes(&seen, before);
    assert_eq!(
        scales,
        vec![json!(4), json!(4)],
        "the retry writes the same size"
    );
    assert_eq!(events, vec!["SuccessfulRescale".to_string()]);
    assert_eq!(ctx.metrics.scale_write_conflicts.get(), 1);
    let able = obj
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "AbleToScale"))
        .expect("AbleToScale");
    assert_eq!(
        (
            able.status.as_str(),
            able.reason.as_deref().unwrap_or_default()
        ),
        ("True", "SucceededRescale")
    );
}

#[tokio::test]
async fn a_scale_write_that_keeps_conflicting_fails_the_rescale_and_spends_no_budget() {
    let world = World::at("80m");
    world.scale_conflicts.store(5, Ordering::SeqCst);
    let (client, seen) = api(world.clone());
    let mut obj = autoscaler();
    let ctx = operator(client, &obj);
    let now: Timestamp = "2026-03-01T10:00:00Z".parse().expect("time");
    let before = seen.lock().expect("seen").len();
    sync_once(&ctx, &mut obj, &world, &seen, now).await;
    let (events, scales) = events_and_scale_writes(&seen, before);
    assert_eq!(scales.len(), 5, "five attempts: {scales:?}");
    assert_eq!(events, vec!["FailedRescale".to_string()]);
    let status = obj.status.as_ref().expect("status");
    let able = status
        .conditions
        .as_ref()
        .expect("conditions")
        .iter()
        .find(|c| c.type_ == "AbleToScale")
        .expect("AbleToScale");
    assert_eq!(
        (
            able.status.as_str(),
            able.reason.as_deref().unwrap_or_default()
        ),
        ("False", "FailedUpdateScale")
    );
    assert!(status.last_scale_time.is_none(), "no scale happened");
    let history = status.tidal.as_ref().and_then(|t| t.history.as_ref());
    assert!(
        history.is_none_or(|h| h.scale_up_events.is_empty()),
        "a failed write is no scale event: {history:?}"
    );
}

#[tokio::test]
async fn an_autoscaler_deleted_since_the_cache_saw_it_is_not_acted_on() {
    const STATUS: &str =
        "/apis/autoscaling.tidal.dev/v1alpha1/namespaces/shop/autoscalers/web/status";
    // 80 % on 2 pods at a 50 % target would scale to 4: the intent finds it gone. 50 % keeps
    // 2: the status write finds it gone.
    for (usage, tried) in [("80m", "PATCH"), ("50m", "PUT")] {
        let world = World::at(usage);
        world.deleted.store(true, Ordering::SeqCst);
        let (client, seen) = api(world.clone());
        let obj = autoscaler();
        let ctx = operator(client, &obj);
        let now: Timestamp = "2026-03-01T10:00:00Z".parse().expect("time");
        let before = seen.lock().expect("seen").len();
        *world.now.lock().expect("clock") = now;
        let term = ctx.term().await.expect("leading");
        let result = sync(&obj, &ctx, (term, std::time::Instant::now()), now).await;
        assert!(result.is_ok(), "{usage}: {:?}", result.err());
        let (events, scales) = events_and_scale_writes(&seen, before);
        assert!(scales.is_empty(), "{usage}: no scale write: {scales:?}");
        assert!(events.is_empty(), "{usage}: no event about it: {events:?}");
        let writes: Vec<String> = seen.lock().expect("seen")[before..]
            .iter()
            .filter(|(method, _, _)| *method != Method::GET)
            .map(|(method, path, _)| format!("{method} {path}"))
            .collect();
        assert_eq!(writes, vec![format!("{tried} {STATUS}")], "{usage}");
    }
}

#[tokio::test]
async fn a_scale_down_held_by_the_window_asks_to_decide_again_when_the_window_releases_it() {
    // 50 % on 2 pods at a 50 % target: 2 replicas; then 10 %: 1 replica, held 5 min by the
    // downscale window until the last recommendation of 2 leaves it.
    let world = World::at("50m");
    let (client, _seen) = api(world.clone());
    let mut obj = autoscaler();
    let start: Timestamp = "2026-03-01T10:00:00Z".parse().expect("time");
    let at = |s: i64| start + SignedDuration::from_secs(s);
    let term = |ctx: &Context| ctx.leadership.term().expect("leading");
    for (decide_on_release, want) in [(true, true), (false, false)] {
        let ctx = operator_with(client.clone(), &obj, decide_on_release);
        *world.now.lock().expect("clock") = at(0);
        *world.usage.lock().expect("usage") = "50m".into();
        let (_, release) = sync(&obj, &ctx, (term(&ctx), std::time::Instant::now()), at(0))
            .await
            .expect("sync");
        assert_eq!(release, None, "nothing held at 2 replicas");
        *world.usage.lock().expect("usage") = "10m".into();
        *world.now.lock().expect("clock") = at(15);
        let (_, release) = sync(&obj, &ctx, (term(&ctx), std::time::Instant::now()), at(15))
            .await
            .expect("sync");
        let expected = crate::kube_core::time_in(&at(300));
        assert_eq!(
            release,
            want.then_some(expected),
            "decide_on_release {decide_on_release}: the recommendation of 2 at 0 s leaves the 5 min window at 300 s"
        );
        obj = autoscaler();
    }
}

/// `(status, reason, message)` of the `ScalingActive` condition in `obj`'s status.
fn scaling_active(obj: &AutoScaler) -> (String, String, String) {
    let c = obj
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "ScalingActive"))
        .expect("ScalingActive");
    (
        c.status.clone(),
        c.reason.clone().unwrap_or_default(),
        c.message.clone().unwrap_or_default(),
    )
}

#[tokio::test]
async fn only_another_autoscaler_selecting_the_same_pods_makes_the_selector_ambiguous() {
    let world = World::at("50m");
    let (client, seen) = api(world.clone());
    let mut obj = autoscaler();
    let named = |name: &str| {
        let mut o = autoscaler();
        o.metadata.name = Some(name.into());
        o
    };
    // Many others in the namespace, each on pods of its own; one more, not yet registered.
    let mut others: Vec<AutoScaler> = (0..200).map(|i| named(&format!("api-{i}"))).collect();
    others.push(named("web-canary"));
    let ctx = operator_among(client, &obj, &others, false);
    let term = ctx.term().await.expect("leading");
    let register = |selector: &str| Remembered {
        selector: Some(selector.to_string()),
        history: None,
        reason: None,
        seen: None,
        fight_manager: None,
    };
    for i in 0..200 {
        ctx.remember(
            &format!("shop/api-{i}"),
            term,
            register(&format!("app=api-{i}")),
        )
        .await;
    }
    ctx.remember("shop/gone", term, register("app=web")).await;
    let start: Timestamp = "2026-03-01T10:00:00Z".parse().expect("time");
    sync_once(&ctx, &mut obj, &world, &seen, start).await;
    let (status, reason, _) = scaling_active(&obj);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "ValidMetricFound"),
        "neither disjoint selectors nor a deleted AutoScaler's make it ambiguous"
    );

    ctx.remember("shop/web-canary", term, register("app in (web)"))
        .await;
    sync_once(
        &ctx,
        &mut obj,
        &world,
        &seen,
        start + SignedDuration::from_secs(15),
    )
    .await;
    let (status, reason, message) = scaling_active(&obj);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "AmbiguousSelector")
    );
    assert!(
        message.ends_with("controlled by multiple HPAs: [shop/web shop/web-canary]"),
        "{message}"
    );
}
