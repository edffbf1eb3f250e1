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
//!
//! The work is split by concern: [`apply`] (log entries), [`checkpoint`]
//! (start and durable state), [`snapshot`] (installing a region), [`scan`]
//! (reads and status).

mod apply;
mod checkpoint;
mod scan;
mod snapshot;

pub use checkpoint::applied_indices;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use duet_storage::codec::key::{prefix_end, row_prefix};
use duet_storage::engine::Modify;
use tracing::error;

use crate::error::{Error, Result};
use crate::schema::SchemaSource;
use crate::segment::SegmentDir;
use crate::table::{LayerConfig, TableState};

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
    /// `read_ts`: the timestamp the read is at (0: none), which the
    /// leaders raise their read floor to.
    fn catch_up(&self, wait: Duration, read_ts: u64) -> Result<()>;
    /// Whether this node follows every region over `[start, end)`: a
    /// table some of whose regions have no learner here (they are placed
    /// on other nodes) cannot be read from this replica.
    fn covers(&self, start: &[u8], end: &[u8]) -> bool {
        let _ = (start, end);
        true
    }
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

    /// Makes the replica current for a read at `read_ts` (0: none) that
    /// begins now: a read index through the learner peers, then the
    /// replica's own queue; within `read_wait` in all.
    pub fn catch_up(&self, read_ts: u64) -> Result<()> {
        let start = Instant::now();
        let point = self
            .read_point
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(point) = point {
            point.catch_up(self.config.read_wait, read_ts)?;
        }
        self.wait_caught_up(self.config.read_wait.saturating_sub(start.elapsed()))
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

    /// Whether `key` lies in a range that awaits its snapshot.
    fn awaits_key(&self, key: &[u8]) -> bool {
        let next = [key, &[0][..]].concat();
        lock(&self.awaiting).iter().any(|a| a.lacks(key, &next))
    }

    /// Whether the node follows every region of `table_id`'s rows (within
    /// `keys`, if given).
    pub(super) fn covers_table(&self, table_id: i64, keys: Option<&(Vec<u8>, Vec<u8>)>) -> bool {
        let (start, end) = table_span(table_id, keys);
        let point = self
            .read_point
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        point.is_none_or(|p| p.covers(&start, &end))
    }

    /// Whether table `id` has rows (within `keys`, if given) in a range the
    /// replica awaits.
    fn awaits_table(&self, id: i64, keys: Option<&(Vec<u8>, Vec<u8>)>) -> bool {
        let (start, end) = table_span(id, keys);
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

fn lock_of(t: &Arc<Mutex<TableState>>) -> MutexGuard<'_, TableState> {
    lock(t)
}

/// The row keys of table `table_id`, narrowed to `keys` if given (`end`
/// empty: no bound).
fn table_span(table_id: i64, keys: Option<&(Vec<u8>, Vec<u8>)>) -> (Vec<u8>, Vec<u8>) {
    let mut start = row_prefix(table_id);
    let mut end = prefix_end(&start);
    if let Some((s, e)) = keys {
        if *s > start {
            start = s.clone();
        }
        if !e.is_empty() && *e < end {
            end = e.clone();
        }
    }
    (start, end)
}
