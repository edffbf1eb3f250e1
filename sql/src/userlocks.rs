//! MySQL's named user locks (`GET_LOCK`, `RELEASE_LOCK`, `IS_FREE_LOCK`,
//! `IS_USED_LOCK`, `RELEASE_ALL_LOCKS`): advisory locks of this instance,
//! held by a connection (re-entrantly) until it releases them or goes away.
//! Migration tools take one to run alone.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The instance's named locks: name (as given, compared without case, as
/// MySQL does) → holding connection and how many times it took the lock.
#[derive(Debug, Default)]
pub(crate) struct UserLocks {
    held: Mutex<HashMap<String, (u32, u64)>>,
    released: Condvar,
}

impl UserLocks {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, (u32, u64)>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `GET_LOCK(name, timeout)`: true once `connection` holds the lock,
    /// false if another held it for all of `timeout` (none: forever).
    pub fn get(&self, connection: u32, name: &str, timeout: Option<Duration>) -> bool {
        let key = name.to_lowercase();
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut held = self.lock();
        loop {
            match held.get_mut(&key) {
                None => {
                    held.insert(key, (connection, 1));
                    return true;
                }
                Some((owner, count)) if *owner == connection => {
                    *count += 1;
                    return true;
                }
                Some(_) => {}
            }
            let wait = match deadline {
                None => Duration::from_secs(1),
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left,
                    _ => return false,
                },
            };
            held = self
                .released
                .wait_timeout(held, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// `RELEASE_LOCK(name)`: `Some(true)` released (once), `Some(false)`
    /// held by another connection, `None` not held at all.
    pub fn release(&self, connection: u32, name: &str) -> Option<bool> {
        let key = name.to_lowercase();
        let mut held = self.lock();
        let (owner, count) = held.get_mut(&key)?;
        if *owner != connection {
            return Some(false);
        }
        *count -= 1;
        if *count == 0 {
            held.remove(&key);
            self.released.notify_all();
        }
        Some(true)
    }

    /// `IS_USED_LOCK(name)`: the holding connection, if any.
    pub fn holder(&self, name: &str) -> Option<u32> {
        self.lock()
            .get(&name.to_lowercase())
            .map(|(owner, _)| *owner)
    }

    /// `RELEASE_ALL_LOCKS()`, and a connection going away: how many times
    /// `connection` held locks.
    pub fn release_all(&self, connection: u32) -> u64 {
        let mut held = self.lock();
        let mut released = 0;
        held.retain(|_, (owner, count)| {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_is_held_by_one_connection_at_a_time_and_reentrantly() {
        let locks = UserLocks::default();
        assert!(locks.get(1, "Deploy", Some(Duration::ZERO)));
        assert!(locks.get(1, "deploy", Some(Duration::ZERO)), "re-entrant");
        assert!(!locks.get(2, "deploy", Some(Duration::ZERO)));
        assert_eq!(locks.holder("DEPLOY"), Some(1));
        assert_eq!(locks.release(2, "deploy"), Some(false));
        assert_eq!(locks.release(1, "deploy"), Some(true));
        assert_eq!(locks.holder("deploy"), Some(1), "taken twice");
        assert_eq!(locks.release(1, "deploy"), Some(true));
        assert_eq!(locks.holder("deploy"), None);
        assert_eq!(locks.release(1, "deploy"), None);
        assert!(locks.get(2, "deploy", Some(Duration::ZERO)));
        assert!(locks.get(2, "other", None));
        assert_eq!(locks.release_all(2), 2);
        assert!(locks.get(3, "deploy", Some(Duration::ZERO)));
    }

    #[test]
    fn a_waiter_takes_the_lock_when_it_is_released_or_gives_up() {
        let locks = std::sync::Arc::new(UserLocks::default());
        assert!(locks.get(1, "x", None));
        assert!(!locks.get(2, "x", Some(Duration::from_millis(1))));
        let waiter = {
            let locks = std::sync::Arc::clone(&locks);
            std::thread::spawn(move || locks.get(2, "x", None))
        };
        assert_eq!(locks.release(1, "x"), Some(true));
        assert!(waiter.join().unwrap());
        assert_eq!(locks.holder("x"), Some(2));
    }
}
