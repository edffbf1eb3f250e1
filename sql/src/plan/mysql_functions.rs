//! MySQL functions by the names the query engine knows them: renames,
//! and calls rewritten into expressions or into Duet's own functions.

use datafusion::sql::sqlparser::ast::{self, Expr};

use crate::functions::comparison::EXACT_ARG;
use crate::plan::rewrite::{
    binary, call_expr, case, date_arithmetic, days_interval, eq, group_concat, mysql_operator,
    number, strftime,
};

/// Functions that are another function of the query engine under another
/// name: MySQL's name, the arguments it takes (`None`: any), the engine's.
const RENAMES: &[(&str, Option<usize>, &str)] = &[
    ("CURDATE", Some(0), "current_date"),
    ("UTC_DATE", Some(0), "current_date"),
    ("CURTIME", Some(0), "current_time"),
    ("UTC_TIMESTAMP", Some(0), "now"),
    ("SYSDATE", Some(0), "now"),
    ("LCASE", Some(1), "lower"),
    ("UCASE", Some(1), "upper"),
    ("MID", None, "substr"),
    ("CEILING", Some(1), "ceil"),
    ("ORD", Some(1), "ascii"),
    ("CHAR", Some(1), "chr"),
];

/// Functions that read one field of a date or time: MySQL's name, the
/// field's name for `date_part`.
const DATE_PARTS: &[(&str, &str)] = &[
    ("YEAR", "year"),
    ("QUARTER", "quarter"),
    ("MONTH", "month"),
    ("DAY", "day"),
    ("DAYOFMONTH", "day"),
    ("DAYOFYEAR", "doy"),
    ("HOUR", "hour"),
    ("MINUTE", "minute"),
    ("SECOND", "second"),
];

/// MySQL functions DataFusion lacks, in standard SQL.
pub(crate) fn mysql_function(f: &ast::Function) -> Option<Expr> {
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
    if let Some((_, _, renamed)) = RENAMES
        .iter()
        .find(|(n, arity, _)| *n == name && arity.is_none_or(|a| a == args.len()))
    {
        return Some(call_expr(renamed, args));
    }
    if let (Some((_, field)), [x]) = (DATE_PARTS.iter().find(|(n, _)| *n == name), &args[..]) {
        return Some(part(field, x));
    }
    aggregate(&name, f, list, &args)
        .or_else(|| time_function(&name, &args))
        .or_else(|| string_function(&name, &args))
        .or_else(|| other_function(&name, &args))
}

/// `CAST(e AS t)`.
fn cast(e: Expr, t: ast::DataType) -> Expr {
    Expr::Cast {
        kind: ast::CastKind::Cast,
        expr: Box::new(e),
        data_type: t,
        array: false,
        format: None,
    }
}

/// A string literal.
fn text(s: &str) -> Expr {
    Expr::value(ast::Value::SingleQuotedString(s.into()))
}

/// One field of a date or time, as a BIGINT.
fn part(unit: &str, x: &Expr) -> Expr {
    cast(
        call_expr("date_part", vec![text(unit), x.clone()]),
        ast::DataType::BigInt(None),
    )
}

/// Days since 1970-01-01 of a date or datetime.
fn day_number(x: &Expr) -> Expr {
    cast(
        cast(
            cast(x.clone(), ast::DataType::Date),
            ast::DataType::Int(None),
        ),
        ast::DataType::BigInt(None),
    )
}

/// `GROUP_CONCAT`; `AVG` and `SUM` of integers, exact as in MySQL; and
/// MySQL's `STD`, `STDDEV` and `VARIANCE`, the population figures.
fn aggregate(
    name: &str,
    f: &ast::Function,
    list: &ast::FunctionArgumentList,
    args: &[Expr],
) -> Option<Expr> {
    match (name, args) {
        ("GROUP_CONCAT", [_, ..]) => Some(group_concat(f, list, args.to_vec())),
        ("AVG" | "SUM", [arg])
            if f.over.is_none()
                && !matches!(arg, Expr::Function(g) if g.name.to_string() == EXACT_ARG) =>
        {
            // An integer averages to a DECIMAL with 4 more digits and sums
            // to a DECIMAL, as in MySQL.
            let mut exact = f.clone();
            if let ast::FunctionArguments::List(list) = &mut exact.args {
                list.args = vec![ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(
                    call_expr(EXACT_ARG, vec![arg.clone()]),
                ))];
            }
            Some(Expr::Function(exact))
        }
        ("STD" | "STDDEV", [x]) if f.over.is_none() => {
            Some(call_expr("stddev_pop", vec![x.clone()]))
        }
        ("VARIANCE", [x]) if f.over.is_none() => Some(call_expr("var_pop", vec![x.clone()])),
        _ => None,
    }
}

/// Date and time functions written as expressions of the engine's.
fn time_function(name: &str, args: &[Expr]) -> Option<Expr> {
    match (name, args) {
        ("DATE", [x]) => Some(cast(x.clone(), ast::DataType::Date)),
        // MySQL counts Sunday as 1.
        ("DAYOFWEEK", [x]) => Some(binary(
            part("dow", x),
            ast::BinaryOperator::Plus,
            number("1"),
        )),
        ("WEEKDAY", [x]) => Some(binary(
            binary(part("dow", x), ast::BinaryOperator::Plus, number("6")),
            ast::BinaryOperator::Modulo,
            number("7"),
        )),
        ("DAYNAME", [x]) => Some(call_expr("to_char", vec![x.clone(), text("%A")])),
        ("MONTHNAME", [x]) => Some(call_expr("to_char", vec![x.clone(), text("%B")])),
        ("DATEDIFF", [a, b]) => Some(binary(
            day_number(a),
            ast::BinaryOperator::Minus,
            day_number(b),
        )),
        ("DATE_FORMAT", [x, Expr::Value(v)]) => match &v.value {
            ast::Value::SingleQuotedString(format) => Some(call_expr(
                "to_char",
                vec![x.clone(), text(&strftime(format))],
            )),
            _ => None,
        },
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
        // Days since year 0, as MySQL counts them (1970-01-01 is 719528).
        ("TO_DAYS", [x]) => Some(binary(
            day_number(x),
            ast::BinaryOperator::Plus,
            number("719528"),
        )),
        // FROM_DAYS inverts TO_DAYS.
        ("FROM_DAYS", [n]) => Some(cast(
            cast(
                binary(n.clone(), ast::BinaryOperator::Minus, number("719528")),
                ast::DataType::Int(None),
            ),
            ast::DataType::Date,
        )),
        ("UNIX_TIMESTAMP", []) => Some(part("epoch", &call_expr("now", Vec::new()))),
        ("UNIX_TIMESTAMP", [x]) => Some(part("epoch", x)),
        ("TIMESTAMPDIFF", [Expr::Identifier(unit), a, b]) => {
            let per = match unit.value.to_ascii_uppercase().as_str() {
                "SECOND" => "1",
                "MINUTE" => "60",
                "HOUR" => "3600",
                "DAY" => "86400",
                "WEEK" => "604800",
                _ => return None,
            };
            // Whole units, cut toward zero.
            let seconds = binary(
                part("epoch", b),
                ast::BinaryOperator::Minus,
                part("epoch", a),
            );
            let units = binary(
                Expr::Nested(Box::new(seconds)),
                ast::BinaryOperator::Divide,
                number(&format!("{per}.0")),
            );
            Some(cast(
                call_expr("trunc", vec![units]),
                ast::DataType::BigInt(None),
            ))
        }
        _ => None,
    }
}

/// String functions written as expressions of the engine's.
fn string_function(name: &str, args: &[Expr]) -> Option<Expr> {
    match (name, args) {
        ("SPACE", [n]) => Some(call_expr("repeat", vec![text(" "), n.clone()])),
        // LOCATE(sub, s[, from]): 1-based, 0 when absent.
        ("LOCATE", [sub, s]) => Some(call_expr("strpos", vec![s.clone(), sub.clone()])),
        ("LOCATE", [sub, s, from]) => {
            let rest = call_expr("substr", vec![s.clone(), from.clone()]);
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
                    binary(
                        Expr::IsNull(Box::new(a.clone())),
                        ast::BinaryOperator::Or,
                        Expr::IsNull(Box::new(b.clone())),
                    ),
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
        // SHA2(x, bits) as lowercase hex; an unsupported length gives NULL.
        ("SHA2", [x, Expr::Value(bits)]) => {
            let ast::Value::Number(n, _) = &bits.value else {
                return None;
            };
            let digest = match n.as_str() {
                "0" | "256" => "sha256",
                "224" => "sha224",
                "384" => "sha384",
                "512" => "sha512",
                _ => return Some(Expr::value(ast::Value::Null)),
            };
            Some(call_expr(
                "encode",
                vec![call_expr(digest, vec![x.clone()]), text("hex")],
            ))
        }
        _ => None,
    }
}

/// `MOD`, `SIGN`, `ISNULL` and `IF`.
fn other_function(name: &str, args: &[Expr]) -> Option<Expr> {
    match (name, args) {
        ("MOD", [a, b]) => mysql_operator(a, &ast::BinaryOperator::Modulo, b),
        ("SIGN", [x]) => Some(cast(
            call_expr("signum", vec![x.clone()]),
            ast::DataType::BigInt(None),
        )),
        ("ISNULL", [x]) => Some(Expr::IsNull(Box::new(x.clone()))),
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
