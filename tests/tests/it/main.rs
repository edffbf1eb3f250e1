//! Duet's integration tests, in one binary so the whole dependency set links once.

mod bank;
mod bench_ch;
mod cluster;
mod cluster_txn;
mod columnar;
mod crash;
mod fuzz;
mod grammar;
mod lifecycle;
mod limits;
mod protocol;
mod raft_store;
mod raw;
mod slt;
mod sql;
