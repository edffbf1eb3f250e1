//! `Datum`, one SQL value, and its two encodings.
//!
//! The key encoding is memcomparable and goes into index keys and clustered
//! row keys: encodings of two datums of the same type compare like the
//! values, NULL sorts before everything, and datums concatenate into tuples
//! that sort field by field. The value encoding is compact and goes inside
//! rows. Both start with a type flag byte (the same flags in both), so a
//! decoder needs no schema.

use super::error::CodecError;
use super::number::{
    decode_bytes, decode_f64, decode_i64, decode_u64, decode_var_i64, decode_var_u64, encode_bytes,
    encode_f64, encode_i64, encode_u64, encode_var_i64, encode_var_u64, read_array, read_slice,
    read_u8,
};

/// One SQL value.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    /// SQL NULL; sorts before every other value in keys.
    Null,
    /// A signed integer of any width.
    Int(i64),
    /// An unsigned integer of any width.
    UInt(u64),
    /// A floating-point number. Keys refuse NaN and store `-0.0` as `0.0`.
    Float(f64),
    /// A binary or text string (text as its collation key or raw UTF-8).
    Bytes(Vec<u8>),
    /// An exact decimal as a string: optional sign, digits, optional point
    /// and digits (`"-12.340"`, `".5"`). Keys normalize it (`"-12.34"`,
    /// `"0.5"`); values keep it as given.
    Decimal(String),
    /// A calendar date. Year 0..=9999, month 0..=12, day 0..=31 (zero parts
    /// allowed, as MySQL's zero date).
    Date { year: u16, month: u8, day: u8 },
    /// A date and time of day, to the microsecond. Date parts as for `Date`;
    /// hour 0..=23, minute and second 0..=59, micros 0..=999_999.
    DateTime {
        year: u16,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        micros: u32,
    },
    /// A signed duration in microseconds, at most `i64::MAX` of them. A
    /// negative zero is stored as zero.
    Time { negative: bool, micros: u64 },
}

/// Type flags, shared by both encodings. The order matters only for keys:
/// NULL must be lowest so it sorts first.
mod flag {
    pub const NULL: u8 = 0x00;
    pub const BYTES: u8 = 0x01;
    pub const INT: u8 = 0x03;
    pub const UINT: u8 = 0x04;
    pub const FLOAT: u8 = 0x05;
    pub const DECIMAL: u8 = 0x06;
    pub const DATETIME: u8 = 0x07;
    pub const DATE: u8 = 0x08;
    pub const TIME: u8 = 0x09;
}

/// Appends the memcomparable encoding of `datum`: its flag, then
///
/// * Int, Time (signed microseconds): [`encode_i64`]; UInt: [`encode_u64`];
///   Float: [`encode_f64`]; Bytes: [`encode_bytes`];
/// * Decimal: the memcomparable decimal described at [`encode_decimal`];
/// * Date, DateTime: [`encode_u64`] of the packed date-time (a date packs as
///   midnight), under distinct flags so the type round-trips.
///
/// Fails on NaN, a malformed decimal or an out-of-range date or time field;
/// `buf` is then left as it was.
pub fn encode_key(datum: &Datum, buf: &mut Vec<u8>) -> Result<(), CodecError> {
    let start = buf.len();
    let result = encode_key_unchecked(datum, buf);
    if result.is_err() {
        buf.truncate(start);
    }
    result
}

fn encode_key_unchecked(datum: &Datum, buf: &mut Vec<u8>) -> Result<(), CodecError> {
    match datum {
        Datum::Null => buf.push(flag::NULL),
        Datum::Int(v) => {
            buf.push(flag::INT);
            encode_i64(*v, buf);
        }
        Datum::UInt(v) => {
            buf.push(flag::UINT);
            encode_u64(*v, buf);
        }
        Datum::Float(v) if v.is_nan() => return Err(CodecError::NaN),
        Datum::Float(v) => {
            buf.push(flag::FLOAT);
            encode_f64(*v, buf);
        }
        Datum::Bytes(b) => {
            buf.push(flag::BYTES);
            encode_bytes(b, buf);
        }
        Datum::Decimal(s) => {
            buf.push(flag::DECIMAL);
            encode_decimal(s, buf)?;
        }
        Datum::Date { .. } | Datum::DateTime { .. } => {
            let (flag, packed) = pack_datum(datum)?;
            buf.push(flag);
            encode_u64(packed, buf);
        }
        Datum::Time { negative, micros } => {
            buf.push(flag::TIME);
            encode_i64(time_to_micros(*negative, *micros)?, buf);
        }
    }
    Ok(())
}

/// Reads one [`encode_key`] datum. Decimals come back normalized.
pub fn decode_key(buf: &mut &[u8]) -> Result<Datum, CodecError> {
    let flag = read_u8(buf, "datum flag")?;
    Ok(match flag {
        flag::NULL => Datum::Null,
        flag::INT => Datum::Int(decode_i64(buf)?),
        flag::UINT => Datum::UInt(decode_u64(buf)?),
        flag::FLOAT => match decode_f64(buf)? {
            f if f.is_nan() => return Err(CodecError::NaN),
            f => Datum::Float(f),
        },
        flag::BYTES => Datum::Bytes(decode_bytes(buf)?),
        flag::DECIMAL => Datum::Decimal(decode_decimal(buf)?),
        flag::DATETIME | flag::DATE => unpack_datum(flag, decode_u64(buf)?)?,
        flag::TIME => time_from_micros(decode_i64(buf)?)?,
        _ => {
            return Err(CodecError::BadFlag {
                what: "datum key",
                flag,
            });
        }
    })
}

/// Appends the compact encoding of `datum`: its flag, then Int and Time
/// (signed microseconds) as zigzag varints, UInt as a varint, Float as 8
/// little-endian bytes, Bytes and Decimal as a varint length and the bytes
/// (the decimal string exactly as given, though it must be well formed), and
/// Date and DateTime as a varint of the packed date-time. Not memcomparable.
///
/// Fails on a malformed decimal or an out-of-range date or time field; `buf`
/// is then left as it was. NaN is stored as is.
pub fn encode_value(datum: &Datum, buf: &mut Vec<u8>) -> Result<(), CodecError> {
    let start = buf.len();
    let result = encode_value_unchecked(datum, buf);
    if result.is_err() {
        buf.truncate(start);
    }
    result
}

fn encode_value_unchecked(datum: &Datum, buf: &mut Vec<u8>) -> Result<(), CodecError> {
    match datum {
        Datum::Null => buf.push(flag::NULL),
        Datum::Int(v) => {
            buf.push(flag::INT);
            encode_var_i64(*v, buf);
        }
        Datum::UInt(v) => {
            buf.push(flag::UINT);
            encode_var_u64(*v, buf);
        }
        Datum::Float(v) => {
            buf.push(flag::FLOAT);
            buf.extend_from_slice(&v.to_le_bytes());
        }
        Datum::Bytes(b) => {
            buf.push(flag::BYTES);
            encode_length_prefixed(b, buf);
        }
        Datum::Decimal(s) => {
            Decimal::parse(s)?;
            buf.push(flag::DECIMAL);
            encode_length_prefixed(s.as_bytes(), buf);
        }
        Datum::Date { .. } | Datum::DateTime { .. } => {
            let (flag, packed) = pack_datum(datum)?;
            buf.push(flag);
            encode_var_u64(packed, buf);
        }
        Datum::Time { negative, micros } => {
            buf.push(flag::TIME);
            encode_var_i64(time_to_micros(*negative, *micros)?, buf);
        }
    }
    Ok(())
}

/// Reads one [`encode_value`] datum.
pub fn decode_value(buf: &mut &[u8]) -> Result<Datum, CodecError> {
    let flag = read_u8(buf, "datum flag")?;
    Ok(match flag {
        flag::NULL => Datum::Null,
        flag::INT => Datum::Int(decode_var_i64(buf)?),
        flag::UINT => Datum::UInt(decode_var_u64(buf)?),
        flag::FLOAT => Datum::Float(f64::from_le_bytes(read_array(buf, "f64")?)),
        flag::BYTES => Datum::Bytes(decode_length_prefixed(buf, "bytes")?.to_vec()),
        flag::DECIMAL => {
            let raw = decode_length_prefixed(buf, "decimal")?;
            let s =
                std::str::from_utf8(raw).map_err(|_| CodecError::BadUtf8 { what: "decimal" })?;
            Decimal::parse(s)?;
            Datum::Decimal(s.to_owned())
        }
        flag::DATETIME | flag::DATE => unpack_datum(flag, decode_var_u64(buf)?)?,
        flag::TIME => time_from_micros(decode_var_i64(buf)?)?,
        _ => {
            return Err(CodecError::BadFlag {
                what: "datum value",
                flag,
            });
        }
    })
}

/// Steps over one [`encode_value`] datum without building it (checking only
/// its framing), for readers that want a few columns of a wide row.
pub(crate) fn skip_value(buf: &mut &[u8]) -> Result<(), CodecError> {
    let flag = read_u8(buf, "datum flag")?;
    match flag {
        flag::NULL => {}
        flag::INT | flag::UINT | flag::DATETIME | flag::DATE | flag::TIME => {
            decode_var_u64(buf)?;
        }
        flag::FLOAT => {
            read_array::<8>(buf, "f64")?;
        }
        flag::BYTES => {
            decode_length_prefixed(buf, "bytes")?;
        }
        flag::DECIMAL => {
            decode_length_prefixed(buf, "decimal")?;
        }
        _ => {
            return Err(CodecError::BadFlag {
                what: "datum value",
                flag,
            });
        }
    }
    Ok(())
}

fn encode_length_prefixed(data: &[u8], buf: &mut Vec<u8>) {
    encode_var_u64(data.len() as u64, buf);
    buf.extend_from_slice(data);
}

fn decode_length_prefixed<'a>(
    buf: &mut &'a [u8],
    what: &'static str,
) -> Result<&'a [u8], CodecError> {
    let len = decode_var_u64(buf)?;
    let len = usize::try_from(len).map_err(|_| CodecError::Truncated { what })?;
    read_slice(buf, len, what)
}

// ---- Times ----------------------------------------------------------------

fn time_to_micros(negative: bool, micros: u64) -> Result<i64, CodecError> {
    let micros = i64::try_from(micros).map_err(|_| CodecError::OutOfRange { what: "time" })?;
    Ok(if negative { -micros } else { micros })
}

fn time_from_micros(micros: i64) -> Result<Datum, CodecError> {
    if micros == i64::MIN {
        return Err(CodecError::OutOfRange { what: "time" });
    }
    Ok(Datum::Time {
        negative: micros < 0,
        micros: micros.unsigned_abs(),
    })
}

// ---- Dates ----------------------------------------------------------------

/// The fields of a Date or DateTime, which pack into one `u64` that orders
/// like the fields: `((((year * 13 + month) << 5 | day) << 17 | hour << 12 |
/// minute << 6 | second) << 24) | micros`. The ranges checked here are what
/// keep the fields from overlapping (and the year from overflowing 64 bits).
#[derive(Clone, Copy)]
struct DateTimeParts {
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    micros: u32,
}

const MAX_YEAR: u16 = 9999;

impl DateTimeParts {
    fn check(self) -> Result<Self, CodecError> {
        let limits: [(bool, &'static str); 7] = [
            (self.year <= MAX_YEAR, "year"),
            (self.month <= 12, "month"),
            (self.day <= 31, "day"),
            (self.hour <= 23, "hour"),
            (self.minute <= 59, "minute"),
            (self.second <= 59, "second"),
            (self.micros <= 999_999, "microseconds"),
        ];
        match limits.iter().find(|(ok, _)| !ok) {
            Some(&(_, what)) => Err(CodecError::OutOfRange { what }),
            None => Ok(self),
        }
    }

    fn pack(self) -> Result<u64, CodecError> {
        let p = self.check()?;
        let ymd = ((u64::from(p.year) * 13 + u64::from(p.month)) << 5) | u64::from(p.day);
        let hms = (u64::from(p.hour) << 12) | (u64::from(p.minute) << 6) | u64::from(p.second);
        Ok((((ymd << 17) | hms) << 24) | u64::from(p.micros))
    }

    fn unpack(packed: u64) -> Result<Self, CodecError> {
        let ymd = packed >> 41;
        let hms = (packed >> 24) & 0x1_FFFF;
        let (year_month, day) = (ymd >> 5, ymd & 0x1F);
        let year =
            u16::try_from(year_month / 13).map_err(|_| CodecError::OutOfRange { what: "year" })?;
        DateTimeParts {
            year,
            month: (year_month % 13) as u8,
            day: day as u8,
            hour: (hms >> 12) as u8,
            minute: ((hms >> 6) & 0x3F) as u8,
            second: (hms & 0x3F) as u8,
            micros: (packed & 0xFF_FFFF) as u32,
        }
        .check()
    }

    fn is_midnight(self) -> bool {
        self.hour == 0 && self.minute == 0 && self.second == 0 && self.micros == 0
    }
}

/// The flag and packed value of a Date or DateTime datum.
fn pack_datum(datum: &Datum) -> Result<(u8, u64), CodecError> {
    let (flag, parts) = match *datum {
        Datum::Date { year, month, day } => {
            let parts = DateTimeParts {
                year,
                month,
                day,
                hour: 0,
                minute: 0,
                second: 0,
                micros: 0,
            };
            (flag::DATE, parts)
        }
        Datum::DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
        } => (
            flag::DATETIME,
            DateTimeParts {
                year,
                month,
                day,
                hour,
                minute,
                second,
                micros,
            },
        ),
        _ => unreachable!("pack_datum called with a non-date datum"),
    };
    Ok((flag, parts.pack()?))
}

fn unpack_datum(flag: u8, packed: u64) -> Result<Datum, CodecError> {
    let parts = DateTimeParts::unpack(packed)?;
    let DateTimeParts {
        year,
        month,
        day,
        hour,
        minute,
        second,
        micros,
    } = parts;
    if flag == flag::DATETIME {
        return Ok(Datum::DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
        });
    }
    if !parts.is_midnight() {
        return Err(CodecError::OutOfRange {
            what: "date with a time part",
        });
    }
    Ok(Datum::Date { year, month, day })
}

// ---- Decimals -------------------------------------------------------------

/// Sign bytes of the memcomparable decimal, in value order.
const DECIMAL_NEGATIVE: u8 = 0x00;
const DECIMAL_ZERO: u8 = 0x01;
const DECIMAL_POSITIVE: u8 = 0x02;
/// Ends the digits of a positive decimal; every digit byte sorts above it.
const DIGITS_END: u8 = 0x00;
/// Largest decimal exponent either way: far beyond any SQL precision, and a
/// bound on what a corrupt key can make the decoder allocate.
const MAX_DECIMAL_EXPONENT: u64 = 4096;

/// A decimal string, parsed and normalized without copying: the value is
/// `±0.D × 10^exponent`, where the significant digits `D` are `head`
/// followed by `tail`, with no leading or trailing zeros. Zero has no digits.
#[derive(Debug, PartialEq)]
struct Decimal<'a> {
    negative: bool,
    exponent: i64,
    head: &'a str,
    tail: &'a str,
}

impl<'a> Decimal<'a> {
    /// Parses `[+-]?[0-9]*(\.[0-9]*)?` with at least one digit.
    fn parse(s: &'a str) -> Result<Self, CodecError> {
        let (negative, body) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        if int.is_empty() && frac.is_empty() {
            return Err(CodecError::BadDecimal {
                reason: "no digits",
            });
        }
        let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(int) || !all_digits(frac) {
            return Err(CodecError::BadDecimal {
                reason: "unexpected character",
            });
        }
        let (int, frac) = (int.trim_start_matches('0'), frac.trim_end_matches('0'));
        let too_big = || CodecError::BadDecimal {
            reason: "exponent out of range",
        };
        let (exponent, head, tail) = if !int.is_empty() {
            let exponent = i64::try_from(int.len()).map_err(|_| too_big())?;
            let int = if frac.is_empty() {
                int.trim_end_matches('0')
            } else {
                int
            };
            (exponent, int, frac)
        } else {
            let digits = frac.trim_start_matches('0');
            let leading_zeros = i64::try_from(frac.len() - digits.len()).map_err(|_| too_big())?;
            (-leading_zeros, digits, "")
        };
        if exponent.unsigned_abs() > MAX_DECIMAL_EXPONENT {
            return Err(too_big());
        }
        Ok(if head.is_empty() {
            Decimal {
                negative: false,
                exponent: 0,
                head: "",
                tail: "",
            }
        } else {
            Decimal {
                negative,
                exponent,
                head,
                tail,
            }
        })
    }

    fn is_zero(&self) -> bool {
        self.head.is_empty()
    }

    fn digits(&self) -> impl Iterator<Item = u8> + '_ {
        self.head.bytes().chain(self.tail.bytes())
    }

    /// The normalized string: no leading zeros before the point (but a `0`
    /// before a leading point), no trailing zeros after it, no point for an
    /// integer, no sign for zero.
    fn to_normalized(&self) -> String {
        let digits: String = self.head.chars().chain(self.tail.chars()).collect();
        format_decimal(self.negative, self.exponent, &digits)
    }
}

/// Formats `±0.digits × 10^exponent` as a plain decimal string.
fn format_decimal(negative: bool, exponent: i64, digits: &str) -> String {
    if digits.is_empty() {
        return "0".to_owned();
    }
    let mut out = String::with_capacity(digits.len() + exponent.unsigned_abs() as usize + 3);
    if negative {
        out.push('-');
    }
    let zeros = |n: u64| std::iter::repeat_n('0', n as usize);
    if exponent <= 0 {
        out.push_str("0.");
        out.extend(zeros(exponent.unsigned_abs()));
        out.push_str(digits);
    } else if exponent.unsigned_abs() >= digits.len() as u64 {
        out.push_str(digits);
        out.extend(zeros(exponent.unsigned_abs() - digits.len() as u64));
    } else {
        let (int, frac) = digits.split_at(exponent.unsigned_abs() as usize);
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    }
    out
}

/// Returns the normalized form of a decimal string (`"000123.4500"` →
/// `"123.45"`, `"-0.00"` → `"0"`, `".5"` → `"0.5"`), the form that
/// [`decode_key`] returns.
pub fn normalize_decimal(s: &str) -> Result<String, CodecError> {
    Decimal::parse(s).map(|d| d.to_normalized())
}

/// Appends the memcomparable encoding of a decimal string (without the datum
/// flag).
///
/// Writing the normalized value as `±0.D × 10^E` (significant digits `D`
/// without leading or trailing zeros), the encoding is a sign byte (0x00
/// negative, 0x01 zero, 0x02 positive), and for non-zero values
/// [`encode_i64`] of `E` followed by the ASCII digits of `D` and a 0x00
/// terminator; for negative values every byte after the sign is inverted.
/// Among positives a larger `E` is a larger value, and at equal `E` the
/// digit strings compare as fractions (a shorter prefix is smaller, which
/// the terminator sorting below `'0'` gives); inverting reverses both for
/// negatives, and the terminator keeps the encoding prefix-free either way.
pub fn encode_decimal(s: &str, buf: &mut Vec<u8>) -> Result<(), CodecError> {
    let decimal = Decimal::parse(s)?;
    if decimal.is_zero() {
        buf.push(DECIMAL_ZERO);
        return Ok(());
    }
    buf.push(if decimal.negative {
        DECIMAL_NEGATIVE
    } else {
        DECIMAL_POSITIVE
    });
    let start = buf.len();
    encode_i64(decimal.exponent, buf);
    buf.extend(decimal.digits());
    buf.push(DIGITS_END);
    if decimal.negative {
        buf[start..].iter_mut().for_each(|b| *b = !*b);
    }
    Ok(())
}

/// Reads an [`encode_decimal`] value, returning the normalized string and
/// rejecting any encoding that [`encode_decimal`] would not produce.
pub fn decode_decimal(buf: &mut &[u8]) -> Result<String, CodecError> {
    let sign = read_u8(buf, "decimal sign")?;
    let mask = match sign {
        DECIMAL_ZERO => return Ok("0".to_owned()),
        DECIMAL_NEGATIVE => 0xFF,
        DECIMAL_POSITIVE => 0x00,
        flag => {
            return Err(CodecError::BadFlag {
                what: "decimal sign",
                flag,
            });
        }
    };
    let exponent = read_array::<8>(buf, "decimal exponent")?.map(|b| b ^ mask);
    let exponent = decode_i64(&mut &exponent[..])?;
    let end = buf
        .iter()
        .position(|&b| b ^ mask == DIGITS_END)
        .ok_or(CodecError::Truncated {
            what: "decimal digits",
        })?;
    let digits: Vec<u8> = buf[..end].iter().map(|&b| b ^ mask).collect();
    *buf = &buf[end + 1..];
    let bad = |reason| Err(CodecError::BadDecimal { reason });
    if !digits.iter().all(u8::is_ascii_digit) {
        return bad("unexpected character");
    }
    if digits.first().is_none_or(|&d| d == b'0') || digits.last() == Some(&b'0') {
        return bad("digits not normalized");
    }
    if exponent.unsigned_abs() > MAX_DECIMAL_EXPONENT {
        return bad("exponent out of range");
    }
    let digits = String::from_utf8(digits).map_err(|_| CodecError::BadUtf8 { what: "decimal" })?;
    Ok(format_decimal(mask != 0, exponent, &digits))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Ordering;

    pub(crate) fn key(datum: &Datum) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_key(datum, &mut buf).unwrap();
        buf
    }

    fn value(datum: &Datum) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_value(datum, &mut buf).unwrap();
        buf
    }

    fn dec_key(s: &str) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_decimal(s, &mut buf).unwrap();
        buf
    }

    fn decode_all<T>(f: fn(&mut &[u8]) -> Result<T, CodecError>, bytes: &[u8]) -> T {
        let mut rest = bytes;
        let v = f(&mut rest).unwrap();
        assert!(rest.is_empty(), "{} bytes left", rest.len());
        v
    }

    fn assert_truncations_fail(f: fn(&mut &[u8]) -> Result<Datum, CodecError>, encoded: &[u8]) {
        for len in 0..encoded.len() {
            let result = f(&mut &encoded[..len]);
            assert!(
                result.is_err(),
                "prefix of {len} bytes decoded to {result:?}"
            );
        }
    }

    fn samples() -> Vec<Datum> {
        vec![
            Datum::Null,
            Datum::Int(i64::MIN),
            Datum::Int(-1),
            Datum::Int(i64::MAX),
            Datum::UInt(0),
            Datum::UInt(u64::MAX),
            Datum::Float(-2.5),
            Datum::Float(f64::INFINITY),
            Datum::Bytes(vec![]),
            Datum::Bytes(b"12345678".to_vec()),
            Datum::Bytes(b"123456789".to_vec()),
            Datum::Decimal("0".into()),
            Datum::Decimal("-12.34".into()),
            Datum::Decimal("99999999999999999999999999.99".into()),
            Datum::Date {
                year: 2024,
                month: 2,
                day: 29,
            },
            Datum::Date {
                year: 0,
                month: 0,
                day: 0,
            },
            Datum::DateTime {
                year: 9999,
                month: 12,
                day: 31,
                hour: 23,
                minute: 59,
                second: 59,
                micros: 999_999,
            },
            Datum::Time {
                negative: true,
                micros: 3_000_000,
            },
            Datum::Time {
                negative: false,
                micros: i64::MAX as u64,
            },
        ]
    }

    #[test]
    fn key_round_trips_samples() {
        for datum in samples() {
            let expected = match &datum {
                Datum::Decimal(s) => Datum::Decimal(normalize_decimal(s).unwrap()),
                other => other.clone(),
            };
            assert_eq!(decode_all(decode_key, &key(&datum)), expected);
            assert_truncations_fail(decode_key, &key(&datum));
        }
    }

    #[test]
    fn value_round_trips_samples() {
        for datum in samples() {
            assert_eq!(decode_all(decode_value, &value(&datum)), datum);
            assert_truncations_fail(decode_value, &value(&datum));
            let encoded = value(&datum);
            let mut rest = &encoded[..];
            skip_value(&mut rest).unwrap();
            assert!(rest.is_empty());
        }
    }

    #[test]
    fn null_sorts_first() {
        for datum in samples().iter().skip(1) {
            assert!(key(&Datum::Null) < key(datum), "{datum:?}");
        }
    }

    #[test]
    fn key_layouts() {
        assert_eq!(key(&Datum::Int(0)), [0x03, 0x80, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(key(&Datum::Decimal("-0.00".into())), [0x06, 0x01]);
        let date = key(&Datum::Date {
            year: 2000,
            month: 1,
            day: 2,
        });
        let midnight = key(&Datum::DateTime {
            year: 2000,
            month: 1,
            day: 2,
            hour: 0,
            minute: 0,
            second: 0,
            micros: 0,
        });
        assert_eq!((date[0], midnight[0]), (0x08, 0x07));
        assert_eq!(date[1..], midnight[1..]);
    }

    #[test]
    fn key_refuses_unencodable_values() {
        let mut buf = vec![0xAA];
        let cases = [
            (Datum::Float(f64::NAN), CodecError::NaN),
            (
                Datum::Decimal("1e5".into()),
                CodecError::BadDecimal {
                    reason: "unexpected character",
                },
            ),
            (
                Datum::Date {
                    year: 2000,
                    month: 13,
                    day: 1,
                },
                CodecError::OutOfRange { what: "month" },
            ),
            (
                Datum::Date {
                    year: 10_000,
                    month: 1,
                    day: 1,
                },
                CodecError::OutOfRange { what: "year" },
            ),
            (
                Datum::Time {
                    negative: true,
                    micros: 1 << 63,
                },
                CodecError::OutOfRange { what: "time" },
            ),
        ];
        for (datum, error) in cases {
            assert_eq!(
                encode_key(&datum, &mut buf),
                Err(error.clone()),
                "{datum:?}"
            );
            assert_eq!(buf, [0xAA], "buffer untouched after {datum:?}");
            if !matches!(datum, Datum::Float(_)) {
                assert_eq!(encode_value(&datum, &mut buf), Err(error));
                assert_eq!(buf, [0xAA]);
            }
        }
    }

    #[test]
    fn value_keeps_exact_decimal_and_float_bits() {
        let d = Datum::Decimal("000123.4500".into());
        assert_eq!(decode_all(decode_value, &value(&d)), d);
        let Datum::Float(f) = decode_all(decode_value, &value(&Datum::Float(-0.0))) else {
            panic!("not a float");
        };
        assert!(f == 0.0 && f.is_sign_negative());
        let Datum::Float(nan) = decode_all(decode_value, &value(&Datum::Float(f64::NAN))) else {
            panic!("not a float");
        };
        assert!(nan.is_nan());
    }

    #[test]
    fn negative_zero_time_is_zero() {
        let zero = Datum::Time {
            negative: false,
            micros: 0,
        };
        let neg_zero = Datum::Time {
            negative: true,
            micros: 0,
        };
        assert_eq!(decode_all(decode_key, &key(&neg_zero)), zero);
        assert_eq!(decode_all(decode_value, &value(&neg_zero)), zero);
    }

    #[test]
    fn decoders_reject_corrupt_input() {
        assert!(matches!(
            decode_key(&mut &[0x02][..]),
            Err(CodecError::BadFlag { flag: 2, .. })
        ));
        assert!(matches!(
            decode_value(&mut &[0xEE][..]),
            Err(CodecError::BadFlag { .. })
        ));
        assert!(matches!(
            skip_value(&mut &[0x0A][..]),
            Err(CodecError::BadFlag { .. })
        ));
        // A Date whose packed value has a time part.
        let mut time_part = key(&Datum::DateTime {
            year: 2000,
            month: 1,
            day: 1,
            hour: 1,
            minute: 0,
            second: 0,
            micros: 0,
        });
        time_part[0] = flag::DATE;
        assert!(matches!(
            decode_key(&mut &time_part[..]),
            Err(CodecError::OutOfRange { .. })
        ));
        // Packed fields beyond their ranges can only come from corruption.
        let packed_year = |year: u64| (year * 13 + 1) << 46;
        for (packed, what) in [
            (packed_year(2000) | 24 << 36, "hour"),
            (packed_year(2000) | 60 << 24, "second"),
            (packed_year(2000) | 1_000_000, "microseconds"),
            (packed_year(10_000), "year"),
        ] {
            let mut bad = vec![flag::DATETIME];
            encode_u64(packed, &mut bad);
            assert_eq!(
                decode_key(&mut &bad[..]),
                Err(CodecError::OutOfRange { what })
            );
        }
        // Key encoding never writes NaN.
        let mut nan = vec![flag::FLOAT];
        encode_u64(f64::NAN.to_bits() ^ (1 << 63), &mut nan);
        assert_eq!(decode_key(&mut &nan[..]), Err(CodecError::NaN));
        // i64::MIN microseconds has no `Time` representation.
        let mut min_time = vec![flag::TIME];
        encode_i64(i64::MIN, &mut min_time);
        assert!(decode_key(&mut &min_time[..]).is_err());
        // A decimal value that is not a decimal.
        let bad_value = [flag::DECIMAL, 2, b'1', b'x'];
        assert!(decode_value(&mut &bad_value[..]).is_err());
        let not_utf8 = [flag::DECIMAL, 1, 0xFF];
        assert_eq!(
            decode_value(&mut &not_utf8[..]),
            Err(CodecError::BadUtf8 { what: "decimal" })
        );
    }

    #[test]
    fn decimal_normalization() {
        let cases = [
            ("0", "0"),
            ("-0.00", "0"),
            ("+0", "0"),
            ("000123.4500", "123.45"),
            ("-1", "-1"),
            ("-0.001", "-0.001"),
            (".5", "0.5"),
            ("5.", "5"),
            ("+7", "7"),
            ("100", "100"),
            ("1000.000", "1000"),
            ("0.000", "0"),
            ("10.01", "10.01"),
            (
                "99999999999999999999999999.99",
                "99999999999999999999999999.99",
            ),
        ];
        for (input, normalized) in cases {
            assert_eq!(normalize_decimal(input).unwrap(), normalized, "{input}");
            assert_eq!(
                decode_all(decode_decimal, &dec_key(input)),
                normalized,
                "{input}"
            );
        }
    }

    #[test]
    fn decimal_rejects_malformed() {
        for input in [
            "", "-", "+", ".", "-.", "1e5", "1.2.3", " 1", "1 ", "--1", "abc", "1_000",
        ] {
            assert!(normalize_decimal(input).is_err(), "{input:?}");
            assert!(encode_decimal(input, &mut Vec::new()).is_err(), "{input:?}");
        }
        let huge = format!("1{}", "0".repeat(MAX_DECIMAL_EXPONENT as usize));
        assert!(normalize_decimal(&huge).is_err());
        let tiny = format!("0.{}1", "0".repeat(MAX_DECIMAL_EXPONENT as usize + 1));
        assert!(normalize_decimal(&tiny).is_err());
    }

    #[test]
    fn decimal_order_samples() {
        let sorted = [
            "-100", "-99.99", "-10", "-1.5", "-1", "-0.51", "-0.5", "-0.05", "-0.001", "0",
            "0.001", "0.05", "0.5", "0.51", "1", "1.5", "10", "10.01", "99.99", "100",
        ];
        for w in sorted.windows(2) {
            assert!(dec_key(w[0]) < dec_key(w[1]), "{} < {}", w[0], w[1]);
        }
    }

    #[test]
    fn decimal_decode_rejects_unnormalized() {
        let encoded = |sign: u8, exponent: i64, digits: &[u8]| {
            let mut buf = vec![sign];
            encode_i64(exponent, &mut buf);
            buf.extend_from_slice(digits);
            buf.push(DIGITS_END);
            buf
        };
        for bad in [
            encoded(DECIMAL_POSITIVE, 1, b"10"),
            encoded(DECIMAL_POSITIVE, 1, b"01"),
            encoded(DECIMAL_POSITIVE, 1, b""),
            encoded(DECIMAL_POSITIVE, 1, b"1a"),
            encoded(DECIMAL_POSITIVE, i64::MAX, b"1"),
            encoded(0x03, 1, b"1"),
        ] {
            assert!(decode_decimal(&mut &bad[..]).is_err());
        }
    }

    // ---- Reference comparisons -----------------------------------------

    /// A decimal string as (negative, integer digits, fraction digits), with
    /// leading and trailing zeros stripped; zero is never negative.
    fn ref_parse(s: &str) -> (bool, String, String) {
        let (negative, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.trim_start_matches('+')),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        let int = int.trim_start_matches('0').to_owned();
        let frac = frac.trim_end_matches('0').to_owned();
        let zero = int.is_empty() && frac.is_empty();
        (negative && !zero, int, frac)
    }

    /// Compares two decimal strings numerically, digit by digit.
    pub(crate) fn ref_cmp_decimal(a: &str, b: &str) -> Ordering {
        let (a, b) = (ref_parse(a), ref_parse(b));
        let magnitude = |x: &(bool, String, String), y: &(bool, String, String)| {
            x.1.len()
                .cmp(&y.1.len())
                .then_with(|| x.1.cmp(&y.1))
                .then_with(|| x.2.cmp(&y.2))
        };
        match (a.0, b.0) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => magnitude(&a, &b),
            (true, true) => magnitude(&b, &a),
        }
    }

    fn flag_of(d: &Datum) -> u8 {
        key(d)[0]
    }

    /// The order the key encoding must reproduce: by flag across types, by
    /// value within one.
    pub(crate) fn ref_cmp(a: &Datum, b: &Datum) -> Ordering {
        use Datum::*;
        match (a, b) {
            (Int(x), Int(y)) => x.cmp(y),
            (UInt(x), UInt(y)) => x.cmp(y),
            (Float(x), Float(y)) => x.partial_cmp(y).unwrap(),
            (Bytes(x), Bytes(y)) => x.cmp(y),
            (Decimal(x), Decimal(y)) => ref_cmp_decimal(x, y),
            (
                Date { year, month, day },
                Date {
                    year: y2,
                    month: m2,
                    day: d2,
                },
            ) => (year, month, day).cmp(&(y2, m2, d2)),
            (
                DateTime {
                    year,
                    month,
                    day,
                    hour,
                    minute,
                    second,
                    micros,
                },
                DateTime {
                    year: y2,
                    month: mo2,
                    day: d2,
                    hour: h2,
                    minute: mi2,
                    second: s2,
                    micros: us2,
                },
            ) => (year, month, day, hour, minute, second, micros)
                .cmp(&(y2, mo2, d2, h2, mi2, s2, us2)),
            (
                Time {
                    negative: n1,
                    micros: m1,
                },
                Time {
                    negative: n2,
                    micros: m2,
                },
            ) => {
                let signed = |n: bool, m: u64| if n { -i128::from(m) } else { i128::from(m) };
                signed(*n1, *m1).cmp(&signed(*n2, *m2))
            }
            _ => flag_of(a).cmp(&flag_of(b)),
        }
    }

    /// What a key round trip returns for `d`.
    fn key_normal_form(d: &Datum) -> Datum {
        match d {
            Datum::Float(f) if *f == 0.0 => Datum::Float(0.0),
            Datum::Decimal(s) => Datum::Decimal(normalize_decimal(s).unwrap()),
            Datum::Time { micros: 0, .. } => Datum::Time {
                negative: false,
                micros: 0,
            },
            other => other.clone(),
        }
    }

    // ---- Strategies -----------------------------------------------------

    /// Decimal strings with signs, leading and trailing zeros, and a small
    /// alphabet so that equal and near-equal values are common.
    pub(crate) fn decimal_string() -> impl Strategy<Value = String> {
        prop_oneof![
            "[+-]?0{0,3}[0-9]{0,25}(\\.[0-9]{0,25}0{0,3})?",
            "-?0{0,2}[01]{0,4}(\\.0{0,2}[01]{0,4})?",
        ]
        .prop_filter("needs a digit", |s| s.bytes().any(|b| b.is_ascii_digit()))
    }

    /// A decimal from an integer mantissa and a scale, with its value as the
    /// mantissa (to be compared at a common scale).
    fn scaled_decimal() -> impl Strategy<Value = (String, i64, u32)> {
        (prop_oneof![any::<i64>(), -1000i64..1000], 0u32..=18).prop_map(|(m, scale)| {
            let digits = m.unsigned_abs().to_string();
            let padded = format!("{digits:0>width$}", width = scale as usize + 1);
            let (int, frac) = padded.split_at(padded.len() - scale as usize);
            let sign = if m < 0 { "-" } else { "" };
            let s = if scale == 0 {
                format!("{sign}{int}")
            } else {
                format!("{sign}{int}.{frac}")
            };
            (s, m, scale)
        })
    }

    fn date_parts() -> impl Strategy<Value = (u16, u8, u8)> {
        (
            prop_oneof![0u16..=9999, 1999u16..2001],
            0u8..=12,
            prop_oneof![0u8..=31, 1u8..3],
        )
    }

    pub(crate) fn datum() -> impl Strategy<Value = Datum> {
        prop_oneof![
            Just(Datum::Null),
            any::<i64>().prop_map(Datum::Int),
            (-3i64..3).prop_map(Datum::Int),
            any::<u64>().prop_map(Datum::UInt),
            (0u64..3).prop_map(Datum::UInt),
            any::<f64>()
                .prop_filter("NaN", |f| !f.is_nan())
                .prop_map(Datum::Float),
            prop_oneof![Just(0.0), Just(-0.0), Just(1.0), Just(-1.0)].prop_map(Datum::Float),
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(Datum::Bytes),
            proptest::collection::vec(0u8..2, 0..10).prop_map(Datum::Bytes),
            decimal_string().prop_map(Datum::Decimal),
            date_parts().prop_map(|(year, month, day)| Datum::Date { year, month, day }),
            (
                date_parts(),
                0u8..24,
                0u8..60,
                0u8..60,
                prop_oneof![0u32..1_000_000, 0u32..2]
            )
                .prop_map(|((year, month, day), hour, minute, second, micros)| {
                    Datum::DateTime {
                        year,
                        month,
                        day,
                        hour,
                        minute,
                        second,
                        micros,
                    }
                }),
            (any::<bool>(), prop_oneof![0u64..=i64::MAX as u64, 0u64..3])
                .prop_map(|(negative, micros)| Datum::Time { negative, micros }),
        ]
    }

    proptest! {
        #[test]
        fn key_round_trip(d in datum()) {
            prop_assert_eq!(decode_all(decode_key, &key(&d)), key_normal_form(&d));
        }

        #[test]
        fn value_round_trip(d in datum()) {
            let expected = match d {
                Datum::Time { micros: 0, .. } => Datum::Time { negative: false, micros: 0 },
                ref other => other.clone(),
            };
            let encoded = value(&d);
            prop_assert_eq!(decode_all(decode_value, &encoded), expected);
            let mut rest = &encoded[..];
            skip_value(&mut rest).unwrap();
            prop_assert!(rest.is_empty());
        }

        #[test]
        fn truncated_datums_never_decode(d in datum()) {
            assert_truncations_fail(decode_key, &key(&d));
            assert_truncations_fail(decode_value, &value(&d));
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = decode_key(&mut &bytes[..]);
            let _ = decode_value(&mut &bytes[..]);
            let _ = skip_value(&mut &bytes[..]);
        }

        #[test]
        fn decimal_round_trip(s in decimal_string()) {
            let decoded = decode_all(decode_decimal, &dec_key(&s));
            prop_assert_eq!(ref_cmp_decimal(&decoded, &s), Ordering::Equal);
            prop_assert_eq!(normalize_decimal(&s).unwrap(), decoded.clone());
            prop_assert_eq!(dec_key(&decoded), dec_key(&s));
        }

        #[test]
        fn decimal_order_matches_reference(a in decimal_string(), b in decimal_string()) {
            prop_assert_eq!(dec_key(&a).cmp(&dec_key(&b)), ref_cmp_decimal(&a, &b));
        }

        #[test]
        fn decimal_order_matches_scaled_mantissas(
            (a, ma, sa) in scaled_decimal(),
            (b, mb, sb) in scaled_decimal(),
        ) {
            let common = sa.max(sb);
            let va = i128::from(ma) * 10i128.pow(common - sa);
            let vb = i128::from(mb) * 10i128.pow(common - sb);
            prop_assert_eq!(dec_key(&a).cmp(&dec_key(&b)), va.cmp(&vb), "{} vs {}", a, b);
        }

        #[test]
        fn key_order_matches_reference(a in datum(), b in datum()) {
            prop_assert_eq!(key(&a).cmp(&key(&b)), ref_cmp(&a, &b), "{:?} vs {:?}", a, b);
        }

        #[test]
        fn key_tuples_sort_lexicographically(
            prefix in proptest::collection::vec(datum(), 0..3),
            a_tail in proptest::collection::vec(datum(), 0..3),
            b_tail in proptest::collection::vec(datum(), 0..3),
        ) {
            // A shared prefix makes the later fields decide often.
            let a = [&prefix[..], &a_tail[..]].concat();
            let b = [&prefix[..], &b_tail[..]].concat();
            let encode = |t: &[Datum]| t.iter().flat_map(key).collect::<Vec<u8>>();
            let expected = a
                .iter()
                .zip(&b)
                .map(|(x, y)| ref_cmp(x, y))
                .find(|o| o.is_ne())
                .unwrap_or(a.len().cmp(&b.len()));
            prop_assert_eq!(encode(&a).cmp(&encode(&b)), expected);
        }
    }
}
