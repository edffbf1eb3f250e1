//! A store whose node is short of disk space: it refuses new data with
//! `DiskFull` but still settles what it holds, its follower drops the
//! leader's appends instead of filling the disk, and it catches up once
//! space is back. Real stores on the in-process router; the outcome does
//! not depend on timing (every wait is for a state, with a generous bound).

use std::sync::Arc;
use std::time::{Duration, Instant};

use duet_storage::engine::memory::MemoryEngine;

use super::{commit, put};
use crate::error::Error;
use crate::store::{RaftStore, StoreConfig, inbox};
use crate::transport::LocalRouter;

const FIRST: u64 = crate::store::FIRST_REGION;

fn start(router: &Arc<LocalRouter>, id: u64, voters: &[u64]) -> RaftStore<MemoryEngine> {
    let mut config = StoreConfig::single(id);
    config.voters = voters.to_vec();
    config.tick_interval = Duration::from_millis(20);
    let (tx, rx) = inbox();
    router.register(id, tx.clone());
    let engine = Arc::new(MemoryEngine::new());
    RaftStore::start(engine, &config, router.clone(), Vec::new(), (tx, rx)).unwrap()
}

fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn is_disk_full(e: &Error, node: u64) -> bool {
    matches!(e, Error::Storage(duet_storage::Error::DiskFull { node_id }) if *node_id == node)
}

#[test]
fn a_full_store_refuses_new_data_settles_old_and_recovers() {
    let router = Arc::new(LocalRouter::new());
    let store = start(&router, 1, &[1]);
    eventually("a leader", || store.propose(FIRST, put("a", 10)).is_ok());
    store.set_disk_full(true);
    let refused = store.propose(FIRST, put("b", 20)).unwrap_err();
    assert!(is_disk_full(&refused, 1), "{refused}");
    assert!(refused.to_string().contains("disk full"), "{refused}");
    // The lock taken before the disk filled still commits.
    store.propose(FIRST, commit("a", 10, 11)).unwrap();
    store.set_disk_full(false);
    store.propose(FIRST, put("b", 20)).unwrap();
    store.stop();
}

#[test]
fn a_full_follower_falls_behind_and_catches_up_when_space_returns() {
    let router = Arc::new(LocalRouter::new());
    let voters = [1, 2, 3];
    let stores: Vec<_> = voters
        .iter()
        .map(|id| start(&router, *id, &voters))
        .collect();
    stores[0].campaign(FIRST);
    eventually("store 1 leads", || {
        stores[0]
            .status()
            .iter()
            .any(|r| r.region_id == FIRST && r.is_leader)
    });
    stores[2].set_disk_full(true);
    // It leads nothing: its refusal is NotLeader, which sends the caller
    // to a leader with room, not DiskFull.
    let refused = stores[2].propose(FIRST, put("x", 90)).unwrap_err();
    assert!(matches!(refused, Error::NotLeader { .. }), "{refused}");
    let applied = |s: &RaftStore<MemoryEngine>| {
        (s.status().iter().find(|r| r.region_id == FIRST)).map_or(0, |r| r.applied_index)
    };
    let full_before = applied(&stores[2]);
    for (i, key) in ["k1", "k2", "k3"].into_iter().enumerate() {
        let ts = 100 + 10 * i as u64;
        stores[0].propose(FIRST, put(key, ts)).unwrap();
        stores[0].propose(FIRST, commit(key, ts, ts + 1)).unwrap();
    }
    // The other two commit without it; it took none of the entries.
    eventually("store 2 applies", || {
        applied(&stores[1]) >= applied(&stores[0])
    });
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(applied(&stores[2]), full_before);
    stores[2].set_disk_full(false);
    eventually("store 3 catches up", || {
        applied(&stores[2]) >= applied(&stores[0])
    });
    for s in &stores {
        s.stop();
    }
}
