//! The HTTP status listener: `GET /health` (200 while serving, 503 while
//! shutting down) and `GET /metrics` (Prometheus text format).

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

#[derive(Clone)]
struct StatusState {
    metrics: Arc<Metrics>,
    serving: Arc<AtomicBool>,
}

/// Serves the status endpoints until `stop` fires.
pub(crate) async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    serving: Arc<AtomicBool>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .with_state(StatusState { metrics, serving });
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
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}
