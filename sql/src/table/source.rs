//! Where table scans read rows: the [`RowSource`] seam between the plans
//! that read a table (its providers, `information_schema`, statistics) and
//! the statement's transaction and columnar replica that serve them.

use datafusion::arrow::datatypes::SchemaRef;
use duet_columnar::{ScanOutput, ScanRequest, TableStatus};
use duet_storage::codec::Datum;

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
    /// Reads `table` from the columnar replica at the statement's snapshot.
    fn columnar_scan(&self, _table: &TableInfo, _request: ScanRequest) -> Result<ScanOutput> {
        Err(Error::Internal("no columnar replica here".into()))
    }
}
