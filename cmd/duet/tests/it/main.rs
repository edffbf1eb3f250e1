//! Duet's integration tests, in one binary so the whole dependency set links once.

mod bank;
mod bench_ch;
mod chaos;
mod cluster;
mod cluster_txn;
mod columnar;
mod crash;
mod disk;
mod fuzz;
mod grammar;
mod lifecycle;
mod limits;
mod one_pc;
mod pessimistic;
mod placement;
mod protocol;
mod raft_store;
mod raw;
mod rolling;
mod slt;
mod split;
mod sql;

/// The `duet` binary cargo built for these tests, or `$DUET_BIN`.
pub(crate) fn duet_binary() -> std::path::PathBuf {
    std::env::var_os("DUET_BIN").map_or_else(|| env!("CARGO_BIN_EXE_duet").into(), Into::into)
}
