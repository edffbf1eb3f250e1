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
//! A Raft snapshot the learner peer installs replaces the replica's copy
//! of the region's key range by the snapshot's data. Where the log alone
//! cannot build the copy — a start without a usable checkpoint, a table
//! that just got a replica (its earlier rows were never kept) — the
//! replica marks the key range it lacks as awaited (`Awaiting`) and each
//! learner peer of a region overlapping it asks its leader for a snapshot
//! (see [`Replica::wants_snapshot`]); the tables in the range are
//! unavailable until every part of it has arrived. The replica never reads
//! the node's row store, so a node needs no voter of a region to keep its
//! columnar copy.
//!
//! An entry the learner cannot decode stops it with a precise error; its
//! tables are then unavailable and queries go to the row store.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use duet_storage::codec::key::row_key_table;
use duet_storage::codec::key::{prefix_end, row_prefix};
use duet_storage::engine::memory::MemoryEngine;
use duet_storage::engine::{
    Cf, Engine, EngineIterator, IterOptions, Modify, Snapshot, WriteBatch, WriteOptions,
};
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
    /// The same for the tables without a replica, whose rows are dropped.
    unreplicated: HashMap<Vec<u8>, (i64, Vec<u8>)>,
    /// The ids of `unreplicated`.
    unreplicated_ids: HashSet<i64>,
    /// Applied index per region.
    applied: HashMap<u64, u64>,
    /// Per region, the index through which the replica already holds every
    /// entry (a checkpoint ahead of what the learner peer kept through a
    /// crash): entries up to it are skipped.
    skip: HashMap<u64, u64>,
    /// Why the learner stopped, if it did.
    stopped: Option<String>,
    /// Per applied command that made rows visible: the time from its
    /// commit timestamp to now, until `take_visibility_delays` drains them.
    visible: Vec<Duration>,
}

/// A key range `[start, end)` (`end` empty: unbounded) the replica holds
/// no complete copy of, and the parts of it that snapshots have replaced
/// since: a region overlapping what is left asks for a snapshot.
#[derive(Debug, Clone)]
pub(crate) struct Awaiting {
    start: Vec<u8>,
    end: Vec<u8>,
    covered: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Whether `[a, b)` and `[c, d)` (an empty end: unbounded) share a key.
fn overlaps(a: &[u8], b: &[u8], c: &[u8], d: &[u8]) -> bool {
    (d.is_empty() || a < d) && (b.is_empty() || c < b)
}

impl Awaiting {
    fn everything() -> Awaiting {
        Awaiting {
            start: Vec::new(),
            end: Vec::new(),
            covered: Vec::new(),
        }
    }

    /// The key range of table `id`'s rows.
    fn table(id: i64) -> Awaiting {
        let start = row_prefix(id);
        let end = prefix_end(&start);
        Awaiting {
            start,
            end,
            covered: Vec::new(),
        }
    }

    #[cfg(test)]
    pub(crate) fn new(start: &[u8], end: &[u8]) -> Awaiting {
        Awaiting {
            start: start.to_vec(),
            end: end.to_vec(),
            covered: Vec::new(),
        }
    }

    #[cfg(test)]
    pub(crate) fn cover(mut self, start: &[u8], end: &[u8]) -> Awaiting {
        self.covered.push((start.to_vec(), end.to_vec()));
        self
    }

    /// The parts of the range no snapshot has covered yet, in key order.
    pub(crate) fn left(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut covered = self.covered.clone();
        covered.sort();
        let before_end = |k: &[u8]| self.end.is_empty() || k < self.end.as_slice();
        let mut out = Vec::new();
        // Every key below `at` is covered (`None`: every key).
        let mut at = Some(self.start.clone());
        for (s, e) in covered {
            let Some(from) = at.take() else { break };
            if !before_end(&from) {
                break;
            }
            if s > from {
                let gap_end = if before_end(&s) { s } else { self.end.clone() };
                out.push((from.clone(), gap_end));
            }
            at = (!e.is_empty()).then(|| from.max(e));
        }
        if let Some(from) = at
            && before_end(&from)
        {
            out.push((from, self.end.clone()));
        }
        out
    }

    /// Whether some key of `[start, end)` is still missing.
    fn lacks(&self, start: &[u8], end: &[u8]) -> bool {
        self.left().iter().any(|(s, e)| overlaps(s, e, start, end))
    }
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
    /// Key ranges the replica lacks some of, until snapshots of the
    /// regions over them arrive. Apart from `state`, which the learner
    /// holds while it applies, because every learner peer asks about it
    /// at each tick; taken after `state` where both are.
    awaiting: Mutex<Vec<Awaiting>>,
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
    /// [`MANIFEST_VERSION`] when written; older checkpoints are not used.
    #[serde(default)]
    version: u32,
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
}

/// The manifest's format: 2 lists the definitions of tables without a
/// replica (whose rows the replica drops) among `definitions`.
const MANIFEST_VERSION: u32 = 2;

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
            awaiting: Mutex::new(Vec::new()),
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
    /// learner's. When that cannot be done (no checkpoint, or the log was
    /// compacted past it) and the learner peers have applied anything, the
    /// replica starts empty and [awaits](Self::awaits_snapshots) a snapshot
    /// of every region.
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
        // Learner peers that have applied nothing yet bring everything
        // through the log.
        if applied
            .values()
            .any(|i| *i > duet_raft::storage::INIT_INDEX)
        {
            lock(&replica.awaiting).push(Awaiting::everything());
        }
        lock(&replica.state).applied = applied;
        Ok(replica)
    }

    /// Whether the replica waits for snapshots of some regions (it lacks
    /// part of their data), and so for some tables.
    pub fn awaits_snapshots(&self) -> bool {
        !lock(&self.awaiting).is_empty()
    }

    /// Whether a learner peer of `region` should ask its leader for a
    /// snapshot: the replica lacks some of the region's keys.
    pub fn wants_snapshot(&self, start: &[u8], end: &[u8]) -> bool {
        lock(&self.awaiting).iter().any(|a| a.lacks(start, end))
    }

    /// Whether table `id` has rows in a range the replica awaits.
    fn awaits_table(&self, id: i64) -> bool {
        let start = row_prefix(id);
        let end = prefix_end(&start);
        lock(&self.awaiting).iter().any(|a| a.lacks(&start, &end))
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
        if m.version != MANIFEST_VERSION {
            return Err(Error::Internal(format!(
                "a checkpoint of format {} (this version reads {MANIFEST_VERSION})",
                m.version
            )));
        }
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
                // A table given a replica since awaits snapshots of its
                // regions once the learner peers run.
                self.apply_entry(region, *index, writes)?;
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
        if self.stopped().is_some() || self.awaits_snapshots() {
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
            if self.awaits_snapshots() {
                return Ok(false);
            }
            let mut manifest = Manifest {
                version: MANIFEST_VERSION,
                applied: state.applied.iter().map(|(r, i)| (*r, *i)).collect(),
                definitions: Some(
                    state
                        .definitions
                        .iter()
                        .chain(&state.unreplicated)
                        .map(|(k, (_, v))| (to_hex(k), to_hex(v)))
                        .collect(),
                ),
                skip: state.skip.iter().map(|(r, i)| (*r, *i)).collect(),
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

    /// Every table, taken out of the map (so that none is held locked
    /// while the map is).
    fn table_list(&self) -> Vec<(i64, Arc<Mutex<TableState>>)> {
        self.tables
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(id, t)| (*id, Arc::clone(t)))
            .collect()
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
    /// definition yet is not used). A table whose rows await snapshots is
    /// not, unless `wait` and they arrive within the read wait.
    pub fn available(
        &self,
        table_id: i64,
        fields: &[(String, datafusion::arrow::datatypes::DataType)],
        wait: bool,
    ) -> bool {
        if self.stopped().is_some() {
            return false;
        }
        // The replica already has the caller's definition: the scan itself
        // waits until it is current. Otherwise a definition change
        // committed before is awaited; a learner too far behind makes the
        // table unavailable here.
        if !self.has_definition(table_id, fields)
            && (self.catch_up().is_err() || !self.has_definition(table_id, fields))
        {
            return false;
        }
        if !wait {
            return !self.awaits_table(table_id);
        }
        let deadline = Instant::now() + self.config.read_wait;
        while self.awaits_table(table_id) {
            if Instant::now() >= deadline || self.stopped().is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
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
        if self.awaits_table(table_id) {
            return Err(unavailable(
                "part of its rows awaits a snapshot of their region".into(),
            ));
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
        let tables = self.table_list();
        let mut out: Vec<TableStatus> = tables
            .iter()
            .map(|(id, t)| {
                let awaits = self.awaits_table(*id);
                let t = lock(t);
                TableStatus {
                    table_id: *id,
                    available: !stopped && !awaits && t.codec.is_some(),
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
        let stopped = self.stopped().is_some() || self.awaits_table(table_id);
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
        let mut done = 0;
        for (_, table) in self.table_list() {
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

    /// Applies the writes of entry `index` of `region` (unless the copy
    /// already holds them, see `LearnerState::skip`) and advances the
    /// region's applied index.
    pub fn apply_entry(&self, region: u64, index: u64, writes: &[Modify]) -> Result<()> {
        {
            let mut state = lock(&self.state);
            let applied = state.applied.entry(region).or_default();
            *applied = (*applied).max(index);
            match state.skip.get(&region) {
                Some(through) if index <= *through => return Ok(()),
                Some(_) => {
                    state.skip.remove(&region);
                }
                None => {}
            }
        }
        self.apply_writes(writes)
    }

    /// Applies one command's writes. A table given a replica here whose
    /// rows were dropped until now awaits snapshots of its regions.
    pub fn apply_writes(&self, writes: &[Modify]) -> Result<()> {
        let mut state = lock(&self.state);
        if state.stopped.is_some() {
            return Ok(());
        }
        let mut undefined: Vec<i64> = Vec::new();
        let mut newest_commit = None;
        for m in writes {
            match m {
                Modify::Put {
                    cf: Cf::Lock,
                    key,
                    value,
                } => {
                    let user = decode_key(key)?;
                    if let Some(t) = self.kept_table(&state, &user) {
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
                    if self.wanted(&state, &user) {
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
                    if !self.wanted(&state, &user) {
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
                        self.commit_definition(&mut state, user, value, &mut undefined)?;
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
        self.drop_undefined(&state, undefined);
        Ok(())
    }

    /// Drops the tables of `undefined` whose definition was deleted and
    /// not put again (a rename puts it under a new key).
    fn drop_undefined(&self, state: &LearnerState, undefined: Vec<i64>) {
        for id in undefined {
            if !state.definitions.values().any(|(t, _)| *t == id) {
                self.tables
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
            }
        }
    }

    /// Keys whose values the learner needs: rows of tables that may have a
    /// replica, and table definitions.
    fn wanted(&self, state: &LearnerState, user_key: &[u8]) -> bool {
        match row_key_table(user_key) {
            Some(t) => !state.unreplicated_ids.contains(&t),
            None => self.schemas.is_schema_key(user_key),
        }
    }

    /// The table of a row key, unless it has no replica.
    fn kept_table(&self, state: &LearnerState, user_key: &[u8]) -> Option<i64> {
        row_key_table(user_key).filter(|t| !state.unreplicated_ids.contains(t))
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

    /// Applies a committed table definition (`None`: deleted). A table
    /// that had no replica and gets one here lacks its earlier rows: its
    /// key range awaits snapshots.
    fn commit_definition(
        &self,
        state: &mut LearnerState,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
        undefined: &mut Vec<i64>,
    ) -> Result<()> {
        let had_none = state.unreplicated.remove(&key).map(|(id, _)| id);
        let change = match &value {
            None => SchemaChange::None,
            Some(v) => self.schemas.decode(&key, v).map_err(Error::Internal)?,
        };
        match change {
            SchemaChange::None => {
                if let Some((id, _)) = state.definitions.remove(&key) {
                    undefined.push(id);
                }
            }
            SchemaChange::Unreplicated(id) => {
                // Its rows (some may have come before the definition) go.
                if let Some((was, _)) = state.definitions.remove(&key) {
                    undefined.push(was);
                }
                undefined.push(id);
                state
                    .unreplicated
                    .insert(key, (id, value.unwrap_or_default()));
            }
            SchemaChange::Table(codec) => {
                let id = codec.table_id();
                state
                    .definitions
                    .insert(key, (id, value.unwrap_or_default()));
                let table = self.table(id);
                lock_of(&table).set_codec(codec, self.segments.as_ref())?;
                if had_none == Some(id) {
                    info!(
                        table_id = id,
                        "table got a columnar replica; awaiting snapshots of its regions"
                    );
                    lock(&self.awaiting).push(Awaiting::table(id));
                }
            }
        }
        state.unreplicated_ids = state.unreplicated.values().map(|(id, _)| *id).collect();
        Ok(())
    }

    /// Replaces the replica's copy of the key range `[start, end)` (`end`
    /// empty: unbounded) of region `region_id` by `data`, the contents of a
    /// Raft snapshot its learner peer installed at `index`: every version,
    /// lock and staged value in the range goes, then the snapshot's are
    /// applied (table definitions first, so rows decode with them). Parts
    /// of the range the replica awaited are then covered.
    pub fn install_region(
        &self,
        region_id: u64,
        index: u64,
        start: &[u8],
        end: &[u8],
        data: &[Modify],
    ) -> Result<()> {
        if self.stopped().is_some() {
            return Ok(());
        }
        let inside = |k: &[u8]| k >= start && (end.is_empty() || k < end);
        // Sorted as the row store keeps them, to read back the same way.
        let engine = MemoryEngine::new();
        engine.write(
            &WriteBatch {
                modifies: data.to_vec(),
            },
            WriteOptions::default(),
        )?;
        let snap = engine.snapshot();
        let (definitions, rows): (Vec<Modify>, Vec<Modify>) =
            committed_versions(&snap, start, end, |user| self.schemas.is_schema_key(user))?
                .into_iter()
                .partition(|m| user_key_of(m).is_some_and(|u| row_key_table(&u).is_none()));
        let definitions = newest_versions(definitions);
        {
            let mut state = lock(&self.state);
            // Definitions in the range the snapshot no longer has.
            let present: HashSet<Vec<u8>> = definitions.iter().filter_map(user_key_of).collect();
            let gone: Vec<Vec<u8>> = state
                .definitions
                .keys()
                .chain(state.unreplicated.keys())
                .filter(|k| inside(k) && !present.contains(*k))
                .cloned()
                .collect();
            let mut undefined = Vec::new();
            for key in gone {
                self.commit_definition(&mut state, key, None, &mut undefined)?;
            }
            self.drop_undefined(&state, undefined);
            state.pending.retain(|(k, _), _| !inside(k));
        }
        self.apply_writes(&definitions)?;
        let tables = self.table_list();
        for (id, table) in tables {
            lock(&table).remove_range(id, start, end, self.segments.as_ref())?;
        }
        let samples = lock(&self.state).visible.len();
        self.apply_writes(&rows)?;
        self.apply_writes(&live_locks(&snap, start, end)?)?;
        let mut state = lock(&self.state);
        // Old commits, not fresh ones.
        state.visible.truncate(samples);
        state.applied.insert(region_id, index);
        state.skip.remove(&region_id);
        let mut awaiting = lock(&self.awaiting);
        for a in awaiting.iter_mut() {
            a.covered.push((start.to_vec(), end.to_vec()));
        }
        awaiting.retain(|a| !a.left().is_empty());
        info!(
            region_id,
            index,
            keys = data.len(),
            awaiting = awaiting.len(),
            "columnar replica installed a region snapshot"
        );
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

/// Every committed version in `[start, end)` of the rows and of the
/// metadata keys `is_schema` accepts, as the writes that made it (its
/// staged value, then its commit record), oldest version of a key first
/// (the CF keeps the newest first).
fn committed_versions<S: Snapshot>(
    snap: &S,
    start: &[u8],
    end: &[u8],
    is_schema: impl Fn(&[u8]) -> bool,
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
            let user = decode_key(encoded)?;
            wanted = row_key_table(&user).is_some() || is_schema(&user);
        }
        if wanted {
            let record = Write::from_bytes(it.value())?;
            let staged = record.write_kind() == WriteKind::Put && record.short_value.is_none();
            versions.push(with_staged_value(
                snap,
                encoded,
                staged.then_some(record.start_ts),
                Cf::Write,
                it.key(),
                it.value(),
            )?);
        }
        ok = it.next()?;
    }
    batch.extend(versions.drain(..).rev().flatten());
    Ok(batch)
}

/// The user key a write is about.
fn user_key_of(m: &Modify) -> Option<Vec<u8>> {
    match m {
        Modify::Put {
            cf: Cf::Lock, key, ..
        }
        | Modify::Delete { cf: Cf::Lock, key } => decode_key(key).ok(),
        Modify::Put { key, .. } | Modify::Delete { key, .. } => {
            split_ts(key).ok().and_then(|(e, _)| decode_key(e).ok())
        }
        Modify::DeleteRange { .. } => None,
    }
}

/// Of versions as [`committed_versions`] lists them, only each key's
/// newest.
fn newest_versions(versions: Vec<Modify>) -> Vec<Modify> {
    let mut out: Vec<(Vec<u8>, Vec<Modify>)> = Vec::new();
    let mut version = Vec::new();
    for m in versions {
        let ends = matches!(m, Modify::Put { cf: Cf::Write, .. });
        let key = user_key_of(&m);
        version.push(m);
        if !ends {
            continue;
        }
        let key = key.unwrap_or_default();
        let done = std::mem::take(&mut version);
        match out.last_mut() {
            Some((k, v)) if *k == key => *v = done,
            _ => out.push((key, done)),
        }
    }
    out.into_iter().flat_map(|(_, v)| v).collect()
}

/// The locks in `[start, end)`, with their staged values.
fn live_locks<S: Snapshot>(snap: &S, start: &[u8], end: &[u8]) -> Result<Vec<Modify>> {
    let mut it = snap.iter(Cf::Lock, bounds(start, end))?;
    let mut ok = it.seek_to_first()?;
    let mut locks = Vec::new();
    // Every key's, table definitions' too: a schema change prewritten before
    // the snapshot and committed after it needs its staged value as much
    // as a row does. Applying the writes keeps only what the replica wants.
    while ok {
        let l = Lock::from_bytes(it.value())?;
        let staged = l.lock_kind() == LockKind::Put && l.short_value.is_none();
        locks.extend(with_staged_value(
            snap,
            it.key(),
            staged.then_some(l.start_ts),
            Cf::Lock,
            it.key(),
            it.value(),
        )?);
        ok = it.next()?;
    }
    Ok(locks)
}

/// A write or lock record (`record` under `key` in `cf`), preceded by the
/// value it stages in the default CF under `encoded` at `staged_at` (a
/// put whose value is not inline).
fn with_staged_value<S: Snapshot>(
    snap: &S,
    encoded: &[u8],
    staged_at: Option<u64>,
    cf: Cf,
    key: &[u8],
    record: &[u8],
) -> Result<Vec<Modify>> {
    let mut out = Vec::with_capacity(2);
    if let Some(start_ts) = staged_at {
        let at = append_ts(encoded, start_ts);
        if let Some(value) = snap.get(Cf::Default, &at)? {
            out.push(Modify::Put {
                cf: Cf::Default,
                key: at,
                value,
            });
        }
    }
    out.push(Modify::Put {
        cf,
        key: key.to_vec(),
        value: record.to_vec(),
    });
    Ok(out)
}

fn lock_of(t: &Arc<Mutex<TableState>>) -> MutexGuard<'_, TableState> {
    lock(t)
}
