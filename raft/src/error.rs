//! The replication layer's error type.

/// Result alias for the raft crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of the replication layer. The routing errors carry what a caller
/// needs to retry elsewhere.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Storage(#[from] duet_storage::Error),
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    /// This peer is not the leader; `leader` is the one it knows, if any.
    #[error("region {region_id}: not leader (leader is {leader:?})")]
    NotLeader { region_id: u64, leader: Option<u64> },
    /// The request's region epoch is stale; `current` is the region now.
    #[error("region {region_id}: epoch does not match")]
    EpochNotMatch {
        region_id: u64,
        current: Box<crate::region::Region>,
    },
    #[error("region {0} not found")]
    RegionNotFound(u64),
    /// The node asked cannot serve the region now (overloaded, stopping,
    /// a proposal lost); the same request may succeed a little later.
    #[error("region {region_id}: server is busy ({reason})")]
    ServerIsBusy { region_id: u64, reason: String },
    /// The proposal was lost to a leader change; it did not apply.
    #[error("region {region_id}: proposal dropped by a leader change")]
    ProposalDropped { region_id: u64 },
    /// A peer that keeps no data (a columnar learner's) was asked for it:
    /// a snapshot, or the writes of a command logged before effects were.
    #[error("region {region_id}: this peer keeps no data")]
    NoData { region_id: u64 },
    /// A merge step that cannot be taken as asked (the regions are not
    /// neighbours on the same stores, or another change is in flight).
    #[error("region {region_id}: merge refused ({reason})")]
    MergeRefused { region_id: u64, reason: String },
    /// Stored Raft state does not decode.
    #[error("corrupted {what}: {detail}")]
    Corruption { what: &'static str, detail: String },
}

impl Error {
    /// Whether the same request may succeed if sent again (possibly elsewhere).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::NotLeader { .. }
                | Error::EpochNotMatch { .. }
                | Error::ProposalDropped { .. }
                | Error::ServerIsBusy { .. }
        )
    }
}
