//! The node service: everything one Duet node asks of another, as one gRPC
//! service (`duet.node.Node`, tonic over prost) on the node's Raft address.
//!
//! - `Raft`: a stream of Raft messages from one node to another (large ones,
//!   snapshots, in chunks);
//! - `Forward`: a proposal, a membership change or a batch of timestamps
//!   for the region leader to handle;
//! - `LocateRegion`: the region holding a key and its leader, as the asked
//!   node knows them (what a node holding no replica routes by);
//! - the KV calls of transactions, each for one region at the epoch its
//!   sender routed by: `KvGet`, `KvBatchGet`, `KvScan` (streamed in
//!   batches), `KvRead` (any read), `KvPrewrite`, `KvCommit`,
//!   `KvCheckTxnStatus`, `KvResolveLock`, `KvPessimisticLock`,
//!   `KvPessimisticRollback`, `KvExecute` (any command), `SplitRegion` (a
//!   split) and `MergeRegion` (a merge's commit), both run by the region's
//!   leader. A read is served
//!   at a linearizable point of the region (the leader's lease, or a
//!   ReadIndex round); a command is proposed by the region's leader and
//!   answered once applied there. A node that holds no replica, is not the
//!   leader (for commands), or has the region at another epoch answers with
//!   a [`messages::RegionError`] and the sender retries as its region cache
//!   says;
//! - `ColumnarScan`: a table's rows in a key range from the asked node's
//!   columnar replica, streamed as Arrow IPC;
//! - the placement driver's messages ([`pd`]): `Join`, `StoreHeartbeat`,
//!   `RegionHeartbeat`, `GetCluster`, `RemoveStore`, served by the node
//!   leading the first region.
//!
//! [`server::NodeService`] serves it; [`crate::transport::grpc`] is the
//! client side.

pub mod messages;
pub mod pd;
pub mod server;

/// The generated service: `node_client::NodeClient` and
/// `node_server::{Node, NodeServer}`.
#[allow(clippy::all, missing_docs, rust_2018_idioms)]
pub mod service {
    include!(concat!(env!("OUT_DIR"), "/duet.node.Node.rs"));
}

use duet_storage::txn::commands::{Command, Response};
use duet_storage::txn::read::{Answer, Read};

use crate::error::Error;
use crate::region::Region;

/// Largest message either side accepts (a batch of Raft messages; a chunk
/// of a snapshot is far smaller).
pub const MAX_MESSAGE: usize = 64 << 20;

/// Serves forwarded requests (runs on a blocking thread).
pub trait RequestHandler: Send + Sync {
    fn handle(&self, request: messages::Request) -> messages::Reply;
}

/// Serves the KV calls from this node's replicas (runs on a blocking
/// thread). Errors that are region errors go back as such; a storage
/// failure of the command or read itself (a lock, a conflict) as its
/// encoding; anything else as `other`.
pub trait KvHandler: Send + Sync {
    /// Answers `read` from this node's replica of `region_id`, which must
    /// be at `epoch` and hold the read's keys.
    fn read(
        &self,
        region_id: u64,
        epoch: Option<crate::region::RegionEpoch>,
        read: &Read,
    ) -> Result<Answer, Error>;
    /// Proposes `command` in `region_id` (this node must lead it) and
    /// answers once it applied.
    fn execute(
        &self,
        region_id: u64,
        epoch: Option<crate::region::RegionEpoch>,
        command: Command,
    ) -> Result<Response, Error>;
    /// Splits `region_id` (this node must lead it, at `epoch`) at
    /// `split_key`, the right part becoming `new_region_id`; returns once
    /// the split applied here.
    fn split(
        &self,
        region_id: u64,
        epoch: Option<crate::region::RegionEpoch>,
        split_key: &[u8],
        new_region_id: u64,
    ) -> Result<(), Error>;
    /// Proposes `commit` in `region_id` (the merge's target; this node
    /// must lead it) and answers once it applied.
    fn commit_merge(
        &self,
        region_id: u64,
        commit: &crate::region::CommitMerge,
    ) -> Result<(), Error>;
    /// The region holding `key` and the store leading it, as known here.
    fn locate(&self, key: &[u8]) -> Option<(Region, Option<u64>)>;
}

/// Serves `ColumnarScan` from this node's columnar replica (runs on a
/// blocking thread): hands each message of the answer to `send`, which
/// says `false` once the caller has gone.
pub trait ColumnarHandler: Send + Sync {
    fn scan(
        &self,
        request: messages::ColumnarScanRequest,
        send: &mut dyn FnMut(messages::ColumnarScanResponse) -> bool,
    );
}

/// Serves the placement driver's messages (runs on a blocking thread). A
/// node that does not run the placement driver answers each with a header
/// naming the node it believes does.
pub trait PdHandler: Send + Sync {
    fn join(&self, request: pd::JoinRequest) -> pd::JoinResponse;
    fn store_heartbeat(&self, request: pd::StoreHeartbeatRequest) -> pd::StoreHeartbeatResponse;
    fn region_heartbeat(&self, request: pd::RegionHeartbeatRequest) -> pd::RegionHeartbeatResponse;
    fn get_cluster(&self, request: pd::GetClusterRequest) -> pd::GetClusterResponse;
    fn remove_store(&self, request: pd::RemoveStoreRequest) -> pd::RemoveStoreResponse;
}
