//! MySQL's expression grammar over a real server: every pair of binary
//! operators, written without parentheses, must answer as the form the
//! MySQL precedence table parenthesizes it to; unary plus is no operation
//! on any type; two result columns may share a name. Each is checked on
//! the constant path (no table) and over a table's columns read by the row
//! store and by the columnar replica.

use duet_tests::TestServer;
use mysql_async::prelude::*;

use crate::sql::rows;

/// MySQL's binary operators with their precedence level (higher binds
/// tighter), from the manual's operator precedence table.
const OPERATORS: &[(&str, u8)] = &[
    ("^", 9),
    ("*", 8),
    ("/", 8),
    ("DIV", 8),
    ("%", 8),
    ("MOD", 8),
    ("+", 7),
    ("-", 7),
    ("<<", 6),
    (">>", 6),
    ("&", 5),
    ("|", 4),
    ("=", 3),
    ("<=>", 3),
    ("<>", 3),
    ("!=", 3),
    ("<", 3),
    ("<=", 3),
    (">", 3),
    (">=", 3),
    ("AND", 2),
    ("&&", 2),
    ("XOR", 1),
    ("OR", 0),
    ("||", 0),
];

/// The three operands: apart enough that the two groupings of most pairs
/// differ, none zero (so no division gives NULL).
const OPERANDS: [i64; 3] = [7, 3, 2];

/// `a op1 b op2 c` as MySQL groups it: every binary operator associates to
/// the left, so the left one goes first unless the right binds tighter.
fn grouped(op1: (&str, u8), op2: (&str, u8), [a, b, c]: [&str; 3]) -> String {
    if op1.1 >= op2.1 {
        format!("({a} {} {b}) {} {c}", op1.0, op2.0)
    } else {
        format!("{a} {} ({b} {} {c})", op1.0, op2.0)
    }
}

/// For each first operator, one row: every pair written bare, then every
/// pair parenthesized as MySQL groups it; the halves must be equal.
async fn check_pairs(c: &mut mysql_async::Conn, operands: [&str; 3], from: &str, mode: &str) {
    let mut mismatches = Vec::new();
    for &op1 in OPERATORS {
        let [a, b, cc] = operands;
        let bare: Vec<String> = OPERATORS
            .iter()
            .map(|op2| format!("{a} {} {b} {} {cc}", op1.0, op2.0))
            .collect();
        let expected: Vec<String> = OPERATORS
            .iter()
            .map(|&op2| grouped(op1, op2, operands))
            .collect();
        let sql = format!("SELECT {}, {} {from}", bare.join(", "), expected.join(", "));
        let row = rows(c, &sql).await.remove(0);
        let (got, want) = row.split_at(OPERATORS.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            if g != w {
                mismatches.push(format!(
                    "{mode}: {} is {g:?}, {} is {w:?}",
                    bare[i], expected[i]
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pair_of_binary_operators_groups_as_mysql_does() {
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    // The cases, with MySQL's answers.
    let known = rows(
        &mut c,
        "SELECT 20 DIV 96 + 90, 7 DIV 2 + 1, 10 DIV 3 * 2, 10 MOD 3 + 1, 1 + 2 ^ 3, \
         1 << 2 & 3, 2 = 2 XOR 3 = 4, !0 + 1, - 2 ^ 2, 1 || 0 && 0",
    )
    .await;
    let want: Vec<Option<String>> = [
        "90",
        "4",
        "6",
        "2",
        "2",
        "0",
        "1",
        "2",
        "18446744073709551612",
        "1",
    ]
    .iter()
    .map(|s| Some(s.to_string()))
    .collect();
    assert_eq!(known, vec![want]);

    let literals = OPERANDS.map(|n| n.to_string());
    let literals = [&*literals[0], &*literals[1], &*literals[2]];
    check_pairs(&mut c, literals, "", "constant").await;

    c.query_drop("CREATE DATABASE g").await.unwrap();
    c.query_drop("USE g").await.unwrap();
    c.query_drop("CREATE TABLE ops (id INT PRIMARY KEY, a BIGINT, b BIGINT, c BIGINT)")
        .await
        .unwrap();
    c.query_drop(format!(
        "INSERT INTO ops VALUES (1, {}, {}, {})",
        OPERANDS[0], OPERANDS[1], OPERANDS[2]
    ))
    .await
    .unwrap();
    for engine in ["row", "columnar"] {
        c.query_drop(format!("SET duet_isolation_read_engines = '{engine}'"))
            .await
            .unwrap();
        check_pairs(&mut c, ["a", "b", "c"], "FROM ops", engine).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_plus_is_no_operation_and_result_names_may_repeat() {
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    c.query_drop("CREATE DATABASE u").await.unwrap();
    c.query_drop("USE u").await.unwrap();
    c.query_drop("CREATE TABLE t (id INT PRIMARY KEY, s VARCHAR(5), d DATE)")
        .await
        .unwrap();
    c.query_drop("INSERT INTO t VALUES (1, 'abc', '2020-01-02'), (2, 'x', NULL)")
        .await
        .unwrap();
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        rows(&mut c, "SELECT +'abc', +1.5, + + 2").await,
        vec![vec![s("abc"), s("1.5"), s("2")]]
    );
    for engine in ["row", "columnar"] {
        c.query_drop(format!("SET duet_isolation_read_engines = '{engine}'"))
            .await
            .unwrap();
        assert_eq!(
            rows(&mut c, "SELECT +s, +d FROM t ORDER BY id").await,
            vec![vec![s("abc"), s("2020-01-02")], vec![s("x"), None]],
            "{engine}"
        );
        let result: Vec<mysql_async::Row> = c
            .query("SELECT id AS x, s AS x, id, id, *, s FROM t ORDER BY id")
            .await
            .unwrap();
        let names: Vec<String> = result[0]
            .columns_ref()
            .iter()
            .map(|col| col.name_str().to_string())
            .collect();
        assert_eq!(
            names,
            ["x", "x", "id", "id", "id", "s", "d", "s"],
            "{engine}"
        );
        assert_eq!(
            crate::sql::spelled(result)[0],
            vec![
                s("1"),
                s("abc"),
                s("1"),
                s("1"),
                s("1"),
                s("abc"),
                s("2020-01-02"),
                s("abc")
            ],
            "{engine}"
        );
    }
}
