//! The columnar counts placement follows: each table's `ALTER TABLE … SET
//! COLUMNAR REPLICA n`, read from the catalog by every node of a cluster
//! (the whole catalog again only when the schema version moved). A node's
//! `learner_loop` adds its own columnar learner only to regions no count
//! applies to; the placement driver turns the counts into each region's
//! wanted number of learners for the columnar checker.

use std::sync::{RwLock, RwLockReadGuard};

use duet_sql::ColumnarCount;
use duet_sql::kv::Kv;

/// The counts as last read.
#[derive(Default)]
pub struct ColumnarCounts {
    state: RwLock<Counts>,
}

#[derive(Default)]
struct Counts {
    /// The schema version they were read at; `None` before the first read.
    version: Option<u64>,
    /// Every base table's range and count, in key order.
    tables: Vec<ColumnarCount>,
}

fn overlaps(a: (&[u8], &[u8]), b: (&[u8], &[u8])) -> bool {
    let below_end = |key: &[u8], end: &[u8]| end.is_empty() || key < end;
    below_end(a.0, b.1) && below_end(b.0, a.1)
}

impl ColumnarCounts {
    /// Reads the counts afresh if the schema version moved.
    pub fn refresh(&self, kv: &dyn Kv) -> Result<(), String> {
        let mut txn = kv.begin().map_err(|e| e.to_string())?;
        let read = (|| {
            let version = duet_sql::schema_version(txn.as_ref())?;
            if self.read().version == Some(version) {
                return Ok(None);
            }
            Ok(Some((version, duet_sql::columnar_counts(txn.as_ref())?)))
        })();
        let _ = txn.rollback();
        if let Some((version, tables)) = read.map_err(|e: duet_sql::Error| e.to_string())? {
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            *state = Counts {
                version: Some(version),
                tables,
            };
        }
        Ok(())
    }

    /// Whether the counts were read at least once.
    pub fn known(&self) -> bool {
        self.read().version.is_some()
    }

    /// How many columnar learners the region over `[start, end)` (an empty
    /// end: unbounded) should have: the most any table over it asks;
    /// `None` (the default placement) if a table over it has no count, or
    /// no table is over it.
    pub fn wanted(&self, start: &[u8], end: &[u8]) -> Option<usize> {
        let state = self.read();
        let first = (state.tables).partition_point(|t| t.end.as_slice() <= start);
        let mut wanted: Option<usize> = None;
        for t in &state.tables[first..] {
            if !overlaps((&t.start, &t.end), (start, end)) {
                break;
            }
            let n = usize::try_from(t.count?).unwrap_or(usize::MAX);
            wanted = Some(wanted.map_or(n, |w| w.max(n)));
        }
        wanted
    }

    /// Whether the region over `[start, end)` holds table definitions.
    pub fn holds_definitions(&self, start: &[u8], end: &[u8]) -> bool {
        let (from, to) = duet_sql::definitions_range();
        overlaps((&from, &to), (start, end))
    }

    fn read(&self) -> RwLockReadGuard<'_, Counts> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(tables: &[(u8, Option<u64>)]) -> ColumnarCounts {
        let tables = (tables.iter())
            .map(|(k, count)| ColumnarCount {
                start: vec![*k],
                end: vec![*k + 1],
                count: *count,
            })
            .collect();
        ColumnarCounts {
            state: RwLock::new(Counts {
                version: Some(1),
                tables,
            }),
        }
    }

    #[test]
    fn a_region_wants_the_most_its_tables_ask_unless_one_has_no_count() {
        let c = counts(&[(10, Some(1)), (11, Some(3)), (12, None), (14, Some(0))]);
        assert_eq!(c.wanted(&[10], &[11]), Some(1));
        assert_eq!(c.wanted(&[10, 5], &[11, 5]), Some(3));
        assert_eq!(c.wanted(&[10], &[12]), Some(3));
        assert_eq!(c.wanted(&[11], &[13]), None, "table 12 has no count");
        assert_eq!(c.wanted(&[14], &[]), Some(0));
        assert_eq!(c.wanted(&[13], &[14]), None, "no table there");
        assert_eq!(c.wanted(&[], &[]), None);
        assert_eq!(ColumnarCounts::default().wanted(&[10], &[11]), None);
        assert!(c.holds_definitions(&[], &[]));
        assert!(!c.holds_definitions(b"t", &[]));
        assert!(!c.holds_definitions(&[10], b"m\x01"));
    }
}
