//! A command's effects, the form in which the Raft log carries it. The
//! region's leader runs a command once, against its own engine, and
//! replicates what the command did: the writes it made and the answer it
//! gave, errors included. Followers and the columnar learner apply those
//! bytes and never run the transaction logic again, so a replica needs no row
//! data to know what a command did, and every replica answers a watcher with
//! the leader's answer.
//!
//! The leader must run a command on a state that holds every entry before
//! it in the log that touches the same keys: see [`Command::latch_keys`] and
//! the raft crate's proposal latches.

use prost::Message;

use super::{Command, Response, TxnStatus, command};
use crate::engine::{Cf, Modify, Snapshot, WriteBatch};
use crate::error::{Error, Result};
use crate::mvcc::{LockInfo, LockKind};

/// What one command did, ready for the log.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Effects {
    #[prost(message, repeated, tag = "1")]
    pub writes: Vec<Write>,
    #[prost(message, optional, tag = "2")]
    pub outcome: Option<Outcome>,
}

/// One [`Modify`] in the log: `end` is set only for a range delete.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Write {
    #[prost(enumeration = "WriteOp", tag = "1")]
    pub op: i32,
    #[prost(uint32, tag = "2")]
    pub cf: u32,
    #[prost(bytes = "vec", tag = "3")]
    pub key: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    pub value: Vec<u8>,
    #[prost(bytes = "vec", tag = "5")]
    pub end: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum WriteOp {
    Put = 0,
    Delete = 1,
    DeleteRange = 2,
}

/// The answer: `Done` when both fields are empty.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Outcome {
    #[prost(message, optional, tag = "1")]
    pub status: Option<Status>,
    #[prost(message, optional, tag = "2")]
    pub error: Option<Failure>,
    /// Non-zero: a one-phase commit at this timestamp.
    #[prost(uint64, tag = "3")]
    pub committed: u64,
}

/// A [`TxnStatus`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Status {
    #[prost(enumeration = "StatusKind", tag = "1")]
    pub kind: i32,
    #[prost(uint64, tag = "2")]
    pub ttl: u64,
    #[prost(uint64, tag = "3")]
    pub min_commit_ts: u64,
    #[prost(uint64, tag = "4")]
    pub commit_ts: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum StatusKind {
    Locked = 0,
    Committed = 1,
    RolledBack = 2,
    TtlExpired = 3,
    LockNotExistRolledBack = 4,
    NotFound = 5,
}

/// A command's own failure (a conflict, a lock, a missing lock …): one of
/// the [`Error`] variants that are results of the transaction logic.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Failure {
    #[prost(enumeration = "FailureKind", tag = "1")]
    pub kind: i32,
    #[prost(uint64, tag = "2")]
    pub start_ts: u64,
    #[prost(uint64, tag = "3")]
    pub commit_ts: u64,
    #[prost(uint64, tag = "4")]
    pub min_commit_ts: u64,
    #[prost(uint64, tag = "5")]
    pub conflict_start_ts: u64,
    #[prost(uint64, tag = "6")]
    pub ttl: u64,
    #[prost(bytes = "vec", tag = "7")]
    pub key: Vec<u8>,
    #[prost(bytes = "vec", tag = "8")]
    pub primary: Vec<u8>,
    #[prost(enumeration = "LockKind", tag = "9")]
    pub lock_kind: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum FailureKind {
    KeyIsLocked = 0,
    WriteConflict = 1,
    TxnLockNotFound = 2,
    RolledBack = 3,
    AlreadyCommitted = 4,
    CommitTsExpired = 5,
    InvalidTimestamp = 6,
    AlreadyExist = 7,
    GcBlocked = 8,
}

impl Effects {
    /// Runs `cmd` against `snap`. `Err` only for a failure of this replica
    /// (the engine, a record that does not decode): such an error is
    /// answered where it happened and replicates nothing. A failure of the
    /// command itself is part of its effects, with no writes.
    pub fn compute<S: Snapshot>(snap: &S, cmd: &Command) -> Result<Effects> {
        let (writes, result) = match super::apply(snap, cmd) {
            Ok((batch, response)) => (batch.modifies, Ok(response)),
            Err(e) => (Vec::new(), Err(e)),
        };
        Ok(Effects {
            writes: writes.into_iter().map(Write::from).collect(),
            outcome: Outcome::from_result(result)?,
        })
    }

    /// Runs prewrite `cmd` that asks for it (`try_one_pc`; any other
    /// command runs as [`compute`](Self::compute) does) as a one-phase
    /// commit at `commit_ts`: commit
    /// records instead of locks, answered [`Response::Committed`]. A
    /// prewrite that finds any of its keys already prewritten or committed
    /// by its own transaction (a retry) is run as a plain prewrite, since
    /// part of it may already wait for a second phase.
    pub fn compute_one_pc<S: Snapshot>(snap: &S, cmd: &Command, commit_ts: u64) -> Result<Effects> {
        let c = match cmd.kind.as_ref() {
            Some(command::Kind::Prewrite(c)) if c.try_one_pc => c,
            _ => return Effects::compute(snap, cmd),
        };
        let (writes, result) = match super::prewrite::one_pc(snap, c, commit_ts) {
            Ok(Some(batch)) => (batch.modifies, Ok(Response::Committed { commit_ts })),
            Ok(None) => return Effects::compute(snap, cmd),
            Err(e) => (Vec::new(), Err(e)),
        };
        Ok(Effects {
            writes: writes.into_iter().map(Write::from).collect(),
            outcome: Outcome::from_result(result)?,
        })
    }

    /// The key of the other transaction's lock that failed the command,
    /// if that is how it failed.
    pub fn blocked_on(&self) -> Option<&[u8]> {
        let failure = self.outcome.as_ref()?.error.as_ref()?;
        (failure.kind() == FailureKind::KeyIsLocked).then_some(failure.key.as_slice())
    }

    /// The command's answer, as a replica applying these effects gives it.
    pub fn result(&self) -> Result<Response> {
        Outcome::into_result(self.outcome.clone())?
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Effects> {
        Effects::decode(bytes).map_err(|e| corrupt(e.to_string()))
    }

    /// The writes to make and the answer to give.
    pub fn into_parts(self) -> Result<(WriteBatch, Result<Response>)> {
        let modifies = self
            .writes
            .into_iter()
            .map(Modify::try_from)
            .collect::<Result<Vec<_>>>()?;
        let response = Outcome::into_result(self.outcome)?;
        Ok((WriteBatch { modifies }, response))
    }
}

impl Outcome {
    /// A command's result as it crosses the network (`None` for `Done`).
    /// An error that is not the command's own (the engine's, a timeout) has
    /// no encoding here and is handed back.
    pub fn from_result(result: Result<Response>) -> Result<Option<Outcome>> {
        match result {
            Ok(Response::Done) => Ok(None),
            Ok(Response::TxnStatus(s)) => Ok(Some(Outcome {
                status: Some(Status::from(s)),
                ..Outcome::default()
            })),
            Ok(Response::Committed { commit_ts }) => Ok(Some(Outcome {
                committed: commit_ts,
                ..Outcome::default()
            })),
            Err(e) => match Failure::from_error(&e) {
                Some(f) => Ok(Some(Outcome {
                    error: Some(f),
                    ..Outcome::default()
                })),
                None => Err(e),
            },
        }
    }

    /// The result `outcome` encodes; the outer `Err` if it does not decode.
    pub fn into_result(outcome: Option<Outcome>) -> Result<Result<Response>> {
        Ok(match outcome {
            None => Ok(Response::Done),
            Some(Outcome { error: Some(f), .. }) => Err(f.into_error()?),
            Some(Outcome {
                status: Some(s), ..
            }) => Ok(Response::TxnStatus(s.into_status()?)),
            Some(Outcome { committed, .. }) if committed > 0 => Ok(Response::Committed {
                commit_ts: committed,
            }),
            Some(Outcome { .. }) => Ok(Response::Done),
        })
    }
}

fn corrupt(detail: String) -> Error {
    Error::Corruption {
        what: "command effects",
        detail,
    }
}

fn cf_of(code: u32) -> Result<Cf> {
    Cf::from_code(code).ok_or_else(|| corrupt(format!("column family {code}")))
}

impl From<Modify> for Write {
    fn from(m: Modify) -> Write {
        match m {
            Modify::Put { cf, key, value } => Write {
                op: WriteOp::Put as i32,
                cf: cf.code(),
                key,
                value,
                end: Vec::new(),
            },
            Modify::Delete { cf, key } => Write {
                op: WriteOp::Delete as i32,
                cf: cf.code(),
                key,
                value: Vec::new(),
                end: Vec::new(),
            },
            Modify::DeleteRange { cf, start, end } => Write {
                op: WriteOp::DeleteRange as i32,
                cf: cf.code(),
                key: start,
                value: Vec::new(),
                end,
            },
        }
    }
}

impl TryFrom<Write> for Modify {
    type Error = Error;

    fn try_from(w: Write) -> Result<Modify> {
        let cf = cf_of(w.cf)?;
        Ok(
            match WriteOp::try_from(w.op).map_err(|e| corrupt(e.to_string()))? {
                WriteOp::Put => Modify::Put {
                    cf,
                    key: w.key,
                    value: w.value,
                },
                WriteOp::Delete => Modify::Delete { cf, key: w.key },
                WriteOp::DeleteRange => Modify::DeleteRange {
                    cf,
                    start: w.key,
                    end: w.end,
                },
            },
        )
    }
}

impl From<TxnStatus> for Status {
    fn from(s: TxnStatus) -> Status {
        let mut out = Status::default();
        let kind = match s {
            TxnStatus::Locked { ttl, min_commit_ts } => {
                out.ttl = ttl;
                out.min_commit_ts = min_commit_ts;
                StatusKind::Locked
            }
            TxnStatus::Committed { commit_ts } => {
                out.commit_ts = commit_ts;
                StatusKind::Committed
            }
            TxnStatus::RolledBack => StatusKind::RolledBack,
            TxnStatus::TtlExpired => StatusKind::TtlExpired,
            TxnStatus::LockNotExistRolledBack => StatusKind::LockNotExistRolledBack,
            TxnStatus::NotFound => StatusKind::NotFound,
        };
        out.kind = kind as i32;
        out
    }
}

impl Status {
    pub(super) fn into_status(self) -> Result<TxnStatus> {
        Ok(
            match StatusKind::try_from(self.kind).map_err(|e| corrupt(e.to_string()))? {
                StatusKind::Locked => TxnStatus::Locked {
                    ttl: self.ttl,
                    min_commit_ts: self.min_commit_ts,
                },
                StatusKind::Committed => TxnStatus::Committed {
                    commit_ts: self.commit_ts,
                },
                StatusKind::RolledBack => TxnStatus::RolledBack,
                StatusKind::TtlExpired => TxnStatus::TtlExpired,
                StatusKind::LockNotExistRolledBack => TxnStatus::LockNotExistRolledBack,
                StatusKind::NotFound => TxnStatus::NotFound,
            },
        )
    }
}

impl Failure {
    /// The encoding of `e`, if it is a result of the command's logic.
    pub fn from_error(e: &Error) -> Option<Failure> {
        let mut f = Failure::default();
        let kind = match e {
            Error::KeyIsLocked(lock) => {
                f.key = lock.key.clone();
                f.primary = lock.primary.clone();
                f.start_ts = lock.start_ts;
                f.ttl = lock.ttl;
                f.lock_kind = lock.kind as i32;
                f.min_commit_ts = lock.min_commit_ts;
                FailureKind::KeyIsLocked
            }
            Error::WriteConflict {
                start_ts,
                conflict_start_ts,
                conflict_commit_ts,
                key,
                primary,
            } => {
                f.start_ts = *start_ts;
                f.conflict_start_ts = *conflict_start_ts;
                f.commit_ts = *conflict_commit_ts;
                f.key = key.clone();
                f.primary = primary.clone();
                FailureKind::WriteConflict
            }
            Error::TxnLockNotFound { start_ts, key } => {
                f.start_ts = *start_ts;
                f.key = key.clone();
                FailureKind::TxnLockNotFound
            }
            Error::RolledBack { start_ts } => {
                f.start_ts = *start_ts;
                FailureKind::RolledBack
            }
            Error::AlreadyCommitted {
                start_ts,
                commit_ts,
            } => {
                f.start_ts = *start_ts;
                f.commit_ts = *commit_ts;
                FailureKind::AlreadyCommitted
            }
            Error::CommitTsExpired {
                start_ts,
                commit_ts,
                min_commit_ts,
            } => {
                f.start_ts = *start_ts;
                f.commit_ts = *commit_ts;
                f.min_commit_ts = *min_commit_ts;
                FailureKind::CommitTsExpired
            }
            Error::InvalidTimestamp {
                start_ts,
                commit_ts,
            } => {
                f.start_ts = *start_ts;
                f.commit_ts = *commit_ts;
                FailureKind::InvalidTimestamp
            }
            Error::AlreadyExist { key } => {
                f.key = key.clone();
                FailureKind::AlreadyExist
            }
            Error::GcBlocked {
                lock_ts,
                safe_point,
            } => {
                f.start_ts = *lock_ts;
                f.commit_ts = *safe_point;
                FailureKind::GcBlocked
            }
            Error::Engine(_)
            | Error::Codec(_)
            | Error::Corruption { .. }
            | Error::Unavailable(_)
            | Error::Tso(_)
            // A store's refusal: it crosses nodes as a region error.
            | Error::DiskFull { .. }
            // Found by the client, never by a command.
            | Error::WatchedKeyChanged { .. }
            | Error::Deadlock { .. } => return None,
        };
        f.kind = kind as i32;
        Some(f)
    }

    /// The error this failure encodes; `Err` if it does not decode.
    pub fn into_error(self) -> Result<Error> {
        let kind = FailureKind::try_from(self.kind).map_err(|e| corrupt(e.to_string()))?;
        Ok(match kind {
            FailureKind::KeyIsLocked => Error::KeyIsLocked(Box::new(LockInfo {
                key: self.key,
                primary: self.primary,
                start_ts: self.start_ts,
                ttl: self.ttl,
                kind: LockKind::try_from(self.lock_kind).map_err(|e| corrupt(e.to_string()))?,
                min_commit_ts: self.min_commit_ts,
            })),
            FailureKind::WriteConflict => Error::WriteConflict {
                start_ts: self.start_ts,
                conflict_start_ts: self.conflict_start_ts,
                conflict_commit_ts: self.commit_ts,
                key: self.key,
                primary: self.primary,
            },
            FailureKind::TxnLockNotFound => Error::TxnLockNotFound {
                start_ts: self.start_ts,
                key: self.key,
            },
            FailureKind::RolledBack => Error::RolledBack {
                start_ts: self.start_ts,
            },
            FailureKind::AlreadyCommitted => Error::AlreadyCommitted {
                start_ts: self.start_ts,
                commit_ts: self.commit_ts,
            },
            FailureKind::CommitTsExpired => Error::CommitTsExpired {
                start_ts: self.start_ts,
                commit_ts: self.commit_ts,
                min_commit_ts: self.min_commit_ts,
            },
            FailureKind::InvalidTimestamp => Error::InvalidTimestamp {
                start_ts: self.start_ts,
                commit_ts: self.commit_ts,
            },
            FailureKind::AlreadyExist => Error::AlreadyExist { key: self.key },
            FailureKind::GcBlocked => Error::GcBlocked {
                lock_ts: self.start_ts,
                safe_point: self.commit_ts,
            },
        })
    }
}

impl Command {
    /// Whether the command brings new data (a prewrite's values, a
    /// pessimistic lock) rather than settling or freeing what is stored:
    /// what a store short of disk space refuses.
    pub fn adds_data(&self) -> bool {
        matches!(
            self.kind,
            Some(command::Kind::Prewrite(_) | command::Kind::AcquirePessimisticLock(_))
        )
    }

    /// The user keys this command reads or writes. The leader runs a
    /// command only once no entry still unapplied touches any of them, and
    /// holds them until its own entry applies.
    pub fn latch_keys(&self) -> Vec<&[u8]> {
        use command::Kind;
        fn keys(ks: &[Vec<u8>]) -> Vec<&[u8]> {
            ks.iter().map(Vec::as_slice).collect()
        }
        match &self.kind {
            Some(Kind::Prewrite(c)) => c.mutations.iter().map(|m| m.key.as_slice()).collect(),
            Some(Kind::Commit(c)) => keys(&c.keys),
            Some(Kind::Rollback(c)) => keys(&c.keys),
            Some(Kind::ResolveLock(c)) => keys(&c.keys),
            Some(Kind::AcquirePessimisticLock(c)) => keys(&c.keys),
            Some(Kind::PessimisticRollback(c)) => keys(&c.keys),
            Some(Kind::CheckTxnStatus(c)) => vec![c.primary.as_slice()],
            Some(Kind::TxnHeartBeat(c)) => vec![c.primary.as_slice()],
            Some(Kind::Gc(_) | Kind::DestroyRange(_) | Kind::TsoLimit(_)) | None => Vec::new(),
        }
    }

    /// Whether this command concerns a range rather than named keys (GC,
    /// destroying a range): the leader runs it only once every earlier entry
    /// has applied.
    pub fn is_barrier(&self) -> bool {
        matches!(
            self.kind,
            Some(command::Kind::Gc(_) | command::Kind::DestroyRange(_))
        )
    }
}
