//! Payloads of the MySQL packets Duet sends, and the decoding of the binary
//! parameters clients send with `COM_STMT_EXECUTE`. Framing (headers,
//! sequence ids, splitting at 16 MiB) is `mysql_common`'s `PacketCodec`; the
//! handshake, column and error layouts are `mysql_common`'s serializers. What
//! is here is what that crate leaves to a server.

use std::collections::HashMap;

use duet_sql::{Column, Date, DateTime, FieldType, Time, Value};
use mysql_common::constants::{CapabilityFlags, ColumnFlags, ColumnType, StatusFlags};
use mysql_common::io::{BufMutExt, ParseBuf};
use mysql_common::packets::{self as p, ErrPacket, ServerError, SqlState};
use mysql_common::proto::MySerialize;
use mysql_common::value::{BinValue, Value as WireValue, ValueDeserializer};

/// Collation id of `utf8mb4_bin`, Duet's default.
pub const UTF8MB4_BIN: u16 = 46;
/// Collation id of the `binary` character set.
pub const BINARY: u16 = 63;

/// An error to send to the client: code, SQLSTATE and message.
#[derive(Debug, Clone)]
pub struct ErrorReply {
    pub code: u16,
    pub state: [u8; 5],
    pub message: String,
}

impl ErrorReply {
    pub fn new(code: u16, state: &str, message: impl Into<String>) -> Self {
        let mut s = [b'H', b'Y', b'0', b'0', b'0'];
        if state.len() == 5 {
            s.copy_from_slice(state.as_bytes());
        }
        ErrorReply {
            code,
            state: s,
            message: message.into(),
        }
    }

    /// ER_MALFORMED_PACKET.
    pub fn malformed() -> Self {
        Self::new(1835, "HY000", "Malformed communication packet.")
    }
}

impl From<&duet_sql::Error> for ErrorReply {
    fn from(e: &duet_sql::Error) -> Self {
        ErrorReply::new(e.code(), e.sqlstate(), e.to_string())
    }
}

pub fn err(e: &ErrorReply) -> Vec<u8> {
    let packet = ErrPacket::Error(ServerError::new(
        e.code,
        Some(SqlState::new(e.state)),
        e.message.as_bytes(),
    ));
    let mut buf = Vec::new();
    packet.serialize(&mut buf);
    buf
}

/// An OK packet; `eof_header` marks one that ends a result set under
/// CLIENT_DEPRECATE_EOF.
pub fn ok(
    affected: u64,
    insert_id: u64,
    status: StatusFlags,
    warnings: u16,
    info: &str,
    eof_header: bool,
) -> Vec<u8> {
    let mut buf = vec![if eof_header { 0xfe } else { 0x00 }];
    buf.put_lenenc_int(affected);
    buf.put_lenenc_int(insert_id);
    buf.extend_from_slice(&status.bits().to_le_bytes());
    buf.extend_from_slice(&warnings.to_le_bytes());
    // MySQL servers send the info as a length-encoded string (and clients
    // such as libmariadb read it so), though the protocol allows rest-of-packet.
    if !info.is_empty() {
        buf.put_lenenc_str(info.as_bytes());
    }
    buf
}

/// A classic EOF packet (clients without CLIENT_DEPRECATE_EOF).
pub fn eof(status: StatusFlags, warnings: u16) -> Vec<u8> {
    let mut buf = vec![0xfe];
    buf.extend_from_slice(&warnings.to_le_bytes());
    buf.extend_from_slice(&status.bits().to_le_bytes());
    buf
}

/// The initial handshake (protocol 10) offering mysql_native_password.
pub fn handshake(
    version: &str,
    connection_id: u32,
    scramble: &[u8; 20],
    caps: CapabilityFlags,
) -> Vec<u8> {
    let mut first = [0u8; 8];
    first.copy_from_slice(&scramble[..8]);
    // The second part travels NUL-terminated (13 bytes), as MySQL sends it;
    // libmariadb refuses a handshake without the terminator.
    let mut second = scramble[8..].to_vec();
    second.push(0);
    let packet = p::HandshakePacket::new(
        10,
        version.as_bytes(),
        connection_id,
        first,
        Some(second),
        caps,
        UTF8MB4_BIN as u8,
        StatusFlags::SERVER_STATUS_AUTOCOMMIT,
        Some(&b"mysql_native_password"[..]),
    );
    let mut buf = Vec::new();
    packet.serialize(&mut buf);
    buf
}

pub fn auth_switch(scramble: &[u8; 20]) -> Vec<u8> {
    let mut data = scramble.to_vec();
    data.push(0);
    let mut buf = Vec::new();
    p::AuthSwitchRequest::new(&b"mysql_native_password"[..], data).serialize(&mut buf);
    buf
}

pub fn column_type(t: FieldType) -> ColumnType {
    use ColumnType as C;
    match t {
        FieldType::Tiny => C::MYSQL_TYPE_TINY,
        FieldType::Short => C::MYSQL_TYPE_SHORT,
        FieldType::Int24 => C::MYSQL_TYPE_INT24,
        FieldType::Long => C::MYSQL_TYPE_LONG,
        FieldType::LongLong => C::MYSQL_TYPE_LONGLONG,
        FieldType::Float => C::MYSQL_TYPE_FLOAT,
        FieldType::Double => C::MYSQL_TYPE_DOUBLE,
        FieldType::NewDecimal => C::MYSQL_TYPE_NEWDECIMAL,
        FieldType::Year => C::MYSQL_TYPE_YEAR,
        FieldType::Date => C::MYSQL_TYPE_DATE,
        FieldType::DateTime => C::MYSQL_TYPE_DATETIME,
        FieldType::Timestamp => C::MYSQL_TYPE_TIMESTAMP,
        FieldType::Time => C::MYSQL_TYPE_TIME,
        FieldType::VarChar | FieldType::VarString => C::MYSQL_TYPE_VAR_STRING,
        FieldType::String => C::MYSQL_TYPE_STRING,
        FieldType::Blob => C::MYSQL_TYPE_BLOB,
        FieldType::Json => C::MYSQL_TYPE_JSON,
        FieldType::Null => C::MYSQL_TYPE_NULL,
    }
}

fn is_text(t: FieldType) -> bool {
    matches!(
        t,
        FieldType::VarChar
            | FieldType::VarString
            | FieldType::String
            | FieldType::Blob
            | FieldType::Json
    )
}

/// A column definition (Protocol::ColumnDefinition41).
pub fn column_def(c: &Column) -> Vec<u8> {
    let mut flags = ColumnFlags::empty();
    if c.not_null {
        flags |= ColumnFlags::NOT_NULL_FLAG;
    }
    if c.primary_key {
        flags |= ColumnFlags::PRI_KEY_FLAG;
    }
    if c.unsigned {
        flags |= ColumnFlags::UNSIGNED_FLAG;
    }
    let text = is_text(c.field_type);
    let binary = c.binary || !text;
    if binary {
        flags |= ColumnFlags::BINARY_FLAG;
    }
    if c.field_type == FieldType::Blob {
        flags |= ColumnFlags::BLOB_FLAG;
    }
    let (charset, width) = if text && !c.binary {
        (UTF8MB4_BIN, 4)
    } else {
        (BINARY, 1)
    };
    // Written by hand: mysql_common 0.37 serializes the column length
    // before the character set, the reverse of the protocol (and of its
    // own parser), which clients other than mysql_async read as swapped.
    let mut buf = Vec::new();
    for text in [
        "def",
        &c.schema,
        &c.table,
        &c.org_table,
        &c.name,
        &c.org_name,
    ] {
        buf.put_lenenc_str(text.as_bytes());
    }
    // The fixed-length fields: their length, then each in turn.
    buf.push(0x0c);
    buf.extend_from_slice(&charset.to_le_bytes());
    buf.extend_from_slice(&c.length.saturating_mul(width).to_le_bytes());
    buf.push(column_type(c.field_type) as u8);
    buf.extend_from_slice(&flags.bits().to_le_bytes());
    buf.push(c.decimals);
    buf.extend_from_slice(&[0, 0]);
    buf
}

/// The first packet of a result set: the column count.
pub fn column_count(n: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    buf.put_lenenc_int(n as u64);
    buf
}

/// A row in the text protocol.
pub fn text_row(row: &[Value]) -> Vec<u8> {
    let mut buf = Vec::new();
    for v in row {
        match v.to_text() {
            None => buf.push(0xfb),
            Some(bytes) => buf.put_lenenc_str(&bytes),
        }
    }
    buf
}

/// A row in the binary protocol (for prepared statements).
pub fn binary_row(columns: &[Column], row: &[Value]) -> Vec<u8> {
    let mut buf = vec![0x00];
    let bitmap_at = buf.len();
    buf.resize(bitmap_at + (row.len() + 7 + 2) / 8, 0);
    for (i, (c, v)) in columns.iter().zip(row).enumerate() {
        if *v == Value::Null {
            let bit = i + 2;
            buf[bitmap_at + bit / 8] |= 1 << (bit % 8);
            continue;
        }
        binary_value(c.field_type, v, &mut buf);
    }
    buf
}

fn binary_value(t: FieldType, v: &Value, buf: &mut Vec<u8>) {
    let int = || match v {
        Value::Int(i) => *i,
        Value::UInt(u) => *u as i64,
        Value::Double(d) => *d as i64,
        other => other
            .to_text()
            .and_then(|b| String::from_utf8(b).ok()?.parse().ok())
            .unwrap_or(0),
    };
    let float = || match v {
        Value::Int(i) => *i as f64,
        Value::UInt(u) => *u as f64,
        Value::Double(d) => *d,
        other => other
            .to_text()
            .and_then(|b| String::from_utf8(b).ok()?.parse().ok())
            .unwrap_or(0.0),
    };
    match t {
        FieldType::Tiny => buf.push(int() as u8),
        FieldType::Short | FieldType::Year => buf.extend_from_slice(&(int() as u16).to_le_bytes()),
        FieldType::Long | FieldType::Int24 => buf.extend_from_slice(&(int() as u32).to_le_bytes()),
        FieldType::LongLong => buf.extend_from_slice(&int().to_le_bytes()),
        FieldType::Float => buf.extend_from_slice(&(float() as f32).to_le_bytes()),
        FieldType::Double => buf.extend_from_slice(&float().to_le_bytes()),
        FieldType::Date | FieldType::DateTime | FieldType::Timestamp => {
            let dt = match v {
                Value::Date(d) => DateTime {
                    date: *d,
                    hour: 0,
                    minute: 0,
                    second: 0,
                    micros: 0,
                },
                Value::DateTime(dt) => *dt,
                _ => DateTime {
                    date: Date {
                        year: 0,
                        month: 0,
                        day: 0,
                    },
                    hour: 0,
                    minute: 0,
                    second: 0,
                    micros: 0,
                },
            };
            let d = dt.date;
            WireValue::Date(
                d.year, d.month, d.day, dt.hour, dt.minute, dt.second, dt.micros,
            )
            .serialize(buf);
        }
        FieldType::Time => {
            let t = match v {
                Value::Time(t) => *t,
                _ => Time {
                    negative: false,
                    hours: 0,
                    minutes: 0,
                    seconds: 0,
                    micros: 0,
                },
            };
            WireValue::Time(
                t.negative,
                t.hours / 24,
                (t.hours % 24) as u8,
                t.minutes,
                t.seconds,
                t.micros,
            )
            .serialize(buf);
        }
        _ => buf.put_lenenc_str(&v.to_text().unwrap_or_default()),
    }
}

/// The response to COM_STMT_PREPARE's first packet (COM_STMT_PREPARE_OK).
pub fn prepare_ok(id: u32, columns: u16, params: u16, warnings: u16) -> Vec<u8> {
    let mut buf = vec![0x00];
    buf.extend_from_slice(&id.to_le_bytes());
    buf.extend_from_slice(&columns.to_le_bytes());
    buf.extend_from_slice(&params.to_le_bytes());
    buf.push(0);
    buf.extend_from_slice(&warnings.to_le_bytes());
    buf
}

/// Per prepared statement: what the protocol must remember between commands.
#[derive(Debug, Default)]
pub struct StatementState {
    pub params: u16,
    /// Types sent with the last execute that bound them (type, unsigned).
    pub types: Vec<(ColumnType, bool)>,
    /// COM_STMT_SEND_LONG_DATA chunks, by parameter index.
    pub long_data: HashMap<u16, Vec<u8>>,
}

/// A little-endian reader over a packet that never reads past its end.
pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    pub fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    pub fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Decodes the parameters of a COM_STMT_EXECUTE body (after the statement id),
/// remembering newly bound types in `state`.
pub fn execute_params(body: &[u8], state: &mut StatementState) -> Result<Vec<Value>, ErrorReply> {
    let mut r = Reader(body);
    let _flags = r.u8().ok_or_else(ErrorReply::malformed)?;
    let _iterations = r.u32().ok_or_else(ErrorReply::malformed)?;
    let n = usize::from(state.params);
    if n == 0 {
        return Ok(Vec::new());
    }
    let nulls = r
        .take(n.div_ceil(8))
        .ok_or_else(ErrorReply::malformed)?
        .to_vec();
    if r.u8().ok_or_else(ErrorReply::malformed)? == 1 {
        let mut types = Vec::with_capacity(n);
        for _ in 0..n {
            let (t, flags) = (
                r.u8().ok_or_else(ErrorReply::malformed)?,
                r.u8().ok_or_else(ErrorReply::malformed)?,
            );
            let t = ColumnType::try_from(t).map_err(|_| ErrorReply::malformed())?;
            types.push((t, flags & 0x80 != 0));
        }
        state.types = types;
    }
    if state.types.len() != n {
        return Err(ErrorReply::new(
            1210,
            "HY000",
            "Incorrect arguments to mysqld_stmt_execute",
        ));
    }
    let mut values = Vec::with_capacity(n);
    for i in 0..n {
        let (t, unsigned) = state.types[i];
        if let Some(data) = state.long_data.remove(&(i as u16)) {
            values.push(from_bytes(t, data));
        } else if nulls[i / 8] & (1 << (i % 8)) != 0 || t == ColumnType::MYSQL_TYPE_NULL {
            values.push(Value::Null);
        } else {
            values.push(read_param(&mut r, t, unsigned)?);
        }
    }
    Ok(values)
}

fn read_param(r: &mut Reader<'_>, t: ColumnType, unsigned: bool) -> Result<Value, ErrorReply> {
    let flags = if unsigned {
        ColumnFlags::UNSIGNED_FLAG
    } else {
        ColumnFlags::empty()
    };
    let mut buf = ParseBuf(r.0);
    let wire: ValueDeserializer<BinValue> =
        buf.parse((t, flags)).map_err(|_| ErrorReply::malformed())?;
    r.0 = buf.0;
    Ok(match wire.0 {
        WireValue::NULL => Value::Null,
        WireValue::Int(i) => Value::Int(i),
        WireValue::UInt(u) => Value::UInt(u),
        WireValue::Float(f) => Value::Double(f64::from(f)),
        WireValue::Double(d) => Value::Double(d),
        WireValue::Bytes(b) => from_bytes(t, b),
        WireValue::Date(year, month, day, hour, minute, second, micros) => {
            let date = Date { year, month, day };
            if t == ColumnType::MYSQL_TYPE_DATE {
                Value::Date(date)
            } else {
                Value::DateTime(DateTime {
                    date,
                    hour,
                    minute,
                    second,
                    micros,
                })
            }
        }
        WireValue::Time(negative, days, hours, minutes, seconds, micros) => Value::Time(Time {
            negative,
            hours: days.saturating_mul(24).saturating_add(u32::from(hours)),
            minutes,
            seconds,
            micros,
        }),
    })
}

/// A length-encoded parameter: decimals as DECIMAL, blobs as bytes, strings as
/// text when they are valid UTF-8.
fn from_bytes(t: ColumnType, b: Vec<u8>) -> Value {
    use ColumnType as C;
    match t {
        C::MYSQL_TYPE_DECIMAL | C::MYSQL_TYPE_NEWDECIMAL => match String::from_utf8(b) {
            Ok(s) => Value::Decimal(s),
            Err(e) => Value::Bytes(e.into_bytes()),
        },
        C::MYSQL_TYPE_TINY_BLOB
        | C::MYSQL_TYPE_MEDIUM_BLOB
        | C::MYSQL_TYPE_LONG_BLOB
        | C::MYSQL_TYPE_BLOB => Value::Bytes(b),
        _ => match String::from_utf8(b) {
            Ok(s) => Value::Str(s),
            Err(e) => Value::Bytes(e.into_bytes()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(types: &[(ColumnType, bool)]) -> StatementState {
        StatementState {
            params: types.len() as u16,
            ..Default::default()
        }
    }

    #[test]
    fn column_definitions_follow_the_protocol_order() {
        let mut text = Column::expr("c", FieldType::VarString);
        text.length = 20;
        text.schema = "db".into();
        let mut number = Column::expr("n", FieldType::Long);
        number.length = 11;
        number.not_null = true;
        for (column, charset, length, binary) in
            [(text, UTF8MB4_BIN, 80, false), (number, BINARY, 11, true)]
        {
            let bytes = column_def(&column);
            let parsed: p::Column = ParseBuf(&bytes).parse(()).unwrap();
            assert_eq!(parsed.character_set(), charset);
            assert_eq!(parsed.column_length(), length);
            assert_eq!(parsed.schema_str(), column.schema);
            assert_eq!(parsed.name_str(), column.name);
            assert_eq!(parsed.flags().contains(ColumnFlags::BINARY_FLAG), binary);
            assert_eq!(parsed.column_type(), column_type(column.field_type));
        }
    }

    #[test]
    fn execute_params_decode_each_type() {
        let types = [
            (ColumnType::MYSQL_TYPE_LONGLONG, false),
            (ColumnType::MYSQL_TYPE_LONGLONG, true),
            (ColumnType::MYSQL_TYPE_DOUBLE, false),
            (ColumnType::MYSQL_TYPE_VAR_STRING, false),
            (ColumnType::MYSQL_TYPE_NULL, false),
            (ColumnType::MYSQL_TYPE_DATE, false),
        ];
        let mut body = vec![0, 1, 0, 0, 0]; // flags, iterations
        body.push(0b0001_0000); // null bitmap: param 4 is NULL
        body.push(1); // new params bound
        for (t, u) in types {
            body.push(t as u8);
            body.push(if u { 0x80 } else { 0 });
        }
        body.extend_from_slice(&(-5i64).to_le_bytes());
        body.extend_from_slice(&u64::MAX.to_le_bytes());
        body.extend_from_slice(&1.5f64.to_le_bytes());
        body.extend_from_slice(&[3, b'a', b'b', b'c']);
        body.extend_from_slice(&[4, 0xea, 0x07, 11, 28]);
        let mut st = state(&types);
        let v = execute_params(&body, &mut st).unwrap();
        assert_eq!(
            v,
            vec![
                Value::Int(-5),
                Value::UInt(u64::MAX),
                Value::Double(1.5),
                Value::Str("abc".into()),
                Value::Null,
                Value::Date(Date {
                    year: 2026,
                    month: 11,
                    day: 28
                }),
            ]
        );
        assert_eq!(st.types.len(), 6);
    }

    #[test]
    fn truncated_execute_is_malformed_not_a_panic() {
        let types = [(ColumnType::MYSQL_TYPE_LONGLONG, false)];
        let mut full = vec![
            0,
            1,
            0,
            0,
            0,
            0,
            1,
            ColumnType::MYSQL_TYPE_LONGLONG as u8,
            0,
        ];
        full.extend_from_slice(&7i64.to_le_bytes());
        for cut in 0..full.len() {
            let mut st = state(&types);
            let r = execute_params(&full[..cut], &mut st);
            assert!(r.is_err(), "cut at {cut} should fail");
        }
        assert_eq!(
            execute_params(&full, &mut state(&types)).unwrap(),
            vec![Value::Int(7)]
        );
    }

    #[test]
    fn binary_rows_mark_nulls_after_offset_two() {
        let cols = vec![
            Column::expr("a", FieldType::LongLong),
            Column::expr("b", FieldType::VarString),
        ];
        let row = binary_row(&cols, &[Value::Null, Value::Str("x".into())]);
        assert_eq!(row, vec![0x00, 0b0000_0100, 1, b'x']);
    }
}
