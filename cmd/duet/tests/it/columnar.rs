//! The columnar replica against the row store, through SQL: under a random
//! workload (inserts, updates, deletes, rollbacks, concurrent transactions,
//! a column added mid-stream, compactions, restarts from a checkpoint and
//! from the row store), reads
//! at the same snapshots answer identically from both engines, and a fresh
//! read never returns stale rows.

use duet_server::{Config, Server};
use mysql_async::Conn;
use mysql_async::prelude::*;

use crate::sql::rows;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

async fn start(dir: &std::path::Path) -> Server {
    duet_tests::init_logging();
    let config = Config {
        data_dir: dir.to_path_buf(),
        mysql_addr: "127.0.0.1:0".into(),
        status_addr: "127.0.0.1:0".into(),
        // Small layers: compaction and several chunks within the test.
        columnar_delta_limit: 40,
        columnar_chunk_rows: 32,
        ..Config::default()
    };
    Server::start(config).await.expect("server starts")
}

async fn connect(server: &Server) -> Conn {
    let a = server.mysql_addr();
    let mut c = Conn::from_url(format!("mysql://root:@{}:{}/test", a.ip(), a.port()))
        .await
        .expect("root connects");
    c.query_drop("SET autocommit = 1").await.unwrap();
    c
}

/// The node's `GET /status`.
async fn status(server: &Server) -> serde_json::Value {
    let addr = server.status_addr();
    let (code, body) = tokio::task::spawn_blocking(move || duet_tests::http_get(addr, "/status"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// The queries compared between engines.
const QUERIES: &[&str] = &[
    "SELECT * FROM t ORDER BY id",
    "SELECT count(*), sum(a), min(b), max(c) FROM t",
    "SELECT a % 5 AS g, count(*), sum(c) FROM t WHERE a > 20 GROUP BY g ORDER BY g",
    "SELECT id, b FROM t WHERE a BETWEEN 10 AND 30 ORDER BY id",
    "SELECT count(*), sum(n) FROM u",
];

/// Every query's answer with `engine` forced, in the current transaction.
async fn answers(c: &mut Conn, engine: &str) -> Vec<Vec<Vec<Option<String>>>> {
    answers_to(c, engine, QUERIES).await
}

/// The answers to `queries` with `engine` forced.
async fn answers_to(c: &mut Conn, engine: &str, queries: &[&str]) -> Vec<Vec<Vec<Option<String>>>> {
    c.query_drop(format!("SET duet_isolation_read_engines = '{engine}'"))
        .await
        .unwrap();
    let mut out = Vec::new();
    for q in queries {
        out.push(rows(c, q).await);
    }
    c.query_drop("SET duet_isolation_read_engines = 'row,columnar'")
        .await
        .unwrap();
    out
}

/// One random change, sometimes in a transaction that rolls back.
async fn random_change(c: &mut Conn, rng: &mut StdRng, next_id: &mut i64, with_e: bool) {
    let statement = match rng.random_range(0..6) {
        0 | 1 => {
            let n = rng.random_range(1..6);
            let values: Vec<String> = (0..n)
                .map(|_| {
                    *next_id += 1;
                    let e = if with_e {
                        format!(", {}", rng.random_range(0..9))
                    } else {
                        String::new()
                    };
                    format!(
                        "({}, {}, 'b{}', {}.{:02}{e})",
                        next_id,
                        rng.random_range(0..50),
                        rng.random_range(0..1000),
                        rng.random_range(0..500),
                        rng.random_range(0..100)
                    )
                })
                .collect();
            let columns = if with_e {
                "(id, a, b, c, e)"
            } else {
                "(id, a, b, c)"
            };
            format!("INSERT INTO t {columns} VALUES {}", values.join(","))
        }
        2 => format!(
            "UPDATE t SET a = a + 1, b = concat(b, 'x') WHERE id % 7 = {}",
            rng.random_range(0..7)
        ),
        3 => {
            let last = (*next_id).max(1);
            format!("DELETE FROM t WHERE id = {}", rng.random_range(1..=last))
        }
        4 => format!("INSERT INTO u VALUES ({})", rng.random_range(-100..100)),
        _ => format!("DELETE FROM u WHERE n > {}", rng.random_range(50..100)),
    };
    let rollback = rng.random_bool(0.2);
    if rollback {
        c.query_drop("BEGIN").await.unwrap();
    }
    // Concurrent writers may conflict; a conflict changes nothing.
    let _ = c.query_drop(&statement).await;
    if rollback {
        c.query_drop("ROLLBACK").await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn columnar_and_row_answer_alike_under_a_random_workload() {
    let dir = tempfile::tempdir().unwrap();
    let seed: u64 = std::env::var("DUET_COLUMNAR_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261128);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut server = start(dir.path()).await;
    let mut setup = connect(&server).await;
    setup
        .query_drop("CREATE TABLE t (id INT PRIMARY KEY, a INT, b VARCHAR(40), c DECIMAL(10,2))")
        .await
        .unwrap();
    setup.query_drop("CREATE TABLE u (n INT)").await.unwrap();
    drop(setup);

    let mut next_id = 0i64;
    let mut with_e = false;
    let mut compared = 0;
    for round in 0..6 {
        // A column added mid-stream.
        if round == 2 {
            let mut c = connect(&server).await;
            c.query_drop("ALTER TABLE t ADD COLUMN e INT DEFAULT 7")
                .await
                .unwrap();
            with_e = true;
        }
        // The node restarts mid-workload: with its checkpoint lost the
        // replica rebuilds from the row store; after a clean stop it loads
        // the checkpoint the stop wrote, with nothing to replay.
        if round == 3 || round == 4 {
            server.stop().await;
            let manifest = dir.path().join("columnar").join("MANIFEST.json");
            assert!(manifest.exists(), "a clean stop checkpoints the replica");
            if round == 3 {
                std::fs::remove_file(&manifest).unwrap();
            }
            server = start(dir.path()).await;
            let status = status(&server).await;
            assert_eq!(
                status["columnar"]["from_checkpoint"],
                serde_json::json!(round == 4),
                "{status}"
            );
            assert_eq!(status["columnar"]["replayed"], 0, "{status}");
        }
        let mut writers = [connect(&server).await, connect(&server).await];
        // A snapshot taken now, read after more changes.
        let mut reader = connect(&server).await;
        reader
            .query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            .await
            .unwrap();
        let _ = rows(&mut reader, "SELECT count(*) FROM t").await;
        for step in 0..40 {
            let w = &mut writers[step % 2];
            random_change(w, &mut rng, &mut next_id, with_e).await;
        }
        // Old snapshot: the same rows from both engines.
        let row = answers(&mut reader, "row").await;
        let columnar = answers(&mut reader, "columnar").await;
        assert_eq!(
            row, columnar,
            "round {round}: an old snapshot differs (seed {seed})"
        );
        reader.query_drop("COMMIT").await.unwrap();
        // Fresh snapshot: likewise, and it sees every change so far.
        let row = answers(&mut reader, "row").await;
        let columnar = answers(&mut reader, "columnar").await;
        assert_eq!(
            row, columnar,
            "round {round}: a fresh read differs (seed {seed})"
        );
        compared += 2;
        // Let a compaction run between rounds.
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    }
    assert_eq!(compared, 12);

    // The replica compacted into several chunks and reports itself.
    let mut c = connect(&server).await;
    let status = rows(
        &mut c,
        "SELECT table_name, replica_count, available, table_rows, applied_index_lag \
         FROM information_schema.duet_columnar_replicas WHERE table_schema = 'test' ORDER BY table_name",
    )
    .await;
    let count = rows(&mut c, "SELECT count(*) FROM t").await[0][0].clone();
    assert_eq!(status[0][0].as_deref(), Some("t"));
    assert_eq!(status[0][1].as_deref(), Some("1"));
    assert_eq!(status[0][2].as_deref(), Some("YES"));
    assert_eq!(status[0][3], count);
    // Caught up but for what the background loops (GC floors) wrote since.
    let lag: u64 = status[0][4].as_deref().unwrap().parse().unwrap();
    assert!(lag < 10, "applied-index lag {lag}");
    // A pruned scan: EXPLAIN ANALYZE on the columnar engine answers the same.
    c.query_drop("SET duet_isolation_read_engines = 'columnar'")
        .await
        .unwrap();
    let plan = rows(&mut c, "EXPLAIN SELECT count(*) FROM t WHERE id > 5").await;
    assert!(
        plan.iter().any(|r| r[2].as_deref() == Some("columnar")),
        "{plan:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_read_sees_every_committed_row() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let mut writer = connect(&server).await;
    let mut reader = connect(&server).await;
    writer
        .query_drop("CREATE TABLE f (id INT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    reader
        .query_drop("SET duet_isolation_read_engines = 'columnar'")
        .await
        .unwrap();
    for i in 1..=60 {
        writer
            .query_drop(format!("INSERT INTO f VALUES ({i}, {i})"))
            .await
            .unwrap();
        let seen = rows(&mut reader, "SELECT count(*), sum(v) FROM f").await;
        assert_eq!(
            seen,
            vec![vec![
                Some(i.to_string()),
                Some((i * (i + 1) / 2).to_string())
            ]],
            "the columnar read after insert {i} is stale"
        );
    }
    // A transaction's own writes are read from the row store, whatever the
    // session allows.
    reader.query_drop("BEGIN").await.unwrap();
    reader
        .query_drop("INSERT INTO f VALUES (1000, 1)")
        .await
        .unwrap();
    assert_eq!(
        rows(&mut reader, "SELECT count(*) FROM f").await,
        vec![vec![Some("61".to_string())]]
    );
    reader.query_drop("ROLLBACK").await.unwrap();
    // Without a replica, a session that allows only columnar gets 1815;
    // with one back (back-filled), it reads every row.
    writer
        .query_drop("ALTER TABLE f SET COLUMNAR REPLICA 0")
        .await
        .unwrap();
    let e = reader
        .query_drop("SELECT count(*) FROM f")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("1815"), "{e}");
    writer
        .query_drop("ALTER TABLE f SET COLUMNAR REPLICA 1")
        .await
        .unwrap();
    assert_eq!(
        rows(&mut reader, "SELECT count(*), sum(v) FROM f").await,
        vec![vec![Some("60".to_string()), Some("1830".to_string())]]
    );
    let e = writer
        .query_drop("ALTER TABLE f SET COLUMNAR REPLICA 2")
        .await
        .unwrap_err();
    // One node holds one copy at most.
    assert!(e.to_string().contains("1210"), "{e}");
    server.stop().await;
}

const CRASH_DIR: &str = "DUET_COLUMNAR_CRASH_DIR";
const CRASH_TEST: &str = "columnar::a_crashed_node_replays_its_log_onto_the_last_checkpoint";
const CRASH_QUERIES: &[&str] = &[
    "SELECT * FROM t ORDER BY id",
    "SELECT count(*), sum(a), sum(length(b)), sum(c) FROM t",
];

/// In the child process: rows, a periodic checkpoint, more changes, then
/// an abort (no destructors, no stop, no final checkpoint).
async fn crash_child(dir: &std::path::Path) -> ! {
    let config = Config {
        data_dir: dir.to_path_buf(),
        mysql_addr: "127.0.0.1:0".into(),
        status_addr: "127.0.0.1:0".into(),
        columnar_checkpoint_secs: 8,
        // Small regions: one splits after the checkpoint.
        region_split_keys: 40,
        split_check_interval_secs: 1,
        ..Config::default()
    };
    let server = Server::start(config).await.expect("server starts");
    let mut c = connect(&server).await;
    c.query_drop("CREATE TABLE t (id INT PRIMARY KEY, a INT, b VARCHAR(300))")
        .await
        .unwrap();
    let values = |from: i64, to: i64| {
        (from..to)
            .map(|i| {
                // Some values long enough to be staged apart from their lock.
                let len = if i % 3 == 0 { 200 } else { 5 };
                format!("({i}, {i}, '{}')", "x".repeat(len))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    c.query_drop(format!(
        "INSERT INTO t (id, a, b) VALUES {}",
        values(0, 100)
    ))
    .await
    .unwrap();
    // Wait for a checkpoint written after those rows.
    let manifest = dir.join("columnar").join("MANIFEST.json");
    let after = std::time::SystemTime::now();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::metadata(&manifest)
        .and_then(|m| m.modified())
        .map_or(true, |t| t <= after)
    {
        assert!(std::time::Instant::now() < deadline, "no checkpoint came");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let regions_at_checkpoint = regions(&server).await;
    // Changes the checkpoint does not hold, a new column and index among
    // them: the log must bring them back.
    c.query_drop("ALTER TABLE t ADD COLUMN c INT DEFAULT 7")
        .await
        .unwrap();
    c.query_drop("ALTER TABLE t ADD INDEX ia (a)")
        .await
        .unwrap();
    c.query_drop(format!(
        "UPDATE t SET a = a + 1000, b = '{}', c = id WHERE id % 4 = 0",
        "y".repeat(150)
    ))
    .await
    .unwrap();
    c.query_drop("DELETE FROM t WHERE id % 10 = 5")
        .await
        .unwrap();
    c.query_drop(format!(
        "INSERT INTO t (id, a, b) VALUES {}",
        values(100, 150)
    ))
    .await
    .unwrap();
    // And a region splits before the crash (well before the next checkpoint).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(4);
    while regions(&server).await <= regions_at_checkpoint && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let split = regions(&server).await > regions_at_checkpoint;
    let count = rows(&mut c, "SELECT count(*) FROM t").await[0][0].clone();
    std::fs::write(
        dir.join("expected-count"),
        format!("{} {split}", count.unwrap()),
    )
    .unwrap();
    std::process::abort();
}

/// How many regions the node holds.
async fn regions(server: &Server) -> usize {
    status(server).await["regions"]
        .as_array()
        .map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_node_replays_its_log_onto_the_last_checkpoint() {
    if let Some(dir) = std::env::var_os(CRASH_DIR) {
        crash_child(std::path::Path::new(&dir)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", CRASH_TEST, "--nocapture", "--test-threads=1"])
        .env(CRASH_DIR, dir.path())
        .status()
        .expect("child runs");
    assert!(!child.success(), "the child must die by abort");
    let expected = std::fs::read_to_string(dir.path().join("expected-count"))
        .expect("the child got as far as its abort");
    assert_eq!(
        expected, "140 true",
        "140 rows, and a region split after the checkpoint"
    );

    let server = start(dir.path()).await;
    let status = status(&server).await;
    assert_eq!(status["columnar"]["from_checkpoint"], true, "{status}");
    let replayed = status["columnar"]["replayed"].as_u64().unwrap();
    assert!(
        replayed >= 3,
        "the changes after the checkpoint came from the log: {status}"
    );
    let mut c = connect(&server).await;
    let row = answers_to(&mut c, "row", CRASH_QUERIES).await;
    let columnar = answers_to(&mut c, "columnar", CRASH_QUERIES).await;
    assert_eq!(row, columnar);
    assert_eq!(row[1][0][0].as_deref(), Some("140"));
    server.stop().await;
}

/// Table `t` with 300 rows (`v` = `id % 7`), split into at least three
/// regions (the server's regions split at 60 keys); a connection to it.
async fn split_table(server: &Server) -> Conn {
    let mut c = connect(server).await;
    c.query_drop("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    for batch in 0..6 {
        let values: Vec<String> = (0..50)
            .map(|i| {
                let id = batch * 50 + i;
                format!("({id}, {})", id % 7)
            })
            .collect();
        c.query_drop(format!("INSERT INTO t VALUES {}", values.join(",")))
            .await
            .unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while regions(server).await < 3 {
        assert!(std::time::Instant::now() < deadline, "the table splits");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    c
}

/// The replica is fed by a Raft learner of every region: the node's
/// learner store (id `node | LEARNER_STORE_BIT`), which every region lists
/// as a learner, including the regions splits create; it follows each
/// region's log, the replica applies what it applies, and its engine keeps
/// Raft state only, no rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_peer_of_every_region_feeds_the_replica_and_keeps_no_rows() {
    use duet_storage::engine::{Cf, Engine, EngineIterator, IterOptions, Snapshot};

    duet_tests::init_logging();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Config {
        data_dir: dir.path().to_path_buf(),
        mysql_addr: "127.0.0.1:0".into(),
        status_addr: "127.0.0.1:0".into(),
        region_split_keys: 60,
        split_check_interval_secs: 1,
        ..Config::default()
    })
    .await
    .expect("server starts");
    let mut c = split_table(&server).await;
    c.query_drop("SET duet_isolation_read_engines = 'columnar'")
        .await
        .unwrap();
    c.query_drop("INSERT INTO t VALUES (1000, 3)")
        .await
        .unwrap();
    let got = rows(&mut c, "SELECT count(*), sum(v) FROM t").await;
    let expected_sum: i64 = (0..300).map(|id| id % 7).sum::<i64>() + 3;
    assert_eq!(
        got,
        vec![vec![
            Some("301".to_string()),
            Some(expected_sum.to_string())
        ]],
        "a fresh read on the learner"
    );

    let learner = 1 | duet_raft::store::LEARNER_STORE_BIT;
    let doc = status(&server).await;
    let voters: Vec<u64> = doc["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let learners: Vec<u64> = r["learners"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|l| l.as_u64())
                .collect();
            assert_eq!(learners, vec![learner], "region {}", r["region_id"]);
            r["region_id"].as_u64().unwrap()
        })
        .collect();
    let learned: Vec<u64> = doc["learner_regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["peer_id"].as_u64(), Some(learner));
            assert_eq!(
                r["replica_applied_index"], r["applied_index"],
                "the replica applied what the learner peer applied: {r}"
            );
            r["region_id"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(learned, voters, "the learner store holds every region");
    server.stop().await;

    let engine = duet_storage::engine::rocks::RocksEngine::open(
        &dir.path().join("learner"),
        &duet_storage::engine::rocks::RocksConfig::default(),
    )
    .unwrap();
    let snap = engine.snapshot();
    let count = |cf: Cf| {
        let mut it = snap.iter(cf, IterOptions::default()).unwrap();
        let mut ok = it.seek_to_first().unwrap();
        let mut n = 0;
        while ok {
            n += 1;
            ok = it.next().unwrap();
        }
        n
    };
    for cf in [Cf::Default, Cf::Lock, Cf::Write] {
        assert_eq!(count(cf), 0, "no row data in the learner's engine ({cf:?})");
    }
    assert!(count(Cf::Raft) > 0, "only its Raft state");
}

/// A replica with nothing to start from (its checkpoint lost here), or a
/// table given a replica, is copied from Raft snapshots that the learner
/// peers ask their leaders for, region by region; it never reads the
/// node's row store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_without_a_checkpoint_is_copied_from_region_snapshots() {
    duet_tests::init_logging();
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        mysql_addr: "127.0.0.1:0".into(),
        status_addr: "127.0.0.1:0".into(),
        region_split_keys: 60,
        split_check_interval_secs: 1,
        ..Config::default()
    };
    let server = Server::start(config.clone()).await.expect("server starts");
    drop(split_table(&server).await);
    server.stop().await;
    std::fs::remove_dir_all(dir.path().join("columnar")).unwrap();

    let server = Server::start(config).await.expect("server restarts");
    let doc = status(&server).await;
    assert_eq!(doc["columnar"]["from_checkpoint"], false, "{doc}");
    let mut c = connect(&server).await;
    c.query_drop("SET duet_isolation_read_engines = 'columnar'")
        .await
        .unwrap();
    let expected_sum: i64 = (0..300).map(|id| id % 7).sum();
    assert_eq!(
        rows(&mut c, "SELECT count(*), sum(v) FROM t").await,
        vec![vec![
            Some("300".to_string()),
            Some(expected_sum.to_string())
        ]],
        "the replica, copied again"
    );
    let doc = status(&server).await;
    assert_eq!(doc["columnar"]["awaiting_snapshots"], false, "{doc}");
    assert!(doc["regions"].as_array().unwrap().len() >= 3, "{doc}");

    // A table given its replica back lacks the rows written without one:
    // snapshots of its regions bring them.
    c.query_drop("SET duet_isolation_read_engines = 'row,columnar'")
        .await
        .unwrap();
    c.query_drop("ALTER TABLE t SET COLUMNAR REPLICA 0")
        .await
        .unwrap();
    c.query_drop("UPDATE t SET v = v + 100 WHERE id % 3 = 0")
        .await
        .unwrap();
    c.query_drop("DELETE FROM t WHERE id % 50 = 7")
        .await
        .unwrap();
    c.query_drop("ALTER TABLE t SET COLUMNAR REPLICA 1")
        .await
        .unwrap();
    let queries = &[
        "SELECT count(*), sum(v) FROM t",
        "SELECT id, v FROM t WHERE id % 11 = 0 ORDER BY id",
    ];
    let row = answers_to(&mut c, "row", queries).await;
    let columnar = answers_to(&mut c, "columnar", queries).await;
    assert_eq!(row, columnar);
    assert_eq!(row[0][0][0].as_deref(), Some("294"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routed_read_of_a_table_being_copied_anew_is_served_by_the_row_store() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let mut c = connect(&server).await;
    c.query_drop("CREATE TABLE test.x (id INT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    c.query_drop("INSERT INTO test.x VALUES (1, 1), (2, 2), (3, 3)")
        .await
        .unwrap();
    // Right after its replica is given back, the learner may still hold
    // the table as it was; catching up for the read, it finds the table
    // awaiting snapshots. A routed read then falls back to the row store
    // rather than failing.
    for round in 0..20 {
        c.query_drop("ALTER TABLE test.x SET COLUMNAR REPLICA 0")
            .await
            .unwrap();
        c.query_drop("ALTER TABLE test.x SET COLUMNAR REPLICA 1")
            .await
            .unwrap();
        assert_eq!(
            rows(&mut c, "SELECT count(*) FROM test.x").await,
            vec![vec![Some("3".to_string())]],
            "round {round}"
        );
    }
    server.stop().await;
}
