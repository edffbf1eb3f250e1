//! The storage crate's one error type. Messages never contain raw user keys:
//! keys travel in structured fields for callers, not in `Display`.

use crate::codec::CodecError;
use crate::mvcc::LockInfo;

/// Result alias for the storage crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of the engines, codecs and transaction actions.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The underlying engine failed (I/O, corruption detected by RocksDB, …).
    #[error("engine error: {0}")]
    Engine(String),
    #[error("codec error: {0}")]
    Codec(#[from] CodecError),
    /// A stored record does not decode.
    #[error("corrupted {what}: {detail}")]
    Corruption { what: &'static str, detail: String },
    /// A read or write met another transaction's lock.
    #[error("key is locked by transaction {} (lock ttl {} ms)", .0.start_ts, .0.ttl)]
    KeyIsLocked(Box<LockInfo>),
    /// Another transaction committed this key after `start_ts`.
    #[error(
        "write conflict: transaction {start_ts} meets a write committed at {conflict_commit_ts} by transaction {conflict_start_ts}"
    )]
    WriteConflict {
        start_ts: u64,
        conflict_start_ts: u64,
        conflict_commit_ts: u64,
        key: Vec<u8>,
        primary: Vec<u8>,
    },
    /// Commit or lock resolution found neither the lock nor a commit record.
    #[error("transaction {start_ts} holds no lock on the key")]
    TxnLockNotFound { start_ts: u64, key: Vec<u8> },
    /// The transaction was rolled back (by itself or by a resolver).
    #[error("transaction {start_ts} was rolled back")]
    RolledBack { start_ts: u64 },
    /// Rollback of a transaction that already committed the key.
    #[error("transaction {start_ts} already committed at {commit_ts}")]
    AlreadyCommitted { start_ts: u64, commit_ts: u64 },
    /// A commit timestamp below what a lock accepts.
    #[error(
        "commit timestamp {commit_ts} of transaction {start_ts} is below the lock's minimum {min_commit_ts}"
    )]
    CommitTsExpired {
        start_ts: u64,
        commit_ts: u64,
        min_commit_ts: u64,
    },
    /// A commit timestamp not after the start timestamp.
    #[error("commit timestamp {commit_ts} is not after start timestamp {start_ts}")]
    InvalidTimestamp { start_ts: u64, commit_ts: u64 },
    /// An insert met an existing row or unique-index entry.
    #[error("key already exists")]
    AlreadyExist { key: Vec<u8> },
    /// The replication layer could not run the command (no leader, timeout);
    /// it may or may not have applied.
    #[error("replication unavailable: {0}")]
    Unavailable(String),
    /// GC was asked to collect below a lock that is still unresolved.
    #[error("gc to safe point {safe_point} waits for a lock of transaction {lock_ts}")]
    GcBlocked { lock_ts: u64, safe_point: u64 },
    /// A timestamp request could not be served.
    #[error("timestamp oracle: {0}")]
    Tso(String),
    /// A key the transaction watched was written (or is being written) by
    /// another transaction between its start and its commit.
    #[error("transaction {start_ts}: a key it watched changed before it committed")]
    WatchedKeyChanged { start_ts: u64, key: Vec<u8> },
    /// The node whose store would take the write is short of disk space:
    /// it refuses new data until space is freed (commits, rollbacks and
    /// GC still run, they settle or free what is there).
    #[error("disk full on node {node_id}: writes are refused until space is freed")]
    DiskFull { node_id: u64 },
    /// Waiting for the lock would close a cycle of waits: `cycle` are the
    /// transactions the holder (the first) leads to, each waiting for the
    /// next, the last for `start_ts`.
    #[error("transaction {start_ts}: deadlock through transactions {cycle:?}")]
    Deadlock { start_ts: u64, cycle: Vec<u64> },
}

impl Error {
    /// Whether retrying the whole transaction may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::WriteConflict { .. }
                | Error::KeyIsLocked(_)
                | Error::RolledBack { .. }
                | Error::WatchedKeyChanged { .. }
                | Error::Deadlock { .. }
        )
    }
}
