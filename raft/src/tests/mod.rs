//! Region peers driven by hand: ticks, message delivery and partitions are
//! decided by the test, so every run takes the same path.

mod chaos;
mod disk;
mod learner;
mod lock_wait;
mod log;
mod merge;
mod one_pc;
mod read;
mod split;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use duet_storage::engine::memory::MemoryEngine;
use duet_storage::engine::rocks::{RocksConfig, RocksEngine};
use duet_storage::engine::{Cf, Engine, EngineIterator, IterOptions, Snapshot};
use duet_storage::txn::commands::{Command, Commit, Mutation, Op, Prewrite};
use raft::prelude::{ConfChangeType, Message};

use crate::peer::{
    Applied, ApplyObserver, ApplyResult, Installed, Lease, Peer, PeerConfig, conf_change,
};

const REGION: u64 = 1;
/// Where every region's log starts.
const INIT: u64 = crate::storage::INIT_INDEX;

/// Election timeouts differ per peer (10 + 2·id ticks), so that when several
/// peers lose their leader, the lowest id campaigns first: no split votes.
fn config(id: u64) -> PeerConfig {
    PeerConfig {
        election_tick: 10 + 2 * id as usize,
        heartbeat_tick: 3,
        lease: LEASE,
        ..PeerConfig::default()
    }
}

/// The read lease of every peer in these tests (its clock is passed by hand).
const LEASE: Duration = Duration::from_secs(1);

type Outcome = Arc<Mutex<Option<ApplyResult>>>;

struct Cluster<E: Engine> {
    peers: BTreeMap<u64, Peer<E>>,
    engines: BTreeMap<u64, Arc<E>>,
    cut: HashSet<(u64, u64)>,
}

impl Cluster<MemoryEngine> {
    fn memory(voters: &[u64], learners: &[u64]) -> Self {
        let engines = voters
            .iter()
            .chain(learners)
            .map(|id| (*id, Arc::new(MemoryEngine::new())))
            .collect();
        Cluster::open(engines, voters, learners)
    }
}

impl<E: Engine> Cluster<E> {
    fn open(engines: BTreeMap<u64, Arc<E>>, voters: &[u64], learners: &[u64]) -> Self {
        let peers = engines
            .iter()
            .map(|(id, e)| {
                let peer = Peer::open(
                    Arc::clone(e),
                    REGION,
                    *id,
                    voters,
                    learners,
                    &config(*id),
                    &crate::logger(),
                );
                (*id, peer.unwrap())
            })
            .collect();
        Cluster {
            peers,
            engines,
            cut: HashSet::new(),
        }
    }

    /// Handles readies and delivers messages until the cluster is quiet.
    fn pump(&mut self) {
        for _ in 0..1000 {
            let mut msgs: Vec<Message> = Vec::new();
            for p in self.peers.values_mut() {
                msgs.extend(p.handle_ready().unwrap());
            }
            if msgs.is_empty() {
                return;
            }
            for m in msgs {
                if self.cut.contains(&(m.from, m.to)) {
                    continue;
                }
                // As the store does: a snapshot handed to the transport is
                // reported sent.
                let sent = (m.get_msg_type() == raft::prelude::MessageType::MsgSnapshot)
                    .then_some((m.from, m.to));
                if let Some(p) = self.peers.get_mut(&m.to) {
                    let _ = p.step(m);
                }
                if let Some((from, to)) = sent
                    && let Some(p) = self.peers.get_mut(&from)
                {
                    p.report_snapshot_sent(to);
                }
            }
        }
        panic!("cluster did not settle");
    }

    fn tick(&mut self, n: usize) {
        for _ in 0..n {
            for p in self.peers.values_mut() {
                p.tick();
            }
            self.pump();
        }
    }

    fn elect(&mut self, id: u64) {
        self.peers.get_mut(&id).unwrap().campaign().unwrap();
        self.pump();
        assert!(self.peers[&id].is_leader(), "peer {id} should lead");
    }

    fn propose(&mut self, id: u64, cmd: Command) -> Outcome {
        let out: Outcome = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&out);
        self.peers
            .get_mut(&id)
            .unwrap()
            .propose(&cmd, Box::new(move |r| *slot.lock().unwrap() = Some(r)));
        self.pump();
        out
    }

    fn partition(&mut self, a: &[u64], b: &[u64]) {
        for x in a {
            for y in b {
                self.cut.insert((*x, *y));
                self.cut.insert((*y, *x));
            }
        }
    }

    fn heal(&mut self) {
        self.cut.clear();
    }

    /// Every KV pair (not Raft's own) of a replica.
    fn dump(&self, id: u64) -> Vec<(Cf, Vec<u8>, Vec<u8>)> {
        dump_engine(self.engines[&id].as_ref())
    }

    fn assert_replicas_equal(&self, ids: &[u64]) {
        let first = self.dump(ids[0]);
        assert!(!first.is_empty(), "replica {} has data", ids[0]);
        for id in &ids[1..] {
            assert_eq!(
                self.dump(*id),
                first,
                "replica {id} differs from {}",
                ids[0]
            );
        }
    }
}

/// Every KV pair (not Raft's own) of an engine.
fn dump_engine<E: Engine>(engine: &E) -> Vec<(Cf, Vec<u8>, Vec<u8>)> {
    let snap = engine.snapshot();
    let mut out = Vec::new();
    for cf in [Cf::Default, Cf::Lock, Cf::Write] {
        let mut it = snap.iter(cf, IterOptions::default()).unwrap();
        let mut ok = it.seek_to_first().unwrap();
        while ok {
            out.push((cf, it.key().to_vec(), it.value().to_vec()));
            ok = it.next().unwrap();
        }
    }
    out
}

fn put(key: &str, start_ts: u64) -> Command {
    Prewrite {
        mutations: vec![Mutation::new(Op::Put, key.as_bytes(), b"value".to_vec())],
        primary: key.as_bytes().to_vec(),
        start_ts,
        lock_ttl: 3000,
        ..Default::default()
    }
    .into()
}

fn commit(key: &str, start_ts: u64, commit_ts: u64) -> Command {
    Commit {
        keys: vec![key.as_bytes().to_vec()],
        start_ts,
        commit_ts,
    }
    .into()
}

fn outcome(o: &Outcome) -> Option<Result<(), String>> {
    o.lock()
        .unwrap()
        .as_ref()
        .map(|r| r.as_ref().map(|_| ()).map_err(|e| e.to_string()))
}

#[test]
fn commands_replicate_to_every_replica() {
    let mut c = Cluster::memory(&[1, 2, 3], &[]);
    c.elect(1);
    let a = c.propose(1, put("k", 10));
    let b = c.propose(1, commit("k", 10, 11));
    assert_eq!(outcome(&a), Some(Ok(())));
    assert_eq!(outcome(&b), Some(Ok(())));
    c.assert_replicas_equal(&[1, 2, 3]);
    let indexes: Vec<u64> = c.peers.values().map(|p| p.applied_index()).collect();
    assert!(
        indexes.iter().all(|i| *i == indexes[0] && *i >= 3),
        "{indexes:?}"
    );
}

#[test]
fn conflicts_are_deterministic_results_on_every_replica() {
    let mut c = Cluster::memory(&[1, 2, 3], &[]);
    c.elect(1);
    assert_eq!(outcome(&c.propose(1, put("k", 10))), Some(Ok(())));
    let second = c.propose(1, put("k", 20));
    let err = outcome(&second).unwrap().unwrap_err();
    assert!(err.contains("locked"), "{err}");
    c.assert_replicas_equal(&[1, 2, 3]);
}

impl<E: Engine> Cluster<E> {
    /// Proposes on `id` without handling any Ready: the entry stays
    /// unapplied until the next pump.
    fn propose_unapplied(&mut self, id: u64, cmd: Command) -> Outcome {
        let out: Outcome = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&out);
        self.peers
            .get_mut(&id)
            .unwrap()
            .propose(&cmd, Box::new(move |r| *slot.lock().unwrap() = Some(r)));
        out
    }
}

#[test]
fn a_command_waits_for_the_unapplied_entries_on_its_keys() {
    let mut c = Cluster::memory(&[1, 2, 3], &[]);
    c.elect(1);
    let before = c.peers[&1].commit_index();
    let lock = c.propose_unapplied(1, put("k", 10));
    // Run now, the commit would find no lock: it must wait for the prewrite.
    let done = c.propose_unapplied(1, commit("k", 10, 11));
    let other = c.propose_unapplied(1, put("j", 12));
    assert_eq!(outcome(&done), None, "answered before its entry applied");
    c.pump();
    assert_eq!(outcome(&lock), Some(Ok(())));
    assert_eq!(outcome(&done), Some(Ok(())));
    assert_eq!(outcome(&other), Some(Ok(())));
    assert_eq!(c.peers[&1].commit_index(), before + 3);
    c.assert_replicas_equal(&[1, 2, 3]);
    let commits = c
        .dump(3)
        .iter()
        .filter(|(cf, _, _)| *cf == Cf::Write)
        .count();
    assert_eq!(commits, 1, "the follower wrote the leader's commit record");
}

#[test]
fn gc_waits_until_every_earlier_entry_applied() {
    let mut c = Cluster::memory(&[1, 2, 3], &[]);
    c.elect(1);
    let _lock = c.propose_unapplied(1, put("k", 10));
    let gc = duet_storage::txn::commands::Gc {
        safe_point: 30,
        start: vec![],
        end: vec![],
    };
    let gc = c.propose_unapplied(1, gc.into());
    c.pump();
    // Run before the prewrite applied, GC would not have seen its lock.
    let err = outcome(&gc).unwrap().unwrap_err();
    assert!(err.contains("waits for a lock of transaction 10"), "{err}");
    c.assert_replicas_equal(&[1, 2, 3]);
}

#[test]
fn effects_a_split_overtook_are_refused_on_every_replica() {
    let mut c = Cluster::memory(&[1, 2, 3], &[]);
    c.elect(1);
    let from = c.peers[&1].applied_index();
    assert_eq!(outcome(&c.propose(1, put("a", 5))), Some(Ok(())));
    let split: Outcome = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&split);
    c.peers.get_mut(&1).unwrap().propose_split(
        b"m",
        2,
        Box::new(move |r| *slot.lock().unwrap() = Some(r)),
    );
    // Run while the region still holds "z"; applied after the split.
    let late = c.propose_unapplied(1, put("z", 10));
    c.pump();
    assert_eq!(outcome(&split), Some(Ok(())));
    let err = outcome(&late).unwrap().unwrap_err();
    assert!(err.contains("epoch"), "{err}");
    for id in [1, 2, 3] {
        let locks = c
            .dump(id)
            .iter()
            .filter(|(cf, _, _)| *cf == Cf::Lock)
            .count();
        assert_eq!(locks, 1, "replica {id} holds only the lock on a");
    }
    // A replay of the log refuses them alike.
    let upto = c.peers[&1].applied_index();
    match crate::peer::applied_writes(&c.engines[&2].snapshot(), REGION, from, upto).unwrap() {
        crate::peer::Replay::Writes(w) => assert_eq!(w.len(), 1, "only the prewrite of a"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn followers_refuse_proposals_with_the_leader() {
    let mut c = Cluster::memory(&[1, 2, 3], &[]);
    c.elect(2);
    let r = c.propose(3, put("k", 10));
    let err = outcome(&r).unwrap().unwrap_err();
    assert!(err.contains("not leader (leader is Some(2))"), "{err}");
}

#[test]
fn a_partitioned_minority_cannot_commit() {
    let mut c = Cluster::memory(&[1, 2, 3], &[]);
    c.elect(1);
    c.partition(&[1], &[2, 3]);
    let stuck = c.propose(1, put("a", 10));
    c.tick(2);
    assert_eq!(outcome(&stuck), None, "no quorum, no commit");
    // Peers 2 and 3 stop hearing from 1 and elect one of themselves.
    // (Two check-quorum rounds of 12 ticks make the old leader step down.)
    c.tick(30);
    let new_leader = [2, 3]
        .into_iter()
        .find(|id| c.peers[id].is_leader())
        .expect("the majority side elects");
    assert!(!c.peers[&1].is_leader(), "check-quorum made 1 step down");
    assert_eq!(outcome(&c.propose(new_leader, put("b", 20))), Some(Ok(())));
    c.heal();
    c.tick(12);
    assert!(!c.peers[&1].is_leader());
    assert_eq!(c.peers[&1].leader(), Some(new_leader));
    let dropped = outcome(&stuck).expect("the old leader answered");
    assert!(
        dropped.unwrap_err().contains("dropped"),
        "its proposal was overwritten"
    );
    c.assert_replicas_equal(&[1, 2, 3]);
    let dump = c.dump(1);
    assert_eq!(
        dump.len(),
        1,
        "only one lock, b's: the minority's write never happened"
    );
    assert_eq!(
        (
            dump[0].0,
            duet_storage::mvcc::decode_key(&dump[0].1).unwrap()
        ),
        (Cf::Lock, b"b".to_vec())
    );
}

#[test]
fn a_follower_that_was_away_catches_up_by_log() {
    let mut c = Cluster::memory(&[1, 2, 3], &[]);
    c.elect(1);
    c.partition(&[3], &[1, 2]);
    for i in 0..5 {
        assert_eq!(
            outcome(&c.propose(1, put(&format!("k{i}"), 10 + i))),
            Some(Ok(()))
        );
    }
    assert_ne!(c.peers[&3].applied_index(), c.peers[&1].applied_index());
    c.heal();
    c.tick(4);
    c.assert_replicas_equal(&[1, 2, 3]);
    assert_eq!(c.peers[&3].applied_index(), c.peers[&1].applied_index());
}

#[test]
fn every_replica_restarts_from_disk() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let open = |dirs: &[tempfile::TempDir]| -> BTreeMap<u64, Arc<RocksEngine>> {
        dirs.iter()
            .enumerate()
            .map(|(i, d)| {
                (
                    i as u64 + 1,
                    Arc::new(RocksEngine::open(d.path(), &RocksConfig::default()).unwrap()),
                )
            })
            .collect()
    };
    let (before, applied) = {
        let mut c = Cluster::open(open(&dirs), &[1, 2, 3], &[]);
        c.elect(1);
        assert_eq!(outcome(&c.propose(1, put("k", 10))), Some(Ok(())));
        assert_eq!(outcome(&c.propose(1, commit("k", 10, 11))), Some(Ok(())));
        c.peers.get_mut(&1).unwrap().compact_log().unwrap();
        (c.dump(1), c.peers[&1].applied_index())
    };
    let mut c = Cluster::open(open(&dirs), &[1, 2, 3], &[]);
    for id in [1, 2, 3] {
        assert_eq!(
            c.peers[&id].region().epoch().conf_ver,
            1,
            "replica {id} recovered its region"
        );
        assert_eq!(c.dump(id), before, "replica {id} recovered its data");
        assert_eq!(
            c.peers[&id].applied_index(),
            applied,
            "replica {id} recovered its applied index"
        );
    }
    c.elect(2);
    assert_eq!(outcome(&c.propose(2, put("after", 20))), Some(Ok(())));
    c.assert_replicas_equal(&[1, 2, 3]);
}

type ReadOutcome = Arc<Mutex<Option<crate::Result<u64>>>>;

/// One line per peer: role, leader, term, commit, applied.
fn states(c: &Cluster<MemoryEngine>) -> String {
    c.peers
        .values()
        .map(|p| {
            let role = if p.is_leader() { "leader" } else { "follower" };
            format!(
                "  {}: {role:<8} leader={:?} term={} commit={} applied={}\n",
                p.id(),
                p.leader(),
                p.term(),
                p.commit_index(),
                p.applied_index()
            )
        })
        .collect()
}

/// A scripted run whose every step's cluster state is compared with
/// `testdata/election.golden` (regenerate with `UPDATE_GOLDEN=1`).
#[test]
fn golden_election_partition_and_recovery() {
    let mut c = Cluster::memory(&[1, 2, 3], &[]);
    let mut out = String::new();
    let mut step = |c: &Cluster<MemoryEngine>, title: &str| {
        out.push_str(&format!("> {title}\n{}", states(c)));
    };
    step(&c, "three fresh peers");
    c.elect(1);
    step(&c, "peer 1 campaigns");
    let _ = c.propose(1, put("a", 10));
    step(&c, "a prewrite through peer 1");
    c.partition(&[1], &[2, 3]);
    let _ = c.propose(1, put("b", 20));
    step(&c, "peer 1 cut off, proposes b");
    c.tick(30);
    step(&c, "30 ticks later");
    c.heal();
    c.tick(12);
    step(&c, "healed, 12 ticks later");
    // The checkout being tested (cargo sets it at run time; a test binary
    // reused from another checkout must not read that one's files).
    let dir =
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    let path = std::path::Path::new(&dir).join("src/testdata/election.golden");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &out).unwrap();
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        out, expected,
        "golden output changed; rerun with UPDATE_GOLDEN=1 and review the diff"
    );
}

#[test]
fn joint_consensus_replaces_a_voter_and_promotes_a_learner() {
    let mut c = Cluster::memory(&[1, 2, 3], &[4]);
    c.elect(1);
    assert_eq!(outcome(&c.propose(1, put("k", 10))), Some(Ok(())));
    // Two changes at once: 4 becomes a voter, 3 leaves. Raft goes through a
    // joint configuration and leaves it by itself.
    let cc = conf_change(&[
        (ConfChangeType::AddNode, 4),
        (ConfChangeType::RemoveNode, 3),
    ]);
    c.peers
        .get_mut(&1)
        .unwrap()
        .propose_conf_change(cc)
        .unwrap();
    c.pump();
    c.tick(4);
    for id in [1, 2, 4] {
        assert_eq!(
            c.peers[&id].membership(),
            (vec![1, 2, 4], vec![]),
            "peer {id}"
        );
    }
    // The new majority {1, 2, 4} commits without 3.
    c.partition(&[3], &[1, 2, 4]);
    assert_eq!(outcome(&c.propose(1, put("j", 20))), Some(Ok(())));
    c.assert_replicas_equal(&[1, 2, 4]);
    // And a change proposed on a follower is refused with the leader's id.
    let err = c
        .peers
        .get_mut(&2)
        .unwrap()
        .propose_conf_change(conf_change(&[(ConfChangeType::AddLearnerNode, 9)]));
    assert!(matches!(
        err,
        Err(crate::Error::NotLeader {
            leader: Some(1),
            ..
        })
    ));
}

#[test]
fn a_stale_epoch_is_refused_with_the_current_region() {
    let mut c = Cluster::memory(&[1, 2, 3], &[]);
    c.elect(1);
    let current = c.peers[&1].region().epoch();
    let out: Outcome = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&out);
    c.peers.get_mut(&1).unwrap().propose_in_epoch(
        &put("k", 10),
        current,
        Box::new(move |r| *slot.lock().unwrap() = Some(r)),
    );
    c.pump();
    assert_eq!(outcome(&out), Some(Ok(())));
    let stale = crate::region::RegionEpoch {
        conf_ver: current.conf_ver,
        version: current.version + 1,
    };
    let out: Outcome = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&out);
    c.peers.get_mut(&1).unwrap().propose_in_epoch(
        &put("j", 20),
        stale,
        Box::new(move |r| *slot.lock().unwrap() = Some(r)),
    );
    match out.lock().unwrap().take() {
        Some(Err(crate::Error::EpochNotMatch {
            current: region, ..
        })) => assert_eq!(region.epoch(), current),
        other => panic!(
            "expected EpochNotMatch, got {:?}",
            other.map(|r| r.map(|_| ()))
        ),
    }
}

#[test]
fn an_invalid_membership_change_is_skipped_on_every_replica() {
    let mut c = Cluster::memory(&[1, 2, 3], &[]);
    c.elect(1);
    let bad = conf_change(&[
        (ConfChangeType::RemoveNode, 1),
        (ConfChangeType::RemoveNode, 2),
        (ConfChangeType::RemoveNode, 3),
    ]);
    c.peers
        .get_mut(&1)
        .unwrap()
        .propose_conf_change(bad)
        .unwrap();
    c.pump();
    for id in [1, 2, 3] {
        assert_eq!(
            c.peers[&id].membership(),
            (vec![1, 2, 3], vec![]),
            "peer {id}"
        );
        assert_eq!(c.peers[&id].region().epoch().conf_ver, 1, "peer {id}");
    }
    assert_eq!(
        outcome(&c.propose(1, put("k", 10))),
        Some(Ok(())),
        "the region still works"
    );
}

#[test]
fn a_region_past_its_key_limit_splits_in_the_middle() {
    use crate::regions::{SplitLimits, find_split_key};
    let by_keys = |keys| SplitLimits { keys, bytes: 0 };
    let mut c = Cluster::memory(&[1], &[]);
    c.elect(1);
    for i in 0..10u64 {
        let key = format!("k{i}");
        // Two versions of each key: keys count once.
        for v in 0..2 {
            let ts = 100 + 10 * i + 4 * v;
            assert_eq!(outcome(&c.propose(1, put(&key, ts))), Some(Ok(())));
            assert_eq!(
                outcome(&c.propose(1, commit(&key, ts, ts + 1))),
                Some(Ok(()))
            );
        }
    }
    assert_eq!(
        c.peers[&1].written_keys(),
        20,
        "one commit record per version: the split check's upper bound"
    );
    let engine = c.engines[&1].as_ref();
    let region = c.peers[&1].region().clone();
    let fits = find_split_key(engine, &region, by_keys(10)).unwrap();
    assert_eq!((fits.split_key, fits.keys), (None, 10), "10 keys fit");
    let too_many = find_split_key(engine, &region, by_keys(9)).unwrap();
    assert_eq!(
        (too_many.split_key, too_many.keys),
        (Some(b"k5".to_vec()), 10),
        "the sixth of ten keys starts the second half"
    );
    let (_, right) = region.split(b"k5", 2).unwrap();
    assert_eq!(
        find_split_key(engine, &right, by_keys(4))
            .unwrap()
            .split_key,
        Some(b"k7".to_vec())
    );
}

#[test]
fn a_region_past_its_byte_limit_splits_where_half_the_limit_is_reached() {
    use crate::regions::{SplitLimits, find_split_key};
    let mut c = Cluster::memory(&[1], &[]);
    c.elect(1);
    // Ten keys with values too long to live beside their commit records:
    // their bytes are in the `default` column family.
    for i in 0..10u64 {
        let key = format!("k{i}");
        let ts = 100 + 10 * i;
        let write = Prewrite {
            mutations: vec![Mutation::new(Op::Put, key.as_bytes(), vec![b'x'; 1000])],
            primary: key.as_bytes().to_vec(),
            start_ts: ts,
            lock_ttl: 3000,
            ..Default::default()
        };
        assert_eq!(outcome(&c.propose(1, write.into())), Some(Ok(())));
        assert_eq!(
            outcome(&c.propose(1, commit(&key, ts, ts + 1))),
            Some(Ok(()))
        );
    }
    let engine = c.engines[&1].as_ref();
    let region = c.peers[&1].region().clone();
    let all = find_split_key(engine, &region, SplitLimits { keys: 0, bytes: 0 }).unwrap();
    assert_eq!((all.split_key, all.keys), (None, 10));
    assert!(
        (10_000..12_000).contains(&all.bytes),
        "every value counted once, with the keys: {}",
        all.bytes
    );
    let per_key = all.bytes / 10;
    // A limit of four and a half keys' bytes: the split comes at the first
    // key with half that (more than two keys' bytes) before it.
    let check = find_split_key(
        engine,
        &region,
        SplitLimits {
            keys: 0,
            bytes: 4 * per_key + per_key / 2,
        },
    )
    .unwrap();
    assert_eq!(check.split_key, Some(b"k3".to_vec()));
    assert_eq!(check.keys, 5, "the scan stops past the limit");
    // Keys and bytes together: the first limit passed decides.
    let keys_first = find_split_key(
        engine,
        &region,
        SplitLimits {
            keys: 3,
            bytes: 8 * per_key,
        },
    )
    .unwrap();
    assert_eq!(keys_first.split_key, Some(b"k2".to_vec()));
    let fits = find_split_key(
        engine,
        &region,
        SplitLimits {
            keys: 10,
            bytes: 20 * per_key,
        },
    )
    .unwrap();
    assert_eq!(fits.split_key, None);
}

#[test]
fn a_leader_steps_aside_to_its_most_caught_up_voter() {
    let mut c = Cluster::memory(&[1, 2, 3], &[]);
    c.elect(1);
    assert_eq!(outcome(&c.propose(1, put("a", 10))), Some(Ok(())));
    assert_eq!(c.peers[&2].transfer_target(), None, "a follower has none");
    // Peer 3 falls behind: peer 2 is the one to take over.
    c.partition(&[3], &[1, 2]);
    assert_eq!(outcome(&c.propose(1, put("b", 20))), Some(Ok(())));
    assert_eq!(c.peers[&1].transfer_target(), Some(2));
    c.heal();
    c.peers.get_mut(&1).unwrap().transfer_leader(2);
    c.pump();
    c.tick(2);
    assert!(c.peers[&2].is_leader(), "peer 2 leads");
    assert!(!c.peers[&1].is_leader());
    // The new leader serves at once.
    assert_eq!(outcome(&c.propose(2, commit("a", 10, 11))), Some(Ok(())));
}
