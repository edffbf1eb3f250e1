//! Prewrite: lock every key of a transaction, after checking that no other
//! transaction holds it and (optimistically) that none committed it after our
//! start. Pessimistic keys already hold our lock and skip the conflict check.
//! A one-phase commit ([`one_pc`]) makes the same checks and writes commit
//! records where a prewrite writes locks.

use super::commit::write_kind;
use super::{Mutation, Op, Prewrite};
use crate::engine::{Snapshot, WriteBatch};
use crate::error::{Error, Result};
use crate::mvcc::{
    Lock, LockKind, MvccReader, MvccTxn, SHORT_VALUE_MAX_LEN, TxnCommitRecord, Write, WriteKind,
};

pub(super) fn apply<S: Snapshot>(snap: &S, c: &Prewrite) -> Result<WriteBatch> {
    let mut txn = MvccTxn::new();
    for k in checked(snap, c, &mut txn)?.into_iter().flatten() {
        txn.put_lock(k.key, &k.lock);
    }
    Ok(txn.into_batch())
}

/// The writes of `c` committed at `commit_ts` in one phase, or `None` if
/// any key was prewritten or committed by this transaction already.
pub(super) fn one_pc<S: Snapshot>(
    snap: &S,
    c: &Prewrite,
    commit_ts: u64,
) -> Result<Option<WriteBatch>> {
    let mut txn = MvccTxn::new();
    let Some(locks) = checked(snap, c, &mut txn)?
        .into_iter()
        .collect::<Option<Vec<_>>>()
    else {
        return Ok(None);
    };
    for k in locks {
        let write = Write::new(write_kind(&k.lock), k.lock.start_ts, k.lock.short_value);
        txn.put_write(k.key, commit_ts, &write);
        if k.pessimistic {
            txn.unlock(k.key);
        }
    }
    Ok(Some(txn.into_batch()))
}

/// A key that passed its checks: the lock it takes.
struct Checked<'c> {
    key: &'c [u8],
    lock: Lock,
    /// It held this transaction's pessimistic lock.
    pessimistic: bool,
}

/// Checks every mutation of `c`, staging large values in `txn`; per
/// mutation, what it locks, or `None` for one its transaction already
/// prewrote or committed.
fn checked<'c, S: Snapshot>(
    snap: &S,
    c: &'c Prewrite,
    txn: &mut MvccTxn,
) -> Result<Vec<Option<Checked<'c>>>> {
    let reader = MvccReader::new(snap);
    let mut locks = Vec::with_capacity(c.mutations.len());
    for (i, m) in c.mutations.iter().enumerate() {
        let pessimistic = c.pessimistic.get(i).copied().unwrap_or(false);
        let lock = prewrite_key(&reader, txn, c, m, pessimistic)?;
        locks.push(lock.map(|lock| Checked {
            key: m.key.as_slice(),
            lock,
            pessimistic,
        }));
    }
    Ok(locks)
}

fn prewrite_key<S: Snapshot>(
    reader: &MvccReader<'_, S>,
    txn: &mut MvccTxn,
    c: &Prewrite,
    m: &Mutation,
    pessimistic: bool,
) -> Result<Option<Lock>> {
    let key = m.key.as_slice();
    match reader.load_lock(key)? {
        Some(lock) if lock.start_ts != c.start_ts => {
            return Err(Error::KeyIsLocked(Box::new(lock.info(key))));
        }
        // Already prewritten by this transaction: a retry.
        Some(lock) if lock.lock_kind() != LockKind::Pessimistic => return Ok(None),
        Some(_) => {}
        // A retry of a prewrite that committed in one phase.
        None if pessimistic
            && matches!(
                reader.txn_commit_record(key, c.start_ts)?,
                TxnCommitRecord::Committed { .. }
            ) =>
        {
            return Ok(None);
        }
        None if pessimistic => {
            return Err(Error::TxnLockNotFound {
                start_ts: c.start_ts,
                key: key.to_vec(),
            });
        }
        None => {
            // An index entry of a row this transaction locked: whatever
            // committed it before the row was read through its lock was seen.
            let since = c.start_ts.max(m.read_ts);
            if already_committed(reader, key, c.start_ts, since)? {
                return Ok(None);
            }
        }
    }
    if m.op() == Op::Insert && reader.get_committed(key, u64::MAX)?.is_some() {
        return Err(Error::AlreadyExist { key: key.to_vec() });
    }
    let (kind, inline) = match m.op() {
        Op::Put | Op::Insert => (LockKind::Put, m.value.len() <= SHORT_VALUE_MAX_LEN),
        Op::Delete => (LockKind::Delete, true),
        Op::Lock => (LockKind::Lock, true),
    };
    let short_value = (kind == LockKind::Put && inline).then(|| m.value.clone());
    if kind == LockKind::Put && !inline {
        txn.put_value(key, c.start_ts, &m.value);
    }
    Ok(Some(Lock {
        kind: kind as i32,
        primary: c.primary.clone(),
        start_ts: c.start_ts,
        ttl: c.lock_ttl,
        short_value,
        for_update_ts: c.for_update_ts,
        min_commit_ts: c.min_commit_ts.max(c.start_ts + 1),
    }))
}

/// Optimistic conflict check. `true` if this transaction already committed
/// the key (a retried prewrite after commit); an error if another transaction
/// committed it after `since` (the start, or the transaction's locks) or
/// this one was rolled back.
fn already_committed<S: Snapshot>(
    reader: &MvccReader<'_, S>,
    key: &[u8],
    start_ts: u64,
    since: u64,
) -> Result<bool> {
    for (commit_ts, write) in reader.writes_since(key, start_ts)? {
        if write.start_ts == start_ts {
            return match write.write_kind() {
                WriteKind::Rollback => Err(Error::RolledBack { start_ts }),
                _ => Ok(true),
            };
        }
        if write.write_kind() != WriteKind::Rollback && commit_ts > since {
            return Err(Error::WriteConflict {
                start_ts,
                conflict_start_ts: write.start_ts,
                conflict_commit_ts: commit_ts,
                key: key.to_vec(),
                primary: Vec::new(),
            });
        }
    }
    Ok(false)
}
