//! Linearizable reads: read indexes, the leader lease, and reads that
//! wait for what was committed.

use super::*;

pub(super) fn read_index(c: &mut Cluster<MemoryEngine>, id: u64) -> ReadOutcome {
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
fn a_leader_that_hands_its_leadership_over_reads_under_no_lease() {
    let mut c = Cluster::memory(&[1, 2, 3], &[]);
    c.elect(1);
    let t0 = Instant::now();
    let r = read_index_at(&mut c, 1, t0);
    assert!(r.lock().unwrap().take().expect("answered").is_ok());
    assert_eq!(c.peers[&1].lease(), Lease::Until(t0 + LEASE));
    // The transferee campaigns as soon as it hears, and the voters elect
    // it however recent the lease they confirmed: none from the start.
    c.peers.get_mut(&1).unwrap().transfer_leader(2);
    assert!(c.peers[&1].is_leader(), "still leading until the election");
    assert_eq!(c.peers[&1].lease(), Lease::None);
    c.pump();
    assert!(c.peers[&2].is_leader());
    assert_eq!(c.peers[&1].lease(), Lease::None);
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
fn a_leader_under_lease_answers_a_followers_read_index_without_a_quorum_round() {
    let mut c = Cluster::memory(&[1, 2, 3, 4, 5], &[]);
    c.elect(1);
    assert_eq!(outcome(&c.propose(1, put("k", 10))), Some(Ok(())));
    let committed = c.peers[&1].commit_index();
    // The leader's lease, confirmed "an hour from now": it covers the
    // real clock the store's step reads while the test runs.
    let later = Instant::now() + Duration::from_secs(3600);
    read_index_at(&mut c, 1, later);
    assert_eq!(c.peers[&1].lease(), Lease::Until(later + LEASE));
    // Cut off from three of the five, the leader can gather no quorum; it
    // answers follower 2 from its lease alone.
    c.partition(&[1], &[3, 4, 5]);
    let r = read_index(&mut c, 2);
    let index = r.lock().unwrap().take().expect("answered under the lease");
    assert!(index.unwrap() >= committed);
    assert!(c.peers[&2].applied_index() >= committed);

    // With its lease run out (confirmed long ago) the same request needs
    // the quorum round, which cannot happen.
    let mut c = Cluster::memory(&[1, 2, 3, 4, 5], &[]);
    c.elect(1);
    let long_ago = Instant::now() - Duration::from_secs(60);
    read_index_at(&mut c, 1, long_ago);
    assert_eq!(c.peers[&1].lease(), Lease::Until(long_ago + LEASE));
    c.partition(&[1], &[3, 4, 5]);
    let r = read_index(&mut c, 2);
    assert!(
        r.lock().unwrap().is_none(),
        "no lease, no quorum: no answer"
    );
}
