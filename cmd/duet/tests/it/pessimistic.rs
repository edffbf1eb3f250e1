//! Pessimistic transactions, the default (`duet_txn_mode`): a statement
//! that changes rows locks them when it runs, so a second writer of a row
//! waits for the first and then builds on its commit instead of failing
//! at its own commit (1213); a wait ends at `innodb_lock_wait_timeout`
//! (1205), and a wait that would close a cycle is refused at once (1213)
//! while the other transaction proceeds.

use std::time::Duration;

use duet_tests::TestServer;
use mysql_async::Conn;
use mysql_async::prelude::*;

use crate::sql::{code, err, rows};

async fn two(t: &TestServer) -> (Conn, Conn) {
    let mut a = t.connect().await;
    let mut b = t.connect().await;
    for c in [&mut a, &mut b] {
        c.query_drop("USE test").await.unwrap();
    }
    a.query_drop("CREATE TABLE acct (id INT PRIMARY KEY, bal INT, KEY (bal))")
        .await
        .unwrap();
    a.query_drop("INSERT INTO acct VALUES (1, 100), (2, 100)")
        .await
        .unwrap();
    (a, b)
}

/// Runs `sql` on `c` in a task of its own: it may wait for a lock.
fn spawn(mut c: Conn, sql: &'static str) -> tokio::task::JoinHandle<(Conn, Result<(), u16>)> {
    tokio::spawn(async move {
        let outcome = c.query_drop(sql).await.map_err(code);
        (c, outcome)
    })
}

fn one(value: &str) -> Vec<Vec<Option<String>>> {
    vec![vec![Some(value.to_string())]]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_waits_and_builds_on_the_first() {
    let t = TestServer::start().await;
    let (mut a, mut b) = two(&t).await;
    assert_eq!(
        rows(&mut a, "SELECT @@duet_txn_mode").await,
        one("pessimistic")
    );
    a.query_drop("BEGIN").await.unwrap();
    a.query_drop("UPDATE acct SET bal = bal + 1 WHERE id = 1")
        .await
        .unwrap();
    b.query_drop("BEGIN").await.unwrap();
    // B's snapshot predates A's commit; its update still adds to it. The
    // indexed column changes twice: its index entries too.
    let waiting = spawn(b, "UPDATE acct SET bal = bal + 10 WHERE id = 1");
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.query_drop("COMMIT").await.unwrap();
    let (mut b, outcome) = waiting.await.unwrap();
    assert_eq!(outcome, Ok(()));
    b.query_drop("COMMIT").await.unwrap();
    assert_eq!(
        rows(&mut a, "SELECT bal FROM acct WHERE id = 1").await,
        one("111")
    );
    assert_eq!(
        rows(&mut a, "SELECT id FROM acct WHERE bal = 111").await,
        one("1"),
        "the index follows the last write"
    );
    assert_eq!(
        rows(
            &mut a,
            "SELECT COUNT(*) FROM acct WHERE bal IN (100, 101, 110)"
        )
        .await,
        one("1"),
        "no stale index entry is left"
    );

    // DELETE locks too: the second deleter finds the row gone.
    a.query_drop("BEGIN").await.unwrap();
    a.query_drop("DELETE FROM acct WHERE id = 2").await.unwrap();
    b.query_drop("BEGIN").await.unwrap();
    let waiting = spawn(b, "UPDATE acct SET bal = 0 WHERE id = 2");
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.query_drop("COMMIT").await.unwrap();
    let (mut b, outcome) = waiting.await.unwrap();
    assert_eq!(outcome, Ok(()));
    assert_eq!(
        rows(&mut b, "SELECT COUNT(*) FROM acct WHERE id = 2").await,
        one("0")
    );
    b.query_drop("COMMIT").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_wait_ends_at_the_sessions_timeout() {
    let t = TestServer::start().await;
    let (mut a, mut b) = two(&t).await;
    b.query_drop("SET innodb_lock_wait_timeout = 1")
        .await
        .unwrap();
    a.query_drop("BEGIN").await.unwrap();
    a.query_drop("UPDATE acct SET bal = 0 WHERE id = 2")
        .await
        .unwrap();
    b.query_drop("BEGIN").await.unwrap();
    b.query_drop("UPDATE acct SET bal = 5 WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(
        err(&mut b, "UPDATE acct SET bal = 5 WHERE id = 2").await,
        1205
    );
    // Only the statement is undone; the transaction goes on.
    b.query_drop("COMMIT").await.unwrap();
    a.query_drop("COMMIT").await.unwrap();
    assert_eq!(
        rows(&mut a, "SELECT bal FROM acct ORDER BY id").await,
        vec![vec![Some("5".into())], vec![Some("0".into())]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_of_waits_is_a_deadlock_for_one_and_the_other_goes_on() {
    let t = TestServer::start().await;
    let (mut a, mut b) = two(&t).await;
    for c in [&mut a, &mut b] {
        // Long enough that only the detector can end the wait in time.
        c.query_drop("SET innodb_lock_wait_timeout = 100")
            .await
            .unwrap();
        c.query_drop("BEGIN").await.unwrap();
    }
    a.query_drop("UPDATE acct SET bal = bal - 1 WHERE id = 1")
        .await
        .unwrap();
    b.query_drop("UPDATE acct SET bal = bal - 1 WHERE id = 2")
        .await
        .unwrap();
    let a_waits = spawn(a, "UPDATE acct SET bal = bal + 1 WHERE id = 2");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b_waits = spawn(b, "UPDATE acct SET bal = bal + 1 WHERE id = 1");
    let ((mut a, a_out), (mut b, b_out)) = (a_waits.await.unwrap(), b_waits.await.unwrap());
    // Exactly one of them is the victim (a wait that ended by its timeout
    // would be a 1205); its transaction is rolled back.
    let (survivor, victim) = match (a_out, b_out) {
        (Ok(()), Err(1213)) => (&mut a, &mut b),
        (Err(1213), Ok(())) => (&mut b, &mut a),
        other => panic!("{other:?}"),
    };
    survivor.query_drop("COMMIT").await.unwrap();
    victim.query_drop("COMMIT").await.unwrap();
    assert_eq!(
        rows(&mut a, "SELECT SUM(bal) FROM acct").await,
        one("200"),
        "a transfer moved money both ways or not at all"
    );
    // The deadlock is on record: a row for the refused waiter (with the
    // key it asked for) and one for the holder, each waiting for the other.
    assert_eq!(
        rows(
            &mut a,
            "SELECT COUNT(*), COUNT(DISTINCT deadlock_id), COUNT(`key`) \
             FROM information_schema.duet_deadlocks"
        )
        .await,
        vec![vec![Some("2".into()), Some("1".into()), Some("1".into())]]
    );
    assert_eq!(
        rows(
            &mut a,
            "SELECT COUNT(*) FROM information_schema.duet_deadlocks w \
             JOIN information_schema.duet_deadlocks h \
             ON w.try_lock_trx_id = h.trx_holding_lock AND h.try_lock_trx_id = w.trx_holding_lock"
        )
        .await,
        one("2")
    );
}

/// `clients` connections in `mode`, each running `rounds` transactions of
/// `statements`; the codes of the statements that failed, each failure
/// rolling its transaction back.
async fn run_clients(
    t: &TestServer,
    mode: &'static str,
    clients: usize,
    rounds: usize,
    statements: &'static [&'static str],
) -> Vec<u16> {
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let mut c = t.connect().await;
        tasks.push(tokio::spawn(async move {
            c.query_drop("USE test").await.unwrap();
            c.query_drop(format!("SET duet_txn_mode = '{mode}'"))
                .await
                .unwrap();
            let mut failed = Vec::new();
            for _ in 0..rounds {
                c.query_drop("BEGIN").await.unwrap();
                let mut done = Ok(());
                for sql in statements {
                    done = c.query_drop(*sql).await;
                    if done.is_err() {
                        break;
                    }
                }
                if done.is_ok() {
                    done = c.query_drop("COMMIT").await;
                }
                if let Err(e) = done {
                    failed.push(code(e));
                    let _ = c.query_drop("ROLLBACK").await;
                }
            }
            failed
        }));
    }
    let mut failed = Vec::new();
    for task in tasks {
        failed.extend(task.await.unwrap());
    }
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_and_ordered_transfers_never_conflict_when_pessimistic() {
    let t = TestServer::start().await;
    let (mut a, _b) = two(&t).await;
    a.query_drop("CREATE TABLE counter (id INT PRIMARY KEY, n INT)")
        .await
        .unwrap();
    a.query_drop("INSERT INTO counter VALUES (1, 0)")
        .await
        .unwrap();
    // Every increment commits: each waits for the one before it.
    let failed = run_clients(
        &t,
        "pessimistic",
        4,
        25,
        &["UPDATE counter SET n = n + 1 WHERE id = 1"],
    )
    .await;
    assert_eq!(failed, Vec::<u16>::new());
    assert_eq!(
        rows(&mut a, "SELECT n FROM counter").await,
        one("100"),
        "no lost update"
    );
    // Optimistically, the same increments conflict at commit, and the
    // counter still counts exactly the committed ones.
    let failed = run_clients(
        &t,
        "optimistic",
        4,
        25,
        &["UPDATE counter SET n = n + 1 WHERE id = 1"],
    )
    .await;
    assert!(failed.iter().all(|c| *c == 1213), "{failed:?}");
    let committed = 100 - failed.len();
    assert_eq!(
        rows(&mut a, "SELECT n FROM counter").await,
        one(&(100 + committed).to_string())
    );
    // Transfers that lock their two rows in one order (id 1, then id 2)
    // cannot deadlock: none fails, and the total stays.
    let failed = run_clients(
        &t,
        "pessimistic",
        3,
        20,
        &[
            "UPDATE acct SET bal = bal - 1 WHERE id = 1",
            "UPDATE acct SET bal = bal + 1 WHERE id = 2",
        ],
    )
    .await;
    assert_eq!(failed, Vec::<u16>::new());
    assert_eq!(
        rows(&mut a, "SELECT bal FROM acct ORDER BY id").await,
        vec![vec![Some("40".into())], vec![Some("160".into())]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_insert_of_a_key_waits_and_fails_its_statement_not_its_commit() {
    let t = TestServer::start().await;
    let (mut a, mut b) = two(&t).await;
    a.query_drop("CREATE TABLE u (id INT PRIMARY KEY, email VARCHAR(20), UNIQUE KEY (email))")
        .await
        .unwrap();
    a.query_drop("BEGIN").await.unwrap();
    a.query_drop("INSERT INTO u VALUES (1, 'x@y')")
        .await
        .unwrap();
    b.query_drop("BEGIN").await.unwrap();
    // The same unique value under another key: B waits for A's lock on it.
    let waiting = spawn(b, "INSERT INTO u VALUES (2, 'x@y')");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "the second insert waits for the first"
    );
    a.query_drop("COMMIT").await.unwrap();
    let (mut b, outcome) = waiting.await.unwrap();
    assert_eq!(outcome, Err(1062), "the statement fails once A committed");
    // The rest of B's transaction goes on and commits.
    b.query_drop("INSERT INTO u VALUES (3, 'z@y')")
        .await
        .unwrap();
    b.query_drop("COMMIT").await.unwrap();

    // A key A inserts and then rolls back is B's after the wait.
    a.query_drop("BEGIN").await.unwrap();
    a.query_drop("INSERT INTO u VALUES (4, 'w@y')")
        .await
        .unwrap();
    b.query_drop("BEGIN").await.unwrap();
    let waiting = spawn(b, "INSERT INTO u VALUES (4, 'v@y')");
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.query_drop("ROLLBACK").await.unwrap();
    let (mut b, outcome) = waiting.await.unwrap();
    assert_eq!(outcome, Ok(()));
    b.query_drop("COMMIT").await.unwrap();
    assert_eq!(
        rows(&mut a, "SELECT id, email FROM u ORDER BY id").await,
        vec![
            vec![Some("1".into()), Some("x@y".into())],
            vec![Some("3".into()), Some("z@y".into())],
            vec![Some("4".into()), Some("v@y".into())],
        ]
    );
}

/// Three transactions through three nodes, each holding a row of its own
/// region and then asking for the next one's: the third wait closes the
/// cycle, which the cluster's detector (on the first region's leader,
/// remote to two of them) refuses at once. Exactly one gets 1213; the
/// others proceed and commit.
#[test]
fn a_cycle_of_three_across_regions_and_nodes_is_broken_for_exactly_one() {
    use crate::cluster::{founders, runtime, sql};
    let rt = runtime();
    let root = tempfile::tempdir().unwrap();
    let (nodes, _, _) = founders(root.path(), &[]);
    sql(&rt, &nodes[0], "CREATE DATABASE d");
    sql(
        &rt,
        &nodes[0],
        "CREATE TABLE d.acct (id INT PRIMARY KEY, bal INT)",
    );
    sql(
        &rt,
        &nodes[0],
        "INSERT INTO d.acct VALUES (1, 100), (2, 100), (3, 100)",
    );
    sql(
        &rt,
        &nodes[0],
        "SPLIT TABLE d.acct BETWEEN (1) AND (4) REGIONS 3",
    );
    let outcomes = rt.block_on(async {
        let mut conns = Vec::new();
        for (i, node) in nodes.iter().take(3).enumerate() {
            let url = format!("mysql://root@127.0.0.1:{}/d", node.mysql);
            let mut c = Conn::from_url(url.as_str()).await.unwrap();
            // Long enough that only the detector can end a wait in time.
            c.query_drop("SET innodb_lock_wait_timeout = 100")
                .await
                .unwrap();
            c.query_drop("BEGIN").await.unwrap();
            c.query_drop(format!(
                "UPDATE acct SET bal = bal - 1 WHERE id = {}",
                i + 1
            ))
            .await
            .unwrap();
            conns.push(c);
        }
        // 1 waits for 2, 2 for 3, then 3 for 1 closes the cycle.
        let mut waits = Vec::new();
        for (i, mut c) in conns.into_iter().enumerate() {
            let next = (i + 1) % 3 + 1;
            waits.push(tokio::spawn(async move {
                let outcome = c
                    .query_drop(format!("UPDATE acct SET bal = bal + 1 WHERE id = {next}"))
                    .await
                    .map_err(code);
                // The victim's transaction is rolled back; a survivor
                // commits once the others let go.
                let commit = c.query_drop("COMMIT").await.map_err(code);
                (outcome, commit)
            }));
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let mut outcomes = Vec::new();
        for w in waits {
            outcomes.push(w.await.unwrap());
        }
        outcomes
    });
    let refused = outcomes.iter().filter(|(o, _)| *o == Err(1213)).count();
    assert_eq!(refused, 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|(o, commit)| (o.is_ok() || *o == Err(1213)) && commit.is_ok()),
        "{outcomes:?}"
    );
    let total = sql(&rt, &nodes[1], "SELECT SUM(bal), COUNT(*) FROM d.acct");
    assert_eq!(total, vec![vec!["300".to_string(), "3".to_string()]]);
    // The survivors' two transfers landed, the victim's did not: one row
    // between them is back at 100, the two others one up and one down.
    let moved = sql(
        &rt,
        &nodes[2],
        "SELECT COUNT(*), MIN(bal), MAX(bal) FROM d.acct WHERE bal <> 100",
    );
    assert_eq!(
        moved,
        vec![vec!["2".to_string(), "99".into(), "101".into()]]
    );
}

/// A locking read of a key whose row is missing locks the key: another
/// transaction's insert of it waits (as InnoDB's lock on the gap would
/// make it), and fails once the reader inserted the row itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locking_read_of_a_missing_row_keeps_others_from_inserting_it() {
    let t = TestServer::start().await;
    let (mut a, b) = two(&t).await;
    a.query_drop("BEGIN").await.unwrap();
    assert!(
        rows(&mut a, "SELECT bal FROM acct WHERE id = 9 FOR UPDATE")
            .await
            .is_empty()
    );
    let inserting = spawn(b, "INSERT INTO acct VALUES (9, 1)");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!inserting.is_finished(), "the insert waits for the lock");
    a.query_drop("INSERT INTO acct VALUES (9, 5)")
        .await
        .unwrap();
    a.query_drop("COMMIT").await.unwrap();
    let (_, outcome) = inserting.await.unwrap();
    assert_eq!(outcome, Err(1062), "the key is taken by then");
    assert_eq!(
        rows(&mut a, "SELECT bal FROM acct WHERE id = 9").await,
        one("5")
    );
}
