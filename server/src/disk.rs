//! The node's guard against a full disk. A reserve of the data
//! directory's filesystem (`reserve_space_mb`, at most a tenth of it) is
//! never given to new data: once less than that is free, the node's
//! stores refuse prewrites and pessimistic locks with `DiskFull` (MySQL
//! error 1021), their followers stop taking appends, the node hands its
//! leaders to other nodes and tells the placement driver, which sends it
//! no replica and no leader; reads, commits, rollbacks, GC and timestamps
//! go on. Half of the reserve is held by a placeholder file made while
//! space is plentiful and deleted when another writer leaves less than
//! that free, so the node's own settling writes find room even on a disk
//! someone else filled (TiKV's `reserve-space` works the same way). When
//! space is back, writes are taken again and followers catch up.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use duet_raft::store::RaftStore;
use duet_storage::engine::rocks::RocksEngine;
use tracing::{info, warn};

/// How often the free space is looked at.
pub const CHECK_EVERY: Duration = Duration::from_millis(500);
/// The placeholder's file name, in the data directory.
pub const PLACEHOLDER: &str = "space_placeholder";

/// A filesystem's size and what is free of it for this process, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    pub capacity: u64,
    pub available: u64,
}

/// The space of the filesystem holding `dir`.
pub fn space(dir: &Path) -> std::io::Result<Space> {
    let s = rustix::fs::statvfs(dir)?;
    Ok(Space {
        capacity: s.f_blocks.saturating_mul(s.f_frsize),
        available: s.f_bavail.saturating_mul(s.f_frsize),
    })
}

/// The bytes kept free of new data on a filesystem of `capacity` bytes.
pub fn reserve(configured_mb: u64, capacity: u64) -> u64 {
    (configured_mb.saturating_mul(1 << 20)).min(capacity / 10)
}

/// What to do with the placeholder after a look at the free space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    Keep,
    Make,
    Delete,
}

/// The full/not-full decision, from the free space seen each time.
#[derive(Debug, Clone)]
pub struct Guard {
    reserve: u64,
    placeholder: bool,
    full: bool,
}

impl Guard {
    /// A guard keeping `reserve` bytes free; `placeholder`: whether the
    /// placeholder file exists now.
    pub fn new(reserve: u64, placeholder: bool) -> Guard {
        Guard {
            reserve,
            placeholder,
            full: false,
        }
    }

    pub fn is_full(&self) -> bool {
        self.full
    }

    /// The placeholder's size: half the reserve.
    pub fn placeholder_bytes(&self) -> u64 {
        self.reserve / 2
    }

    /// Takes a look at `available` free bytes: whether the node is now
    /// short of space, and what to do with the placeholder.
    pub fn observe(&mut self, available: u64) -> (bool, Placeholder) {
        if self.reserve == 0 {
            self.full = false;
            return (false, Placeholder::Keep);
        }
        self.full = available < self.reserve;
        let half = self.placeholder_bytes();
        let action = if self.full && self.placeholder && available < half {
            self.placeholder = false;
            Placeholder::Delete
        } else if !self.full && !self.placeholder && available >= self.reserve + 2 * half {
            // Made only where it leaves the node well above its reserve.
            self.placeholder = true;
            Placeholder::Make
        } else {
            Placeholder::Keep
        };
        (self.full, action)
    }
}

/// Makes or deletes the placeholder in `dir`.
fn act(dir: &Path, action: Placeholder, bytes: u64) -> std::io::Result<()> {
    let path: PathBuf = dir.join(PLACEHOLDER);
    match action {
        Placeholder::Keep => Ok(()),
        Placeholder::Delete => std::fs::remove_file(path),
        Placeholder::Make => {
            let file = std::fs::File::create(&path)?;
            let made = rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, bytes);
            if let Err(e) = made {
                let _ = std::fs::remove_file(&path);
                return Err(e.into());
            }
            file.sync_all()
        }
    }
}

/// Watches the free space of `dir` until the task is dropped, marking the
/// node's row store full or not, and, while full, handing away the leaders
/// of regions that have another voter. (The columnar learners go on: they
/// keep no rows, their log is compacted as it applies, and a stalled
/// learner would stall the node's analytic reads.)
pub async fn guard_loop(dir: PathBuf, reserve_mb: u64, store: Arc<RaftStore<RocksEngine>>) {
    let capacity = space(&dir).map_or(0, |s| s.capacity);
    let placeholder = dir.join(PLACEHOLDER).exists();
    let guard = Arc::new(Mutex::new(Guard::new(
        reserve(reserve_mb, capacity),
        placeholder,
    )));
    let mut ticker = tokio::time::interval(CHECK_EVERY);
    loop {
        ticker.tick().await;
        let (dir, guard, store) = (dir.clone(), Arc::clone(&guard), Arc::clone(&store));
        // The store's status waits on its thread: off the runtime.
        let checked = tokio::task::spawn_blocking(move || {
            let mut guard = guard.lock().unwrap_or_else(|e| e.into_inner());
            check(&dir, &mut guard, &store);
        });
        if let Err(e) = checked.await {
            warn!(error = %e, "the disk space check failed");
        }
    }
}

/// One look at the free space, and what follows from it.
fn check(dir: &Path, guard: &mut Guard, store: &RaftStore<RocksEngine>) {
    let Ok(now) = space(dir) else { return };
    let was_full = guard.is_full();
    let (full, action) = guard.observe(now.available);
    if let Err(e) = act(dir, action, guard.placeholder_bytes()) {
        warn!(error = %e, ?action, "cannot change the disk space placeholder");
    }
    if full != was_full {
        if full {
            warn!(
                available = now.available,
                "the data directory is short of space: refusing new data until it is freed"
            );
        } else {
            info!(
                available = now.available,
                "disk space is back: taking writes again"
            );
        }
    }
    store.set_disk_full(full);
    if full {
        let led = (store.status().into_iter()).filter(|r| r.is_leader && r.voters.len() > 1);
        for r in led {
            store.step_aside(r.region_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    #[test]
    fn the_reserve_is_at_most_a_tenth_of_the_disk() {
        assert_eq!(reserve(1024, 100 * 1024 * MB), 1024 * MB);
        assert_eq!(reserve(1024, 200 * MB), 20 * MB);
        assert_eq!(reserve(0, 200 * MB), 0);
    }

    #[test]
    fn the_guard_fills_frees_and_keeps_a_placeholder() {
        let mut g = Guard::new(100 * MB, false);
        // Plenty of space: the placeholder is made, nothing is refused.
        assert_eq!(g.observe(1000 * MB), (false, Placeholder::Make));
        assert_eq!(g.observe(900 * MB), (false, Placeholder::Keep));
        // Below the reserve: full, the placeholder kept while above half.
        assert_eq!(g.observe(99 * MB), (true, Placeholder::Keep));
        // Someone filled the disk: the placeholder goes, once.
        assert_eq!(g.observe(10 * MB), (true, Placeholder::Delete));
        assert_eq!(g.observe(60 * MB), (true, Placeholder::Keep));
        // Space freed: writes again, the placeholder only once well above.
        assert_eq!(g.observe(120 * MB), (false, Placeholder::Keep));
        assert_eq!(g.observe(250 * MB), (false, Placeholder::Make));
        assert!(!g.is_full());
    }

    #[test]
    fn no_reserve_is_never_full() {
        let mut g = Guard::new(0, false);
        assert_eq!(g.observe(0), (false, Placeholder::Keep));
    }

    #[test]
    fn the_placeholder_is_made_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        act(dir.path(), Placeholder::Make, 4 * MB).unwrap();
        let made = std::fs::metadata(dir.path().join(PLACEHOLDER)).unwrap();
        assert_eq!(made.len(), 4 * MB);
        act(dir.path(), Placeholder::Delete, 4 * MB).unwrap();
        assert!(!dir.path().join(PLACEHOLDER).exists());
        let s = space(dir.path()).unwrap();
        assert!(s.capacity > 0 && s.available <= s.capacity, "{s:?}");
    }
}
