//! The leaves of a plan that read a table, as DataFusion partition
//! streams: the row store's key range read a page at a time, and the
//! columnar replica's parts made a batch at a time. Neither reads the
//! table whole before its first row goes on, so a scan holds one batch per
//! partition however large the table is, and a statement that stops early
//! (a `LIMIT`, a client that goes away, `KILL`) reads no further.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};

use crate::catalog::TableInfo;
use crate::error::Error;
use crate::plan::arrow::rows_to_batch;
use crate::table::source::{ColumnarPart, RowSource};

fn external(e: Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// The rows of one key range of a table, at the statement's snapshot.
pub(crate) struct KeyRangeScan {
    pub source: Arc<dyn RowSource>,
    pub table: Arc<TableInfo>,
    /// The table's full schema (with the row key column if `with_handle`).
    pub schema: SchemaRef,
    pub projection: Option<Vec<usize>>,
    /// `[start, end)` of row keys.
    pub start: Vec<u8>,
    pub end: Vec<u8>,
    pub limit: Option<usize>,
    pub with_handle: bool,
    /// Rows read so far (for `EXPLAIN ANALYZE`).
    pub read: Arc<AtomicUsize>,
}

impl KeyRangeScan {
    /// The scan as a one-partition plan leaf.
    pub fn into_plan(self) -> DfResult<Arc<dyn ExecutionPlan>> {
        let projected = match &self.projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => Arc::clone(&self.schema),
        };
        let scan = Arc::new(Projected {
            schema: Arc::clone(&projected),
            inner: self,
        });
        Ok(Arc::new(StreamingTableExec::try_new(
            projected,
            vec![scan],
            None,
            Vec::new(),
            false,
            None,
        )?))
    }
}

/// A [`KeyRangeScan`] with the schema of the columns it returns.
struct Projected {
    schema: SchemaRef,
    inner: KeyRangeScan,
}

impl fmt::Debug for Projected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRangeScan")
            .field("table", &self.inner.table.name)
            .finish()
    }
}

impl PartitionStream for Projected {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let scan = &self.inner;
        let pages = Pages {
            source: Arc::clone(&scan.source),
            table: Arc::clone(&scan.table),
            schema: Arc::clone(&scan.schema),
            projected: Arc::clone(&self.schema),
            projection: scan.projection.clone(),
            with_handle: scan.with_handle,
            from: Some(scan.start.clone()),
            end: scan.end.clone(),
            left: scan.limit.unwrap_or(usize::MAX),
            page: ctx.session_config().batch_size().max(1),
            read: Arc::clone(&scan.read),
        };
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            futures::stream::iter(pages),
        ))
    }
}

/// The pages of a key range still to read.
struct Pages {
    source: Arc<dyn RowSource>,
    table: Arc<TableInfo>,
    schema: SchemaRef,
    projected: SchemaRef,
    projection: Option<Vec<usize>>,
    with_handle: bool,
    /// Where the next page starts; `None` once the range is read.
    from: Option<Vec<u8>>,
    end: Vec<u8>,
    /// Rows the scan may still return.
    left: usize,
    page: usize,
    read: Arc<AtomicUsize>,
}

impl Pages {
    fn next_page(&mut self, from: Vec<u8>) -> DfResult<Option<RecordBatch>> {
        let want = self.page.min(self.left);
        let rows = self
            .source
            .rows_between(&self.table, &from, &self.end, want)
            .map_err(external)?;
        if rows.len() == want
            && let Some((last, _)) = rows.last()
        {
            let mut next = last.clone();
            next.push(0);
            self.from = Some(next);
        }
        if rows.is_empty() {
            return Ok(None);
        }
        self.left -= rows.len();
        self.read.fetch_add(rows.len(), Ordering::Relaxed);
        let batch =
            rows_to_batch(&self.table, &self.schema, &rows, self.with_handle).map_err(external)?;
        let columns = match &self.projection {
            Some(p) => p.iter().map(|&i| Arc::clone(batch.column(i))).collect(),
            None => batch.columns().to_vec(),
        };
        Ok(Some(RecordBatch::try_new_with_options(
            Arc::clone(&self.projected),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
        )?))
    }
}

impl Iterator for Pages {
    type Item = DfResult<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let from = self.from.take()?;
        self.next_page(from).transpose()
    }
}

/// The columnar replicas' parts of one scan (this node's and others'),
/// under the statement's schema (its field metadata: collations, MySQL
/// types). `read` counts the rows as their batches are made.
pub(crate) fn columnar_plan(
    schema: SchemaRef,
    parts: Vec<ColumnarPart>,
    read: &Arc<AtomicUsize>,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    let streams = parts
        .into_iter()
        .map(|part| {
            Arc::new(ColumnarStream {
                schema: Arc::clone(&schema),
                part,
                read: Arc::clone(read),
            }) as Arc<dyn PartitionStream>
        })
        .collect();
    Ok(Arc::new(StreamingTableExec::try_new(
        schema,
        streams,
        None,
        Vec::new(),
        false,
        None,
    )?))
}

/// One part of a columnar scan.
struct ColumnarStream {
    schema: SchemaRef,
    part: ColumnarPart,
    read: Arc<AtomicUsize>,
}

impl fmt::Debug for ColumnarStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.part {
            ColumnarPart::Here(p) => f
                .debug_struct("ColumnarPart")
                .field("rows", &p.rows())
                .finish(),
            ColumnarPart::Elsewhere(_) => f.write_str("ColumnarPart(remote)"),
        }
    }
}

impl PartitionStream for ColumnarStream {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let schema = Arc::clone(&self.schema);
        let read = Arc::clone(&self.read);
        let batches: Box<dyn Iterator<Item = DfResult<RecordBatch>> + Send> = match &self.part {
            ColumnarPart::Here(part) => Box::new(
                part.batches(ctx.session_config().batch_size())
                    .map(|b| b.map_err(|e| DataFusionError::External(Box::new(e)))),
            ),
            ColumnarPart::Elsewhere(remote) => {
                match remote.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    Some(stream) => Box::new(
                        stream.map(|b| b.map_err(|e| external(Error::ColumnarUnavailable(e)))),
                    ),
                    None => Box::new(std::iter::once(Err(external(Error::Internal(
                        "a remote columnar part read twice".into(),
                    ))))),
                }
            }
        };
        let batches = batches.map(move |b| {
            let b = b?;
            read.fetch_add(b.num_rows(), Ordering::Relaxed);
            Ok(RecordBatch::try_new_with_options(
                Arc::clone(&schema),
                b.columns().to_vec(),
                &RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
            )?)
        });
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            futures::stream::iter(batches),
        ))
    }
}
