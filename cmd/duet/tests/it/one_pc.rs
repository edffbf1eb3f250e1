//! One-phase commit (`duet_enable_1pc`, on by default): a transaction
//! whose writes all fall in one region commits in one Raft round, one
//! spread over regions (or with the variable off) in two; both read back
//! alike, and a snapshot taken before a one-phase commit never sees it.
//! `duet_txn_commits_total{phases}` on `/metrics` tells them apart.

use duet_tests::TestServer;
use mysql_async::prelude::*;

use crate::sql::rows;

/// The node's commits so far: (one-phase, two-phase).
fn commits(t: &TestServer) -> (u64, u64) {
    let metrics = duet_tests::http_get(t.status_addr(), "/metrics").unwrap().1;
    let count = |phases: &str| {
        let prefix = format!("duet_txn_commits_total{{phases=\"{phases}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0, |n| n.trim().parse().unwrap())
    };
    (count("1"), count("2"))
}

fn one(value: &str) -> Vec<Vec<Option<String>>> {
    vec![vec![Some(value.to_string())]]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_in_one_region_commits_in_one_phase_and_across_regions_in_two() {
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    assert_eq!(rows(&mut c, "SELECT @@duet_enable_1pc").await, one("1"));
    c.query_drop("CREATE DATABASE o").await.unwrap();
    c.query_drop("CREATE TABLE o.t (id INT PRIMARY KEY, v INT, UNIQUE KEY (v))")
        .await
        .unwrap();

    let before = commits(&t);
    c.query_drop("INSERT INTO o.t VALUES (1, 10)")
        .await
        .unwrap();
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("UPDATE o.t SET v = 11 WHERE id = 1")
        .await
        .unwrap();
    c.query_drop("INSERT INTO o.t VALUES (2, 20)")
        .await
        .unwrap();
    c.query_drop("COMMIT").await.unwrap();
    let after = commits(&t);
    assert!(after.0 >= before.0 + 2, "{before:?} then {after:?}");
    assert_eq!(
        rows(&mut c, "SELECT id, v FROM o.t ORDER BY id").await,
        vec![
            vec![Some("1".into()), Some("11".into())],
            vec![Some("2".into()), Some("20".into())],
        ]
    );
    // The unique index was written in the same commit.
    let dup = c.query_drop("INSERT INTO o.t VALUES (3, 20)").await;
    assert!(dup.is_err(), "20 is taken");

    // A snapshot taken before a one-phase commit keeps its view.
    let mut r = t.connect().await;
    r.query_drop("BEGIN").await.unwrap();
    assert_eq!(
        rows(&mut r, "SELECT v FROM o.t WHERE id = 1").await,
        one("11")
    );
    c.query_drop("UPDATE o.t SET v = 12 WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(
        rows(&mut r, "SELECT v FROM o.t WHERE id = 1").await,
        one("11")
    );
    assert_eq!(rows(&mut r, "SELECT SUM(v) FROM o.t").await, one("31"));
    r.query_drop("COMMIT").await.unwrap();
    assert_eq!(
        rows(&mut r, "SELECT v FROM o.t WHERE id = 1").await,
        one("12")
    );

    // Switched off: two phases.
    c.query_drop("SET duet_enable_1pc = OFF").await.unwrap();
    let before = commits(&t);
    c.query_drop("INSERT INTO o.t VALUES (3, 30)")
        .await
        .unwrap();
    let after = commits(&t);
    assert!(after.1 > before.1, "{before:?} then {after:?}");
    c.query_drop("SET duet_enable_1pc = ON").await.unwrap();

    // Rows in two regions: two phases, and both land.
    c.query_drop("SPLIT TABLE o.t BETWEEN (0) AND (100) REGIONS 2")
        .await
        .unwrap();
    let before = commits(&t);
    c.query_drop("INSERT INTO o.t VALUES (4, 40), (90, 900)")
        .await
        .unwrap();
    let after = commits(&t);
    assert!(after.1 > before.1, "{before:?} then {after:?}");
    assert_eq!(
        rows(&mut c, "SELECT COUNT(*), SUM(v) FROM o.t").await,
        vec![vec![Some("5".into()), Some("1002".into())]]
    );
}
