//! Duet's row store, the source of truth for transactions. It owns:
//!
//! - [`engine`]: the KV engine boundary (column families, snapshots, bounded
//!   iterators, atomic batches, the durability contract), with RocksDB and
//!   in-memory implementations;
//! - [`codec`]: the key layout and the memcomparable and row encodings;
//! - [`mvcc`]: Percolator's lock/write/default records and reads at a
//!   timestamp;
//! - [`txn`]: the transaction actions as a replicated command enum (pure
//!   functions: snapshot in, write batch out), the store that executes them,
//!   and the two-phase-commit client;
//! - [`tso`]: the timestamp oracle; [`gc`]: old-version collection.
//!
//! It knows nothing of SQL or Raft: the `raft` crate replicates
//! [`txn::commands::Command`]s and applies them with [`txn::commands::apply`].

pub mod codec;
pub mod engine;
mod error;
pub mod gc;
pub mod mvcc;
pub mod tso;
pub mod txn;

pub use error::{Error, Result};
