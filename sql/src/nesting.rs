//! How deep a statement may nest, so that no statement can overflow the
//! stack of the thread that plans and runs it.
//!
//! The parser limits its own recursion (a statement nested in more
//! parentheses than that is a syntax error), but it builds chains of
//! operators without recursion: `1 + 1 + … + 1`, `a = 1 OR a = 2 OR …`, `a
//! UNION b UNION …` nest as deep as they are long, and everything after the
//! parser walks them recursively. So, once a statement is parsed:
//!
//! - chains of `AND` and of `OR` become balanced trees (the same truth
//!   value, evaluated in the same order: both are associative), so a
//!   condition of 10,000 alternatives nests 14 deep;
//! - the statement's nesting (expressions within expressions, queries
//!   within queries and set operations) is measured, never deeper than the
//!   limit, and a statement deeper than [`MAX_DEPTH`] is refused with error
//!   1436, or with 1473 if its subqueries nest deeper than
//!   [`MAX_SUBQUERY_NESTING`] (what the query engine can plan in time),
//!   after being taken apart piece by piece without recursion (even
//!   dropping it whole would recurse as deep as it nests).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, Query, SetExpr, Statement, Value, Values, Visit, VisitMut, Visitor,
    VisitorMut,
};

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::dialect::MySql;
use crate::error::{Error, Result};

/// The deepest nesting a statement may have: expressions within
/// expressions, plus queries and set operations around them. Statements
/// run on threads whose stack fits it with room to spare (see the server's
/// statement threads).
pub const MAX_DEPTH: usize = 1000;

/// How deep the parser may recurse (its own limit, for what it parses
/// recursively: parentheses, function arguments, subqueries); sqlparser's
/// default of 50 refuses 25 nested parentheses.
pub const PARSER_RECURSION: usize = 256;

/// A statement this long may hold an operator chain long enough that the
/// parser's own dropping of it (on a syntax error) would recurse too deep:
/// its tokens are looked at before it is parsed.
const SCAN_FROM: usize = 64 * 1024;

/// The deepest a statement may nest, by the count of its operators, for
/// the parser to be given it at all.
pub const PARSE_DEPTH: usize = 64 * 1024;

/// Refuses (error 1436) a long statement whose operators could nest deeper
/// than [`PARSE_DEPTH`], before the parser builds it: an operator chain
/// nests as deep as it has operators, a list item or a parenthesis starts
/// a new one, and the chains of the parentheses a token is in add up.
pub(crate) fn scan(sql: &str) -> Result<()> {
    if sql.len() < SCAN_FROM {
        return Ok(());
    }
    let Ok(tokens) = Tokenizer::new(&MySql, sql).tokenize() else {
        // The parser will say what is wrong, before it builds anything.
        return Ok(());
    };
    // The operators of the current chain at each parenthesis level.
    let mut levels = vec![0usize];
    let mut depth = 0usize;
    for token in &tokens {
        match token {
            Token::LParen => levels.push(0),
            Token::RParen => {
                depth -= levels.pop().unwrap_or(0);
                if levels.is_empty() {
                    levels.push(0);
                }
            }
            Token::Comma | Token::SemiColon => {
                depth -= std::mem::take(levels.last_mut().unwrap_or(&mut 0));
            }
            Token::Whitespace(_)
            | Token::Number(..)
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::HexStringLiteral(_)
            | Token::NationalStringLiteral(_) => {}
            Token::Word(w) if w.keyword == Keyword::NoKeyword || !is_infix_word(w.keyword) => {}
            _ => {
                if let Some(n) = levels.last_mut() {
                    *n += 1;
                }
                depth += 1;
                if depth > PARSE_DEPTH {
                    return Err(Error::StackOverrun { limit: MAX_DEPTH });
                }
            }
        }
    }
    Ok(())
}

/// Keywords that continue an operator chain.
fn is_infix_word(k: Keyword) -> bool {
    matches!(
        k,
        Keyword::AND
            | Keyword::OR
            | Keyword::XOR
            | Keyword::NOT
            | Keyword::IS
            | Keyword::IN
            | Keyword::BETWEEN
            | Keyword::LIKE
            | Keyword::RLIKE
            | Keyword::REGEXP
            | Keyword::DIV
            | Keyword::MOD
            | Keyword::COLLATE
            | Keyword::MEMBER
            | Keyword::ESCAPE
            | Keyword::UNION
            | Keyword::EXCEPT
            | Keyword::INTERSECT
    )
}

/// `statement`, with its `AND`/`OR` chains balanced, if it nests no deeper
/// than [`MAX_DEPTH`]; error 1436 if it does.
pub(crate) fn check(mut statement: Statement) -> Result<Statement> {
    let mut measure = Measure::default();
    // Balancing first keeps long conditions from counting as deep.
    let _ = VisitMut::visit(&mut statement, &mut Balance);
    if statement.visit(&mut measure).is_continue() {
        return Ok(statement);
    }
    dismantle(statement);
    Err(if measure.too_many_subqueries {
        Error::TooManyNestedSubqueries {
            limit: MAX_SUBQUERY_NESTING,
        }
    } else {
        Error::StackOverrun { limit: MAX_DEPTH }
    })
}

/// The operator of `e` if it is `AND` or `OR`.
fn logical(e: &Expr) -> Option<BinaryOperator> {
    match e {
        Expr::BinaryOp { op, .. } if matches!(op, BinaryOperator::And | BinaryOperator::Or) => {
            Some(op.clone())
        }
        _ => None,
    }
}

/// Chains of a logical operator at most this long stay as written.
const BALANCE_FROM: usize = 16;

/// Balances every long chain of one logical operator.
struct Balance;

impl VisitorMut for Balance {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        let Some(op) = logical(e) else {
            return ControlFlow::Continue(());
        };
        // The parser nests a chain on the left; parentheses (`Nested`) end it.
        let mut length = 1;
        let mut at = &*e;
        while let Expr::BinaryOp { left, op: o, .. } = at
            && *o == op
        {
            length += 1;
            at = left;
        }
        if length <= BALANCE_FROM {
            return ControlFlow::Continue(());
        }
        let mut operands = Vec::with_capacity(length);
        let mut at = std::mem::replace(e, Expr::value(Value::Null));
        loop {
            match at {
                Expr::BinaryOp { left, op: o, right } if o == op => {
                    operands.push(*right);
                    at = *left;
                }
                first => {
                    operands.push(first);
                    break;
                }
            }
        }
        operands.reverse();
        *e = balanced(operands, &op);
        ControlFlow::Continue(())
    }
}

/// `operands` joined by `op` as a balanced tree, in their order.
fn balanced(mut operands: Vec<Expr>, op: &BinaryOperator) -> Expr {
    while operands.len() > 1 {
        let mut joined = Vec::with_capacity(operands.len().div_ceil(2));
        let mut it = operands.into_iter();
        while let Some(left) = it.next() {
            joined.push(match it.next() {
                Some(right) => Expr::BinaryOp {
                    left: Box::new(left),
                    op: op.clone(),
                    right: Box::new(right),
                },
                None => left,
            });
        }
        operands = joined;
    }
    operands.pop().unwrap_or_else(|| Expr::value(Value::Null))
}

/// The length of the chain of set operations on the left of `body`.
fn set_chain(body: &SetExpr) -> usize {
    let mut n = 0;
    let mut at = body;
    while let SetExpr::SetOperation { left, .. } = at {
        n += 1;
        at = left;
    }
    n
}

/// How deep subqueries within expressions (scalar, `IN`, `EXISTS`) may
/// nest (MySQL's 1473 beyond its own limit): the query engine checks each
/// level again for every level around it, which costs twice as much per
/// level.
pub const MAX_SUBQUERY_NESTING: usize = 16;

/// Whether `e` holds a query.
fn is_subquery(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. }
    )
}

/// Measures the nesting, and stops the walk as soon as it exceeds the
/// limit (so its own recursion stays within it).
#[derive(Default)]
struct Measure {
    depth: usize,
    /// The depth each query (entered, not yet left) added.
    queries: Vec<usize>,
    /// Subqueries within expressions, entered and not yet left.
    subqueries: usize,
    /// Set when the walk stopped at too many nested subqueries.
    too_many_subqueries: bool,
}

impl Visitor for Measure {
    type Break = ();

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        let added = 1 + set_chain(&q.body);
        self.queries.push(added);
        self.enter(added)
    }

    fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.depth -= self.queries.pop().unwrap_or(0);
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        if is_subquery(e) {
            self.subqueries += 1;
            if self.subqueries > MAX_SUBQUERY_NESTING {
                self.too_many_subqueries = true;
                return ControlFlow::Break(());
            }
        }
        self.enter(1)
    }

    fn post_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        if is_subquery(e) {
            self.subqueries -= 1;
        }
        self.depth -= 1;
        ControlFlow::Continue(())
    }
}

impl Measure {
    fn enter(&mut self, levels: usize) -> ControlFlow<()> {
        self.depth += levels;
        if self.depth > MAX_DEPTH {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

/// How deep a piece is walked before what lies below is cut off and taken
/// apart on its own.
const CUT_DEPTH: usize = 64;

/// A part of a statement being taken apart.
enum Piece {
    Expr(Box<Expr>),
    Set(Box<SetExpr>),
}

/// Drops a statement of any depth without recursing deeper than
/// [`CUT_DEPTH`]: every walk cuts off what lies deeper, and every query's
/// body, into pieces taken apart the same way.
fn dismantle(mut statement: Statement) {
    let mut cut = Cut::default();
    let _ = VisitMut::visit(&mut statement, &mut cut);
    drop(statement);
    while let Some(piece) = cut.pieces.pop() {
        match piece {
            Piece::Set(set) => match *set {
                SetExpr::SetOperation { left, right, .. } => {
                    cut.pieces.push(Piece::Set(left));
                    cut.pieces.push(Piece::Set(right));
                }
                mut set => {
                    cut.depth = 0;
                    let _ = VisitMut::visit(&mut set, &mut cut);
                }
            },
            Piece::Expr(mut e) => {
                cut.depth = 0;
                let _ = VisitMut::visit(e.as_mut(), &mut cut);
            }
        }
    }
}

#[derive(Default)]
struct Cut {
    depth: usize,
    pieces: Vec<Piece>,
}

impl VisitorMut for Cut {
    type Break = ();

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        let empty = SetExpr::Values(Values {
            explicit_row: false,
            value_keyword: false,
            rows: Vec::new(),
        });
        self.pieces
            .push(Piece::Set(std::mem::replace(&mut q.body, Box::new(empty))));
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        self.depth += 1;
        if self.depth >= CUT_DEPTH {
            let below = std::mem::replace(e, Expr::value(Value::Null));
            self.pieces.push(Piece::Expr(Box::new(below)));
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _: &mut Expr) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::parser::Parser;

    fn parse(sql: &str) -> Statement {
        Parser::parse_sql(&MySql, sql).unwrap().remove(0)
    }

    fn depth(statement: &Statement) -> usize {
        #[derive(Default)]
        struct Deepest(usize, usize);
        impl Visitor for Deepest {
            type Break = ();
            fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
                self.0 += 1;
                self.1 = self.1.max(self.0);
                ControlFlow::Continue(())
            }
            fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
                self.0 -= 1;
                ControlFlow::Continue(())
            }
        }
        let mut d = Deepest::default();
        let _ = statement.visit(&mut d);
        d.1
    }

    #[test]
    fn long_conditions_are_balanced_in_order() {
        let alternatives: Vec<String> = (0..10_000).map(|i| format!("a = {i}")).collect();
        let sql = format!("SELECT * FROM t WHERE {}", alternatives.join(" OR "));
        let checked = check(parse(&sql)).unwrap();
        assert!(depth(&checked) <= 20, "depth {}", depth(&checked));
        let text = checked.to_string();
        let at = |s: &str| text.find(s).unwrap();
        assert!(at("a = 0 ") < at("a = 1 ") && at("a = 5000 ") < at("a = 9999"));
        // Short chains stay as written, parentheses end a chain.
        let sql = "SELECT a OR (b OR c) AND d OR e";
        assert_eq!(check(parse(sql)).unwrap().to_string(), sql);
    }

    #[test]
    fn long_statements_are_scanned_for_depth_before_parsing() {
        let rows: Vec<String> = (0..20_000).map(|i| format!("({i}, 'x' + 1)")).collect();
        assert!(scan(&format!("INSERT INTO t VALUES {}", rows.join(", "))).is_ok());
        let alternatives: Vec<String> = (0..10_000).map(|i| format!("a = {i}")).collect();
        assert!(
            scan(&format!(
                "SELECT * FROM t WHERE {}",
                alternatives.join(" OR ")
            ))
            .is_ok()
        );
        let deep = format!("SELECT 1{} FROM", " + 1".repeat(PARSE_DEPTH + 1));
        assert_eq!(scan(&deep).unwrap_err().code(), 1436);
        // Chains in parentheses within chains add up.
        let level = format!("1{} + (", " + 1".repeat(PARSE_DEPTH / 30));
        let nested = format!("SELECT {}1{}", level.repeat(40), ")".repeat(40));
        assert_eq!(scan(&nested).unwrap_err().code(), 1436);
    }

    #[test]
    fn statements_deeper_than_the_limit_are_refused_and_dropped() {
        // Run where the stack fits the limit, as statements do.
        let worker = std::thread::Builder::new().stack_size(256 << 20);
        worker
            .spawn(|| {
                let ok = format!("SELECT 1{}", " + 1".repeat(MAX_DEPTH - 10));
                assert!(check(parse(&ok)).is_ok());
                let nested =
                    |n: usize| format!("SELECT {}1{}", "(SELECT ".repeat(n), ")".repeat(n));
                assert!(check(parse(&nested(MAX_SUBQUERY_NESTING))).is_ok());
                let e = check(parse(&nested(MAX_SUBQUERY_NESTING + 1))).unwrap_err();
                assert_eq!(e.code(), 1473);
                for sql in [
                    format!("SELECT 1{}", " + 1".repeat(200_000)),
                    format!("SELECT 1{}", " UNION ALL SELECT 1".repeat(20_000)),
                    format!(
                        "SELECT * FROM t WHERE a IN (SELECT 1{})",
                        " - 1".repeat(100_000)
                    ),
                    format!("SELECT a{} FROM t", " IS NULL".repeat(50_000)),
                ] {
                    let e = check(parse(&sql)).unwrap_err();
                    assert_eq!(e.code(), 1436, "{}", &sql[..40]);
                }
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
