//! Queries through DataFusion: the catalog seen as DataFusion catalog,
//! schema and table providers (each MySQL database a schema of catalog
//! `def`), a row-store table provider that reads a table at the statement's
//! transaction snapshot, the preparation of a parsed MySQL query for
//! DataFusion (identifiers folded to lower case, MySQL-only syntax
//! rewritten), and the conversion of Arrow results to client values.

use std::fmt;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder,
    RecordBatch, StringBuilder, TimestampMicrosecondBuilder, UInt64Builder,
};
use datafusion::arrow::datatypes::{DataType as ArrowType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::MemoryCatalogProviderList;
use datafusion::catalog::{CatalogProvider, SchemaProvider, Session as DfSession, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::{SessionConfig, SessionContext, SessionState};
use datafusion::execution::memory_pool::{FairSpillPool, MemoryConsumer, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::{Expr as DfExpr, LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::sql::sqlparser::ast::{
    self, Expr, Ident, LimitClause, ObjectNamePart, Query, SelectItem, SetExpr, Statement,
    TableFactor, Visit, VisitMut, Visitor, VisitorMut,
};
use duet_storage::codec::Datum;
use futures::StreamExt;

use crate::access::{Choice, Engine, Path, Routing, TableAccessExec};
use crate::catalog::{Catalog, HandleKind, IndexInfo, TableInfo};
use crate::error::{Error, Result};
use crate::infoschema;
use crate::interrupt::Bounds;
use crate::ranges::{self, HandleSet};
use crate::scans::KeyRangeScan;
use crate::table::{self, Row};
use crate::types::{civil_from_days, days_from_civil};
use crate::value::{Collect, Column, Date, DateTime, FieldType, ResultSet, RowSink, Value};
use duet_columnar::{ScanOutput, ScanRequest};

/// The catalog name every database lives under, as in MySQL's
/// `information_schema` (`TABLE_CATALOG = 'def'`).
const CATALOG: &str = "def";

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
    fn stats(&self, _table: &TableInfo) -> Option<crate::stats::TableStats> {
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
    fn columnar_replica_status(&self, _table: &TableInfo) -> Option<duet_columnar::TableStatus> {
        None
    }
    /// Reads `table` from the columnar replica at the statement's snapshot.
    fn columnar_scan(&self, _table: &TableInfo, _request: ScanRequest) -> Result<ScanOutput> {
        Err(Error::Internal("no columnar replica here".into()))
    }
}

/// The hidden column that carries each row's key, in the scans of the
/// table an `UPDATE` or `DELETE` changes.
pub(crate) const HANDLE_COLUMN: &str = "_duet_handle";

/// Runs `f` to completion from synchronous code inside the runtime.
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

/// What one statement's plan reads through: the rows at its snapshot, the
/// table whose scans also return [`HANDLE_COLUMN`] (UPDATE and DELETE), and
/// the router's rules.
pub(crate) struct Scope {
    pub source: Arc<dyn RowSource>,
    pub handle_table: Option<i64>,
    pub routing: Arc<Routing>,
    /// Set when the plan names an `information_schema` table, whose rows
    /// are read as the plan is made: such a plan is not kept.
    pub catalog_read: AtomicBool,
    /// What bounds the statement (its stop signal, memory, spill files):
    /// those of the statement the creating thread runs, if any.
    pub bounds: Option<Bounds>,
}

impl Scope {
    /// A scope for reading `source` with the session's engines and no hints.
    pub(crate) fn new(source: Arc<dyn RowSource>, handle_table: Option<i64>) -> Self {
        Scope {
            source,
            handle_table,
            routing: Arc::new(Routing {
                allowed: vec![crate::access::Engine::Row],
                ..Routing::default()
            }),
            catalog_read: AtomicBool::new(false),
            bounds: crate::interrupt::current(),
        }
    }
}

/// Plans and runs a (prepared) query; `names` are the client's column names.
pub(crate) fn run(
    catalog: Arc<Catalog>,
    scope: Scope,
    current_db: Option<&str>,
    query: Query,
    names: Vec<Option<String>>,
) -> Result<ResultSet> {
    let mut all = Collect::default();
    stream(catalog, scope, current_db, query, names, &mut all)?;
    Ok(all.0)
}

/// Plans and runs a (prepared) query, sending its rows to `sink` as they
/// come; how many it sent.
pub(crate) fn stream(
    catalog: Arc<Catalog>,
    scope: Scope,
    current_db: Option<&str>,
    query: Query,
    names: Vec<Option<String>>,
    sink: &mut dyn RowSink,
) -> Result<u64> {
    let ctx = context(catalog, Arc::new(scope), current_db);
    let statement =
        datafusion::sql::parser::Statement::Statement(Box::new(Statement::Query(Box::new(query))));
    let plan = block_on(ctx.state().statement_to_plan(statement))
        .map_err(|e| query_error(e, current_db))?;
    execute(&ctx, plan, current_db, &names, sink)
}

/// Rows sent to a sink at once, at most.
const SINK_ROWS: usize = 1024;

/// Optimizes, plans physically and runs a logical plan, its rows sent to
/// `sink` batch by batch as the plan makes them; how many it sent. The
/// statement's stop signal ends the run between and during batches.
fn execute(
    ctx: &SessionContext,
    plan: LogicalPlan,
    current_db: Option<&str>,
    names: &[Option<String>],
    sink: &mut dyn RowSink,
) -> Result<u64> {
    let interrupt = ctx
        .state()
        .config()
        .get_extension::<Scope>()
        .and_then(|s| s.bounds.as_ref().map(|b| Arc::clone(&b.interrupt)));
    // The schema comes from the plan: an empty result still has columns.
    let schema: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
    let mut batches = block_on(async {
        let state = ctx.state();
        let optimized = state.optimize(&plan)?;
        let optimized = match &interrupt {
            Some(i) => watch_joins(optimized, i)?,
            None => optimized,
        };
        let physical = state
            .query_planner()
            .create_physical_plan(&optimized, &state)
            .await?;
        datafusion::physical_plan::execute_stream(physical, ctx.task_ctx())
    })
    .map_err(|e| query_error(e, current_db))?;
    sink.columns(&columns(&schema, names))?;
    let mut sent = 0u64;
    loop {
        // The sink may block (a slow client): it is fed outside the runtime.
        let next = block_on(async {
            match &interrupt {
                Some(i) => tokio::select! {
                    biased;
                    e = i.stopped() => Err(e),
                    b = batches.next() => Ok(b),
                },
                None => Ok(batches.next().await),
            }
        })?;
        let Some(batch) = next else {
            return Ok(sent);
        };
        let batch = batch.map_err(|e| query_error(e, current_db))?;
        for start in (0..batch.num_rows()).step_by(SINK_ROWS) {
            let part = batch.slice(start, SINK_ROWS.min(batch.num_rows() - start));
            sent += part.num_rows() as u64;
            sink.rows(batch_rows(&part)?)?;
        }
    }
}

/// Every join that filters the pairs it forms checks, with each chunk of
/// pairs, that its statement may go on: a join whose filter matches
/// nothing forms pairs without ever handing a batch back, so dropping the
/// query's stream would not stop it. Added to the optimized plan, where no
/// rule moves it out of the join.
fn watch_joins(
    plan: LogicalPlan,
    interrupt: &Arc<crate::interrupt::Interrupt>,
) -> datafusion::error::Result<LogicalPlan> {
    use datafusion::common::tree_node::Transformed;
    let alive = crate::interrupt::Alive::udf(Arc::clone(interrupt));
    plan.transform_up_with_subqueries(|p| match p {
        LogicalPlan::Join(mut join) if join.filter.is_some() => {
            let check =
                DfExpr::ScalarFunction(datafusion::logical_expr::expr::ScalarFunction::new_udf(
                    Arc::clone(&alive),
                    Vec::new(),
                ));
            join.filter = join.filter.map(|f| check.and(f));
            Ok(Transformed::yes(LogicalPlan::Join(join)))
        }
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}

/// A prepared query's logical plan, made once with its parameter markers
/// in place. Each execution puts its values in the markers' places and
/// makes the rest with them: the analysis and optimization, then the
/// physical plan, where the router chooses each access by the values'
/// ranges, the statistics and the replica at hand.
///
/// The values go in before the analysis, so the plan that runs is the one
/// the statement's text with those values written in would give: the
/// markers stand only where the MySQL rewrites of [`prepare`] do not look
/// at what stands there (see [`generic_markers`]).
pub(crate) struct GenericPlan {
    plan: LogicalPlan,
    names: Vec<Option<String>>,
    /// The markers that are `LIMIT` or `OFFSET` counts (numbered from 1).
    counts: Vec<usize>,
}

impl GenericPlan {
    /// Plans `query` (as parsed, its markers numbered) with its markers in
    /// place; `None` where that plan could differ from one of the values
    /// written in, or it reads `information_schema` (read as it is
    /// planned), or it fails (the text with the values will say why).
    pub(crate) fn new(
        catalog: Arc<Catalog>,
        current_db: Option<&str>,
        sql: &str,
        query: &Query,
    ) -> Option<GenericPlan> {
        let counts = generic_markers(query)?;
        let mut query = query.clone();
        let names = prepare(sql, &mut query).ok()?;
        let scope = Arc::new(Scope::new(Arc::new(PlanOnly(None)), None));
        let ctx = context(catalog, Arc::clone(&scope), current_db);
        let statement = datafusion::sql::parser::Statement::Statement(Box::new(Statement::Query(
            Box::new(query),
        )));
        let plan = block_on(ctx.state().statement_to_plan(statement)).ok()?;
        if scope.catalog_read.load(Ordering::Relaxed) {
            return None;
        }
        Some(GenericPlan {
            plan,
            names,
            counts,
        })
    }

    /// The markers' values, from the literals that write `params` in a
    /// statement's text, as the planner reads those literals; `None` for a
    /// value the plan cannot take as it is (a count that is not an
    /// integer, bytes that are not text).
    pub(crate) fn values(&self, literals: &[Expr]) -> Option<Vec<ScalarValue>> {
        let values = literals
            .iter()
            .map(literal_scalar)
            .collect::<Option<Vec<_>>>()?;
        let counts_are_integers = self.counts.iter().all(|&n| {
            matches!(
                values.get(n - 1),
                Some(ScalarValue::Int64(_) | ScalarValue::UInt64(_))
            )
        });
        counts_are_integers.then_some(values)
    }

    /// Runs the plan with `values` in the markers' places, its rows sent
    /// to `sink`; how many it sent.
    pub(crate) fn stream(
        &self,
        catalog: Arc<Catalog>,
        scope: Scope,
        current_db: Option<&str>,
        values: Vec<ScalarValue>,
        sink: &mut dyn RowSink,
    ) -> Result<u64> {
        let plan = self
            .plan
            .clone()
            .with_param_values(values)
            .map_err(|e| query_error(e, current_db))?;
        let ctx = context(catalog, Arc::new(scope), current_db);
        execute(&ctx, plan, current_db, &self.names, sink)
    }
}

/// The value DataFusion's planner gives a literal of a statement's text
/// (the spelling of a parameter's value): an integer that fits as `BIGINT`
/// or else `BIGINT UNSIGNED`, any other number as a double, a string as
/// text, NULL as the untyped null. `None` for other literals.
pub(crate) fn literal_scalar(literal: &Expr) -> Option<ScalarValue> {
    let Expr::Value(v) = literal else {
        return None;
    };
    Some(match &v.value {
        ast::Value::Null => ScalarValue::Null,
        ast::Value::Number(n, _) => match (n.parse::<i64>(), n.parse::<u64>()) {
            (Ok(i), _) => ScalarValue::Int64(Some(i)),
            (_, Ok(u)) => ScalarValue::UInt64(Some(u)),
            _ => ScalarValue::Float64(Some(n.parse().ok()?)),
        },
        ast::Value::SingleQuotedString(s) => ScalarValue::Utf8(Some(s.clone())),
        _ => return None,
    })
}

/// Whether `query`'s parameter markers may stay markers through the
/// planning: each is an operand of a comparison (`=`, `<>`, `<`, `<=`,
/// `>`, `>=`), a bound of a `BETWEEN` or an item of an `IN` list, with a
/// non-marker on the other side, or the outermost `LIMIT` or `OFFSET`
/// count; and no session function stands for a value of this execution
/// (the text path writes those in). The markers that are counts, if so.
fn generic_markers(query: &Query) -> Option<Vec<usize>> {
    #[derive(Default)]
    struct Markers {
        all: usize,
        placed: usize,
        counts: Vec<usize>,
        depth: usize,
        session: bool,
    }
    fn marker(e: &Expr) -> Option<usize> {
        match e {
            Expr::Value(v) => match &v.value {
                ast::Value::Placeholder(p) => p.strip_prefix('$')?.parse().ok(),
                _ => None,
            },
            _ => None,
        }
    }
    impl Visitor for Markers {
        type Break = ();
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
            self.depth += 1;
            if self.depth == 1 {
                let counts: Vec<&Expr> = match &query.limit_clause {
                    Some(LimitClause::LimitOffset { limit, offset, .. }) => limit
                        .iter()
                        .chain(offset.as_ref().map(|o| &o.value))
                        .collect(),
                    Some(LimitClause::OffsetCommaLimit { offset, limit }) => vec![offset, limit],
                    None => Vec::new(),
                };
                for n in counts.into_iter().filter_map(marker) {
                    self.placed += 1;
                    self.counts.push(n);
                }
            }
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            use ast::BinaryOperator as B;
            if marker(e).is_some() {
                self.all += 1;
            }
            let operands: Vec<&Expr> = match e {
                Expr::BinaryOp { left, op, right }
                    if matches!(op, B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq)
                        && (marker(left).is_none() || marker(right).is_none()) =>
                {
                    vec![left, right]
                }
                Expr::Between {
                    expr, low, high, ..
                } if marker(expr).is_none() => vec![low, high],
                Expr::InList { expr, list, .. } if marker(expr).is_none() => list.iter().collect(),
                Expr::Function(f) => {
                    let name = f.name.to_string().to_ascii_uppercase();
                    self.session |= crate::exec::SESSION_FUNCTIONS.contains(&name.as_str());
                    Vec::new()
                }
                _ => Vec::new(),
            };
            self.placed += operands.into_iter().filter(|o| marker(o).is_some()).count();
            ControlFlow::Continue(())
        }
    }
    let mut markers = Markers::default();
    let _ = query.visit(&mut markers);
    (markers.all == markers.placed && !markers.session).then_some(markers.counts)
}

/// The result columns of a query, from its plan (nothing runs).
pub(crate) fn describe(
    catalog: Arc<Catalog>,
    current_db: Option<&str>,
    query: Query,
    names: &[Option<String>],
) -> Result<Vec<Column>> {
    let ctx = context(
        catalog,
        Arc::new(Scope::new(Arc::new(PlanOnly(None)), None)),
        current_db,
    );
    let statement =
        datafusion::sql::parser::Statement::Statement(Box::new(Statement::Query(Box::new(query))));
    let plan = block_on(ctx.state().statement_to_plan(statement))
        .map_err(|e| query_error(e, current_db))?;
    let schema: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
    Ok(columns(&schema, names))
}

/// A source that reads no rows, for planning only; it answers with the
/// statistics of the source it stands for, if any.
pub(crate) struct PlanOnly(pub Option<Arc<dyn RowSource>>);

impl RowSource for PlanOnly {
    fn rows(&self, _: &TableInfo, _: &HandleSet) -> Result<Vec<(Vec<u8>, Row)>> {
        Ok(Vec::new())
    }

    fn rows_between(
        &self,
        _: &TableInfo,
        _: &[u8],
        _: &[u8],
        _: usize,
    ) -> Result<Vec<(Vec<u8>, Row)>> {
        Ok(Vec::new())
    }

    fn rows_by_index(
        &self,
        _: &TableInfo,
        _: &IndexInfo,
        _: &[Vec<Datum>],
        _: Option<(i64, i64)>,
    ) -> Result<Vec<(Vec<u8>, Row)>> {
        Ok(Vec::new())
    }

    fn stats(&self, table: &TableInfo) -> Option<crate::stats::TableStats> {
        self.0.as_ref().and_then(|s| s.stats(table))
    }

    fn columnar_available(&self, table: &TableInfo, schema: &SchemaRef, wait: bool) -> bool {
        self.0
            .as_ref()
            .is_some_and(|s| s.columnar_available(table, schema, wait))
    }

    fn has_writes(&self, table: &TableInfo) -> bool {
        self.0.as_ref().is_some_and(|s| s.has_writes(table))
    }

    fn columnar_scan(&self, _table: &TableInfo, request: ScanRequest) -> Result<ScanOutput> {
        let _ = request;
        Ok(ScanOutput::empty(Arc::new(Schema::empty())))
    }
}

/// A DataFusion context whose catalog `def` is Duet's.
pub(crate) fn context(
    catalog: Arc<Catalog>,
    scope: Arc<Scope>,
    current_db: Option<&str>,
) -> SessionContext {
    let mut config = SessionConfig::new()
        .with_default_catalog_and_schema(CATALOG, current_db.unwrap_or(""))
        .with_create_default_catalog_and_schema(false)
        .with_target_partitions(2)
        .with_information_schema(false);
    // MySQL sorts NULL below every value: first ascending, last descending.
    config.options_mut().sql_parser.default_null_ordering = "nulls_min".into();
    // Building a session state registers every function and rule: do it
    // once, and give each statement a copy with its own catalog.
    static TEMPLATE: OnceLock<SessionState> = OnceLock::new();
    let template = TEMPLATE.get_or_init(|| {
        // MySQL's number-with-string comparisons go before type coercion.
        let mut rules = datafusion::optimizer::Analyzer::new().rules;
        rules.insert(0, Arc::new(crate::coerce::MysqlComparisons));
        // Then text of `_ci` columns compares by its collation's sort key.
        rules.insert(1, Arc::new(crate::collate::Collations));
        let mut state = SessionStateBuilder::new()
            .with_default_features()
            .with_analyzer_rules(rules)
            .build();
        for f in crate::functions::all()
            .into_iter()
            .chain(crate::mysqlfn::all())
            .chain(crate::strfn::all())
            .chain(crate::timefn::all())
            .chain(crate::json::all())
            .chain(crate::collation::functions())
        {
            // Registering a new name replaces nothing.
            let _ = datafusion::execution::FunctionRegistry::register_udf(&mut state, Arc::new(f));
        }
        for f in crate::json::aggregates() {
            let _ = datafusion::execution::FunctionRegistry::register_udaf(&mut state, Arc::new(f));
        }
        state
    });
    let runtime = scope.bounds.as_ref().and_then(statement_runtime);
    // Table scans find the statement's snapshot and engines here.
    let config = config.with_extension(Arc::clone(&scope));
    let mut builder = SessionStateBuilder::new_from_existing(template.clone())
        .with_config(config)
        .with_catalog_list(Arc::new(MemoryCatalogProviderList::new()));
    if let Some(runtime) = runtime {
        builder = builder.with_runtime_env(runtime);
    }
    let state = builder.build();
    let ctx = SessionContext::new_with_state(state);
    if let Some(bounds) = &scope.bounds {
        ctx.register_udf(crate::interrupt::Sleep::udf(Arc::clone(&bounds.interrupt)));
    }
    ctx.register_catalog(CATALOG, Arc::new(DuetCatalog { catalog, scope }));
    ctx
}

/// The memory pool and spill files of one statement: its operators may
/// hold `mem_quota` bytes in all (shared fairly among those that can
/// spill), then spill, or fail with the largest holders named.
fn statement_runtime(bounds: &Bounds) -> Option<Arc<RuntimeEnv>> {
    let pool = TrackConsumersPool::new(
        FairSpillPool::new(bounds.mem_quota),
        std::num::NonZeroUsize::new(3)?,
    );
    let mut env = RuntimeEnvBuilder::new().with_memory_pool(Arc::new(pool));
    env.disk_manager = bounds.spill.clone();
    env.build_arc().ok()
}

/// Duet's own error, if `e` carries one (raised by a table provider).
fn duet_error(e: DataFusionError) -> std::result::Result<Error, DataFusionError> {
    match e {
        DataFusionError::External(inner) => match inner.downcast::<Error>() {
            Ok(e) => Ok(*e),
            Err(other) => Err(DataFusionError::External(other)),
        },
        DataFusionError::Context(what, inner) => {
            duet_error(*inner).map_err(|e| DataFusionError::Context(what, Box::new(e)))
        }
        other => Err(other),
    }
}

pub(crate) fn query_error(e: DataFusionError, current_db: Option<&str>) -> Error {
    let e = match duet_error(e) {
        Ok(e) => return e,
        Err(e) => e,
    };
    if let DataFusionError::ResourcesExhausted(what) = e.find_root() {
        return Error::MemoryQuotaExceeded(what.clone());
    }
    let e = e.find_root().to_string();
    if e.contains("Scalar subquery returned more than one row") {
        return Error::SubqueryRows;
    }
    let text = e
        .strip_prefix("Error during planning: ")
        .or_else(|| e.strip_prefix("Schema error: "))
        .unwrap_or(&e)
        .to_string();
    if let Some(rest) = text.strip_prefix("table '")
        && let Some(name) = rest.split('\'').next()
    {
        let parts: Vec<&str> = name.split('.').collect();
        return match (parts.as_slice(), current_db) {
            ([_, "", _], None) => Error::NoDatabaseSelected,
            ([_, db, t], _) => Error::NoSuchTable {
                database: db.to_string(),
                table: t.to_string(),
            },
            _ => Error::Query(text),
        };
    }
    if let Some(rest) = text.strip_prefix("No field named ") {
        // `z.`, `t.z.` or `"t.z".`, then perhaps a suggestion.
        let name = match rest.strip_prefix('"') {
            Some(quoted) => quoted.split('"').next().unwrap_or(""),
            None => rest
                .split(char::is_whitespace)
                .next()
                .unwrap_or("")
                .trim_end_matches('.'),
        };
        let column = name
            .rsplit('.')
            .next()
            .unwrap_or("")
            .trim_matches('"')
            .to_string();
        return Error::UnknownColumnIn {
            column,
            clause: "field list".into(),
        };
    }
    if text.contains("Ambiguous reference") {
        // `… to unqualified field a` or `… field 'a'`.
        let name = text
            .split('\'')
            .nth(1)
            .or_else(|| text.rsplit(' ').next())
            .unwrap_or("");
        return Error::AmbiguousColumn(name.to_string());
    }
    if let Some(rest) = text.strip_prefix("Invalid function '") {
        let name = rest.split('\'').next().unwrap_or("");
        let qualified = match current_db {
            Some(db) => format!("{db}.{name}"),
            None => name.to_string(),
        };
        return Error::UnknownFunction(qualified);
    }
    if text.contains("must appear in the GROUP BY clause")
        || text.contains("must be in GROUP BY or an aggregate function")
    {
        return Error::NotGrouped(text);
    }
    if text.starts_with("This feature is not implemented") {
        return Error::not_supported(text);
    }
    Error::Query(text)
}

struct DuetCatalog {
    catalog: Arc<Catalog>,
    scope: Arc<Scope>,
}

impl fmt::Debug for DuetCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DuetCatalog")
            .field("version", &self.catalog.version)
            .finish()
    }
}

impl CatalogProvider for DuetCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.catalog
            .databases()
            .map(|d| d.name.to_ascii_lowercase())
            .chain([infoschema::NAME.to_string()])
            .collect()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if name.eq_ignore_ascii_case(infoschema::NAME) {
            return Some(Arc::new(InfoSchema {
                catalog: Arc::clone(&self.catalog),
                scope: Arc::clone(&self.scope),
            }));
        }
        let db = self.catalog.database(name)?;
        Some(Arc::new(DuetSchema {
            database: db.name.clone(),
            catalog: Arc::clone(&self.catalog),
            scope: Arc::clone(&self.scope),
        }))
    }
}

/// `information_schema`, built from the statement's catalog.
struct InfoSchema {
    catalog: Arc<Catalog>,
    scope: Arc<Scope>,
}

impl fmt::Debug for InfoSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InfoSchema").finish_non_exhaustive()
    }
}

#[async_trait]
impl SchemaProvider for InfoSchema {
    fn table_names(&self) -> Vec<String> {
        infoschema::TABLES.iter().map(|t| t.to_string()).collect()
    }

    async fn table(
        &self,
        name: &str,
    ) -> std::result::Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        self.scope.catalog_read.store(true, Ordering::Relaxed);
        Ok(infoschema::table(
            &self.catalog,
            self.scope.source.as_ref(),
            &name.to_ascii_lowercase(),
        ))
    }

    fn table_exist(&self, name: &str) -> bool {
        infoschema::TABLES.contains(&name.to_ascii_lowercase().as_str())
    }
}

struct DuetSchema {
    database: String,
    catalog: Arc<Catalog>,
    scope: Arc<Scope>,
}

impl fmt::Debug for DuetSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DuetSchema")
            .field("database", &self.database)
            .finish()
    }
}

#[async_trait]
impl SchemaProvider for DuetSchema {
    fn table_names(&self) -> Vec<String> {
        self.catalog
            .tables(&self.database)
            .iter()
            .map(|t| t.name.to_ascii_lowercase())
            .collect()
    }

    async fn table(
        &self,
        name: &str,
    ) -> std::result::Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        let Some(t) = self.catalog.table(&self.database, name) else {
            return Ok(None);
        };
        if let Some(view) = &t.view {
            return self.view(view).await.map(Some);
        }
        let with_handle = self.scope.handle_table == Some(t.id);
        Ok(Some(Arc::new(RowTable {
            schema: arrow_schema(t, &self.database, with_handle),
            info: Arc::clone(t),
            database: self.database.clone(),
            with_handle,
        }) as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.catalog.table(&self.database, name).is_some()
    }
}

/// Field metadata naming a table column's declaration, so that a result
/// column that is the column itself is described to clients as declared.
const DECLARED_TYPE: &str = "duet.type";
const DECLARED_COLUMN: &str = "duet.column";
const DECLARED_TABLE: &str = "duet.table";
const DECLARED_DATABASE: &str = "duet.database";

impl DuetSchema {
    /// A view, planned in this statement's scope (its snapshot and
    /// routing), its columns named as the view declares.
    async fn view(
        &self,
        view: &crate::catalog::ViewDef,
    ) -> std::result::Result<Arc<dyn TableProvider>, DataFusionError> {
        let external = |e: Error| DataFusionError::External(Box::new(e));
        let Statement::Query(mut query) = crate::session::parse_one(&view.sql).map_err(external)?
        else {
            return Err(external(Error::Internal(
                "a view that is not a query".into(),
            )));
        };
        prepare(&view.sql, &mut query).map_err(external)?;
        let ctx = context(
            Arc::clone(&self.catalog),
            Arc::clone(&self.scope),
            Some(&self.database),
        );
        let statement =
            datafusion::sql::parser::Statement::Statement(Box::new(Statement::Query(query)));
        let plan = ctx.state().statement_to_plan(statement).await?;
        let columns: Vec<DfExpr> = plan
            .schema()
            .columns()
            .into_iter()
            .zip(&view.columns)
            .map(|(c, name)| DfExpr::Column(c).alias(name.to_ascii_lowercase()))
            .collect();
        let plan = datafusion::logical_expr::LogicalPlanBuilder::from(plan)
            .project(columns)?
            .build()?;
        Ok(Arc::new(datafusion::catalog::view::ViewTable::new(
            plan,
            Some(view.sql.clone()),
        )))
    }
}

/// The Arrow schema of a table: one field per column, lower-case names,
/// and the row key last if `with_handle`.
pub(crate) fn arrow_schema(t: &TableInfo, database: &str, with_handle: bool) -> SchemaRef {
    let mut fields: Vec<Field> = t
        .columns
        .iter()
        .map(|c| {
            let declared = std::collections::HashMap::from([
                (
                    DECLARED_TYPE.to_string(),
                    serde_json::to_string(&c.ty).unwrap_or_default(),
                ),
                (DECLARED_COLUMN.to_string(), c.name.clone()),
                (DECLARED_TABLE.to_string(), t.name.clone()),
                (DECLARED_DATABASE.to_string(), database.to_string()),
            ]);
            let mut declared = declared;
            if c.ty.kind == crate::types::TypeKind::Json {
                declared.insert(crate::json::JSON_META.to_string(), "1".to_string());
            }
            if !c.collation.is_binary() {
                declared.insert(
                    crate::collation::COLLATION_META.to_string(),
                    c.collation.name().to_string(),
                );
            }
            Field::new(c.name.to_ascii_lowercase(), c.ty.arrow(), c.nullable)
                .with_metadata(declared)
        })
        .collect();
    if with_handle {
        fields.push(Field::new(HANDLE_COLUMN, ArrowType::Binary, false));
    }
    Arc::new(Schema::new(fields))
}

/// A table read at the transaction's snapshot, from the row store or the
/// columnar replica as the router chooses.
struct RowTable {
    info: Arc<TableInfo>,
    database: String,
    schema: SchemaRef,
    with_handle: bool,
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
                                    Some(crate::table::key_part(&self.info, index, part, &d))
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
            let expected = lookup.expected_rows(stats.as_ref());
            match (expected, table_rows) {
                (Some(e), Some(rows)) if !lookup.clustered && e * INDEX_LOOKUP_COST > rows => None,
                (None, _) if lookup.open_range_only() => None,
                _ => Some((lookup, expected)),
            }
        });
        // Where both engines may serve, the cheaper one: the row store's
        // key ranges and index lookups read only what they need; the
        // columnar replica reads a whole table far faster per row, but
        // waits for its learner first. Without statistics, rules: a key
        // range or lookup goes to the row store, a full scan to columnar.
        let columnar = match choice {
            Choice::Only(engine) => engine == Engine::Columnar,
            Choice::Cost => {
                let row_cost = match (&key_rows, &lookup) {
                    (Some(rows), _) => *rows,
                    (None, Some((lookup, expected))) => expected.map(|e| {
                        e * if lookup.clustered {
                            1.0
                        } else {
                            INDEX_LOOKUP_COST
                        }
                    }),
                    (None, None) => table_rows.or(Some(f64::INFINITY)),
                };
                let columnar_cost = table_rows.map(|r| COLUMNAR_START_COST + r * COLUMNAR_ROW_COST);
                match (row_cost, columnar_cost) {
                    (Some(row), Some(columnar)) => columnar < row,
                    (row, _) => row == Some(f64::INFINITY),
                }
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
        enum Read {
            Keys(Vec<u8>, Vec<u8>),
            Rows(Result<Vec<(Vec<u8>, Row)>>),
        }
        let (how, path, estimated) = match (&handles, lookup) {
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
            (None, Some((lookup, expected))) => (
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
                expected,
            ),
            (None, None) => {
                let (start, end) = table::table_row_keys(&self.info);
                (Read::Keys(start, end), Path::FullScan, table_rows)
            }
        };
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
        };
        let out = source
            .columnar_scan(&self.info, request)
            .map_err(external)?;
        let schema = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => Arc::clone(&self.schema),
        };
        // The replica's batches, under this statement's field metadata.
        let read = Arc::new(AtomicUsize::new(0));
        let exec = crate::scans::columnar_plan(schema, out.partitions, &read)?;
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
fn is_comparison(f: &DfExpr) -> bool {
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

/// How many sequential row reads one index lookup's row costs (an index
/// entry, then the row by key).
const INDEX_LOOKUP_COST: f64 = 3.0;

/// What one row costs the columnar replica's scan, in row-store row reads
/// (it scans whole tables some 10 to 40 times faster per row).
const COLUMNAR_ROW_COST: f64 = 0.1;

/// What a columnar read costs before its first row, in row-store row
/// reads: the wait for the learner to apply up to the read timestamp.
const COLUMNAR_START_COST: f64 = 1000.0;

/// Value prefixes one lookup may read at most (the product of the `IN`
/// lists of the pinned columns); past it, fewer columns are pinned.
const MAX_LOOKUP_PREFIXES: usize = 1024;

/// An index lookup the filters allow: the index, the ids of its leading
/// columns they pin, and the value prefixes to read.
struct Lookup<'a> {
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
    fn expected_rows(&self, stats: Option<&crate::stats::TableStats>) -> Option<f64> {
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
fn index_datum(
    column: &crate::catalog::ColumnInfo,
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
    let exact = crate::types::value_text(&crate::types::datum_to_value(&datum))
        == crate::types::value_text(&value);
    exact.then_some(datum)
}

/// Rows of `table` as one Arrow batch of `schema`.
pub(crate) fn rows_to_batch(
    table: &TableInfo,
    schema: &SchemaRef,
    rows: &[(Vec<u8>, Row)],
    with_handle: bool,
) -> Result<RecordBatch> {
    let mut arrays = table_arrays(table, rows.iter().map(|(_, r)| r))?;
    if with_handle {
        let mut keys = BinaryBuilder::new();
        for (k, _) in rows {
            keys.append_value(k);
        }
        arrays.push(Arc::new(keys.finish()));
    }
    RecordBatch::try_new(Arc::clone(schema), arrays)
        .map_err(|e| Error::Internal(format!("building a batch: {e}")))
}

/// Rows of `table` (no keys) as one Arrow batch of `schema`: the columnar
/// replica builds its columns with this, so both engines convert alike.
pub(crate) fn datums_to_batch(
    table: &TableInfo,
    schema: &SchemaRef,
    rows: &[Row],
) -> Result<RecordBatch> {
    let arrays = table_arrays(table, rows.iter())?;
    RecordBatch::try_new_with_options(
        Arc::clone(schema),
        arrays,
        &datafusion::arrow::record_batch::RecordBatchOptions::new()
            .with_row_count(Some(rows.len())),
    )
    .map_err(|e| Error::Internal(format!("building a batch: {e}")))
}

/// One Arrow array per column of `table`.
fn table_arrays<'a>(
    table: &TableInfo,
    rows: impl Iterator<Item = &'a Row> + Clone,
) -> Result<Vec<ArrayRef>> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| column_array(&c.ty.arrow(), rows.clone().map(|r| &r[i])))
        .collect()
}

fn column_array<'a>(ty: &ArrowType, values: impl Iterator<Item = &'a Datum>) -> Result<ArrayRef> {
    let bad = |d: &Datum| Error::Internal(format!("a {ty} column holds {d:?}"));
    Ok(match ty {
        ArrowType::Int64 => {
            let mut b = Int64Builder::new();
            for d in values {
                match d {
                    Datum::Null => b.append_null(),
                    Datum::Int(v) => b.append_value(*v),
                    Datum::UInt(v) => b.append_value(*v as i64),
                    other => return Err(bad(other)),
                }
            }
            Arc::new(b.finish())
        }
        ArrowType::UInt64 => {
            let mut b = UInt64Builder::new();
            for d in values {
                match d {
                    Datum::Null => b.append_null(),
                    Datum::UInt(v) => b.append_value(*v),
                    Datum::Int(v) => b.append_value(*v as u64),
                    other => return Err(bad(other)),
                }
            }
            Arc::new(b.finish())
        }
        ArrowType::Float64 => {
            let mut b = Float64Builder::new();
            for d in values {
                match d {
                    Datum::Null => b.append_null(),
                    Datum::Float(v) => b.append_value(*v),
                    other => return Err(bad(other)),
                }
            }
            Arc::new(b.finish())
        }
        ArrowType::Decimal128(p, s) => {
            let mut b = Decimal128Builder::new();
            for d in values {
                match d {
                    Datum::Null => b.append_null(),
                    Datum::Decimal(text) => b.append_value(decimal_to_i128(text, *s as usize)?),
                    other => return Err(bad(other)),
                }
            }
            Arc::new(
                b.finish()
                    .with_precision_and_scale(*p, *s)
                    .map_err(|e| Error::Internal(e.to_string()))?,
            )
        }
        ArrowType::Utf8 => {
            let mut b = StringBuilder::new();
            for d in values {
                match d {
                    Datum::Null => b.append_null(),
                    Datum::Bytes(v) => b.append_value(String::from_utf8_lossy(v)),
                    Datum::Time { .. } => {
                        b.append_value(crate::types::value_text(&crate::types::datum_to_value(d)))
                    }
                    other => return Err(bad(other)),
                }
            }
            Arc::new(b.finish())
        }
        ArrowType::Binary => {
            let mut b = BinaryBuilder::new();
            for d in values {
                match d {
                    Datum::Null => b.append_null(),
                    Datum::Bytes(v) => b.append_value(v),
                    other => return Err(bad(other)),
                }
            }
            Arc::new(b.finish())
        }
        ArrowType::Date32 => {
            let mut b = Date32Builder::new();
            for d in values {
                match d {
                    Datum::Date { year, month, day } if *month > 0 && *day > 0 => b.append_value(
                        days_from_civil(i64::from(*year), u32::from(*month), u32::from(*day))
                            as i32,
                    ),
                    Datum::Null | Datum::Date { .. } => b.append_null(),
                    other => return Err(bad(other)),
                }
            }
            Arc::new(b.finish())
        }
        ArrowType::Timestamp(TimeUnit::Microsecond, None) => {
            let mut b = TimestampMicrosecondBuilder::new();
            for d in values {
                match d {
                    Datum::DateTime {
                        year,
                        month,
                        day,
                        hour,
                        minute,
                        second,
                        micros,
                    } if *month > 0 && *day > 0 => {
                        let days =
                            days_from_civil(i64::from(*year), u32::from(*month), u32::from(*day));
                        let secs = days * 86_400
                            + i64::from(*hour) * 3600
                            + i64::from(*minute) * 60
                            + i64::from(*second);
                        b.append_value(secs * 1_000_000 + i64::from(*micros));
                    }
                    Datum::Null | Datum::DateTime { .. } => b.append_null(),
                    other => return Err(bad(other)),
                }
            }
            Arc::new(b.finish())
        }
        other => return Err(Error::Internal(format!("no Arrow column for {other}"))),
    })
}

/// A decimal literal as an Arrow Decimal128 value of `scale`.
fn decimal_to_i128(text: &str, scale: usize) -> Result<i128> {
    let rounded = crate::types::round_decimal(text, scale)
        .ok_or_else(|| Error::Internal(format!("bad stored decimal {text:?}")))?;
    rounded
        .replace('.', "")
        .parse()
        .map_err(|_| Error::Internal(format!("decimal {text:?} too wide")))
}

/// Client column descriptions of a result schema.
fn columns(schema: &SchemaRef, names: &[Option<String>]) -> Vec<Column> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let name = names.get(i).cloned().flatten().unwrap_or_else(|| {
                let name = f.name();
                name.split_once(DUPLICATE_NAME)
                    .map_or(name.clone(), |(n, _)| n.to_string())
            });
            declared(&name, f).unwrap_or_else(|| {
                if crate::json::is_json_field(f) {
                    Column::expr(name, FieldType::Json)
                } else {
                    column_for(name, f.data_type())
                }
            })
        })
        .collect()
}

/// A result column that is a table column, described as declared (type,
/// width, sign, origin), if `field` carries the declaration and still has
/// the column's type.
fn declared(name: &str, field: &Field) -> Option<Column> {
    let meta = field.metadata();
    let ty: crate::types::ColumnType = serde_json::from_str(meta.get(DECLARED_TYPE)?).ok()?;
    if ty.arrow() != *field.data_type() {
        return None;
    }
    Some(declared_column(
        name,
        &ty,
        field.is_nullable(),
        meta.get(DECLARED_COLUMN)?,
        meta.get(DECLARED_TABLE)?,
        meta.get(DECLARED_DATABASE)?,
    ))
}

/// The client's description of a result column that is table column
/// `column` of `database.table`, shown as `name`.
pub(crate) fn declared_column(
    name: &str,
    ty: &crate::types::ColumnType,
    nullable: bool,
    column: &str,
    table: &str,
    database: &str,
) -> Column {
    let mut c = Column::expr(name, ty.field_type());
    c.org_name = column.to_string();
    c.table = table.to_string();
    c.org_table = table.to_string();
    c.schema = database.to_string();
    c.unsigned = ty.unsigned;
    c.not_null = !nullable;
    c.binary = ty.is_binary();
    c.decimals = ty.scale;
    if c.field_type == FieldType::NewDecimal {
        // Digits, the point and the sign, as MySQL counts a decimal's width.
        c.length = u32::from(ty.precision) + 1 + u32::from(ty.scale > 0);
    } else if (ty.is_text() || ty.is_binary()) && ty.length > 0 {
        c.length = ty.length;
    } else {
        // MySQL's display widths: digits and sign.
        let signed = u32::from(!ty.unsigned);
        c.length = match c.field_type {
            FieldType::Tiny => 3 + signed,
            FieldType::Short => 5 + signed,
            FieldType::Int24 => 8 + signed,
            FieldType::Long => 10 + signed,
            FieldType::LongLong => 20,
            FieldType::Year => 4,
            FieldType::Float => 12,
            FieldType::Double => 22,
            _ => c.length,
        };
    }
    c
}

/// Arrow results as a client result set.
/// The rows of a batch as client values.
fn batch_rows(batch: &RecordBatch) -> Result<Vec<Vec<Value>>> {
    (0..batch.num_rows())
        .map(|r| {
            batch
                .columns()
                .iter()
                .map(|a| array_value(a, r))
                .collect::<Result<Vec<_>>>()
        })
        .collect()
}

pub(crate) fn column_for(name: String, ty: &ArrowType) -> Column {
    let field_type = match ty {
        ArrowType::Int8 | ArrowType::Int16 | ArrowType::Int32 | ArrowType::Int64 => {
            FieldType::LongLong
        }
        ArrowType::UInt8 | ArrowType::UInt16 | ArrowType::UInt32 | ArrowType::UInt64 => {
            FieldType::LongLong
        }
        ArrowType::Boolean => FieldType::LongLong,
        ArrowType::Float16 | ArrowType::Float32 | ArrowType::Float64 => FieldType::Double,
        ArrowType::Decimal128(..) | ArrowType::Decimal256(..) => FieldType::NewDecimal,
        ArrowType::Binary | ArrowType::LargeBinary | ArrowType::BinaryView => FieldType::Blob,
        ArrowType::Date32 | ArrowType::Date64 => FieldType::Date,
        ArrowType::Timestamp(..) => FieldType::DateTime,
        ArrowType::Null => FieldType::Null,
        _ => FieldType::VarString,
    };
    let mut c = Column::expr(name, field_type);
    c.unsigned = matches!(
        ty,
        ArrowType::UInt8 | ArrowType::UInt16 | ArrowType::UInt32 | ArrowType::UInt64
    );
    if let ArrowType::Decimal128(p, s) = ty {
        c.decimals = (*s).max(0) as u8;
        c.length = u32::from(*p) + 2;
    }
    c
}

/// One cell of an Arrow array as a client value.
fn array_value(array: &ArrayRef, row: usize) -> Result<Value> {
    use datafusion::arrow::array::*;
    // A `NullArray` has no validity buffer: `is_null` says false.
    if array.is_null(row) || array.data_type() == &ArrowType::Null {
        return Ok(Value::Null);
    }
    let any = array.as_any();
    macro_rules! get {
        ($t:ty) => {
            any.downcast_ref::<$t>()
                .ok_or_else(|| Error::Internal("array type mismatch".into()))?
                .value(row)
        };
    }
    Ok(match array.data_type() {
        ArrowType::Boolean => Value::Int(i64::from(get!(BooleanArray))),
        ArrowType::Int8 => Value::Int(i64::from(get!(Int8Array))),
        ArrowType::Int16 => Value::Int(i64::from(get!(Int16Array))),
        ArrowType::Int32 => Value::Int(i64::from(get!(Int32Array))),
        ArrowType::Int64 => Value::Int(get!(Int64Array)),
        ArrowType::UInt8 => Value::UInt(u64::from(get!(UInt8Array))),
        ArrowType::UInt16 => Value::UInt(u64::from(get!(UInt16Array))),
        ArrowType::UInt32 => Value::UInt(u64::from(get!(UInt32Array))),
        ArrowType::UInt64 => Value::UInt(get!(UInt64Array)),
        ArrowType::Float32 => Value::Double(f64::from(get!(Float32Array))),
        ArrowType::Float64 => Value::Double(get!(Float64Array)),
        ArrowType::Decimal128(_, s) => {
            let v = get!(Decimal128Array);
            Value::Decimal(format_decimal(v, *s))
        }
        ArrowType::Utf8 => Value::Str(get!(StringArray).to_string()),
        ArrowType::LargeUtf8 => Value::Str(get!(LargeStringArray).to_string()),
        ArrowType::Utf8View => Value::Str(get!(StringViewArray).to_string()),
        ArrowType::Binary => Value::Bytes(get!(BinaryArray).to_vec()),
        ArrowType::LargeBinary => Value::Bytes(get!(LargeBinaryArray).to_vec()),
        ArrowType::BinaryView => Value::Bytes(get!(BinaryViewArray).to_vec()),
        ArrowType::Date32 => {
            let (y, m, d) = civil_from_days(i64::from(get!(Date32Array)));
            Value::Date(Date {
                year: y as u16,
                month: m as u8,
                day: d as u8,
            })
        }
        ArrowType::Timestamp(unit, _) => {
            let raw = match unit {
                TimeUnit::Second => get!(TimestampSecondArray) * 1_000_000,
                TimeUnit::Millisecond => get!(TimestampMillisecondArray) * 1000,
                TimeUnit::Microsecond => get!(TimestampMicrosecondArray),
                TimeUnit::Nanosecond => get!(TimestampNanosecondArray) / 1000,
            };
            let (days, micros) = (
                raw.div_euclid(86_400_000_000),
                raw.rem_euclid(86_400_000_000),
            );
            let (y, m, d) = civil_from_days(days);
            let secs = micros / 1_000_000;
            Value::DateTime(DateTime {
                date: Date {
                    year: y as u16,
                    month: m as u8,
                    day: d as u8,
                },
                hour: (secs / 3600) as u8,
                minute: ((secs / 60) % 60) as u8,
                second: (secs % 60) as u8,
                micros: (micros % 1_000_000) as u32,
            })
        }
        _ => {
            let formatter = datafusion::arrow::util::display::ArrayFormatter::try_new(
                array.as_ref(),
                &Default::default(),
            )
            .map_err(|e| Error::Internal(e.to_string()))?;
            Value::Str(formatter.value(row).to_string())
        }
    })
}

/// An unscaled Decimal128 value as text with `scale` digits.
fn format_decimal(v: i128, scale: i8) -> String {
    let negative = v < 0;
    let digits = v.unsigned_abs().to_string();
    let scale = scale.max(0) as usize;
    let text = if scale == 0 {
        digits
    } else if digits.len() > scale {
        format!(
            "{}.{}",
            &digits[..digits.len() - scale],
            &digits[digits.len() - scale..]
        )
    } else {
        format!("0.{}{}", "0".repeat(scale - digits.len()), digits)
    };
    if negative { format!("-{text}") } else { text }
}

/// Readies a parsed MySQL query for DataFusion: identifiers fold to lower
/// case (MySQL column names ignore case; Duet's table names do too), and
/// MySQL-only syntax becomes its standard form. Returns the client's column
/// name for each select item of the outermost query (`None` where the
/// engine's own name is right: `*`).
pub(crate) fn prepare(sql: &str, query: &mut Query) -> Result<Vec<Option<String>>> {
    let names = output_names(sql, query);
    if let SetExpr::Select(select) = query.body.as_mut() {
        unique_output_names(&mut select.projection);
    }
    let _ = query.visit(&mut Prepare);
    crate::decorrelate::decorrelate(query);
    Ok(names)
}

/// What follows a result column's name in the internal alias that keeps
/// it apart from another of the same name (stripped from what the client
/// sees, see [`columns`]).
const DUPLICATE_NAME: &str = "__duet_dup";

/// MySQL allows two result columns with one name; DataFusion does not.
/// Computed columns get internal aliases (the client sees the names of
/// [`output_names`]), and a column whose name an earlier one took — or,
/// beside a wildcard, any plain column, which the wildcard may also name —
/// an alias of its name with [`DUPLICATE_NAME`] and its position.
fn unique_output_names(projection: &mut [SelectItem]) {
    let wildcard = projection.iter().any(|i| {
        matches!(
            i,
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
        )
    });
    let mut seen = std::collections::HashSet::new();
    for (i, item) in projection.iter_mut().enumerate() {
        let name = match item {
            SelectItem::UnnamedExpr(Expr::Identifier(id)) => id.value.clone(),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => {
                parts.last().map(|p| p.value.clone()).unwrap_or_default()
            }
            SelectItem::UnnamedExpr(e) => {
                *item = SelectItem::ExprWithAlias {
                    expr: e.clone(),
                    alias: Ident::new(format!("__duet_col{i}")),
                };
                continue;
            }
            SelectItem::ExprWithAlias { alias, .. } => alias.value.clone(),
            _ => continue,
        };
        let beside_wildcard = wildcard && matches!(item, SelectItem::UnnamedExpr(_));
        if seen.insert(name.to_ascii_lowercase()) && !beside_wildcard {
            continue;
        }
        let alias = Ident::new(format!("{name}{DUPLICATE_NAME}{i}"));
        match item {
            SelectItem::UnnamedExpr(e) => {
                *item = SelectItem::ExprWithAlias {
                    expr: e.clone(),
                    alias,
                }
            }
            SelectItem::ExprWithAlias { alias: a, .. } => *a = alias,
            _ => {}
        }
    }
}

pub(crate) fn output_names(sql: &str, query: &Query) -> Vec<Option<String>> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Vec::new();
    };
    if select.projection.iter().any(|i| {
        matches!(
            i,
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
        )
    }) {
        return Vec::new();
    }
    let texts = crate::names::select_items(sql).filter(|t| t.len() == select.projection.len());
    select
        .projection
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
            SelectItem::UnnamedExpr(Expr::Identifier(i)) => Some(i.value.clone()),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => {
                parts.last().map(|i| i.value.clone())
            }
            SelectItem::UnnamedExpr(e) => Some(match &texts {
                Some(t) => t[i].clone(),
                None => crate::session::expr_text(sql, e),
            }),
            _ => None,
        })
        .collect()
}

fn fold(ident: &mut Ident) {
    ident.value = ident.value.to_ascii_lowercase();
    ident.quote_style = None;
}

/// A table alias and the column names it declares, folded.
fn fold_alias(alias: &mut ast::TableAlias) {
    fold(&mut alias.name);
    for column in &mut alias.columns {
        fold(&mut column.name);
    }
}

struct Prepare;

impl VisitorMut for Prepare {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let Some(LimitClause::OffsetCommaLimit { offset, limit }) = query.limit_clause.clone() {
            query.limit_clause = Some(LimitClause::LimitOffset {
                limit: Some(limit),
                offset: Some(ast::Offset {
                    value: offset,
                    rows: ast::OffsetRows::None,
                }),
                limit_by: Vec::new(),
            });
        }
        // Column aliases and CTE names match in any case, quoted or not
        // (the client's column names were taken from the text before).
        if let Some(with) = query.with.as_mut() {
            for cte in &mut with.cte_tables {
                fold_alias(&mut cte.alias);
            }
        }
        if let SetExpr::Select(select) = query.body.as_mut() {
            for item in &mut select.projection {
                if let SelectItem::ExprWithAlias { alias, .. } = item {
                    fold(alias);
                }
            }
        }
        // MySQL takes any value as a condition (non-zero is true).
        if let SetExpr::Select(select) = query.body.as_mut() {
            for condition in [select.selection.as_mut(), select.having.as_mut()]
                .into_iter()
                .flatten()
            {
                as_condition(condition);
            }
            for table in &mut select.from {
                for join in &mut table.joins {
                    use ast::JoinOperator as J;
                    if let J::Join(c)
                    | J::Inner(c)
                    | J::Left(c)
                    | J::LeftOuter(c)
                    | J::Right(c)
                    | J::RightOuter(c)
                    | J::FullOuter(c) = &mut join.join_operator
                        && let ast::JoinConstraint::On(on) = c
                    {
                        as_condition(on);
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &mut ast::ObjectName) -> ControlFlow<()> {
        for part in relation.0.iter_mut() {
            if let ObjectNamePart::Identifier(i) = part {
                fold(i);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            alias: Some(alias), ..
        }
        | TableFactor::Derived {
            alias: Some(alias), ..
        } = factor
        {
            fold_alias(alias);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        bind_json_arrows(expr);
        match expr {
            Expr::Identifier(i) => fold(i),
            Expr::CompoundIdentifier(parts) => parts.iter_mut().for_each(fold),
            Expr::Function(f) => {
                // `SUM(a > 0)` counts: the truth values as numbers.
                let name = f.name.to_string();
                if (name.eq_ignore_ascii_case("sum") || name.eq_ignore_ascii_case("avg"))
                    && let ast::FunctionArguments::List(list) = &mut f.args
                {
                    for arg in &mut list.args {
                        if let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) = arg {
                            as_number(e);
                        }
                    }
                }
                if let Some(rewritten) = mysql_function(f) {
                    *expr = rewritten;
                }
            }
            Expr::BinaryOp { left, op, right } => {
                if matches!(
                    op,
                    ast::BinaryOperator::And | ast::BinaryOperator::Or | ast::BinaryOperator::Xor
                ) {
                    as_condition(left);
                    as_condition(right);
                    // Logical XOR: true when exactly one side is, NULL with a NULL.
                    if *op == ast::BinaryOperator::Xor {
                        *op = ast::BinaryOperator::NotEq;
                    }
                } else {
                    // A truth value compared with anything but another is
                    // the number 1 or 0.
                    let mixed =
                        is_comparison_operator(op) && is_truth_value(left) != is_truth_value(right);
                    if is_arithmetic(op) || mixed {
                        as_number(left);
                        as_number(right);
                    }
                    if let Some(rewritten) = mysql_operator(left, op, right) {
                        *expr = rewritten;
                    }
                }
            }
            Expr::RLike {
                negated,
                expr: operand,
                pattern,
                ..
            } => {
                let matches = call_expr(
                    "regexp_like",
                    vec![(**operand).clone(), (**pattern).clone()],
                );
                *expr = if *negated {
                    Expr::UnaryOp {
                        op: ast::UnaryOperator::Not,
                        expr: Box::new(matches),
                    }
                } else {
                    matches
                };
            }
            Expr::Convert {
                expr: operand,
                data_type,
                charset,
                ..
            } => {
                // CONVERT(x, type) is a CAST; CONVERT(x USING charset) keeps x.
                *expr = match data_type {
                    Some(t) => Expr::Cast {
                        kind: ast::CastKind::Cast,
                        expr: operand.clone(),
                        data_type: t.clone(),
                        array: false,
                        format: None,
                    },
                    None if charset.is_some() => (**operand).clone(),
                    None => return ControlFlow::Continue(()),
                };
                // The CAST itself is rewritten on the way down.
                return self.pre_visit_expr(expr);
            }
            Expr::UnaryOp {
                op: ast::UnaryOperator::Not,
                expr: operand,
            } => as_condition(operand),
            Expr::UnaryOp {
                op: ast::UnaryOperator::Minus,
                expr: operand,
            } => as_number(operand),
            Expr::UnaryOp {
                op: ast::UnaryOperator::BitwiseNot,
                expr: operand,
            } => {
                as_number(operand);
                *expr = call_expr(crate::functions::BIT_NOT, vec![(**operand).clone()]);
            }
            Expr::Case {
                operand: None,
                conditions,
                ..
            } => {
                for when in conditions {
                    as_condition(&mut when.condition);
                }
            }
            Expr::Cast {
                data_type,
                expr: operand,
                kind: ast::CastKind::Cast,
                ..
            } => {
                // CAST(x AS SIGNED | UNSIGNED [INTEGER]), as MySQL rounds.
                let function = match data_type {
                    ast::DataType::Signed | ast::DataType::SignedInteger => {
                        Some(crate::functions::TO_SIGNED)
                    }
                    ast::DataType::Unsigned | ast::DataType::UnsignedInteger => {
                        Some(crate::functions::TO_UNSIGNED)
                    }
                    ast::DataType::JSON => Some(crate::json::CAST_JSON),
                    _ => None,
                };
                if let Some(function) = function {
                    *expr = call_expr(function, vec![(**operand).clone()]);
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// `doc->path` and `doc->>path` bind tighter than any other operator in
/// MySQL, but the parser reads `doc->'$.a' = 1` as `doc->('$.a' = 1)`:
/// the path (always a literal) is moved back under the arrow.
fn bind_json_arrows(expr: &mut Expr) {
    use ast::BinaryOperator as B;
    let Expr::BinaryOp { left, op, right } = expr else {
        return;
    };
    if !matches!(op, B::Arrow | B::LongArrow)
        || !matches!(
            **right,
            Expr::BinaryOp { .. }
                | Expr::IsNull(_)
                | Expr::IsNotNull(_)
                | Expr::InList { .. }
                | Expr::Between { .. }
                | Expr::Like { .. }
        )
    {
        return;
    }
    let arrow = op.clone();
    let take = |e: &mut Expr| std::mem::replace(e, Expr::value(ast::Value::Null));
    let doc = take(left);
    // The arrow applied to the leftmost operand of `right`.
    let apply = |path: Expr| {
        let mut e = Expr::BinaryOp {
            left: Box::new(doc),
            op: arrow,
            right: Box::new(path),
        };
        bind_json_arrows(&mut e);
        Box::new(e)
    };
    *expr = match take(right) {
        Expr::BinaryOp { left, op, right } => Expr::BinaryOp {
            left: apply(*left),
            op,
            right,
        },
        Expr::IsNull(inner) => Expr::IsNull(apply(*inner)),
        Expr::IsNotNull(inner) => Expr::IsNotNull(apply(*inner)),
        Expr::InList {
            expr: inner,
            list,
            negated,
        } => Expr::InList {
            expr: apply(*inner),
            list,
            negated,
        },
        Expr::Between {
            expr: inner,
            negated,
            low,
            high,
        } => Expr::Between {
            expr: apply(*inner),
            negated,
            low,
            high,
        },
        Expr::Like {
            negated,
            any,
            expr: inner,
            pattern,
            escape_char,
        } => Expr::Like {
            negated,
            any,
            expr: apply(*inner),
            pattern,
            escape_char,
        },
        path => *apply(path),
    };
}

/// Arithmetic and bit operators, which take numbers.
fn is_arithmetic(op: &ast::BinaryOperator) -> bool {
    use ast::BinaryOperator as B;
    matches!(
        op,
        B::Plus
            | B::Minus
            | B::Multiply
            | B::Divide
            | B::Modulo
            | B::MyIntegerDivide
            | B::BitwiseAnd
            | B::BitwiseOr
            | B::BitwiseXor
            | B::PGBitwiseShiftLeft
            | B::PGBitwiseShiftRight
    )
}

/// The comparison operators.
fn is_comparison_operator(op: &ast::BinaryOperator) -> bool {
    use ast::BinaryOperator as B;
    matches!(
        op,
        B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq | B::Spaceship
    )
}

/// Whether `e` is a truth value by its form (a comparison, a logical
/// operator, a predicate): what the query engine types BOOLEAN.
fn is_truth_value(e: &Expr) -> bool {
    use ast::BinaryOperator as B;
    match e {
        Expr::BinaryOp { op, .. } => matches!(
            op,
            B::Eq
                | B::NotEq
                | B::Lt
                | B::LtEq
                | B::Gt
                | B::GtEq
                | B::Spaceship
                | B::And
                | B::Or
                | B::Xor
        ),
        Expr::Nested(inner) => is_truth_value(inner),
        Expr::UnaryOp {
            op: ast::UnaryOperator::Not,
            ..
        }
        | Expr::IsNull(_)
        | Expr::IsNotNull(_)
        | Expr::IsTrue(_)
        | Expr::IsNotTrue(_)
        | Expr::IsFalse(_)
        | Expr::IsNotFalse(_)
        | Expr::IsUnknown(_)
        | Expr::IsNotUnknown(_)
        | Expr::IsDistinctFrom(..)
        | Expr::IsNotDistinctFrom(..)
        | Expr::InList { .. }
        | Expr::InSubquery { .. }
        | Expr::Between { .. }
        | Expr::Like { .. }
        | Expr::ILike { .. }
        | Expr::SimilarTo { .. }
        | Expr::RLike { .. }
        | Expr::Exists { .. } => true,
        Expr::Value(v) => matches!(v.value, ast::Value::Boolean(_)),
        _ => false,
    }
}

/// Makes a truth value a number, as MySQL reads one in arithmetic (1 or
/// 0, NULL for unknown): the query engine adds no BOOLEAN to a number.
fn as_number(e: &mut Expr) {
    if !is_truth_value(e) {
        return;
    }
    let value = std::mem::replace(e, Expr::value(ast::Value::Null));
    *e = Expr::Nested(Box::new(Expr::Cast {
        kind: ast::CastKind::Cast,
        expr: Box::new(value),
        data_type: ast::DataType::BigInt(None),
        array: false,
        format: None,
    }));
}

/// Makes `e` a condition as MySQL reads one: a number is true when it is
/// not zero. Expressions that are conditions already stay as they are.
fn as_condition(e: &mut Expr) {
    use ast::BinaryOperator as B;
    if let Expr::Nested(inner) = &*e {
        let mut inner = (**inner).clone();
        as_condition(&mut inner);
        *e = Expr::Nested(Box::new(inner));
        return;
    }
    if is_truth_value(e) {
        return;
    }
    // `x <> 0` rather than a cast to BOOLEAN: the query engine takes a
    // filter on `CAST(a AS BOOLEAN)` as fixing `a`, and drops sorts on it.
    let value = std::mem::replace(e, Expr::value(ast::Value::Null));
    *e = Expr::BinaryOp {
        left: Box::new(Expr::Nested(Box::new(value))),
        op: B::NotEq,
        right: Box::new(Expr::value(ast::Value::Number("0".into(), false))),
    };
}

/// Whether an arithmetic operand may be a string, which MySQL reads as its
/// leading number: literals and anything typed only at planning (columns,
/// function calls, CASE, subqueries); not numbers, nested arithmetic,
/// intervals or parameters.
fn may_be_string(e: &Expr) -> bool {
    match e {
        Expr::Nested(inner) => may_be_string(inner),
        Expr::Value(v) => matches!(
            v.value,
            ast::Value::SingleQuotedString(_) | ast::Value::DoubleQuotedString(_)
        ),
        Expr::Identifier(_)
        | Expr::CompoundIdentifier(_)
        | Expr::Function(_)
        | Expr::Case { .. }
        | Expr::Subquery(_) => true,
        _ => false,
    }
}

/// An arithmetic operand, wrapped in `duet_numeric` when it may be a string.
fn numeric_operand(e: &Expr) -> Expr {
    if may_be_string(e) {
        call_expr(crate::coerce::NUMERIC, vec![e.clone()])
    } else {
        e.clone()
    }
}

/// MySQL operators whose meaning DataFusion does not share: `/`, `DIV`
/// and the bit operators as [`crate::functions`] computes them, `%` with
/// NULL for a zero divisor, and `+ - * %` on strings, read as numbers.
fn mysql_operator(left: &Expr, op: &ast::BinaryOperator, right: &Expr) -> Option<Expr> {
    use ast::BinaryOperator as B;
    let call = |name: &str| call_expr(name, vec![numeric_operand(left), numeric_operand(right)]);
    let bits = |name: &str| call_expr(name, vec![left.clone(), right.clone()]);
    let interval = matches!(left, Expr::Interval(_)) || matches!(right, Expr::Interval(_));
    if interval && matches!(op, B::Plus | B::Minus) {
        // Date arithmetic on a literal: the literal as the DATE or DATETIME it spells.
        let temporal = |e: &Expr| match e {
            Expr::Value(v) => match &v.value {
                ast::Value::SingleQuotedString(text) | ast::Value::DoubleQuotedString(text) => {
                    let data_type = if text.trim().len() <= 10 {
                        ast::DataType::Date
                    } else {
                        ast::DataType::Timestamp(None, ast::TimezoneInfo::None)
                    };
                    Some(Expr::Cast {
                        kind: ast::CastKind::Cast,
                        expr: Box::new(e.clone()),
                        data_type,
                        array: false,
                        format: None,
                    })
                }
                _ => None,
            },
            _ => None,
        };
        return match (temporal(left), temporal(right)) {
            (None, None) => None,
            (l, r) => Some(Expr::BinaryOp {
                left: Box::new(l.unwrap_or_else(|| left.clone())),
                op: op.clone(),
                right: Box::new(r.unwrap_or_else(|| right.clone())),
            }),
        };
    }
    let wraps = !interval && (may_be_string(left) || may_be_string(right));
    let already =
        |e: &Expr| matches!(e, Expr::Function(f) if f.name.to_string() == crate::coerce::NUMERIC);
    match op {
        // `doc->path` and `doc->>path`.
        B::Arrow => Some(call_expr("json_extract", vec![left.clone(), right.clone()])),
        B::LongArrow => Some(call_expr(
            "json_unquote",
            vec![call_expr("json_extract", vec![left.clone(), right.clone()])],
        )),
        B::Divide => Some(call(crate::functions::DIV)),
        B::MyIntegerDivide => Some(call(crate::functions::INT_DIV)),
        B::BitwiseAnd => Some(bits(crate::functions::BIT_AND)),
        B::BitwiseOr => Some(bits(crate::functions::BIT_OR)),
        B::BitwiseXor => Some(bits(crate::functions::BIT_XOR)),
        B::PGBitwiseShiftLeft => Some(bits(crate::functions::SHIFT_LEFT)),
        B::PGBitwiseShiftRight => Some(bits(crate::functions::SHIFT_RIGHT)),
        B::Plus | B::Minus | B::Multiply if wraps && !already(left) && !already(right) => {
            Some(Expr::BinaryOp {
                left: Box::new(numeric_operand(left)),
                op: op.clone(),
                right: Box::new(numeric_operand(right)),
            })
        }
        B::Modulo => Some(Expr::BinaryOp {
            left: Box::new(if interval {
                left.clone()
            } else {
                numeric_operand(left)
            }),
            op: B::Modulo,
            right: Box::new(call_expr(
                "nullif",
                vec![
                    if interval {
                        right.clone()
                    } else {
                        numeric_operand(right)
                    },
                    Expr::value(ast::Value::Number("0".into(), false)),
                ],
            )),
        }),
        _ => None,
    }
}

/// `left op right`.
fn binary(left: Expr, op: ast::BinaryOperator, right: Expr) -> Expr {
    Expr::BinaryOp {
        left: Box::new(left),
        op,
        right: Box::new(right),
    }
}

fn eq(left: Expr, right: Expr) -> Expr {
    binary(left, ast::BinaryOperator::Eq, right)
}

fn number(n: &str) -> Expr {
    Expr::value(ast::Value::Number(n.into(), false))
}

/// `CASE WHEN c THEN r … [ELSE e] END`.
fn case(whens: Vec<(Expr, Expr)>, otherwise: Option<Expr>) -> Expr {
    Expr::Case {
        case_token: ast::helpers::attached_token::AttachedToken::empty(),
        end_token: ast::helpers::attached_token::AttachedToken::empty(),
        operand: None,
        conditions: whens
            .into_iter()
            .map(|(condition, result)| ast::CaseWhen { condition, result })
            .collect(),
        else_result: otherwise.map(Box::new),
    }
}

/// `date ± interval`, with a literal date read as the DATE or DATETIME it
/// spells (as the operator itself is).
fn date_arithmetic(date: &Expr, op: ast::BinaryOperator, interval: &Expr) -> Expr {
    mysql_operator(date, &op, interval)
        .unwrap_or_else(|| binary(date.clone(), op, interval.clone()))
}

/// `INTERVAL n DAY`.
fn days_interval(n: &Expr) -> Expr {
    Expr::Interval(ast::Interval {
        value: Box::new(n.clone()),
        leading_field: Some(ast::DateTimeField::Day),
        leading_precision: None,
        last_field: None,
        fractional_seconds_precision: None,
    })
}

/// `name(args…)`.
fn call_expr(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(ast::Function {
        name: ast::ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: ast::FunctionArguments::None,
        args: ast::FunctionArguments::List(ast::FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|e| ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)))
                .collect(),
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

/// A MySQL `DATE_FORMAT` pattern as the strftime pattern `to_char` takes.
fn strftime(mysql: &str) -> String {
    let mut out = String::new();
    let mut chars = mysql.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(spec) = chars.next() else {
            out.push('%');
            break;
        };
        out.push_str(match spec {
            'i' => "%M",
            's' | 'S' => "%S",
            'M' => "%B",
            'W' => "%A",
            'e' => "%-d",
            'c' => "%-m",
            'k' => "%-H",
            'h' | 'I' => "%I",
            'l' => "%-I",
            'T' => "%H:%M:%S",
            'r' => "%I:%M:%S %p",
            'f' => "%6f",
            '%' => "%%",
            other => {
                out.push('%');
                out.push(other);
                continue;
            }
        });
    }
    out
}

/// `GROUP_CONCAT([DISTINCT] x, … [ORDER BY …] [SEPARATOR s])` as
/// `string_agg(CONCAT(x, …), s [ORDER BY …])`.
fn group_concat(f: &ast::Function, list: &ast::FunctionArgumentList, args: Vec<Expr>) -> Expr {
    let mut separator = ast::Value::SingleQuotedString(",".into());
    let mut clauses = Vec::new();
    for clause in &list.clauses {
        match clause {
            ast::FunctionArgumentClause::Separator(s) => separator = s.value.clone(),
            other => clauses.push(other.clone()),
        }
    }
    let text = |e: Expr| Expr::Cast {
        kind: ast::CastKind::Cast,
        expr: Box::new(e),
        data_type: ast::DataType::Varchar(None),
        array: false,
        format: None,
    };
    let value = match args.len() {
        1 => text(
            args.into_iter()
                .next()
                .unwrap_or(Expr::value(ast::Value::Null)),
        ),
        _ => call_expr("concat", args.into_iter().map(text).collect()),
    };
    let mut call = call_expr("string_agg", vec![value, Expr::value(separator)]);
    if let Expr::Function(g) = &mut call
        && let ast::FunctionArguments::List(l) = &mut g.args
    {
        l.duplicate_treatment = list.duplicate_treatment;
        l.clauses = clauses;
        g.over = f.over.clone();
    }
    call
}

/// MySQL functions DataFusion lacks, in standard SQL.
fn mysql_function(f: &ast::Function) -> Option<Expr> {
    let name = f.name.to_string().to_ascii_uppercase();
    let ast::FunctionArguments::List(list) = &f.args else {
        return None;
    };
    let args: Vec<Expr> = list
        .args
        .iter()
        .filter_map(|a| match a {
            ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Some(e.clone()),
            _ => None,
        })
        .collect();
    if name == "GROUP_CONCAT" && !args.is_empty() {
        return Some(group_concat(f, list, args));
    }
    if (name == "AVG" || name == "SUM")
        && let [arg] = args.as_slice()
        && f.over.is_none()
        && !matches!(arg, Expr::Function(g) if g.name.to_string() == crate::coerce::EXACT_ARG)
    {
        // An integer averages to a DECIMAL with 4 more digits and sums to
        // a DECIMAL, as in MySQL.
        let mut exact = f.clone();
        if let ast::FunctionArguments::List(list) = &mut exact.args {
            list.args = vec![ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(
                call_expr(crate::coerce::EXACT_ARG, vec![arg.clone()]),
            ))];
        }
        return Some(Expr::Function(exact));
    }
    let part = |unit: &str, x: &Expr| {
        let p = call_expr(
            "date_part",
            vec![
                Expr::value(ast::Value::SingleQuotedString(unit.into())),
                x.clone(),
            ],
        );
        Expr::Cast {
            kind: ast::CastKind::Cast,
            expr: Box::new(p),
            data_type: ast::DataType::BigInt(None),
            array: false,
            format: None,
        }
    };
    let day_number = |x: &Expr| {
        let cast = |e: Expr, t: ast::DataType| Expr::Cast {
            kind: ast::CastKind::Cast,
            expr: Box::new(e),
            data_type: t,
            array: false,
            format: None,
        };
        cast(
            cast(
                cast(x.clone(), ast::DataType::Date),
                ast::DataType::Int(None),
            ),
            ast::DataType::BigInt(None),
        )
    };
    match (name.as_str(), args.as_slice()) {
        ("CURDATE", []) => Some(call_expr("current_date", Vec::new())),
        ("DATE", [x]) => Some(Expr::Cast {
            kind: ast::CastKind::Cast,
            expr: Box::new(x.clone()),
            data_type: ast::DataType::Date,
            array: false,
            format: None,
        }),
        ("YEAR", [x]) => Some(part("year", x)),
        ("QUARTER", [x]) => Some(part("quarter", x)),
        ("MONTH", [x]) => Some(part("month", x)),
        ("DAY" | "DAYOFMONTH", [x]) => Some(part("day", x)),
        ("DAYOFYEAR", [x]) => Some(part("doy", x)),
        ("HOUR", [x]) => Some(part("hour", x)),
        ("MINUTE", [x]) => Some(part("minute", x)),
        ("SECOND", [x]) => Some(part("second", x)),
        // MySQL counts Sunday as 1.
        ("DAYOFWEEK", [x]) => Some(Expr::BinaryOp {
            left: Box::new(part("dow", x)),
            op: ast::BinaryOperator::Plus,
            right: Box::new(Expr::value(ast::Value::Number("1".into(), false))),
        }),
        ("DATEDIFF", [a, b]) => Some(Expr::BinaryOp {
            left: Box::new(day_number(a)),
            op: ast::BinaryOperator::Minus,
            right: Box::new(day_number(b)),
        }),
        ("DATE_FORMAT", [x, Expr::Value(v)]) => match &v.value {
            ast::Value::SingleQuotedString(format) => Some(call_expr(
                "to_char",
                vec![
                    x.clone(),
                    Expr::value(ast::Value::SingleQuotedString(strftime(format))),
                ],
            )),
            _ => None,
        },
        ("MOD", [a, b]) => mysql_operator(a, &ast::BinaryOperator::Modulo, b),
        ("DATE_ADD" | "ADDDATE", [date, interval @ Expr::Interval(_)]) => {
            Some(date_arithmetic(date, ast::BinaryOperator::Plus, interval))
        }
        ("DATE_SUB" | "SUBDATE", [date, interval @ Expr::Interval(_)]) => {
            Some(date_arithmetic(date, ast::BinaryOperator::Minus, interval))
        }
        // ADDDATE(d, n) and SUBDATE(d, n) count days.
        ("ADDDATE", [date, days]) => Some(date_arithmetic(
            date,
            ast::BinaryOperator::Plus,
            &days_interval(days),
        )),
        ("SUBDATE", [date, days]) => Some(date_arithmetic(
            date,
            ast::BinaryOperator::Minus,
            &days_interval(days),
        )),
        ("LCASE", [x]) => Some(call_expr("lower", vec![x.clone()])),
        ("UCASE", [x]) => Some(call_expr("upper", vec![x.clone()])),
        ("MID", _) => Some(call_expr("substr", args.clone())),
        ("CEILING", [x]) => Some(call_expr("ceil", vec![x.clone()])),
        ("SIGN", [x]) => Some(Expr::Cast {
            kind: ast::CastKind::Cast,
            expr: Box::new(call_expr("signum", vec![x.clone()])),
            data_type: ast::DataType::BigInt(None),
            array: false,
            format: None,
        }),
        ("ORD", [x]) => Some(call_expr("ascii", vec![x.clone()])),
        ("SPACE", [n]) => Some(call_expr(
            "repeat",
            vec![
                Expr::value(ast::Value::SingleQuotedString(" ".into())),
                n.clone(),
            ],
        )),
        ("ISNULL", [x]) => Some(Expr::IsNull(Box::new(x.clone()))),
        // MySQL's STD, STDDEV and VARIANCE are the population figures.
        ("STD" | "STDDEV", [x]) if f.over.is_none() => {
            Some(call_expr("stddev_pop", vec![x.clone()]))
        }
        ("VARIANCE", [x]) if f.over.is_none() => Some(call_expr("var_pop", vec![x.clone()])),
        ("UTC_TIMESTAMP" | "SYSDATE", []) => Some(call_expr("now", Vec::new())),
        ("CURTIME", []) => Some(call_expr("current_time", Vec::new())),
        ("UTC_DATE", []) => Some(call_expr("current_date", Vec::new())),
        // LOCATE(sub, s[, from]): 1-based, 0 when absent.
        ("LOCATE", [sub, text]) => Some(call_expr("strpos", vec![text.clone(), sub.clone()])),
        ("LOCATE", [sub, text, from]) => {
            let rest = call_expr("substr", vec![text.clone(), from.clone()]);
            let at = call_expr("strpos", vec![rest, sub.clone()]);
            Some(case(
                vec![(eq(at.clone(), number("0")), number("0"))],
                Some(binary(
                    binary(at, ast::BinaryOperator::Plus, from.clone()),
                    ast::BinaryOperator::Minus,
                    number("1"),
                )),
            ))
        }
        ("STRCMP", [a, b]) => Some(case(
            vec![
                (
                    Expr::BinaryOp {
                        left: Box::new(Expr::IsNull(Box::new(a.clone()))),
                        op: ast::BinaryOperator::Or,
                        right: Box::new(Expr::IsNull(Box::new(b.clone()))),
                    },
                    Expr::value(ast::Value::Null),
                ),
                (eq(a.clone(), b.clone()), number("0")),
                (
                    binary(a.clone(), ast::BinaryOperator::Lt, b.clone()),
                    number("-1"),
                ),
            ],
            Some(number("1")),
        )),
        // FIELD(x, s1, s2, …): the position of x among the s, 0 if none.
        ("FIELD", [x, list @ ..]) if !list.is_empty() => Some(case(
            list.iter()
                .enumerate()
                .map(|(i, s)| (eq(x.clone(), s.clone()), number(&(i + 1).to_string())))
                .collect(),
            Some(number("0")),
        )),
        // ELT(n, s1, s2, …): the n-th s, NULL if none.
        ("ELT", [n, list @ ..]) if !list.is_empty() => Some(case(
            list.iter()
                .enumerate()
                .map(|(i, s)| (eq(n.clone(), number(&(i + 1).to_string())), s.clone()))
                .collect(),
            None,
        )),
        ("WEEKDAY", [x]) => Some(binary(
            binary(part("dow", x), ast::BinaryOperator::Plus, number("6")),
            ast::BinaryOperator::Modulo,
            number("7"),
        )),
        ("DAYNAME", [x]) => Some(call_expr(
            "to_char",
            vec![
                x.clone(),
                Expr::value(ast::Value::SingleQuotedString("%A".into())),
            ],
        )),
        ("MONTHNAME", [x]) => Some(call_expr(
            "to_char",
            vec![
                x.clone(),
                Expr::value(ast::Value::SingleQuotedString("%B".into())),
            ],
        )),
        // Days since year 0, as MySQL counts them (1970-01-01 is 719528).
        ("TO_DAYS", [x]) => Some(binary(
            day_number(x),
            ast::BinaryOperator::Plus,
            number("719528"),
        )),
        // FROM_DAYS inverts TO_DAYS.
        ("FROM_DAYS", [n]) => Some(Expr::Cast {
            kind: ast::CastKind::Cast,
            expr: Box::new(Expr::Cast {
                kind: ast::CastKind::Cast,
                expr: Box::new(binary(
                    n.clone(),
                    ast::BinaryOperator::Minus,
                    number("719528"),
                )),
                data_type: ast::DataType::Int(None),
                array: false,
                format: None,
            }),
            data_type: ast::DataType::Date,
            array: false,
            format: None,
        }),
        ("CHAR", [n]) => Some(call_expr("chr", vec![n.clone()])),
        // SHA2(x, bits) as lowercase hex; an unsupported length gives NULL.
        ("SHA2", [x, Expr::Value(bits)]) => {
            let digest = match &bits.value {
                ast::Value::Number(n, _) => match n.as_str() {
                    "0" | "256" => Some("sha256"),
                    "224" => Some("sha224"),
                    "384" => Some("sha384"),
                    "512" => Some("sha512"),
                    _ => None,
                },
                _ => return None,
            };
            Some(match digest {
                Some(d) => call_expr(
                    "encode",
                    vec![
                        call_expr(d, vec![x.clone()]),
                        Expr::value(ast::Value::SingleQuotedString("hex".into())),
                    ],
                ),
                None => Expr::value(ast::Value::Null),
            })
        }
        ("UNIX_TIMESTAMP", []) => Some(part("epoch", &call_expr("now", Vec::new()))),
        ("UNIX_TIMESTAMP", [x]) => Some(part("epoch", x)),
        ("TIMESTAMPDIFF", [Expr::Identifier(unit), a, b]) => {
            let seconds = |x: &Expr| part("epoch", x);
            let per = match unit.value.to_ascii_uppercase().as_str() {
                "SECOND" => "1",
                "MINUTE" => "60",
                "HOUR" => "3600",
                "DAY" => "86400",
                "WEEK" => "604800",
                _ => return None,
            };
            // Whole units, cut toward zero.
            Some(call_expr(
                "trunc",
                vec![binary(
                    Expr::Nested(Box::new(binary(
                        seconds(b),
                        ast::BinaryOperator::Minus,
                        seconds(a),
                    ))),
                    ast::BinaryOperator::Divide,
                    number(&format!("{per}.0")),
                )],
            ))
            .map(|e| Expr::Cast {
                kind: ast::CastKind::Cast,
                expr: Box::new(e),
                data_type: ast::DataType::BigInt(None),
                array: false,
                format: None,
            })
        }
        ("IF", [cond, then, otherwise]) => Some(Expr::Case {
            case_token: ast::helpers::attached_token::AttachedToken::empty(),
            end_token: ast::helpers::attached_token::AttachedToken::empty(),
            operand: None,
            conditions: vec![ast::CaseWhen {
                condition: cond.clone(),
                result: then.clone(),
            }],
            else_result: Some(Box::new(otherwise.clone())),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_column_is_named_in_1054() {
        for (message, column) in [
            ("No field named zz.", "zz"),
            ("No field named one.zz. Did you mean 'one.z'?", "zz"),
            ("No field named \"t1.c0\".\nValid fields are a.", "c0"),
        ] {
            let e = query_error(DataFusionError::Plan(message.into()), None);
            assert!(
                matches!(&e, Error::UnknownColumnIn { column: c, .. } if c == column),
                "{message}: {e:?}"
            );
        }
    }

    #[test]
    fn a_parameters_value_is_the_literal_the_planner_reads() {
        use crate::value::{Date, DateTime};
        let state = SessionContext::new().state();
        let schema = datafusion::common::DFSchema::empty();
        for v in [
            Value::Int(-5),
            Value::Int(i64::MAX),
            Value::UInt(u64::MAX),
            Value::Decimal("1.50".into()),
            Value::Decimal("-0.001".into()),
            Value::Double(1.25),
            Value::Double(-1e300),
            Value::Str("it's".into()),
            Value::Bytes(b"abc".to_vec()),
            Value::Null,
            Value::Date(Date {
                year: 2026,
                month: 11,
                day: 29,
            }),
            Value::DateTime(DateTime {
                date: Date {
                    year: 2026,
                    month: 11,
                    day: 29,
                },
                hour: 12,
                minute: 30,
                second: 1,
                micros: 5,
            }),
        ] {
            let literal = crate::exec::literal(&v);
            let planned = state
                .create_logical_expr(&literal.to_string(), &schema)
                .unwrap();
            let ours = literal_scalar(&literal).map(|s| DfExpr::Literal(s, None));
            assert_eq!(ours, Some(planned), "{v:?}");
        }
        // Bytes that are not text are left to the text path.
        assert_eq!(
            literal_scalar(&crate::exec::literal(&Value::Bytes(vec![0xff]))),
            None
        );
    }

    #[test]
    fn generic_markers_stand_only_where_the_rewrites_do_not_look() {
        let markers = |sql: &str| {
            let mut statement = crate::session::parse_one(sql).unwrap();
            crate::session::number_placeholders(&mut statement);
            let Statement::Query(q) = statement else {
                panic!("{sql}")
            };
            generic_markers(&q)
        };
        for (sql, expected) in [
            ("SELECT a FROM t WHERE a = ? AND ? < b", Some(vec![])),
            (
                "SELECT a FROM t WHERE a BETWEEN ? AND ? OR a IN (?, 3)",
                Some(vec![]),
            ),
            (
                "SELECT a FROM t ORDER BY a LIMIT ? OFFSET ?",
                Some(vec![1, 2]),
            ),
            ("SELECT a FROM t LIMIT ?, ?", Some(vec![1, 2])),
            (
                "SELECT a FROM t WHERE a IN (SELECT b FROM u WHERE b > ?)",
                Some(vec![]),
            ),
            ("SELECT a + ? FROM t", None),
            ("SELECT a FROM t WHERE ? = ?", None),
            ("SELECT a FROM t WHERE a = -?", None),
            ("SELECT a FROM t WHERE ? IN (a, b)", None),
            ("SELECT a FROM t WHERE a = LAST_INSERT_ID()", None),
            ("SELECT a FROM t WHERE a IN (SELECT b FROM u LIMIT ?)", None),
        ] {
            assert_eq!(markers(sql), expected, "{sql}");
        }
    }

    #[test]
    fn decimals_format_with_their_scale() {
        assert_eq!(format_decimal(12345, 2), "123.45");
        assert_eq!(format_decimal(-5, 3), "-0.005");
        assert_eq!(format_decimal(7, 0), "7");
        assert_eq!(decimal_to_i128("-1.5", 2).unwrap(), -150);
    }
}
