//! The transaction client: buffers a transaction's writes, reads at its
//! start timestamp (resolving the locks of crashed or finished transactions
//! through their primary), and commits with two-phase commit: prewrite every
//! key, commit the primary — the commit point — then the secondaries.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::commands::{
    AcquirePessimisticLock, CheckTxnStatus, Commit, Mutation, Op, PessimisticRollback, Prewrite,
    ResolveLock, Response, Rollback, TxnHeartBeat, TxnStatus,
};
use super::deadlock::{DeadlockDetector, DeadlockHistory, DeadlockRecord, key_hash};
use super::read::{Get, GetCommitted, Read, Scan, ScanLocks, Watched};
use super::store::TxnStore;
use crate::error::{Error, Result};
use crate::mvcc::{LockInfo, physical_ms};
use crate::tso::TimestampSource;

/// Tuning of the client.
#[derive(Debug, Clone)]
pub struct TxnOptions {
    /// Lock TTL in milliseconds: how long others wait before cleaning up.
    pub lock_ttl_ms: u64,
    /// TTL of the locks `SELECT … FOR UPDATE` takes, which stay while the
    /// client works between statements: longer than `lock_wait`, so that
    /// a waiting writer gives up (1205) before it may roll the holder back.
    pub pessimistic_lock_ttl_ms: u64,
    /// How long a reader or writer waits for a live lock before giving up.
    pub lock_wait: Duration,
    /// First pause between attempts while waiting for a lock (it doubles
    /// up to [`MAX_WAIT_PAUSE`] while a pessimistic lock waits).
    pub backoff: Duration,
    /// Whether a transaction asks to commit in one phase when its writes
    /// fall in one region (see [`Transaction::set_one_pc`]).
    pub one_pc: bool,
}

/// The longest pause between two attempts to take a pessimistic lock.
pub const MAX_WAIT_PAUSE: Duration = Duration::from_millis(20);
/// How often a waiter reports its wait again to the deadlock detector
/// (well within the detector's TTL for a wait).
const REPORT_WAIT_EVERY: Duration = Duration::from_millis(500);

impl Default for TxnOptions {
    fn default() -> Self {
        TxnOptions {
            lock_ttl_ms: 3000,
            pessimistic_lock_ttl_ms: 20_000,
            lock_wait: Duration::from_secs(5),
            backoff: Duration::from_millis(5),
            one_pc: true,
        }
    }
}

/// Where a commit stops, to test recovery from a crash at that point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitFault {
    /// After every key is prewritten, before the primary commits.
    AfterPrewrite,
    /// After the primary commits, before any secondary does.
    AfterPrimary,
}

/// Starts transactions against a store.
pub struct TxnClient<S: TxnStore> {
    store: Arc<S>,
    tso: Arc<dyn TimestampSource>,
    options: TxnOptions,
    /// Start timestamps of this client's (and its clones') running
    /// transactions, with how many share each: GC must not collect what
    /// they still read.
    running: Arc<Mutex<BTreeMap<u64, usize>>>,
    /// The newest timestamp a `begin` of this client (or a clone) took.
    seen: Arc<AtomicU64>,
    /// Where pessimistic lock waits are reported (none: waits end only by
    /// timeout).
    detector: Option<Arc<dyn DeadlockDetector>>,
    /// The running transactions that hold pessimistic locks, by start
    /// timestamp, with their primary key: [`keep_alive`](Self::keep_alive)
    /// keeps those locks from expiring while their client thinks.
    pessimistic: Arc<Mutex<BTreeMap<u64, Vec<u8>>>>,
    /// The deadlocks this client's transactions were refused for.
    deadlocks: Arc<DeadlockHistory>,
    /// Commits so far: in one phase, in two.
    commits: Arc<[AtomicU64; 2]>,
}

impl<S: TxnStore> Clone for TxnClient<S> {
    fn clone(&self) -> Self {
        TxnClient {
            store: Arc::clone(&self.store),
            tso: Arc::clone(&self.tso),
            options: self.options.clone(),
            running: Arc::clone(&self.running),
            seen: Arc::clone(&self.seen),
            detector: self.detector.clone(),
            pessimistic: Arc::clone(&self.pessimistic),
            deadlocks: Arc::clone(&self.deadlocks),
            commits: Arc::clone(&self.commits),
        }
    }
}

impl<S: TxnStore> TxnClient<S> {
    pub fn new(store: Arc<S>, tso: Arc<dyn TimestampSource>, options: TxnOptions) -> Self {
        TxnClient {
            store,
            tso,
            options,
            running: Arc::default(),
            seen: Arc::default(),
            detector: None,
            pessimistic: Arc::default(),
            deadlocks: Arc::default(),
            commits: Arc::default(),
        }
    }

    /// Transactions this client (and its clones) committed so far: in one
    /// phase, and in two.
    pub fn commit_counts(&self) -> (u64, u64) {
        (
            self.commits[0].load(Ordering::Relaxed),
            self.commits[1].load(Ordering::Relaxed),
        )
    }

    /// The last deadlocks this client's (and its clones') transactions
    /// were refused for, oldest first.
    pub fn deadlocks(&self) -> Vec<DeadlockRecord> {
        self.deadlocks.list()
    }

    /// Reports pessimistic lock waits to `detector`, which refuses those
    /// that would deadlock.
    pub fn with_detector(mut self, detector: Arc<dyn DeadlockDetector>) -> Self {
        self.detector = Some(detector);
        self
    }

    /// Raises the primary lock's TTL of every running transaction (begun
    /// through this client or a clone) that holds pessimistic locks to
    /// `pessimistic_lock_ttl_ms` from now, as MySQL holds a row lock for
    /// as long as its transaction lasts, however long its client waits
    /// between statements. Call it more often than that TTL. Returns how
    /// many transactions it kept alive; one whose lock is already gone
    /// (it finished meanwhile, or was resolved) is skipped; if any failed,
    /// the last failure, once every one was tried.
    pub fn keep_alive(&self) -> Result<usize> {
        let live: Vec<(u64, Vec<u8>)> = self
            .pessimistic
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(ts, primary)| (*ts, primary.clone()))
            .collect();
        if live.is_empty() {
            return Ok(0);
        }
        let now = physical_ms(self.tso.get_ts()?);
        let mut kept = 0;
        let mut failure = None;
        for (start_ts, primary) in live {
            let cmd = TxnHeartBeat {
                primary,
                start_ts,
                advise_ttl: now.saturating_sub(physical_ms(start_ts))
                    + self.options.pessimistic_lock_ttl_ms,
            };
            // One transaction's failure (its region unreachable) does not
            // stop the others' heartbeats.
            match self.store.execute(cmd.into()) {
                Ok(_) => kept += 1,
                Err(Error::TxnLockNotFound { .. }) => {}
                Err(e) => failure = Some(e),
            }
        }
        failure.map_or(Ok(kept), Err)
    }

    /// The start timestamp of the oldest transaction begun through this
    /// client (or a clone) that has not committed, rolled back or been
    /// dropped: a GC safe point must stay below it.
    pub fn oldest_running(&self) -> Option<u64> {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.keys().next().copied()
    }

    /// An optimistic transaction reading at a fresh timestamp.
    fn register(&self, ts: u64) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        *running.entry(ts).or_default() += 1;
    }

    fn unregister(&self, ts: u64) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = running.get_mut(&ts) {
            *n -= 1;
            if *n == 0 {
                running.remove(&ts);
            }
        }
    }

    pub fn begin(&self) -> Result<Transaction<S>> {
        // Registered before the timestamp is taken, under a bound below it
        // (the newest timestamp this client saw), so that a GC reading the
        // registry meanwhile cannot pass the start. A margin of
        // `gc_life_time` would not do: the oracle's clock may step.
        let bound = self.seen.load(Ordering::SeqCst);
        self.register(bound);
        let taken = self.tso.get_ts();
        if let Ok(ts) = taken {
            self.register(ts);
            self.seen.fetch_max(ts, Ordering::SeqCst);
        }
        self.unregister(bound);
        let start_ts = taken?;
        Ok(Transaction {
            client: self.clone(),
            start_ts,
            writes: BTreeMap::new(),
            pessimistic_locks: BTreeMap::new(),
            locked_values: BTreeMap::new(),
            watched: BTreeSet::new(),
            primary: None,
            lock_wait: self.options.lock_wait,
            pessimistic_mode: false,
            read_ts: 0,
            one_pc: self.options.one_pc,
            writes_watched: false,
        })
    }

    /// A read-only view at `ts` (no buffering, no commit).
    pub fn get_at(&self, key: &[u8], ts: u64) -> Result<Option<Vec<u8>>> {
        let read: Read = Get {
            key: key.to_vec(),
            ts,
        }
        .into();
        let answer = self.with_lock_resolution(|| self.store.read(&read))?;
        Ok(answer.pairs.into_iter().next().map(|p| p.value))
    }

    /// A read-only scan of `[start, end)` at `ts`: up to `limit` pairs.
    pub fn scan_at(
        &self,
        start: &[u8],
        end: &[u8],
        ts: u64,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        // An empty upper bound holds nothing here (in a read it would mean
        // no bound).
        if end.is_empty() {
            return Ok(Vec::new());
        }
        let read: Read = Scan {
            start: start.to_vec(),
            end: end.to_vec(),
            ts,
            limit: limit as u64,
        }
        .into();
        Ok(self
            .with_lock_resolution(|| self.store.read(&read))?
            .into_pairs())
    }

    /// Runs `read`, resolving the locks it reports, until it succeeds or a
    /// live lock outlasts the wait.
    fn with_lock_resolution<T>(&self, mut read: impl FnMut() -> Result<T>) -> Result<T> {
        self.wait_out_locks(self.options.lock_wait, None, |_| read())
    }

    /// Runs `attempt` until no live lock stands in its way, resolving the
    /// locks of finished or expired transactions, for at most `wait` (then
    /// the lock it met: a lock wait timeout). A `waiter` (a transaction that
    /// holds locks of its own) reports each wait to the deadlock detector
    /// first and gives up at once on a deadlock; its attempts are given how
    /// long the store may hold them on a live lock (the region's leader
    /// runs such an attempt again the moment the lock goes, see the raft
    /// crate's lock waits), so it proceeds as soon as the holder finishes.
    /// Other attempts are repeated after a pause.
    fn wait_out_locks<T>(
        &self,
        wait: Duration,
        waiter: Option<u64>,
        mut attempt: impl FnMut(Duration) -> Result<T>,
    ) -> Result<T> {
        // Wall time, not the sum of the pauses: each attempt also costs a
        // round through the store.
        let started = std::time::Instant::now();
        let detector = waiter.zip(self.detector.as_ref());
        let mut pause = self.options.backoff;
        let mut reported: Option<(u64, std::time::Instant)> = None;
        // The holder of the lock the last attempt met.
        let mut last_holder = None;
        // How long the next attempt may wait in the store: not before the
        // wait is known to be live and reported.
        let mut park = Duration::ZERO;
        let outcome = loop {
            let asked = std::time::Instant::now();
            match attempt(park) {
                Err(Error::KeyIsLocked(info)) => {
                    match self.resolve(&info) {
                        Ok(true) => {
                            park = Duration::ZERO;
                            continue;
                        }
                        Ok(false) => {}
                        Err(e) => break Err(e),
                    }
                    // Reported when the wait begins or moves to another
                    // holder, and again often enough to outlive the TTL.
                    let moved = last_holder.replace(info.start_ts) != Some(info.start_ts);
                    let due = reported.is_none_or(|(holder, at)| {
                        holder != info.start_ts || at.elapsed() >= REPORT_WAIT_EVERY
                    });
                    if let Some((w, d)) = detector.filter(|_| due) {
                        if let Err(e) = d.wait_for(w, info.start_ts, key_hash(&info.key)) {
                            if let Error::Deadlock { cycle, .. } = &e {
                                self.deadlocks
                                    .record(w, info.start_ts, &info.key, cycle.clone());
                            }
                            break Err(e);
                        }
                        reported = Some((info.start_ts, std::time::Instant::now()));
                    }
                    let Some(left) = wait.checked_sub(started.elapsed()).filter(|l| !l.is_zero())
                    else {
                        break Err(Error::KeyIsLocked(info));
                    };
                    // A store that held the attempt gives it back when the
                    // lock goes, when the wait runs out, or when another
                    // holder stands in the way: only an early answer with the
                    // same holder (a store that does not hold attempts) is
                    // followed by a pause, so that it is not asked in a loop.
                    let held = waiter.is_some()
                        && (park.is_zero() || moved || asked.elapsed() >= park / 2);
                    if !held {
                        std::thread::sleep(pause.min(left));
                        // A long wait asks less often (each ask is a command
                        // through the holder's primary region).
                        pause = (pause * 2).min(MAX_WAIT_PAUSE.max(self.options.backoff));
                    }
                    park = if waiter.is_some() {
                        left.min(REPORT_WAIT_EVERY)
                    } else {
                        Duration::ZERO
                    };
                }
                other => break other,
            }
        };
        if let Some((w, d)) = detector.filter(|_| reported.is_some()) {
            d.clean_up(w);
        }
        outcome
    }

    /// Settles every lock at or below `safe_point` whose transaction is
    /// decided (or expired), so that GC to `safe_point` may run. Returns how
    /// many were resolved.
    pub fn resolve_locks_below(&self, safe_point: u64) -> Result<usize> {
        let read = ScanLocks {
            start: Vec::new(),
            end: Vec::new(),
            max_ts: safe_point,
            limit: 4096,
        };
        let locks = self.store.read(&read.into())?.into_locks();
        let mut resolved = 0;
        for (key, lock) in locks {
            if self.resolve(&lock.info(&key))? {
                resolved += 1;
            }
        }
        Ok(resolved)
    }

    /// Settles the transaction behind `lock` through its primary. `false` if
    /// it is still alive.
    fn resolve(&self, lock: &LockInfo) -> Result<bool> {
        let status = self.store.execute(
            CheckTxnStatus {
                primary: lock.primary.clone(),
                lock_ts: lock.start_ts,
                current_ts: self.tso.get_ts()?,
                rollback_if_not_exist: true,
            }
            .into(),
        )?;
        let Response::TxnStatus(status) = status else {
            return Err(Error::Tso(
                "check-txn-status answered without a status".into(),
            ));
        };
        let commit_ts = match status {
            TxnStatus::Locked { .. } => return Ok(false),
            TxnStatus::Committed { commit_ts } => commit_ts,
            TxnStatus::RolledBack
            | TxnStatus::TtlExpired
            | TxnStatus::LockNotExistRolledBack
            | TxnStatus::NotFound => 0,
        };
        let cmd = ResolveLock {
            keys: vec![lock.key.clone()],
            start_ts: lock.start_ts,
            commit_ts,
        };
        self.store.execute(cmd.into())?;
        Ok(true)
    }
}

/// One transaction: snapshot reads at `start_ts`, buffered writes.
pub struct Transaction<S: TxnStore> {
    client: TxnClient<S>,
    start_ts: u64,
    writes: BTreeMap<Vec<u8>, Mutation>,
    /// Keys holding this transaction's pessimistic lock, with their `for_update_ts`.
    pessimistic_locks: BTreeMap<Vec<u8>, u64>,
    /// The latest committed value of each locked key, read when the lock
    /// was taken: this transaction's reads see it rather than the snapshot,
    /// so that what it writes there builds on the newest version.
    locked_values: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Keys no other transaction may write after `start_ts` if this one is
    /// to commit (see [`Transaction::watch`]).
    watched: BTreeSet<Vec<u8>>,
    primary: Option<Vec<u8>>,
    /// How long taking a pessimistic lock waits for another's.
    lock_wait: Duration,
    /// The SQL layer runs it pessimistically (see
    /// [`set_pessimistic`](Self::set_pessimistic)).
    pessimistic_mode: bool,
    /// What the writes buffered now build on was read at this timestamp
    /// (see [`set_read_ts`](Self::set_read_ts)); 0: the start.
    read_ts: u64,
    /// Ask for a one-phase commit (see [`set_one_pc`](Self::set_one_pc)).
    one_pc: bool,
    /// See [`writes_watched`](Self::writes_watched).
    writes_watched: bool,
}

impl<S: TxnStore> Drop for Transaction<S> {
    fn drop(&mut self) {
        if !self.pessimistic_locks.is_empty() {
            self.client
                .pessimistic
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&self.start_ts);
        }
        self.client.unregister(self.start_ts);
    }
}

/// A transaction's buffered writes at one point: a statement that fails
/// inside a transaction returns to it, leaving the earlier statements' writes.
#[derive(Debug, Clone, Default)]
pub struct Savepoint {
    writes: BTreeMap<Vec<u8>, Mutation>,
    primary: Option<Vec<u8>>,
}

impl<S: TxnStore> Transaction<S> {
    /// How long taking a pessimistic lock may wait for another
    /// transaction's (`innodb_lock_wait_timeout`).
    pub fn set_lock_wait(&mut self, wait: Duration) {
        self.lock_wait = wait;
    }

    /// Whether the commit asks the store to commit in one phase: a
    /// transaction whose writes all fall in one region is then committed by
    /// that region's leader in one Raft round, at a timestamp the leader
    /// picks above every read it served of the region, with no second
    /// phase. Others commit in two phases as before.
    pub fn set_one_pc(&mut self, on: bool) {
        self.one_pc = on;
    }

    /// Marks the transaction as a writer of keys other transactions watch
    /// (see [`watch`](Self::watch)): it commits in two phases whatever
    /// [`set_one_pc`](Self::set_one_pc) says. Its commit timestamp is then
    /// taken after its locks are in place, above the timestamp any watcher
    /// that missed them checked at — a one-phase commit's, picked from
    /// the region's reads, could land below it.
    pub fn writes_watched(&mut self) {
        self.writes_watched = true;
    }

    /// Marks the transaction as run pessimistically: each statement locks
    /// the rows it changes when it runs. The mark is the SQL layer's; the
    /// transaction itself behaves the same.
    pub fn set_pessimistic(&mut self) {
        self.pessimistic_mode = true;
    }

    /// The writes buffered from now on build on reads at `ts` (a
    /// statement's rows read through their fresh locks), so their keys are
    /// checked for conflicts from `ts` on, not from the start; 0 goes back
    /// to the start. A key written again later takes the mark then in
    /// force.
    pub fn set_read_ts(&mut self, ts: u64) {
        self.read_ts = ts;
    }

    /// The oldest `for_update_ts` of the locks on `keys` (all taken by
    /// [`lock_for_update`](Self::lock_for_update)), or `None` if one is
    /// not locked.
    pub fn locked_since(&self, keys: &[Vec<u8>]) -> Option<u64> {
        keys.iter()
            .map(|k| self.pessimistic_locks.get(k).copied())
            .min()
            .flatten()
    }

    pub fn is_pessimistic(&self) -> bool {
        self.pessimistic_mode
    }

    pub fn start_ts(&self) -> u64 {
        self.start_ts
    }

    /// The writes buffered so far.
    pub fn savepoint(&self) -> Savepoint {
        Savepoint {
            writes: self.writes.clone(),
            primary: self.primary.clone(),
        }
    }

    /// Forgets the writes buffered since `savepoint`. Pessimistic locks taken
    /// since stay held (and are released with the transaction).
    pub fn rollback_to(&mut self, savepoint: Savepoint) {
        self.writes = savepoint.writes;
        for k in self.pessimistic_locks.keys() {
            self.writes
                .entry(k.clone())
                .or_insert_with(|| Mutation::new(Op::Lock, k.clone(), Vec::new()));
        }
        // Pessimistic locks name the primary they were taken with.
        if self.pessimistic_locks.is_empty() {
            self.primary = savepoint
                .primary
                .or_else(|| self.writes.keys().next().cloned());
        }
    }

    /// The value of `key`: this transaction's own write, else the snapshot.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(m) = self.writes.get(key) {
            return Ok(match m.op() {
                Op::Put | Op::Insert => Some(m.value.clone()),
                Op::Delete => None,
                Op::Lock => match self.locked_values.get(key) {
                    Some(latest) => latest.clone(),
                    None => self.client.get_at(key, self.start_ts)?,
                },
            });
        }
        self.client.get_at(key, self.start_ts)
    }

    /// Runs `read` at a linearizable point (every command committed before
    /// the call is applied here, by the row store and by anything that
    /// applies with it), resolving the locks it reports until it succeeds
    /// or a live lock outlasts the wait. For readers other than the row
    /// store, such as the columnar replica.
    pub fn read_with<T>(&self, mut read: impl FnMut() -> Result<T>) -> Result<T> {
        self.client.with_lock_resolution(|| {
            self.client.store.catch_up(self.start_ts)?;
            read()
        })
    }

    /// Whether this transaction has buffered writes in `[start, end)`
    /// (which readers of committed data alone would miss).
    pub fn has_writes_in(&self, start: &[u8], end: &[u8]) -> bool {
        self.writes
            .range(start.to_vec()..end.to_vec())
            .any(|(_, m)| m.op() != Op::Lock)
    }

    /// Up to `limit` pairs of `[start, end)`, merged with this transaction's writes.
    pub fn scan(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let in_range = |k: &[u8]| k >= start && end.is_none_or(|e| k < e);
        // Each buffered write in the range hides at most one committed pair:
        // that many more than `limit` committed pairs are enough.
        let writes_in_range = || {
            self.writes
                .range::<[u8], _>((std::ops::Bound::Included(start), std::ops::Bound::Unbounded))
                .take_while(|(k, _)| in_range(k))
        };
        let buffered = writes_in_range().count();
        let committed = match end {
            // An empty upper bound holds nothing (an empty `end` in a read
            // would mean no bound).
            Some([]) => Vec::new(),
            _ => {
                let read: Read = Scan {
                    start: start.to_vec(),
                    end: end.unwrap_or_default().to_vec(),
                    ts: self.start_ts,
                    limit: limit.saturating_add(buffered) as u64,
                }
                .into();
                self.client
                    .with_lock_resolution(|| self.client.store.read(&read))?
                    .into_pairs()
            }
        };
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = committed.into_iter().collect();
        for (k, m) in writes_in_range() {
            match m.op() {
                Op::Put | Op::Insert => {
                    merged.insert(k.clone(), m.value.clone());
                }
                Op::Delete => {
                    merged.remove(k);
                }
                Op::Lock => match self.locked_values.get(k) {
                    Some(Some(latest)) => {
                        merged.insert(k.clone(), latest.clone());
                    }
                    Some(None) => {
                        merged.remove(k);
                    }
                    None => {}
                },
            }
        }
        Ok(merged.into_iter().take(limit).collect())
    }

    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.buffer(Mutation::new(Op::Put, key, value));
    }

    /// Puts `key` only if it has no value at commit (else `AlreadyExist`).
    /// A key this transaction deleted is simply put back: its committed
    /// value is the one the delete removed.
    pub fn insert(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        let key = key.into();
        let op = match self.writes.get(&key) {
            Some(m) if m.op() == Op::Delete => Op::Put,
            _ => Op::Insert,
        };
        self.buffer(Mutation::new(op, key, value));
    }

    pub fn delete(&mut self, key: impl Into<Vec<u8>>) {
        self.buffer(Mutation::new(Op::Delete, key, Vec::new()));
    }

    fn buffer(&mut self, mut m: Mutation) {
        self.primary.get_or_insert_with(|| m.key.clone());
        m.read_ts = self.read_ts;
        self.writes.insert(m.key.clone(), m);
    }

    /// `SELECT … FOR UPDATE`: locks `keys` now and returns their latest
    /// committed values, which this transaction's reads of those keys see
    /// from now on. Another transaction's write to them waits for (or
    /// conflicts with) this one.
    ///
    /// A key this transaction already wrote, from its snapshot, is locked as
    /// of the start instead: a commit to it since then is a write conflict,
    /// as its prewrite would have found (a lock taken now would let that
    /// stale write overwrite the newer commit). The primary key is always
    /// among the locked keys, since others decide this transaction's fate
    /// by it; one that an earlier write chose is locked the same way.
    pub fn lock_for_update(&mut self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // Keys this transaction holds already: nobody committed them since
        // they were locked, so the values read then are still the latest.
        if keys.iter().all(|k| self.pessimistic_locks.contains_key(k)) {
            return Ok(keys
                .iter()
                .map(|k| self.locked_values.get(k).cloned().flatten())
                .collect());
        }
        let primary = self.primary.get_or_insert_with(|| keys[0].clone()).clone();
        let wrote = |k: &Vec<u8>| {
            !self.pessimistic_locks.contains_key(k)
                && self.writes.get(k).is_some_and(|m| m.op() != Op::Lock)
        };
        let mut since_start: Vec<Vec<u8>> = keys.iter().filter(|k| wrote(k)).cloned().collect();
        if !self.pessimistic_locks.contains_key(&primary) && !keys.contains(&primary) {
            since_start.insert(0, primary.clone());
        }
        let fresh: Vec<Vec<u8>> = keys
            .iter()
            .filter(|k| !since_start.contains(k))
            .cloned()
            .collect();
        // The primary's lock goes first: a secondary's lock never points
        // at a primary without one.
        let mut for_update_ts = self.client.tso.get_ts()?;
        let (first, second) = if fresh.contains(&primary) {
            ((fresh, true), (since_start, false))
        } else {
            ((since_start, false), (fresh, true))
        };
        for (keys, is_fresh) in [first, second] {
            if keys.is_empty() {
                continue;
            }
            if !is_fresh {
                self.acquire_pessimistic(&keys, self.start_ts, self.lock_wait)?;
                continue;
            }
            // A commit after `for_update_ts` — typically by the holder this
            // lock waited for — is no conflict for a fresh lock: it is
            // taken again at a newer timestamp, whose read sees the commit,
            // for as long as the lock wait lasts.
            let deadline = std::time::Instant::now() + self.lock_wait;
            loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                match self.acquire_pessimistic(&keys, for_update_ts, left) {
                    Err(Error::WriteConflict { .. }) if !left.is_zero() => {
                        for_update_ts = self.client.tso.get_ts()?;
                    }
                    outcome => break outcome?,
                }
            }
        }
        let read = GetCommitted {
            keys: keys.to_vec(),
            ts: for_update_ts,
        };
        let found: BTreeMap<Vec<u8>, Vec<u8>> = self
            .client
            .store
            .read(&read.into())?
            .into_pairs()
            .into_iter()
            .collect();
        let values: Vec<Option<Vec<u8>>> = keys.iter().map(|k| found.get(k).cloned()).collect();
        for (k, v) in keys.iter().zip(&values) {
            self.locked_values.insert(k.clone(), v.clone());
        }
        Ok(values)
    }

    /// Takes this transaction's pessimistic locks on `keys`, failing on any
    /// commit to them after `for_update_ts`, waiting up to `wait` for
    /// another transaction's lock.
    fn acquire_pessimistic(
        &mut self,
        keys: &[Vec<u8>],
        for_update_ts: u64,
        wait: Duration,
    ) -> Result<()> {
        let Some(primary) = self.primary.clone() else {
            return Err(Error::Tso("a pessimistic lock without a primary".into()));
        };
        let cmd = AcquirePessimisticLock {
            keys: keys.to_vec(),
            primary,
            start_ts: self.start_ts,
            for_update_ts,
            lock_ttl: self.elapsed_ms()? + self.client.options.pessimistic_lock_ttl_ms,
            wait_ms: 0,
        };
        self.client
            .wait_out_locks(wait, Some(self.start_ts), |park| {
                let cmd = AcquirePessimisticLock {
                    wait_ms: u64::try_from(park.as_millis()).unwrap_or(u64::MAX),
                    ..cmd.clone()
                };
                self.client.store.execute(cmd.into())
            })?;
        if self.pessimistic_locks.is_empty() {
            self.client
                .pessimistic
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(self.start_ts, cmd.primary.clone());
        }
        for k in keys {
            self.pessimistic_locks.insert(k.clone(), for_update_ts);
            self.writes
                .entry(k.clone())
                .or_insert_with(|| Mutation::new(Op::Lock, k.clone(), Vec::new()));
        }
        Ok(())
    }

    /// Commits in one phase where it can, else in two; returns the commit
    /// timestamp (0 if nothing was written).
    pub fn commit(self) -> Result<u64> {
        self.commit_with_fault(None)
    }

    /// [`commit`](Self::commit), stopping early at `fault` as a crash would
    /// (a transaction given a fault commits in two phases).
    pub fn commit_with_fault(mut self, fault: Option<CommitFault>) -> Result<u64> {
        let Some(primary) = self.primary.clone() else {
            return Ok(0);
        };
        let mut mutations: Vec<Mutation> = std::mem::take(&mut self.writes).into_values().collect();
        // The primary goes first, so its lock exists before any secondary's.
        if let Some(i) = mutations.iter().position(|m| m.key == primary) {
            mutations.swap(0, i);
        }
        let max_for_update = self.pessimistic_locks.values().copied().max().unwrap_or(0);
        let mut prewrite = Prewrite {
            pessimistic: mutations
                .iter()
                .map(|m| self.pessimistic_locks.contains_key(&m.key))
                .collect(),
            mutations,
            primary: primary.clone(),
            start_ts: self.start_ts,
            lock_ttl: self.lock_ttl()?,
            for_update_ts: max_for_update,
            min_commit_ts: max_for_update + 1,
            try_one_pc: self.one_pc && !self.writes_watched && fault.is_none(),
            max_commit_ts: 0,
        };
        let keys: Vec<Vec<u8>> = prewrite.mutations.iter().map(|m| m.key.clone()).collect();
        // A one-phase commit lands at or below a timestamp whose check of
        // the watched keys passed.
        if prewrite.try_one_pc && !self.watched.is_empty() {
            let bound = self.client.tso.get_ts()?;
            if let Err(e) = self.check_watched(bound, &keys) {
                let _ = self.rollback_keys(&keys);
                return Err(e);
            }
            prewrite.max_commit_ts = bound;
        }
        match self
            .client
            .with_lock_resolution(|| self.client.store.execute(prewrite.clone().into()))
        {
            Ok(Response::Committed { commit_ts }) => {
                self.client.commits[0].fetch_add(1, Ordering::Relaxed);
                return Ok(commit_ts);
            }
            Ok(_) => {}
            Err(e) => {
                let _ = self.rollback_keys(&keys);
                return Err(e);
            }
        }
        if fault == Some(CommitFault::AfterPrewrite) {
            return Ok(0);
        }
        let commit_ts = self.client.tso.get_ts()?;
        if let Err(e) = self.check_watched(commit_ts, &keys) {
            let _ = self.rollback_keys(&keys);
            return Err(e);
        }
        let commit = Commit {
            keys: vec![primary.clone()],
            start_ts: self.start_ts,
            commit_ts,
        };
        self.commit_primary(commit)?;
        self.client.commits[1].fetch_add(1, Ordering::Relaxed);
        if fault == Some(CommitFault::AfterPrimary) {
            return Ok(commit_ts);
        }
        let secondaries: Vec<Vec<u8>> = keys.into_iter().filter(|k| *k != primary).collect();
        if !secondaries.is_empty() {
            // The transaction is committed; a failure here is repaired by readers.
            let _ = self.client.store.execute(
                Commit {
                    keys: secondaries,
                    start_ts: self.start_ts,
                    commit_ts,
                }
                .into(),
            );
        }
        Ok(commit_ts)
    }

    /// Makes the commit depend on `key` as if the transaction had
    /// read-locked it: a write of it committed by another transaction after
    /// this one's start, or a lock another transaction (started below this
    /// one's commit timestamp) holds on it when this one commits, fails the
    /// commit with [`Error::WatchedKeyChanged`] and rolls its writes back.
    /// A writer of rows watches the definition they are shaped by, so that
    /// it never commits them after a schema change replaced it.
    pub fn watch(&mut self, key: &[u8]) {
        if !self.watched.contains(key) {
            self.watched.insert(key.to_vec());
        }
    }

    /// Fails if a watched key was written after the start, or another
    /// transaction holds a lock on it that may yet commit a change it did
    /// not see this one's writes for. A lock of a finished transaction is
    /// settled first. A key among `written` is checked by the prewrite.
    fn check_watched(&self, commit_ts: u64, written: &[Vec<u8>]) -> Result<()> {
        for key in &self.watched {
            if written.contains(key) {
                continue;
            }
            let changed = || Error::WatchedKeyChanged {
                start_ts: self.start_ts,
                key: key.clone(),
            };
            let mut resolved = false;
            loop {
                let read = Watched {
                    key: key.clone(),
                    since_ts: self.start_ts + 1,
                };
                let answer = self.client.store.read(&read.into())?;
                let lock = answer.locks.first().and_then(|l| l.lock.as_ref());
                match lock {
                    Some(lock) if lock.start_ts != self.start_ts && lock.start_ts < commit_ts => {
                        if resolved || !self.client.resolve(&lock.info(key))? {
                            return Err(changed());
                        }
                        resolved = true;
                        continue;
                    }
                    _ => {}
                }
                if answer.written {
                    return Err(changed());
                }
                break;
            }
        }
        Ok(())
    }

    /// Commits the primary: the commit point. If the store cannot tell
    /// whether it applied (`Unavailable`), the command is sent again — commit
    /// is idempotent — until its outcome is known.
    fn commit_primary(&self, commit: Commit) -> Result<()> {
        let mut attempts = 0;
        loop {
            match self.client.store.execute(commit.clone().into()) {
                Err(Error::Unavailable(_)) if attempts < 10 => {
                    attempts += 1;
                    std::thread::sleep(self.client.options.backoff.max(Duration::from_millis(10)));
                }
                Err(Error::Unavailable(why)) => {
                    return Err(Error::Unavailable(format!(
                        "the outcome of transaction {} is unknown: {why}",
                        self.start_ts
                    )));
                }
                other => return other.map(|_| ()),
            }
        }
    }

    /// A lock TTL counted from now rather than from `start_ts` (which is
    /// what check-txn-status measures it against).
    fn lock_ttl(&self) -> Result<u64> {
        Ok(self.elapsed_ms()? + self.client.options.lock_ttl_ms)
    }

    /// Milliseconds since the transaction started.
    fn elapsed_ms(&self) -> Result<u64> {
        let now = physical_ms(self.client.tso.get_ts()?);
        Ok(now.saturating_sub(physical_ms(self.start_ts)))
    }

    /// Abandons the transaction, releasing any locks it took.
    pub fn rollback(mut self) -> Result<()> {
        let keys: Vec<Vec<u8>> = self.pessimistic_locks.keys().cloned().collect();
        self.writes.clear();
        if keys.is_empty() {
            return Ok(());
        }
        self.client
            .store
            .execute(
                PessimisticRollback {
                    keys,
                    start_ts: self.start_ts,
                }
                .into(),
            )
            .map(|_| ())
    }

    fn rollback_keys(&self, keys: &[Vec<u8>]) -> Result<()> {
        self.client
            .store
            .execute(
                Rollback {
                    keys: keys.to_vec(),
                    start_ts: self.start_ts,
                }
                .into(),
            )
            .map(|_| ())
    }
}
