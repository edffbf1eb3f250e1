//! The Raft log: what each entry did read back from it, how long it is
//! kept (for subscribers and slow peers), compaction by count and size,
//! and catching up by snapshot past it.

use super::*;

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
            try_one_pc: false,
            max_commit_ts: 0,
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
