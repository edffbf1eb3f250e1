//! MySQL's comparison of a number with a string: both sides as DOUBLE, the
//! string read for its leading number (`'12abc'` is 12, `'hello'` is 0);
//! and of a number with a truth value, which is 1 or 0. Arithmetic on a
//! string reads it the same way through [`Numeric`], which the SQL rewrite
//! places (the query engine refuses `'3' + 4` while typing the plan, before
//! any analyzer rule runs).
//! A comparison with a JSON side compares JSON values, as MySQL does.
//! DataFusion would cast the string to the number's type and fail on a
//! string that is not a number; this analyzer rule, run before its type
//! coercion, rewrites such comparisons first.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{
    BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator, ScalarUDF, cast,
};
use datafusion::optimizer::AnalyzerRule;

use crate::functions::comparison::{ToDouble, is_comparison, is_number, is_string};
use crate::functions::json;

/// The analyzer rule.
#[derive(Debug, Default)]
pub(crate) struct MysqlComparisons;

impl AnalyzerRule for MysqlComparisons {
    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        let to_double = Arc::new(ScalarUDF::from(ToDouble::new()));
        Ok(plan
            .transform_up_with_subqueries(|plan| {
                let schema = merge_schema(&plan.inputs());
                let plan = sort_json_values(plan, &schema)?;
                let rewritten =
                    plan.map_expressions(|e| e.transform_up(|e| rewrite(e, &schema, &to_double)))?;
                if rewritten.transformed {
                    rewritten.map_data(|p| p.recompute_schema())
                } else {
                    Ok(rewritten)
                }
            })?
            .data)
    }

    fn name(&self) -> &str {
        "duet_mysql_comparisons"
    }
}

/// `ORDER BY` a JSON value sorts by MySQL's order of JSON values, not by
/// its text (`10` after `9`): the sort key becomes
/// [`crate::functions::json::JSON_SORT_KEY`] of it.
fn sort_json_values(plan: LogicalPlan, schema: &DFSchema) -> Result<LogicalPlan> {
    let LogicalPlan::Sort(mut sort) = plan else {
        return Ok(plan);
    };
    for s in &mut sort.expr {
        if is_json(&s.expr, schema) {
            s.expr = Expr::ScalarFunction(ScalarFunction::new_udf(
                json::sort_key_udf(),
                vec![s.expr.clone()],
            ));
        }
    }
    Ok(LogicalPlan::Sort(sort))
}

/// A string literal the query engine already compares exactly with a
/// number of type `t` (`id = '5'` keeps its key lookup).
fn exact_literal(e: &Expr, t: &DataType) -> bool {
    let Expr::Literal(ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)), _) = e else {
        return false;
    };
    let s = s.trim();
    if t.is_integer() {
        s.parse::<i64>().is_ok()
    } else {
        s.parse::<f64>().is_ok()
    }
}

/// Whether `e` is JSON (a JSON column or a function returning JSON).
/// Only those, and aliases of them, carry the JSON field metadata; an
/// operator's result is answered without working out its type.
fn is_json(e: &Expr, schema: &DFSchema) -> bool {
    match e {
        Expr::Column(_) | Expr::ScalarFunction(_) | Expr::AggregateFunction(_) => e
            .to_field(schema)
            .is_ok_and(|(_, f)| json::is_json_field(&f)),
        Expr::Alias(a) => is_json(&a.expr, schema),
        _ => false,
    }
}

/// The type of `e`: a comparison's or a logical operator's truth value
/// at once, without working out its operands' types (each node of a long
/// chain asks for its operands', which would cost the chain's square).
fn type_of(e: &Expr, schema: &DFSchema) -> Result<DataType> {
    match e {
        Expr::BinaryExpr(BinaryExpr { op, .. })
            if is_comparison(*op) || matches!(op, Operator::And | Operator::Or) =>
        {
            Ok(DataType::Boolean)
        }
        _ => e.get_type(schema),
    }
}

/// `duet_json_cmp(a, b) op 0`: `a op b` as JSON values.
fn json_comparison(a: &Expr, op: Operator, b: &Expr) -> Expr {
    let cmp = Expr::ScalarFunction(ScalarFunction::new_udf(
        json::compare_udf(),
        vec![a.clone(), b.clone()],
    ));
    Expr::BinaryExpr(BinaryExpr::new(
        Box::new(cmp),
        op,
        Box::new(Expr::Literal(ScalarValue::Int64(Some(0)), None)),
    ))
}

fn rewrite(e: Expr, schema: &DFSchema, to_double: &Arc<ScalarUDF>) -> Result<Transformed<Expr>> {
    // `json IN (…)`: an equality with each item, as JSON values.
    if let Expr::InList(list) = &e
        && !list.list.is_empty()
        && is_json(&list.expr, schema)
    {
        let any = list
            .list
            .iter()
            .map(|item| json_comparison(&list.expr, Operator::Eq, item))
            .reduce(Expr::or)
            .expect("a non-empty list");
        return Ok(Transformed::yes(if list.negated {
            Expr::Not(Box::new(any))
        } else {
            any
        }));
    }
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &e else {
        return Ok(Transformed::no(e));
    };
    if !is_comparison(*op) {
        return Ok(Transformed::no(e));
    }
    // A JSON side makes a JSON comparison: the other side is taken as a
    // JSON value (`doc->'$.name' = 'x'` compares the JSON string "x").
    if !matches!(op, Operator::IsDistinctFrom | Operator::IsNotDistinctFrom)
        && (is_json(left, schema) || is_json(right, schema))
    {
        return Ok(Transformed::yes(json_comparison(left, *op, right)));
    }
    let (Ok(lt), Ok(rt)) = (type_of(left, schema), type_of(right, schema)) else {
        return Ok(Transformed::no(e));
    };
    // A truth value meets a number as 1 or 0 (MySQL has no boolean type).
    match (&lt, &rt) {
        (DataType::Boolean, t) if is_number(t) => {
            return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                Box::new(cast((**left).clone(), DataType::Int64)),
                *op,
                right.clone(),
            ))));
        }
        (t, DataType::Boolean) if is_number(t) => {
            return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                left.clone(),
                *op,
                Box::new(cast((**right).clone(), DataType::Int64)),
            ))));
        }
        _ => {}
    }
    let number_left = if is_number(&lt) && is_string(&rt) && !exact_literal(right, &lt) {
        true
    } else if is_string(&lt) && is_number(&rt) && !exact_literal(left, &rt) {
        false
    } else {
        return Ok(Transformed::no(e));
    };
    let as_double = |x: &Expr, number: bool| {
        if number {
            cast(x.clone(), DataType::Float64)
        } else {
            Expr::ScalarFunction(ScalarFunction::new_udf(
                Arc::clone(to_double),
                vec![x.clone()],
            ))
        }
    };
    Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
        Box::new(as_double(left, number_left)),
        *op,
        Box::new(as_double(right, !number_left)),
    ))))
}
