//! MySQL column types: what `CREATE TABLE` declares ([`ColumnType`]), how a
//! value is converted to a column's type when it is written (strict mode:
//! out of range → 1264, too long → 1406, not a number → 1366), how it is
//! stored (a storage [`Datum`]), and how it is represented in Arrow for the
//! query engines and sent back to clients.

use datafusion::arrow::datatypes::{DataType as ArrowType, TimeUnit};
use datafusion::sql::sqlparser::ast::{
    CharacterLength, DataType as SqlType, ExactNumberInfo, TimezoneInfo,
};
use duet_storage::codec::Datum;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rules::json;
use crate::rules::number::{numeric_prefix, round_decimal};
use crate::rules::time::valid_date;
use crate::value::{Date, DateTime, FieldType, Time, Value, format_double};

/// The family of a declared column type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TypeKind {
    TinyInt,
    SmallInt,
    MediumInt,
    Int,
    BigInt,
    Decimal,
    Float,
    Double,
    Char,
    VarChar,
    TinyText,
    Text,
    MediumText,
    LongText,
    Binary,
    VarBinary,
    TinyBlob,
    Blob,
    MediumBlob,
    LongBlob,
    Date,
    DateTime,
    Timestamp,
    Time,
    /// A JSON document, kept as MySQL's canonical text of it.
    Json,
}

/// A declared column type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnType {
    pub kind: TypeKind,
    #[serde(default)]
    pub unsigned: bool,
    /// Characters (or bytes, for binary strings) of CHAR/VARCHAR/BINARY/
    /// VARBINARY; display width of integers (0 when not given).
    #[serde(default)]
    pub length: u32,
    /// DECIMAL precision and scale; fractional-second digits of temporals.
    #[serde(default)]
    pub precision: u8,
    #[serde(default)]
    pub scale: u8,
}

impl ColumnType {
    pub(crate) fn of(kind: TypeKind) -> Self {
        ColumnType {
            kind,
            unsigned: false,
            length: 0,
            precision: 0,
            scale: 0,
        }
    }

    fn int(kind: TypeKind, width: Option<u64>, unsigned: bool) -> Self {
        ColumnType {
            unsigned,
            length: width.unwrap_or(0).min(255) as u32,
            ..ColumnType::of(kind)
        }
    }

    /// The type a `CREATE TABLE` column declares.
    pub fn from_sql(t: &SqlType) -> Result<Self> {
        use TypeKind as K;
        let chars = |l: &Option<CharacterLength>, default: u32| -> Result<u32> {
            match l {
                None => Ok(default),
                Some(CharacterLength::IntegerLength { length, .. }) => u32::try_from(*length)
                    .ok()
                    .filter(|l| *l <= 65_535)
                    .ok_or_else(|| Error::TooBigLength(String::new(), 65_535)),
                Some(CharacterLength::Max) => Ok(65_535),
            }
        };
        let sized = |kind, length: u32| ColumnType {
            length,
            ..ColumnType::of(kind)
        };
        Ok(match t {
            SqlType::TinyInt(w) => Self::int(K::TinyInt, *w, false),
            SqlType::TinyIntUnsigned(w) => Self::int(K::TinyInt, *w, true),
            SqlType::Bool | SqlType::Boolean => Self::int(K::TinyInt, Some(1), false),
            SqlType::SmallInt(w) => Self::int(K::SmallInt, *w, false),
            SqlType::SmallIntUnsigned(w) => Self::int(K::SmallInt, *w, true),
            SqlType::MediumInt(w) => Self::int(K::MediumInt, *w, false),
            SqlType::MediumIntUnsigned(w) => Self::int(K::MediumInt, *w, true),
            SqlType::Int(w) | SqlType::Integer(w) => Self::int(K::Int, *w, false),
            SqlType::IntUnsigned(w) | SqlType::IntegerUnsigned(w) => Self::int(K::Int, *w, true),
            SqlType::BigInt(w) => Self::int(K::BigInt, *w, false),
            SqlType::BigIntUnsigned(w) => Self::int(K::BigInt, *w, true),
            SqlType::Decimal(info)
            | SqlType::Numeric(info)
            | SqlType::Dec(info)
            | SqlType::DecimalUnsigned(info)
            | SqlType::DecUnsigned(info) => {
                let (precision, scale) = match info {
                    ExactNumberInfo::None => (10, 0),
                    ExactNumberInfo::Precision(p) => (*p, 0),
                    ExactNumberInfo::PrecisionAndScale(p, s) => {
                        (*p, u64::try_from(*s).unwrap_or(u64::MAX))
                    }
                };
                if precision == 0 || precision > 65 {
                    return Err(Error::TooBigPrecision(precision, 65));
                }
                if scale > 30 || scale > precision {
                    return Err(Error::TooBigScale(scale, 30));
                }
                ColumnType {
                    precision: precision as u8,
                    scale: scale as u8,
                    unsigned: matches!(t, SqlType::DecimalUnsigned(_) | SqlType::DecUnsigned(_)),
                    ..ColumnType::of(K::Decimal)
                }
            }
            SqlType::Float(info) | SqlType::FloatUnsigned(info) => match info {
                ExactNumberInfo::Precision(p) if *p > 24 => ColumnType::of(K::Double),
                _ => ColumnType::of(K::Float),
            },
            SqlType::Real | SqlType::Float4 => ColumnType::of(K::Float),
            SqlType::Double(_)
            | SqlType::DoubleUnsigned(_)
            | SqlType::DoublePrecision
            | SqlType::DoublePrecisionUnsigned
            | SqlType::Float8
            | SqlType::Float64 => ColumnType::of(K::Double),
            SqlType::Char(l) | SqlType::Character(l) => {
                let n = chars(l, 1)?;
                if n > 255 {
                    return Err(Error::TooBigLength(String::new(), 255));
                }
                sized(K::Char, n)
            }
            SqlType::Varchar(l)
            | SqlType::CharacterVarying(l)
            | SqlType::CharVarying(l)
            | SqlType::Nvarchar(l) => {
                if l.is_none() {
                    return Err(Error::Parse {
                        message: "VARCHAR needs a length".into(),
                    });
                }
                sized(K::VarChar, chars(l, 0)?)
            }
            SqlType::TinyText => ColumnType::of(K::TinyText),
            SqlType::Text => ColumnType::of(K::Text),
            SqlType::MediumText => ColumnType::of(K::MediumText),
            SqlType::LongText => ColumnType::of(K::LongText),
            SqlType::Binary(l) => sized(K::Binary, l.unwrap_or(1).min(255) as u32),
            SqlType::Varbinary(l) => sized(
                K::VarBinary,
                match l {
                    Some(datafusion::sql::sqlparser::ast::BinaryLength::IntegerLength {
                        length,
                    }) => (*length).min(65_535) as u32,
                    _ => 65_535,
                },
            ),
            SqlType::TinyBlob => ColumnType::of(K::TinyBlob),
            SqlType::Blob(_) => ColumnType::of(K::Blob),
            SqlType::MediumBlob => ColumnType::of(K::MediumBlob),
            SqlType::LongBlob => ColumnType::of(K::LongBlob),
            SqlType::Date => ColumnType::of(K::Date),
            SqlType::Datetime(p) => ColumnType {
                precision: p.unwrap_or(0).min(6) as u8,
                ..ColumnType::of(K::DateTime)
            },
            SqlType::Timestamp(p, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => {
                ColumnType {
                    precision: p.unwrap_or(0).min(6) as u8,
                    ..ColumnType::of(K::Timestamp)
                }
            }
            SqlType::Time(p, _) => ColumnType {
                precision: p.unwrap_or(0).min(6) as u8,
                ..ColumnType::of(K::Time)
            },
            SqlType::JSON => ColumnType::of(K::Json),
            other => return Err(Error::not_supported(format!("column type {other}"))),
        })
    }

    pub fn is_integer(&self) -> bool {
        use TypeKind as K;
        matches!(
            self.kind,
            K::TinyInt | K::SmallInt | K::MediumInt | K::Int | K::BigInt
        )
    }

    pub fn is_text(&self) -> bool {
        use TypeKind as K;
        matches!(
            self.kind,
            K::Char | K::VarChar | K::TinyText | K::Text | K::MediumText | K::LongText
        )
    }

    pub fn is_binary(&self) -> bool {
        use TypeKind as K;
        matches!(
            self.kind,
            K::Binary | K::VarBinary | K::TinyBlob | K::Blob | K::MediumBlob | K::LongBlob
        )
    }

    /// Longest value, in characters for text and bytes for binary strings.
    fn max_len(&self) -> usize {
        use TypeKind as K;
        match self.kind {
            K::Char | K::VarChar | K::Binary | K::VarBinary => self.length as usize,
            K::TinyText | K::TinyBlob => 255,
            K::Text | K::Blob => 65_535,
            K::MediumText | K::MediumBlob => 16_777_215,
            _ => 4_294_967_295,
        }
    }

    /// The integer range of this type.
    fn int_range(&self) -> (i128, i128) {
        use TypeKind as K;
        let bits = match self.kind {
            K::TinyInt => 8,
            K::SmallInt => 16,
            K::MediumInt => 24,
            K::Int => 32,
            _ => 64,
        };
        if self.unsigned {
            (0, (1i128 << bits) - 1)
        } else {
            (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
        }
    }

    /// The type as `SHOW CREATE TABLE` and `DESCRIBE` spell it.
    pub fn sql_name(&self) -> String {
        use TypeKind as K;
        let int = |name: &str| {
            let mut s = name.to_string();
            if self.length > 0 {
                s.push_str(&format!("({})", self.length));
            }
            if self.unsigned {
                s.push_str(" unsigned");
            }
            s
        };
        let fsp = |name: &str| {
            if self.precision > 0 {
                format!("{name}({})", self.precision)
            } else {
                name.to_string()
            }
        };
        match self.kind {
            K::TinyInt => int("tinyint"),
            K::SmallInt => int("smallint"),
            K::MediumInt => int("mediumint"),
            K::Int => int("int"),
            K::BigInt => int("bigint"),
            K::Decimal => {
                let s = format!("decimal({},{})", self.precision, self.scale);
                if self.unsigned { s + " unsigned" } else { s }
            }
            K::Float => "float".into(),
            K::Double => "double".into(),
            K::Char => format!("char({})", self.length),
            K::VarChar => format!("varchar({})", self.length),
            K::TinyText => "tinytext".into(),
            K::Text => "text".into(),
            K::MediumText => "mediumtext".into(),
            K::LongText => "longtext".into(),
            K::Binary => format!("binary({})", self.length),
            K::VarBinary => format!("varbinary({})", self.length),
            K::TinyBlob => "tinyblob".into(),
            K::Blob => "blob".into(),
            K::MediumBlob => "mediumblob".into(),
            K::LongBlob => "longblob".into(),
            K::Date => "date".into(),
            K::DateTime => fsp("datetime"),
            K::Timestamp => fsp("timestamp"),
            K::Time => fsp("time"),
            K::Json => "json".into(),
        }
    }

    /// The Arrow type the engines see this column as.
    pub fn arrow(&self) -> ArrowType {
        use TypeKind as K;
        match self.kind {
            _ if self.is_integer() && self.unsigned => ArrowType::UInt64,
            _ if self.is_integer() => ArrowType::Int64,
            K::Decimal => ArrowType::Decimal128(self.precision, self.scale as i8),
            K::Float | K::Double => ArrowType::Float64,
            _ if self.is_text() => ArrowType::Utf8,
            _ if self.is_binary() => ArrowType::Binary,
            K::Date => ArrowType::Date32,
            K::DateTime | K::Timestamp => ArrowType::Timestamp(TimeUnit::Microsecond, None),
            _ => ArrowType::Utf8,
        }
    }

    /// The type sent in column definitions.
    pub fn field_type(&self) -> FieldType {
        use TypeKind as K;
        match self.kind {
            K::TinyInt => FieldType::Tiny,
            K::SmallInt => FieldType::Short,
            K::MediumInt => FieldType::Int24,
            K::Int => FieldType::Long,
            K::BigInt => FieldType::LongLong,
            K::Decimal => FieldType::NewDecimal,
            K::Float => FieldType::Float,
            K::Double => FieldType::Double,
            K::Char | K::Binary => FieldType::String,
            K::VarChar | K::VarBinary => FieldType::VarString,
            K::Date => FieldType::Date,
            K::DateTime => FieldType::DateTime,
            K::Timestamp => FieldType::Timestamp,
            K::Time => FieldType::Time,
            K::Json => FieldType::Json,
            _ => FieldType::Blob,
        }
    }

    /// Converts `value` for storage in column `column` (MySQL strict mode).
    pub fn coerce(&self, value: &Value, column: &str) -> Result<Datum> {
        use TypeKind as K;
        if matches!(value, Value::Null) {
            return Ok(Datum::Null);
        }
        let incorrect = || Error::IncorrectValue {
            kind: self.value_kind(),
            value: value_text(value),
            column: column.to_string(),
        };
        // A number that a string holds only the start of is truncated
        // (1265); a string with no number at all is incorrect (1366).
        let not_a_number = || match value {
            Value::Str(_) | Value::Bytes(_) if !numeric_prefix(&value_text(value)).is_empty() => {
                Error::DataTruncated {
                    column: column.to_string(),
                    row: 1,
                }
            }
            _ => incorrect(),
        };
        let out_of_range = || Error::OutOfRangeColumn(column.to_string());
        match self.kind {
            _ if self.is_integer() => {
                let n = to_integer(value).ok_or_else(not_a_number)?;
                let (lo, hi) = self.int_range();
                if n < lo || n > hi {
                    return Err(out_of_range());
                }
                Ok(if self.unsigned {
                    Datum::UInt(n as u64)
                } else {
                    Datum::Int(n as i64)
                })
            }
            K::Decimal => {
                let text = to_decimal_text(value).ok_or_else(not_a_number)?;
                let d = round_decimal(&text, self.scale as usize).ok_or_else(not_a_number)?;
                let digits = d.trim_start_matches('-').split('.').next().unwrap_or("");
                let int_digits = digits.trim_start_matches('0').len();
                if int_digits > (self.precision - self.scale) as usize
                    || (self.unsigned
                        && d.starts_with('-')
                        && !d.trim_matches(['-', '0', '.']).is_empty())
                {
                    return Err(out_of_range());
                }
                Ok(Datum::Decimal(d))
            }
            K::Float | K::Double => {
                let f = to_double(value).ok_or_else(not_a_number)?;
                if !f.is_finite() || (self.kind == K::Float && f.abs() > f32::MAX as f64) {
                    return Err(out_of_range());
                }
                Ok(Datum::Float(if self.kind == K::Float {
                    f as f32 as f64
                } else {
                    f
                }))
            }
            _ if self.is_text() => {
                let s = match value {
                    Value::Bytes(b) => String::from_utf8(b.clone()).map_err(|_| incorrect())?,
                    other => value_text(other),
                };
                if s.chars().count() > self.max_len() {
                    return Err(Error::DataTooLong(column.to_string()));
                }
                let s = if self.kind == K::Char {
                    s.trim_end_matches(' ').to_string()
                } else {
                    s
                };
                Ok(Datum::Bytes(s.into_bytes()))
            }
            K::Json => {
                let text = match value {
                    Value::Bytes(b) => String::from_utf8(b.clone()).map_err(|_| incorrect())?,
                    other => value_text(other),
                };
                let doc = json::parse(&text).map_err(|detail| Error::InvalidJson {
                    column: column.to_string(),
                    detail,
                })?;
                Ok(Datum::Bytes(json::to_text(&doc).into_bytes()))
            }
            _ if self.is_binary() => {
                let mut b = match value {
                    Value::Bytes(b) => b.clone(),
                    other => value_text(other).into_bytes(),
                };
                if b.len() > self.max_len() {
                    return Err(Error::DataTooLong(column.to_string()));
                }
                if self.kind == K::Binary {
                    b.resize(self.length as usize, 0);
                }
                Ok(Datum::Bytes(b))
            }
            K::Date => {
                let d = to_datetime(value).ok_or_else(incorrect)?;
                Ok(Datum::Date {
                    year: d.date.year,
                    month: d.date.month,
                    day: d.date.day,
                })
            }
            K::DateTime | K::Timestamp => {
                let d = to_datetime(value).ok_or_else(incorrect)?;
                let unit = 10u32.pow(6 - u32::from(self.precision));
                Ok(Datum::DateTime {
                    year: d.date.year,
                    month: d.date.month,
                    day: d.date.day,
                    hour: d.hour,
                    minute: d.minute,
                    second: d.second,
                    micros: d.micros / unit * unit,
                })
            }
            _ => {
                let t = to_time(value).ok_or_else(incorrect)?;
                let micros =
                    (u64::from(t.hours) * 3600 + u64::from(t.minutes) * 60 + u64::from(t.seconds))
                        * 1_000_000
                        + u64::from(t.micros);
                Ok(Datum::Time {
                    negative: t.negative,
                    micros,
                })
            }
        }
    }

    fn value_kind(&self) -> &'static str {
        use TypeKind as K;
        match self.kind {
            _ if self.is_integer() => "integer",
            K::Decimal => "decimal",
            K::Float | K::Double => "double",
            K::Date => "date",
            K::DateTime | K::Timestamp => "datetime",
            K::Time => "time",
            K::Json => "json",
            _ => "string",
        }
    }
}

/// A stored datum back as a client value.
pub fn datum_to_value(d: &Datum) -> Value {
    match d {
        Datum::Null => Value::Null,
        Datum::Int(v) => Value::Int(*v),
        Datum::UInt(v) => Value::UInt(*v),
        Datum::Float(v) => Value::Double(*v),
        Datum::Bytes(b) => match String::from_utf8(b.clone()) {
            Ok(s) => Value::Str(s),
            Err(e) => Value::Bytes(e.into_bytes()),
        },
        Datum::Decimal(s) => Value::Decimal(s.clone()),
        Datum::Date { year, month, day } => Value::Date(Date {
            year: *year,
            month: *month,
            day: *day,
        }),
        Datum::DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
        } => Value::DateTime(DateTime {
            date: Date {
                year: *year,
                month: *month,
                day: *day,
            },
            hour: *hour,
            minute: *minute,
            second: *second,
            micros: *micros,
        }),
        Datum::Time { negative, micros } => {
            let secs = micros / 1_000_000;
            Value::Time(Time {
                negative: *negative,
                hours: (secs / 3600) as u32,
                minutes: ((secs / 60) % 60) as u8,
                seconds: (secs % 60) as u8,
                micros: (micros % 1_000_000) as u32,
            })
        }
    }
}

/// The text of a value as MySQL converts it to a string.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Double(d) => format_double(*d),
        other => String::from_utf8_lossy(&other.to_text().unwrap_or_default()).into_owned(),
    }
}

/// The integer MySQL stores for `v`: numbers round half away from zero;
/// strings must be numbers.
fn to_integer(v: &Value) -> Option<i128> {
    match v {
        Value::Int(i) => Some(i128::from(*i)),
        Value::UInt(u) => Some(i128::from(*u)),
        Value::Double(d) => {
            let r = d.round();
            (r.is_finite() && r.abs() < 1e38).then_some(r as i128)
        }
        Value::Decimal(_) | Value::Str(_) | Value::Bytes(_) => {
            let text = to_decimal_text(v)?;
            let rounded = round_decimal(&text, 0)?;
            rounded.parse::<i128>().ok()
        }
        Value::Date(d) => {
            Some(i128::from(d.year) * 10_000 + i128::from(d.month) * 100 + i128::from(d.day))
        }
        Value::Null | Value::DateTime(_) | Value::Time(_) => None,
    }
}

fn to_double(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::UInt(u) => Some(*u as f64),
        Value::Double(d) => Some(*d),
        Value::Decimal(s) | Value::Str(s) => s.trim().parse().ok(),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// `v` as a decimal literal (`-12.5`), if it is a number.
fn to_decimal_text(v: &Value) -> Option<String> {
    let s = match v {
        Value::Int(i) => return Some(i.to_string()),
        Value::UInt(u) => return Some(u.to_string()),
        Value::Double(d) => {
            if !d.is_finite() {
                return None;
            }
            // Shortest digits that round-trip, without an exponent.
            let s = format!("{d}");
            if s.contains('e') {
                format!("{d:.30}")
            } else {
                s
            }
        }
        Value::Decimal(s) | Value::Str(s) => s.trim().to_string(),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.trim().to_string(),
        _ => return None,
    };
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], s[at + 1..].parse::<i32>().ok()?),
        None => (s.as_str(), 0),
    };
    let (negative, digits) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // Apply the exponent by moving the point.
    let all: String = format!("{int}{frac}");
    let point = int.len() as i64 + i64::from(exponent);
    let text = if point <= 0 {
        format!("0.{}{}", "0".repeat((-point) as usize), all)
    } else if point as usize >= all.len() {
        format!("{}{}", all, "0".repeat(point as usize - all.len()))
    } else {
        format!("{}.{}", &all[..point as usize], &all[point as usize..])
    };
    Some(if negative { format!("-{text}") } else { text })
}

/// Parses `YYYY-MM-DD[ HH:MM:SS[.ffffff]]` (or a date/datetime value).
pub fn to_datetime(v: &Value) -> Option<DateTime> {
    let text = match v {
        Value::Date(d) => {
            return Some(DateTime {
                date: *d,
                hour: 0,
                minute: 0,
                second: 0,
                micros: 0,
            });
        }
        Value::DateTime(d) => return Some(*d),
        Value::Str(s) => s.trim().to_string(),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.trim().to_string(),
        Value::Int(_) | Value::UInt(_) => {
            let n = value_text(v);
            if n.len() == 8 {
                format!("{}-{}-{}", &n[..4], &n[4..6], &n[6..])
            } else if n.len() == 14 {
                format!(
                    "{}-{}-{} {}:{}:{}",
                    &n[..4],
                    &n[4..6],
                    &n[6..8],
                    &n[8..10],
                    &n[10..12],
                    &n[12..]
                )
            } else {
                return None;
            }
        }
        _ => return None,
    };
    let (date, time) = match text.split_once([' ', 'T']) {
        Some((d, t)) => (d, Some(t.trim())),
        None => (text.as_str(), None),
    };
    let mut parts = date.split('-');
    let year: u16 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || year > 9999 || !valid_date(year, month, day) {
        return None;
    }
    let (mut hour, mut minute, mut second, mut micros) = (0u8, 0u8, 0u8, 0u32);
    if let Some(t) = time {
        let (hms, frac) = t.split_once('.').unwrap_or((t, ""));
        let mut p = hms.split(':');
        hour = p.next()?.parse().ok()?;
        minute = p.next().unwrap_or("0").parse().ok()?;
        second = p.next().unwrap_or("0").parse().ok()?;
        if hour > 23 || minute > 59 || second > 59 || frac.len() > 6 {
            return None;
        }
        if !frac.is_empty() {
            micros = format!("{frac:0<6}").parse().ok()?;
        }
    }
    Some(DateTime {
        date: Date { year, month, day },
        hour,
        minute,
        second,
        micros,
    })
}

fn to_time(v: &Value) -> Option<Time> {
    let text = match v {
        Value::Time(t) => return Some(*t),
        Value::Str(s) => s.trim().to_string(),
        Value::Int(_) | Value::UInt(_) => {
            let n: u64 = value_text(v).parse().ok()?;
            return Some(Time {
                negative: false,
                hours: (n / 10_000) as u32,
                minutes: ((n / 100) % 100) as u8,
                seconds: (n % 100) as u8,
                micros: 0,
            });
        }
        _ => return None,
    };
    let (negative, rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.as_str()),
    };
    let (hms, frac) = rest.split_once('.').unwrap_or((rest, ""));
    let mut p = hms.split(':');
    let hours: u32 = p.next()?.parse().ok()?;
    let minutes: u8 = p.next().unwrap_or("0").parse().ok()?;
    let seconds: u8 = p.next().unwrap_or("0").parse().ok()?;
    if hours > 838 || minutes > 59 || seconds > 59 || frac.len() > 6 {
        return None;
    }
    let micros = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").parse().ok()?
    };
    Some(Time {
        negative,
        hours,
        minutes,
        seconds,
        micros,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::MySql;
    use crate::rules::time::{civil_from_days, days_from_civil};
    use datafusion::sql::sqlparser::ast::Statement;
    use datafusion::sql::sqlparser::parser::Parser;

    fn declared(sql_type: &str) -> ColumnType {
        let sql = format!("CREATE TABLE t (c {sql_type})");
        let stmt = Parser::parse_sql(&MySql, &sql).unwrap().remove(0);
        let Statement::CreateTable(ct) = stmt else {
            panic!("create table")
        };
        ColumnType::from_sql(&ct.columns[0].data_type).unwrap()
    }

    #[test]
    fn integers_are_range_checked_and_rounded() {
        let t = declared("TINYINT");
        assert_eq!(t.coerce(&Value::Int(127), "c").unwrap(), Datum::Int(127));
        assert_eq!(t.coerce(&Value::Int(128), "c").unwrap_err().code(), 1264);
        assert_eq!(t.coerce(&Value::Double(2.5), "c").unwrap(), Datum::Int(3));
        assert_eq!(
            t.coerce(&Value::Str("-2.5".into()), "c").unwrap(),
            Datum::Int(-3)
        );
        assert_eq!(
            t.coerce(&Value::Str("abc".into()), "c").unwrap_err().code(),
            1366
        );
        let u = declared("INT UNSIGNED");
        assert_eq!(u.coerce(&Value::Int(-1), "c").unwrap_err().code(), 1264);
        assert_eq!(u.sql_name(), "int unsigned");
        assert_eq!(
            declared("BIGINT")
                .coerce(&Value::UInt(u64::MAX), "c")
                .unwrap_err()
                .code(),
            1264
        );
    }

    #[test]
    fn decimals_round_to_their_scale_and_check_precision() {
        let t = declared("DECIMAL(5,2)");
        assert_eq!(
            t.coerce(&Value::Str("1.005".into()), "c").unwrap(),
            Datum::Decimal("1.01".into())
        );
        assert_eq!(
            t.coerce(&Value::Int(999), "c").unwrap(),
            Datum::Decimal("999.00".into())
        );
        assert_eq!(t.coerce(&Value::Int(1000), "c").unwrap_err().code(), 1264);
        assert_eq!(
            t.coerce(&Value::Double(-0.004), "c").unwrap(),
            Datum::Decimal("0.00".into())
        );
        assert_eq!(
            t.coerce(&Value::Str("1e2".into()), "c").unwrap(),
            Datum::Decimal("100.00".into())
        );
        assert_eq!(round_decimal("9.995", 2).as_deref(), Some("10.00"));
        assert_eq!(round_decimal("-0012.345", 2).as_deref(), Some("-12.35"));
        assert_eq!(t.sql_name(), "decimal(5,2)");
    }

    #[test]
    fn strings_check_their_length_in_characters() {
        let t = declared("VARCHAR(3)");
        assert_eq!(
            t.coerce(&Value::Str("äöü".into()), "c").unwrap(),
            Datum::Bytes("äöü".as_bytes().to_vec())
        );
        assert_eq!(
            t.coerce(&Value::Str("abcd".into()), "c")
                .unwrap_err()
                .code(),
            1406
        );
        assert_eq!(
            t.coerce(&Value::Int(12), "c").unwrap(),
            Datum::Bytes(b"12".to_vec())
        );
        assert_eq!(
            declared("CHAR(4)")
                .coerce(&Value::Str("ab  ".into()), "c")
                .unwrap(),
            Datum::Bytes(b"ab".to_vec())
        );
    }

    #[test]
    fn temporals_parse_and_validate() {
        let d = declared("DATE");
        assert_eq!(
            d.coerce(&Value::Str("2024-02-29".into()), "c").unwrap(),
            Datum::Date {
                year: 2024,
                month: 2,
                day: 29
            }
        );
        assert_eq!(
            d.coerce(&Value::Str("2023-02-29".into()), "c")
                .unwrap_err()
                .code(),
            1366
        );
        let dt = declared("DATETIME");
        assert!(matches!(
            dt.coerce(&Value::Str("2024-01-02 03:04:05.678".into()), "c")
                .unwrap(),
            Datum::DateTime {
                hour: 3,
                second: 5,
                micros: 0,
                ..
            }
        ));
        for days in [-719_468, -1, 0, 1, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }
}
