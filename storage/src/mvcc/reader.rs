//! Reads over a snapshot: locks, commit records, and the value of a key (or a
//! range of keys) at a timestamp.

use crate::engine::{Cf, EngineIterator, IterOptions, Snapshot};
use crate::error::{Error, Result};
use crate::mvcc::key::{append_ts, decode_key, encode_key, split_ts};
use crate::mvcc::record::{Lock, LockKind, Write, WriteKind};

/// Steps a scan takes with `next` before it seeks instead.
const SEEK_AFTER_NEXTS: usize = 4;

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
    /// order. A lock that could hide a version of a key the scan covered is
    /// reported. Versions are walked with `next` (a seek only after a few
    /// steps), which is what scans of mostly single-version keys want.
    pub fn scan(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        ts: u64,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let lower = encode_key(start);
        let opts = IterOptions {
            lower: Some(lower.clone()),
            upper: end.map(encode_key),
            prefix_seek: false,
        };
        let mut it = self.snap.iter(Cf::Write, opts)?;
        let mut out = Vec::new();
        let mut ok = it.seek(&lower)?;
        while ok && out.len() < limit {
            let encoded = split_ts(it.key())?.0.to_vec();
            ok = self.seek_version(&mut it, &encoded, ts)?;
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
            ok = ok && self.skip_key(&mut it, &encoded)?;
        }
        // Locks matter only where the scan looked.
        let covered_end = out.last().filter(|_| out.len() >= limit).map(|(k, _)| {
            let mut e = k.clone();
            e.push(0);
            e
        });
        let lock_end = covered_end.as_deref().or(end);
        if let Some((key, lock)) = self
            .scan_locks(start, lock_end, ts, 1, |l| blocks_read(l, ts))?
            .into_iter()
            .next()
        {
            return Err(Error::KeyIsLocked(Box::new(lock.info(&key))));
        }
        Ok(out)
    }

    /// From a version of `encoded`, moves to its newest version at or below
    /// `ts` (or past the key): a few `next`s, then a seek.
    fn seek_version(&self, it: &mut S::Iter<'_>, encoded: &[u8], ts: u64) -> Result<bool> {
        for _ in 0..SEEK_AFTER_NEXTS {
            if !it.valid() {
                return Ok(false);
            }
            let (key, commit_ts) = split_ts(it.key())?;
            if key != encoded || commit_ts <= ts {
                return Ok(true);
            }
            it.next()?;
        }
        it.seek(&append_ts(encoded, ts))
    }

    /// Moves past every version of `encoded`: a few `next`s, then a seek.
    fn skip_key(&self, it: &mut S::Iter<'_>, encoded: &[u8]) -> Result<bool> {
        for _ in 0..SEEK_AFTER_NEXTS {
            if !it.valid() {
                return Ok(false);
            }
            if split_ts(it.key())?.0 != encoded {
                return Ok(true);
            }
            it.next()?;
        }
        let mut next = append_ts(encoded, 0);
        next.push(0);
        it.seek(&next)
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

#[cfg(test)]
mod scan_tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::engine::memory::MemoryEngine;
    use crate::engine::{Engine, WriteOptions};
    use crate::txn::commands::{self, Command, Commit, Mutation, Op, Prewrite, Rollback};

    fn run(engine: &MemoryEngine, cmd: Command) {
        if let Ok((batch, _)) = commands::apply(&engine.snapshot(), &cmd) {
            engine.write(&batch, WriteOptions::default()).unwrap();
        }
    }

    /// Random histories (many versions, deletes, lock and rollback records,
    /// long values): a scan at any timestamp, with any limit, returns what
    /// point reads return.
    #[test]
    fn scans_agree_with_point_reads() {
        let engine = MemoryEngine::new();
        let mut rng = StdRng::seed_from_u64(7);
        let mut ts = 10;
        for _ in 0..300 {
            let key = vec![b'k', rng.random_range(0..12u8)];
            ts += 2;
            let (op, value) = match rng.random_range(0..10) {
                0..=5 => (Op::Put, vec![rng.random::<u8>(); rng.random_range(1..100)]),
                6 | 7 => (Op::Delete, vec![]),
                _ => (Op::Lock, vec![]),
            };
            let prewrite = Prewrite {
                mutations: vec![Mutation::new(op, key.clone(), value)],
                primary: key.clone(),
                start_ts: ts,
                lock_ttl: 10,
                ..Default::default()
            };
            run(&engine, prewrite.into());
            let end: Command = if rng.random_bool(0.85) {
                Commit {
                    keys: vec![key],
                    start_ts: ts,
                    commit_ts: ts + 1,
                }
                .into()
            } else {
                Rollback {
                    keys: vec![key],
                    start_ts: ts,
                }
                .into()
            };
            run(&engine, end);
        }
        let snap = engine.snapshot();
        let reader = MvccReader::new(&snap);
        for read_ts in (0..ts + 4).step_by(7) {
            let expected: Vec<(Vec<u8>, Vec<u8>)> = (0..12u8)
                .filter_map(|i| {
                    let k = vec![b'k', i];
                    reader.get_committed(&k, read_ts).unwrap().map(|v| (k, v))
                })
                .collect();
            assert_eq!(
                reader.scan(b"", None, read_ts, usize::MAX).unwrap(),
                expected,
                "ts {read_ts}"
            );
            for limit in [1, 3, 5] {
                let got = reader
                    .scan(b"k\x02", Some(b"k\x0a"), read_ts, limit)
                    .unwrap();
                let want: Vec<_> = expected
                    .iter()
                    .filter(|(k, _)| k[1] >= 2 && k[1] < 10)
                    .take(limit)
                    .cloned()
                    .collect();
                assert_eq!(got, want, "ts {read_ts} limit {limit}");
            }
        }
    }

    #[test]
    fn only_locks_within_what_the_scan_covered_matter() {
        let engine = MemoryEngine::new();
        for (i, key) in [b"a", b"b", b"c"].iter().enumerate() {
            let start_ts = 10 + 2 * i as u64;
            let m = Mutation::new(Op::Put, key.to_vec(), b"v".to_vec());
            let p = Prewrite {
                mutations: vec![m],
                primary: key.to_vec(),
                start_ts,
                lock_ttl: 10,
                ..Default::default()
            };
            run(&engine, p.into());
            run(
                &engine,
                Commit {
                    keys: vec![key.to_vec()],
                    start_ts,
                    commit_ts: start_ts + 1,
                }
                .into(),
            );
        }
        let m = Mutation::new(Op::Put, b"c".to_vec(), b"new".to_vec());
        run(
            &engine,
            Prewrite {
                mutations: vec![m],
                primary: b"c".to_vec(),
                start_ts: 30,
                lock_ttl: 10,
                ..Default::default()
            }
            .into(),
        );
        let snap = engine.snapshot();
        let reader = MvccReader::new(&snap);
        assert_eq!(
            reader.scan(b"", None, 40, 2).unwrap().len(),
            2,
            "c's lock lies beyond the rows returned"
        );
        assert!(matches!(
            reader.scan(b"", None, 40, 3),
            Err(Error::KeyIsLocked(_))
        ));
        assert_eq!(
            reader.scan(b"", None, 20, 10).unwrap().len(),
            3,
            "the lock is newer than the read"
        );
    }
}
