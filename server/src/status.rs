//! The HTTP status listener: `GET /health` (200 while serving, 503 while
//! shutting down), `GET /metrics` (Prometheus text format) and `GET /status`
//! (JSON: the node's regions with role, leader, term, commit and applied
//! index).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Produces the `/status` document.
pub(crate) type NodeStatus = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;
/// The node's regions, for the Raft gauges on `/metrics`.
pub(crate) type NodeRegions = Arc<dyn Fn() -> Vec<duet_raft::store::RegionStatus> + Send + Sync>;

#[derive(Clone)]
struct StatusState {
    metrics: Arc<Metrics>,
    serving: Arc<AtomicBool>,
    node: NodeStatus,
    regions: NodeRegions,
}

/// Serves the status endpoints until `stop` fires.
pub(crate) async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    serving: Arc<AtomicBool>,
    node: NodeStatus,
    regions: NodeRegions,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .route("/status", get(node_status))
        .with_state(StatusState {
            metrics,
            serving,
            node,
            regions,
        });
    axum::serve(listener, app)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
}

async fn health(State(s): State<StatusState>) -> impl IntoResponse {
    if s.serving.load(Ordering::Acquire) {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
    }
}

async fn metrics_text(State(s): State<StatusState>) -> impl IntoResponse {
    let regions = Arc::clone(&s.regions);
    let regions = tokio::task::spawn_blocking(move || regions())
        .await
        .unwrap_or_default();
    s.metrics.observe_regions(&regions);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

async fn node_status(State(s): State<StatusState>) -> impl IntoResponse {
    // The store answers from its own thread; don't hold up the runtime.
    let node = Arc::clone(&s.node);
    let doc = tokio::task::spawn_blocking(move || node())
        .await
        .unwrap_or_default();
    axum::Json(doc)
}
