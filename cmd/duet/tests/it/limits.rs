//! What keeps one statement or one client from hurting the others, over
//! real connections: statements too deep are refused and the server lives;
//! `KILL`, `max_execution_time` and a client that goes away stop a
//! statement, which rolls back and lets go of its locks; results stream;
//! a query over its memory quota fails alone; analytic work does not hold
//! up other sessions or new logins; logins are bounded in time and in
//! tries.

use std::time::{Duration, Instant};

use duet_tests::{TestServer, user};
use mysql_async::prelude::*;
use mysql_async::{Conn, Row};

use crate::sql::{code, err, rows};

async fn one(c: &mut Conn, sql: &str) -> i64 {
    c.query_first::<i64, _>(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .expect("a row")
}

async fn connection_id(c: &mut Conn) -> i64 {
    one(c, "SELECT CONNECTION_ID()").await
}

/// Whether connection `id` is running a statement, by `SHOW PROCESSLIST`.
async fn running(c: &mut Conn, id: i64) -> bool {
    let list: Vec<Row> = c.query("SHOW PROCESSLIST").await.unwrap();
    list.into_iter().any(|mut r| {
        r.take::<i64, _>(0) == Some(id) && r.take::<Option<String>, _>(7).flatten().is_some()
    })
}

/// Waits (up to a minute) until connection `id` runs no statement.
async fn until_idle(c: &mut Conn, id: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while running(c, id).await {
        assert!(Instant::now() < deadline, "connection {id} still runs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_too_deep_are_refused_and_the_server_lives() {
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    let mut other = t.connect().await;
    c.query_drop("CREATE DATABASE d").await.unwrap();
    c.query_drop("USE d").await.unwrap();
    c.query_drop("CREATE TABLE t (a INT PRIMARY KEY)")
        .await
        .unwrap();
    c.query_drop("INSERT INTO t VALUES (1), (2), (3)")
        .await
        .unwrap();
    // The issue's three statements that ended the process.
    let sum = format!("SELECT 1{}", " + 1".repeat(6000));
    assert_eq!(err(&mut c, &sum).await, 1436);
    let union = vec!["SELECT 1"; 3000].join(" UNION ALL ");
    assert_eq!(err(&mut c, &union).await, 1436);
    let alternatives: Vec<String> = (0..10_000).map(|i| format!("a = {i}")).collect();
    let wide = format!("SELECT COUNT(*) FROM t WHERE {}", alternatives.join(" OR "));
    assert_eq!(one(&mut c, &wide).await, 3, "a wide condition is balanced");
    // Within the limit, chains answer.
    let deep = format!("SELECT a{} FROM t ORDER BY a", " + 1".repeat(900));
    assert_eq!(one(&mut c, &deep).await, 901);
    // A huge chain with a syntax error at its end, dropped by the parser.
    let broken = format!("SELECT 1{} FROM", " + 1".repeat(60_000));
    assert_eq!(err(&mut c, &broken).await, 1064);
    let nested = format!("SELECT {}1{}", "(SELECT ".repeat(30), ")".repeat(30));
    assert_eq!(err(&mut c, &nested).await, 1473);
    let parens = format!("SELECT {}a{} FROM t", "(".repeat(100), ")".repeat(100));
    assert_eq!(one(&mut c, &parens).await, 1);
    assert_eq!(one(&mut c, "SELECT 1").await, 1);
    assert_eq!(one(&mut other, "SELECT 2").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_stops_a_statement_or_a_connection_and_only_the_owner_may() {
    let t = TestServer::start_with(|c| c.users.push(user("app", "pw", "localhost"))).await;
    let mut admin = t.connect().await;
    let mut victim = t.connect().await;
    let id = connection_id(&mut victim).await;
    let sleeper = tokio::spawn(async move {
        let r = victim.query_drop("SELECT SLEEP(60)").await;
        (victim, r)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    admin.query_drop(format!("KILL QUERY {id}")).await.unwrap();
    let (mut victim, r) = sleeper.await.unwrap();
    assert_eq!(code(r.unwrap_err()), 1317);
    assert_eq!(
        one(&mut victim, "SELECT 1").await,
        1,
        "KILL QUERY keeps the connection"
    );

    // Another user may not; an unknown id is 1094.
    let mut app = Conn::from_url(t.url("app", "pw")).await.unwrap();
    assert_eq!(err(&mut app, &format!("KILL {id}")).await, 1095);
    assert_eq!(err(&mut app, "KILL 999999").await, 1094);
    let own = connection_id(&mut app).await;
    let mut app2 = Conn::from_url(t.url("app", "pw")).await.unwrap();
    app2.query_drop(format!("KILL QUERY {own}")).await.unwrap();

    // KILL CONNECTION ends the connection, and its open transaction rolls
    // back at once: its row lock is free for another session.
    admin.query_drop("CREATE DATABASE k").await.unwrap();
    admin
        .query_drop("CREATE TABLE k.t (id INT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    admin
        .query_drop("INSERT INTO k.t VALUES (1, 0)")
        .await
        .unwrap();
    victim.query_drop("BEGIN").await.unwrap();
    victim
        .query_drop("UPDATE k.t SET v = 1 WHERE id = 1")
        .await
        .unwrap();
    victim
        .query_drop("SELECT * FROM k.t WHERE id = 1 FOR UPDATE")
        .await
        .unwrap();
    admin.query_drop(format!("KILL {id}")).await.unwrap();
    assert!(
        victim.query_drop("SELECT 1").await.is_err(),
        "the killed connection is gone"
    );
    let mut next = t.connect().await;
    next.query_drop("UPDATE k.t SET v = 2 WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(one(&mut next, "SELECT v FROM k.t WHERE id = 1").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_execution_time_and_its_hint_stop_a_select_with_3024() {
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    assert_eq!(one(&mut c, "SELECT SLEEP(0.1)").await, 0);
    assert_eq!(
        err(&mut c, "SELECT /*+ MAX_EXECUTION_TIME(200) */ SLEEP(30)").await,
        3024
    );
    c.query_drop("SET max_execution_time = 200").await.unwrap();
    assert_eq!(err(&mut c, "SELECT SLEEP(30)").await, 3024);
    // The hint overrides the variable; 0 is no limit.
    assert_eq!(
        one(&mut c, "SELECT /*+ MAX_EXECUTION_TIME(0) */ SLEEP(0.5)").await,
        0
    );
    c.query_drop("SET max_execution_time = 0").await.unwrap();
    c.query_drop("SET GLOBAL max_execution_time = 200")
        .await
        .unwrap();
    let mut fresh = t.connect().await;
    assert_eq!(err(&mut fresh, "SELECT SLEEP(30)").await, 3024);
    // A wait for a named lock stops too.
    c.query_drop("SET GLOBAL max_execution_time = 0")
        .await
        .unwrap();
    assert_eq!(one(&mut c, "SELECT GET_LOCK('held', 10)").await, 1);
    assert_eq!(
        err(
            &mut fresh,
            "SELECT /*+ MAX_EXECUTION_TIME(200) */ GET_LOCK('held', 30)"
        )
        .await,
        3024
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_stream_and_a_client_that_leaves_stops_its_query() {
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    c.query_drop("CREATE DATABASE s").await.unwrap();
    c.query_drop("USE s").await.unwrap();
    for table in ["a", "b"] {
        c.query_drop(format!("CREATE TABLE {table} (id INT PRIMARY KEY)"))
            .await
            .unwrap();
        for start in (0..10_000).step_by(2_000) {
            let values: Vec<String> = (start..start + 2_000).map(|i| format!("({i})")).collect();
            c.query_drop(format!("INSERT INTO {table} VALUES {}", values.join(",")))
                .await
                .unwrap();
        }
    }
    // 100 million rows: only a result that streams gives its first rows
    // before the whole of it could be made. The mariadb CLI reads them as
    // they come (--quick); once ten are in, it is killed: the socket closes
    // mid-result, as a client's does when it crashes. (Letting `head` end it
    // by SIGPIPE is not enough: some builds of the CLI ignore the broken
    // pipe and read the whole result.)
    let addr = t.mysql_addr();
    let mut reader = tokio::process::Command::new("mariadb")
        .args(["--quick", "--batch", "--skip-column-names", "-u", "root"])
        .args(["-h", &addr.ip().to_string(), "-P", &addr.port().to_string()])
        .args(["-e", "SELECT a.id, b.id FROM s.a CROSS JOIN s.b"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the mariadb CLI runs");
    let first = {
        use tokio::io::AsyncBufReadExt;
        let out = reader.stdout.take().expect("stdout");
        let mut lines = tokio::io::BufReader::new(out).lines();
        let mut first = Vec::new();
        tokio::time::timeout(Duration::from_secs(120), async {
            while first.len() < 10 {
                match lines.next_line().await.expect("readable output") {
                    Some(line) => first.push(line),
                    None => break,
                }
            }
        })
        .await
        .expect("the first rows come while the query runs");
        first
    };
    assert_eq!(first.len(), 10, "{first:?}");
    reader.kill().await.expect("the CLI is killed");
    let id = {
        let list: Vec<Row> = c.query("SHOW PROCESSLIST").await.unwrap();
        list.into_iter()
            .filter_map(|mut r| {
                let info: Option<String> = r.take::<Option<String>, _>(7).flatten();
                let id: i64 = r.take(0)?;
                info.filter(|i| i.contains("CROSS JOIN")).map(|_| id)
            })
            .next()
    };
    // The client went away: its query stops (if it had not already).
    if let Some(id) = id {
        until_idle(&mut c, id).await;
    }
    assert_eq!(one(&mut c, "SELECT COUNT(*) FROM s.a").await, 10_000);

    // A scan reads its table a page at a time as the plan asks: a query
    // that stops after three rows reads a page or a few, not all 100,000
    // rows (a filter the scan cannot take keeps the limit above it).
    c.query_drop("CREATE TABLE big (id INT PRIMARY KEY)")
        .await
        .unwrap();
    c.query_drop(
        "INSERT INTO big SELECT a.id * 10 + d.id FROM a CROSS JOIN a AS d WHERE d.id < 10",
    )
    .await
    .unwrap();
    for engine in ["ROW", "COLUMNAR"] {
        let plan: Vec<Row> = c
            .query(format!(
                "EXPLAIN ANALYZE SELECT /*+ READ_FROM_STORAGE({engine}[big]) */ id \
                 FROM big WHERE id + 0 >= 0 LIMIT 3"
            ))
            .await
            .unwrap();
        let read = plan
            .into_iter()
            .find_map(|mut r| {
                let id: String = r.take(0)?;
                let actual: String = r.take(5)?;
                (id.contains("TableFullScan") || id.contains("ColumnarScan")).then_some(actual)
            })
            .expect("a scan in the plan");
        let read: u64 = read.parse().expect("a count of rows read");
        assert!(
            (3..=50_000).contains(&read),
            "the {engine} scan read {read} rows"
        );
    }
    assert_eq!(one(&mut c, "SELECT COUNT(*) FROM big").await, 100_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_over_its_memory_quota_fails_alone_with_8175() {
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    c.query_drop("CREATE DATABASE m").await.unwrap();
    c.query_drop("USE m").await.unwrap();
    c.query_drop("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(100))")
        .await
        .unwrap();
    for start in (0..20_000).step_by(2_000) {
        let values: Vec<String> = (start..start + 2_000)
            .map(|i| format!("({i}, REPEAT('x', 90))"))
            .collect();
        c.query_drop(format!("INSERT INTO t VALUES {}", values.join(",")))
            .await
            .unwrap();
    }
    c.query_drop("SET duet_mem_quota_query = 1048576")
        .await
        .unwrap();
    // A join's build side cannot spill: 20,000 rows of 100 bytes.
    let join = "SELECT COUNT(*) FROM t a JOIN t b ON a.v = CONCAT(b.v, '') AND a.id = b.id + 0";
    assert_eq!(err(&mut c, join).await, 8175);
    // The session goes on, and with the default quota the query answers.
    c.query_drop("SET duet_mem_quota_query = DEFAULT")
        .await
        .unwrap();
    assert_eq!(one(&mut c, join).await, 20_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytic_queries_do_not_hold_up_other_sessions_or_logins() {
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    c.query_drop("CREATE DATABASE i").await.unwrap();
    c.query_drop("USE i").await.unwrap();
    c.query_drop("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    let values: Vec<String> = (0..5_000).map(|i| format!("({i}, {i})")).collect();
    c.query_drop(format!("INSERT INTO t VALUES {}", values.join(",")))
        .await
        .unwrap();
    // Two analytic queries that keep both cores busy for long.
    let heavy = "SELECT COUNT(*) FROM i.t a, i.t b, i.t c WHERE a.v + b.v + c.v = -1";
    let mut ids = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let mut busy = t.connect().await;
        ids.push(connection_id(&mut busy).await);
        tasks.push(tokio::spawn(async move {
            let _ = busy.query_drop(heavy).await;
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Meanwhile: point reads, constant selects and new logins are served,
    // while the analytic queries still run.
    for i in 0..20 {
        assert_eq!(one(&mut c, "SELECT 1").await, 1);
        assert_eq!(
            one(&mut c, &format!("SELECT v FROM t WHERE id = {i}")).await,
            i
        );
        let mut fresh = t.connect().await;
        assert_eq!(one(&mut fresh, "SELECT 2").await, 2);
    }
    for id in &ids {
        assert!(
            running(&mut c, *id).await,
            "the analytic query {id} still runs"
        );
        c.query_drop(format!("KILL QUERY {id}")).await.unwrap();
    }
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_are_bounded_in_time_slots_and_tries() {
    let t = TestServer::start_with(|c| {
        c.max_connections = 2;
        c.connect_timeout_secs = 1;
        c.failed_login_threshold = 2;
        c.failed_login_delay_ms = 300;
        c.users.push(user("app", "pw", "localhost"));
    })
    .await;
    // Sockets that never log in hold no session slot, and are closed after
    // connect_timeout.
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(
            tokio::net::TcpStream::connect(t.mysql_addr())
                .await
                .unwrap(),
        );
    }
    let mut a = Conn::from_url(t.url("app", "pw")).await.unwrap();
    let _b = Conn::from_url(t.url("app", "pw")).await.unwrap();
    // max_connections sessions: another user is refused, an administrator
    // has one slot more.
    let refused = Conn::from_url(t.url("app", "pw")).await.unwrap_err();
    assert_eq!(code(refused), 1040);
    let mut root = t.connect().await;
    assert_eq!(one(&mut root, "SELECT 1").await, 1);
    assert_eq!(
        code(Conn::from_url(t.url("root", "")).await.unwrap_err()),
        1040
    );
    assert_eq!(one(&mut a, "SELECT 1").await, 1);
    for socket in &mut idle {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 1024];
        let closed = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {} // the greeting
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "an idle socket is closed after connect_timeout"
        );
    }
    // Failed logins from an address: after the threshold each attempt waits.
    drop(root);
    for _ in 0..2 {
        let e = Conn::from_url(t.url("app", "wrong")).await.unwrap_err();
        assert_eq!(code(e), 1045);
    }
    let started = Instant::now();
    let e = Conn::from_url(t.url("app", "wrong")).await.unwrap_err();
    assert_eq!(code(e), 1045);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the third failure waited"
    );
    let metrics = duet_tests::http_get(t.status_addr(), "/metrics").unwrap().1;
    assert!(metrics.contains("auth_failures_total 3"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_statement_leaves_its_session_usable_and_consistent() {
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    c.query_drop("CREATE DATABASE r").await.unwrap();
    c.query_drop("CREATE TABLE r.t (id INT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    c.query_drop("INSERT INTO r.t VALUES (1, 1)").await.unwrap();
    // A statement stopped inside a transaction is undone; the transaction
    // goes on.
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("UPDATE r.t SET v = 2").await.unwrap();
    c.query_drop("SET max_execution_time = 100").await.unwrap();
    assert_eq!(err(&mut c, "SELECT SLEEP(5) FROM r.t").await, 3024);
    c.query_drop("SET max_execution_time = 0").await.unwrap();
    assert_eq!(one(&mut c, "SELECT v FROM r.t").await, 2);
    c.query_drop("COMMIT").await.unwrap();
    assert_eq!(
        rows(&mut c, "SELECT id, v FROM r.t").await,
        vec![vec![Some("1".to_string()), Some("2".to_string())]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_stops_statements_still_running_after_its_grace() {
    let t = TestServer::start_with(|c| c.shutdown_timeout_secs = 1).await;
    let mut c = t.connect().await;
    let sleeper = tokio::spawn(async move { c.query_drop("SELECT SLEEP(600)").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::time::timeout(Duration::from_secs(30), t.server.stop())
        .await
        .expect("the server stops although a statement was running");
    assert!(sleeper.await.unwrap().is_err(), "the statement was stopped");
}
