//! The MySQL front door: a listener that accepts clients, enforces
//! `max_connections`, and runs each [`conn::Connection`] on its own task so
//! that one client's failure never touches another's.

mod auth;
mod conn;
mod packets;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Instant;

use duet_sql::Database;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::User;
use crate::metrics::Metrics;

/// What every connection of one server shares.
pub(crate) struct Shared {
    pub db: Arc<Database>,
    pub users: Vec<User>,
    pub max_allowed_packet: usize,
    pub max_connections: usize,
    pub metrics: Arc<Metrics>,
    pub started: Instant,
    pub active: AtomicUsize,
    next_id: AtomicU32,
}

impl Shared {
    pub fn new(db: Arc<Database>, config: &crate::Config, metrics: Arc<Metrics>) -> Self {
        Shared {
            db,
            users: config.users.clone(),
            max_allowed_packet: config.max_allowed_packet,
            max_connections: config.max_connections,
            metrics,
            started: Instant::now(),
            active: AtomicUsize::new(0),
            next_id: AtomicU32::new(1),
        }
    }
}

/// Counts a connection as active for as long as it lives, even if its task panics.
struct ActiveGuard(Arc<Shared>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
        self.0.metrics.connections_active.dec();
    }
}

/// Accepts connections until `stop_accepting` fires, then waits for the
/// connections (which close when idle after `close_idle` fires).
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    stop_accepting: CancellationToken,
    close_idle: CancellationToken,
) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop_accepting.cancelled() => break,
        };
        // Reap finished connection tasks so the set stays small.
        while tasks.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = conn::Connection::new(Arc::clone(&shared), stream, peer, id);
        shared.metrics.connections_total.inc();
        if shared.active.fetch_add(1, Ordering::Relaxed) >= shared.max_connections {
            shared.active.fetch_sub(1, Ordering::Relaxed);
            shared.metrics.connections_refused.inc();
            tasks.spawn(conn.refuse_too_many());
            continue;
        }
        shared.metrics.connections_active.inc();
        let guard = ActiveGuard(Arc::clone(&shared));
        let close = close_idle.clone();
        tasks.spawn(async move {
            let _guard = guard;
            conn.run(close).await;
        });
    }
    info!("MySQL listener stopped accepting");
    tasks
}
