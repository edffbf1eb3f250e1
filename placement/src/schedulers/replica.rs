//! The replica checker: keeps each region at `desired_voters` voters on
//! distinct up row stores. In order: a leftover row learner is promoted (if
//! a voter is missing) or removed; a voter on a down or departing store is
//! replaced (or, with nowhere to go and too many voters, removed); a missing
//! voter is added; an extra one is removed. A voter on a down store with
//! nowhere to go stays: it catches up if its store comes back.

use std::collections::BTreeMap;

use super::{best_target, move_voter, new_leader, operator};
use crate::cluster::{Cluster, RegionInfo, Role, StoreState};
use crate::operator::{Operator, OperatorKind, Step};
use crate::{RegionId, StoreId};

pub(super) fn check(
    cluster: &Cluster,
    region: &RegionInfo,
    operators: &BTreeMap<RegionId, Operator>,
    now_ms: u64,
) -> Option<Operator> {
    let desired = cluster.desired_voters();
    let make = |kind, steps| Some(operator(cluster, region.id, kind, steps, now_ms));
    let row_store = |s: StoreId| cluster.stores.get(&s).is_some_and(|s| s.role == Role::Row);

    if let Some(&learner) = region.learners.iter().find(|l| row_store(**l)) {
        if region.voters.len() < desired && cluster.is_up(learner, now_ms) {
            return make(
                OperatorKind::AddReplica,
                vec![Step::PromoteLearner(learner)],
            );
        }
        return make(OperatorKind::RemoveLearner, vec![Step::RemovePeer(learner)]);
    }

    let bad = region.voters.iter().copied().find_map(|v| {
        match cluster.store_state(v, now_ms) {
            Some(StoreState::Up) => None,
            Some(StoreState::Down) => Some((v, OperatorKind::ReplaceDown)),
            // Removing, removed, or a store never admitted.
            _ => Some((v, OperatorKind::ReplaceRemoving)),
        }
    });
    if let Some((bad, kind)) = bad {
        if let Some(target) = best_target(cluster, region, operators, now_ms)
            && let Some(steps) = move_voter(cluster, region, bad, target, now_ms)
        {
            return make(kind, steps);
        }
        if region.voters.len() > desired {
            return remove_voter(cluster, region, bad, now_ms);
        }
        return None;
    }

    if region.voters.len() < desired {
        let target = best_target(cluster, region, operators, now_ms)?;
        return make(
            OperatorKind::AddReplica,
            vec![Step::AddLearner(target), Step::PromoteLearner(target)],
        );
    }
    if region.voters.len() > desired {
        let counts = cluster.replica_counts();
        let fullest = region
            .voters
            .iter()
            .copied()
            .max_by_key(|v| (counts.get(v).copied().unwrap_or(0), *v))?;
        return remove_voter(cluster, region, fullest, now_ms);
    }
    None
}

/// Removes `voter`, handing leadership away first if it leads.
fn remove_voter(
    cluster: &Cluster,
    region: &RegionInfo,
    voter: StoreId,
    now_ms: u64,
) -> Option<Operator> {
    let mut steps = Vec::new();
    if region.leader == Some(voter) {
        steps.push(Step::TransferLeader(new_leader(
            cluster, region, voter, now_ms,
        )?));
    }
    steps.push(Step::RemovePeer(voter));
    Some(operator(
        cluster,
        region.id,
        OperatorKind::RemoveExtra,
        steps,
        now_ms,
    ))
}
