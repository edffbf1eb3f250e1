//! The placement driver on real processes: five `duet serve` founders with
//! `max_replicas = 3` and small regions settle with three voters per region
//! on distinct stores, each node holding only part of the data yet every
//! node answering for all of it; a killed node is declared down and its
//! replicas made again on the others while writes go on; a sixth node joins
//! with `--join` and receives regions, then is drained and retired through
//! `POST /admin/stores/6/remove`; the killed node comes back and drops the
//! replicas it lost while away. `SPLIT TABLE` pre-splits through a node
//! that leads few of the regions. Observed through `GET /cluster`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use duet_storage::codec::key;
use duet_tests::{free_port, http_get, http_post_json};

use crate::cluster::{Node, runtime, sql};

/// `GET /cluster` on `node`, if it answers.
fn cluster(node: &Node) -> Option<serde_json::Value> {
    let addr: SocketAddr = format!("127.0.0.1:{}", node.status).parse().unwrap();
    match http_get(addr, "/cluster") {
        Ok((200, body)) => serde_json::from_str(&body).ok(),
        _ => None,
    }
}

fn ids(v: &serde_json::Value) -> Vec<u64> {
    (v.as_array().into_iter().flatten())
        .filter_map(|x| x.as_u64())
        .collect()
}

/// The state of store `id` in a report.
fn store_state(report: &serde_json::Value, id: u64) -> Option<String> {
    (report["stores"].as_array()?.iter())
        .find(|s| s["id"].as_u64() == Some(id))
        .and_then(|s| Some(s["state"].as_str()?.to_string()))
}

/// Voter replicas per store in a report.
fn regions_on(report: &serde_json::Value, id: u64) -> usize {
    (report["regions"].as_array().into_iter().flatten())
        .filter(|r| ids(&r["voters"]).contains(&id))
        .count()
}

/// Regions led by store `id` in a report.
pub(crate) fn leaders_on(report: &serde_json::Value, id: u64) -> usize {
    (report["regions"].as_array().into_iter().flatten())
        .filter(|r| r["leader"].as_u64() == Some(id))
        .count()
}

/// Whether every region has `n` voters on distinct stores of `allowed`,
/// and the regions tile the key space.
fn placed(report: &serde_json::Value, n: usize, allowed: &[u64]) -> bool {
    let Some(regions) = report["regions"].as_array() else {
        return false;
    };
    let mut next = String::new();
    for r in regions {
        let mut voters = ids(&r["voters"]);
        voters.sort_unstable();
        voters.dedup();
        if voters.len() != n
            || ids(&r["voters"]).len() != n
            || !voters.iter().all(|v| allowed.contains(v))
            || r["start_key"].as_str() != Some(next.as_str())
        {
            return false;
        }
        next = r["end_key"].as_str().unwrap_or_default().to_string();
    }
    !regions.is_empty() && next.is_empty()
}

/// Waits until `node`'s `GET /cluster` satisfies `done`; returns it.
pub(crate) fn settle(
    node: &Node,
    within: Duration,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + within;
    let mut last = serde_json::Value::Null;
    loop {
        if let Some(report) = cluster(node) {
            if done(&report) {
                return report;
            }
            last = report;
        }
        if Instant::now() >= deadline {
            print_logs(node);
            panic!("{what}: not reached; last report {last:#}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Prints what the nodes beside `node` logged of placement and trouble.
fn print_logs(node: &Node) {
    let Some(root) = node.dir.parent() else {
        return;
    };
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "log") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if let Ok(keep) = std::env::var("DUET_TEST_KEEP_LOGS") {
                let _ = std::fs::create_dir_all(&keep);
                let _ = std::fs::write(std::path::Path::new(&keep).join(entry.file_name()), &text);
            }
            let lines: Vec<&str> = (text.lines())
                .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("placement"))
                .collect();
            eprintln!("--- {} (last of {} lines)", path.display(), lines.len());
            for l in &lines[lines.len().saturating_sub(60)..] {
                eprintln!("{l}");
            }
        }
    }
}

/// Regions of the row store that node `node` holds (its `/status`).
fn held(node: &Node) -> usize {
    let addr: SocketAddr = format!("127.0.0.1:{}", node.status).parse().unwrap();
    let (_, body) = http_get(addr, "/status").unwrap();
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    doc["regions"].as_array().map_or(0, Vec::len)
}

/// Inserts rows `from..to` (v = 2 * id) through `node`, 100 per statement.
fn load(rt: &tokio::runtime::Runtime, node: &Node, from: u64, to: u64) {
    let mut at = from;
    while at < to {
        let end = (at + 100).min(to);
        let values: Vec<String> = (at..end).map(|i| format!("({i}, {})", 2 * i)).collect();
        sql(
            rt,
            node,
            &format!("INSERT INTO app.t VALUES {}", values.join(",")),
        );
        at = end;
    }
}

/// Checks `(COUNT(*), SUM(v))` of the table as `node` answers it, read
/// from the row store, from the columnar replicas (this node's and, for
/// regions whose learners are elsewhere, other nodes'), and as the router
/// chooses, against `want`.
fn check_totals(rt: &tokio::runtime::Runtime, node: &Node, want: (u64, u64), when: &str) {
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        compare_totals(rt, node, want, when);
    }));
    if let Err(panic) = checked {
        print_logs(node);
        std::panic::resume_unwind(panic);
    }
}

fn compare_totals(rt: &tokio::runtime::Runtime, node: &Node, want: (u64, u64), when: &str) {
    let read = |hint: &str| {
        let rows = sql(
            rt,
            node,
            &format!("SELECT {hint} COUNT(*), SUM(v) FROM app.t"),
        );
        (
            rows[0][0].parse::<u64>().unwrap(),
            rows[0][1].parse::<u64>().unwrap(),
        )
    };
    let row = read("/*+ READ_FROM_STORAGE(ROW[t]) */");
    let routed = read("");
    // Forced columnar: a node whose learners hold only some regions
    // streams the others' rows from the nodes that hold them.
    let columnar = read("/*+ READ_FROM_STORAGE(COLUMNAR[t]) */");
    if row != want || routed != want || columnar != want {
        explain_difference(rt, node, want.0);
    }
    assert_eq!(
        row, want,
        "node {} {when}: read from the row store",
        node.id
    );
    assert_eq!(routed, want, "node {} {when}: read as routed", node.id);
    assert_eq!(
        columnar, want,
        "node {} {when}: read from columnar replicas",
        node.id
    );
}

/// Prints which ids each read lacks, the node's regions and the cluster's.
fn explain_difference(rt: &tokio::runtime::Runtime, node: &Node, rows: u64) {
    let runs_of = |hint: &str| -> Vec<(u64, u64)> {
        let got: std::collections::BTreeSet<u64> =
            sql(rt, node, &format!("SELECT {hint} id FROM app.t"))
                .iter()
                .map(|r| r[0].parse().unwrap())
                .collect();
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for id in (0..rows).filter(|i| !got.contains(i)) {
            match runs.last_mut() {
                Some((_, end)) if *end + 1 == id => *end = id,
                _ => runs.push((id, id)),
            }
        }
        runs
    };
    eprintln!(
        "node {}: the row read lacks {:?}; the routed read lacks {:?}",
        node.id,
        runs_of("/*+ READ_FROM_STORAGE(ROW[t]) */"),
        runs_of("")
    );
    let addr: SocketAddr = format!("127.0.0.1:{}", node.status).parse().unwrap();
    if let Ok((_, body)) = http_get(addr, "/status") {
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        for r in doc["regions"].as_array().into_iter().flatten() {
            eprintln!(
                "  held: region {} [{}, {}) {} voters {} learners {} epoch {}",
                r["region_id"],
                r["start_key"],
                r["end_key"],
                r["role"],
                r["voters"],
                r["learners"],
                r["epoch"]
            );
        }
    }
    if let Some(report) = cluster(node) {
        for r in report["regions"].as_array().into_iter().flatten() {
            eprintln!(
                "  cluster: region {} [{}, {}) voters {} leader {}",
                r["id"], r["start_key"], r["end_key"], r["voters"], r["leader"]
            );
        }
    }
    print_logs(node);
}

/// The row handles at which the regions of `SHOW TABLE t REGIONS` start.
fn split_handles(regions: &[Vec<String>]) -> Vec<i64> {
    let unhex = |s: &str| -> Vec<u8> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    };
    (regions.iter())
        .filter_map(|r| key::decode_row_key(&unhex(&r[1]), false).ok())
        .filter_map(|(_, h)| match h {
            key::Handle::Int(h) => Some(h),
            _ => None,
        })
        .collect()
}

fn expected(rows: u64) -> (u64, u64) {
    (rows, rows * (rows - 1))
}

fn post(node: &Node, path: &str) -> (u16, String) {
    let addr: SocketAddr = format!("127.0.0.1:{}", node.status).parse().unwrap();
    http_post_json(addr, path, "{}").unwrap()
}

#[test]
fn five_nodes_keep_three_replicas_repair_a_lost_node_and_admit_a_sixth() {
    let rt = runtime();
    let root = tempfile::tempdir().unwrap();
    let env: Vec<(String, String)> = [
        ("DUET_MAX_REPLICAS", "3"),
        ("DUET_PD_HEARTBEAT_MS", "300"),
        ("DUET_MAX_STORE_DOWN_TIME_SECS", "5"),
        ("DUET_REGION_SPLIT_KEYS", "400"),
        ("DUET_SPLIT_CHECK_INTERVAL_SECS", "1"),
        ("DUET_MAX_LEADER_MISSING_SECS", "3"),
        (
            "DUET_LOG",
            "info,duet_server::pd=debug,duet_raft::cluster=debug",
        ),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let raft_ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
    let founders = (1..=5)
        .map(|id| format!("{id}=127.0.0.1:{}", raft_ports[id - 1]))
        .collect::<Vec<_>>()
        .join(",");
    let mut nodes: Vec<Node> = (1..=6).map(|id| Node::new(root.path(), id, &env)).collect();
    for (i, n) in nodes.iter_mut().take(5).enumerate() {
        n.spawn(raft_ports[i], &["--initial-cluster", &founders]);
    }

    // Loaded through every node.
    sql(&rt, &nodes[0], "CREATE DATABASE app");
    sql(
        &rt,
        &nodes[1],
        "CREATE TABLE app.t (id BIGINT PRIMARY KEY, v BIGINT)",
    );
    let mut rows = 0;
    for (i, n) in nodes.iter().take(5).enumerate() {
        load(&rt, n, rows, rows + 600);
        rows += 600;
        let _ = i;
    }

    // Three voters per region on distinct stores, spread over all five.
    let all = [1, 2, 3, 4, 5];
    let report = settle(
        &nodes[0],
        Duration::from_secs(180),
        "3 voters per region on 5 stores",
        |r| {
            r["regions"].as_array().is_some_and(|a| a.len() >= 4)
                && placed(r, 3, &all)
                && all.iter().all(|s| regions_on(r, *s) > 0)
        },
    );
    let regions = report["regions"].as_array().unwrap().len();
    assert!(regions >= 4, "the table split: {report:#}");
    assert_eq!(report["max_replicas"], 3);
    // Each node holds only part of the regions …
    assert!(
        nodes.iter().take(5).any(|n| held(n) < regions),
        "some node holds fewer than all {regions} regions"
    );
    // … and answers for the whole table.
    for n in nodes.iter().take(5) {
        check_totals(&rt, n, expected(rows), "once placed");
    }
    // The same layout, as SQL, on any node.
    let up = sql(
        &rt,
        &nodes[2],
        "SELECT COUNT(*) FROM information_schema.duet_stores WHERE state = 'up' AND role = 'row'",
    );
    assert_eq!(up, [["5"]]);
    let voters = sql(
        &rt,
        &nodes[3],
        "SELECT voters FROM information_schema.duet_regions",
    );
    assert!(voters.len() >= 4, "{voters:?}");
    for v in &voters {
        assert_eq!(v[0].split(',').count(), 3, "{voters:?}");
    }
    // Leaders report their regions' sizes as their split checks count them.
    let keys = sql(
        &rt,
        &nodes[0],
        "SELECT COUNT(*) FROM information_schema.duet_regions WHERE approximate_keys > 0",
    );
    assert_ne!(keys, [["0"]], "no region reports its keys");

    // Pre-split through one node: each cut is made by its region's leader,
    // wherever that is, and every node then sees the table cut there.
    let split = "SPLIT TABLE app.t BETWEEN (0) AND (3000) REGIONS 6";
    let made = sql(&rt, &nodes[4], split);
    assert_eq!(made[0].len(), 2, "TOTAL_SPLIT_REGION, SCATTER_FINISH_RATIO");
    assert!(made[0][0].parse::<usize>().unwrap() <= 6, "{made:?}");
    assert_eq!(sql(&rt, &nodes[2], split)[0][0], "0", "every cut exists");
    // The layout is the placement driver's, fed by heartbeats: it shows
    // the new regions within a few rounds.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let cuts = split_handles(&sql(&rt, &nodes[3], "SHOW TABLE app.t REGIONS"));
        if (0..6).all(|i| cuts.contains(&(i * 500))) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "regions start at each cut: {cuts:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    settle(
        &nodes[0],
        Duration::from_secs(180),
        "the pre-split regions placed",
        |r| placed(r, 3, &all),
    );
    for n in nodes.iter().take(5) {
        check_totals(&rt, n, expected(rows), "after the pre-split");
    }

    // Node 5 dies: writes go on; it is declared down and its replicas are
    // made again on the other four.
    nodes[4].kill();
    load(&rt, &nodes[0], rows, rows + 300);
    rows += 300;
    let live = [1, 2, 3, 4];
    settle(
        &nodes[1],
        Duration::from_secs(180),
        "store 5 down and repaired",
        |r| store_state(r, 5).as_deref() == Some("down") && placed(r, 3, &live),
    );
    for n in nodes.iter().take(4) {
        check_totals(&rt, n, expected(rows), "after the repair");
    }

    // Bad admin calls: an unknown store, a store id that is not a number.
    assert_eq!(post(&nodes[0], "/admin/stores/99/remove").0, 400);
    assert_eq!(post(&nodes[0], "/admin/stores/x/remove").0, 400);

    // A sixth node joins through a member and receives its share.
    let seed = format!("127.0.0.1:{}", raft_ports[2]);
    nodes[5].spawn(raft_ports[5], &["--join", &seed]);
    settle(
        &nodes[0],
        Duration::from_secs(180),
        "store 6 up with regions",
        |r| store_state(r, 6).as_deref() == Some("up") && regions_on(r, 6) > 0,
    );
    check_totals(&rt, &nodes[5], expected(rows), "after joining");

    // A node id already taken cannot join.
    let dup = Node::new(&root.path().join("dup"), 2, &env);
    let status = dup
        .command(free_port(), &["--join", &seed])
        .status()
        .unwrap();
    assert!(!status.success(), "a second node 2 is refused");

    // Store 6 is drained and retired.
    let (code, body) = post(&nodes[0], "/admin/stores/6/remove");
    assert_eq!(code, 200, "{body}");
    settle(
        &nodes[0],
        Duration::from_secs(180),
        "store 6 removed",
        |r| store_state(r, 6).as_deref() == Some("removed") && regions_on(r, 6) == 0,
    );
    for n in nodes.iter().take(4) {
        check_totals(&rt, n, expected(rows), "at the end");
    }

    // Node 5 comes back after its replicas were made again elsewhere. Its
    // old voters hear of their removal from the members they call; its
    // columnar learners call no one — they ask, once leaderless for
    // `max_leader_missing_secs`, and are destroyed. In the end every
    // replica it holds has a leader, and it answers for the whole table.
    nodes[4].spawn(raft_ports[4], &["--initial-cluster", &founders]);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let orphans = leaderless(&nodes[4]);
        if orphans.as_ref().is_some_and(Vec::is_empty) {
            break;
        }
        if Instant::now() >= deadline {
            print_logs(&nodes[4]);
            panic!("node 5 keeps replicas nobody leads: {orphans:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    check_totals(&rt, &nodes[4], expected(rows), "node 5 back");
}

/// The replicas of `node` (row and columnar learner) that know no leader,
/// as (store, region); `None` while it does not answer.
fn leaderless(node: &Node) -> Option<Vec<(&'static str, u64)>> {
    let addr: SocketAddr = format!("127.0.0.1:{}", node.status).parse().unwrap();
    let (code, body) = http_get(addr, "/status").ok()?;
    let doc: serde_json::Value = serde_json::from_str(&body).ok().filter(|_| code == 200)?;
    let mut out = Vec::new();
    for (store, list) in [("row", "regions"), ("learner", "learner_regions")] {
        for r in doc[list].as_array().into_iter().flatten() {
            if r["leader"].is_null() {
                out.push((store, r["region_id"].as_u64().unwrap_or(0)));
            }
        }
    }
    Some(out)
}

/// Three founders under `root` with `env`, and `app.t` loaded with
/// `per_node` rows through each of them (ids from 0 on).
fn three_loaded(
    rt: &tokio::runtime::Runtime,
    root: &std::path::Path,
    env: &[(String, String)],
    per_node: u64,
) -> Vec<Node> {
    let (mut nodes, _, _) = crate::cluster::founders(root, env);
    nodes.truncate(3);
    sql(rt, &nodes[0], "CREATE DATABASE app");
    sql(
        rt,
        &nodes[1],
        "CREATE TABLE app.t (id BIGINT PRIMARY KEY, v BIGINT)",
    );
    for (i, n) in nodes.iter().enumerate() {
        let from = per_node * i as u64;
        load(rt, n, from, from + per_node);
    }
    nodes
}

#[test]
fn emptied_regions_merge_into_their_neighbours_and_reads_stay_exact() {
    let rt = runtime();
    let root = tempfile::tempdir().unwrap();
    let env: Vec<(String, String)> = [
        ("DUET_MAX_REPLICAS", "3"),
        ("DUET_PD_HEARTBEAT_MS", "300"),
        ("DUET_REGION_SPLIT_KEYS", "300"),
        ("DUET_REGION_MERGE_KEYS", "100"),
        ("DUET_SPLIT_MERGE_INTERVAL_SECS", "2"),
        ("DUET_SPLIT_CHECK_INTERVAL_SECS", "1"),
        ("DUET_GC_LIFE_TIME_SECS", "1"),
        ("DUET_GC_INTERVAL_SECS", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let nodes = three_loaded(&rt, root.path(), &env, 1000);
    let all = [1, 2, 3];
    let report = settle(
        &nodes[0],
        Duration::from_secs(180),
        "the loaded table split over three stores",
        |r| r["regions"].as_array().is_some_and(|a| a.len() >= 6) && placed(r, 3, &all),
    );
    let split = report["regions"].as_array().unwrap().len();

    // Most rows go; once the GC has collected them, the emptied regions
    // merge into their neighbours.
    sql(&rt, &nodes[2], "DELETE FROM app.t WHERE id >= 200");
    let report = settle(
        &nodes[0],
        Duration::from_secs(180),
        "the emptied regions merged",
        |r| r["regions"].as_array().is_some_and(|a| a.len() <= 3) && placed(r, 3, &all),
    );
    let merged = report["regions"].as_array().unwrap().len();
    eprintln!("placement: {split} regions after the load, {merged} after the deletes");
    // The merges happened in the stores, not only in the driver's map.
    for n in &nodes {
        let deadline = Instant::now() + Duration::from_secs(30);
        while held(n) > merged {
            assert!(Instant::now() < deadline, "node {} holds {}", n.id, held(n));
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    for n in &nodes {
        check_totals(&rt, n, expected(200), "after the merges");
    }
    // Writes land in the merged regions, on every node.
    load(&rt, &nodes[1], 200, 400);
    for n in &nodes {
        check_totals(&rt, n, expected(400), "after writing into merged regions");
    }
}

#[test]
fn an_analytics_node_holds_only_columnar_learners_and_answers_for_the_table() {
    let rt = runtime();
    let root = tempfile::tempdir().unwrap();
    let env: Vec<(String, String)> = [
        ("DUET_MAX_REPLICAS", "3"),
        ("DUET_PD_HEARTBEAT_MS", "300"),
        ("DUET_REGION_SPLIT_KEYS", "400"),
        ("DUET_SPLIT_CHECK_INTERVAL_SECS", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let (mut nodes, raft_ports, _) = crate::cluster::founders(root.path(), &env);
    sql(&rt, &nodes[0], "CREATE DATABASE app");
    sql(
        &rt,
        &nodes[1],
        "CREATE TABLE app.t (id BIGINT PRIMARY KEY, v BIGINT)",
    );
    load(&rt, &nodes[2], 0, 1500);

    // An analytics node must join; it cannot found or run alone.
    let alone = Node::new(&root.path().join("alone"), 7, &env);
    let refused = alone
        .command(free_port(), &["--role", "analytics"])
        .status()
        .unwrap();
    assert!(!refused.success(), "an analytics node without --join");

    let seed = format!("127.0.0.1:{}", raft_ports[0]);
    nodes[3].spawn(free_port(), &["--join", &seed, "--role", "analytics"]);
    let rows = [1, 2, 3];
    let report = settle(
        &nodes[0],
        Duration::from_secs(180),
        "a columnar learner of every region on store 4",
        |r| {
            placed(r, 3, &rows)
                && r["regions"].as_array().is_some_and(|a| a.len() >= 3)
                && (r["regions"].as_array().into_iter().flatten())
                    .all(|g| ids(&g["learners"]) == [4])
                && store_state(r, 4).as_deref() == Some("up")
        },
    );
    assert!(
        report["regions"].as_array().unwrap().len() >= 3,
        "{report:#}"
    );
    let store = (report["stores"].as_array().unwrap().iter())
        .find(|s| s["id"] == 4)
        .unwrap();
    assert_eq!(store["role"], "analytics");
    assert_eq!(
        store["regions"],
        report["regions"].as_array().unwrap().len()
    );
    assert_eq!(held(&nodes[3]), 0, "no row replica on the analytics node");
    // Its learner store creates each region's peer when the leader's
    // messages reach it, and takes the data by snapshot.
    let addr: SocketAddr = format!("127.0.0.1:{}", nodes[3].status).parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status: serde_json::Value =
            serde_json::from_str(&http_get(addr, "/status").unwrap().1).unwrap();
        if status["learner_regions"].as_array().map_or(0, Vec::len) >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "its learner store: {status:#}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // It answers for the whole table from its columnar copies, from the
    // row stores elsewhere, and as routed.
    let analytics = &nodes[3];
    let read = |hint: &str| {
        sql(
            &rt,
            analytics,
            &format!("SELECT {hint} COUNT(*), SUM(v) FROM app.t"),
        )
    };
    let want = [["1500".to_string(), (1500u64 * 1499).to_string()]];
    assert_eq!(read("/*+ READ_FROM_STORAGE(COLUMNAR[t]) */"), want);
    assert_eq!(read("/*+ READ_FROM_STORAGE(ROW[t]) */"), want);
    assert_eq!(read(""), want);
    // Writes through it land on the row stores and reach its copies.
    load(&rt, analytics, 1500, 1600);
    let want = [["1600".to_string(), (1600u64 * 1599).to_string()]];
    assert_eq!(read("/*+ READ_FROM_STORAGE(COLUMNAR[t]) */"), want);
    assert_eq!(
        sql(
            &rt,
            &nodes[1],
            "SELECT role FROM information_schema.duet_stores WHERE store_id = 4"
        ),
        [["analytics"]]
    );
}

/// The columnar learners of each region of `app.t` that cannot hold table
/// definitions (those start at or after `t`), by region id, per `report`.
fn table_columnar(
    rt: &tokio::runtime::Runtime,
    node: &Node,
    report: &serde_json::Value,
) -> Vec<(u64, Vec<u64>)> {
    let table: Vec<u64> = (sql(rt, node, "SHOW TABLE app.t REGIONS").iter())
        .filter(|r| r[1].as_str() >= "74")
        .map(|r| r[0].parse().unwrap())
        .collect();
    (report["regions"].as_array().into_iter().flatten())
        .filter_map(|r| {
            let id = r["id"].as_u64()?;
            table.contains(&id).then(|| (id, ids(&r["columnar"])))
        })
        .collect()
}

/// The MySQL error code of the first of `statements` (run in order on one
/// connection) that fails.
fn error_code(rt: &tokio::runtime::Runtime, node: &Node, statements: &[&str]) -> Option<u16> {
    use mysql_async::prelude::*;
    let url = format!("mysql://root@127.0.0.1:{}/", node.mysql);
    rt.block_on(async {
        let mut c = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
        let mut code = None;
        for statement in statements {
            match c.query_drop(*statement).await {
                Ok(()) => continue,
                Err(mysql_async::Error::Server(e)) => code = Some(e.code),
                Err(e) => panic!("{statement}: {e}"),
            }
            break;
        }
        let _ = c.disconnect().await;
        code
    })
}

#[test]
fn columnar_replica_counts_place_that_many_learners_of_each_region() {
    let rt = runtime();
    let root = tempfile::tempdir().unwrap();
    let env: Vec<(String, String)> = [
        ("DUET_MAX_REPLICAS", "3"),
        ("DUET_PD_HEARTBEAT_MS", "300"),
        ("DUET_REGION_SPLIT_KEYS", "300"),
        ("DUET_SPLIT_CHECK_INTERVAL_SECS", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let nodes = three_loaded(&rt, root.path(), &env, 500);
    let all = [1, 2, 3];
    settle(
        &nodes[0],
        Duration::from_secs(180),
        "the loaded table split over three stores",
        |r| r["regions"].as_array().is_some_and(|a| a.len() >= 4) && placed(r, 3, &all),
    );
    // By default a learner beside each voter; a count places exactly that
    // many of each region, and the region of the definitions has one
    // wherever a table region has.
    for count in [1usize, 2, 0] {
        sql(
            &rt,
            &nodes[count % 3],
            &format!("ALTER TABLE app.t SET COLUMNAR REPLICA {count}"),
        );
        let report = settle(
            &nodes[0],
            Duration::from_secs(120),
            &format!("{count} columnar learners of each region of app.t"),
            |r| {
                let table = table_columnar(&rt, &nodes[0], r);
                let definitions = (r["regions"].as_array().into_iter().flatten())
                    .find(|g| g["start_key"] == "")
                    .map(|g| ids(&g["columnar"]))
                    .unwrap_or_default();
                !table.is_empty()
                    && (table.iter()).all(|(_, c)| c.len() == count)
                    && (table.iter()).all(|(_, c)| c.iter().all(|s| definitions.contains(s)))
            },
        );
        eprintln!(
            "placement: COLUMNAR REPLICA {count}: {:?}",
            table_columnar(&rt, &nodes[0], &report)
        );
        if count > 0 {
            for n in &nodes {
                check_totals(&rt, n, expected(1500), &format!("with {count} copies"));
            }
        }
    }
    // Without a replica a session that may read only columnar copies is
    // refused; more copies than stores are refused too.
    let columnar_only = [
        "SET duet_isolation_read_engines = 'columnar'",
        "SELECT COUNT(*) FROM app.t",
    ];
    assert_eq!(error_code(&rt, &nodes[2], &columnar_only), Some(1815));
    let too_many = "ALTER TABLE app.t SET COLUMNAR REPLICA 4";
    assert_eq!(error_code(&rt, &nodes[1], &[too_many]), Some(1210));
}
