//! The statements Duet reads by their words, because the parser does not
//! know them (`SHOW ENGINES`, `SHOW TABLE STATUS`, `LOCK TABLES`,
//! `ALTER TABLE … SET COLUMNAR REPLICA`, …), and small readers of a
//! parsed statement the session dispatches on.

use datafusion::sql::sqlparser::ast::{self, Expr, ObjectName, SelectItem, SetExpr, Statement};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::dialect::MySql;
use crate::error::{Error, Result};
use crate::nesting;
use crate::parse::{is_words, parse_one, syntax_error, versioned_body, words};
use crate::value::Value;

/// The `n` of a `MAX_EXECUTION_TIME(n)` hint in a hint comment's text.
pub(super) fn max_execution_time_hint(text: &str) -> Option<u64> {
    let upper = text.to_ascii_uppercase();
    let at = upper.find("MAX_EXECUTION_TIME")?;
    let rest = upper[at + "MAX_EXECUTION_TIME".len()..].trim_start();
    let inner = rest.strip_prefix('(')?;
    inner[..inner.find(')')?].trim().parse().ok()
}

pub(super) fn table_name(t: &ast::TableFactor) -> Option<String> {
    match t {
        ast::TableFactor::Table { name, .. } => Some(name_parts(name).join(".")),
        _ => Some("(subquery)".into()),
    }
}

/// The unquoted parts of a dotted name.
pub(super) fn name_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| {
            p.as_ident()
                .map_or_else(|| p.to_string(), |i| i.value.clone())
        })
        .collect()
}

pub(super) fn use_target(u: &ast::Use) -> Result<String> {
    match u {
        ast::Use::Object(name) | ast::Use::Database(name) | ast::Use::Schema(name) => {
            Ok(name_parts(name).join("."))
        }
        other => Err(Error::not_supported(other.to_string())),
    }
}

pub(super) fn transaction_mode(mode: &ast::TransactionMode) -> (&'static str, Value) {
    use ast::{TransactionAccessMode as A, TransactionIsolationLevel as L, TransactionMode as M};
    match mode {
        M::AccessMode(A::ReadOnly) => ("transaction_read_only", Value::Int(1)),
        M::AccessMode(A::ReadWrite) => ("transaction_read_only", Value::Int(0)),
        M::IsolationLevel(level) => {
            let name = match level {
                L::ReadUncommitted => "READ-UNCOMMITTED",
                L::ReadCommitted => "READ-COMMITTED",
                L::Serializable => "SERIALIZABLE",
                _ => "REPEATABLE-READ",
            };
            ("transaction_isolation", Value::Str(name.into()))
        }
    }
}

/// The expressions of `DO expr, …`, which the parser does not know.
pub(super) fn do_expressions(sql: &str) -> Option<&str> {
    let trimmed = sql.trim_start();
    let (first, rest) = trimmed.split_once(char::is_whitespace)?;
    first.eq_ignore_ascii_case("DO").then_some(rest)
}

/// The database of `SHOW CREATE {DATABASE|SCHEMA} [IF NOT EXISTS] db`,
/// which the parser does not know.
pub(super) fn show_create_database_target(sql: &str) -> Option<String> {
    let words = words(sql);
    let is = |w: &str, want: &str| w.eq_ignore_ascii_case(want);
    let (show, create, kind, rest) = match words.as_slice() {
        [show, create, kind, rest @ ..] => (show, create, kind, rest),
        _ => return None,
    };
    if !(is(show, "SHOW") && is(create, "CREATE") && (is(kind, "DATABASE") || is(kind, "SCHEMA"))) {
        return None;
    }
    let name = match rest {
        [name] => name,
        [if_, not, exists, name] if is(if_, "IF") && is(not, "NOT") && is(exists, "EXISTS") => name,
        _ => return None,
    };
    Some(name.trim_matches('`').to_string())
}

/// `SHOW TABLE STATUS [{FROM|IN} db] [LIKE 'p']` (which the parser does
/// not know) as the query of `information_schema.tables` it stands for,
/// with the database and the pattern as its parameters; `None` for another
/// statement.
pub(super) fn table_status_query(
    sql: &str,
    current_db: Option<&str>,
) -> Option<Result<(String, Vec<Value>)>> {
    let trimmed = sql.trim().trim_end_matches(';').trim_end();
    let mut rest = trimmed;
    for word in ["SHOW", "TABLE", "STATUS"] {
        let (first, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        if !first.eq_ignore_ascii_case(word) {
            return None;
        }
        rest = after.trim_start();
    }
    let mut database = current_db.map(str::to_string);
    let (first, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if first.eq_ignore_ascii_case("FROM") || first.eq_ignore_ascii_case("IN") {
        let after = after.trim_start();
        let (name, tail) = after.split_once(char::is_whitespace).unwrap_or((after, ""));
        if name.is_empty() {
            return Some(Err(syntax_error(sql, "a database name is missing")));
        }
        database = Some(name.trim_matches('`').to_string());
        rest = tail.trim_start();
    }
    let Some(database) = database else {
        return Some(Err(Error::NoDatabaseSelected));
    };
    let mut params = vec![Value::Str(database)];
    let (first, pattern) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let mut condition = None;
    let filter = if rest.is_empty() {
        ""
    } else if first.eq_ignore_ascii_case("LIKE") {
        // One string literal, read as the parser reads one.
        let Some(literal) = string_literal(pattern) else {
            return Some(Err(syntax_error(sql, pattern)));
        };
        params.push(Value::Str(literal));
        " AND table_name LIKE ?"
    } else if first.eq_ignore_ascii_case("WHERE") {
        // One expression on the output columns, as MySQL takes one; the
        // rows are filtered as a derived table.
        let Some(expr) = one_expression(pattern) else {
            return Some(Err(syntax_error(sql, pattern)));
        };
        condition = Some(expr);
        ""
    } else {
        return Some(Err(syntax_error(sql, rest)));
    };
    let query = format!(
        "SELECT table_name AS `Name`, engine AS `Engine`, version AS `Version`, \
             row_format AS `Row_format`, table_rows AS `Rows`, \
             avg_row_length AS `Avg_row_length`, data_length AS `Data_length`, \
             max_data_length AS `Max_data_length`, index_length AS `Index_length`, \
             data_free AS `Data_free`, auto_increment AS `Auto_increment`, \
             create_time AS `Create_time`, update_time AS `Update_time`, \
             check_time AS `Check_time`, table_collation AS `Collation`, \
             checksum AS `Checksum`, create_options AS `Create_options`, \
             table_comment AS `Comment` FROM information_schema.tables \
             WHERE table_schema = ?{filter}"
    );
    let query = match condition {
        Some(condition) => {
            format!("SELECT * FROM ({query}) AS `status` WHERE {condition} ORDER BY `Name`")
        }
        None => format!("{query} ORDER BY table_name"),
    };
    Some(Ok((query, params)))
}

/// `text` as exactly one expression, printed back.
pub(super) fn one_expression(text: &str) -> Option<String> {
    let mut parser = Parser::new(&MySql).try_with_sql(text).ok()?;
    let expr = parser.parse_expr().ok()?;
    parser.expect_token(&Token::EOF).ok()?;
    Some(expr.to_string())
}

/// `text` if it is exactly one string literal: its value.
pub(super) fn string_literal(text: &str) -> Option<String> {
    let Ok(Statement::Query(q)) = parse_one(&format!("SELECT {text}")) else {
        return None;
    };
    let SetExpr::Select(select) = *q.body else {
        return None;
    };
    match select.projection.as_slice() {
        [SelectItem::UnnamedExpr(Expr::Value(v))] => match &v.value {
            ast::Value::SingleQuotedString(p) | ast::Value::DoubleQuotedString(p) => {
                Some(p.clone())
            }
            _ => None,
        },
        _ => None,
    }
}

/// `SHOW GRANTS [FOR user]` (which the parser does not know): the user
/// named, `None` for the current one; `Some(None)` is returned for this
/// statement without `FOR`.
pub(super) fn show_grants_target(sql: &str) -> Option<Option<String>> {
    let words = words(sql);
    let is = |w: &str, want: &str| w.eq_ignore_ascii_case(want);
    match words.as_slice() {
        [show, grants] if is(show, "SHOW") && is(grants, "GRANTS") => Some(None),
        [show, grants, for_, user]
            if is(show, "SHOW") && is(grants, "GRANTS") && is(for_, "FOR") =>
        {
            let user = user.trim_end_matches("()");
            Some((!is(user, "CURRENT_USER")).then(|| user.to_string()))
        }
        _ => None,
    }
}

/// A name as one word of a statement: `t`, `db.t`, with or without
/// backquotes.
pub(super) fn dotted_name(word: &str) -> ObjectName {
    ObjectName::from(
        word.split('.')
            .map(|w| ast::Ident::new(w.trim_matches('`')))
            .collect::<Vec<_>>(),
    )
}

/// `LOCK TABLES …` (true) or `UNLOCK TABLES` (false).
pub(super) fn table_lock_statement(sql: &str) -> Option<bool> {
    let words = words(versioned_body(sql));
    let is = |w: &str, want: &str| w.eq_ignore_ascii_case(want);
    let tables = |w: &str| is(w, "TABLES") || is(w, "TABLE");
    match words.as_slice() {
        [lock, kind, _, ..] if is(lock, "LOCK") && tables(kind) => Some(true),
        [unlock, kind] if is(unlock, "UNLOCK") && tables(kind) => Some(false),
        _ => None,
    }
}

/// The table of `ALTER TABLE t {DISABLE|ENABLE} KEYS`.
pub(super) fn keys_toggle_target(sql: &str) -> Option<ObjectName> {
    let words = words(versioned_body(sql));
    let is = |w: &str, want: &str| w.eq_ignore_ascii_case(want);
    let [alter, table, name, toggle, keys] = words.as_slice() else {
        return None;
    };
    if !(is(alter, "ALTER")
        && is(table, "TABLE")
        && (is(toggle, "DISABLE") || is(toggle, "ENABLE"))
        && is(keys, "KEYS"))
    {
        return None;
    }
    Some(dotted_name(name))
}

/// `SHOW [STORAGE] ENGINES`, which the parser does not know.
pub(super) fn is_show_engines(sql: &str) -> bool {
    is_words(sql, &["SHOW", "ENGINES"]) || is_words(sql, &["SHOW", "STORAGE", "ENGINES"])
}

/// The table of `SHOW {INDEX|INDEXES|KEYS} {FROM|IN} t [{FROM|IN} db]`,
/// which the parser does not know.
pub(super) fn show_index_target(sql: &str) -> Option<ObjectName> {
    let words = words(sql);
    let [show, kind, from, rest @ ..] = words.as_slice() else {
        return None;
    };
    let is = |w: &str, options: &[&str]| options.iter().any(|o| w.eq_ignore_ascii_case(o));
    if !is(show, &["SHOW"])
        || !is(kind, &["INDEX", "INDEXES", "KEYS"])
        || !is(from, &["FROM", "IN"])
    {
        return None;
    }
    let unquote = |w: &str| w.trim_matches('`').to_string();
    let parts: Vec<String> = match rest {
        [table] => table.split('.').map(unquote).collect(),
        [table, from_db, db] if is(from_db, &["FROM", "IN"]) => vec![unquote(db), unquote(table)],
        _ => return None,
    };
    Some(ObjectName::from(
        parts.into_iter().map(ast::Ident::new).collect::<Vec<_>>(),
    ))
}

/// The table of `SHOW TABLE t REGIONS` (TiDB's; the parser does not know
/// it).
pub(super) fn show_table_regions_target(sql: &str) -> Option<ObjectName> {
    let words = words(sql);
    let [show, table, name, regions] = words.as_slice() else {
        return None;
    };
    let is = |w: &str, word: &str| w.trim_end_matches(';').eq_ignore_ascii_case(word);
    if !is(show, "SHOW") || !is(table, "TABLE") || !is(regions, "REGIONS") {
        return None;
    }
    Some(dotted_name(name))
}

/// `SPLIT TABLE t BETWEEN (lo, …) AND (hi, …) REGIONS n` or `SPLIT TABLE t
/// BY (v, …), …` (TiDB's pre-split; the parser does not know it).
#[derive(Debug)]
pub(super) struct SplitTable {
    pub table: ObjectName,
    pub cut: SplitCut,
}

#[derive(Debug)]
pub(super) enum SplitCut {
    Between {
        lower: Vec<Expr>,
        upper: Vec<Expr>,
        regions: Box<Expr>,
    },
    By(Vec<Vec<Expr>>),
}

/// The statement, if `sql` starts with `SPLIT TABLE`.
pub(super) fn split_table_statement(sql: &str) -> Option<Result<SplitTable>> {
    let words = words(sql);
    let is = |w: &&str, want: &str| w.eq_ignore_ascii_case(want);
    match words.as_slice() {
        [split, table, ..] if is(split, "SPLIT") && is(table, "TABLE") => {
            Some(parse_split_table(sql))
        }
        _ => None,
    }
}

fn parse_split_table(sql: &str) -> Result<SplitTable> {
    nesting::scan(sql)?;
    let syntax = |e: ParserError| syntax_error(sql, &e.to_string());
    let mut p = Parser::new(&MySql)
        .with_recursion_limit(nesting::PARSER_RECURSION)
        .try_with_sql(sql)
        .map_err(syntax)?;
    fn tuple(p: &mut Parser<'_>) -> std::result::Result<Vec<Expr>, ParserError> {
        p.expect_token(&Token::LParen)?;
        let values = p.parse_comma_separated(Parser::parse_expr)?;
        p.expect_token(&Token::RParen)?;
        Ok(values)
    }
    // `SPLIT TABLE`, checked by the caller.
    p.next_token();
    p.next_token();
    let table = p.parse_object_name(false).map_err(syntax)?;
    let cut = if p.parse_keyword(Keyword::INDEX) {
        return Err(Error::not_supported("SPLIT TABLE … INDEX"));
    } else if p.parse_keyword(Keyword::BETWEEN) {
        let lower = tuple(&mut p).map_err(syntax)?;
        p.expect_keyword_is(Keyword::AND).map_err(syntax)?;
        let upper = tuple(&mut p).map_err(syntax)?;
        let regions_word = p.next_token();
        if !matches!(&regions_word.token, Token::Word(w) if w.value.eq_ignore_ascii_case("REGIONS"))
        {
            return Err(syntax_error(
                sql,
                &format!("Expected: REGIONS, found: {regions_word}"),
            ));
        }
        let regions = Box::new(p.parse_expr().map_err(syntax)?);
        SplitCut::Between {
            lower,
            upper,
            regions,
        }
    } else if p.parse_keyword(Keyword::BY) {
        SplitCut::By(p.parse_comma_separated(tuple).map_err(syntax)?)
    } else {
        let found = p.peek_token();
        return Err(syntax_error(
            sql,
            &format!("Expected: BETWEEN or BY, found: {found}"),
        ));
    };
    while p.consume_token(&Token::SemiColon) {}
    p.expect_token(&Token::EOF).map_err(syntax)?;
    Ok(SplitTable { table, cut })
}

/// `START TRANSACTION WITH CONSISTENT SNAPSHOT`, which the parser lacks.
pub(super) fn is_consistent_snapshot_start(sql: &str) -> bool {
    is_words(
        sql,
        &["START", "TRANSACTION", "WITH", "CONSISTENT", "SNAPSHOT"],
    )
}

/// `ALTER TABLE t SET COLUMNAR REPLICA n` (Duet's own statement, which
/// the MySQL grammar does not have): the table and `n` (`None` if `n` is
/// not a number).
pub(super) fn columnar_replica_target(sql: &str) -> Option<(ObjectName, Option<u64>)> {
    let words = words(sql);
    let [alter, table, name, set, columnar, replica, count] = words.as_slice() else {
        return None;
    };
    let is = |w: &str, want: &str| w.eq_ignore_ascii_case(want);
    if !(is(alter, "ALTER")
        && is(table, "TABLE")
        && is(set, "SET")
        && is(columnar, "COLUMNAR")
        && is(replica, "REPLICA"))
    {
        return None;
    }
    Some((dotted_name(name), count.parse().ok()))
}

pub(super) fn is_show_warnings(sql: &str) -> bool {
    let words: Vec<String> = sql
        .split_whitespace()
        .take(3)
        .map(|w| w.to_ascii_uppercase())
        .collect();
    words.len() == 2 && words[0] == "SHOW" && words[1].trim_end_matches(';') == "WARNINGS"
}

/// A plain `SELECT` with no table (or `FROM DUAL`): the session evaluates it.
pub(super) fn is_dual(q: &ast::Query) -> bool {
    let SetExpr::Select(select) = q.body.as_ref() else {
        return false;
    };
    // A subquery needs the query engine even without a FROM clause.
    let mut subquery = false;
    let _ = ast::Visit::visit(q.body.as_ref(), &mut SubqueryFinder(&mut subquery));
    !subquery
        && (select.from.is_empty()
            || (select.from.len() == 1
                && table_name(&select.from[0].relation)
                    .is_some_and(|t| t.eq_ignore_ascii_case("dual"))))
}

pub(super) struct SubqueryFinder<'a>(&'a mut bool);

impl ast::Visitor for SubqueryFinder<'_> {
    type Break = ();
    fn pre_visit_query(&mut self, _: &ast::Query) -> std::ops::ControlFlow<()> {
        *self.0 = true;
        std::ops::ControlFlow::Break(())
    }
}
