//! Queries through DataFusion: the catalog seen as DataFusion catalog,
//! schema and table providers (each MySQL database a schema of catalog
//! `def`), a row-store table provider that reads a table at the statement's
//! transaction snapshot, the preparation of a parsed MySQL query for
//! DataFusion (identifiers folded to lower case, MySQL-only syntax
//! rewritten), and the conversion of Arrow results to client values.

use std::ops::ControlFlow;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::MemoryCatalogProviderList;
use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::{SessionConfig, SessionContext, SessionState};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::{Expr as DfExpr, LogicalPlan};
use datafusion::sql::sqlparser::ast::{self, Expr, LimitClause, Query, Statement, Visit, Visitor};
use duet_storage::codec::Datum;
use futures::StreamExt;

use crate::catalog::{Catalog, IndexInfo, TableInfo};
use crate::error::{Error, Result};
use crate::eval::SessionFn;
use crate::functions;
use crate::interrupt::Alive;
use crate::interrupt::Bounds;
use crate::interrupt::Interrupt;
use crate::interrupt::Sleep;
use crate::plan::arrow::{batch_rows, columns};
use crate::plan::coerce::MysqlComparisons;
use crate::plan::collate::Collations;
use crate::plan::providers::{CATALOG, DuetCatalog};
use crate::plan::rewrite::prepare;
use crate::plan::scope::{Scope, block_on};
use crate::table::Row;
use crate::table::ranges::HandleSet;
use crate::table::source::{ColumnarPart, RowSource};
use crate::table::stats::TableStats;
use crate::value::{Collect, Column, ResultSet, RowSink};
use duet_columnar::{ScanOutput, ScanRequest};

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
pub(crate) const SINK_ROWS: usize = 1024;

/// Optimizes, plans physically and runs a logical plan, its rows sent to
/// `sink` batch by batch as the plan makes them; how many it sent. The
/// statement's stop signal ends the run between and during batches.
pub(crate) fn execute(
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
pub(crate) fn watch_joins(
    plan: LogicalPlan,
    interrupt: &Arc<Interrupt>,
) -> datafusion::error::Result<LogicalPlan> {
    use datafusion::common::tree_node::Transformed;
    let alive = Alive::udf(Arc::clone(interrupt));
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
pub(crate) fn generic_markers(query: &Query) -> Option<Vec<usize>> {
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
                    self.session |= SessionFn::named(&f.name.to_string()).is_some();
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

    fn stats(&self, table: &TableInfo) -> Option<TableStats> {
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

    fn columnar_scan(&self, _table: &TableInfo, request: ScanRequest) -> Result<Vec<ColumnarPart>> {
        let _ = request;
        let empty = ScanOutput::empty(Arc::new(Schema::empty()));
        Ok(empty
            .partitions
            .into_iter()
            .map(ColumnarPart::Here)
            .collect())
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
        rules.insert(0, Arc::new(MysqlComparisons));
        // Then text of `_ci` columns compares by its collation's sort key.
        rules.insert(1, Arc::new(Collations));
        let mut state = SessionStateBuilder::new()
            .with_default_features()
            .with_analyzer_rules(rules)
            .build();
        for f in functions::scalar() {
            // Registering a new name replaces nothing.
            let _ = datafusion::execution::FunctionRegistry::register_udf(&mut state, Arc::new(f));
        }
        for f in functions::aggregates() {
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
        ctx.register_udf(Sleep::udf(Arc::clone(&bounds.interrupt)));
    }
    ctx.register_catalog(CATALOG, Arc::new(DuetCatalog { catalog, scope }));
    ctx
}

/// The memory pool and spill files of one statement: its operators may
/// hold `mem_quota` bytes in all (shared fairly among those that can
/// spill), then spill, or fail with the largest holders named.
pub(crate) fn statement_runtime(bounds: &Bounds) -> Option<Arc<RuntimeEnv>> {
    let pool = TrackConsumersPool::new(
        FairSpillPool::new(bounds.mem_quota),
        std::num::NonZeroUsize::new(3)?,
    );
    let mut env = RuntimeEnvBuilder::new().with_memory_pool(Arc::new(pool));
    env.disk_manager = bounds.spill.clone();
    env.build_arc().ok()
}

/// Duet's own error, if `e` carries one (raised by a table provider).
pub(crate) fn duet_error(e: DataFusionError) -> std::result::Result<Error, DataFusionError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::arrow::{decimal_to_i128, format_decimal};
    use crate::value::Value;

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
            let literal = crate::session::exec::literal(&v);
            let planned = state
                .create_logical_expr(&literal.to_string(), &schema)
                .unwrap();
            let ours = literal_scalar(&literal).map(|s| DfExpr::Literal(s, None));
            assert_eq!(ours, Some(planned), "{v:?}");
        }
        // Bytes that are not text are left to the text path.
        assert_eq!(
            literal_scalar(&crate::session::exec::literal(&Value::Bytes(vec![0xff]))),
            None
        );
    }

    #[test]
    fn generic_markers_stand_only_where_the_rewrites_do_not_look() {
        let markers = |sql: &str| {
            let mut statement = crate::parse::parse_one(sql).unwrap();
            crate::parse::number_placeholders(&mut statement);
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
