//! Raft stores with real threads and real time, connected in-process: the
//! transaction client commits through Raft, replicas converge, a leader's
//! loss is survived without losing acknowledged writes, and a store restarts
//! from disk.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use duet_raft::cluster::ClusterStore;
use duet_raft::store::{FIRST_REGION, RaftStore, StoreConfig, inbox};
use duet_raft::transport::LocalRouter;
use duet_storage::engine::rocks::{RocksConfig, RocksEngine};
use duet_storage::engine::{Cf, Engine, EngineIterator, IterOptions, Snapshot};
use duet_storage::tso::Tso;
use duet_storage::txn::commands::{Command, Response};
use duet_storage::txn::read::{Answer, Read, serve};
use duet_storage::txn::{TxnClient, TxnOptions, TxnStore};

type Store = RaftStore<RocksEngine>;

fn config(id: u64, voters: &[u64]) -> StoreConfig {
    let mut c = StoreConfig::single(id);
    c.voters = voters.to_vec();
    c.tick_interval = Duration::from_millis(20);
    c.peer.election_tick = 10 + 3 * id as usize;
    c.proposal_timeout = Duration::from_secs(3);
    // Compact often, so a node that was down catches up by snapshot.
    c.peer.log_gc_threshold = 8;
    c
}

/// Routes commands to whichever store currently leads (retrying on the
/// others), as a client-side region cache would.
struct Leader {
    stores: Vec<Arc<Store>>,
}

impl Leader {
    fn leader(&self) -> Option<&Arc<Store>> {
        self.stores.iter().find(|s| {
            s.status()
                .first()
                .is_some_and(|r| r.is_leader && r.applied_index >= r.commit_index)
        })
    }

    fn wait_leader(&self) -> &Arc<Store> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = self.leader() {
                return s;
            }
            assert!(Instant::now() < deadline, "no leader elected");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl TxnStore for Leader {
    fn read(&self, read: &Read) -> duet_storage::Result<Answer> {
        serve(&self.wait_leader().engine().snapshot(), read)
    }

    fn catch_up(&self, _read_ts: u64) -> duet_storage::Result<()> {
        Ok(())
    }

    fn execute(&self, cmd: Command) -> duet_storage::Result<Response> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let leader = Arc::clone(self.wait_leader());
            let id = leader.status()[0].peer_id;
            match ClusterStore::new(id, leader, None).execute(cmd.clone()) {
                Err(duet_storage::Error::Unavailable(_)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }
}

fn dump(engine: &RocksEngine) -> Vec<(Vec<u8>, Vec<u8>)> {
    let snap = engine.snapshot();
    let mut it = snap.iter(Cf::Write, IterOptions::default()).unwrap();
    let mut out = Vec::new();
    let mut ok = it.seek_to_first().unwrap();
    while ok {
        out.push((it.key().to_vec(), it.value().to_vec()));
        ok = it.next().unwrap();
    }
    out
}

fn wait_equal(stores: &[Arc<Store>]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let dumps: Vec<_> = stores.iter().map(|s| dump(s.engine())).collect();
        if dumps.windows(2).all(|w| w[0] == w[1]) {
            return;
        }
        assert!(Instant::now() < deadline, "replicas did not converge");
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Node {
    dir: tempfile::TempDir,
    tso_engine: Arc<RocksEngine>,
}

fn start_cluster(
    router: &LocalRouter,
    nodes: &BTreeMap<u64, Node>,
    voters: &[u64],
) -> Vec<Arc<Store>> {
    nodes
        .iter()
        .map(|(id, n)| {
            let engine = Arc::new(
                RocksEngine::open(&n.dir.path().join("kv"), &RocksConfig::default()).unwrap(),
            );
            let (tx, rx) = inbox();
            router.register(*id, tx.clone());
            let store = RaftStore::start(
                engine,
                &config(*id, voters),
                Arc::new(router.clone()),
                vec![],
                (tx, rx),
            )
            .unwrap();
            let _ = &n.tso_engine;
            Arc::new(store)
        })
        .collect()
}

#[test]
fn three_stores_replicate_survive_the_leader_and_restart() {
    let router = LocalRouter::new();
    let tso_dir = tempfile::tempdir().unwrap();
    let tso_engine = Arc::new(RocksEngine::open(tso_dir.path(), &RocksConfig::default()).unwrap());
    let nodes: BTreeMap<u64, Node> = (1..=3)
        .map(|id| {
            (
                id,
                Node {
                    dir: tempfile::tempdir().unwrap(),
                    tso_engine: Arc::clone(&tso_engine),
                },
            )
        })
        .collect();
    let tso: Arc<dyn duet_storage::tso::TimestampSource> =
        Arc::new(Tso::open(Arc::clone(&tso_engine)).unwrap());
    let options = TxnOptions {
        lock_ttl_ms: 500,
        pessimistic_lock_ttl_ms: 20_000,
        lock_wait: Duration::from_secs(5),
        backoff: Duration::from_millis(10),
        one_pc: true,
    };
    let mut acked = Vec::new();
    {
        let stores = start_cluster(&router, &nodes, &[1, 2, 3]);
        stores[0].campaign(FIRST_REGION);
        let leader = Arc::new(Leader {
            stores: stores.clone(),
        });
        let client = TxnClient::new(Arc::clone(&leader), Arc::clone(&tso), options.clone());
        for i in 0..10u32 {
            let mut t = client.begin().unwrap();
            t.put(format!("k{i}"), format!("v{i}"));
            t.commit().unwrap();
            acked.push(i);
        }
        // ReadIndex on every replica: once it returns, the local engine has
        // everything that was committed, with no further waiting.
        let leader_data = dump(leader.wait_leader().engine());
        for s in &stores {
            s.read_index(FIRST_REGION).unwrap();
            assert_eq!(dump(s.engine()), leader_data);
        }

        // Lose the leader: the others elect a new one and keep serving.
        let old = leader.wait_leader().status()[0].peer_id;
        // Stores are in id order: store `id` is at index `id - 1`.
        let survivors: Vec<Arc<Store>> = stores
            .iter()
            .enumerate()
            .filter(|(i, _)| *i as u64 + 1 != old)
            .map(|(_, s)| Arc::clone(s))
            .collect();
        router.unregister(old);
        stores[old as usize - 1].stop();
        assert_eq!(survivors.len(), 2);
        let started = Instant::now();
        let survivors_leader = Arc::new(Leader {
            stores: survivors.clone(),
        });
        survivors_leader.wait_leader();
        let failover = started.elapsed();
        assert!(
            failover < Duration::from_secs(5),
            "new leader after {failover:?}"
        );
        let client = TxnClient::new(
            Arc::clone(&survivors_leader),
            Arc::clone(&tso),
            options.clone(),
        );
        for i in 10..15u32 {
            let mut t = client.begin().unwrap();
            t.put(format!("k{i}"), format!("v{i}"));
            t.commit().unwrap();
            acked.push(i);
        }
        let t = client.begin().unwrap();
        for i in &acked {
            assert_eq!(
                t.get(format!("k{i}").as_bytes()).unwrap(),
                Some(format!("v{i}").into_bytes()),
                "k{i}"
            );
        }
        wait_equal(&survivors);
        for s in &stores {
            s.stop();
        }
        for id in 1..=3 {
            router.unregister(id);
        }
    }
    // Every node restarts from disk; the stopped one catches up.
    let stores = start_cluster(&router, &nodes, &[1, 2, 3]);
    let leader = Arc::new(Leader {
        stores: stores.clone(),
    });
    let client = TxnClient::new(Arc::clone(&leader), tso, options);
    let t = client.begin().unwrap();
    for i in &acked {
        assert_eq!(
            t.get(format!("k{i}").as_bytes()).unwrap(),
            Some(format!("v{i}").into_bytes()),
            "after restart: k{i}"
        );
    }
    wait_equal(&stores);
    for s in &stores {
        let truncated = s
            .engine()
            .get(
                Cf::Raft,
                &duet_raft::keys::truncated_state_key(FIRST_REGION),
            )
            .unwrap();
        assert!(
            truncated.is_some(),
            "every replica compacted its log (the one that was down by snapshot)"
        );
    }
    let status = stores[0].status();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].region_id, FIRST_REGION);
}

#[test]
fn a_single_store_commits_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let router = LocalRouter::new();
    let open = || Arc::new(RocksEngine::open(dir.path(), &RocksConfig::default()).unwrap());
    let commit_ts = {
        let engine = open();
        let tso = Arc::new(Tso::open(Arc::clone(&engine)).unwrap());
        let store = RaftStore::start(
            engine,
            &StoreConfig::single(1),
            Arc::new(router.clone()),
            vec![],
            inbox(),
        )
        .unwrap();
        let client = TxnClient::new(
            Arc::new(ClusterStore::new(1, Arc::new(store), None)),
            tso,
            TxnOptions::default(),
        );
        let mut t = client.begin().unwrap();
        t.put(b"k".to_vec(), b"v".to_vec());
        t.commit().unwrap()
    };
    assert!(commit_ts > 0);
    let engine = open();
    let tso = Arc::new(Tso::open(Arc::clone(&engine)).unwrap());
    let store = RaftStore::start(
        engine,
        &StoreConfig::single(1),
        Arc::new(router),
        vec![],
        inbox(),
    )
    .unwrap();
    let client = TxnClient::new(
        Arc::new(ClusterStore::new(1, Arc::new(store), None)),
        tso,
        TxnOptions::default(),
    );
    assert_eq!(
        client.begin().unwrap().get(b"k").unwrap(),
        Some(b"v".to_vec())
    );
}

/// Reads cut at region bounds come back whole: a scan over two regions
/// counts its limit down across them, a lock scan and a multi-key read of
/// committed values see both sides, and a transaction's own scan merges
/// its buffered writes with them.
#[test]
fn reads_that_span_regions_are_answered_part_by_part() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(RocksEngine::open(dir.path(), &RocksConfig::default()).unwrap());
    let tso = Arc::new(Tso::open(Arc::clone(&engine)).unwrap());
    let store = Arc::new(
        RaftStore::start(
            engine,
            &StoreConfig::single(1),
            Arc::new(LocalRouter::new()),
            vec![],
            inbox(),
        )
        .unwrap(),
    );
    let cluster = Arc::new(ClusterStore::new(1, Arc::clone(&store), None));
    cluster.split(b"m", 900).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.view().regions().len() < 2 {
        assert!(Instant::now() < deadline, "the split did not apply");
        std::thread::sleep(Duration::from_millis(10));
    }
    let client = TxnClient::new(Arc::clone(&cluster), tso, TxnOptions::default());
    let mut t = client.begin().unwrap();
    for k in ["a", "k", "l", "n", "z"] {
        t.put(k.as_bytes().to_vec(), k.to_uppercase().into_bytes());
    }
    let ts = t.commit().unwrap();

    let keys = |pairs: Vec<(Vec<u8>, Vec<u8>)>| -> Vec<String> {
        pairs
            .into_iter()
            .map(|(k, _)| String::from_utf8(k).unwrap())
            .collect()
    };
    let scan = |start: &str, end: &str, limit: usize| {
        keys(
            client
                .scan_at(start.as_bytes(), end.as_bytes(), ts, limit)
                .unwrap(),
        )
    };
    assert_eq!(
        scan("b", "zz", 3),
        ["k", "l", "n"],
        "the limit spans the bound"
    );
    assert_eq!(
        scan("b", "zz", 2),
        ["k", "l"],
        "the second region is not read"
    );
    assert_eq!(scan("", "zz", 10), ["a", "k", "l", "n", "z"]);
    assert_eq!(scan("n", "zz", 10), ["n", "z"]);

    let mut t = client.begin().unwrap();
    t.delete(b"l".to_vec());
    t.put(b"o".to_vec(), b"O".to_vec());
    let mine = t.scan(b"b", None, 4).unwrap();
    assert_eq!(keys(mine), ["k", "n", "o", "z"]);
    let locked = t
        .lock_for_update(&[b"z".to_vec(), b"a".to_vec(), b"q".to_vec()])
        .unwrap();
    assert_eq!(locked, [Some(b"Z".to_vec()), Some(b"A".to_vec()), None]);
    let locks = cluster
        .read(
            &duet_storage::txn::read::ScanLocks {
                start: vec![],
                end: vec![],
                max_ts: u64::MAX,
                limit: 10,
            }
            .into(),
        )
        .unwrap()
        .into_locks();
    let locked_keys: Vec<&[u8]> = locks.iter().map(|(k, _)| k.as_slice()).collect();
    // "l", the primary (chosen by the first write), is locked too.
    assert_eq!(
        locked_keys,
        [b"a".as_slice(), b"l", b"q", b"z"],
        "both regions' locks"
    );
    t.rollback().unwrap();
}
