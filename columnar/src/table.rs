//! One table's columnar copy: every committed version the replica still
//! needs, in two layers.
//!
//! - The **delta** holds recent versions as the log delivered them: a map
//!   from row key to versions (commit timestamp, the row value or a delete
//!   mark). New versions go to the *active* map; it is frozen (made
//!   immutable and shareable) when it grows or a scan needs a stable view,
//!   so scans never hold the table while the apply thread waits.
//! - The **stable** layer is one sorted run of immutable [`Chunk`]s: Arrow
//!   columns of the decoded rows plus the row key, commit timestamp and
//!   delete mark of each version, sorted by key and newest version first,
//!   with each column's min/max for pruning. Compaction merges the frozen
//!   deltas into a new run, keeping every version a read above the GC safe
//!   point can still see. With a [`SegmentDir`], each chunk is a file
//!   mapped into memory (see [`crate::segment`]).
//!
//! Per row key, commit timestamps grow in log order (a prewrite conflicts
//! with any newer commit), so a newer layer's version always supersedes an
//! older layer's.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::array::{
    Array, ArrayRef, BinaryArray, BinaryBuilder, BooleanArray, BooleanBuilder, UInt64Array,
    UInt64Builder, new_null_array,
};
use datafusion::arrow::compute::{cast, filter, interleave};
use datafusion::arrow::datatypes::UInt64Type;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Accumulator, BinaryExpr, Expr, Operator};
use duet_storage::codec::Datum;
use duet_storage::mvcc::{Lock, LockKind};

use crate::error::{Error, Result};
use crate::schema::TableCodec;
use crate::segment::{ChunkArrays, ColumnStats, SegmentDir, SegmentFile};

/// One committed version of a row.
#[derive(Debug, Clone)]
pub(crate) struct Version {
    pub commit_ts: u64,
    /// The stored row value; `None` marks a delete.
    pub value: Option<Arc<[u8]>>,
}

/// Row key → versions, oldest first.
pub(crate) type Delta = BTreeMap<Vec<u8>, Vec<Version>>;

/// What one delta version costs in memory: its key (each version counts
/// it, as a bound), its value and the maps' overhead.
fn version_bytes(key: &[u8], version: &Version) -> usize {
    const OVERHEAD: usize = 64;
    key.len() + version.value.as_ref().map_or(0, |v| v.len()) + OVERHEAD
}

/// An immutable slice of the stable run.
#[derive(Debug)]
pub(crate) struct Chunk {
    /// One array per table column (all nullable: a delete has no values).
    columns: Vec<ArrayRef>,
    keys: BinaryArray,
    ts: UInt64Array,
    deleted: BooleanArray,
    /// Per column: min and max over the chunk's values, if any.
    stats: ColumnStats,
    max_key: Vec<u8>,
    /// The file the arrays map, if the replica keeps its chunks on disk.
    file: Option<Arc<SegmentFile>>,
}

impl Chunk {
    /// A chunk of `arrays` (of `table_id`), written to and mapped from a
    /// new segment file if `segments` is given.
    pub(crate) fn new(
        table_id: i64,
        arrays: ChunkArrays,
        segments: Option<&SegmentDir>,
    ) -> Result<Chunk> {
        let stats: ColumnStats = arrays.columns.iter().map(min_max).collect::<Result<_>>()?;
        let (file, arrays) = match segments {
            Some(dir) => {
                let (file, mapped) = dir.write(table_id, &arrays, &stats)?;
                (Some(file), mapped)
            }
            None => (None, arrays),
        };
        Chunk::from_arrays(arrays, file, Some(stats))
    }

    /// A chunk over arrays already in place (mapped from `file`, if any),
    /// with their min/max if known (computed otherwise).
    pub(crate) fn from_arrays(
        arrays: ChunkArrays,
        file: Option<Arc<SegmentFile>>,
        stats: Option<ColumnStats>,
    ) -> Result<Chunk> {
        let stats = match stats {
            Some(stats) if stats.len() == arrays.columns.len() => stats,
            _ => arrays.columns.iter().map(min_max).collect::<Result<_>>()?,
        };
        let n = arrays.keys.len();
        let max_key = if n == 0 {
            Vec::new()
        } else {
            arrays.keys.value(n - 1).to_vec()
        };
        Ok(Chunk {
            columns: arrays.columns,
            keys: arrays.keys,
            ts: arrays.ts,
            deleted: arrays.deleted,
            stats,
            max_key,
            file,
        })
    }

    #[cfg(test)]
    pub(crate) fn stats(&self) -> &ColumnStats {
        &self.stats
    }

    pub(crate) fn file(&self) -> Option<&Arc<SegmentFile>> {
        self.file.as_ref()
    }

    pub(crate) fn column_count(&self) -> usize {
        self.columns.len()
    }

    fn len(&self) -> usize {
        self.keys.len()
    }

    /// `false` if no version in the chunk can satisfy every filter.
    fn may_match(&self, schema: &SchemaRef, filters: &[Expr]) -> bool {
        filters.iter().all(|f| match prunable(f) {
            Some((name, op, value)) => {
                let Ok(i) = schema.index_of(&name) else {
                    return true;
                };
                let Some((min, max)) = &self.stats[i] else {
                    return true;
                };
                range_may_hold(min, max, op, &value)
            }
            None => true,
        })
    }
}

/// A filter `column op literal` (either side), as (column, op with the
/// column on the left, literal).
fn prunable(f: &Expr) -> Option<(String, Operator, ScalarValue)> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = f else {
        return None;
    };
    match (left.as_ref(), right.as_ref()) {
        (Expr::Column(c), Expr::Literal(v, _)) => Some((c.name.clone(), *op, v.clone())),
        (Expr::Literal(v, _), Expr::Column(c)) => Some((c.name.clone(), op.swap()?, v.clone())),
        _ => None,
    }
}

/// Whether a column whose values lie in `[min, max]` can hold a value
/// `v` with `column op v`.
fn range_may_hold(min: &ScalarValue, max: &ScalarValue, op: Operator, v: &ScalarValue) -> bool {
    let Ok(v) = v.cast_to(&min.data_type()) else {
        return true;
    };
    if v.is_null() {
        return true;
    }
    let (Some(lo), Some(hi)) = (min.partial_cmp(&v), max.partial_cmp(&v)) else {
        return true;
    };
    match op {
        Operator::Eq => lo != Ordering::Greater && hi != Ordering::Less,
        Operator::Lt => lo == Ordering::Less,
        Operator::LtEq => lo != Ordering::Greater,
        Operator::Gt => hi == Ordering::Greater,
        Operator::GtEq => hi != Ordering::Less,
        _ => true,
    }
}

/// What one scan asks for.
#[derive(Debug, Clone, Default)]
pub struct ScanRequest {
    /// Columns of the table's schema to return; all if `None`.
    pub projection: Option<Vec<usize>>,
    /// Conditions every returned row will be checked against by the
    /// caller; used here only to skip chunks.
    pub filters: Vec<Expr>,
    pub limit: Option<usize>,
    pub read_ts: u64,
    /// How many parts to split the result into (one per core).
    pub partitions: usize,
    /// Only the rows whose keys fall in `[start, end)` (`end` empty: no
    /// bound): the part of a table one node's regions hold.
    pub keys: Option<(Vec<u8>, Vec<u8>)>,
}

impl ScanRequest {
    /// Whether row key `key` is in the scan's key range.
    fn wants(&self, key: &[u8]) -> bool {
        self.keys.as_ref().is_none_or(|(start, end)| {
            key >= start.as_slice() && (end.is_empty() || key < end.as_slice())
        })
    }

    /// Whether a chunk whose keys run from `first_key` to `max_key` may
    /// hold a key of the range.
    fn may_hold(&self, first_key: &[u8], max_key: &[u8]) -> bool {
        self.keys.as_ref().is_none_or(|(start, end)| {
            max_key >= start.as_slice() && (end.is_empty() || first_key < end.as_slice())
        })
    }
}

/// A scan's rows and what it took.
#[derive(Debug)]
pub struct ScanOutput {
    pub schema: SchemaRef,
    /// The rows in contiguous parts, one per partition, each read batch by
    /// batch only as it is consumed.
    pub partitions: Vec<ScanPart>,
    pub rows: usize,
    pub chunks_read: usize,
    pub chunks_pruned: usize,
}

impl ScanOutput {
    /// A scan that found no rows, in one empty part of `schema`.
    pub fn empty(schema: SchemaRef) -> ScanOutput {
        let picked = Picked {
            schema: Arc::clone(&schema),
            columns: Vec::new(),
            picks: Vec::new(),
        };
        ScanOutput {
            schema,
            partitions: vec![ScanPart {
                picked: Arc::new(picked),
                range: 0..0,
            }],
            rows: 0,
            chunks_read: 0,
            chunks_pruned: 0,
        }
    }
}

/// The rows a scan picked, shared by its parts: per output column, the
/// arrays a row may come from (decoded delta rows, one null, each chunk
/// read), and for each row, which array and which row of it.
#[derive(Debug)]
struct Picked {
    schema: SchemaRef,
    columns: Vec<Vec<ArrayRef>>,
    picks: Vec<Pick>,
}

/// One partition of a scan's rows. The arrays it takes them from are
/// shared (and, for chunks on disk, mapped), so a part holds no copy of
/// its rows until [`batches`](Self::batches) makes them.
#[derive(Debug, Clone)]
pub struct ScanPart {
    picked: Arc<Picked>,
    range: std::ops::Range<usize>,
}

impl ScanPart {
    /// The rows in this part.
    pub fn rows(&self) -> usize {
        self.range.len()
    }

    /// The part's rows, `batch_rows` at a time, each batch made when it
    /// is asked for.
    pub fn batches(
        &self,
        batch_rows: usize,
    ) -> impl Iterator<Item = Result<RecordBatch>> + Send + 'static {
        let picked = Arc::clone(&self.picked);
        let range = self.range.clone();
        let step = batch_rows.max(1);
        range.clone().step_by(step).map(move |start| {
            let picks = &picked.picks[start..(start + step).min(range.end)];
            let columns = picked
                .columns
                .iter()
                .map(|sources| {
                    let sources: Vec<&dyn Array> = sources.iter().map(|a| a.as_ref()).collect();
                    Ok(interleave(&sources, picks)?)
                })
                .collect::<Result<Vec<ArrayRef>>>()?;
            Ok(RecordBatch::try_new_with_options(
                Arc::clone(&picked.schema),
                columns,
                &RecordBatchOptions::new().with_row_count(Some(picks.len())),
            )?)
        })
    }
}

/// Tuning of a table's layers.
#[derive(Debug, Clone)]
pub struct LayerConfig {
    /// The active delta freezes past this many versions.
    pub freeze_versions: usize,
    /// Compaction runs once the frozen deltas hold this many versions (or a
    /// quarter of the stable rows, whichever is more) …
    pub delta_limit: usize,
    /// … or once the delta holds this many bytes, however large the table:
    /// the bound on a table's memory.
    pub delta_bytes: usize,
    /// Rows per stable chunk.
    pub chunk_rows: usize,
    /// How long a scan waits for the learner to apply what the row store
    /// had applied when the scan began, before it fails with
    /// [`Error::Behind`].
    pub read_wait: std::time::Duration,
}

impl Default for LayerConfig {
    fn default() -> Self {
        LayerConfig {
            freeze_versions: 4096,
            delta_limit: 65_536,
            delta_bytes: 128 << 20,
            chunk_rows: 65_536,
            read_wait: std::time::Duration::from_secs(10),
        }
    }
}

/// The layers of one table.
#[derive(Debug, Default)]
pub(crate) struct TableState {
    /// The table's definition; `None` while rows arrived before it (a
    /// metadata region behind the data region).
    pub codec: Option<Arc<dyn TableCodec>>,
    stable: Arc<Vec<Arc<Chunk>>>,
    stable_rows: usize,
    /// Oldest first.
    frozen: Vec<Arc<Delta>>,
    frozen_versions: usize,
    frozen_bytes: usize,
    active: Delta,
    active_versions: usize,
    active_bytes: usize,
    /// Locks of in-flight transactions on the table's rows.
    locks: BTreeMap<Vec<u8>, Lock>,
}

/// What a scan reads, taken under the table's lock and read without it.
pub(crate) struct TableSnapshot {
    codec: Arc<dyn TableCodec>,
    stable: Arc<Vec<Arc<Chunk>>>,
    /// Newest first.
    deltas: Vec<Arc<Delta>>,
}

impl TableState {
    pub fn put_version(&mut self, key: Vec<u8>, version: Version, config: &LayerConfig) {
        self.active_bytes += version_bytes(&key, &version);
        self.active.entry(key).or_default().push(version);
        self.active_versions += 1;
        if self.active_versions >= config.freeze_versions {
            self.freeze();
        }
    }

    pub fn put_lock(&mut self, key: Vec<u8>, lock: Lock) {
        self.locks.insert(key, lock);
    }

    pub fn remove_lock(&mut self, key: &[u8]) {
        self.locks.remove(key);
    }

    /// The locks of in-flight transactions, by row key.
    pub fn locks(&self) -> impl Iterator<Item = (&Vec<u8>, &Lock)> {
        self.locks.iter()
    }

    fn freeze(&mut self) {
        if self.active_versions > 0 {
            self.frozen.push(Arc::new(std::mem::take(&mut self.active)));
            self.frozen_versions += self.active_versions;
            self.active_versions = 0;
            self.frozen_bytes += std::mem::take(&mut self.active_bytes);
        }
    }

    /// Versions held (stable rows plus delta versions): an estimate of the
    /// table's size.
    pub fn versions(&self) -> usize {
        self.stable_rows + self.frozen_versions + self.active_versions
    }

    /// The memory the delta's versions take, approximately.
    pub fn delta_bytes(&self) -> usize {
        self.frozen_bytes + self.active_bytes
    }

    pub fn delta_versions(&self) -> usize {
        self.frozen_versions + self.active_versions
    }

    pub fn chunks(&self) -> usize {
        self.stable.len()
    }

    /// The first lock that hides a version a read at `read_ts` would see.
    pub fn blocking_lock(&self, read_ts: u64) -> Option<(Vec<u8>, Lock)> {
        self.locks
            .iter()
            .find(|(_, l)| {
                !matches!(l.lock_kind(), LockKind::Lock | LockKind::Pessimistic)
                    && l.start_ts <= read_ts
                    && l.min_commit_ts <= read_ts
            })
            .map(|(k, l)| (k.clone(), l.clone()))
    }

    /// A view for one scan.
    pub fn snapshot(&mut self) -> Option<TableSnapshot> {
        let codec = Arc::clone(self.codec.as_ref()?);
        self.freeze();
        Some(TableSnapshot {
            codec,
            stable: Arc::clone(&self.stable),
            deltas: self.frozen.iter().rev().cloned().collect(),
        })
    }

    /// Takes a new definition; stable chunks are reshaped to it (columns
    /// matched by id, new ones filled with their default, changed types
    /// cast).
    pub fn set_codec(
        &mut self,
        codec: Arc<dyn TableCodec>,
        segments: Option<&SegmentDir>,
    ) -> Result<()> {
        if let Some(old) = &self.codec {
            let same = old.column_ids() == codec.column_ids()
                && old.schema().fields().len() == codec.schema().fields().len()
                && old
                    .schema()
                    .fields()
                    .iter()
                    .zip(codec.schema().fields())
                    .all(|(a, b)| a.data_type() == b.data_type());
            if !same {
                let chunks = self
                    .stable
                    .iter()
                    .map(|c| reshape(c, old.as_ref(), codec.as_ref(), segments).map(Arc::new))
                    .collect::<Result<Vec<_>>>()?;
                self.stable = Arc::new(chunks);
            }
        }
        self.codec = Some(codec);
        Ok(())
    }

    /// Whether compaction is due.
    pub fn wants_compaction(&self, config: &LayerConfig) -> bool {
        let delta = self.frozen_versions + self.active_versions;
        let bytes = self.frozen_bytes + self.active_bytes;
        self.codec.is_some()
            && delta > 0
            && (delta >= config.delta_limit.max(self.stable_rows / 4)
                || bytes >= config.delta_bytes)
    }

    /// Freezes the active delta and returns what a compaction merges: the
    /// stable run and the frozen deltas (oldest first).
    pub fn compaction_input(&mut self) -> Option<CompactionInput> {
        let codec = Arc::clone(self.codec.as_ref()?);
        self.freeze();
        Some(CompactionInput {
            codec,
            stable: Arc::clone(&self.stable),
            deltas: self.frozen.clone(),
        })
    }

    /// Installs a compaction's result, unless the table changed shape or
    /// was compacted meanwhile.
    pub fn finish_compaction(&mut self, input: &CompactionInput, output: Vec<Arc<Chunk>>) -> bool {
        let unchanged = Arc::ptr_eq(&self.stable, &input.stable)
            && self
                .codec
                .as_ref()
                .is_some_and(|c| Arc::ptr_eq(c, &input.codec))
            && self.frozen.len() >= input.deltas.len()
            && self
                .frozen
                .iter()
                .zip(&input.deltas)
                .all(|(a, b)| Arc::ptr_eq(a, b));
        if !unchanged {
            return false;
        }
        let (mut merged, mut merged_bytes) = (0, 0);
        for d in &input.deltas {
            for (key, versions) in d.iter() {
                merged += versions.len();
                merged_bytes += versions
                    .iter()
                    .map(|v| version_bytes(key, v))
                    .sum::<usize>();
            }
        }
        self.frozen.drain(..input.deltas.len());
        self.frozen_versions -= merged;
        self.frozen_bytes -= merged_bytes;
        self.stable_rows = output.iter().map(|c| c.len()).sum();
        self.stable = Arc::new(output);
        true
    }

    /// Drops every version and lock of a row key in `[start, end)` (`end`
    /// empty: unbounded), for a region whose copy a snapshot replaces.
    /// Stable chunks that hold such keys are rewritten without them (as
    /// new segments if `segments` is given); a compaction running
    /// meanwhile then finds the table changed and is discarded.
    pub fn remove_range(
        &mut self,
        table_id: i64,
        start: &[u8],
        end: &[u8],
        segments: Option<&SegmentDir>,
    ) -> Result<()> {
        let inside = |k: &[u8]| k >= start && (end.is_empty() || k < end);
        self.locks.retain(|k, _| !inside(k));
        if self.active.keys().any(|k| inside(k)) {
            self.active.retain(|k, _| !inside(k));
            (self.active_versions, self.active_bytes) = delta_size(&self.active);
        }
        if self.frozen.iter().any(|d| d.keys().any(|k| inside(k))) {
            self.frozen = self
                .frozen
                .iter()
                .map(|d| {
                    let mut kept = (**d).clone();
                    kept.retain(|k, _| !inside(k));
                    Arc::new(kept)
                })
                .filter(|d| !d.is_empty())
                .collect();
            (self.frozen_versions, self.frozen_bytes) =
                self.frozen.iter().fold((0, 0), |(n, b), d| {
                    let (dn, db) = delta_size(d);
                    (n + dn, b + db)
                });
        }
        let touched = |c: &Chunk| {
            c.len() > 0
                && c.max_key.as_slice() >= start
                && (end.is_empty() || c.keys.value(0) < end)
        };
        if self.stable.iter().any(|c| touched(c)) {
            let mut chunks = Vec::with_capacity(self.stable.len());
            for chunk in self.stable.iter() {
                if !touched(chunk) {
                    chunks.push(Arc::clone(chunk));
                    continue;
                }
                let keep: BooleanArray = chunk
                    .keys
                    .iter()
                    .map(|k| Some(!inside(k.unwrap_or_default())))
                    .collect();
                if keep.true_count() == 0 {
                    continue;
                }
                let pick = |a: &dyn Array| filter(a, &keep);
                let arrays = ChunkArrays {
                    columns: chunk
                        .columns
                        .iter()
                        .map(|c| pick(c.as_ref()))
                        .collect::<std::result::Result<_, _>>()?,
                    keys: pick(&chunk.keys)?.as_binary::<i32>().clone(),
                    ts: pick(&chunk.ts)?.as_primitive::<UInt64Type>().clone(),
                    deleted: pick(&chunk.deleted)?.as_boolean().clone(),
                };
                chunks.push(Arc::new(Chunk::new(table_id, arrays, segments)?));
            }
            self.stable_rows = chunks.iter().map(|c| c.len()).sum();
            self.stable = Arc::new(chunks);
        }
        Ok(())
    }

    /// The stable run, for a checkpoint.
    pub fn stable_chunks(&self) -> Arc<Vec<Arc<Chunk>>> {
        Arc::clone(&self.stable)
    }

    /// Installs a stable run loaded from a checkpoint (the table holds no
    /// delta yet).
    pub fn load_stable(&mut self, chunks: Vec<Arc<Chunk>>) {
        self.stable_rows = chunks.iter().map(|c| c.len()).sum();
        self.stable = Arc::new(chunks);
    }
}

/// What one compaction reads: the stable run and the frozen deltas. The
/// new run reuses every chunk of the old one that no delta version falls
/// in (and is at least half full); the rest is merged and rewritten.
pub(crate) struct CompactionInput {
    pub codec: Arc<dyn TableCodec>,
    stable: Arc<Vec<Arc<Chunk>>>,
    /// Oldest first.
    deltas: Vec<Arc<Delta>>,
}

/// The versions a delta holds and the memory they take.
fn delta_size(delta: &Delta) -> (usize, usize) {
    delta.iter().fold((0, 0), |(n, b), (key, versions)| {
        (
            n + versions.len(),
            b + versions
                .iter()
                .map(|v| version_bytes(key, v))
                .sum::<usize>(),
        )
    })
}

fn internal(e: String) -> Error {
    Error::Internal(e)
}

/// A stored value with no columns: decodes to every column's default.
fn empty_row() -> Vec<u8> {
    duet_storage::codec::row::encode_row(&[]).unwrap_or_default()
}

/// `chunk` (shaped by `old`) in the shape of `new`.
fn reshape(
    chunk: &Chunk,
    old: &dyn TableCodec,
    new: &dyn TableCodec,
    segments: Option<&SegmentDir>,
) -> Result<Chunk> {
    let old_ids = old.column_ids();
    let n = chunk.len();
    let defaults = new.decode(&empty_row()).map_err(internal)?;
    let default_batch = new.to_batch(&vec![defaults; n.max(1)]).map_err(internal)?;
    let schema = new.schema();
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (i, (id, field)) in new.column_ids().iter().zip(schema.fields()).enumerate() {
        let column = match old_ids.iter().position(|o| o == id) {
            Some(o) if chunk.columns[o].data_type() == field.data_type() => {
                Arc::clone(&chunk.columns[o])
            }
            Some(o) => cast(&chunk.columns[o], field.data_type())?,
            None => default_batch.column(i).slice(0, n),
        };
        columns.push(column);
    }
    let arrays = ChunkArrays {
        columns,
        keys: chunk.keys.clone(),
        ts: chunk.ts.clone(),
        deleted: chunk.deleted.clone(),
    };
    Chunk::new(new.table_id(), arrays, segments)
}

/// Min and max of an array's non-null values.
fn min_max(array: &ArrayRef) -> Result<Option<(ScalarValue, ScalarValue)>> {
    use datafusion::functions_aggregate::min_max::{MaxAccumulator, MinAccumulator};
    if array.null_count() == array.len() {
        return Ok(None);
    }
    let ty = array.data_type();
    let df = |e: datafusion::error::DataFusionError| Error::Internal(e.to_string());
    let mut min = MinAccumulator::try_new(ty).map_err(df)?;
    let mut max = MaxAccumulator::try_new(ty).map_err(df)?;
    min.update_batch(std::slice::from_ref(array)).map_err(df)?;
    max.update_batch(std::slice::from_ref(array)).map_err(df)?;
    Ok(Some((
        min.evaluate().map_err(df)?,
        max.evaluate().map_err(df)?,
    )))
}

/// The newest version at or below `read_ts` of every key the deltas hold
/// one for (newest delta first): `Some(value)` or `None` for a delete.
fn winners(deltas: &[Arc<Delta>], read_ts: u64) -> BTreeMap<&[u8], Option<&Arc<[u8]>>> {
    let mut out: BTreeMap<&[u8], Option<&Arc<[u8]>>> = BTreeMap::new();
    for delta in deltas {
        for (key, versions) in delta.iter() {
            if out.contains_key(key.as_slice()) {
                continue;
            }
            if let Some(v) = versions.iter().rev().find(|v| v.commit_ts <= read_ts) {
                out.insert(key.as_slice(), v.value.as_ref());
            }
        }
    }
    out
}

/// Where an output row comes from: (source, row). Source 0 is the decoded
/// delta rows, 1 a single row of nulls, 2.. the chunks read.
type Pick = (usize, usize);

const DELTA: usize = 0;
const NULLS: usize = 1;

impl TableSnapshot {
    /// The rows visible at `request.read_ts`, in row-key order.
    pub fn scan(&self, request: &ScanRequest) -> Result<ScanOutput> {
        let schema = self.codec.schema();
        let read_ts = request.read_ts;
        let limit = request.limit.unwrap_or(usize::MAX);
        let mut winners = winners(&self.deltas, read_ts);
        winners.retain(|k, _| request.wants(k));
        let mut delta_rows: Vec<Vec<Datum>> = Vec::new();
        let mut picks: Vec<Pick> = Vec::new();
        let mut chunks_read: Vec<&Arc<Chunk>> = Vec::new();
        let mut pruned = 0;
        let mut pending = winners.iter().peekable();
        let mut take_delta = |value: &Arc<[u8]>, picks: &mut Vec<Pick>| -> Result<()> {
            delta_rows.push(self.codec.decode(value).map_err(internal)?);
            picks.push((DELTA, delta_rows.len() - 1));
            Ok(())
        };
        'chunks: for chunk in self.stable.iter() {
            if picks.len() >= limit {
                break;
            }
            let first_key = if chunk.len() > 0 {
                chunk.keys.value(0)
            } else {
                &[][..]
            };
            if !request.may_hold(first_key, &chunk.max_key)
                || !chunk.may_match(&schema, &request.filters)
            {
                pruned += 1;
                // Its keys' newer versions in the deltas still count.
                while let Some((_, v)) = pending.next_if(|(k, _)| **k <= chunk.max_key.as_slice()) {
                    if let Some(v) = v {
                        take_delta(v, &mut picks)?;
                    }
                }
                continue;
            }
            let source = chunks_read.len() + 2;
            chunks_read.push(chunk);
            let n = chunk.len();
            let mut i = 0;
            while i < n {
                if picks.len() >= limit {
                    break 'chunks;
                }
                let key = chunk.keys.value(i);
                let mut end = i + 1;
                while end < n && chunk.keys.value(end) == key {
                    end += 1;
                }
                if !request.wants(key) {
                    i = end;
                    continue;
                }
                while let Some((_, v)) = pending.next_if(|(k, _)| **k < key) {
                    if let Some(v) = v {
                        take_delta(v, &mut picks)?;
                    }
                }
                if let Some((_, v)) = pending.next_if(|(k, _)| **k == key) {
                    if let Some(v) = v {
                        take_delta(v, &mut picks)?;
                    }
                } else if let Some(r) = (i..end).find(|&r| chunk.ts.value(r) <= read_ts)
                    && !chunk.deleted.value(r)
                {
                    picks.push((source, r));
                }
                i = end;
            }
        }
        for (_, v) in pending {
            if picks.len() >= limit {
                break;
            }
            if let Some(v) = v {
                take_delta(v, &mut picks)?;
            }
        }
        picks.truncate(limit);

        let projection: Vec<usize> = request
            .projection
            .clone()
            .unwrap_or_else(|| (0..schema.fields().len()).collect());
        let out_schema = Arc::new(schema.project(&projection)?);
        let delta_batch = self.codec.to_batch(&delta_rows).map_err(internal)?;
        let columns = projection
            .iter()
            .map(|&c| {
                let mut sources = vec![
                    Arc::clone(delta_batch.column(c)),
                    new_null_array(schema.field(c).data_type(), 1),
                ];
                sources.extend(chunks_read.iter().map(|ch| Arc::clone(&ch.columns[c])));
                sources
            })
            .collect();
        let rows = picks.len();
        let bounds: Vec<std::ops::Range<usize>> = split(rows, request.partitions.max(1));
        let picked = Arc::new(Picked {
            schema: Arc::clone(&out_schema),
            columns,
            picks,
        });
        Ok(ScanOutput {
            schema: out_schema,
            partitions: bounds
                .into_iter()
                .map(|range| ScanPart {
                    picked: Arc::clone(&picked),
                    range,
                })
                .collect(),
            rows,
            chunks_read: chunks_read.len(),
            chunks_pruned: pruned,
        })
    }
}

/// `rows` rows in `n` contiguous parts (one if there are few rows).
fn split(rows: usize, n: usize) -> Vec<std::ops::Range<usize>> {
    const MIN_PART: usize = 8192;
    let n = n.min(rows / MIN_PART).max(1);
    let size = rows.div_ceil(n).max(1);
    let mut parts: Vec<std::ops::Range<usize>> = (0..rows)
        .step_by(size)
        .map(|start| start..(start + size).min(rows))
        .collect();
    if parts.is_empty() {
        parts.push(0..0);
    }
    parts
}

impl CompactionInput {
    /// The merged stable run: every version newer than `safe_point`, and
    /// the newest at or below it unless that is a delete.
    pub fn run(
        &self,
        safe_point: u64,
        config: &LayerConfig,
        segments: Option<&SegmentDir>,
    ) -> Result<Vec<Arc<Chunk>>> {
        // Every delta version per key, newest first.
        let mut delta: BTreeMap<&[u8], Vec<&Version>> = BTreeMap::new();
        for d in &self.deltas {
            for (key, versions) in d.iter() {
                delta
                    .entry(key.as_slice())
                    .or_default()
                    .extend(versions.iter());
            }
        }
        for versions in delta.values_mut() {
            versions.sort_by_key(|v| std::cmp::Reverse(v.commit_ts));
        }
        let mut builder = RunBuilder::new(
            self.codec.as_ref(),
            &self.stable,
            config.chunk_rows,
            segments,
        );
        let mut pending = delta.iter().peekable();
        for (ci, chunk) in self.stable.iter().enumerate() {
            // A chunk no delta version falls in is kept as it is (its file
            // too), unless it is small enough to be worth merging.
            let untouched = pending
                .peek()
                .is_none_or(|(k, _)| **k > chunk.max_key.as_slice());
            if untouched && chunk.len() * 2 >= config.chunk_rows {
                builder.flush()?;
                builder.out.push(Arc::clone(chunk));
                continue;
            }
            let n = chunk.len();
            let mut i = 0;
            while i < n {
                let key = chunk.keys.value(i);
                let mut end = i + 1;
                while end < n && chunk.keys.value(end) == key {
                    end += 1;
                }
                while let Some((k, versions)) = pending.next_if(|(k, _)| **k < key) {
                    builder.key(k, versions, safe_point)?;
                }
                let newer: &[&Version] = match pending.next_if(|(k, _)| **k == key) {
                    Some((_, v)) => v,
                    None => &[],
                };
                let old: Vec<(u64, bool, usize)> = (i..end)
                    .map(|r| (chunk.ts.value(r), chunk.deleted.value(r), r))
                    .collect();
                builder.key_with_stable(key, newer, ci, &old, safe_point)?;
                i = end;
            }
        }
        for (k, versions) in pending {
            builder.key(k, versions, safe_point)?;
        }
        builder.finish()
    }
}

/// Builds a sorted run chunk by chunk.
struct RunBuilder<'a> {
    codec: &'a dyn TableCodec,
    segments: Option<&'a SegmentDir>,
    stable: &'a [Arc<Chunk>],
    chunk_rows: usize,
    keys: BinaryBuilder,
    ts: UInt64Builder,
    deleted: BooleanBuilder,
    delta_rows: Vec<Vec<Datum>>,
    /// (source, row): 0 delta rows, 1 nulls, 2 + i stable chunk i.
    picks: Vec<Pick>,
    out: Vec<Arc<Chunk>>,
}

impl<'a> RunBuilder<'a> {
    fn new(
        codec: &'a dyn TableCodec,
        stable: &'a [Arc<Chunk>],
        chunk_rows: usize,
        segments: Option<&'a SegmentDir>,
    ) -> Self {
        RunBuilder {
            codec,
            segments,
            stable,
            chunk_rows: chunk_rows.max(1),
            keys: BinaryBuilder::new(),
            ts: UInt64Builder::new(),
            deleted: BooleanBuilder::new(),
            delta_rows: Vec::new(),
            picks: Vec::new(),
            out: Vec::new(),
        }
    }

    fn push(&mut self, key: &[u8], ts: u64, deleted: bool, pick: Pick) {
        self.keys.append_value(key);
        self.ts.append_value(ts);
        self.deleted.append_value(deleted);
        self.picks.push(pick);
    }

    /// A key's versions: `newer` from the deltas, then `old` (ts, deleted,
    /// row) from stable chunk `chunk`, both newest first.
    fn key_with_stable(
        &mut self,
        key: &[u8],
        newer: &[&Version],
        chunk: usize,
        old: &[(u64, bool, usize)],
        safe_point: u64,
    ) -> Result<()> {
        let mut kept_at_or_below = false;
        for v in newer {
            if kept_at_or_below {
                break;
            }
            if v.commit_ts <= safe_point {
                kept_at_or_below = true;
                if v.value.is_none() {
                    break;
                }
            }
            match &v.value {
                Some(value) => {
                    self.delta_rows
                        .push(self.codec.decode(value).map_err(internal)?);
                    let row = self.delta_rows.len() - 1;
                    self.push(key, v.commit_ts, false, (DELTA, row));
                }
                None => self.push(key, v.commit_ts, true, (NULLS, 0)),
            }
        }
        for &(ts, deleted, row) in old {
            if kept_at_or_below {
                break;
            }
            if ts <= safe_point {
                kept_at_or_below = true;
                if deleted {
                    break;
                }
            }
            if deleted {
                self.push(key, ts, true, (NULLS, 0));
            } else {
                self.push(key, ts, false, (2 + chunk, row));
            }
        }
        if self.picks.len() >= self.chunk_rows {
            self.flush()?;
        }
        Ok(())
    }

    /// A key only the deltas hold.
    fn key(&mut self, key: &[u8], newer: &[&Version], safe_point: u64) -> Result<()> {
        self.key_with_stable(key, newer, 0, &[], safe_point)
    }

    fn flush(&mut self) -> Result<()> {
        if self.picks.is_empty() {
            return Ok(());
        }
        let schema = self.codec.schema();
        let delta = self
            .codec
            .to_batch(&std::mem::take(&mut self.delta_rows))
            .map_err(internal)?;
        let columns = (0..schema.fields().len())
            .map(|c| {
                let ty: &DataType = schema.field(c).data_type();
                let nulls = new_null_array(ty, 1);
                let mut sources: Vec<&dyn Array> = vec![delta.column(c).as_ref(), nulls.as_ref()];
                sources.extend(self.stable.iter().map(|ch| ch.columns[c].as_ref()));
                Ok(interleave(&sources, &self.picks)?)
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        let arrays = ChunkArrays {
            columns,
            keys: self.keys.finish(),
            ts: self.ts.finish(),
            deleted: self.deleted.finish(),
        };
        self.out.push(Arc::new(Chunk::new(
            self.codec.table_id(),
            arrays,
            self.segments,
        )?));
        self.picks.clear();
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<Arc<Chunk>>> {
        self.flush()?;
        Ok(self.out)
    }
}
