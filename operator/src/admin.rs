//! The admin server: `/live`, `/ready` and `/metrics`.
//!
//! `/ready` means "this replica can do its job": the watches have synced and the leader
//! state is known (leader or standby). It turns false again once shutdown begins, so a
//! rolling update drains it first. `/live` only says the process serves requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::Error;
use crate::metrics::Metrics;

/// Readiness inputs, flipped by the runtime as it starts and stops.
#[derive(Debug, Default)]
pub struct Readiness {
    watches_synced: AtomicBool,
    leader_known: AtomicBool,
    shutting_down: AtomicBool,
}

impl Readiness {
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
        self.watches_synced.load(Ordering::SeqCst)
            && self.leader_known.load(Ordering::SeqCst)
            && !self.shutting_down.load(Ordering::SeqCst)
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
