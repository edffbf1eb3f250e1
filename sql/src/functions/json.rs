//! MySQL's JSON: the canonical text of a `JSON` column's values, JSON
//! paths, and the JSON functions (`JSON_EXTRACT` and the `->`/`->>`
//! operators, `JSON_UNQUOTE`, `JSON_OBJECT`, `JSON_ARRAY`, `JSON_SET` and
//! the other modifiers, `JSON_CONTAINS`, `JSON_KEYS`, `JSON_LENGTH`, `JSON_SEARCH`, ...),
//! and the aggregates `JSON_ARRAYAGG` and `JSON_OBJECTAGG`.
//!
//! The engines carry a JSON value as its text; a result that is JSON (a
//! `JSON` column, a function that returns JSON) carries the field metadata
//! [`JSON_META`], so that another JSON function embeds it as JSON rather
//! than as a string and the client is told the column is JSON. The text is
//! MySQL's: object members ordered by key length, then key bytes, with
//! `", "` and `": "` between them.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};
use datafusion::scalar::ScalarValue;
use serde_json::{Map, Value as Json};

/// Field metadata marking a value as JSON text.
pub(crate) const JSON_META: &str = "duet.json";

/// The name `CAST(x AS JSON)` is rewritten to.
pub(crate) const CAST_JSON: &str = "duet_cast_json";

/// Parses JSON text as MySQL reads a JSON document.
pub(crate) fn parse(text: &str) -> std::result::Result<Json, String> {
    serde_json::from_str(text).map_err(|e| {
        // serde_json counts lines and columns; MySQL, the offset.
        let offset: usize = text
            .split_inclusive('\n')
            .take(e.line().saturating_sub(1))
            .map(str::len)
            .sum::<usize>()
            + e.column().saturating_sub(1);
        format!("{e} at position {offset}")
    })
}

/// MySQL's text of a JSON value.
pub(crate) fn to_text(v: &Json) -> String {
    let mut out = String::new();
    write(v, &mut out, None, 0);
    out
}

/// `JSON_PRETTY`'s text: one member or element a line, two spaces a level.
fn pretty(v: &Json) -> String {
    let mut out = String::new();
    write(v, &mut out, Some(2), 0);
    out
}

/// Object keys in MySQL's order: shorter first, then by bytes.
fn ordered(m: &Map<String, Json>) -> Vec<(&String, &Json)> {
    let mut members: Vec<(&String, &Json)> = m.iter().collect();
    members.sort_by(|(a, _), (b, _)| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    members
}

fn write(v: &Json, out: &mut String, indent: Option<usize>, depth: usize) {
    let newline = |out: &mut String, depth: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * depth));
        }
    };
    let separator = if indent.is_some() { "," } else { ", " };
    match v {
        Json::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(separator);
                }
                newline(out, depth + 1);
                write(item, out, indent, depth + 1);
            }
            newline(out, depth);
            out.push(']');
        }
        Json::Object(m) if !m.is_empty() => {
            out.push('{');
            for (i, (k, item)) in ordered(m).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(separator);
                }
                newline(out, depth + 1);
                out.push_str(&Json::String(k.clone()).to_string());
                out.push_str(": ");
                write(item, out, indent, depth + 1);
            }
            newline(out, depth);
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq)]
enum Leg {
    Key(String),
    AnyKey,
    /// An array position: from the start, or back from `last`.
    Index(Position),
    AnyIndex,
    Range(Position, Position),
    /// `**`: any depth (then the next leg).
    AnyDepth,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Position {
    FromStart(usize),
    FromLast(usize),
}

impl Position {
    fn resolve(self, len: usize) -> Option<usize> {
        match self {
            Position::FromStart(i) => Some(i),
            Position::FromLast(back) => len.checked_sub(1)?.checked_sub(back),
        }
    }
}

/// A parsed path: `$` and its legs.
#[derive(Debug, Clone, PartialEq)]
struct Path(Vec<Leg>);

impl Path {
    fn parse(text: &str) -> std::result::Result<Path, String> {
        let bad = || format!("Invalid JSON path expression: '{text}'");
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        let skip_ws = |i: &mut usize| {
            while chars.get(*i).is_some_and(|c| c.is_whitespace()) {
                *i += 1;
            }
        };
        skip_ws(&mut i);
        if chars.get(i) != Some(&'$') {
            return Err(bad());
        }
        i += 1;
        let mut legs = Vec::new();
        loop {
            skip_ws(&mut i);
            match chars.get(i) {
                None => break,
                Some('.') => {
                    i += 1;
                    skip_ws(&mut i);
                    match chars.get(i) {
                        Some('*') => {
                            i += 1;
                            legs.push(Leg::AnyKey);
                        }
                        Some('"') => {
                            // A JSON string literal.
                            let start = i;
                            i += 1;
                            while i < chars.len() && chars[i] != '"' {
                                if chars[i] == '\\' {
                                    i += 1;
                                }
                                i += 1;
                            }
                            if i >= chars.len() {
                                return Err(bad());
                            }
                            i += 1;
                            let literal: String = chars[start..i].iter().collect();
                            let key: String = serde_json::from_str(&literal).map_err(|_| bad())?;
                            legs.push(Leg::Key(key));
                        }
                        _ => {
                            let start = i;
                            while chars
                                .get(i)
                                .is_some_and(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
                            {
                                i += 1;
                            }
                            if i == start || chars[start].is_ascii_digit() {
                                return Err(bad());
                            }
                            legs.push(Leg::Key(chars[start..i].iter().collect()));
                        }
                    }
                }
                Some('[') => {
                    i += 1;
                    let rest: String = chars[i..].iter().collect();
                    let close = rest.find(']').ok_or_else(bad)?;
                    let inside = rest[..close].trim();
                    i += rest[..close].chars().count() + 1;
                    if inside == "*" {
                        legs.push(Leg::AnyIndex);
                        continue;
                    }
                    let position = |s: &str| -> Option<Position> {
                        let s = s.trim();
                        if let Some(back) = s.strip_prefix("last") {
                            let back = back.trim();
                            if back.is_empty() {
                                return Some(Position::FromLast(0));
                            }
                            return Some(Position::FromLast(
                                back.strip_prefix('-')?.trim().parse().ok()?,
                            ));
                        }
                        Some(Position::FromStart(s.parse().ok()?))
                    };
                    match inside.split_once(" to ") {
                        Some((a, b)) => legs.push(Leg::Range(
                            position(a).ok_or_else(bad)?,
                            position(b).ok_or_else(bad)?,
                        )),
                        None => legs.push(Leg::Index(position(inside).ok_or_else(bad)?)),
                    }
                }
                Some('*') if chars.get(i + 1) == Some(&'*') => {
                    i += 2;
                    legs.push(Leg::AnyDepth);
                }
                _ => return Err(bad()),
            }
        }
        if legs.last() == Some(&Leg::AnyDepth) {
            return Err(bad());
        }
        Ok(Path(legs))
    }

    /// Whether the path can select more than one value.
    fn is_wild(&self) -> bool {
        self.0.iter().any(|l| {
            matches!(
                l,
                Leg::AnyKey | Leg::AnyIndex | Leg::Range(..) | Leg::AnyDepth
            )
        })
    }

    /// The values the path selects in `v`, in document order.
    fn select<'a>(&self, v: &'a Json) -> Vec<&'a Json> {
        let mut out = Vec::new();
        select(v, &self.0, &mut out);
        out
    }
}

fn select<'a>(v: &'a Json, legs: &[Leg], out: &mut Vec<&'a Json>) {
    let Some((leg, rest)) = legs.split_first() else {
        if !out.iter().any(|o| std::ptr::eq(*o, v)) {
            out.push(v);
        }
        return;
    };
    match (leg, v) {
        (Leg::Key(k), Json::Object(m)) => {
            if let Some(child) = m.get(k) {
                select(child, rest, out);
            }
        }
        (Leg::AnyKey, Json::Object(m)) => {
            for (_, child) in ordered(m) {
                select(child, rest, out);
            }
        }
        (Leg::Index(p), Json::Array(items)) => {
            if let Some(child) = p.resolve(items.len()).and_then(|i| items.get(i)) {
                select(child, rest, out);
            }
        }
        // A value that is not an array is read as one holding it.
        (Leg::Index(p), other) if p.resolve(1) == Some(0) => select(other, rest, out),
        (Leg::AnyIndex, Json::Array(items)) => {
            for child in items {
                select(child, rest, out);
            }
        }
        (Leg::Range(a, b), Json::Array(items)) => {
            let (Some(a), Some(b)) = (a.resolve(items.len()), b.resolve(items.len())) else {
                return;
            };
            for child in items.iter().take(b + 1).skip(a) {
                select(child, rest, out);
            }
        }
        (Leg::AnyDepth, v) => {
            select(v, rest, out);
            match v {
                Json::Object(m) => {
                    for (_, child) in ordered(m) {
                        select(child, legs, out);
                    }
                }
                Json::Array(items) => {
                    for child in items {
                        select(child, legs, out);
                    }
                }
                _ => {}
            }
        }
        _ => {}
    }
}

/// How a modifier treats a path: `JSON_SET` sets whether or not the value
/// exists, `JSON_INSERT` only adds, `JSON_REPLACE` only replaces,
/// `JSON_ARRAY_APPEND` appends to the array there (making a value that is
/// not one an array of it first).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Modify {
    Set,
    Insert,
    Replace,
    Append,
}

/// Applies one modification at a path without wildcards.
fn modify(
    doc: &mut Json,
    path: &Path,
    value: Json,
    how: Modify,
) -> std::result::Result<(), String> {
    if path.is_wild() {
        return Err("In this situation, path expressions may not contain the * and ** tokens or an array range.".into());
    }
    if how == Modify::Append {
        if let Some(target) = walk_mut(doc, &path.0) {
            match target {
                Json::Array(items) => items.push(value),
                other => {
                    let old = std::mem::take(other);
                    *other = Json::Array(vec![old, value]);
                }
            }
        }
        return Ok(());
    }
    let Some((last, parents)) = path.0.split_last() else {
        // `$` itself.
        if how != Modify::Insert {
            *doc = value;
        }
        return Ok(());
    };
    let Some(parent) = walk_mut(doc, parents) else {
        return Ok(());
    };
    match (last, parent) {
        (Leg::Key(k), Json::Object(m)) => {
            let exists = m.contains_key(k);
            if (exists && how != Modify::Insert) || (!exists && how != Modify::Replace) {
                m.insert(k.clone(), value);
            }
        }
        (Leg::Index(p), Json::Array(items)) => match p.resolve(items.len()) {
            Some(i) if i < items.len() => {
                if how != Modify::Insert {
                    items[i] = value;
                }
            }
            _ => {
                if how != Modify::Replace {
                    items.push(value);
                }
            }
        },
        (Leg::Index(p), other) => {
            // A scalar or object is read as an array holding it: position
            // 0 is itself, a later one appends (making it an array).
            if p.resolve(1) == Some(0) {
                if how != Modify::Insert {
                    *other = value;
                }
            } else if how != Modify::Replace {
                let old = std::mem::take(other);
                *other = Json::Array(vec![old, value]);
            }
        }
        _ => {}
    }
    Ok(())
}

/// The value at `legs` (no wildcards), if there is one.
fn walk_mut<'a>(v: &'a mut Json, legs: &[Leg]) -> Option<&'a mut Json> {
    let Some((leg, rest)) = legs.split_first() else {
        return Some(v);
    };
    let next = match (leg, v) {
        (Leg::Key(k), Json::Object(m)) => m.get_mut(k)?,
        (Leg::Index(p), Json::Array(items)) => {
            let i = p.resolve(items.len())?;
            items.get_mut(i)?
        }
        (Leg::Index(p), other) if p.resolve(1) == Some(0) => other,
        _ => return None,
    };
    walk_mut(next, rest)
}

/// Removes the value at a path (not `$`, no wildcards).
fn remove(doc: &mut Json, path: &Path) -> std::result::Result<(), String> {
    if path.is_wild() || path.0.is_empty() {
        return Err("The path expression '$' is not allowed in this context.".into());
    }
    let Some((last, parents)) = path.0.split_last() else {
        return Ok(());
    };
    if let Some(parent) = walk_mut(doc, parents) {
        match (last, parent) {
            (Leg::Key(k), Json::Object(m)) => {
                m.remove(k);
            }
            (Leg::Index(p), Json::Array(items)) => {
                if let Some(i) = p.resolve(items.len()).filter(|i| *i < items.len()) {
                    items.remove(i);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether `candidate` is contained in `target`, as `JSON_CONTAINS` reads
/// it: a scalar in an array if some element contains it; an object in an
/// object if each of its members is contained in the target's member; an
/// array in an array if each element is.
fn contains(target: &Json, candidate: &Json) -> bool {
    match (target, candidate) {
        (Json::Array(_), Json::Array(c)) => c.iter().all(|x| contains(target, x)),
        (Json::Array(t), c) => t.iter().any(|x| contains(x, c)),
        (Json::Object(t), Json::Object(c)) => c
            .iter()
            .all(|(k, v)| t.get(k).is_some_and(|tv| contains(tv, v))),
        (t, c) => scalar_eq(t, c),
    }
}

fn scalar_eq(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// MySQL's order of JSON values: by type first (null, numbers, strings,
/// objects, arrays, booleans, from low to high), then numbers by value,
/// strings by bytes, arrays element by element, booleans false first.
/// Objects are equal when they hold the same members (their canonical
/// texts are then equal); MySQL leaves other object orders unspecified,
/// and here they follow the text.
pub(crate) fn compare(a: &Json, b: &Json) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn rank(v: &Json) -> u8 {
        match v {
            Json::Null => 0,
            Json::Number(_) => 1,
            Json::String(_) => 2,
            Json::Object(_) => 3,
            Json::Array(_) => 4,
            Json::Bool(_) => 5,
        }
    }
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(x), Some(y)) => x.cmp(&y),
                _ => {
                    let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                    x.partial_cmp(&y).unwrap_or(Ordering::Equal)
                }
            },
        },
        (Json::String(x), Json::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Json::Bool(x), Json::Bool(y)) => x.cmp(y),
        (Json::Array(x), Json::Array(y)) => x
            .iter()
            .zip(y)
            .map(|(x, y)| compare(x, y))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| x.len().cmp(&y.len())),
        (Json::Object(_), Json::Object(_)) => to_text(a).cmp(&to_text(b)),
        _ => rank(a).cmp(&rank(b)),
    }
}

fn depth(v: &Json) -> i64 {
    match v {
        Json::Array(items) if !items.is_empty() => 1 + items.iter().map(depth).max().unwrap_or(0),
        Json::Object(m) if !m.is_empty() => 1 + m.values().map(depth).max().unwrap_or(0),
        _ => 1,
    }
}

/// RFC 7396 merge of `patch` into `target`.
fn merge_patch(target: Json, patch: Json) -> Json {
    match (target, patch) {
        (Json::Object(mut t), Json::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(&k);
                } else {
                    let merged = merge_patch(t.remove(&k).unwrap_or(Json::Null), v);
                    t.insert(k, merged);
                }
            }
            Json::Object(t)
        }
        (_, Json::Object(p)) => merge_patch(Json::Object(Map::new()), Json::Object(p)),
        (_, p) => p,
    }
}

/// `JSON_MERGE_PRESERVE`: arrays concatenated, objects merged member by
/// member, anything else wrapped in an array first.
fn merge_preserve(a: Json, b: Json) -> Json {
    match (a, b) {
        (Json::Object(mut x), Json::Object(y)) => {
            for (k, v) in y {
                let merged = match x.remove(&k) {
                    Some(old) => merge_preserve(old, v),
                    None => v,
                };
                x.insert(k, merged);
            }
            Json::Object(x)
        }
        (x, y) => {
            let as_array = |v: Json| match v {
                Json::Array(items) => items,
                other => vec![other],
            };
            let mut items = as_array(x);
            items.extend(as_array(y));
            Json::Array(items)
        }
    }
}

/// One argument of a JSON function: its value, and whether it is JSON.
struct Arg<'a> {
    value: &'a ScalarValue,
    json: bool,
}

/// What a JSON function computes for one row.
type Eval = fn(&str, &[Arg<'_>]) -> std::result::Result<ScalarValue, String>;

/// A JSON function: argument counts, what it returns (JSON text is
/// marked), and how it computes one row.
#[derive(Debug)]
struct JsonFunction {
    name: &'static str,
    signature: Signature,
    returns: DataType,
    returns_json: bool,
    eval: Eval,
}

impl PartialEq for JsonFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for JsonFunction {}

impl std::hash::Hash for JsonFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

/// MySQL's code for a JSON function's error message.
fn error_code(message: &str) -> u16 {
    const CODES: [(&str, u16); 7] = [
        ("Invalid JSON text in argument", 3141),
        ("Invalid JSON path", 3143),
        ("In this situation, path expressions may not contain", 3149),
        ("The oneOrAll argument", 3150),
        ("The path expression '$' is not allowed", 3153),
        ("JSON documents may not contain NULL member names", 3158),
        ("Incorrect parameter count", 1582),
    ];
    CODES
        .iter()
        .find(|(prefix, _)| message.starts_with(prefix))
        .map_or(3141, |(_, code)| *code)
}

/// Whether a field is JSON text (a JSON column or function result).
pub(crate) fn is_json_field(f: &Field) -> bool {
    f.metadata().contains_key(JSON_META)
}

impl ScalarUDFImpl for JsonFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(self.returns.clone())
    }

    fn return_field_from_args(&self, _args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        let field = Field::new(self.name, self.returns.clone(), true);
        Ok(Arc::new(if self.returns_json {
            field.with_metadata([(JSON_META.to_string(), "1".to_string())].into())
        } else {
            field
        }))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let json: Vec<bool> = args.arg_fields.iter().map(|f| is_json_field(f)).collect();
        crate::mysqlfn::per_row(&args, &self.returns, |values| {
            let row: Vec<Arg<'_>> = values
                .iter()
                .zip(json.iter().chain(std::iter::repeat(&false)))
                .map(|(value, json)| Arg { value, json: *json })
                .collect();
            let v = (self.eval)(self.name, &row).map_err(|message| {
                DataFusionError::External(Box::new(crate::error::Error::JsonFunction {
                    code: error_code(&message),
                    message,
                }))
            })?;
            crate::mysqlfn::typed(v, &self.returns)
        })
    }
}

/// Argument counts: `Some(n)` exactly, or from `min` up.
fn json_function(
    name: &'static str,
    min: usize,
    max: Option<usize>,
    returns: DataType,
    returns_json: bool,
    eval: Eval,
) -> ScalarUDF {
    // Enough for any call a client writes.
    let max = max.unwrap_or(min + 64);
    let signature = Signature::one_of(
        (min..=max).map(TypeSignature::Any).collect(),
        Volatility::Immutable,
    );
    ScalarUDF::new_from_shared_impl(Arc::new(JsonFunction {
        name,
        signature,
        returns,
        returns_json,
        eval,
    }))
}

/// The functions, for registration with the query engine.
pub(crate) fn all() -> Vec<ScalarUDF> {
    use DataType::{Int64, Utf8};
    vec![
        json_function("json_extract", 2, None, Utf8, true, json_extract),
        json_function("json_unquote", 1, Some(1), Utf8, false, json_unquote),
        json_function("json_quote", 1, Some(1), Utf8, false, json_quote),
        json_function("json_object", 0, None, Utf8, true, json_object),
        json_function("json_array", 0, None, Utf8, true, json_array),
        json_function("json_valid", 1, Some(1), Int64, false, json_valid),
        json_function("json_type", 1, Some(1), Utf8, false, json_type),
        json_function("json_length", 1, Some(2), Int64, false, json_length),
        json_function("json_depth", 1, Some(1), Int64, false, json_depth),
        json_function("json_keys", 1, Some(2), Utf8, true, json_keys),
        json_function("json_contains", 2, Some(3), Int64, false, json_contains),
        json_function(
            "json_contains_path",
            3,
            None,
            Int64,
            false,
            json_contains_path,
        ),
        json_function("json_set", 3, None, Utf8, true, json_set),
        json_function("json_insert", 3, None, Utf8, true, json_insert),
        json_function("json_replace", 3, None, Utf8, true, json_replace),
        json_function("json_remove", 2, None, Utf8, true, json_remove),
        json_function("json_array_append", 3, None, Utf8, true, json_array_append),
        json_function("json_merge_patch", 2, None, Utf8, true, json_merge_patch),
        json_function(
            "json_merge_preserve",
            2,
            None,
            Utf8,
            true,
            json_merge_preserve,
        ),
        json_function("json_merge", 2, None, Utf8, true, json_merge_preserve),
        json_function("json_pretty", 1, Some(1), Utf8, false, json_pretty),
        json_function("json_search", 3, None, Utf8, true, json_search),
        json_function(CAST_JSON, 1, Some(1), Utf8, true, cast_json),
    ]
}

const NULL: ScalarValue = ScalarValue::Null;

fn json_text(v: &Json) -> ScalarValue {
    ScalarValue::Utf8(Some(to_text(v)))
}

fn string(v: &ScalarValue) -> Option<String> {
    crate::mysqlfn::bytes(v).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// A JSON document argument (`n` from 1); `None` for NULL.
fn doc(name: &str, a: &[Arg<'_>], n: usize) -> std::result::Result<Option<Json>, String> {
    let Some(text) = string(a[n - 1].value) else {
        return Ok(None);
    };
    parse(&text)
        .map(Some)
        .map_err(|e| format!("Invalid JSON text in argument {n} to function {name}: {e}"))
}

/// A path argument; `None` for NULL.
fn path(a: &Arg<'_>) -> std::result::Result<Option<Path>, String> {
    string(a.value).map(|p| Path::parse(&p)).transpose()
}

/// A SQL value as a JSON value (JSON text as what it says).
fn to_json(a: &Arg<'_>) -> std::result::Result<Json, String> {
    let v = a.value;
    if v.is_null() {
        return Ok(Json::Null);
    }
    if a.json {
        return parse(&string(v).unwrap_or_default());
    }
    Ok(match v {
        ScalarValue::Boolean(Some(b)) => Json::Bool(*b),
        v if v.data_type().is_signed_integer() => match v.cast_to(&DataType::Int64) {
            Ok(ScalarValue::Int64(Some(i))) => Json::from(i),
            _ => Json::Null,
        },
        v if v.data_type().is_unsigned_integer() => match v.cast_to(&DataType::UInt64) {
            Ok(ScalarValue::UInt64(Some(u))) => Json::from(u),
            _ => Json::Null,
        },
        ScalarValue::Float64(Some(f)) => {
            serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number)
        }
        ScalarValue::Float32(Some(f)) => {
            serde_json::Number::from_f64(f64::from(*f)).map_or(Json::Null, Json::Number)
        }
        ScalarValue::Decimal128(..) => {
            let text = v.to_string();
            match (text.parse::<i64>(), text.parse::<f64>()) {
                (Ok(i), _) => Json::from(i),
                (_, Ok(f)) => serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number),
                _ => Json::String(text),
            }
        }
        ScalarValue::TimestampMicrosecond(Some(t), _) => {
            let days = t.div_euclid(86_400_000_000);
            let rest = t.rem_euclid(86_400_000_000);
            let (y, m, d) = crate::types::civil_from_days(days);
            let secs = rest / 1_000_000;
            Json::String(format!(
                "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:06}",
                secs / 3600,
                secs / 60 % 60,
                secs % 60,
                rest % 1_000_000
            ))
        }
        ScalarValue::Date32(Some(days)) => {
            let (y, m, d) = crate::types::civil_from_days(i64::from(*days));
            Json::String(format!("{y:04}-{m:02}-{d:02}"))
        }
        other => Json::String(string(other).unwrap_or_default()),
    })
}

fn json_extract(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, String> {
    let Some(d) = doc(name, a, 1)? else {
        return Ok(NULL);
    };
    let mut paths = Vec::new();
    for p in &a[1..] {
        match path(p)? {
            Some(p) => paths.push(p),
            None => return Ok(NULL),
        }
    }
    let single = paths.len() == 1 && !paths[0].is_wild();
    let mut found: Vec<&Json> = Vec::new();
    for p in &paths {
        found.extend(p.select(&d));
    }
    Ok(match found.as_slice() {
        [] => NULL,
        [one] if single => json_text(one),
        many => json_text(&Json::Array(many.iter().map(|v| (*v).clone()).collect())),
    })
}

fn json_unquote(_: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, String> {
    let Some(s) = string(a[0].value) else {
        return Ok(NULL);
    };
    let t = s.trim();
    if t.len() >= 2 && t.starts_with('"') && t.ends_with('"') {
        return match serde_json::from_str::<String>(t) {
            Ok(inner) => Ok(ScalarValue::Utf8(Some(inner))),
            Err(e) => Err(format!(
                "Invalid JSON text in argument 1 to function json_unquote: {e}"
            )),
        };
    }
    Ok(ScalarValue::Utf8(Some(s)))
}

fn json_quote(_: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, String> {
    Ok(string(a[0].value).map_or(NULL, |s| {
        ScalarValue::Utf8(Some(Json::String(s).to_string()))
    }))
}

fn json_object(_: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, String> {
    if !a.len().is_multiple_of(2) {
        return Err(
            "Incorrect parameter count in the call to native function 'json_object'".into(),
        );
    }
    let mut m = Map::new();
    for pair in a.chunks(2) {
        let Some(key) = string(pair[0].value) else {
            return Err("JSON documents may not contain NULL member names.".into());
        };
        m.insert(key, to_json(&pair[1])?);
    }
    Ok(json_text(&Json::Object(m)))
}

fn json_array(_: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, String> {
    let items = a
        .iter()
        .map(to_json)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(json_text(&Json::Array(items)))
}

fn json_valid(_: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, String> {
    Ok(string(a[0].value).map_or(NULL, |s| {
        ScalarValue::Int64(Some(i64::from(parse(&s).is_ok())))
    }))
}

fn json_type(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, String> {
    let Some(d) = doc(name, a, 1)? else {
        return Ok(NULL);
    };
    let t = match &d {
        Json::Null => "NULL",
        Json::Bool(_) => "BOOLEAN",
        Json::Number(n) if n.is_i64() => "INTEGER",
        Json::Number(n) if n.is_u64() => "UNSIGNED INTEGER",
        Json::Number(_) => "DOUBLE",
        Json::String(_) => "STRING",
        Json::Array(_) => "ARRAY",
        Json::Object(_) => "OBJECT",
    };
    Ok(ScalarValue::Utf8(Some(t.into())))
}

/// The value at the optional path argument `n` (from 1) of `d`: `None` if
/// the path is NULL or selects nothing.
fn at_path(d: &Json, a: &[Arg<'_>], n: usize) -> std::result::Result<Option<Json>, String> {
    match a.get(n - 1) {
        None => Ok(Some(d.clone())),
        Some(p) => {
            let Some(p) = path(p)? else {
                return Ok(None);
            };
            if p.is_wild() {
                return Err("In this situation, path expressions may not contain the * and ** tokens or an array range.".into());
            }
            Ok(p.select(d).first().map(|v| (*v).clone()))
        }
    }
}

fn json_length(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, String> {
    let Some(d) = doc(name, a, 1)? else {
        return Ok(NULL);
    };
    Ok(at_path(&d, a, 2)?.map_or(NULL, |v| {
        ScalarValue::Int64(Some(match &v {
            Json::Array(items) => items.len() as i64,
            Json::Object(m) => m.len() as i64,
            _ => 1,
        }))
    }))
}

fn json_depth(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, String> {
    Ok(doc(name, a, 1)?.map_or(NULL, |d| ScalarValue::Int64(Some(depth(&d)))))
}

fn json_keys(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, String> {
    let Some(d) = doc(name, a, 1)? else {
        return Ok(NULL);
    };
    Ok(match at_path(&d, a, 2)? {
        Some(Json::Object(m)) => json_text(&Json::Array(
            ordered(&m)
                .into_iter()
                .map(|(k, _)| Json::String(k.clone()))
                .collect(),
        )),
        _ => NULL,
    })
}

fn json_contains(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, String> {
    let (Some(target), Some(candidate)) = (doc(name, a, 1)?, doc(name, a, 2)?) else {
        return Ok(NULL);
    };
    Ok(at_path(&target, a, 3)?.map_or(NULL, |t| {
        ScalarValue::Int64(Some(i64::from(contains(&t, &candidate))))
    }))
}

fn json_contains_path(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, String> {
    let Some(d) = doc(name, a, 1)? else {
        return Ok(NULL);
    };
    let Some(mode) = string(a[1].value) else {
        return Ok(NULL);
    };
    let all = match mode.to_ascii_lowercase().as_str() {
        "all" => true,
        "one" => false,
        _ => return Err(
            "The oneOrAll argument to json_contains_path may take these values: 'one' or 'all'."
                .into(),
        ),
    };
    let mut hits = Vec::new();
    for p in &a[2..] {
        let Some(p) = path(p)? else {
            return Ok(NULL);
        };
        hits.push(!p.select(&d).is_empty());
    }
    let answer = if all {
        hits.iter().all(|h| *h)
    } else {
        hits.iter().any(|h| *h)
    };
    Ok(ScalarValue::Int64(Some(i64::from(answer))))
}

fn modifier(name: &str, a: &[Arg<'_>], how: Modify) -> std::result::Result<ScalarValue, String> {
    if a.len().is_multiple_of(2) {
        return Err(format!(
            "Incorrect parameter count in the call to native function '{name}'"
        ));
    }
    let Some(mut d) = doc(name, a, 1)? else {
        return Ok(NULL);
    };
    for pair in a[1..].chunks(2) {
        let Some(p) = path(&pair[0])? else {
            return Ok(NULL);
        };
        modify(&mut d, &p, to_json(&pair[1])?, how)?;
    }
    Ok(json_text(&d))
}

fn json_set(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, String> {
    modifier(name, a, Modify::Set)
}

fn json_insert(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, String> {
    modifier(name, a, Modify::Insert)
}

fn json_replace(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, String> {
    modifier(name, a, Modify::Replace)
}

fn json_remove(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, String> {
    let Some(mut d) = doc(name, a, 1)? else {
        return Ok(NULL);
    };
    for p in &a[1..] {
        let Some(p) = path(p)? else {
            return Ok(NULL);
        };
        remove(&mut d, &p)?;
    }
    Ok(json_text(&d))
}

fn json_array_append(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, String> {
    modifier(name, a, Modify::Append)
}

fn json_merge_patch(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, String> {
    let mut merged: Option<Json> = None;
    for n in 1..=a.len() {
        let patch = doc(name, a, n)?;
        merged = match (merged, patch) {
            (None, p) if n == 1 => p,
            // NULL merged with a patch that is not an object stays NULL.
            (None, Some(Json::Object(p))) => Some(merge_patch(Json::Null, Json::Object(p))),
            (None, _) => None,
            (Some(_), None) => None,
            (Some(m), Some(p)) => Some(merge_patch(m, p)),
        };
    }
    Ok(merged.map_or(NULL, |m| json_text(&m)))
}

fn json_merge_preserve(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, String> {
    let mut merged: Option<Json> = None;
    for n in 1..=a.len() {
        let Some(next) = doc(name, a, n)? else {
            return Ok(NULL);
        };
        merged = Some(match merged {
            None => next,
            Some(m) => merge_preserve(m, next),
        });
    }
    Ok(merged.map_or(NULL, |m| json_text(&m)))
}

fn json_pretty(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, String> {
    Ok(doc(name, a, 1)?.map_or(NULL, |d| ScalarValue::Utf8(Some(pretty(&d)))))
}

/// `CAST(x AS JSON)`: text is read as a JSON document, anything else
/// becomes the JSON value it is.
/// A path leg naming `key`: `.key` when it is an identifier, else quoted.
fn push_key(path: &mut String, key: &str) {
    let mut chars = key.chars();
    let identifier = chars
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$');
    path.push('.');
    if identifier {
        path.push_str(key);
    } else {
        path.push_str(&to_text(&Json::String(key.to_string())));
    }
}

/// The paths of the string values under `v` that match `pattern`, in
/// document order (only the first unless `all`); `inside` says whether `v`
/// lies under a searched path, `scopes` are the values those paths select.
fn search(
    v: &Json,
    path: &mut String,
    inside: bool,
    scopes: &[&Json],
    pattern: &str,
    all: bool,
    found: &mut Vec<String>,
) {
    if !all && !found.is_empty() {
        return;
    }
    let inside = inside || scopes.iter().any(|s| std::ptr::eq(*s, v));
    match v {
        Json::String(text) if inside && crate::eval::like(text, pattern, false) => {
            found.push(path.clone());
        }
        Json::Object(members) => {
            for (key, child) in ordered(members) {
                let at = path.len();
                push_key(path, key);
                search(child, path, inside, scopes, pattern, all, found);
                path.truncate(at);
            }
        }
        Json::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let at = path.len();
                path.push_str(&format!("[{i}]"));
                search(child, path, inside, scopes, pattern, all, found);
                path.truncate(at);
            }
        }
        _ => {}
    }
}

/// `JSON_SEARCH(doc, 'one'|'all', pattern[, escape[, path …]])`: the path
/// of the first (or of every) string in the document, or under the paths
/// given, that matches the `LIKE` pattern; an array of them when several;
/// NULL when none.
fn json_search(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, String> {
    let Some(d) = doc(name, a, 1)? else {
        return Ok(NULL);
    };
    let (Some(mode), Some(pattern)) = (string(a[1].value), string(a[2].value)) else {
        return Ok(NULL);
    };
    let all = match mode.to_ascii_lowercase().as_str() {
        "one" => false,
        "all" => true,
        _ => {
            return Err(
                "The oneOrAll argument to json_search may take these values: 'one' or 'all'."
                    .into(),
            );
        }
    };
    // `LIKE` escapes with a backslash; another escape character is turned
    // into one.
    let escape = a
        .get(3)
        .and_then(|e| string(e.value))
        .and_then(|e| e.chars().next())
        .unwrap_or('\\');
    let pattern: String = if escape == '\\' {
        pattern
    } else {
        pattern
            .chars()
            .flat_map(|c| match c {
                c if c == escape => vec!['\\'],
                '\\' => vec!['\\', '\\'],
                c => vec![c],
            })
            .collect()
    };
    let mut scopes = Vec::new();
    for arg in a.iter().skip(4) {
        let Some(p) = path(arg)? else {
            return Ok(NULL);
        };
        scopes.extend(p.select(&d));
    }
    let mut found = Vec::new();
    let everywhere = a.len() <= 4;
    search(
        &d,
        &mut "$".to_string(),
        everywhere,
        &scopes,
        &pattern,
        all,
        &mut found,
    );
    Ok(match found.as_slice() {
        [] => NULL,
        [one] => json_text(&Json::String(one.clone())),
        many => json_text(&Json::Array(
            many.iter().cloned().map(Json::String).collect(),
        )),
    })
}

/// The name comparisons with a JSON side are rewritten to (see
/// `coerce.rs`): `duet_json_cmp(a, b) op 0`.
pub(crate) const JSON_CMP: &str = "duet_json_cmp";

/// -1, 0 or 1 as `a` orders before, with or after `b` as JSON values (a
/// side that is not JSON is taken as the JSON value it would be: a string
/// as a JSON string, a number as a JSON number); NULL if either is NULL.
fn json_cmp(_: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, String> {
    if a[0].value.is_null() || a[1].value.is_null() {
        return Ok(ScalarValue::Int64(None));
    }
    let (x, y) = (to_json(&a[0])?, to_json(&a[1])?);
    Ok(ScalarValue::Int64(Some(compare(&x, &y) as i64)))
}

/// The name `ORDER BY` of a JSON value is rewritten to: bytes that sort
/// as the JSON values do.
pub(crate) const JSON_SORT_KEY: &str = "duet_json_sort_key";

/// Bytes whose order is [`compare`]'s (numbers as doubles): a type byte,
/// then the value; strings and object texts escape their zero bytes and
/// end with two zeros; an array's elements follow one another and end
/// with a zero, below any element's type byte.
fn sort_key(v: &Json, out: &mut Vec<u8>) {
    fn text(bytes: &[u8], out: &mut Vec<u8>) {
        for &b in bytes {
            out.push(b);
            if b == 0 {
                out.push(0xff);
            }
        }
        out.extend_from_slice(&[0, 0]);
    }
    match v {
        Json::Null => out.push(1),
        Json::Number(n) => {
            out.push(2);
            let f = n.as_f64().unwrap_or(0.0);
            let bits = f.to_bits();
            let ordered = if f.is_sign_negative() {
                !bits
            } else {
                bits ^ (1 << 63)
            };
            out.extend_from_slice(&ordered.to_be_bytes());
        }
        Json::String(s) => {
            out.push(3);
            text(s.as_bytes(), out);
        }
        Json::Object(_) => {
            out.push(4);
            text(to_text(v).as_bytes(), out);
        }
        Json::Array(items) => {
            out.push(5);
            for item in items {
                sort_key(item, out);
            }
            out.push(0);
        }
        Json::Bool(b) => out.extend_from_slice(&[6, u8::from(*b)]),
    }
}

fn json_sort_key(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, String> {
    if a[0].value.is_null() {
        return Ok(ScalarValue::Binary(None));
    }
    let v = if a[0].json {
        doc(name, a, 1)?.unwrap_or(Json::Null)
    } else {
        to_json(&a[0])?
    };
    let mut out = Vec::new();
    sort_key(&v, &mut out);
    Ok(ScalarValue::Binary(Some(out)))
}

/// One of the functions the analyzer rules place (not callable by name
/// from SQL), made once.
fn internal_function(
    cell: &'static std::sync::OnceLock<Arc<ScalarUDF>>,
    name: &'static str,
    args: usize,
    returns: DataType,
    eval: Eval,
) -> Arc<ScalarUDF> {
    Arc::clone(
        cell.get_or_init(|| Arc::new(json_function(name, args, Some(args), returns, false, eval))),
    )
}

/// The sort-key function, for the analyzer rule that places it.
pub(crate) fn sort_key_udf() -> Arc<ScalarUDF> {
    static UDF: std::sync::OnceLock<Arc<ScalarUDF>> = std::sync::OnceLock::new();
    internal_function(&UDF, JSON_SORT_KEY, 1, DataType::Binary, json_sort_key)
}

/// The comparison function, for the analyzer rule that places it.
pub(crate) fn compare_udf() -> Arc<ScalarUDF> {
    static UDF: std::sync::OnceLock<Arc<ScalarUDF>> = std::sync::OnceLock::new();
    internal_function(&UDF, JSON_CMP, 2, DataType::Int64, json_cmp)
}

fn cast_json(_: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, String> {
    let v = a[0].value;
    if v.is_null() {
        return Ok(NULL);
    }
    let json = if crate::strfn::is_text(v) || a[0].json {
        parse(&string(v).unwrap_or_default())
            .map_err(|e| format!("Invalid JSON text in argument 1 to function cast_as_json: {e}"))?
    } else {
        to_json(&a[0])?
    };
    Ok(json_text(&json))
}

/// `JSON_ARRAYAGG(x)` and `JSON_OBJECTAGG(k, v)`: a group's values as one
/// JSON array or object (NULL for an empty group). Partial states are the
/// JSON text built so far, merged by parsing it back.
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonAggregate {
    object: bool,
    signature: Signature,
}

impl datafusion::logical_expr::AggregateUDFImpl for JsonAggregate {
    fn name(&self) -> &str {
        if self.object {
            "json_objectagg"
        } else {
            "json_arrayagg"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field(&self, _: &[FieldRef]) -> Result<FieldRef> {
        Ok(Arc::new(
            Field::new(self.name(), DataType::Utf8, true)
                .with_metadata([(JSON_META.to_string(), "1".to_string())].into()),
        ))
    }

    fn accumulator(
        &self,
        args: datafusion::logical_expr::function::AccumulatorArgs<'_>,
    ) -> Result<Box<dyn datafusion::logical_expr::Accumulator>> {
        Ok(Box::new(JsonAccumulator {
            object: self.object,
            json_args: args.expr_fields.iter().map(|f| is_json_field(f)).collect(),
            items: Vec::new(),
            members: Map::new(),
            rows: 0,
            bytes: 0,
        }))
    }
}

#[derive(Debug)]
struct JsonAccumulator {
    object: bool,
    /// Which arguments are JSON text.
    json_args: Vec<bool>,
    items: Vec<Json>,
    members: Map<String, Json>,
    /// Rows taken in (an empty group answers NULL).
    rows: usize,
    /// About how much memory the values take (their text's length).
    bytes: usize,
}

fn aggregate_error(message: String) -> DataFusionError {
    DataFusionError::External(Box::new(crate::error::Error::JsonFunction {
        code: error_code(&message),
        message,
    }))
}

impl JsonAccumulator {
    fn value(
        &self,
        arrays: &[datafusion::arrow::array::ArrayRef],
        arg: usize,
        row: usize,
    ) -> Result<Json> {
        let value = ScalarValue::try_from_array(&arrays[arg], row)?;
        let json = self.json_args.get(arg).copied().unwrap_or(false);
        to_json(&Arg {
            value: &value,
            json,
        })
        .map_err(|e| aggregate_error(format!("Invalid JSON text in argument {}: {e}", arg + 1)))
    }

    fn result(&self) -> Json {
        if self.object {
            Json::Object(self.members.clone())
        } else {
            Json::Array(self.items.clone())
        }
    }
}

impl datafusion::logical_expr::Accumulator for JsonAccumulator {
    fn update_batch(&mut self, values: &[datafusion::arrow::array::ArrayRef]) -> Result<()> {
        let Some(first) = values.first() else {
            return Ok(());
        };
        for row in 0..first.len() {
            self.rows += 1;
            if !self.object {
                let v = self.value(values, 0, row)?;
                self.bytes += to_text(&v).len();
                self.items.push(v);
                continue;
            }
            let key = ScalarValue::try_from_array(first, row)?;
            let Some(key) = string(&key) else {
                return Err(aggregate_error(
                    "JSON documents may not contain NULL member names.".into(),
                ));
            };
            // A repeated key keeps its last value, as in MySQL.
            let v = self.value(values, 1, row)?;
            self.bytes += key.len() + to_text(&v).len();
            self.members.insert(key, v);
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(if self.rows == 0 {
            ScalarValue::Utf8(None)
        } else {
            json_text(&self.result())
        })
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.bytes
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.evaluate().map(|v| vec![v])
    }

    fn merge_batch(&mut self, states: &[datafusion::arrow::array::ArrayRef]) -> Result<()> {
        let Some(texts) = states.first() else {
            return Ok(());
        };
        for row in 0..texts.len() {
            let Some(text) = string(&ScalarValue::try_from_array(texts, row)?) else {
                continue;
            };
            let part = parse(&text).map_err(aggregate_error)?;
            self.bytes += text.len();
            match part {
                Json::Object(members) if self.object => {
                    self.rows += members.len().max(1);
                    self.members.extend(members);
                }
                Json::Array(items) if !self.object => {
                    self.rows += items.len().max(1);
                    self.items.extend(items);
                }
                other => {
                    return Err(aggregate_error(format!(
                        "Invalid JSON text in a partial aggregate: {other}"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The JSON aggregates, for registration with the query engine.
pub(crate) fn aggregates() -> Vec<datafusion::logical_expr::AggregateUDF> {
    [(false, 1), (true, 2)]
        .into_iter()
        .map(|(object, args)| {
            datafusion::logical_expr::AggregateUDF::new_from_impl(JsonAggregate {
                object,
                signature: Signature::any(args, Volatility::Immutable),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_order_by_type_then_value() {
        let j = |t: &str| parse(t).unwrap();
        let ascending = [
            "null",
            "-1",
            "1",
            "1.5",
            "2",
            "\"a\"",
            "\"b\"",
            "{\"a\": 1}",
            "[1]",
            "[1, 2]",
            "[2]",
            "false",
            "true",
        ];
        for (i, x) in ascending.iter().enumerate() {
            for (k, y) in ascending.iter().enumerate() {
                assert_eq!(compare(&j(x), &j(y)), i.cmp(&k), "{x} vs {y}");
            }
        }
        assert_eq!(compare(&j("1"), &j("1.0")), std::cmp::Ordering::Equal);
        // The sort keys order alike.
        let key = |t: &str| {
            let mut out = Vec::new();
            sort_key(&j(t), &mut out);
            out
        };
        for (i, x) in ascending.iter().enumerate() {
            for (k, y) in ascending.iter().enumerate() {
                assert_eq!(key(x).cmp(&key(y)), i.cmp(&k), "keys of {x} vs {y}");
            }
        }
        assert!(key("[]") < key("[null]") && key("9") < key("10") && key("-10") < key("-9"));
        assert_eq!(
            compare(&j(r#"{"b": 1, "a": [2]}"#), &j(r#"{"a": [2], "b": 1}"#)),
            std::cmp::Ordering::Equal
        );
    }

    fn s(v: &str) -> ScalarValue {
        ScalarValue::Utf8(Some(v.to_string()))
    }

    fn call(f: Eval, args: &[ScalarValue]) -> ScalarValue {
        let args: Vec<Arg<'_>> = args
            .iter()
            .map(|value| Arg { value, json: false })
            .collect();
        f("f", &args).unwrap()
    }

    #[test]
    fn search_finds_the_paths_of_matching_strings() {
        let d = s(r#"["abc", [{"k": "10"}, "def"], {"x":"abc"}, {"y":"bcd"}]"#);
        let search = |args: &[Option<&str>]| {
            let mut all = vec![d.clone()];
            all.extend(args.iter().map(|a| a.map_or(ScalarValue::Utf8(None), s)));
            call(json_search, &all)
        };
        let (one, every) = (Some("one"), Some("all"));
        assert_eq!(search(&[one, Some("abc")]), s(r#""$[0]""#));
        assert_eq!(search(&[every, Some("abc")]), s(r#"["$[0]", "$[2].x"]"#));
        assert!(search(&[every, Some("ghi")]).is_null());
        assert_eq!(search(&[every, Some("10")]), s(r#""$[1][0].k""#));
        for scope in ["$", "$[*]", "$**.k", "$[*][0].k", "$[1]", "$[1][0]"] {
            assert_eq!(
                search(&[every, Some("10"), None, Some(scope)]),
                s(r#""$[1][0].k""#),
                "{scope}"
            );
        }
        assert_eq!(
            search(&[every, Some("abc"), None, Some("$[2]")]),
            s(r#""$[2].x""#)
        );
        assert_eq!(
            search(&[every, Some("%b%")]),
            s(r#"["$[0]", "$[2].x", "$[3].y"]"#)
        );
        assert!(search(&[every, Some("%b%"), Some(""), Some("$[1]")]).is_null());
        assert_eq!(
            search(&[every, Some("%b%"), Some(""), Some("$[3]")]),
            s(r#""$[3].y""#)
        );
        // Another escape character; a key that is no identifier is quoted.
        let odd = s(r#"{"a b": "50%", "c": "50x"}"#);
        let args = [odd, s("all"), s("50|%"), s("|")];
        assert_eq!(call(json_search, &args), s(r#""$.\"a b\"""#));
        let bad = [d.clone(), s("some"), s("x")];
        let args: Vec<Arg<'_>> = bad.iter().map(|value| Arg { value, json: false }).collect();
        assert_eq!(error_code(&json_search("f", &args).unwrap_err()), 3150);
    }

    #[test]
    fn json_text_is_mysqls() {
        let v =
            parse(r#"{"bb": [1, 2.5, "x\"y"], "a": {"c": null, "b": true}, "ccc": []}"#).unwrap();
        assert_eq!(
            to_text(&v),
            r#"{"a": {"b": true, "c": null}, "bb": [1, 2.5, "x\"y"], "ccc": []}"#
        );
        assert_eq!(
            pretty(&parse(r#"{"a":[1,{}]}"#).unwrap()),
            "{\n  \"a\": [\n    1,\n    {}\n  ]\n}"
        );
        let e = parse("{\"a\": }").unwrap_err();
        assert!(e.contains("position 6"), "{e}");
    }

    #[test]
    fn paths_select_as_mysql_does() {
        let d = s(r#"{"a": [10, 20, {"b": 30}], "c d": 1, "x": {"b": 40}}"#);
        let extract = |p: &[&str]| {
            let mut args = vec![d.clone()];
            args.extend(p.iter().map(|p| s(p)));
            call(json_extract, &args)
        };
        assert_eq!(extract(&["$.a[1]"]), s("20"));
        assert_eq!(extract(&["$.a[last]"]), s(r#"{"b": 30}"#));
        assert_eq!(extract(&["$.a[last - 1]"]), s("20"));
        assert_eq!(extract(&["$.\"c d\""]), s("1"));
        assert_eq!(extract(&["$.a[0 to 1]"]), s("[10, 20]"));
        assert_eq!(extract(&["$.a[*]"]), s(r#"[10, 20, {"b": 30}]"#));
        assert_eq!(extract(&["$**.b"]), s("[30, 40]"));
        assert_eq!(extract(&["$.*.b"]), s("[40]"));
        assert_eq!(extract(&["$.a[0]", "$.x.b"]), s("[10, 40]"));
        assert!(extract(&["$.nope"]).is_null());
        assert_eq!(extract(&["$.x[0].b"]), s("40"), "a value read as an array");
        assert!(Path::parse("a.b").is_err());
        assert!(Path::parse("$.a**").is_err());
    }

    #[test]
    fn modifiers_and_predicates() {
        let d = s(r#"{"a": 1, "b": [2, 3]}"#);
        assert_eq!(
            call(json_set, &[d.clone(), s("$.a"), s("x"), s("$.c"), s("y")]),
            s(r#"{"a": "x", "b": [2, 3], "c": "y"}"#)
        );
        assert_eq!(
            call(
                json_insert,
                &[d.clone(), s("$.a"), s("x"), s("$.b[5]"), s("y")]
            ),
            s(r#"{"a": 1, "b": [2, 3, "y"]}"#)
        );
        assert_eq!(
            call(
                json_replace,
                &[d.clone(), s("$.a"), s("x"), s("$.c"), s("y")]
            ),
            s(r#"{"a": "x", "b": [2, 3]}"#)
        );
        assert_eq!(
            call(json_remove, &[d.clone(), s("$.b[0]")]),
            s(r#"{"a": 1, "b": [3]}"#)
        );
        assert_eq!(
            call(
                json_array_append,
                &[d.clone(), s("$.a"), ScalarValue::Int64(Some(4))]
            ),
            s(r#"{"a": [1, 4], "b": [2, 3]}"#)
        );
        let i = |v| ScalarValue::Int64(Some(v));
        assert_eq!(call(json_contains, &[d.clone(), s("[3]"), s("$.b")]), i(1));
        assert_eq!(call(json_contains, &[d.clone(), s(r#"{"a": 1}"#)]), i(1));
        assert_eq!(call(json_contains, &[d.clone(), s(r#"{"a": 2}"#)]), i(0));
        assert_eq!(
            call(
                json_contains_path,
                &[d.clone(), s("all"), s("$.a"), s("$.z")]
            ),
            i(0)
        );
        assert_eq!(
            call(
                json_contains_path,
                &[d.clone(), s("one"), s("$.a"), s("$.z")]
            ),
            i(1)
        );
        assert_eq!(call(json_length, std::slice::from_ref(&d)), i(2));
        assert_eq!(call(json_length, &[d.clone(), s("$.b")]), i(2));
        assert_eq!(call(json_depth, std::slice::from_ref(&d)), i(3));
        assert_eq!(
            call(json_keys, std::slice::from_ref(&d)),
            s(r#"["a", "b"]"#)
        );
        assert_eq!(call(json_type, &[s("[1]")]), s("ARRAY"));
        assert_eq!(call(json_valid, &[s("{")]), i(0));
        assert_eq!(call(json_unquote, &[s(r#""a\tb""#)]), s("a\tb"));
        assert_eq!(call(json_quote, &[s("a\"b")]), s(r#""a\"b""#));
        assert_eq!(
            call(
                json_merge_patch,
                &[s(r#"{"a": 1, "b": 2}"#), s(r#"{"a": null, "c": 3}"#)]
            ),
            s(r#"{"b": 2, "c": 3}"#)
        );
        assert_eq!(
            call(json_merge_preserve, &[s(r#"[1, 2]"#), s(r#"true"#)]),
            s("[1, 2, true]")
        );
        assert_eq!(
            call(
                json_object,
                &[s("b"), i(1), s("aa"), s("x"), s("a"), ScalarValue::Null]
            ),
            s(r#"{"a": null, "b": 1, "aa": "x"}"#)
        );
        assert_eq!(
            call(
                json_array,
                &[i(1), ScalarValue::Float64(Some(2.5)), s("[1]")]
            ),
            s(r#"[1, 2.5, "[1]"]"#),
            "a string that is not JSON text is a string"
        );
        let args = [s("[1]")];
        let marked: Vec<Arg<'_>> = args.iter().map(|value| Arg { value, json: true }).collect();
        assert_eq!(json_array("f", &marked).unwrap(), s("[[1]]"));
        assert!(
            json_extract(
                "f",
                &[
                    Arg {
                        value: &s("{"),
                        json: false
                    },
                    Arg {
                        value: &s("$"),
                        json: false
                    }
                ]
            )
            .is_err()
        );
    }
}
