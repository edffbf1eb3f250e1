//! One-phase commit on a region's leader, and what keeps it safe for
//! readers. A prewrite that asks for it (`try_one_pc`, all of its
//! transaction's writes in this region) is committed by the leader in one
//! entry, at a timestamp it picks: above the node's *read floor* — the
//! largest timestamp any read served on this node asked for — so no
//! snapshot already read misses a version it should have seen.
//!
//! The protocol, against each way a read reaches the region's data:
//! - A lease read on this node raises the floor, then looks at the region's
//!   count of one-phase commits in flight; the leader counts one in before
//!   it reads the floor. With both sequentially consistent, either the
//!   commit's timestamp lies above the read, or the read sees the count
//!   and goes through a read index instead.
//! - A read index (this leader's own, a follower's, a learner's) carries
//!   its read timestamp: the leader raises the floor with it and holds the
//!   request until the one-phase commits in flight when it came have
//!   applied (those after it land above it), so the index it answers
//!   covers them. A read index without a timestamp (a view catching up,
//!   the oracle's limit) reads no versions and is never held.
//! - A new leader does not know what its predecessors' lease reads asked
//!   for: it commits in two phases until a timestamp taken after its term
//!   began (the store fetches one as soon as the leader applied an entry
//!   of its term, see [`Peer::take_ts_request`]) has raised the floor.
//!
//! A commit whose timestamp would pass the client's `max_commit_ts` (its
//! watched keys were checked up to there), or that finds its keys already
//! prewritten, is prewritten as usual and the client commits it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use duet_storage::engine::Engine;
use duet_storage::txn::commands::{Command, Effects, Response, command};
use raft::prelude::Message;

use super::Peer;

/// A timestamp meaning "the latest", which raises no floor.
const LATEST: u64 = u64::MAX;
/// Ticks between two requests for a timestamp the store could not take.
const RETRY_TICKS: usize = 10;

/// A peer's one-phase commit state.
#[derive(Default)]
pub(super) struct OnePc {
    /// The node's read floor (shared by every peer of the store).
    floor: Arc<AtomicU64>,
    /// One-phase commits proposed here and not yet applied, or being
    /// computed (shared with the store's view, which lease reads consult).
    inflight: Arc<AtomicU64>,
    /// Their entries.
    entries: BTreeSet<u64>,
    /// The term in which a timestamp taken after it began raised the floor.
    synced_term: u64,
    /// The term the store was asked to take a timestamp for.
    asked_term: Option<u64>,
    /// Ticks to wait before asking again after the store could not.
    cooldown: usize,
    /// Read index requests held until the commits in flight when they
    /// came applied (up to that entry): other peers' messages, and this
    /// peer's own contexts.
    held: Vec<(u64, Message)>,
    held_own: Vec<(u64, u64)>,
}

/// Raises `floor` to a read at `ts`.
pub fn raise_floor(floor: &AtomicU64, ts: u64) {
    if ts != LATEST {
        floor.fetch_max(ts, Ordering::SeqCst);
    }
}

/// Takes from `held` the requests due once the log applied `through`.
fn take_due<T>(held: &mut Vec<(u64, T)>, through: u64) -> Vec<T> {
    let (due, kept): (Vec<_>, Vec<_>) = std::mem::take(held)
        .into_iter()
        .partition(|(until, _)| *until <= through);
    *held = kept;
    due.into_iter().map(|(_, r)| r).collect()
}

/// The read timestamp a read index context carries (see
/// [`Peer::read_index_at`]): after the peer id and the request's number.
pub(super) fn context_ts(ctx: &[u8]) -> u64 {
    ctx.get(16..24)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

impl<E: Engine> Peer<E> {
    /// Shares the node's read floor and the region's count of one-phase
    /// commits in flight (both in the store's view).
    pub fn share_one_pc(&mut self, floor: Arc<AtomicU64>, inflight: Arc<AtomicU64>) {
        self.one_pc.floor = floor;
        self.one_pc.inflight = inflight;
    }

    /// Runs `cmd` against the engine: a prewrite that asks for it as a
    /// one-phase commit when this leader may, else as usual. `true` with
    /// effects of a one-phase commit, counted in flight until
    /// [`note_one_pc`](Self::note_one_pc).
    pub(super) fn effects_of(&mut self, cmd: &Command) -> duet_storage::Result<(Effects, bool)> {
        let snap = self.engine.snapshot();
        let p = match cmd.kind.as_ref() {
            Some(command::Kind::Prewrite(p)) if p.try_one_pc && self.one_pc_ready() => p,
            _ => return Ok((Effects::compute(&snap, cmd)?, false)),
        };
        // Counted before the floor is read (see the module's protocol).
        let inflight = Arc::clone(&self.one_pc.inflight);
        inflight.fetch_add(1, Ordering::SeqCst);
        let floor = self.one_pc.floor.load(Ordering::SeqCst);
        let commit_ts = (floor.saturating_add(1))
            .max(p.start_ts + 1)
            .max(p.for_update_ts + 1)
            .max(p.min_commit_ts);
        let effects = if p.max_commit_ts == 0 || commit_ts <= p.max_commit_ts {
            Effects::compute_one_pc(&snap, cmd, commit_ts)
        } else {
            Effects::compute(&snap, cmd)
        };
        match effects {
            Ok(e) if matches!(e.result(), Ok(Response::Committed { .. })) => Ok((e, true)),
            other => {
                inflight.fetch_sub(1, Ordering::SeqCst);
                Ok((other?, false))
            }
        }
    }

    /// Records where a one-phase commit was proposed (`None`: it was not).
    pub(super) fn note_one_pc(&mut self, index: Option<u64>) {
        match index {
            Some(i) => {
                self.one_pc.entries.insert(i);
            }
            None => {
                self.one_pc.inflight.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// After applying: the one-phase commits applied (or, off the
    /// leadership, all) leave the count, and the read index requests held
    /// for them go on.
    pub(super) fn settle_one_pc(&mut self) {
        let before = self.one_pc.entries.len();
        if self.is_leader() {
            let applied = self.applied;
            self.one_pc.entries.retain(|i| *i > applied);
        } else {
            self.one_pc.entries.clear();
        }
        let settled = (before - self.one_pc.entries.len()) as u64;
        if settled > 0 {
            self.one_pc.inflight.fetch_sub(settled, Ordering::SeqCst);
        }
        // Off the leadership every request goes on (to the new leader).
        let through = if self.is_leader() {
            self.applied
        } else {
            u64::MAX
        };
        for m in take_due(&mut self.one_pc.held, through) {
            let _ = self.step_read_index(m);
        }
        for ctx in take_due(&mut self.one_pc.held_own, through) {
            if self.reads.contains_key(&ctx) {
                self.send_read_index(ctx);
            }
        }
    }

    /// The last one-phase commit in flight that a read at `ts` must wait
    /// for, if any (a read without a timestamp waits for none).
    fn in_flight_for(&self, ts: u64) -> Option<u64> {
        if ts == 0 || !self.is_leader() {
            return None;
        }
        self.last_one_pc()
    }

    /// Raises the floor to the read `m` asks for; `true` if it waits for the
    /// one-phase commits in flight (a follower asks again if this peer
    /// loses the leadership meanwhile).
    pub(super) fn hold_read_index(&mut self, m: &Message) -> bool {
        let ts = m.entries.first().map_or(0, |e| context_ts(&e.data));
        raise_floor(&self.one_pc.floor, ts);
        match self.in_flight_for(ts) {
            Some(until) => {
                self.one_pc.held.push((until, m.clone()));
                true
            }
            None => false,
        }
    }

    /// Whether this leader's own read index `ctx` waits for the one-phase
    /// commits in flight (then it is sent once they applied).
    pub(super) fn hold_own_read(&mut self, ctx: u64) -> bool {
        let ts = self.reads.get(&ctx).map_or(0, |r| r.ts);
        if self.one_pc.held_own.iter().any(|(_, c)| *c == ctx) {
            return true;
        }
        match self.in_flight_for(ts) {
            Some(until) => {
                self.one_pc.held_own.push((until, ctx));
                true
            }
            None => false,
        }
    }

    /// The term for which this leader wants a fresh timestamp before it
    /// commits in one phase: once it applied an entry of its term (every
    /// earlier leader's lease is over by then), once per term (the store
    /// takes one and calls [`ts_taken`](Self::ts_taken)).
    pub fn take_ts_request(&mut self) -> Option<u64> {
        let term = self.term();
        if !self.is_leader()
            || self.one_pc.synced_term == term
            || self.one_pc.asked_term == Some(term)
            || self.one_pc.cooldown > 0
            || self.applied_term() != Some(term)
        {
            return None;
        }
        self.one_pc.asked_term = Some(term);
        Some(term)
    }

    /// A timestamp taken after `term`'s request (`None`: none could be,
    /// asked again some ticks later): it raises the floor, and the peer
    /// may commit in one phase in `term`.
    pub fn ts_taken(&mut self, term: u64, ts: Option<u64>) {
        match ts {
            Some(ts) => {
                raise_floor(&self.one_pc.floor, ts);
                if term == self.term() {
                    self.one_pc.synced_term = term;
                }
            }
            None => {
                self.one_pc.asked_term = None;
                self.one_pc.cooldown = RETRY_TICKS;
            }
        }
    }

    /// Counts a tick off the wait before asking for a timestamp again.
    pub(super) fn tick_one_pc(&mut self) {
        self.one_pc.cooldown = self.one_pc.cooldown.saturating_sub(1);
    }

    /// The entry of the last one-phase commit in flight, if any.
    pub(super) fn last_one_pc(&self) -> Option<u64> {
        self.one_pc.entries.last().copied()
    }

    /// Raises the node's read floor to a read at `ts`.
    pub(super) fn raise_read_floor(&self, ts: u64) {
        raise_floor(&self.one_pc.floor, ts);
    }

    /// Whether this leader may commit in one phase now.
    pub fn one_pc_ready(&self) -> bool {
        self.is_leader() && self.one_pc.synced_term == self.term()
    }
}
