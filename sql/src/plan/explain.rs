//! `EXPLAIN` and `EXPLAIN ANALYZE`: the plan a query would run (or ran), one
//! row per operator, with columns `id`, `estRows`, `engine`,
//! `access object`, `operator info` (and, for `ANALYZE`, `actRows` and
//! `time`). Table accesses name the engine that serves them (`row` or
//! `columnar`); `EXPLAIN` without `ANALYZE` plans without reading rows.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use datafusion::common::stats::Precision;
use datafusion::physical_plan::{
    ExecutionPlan, StatisticsArgs, StatisticsContext, collect, displayable,
};
use datafusion::sql::sqlparser::ast::{Query, Statement};

use crate::catalog::Catalog;
use crate::error::Result;
use crate::plan::access::TableAccessExec;
use crate::plan::run::{self, PlanOnly, query_error};
use crate::plan::scope::{Scope, block_on};
use crate::point::PointGet;
use crate::value::{Column, FieldType, ResultSet, Value};

const COLUMNS: &[&str] = &["id", "estRows", "engine", "access object", "operator info"];
const ANALYZE_COLUMNS: &[&str] = &["actRows", "time"];

/// Plans `query` (a prepared one) and, for `analyze`, runs it.
pub(crate) fn explain(
    catalog: Arc<Catalog>,
    scope: Scope,
    current_db: Option<&str>,
    query: Query,
    analyze: bool,
) -> Result<ResultSet> {
    let scope = if analyze {
        scope
    } else {
        Scope {
            source: Arc::new(PlanOnly(Some(scope.source))),
            ..scope
        }
    };
    let ctx = run::context(catalog, Arc::new(scope), current_db);
    let statement =
        datafusion::sql::parser::Statement::Statement(Box::new(Statement::Query(Box::new(query))));
    let (plan, elapsed) = block_on(async {
        let logical = ctx.state().statement_to_plan(statement).await?;
        let started = Instant::now();
        let physical = ctx.state().create_physical_plan(&logical).await?;
        if analyze {
            collect(Arc::clone(&physical), ctx.task_ctx()).await?;
        }
        Ok::<_, datafusion::error::DataFusionError>((physical, started.elapsed()))
    })
    .map_err(|e| query_error(e, current_db))?;
    let mut rows = Vec::new();
    let stats = StatisticsContext::new();
    render(plan.as_ref(), 0, analyze, &stats, &mut rows);
    if analyze && let Some(first) = rows.first_mut() {
        // The root's time is the whole statement's.
        first[6] = Value::Str(format_duration(elapsed));
    }
    Ok(result(rows, analyze))
}

/// The plan of a point get (the row executor's fast path).
pub(crate) fn point_get(get: &PointGet, database: &str, actual: Option<usize>) -> ResultSet {
    let (id, estimate, info) = get.describe();
    let mut row = vec![
        Value::Str(id.into()),
        Value::Str(format!("{:.2}", estimate as f64)),
        Value::Str("row".into()),
        Value::Str(format!("table:{database}.{}", get.table_name())),
        Value::Str(info),
    ];
    if let Some(n) = actual {
        row.push(Value::Str(n.to_string()));
        row.push(Value::Str("-".into()));
    }
    result(vec![row], actual.is_some())
}

fn result(rows: Vec<Vec<Value>>, analyze: bool) -> ResultSet {
    let names = COLUMNS
        .iter()
        .chain(if analyze { ANALYZE_COLUMNS } else { &[] });
    ResultSet {
        columns: names
            .map(|c| Column::expr(*c, FieldType::VarString))
            .collect(),
        rows,
    }
}

fn render(
    plan: &dyn ExecutionPlan,
    depth: usize,
    analyze: bool,
    stats: &StatisticsContext,
    rows: &mut Vec<Vec<Value>>,
) {
    let access = plan.downcast_ref::<TableAccessExec>();
    let name = match access {
        Some(a) => a.operator().to_string(),
        None => plan
            .name()
            .strip_suffix("Exec")
            .unwrap_or(plan.name())
            .to_string(),
    };
    let prefix = if depth == 0 {
        String::new()
    } else {
        format!("{}└─", "  ".repeat(depth - 1))
    };
    let estimated = stats
        .compute(plan, &StatisticsArgs::new())
        .ok()
        .and_then(|s| match s.num_rows {
            Precision::Exact(n) | Precision::Inexact(n) => Some(n),
            Precision::Absent => None,
        });
    let (engine, object, info) = match access {
        Some(a) => (a.engine.to_string(), a.access_object(), a.operator_info()),
        None => {
            let line = displayable(plan).one_line().to_string();
            let info = line
                .trim_end()
                .split_once(": ")
                .map_or("", |(_, rest)| rest)
                .to_string();
            (String::new(), String::new(), info)
        }
    };
    let mut row = vec![
        Value::Str(format!("{prefix}{name}_{}", rows.len() + 1)),
        Value::Str(estimated.map_or("N/A".into(), |n| format!("{n}.00"))),
        Value::Str(engine),
        Value::Str(object),
        Value::Str(info),
    ];
    if analyze {
        let metrics = plan.metrics();
        let actual = match access {
            Some(a) => Some(a.rows_read.load(Ordering::Relaxed)),
            None => metrics.as_ref().and_then(|m| m.output_rows()),
        };
        let time = metrics.as_ref().map(|m| m.elapsed_compute().unwrap_or(0));
        row.push(Value::Str(actual.map_or("N/A".into(), |n| n.to_string())));
        row.push(Value::Str(time.map_or("N/A".into(), |ns| {
            format_duration(Duration::from_nanos(ns as u64))
        })));
    }
    rows.push(row);
    for child in plan.children() {
        render(child.as_ref(), depth + 1, analyze, stats, rows);
    }
}

fn format_duration(d: Duration) -> String {
    let micros = d.as_micros();
    if micros >= 1000 {
        format!("{:.2}ms", micros as f64 / 1000.0)
    } else {
        format!("{micros}µs")
    }
}
