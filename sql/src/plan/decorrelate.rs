//! Correlated subqueries DataFusion cannot plan, rewritten as joins.
//!
//! DataFusion decorrelates a subquery whose correlation is an equality
//! (`x.a = t.a`) but refuses one correlated by any other comparison, such as
//! `(SELECT count(*) FROM t1 AS x WHERE x.b < t1.b)` or
//! `EXISTS (SELECT 1 FROM t1 AS x WHERE x.b < t1.b)`. MySQL answers those, so
//! this module rewrites them before planning into a grouped join over the
//! distinct values of the outer columns they use:
//!
//! ```sql
//! LEFT JOIN (SELECT d.k0, count(*) AS v
//!            FROM (SELECT DISTINCT t1.b AS k0 FROM t1) AS d
//!            JOIN t1 AS x ON x.b < d.k0
//!            GROUP BY d.k0) AS sq ON sq.k0 IS NOT DISTINCT FROM t1.b
//! ```
//!
//! and the subquery becomes `COALESCE(sq.v, 0)` (a count over no rows is 0;
//! any other aggregate over no rows is NULL, which the outer join gives),
//! `EXISTS` becomes `COALESCE(sq.v, 0) > 0`. Only shapes whose meaning is
//! certain are rewritten: one inner table, an aggregate (or `EXISTS`), no
//! grouping or limit inside, outer columns named with their table's name,
//! all from one outer table. Anything else is left for DataFusion to plan or
//! refuse.

use std::ops::ControlFlow;

use crate::dialect::MySql;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, GroupByExpr, Ident, Join, ObjectName, Query, Select, SelectItem, SetExpr,
    TableFactor, Visit, VisitMut, Visitor, VisitorMut,
};
use datafusion::sql::sqlparser::parser::Parser;

const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "group_concat",
    "bit_and",
    "bit_or",
    "bit_xor",
    "std",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "var_pop",
    "var_samp",
];

/// Rewrites the correlated subqueries of `query` (and of its set operations
/// and derived tables) that DataFusion could not plan.
pub(crate) fn decorrelate(query: &mut Query) {
    let mut next = 0;
    rewrite_query(query, &mut next);
}

fn rewrite_query(query: &mut Query, next: &mut usize) {
    rewrite_set_expr(&mut query.body, next);
    if let SetExpr::Select(select) = query.body.as_mut() {
        let order_by = query.order_by.as_mut().map(|o| &mut o.kind);
        let mut order_exprs: Vec<&mut Expr> = match order_by {
            Some(datafusion::sql::sqlparser::ast::OrderByKind::Expressions(list)) => {
                list.iter_mut().map(|o| &mut o.expr).collect()
            }
            _ => Vec::new(),
        };
        rewrite_select(select, &mut order_exprs, next);
    }
}

fn rewrite_set_expr(body: &mut SetExpr, next: &mut usize) {
    match body {
        SetExpr::SetOperation { left, right, .. } => {
            rewrite_set_expr(left, next);
            rewrite_set_expr(right, next);
        }
        SetExpr::Query(q) => rewrite_query(q, next),
        SetExpr::Select(select) => {
            for table in &mut select.from {
                for factor in std::iter::once(&mut table.relation)
                    .chain(table.joins.iter_mut().map(|j| &mut j.relation))
                {
                    if let TableFactor::Derived { subquery, .. } = factor {
                        rewrite_query(subquery, next);
                    }
                }
            }
        }
        _ => {}
    }
}

/// A table of the outer FROM clause, by the name its columns are qualified
/// with.
struct OuterTable {
    visible: String,
    name: ObjectName,
    /// Index of the FROM item (comma-separated) it belongs to: a join
    /// added there may refer to it.
    from_item: usize,
}

fn rewrite_select(select: &mut Select, order_by: &mut [&mut Expr], next: &mut usize) {
    for item in &mut select.projection {
        if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
            let _ = VisitMut::visit(e, &mut InToCounts { depth: 0 });
        }
    }
    let Some(outer) = outer_tables(select) else {
        return;
    };
    let aggregated = !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty())
        || select.having.is_some()
        || select.projection.iter().any(|item| match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                has_aggregate(e)
            }
            _ => false,
        });
    let mut rewriter = Rewriter {
        outer: &outer,
        joins: Vec::new(),
        next,
        depth: 0,
    };
    if let Some(selection) = select.selection.as_mut() {
        let _ = VisitMut::visit(selection, &mut rewriter);
    }
    // In an aggregated query the subquery's value would have to be grouped
    // on: leave those to DataFusion.
    if !aggregated {
        for item in &mut select.projection {
            if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
                let _ = VisitMut::visit(e, &mut rewriter);
            }
        }
        for e in order_by.iter_mut() {
            let _ = VisitMut::visit(&mut **e, &mut rewriter);
        }
    }
    let joins = std::mem::take(&mut rewriter.joins);
    if joins.is_empty() {
        return;
    }
    // `*` must not show the joined columns: name the original tables.
    if select
        .projection
        .iter()
        .any(|i| matches!(i, SelectItem::Wildcard(_)))
    {
        let mut expanded = Vec::new();
        for item in select.projection.drain(..) {
            if matches!(item, SelectItem::Wildcard(_)) {
                for table in &outer {
                    if let Some(wildcard) = parse_select(&format!("SELECT {}.*", table.visible))
                        .and_then(|mut s| {
                            (!s.projection.is_empty()).then(|| s.projection.remove(0))
                        })
                    {
                        expanded.push(wildcard);
                    }
                }
            } else {
                expanded.push(item);
            }
        }
        select.projection = expanded;
    }
    for (from_item, join) in joins {
        select.from[from_item].joins.push(join);
    }
}

/// The named tables of the FROM clause; `None` if some FROM item has no
/// name to qualify its columns with (the rewrite then cannot expand `*`).
fn outer_tables(select: &Select) -> Option<Vec<OuterTable>> {
    let mut tables = Vec::new();
    for (i, item) in select.from.iter().enumerate() {
        for factor in std::iter::once(&item.relation).chain(item.joins.iter().map(|j| &j.relation))
        {
            match factor {
                TableFactor::Table { name, alias, .. } => tables.push(OuterTable {
                    visible: alias
                        .as_ref()
                        .map(|a| a.name.value.to_ascii_lowercase())
                        .or_else(|| last_part(name))?,
                    name: name.clone(),
                    from_item: i,
                }),
                TableFactor::Derived {
                    alias: Some(alias), ..
                } => tables.push(OuterTable {
                    visible: alias.name.value.to_ascii_lowercase(),
                    // Not a correlation target: no base table to read.
                    name: ObjectName(Vec::new()),
                    from_item: i,
                }),
                _ => return None,
            }
        }
    }
    Some(tables)
}

fn last_part(name: &ObjectName) -> Option<String> {
    name.0
        .last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.to_ascii_lowercase())
}

struct Rewriter<'a> {
    outer: &'a [OuterTable],
    joins: Vec<(usize, Join)>,
    next: &'a mut usize,
    depth: usize,
}

impl VisitorMut for Rewriter<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if self.depth > 0 {
            return ControlFlow::Continue(());
        }
        let rewritten = match expr {
            Expr::Subquery(q) => self.rewrite(q, None),
            Expr::Exists { subquery, negated } => self.rewrite(subquery, Some(*negated)),
            _ => None,
        };
        if let Some(replacement) = rewritten {
            *expr = replacement;
        }
        ControlFlow::Continue(())
    }
}

impl Rewriter<'_> {
    /// The join that computes `subquery` per outer row and the expression
    /// that replaces it; `exists` is `Some(negated)` for `[NOT] EXISTS`.
    fn rewrite(&mut self, subquery: &Query, exists: Option<bool>) -> Option<Expr> {
        if subquery.with.is_some()
            || subquery.order_by.is_some()
            || subquery.limit_clause.is_some()
            || subquery.fetch.is_some()
        {
            return None;
        }
        let SetExpr::Select(inner) = subquery.body.as_ref() else {
            return None;
        };
        if inner.from.len() != 1
            || !inner.from[0].joins.is_empty()
            || inner.distinct.is_some()
            || inner.having.is_some()
            || !matches!(&inner.group_by, GroupByExpr::Expressions(e, _) if e.is_empty())
        {
            return None;
        }
        let TableFactor::Table {
            name: inner_name,
            alias: inner_alias,
            args: None,
            ..
        } = &inner.from[0].relation
        else {
            return None;
        };
        let inner_visible = inner_alias
            .as_ref()
            .map(|a| a.name.value.to_ascii_lowercase())
            .or_else(|| last_part(inner_name))?;
        let predicate = inner.selection.as_ref()?;
        if contains_subquery(predicate) {
            return None;
        }
        let aggregate = match exists {
            Some(_) => None,
            None => match inner.projection.as_slice() {
                [SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }] => {
                    let Expr::Function(f) = e else { return None };
                    let name = f.name.to_string().to_ascii_lowercase();
                    if !AGGREGATES.contains(&name.as_str()) || contains_subquery(e) {
                        return None;
                    }
                    Some((e.clone(), name == "count"))
                }
                _ => return None,
            },
        };

        // The outer columns the subquery uses, all of one outer table.
        let mut refs = OuterRefs {
            inner: &inner_visible,
            outer: self.outer,
            columns: Vec::new(),
            foreign: false,
        };
        let _ = predicate.visit(&mut refs);
        if let Some((e, _)) = &aggregate {
            let _ = e.visit(&mut refs);
        }
        if refs.foreign || refs.columns.is_empty() {
            return None;
        }
        let table = refs.columns[0].0.clone();
        if refs.columns.iter().any(|(t, _)| *t != table) {
            return None;
        }
        let outer = self.outer.iter().find(|o| o.visible == table)?;
        if outer.name.0.is_empty() {
            return None;
        }
        if equality_correlated(predicate, &inner_visible, self.outer) {
            return None; // DataFusion decorrelates these itself, and better
        }

        let n = *self.next;
        *self.next += 1;
        let sq = format!("__duet_sq{n}");
        let keys: Vec<String> = (0..refs.columns.len())
            .map(|j| format!("__duet_k{j}"))
            .collect();
        let substitute = |e: &Expr| {
            let mut e = e.clone();
            let _ = VisitMut::visit(
                &mut e,
                &mut Substitute {
                    table: &table,
                    columns: &refs.columns,
                },
            );
            e
        };
        let distinct_keys: Vec<String> = refs
            .columns
            .iter()
            .zip(&keys)
            .map(|((t, c), k)| format!("{t}.{c} AS {k}"))
            .collect();
        let grouped_keys: Vec<String> = keys.iter().map(|k| format!("__duet_d.{k}")).collect();
        let value = match &aggregate {
            Some((e, _)) => substitute(e).to_string(),
            None => "count(*)".to_string(),
        };
        let on: Vec<String> = refs
            .columns
            .iter()
            .zip(&keys)
            .map(|((t, c), k)| format!("({sq}.{k} IS NOT DISTINCT FROM {t}.{c})"))
            .collect();
        let text = format!(
            "SELECT 1 FROM __duet_outer LEFT JOIN (SELECT {grouped}, {value} AS __duet_v \
             FROM (SELECT DISTINCT {distinct} FROM {outer_name} AS {table}) AS __duet_d \
             JOIN {inner_factor} ON ({predicate}) GROUP BY {grouped}) AS {sq} ON {on}",
            grouped = grouped_keys.join(", "),
            distinct = distinct_keys.join(", "),
            outer_name = outer.name,
            inner_factor = inner.from[0].relation,
            predicate = substitute(predicate),
            on = on.join(" AND "),
        );
        let mut parsed = parse_select(&text)?;
        let join = parsed.from.pop()?.joins.pop()?;
        let replacement = match (exists, &aggregate) {
            (Some(false), _) => format!("COALESCE({sq}.__duet_v, 0) > 0"),
            (Some(true), _) => format!("COALESCE({sq}.__duet_v, 0) = 0"),
            (None, Some((_, true))) => format!("COALESCE({sq}.__duet_v, 0)"),
            (None, _) => format!("{sq}.__duet_v"),
        };
        let mut replacement = parse_select(&format!("SELECT ({replacement})"))?;
        let SelectItem::UnnamedExpr(replacement) = replacement.projection.pop()? else {
            return None;
        };
        self.joins.push((outer.from_item, join));
        Some(replacement)
    }
}

/// `x [NOT] IN (subquery)` outside WHERE, which DataFusion cannot run,
/// as counts over the subquery with MySQL's three-valued answer: FALSE
/// over no rows, NULL for a NULL `x`, TRUE on a match, else NULL if the
/// subquery has a NULL, else FALSE.
struct InToCounts {
    depth: usize,
}

impl VisitorMut for InToCounts {
    type Break = ();

    fn pre_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if self.depth > 0 {
            return ControlFlow::Continue(());
        }
        if let Expr::InSubquery {
            expr: x,
            subquery,
            negated,
        } = expr
        {
            let rows = format!("({subquery}) AS __duet_in(__duet_c)");
            let text = format!(
                "SELECT {not}(CASE WHEN (SELECT count(*) FROM {rows}) = 0 THEN FALSE \
                 WHEN ({x}) IS NULL THEN NULL \
                 WHEN (SELECT count(*) FROM {rows} WHERE __duet_c = ({x})) > 0 THEN TRUE \
                 WHEN (SELECT count(*) FROM {rows} WHERE __duet_c IS NULL) > 0 THEN NULL \
                 ELSE FALSE END)",
                not = if *negated { "NOT " } else { "" },
            );
            if let Some(mut select) = parse_select(&text)
                && let Some(SelectItem::UnnamedExpr(replacement)) = select.projection.pop()
            {
                *expr = replacement;
            }
        }
        ControlFlow::Continue(())
    }
}

fn parse_select(sql: &str) -> Option<Select> {
    let mut statements = Parser::parse_sql(&MySql, sql).ok()?;
    let datafusion::sql::sqlparser::ast::Statement::Query(query) = statements.pop()? else {
        return None;
    };
    match *query.body {
        SetExpr::Select(select) => Some(*select),
        _ => None,
    }
}

/// Collects the outer columns (`table.column`, table an outer name the
/// inner table does not shadow) a subquery uses; `foreign` if it names a
/// table that is neither, or a column in a form this rewrite does not know.
struct OuterRefs<'a> {
    inner: &'a str,
    outer: &'a [OuterTable],
    columns: Vec<(String, String)>,
    foreign: bool,
}

impl Visitor for OuterRefs<'_> {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if let Expr::CompoundIdentifier(parts) = expr {
            match parts.as_slice() {
                [t, c] => {
                    let t = t.value.to_ascii_lowercase();
                    if t == self.inner {
                        return ControlFlow::Continue(());
                    }
                    if self.outer.iter().any(|o| o.visible == t) {
                        let column = (t, c.value.to_ascii_lowercase());
                        if !self.columns.contains(&column) {
                            self.columns.push(column);
                        }
                    } else {
                        self.foreign = true;
                    }
                }
                _ => self.foreign = true,
            }
        }
        ControlFlow::Continue(())
    }
}

/// Replaces the outer columns with the distinct-key columns.
struct Substitute<'a> {
    table: &'a str,
    columns: &'a [(String, String)],
}

impl VisitorMut for Substitute<'_> {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::CompoundIdentifier(parts) = expr
            && let [t, c] = parts.as_slice()
            && t.value.eq_ignore_ascii_case(self.table)
        {
            let column = (self.table.to_string(), c.value.to_ascii_lowercase());
            if let Some(j) = self.columns.iter().position(|x| *x == column) {
                *parts = vec![Ident::new("__duet_d"), Ident::new(format!("__duet_k{j}"))];
            }
        }
        ControlFlow::Continue(())
    }
}

/// Whether every conjunct that names an outer column is `inner = outer`.
fn equality_correlated(predicate: &Expr, inner: &str, outer: &[OuterTable]) -> bool {
    let mut conjuncts = Vec::new();
    split_and(predicate, &mut conjuncts);
    conjuncts.iter().all(|c| {
        let uses_outer = |e: &Expr| {
            let mut refs = OuterRefs {
                inner,
                outer,
                columns: Vec::new(),
                foreign: false,
            };
            let _ = e.visit(&mut refs);
            !refs.columns.is_empty()
        };
        if !uses_outer(c) {
            return true;
        }
        match c {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            } => uses_outer(left) != uses_outer(right),
            _ => false,
        }
    })
}

/// The conjuncts of an `AND` chain (parentheses looked through).
pub(crate) fn split_and<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            split_and(left, out);
            split_and(right, out);
        }
        Expr::Nested(inner) => split_and(inner, out),
        _ => out.push(e),
    }
}

fn contains_subquery(e: &Expr) -> bool {
    struct Finder;
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            ControlFlow::Break(())
        }
    }
    e.visit(&mut Finder).is_break()
}

/// Whether `e` calls an aggregate outside any subquery of its own.
fn has_aggregate(e: &Expr) -> bool {
    struct Finder {
        depth: usize,
    }
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if self.depth == 0
                && let Expr::Function(f) = e
                && AGGREGATES.contains(&f.name.to_string().to_ascii_lowercase().as_str())
            {
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    e.visit(&mut Finder { depth: 0 }).is_break()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        let mut statements = Parser::parse_sql(&MySql, sql).unwrap();
        let datafusion::sql::sqlparser::ast::Statement::Query(mut query) =
            statements.pop().unwrap()
        else {
            panic!("not a query")
        };
        decorrelate(&mut query);
        query.to_string()
    }

    #[test]
    fn inequality_correlated_count_becomes_a_grouped_left_join() {
        let sql =
            rewritten("SELECT a, (SELECT count(*) FROM t1 AS x WHERE x.b<t1.b) FROM t1 ORDER BY 1");
        assert!(sql.contains("COALESCE(__duet_sq0.__duet_v, 0)"), "{sql}");
        assert!(
            sql.contains("SELECT DISTINCT t1.b AS __duet_k0 FROM t1 AS t1"),
            "{sql}"
        );
        assert!(sql.contains("(x.b < __duet_d.__duet_k0)"), "{sql}");
        assert!(
            sql.contains("(__duet_sq0.__duet_k0 IS NOT DISTINCT FROM t1.b)"),
            "{sql}"
        );
    }

    #[test]
    fn exists_and_star_are_rewritten_without_showing_the_join() {
        let sql = rewritten(
            "SELECT * FROM t1 WHERE NOT EXISTS(SELECT 1 FROM t1 AS x WHERE x.c>t1.c AND x.d<t1.d)",
        );
        assert!(sql.starts_with("SELECT t1.* FROM t1 LEFT JOIN"), "{sql}");
        assert!(
            sql.contains("COALESCE(__duet_sq0.__duet_v, 0) = 0"),
            "{sql}"
        );
        assert!(sql.contains("__duet_k1"), "{sql}");
    }

    #[test]
    fn in_subquery_in_the_select_list_becomes_counts() {
        let sql = rewritten("SELECT 1 NOT IN (SELECT * FROM t1) FROM t2");
        assert!(sql.starts_with("SELECT NOT (CASE WHEN"), "{sql}");
        assert!(
            sql.contains("FROM (SELECT * FROM t1) AS __duet_in (__duet_c) WHERE __duet_c = (1)"),
            "{sql}"
        );
        let untouched = rewritten("SELECT a FROM t2 WHERE a IN (SELECT b FROM t1)");
        assert!(!untouched.contains("__duet"), "{untouched}");
    }

    #[test]
    fn shapes_datafusion_plans_are_left_alone() {
        for sql in [
            "SELECT (SELECT avg(c) FROM t1) FROM t1",
            "SELECT (SELECT max(x.c) FROM t1 AS x WHERE x.a = t1.a) FROM t1",
            "SELECT a FROM t1 WHERE b > (SELECT count(*) FROM t2 WHERE t2.b < t3.b)",
            "SELECT count(*), (SELECT count(*) FROM t1 AS x WHERE x.b<t1.b) FROM t1",
        ] {
            assert!(!rewritten(sql).contains("__duet"), "{sql}");
        }
    }
}
