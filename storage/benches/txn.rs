//! Row-store micro-benchmarks on RocksDB, with sync on and off: point get at
//! a timestamp, 1-key and 10-key transactions (prewrite + commit), and a
//! 1,000-row scan. Run with `cargo bench -p duet-storage --bench txn`; it
//! prints one table. Figures are for comparison between runs on one machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use duet_storage::engine::rocks::{RocksConfig, RocksEngine};
use duet_storage::tso::Tso;
use duet_storage::txn::read::{Get, Scan};
use duet_storage::txn::{LocalStore, TxnClient, TxnOptions, TxnStore};

type Client = TxnClient<LocalStore<RocksEngine>>;

fn key(i: u64) -> Vec<u8> {
    format!("t1_r{i:010}").into_bytes()
}

fn setup(dir: &std::path::Path, sync: bool) -> (Arc<LocalStore<RocksEngine>>, Client) {
    let engine = Arc::new(RocksEngine::open(dir, &RocksConfig::default()).expect("open rocksdb"));
    let tso = Arc::new(Tso::open(Arc::clone(&engine)).expect("tso"));
    let store = Arc::new(LocalStore::new(engine, sync));
    let client = TxnClient::new(Arc::clone(&store), tso, TxnOptions::default());
    (store, client)
}

/// Runs `op` `n` times; returns operations per second and mean latency.
fn measure(n: u64, mut op: impl FnMut(u64)) -> (f64, Duration) {
    for i in 0..n.min(100) {
        op(i);
    }
    let start = Instant::now();
    for i in 0..n {
        op(i);
    }
    let elapsed = start.elapsed();
    (n as f64 / elapsed.as_secs_f64(), elapsed / n as u32)
}

fn txn(client: &Client, keys: u64, base: u64) {
    let mut t = client.begin().expect("begin");
    for k in 0..keys {
        t.put(key(base * keys + k + 1_000_000), vec![7u8; 100]);
    }
    t.commit().expect("commit");
}

fn main() {
    println!(
        "{:<28} {:>6} {:>14} {:>12}",
        "benchmark (RocksDB)", "sync", "ops/s", "mean"
    );
    for sync in [false, true] {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, client) = setup(dir.path(), sync);
        // 10,000 committed rows, 100 bytes each, 1,000 per transaction.
        for batch in 0..10 {
            let mut t = client.begin().expect("begin");
            for i in 0..1000 {
                t.put(key(batch * 1000 + i), vec![1u8; 100]);
            }
            t.commit().expect("load");
        }
        let read_ts = client.begin().expect("begin").start_ts();
        let n_txn = if sync { 300 } else { 3000 };
        let rows = [
            (
                "point get at ts",
                measure(50_000, |i| {
                    let get = Get {
                        key: key((i * 7919) % 10_000),
                        ts: read_ts,
                    };
                    let answer = store.read(&get.into()).expect("get");
                    assert_eq!(answer.pairs.len(), 1);
                }),
            ),
            ("1-key txn", measure(n_txn, |i| txn(&client, 1, i))),
            (
                "10-key txn",
                measure(n_txn / 2, |i| txn(&client, 10, i + 100_000)),
            ),
            (
                "1,000-row scan",
                measure(200, |i| {
                    let scan = Scan {
                        start: key((i * 13) % 9000),
                        end: Vec::new(),
                        ts: read_ts,
                        limit: 1000,
                    };
                    let answer = store.read(&scan.into()).expect("scan");
                    assert_eq!(answer.pairs.len(), 1000);
                }),
            ),
        ];
        for (name, (ops, mean)) in rows {
            println!(
                "{name:<28} {:>6} {ops:>14.0} {:>12.1?}",
                if sync { "on" } else { "off" },
                mean
            );
        }
    }
}
