//! Lock waits on the leader: parked on a lock, woken when it goes.

use std::time::{Duration, Instant};

use duet_storage::txn::commands::{AcquirePessimisticLock, Command, Rollback};

use super::{Cluster, Outcome, commit, outcome, put};

fn lock(key: &str, start_ts: u64, wait_ms: u64) -> Command {
    AcquirePessimisticLock {
        keys: vec![key.as_bytes().to_vec()],
        primary: key.as_bytes().to_vec(),
        start_ts,
        for_update_ts: start_ts,
        lock_ttl: 3000,
        wait_ms,
    }
    .into()
}

fn blocked(o: &Outcome) -> bool {
    outcome(o).is_some_and(|r| r.is_err_and(|e| e.contains("locked")))
}

#[test]
fn parked_lock_requests_run_in_order_the_moment_the_holder_commits() {
    let mut c = Cluster::memory(&[1, 2, 3], &[]);
    c.elect(1);
    assert_eq!(outcome(&c.propose(1, put("k", 10))), Some(Ok(())));
    let first = c.propose(1, lock("k", 20, 50_000));
    let second = c.propose(1, lock("k", 30, 50_000));
    assert_eq!(outcome(&first), None, "the first waiter is held");
    assert_eq!(outcome(&second), None, "the second waiter is held");
    assert_eq!(c.peers[&1].parked_waits(), 2);

    assert_eq!(outcome(&c.propose(1, commit("k", 10, 11))), Some(Ok(())));
    assert_eq!(
        outcome(&first),
        Some(Ok(())),
        "the oldest waiter takes the lock"
    );
    let heard = outcome(&second);
    assert!(
        heard
            .as_ref()
            .is_some_and(|r| r.as_ref().is_err_and(|e| e.contains("transaction 20"))),
        "the next meets the new holder's lock and hears of it: {heard:?}"
    );
    assert_eq!(c.peers[&1].parked_waits(), 0);
    c.assert_replicas_equal(&[1, 2, 3]);
}

#[test]
fn a_rollback_wakes_the_waiter_too() {
    let mut c = Cluster::memory(&[1, 2, 3], &[]);
    c.elect(1);
    assert_eq!(outcome(&c.propose(1, put("k", 10))), Some(Ok(())));
    let waiter = c.propose(1, lock("k", 20, 50_000));
    assert_eq!(outcome(&waiter), None);
    let rollback = Rollback {
        keys: vec![b"k".to_vec()],
        start_ts: 10,
    };
    assert_eq!(outcome(&c.propose(1, rollback.into())), Some(Ok(())));
    assert_eq!(outcome(&waiter), Some(Ok(())));
}

#[test]
fn a_blocked_lock_request_is_answered_without_a_log_entry() {
    let mut c = Cluster::memory(&[1, 2, 3], &[]);
    c.elect(1);
    assert_eq!(outcome(&c.propose(1, put("k", 10))), Some(Ok(())));
    let applied = c.peers[&1].applied_index();
    let at_once = c.propose(1, lock("k", 20, 0));
    assert!(blocked(&at_once), "{:?}", outcome(&at_once));
    assert_eq!(c.peers[&1].applied_index(), applied, "nothing was logged");
    assert_eq!(c.peers[&1].parked_waits(), 0);
}

#[test]
fn a_wait_runs_out_with_the_lock_it_met() {
    let mut c = Cluster::memory(&[1, 2, 3], &[]);
    c.elect(1);
    assert_eq!(outcome(&c.propose(1, put("k", 10))), Some(Ok(())));
    let waiter = c.propose(1, lock("k", 20, 100));
    let leader = c.peers.get_mut(&1).unwrap();
    leader.expire_lock_waits(Instant::now());
    assert_eq!(outcome(&waiter), None, "not before its wait ran out");
    leader.expire_lock_waits(Instant::now() + Duration::from_secs(1));
    assert!(blocked(&waiter), "{:?}", outcome(&waiter));
    assert_eq!(c.peers[&1].parked_waits(), 0);
}

#[test]
fn waiters_hear_not_leader_when_their_leader_steps_down() {
    let mut c = Cluster::memory(&[1, 2, 3], &[]);
    c.elect(1);
    assert_eq!(outcome(&c.propose(1, put("k", 10))), Some(Ok(())));
    let waiter = c.propose(1, lock("k", 20, 50_000));
    assert_eq!(outcome(&waiter), None);
    c.peers.get_mut(&1).unwrap().transfer_leader(2);
    c.pump();
    c.tick(1);
    assert!(c.peers[&2].is_leader(), "leadership moved to 2");
    let heard = outcome(&waiter);
    assert!(
        heard
            .as_ref()
            .is_some_and(|r| r.as_ref().is_err_and(|e| e.contains("leader"))),
        "{heard:?}"
    );
    assert_eq!(c.peers[&1].parked_waits(), 0);
}
