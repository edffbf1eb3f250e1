//! The learner state machine: it consumes, in log order, the MVCC effects
//! of every command a region applies (through the raft crate's learner
//! API, [`ApplyObserver`]) and keeps each table's columnar copy.
//!
//! A command's effects are the row store's own writes for it: a lock put
//! by a prewrite, a long value staged beside it, then a commit record that
//! makes the version visible at its commit timestamp, or a rollback that
//! drops it. Reading the effects rather than re-running the commands means
//! the replica and the row store can never disagree on what a command did.
//!
//! An entry the learner cannot decode stops it with a precise error; its
//! tables are then unavailable and queries go to the row store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use duet_raft::peer::{Applied, ApplyObserver};
use duet_storage::codec::key::row_key_table;
use duet_storage::engine::{Cf, Engine, EngineIterator, IterOptions, Modify, Snapshot};
use duet_storage::mvcc::{
    Lock, LockKind, Write, WriteKind, append_ts, decode_key, physical_ms, split_ts,
};
use tracing::error;

use crate::error::{Error, Result};
use crate::schema::{SchemaChange, SchemaSource};
use crate::table::{LayerConfig, ScanOutput, ScanRequest, TableState, Version};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the learner keeps besides the tables.
#[derive(Default)]
struct LearnerState {
    /// Long values staged by prewrites, by (row key, start ts), until
    /// their commit or rollback.
    pending: HashMap<(Vec<u8>, u64), Vec<u8>>,
    /// Metadata key → the table it defines.
    definitions: HashMap<Vec<u8>, i64>,
    /// Applied index per region.
    applied: HashMap<u64, u64>,
    /// Why the learner stopped, if it did.
    stopped: Option<String>,
    /// Per applied command that made rows visible: the time from its
    /// commit timestamp to now, until `take_visibility_delays` drains them.
    visible: Vec<Duration>,
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
    pub chunks: usize,
}

/// The columnar copies of every table this node replicates.
pub struct Replica {
    schemas: Arc<dyn SchemaSource>,
    config: LayerConfig,
    tables: RwLock<HashMap<i64, Arc<Mutex<TableState>>>>,
    state: Mutex<LearnerState>,
    /// One compaction at a time.
    compacting: Mutex<()>,
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
        }
    }

    fn table(&self, id: i64) -> Arc<Mutex<TableState>> {
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

    /// The rows of `table_id` visible at `request.read_ts`. The caller has
    /// made sure the learner applied everything committed before the read
    /// (a ReadIndex round: the learner applies with its peer). A lock that
    /// hides a version is reported ([`Error::Locked`]), never skipped.
    pub fn scan(&self, table_id: i64, request: &ScanRequest) -> Result<ScanOutput> {
        let unavailable = |reason: String| Error::Unavailable { table_id, reason };
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
                    chunks: t.chunks(),
                }
            })
            .collect();
        out.sort_by_key(|s| s.table_id);
        out
    }

    /// The status of one table's replica, with its rows visible now.
    pub fn table_status(&self, table_id: i64) -> Option<TableStatus> {
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
                chunks: t.chunks(),
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
            let output = input.run(safe_point, &self.config)?;
            if lock(&table).finish_compaction(&input, output) {
                done += 1;
            }
        }
        Ok(done)
    }

    fn stop(&self, region_id: u64, index: u64, e: &Error) {
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
            if !state.definitions.values().any(|t| *t == id) {
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
            if let Some(id) = state.definitions.remove(&key) {
                undefined.push(id);
            }
            return Ok(None);
        };
        match self.schemas.decode(&key, &value).map_err(Error::Internal)? {
            SchemaChange::None => {
                if let Some(id) = state.definitions.remove(&key) {
                    undefined.push(id);
                }
                Ok(None)
            }
            SchemaChange::Table(codec) => {
                let id = codec.table_id();
                state.definitions.insert(key, id);
                let table = self.table(id);
                let mut t = lock_of(&table);
                let new = t.codec.is_none();
                t.set_codec(codec)?;
                Ok(new.then_some(id))
            }
        }
    }

    /// Replaces table `table_id` by what `snap` holds of it (a table that
    /// just got a replica: its existing rows, then the log).
    pub fn backfill<S: Snapshot>(&self, snap: &S, table_id: i64) -> Result<()> {
        let Some(codec) = self.existing(table_id).and_then(|t| lock(&t).codec.clone()) else {
            return Ok(());
        };
        let fresh = Replica::new(Arc::clone(&self.schemas), self.config.clone());
        lock_of(&fresh.table(table_id)).set_codec(codec)?;
        let prefix = duet_storage::codec::key::row_prefix(table_id);
        let end = duet_storage::codec::key::prefix_end(&prefix);
        fresh.apply_writes(&committed_versions(self, snap, &prefix, &end)?)?;
        fresh.apply_writes(&live_locks(snap, &prefix, &end)?)?;
        let table = fresh.table(table_id);
        let pending = std::mem::take(&mut lock(&fresh.state).pending);
        let state = std::mem::take(&mut *lock(&table));
        if let Some(t) = self.existing(table_id) {
            *lock(&t) = state;
        }
        lock(&self.state).pending.extend(pending);
        Ok(())
    }

    /// Replaces every table by what `snap` (the row store at one applied
    /// position) holds: at startup, and when the peer installs a snapshot.
    pub fn rebuild_from<S: Snapshot>(&self, snap: &S) -> Result<()> {
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
        let applied = std::mem::take(&mut state.applied);
        *state = LearnerState { applied, ..learned };
        Ok(())
    }
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

/// Feeds a [`Replica`] from a peer's apply (the learner API), and rebuilds
/// it from the engine when the peer installs a snapshot.
pub struct Learner<E: Engine> {
    replica: Arc<Replica>,
    engine: Arc<E>,
}

impl<E: Engine> Learner<E> {
    pub fn new(replica: Arc<Replica>, engine: Arc<E>) -> Self {
        Learner { replica, engine }
    }
}

impl<E: Engine> ApplyObserver for Learner<E> {
    fn on_applied(&self, region_id: u64, index: u64, _term: u64, applied: &Applied<'_>) {
        if let Applied::Command {
            writes, ok: true, ..
        } = applied
        {
            let outcome = self.replica.apply_writes(writes).and_then(|new| {
                // The engine holds everything up to this entry.
                new.into_iter()
                    .try_for_each(|t| self.replica.backfill(&self.engine.snapshot(), t))
            });
            if let Err(e) = outcome {
                self.replica.stop(region_id, index, &e);
            }
        }
        lock(&self.replica.state).applied.insert(region_id, index);
    }

    fn on_snapshot(&self, region_id: u64, index: u64, _term: u64) {
        if let Err(e) = self.replica.rebuild_from(&self.engine.snapshot()) {
            self.replica.stop(region_id, index, &e);
        }
        lock(&self.replica.state).applied.insert(region_id, index);
    }

    fn progress(&self, region_id: u64) -> Option<u64> {
        self.replica.applied(region_id)
    }
}
