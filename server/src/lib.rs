//! Duet's server: the `duet serve` process around the SQL layer. It owns the
//! configuration, the MySQL wire protocol and per-connection sessions, the
//! HTTP status and metrics endpoints, and the orderly start and stop of a
//! node. It does not interpret SQL (that is `duet-sql`).

pub mod cli;
mod columnar;
pub mod config;
pub mod disk;
mod error;
mod gc;
mod metrics;
mod mysql;
pub mod node;
mod pd;
mod status;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use duet_sql::{Database, DatabaseOptions};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use config::{Config, User};
pub use error::{Error, Result};
pub use metrics::Metrics;

/// A started node: its bound addresses and the handle to stop it.
pub struct Server {
    mysql_addr: SocketAddr,
    status_addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Server {
    /// Validates `config`, prepares the data directory, binds both listeners
    /// and starts serving.
    pub async fn start(config: Config) -> Result<Server> {
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| Error::Io {
            context: format!("cannot create data dir {}", config.data_dir.display()),
            source,
        })?;
        let mysql = bind(&config.mysql_addr).await?;
        let status = bind(&config.status_addr).await?;
        // Other nodes are told the address clients reach this one at.
        let mut config = config;
        config.mysql_addr = local_addr(&mysql)?.to_string();
        let node = Arc::new(node::Node::start(&config).await?);
        let mysql_addr = local_addr(&mysql)?;
        let status_addr = local_addr(&status)?;
        let kv = Arc::new(node.client.clone());
        let options = DatabaseOptions {
            mysql_port: mysql_addr.port(),
            max_allowed_packet: config.max_allowed_packet as u64,
            max_connections: config.max_connections as u64,
            data_dir: config.data_dir.display().to_string(),
            columnar: node.columnar.clone(),
            node_id: config.node_id,
            query_threads: config.query_threads,
            cluster: Some(Arc::new(node::ClusterLayout(Arc::clone(&node)))),
            remote_columnar: node.remote_columnar.clone(),
        };
        // Opening reads (and on first start writes) the catalog: blocking work.
        let db = tokio::task::block_in_place(|| Database::open(&options, kv))?;
        let metrics = Arc::new(Metrics::new());
        let shutdown = CancellationToken::new();
        if config.auto_analyze_interval_secs > 0 {
            tokio::spawn(auto_analyze_loop(
                Arc::clone(&db),
                Duration::from_secs(config.auto_analyze_interval_secs),
                shutdown.clone(),
            ));
        }
        let shared = Arc::new(mysql::Shared::new(db, &config, Arc::clone(&metrics)));
        let grace = Duration::from_secs(config.shutdown_timeout_secs);
        let task = tokio::spawn(run(
            mysql,
            status,
            shared,
            metrics,
            node,
            shutdown.clone(),
            grace,
        ));
        info!(%mysql_addr, %status_addr, data_dir = %config.data_dir.display(), "Duet is serving");
        Ok(Server {
            mysql_addr,
            status_addr,
            shutdown,
            task,
        })
    }

    /// The address the MySQL listener is bound to.
    pub fn mysql_addr(&self) -> SocketAddr {
        self.mysql_addr
    }

    /// The address the HTTP status listener is bound to.
    pub fn status_addr(&self) -> SocketAddr {
        self.status_addr
    }

    /// A token whose cancellation starts a graceful shutdown.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Starts a graceful shutdown and waits until it is complete.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.wait().await;
    }

    /// Waits until the server has shut down (after the token is cancelled).
    pub async fn wait(self) {
        if let Err(e) = self.task.await {
            warn!(error = %e, "server task failed");
        }
    }
}

/// Every `every` until `shutdown`, analyzes the tables whose statistics
/// the writes since made stale, so that the router's estimates follow the
/// data without an `ANALYZE TABLE`.
async fn auto_analyze_loop(db: Arc<Database>, every: Duration, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(every);
    interval.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        let db = Arc::clone(&db);
        match tokio::task::spawn_blocking(move || db.auto_analyze()).await {
            Ok(Ok(tables)) if !tables.is_empty() => info!(?tables, "analyzed"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => warn!(error = %e, "automatic analysis failed"),
            Err(e) => warn!(error = %e, "automatic analysis panicked"),
        }
    }
}

async fn bind(addr: &str) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|source| Error::Bind {
        addr: addr.to_string(),
        source,
    })
}

fn local_addr(l: &TcpListener) -> Result<SocketAddr> {
    l.local_addr().map_err(|source| Error::Io {
        context: "listener address".into(),
        source,
    })
}

/// How long statements stopped at the end of a shutdown's grace period
/// have to roll back before their connections are cut off.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// Serves until `shutdown`, then: stop accepting, report unhealthy, let busy
/// connections finish their statement (closing idle ones), abort whatever is
/// still running after `grace`, and stop the status listener.
async fn run(
    mysql: TcpListener,
    status: TcpListener,
    shared: Arc<mysql::Shared>,
    metrics: Arc<Metrics>,
    node: Arc<node::Node>,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let serving = Arc::new(AtomicBool::new(true));
    let status_stop = CancellationToken::new();
    let status_task = tokio::spawn(status::serve(
        status,
        metrics,
        Arc::clone(&serving),
        Arc::clone(&node),
        status_stop.clone(),
    ));
    let db = Arc::clone(&shared.db);
    let mut connections = mysql::serve(mysql, shared, shutdown.clone(), shutdown.clone()).await;
    serving.store(false, Ordering::Release);
    info!(
        open = connections.len(),
        "shutting down: waiting for in-flight statements"
    );
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            open = connections.len(),
            "shutdown grace period over: stopping the statements still running"
        );
        // Each stops where it next looks, rolls back and closes its
        // connection; one that does not within a moment is cut off.
        db.interrupt_all();
        let stopped = tokio::time::timeout(STOP_WAIT, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if stopped.is_err() {
            connections.shutdown().await;
        }
    }
    let stopping = Arc::clone(&node);
    if let Err(e) = tokio::task::spawn_blocking(move || stopping.stop()).await {
        warn!(error = %e, "stopping the raft store failed");
    }
    status_stop.cancel();
    match status_task.await {
        Ok(Err(e)) => warn!(error = %e, "status listener failed"),
        Err(e) => warn!(error = %e, "status listener task failed"),
        Ok(Ok(())) => {}
    }
    info!("Duet stopped");
}
