//! The learner state machine: it consumes, in log order, the MVCC effects
//! of every command the node's learner peers apply (see
//! [`crate::learner`]) and keeps each table's columnar copy.
//!
//! A command's effects are the row store's own writes for it: a lock put
//! by a prewrite, a long value staged beside it, then a commit record that
//! makes the version visible at its commit timestamp, or a rollback that
//! drops it. Reading the effects rather than re-running the commands means
//! the replica and the row store can never disagree on what a command did.
//!
//! The [`crate::Learner`] does this work on a thread of its own, behind
//! the learner peers' apply. A scan first obtains a read index from each
//! region's leader through the learner peers ([`ReadPoint`]) and waits
//! (bounded by [`LayerConfig::read_wait`]) until the replica applied that
//! far, so it never reads stale data.
//!
//! Where the log alone cannot build the copy — the first start, a
//! checkpoint the learner's log no longer reaches, a learner peer caught up
//! by a Raft snapshot, a table that just got a replica — the replica reads
//! the node's own row store instead, once that has applied at least as far
//! as the learner, and notes per region (or per table and region) the index
//! up to which the row store's copy already holds the learner's entries:
//! those entries are skipped when they arrive.
//!
//! An entry the learner cannot decode stops it with a precise error; its
//! tables are then unavailable and queries go to the row store.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use duet_storage::codec::key::row_key_table;
use duet_storage::engine::{Cf, EngineIterator, IterOptions, Modify, Snapshot};
use duet_storage::mvcc::{
    Lock, LockKind, Write, WriteKind, append_ts, decode_key, encode_key, physical_ms, split_ts,
};
use duet_storage::txn::commands::Effects;
use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};

use crate::error::{Error, Result};
use crate::schema::{SchemaChange, SchemaSource};
use crate::segment::SegmentDir;
use crate::table::{Chunk, LayerConfig, ScanOutput, ScanRequest, TableState, Version};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the learner keeps besides the tables.
#[derive(Default)]
struct LearnerState {
    /// Long values staged by prewrites, by (row key, start ts), until
    /// their commit or rollback.
    pending: HashMap<(Vec<u8>, u64), Vec<u8>>,
    /// Metadata key → the table it defines, and the definition itself.
    definitions: HashMap<Vec<u8>, (i64, Vec<u8>)>,
    /// Applied index per region.
    applied: HashMap<u64, u64>,
    /// Per region, the index through which the replica already holds every
    /// entry (copied from the row store at a later position than the
    /// learner's): entries up to it are skipped.
    skip: HashMap<u64, u64>,
    /// The same for one table's rows: (table, region) → index.
    skip_table: HashMap<(i64, u64), u64>,
    /// Whether the copy must be rebuilt from the row store before anything
    /// applies (no usable checkpoint at start).
    needs_rebuild: bool,
    /// Why the learner stopped, if it did.
    stopped: Option<String>,
    /// Per applied command that made rows visible: the time from its
    /// commit timestamp to now, until `take_visibility_delays` drains them.
    visible: Vec<Duration>,
}

/// Entries handed to the learner and entries it has applied, counted
/// since the replica was made.
#[derive(Debug, Default)]
struct Progress {
    queued: u64,
    done: u64,
    /// When each entry not applied yet was handed over, oldest first.
    waiting: std::collections::VecDeque<Instant>,
}

/// Visibility samples kept between two drains; later ones are dropped.
const MAX_VISIBILITY_SAMPLES: usize = 65_536;

/// One table's replica, as `information_schema` shows it.
#[derive(Debug, Clone)]
pub struct TableStatus {
    pub table_id: i64,
    pub available: bool,
    /// Rows visible now (`None` if they cannot be counted).
    pub rows: Option<usize>,
    /// Versions held (an upper bound of the rows).
    pub versions: usize,
    pub delta_versions: usize,
    /// Memory the delta takes, approximately.
    pub delta_bytes: usize,
    pub chunks: usize,
    /// Log entries the replica has yet to apply to reach what the node's
    /// row store has applied, over all regions (`None` if unknown).
    pub lag: Option<u64>,
    /// How long the oldest entry the learner peers applied has waited for
    /// the replica (zero when none waits).
    pub seconds_behind: f64,
}

/// The columnar copies of every table this node replicates.
pub struct Replica {
    schemas: Arc<dyn SchemaSource>,
    config: LayerConfig,
    tables: RwLock<HashMap<i64, Arc<Mutex<TableState>>>>,
    state: Mutex<LearnerState>,
    /// One compaction at a time.
    compacting: Mutex<()>,
    progress: Mutex<Progress>,
    /// Signalled each time the learner applies an entry.
    caught_up: Condvar,
    /// Where stable chunks live, if on disk.
    segments: Option<SegmentDir>,
    /// The safe point of the last compaction (a checkpoint compacts to it).
    safe_point: AtomicU64,
    /// Whether this replica started from a checkpoint.
    from_checkpoint: bool,
    /// Log entries replayed on top of the checkpoint at start.
    replayed: u64,
    /// What the last durable checkpoint lists.
    durable: Mutex<Durable>,
    /// Where reads learn how far the learner must have applied.
    read_point: RwLock<Option<Arc<dyn ReadPoint>>>,
}

/// How a read makes the replica current: it obtains a read index from each
/// region's leader through the node's learner peers and returns once they
/// have applied that far (the replica then waits for its own queue).
pub trait ReadPoint: Send + Sync {
    fn catch_up(&self, wait: Duration) -> Result<()>;
    /// Log entries the replica has yet to apply to reach what the node's
    /// row store has applied, over all regions.
    fn lag(&self) -> Option<u64>;
}

/// What a start replays of one region: the region, the applied index to
/// reach, and the writes of each entry up to there.
type Replay = (u64, u64, Vec<(u64, Vec<Modify>)>);

/// The files and applied indices of the checkpoint a restart would load.
#[derive(Debug, Default)]
struct Durable {
    files: HashSet<String>,
    applied: HashMap<u64, u64>,
}

/// What a checkpoint leaves for the next start: the learner's applied
/// index per region, each table's stable run (the delta is empty), and the
/// locks and staged values of the transactions in flight at that point.
/// A start loads it and replays the log entries applied since.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    applied: BTreeMap<u64, u64>,
    tables: BTreeMap<i64, TableManifest>,
    /// The file of locks and staged values (the writes of a storage
    /// `Effects`).
    #[serde(default)]
    pending: Option<String>,
    /// The table definitions in force at the checkpoint (metadata key and
    /// value, hex): the log replays later definition changes onto them.
    /// Absent from older checkpoints, which take the row store's current
    /// definitions and cannot replay a change.
    #[serde(default)]
    definitions: Option<Vec<(String, String)>>,
    /// Per region, the index through which the copy holds the entries
    /// although `applied` is lower (see `LearnerState::skip`).
    #[serde(default)]
    skip: BTreeMap<u64, u64>,
    /// The same per table: (table, region, index).
    #[serde(default)]
    skip_table: Vec<(i64, u64, u64)>,
}

impl Manifest {
    fn files(&self) -> HashSet<String> {
        self.tables
            .values()
            .flat_map(|t| t.segments.iter().cloned())
            .chain(self.pending.clone())
            .collect()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct TableManifest {
    /// The definition the segments were written under.
    column_ids: Vec<u32>,
    /// Segment file names, in key order.
    segments: Vec<String>,
}

const MANIFEST: &str = "MANIFEST.json";

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica").finish_non_exhaustive()
    }
}

impl Replica {
    pub fn new(schemas: Arc<dyn SchemaSource>, config: LayerConfig) -> Self {
        Replica {
            schemas,
            config,
            tables: RwLock::new(HashMap::new()),
            state: Mutex::new(LearnerState::default()),
            compacting: Mutex::new(()),
            progress: Mutex::new(Progress::default()),
            caught_up: Condvar::new(),
            segments: None,
            safe_point: AtomicU64::new(0),
            from_checkpoint: false,
            replayed: 0,
            durable: Mutex::new(Durable::default()),
            read_point: RwLock::new(None),
        }
    }

    /// Sets where reads obtain their read index (the learner peers).
    pub fn set_read_point(&self, point: Arc<dyn ReadPoint>) {
        *self.read_point.write().unwrap_or_else(|e| e.into_inner()) = Some(point);
    }

    /// Makes the replica current for a read that begins now: a read index
    /// through the learner peers, then the replica's own queue; within
    /// `read_wait` in all.
    pub fn catch_up(&self) -> Result<()> {
        let start = Instant::now();
        let point = self
            .read_point
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(point) = point {
            point.catch_up(self.config.read_wait)?;
        }
        self.wait_caught_up(self.config.read_wait.saturating_sub(start.elapsed()))
    }

    /// A replica keeping its stable chunks under `dir`, starting from the
    /// checkpoint there and replaying the learner's own log (in `snap`, the
    /// learner peers' engine) from the checkpoint's applied indices to the
    /// learner's. When that cannot be done (no checkpoint, the log was
    /// compacted past it, or a table got a replica since) the replica
    /// starts empty at the learner's positions and must be rebuilt from the
    /// row store before it applies anything (see
    /// [`needs_rebuild`](Self::needs_rebuild)).
    pub fn open<S: Snapshot>(
        schemas: Arc<dyn SchemaSource>,
        config: LayerConfig,
        dir: &Path,
        snap: &S,
    ) -> Result<Replica> {
        let fresh = || -> Result<Replica> {
            Ok(Replica {
                segments: Some(SegmentDir::open(dir)?),
                ..Replica::new(Arc::clone(&schemas), config.clone())
            })
        };
        let mut replica = fresh()?;
        let path = dir.join(MANIFEST);
        let manifest: Option<Manifest> = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(m) => Some(m),
                Err(e) => {
                    warn!(error = %e, "columnar checkpoint manifest unreadable; rebuilding");
                    None
                }
            },
            Err(_) => None,
        };
        let applied = applied_indices(snap)?;
        if let Some(m) = manifest {
            match replica.load(snap, &m, &applied) {
                Ok(replayed) => {
                    info!(
                        tables = m.tables.len(),
                        replayed, "columnar replica loaded from its checkpoint"
                    );
                    replica.from_checkpoint = true;
                    replica.replayed = replayed;
                    return Ok(replica);
                }
                Err(e) => {
                    warn!(error = %e, "columnar checkpoint unusable; rebuilding");
                    replica = fresh()?;
                }
            }
        }
        let _ = std::fs::remove_file(&path);
        if let Some(dir) = &replica.segments {
            dir.remove_others(&HashSet::new())?;
        }
        {
            let mut state = lock(&replica.state);
            state.applied = applied;
            state.needs_rebuild = true;
        }
        Ok(replica)
    }

    /// Whether the copy must be rebuilt from the row store before the
    /// learner applies anything.
    pub fn needs_rebuild(&self) -> bool {
        lock(&self.state).needs_rebuild
    }

    /// How many log entries the start replayed on top of the checkpoint.
    pub fn replayed(&self) -> u64 {
        self.replayed
    }

    /// The applied index of `region_id` that the last durable checkpoint
    /// holds: a restart replays the region's log from there.
    pub fn durable_index(&self, region_id: u64) -> Option<u64> {
        let durable = lock(&self.durable);
        if durable.files.is_empty() {
            return None;
        }
        // A region the checkpoint does not know (split off since) replays
        // from its first entry.
        Some(
            durable
                .applied
                .get(&region_id)
                .copied()
                .unwrap_or(duet_raft::storage::INIT_INDEX),
        )
    }

    /// Whether this replica started from a checkpoint (rather than from
    /// the row store's data).
    pub fn from_checkpoint(&self) -> bool {
        self.from_checkpoint
    }

    /// Installs checkpoint `m` (its definitions; stable runs from the
    /// segment files; locks and staged values from its pending file), then
    /// replays each region's log from the checkpoint's applied index to the
    /// learner's (`row_applied`, read from the learner's engine). Returns
    /// the number of entries replayed.
    fn load<S: Snapshot>(
        &self,
        snap: &S,
        m: &Manifest,
        row_applied: &HashMap<u64, u64>,
    ) -> Result<u64> {
        let Some(dir) = &self.segments else {
            return Ok(0);
        };
        let replay = self.replay_plan(snap, m, row_applied)?;
        match &m.definitions {
            Some(definitions) => self.install_definitions(definitions)?,
            None => {
                return Err(Error::Internal(
                    "a checkpoint without definitions (written by an older version)".into(),
                ));
            }
        }
        let mut keep = HashSet::new();
        for (id, tm) in &m.tables {
            let table = self.existing(*id).ok_or_else(|| {
                Error::Internal(format!("table {id} of the checkpoint is not defined"))
            })?;
            let mut t = lock(&table);
            let width = match &t.codec {
                Some(c) if c.column_ids() == tm.column_ids => c.schema().fields().len(),
                _ => {
                    return Err(Error::Internal(format!(
                        "table {id} changed definition since the checkpoint"
                    )));
                }
            };
            let mut chunks = Vec::with_capacity(tm.segments.len());
            for name in &tm.segments {
                let (file, arrays, stats) = dir.adopt(name)?;
                let chunk = Chunk::from_arrays(arrays, Some(file), stats)?;
                if chunk.column_count() != width {
                    return Err(Error::Internal(format!(
                        "segment {name} has the wrong width"
                    )));
                }
                chunks.push(Arc::new(chunk));
                keep.insert(name.clone());
            }
            t.load_stable(chunks);
        }
        if let Some(name) = &m.pending {
            let (writes, _) = Effects::from_bytes(&dir.read_file(name)?)
                .and_then(Effects::into_parts)
                .map_err(|e| Error::Internal(format!("pending file {name}: {e}")))?;
            self.apply_writes(&writes.modifies)?;
            keep.insert(name.clone());
        }
        dir.remove_others(&keep)?;
        {
            let mut state = lock(&self.state);
            state.applied = m.applied.iter().map(|(r, i)| (*r, *i)).collect();
            state.skip = m.skip.iter().map(|(r, i)| (*r, *i)).collect();
            state.skip_table = m
                .skip_table
                .iter()
                .map(|(t, r, i)| ((*t, *r), *i))
                .collect();
            // The learner is behind the checkpoint there: the copy already
            // holds what it applies next.
            for (region, at) in &m.applied {
                if row_applied.get(region).is_some_and(|l| l < at) {
                    let skip = state.skip.entry(*region).or_default();
                    *skip = (*skip).max(*at);
                }
            }
        }
        let mut replayed = 0;
        for (region, upto, entries) in replay {
            for (index, writes) in &entries {
                // A table that got a replica since (created, or given one)
                // would need its earlier rows from the row store.
                if !self.apply_entry(region, *index, writes)?.is_empty() {
                    return Err(Error::Internal(
                        "a table got a columnar replica since the checkpoint".into(),
                    ));
                }
            }
            replayed += entries.len() as u64;
            lock(&self.state).applied.insert(region, upto);
        }
        let mut state = lock(&self.state);
        if let Some(why) = &state.stopped {
            return Err(Error::Internal(why.clone()));
        }
        // Replayed commits are not fresh: their delays would mislead.
        state.visible.clear();
        *lock(&self.durable) = Durable {
            files: m.files(),
            applied: m.applied.iter().map(|(r, i)| (*r, *i)).collect(),
        };
        Ok(replayed)
    }

    /// Defines the tables as checkpoint definitions (hex key, hex value)
    /// say.
    fn install_definitions(&self, definitions: &[(String, String)]) -> Result<()> {
        let mut state = lock(&self.state);
        let mut undefined = Vec::new();
        for (key, value) in definitions {
            let (Some(key), Some(value)) = (from_hex(key), from_hex(value)) else {
                return Err(Error::Internal("a checkpoint definition is not hex".into()));
            };
            self.commit_definition(&mut state, key, Some(value), &mut undefined)?;
        }
        Ok(())
    }

    /// The writes to replay after checkpoint `m`, per region in the order
    /// to replay them: `(region, applied index to reach, the writes of each
    /// entry up to there)`. Regions go in id order: ids come from the
    /// timestamp oracle, so a region split off another is replayed after
    /// it (a transaction may have prewritten a key in the parent and
    /// committed it in the new region). Fails if the log cannot replay them
    /// alone.
    fn replay_plan<S: Snapshot>(
        &self,
        snap: &S,
        m: &Manifest,
        row_applied: &HashMap<u64, u64>,
    ) -> Result<Vec<Replay>> {
        use duet_raft::peer::{Replay, applied_writes};
        let raft = |e: duet_raft::Error| Error::Internal(e.to_string());
        let mut regions: Vec<(u64, u64)> = row_applied.iter().map(|(r, i)| (*r, *i)).collect();
        regions.sort_unstable();
        let mut plan = Vec::new();
        for (region, upto) in regions {
            let from = m
                .applied
                .get(&region)
                .copied()
                .unwrap_or(duet_raft::storage::INIT_INDEX);
            // At or behind the checkpoint, the learner skips what it holds.
            if from >= upto {
                continue;
            }
            let unusable = |why: &str| {
                Err(Error::Internal(format!(
                    "region {region} (checkpoint at {from}, learner at {upto}): {why}"
                )))
            };
            let entries = match applied_writes(snap, region, from, upto).map_err(raft)? {
                Replay::Writes(entries) => entries,
                Replay::Compacted => return unusable("the log was compacted past the checkpoint"),
                Replay::Opaque => return unusable("an entry logged before effects were"),
            };
            plan.push((region, upto, entries));
        }
        Ok(plan)
    }

    /// Compacts every table into its stable run and records the runs, the
    /// locks and staged values, and the applied indices in a manifest the
    /// next start loads (replaying the log from there). Runs while entries
    /// apply: the learner waits only while the last of the delta is
    /// compacted and the manifest drawn up. Returns whether it wrote one
    /// (not for an in-memory or stopped replica, or a table it cannot
    /// compact).
    pub fn checkpoint(&self) -> Result<bool> {
        let Some(dir) = &self.segments else {
            return Ok(false);
        };
        if self.stopped().is_some() {
            return Ok(false);
        }
        // At a stop, the entries already handed over belong in it.
        let _ = self.wait_caught_up(self.config.read_wait);
        let safe_point = self.safe_point.load(Ordering::SeqCst);
        self.compact(safe_point, true)?;
        let (mut manifest, files, pending) = {
            // Held so that nothing applies while the manifest is drawn up.
            let state = lock(&self.state);
            self.compact(safe_point, true)?;
            let mut manifest = Manifest {
                applied: state.applied.iter().map(|(r, i)| (*r, *i)).collect(),
                definitions: Some(
                    state
                        .definitions
                        .iter()
                        .map(|(k, (_, v))| (to_hex(k), to_hex(v)))
                        .collect(),
                ),
                skip: state.skip.iter().map(|(r, i)| (*r, *i)).collect(),
                skip_table: state
                    .skip_table
                    .iter()
                    .map(|((t, r), i)| (*t, *r, *i))
                    .collect(),
                ..Manifest::default()
            };
            let mut files = Vec::new();
            let mut pending = Vec::new();
            let tables = self.tables.read().unwrap_or_else(|e| e.into_inner());
            for (id, table) in tables.iter() {
                let t = lock(table);
                for (key, l) in t.locks() {
                    pending.push(Modify::Put {
                        cf: Cf::Lock,
                        key: encode_key(key),
                        value: l.to_bytes(),
                    });
                }
                let Some(codec) = &t.codec else {
                    if t.versions() == 0 {
                        continue;
                    }
                    return Ok(false);
                };
                if t.delta_versions() > 0 {
                    return Ok(false);
                }
                let mut segments = Vec::new();
                for chunk in t.stable_chunks().iter() {
                    let Some(file) = chunk.file() else {
                        return Ok(false);
                    };
                    segments.push(file.name());
                    files.push(Arc::clone(file));
                }
                manifest.tables.insert(
                    *id,
                    TableManifest {
                        column_ids: codec.column_ids(),
                        segments,
                    },
                );
            }
            for ((key, start_ts), value) in &state.pending {
                pending.push(Modify::Put {
                    cf: Cf::Default,
                    key: append_ts(&encode_key(key), *start_ts),
                    value: value.clone(),
                });
            }
            (manifest, files, pending)
        };
        // Kept (and synced) before the manifest that lists them.
        for file in &files {
            file.keep()
                .map_err(|e| Error::Internal(format!("syncing a segment: {e}")))?;
        }
        let effects = Effects {
            writes: pending.into_iter().map(Into::into).collect(),
            outcome: None,
        };
        manifest.pending = Some(dir.write_pending(&effects.to_bytes())?);
        let io = |e: std::io::Error| Error::Internal(format!("writing the columnar manifest: {e}"));
        let tmp = dir.path().join(format!("{MANIFEST}.tmp"));
        let bytes = serde_json::to_vec(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
        {
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            std::io::Write::write_all(&mut f, &bytes).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, dir.path().join(MANIFEST)).map_err(io)?;
        std::fs::File::open(dir.path())
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        // What only the previous checkpoint listed goes.
        let listed = manifest.files();
        let mut durable = lock(&self.durable);
        for old in durable.files.difference(&listed) {
            dir.remove(old);
        }
        *durable = Durable {
            files: listed,
            applied: manifest.applied.iter().map(|(r, i)| (*r, *i)).collect(),
        };
        Ok(true)
    }

    /// Counts an entry handed to the learner, before it is handed over.
    pub(crate) fn queued(&self) {
        let mut p = lock(&self.progress);
        p.queued += 1;
        p.waiting.push_back(Instant::now());
    }

    /// Counts an entry the learner has applied (or skipped, stopped).
    pub(crate) fn done(&self) {
        let mut p = lock(&self.progress);
        p.done += 1;
        p.waiting.pop_front();
        drop(p);
        self.caught_up.notify_all();
    }

    /// Entries handed to the learner and not applied yet.
    pub fn backlog(&self) -> u64 {
        let p = lock(&self.progress);
        p.queued - p.done
    }

    /// Waits until the learner has applied every entry handed to it so
    /// far (all the row store had applied when the caller's read began),
    /// for at most `wait`.
    pub fn wait_caught_up(&self, wait: Duration) -> Result<()> {
        let start = Instant::now();
        let deadline = start + wait;
        let mut p = lock(&self.progress);
        let target = p.queued;
        while p.done < target {
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Behind {
                    waited: now - start,
                    behind: target - p.done,
                });
            }
            p = self
                .caught_up
                .wait_timeout(p, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        Ok(())
    }

    pub(crate) fn table(&self, id: i64) -> Arc<Mutex<TableState>> {
        if let Some(t) = self
            .tables
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
        {
            return Arc::clone(t);
        }
        let mut tables = self.tables.write().unwrap_or_else(|e| e.into_inner());
        Arc::clone(tables.entry(id).or_default())
    }

    fn existing(&self, id: i64) -> Option<Arc<Mutex<TableState>>> {
        self.tables
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// Why the learner stopped, if it did.
    pub fn stopped(&self) -> Option<String> {
        lock(&self.state).stopped.clone()
    }

    /// Whether `table_id` can be read here, with these Arrow fields (the
    /// caller's view of the table; a replica that has not reached the same
    /// definition yet is not used).
    pub fn available(
        &self,
        table_id: i64,
        fields: &[(String, datafusion::arrow::datatypes::DataType)],
    ) -> bool {
        if self.stopped().is_some() {
            return false;
        }
        // The replica already has the caller's definition: the scan itself
        // waits until it is current.
        if self.has_definition(table_id, fields) {
            return true;
        }
        // A definition change committed before is awaited; a learner too
        // far behind makes the table unavailable here.
        self.catch_up().is_ok() && self.has_definition(table_id, fields)
    }

    /// Whether the replica holds `table_id` with these Arrow fields.
    fn has_definition(
        &self,
        table_id: i64,
        fields: &[(String, datafusion::arrow::datatypes::DataType)],
    ) -> bool {
        let Some(table) = self.existing(table_id) else {
            return false;
        };
        let t = lock(&table);
        let Some(codec) = &t.codec else {
            return false;
        };
        let schema = codec.schema();
        schema.fields().len() == fields.len()
            && schema
                .fields()
                .iter()
                .zip(fields)
                .all(|(f, (name, ty))| f.name() == name && f.data_type() == ty)
    }

    /// The rows of `table_id` visible at `request.read_ts`. The scan first
    /// makes the replica current ([`catch_up`](Self::catch_up): a read
    /// index through the learner peers, within the read wait). A lock that hides a version is reported
    /// ([`Error::Locked`]), never skipped.
    pub fn scan(&self, table_id: i64, request: &ScanRequest) -> Result<ScanOutput> {
        let unavailable = |reason: String| Error::Unavailable { table_id, reason };
        if let Some(why) = self.stopped() {
            return Err(unavailable(why));
        }
        self.catch_up()?;
        if let Some(why) = self.stopped() {
            return Err(unavailable(why));
        }
        let table = self
            .existing(table_id)
            .ok_or_else(|| unavailable("no replica".into()))?;
        let snapshot = {
            let mut t = lock(&table);
            if let Some((key, lock)) = t.blocking_lock(request.read_ts) {
                return Err(Error::Locked(Box::new(lock.info(&key))));
            }
            t.snapshot()
                .ok_or_else(|| unavailable("its definition has not arrived".into()))?
        };
        snapshot.scan(request)
    }

    /// Status of every table with a replica.
    pub fn status(&self) -> Vec<TableStatus> {
        let stopped = self.stopped().is_some();
        let tables = self.tables.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<TableStatus> = tables
            .iter()
            .map(|(id, t)| {
                let t = lock(t);
                TableStatus {
                    table_id: *id,
                    available: !stopped && t.codec.is_some(),
                    rows: None,
                    versions: t.versions(),
                    delta_versions: t.delta_versions(),
                    delta_bytes: t.delta_bytes(),
                    chunks: t.chunks(),
                    lag: None,
                    seconds_behind: 0.0,
                }
            })
            .collect();
        out.sort_by_key(|s| s.table_id);
        out
    }

    /// The status of one table's replica, with its rows visible now.
    pub fn table_status(&self, table_id: i64) -> Option<TableStatus> {
        // How far behind it is before the read below waits for it.
        let lag = self.lag();
        let seconds_behind = self.seconds_behind();
        // Counted as of what is committed now, if the learner gets there
        // in time.
        let _ = self.catch_up();
        let stopped = self.stopped().is_some();
        let table = self.existing(table_id)?;
        let (status, snapshot) = {
            let mut t = lock(&table);
            let status = TableStatus {
                table_id,
                available: !stopped && t.codec.is_some(),
                rows: None,
                versions: t.versions(),
                delta_versions: t.delta_versions(),
                delta_bytes: t.delta_bytes(),
                chunks: t.chunks(),
                lag,
                seconds_behind,
            };
            (status, t.snapshot())
        };
        let rows = snapshot.and_then(|s| {
            s.scan(&ScanRequest {
                projection: Some(Vec::new()),
                read_ts: u64::MAX,
                ..ScanRequest::default()
            })
            .ok()
        });
        Some(TableStatus {
            rows: rows.map(|r| r.rows),
            ..status
        })
    }

    /// Log entries still to apply to reach what the node's row store has
    /// applied, over all regions (`None` with no learner peers to ask).
    pub fn lag(&self) -> Option<u64> {
        let point = self
            .read_point
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        point?.lag()
    }

    /// How long the oldest entry handed to the learner has waited, in
    /// seconds (zero when none waits).
    pub fn seconds_behind(&self) -> f64 {
        lock(&self.progress)
            .waiting
            .front()
            .map_or(0.0, |t| t.elapsed().as_secs_f64())
    }

    /// The applied index of `region_id`, as far as the learner got.
    /// Drains the visibility samples: for each applied command that made
    /// rows visible, the time from its commit timestamp (the TSO's clock)
    /// to its application here.
    pub fn take_visibility_delays(&self) -> Vec<Duration> {
        std::mem::take(&mut lock(&self.state).visible)
    }

    pub fn applied(&self, region_id: u64) -> Option<u64> {
        lock(&self.state).applied.get(&region_id).copied()
    }

    /// Compacts every table whose delta grew past its limit (all with a
    /// delta if `force`), keeping what reads above `safe_point` can see.
    /// Returns how many tables were compacted.
    pub fn compact(&self, safe_point: u64, force: bool) -> Result<usize> {
        let _one = lock(&self.compacting);
        self.safe_point.fetch_max(safe_point, Ordering::SeqCst);
        let tables: Vec<Arc<Mutex<TableState>>> = self
            .tables
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        let mut done = 0;
        for table in tables {
            let input = {
                let mut t = lock(&table);
                let due = if force {
                    t.delta_versions() > 0 && t.codec.is_some()
                } else {
                    t.wants_compaction(&self.config)
                };
                if !due {
                    continue;
                }
                match t.compaction_input() {
                    Some(i) => i,
                    None => continue,
                }
            };
            let output = input.run(safe_point, &self.config, self.segments.as_ref())?;
            if lock(&table).finish_compaction(&input, output) {
                done += 1;
            }
        }
        Ok(done)
    }

    pub(crate) fn stop(&self, region_id: u64, index: u64, e: &Error) {
        let detail = e.to_string();
        error!(region_id, index, error = %detail, "columnar learner stopped; its tables are served by the row store");
        let mut s = lock(&self.state);
        if s.stopped.is_none() {
            s.stopped = Some(
                Error::Stopped {
                    region_id,
                    index,
                    detail,
                }
                .to_string(),
            );
        }
    }

    /// Applies the writes of entry `index` of `region`, less what the copy
    /// already holds (see `LearnerState::skip`), and advances the region's
    /// applied index. Returns the tables that got a replica here.
    pub fn apply_entry(&self, region: u64, index: u64, writes: &[Modify]) -> Result<Vec<i64>> {
        let skipped_tables: Vec<i64> = {
            let mut state = lock(&self.state);
            let applied = state.applied.entry(region).or_default();
            *applied = (*applied).max(index);
            match state.skip.get(&region) {
                Some(through) if index <= *through => return Ok(Vec::new()),
                Some(_) => {
                    state.skip.remove(&region);
                }
                None => {}
            }
            state
                .skip_table
                .retain(|(_, r), through| *r != region || index <= *through);
            state
                .skip_table
                .keys()
                .filter(|(_, r)| *r == region)
                .map(|(t, _)| *t)
                .collect()
        };
        if skipped_tables.is_empty() {
            return self.apply_writes(writes);
        }
        let kept: Vec<Modify> = writes
            .iter()
            .filter(|m| {
                let key = match m {
                    Modify::Put {
                        cf: Cf::Lock, key, ..
                    }
                    | Modify::Delete { cf: Cf::Lock, key } => decode_key(key).ok(),
                    Modify::Put { key, .. } | Modify::Delete { key, .. } => {
                        split_ts(key).ok().and_then(|(e, _)| decode_key(e).ok())
                    }
                    Modify::DeleteRange { .. } => None,
                };
                !key.and_then(|k| row_key_table(&k))
                    .is_some_and(|t| skipped_tables.contains(&t))
            })
            .cloned()
            .collect();
        self.apply_writes(&kept)
    }

    /// Applies one command's writes. Returns the tables that got a
    /// replica here (created, or given one by `ALTER TABLE`): they are
    /// back-filled from the row store.
    pub fn apply_writes(&self, writes: &[Modify]) -> Result<Vec<i64>> {
        let mut state = lock(&self.state);
        if state.stopped.is_some() {
            return Ok(Vec::new());
        }
        let mut undefined: Vec<i64> = Vec::new();
        let mut defined: Vec<i64> = Vec::new();
        let mut newest_commit = None;
        for m in writes {
            match m {
                Modify::Put {
                    cf: Cf::Lock,
                    key,
                    value,
                } => {
                    let user = decode_key(key)?;
                    if let Some(t) = row_key_table(&user) {
                        let lock = Lock::from_bytes(value)?;
                        lock_of(&self.table(t)).put_lock(user, lock);
                    }
                }
                Modify::Delete { cf: Cf::Lock, key } => {
                    let user = decode_key(key)?;
                    if let Some(t) = row_key_table(&user).and_then(|t| self.existing(t)) {
                        lock_of(&t).remove_lock(&user);
                    }
                }
                Modify::Put {
                    cf: Cf::Default,
                    key,
                    value,
                } => {
                    let (encoded, start_ts) = split_ts(key)?;
                    let user = decode_key(encoded)?;
                    if self.wanted(&user) {
                        state.pending.insert((user, start_ts), value.clone());
                    }
                }
                Modify::Delete {
                    cf: Cf::Default,
                    key,
                } => {
                    let (encoded, start_ts) = split_ts(key)?;
                    let user = decode_key(encoded)?;
                    state.pending.remove(&(user, start_ts));
                }
                Modify::Put {
                    cf: Cf::Write,
                    key,
                    value,
                } => {
                    let (encoded, commit_ts) = split_ts(key)?;
                    let user = decode_key(encoded)?;
                    if !self.wanted(&user) {
                        continue;
                    }
                    let write = Write::from_bytes(value)?;
                    let staged = state.pending.remove(&(user.clone(), write.start_ts));
                    let value = match write.write_kind() {
                        WriteKind::Put => Some(write.short_value.or(staged).ok_or_else(|| {
                            Error::Internal(format!(
                                "the value committed at {commit_ts} for key {user:?} (started at {}) never arrived",
                                write.start_ts
                            ))
                        })?),
                        WriteKind::Delete => None,
                        WriteKind::Lock | WriteKind::Rollback => continue,
                    };
                    if let Some(t) = row_key_table(&user) {
                        self.commit_row(t, user, commit_ts, value)?;
                        newest_commit = newest_commit.max(Some(commit_ts));
                    } else {
                        if let Some(id) =
                            self.commit_definition(&mut state, user, value, &mut undefined)?
                        {
                            defined.push(id);
                        }
                    }
                }
                // GC of old versions: the replica compacts its own.
                Modify::Delete { cf: Cf::Write, .. } => {}
                Modify::DeleteRange { .. } | Modify::Put { .. } | Modify::Delete { .. } => {}
            }
        }
        if let Some(commit_ts) = newest_commit
            && state.visible.len() < MAX_VISIBILITY_SAMPLES
        {
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let delay = now_ms.saturating_sub(physical_ms(commit_ts));
            state.visible.push(Duration::from_millis(delay));
        }
        // A table whose definition was deleted and not put again (a rename
        // puts it under a new key) is gone.
        for id in undefined {
            if !state.definitions.values().any(|(t, _)| *t == id) {
                self.tables
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
            }
        }
        Ok(defined)
    }

    /// Keys whose values the learner needs: rows and table definitions.
    fn wanted(&self, user_key: &[u8]) -> bool {
        row_key_table(user_key).is_some() || self.schemas.is_schema_key(user_key)
    }

    fn commit_row(
        &self,
        table_id: i64,
        key: Vec<u8>,
        commit_ts: u64,
        value: Option<Vec<u8>>,
    ) -> Result<()> {
        let table = self.table(table_id);
        let mut t = lock(&table);
        // Decoded now, with the definition in force here, so that a row
        // the replica cannot read stops the learner instead of a query.
        if let (Some(codec), Some(v)) = (&t.codec, &value) {
            codec.decode(v).map_err(|e| {
                Error::Internal(format!(
                    "row {key:?} of table {table_id} does not decode: {e}"
                ))
            })?;
        }
        t.put_version(
            key,
            Version {
                commit_ts,
                value: value.map(Arc::from),
            },
            &self.config,
        );
        Ok(())
    }

    fn commit_definition(
        &self,
        state: &mut LearnerState,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
        undefined: &mut Vec<i64>,
    ) -> Result<Option<i64>> {
        let Some(value) = value else {
            if let Some((id, _)) = state.definitions.remove(&key) {
                undefined.push(id);
            }
            return Ok(None);
        };
        match self.schemas.decode(&key, &value).map_err(Error::Internal)? {
            SchemaChange::None => {
                if let Some((id, _)) = state.definitions.remove(&key) {
                    undefined.push(id);
                }
                Ok(None)
            }
            SchemaChange::Table(codec) => {
                let id = codec.table_id();
                state.definitions.insert(key, (id, value));
                let table = self.table(id);
                let mut t = lock_of(&table);
                let new = t.codec.is_none();
                t.set_codec(codec, self.segments.as_ref())?;
                Ok(new.then_some(id))
            }
        }
    }

    /// Replaces table `table_id` by what `snap` holds of it (a table that
    /// just got a replica: its existing rows, then the log). `snap` is the
    /// row store at least as far as the replica in every region; the
    /// learner's entries of the table that it already holds are skipped.
    pub fn backfill<S: Snapshot>(&self, snap: &S, table_id: i64) -> Result<()> {
        let Some(codec) = self.existing(table_id).and_then(|t| lock(&t).codec.clone()) else {
            return Ok(());
        };
        let positions = applied_indices(snap)?;
        let fresh = Replica::new(Arc::clone(&self.schemas), self.config.clone());
        lock_of(&fresh.table(table_id)).set_codec(codec, None)?;
        let prefix = duet_storage::codec::key::row_prefix(table_id);
        let end = duet_storage::codec::key::prefix_end(&prefix);
        fresh.apply_writes(&committed_versions(self, snap, &prefix, &end)?)?;
        fresh.apply_writes(&live_locks(snap, &prefix, &end)?)?;
        let table = fresh.table(table_id);
        let pending = std::mem::take(&mut lock(&fresh.state).pending);
        let copied = std::mem::take(&mut *lock(&table));
        if let Some(t) = self.existing(table_id) {
            *lock(&t) = copied;
        }
        let mut state = lock(&self.state);
        state.pending.extend(pending);
        for (region, at) in positions {
            if state.applied.get(&region).is_none_or(|a| *a < at) {
                state.skip_table.insert((table_id, region), at);
            }
        }
        Ok(())
    }

    /// Replaces every table by what `snap` (the row store, at least as far
    /// as the replica in every region) holds; the learner's entries up to
    /// the row store's applied index of each region are then skipped.
    pub fn rebuild_from<S: Snapshot>(&self, snap: &S) -> Result<()> {
        let positions = applied_indices(snap)?;
        let fresh = Replica::new(Arc::clone(&self.schemas), self.config.clone());
        let batch = committed_versions(self, snap, b"", &[])?;
        // Definitions first, so rows decode with them.
        let (defs, rows): (Vec<Modify>, Vec<Modify>) = batch.into_iter().partition(|m| match m {
            Modify::Put { key, .. } => split_ts(key)
                .ok()
                .and_then(|(e, _)| decode_key(e).ok())
                .is_some_and(|u| row_key_table(&u).is_none()),
            _ => false,
        });
        fresh.apply_writes(&defs)?;
        fresh.apply_writes(&rows)?;
        fresh.apply_writes(&live_locks(snap, b"", &[])?)?;
        let tables = std::mem::take(&mut *fresh.tables.write().unwrap_or_else(|e| e.into_inner()));
        let learned = std::mem::take(&mut *lock(&fresh.state));
        *self.tables.write().unwrap_or_else(|e| e.into_inner()) = tables;
        let mut state = lock(&self.state);
        let mut applied = std::mem::take(&mut state.applied);
        for (region, at) in &positions {
            let a = applied.entry(*region).or_default();
            *a = (*a).max(*at);
        }
        *state = LearnerState {
            applied,
            skip: positions,
            ..learned
        };
        Ok(())
    }

    /// Notes that the learner applied entry `index` of `region` (one with
    /// nothing for the replica).
    pub(crate) fn note_applied(&self, region: u64, index: u64) {
        let mut state = lock(&self.state);
        let applied = state.applied.entry(region).or_default();
        *applied = (*applied).max(index);
    }

    /// The applied index of every region in the learner's view.
    pub fn positions(&self) -> HashMap<u64, u64> {
        lock(&self.state).applied.clone()
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    text.len().is_multiple_of(2).then_some(())?;
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The applied index of every region whose Raft state `snap` holds.
pub fn applied_indices<S: Snapshot>(snap: &S) -> Result<HashMap<u64, u64>> {
    use duet_raft::keys;
    let (start, end) = keys::region_range();
    let mut it = snap.iter(
        Cf::Raft,
        IterOptions {
            lower: Some(start),
            upper: Some(end),
            prefix_seek: false,
        },
    )?;
    let mut out = HashMap::new();
    let mut ok = it.seek_to_first()?;
    while ok {
        if let Some(region) = keys::region_of(it.key())
            && it.key() == keys::apply_state_key(region).as_slice()
            && let Ok(bytes) = <[u8; 8]>::try_from(it.value())
        {
            out.insert(region, u64::from_be_bytes(bytes));
        }
        ok = it.next()?;
    }
    Ok(out)
}

/// The user-key range `[start, end)` (`end` empty: unbounded) as bounds of
/// encoded keys.
fn bounds(start: &[u8], end: &[u8]) -> IterOptions {
    IterOptions {
        lower: Some(duet_storage::mvcc::encode_key(start)),
        upper: (!end.is_empty()).then(|| duet_storage::mvcc::encode_key(end)),
        prefix_seek: false,
    }
}

/// Every committed version in `[start, end)` of the keys `replica` wants,
/// as the writes that made it (its staged value, then its commit record),
/// oldest version of a key first (the CF keeps the newest first).
fn committed_versions<S: Snapshot>(
    replica: &Replica,
    snap: &S,
    start: &[u8],
    end: &[u8],
) -> Result<Vec<Modify>> {
    let mut batch: Vec<Modify> = Vec::new();
    let mut versions: Vec<Vec<Modify>> = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    let mut wanted = false;
    let mut it = snap.iter(Cf::Write, bounds(start, end))?;
    let mut ok = it.seek_to_first()?;
    while ok {
        let (encoded, _) = split_ts(it.key())?;
        if current.as_deref() != Some(encoded) {
            batch.extend(versions.drain(..).rev().flatten());
            current = Some(encoded.to_vec());
            wanted = replica.wanted(&decode_key(encoded)?);
        }
        if wanted {
            let record = Write::from_bytes(it.value())?;
            let mut version = Vec::with_capacity(2);
            if record.write_kind() == WriteKind::Put && record.short_value.is_none() {
                let at = append_ts(encoded, record.start_ts);
                if let Some(value) = snap.get(Cf::Default, &at)? {
                    version.push(Modify::Put {
                        cf: Cf::Default,
                        key: at,
                        value,
                    });
                }
            }
            version.push(Modify::Put {
                cf: Cf::Write,
                key: it.key().to_vec(),
                value: it.value().to_vec(),
            });
            versions.push(version);
        }
        ok = it.next()?;
    }
    batch.extend(versions.drain(..).rev().flatten());
    Ok(batch)
}

/// The locks on rows in `[start, end)`, with their staged values.
fn live_locks<S: Snapshot>(snap: &S, start: &[u8], end: &[u8]) -> Result<Vec<Modify>> {
    let mut it = snap.iter(Cf::Lock, bounds(start, end))?;
    let mut ok = it.seek_to_first()?;
    let mut locks = Vec::new();
    while ok {
        let user = decode_key(it.key())?;
        if row_key_table(&user).is_some() {
            let l = Lock::from_bytes(it.value())?;
            if l.lock_kind() == LockKind::Put && l.short_value.is_none() {
                let at = append_ts(it.key(), l.start_ts);
                if let Some(value) = snap.get(Cf::Default, &at)? {
                    locks.push(Modify::Put {
                        cf: Cf::Default,
                        key: at,
                        value,
                    });
                }
            }
            locks.push(Modify::Put {
                cf: Cf::Lock,
                key: it.key().to_vec(),
                value: it.value().to_vec(),
            });
        }
        ok = it.next()?;
    }
    Ok(locks)
}

fn lock_of(t: &Arc<Mutex<TableState>>) -> MutexGuard<'_, TableState> {
    lock(t)
}
