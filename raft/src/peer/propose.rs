//! Proposing: a command run once on the leader and its effects proposed,
//! the queue of commands waiting their turn, splits and membership
//! changes, and callbacks on an index being applied.

use super::log::effects_context;
use super::{Callback, Peer, Proposal, Waiting};
use crate::error::{Error, Result};
use crate::region::{Region, RegionEpoch};
use duet_storage::engine::Engine;
use duet_storage::txn::commands::Command;
use raft::prelude::ConfChangeV2;

impl<E: Engine> Peer<E> {
    /// Proposes `command`; `callback` runs once it applied (or failed).
    pub fn propose(&mut self, command: &Command, callback: Callback) {
        self.submit(Waiting {
            command: command.clone(),
            callback,
            woken: false,
        });
    }

    pub(super) fn not_leader(&self) -> Error {
        Error::NotLeader {
            region_id: self.region_id,
            leader: self.leader(),
        }
    }

    pub(super) fn submit(&mut self, w: Waiting) {
        if !self.is_leader() {
            (w.callback)(Err(self.not_leader()));
            return;
        }
        // A merging region takes no writes: its keys go to the target.
        if self.merging.is_some() {
            (w.callback)(Err(self.epoch_not_match()));
            return;
        }
        self.waiting.push_back(w);
        self.pump();
    }

    /// Runs, in arrival order, the waiting commands that may run now.
    pub(super) fn pump(&mut self) {
        if !self.is_leader() {
            for w in std::mem::take(&mut self.waiting) {
                (w.callback)(Err(self.not_leader()));
            }
            self.release_parked();
            return;
        }
        if self.waiting.is_empty() {
            return;
        }
        // Until a leader applied an entry of its term, earlier terms'
        // entries may still be unapplied here.
        if self.applied_term() != Some(self.term()) {
            return;
        }
        if self.latch_term != self.term() {
            self.latches.clear();
            self.latch_term = self.term();
        }
        let applied = self.applied;
        self.latches.retain(|_, index| *index > applied);
        let mut i = 0;
        while i < self.waiting.len() {
            let command = &self.waiting[i].command;
            let free = if command.is_barrier() {
                self.applied >= self.node.raft.raft_log.last_index()
            } else {
                command
                    .latch_keys()
                    .iter()
                    .all(|k| !self.latches.contains_key(*k))
            };
            if free {
                let w = self.waiting.remove(i).expect("in range");
                self.run(w);
            } else if command.is_barrier() {
                // Nothing overtakes a barrier.
                break;
            } else {
                i += 1;
            }
        }
    }

    /// Runs `w` on the engine and proposes its effects.
    pub(super) fn run(&mut self, w: Waiting) {
        if !w
            .command
            .within(&self.region.start_key, &self.region.end_key)
        {
            (w.callback)(Err(self.epoch_not_match()));
            return;
        }
        let (effects, one_pc) = match self.effects_of(&w.command) {
            Ok(computed) => computed,
            Err(e) => {
                (w.callback)(Err(Error::Storage(e)));
                return;
            }
        };
        // Blocked by another transaction's lock: nothing to log. Wait for
        // the lock to go if the command may, else answer at once.
        if w.command.answers_locks_unlogged()
            && let Some(key) = effects.blocked_on()
            && let Err(error) = effects.result()
        {
            match w.command.lock_wait() {
                Some(wait) if !w.woken => self.park(w, key, wait, error),
                _ => (w.callback)(Err(Error::Storage(error))),
            }
            return;
        }
        let context = effects_context(self.region.epoch().version);
        let proposed = self.propose_entry(context, effects.to_bytes(), w.callback);
        if one_pc {
            self.note_one_pc(proposed.map(|at| at.0));
        }
        if let Some(at) = proposed {
            for key in w.command.latch_keys() {
                self.latches.insert(key.to_vec(), at.0);
            }
        }
    }

    /// Proposes splitting this region at `split_key`; the new right-hand
    /// region gets `new_region_id`. `callback` runs once it applied; a key
    /// outside the range (the region changed meanwhile) answers
    /// `EpochNotMatch`.
    pub fn propose_split(&mut self, split_key: &[u8], new_region_id: u64, callback: Callback) {
        if self.frozen() || self.region.split(split_key, new_region_id).is_none() {
            callback(Err(self.epoch_not_match()));
            return;
        }
        let request = crate::region::SplitRequest {
            split_key: split_key.to_vec(),
            new_region_id,
        };
        let data = prost::Message::encode_to_vec(&request);
        let _ = self.propose_entry(crate::region::SPLIT_CONTEXT.to_vec(), data, callback);
    }

    pub(super) fn epoch_not_match(&self) -> Error {
        Error::EpochNotMatch {
            region_id: self.region_id,
            current: Box::new(self.region.clone()),
        }
    }

    /// The regions created by splits applied since the last call.
    pub fn take_splits(&mut self) -> Vec<Region> {
        std::mem::take(&mut self.splits)
    }

    pub(super) fn propose_entry(
        &mut self,
        context: Vec<u8>,
        data: Vec<u8>,
        callback: Callback,
    ) -> Option<(u64, u64)> {
        if !self.is_leader() {
            callback(Err(self.not_leader()));
            return None;
        }
        let index = self.node.raft.raft_log.last_index() + 1;
        let term = self.term();
        if let Err(e) = self.node.propose(context, data) {
            callback(Err(e.into()));
            return None;
        }
        if self.node.raft.raft_log.last_index() < index {
            callback(Err(Error::ProposalDropped {
                region_id: self.region_id,
            }));
            return None;
        }
        self.enqueue(index, term, callback);
        Some((index, term))
    }

    /// Waits for the entry at `(index, term)`, kept in index order: after a
    /// leadership change, older proposals at higher indexes may still wait
    /// (they will be answered as dropped).
    pub(super) fn enqueue(&mut self, index: u64, term: u64, callback: Callback) {
        let at = self.proposals.partition_point(|p| p.index <= index);
        self.proposals.insert(
            at,
            Proposal {
                index,
                term,
                callback,
            },
        );
    }

    /// Proposes `command` for a caller that saw the region at `epoch`: a
    /// change of range since then answers `EpochNotMatch` with the region now.
    pub fn propose_in_epoch(&mut self, command: &Command, epoch: RegionEpoch, callback: Callback) {
        if epoch.version != self.region.epoch().version {
            callback(Err(self.epoch_not_match()));
            return;
        }
        self.propose(command, callback);
    }

    /// Proposes a membership change (joint consensus when it changes several peers).
    pub fn propose_conf_change(&mut self, cc: ConfChangeV2) -> Result<()> {
        if !self.is_leader() {
            return Err(Error::NotLeader {
                region_id: self.region_id,
                leader: self.leader(),
            });
        }
        // A merge needs the source's peers to stay where the prepare saw
        // them.
        if self.frozen() {
            return Err(Error::MergeRefused {
                region_id: self.region_id,
                reason: "the region is merging".into(),
            });
        }
        Ok(self.node.propose_conf_change(vec![], cc)?)
    }
}
