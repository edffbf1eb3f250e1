//! The flags of `duet serve` (a contract: scripts and later issues rely on
//! them) and how they layer over the configuration file and environment.

use std::path::PathBuf;

use clap::Args;

use crate::config::Config;
use crate::error::Result;

/// `duet serve`: run a node (by default the embedded single node).
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// TOML configuration file (see etc/duet.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory [default: ./duet-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// MySQL listener address [default: 127.0.0.1:4000].
    #[arg(long, value_name = "HOST:PORT")]
    pub mysql_addr: Option<String>,
    /// HTTP status listener address [default: 127.0.0.1:10080].
    #[arg(long, value_name = "HOST:PORT")]
    pub status_addr: Option<String>,
    /// This node's id in the cluster [default: 1].
    #[arg(long, value_name = "N")]
    pub node_id: Option<u64>,
    /// Raft listener address [default: 127.0.0.1:20160].
    #[arg(long, value_name = "HOST:PORT")]
    pub raft_addr: Option<String>,
    /// Raft addresses of all founding voters: 1=HOST:PORT,2=HOST:PORT,3=HOST:PORT.
    #[arg(long, value_name = "ID=HOST:PORT,...")]
    pub initial_cluster: Option<String>,
    /// Join a running cluster through any member's Raft address.
    #[arg(long, value_name = "HOST:PORT")]
    pub join: Option<String>,
    /// `row` (voters and their columnar learners) or `analytics` (columnar
    /// learners only; joins a running cluster).
    #[arg(long, value_name = "row|analytics")]
    pub role: Option<String>,
}

impl ServeArgs {
    /// Defaults < `--config` file < `DUET_*` environment < these flags.
    pub fn config(&self) -> Result<Config> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(d) = &self.data_dir {
            config.data_dir = d.clone();
        }
        if let Some(a) = &self.mysql_addr {
            config.mysql_addr = a.clone();
        }
        if let Some(a) = &self.status_addr {
            config.status_addr = a.clone();
        }
        if let Some(n) = self.node_id {
            config.node_id = n;
        }
        if let Some(a) = &self.raft_addr {
            config.raft_addr = a.clone();
        }
        if let Some(c) = &self.initial_cluster {
            config.initial_cluster = c.clone();
        }
        if let Some(j) = &self.join {
            config.join = j.clone();
        }
        if let Some(r) = &self.role {
            config.role = r.clone();
        }
        config.validate()?;
        Ok(config)
    }
}

/// Runs `duet serve` until SIGINT or SIGTERM, then shuts down gracefully.
pub async fn serve(config: Config) -> Result<()> {
    // The handlers are installed before anything listens: a SIGTERM sent as
    // soon as the node answers must stop it cleanly, not kill it.
    let signals = Signals::install();
    let server = crate::Server::start(config).await?;
    let token = server.shutdown_token();
    tokio::spawn(async move {
        signals.wait().await;
        tracing::info!("signal received: shutting down");
        token.cancel();
    });
    server.wait().await;
    Ok(())
}

/// SIGTERM and SIGINT, listened for from the moment they are installed.
struct Signals {
    term: Option<tokio::signal::unix::Signal>,
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        Signals {
            term: signal(SignalKind::terminate()).ok(),
            interrupt: signal(SignalKind::interrupt()).ok(),
        }
    }

    async fn wait(mut self) {
        async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = recv(&mut self.term) => {}
            _ = recv(&mut self.interrupt) => {}
        }
    }
}
