//! An in-memory engine for tests: one ordered map per column family, shared
//! copy-on-write so that a snapshot is a cheap clone of the maps.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use super::{Cf, Engine, EngineIterator, IterOptions, Modify, Snapshot, WriteBatch, WriteOptions};
use crate::error::Result;

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// The maps of all column families at one moment.
type Maps = Arc<[Arc<Map>; 4]>;

/// An engine that lives in memory only.
#[derive(Debug, Default)]
pub struct MemoryEngine {
    maps: Mutex<Maps>,
}

impl MemoryEngine {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Engine for MemoryEngine {
    type Snapshot = MemorySnapshot;

    fn snapshot(&self) -> MemorySnapshot {
        MemorySnapshot {
            maps: Arc::clone(&self.maps.lock().unwrap_or_else(|e| e.into_inner())),
        }
    }

    fn write(&self, batch: &WriteBatch, _opts: WriteOptions) -> Result<()> {
        let mut guard = self.maps.lock().unwrap_or_else(|e| e.into_inner());
        let mut maps: [Arc<Map>; 4] = (**guard).clone();
        for m in &batch.modifies {
            match m {
                Modify::Put { cf, key, value } => {
                    Arc::make_mut(&mut maps[cf.index()]).insert(key.clone(), value.clone());
                }
                Modify::Delete { cf, key } => {
                    Arc::make_mut(&mut maps[cf.index()]).remove(key);
                }
                Modify::DeleteRange { cf, start, end } => {
                    let map = Arc::make_mut(&mut maps[cf.index()]);
                    let range = (Bound::Included(&start[..]), Bound::Excluded(&end[..]));
                    if is_empty(range.0, range.1) {
                        continue;
                    }
                    let doomed: Vec<Vec<u8>> = map
                        .range::<[u8], _>(range)
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in doomed {
                        map.remove(&k);
                    }
                }
            }
        }
        *guard = Arc::new(maps);
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }
}

/// A frozen view of a [`MemoryEngine`].
#[derive(Debug, Clone)]
pub struct MemorySnapshot {
    maps: Maps,
}

impl Snapshot for MemorySnapshot {
    type Iter<'a> = MemoryIterator<'a>;

    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.maps[cf.index()].get(key).cloned())
    }

    fn iter(&self, cf: Cf, opts: IterOptions) -> Result<MemoryIterator<'_>> {
        Ok(MemoryIterator {
            map: &self.maps[cf.index()],
            opts,
            current: None,
        })
    }
}

/// A cursor over one map; each step is a range lookup from the current key.
pub struct MemoryIterator<'a> {
    map: &'a Map,
    opts: IterOptions,
    current: Option<(&'a [u8], &'a [u8])>,
}

impl MemoryIterator<'_> {
    fn lower(&self) -> Bound<&[u8]> {
        self.opts
            .lower
            .as_deref()
            .map_or(Bound::Unbounded, Bound::Included)
    }

    fn upper(&self) -> Bound<&[u8]> {
        self.opts
            .upper
            .as_deref()
            .map_or(Bound::Unbounded, Bound::Excluded)
    }

    fn forward_from(&mut self, from: Bound<&[u8]>) -> bool {
        let from = match (from, self.lower()) {
            (Bound::Included(k), Bound::Included(l)) if k < l => Bound::Included(l),
            (Bound::Unbounded, l) => l,
            (f, _) => f,
        };
        let upper = self.upper();
        self.current = if is_empty(from, upper) {
            None
        } else {
            self.map
                .range::<[u8], _>((from, upper))
                .next()
                .map(|(k, v)| (k.as_slice(), v.as_slice()))
        };
        self.current.is_some()
    }

    fn backward_from(&mut self, to: Bound<&[u8]>) -> bool {
        let to = match (to, self.upper()) {
            (Bound::Included(k), Bound::Excluded(u)) if k >= u => Bound::Excluded(u),
            (Bound::Unbounded, u) => u,
            (t, _) => t,
        };
        let lower = self.lower();
        self.current = if is_empty(lower, to) {
            None
        } else {
            self.map
                .range::<[u8], _>((lower, to))
                .next_back()
                .map(|(k, v)| (k.as_slice(), v.as_slice()))
        };
        self.current.is_some()
    }
}

/// Whether no key lies between `lo` and `hi` (`BTreeMap::range` panics on such bounds).
fn is_empty(lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> bool {
    match (lo, hi) {
        (Bound::Unbounded, _) | (_, Bound::Unbounded) => false,
        (Bound::Included(l), Bound::Included(h)) => l > h,
        (Bound::Included(l) | Bound::Excluded(l), Bound::Included(h) | Bound::Excluded(h)) => {
            l >= h
        }
    }
}

impl EngineIterator for MemoryIterator<'_> {
    fn seek(&mut self, key: &[u8]) -> Result<bool> {
        Ok(self.forward_from(Bound::Included(key)))
    }

    fn seek_for_prev(&mut self, key: &[u8]) -> Result<bool> {
        Ok(self.backward_from(Bound::Included(key)))
    }

    fn seek_to_first(&mut self) -> Result<bool> {
        Ok(self.forward_from(Bound::Unbounded))
    }

    fn seek_to_last(&mut self) -> Result<bool> {
        Ok(self.backward_from(Bound::Unbounded))
    }

    fn next(&mut self) -> Result<bool> {
        let Some((k, _)) = self.current else {
            return Ok(false);
        };
        Ok(self.forward_from(Bound::Excluded(k)))
    }

    fn prev(&mut self) -> Result<bool> {
        let Some((k, _)) = self.current else {
            return Ok(false);
        };
        Ok(self.backward_from(Bound::Excluded(k)))
    }

    fn valid(&self) -> bool {
        self.current.is_some()
    }

    fn key(&self) -> &[u8] {
        self.current.map_or(&[], |(k, _)| k)
    }

    fn value(&self) -> &[u8] {
        self.current.map_or(&[], |(_, v)| v)
    }
}
