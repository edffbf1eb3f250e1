//! Where table scans read rows: the [`RowSource`] seam between the plans
//! that read a table (its providers, `information_schema`, statistics) and
//! the statement's transaction and columnar replica that serve them; and
//! [`RemoteColumnar`], the seam to the columnar replicas of other nodes,
//! which the server implements over its node service.

use std::sync::Mutex;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use duet_columnar::{ScanPart, ScanRequest, TableStatus};
use duet_storage::codec::Datum;
use duet_storage::mvcc::LockInfo;

use crate::catalog::{IndexInfo, TableInfo};
use crate::error::{Error, Result};
use crate::table::Row;
use crate::table::ranges::HandleSet;
use crate::table::stats::TableStats;

/// Where table scans read rows (with their row keys): the statement's
/// transaction.
pub(crate) trait RowSource: Send + Sync {
    /// The rows of `table` within `handles`.
    fn rows(&self, table: &TableInfo, handles: &HandleSet) -> Result<Vec<(Vec<u8>, Row)>>;
    /// The rows of `table` whose row keys lie in `[start, end)`, in key
    /// order; at most `limit` of them.
    fn rows_between(
        &self,
        table: &TableInfo,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Row)>>;
    /// The rows whose `index` entries (or clustered keys) start with one
    /// of `prefixes`, values of the index's leading columns, with the next
    /// column within `range` when given.
    fn rows_by_index(
        &self,
        table: &TableInfo,
        index: &IndexInfo,
        prefixes: &[Vec<Datum>],
        range: Option<(i64, i64)>,
    ) -> Result<Vec<(Vec<u8>, Row)>>;
    /// The router's statistics of `table`, if it has any.
    fn stats(&self, _table: &TableInfo) -> Option<TableStats> {
        None
    }
    /// Whether the statement's transaction has writes of its own to
    /// `table`, which only the row store's reads see.
    fn has_writes(&self, _table: &TableInfo) -> bool {
        false
    }
    /// Whether the columnar replica can serve `table` (of this Arrow
    /// schema): it has the table, at the same definition. With `wait` (the
    /// statement may read it from nowhere else) a replica still copying
    /// the table is waited for, within its read wait.
    fn columnar_available(&self, _table: &TableInfo, _schema: &SchemaRef, _wait: bool) -> bool {
        false
    }
    /// The state of `table`'s columnar replica here, if it has one.
    fn columnar_replica_status(&self, _table: &TableInfo) -> Option<TableStatus> {
        None
    }
    /// The cluster's stores and regions (the placement driver's report),
    /// where this instance is part of a cluster that has one.
    fn cluster_report(&self) -> Option<serde_json::Value> {
        None
    }
    /// The last deadlocks this node's transactions were refused for.
    fn deadlocks(&self) -> Vec<duet_storage::txn::deadlock::DeadlockRecord> {
        Vec::new()
    }
    /// Reads `table` from the columnar replicas at the statement's
    /// snapshot: this node's, and other nodes' for regions it does not hold.
    fn columnar_scan(
        &self,
        _table: &TableInfo,
        _request: ScanRequest,
    ) -> Result<Vec<ColumnarPart>> {
        Err(Error::Internal("no columnar replica here".into()))
    }
}

/// Batches streamed from another node, in key order.
pub type RemoteBatches = Box<dyn Iterator<Item = std::result::Result<RecordBatch, String>> + Send>;

/// One part of a columnar read.
pub enum ColumnarPart {
    /// Rows of this node's replica, made a batch at a time.
    Here(ScanPart),
    /// Batches streamed from another node's replica (taken by the one
    /// execution of the part).
    Elsewhere(Mutex<Option<RemoteBatches>>),
}

/// A part of a table's rows, `[start, end)` of row keys (`end` empty: no
/// bound), and whether this node's columnar replica holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub start: Vec<u8>,
    pub end: Vec<u8>,
    pub here: bool,
}

/// What a columnar read asks of another node.
pub struct RemoteScan<'a> {
    pub table_id: i64,
    /// The table's columns as this statement's catalog defines them: a
    /// replica at another definition does not answer.
    pub schema: &'a SchemaRef,
    pub start: &'a [u8],
    pub end: &'a [u8],
    pub read_ts: u64,
    pub projection: Option<&'a [usize]>,
}

/// Why another node gave no rows.
#[derive(Debug)]
pub enum RemoteError {
    /// A lock hides a version at the read's timestamp: resolve it and ask
    /// again.
    Locked(Box<LockInfo>),
    /// No node holding the range can serve it now.
    Unavailable(String),
}

/// The columnar replicas of other nodes, for the regions whose learners
/// are not on this node.
pub trait RemoteColumnar: Send + Sync {
    /// `[start, end)` cut by region, in key order; `None` if some region
    /// has a columnar learner on no node.
    fn plan(&self, start: &[u8], end: &[u8]) -> Option<Vec<Span>>;
    /// The rows `scan` asks for, from a node whose replica holds them.
    fn scan(&self, scan: &RemoteScan<'_>) -> std::result::Result<RemoteBatches, RemoteError>;
}

impl std::fmt::Debug for dyn RemoteColumnar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RemoteColumnar")
    }
}
