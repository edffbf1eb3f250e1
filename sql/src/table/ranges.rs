//! Which rows a scan needs, from the filters pushed into it: conditions on
//! an integer primary key (`=`, `<`, `<=`, `>`, `>=`, `BETWEEN`, `IN`)
//! narrow a table scan to a key range or to point gets. The query engine
//! still applies every filter on top, so a filter this module cannot use
//! costs speed, never correctness.

use std::collections::BTreeSet;

use crate::rules::collation::KEY_FN;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator, expr::InList};
use datafusion::scalar::ScalarValue;

/// The handles a scan may be limited to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HandleSet {
    /// `[lo, hi]`, both inclusive.
    Range(i128, i128),
    Points(BTreeSet<i64>),
}

impl HandleSet {
    pub(crate) fn all() -> Self {
        HandleSet::Range(i128::from(i64::MIN), i128::from(i64::MAX))
    }

    pub(crate) fn intersect(self, other: HandleSet) -> HandleSet {
        use HandleSet::*;
        match (self, other) {
            (Range(a, b), Range(c, d)) => Range(a.max(c), b.min(d)),
            (Points(p), Range(lo, hi)) | (Range(lo, hi), Points(p)) => Points(
                p.into_iter()
                    .filter(|x| (lo..=hi).contains(&i128::from(*x)))
                    .collect(),
            ),
            (Points(p), Points(q)) => Points(p.intersection(&q).copied().collect()),
        }
    }

    /// How many handles the set can hold at most.
    pub(crate) fn size(&self) -> f64 {
        match self {
            HandleSet::Range(lo, hi) => (hi - lo + 1).max(0) as f64,
            HandleSet::Points(p) => p.len() as f64,
        }
    }

    /// `EXPLAIN`'s form: `[lo,hi]` or the points.
    pub(crate) fn describe(&self) -> String {
        let bound = |v: i128, open: bool| match v {
            v if v <= i128::from(i64::MIN) && open => "-inf".to_string(),
            v if v >= i128::from(i64::MAX) && !open => "+inf".to_string(),
            v => v.to_string(),
        };
        match self {
            HandleSet::Range(lo, hi) => format!("[{},{}]", bound(*lo, true), bound(*hi, false)),
            HandleSet::Points(p) => {
                let shown: Vec<String> = p.iter().take(10).map(i64::to_string).collect();
                let more = if p.len() > 10 { ",…" } else { "" };
                format!("{{{}{more}}}", shown.join(","))
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        match self {
            HandleSet::Range(lo, hi) => lo > hi,
            HandleSet::Points(p) => p.is_empty(),
        }
    }
}

fn int(v: &ScalarValue) -> Option<i128> {
    Some(match v {
        ScalarValue::Int8(Some(x)) => i128::from(*x),
        ScalarValue::Int16(Some(x)) => i128::from(*x),
        ScalarValue::Int32(Some(x)) => i128::from(*x),
        ScalarValue::Int64(Some(x)) => i128::from(*x),
        ScalarValue::UInt8(Some(x)) => i128::from(*x),
        ScalarValue::UInt16(Some(x)) => i128::from(*x),
        ScalarValue::UInt32(Some(x)) => i128::from(*x),
        ScalarValue::UInt64(Some(x)) => i128::from(*x),
        _ => return None,
    })
}

fn is_column(e: &Expr, column: &str) -> bool {
    match e {
        Expr::Column(c) => c.name == column,
        Expr::Cast(c) => is_column(&c.expr, column),
        _ => false,
    }
}

fn literal(e: &Expr) -> Option<i128> {
    match e {
        Expr::Literal(v, _) => int(v),
        Expr::Cast(c) => literal(&c.expr),
        _ => None,
    }
}

/// The handles `filter` allows, if it constrains `column` alone.
pub(crate) fn handles(filter: &Expr, column: &str) -> Option<HandleSet> {
    let (min, max) = (i128::from(i64::MIN), i128::from(i64::MAX));
    match filter {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (op, v) = if is_column(left, column) {
                (*op, literal(right)?)
            } else if is_column(right, column) {
                (op.swap()?, literal(left)?)
            } else if *op == Operator::And {
                let a = handles(left, column);
                let b = handles(right, column);
                return match (a, b) {
                    (Some(a), Some(b)) => Some(a.intersect(b)),
                    (a, b) => a.or(b),
                };
            } else {
                return None;
            };
            Some(match op {
                Operator::Eq => HandleSet::Range(v, v),
                Operator::Lt => HandleSet::Range(min, v - 1),
                Operator::LtEq => HandleSet::Range(min, v),
                Operator::Gt => HandleSet::Range(v + 1, max),
                Operator::GtEq => HandleSet::Range(v, max),
                _ => return None,
            })
        }
        Expr::Between(Between {
            expr,
            negated: false,
            low,
            high,
        }) if is_column(expr, column) => Some(HandleSet::Range(literal(low)?, literal(high)?)),
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) if is_column(expr, column) => {
            let points: Option<BTreeSet<i64>> = list
                .iter()
                .map(|e| literal(e).and_then(|v| i64::try_from(v).ok()))
                .collect();
            Some(HandleSet::Points(points?))
        }
        _ => None,
    }
}

/// The values `filter` allows `column` to equal (`col = v`, `col IN (…)`,
/// and the `OR` of equalities a short `IN` list is rewritten to), for an
/// index lookup.
pub(crate) fn equal_values(filter: &Expr, column: &str) -> Option<Vec<ScalarValue>> {
    values_of(filter, &|e| is_column(e, column))
}

/// The sort keys `filter` pins a `_ci` text column's key to:
/// `duet_collate_key(column, …) = k`, `IN` lists and `OR`s of them (the
/// keys of the constants, folded when the plan was simplified).
pub(crate) fn equal_keys(filter: &Expr, column: &str) -> Option<Vec<ScalarValue>> {
    values_of(filter, &|e| match e {
        Expr::ScalarFunction(f) => {
            f.name() == KEY_FN && f.args.first().is_some_and(|a| is_column(a, column))
        }
        _ => false,
    })
}

/// The constants `filter` says an expression `pinned` accepts equals.
fn values_of(filter: &Expr, pinned: &dyn Fn(&Expr) -> bool) -> Option<Vec<ScalarValue>> {
    let lit = |e: &Expr| match e {
        Expr::Literal(v, _) if !v.is_null() => Some(v.clone()),
        _ => None,
    };
    match filter {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) => {
            if pinned(left) {
                Some(vec![lit(right)?])
            } else if pinned(right) {
                Some(vec![lit(left)?])
            } else {
                None
            }
        }
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) if pinned(expr) => list.iter().map(lit).collect(),
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Or,
            right,
        }) => {
            let mut values = values_of(left, pinned)?;
            values.extend(values_of(right, pinned)?);
            Some(values)
        }
        _ => None,
    }
}

/// The intersection of what every usable filter allows.
pub(crate) fn combine(filters: &[Expr], column: &str) -> HandleSet {
    filters
        .iter()
        .filter_map(|f| handles(f, column))
        .fold(HandleSet::all(), HandleSet::intersect)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::{col, lit};

    #[test]
    fn key_conditions_narrow_the_scan() {
        let f = [
            col("id").gt_eq(lit(10i64)),
            col("id").lt(lit(20i64)),
            col("v").eq(lit(1i64)),
        ];
        assert_eq!(combine(&f, "id"), HandleSet::Range(10, 19));
        assert!(handles(&f[2], "id").is_none());
        let f = [
            col("id").in_list(vec![lit(3i64), lit(30i64)], false),
            col("id").lt(lit(20i64)),
        ];
        assert_eq!(combine(&f, "id"), HandleSet::Points([3].into()));
        let f = [lit(5i64).eq(col("id"))];
        assert_eq!(combine(&f, "id"), HandleSet::Range(5, 5));
        let f = [col("id")
            .between(lit(1i64), lit(3i64))
            .and(col("id").gt(lit(1i64)))];
        assert_eq!(combine(&f, "id"), HandleSet::Range(2, 3));
        assert!(combine(&[col("id").gt(lit(5i64)), col("id").lt(lit(2i64))], "id").is_empty());
        assert!(handles(&col("id").eq(lit(1i64)).or(col("id").eq(lit(2i64))), "id").is_none());
    }

    #[test]
    fn equalities_name_the_values_to_look_up() {
        assert_eq!(
            equal_values(&lit("x").eq(col("name")), "name"),
            Some(vec![ScalarValue::from("x")])
        );
        assert_eq!(
            equal_values(&col("k").in_list(vec![lit(1i64), lit(2i64)], false), "k")
                .map(|v| v.len()),
            Some(2)
        );
        assert!(equal_values(&col("k").gt(lit(1i64)), "k").is_none());
        assert!(equal_values(&col("k").eq(col("j")), "k").is_none());
        assert!(equal_values(&col("k").in_list(vec![lit(1i64)], true), "k").is_none());
    }
}
