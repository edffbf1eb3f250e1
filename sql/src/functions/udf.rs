//! MySQL scalar functions the query engine has no counterpart for, each
//! evaluated a row at a time on scalar values: `HEX`/`UNHEX`, `BIN`, `OCT`,
//! `CONV`, `BIT_COUNT`, `TO_BASE64`/`FROM_BASE64`, `SHA1`/`SHA`, `CRC32`,
//! `QUOTE`, `SOUNDEX`, `INSERT`, `INET_ATON`/`INET_NTOA`, `LAST_DAY`,
//! `MAKEDATE` and `WEEK`. A NULL argument gives NULL (except to `QUOTE`),
//! and so does an argument the function cannot read, as in MySQL.

use std::sync::Arc;

use base64::Engine as _;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::scalar::ScalarValue;
use sha1::Digest as _;

use crate::types::{civil_from_days, days_from_civil, to_datetime};
use crate::value::Value;

/// One function: its name, how many arguments it takes, what it returns,
/// and how it computes one row.
struct RowFunction {
    name: &'static str,
    signature: Signature,
    returns: DataType,
    eval: fn(&[ScalarValue]) -> ScalarValue,
}

impl std::fmt::Debug for RowFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for RowFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for RowFunction {}

impl std::hash::Hash for RowFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for RowFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(self.returns.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        per_row(&args, &self.returns, |row| {
            typed((self.eval)(row), &self.returns)
        })
    }
}

/// `v` in the type `returns` (NULL of that type for NULL).
pub(crate) fn typed(v: ScalarValue, returns: &DataType) -> Result<ScalarValue> {
    if v.is_null() {
        return ScalarValue::try_from(returns);
    }
    v.cast_to(returns)
}

/// A function evaluated a row at a time: `f` gets each row's arguments
/// as scalars and gives its value, of type `returns`; all-constant
/// arguments give a constant.
pub(crate) fn per_row(
    args: &ScalarFunctionArgs,
    returns: &DataType,
    f: impl Fn(&[ScalarValue]) -> Result<ScalarValue>,
) -> Result<ColumnarValue> {
    let all_scalar = args
        .args
        .iter()
        .all(|a| matches!(a, ColumnarValue::Scalar(_)));
    let row = |i: usize| -> Result<Vec<ScalarValue>> {
        args.args
            .iter()
            .map(|a| match a {
                ColumnarValue::Scalar(s) => Ok(s.clone()),
                ColumnarValue::Array(arr) => ScalarValue::try_from_array(arr, i),
            })
            .collect()
    };
    if all_scalar {
        return Ok(ColumnarValue::Scalar(f(&row(0)?)?));
    }
    let values = (0..args.number_rows)
        .map(|i| f(&row(i)?))
        .collect::<Result<Vec<_>>>()?;
    if values.is_empty() {
        return Ok(ColumnarValue::Array(
            datafusion::arrow::array::new_empty_array(returns),
        ));
    }
    Ok(ColumnarValue::Array(ScalarValue::iter_to_array(values)?))
}

pub(crate) fn function(
    name: &'static str,
    arities: &[usize],
    returns: DataType,
    eval: fn(&[ScalarValue]) -> ScalarValue,
) -> ScalarUDF {
    let signature = match arities {
        [n] => Signature::any(*n, Volatility::Immutable),
        many => Signature::one_of(
            many.iter()
                .map(|n| datafusion::logical_expr::TypeSignature::Any(*n))
                .collect(),
            Volatility::Immutable,
        ),
    };
    ScalarUDF::new_from_shared_impl(Arc::new(RowFunction {
        name,
        signature,
        returns,
        eval,
    }))
}

/// A function taking from `min` to `max` arguments.
pub(crate) fn variadic(
    name: &'static str,
    min: usize,
    max: usize,
    returns: DataType,
    eval: fn(&[ScalarValue]) -> ScalarValue,
) -> ScalarUDF {
    let arities: Vec<usize> = (min..=max).collect();
    function(name, &arities, returns, eval)
}

/// The functions, for registration with the query engine.
pub(crate) fn all() -> Vec<ScalarUDF> {
    use DataType::{Binary, Date32, Int64, UInt64, Utf8};
    vec![
        function("hex", &[1], Utf8, hex),
        function("unhex", &[1], Binary, unhex),
        function("bin", &[1], Utf8, |a| conv_of(&a[0], 10, 2)),
        function("oct", &[1], Utf8, |a| conv_of(&a[0], 10, 8)),
        function("conv", &[3], Utf8, conv),
        function("bit_count", &[1], Int64, bit_count),
        function("to_base64", &[1], Utf8, to_base64),
        function("from_base64", &[1], Binary, from_base64),
        function("sha1", &[1], Utf8, sha1_hex),
        function("sha", &[1], Utf8, sha1_hex),
        function("crc32", &[1], UInt64, crc32),
        function("quote", &[1], Utf8, quote),
        function("soundex", &[1], Utf8, soundex),
        function("insert", &[4], Utf8, insert),
        function("inet_aton", &[1], UInt64, inet_aton),
        function("inet_ntoa", &[1], Utf8, inet_ntoa),
        function("last_day", &[1], Date32, last_day),
        function("makedate", &[2], Date32, makedate),
        function("week", &[1, 2], Int64, week),
    ]
}

pub(crate) const NULL: ScalarValue = ScalarValue::Null;

pub(crate) fn text(s: String) -> ScalarValue {
    ScalarValue::Utf8(Some(s))
}

/// A value's bytes as MySQL would read it as a string (numbers in their
/// decimal form); `None` for NULL.
pub(crate) fn bytes(v: &ScalarValue) -> Option<Vec<u8>> {
    if v.is_null() {
        return None;
    }
    match v {
        ScalarValue::Binary(Some(b))
        | ScalarValue::LargeBinary(Some(b))
        | ScalarValue::BinaryView(Some(b))
        | ScalarValue::FixedSizeBinary(_, Some(b)) => Some(b.clone()),
        other => Some(other.to_string().into_bytes()),
    }
}

/// A value as a 64-bit integer, as MySQL reads an argument that must be
/// one: numbers rounded, strings by their leading integer.
pub(crate) fn integer(v: &ScalarValue) -> Option<i128> {
    if v.is_null() {
        return None;
    }
    match v.cast_to(&DataType::Int64) {
        Ok(ScalarValue::Int64(Some(i))) if !v.data_type().is_floating() => Some(i128::from(i)),
        _ => match v {
            ScalarValue::UInt64(Some(u)) => Some(i128::from(*u)),
            ScalarValue::Float64(Some(f)) => Some(f.round() as i128),
            ScalarValue::Float32(Some(f)) => Some(f.round() as i128),
            ScalarValue::Decimal128(Some(d), _, s) => {
                let scale = 10i128.checked_pow(u32::try_from(*s).ok()?)?;
                let (q, r) = (d / scale, d % scale);
                Some(if r.abs() * 2 >= scale {
                    q + d.signum()
                } else {
                    q
                })
            }
            _ => Some(i128::from(crate::functions::leading_integer(&bytes(v)?))),
        },
    }
}

/// MySQL's 64-bit view of an integer: negatives in two's complement.
pub(crate) fn as_u64(i: i128) -> u64 {
    if i < 0 {
        i64::try_from(i).unwrap_or(i64::MIN) as u64
    } else {
        u64::try_from(i).unwrap_or(u64::MAX)
    }
}

fn is_number(v: &ScalarValue) -> bool {
    let t = v.data_type();
    t.is_integer() || t.is_floating() || matches!(t, DataType::Decimal128(..))
}

fn hex(a: &[ScalarValue]) -> ScalarValue {
    if is_number(&a[0]) {
        return integer(&a[0]).map_or(NULL, |i| text(format!("{:X}", as_u64(i))));
    }
    bytes(&a[0]).map_or(NULL, |b| {
        text(b.iter().map(|x| format!("{x:02X}")).collect())
    })
}

fn unhex(a: &[ScalarValue]) -> ScalarValue {
    let Some(b) = bytes(&a[0]) else { return NULL };
    let digits: Vec<u8> = if b.len() % 2 == 1 {
        std::iter::once(b'0').chain(b).collect()
    } else {
        b
    };
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    digits
        .chunks(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect::<Option<Vec<u8>>>()
        .map_or(NULL, |v| ScalarValue::Binary(Some(v)))
}

/// `CONV(n, from, to)`: `n` read in base `from` (its leading digits; a
/// leading `-` negates), written in base `|to|` (signed when `to` is
/// negative). Bases run from 2 to 36.
fn conv(a: &[ScalarValue]) -> ScalarValue {
    let (Some(from), Some(to)) = (integer(&a[1]), integer(&a[2])) else {
        return NULL;
    };
    let base_ok = |b: i128| (2..=36).contains(&b.abs());
    if !base_ok(from) || !base_ok(to) {
        return NULL;
    }
    let Some(digits) = bytes(&a[0]) else {
        return NULL;
    };
    let digits = String::from_utf8_lossy(&digits).trim().to_string();
    let (negative, body) = match digits.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, digits.as_str()),
    };
    let mut n: u64 = 0;
    for c in body.chars() {
        let Some(d) = c.to_digit(from.unsigned_abs() as u32) else {
            break;
        };
        n = n
            .saturating_mul(from.unsigned_abs() as u64)
            .saturating_add(u64::from(d));
    }
    let value: i128 = if negative {
        -i128::from(n)
    } else {
        i128::from(n)
    };
    text(radix(value, to))
}

fn conv_of(v: &ScalarValue, from: i128, to: i128) -> ScalarValue {
    match integer(v) {
        Some(i) => conv(&[
            text(i.to_string()),
            text(from.to_string()),
            text(to.to_string()),
        ]),
        None => NULL,
    }
}

/// `value` in base `|base|`: unsigned 64-bit for a positive base, signed
/// for a negative one.
fn radix(value: i128, base: i128) -> String {
    let (negative, mut n) = if base < 0 && value < 0 {
        (true, value.unsigned_abs() as u64)
    } else {
        (false, as_u64(value))
    };
    let b = base.unsigned_abs() as u64;
    let mut out = Vec::new();
    loop {
        out.push(std::char::from_digit((n % b) as u32, b as u32).unwrap_or('0'));
        n /= b;
        if n == 0 {
            break;
        }
    }
    if negative {
        out.push('-');
    }
    out.iter().rev().collect::<String>().to_ascii_uppercase()
}

fn bit_count(a: &[ScalarValue]) -> ScalarValue {
    integer(&a[0]).map_or(NULL, |i| {
        ScalarValue::Int64(Some(i64::from(as_u64(i).count_ones())))
    })
}

/// Base64 with a line break after every 76 characters, as MySQL writes it.
fn to_base64(a: &[ScalarValue]) -> ScalarValue {
    bytes(&a[0]).map_or(NULL, |b| {
        let encoded = base64::engine::general_purpose::STANDARD.encode(b);
        let lines: Vec<&str> = encoded
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        text(lines.join("\n"))
    })
}

fn from_base64(a: &[ScalarValue]) -> ScalarValue {
    let Some(b) = bytes(&a[0]) else { return NULL };
    let compact: Vec<u8> = b.into_iter().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_or(NULL, |v| ScalarValue::Binary(Some(v)))
}

fn sha1_hex(a: &[ScalarValue]) -> ScalarValue {
    bytes(&a[0]).map_or(NULL, |b| {
        let digest = sha1::Sha1::digest(&b);
        text(digest.iter().map(|x| format!("{x:02x}")).collect())
    })
}

fn crc32(a: &[ScalarValue]) -> ScalarValue {
    bytes(&a[0]).map_or(NULL, |b| {
        ScalarValue::UInt64(Some(u64::from(crc32fast::hash(&b))))
    })
}

/// A string literal that reads back as the value; NULL is the word `NULL`.
fn quote(a: &[ScalarValue]) -> ScalarValue {
    let Some(b) = bytes(&a[0]) else {
        return text("NULL".into());
    };
    let mut out = String::from("'");
    for c in String::from_utf8_lossy(&b).chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\0' => out.push_str("\\0"),
            '\u{1a}' => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
    out.push('\'');
    text(out)
}

/// MySQL's soundex, the original algorithm: the first letter, then the
/// codes of the following consonants with vowels dropped first and repeated
/// codes second, padded to four characters but never cut.
fn soundex(a: &[ScalarValue]) -> ScalarValue {
    let Some(b) = bytes(&a[0]) else { return NULL };
    let code = |c: char| match c {
        'B' | 'F' | 'P' | 'V' => Some('1'),
        'C' | 'G' | 'J' | 'K' | 'Q' | 'S' | 'X' | 'Z' => Some('2'),
        'D' | 'T' => Some('3'),
        'L' => Some('4'),
        'M' | 'N' => Some('5'),
        'R' => Some('6'),
        _ => None,
    };
    let letters: Vec<char> = String::from_utf8_lossy(&b)
        .chars()
        .filter(|c| c.is_alphabetic())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let Some((&first, rest)) = letters.split_first() else {
        return text(String::new());
    };
    let mut out = String::from(first);
    let mut last = code(first);
    for &c in rest {
        match code(c) {
            Some(d) if Some(d) != last => {
                out.push(d);
                last = Some(d);
            }
            // Vowels, H, W and Y are dropped before duplicates are.
            _ => {}
        }
    }
    while out.len() < 4 {
        out.push('0');
    }
    text(out)
}

/// `INSERT(s, pos, len, new)`: `s` with `len` characters from `pos`
/// replaced by `new`; `s` itself when `pos` is outside it.
fn insert(a: &[ScalarValue]) -> ScalarValue {
    let (Some(s), Some(pos), Some(len), Some(new)) =
        (bytes(&a[0]), integer(&a[1]), integer(&a[2]), bytes(&a[3]))
    else {
        return NULL;
    };
    let chars: Vec<char> = String::from_utf8_lossy(&s).chars().collect();
    let n = chars.len() as i128;
    if pos < 1 || pos > n {
        return text(chars.into_iter().collect());
    }
    let start = (pos - 1) as usize;
    let end = if len < 0 || pos - 1 + len > n {
        chars.len()
    } else {
        (pos - 1 + len) as usize
    };
    let mut out: String = chars[..start].iter().collect();
    out.push_str(&String::from_utf8_lossy(&new));
    out.extend(&chars[end..]);
    text(out)
}

/// `a.b.c.d` (or the short forms `a.b.c`, `a.b`, `a`, whose last part
/// fills the remaining bytes) as a number.
fn inet_aton(a: &[ScalarValue]) -> ScalarValue {
    let Some(b) = bytes(&a[0]) else { return NULL };
    let s = String::from_utf8_lossy(&b);
    let parts: Option<Vec<u64>> = s.split('.').map(|p| p.parse::<u64>().ok()).collect();
    let Some(parts) = parts.filter(|p| (1..=4).contains(&p.len())) else {
        return NULL;
    };
    let (last, leading) = parts.split_last().unwrap_or((&0, &[]));
    let spare = 4 - leading.len() as u32;
    if leading.iter().any(|p| *p > 255) || *last >= 1u64 << (8 * spare) {
        return NULL;
    }
    let high = leading
        .iter()
        .enumerate()
        .fold(0u64, |acc, (i, p)| acc | p << (8 * (3 - i as u32)));
    ScalarValue::UInt64(Some(high | last))
}

fn inet_ntoa(a: &[ScalarValue]) -> ScalarValue {
    match integer(&a[0]).and_then(|i| u32::try_from(i).ok()) {
        Some(n) => text(std::net::Ipv4Addr::from(n).to_string()),
        None => NULL,
    }
}

/// Days since 1970-01-01 of a date, a datetime or a string naming one.
pub(crate) fn date_days(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::Date32(Some(d)) => Some(i64::from(*d)),
        ScalarValue::Date64(Some(ms)) => Some(ms.div_euclid(86_400_000)),
        ScalarValue::TimestampSecond(Some(t), _) => Some(t.div_euclid(86_400)),
        ScalarValue::TimestampMillisecond(Some(t), _) => Some(t.div_euclid(86_400_000)),
        ScalarValue::TimestampMicrosecond(Some(t), _) => Some(t.div_euclid(86_400_000_000)),
        ScalarValue::TimestampNanosecond(Some(t), _) => Some(t.div_euclid(86_400_000_000_000)),
        v if v.is_null() => None,
        v => {
            let value = if v.data_type().is_integer() {
                Value::Int(i64::try_from(integer(v)?).ok()?)
            } else {
                Value::Str(String::from_utf8(bytes(v)?).ok()?)
            };
            let dt = to_datetime(&value)?;
            if dt.date.month == 0 || dt.date.day == 0 {
                return None;
            }
            Some(days_from_civil(
                i64::from(dt.date.year),
                u32::from(dt.date.month),
                u32::from(dt.date.day),
            ))
        }
    }
}

fn date(days: i64) -> ScalarValue {
    i32::try_from(days).map_or(NULL, |d| ScalarValue::Date32(Some(d)))
}

fn last_day(a: &[ScalarValue]) -> ScalarValue {
    let Some(days) = date_days(&a[0]) else {
        return NULL;
    };
    let (year, month, _) = civil_from_days(days);
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    date(days_from_civil(next_year, next_month, 1) - 1)
}

/// `MAKEDATE(year, day_of_year)`: two-digit years as MySQL reads them.
fn makedate(a: &[ScalarValue]) -> ScalarValue {
    let (Some(year), Some(day)) = (integer(&a[0]), integer(&a[1])) else {
        return NULL;
    };
    let year = match year {
        0..=69 => year + 2000,
        70..=99 => year + 1900,
        _ => year,
    };
    if day <= 0 || !(0..=9999).contains(&year) {
        return NULL;
    }
    let days = days_from_civil(year as i64, 1, 1) + (day - 1) as i64;
    if civil_from_days(days).0 > 9999 {
        return NULL;
    }
    date(days)
}

/// `WEEK(date[, mode])`, modes 0 to 7 as in MySQL's table: bit 0 makes
/// Monday the first day of the week; bit 1 numbers weeks from 1 (days
/// before week 1 belong to the previous year's last week) instead of 0;
/// bit 2 says week 1 is the first with a first day of the week in the year
/// rather than the first with four days in it (inverted for Sunday modes).
fn week(a: &[ScalarValue]) -> ScalarValue {
    let Some(days) = date_days(&a[0]) else {
        return NULL;
    };
    let mode = match a.get(1) {
        Some(m) => match integer(m) {
            Some(m) => (m & 7) as u32,
            None => return NULL,
        },
        None => 0,
    };
    ScalarValue::Int64(Some(week_number(days, mode)))
}

fn week_number(days: i64, mode: u32) -> i64 {
    let monday_first = mode & 1 != 0;
    let whole_years = mode & 2 != 0;
    // Week 1 starts on the year's first first-day-of-the-week (rather than
    // being the first week with four days in the year): bit 2, flipped for
    // Sunday modes.
    let first_day_rule = (mode & 4 != 0) == monday_first;
    let (year, month, day) = civil_from_days(days);
    let days_in = |y: i64| days_from_civil(y + 1, 1, 1) - days_from_civil(y, 1, 1);
    // Day of the week, 0 being the week's first day.
    let weekday_of = |d: i64| {
        let monday_based = (d + 3).rem_euclid(7); // 1970-01-01 was a Thursday
        if monday_first {
            monday_based
        } else {
            (monday_based + 1) % 7
        }
    };
    let mut year = year;
    let mut first = days_from_civil(year, 1, 1);
    let mut weekday = weekday_of(first);
    let starts_late = |w: i64| if first_day_rule { w != 0 } else { w >= 4 };
    let mut whole = whole_years;
    if month == 1 && i64::from(day) <= 7 - weekday {
        if !whole && starts_late(weekday) {
            return 0;
        }
        whole = true;
        year -= 1;
        first -= days_in(year);
        weekday = weekday_of(first);
    }
    let elapsed = if starts_late(weekday) {
        days - (first + (7 - weekday))
    } else {
        days - (first - weekday)
    };
    if whole && elapsed >= 52 * 7 {
        let next_weekday = (weekday + days_in(year)) % 7;
        if !starts_late(next_weekday) {
            return 1;
        }
    }
    elapsed / 7 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> ScalarValue {
        text(v.into())
    }

    fn i(v: i64) -> ScalarValue {
        ScalarValue::Int64(Some(v))
    }

    #[test]
    fn numbers_in_other_bases() {
        assert_eq!(hex(&[i(255)]), s("FF"));
        assert_eq!(hex(&[i(-1)]), s("FFFFFFFFFFFFFFFF"));
        assert_eq!(hex(&[s("abc")]), s("616263"));
        assert_eq!(
            unhex(&[s("616263")]),
            ScalarValue::Binary(Some(b"abc".to_vec()))
        );
        assert_eq!(unhex(&[s("F")]), ScalarValue::Binary(Some(vec![15])));
        assert!(unhex(&[s("zz")]).is_null());
        assert_eq!(conv_of(&i(12), 10, 2), s("1100"));
        assert_eq!(conv_of(&i(8), 10, 8), s("10"));
        assert_eq!(conv(&[s("a"), i(16), i(2)]), s("1010"));
        assert_eq!(conv(&[s("6E"), i(18), i(8)]), s("172"));
        assert_eq!(conv(&[s("-17"), i(10), i(-18)]), s("-H"));
        assert_eq!(conv(&[s("-1"), i(10), i(16)]), s("FFFFFFFFFFFFFFFF"));
        assert!(conv(&[s("1"), i(1), i(10)]).is_null());
        assert_eq!(bit_count(&[i(29)]), i(4));
        assert_eq!(bit_count(&[i(-1)]), i(64));
    }

    #[test]
    fn strings_encoded_hashed_and_quoted() {
        assert_eq!(to_base64(&[s("abc")]), s("YWJj"));
        let long = "x".repeat(60);
        let ScalarValue::Utf8(Some(wrapped)) = to_base64(&[s(&long)]) else {
            panic!("text")
        };
        assert_eq!(wrapped.lines().map(str::len).collect::<Vec<_>>(), [76, 4]);
        assert_eq!(
            from_base64(&[s("YW\nJj")]),
            ScalarValue::Binary(Some(b"abc".to_vec()))
        );
        assert!(from_base64(&[s("!!")]).is_null());
        assert_eq!(
            sha1_hex(&[s("abc")]),
            s("a9993e364706816aba3e25717850c26c9cd0d89d")
        );
        assert_eq!(
            crc32(&[s("MySQL")]),
            ScalarValue::UInt64(Some(3_259_397_556))
        );
        assert_eq!(quote(&[s("Don't!")]), s("'Don\\'t!'"));
        assert_eq!(quote(&[ScalarValue::Null]), s("NULL"));
        assert_eq!(soundex(&[s("Hello")]), s("H400"));
        assert_eq!(soundex(&[s("Quadratically")]), s("Q36324"));
        assert_eq!(soundex(&[s("Ashcraft")]), s("A2613"));
        assert_eq!(soundex(&[s("Tymczak")]), s("T520"));
        assert_eq!(
            insert(&[s("Quadratic"), i(3), i(4), s("What")]),
            s("QuWhattic")
        );
        assert_eq!(
            insert(&[s("Quadratic"), i(-1), i(4), s("What")]),
            s("Quadratic")
        );
        assert_eq!(
            insert(&[s("Quadratic"), i(3), i(100), s("What")]),
            s("QuWhat")
        );
        assert_eq!(
            inet_aton(&[s("10.0.5.9")]),
            ScalarValue::UInt64(Some(167_773_449))
        );
        assert_eq!(
            inet_aton(&[s("127.1")]),
            ScalarValue::UInt64(Some(2_130_706_433))
        );
        assert!(inet_aton(&[s("1.2.3.256")]).is_null());
        assert_eq!(inet_ntoa(&[i(167_773_449)]), s("10.0.5.9"));
    }

    #[test]
    fn calendar_functions() {
        let day = |y, m, d| ScalarValue::Date32(Some(days_from_civil(y, m, d) as i32));
        assert_eq!(last_day(&[s("2024-02-10")]), day(2024, 2, 29));
        assert_eq!(last_day(&[s("2023-12-31 10:00:00")]), day(2023, 12, 31));
        assert!(last_day(&[s("2023-02-30")]).is_null());
        assert_eq!(makedate(&[i(2011), i(32)]), day(2011, 2, 1));
        assert_eq!(makedate(&[i(11), i(365)]), day(2011, 12, 31));
        assert!(makedate(&[i(2011), i(0)]).is_null());
        // MySQL's documented examples.
        assert_eq!(week(&[s("2008-02-20")]), i(7));
        assert_eq!(week(&[s("2008-02-20"), i(0)]), i(7));
        assert_eq!(week(&[s("2008-02-20"), i(1)]), i(8));
        assert_eq!(week(&[s("2008-12-31"), i(1)]), i(53));
        assert_eq!(week(&[s("2000-01-01"), i(0)]), i(0));
        assert_eq!(week(&[s("2000-01-01"), i(2)]), i(52));
        // ISO weeks (mode 3): the last days of 2024 are week 1 of 2025.
        assert_eq!(week(&[s("2024-12-30"), i(3)]), i(1));
        assert_eq!(week(&[s("2021-01-03"), i(3)]), i(53));
        assert_eq!(week(&[s("2021-01-04"), i(3)]), i(1));
    }
}
