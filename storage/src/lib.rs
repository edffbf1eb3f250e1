//! Duet's row store (planned): the KV engine traits with RocksDB and
//! in-memory engines, the memcomparable key and row codecs, and Percolator
//! MVCC transactions as pure functions from a snapshot to a write batch. It
//! knows nothing of SQL or Raft. Nothing is implemented yet; see the row-store
//! issue.
