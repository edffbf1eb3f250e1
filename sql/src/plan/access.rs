//! The router's side of a table access: which engine may serve a table
//! (the session's `duet_isolation_read_engines` and the statement's
//! `READ_FROM_STORAGE` hints), which access path it chose (point get,
//! index lookup, key range or full scan) with the estimate behind the
//! choice, and the plan node that carries that choice into the executed
//! plan, where `EXPLAIN` reads it back.

use std::fmt;
use std::sync::atomic::AtomicUsize;

use datafusion::execution::memory_pool::MemoryReservation;
use std::sync::Arc;

use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
    Statistics,
};

use crate::router::{Engine, Path};

/// One table access in a physical plan: the rows it read (its input, a
/// leaf the executor runs) and the router's choice, shown by `EXPLAIN`.
#[derive(Debug)]
pub(crate) struct TableAccessExec {
    pub table: String,
    pub engine: Engine,
    pub path: Path,
    /// Rows the router expected this access to return, if it knew.
    pub estimated_rows: Option<f64>,
    /// Rows it has read from its engine so far.
    pub rows_read: Arc<AtomicUsize>,
    pub input: Arc<dyn ExecutionPlan>,
    /// The memory of rows read as the plan was made (points, index
    /// lookups), counted against the statement's quota while it runs.
    pub _held: Option<MemoryReservation>,
}

impl TableAccessExec {
    /// `EXPLAIN`'s access object: the table, and the index if one is used.
    pub fn access_object(&self) -> String {
        match &self.path {
            Path::IndexLookup { index, .. } => format!("table:{}, index:{index}", self.table),
            _ => format!("table:{}", self.table),
        }
    }

    /// `EXPLAIN`'s operator info.
    pub fn operator_info(&self) -> String {
        match &self.path {
            Path::FullScan => "full scan".into(),
            Path::KeyRanges(r) => format!("range:{r}"),
            Path::IndexLookup {
                values,
                range: None,
                ..
            } => format!("lookup of {values} value(s)"),
            Path::IndexLookup {
                values: 0,
                range: Some(range),
                ..
            } => format!("range:{range}"),
            Path::IndexLookup {
                values,
                range: Some(range),
                ..
            } => format!("lookup of {values} value(s), range:{range}"),
        }
    }

    /// The operator's name in `EXPLAIN`.
    pub fn operator(&self) -> &'static str {
        match (&self.engine, &self.path) {
            (Engine::Columnar, _) => "ColumnarScan",
            (Engine::Row, Path::FullScan) => "TableFullScan",
            (Engine::Row, Path::KeyRanges(_)) => "TableRangeScan",
            (Engine::Row, Path::IndexLookup { .. }) => "IndexLookUp",
        }
    }
}

impl DisplayAs for TableAccessExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} engine={} {}",
            self.operator(),
            self.access_object(),
            self.engine,
            self.operator_info()
        )
    }
}

impl ExecutionPlan for TableAccessExec {
    fn name(&self) -> &str {
        "TableAccessExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> datafusion::error::Result<TreeNodeRecursion>,
    ) -> datafusion::error::Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> datafusion::error::Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }

    fn metrics(&self) -> Option<datafusion::physical_plan::metrics::MetricsSet> {
        self.input.metrics()
    }

    #[allow(deprecated)]
    fn partition_statistics(
        &self,
        _partition: Option<usize>,
    ) -> datafusion::error::Result<Arc<Statistics>> {
        let mut stats = Statistics::new_unknown(&self.schema());
        if let Some(rows) = self.estimated_rows {
            stats.num_rows = Precision::Inexact(rows.round() as usize);
        }
        Ok(Arc::new(stats))
    }
}
