//! Replication throughput and commit latency of one region, with 1 and with
//! 3 replicas (TCP on loopback, RocksDB with synced log writes), for one
//! client and for 16 concurrent clients — the second shows what batching and
//! group commit do — and for 16 clients spread over 4 regions of the same
//! store, which share one log write and sync per Ready loop. Run with
//! `cargo bench -p duet-raft --bench replication`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use duet_raft::store::{FIRST_REGION, RaftStore, StoreConfig, inbox};
use duet_raft::transport::grpc::GrpcTransport;
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
                GrpcTransport::start(1, id, listener, peers, tx.clone(), rt.handle().clone())
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

/// Keys of region `r` after [`split_into`] start at `r * REGION_SPAN`.
const REGION_SPAN: u64 = 100_000_000_000;

/// Splits the first region into `n` (ids 1..=n) on the leader and waits
/// until `leader` leads them all.
fn split_into(leader: &Arc<Store>, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    for r in 1..n {
        let key = format!("bench{:012}", r * REGION_SPAN).into_bytes();
        // Region r was just split off: retry until its leader is elected.
        while let Err(e) = leader.split(r, &key, r + 1) {
            assert!(Instant::now() < deadline, "cannot split region {r}: {e}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    while leader.status().iter().filter(|r| r.is_leader).count() < n as usize {
        assert!(Instant::now() < deadline, "the new regions have no leader");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `clients` threads each propose `per_client` commands, client `c` to
/// region `c % regions + 1`; returns ops/s and mean latency.
fn run(
    store: &Arc<Store>,
    clients: u64,
    per_client: u64,
    base: u64,
    regions: u64,
) -> (f64, Duration) {
    let start = Instant::now();
    let total_latency: Duration = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let store = Arc::clone(store);
                s.spawn(move || {
                    let mut lat = Duration::ZERO;
                    let region = c % regions;
                    for i in 0..per_client {
                        let key = region * REGION_SPAN + base + c * per_client + i;
                        let t = Instant::now();
                        store
                            .propose(region + 1, prewrite(key).into())
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
        "{:<10} {:>8} {:>8} {:>12} {:>14}",
        "replicas", "regions", "clients", "ops/s", "mean latency"
    );
    for n in [1u64, 3] {
        let dirs: Vec<tempfile::TempDir> =
            (0..n).map(|_| tempfile::tempdir().expect("dir")).collect();
        let stores = cluster(n, &rt, &dirs);
        let leader = leader(&stores);
        let mut base = 0;
        for (regions, clients) in [(1u64, 1u64), (1, 16), (4, 16)] {
            if regions > 1 {
                split_into(&leader, regions);
            }
            let per_client = 2000 / clients;
            let (ops, lat) = run(&leader, clients, per_client, base, regions);
            base += clients * per_client;
            println!("{n:<10} {regions:>8} {clients:>8} {ops:>12.0} {lat:>14.2?}");
        }
        for s in &stores {
            s.stop();
        }
    }
}
