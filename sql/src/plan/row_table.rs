//! The row-store table provider: it reads a table at the statement's
//! snapshot through the access path the router chose (key ranges, an
//! index lookup, a full scan) or hands the scan to the columnar replica.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session as DfSession, TableProvider};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::logical_expr::{Expr as DfExpr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use duet_storage::codec::Datum;

use crate::catalog::ColumnInfo;
use crate::catalog::{HandleKind, IndexInfo, TableInfo};
use crate::error::{Error, Result};
use crate::plan::access::TableAccessExec;
use crate::plan::arrow::rows_to_batch;
use crate::plan::scans;
use crate::plan::scans::KeyRangeScan;
use crate::plan::scope::Scope;
use crate::router::{self, Choice, Engine, LookupEstimate, Path, RowRead};
use crate::table::ranges::{self, HandleSet};
use crate::table::source::RowSource;
use crate::table::stats::TableStats;
use crate::table::{self, Row};
use crate::types;
use crate::value::Value;
use duet_columnar::ScanRequest;

/// A table read at the transaction's snapshot, from the row store or the
/// columnar replica as the router chooses.
/// How a row-store access reads its rows.
pub(crate) enum Read {
    /// Page by page, as the plan consumes them, from a key range.
    Keys(Vec<u8>, Vec<u8>),
    /// Read whole as the plan is made (points, index lookups).
    Rows(Result<Vec<(Vec<u8>, Row)>>),
}

pub(crate) struct RowTable {
    pub(crate) info: Arc<TableInfo>,
    pub(crate) database: String,
    pub(crate) schema: SchemaRef,
    pub(crate) with_handle: bool,
}

impl fmt::Debug for RowTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RowTable")
            .field("table", &self.info.name)
            .finish()
    }
}

impl RowTable {
    /// The indexes a lookup may read: every index but an integer primary
    /// key's (that key is the row handle, read by key ranges instead).
    fn lookup_indexes(&self) -> impl Iterator<Item = &IndexInfo> {
        let int_pk = matches!(self.info.handle, HandleKind::IntPk(_));
        self.info
            .indexes
            .iter()
            .filter(move |i| !(i.write_only.is_some() || int_pk && i.primary))
    }

    /// The index with the longest run of leading columns that the filters
    /// pin to values (the clustered primary key wins a tie: it needs no
    /// second read), with the value prefixes to look up.
    fn index_lookup(&self, filters: &[DfExpr]) -> Option<Lookup<'_>> {
        let mut best: Option<Lookup<'_>> = None;
        for index in self.lookup_indexes() {
            let mut prefixes: Vec<Vec<Datum>> = vec![Vec::new()];
            let mut columns = Vec::new();
            for (part, &offset) in index.columns.iter().enumerate() {
                let column = &self.info.columns[offset];
                let name = column.name.to_ascii_lowercase();
                // Values as the index stores them: a `_ci` column's as the
                // sort keys its filters already compare (whole values only).
                let values = if column.collation.is_binary() {
                    filters
                        .iter()
                        .find_map(|f| ranges::equal_values(f, &name))
                        .and_then(|scalars| {
                            scalars
                                .iter()
                                .map(|v| {
                                    let d = index_datum(column, v)?;
                                    Some(table::key_part(&self.info, index, part, &d))
                                })
                                .collect::<Option<Vec<_>>>()
                        })
                } else if index.prefix(part).is_none() {
                    filters
                        .iter()
                        .find_map(|f| ranges::equal_keys(f, &name))
                        .and_then(|keys| {
                            keys.into_iter()
                                .map(|k| match k {
                                    datafusion::scalar::ScalarValue::Binary(Some(b)) => {
                                        Some(Datum::Bytes(b))
                                    }
                                    _ => None,
                                })
                                .collect::<Option<Vec<_>>>()
                        })
                } else {
                    None
                };
                let Some(values) = values else {
                    break;
                };
                if values.is_empty() || prefixes.len() * values.len() > MAX_LOOKUP_PREFIXES {
                    break;
                }
                prefixes = prefixes
                    .iter()
                    .flat_map(|p| {
                        values.iter().map(move |v| {
                            let mut p = p.clone();
                            p.push(v.clone());
                            p
                        })
                    })
                    .collect();
                columns.push(column.id);
            }
            // A range on the next column narrows each prefix to a key range
            // (with no column pinned, the range alone is the lookup).
            let range = index.columns.get(columns.len()).and_then(|&offset| {
                let column = &self.info.columns[offset];
                if !column.ty.is_integer() || column.ty.unsigned {
                    return None;
                }
                match ranges::combine(filters, &column.name.to_ascii_lowercase()) {
                    HandleSet::Range(lo, hi) if HandleSet::Range(lo, hi) != HandleSet::all() => {
                        Some((
                            column.id,
                            i64::try_from(lo.max(i128::from(i64::MIN))).ok()?,
                            i64::try_from(hi.min(i128::from(i64::MAX))).ok()?,
                        ))
                    }
                    _ => None,
                }
            });
            if columns.is_empty() && range.is_none() {
                continue;
            }
            let clustered = index.primary && matches!(self.info.handle, HandleKind::Clustered);
            // More pinned columns first; then a range over none; then the
            // clustered key.
            let rank = (columns.len(), range.is_some(), clustered);
            let better = best
                .as_ref()
                .is_none_or(|b| rank > (b.columns.len(), b.range.is_some(), b.clustered));
            if better {
                best = Some(Lookup {
                    index,
                    clustered,
                    range,
                    complete: index.unique && columns.len() == index.columns.len(),
                    columns,
                    prefixes,
                });
            }
        }
        best
    }

    /// Whether `filter` pins (or bounds) a column of an index a lookup may
    /// read.
    fn pins_index_column(&self, filter: &DfExpr) -> bool {
        self.lookup_indexes().any(|index| {
            index.columns.iter().any(|&offset| {
                let name = self.info.columns[offset].name.to_ascii_lowercase();
                ranges::equal_values(filter, &name).is_some()
                    || ranges::equal_keys(filter, &name).is_some()
                    || ranges::handles(filter, &name).is_some()
            })
        })
    }

    /// The engines that may serve this access in `scope`'s statement. The
    /// table an UPDATE or DELETE changes is read from the row store (with
    /// its row keys), and so is a table the transaction wrote (the replica
    /// holds committed data only), whatever the session's engines; any
    /// other access may go to the columnar replica if it has the table.
    fn choice(&self, scope: &Scope) -> Result<Choice> {
        if self.with_handle || scope.source.has_writes(&self.info) {
            return Ok(Choice::Only(Engine::Row));
        }
        let wait = !scope.routing.row_may_serve(&self.info.name);
        let columnar = scope
            .source
            .columnar_available(&self.info, &self.schema, wait);
        scope
            .routing
            .engine_for(&self.database, &self.info.name, columnar)
    }

    /// The integer primary key column that is the row handle, if any.
    fn key_column(&self) -> Option<String> {
        match self.info.handle {
            HandleKind::IntPk(o) => Some(self.info.columns[o].name.to_ascii_lowercase()),
            _ => None,
        }
    }
}

#[async_trait]
impl TableProvider for RowTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Conditions on an integer primary key narrow the scan to a key range
    /// or point gets, and comparisons with constants let the columnar
    /// replica skip chunks (the engine re-checks every filter).
    fn supports_filters_pushdown(
        &self,
        filters: &[&DfExpr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        let key = self.key_column();
        Ok(filters
            .iter()
            .map(|f| {
                let on_key = key
                    .as_ref()
                    .is_some_and(|k| ranges::handles(f, k).is_some());
                if on_key || is_comparison(f) || self.pins_index_column(f) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    /// The access is decided here, when the statement's snapshot, engines
    /// and conditions are all known (a prepared statement's kept plan meets
    /// a new scope at each execution).
    async fn scan(
        &self,
        state: &dyn DfSession,
        projection: Option<&Vec<usize>>,
        filters: &[DfExpr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let external = |e: Error| DataFusionError::External(Box::new(e));
        let scope = state
            .config()
            .get_extension::<Scope>()
            .ok_or_else(|| external(Error::Internal("a scan outside a statement".into())))?;
        let choice = self.choice(&scope).map_err(external)?;
        let source = &scope.source;
        let stats = source.stats(&self.info);
        let table_rows = stats.as_ref().map(|s| s.rows as f64);
        let handles = self
            .key_column()
            .map(|k| ranges::combine(filters, &k))
            .filter(|h| *h != HandleSet::all());
        // Rows the key ranges hold: the statistics' estimate, never more
        // than the keys the ranges admit.
        let key_rows = handles.as_ref().map(|set| {
            let in_range = match (set, &stats, &self.info.handle) {
                (HandleSet::Range(lo, hi), Some(stats), &HandleKind::IntPk(o)) => {
                    stats.rows_in_range(self.info.columns[o].id, *lo, *hi)
                }
                _ => table_rows,
            };
            in_range.map(|r| r.min(set.size()))
        });
        // An index lookup, unless the statistics say it would fetch so
        // much of the table that one sequential scan costs less (a
        // clustered key prefix reads no more than a scan would), or,
        // without statistics, it is a range open at one end.
        let lookup = self.index_lookup(filters).and_then(|lookup| {
            let estimate = LookupEstimate {
                clustered: lookup.clustered,
                expected: lookup.expected_rows(stats.as_ref()),
                open_range_only: lookup.open_range_only(),
            };
            router::use_lookup(&estimate, table_rows).then_some((lookup, estimate))
        });
        // Where both engines may serve, the cheaper one: the row store's
        // key ranges and index lookups read only what they need; the
        // columnar replica reads a whole table far faster per row, but
        // waits for its learner first. Without statistics, rules: a key
        // range or lookup goes to the row store, a full scan to columnar.
        let columnar = match choice {
            Choice::Only(engine) => engine == Engine::Columnar,
            Choice::Cost => {
                let row_read = match (key_rows, &lookup) {
                    (Some(rows), _) => RowRead::KeyRanges(rows),
                    (None, Some((_, estimate))) => RowRead::Lookup(estimate),
                    (None, None) => RowRead::FullScan,
                };
                router::columnar_is_cheaper(row_read, table_rows)
            }
        };
        if columnar {
            match self.columnar_scan(source.as_ref(), projection, filters, limit, table_rows) {
                // The replica, catching up for the read, found the table
                // being copied anew: the row store serves where it may.
                Err(DataFusionError::External(e))
                    if choice == Choice::Cost
                        && matches!(
                            e.downcast_ref::<Error>(),
                            Some(Error::ColumnarUnavailable(_))
                        ) => {}
                other => return other,
            }
        }
        // A key range (or the whole table) is read page by page as the
        // plan consumes it; points and index lookups are read here.
        let table = format!("{}.{}", self.database, self.info.name);
        let (how, path, estimated) = self.row_read(
            source.as_ref(),
            handles.as_ref(),
            key_rows,
            lookup,
            table_rows,
        );
        let read = Arc::new(AtomicUsize::new(0));
        let mut held = None;
        let input = match how {
            Read::Keys(start, end) => KeyRangeScan {
                source: Arc::clone(source),
                table: Arc::clone(&self.info),
                schema: Arc::clone(&self.schema),
                projection: projection.cloned(),
                start,
                end,
                limit,
                with_handle: self.with_handle,
                read: Arc::clone(&read),
            }
            .into_plan()?,
            Read::Rows(rows) => {
                let rows = rows.map_err(external)?;
                read.store(rows.len(), Ordering::Relaxed);
                let batch = rows_to_batch(&self.info, &self.schema, &rows, self.with_handle)
                    .map_err(external)?;
                drop(rows);
                let reservation = MemoryConsumer::new(format!("{table} lookup"))
                    .register(&state.runtime_env().memory_pool);
                reservation.try_grow(batch.get_array_memory_size())?;
                held = Some(reservation);
                MemorySourceConfig::try_new_exec(
                    &[vec![batch]],
                    Arc::clone(&self.schema),
                    projection.cloned(),
                )?
            }
        };
        Ok(Arc::new(TableAccessExec {
            table,
            engine: Engine::Row,
            path,
            estimated_rows: estimated,
            rows_read: read,
            input,
            _held: held,
        }))
    }
}

impl RowTable {
    /// How the row store reads this access: the key ranges (or the whole
    /// table) page by page as the plan consumes them, or the rows of points
    /// and index lookups read here; with the path `EXPLAIN` shows and the
    /// rows the router expects.
    fn row_read(
        &self,
        source: &dyn RowSource,
        handles: Option<&HandleSet>,
        key_rows: Option<Option<f64>>,
        lookup: Option<(Lookup<'_>, LookupEstimate)>,
        table_rows: Option<f64>,
    ) -> (Read, Path, Option<f64>) {
        match (handles, lookup) {
            (Some(set @ HandleSet::Range(lo, hi)), _) => {
                let (start, end) = table::handle_range_keys(&self.info, *lo, *hi);
                (
                    Read::Keys(start, end),
                    Path::KeyRanges(set.describe()),
                    key_rows.flatten(),
                )
            }
            (Some(set), _) => (
                Read::Rows(source.rows(&self.info, set)),
                Path::KeyRanges(set.describe()),
                key_rows.flatten(),
            ),
            (None, Some((lookup, estimate))) => (
                Read::Rows(source.rows_by_index(
                    &self.info,
                    lookup.index,
                    &lookup.prefixes,
                    lookup.range.map(|(_, lo, hi)| (lo, hi)),
                )),
                Path::IndexLookup {
                    index: lookup.index.name.clone(),
                    values: if lookup.columns.is_empty() {
                        0
                    } else {
                        lookup.prefixes.len()
                    },
                    range: lookup
                        .range
                        .map(|(_, lo, hi)| HandleSet::Range(lo.into(), hi.into()).describe()),
                },
                estimate.expected,
            ),
            (None, None) => {
                let (start, end) = table::table_row_keys(&self.info);
                (Read::Keys(start, end), Path::FullScan, table_rows)
            }
        }
    }

    /// The scan as the columnar replica serves it.
    fn columnar_scan(
        &self,
        source: &dyn RowSource,
        projection: Option<&Vec<usize>>,
        filters: &[DfExpr],
        limit: Option<usize>,
        table_rows: Option<f64>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let external = |e: Error| DataFusionError::External(Box::new(e));
        let request = ScanRequest {
            projection: projection.cloned(),
            filters: filters.to_vec(),
            limit,
            read_ts: 0,
            partitions: 2,
            keys: None,
        };
        let parts = source
            .columnar_scan(&self.info, request)
            .map_err(external)?;
        let schema = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => Arc::clone(&self.schema),
        };
        // The replica's batches, under this statement's field metadata.
        let read = Arc::new(AtomicUsize::new(0));
        let exec = scans::columnar_plan(schema, parts, &read)?;
        Ok(Arc::new(TableAccessExec {
            table: format!("{}.{}", self.database, self.info.name),
            engine: Engine::Columnar,
            path: Path::FullScan,
            estimated_rows: table_rows,
            rows_read: read,
            input: exec,
            _held: None,
        }))
    }
}

/// A comparison of a column with a constant, which the columnar replica
/// can check against a chunk's min/max.
pub(crate) fn is_comparison(f: &DfExpr) -> bool {
    use datafusion::logical_expr::{BinaryExpr, Operator};
    match f {
        DfExpr::BinaryExpr(BinaryExpr { left, op, right }) => {
            matches!(
                op,
                Operator::Eq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq
            ) && matches!(
                (left.as_ref(), right.as_ref()),
                (DfExpr::Column(_), DfExpr::Literal(..)) | (DfExpr::Literal(..), DfExpr::Column(_))
            )
        }
        _ => false,
    }
}

/// Value prefixes one lookup may read at most (the product of the `IN`
/// lists of the pinned columns); past it, fewer columns are pinned.
pub(crate) const MAX_LOOKUP_PREFIXES: usize = 1024;

/// An index lookup the filters allow: the index, the ids of its leading
/// columns they pin, and the value prefixes to read.
pub(crate) struct Lookup<'a> {
    index: &'a IndexInfo,
    /// The index is the clustered primary key: the prefixes are row-key
    /// prefixes.
    clustered: bool,
    /// Every column of a unique index is pinned: one row per prefix.
    complete: bool,
    /// The (signed integer) column after the prefix, and inclusive bounds
    /// on it.
    range: Option<(u32, i64, i64)>,
    columns: Vec<u32>,
    prefixes: Vec<Vec<Datum>>,
}

impl Lookup<'_> {
    /// Rows the lookup should find: one per prefix for a complete unique
    /// match; otherwise the most selective pinned column's rows per value
    /// (times the share of the table a range on the next column holds), or,
    /// with no column pinned, the rows in the range.
    fn expected_rows(&self, stats: Option<&TableStats>) -> Option<f64> {
        if self.complete {
            return Some(self.prefixes.len() as f64);
        }
        let stats = stats?;
        if self.columns.is_empty() {
            let (column, lo, hi) = self.range?;
            return stats.rows_in_range(column, lo.into(), hi.into());
        }
        let per_value = self
            .columns
            .iter()
            .filter_map(|&id| stats.rows_per_value(id))
            .fold(f64::INFINITY, f64::min);
        // A range on the next column keeps its share of each prefix's rows.
        let share = self
            .range
            .and_then(|(column, lo, hi)| stats.rows_in_range(column, lo.into(), hi.into()))
            .map_or(1.0, |in_range| in_range / stats.rows.max(1) as f64);
        per_value
            .is_finite()
            .then_some(per_value * self.prefixes.len() as f64 * share)
    }

    /// A range over no pinned column that is open at one end may cover the
    /// whole table: without statistics the lookup is not worth it.
    fn open_range_only(&self) -> bool {
        self.columns.is_empty()
            && self
                .range
                .is_some_and(|(_, lo, hi)| lo == i64::MIN || hi == i64::MAX)
    }
}

/// A literal as a key datum of `column`, when the literal is of the
/// column's type family and the column holds it exactly; `None` (no index
/// lookup) otherwise.
pub(crate) fn index_datum(
    column: &ColumnInfo,
    v: &datafusion::scalar::ScalarValue,
) -> Option<Datum> {
    use crate::types::TypeKind;
    use datafusion::scalar::ScalarValue as S;
    let ty = &column.ty;
    let value = match v {
        S::Int8(Some(x)) => Value::Int(i64::from(*x)),
        S::Int16(Some(x)) => Value::Int(i64::from(*x)),
        S::Int32(Some(x)) => Value::Int(i64::from(*x)),
        S::Int64(Some(x)) => Value::Int(*x),
        S::UInt64(Some(x)) => Value::UInt(*x),
        S::Utf8(Some(s)) | S::LargeUtf8(Some(s)) | S::Utf8View(Some(s)) => Value::Str(s.clone()),
        _ => return None,
    };
    let compatible = match &value {
        Value::Int(_) | Value::UInt(_) => ty.is_integer(),
        Value::Str(_) => ty.is_text() && ty.kind != TypeKind::Char,
        _ => false,
    };
    if !compatible {
        return None;
    }
    let datum = ty.coerce(&value, &column.name).ok()?;
    let exact = types::value_text(&types::datum_to_value(&datum)) == types::value_text(&value);
    exact.then_some(datum)
}
