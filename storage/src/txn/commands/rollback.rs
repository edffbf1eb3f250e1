//! Rollback: remove this transaction's locks and values and leave a rollback
//! record at `start_ts`, so that a prewrite arriving late fails instead of
//! locking the key again.

use super::Rollback;
use crate::engine::{Snapshot, WriteBatch};
use crate::error::{Error, Result};
use crate::mvcc::{LockKind, MvccReader, MvccTxn, TxnCommitRecord, Write, WriteKind};

pub(super) fn apply<S: Snapshot>(snap: &S, c: &Rollback) -> Result<WriteBatch> {
    let reader = MvccReader::new(snap);
    let mut txn = MvccTxn::new();
    for key in &c.keys {
        rollback_key(&reader, &mut txn, key, c.start_ts)?;
    }
    Ok(txn.into_batch())
}

/// Rolls back the transaction `start_ts` on `key`; an error if it committed there.
pub(super) fn rollback_key<S: Snapshot>(
    reader: &MvccReader<'_, S>,
    txn: &mut MvccTxn,
    key: &[u8],
    start_ts: u64,
) -> Result<()> {
    match reader.load_lock(key)? {
        Some(lock) if lock.start_ts == start_ts => {
            if lock.lock_kind() == LockKind::Put && lock.short_value.is_none() {
                txn.delete_value(key, start_ts);
            }
            txn.unlock(key);
        }
        _ => match reader.txn_commit_record(key, start_ts)? {
            TxnCommitRecord::Committed { commit_ts, .. } => {
                return Err(Error::AlreadyCommitted {
                    start_ts,
                    commit_ts,
                });
            }
            TxnCommitRecord::RolledBack => return Ok(()),
            TxnCommitRecord::None => {}
        },
    }
    txn.put_write(
        key,
        start_ts,
        &Write::new(WriteKind::Rollback, start_ts, None),
    );
    Ok(())
}
