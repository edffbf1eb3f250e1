//! SQL over the MySQL protocol against a real server, where a `.slt` file
//! cannot say it (the answers themselves are in `tests/slt/`, checked on
//! each engine setting): affected-row counts, last insert ids, warnings and
//! column metadata; transactions, locks and schema changes across
//! connections; prepared statements and their kept plans; the access paths
//! EXPLAIN shows; the process list and status counters.

use duet_tests::TestServer;
use mysql_async::prelude::*;
use mysql_async::{Conn, Value};

pub(crate) fn code(e: mysql_async::Error) -> u16 {
    match e {
        mysql_async::Error::Server(s) => s.code,
        other => panic!("expected a server error, got {other}"),
    }
}

pub(crate) async fn err(c: &mut Conn, sql: &str) -> u16 {
    code(c.query_drop(sql).await.expect_err(sql))
}

pub(crate) async fn rows(c: &mut Conn, sql: &str) -> Vec<Vec<Option<String>>> {
    let rows: Vec<mysql_async::Row> = c.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    spelled(rows)
}

/// Rows with each value spelled as the text protocol spells it.
pub(crate) fn spelled(rows: Vec<mysql_async::Row>) -> Vec<Vec<Option<String>>> {
    rows.into_iter()
        .map(|r| {
            r.unwrap()
                .into_iter()
                .map(|v| match v {
                    Value::NULL => None,
                    Value::Bytes(b) => Some(String::from_utf8(b).unwrap()),
                    other => Some(other.as_sql(true)),
                })
                .collect()
        })
        .collect()
}

fn table(rows: &[&[&str]]) -> Vec<Vec<Option<String>>> {
    rows.iter()
        .map(|r| {
            r.iter()
                .map(|v| (*v != "NULL").then(|| v.to_string()))
                .collect()
        })
        .collect()
}

async fn setup(t: &TestServer) -> Conn {
    let mut c = t.connect().await;
    c.query_drop("CREATE DATABASE shop").await.unwrap();
    c.query_drop("USE shop").await.unwrap();
    c.query_drop(
        "CREATE TABLE items (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(10) NOT NULL, \
         price DECIMAL(6,2) DEFAULT 0, qty TINYINT UNSIGNED, UNIQUE KEY uname (name)) ENGINE=InnoDB",
    )
    .await
    .unwrap();
    c
}

/// The answers of these statements are in `tests/slt/ddl_dml.slt`; here is
/// what the client reads besides them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_and_dml_report_what_mysql_reports() {
    let t = TestServer::start().await;
    let mut c = setup(&t).await;
    assert_eq!(
        c.get_warnings(),
        1,
        "ENGINE=InnoDB is accepted with a warning"
    );
    c.query_drop(
        "INSERT INTO items (name, price, qty) VALUES ('apple', 1.5, 3), ('pear', 2.255, 7)",
    )
    .await
    .unwrap();
    assert_eq!(c.affected_rows(), 2);
    assert_eq!(c.last_insert_id(), Some(1));
    assert_eq!(c.info(), "Records: 2  Duplicates: 0  Warnings: 0");
    c.query_drop("INSERT INTO items SET name = 'fig'")
        .await
        .unwrap();
    assert_eq!(c.last_insert_id(), Some(3));
    // Duplicate keys, IGNORE, ON DUPLICATE KEY UPDATE, REPLACE.
    c.query_drop("INSERT IGNORE INTO items (name) VALUES ('apple'), ('kiwi')")
        .await
        .unwrap();
    assert_eq!((c.affected_rows(), c.get_warnings()), (1, 1));
    c.query_drop("INSERT INTO items (name, qty) VALUES ('pear', 1) ON DUPLICATE KEY UPDATE qty = qty + VALUES(qty)")
        .await
        .unwrap();
    assert_eq!(c.affected_rows(), 2, "an update through ODKU counts 2");
    c.query_drop("REPLACE INTO items (id, name, qty) VALUES (3, 'fig', 9)")
        .await
        .unwrap();
    assert_eq!(c.affected_rows(), 2, "REPLACE deletes then inserts");
    // UPDATE and DELETE with WHERE, ORDER BY, LIMIT.
    c.query_drop("UPDATE items SET price = price * 2 WHERE qty > 5")
        .await
        .unwrap();
    assert_eq!(
        c.affected_rows(),
        1,
        "fig's price 0.00 doubled is unchanged"
    );
    assert_eq!(c.info(), "Rows matched: 2  Changed: 1  Warnings: 0");
    c.query_drop("UPDATE items SET qty = qty WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(c.affected_rows(), 0, "unchanged rows are not affected");
    c.query_drop("DELETE FROM items ORDER BY id DESC LIMIT 1")
        .await
        .unwrap();
    assert_eq!(c.affected_rows(), 1);
    // Result columns are named as typed.
    let result = c
        .query_iter("SELECT COUNT(*), SUM(qty) AS total, LOWER(name) FROM items GROUP BY name")
        .await
        .unwrap();
    let names: Vec<String> = result
        .columns_ref()
        .iter()
        .map(|c| c.name_str().into_owned())
        .collect();
    drop(result);
    assert_eq!(names, vec!["COUNT(*)", "total", "LOWER(name)"]);
    // An empty result still describes its columns (the connection goes on).
    let none: Vec<(i64, String)> = c
        .query("SELECT id, name FROM items WHERE id < 0 ORDER BY 2")
        .await
        .unwrap();
    assert!(none.is_empty());
    c.query_drop("TRUNCATE TABLE items").await.unwrap();
    c.query_drop("INSERT INTO items (name) VALUES ('new')")
        .await
        .unwrap();
    assert_eq!(
        c.last_insert_id(),
        Some(1),
        "TRUNCATE restarts AUTO_INCREMENT"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_are_snapshot_isolated_and_conflicts_are_1213() {
    let t = TestServer::start().await;
    let mut a = setup(&t).await;
    // Conflicts found at commit: an optimistic transaction's way
    // (pessimistic ones are in `pessimistic.rs`).
    a.query_drop("SET duet_txn_mode = 'optimistic'")
        .await
        .unwrap();
    a.query_drop("INSERT INTO items (id, name, qty) VALUES (1, 'one', 1), (2, 'two', 2)")
        .await
        .unwrap();
    let mut b = t.connect().await;
    b.query_drop("USE shop").await.unwrap();

    // A's snapshot does not see B's commit; its own writes it does.
    a.query_drop("BEGIN").await.unwrap();
    assert_eq!(
        rows(&mut a, "SELECT qty FROM items WHERE id = 1").await,
        table(&[&["1"]])
    );
    b.query_drop("UPDATE items SET qty = 10 WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(
        rows(&mut a, "SELECT qty FROM items WHERE id = 1").await,
        table(&[&["1"]])
    );
    a.query_drop("UPDATE items SET qty = 20 WHERE id = 2")
        .await
        .unwrap();
    assert_eq!(
        rows(&mut a, "SELECT SUM(qty) FROM items").await,
        table(&[&["21"]])
    );
    assert_eq!(
        rows(&mut b, "SELECT qty FROM items WHERE id = 2").await,
        table(&[&["2"]])
    );
    a.query_drop("COMMIT").await.unwrap();
    assert_eq!(
        rows(&mut b, "SELECT SUM(qty) FROM items").await,
        table(&[&["30"]])
    );

    // Both write row 1: the later committer gets a retryable 1213 and its
    // transaction is gone.
    a.query_drop("START TRANSACTION").await.unwrap();
    a.query_drop("UPDATE items SET qty = qty + 1 WHERE id = 1")
        .await
        .unwrap();
    b.query_drop("UPDATE items SET qty = 100 WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(err(&mut a, "COMMIT").await, 1213);
    assert_eq!(
        rows(&mut a, "SELECT qty FROM items WHERE id = 1").await,
        table(&[&["100"]])
    );

    // ROLLBACK discards; autocommit = 0 opens a transaction implicitly.
    a.query_drop("BEGIN").await.unwrap();
    a.query_drop("DELETE FROM items").await.unwrap();
    a.query_drop("ROLLBACK").await.unwrap();
    assert_eq!(
        rows(&mut b, "SELECT COUNT(*) FROM items").await,
        table(&[&["2"]])
    );
    a.query_drop("SET autocommit = 0").await.unwrap();
    a.query_drop("DELETE FROM items WHERE id = 2")
        .await
        .unwrap();
    assert_eq!(
        rows(&mut b, "SELECT COUNT(*) FROM items").await,
        table(&[&["2"]])
    );
    a.query_drop("COMMIT").await.unwrap();
    assert_eq!(
        rows(&mut b, "SELECT COUNT(*) FROM items").await,
        table(&[&["1"]])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_bind_parameters() {
    let t = TestServer::start().await;
    let mut c = setup(&t).await;
    let insert = c
        .prep("INSERT INTO items (name, price, qty) VALUES (?, ?, ?)")
        .await
        .unwrap();
    for i in 0..20u32 {
        c.exec_drop(&insert, (format!("n{i}"), f64::from(i) / 4.0, i))
            .await
            .unwrap();
    }
    let select = c
        .prep("SELECT name, qty FROM items WHERE id = ?")
        .await
        .unwrap();
    let row: Option<(String, u32)> = c.exec_first(&select, (7,)).await.unwrap();
    assert_eq!(row, Some(("n6".to_string(), 6)));
    let range: Vec<(String,)> = c
        .exec(
            "SELECT name FROM items WHERE id > ? AND id <= ? ORDER BY id",
            (18, 40),
        )
        .await
        .unwrap();
    assert_eq!(range, vec![("n18".to_string(),), ("n19".to_string(),)]);
    c.exec_drop("UPDATE items SET qty = qty + ? WHERE id = ?", (100, 1))
        .await
        .unwrap();
    assert_eq!(c.affected_rows(), 1);
    let qty: Option<u32> = c
        .exec_first("SELECT qty FROM items WHERE name = ?", ("n0",))
        .await
        .unwrap();
    assert_eq!(qty, Some(100));

    // The row executor's plan is kept: later executions bind their keys to
    // it; a wider range than it serves, or a schema change, plans anew.
    async fn reused(c: &mut Conn) -> u64 {
        rows(c, "SHOW STATUS LIKE 'Duet_prepared_plans_reused'").await[0][1]
            .as_deref()
            .unwrap()
            .parse()
            .unwrap()
    }
    let before = reused(&mut c).await;
    let row: Option<(String, u32)> = c.exec_first(&select, (8,)).await.unwrap();
    assert_eq!(row, Some(("n7".to_string(), 7)));
    assert_eq!(reused(&mut c).await, before + 1);
    let count = c
        .prep("SELECT count(*) FROM items WHERE id BETWEEN ? AND ?")
        .await
        .unwrap();
    for (lo, hi, n) in [(1, 5, 5), (1, 100_000, 20), (2, 3, 2), (-5, 0, 0)] {
        let got: Option<u64> = c.exec_first(&count, (lo, hi)).await.unwrap();
        assert_eq!(got, Some(n), "{lo}..{hi}");
    }
    let star = c.prep("SELECT * FROM items WHERE id = ?").await.unwrap();
    let before: Vec<mysql_async::Row> = c.exec(&star, (3,)).await.unwrap();
    c.query_drop("ALTER TABLE items ADD COLUMN note VARCHAR(8) DEFAULT 'x'")
        .await
        .unwrap();
    let after: Vec<mysql_async::Row> = c.exec(&star, (3,)).await.unwrap();
    assert_eq!(after[0].len(), before[0].len() + 1);
    assert_eq!(after[0].get::<String, _>(before[0].len()), Some("x".into()));
}

/// The rows of a prepared statement's result, spelled as the text
/// protocol spells them.
async fn exec_rows(
    c: &mut Conn,
    stmt: &mysql_async::Statement,
    params: Vec<Value>,
) -> Vec<Vec<Option<String>>> {
    spelled(c.exec(stmt, params).await.unwrap())
}

async fn plans_reused(c: &mut Conn) -> u64 {
    rows(c, "SHOW STATUS LIKE 'Duet_prepared_plans_reused'").await[0][1]
        .as_deref()
        .unwrap()
        .parse()
        .unwrap()
}

/// `sql` with each `?` replaced by the SQL literal of its parameter.
fn written_in(sql: &str, params: &[Value]) -> String {
    let mut parts = sql.split('?');
    let mut text = parts.next().unwrap().to_string();
    for (part, v) in parts.zip(params) {
        text.push_str(&v.as_sql(false));
        text.push_str(part);
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_queries_keep_their_plan_and_answer_as_their_text_would() {
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    c.query_drop("USE test").await.unwrap();
    c.query_drop(
        "CREATE TABLE p (id INT PRIMARY KEY, k INT, c VARCHAR(10), d DATE, price DECIMAL(6,2), \
         KEY ik (k))",
    )
    .await
    .unwrap();
    let values: Vec<String> = (1..=200)
        .map(|i| {
            format!(
                "({i}, {}, 'c{}', '2026-01-{:02}', {}.{:02})",
                i % 7,
                i % 5,
                i % 28 + 1,
                i / 4,
                i % 4 * 25
            )
        })
        .collect();
    c.query_drop(format!("INSERT INTO p VALUES {}", values.join(",")))
        .await
        .unwrap();

    // Each execution answers as the statement's text with its values
    // written in would, whatever their types; the query engine's plan is
    // made once (the counter counts every later execution).
    let v = |x: &str| Value::from(x);
    let i = |x: i64| Value::from(x);
    let cases: Vec<(&str, bool, Vec<Vec<Value>>)> = vec![
        (
            "SELECT count(*), sum(k), max(c) FROM p WHERE id BETWEEN ? AND ?",
            true,
            vec![
                vec![i(1), i(50)],
                vec![i(150), i(1000)],
                vec![i(-3), i(0)],
                vec![v("10"), v("20")],
                vec![Value::NULL, i(5)],
            ],
        ),
        (
            "SELECT k, count(*), min(c) FROM p WHERE c <> ? GROUP BY k ORDER BY k LIMIT ?",
            true,
            vec![
                vec![v("c1"), i(3)],
                vec![v("c0"), i(10)],
                vec![v("zz"), i(0)],
            ],
        ),
        (
            "SELECT a.id, b.c FROM p a JOIN p b ON a.k = b.id WHERE a.id < ? AND b.c = ? \
             ORDER BY a.id",
            true,
            vec![
                vec![i(30), v("c1")],
                vec![i(100), v("c3")],
                vec![i(7), v("c9")],
            ],
        ),
        (
            "SELECT id, price FROM p WHERE k IN (?, ?, ?) ORDER BY id DESC LIMIT ? OFFSET ?",
            false,
            vec![
                vec![i(1), i(2), i(3), i(5), i(0)],
                vec![i(0), i(0), i(0), i(3), i(2)],
                vec![v("4"), i(5), i(6), i(4), i(1)],
            ],
        ),
        (
            "SELECT id FROM p WHERE d >= ? AND price < ? ORDER BY id",
            false,
            vec![
                vec![v("2026-01-20"), v("10.5")],
                vec![v("2026-01-27"), i(3)],
                vec![v("2026-01-01"), Value::Double(1.25)],
            ],
        ),
        (
            "SELECT id FROM p WHERE id IN (SELECT id FROM p WHERE k = ?) ORDER BY id LIMIT 3",
            false,
            vec![vec![i(3)], vec![i(6)]],
        ),
        // A parameter in arithmetic is written in at each execution.
        (
            "SELECT sum(k + ?) FROM p WHERE id < ?",
            false,
            vec![vec![v("2"), i(10)], vec![i(1), i(5)]],
        ),
    ];
    for (sql, counted, params) in &cases {
        let stmt = c.prep(*sql).await.unwrap();
        let before = plans_reused(&mut c).await;
        for p in params {
            let prepared = exec_rows(&mut c, &stmt, p.clone()).await;
            let text = rows(&mut c, &written_in(sql, p)).await;
            assert_eq!(prepared, text, "{sql} with {p:?}");
        }
        if *counted {
            assert_eq!(
                plans_reused(&mut c).await,
                before + params.len() as u64 - 1,
                "{sql}"
            );
        }
    }

    // Each execution reads its own snapshot: the transaction's writes,
    // then, rolled back, what others committed since.
    let count = c
        .prep("SELECT count(*), sum(k), max(c) FROM p WHERE id BETWEEN ? AND ?")
        .await
        .unwrap();
    let range = vec![i(1), i(1000)];
    assert_eq!(
        exec_rows(&mut c, &count, range.clone()).await,
        table(&[&["200", "598", "c4"]])
    );
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("INSERT INTO p VALUES (500, 100, 'x', NULL, 1)")
        .await
        .unwrap();
    assert_eq!(
        exec_rows(&mut c, &count, range.clone()).await,
        table(&[&["201", "698", "x"]])
    );
    c.query_drop("ROLLBACK").await.unwrap();
    let mut other = t.connect().await;
    other
        .query_drop("INSERT INTO test.p VALUES (600, 1000, 'y', NULL, 1)")
        .await
        .unwrap();
    assert_eq!(
        exec_rows(&mut c, &count, range.clone()).await,
        table(&[&["201", "1598", "y"]])
    );
    // On the columnar replica alone, the same answer.
    c.query_drop("SET duet_isolation_read_engines = 'columnar'")
        .await
        .unwrap();
    assert_eq!(
        exec_rows(&mut c, &count, range.clone()).await,
        table(&[&["201", "1598", "y"]])
    );
    c.query_drop("SET duet_isolation_read_engines = 'row,columnar'")
        .await
        .unwrap();

    // What is read as the plan is made, or stands for a value of the
    // execution, is not kept.
    let tables = c
        .prep("SELECT count(*) FROM information_schema.tables WHERE table_schema = ?")
        .await
        .unwrap();
    let before = plans_reused(&mut c).await;
    assert_eq!(
        exec_rows(&mut c, &tables, vec![v("test")]).await,
        table(&[&["1"]])
    );
    c.query_drop("CREATE TABLE a (id INT PRIMARY KEY AUTO_INCREMENT, v INT)")
        .await
        .unwrap();
    assert_eq!(
        exec_rows(&mut c, &tables, vec![v("test")]).await,
        table(&[&["2"]])
    );
    let last = c
        .prep("SELECT LAST_INSERT_ID(), count(*) FROM p WHERE id < ?")
        .await
        .unwrap();
    c.query_drop("INSERT INTO a (v) VALUES (1)").await.unwrap();
    assert_eq!(
        exec_rows(&mut c, &last, vec![i(3)]).await,
        table(&[&["1", "2"]])
    );
    c.query_drop("INSERT INTO a (v) VALUES (2)").await.unwrap();
    assert_eq!(
        exec_rows(&mut c, &last, vec![i(3)]).await,
        table(&[&["2", "2"]])
    );
    assert_eq!(plans_reused(&mut c).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_that_spans_a_schema_change_of_its_table_does_not_commit_stale_rows() {
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    c.query_drop("USE test").await.unwrap();
    c.query_drop("CREATE TABLE s (id INT PRIMARY KEY, k INT, v VARCHAR(10))")
        .await
        .unwrap();
    c.query_drop("INSERT INTO s VALUES (1, 5, 'a')")
        .await
        .unwrap();
    let mut ddl = t.connect().await;
    ddl.query_drop("USE test").await.unwrap();

    // A row written under the old definition, committed after an index
    // was added: it must not lack its index entry.
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("INSERT INTO s VALUES (2, 5, 'b')")
        .await
        .unwrap();
    ddl.query_drop("CREATE INDEX ik ON s (k)").await.unwrap();
    let committed = c.query_drop("COMMIT").await;
    let by_index = rows(&mut ddl, "SELECT id FROM s WHERE k = 5 ORDER BY id").await;
    let by_scan = rows(
        &mut ddl,
        "SELECT id FROM s IGNORE INDEX (ik) WHERE k + 0 = 5 ORDER BY id",
    )
    .await;
    assert_eq!(by_index, by_scan, "commit: {committed:?}");
    assert_eq!(
        code(committed.expect_err("a stale transaction commits")),
        1412
    );

    // A value the new type refuses cannot slip in either.
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("INSERT INTO s VALUES (3, 6, 'longvalue')")
        .await
        .unwrap();
    ddl.query_drop("ALTER TABLE s MODIFY v VARCHAR(3)")
        .await
        .unwrap();
    assert_eq!(code(c.query_drop("COMMIT").await.unwrap_err()), 1412);
    assert_eq!(
        rows(&mut ddl, "SELECT count(*) FROM s").await,
        table(&[&["1"]])
    );

    // Transactions that only read, or write other tables, are not affected.
    c.query_drop("CREATE TABLE other (id INT PRIMARY KEY)")
        .await
        .unwrap();
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("INSERT INTO other VALUES (1)").await.unwrap();
    ddl.query_drop("ALTER TABLE s ADD COLUMN w INT")
        .await
        .unwrap();
    c.query_drop("COMMIT").await.unwrap();
}

/// Inserts rows `from..to` of `(id, id % 7, text)` one statement at a
/// time, retrying what a schema change refuses, until one is too long for
/// the column (1406); returns how many went in.
async fn keep_inserting(mut c: Conn, table: &str, from: i64, to: i64, text: &str) -> i64 {
    for id in from..to {
        loop {
            let sql = format!("INSERT INTO {table} VALUES ({id}, {}, '{text}')", id % 7);
            match c.query_drop(sql).await {
                Ok(()) => break,
                Err(mysql_async::Error::Server(e)) if matches!(e.code, 1412 | 1213 | 1205) => {}
                Err(mysql_async::Error::Server(e)) if e.code == 1406 => return id - from,
                Err(e) => panic!("insert {id}: {e}"),
            }
        }
    }
    to - from
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_changes_under_concurrent_writes_leave_indexes_and_types_whole() {
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    c.query_drop("USE test").await.unwrap();
    c.query_drop("CREATE TABLE w (id INT PRIMARY KEY, k INT, v VARCHAR(10))")
        .await
        .unwrap();
    let values: Vec<String> = (0..3000)
        .map(|i| format!("({i}, {}, 'x')", i % 7))
        .collect();
    c.query_drop(format!("INSERT INTO w VALUES {}", values.join(",")))
        .await
        .unwrap();

    // An index built while rows arrive holds every row.
    let mut writer = t.connect().await;
    writer.query_drop("USE test").await.unwrap();
    let inserting = tokio::spawn(keep_inserting(writer, "w", 3000, 3400, "y"));
    c.query_drop("CREATE INDEX ik ON w (k)").await.unwrap();
    inserting.await.unwrap();
    for k in 0..7 {
        let by_index = rows(&mut c, &format!("SELECT count(*) FROM w WHERE k = {k}")).await;
        let by_scan = rows(&mut c, &format!("SELECT count(*) FROM w WHERE k + 0 = {k}")).await;
        assert_eq!(by_index, by_scan, "k = {k}");
    }
    let explain = rows(&mut c, "EXPLAIN SELECT count(*) FROM w WHERE k = 3").await;
    assert!(
        explain
            .iter()
            .any(|r| r[3].as_deref().is_some_and(|i| i.contains("index:ik"))),
        "{explain:?}"
    );

    // A type change while rows too long for it arrive: either it commits
    // and no such row is there, or it fails on one (1265) and the table is
    // as it was.
    let mut writer = t.connect().await;
    writer.query_drop("USE test").await.unwrap();
    let inserting = tokio::spawn(keep_inserting(writer, "w", 3400, 3600, "longer"));
    let altered = c.query_drop("ALTER TABLE w MODIFY v VARCHAR(3)").await;
    let inserted = inserting.await.unwrap();
    let longest = rows(&mut c, "SELECT max(char_length(v)) FROM w").await;
    let declared = rows(
        &mut c,
        "SELECT column_type FROM information_schema.columns WHERE table_name = 'w' AND column_name = 'v'",
    )
    .await;
    match altered {
        Ok(()) => {
            assert_eq!(longest, table(&[&["1"]]), "{inserted} long rows went in");
            assert_eq!(declared, table(&[&["varchar(3)"]]));
            assert!(inserted < 200);
        }
        Err(e) => {
            assert_eq!(code(e), 1265);
            assert_eq!(declared, table(&[&["varchar(10)"]]));
            assert_eq!(inserted, 200);
        }
    }
    let total = (3400 + inserted).to_string();
    assert_eq!(
        rows(&mut c, "SELECT count(*) FROM w").await,
        table(&[&[total.as_str()]])
    );
    // Writes go on once it is over.
    c.query_drop("INSERT INTO w VALUES (5000, 1, 'z')")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_schema_change_of_a_table_runs_at_a_time_and_a_failed_one_is_undone() {
    let t = TestServer::start().await;
    let mut a = t.connect().await;
    a.query_drop("USE test").await.unwrap();
    a.query_drop("CREATE TABLE u (id INT PRIMARY KEY, x INT, d DOUBLE)")
        .await
        .unwrap();
    a.query_drop("INSERT INTO u VALUES (1, 7, 0.1), (2, 7, 0.2)")
        .await
        .unwrap();

    // A unique index the rows break: refused, and the whole change undone
    // (the column added with it too); the table takes writes.
    assert_eq!(
        code(
            a.query_drop("ALTER TABLE u ADD COLUMN c INT, ADD UNIQUE INDEX ux (x)")
                .await
                .unwrap_err()
        ),
        1062
    );
    let columns = rows(
        &mut a,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'u' ORDER BY ordinal_position",
    )
    .await;
    assert_eq!(columns, table(&[&["id"], &["x"], &["d"]]));
    assert!(rows(&mut a, "SHOW INDEX FROM u").await.len() == 1);
    a.query_drop("INSERT INTO u VALUES (3, 7, 0.3)")
        .await
        .unwrap();

    // A row lock holds a type change in its second step: another change
    // of the table meanwhile is a 1205, writes are 1412; once the lock
    // goes, the change finishes and the other may run.
    a.query_drop("BEGIN").await.unwrap();
    a.query_drop("SELECT * FROM u WHERE id = 1 FOR UPDATE")
        .await
        .unwrap();
    let mut b = t.connect().await;
    b.query_drop("USE test").await.unwrap();
    let altering = tokio::spawn(async move {
        let r = b.query_drop("ALTER TABLE u MODIFY d FLOAT").await;
        (b, r)
    });
    let mut c = t.connect().await;
    c.query_drop("USE test").await.unwrap();
    let mut probe = 100;
    loop {
        match c
            .query_drop(format!("INSERT INTO u VALUES ({probe}, 1, 1)"))
            .await
        {
            Err(e) => {
                assert_eq!(code(e), 1412);
                break;
            }
            Ok(()) => {
                probe += 1;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
    for other in [
        "CREATE INDEX ix ON u (x)",
        "DROP INDEX nope ON u",
        "TRUNCATE TABLE u",
        "RENAME TABLE u TO u2",
        "DROP TABLE u",
    ] {
        assert_eq!(
            code(c.query_drop(other).await.unwrap_err()),
            1205,
            "{other}"
        );
    }
    a.query_drop("COMMIT").await.unwrap();
    let (_, altered) = altering.await.unwrap();
    altered.unwrap();
    c.query_drop("CREATE INDEX ix ON u (x)").await.unwrap();
    c.query_drop("INSERT INTO u VALUES (4, 8, 0.5)")
        .await
        .unwrap();
    assert_eq!(
        rows(&mut c, "SELECT count(*) FROM u WHERE x = 7").await,
        table(&[&["3"]])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_each_access_its_engine_and_path() {
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    c.query_drop("USE test").await.unwrap();
    c.query_drop(
        "CREATE TABLE r (id INT PRIMARY KEY, k INT, u INT, v VARCHAR(8), KEY ik (k), KEY iu (u))",
    )
    .await
    .unwrap();
    // 2000 rows: k has two values (an index lookup would fetch half the
    // table), u one per row.
    let values: Vec<String> = (1..=2000)
        .map(|i| format!("({i}, {}, {i}, 'v{i}')", i % 2))
        .collect();
    c.query_drop(format!("INSERT INTO r VALUES {}", values.join(",")))
        .await
        .unwrap();

    let header: Vec<String> = {
        let result: Vec<mysql_async::Row> = c.query("EXPLAIN SELECT * FROM r").await.unwrap();
        result[0]
            .columns_ref()
            .iter()
            .map(|col| col.name_str().to_string())
            .collect()
    };
    assert_eq!(
        header,
        ["id", "estRows", "engine", "access object", "operator info"]
    );

    let point = rows(&mut c, "EXPLAIN SELECT v FROM r WHERE id = 5").await;
    assert_eq!(point.len(), 1);
    assert_eq!(point[0][0].as_deref(), Some("Point_Get_1"));
    assert_eq!(point[0][2].as_deref(), Some("row"));
    assert_eq!(point[0][4].as_deref(), Some("handle:5"));

    // Every table access names its engine; the rest name none.
    let access = |plan: &[Vec<Option<String>>], op: &str| {
        plan.iter()
            .find(|r| r[0].as_deref().is_some_and(|id| id.contains(op)))
            .cloned()
            .unwrap_or_else(|| panic!("no {op} in {plan:?}"))
    };
    let range = rows(&mut c, "EXPLAIN SELECT v FROM r WHERE id > 190").await;
    let scan = access(&range, "TableRangeScan");
    assert_eq!(scan[2].as_deref(), Some("row"));
    assert_eq!(scan[3].as_deref(), Some("table:test.r"));
    assert_eq!(scan[4].as_deref(), Some("range:[191,+inf]"));

    // Without statistics an equality on an index column uses the index,
    // and so does a range of its first column closed at both ends; one
    // open at an end may cover the table, and goes to one scan.
    let before = rows(&mut c, "EXPLAIN SELECT v FROM r WHERE k = 1").await;
    access(&before, "IndexLookUp");
    let closed = rows(&mut c, "EXPLAIN SELECT v FROM r WHERE u BETWEEN 10 AND 19").await;
    let lookup = access(&closed, "IndexLookUp");
    assert_eq!(lookup[3].as_deref(), Some("table:test.r, index:iu"));
    assert_eq!(lookup[4].as_deref(), Some("range:[10,19]"));
    let open = rows(&mut c, "EXPLAIN SELECT v FROM r WHERE u > 10").await;
    access(&open, "ColumnarScan");
    c.query_drop("ANALYZE TABLE r").await.unwrap();
    // With them, the router reads half the table by one scan instead, on
    // the columnar replica…
    let common = rows(&mut c, "EXPLAIN SELECT v FROM r WHERE k = 1").await;
    let full = access(&common, "ColumnarScan");
    assert_eq!(full[1].as_deref(), Some("2000.00"));
    assert_eq!(full[2].as_deref(), Some("columnar"));
    // …and still looks a selective value up…
    let rare = rows(&mut c, "EXPLAIN SELECT v FROM r WHERE u = 7").await;
    let lookup = access(&rare, "IndexLookUp");
    assert_eq!(lookup[1].as_deref(), Some("1.00"));
    assert_eq!(lookup[3].as_deref(), Some("table:test.r, index:iu"));
    // …or a short range, by the share of the column's values it covers.
    let short = rows(&mut c, "EXPLAIN SELECT v FROM r WHERE u > 1990").await;
    let lookup = access(&short, "IndexLookUp");
    assert_eq!(lookup[1].as_deref(), Some("10.00"));
    assert_eq!(lookup[4].as_deref(), Some("range:[1991,+inf]"));
    // A key range is the row store's while it is short; one holding most
    // of the table is cheaper as a columnar scan.
    let keys = rows(&mut c, "EXPLAIN SELECT v FROM r WHERE id > 1900").await;
    let scan = access(&keys, "TableRangeScan");
    assert_eq!(scan[1].as_deref(), Some("100.00"));
    let most = rows(&mut c, "EXPLAIN SELECT v FROM r WHERE id > 100").await;
    assert_eq!(
        access(&most, "ColumnarScan")[2].as_deref(),
        Some("columnar")
    );
    // A range after a clustered key's pinned column narrows its estimate.
    c.query_drop("CREATE TABLE ck (a INT, b INT, c INT, PRIMARY KEY (a, b))")
        .await
        .unwrap();
    let values: Vec<String> = (1..=2000)
        .map(|i| format!("({}, {i}, {i})", i % 2))
        .collect();
    c.query_drop(format!("INSERT INTO ck VALUES {}", values.join(",")))
        .await
        .unwrap();
    c.query_drop("ANALYZE TABLE ck").await.unwrap();
    let prefix = rows(
        &mut c,
        "EXPLAIN SELECT c FROM ck WHERE a = 1 AND b BETWEEN 11 AND 30",
    )
    .await;
    let lookup = access(&prefix, "IndexLookUp");
    assert_eq!(lookup[1].as_deref(), Some("10.00"));
    assert_eq!(lookup[2].as_deref(), Some("row"));
    // Every plan answers the same: `tests/slt/routing.slt` asks these
    // queries of the same tables on each engine setting.

    // Statistics follow writes between analyses; a small table is cheaper
    // to scan on the row store than to wait for the replica.
    c.query_drop("DELETE FROM r WHERE id > 1500").await.unwrap();
    let after = rows(&mut c, "EXPLAIN SELECT v FROM r").await;
    assert_eq!(
        access(&after, "ColumnarScan")[1].as_deref(),
        Some("1500.00")
    );
    c.query_drop("DELETE FROM r WHERE id > 100").await.unwrap();
    let small = rows(&mut c, "EXPLAIN SELECT v FROM r").await;
    assert_eq!(
        access(&small, "TableFullScan")[1].as_deref(),
        Some("100.00")
    );

    // EXPLAIN ANALYZE runs the query and adds actual rows and time; a
    // hint still sends the small table to the replica.
    let analyzed = rows(
        &mut c,
        "EXPLAIN ANALYZE SELECT /*+ READ_FROM_STORAGE(COLUMNAR[r]) */ k, count(*) FROM r GROUP BY k",
    )
    .await;
    assert_eq!(analyzed[0].len(), 7);
    let scan = access(&analyzed, "ColumnarScan");
    assert_eq!(scan[5].as_deref(), Some("100"));
    assert!(analyzed.iter().all(|r| r[6].is_some()));

    // The row store still serves a full scan when the session says so.
    c.query_drop("SET duet_isolation_read_engines = 'row'")
        .await
        .unwrap();
    let forced = rows(&mut c, "EXPLAIN SELECT v FROM r").await;
    assert_eq!(access(&forced, "TableFullScan")[2].as_deref(), Some("row"));
    c.query_drop("SET duet_isolation_read_engines = 'row,columnar'")
        .await
        .unwrap();
    c.query_drop("ALTER TABLE r SET COLUMNAR REPLICA 0")
        .await
        .unwrap();
    // A hint for an engine with no replica falls back with a warning…
    let hinted = rows(
        &mut c,
        "SELECT /*+ READ_FROM_STORAGE(COLUMNAR[x]) */ count(*) FROM r AS x",
    )
    .await;
    assert_eq!(hinted, table(&[&["100"]]));
    let warnings = rows(&mut c, "SHOW WARNINGS").await;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0][1].as_deref(), Some("1815"));
    // …and a session that allows only that engine gets a clear error.
    c.query_drop("SET duet_isolation_read_engines = 'columnar'")
        .await
        .unwrap();
    assert_eq!(err(&mut c, "SELECT count(*) FROM r").await, 1815);
    c.query_drop("SET duet_isolation_read_engines = 'row'")
        .await
        .unwrap();
    assert_eq!(
        rows(&mut c, "SELECT count(*) FROM r").await,
        table(&[&["100"]])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_written_enough_are_analyzed_without_being_asked() {
    let t = TestServer::start_with(|c| c.auto_analyze_interval_secs = 1).await;
    let mut c = t.connect().await;
    c.query_drop("USE test").await.unwrap();
    for table in ["big", "small"] {
        c.query_drop(format!("CREATE TABLE {table} (id INT PRIMARY KEY, v INT)"))
            .await
            .unwrap();
    }
    let values = |n: i32| {
        (1..=n)
            .map(|i| format!("({i}, {i})"))
            .collect::<Vec<_>>()
            .join(",")
    };
    // More rows than one page of the analysis reads.
    c.query_drop(format!("INSERT INTO big VALUES {}", values(5000)))
        .await
        .unwrap();
    c.query_drop(format!("INSERT INTO small VALUES {}", values(10)))
        .await
        .unwrap();
    // The scan's estimate: N/A until statistics exist.
    let estimate = |plan: Vec<Vec<Option<String>>>| {
        plan.into_iter()
            .find(|r| r[2].is_some())
            .and_then(|r| r[1].clone())
    };
    let started = std::time::Instant::now();
    loop {
        let plan = rows(&mut c, "EXPLAIN SELECT v FROM big WHERE id > 4900").await;
        if estimate(plan).as_deref() == Some("100.00") {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "big was never analyzed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let plan = rows(&mut c, "EXPLAIN SELECT v FROM small").await;
    assert_eq!(
        estimate(plan).as_deref(),
        Some("N/A"),
        "10 rows are not due"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_locks_are_held_by_one_connection_until_it_lets_go_or_leaves() {
    let t = TestServer::start().await;
    let mut a = t.connect().await;
    let mut b = t.connect().await;
    let one = |rows: Vec<Vec<Option<String>>>| rows[0][0].clone();
    assert_eq!(
        one(rows(&mut a, "SELECT GET_LOCK('migrate', 0)").await).as_deref(),
        Some("1")
    );
    assert_eq!(
        one(rows(&mut b, "SELECT GET_LOCK('migrate', 0)").await).as_deref(),
        Some("0")
    );
    let a_id = one(rows(&mut a, "SELECT CONNECTION_ID()").await);
    assert_eq!(
        one(rows(&mut b, "SELECT IS_USED_LOCK('migrate')").await),
        a_id
    );
    assert_eq!(
        one(rows(&mut b, "SELECT RELEASE_LOCK('migrate')").await).as_deref(),
        Some("0")
    );
    assert_eq!(one(rows(&mut b, "SELECT RELEASE_LOCK('nope')").await), None);
    // A waiter gets the lock once its holder goes away.
    let waiter = tokio::spawn(async move {
        let got = rows(&mut b, "SELECT GET_LOCK('migrate', 10)").await;
        (b, got)
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    a.disconnect().await.unwrap();
    let (mut b, got) = waiter.await.unwrap();
    assert_eq!(one(got).as_deref(), Some("1"));
    assert_eq!(
        one(rows(&mut b, "SELECT IS_FREE_LOCK('migrate')").await).as_deref(),
        Some("0")
    );
    assert_eq!(
        one(rows(&mut b, "SELECT RELEASE_ALL_LOCKS()").await).as_deref(),
        Some("1")
    );
    assert_eq!(
        one(rows(&mut b, "SELECT IS_FREE_LOCK('migrate')").await).as_deref(),
        Some("1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_for_update_locks_and_reads_the_latest_rows() {
    let t = TestServer::start().await;
    let mut a = t.connect().await;
    let mut b = t.connect().await;
    for c in [&mut a, &mut b] {
        c.query_drop("USE test").await.unwrap();
    }
    // Locking reads in an optimistic transaction, whose plain writes lock
    // nothing until commit.
    a.query_drop("SET duet_txn_mode = 'optimistic'")
        .await
        .unwrap();
    a.query_drop("CREATE TABLE acct (id INT PRIMARY KEY, bal INT)")
        .await
        .unwrap();
    a.query_drop("INSERT INTO acct VALUES (1, 100), (2, 100)")
        .await
        .unwrap();

    // A's snapshot predates B's deposit; its locking read sees the deposit,
    // and its update builds on it: no lost update, no conflict.
    a.query_drop("BEGIN").await.unwrap();
    assert_eq!(
        rows(&mut a, "SELECT bal FROM acct WHERE id = 2").await,
        table(&[&["100"]])
    );
    b.query_drop("UPDATE acct SET bal = bal + 10 WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(
        rows(&mut a, "SELECT bal FROM acct WHERE id = 1").await,
        table(&[&["100"]]),
        "a plain read stays at the snapshot"
    );
    assert_eq!(
        rows(&mut a, "SELECT bal FROM acct WHERE id = 1 FOR UPDATE").await,
        table(&[&["110"]])
    );
    a.query_drop("UPDATE acct SET bal = bal - 1 WHERE id = 1")
        .await
        .unwrap();

    // While A holds the lock, B's write to that row waits and then gives
    // up with 1205; B's write to another row goes through.
    assert_eq!(
        err(&mut b, "UPDATE acct SET bal = 0 WHERE id = 1").await,
        1205
    );
    b.query_drop("UPDATE acct SET bal = bal + 1 WHERE id = 2")
        .await
        .unwrap();
    a.query_drop("COMMIT").await.unwrap();
    assert_eq!(
        rows(&mut b, "SELECT id, bal FROM acct ORDER BY id").await,
        table(&[&["1", "109"], &["2", "101"]])
    );

    // `ORDER BY … LIMIT` locks the rows it returns (its answer, and a
    // locking read on one connection, are in `tests/slt/txn.slt`), not
    // every match: the oldest row is taken, the next is free for another
    // transaction.
    a.query_drop("BEGIN").await.unwrap();
    a.query_drop("SELECT id FROM acct WHERE bal > 0 ORDER BY id LIMIT 1 FOR UPDATE")
        .await
        .unwrap();
    b.query_drop("UPDATE acct SET bal = bal + 1 WHERE id = 2")
        .await
        .unwrap();
    assert_eq!(
        err(&mut b, "UPDATE acct SET bal = 0 WHERE id = 1").await,
        1205
    );
    a.query_drop("ROLLBACK").await.unwrap();

    // A row written earlier in the transaction (from its snapshot), then
    // changed by another, then locked: a conflict (1213), never an
    // overwrite of the newer commit. A locking read after a write to
    // another row still holds its lock against other writers.
    a.query_drop("BEGIN").await.unwrap();
    a.query_drop("UPDATE acct SET bal = bal + 1 WHERE id = 1")
        .await
        .unwrap();
    b.query_drop("UPDATE acct SET bal = 500 WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(
        err(&mut a, "SELECT bal FROM acct WHERE id = 1 FOR UPDATE").await,
        1213
    );
    a.query_drop("ROLLBACK").await.unwrap();
    a.query_drop("BEGIN").await.unwrap();
    a.query_drop("UPDATE acct SET bal = bal + 1 WHERE id = 1")
        .await
        .unwrap();
    a.query_drop("SELECT bal FROM acct WHERE id = 2 FOR UPDATE")
        .await
        .unwrap();
    assert_eq!(
        err(&mut b, "UPDATE acct SET bal = 0 WHERE id = 2").await,
        1205
    );
    a.query_drop("COMMIT").await.unwrap();
    assert_eq!(
        rows(&mut b, "SELECT bal FROM acct WHERE id = 1").await,
        table(&[&["501"]])
    );

    // A client that disconnects mid-transaction leaves no lock behind.
    let mut gone = t.connect().await;
    gone.query_drop("USE test").await.unwrap();
    gone.query_drop("BEGIN").await.unwrap();
    gone.query_drop("SELECT bal FROM acct WHERE id = 1 FOR UPDATE")
        .await
        .unwrap();
    gone.disconnect().await.unwrap();
    let started = std::time::Instant::now();
    loop {
        match b.query_drop("UPDATE acct SET bal = 7 WHERE id = 1").await {
            Ok(()) => break,
            // The server notices the disconnect asynchronously.
            Err(_) if started.elapsed() < std::time::Duration::from_secs(3) => {}
            Err(e) => panic!("the departed client's lock stayed: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_list_and_status_describe_the_instance() {
    // What information_schema and SHOW say of the schema, the engine and
    // the character sets is in `tests/slt/infoschema.slt`; what changes
    // with the connections is here.
    let t = TestServer::start().await;
    let mut c = setup(&t).await;
    let mut other = t.connect().await;

    // The other connection shows up idle in the process list.
    other.query_drop("USE test").await.unwrap();
    let list = rows(&mut c, "SHOW FULL PROCESSLIST").await;
    assert_eq!(list.len(), 2, "{list:?}");
    let me = list
        .iter()
        .find(|r| r[4].as_deref() == Some("Query"))
        .expect("this session runs SHOW PROCESSLIST");
    assert_eq!(me[7].as_deref(), Some("SHOW FULL PROCESSLIST"));
    assert_eq!(me[3].as_deref(), Some("shop"));
    let idle = list
        .iter()
        .find(|r| r[4].as_deref() == Some("Sleep"))
        .unwrap();
    assert_eq!(idle[3].as_deref(), Some("test"));
    assert_eq!(idle[7], None);
    drop(other);

    let status = rows(&mut c, "SHOW GLOBAL STATUS LIKE 'Threads_%'").await;
    assert_eq!(status.len(), 2, "{status:?}");
    assert_eq!(status[1][0].as_deref(), Some("Threads_running"));
    assert_eq!(status[1][1].as_deref(), Some("1"));
    let uptime = rows(&mut c, "SHOW STATUS WHERE Variable_name = 'Uptime'").await;
    assert_eq!(uptime.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_names_are_named_in_their_errors() {
    // The answers of the common functions are in `tests/slt/functions.slt`,
    // these errors' codes in `tests/slt/errors.slt`; what they cannot say
    // is the text of an error.
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    c.query_drop("USE test").await.unwrap();
    // A column with no table to come from is named in error 1054.
    let err = c.query_drop("SELECT HEX(x)").await.unwrap_err();
    assert!(err.to_string().contains("Unknown column 'x'"), "{err}");
    // What neither engine knows is error 1305, named as MySQL names it.
    let err = c.query_drop("SELECT NO_SUCH_FN(1)").await.unwrap_err();
    assert!(
        err.to_string().contains("test.NO_SUCH_FN") || err.to_string().contains("test.no_such_fn"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arithmetic_results_carry_mysqls_types_and_names() {
    // The answers are in `tests/slt/arithmetic.slt`; what it cannot say is
    // the column metadata the client receives.
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    c.query_drop("USE test").await.unwrap();
    c.query_drop(
        "CREATE TABLE m (a INT, b INT, d DECIMAL(10,2), f DOUBLE, s VARCHAR(10), dt DATE)",
    )
    .await
    .unwrap();
    c.query_drop(
        "INSERT INTO m VALUES (7, 2, 1.50, 2.5, 'x', '2024-01-31'), (-7, 0, NULL, 0, 'y', NULL)",
    )
    .await
    .unwrap();
    use mysql_async::consts::ColumnType as T;
    // `/` of integers is a DECIMAL with four more digits; DIV a BIGINT.
    let result = c.query_iter("SELECT a/b, a DIV b FROM m").await.unwrap();
    let columns = result.columns().unwrap();
    assert_eq!(columns[0].column_type(), T::MYSQL_TYPE_NEWDECIMAL);
    assert_eq!(columns[0].decimals(), 4);
    assert_eq!(columns[1].column_type(), T::MYSQL_TYPE_LONGLONG);
    drop(result);
    // SUM of an exact number is an exact DECIMAL; of a DOUBLE, a DOUBLE.
    let result = c.query_iter("SELECT SUM(a), SUM(f) FROM m").await.unwrap();
    let columns = result.columns().unwrap();
    assert_eq!(columns[0].column_type(), T::MYSQL_TYPE_NEWDECIMAL);
    assert_eq!(columns[0].decimals(), 0);
    assert_eq!(columns[0].name_str(), "SUM(a)");
    assert_eq!(columns[1].column_type(), T::MYSQL_TYPE_DOUBLE);
    drop(result);
    let result = c.query_iter("SELECT AVG(b) FROM m").await.unwrap();
    let columns = result.columns().unwrap();
    assert_eq!(columns[0].column_type(), T::MYSQL_TYPE_NEWDECIMAL);
    assert_eq!(columns[0].decimals(), 4);
    drop(result);
    // Unaliased columns are named as typed.
    let result = c
        .query_iter("SELECT SUBSTRING(s, 1, 1), -a, FLOOR(2.5) FROM m WHERE a = 7")
        .await
        .unwrap();
    let names: Vec<String> = result
        .columns()
        .unwrap()
        .iter()
        .map(|c| c.name_str().to_string())
        .collect();
    assert_eq!(names, ["SUBSTRING(s, 1, 1)", "-a", "FLOOR(2.5)"]);
    drop(result);

    // A view describes as its query's columns, under the view's names.
    c.query_drop("CREATE TABLE strs (id INT PRIMARY KEY, s VARCHAR(10), p DECIMAL(6,2))")
        .await
        .unwrap();
    c.query_drop("CREATE VIEW strv (k, label, price, twice) AS SELECT id, s, p, p * 2 FROM strs")
        .await
        .unwrap();
    let described = rows(&mut c, "DESCRIBE strv").await;
    let fields: Vec<(&str, &str, &str)> = described
        .iter()
        .map(|r| {
            (
                r[0].as_deref().unwrap_or(""),
                r[1].as_deref().unwrap_or(""),
                r[2].as_deref().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        fields[..3],
        [
            ("k", "int", "NO"),
            ("label", "varchar(10)", "YES"),
            ("price", "decimal(6,2)", "YES")
        ]
    );
    assert_eq!(fields[3].0, "twice");
    assert!(fields[3].1.starts_with("decimal("), "{:?}", fields[3]);
    assert_eq!(rows(&mut c, "SHOW COLUMNS FROM strv").await, described);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_columns_carry_their_declared_types_on_every_path() {
    use mysql_async::consts::ColumnType as T;
    let t = TestServer::start().await;
    let mut c = setup(&t).await;
    c.query_drop(
        "INSERT INTO items (name, price, qty) VALUES ('pen', 1.50, 7), ('ink', 2.25, 200)",
    )
    .await
    .unwrap();
    // A point get, a scan through the query engine, and a computed column.
    for sql in [
        "SELECT id, name, price, qty FROM items WHERE id = 1",
        "SELECT id, name, price, qty FROM items WHERE name = 'pen'",
        "SELECT x.id, x.name, x.price, x.qty FROM items AS x JOIN items AS y ON x.id = y.id WHERE x.qty = 7",
    ] {
        let result = c.query_iter(sql).await.unwrap();
        let columns = result.columns().unwrap();
        let types: Vec<T> = columns.iter().map(|c| c.column_type()).collect();
        assert_eq!(
            types,
            [
                T::MYSQL_TYPE_LONG,
                T::MYSQL_TYPE_VAR_STRING,
                T::MYSQL_TYPE_NEWDECIMAL,
                T::MYSQL_TYPE_TINY
            ],
            "{sql}"
        );
        assert_eq!(columns[2].decimals(), 2, "{sql}");
        assert!(
            columns[3]
                .flags()
                .contains(mysql_async::consts::ColumnFlags::UNSIGNED_FLAG),
            "{sql}"
        );
        assert_eq!(columns[0].org_table_str(), "items", "{sql}");
        assert_eq!(columns[0].schema_str(), "shop", "{sql}");
        drop(result);
    }
    // The binary protocol encodes each value in its declared width.
    let row: (i32, String, String, u8) = c
        .exec_first(
            "SELECT id, name, price, qty FROM items WHERE name = ? AND qty > ?",
            ("ink", 100),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row, (2, "ink".to_string(), "2.25".to_string(), 200));
    let sum: Option<String> = c.query_first("SELECT sum(qty) FROM items").await.unwrap();
    assert_eq!(sum.as_deref(), Some("207"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composite_keys_are_looked_up_by_their_leading_columns() {
    // The answers, and those of writes by these keys, are in
    // `tests/slt/keys.slt`; here, the access path the router picks.
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    c.query_drop("USE test").await.unwrap();
    c.query_drop(
        "CREATE TABLE s (w INT NOT NULL, i INT NOT NULL, q INT, name VARCHAR(16), \
         PRIMARY KEY (w, i), KEY wn (w, name))",
    )
    .await
    .unwrap();
    let values: Vec<String> = (1..=3)
        .flat_map(|w| (1..=50).map(move |i| format!("({w}, {i}, {}, 'n{}')", w * 100 + i, i % 5)))
        .collect();
    c.query_drop(format!("INSERT INTO s VALUES {}", values.join(",")))
        .await
        .unwrap();
    let access = |plan: &[Vec<Option<String>>]| {
        plan.iter()
            .find(|r| r[2].as_deref().is_some_and(|e| !e.is_empty()))
            .cloned()
            .unwrap_or_else(|| panic!("no table access in {plan:?}"))
    };
    // Both key columns, in either order: a point get of the clustered key.
    for sql in [
        "SELECT q FROM s WHERE w = 2 AND i = 7",
        "SELECT q FROM s WHERE i = 7 AND w = 2",
    ] {
        let plan = rows(&mut c, &format!("EXPLAIN {sql}")).await;
        assert_eq!(plan[0][0].as_deref(), Some("Point_Get_1"), "{plan:?}");
        assert_eq!(plan[0][3].as_deref(), Some("table:test.s"));
        assert_eq!(plan[0][4].as_deref(), Some("handle:(2,7)"));
    }
    // With another condition the query engine reads one prefix of the key.
    let plan = rows(
        &mut c,
        "EXPLAIN SELECT q FROM s WHERE i = 7 AND w = 2 AND q > 0",
    )
    .await;
    let scan = access(&plan);
    assert_eq!(scan[2].as_deref(), Some("row"), "{plan:?}");
    assert_eq!(scan[3].as_deref(), Some("table:test.s, index:PRIMARY"));
    assert_eq!(scan[4].as_deref(), Some("lookup of 1 value(s)"));
    // A leading column with an IN list on the next: one prefix per pair.
    let plan = rows(
        &mut c,
        "EXPLAIN SELECT q FROM s WHERE w = 3 AND i IN (1, 2, 60) ORDER BY q",
    )
    .await;
    assert_eq!(access(&plan)[4].as_deref(), Some("lookup of 3 value(s)"));
    // A range on the column after the pinned ones narrows each prefix.
    let plan = rows(
        &mut c,
        "EXPLAIN SELECT count(*), min(q) FROM s WHERE w = 2 AND i >= 10 AND i < 20",
    )
    .await;
    assert_eq!(
        access(&plan)[4].as_deref(),
        Some("lookup of 1 value(s), range:[10,19]")
    );
    // Two columns of a secondary index.
    let plan = rows(
        &mut c,
        "EXPLAIN SELECT count(*) FROM s WHERE name = 'n3' AND w = 2",
    )
    .await;
    assert_eq!(access(&plan)[3].as_deref(), Some("table:test.s, index:wn"));
}

/// One query's result columns: name, type and whether unsigned.
async fn columns_of(
    c: &mut Conn,
    sql: &str,
) -> Vec<(String, mysql_async::consts::ColumnType, u16)> {
    let result = c
        .query_iter(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let columns = result
        .columns()
        .map(|cols| {
            cols.iter()
                .map(|col| {
                    let flags = col.flags() & mysql_async::consts::ColumnFlags::UNSIGNED_FLAG;
                    (col.name_str().to_string(), col.column_type(), flags.bits())
                })
                .collect()
        })
        .unwrap_or_default();
    drop(result);
    columns
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_row_executor_answers_key_reads_as_the_query_engine_does() {
    // The answers of these reads, each asked plainly and with a condition
    // that leaves it to the query engine, and of the writes by key, are in
    // `tests/slt/key_reads.slt`; here, the path each takes and the columns
    // it describes, the binary protocol's keys, and the affected rows.
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    c.query_drop("USE test").await.unwrap();
    c.query_drop(
        "CREATE TABLE f (id INT PRIMARY KEY, k INT, c CHAR(10), d DATE, b VARBINARY(4), \
         u INT UNSIGNED, p DECIMAL(6,2))",
    )
    .await
    .unwrap();
    let values: Vec<String> = (1..=60)
        .map(|i| {
            let c = if i % 7 == 0 {
                "NULL".into()
            } else {
                format!("'c{}'", i % 5)
            };
            format!(
                "({i}, {}, {c}, '2024-01-{:02}', x'{:02x}', {}, {}.25)",
                i % 4,
                i % 28 + 1,
                i % 3,
                i * 1000,
                i % 9
            )
        })
        .collect();
    c.query_drop(format!("INSERT INTO f VALUES {}", values.join(",")))
        .await
        .unwrap();
    c.query_drop("SET duet_isolation_read_engines = 'row'")
        .await
        .unwrap();

    // `{w}` is where the query engine's copy adds a condition the row
    // executor does not take.
    let queries = [
        "SELECT * FROM f WHERE id = 5{w}",
        "SELECT c, id FROM f WHERE id IN (9, 2, 7, 70, 2){w}",
        "SELECT c FROM f WHERE id BETWEEN 10 AND 30{w}",
        "SELECT c FROM f WHERE id BETWEEN 10 AND 30{w} ORDER BY c",
        "SELECT DISTINCT c FROM f WHERE id BETWEEN 10 AND 30{w} ORDER BY c",
        "SELECT DISTINCT c FROM f WHERE id BETWEEN 10 AND 30{w} ORDER BY c DESC",
        "SELECT x.c AS name, id FROM f AS x WHERE x.id >= 3 AND id < 20{w} ORDER BY name DESC, 2",
        "SELECT k, d, b, u FROM f WHERE 50 < id AND id <= 58{w} ORDER BY u DESC LIMIT 3",
        "SELECT id, p FROM f WHERE id BETWEEN 1 AND 60{w} LIMIT 5 OFFSET 2",
        "SELECT id, b FROM f WHERE id BETWEEN 1 AND 60{w} ORDER BY b, id LIMIT 4, 3",
        "SELECT id FROM f WHERE id > 40 AND id < 41{w}",
        "SELECT id FROM f WHERE id = 5 AND id BETWEEN 6 AND 9{w}",
        "SELECT DISTINCT k, c FROM f WHERE id IN (1, 5, 9, 13, 14, 28){w} ORDER BY k",
        "SELECT SUM(k) FROM f WHERE id BETWEEN 10 AND 30{w}",
        "SELECT COUNT(*), count(c), MIN(k), max(u), SUM(u), min(id) FROM f WHERE id BETWEEN 1 AND 60{w}",
        "SELECT sum(k) AS s, MAX(k) FROM f WHERE id BETWEEN 100 AND 200{w}",
        "SELECT count(*) FROM f WHERE id IN (1, 2, 999){w}",
    ];
    for template in queries {
        let fast = template.replace("{w}", "");
        let engine = template.replace("{w}", " AND 1 = 1");
        let plan = rows(&mut c, &format!("EXPLAIN {fast}")).await;
        assert_eq!(plan.len(), 1, "{fast}: {plan:?}");
        let op = plan[0][0].clone().unwrap();
        assert!(
            ["Point_Get_1", "Batch_Point_Get_1", "TableRangeScan_1"].contains(&op.as_str()),
            "{fast}: {plan:?}"
        );
        let other = rows(&mut c, &format!("EXPLAIN {engine}")).await;
        assert!(other.len() > 1, "{engine}: {other:?}");
        assert_eq!(
            columns_of(&mut c, &fast).await,
            columns_of(&mut c, &engine).await,
            "{fast}"
        );
    }
    // An unbounded or wide range, a decimal sort key, any other condition,
    // other aggregates and groups are left to the query engine.
    for sql in [
        "EXPLAIN SELECT c FROM f WHERE id > 5",
        "EXPLAIN SELECT c FROM f WHERE id BETWEEN 1 AND 5000",
        "EXPLAIN SELECT p FROM f WHERE id BETWEEN 1 AND 5 ORDER BY p",
        "EXPLAIN SELECT c FROM f WHERE id BETWEEN 1 AND 5 AND c = 'c1'",
        "EXPLAIN SELECT sum(p), count(DISTINCT k) FROM f WHERE id BETWEEN 1 AND 5",
        "EXPLAIN SELECT id, count(*) FROM f WHERE id BETWEEN 1 AND 5 GROUP BY id",
    ] {
        assert!(rows(&mut c, sql).await.len() > 1, "{sql}");
    }
    // The binary protocol's parameters name the keys just as well.
    let prepared: Vec<(Option<String>,)> = c
        .exec(
            "SELECT DISTINCT c FROM f WHERE id BETWEEN ? AND ? ORDER BY c",
            (10, 30),
        )
        .await
        .unwrap();
    let text = rows(
        &mut c,
        "SELECT DISTINCT c FROM f WHERE id BETWEEN 10 AND 30 ORDER BY c",
    )
    .await;
    assert_eq!(
        prepared.into_iter().map(|(v,)| vec![v]).collect::<Vec<_>>(),
        text
    );
    // A session that reads only the columnar replica keeps key reads there.
    c.query_drop("SET duet_isolation_read_engines = 'columnar'")
        .await
        .unwrap();
    let columnar = rows(&mut c, "EXPLAIN SELECT c FROM f WHERE id BETWEEN 1 AND 5").await;
    assert!(
        columnar.iter().any(|r| r[2].as_deref() == Some("columnar")),
        "{columnar:?}"
    );
    c.query_drop("SET duet_isolation_read_engines = 'row,columnar'")
        .await
        .unwrap();

    // UPDATE and DELETE find their rows by key the same way.
    let r = c
        .query_iter("UPDATE f SET k = k + 10 WHERE id BETWEEN 1 AND 10")
        .await
        .unwrap();
    assert_eq!(r.affected_rows(), 10);
    drop(r);
    let r = c
        .query_iter("DELETE FROM f WHERE id IN (1, 2, 99)")
        .await
        .unwrap();
    assert_eq!(r.affected_rows(), 2);
    drop(r);
    let r = c
        .query_iter("UPDATE f SET k = 0 WHERE id > 55 LIMIT 2")
        .await
        .unwrap();
    // Rows 56 and 57 match; 56 already had k = 0, so one changes.
    assert_eq!(r.affected_rows(), 1);
    drop(r);
    c.exec_drop("DELETE FROM f WHERE id = ?", (60,))
        .await
        .unwrap();
    assert_eq!(c.affected_rows(), 1);
}

/// JSON columns are JSON to clients, and so is what `->` reads of them;
/// `->>` reads text. (The answers of the JSON functions and operators, and
/// their errors, are in `tests/slt/json.slt`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_columns_and_arrows_carry_mysqls_column_types() {
    use mysql_async::consts::ColumnType as T;
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    c.query_drop("USE test").await.unwrap();
    c.query_drop("CREATE TABLE j (id INT PRIMARY KEY, doc JSON)")
        .await
        .unwrap();
    c.query_drop(r#"INSERT INTO j VALUES (1, '{"b": [1, 2], "a": "x"}')"#)
        .await
        .unwrap();
    let result = c
        .query_iter("SELECT doc, doc->'$.a', doc->>'$.a' FROM j WHERE id = 1")
        .await
        .unwrap();
    let types: Vec<T> = result
        .columns()
        .unwrap()
        .iter()
        .map(|c| c.column_type())
        .collect();
    drop(result);
    assert_eq!(
        types,
        [
            T::MYSQL_TYPE_JSON,
            T::MYSQL_TYPE_JSON,
            T::MYSQL_TYPE_VAR_STRING
        ]
    );
}
