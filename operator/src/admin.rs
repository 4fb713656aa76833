//! The admin server: `/live`, `/ready` and `/metrics`.
//!
//! `/ready` means "this replica can do its job": the watches have synced, the AutoScaler and
//! pod watches are not failing now, and the leader state is known (leader or standby). It
//! turns false while a watch fails (CRD deleted, RBAC revoked: the caches are then stale) and
//! true again once it recovers, and false for good once shutdown begins, so a rolling update
//! drains it first. `/live` only says the process serves requests.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use kube::runtime::watcher;

use crate::Error;
use crate::metrics::Metrics;

/// How long after its last error a watch counts as recovered when no event has said so. A
/// watch that resumes after one dropped connection may stay quiet for hours, so waiting for an
/// event would keep the replica unready (and its scale writes refused) for no reason. A watch
/// that keeps failing reports its next error well inside this window: kube's default watcher
/// backoff waits at most 30 s between attempts, and an attempt fails within the client's 30 s
/// connect timeout.
pub const WATCH_RECOVERY_QUIET: Duration = Duration::from_secs(90);

/// Whether one watch is failing now. Failing from an error until the watch delivers an object
/// or completes a relist, or until [`WATCH_RECOVERY_QUIET`] passes without another error.
#[derive(Debug, Default)]
pub struct WatchHealth {
    state: Mutex<WatchState>,
}

#[derive(Debug, Default, Clone, Copy)]
struct WatchState {
    last_error: Option<Instant>,
    last_ok: Option<Instant>,
}

impl WatchHealth {
    /// Records one item of a watch stream (before or after a reflector).
    pub fn observe<K>(&self, event: &Result<watcher::Event<K>, watcher::Error>) {
        match event {
            // Init and InitApply do not count: a relist that fails halfway leaves the store
            // as stale as before; only InitDone swaps in the fresh list.
            Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone) => {
                self.record_ok_at(Instant::now());
            }
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
            Err(_) => self.record_error_at(Instant::now()),
        }
    }

    /// The watch failed at `now`.
    pub fn record_error_at(&self, now: Instant) {
        self.lock().last_error = Some(now);
    }

    /// The watch delivered an object or completed a list at `now`.
    pub fn record_ok_at(&self, now: Instant) {
        self.lock().last_ok = Some(now);
    }

    /// Whether the watch is not failing now.
    pub fn is_healthy(&self) -> bool {
        self.is_healthy_at(Instant::now())
    }

    /// Whether the watch is not failing at `now`.
    pub fn is_healthy_at(&self, now: Instant) -> bool {
        let state = *self.lock();
        match (state.last_error, state.last_ok) {
            (None, _) => true,
            (Some(error), Some(ok)) if ok >= error => true,
            (Some(error), _) => now.saturating_duration_since(error) >= WATCH_RECOVERY_QUIET,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WatchState> {
        // The state is two timestamps: a panic while holding the lock cannot leave it torn.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Readiness inputs, flipped by the runtime as it starts and stops.
#[derive(Debug, Default)]
pub struct Readiness {
    watches_synced: AtomicBool,
    leader_known: AtomicBool,
    shutting_down: AtomicBool,
    autoscaler_watch: Arc<WatchHealth>,
    pod_watch: Arc<WatchHealth>,
}

impl Readiness {
    /// The health of the AutoScaler watch (also consulted before every scale write).
    pub fn autoscaler_watch(&self) -> &Arc<WatchHealth> {
        &self.autoscaler_watch
    }

    /// The health of the pod watch.
    pub fn pod_watch(&self) -> &Arc<WatchHealth> {
        &self.pod_watch
    }

    /// The AutoScaler and pod caches have completed their first list.
    pub fn set_watches_synced(&self) {
        self.watches_synced.store(true, Ordering::SeqCst);
    }

    /// Leader election has answered once (this replica leads, or knows it stands by).
    pub fn set_leader_known(&self) {
        self.leader_known.store(true, Ordering::SeqCst);
    }

    /// Shutdown has begun.
    pub fn set_shutting_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Whether `/ready` answers 200.
    pub fn is_ready(&self) -> bool {
        self.is_ready_at(Instant::now())
    }

    /// Whether `/ready` answers 200 at `now`.
    pub fn is_ready_at(&self, now: Instant) -> bool {
        self.watches_synced.load(Ordering::SeqCst)
            && self.leader_known.load(Ordering::SeqCst)
            && !self.shutting_down.load(Ordering::SeqCst)
            && self.autoscaler_watch.is_healthy_at(now)
            && self.pod_watch.is_healthy_at(now)
    }
}

#[derive(Clone)]
struct AdminState {
    readiness: Arc<Readiness>,
    metrics: Metrics,
}

/// The admin routes, separate from the listener so tests can call them directly.
pub fn router(readiness: Arc<Readiness>, metrics: Metrics) -> Router {
    Router::new()
        .route("/live", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .route("/metrics", get(render_metrics))
        .with_state(AdminState { readiness, metrics })
}

async fn ready(State(state): State<AdminState>) -> impl IntoResponse {
    if state.readiness.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn render_metrics(State(state): State<AdminState>) -> impl IntoResponse {
    match state.metrics.render() {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            text,
        )
            .into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}

/// Binds the admin address. The runtime binds before it starts anything else, so an address
/// in use or not available ends the process at start instead of leaving it running without
/// probes or metrics.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, Error> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::AdminBind { addr, source })
}

/// Serves the admin routes on `listener` (from [`bind`]) until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    readiness: Arc<Readiness>,
    metrics: Metrics,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    // Only for logs and the error text: a bound listener has an address.
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    tracing::info!(%addr, "admin server listening");
    axum::serve(listener, router(readiness, metrics))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| Error::AdminBind { addr, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn status(router: &Router, path: &str) -> StatusCode {
        router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("response")
            .status()
    }

    #[tokio::test]
    async fn ready_only_after_watches_synced_and_leader_known() {
        let readiness = Arc::new(Readiness::default());
        let router = router(readiness.clone(), Metrics::new().expect("metrics"));
        assert_eq!(status(&router, "/live").await, StatusCode::OK);
        assert_eq!(
            status(&router, "/ready").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        readiness.set_watches_synced();
        assert_eq!(
            status(&router, "/ready").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        readiness.set_leader_known();
        assert_eq!(status(&router, "/ready").await, StatusCode::OK);
    }

    #[tokio::test]
    async fn not_ready_once_shutdown_begins() {
        let readiness = Arc::new(Readiness::default());
        readiness.set_watches_synced();
        readiness.set_leader_known();
        readiness.set_shutting_down();
        let router = router(readiness, Metrics::new().expect("metrics"));
        assert_eq!(
            status(&router, "/ready").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(status(&router, "/live").await, StatusCode::OK);
    }

    fn ready_replica() -> Readiness {
        let readiness = Readiness::default();
        readiness.set_watches_synced();
        readiness.set_leader_known();
        readiness
    }

    #[test]
    fn a_failing_autoscaler_watch_makes_the_replica_unready_until_a_relist_completes() {
        let readiness = ready_replica();
        let t0 = Instant::now();
        assert!(readiness.is_ready_at(t0));
        readiness.autoscaler_watch().record_error_at(t0);
        assert!(!readiness.is_ready_at(t0));
        // Retries keep failing (CRD deleted, RBAC revoked): still unready long after.
        let later = t0 + WATCH_RECOVERY_QUIET / 2;
        readiness.autoscaler_watch().record_error_at(later);
        assert!(!readiness.is_ready_at(later + WATCH_RECOVERY_QUIET / 2));
        // The relist completes.
        let relisted = later + Duration::from_secs(1);
        readiness.autoscaler_watch().record_ok_at(relisted);
        assert!(readiness.is_ready_at(relisted));
    }

    #[test]
    fn a_failing_pod_watch_makes_the_replica_unready_until_it_delivers_again() {
        let readiness = ready_replica();
        let t0 = Instant::now();
        readiness.pod_watch().record_error_at(t0);
        assert!(!readiness.is_ready_at(t0 + Duration::from_secs(1)));
        readiness
            .pod_watch()
            .record_ok_at(t0 + Duration::from_secs(2));
        assert!(readiness.is_ready_at(t0 + Duration::from_secs(2)));
    }

    #[test]
    fn one_error_followed_by_silence_counts_as_recovered_after_the_quiet_window() {
        let watch = WatchHealth::default();
        let t0 = Instant::now();
        watch.record_error_at(t0);
        assert!(!watch.is_healthy_at(t0 + WATCH_RECOVERY_QUIET - Duration::from_secs(1)));
        assert!(watch.is_healthy_at(t0 + WATCH_RECOVERY_QUIET));
    }

    #[test]
    fn a_relist_that_only_starts_does_not_end_the_failure() {
        let watch = WatchHealth::default();
        watch.observe::<()>(&Err(watcher::Error::NoResourceVersion));
        watch.observe::<()>(&Ok(watcher::Event::Init));
        watch.observe::<()>(&Ok(watcher::Event::InitApply(())));
        assert!(!watch.is_healthy());
        watch.observe::<()>(&Ok(watcher::Event::InitDone));
        assert!(watch.is_healthy());
    }

    #[tokio::test]
    async fn ready_follows_watch_health_over_http() {
        let readiness = Arc::new(ready_replica());
        let router = router(readiness.clone(), Metrics::new().expect("metrics"));
        assert_eq!(status(&router, "/ready").await, StatusCode::OK);
        readiness
            .autoscaler_watch()
            .observe::<()>(&Err(watcher::Error::NoResourceVersion));
        assert_eq!(
            status(&router, "/ready").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        readiness
            .autoscaler_watch()
            .observe::<()>(&Ok(watcher::Event::InitDone));
        assert_eq!(status(&router, "/ready").await, StatusCode::OK);
    }

    #[tokio::test]
    async fn an_admin_address_in_use_fails_at_bind() {
        let taken = bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("a free port");
        let addr = taken.local_addr().expect("addr");
        let err = bind(addr).await.expect_err("the port is taken");
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }

    #[tokio::test]
    async fn metrics_are_served_as_prometheus_text() {
        let router = router(
            Arc::new(Readiness::default()),
            Metrics::new().expect("metrics"),
        );
        let response = router
            .oneshot(
                Request::get("/metrics")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        assert!(String::from_utf8_lossy(&body).contains("tidal_num_autoscalers"));
    }
}
