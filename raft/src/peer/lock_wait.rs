//! Lock waits on the leader. A command that may wait for another
//! transaction's lock (a pessimistic lock acquisition with a wait, see
//! [`Command::lock_wait`]) and meets one is parked on the lock's key instead
//! of answered; the moment an applied entry deletes that lock (its holder
//! committed, rolled back, or was resolved) every command parked on the key
//! goes back to the front of the queue in the order it parked, and runs
//! again. So a waiter proceeds as soon as the holder finishes, with no
//! polling and no log entry per attempt. A woken command that meets a lock
//! again is answered with it, so its transaction can tell the deadlock
//! detector whom it waits for now. One that outlives its wait is answered
//! with the lock it met; when the peer stops leading, every parked command
//! is answered `NotLeader`.

use std::time::{Duration, Instant};

use super::{Peer, Waiting};
use crate::error::Error;
use duet_storage::engine::{Cf, Engine, Modify};
use duet_storage::mvcc::encode_key;

/// A command parked on a lock.
pub(super) struct Parked {
    waiting: Waiting,
    /// The lock's key as the `lock` column family holds it.
    lock_key: Vec<u8>,
    deadline: Instant,
    /// The lock it met: the answer if the wait runs out.
    error: duet_storage::Error,
}

impl<E: Engine> Peer<E> {
    /// Parks `w`, which met the lock on `user_key` (`error`), for `wait`.
    pub(super) fn park(
        &mut self,
        w: Waiting,
        user_key: &[u8],
        wait: Duration,
        error: duet_storage::Error,
    ) {
        self.parked.push(Parked {
            waiting: w,
            lock_key: encode_key(user_key),
            deadline: Instant::now() + wait,
            error,
        });
    }

    /// Commands parked on a lock, waiting for it to go.
    pub fn parked_waits(&self) -> usize {
        self.parked.len()
    }

    /// Wakes the commands parked on a lock that `writes` (an applied
    /// entry's) delete; all of them if the entry deletes a range of locks.
    pub(super) fn wake_released(&mut self, writes: &[Modify]) {
        if self.parked.is_empty() {
            return;
        }
        let mut released: Vec<&[u8]> = Vec::new();
        for m in writes {
            match m {
                Modify::Delete { cf: Cf::Lock, key } => released.push(key),
                Modify::DeleteRange { cf: Cf::Lock, .. } => return self.wake_all(),
                _ => {}
            }
        }
        if released.is_empty() {
            return;
        }
        let (woken, kept): (Vec<Parked>, Vec<Parked>) = std::mem::take(&mut self.parked)
            .into_iter()
            .partition(|p| released.contains(&p.lock_key.as_slice()));
        self.parked = kept;
        self.requeue(woken);
    }

    /// Wakes every parked command (the region's range changed: each runs
    /// again and finds where its keys went).
    pub(super) fn wake_all(&mut self) {
        let woken = std::mem::take(&mut self.parked);
        self.requeue(woken);
    }

    /// Puts woken commands at the front of the queue, oldest first, marked
    /// so that they are not parked again. A region that has begun to merge
    /// away takes no writes: they are sent to find the merged region.
    fn requeue(&mut self, woken: Vec<Parked>) {
        if self.merging.is_some() {
            for p in woken {
                (p.waiting.callback)(Err(self.epoch_not_match()));
            }
            return;
        }
        for p in woken.into_iter().rev() {
            let mut w = p.waiting;
            w.woken = true;
            self.waiting.push_front(w);
        }
    }

    /// Answers the parked commands whose wait ran out by `now` with the
    /// lock they met.
    pub fn expire_lock_waits(&mut self, now: Instant) {
        if self.parked.iter().all(|p| p.deadline > now) {
            return;
        }
        let (expired, kept): (Vec<Parked>, Vec<Parked>) = std::mem::take(&mut self.parked)
            .into_iter()
            .partition(|p| p.deadline <= now);
        self.parked = kept;
        for p in expired {
            (p.waiting.callback)(Err(Error::Storage(p.error)));
        }
    }

    /// Answers every parked command `NotLeader` (this peer no longer leads).
    pub(super) fn release_parked(&mut self) {
        for p in std::mem::take(&mut self.parked) {
            (p.waiting.callback)(Err(self.not_leader()));
        }
    }
}
