//! The fault suite's short run: three `duet` processes, each in a network
//! namespace of its own, under bank transfers and unique inserts through
//! every node, while a seeded nemesis kills, pauses, partitions (majority
//! and minority, a bridge, one way), makes links lossy or slow, fills
//! disks and steps clocks. After each fault heals every node must serve
//! again (within 30 s here, where other tests share the two cores; the
//! long run asks for 10 s); no read may see a wrong bank total; at the end
//! every acknowledged insert is on every node, on both engines, and the
//! list appends' history shows no anomaly snapshot isolation forbids.
//! `DUET_CHAOS_ROUNDS`, `DUET_CHAOS_SEED`, `DUET_CHAOS_NODES` and
//! `DUET_CHAOS_RECOVERY_SECS` lengthen, vary, widen or tighten a run, and
//! `DUET_CHAOS_KILLS` the single node's kill -9 cycles
//! (`tests/chaos/run.sh`).

use std::time::{Duration, Instant};

use duet_tests::chaos::cluster::Cluster;
use duet_tests::chaos::net::Net;
use duet_tests::chaos::{elle, nemesis, workload};

use crate::cluster::runtime;
use crate::duet_binary;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `n` nodes on hosts `10.77.{subnet}.1..=n` (`tag` tells runs in one
/// process apart), three replicas of each region, with the workload's
/// tables: the data's root (dropped after the cluster), the cluster, a
/// runtime and the nodes' URLs.
fn nodes(
    tag: &str,
    subnet: u8,
    n: usize,
) -> (
    tempfile::TempDir,
    Cluster,
    tokio::runtime::Runtime,
    Vec<String>,
) {
    let tag = format!("{}{tag}", std::process::id() % 100_000);
    let net = Net::create(&tag, subnet, n).unwrap();
    let root = tempfile::tempdir().unwrap();
    let env = [("DUET_MAX_REPLICAS", "3"), ("DUET_PD_HEARTBEAT_MS", "300")];
    let mut cluster = Cluster::start(net, n, &duet_binary(), root.path(), &env).unwrap();
    let rt = runtime();
    let urls: Vec<String> = (1..=n).map(|i| cluster.mysql_url(i)).collect();
    set_up(&rt, &mut cluster, &urls[0]);
    (root, cluster, rt, urls)
}

/// Creates the workload's tables through `url` once the cluster serves;
/// fails with every node's log if it does not within a minute.
fn set_up(rt: &tokio::runtime::Runtime, cluster: &mut Cluster, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(e) = rt.block_on(workload::setup(url)) {
        if Instant::now() >= deadline {
            no_node_died(cluster);
            print_logs(cluster);
            panic!("the cluster never served: {e}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Every node's last log lines and region status, for a failure's report.
fn print_logs(cluster: &Cluster) {
    for j in 1..=cluster.len() {
        eprintln!("chaos: node {j}'s log:\n{}", cluster.log_tail(j, 60));
        match duet_tests::http_get(cluster.status_addr(j), "/status") {
            Ok((_, body)) => eprintln!("chaos: node {j}'s status: {body}"),
            Err(e) => eprintln!("chaos: node {j}'s status: {e}"),
        }
    }
}

/// Fails the run, with the logs, if a node exited by itself.
fn no_node_died(cluster: &mut Cluster) {
    let dead = cluster.exited();
    if !dead.is_empty() {
        for (i, _) in &dead {
            eprintln!("chaos: node {i}'s log:\n{}", cluster.log_tail(*i, 80));
        }
        panic!("nodes exited on their own: {dead:?}");
    }
}

/// Waits until node `i` answers a read of the bank; how long it took. On
/// failure the report carries the last error and every node's log tail.
fn serving(
    rt: &tokio::runtime::Runtime,
    cluster: &mut Cluster,
    i: usize,
    within: Duration,
) -> Duration {
    let start = Instant::now();
    let url = cluster.mysql_url(i);
    loop {
        let answered: Result<(), String> = rt.block_on(async {
            use mysql_async::prelude::*;
            let connect = mysql_async::Conn::from_url(url.as_str());
            let mut c = match tokio::time::timeout(Duration::from_secs(2), connect).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => return Err(format!("connect: {e}")),
                Err(_) => return Err("connect: timed out".into()),
            };
            let q = c.query_drop("SELECT COUNT(*) FROM chaos.bank");
            let outcome = match tokio::time::timeout(Duration::from_secs(2), q).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(format!("read: {e}")),
                Err(_) => Err("read: timed out".into()),
            };
            let _ = c.disconnect().await;
            outcome
        });
        let Err(last) = answered else {
            return start.elapsed();
        };
        if start.elapsed() >= within {
            no_node_died(cluster);
            print_logs(cluster);
            panic!("node {i} does not serve {within:?} after the faults healed: {last}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until node `i`'s SQL clock shows the step the harness gave it
/// (within 2 s), so that a clock fault is known to be real.
fn clock_stepped(rt: &tokio::runtime::Runtime, cluster: &Cluster, i: usize) {
    use mysql_async::prelude::*;
    let step = cluster.clock_offset(i);
    let url = cluster.mysql_url(i);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = None;
    while Instant::now() < deadline {
        let theirs: Option<i64> = rt.block_on(async {
            let mut c = workload::connect(&url).await.ok()?;
            let t: Option<String> =
                (workload::call(c.query_first("SELECT UNIX_TIMESTAMP()")).await).ok()?;
            let _ = c.disconnect().await;
            Some(t?.parse::<f64>().ok()? as i64)
        });
        let ours = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if let Some(t) = theirs {
            if (t - ours - step).abs() <= 2 {
                return;
            }
            last = Some(t - ours);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("node {i}'s clock was stepped {step:+} s; it reads {last:?} s off");
}

#[test]
fn a_short_fault_run_loses_no_acknowledged_write() {
    assert!(
        Net::available(),
        "the fault suite needs network namespaces and iptables (root)"
    );
    // The short seed draws every kind of fault within its rounds.
    let seed = env_or("DUET_CHAOS_SEED", nemesis::SHORT_SEED);
    let rounds = env_or("DUET_CHAOS_ROUNDS", nemesis::SHORT_ROUNDS as u64) as usize;
    let hosts = env_or("DUET_CHAOS_NODES", 3) as usize;
    assert!((3..=9).contains(&hosts), "DUET_CHAOS_NODES: 3 to 9");
    let recovery = Duration::from_secs(env_or("DUET_CHAOS_RECOVERY_SECS", 30));
    let (_root, mut cluster, rt, urls) = nodes("", 77, hosts);
    let clients = workload::Workload::start(rt.handle(), &urls);
    let mut slowest = Duration::ZERO;
    for (n, round) in nemesis::schedule(seed, hosts, rounds)
        .into_iter()
        .enumerate()
    {
        eprintln!("chaos: round {n}: {round:?}");
        nemesis::apply(&mut cluster, &round.fault).unwrap();
        if let Some(i) = (1..=hosts).find(|i| cluster.clock_offset(*i) != 0) {
            clock_stepped(&rt, &cluster, i);
        }
        std::thread::sleep(Duration::from_millis(round.hold_ms));
        no_node_died(&mut cluster);
        cluster.heal().unwrap();
        for i in 1..=hosts {
            slowest = slowest.max(serving(&rt, &mut cluster, i, recovery));
        }
        std::thread::sleep(Duration::from_millis(round.quiet_ms));
    }
    let record = rt.block_on(clients.stop());
    no_node_died(&mut cluster);
    verify(&rt, &record.lock().unwrap(), &urls, slowest);
}

/// What every run must end with: no read saw a wrong bank total, the
/// list appends' history has no anomaly, and through every node, on both
/// engines, the bank adds up and every acknowledged insert is there.
fn verify(
    rt: &tokio::runtime::Runtime,
    record: &workload::Record,
    urls: &[String],
    slowest: Duration,
) {
    eprintln!(
        "chaos: {} transfers ({} failed), {} reads, {} inserts acknowledged ({} unknown), \
         slowest recovery {slowest:?}",
        record.transfers,
        record.failed_transfers,
        record.reads,
        record.acked.len(),
        record.unknown.len()
    );
    assert!(record.bad_reads.is_empty(), "{:?}", record.bad_reads);
    let committed = (record.history.iter())
        .filter(|t| t.outcome == elle::Outcome::Committed)
        .count();
    eprintln!(
        "chaos: {} list-append transactions, {committed} committed",
        record.history.len()
    );
    assert!(record.transfers > 0 && !record.acked.is_empty() && committed > 0);
    let anomalies = elle::check(&record.history);
    assert!(
        anomalies.is_empty(),
        "{}",
        elle::explain(&record.history, &anomalies)
    );
    for url in urls {
        let deadline = Instant::now() + Duration::from_secs(30);
        let wrong = loop {
            match rt.block_on(workload::final_check(url, record)) {
                Ok(wrong) => break wrong,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("chaos: final check through {url}: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) => panic!("final check through {url}: {e}"),
            }
        };
        assert!(wrong.is_empty(), "{wrong:#?}");
    }
}

/// One node under the same clients, `kill -9`ed and started again
/// `DUET_CHAOS_KILLS` times (5 here, 50 in the long run) at moments drawn
/// from the seed: it loses nothing it acknowledged, and its history shows
/// no anomaly.
#[test]
fn kill_nine_cycles_of_one_node_lose_nothing_acknowledged() {
    assert!(Net::available(), "the fault suite needs root");
    let kills = env_or("DUET_CHAOS_KILLS", 5);
    let mut moment = env_or("DUET_CHAOS_SEED", nemesis::SHORT_SEED);
    let tag = format!("{}k", std::process::id() % 100_000);
    let net = Net::create(&tag, 79, 1).unwrap();
    let root = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(net, 1, &duet_binary(), root.path(), &[]).unwrap();
    let rt = runtime();
    let urls = vec![cluster.mysql_url(1)];
    set_up(&rt, &mut cluster, &urls[0]);
    let clients = workload::Workload::start(rt.handle(), &urls);
    let mut slowest = Duration::ZERO;
    for n in 0..kills {
        // 0.5 to 3 s of load between kills.
        moment = moment
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let load = Duration::from_millis(500 + (moment >> 33) % 2_500);
        std::thread::sleep(load);
        no_node_died(&mut cluster);
        eprintln!("chaos: kill {n} after {load:?}");
        cluster.kill(1);
        cluster.restart(1).unwrap();
        slowest = slowest.max(serving(&rt, &mut cluster, 1, Duration::from_secs(30)));
    }
    std::thread::sleep(Duration::from_secs(1));
    let record = rt.block_on(clients.stop());
    no_node_died(&mut cluster);
    verify(&rt, &record.lock().unwrap(), &urls, slowest);
}

/// Node `i`'s `duet_disk_full` gauge.
fn disk_full(cluster: &Cluster, i: usize) -> Option<bool> {
    let (_, body) = duet_tests::http_get(cluster.status_addr(i), "/metrics").ok()?;
    let value = body
        .lines()
        .find_map(|l| l.strip_prefix("duet_disk_full "))?;
    Some(value.trim() == "1")
}

fn until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_node_with_a_full_disk_in_a_cluster_still_serves_and_catches_up() {
    assert!(Net::available(), "the fault suite needs root");
    let (_root, cluster, rt, urls) = nodes("d", 78, 3);
    cluster.fill(3).unwrap();
    until(
        "node 3 says its disk is full",
        Duration::from_secs(20),
        || disk_full(&cluster, 3) == Some(true),
    );
    // Writes through the full node reach leaders elsewhere: its own hand
    // theirs over. Each is retried until it is acknowledged.
    let mut record = workload::Record::default();
    rt.block_on(async {
        use mysql_async::prelude::*;
        let mut c = mysql_async::Conn::from_url(urls[2].as_str()).await.unwrap();
        for id in 1..=40i64 {
            let deadline = Instant::now() + Duration::from_secs(30);
            let insert = format!("INSERT INTO chaos.s VALUES ({id}, 3)");
            loop {
                match c.query_drop(insert.as_str()).await {
                    Ok(()) => break,
                    // An earlier try whose answer was lost did insert it.
                    Err(mysql_async::Error::Server(e)) if e.code == 1062 => break,
                    Err(e) => {
                        assert!(Instant::now() < deadline, "insert {id} through node 3: {e}");
                        record.unknown.insert(id);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
            record.acked.insert(id);
            record.unknown.remove(&id);
        }
        // Reads through it see them all, on both engines.
        for hint in ["ROW", "COLUMNAR"] {
            let q = format!("SELECT /*+ READ_FROM_STORAGE({hint}[s]) */ COUNT(*) FROM chaos.s");
            let n: Option<i64> = c.query_first(q).await.unwrap();
            assert_eq!(n, Some(40), "{hint} through the full node");
        }
    });
    cluster.heal_disks().unwrap();
    until(
        "node 3's disk is free again",
        Duration::from_secs(20),
        || disk_full(&cluster, 3) == Some(false),
    );
    // Once it caught up, every node holds every acknowledged row.
    for url in &urls {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match rt.block_on(workload::final_check(url, &record)) {
                Ok(wrong) if wrong.is_empty() => break,
                outcome if Instant::now() < deadline => {
                    eprintln!("chaos: through {url}: {outcome:?}; retrying");
                    std::thread::sleep(Duration::from_millis(500));
                }
                outcome => panic!("through {url}: {outcome:?}"),
            }
        }
    }
}
