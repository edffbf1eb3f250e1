//! The placement driver's messages on the node service: `Join`,
//! `StoreHeartbeat`, `RegionHeartbeat`, `GetCluster` and `RemoveStore`.
//! Each goes to the node that leads the first region, which runs the
//! placement driver; any other node answers with a [`PdHeader`] naming the
//! leader it knows (`not_leader`), and the sender asks there next.
//!
//! The raft crate only carries them: what they mean (admission, the region
//! map, operators) is the `placement` crate's, served by the `server`
//! crate through [`super::PdHandler`].

/// What every placement answer starts with: whether the asked node runs the
/// placement driver, and if the request failed, why.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PdHeader {
    /// Set when the asked node does not run the placement driver: the node
    /// it believes does (0: unknown).
    #[prost(bool, tag = "1")]
    pub not_leader: bool,
    #[prost(uint64, tag = "2")]
    pub leader: u64,
    /// A refusal (a node id already taken, an unknown store …).
    #[prost(string, tag = "3")]
    pub error: String,
    /// The Raft address of `leader`, for a sender that does not know it
    /// (a node joining through another member).
    #[prost(string, tag = "4")]
    pub leader_addr: String,
}

impl PdHeader {
    /// The answer of a node that does not run the placement driver.
    pub fn not_leader(leader: Option<u64>, leader_addr: Option<String>) -> Option<PdHeader> {
        Some(PdHeader {
            not_leader: true,
            leader: leader.unwrap_or(0),
            leader_addr: leader_addr.unwrap_or_default(),
            error: String::new(),
        })
    }

    /// A refusal.
    pub fn error(message: impl Into<String>) -> Option<PdHeader> {
        Some(PdHeader {
            error: message.into(),
            ..PdHeader::default()
        })
    }
}

/// A store as it presents itself, and as the members list shows it.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct StoreMeta {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(string, tag = "2")]
    pub raft_addr: String,
    #[prost(string, tag = "3")]
    pub mysql_addr: String,
    /// `row` or `analytics`.
    #[prost(string, tag = "4")]
    pub role: String,
    /// In answers: `up`, `down`, `removing` or `removed`.
    #[prost(string, tag = "5")]
    pub state: String,
}

/// `Join`: a new node asks to be admitted.
#[derive(Clone, PartialEq, prost::Message)]
pub struct JoinRequest {
    #[prost(uint64, tag = "1")]
    pub cluster_id: u64,
    #[prost(message, optional, tag = "2")]
    pub store: Option<StoreMeta>,
}

/// The members (every admitted store), or a refusal in the header.
#[derive(Clone, PartialEq, prost::Message)]
pub struct JoinResponse {
    #[prost(message, optional, tag = "1")]
    pub header: Option<PdHeader>,
    #[prost(message, repeated, tag = "2")]
    pub members: Vec<StoreMeta>,
}

/// `StoreHeartbeat`: a store's own figures. An unknown store that sends one
/// is admitted as if it had joined (the founders of a cluster do this).
#[derive(Clone, PartialEq, prost::Message)]
pub struct StoreHeartbeatRequest {
    #[prost(uint64, tag = "1")]
    pub cluster_id: u64,
    #[prost(message, optional, tag = "2")]
    pub store: Option<StoreMeta>,
    #[prost(uint64, tag = "3")]
    pub capacity_bytes: u64,
    #[prost(uint64, tag = "4")]
    pub used_bytes: u64,
    #[prost(uint64, tag = "5")]
    pub available_bytes: u64,
    /// The node is short of disk space (see `reserve_space_mb`).
    #[prost(bool, tag = "6")]
    pub disk_full: bool,
}

/// The store's administrative state (`removed` tells it to stop) and the
/// members, whose addresses the store learns from here.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StoreHeartbeatResponse {
    #[prost(message, optional, tag = "1")]
    pub header: Option<PdHeader>,
    #[prost(string, tag = "2")]
    pub state: String,
    #[prost(message, repeated, tag = "3")]
    pub members: Vec<StoreMeta>,
}

/// One region as its leader reports it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RegionReport {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(bytes = "vec", tag = "2")]
    pub start_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub end_key: Vec<u8>,
    #[prost(uint64, tag = "4")]
    pub conf_ver: u64,
    #[prost(uint64, tag = "5")]
    pub version: u64,
    /// Row stores only: columnar learner stores follow their node's voter.
    #[prost(uint64, repeated, tag = "6")]
    pub voters: Vec<u64>,
    #[prost(uint64, repeated, tag = "7")]
    pub learners: Vec<u64>,
    #[prost(uint64, tag = "8")]
    pub leader: u64,
    /// Peers whose log is behind the leader's.
    #[prost(uint64, repeated, tag = "9")]
    pub pending: Vec<u64>,
    #[prost(uint64, tag = "10")]
    pub keys: u64,
    #[prost(uint64, tag = "11")]
    pub bytes: u64,
}

/// `RegionHeartbeat`: every region one store leads.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RegionHeartbeatRequest {
    #[prost(uint64, tag = "1")]
    pub cluster_id: u64,
    #[prost(uint64, tag = "2")]
    pub store_id: u64,
    #[prost(message, repeated, tag = "3")]
    pub regions: Vec<RegionReport>,
}

/// What one step asks a region's leader to propose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum StepKind {
    Unknown = 0,
    AddLearner = 1,
    PromoteLearner = 2,
    /// Promote `store`, remove `remove`, in one joint change.
    ReplaceVoter = 3,
    RemovePeer = 4,
    TransferLeader = 5,
    /// Merge into the neighbour `target_region` (on the same stores).
    MergeInto = 6,
}

/// The next step of one region's operator.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StepOrder {
    #[prost(uint64, tag = "1")]
    pub region_id: u64,
    #[prost(enumeration = "StepKind", tag = "2")]
    pub kind: i32,
    #[prost(uint64, tag = "3")]
    pub store: u64,
    #[prost(uint64, tag = "4")]
    pub remove: u64,
    /// The Raft address of `store` (a store the region has not had).
    #[prost(string, tag = "5")]
    pub raft_addr: String,
    /// For `MergeInto`: the region to merge into.
    #[prost(uint64, tag = "6")]
    pub target_region: u64,
}

/// At most one step per reported region.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RegionHeartbeatResponse {
    #[prost(message, optional, tag = "1")]
    pub header: Option<PdHeader>,
    #[prost(message, repeated, tag = "2")]
    pub steps: Vec<StepOrder>,
}

/// `GetCluster`: the report `GET /cluster` shows.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetClusterRequest {
    #[prost(uint64, tag = "1")]
    pub cluster_id: u64,
}

/// The report, as the JSON document `GET /cluster` serves.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetClusterResponse {
    #[prost(message, optional, tag = "1")]
    pub header: Option<PdHeader>,
    #[prost(string, tag = "2")]
    pub report_json: String,
}

/// `RemoveStore`: drain a store and retire it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RemoveStoreRequest {
    #[prost(uint64, tag = "1")]
    pub cluster_id: u64,
    #[prost(uint64, tag = "2")]
    pub store_id: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RemoveStoreResponse {
    #[prost(message, optional, tag = "1")]
    pub header: Option<PdHeader>,
}

/// Whichever placement answer it is: its header.
pub trait PdAnswer {
    fn header(&self) -> Option<&PdHeader>;
}

macro_rules! pd_answer {
    ($($t:ty),*) => {$(
        impl PdAnswer for $t {
            fn header(&self) -> Option<&PdHeader> {
                self.header.as_ref()
            }
        }
    )*};
}
pd_answer!(
    JoinResponse,
    StoreHeartbeatResponse,
    RegionHeartbeatResponse,
    GetClusterResponse,
    RemoveStoreResponse
);
