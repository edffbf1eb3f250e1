//! The data that crosses the seam between the SQL layer and the server: values,
//! column descriptions, and the outcome of one statement. These types speak
//! MySQL's vocabulary (field types, flags) but know nothing of the wire format.

use crate::Result;
use std::fmt;

/// One SQL value as the client sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    UInt(u64),
    Double(f64),
    /// An exact decimal in its canonical text form (`-12.50`).
    Decimal(String),
    /// Text in the connection's character set (always UTF-8 in Duet).
    Str(String),
    /// Binary data (BLOB, BINARY, or a non-UTF-8 parameter).
    Bytes(Vec<u8>),
    Date(Date),
    DateTime(DateTime),
    Time(Time),
}

/// A calendar date, `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

/// A date and a time of day with microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DateTime {
    pub date: Date,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub micros: u32,
}

/// A MySQL `TIME`: a signed duration of up to 838 hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time {
    pub negative: bool,
    pub hours: u32,
    pub minutes: u8,
    pub seconds: u8,
    pub micros: u32,
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:02}:{:02}:{:02}",
            self.date, self.hour, self.minute, self.second
        )?;
        if self.micros > 0 {
            write!(f, ".{:06}", self.micros)?;
        }
        Ok(())
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.negative { "-" } else { "" };
        write!(
            f,
            "{sign}{:02}:{:02}:{:02}",
            self.hours, self.minutes, self.seconds
        )?;
        if self.micros > 0 {
            write!(f, ".{:06}", self.micros)?;
        }
        Ok(())
    }
}

impl Value {
    /// The value in MySQL's text protocol form; `None` for NULL.
    pub fn to_text(&self) -> Option<Vec<u8>> {
        Some(match self {
            Value::Null => return None,
            Value::Int(v) => v.to_string().into_bytes(),
            Value::UInt(v) => v.to_string().into_bytes(),
            Value::Double(v) => format_double(*v).into_bytes(),
            Value::Decimal(s) | Value::Str(s) => s.clone().into_bytes(),
            Value::Bytes(b) => b.clone(),
            Value::Date(d) => d.to_string().into_bytes(),
            Value::DateTime(d) => d.to_string().into_bytes(),
            Value::Time(t) => t.to_string().into_bytes(),
        })
    }

    /// The field type a column holding only this value would have.
    pub fn field_type(&self) -> FieldType {
        match self {
            Value::Null => FieldType::Null,
            Value::Int(_) | Value::UInt(_) => FieldType::LongLong,
            Value::Double(_) => FieldType::Double,
            Value::Decimal(_) => FieldType::NewDecimal,
            Value::Str(_) => FieldType::VarString,
            Value::Bytes(_) => FieldType::Blob,
            Value::Date(_) => FieldType::Date,
            Value::DateTime(_) => FieldType::DateTime,
            Value::Time(_) => FieldType::Time,
        }
    }
}

/// Formats a double the way MySQL prints one: shortest round-trip digits,
/// no trailing `.0`, exponent form for very large or small magnitudes.
pub fn format_double(v: f64) -> String {
    if v.is_finite() && v == v.trunc() && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-15..1e15).contains(&abs) {
        let s = format!("{v:e}");
        return s.replace("e", "e+").replace("e+-", "e-");
    }
    format!("{v}")
}

/// MySQL column types, as sent in column definitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Tiny,
    Short,
    Int24,
    Long,
    LongLong,
    Float,
    Double,
    NewDecimal,
    Year,
    Date,
    DateTime,
    Timestamp,
    Time,
    VarChar,
    VarString,
    String,
    Blob,
    Json,
    Null,
}

/// The description of one result column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// The name the client sees (alias or expression text).
    pub name: String,
    /// The underlying column's name, empty for expressions.
    pub org_name: String,
    pub table: String,
    pub org_table: String,
    pub schema: String,
    pub field_type: FieldType,
    pub unsigned: bool,
    pub not_null: bool,
    pub primary_key: bool,
    /// True for binary strings and blobs (charset `binary`).
    pub binary: bool,
    /// Display length in characters (MySQL's `column_length` divided by the charset width).
    pub length: u32,
    pub decimals: u8,
}

impl Column {
    /// A result column computed from an expression (no table behind it).
    pub fn expr(name: impl Into<String>, field_type: FieldType) -> Self {
        let length = match field_type {
            FieldType::LongLong => 21,
            FieldType::Double => 23,
            FieldType::Date => 10,
            FieldType::DateTime | FieldType::Timestamp => 26,
            FieldType::Time => 17,
            _ => 1024,
        };
        Column {
            name: name.into(),
            org_name: String::new(),
            table: String::new(),
            org_table: String::new(),
            schema: String::new(),
            field_type,
            unsigned: false,
            not_null: false,
            primary_key: false,
            binary: matches!(field_type, FieldType::Blob),
            length,
            decimals: if field_type == FieldType::Double {
                31
            } else {
                0
            },
        }
    }
}

/// The rows a statement returns, fully materialized.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResultSet {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
}

/// What a statement that returns no rows reports.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OkStatus {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    /// Human-readable info string (e.g. `Records: 3  Duplicates: 0  Warnings: 0`).
    pub info: String,
}

/// The outcome of one statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A result built whole (statements that read no table, `SHOW`, point
    /// gets, and every result when the session has no [`RowSink`]).
    Rows(ResultSet),
    Ok(OkStatus),
    /// A result sent to the session's [`RowSink`] as it was made: this
    /// many rows.
    Streamed {
        rows: u64,
    },
}

impl Output {
    pub(crate) fn ok() -> Self {
        Output::Ok(OkStatus::default())
    }
}

/// Where a session sends the rows of a query as the query engine makes
/// them: to the client, in bounded batches. A sink that blocks holds the
/// query back (a slow client slows its query, it does not grow the
/// server's memory); one that fails (the client is gone) stops it.
pub trait RowSink: Send {
    /// The result's columns, once, before its rows.
    fn columns(&mut self, columns: &[Column]) -> Result<()>;
    /// The next rows of the result, in order.
    fn rows(&mut self, rows: Vec<Vec<Value>>) -> Result<()>;
}

/// A sink that keeps what it is sent: a whole result.
#[derive(Debug, Default)]
pub(crate) struct Collect(pub ResultSet);

impl RowSink for Collect {
    fn columns(&mut self, columns: &[Column]) -> Result<()> {
        self.0.columns = columns.to_vec();
        Ok(())
    }

    fn rows(&mut self, mut rows: Vec<Vec<Value>>) -> Result<()> {
        self.0.rows.append(&mut rows);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_match_mysql() {
        assert_eq!(Value::Int(-3).to_text().unwrap(), b"-3");
        assert_eq!(Value::Double(1.5).to_text().unwrap(), b"1.5");
        assert_eq!(Value::Double(2.0).to_text().unwrap(), b"2");
        assert_eq!(Value::Double(1e20).to_text().unwrap(), b"1e+20");
        assert_eq!(Value::Null.to_text(), None);
        let dt = DateTime {
            date: Date {
                year: 2026,
                month: 1,
                day: 2,
            },
            hour: 3,
            minute: 4,
            second: 5,
            micros: 60,
        };
        assert_eq!(dt.to_string(), "2026-01-02 03:04:05.000060");
        let t = Time {
            negative: true,
            hours: 100,
            minutes: 1,
            seconds: 2,
            micros: 0,
        };
        assert_eq!(t.to_string(), "-100:01:02");
    }
}
