//! Commit: turn this transaction's locks into write records at `commit_ts`.
//! Committing a key twice is harmless; committing a rolled-back transaction
//! is an error.

use super::Commit;
use crate::engine::{Snapshot, WriteBatch};
use crate::error::{Error, Result};
use crate::mvcc::{Lock, LockKind, MvccReader, MvccTxn, TxnCommitRecord, Write, WriteKind};

pub(super) fn apply<S: Snapshot>(snap: &S, c: &Commit) -> Result<WriteBatch> {
    if c.commit_ts <= c.start_ts {
        return Err(Error::InvalidTimestamp {
            start_ts: c.start_ts,
            commit_ts: c.commit_ts,
        });
    }
    let reader = MvccReader::new(snap);
    let mut txn = MvccTxn::new();
    for key in &c.keys {
        match reader.load_lock(key)? {
            Some(lock) if lock.start_ts == c.start_ts => {
                if lock.lock_kind() == LockKind::Pessimistic {
                    return Err(Error::TxnLockNotFound {
                        start_ts: c.start_ts,
                        key: key.clone(),
                    });
                }
                if c.commit_ts < lock.min_commit_ts {
                    return Err(Error::CommitTsExpired {
                        start_ts: c.start_ts,
                        commit_ts: c.commit_ts,
                        min_commit_ts: lock.min_commit_ts,
                    });
                }
                commit_lock(&mut txn, key, &lock, c.commit_ts);
            }
            _ => match reader.txn_commit_record(key, c.start_ts)? {
                TxnCommitRecord::Committed { .. } => {}
                TxnCommitRecord::RolledBack => {
                    return Err(Error::RolledBack {
                        start_ts: c.start_ts,
                    });
                }
                TxnCommitRecord::None => {
                    return Err(Error::TxnLockNotFound {
                        start_ts: c.start_ts,
                        key: key.clone(),
                    });
                }
            },
        }
    }
    Ok(txn.into_batch())
}

/// Replaces `lock` on `key` by its commit record at `commit_ts`.
pub(super) fn commit_lock(txn: &mut MvccTxn, key: &[u8], lock: &Lock, commit_ts: u64) {
    txn.put_write(
        key,
        commit_ts,
        &Write::new(write_kind(lock), lock.start_ts, lock.short_value.clone()),
    );
    txn.unlock(key);
}

/// The kind of commit record `lock` becomes.
pub(super) fn write_kind(lock: &Lock) -> WriteKind {
    match lock.lock_kind() {
        LockKind::Put => WriteKind::Put,
        LockKind::Delete => WriteKind::Delete,
        LockKind::Lock | LockKind::Pessimistic => WriteKind::Lock,
    }
}
