//! The KV engine boundary: column families, consistent snapshots, bounded
//! iterators and atomic write batches. Nothing in this module knows RocksDB;
//! [`rocks`] and [`memory`] implement it, and one conformance suite (in
//! `tests.rs`) runs over both.
//!
//! # Durability contract
//!
//! - [`Engine::write`] applies a [`WriteBatch`] atomically: a snapshot sees
//!   all of it or none of it, and so does the engine after a crash.
//! - With [`WriteOptions::sync`] set, the batch is durable when `write`
//!   returns: it survives a crash of the process and of the machine.
//! - Without `sync`, the batch survives a crash of the process (it is in the
//!   write-ahead log) but may be lost with the machine, until a later synced
//!   write or [`Engine::sync`] returns.
//! - The in-memory engine keeps nothing across restarts; it exists for tests.

pub mod memory;
pub mod rocks;
#[cfg(test)]
mod tests;

use crate::error::Result;

/// The column families every engine has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cf {
    /// Long values of MVCC versions: `key + start_ts → value`.
    Default,
    /// Percolator locks: `key → lock record`.
    Lock,
    /// Commit records: `key + commit_ts → write record`.
    Write,
    /// Raft's own data: log entries, hard state, apply state.
    Raft,
}

impl Cf {
    pub const ALL: [Cf; 4] = [Cf::Default, Cf::Lock, Cf::Write, Cf::Raft];

    /// The column family's name on disk.
    pub fn name(self) -> &'static str {
        match self {
            Cf::Default => "default",
            Cf::Lock => "lock",
            Cf::Write => "write",
            Cf::Raft => "raft",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The column family's number in encoded records (snapshots, logged
    /// effects).
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The column family numbered `code`, if any.
    pub fn from_code(code: u32) -> Option<Cf> {
        Cf::ALL.get(usize::try_from(code).ok()?).copied()
    }
}

/// One change in a [`WriteBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modify {
    Put {
        cf: Cf,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        cf: Cf,
        key: Vec<u8>,
    },
    /// Deletes every key in `[start, end)`.
    DeleteRange {
        cf: Cf,
        start: Vec<u8>,
        end: Vec<u8>,
    },
}

impl Modify {
    /// The column family the change is in.
    pub fn cf(&self) -> Cf {
        match self {
            Modify::Put { cf, .. } | Modify::Delete { cf, .. } | Modify::DeleteRange { cf, .. } => {
                *cf
            }
        }
    }
}

/// An ordered list of changes applied atomically. Later changes to the same
/// key win.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    pub modifies: Vec<Modify>,
}

impl WriteBatch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn put(&mut self, cf: Cf, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.modifies.push(Modify::Put {
            cf,
            key: key.into(),
            value: value.into(),
        });
    }

    pub fn delete(&mut self, cf: Cf, key: impl Into<Vec<u8>>) {
        self.modifies.push(Modify::Delete {
            cf,
            key: key.into(),
        });
    }

    pub fn delete_range(&mut self, cf: Cf, start: impl Into<Vec<u8>>, end: impl Into<Vec<u8>>) {
        self.modifies.push(Modify::DeleteRange {
            cf,
            start: start.into(),
            end: end.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.modifies.is_empty()
    }

    pub fn len(&self) -> usize {
        self.modifies.len()
    }

    /// Appends every change of `other`.
    pub fn extend(&mut self, other: WriteBatch) {
        self.modifies.extend(other.modifies);
    }
}

/// How a batch is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Durable on return (fsync of the write-ahead log).
    pub sync: bool,
}

/// Bounds and hints for an iterator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IterOptions {
    /// Smallest key the iterator may return (inclusive).
    pub lower: Option<Vec<u8>>,
    /// Keys must be below this (exclusive).
    pub upper: Option<Vec<u8>>,
    /// The caller only visits keys that share the seek key's MVCC prefix (the
    /// user key of a `write`/`default` CF key); engines may use prefix bloom
    /// filters. Iteration past that prefix is undefined.
    pub prefix_seek: bool,
}

impl IterOptions {
    /// An iterator over `[lower, upper)`.
    pub fn range(lower: impl Into<Vec<u8>>, upper: impl Into<Vec<u8>>) -> Self {
        IterOptions {
            lower: Some(lower.into()),
            upper: Some(upper.into()),
            prefix_seek: false,
        }
    }
}

/// A cursor over one column family of a snapshot. A fresh iterator is not
/// positioned: call a `seek*` first.
pub trait EngineIterator {
    /// Positions at the first key `>= key` (within bounds).
    fn seek(&mut self, key: &[u8]) -> Result<bool>;
    /// Positions at the last key `<= key` (within bounds).
    fn seek_for_prev(&mut self, key: &[u8]) -> Result<bool>;
    fn seek_to_first(&mut self) -> Result<bool>;
    fn seek_to_last(&mut self) -> Result<bool>;
    fn next(&mut self) -> Result<bool>;
    fn prev(&mut self) -> Result<bool>;
    fn valid(&self) -> bool;
    /// The current key; only while [`valid`](Self::valid).
    fn key(&self) -> &[u8];
    /// The current value; only while [`valid`](Self::valid).
    fn value(&self) -> &[u8];
}

/// A consistent, read-only view of the engine at one moment.
pub trait Snapshot: Send + Sync + 'static {
    type Iter<'a>: EngineIterator
    where
        Self: 'a;

    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>>;
    fn iter(&self, cf: Cf, opts: IterOptions) -> Result<Self::Iter<'_>>;
}

/// A KV engine with column families.
pub trait Engine: Send + Sync + 'static {
    type Snapshot: Snapshot;

    /// A consistent snapshot that later writes do not change.
    fn snapshot(&self) -> Self::Snapshot;
    /// Applies `batch` atomically (see the durability contract above).
    fn write(&self, batch: &WriteBatch, opts: WriteOptions) -> Result<()>;
    /// Makes every write so far durable.
    fn sync(&self) -> Result<()>;
    /// Reads the latest value of one key (a snapshot of one read).
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.snapshot().get(cf, key)
    }
}
