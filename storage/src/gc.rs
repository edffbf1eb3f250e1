//! Garbage collection of old versions: below a safe point (a timestamp no
//! running or future transaction reads below), each key keeps only the newest
//! version visible at the safe point; older versions, rollback and lock
//! records, and their long values, are deleted. A key whose newest version at
//! the safe point is a delete loses every version up to the safe point.

use crate::engine::{Cf, EngineIterator, IterOptions, Snapshot, WriteBatch};
use crate::error::Result;
use crate::mvcc::{Write, WriteKind, append_ts, encode_key, split_ts};

/// The deletions that collect `[start, end)` up to `safe_point`. Refused
/// (`GcBlocked`) while a lock at or below the safe point exists in the range:
/// resolving it may need the very commit or rollback records GC would drop.
pub fn gc<S: Snapshot>(
    snap: &S,
    safe_point: u64,
    start: &[u8],
    end: Option<&[u8]>,
) -> Result<WriteBatch> {
    let reader = crate::mvcc::MvccReader::new(snap);
    let blocking = reader.scan_locks(start, end, safe_point, 1, |l| l.start_ts <= safe_point)?;
    if let Some((_, lock)) = blocking.into_iter().next() {
        return Err(crate::error::Error::GcBlocked {
            lock_ts: lock.start_ts,
            safe_point,
        });
    }
    let opts = IterOptions {
        lower: Some(encode_key(start)),
        upper: end.map(encode_key),
        prefix_seek: false,
    };
    let mut it = snap.iter(Cf::Write, opts)?;
    let mut batch = WriteBatch::new();
    let mut current: Option<Vec<u8>> = None;
    // Whether the current key already kept (or dropped) its version at the safe point.
    let mut settled = false;
    let mut ok = it.seek_to_first()?;
    while ok {
        let (encoded, commit_ts) = split_ts(it.key())?;
        if current.as_deref() != Some(encoded) {
            current = Some(encoded.to_vec());
            settled = false;
        }
        if commit_ts <= safe_point {
            let write = Write::from_bytes(it.value())?;
            let keep = !settled && write.write_kind() == WriteKind::Put;
            if matches!(write.write_kind(), WriteKind::Put | WriteKind::Delete) {
                settled = true;
            }
            if !keep {
                batch.delete(Cf::Write, it.key().to_vec());
                if write.write_kind() == WriteKind::Put && write.short_value.is_none() {
                    batch.delete(Cf::Default, append_ts(encoded, write.start_ts));
                }
            }
        }
        ok = it.next()?;
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::memory::MemoryEngine;
    use crate::engine::{Engine, WriteOptions};
    use crate::mvcc::MvccReader;
    use crate::txn::commands::{self, Commit, Mutation, Op, Prewrite};

    fn commit(
        engine: &MemoryEngine,
        key: &[u8],
        value: Option<&[u8]>,
        start_ts: u64,
        commit_ts: u64,
    ) {
        let m = match value {
            Some(v) => Mutation::new(Op::Put, key, v),
            None => Mutation::new(Op::Delete, key, ""),
        };
        let cmds = [
            Prewrite {
                mutations: vec![m],
                primary: key.to_vec(),
                start_ts,
                lock_ttl: 10,
                ..Default::default()
            }
            .into(),
            Commit {
                keys: vec![key.to_vec()],
                start_ts,
                commit_ts,
            }
            .into(),
        ];
        for cmd in cmds {
            let (batch, _) = commands::apply(&engine.snapshot(), &cmd).unwrap();
            engine.write(&batch, WriteOptions::default()).unwrap();
        }
    }

    #[test]
    fn a_lock_below_the_safe_point_blocks_gc() {
        let engine = MemoryEngine::new();
        commit(&engine, b"a", Some(b"a1"), 1, 2);
        let m = Mutation::new(Op::Put, b"b".to_vec(), b"pending".to_vec());
        let p = Prewrite {
            mutations: vec![m],
            primary: b"a".to_vec(),
            start_ts: 3,
            lock_ttl: 10,
            ..Default::default()
        };
        let (batch, _) = commands::apply(&engine.snapshot(), &p.into()).unwrap();
        engine.write(&batch, WriteOptions::default()).unwrap();
        let err = gc(&engine.snapshot(), 5, b"", None).unwrap_err();
        assert!(
            matches!(
                err,
                crate::Error::GcBlocked {
                    lock_ts: 3,
                    safe_point: 5
                }
            ),
            "{err}"
        );
        assert!(
            gc(&engine.snapshot(), 2, b"", None).is_ok(),
            "a newer lock does not block"
        );
    }

    #[test]
    fn reads_at_or_after_the_safe_point_are_unchanged() {
        let engine = MemoryEngine::new();
        let long = vec![7u8; crate::mvcc::SHORT_VALUE_MAX_LEN + 1];
        commit(&engine, b"a", Some(&long), 1, 2);
        commit(&engine, b"a", Some(b"a2"), 3, 4);
        commit(&engine, b"a", Some(b"a3"), 9, 10);
        commit(&engine, b"b", Some(b"b1"), 1, 2);
        commit(&engine, b"b", None, 3, 4);
        let reads = |e: &MemoryEngine| {
            let snap = e.snapshot();
            let r = MvccReader::new(&snap);
            [5, 10, 20].map(|ts| (r.get(b"a", ts).unwrap(), r.get(b"b", ts).unwrap()))
        };
        let before = reads(&engine);
        let batch = gc(&engine.snapshot(), 5, b"", None).unwrap();
        // a@2 (and its long value) and both versions of b go; a@4 and a@10 stay.
        assert_eq!(batch.len(), 4, "{batch:?}");
        engine.write(&batch, WriteOptions::default()).unwrap();
        assert_eq!(reads(&engine), before);
        assert!(
            gc(&engine.snapshot(), 5, b"", None).unwrap().is_empty(),
            "idempotent"
        );
    }
}
