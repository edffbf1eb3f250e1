//! The SQL dialect every statement is parsed with: sqlparser's MySQL
//! dialect, with MySQL's own operator precedence and associativity.
//!
//! sqlparser's precedences follow PostgreSQL's: `DIV` swallows the rest of
//! the expression, `XOR` binds tighter than `=`, `&` tighter than `<<`, `^`
//! looser than `+`, `||` is string concatenation and `!` is not an
//! operator at all. MySQL's table (highest first):
//!
//! ```text
//! - ~ ! (unary)   ^   * / DIV % MOD   + -   << >>   &   |
//! = <=> <> != < <= > >= IS   (BETWEEN LIKE REGEXP IN MEMBER OF)
//! NOT   AND &&   XOR   OR ||   :=
//! ```
//!
//! A predicate (`BETWEEN`, `LIKE`, `REGEXP`, `IN`, `MEMBER OF`) binds one
//! step tighter than a comparison, as MySQL's grammar has it: the right of
//! a comparison is a predicate (`a = b LIKE c` is `a = (b LIKE c)`) while
//! a predicate's operands hold no comparison (`a LIKE b = c` is
//! `(a LIKE b) = c`). Binary operators associate to the left, `:=` to the
//! right.
//!
//! Every tree this dialect builds prints back (sqlparser's `Display`) to
//! text that parses into the same tree with this dialect, so rewrites that
//! go through text keep the meaning: `||` and `&&` become `OR` and `AND`
//! (same precedence), `MOD` becomes `%`, and `!x` becomes `(NOT x)`.
//! Everything else is the MySQL dialect's: it reports itself as
//! `MySqlDialect` to the parser, which keeps its MySQL-only syntax.

use std::any::TypeId;

use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, Statement, UnaryOperator};
use datafusion::sql::sqlparser::dialect::{Dialect, MySqlDialect, Precedence};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

/// MySQL's precedence levels, higher binds tighter.
mod level {
    /// Operands of unary `-`, `+`, `~` and `!`: no binary operator.
    pub const UNARY: u8 = 90;
    /// `->` and `->>` (a column path, as tight as a column).
    pub const JSON_PATH: u8 = 95;
    pub const CARET: u8 = 80;
    pub const MUL: u8 = 70;
    pub const ADD: u8 = 60;
    pub const SHIFT: u8 = 55;
    pub const BIT_AND: u8 = 50;
    pub const BIT_OR: u8 = 45;
    pub const PREDICATE: u8 = 42;
    pub const COMPARISON: u8 = 40;
    pub const NOT: u8 = 30;
    pub const AND: u8 = 20;
    pub const XOR: u8 = 15;
    pub const OR: u8 = 10;
    pub const ASSIGN: u8 = 5;
}

/// sqlparser's MySQL dialect with MySQL's operator precedence.
#[derive(Debug, Default, Clone, Copy)]
pub struct MySql;

/// The dialect whose behaviour this one keeps.
const BASE: MySqlDialect = MySqlDialect {};

impl MySql {
    /// The precedence of the infix operator at the parser's next token, if
    /// it is one whose level MySQL sets apart from sqlparser's.
    fn infix_level(parser: &Parser<'_>) -> Option<u8> {
        use level::*;
        let keyword = |n: usize| match &parser.peek_nth_token_ref(n).token {
            Token::Word(w) => Some(w.keyword),
            _ => None,
        };
        Some(match &parser.peek_token_ref().token {
            Token::Caret => CARET,
            Token::Mul | Token::Div | Token::Mod => MUL,
            Token::Plus | Token::Minus => ADD,
            Token::ShiftLeft | Token::ShiftRight => SHIFT,
            Token::Ampersand => BIT_AND,
            Token::Pipe => BIT_OR,
            Token::Eq
            | Token::DoubleEq
            | Token::Neq
            | Token::Lt
            | Token::LtEq
            | Token::Gt
            | Token::GtEq
            | Token::Spaceship => COMPARISON,
            Token::Overlap => AND,
            Token::StringConcat => OR,
            Token::Assignment => ASSIGN,
            Token::Arrow | Token::LongArrow => JSON_PATH,
            // `!` only starts an operand; as an infix token it ends one.
            Token::ExclamationMark => 0,
            Token::Word(_) => match keyword(0)? {
                Keyword::DIV | Keyword::MOD => MUL,
                Keyword::IS => COMPARISON,
                Keyword::BETWEEN
                | Keyword::LIKE
                | Keyword::RLIKE
                | Keyword::REGEXP
                | Keyword::IN
                | Keyword::MEMBER => PREDICATE,
                Keyword::NOT => match keyword(1)? {
                    Keyword::BETWEEN
                    | Keyword::LIKE
                    | Keyword::RLIKE
                    | Keyword::REGEXP
                    | Keyword::IN
                    | Keyword::MEMBER => PREDICATE,
                    _ => return None,
                },
                Keyword::AND => AND,
                Keyword::XOR => XOR,
                Keyword::OR => OR,
                _ => return None,
            },
            _ => return None,
        })
    }

    /// A binary operator of `left` whose right operand parses at `level`
    /// (one above its own for left associativity).
    fn binary(
        parser: &mut Parser<'_>,
        left: &Expr,
        op: BinaryOperator,
        level: u8,
    ) -> Result<Expr, ParserError> {
        parser.advance_token();
        let right = parser.parse_subexpr(level)?;
        Ok(Expr::BinaryOp {
            left: Box::new(left.clone()),
            op,
            right: Box::new(right),
        })
    }

    fn unary(parser: &mut Parser<'_>, op: UnaryOperator) -> Result<Expr, ParserError> {
        parser.advance_token();
        let operand = parser.parse_subexpr(level::UNARY)?;
        Ok(Expr::UnaryOp {
            op,
            expr: Box::new(operand),
        })
    }
}

impl Dialect for MySql {
    fn dialect(&self) -> TypeId {
        TypeId::of::<MySqlDialect>()
    }

    fn get_next_precedence(&self, parser: &Parser<'_>) -> Option<Result<u8, ParserError>> {
        MySql::infix_level(parser).map(Ok)
    }

    fn prec_value(&self, prec: Precedence) -> u8 {
        use level::*;
        match prec {
            Precedence::Period => 100,
            Precedence::DoubleColon => 98,
            Precedence::AtTz => 97,
            Precedence::PgOther => JSON_PATH,
            Precedence::MulDivModOp => MUL,
            Precedence::PlusMinus => ADD,
            Precedence::Caret => SHIFT,
            Precedence::Ampersand => BIT_AND,
            Precedence::Pipe => BIT_OR,
            Precedence::Between | Precedence::Like => PREDICATE,
            Precedence::Eq | Precedence::Is | Precedence::Colon => COMPARISON,
            Precedence::UnaryNot => NOT,
            Precedence::And => AND,
            Precedence::Xor => XOR,
            Precedence::Or => OR,
        }
    }

    fn parse_prefix(&self, parser: &mut Parser<'_>) -> Option<Result<Expr, ParserError>> {
        let op = match &parser.peek_token_ref().token {
            Token::Minus => UnaryOperator::Minus,
            // MySQL's unary plus is no operation at all, whatever the
            // operand's type.
            Token::Plus => {
                return Some(MySql::unary(parser, UnaryOperator::Plus).map(|e| match e {
                    Expr::UnaryOp { expr, .. } => Expr::Nested(expr),
                    other => other,
                }));
            }
            Token::Tilde => UnaryOperator::BitwiseNot,
            Token::ExclamationMark => {
                // `!x` is `NOT x` bound as tightly as a unary minus; the
                // parentheses keep that binding when the tree is printed.
                return Some(
                    MySql::unary(parser, UnaryOperator::Not).map(|e| Expr::Nested(Box::new(e))),
                );
            }
            _ => return None,
        };
        Some(MySql::unary(parser, op))
    }

    fn parse_infix(
        &self,
        parser: &mut Parser<'_>,
        expr: &Expr,
        precedence: u8,
    ) -> Option<Result<Expr, ParserError>> {
        let op = match &parser.peek_token_ref().token {
            Token::Word(w) if w.keyword == Keyword::DIV => BinaryOperator::MyIntegerDivide,
            Token::Word(w) if w.keyword == Keyword::MOD => BinaryOperator::Modulo,
            Token::StringConcat => BinaryOperator::Or,
            Token::Overlap => BinaryOperator::And,
            // Right-associative: `@a := @b := 1`.
            Token::Assignment => {
                return Some(MySql::binary(
                    parser,
                    expr,
                    BinaryOperator::Assignment,
                    level::ASSIGN - 1,
                ));
            }
            _ => return None,
        };
        Some(MySql::binary(parser, expr, op, precedence))
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        BASE.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        BASE.is_identifier_part(ch)
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        BASE.is_delimited_identifier_start(ch)
    }

    fn identifier_quote_style(&self, identifier: &str) -> Option<char> {
        BASE.identifier_quote_style(identifier)
    }

    fn supports_string_literal_backslash_escape(&self) -> bool {
        BASE.supports_string_literal_backslash_escape()
    }

    fn supports_string_literal_concatenation(&self) -> bool {
        BASE.supports_string_literal_concatenation()
    }

    fn ignores_wildcard_escapes(&self) -> bool {
        BASE.ignores_wildcard_escapes()
    }

    fn supports_numeric_prefix(&self) -> bool {
        BASE.supports_numeric_prefix()
    }

    fn supports_bitwise_shift_operators(&self) -> bool {
        BASE.supports_bitwise_shift_operators()
    }

    fn supports_multiline_comment_hints(&self) -> bool {
        BASE.supports_multiline_comment_hints()
    }

    fn parse_statement(&self, parser: &mut Parser<'_>) -> Option<Result<Statement, ParserError>> {
        BASE.parse_statement(parser)
    }

    fn require_interval_qualifier(&self) -> bool {
        BASE.require_interval_qualifier()
    }

    fn supports_limit_comma(&self) -> bool {
        BASE.supports_limit_comma()
    }

    fn supports_create_table_select(&self) -> bool {
        BASE.supports_create_table_select()
    }

    fn supports_insert_set(&self) -> bool {
        BASE.supports_insert_set()
    }

    fn supports_user_host_grantee(&self) -> bool {
        BASE.supports_user_host_grantee()
    }

    fn is_table_factor_alias(&self, explicit: bool, kw: &Keyword, parser: &mut Parser<'_>) -> bool {
        BASE.is_table_factor_alias(explicit, kw, parser)
    }

    fn supports_table_hints(&self) -> bool {
        BASE.supports_table_hints()
    }

    fn requires_single_line_comment_whitespace(&self) -> bool {
        BASE.requires_single_line_comment_whitespace()
    }

    fn supports_match_against(&self) -> bool {
        BASE.supports_match_against()
    }

    fn supports_select_modifiers(&self) -> bool {
        BASE.supports_select_modifiers()
    }

    fn supports_set_names(&self) -> bool {
        BASE.supports_set_names()
    }

    fn supports_comma_separated_set_assignments(&self) -> bool {
        BASE.supports_comma_separated_set_assignments()
    }

    fn supports_update_order_by(&self) -> bool {
        BASE.supports_update_order_by()
    }

    fn supports_data_type_signed_suffix(&self) -> bool {
        BASE.supports_data_type_signed_suffix()
    }

    fn supports_cross_join_constraint(&self) -> bool {
        BASE.supports_cross_join_constraint()
    }

    fn supports_double_ampersand_operator(&self) -> bool {
        BASE.supports_double_ampersand_operator()
    }

    fn supports_binary_kw_as_cast(&self) -> bool {
        BASE.supports_binary_kw_as_cast()
    }

    fn supports_comment_optimizer_hint(&self) -> bool {
        BASE.supports_comment_optimizer_hint()
    }

    fn supports_constraint_keyword_without_name(&self) -> bool {
        BASE.supports_constraint_keyword_without_name()
    }

    fn supports_key_column_option(&self) -> bool {
        BASE.supports_key_column_option()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sql: &str) -> String {
        let e = Parser::new(&MySql)
            .try_with_sql(sql)
            .and_then(|mut p| p.parse_expr())
            .unwrap();
        shape(&e)
    }

    /// The tree with every binary and unary operation parenthesized.
    fn shape(e: &Expr) -> String {
        match e {
            Expr::BinaryOp { left, op, right } => {
                format!("({} {op} {})", shape(left), shape(right))
            }
            Expr::UnaryOp { op, expr } => format!("({op} {})", shape(expr)),
            Expr::Nested(inner) => shape(inner),
            Expr::Like {
                expr,
                pattern,
                negated,
                ..
            } => format!(
                "({} {}LIKE {})",
                shape(expr),
                if *negated { "NOT " } else { "" },
                shape(pattern)
            ),
            Expr::Between {
                expr, low, high, ..
            } => {
                format!(
                    "({} BETWEEN {} AND {})",
                    shape(expr),
                    shape(low),
                    shape(high)
                )
            }
            Expr::IsNull(inner) => format!("({} IS NULL)", shape(inner)),
            other => other.to_string(),
        }
    }

    #[test]
    fn operators_bind_as_in_mysql() {
        for (sql, tree) in [
            ("20 DIV 96 + 90", "((20 DIV 96) + 90)"),
            ("7 DIV 2 + 1", "((7 DIV 2) + 1)"),
            ("10 DIV 3 * 2", "((10 DIV 3) * 2)"),
            ("2 * 3 DIV 2", "((2 * 3) DIV 2)"),
            ("10 MOD 3 + 1", "((10 % 3) + 1)"),
            ("1 + 2 ^ 3", "(1 + (2 ^ 3))"),
            ("2 * 3 ^ 1", "(2 * (3 ^ 1))"),
            ("1 << 2 & 3", "((1 << 2) & 3)"),
            ("1 | 2 & 3", "(1 | (2 & 3))"),
            ("1 + 1 << 1", "((1 + 1) << 1)"),
            ("a = 1 XOR b = 2", "((a = 1) XOR (b = 2))"),
            ("a OR b XOR c AND d", "(a OR (b XOR (c AND d)))"),
            ("a || b && c", "(a OR (b AND c))"),
            ("NOT a = b", "(NOT (a = b))"),
            ("!a = b", "((NOT a) = b)"),
            ("- 2 ^ 2", "((- 2) ^ 2)"),
            ("~1 + 1", "((~ 1) + 1)"),
            ("a = b LIKE c", "(a = (b LIKE c))"),
            ("a LIKE b = c", "((a LIKE b) = c)"),
            ("a = b IS NULL", "((a = b) IS NULL)"),
            ("1 = 1 = 1", "((1 = 1) = 1)"),
            (
                "a BETWEEN 1 + 1 AND 3 OR b",
                "((a BETWEEN (1 + 1) AND 3) OR b)",
            ),
            ("a - b - c", "((a - b) - c)"),
            ("a DIV b DIV c", "((a DIV b) DIV c)"),
        ] {
            assert_eq!(parse(sql), tree, "{sql}");
        }
    }

    #[test]
    fn printed_trees_parse_back_to_themselves() {
        for sql in [
            "!a = b",
            "a || b && c XOR d",
            "20 DIV 96 + 90",
            "10 MOD 3 * 2",
            "-a ^ b",
            "x -> '$.a' = 1",
        ] {
            let e = Parser::new(&MySql)
                .try_with_sql(sql)
                .and_then(|mut p| p.parse_expr())
                .unwrap();
            assert_eq!(parse(&e.to_string()), shape(&e), "{sql} printed as {e}");
        }
    }
}
