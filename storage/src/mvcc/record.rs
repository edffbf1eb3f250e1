//! The records stored in the `lock` and `write` column families, encoded with
//! prost so that other components (Raft, the columnar learner) can decode
//! them without this crate's help.

use prost::Message;

use crate::error::{Error, Result};

/// Values up to this many bytes are stored inline in the lock and write
/// records; longer ones go to the `default` CF.
pub const SHORT_VALUE_MAX_LEN: usize = 255;

/// What a lock will become when its transaction commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum LockKind {
    Put = 0,
    Delete = 1,
    /// Locks the key without changing it (e.g. `SELECT … FOR UPDATE` at commit).
    Lock = 2,
    /// A pessimistic lock taken before prewrite; it commits nothing.
    Pessimistic = 3,
}

/// A Percolator lock (`lock` CF).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Lock {
    #[prost(enumeration = "LockKind", tag = "1")]
    pub kind: i32,
    /// The transaction's primary key (raw user key).
    #[prost(bytes = "vec", tag = "2")]
    pub primary: Vec<u8>,
    #[prost(uint64, tag = "3")]
    pub start_ts: u64,
    /// Milliseconds after `start_ts`'s physical time when the lock may be cleaned up.
    #[prost(uint64, tag = "4")]
    pub ttl: u64,
    #[prost(bytes = "vec", optional, tag = "5")]
    pub short_value: Option<Vec<u8>>,
    /// For pessimistic transactions: the timestamp the key was locked at.
    #[prost(uint64, tag = "6")]
    pub for_update_ts: u64,
    /// The smallest commit timestamp this lock accepts.
    #[prost(uint64, tag = "7")]
    pub min_commit_ts: u64,
}

impl Lock {
    pub fn lock_kind(&self) -> LockKind {
        LockKind::try_from(self.kind).unwrap_or(LockKind::Put)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Lock> {
        let lock = Lock::decode(bytes).map_err(|e| Error::Corruption {
            what: "lock record",
            detail: e.to_string(),
        })?;
        if LockKind::try_from(lock.kind).is_err() {
            return Err(Error::Corruption {
                what: "lock record",
                detail: format!("unknown kind {}", lock.kind),
            });
        }
        Ok(lock)
    }

    /// The details a reader needs to resolve this lock on `key`.
    pub fn info(&self, key: &[u8]) -> LockInfo {
        LockInfo {
            key: key.to_vec(),
            primary: self.primary.clone(),
            start_ts: self.start_ts,
            ttl: self.ttl,
            kind: self.lock_kind(),
            min_commit_ts: self.min_commit_ts,
        }
    }
}

/// A lock as reported to a reader or writer that ran into it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockInfo {
    pub key: Vec<u8>,
    pub primary: Vec<u8>,
    pub start_ts: u64,
    pub ttl: u64,
    pub kind: LockKind,
    pub min_commit_ts: u64,
}

/// What a `write` CF record says about a version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum WriteKind {
    Put = 0,
    Delete = 1,
    Lock = 2,
    /// The transaction with this start timestamp was rolled back here.
    Rollback = 3,
}

/// A commit or rollback record (`write` CF).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Write {
    #[prost(enumeration = "WriteKind", tag = "1")]
    pub kind: i32,
    #[prost(uint64, tag = "2")]
    pub start_ts: u64,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub short_value: Option<Vec<u8>>,
}

impl Write {
    pub fn new(kind: WriteKind, start_ts: u64, short_value: Option<Vec<u8>>) -> Write {
        Write {
            kind: kind as i32,
            start_ts,
            short_value,
        }
    }

    pub fn write_kind(&self) -> WriteKind {
        WriteKind::try_from(self.kind).unwrap_or(WriteKind::Put)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Write> {
        let w = Write::decode(bytes).map_err(|e| Error::Corruption {
            what: "write record",
            detail: e.to_string(),
        })?;
        if WriteKind::try_from(w.kind).is_err() {
            return Err(Error::Corruption {
                what: "write record",
                detail: format!("unknown kind {}", w.kind),
            });
        }
        Ok(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_corruption_is_typed() {
        let lock = Lock {
            kind: LockKind::Delete as i32,
            primary: b"p".to_vec(),
            start_ts: 5,
            ttl: 3000,
            short_value: None,
            for_update_ts: 0,
            min_commit_ts: 6,
        };
        assert_eq!(Lock::from_bytes(&lock.to_bytes()).unwrap(), lock);
        let w = Write::new(WriteKind::Put, 5, Some(b"v".to_vec()));
        assert_eq!(Write::from_bytes(&w.to_bytes()).unwrap(), w);
        let err = Write::from_bytes(&[0xff, 0xff, 0xff]).unwrap_err();
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
        let bad_kind = Write {
            kind: 42,
            start_ts: 1,
            short_value: None,
        };
        assert!(Write::from_bytes(&bad_kind.to_bytes()).is_err());
    }
}
