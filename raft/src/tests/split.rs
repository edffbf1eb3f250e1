//! Whole stores (every region of each node) driven by hand: splits,
//! routing by range, a store that missed a split catching up by
//! snapshot, restarts that rediscover every region, and merges (see
//! [`super::merge`]).

use super::learner::Mirror;
use super::*;
use crate::region::Region;
use crate::regions::{FIRST_REGION, Regions};

pub(super) struct Stores {
    pub(super) stores: BTreeMap<u64, Regions<MemoryEngine>>,
    engines: BTreeMap<u64, Arc<MemoryEngine>>,
    cut: HashSet<(u64, u64)>,
    /// Messages of (region, to store) that are dropped.
    pub(super) hold: HashSet<(u64, u64)>,
    /// The commit index that messages of (region, to store) may tell at
    /// most: the store appends their entries but does not apply them.
    pub(super) freeze: BTreeMap<(u64, u64), u64>,
    gc_threshold: u64,
}

impl Stores {
    pub(super) fn new(ids: &[u64], gc_threshold: u64) -> Self {
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
            freeze: BTreeMap::new(),
            gc_threshold,
        }
    }

    /// Voters `ids` and a learner store `learner` that keeps no data,
    /// observed by `observer`.
    pub(super) fn with_learner(
        ids: &[u64],
        learner: u64,
        observer: Arc<dyn ApplyObserver>,
    ) -> Self {
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
            let r =
                Regions::open(Arc::clone(&engine), id, ids, &[learner], cfg, observers).unwrap();
            stores.insert(id, r);
            engines.insert(id, engine);
        }
        Stores {
            stores,
            engines,
            cut: HashSet::new(),
            hold: HashSet::new(),
            freeze: BTreeMap::new(),
            gc_threshold: 5,
        }
    }

    pub(super) fn pump(&mut self) {
        for _ in 0..1000 {
            let mut msgs = Vec::new();
            let mut notices = Vec::new();
            for (id, s) in self.stores.iter_mut() {
                msgs.extend(s.handle_ready().unwrap());
                notices.extend(s.take_tombstones().into_iter().map(|n| (*id, n)));
            }
            if msgs.is_empty() && notices.is_empty() {
                return;
            }
            for (from, (tag, to)) in notices {
                if !self.cut.contains(&(from, to))
                    && let Some(s) = self.stores.get_mut(&to)
                {
                    s.tombstone(tag).unwrap();
                }
            }
            for (tag, batch) in msgs {
                for mut m in batch {
                    let held = self.hold.contains(&(tag.region_id, m.to));
                    if self.cut.contains(&(m.from, m.to)) || held {
                        continue;
                    }
                    if let Some(&cap) = self.freeze.get(&(tag.region_id, m.to)) {
                        m.commit = m.commit.min(cap);
                    }
                    if let Some(s) = self.stores.get_mut(&m.to) {
                        s.step(tag, m).unwrap();
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

    pub(super) fn tick(&mut self, n: usize) {
        for _ in 0..n {
            for s in self.stores.values_mut() {
                s.tick(std::time::Instant::now());
            }
            self.pump();
        }
    }

    pub(super) fn peer(&mut self, store: u64, region: u64) -> &mut Peer<MemoryEngine> {
        self.stores
            .get_mut(&store)
            .unwrap()
            .get_mut(region)
            .unwrap()
    }

    pub(super) fn propose(&mut self, store: u64, region: u64, cmd: Command) -> Outcome {
        let out: Outcome = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&out);
        self.peer(store, region)
            .propose(&cmd, Box::new(move |r| *slot.lock().unwrap() = Some(r)));
        self.pump();
        out
    }

    pub(super) fn split(&mut self, store: u64, region: u64, key: &[u8], new_id: u64) -> Outcome {
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
    pub(super) fn write(&mut self, store: u64, key: &str, ts: u64) {
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

    pub(super) fn dump(&self, id: u64) -> Vec<(Cf, Vec<u8>, Vec<u8>)> {
        dump_engine(self.engines[&id].as_ref())
    }

    /// (id, start, end, version) of every region a store applied.
    pub(super) fn ranges(&self, id: u64) -> Vec<(u64, String, String, u64)> {
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

pub(super) fn elect(s: &mut Stores, store: u64, region: u64) {
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
    let appends: Vec<(crate::transport::RegionTag, Message)> = s
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

/// Removes `store` from `region` through `leader`, and lets it settle.
fn remove(s: &mut Stores, leader: u64, region: u64, store: u64) {
    let cc = conf_change(&[(ConfChangeType::RemoveNode, store)]);
    s.peer(leader, region).propose_conf_change(cc).unwrap();
    s.pump();
    // Long enough for a replica that missed its removal to ask for votes.
    s.tick(40);
}

/// The membership version at which `store` removed its replica of `region`.
pub(super) fn tombstone(s: &Stores, store: u64, region: u64) -> Option<u64> {
    let v = s.engines[&store]
        .get(Cf::Raft, &crate::keys::tombstone_key(region))
        .unwrap()?;
    Some(u64::from_be_bytes(v.try_into().unwrap()))
}

fn assert_destroyed(s: &Stores, store: u64, region: u64) {
    assert!(s.stores[&store].get(region).is_none(), "no peer left");
    assert!(
        s.stores[&store].view().get(region).is_none(),
        "not routed to"
    );
    assert_eq!(s.dump(store), vec![], "no data left");
    let leader_conf = s.stores[&1].view().get(region).unwrap().epoch().conf_ver;
    assert_eq!(tombstone(s, store, region), Some(leader_conf));
}

#[test]
fn a_removed_replica_is_destroyed_and_only_a_newer_membership_brings_it_back() {
    let mut s = Stores::new(&[1, 2, 3], 1000);
    elect(&mut s, 1, FIRST_REGION);
    s.write(1, "a", 10);
    let before = s.stores[&1]
        .view()
        .get(FIRST_REGION)
        .unwrap()
        .epoch()
        .conf_ver;
    remove(&mut s, 1, FIRST_REGION, 3);
    assert_destroyed(&s, 3, FIRST_REGION);
    assert!(!s.dump(1).is_empty(), "the members keep theirs");

    // A leader that still has the old membership cannot create it again.
    let stale = crate::transport::RegionTag {
        region_id: FIRST_REGION,
        conf_ver: before,
    };
    let heartbeat = Message {
        msg_type: raft::prelude::MessageType::MsgHeartbeat,
        from: 1,
        to: 3,
        term: 99,
        ..Default::default()
    };
    s.stores
        .get_mut(&3)
        .unwrap()
        .step(stale, heartbeat)
        .unwrap();
    assert!(s.stores[&3].get(FIRST_REGION).is_none());

    // Added again: a newer membership, a new replica, by snapshot.
    let cc = conf_change(&[(ConfChangeType::AddNode, 3)]);
    s.peer(1, FIRST_REGION).propose_conf_change(cc).unwrap();
    s.pump();
    s.tick(3);
    assert!(s.stores[&3].get(FIRST_REGION).is_some());
    assert_eq!(s.dump(3), s.dump(1), "the new replica has every key");
}

#[test]
fn a_replica_that_missed_its_removal_is_told_by_a_member() {
    let mut s = Stores::new(&[1, 2, 3], 1000);
    elect(&mut s, 1, FIRST_REGION);
    s.write(1, "a", 10);
    s.cut.extend([(1, 3), (3, 1), (2, 3), (3, 2)]);
    remove(&mut s, 1, FIRST_REGION, 3);
    assert!(s.stores[&3].get(FIRST_REGION).is_some(), "it has not heard");
    s.cut.clear();
    // Hearing from no leader, it asks for votes; a member answers with a
    // tombstone notice.
    s.tick(40);
    assert_destroyed(&s, 3, FIRST_REGION);
    assert!(
        s.peer(1, FIRST_REGION).is_leader(),
        "the leader was not disturbed"
    );
}
