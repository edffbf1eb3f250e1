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
        config.validate()?;
        Ok(config)
    }
}

/// Runs `duet serve` until SIGINT or SIGTERM, then shuts down gracefully.
pub async fn serve(config: Config) -> Result<()> {
    let server = crate::Server::start(config).await?;
    let token = server.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received: shutting down");
        token.cancel();
    });
    server.wait().await;
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
