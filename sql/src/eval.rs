//! A small evaluator for expressions that need no table: literals, `@@system`
//! and `@user` variables, prepared-statement parameters, arithmetic,
//! comparisons, three-valued logic and a handful of session functions. It
//! serves connect-time queries and `SET`; table expressions belong to the
//! executors.

use std::cmp::Ordering;

use datafusion::sql::sqlparser::ast::{
    self, BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, UnaryOperator,
};

use crate::error::{Error, Result};
use crate::rules::like::like;
use crate::rules::number::{leading_double, leading_integer, round_decimal};
use crate::rules::time::now;
use crate::types;
use crate::value::Value;
use crate::vars::VarScope;

/// A function of the session rather than of the data, called with no
/// argument. The query engines see each as the literal it stands for in
/// the statement; the constant evaluator asks its [`Env`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionFn {
    /// `DATABASE()`, `SCHEMA()`.
    Database,
    /// `USER()`, `SESSION_USER()`, `SYSTEM_USER()`: the client's account.
    User,
    /// `CURRENT_USER()`: the account the server authenticated.
    CurrentUser,
    ConnectionId,
    LastInsertId,
    RowCount,
    FoundRows,
    Version,
}

impl SessionFn {
    /// Every name, with the function it calls: the one list of them.
    const NAMES: [(&'static str, SessionFn); 11] = [
        ("DATABASE", SessionFn::Database),
        ("SCHEMA", SessionFn::Database),
        ("USER", SessionFn::User),
        ("SESSION_USER", SessionFn::User),
        ("SYSTEM_USER", SessionFn::User),
        ("CURRENT_USER", SessionFn::CurrentUser),
        ("CONNECTION_ID", SessionFn::ConnectionId),
        ("LAST_INSERT_ID", SessionFn::LastInsertId),
        ("ROW_COUNT", SessionFn::RowCount),
        ("FOUND_ROWS", SessionFn::FoundRows),
        ("VERSION", SessionFn::Version),
    ];

    /// The session function `name` (any case) calls, if it is one.
    pub(crate) fn named(name: &str) -> Option<SessionFn> {
        Self::NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, f)| *f)
    }
}

/// What an expression can see besides its own literals.
pub(crate) trait Env {
    /// `@@name`, `@@session.name`, `@@global.name`.
    fn system_var(&self, name: &str, scope: Option<VarScope>) -> Result<Value>;
    /// `@name`; unset variables are NULL.
    fn user_var(&self, name: &str) -> Value;
    /// The `n`-th (0-based) prepared-statement parameter.
    fn param(&self, n: usize) -> Result<Value>;
    /// A session function such as `DATABASE()`; `None` where there is no
    /// session (a column default).
    fn session_fn(&self, f: SessionFn) -> Option<Value>;
    /// A session function of arguments, such as `GET_LOCK(name, timeout)`;
    /// `None` if unknown.
    fn session_call(&self, _name: &str, _args: &[Value]) -> Option<Result<Value>> {
        None
    }
    /// `VALUES(col)` in `ON DUPLICATE KEY UPDATE`: the row that was to be
    /// inserted.
    fn inserted(&self, _name: &str) -> Option<Value> {
        None
    }
    /// A column of the row being filtered (for `SHOW … WHERE`).
    fn column(&self, name: &str) -> Result<Value>;
}

/// An environment with nothing in it: constants only (column defaults).
pub(crate) struct NoEnv;

impl Env for NoEnv {
    fn system_var(&self, name: &str, _scope: Option<VarScope>) -> Result<Value> {
        Err(Error::UnknownSystemVariable(name.to_string()))
    }

    fn user_var(&self, _name: &str) -> Value {
        Value::Null
    }

    fn param(&self, _n: usize) -> Result<Value> {
        Err(Error::WrongArguments("a constant expression"))
    }

    fn session_fn(&self, _: SessionFn) -> Option<Value> {
        None
    }

    fn column(&self, name: &str) -> Result<Value> {
        Err(Error::UnknownColumn(name.to_string()))
    }
}

/// Evaluates `expr` in `env`.
pub(crate) fn eval(env: &dyn Env, expr: &Expr) -> Result<Value> {
    match expr {
        Expr::Value(v) => literal(env, &v.value),
        Expr::Nested(e) => eval(env, e),
        Expr::Identifier(id) => ident(env, &[id.value.as_str()], id.quote_style.is_some()),
        Expr::CompoundIdentifier(ids) => {
            let parts: Vec<&str> = ids.iter().map(|i| i.value.as_str()).collect();
            ident(env, &parts, false)
        }
        Expr::UnaryOp { op, expr } => unary(*op, eval(env, expr)?, expr),
        Expr::BinaryOp { left, op, right } => binary(env, left, op, right),
        Expr::IsNull(e) => Ok(bool_value(eval(env, e)? == Value::Null)),
        Expr::IsNotNull(e) => Ok(bool_value(eval(env, e)? != Value::Null)),
        Expr::InList {
            expr,
            list,
            negated,
        } => in_list(env, expr, list, *negated),
        Expr::Like {
            negated,
            expr,
            pattern,
            escape_char: None,
            any: false,
        } => {
            let (v, p) = (eval(env, expr)?, eval(env, pattern)?);
            Ok(match (text(&v), text(&p)) {
                (Some(v), Some(p)) => bool_value(like(&v, &p, false) != *negated),
                _ => Value::Null,
            })
        }
        Expr::Function(f) => function(env, f),
        Expr::Cast {
            kind: ast::CastKind::Cast,
            expr,
            data_type,
            format: None,
            ..
        } => cast_value(eval(env, expr)?, data_type)
            .ok_or_else(|| Error::not_supported(format!("CAST AS {data_type}"))),
        other => Err(Error::not_supported(format!("expression {other}"))),
    }
}

/// `CAST(v AS t)` as MySQL computes it for the types the row path casts
/// to: SIGNED and UNSIGNED round numbers half away from zero and read a
/// string's leading integer; CHAR gives the text; DATE and DATETIME parse
/// it (NULL when they cannot); DECIMAL(p, s) rounds to `s` digits. `None`
/// for another target type.
fn cast_value(v: Value, t: &ast::DataType) -> Option<Value> {
    use ast::DataType as T;
    if v == Value::Null {
        return Some(Value::Null);
    }
    let integer = || -> i64 {
        match &v {
            Value::Int(i) => *i,
            Value::UInt(u) => *u as i64,
            Value::Double(d) => d.round() as i64,
            Value::Decimal(d) => round_decimal(d, 0)
                .and_then(|r| r.parse::<i128>().ok())
                .map_or(0, |r| {
                    i64::try_from(r).unwrap_or(if r < 0 { i64::MIN } else { i64::MAX })
                }),
            Value::Date(d) => {
                i64::from(d.year) * 10_000 + i64::from(d.month) * 100 + i64::from(d.day)
            }
            Value::DateTime(d) => {
                (i64::from(d.date.year) * 10_000
                    + i64::from(d.date.month) * 100
                    + i64::from(d.date.day))
                    * 1_000_000
                    + i64::from(d.hour) * 10_000
                    + i64::from(d.minute) * 100
                    + i64::from(d.second)
            }
            other => leading_integer(text(other).unwrap_or_default().as_bytes()),
        }
    };
    Some(match t {
        T::Signed | T::SignedInteger => Value::Int(integer()),
        T::Unsigned | T::UnsignedInteger => Value::UInt(integer() as u64),
        T::Char(_) | T::Varchar(_) | T::Text | T::String(_) => {
            text(&v).map_or(Value::Null, Value::Str)
        }
        T::Date => types::to_datetime(&v).map_or(Value::Null, |d| Value::Date(d.date)),
        T::Datetime(_) | T::Timestamp(_, _) => {
            types::to_datetime(&v).map_or(Value::Null, Value::DateTime)
        }
        T::Decimal(info) | T::Numeric(info) => {
            let scale = match info {
                ast::ExactNumberInfo::PrecisionAndScale(_, s) => *s as usize,
                _ => 0,
            };
            let digits = match &v {
                Value::Double(d) => format!("{d}"),
                other => {
                    let t = text(other).unwrap_or_default();
                    let n = leading_double(t.as_bytes());
                    if t.trim().parse::<f64>().is_ok() {
                        t.trim().to_string()
                    } else {
                        format!("{n}")
                    }
                }
            };
            round_decimal(&digits, scale).map_or(Value::Null, Value::Decimal)
        }
        _ => return None,
    })
}

fn literal(env: &dyn Env, v: &ast::Value) -> Result<Value> {
    use ast::Value as V;
    Ok(match v {
        V::Number(n, _) => number(n)?,
        V::SingleQuotedString(s) | V::DoubleQuotedString(s) => Value::Str(s.clone()),
        V::HexStringLiteral(h) => Value::Bytes(hex(h)?),
        V::Boolean(b) => bool_value(*b),
        V::Null => Value::Null,
        V::Placeholder(p) => {
            let n: usize = p
                .strip_prefix('$')
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| Error::Parse {
                    message: "near '?': parameter markers need a prepared statement".into(),
                })?;
            env.param(n - 1)?
        }
        other => return Err(Error::not_supported(format!("literal {other}"))),
    })
}

/// Parses a numeric literal the way MySQL types it: integers that fit are
/// BIGINT, larger ones BIGINT UNSIGNED, exponents DOUBLE, the rest DECIMAL.
pub(crate) fn number(n: &str) -> Result<Value> {
    if let Ok(i) = n.parse::<i64>() {
        return Ok(Value::Int(i));
    }
    if let Ok(u) = n.parse::<u64>() {
        return Ok(Value::UInt(u));
    }
    if n.contains(['e', 'E']) {
        return n.parse().map(Value::Double).map_err(|_| bad_number(n));
    }
    if n.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && n.bytes().filter(|b| *b == b'.').count() <= 1
    {
        let n = if n.starts_with('.') {
            format!("0{n}")
        } else {
            n.to_string()
        };
        return Ok(Value::Decimal(n));
    }
    Err(bad_number(n))
}

fn bad_number(n: &str) -> Error {
    Error::Parse {
        message: format!("near '{n}': not a number"),
    }
}

fn hex(h: &str) -> Result<Vec<u8>> {
    let h = if h.len() % 2 == 1 {
        format!("0{h}")
    } else {
        h.to_string()
    };
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .map_err(|_| Error::Parse {
            message: format!("near 'X'{h}'': bad hex literal"),
        })
}

fn ident(env: &dyn Env, parts: &[&str], quoted: bool) -> Result<Value> {
    match parts {
        [name] if !quoted && name.starts_with("@@") => env.system_var(&name[2..], None),
        [scope, name] if scope.starts_with("@@") => {
            let scope = match scope[2..].to_ascii_lowercase().as_str() {
                "session" | "local" => VarScope::Session,
                "global" => VarScope::Global,
                _ => {
                    return Err(Error::UnknownSystemVariable(format!(
                        "{}.{name}",
                        &scope[2..]
                    )));
                }
            };
            env.system_var(name, Some(scope))
        }
        [name] if !quoted && name.starts_with('@') => Ok(env.user_var(&name[1..])),
        [name] => env.column(name),
        [_, _] | [_, _, _] => env.column(&parts.join(".")),
        _ => Err(Error::UnknownColumn(parts.join("."))),
    }
}

fn unary(op: UnaryOperator, v: Value, expr: &Expr) -> Result<Value> {
    match (op, v) {
        (_, Value::Null) => Ok(Value::Null),
        (UnaryOperator::Plus, v) => Ok(v),
        (UnaryOperator::Minus, Value::Int(i)) => {
            i.checked_neg()
                .map(Value::Int)
                .ok_or_else(|| Error::OutOfRange {
                    kind: "BIGINT",
                    expr: format!("-{expr}"),
                })
        }
        (UnaryOperator::Minus, Value::UInt(u)) if u == 1 << 63 => Ok(Value::Int(i64::MIN)),
        (UnaryOperator::Minus, Value::UInt(_)) => Err(Error::OutOfRange {
            kind: "BIGINT",
            expr: format!("-{expr}"),
        }),
        (UnaryOperator::Minus, Value::Decimal(d)) => {
            Ok(Value::Decimal(match d.strip_prefix('-') {
                Some(p) => p.to_string(),
                None => format!("-{d}"),
            }))
        }
        (UnaryOperator::Minus, v) => Ok(Value::Double(-to_f64(&v))),
        (UnaryOperator::Not, v) => Ok(bool_value(!truthy(&v))),
        (op, _) => Err(Error::not_supported(format!("operator {op}"))),
    }
}

fn binary(env: &dyn Env, left: &Expr, op: &BinaryOperator, right: &Expr) -> Result<Value> {
    use BinaryOperator as B;
    let (l, r) = (eval(env, left)?, eval(env, right)?);
    let text = || format!("{left} {op} {right}");
    match op {
        B::And => Ok(match (tri(&l), tri(&r)) {
            (Some(false), _) | (_, Some(false)) => bool_value(false),
            (Some(true), Some(true)) => bool_value(true),
            _ => Value::Null,
        }),
        B::Or => Ok(match (tri(&l), tri(&r)) {
            (Some(true), _) | (_, Some(true)) => bool_value(true),
            (Some(false), Some(false)) => bool_value(false),
            _ => Value::Null,
        }),
        B::Xor => Ok(match (tri(&l), tri(&r)) {
            (Some(a), Some(b)) => bool_value(a != b),
            _ => Value::Null,
        }),
        B::Spaceship => Ok(bool_value(
            compare(&l, &r).map_or(l == r, |o| o == Ordering::Equal),
        )),
        B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq => Ok(match compare(&l, &r) {
            None => Value::Null,
            Some(o) => bool_value(match op {
                B::Eq => o == Ordering::Equal,
                B::NotEq => o != Ordering::Equal,
                B::Lt => o == Ordering::Less,
                B::LtEq => o != Ordering::Greater,
                B::Gt => o == Ordering::Greater,
                _ => o != Ordering::Less,
            }),
        }),
        B::Plus | B::Minus | B::Multiply => arith(op, &l, &r, text),
        B::Divide => Ok(divide(&l, &r)),
        B::MyIntegerDivide | B::Modulo => Ok(integer_division(op, &l, &r)),
        other => Err(Error::not_supported(format!("operator {other}"))),
    }
}

fn arith(op: &BinaryOperator, l: &Value, r: &Value, text: impl Fn() -> String) -> Result<Value> {
    if *l == Value::Null || *r == Value::Null {
        return Ok(Value::Null);
    }
    let out_of_range = || Error::OutOfRange {
        kind: "BIGINT",
        expr: text(),
    };
    match (l, r) {
        (Value::Int(_) | Value::UInt(_), Value::Int(_) | Value::UInt(_)) => {
            let (a, b) = (to_i128(l), to_i128(r));
            let v = match op {
                BinaryOperator::Plus => a + b,
                BinaryOperator::Minus => a - b,
                _ => a * b,
            };
            let unsigned = matches!(l, Value::UInt(_)) || matches!(r, Value::UInt(_));
            if unsigned {
                u64::try_from(v)
                    .map(Value::UInt)
                    .map_err(|_| out_of_range())
            } else {
                i64::try_from(v).map(Value::Int).map_err(|_| out_of_range())
            }
        }
        _ => {
            let (a, b) = (to_f64(l), to_f64(r));
            Ok(Value::Double(match op {
                BinaryOperator::Plus => a + b,
                BinaryOperator::Minus => a - b,
                _ => a * b,
            }))
        }
    }
}

/// `DIV` (truncated toward zero, BIGINT) and `%` (sign of the dividend);
/// a zero divisor yields NULL.
fn integer_division(op: &BinaryOperator, l: &Value, r: &Value) -> Value {
    match (l, r) {
        (Value::Null, _) | (_, Value::Null) => Value::Null,
        (Value::Int(_) | Value::UInt(_), Value::Int(_) | Value::UInt(_)) => {
            let (a, b) = (to_i128(l), to_i128(r));
            if b == 0 {
                return Value::Null;
            }
            let v = if *op == BinaryOperator::Modulo {
                a % b
            } else {
                a / b
            };
            i64::try_from(v).map_or_else(|_| Value::UInt(v as u64), Value::Int)
        }
        _ => {
            let (a, b) = (to_f64(l), to_f64(r));
            if b == 0.0 {
                Value::Null
            } else if *op == BinaryOperator::Modulo {
                Value::Double(a % b)
            } else {
                Value::Int((a / b).trunc() as i64)
            }
        }
    }
}

/// `/` on integers yields a DECIMAL with `div_precision_increment` (4) digits;
/// division by zero yields NULL.
fn divide(l: &Value, r: &Value) -> Value {
    match (l, r) {
        (Value::Null, _) | (_, Value::Null) => Value::Null,
        (Value::Int(_) | Value::UInt(_), Value::Int(_) | Value::UInt(_)) => {
            let (a, b) = (to_i128(l), to_i128(r));
            if b == 0 {
                return Value::Null;
            }
            let scaled = a * 10_000;
            let q = scaled / b;
            let rem = scaled % b;
            let q = if rem.abs() * 2 >= b.abs() {
                q + scaled.signum() * b.signum()
            } else {
                q
            };
            let sign = if q < 0 { "-" } else { "" };
            Value::Decimal(format!(
                "{sign}{}.{:04}",
                q.abs() / 10_000,
                q.abs() % 10_000
            ))
        }
        _ => {
            let b = to_f64(r);
            if b == 0.0 {
                Value::Null
            } else {
                Value::Double(to_f64(l) / b)
            }
        }
    }
}

fn in_list(env: &dyn Env, expr: &Expr, list: &[Expr], negated: bool) -> Result<Value> {
    let v = eval(env, expr)?;
    if v == Value::Null {
        return Ok(Value::Null);
    }
    let mut saw_null = false;
    for item in list {
        match compare(&v, &eval(env, item)?) {
            Some(Ordering::Equal) => return Ok(bool_value(!negated)),
            None => saw_null = true,
            _ => {}
        }
    }
    Ok(if saw_null {
        Value::Null
    } else {
        bool_value(negated)
    })
}

fn function(env: &dyn Env, f: &ast::Function) -> Result<Value> {
    let name = f.name.to_string().to_ascii_uppercase();
    let args: Vec<&Expr> = match &f.args {
        FunctionArguments::None => vec![],
        FunctionArguments::List(list) => list
            .args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e),
                other => Err(Error::not_supported(format!("function argument {other}"))),
            })
            .collect::<Result<_>>()?,
        FunctionArguments::Subquery(_) => return Err(Error::not_supported("subquery")),
    };
    if args.is_empty()
        && let Some(v) = SessionFn::named(&name).and_then(|f| env.session_fn(f))
    {
        return Ok(v);
    }
    if name == "VALUES"
        && let [Expr::Identifier(column)] = args.as_slice()
        && let Some(v) = env.inserted(&column.value)
    {
        return Ok(v);
    }
    let values = args
        .iter()
        .map(|a| eval(env, a))
        .collect::<Result<Vec<_>>>()?;
    if let Some(result) = env.session_call(&name, &values) {
        return result;
    }
    let arity = |n: usize| {
        if values.len() == n {
            Ok(())
        } else {
            Err(Error::WrongArgumentCount(name.clone()))
        }
    };
    match name.as_str() {
        "CONCAT" => Ok(values
            .iter()
            .map(text)
            .collect::<Option<String>>()
            .map_or(Value::Null, Value::Str)),
        "IFNULL" => {
            arity(2)?;
            Ok(if values[0] == Value::Null {
                values[1].clone()
            } else {
                values[0].clone()
            })
        }
        "COALESCE" => Ok(values
            .into_iter()
            .find(|v| *v != Value::Null)
            .unwrap_or(Value::Null)),
        "IF" => {
            arity(3)?;
            Ok(if truthy(&values[0]) {
                values[1].clone()
            } else {
                values[2].clone()
            })
        }
        "LOWER" | "LCASE" | "UPPER" | "UCASE" => {
            arity(1)?;
            let upper = name.starts_with('U');
            Ok(text(&values[0]).map_or(Value::Null, |s| {
                Value::Str(if upper {
                    s.to_uppercase()
                } else {
                    s.to_lowercase()
                })
            }))
        }
        "LENGTH" | "CHAR_LENGTH" | "CHARACTER_LENGTH" => {
            arity(1)?;
            let chars = name != "LENGTH";
            Ok(text(&values[0]).map_or(Value::Null, |s| {
                Value::Int(if chars { s.chars().count() } else { s.len() } as i64)
            }))
        }
        "NOW" | "CURRENT_TIMESTAMP" | "LOCALTIME" | "LOCALTIMESTAMP" | "SYSDATE" => {
            // Optional fractional-second digits, 0 to 6.
            let digits = match values.as_slice() {
                [] => 0,
                [Value::Int(n)] if (0..=6).contains(n) => *n as u32,
                [Value::UInt(n)] if *n <= 6 => *n as u32,
                [_] => return Err(Error::WrongArguments("NOW")),
                _ => return Err(Error::WrongArgumentCount(name)),
            };
            let mut now = now();
            now.micros -= now.micros % 10u32.pow(6 - digits);
            Ok(Value::DateTime(now))
        }
        "CURDATE" | "CURRENT_DATE" => {
            arity(0)?;
            Ok(Value::Date(now().date))
        }
        // The date part; NULL for what is not a date (MySQL warns and
        // returns NULL too).
        "DATE" => {
            arity(1)?;
            Ok(types::to_datetime(&values[0]).map_or(Value::Null, |d| Value::Date(d.date)))
        }
        _ => Err(Error::UnknownFunction(name)),
    }
}

pub(crate) fn bool_value(b: bool) -> Value {
    Value::Int(i64::from(b))
}

/// Three-valued truth: `None` for NULL.
fn tri(v: &Value) -> Option<bool> {
    (*v != Value::Null).then(|| truthy(v))
}

/// MySQL truthiness: non-zero numbers (strings are read as numbers).
pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Int(i) => *i != 0,
        Value::UInt(u) => *u != 0,
        other => to_f64(other) != 0.0,
    }
}

/// The value as text, `None` for NULL.
pub(crate) fn text(v: &Value) -> Option<String> {
    v.to_text()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn to_i128(v: &Value) -> i128 {
    match v {
        Value::Int(i) => i128::from(*i),
        Value::UInt(u) => i128::from(*u),
        other => to_f64(other) as i128,
    }
}

/// Reads a value as a double; strings contribute their numeric prefix, as in MySQL.
pub(crate) fn to_f64(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::UInt(u) => *u as f64,
        Value::Double(d) => *d,
        other => leading_double(text(other).unwrap_or_default().as_bytes()),
    }
}

/// Compares two values with MySQL's coercions; `None` if either is NULL.
pub(crate) fn compare(l: &Value, r: &Value) -> Option<Ordering> {
    let numeric = |v: &Value| {
        matches!(
            v,
            Value::Int(_) | Value::UInt(_) | Value::Double(_) | Value::Decimal(_)
        )
    };
    match (l, r) {
        (Value::Null, _) | (_, Value::Null) => None,
        (Value::Int(_) | Value::UInt(_), Value::Int(_) | Value::UInt(_)) => {
            Some(to_i128(l).cmp(&to_i128(r)))
        }
        _ if numeric(l) || numeric(r) => to_f64(l).partial_cmp(&to_f64(r)),
        _ => Some(l.to_text()?.cmp(&r.to_text()?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_typed_like_mysql() {
        assert_eq!(number("42").unwrap(), Value::Int(42));
        assert_eq!(
            number("18446744073709551615").unwrap(),
            Value::UInt(u64::MAX)
        );
        assert_eq!(number("1.50").unwrap(), Value::Decimal("1.50".into()));
        assert_eq!(number("1e3").unwrap(), Value::Double(1000.0));
    }

    #[test]
    fn integer_division_is_decimal() {
        assert_eq!(
            divide(&Value::Int(1), &Value::Int(3)),
            Value::Decimal("0.3333".into())
        );
        assert_eq!(
            divide(&Value::Int(-2), &Value::Int(3)),
            Value::Decimal("-0.6667".into())
        );
        assert_eq!(divide(&Value::Int(1), &Value::Int(0)), Value::Null);
    }

    #[test]
    fn comparisons_coerce() {
        assert_eq!(
            compare(&Value::Str("10".into()), &Value::Int(9)),
            Some(Ordering::Greater)
        );
        assert_eq!(compare(&Value::Null, &Value::Int(9)), None);
        assert_eq!(
            compare(&Value::Str("a".into()), &Value::Str("b".into())),
            Some(Ordering::Less)
        );
    }
}
