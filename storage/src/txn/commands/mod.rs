//! The transaction actions, one file each, as a command enum. Every action
//! is a pure function: a snapshot in, a write batch and a response out; an
//! action that fails writes nothing. A region's leader runs each command
//! once and replicates its [`Effects`] (the batch and the response), which
//! every replica and the columnar learner apply as they are.

mod check_txn_status;
mod commit;
pub mod effects;
mod pessimistic;
mod prewrite;
mod resolve_lock;
mod rollback;
#[cfg(test)]
mod tests;

use prost::Message;

use crate::engine::{Snapshot, WriteBatch};
use crate::error::{Error, Result};

pub use check_txn_status::TxnStatus;
pub use effects::Effects;

/// What a prewrite does to one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Op {
    Put = 0,
    Delete = 1,
    /// Lock the key at commit without changing it.
    Lock = 2,
    /// Put, but fail with `AlreadyExist` if the key has a visible value.
    Insert = 3,
}

/// One key of a prewrite.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Mutation {
    #[prost(enumeration = "Op", tag = "1")]
    pub op: i32,
    #[prost(bytes = "vec", tag = "2")]
    pub key: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub value: Vec<u8>,
    /// When what the value builds on was read, if later than the start: a
    /// pessimistic statement computes index entries from rows it read
    /// through their locks, so a commit to the entry before that read is
    /// no conflict (the statement saw it). 0: the start.
    #[prost(uint64, tag = "4")]
    pub read_ts: u64,
}

impl Mutation {
    pub fn new(op: Op, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Mutation {
            op: op as i32,
            key: key.into(),
            value: value.into(),
            read_ts: 0,
        }
    }
}

/// Phase one of two-phase commit: lock every key, checking for conflicts.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Prewrite {
    #[prost(message, repeated, tag = "1")]
    pub mutations: Vec<Mutation>,
    #[prost(bytes = "vec", tag = "2")]
    pub primary: Vec<u8>,
    #[prost(uint64, tag = "3")]
    pub start_ts: u64,
    #[prost(uint64, tag = "4")]
    pub lock_ttl: u64,
    /// Non-zero for a pessimistic transaction.
    #[prost(uint64, tag = "5")]
    pub for_update_ts: u64,
    /// Per mutation: whether the key already holds this transaction's pessimistic lock.
    #[prost(bool, repeated, tag = "6")]
    pub pessimistic: Vec<bool>,
    #[prost(uint64, tag = "7")]
    pub min_commit_ts: u64,
    /// Ask for one-phase commit: when every mutation falls in one region
    /// (routing clears the flag on a part of a split prewrite), the
    /// region's leader picks the commit timestamp and writes commit
    /// records instead of locks, answering [`Response::Committed`]. It may
    /// still prewrite as usual (answering `Done`), for the client to commit.
    #[prost(bool, tag = "8")]
    pub try_one_pc: bool,
    /// With `try_one_pc`: the largest commit timestamp the client accepts
    /// (0: any). Above it the leader prewrites as usual.
    #[prost(uint64, tag = "9")]
    pub max_commit_ts: u64,
}

/// Phase two: turn locks into commit records.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Commit {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub keys: Vec<Vec<u8>>,
    #[prost(uint64, tag = "2")]
    pub start_ts: u64,
    #[prost(uint64, tag = "3")]
    pub commit_ts: u64,
}

/// Abort: remove locks and leave rollback records that stop a late prewrite.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Rollback {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub keys: Vec<Vec<u8>>,
    #[prost(uint64, tag = "2")]
    pub start_ts: u64,
}

/// Decide the fate of a transaction by its primary key.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CheckTxnStatus {
    #[prost(bytes = "vec", tag = "1")]
    pub primary: Vec<u8>,
    #[prost(uint64, tag = "2")]
    pub lock_ts: u64,
    /// Now, from the timestamp oracle: locks past their TTL by then are rolled back.
    #[prost(uint64, tag = "3")]
    pub current_ts: u64,
    /// With no lock and no record, write a rollback record (so a late prewrite fails).
    #[prost(bool, tag = "4")]
    pub rollback_if_not_exist: bool,
}

/// Commit (`commit_ts > 0`) or roll back the locks of a decided transaction.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ResolveLock {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub keys: Vec<Vec<u8>>,
    #[prost(uint64, tag = "2")]
    pub start_ts: u64,
    #[prost(uint64, tag = "3")]
    pub commit_ts: u64,
}

/// Lock keys before prewrite (`SELECT … FOR UPDATE`, pessimistic DML).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct AcquirePessimisticLock {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub keys: Vec<Vec<u8>>,
    #[prost(bytes = "vec", tag = "2")]
    pub primary: Vec<u8>,
    #[prost(uint64, tag = "3")]
    pub start_ts: u64,
    #[prost(uint64, tag = "4")]
    pub for_update_ts: u64,
    #[prost(uint64, tag = "5")]
    pub lock_ttl: u64,
    /// How long the region's leader may hold the command while another
    /// transaction's lock stands in its way, running it again as soon as
    /// that lock is released (0: answer `KeyIsLocked` at once).
    #[prost(uint64, tag = "6")]
    pub wait_ms: u64,
}

/// Release pessimistic locks that were never prewritten.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct PessimisticRollback {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub keys: Vec<Vec<u8>>,
    #[prost(uint64, tag = "2")]
    pub start_ts: u64,
}

/// Keep a live transaction's primary lock from expiring: raise its TTL to
/// `advise_ttl` (never lower it). Fails with `TxnLockNotFound` once the
/// lock is gone (committed, rolled back, or resolved by another).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct TxnHeartBeat {
    #[prost(bytes = "vec", tag = "1")]
    pub primary: Vec<u8>,
    #[prost(uint64, tag = "2")]
    pub start_ts: u64,
    #[prost(uint64, tag = "3")]
    pub advise_ttl: u64,
}

/// Remove versions no reader at or after `safe_point` can see, in
/// `[start, end)` (an empty `end` means no bound). Replicated like any other
/// command, so every replica deletes the same versions at the same log
/// position.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Gc {
    #[prost(uint64, tag = "1")]
    pub safe_point: u64,
    #[prost(bytes = "vec", tag = "2")]
    pub start: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub end: Vec<u8>,
}

/// Remove every version, value and lock of the user keys in `[start, end)`
/// (both bounds required): the data of a dropped table or index, once no
/// reader can see it any more. Replicated like any other command; every
/// replica deletes the whole range at the same log position.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct DestroyRange {
    #[prost(bytes = "vec", tag = "1")]
    pub start: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub end: Vec<u8>,
}

/// Raise the replicated high-water mark of a cluster's timestamp oracle: the
/// leader hands out timestamps below `limit` only after this applied, so a
/// new leader starts above anything an old one issued.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct TsoLimit {
    #[prost(uint64, tag = "1")]
    pub limit: u64,
}

/// One replicated transaction action.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Command {
    #[prost(oneof = "command::Kind", tags = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11")]
    pub kind: Option<command::Kind>,
}

pub mod command {
    //! The cases of [`Command`](super::Command).
    #[derive(Clone, PartialEq, Eq, prost::Oneof)]
    pub enum Kind {
        #[prost(message, tag = "1")]
        Prewrite(super::Prewrite),
        #[prost(message, tag = "2")]
        Commit(super::Commit),
        #[prost(message, tag = "3")]
        Rollback(super::Rollback),
        #[prost(message, tag = "4")]
        CheckTxnStatus(super::CheckTxnStatus),
        #[prost(message, tag = "5")]
        ResolveLock(super::ResolveLock),
        #[prost(message, tag = "6")]
        AcquirePessimisticLock(super::AcquirePessimisticLock),
        #[prost(message, tag = "7")]
        PessimisticRollback(super::PessimisticRollback),
        #[prost(message, tag = "8")]
        Gc(super::Gc),
        #[prost(message, tag = "9")]
        TsoLimit(super::TsoLimit),
        #[prost(message, tag = "10")]
        DestroyRange(super::DestroyRange),
        #[prost(message, tag = "11")]
        TxnHeartBeat(super::TxnHeartBeat),
    }
}

macro_rules! into_command {
    ($($t:ident),*) => {$(
        impl From<$t> for Command {
            fn from(c: $t) -> Command {
                Command { kind: Some(command::Kind::$t(c)) }
            }
        }
    )*};
}
into_command!(
    TsoLimit,
    Gc,
    DestroyRange,
    Prewrite,
    Commit,
    Rollback,
    CheckTxnStatus,
    ResolveLock,
    AcquirePessimisticLock,
    PessimisticRollback,
    TxnHeartBeat
);

impl Command {
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Command> {
        Command::decode(bytes).map_err(|e| Error::Corruption {
            what: "transaction command",
            detail: e.to_string(),
        })
    }
}

/// Whether `key` lies in `[start, end)`; an empty `end` means no bound.
pub fn in_range(key: &[u8], start: &[u8], end: &[u8]) -> bool {
    key >= start && (end.is_empty() || key < end)
}

fn retain(keys: &[Vec<u8>], start: &[u8], end: &[u8]) -> Vec<Vec<u8>> {
    keys.iter()
        .filter(|k| in_range(k, start, end))
        .cloned()
        .collect()
}

impl Command {
    /// The part of this command that concerns the user keys in
    /// `[start, end)` (an empty `end` means no bound), or `None` if none
    /// does. A region executes only its part: this is how a command that
    /// spans regions is split for routing. A `TsoLimit` belongs to the
    /// region that starts at the empty key.
    pub fn restrict(&self, start: &[u8], end: &[u8]) -> Option<Command> {
        use command::Kind;
        let kind = match self.kind.as_ref()? {
            Kind::Prewrite(c) => {
                let mut part = Prewrite {
                    mutations: Vec::new(),
                    pessimistic: Vec::new(),
                    ..c.clone()
                };
                for (i, m) in c.mutations.iter().enumerate() {
                    if in_range(&m.key, start, end) {
                        part.mutations.push(m.clone());
                        if let Some(p) = c.pessimistic.get(i) {
                            part.pessimistic.push(*p);
                        }
                    }
                }
                // One region commits a transaction alone only if it holds
                // all of it.
                part.try_one_pc &= part.mutations.len() == c.mutations.len();
                (!part.mutations.is_empty()).then_some(Kind::Prewrite(part))?
            }
            Kind::Commit(c) => {
                let keys = retain(&c.keys, start, end);
                (!keys.is_empty()).then_some(Kind::Commit(Commit { keys, ..c.clone() }))?
            }
            Kind::Rollback(c) => {
                let keys = retain(&c.keys, start, end);
                (!keys.is_empty()).then_some(Kind::Rollback(Rollback { keys, ..c.clone() }))?
            }
            Kind::ResolveLock(c) => {
                let keys = retain(&c.keys, start, end);
                (!keys.is_empty())
                    .then_some(Kind::ResolveLock(ResolveLock { keys, ..c.clone() }))?
            }
            Kind::AcquirePessimisticLock(c) => {
                let keys = retain(&c.keys, start, end);
                (!keys.is_empty()).then_some(Kind::AcquirePessimisticLock(
                    AcquirePessimisticLock { keys, ..c.clone() },
                ))?
            }
            Kind::PessimisticRollback(c) => {
                let keys = retain(&c.keys, start, end);
                (!keys.is_empty()).then_some(Kind::PessimisticRollback(PessimisticRollback {
                    keys,
                    ..c.clone()
                }))?
            }
            Kind::CheckTxnStatus(c) => {
                in_range(&c.primary, start, end).then_some(Kind::CheckTxnStatus(c.clone()))?
            }
            Kind::TxnHeartBeat(c) => {
                in_range(&c.primary, start, end).then_some(Kind::TxnHeartBeat(c.clone()))?
            }
            Kind::TsoLimit(c) => start.is_empty().then_some(Kind::TsoLimit(c.clone()))?,
            Kind::Gc(c) => {
                let (start, end) = overlap(&c.start, &c.end, start, end)?;
                Kind::Gc(Gc {
                    safe_point: c.safe_point,
                    start,
                    end,
                })
            }
            Kind::DestroyRange(c) if c.end.is_empty() => return None,
            Kind::DestroyRange(c) => {
                let (start, end) = overlap(&c.start, &c.end, start, end)?;
                Kind::DestroyRange(DestroyRange { start, end })
            }
        };
        Some(Command { kind: Some(kind) })
    }

    /// How long a leader may park this command on a lock that blocks it
    /// (see [`AcquirePessimisticLock::wait_ms`]); `None` for a command that
    /// answers a lock at once.
    pub fn lock_wait(&self) -> Option<std::time::Duration> {
        match &self.kind {
            Some(command::Kind::AcquirePessimisticLock(c)) if c.wait_ms > 0 => {
                Some(std::time::Duration::from_millis(c.wait_ms))
            }
            _ => None,
        }
    }

    /// Whether a lock that blocks this command is a result no replica
    /// needs to hear of: taking pessimistic locks writes nothing when it
    /// fails, so the leader answers such a failure without logging it.
    pub fn answers_locks_unlogged(&self) -> bool {
        matches!(self.kind, Some(command::Kind::AcquirePessimisticLock(_)))
    }

    /// Whether everything this command touches lies in `[start, end)`.
    pub fn within(&self, start: &[u8], end: &[u8]) -> bool {
        self.restrict(start, end).as_ref() == Some(self)
    }

    /// The smallest range `[start, end)` (an empty `end` means no bound)
    /// that holds everything this command touches: where routing looks
    /// for its regions.
    pub fn span(&self) -> (Vec<u8>, Vec<u8>) {
        use command::Kind;
        match &self.kind {
            Some(Kind::Gc(c)) => (c.start.clone(), c.end.clone()),
            Some(Kind::DestroyRange(c)) => (c.start.clone(), c.end.clone()),
            // The oracle's limit belongs to the region at the empty key.
            Some(Kind::TsoLimit(_)) | None => (Vec::new(), vec![0]),
            Some(_) => key_span(self.latch_keys()),
        }
    }
}

/// The smallest range holding `keys` (`[key, key\0)` for one key).
pub fn key_span<'a>(keys: impl IntoIterator<Item = &'a [u8]>) -> (Vec<u8>, Vec<u8>) {
    let mut keys = keys.into_iter();
    let Some(first) = keys.next() else {
        return (Vec::new(), vec![0]);
    };
    let (mut lo, mut hi) = (first, first);
    for k in keys {
        lo = lo.min(k);
        hi = hi.max(k);
    }
    let mut end = hi.to_vec();
    end.push(0);
    (lo.to_vec(), end)
}

/// The overlap of `[a_start, a_end)` and `[b_start, b_end)` (an empty end
/// means no bound), if there is one.
pub(crate) fn overlap(
    a_start: &[u8],
    a_end: &[u8],
    b_start: &[u8],
    b_end: &[u8],
) -> Option<(Vec<u8>, Vec<u8>)> {
    let from = a_start.max(b_start).to_vec();
    let to = match (a_end.is_empty(), b_end.is_empty()) {
        (true, _) => b_end.to_vec(),
        (false, true) => a_end.to_vec(),
        (false, false) => a_end.min(b_end).to_vec(),
    };
    (to.is_empty() || from < to).then_some((from, to))
}

/// What an applied command reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Done,
    TxnStatus(TxnStatus),
    /// A prewrite that committed in one phase, at `commit_ts`.
    Committed {
        commit_ts: u64,
    },
}

/// Applies `cmd` to `snap`: the writes to make and the response. Errors such
/// as `WriteConflict` or `KeyIsLocked` are results of the command, identical
/// on every replica; they come with no writes.
pub fn apply<S: Snapshot>(snap: &S, cmd: &Command) -> Result<(WriteBatch, Response)> {
    use command::Kind;
    let kind = cmd.kind.as_ref().ok_or_else(|| Error::Corruption {
        what: "transaction command",
        detail: "empty".into(),
    })?;
    let done = |batch: WriteBatch| (batch, Response::Done);
    match kind {
        Kind::Prewrite(c) => prewrite::apply(snap, c).map(done),
        Kind::Commit(c) => commit::apply(snap, c).map(done),
        Kind::Rollback(c) => rollback::apply(snap, c).map(done),
        Kind::CheckTxnStatus(c) => check_txn_status::apply(snap, c)
            .map(|(batch, status)| (batch, Response::TxnStatus(status))),
        Kind::ResolveLock(c) => resolve_lock::apply(snap, c).map(done),
        Kind::AcquirePessimisticLock(c) => pessimistic::acquire(snap, c).map(done),
        Kind::PessimisticRollback(c) => pessimistic::rollback(snap, c).map(done),
        Kind::TxnHeartBeat(c) => pessimistic::heart_beat(snap, c).map(done),
        Kind::TsoLimit(c) => {
            let mut batch = WriteBatch::new();
            let key = crate::tso::LIMIT_KEY.to_vec();
            batch.put(crate::engine::Cf::Raft, key, c.limit.to_be_bytes().to_vec());
            Ok(done(batch))
        }
        Kind::Gc(c) => {
            let end = (!c.end.is_empty()).then_some(c.end.as_slice());
            crate::gc::gc(snap, c.safe_point, &c.start, end).map(done)
        }
        Kind::DestroyRange(c) => {
            let mut batch = WriteBatch::new();
            if c.start < c.end {
                let (start, end) = (
                    crate::mvcc::encode_key(&c.start),
                    crate::mvcc::encode_key(&c.end),
                );
                use crate::engine::Cf;
                for cf in [Cf::Default, Cf::Lock, Cf::Write] {
                    batch.delete_range(cf, start.clone(), end.clone());
                }
            }
            Ok(done(batch))
        }
    }
}
