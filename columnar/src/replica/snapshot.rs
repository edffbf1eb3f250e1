//! Installing a Raft snapshot: the replica's copy of the region's key
//! range replaced by the snapshot's committed versions, locks and staged
//! values.

use super::{Replica, lock};
use crate::error::Result;
use duet_storage::codec::key::row_key_table;
use duet_storage::engine::memory::MemoryEngine;
use duet_storage::engine::{
    Cf, Engine, EngineIterator, IterOptions, Modify, Snapshot, WriteBatch, WriteOptions,
};
use duet_storage::mvcc::{Lock, LockKind, Write, WriteKind, append_ts, decode_key, split_ts};
use std::collections::HashSet;
use tracing::info;

impl Replica {
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
}

impl Replica {
    /// Forgets region `region_id`, which the learner store no longer
    /// holds: its applied position, and — unless `data_kept` — its rows,
    /// locks and staged values in `[start, end)` (table definitions stay:
    /// they are the catalog's, whichever region carries them).
    pub fn forget_region(
        &self,
        region_id: u64,
        start: &[u8],
        end: &[u8],
        data_kept: bool,
    ) -> Result<()> {
        if self.stopped().is_some() {
            return Ok(());
        }
        {
            let mut state = lock(&self.state);
            state.applied.remove(&region_id);
            state.skip.remove(&region_id);
            if !data_kept {
                let inside = |k: &[u8]| k >= start && (end.is_empty() || k < end);
                state.pending.retain(|(k, _), _| !inside(k));
            }
        }
        if !data_kept {
            for (id, table) in self.table_list() {
                lock(&table).remove_range(id, start, end, self.segments.as_ref())?;
            }
        }
        info!(region_id, data_kept, "columnar replica forgot a region");
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
