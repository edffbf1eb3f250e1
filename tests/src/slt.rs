//! A sqllogictest runner over the MySQL protocol, with the judging rules of
//! SQLite's original runner (see `shared/sqllogictest/README.md`): one value
//! per line; `I` prints an integer (truncated toward zero), `R` `%.3f`, `T`
//! text with `(empty)` for the empty string and `@` for anything outside
//! printable ASCII, `NULL` for NULL; `rowsort`/`valuesort`; results longer
//! than the hash threshold compared by MD5; `skipif`/`onlyif mysql`; a
//! failing record is counted, never fatal.

use md5::{Digest, Md5};
use mysql_async::prelude::*;

/// The engine name `onlyif`/`skipif` lines are matched against.
const ENGINE: &str = "mysql";

/// One record of a test file.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Statement {
        line: usize,
        sql: String,
        expect_error: bool,
        /// `statement error 1062`: the MySQL error code expected (Duet's own
        /// files; the corpus names none).
        error_code: Option<u16>,
    },
    Query {
        line: usize,
        sql: String,
        types: String,
        sort: Sort,
        expected: Vec<String>,
    },
    HashThreshold(usize),
    Halt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    None,
    Rows,
    Values,
}

/// Parses a test file, dropping the records a MySQL engine skips.
pub fn parse(text: &str) -> Vec<Record> {
    let lines: Vec<&str> = text.lines().collect();
    let mut records = Vec::new();
    let mut i = 0;
    let mut skip = false;
    while i < lines.len() {
        let line = lines[i].trim_end();
        let words: Vec<&str> = line.split_whitespace().collect();
        let first_line = i + 1;
        i += 1;
        match words.first().copied() {
            None => continue,
            Some(w) if w.starts_with('#') => continue,
            Some("skipif") => {
                skip |= words.get(1) == Some(&ENGINE);
                continue;
            }
            Some("onlyif") => {
                skip |= words.get(1) != Some(&ENGINE);
                continue;
            }
            Some("halt") => {
                if !std::mem::take(&mut skip) {
                    records.push(Record::Halt);
                }
                continue;
            }
            Some("hash-threshold") => {
                if let Some(n) = words.get(1).and_then(|n| n.parse().ok()) {
                    records.push(Record::HashThreshold(n));
                }
                continue;
            }
            Some("statement") => {
                let mut sql = Vec::new();
                while i < lines.len() && !lines[i].trim().is_empty() {
                    sql.push(lines[i]);
                    i += 1;
                }
                if !std::mem::take(&mut skip) {
                    records.push(Record::Statement {
                        line: first_line,
                        sql: sql.join("\n"),
                        expect_error: words.get(1) == Some(&"error"),
                        error_code: words.get(2).and_then(|w| w.parse().ok()),
                    });
                }
            }
            Some("query") => {
                let mut sql = Vec::new();
                while i < lines.len() && !lines[i].trim().is_empty() && lines[i].trim() != "----" {
                    sql.push(lines[i]);
                    i += 1;
                }
                let mut expected = Vec::new();
                if i < lines.len() && lines[i].trim() == "----" {
                    i += 1;
                    while i < lines.len() && !lines[i].trim().is_empty() {
                        expected.push(lines[i].trim_end().to_string());
                        i += 1;
                    }
                }
                let sort = match words.get(2).copied() {
                    Some("rowsort") => Sort::Rows,
                    Some("valuesort") => Sort::Values,
                    _ => Sort::None,
                };
                if !std::mem::take(&mut skip) {
                    records.push(Record::Query {
                        line: first_line,
                        sql: sql.join("\n"),
                        types: words.get(1).unwrap_or(&"").to_string(),
                        sort,
                        expected,
                    });
                }
            }
            Some(_) => {
                // An unknown directive: skip to the end of its block.
                while i < lines.len() && !lines[i].trim().is_empty() {
                    i += 1;
                }
                skip = false;
            }
        }
    }
    records
}

/// Prints one value as the original runner does for its column type.
pub fn format_value(value: Option<&[u8]>, ty: char) -> String {
    let Some(bytes) = value else {
        return "NULL".into();
    };
    let text = String::from_utf8_lossy(bytes);
    match ty {
        'I' => match text.trim().parse::<i64>() {
            Ok(i) => i.to_string(),
            Err(_) => {
                let f = leading_number(&text);
                format!("{}", f.trunc() as i64)
            }
        },
        'R' => format!("{:.3}", leading_number(&text)),
        _ => {
            if text.is_empty() {
                return "(empty)".into();
            }
            text.chars()
                .map(|c| if (' '..='~').contains(&c) { c } else { '@' })
                .collect()
        }
    }
}

/// The number a string starts with, as C's `atof` reads it (0 if none).
fn leading_number(s: &str) -> f64 {
    let s = s.trim_start();
    let mut end = 0;
    let bytes = s.as_bytes();
    let mut seen_digit = false;
    let mut seen_point = false;
    let mut seen_exp = false;
    while end < bytes.len() {
        let c = bytes[end];
        let ok = match c {
            b'0'..=b'9' => {
                seen_digit = true;
                true
            }
            b'+' | b'-' => end == 0 || matches!(bytes[end - 1], b'e' | b'E'),
            b'.' if !seen_point && !seen_exp => {
                seen_point = true;
                true
            }
            b'e' | b'E' if seen_digit && !seen_exp => {
                seen_exp = true;
                true
            }
            _ => false,
        };
        if !ok {
            break;
        }
        end += 1;
    }
    let mut candidate = &s[..end];
    while !candidate.is_empty() {
        if let Ok(v) = candidate.parse::<f64>() {
            return v;
        }
        candidate = &candidate[..candidate.len() - 1];
    }
    0.0
}

/// The MD5 of printed values, each followed by a newline, in lower-case hex.
pub fn hash_values(values: &[String]) -> String {
    let mut h = Md5::new();
    for v in values {
        h.update(v.as_bytes());
        h.update(b"\n");
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Judges a query's rows against its record; `Err` says why it failed.
pub fn judge(
    rows: Vec<Vec<Option<Vec<u8>>>>,
    types: &str,
    sort: Sort,
    expected: &[String],
    hash_threshold: usize,
) -> Result<(), String> {
    let types: Vec<char> = types.chars().collect();
    if let Some(r) = rows.first()
        && r.len() != types.len()
    {
        return Err(format!("{} columns, expected {}", r.len(), types.len()));
    }
    let mut printed: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .zip(&types)
                .map(|(v, t)| format_value(v.as_deref(), *t))
                .collect()
        })
        .collect();
    if sort == Sort::Rows {
        printed.sort();
    }
    let mut values: Vec<String> = printed.into_iter().flatten().collect();
    if sort == Sort::Values {
        values.sort();
    }
    let hashed = expected.len() == 1 && expected[0].contains(" values hashing to ");
    let actual = if hashed || (hash_threshold > 0 && values.len() > hash_threshold) {
        vec![format!(
            "{} values hashing to {}",
            values.len(),
            hash_values(&values)
        )]
    } else {
        values
    };
    if actual == expected {
        Ok(())
    } else {
        let show = |v: &[String]| v.iter().take(6).cloned().collect::<Vec<_>>().join(" | ");
        Err(format!(
            "got [{}], expected [{}]",
            show(&actual),
            show(expected)
        ))
    }
}

/// Outcome of one record (for comparing runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub line: usize,
    pub passed: bool,
    pub detail: String,
}

/// The result of running one file.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub passed: usize,
    pub failed: usize,
    pub outcomes: Vec<Outcome>,
}

/// How a runner sends a query record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// As text (`COM_QUERY`).
    Text,
    /// As a prepared statement, each literal compared with something lifted
    /// out into a parameter of its type (see [`lift_literals`]); a query
    /// with none goes as text.
    Prepared,
}

/// Runs `records` on `conn`, counting every record.
pub async fn run(conn: &mut mysql_async::Conn, records: &[Record], protocol: Protocol) -> Report {
    let mut report = Report::default();
    let mut threshold = 8;
    for record in records {
        let (line, result) = match record {
            Record::Halt => break,
            Record::HashThreshold(n) => {
                threshold = *n;
                continue;
            }
            Record::Statement {
                line,
                sql,
                expect_error,
                error_code,
            } => {
                let outcome = conn.query_drop(sql.as_str()).await;
                let result = match (outcome, expect_error) {
                    (Err(mysql_async::Error::Server(e)), true)
                        if error_code.is_some_and(|c| c != e.code) =>
                    {
                        Err(format!(
                            "failed with {} ({}), expected {}",
                            e.code,
                            e.message,
                            error_code.unwrap_or_default()
                        ))
                    }
                    (Ok(()), false) | (Err(_), true) => Ok(()),
                    (Ok(()), true) => Err("succeeded, expected an error".to_string()),
                    (Err(e), false) => Err(e.to_string()),
                };
                (*line, result)
            }
            Record::Query {
                line,
                sql,
                types,
                sort,
                expected,
            } => {
                let lifted = match protocol {
                    Protocol::Prepared => lift_literals(sql),
                    Protocol::Text => None,
                };
                let rows = match lifted {
                    Some((sql, params)) => exec_rows(conn, &sql, params).await,
                    None => query_rows(conn, sql).await,
                };
                let result = match rows {
                    Ok(rows) => judge(rows, types, *sort, expected, threshold),
                    Err(e) => Err(e),
                };
                (*line, result)
            }
        };
        let passed = result.is_ok();
        if passed {
            report.passed += 1;
        } else {
            report.failed += 1;
        }
        report.outcomes.push(Outcome {
            line,
            passed,
            detail: result.err().unwrap_or_default(),
        });
    }
    report
}

/// Every row of a text-protocol query, as raw values.
async fn query_rows(
    conn: &mut mysql_async::Conn,
    sql: &str,
) -> Result<Vec<Vec<Option<Vec<u8>>>>, String> {
    let rows: Vec<mysql_async::Row> = conn.query(sql).await.map_err(|e| e.to_string())?;
    Ok(raw_values(rows))
}

/// Every row of a prepared statement run with `params`, as raw values
/// (each typed value spelled as the text protocol would).
async fn exec_rows(
    conn: &mut mysql_async::Conn,
    sql: &str,
    params: Vec<mysql_async::Value>,
) -> Result<Vec<Vec<Option<Vec<u8>>>>, String> {
    let rows: Vec<mysql_async::Row> = conn.exec(sql, params).await.map_err(|e| e.to_string())?;
    Ok(raw_values(rows))
}

fn raw_values(rows: Vec<mysql_async::Row>) -> Vec<Vec<Option<Vec<u8>>>> {
    rows.into_iter()
        .map(|row| {
            row.unwrap()
                .into_iter()
                .map(|v| match v {
                    mysql_async::Value::NULL => None,
                    mysql_async::Value::Bytes(b) => Some(b),
                    other => Some(other.as_sql(true).trim_matches('\'').as_bytes().to_vec()),
                })
                .collect()
        })
        .collect()
}

/// `sql` with each number or string literal that directly follows a
/// comparison operator (`=`, `<>`, `!=`, `<`, `<=`, `>`, `>=`) replaced by
/// a `?`, and the literals as parameters (an integer as `BIGINT`, another
/// number as `DOUBLE`, a string as text); `None` if there is none.
pub fn lift_literals(sql: &str) -> Option<(String, Vec<mysql_async::Value>)> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::with_capacity(sql.len());
    let mut params = Vec::new();
    // The last token that was not white space, when it was an operator.
    let mut after_comparison = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            out.push(c);
            i += 1;
            continue;
        }
        if c == '\'' {
            // A string literal, '' standing for a quote.
            let mut value = String::new();
            let mut j = i + 1;
            let mut closed = false;
            while j < chars.len() {
                if chars[j] == '\'' {
                    if chars.get(j + 1) == Some(&'\'') {
                        value.push('\'');
                        j += 2;
                        continue;
                    }
                    closed = true;
                    break;
                }
                if chars[j] == '\\' {
                    // Backslash escapes: leave the literal alone.
                    closed = false;
                    break;
                }
                value.push(chars[j]);
                j += 1;
            }
            if after_comparison && closed {
                out.push('?');
                params.push(mysql_async::Value::Bytes(value.into_bytes()));
                i = j + 1;
            } else {
                let end = if closed { j + 1 } else { chars.len() };
                out.extend(&chars[i..end]);
                i = end;
            }
            after_comparison = false;
            continue;
        }
        if c.is_ascii_digit() && !(i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_'))
        {
            let mut j = i;
            while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '.') {
                j += 1;
            }
            let text: String = chars[i..j].iter().collect();
            let standalone = chars
                .get(j)
                .is_none_or(|n| !(n.is_alphanumeric() || *n == '_'));
            let value = if !standalone {
                None
            } else if let Ok(n) = text.parse::<i64>() {
                Some(mysql_async::Value::Int(n))
            } else {
                text.parse::<f64>().ok().map(mysql_async::Value::Double)
            };
            match value {
                Some(v) if after_comparison => {
                    out.push('?');
                    params.push(v);
                }
                _ => out.push_str(&text),
            }
            after_comparison = false;
            i = j;
            continue;
        }
        let operator: String = chars[i..]
            .iter()
            .take_while(|c| matches!(c, '<' | '>' | '=' | '!'))
            .collect();
        if !operator.is_empty() {
            after_comparison = matches!(
                operator.as_str(),
                "=" | "<>" | "!=" | "<" | "<=" | ">" | ">="
            );
            out.push_str(&operator);
            i += operator.chars().count();
            continue;
        }
        after_comparison = false;
        out.push(c);
        i += 1;
    }
    (!params.is_empty()).then_some((out, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_with_conditions_and_results() {
        let text = "hash-threshold 8\n\nstatement ok\nCREATE TABLE t(a INT)\n\nskipif mysql\nstatement ok\nSQLITE ONLY\n\nonlyif mysql # comment\nquery IT rowsort label-1\nSELECT a,\n b FROM t\n----\n1\nx\n\nonlyif sqlite\nquery I nosort\nSELECT 1\n----\n1\n\nhalt\n";
        let records = parse(text);
        assert_eq!(records.len(), 4, "{records:?}");
        assert_eq!(records[0], Record::HashThreshold(8));
        assert!(
            matches!(&records[1], Record::Statement { sql, expect_error: false, .. } if sql == "CREATE TABLE t(a INT)")
        );
        assert!(
            matches!(&records[2], Record::Query { sql, types, sort: Sort::Rows, expected, line: 11 }
            if sql == "SELECT a,\n b FROM t" && types == "IT" && expected == &["1", "x"])
        );
        assert_eq!(records[3], Record::Halt);
    }

    #[test]
    fn values_print_like_the_original_runner() {
        assert_eq!(format_value(Some(b"-3.9"), 'I'), "-3");
        assert_eq!(format_value(Some(b"12abc"), 'I'), "12");
        assert_eq!(format_value(Some(b"2"), 'R'), "2.000");
        assert_eq!(format_value(Some(b"-1.23456"), 'R'), "-1.235");
        assert_eq!(format_value(Some(b""), 'T'), "(empty)");
        assert_eq!(format_value(Some("é".as_bytes()), 'T'), "@");
        assert_eq!(format_value(None, 'I'), "NULL");
    }

    #[test]
    fn compared_literals_lift_into_parameters() {
        use mysql_async::Value as V;
        let (sql, params) =
            lift_literals("SELECT a, 5 FROM t WHERE b > 23 AND c1 = 'it''s' OR d<=2.5 ORDER BY 1")
                .unwrap();
        assert_eq!(
            sql,
            "SELECT a, 5 FROM t WHERE b > ? AND c1 = ? OR d<=? ORDER BY 1"
        );
        assert_eq!(
            params,
            vec![V::Int(23), V::Bytes(b"it's".to_vec()), V::Double(2.5)]
        );
        for untouched in [
            "SELECT a FROM t WHERE b > -3",
            "SELECT a FROM t WHERE b > 1e5",
            "SELECT a FROM t WHERE x2 = col3 ORDER BY 1",
            "SELECT a FROM t WHERE b = 'a\\'",
        ] {
            assert_eq!(lift_literals(untouched), None, "{untouched}");
        }
    }

    #[test]
    fn results_sort_and_hash() {
        let rows = vec![
            vec![Some(b"2".to_vec()), Some(b"b".to_vec())],
            vec![Some(b"1".to_vec()), Some(b"a".to_vec())],
        ];
        let expected: Vec<String> = ["1", "a", "2", "b"].map(String::from).to_vec();
        assert!(judge(rows.clone(), "IT", Sort::Rows, &expected, 8).is_ok());
        assert!(judge(rows.clone(), "IT", Sort::None, &expected, 8).is_err());
        let hashed = vec![format!("4 values hashing to {}", hash_values(&expected))];
        assert!(judge(rows.clone(), "IT", Sort::Rows, &hashed, 2).is_ok());
        assert_eq!(hash_values(&[]), "d41d8cd98f00b204e9800998ecf8427e");
        assert!(
            judge(rows, "I", Sort::Rows, &expected, 8).is_err(),
            "column count"
        );
    }
}
