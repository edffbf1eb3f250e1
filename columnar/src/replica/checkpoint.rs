//! The replica's checkpoints: the manifest a start loads (applied index
//! per region, each table's stable run, the locks and staged values in
//! flight), the replay of the log entries applied since, and writing a new
//! checkpoint.

use super::{Awaiting, Durable, Replay, Replica, lock};
use crate::error::{Error, Result};
use crate::schema::SchemaSource;
use crate::segment::SegmentDir;
use crate::table::{Chunk, LayerConfig};
use duet_storage::engine::{Cf, EngineIterator, IterOptions, Modify, Snapshot};
use duet_storage::mvcc::{append_ts, encode_key};
use duet_storage::txn::commands::Effects;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tracing::{info, warn};

/// What a checkpoint leaves for the next start: the learner's applied
/// index per region, each table's stable run (the delta is empty), and the
/// locks and staged values of the transactions in flight at that point.
/// A start loads it and replays the log entries applied since.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Manifest {
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

impl Manifest {
    pub(super) fn files(&self) -> HashSet<String> {
        self.tables
            .values()
            .flat_map(|t| t.segments.iter().cloned())
            .chain(self.pending.clone())
            .collect()
    }
}

/// The manifest's format: 2 lists the definitions of tables without a
/// replica (whose rows the replica drops) among `definitions`.
const MANIFEST_VERSION: u32 = 2;

#[derive(Debug, Serialize, Deserialize)]
struct TableManifest {
    /// The definition the segments were written under.
    column_ids: Vec<u32>,
    /// Segment file names, in key order.
    segments: Vec<String>,
}

const MANIFEST: &str = "MANIFEST.json";

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

impl Replica {
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

    /// Installs checkpoint `m` (its definitions; stable runs from the
    /// segment files; locks and staged values from its pending file), then
    /// replays each region's log from the checkpoint's applied index to the
    /// learner's (`row_applied`, read from the learner's engine). Returns
    /// the number of entries replayed.
    pub(super) fn load<S: Snapshot>(
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
    pub(super) fn install_definitions(&self, definitions: &[(String, String)]) -> Result<()> {
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
    /// alone, or a region of the checkpoint is gone (merged away or moved).
    pub(super) fn replay_plan<S: Snapshot>(
        &self,
        snap: &S,
        m: &Manifest,
        row_applied: &HashMap<u64, u64>,
    ) -> Result<Vec<Replay>> {
        use duet_raft::peer::{Replay, applied_writes};
        let raft = |e: duet_raft::Error| Error::Internal(e.to_string());
        // A region of the checkpoint the learner no longer holds was merged
        // into a neighbour or moved away since: its log, and so what it
        // applied after the checkpoint, is gone with it.
        if let Some(gone) = (m.applied.keys()).find(|r| !row_applied.contains_key(r)) {
            return Err(Error::Internal(format!(
                "region {gone} of the checkpoint is no longer held here"
            )));
        }
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
}
