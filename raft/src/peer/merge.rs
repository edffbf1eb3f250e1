//! Merging two regions, as a peer sees it (the protocol is in
//! `docs/architecture/placement.md`, "Merging two regions"): the source's
//! leader proposes [`PrepareMerge`], which freezes the source; the target's
//! leader proposes [`CommitMerge`], which widens the target over the
//! source's range; or the source's leader proposes [`RollbackMerge`] when
//! the target moved on. A target replica holds back its apply at a
//! CommitMerge until the store has brought its replica of the source up to
//! the prepare (from the source's own log, see [`crate::regions`]), so the
//! target never serves the source's keys with some of their writes missing.

use duet_storage::engine::{Cf, Engine, WriteBatch};
use duet_storage::txn::commands::Response;
use prost::Message as _;
use protobuf::Message as _;
use raft::prelude::{Entry, EntryType};

use super::apply::{Kind, Outcome};
use super::{Callback, Peer};
use crate::error::{Error, Result};
use crate::keys;
use crate::region::{
    CommitMerge, MERGE_COMMIT_CONTEXT, MERGE_PREPARE_CONTEXT, MERGE_ROLLBACK_CONTEXT, MergeState,
    PrepareMerge, Region, RegionEpoch, RollbackMerge,
};

/// A CommitMerge a target replica held its apply at: the source region,
/// the index of its prepare, and whether the merge applies (the target
/// still at the epoch the prepare saw, on the source's stores). Only then
/// must the store's replica of the source catch up first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldMerge {
    pub source: u64,
    pub prepare_index: u64,
    pub applies: bool,
}

fn decode<M: prost::Message + Default>(entry: &Entry, what: &'static str) -> Result<M> {
    M::decode(entry.data.as_ref()).map_err(|e| Error::Corruption {
        what,
        detail: e.to_string(),
    })
}

fn is_commit_merge(entry: &Entry) -> bool {
    entry.get_entry_type() == EntryType::EntryNormal && entry.get_context() == MERGE_COMMIT_CONTEXT
}

impl<E: Engine> Peer<E> {
    /// The merge this region is in as a source, if any.
    pub fn merging(&self) -> Option<&MergeState> {
        self.merging.as_ref()
    }

    /// Reads the merge state a source region persisted, if any.
    pub(super) fn load_merging(engine: &E, region_id: u64) -> Result<Option<MergeState>> {
        engine
            .get(Cf::Raft, &keys::merge_state_key(region_id))?
            .map(|b| {
                MergeState::decode(b.as_slice()).map_err(|e| Error::Corruption {
                    what: "merge state",
                    detail: e.to_string(),
                })
            })
            .transpose()
    }

    /// Whether proposals that would change the region's range or peers must
    /// wait: it is merging, or a prepare of its own is in flight.
    pub(super) fn frozen(&self) -> bool {
        self.merging.is_some() || self.preparing.is_some_and(|i| i > self.applied)
    }

    /// Proposes merging this region into `target`, its neighbour on the
    /// same stores (on this region's leader). Answers once the prepare
    /// applied here; a region already merging into `target` answers at
    /// once.
    pub fn propose_prepare_merge(&mut self, target: &Region, callback: Callback) {
        if let Some(m) = &self.merging {
            match &m.target {
                Some(t) if t.id == target.id => callback(Ok(Response::Done)),
                _ => callback(Err(self.epoch_not_match())),
            }
            return;
        }
        if target.merged(&self.region).is_none() {
            callback(Err(Error::MergeRefused {
                region_id: self.region_id,
                reason: "the target is not a neighbour on the same stores".into(),
            }));
            return;
        }
        // Nothing in flight may apply before the prepare: it then always
        // applies, and the source's peers are the ones it names.
        let in_flight = self.applied < self.node.raft.raft_log.last_index();
        if self.frozen() || in_flight || self.node.raft.has_pending_conf() {
            callback(Err(Error::MergeRefused {
                region_id: self.region_id,
                reason: "a change of peers or a merge is in flight".into(),
            }));
            return;
        }
        let request = PrepareMerge {
            target: Some(target.clone()),
            source_epoch: Some(self.region.epoch()),
        };
        let data = request.encode_to_vec();
        if let Some((index, _)) = self.propose_entry(MERGE_PREPARE_CONTEXT.to_vec(), data, callback)
        {
            self.preparing = Some(index);
        }
    }

    /// On a merging source's leader: the CommitMerge to send to the
    /// target's leader, once every peer has the log up to the prepare.
    pub fn commit_merge_request(&self) -> Option<CommitMerge> {
        let m = self.merging.as_ref()?;
        if !self.is_leader() {
            return None;
        }
        let all_have_it =
            (self.node.raft.prs().iter()).all(|(_, pr)| pr.matched >= m.prepare_index);
        all_have_it.then(|| CommitMerge {
            source: Some(self.region.clone()),
            prepare_index: m.prepare_index,
            target_epoch: m.target.as_ref().and_then(|t| t.epoch),
        })
    }

    /// Proposes absorbing the source of `request` (on the target's leader),
    /// if the merge can apply: this region still at the epoch the prepare
    /// saw, and the source its neighbour on the same stores.
    pub fn propose_commit_merge(&mut self, request: &CommitMerge, callback: Callback) {
        let source = request.source.clone().unwrap_or_default();
        if request.target_epoch != Some(self.region.epoch()) || self.merging.is_some() {
            callback(Err(self.epoch_not_match()));
            return;
        }
        if self.region.merged(&source).is_none() {
            callback(Err(Error::MergeRefused {
                region_id: self.region_id,
                reason: "the source is not a neighbour on the same stores".into(),
            }));
            return;
        }
        let data = request.encode_to_vec();
        self.propose_entry(MERGE_COMMIT_CONTEXT.to_vec(), data, callback);
    }

    /// Proposes undoing this region's prepared merge (on its leader), once
    /// its target's epoch is past `target_now` so that no CommitMerge can
    /// apply any more.
    pub fn propose_rollback_merge(&mut self, target_now: RegionEpoch, callback: Callback) {
        let Some(m) = &self.merging else {
            callback(Ok(Response::Done));
            return;
        };
        let prepared = m.target.as_ref().and_then(|t| t.epoch);
        let moved = prepared
            .is_some_and(|p| target_now.version > p.version || target_now.conf_ver > p.conf_ver);
        if !moved {
            callback(Err(Error::MergeRefused {
                region_id: self.region_id,
                reason: "the target may still commit the merge".into(),
            }));
            return;
        }
        let request = RollbackMerge {
            prepare_index: m.prepare_index,
            version: self.region.epoch().version,
        };
        let data = request.encode_to_vec();
        self.propose_entry(MERGE_ROLLBACK_CONTEXT.to_vec(), data, callback);
    }

    /// Applies a PrepareMerge: the source's epoch moves past every request
    /// routed to it before, and it records the merge.
    pub(super) fn apply_prepare_merge(&mut self, entry: &Entry) -> Result<Outcome> {
        if self.preparing.is_some_and(|i| i <= entry.index) {
            self.preparing = None;
        }
        let request: PrepareMerge = decode(entry, "prepare merge")?;
        if self.merging.is_some()
            || request.target.is_none()
            || request.source_epoch != Some(self.region.epoch())
        {
            return Ok(Outcome::new(Kind::Empty, Some(Err(self.epoch_not_match()))));
        }
        let mut region = self.region.clone();
        let epoch = region.epoch();
        region.epoch = Some(RegionEpoch {
            conf_ver: epoch.conf_ver + 1,
            version: epoch.version + 1,
        });
        let state = MergeState {
            target: request.target,
            prepare_index: entry.index,
        };
        let mut batch = self.epoch_step(entry.index);
        region.save(&mut batch);
        batch.put(
            Cf::Raft,
            keys::merge_state_key(self.region_id),
            state.encode_to_vec(),
        );
        tracing::info!(
            region_id = self.region_id,
            target = state.target.as_ref().map_or(0, |t| t.id),
            index = entry.index,
            "merge prepared"
        );
        self.region = region;
        self.merging = Some(state);
        Ok(Outcome::with_batch(Kind::Empty, batch))
    }

    /// Applies a CommitMerge (the store's replica of the source has caught
    /// up, see [`held_merge`](Self::held_merge)): the target widens over
    /// the source, which the store then destroys.
    pub(super) fn apply_commit_merge(&mut self, entry: &Entry) -> Result<Outcome> {
        let request: CommitMerge = decode(entry, "commit merge")?;
        let source = request.source.unwrap_or_default();
        let merged = (request.target_epoch == Some(self.region.epoch()) && self.merging.is_none())
            .then(|| self.region.merged(&source))
            .flatten();
        let Some(next) = merged else {
            return Ok(Outcome::new(Kind::Empty, Some(Err(self.epoch_not_match()))));
        };
        let mut batch = self.epoch_step(entry.index);
        next.save(&mut batch);
        tracing::info!(
            region_id = self.region_id,
            source = source.id,
            index = entry.index,
            "merge committed"
        );
        self.region = next;
        self.merged.push(source.id);
        Ok(Outcome::with_batch(Kind::Empty, batch))
    }

    /// Applies a RollbackMerge: the source serves again, at a new version.
    pub(super) fn apply_rollback_merge(&mut self, entry: &Entry) -> Result<Outcome> {
        let request: RollbackMerge = decode(entry, "rollback merge")?;
        let prepared = self.merging.as_ref().map(|m| m.prepare_index);
        if prepared != Some(request.prepare_index) {
            return Ok(Outcome::new(Kind::Empty, Some(Err(self.epoch_not_match()))));
        }
        let mut region = self.region.clone();
        let epoch = region.epoch();
        region.epoch = Some(RegionEpoch {
            conf_ver: epoch.conf_ver,
            version: epoch.version + 1,
        });
        let mut batch = self.epoch_step(entry.index);
        region.save(&mut batch);
        batch.delete(Cf::Raft, keys::merge_state_key(self.region_id));
        tracing::info!(region_id = self.region_id, "merge rolled back");
        self.region = region;
        self.merging = None;
        Ok(Outcome::with_batch(Kind::Empty, batch))
    }

    /// A batch that records, for replays of the log, that the entry at
    /// `index` changed the epoch version from the current one.
    fn epoch_step(&self, index: u64) -> WriteBatch {
        let mut batch = WriteBatch::new();
        batch.put(
            Cf::Raft,
            keys::epoch_step_key(self.region_id, index),
            self.region.epoch().version.to_be_bytes().to_vec(),
        );
        batch
    }

    /// Whether the apply must stop before `entry`: entries after a held one
    /// wait too, and a CommitMerge waits until the store clears it.
    pub(super) fn must_hold(&self, entry: &Entry) -> bool {
        !self.held.is_empty() || (is_commit_merge(entry) && entry.index != self.merge_cleared)
    }

    /// The CommitMerge this peer's apply stopped at, if any.
    pub fn held_merge(&self) -> Result<Option<HeldMerge>> {
        let Some(entry) = self.held.first() else {
            return Ok(None);
        };
        let request: CommitMerge = decode(entry, "commit merge")?;
        let source = request.source.unwrap_or_default();
        let applies = request.target_epoch == Some(self.region.epoch())
            && self.merging.is_none()
            && self.region.merged(&source).is_some();
        Ok(Some(HeldMerge {
            source: source.id,
            prepare_index: request.prepare_index,
            applies,
        }))
    }

    /// Applies the entries held at a CommitMerge, which the store cleared.
    pub fn resume_apply(&mut self) {
        let Some(first) = self.held.first() else {
            return;
        };
        self.merge_cleared = first.index;
        let held = std::mem::take(&mut self.held);
        self.apply(held);
        self.finish_reads();
        self.pump();
    }

    /// Applies this peer's own committed log up to `index` (a merge source
    /// whose target is about to absorb it: the entries are in its log,
    /// which the source's leader checked before asking for the commit),
    /// unless it stops at a merge of its own first (see
    /// [`held_merge`](Self::held_merge)).
    pub fn apply_own_log_to(&mut self, index: u64) -> Result<()> {
        if self.applied >= index {
            return Ok(());
        }
        let mut entries = Vec::new();
        for i in self.applied + 1..=index {
            let bytes = (self
                .engine
                .get(Cf::Raft, &keys::entry_key(self.region_id, i))?)
            .ok_or_else(|| Error::Corruption {
                what: "merge source log",
                detail: format!(
                    "region {} lacks entry {i} of the merge it prepared at {index}",
                    self.region_id
                ),
            })?;
            let entry = Entry::parse_from_bytes(&bytes).map_err(|e| Error::Corruption {
                what: "log entry",
                detail: e.to_string(),
            })?;
            entries.push(entry);
        }
        // It may stop at a CommitMerge of its own (the store finishes it).
        self.apply(entries);
        Ok(())
    }

    /// The sources this peer absorbed since the last call, for the store
    /// to destroy.
    pub fn take_merged(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.merged)
    }
}
