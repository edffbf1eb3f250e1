//! Auto-increment values and hidden row ids. Each node reserves a batch of
//! ids per table in a small transaction of its own (so inserts never
//! conflict on a counter) and hands them out from memory: ids increase on a
//! node and never repeat in the cluster, but a batch left unused when a node
//! restarts leaves a gap — as in TiDB. An explicit value above the counter
//! moves it, as MySQL does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::kv::Kv;

/// Ids reserved per round trip.
const BATCH: i64 = 1000;
/// Attempts of the reservation transaction under contention.
const ATTEMPTS: usize = 20;

/// The counter's key. (`m\x03` is the statistics' prefix: counters kept
/// there by earlier versions were overwritten by `ANALYZE TABLE`, so they are
/// read from there only when still intact.)
fn counter_key(table_id: i64) -> Vec<u8> {
    let mut k = b"m\x04".to_vec();
    k.extend_from_slice(&table_id.to_be_bytes());
    k
}

fn legacy_counter_key(table_id: i64) -> Vec<u8> {
    let mut k = b"m\x03".to_vec();
    k.extend_from_slice(&table_id.to_be_bytes());
    k
}

fn parse_counter(bytes: &[u8]) -> Option<i64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// `[next, end)`: the ids this node may still hand out for a table.
#[derive(Clone, Copy)]
struct Range {
    next: i64,
    end: i64,
}

pub(crate) struct AutoIds {
    kv: Arc<dyn Kv>,
    ranges: Mutex<HashMap<i64, Range>>,
}

impl AutoIds {
    pub(crate) fn new(kv: Arc<dyn Kv>) -> Self {
        AutoIds {
            kv,
            ranges: Mutex::new(HashMap::new()),
        }
    }

    /// The next id of `table_id`.
    pub(crate) fn next(&self, table_id: i64) -> Result<i64> {
        let mut ranges = self.ranges.lock().unwrap_or_else(|e| e.into_inner());
        let range = match ranges.get(&table_id) {
            Some(r) if r.next < r.end => *r,
            _ => self.reserve(table_id, 0)?,
        };
        ranges.insert(
            table_id,
            Range {
                next: range.next + 1,
                end: range.end,
            },
        );
        Ok(range.next)
    }

    /// Records that `used` was inserted explicitly: later ids exceed it.
    pub(crate) fn rebase(&self, table_id: i64, used: i64) -> Result<()> {
        let mut ranges = self.ranges.lock().unwrap_or_else(|e| e.into_inner());
        match ranges.get_mut(&table_id) {
            Some(r) if used < r.next => return Ok(()),
            Some(r) if used < r.end - 1 => {
                r.next = used + 1;
                return Ok(());
            }
            _ => {}
        }
        let range = self.reserve(table_id, used)?;
        ranges.insert(table_id, range);
        Ok(())
    }

    /// Reserves a batch above both the stored counter and `floor`.
    fn reserve(&self, table_id: i64, floor: i64) -> Result<Range> {
        let key = counter_key(table_id);
        let mut last_error = None;
        for _ in 0..ATTEMPTS {
            let mut txn = self.kv.begin().map_err(Error::from_storage)?;
            let stored: i64 = match txn.get(&key).map_err(Error::from_storage)? {
                Some(b) => parse_counter(&b)
                    .ok_or_else(|| Error::Internal("corrupted auto-increment counter".into()))?,
                None => txn
                    .get(&legacy_counter_key(table_id))
                    .map_err(Error::from_storage)?
                    .and_then(|b| parse_counter(&b))
                    .unwrap_or(0),
            };
            let start = stored.max(floor);
            let end = start.saturating_add(BATCH);
            txn.put(key.clone(), end.to_string().into_bytes());
            match txn.commit() {
                Ok(_) => {
                    return Ok(Range {
                        next: start + 1,
                        end: end + 1,
                    });
                }
                Err(e) if e.is_retryable() => last_error = Some(e),
                Err(e) => return Err(Error::from_storage(e)),
            }
        }
        Err(last_error.map_or(Error::Deadlock, Error::from_storage))
    }
}
