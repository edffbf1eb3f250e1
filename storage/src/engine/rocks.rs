//! The RocksDB engine: one database with a column family per [`Cf`], an LRU
//! block cache shared by all of them, bloom filters, and a prefix extractor on
//! the MVCC column families so that point reads of one key at some timestamp
//! can skip files by bloom filter.

use std::path::Path;
use std::sync::Arc;

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, DBRawIterator, Options, ReadOptions,
    SliceTransform,
};

use super::{Cf, Engine, EngineIterator, IterOptions, Modify, Snapshot, WriteBatch, WriteOptions};
use crate::error::{Error, Result};

/// Length of the timestamp suffix on `write` and `default` CF keys.
const TS_LEN: usize = 8;

/// Tuning of the RocksDB engine.
#[derive(Debug, Clone)]
pub struct RocksConfig {
    /// Bytes of the LRU block cache shared by all column families.
    pub block_cache_bytes: usize,
    /// Bloom filter bits per key (0 disables).
    pub bloom_bits_per_key: f64,
    /// Background flush and compaction threads.
    pub background_jobs: i32,
}

impl Default for RocksConfig {
    fn default() -> Self {
        RocksConfig {
            block_cache_bytes: 256 << 20,
            bloom_bits_per_key: 10.0,
            background_jobs: 2,
        }
    }
}

/// A RocksDB database holding every column family.
#[derive(Clone)]
pub struct RocksEngine {
    db: Arc<DB>,
}

impl std::fmt::Debug for RocksEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksEngine")
            .field("path", &self.db.path())
            .finish()
    }
}

fn engine_err(e: rocksdb::Error) -> Error {
    Error::Engine(e.into_string())
}

/// The user-key part of an MVCC key (all but the timestamp).
fn mvcc_prefix(key: &[u8]) -> &[u8] {
    &key[..key.len() - TS_LEN]
}

fn has_mvcc_prefix(key: &[u8]) -> bool {
    key.len() >= TS_LEN
}

impl RocksEngine {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path, config: &RocksConfig) -> Result<RocksEngine> {
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_max_background_jobs(config.background_jobs);
        let cache = Cache::new_lru_cache(config.block_cache_bytes);
        let cfs = Cf::ALL
            .iter()
            .map(|cf| ColumnFamilyDescriptor::new(cf.name(), cf_options(*cf, &cache, config)));
        let db = DB::open_cf_descriptors(&db_opts, path, cfs).map_err(engine_err)?;
        Ok(RocksEngine { db: Arc::new(db) })
    }
}

fn cf_options(cf: Cf, cache: &Cache, config: &RocksConfig) -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    if config.bloom_bits_per_key > 0.0 {
        table.set_bloom_filter(config.bloom_bits_per_key, false);
    }
    let mut opts = Options::default();
    if matches!(cf, Cf::Write | Cf::Default) {
        // Bloom filters over the user key, whatever the timestamp.
        opts.set_prefix_extractor(SliceTransform::create(
            "duet_mvcc_prefix",
            mvcc_prefix,
            Some(has_mvcc_prefix),
        ));
        table.set_whole_key_filtering(false);
    }
    opts.set_block_based_table_factory(&table);
    opts
}

impl Engine for RocksEngine {
    type Snapshot = RocksSnapshot;

    fn snapshot(&self) -> RocksSnapshot {
        RocksSnapshot {
            cell: SnapshotCell::new(Arc::clone(&self.db), |db| db.snapshot()),
        }
    }

    fn write(&self, batch: &WriteBatch, opts: WriteOptions) -> Result<()> {
        let mut wb = rocksdb::WriteBatch::default();
        for m in &batch.modifies {
            match m {
                Modify::Put { cf, key, value } => wb.put_cf(cf_handle(&self.db, *cf)?, key, value),
                Modify::Delete { cf, key } => wb.delete_cf(cf_handle(&self.db, *cf)?, key),
                // An empty range is a no-op (RocksDB refuses a reversed one).
                Modify::DeleteRange { start, end, .. } if start >= end => {}
                Modify::DeleteRange { cf, start, end } => {
                    wb.delete_range_cf(cf_handle(&self.db, *cf)?, start, end)
                }
            }
        }
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(opts.sync);
        self.db.write_opt(wb, &wo).map_err(engine_err)
    }

    fn sync(&self) -> Result<()> {
        self.db.flush_wal(true).map_err(engine_err)
    }
}

fn cf_handle(db: &DB, cf: Cf) -> Result<&rocksdb::ColumnFamily> {
    db.cf_handle(cf.name())
        .ok_or_else(|| Error::Engine(format!("column family {} is missing", cf.name())))
}

type DbSnapshot<'a> = rocksdb::SnapshotWithThreadMode<'a, DB>;

self_cell::self_cell!(
    /// A RocksDB snapshot that owns a handle on its database, so it can
    /// outlive the borrow that created it.
    struct SnapshotCell {
        owner: Arc<DB>,
        #[covariant]
        dependent: DbSnapshot,
    }
);

/// A consistent view of a [`RocksEngine`].
pub struct RocksSnapshot {
    cell: SnapshotCell,
}

impl Snapshot for RocksSnapshot {
    type Iter<'a> = RocksIterator<'a>;

    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let db = self.cell.borrow_owner();
        let snap = self.cell.borrow_dependent();
        snap.get_cf(cf_handle(db, cf)?, key).map_err(engine_err)
    }

    fn iter(&self, cf: Cf, opts: IterOptions) -> Result<RocksIterator<'_>> {
        let db = self.cell.borrow_owner();
        let snap = self.cell.borrow_dependent();
        let mut ro = ReadOptions::default();
        if let Some(l) = opts.lower {
            ro.set_iterate_lower_bound(l);
        }
        if let Some(u) = opts.upper {
            ro.set_iterate_upper_bound(u);
        }
        if opts.prefix_seek && matches!(cf, Cf::Write | Cf::Default) {
            ro.set_prefix_same_as_start(true);
        } else {
            ro.set_total_order_seek(true);
        }
        Ok(RocksIterator {
            inner: snap.raw_iterator_cf_opt(cf_handle(db, cf)?, ro),
        })
    }
}

/// A RocksDB raw iterator behind the engine-neutral interface.
pub struct RocksIterator<'a> {
    inner: DBRawIterator<'a>,
}

impl RocksIterator<'_> {
    fn status(&self) -> Result<bool> {
        self.inner.status().map_err(engine_err)?;
        Ok(self.inner.valid())
    }
}

impl EngineIterator for RocksIterator<'_> {
    fn seek(&mut self, key: &[u8]) -> Result<bool> {
        self.inner.seek(key);
        self.status()
    }

    fn seek_for_prev(&mut self, key: &[u8]) -> Result<bool> {
        self.inner.seek_for_prev(key);
        self.status()
    }

    fn seek_to_first(&mut self) -> Result<bool> {
        self.inner.seek_to_first();
        self.status()
    }

    fn seek_to_last(&mut self) -> Result<bool> {
        self.inner.seek_to_last();
        self.status()
    }

    fn next(&mut self) -> Result<bool> {
        if self.inner.valid() {
            self.inner.next();
        }
        self.status()
    }

    fn prev(&mut self) -> Result<bool> {
        if self.inner.valid() {
            self.inner.prev();
        }
        self.status()
    }

    fn valid(&self) -> bool {
        self.inner.valid()
    }

    fn key(&self) -> &[u8] {
        self.inner.key().unwrap_or_default()
    }

    fn value(&self) -> &[u8] {
        self.inner.value().unwrap_or_default()
    }
}
