//! Operators: a short list of steps for one region, each one Raft change
//! that the region's leader proposes in the region's own log. An operator
//! remembers how far it got; each region heartbeat advances it past every
//! step the reported region shows as done and hands out the next one, so a
//! lost answer or a new leader just means the same step is asked for again.
//! [`is_safe`] is the rule every step passes before it is handed out: the
//! region keeps a quorum of live voters, in the old and the new
//! configuration alike.

use crate::cluster::{Cluster, RegionInfo};
use crate::{RegionId, StoreId};

/// One change to one region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A new peer that receives the log but does not vote.
    AddLearner(StoreId),
    /// A caught-up learner becomes a voter.
    PromoteLearner(StoreId),
    /// One joint change: the learner `add` becomes a voter and `remove`
    /// leaves, together.
    ReplaceVoter { add: StoreId, remove: StoreId },
    /// A voter or learner leaves.
    RemovePeer(StoreId),
    /// Leadership moves to this voter.
    TransferLeader(StoreId),
    /// The region merges into its neighbour `into`, whose peers are on the
    /// same stores.
    MergeInto(RegionId),
    /// A columnar learner on this store: an analytics store, or a row
    /// node's learner store (never a voter-to-be).
    AddColumnar(StoreId),
    /// The columnar learner on this store leaves.
    RemoveColumnar(StoreId),
}

impl Step {
    /// Whether `region` as reported already shows this step's effect.
    pub fn is_done(&self, region: &RegionInfo) -> bool {
        match *self {
            Step::AddLearner(s) => region.has_peer(s),
            Step::PromoteLearner(s) => region.voters.contains(&s),
            Step::ReplaceVoter { add, remove } => {
                region.voters.contains(&add) && !region.has_peer(remove)
            }
            Step::RemovePeer(s) => !region.has_peer(s),
            Step::TransferLeader(s) => region.leader == Some(s),
            // The merged region stops reporting; its operator ends when the
            // map drops it.
            Step::MergeInto(_) => false,
            Step::AddColumnar(s) => region.columnar.contains(&s),
            Step::RemoveColumnar(s) => !region.columnar.contains(&s),
        }
    }

    /// The voters after this step.
    fn voters_after(&self, region: &RegionInfo) -> Vec<StoreId> {
        let mut voters = region.voters.clone();
        match *self {
            Step::PromoteLearner(s) => voters.push(s),
            Step::ReplaceVoter { add, remove } => {
                voters.retain(|v| *v != remove);
                voters.push(add);
            }
            Step::RemovePeer(s) => voters.retain(|v| *v != s),
            Step::AddLearner(_)
            | Step::TransferLeader(_)
            | Step::MergeInto(_)
            | Step::AddColumnar(_)
            | Step::RemoveColumnar(_) => {}
        }
        voters
    }
}

/// Whether a majority of `voters` are on stores that answer.
fn quorum_alive(voters: &[StoreId], cluster: &Cluster, now_ms: u64) -> bool {
    let alive = voters
        .iter()
        .filter(|v| cluster.is_alive(**v, now_ms))
        .count();
    !voters.is_empty() && alive > voters.len() / 2
}

/// Whether `step` may be taken in `region` now: it leaves a quorum of live
/// voters before and after (a joint step needs both), never adds a second
/// replica to one store, and promotes or hands leadership only to a peer
/// that has caught up.
pub fn is_safe(step: &Step, region: &RegionInfo, cluster: &Cluster, now_ms: u64) -> bool {
    let caught_up = |s: StoreId| !region.pending.contains(&s);
    let before = quorum_alive(&region.voters, cluster, now_ms);
    let after = quorum_alive(&step.voters_after(region), cluster, now_ms);
    match *step {
        Step::AddLearner(s) => cluster.is_up(s, now_ms) && !region.has_peer(s),
        Step::PromoteLearner(s) => region.learners.contains(&s) && caught_up(s) && after,
        Step::ReplaceVoter { add, remove } => {
            region.learners.contains(&add)
                && caught_up(add)
                && region.voters.contains(&remove)
                && region.leader != Some(remove)
                && before
                && after
        }
        Step::RemovePeer(s) if region.voters.contains(&s) => {
            region.leader != Some(s) && region.voters.len() > 1 && after
        }
        Step::RemovePeer(s) => region.learners.contains(&s),
        Step::TransferLeader(s) => {
            region.voters.contains(&s) && caught_up(s) && cluster.is_alive(s, now_ms)
        }
        Step::AddColumnar(s) => cluster.is_up(s, now_ms) && !region.columnar.contains(&s),
        Step::RemoveColumnar(s) => region.columnar.contains(&s),
        Step::MergeInto(target) => cluster.regions.get(&target).is_some_and(|t| {
            let mut a = region.voters.clone();
            let mut b = t.voters.clone();
            a.sort_unstable();
            b.sort_unstable();
            a == b && before && region.pending.is_empty() && t.pending.is_empty()
        }),
    }
}

/// Why an operator was made (a metrics label and what `/cluster` shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OperatorKind {
    /// A voter on a down store is replaced.
    ReplaceDown,
    /// A voter on a store being removed is replaced.
    ReplaceRemoving,
    /// The region has fewer voters than it should.
    AddReplica,
    /// The region has more voters than it should.
    RemoveExtra,
    /// A learner left over by an unfinished operator.
    RemoveLearner,
    BalanceLeader,
    BalanceRegion,
    /// Leaders leave a store about to stop.
    EvictLeader,
    /// A replica moves so that a small region's stores match a neighbour's.
    AlignForMerge,
    Merge,
    /// A columnar learner where the region lacks one.
    AddColumnar,
    /// A columnar learner the region does not need (more than its count,
    /// on a store down or being removed).
    RemoveColumnar,
}

impl OperatorKind {
    pub fn name(self) -> &'static str {
        match self {
            OperatorKind::ReplaceDown => "replace-down",
            OperatorKind::ReplaceRemoving => "replace-removing",
            OperatorKind::AddReplica => "add-replica",
            OperatorKind::RemoveExtra => "remove-extra",
            OperatorKind::RemoveLearner => "remove-learner",
            OperatorKind::BalanceLeader => "balance-leader",
            OperatorKind::BalanceRegion => "balance-region",
            OperatorKind::EvictLeader => "evict-leader",
            OperatorKind::AlignForMerge => "align-for-merge",
            OperatorKind::Merge => "merge",
            OperatorKind::AddColumnar => "add-columnar",
            OperatorKind::RemoveColumnar => "remove-columnar",
        }
    }
}

/// What an operator wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Propose this step.
    Next(Step),
    /// The current step is done but the next may not be taken yet (a learner
    /// still catching up, or a quorum not alive): ask again later.
    Wait,
    /// Every step is done.
    Done,
}

/// Steps for one region, with how far they got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub region_id: RegionId,
    pub kind: OperatorKind,
    pub steps: Vec<Step>,
    /// The first step not yet seen done.
    pub current: usize,
    pub created_ms: u64,
    pub timeout_ms: u64,
}

impl Operator {
    pub fn new(
        region_id: RegionId,
        kind: OperatorKind,
        steps: Vec<Step>,
        created_ms: u64,
        timeout_ms: u64,
    ) -> Operator {
        Operator {
            region_id,
            kind,
            steps,
            current: 0,
            created_ms,
            timeout_ms,
        }
    }

    /// Moves past every step `region` shows as done; answers what is next.
    pub fn advance(&mut self, region: &RegionInfo, cluster: &Cluster, now_ms: u64) -> Progress {
        while let Some(step) = self.steps.get(self.current) {
            if !step.is_done(region) {
                return if is_safe(step, region, cluster, now_ms) {
                    Progress::Next(*step)
                } else {
                    Progress::Wait
                };
            }
            self.current += 1;
        }
        Progress::Done
    }

    pub fn timed_out(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.created_ms) >= self.timeout_ms
    }

    /// The store this operator adds a replica to, if any.
    pub fn target(&self) -> Option<StoreId> {
        self.steps.iter().find_map(|s| match s {
            Step::AddLearner(t) => Some(*t),
            _ => None,
        })
    }

    /// The store this operator takes a voter from, if any.
    pub fn source(&self) -> Option<StoreId> {
        self.steps.iter().find_map(|s| match s {
            Step::ReplaceVoter { remove, .. } | Step::RemovePeer(remove) => Some(*remove),
            _ => None,
        })
    }

    /// Whether the operator adds to or takes from `store` (a voter or a
    /// columnar learner).
    pub fn involves(&self, store: StoreId) -> bool {
        let columnar = self.steps.iter().any(|s| match s {
            Step::AddColumnar(t) | Step::RemoveColumnar(t) => *t == store,
            _ => false,
        });
        columnar || self.target() == Some(store) || self.source() == Some(store)
    }
}
