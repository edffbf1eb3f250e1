//! Duet's columnar replica: a learner of every region that applies the same
//! committed log as the row store and keeps each table as Arrow columns, so
//! analytical scans read exactly what a transaction at the same timestamp
//! would, without touching the row store.
//!
//! - [`schema`]: what the replica knows of a table ([`TableCodec`]) and
//!   where it learns it ([`SchemaSource`], implemented by the SQL layer);
//! - [`replica`]: the learner state machine: applies the log's effects,
//!   checkpoints and replays, rebuilds and back-fills, scans, compaction;
//! - [`learner`]: the replica's side of the node's learner peers: their
//!   applied entries in, read indexes out;
//! - [`table`]: one table's delta and stable layers and the MVCC scan over
//!   them;
//! - `segment`: stable chunks as Arrow IPC files, memory-mapped.

mod error;
pub mod learner;
pub mod replica;
pub mod schema;
mod segment;
pub mod table;
#[cfg(test)]
mod tests;

pub use error::{Error, Result};
pub use learner::{Learner, LearnerReads};
pub use replica::{ReadPoint, Replica, TableStatus};
pub use schema::{SchemaChange, SchemaSource, TableCodec};
pub use table::{LayerConfig, ScanOutput, ScanPart, ScanRequest};
