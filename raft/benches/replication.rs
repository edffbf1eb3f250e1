//! Replication throughput and commit latency of one region, with 1 and with
//! 3 replicas (TCP on loopback, RocksDB with synced log writes), for one
//! client and for 16 concurrent clients — the second shows what batching and
//! group commit do. Run with `cargo bench -p duet-raft --bench replication`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use duet_raft::store::{FIRST_REGION, RaftStore, StoreConfig, inbox};
use duet_raft::transport::tcp::TcpTransport;
use duet_raft::transport::{LocalRouter, Transport};
use duet_storage::engine::rocks::{RocksConfig, RocksEngine};
use duet_storage::txn::commands::{Mutation, Op, Prewrite};

type Store = RaftStore<RocksEngine>;

fn cluster(n: u64, rt: &tokio::runtime::Runtime, dirs: &[tempfile::TempDir]) -> Vec<Arc<Store>> {
    let listeners: Vec<_> = (0..n)
        .map(|_| {
            rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                .expect("bind")
        })
        .collect();
    let addrs: HashMap<u64, _> = listeners
        .iter()
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l.local_addr().expect("addr")))
        .collect();
    let voters: Vec<u64> = (1..=n).collect();
    listeners
        .into_iter()
        .enumerate()
        .map(|(i, listener)| {
            let id = i as u64 + 1;
            let engine =
                Arc::new(RocksEngine::open(dirs[i].path(), &RocksConfig::default()).expect("open"));
            let mut cfg = StoreConfig::single(id);
            cfg.voters = voters.clone();
            cfg.tick_interval = Duration::from_millis(50);
            cfg.peer.election_tick = 10 + 5 * i;
            let (tx, rx) = inbox();
            let transport: Arc<dyn Transport> = if n == 1 {
                Arc::new(LocalRouter::new())
            } else {
                let peers = addrs
                    .iter()
                    .filter(|(p, _)| **p != id)
                    .map(|(p, a)| (*p, *a))
                    .collect();
                TcpTransport::start(1, id, listener, peers, tx.clone(), rt.handle().clone())
            };
            Arc::new(RaftStore::start(engine, &cfg, transport, vec![], (tx, rx)).expect("store"))
        })
        .collect()
}

fn leader(stores: &[Arc<Store>]) -> Arc<Store> {
    stores[0].campaign(FIRST_REGION);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = stores
            .iter()
            .find(|s| s.status().first().is_some_and(|r| r.is_leader))
        {
            return Arc::clone(s);
        }
        assert!(Instant::now() < deadline, "no leader");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn prewrite(key: u64) -> Prewrite {
    let k = format!("bench{key:012}").into_bytes();
    Prewrite {
        mutations: vec![Mutation::new(Op::Put, k.clone(), vec![5u8; 64])],
        primary: k,
        start_ts: key + 1,
        lock_ttl: 3000,
        ..Default::default()
    }
}

/// `clients` threads each propose `per_client` commands; returns ops/s and mean latency.
fn run(store: &Arc<Store>, clients: u64, per_client: u64, base: u64) -> (f64, Duration) {
    let start = Instant::now();
    let total_latency: Duration = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let store = Arc::clone(store);
                s.spawn(move || {
                    let mut lat = Duration::ZERO;
                    for i in 0..per_client {
                        let t = Instant::now();
                        store
                            .propose(FIRST_REGION, prewrite(base + c * per_client + i).into())
                            .expect("proposal");
                        lat += t.elapsed();
                    }
                    lat
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("client")).sum()
    });
    let n = clients * per_client;
    (
        n as f64 / start.elapsed().as_secs_f64(),
        total_latency / n as u32,
    )
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "{:<10} {:>8} {:>12} {:>14}",
        "replicas", "clients", "ops/s", "mean latency"
    );
    for n in [1u64, 3] {
        let dirs: Vec<tempfile::TempDir> =
            (0..n).map(|_| tempfile::tempdir().expect("dir")).collect();
        let stores = cluster(n, &rt, &dirs);
        let leader = leader(&stores);
        let mut base = 0;
        for clients in [1u64, 16] {
            let per_client = 2000 / clients;
            let (ops, lat) = run(&leader, clients, per_client, base);
            base += clients * per_client;
            println!("{n:<10} {clients:>8} {ops:>12.0} {lat:>14.2?}");
        }
        for s in &stores {
            s.stop();
        }
    }
}
