//! Linearizable reads: read indexes confirmed by a quorum, and the
//! leader lease that lets a leader answer without one.

use super::{Lease, Peer, PendingRead, ReadCallback};
use crate::error::Error;
use duet_storage::engine::Engine;
use raft::prelude::{Message, MessageType};
use std::time::Instant;

impl<E: Engine> Peer<E> {
    /// ReadIndex: asks the leader (itself, or through Raft) for the commit
    /// index, and calls back once this peer has applied that far — a read of
    /// the local engine after that is linearizable. Followers and learners
    /// use it to serve fresh reads; on a leader a confirmed answer also
    /// starts a lease from `now`.
    pub fn read_index(&mut self, callback: ReadCallback, now: Instant) {
        self.read_index_at(callback, now, 0);
    }

    /// [`read_index`](Self::read_index) for a read at timestamp `ts`: the
    /// leader raises its node's read floor to it and answers after the
    /// one-phase commits in flight (see [`super::one_pc`]).
    pub fn read_index_at(&mut self, callback: ReadCallback, now: Instant, ts: u64) {
        if self.leader().is_none() {
            callback(Err(Error::NotLeader {
                region_id: self.region_id,
                leader: None,
            }));
            return;
        }
        self.next_read += 1;
        let ctx = self.next_read;
        if self.is_leader() {
            self.raise_read_floor(ts);
        }
        // A read on a leader under its lease (one that found one-phase
        // commits in flight) needs no quorum round: its commit index is
        // current, so it waits only to apply that and those commits. A
        // request without a timestamp may be a lease renewal: it asks.
        if ts != 0 && self.lease().covers(now) {
            let index = self.commit_index().max(self.last_one_pc().unwrap_or(0));
            self.reads.insert(
                ctx,
                PendingRead {
                    index: Some(index),
                    callback,
                    waited: 0,
                    sent: 1,
                    asked: None,
                    ts,
                },
            );
            self.finish_reads();
            return;
        }
        let asked = self.is_leader().then_some((now, self.term()));
        self.reads.insert(
            ctx,
            PendingRead {
                index: None,
                callback,
                waited: 0,
                sent: 1,
                asked,
                ts,
            },
        );
        self.send_read_index(ctx);
    }

    /// Whether, and until when, this peer may serve reads locally at `now`.
    pub fn lease(&self) -> Lease {
        if !self.is_leader() || self.applied_term() != Some(self.term()) {
            return Lease::None;
        }
        // Handing leadership over: the transferee campaigns at once, and
        // the voters elect it however recently they heard from this leader.
        if self.node.raft.lead_transferee.is_some() {
            return Lease::None;
        }
        if self.is_sole_voter() {
            return Lease::Forever;
        }
        match self.lease_from {
            Some((at, term)) if term == self.term() && !self.lease.is_zero() => {
                Lease::Until(at + self.lease)
            }
            _ => Lease::None,
        }
    }

    /// Asks a quorum to confirm this leader's lease when it is missing or
    /// past half its length at `now` (the store calls this every tick, so a
    /// busy leader rarely waits for a ReadIndex round).
    pub fn renew_lease(&mut self, now: Instant) {
        let term = self.term();
        if self.lease.is_zero()
            || self.renewing == Some(term)
            || !self.is_leader()
            || self.is_sole_voter()
        {
            return;
        }
        let fresh = matches!(self.lease(), Lease::Until(t) if t > now + self.lease / 2);
        if !fresh {
            self.renewing = Some(term);
            self.read_index(Box::new(|_| {}), now);
        }
    }

    /// Answers another peer's ReadIndex at once with this leader's commit
    /// index, if its lease covers `now`: no other leader can exist while it
    /// holds, so the index is current without a quorum round — the reader
    /// waits two hops, not four. `false` when it must go through Raft.
    pub(super) fn answer_under_lease(&mut self, m: &Message, now: Instant) -> bool {
        if m.from == self.id || m.from == 0 || m.entries.len() != 1 || !self.lease().covers(now) {
            return false;
        }
        let mut answer = Message::default();
        answer.set_msg_type(MessageType::MsgReadIndexResp);
        answer.from = self.id;
        answer.to = m.from;
        answer.term = self.term();
        answer.index = self.commit_index();
        answer.entries = m.entries.clone();
        self.node.raft.msgs.push(answer);
        true
    }

    /// The term of the last applied entry.
    pub(super) fn applied_term(&self) -> Option<u64> {
        self.node.raft.raft_log.term(self.applied).ok()
    }

    /// This peer is the only voter, outside any joint configuration.
    pub(super) fn is_sole_voter(&self) -> bool {
        let voters = self.node.raft.prs().conf().voters();
        voters.is_singleton() && voters.contains(self.id)
    }

    pub(super) fn send_read_index(&mut self, ctx: u64) {
        if self.hold_own_read(ctx) {
            return;
        }
        // The leader keys pending reads by context: make it unique
        // cluster-wide. The read's timestamp follows.
        let ts = self.reads.get(&ctx).map_or(0, |r| r.ts);
        let mut rctx = self.id.to_be_bytes().to_vec();
        rctx.extend_from_slice(&ctx.to_be_bytes());
        rctx.extend_from_slice(&ts.to_be_bytes());
        self.node.read_index(rctx);
    }

    /// Answers the reads whose index is confirmed and applied.
    pub(super) fn finish_reads(&mut self) {
        let applied = self.applied;
        let done: Vec<u64> = self
            .reads
            .iter()
            .filter(|(_, r)| r.index.is_some_and(|i| i <= applied))
            .map(|(c, _)| *c)
            .collect();
        for ctx in done {
            if let Some(r) = self.reads.remove(&ctx) {
                if let Some((at, term)) = r.asked {
                    if self.renewing == Some(term) {
                        self.renewing = None;
                    }
                    let newer = match self.lease_from {
                        Some((t, lt)) => lt != term || t < at,
                        None => true,
                    };
                    if term == self.term() && self.is_leader() && newer {
                        self.lease_from = Some((at, term));
                    }
                }
                (r.callback)(Ok(r.index.unwrap_or(applied)));
            }
        }
    }
}
