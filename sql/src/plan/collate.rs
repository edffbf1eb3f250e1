//! The query engines' side of collations: an analyzer rule that makes text
//! of a `_ci` column (a field marked with [`COLLATION_META`]) compare,
//! sort, group, deduplicate and join by its collation's sort key
//! ([`crate::collation`]), the same key its index entries hold. The row
//! store's and the columnar replica's scans both feed these plans, so both
//! engines give the same answer.
//!
//! - `a op b` (`=`, `<>`, `<`, `<=`, `>`, `>=`, `<=>`), `BETWEEN` and `IN`
//!   with a `_ci` side and text on the other: both sides' sort keys;
//! - `LIKE`: both sides case- and accent-folded;
//! - `ORDER BY`: the sort key;
//! - `GROUP BY` and `DISTINCT`: grouped by the sort key, each group showing
//!   its least value (MySQL shows one of the group's values);
//! - join keys: the sort keys;
//! - `IN (subquery)`: the sort keys of both sides;
//! - `MIN`/`MAX`: the value with the least or greatest sort key;
//!   `COUNT(DISTINCT …)`: distinct sort keys;
//! - `CASE x WHEN v`: the sort keys of `x` and each `v`;
//! - a window's `PARTITION BY` and `ORDER BY`: the sort keys.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::metadata::FieldMetadata;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::error::Result;
use datafusion::functions_aggregate::expr_fn::min;
use datafusion::functions_aggregate::first_last::first_value_udaf;
use datafusion::logical_expr::expr::{
    AggregateFunction, InList, Like, NullTreatment, ScalarFunction,
};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{
    Aggregate, Between, BinaryExpr, Distinct, Expr, ExprSchemable, LogicalPlan, Projection,
    ScalarUDF,
};
use datafusion::optimizer::AnalyzerRule;

use crate::functions::collation;
use crate::functions::comparison::is_comparison;
use crate::rules::collation::{COLLATION_META, Collation, FOLD_FN, KEY_FN};

/// The analyzer rule.
#[derive(Debug, Default)]
pub(crate) struct Collations;

impl AnalyzerRule for Collations {
    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        let functions = Functions::new();
        Ok(plan
            .transform_up_with_subqueries(|plan| {
                let schema = merge_schema(&plan.inputs());
                // Most plans read no `_ci` column: nothing to do.
                if !plan.inputs().iter().any(|p| has_collations(p.schema())) {
                    return Ok(Transformed::no(plan));
                }
                let names = NamePreserver::new(&plan);
                let rewritten = plan.map_expressions(|e| {
                    let saved = names.save(&e);
                    let t = e.transform_up(|e| functions.rewrite(e, &schema))?;
                    Ok(if t.transformed {
                        Transformed::yes(saved.restore(t.data))
                    } else {
                        t
                    })
                })?;
                let plan = if rewritten.transformed {
                    rewritten.map_data(|p| p.recompute_schema())?
                } else {
                    rewritten
                };
                let changed = plan.transformed;
                let mut out = functions.rewrite_plan(plan.data)?;
                out.transformed |= changed;
                Ok(out)
            })?
            .data)
    }

    fn name(&self) -> &str {
        "duet_collations"
    }
}

/// The `_ci` collation of `e`'s value, if it has one. Only a column, an
/// alias of one or a function's value carries field metadata; anything
/// else (an operator's result, a literal) is answered without working
/// out its type, which for a long operator chain would cost its length.
fn collation_of(e: &Expr, schema: &DFSchema) -> Option<Collation> {
    match e {
        Expr::Column(_) | Expr::ScalarFunction(_) | Expr::AggregateFunction(_) => {}
        Expr::Alias(a) => return collation_of(&a.expr, schema),
        _ => return None,
    }
    let (_, field) = e.to_field(schema).ok()?;
    let name = field.metadata().get(COLLATION_META)?;
    Collation::from_name(name).ok().filter(|c| !c.is_binary())
}

/// Whether a field of `schema` carries a collation.
fn has_collations(schema: &DFSchema) -> bool {
    schema
        .fields()
        .iter()
        .any(|f| f.metadata().contains_key(COLLATION_META))
}

/// Whether `e` is text (or a NULL) that a collation can apply to.
fn is_text(e: &Expr, schema: &DFSchema) -> bool {
    use datafusion::arrow::datatypes::DataType as T;
    matches!(
        e.get_type(schema),
        Ok(T::Utf8 | T::LargeUtf8 | T::Utf8View | T::Null)
    )
}

struct Functions {
    key: Arc<ScalarUDF>,
    fold: Arc<ScalarUDF>,
}

impl Functions {
    fn new() -> Self {
        let mut all = collation::functions().into_iter();
        let (key, fold) = (all.next(), all.next());
        let (Some(key), Some(fold)) = (key, fold) else {
            unreachable!("collation::functions gives the key and the fold")
        };
        debug_assert_eq!((key.name(), fold.name()), (KEY_FN, FOLD_FN));
        Functions {
            key: Arc::new(key),
            fold: Arc::new(fold),
        }
    }

    fn call(f: &Arc<ScalarUDF>, e: Expr, c: Collation) -> Expr {
        Expr::ScalarFunction(ScalarFunction::new_udf(
            Arc::clone(f),
            vec![
                e,
                Expr::Literal(ScalarValue::Utf8(Some(c.name().to_string())), None),
            ],
        ))
    }

    fn key(&self, e: Expr, c: Collation) -> Expr {
        Functions::call(&self.key, e, c)
    }

    /// The collation two operands compare under: a `_ci` one's, when the
    /// other is text too.
    fn shared(&self, a: &Expr, b: &Expr, schema: &DFSchema) -> Option<Collation> {
        let c = collation_of(a, schema).or_else(|| collation_of(b, schema))?;
        (is_text(a, schema) && is_text(b, schema)).then_some(c)
    }

    fn rewrite(&self, e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
        Ok(match e {
            Expr::BinaryExpr(BinaryExpr { left, op, right })
                if is_comparison(op) && self.shared(&left, &right, schema).is_some() =>
            {
                let c = self.shared(&left, &right, schema).expect("checked");
                Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                    Box::new(self.key(*left, c)),
                    op,
                    Box::new(self.key(*right, c)),
                )))
            }
            Expr::Between(b)
                if self.shared(&b.expr, &b.low, schema).is_some() && is_text(&b.high, schema) =>
            {
                let c = self.shared(&b.expr, &b.low, schema).expect("checked");
                Transformed::yes(Expr::Between(Between::new(
                    Box::new(self.key(*b.expr, c)),
                    b.negated,
                    Box::new(self.key(*b.low, c)),
                    Box::new(self.key(*b.high, c)),
                )))
            }
            Expr::InList(list)
                if collation_of(&list.expr, schema).is_some()
                    && list.list.iter().all(|i| is_text(i, schema)) =>
            {
                let c = collation_of(&list.expr, schema).expect("checked");
                Transformed::yes(Expr::InList(InList::new(
                    Box::new(self.key(*list.expr, c)),
                    list.list.into_iter().map(|i| self.key(i, c)).collect(),
                    list.negated,
                )))
            }
            Expr::Like(like) if self.shared(&like.expr, &like.pattern, schema).is_some() => {
                let c = self
                    .shared(&like.expr, &like.pattern, schema)
                    .expect("checked");
                Transformed::yes(Expr::Like(Like::new(
                    like.negated,
                    Box::new(Functions::call(&self.fold, *like.expr, c)),
                    Box::new(Functions::call(&self.fold, *like.pattern, c)),
                    like.escape_char,
                    like.case_insensitive,
                )))
            }
            // `COLLATION(x)` names the column's.
            Expr::ScalarFunction(f)
                if f.name() == "collation"
                    && f.args.len() == 1
                    && collation_of(&f.args[0], schema).is_some() =>
            {
                let c = collation_of(&f.args[0], schema).expect("checked");
                Transformed::yes(Expr::Literal(
                    ScalarValue::Utf8(Some(c.name().to_string())),
                    None,
                ))
            }
            Expr::InSubquery(mut sub) if collation_of(&sub.expr, schema).is_some() => {
                let c = collation_of(&sub.expr, schema).expect("checked");
                let inner = Arc::clone(&sub.subquery.subquery);
                let fields = inner.schema().columns();
                let [column] = fields.as_slice() else {
                    return Ok(Transformed::no(Expr::InSubquery(sub)));
                };
                let value = Expr::Column(column.clone());
                if !is_text(&value, inner.schema()) {
                    return Ok(Transformed::no(Expr::InSubquery(sub)));
                }
                let keyed = Projection::try_new(
                    vec![self.key(value, c).alias(column.name.clone())],
                    inner,
                )?;
                sub.subquery = sub
                    .subquery
                    .with_plan(Arc::new(LogicalPlan::Projection(keyed)));
                sub.expr = Box::new(self.key(*sub.expr, c));
                Transformed::yes(Expr::InSubquery(sub))
            }
            // `CASE x WHEN v …`: `x` and each `v` by their sort keys.
            Expr::Case(mut case)
                if case.expr.as_deref().is_some_and(|x| {
                    collation_of(x, schema).is_some()
                        && case.when_then_expr.iter().all(|(w, _)| is_text(w, schema))
                }) =>
            {
                let x = case.expr.take().expect("checked");
                let c = collation_of(&x, schema).expect("checked");
                case.expr = Some(Box::new(self.key(*x, c)));
                for (when, _) in &mut case.when_then_expr {
                    **when = self.key((**when).clone(), c);
                }
                Transformed::yes(Expr::Case(case))
            }
            // A window's partitions and order by the sort keys.
            Expr::WindowFunction(mut w)
                if w.params
                    .partition_by
                    .iter()
                    .any(|p| collation_of(p, schema).is_some())
                    || w.params
                        .order_by
                        .iter()
                        .any(|s| collation_of(&s.expr, schema).is_some()) =>
            {
                for p in &mut w.params.partition_by {
                    if let Some(c) = collation_of(p, schema) {
                        *p = self.key(p.clone(), c);
                    }
                }
                for s in &mut w.params.order_by {
                    if let Some(c) = collation_of(&s.expr, schema) {
                        s.expr = self.key(s.expr.clone(), c);
                    }
                }
                Transformed::yes(Expr::WindowFunction(w))
            }
            other => Transformed::no(other),
        })
    }

    /// The plan-level rewrites: sorts, groups, `DISTINCT`, join keys.
    fn rewrite_plan(&self, plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
        match plan {
            LogicalPlan::Sort(mut sort) => {
                let schema = sort.input.schema();
                let mut changed = false;
                for s in &mut sort.expr {
                    if let Some(c) = collation_of(&s.expr, schema) {
                        s.expr = self.key(s.expr.clone(), c);
                        changed = true;
                    }
                }
                Ok(Transformed::new_transformed(
                    LogicalPlan::Sort(sort),
                    changed,
                ))
            }
            LogicalPlan::Join(mut join) => {
                let (left, right) = (join.left.schema(), join.right.schema());
                let mut changed = false;
                for (l, r) in &mut join.on {
                    let c = collation_of(l, left).or_else(|| collation_of(r, right));
                    if let Some(c) = c
                        && is_text(l, left)
                        && is_text(r, right)
                    {
                        *l = self.key(l.clone(), c);
                        *r = self.key(r.clone(), c);
                        changed = true;
                    }
                }
                Ok(Transformed::new_transformed(
                    LogicalPlan::Join(join),
                    changed,
                ))
            }
            LogicalPlan::Distinct(Distinct::All(input)) => {
                let schema = input.schema();
                let columns: Vec<Expr> = schema.columns().into_iter().map(Expr::Column).collect();
                if !columns.iter().any(|e| collation_of(e, schema).is_some()) {
                    return Ok(Transformed::no(LogicalPlan::Distinct(Distinct::All(input))));
                }
                let grouped = Aggregate::try_new(input, columns, Vec::new())?;
                self.group(grouped)
            }
            LogicalPlan::Aggregate(agg) => {
                let (agg, changed) = self.aggregates(agg)?;
                let mut out = self.group(agg)?;
                out.transformed |= changed;
                Ok(out)
            }
            other => Ok(Transformed::no(other)),
        }
    }

    /// `MIN`/`MAX` and `COUNT(DISTINCT …)` of a `_ci` value by its
    /// collation: the least or greatest value by sort key (ties show one
    /// of the tied values, as in MySQL), and the count of distinct sort
    /// keys. Each keeps its name for the plan above.
    fn aggregates(&self, mut agg: Aggregate) -> Result<(Aggregate, bool)> {
        let input = Arc::clone(agg.input.schema());
        let mut changed = false;
        for e in &mut agg.aggr_expr {
            if let Some(rewritten) = self.collated_aggregate(e, &input) {
                *e = rewritten;
                changed = true;
            }
        }
        if !changed {
            return Ok((agg, false));
        }
        let rebuilt = Aggregate::try_new(agg.input, agg.group_expr, agg.aggr_expr)?;
        Ok((rebuilt, true))
    }

    /// `e` (an aggregate, perhaps aliased) by the collation of its `_ci`
    /// argument, under the name it had; `None` if it has no such form.
    fn collated_aggregate(&self, e: &Expr, input: &DFSchema) -> Option<Expr> {
        let (inner, name) = match e {
            Expr::Alias(a) => (a.expr.as_ref(), a.name.clone()),
            other => (other, other.schema_name().to_string()),
        };
        let Expr::AggregateFunction(f) = inner else {
            return None;
        };
        let [arg] = f.params.args.as_slice() else {
            return None;
        };
        let c = collation_of(arg, input)?;
        let mut params = f.params.clone();
        let func = match f.func.name() {
            "min" | "max" if params.order_by.is_empty() => {
                let ascending = f.func.name() == "min";
                params.order_by = vec![self.key(arg.clone(), c).sort(ascending, false)];
                params.null_treatment = Some(NullTreatment::IgnoreNulls);
                params.distinct = false;
                first_value_udaf()
            }
            "count" if params.distinct => {
                params.args = vec![self.key(arg.clone(), c)];
                Arc::clone(&f.func)
            }
            _ => return None,
        };
        Some(Expr::AggregateFunction(AggregateFunction { func, params }).alias(name))
    }

    /// An aggregate grouping by the sort keys of its `_ci` group
    /// expressions, each shown as the least value of its group, under a
    /// projection that gives the plan above the schema it had.
    fn group(&self, agg: Aggregate) -> Result<Transformed<LogicalPlan>> {
        let input = agg.input.schema();
        let grouping_sets = agg
            .group_expr
            .iter()
            .any(|g| matches!(g, Expr::GroupingSet(_)));
        let collations: Vec<Option<Collation>> = agg
            .group_expr
            .iter()
            .map(|g| collation_of(g, input))
            .collect();
        if grouping_sets || collations.iter().all(Option::is_none) {
            return Ok(Transformed::no(LogicalPlan::Aggregate(agg)));
        }
        let value_name = |i: usize| format!("__duet_group_value_{i}");
        let mut group = Vec::with_capacity(agg.group_expr.len());
        let mut aggr = agg.aggr_expr.clone();
        for (i, (g, c)) in agg.group_expr.iter().zip(&collations).enumerate() {
            match c {
                Some(c) => {
                    group.push(
                        self.key(g.clone(), *c)
                            .alias(format!("__duet_group_key_{i}")),
                    );
                    aggr.push(min(g.clone()).alias(value_name(i)));
                }
                None => group.push(g.clone()),
            }
        }
        let grouped = Aggregate::try_new(Arc::clone(&agg.input), group, aggr)?;
        let shown = grouped.schema.clone();
        let groups = agg.group_expr.len();
        let exprs = agg
            .schema
            .iter()
            .enumerate()
            .map(|(i, (qualifier, field))| {
                let source = match collations.get(i) {
                    Some(Some(_)) if i < groups => Column::new_unqualified(value_name(i)),
                    _ => Column::from(shown.qualified_field(i)),
                };
                // The column's metadata (its collation) stays with it.
                let metadata =
                    (!field.metadata().is_empty()).then(|| FieldMetadata::from(field.as_ref()));
                Expr::Column(source).alias_qualified_with_metadata(
                    qualifier.cloned(),
                    field.name(),
                    metadata,
                )
            })
            .collect();
        let projection = Projection::try_new(exprs, Arc::new(LogicalPlan::Aggregate(grouped)))?;
        Ok(Transformed::yes(LogicalPlan::Projection(projection)))
    }
}
