//! The SQL layer's view of storage: a transactional key-value store. [`Kv`]
//! begins transactions; a [`KvTxn`] reads at its start timestamp (seeing its
//! own writes), buffers writes, and commits them atomically. The storage
//! crate's Percolator client implements it over any [`TxnStore`] — one node's
//! Raft store or a cluster's — so the SQL layer never names an engine.

use std::sync::{Arc, Mutex, MutexGuard};

use duet_storage::txn::deadlock::DeadlockRecord;
use duet_storage::txn::{Transaction, TxnClient, TxnStore};

/// A storage failure, as the SQL layer reports it.
pub type KvResult<T> = std::result::Result<T, duet_storage::Error>;

/// Begins transactions.
pub trait Kv: Send + Sync + 'static {
    fn begin(&self) -> KvResult<Box<dyn KvTxn>>;
    /// The last deadlocks this node's transactions were refused for
    /// (`information_schema.duet_deadlocks`).
    fn deadlocks(&self) -> Vec<DeadlockRecord> {
        Vec::new()
    }
}

/// One transaction. After `commit` or `rollback` it must not be used again.
pub trait KvTxn: Send {
    fn start_ts(&self) -> u64;
    /// The value of `key` at the start timestamp, or this transaction's own write.
    fn get(&self, key: &[u8]) -> KvResult<Option<Vec<u8>>>;
    /// Pairs of `[start, end)` in key order, at most `limit`.
    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> KvResult<Vec<(Vec<u8>, Vec<u8>)>>;
    /// Runs `read` at a linearizable point of the cluster, resolving the
    /// locks it reports (a reader of another copy, the columnar replica).
    fn read_with(&self, read: &mut dyn FnMut() -> KvResult<()>) -> KvResult<()>;
    /// Whether the transaction's own writes touch `[start, end)`.
    fn has_writes_in(&self, start: &[u8], end: &[u8]) -> bool;
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>);
    /// Puts `key`, failing at commit with `AlreadyExist` if it has a value.
    fn insert(&mut self, key: Vec<u8>, value: Vec<u8>);
    fn delete(&mut self, key: Vec<u8>);
    /// `SELECT … FOR UPDATE`: locks `keys` until the transaction ends; its
    /// reads of them see their latest committed values from now on.
    fn lock_for_update(&mut self, keys: &[Vec<u8>]) -> KvResult<()>;
    /// Makes the commit fail if `key` changes between the start and the
    /// commit (or is being changed when it commits).
    fn watch(&mut self, key: &[u8]) -> KvResult<()>;
    /// Marks the transaction pessimistic: each statement locks the rows it
    /// changes ([`lock_for_update`](Self::lock_for_update)) when it runs.
    fn set_pessimistic(&mut self);
    fn is_pessimistic(&self) -> bool;
    /// The writes from now on build on `keys`, read through their locks:
    /// the keys they write are checked for conflicts from those locks on,
    /// not from the start. `&[]` goes back to the start.
    fn build_on_locked(&mut self, keys: &[Vec<u8>]);
    /// How long taking a lock waits for another transaction's.
    fn set_lock_wait(&mut self, wait: std::time::Duration);
    /// Whether the commit may be one-phase (`duet_enable_1pc`).
    fn set_one_pc(&mut self, on: bool);
    /// The transaction writes keys others watch (schema definitions): it
    /// commits in two phases.
    fn writes_watched(&mut self);
    /// Two-phase commit; the commit timestamp (0 if nothing was written).
    fn commit(&mut self) -> KvResult<u64>;
    fn rollback(&mut self) -> KvResult<()>;
    /// The buffered writes now, to return to if a statement fails.
    fn checkpoint(&self) -> Checkpoint;
    /// Drops every write buffered since `checkpoint`.
    fn restore(&mut self, checkpoint: Checkpoint);
}

/// A transaction's buffered writes at one point (statement atomicity).
#[derive(Clone)]
pub struct Checkpoint(duet_storage::txn::Savepoint);

impl<S: TxnStore> Kv for TxnClient<S> {
    fn begin(&self) -> KvResult<Box<dyn KvTxn>> {
        Ok(Box::new(Txn(Some(TxnClient::begin(self)?))))
    }

    fn deadlocks(&self) -> Vec<DeadlockRecord> {
        TxnClient::deadlocks(self)
    }
}

/// A storage transaction, taken out when it finishes.
struct Txn<S: TxnStore>(Option<Transaction<S>>);

impl<S: TxnStore> Txn<S> {
    fn live(&self) -> KvResult<&Transaction<S>> {
        self.0.as_ref().ok_or_else(finished)
    }
}

fn finished() -> duet_storage::Error {
    duet_storage::Error::Corruption {
        what: "transaction",
        detail: "used after it finished".into(),
    }
}

impl<S: TxnStore> KvTxn for Txn<S> {
    fn start_ts(&self) -> u64 {
        self.0.as_ref().map_or(0, Transaction::start_ts)
    }

    fn get(&self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        self.live()?.get(key)
    }

    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> KvResult<Vec<(Vec<u8>, Vec<u8>)>> {
        self.live()?.scan(start, Some(end), limit)
    }

    fn read_with(&self, read: &mut dyn FnMut() -> KvResult<()>) -> KvResult<()> {
        self.live()?.read_with(read)
    }

    fn has_writes_in(&self, start: &[u8], end: &[u8]) -> bool {
        self.0.as_ref().is_some_and(|t| t.has_writes_in(start, end))
    }

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        if let Some(t) = self.0.as_mut() {
            t.put(key, value);
        }
    }

    fn insert(&mut self, key: Vec<u8>, value: Vec<u8>) {
        if let Some(t) = self.0.as_mut() {
            t.insert(key, value);
        }
    }

    fn delete(&mut self, key: Vec<u8>) {
        if let Some(t) = self.0.as_mut() {
            t.delete(key);
        }
    }

    fn lock_for_update(&mut self, keys: &[Vec<u8>]) -> KvResult<()> {
        match self.0.as_mut() {
            Some(t) if !keys.is_empty() => t.lock_for_update(keys).map(|_| ()),
            Some(_) => Ok(()),
            None => Err(finished()),
        }
    }

    fn watch(&mut self, key: &[u8]) -> KvResult<()> {
        self.0.as_mut().ok_or_else(finished)?.watch(key);
        Ok(())
    }

    fn set_pessimistic(&mut self) {
        if let Some(t) = self.0.as_mut() {
            t.set_pessimistic();
        }
    }

    fn is_pessimistic(&self) -> bool {
        self.0.as_ref().is_some_and(Transaction::is_pessimistic)
    }

    fn build_on_locked(&mut self, keys: &[Vec<u8>]) {
        if let Some(t) = self.0.as_mut() {
            let ts = if keys.is_empty() {
                0
            } else {
                t.locked_since(keys).unwrap_or(0)
            };
            t.set_read_ts(ts);
        }
    }

    fn set_lock_wait(&mut self, wait: std::time::Duration) {
        if let Some(t) = self.0.as_mut() {
            t.set_lock_wait(wait);
        }
    }

    fn set_one_pc(&mut self, on: bool) {
        if let Some(t) = self.0.as_mut() {
            t.set_one_pc(on);
        }
    }

    fn writes_watched(&mut self) {
        if let Some(t) = self.0.as_mut() {
            t.writes_watched();
        }
    }

    fn commit(&mut self) -> KvResult<u64> {
        self.0.take().ok_or_else(finished)?.commit()
    }

    fn rollback(&mut self) -> KvResult<()> {
        self.0.take().ok_or_else(finished)?.rollback()
    }

    fn checkpoint(&self) -> Checkpoint {
        Checkpoint(
            self.0
                .as_ref()
                .map(Transaction::savepoint)
                .unwrap_or_default(),
        )
    }

    fn restore(&mut self, checkpoint: Checkpoint) {
        if let Some(t) = self.0.as_mut() {
            t.rollback_to(checkpoint.0);
        }
    }
}

/// A transaction shared between a session and the scans of its statement.
pub(crate) type SharedTxn = Arc<Mutex<Box<dyn KvTxn>>>;

pub(crate) fn lock(txn: &SharedTxn) -> MutexGuard<'_, Box<dyn KvTxn>> {
    txn.lock().unwrap_or_else(|e| e.into_inner())
}
