//! The HTTP status listener: `GET /health` (200 while serving, 503 while
//! shutting down), `GET /metrics` (Prometheus text format), `GET /status`
//! (JSON: the node's regions with range, role, leader, term, commit and
//! applied index) and the admin call `POST /admin/membership` (JSON
//! `{"change": "add_voter"|"add_learner"|"remove", "node_id": N,
//! "raft_addr": "IP:PORT"}`: changes every region, answers the new status).
//! `GET /cluster` answers the placement driver's report (stores and
//! regions, see `docs/architecture/placement.md`) on any node, and
//! `POST /admin/stores/N/remove` has it drain and retire store N.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::node::{MembershipChange, Node};

#[derive(Clone)]
struct StatusState {
    metrics: Arc<Metrics>,
    serving: Arc<AtomicBool>,
    node: Arc<Node>,
}

/// Serves the status endpoints until `stop` fires.
pub(crate) async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    serving: Arc<AtomicBool>,
    node: Arc<Node>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .route("/status", get(node_status))
        .route("/admin/membership", post(membership))
        .route("/cluster", get(cluster))
        .route("/admin/stores/{id}/remove", post(remove_store))
        .with_state(StatusState {
            metrics,
            serving,
            node,
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
    let node = Arc::clone(&s.node);
    let (regions, placement) =
        tokio::task::spawn_blocking(move || (node.regions(), node.placement_snapshot()))
            .await
            .unwrap_or_default();
    if let Some((counters, report)) = &placement {
        s.metrics.observe_placement(counters, report);
    }
    s.metrics.observe_regions(&regions);
    (s.metrics).observe_region_cache(s.node.txn_store.region_cache_misses());
    s.metrics.observe_commits(s.node.client.commit_counts());
    let space = crate::disk::space(&s.node.data_dir)
        .ok()
        .map(|d| d.available);
    s.metrics.observe_disk(s.node.store.disk_full(), space);
    if let Some(replica) = &s.node.columnar {
        s.metrics.observe_columnar(replica, &regions);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

async fn node_status(State(s): State<StatusState>) -> impl IntoResponse {
    // The store answers from its own thread; don't hold up the runtime.
    let node = Arc::clone(&s.node);
    let doc = tokio::task::spawn_blocking(move || node.status_json())
        .await
        .unwrap_or_default();
    axum::Json(doc)
}

async fn membership(
    State(s): State<StatusState>,
    body: axum::extract::Json<MembershipChange>,
) -> axum::response::Response {
    let node = Arc::clone(&s.node);
    let outcome = tokio::task::spawn_blocking(move || node.change_membership(&body.0)).await;
    match outcome {
        Ok(Ok(doc)) => axum::Json(doc).into_response(),
        Ok(Err(e @ crate::error::Error::Config(_))) => {
            (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response()
        }
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

async fn cluster(State(s): State<StatusState>) -> axum::response::Response {
    let node = Arc::clone(&s.node);
    match tokio::task::spawn_blocking(move || node.cluster_json()).await {
        Ok(Ok(doc)) => axum::Json(doc).into_response(),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

async fn remove_store(
    State(s): State<StatusState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> axum::response::Response {
    let Ok(id) = id.parse::<u64>() else {
        return (
            StatusCode::BAD_REQUEST,
            format!("{id:?} is not a store id\n"),
        )
            .into_response();
    };
    let node = Arc::clone(&s.node);
    match tokio::task::spawn_blocking(move || node.remove_store(id)).await {
        Ok(Ok(())) => {
            axum::Json(serde_json::json!({ "store": id, "state": "removing" })).into_response()
        }
        Ok(Err(e @ crate::error::Error::Refused(_))) => {
            (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response()
        }
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}
