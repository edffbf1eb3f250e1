//! A rolling restart under load: three `duet serve` founders with
//! `max_replicas = 3`, the sysbench table pre-split so that every node
//! leads some of its regions. Each node in turn is stopped with SIGTERM
//! (it hands its leaders away first) and started again while sysbench
//! `oltp_read_write` runs through the other two. sysbench, told to pass
//! over only the retryable errors (1205 lock wait timeout, 1213 deadlock),
//! must finish without error; afterwards every node, on both engines,
//! agrees on the table.

use std::process::{Command, Output};
use std::time::Duration;

use crate::cluster::{founders, runtime, sql};
use crate::placement::{leaders_on, settle};

const ROWS: u64 = 2000;

/// sysbench `oltp_read_write` (or `prepare`) through the node serving
/// MySQL on `port`.
fn sysbench(port: u16, command: &str, seconds: u64) -> Output {
    Command::new("sysbench")
        .args([
            "oltp_read_write",
            "--mysql-host=127.0.0.1",
            &format!("--mysql-port={port}"),
            "--mysql-user=root",
            "--mysql-db=sbtest",
            "--tables=1",
            &format!("--table-size={ROWS}"),
            "--threads=2",
            &format!("--time={seconds}"),
            "--mysql-ignore-errors=1205,1213",
            command,
        ])
        .output()
        .expect("sysbench runs (scripts/setup.sh installs it)")
}

fn tail(o: &Output) -> String {
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

#[test]
fn a_rolling_restart_under_sysbench_costs_only_retryable_errors() {
    let rt = runtime();
    let root = tempfile::tempdir().unwrap();
    let env: Vec<(String, String)> = [("DUET_MAX_REPLICAS", "3"), ("DUET_PD_HEARTBEAT_MS", "300")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let (mut nodes, raft_ports, cluster) = founders(root.path(), &env);
    nodes.truncate(3);

    sql(&rt, &nodes[0], "CREATE DATABASE sbtest");
    let prepared = sysbench(nodes[1].mysql, "prepare", 10);
    assert!(prepared.status.success(), "prepare: {}", tail(&prepared));
    let cut = format!("SPLIT TABLE sbtest.sbtest1 BETWEEN (0) AND ({ROWS}) REGIONS 6");
    sql(&rt, &nodes[2], &cut);
    settle(
        &nodes[0],
        Duration::from_secs(120),
        "every node leads some regions",
        |r| (1..=3).all(|s| leaders_on(r, s) > 0),
    );

    for i in 0..3 {
        let load: Vec<_> = (0..3)
            .filter(|j| *j != i)
            .map(|j| {
                let port = nodes[j].mysql;
                std::thread::spawn(move || sysbench(port, "run", 20))
            })
            .collect();
        std::thread::sleep(Duration::from_secs(4));
        nodes[i].terminate();
        std::thread::sleep(Duration::from_secs(1));
        nodes[i].start(&cluster, raft_ports[i]);
        for run in load {
            let out = run.join().expect("sysbench thread");
            assert!(
                out.status.success(),
                "restarting node {}: sysbench failed: {}",
                i + 1,
                tail(&out)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            let summary: Vec<&str> = (text.lines())
                .filter(|l| l.contains("transactions:") || l.contains("ignored errors:"))
                .map(str::trim)
                .collect();
            eprintln!("restarting node {}: {}", i + 1, summary.join("; "));
        }
        // Back before the next one goes: answering, and leading again.
        sql(&rt, &nodes[i], "SELECT 1");
        settle(
            &nodes[0],
            Duration::from_secs(120),
            "the restarted node leads again",
            |r| (1..=3).all(|s| leaders_on(r, s) > 0),
        );
    }

    // Every node answers alike, from each engine: oltp_read_write deletes
    // and inserts the same ids, so the table keeps its size.
    for n in &nodes {
        for engine in ["ROW", "COLUMNAR"] {
            let count = sql(
                &rt,
                n,
                &format!(
                    "SELECT /*+ READ_FROM_STORAGE({engine}[sbtest1]) */ COUNT(*) \
                     FROM sbtest.sbtest1"
                ),
            );
            assert_eq!(count, [[ROWS.to_string()]], "node {} {engine}", n.id);
        }
    }
}
