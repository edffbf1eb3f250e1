//! The messages of the node service, as prost structs. The transaction
//! payloads are the storage crate's own messages (`Read`, `Answer`,
//! `Prewrite`, `Commit` …, and `Outcome`/`Failure` for what a command
//! answered), so a request crosses the network in the form it is run in.
//!
//! Every KV request names a region and the epoch the sender routed it by
//! ([`Context`]); every KV response carries either the answer or a
//! [`RegionError`] saying why this node would not serve it, which the
//! sender's region cache acts on (client-go's retry loop).

use duet_storage::txn::commands::effects::{Failure, Outcome};
use duet_storage::txn::commands::{
    AcquirePessimisticLock, CheckTxnStatus, Command, Commit, PessimisticRollback, Prewrite,
    ResolveLock,
};
use duet_storage::txn::read::{Answer, Read};

use crate::error::Error;
use crate::region::{Region, RegionEpoch};

/// Raft messages from one store, for one cluster: one item of the `Raft`
/// stream.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RaftBatch {
    #[prost(uint64, tag = "1")]
    pub cluster_id: u64,
    #[prost(uint64, tag = "2")]
    pub from_store: u64,
    #[prost(message, repeated, tag = "3")]
    pub envelopes: Vec<Envelope>,
}

/// One raft-rs `Message` (protobuf-encoded), or one chunk of a large one,
/// or (with `tombstone_to` set and no message) the notice that store
/// `tombstone_to` has no replica of the region at `conf_ver`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Envelope {
    #[prost(uint64, tag = "1")]
    pub region_id: u64,
    /// The region's membership version at the sender.
    #[prost(uint64, tag = "5")]
    pub conf_ver: u64,
    #[prost(uint64, tag = "6")]
    pub tombstone_to: u64,
    #[prost(bytes = "vec", tag = "2")]
    pub message: Vec<u8>,
    /// For a message sent in chunks (snapshots): how many chunks, and which
    /// this is. Chunks travel in order on one stream.
    #[prost(uint32, tag = "3")]
    pub chunks: u32,
    #[prost(uint32, tag = "4")]
    pub chunk: u32,
}

/// The end of a `Raft` stream.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RaftDone {}

/// A request for the leader of a region: a membership change to propose,
/// a wait to check for deadlock, or else a batch of `ts_count` timestamps
/// (the first region's leader serves the oracle and the detector).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Request {
    #[prost(uint64, tag = "1")]
    pub cluster_id: u64,
    #[prost(uint64, tag = "2")]
    pub region_id: u64,
    #[prost(uint32, tag = "3")]
    pub ts_count: u32,
    /// A membership change (a protobuf `ConfChangeV2`).
    #[prost(bytes = "vec", tag = "4")]
    pub conf_change: Vec<u8>,
    /// For the deadlock detector (on the first region's leader):
    /// transaction `wait_waiter` waits for `wait_holder`'s lock on the key
    /// hashing to `wait_key_hash`.
    #[prost(uint64, tag = "5")]
    pub wait_waiter: u64,
    #[prost(uint64, tag = "6")]
    pub wait_holder: u64,
    #[prost(uint64, tag = "7")]
    pub wait_key_hash: u64,
    /// For the deadlock detector: this transaction waits no more.
    #[prost(uint64, tag = "8")]
    pub clean_up: u64,
}

/// The answer to a [`Request`]: the last timestamp of the batch, or the
/// leader to ask instead, or an error.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Reply {
    #[prost(uint64, tag = "1")]
    pub ts: u64,
    /// Non-zero: not the leader; this one is (as far as the replier knows).
    #[prost(uint64, tag = "2")]
    pub leader: u64,
    #[prost(string, tag = "3")]
    pub error: String,
    /// The wait reported would deadlock: the transactions of the cycle.
    #[prost(uint64, repeated, tag = "4")]
    pub deadlock: Vec<u64>,
}

/// Which region a KV request is for, and the epoch it was routed by.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Context {
    #[prost(uint64, tag = "1")]
    pub cluster_id: u64,
    #[prost(uint64, tag = "2")]
    pub region_id: u64,
    #[prost(message, optional, tag = "3")]
    pub epoch: Option<RegionEpoch>,
}

/// Why a node would not serve a KV request for a region.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RegionError {
    #[prost(uint64, tag = "1")]
    pub region_id: u64,
    #[prost(oneof = "region_error::Kind", tags = "2, 3, 4, 5, 6")]
    pub kind: Option<region_error::Kind>,
}

pub mod region_error {
    //! The cases of [`RegionError`](super::RegionError).
    use crate::region::Region;

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        /// Not the leader; `leader` is the store it knows leads (0: none).
        #[prost(uint64, tag = "2")]
        NotLeader(u64),
        /// The request's epoch is stale or its keys left the region; this
        /// is the region as the node has it now.
        #[prost(message, tag = "3")]
        EpochNotMatch(Region),
        /// The node holds no replica of the region.
        #[prost(bool, tag = "4")]
        RegionNotFound(bool),
        /// The node cannot serve now (overloaded, stopping); try later.
        #[prost(string, tag = "5")]
        ServerIsBusy(String),
        /// The node (this id) is short of disk space and takes no new data.
        #[prost(uint64, tag = "6")]
        DiskFull(u64),
    }
}

impl RegionError {
    /// The region error `e` is, if it is one.
    pub fn from_error(region_id: u64, e: &Error) -> Option<RegionError> {
        use region_error::Kind;
        let kind = match e {
            Error::NotLeader { leader, .. } => Kind::NotLeader(leader.unwrap_or(0)),
            Error::EpochNotMatch { current, .. } => Kind::EpochNotMatch((**current).clone()),
            Error::RegionNotFound(_) => Kind::RegionNotFound(true),
            Error::ProposalDropped { .. } => Kind::ServerIsBusy("proposal dropped".into()),
            Error::Storage(duet_storage::Error::DiskFull { node_id }) => Kind::DiskFull(*node_id),
            _ => return None,
        };
        Some(RegionError {
            region_id,
            kind: Some(kind),
        })
    }

    /// The error to act on.
    pub fn into_error(self) -> Error {
        use region_error::Kind;
        let region_id = self.region_id;
        match self.kind {
            Some(Kind::NotLeader(l)) => Error::NotLeader {
                region_id,
                leader: (l != 0).then_some(l),
            },
            Some(Kind::EpochNotMatch(current)) => Error::EpochNotMatch {
                region_id,
                current: Box::new(current),
            },
            Some(Kind::RegionNotFound(_)) => Error::RegionNotFound(region_id),
            Some(Kind::ServerIsBusy(reason)) => Error::ServerIsBusy { region_id, reason },
            Some(Kind::DiskFull(node_id)) => {
                Error::Storage(duet_storage::Error::DiskFull { node_id })
            }
            None => Error::Corruption {
                what: "region error",
                detail: "empty".into(),
            },
        }
    }
}

/// `KvGet`: the value of `key` visible at `version`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetRequest {
    #[prost(message, optional, tag = "1")]
    pub context: Option<Context>,
    #[prost(bytes = "vec", tag = "2")]
    pub key: Vec<u8>,
    #[prost(uint64, tag = "3")]
    pub version: u64,
}

/// `KvBatchGet`: the values of `keys` visible at `version`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BatchGetRequest {
    #[prost(message, optional, tag = "1")]
    pub context: Option<Context>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub keys: Vec<Vec<u8>>,
    #[prost(uint64, tag = "3")]
    pub version: u64,
}

/// `KvScan`: up to `limit` pairs of `[start, end)` at `version`, streamed
/// in batches of `batch_size` (0: a default).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ScanRequest {
    #[prost(message, optional, tag = "1")]
    pub context: Option<Context>,
    #[prost(bytes = "vec", tag = "2")]
    pub start: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub end: Vec<u8>,
    #[prost(uint64, tag = "4")]
    pub version: u64,
    #[prost(uint64, tag = "5")]
    pub limit: u64,
    #[prost(uint32, tag = "6")]
    pub batch_size: u32,
}

/// `KvRead`: any read, as the storage crate defines them.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadRequest {
    #[prost(message, optional, tag = "1")]
    pub context: Option<Context>,
    #[prost(message, optional, tag = "2")]
    pub read: Option<Read>,
}

/// The answer to a read (or one batch of a scan): `answer`, or the read's
/// own failure (a lock in the way), or a region error, or `other` (this
/// node failed; try elsewhere or later).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadResponse {
    #[prost(message, optional, tag = "1")]
    pub region_error: Option<RegionError>,
    #[prost(message, optional, tag = "2")]
    pub failure: Option<Failure>,
    #[prost(message, optional, tag = "3")]
    pub answer: Option<Answer>,
    #[prost(string, tag = "4")]
    pub other: String,
}

macro_rules! command_request {
    ($($(#[$doc:meta])* $name:ident($payload:ty);)*) => {$(
        $(#[$doc])*
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct $name {
            #[prost(message, optional, tag = "1")]
            pub context: Option<Context>,
            #[prost(message, optional, tag = "2")]
            pub command: Option<$payload>,
        }

        impl $name {
            /// The region context and the command, as any command is run.
            pub fn into_parts(self) -> (Option<Context>, Option<Command>) {
                (self.context, self.command.map(Command::from))
            }
        }
    )*};
}

command_request! {
    /// `KvPrewrite`: phase one of two-phase commit.
    PrewriteRequest(Prewrite);
    /// `KvCommit`: phase two.
    CommitRequest(Commit);
    /// `KvCheckTxnStatus`: the fate of a transaction by its primary key.
    CheckTxnStatusRequest(CheckTxnStatus);
    /// `KvResolveLock`: commit or roll back a decided transaction's locks.
    ResolveLockRequest(ResolveLock);
    /// `KvPessimisticLock`: lock keys before prewrite.
    PessimisticLockRequest(AcquirePessimisticLock);
    /// `KvPessimisticRollback`: release pessimistic locks.
    PessimisticRollbackRequest(PessimisticRollback);
    /// `KvExecute`: any command (rollback, heartbeat, GC, range destroy).
    CommandRequest(Command);
}

/// What a command answered once it applied on the region's leader, or a
/// region error, or `other` (this node failed).
#[derive(Clone, PartialEq, prost::Message)]
pub struct CommandResponse {
    #[prost(message, optional, tag = "1")]
    pub region_error: Option<RegionError>,
    #[prost(message, optional, tag = "2")]
    pub outcome: Option<Outcome>,
    #[prost(string, tag = "3")]
    pub other: String,
}

/// `SplitRegion`: split the region at `split_key`, the right part becoming
/// region `new_region_id` (on the region's leader, at the epoch routed
/// by). Answered as a command: `Done` once the split applied there.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SplitRegionRequest {
    #[prost(message, optional, tag = "1")]
    pub context: Option<Context>,
    #[prost(bytes = "vec", tag = "2")]
    pub split_key: Vec<u8>,
    #[prost(uint64, tag = "3")]
    pub new_region_id: u64,
}

/// `MergeRegion`: absorb the source a [`CommitMerge`] names (sent by the
/// merging source's leader to the target's leader). Answered as a
/// command: `Done` once the merge applied there, or `EpochNotMatch` with
/// the target as it is now.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MergeRegionRequest {
    #[prost(message, optional, tag = "1")]
    pub context: Option<Context>,
    #[prost(message, optional, tag = "2")]
    pub commit: Option<crate::region::CommitMerge>,
}

/// `LocateRegion`: which region holds `key`, as the asked node knows it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LocateRequest {
    #[prost(uint64, tag = "1")]
    pub cluster_id: u64,
    #[prost(bytes = "vec", tag = "2")]
    pub key: Vec<u8>,
}

/// The region holding the key and its leader (0: unknown); no region when
/// the node knows none.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LocateResponse {
    #[prost(message, optional, tag = "1")]
    pub region: Option<Region>,
    #[prost(uint64, tag = "2")]
    pub leader: u64,
}

/// `ColumnarScan`: the rows of one table in `[start_key, end_key)` (`end_key`
/// empty: no bound) at `read_ts`, from the asked node's columnar replica,
/// which must hold every region of the range. `schema` is the caller's view
/// of the table's columns (an Arrow IPC schema message): a replica that has
/// another definition answers `unavailable`. `projection` lists the columns
/// to return (all when `all_columns`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ColumnarScanRequest {
    #[prost(uint64, tag = "1")]
    pub cluster_id: u64,
    #[prost(int64, tag = "2")]
    pub table_id: i64,
    #[prost(bytes = "vec", tag = "3")]
    pub start_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    pub end_key: Vec<u8>,
    #[prost(uint64, tag = "5")]
    pub read_ts: u64,
    #[prost(uint32, repeated, tag = "6")]
    pub projection: Vec<u32>,
    #[prost(bool, tag = "7")]
    pub all_columns: bool,
    #[prost(bytes = "vec", tag = "8")]
    pub schema: Vec<u8>,
}

/// One message of a `ColumnarScan` answer: Arrow IPC bytes (a stream's
/// schema and record batches, in key order), or, instead of rows and then
/// ending the stream, a lock that hides a version (`failure`, resolved by
/// the caller) or why the range cannot be read here (`unavailable`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ColumnarScanResponse {
    #[prost(bytes = "vec", tag = "1")]
    pub ipc: Vec<u8>,
    #[prost(message, optional, tag = "2")]
    pub failure: Option<Failure>,
    #[prost(string, tag = "3")]
    pub unavailable: String,
}
