//! Collects the changes of one transaction action into a write batch.

use crate::engine::{Cf, WriteBatch};
use crate::mvcc::key::{append_ts, encode_key};
use crate::mvcc::record::{Lock, Write};

/// The changes an action makes, in the order it makes them.
#[derive(Debug, Default)]
pub struct MvccTxn {
    pub batch: WriteBatch,
}

impl MvccTxn {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn put_lock(&mut self, key: &[u8], lock: &Lock) {
        self.batch.put(Cf::Lock, encode_key(key), lock.to_bytes());
    }

    pub fn unlock(&mut self, key: &[u8]) {
        self.batch.delete(Cf::Lock, encode_key(key));
    }

    pub fn put_write(&mut self, key: &[u8], commit_ts: u64, write: &Write) {
        self.batch.put(
            Cf::Write,
            append_ts(&encode_key(key), commit_ts),
            write.to_bytes(),
        );
    }

    pub fn delete_write(&mut self, key: &[u8], commit_ts: u64) {
        self.batch
            .delete(Cf::Write, append_ts(&encode_key(key), commit_ts));
    }

    pub fn put_value(&mut self, key: &[u8], start_ts: u64, value: &[u8]) {
        self.batch.put(
            Cf::Default,
            append_ts(&encode_key(key), start_ts),
            value.to_vec(),
        );
    }

    pub fn delete_value(&mut self, key: &[u8], start_ts: u64) {
        self.batch
            .delete(Cf::Default, append_ts(&encode_key(key), start_ts));
    }

    pub fn into_batch(self) -> WriteBatch {
        self.batch
    }
}
