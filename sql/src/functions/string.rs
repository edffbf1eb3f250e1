//! MySQL string functions the query engine has no counterpart for:
//! `FORMAT` (a number with thousands separators), `EXPORT_SET` and
//! `MAKE_SET` (strings chosen by the bits of a number), `CHARSET` and
//! `COLLATION` of a value, and `REGEXP_SUBSTR`. An argument the function
//! cannot read gives NULL, as in MySQL.

use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::ScalarUDF;
use datafusion::scalar::ScalarValue;

use crate::functions::udf::{NULL, as_u64, bytes, function, integer, text, variadic};
use crate::rules::number::{leading_double, round_decimal};

/// MySQL's largest number of decimals `FORMAT` shows.
const MAX_DECIMALS: i128 = 30;

/// The functions, for registration with the query engine.
pub(crate) fn all() -> Vec<ScalarUDF> {
    use DataType::Utf8;
    vec![
        function("format", &[2, 3], Utf8, format),
        function("export_set", &[3, 4, 5], Utf8, export_set),
        variadic("make_set", 2, 65, Utf8, make_set),
        function("charset", &[1], Utf8, charset),
        function("collation", &[1], Utf8, collation),
        function("regexp_substr", &[2, 3, 4, 5], Utf8, regexp_substr),
        function("quote", &[1], Utf8, quote),
        function("soundex", &[1], Utf8, soundex),
        function("insert", &[4], Utf8, insert),
    ]
}

fn string(v: &ScalarValue) -> Option<String> {
    String::from_utf8(bytes(v)?).ok()
}

/// A number's exact decimal text (a string by its leading number).
fn decimal_text(v: &ScalarValue) -> Option<String> {
    match v {
        v if v.is_null() => None,
        ScalarValue::Float64(Some(f)) if f.is_finite() => Some(format!("{f}")),
        ScalarValue::Float32(Some(f)) if f.is_finite() => Some(format!("{f}")),
        ScalarValue::Float64(_) | ScalarValue::Float32(_) => None,
        v if v.data_type().is_integer() || matches!(v.data_type(), DataType::Decimal128(..)) => {
            Some(v.to_string())
        }
        v => {
            let s = string(v)?;
            let f = leading_double(s.as_bytes());
            Some(format!("{f}"))
        }
    }
}

/// `FORMAT(x, d[, locale])`: `x` rounded half away from zero to `d`
/// decimals, with a comma every three integer digits (the `en_US` form,
/// whatever the locale).
fn format(a: &[ScalarValue]) -> ScalarValue {
    let (Some(number), Some(d)) = (decimal_text(&a[0]), integer(&a[1])) else {
        return NULL;
    };
    // A float's text may use an exponent.
    let plain = if number.contains(['e', 'E']) {
        match number.parse::<f64>() {
            Ok(f) => format!("{f:.30}"),
            Err(_) => return NULL,
        }
    } else {
        number
    };
    let Some(rounded) = round_decimal(&plain, d.clamp(0, MAX_DECIMALS) as usize) else {
        return NULL;
    };
    let (sign, digits) = match rounded.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", rounded.as_str()),
    };
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let mut grouped = String::with_capacity(int.len() + int.len() / 3);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    text(match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    })
}

/// `EXPORT_SET(bits, on, off[, separator[, count]])`.
fn export_set(a: &[ScalarValue]) -> ScalarValue {
    let (Some(bits), Some(on), Some(off)) = (integer(&a[0]), string(&a[1]), string(&a[2])) else {
        return NULL;
    };
    let separator = match a.get(3) {
        Some(s) => match string(s) {
            Some(s) => s,
            None => return NULL,
        },
        None => ",".into(),
    };
    let count = match a.get(4) {
        Some(n) => match integer(n) {
            Some(n) if (0..=64).contains(&n) => n as u32,
            Some(_) => 64,
            None => return NULL,
        },
        None => 64,
    };
    let bits = as_u64(bits);
    let words: Vec<&str> = (0..count)
        .map(|i| {
            if bits >> i & 1 == 1 {
                on.as_str()
            } else {
                off.as_str()
            }
        })
        .collect();
    text(words.join(&separator))
}

/// `MAKE_SET(bits, s1, s2, ...)`: the strings whose bit is set, NULLs
/// left out.
fn make_set(a: &[ScalarValue]) -> ScalarValue {
    let Some(bits) = integer(&a[0]) else {
        return NULL;
    };
    let bits = as_u64(bits);
    let chosen: Vec<String> = a[1..]
        .iter()
        .enumerate()
        .filter(|(i, _)| *i < 64 && bits >> i & 1 == 1)
        .filter_map(|(_, s)| string(s))
        .collect();
    text(chosen.join(","))
}

/// Whether a value is text (not a number, a date or binary).
pub(crate) fn is_text(v: &ScalarValue) -> bool {
    matches!(
        v.data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// `CHARSET(x)`: `utf8mb4` for text, `binary` for anything else.
fn charset(a: &[ScalarValue]) -> ScalarValue {
    text(if is_text(&a[0]) { "utf8mb4" } else { "binary" }.into())
}

/// `COLLATION(x)`: Duet's one collation for text, `binary` otherwise.
fn collation(a: &[ScalarValue]) -> ScalarValue {
    text(
        if is_text(&a[0]) {
            "utf8mb4_bin"
        } else {
            "binary"
        }
        .into(),
    )
}

/// `REGEXP_SUBSTR(expr, pattern[, position[, occurrence[, match_type]]])`:
/// the `occurrence`th match at or after character `position` (both from
/// 1), case-sensitive as the `utf8mb4_bin` collation is unless
/// `match_type` has `i` (`c`, `m`, `n` as in MySQL).
fn regexp_substr(a: &[ScalarValue]) -> ScalarValue {
    let (Some(subject), Some(pattern)) = (string(&a[0]), string(&a[1])) else {
        return NULL;
    };
    let arg = |i: usize, default: i128| match a.get(i) {
        Some(v) => integer(v),
        None => Some(default),
    };
    let (Some(position), Some(occurrence)) = (arg(2, 1), arg(3, 1)) else {
        return NULL;
    };
    let flags = match a.get(4) {
        Some(v) => match string(v) {
            Some(f) => f,
            None => return NULL,
        },
        None => String::new(),
    };
    let mut builder = regex::RegexBuilder::new(&pattern);
    for f in flags.chars() {
        match f {
            'c' => builder.case_insensitive(false),
            'i' => builder.case_insensitive(true),
            'm' => builder.multi_line(true),
            'n' => builder.dot_matches_new_line(true),
            'u' => &mut builder,
            _ => return NULL,
        };
    }
    let Ok(re) = builder.build() else {
        return NULL;
    };
    let chars = subject.chars().count() as i128;
    if position < 1 || position > chars.max(1) || occurrence < 1 {
        return NULL;
    }
    let start = subject
        .char_indices()
        .nth(position as usize - 1)
        .map_or(subject.len(), |(i, _)| i);
    re.find_iter(&subject[start..])
        .nth(occurrence as usize - 1)
        .map_or(ScalarValue::Utf8(None), |m| text(m.as_str().to_string()))
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
    fn numbers_formatted_as_mysql_does() {
        let f = |x: f64, d| format(&[ScalarValue::Float64(Some(x)), i(d)]);
        assert_eq!(f(12332.123456, 4), s("12,332.1235"));
        assert_eq!(f(12332.1, 4), s("12,332.1000"));
        assert_eq!(f(12332.2, 0), s("12,332"));
        assert_eq!(f(-1234567.891, 2), s("-1,234,567.89"));
        assert_eq!(f(0.5, 0), s("1"));
        assert_eq!(f(1e21, 0), s("1,000,000,000,000,000,000,000"));
        assert_eq!(format(&[i(1_000), i(-2)]), s("1,000"));
        assert_eq!(
            format(&[ScalarValue::Decimal128(Some(123_456_789), 12, 3), i(1)]),
            s("123,456.8")
        );
        assert_eq!(format(&[s("12345.678abc"), i(2)]), s("12,345.68"));
        assert!(format(&[ScalarValue::Null, i(2)]).is_null());
    }

    #[test]
    fn sets_chosen_by_bits() {
        assert_eq!(
            export_set(&[i(5), s("Y"), s("N"), s(","), i(4)]),
            s("Y,N,Y,N")
        );
        assert_eq!(
            export_set(&[i(6), s("1"), s("0"), s(""), i(10)]),
            s("0110000000")
        );
        assert_eq!(make_set(&[i(1), s("a"), s("b"), s("c")]), s("a"));
        assert_eq!(
            make_set(&[i(1 | 4), s("hello"), s("nice"), s("world")]),
            s("hello,world")
        );
        assert_eq!(
            make_set(&[
                i(1 | 4),
                s("hello"),
                s("nice"),
                ScalarValue::Null,
                s("world")
            ]),
            s("hello")
        );
        assert_eq!(make_set(&[i(0), s("a"), s("b")]), s(""));
    }

    #[test]
    fn character_sets_and_regular_expressions() {
        assert_eq!(charset(&[s("abc")]), s("utf8mb4"));
        assert_eq!(charset(&[i(1)]), s("binary"));
        assert_eq!(collation(&[s("abc")]), s("utf8mb4_bin"));
        assert_eq!(regexp_substr(&[s("abc def ghi"), s("[a-z]+")]), s("abc"));
        assert_eq!(
            regexp_substr(&[s("abc def ghi"), s("[a-z]+"), i(1), i(3)]),
            s("ghi")
        );
        assert_eq!(
            regexp_substr(&[s("abc def ghi"), s("[a-z]+"), i(6)]),
            s("ef")
        );
        assert!(regexp_substr(&[s("abc"), s("x")]).is_null());
        assert!(regexp_substr(&[s("ABC"), s("b")]).is_null());
        assert_eq!(
            regexp_substr(&[s("ABC"), s("b"), i(1), i(1), s("i")]),
            s("B")
        );
        assert!(regexp_substr(&[s("abc"), s("(")]).is_null());
    }

    #[test]
    fn strings_quoted_sounded_and_inserted() {
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
    }
}
