//! What the replica needs to know of a table, and where it learns it.
//!
//! The columnar crate sits below the SQL layer, so it cannot read the SQL
//! catalog itself. Instead the SQL layer hands it a [`SchemaSource`]: given
//! a committed metadata key and value from the log, it answers with the
//! table's [`TableCodec`] (its Arrow schema, how to decode a stored row,
//! how to build a batch). The learner applies these in log order with the
//! rows, so a row is always decoded by the column ids of the schema in
//! force when the learner reached it. The row format keys values by column
//! id and never reuses an id, so decoding an older row under a later
//! schema is the same as decoding it under its own plus the new columns'
//! defaults: exactly what the row store's reader does.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use duet_storage::codec::Datum;

/// One table's shape and its row codec.
pub trait TableCodec: Send + Sync + std::fmt::Debug {
    fn table_id(&self) -> i64;
    /// The Arrow schema of the table's columns, in declaration order.
    fn schema(&self) -> SchemaRef;
    /// The stable id of each column of [`schema`](Self::schema).
    fn column_ids(&self) -> Vec<u32>;
    /// A stored row value as one datum per column (defaults for the
    /// columns the row predates).
    fn decode(&self, value: &[u8]) -> Result<Vec<Datum>, String>;
    /// Rows of [`decode`](Self::decode)'s shape as one batch of
    /// [`schema`](Self::schema).
    fn to_batch(&self, rows: &[Vec<Datum>]) -> Result<RecordBatch, String>;
}

/// What a committed metadata key means to the replica.
pub enum SchemaChange {
    /// Not a table definition (a database, a counter, a view).
    None,
    /// The table's definition, new or changed.
    Table(Arc<dyn TableCodec>),
    /// The definition of table `id`, which has no columnar replica: the
    /// replica drops its rows (and must copy them anew if it gets one).
    Unreplicated(i64),
}

/// Turns committed metadata into table codecs (implemented by the SQL layer).
pub trait SchemaSource: Send + Sync {
    /// Whether `key` is a metadata key this source may care about; the
    /// learner keeps the pending values of such keys until they commit.
    fn is_schema_key(&self, key: &[u8]) -> bool;
    /// The meaning of `value` committed at `key`.
    fn decode(&self, key: &[u8], value: &[u8]) -> Result<SchemaChange, String>;
}
