//! `Datum`, one SQL value, and its two encodings.
//!
//! The key encoding is memcomparable and goes into index keys and clustered
//! row keys: encodings of two datums of the same type compare like the
//! values, NULL sorts before everything, and datums concatenate into tuples
//! that sort field by field. The value encoding is compact and goes inside
//! rows. Both start with a type flag byte (the same flags in both), so a
//! decoder needs no schema.

use super::decimal::Decimal;
use super::error::CodecError;
use super::number::{
    decode_bytes, decode_f64, decode_i64, decode_u64, decode_var_i64, decode_var_u64, encode_bytes,
    encode_f64, encode_i64, encode_u64, encode_var_i64, encode_var_u64, read_array, read_slice,
    read_u8,
};

pub use super::decimal::{decode_decimal, encode_decimal, normalize_decimal};

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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Ordering;

    use super::super::decimal::tests::{decimal_string, ref_cmp_decimal};

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

    // ---- Reference comparisons -----------------------------------------

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
