//! Applying committed entries and snapshots: each entry kind (a command's
//! effects, a command, a split, a membership change) in a function of its
//! own, then the answers to the proposals that wait on it.

use super::log::{EFFECTS_CONTEXT, effects_version};
use super::{Applied, ApplyResult, Installed, Peer};
use crate::error::{Error, Result};
use crate::keys;
use crate::region::Region;
use duet_storage::engine::{Cf, Engine, Modify, WriteBatch, WriteOptions};
use duet_storage::txn::commands::{self, Command, Effects, Response};
use protobuf::Message as _;
use raft::prelude::{ConfChangeV2, ConfState, Entry, EntryType};

/// What applying one entry did, owned, before the observers see it as
/// [`Applied`].
pub(super) enum Kind {
    Empty,
    Opaque,
    Command { ok: bool },
    Split(Region, Region),
    ConfChange(ConfState),
}

/// One entry's apply: what it did, the writes to make, and the answer
/// to its proposal (none for entries no proposal waits on).
pub(super) struct Outcome {
    kind: Kind,
    batch: WriteBatch,
    result: Option<ApplyResult>,
}

impl Outcome {
    /// An outcome with no writes.
    pub(super) fn new(kind: Kind, result: Option<ApplyResult>) -> Outcome {
        Outcome {
            kind,
            batch: WriteBatch::new(),
            result,
        }
    }

    /// An admin entry that applied with `batch`'s writes.
    pub(super) fn with_batch(kind: Kind, batch: WriteBatch) -> Outcome {
        Outcome {
            kind,
            batch,
            result: Some(Ok(Response::Done)),
        }
    }
}

/// Errors that come from the engine rather than from the command's logic.
fn is_engine_failure(e: &duet_storage::Error) -> bool {
    matches!(e, duet_storage::Error::Engine(_))
}

impl<E: Engine> Peer<E> {
    /// Replaces this peer's data and log by a snapshot from the leader (a
    /// peer that keeps no data replaces only its log and descriptor, and
    /// its observers take the data).
    pub(super) fn install_snapshot(&mut self, snap: raft::prelude::Snapshot) -> Result<()> {
        let (index, term) = (snap.get_metadata().index, snap.get_metadata().term);
        let mut batch = WriteBatch::new();
        self.node.store().apply_snapshot(&snap, &mut batch)?;
        let mut contents = crate::snapshot::decode(&snap.data)?;
        let installed = if self.stores_data {
            Some(crate::snapshot::install(
                self.engine.as_ref(),
                &mut contents,
                &mut batch,
            )?)
        } else {
            if let Some(region) = &contents.region {
                region.save(&mut batch);
            }
            None
        };
        batch.put(
            Cf::Raft,
            keys::apply_state_key(self.region_id),
            index.to_be_bytes().to_vec(),
        );
        self.engine.write(&batch, WriteOptions { sync: true })?;
        self.applied = index;
        if let Some(region) = contents.region {
            self.region = region;
        }
        let installed = Installed {
            region: &self.region,
            data: match installed {
                Some(range) => &batch.modifies[range],
                None => &contents.writes,
            },
        };
        for o in &self.observers {
            o.on_snapshot(self.region_id, index, term, &installed);
        }
        Ok(())
    }

    /// Applies committed entries in order. Panics if the engine fails: an
    /// apply must never diverge between replicas.
    pub(super) fn apply(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            if self.must_hold(&entry) {
                self.held.push(entry);
                continue;
            }
            self.log_bytes += entry.data.len() as u64;
            if let Err(e) = self.apply_entry(&entry) {
                panic!(
                    "region {} peer {}: cannot apply entry {}: {e}",
                    self.region_id, self.id, entry.index
                );
            }
        }
        if !self.deferred.is_empty() {
            let batch = std::mem::take(&mut self.deferred);
            if let Err(e) = self.engine.write(&batch, WriteOptions::default()) {
                panic!(
                    "region {} peer {}: cannot record the applied state: {e}",
                    self.region_id, self.id
                );
            }
        }
    }

    pub(super) fn apply_entry(&mut self, entry: &Entry) -> Result<()> {
        let Outcome {
            kind,
            mut batch,
            result,
        } = match entry.get_entry_type() {
            EntryType::EntryNormal if entry.get_context() == crate::region::SPLIT_CONTEXT => {
                self.apply_split_entry(entry)?
            }
            EntryType::EntryNormal
                if entry.get_context() == crate::region::MERGE_PREPARE_CONTEXT =>
            {
                self.apply_prepare_merge(entry)?
            }
            EntryType::EntryNormal
                if entry.get_context() == crate::region::MERGE_COMMIT_CONTEXT =>
            {
                self.apply_commit_merge(entry)?
            }
            EntryType::EntryNormal
                if entry.get_context() == crate::region::MERGE_ROLLBACK_CONTEXT =>
            {
                self.apply_rollback_merge(entry)?
            }
            EntryType::EntryNormal if entry.data.is_empty() => Outcome::new(Kind::Empty, None),
            EntryType::EntryNormal if entry.get_context().starts_with(EFFECTS_CONTEXT) => {
                self.apply_effects(entry)?
            }
            // An entry written before effects were replicated: the command
            // itself, which a peer without data cannot run.
            EntryType::EntryNormal if !self.stores_data => Outcome::new(
                Kind::Opaque,
                Some(Err(Error::NoData {
                    region_id: self.region_id,
                })),
            ),
            EntryType::EntryNormal => self.apply_command(entry)?,
            EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                self.apply_conf_change_entry(entry)?
            }
        };
        // The command's writes come first in the batch; a peer that keeps no
        // data writes only the Raft state behind them.
        let effects = if self.stores_data {
            batch.modifies.len()
        } else {
            let (data, raft): (Vec<Modify>, Vec<Modify>) = std::mem::take(&mut batch.modifies)
                .into_iter()
                .partition(|m| m.cf() != Cf::Raft);
            let effects = data.len();
            batch.modifies = data;
            batch.modifies.extend(raft);
            effects
        };
        self.wake_released(&batch.modifies[..effects]);
        if matches!(kind, Kind::Split(..)) {
            self.wake_all();
        }
        for m in &batch.modifies[..effects] {
            if let Modify::Put {
                cf: cf @ (Cf::Write | Cf::Default),
                key,
                value,
            } = m
            {
                self.written_keys += u64::from(*cf == Cf::Write);
                self.written_bytes += (key.len() + value.len()) as u64;
            }
        }
        batch.put(
            Cf::Raft,
            keys::apply_state_key(self.region_id),
            entry.index.to_be_bytes().to_vec(),
        );
        if self.stores_data {
            self.engine.write(&batch, WriteOptions::default())?;
        } else {
            // Written once for all the entries of this apply (it answers
            // no proposal, and nothing reads it before then).
            let kept = batch.modifies.split_off(effects);
            self.deferred.modifies.extend(kept);
        }
        self.applied = entry.index;
        // Observers see the command's own writes, not the apply state.
        let applied = match &kind {
            Kind::Empty => Applied::Empty,
            Kind::Opaque => Applied::Opaque,
            Kind::Command { ok } => Applied::Command {
                ok: *ok,
                writes: &batch.modifies[..effects],
            },
            Kind::Split(left, right) => Applied::Split { left, right },
            Kind::ConfChange(cs) => Applied::ConfChange(cs),
        };
        for o in &self.observers {
            o.on_applied(self.region_id, entry.index, entry.term, &applied);
        }
        self.answer_proposals(entry, result);
        Ok(())
    }

    /// A split entry: the region narrowed and the new one written, or
    /// refused alike everywhere if the range changed since the proposal.
    pub(super) fn apply_split_entry(&mut self, entry: &Entry) -> Result<Outcome> {
        let request: crate::region::SplitRequest = prost::Message::decode(entry.data.as_ref())
            .map_err(|e| Error::Corruption {
                what: "split request",
                detail: e.to_string(),
            })?;
        let mut batch = WriteBatch::new();
        // A merging region keeps its range until the merge ends.
        if self.merging.is_some() {
            return Ok(Outcome::new(Kind::Empty, Some(Err(self.epoch_not_match()))));
        }
        Ok(match self.apply_split(&request, &mut batch)? {
            Some(right) => Outcome {
                kind: Kind::Split(self.region.clone(), right),
                batch,
                result: Some(Ok(Response::Done)),
            },
            None => Outcome::new(Kind::Empty, Some(Err(self.epoch_not_match()))),
        })
    }

    /// A command's effects as the leader logged them, unless a split
    /// applied since the leader ran it (its keys may no longer all be this
    /// region's).
    pub(super) fn apply_effects(&mut self, entry: &Entry) -> Result<Outcome> {
        let version = effects_version(entry.get_context())?;
        if version != self.region.epoch().version {
            return Ok(Outcome::new(
                Kind::Command { ok: false },
                Some(Err(self.epoch_not_match())),
            ));
        }
        let (writes, response) = Effects::from_bytes(&entry.data)?.into_parts()?;
        Ok(Outcome {
            kind: Kind::Command {
                ok: response.is_ok(),
            },
            batch: writes,
            result: Some(response.map_err(Error::Storage)),
        })
    }

    /// A command logged before effects were, run here; one routed by a
    /// stale view of the regions is refused with no writes.
    pub(super) fn apply_command(&mut self, entry: &Entry) -> Result<Outcome> {
        let command = Command::from_bytes(&entry.data)?;
        if !command.within(&self.region.start_key, &self.region.end_key) {
            return Ok(Outcome::new(
                Kind::Command { ok: false },
                Some(Err(self.epoch_not_match())),
            ));
        }
        Ok(match commands::apply(&self.engine.snapshot(), &command) {
            Ok((writes, response)) => Outcome {
                kind: Kind::Command { ok: true },
                batch: writes,
                result: Some(Ok(response)),
            },
            Err(e) if is_engine_failure(&e) => return Err(e.into()),
            Err(e) => Outcome::new(Kind::Command { ok: false }, Some(Err(Error::Storage(e)))),
        })
    }

    /// A membership change, with the addresses of joining stores in its
    /// context. An invalid change (e.g. removing every voter) fails the
    /// same way on every replica: it is skipped, not fatal.
    pub(super) fn apply_conf_change_entry(&mut self, entry: &Entry) -> Result<Outcome> {
        let bad = |e: protobuf::ProtobufError| Error::Corruption {
            what: "conf change",
            detail: e.to_string(),
        };
        let (changed, context) = if entry.get_entry_type() == EntryType::EntryConfChange {
            let cc = raft::prelude::ConfChange::parse_from_bytes(&entry.data).map_err(bad)?;
            (self.node.apply_conf_change(&cc), cc.get_context().to_vec())
        } else {
            let cc = ConfChangeV2::parse_from_bytes(&entry.data).map_err(bad)?;
            (self.node.apply_conf_change(&cc), cc.get_context().to_vec())
        };
        // A context that does not decode decodes alike nowhere, and adds
        // no address.
        let addrs = <crate::region::PeerAddresses as prost::Message>::decode(context.as_slice())
            .map(|a| a.peers)
            .unwrap_or_default();
        let mut batch = WriteBatch::new();
        let conf_state = match changed {
            Ok(cs) => {
                self.node.store().set_conf_state(&cs, &mut batch);
                let (voters, learners) = (&cs.voters, &cs.learners);
                self.region = self.region.with_membership(voters, learners, &addrs);
                self.region.save(&mut batch);
                cs
            }
            Err(e) => {
                tracing::warn!(region_id = self.region_id, index = entry.index, error = %e, "membership change refused");
                self.node.raft.prs().conf().to_conf_state()
            }
        };
        Ok(Outcome {
            kind: Kind::ConfChange(conf_state),
            batch,
            result: None,
        })
    }

    /// Applies a split to this replica: narrows the region and, unless this
    /// store already holds the new region (it caught up on it by snapshot),
    /// writes the new region's descriptor and initial Raft state. The store
    /// opens the new peer (see [`take_splits`](Self::take_splits)). Returns
    /// the new region, or `None` if the split no longer fits the range.
    pub(super) fn apply_split(
        &mut self,
        request: &crate::region::SplitRequest,
        batch: &mut WriteBatch,
    ) -> Result<Option<Region>> {
        let Some((left, right)) = self.region.split(&request.split_key, request.new_region_id)
        else {
            tracing::warn!(
                region_id = self.region_id,
                new_region_id = request.new_region_id,
                "split refused: the key is outside the region"
            );
            return Ok(None);
        };
        left.save(batch);
        let known =
            Region::load(self.engine.as_ref(), right.id)?.is_some_and(|r| r.is_initialized());
        if !known {
            let conf_state = self.node.raft.prs().conf().to_conf_state();
            crate::storage::write_initial_state(
                &self.engine.snapshot(),
                right.id,
                &conf_state,
                batch,
            )?;
            right.save(batch);
            self.splits.push(right.clone());
        }
        self.region = left;
        Ok(Some(right))
    }

    /// Answers the proposal at this entry's index; proposals overtaken by a
    /// different entry at their index were dropped by a leader change.
    pub(super) fn answer_proposals(&mut self, entry: &Entry, result: Option<ApplyResult>) {
        let mut result = Some(result.unwrap_or(Ok(Response::Done)));
        while let Some(p) = self.proposals.front() {
            if p.index > entry.index {
                break;
            }
            let p = self.proposals.pop_front().expect("front exists");
            if p.index == entry.index && p.term == entry.term {
                // A second waiter on the same entry learns only that it is unknown.
                let r = result.take().unwrap_or(Err(Error::ProposalDropped {
                    region_id: self.region_id,
                }));
                (p.callback)(r);
            } else {
                (p.callback)(Err(Error::ProposalDropped {
                    region_id: self.region_id,
                }));
            }
        }
    }
}
