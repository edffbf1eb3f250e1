//! Learners: they receive every entry, never vote, join through a
//! membership change, and hand their observers what the voters store.

use super::read::read_index;
use super::*;

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
pub(super) struct Mirror {
    pub(super) engine: MemoryEngine,
    pub(super) snapshots: Mutex<Vec<u64>>,
    /// Set when the copy is lost: the peer should ask for a snapshot.
    pub(super) lost: std::sync::atomic::AtomicBool,
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

/// Voters 1–3 and learner 4, a peer that keeps no data and hands it to a
/// [`Mirror`]; every peer compacts its log past `gc_threshold` entries;
/// 1 leads.
fn mirrored_learner(gc_threshold: u64) -> (Cluster<MemoryEngine>, Arc<Mirror>) {
    let engines: BTreeMap<u64, Arc<MemoryEngine>> = (1..=3)
        .map(|id| (id, Arc::new(MemoryEngine::new())))
        .collect();
    let mut c = Cluster::open(engines, &[1, 2, 3], &[4]);
    let e4 = Arc::new(MemoryEngine::new());
    let learner = PeerConfig {
        stores_data: false,
        ..config(4)
    };
    let open = Peer::open(
        Arc::clone(&e4),
        REGION,
        4,
        &[1, 2, 3],
        &[4],
        &learner,
        &crate::logger(),
    );
    let mut p4 = open.unwrap();
    let mirror = Arc::new(Mirror::default());
    p4.observe(mirror.clone());
    c.engines.insert(4, e4);
    c.peers.insert(4, p4);
    for p in c.peers.values_mut() {
        p.set_log_gc_threshold(gc_threshold);
    }
    c.elect(1);
    (c, mirror)
}

#[test]
fn a_learner_that_keeps_no_data_hands_its_observers_everything_the_voters_store() {
    let (mut c, mirror) = mirrored_learner(5);

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

/// Found by the fault suite (a node's columnar learner store aborted with
/// "snapshot out of date"): a learner whose observers lost their copy asks
/// for a snapshot at its last index; when its log is empty right after an
/// earlier snapshot and the leader has applied no further, the new one
/// comes at exactly the index the log stands at. raft-rs takes it (a
/// requested snapshot skips the term check); the learner must install it
/// for its observers instead of failing the store.
#[test]
fn a_requested_snapshot_at_the_compacted_index_is_installed() {
    let (mut c, mirror) = mirrored_learner(1);
    for i in 0..6u64 {
        let key = format!("k{i}");
        assert_eq!(outcome(&c.propose(1, put(&key, 10 + 2 * i))), Some(Ok(())));
        assert_eq!(
            outcome(&c.propose(1, commit(&key, 10 + 2 * i, 11 + 2 * i))),
            Some(Ok(()))
        );
    }
    c.tick(3);
    let at = c.peers[&1].applied_index();
    assert_eq!(c.peers[&4].applied_index(), at);
    // The observers lose their copy: a snapshot at `at` replaces the
    // learner's log, which now stands empty right after it.
    mirror.lose();
    c.tick(3);
    assert_eq!(*mirror.snapshots.lock().unwrap(), vec![at]);
    assert_eq!(c.peers[&4].first_log_index(), at + 1);
    // They lose it again before anything was written: the snapshot comes
    // at the very index the learner's log stands at.
    mirror.lose();
    c.tick(3);
    assert_eq!(c.peers[&1].applied_index(), at, "the leader is no further");
    assert_eq!(*mirror.snapshots.lock().unwrap(), vec![at, at]);
    assert_eq!(dump_engine(&mirror.engine), c.dump(1), "the copy is back");
    // And the log goes on from there.
    assert_eq!(outcome(&c.propose(1, put("after", 40))), Some(Ok(())));
    c.tick(3);
    assert_eq!(c.peers[&4].applied_index(), c.peers[&1].applied_index());
    assert_eq!(dump_engine(&mirror.engine), c.dump(1));
}
