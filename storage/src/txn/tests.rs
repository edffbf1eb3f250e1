//! Snapshot isolation, lock resolution and crash recovery of the transaction
//! client, on a manual clock: no sleeps, every outcome decided by the test.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::engine::Engine;
use crate::engine::memory::MemoryEngine;
use crate::engine::rocks::{RocksConfig, RocksEngine};
use crate::error::Error;
use crate::tso::Tso;

const TTL_MS: u64 = 100;

struct Env<E: Engine> {
    client: TxnClient<LocalStore<E>>,
    client_store: Arc<LocalStore<E>>,
    clock: Arc<AtomicU64>,
}

impl<E: Engine> Env<E> {
    fn new(engine: Arc<E>, start_ms: u64) -> Self {
        let clock = Arc::new(AtomicU64::new(start_ms));
        let c = Arc::clone(&clock);
        let tso = Arc::new(
            Tso::with_clock(
                Arc::clone(&engine),
                1000,
                Box::new(move || c.load(Ordering::SeqCst)),
            )
            .unwrap(),
        );
        let store = Arc::new(LocalStore::new(engine, false));
        let options = TxnOptions {
            lock_ttl_ms: TTL_MS,
            pessimistic_lock_ttl_ms: 20_000,
            lock_wait: Duration::ZERO,
            backoff: Duration::ZERO,
            one_pc: true,
        };
        Env {
            client: TxnClient::new(Arc::clone(&store), tso, options),
            client_store: store,
            clock,
        }
    }

    fn memory() -> Env<MemoryEngine> {
        Env::new(Arc::new(MemoryEngine::new()), 1_000)
    }

    /// Moves the clock past every lock's TTL.
    fn expire_locks(&self) {
        self.clock.fetch_add(TTL_MS + 1, Ordering::SeqCst);
    }

    fn commit_put(&self, key: &[u8], value: &[u8]) -> u64 {
        let mut t = self.client.begin().unwrap();
        t.put(key.to_vec(), value.to_vec());
        t.commit().unwrap()
    }

    fn read(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.client.begin().unwrap().get(key).unwrap()
    }
}

#[test]
fn no_dirty_reads() {
    let env = Env::<MemoryEngine>::memory();
    let mut t1 = env.client.begin().unwrap();
    t1.put(b"k".to_vec(), b"dirty".to_vec());
    assert_eq!(env.read(b"k"), None, "buffered writes are invisible");
    t1.commit_with_fault(Some(CommitFault::AfterPrewrite))
        .unwrap();
    // A live lock is reported, never read through.
    let err = env.client.begin().unwrap().get(b"k").unwrap_err();
    assert!(matches!(err, Error::KeyIsLocked(_)), "{err}");
    // Once it expires the reader rolls the writer back.
    env.expire_locks();
    assert_eq!(env.read(b"k"), None);
}

#[test]
fn reads_repeat_within_a_transaction() {
    let env = Env::<MemoryEngine>::memory();
    env.commit_put(b"k", b"v0");
    let t1 = env.client.begin().unwrap();
    assert_eq!(t1.get(b"k").unwrap(), Some(b"v0".to_vec()));
    env.commit_put(b"k", b"v1");
    assert_eq!(t1.get(b"k").unwrap(), Some(b"v0".to_vec()), "same snapshot");
    assert_eq!(
        t1.scan(b"", None, 10).unwrap(),
        vec![(b"k".to_vec(), b"v0".to_vec())]
    );
    assert_eq!(env.read(b"k"), Some(b"v1".to_vec()));
}

#[test]
fn one_of_two_conflicting_writers_aborts() {
    let env = Env::<MemoryEngine>::memory();
    env.commit_put(b"counter", b"0");
    let mut a = env.client.begin().unwrap();
    let mut b = env.client.begin().unwrap();
    a.put(b"counter".to_vec(), b"a".to_vec());
    b.put(b"counter".to_vec(), b"b".to_vec());
    a.commit().unwrap();
    let err = b.commit().unwrap_err();
    assert!(matches!(err, Error::WriteConflict { .. }), "{err}");
    assert!(err.is_retryable());
    assert_eq!(env.read(b"counter"), Some(b"a".to_vec()));
}

/// Snapshot isolation allows write skew: two transactions each read both
/// keys and write a different one; both commit.
#[test]
fn write_skew_is_possible_under_snapshot_isolation() {
    let env = Env::<MemoryEngine>::memory();
    env.commit_put(b"x", b"1");
    env.commit_put(b"y", b"1");
    let mut a = env.client.begin().unwrap();
    let mut b = env.client.begin().unwrap();
    assert_eq!(
        (a.get(b"x").unwrap(), a.get(b"y").unwrap()),
        (Some(b"1".to_vec()), Some(b"1".to_vec()))
    );
    assert_eq!(
        (b.get(b"x").unwrap(), b.get(b"y").unwrap()),
        (Some(b"1".to_vec()), Some(b"1".to_vec()))
    );
    a.put(b"x".to_vec(), b"0".to_vec());
    b.put(b"y".to_vec(), b"0".to_vec());
    a.commit().unwrap();
    b.commit().unwrap();
    assert_eq!(
        (env.read(b"x"), env.read(b"y")),
        (Some(b"0".to_vec()), Some(b"0".to_vec()))
    );
}

#[test]
fn pessimistic_lock_blocks_others_and_sees_latest() {
    let env = Env::<MemoryEngine>::memory();
    let mut t = env.client.begin().unwrap();
    env.commit_put(b"k", b"newer-than-t");
    let got = t.lock_for_update(&[b"k".to_vec()]).unwrap();
    assert_eq!(
        got,
        vec![Some(b"newer-than-t".to_vec())],
        "FOR UPDATE reads the latest"
    );
    // …and so do the transaction's later reads of the locked key, by get
    // and by scan, while other keys stay at the snapshot.
    assert_eq!(t.get(b"k").unwrap(), Some(b"newer-than-t".to_vec()));
    assert_eq!(
        t.scan(b"a", Some(b"z"), 10).unwrap(),
        vec![(b"k".to_vec(), b"newer-than-t".to_vec())]
    );
    let mut other = env.client.begin().unwrap();
    other.put(b"k".to_vec(), b"other".to_vec());
    assert!(matches!(other.commit().unwrap_err(), Error::KeyIsLocked(_)));
    t.put(b"k".to_vec(), b"mine".to_vec());
    t.commit().unwrap();
    assert_eq!(env.read(b"k"), Some(b"mine".to_vec()));
}

#[test]
fn inserts_refuse_existing_keys() {
    let env = Env::<MemoryEngine>::memory();
    env.commit_put(b"k", b"v");
    let mut t = env.client.begin().unwrap();
    t.insert(b"k".to_vec(), b"again".to_vec());
    t.insert(b"k2".to_vec(), b"new".to_vec());
    assert!(matches!(
        t.commit().unwrap_err(),
        Error::AlreadyExist { .. }
    ));
    assert_eq!(
        env.read(b"k2"),
        None,
        "nothing of the failed transaction is visible"
    );
}

#[test]
fn a_crash_mid_commit_resolves_all_or_nothing_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let open = || Arc::new(RocksEngine::open(dir.path(), &RocksConfig::default()).unwrap());
    {
        let env = Env::new(open(), 1_000);
        let mut before_commit = env.client.begin().unwrap();
        let mut after_primary = env.client.begin().unwrap();
        for i in 0..5u8 {
            before_commit.put(vec![b'a', i], vec![i]);
            after_primary.put(vec![b'b', i], vec![i]);
        }
        before_commit
            .commit_with_fault(Some(CommitFault::AfterPrewrite))
            .unwrap();
        after_primary
            .commit_with_fault(Some(CommitFault::AfterPrimary))
            .unwrap();
        // The "process" stops here: everything is dropped, the engine closed.
    }
    let env = Env::new(open(), 1_000);
    env.expire_locks();
    let t = env.client.begin().unwrap();
    for i in 0..5u8 {
        assert_eq!(
            t.get(&[b'a', i]).unwrap(),
            None,
            "uncommitted transaction rolled back"
        );
        assert_eq!(
            t.get(&[b'b', i]).unwrap(),
            Some(vec![i]),
            "committed transaction completed"
        );
    }
}

/// Commit timestamp and value (None: deleted) of each version.
type History = Vec<(u64, Option<Vec<u8>>)>;

/// A committed history per key, for checking reads against.
#[derive(Default)]
struct Model {
    versions: BTreeMap<Vec<u8>, History>,
}

impl Model {
    fn read(&self, key: &[u8], ts: u64) -> Option<Vec<u8>> {
        let versions = self.versions.get(key)?;
        versions
            .iter()
            .filter(|(c, _)| *c <= ts)
            .max_by_key(|(c, _)| *c)
            .and_then(|(_, v)| v.clone())
    }

    fn conflicts(&self, keys: &BTreeMap<Vec<u8>, Option<Vec<u8>>>, start_ts: u64) -> bool {
        keys.keys().any(|k| {
            self.versions
                .get(k)
                .is_some_and(|vs| vs.iter().any(|(c, _)| *c > start_ts))
        })
    }
}

struct Open<E: Engine> {
    txn: Transaction<LocalStore<E>>,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

#[test]
fn random_interleavings_match_a_model() {
    for seed in 0..8 {
        run_model(seed);
    }
}

fn run_model(seed: u64) {
    let env = Env::<MemoryEngine>::memory();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model = Model::default();
    let mut open: Vec<Open<MemoryEngine>> = Vec::new();
    let key = |rng: &mut StdRng| vec![b'k', rng.random_range(0..6u8)];
    for step in 0..400 {
        let choice = if open.is_empty() {
            0
        } else {
            rng.random_range(0..10)
        };
        match choice {
            0 | 1 if open.len() < 4 => {
                open.push(Open {
                    txn: env.client.begin().unwrap(),
                    writes: BTreeMap::new(),
                });
            }
            0..=3 => {
                let o = &open[rng.random_range(0..open.len())];
                let k = key(&mut rng);
                let expected = match o.writes.get(&k) {
                    Some(own) => own.clone(),
                    None => model.read(&k, o.txn.start_ts()),
                };
                assert_eq!(
                    o.txn.get(&k).unwrap(),
                    expected,
                    "seed {seed} step {step}: read {k:?}"
                );
            }
            4..=6 => {
                let i = rng.random_range(0..open.len());
                let k = key(&mut rng);
                if rng.random_bool(0.8) {
                    let v = vec![rng.random::<u8>()];
                    open[i].txn.put(k.clone(), v.clone());
                    open[i].writes.insert(k, Some(v));
                } else {
                    open[i].txn.delete(k.clone());
                    open[i].writes.insert(k, None);
                }
            }
            7 | 8 => {
                let o = open.swap_remove(rng.random_range(0..open.len()));
                let conflict = model.conflicts(&o.writes, o.txn.start_ts());
                let crash = rng.random_bool(0.2);
                let fault = crash.then(|| {
                    if rng.random_bool(0.5) {
                        CommitFault::AfterPrewrite
                    } else {
                        CommitFault::AfterPrimary
                    }
                });
                match o.txn.commit_with_fault(fault) {
                    Ok(commit_ts) => {
                        assert!(
                            !conflict,
                            "seed {seed} step {step}: commit should have conflicted"
                        );
                        if fault != Some(CommitFault::AfterPrewrite) && commit_ts > 0 {
                            for (k, v) in o.writes {
                                model.versions.entry(k).or_default().push((commit_ts, v));
                            }
                        }
                        if crash {
                            env.expire_locks();
                        }
                    }
                    Err(e) => {
                        assert!(conflict, "seed {seed} step {step}: unexpected {e}");
                        assert!(
                            matches!(e, Error::WriteConflict { .. }),
                            "seed {seed} step {step}: {e}"
                        );
                    }
                }
            }
            _ => {
                let o = open.swap_remove(rng.random_range(0..open.len()));
                o.txn.rollback().unwrap();
            }
        }
    }
    // In the end, every key reads as the model's latest version.
    let t = env.client.begin().unwrap();
    for i in 0..6u8 {
        let k = vec![b'k', i];
        assert_eq!(
            t.get(&k).unwrap(),
            model.read(&k, u64::MAX),
            "seed {seed}: final {k:?}"
        );
    }
}

#[test]
fn a_late_prewrite_still_gets_a_live_lock() {
    let env = Env::<MemoryEngine>::memory();
    let mut slow = env.client.begin().unwrap();
    // The transaction works for longer than a lock TTL before it prewrites.
    env.clock.fetch_add(3 * TTL_MS, Ordering::SeqCst);
    slow.put(b"k".to_vec(), b"v".to_vec());
    slow.commit_with_fault(Some(CommitFault::AfterPrewrite))
        .unwrap();
    let err = env.client.begin().unwrap().get(b"k").unwrap_err();
    assert!(
        matches!(err, Error::KeyIsLocked(_)),
        "the lock is alive, not expired at birth: {err}"
    );
}

#[test]
fn gc_waits_for_a_crashed_transaction_until_its_locks_are_resolved() {
    let env = Env::<MemoryEngine>::memory();
    let mut crashed = env.client.begin().unwrap();
    crashed.put(b"p".to_vec(), b"1".to_vec());
    crashed.put(b"s".to_vec(), b"2".to_vec());
    crashed
        .commit_with_fault(Some(CommitFault::AfterPrimary))
        .unwrap();
    let safe_point = env.client.begin().unwrap().start_ts();
    let store = &env.client_store;
    let gc = |sp: u64| crate::gc::gc(&store.engine().snapshot(), sp, b"", None);
    assert!(
        matches!(gc(safe_point), Err(Error::GcBlocked { .. })),
        "the secondary's lock blocks GC"
    );
    env.expire_locks();
    assert_eq!(env.client.resolve_locks_below(safe_point).unwrap(), 1);
    assert!(gc(safe_point).is_ok());
    assert_eq!(
        env.read(b"s"),
        Some(b"2".to_vec()),
        "the committed secondary survived"
    );
}

/// Moves the clock `ms` forward.
fn advance<E: Engine>(env: &Env<E>, ms: u64) {
    env.clock.fetch_add(ms, Ordering::SeqCst);
}

#[test]
fn heartbeats_keep_a_thinking_transactions_row_locks() {
    let env = Env::<MemoryEngine>::memory();
    let mut holder = env.client.begin().unwrap();
    holder.lock_for_update(&[b"k".to_vec()]).unwrap();
    assert_eq!(env.client.keep_alive().unwrap(), 1);
    // Its client thinks for 15 s, then 15 s more: one heartbeat between
    // keeps the 20 s lock alive past 30 s.
    advance(&env, 15_000);
    assert_eq!(env.client.keep_alive().unwrap(), 1);
    advance(&env, 15_000);
    let mut writer = env.client.begin().unwrap();
    writer.put(b"k".to_vec(), b"other".to_vec());
    assert!(matches!(
        writer.commit().unwrap_err(),
        Error::KeyIsLocked(_)
    ));
    holder.put(b"k".to_vec(), b"mine".to_vec());
    holder.commit().unwrap();
    assert_eq!(env.read(b"k"), Some(b"mine".to_vec()));
    assert_eq!(env.client.keep_alive().unwrap(), 0, "nothing left to keep");

    // Without heartbeats the same wait lets another writer roll it back.
    let mut idle = env.client.begin().unwrap();
    idle.lock_for_update(&[b"k".to_vec()]).unwrap();
    advance(&env, 30_000);
    env.commit_put(b"k", b"other");
    idle.put(b"k".to_vec(), b"late".to_vec());
    assert!(idle.commit().is_err());
    assert_eq!(env.read(b"k"), Some(b"other".to_vec()));
}

#[test]
fn a_locking_read_after_a_write_keeps_the_primary_locked_and_the_write_checked() {
    let env = Env::<MemoryEngine>::memory();
    // The write picks the primary; the later locking read locks it too, so
    // a writer meeting the secondary's lock finds a live transaction.
    let mut t = env.client.begin().unwrap();
    t.put(b"a".to_vec(), b"mine".to_vec());
    t.lock_for_update(&[b"b".to_vec()]).unwrap();
    let mut other = env.client.begin().unwrap();
    other.put(b"b".to_vec(), b"other".to_vec());
    assert!(matches!(other.commit().unwrap_err(), Error::KeyIsLocked(_)));
    t.put(b"b".to_vec(), b"mine".to_vec());
    t.commit().unwrap();
    assert_eq!(env.read(b"a"), Some(b"mine".to_vec()));
    assert_eq!(env.read(b"b"), Some(b"mine".to_vec()));

    // A key written from the snapshot, then committed by another, then
    // locked: a conflict, not an overwrite of the newer commit.
    let mut stale = env.client.begin().unwrap();
    stale.put(b"c".to_vec(), b"from the snapshot".to_vec());
    env.commit_put(b"c", b"newer");
    assert!(matches!(
        stale.lock_for_update(&[b"c".to_vec()]).unwrap_err(),
        Error::WriteConflict { .. }
    ));
    drop(stale);
    assert_eq!(env.read(b"c"), Some(b"newer".to_vec()));
    assert!(
        env.client
            .begin()
            .unwrap()
            .lock_for_update(&[])
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_limited_scan_sees_past_the_rows_its_own_writes_hide() {
    let env = Env::<MemoryEngine>::memory();
    for k in b'a'..=b'j' {
        env.commit_put(&[k], &[k]);
    }
    let mut t = env.client.begin().unwrap();
    for k in [b'a', b'b', b'c'] {
        t.delete(vec![k]);
    }
    t.put(b"d".to_vec(), b"mine".to_vec());
    let keys = |rows: Vec<(Vec<u8>, Vec<u8>)>| -> Vec<Vec<u8>> {
        rows.into_iter().map(|(k, _)| k).collect()
    };
    assert_eq!(
        keys(t.scan(b"a", Some(b"z"), 3).unwrap()),
        vec![b"d".to_vec(), b"e".to_vec(), b"f".to_vec()]
    );
    assert_eq!(t.scan(b"d", Some(b"e"), 1).unwrap()[0].1, b"mine".to_vec());
    assert_eq!(t.scan(b"a", None, 100).unwrap().len(), 7);
}

#[test]
fn a_watched_key_written_meanwhile_fails_the_commit_and_its_writes() {
    let env = Env::<MemoryEngine>::memory();
    env.commit_put(b"def", b"v1");

    // Unchanged: the commit goes through.
    let mut t = env.client.begin().unwrap();
    t.watch(b"def");
    t.put(b"row1".to_vec(), b"a".to_vec());
    assert!(t.commit().unwrap() > 0);
    assert_eq!(env.read(b"row1"), Some(b"a".to_vec()));

    // Written and committed by another transaction in between: refused,
    // and nothing of it stays.
    let mut t = env.client.begin().unwrap();
    t.watch(b"def");
    t.put(b"row2".to_vec(), b"b".to_vec());
    env.commit_put(b"def", b"v2");
    let err = t.commit().unwrap_err();
    assert!(matches!(err, Error::WatchedKeyChanged { .. }), "{err}");
    assert!(err.is_retryable());
    assert_eq!(env.read(b"row2"), None);

    // Locked by another transaction that may still commit below this
    // one's commit timestamp: refused too.
    let mut t = env.client.begin().unwrap();
    t.watch(b"def");
    t.put(b"row3".to_vec(), b"c".to_vec());
    let mut ddl = env.client.begin().unwrap();
    ddl.put(b"def".to_vec(), b"v3".to_vec());
    ddl.commit_with_fault(Some(CommitFault::AfterPrewrite))
        .unwrap();
    let err = t.commit().unwrap_err();
    assert!(matches!(err, Error::WatchedKeyChanged { .. }), "{err}");
    assert_eq!(env.read(b"row3"), None);

    // A lock left by a transaction that is gone is settled, not feared.
    env.expire_locks();
    let mut t = env.client.begin().unwrap();
    t.watch(b"def");
    let mut stale = env.client.begin().unwrap();
    stale.put(b"def".to_vec(), b"v4".to_vec());
    stale
        .commit_with_fault(Some(CommitFault::AfterPrewrite))
        .unwrap();
    env.expire_locks();
    t.put(b"row4".to_vec(), b"d".to_vec());
    assert!(t.commit().unwrap() > 0);
    assert_eq!(env.read(b"row4"), Some(b"d".to_vec()));
}

/// A source whose every timestamp is handed out while it looks at the
/// client's registry, as a GC on another thread might at that moment.
struct Watching {
    next: AtomicU64,
    client: std::sync::Mutex<Option<TxnClient<LocalStore<MemoryEngine>>>>,
    oldest_seen: std::sync::Mutex<Vec<(Option<u64>, u64)>>,
}

impl crate::tso::TimestampSource for Watching {
    fn get_batch(&self, n: u32) -> crate::Result<u64> {
        let ts = self.next.fetch_add(u64::from(n), Ordering::SeqCst) + u64::from(n);
        if let Some(c) = self.client.lock().unwrap().as_ref() {
            self.oldest_seen
                .lock()
                .unwrap()
                .push((c.oldest_running(), ts));
        }
        Ok(ts)
    }
}

#[test]
fn a_beginning_transaction_is_registered_below_its_start_before_it_has_one() {
    let source = Arc::new(Watching {
        next: AtomicU64::new(100),
        client: std::sync::Mutex::new(None),
        oldest_seen: std::sync::Mutex::new(Vec::new()),
    });
    let store = Arc::new(LocalStore::new(Arc::new(MemoryEngine::new()), false));
    let client = TxnClient::new(store, source.clone(), TxnOptions::default());
    *source.client.lock().unwrap() = Some(client.clone());
    let first = client.begin().unwrap();
    drop(first);
    let second = client.begin().unwrap();
    // While each start was being taken, the registry already held a bound
    // at or below it: a safe point computed then stays below the start.
    let seen = source.oldest_seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    for (oldest, ts) in &seen {
        assert!(oldest.is_some_and(|o| o < *ts), "{seen:?}");
    }
    // Once begun, only the real start is registered.
    assert_eq!(client.oldest_running(), Some(second.start_ts()));
    drop(second);
    assert_eq!(client.oldest_running(), None);
    *source.client.lock().unwrap() = None;
}

/// Two transactions each holding a row lock and then asking for the
/// other's: the second to ask is refused at once with a deadlock; the
/// first, waiting meanwhile, gets its lock once the second ends.
#[test]
fn a_cycle_of_lock_waits_is_refused_at_once_and_the_other_proceeds() {
    let env = Env::<MemoryEngine>::memory();
    let detector = Arc::new(super::deadlock::LocalDetector::new(Duration::from_secs(60)));
    let client = env
        .client
        .clone()
        .with_detector(detector.clone() as Arc<dyn super::deadlock::DeadlockDetector>);
    let (a, b) = (b"a".to_vec(), b"b".to_vec());
    let mut t1 = client.begin().unwrap();
    let mut t2 = client.begin().unwrap();
    t1.lock_for_update(std::slice::from_ref(&a)).unwrap();
    t2.lock_for_update(std::slice::from_ref(&b)).unwrap();
    t1.set_lock_wait(Duration::from_secs(600));
    let t1_start = t1.start_ts();
    let waiting = std::thread::spawn(move || {
        let outcome = t1.lock_for_update(std::slice::from_ref(&b)).map(|_| ());
        (t1, outcome)
    });
    // Once t1's wait is in the graph, t2 asking for a closes the cycle.
    while detector.holder_waited_for(t1_start).is_none() {
        std::thread::yield_now();
    }
    match t2.lock_for_update(std::slice::from_ref(&a)) {
        Err(Error::Deadlock { start_ts, cycle }) => {
            assert_eq!((start_ts, cycle), (t2.start_ts(), vec![t1_start]));
        }
        other => panic!("{other:?}"),
    }
    t2.rollback().unwrap();
    let (t1, outcome) = waiting.join().unwrap();
    outcome.unwrap();
    t1.commit().unwrap();
}
