//! Per-table statistics for the router's cost estimates: the row count,
//! each column's number of distinct values (NDV), and the smallest and
//! largest value of each integer column (for the rows a range holds).
//!
//! `ANALYZE TABLE` computes them exactly from a snapshot and stores them in
//! the KV store (under `m\x03` + table id, beside the catalog), so every
//! node and every restart sees them. Between analyses the instance keeps
//! them current in memory: each statement's inserted and deleted rows move
//! the row count, and the NDVs scale with it (capped by the row count). A
//! table never analyzed has no statistics; the router then uses rules
//! rather than costs. Tables change under their statistics, so the
//! instance analyzes again on its own ([`Stats::due`], run by the server's
//! auto-analyze loop): a table never analyzed once this node has written
//! [`AUTO_ANALYZE_ROWS`] of its rows, and an analyzed one once the rows
//! written since reach half of those it had (and that many).

use std::collections::HashMap;
use std::sync::Mutex;

use duet_storage::codec::{Datum, encode_key};
use serde::{Deserialize, Serialize};

use crate::catalog::TableInfo;
use crate::error::{Error, Result};
use crate::kv::KvTxn;
use crate::table;

const STATS_PREFIX: &[u8] = b"m\x03";

/// What the router knows of one table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TableStats {
    /// Estimated rows now.
    pub rows: u64,
    /// Rows when last analyzed, and distinct values per column id then.
    pub analyzed_rows: u64,
    pub ndv: HashMap<u32, u64>,
    /// Smallest and largest value per (signed) integer column id, when
    /// analyzed; statistics stored before they were kept have none.
    #[serde(default)]
    pub bounds: HashMap<u32, (i64, i64)>,
    /// Rows inserted or deleted since the analysis.
    pub modified: u64,
}

impl TableStats {
    /// Estimated distinct values of column `id` now.
    pub fn ndv(&self, id: u32) -> Option<u64> {
        let at_analysis = *self.ndv.get(&id)?;
        let scaled = if self.analyzed_rows == 0 {
            self.rows
        } else {
            (at_analysis as f64 * self.rows as f64 / self.analyzed_rows as f64).ceil() as u64
        };
        Some(scaled.clamp(1, self.rows.max(1)))
    }

    /// Estimated rows with column `id` equal to one value.
    pub fn rows_per_value(&self, id: u32) -> Option<f64> {
        Some(self.rows as f64 / self.ndv(id)? as f64)
    }

    /// Estimated rows with integer column `id` in `[lo, hi]`: the share of
    /// the analyzed `[min, max]` the range covers (values taken as evenly
    /// spread), plus every row changed since the analysis if the range
    /// reaches past those bounds (new keys usually land there). At least
    /// one row unless the range is empty.
    pub fn rows_in_range(&self, id: u32, lo: i128, hi: i128) -> Option<f64> {
        if lo > hi {
            return Some(0.0);
        }
        let &(min, max) = self.bounds.get(&id)?;
        let (min, max) = (i128::from(min), i128::from(max));
        let overlap = (hi.min(max) - lo.max(min) + 1).max(0) as f64;
        let share = overlap / (max - min + 1) as f64;
        let beyond = if lo < min || hi > max {
            self.modified as f64
        } else {
            0.0
        };
        Some((share * self.rows as f64 + beyond).clamp(1.0, self.rows.max(1) as f64))
    }
}

/// Rows a node writes to a table (inserted or deleted) before it analyzes
/// the table on its own.
pub(crate) const AUTO_ANALYZE_ROWS: u64 = 1000;

/// Distinct values a column's sketch counts exactly; past that, it
/// estimates (within a few per cent).
pub(crate) const SKETCH_SIZE: usize = 4096;

/// A column's distinct values, in bounded memory: the [`SKETCH_SIZE`]
/// smallest 64-bit hashes of its values (a k-minimum-values sketch). With
/// fewer distinct values than that it holds them all, and the count is
/// exact; otherwise the largest hash kept says how densely the hashes of
/// all the values fill their range.
#[derive(Debug, Clone, Default)]
struct Distinct {
    smallest: std::collections::BTreeSet<u64>,
}

impl Distinct {
    fn add(&mut self, value: &[u8]) {
        use std::hash::{Hash, Hasher};
        // SipHash with fixed keys: the same value hashes alike everywhere.
        let mut hasher = std::hash::DefaultHasher::new();
        value.hash(&mut hasher);
        let h = hasher.finish();
        if self.smallest.len() < SKETCH_SIZE {
            self.smallest.insert(h);
        } else if let Some(&largest) = self.smallest.last()
            && h < largest
            && self.smallest.insert(h)
        {
            self.smallest.pop_last();
        }
    }

    fn estimate(&self) -> u64 {
        match self.smallest.last() {
            Some(&largest) if self.smallest.len() == SKETCH_SIZE => {
                let fill = (largest as f64 + 1.0) / 2f64.powi(64);
                ((SKETCH_SIZE - 1) as f64 / fill).round() as u64
            }
            _ => self.smallest.len() as u64,
        }
    }
}

/// The instance's statistics, shared by its sessions.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Loaded (or known absent) tables, by id.
    tables: HashMap<i64, Option<TableStats>>,
    /// Rows written to tables without statistics (or not loaded yet).
    unanalyzed: HashMap<i64, u64>,
}

fn stats_key(table_id: i64) -> Vec<u8> {
    let mut k = STATS_PREFIX.to_vec();
    k.extend_from_slice(&table_id.to_be_bytes());
    k
}

impl Stats {
    /// The statistics of `table`, read from the store on first use.
    pub fn get(&self, txn: &dyn KvTxn, table: &TableInfo) -> Result<Option<TableStats>> {
        if let Some(known) = self.lock().tables.get(&table.id) {
            return Ok(known.clone());
        }
        let stored = match txn.get(&stats_key(table.id)).map_err(Error::from_storage)? {
            Some(bytes) => serde_json::from_slice(&bytes).ok(),
            None => None,
        };
        self.lock().tables.insert(table.id, stored.clone());
        Ok(stored)
    }

    /// A statement inserted `inserted` and deleted `deleted` rows.
    pub fn changed(&self, table_id: i64, inserted: u64, deleted: u64) {
        if inserted == 0 && deleted == 0 {
            return;
        }
        let mut inner = self.lock();
        match inner.tables.get_mut(&table_id) {
            Some(Some(s)) => {
                s.rows = (s.rows + inserted).saturating_sub(deleted);
                s.modified += inserted + deleted;
            }
            _ => *inner.unanalyzed.entry(table_id).or_default() += inserted + deleted,
        }
    }

    /// The tables to analyze again: those never analyzed that took
    /// [`AUTO_ANALYZE_ROWS`] writes here, and those whose writes since the
    /// analysis reach half their rows then (and at least that many).
    pub fn due(&self) -> Vec<i64> {
        let inner = self.lock();
        let stale = inner.tables.iter().filter_map(|(id, s)| {
            let s = s.as_ref()?;
            (s.modified >= AUTO_ANALYZE_ROWS.max(s.analyzed_rows / 2)).then_some(*id)
        });
        let fresh = inner
            .unanalyzed
            .iter()
            .filter(|(_, written)| **written >= AUTO_ANALYZE_ROWS)
            .map(|(id, _)| *id);
        let mut due: Vec<i64> = stale.chain(fresh).collect();
        due.sort_unstable();
        due.dedup();
        due
    }

    /// Forgets a dropped table.
    pub fn forget(&self, table_id: i64) {
        let mut inner = self.lock();
        inner.tables.remove(&table_id);
        inner.unanalyzed.remove(&table_id);
    }

    /// Computes `table`'s statistics from `txn`'s snapshot and writes them
    /// in `txn` (visible to others when it commits). The table is read a
    /// page at a time; distinct values are counted exactly up to
    /// [`SKETCH_SIZE`] per column and estimated past that.
    pub fn analyze(&self, txn: &mut dyn KvTxn, table: &TableInfo) -> Result<TableStats> {
        let mut rows = 0u64;
        let mut distinct: Vec<Distinct> = vec![Distinct::default(); table.columns.len()];
        let mut bounds: Vec<Option<(i64, i64)>> = vec![None; table.columns.len()];
        table::for_each_row_page(&*txn, table, 4096, |page| {
            rows += page.len() as u64;
            for (_, row) in page {
                for ((sketch, datum), bound) in distinct.iter_mut().zip(row).zip(&mut bounds) {
                    let mut buf = Vec::new();
                    // A float NaN cannot be a key: it counts as one value.
                    let _ = encode_key(datum, &mut buf);
                    sketch.add(&buf);
                    if let Datum::Int(v) = datum {
                        *bound = Some(bound.map_or((*v, *v), |(lo, hi)| (lo.min(*v), hi.max(*v))));
                    }
                }
            }
            Ok(())
        })?;
        let stats = TableStats {
            rows,
            analyzed_rows: rows,
            ndv: table
                .columns
                .iter()
                .zip(&distinct)
                .map(|(c, sketch)| (c.id, sketch.estimate().min(rows)))
                .collect(),
            bounds: table
                .columns
                .iter()
                .zip(&bounds)
                .filter(|(c, _)| c.ty.is_integer() && !c.ty.unsigned)
                .filter_map(|(c, b)| Some((c.id, (*b)?)))
                .collect(),
            modified: 0,
        };
        let bytes = serde_json::to_vec(&stats).map_err(|e| Error::Internal(e.to_string()))?;
        txn.put(stats_key(table.id), bytes);
        let mut inner = self.lock();
        inner.tables.insert(table.id, Some(stats.clone()));
        inner.unanalyzed.remove(&table.id);
        Ok(stats)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndv_scales_with_the_row_count_and_never_exceeds_it() {
        let s = TableStats {
            rows: 2000,
            analyzed_rows: 1000,
            ndv: HashMap::from([(1, 10), (2, 1000)]),
            bounds: HashMap::new(),
            modified: 1000,
        };
        assert_eq!(s.ndv(1), Some(20));
        assert_eq!(s.ndv(2), Some(2000));
        assert_eq!(s.rows_per_value(1), Some(100.0));
        assert_eq!(s.ndv(3), None);
        let shrunk = TableStats { rows: 5, ..s };
        assert_eq!(shrunk.ndv(2), Some(5));
    }

    #[test]
    fn distinct_values_are_exact_when_few_and_close_when_many() {
        let mut few = Distinct::default();
        for i in 0..10_000u32 {
            few.add(&(i % 1000).to_be_bytes());
        }
        assert_eq!(few.estimate(), 1000);
        let mut many = Distinct::default();
        for i in 0..200_000u32 {
            many.add(&i.to_be_bytes());
            many.add(&i.to_be_bytes());
        }
        let estimate = many.estimate() as f64;
        assert!(
            (estimate / 200_000.0 - 1.0).abs() < 0.05,
            "estimated {estimate} of 200000"
        );
    }

    #[test]
    fn tables_are_due_for_analysis_after_enough_writes() {
        let stats = Stats::default();
        stats.changed(1, AUTO_ANALYZE_ROWS - 1, 0);
        assert!(stats.due().is_empty());
        stats.changed(1, 0, 1);
        assert_eq!(stats.due(), vec![1]);
        // An analyzed table of 4000 rows: due after 2000 writes.
        let analyzed = TableStats {
            rows: 4000,
            analyzed_rows: 4000,
            ndv: HashMap::new(),
            bounds: HashMap::new(),
            modified: 0,
        };
        stats.lock().tables.insert(2, Some(analyzed));
        stats.changed(2, 1500, 0);
        assert_eq!(stats.due(), vec![1]);
        stats.changed(2, 0, 500);
        assert_eq!(stats.due(), vec![1, 2]);
        stats.forget(1);
        assert_eq!(stats.due(), vec![2]);
    }

    #[test]
    fn a_range_holds_its_share_of_the_analyzed_bounds_and_the_changes_past_them() {
        let s = TableStats {
            rows: 1000,
            analyzed_rows: 1000,
            ndv: HashMap::new(),
            bounds: HashMap::from([(1, (1, 1000))]),
            modified: 0,
        };
        assert_eq!(s.rows_in_range(1, 1, 1000), Some(1000.0));
        assert_eq!(s.rows_in_range(1, 101, 200), Some(100.0));
        assert_eq!(s.rows_in_range(1, 501, i128::from(i64::MAX)), Some(500.0));
        assert_eq!(s.rows_in_range(1, 5000, 6000), Some(1.0));
        assert_eq!(s.rows_in_range(1, 7, 6), Some(0.0));
        assert_eq!(s.rows_in_range(2, 1, 2), None);
        // 500 rows inserted since: a range past the old maximum may hold them.
        let grown = TableStats {
            rows: 1500,
            modified: 500,
            ..s
        };
        assert_eq!(grown.rows_in_range(1, 1001, 2000), Some(500.0));
        assert_eq!(grown.rows_in_range(1, 1, 100), Some(150.0));
    }
}
