//! Reads over a snapshot: locks, commit records, and the value of a key (or a
//! range of keys) at a timestamp.

use crate::engine::{Cf, EngineIterator, IterOptions, Snapshot};
use crate::error::{Error, Result};
use crate::mvcc::key::{append_ts, decode_key, encode_key, split_ts};
use crate::mvcc::record::{Lock, LockKind, Write, WriteKind};

/// What a transaction left on one key, found through its start timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnCommitRecord {
    Committed {
        commit_ts: u64,
        write: Write,
    },
    RolledBack,
    /// Neither: the transaction never got here, or its record was collected.
    None,
}

/// A reader of MVCC data in one snapshot.
pub struct MvccReader<'a, S: Snapshot> {
    snap: &'a S,
}

/// The iterator options covering every version of one encoded key.
fn versions_of(encoded: &[u8]) -> IterOptions {
    let mut upper = append_ts(encoded, 0);
    upper.push(0);
    IterOptions {
        lower: Some(append_ts(encoded, u64::MAX)),
        upper: Some(upper),
        prefix_seek: true,
    }
}

/// Whether `lock` hides from a reader at `ts` the version it would otherwise see.
fn blocks_read(lock: &Lock, ts: u64) -> bool {
    !matches!(lock.lock_kind(), LockKind::Lock | LockKind::Pessimistic)
        && lock.start_ts <= ts
        && lock.min_commit_ts <= ts
}

impl<'a, S: Snapshot> MvccReader<'a, S> {
    pub fn new(snap: &'a S) -> Self {
        MvccReader { snap }
    }

    /// The lock on `key`, if any.
    pub fn load_lock(&self, key: &[u8]) -> Result<Option<Lock>> {
        self.snap
            .get(Cf::Lock, &encode_key(key))?
            .map(|b| Lock::from_bytes(&b))
            .transpose()
    }

    /// The newest write record of `key` committed at or before `ts`.
    pub fn seek_write(&self, key: &[u8], ts: u64) -> Result<Option<(u64, Write)>> {
        let encoded = encode_key(key);
        let mut it = self.snap.iter(Cf::Write, versions_of(&encoded))?;
        if !it.seek(&append_ts(&encoded, ts))? {
            return Ok(None);
        }
        let (_, commit_ts) = split_ts(it.key())?;
        Ok(Some((commit_ts, Write::from_bytes(it.value())?)))
    }

    /// Every write record of `key` committed at or after `since`, newest first.
    pub fn writes_since(&self, key: &[u8], since: u64) -> Result<Vec<(u64, Write)>> {
        let encoded = encode_key(key);
        let mut it = self.snap.iter(Cf::Write, versions_of(&encoded))?;
        let mut out = Vec::new();
        let mut ok = it.seek_to_first()?;
        while ok {
            let (_, commit_ts) = split_ts(it.key())?;
            if commit_ts < since {
                break;
            }
            out.push((commit_ts, Write::from_bytes(it.value())?));
            ok = it.next()?;
        }
        Ok(out)
    }

    /// The commit or rollback record of the transaction that started at
    /// `start_ts`, on `key`.
    pub fn txn_commit_record(&self, key: &[u8], start_ts: u64) -> Result<TxnCommitRecord> {
        for (commit_ts, write) in self.writes_since(key, start_ts)? {
            if write.start_ts == start_ts {
                return Ok(match write.write_kind() {
                    WriteKind::Rollback => TxnCommitRecord::RolledBack,
                    _ => TxnCommitRecord::Committed { commit_ts, write },
                });
            }
        }
        Ok(TxnCommitRecord::None)
    }

    /// The value of `key` visible at `ts`. A lock that could hide a newer
    /// version is reported as [`Error::KeyIsLocked`].
    pub fn get(&self, key: &[u8], ts: u64) -> Result<Option<Vec<u8>>> {
        if let Some(lock) = self.load_lock(key)?
            && blocks_read(&lock, ts)
        {
            return Err(Error::KeyIsLocked(Box::new(lock.info(key))));
        }
        self.get_committed(key, ts)
    }

    /// The newest committed value at or before `ts`, ignoring locks.
    pub fn get_committed(&self, key: &[u8], ts: u64) -> Result<Option<Vec<u8>>> {
        let encoded = encode_key(key);
        let mut it = self.snap.iter(Cf::Write, versions_of(&encoded))?;
        let mut ok = it.seek(&append_ts(&encoded, ts))?;
        while ok {
            let write = Write::from_bytes(it.value())?;
            match write.write_kind() {
                WriteKind::Put => return self.load_value(&encoded, &write).map(Some),
                WriteKind::Delete => return Ok(None),
                WriteKind::Lock | WriteKind::Rollback => ok = it.next()?,
            }
        }
        Ok(None)
    }

    /// The value a `Put` write record points at.
    fn load_value(&self, encoded: &[u8], write: &Write) -> Result<Vec<u8>> {
        if let Some(v) = &write.short_value {
            return Ok(v.clone());
        }
        self.snap
            .get(Cf::Default, &append_ts(encoded, write.start_ts))?
            .ok_or_else(|| Error::Corruption {
                what: "mvcc version",
                detail: format!("the value written at {} is missing", write.start_ts),
            })
    }

    /// Up to `limit` key/value pairs of `[start, end)` visible at `ts`, in key
    /// order. The first blocking lock in the range is reported.
    pub fn scan(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        ts: u64,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        if let Some((key, lock)) = self
            .scan_locks(start, end, ts, 1, |l| blocks_read(l, ts))?
            .into_iter()
            .next()
        {
            return Err(Error::KeyIsLocked(Box::new(lock.info(&key))));
        }
        let lower = encode_key(start);
        let upper = end.map(encode_key);
        let opts = IterOptions {
            lower: Some(lower.clone()),
            upper: upper.clone(),
            prefix_seek: false,
        };
        let mut it = self.snap.iter(Cf::Write, opts)?;
        let mut out = Vec::new();
        let mut ok = it.seek(&lower)?;
        while ok && out.len() < limit {
            let (encoded, _) = split_ts(it.key())?;
            let encoded = encoded.to_vec();
            // Newest version at or below `ts`, skipping Lock and Rollback records.
            ok = it.seek(&append_ts(&encoded, ts))?;
            let mut value = None;
            while ok && split_ts(it.key())?.0 == encoded.as_slice() {
                let write = Write::from_bytes(it.value())?;
                match write.write_kind() {
                    WriteKind::Put => {
                        value = Some(self.load_value(&encoded, &write)?);
                        break;
                    }
                    WriteKind::Delete => break,
                    WriteKind::Lock | WriteKind::Rollback => ok = it.next()?,
                }
            }
            if let Some(v) = value {
                out.push((decode_key(&encoded)?, v));
            }
            // On to the next user key.
            let mut next = append_ts(&encoded, 0);
            next.push(0);
            ok = it.seek(&next)?;
        }
        Ok(out)
    }

    /// Locks in `[start, end)` that satisfy `filter`, up to `limit`.
    pub fn scan_locks(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        _ts: u64,
        limit: usize,
        filter: impl Fn(&Lock) -> bool,
    ) -> Result<Vec<(Vec<u8>, Lock)>> {
        let opts = IterOptions {
            lower: Some(encode_key(start)),
            upper: end.map(encode_key),
            prefix_seek: false,
        };
        let mut it = self.snap.iter(Cf::Lock, opts)?;
        let mut out = Vec::new();
        let mut ok = it.seek_to_first()?;
        while ok && out.len() < limit {
            let lock = Lock::from_bytes(it.value())?;
            if filter(&lock) {
                out.push((decode_key(it.key())?, lock));
            }
            ok = it.next()?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::memory::MemoryEngine;
    use crate::engine::{Engine, WriteBatch, WriteOptions};

    #[test]
    fn corrupted_records_are_typed_errors_without_the_key() {
        let engine = MemoryEngine::new();
        let secret = b"user-secret-key";
        let mut batch = WriteBatch::new();
        batch.put(Cf::Lock, encode_key(secret), vec![0xff, 0x01]);
        batch.put(Cf::Write, append_ts(&encode_key(b"w"), 5), vec![0x08, 0x63]);
        batch.put(Cf::Write, b"abc".to_vec(), vec![]);
        engine.write(&batch, WriteOptions::default()).unwrap();
        let snap = engine.snapshot();
        let reader = MvccReader::new(&snap);
        let err = reader.get(secret, 10).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Corruption {
                    what: "lock record",
                    ..
                }
            ),
            "{err}"
        );
        assert!(!err.to_string().contains("user-secret-key"));
        let err = reader.get(b"w", 10).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Corruption {
                    what: "write record",
                    ..
                }
            ),
            "{err}"
        );
        // A write-CF key too short to carry a timestamp.
        let err = reader.scan(b"", None, 10, 10).unwrap_err();
        assert!(matches!(err, Error::Corruption { .. }), "{err}");
    }
}
