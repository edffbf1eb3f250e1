//! Transactions from every node of a three-node cluster (in one process, real
//! TCP on loopback): commands on followers are forwarded to the leader,
//! reads go through ReadIndex, timestamps come from the leader only — so
//! they are unique across the cluster, money is conserved, and losing the
//! leader loses nothing. Regions split under a running workload: commands
//! routed by a stale view are re-routed, and transactions span regions.
//! The node service's KV calls answer, or say why they will not.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use duet_raft::cluster::{ClusterStore, ClusterTso, Handler};
use duet_raft::rpc::messages::{
    CommitRequest, Context, GetRequest, PrewriteRequest, ScanRequest, region_error,
};
use duet_raft::store::{FIRST_REGION, RaftStore, StoreConfig, inbox};
use duet_raft::transport::grpc::GrpcTransport;
use duet_storage::engine::rocks::{RocksConfig, RocksEngine};
use duet_storage::tso::TimestampSource;
use duet_storage::txn::commands::effects::FailureKind;
use duet_storage::txn::commands::{Commit, Mutation, Op, Prewrite};
use duet_storage::txn::{TxnClient, TxnOptions};

type Client = TxnClient<ClusterStore<RocksEngine>>;

struct Node {
    transport: Arc<GrpcTransport>,
    store: Arc<RaftStore<RocksEngine>>,
    tso: Arc<ClusterTso<RocksEngine>>,
    cluster: Arc<ClusterStore<RocksEngine>>,
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
                GrpcTransport::start(1, id, listener, peers, tx.clone(), rt.handle().clone());
            let store = Arc::new(
                RaftStore::start(engine, &cfg, transport.clone(), vec![], (tx, rx)).unwrap(),
            );
            let tso = Arc::new(ClusterTso::new(
                Arc::clone(&store),
                Some(Arc::clone(&transport)),
            ));
            transport.set_handlers(Arc::new(Handler {
                store: Arc::clone(&store),
                tso: Arc::clone(&tso),
                detector: Arc::new(duet_storage::txn::deadlock::LocalDetector::new(
                    duet_raft::cluster::WAIT_TTL,
                )),
            }));
            let cluster = Arc::new(ClusterStore::new(
                id,
                Arc::clone(&store),
                Some(Arc::clone(&transport)),
            ));
            let options = TxnOptions {
                lock_ttl_ms: 2000,
                pessimistic_lock_ttl_ms: 20_000,
                lock_wait: Duration::from_secs(10),
                backoff: Duration::from_millis(5),
                one_pc: true,
            };
            let client = TxnClient::new(Arc::clone(&cluster), tso.clone(), options);
            Node {
                transport,
                store,
                tso,
                cluster,
                client,
            }
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
    let (_rt, _dirs, nodes) = three_nodes();

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

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Three nodes on fresh directories; node 1 campaigns for the first region.
/// (Bind in this order, so the nodes go before the runtime they use.)
fn three_nodes() -> (tokio::runtime::Runtime, Vec<tempfile::TempDir>, Vec<Node>) {
    let rt = runtime();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = start(&rt, &dirs);
    nodes[0].store.campaign(FIRST_REGION);
    (rt, dirs, nodes)
}

/// (id, start, end) of every region a node has applied.
fn ranges(node: &Node) -> Vec<(u64, Vec<u8>, Vec<u8>)> {
    node.store
        .view()
        .regions()
        .into_iter()
        .map(|r| (r.id, r.start_key, r.end_key))
        .collect()
}

#[test]
fn regions_split_under_a_running_workload_and_transactions_span_them() {
    let (_rt, _dirs, nodes) = three_nodes();
    let mut init = nodes[0].client.begin().unwrap();
    for i in 0..6 {
        init.put(format!("acct{i}"), "100");
    }
    init.commit().unwrap();
    let leader = nodes
        .iter()
        .find(|n| n.store.status()[0].is_leader)
        .expect("a leader");

    std::thread::scope(|s| {
        for (n, node) in nodes.iter().enumerate() {
            s.spawn(move || {
                for k in 0..20u64 {
                    let from = (n as u64 + k) % 6;
                    transfer(&node.client, from, (from + 1 + k % 5) % 6, k % 9 + 1);
                }
            });
        }
        // Split twice while the transfers run; region ids come from the oracle.
        std::thread::sleep(Duration::from_millis(200));
        let id = leader.tso.get_ts().unwrap();
        leader.cluster.split(b"acct3", id).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let id = leader.tso.get_ts().unwrap();
        leader.cluster.split(b"acct5", id).unwrap();
    });
    for node in &nodes {
        assert_eq!(
            total(&node.client),
            600,
            "money is conserved across regions"
        );
    }
    // Every node applies the same three regions.
    let deadline = Instant::now() + Duration::from_secs(10);
    while nodes.iter().any(|n| ranges(n) != ranges(leader)) {
        assert!(Instant::now() < deadline, "the nodes agree on the regions");
        std::thread::sleep(Duration::from_millis(20));
    }
    let bounds: Vec<(Vec<u8>, Vec<u8>)> =
        ranges(leader).into_iter().map(|(_, s, e)| (s, e)).collect();
    assert_eq!(
        bounds,
        vec![
            (b"".to_vec(), b"acct3".to_vec()),
            (b"acct3".to_vec(), b"acct5".to_vec()),
            (b"acct5".to_vec(), b"".to_vec()),
        ]
    );

    // Lose the node that leads every region; the others elect and go on.
    let gone = nodes.iter().position(|n| std::ptr::eq(n, leader)).unwrap();
    nodes[gone].store.stop();
    let survivor = &nodes[(gone + 1) % 3];
    transfer(&survivor.client, 1, 5, 7);
    transfer(&survivor.client, 4, 0, 3);
    assert_eq!(total(&survivor.client), 600);
    assert_eq!(total(&nodes[(gone + 2) % 3].client), 600);
}

#[test]
fn the_node_service_answers_kv_calls_and_says_why_it_will_not() {
    let (rt, _dirs, nodes) = three_nodes();
    let mut t = nodes[0].client.begin().unwrap();
    for i in 0..5 {
        t.put(format!("k{i}"), format!("v{i}"));
    }
    t.commit().unwrap();
    let leader = (nodes.iter())
        .position(|n| n.store.status()[0].is_leader)
        .expect("a leader");
    let follower = (leader + 1) % 3;
    let (leader_id, follower_id) = (leader as u64 + 1, follower as u64 + 1);
    let region = nodes[leader].store.view().get(FIRST_REGION).unwrap();
    let context = |region_id, version| {
        let mut epoch = region.epoch();
        epoch.version = version;
        Some(Context {
            cluster_id: 1,
            region_id,
            epoch: Some(epoch),
        })
    };
    let current = context(FIRST_REGION, region.epoch().version);
    // Another node calls, as a node holding no replica would.
    let client = |to: u64| nodes[to as usize % 3].transport.client(to).unwrap();
    let ts = nodes[0].tso.get_ts().unwrap();

    // A follower serves a read (after ReadIndex); a scan streams batches.
    let get = GetRequest {
        context: current.clone(),
        key: b"k3".to_vec(),
        version: ts,
    };
    let got = rt
        .block_on(client(follower_id).kv_get(get.clone()))
        .unwrap()
        .into_inner();
    assert_eq!(got.answer.unwrap().pairs[0].value, b"v3");
    let scan = ScanRequest {
        context: current.clone(),
        start: b"k".to_vec(),
        end: b"l".to_vec(),
        version: ts,
        limit: 4,
        batch_size: 3,
    };
    let batches: Vec<Vec<Vec<u8>>> = rt.block_on(async {
        let mut stream = client(follower_id)
            .kv_scan(scan)
            .await
            .unwrap()
            .into_inner();
        let mut batches = Vec::new();
        while let Some(r) = stream.message().await.unwrap() {
            batches.push(r.answer.unwrap().pairs.into_iter().map(|p| p.key).collect());
        }
        batches
    });
    assert_eq!(
        batches,
        vec![
            vec![b"k0".to_vec(), b"k1".to_vec(), b"k2".to_vec()],
            vec![b"k3".to_vec()]
        ],
        "4 of 5 keys, in batches of 3"
    );

    // Commands: a follower names the leader; the leader runs them.
    let start_ts = nodes[0].tso.get_ts().unwrap();
    let prewrite = PrewriteRequest {
        context: current.clone(),
        command: Some(Prewrite {
            mutations: vec![Mutation::new(Op::Put, b"k9".to_vec(), b"v9".to_vec())],
            primary: b"k9".to_vec(),
            start_ts,
            lock_ttl: 3000,
            ..Prewrite::default()
        }),
    };
    let refused = rt
        .block_on(client(follower_id).kv_prewrite(prewrite.clone()))
        .unwrap()
        .into_inner();
    assert_eq!(
        refused.region_error.unwrap().kind,
        Some(region_error::Kind::NotLeader(leader_id))
    );
    let done = rt
        .block_on(client(leader_id).kv_prewrite(prewrite))
        .unwrap()
        .into_inner();
    assert_eq!(
        (done.region_error, done.outcome),
        (None, None),
        "prewritten"
    );
    // The lock is in the way of a read above it: the read's own failure.
    let locked = GetRequest {
        key: b"k9".to_vec(),
        version: nodes[0].tso.get_ts().unwrap(),
        ..get.clone()
    };
    let failure = rt
        .block_on(client(follower_id).kv_get(locked))
        .unwrap()
        .into_inner()
        .failure
        .unwrap();
    assert_eq!(failure.kind, FailureKind::KeyIsLocked as i32);
    let commit_ts = nodes[0].tso.get_ts().unwrap();
    let commit = CommitRequest {
        context: current.clone(),
        command: Some(Commit {
            keys: vec![b"k9".to_vec()],
            start_ts,
            commit_ts,
        }),
    };
    let done = rt
        .block_on(client(leader_id).kv_commit(commit))
        .unwrap()
        .into_inner();
    assert_eq!((done.region_error, done.outcome), (None, None), "committed");
    let t = nodes[2].client.begin().unwrap();
    assert_eq!(t.get(b"k9").unwrap().as_deref(), Some(&b"v9"[..]));

    // A stale epoch, an unknown region, another cluster.
    let stale = GetRequest {
        context: context(FIRST_REGION, region.epoch().version + 7),
        ..get.clone()
    };
    let refused = rt
        .block_on(client(follower_id).kv_get(stale))
        .unwrap()
        .into_inner();
    match refused.region_error.unwrap().kind {
        Some(region_error::Kind::EpochNotMatch(now)) => assert_eq!(now.id, FIRST_REGION),
        other => panic!("expected EpochNotMatch, got {other:?}"),
    }
    let unknown = GetRequest {
        context: context(999, 1),
        ..get.clone()
    };
    let refused = rt
        .block_on(client(follower_id).kv_get(unknown))
        .unwrap()
        .into_inner();
    assert_eq!(
        refused.region_error.unwrap().kind,
        Some(region_error::Kind::RegionNotFound(true))
    );
    let mut stranger = get;
    stranger.context.as_mut().unwrap().cluster_id = 2;
    let status = rt
        .block_on(client(follower_id).kv_get(stranger))
        .unwrap_err();
    assert!(status.message().contains("cluster 2"), "{status:?}");
}

/// Waits until `cond` holds, for up to 20 s.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_node_without_a_replica_of_a_region_reads_and_writes_it_through_others() {
    let (_rt, _dirs, nodes) = three_nodes();
    let mut t = nodes[0].client.begin().unwrap();
    for key in ["a1", "a2", "z1", "z2"] {
        t.put(key, format!("v-{key}"));
    }
    t.commit().unwrap();
    eventually("node 1 leads", || nodes[0].store.status()[0].is_leader);
    let right = nodes[0].tso.get_ts().unwrap();
    nodes[0].cluster.split(b"m", right).unwrap();
    eventually("every node has the right region", || {
        nodes.iter().all(|n| n.store.view().get(right).is_some())
    });

    // Node 3 leaves the right region only: its replica is destroyed.
    eventually("node 1 leads the right region", || {
        (nodes[0].store.status().iter()).any(|r| r.region_id == right && r.is_leader)
    });
    nodes[0]
        .store
        .change_membership(
            right,
            &[(raft::prelude::ConfChangeType::RemoveNode, 3)],
            &[],
        )
        .unwrap();
    eventually("node 3 has no replica of the right region", || {
        nodes[2].store.view().get(right).is_none()
    });
    assert!(nodes[2].store.view().get(FIRST_REGION).is_some());

    // It still reads and writes there, through the others.
    let mut t = nodes[2].client.begin().unwrap();
    assert_eq!(t.get(b"z1").unwrap().as_deref(), Some(&b"v-z1"[..]));
    t.put("z3", "from node 3");
    t.put("a3", "from node 3");
    t.commit().unwrap();
    let t = nodes[0].client.begin().unwrap();
    assert_eq!(t.get(b"z3").unwrap().as_deref(), Some(&b"from node 3"[..]));
    let t = nodes[2].client.begin().unwrap();
    let keys: Vec<Vec<u8>> = (t.scan(b"", None, 100).unwrap())
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let expected: Vec<Vec<u8>> = ["a1", "a2", "a3", "z1", "z2", "z3"]
        .iter()
        .map(|k| k.as_bytes().to_vec())
        .collect();
    assert_eq!(
        keys, expected,
        "a scan spans the held and the remote region"
    );
    assert!(nodes[2].cluster.region_cache_misses() > 0, "it asked where");
}

#[test]
fn a_node_about_to_stop_hands_its_leaders_over() {
    let (_rt, _dirs, nodes) = three_nodes();
    let mut t = nodes[0].client.begin().unwrap();
    t.put("k1", "v1");
    t.commit().unwrap();
    eventually("node 1 leads", || nodes[0].store.status()[0].is_leader);
    assert_eq!(nodes[0].store.drain_leaders(Duration::from_secs(10)), 0);
    assert!(!nodes[0].store.status()[0].is_leader, "it leads nothing");
    let leader = nodes[1].store.status()[0].leader;
    assert!(
        matches!(leader, Some(2 | 3)),
        "another node leads: {leader:?}"
    );
    nodes[0].store.stop();
    // The others carry on with the leader they already have.
    let mut t = nodes[1].client.begin().unwrap();
    t.put("k2", "v2");
    t.commit().unwrap();
    let t = nodes[2].client.begin().unwrap();
    assert_eq!(t.get(b"k2").unwrap().as_deref(), Some(&b"v2"[..]));
    assert_eq!(t.get(b"k1").unwrap().as_deref(), Some(&b"v1"[..]));
}
