//! Duet's replication layer: regions replicated with raft-rs (the consensus
//! core TiKV uses). A region peer ([`peer::Peer`]) keeps its log in the
//! engine's `raft` column family ([`storage::PeerStorage`], key layout in
//! [`keys`]) and applies committed entries — the storage crate's transaction
//! commands — to the KV engine, reporting each applied entry to observers
//! such as the columnar learner.
//!
//! A store hosts one peer of each region ([`regions::Regions`]: created by
//! bootstrap, splits, or a message from a new region's leader), and
//! [`store::RaftStore`] runs their Ready loop on one thread; stores reach
//! each other through a [`transport::Transport`] (in-process, or the gRPC
//! node service of [`rpc`]).
//! [`cluster::ClusterStore`] is the client side: it splits each transaction
//! command by region, sends each part to its region's leader, and re-routes
//! when a region changed under it; [`region_cache::RegionCache`] is where a
//! node will keep the regions it holds no replica of, and how it retries.

pub mod cluster;
mod error;
pub mod keys;
pub mod peer;
pub mod region;
pub mod region_cache;
pub mod regions;
pub mod rpc;
pub mod snapshot;
pub mod stale;
pub mod storage;
pub mod store;
#[cfg(test)]
mod tests;
pub mod transport;

pub use error::{Error, Result};

/// A logger for raft-rs that forwards to `tracing` at debug level.
pub fn logger() -> slog::Logger {
    slog::Logger::root(TracingDrain, slog::o!())
}

struct TracingDrain;

impl slog::Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(
        &self,
        record: &slog::Record<'_>,
        _values: &slog::OwnedKVList,
    ) -> Result<(), slog::Never> {
        match record.level() {
            slog::Level::Critical | slog::Level::Error => {
                tracing::error!(target: "raft", "{}", record.msg())
            }
            slog::Level::Warning => tracing::warn!(target: "raft", "{}", record.msg()),
            _ => tracing::debug!(target: "raft", "{}", record.msg()),
        }
        Ok(())
    }
}
