//! Pessimistic locks: taken before prewrite at `for_update_ts` (the moment a
//! `SELECT … FOR UPDATE` reads), they fail on any commit after that moment,
//! and are replaced by ordinary locks at prewrite or released by a
//! pessimistic rollback. A transaction that holds them keeps its primary
//! lock alive by heartbeats while it lasts.

use super::{AcquirePessimisticLock, PessimisticRollback, TxnHeartBeat};
use crate::engine::{Snapshot, WriteBatch};
use crate::error::{Error, Result};
use crate::mvcc::{Lock, LockKind, MvccReader, MvccTxn, WriteKind};

pub(super) fn acquire<S: Snapshot>(snap: &S, c: &AcquirePessimisticLock) -> Result<WriteBatch> {
    let reader = MvccReader::new(snap);
    let mut txn = MvccTxn::new();
    for key in &c.keys {
        match reader.load_lock(key)? {
            Some(lock) if lock.start_ts != c.start_ts => {
                return Err(Error::KeyIsLocked(Box::new(lock.info(key))));
            }
            Some(mut lock) => {
                if lock.lock_kind() == LockKind::Pessimistic && c.for_update_ts > lock.for_update_ts
                {
                    lock.for_update_ts = c.for_update_ts;
                    txn.put_lock(key, &lock);
                }
                continue;
            }
            None => {}
        }
        for (commit_ts, write) in reader.writes_since(key, c.start_ts)? {
            if write.start_ts == c.start_ts {
                if write.write_kind() == WriteKind::Rollback {
                    return Err(Error::RolledBack {
                        start_ts: c.start_ts,
                    });
                }
                return Err(Error::AlreadyCommitted {
                    start_ts: c.start_ts,
                    commit_ts,
                });
            }
            if commit_ts > c.for_update_ts && write.write_kind() != WriteKind::Rollback {
                return Err(Error::WriteConflict {
                    start_ts: c.start_ts,
                    conflict_start_ts: write.start_ts,
                    conflict_commit_ts: commit_ts,
                    key: key.clone(),
                    primary: c.primary.clone(),
                });
            }
        }
        let lock = Lock {
            kind: LockKind::Pessimistic as i32,
            primary: c.primary.clone(),
            start_ts: c.start_ts,
            ttl: c.lock_ttl,
            short_value: None,
            for_update_ts: c.for_update_ts,
            min_commit_ts: c.for_update_ts + 1,
        };
        txn.put_lock(key, &lock);
    }
    Ok(txn.into_batch())
}

pub(super) fn rollback<S: Snapshot>(snap: &S, c: &PessimisticRollback) -> Result<WriteBatch> {
    let reader = MvccReader::new(snap);
    let mut txn = MvccTxn::new();
    for key in &c.keys {
        if let Some(lock) = reader.load_lock(key)?
            && lock.start_ts == c.start_ts
            && lock.lock_kind() == LockKind::Pessimistic
        {
            txn.unlock(key);
        }
    }
    Ok(txn.into_batch())
}

/// Raises the TTL of the transaction's primary lock to `advise_ttl`.
pub(super) fn heart_beat<S: Snapshot>(snap: &S, c: &TxnHeartBeat) -> Result<WriteBatch> {
    let reader = MvccReader::new(snap);
    let mut txn = MvccTxn::new();
    match reader.load_lock(&c.primary)? {
        Some(mut lock) if lock.start_ts == c.start_ts => {
            if c.advise_ttl > lock.ttl {
                lock.ttl = c.advise_ttl;
                txn.put_lock(&c.primary, &lock);
            }
        }
        _ => {
            return Err(Error::TxnLockNotFound {
                start_ts: c.start_ts,
                key: c.primary.clone(),
            });
        }
    }
    Ok(txn.into_batch())
}
