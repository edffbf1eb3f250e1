//! The fault suite's short run: three `duet` processes, each in a network
//! namespace of its own, under bank transfers and unique inserts through
//! every node, while a seeded nemesis kills, pauses, partitions (majority
//! and minority, a bridge, one way) and makes links lossy. After each
//! fault heals every node must serve again (within 30 s here, where other
//! tests share the two cores; the long run asks for 10 s); no read may see
//! a wrong bank total; at the end every acknowledged insert is on every
//! node, on both engines. `DUET_CHAOS_ROUNDS`, `DUET_CHAOS_SEED` and
//! `DUET_CHAOS_RECOVERY_SECS` lengthen, vary or tighten a run
//! (`tests/chaos/run.sh`).

use std::time::{Duration, Instant};

use duet_tests::chaos::cluster::Cluster;
use duet_tests::chaos::net::Net;
use duet_tests::chaos::{nemesis, workload};

use crate::cluster::runtime;
use crate::duet_binary;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Waits until node `i` answers a read of the bank; how long it took.
fn serving(
    rt: &tokio::runtime::Runtime,
    cluster: &Cluster,
    i: usize,
    within: Duration,
) -> Duration {
    let start = Instant::now();
    let url = cluster.mysql_url(i);
    loop {
        let answered = rt.block_on(async {
            let c = tokio::time::timeout(
                Duration::from_secs(2),
                mysql_async::Conn::from_url(url.as_str()),
            );
            let Ok(Ok(mut c)) = c.await else {
                return false;
            };
            use mysql_async::prelude::*;
            let q = c.query_drop("SELECT COUNT(*) FROM chaos.bank");
            let ok = matches!(
                tokio::time::timeout(Duration::from_secs(2), q).await,
                Ok(Ok(()))
            );
            let _ = c.disconnect().await;
            ok
        });
        if answered {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "node {i} does not serve {within:?} after the faults healed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_short_fault_run_loses_no_acknowledged_write() {
    assert!(
        Net::available(),
        "the fault suite needs network namespaces and iptables (root)"
    );
    let seed = env_or("DUET_CHAOS_SEED", 1);
    let rounds = env_or("DUET_CHAOS_ROUNDS", 6) as usize;
    let recovery = Duration::from_secs(env_or("DUET_CHAOS_RECOVERY_SECS", 30));
    let net = Net::create(&format!("{}", std::process::id() % 100_000), 77, 3).unwrap();
    let root = tempfile::tempdir().unwrap();
    let env = [("DUET_MAX_REPLICAS", "3"), ("DUET_PD_HEARTBEAT_MS", "300")];
    let mut cluster = Cluster::start(net, 3, &duet_binary(), root.path(), &env).unwrap();
    let rt = runtime();
    let urls: Vec<String> = (1..=3).map(|i| cluster.mysql_url(i)).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(e) = rt.block_on(workload::setup(&urls[0])) {
        assert!(Instant::now() < deadline, "the cluster never served: {e}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let clients = workload::Workload::start(rt.handle(), &urls);
    let mut slowest = Duration::ZERO;
    for (n, round) in nemesis::schedule(seed, 3, rounds).into_iter().enumerate() {
        eprintln!("chaos: round {n}: {round:?}");
        nemesis::apply(&mut cluster, &round.fault).unwrap();
        std::thread::sleep(Duration::from_millis(round.hold_ms));
        cluster.heal().unwrap();
        for i in 1..=3 {
            slowest = slowest.max(serving(&rt, &cluster, i, recovery));
        }
        std::thread::sleep(Duration::from_millis(round.quiet_ms));
    }
    let record = rt.block_on(clients.stop());
    let record = record.lock().unwrap();
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
    assert!(
        record.transfers > 0 && !record.acked.is_empty(),
        "{record:?}"
    );
    for url in &urls {
        let deadline = Instant::now() + Duration::from_secs(30);
        let wrong = loop {
            match rt.block_on(workload::final_check(url, &record)) {
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
