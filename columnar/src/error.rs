//! The columnar replica's errors.

use duet_storage::mvcc::LockInfo;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A lock at or below the read timestamp hides what the read would
    /// see: the caller resolves it through the row store and reads again.
    #[error("key is locked by the transaction that started at {}", .0.start_ts)]
    Locked(Box<LockInfo>),
    /// The table has no usable replica (none yet, or the learner stopped).
    #[error("the columnar replica of table {table_id} is unavailable: {reason}")]
    Unavailable { table_id: i64, reason: String },
    /// The learner met an entry it cannot decode; it stopped there.
    #[error("columnar learner stopped at region {region_id} index {index}: {detail}")]
    Stopped {
        region_id: u64,
        index: u64,
        detail: String,
    },
    /// The learner did not apply what the row store had within the read
    /// wait.
    #[error(
        "the columnar replica is {behind} log entries behind the row store after waiting {}ms",
        waited.as_millis()
    )]
    Behind {
        waited: std::time::Duration,
        behind: u64,
    },
    /// The learner peers did not obtain and reach a read index in every
    /// region within the read wait.
    #[error(
        "the columnar learner did not reach a read index in {regions} regions after waiting {}ms{}",
        waited.as_millis(),
        if detail.is_empty() { String::new() } else { format!(": {detail}") }
    )]
    NoReadIndex {
        waited: std::time::Duration,
        regions: usize,
        detail: String,
    },
    #[error("row store: {0}")]
    Storage(#[from] duet_storage::Error),
    #[error("arrow: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error("{0}")]
    Internal(String),
}
