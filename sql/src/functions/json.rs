//! MySQL's JSON functions (`JSON_EXTRACT` and the `->`/`->>` operators,
//! `JSON_UNQUOTE`, `JSON_OBJECT`, `JSON_ARRAY`, `JSON_SET` and the other
//! modifiers, `JSON_CONTAINS`, `JSON_KEYS`, `JSON_LENGTH`, `JSON_SEARCH`,
//! ...) over the documents of [`crate::rules::json`].
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

use crate::error::Error;
use crate::functions::string;
use crate::functions::udf;
use crate::rules::json::{
    JsonError, Modify, Path, compare, contains, depth, merge_patch, merge_preserve, modify,
    ordered, parse, pretty, remove, sort_key, to_text,
};
use crate::rules::like;
use crate::rules::time;

/// Field metadata marking a value as JSON text.
pub(crate) const JSON_META: &str = "duet.json";

/// The name `CAST(x AS JSON)` is rewritten to.
pub(crate) const CAST_JSON: &str = "duet_cast_json";

/// One argument of a JSON function: its value, and whether it is JSON.
pub(crate) struct Arg<'a> {
    pub(crate) value: &'a ScalarValue,
    pub(crate) json: bool,
}

/// What a JSON function computes for one row.
type Eval = fn(&str, &[Arg<'_>]) -> std::result::Result<ScalarValue, JsonError>;

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
        udf::per_row(&args, &self.returns, |values| {
            let row: Vec<Arg<'_>> = values
                .iter()
                .zip(json.iter().chain(std::iter::repeat(&false)))
                .map(|(value, json)| Arg { value, json: *json })
                .collect();
            let v = (self.eval)(self.name, &row)
                .map_err(|e| DataFusionError::External(Box::new(Error::Json(e))))?;
            udf::typed(v, &self.returns)
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

pub(crate) fn json_text(v: &Json) -> ScalarValue {
    ScalarValue::Utf8(Some(to_text(v)))
}

pub(crate) fn string(v: &ScalarValue) -> Option<String> {
    udf::bytes(v).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// A JSON document argument (`n` from 1); `None` for NULL.
fn doc(name: &str, a: &[Arg<'_>], n: usize) -> std::result::Result<Option<Json>, JsonError> {
    let Some(text) = string(a[n - 1].value) else {
        return Ok(None);
    };
    parse(&text)
        .map(Some)
        .map_err(|e| JsonError::invalid_text(n, name, e))
}

/// A path argument; `None` for NULL.
fn path(a: &Arg<'_>) -> std::result::Result<Option<Path>, JsonError> {
    string(a.value).map(|p| Path::parse(&p)).transpose()
}

/// A SQL value as a JSON value (JSON text as what it says).
pub(crate) fn to_json(a: &Arg<'_>) -> std::result::Result<Json, JsonError> {
    let v = a.value;
    if v.is_null() {
        return Ok(Json::Null);
    }
    if a.json {
        return parse(&string(v).unwrap_or_default()).map_err(JsonError::InvalidValue);
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
            let (y, m, d) = time::civil_from_days(days);
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
            let (y, m, d) = time::civil_from_days(i64::from(*days));
            Json::String(format!("{y:04}-{m:02}-{d:02}"))
        }
        other => Json::String(string(other).unwrap_or_default()),
    })
}

fn json_extract(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, JsonError> {
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

fn json_unquote(_: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, JsonError> {
    let Some(s) = string(a[0].value) else {
        return Ok(NULL);
    };
    let t = s.trim();
    if t.len() >= 2 && t.starts_with('"') && t.ends_with('"') {
        return match serde_json::from_str::<String>(t) {
            Ok(inner) => Ok(ScalarValue::Utf8(Some(inner))),
            Err(e) => Err(JsonError::invalid_text(1, "json_unquote", e.to_string())),
        };
    }
    Ok(ScalarValue::Utf8(Some(s)))
}

fn json_quote(_: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, JsonError> {
    Ok(string(a[0].value).map_or(NULL, |s| {
        ScalarValue::Utf8(Some(Json::String(s).to_string()))
    }))
}

fn json_object(_: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, JsonError> {
    if !a.len().is_multiple_of(2) {
        return Err(JsonError::ParameterCount("json_object".into()));
    }
    let mut m = Map::new();
    for pair in a.chunks(2) {
        let Some(key) = string(pair[0].value) else {
            return Err(JsonError::NullMemberName);
        };
        m.insert(key, to_json(&pair[1])?);
    }
    Ok(json_text(&Json::Object(m)))
}

fn json_array(_: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, JsonError> {
    let items = a
        .iter()
        .map(to_json)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(json_text(&Json::Array(items)))
}

fn json_valid(_: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, JsonError> {
    Ok(string(a[0].value).map_or(NULL, |s| {
        ScalarValue::Int64(Some(i64::from(parse(&s).is_ok())))
    }))
}

fn json_type(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, JsonError> {
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
fn at_path(d: &Json, a: &[Arg<'_>], n: usize) -> std::result::Result<Option<Json>, JsonError> {
    match a.get(n - 1) {
        None => Ok(Some(d.clone())),
        Some(p) => {
            let Some(p) = path(p)? else {
                return Ok(None);
            };
            if p.is_wild() {
                return Err(JsonError::WildcardPath);
            }
            Ok(p.select(d).first().map(|v| (*v).clone()))
        }
    }
}

fn json_length(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, JsonError> {
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

fn json_depth(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, JsonError> {
    Ok(doc(name, a, 1)?.map_or(NULL, |d| ScalarValue::Int64(Some(depth(&d)))))
}

fn json_keys(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, JsonError> {
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

fn json_contains(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, JsonError> {
    let (Some(target), Some(candidate)) = (doc(name, a, 1)?, doc(name, a, 2)?) else {
        return Ok(NULL);
    };
    Ok(at_path(&target, a, 3)?.map_or(NULL, |t| {
        ScalarValue::Int64(Some(i64::from(contains(&t, &candidate))))
    }))
}

fn json_contains_path(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, JsonError> {
    let Some(d) = doc(name, a, 1)? else {
        return Ok(NULL);
    };
    let Some(mode) = string(a[1].value) else {
        return Ok(NULL);
    };
    let all = match mode.to_ascii_lowercase().as_str() {
        "all" => true,
        "one" => false,
        _ => return Err(JsonError::OneOrAll("json_contains_path".into())),
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

fn modifier(name: &str, a: &[Arg<'_>], how: Modify) -> std::result::Result<ScalarValue, JsonError> {
    if a.len().is_multiple_of(2) {
        return Err(JsonError::ParameterCount(name.to_string()));
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

fn json_set(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, JsonError> {
    modifier(name, a, Modify::Set)
}

fn json_insert(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, JsonError> {
    modifier(name, a, Modify::Insert)
}

fn json_replace(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, JsonError> {
    modifier(name, a, Modify::Replace)
}

fn json_remove(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, JsonError> {
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

fn json_array_append(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, JsonError> {
    modifier(name, a, Modify::Append)
}

fn json_merge_patch(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, JsonError> {
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

fn json_merge_preserve(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, JsonError> {
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

fn json_pretty(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, JsonError> {
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
        Json::String(text) if inside && like::like(text, pattern, false) => {
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
fn json_search(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, JsonError> {
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
            return Err(JsonError::OneOrAll("json_search".into()));
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
fn json_cmp(_: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, JsonError> {
    if a[0].value.is_null() || a[1].value.is_null() {
        return Ok(ScalarValue::Int64(None));
    }
    let (x, y) = (to_json(&a[0])?, to_json(&a[1])?);
    Ok(ScalarValue::Int64(Some(compare(&x, &y) as i64)))
}

/// The name `ORDER BY` of a JSON value is rewritten to: bytes that sort
/// as the JSON values do.
pub(crate) const JSON_SORT_KEY: &str = "duet_json_sort_key";

fn json_sort_key(name: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, JsonError> {
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

fn cast_json(_: &str, a: &[Arg<'_>]) -> std::result::Result<ScalarValue, JsonError> {
    let v = a[0].value;
    if v.is_null() {
        return Ok(NULL);
    }
    let json = if string::is_text(v) || a[0].json {
        parse(&string(v).unwrap_or_default())
            .map_err(|e| JsonError::invalid_text(1, "cast_as_json", e))?
    } else {
        to_json(&a[0])?
    };
    Ok(json_text(&json))
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
        assert_eq!(json_search("f", &args).unwrap_err().code(), 3150);
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
