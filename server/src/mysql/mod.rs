//! The MySQL front door: a listener that accepts clients and runs each
//! [`conn::Connection`] on its own task, so that one client's failure never
//! touches another's. A logged-in session takes one of `max_connections`
//! slots (an administrator may take one more, as MySQL keeps one for
//! `SUPER`); a socket still logging in takes none, and has
//! `connect_timeout_secs` to do so.

mod auth;
mod conn;
mod packets;
mod worker;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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
    pub connect_timeout: Duration,
    pub logins: auth::FailedLogins,
    pub metrics: Arc<Metrics>,
    pub started: Instant,
    /// Sockets open, logged in or not.
    pub active: AtomicUsize,
    /// Logged-in sessions.
    sessions: Arc<AtomicUsize>,
    next_id: AtomicU32,
}

impl Shared {
    pub fn new(db: Arc<Database>, config: &crate::Config, metrics: Arc<Metrics>) -> Self {
        Shared {
            db,
            users: config.users.clone(),
            max_allowed_packet: config.max_allowed_packet,
            max_connections: config.max_connections,
            connect_timeout: Duration::from_secs(config.connect_timeout_secs),
            logins: auth::FailedLogins::new(
                config.failed_login_threshold,
                Duration::from_millis(config.failed_login_delay_ms),
                Duration::from_millis(config.failed_login_max_delay_ms),
            ),
            metrics,
            started: Instant::now(),
            active: AtomicUsize::new(0),
            sessions: Arc::new(AtomicUsize::new(0)),
            next_id: AtomicU32::new(1),
        }
    }

    /// A session slot for a client that logged in, if one is free: one of
    /// `max_connections`, or for an administrator the one beyond.
    pub fn take_slot(&self, admin: bool) -> Option<SlotGuard> {
        let limit = self.max_connections + usize::from(admin);
        self.sessions
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| SlotGuard(Arc::clone(&self.sessions)))
    }

    /// Sockets accepted at most, logging in or logged in: room for every
    /// session and as many logins again (each lasts `connect_timeout` at
    /// most); past it a socket is refused at once.
    fn max_sockets(&self) -> usize {
        self.max_connections.saturating_mul(2).saturating_add(16)
    }
}

/// A logged-in session's slot, given back when the connection ends.
pub(crate) struct SlotGuard(Arc<AtomicUsize>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
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
        if shared.active.fetch_add(1, Ordering::Relaxed) >= shared.max_sockets() {
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
