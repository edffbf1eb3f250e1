//! JSON documents as MySQL sees them, with no engine attached: parsing,
//! the canonical text (object members ordered by key length, then key
//! bytes, with `", "` and `": "` between them), paths and their legs, the
//! modifications `JSON_SET` and its kin make, containment, the order of
//! JSON values and bytes that sort in that order.

use serde_json::{Map, Value as Json};

/// Why a JSON function failed, with MySQL's error code for each reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JsonError {
    /// A document argument is not JSON; `detail` says where it stops.
    #[error("Invalid JSON text in argument {arg} to function {function}: {detail}")]
    InvalidText {
        arg: usize,
        function: String,
        detail: String,
    },
    /// A value that should hold JSON text (a JSON column's) does not.
    #[error("Invalid JSON text: {0}")]
    InvalidValue(String),
    #[error("Invalid JSON path expression: '{0}'")]
    InvalidPath(String),
    #[error(
        "In this situation, path expressions may not contain the * and ** tokens or an array range."
    )]
    WildcardPath,
    #[error("The oneOrAll argument to {0} may take these values: 'one' or 'all'.")]
    OneOrAll(String),
    #[error("The path expression '$' is not allowed in this context.")]
    RootPath,
    #[error("JSON documents may not contain NULL member names.")]
    NullMemberName,
    #[error("Incorrect parameter count in the call to native function '{0}'")]
    ParameterCount(String),
}

impl JsonError {
    /// MySQL's error code.
    pub fn code(&self) -> u16 {
        match self {
            JsonError::InvalidText { .. } | JsonError::InvalidValue(_) => 3141,
            JsonError::InvalidPath(_) => 3143,
            JsonError::WildcardPath => 3149,
            JsonError::OneOrAll(_) => 3150,
            JsonError::RootPath => 3153,
            JsonError::NullMemberName => 3158,
            JsonError::ParameterCount(_) => 1582,
        }
    }

    /// `text`, which function `function`'s argument `arg` (from 1) held,
    /// does not parse as JSON.
    pub(crate) fn invalid_text(arg: usize, function: &str, detail: String) -> JsonError {
        JsonError::InvalidText {
            arg,
            function: function.to_string(),
            detail,
        }
    }
}

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
pub(crate) fn pretty(v: &Json) -> String {
    let mut out = String::new();
    write(v, &mut out, Some(2), 0);
    out
}

/// Object keys in MySQL's order: shorter first, then by bytes.
pub(crate) fn ordered(m: &Map<String, Json>) -> Vec<(&String, &Json)> {
    let mut members: Vec<(&String, &Json)> = m.iter().collect();
    members.sort_by(|(a, _), (b, _)| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    members
}

pub(crate) fn write(v: &Json, out: &mut String, indent: Option<usize>, depth: usize) {
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
pub(crate) enum Leg {
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
pub(crate) enum Position {
    FromStart(usize),
    FromLast(usize),
}

impl Position {
    pub(crate) fn resolve(self, len: usize) -> Option<usize> {
        match self {
            Position::FromStart(i) => Some(i),
            Position::FromLast(back) => len.checked_sub(1)?.checked_sub(back),
        }
    }
}

/// A parsed path: `$` and its legs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Path(pub(crate) Vec<Leg>);

impl Path {
    pub(crate) fn parse(text: &str) -> std::result::Result<Path, JsonError> {
        let bad = || JsonError::InvalidPath(text.to_string());
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
    pub(crate) fn is_wild(&self) -> bool {
        self.0.iter().any(|l| {
            matches!(
                l,
                Leg::AnyKey | Leg::AnyIndex | Leg::Range(..) | Leg::AnyDepth
            )
        })
    }

    /// The values the path selects in `v`, in document order.
    pub(crate) fn select<'a>(&self, v: &'a Json) -> Vec<&'a Json> {
        let mut out = Vec::new();
        select(v, &self.0, &mut out);
        out
    }
}

pub(crate) fn select<'a>(v: &'a Json, legs: &[Leg], out: &mut Vec<&'a Json>) {
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
pub(crate) enum Modify {
    Set,
    Insert,
    Replace,
    Append,
}

/// Applies one modification at a path without wildcards.
pub(crate) fn modify(
    doc: &mut Json,
    path: &Path,
    value: Json,
    how: Modify,
) -> std::result::Result<(), JsonError> {
    if path.is_wild() {
        return Err(JsonError::WildcardPath);
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
pub(crate) fn walk_mut<'a>(v: &'a mut Json, legs: &[Leg]) -> Option<&'a mut Json> {
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
pub(crate) fn remove(doc: &mut Json, path: &Path) -> std::result::Result<(), JsonError> {
    if path.is_wild() || path.0.is_empty() {
        return Err(JsonError::RootPath);
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
pub(crate) fn contains(target: &Json, candidate: &Json) -> bool {
    match (target, candidate) {
        (Json::Array(_), Json::Array(c)) => c.iter().all(|x| contains(target, x)),
        (Json::Array(t), c) => t.iter().any(|x| contains(x, c)),
        (Json::Object(t), Json::Object(c)) => c
            .iter()
            .all(|(k, v)| t.get(k).is_some_and(|tv| contains(tv, v))),
        (t, c) => scalar_eq(t, c),
    }
}

pub(crate) fn scalar_eq(a: &Json, b: &Json) -> bool {
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

pub(crate) fn depth(v: &Json) -> i64 {
    match v {
        Json::Array(items) if !items.is_empty() => 1 + items.iter().map(depth).max().unwrap_or(0),
        Json::Object(m) if !m.is_empty() => 1 + m.values().map(depth).max().unwrap_or(0),
        _ => 1,
    }
}

/// RFC 7396 merge of `patch` into `target`.
pub(crate) fn merge_patch(target: Json, patch: Json) -> Json {
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
pub(crate) fn merge_preserve(a: Json, b: Json) -> Json {
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

/// Bytes whose order is [`compare`]'s (numbers as doubles): a type byte,
/// then the value; strings and object texts escape their zero bytes and
/// end with two zeros; an array's elements follow one another and end
/// with a zero, below any element's type byte.
pub(crate) fn sort_key(v: &Json, out: &mut Vec<u8>) {
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
