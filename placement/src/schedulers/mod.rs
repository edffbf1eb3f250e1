//! The placement driver's loop, as a value: [`Placement`] holds the cluster
//! and the operators in flight; a region heartbeat advances the region's
//! operator (or has the region checkers — replicas, columnar learners, then
//! merge — make one)
//! and answers the next step; a tick expires stuck operators, runs the
//! balancers (leaders, then regions) and retires emptied stores. Each
//! scheduler lives in a file of its own and is a function of the cluster
//! and the operators in flight.
//!
//! Imports: `cluster`, `operator`.

mod balance;
mod columnar;
mod merge;
mod replica;

use std::collections::BTreeMap;

use crate::cluster::{Cluster, RegionInfo};
use crate::operator::{Operator, OperatorKind, Progress, Step, is_safe};
use crate::{RegionId, StoreId};

/// Operators started, finished and failed, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub started: BTreeMap<&'static str, u64>,
    pub finished: BTreeMap<&'static str, u64>,
    /// Timed out, or their region went away.
    pub failed: BTreeMap<&'static str, u64>,
}

/// The placement driver's state on the leader that runs it.
#[derive(Debug, Clone)]
pub struct Placement {
    pub cluster: Cluster,
    operators: BTreeMap<RegionId, Operator>,
    warm_until_ms: u64,
    pub counters: Counters,
}

impl Placement {
    /// A placement driver that starts at `now_ms` and schedules nothing
    /// until `config.warm_up_ms` later.
    pub fn new(cluster: Cluster, now_ms: u64) -> Placement {
        let warm_until_ms = now_ms + cluster.config.warm_up_ms;
        Placement {
            cluster,
            operators: BTreeMap::new(),
            warm_until_ms,
            counters: Counters::default(),
        }
    }

    /// Whether the warm-up is over.
    pub fn is_warm(&self, now_ms: u64) -> bool {
        now_ms >= self.warm_until_ms
    }

    /// The operators in flight.
    pub fn operators(&self) -> impl Iterator<Item = &Operator> {
        self.operators.values()
    }

    /// Takes a region leader's heartbeat; answers the step its leader should
    /// propose next, if any.
    pub fn region_heartbeat(&mut self, mut info: RegionInfo, now_ms: u64) -> Option<Step> {
        let id = info.id;
        info.range_since_ms = match self.cluster.regions.get(&id) {
            Some(known) if known.version == info.version => known.range_since_ms,
            _ => now_ms,
        };
        if !self.cluster.region_heartbeat(info) || !self.is_warm(now_ms) {
            return None;
        }
        let region = self.cluster.regions.get(&id)?.clone();
        if let Some(mut op) = self.operators.remove(&id) {
            if op.timed_out(now_ms) || self.hopeless(&op, Some(&region), now_ms) {
                bump(&mut self.counters.failed, op.kind);
            } else {
                match op.advance(&region, &self.cluster, now_ms) {
                    Progress::Done => bump(&mut self.counters.finished, op.kind),
                    progress => {
                        let step = match progress {
                            Progress::Next(step) => Some(step),
                            _ => self.hand_leadership_first(&op, &region, now_ms),
                        };
                        self.operators.insert(id, op);
                        return step;
                    }
                }
            }
        }
        let op = replica::check(&self.cluster, &region, &self.operators, now_ms)
            .or_else(|| columnar::check(&self.cluster, &region, &self.operators, now_ms))
            .or_else(|| merge::check(&self.cluster, &region, &self.operators, now_ms))?;
        self.start(op, &region, now_ms)
    }

    /// Periodic work: drops operators that timed out or whose region went
    /// away, balances leaders and regions, and retires every `Removing`
    /// store left empty. Returns the stores retired (to persist).
    pub fn tick(&mut self, now_ms: u64) -> Vec<StoreId> {
        let ended: Vec<RegionId> = self
            .operators
            .values()
            .filter(|op| {
                op.timed_out(now_ms)
                    || self.hopeless(op, self.cluster.regions.get(&op.region_id), now_ms)
                    || !self.cluster.regions.contains_key(&op.region_id)
            })
            .map(|op| op.region_id)
            .collect();
        for id in ended {
            if let Some(op) = self.operators.remove(&id) {
                let merged =
                    op.kind == OperatorKind::Merge && !self.cluster.regions.contains_key(&id);
                let counter = if merged {
                    &mut self.counters.finished
                } else {
                    &mut self.counters.failed
                };
                bump(counter, op.kind);
            }
        }
        if self.is_warm(now_ms) {
            let made = balance::evict_leaders(&self.cluster, &self.operators, now_ms)
                .or_else(|| balance::leaders(&self.cluster, &self.operators, now_ms))
                .into_iter()
                .chain(balance::regions(&self.cluster, &self.operators, now_ms));
            let made: Vec<Operator> = made.collect();
            for op in made {
                if let Some(region) = self.cluster.regions.get(&op.region_id).cloned() {
                    self.start(op, &region, now_ms);
                }
            }
        }
        self.cluster.finish_removals()
    }

    /// Whether `op` cannot finish or should give way: a step still to come
    /// adds to, promotes on or hands leadership to a store that is no
    /// longer up (down, or being removed), or a balancing operator's region
    /// has a voter on such a store (repair goes first). Waiting for its
    /// timeout (ten minutes for one that adds a peer) would hold up the
    /// region's repair; the replica checker removes what it left.
    fn hopeless(&self, op: &Operator, region: Option<&RegionInfo>, now_ms: u64) -> bool {
        let gone = |s: StoreId| !self.cluster.is_up(s, now_ms);
        let dead_end = op.steps.iter().skip(op.current).any(|step| match *step {
            Step::AddLearner(s)
            | Step::PromoteLearner(s)
            | Step::TransferLeader(s)
            | Step::AddColumnar(s) => gone(s),
            Step::ReplaceVoter { add, .. } => gone(add),
            Step::RemovePeer(_) | Step::MergeInto(_) | Step::RemoveColumnar(_) => false,
        });
        let balancing = matches!(
            op.kind,
            OperatorKind::BalanceRegion | OperatorKind::BalanceLeader
        );
        dead_end || (balancing && region.is_some_and(|r| r.voters.iter().any(|v| gone(*v))))
    }

    /// A step that waits only because it would remove the region's leader
    /// (leadership moved since the operator was made): the leader hands
    /// leadership to another voter first, and the new leader's heartbeat
    /// gets the step.
    fn hand_leadership_first(
        &self,
        op: &Operator,
        region: &RegionInfo,
        now_ms: u64,
    ) -> Option<Step> {
        let leader = region.leader?;
        let removes_leader = match op.steps.get(op.current)? {
            Step::ReplaceVoter { remove, .. } => *remove == leader,
            Step::RemovePeer(s) => *s == leader,
            _ => false,
        };
        if !removes_leader {
            return None;
        }
        let to = new_leader(&self.cluster, region, leader, now_ms)?;
        let step = Step::TransferLeader(to);
        is_safe(&step, region, &self.cluster, now_ms).then_some(step)
    }

    /// Registers `op` (unless its region has one) and answers its first step.
    fn start(&mut self, mut op: Operator, region: &RegionInfo, now_ms: u64) -> Option<Step> {
        if self.operators.contains_key(&op.region_id) {
            return None;
        }
        bump(&mut self.counters.started, op.kind);
        let progress = op.advance(region, &self.cluster, now_ms);
        if progress == Progress::Done {
            bump(&mut self.counters.finished, op.kind);
            return None;
        }
        self.operators.insert(op.region_id, op);
        match progress {
            Progress::Next(step) => Some(step),
            _ => None,
        }
    }
}

fn bump(counter: &mut BTreeMap<&'static str, u64>, kind: OperatorKind) {
    *counter.entry(kind.name()).or_default() += 1;
}

/// Operators in flight that add to or take from `store`.
fn load(operators: &BTreeMap<RegionId, Operator>, store: StoreId) -> usize {
    operators.values().filter(|op| op.involves(store)).count()
}

/// Voter replicas per up row store, counting operators in flight as done.
fn projected_replicas(
    cluster: &Cluster,
    operators: &BTreeMap<RegionId, Operator>,
    now_ms: u64,
) -> BTreeMap<StoreId, i64> {
    let counts = cluster.replica_counts();
    let mut projected: BTreeMap<StoreId, i64> = cluster
        .up_row_stores(now_ms)
        .into_iter()
        .map(|id| (id, counts.get(&id).copied().unwrap_or(0) as i64))
        .collect();
    for op in operators.values() {
        if let Some(n) = op.target().and_then(|t| projected.get_mut(&t)) {
            *n += 1;
        }
        if let Some(n) = op.source().and_then(|s| projected.get_mut(&s)) {
            *n -= 1;
        }
    }
    projected
}

/// The best up row store for a new replica of `region`: none of its peers
/// there, not short of space, under the operator limit; fewest projected replicas, then fewest
/// bytes used, then lowest id.
fn best_target(
    cluster: &Cluster,
    region: &RegionInfo,
    operators: &BTreeMap<RegionId, Operator>,
    now_ms: u64,
) -> Option<StoreId> {
    let projected = projected_replicas(cluster, operators, now_ms);
    projected
        .iter()
        .filter(|(id, _)| !region.has_peer(**id) && cluster.has_room(**id))
        .filter(|(id, _)| load(operators, **id) < cluster.config.schedule_limit)
        .min_by_key(|(id, n)| (**n, cluster.stores[*id].stats.used_bytes, **id))
        .map(|(id, _)| *id)
}

/// The voter of `region` (other than `not`) that should lead instead: alive,
/// caught up, not evicting leaders, fewest leaders, lowest id.
fn new_leader(
    cluster: &Cluster,
    region: &RegionInfo,
    not: StoreId,
    now_ms: u64,
) -> Option<StoreId> {
    let leaders = cluster.leader_counts();
    region
        .voters
        .iter()
        .copied()
        .filter(|v| *v != not && !region.pending.contains(v))
        .filter(|v| cluster.is_alive(*v, now_ms))
        .filter(|v| !cluster.stores.get(v).is_some_and(|s| s.sheds_leaders()))
        .min_by_key(|v| (leaders.get(v).copied().unwrap_or(0), *v))
}

/// The steps that move `region`'s voter from `from` to `to`: leadership
/// first if `from` leads, then a learner on `to`, then one joint change.
fn move_voter(
    cluster: &Cluster,
    region: &RegionInfo,
    from: StoreId,
    to: StoreId,
    now_ms: u64,
) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    if region.leader == Some(from) {
        steps.push(Step::TransferLeader(new_leader(
            cluster, region, from, now_ms,
        )?));
    }
    steps.push(Step::AddLearner(to));
    steps.push(Step::ReplaceVoter {
        add: to,
        remove: from,
    });
    Some(steps)
}

/// A new operator for `region`, with the timeout its steps call for.
fn operator(
    cluster: &Cluster,
    region: RegionId,
    kind: OperatorKind,
    steps: Vec<Step>,
    now_ms: u64,
) -> Operator {
    let adds = (steps.iter()).any(|s| matches!(s, Step::AddLearner(_) | Step::AddColumnar(_)));
    let timeout = if adds {
        cluster.config.add_peer_timeout_ms
    } else {
        cluster.config.operator_timeout_ms
    };
    Operator::new(region, kind, steps, now_ms, timeout)
}

#[cfg(test)]
mod tests;
