//! The preparation of a parsed MySQL query for DataFusion: identifiers
//! folded to lower case, the client's column names, and MySQL-only syntax
//! (operators, casts, `->`/`->>`, date arithmetic, `GROUP_CONCAT`)
//! rewritten into the functions of [`crate::functions`].

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    self, Expr, Ident, LimitClause, ObjectNamePart, Query, SelectItem, SetExpr, TableFactor,
    VisitMut, VisitorMut,
};

use crate::error::Result;
use crate::functions::arithmetic::BIT_AND;
use crate::functions::arithmetic::BIT_NOT;
use crate::functions::arithmetic::BIT_OR;
use crate::functions::arithmetic::BIT_XOR;
use crate::functions::arithmetic::DIV;
use crate::functions::arithmetic::INT_DIV;
use crate::functions::arithmetic::SHIFT_LEFT;
use crate::functions::arithmetic::SHIFT_RIGHT;
use crate::functions::arithmetic::TO_SIGNED;
use crate::functions::arithmetic::TO_UNSIGNED;
use crate::functions::comparison::NUMERIC;
use crate::functions::json::CAST_JSON;
use crate::names;
use crate::parse;
use crate::plan::decorrelate;
use crate::plan::mysql_functions::mysql_function;

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
    decorrelate::decorrelate(query);
    Ok(names)
}

/// What follows a result column's name in the internal alias that keeps
/// it apart from another of the same name (stripped from what the client
/// sees, see [`columns`]).
pub(crate) const DUPLICATE_NAME: &str = "__duet_dup";

/// MySQL allows two result columns with one name; DataFusion does not.
/// Computed columns get internal aliases (the client sees the names of
/// [`output_names`]), and a column whose name an earlier one took — or,
/// beside a wildcard, any plain column, which the wildcard may also name —
/// an alias of its name with [`DUPLICATE_NAME`] and its position.
pub(crate) fn unique_output_names(projection: &mut [SelectItem]) {
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
    let texts = names::select_items(sql).filter(|t| t.len() == select.projection.len());
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
                None => parse::expr_text(sql, e),
            }),
            _ => None,
        })
        .collect()
}

pub(crate) fn fold(ident: &mut Ident) {
    ident.value = ident.value.to_ascii_lowercase();
    ident.quote_style = None;
}

/// A table alias and the column names it declares, folded.
pub(crate) fn fold_alias(alias: &mut ast::TableAlias) {
    fold(&mut alias.name);
    for column in &mut alias.columns {
        fold(&mut column.name);
    }
}

pub(crate) struct Prepare;

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
                *expr = call_expr(BIT_NOT, vec![(**operand).clone()]);
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
                    ast::DataType::Signed | ast::DataType::SignedInteger => Some(TO_SIGNED),
                    ast::DataType::Unsigned | ast::DataType::UnsignedInteger => Some(TO_UNSIGNED),
                    ast::DataType::JSON => Some(CAST_JSON),
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
pub(crate) fn bind_json_arrows(expr: &mut Expr) {
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
pub(crate) fn is_arithmetic(op: &ast::BinaryOperator) -> bool {
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
pub(crate) fn is_comparison_operator(op: &ast::BinaryOperator) -> bool {
    use ast::BinaryOperator as B;
    matches!(
        op,
        B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq | B::Spaceship
    )
}

/// Whether `e` is a truth value by its form (a comparison, a logical
/// operator, a predicate): what the query engine types BOOLEAN.
pub(crate) fn is_truth_value(e: &Expr) -> bool {
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
pub(crate) fn as_number(e: &mut Expr) {
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
pub(crate) fn as_condition(e: &mut Expr) {
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
pub(crate) fn may_be_string(e: &Expr) -> bool {
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
pub(crate) fn numeric_operand(e: &Expr) -> Expr {
    if may_be_string(e) {
        call_expr(NUMERIC, vec![e.clone()])
    } else {
        e.clone()
    }
}

/// MySQL operators whose meaning DataFusion does not share: `/`, `DIV`
/// and the bit operators as [`crate::functions`] computes them, `%` with
/// NULL for a zero divisor, and `+ - * %` on strings, read as numbers.
pub(crate) fn mysql_operator(left: &Expr, op: &ast::BinaryOperator, right: &Expr) -> Option<Expr> {
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
    let already = |e: &Expr| matches!(e, Expr::Function(f) if f.name.to_string() == NUMERIC);
    match op {
        // `doc->path` and `doc->>path`.
        B::Arrow => Some(call_expr("json_extract", vec![left.clone(), right.clone()])),
        B::LongArrow => Some(call_expr(
            "json_unquote",
            vec![call_expr("json_extract", vec![left.clone(), right.clone()])],
        )),
        B::Divide => Some(call(DIV)),
        B::MyIntegerDivide => Some(call(INT_DIV)),
        B::BitwiseAnd => Some(bits(BIT_AND)),
        B::BitwiseOr => Some(bits(BIT_OR)),
        B::BitwiseXor => Some(bits(BIT_XOR)),
        B::PGBitwiseShiftLeft => Some(bits(SHIFT_LEFT)),
        B::PGBitwiseShiftRight => Some(bits(SHIFT_RIGHT)),
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
pub(crate) fn binary(left: Expr, op: ast::BinaryOperator, right: Expr) -> Expr {
    Expr::BinaryOp {
        left: Box::new(left),
        op,
        right: Box::new(right),
    }
}

pub(crate) fn eq(left: Expr, right: Expr) -> Expr {
    binary(left, ast::BinaryOperator::Eq, right)
}

pub(crate) fn number(n: &str) -> Expr {
    Expr::value(ast::Value::Number(n.into(), false))
}

/// `CASE WHEN c THEN r … [ELSE e] END`.
pub(crate) fn case(whens: Vec<(Expr, Expr)>, otherwise: Option<Expr>) -> Expr {
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
pub(crate) fn date_arithmetic(date: &Expr, op: ast::BinaryOperator, interval: &Expr) -> Expr {
    mysql_operator(date, &op, interval)
        .unwrap_or_else(|| binary(date.clone(), op, interval.clone()))
}

/// `INTERVAL n DAY`.
pub(crate) fn days_interval(n: &Expr) -> Expr {
    Expr::Interval(ast::Interval {
        value: Box::new(n.clone()),
        leading_field: Some(ast::DateTimeField::Day),
        leading_precision: None,
        last_field: None,
        fractional_seconds_precision: None,
    })
}

/// `name(args…)`.
pub(crate) fn call_expr(name: &str, args: Vec<Expr>) -> Expr {
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
pub(crate) fn strftime(mysql: &str) -> String {
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
pub(crate) fn group_concat(
    f: &ast::Function,
    list: &ast::FunctionArgumentList,
    args: Vec<Expr>,
) -> Expr {
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
