//! Functions that change how a value is written: hexadecimal, other bases,
//! base64, digests (SHA1, CRC32) and IPv4 addresses.

use base64::Engine as _;
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::ScalarUDF;
use datafusion::scalar::ScalarValue;
use sha1::Digest as _;

use crate::functions::udf::{NULL, as_u64, bytes, function, integer, is_number, text};

/// The encoding functions, for registration with the query engine.
pub(crate) fn all() -> Vec<ScalarUDF> {
    use DataType::{Binary, Int64, UInt64, Utf8};
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
        function("inet_aton", &[1], UInt64, inet_aton),
        function("inet_ntoa", &[1], Utf8, inet_ntoa),
    ]
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
    fn strings_encoded_and_hashed() {
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
}
