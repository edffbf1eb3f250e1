//! Random and mutated SQL against a real server: whatever a client sends,
//! it gets a result or a MySQL error, the connection stays usable, and the
//! server keeps serving everyone else. Statements come from Duet's own
//! `.slt` files and a grammar of table expressions, then are mutated
//! (tokens dropped, swapped, duplicated, replaced; characters flipped).
//! `DUET_FUZZ_STATEMENTS` sets how many (default 2000); the seed is fixed
//! unless `DUET_FUZZ_SEED` is given, and is printed on failure.

use duet_tests::TestServer;
use mysql_async::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TOKENS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP BY",
    "ORDER BY",
    "HAVING",
    "LIMIT",
    "JOIN",
    "LEFT JOIN",
    "ON",
    "AND",
    "OR",
    "NOT",
    "IN",
    "EXISTS",
    "BETWEEN",
    "LIKE",
    "IS NULL",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "(",
    ")",
    ",",
    "*",
    "+",
    "-",
    "/",
    "DIV",
    "%",
    "=",
    "<",
    ">",
    "<=>",
    "NULL",
    "0",
    "1",
    "-1",
    "9223372036854775807",
    "18446744073709551616",
    "1e308",
    "0.5",
    "'x'",
    "''",
    "'\\''",
    "x'00ff'",
    "@a",
    "@@version",
    "?",
    "`t`",
    "a",
    "b",
    "c",
    "t",
    "u",
    "count(*)",
    "sum(a)",
    "avg(b)",
    "max(c)",
    "GROUP_CONCAT(c)",
    "CAST(a AS CHAR)",
    "DATE_ADD('2024-01-01', INTERVAL 1 DAY)",
    "JSON_EXTRACT(c, '$.a[last]')",
    "->",
    "->>",
    "'$.*'",
    "JSON_OBJECT('k', a)",
    "JSON_SET(c, '$.x', b)",
    "CAST(c AS JSON)",
    "STR_TO_DATE(c, '%Y-%m-%d %T')",
    "SEC_TO_TIME(a)",
    "TIMEDIFF(c, '01:00')",
    "FORMAT(a, b)",
    "REGEXP_SUBSTR(c, '[a-', b)",
    "MAKE_SET(a, c, NULL)",
    "JSON_ARRAYAGG(c)",
    "JSON_OBJECTAGG(c, a)",
    "ORDER BY c->'$.a'",
    "SHOW CREATE VIEW",
    "ANALYZE TABLE t",
    "SAVEPOINT a",
    "ROLLBACK TO a",
    "GET_LOCK('x', 0)",
    "CREATE TABLE u AS SELECT",
    "CREATE TABLE u LIKE t",
    "SHOW TABLE STATUS",
    "DO",
    "LOCK IN SHARE MODE",
    "INTO @v",
    "JSON_SEARCH(c, 'all', '%')",
    "(SELECT a FROM t)",
    "UNION",
    "DISTINCT",
    "FOR UPDATE",
    "INSERT INTO t VALUES",
    "UPDATE t SET a =",
    "DELETE FROM t",
    "EXPLAIN",
    "/*+ READ_FROM_STORAGE(COLUMNAR[t]) */",
    "information_schema.columns",
    "\u{00e9}",
    ";",
];

/// Statements of Duet's own test files.
fn seeds() -> Vec<String> {
    let dir = std::path::Path::new(duet_tests::DATA_DIR).join("slt");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("tests/slt") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("readable");
        for record in duet_tests::slt::parse(&text) {
            match record {
                duet_tests::slt::Record::Statement { sql, .. }
                | duet_tests::slt::Record::Query { sql, .. } => out.push(sql),
                _ => {}
            }
        }
    }
    out
}

/// A random table expression over `t(a, b, c)` and `u(a, b)`.
fn generated(rng: &mut StdRng) -> String {
    let column = |rng: &mut StdRng| {
        ["a", "b", "c", "t.a", "u.b", "1", "NULL", "'s'"][rng.random_range(0..8)]
    };
    let op = |rng: &mut StdRng| {
        [
            "=", "<", ">=", "<>", "+", "-", "*", "/", "DIV", "%", "AND", "OR",
        ][rng.random_range(0..12)]
    };
    let expr = |rng: &mut StdRng| format!("{} {} {}", column(rng), op(rng), column(rng));
    let e1 = expr(rng);
    let e2 = expr(rng);
    let e3 = expr(rng);
    match rng.random_range(0..6) {
        0 => format!("SELECT {e1}, {e2} FROM t WHERE {e3}"),
        1 => format!("SELECT count(*), {e1} FROM t GROUP BY {e2} HAVING {e3}"),
        2 => format!("SELECT * FROM t JOIN u ON {e1} WHERE {e2} ORDER BY 1 LIMIT 3"),
        3 => format!("SELECT {e1} FROM t WHERE a IN (SELECT b FROM u WHERE {e2}) OR {e3}"),
        4 => format!("UPDATE t SET b = {e1} WHERE {e2}"),
        _ => format!("SELECT (SELECT count(*) FROM u AS x WHERE x.a < t.a AND {e1}), {e2} FROM t"),
    }
}

fn mutate(rng: &mut StdRng, sql: &str) -> String {
    let mut words: Vec<String> = sql.split_whitespace().map(str::to_string).collect();
    for _ in 0..rng.random_range(1..4) {
        if words.is_empty() {
            words.push(TOKENS[rng.random_range(0..TOKENS.len())].to_string());
        }
        let i = rng.random_range(0..words.len());
        match rng.random_range(0..6) {
            0 => {
                words.remove(i);
            }
            1 => words.insert(i, TOKENS[rng.random_range(0..TOKENS.len())].to_string()),
            2 => words[i] = TOKENS[rng.random_range(0..TOKENS.len())].to_string(),
            3 => {
                let j = rng.random_range(0..words.len());
                words.swap(i, j);
            }
            4 => words.insert(i, words[i].clone()),
            _ => {
                let mut chars: Vec<char> = words[i].chars().collect();
                if !chars.is_empty() {
                    let k = rng.random_range(0..chars.len());
                    chars[k] = ['(', ')', '\'', '`', '"', ',', '0', '\\', '\u{0}', '€']
                        [rng.random_range(0..10)];
                }
                words[i] = chars.into_iter().collect();
            }
        }
    }
    words.join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_and_mutated_sql_never_breaks_a_connection() {
    let count: usize = std::env::var("DUET_FUZZ_STATEMENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let seed: u64 = std::env::var("DUET_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x0d0e7);
    let mut rng = StdRng::seed_from_u64(seed);
    let seeds = seeds();
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    let mut bystander = t.connect().await;
    for setup in [
        "CREATE DATABASE fuzz",
        "USE fuzz",
        "CREATE TABLE t (a INT PRIMARY KEY, b INT, c VARCHAR(10), KEY ib (b))",
        "CREATE TABLE u (a INT, b INT)",
        "INSERT INTO t VALUES (1, 1, 'x'), (2, NULL, 'y'), (3, 3, NULL)",
        "INSERT INTO u VALUES (1, 2), (NULL, 3)",
    ] {
        c.query_drop(setup).await.unwrap();
    }
    let (mut ok, mut errors) = (0usize, 0usize);
    for n in 0..count {
        let sql = if rng.random_bool(0.5) {
            generated(&mut rng)
        } else {
            let base = &seeds[rng.random_range(0..seeds.len())];
            mutate(&mut rng, base)
        };
        // A statement that cannot be answered (a hang) fails the test too.
        let outcome = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            c.query_iter(sql.as_str()),
        )
        .await
        .unwrap_or_else(|_| panic!("seed {seed}, statement {n} hung: {sql}"));
        match outcome {
            // An error may also end a result after its first rows, as
            // in MySQL (rows stream): a MySQL error, the connection kept.
            Ok(mut result) => match result.for_each(|_| {}).await {
                Ok(()) => ok += 1,
                Err(mysql_async::Error::Server(e)) => {
                    assert!(e.code >= 1000, "seed {seed}: {sql}: odd code {}", e.code);
                    assert_eq!(e.state.len(), 5, "seed {seed}: {sql}: SQLSTATE {}", e.state);
                    errors += 1;
                }
                Err(e) => panic!("seed {seed}, statement {n}: rows broke: {e}: {sql}"),
            },
            Err(mysql_async::Error::Server(e)) => {
                assert!(e.code >= 1000, "seed {seed}: {sql}: odd code {}", e.code);
                assert_eq!(e.state.len(), 5, "seed {seed}: {sql}: SQLSTATE {}", e.state);
                errors += 1;
                if std::env::var_os("DUET_FUZZ_VERBOSE").is_some() {
                    eprintln!("{} {}: {sql}", e.code, e.message);
                }
            }
            Err(other) => {
                panic!("seed {seed}, statement {n}: the connection broke: {other}: {sql}")
            }
        }
        // Whatever happened, the session still answers (a transaction a
        // mutation opened is closed first).
        if n % 50 == 0 {
            c.query_drop("ROLLBACK").await.unwrap();
            c.query_drop("USE fuzz").await.unwrap();
            let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
            assert_eq!(one, Some(1));
        }
    }
    let other: Option<i64> = bystander.query_first("SELECT 2").await.unwrap();
    assert_eq!(other, Some(2), "another connection is still served");
    eprintln!("fuzz: {count} statements (seed {seed}): {ok} answered, {errors} MySQL errors");
    assert!(ok > 0 && errors > 0, "the mix exercises both outcomes");
}

/// A random expression over `t`'s columns nested about `depth` deep: chains
/// of one operator (as long as `depth`), nests of functions, parentheses and
/// subqueries, `IN` and `OR` lists.
fn deep_expr(rng: &mut StdRng, depth: usize) -> String {
    const OPS: &[&str] = &[
        "+", "-", "*", "DIV", "%", "^", "&", "|", "<<", "AND", "OR", "XOR", "=", "<",
    ];
    if depth <= 1 {
        return ["a", "b", "1", "NULL", "'x'", "0.5"][rng.random_range(0..6)].to_string();
    }
    match rng.random_range(0..8) {
        // A chain of one operator, its operands shallow.
        0 | 1 => {
            let op = OPS[rng.random_range(0..OPS.len())];
            let terms: Vec<String> = (0..depth).map(|_| deep_expr(rng, 1)).collect();
            terms.join(&format!(" {op} "))
        }
        2 => format!("({})", deep_expr(rng, depth - 1)),
        3 => format!("abs({})", deep_expr(rng, depth - 1)),
        4 => format!("(SELECT {} FROM u LIMIT 1)", deep_expr(rng, depth - 1)),
        5 => {
            let items: Vec<String> = (0..depth).map(|i| i.to_string()).collect();
            format!("a IN ({})", items.join(", "))
        }
        6 => {
            let items: Vec<String> = (0..depth).map(|i| format!("b = {i}")).collect();
            items.join(" OR ")
        }
        _ => format!("NOT {}", deep_expr(rng, depth / 2)),
    }
}

/// Deep and wide statements, around and far past the nesting limits:
/// long operator chains, `UNION` chains, nested subqueries and
/// parentheses, long `IN` and `OR` lists. Each is answered or refused with
/// a MySQL error (1436, 1473, 1064…), the connection stays usable, and the
/// server serves another connection meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_and_wide_statements_never_break_a_connection() {
    let count: usize = std::env::var("DUET_FUZZ_DEEP_STATEMENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let seed: u64 = std::env::var("DUET_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0xdee9);
    let mut rng = StdRng::seed_from_u64(seed);
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    let mut bystander = t.connect().await;
    for setup in [
        "CREATE DATABASE deep",
        "USE deep",
        "CREATE TABLE t (a INT PRIMARY KEY, b INT)",
        "CREATE TABLE u (a INT PRIMARY KEY, b INT)",
        "INSERT INTO t VALUES (1, 1), (2, NULL), (3, 3)",
        "INSERT INTO u VALUES (1, 2)",
    ] {
        c.query_drop(setup).await.unwrap();
    }
    let (mut ok, mut refused) = (0usize, 0usize);
    for n in 0..count {
        // Depths around the limits and far past them.
        let depth = [3, 30, 300, 900, 1500, 5000, 20_000][rng.random_range(0..7)];
        let sql = match rng.random_range(0..5) {
            0 => format!("SELECT {} FROM t", deep_expr(&mut rng, depth)),
            1 => format!("SELECT a FROM t WHERE {}", deep_expr(&mut rng, depth)),
            2 => {
                let branch = "SELECT a FROM t";
                vec![branch; depth.min(5000)].join(" UNION ALL ")
            }
            3 => format!(
                "SELECT {}a{} FROM t",
                "(".repeat(depth.min(400)),
                ")".repeat(depth.min(400))
            ),
            _ => format!(
                "SELECT {}1{}",
                "(SELECT ".repeat(depth.min(40)),
                ")".repeat(depth.min(40))
            ),
        };
        let outcome = tokio::time::timeout(
            std::time::Duration::from_secs(120),
            c.query_iter(sql.as_str()),
        )
        .await
        .unwrap_or_else(|_| panic!("seed {seed}, statement {n} hung: {}", &sql[..80]));
        match outcome {
            Ok(mut result) => {
                result
                    .for_each(|_| {})
                    .await
                    .unwrap_or_else(|e| panic!("seed {seed}, statement {n}: rows broke: {e}"));
                ok += 1;
            }
            Err(mysql_async::Error::Server(e)) => {
                assert!(e.code >= 1000, "seed {seed}: odd code {}", e.code);
                refused += 1;
            }
            Err(other) => panic!(
                "seed {seed}, statement {n}: the connection broke: {other}: {}",
                &sql[..sql.len().min(80)]
            ),
        }
        let one: Option<i64> = bystander.query_first("SELECT 1").await.unwrap();
        assert_eq!(one, Some(1), "another connection is still served");
    }
    let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    eprintln!("deep fuzz: {count} statements (seed {seed}): {ok} answered, {refused} refused");
    assert!(ok > 0 && refused > 0, "the mix exercises both outcomes");
}
