//! MySQL's TIME values and the functions that make or read them:
//! `SEC_TO_TIME`, `TIME_TO_SEC`, `MAKETIME`, `TIME`, `TIMEDIFF`,
//! `ADDTIME`/`SUBTIME`, the month periods of `PERIOD_ADD`/`PERIOD_DIFF`,
//! and `STR_TO_DATE`, which reads a date or a datetime by a format.
//!
//! A TIME is a signed span of at most 838:59:59.999999; the engines carry
//! it as its text, `[-]HH:MM:SS[.ffffff]`, as they do TIME columns, with as
//! many fractional digits as its arguments had. An argument the function
//! cannot read gives NULL, as in MySQL.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::scalar::ScalarValue;

use crate::functions::udf;
use crate::functions::udf::{NULL, bytes, function, integer, text};
use crate::rules::time::{civil_from_days, days_from_civil, valid_date};
use crate::types::to_datetime;
use crate::value::Value;

const SECOND: i64 = 1_000_000;
const DAY: i64 = 86_400 * SECOND;
/// MySQL's largest TIME, 838:59:59.999999.
const MAX_TIME: i64 = (838 * 3600 + 59 * 60 + 59) * SECOND + 999_999;

/// A span of time in microseconds, and the fractional digits it shows.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Span {
    micros: i64,
    fsp: u8,
}

/// The functions, for registration with the query engine.
pub(crate) fn all() -> Vec<ScalarUDF> {
    use DataType::{Date32, Int64, Utf8};
    vec![
        function("sec_to_time", &[1], Utf8, sec_to_time),
        function("time_to_sec", &[1], Int64, time_to_sec),
        function("maketime", &[3], Utf8, maketime),
        function("time", &[1], Utf8, time),
        function("timediff", &[2], Utf8, timediff),
        function("addtime", &[2], Utf8, |a| add_time(a, 1)),
        function("subtime", &[2], Utf8, |a| add_time(a, -1)),
        function("period_add", &[2], Int64, period_add),
        function("period_diff", &[2], Int64, period_diff),
        function("last_day", &[1], Date32, last_day),
        function("makedate", &[2], Date32, makedate),
        function("week", &[1, 2], Int64, week),
        ScalarUDF::from(StrToDate::new()),
    ]
}

/// A span as MySQL shows a TIME (clamped to its range).
fn time_text(span: Span) -> String {
    let micros = span.micros.clamp(-MAX_TIME, MAX_TIME);
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    let secs = abs / SECOND as u64;
    let mut out = format!(
        "{sign}{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    push_fraction(&mut out, abs % SECOND as u64, span.fsp);
    out
}

fn push_fraction(out: &mut String, micros: u64, fsp: u8) {
    if fsp > 0 {
        let digits = format!("{micros:06}");
        out.push('.');
        out.push_str(&digits[..usize::from(fsp.min(6))]);
    }
}

/// A moment (microseconds since 1970) as MySQL shows a DATETIME.
fn datetime_text(span: Span) -> String {
    let days = span.micros.div_euclid(DAY);
    let rest = span.micros.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    let secs = rest / SECOND;
    let mut out = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    push_fraction(&mut out, (rest % SECOND) as u64, span.fsp);
    out
}

/// Reads `[-][D ]H[:M[:S]][.f]` or `[-][HH]HHMMSS[.f]`.
fn parse_time(s: &str) -> Option<Span> {
    let s = s.trim();
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, s),
    };
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = |t: &str| -> Option<i64> {
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    let (days, clock) = match whole.split_once(' ') {
        Some((d, rest)) => (number(d)?, rest.trim()),
        None => (0, whole),
    };
    let (h, m, sec) = if clock.contains(':') {
        let mut parts = clock.split(':');
        let h = number(parts.next()?)?;
        let m = number(parts.next()?)?;
        let sec = match parts.next() {
            Some(p) => number(p)?,
            None => 0,
        };
        if parts.next().is_some() {
            return None;
        }
        (h, m, sec)
    } else {
        let n = number(clock)?;
        (n / 10_000, n / 100 % 100, n % 100)
    };
    if m > 59 || sec > 59 {
        return None;
    }
    let frac_micros: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").parse().ok()?
    };
    let micros = ((days * 24 + h) * 3600 + m * 60 + sec)
        .checked_mul(SECOND)?
        .checked_add(frac_micros)?;
    Some(Span {
        micros: if negative { -micros } else { micros },
        fsp: frac.len() as u8,
    })
}

/// Whether a string names a date (it has a `-` after its first digit).
fn names_date(s: &str) -> bool {
    let s = s.trim();
    s.len() > 1 && s[1..].contains('-')
}

/// A value as a moment, if it is a date or a datetime (or names one).
fn moment(v: &ScalarValue) -> Option<Span> {
    match v {
        ScalarValue::TimestampMicrosecond(Some(t), _) => Some(Span {
            micros: *t,
            fsp: if t % SECOND == 0 { 0 } else { 6 },
        }),
        ScalarValue::Date32(Some(d)) => Some(Span {
            micros: i64::from(*d) * DAY,
            fsp: 0,
        }),
        _ => {
            let s = String::from_utf8(bytes(v)?).ok()?;
            if !names_date(&s) {
                return None;
            }
            let dt = to_datetime(&Value::Str(s.clone()))?;
            let days = days_from_civil(
                i64::from(dt.date.year),
                u32::from(dt.date.month),
                u32::from(dt.date.day),
            );
            let fsp = s
                .trim()
                .rsplit_once('.')
                .map_or(0, |(_, f)| f.len().min(6) as u8);
            Some(Span {
                micros: days * DAY
                    + (i64::from(dt.hour) * 3600
                        + i64::from(dt.minute) * 60
                        + i64::from(dt.second))
                        * SECOND
                    + i64::from(dt.micros),
                fsp,
            })
        }
    }
}

/// A value as a TIME: a time of day of a datetime, or a span read from
/// its text (numbers as `HHMMSS`).
fn span(v: &ScalarValue) -> Option<Span> {
    if v.is_null() {
        return None;
    }
    if let Some(m) = moment(v) {
        return Some(Span {
            micros: m.micros.rem_euclid(DAY),
            fsp: m.fsp,
        });
    }
    let s = match v {
        ScalarValue::Float64(Some(f)) => format!("{f}"),
        _ => String::from_utf8(bytes(v)?).ok()?,
    };
    parse_time(&s)
}

/// A number of seconds (with its fraction) as microseconds, and the
/// fractional digits it had.
fn seconds(v: &ScalarValue) -> Option<Span> {
    match v {
        ScalarValue::Decimal128(Some(d), _, s) => {
            let s = u32::try_from(*s).ok()?;
            let micros = if s <= 6 {
                d.checked_mul(10i128.pow(6 - s))?
            } else {
                d / 10i128.pow(s - 6)
            };
            Some(Span {
                micros: i64::try_from(micros).ok()?,
                fsp: s.min(6) as u8,
            })
        }
        ScalarValue::Float64(Some(f)) => Some(Span {
            micros: (f * SECOND as f64).round() as i64,
            fsp: 6,
        }),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
            if s.contains('.') =>
        {
            let f: f64 = s.trim().parse().ok()?;
            seconds(&ScalarValue::Float64(Some(f)))
        }
        v => Some(Span {
            micros: i64::try_from(integer(v)?).ok()?.checked_mul(SECOND)?,
            fsp: 0,
        }),
    }
}

fn sec_to_time(a: &[ScalarValue]) -> ScalarValue {
    seconds(&a[0]).map_or(NULL, |s| text(time_text(s)))
}

fn time_to_sec(a: &[ScalarValue]) -> ScalarValue {
    span(&a[0]).map_or(NULL, |s| ScalarValue::Int64(Some(s.micros / SECOND)))
}

fn time(a: &[ScalarValue]) -> ScalarValue {
    span(&a[0]).map_or(NULL, |s| text(time_text(s)))
}

/// `MAKETIME(hour, minute, second)`: minutes and seconds below 60.
fn maketime(a: &[ScalarValue]) -> ScalarValue {
    let (Some(h), Some(m), Some(s)) = (integer(&a[0]), integer(&a[1]), seconds(&a[2])) else {
        return NULL;
    };
    if !(0..60).contains(&m) || !(0..60 * SECOND).contains(&s.micros) {
        return NULL;
    }
    let Ok(h) = i64::try_from(h) else {
        return NULL;
    };
    let magnitude = (h.abs().min(839) * 3600 + m as i64 * 60) * SECOND + s.micros;
    text(time_text(Span {
        micros: if h < 0 { -magnitude } else { magnitude },
        fsp: s.fsp,
    }))
}

/// `TIMEDIFF(a, b)`: both datetimes or both times, else NULL.
fn timediff(a: &[ScalarValue]) -> ScalarValue {
    let diff = match (moment(&a[0]), moment(&a[1])) {
        (Some(x), Some(y)) => (x, y),
        (None, None) => match (span(&a[0]), span(&a[1])) {
            (Some(x), Some(y)) => (x, y),
            _ => return NULL,
        },
        _ => return NULL,
    };
    text(time_text(Span {
        micros: diff.0.micros - diff.1.micros,
        fsp: diff.0.fsp.max(diff.1.fsp),
    }))
}

/// `ADDTIME(a, t)` (`sign` 1) and `SUBTIME(a, t)` (`sign` -1): a datetime
/// stays one, a time stays a time.
fn add_time(a: &[ScalarValue], sign: i64) -> ScalarValue {
    let Some(t) = span(&a[1]).filter(|_| moment(&a[1]).is_none()) else {
        return NULL;
    };
    if let Some(m) = moment(&a[0]) {
        let micros = m.micros + sign * t.micros;
        let (year, ..) = civil_from_days(micros.div_euclid(DAY));
        if !(0..=9999).contains(&year) {
            return NULL;
        }
        return text(datetime_text(Span {
            micros,
            fsp: m.fsp.max(t.fsp),
        }));
    }
    span(&a[0]).map_or(NULL, |x| {
        text(time_text(Span {
            micros: x.micros + sign * t.micros,
            fsp: x.fsp.max(t.fsp),
        }))
    })
}

/// A period (`YYMM` or `YYYYMM`) as months since year 0.
fn period_months(p: i128) -> Option<i128> {
    if p < 0 {
        return None;
    }
    if p == 0 {
        return Some(0);
    }
    let year = match p / 100 {
        y @ 0..=69 => y + 2000,
        y @ 70..=99 => y + 1900,
        y => y,
    };
    Some(year * 12 + p % 100 - 1)
}

fn period_add(a: &[ScalarValue]) -> ScalarValue {
    let (Some(p), Some(n)) = (integer(&a[0]), integer(&a[1])) else {
        return NULL;
    };
    let Some(months) = period_months(p) else {
        return NULL;
    };
    if p == 0 {
        return ScalarValue::Int64(Some(0));
    }
    let m = months + n;
    if m < 0 {
        return NULL;
    }
    i64::try_from(m / 12 * 100 + m % 12 + 1).map_or(NULL, |v| ScalarValue::Int64(Some(v)))
}

fn period_diff(a: &[ScalarValue]) -> ScalarValue {
    let (Some(p), Some(q)) = (
        integer(&a[0]).and_then(period_months),
        integer(&a[1]).and_then(period_months),
    ) else {
        return NULL;
    };
    i64::try_from(p - q).map_or(NULL, |v| ScalarValue::Int64(Some(v)))
}

/// `STR_TO_DATE(text, format)`: a DATETIME if the format reads a date and
/// a time of day, a DATE if only a date, a TIME if only a time (decided
/// from the format when it is a constant; a format computed per row gives
/// a DATETIME).
#[derive(Debug, PartialEq, Eq, Hash)]
struct StrToDate {
    signature: Signature,
}

impl StrToDate {
    fn new() -> Self {
        StrToDate {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

const DATETIME: DataType = DataType::Timestamp(TimeUnit::Microsecond, None);

/// Whether a format reads a date, and whether it reads a time of day.
fn reads(format: &str) -> (bool, bool) {
    let (mut date, mut time) = (false, false);
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c == '%'
            && let Some(spec) = chars.next()
        {
            date |= "YymcdeDjMbWa".contains(spec);
            time |= "HhIklisSfpTr".contains(spec);
        }
    }
    (date, time)
}

/// The type `STR_TO_DATE` returns for a format.
fn str_to_date_type(format: Option<&str>) -> DataType {
    match format.map(reads) {
        Some((true, false)) => DataType::Date32,
        Some((false, true)) => DataType::Utf8,
        _ => DATETIME,
    }
}

impl ScalarUDFImpl for StrToDate {
    fn name(&self) -> &str {
        "str_to_date"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DATETIME)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        let format = match args.scalar_arguments.get(1) {
            Some(Some(f)) => bytes(f).and_then(|b| String::from_utf8(b).ok()),
            _ => None,
        };
        let returns = str_to_date_type(format.as_deref());
        Ok(Arc::new(Field::new(self.name(), returns, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let returns = args.return_field.data_type().clone();
        let eval = |text: &ScalarValue, format: &ScalarValue| -> ScalarValue {
            let parsed = (|| {
                let t = String::from_utf8(bytes(text)?).ok()?;
                let f = String::from_utf8(bytes(format)?).ok()?;
                str_to_date(&t, &f)
            })();
            match &returns {
                DataType::Utf8 => ScalarValue::Utf8(
                    parsed.map(|(_, time, fsp)| time_text(Span { micros: time, fsp })),
                ),
                DataType::Date32 => ScalarValue::Date32(
                    parsed
                        .and_then(|(days, ..)| days)
                        .and_then(|d| i32::try_from(d).ok()),
                ),
                _ => ScalarValue::TimestampMicrosecond(
                    parsed.and_then(|(days, time, _)| Some(days? * DAY + time)),
                    None,
                ),
            }
        };
        udf::per_row(&args, &returns, |row| Ok(eval(&row[0], &row[1])))
    }
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Reads `text` by a MySQL date format: the day it names (days since
/// 1970; `None` for a zero month or day, no date in strict mode), the time
/// of day in microseconds and the fractional digits read. A part the
/// format does not read is zero.
fn str_to_date(text: &str, format: &str) -> Option<(Option<i64>, i64, u8)> {
    let mut input = text.trim_start().as_bytes();
    let (mut year, mut month, mut day) = (0i64, 0u32, 0u32);
    let (mut hour, mut minute, mut second, mut micros) = (0i64, 0i64, 0i64, 0i64);
    let mut pm: Option<bool> = None;
    let mut twelve_hour = false;
    let mut year_day: Option<i64> = None;
    let mut fsp = 0u8;
    let mut spec = format.chars();
    while let Some(c) = spec.next() {
        if c != '%' {
            if c.is_whitespace() {
                input = input.trim_ascii_start();
                continue;
            }
            let mut buf = [0u8; 4];
            let want = c.encode_utf8(&mut buf).as_bytes();
            input = input.strip_prefix(want)?;
            continue;
        }
        // As MySQL does, spaces before a field are skipped.
        input = input.trim_ascii_start();
        match spec.next()? {
            'Y' => year = digits(&mut input, 4)?,
            'y' => {
                year = digits(&mut input, 2)?;
                year += if year < 70 { 2000 } else { 1900 };
            }
            'm' | 'c' => month = u32::try_from(digits(&mut input, 2)?).ok()?,
            'd' | 'e' => day = u32::try_from(digits(&mut input, 2)?).ok()?,
            'D' => {
                day = u32::try_from(digits(&mut input, 2)?).ok()?;
                let suffix = input.iter().take_while(|b| b.is_ascii_alphabetic()).count();
                input = &input[suffix..];
            }
            'j' => year_day = Some(digits(&mut input, 3)?),
            'H' | 'k' => hour = digits(&mut input, 2)?,
            'h' | 'I' | 'l' => {
                hour = digits(&mut input, 2)?;
                twelve_hour = true;
            }
            'i' => minute = digits(&mut input, 2)?,
            's' | 'S' => second = digits(&mut input, 2)?,
            'f' => {
                let n = input
                    .iter()
                    .take(6)
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                let v = digits(&mut input, 6)?;
                micros = v * 10i64.pow(6 - n as u32);
                fsp = n as u8;
            }
            'p' => {
                let word: Vec<u8> = input.iter().take(2).map(u8::to_ascii_uppercase).collect();
                pm = match word.as_slice() {
                    b"AM" => Some(false),
                    b"PM" => Some(true),
                    _ => return None,
                };
                input = &input[2..];
            }
            'M' | 'b' => month = name(&mut input, &MONTHS)? as u32 + 1,
            'W' | 'a' => {
                name(&mut input, &WEEKDAYS)?;
            }
            'T' => (hour, minute, second) = clock(&mut input)?,
            'r' => {
                (hour, minute, second) = clock(&mut input)?;
                input = input.trim_ascii_start();
                let word: Vec<u8> = input.iter().take(2).map(u8::to_ascii_uppercase).collect();
                pm = Some(word == b"PM");
                input = input.get(2..)?;
                twelve_hour = true;
            }
            '%' => input = input.strip_prefix(b"%")?,
            _ => return None,
        }
    }
    if twelve_hour || pm.is_some() {
        if !(1..=12).contains(&hour) {
            return None;
        }
        hour %= 12;
        if pm == Some(true) {
            hour += 12;
        }
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = day_read(year, month, day, year_day)?;
    let time = (hour * 3600 + minute * 60 + second) * SECOND + micros;
    Some((days, time, fsp))
}

/// Up to `max` digits, at least one, read off the front of `input`.
fn digits(input: &mut &[u8], max: usize) -> Option<i64> {
    let n = input
        .iter()
        .take(max)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if n == 0 {
        return None;
    }
    let v = std::str::from_utf8(&input[..n]).ok()?.parse().ok()?;
    *input = &input[n..];
    Some(v)
}
/// `HH:MM:SS`, read off the front of `input`.
fn clock(input: &mut &[u8]) -> Option<(i64, i64, i64)> {
    let h = digits(input, 2)?;
    *input = input.strip_prefix(b":")?;
    let m = digits(input, 2)?;
    *input = input.strip_prefix(b":")?;
    Some((h, m, digits(input, 2)?))
}
/// A name from `names` (or its first three letters), as a 0-based index,
/// read off the front of `input`.
fn name(input: &mut &[u8], names: &[&str]) -> Option<usize> {
    let lower: Vec<u8> = input
        .iter()
        .take_while(|b| b.is_ascii_alphabetic())
        .map(u8::to_ascii_lowercase)
        .collect();
    let i = names.iter().position(|n| {
        lower == n.as_bytes() || (lower.len() == 3 && n.as_bytes().starts_with(&lower))
    })?;
    *input = &input[lower.len()..];
    Some(i)
}

/// The day `STR_TO_DATE` read (days since 1970): by day of the year when
/// the format gave one and no month or day, else by year, month and day;
/// `Some(None)` for a zero month or day; `None` for no date at all.
fn day_read(year: i64, month: u32, day: u32, year_day: Option<i64>) -> Option<Option<i64>> {
    match year_day {
        Some(n) if month == 0 && day == 0 => {
            if !(1..=366).contains(&n) {
                return None;
            }
            let d = days_from_civil(year, 1, 1) + n - 1;
            Some((civil_from_days(d).0 == year).then_some(d))
        }
        _ => {
            let (y, m, d) = (
                u16::try_from(year).ok()?,
                u8::try_from(month).ok()?,
                u8::try_from(day).ok()?,
            );
            if m == 0 || d == 0 {
                Some(None)
            } else if valid_date(y, m, d) {
                Some(Some(days_from_civil(year, month, day)))
            } else {
                None
            }
        }
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
        text(v.to_string())
    }

    fn i(v: i64) -> ScalarValue {
        ScalarValue::Int64(Some(v))
    }

    #[test]
    fn time_values_as_mysql_shows_them() {
        assert_eq!(sec_to_time(&[i(2378)]), s("00:39:38"));
        assert_eq!(sec_to_time(&[i(-3661)]), s("-01:01:01"));
        assert_eq!(sec_to_time(&[i(10_000_000)]), s("838:59:59"));
        assert_eq!(
            sec_to_time(&[ScalarValue::Decimal128(Some(23785), 5, 1)]),
            s("00:39:38.5")
        );
        assert_eq!(time_to_sec(&[s("22:23:00")]), i(80580));
        assert_eq!(time_to_sec(&[s("00:39:38")]), i(2378));
        assert_eq!(time_to_sec(&[s("-01:00:00")]), i(-3600));
        assert_eq!(time_to_sec(&[s("2024-01-01 01:00:05")]), i(3605));
        assert_eq!(time_to_sec(&[i(1112)]), i(672));
        assert!(time_to_sec(&[s("12:61:00")]).is_null());
        assert_eq!(maketime(&[i(12), i(15), i(30)]), s("12:15:30"));
        assert!(maketime(&[i(12), i(60), i(30)]).is_null());
        assert_eq!(
            time(&[s("2003-12-31 01:02:03.000123")]),
            s("01:02:03.000123")
        );
        assert_eq!(time(&[s("1 02:00:00")]), s("26:00:00"));
    }

    #[test]
    fn differences_and_sums_of_times() {
        // MySQL's documented examples.
        assert_eq!(
            timediff(&[s("2000-01-01 00:00:00"), s("2000-01-01 00:00:00.000001")]),
            s("-00:00:00.000001")
        );
        assert_eq!(
            timediff(&[
                s("2008-12-31 23:59:59.000001"),
                s("2008-12-30 01:01:01.000002")
            ]),
            s("46:58:57.999999")
        );
        assert!(timediff(&[s("2008-12-31 23:59:59"), s("01:01:01")]).is_null());
        assert_eq!(timediff(&[s("10:00:00"), s("12:30:00")]), s("-02:30:00"));
        assert_eq!(
            add_time(&[s("2007-12-31 23:59:59.999999"), s("1 1:1:1.000002")], 1),
            s("2008-01-02 01:01:01.000001")
        );
        assert_eq!(
            add_time(&[s("01:00:00.999999"), s("02:00:00.999998")], 1),
            s("03:00:01.999997")
        );
        assert_eq!(
            add_time(&[s("2007-12-31 23:59:59.999999"), s("1 1:1:1.000002")], -1),
            s("2007-12-30 22:58:58.999997")
        );
        assert_eq!(period_add(&[i(200801), i(2)]), i(200803));
        assert_eq!(period_add(&[i(801), i(13)]), i(200902));
        assert_eq!(period_diff(&[i(200802), i(200703)]), i(11));
        assert_eq!(period_diff(&[i(8002), i(200703)]), i(-325));
    }

    #[test]
    fn dates_read_by_a_format() {
        let at = |y, m, d, h: i64, mi: i64, sec: i64| {
            Some((
                Some(days_from_civil(y, m, d)),
                (h * 3600 + mi * 60 + sec) * SECOND,
                0,
            ))
        };
        assert_eq!(
            str_to_date("01,5,2013", "%d,%m,%Y"),
            at(2013, 5, 1, 0, 0, 0)
        );
        assert_eq!(
            str_to_date("May 1, 2013", "%M %d,%Y"),
            at(2013, 5, 1, 0, 0, 0)
        );
        assert_eq!(
            str_to_date("a09:30:17", "a%h:%i:%s"),
            Some((None, (9 * 3600 + 30 * 60 + 17) * SECOND, 0)),
            "a time of day and no date"
        );
        assert_eq!(
            str_to_date("2024-03-05 9:07:02 PM", "%Y-%m-%d %h:%i:%s %p"),
            at(2024, 3, 5, 21, 7, 2)
        );
        assert_eq!(
            str_to_date("Tuesday 5th March 24", "%W %D %M %y"),
            at(2024, 3, 5, 0, 0, 0)
        );
        assert_eq!(str_to_date("2024 060", "%Y %j"), at(2024, 2, 29, 0, 0, 0));
        assert_eq!(str_to_date("2013-02-30", "%Y-%m-%d"), None);
        assert_eq!(str_to_date("2013/02/03", "%Y-%m-%d"), None);
        assert_eq!(str_to_date("2013", "%Y"), Some((None, 0, 0)));
        assert_eq!(
            str_to_date("12:00:00.25", "%T.%f"),
            Some((None, 12 * 3600 * SECOND + 250_000, 2))
        );
        assert_eq!(str_to_date_type(Some("%Y %T")), DATETIME);
        assert_eq!(str_to_date_type(Some("%Y-%m-%d %%H")), DataType::Date32);
        assert_eq!(str_to_date_type(Some("%H:%i")), DataType::Utf8);
        assert_eq!(str_to_date_type(None), DATETIME);
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
