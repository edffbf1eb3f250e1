//! Percolator-style multi-version concurrency control over three column
//! families (as TiKV lays them out):
//!
//! - `lock`: `encode_bytes(key)` → [`Lock`] — the in-flight transaction that
//!   holds the key, with its primary key, start timestamp, TTL and kind;
//! - `write`: `encode_bytes(key) + !commit_ts` → [`Write`] — one record per
//!   commit or rollback, pointing at the version's start timestamp; short
//!   values live inline;
//! - `default`: `encode_bytes(key) + !start_ts` → the value, for values too
//!   long to inline.
//!
//! Timestamps are appended bit-inverted so the newest version of a key sorts
//! first. Readers see the newest committed version at or below their read
//! timestamp and report, never skip, a lock at or below it.

mod key;
mod reader;
mod record;
mod txn;

pub use key::{append_ts, decode_key, encode_key, split_ts};
pub use reader::{MvccReader, TxnCommitRecord};
pub use record::{Lock, LockInfo, LockKind, SHORT_VALUE_MAX_LEN, Write, WriteKind};
pub use txn::MvccTxn;

/// Physical milliseconds occupy the high bits of a timestamp; 18 low bits
/// count within a millisecond.
pub const TS_LOGICAL_BITS: u32 = 18;

/// The wall-clock milliseconds of a timestamp.
pub fn physical_ms(ts: u64) -> u64 {
    ts >> TS_LOGICAL_BITS
}

/// A timestamp from milliseconds and a logical counter.
pub fn compose_ts(physical_ms: u64, logical: u64) -> u64 {
    (physical_ms << TS_LOGICAL_BITS) | (logical & ((1 << TS_LOGICAL_BITS) - 1))
}
