//! Applying committed log entries: each command's MVCC effects (locks,
//! staged values, commit records, rollbacks) become versions in the
//! tables' columnar copies, and schema changes become table definitions.

use super::{Awaiting, LearnerState, MAX_VISIBILITY_SAMPLES, Replica, lock, lock_of};
use crate::error::{Error, Result};
use crate::schema::SchemaChange;
use crate::table::Version;
use duet_storage::codec::key::row_key_table;
use duet_storage::engine::{Cf, Modify};
use duet_storage::mvcc::{Lock, Write, WriteKind, decode_key, physical_ms, split_ts};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing::info;

impl Replica {
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
                        WriteKind::Put => match write.short_value.or(staged) {
                            Some(v) => Some(v),
                            // Its prewrite came before this replica began
                            // (a restart without a checkpoint): the range's
                            // awaited snapshot brings the committed value.
                            None if self.awaits_key(&user) => continue,
                            None => {
                                return Err(Error::Internal(format!(
                                    "the value committed at {commit_ts} for key {user:?} (started at {}) never arrived",
                                    write.start_ts
                                )));
                            }
                        },
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
    pub(super) fn drop_undefined(&self, state: &LearnerState, undefined: Vec<i64>) {
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
    pub(super) fn wanted(&self, state: &LearnerState, user_key: &[u8]) -> bool {
        match row_key_table(user_key) {
            Some(t) => !state.unreplicated_ids.contains(&t),
            None => self.schemas.is_schema_key(user_key),
        }
    }

    /// The table of a row key, unless it has no replica.
    pub(super) fn kept_table(&self, state: &LearnerState, user_key: &[u8]) -> Option<i64> {
        row_key_table(user_key).filter(|t| !state.unreplicated_ids.contains(t))
    }

    pub(super) fn commit_row(
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
    pub(super) fn commit_definition(
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
}
