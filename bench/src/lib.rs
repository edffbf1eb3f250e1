//! Duet's benchmark harness, run as `duet bench` by the `duet` binary
//! (`cmd/duet`). `duet bench ch` is CH-benCHmark ([`ch`]): the
//! TPC-C transactions and the 22 analytical queries at once, against an
//! embedded Duet or any MySQL-protocol server, with latency histograms,
//! freshness, interference, consistency checks, a JSON report and plots.

pub mod ch;
pub mod error;

pub use error::{Error, Result};
