//! From text to one parsed statement: the MySQL dialect's parser with
//! MySQL's syntax-error message, the depth check of [`crate::nesting`],
//! the spellings the parser does not know, placeholder numbering, the text
//! of an expression as the client typed it, and the first words of a
//! statement (its kind, and the statements Duet reads by their words).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{self, Expr, Statement, VisitMut, VisitorMut};
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Span;

use crate::dialect::MySql;
use crate::error::{Error, Result};
use crate::nesting;

/// Statements MySQL has and Duet does not: whatever their body, they are
/// refused by name (1235), not as a syntax error.
const UNSUPPORTED_KINDS: &[&str] = &[
    "CREATE TRIGGER",
    "DROP TRIGGER",
    "CREATE PROCEDURE",
    "DROP PROCEDURE",
    "CREATE FUNCTION",
    "DROP FUNCTION",
    "CREATE EVENT",
    "DROP EVENT",
    "CALL",
    "LOAD DATA",
    "HANDLER",
];

/// Parses exactly one statement, with MySQL's message for a syntax error;
/// one that nests too deep is refused (see [`crate::nesting`]).
pub(crate) fn parse_one(sql: &str) -> Result<Statement> {
    nesting::scan(sql)?;
    let shared = share_mode(sql);
    let sql = shared.as_deref().unwrap_or(sql);
    let mut statements = Parser::new(&MySql)
        .with_recursion_limit(nesting::PARSER_RECURSION)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| {
            let kind = statement_kind(sql);
            if UNSUPPORTED_KINDS
                .iter()
                .any(|k| kind == *k || kind.split(' ').next() == Some(*k))
            {
                Error::not_supported(kind)
            } else {
                syntax_error(sql, &e.to_string())
            }
        })?;
    match statements.len() {
        0 => Err(Error::EmptyQuery),
        1 => nesting::check(statements.remove(0)),
        _ => {
            // Taken apart one by one, however deep.
            for statement in statements {
                let _ = nesting::check(statement);
            }
            Err(Error::Parse {
                message: "multiple statements in one query need CLIENT_MULTI_STATEMENTS, which Duet does not offer".into(),
            })
        }
    }
}

/// Turns a parser message ending in `at Line: L, Column: C` into MySQL's
/// `near '…' at line L`.
pub(crate) fn syntax_error(sql: &str, message: &str) -> Error {
    let position = message.rfind("Line: ").and_then(|at| {
        let rest = &message[at + 6..];
        let (line, rest) = rest.split_once(", Column: ")?;
        let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
        Some((line.parse::<usize>().ok()?, column.parse::<usize>().ok()?))
    });
    let (line, near) = match position {
        Some((line, column)) => {
            let text = sql.lines().nth(line.saturating_sub(1)).unwrap_or("");
            let start: String = text.chars().skip(column.saturating_sub(1)).collect();
            let rest_lines: Vec<&str> = sql.lines().skip(line).collect();
            let mut near = start;
            for l in rest_lines {
                near.push('\n');
                near.push_str(l);
            }
            (line, near.chars().take(80).collect::<String>())
        }
        None => (1, String::new()),
    };
    Error::Parse {
        message: format!("near '{near}' at line {line}"),
    }
}

/// Replaces each `?` with `$1`, `$2`, … in textual order; returns how many.
pub(crate) fn number_placeholders(stmt: &mut Statement) -> usize {
    struct Numberer(usize);
    impl VisitorMut for Numberer {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Expr::Value(v) = expr
                && let ast::Value::Placeholder(p) = &mut v.value
                && p == "?"
            {
                self.0 += 1;
                *p = format!("${}", self.0);
            }
            ControlFlow::Continue(())
        }
    }
    let mut n = Numberer(0);
    let _ = stmt.visit(&mut n);
    n.0
}

/// The text a client typed for an expression, which MySQL uses as its column name.
pub(crate) fn expr_text(sql: &str, expr: &Expr) -> String {
    use datafusion::sql::sqlparser::ast::Spanned;
    let span: Span = expr.span();
    let Some((start, mut end)) = span_offsets(sql, span) else {
        return expr.to_string();
    };
    // Some spans stop short of closing parentheses (`COUNT(*)` ends at its
    // name, `f(a, (b)` before the last `)`): take the rest of the group.
    let mut depth: i64 = sql[start..end]
        .chars()
        .map(|c| match c {
            '(' => 1,
            ')' => -1,
            _ => 0,
        })
        .sum();
    if depth == 0 && matches!(expr, Expr::Function(_)) && !sql[start..end].ends_with(')') {
        let gap = sql[end..].len() - sql[end..].trim_start().len();
        if sql[end + gap..].starts_with('(') {
            end += gap;
        }
    }
    for c in sql[end..].chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => break,
            _ => {}
        }
        end += c.len_utf8();
        if depth == 0 {
            break;
        }
    }
    sql[start..end].to_string()
}

/// The byte offsets of a span in `sql`.
fn span_offsets(sql: &str, span: Span) -> Option<(usize, usize)> {
    if span.start.line == 0 || span.end.line == 0 {
        return None;
    }
    let offset = |line: u64, column: u64| -> Option<usize> {
        let mut at = 0;
        for (i, l) in sql.split_inclusive('\n').enumerate() {
            if i as u64 + 1 == line {
                let col = usize::try_from(column).ok()?.checked_sub(1)?;
                return Some(at + l.char_indices().nth(col).map_or(l.len(), |(b, _)| b));
            }
            at += l.len();
        }
        None
    };
    let (start, end) = (
        offset(span.start.line, span.start.column)?,
        offset(span.end.line, span.end.column)?,
    );
    (start < end).then_some((start, end))
}

/// The first words of a statement, naming the feature an unsupported one needs.
pub(crate) fn statement_kind(sql: &str) -> String {
    let words: Vec<String> = sql
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .take(2)
        .map(|w| w.to_ascii_uppercase())
        .collect();
    words.join(" ")
}

/// `… LOCK IN SHARE MODE` (MySQL's older spelling, which the parser does
/// not know) as `… FOR SHARE`.
fn share_mode(sql: &str) -> Option<String> {
    let trimmed = sql.trim_end().trim_end_matches(';').trim_end();
    let words: Vec<&str> = trimmed.rsplitn(5, char::is_whitespace).collect();
    let [mode, share, in_, lock, rest] = words.as_slice() else {
        return None;
    };
    let is = |w: &str, want: &str| w.eq_ignore_ascii_case(want);
    (is(lock, "LOCK") && is(in_, "IN") && is(share, "SHARE") && is(mode, "MODE"))
        .then(|| format!("{} FOR SHARE", rest.trim_end()))
}

/// The words of a statement the parser does not know, without a final `;`.
pub(crate) fn words(sql: &str) -> Vec<&str> {
    sql.trim()
        .trim_end_matches(';')
        .split_whitespace()
        .collect()
}

/// Whether `sql` is exactly `expected` (upper-case words), in any case.
pub(crate) fn is_words(sql: &str, expected: &[&str]) -> bool {
    let words = words(sql);
    words.len() == expected.len()
        && words
            .iter()
            .zip(expected)
            .all(|(w, e)| w.eq_ignore_ascii_case(e))
}

/// The statement inside a versioned comment `/*!NNNNN … */` (which MySQL
/// runs, and dump files are full of), else the text itself.
pub(crate) fn versioned_body(sql: &str) -> &str {
    let text = sql.trim().trim_end_matches(';').trim_end();
    match text.strip_prefix("/*!").and_then(|r| r.strip_suffix("*/")) {
        Some(inner) => inner
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .trim(),
        None => text,
    }
}
