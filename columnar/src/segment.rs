//! Stable chunks on disk. Each chunk a compaction produces is written as one
//! Arrow IPC file under the replica's directory and read back through a
//! memory map without copying, so the stable layer lives in the page cache
//! rather than the heap: the kernel keeps what scans touch and drops what
//! they do not.
//!
//! A file is removed when the last chunk mapping it is dropped (a newer run
//! replaced it and no scan still reads it), unless a checkpoint
//! ([`SegmentFile::keep`]) listed it in the manifest a restart loads.
//! Files are not synced as they are written: only a checkpoint, which syncs
//! the files it lists before its manifest, makes them part of the durable
//! state.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use datafusion::arrow::array::{ArrayRef, BinaryArray, BooleanArray, UInt64Array};
use datafusion::arrow::buffer::Buffer;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::ipc::convert::fb_to_schema;
use datafusion::arrow::ipc::reader::{FileDecoder, read_footer_length};
use datafusion::arrow::ipc::root_as_footer;
use datafusion::arrow::ipc::writer::FileWriter;
use datafusion::arrow::record_batch::RecordBatch;

use datafusion::scalar::ScalarValue;

use crate::error::{Error, Result};

/// Per column of a chunk: the min and max of its values, if it has any.
pub(crate) type ColumnStats = Vec<Option<(ScalarValue, ScalarValue)>>;

/// A chunk's arrays: the table's columns, then each version's row key,
/// commit timestamp and delete mark.
pub(crate) struct ChunkArrays {
    pub columns: Vec<ArrayRef>,
    pub keys: BinaryArray,
    pub ts: UInt64Array,
    pub deleted: BooleanArray,
}

/// One segment file; removed when dropped unless kept.
#[derive(Debug)]
pub(crate) struct SegmentFile {
    path: PathBuf,
    keep: AtomicBool,
}

impl SegmentFile {
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Keeps the file past its last reader (a checkpoint lists it); the
    /// first call syncs it.
    pub fn keep(&self) -> std::io::Result<()> {
        if !self.keep.load(Ordering::SeqCst) {
            File::open(&self.path)?.sync_all()?;
            self.keep.store(true, Ordering::SeqCst);
        }
        Ok(())
    }
}

impl Drop for SegmentFile {
    fn drop(&mut self) {
        if !self.keep.load(Ordering::SeqCst) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The directory of a replica's segment files.
#[derive(Debug)]
pub(crate) struct SegmentDir {
    dir: PathBuf,
    next: AtomicU64,
}

fn io(context: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Internal(format!("{context} {}: {e}", path.display()))
}

impl SegmentDir {
    /// Opens (creating) `dir`; new files are numbered past every existing one.
    pub fn open(dir: &Path) -> Result<SegmentDir> {
        std::fs::create_dir_all(dir).map_err(|e| io("creating", dir, e))?;
        let mut next = 0;
        for entry in std::fs::read_dir(dir).map_err(|e| io("listing", dir, e))? {
            let entry = entry.map_err(|e| io("listing", dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(n) = segment_number(&name).or_else(|| pending_number(&name)) {
                next = next.max(n + 1);
            }
        }
        Ok(SegmentDir {
            dir: dir.to_path_buf(),
            next: AtomicU64::new(next),
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes `arrays` as a new segment of `table_id`, with each column's
    /// min and max (`stats`) in a second batch of two rows, and maps it
    /// back: the returned arrays share the file's pages, not the heap.
    pub fn write(
        &self,
        table_id: i64,
        arrays: &ChunkArrays,
        stats: &ColumnStats,
    ) -> Result<(Arc<SegmentFile>, ChunkArrays)> {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let path = self.dir.join(format!("t{table_id}-{n:010}.arrow"));
        let file = Arc::new(SegmentFile {
            path: path.clone(),
            keep: AtomicBool::new(false),
        });
        let mut fields: Vec<Field> = arrays
            .columns
            .iter()
            .enumerate()
            .map(|(i, a)| Field::new(format!("c{i}"), a.data_type().clone(), true))
            .collect();
        fields.push(Field::new("key", DataType::Binary, false));
        fields.push(Field::new("ts", DataType::UInt64, false));
        fields.push(Field::new("deleted", DataType::Boolean, false));
        let mut columns = arrays.columns.clone();
        columns.push(Arc::new(arrays.keys.clone()));
        columns.push(Arc::new(arrays.ts.clone()));
        columns.push(Arc::new(arrays.deleted.clone()));
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
        let mut bounds: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
        for (column, stat) in arrays.columns.iter().zip(stats) {
            bounds.push(match stat {
                Some((min, max)) => ScalarValue::iter_to_array([min.clone(), max.clone()])
                    .map_err(|e| Error::Internal(e.to_string()))?,
                None => datafusion::arrow::array::new_null_array(column.data_type(), 2),
            });
        }
        bounds.push(Arc::new(BinaryArray::from_vec(vec![b"", b""])));
        bounds.push(Arc::new(UInt64Array::from(vec![0, 0])));
        bounds.push(Arc::new(BooleanArray::from(vec![false, false])));
        let bounds = RecordBatch::try_new(schema, bounds)?;
        let out = File::create(&path).map_err(|e| io("creating", &path, e))?;
        let mut writer = FileWriter::try_new(BufWriter::new(out), &batch.schema())?;
        writer.write(&batch)?;
        writer.write(&bounds)?;
        writer.finish()?;
        drop(writer);
        let (mapped, _) = read(&path)?;
        Ok((file, mapped))
    }

    /// Takes an existing file of this directory under management; it is
    /// kept (the checkpoint it came from still lists it). Returns its
    /// arrays and the min/max it stores (none in a file without them).
    pub fn adopt(
        &self,
        name: &str,
    ) -> Result<(Arc<SegmentFile>, ChunkArrays, Option<ColumnStats>)> {
        let path = self.dir.join(name);
        let (arrays, stats) = read(&path)?;
        Ok((
            Arc::new(SegmentFile {
                path,
                keep: AtomicBool::new(true),
            }),
            arrays,
            stats,
        ))
    }

    /// Writes and syncs a checkpoint's file of locks and staged values;
    /// returns its name.
    pub fn write_pending(&self, bytes: &[u8]) -> Result<String> {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let name = format!("pending-{n:010}.pb");
        let path = self.dir.join(&name);
        let mut f = File::create(&path).map_err(|e| io("creating", &path, e))?;
        std::io::Write::write_all(&mut f, bytes).map_err(|e| io("writing", &path, e))?;
        f.sync_all().map_err(|e| io("syncing", &path, e))?;
        Ok(name)
    }

    /// Reads a file of this directory whole.
    pub fn read_file(&self, name: &str) -> Result<Vec<u8>> {
        let path = self.dir.join(name);
        std::fs::read(&path).map_err(|e| io("reading", &path, e))
    }

    /// Removes a file a checkpoint no longer lists (mapped chunks of it
    /// stay readable).
    pub fn remove(&self, name: &str) {
        let _ = std::fs::remove_file(self.dir.join(name));
    }

    /// Removes every segment or pending file not named in `keep`.
    pub fn remove_others(&self, keep: &std::collections::HashSet<String>) -> Result<()> {
        for entry in std::fs::read_dir(&self.dir).map_err(|e| io("listing", &self.dir, e))? {
            let entry = entry.map_err(|e| io("listing", &self.dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let managed = segment_number(&name).is_some() || pending_number(&name).is_some();
            if managed && !keep.contains(&name) {
                std::fs::remove_file(entry.path()).map_err(|e| io("removing", &entry.path(), e))?;
            }
        }
        Ok(())
    }
}

/// The number of a checkpoint's pending file (`pending-<number>.pb`).
fn pending_number(name: &str) -> Option<u64> {
    name.strip_prefix("pending-")?
        .strip_suffix(".pb")?
        .parse()
        .ok()
}

/// The number of a segment file's name (`t<table>-<number>.arrow`).
fn segment_number(name: &str) -> Option<u64> {
    let rest = name.strip_prefix('t')?.strip_suffix(".arrow")?;
    let (_, n) = rest.rsplit_once('-')?;
    n.parse().ok()
}

/// Maps a segment file and decodes its data batch without copying, and
/// its min/max batch if it has one.
#[allow(unsafe_code)] // mapping a file is unsafe; see the SAFETY note
fn read(path: &Path) -> Result<(ChunkArrays, Option<ColumnStats>)> {
    let file = File::open(path).map_err(|e| io("opening", path, e))?;
    // SAFETY: segment files are written once, before they are mapped, and
    // never modified; only this process touches the directory.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| io("mapping", path, e))?;
    let buffer = Buffer::from(bytes::Bytes::from_owner(map));
    let corrupt = |what: &str| Error::Internal(format!("segment {}: {what}", path.display()));
    if buffer.len() < 10 {
        return Err(corrupt("too short"));
    }
    let trailer = buffer.len() - 10;
    let footer_len = read_footer_length(
        buffer[trailer..]
            .try_into()
            .map_err(|_| corrupt("bad trailer"))?,
    )?;
    let footer = root_as_footer(
        buffer
            .get(trailer.saturating_sub(footer_len)..trailer)
            .ok_or_else(|| corrupt("bad footer length"))?,
    )
    .map_err(|e| corrupt(&e.to_string()))?;
    let schema = fb_to_schema(footer.schema().ok_or_else(|| corrupt("no schema"))?);
    let decoder = FileDecoder::new(Arc::new(schema), footer.version());
    let blocks = footer
        .recordBatches()
        .filter(|b| b.len() == 1 || b.len() == 2)
        .ok_or_else(|| corrupt("not one or two batches"))?;
    let batch_at = |i: usize| -> Result<RecordBatch> {
        let block = blocks.get(i);
        let len = block.bodyLength() as usize + block.metaDataLength() as usize;
        if block.offset() < 0 || block.offset() as usize + len > buffer.len() {
            return Err(corrupt("batch out of bounds"));
        }
        let data = buffer.slice_with_length(block.offset() as usize, len);
        decoder
            .read_record_batch(block, &data)?
            .ok_or_else(|| corrupt("empty"))
    };
    let batch = batch_at(0)?;
    let stats = if blocks.len() == 2 {
        let bounds = batch_at(1)?;
        let n = bounds.num_columns().saturating_sub(3);
        let mut stats = Vec::with_capacity(n);
        for column in &bounds.columns()[..n] {
            if column.len() != 2 {
                return Err(corrupt("min/max batch is not two rows"));
            }
            let at =
                |i| ScalarValue::try_from_array(column, i).map_err(|e| corrupt(&e.to_string()));
            stats.push(if column.is_null(0) {
                None
            } else {
                Some((at(0)?, at(1)?))
            });
        }
        Some(stats)
    } else {
        None
    };
    let n = batch.num_columns();
    if n < 3 {
        return Err(corrupt("missing version columns"));
    }
    let typed = |i: usize| batch.column(i).clone();
    use datafusion::arrow::array::AsArray;
    let keys = typed(n - 3)
        .as_binary_opt::<i32>()
        .cloned()
        .ok_or_else(|| corrupt("keys are not binary"))?;
    let ts = typed(n - 2)
        .as_primitive_opt::<datafusion::arrow::datatypes::UInt64Type>()
        .cloned()
        .ok_or_else(|| corrupt("timestamps are not u64"))?;
    let deleted = typed(n - 1)
        .as_boolean_opt()
        .cloned()
        .ok_or_else(|| corrupt("delete marks are not booleans"))?;
    Ok((
        ChunkArrays {
            columns: batch.columns()[..n - 3].to_vec(),
            keys,
            ts,
            deleted,
        },
        stats,
    ))
}
