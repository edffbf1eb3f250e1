//! The server as a process and as a service: status endpoints, the `duet`
//! binary's flags, and graceful shutdown on SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::duet_binary;
use duet_tests::{TestServer, free_port, http_get};
use mysql_async::prelude::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics() {
    let t = TestServer::start().await;
    let addr = t.status_addr();
    let (code, body) = tokio::task::spawn_blocking(move || http_get(addr, "/health"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((code, body.trim()), (200, "ok"));
    let mut c = t.connect().await;
    c.query_drop("SELECT 1").await.unwrap();
    // Committed rows reach the columnar replica: its freshness is measured.
    c.query_drop("CREATE TABLE test.fresh (id INT PRIMARY KEY)")
        .await
        .unwrap();
    c.query_drop("INSERT INTO test.fresh VALUES (1), (2)")
        .await
        .unwrap();
    let (code, body) = tokio::task::spawn_blocking(move || http_get(addr, "/metrics"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("duet_connections_total 1"), "{body}");
    let ok_statements = body
        .lines()
        .find_map(|l| l.strip_prefix("duet_statements_total{result=\"ok\"} "))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(ok_statements >= Some(1), "{body}");
    assert!(
        body.contains("duet_raft_is_leader{region=\"1\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("duet_raft_index{kind=\"applied\",region=\"1\"}"),
        "{body}"
    );
    // One node holds and leads every region; it never asked elsewhere.
    let gauge = |name: &str| {
        (body.lines()).find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<i64>().ok())
    };
    let regions = gauge("duet_store_regions");
    assert!(regions >= Some(1), "{body}");
    assert_eq!(gauge("duet_store_leaders"), regions, "{body}");
    assert_eq!(gauge("duet_region_cache_misses_total"), Some(0), "{body}");
    let visible = body
        .lines()
        .find_map(|l| l.strip_prefix("duet_columnar_commit_to_visible_seconds_count "))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(visible >= Some(1), "{body}");
    assert!(
        body.contains("duet_columnar_applied_lag{region=\"1\"} 0"),
        "{body}"
    );
    assert!(body.contains("duet_columnar_stopped 0"), "{body}");
    let (code, _) = tokio::task::spawn_blocking(move || http_get(addr, "/nope"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(code, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_stop_closes_idle_connections() {
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    c.query_drop("SELECT 1").await.unwrap();
    let addr = t.mysql_addr();
    tokio::time::timeout(Duration::from_secs(10), t.server.stop())
        .await
        .expect("stops promptly");
    assert!(
        c.query_drop("SELECT 1").await.is_err(),
        "idle connection was closed"
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_with_flags_and_exits_zero_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mysql_port, status_port) = (free_port(), free_port());
    let mut served = serve(&dir.path().join("data"), mysql_port, status_port).await;
    assert!(dir.path().join("data").is_dir(), "data dir created");
    let url = format!("mysql://root@127.0.0.1:{mysql_port}");
    let mut c = mysql_async::Conn::from_url(url).await.unwrap();
    let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));

    let status = Command::new("kill")
        .args(["-TERM", &served.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(s) = served.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "duet did not exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(exit.code(), Some(0), "clean exit");
    assert!(
        c.query_drop("SELECT 1").await.is_err(),
        "connection closed by shutdown"
    );
}

#[test]
fn binary_refuses_a_bad_config() {
    let out = Command::new(duet_binary())
        .args(["serve", "--mysql-addr", "not-an-address"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mysql_addr"), "{stderr}");
}

/// A second node started on a data directory in use is refused with a
/// clear error, and the first one carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_on_the_same_data_directory_is_refused() {
    let t = TestServer::start().await;
    let config = duet_server::Config {
        data_dir: t.data_dir.path().join("data"),
        mysql_addr: "127.0.0.1:0".into(),
        status_addr: "127.0.0.1:0".into(),
        ..duet_server::Config::default()
    };
    let refused = duet_server::Server::start(config).await.err();
    let message = refused.expect("refused").to_string();
    assert!(
        message.contains("is in use by another duet process"),
        "{message}"
    );
    let mut c = t.connect().await;
    assert_eq!(c.query_first::<i64, _>("SELECT 1").await.unwrap(), Some(1));
}

/// A table past `region_split_keys` is split by the node's own split check
/// while it keeps taking writes, and every read — row store or columnar —
/// still sees every row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_growing_table_splits_into_regions_and_loses_nothing() {
    let t = TestServer::start_with(|c| {
        c.region_split_keys = 300;
        c.split_check_interval_secs = 1;
    })
    .await;
    let mut c = t.connect().await;
    c.query_drop("CREATE TABLE test.grow (id INT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    let regions = |addr| {
        let (_, body) = http_get(addr, "/status").unwrap();
        let status: serde_json::Value = serde_json::from_str(&body).unwrap();
        status["regions"].as_array().map_or(0, |r| r.len())
    };
    let addr = t.status_addr();
    let mut rows = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while tokio::task::spawn_blocking(move || regions(addr))
        .await
        .unwrap()
        < 3
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no split after {rows} rows"
        );
        let values: Vec<String> = (rows..rows + 100).map(|i| format!("({i}, {i})")).collect();
        c.query_drop(format!("INSERT INTO test.grow VALUES {}", values.join(",")))
            .await
            .unwrap();
        rows += 100;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // One more write spanning every region, then both engines agree.
    c.query_drop("UPDATE test.grow SET v = v + 1")
        .await
        .unwrap();
    let expected = (rows as i64, (0..rows as i64).map(|i| i + 1).sum::<i64>());
    for engine in ["row", "columnar"] {
        c.query_drop(format!("SET duet_isolation_read_engines = '{engine}'"))
            .await
            .unwrap();
        let got: Option<(i64, i64)> = c
            .query_first("SELECT COUNT(*), CAST(SUM(v) AS SIGNED) FROM test.grow")
            .await
            .unwrap();
        assert_eq!(got, Some(expected), "read through {engine}");
    }
}

/// `GET /status`'s count of ranges the node's GC destroyed.
async fn destroyed_ranges(t: &TestServer) -> u64 {
    let addr = t.status_addr();
    let (_, body) = tokio::task::spawn_blocking(move || http_get(addr, "/status"))
        .await
        .unwrap()
        .unwrap();
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    status["gc"]["destroyed_ranges"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_tables_and_indexes_are_destroyed_once_no_snapshot_can_read_them() {
    use duet_storage::engine::Engine as _;
    let t = TestServer::start_with(|c| {
        c.gc_life_time_secs = 1;
        c.gc_interval_secs = 1;
    })
    .await;
    let mut c = t.connect().await;
    c.query_drop("USE test").await.unwrap();
    for table in ["gone", "kept"] {
        c.query_drop(format!(
            "CREATE TABLE {table} (id INT PRIMARY KEY, k INT, KEY ik (k))"
        ))
        .await
        .unwrap();
        let values: Vec<String> = (1..=500).map(|i| format!("({i}, {i})")).collect();
        c.query_drop(format!("INSERT INTO {table} VALUES {}", values.join(",")))
            .await
            .unwrap();
    }
    // A transaction that began before the drops keeps reading the table
    // across several GC rounds: nothing it can see is destroyed.
    c.query_drop("BEGIN").await.unwrap();
    let count: Option<i64> = c.query_first("SELECT count(*) FROM gone").await.unwrap();
    assert_eq!(count, Some(500));
    let mut other = t.connect().await;
    other.query_drop("USE test").await.unwrap();
    other.query_drop("DROP TABLE gone").await.unwrap();
    other
        .query_drop("ALTER TABLE kept DROP INDEX ik")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let count: Option<i64> = c
        .query_first("SELECT count(*) FROM gone WHERE k > 0")
        .await
        .unwrap();
    assert_eq!(count, Some(500));
    assert_eq!(destroyed_ranges(&t).await, 0);
    c.query_drop("COMMIT").await.unwrap();
    let err = c.query_drop("SELECT * FROM gone").await.unwrap_err();
    assert!(err.to_string().contains("1146"), "{err}");

    // Once it ended, GC destroys the table and the index.
    let deadline = Instant::now() + Duration::from_secs(60);
    while destroyed_ranges(&t).await < 2 {
        assert!(Instant::now() < deadline, "dropped ranges not destroyed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let count: Option<i64> = c
        .query_first("SELECT count(*) FROM kept WHERE k > 0")
        .await
        .unwrap();
    assert_eq!(count, Some(500));
    drop((c, other));
    let TestServer { server, data_dir } = t;
    server.stop().await;

    // What is left of the tables' key space is `kept`'s rows.
    let engine = duet_storage::engine::rocks::RocksEngine::open(
        &data_dir.path().join("data").join("kv"),
        &duet_storage::engine::rocks::RocksConfig::default(),
    )
    .unwrap();
    let snap = engine.snapshot();
    let left = duet_storage::mvcc::MvccReader::new(&snap)
        .scan(b"t", Some(b"u"), u64::MAX, usize::MAX)
        .unwrap();
    assert_eq!(left.len(), 500);
    let prefixes: std::collections::BTreeSet<&[u8]> =
        left.iter().map(|(k, _)| &k[..k.len() - 8]).collect();
    assert_eq!(prefixes.len(), 1, "one table's rows, no index entries");
}

/// A `duet serve` process, killed (if still running) and reaped when
/// dropped, so that a failing test leaves none behind.
struct Served(std::process::Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `duet serve` on `data`, healthy.
async fn serve(data: &std::path::Path, mysql_port: u16, status_port: u16) -> Served {
    let child = Command::new(duet_binary())
        .args(["serve", "--data-dir"])
        .arg(data)
        .args(["--mysql-addr", &format!("127.0.0.1:{mysql_port}")])
        .args(["--status-addr", &format!("127.0.0.1:{status_port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("duet starts");
    let served = Served(child);
    let status_addr = format!("127.0.0.1:{status_port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let health = tokio::task::spawn_blocking(move || http_get(status_addr, "/health"))
            .await
            .unwrap();
        if matches!(health, Ok((200, _))) {
            return served;
        }
        assert!(Instant::now() < deadline, "duet did not become healthy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_change_cut_short_by_a_crash_leaves_its_table_writable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mysql_port, status_port) = (free_port(), free_port());
    let url = format!("mysql://root@127.0.0.1:{mysql_port}/test");
    let served = serve(&data, mysql_port, status_port).await;
    let mut a = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    a.query_drop("CREATE TABLE t (id INT PRIMARY KEY, d DOUBLE)")
        .await
        .unwrap();
    a.query_drop("INSERT INTO t VALUES (1, 0.1), (2, 0.2)")
        .await
        .unwrap();
    // A locked row holds the change in its second step, which rewrites
    // every row: the table refuses writes meanwhile.
    a.query_drop("BEGIN").await.unwrap();
    a.query_drop("SELECT * FROM t WHERE id = 1 FOR UPDATE")
        .await
        .unwrap();
    let mut b = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    let altering = tokio::spawn(async move { b.query_drop("ALTER TABLE t MODIFY d FLOAT").await });
    let mut c = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut probes = 0;
    loop {
        let probe = format!("INSERT INTO t VALUES ({}, 0.5)", 100 + probes);
        match c.query_drop(probe).await {
            Err(mysql_async::Error::Server(e)) if e.code == 1412 => break,
            Ok(()) => {
                probes += 1;
                assert!(Instant::now() < deadline, "the change never began");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("a write before the change: {e}"),
        }
    }
    // The process dies with the change half done.
    drop(served);
    let _ = altering.await;

    let _served = serve(&data, mysql_port, status_port).await;
    let mut c = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    c.query_drop("INSERT INTO t VALUES (3, 0.3)").await.unwrap();
    let declared: Option<String> = c
        .query_first(
            "SELECT column_type FROM information_schema.columns WHERE table_name = 't' AND column_name = 'd'",
        )
        .await
        .unwrap();
    assert_eq!(declared.as_deref(), Some("double"));
    let n: Option<i64> = c.query_first("SELECT count(*) FROM t").await.unwrap();
    assert_eq!(n, Some(3 + probes));
}
