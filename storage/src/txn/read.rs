//! Reads as data. A transaction's read is a [`Read`] value that any replica
//! of the keys' region can answer from its engine once it has caught up to
//! a linearizable point ([`serve`]); a read that spans regions is cut into
//! one part per region ([`Read::restrict`]) and the parts' [`Answer`]s are
//! joined in key order ([`Answer::append`]). Being prost messages, a read
//! and its answer cross the network as they are, so a node can read a
//! region it holds no replica of.

use prost::Message;

use super::commands::{in_range, key_span, overlap};
use crate::engine::Snapshot;
use crate::error::{Error, Result};
use crate::mvcc::{Lock, MvccReader, WriteKind};

/// The visible value of `key` at `ts`; a lock that may hide it is reported
/// as `KeyIsLocked`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Get {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(uint64, tag = "2")]
    pub ts: u64,
}

/// Up to `limit` pairs of `[start, end)` visible at `ts` (an empty `end`
/// means no bound); a lock where the scan looked is reported.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Scan {
    #[prost(bytes = "vec", tag = "1")]
    pub start: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub end: Vec<u8>,
    #[prost(uint64, tag = "3")]
    pub ts: u64,
    #[prost(uint64, tag = "4")]
    pub limit: u64,
}

/// Up to `limit` locks of `[start, end)` taken at or below `max_ts`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ScanLocks {
    #[prost(bytes = "vec", tag = "1")]
    pub start: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub end: Vec<u8>,
    #[prost(uint64, tag = "3")]
    pub max_ts: u64,
    #[prost(uint64, tag = "4")]
    pub limit: u64,
}

/// The newest committed value of each key at or below `ts`, locks ignored
/// (what a pessimistic lock holder builds on).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct GetCommitted {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub keys: Vec<Vec<u8>>,
    #[prost(uint64, tag = "2")]
    pub ts: u64,
}

/// What a committing transaction checks of a key it watched: the lock on
/// it, and whether a put or delete committed at or after `since_ts`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Watched {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(uint64, tag = "2")]
    pub since_ts: u64,
}

/// One read.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Read {
    #[prost(oneof = "read_kind::Kind", tags = "1, 2, 3, 4, 5")]
    pub kind: Option<read_kind::Kind>,
}

pub mod read_kind {
    //! The cases of [`Read`](super::Read).
    #[derive(Clone, PartialEq, Eq, prost::Oneof)]
    pub enum Kind {
        #[prost(message, tag = "1")]
        Get(super::Get),
        #[prost(message, tag = "2")]
        Scan(super::Scan),
        #[prost(message, tag = "3")]
        ScanLocks(super::ScanLocks),
        #[prost(message, tag = "4")]
        GetCommitted(super::GetCommitted),
        #[prost(message, tag = "5")]
        Watched(super::Watched),
    }
}

macro_rules! into_read {
    ($($t:ident),*) => {$(
        impl From<$t> for Read {
            fn from(r: $t) -> Read {
                Read { kind: Some(read_kind::Kind::$t(r)) }
            }
        }
    )*};
}
into_read!(Get, Scan, ScanLocks, GetCommitted, Watched);

/// A key and its value.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Pair {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// A lock and the key it is on.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct KeyLock {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(message, optional, tag = "2")]
    pub lock: Option<Lock>,
}

/// What a read found. `Get` and `GetCommitted` answer in `pairs` (a key
/// with no value is absent), `Scan` in `pairs` in key order, `ScanLocks` in
/// `locks`, `Watched` in `locks` (at most one) and `written`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Answer {
    #[prost(message, repeated, tag = "1")]
    pub pairs: Vec<Pair>,
    #[prost(message, repeated, tag = "2")]
    pub locks: Vec<KeyLock>,
    #[prost(bool, tag = "3")]
    pub written: bool,
}

impl Read {
    fn kind(&self) -> Result<&read_kind::Kind> {
        self.kind.as_ref().ok_or_else(|| Error::Corruption {
            what: "read",
            detail: "empty".into(),
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    /// The timestamp this read must see every commit at or below (0 for
    /// none): a store raises its read floor to it, so that nothing commits
    /// in one phase there below it afterwards. A watched key's check needs
    /// none: its writers commit in two phases (see
    /// [`Transaction::writes_watched`](super::Transaction::writes_watched)).
    pub fn ts(&self) -> u64 {
        use read_kind::Kind;
        match self.kind.as_ref() {
            Some(Kind::Get(r)) => r.ts,
            Some(Kind::Scan(r)) => r.ts,
            Some(Kind::GetCommitted(r)) => r.ts,
            Some(Kind::Watched(_) | Kind::ScanLocks(_)) | None => 0,
        }
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Read> {
        Read::decode(bytes).map_err(|e| Error::Corruption {
            what: "read",
            detail: e.to_string(),
        })
    }

    /// The part of this read within `[start, end)` (an empty `end` means no
    /// bound), or `None` if it reads nothing there.
    pub fn restrict(&self, start: &[u8], end: &[u8]) -> Option<Read> {
        use read_kind::Kind;
        let kind = match self.kind.as_ref()? {
            Kind::Get(r) => in_range(&r.key, start, end).then(|| Kind::Get(r.clone()))?,
            Kind::Watched(r) => in_range(&r.key, start, end).then(|| Kind::Watched(r.clone()))?,
            Kind::GetCommitted(r) => {
                let keys: Vec<Vec<u8>> = (r.keys.iter())
                    .filter(|k| in_range(k, start, end))
                    .cloned()
                    .collect();
                (!keys.is_empty()).then_some(Kind::GetCommitted(GetCommitted { keys, ts: r.ts }))?
            }
            Kind::Scan(r) => {
                let (start, end) = overlap(&r.start, &r.end, start, end)?;
                Kind::Scan(Scan {
                    start,
                    end,
                    ..r.clone()
                })
            }
            Kind::ScanLocks(r) => {
                let (start, end) = overlap(&r.start, &r.end, start, end)?;
                Kind::ScanLocks(ScanLocks {
                    start,
                    end,
                    ..r.clone()
                })
            }
        };
        Some(Read { kind: Some(kind) })
    }

    /// The smallest range `[start, end)` (an empty `end` means no bound)
    /// that holds every key this read may return.
    pub fn span(&self) -> (Vec<u8>, Vec<u8>) {
        use read_kind::Kind;
        match self.kind.as_ref() {
            Some(Kind::Get(r)) => key_span([r.key.as_slice()]),
            Some(Kind::Watched(r)) => key_span([r.key.as_slice()]),
            Some(Kind::GetCommitted(r)) => key_span(r.keys.iter().map(Vec::as_slice)),
            Some(Kind::Scan(r)) => (r.start.clone(), r.end.clone()),
            Some(Kind::ScanLocks(r)) => (r.start.clone(), r.end.clone()),
            None => (Vec::new(), vec![0]),
        }
    }

    /// The one key a `Get` or `Watched` reads.
    pub fn single_key(&self) -> Option<&[u8]> {
        match self.kind.as_ref()? {
            read_kind::Kind::Get(r) => Some(&r.key),
            read_kind::Kind::Watched(r) => Some(&r.key),
            _ => None,
        }
    }

    /// How many more entries the read may take after `answer` (scans count
    /// down their limit; other reads want every part).
    pub fn remaining(&self, answer: &Answer) -> Option<usize> {
        match self.kind.as_ref()? {
            read_kind::Kind::Scan(r) => Some((r.limit as usize).saturating_sub(answer.pairs.len())),
            read_kind::Kind::ScanLocks(r) => {
                Some((r.limit as usize).saturating_sub(answer.locks.len()))
            }
            _ => None,
        }
    }

    /// This read with its limit lowered to `limit` (scans only).
    pub fn with_limit(&self, limit: usize) -> Read {
        let mut read = self.clone();
        match read.kind.as_mut() {
            Some(read_kind::Kind::Scan(r)) => r.limit = limit as u64,
            Some(read_kind::Kind::ScanLocks(r)) => r.limit = limit as u64,
            _ => {}
        }
        read
    }
}

impl Answer {
    /// Adds the answer of the next part (in key order) to this one.
    pub fn append(&mut self, next: Answer) {
        self.pairs.extend(next.pairs);
        self.locks.extend(next.locks);
        self.written |= next.written;
    }

    /// The pairs, as a scan returns them.
    pub fn into_pairs(self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.pairs.into_iter().map(|p| (p.key, p.value)).collect()
    }

    /// The locks, as a lock scan returns them.
    pub fn into_locks(self) -> Vec<(Vec<u8>, Lock)> {
        self.locks
            .into_iter()
            .filter_map(|l| Some((l.key, l.lock?)))
            .collect()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Answer> {
        Answer::decode(bytes).map_err(|e| Error::Corruption {
            what: "read answer",
            detail: e.to_string(),
        })
    }
}

fn pair(key: Vec<u8>, value: Vec<u8>) -> Pair {
    Pair { key, value }
}

/// Answers `read` from `snap`. A lock that blocks a `Get` or `Scan` is the
/// error `KeyIsLocked`, for the reader to resolve.
pub fn serve<S: Snapshot>(snap: &S, read: &Read) -> Result<Answer> {
    use read_kind::Kind;
    let reader = MvccReader::new(snap);
    let mut answer = Answer::default();
    match read.kind()? {
        Kind::Get(r) => {
            if let Some(v) = reader.get(&r.key, r.ts)? {
                answer.pairs.push(pair(r.key.clone(), v));
            }
        }
        Kind::Scan(r) => {
            let end = (!r.end.is_empty()).then_some(r.end.as_slice());
            let pairs = reader.scan(&r.start, end, r.ts, r.limit as usize)?;
            answer.pairs = pairs.into_iter().map(|(k, v)| pair(k, v)).collect();
        }
        Kind::ScanLocks(r) => {
            let end = (!r.end.is_empty()).then_some(r.end.as_slice());
            let locks = reader.scan_locks(&r.start, end, r.max_ts, r.limit as usize, |l| {
                l.start_ts <= r.max_ts
            })?;
            answer.locks = locks
                .into_iter()
                .map(|(key, lock)| KeyLock {
                    key,
                    lock: Some(lock),
                })
                .collect();
        }
        Kind::GetCommitted(r) => {
            for key in &r.keys {
                if let Some(v) = reader.get_committed(key, r.ts)? {
                    answer.pairs.push(pair(key.clone(), v));
                }
            }
        }
        Kind::Watched(r) => {
            if let Some(lock) = reader.load_lock(&r.key)? {
                answer.locks.push(KeyLock {
                    key: r.key.clone(),
                    lock: Some(lock),
                });
            }
            answer.written = reader
                .writes_since(&r.key, r.since_ts)?
                .iter()
                .any(|(_, w)| matches!(w.write_kind(), WriteKind::Put | WriteKind::Delete));
        }
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(start: &[u8], end: &[u8], limit: u64) -> Read {
        Scan {
            start: start.to_vec(),
            end: end.to_vec(),
            ts: 9,
            limit,
        }
        .into()
    }

    #[test]
    fn a_read_is_cut_at_region_bounds() {
        let get: Read = Get {
            key: b"k".to_vec(),
            ts: 9,
        }
        .into();
        assert_eq!(get.restrict(b"", b"m").as_ref(), Some(&get));
        assert_eq!(get.restrict(b"m", b""), None);
        assert_eq!(
            scan(b"c", b"x", 5).restrict(b"", b"m"),
            Some(scan(b"c", b"m", 5))
        );
        assert_eq!(
            scan(b"c", b"", 5).restrict(b"m", b""),
            Some(scan(b"m", b"", 5))
        );
        assert_eq!(scan(b"c", b"f", 5).restrict(b"m", b""), None);
        let many: Read = GetCommitted {
            keys: vec![b"a".to_vec(), b"n".to_vec(), b"z".to_vec()],
            ts: 9,
        }
        .into();
        let right: Read = GetCommitted {
            keys: vec![b"n".to_vec(), b"z".to_vec()],
            ts: 9,
        }
        .into();
        assert_eq!(many.restrict(b"m", b""), Some(right));
    }

    #[test]
    fn a_read_spans_the_keys_it_may_return() {
        let get: Read = Get {
            key: b"k".to_vec(),
            ts: 1,
        }
        .into();
        assert_eq!(get.span(), (b"k".to_vec(), b"k\0".to_vec()));
        let many: Read = GetCommitted {
            keys: vec![b"q".to_vec(), b"b".to_vec(), b"m".to_vec()],
            ts: 1,
        }
        .into();
        assert_eq!(many.span(), (b"b".to_vec(), b"q\0".to_vec()));
        assert_eq!(scan(b"a", b"", 5).span(), (b"a".to_vec(), Vec::new()));
    }

    #[test]
    fn a_scan_counts_its_limit_down_across_parts() {
        let read = scan(b"", b"", 3);
        let mut answer = Answer::default();
        answer.pairs.push(pair(b"a".to_vec(), b"1".to_vec()));
        assert_eq!(read.remaining(&answer), Some(2));
        assert_eq!(read.with_limit(2), scan(b"", b"", 2));
        let get: Read = Get::default().into();
        assert_eq!(get.remaining(&answer), None);
    }

    #[test]
    fn reads_and_answers_cross_the_wire_unchanged() {
        let read = scan(b"a", b"b", 7);
        assert_eq!(Read::from_bytes(&read.to_bytes()).unwrap(), read);
        let mut answer = Answer::default();
        answer.pairs.push(pair(b"a".to_vec(), b"1".to_vec()));
        answer.written = true;
        assert_eq!(Answer::from_bytes(&answer.to_bytes()).unwrap(), answer);
        assert!(Read::from_bytes(&[0xff]).is_err());
    }
}
