//! Deadlock detection for pessimistic lock waits. A transaction about to
//! wait for another's lock first tells a [`DeadlockDetector`]; if the
//! holder already waits, directly or through others, for the waiter, the
//! wait would never end, and the waiter is refused at once
//! ([`Error::Deadlock`]) instead of sitting out its lock wait timeout. One
//! detector serves a whole cluster (the server keeps it on the leader of
//! the first region, as TiKV does), since a cycle may run through
//! transactions begun on different nodes.
//!
//! The graph ([`WaitsFor`]) holds an edge per waiting transaction and the
//! transaction it waits for, keyed by start timestamps. A waiter repeats
//! its call while it waits, which refreshes the edge; an edge not refreshed
//! within the detector's TTL belongs to a waiter that is gone (its node
//! died, or a new detector took over) and is dropped. Time is passed in, so
//! the graph is tested tick by tick.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// Where waiters report their waits.
pub trait DeadlockDetector: Send + Sync {
    /// Transaction `waiter` is about to wait (or still waits) for the lock
    /// transaction `holder` holds on the key hashing to `key_hash`.
    /// `Err(Deadlock)` if `holder` waits for `waiter` already.
    fn wait_for(&self, waiter: u64, holder: u64, key_hash: u64) -> Result<()>;
    /// `waiter` waits no more: it took the lock, gave up or ended.
    fn clean_up(&self, waiter: u64);
}

/// One wait: for whom, on which key, last reported when.
#[derive(Debug, Clone, Copy)]
struct Wait {
    holder: u64,
    key_hash: u64,
    refreshed: u64,
}

/// The waits-for graph. A transaction waits for at most one other at a
/// time (a statement waits on one lock, then the next).
#[derive(Debug, Default)]
pub struct WaitsFor {
    waits: HashMap<u64, Wait>,
}

/// A wait refused: the transactions of the cycle, from the holder on,
/// each waiting for the next, the last waiting for the waiter; and the
/// key hash of each wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    pub txns: Vec<u64>,
    pub key_hashes: Vec<u64>,
}

impl WaitsFor {
    /// Records that `waiter` waits for `holder` at time `now`, unless that
    /// closes a cycle through waits refreshed since `now - ttl`: then the
    /// cycle, and nothing recorded.
    pub fn wait_for(
        &mut self,
        waiter: u64,
        holder: u64,
        key_hash: u64,
        now: u64,
        ttl: u64,
    ) -> Option<Cycle> {
        self.expire(now, ttl);
        let mut cycle = Cycle {
            txns: Vec::new(),
            key_hashes: Vec::new(),
        };
        let mut at = holder;
        // Each transaction waits for at most one other, so the path from the
        // holder is a chain; its length bounds the walk.
        for _ in 0..=self.waits.len() {
            if at == waiter {
                return Some(cycle);
            }
            cycle.txns.push(at);
            match self.waits.get(&at) {
                Some(w) => {
                    cycle.key_hashes.push(w.key_hash);
                    at = w.holder;
                }
                None => break,
            }
        }
        self.waits.insert(
            waiter,
            Wait {
                holder,
                key_hash,
                refreshed: now,
            },
        );
        None
    }

    pub fn clean_up(&mut self, waiter: u64) {
        self.waits.remove(&waiter);
    }

    /// Whom `waiter` waits for, as recorded.
    pub fn holder_waited_for(&self, waiter: u64) -> Option<u64> {
        self.waits.get(&waiter).map(|w| w.holder)
    }

    /// Drops the waits not refreshed since `now - ttl`.
    pub fn expire(&mut self, now: u64, ttl: u64) {
        self.waits
            .retain(|_, w| w.refreshed.saturating_add(ttl) >= now);
    }

    pub fn len(&self) -> usize {
        self.waits.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waits.is_empty()
    }
}

/// A detector in this process: the graph under a mutex, on the monotonic
/// clock.
pub struct LocalDetector {
    graph: Mutex<WaitsFor>,
    epoch: Instant,
    ttl: Duration,
}

impl LocalDetector {
    /// `ttl`: how long a wait stands without being reported again.
    pub fn new(ttl: Duration) -> Self {
        LocalDetector {
            graph: Mutex::new(WaitsFor::default()),
            epoch: Instant::now(),
            ttl,
        }
    }

    /// The cycle `waiter` waiting for `holder` would close, if any; records
    /// the wait otherwise.
    pub fn detect(&self, waiter: u64, holder: u64, key_hash: u64) -> Option<Cycle> {
        let now = self.epoch.elapsed().as_millis() as u64;
        let ttl = self.ttl.as_millis() as u64;
        let mut graph = self.graph.lock().unwrap_or_else(|e| e.into_inner());
        graph.wait_for(waiter, holder, key_hash, now, ttl)
    }
}

impl LocalDetector {
    /// Whom `waiter` waits for, as recorded (for tests and status).
    pub fn holder_waited_for(&self, waiter: u64) -> Option<u64> {
        let graph = self.graph.lock().unwrap_or_else(|e| e.into_inner());
        graph.holder_waited_for(waiter)
    }
}

impl DeadlockDetector for LocalDetector {
    fn wait_for(&self, waiter: u64, holder: u64, key_hash: u64) -> Result<()> {
        match self.detect(waiter, holder, key_hash) {
            Some(cycle) => Err(Error::Deadlock {
                start_ts: waiter,
                cycle: cycle.txns,
            }),
            None => Ok(()),
        }
    }

    fn clean_up(&self, waiter: u64) {
        let mut graph = self.graph.lock().unwrap_or_else(|e| e.into_inner());
        graph.clean_up(waiter);
    }
}

/// The hash of a key, as waits name it (the detector never sees keys).
pub fn key_hash(key: &[u8]) -> u64 {
    // FNV-1a: stable across nodes and builds, unlike the std hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: u64 = 1_000;

    #[test]
    fn two_transactions_waiting_for_each_other_are_a_deadlock() {
        let mut g = WaitsFor::default();
        assert_eq!(g.wait_for(10, 20, 1, 0, TTL), None);
        let cycle = g.wait_for(20, 10, 2, 1, TTL).unwrap();
        assert_eq!(cycle.txns, [10]);
        assert_eq!(cycle.key_hashes, [1]);
        // The refused wait is not recorded; the first one stands.
        assert_eq!(g.len(), 1);
    }

    #[test]
    fn a_cycle_through_three_is_found_and_a_chain_is_not_one() {
        let mut g = WaitsFor::default();
        assert_eq!(g.wait_for(1, 2, 12, 0, TTL), None);
        assert_eq!(g.wait_for(2, 3, 23, 0, TTL), None);
        // 4 waiting for 1 makes a chain 4 → 1 → 2 → 3, no cycle.
        assert_eq!(g.wait_for(4, 1, 41, 0, TTL), None);
        let cycle = g.wait_for(3, 1, 31, 0, TTL).unwrap();
        assert_eq!(cycle.txns, [1, 2]);
        assert_eq!(cycle.key_hashes, [12, 23]);
    }

    #[test]
    fn a_finished_or_silent_waiter_breaks_no_cycle_later() {
        let mut g = WaitsFor::default();
        assert_eq!(g.wait_for(1, 2, 0, 0, TTL), None);
        g.clean_up(1);
        assert_eq!(g.wait_for(2, 1, 0, 1, TTL), None);
        // 2 waits for 1 (recorded above); 1 reports once and goes silent.
        g.clean_up(2);
        assert_eq!(g.wait_for(2, 1, 0, 10, TTL), None);
        assert_eq!(g.wait_for(3, 2, 0, 10, TTL), None);
        // Past the TTL 2's wait is gone: 1 waiting for 3 closes nothing.
        assert_eq!(g.wait_for(1, 3, 0, 10 + TTL + 1, TTL), None);
        // A refreshed wait stands.
        assert_eq!(g.wait_for(3, 2, 0, 10 + TTL + 2, TTL), None);
        assert!(g.wait_for(2, 1, 0, 10 + TTL + 3, TTL).is_some());
    }

    #[test]
    fn waiting_for_oneself_is_refused() {
        let mut g = WaitsFor::default();
        assert!(g.wait_for(5, 5, 0, 0, TTL).is_some());
    }

    #[test]
    fn the_local_detector_answers_a_deadlock_error() {
        let d = LocalDetector::new(Duration::from_secs(60));
        d.wait_for(1, 2, key_hash(b"a")).unwrap();
        match d.wait_for(2, 1, key_hash(b"b")) {
            Err(Error::Deadlock { start_ts, cycle }) => {
                assert_eq!((start_ts, cycle), (2, vec![1]));
            }
            other => panic!("{other:?}"),
        }
        d.clean_up(1);
        d.wait_for(2, 1, key_hash(b"b")).unwrap();
        assert_ne!(key_hash(b"a"), key_hash(b"b"));
    }
}

/// One deadlock a transaction of this node was refused for (TiDB's
/// `DEADLOCKS` row): the waiter that got 1213, the lock it asked for, and
/// the cycle it would have closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlockRecord {
    /// Counts the deadlocks this node has seen, from 1.
    pub id: u64,
    /// When, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// The refused transaction (its start timestamp).
    pub waiter: u64,
    /// The transaction holding the lock it asked for.
    pub holder: u64,
    /// The locked key.
    pub key: Vec<u8>,
    /// The transactions of the cycle, from the holder on, each waiting for
    /// the next, the last for the waiter.
    pub cycle: Vec<u64>,
}

/// The last [`DEADLOCK_HISTORY`] deadlocks, newest last.
#[derive(Debug, Default)]
pub struct DeadlockHistory {
    records: Mutex<(u64, VecDeque<DeadlockRecord>)>,
}

/// How many deadlocks a [`DeadlockHistory`] keeps.
pub const DEADLOCK_HISTORY: usize = 100;

impl DeadlockHistory {
    /// Records that `waiter` was refused the lock `holder` holds on `key`.
    pub fn record(&self, waiter: u64, holder: u64, key: &[u8], cycle: Vec<u64>) {
        let at_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut guard = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let (count, records) = &mut *guard;
        *count += 1;
        if records.len() == DEADLOCK_HISTORY {
            records.pop_front();
        }
        records.push_back(DeadlockRecord {
            id: *count,
            at_unix_ms,
            waiter,
            holder,
            key: key.to_vec(),
            cycle,
        });
    }

    /// The kept records, oldest first.
    pub fn list(&self) -> Vec<DeadlockRecord> {
        let guard = self.records.lock().unwrap_or_else(|e| e.into_inner());
        guard.1.iter().cloned().collect()
    }
}

#[cfg(test)]
mod history_tests {
    use super::*;

    #[test]
    fn the_history_keeps_the_newest_deadlocks_numbered() {
        let h = DeadlockHistory::default();
        for i in 0..(DEADLOCK_HISTORY as u64 + 5) {
            h.record(i, i + 1, b"k", vec![i + 1]);
        }
        let list = h.list();
        assert_eq!(list.len(), DEADLOCK_HISTORY);
        assert_eq!(list[0].id, 6, "the five oldest were dropped");
        assert_eq!(list.last().map(|r| r.id), Some(DEADLOCK_HISTORY as u64 + 5));
        assert_eq!(list[0].waiter, 5);
        assert_eq!(list[0].cycle, vec![6]);
    }
}
