//! Duet's replication layer (planned): Multi-Raft regions on raft-rs, log
//! storage, transport, snapshots, ReadIndex, the learner API and the
//! timestamp oracle. Nothing is implemented yet; see the Raft issue.
