//! Raft log storage for one region peer: raft-rs's in-memory `MemStorage`
//! serves reads, and every change is also written, in the same batch as the
//! rest of a Ready, to the engine's `raft` column family, from which the peer
//! is rebuilt on restart. Log storage (entries, hard state) is kept apart from
//! the applied state machine (the KV data and the applied index).

use duet_storage::engine::{Cf, Engine, EngineIterator, IterOptions, Snapshot as _, WriteBatch};
use raft::prelude::{ConfState, Entry, HardState, Snapshot};
use raft::storage::MemStorage;
use raft::{GetEntriesContext, RaftState, Storage};

use crate::error::{Error, Result};
use crate::keys;

/// Builds the data of a snapshot at the current applied index: (index, data).
pub type SnapshotSource = Box<dyn Fn() -> Result<(u64, Vec<u8>)> + Send + Sync>;

/// The log of one region peer.
pub struct PeerStorage {
    region_id: u64,
    mem: MemStorage,
    snapshot_source: Option<SnapshotSource>,
}

fn corrupt(what: &'static str, e: impl std::fmt::Display) -> Error {
    Error::Corruption {
        what,
        detail: e.to_string(),
    }
}

fn decode<M: protobuf::Message>(what: &'static str, bytes: &[u8]) -> Result<M> {
    M::parse_from_bytes(bytes).map_err(|e| corrupt(what, e))
}

fn encode(m: &impl protobuf::Message) -> Vec<u8> {
    m.write_to_bytes().unwrap_or_default()
}

impl PeerStorage {
    /// Loads the peer's log from `engine`; a peer with no state starts with
    /// the given membership (bootstrap).
    pub fn open<E: Engine>(
        engine: &E,
        region_id: u64,
        voters: &[u64],
        learners: &[u64],
    ) -> Result<Self> {
        let snap = engine.snapshot();
        let mem = MemStorage::new();
        let conf_state = match snap.get(Cf::Raft, &keys::conf_state_key(region_id))? {
            Some(b) => decode::<ConfState>("conf state", &b)?,
            None => {
                let mut cs = ConfState::default();
                cs.set_voters(voters.to_vec());
                cs.set_learners(learners.to_vec());
                cs
            }
        };
        if let Some(b) = snap.get(Cf::Raft, &keys::truncated_state_key(region_id))? {
            let (index, term) = decode_truncated(&b)?;
            let mut s = Snapshot::default();
            s.mut_metadata().index = index;
            s.mut_metadata().term = term;
            s.mut_metadata().set_conf_state(conf_state.clone());
            mem.wl().apply_snapshot(s)?;
        }
        mem.wl().set_conf_state(conf_state);
        let mut entries = Vec::new();
        let first = mem.first_index()?;
        let opts = IterOptions::range(
            keys::entry_key(region_id, first),
            keys::entry_key(region_id, u64::MAX),
        );
        let mut it = snap.iter(Cf::Raft, opts)?;
        let mut ok = it.seek_to_first()?;
        while ok {
            entries.push(decode::<Entry>("log entry", it.value())?);
            ok = it.next()?;
        }
        mem.wl().append(&entries)?;
        if let Some(b) = snap.get(Cf::Raft, &keys::hard_state_key(region_id))? {
            mem.wl()
                .set_hardstate(decode::<HardState>("hard state", &b)?);
        }
        Ok(PeerStorage {
            region_id,
            mem,
            snapshot_source: None,
        })
    }

    /// Appends (or overwrites a conflicting suffix with) `entries`.
    pub fn append(&self, entries: &[Entry], batch: &mut WriteBatch) -> Result<()> {
        let Some(last_new) = entries.last().map(|e| e.index) else {
            return Ok(());
        };
        let last_old = self.mem.last_index()?;
        self.mem.wl().append(entries)?;
        for e in entries {
            batch.put(
                Cf::Raft,
                keys::entry_key(self.region_id, e.index),
                encode(e),
            );
        }
        if last_old > last_new {
            batch.delete_range(
                Cf::Raft,
                keys::entry_key(self.region_id, last_new + 1),
                keys::entry_key(self.region_id, last_old + 1),
            );
        }
        Ok(())
    }

    pub fn set_hard_state(&self, hs: &HardState, batch: &mut WriteBatch) {
        self.mem.wl().set_hardstate(hs.clone());
        batch.put(Cf::Raft, keys::hard_state_key(self.region_id), encode(hs));
    }

    /// Records a new commit index (from a light ready).
    pub fn set_commit(&self, commit: u64, batch: &mut WriteBatch) {
        let hs = {
            let mut core = self.mem.wl();
            core.mut_hard_state().commit = commit;
            core.hard_state().clone()
        };
        batch.put(Cf::Raft, keys::hard_state_key(self.region_id), encode(&hs));
    }

    pub fn set_conf_state(&self, cs: &ConfState, batch: &mut WriteBatch) {
        self.mem.wl().set_conf_state(cs.clone());
        batch.put(Cf::Raft, keys::conf_state_key(self.region_id), encode(cs));
    }

    /// Drops log entries before `index` (which must be applied).
    pub fn compact(&self, index: u64, batch: &mut WriteBatch) -> Result<()> {
        let first = self.mem.first_index()?;
        if index <= first {
            return Ok(());
        }
        let term = self.mem.term(index - 1)?;
        self.mem.wl().compact(index)?;
        batch.delete_range(
            Cf::Raft,
            keys::entry_key(self.region_id, first),
            keys::entry_key(self.region_id, index),
        );
        batch.put(
            Cf::Raft,
            keys::truncated_state_key(self.region_id),
            encode_truncated(index - 1, term),
        );
        Ok(())
    }

    /// Sets where snapshots with data come from (the peer's applied state).
    pub fn set_snapshot_source(&mut self, source: SnapshotSource) {
        self.snapshot_source = Some(source);
    }

    /// Installs a received snapshot's metadata: the log restarts after it.
    pub fn apply_snapshot(&self, snap: &Snapshot, batch: &mut WriteBatch) -> Result<()> {
        let meta = snap.get_metadata();
        let last_old = self.mem.last_index()?;
        let first_old = self.mem.first_index()?;
        if meta.index + 1 == first_old && last_old == meta.index {
            // The log stands empty right after this very index (an earlier
            // snapshot): one a learner asked for, for its observers' data.
            // The log does not change; MemStorage would refuse it as out
            // of date, though raft-rs took it.
            let mut core = self.mem.wl();
            core.set_conf_state(meta.get_conf_state().clone());
            let hs = core.mut_hard_state();
            hs.term = hs.term.max(meta.term);
            hs.commit = hs.commit.max(meta.index);
        } else {
            self.mem.wl().apply_snapshot(snap.clone())?;
        }
        batch.delete_range(
            Cf::Raft,
            keys::entry_key(self.region_id, first_old.min(meta.index + 1)),
            keys::entry_key(self.region_id, last_old.max(meta.index) + 1),
        );
        batch.put(
            Cf::Raft,
            keys::truncated_state_key(self.region_id),
            encode_truncated(meta.index, meta.term),
        );
        batch.put(
            Cf::Raft,
            keys::conf_state_key(self.region_id),
            encode(meta.get_conf_state()),
        );
        batch.put(
            Cf::Raft,
            keys::hard_state_key(self.region_id),
            encode(self.mem.rl().hard_state()),
        );
        Ok(())
    }

    pub fn first_index_now(&self) -> u64 {
        self.mem.first_index().unwrap_or(1)
    }

    pub fn hard_state(&self) -> HardState {
        self.mem.rl().hard_state().clone()
    }
}

/// Where the log of a new region starts, bootstrapped or split: every
/// founding replica writes the same state at this index and term. A peer
/// that did not (it is behind the split, or joined later) has an empty log
/// and cannot take entries that follow this index, so the leader sends it a
/// snapshot — which carries the region's data and membership.
pub const INIT_INDEX: u64 = 5;

/// Adds to `batch` the initial Raft state of `region_id` with membership
/// `conf_state`. A vote this store already cast for the region (as a peer
/// created by a message) in a later term is kept.
pub fn write_initial_state<S: duet_storage::engine::Snapshot>(
    snap: &S,
    region_id: u64,
    conf_state: &ConfState,
    batch: &mut WriteBatch,
) -> Result<()> {
    let mut hs = HardState::default();
    if let Some(b) = snap.get(Cf::Raft, &keys::hard_state_key(region_id))? {
        let old = decode::<HardState>("hard state", &b)?;
        if old.term > INIT_INDEX {
            hs.term = old.term;
            hs.vote = old.vote;
        }
    }
    hs.term = hs.term.max(INIT_INDEX);
    hs.commit = INIT_INDEX;
    batch.delete_range(
        Cf::Raft,
        keys::entry_key(region_id, 0),
        keys::entry_key(region_id, u64::MAX),
    );
    batch.put(Cf::Raft, keys::hard_state_key(region_id), encode(&hs));
    batch.put(
        Cf::Raft,
        keys::truncated_state_key(region_id),
        encode_truncated(INIT_INDEX, INIT_INDEX),
    );
    batch.put(
        Cf::Raft,
        keys::conf_state_key(region_id),
        encode(conf_state),
    );
    batch.put(
        Cf::Raft,
        keys::apply_state_key(region_id),
        INIT_INDEX.to_be_bytes().to_vec(),
    );
    Ok(())
}

fn encode_truncated(index: u64, term: u64) -> Vec<u8> {
    let mut v = index.to_be_bytes().to_vec();
    v.extend_from_slice(&term.to_be_bytes());
    v
}

fn decode_truncated(b: &[u8]) -> Result<(u64, u64)> {
    if b.len() != 16 {
        return Err(corrupt(
            "truncated state",
            format!("{} bytes instead of 16", b.len()),
        ));
    }
    let (i, t) = b.split_at(8);
    Ok((
        u64::from_be_bytes(i.try_into().unwrap_or_default()),
        u64::from_be_bytes(t.try_into().unwrap_or_default()),
    ))
}

impl Storage for PeerStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        self.mem.initial_state()
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        self.mem.entries(low, high, max_size, context)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.mem.term(idx)
    }

    fn first_index(&self) -> raft::Result<u64> {
        self.mem.first_index()
    }

    fn last_index(&self) -> raft::Result<u64> {
        self.mem.last_index()
    }

    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        let Some(source) = &self.snapshot_source else {
            return self.mem.snapshot(request_index, to);
        };
        let (index, data) = source()
            .map_err(|e| raft::Error::Store(raft::StorageError::Other(e.to_string().into())))?;
        // A follower that asked for a snapshot wants one at least as new
        // as its log: built again once this peer has applied as far.
        if index < request_index {
            return Err(raft::Error::Store(
                raft::StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        let mut snap = Snapshot::default();
        snap.set_data(data.into());
        let meta = snap.mut_metadata();
        meta.index = index;
        meta.term = self.mem.term(index)?;
        meta.set_conf_state(self.mem.initial_state()?.conf_state);
        Ok(snap)
    }
}
