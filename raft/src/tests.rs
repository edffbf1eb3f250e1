//! Region peers driven by hand: ticks, message delivery and partitions are
//! decided by the test, so every run takes the same path.

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
fn the_log_reads_back_what_each_entry_did() {
    use crate::peer::{Logged, logged_writes};
    let mut c = Cluster::memory(&[1, 2, 3], &[]);
    c.elect(1);
    let from = c.peers[&1].applied_index();
    let version = c.peers[&1].region().epoch().version;
    assert_eq!(outcome(&c.propose(1, put("k", 10))), Some(Ok(())));
    assert_eq!(outcome(&c.propose(1, commit("k", 10, 11))), Some(Ok(())));
    assert!(outcome(&c.propose(1, put("k", 5))).unwrap().is_err());
    let split: Outcome = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&split);
    c.peers.get_mut(&1).unwrap().propose_split(
        b"m",
        2,
        Box::new(move |r| *slot.lock().unwrap() = Some(r)),
    );
    c.pump();
    assert_eq!(outcome(&split), Some(Ok(())));
    assert_eq!(outcome(&c.propose(1, put("a", 20))), Some(Ok(())));
    let upto = c.peers[&1].applied_index();
    // Read back on a follower: what its own apply did.
    let snap = c.engines[&3].snapshot();
    let logged = logged_writes(&snap, REGION, from, upto)
        .unwrap()
        .expect("all in the log");
    assert_eq!(logged.len(), 5, "{logged:?}");
    let commits = |w: &[duet_storage::engine::Modify]| {
        w.iter()
            .filter(|m| matches!(m, duet_storage::engine::Modify::Put { cf: Cf::Write, .. }))
            .count()
    };
    match &logged[1] {
        Logged::Effects {
            version: v,
            ok: true,
            writes,
        } => {
            assert_eq!(*v, version);
            assert_eq!(commits(writes), 1);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(logged[2], Logged::Effects { ok: false, .. }),
        "a conflict"
    );
    assert!(matches!(logged[3], Logged::Split { new_region_id: 2 }));
    // After the split, effects carry the raised version.
    assert!(matches!(logged[4], Logged::Effects { version: v, ok: true, .. } if v == version + 1));
    // What the apply kept: the prewrite, the commit and the write after
    // the split (the conflict wrote nothing).
    match crate::peer::applied_writes(&snap, REGION, from, upto).unwrap() {
        crate::peer::Replay::Writes(w) => assert_eq!(w.len(), 3),
        other => panic!("{other:?}"),
    }
    // Once compacted, the entries are gone.
    c.peers.get_mut(&3).unwrap().compact_log().unwrap();
    let gone = logged_writes(&c.engines[&3].snapshot(), REGION, from, upto).unwrap();
    assert!(gone.is_none());
}

/// An observer whose state is durable up to a fixed index.
struct Durable(u64);

impl ApplyObserver for Durable {
    fn on_applied(&self, _: u64, _: u64, _: u64, _: &Applied<'_>) {}
    fn durable(&self, _region_id: u64) -> Option<u64> {
        Some(self.0)
    }
}

#[test]
fn the_log_is_kept_for_a_subscriber_within_bounds() {
    let mut c = Cluster::memory(&[1], &[]);
    c.elect(1);
    let start = c.peers[&1].applied_index();
    let p = c.peers.get_mut(&1).unwrap();
    p.set_log_gc_threshold(4);
    p.observe(Arc::new(Durable(start + 2)));
    for i in 0..10u64 {
        assert_eq!(
            outcome(&c.propose(1, put(&format!("k{i}"), 10 + i))),
            Some(Ok(()))
        );
    }
    // Past the threshold, but the subscriber replays from start + 2.
    assert_eq!(c.peers[&1].first_log_index(), start + 2);
    // Four times past the threshold, the log is compacted anyway.
    for i in 0..10u64 {
        assert_eq!(
            outcome(&c.propose(1, put(&format!("j{i}"), 100 + i))),
            Some(Ok(()))
        );
    }
    assert!(c.peers[&1].first_log_index() > start + 2);
}

#[test]
fn a_leader_keeps_its_log_for_a_slow_peer_within_bounds() {
    let mut c = Cluster::memory(&[1, 2, 3], &[]);
    for p in c.peers.values_mut() {
        p.set_log_gc_threshold(4);
    }
    c.elect(1);
    c.partition(&[3], &[1, 2]);
    let behind = c.peers[&3].applied_index();
    for i in 0..8u64 {
        assert_eq!(
            outcome(&c.propose(1, put(&format!("k{i}"), 10 + i))),
            Some(Ok(()))
        );
    }
    // Past the threshold, but peer 3 still needs the entries.
    assert!(c.peers[&1].first_log_index() <= behind + 1);
    c.heal();
    c.tick(4);
    c.assert_replicas_equal(&[1, 2, 3]);
    // Four times past the threshold, the log is compacted anyway.
    c.partition(&[3], &[1, 2]);
    let behind = c.peers[&3].applied_index();
    for i in 0..20u64 {
        assert_eq!(
            outcome(&c.propose(1, put(&format!("j{i}"), 100 + i))),
            Some(Ok(()))
        );
    }
    assert!(c.peers[&1].first_log_index() > behind + 1);
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

#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(u64, String)>>,
}

impl ApplyObserver for Recorder {
    fn progress(&self, _region: u64) -> Option<u64> {
        self.seen.lock().unwrap().last().map(|(i, _)| *i)
    }

    fn on_applied(&self, _region: u64, index: u64, _term: u64, applied: &Applied<'_>) {
        let kind = match applied {
            Applied::Command { ok, .. } => format!("command ok={ok}"),
            Applied::ConfChange(cs) => {
                format!("conf voters={:?} learners={:?}", cs.voters, cs.learners)
            }
            Applied::Split { right, .. } => format!("split off region {}", right.id),
            Applied::Empty => "empty".into(),
            Applied::Opaque => "opaque".into(),
        };
        self.seen.lock().unwrap().push((index, kind));
    }
}

#[test]
fn a_learner_receives_everything_and_never_votes() {
    let mut c = Cluster::memory(&[1, 2, 3], &[4]);
    let recorder = Arc::new(Recorder::default());
    c.peers.get_mut(&4).unwrap().observe(recorder.clone());
    c.elect(1);
    assert_eq!(outcome(&c.propose(1, put("k", 10))), Some(Ok(())));
    c.assert_replicas_equal(&[1, 2, 3, 4]);
    let seen = recorder.seen.lock().unwrap().clone();
    let indexes: Vec<u64> = seen.iter().map(|(i, _)| *i).collect();
    assert_eq!(
        indexes,
        (INIT + 1..=INIT + indexes.len() as u64).collect::<Vec<_>>(),
        "every entry after the initial state, in order"
    );
    assert_eq!(seen.last().unwrap().1, "command ok=true");
    assert_eq!(
        c.peers[&4].observer_applied(),
        Some(c.peers[&4].applied_index()),
        "progress is reported"
    );
    // With the learner on the leader's side, the leader still lacks a quorum.
    c.partition(&[1, 4], &[2, 3]);
    let stuck = c.propose(1, put("j", 20));
    c.tick(2);
    assert_eq!(outcome(&stuck), None);
    // And the learner cannot become leader.
    let _ = c.peers.get_mut(&4).unwrap().campaign();
    c.pump();
    assert!(!c.peers[&4].is_leader());
}

/// An observer that keeps a copy of the region's data from what a peer
/// that keeps none hands it: each command's writes, and each snapshot's
/// data in place of the range it covers.
#[derive(Default)]
struct Mirror {
    engine: MemoryEngine,
    snapshots: Mutex<Vec<u64>>,
    /// Set when the copy is lost: the peer should ask for a snapshot.
    lost: std::sync::atomic::AtomicBool,
}

impl Mirror {
    /// Loses the copy (as a replica that started without one).
    fn lose(&self) {
        let mut batch = duet_storage::engine::WriteBatch::new();
        for (cf, key, _) in dump_engine(&self.engine) {
            batch.delete(cf, key);
        }
        self.engine.write(&batch, Default::default()).unwrap();
        self.lost.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl ApplyObserver for Mirror {
    fn on_applied(&self, _region: u64, _index: u64, _term: u64, applied: &Applied<'_>) {
        if let Applied::Command { ok: true, writes } = applied {
            let batch = duet_storage::engine::WriteBatch {
                modifies: writes.to_vec(),
            };
            self.engine.write(&batch, Default::default()).unwrap();
        }
    }

    fn on_snapshot(&self, _region: u64, index: u64, _term: u64, installed: &Installed<'_>) {
        let (start, end) = installed.region.data_bounds();
        let mut batch = duet_storage::engine::WriteBatch::new();
        for (cf, key, _) in dump_engine(&self.engine) {
            if key >= start && end.as_ref().is_none_or(|e| &key < e) {
                batch.delete(cf, key);
            }
        }
        batch.modifies.extend(installed.data.iter().cloned());
        self.engine.write(&batch, Default::default()).unwrap();
        self.snapshots.lock().unwrap().push(index);
        self.lost.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    fn wants_snapshot(&self, _region: &crate::region::Region) -> bool {
        self.lost.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn a_learner_that_keeps_no_data_hands_its_observers_everything_the_voters_store() {
    let engines: BTreeMap<u64, Arc<MemoryEngine>> = (1..=3)
        .map(|id| (id, Arc::new(MemoryEngine::new())))
        .collect();
    let mut c = Cluster::open(engines, &[1, 2, 3], &[4]);
    let e4 = Arc::new(MemoryEngine::new());
    let mut p4 = Peer::open(
        Arc::clone(&e4),
        REGION,
        4,
        &[1, 2, 3],
        &[4],
        &PeerConfig {
            stores_data: false,
            ..config(4)
        },
        &crate::logger(),
    )
    .unwrap();
    let mirror = Arc::new(Mirror::default());
    p4.observe(mirror.clone());
    c.engines.insert(4, e4);
    c.peers.insert(4, p4);
    for p in c.peers.values_mut() {
        p.set_log_gc_threshold(5);
    }
    c.elect(1);

    // By log: committed versions, a long value and a live lock.
    assert_eq!(outcome(&c.propose(1, put("a", 10))), Some(Ok(())));
    assert_eq!(outcome(&c.propose(1, commit("a", 10, 11))), Some(Ok(())));
    let long = Prewrite {
        mutations: vec![Mutation::new(Op::Put, b"long", vec![7u8; 300])],
        primary: b"long".to_vec(),
        start_ts: 12,
        lock_ttl: 3000,
        ..Default::default()
    };
    assert_eq!(outcome(&c.propose(1, long.into())), Some(Ok(())));
    assert_eq!(outcome(&c.propose(1, commit("long", 12, 13))), Some(Ok(())));
    assert_eq!(outcome(&c.propose(1, put("b", 14))), Some(Ok(())));
    assert_eq!(c.peers[&4].applied_index(), c.peers[&1].applied_index());
    assert_eq!(
        dump_engine(&mirror.engine),
        c.dump(1),
        "the observer's copy"
    );
    assert!(c.dump(4).is_empty(), "the learner's engine holds no data");
    assert!(
        crate::region::Region::load(c.engines[&4].as_ref(), REGION)
            .unwrap()
            .is_some_and(|r| r == *c.peers[&1].region()),
        "but its own Raft state and descriptor"
    );

    // By snapshot: the learner misses entries the leader compacts away.
    c.partition(&[4], &[1, 2, 3]);
    for i in 0..20u64 {
        let key = format!("k{i:02}");
        assert_eq!(outcome(&c.propose(1, put(&key, 100 + 2 * i))), Some(Ok(())));
        let done = commit(&key, 100 + 2 * i, 101 + 2 * i);
        assert_eq!(outcome(&c.propose(1, done)), Some(Ok(())));
    }
    assert!(c.peers[&1].first_log_index() > c.peers[&4].applied_index() + 1);
    c.heal();
    c.tick(4);
    assert_eq!(c.peers[&4].applied_index(), c.peers[&1].applied_index());
    assert_eq!(mirror.snapshots.lock().unwrap().len(), 1, "one snapshot");
    assert_eq!(dump_engine(&mirror.engine), c.dump(1), "after the snapshot");
    assert!(c.dump(4).is_empty(), "still no data on the learner");

    // Then by log again, and reads through the learner wait for its apply.
    assert_eq!(outcome(&c.propose(1, commit("b", 14, 15))), Some(Ok(())));
    let r = read_index(&mut c, 4);
    let index = r.lock().unwrap().take().expect("answered").unwrap();
    assert!(index <= c.peers[&4].applied_index());
    assert_eq!(dump_engine(&mirror.engine), c.dump(1), "after the snapshot");

    // An observer that lost its copy asks for a snapshot though the log
    // would do; the learner takes no entries until it arrives.
    mirror.lose();
    assert_eq!(outcome(&c.propose(1, put("c", 16))), Some(Ok(())));
    let asked_at = c.peers[&4].applied_index();
    c.tick(3);
    assert_eq!(mirror.snapshots.lock().unwrap().len(), 2, "asked for");
    assert!(*mirror.snapshots.lock().unwrap().last().unwrap() >= asked_at);
    assert_eq!(dump_engine(&mirror.engine), c.dump(1), "the copy is back");
    assert_eq!(outcome(&c.propose(1, commit("c", 16, 17))), Some(Ok(())));
    c.tick(3);
    assert_eq!(mirror.snapshots.lock().unwrap().len(), 2, "by log again");
    assert_eq!(c.peers[&4].applied_index(), c.peers[&1].applied_index());
    assert_eq!(dump_engine(&mirror.engine), c.dump(1));

    // A learner never leads, so it never has to build a snapshot.
    let _ = c.peers.get_mut(&4).unwrap().campaign();
    c.pump();
    assert!(!c.peers[&4].is_leader());
}

#[test]
fn learners_join_through_a_conf_change() {
    let mut engines: BTreeMap<u64, Arc<MemoryEngine>> = BTreeMap::new();
    for id in [1, 2, 3] {
        engines.insert(id, Arc::new(MemoryEngine::new()));
    }
    let mut c = Cluster::open(engines, &[1, 2, 3], &[]);
    c.elect(1);
    assert_eq!(outcome(&c.propose(1, put("k", 10))), Some(Ok(())));
    // A new, empty peer 4, added as a learner. It starts knowing the new
    // membership and receives the whole log (joining through a data snapshot
    // is not built yet).
    let e4 = Arc::new(MemoryEngine::new());
    let p4 = Peer::open(
        Arc::clone(&e4),
        REGION,
        4,
        &[1, 2, 3],
        &[4],
        &config(4),
        &crate::logger(),
    )
    .unwrap();
    c.engines.insert(4, e4);
    c.peers.insert(4, p4);
    let cc = conf_change(&[(ConfChangeType::AddLearnerNode, 4)]);
    c.peers
        .get_mut(&1)
        .unwrap()
        .propose_conf_change(cc)
        .unwrap();
    c.pump();
    c.tick(4);
    c.assert_replicas_equal(&[1, 2, 3, 4]);
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

#[test]
fn gc_runs_through_the_log_on_every_replica() {
    let mut c = Cluster::memory(&[1, 2, 3], &[]);
    c.elect(1);
    for (start, commit_ts) in [(10, 11), (20, 21)] {
        assert_eq!(outcome(&c.propose(1, put("k", start))), Some(Ok(())));
        assert_eq!(
            outcome(&c.propose(1, commit("k", start, commit_ts))),
            Some(Ok(()))
        );
    }
    let versions = |c: &Cluster<MemoryEngine>, id| {
        c.dump(id)
            .iter()
            .filter(|(cf, _, _)| *cf == Cf::Write)
            .count()
    };
    assert_eq!(versions(&c, 1), 2);
    let gc = duet_storage::txn::commands::Gc {
        safe_point: 30,
        start: vec![],
        end: vec![],
    };
    assert_eq!(outcome(&c.propose(1, gc.into())), Some(Ok(())));
    for id in [1, 2, 3] {
        assert_eq!(
            versions(&c, id),
            1,
            "replica {id} kept only the newest version"
        );
    }
    c.assert_replicas_equal(&[1, 2, 3]);
}

type ReadOutcome = Arc<Mutex<Option<crate::Result<u64>>>>;

fn read_index(c: &mut Cluster<MemoryEngine>, id: u64) -> ReadOutcome {
    read_index_at(c, id, Instant::now())
}

fn read_index_at(c: &mut Cluster<MemoryEngine>, id: u64, now: Instant) -> ReadOutcome {
    let out = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&out);
    c.peers
        .get_mut(&id)
        .unwrap()
        .read_index(Box::new(move |r| *slot.lock().unwrap() = Some(r)), now);
    c.pump();
    out
}

#[test]
fn a_sole_voter_reads_locally_once_it_applied_its_own_term() {
    let mut c = Cluster::memory(&[1], &[2]);
    assert_eq!(c.peers[&1].lease(), Lease::None, "not leader yet");
    c.elect(1);
    assert_eq!(c.peers[&1].lease(), Lease::Forever);
    assert_eq!(
        c.peers[&2].lease(),
        Lease::None,
        "a learner never reads locally"
    );
}

#[test]
fn a_confirmed_read_index_gives_the_leader_a_lease_that_ends_with_its_leadership() {
    let mut c = Cluster::memory(&[1, 2, 3], &[]);
    c.elect(1);
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    assert_eq!(c.peers[&1].lease(), Lease::None, "nothing confirmed yet");
    let r = read_index_at(&mut c, 1, t0);
    assert!(r.lock().unwrap().take().expect("answered").is_ok());
    let lease = c.peers[&1].lease();
    assert_eq!(lease, Lease::Until(t0 + LEASE));
    assert!(lease.covers(t0 + ms(999)) && !lease.covers(t0 + LEASE));
    assert_eq!(c.peers[&2].lease(), Lease::None, "followers ask the leader");

    // Renewal: a fresh lease is left alone, one past its half is renewed.
    c.peers.get_mut(&1).unwrap().renew_lease(t0 + ms(400));
    c.pump();
    assert_eq!(c.peers[&1].lease(), Lease::Until(t0 + LEASE));
    c.peers.get_mut(&1).unwrap().renew_lease(t0 + ms(600));
    c.pump();
    assert_eq!(c.peers[&1].lease(), Lease::Until(t0 + ms(1600)));

    // Cut off, the leader cannot renew: its lease runs out, and it steps
    // down (check-quorum) before the others elect a successor.
    c.partition(&[1], &[2, 3]);
    c.peers.get_mut(&1).unwrap().renew_lease(t0 + ms(1200));
    c.pump();
    assert_eq!(c.peers[&1].lease(), Lease::Until(t0 + ms(1600)));
    c.tick(30);
    let next = *[2, 3]
        .iter()
        .find(|id| c.peers[id].is_leader())
        .expect("the majority elected a leader");
    assert_eq!(
        c.peers[&1].lease(),
        Lease::None,
        "the old leader stepped down"
    );
    assert_eq!(
        c.peers[&next].lease(),
        Lease::None,
        "a new leader has no lease before a confirmed read"
    );
    let t1 = t0 + ms(5000);
    read_index_at(&mut c, next, t1);
    assert_eq!(c.peers[&next].lease(), Lease::Until(t1 + LEASE));
}

#[test]
fn read_index_waits_until_the_reader_applied_what_was_committed() {
    let mut c = Cluster::memory(&[1, 2, 3], &[4]);
    c.elect(1);
    c.partition(&[4], &[1, 2, 3]);
    assert_eq!(outcome(&c.propose(1, put("k", 10))), Some(Ok(())));
    let committed = c.peers[&1].commit_index();
    assert!(
        c.peers[&4].applied_index() < committed,
        "the learner is behind"
    );
    c.heal();
    // The learner asks the leader, then catches up before answering.
    let r = read_index(&mut c, 4);
    let index = r.lock().unwrap().take().expect("answered").unwrap();
    assert!(index >= committed);
    assert!(c.peers[&4].applied_index() >= index);
    c.assert_replicas_equal(&[1, 4]);
    // The leader answers for itself.
    let r = read_index(&mut c, 1);
    assert!(r.lock().unwrap().take().expect("answered").unwrap() >= committed);
}

#[test]
fn a_leader_without_quorum_cannot_confirm_a_read_index() {
    let mut c = Cluster::memory(&[1, 2, 3], &[]);
    c.elect(1);
    assert_eq!(outcome(&c.propose(1, put("k", 10))), Some(Ok(())));
    c.partition(&[1], &[2, 3]);
    let r = read_index(&mut c, 1);
    c.tick(2);
    assert!(r.lock().unwrap().is_none(), "no quorum, no read index");
}

#[test]
fn a_follower_behind_the_compacted_log_catches_up_by_snapshot() {
    let engines: BTreeMap<u64, Arc<MemoryEngine>> = (1..=3)
        .map(|id| (id, Arc::new(MemoryEngine::new())))
        .collect();
    let mut c = Cluster::open(engines, &[1, 2, 3], &[]);
    for p in c.peers.values_mut() {
        p.set_log_gc_threshold(5);
    }
    c.elect(1);
    c.partition(&[3], &[1, 2]);
    let limit = duet_storage::txn::commands::TsoLimit { limit: 777 };
    assert_eq!(outcome(&c.propose(1, limit.into())), Some(Ok(())));
    for i in 0..20u64 {
        assert_eq!(
            outcome(&c.propose(1, put(&format!("k{i:02}"), 100 + i))),
            Some(Ok(()))
        );
    }
    assert!(
        c.peers[&1].first_log_index() > c.peers[&3].applied_index() + 1,
        "the leader compacted past 3"
    );
    c.heal();
    c.tick(4);
    c.assert_replicas_equal(&[1, 2, 3]);
    assert_eq!(c.peers[&3].applied_index(), c.peers[&1].applied_index());
    assert_eq!(
        c.peers[&3].region(),
        c.peers[&1].region(),
        "the snapshot carried the region"
    );
    // And the follower keeps following by log afterwards.
    assert_eq!(outcome(&c.propose(1, put("after", 500))), Some(Ok(())));
    c.assert_replicas_equal(&[1, 2, 3]);
}

#[test]
fn a_log_of_large_entries_is_compacted_by_size() {
    let engines: BTreeMap<u64, Arc<MemoryEngine>> = (1..=3)
        .map(|id| (id, Arc::new(MemoryEngine::new())))
        .collect();
    let mut c = Cluster::open(engines, &[1, 2, 3], &[]);
    for p in c.peers.values_mut() {
        p.set_log_gc_bytes(1_000);
    }
    c.elect(1);
    let first = c.peers[&1].first_log_index();
    for i in 0..4u64 {
        assert_eq!(
            outcome(&c.propose(1, put(&format!("k{i}"), 100 + i))),
            Some(Ok(()))
        );
    }
    // Few small entries: far below both limits.
    assert_eq!(c.peers[&1].first_log_index(), first);
    let big = |i: u64| {
        let key = format!("big{i}").into_bytes();
        Prewrite {
            mutations: vec![Mutation::new(Op::Put, key.clone(), vec![7; 600])],
            primary: key,
            start_ts: 1_000 + i,
            lock_ttl: 3_000,
            for_update_ts: 0,
            pessimistic: Vec::new(),
            min_commit_ts: 0,
        }
    };
    for i in 0..3u64 {
        assert_eq!(outcome(&c.propose(1, big(i).into())), Some(Ok(())));
    }
    c.tick(2);
    for id in [1, 2, 3] {
        assert!(
            c.peers[&id].first_log_index() > first + 4,
            "peer {id} compacted its log by size"
        );
    }
    c.assert_replicas_equal(&[1, 2, 3]);
}

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
fn a_read_index_sent_before_the_new_leader_commits_is_retried() {
    let mut c = Cluster::memory(&[1], &[]);
    c.peers.get_mut(&1).unwrap().campaign().unwrap();
    // Not pumped yet: the leader has not committed in its term and raft-rs
    // drops the read; the peer sends it again after a few ticks.
    let out = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&out);
    c.peers.get_mut(&1).unwrap().read_index(
        Box::new(move |r| *slot.lock().unwrap() = Some(r)),
        Instant::now(),
    );
    c.pump();
    assert!(out.lock().unwrap().is_none(), "dropped the first time");
    c.tick(3);
    assert!(
        matches!(*out.lock().unwrap(), Some(Ok(i)) if i == INIT + 1),
        "answered after the retry"
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

mod chaos {
    //! A seeded, hand-driven network that drops, delays and reorders
    //! messages and partitions peers at random, while proposals keep coming.
    //! Safety: replicas that applied the same index hold the same data, and
    //! no acknowledged proposal is ever lost.

    use rand::rngs::StdRng;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};

    use super::*;

    struct Chaos {
        c: Cluster<MemoryEngine>,
        rng: StdRng,
        held: Vec<Message>,
        /// Per mille of messages dropped and delayed.
        drop: u32,
        delay: u32,
    }

    impl Chaos {
        /// One round: every Ready handled, its messages dropped, delayed or
        /// delivered in random order, and some delayed ones released.
        fn round(&mut self) {
            let mut msgs: Vec<Message> = Vec::new();
            for p in self.c.peers.values_mut() {
                msgs.extend(p.handle_ready().unwrap());
            }
            if self.rng.random_ratio(1, 3) {
                let n = self.rng.random_range(0..=self.held.len());
                msgs.extend(self.held.drain(..n));
            }
            msgs.shuffle(&mut self.rng);
            for m in msgs {
                let roll = self.rng.random_range(0..1000);
                if roll < self.drop || self.c.cut.contains(&(m.from, m.to)) {
                    continue;
                }
                if roll < self.drop + self.delay {
                    self.held.push(m);
                    continue;
                }
                if let Some(p) = self.c.peers.get_mut(&m.to) {
                    let _ = p.step(m);
                }
            }
        }

        /// Replicas at the same applied index must hold identical data.
        fn check_safety(&self) {
            let ids: Vec<u64> = self.c.peers.keys().copied().collect();
            for (i, a) in ids.iter().enumerate() {
                for b in &ids[i + 1..] {
                    if self.c.peers[a].applied_index() == self.c.peers[b].applied_index() {
                        assert_eq!(
                            self.c.dump(*a),
                            self.c.dump(*b),
                            "peers {a} and {b} diverged"
                        );
                    }
                }
            }
        }
    }

    fn run(seed: u64) {
        let mut chaos = Chaos {
            c: Cluster::memory(&[1, 2, 3], &[]),
            rng: StdRng::seed_from_u64(seed),
            held: Vec::new(),
            drop: 100,
            delay: 150,
        };
        let mut acked: Vec<(String, Outcome)> = Vec::new();
        for step in 0..400u64 {
            match chaos.rng.random_range(0..10) {
                0..=3 => {
                    if let Some(leader) = chaos
                        .c
                        .peers
                        .values()
                        .find(|p| p.is_leader())
                        .map(|p| p.id())
                    {
                        let key = format!("k{seed}-{step}");
                        let out: Outcome = Arc::new(Mutex::new(None));
                        let slot = Arc::clone(&out);
                        chaos.c.peers.get_mut(&leader).unwrap().propose(
                            &put(&key, 1000 + step),
                            Box::new(move |r| *slot.lock().unwrap() = Some(r)),
                        );
                        acked.push((key, out));
                    }
                }
                4 => {
                    let lone = chaos.rng.random_range(1..=3u64);
                    let others: Vec<u64> = (1..=3).filter(|i| *i != lone).collect();
                    chaos.c.partition(&[lone], &others);
                }
                5 => chaos.c.heal(),
                _ => {}
            }
            for p in chaos.c.peers.values_mut() {
                p.tick();
            }
            chaos.round();
            chaos.check_safety();
        }
        // Calm: no faults, everything delivered, until all replicas agree.
        chaos.c.heal();
        chaos.drop = 0;
        chaos.delay = 0;
        for _ in 0..200 {
            for p in chaos.c.peers.values_mut() {
                p.tick();
            }
            chaos.round();
            let applied: Vec<u64> = chaos.c.peers.values().map(|p| p.applied_index()).collect();
            if chaos.held.is_empty()
                && applied.windows(2).all(|w| w[0] == w[1])
                && chaos.c.peers.values().any(|p| p.is_leader())
            {
                break;
            }
        }
        chaos.c.assert_replicas_equal(&[1, 2, 3]);
        let data = chaos.c.dump(1);
        let mut ok = 0;
        for (key, out) in &acked {
            if let Some(Ok(_)) = &*out.lock().unwrap() {
                ok += 1;
                let present = data.iter().any(|(cf, k, _)| {
                    *cf == Cf::Lock && duet_storage::mvcc::decode_key(k).unwrap() == key.as_bytes()
                });
                assert!(present, "seed {seed}: acknowledged {key} was lost");
            }
        }
        assert!(
            ok > 10,
            "seed {seed}: the cluster made progress ({ok} acknowledged)"
        );
        eprintln!(
            "chaos seed {seed}: {ok} of {} proposals acknowledged",
            acked.len()
        );
    }

    #[test]
    fn drops_delays_reorders_and_partitions_lose_nothing() {
        for seed in 0..6 {
            run(seed);
        }
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

mod split {
    //! Whole stores (every region of each node) driven by hand: splits,
    //! routing by range, a store that missed a split catching up by
    //! snapshot, and restarts that rediscover every region.

    use super::*;
    use crate::region::Region;
    use crate::regions::{FIRST_REGION, Regions};

    struct Stores {
        stores: BTreeMap<u64, Regions<MemoryEngine>>,
        engines: BTreeMap<u64, Arc<MemoryEngine>>,
        cut: HashSet<(u64, u64)>,
        /// Messages of (region, to store) that are dropped.
        hold: HashSet<(u64, u64)>,
        gc_threshold: u64,
    }

    impl Stores {
        fn new(ids: &[u64], gc_threshold: u64) -> Self {
            let engines = ids
                .iter()
                .map(|id| (*id, Arc::new(MemoryEngine::new())))
                .collect();
            Stores::open(engines, ids, gc_threshold)
        }

        fn open(engines: BTreeMap<u64, Arc<MemoryEngine>>, ids: &[u64], gc_threshold: u64) -> Self {
            let stores = engines
                .iter()
                .map(|(id, e)| {
                    let mut cfg = config(*id);
                    cfg.log_gc_threshold = gc_threshold;
                    let r = Regions::open(Arc::clone(e), *id, ids, &[], cfg, vec![]).unwrap();
                    (*id, r)
                })
                .collect();
            Stores {
                stores,
                engines,
                cut: HashSet::new(),
                hold: HashSet::new(),
                gc_threshold,
            }
        }

        /// Voters `ids` and a learner store `learner` that keeps no data,
        /// observed by `observer`.
        fn with_learner(ids: &[u64], learner: u64, observer: Arc<dyn ApplyObserver>) -> Self {
            let mut stores = BTreeMap::new();
            let mut engines = BTreeMap::new();
            for id in ids.iter().copied().chain([learner]) {
                let engine = Arc::new(MemoryEngine::new());
                let mut cfg = config(id);
                cfg.log_gc_threshold = 5;
                cfg.stores_data = id != learner;
                let observers = if id == learner {
                    vec![Arc::clone(&observer)]
                } else {
                    vec![]
                };
                let r = Regions::open(Arc::clone(&engine), id, ids, &[learner], cfg, observers)
                    .unwrap();
                stores.insert(id, r);
                engines.insert(id, engine);
            }
            Stores {
                stores,
                engines,
                cut: HashSet::new(),
                hold: HashSet::new(),
                gc_threshold: 5,
            }
        }

        fn pump(&mut self) {
            for _ in 0..1000 {
                let mut msgs = Vec::new();
                for s in self.stores.values_mut() {
                    msgs.extend(s.handle_ready().unwrap());
                }
                if msgs.is_empty() {
                    return;
                }
                for (region_id, batch) in msgs {
                    for m in batch {
                        if self.cut.contains(&(m.from, m.to))
                            || self.hold.contains(&(region_id, m.to))
                        {
                            continue;
                        }
                        if let Some(s) = self.stores.get_mut(&m.to) {
                            s.step(region_id, m).unwrap();
                        }
                    }
                }
                // New peers (from splits or messages) compact like the rest.
                let threshold = self.gc_threshold;
                for s in self.stores.values_mut() {
                    for p in s.peers_mut() {
                        p.set_log_gc_threshold(threshold);
                    }
                }
            }
            panic!("stores did not settle");
        }

        fn tick(&mut self, n: usize) {
            for _ in 0..n {
                for s in self.stores.values_mut() {
                    s.tick(std::time::Instant::now());
                }
                self.pump();
            }
        }

        fn peer(&mut self, store: u64, region: u64) -> &mut Peer<MemoryEngine> {
            self.stores
                .get_mut(&store)
                .unwrap()
                .get_mut(region)
                .unwrap()
        }

        fn propose(&mut self, store: u64, region: u64, cmd: Command) -> Outcome {
            let out: Outcome = Arc::new(Mutex::new(None));
            let slot = Arc::clone(&out);
            self.peer(store, region)
                .propose(&cmd, Box::new(move |r| *slot.lock().unwrap() = Some(r)));
            self.pump();
            out
        }

        fn split(&mut self, store: u64, region: u64, key: &[u8], new_id: u64) -> Outcome {
            let out: Outcome = Arc::new(Mutex::new(None));
            let slot = Arc::clone(&out);
            self.peer(store, region).propose_split(
                key,
                new_id,
                Box::new(move |r| *slot.lock().unwrap() = Some(r)),
            );
            self.pump();
            out
        }

        /// Commits `key` through the region that holds it, as seen by `store`.
        fn write(&mut self, store: u64, key: &str, ts: u64) {
            let region = self.stores[&store]
                .view()
                .locate(key.as_bytes())
                .unwrap()
                .id;
            assert_eq!(
                outcome(&self.propose(store, region, put(key, ts))),
                Some(Ok(()))
            );
            assert_eq!(
                outcome(&self.propose(store, region, commit(key, ts, ts + 1))),
                Some(Ok(()))
            );
        }

        fn dump(&self, id: u64) -> Vec<(Cf, Vec<u8>, Vec<u8>)> {
            dump_engine(self.engines[&id].as_ref())
        }

        /// (id, start, end, version) of every region a store applied.
        fn ranges(&self, id: u64) -> Vec<(u64, String, String, u64)> {
            self.stores[&id]
                .view()
                .regions()
                .iter()
                .map(|r: &Region| {
                    (
                        r.id,
                        String::from_utf8_lossy(&r.start_key).into_owned(),
                        String::from_utf8_lossy(&r.end_key).into_owned(),
                        r.epoch().version,
                    )
                })
                .collect()
        }
    }

    fn elect(s: &mut Stores, store: u64, region: u64) {
        s.peer(store, region).campaign().unwrap();
        s.pump();
        assert!(s.peer(store, region).is_leader());
    }

    #[test]
    fn a_split_creates_a_region_on_every_store_led_by_the_same_leader() {
        let mut s = Stores::new(&[1, 2, 3], 4096);
        elect(&mut s, 2, FIRST_REGION);
        s.write(2, "apple", 10);
        s.write(2, "zebra", 20);
        assert_eq!(outcome(&s.split(2, FIRST_REGION, b"m", 100)), Some(Ok(())));
        let expected = vec![
            (FIRST_REGION, String::new(), "m".to_string(), 2),
            (100, "m".to_string(), String::new(), 2),
        ];
        for id in [1, 2, 3] {
            assert_eq!(s.ranges(id), expected, "store {id}");
        }
        assert!(
            s.peer(2, 100).is_leader(),
            "the parent's leader leads the new region"
        );
        // Each region now takes only its own keys.
        s.write(2, "monkey", 30);
        s.write(2, "banana", 40);
        assert_eq!(
            s.peer(1, 100).applied_index(),
            s.peer(2, 100).applied_index()
        );
        match outcome(&s.propose(2, FIRST_REGION, put("yak", 50))) {
            Some(Err(e)) => assert!(e.contains("epoch"), "{e}"),
            other => panic!("a key of region 100 sent to region 1: {other:?}"),
        }
        // Routing by a stale view: refused alike on every replica, no writes.
        let before = s.dump(1);
        assert_eq!(s.dump(3), before);
        assert_eq!(s.dump(2), before);
        assert!(
            outcome(&s.split(2, FIRST_REGION, b"q", 101)).is_some_and(|r| r.is_err()),
            "q is no longer in region 1"
        );
    }

    #[test]
    fn a_learner_that_keeps_no_data_takes_a_split_by_log_though_it_hears_of_it_late() {
        let mirror = Arc::new(Mirror::default());
        let mut s = Stores::with_learner(&[1, 2, 3], 4, mirror.clone());
        elect(&mut s, 1, FIRST_REGION);
        s.write(1, "a0", 10);
        // The learner misses the split and the new region's first entries,
        // while the new region's leader keeps calling on it.
        s.cut = [(4, 1), (4, 2), (4, 3), (1, 4), (2, 4), (3, 4)]
            .into_iter()
            .collect();
        assert_eq!(outcome(&s.split(1, FIRST_REGION, b"m", 100)), Some(Ok(())));
        s.write(1, "z0", 20);
        assert_eq!(
            s.ranges(4).len(),
            1,
            "the learner has not applied the split"
        );
        // Region 100's leader reaches it before the parent's log does.
        s.cut.clear();
        s.hold.insert((FIRST_REGION, 4));
        s.tick(4);
        s.hold.clear();
        s.tick(6);
        assert_eq!(s.ranges(4), s.ranges(1), "the learner holds both regions");
        assert!(
            mirror.snapshots.lock().unwrap().is_empty(),
            "and took them by log, not by snapshot"
        );
        assert_eq!(dump_engine(&mirror.engine), s.dump(1));
        assert!(s.dump(4).is_empty(), "no data on the learner itself");
        s.write(1, "z1", 30);
        assert_eq!(
            s.peer(4, 100).applied_index(),
            s.peer(1, 100).applied_index()
        );
        assert_eq!(dump_engine(&mirror.engine), s.dump(1));
    }

    #[test]
    fn a_learner_that_keeps_no_data_acknowledges_entries_only_once_synced() {
        let mirror = Arc::new(Mirror::default());
        let mut s = Stores::with_learner(&[1, 2, 3], 4, mirror.clone());
        elect(&mut s, 1, FIRST_REGION);
        s.write(1, "a", 10);
        // One more entry, delivered to the learner store by hand.
        let done: Outcome = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&done);
        s.peer(1, FIRST_REGION).propose(
            &put("b", 20),
            Box::new(move |r| *slot.lock().unwrap() = Some(r)),
        );
        let appends: Vec<(u64, Message)> = s
            .stores
            .get_mut(&1)
            .unwrap()
            .handle_ready()
            .unwrap()
            .into_iter()
            .flat_map(|(r, msgs)| msgs.into_iter().map(move |m| (r, m)))
            .filter(|(_, m)| m.to == 4)
            .collect();
        assert!(!appends.is_empty());
        let learner = s.stores.get_mut(&4).unwrap();
        for (r, m) in appends {
            learner.step(r, m).unwrap();
        }
        let mut sent = Vec::new();
        learner
            .handle_ready_with(&mut |_, msgs| sent.extend(msgs))
            .unwrap();
        let acks = |msgs: &[Message]| {
            msgs.iter()
                .filter(|m| m.get_msg_type() == raft::prelude::MessageType::MsgAppendResponse)
                .count()
        };
        assert_eq!(acks(&sent), 0, "nothing acknowledged before the sync");
        let due = learner.acks_due().expect("acknowledgements held");
        learner
            .flush_acks(due - Duration::from_millis(1), false, &mut |_, msgs| {
                sent.extend(msgs)
            })
            .unwrap();
        assert_eq!(acks(&sent), 0, "not due yet");
        learner
            .flush_acks(due, false, &mut |_, msgs| sent.extend(msgs))
            .unwrap();
        assert!(acks(&sent) > 0, "acknowledged once synced");
        assert!(learner.acks_due().is_none());
        s.pump();
        s.tick(2);
        assert!(outcome(&done).is_some());
        assert_eq!(dump_engine(&mirror.engine), s.dump(1));
    }

    #[test]
    fn a_store_that_missed_the_split_catches_up_on_both_regions_by_snapshot() {
        let mut s = Stores::new(&[1, 2, 3], 5);
        elect(&mut s, 1, FIRST_REGION);
        s.write(1, "a0", 10);
        s.write(1, "z0", 20);
        s.cut = [(3, 1), (1, 3), (3, 2), (2, 3)].into_iter().collect();
        assert_eq!(outcome(&s.split(1, FIRST_REGION, b"m", 100)), Some(Ok(())));
        // Enough that the leader stops keeping the log for store 3.
        for i in 0..16u64 {
            s.write(1, &format!("a{}", i + 1), 1000 + 10 * i);
            s.write(1, &format!("z{}", i + 1), 2000 + 10 * i);
        }
        assert_eq!(s.ranges(3).len(), 1, "store 3 missed the split");
        assert!(
            s.peer(1, FIRST_REGION).first_log_index() > s.peer(3, FIRST_REGION).applied_index() + 1,
            "region 1's log was compacted past store 3"
        );
        s.cut.clear();
        s.tick(6);
        assert_eq!(s.ranges(3), s.ranges(1));
        assert_eq!(s.dump(3), s.dump(1), "both ranges arrived by snapshot");
        assert_eq!(
            s.peer(3, 100).applied_index(),
            s.peer(1, 100).applied_index()
        );
        // And both regions replicate to store 3 by log from now on.
        s.write(1, "a99", 9000);
        s.write(1, "z99", 9100);
        assert_eq!(s.dump(3), s.dump(1));
    }

    #[test]
    fn a_lagging_store_applies_the_split_from_the_log_after_the_new_region_reached_it() {
        let mut s = Stores::new(&[1, 2, 3], 4096);
        elect(&mut s, 1, FIRST_REGION);
        s.write(1, "k", 10);
        // Store 3 hears region 100 before it applies the split that made it.
        s.cut = [(1, 3), (2, 3)].into_iter().collect();
        assert_eq!(outcome(&s.split(1, FIRST_REGION, b"m", 100)), Some(Ok(())));
        s.write(1, "x", 20);
        s.cut.clear();
        s.tick(6);
        assert_eq!(s.ranges(3), s.ranges(1));
        assert_eq!(s.dump(3), s.dump(1));
        s.write(1, "y", 30);
        assert_eq!(s.dump(3), s.dump(1));
    }

    #[test]
    fn every_region_is_rediscovered_on_restart() {
        let mut s = Stores::new(&[1, 2, 3], 4096);
        elect(&mut s, 1, FIRST_REGION);
        assert_eq!(outcome(&s.split(1, FIRST_REGION, b"g", 100)), Some(Ok(())));
        assert_eq!(outcome(&s.split(1, 100, b"p", 200)), Some(Ok(())));
        s.write(1, "c", 10);
        s.write(1, "h", 20);
        s.write(1, "t", 30);
        let before: Vec<_> = [1, 2, 3]
            .iter()
            .map(|id| (s.ranges(*id), s.dump(*id)))
            .collect();
        assert_eq!(before[0].0.len(), 3);
        let engines = std::mem::take(&mut s.engines);
        drop(s);
        let mut s = Stores::open(engines, &[1, 2, 3], 4096);
        let after: Vec<_> = [1, 2, 3]
            .iter()
            .map(|id| (s.ranges(*id), s.dump(*id)))
            .collect();
        assert_eq!(after, before);
        // The regions elect and serve again.
        s.tick(30);
        for region in [FIRST_REGION, 100, 200] {
            let leaders = [1, 2, 3]
                .iter()
                .filter(|id| s.peer(**id, region).is_leader())
                .count();
            assert_eq!(leaders, 1, "region {region} has one leader");
        }
    }
}

#[test]
fn a_region_past_its_key_limit_splits_in_the_middle() {
    use crate::regions::find_split_key;
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
    let fits = find_split_key(engine, &region, 10).unwrap();
    assert_eq!((fits.split_key, fits.keys), (None, 10), "10 keys fit");
    let too_many = find_split_key(engine, &region, 9).unwrap();
    assert_eq!(
        (too_many.split_key, too_many.keys),
        (Some(b"k5".to_vec()), 10),
        "the sixth of ten keys starts the second half"
    );
    let (_, right) = region.split(b"k5", 2).unwrap();
    assert_eq!(
        find_split_key(engine, &right, 4).unwrap().split_key,
        Some(b"k7".to_vec())
    );
}
