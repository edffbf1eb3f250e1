//! The row executor's fast path: single-table reads and the row lookups of
//! `UPDATE`/`DELETE` that a `WHERE` clause confines to a few keys, served
//! straight from the row store without planning anything in DataFusion.
//!
//! A `WHERE` qualifies when it says nothing but which keys to read: on a
//! table keyed by a signed integer primary key, `pk = v`, `pk IN (…)`,
//! `pk BETWEEN a AND b` and comparisons of `pk` with constants, in any
//! conjunction; on a clustered key of signed integers, `a = v AND b = w …`
//! naming every key column. A `SELECT` qualifies when it reads columns
//! (no expressions) of one table, through point gets or a range of at most
//! [`RANGE_ROWS`] handles, with optional `DISTINCT`, `ORDER BY` of output
//! columns, `LIMIT` and `OFFSET` — or `COUNT`, `SUM`, `MIN` and `MAX` of
//! integer columns over those rows. Anything else goes to the query engine.

use std::cmp::Ordering;
use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{
    self, BinaryOperator, Distinct, Expr, GroupByExpr, OrderByExpr, OrderByKind, Query, SelectItem,
    SetExpr, TableFactor,
};
use duet_storage::codec::{Datum, key};

use crate::catalog::{Catalog, HandleKind, TableInfo};
use crate::error::{Error, Result};
use crate::kv::KvTxn;
use crate::plan::arrow;
use crate::plan::decorrelate;
use crate::plan::rewrite;
use crate::router::Routing;
use crate::table::ranges::HandleSet;
use crate::table::{self, KeyedRows};
use crate::types::{TypeKind, datum_to_value};
use crate::value::{Column, ResultSet, Value};

fn ident_name(e: &Expr) -> Option<&str> {
    match e {
        Expr::Identifier(i) => Some(&i.value),
        Expr::CompoundIdentifier(parts) if parts.len() <= 3 => {
            parts.last().map(|i| i.value.as_str())
        }
        _ => None,
    }
}

fn int_literal(e: &Expr, params: &[Value]) -> Option<i64> {
    match e {
        Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => n.parse().ok(),
            ast::Value::Placeholder(p) => {
                let n: usize = p.strip_prefix('$')?.parse().ok()?;
                match params.get(n.checked_sub(1)?)? {
                    Value::Int(i) => Some(*i),
                    Value::UInt(u) => i64::try_from(*u).ok(),
                    Value::Str(s) => s.trim().parse().ok(),
                    _ => None,
                }
            }
            _ => None,
        },
        Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => int_literal(expr, params).and_then(i64::checked_neg),
        Expr::Nested(e) => int_literal(e, params),
        _ => None,
    }
}

/// The widest handle range a `SELECT` reads on the fast path; a wider one
/// is left to the query engine (and the router's choice of engine).
pub(crate) const RANGE_ROWS: i64 = 4096;

/// The keys a `WHERE` clause confines a table to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Keys {
    /// Handles to read, one value per primary key column.
    Points(Vec<Vec<i64>>),
    /// An inclusive range of integer handles (empty when `lo > hi`).
    Range(i64, i64),
}

impl Keys {
    /// How many rows at most the keys can name.
    fn width(&self) -> i128 {
        match self {
            Keys::Points(p) => p.len() as i128,
            Keys::Range(lo, hi) => (i128::from(*hi) - i128::from(*lo) + 1).max(0),
        }
    }

    /// Reads the rows the keys name, in key order, each once; at most
    /// `limit` of them.
    fn read(&self, txn: &dyn KvTxn, table: &TableInfo, limit: usize) -> Result<KeyedRows> {
        match self {
            Keys::Points(points) => {
                let mut points = points.clone();
                points.sort_unstable();
                points.dedup();
                let mut rows = Vec::new();
                for p in points {
                    if rows.len() >= limit {
                        break;
                    }
                    let k = handle_key(table, &p)?;
                    if let Some(row) = table::get_row_by_key(txn, table, &k)? {
                        rows.push((k, row));
                    }
                }
                Ok(rows)
            }
            Keys::Range(lo, hi) => table::rows_in_handle_range(txn, table, *lo, *hi, limit),
        }
    }
}

fn handle_key(table: &TableInfo, handle: &[i64]) -> Result<Vec<u8>> {
    match (&table.handle, handle) {
        (HandleKind::IntPk(_), [h]) => Ok(key::row_key(table.id, *h)),
        _ => {
            let datums: Vec<Datum> = handle.iter().map(|&v| Datum::Int(v)).collect();
            key::row_key_common(table.id, &datums)
                .map_err(|e| Error::Internal(format!("row key: {e}")))
        }
    }
}

/// One table of a statement, as the fast path sees it.
struct Target<'a> {
    info: &'a Arc<TableInfo>,
    /// The name the statement gives it: its alias, or else its name.
    name: &'a str,
    /// The primary key's columns, in key order.
    key_columns: Vec<usize>,
}

impl<'a> Target<'a> {
    /// `None` for a view or a table without an integer key.
    fn new(info: &'a Arc<TableInfo>, name: &'a str) -> Option<Target<'a>> {
        if info.view.is_some() {
            return None;
        }
        let key_columns = match info.handle {
            HandleKind::IntPk(pk) => vec![pk],
            HandleKind::Clustered => {
                let pk = info.primary_index()?;
                let signed_ints = pk.columns.iter().all(|&c| {
                    let ty = &info.columns[c].ty;
                    ty.is_integer() && !ty.unsigned
                });
                if !signed_ints || !pk.prefix_free() {
                    return None;
                }
                pk.columns.clone()
            }
            HandleKind::RowId => return None,
        };
        Some(Target {
            info,
            name,
            key_columns,
        })
    }

    /// The table column `e` names, if it names one of this table's.
    fn column(&self, e: &Expr) -> Option<usize> {
        let qualified_here = match e {
            Expr::CompoundIdentifier(p) if p.len() == 2 => {
                p[0].value.eq_ignore_ascii_case(self.name)
            }
            Expr::CompoundIdentifier(p) => p.len() < 2,
            _ => true,
        };
        if !qualified_here {
            return None;
        }
        self.info.column_offset(ident_name(e)?)
    }

    /// The position in the key of the column `e` names.
    fn key_position(&self, e: &Expr) -> Option<usize> {
        let c = self.column(e)?;
        self.key_columns.iter().position(|&k| k == c)
    }

    /// The keys `selection` confines the table to, if it says nothing else.
    fn keys(&self, selection: &Expr, params: &[Value]) -> Option<Keys> {
        let mut parts = Vec::new();
        decorrelate::split_and(selection, &mut parts);
        if let [pk] = self.key_columns.as_slice() {
            let ty = &self.info.columns[*pk].ty;
            if ty.is_integer() && !ty.unsigned {
                return self.handle_keys(&parts, params);
            }
            // An unsigned handle: points only.
            if let [
                Expr::InList {
                    expr,
                    list,
                    negated: false,
                },
            ] = parts.as_slice()
            {
                self.key_position(expr)?;
                let points = list
                    .iter()
                    .map(|e| int_literal(e, params).map(|v| vec![v]))
                    .collect::<Option<Vec<_>>>()?;
                return Some(Keys::Points(points));
            }
        }
        // `k1 = v1 AND k2 = v2 …`: every key column once, nothing else.
        let mut values = vec![None; self.key_columns.len()];
        for part in parts {
            let Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            } = part
            else {
                return None;
            };
            let (at, value) = match (self.key_position(left), self.key_position(right)) {
                (Some(at), _) => (at, int_literal(right, params)?),
                (None, Some(at)) => (at, int_literal(left, params)?),
                (None, None) => return None,
            };
            if values[at].replace(value).is_some() {
                return None;
            }
        }
        Some(Keys::Points(vec![
            values.into_iter().collect::<Option<Vec<i64>>>()?,
        ]))
    }

    /// Points or a range of a signed integer handle: equalities, `IN`
    /// lists, `BETWEEN` and comparisons with constants, intersected.
    fn handle_keys(&self, parts: &[&Expr], params: &[Value]) -> Option<Keys> {
        let (min, max) = (i128::from(i64::MIN), i128::from(i64::MAX));
        let int = |e: &Expr| int_literal(e, params).map(i128::from);
        let mut set = HandleSet::all();
        for part in parts {
            let allowed = match part {
                Expr::BinaryOp { left, op, right } => {
                    let (op, v) = match (self.key_position(left), self.key_position(right)) {
                        (Some(_), _) => (op.clone(), int(right)?),
                        (None, Some(_)) => (flipped(op)?, int(left)?),
                        (None, None) => return None,
                    };
                    match op {
                        BinaryOperator::Eq => HandleSet::Points([i64::try_from(v).ok()?].into()),
                        BinaryOperator::GtEq => HandleSet::Range(v, max),
                        BinaryOperator::Gt => HandleSet::Range(v + 1, max),
                        BinaryOperator::LtEq => HandleSet::Range(min, v),
                        BinaryOperator::Lt => HandleSet::Range(min, v - 1),
                        _ => return None,
                    }
                }
                Expr::Between {
                    expr,
                    negated: false,
                    low,
                    high,
                } if self.key_position(expr).is_some() => HandleSet::Range(int(low)?, int(high)?),
                Expr::InList {
                    expr,
                    list,
                    negated: false,
                } if self.key_position(expr).is_some() => HandleSet::Points(
                    list.iter()
                        .map(|e| int_literal(e, params))
                        .collect::<Option<_>>()?,
                ),
                _ => return None,
            };
            set = set.intersect(allowed);
        }
        Some(match set {
            HandleSet::Points(p) => Keys::Points(p.into_iter().map(|v| vec![v]).collect()),
            // Intersected with every handle: within i64.
            HandleSet::Range(lo, hi) if lo <= hi => {
                Keys::Range(i64::try_from(lo).ok()?, i64::try_from(hi).ok()?)
            }
            HandleSet::Range(..) => Keys::Points(Vec::new()),
        })
    }
}

/// `a op b` as `b op' a`.
fn flipped(op: &BinaryOperator) -> Option<BinaryOperator> {
    Some(match op {
        BinaryOperator::Eq => BinaryOperator::Eq,
        BinaryOperator::Lt => BinaryOperator::Gt,
        BinaryOperator::LtEq => BinaryOperator::GtEq,
        BinaryOperator::Gt => BinaryOperator::Lt,
        BinaryOperator::GtEq => BinaryOperator::LtEq,
        _ => return None,
    })
}

/// `LIMIT n [OFFSET m]` or `LIMIT m, n` with constant counts: (limit, offset).
fn limit_offset(q: &Query, params: &[Value]) -> Option<(Option<usize>, usize)> {
    let count = |e: &Expr| usize::try_from(int_literal(e, params)?).ok();
    match &q.limit_clause {
        None => Some((None, 0)),
        Some(ast::LimitClause::LimitOffset {
            limit,
            offset,
            limit_by,
        }) if limit_by.is_empty() => {
            let limit = match limit {
                Some(l) => Some(count(l)?),
                None => None,
            };
            let offset = match offset {
                Some(o) => count(&o.value)?,
                None => 0,
            };
            Some((limit, offset))
        }
        Some(ast::LimitClause::OffsetCommaLimit { offset, limit }) => {
            Some((Some(count(limit)?), count(offset)?))
        }
        Some(_) => None,
    }
}

/// The rows an `UPDATE`/`DELETE` of `table` changes, when its `WHERE`
/// names only keys (and it has no `ORDER BY`); `None` leaves the search to
/// the query engine.
pub(crate) fn dml_rows(
    txn: &dyn KvTxn,
    table: &Arc<TableInfo>,
    alias: Option<&str>,
    selection: Option<&Expr>,
    limit: Option<&Expr>,
    params: &[Value],
) -> Option<Result<KeyedRows>> {
    let target = Target::new(table, alias.unwrap_or(&table.name))?;
    let keys = target.keys(selection?, params)?;
    let limit = match limit {
        Some(l) => usize::try_from(int_literal(l, params)?).ok()?,
        None => usize::MAX,
    };
    Some(keys.read(txn, table, limit))
}

/// The row keys a `WHERE` of `table` names one by one (its primary key
/// equal to values), whether their rows exist or not: what a locking
/// read locks so that an insert of one of them waits for it, as InnoDB's
/// lock on a unique key's gap would make it. `None` for any other `WHERE`.
pub(crate) fn named_keys(
    table: &Arc<TableInfo>,
    alias: Option<&str>,
    selection: Option<&Expr>,
    params: &[Value],
) -> Option<Vec<Vec<u8>>> {
    let target = Target::new(table, alias.unwrap_or(&table.name))?;
    match target.keys(selection?, params)? {
        Keys::Points(points) => points.iter().map(|p| handle_key(table, p).ok()).collect(),
        Keys::Range(..) => None,
    }
}

/// An aggregate the fast path computes over the rows it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    /// `COUNT(*)`.
    Rows,
    Count(usize),
    Sum(usize),
    Min(usize),
    Max(usize),
}

impl Aggregate {
    /// `f(arg)` with `f` one of COUNT, SUM, MIN, MAX (no DISTINCT, FILTER
    /// or OVER) over a column of `target`, an integer one but for COUNT.
    fn of(e: &Expr, target: &Target<'_>) -> Option<Aggregate> {
        let Expr::Function(f) = e else {
            return None;
        };
        let ast::FunctionArguments::List(list) = &f.args else {
            return None;
        };
        if f.filter.is_some()
            || f.over.is_some()
            || !f.within_group.is_empty()
            || f.null_treatment.is_some()
            || list.duplicate_treatment.is_some()
            || !list.clauses.is_empty()
            || !matches!(f.parameters, ast::FunctionArguments::None)
        {
            return None;
        }
        let [ast::FunctionArg::Unnamed(arg)] = list.args.as_slice() else {
            return None;
        };
        let name = match f.name.0.as_slice() {
            [part] => part.as_ident()?.value.to_ascii_lowercase(),
            _ => return None,
        };
        let column = match arg {
            ast::FunctionArgExpr::Wildcard if name == "count" => return Some(Aggregate::Rows),
            ast::FunctionArgExpr::Expr(e) => target.column(e)?,
            _ => return None,
        };
        let ty = &target.info.columns[column].ty;
        if name == "count" {
            return Some(Aggregate::Count(column));
        }
        if !ty.is_integer() {
            return None;
        }
        Some(match name.as_str() {
            "sum" => Aggregate::Sum(column),
            "min" => Aggregate::Min(column),
            "max" => Aggregate::Max(column),
            _ => return None,
        })
    }

    /// The result over `rows`, as the query engine gives it.
    fn compute(self, rows: &[(Vec<u8>, table::Row)]) -> Value {
        let values = |c: usize| {
            rows.iter()
                .map(move |(_, r)| datum_to_value(&r[c]))
                .filter(|v| *v != Value::Null)
        };
        let number = |v: &Value| match v {
            Value::Int(i) => i128::from(*i),
            Value::UInt(u) => i128::from(*u),
            _ => 0,
        };
        let extreme = |c: usize, max: bool| {
            let mut all = values(c);
            let first = all.next();
            first.map_or(Value::Null, |f| {
                all.fold(f, |best, v| {
                    let better = if max {
                        number(&v) > number(&best)
                    } else {
                        number(&v) < number(&best)
                    };
                    if better { v } else { best }
                })
            })
        };
        match self {
            Aggregate::Rows => Value::Int(rows.len() as i64),
            Aggregate::Count(c) => Value::Int(values(c).count() as i64),
            // An exact DECIMAL, as MySQL sums integers (a bounded range
            // of rows cannot overflow an i128).
            Aggregate::Sum(c) => {
                let mut all = values(c).peekable();
                match all.peek() {
                    None => Value::Null,
                    Some(_) => Value::Decimal(all.map(|v| number(&v)).sum::<i128>().to_string()),
                }
            }
            Aggregate::Min(c) => extreme(c, false),
            Aggregate::Max(c) => extreme(c, true),
        }
    }

    /// The Arrow type the query engine gives the result.
    fn arrow_type(self, table: &TableInfo) -> datafusion::arrow::datatypes::DataType {
        use datafusion::arrow::datatypes::DataType;
        match self {
            Aggregate::Rows | Aggregate::Count(_) => DataType::Int64,
            // The engine's sum of its DECIMAL(20, 0) reading of an integer.
            Aggregate::Sum(_) => DataType::Decimal128(30, 0),
            Aggregate::Min(c) | Aggregate::Max(c) => {
                if table.columns[c].ty.unsigned {
                    DataType::UInt64
                } else {
                    DataType::Int64
                }
            }
        }
    }
}

/// A `SELECT` the fast path serves.
#[derive(Debug, Clone)]
pub(crate) struct PointGet {
    table: Arc<TableInfo>,
    /// The name the statement gives the table (its alias, or its name).
    shown: String,
    /// The output columns: table column offsets and the names shown.
    columns: Vec<(usize, String)>,
    /// Or, without GROUP BY, aggregates and the names shown: one row.
    aggregates: Vec<(Aggregate, String)>,
    keys: Keys,
    distinct: bool,
    /// Output columns to sort by, descending or not.
    order: Vec<(usize, bool)>,
    limit: Option<usize>,
    offset: usize,
}

/// Whether the fast path can sort and compare values of this type exactly
/// as the query engine does (not floating point or decimal text, not TIME,
/// not JSON).
fn orderable(kind: TypeKind) -> bool {
    !matches!(
        kind,
        TypeKind::Decimal | TypeKind::Float | TypeKind::Double | TypeKind::Time | TypeKind::Json
    )
}

/// MySQL's order of two values of one orderable column: NULL first.
fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::UInt(x), Value::UInt(y)) => x.cmp(y),
        (Value::Int(x), Value::UInt(y)) => i128::from(*x).cmp(&i128::from(*y)),
        (Value::UInt(x), Value::Int(y)) => i128::from(*x).cmp(&i128::from(*y)),
        (Value::Str(x), Value::Str(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Bytes(x), Value::Bytes(y)) => x.cmp(y),
        (Value::Date(x), Value::Date(y)) => x.cmp(y),
        (Value::DateTime(x), Value::DateTime(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

/// Compares rows column by column, each in its direction.
fn compare_rows(
    a: &[Value],
    b: &[Value],
    columns: impl Iterator<Item = (usize, bool)>,
) -> Ordering {
    for (i, desc) in columns {
        let o = compare(&a[i], &b[i]);
        if o.is_ne() {
            return if desc { o.reverse() } else { o };
        }
    }
    Ordering::Equal
}

/// Recognizes a `SELECT` the fast path serves; `None` sends the query to
/// the query engine. `routing` says which engines may serve the table.
pub(crate) fn plan(
    q: &Query,
    params: &[Value],
    catalog: &Catalog,
    current_db: Option<&str>,
    routing: Option<&Routing>,
    sql: &str,
) -> Option<PointGet> {
    if q.with.is_some() || q.fetch.is_some() || !q.locks.is_empty() {
        return None;
    }
    let (limit, offset) = limit_offset(q, params)?;
    let SetExpr::Select(select) = q.body.as_ref() else {
        return None;
    };
    let distinct = match &select.distinct {
        None | Some(Distinct::All) => false,
        Some(Distinct::Distinct) => true,
        Some(_) => return None,
    };
    if select.having.is_some()
        || !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty())
        || select.from.len() != 1
        || !select.from[0].joins.is_empty()
    {
        return None;
    }
    let TableFactor::Table {
        name,
        alias,
        args: None,
        ..
    } = &select.from[0].relation
    else {
        return None;
    };
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| p.as_ident().map(|i| i.value.clone()))
        .collect::<Option<_>>()?;
    let (database, table_name) = match parts.as_slice() {
        [t] => (current_db?.to_string(), t.clone()),
        [d, t] => (d.clone(), t.clone()),
        _ => return None,
    };
    let info = catalog.table(&database, &table_name)?;
    let shown = alias
        .as_ref()
        .map_or(table_name.as_str(), |a| a.name.value.as_str());
    let target = Target::new(info, shown)?;
    if routing.is_some_and(|r| !r.row_may_serve(&table_name)) {
        return None;
    }
    let mut columns = Vec::new();
    let mut aggregates = Vec::new();
    let mut output_names = None;
    let mut names = |i: usize| {
        output_names
            .get_or_insert_with(|| rewrite::output_names(sql, q))
            .get(i)
            .cloned()
            .flatten()
    };
    for (i, item) in select.projection.iter().enumerate() {
        let aggregate = match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                Aggregate::of(e, &target)
            }
            _ => None,
        };
        if let Some(a) = aggregate {
            // Named as the query engine names it: as written.
            let name = names(i).unwrap_or_else(|| match item {
                SelectItem::ExprWithAlias { alias, .. } => alias.value.clone(),
                other => other.to_string(),
            });
            aggregates.push((a, name));
            continue;
        }
        match item {
            SelectItem::Wildcard(_) => {
                columns.extend(
                    info.columns
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (i, c.name.clone())),
                );
            }
            SelectItem::UnnamedExpr(e) => {
                columns.push((target.column(e)?, ident_name(e)?.to_string()));
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                columns.push((target.column(expr)?, alias.value.clone()));
            }
            _ => return None,
        }
    }
    if !aggregates.is_empty() && (!columns.is_empty() || distinct || q.order_by.is_some()) {
        return None;
    }
    let keys = target.keys(select.selection.as_ref()?, params)?;
    if keys.width() > i128::from(RANGE_ROWS) {
        return None;
    }
    let order = match q.order_by.as_ref().map(|o| &o.kind) {
        None => Vec::new(),
        Some(OrderByKind::Expressions(list)) => list
            .iter()
            .map(|o| {
                let at = order_column(o, &target, &columns)?;
                Some((at, o.options.asc == Some(false)))
            })
            .collect::<Option<Vec<_>>>()?,
        Some(_) => return None,
    };
    let compared: Vec<usize> = if distinct {
        (0..columns.len()).collect()
    } else {
        order.iter().map(|(i, _)| *i).collect()
    };
    // Text of a `_ci` collation sorts and deduplicates by its sort key,
    // which the query engine applies.
    if !compared.iter().all(|&i| {
        let column = &info.columns[columns[i].0];
        orderable(column.ty.kind) && column.collation.is_binary()
    }) {
        return None;
    }
    Some(PointGet {
        table: Arc::clone(info),
        shown: shown.to_string(),
        columns,
        aggregates,
        keys,
        distinct,
        order,
        limit,
        offset,
    })
}

/// The output column an `ORDER BY` item sorts by: an output name, a
/// column of the table that is output, or a position.
fn order_column(
    o: &OrderByExpr,
    target: &Target<'_>,
    columns: &[(usize, String)],
) -> Option<usize> {
    if o.with_fill.is_some() || o.options.nulls_first.is_some() {
        return None;
    }
    // A number is a position; a parameter is a constant, not a position.
    if let Expr::Value(v) = &o.expr {
        let ast::Value::Number(n, _) = &v.value else {
            return None;
        };
        let n: usize = n.parse().ok()?;
        return (1..=columns.len()).contains(&n).then(|| n - 1);
    }
    if let Expr::Identifier(i) = &o.expr
        && let Some(at) = columns
            .iter()
            .position(|(_, name)| name.eq_ignore_ascii_case(&i.value))
    {
        return Some(at);
    }
    let c = target.column(&o.expr)?;
    columns.iter().position(|(offset, _)| *offset == c)
}

impl PointGet {
    /// This plan for another execution of the same (prepared) query: the
    /// keys and the limits bound to `params`; `None` if they no longer
    /// suit the fast path (a range too wide).
    pub(crate) fn rebind(&self, q: &Query, params: &[Value]) -> Option<PointGet> {
        let SetExpr::Select(select) = q.body.as_ref() else {
            return None;
        };
        let target = Target::new(&self.table, &self.shown)?;
        let keys = target.keys(select.selection.as_ref()?, params)?;
        if keys.width() > i128::from(RANGE_ROWS) {
            return None;
        }
        let (limit, offset) = limit_offset(q, params)?;
        Some(PointGet {
            keys,
            limit,
            offset,
            ..self.clone()
        })
    }

    /// Reads the rows: in key order, or sorted as asked; distinct if asked.
    pub(crate) fn run(&self, txn: &dyn KvTxn, database: &str) -> Result<ResultSet> {
        let reorders = self.distinct || !self.order.is_empty();
        let wanted = match (reorders, self.limit) {
            (false, Some(l)) => l.saturating_add(self.offset),
            _ => usize::MAX,
        };
        let read = self.keys.read(txn, &self.table, wanted)?;
        if !self.aggregates.is_empty() {
            let row: Vec<Value> = self
                .aggregates
                .iter()
                .map(|(a, _)| a.compute(&read))
                .collect();
            let rows = std::iter::once(row)
                .skip(self.offset)
                .take(self.limit.unwrap_or(usize::MAX))
                .collect();
            return Ok(ResultSet {
                columns: self.columns(database),
                rows,
            });
        }
        let mut rows: Vec<Vec<Value>> = read
            .into_iter()
            .map(|(_, row)| {
                self.columns
                    .iter()
                    .map(|(c, _)| datum_to_value(&row[*c]))
                    .collect()
            })
            .collect();
        if reorders {
            let order = || self.order.iter().copied();
            if self.distinct {
                // Sorted by the order, then by the whole row, equal rows
                // are adjacent.
                let whole = || (0..self.columns.len()).map(|i| (i, false));
                rows.sort_by(|a, b| {
                    compare_rows(a, b, order()).then_with(|| compare_rows(a, b, whole()))
                });
                rows.dedup_by(|a, b| compare_rows(a, b, whole()).is_eq());
            } else {
                rows.sort_by(|a, b| compare_rows(a, b, order()));
            }
        }
        let rows = rows
            .into_iter()
            .skip(self.offset)
            .take(self.limit.unwrap_or(usize::MAX))
            .collect();
        Ok(ResultSet {
            columns: self.columns(database),
            rows,
        })
    }

    /// The result columns, with the table's declared types (an
    /// aggregate's as the query engine describes it).
    pub(crate) fn columns(&self, database: &str) -> Vec<Column> {
        if !self.aggregates.is_empty() {
            return self
                .aggregates
                .iter()
                .map(|(a, name)| arrow::column_for(name.clone(), &a.arrow_type(&self.table)))
                .collect();
        }
        self.columns
            .iter()
            .map(|(c, name)| {
                let info = &self.table.columns[*c];
                arrow::declared_column(
                    name,
                    &info.ty,
                    info.nullable,
                    &info.name,
                    &self.table.name,
                    database,
                )
            })
            .collect()
    }

    /// For `EXPLAIN`: the operator, its estimated rows and what it reads
    /// (`handle:5`, `handle:[1,(1,5)]` or `range:[1,100]`, then any sort,
    /// `distinct` and limit).
    pub(crate) fn describe(&self) -> (&'static str, usize, String) {
        let handle = |h: &Vec<i64>| match h.as_slice() {
            [one] => one.to_string(),
            many => {
                let parts: Vec<String> = many.iter().map(i64::to_string).collect();
                format!("({})", parts.join(","))
            }
        };
        let (operator, mut info) = match &self.keys {
            Keys::Points(p) if p.len() == 1 => ("Point_Get_1", format!("handle:{}", handle(&p[0]))),
            Keys::Points(p) => {
                let all: Vec<String> = p.iter().map(handle).collect();
                ("Batch_Point_Get_1", format!("handle:[{}]", all.join(",")))
            }
            Keys::Range(lo, hi) => ("TableRangeScan_1", format!("range:[{lo},{hi}]")),
        };
        if !self.order.is_empty() {
            let keys: Vec<String> = self
                .order
                .iter()
                .map(|&(i, desc)| {
                    let dir = if desc { ":desc" } else { "" };
                    format!("{}{dir}", self.columns[i].1)
                })
                .collect();
            info.push_str(&format!(", order by:{}", keys.join(",")));
        }
        if self.distinct {
            info.push_str(", distinct");
        }
        if !self.aggregates.is_empty() {
            let names: Vec<&str> = self.aggregates.iter().map(|(_, n)| n.as_str()).collect();
            info.push_str(&format!(", aggregate:{}", names.join(",")));
        }
        if let Some(l) = self.limit {
            info.push_str(&format!(", offset:{}, count:{l}", self.offset));
        }
        let width = usize::try_from(self.keys.width()).unwrap_or(usize::MAX);
        (operator, self.limit.map_or(width, |l| l.min(width)), info)
    }

    /// The table's name.
    pub(crate) fn table_name(&self) -> &str {
        &self.table.name
    }

    pub(crate) fn database_of(&self, catalog: &Catalog) -> String {
        catalog
            .databases()
            .find(|d| d.id == self.table.database_id)
            .map(|d| d.name.clone())
            .unwrap_or_default()
    }
}
