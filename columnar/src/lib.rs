//! Duet's columnar replica (planned): a Raft learner that applies the
//! committed log into Arrow delta and stable segments and serves
//! MVCC-consistent scans to DataFusion. Nothing is implemented yet; see the
//! columnar issue.
