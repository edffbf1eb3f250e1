//! The row executor's fast path: `SELECT cols FROM t WHERE pk = v` (or
//! `pk IN (v, …)`) on a table keyed by an integer primary key, and
//! `WHERE a = v AND b = w …` naming every column of a clustered primary key
//! of signed integers, read the rows by key — point gets — without planning
//! anything in DataFusion. Anything else (expressions, joins, other
//! conditions) is left to the query engine.

use datafusion::sql::sqlparser::ast::{
    self, BinaryOperator, Expr, GroupByExpr, Query, SelectItem, SetExpr, TableFactor,
};
use duet_storage::codec::{Datum, key};

use crate::catalog::{Catalog, HandleKind, TableInfo};
use crate::error::Result;
use crate::kv::KvTxn;
use crate::table;
use crate::types::datum_to_value;
use crate::value::{Column, ResultSet, Value};

/// A query the fast path serves: the table, the output columns (offsets)
/// and the handles to read, in the order given (one value per primary key
/// column).
pub(crate) struct PointGet {
    table: std::sync::Arc<TableInfo>,
    columns: Vec<(usize, String)>,
    handles: Vec<Vec<i64>>,
    limit: Option<usize>,
}

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

/// Recognizes a point get; `None` sends the query to the query engine.
pub(crate) fn plan(
    q: &Query,
    params: &[Value],
    catalog: &Catalog,
    current_db: Option<&str>,
) -> Option<PointGet> {
    if q.with.is_some() || q.order_by.is_some() || q.fetch.is_some() || !q.locks.is_empty() {
        return None;
    }
    let limit = match &q.limit_clause {
        None => None,
        Some(ast::LimitClause::LimitOffset {
            limit: Some(l),
            offset: None,
            limit_by,
        }) if limit_by.is_empty() => Some(usize::try_from(int_literal(l, params)?).ok()?),
        Some(_) => return None,
    };
    let SetExpr::Select(select) = q.body.as_ref() else {
        return None;
    };
    if select.distinct.is_some()
        || select.having.is_some()
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
    // The key columns, in key order.
    let key_columns: Vec<usize> = match info.handle {
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
    // Qualified references must name this table (or its alias).
    let qualifier_ok = |e: &Expr| match e {
        Expr::CompoundIdentifier(p) if p.len() == 2 => {
            let q = &p[0].value;
            alias
                .as_ref()
                .map_or(q.eq_ignore_ascii_case(&table_name), |a| {
                    a.name.value.eq_ignore_ascii_case(q)
                })
        }
        Expr::CompoundIdentifier(p) => p.len() < 2,
        _ => true,
    };
    let mut columns = Vec::new();
    for item in &select.projection {
        match item {
            SelectItem::Wildcard(_) => {
                columns.extend(
                    info.columns
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (i, c.name.clone())),
                );
            }
            SelectItem::UnnamedExpr(e) if qualifier_ok(e) => {
                let n = ident_name(e)?;
                columns.push((info.column_offset(n)?, n.to_string()));
            }
            SelectItem::ExprWithAlias { expr, alias } if qualifier_ok(expr) => {
                let n = ident_name(expr)?;
                columns.push((info.column_offset(n)?, alias.value.clone()));
            }
            _ => return None,
        }
    }
    let key_of = |e: &Expr| {
        if !qualifier_ok(e) {
            return None;
        }
        let n = ident_name(e)?;
        key_columns
            .iter()
            .position(|&c| n.eq_ignore_ascii_case(&info.columns[c].name))
    };
    let selection = select.selection.as_ref()?;
    let handles = match (selection, key_columns.len()) {
        (
            Expr::InList {
                expr,
                list,
                negated: false,
            },
            1,
        ) if key_of(expr).is_some() => list
            .iter()
            .map(|e| int_literal(e, params).map(|v| vec![v]))
            .collect::<Option<Vec<_>>>()?,
        _ => {
            // `k1 = v1 AND k2 = v2 …`: every key column once, nothing else.
            let mut parts = Vec::new();
            crate::decorrelate::split_and(selection, &mut parts);
            let mut values = vec![None; key_columns.len()];
            for part in parts {
                let Expr::BinaryOp {
                    left,
                    op: BinaryOperator::Eq,
                    right,
                } = part
                else {
                    return None;
                };
                let (at, value) = match (key_of(left), key_of(right)) {
                    (Some(at), _) => (at, int_literal(right, params)?),
                    (None, Some(at)) => (at, int_literal(left, params)?),
                    (None, None) => return None,
                };
                if values[at].replace(value).is_some() {
                    return None;
                }
            }
            vec![values.into_iter().collect::<Option<Vec<i64>>>()?]
        }
    };
    Some(PointGet {
        table: std::sync::Arc::clone(info),
        columns,
        handles,
        limit,
    })
}

impl PointGet {
    /// Reads the rows (each handle once, in key order as MySQL returns them).
    pub(crate) fn run(&self, txn: &dyn KvTxn, database: &str) -> Result<ResultSet> {
        let mut handles = self.handles.clone();
        handles.sort_unstable();
        handles.dedup();
        let mut rows = Vec::new();
        for h in handles {
            if self.limit.is_some_and(|l| rows.len() >= l) {
                break;
            }
            let k = match self.table.handle {
                HandleKind::IntPk(_) => key::row_key(self.table.id, h[0]),
                _ => {
                    let datums: Vec<Datum> = h.iter().map(|&v| Datum::Int(v)).collect();
                    match key::row_key_common(self.table.id, &datums) {
                        Ok(k) => k,
                        Err(e) => {
                            return Err(crate::error::Error::Internal(format!("row key: {e}")));
                        }
                    }
                }
            };
            if let Some(row) = table::get_row_by_key(txn, &self.table, &k)? {
                rows.push(
                    self.columns
                        .iter()
                        .map(|(c, _)| datum_to_value(&row[*c]))
                        .collect(),
                );
            }
        }
        Ok(ResultSet {
            columns: self.columns(database),
            rows,
        })
    }

    /// The result columns, with the table's declared types.
    pub(crate) fn columns(&self, database: &str) -> Vec<Column> {
        self.columns
            .iter()
            .map(|(c, name)| {
                let info = &self.table.columns[*c];
                crate::query::declared_column(
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

    /// The table's name and the handles to read, for `EXPLAIN`: `5`, or
    /// `(1,5)` for a key of several columns.
    pub(crate) fn target(&self) -> (&str, Vec<String>) {
        let handles = self
            .handles
            .iter()
            .map(|h| match h.as_slice() {
                [one] => one.to_string(),
                many => {
                    let parts: Vec<String> = many.iter().map(i64::to_string).collect();
                    format!("({})", parts.join(","))
                }
            })
            .collect();
        (&self.table.name, handles)
    }

    pub(crate) fn database_of(&self, catalog: &Catalog) -> String {
        catalog
            .databases()
            .find(|d| d.id == self.table.database_id)
            .map(|d| d.name.clone())
            .unwrap_or_default()
    }
}
