//! The placement driver's decisions, as pure functions of the cluster's
//! state: which stores exist and in what state ([`cluster`]), where each
//! region's replicas are (the region map, fed by heartbeats), and what to
//! change next ([`operator`], [`schedulers`]). Nothing here does I/O or reads
//! a clock: time comes in as milliseconds from the caller, so every decision
//! is deterministic and tested as data in, operator out. The raft and server
//! crates carry the heartbeats, persist the stores and execute the steps.
//!
//! Imports nothing of Duet; the crates above import it.

pub mod cluster;
mod error;
pub mod operator;
pub mod schedulers;

pub use cluster::{
    AdminState, Cluster, ClusterReport, RegionInfo, RegionReport, Role, Store, StoreReport,
    StoreState, StoreStats,
};
pub use error::{Error, Result};
pub use operator::{Operator, OperatorKind, Progress, Step};
pub use schedulers::Placement;

/// A store's id (the node id for row stores). Peer id = store id.
pub type StoreId = u64;
/// A region's id.
pub type RegionId = u64;

/// The knobs of placement (config keys of the same names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Voters per region, on distinct row stores (capped by their number).
    pub max_replicas: usize,
    /// A store silent this long is `down`; its replicas are replaced.
    pub max_store_down_time_ms: u64,
    /// A region with fewer keys than this merges into a neighbour.
    pub region_merge_keys: u64,
    /// A merge never makes a region of more keys than this.
    pub region_split_keys: u64,
    /// A region split or merged less than this long ago is not merged (PD's
    /// `split-merge-interval`): a table pre-split by `SPLIT TABLE` keeps
    /// its empty regions while it is loaded.
    pub split_merge_interval_ms: u64,
    /// Operators in flight that add to or take from one store, at most.
    pub schedule_limit: usize,
    /// A new placement driver schedules nothing for this long, while the
    /// stores' heartbeats fill its region map.
    pub warm_up_ms: u64,
    /// An operator that adds a peer (which may need a snapshot) is dropped
    /// after this long without finishing.
    pub add_peer_timeout_ms: u64,
    /// Any other operator is dropped after this long.
    pub operator_timeout_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_replicas: 3,
            max_store_down_time_ms: 1_800_000,
            region_merge_keys: 25_000,
            region_split_keys: 500_000,
            split_merge_interval_ms: 3_600_000,
            schedule_limit: 4,
            warm_up_ms: 20_000,
            add_peer_timeout_ms: 600_000,
            operator_timeout_ms: 30_000,
        }
    }
}
