//! Resolve-lock: once the primary decided a transaction, commit or roll back
//! its remaining locks. Keys whose lock is already gone are skipped.

use super::ResolveLock;
use super::commit::commit_lock;
use super::rollback::rollback_key;
use crate::engine::{Snapshot, WriteBatch};
use crate::error::Result;
use crate::mvcc::{MvccReader, MvccTxn};

pub(super) fn apply<S: Snapshot>(snap: &S, c: &ResolveLock) -> Result<WriteBatch> {
    let reader = MvccReader::new(snap);
    let mut txn = MvccTxn::new();
    for key in &c.keys {
        let Some(lock) = reader.load_lock(key)? else {
            continue;
        };
        if lock.start_ts != c.start_ts {
            continue;
        }
        if c.commit_ts > 0 {
            commit_lock(&mut txn, key, &lock, c.commit_ts);
        } else {
            rollback_key(&reader, &mut txn, key, c.start_ts)?;
        }
    }
    Ok(txn.into_batch())
}
