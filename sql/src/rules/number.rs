//! Numbers read from text the way MySQL reads them: the numeric prefix of
//! a string (one rule for every path that turns a string into a number:
//! constant folding, the query engines' comparisons and casts, and stored
//! values), the integer prefix of an integer cast, and decimal rounding.
//! No DataFusion and no session here.

/// The double a string reads as in arithmetic and comparisons: its
/// [`numeric_prefix`], or 0 when it has none (`'12abc'` → 12,
/// `'1e3'` → 1000, `'abc'` → 0).
pub(crate) fn leading_double(bytes: &[u8]) -> f64 {
    let text = String::from_utf8_lossy(bytes);
    numeric_prefix(&text).parse().unwrap_or(0.0)
}

/// The longest prefix of `s` (after spaces) that reads as a number: an
/// optional sign, digits with at most one point, and an exponent only when
/// digits follow its `e` (`' -1.5e2x'` → `-1.5e2`, `'1.2.3'` → `1.2`,
/// `'1e'` → `1`, `'abc'` → empty).
pub(crate) fn numeric_prefix(s: &str) -> &str {
    let s = s.trim_start();
    let b = s.as_bytes();
    let mut end = 0;
    let mut i = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    let mut seen_digit = false;
    let mut seen_point = false;
    while i < b.len() {
        match b[i] {
            b'0'..=b'9' => {
                seen_digit = true;
                end = i + 1;
            }
            b'.' if !seen_point => seen_point = true,
            b'e' | b'E' if seen_digit => {
                let mut j = i + 1;
                if matches!(b.get(j), Some(b'-' | b'+')) {
                    j += 1;
                }
                let digits = b[j..].iter().take_while(|c| c.is_ascii_digit()).count();
                if digits > 0 {
                    end = j + digits;
                }
                break;
            }
            _ => break,
        }
        i += 1;
    }
    &s[..end]
}

/// The integer a string starts with (after spaces), as MySQL reads it for
/// an integer cast: `'2.7'` is 2, `'abc'` is 0.
pub(crate) fn leading_integer(bytes: &[u8]) -> i64 {
    let text = String::from_utf8_lossy(bytes);
    let t = text.trim_start();
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut n: i128 = 0;
    for c in digits.bytes().take_while(u8::is_ascii_digit) {
        n = (n * 10 + i128::from(c - b'0')).min(i128::from(u64::MAX));
    }
    saturate(if negative { -n } else { n })
}

/// `v` clamped to the range of a signed 64-bit integer.
pub(crate) fn saturate(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// Rounds a decimal literal to `scale` fractional digits, half away from
/// zero, and normalizes it (`-0012.345`, 2 → `-12.35`).
pub(crate) fn round_decimal(text: &str, scale: usize) -> Option<String> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let mut kept: Vec<u8> = int
        .bytes()
        .chain(frac.bytes().chain(std::iter::repeat(b'0')).take(scale))
        .collect();
    if kept.iter().any(|b| !b.is_ascii_digit()) {
        return None;
    }
    if frac.as_bytes().get(scale).is_some_and(|d| *d >= b'5') {
        let mut i = kept.len();
        loop {
            if i == 0 {
                kept.insert(0, b'1');
                break;
            }
            i -= 1;
            if kept[i] == b'9' {
                kept[i] = b'0';
            } else {
                kept[i] += 1;
                break;
            }
        }
    }
    let int_len = kept.len() - scale;
    let int_part = std::str::from_utf8(&kept[..int_len])
        .ok()?
        .trim_start_matches('0');
    let int_part = if int_part.is_empty() { "0" } else { int_part };
    let frac_part = std::str::from_utf8(&kept[int_len..]).ok()?;
    let zero = int_part == "0" && frac_part.bytes().all(|b| b == b'0');
    let sign = if negative && !zero { "-" } else { "" };
    Some(if scale == 0 {
        format!("{sign}{int_part}")
    } else {
        format!("{sign}{int_part}.{frac_part}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_read_as_their_numeric_prefix() {
        for (text, prefix, double) in [
            ("12abc", "12", 12.0),
            ("  -1.5e2x", "-1.5e2", -150.0),
            ("hello", "", 0.0),
            ("1e", "1", 1.0),
            ("1e3", "1e3", 1000.0),
            ("1.2.3", "1.2", 1.2),
            (".5", ".5", 0.5),
            ("-.5e1", "-.5e1", -5.0),
            ("012", "012", 12.0),
            ("+7", "+7", 7.0),
            ("-", "", 0.0),
            ("", "", 0.0),
        ] {
            assert_eq!(numeric_prefix(text), prefix, "{text:?}");
            assert_eq!(leading_double(text.as_bytes()), double, "{text:?}");
        }
    }

    #[test]
    fn integer_casts_read_the_integer_prefix() {
        assert_eq!(leading_integer(b" 2.7"), 2);
        assert_eq!(leading_integer(b"1e3"), 1);
        assert_eq!(leading_integer(b"-12x"), -12);
        assert_eq!(leading_integer(b"abc"), 0);
        assert_eq!(leading_integer(b"99999999999999999999999"), i64::MAX);
    }
}
