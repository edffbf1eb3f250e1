//! A node's storage stack: the RocksDB engine under `data_dir/kv`, the Raft
//! store hosting the node's regions (one voter by default; the founding
//! voters of `initial_cluster` otherwise, talking over TCP on `raft_addr`),
//! and the timestamp oracle.

use std::sync::Arc;

use duet_raft::store::{RaftStore, RegionStatus, StoreConfig, inbox};
use duet_raft::transport::tcp::TcpTransport;
use duet_raft::transport::{LocalRouter, Transport};
use duet_storage::engine::Engine;
use duet_storage::engine::rocks::{RocksConfig, RocksEngine};
use duet_storage::tso::Tso;
use tracing::{info, warn};

use crate::config::Config;
use crate::error::{Error, Result};

/// The storage half of a running node.
pub struct Node {
    pub node_id: u64,
    pub engine: Arc<RocksEngine>,
    pub store: Arc<RaftStore<RocksEngine>>,
    pub tso: Arc<Tso<RocksEngine>>,
}

fn storage_err(e: duet_storage::Error) -> Error {
    Error::Io {
        context: "storage".into(),
        source: std::io::Error::other(e.to_string()),
    }
}

impl Node {
    /// Opens the engine and starts the Raft store.
    pub async fn start(config: &Config) -> Result<Node> {
        let path = config.data_dir.join("kv");
        let engine =
            Arc::new(RocksEngine::open(&path, &RocksConfig::default()).map_err(storage_err)?);
        let tso = Arc::new(Tso::open(Arc::clone(&engine)).map_err(storage_err)?);
        let cluster = config.cluster()?;
        let mut store_config = StoreConfig::single(config.node_id);
        // Different timeouts per node make simultaneous campaigns unlikely.
        store_config.peer.election_tick = 10 + (config.node_id % 7) as usize;
        let (tx, rx) = inbox();
        let transport: Arc<dyn Transport> = if cluster.len() > 1 {
            store_config.voters = cluster.keys().copied().collect();
            let listener = tokio::net::TcpListener::bind(&config.raft_addr)
                .await
                .map_err(|source| Error::Bind {
                    addr: config.raft_addr.clone(),
                    source,
                })?;
            let peers = cluster
                .into_iter()
                .filter(|(id, _)| *id != config.node_id)
                .collect();
            info!(raft_addr = %config.raft_addr, "raft transport listening");
            TcpTransport::start(
                config.cluster_id,
                config.node_id,
                listener,
                peers,
                tx.clone(),
                tokio::runtime::Handle::current(),
            )
        } else {
            Arc::new(LocalRouter::new())
        };
        let store = RaftStore::start(
            Arc::clone(&engine),
            &store_config,
            transport,
            vec![],
            (tx, rx),
        )
        .map_err(|e| Error::Io {
            context: "raft store".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        Ok(Node {
            node_id: config.node_id,
            engine,
            store: Arc::new(store),
            tso,
        })
    }

    pub fn regions(&self) -> Vec<RegionStatus> {
        self.store.status()
    }

    /// `GET /status`: the node's regions.
    pub fn status_json(&self) -> serde_json::Value {
        let regions: Vec<serde_json::Value> = self
            .regions()
            .into_iter()
            .map(|r| {
                serde_json::json!({
                    "region_id": r.region_id,
                    "peer_id": r.peer_id,
                    "role": if r.is_leader { "leader" } else { "follower" },
                    "leader": r.leader,
                    "term": r.term,
                    "commit_index": r.commit_index,
                    "applied_index": r.applied_index,
                })
            })
            .collect();
        serde_json::json!({ "node_id": self.node_id, "regions": regions })
    }

    /// Stops the Raft store and makes every write durable.
    pub fn stop(&self) {
        self.store.stop();
        if let Err(e) = self.engine.sync() {
            warn!(error = %e, "final sync failed");
        }
    }
}
