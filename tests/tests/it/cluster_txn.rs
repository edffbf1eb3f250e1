//! Transactions from every node of a three-node cluster (in one process, real
//! TCP on loopback): commands on followers are forwarded to the leader,
//! reads go through ReadIndex, timestamps come from the leader only — so
//! they are unique across the cluster, money is conserved, and losing the
//! leader loses nothing.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use duet_raft::cluster::{ClusterStore, ClusterTso, Handler};
use duet_raft::store::{FIRST_REGION, RaftStore, StoreConfig, inbox};
use duet_raft::transport::tcp::TcpTransport;
use duet_storage::engine::rocks::{RocksConfig, RocksEngine};
use duet_storage::tso::TimestampSource;
use duet_storage::txn::{TxnClient, TxnOptions};

type Client = TxnClient<ClusterStore<RocksEngine>>;

struct Node {
    store: Arc<RaftStore<RocksEngine>>,
    tso: Arc<ClusterTso<RocksEngine>>,
    client: Client,
}

fn start(rt: &tokio::runtime::Runtime, dirs: &[tempfile::TempDir]) -> Vec<Node> {
    let listeners: Vec<_> = (0..3)
        .map(|_| {
            rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                .unwrap()
        })
        .collect();
    let addrs: HashMap<u64, _> = listeners
        .iter()
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l.local_addr().unwrap()))
        .collect();
    listeners
        .into_iter()
        .enumerate()
        .map(|(i, listener)| {
            let id = i as u64 + 1;
            let engine =
                Arc::new(RocksEngine::open(dirs[i].path(), &RocksConfig::default()).unwrap());
            let mut cfg = StoreConfig::single(id);
            cfg.voters = vec![1, 2, 3];
            cfg.tick_interval = Duration::from_millis(20);
            cfg.peer.election_tick = 10 + 4 * i;
            let (tx, rx) = inbox();
            let peers = addrs
                .iter()
                .filter(|(p, _)| **p != id)
                .map(|(p, a)| (*p, *a))
                .collect();
            let transport =
                TcpTransport::start(1, id, listener, peers, tx.clone(), rt.handle().clone());
            let store = Arc::new(
                RaftStore::start(engine, &cfg, transport.clone(), vec![], (tx, rx)).unwrap(),
            );
            let tso = Arc::new(ClusterTso::new(
                Arc::clone(&store),
                Some(Arc::clone(&transport)),
            ));
            transport.set_handler(Arc::new(Handler {
                store: Arc::clone(&store),
                tso: Arc::clone(&tso),
            }));
            let cluster = Arc::new(ClusterStore::new(id, Arc::clone(&store), Some(transport)));
            let options = TxnOptions {
                lock_ttl_ms: 2000,
                lock_wait: Duration::from_secs(10),
                backoff: Duration::from_millis(5),
            };
            let client = TxnClient::new(cluster, tso.clone(), options);
            Node { store, tso, client }
        })
        .collect()
}

fn balance(v: Option<Vec<u8>>) -> u64 {
    String::from_utf8(v.expect("account"))
        .unwrap()
        .parse()
        .unwrap()
}

fn transfer(client: &Client, from: u64, to: u64, amount: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut t = client.begin().unwrap();
        let a = balance(t.get(format!("acct{from}").as_bytes()).unwrap());
        let b = balance(t.get(format!("acct{to}").as_bytes()).unwrap());
        let amount = amount.min(a);
        t.put(format!("acct{from}"), (a - amount).to_string());
        t.put(format!("acct{to}"), (b + amount).to_string());
        match t.commit() {
            Ok(_) => return,
            Err(e) if e.is_retryable() && Instant::now() < deadline => continue,
            Err(e) => panic!("transfer failed: {e}"),
        }
    }
}

fn total(client: &Client) -> u64 {
    let t = client.begin().unwrap();
    (0..6)
        .map(|i| balance(t.get(format!("acct{i}").as_bytes()).unwrap()))
        .sum()
}

#[test]
fn every_node_runs_transactions_with_cluster_timestamps() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = start(&rt, &dirs);
    nodes[0].store.campaign(FIRST_REGION);

    // Timestamps from all three nodes at once: unique, and increasing per node.
    let all: Vec<Vec<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = nodes
            .iter()
            .map(|n| {
                s.spawn(|| {
                    (0..100)
                        .map(|_| n.tso.get_ts().unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for seq in &all {
        assert!(
            seq.windows(2).all(|w| w[0] < w[1]),
            "increasing on each node"
        );
    }
    let unique: BTreeSet<u64> = all.iter().flatten().copied().collect();
    assert_eq!(unique.len(), 300, "no timestamp handed out twice");

    // Accounts, then transfers from every node concurrently.
    let mut init = nodes[1].client.begin().unwrap();
    for i in 0..6 {
        init.put(format!("acct{i}"), "100");
    }
    init.commit().unwrap();
    std::thread::scope(|s| {
        for (n, node) in nodes.iter().enumerate() {
            s.spawn(move || {
                for k in 0..15u64 {
                    let from = (n as u64 + k) % 6;
                    transfer(&node.client, from, (from + 1 + k % 5) % 6, k % 9 + 1);
                }
            });
        }
    });
    for node in &nodes {
        assert_eq!(
            total(&node.client),
            600,
            "every node reads a consistent total"
        );
    }

    // Lose the leader; the others carry on and nothing acknowledged is lost.
    let leader = nodes
        .iter()
        .position(|n| n.store.status()[0].is_leader)
        .expect("a leader");
    nodes[leader].store.stop();
    let survivor = &nodes[(leader + 1) % 3];
    transfer(&survivor.client, 0, 5, 7);
    assert_eq!(total(&survivor.client), 600);
    let other = &nodes[(leader + 2) % 3];
    assert_eq!(total(&other.client), 600);
}
