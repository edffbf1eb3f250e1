//! MySQL's named user locks (`GET_LOCK`, `RELEASE_LOCK`, `IS_FREE_LOCK`,
//! `IS_USED_LOCK`, `RELEASE_ALL_LOCKS`): advisory locks of this instance,
//! held by a connection (re-entrantly) until it releases them or goes away.
//! Migration tools take one to run alone.

use crate::interrupt;
use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The instance's named locks: name (as given, compared without case, as
/// MySQL does) → holding connection and how many times it took the lock;
/// and which lock each waiting connection waits for.
#[derive(Debug, Default)]
pub(crate) struct UserLocks {
    inner: Mutex<Inner>,
    released: Condvar,
}

#[derive(Debug, Default)]
struct Inner {
    held: HashMap<String, (u32, u64)>,
    waiting: HashMap<u32, String>,
}

/// The longest a waiter sleeps before it looks at its statement's stop
/// signal again.
const WAIT_SLICE: Duration = Duration::from_millis(50);

/// Waiting would close a cycle of connections waiting for each other.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Deadlock;

impl UserLocks {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `GET_LOCK(name, timeout)`: true once `connection` holds the lock,
    /// false if another held it for all of `timeout` (none: forever);
    /// [`Deadlock`] if the holder waits, directly or not, for a lock
    /// `connection` holds.
    pub fn get(
        &self,
        connection: u32,
        name: &str,
        timeout: Option<Duration>,
    ) -> Result<bool, Deadlock> {
        let key = name.to_lowercase();
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut inner = self.lock();
        let outcome = loop {
            let owner = match inner.held.get_mut(&key) {
                None => {
                    inner.held.insert(key.clone(), (connection, 1));
                    break Ok(true);
                }
                Some((owner, count)) if *owner == connection => {
                    *count += 1;
                    break Ok(true);
                }
                Some((owner, _)) => *owner,
            };
            if inner.leads_to(owner, connection) {
                break Err(Deadlock);
            }
            // A statement stopped meanwhile stops waiting (its caller
            // reports why).
            if interrupt::check_current().is_err() {
                break Ok(false);
            }
            let wait = match deadline {
                None => WAIT_SLICE,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left.min(WAIT_SLICE),
                    _ => break Ok(false),
                },
            };
            inner.waiting.insert(connection, key.clone());
            inner = self
                .released
                .wait_timeout(inner, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        inner.waiting.remove(&connection);
        outcome
    }

    /// `RELEASE_LOCK(name)`: `Some(true)` released (once), `Some(false)`
    /// held by another connection, `None` not held at all.
    pub fn release(&self, connection: u32, name: &str) -> Option<bool> {
        let key = name.to_lowercase();
        let mut inner = self.lock();
        let (owner, count) = inner.held.get_mut(&key)?;
        if *owner != connection {
            return Some(false);
        }
        *count -= 1;
        if *count == 0 {
            inner.held.remove(&key);
            self.released.notify_all();
        }
        Some(true)
    }

    /// `IS_USED_LOCK(name)`: the holding connection, if any.
    pub fn holder(&self, name: &str) -> Option<u32> {
        self.lock()
            .held
            .get(&name.to_lowercase())
            .map(|(owner, _)| *owner)
    }

    /// `RELEASE_ALL_LOCKS()`, and a connection going away: how many times
    /// `connection` held locks.
    pub fn release_all(&self, connection: u32) -> u64 {
        let mut inner = self.lock();
        let mut released = 0;
        inner.held.retain(|_, (owner, count)| {
            if *owner == connection {
                released += *count;
                false
            } else {
                true
            }
        });
        if released > 0 {
            self.released.notify_all();
        }
        released
    }
}

impl Inner {
    /// Whether `from` waits, through a chain of held locks, for `to`.
    fn leads_to(&self, from: u32, to: u32) -> bool {
        let mut at = from;
        // Each step moves to another waiting connection: no more steps
        // than there are waiters.
        for _ in 0..=self.waiting.len() {
            if at == to {
                return true;
            }
            let Some((next, _)) = self.waiting.get(&at).and_then(|lock| self.held.get(lock)) else {
                return false;
            };
            at = *next;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_is_held_by_one_connection_at_a_time_and_reentrantly() {
        let locks = UserLocks::default();
        let now = Some(Duration::ZERO);
        assert_eq!(locks.get(1, "Deploy", now), Ok(true));
        assert_eq!(locks.get(1, "deploy", now), Ok(true), "re-entrant");
        assert_eq!(locks.get(2, "deploy", now), Ok(false));
        assert_eq!(locks.holder("DEPLOY"), Some(1));
        assert_eq!(locks.release(2, "deploy"), Some(false));
        assert_eq!(locks.release(1, "deploy"), Some(true));
        assert_eq!(locks.holder("deploy"), Some(1), "taken twice");
        assert_eq!(locks.release(1, "deploy"), Some(true));
        assert_eq!(locks.holder("deploy"), None);
        assert_eq!(locks.release(1, "deploy"), None);
        assert_eq!(locks.get(2, "deploy", now), Ok(true));
        assert_eq!(locks.get(2, "other", None), Ok(true));
        assert_eq!(locks.release_all(2), 2);
        assert_eq!(locks.get(3, "deploy", now), Ok(true));
    }

    #[test]
    fn a_waiter_takes_the_lock_when_it_is_released_or_gives_up() {
        let locks = std::sync::Arc::new(UserLocks::default());
        assert_eq!(locks.get(1, "x", None), Ok(true));
        assert_eq!(locks.get(2, "x", Some(Duration::from_millis(1))), Ok(false));
        let waiter = {
            let locks = std::sync::Arc::clone(&locks);
            std::thread::spawn(move || locks.get(2, "x", None))
        };
        assert_eq!(locks.release(1, "x"), Some(true));
        assert_eq!(waiter.join().unwrap(), Ok(true));
        assert_eq!(locks.holder("x"), Some(2));
    }

    #[test]
    fn a_wait_that_closes_a_cycle_is_a_deadlock() {
        let locks = UserLocks::default();
        assert_eq!(locks.get(1, "a", None), Ok(true));
        assert_eq!(locks.get(2, "b", None), Ok(true));
        // Connection 2 waits for a (held by 1); 1 asking for b would wait
        // for 2, which waits for 1.
        locks.lock().waiting.insert(2, "a".into());
        assert_eq!(locks.get(1, "b", None), Err(Deadlock));
        assert!(!locks.lock().waiting.contains_key(&1), "no longer waiting");
        locks.lock().waiting.remove(&2);
        assert_eq!(locks.get(1, "b", Some(Duration::ZERO)), Ok(false));
    }
}
