//! Merges on whole stores driven by hand: a source region frozen by its
//! prepare and absorbed by its target on every store; a store that has the
//! source's last entries in its log but has not applied them applies them
//! before its target widens; the commit asked for only once every peer has
//! the prepare; a rollback once the target moved on; learner stores that
//! keep no data merge alike.

use super::learner::Mirror;
use super::split::{Stores, elect, tombstone};
use super::*;
use crate::peer::Callback;
use crate::region::{CommitMerge, Region};
use crate::regions::FIRST_REGION;

const SOURCE: u64 = 100;

/// Stores 1–3 (and `learner`, if any) with region 1 `["", "m")` and
/// region 100 `["m", "")`, both led by store 2, holding `apple` and
/// `zebra`.
fn two_regions(learner: Option<Arc<Mirror>>) -> Stores {
    let mut s = match learner {
        Some(m) => Stores::with_learner(&[1, 2, 3], 4, m),
        None => Stores::new(&[1, 2, 3], 4096),
    };
    elect(&mut s, 2, FIRST_REGION);
    s.write(2, "apple", 10);
    s.write(2, "zebra", 20);
    assert_eq!(
        outcome(&s.split(2, FIRST_REGION, b"m", SOURCE)),
        Some(Ok(()))
    );
    assert!(s.peer(2, SOURCE).is_leader());
    s
}

/// Runs one merge step on `region`'s peer at `store`, then lets the
/// stores settle.
fn step(
    s: &mut Stores,
    store: u64,
    region: u64,
    propose: impl FnOnce(&mut Peer<MemoryEngine>, Callback),
) -> Outcome {
    let out: Outcome = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&out);
    propose(
        s.peer(store, region),
        Box::new(move |r| *slot.lock().unwrap() = Some(r)),
    );
    s.pump();
    out
}

fn prepare(s: &mut Stores) -> Outcome {
    let target: Region = s.peer(2, FIRST_REGION).region().clone();
    step(s, 2, SOURCE, |p, cb| p.propose_prepare_merge(&target, cb))
}

fn commit(s: &mut Stores, request: &CommitMerge) -> Outcome {
    step(s, 2, FIRST_REGION, |p, cb| {
        p.propose_commit_merge(request, cb)
    })
}

fn assert_merged(s: &Stores, stores: &[u64]) {
    for &id in stores {
        let ranges = s.ranges(id);
        assert_eq!(ranges.len(), 1, "store {id}: {ranges:?}");
        let (region, start, end, _) = &ranges[0];
        assert_eq!(
            (*region, start.as_str(), end.as_str()),
            (FIRST_REGION, "", "")
        );
        assert!(s.stores[&id].get(SOURCE).is_none(), "store {id}");
        assert!(tombstone(s, id, SOURCE).is_some(), "store {id}");
    }
}

#[test]
fn a_merge_widens_the_target_and_removes_the_source_everywhere() {
    let mut s = two_regions(None);
    s.write(2, "monkey", 30);
    assert_eq!(outcome(&prepare(&mut s)), Some(Ok(())));
    let merging = s.peer(1, SOURCE).merging().cloned().expect("every replica");
    assert_eq!(merging.target.map(|t| t.id), Some(FIRST_REGION));

    // Frozen: no writes, splits or changes of peers.
    match outcome(&s.propose(2, SOURCE, put("yak", 40))) {
        Some(Err(e)) => assert!(e.contains("epoch"), "{e}"),
        other => panic!("a write to a merging region: {other:?}"),
    }
    assert!(outcome(&s.split(2, SOURCE, b"t", 101)).is_some_and(|r| r.is_err()));
    let change = conf_change(&[(ConfChangeType::RemoveNode, 3)]);
    assert!(s.peer(2, SOURCE).propose_conf_change(change).is_err());

    let request = (s.peer(2, SOURCE).commit_merge_request()).expect("every peer has the prepare");
    assert_eq!(outcome(&commit(&mut s, &request)), Some(Ok(())));
    assert_merged(&s, &[1, 2, 3]);
    let version = s.ranges(1)[0].3;
    assert_eq!(
        version, 4,
        "past both: the source's 2, then 3 at the prepare"
    );

    // The source's keys are the target's now, with their data.
    s.write(2, "yak", 50);
    assert_eq!(s.dump(1), s.dump(2));
    assert_eq!(s.dump(3), s.dump(2));
    let keys: Vec<Vec<u8>> = (s.dump(1).into_iter())
        .filter(|(cf, _, _)| *cf == Cf::Write)
        .map(|(_, k, _)| k)
        .collect();
    for key in ["apple", "monkey", "yak", "zebra"] {
        let encoded = duet_storage::mvcc::encode_key(key.as_bytes());
        assert!(keys.iter().any(|k| k.starts_with(&encoded)), "{key}");
    }
}

#[test]
fn a_store_behind_on_the_source_applies_it_from_its_own_log_first() {
    let mut s = two_regions(None);
    // Store 3 appends region 100's next entries but never learns they
    // committed: it has applied neither the write nor the prepare.
    let known = s.peer(3, SOURCE).commit_index();
    s.freeze.insert((SOURCE, 3), known);
    s.write(2, "monkey", 30);
    assert_eq!(outcome(&prepare(&mut s)), Some(Ok(())));
    assert!(s.peer(3, SOURCE).applied_index() < s.peer(2, SOURCE).applied_index());
    assert!(s.peer(3, SOURCE).merging().is_none());

    let request = (s.peer(2, SOURCE).commit_merge_request()).expect("store 3 has the prepare");
    assert_eq!(outcome(&commit(&mut s, &request)), Some(Ok(())));
    assert_merged(&s, &[1, 2, 3]);
    assert_eq!(s.dump(3), s.dump(2), "store 3 applied the source first");
}

#[test]
fn the_commit_is_asked_for_only_once_every_peer_has_the_prepare() {
    let mut s = two_regions(None);
    s.hold.insert((SOURCE, 3));
    assert_eq!(outcome(&prepare(&mut s)), Some(Ok(())));
    assert!(s.peer(2, SOURCE).commit_merge_request().is_none());
    assert!(
        s.peer(1, SOURCE).commit_merge_request().is_none(),
        "a follower never asks"
    );
    s.hold.clear();
    s.tick(4);
    let request = s.peer(2, SOURCE).commit_merge_request();
    assert!(request.is_some(), "store 3 caught up");
    assert_eq!(outcome(&commit(&mut s, &request.unwrap())), Some(Ok(())));
    assert_merged(&s, &[1, 2, 3]);
}

#[test]
fn a_merge_the_target_moved_away_from_rolls_back() {
    let mut s = two_regions(None);
    assert_eq!(outcome(&prepare(&mut s)), Some(Ok(())));
    let request = s.peer(2, SOURCE).commit_merge_request().unwrap();
    let prepared = s.peer(2, FIRST_REGION).region().epoch();
    // While the target may still commit, no rollback.
    let early = step(&mut s, 2, SOURCE, |p, cb| {
        p.propose_rollback_merge(prepared, cb)
    });
    assert!(outcome(&early).is_some_and(|r| r.is_err()));

    // The target splits: its epoch moves, the commit can never apply.
    assert_eq!(outcome(&s.split(2, FIRST_REGION, b"c", 101)), Some(Ok(())));
    match outcome(&commit(&mut s, &request)) {
        Some(Err(e)) => assert!(e.contains("epoch"), "{e}"),
        other => panic!("a commit against a moved target: {other:?}"),
    }
    let now = s.peer(2, FIRST_REGION).region().epoch();
    let back = step(&mut s, 2, SOURCE, |p, cb| p.propose_rollback_merge(now, cb));
    assert_eq!(outcome(&back), Some(Ok(())));
    for id in [1, 2, 3] {
        assert!(s.peer(id, SOURCE).merging().is_none(), "store {id}");
        assert_eq!(s.peer(id, SOURCE).region().epoch().version, 4);
    }
    // It serves writes again.
    s.write(2, "yak", 60);
    assert_eq!(s.dump(1), s.dump(2));
}

#[test]
fn a_learner_store_that_keeps_no_data_merges_its_peers_too() {
    let mirror = Arc::new(Mirror::default());
    let mut s = two_regions(Some(mirror.clone()));
    s.write(2, "monkey", 30);
    assert_eq!(outcome(&prepare(&mut s)), Some(Ok(())));
    let request = s.peer(2, SOURCE).commit_merge_request().unwrap();
    assert_eq!(outcome(&commit(&mut s, &request)), Some(Ok(())));
    assert_merged(&s, &[1, 2, 3, 4]);
    s.write(2, "yak", 40);
    assert_eq!(dump_engine(&mirror.engine), s.dump(1));
    assert!(s.dump(4).iter().all(|(cf, _, _)| *cf == Cf::Raft));
}
