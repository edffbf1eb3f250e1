//! `SPLIT TABLE` (TiDB's pre-split) on one node, over the MySQL protocol:
//! the table cut where asked, `SHOW TABLE t REGIONS` showing the cuts,
//! the rows unchanged on both engines, and a clear error for each wrong
//! input. The cluster case is in `placement.rs`.

use duet_storage::codec::key;
use duet_tests::TestServer;
use mysql_async::prelude::*;

use crate::sql::{err, rows};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_table_cuts_regions_where_asked_and_refuses_bad_input() {
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    c.query_drop("CREATE DATABASE s").await.unwrap();
    c.query_drop("USE s").await.unwrap();
    c.query_drop("CREATE TABLE t (id BIGINT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    let values: Vec<String> = (0..200).map(|i| format!("({i}, {i})")).collect();
    c.query_drop(format!("INSERT INTO t VALUES {}", values.join(",")))
        .await
        .unwrap();

    let split = "SPLIT TABLE t BETWEEN (0) AND (200) REGIONS 4";
    assert_eq!(
        rows(&mut c, split).await,
        vec![vec![Some("4".to_string()), None]]
    );
    // The same cuts again make nothing new.
    assert_eq!(rows(&mut c, split).await[0][0].as_deref(), Some("0"));
    // Explicit cuts, one of them already made.
    let by = "SPLIT TABLE s.t BY (50), (75), (-1)";
    assert_eq!(rows(&mut c, by).await[0][0].as_deref(), Some("2"));

    let regions = rows(&mut c, "SHOW TABLE t REGIONS").await;
    let starts: Vec<i64> = (regions.iter())
        .filter_map(|r| key::decode_row_key(&unhex(r[1].as_deref()?), false).ok())
        .filter_map(|(_, h)| match h {
            key::Handle::Int(h) => Some(h),
            _ => None,
        })
        .collect();
    assert_eq!(starts, vec![-1, 0, 50, 75, 100, 150], "{regions:?}");
    // Each region leads on the one store; together they tile the table.
    assert!(regions.iter().all(|r| r[3].as_deref() == Some("1")));
    for pair in regions.windows(2) {
        assert_eq!(pair[0][2], pair[1][1], "neighbours meet: {regions:?}");
    }

    // Every row reads as written, from each engine and across the cuts.
    for engine in ["row", "columnar", "row,columnar"] {
        c.query_drop(format!("SET duet_isolation_read_engines = '{engine}'"))
            .await
            .unwrap();
        let totals = rows(&mut c, "SELECT COUNT(*), SUM(v) FROM t").await;
        assert_eq!(
            totals,
            vec![vec![Some("200".to_string()), Some("19900".to_string())]],
            "{engine}"
        );
        let range = rows(&mut c, "SELECT COUNT(*) FROM t WHERE id BETWEEN 40 AND 160").await;
        assert_eq!(range[0][0].as_deref(), Some("121"), "{engine}");
    }
    c.query_drop("UPDATE t SET v = v + 1 WHERE id IN (49, 50, 149, 150)")
        .await
        .unwrap();
    let sum = rows(&mut c, "SELECT SUM(v) FROM t").await;
    assert_eq!(sum[0][0].as_deref(), Some("19904"));

    // A table without a primary key splits by its row ids; a composite key
    // by the values given.
    c.query_drop("CREATE TABLE h (a VARCHAR(10), b INT)")
        .await
        .unwrap();
    let hidden = rows(&mut c, "SPLIT TABLE h BETWEEN (0) AND (10) REGIONS 2").await;
    assert_eq!(hidden[0][0].as_deref(), Some("2"));
    c.query_drop("CREATE TABLE k (a VARCHAR(10), b INT, PRIMARY KEY (a, b))")
        .await
        .unwrap();
    let by_text = rows(&mut c, "SPLIT TABLE k BY ('m', 1), ('c')").await;
    assert_eq!(by_text[0][0].as_deref(), Some("2"));

    // Wrong input: each a MySQL error, and the connection stays usable.
    for (statement, code) in [
        ("SPLIT TABLE t BETWEEN (10) AND (5) REGIONS 2", 1210),
        ("SPLIT TABLE t BETWEEN (5) AND (5) REGIONS 2", 1210),
        ("SPLIT TABLE t BETWEEN (0) AND (10) REGIONS 0", 1210),
        ("SPLIT TABLE t BETWEEN (0) AND (10) REGIONS 1001", 1210),
        ("SPLIT TABLE t BETWEEN (0) AND (10) REGIONS -3", 1210),
        ("SPLIT TABLE t BETWEEN (NULL) AND (10) REGIONS 2", 1210),
        ("SPLIT TABLE t BETWEEN (0, 1) AND (10, 2) REGIONS 2", 1210),
        ("SPLIT TABLE t BY ('x')", 1366),
        ("SPLIT TABLE k BETWEEN ('a') AND ('z') REGIONS 2", 1210),
        ("SPLIT TABLE k BY ('a', 1, 2)", 1210),
        ("SPLIT TABLE no_such BY (1)", 1146),
        ("SPLIT TABLE t BETWEEN (0) AND (10)", 1064),
        ("SPLIT TABLE t BETWEEN 0 AND 10 REGIONS 2", 1064),
        ("SPLIT TABLE t", 1064),
        ("SPLIT TABLE t INDEX i BY (1)", 1235),
    ] {
        assert_eq!(err(&mut c, statement).await, code, "{statement}");
    }
    assert_eq!(rows(&mut c, "SELECT 1").await[0][0].as_deref(), Some("1"));
}
