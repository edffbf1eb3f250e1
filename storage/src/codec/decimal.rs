//! The exact decimal of `Datum::Decimal`: the text it is written in, its
//! normalized form, and its memcomparable key encoding. The datum flag and
//! the compact value encoding (which keeps the string exactly as given, once
//! it is known to be well formed) belong to [`super::datum`].
//!
//! Text format: an optional sign, digits, and an optional point followed by
//! digits — `[+-]?[0-9]*(\.[0-9]*)?` with at least one digit (`"-12.340"`,
//! `".5"`, `"5."`). No exponent notation, spaces or digit separators. The
//! value's decimal exponent may be at most 4096 either way: far beyond any
//! SQL precision, and a bound on what a corrupt key can make the decoder
//! allocate.
//!
//! Normalization ([`normalize_decimal`], and what [`decode_decimal`] returns):
//! no leading zeros before the point (but a `0` before a leading point), no
//! trailing zeros after it, no point for an integer, no sign for zero —
//! `"000123.4500"` → `"123.45"`, `"-0.00"` → `"0"`, `".5"` → `"0.5"`.
//!
//! Key encoding ([`encode_decimal`], [`decode_decimal`]): writing the value as
//! `±0.D × 10^E` with significant digits `D`, a sign byte (negative, zero,
//! positive, in that order), then for non-zero values `E`, the digits of `D`
//! and a terminator sorting below every digit, all inverted for negatives.
//! Encodings compare like the values and are prefix-free; the decoder
//! accepts only what the encoder produces.

use super::error::CodecError;
use super::number::{decode_i64, encode_i64, read_array, read_u8};

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
pub(super) struct Decimal<'a> {
    negative: bool,
    exponent: i64,
    head: &'a str,
    tail: &'a str,
}

impl<'a> Decimal<'a> {
    /// Parses `[+-]?[0-9]*(\.[0-9]*)?` with at least one digit.
    pub(super) fn parse(s: &'a str) -> Result<Self, CodecError> {
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
/// [`decode_key`](super::datum::decode_key) returns.
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

    fn dec_key(s: &str) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_decimal(s, &mut buf).unwrap();
        buf
    }

    /// Decodes one whole [`dec_key`] encoding, checking nothing is left over.
    fn dec_decode(bytes: &[u8]) -> String {
        let mut rest = bytes;
        let s = decode_decimal(&mut rest).unwrap();
        assert!(rest.is_empty(), "{} bytes left", rest.len());
        s
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
            assert_eq!(dec_decode(&dec_key(input)), normalized, "{input}");
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

    proptest! {
        #[test]
        fn decimal_round_trip(s in decimal_string()) {
            let decoded = dec_decode(&dec_key(&s));
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
    }
}
