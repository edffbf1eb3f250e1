//! One-phase commits: a leader commits in one entry only once a timestamp
//! taken after its election raised its read floor, always above every read
//! that raised it, and a read index waits for the ones in flight.

use std::sync::atomic::{AtomicU64, Ordering};

use duet_storage::mvcc::MvccReader;
use duet_storage::txn::commands::Response;

use super::*;

fn one_pc(key: &str, start_ts: u64) -> Command {
    Prewrite {
        mutations: vec![Mutation::new(Op::Put, key.as_bytes(), b"value".to_vec())],
        primary: key.as_bytes().to_vec(),
        start_ts,
        lock_ttl: 3000,
        try_one_pc: true,
        ..Default::default()
    }
    .into()
}

/// Each peer's node floor and count in flight, as a store shares them.
fn share(c: &mut Cluster<MemoryEngine>) -> BTreeMap<u64, (Arc<AtomicU64>, Arc<AtomicU64>)> {
    c.peers
        .iter_mut()
        .map(|(id, p)| {
            let (floor, inflight) = (Arc::default(), Arc::default());
            p.share_one_pc(Arc::clone(&floor), Arc::clone(&inflight));
            (*id, (floor, inflight))
        })
        .collect()
}

fn answer(o: &Outcome) -> ApplyResult {
    o.lock().unwrap().take().expect("answered")
}

/// Gives `id`'s leadership the timestamp it asked for.
fn sync(c: &mut Cluster<MemoryEngine>, id: u64, ts: u64) {
    let p = c.peers.get_mut(&id).unwrap();
    let term = p
        .take_ts_request()
        .expect("the leader asked for a timestamp");
    assert_eq!(p.take_ts_request(), None, "it asks once");
    p.ts_taken(term, Some(ts));
    assert!(p.one_pc_ready());
}

fn value_at(c: &Cluster<MemoryEngine>, id: u64, key: &str, ts: u64) -> Option<Vec<u8>> {
    let snap = c.engines[&id].snapshot();
    MvccReader::new(&snap).get(key.as_bytes(), ts).unwrap()
}

#[test]
fn a_leader_commits_in_one_phase_only_after_a_fresh_timestamp_raised_its_floor() {
    let mut c = Cluster::memory(&[1, 2, 3], &[]);
    let shared = share(&mut c);
    c.elect(1);
    let first = c.propose(1, one_pc("a", 10));
    assert!(
        matches!(answer(&first), Ok(Response::Done)),
        "prewritten: the leader knows no timestamp from its term yet"
    );
    sync(&mut c, 1, 100);
    assert_eq!(shared[&1].0.load(Ordering::SeqCst), 100);
    let second = c.propose(1, one_pc("b", 20));
    assert!(matches!(
        answer(&second),
        Ok(Response::Committed { commit_ts: 101 })
    ));
    assert_eq!(shared[&1].1.load(Ordering::SeqCst), 0, "none in flight");
    c.assert_replicas_equal(&[1, 2, 3]);
    assert_eq!(value_at(&c, 3, "b", 100), None, "invisible below 101");
    assert_eq!(value_at(&c, 3, "b", 101), Some(b"value".to_vec()));

    // A new leader knows nothing of the reads its predecessor served.
    c.peers.get_mut(&1).unwrap().transfer_leader(2);
    c.pump();
    assert!(c.peers[&2].is_leader());
    let third = c.propose(2, one_pc("c", 30));
    assert!(matches!(answer(&third), Ok(Response::Done)));
    sync(&mut c, 2, 200);
    let fourth = c.propose(2, one_pc("d", 40));
    assert!(matches!(
        answer(&fourth),
        Ok(Response::Committed { commit_ts: 201 })
    ));
}

#[test]
fn a_commit_above_the_clients_bound_is_prewritten_instead() {
    let mut c = Cluster::memory(&[1], &[]);
    share(&mut c);
    c.elect(1);
    sync(&mut c, 1, 100);
    let mut bounded = one_pc("a", 10);
    if let Some(duet_storage::txn::commands::command::Kind::Prewrite(p)) = bounded.kind.as_mut() {
        p.max_commit_ts = 50;
    }
    let out = c.propose(1, bounded);
    assert!(matches!(answer(&out), Ok(Response::Done)));
    let snap = c.engines[&1].snapshot();
    assert!(MvccReader::new(&snap).load_lock(b"a").unwrap().is_some());
}

#[test]
fn a_read_index_raises_the_floor_and_waits_for_one_phase_commits_in_flight() {
    let mut c = Cluster::memory(&[1, 2, 3], &[]);
    let shared = share(&mut c);
    c.elect(1);
    sync(&mut c, 1, 100);

    // A follower's read at 500 raises the leader's floor: what commits
    // after it lands above 500.
    let read = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&read);
    (c.peers.get_mut(&2).unwrap()).read_index_at(
        Box::new(move |r| *slot.lock().unwrap() = Some(r)),
        Instant::now(),
        500,
    );
    c.pump();
    assert!(matches!(*read.lock().unwrap(), Some(Ok(_))));
    assert_eq!(shared[&1].0.load(Ordering::SeqCst), 500);
    let after = c.propose(1, one_pc("a", 10));
    assert!(matches!(
        answer(&after),
        Ok(Response::Committed { commit_ts: 501 })
    ));

    // Proposed, not yet applied: a read at 700 asked meanwhile must not be
    // answered with an index below the commit at 701's entry.
    let pending = c.propose_unapplied(1, one_pc("b", 700));
    assert_eq!(shared[&1].1.load(Ordering::SeqCst), 1, "one in flight");
    let entry = c.peers[&1].last_index();
    let read = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&read);
    (c.peers.get_mut(&2).unwrap()).read_index_at(
        Box::new(move |r| *slot.lock().unwrap() = Some(r)),
        Instant::now(),
        702,
    );
    c.pump();
    assert!(matches!(
        answer(&pending),
        Ok(Response::Committed { commit_ts: 701 })
    ));
    let index = read.lock().unwrap().take().expect("answered").unwrap();
    assert!(index >= entry, "read index {index} is below entry {entry}");
    assert_eq!(value_at(&c, 2, "b", 702), Some(b"value".to_vec()));
    assert_eq!(shared[&1].1.load(Ordering::SeqCst), 0);
}

#[test]
fn a_read_index_without_a_timestamp_does_not_wait_for_one_phase_commits() {
    let mut c = Cluster::memory(&[1, 2, 3], &[]);
    share(&mut c);
    c.elect(1);
    sync(&mut c, 1, 100);
    let pending = c.propose_unapplied(1, one_pc("a", 10));
    let entry = c.peers[&1].last_index();
    // A read index that reads no MVCC data at a timestamp (a view catching
    // up, the oracle's limit) is answered as soon as Raft can.
    let read = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&read);
    (c.peers.get_mut(&2).unwrap()).read_index(
        Box::new(move |r| *slot.lock().unwrap() = Some(r)),
        Instant::now(),
    );
    c.pump();
    assert!(matches!(answer(&pending), Ok(Response::Committed { .. })));
    let index = read.lock().unwrap().take().expect("answered").unwrap();
    assert!(index < entry, "read index {index} waited for entry {entry}");
}

#[test]
fn a_leader_under_its_lease_reads_once_its_one_phase_commits_in_flight_applied() {
    let mut c = Cluster::memory(&[1, 2, 3], &[]);
    share(&mut c);
    c.elect(1);
    sync(&mut c, 1, 100);
    let t0 = Instant::now();
    let lease = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&lease);
    (c.peers.get_mut(&1).unwrap())
        .read_index(Box::new(move |r| *slot.lock().unwrap() = Some(r)), t0);
    c.pump();
    assert!(c.peers[&1].lease().covers(t0), "a confirmed lease");

    let pending = c.propose_unapplied(1, one_pc("a", 10));
    let entry = c.peers[&1].last_index();
    let read = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&read);
    (c.peers.get_mut(&1).unwrap()).read_index_at(
        Box::new(move |r| *slot.lock().unwrap() = Some(r)),
        t0,
        500,
    );
    assert!(read.lock().unwrap().is_none(), "it waits for the commit");
    c.pump();
    assert!(matches!(
        answer(&pending),
        Ok(Response::Committed { commit_ts: 101 })
    ));
    let index = read.lock().unwrap().take().expect("answered").unwrap();
    assert!(index >= entry, "read index {index} is below entry {entry}");
    assert_eq!(value_at(&c, 1, "a", 500), Some(b"value".to_vec()));
}
