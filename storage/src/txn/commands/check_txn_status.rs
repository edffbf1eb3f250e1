//! Check-txn-status: decide, at the primary key, whether a transaction
//! committed, rolled back, or still runs — rolling it back if its lock
//! outlived its TTL.

use super::CheckTxnStatus;
use super::rollback::rollback_key;
use crate::engine::{Snapshot, WriteBatch};
use crate::error::Result;
use crate::mvcc::{MvccReader, MvccTxn, TxnCommitRecord, Write, WriteKind, physical_ms};

/// The fate of a transaction as seen at its primary key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnStatus {
    /// Still running; the lock is alive.
    Locked {
        ttl: u64,
        min_commit_ts: u64,
    },
    Committed {
        commit_ts: u64,
    },
    RolledBack,
    /// The lock had expired and was rolled back by this command.
    TtlExpired,
    /// No lock and no record: a rollback record was written.
    LockNotExistRolledBack,
    /// No lock and no record, and none was written.
    NotFound,
}

pub(super) fn apply<S: Snapshot>(snap: &S, c: &CheckTxnStatus) -> Result<(WriteBatch, TxnStatus)> {
    let reader = MvccReader::new(snap);
    let mut txn = MvccTxn::new();
    let status = match reader.load_lock(&c.primary)? {
        Some(lock) if lock.start_ts == c.lock_ts => {
            if physical_ms(c.current_ts) >= physical_ms(lock.start_ts).saturating_add(lock.ttl) {
                rollback_key(&reader, &mut txn, &c.primary, c.lock_ts)?;
                TxnStatus::TtlExpired
            } else {
                TxnStatus::Locked {
                    ttl: lock.ttl,
                    min_commit_ts: lock.min_commit_ts,
                }
            }
        }
        _ => match reader.txn_commit_record(&c.primary, c.lock_ts)? {
            TxnCommitRecord::Committed { commit_ts, .. } => TxnStatus::Committed { commit_ts },
            TxnCommitRecord::RolledBack => TxnStatus::RolledBack,
            TxnCommitRecord::None if c.rollback_if_not_exist => {
                txn.put_write(
                    &c.primary,
                    c.lock_ts,
                    &Write::new(WriteKind::Rollback, c.lock_ts, None),
                );
                TxnStatus::LockNotExistRolledBack
            }
            TxnCommitRecord::None => TxnStatus::NotFound,
        },
    };
    Ok((txn.into_batch(), status))
}
