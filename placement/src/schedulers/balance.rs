//! The balancers: leaders off stores that are about to stop, leaders evened
//! out across up row stores (a difference of two or more moves one), and
//! voter replicas evened out (a difference of more than two moves one;
//! counts even, the bytes of the regions each store holds).
//! Each makes at most one operator per call, for the lowest-id region that
//! fits, and counts the operators in flight as already done so that it does
//! not overshoot.

use std::collections::BTreeMap;

use super::{load, move_voter, new_leader, operator, projected_replicas};
use crate::cluster::{Cluster, RegionInfo};
use crate::operator::{Operator, OperatorKind, Step};
use crate::{RegionId, StoreId};

/// Moves one leader off a store that sheds its leaders (evicts them, or
/// is short of disk space).
pub(super) fn evict_leaders(
    cluster: &Cluster,
    operators: &BTreeMap<RegionId, Operator>,
    now_ms: u64,
) -> Option<Operator> {
    cluster
        .regions
        .values()
        .filter(|r| !operators.contains_key(&r.id))
        .find_map(|r| {
            let leader = r.leader?;
            if !cluster.stores.get(&leader)?.sheds_leaders() {
                return None;
            }
            let to = new_leader(cluster, r, leader, now_ms)?;
            Some(operator(
                cluster,
                r.id,
                OperatorKind::EvictLeader,
                vec![Step::TransferLeader(to)],
                now_ms,
            ))
        })
}

/// Whether every voter of `r` is on an up store: a region waiting for
/// repair is not balanced (the replica checker moves it first).
fn healthy(cluster: &Cluster, r: &RegionInfo, now_ms: u64) -> bool {
    r.voters.iter().all(|v| cluster.is_up(*v, now_ms))
}

/// Leaders per up row store that takes leaders, with transfers in flight
/// counted as done.
fn projected_leaders(
    cluster: &Cluster,
    operators: &BTreeMap<RegionId, Operator>,
    now_ms: u64,
) -> BTreeMap<StoreId, i64> {
    let counts = cluster.leader_counts();
    let mut projected: BTreeMap<StoreId, i64> = cluster
        .up_row_stores(now_ms)
        .into_iter()
        .filter(|id| !cluster.stores[id].sheds_leaders())
        .map(|id| (id, counts.get(&id).copied().unwrap_or(0) as i64))
        .collect();
    for op in operators.values() {
        let Some(Step::TransferLeader(to)) = op.steps.get(op.current) else {
            continue;
        };
        let from = cluster.regions.get(&op.region_id).and_then(|r| r.leader);
        if let Some(n) = projected.get_mut(to) {
            *n += 1;
        }
        if let Some(n) = from.and_then(|f| projected.get_mut(&f)) {
            *n -= 1;
        }
    }
    projected
}

/// Moves one leader from the store with the most to one with at least two
/// fewer that holds a caught-up voter of the region.
pub(super) fn leaders(
    cluster: &Cluster,
    operators: &BTreeMap<RegionId, Operator>,
    now_ms: u64,
) -> Option<Operator> {
    let projected = projected_leaders(cluster, operators, now_ms);
    let (&source, &most) = projected
        .iter()
        .max_by_key(|(id, n)| (**n, std::cmp::Reverse(**id)))?;
    let mut targets: Vec<(i64, StoreId)> = projected
        .iter()
        .filter(|(_, n)| most - **n >= 2)
        .map(|(id, n)| (*n, *id))
        .collect();
    targets.sort_unstable();
    targets.iter().find_map(|&(_, target)| {
        let region = cluster.regions.values().find(|r| {
            healthy(cluster, r, now_ms)
                && r.leader == Some(source)
                && !operators.contains_key(&r.id)
                && r.voters.contains(&target)
                && !r.pending.contains(&target)
        })?;
        Some(operator(
            cluster,
            region.id,
            OperatorKind::BalanceLeader,
            vec![Step::TransferLeader(target)],
            now_ms,
        ))
    })
}

/// The store with the most and the one with the least of `values`, among
/// those under their operator limit (ties: the lower id gives, the lower
/// id takes).
fn extremes<V: Ord + Copy>(
    values: &BTreeMap<StoreId, V>,
    operators: &BTreeMap<RegionId, Operator>,
    limit: usize,
) -> Option<((StoreId, V), (StoreId, V))> {
    let under_limit = |s: StoreId| load(operators, s) < limit;
    let most = (values.iter())
        .filter(|(id, _)| under_limit(**id))
        .max_by_key(|(id, v)| (**v, std::cmp::Reverse(**id)))?;
    let fewest = (values.iter())
        .filter(|(id, _)| under_limit(**id))
        .min_by_key(|(id, v)| (**v, **id))?;
    Some(((*most.0, *most.1), (*fewest.0, *fewest.1)))
}

/// Whether `r`'s voter on `source` may move to `target` now.
fn movable(
    cluster: &Cluster,
    operators: &BTreeMap<RegionId, Operator>,
    r: &RegionInfo,
    (source, target): (StoreId, StoreId),
    now_ms: u64,
) -> bool {
    healthy(cluster, r, now_ms)
        && r.voters.contains(&source)
        && !r.has_peer(target)
        && cluster.has_room(target)
        && r.pending.is_empty()
        && !operators.contains_key(&r.id)
}

/// The operator that moves `region`'s voter from `source` to `target`.
fn move_region(
    cluster: &Cluster,
    region: &RegionInfo,
    (source, target): (StoreId, StoreId),
    now_ms: u64,
) -> Option<Operator> {
    let steps = move_voter(cluster, region, source, target, now_ms)?;
    Some(operator(
        cluster,
        region.id,
        OperatorKind::BalanceRegion,
        steps,
        now_ms,
    ))
}

/// Replica counts this close are balanced.
const REGION_TOLERANCE: i64 = 2;

/// Stores whose regions' bytes differ by less than this are balanced by
/// size.
const SIZE_TOLERANCE: u64 = 8 << 20;

/// Evens out voter replicas: by count first, then, counts balanced, by the
/// bytes of the regions each store holds.
pub(super) fn regions(
    cluster: &Cluster,
    operators: &BTreeMap<RegionId, Operator>,
    now_ms: u64,
) -> Option<Operator> {
    by_count(cluster, operators, now_ms).or_else(|| by_size(cluster, operators, now_ms))
}

/// Moves one voter from the store whose regions hold the most bytes to the
/// one whose hold the fewest: the largest region under half the gap (so
/// the move narrows it and never reverses it), as long as the counts stay
/// within their tolerance. Nothing while another region move is in flight
/// (sizes are not projected).
fn by_size(
    cluster: &Cluster,
    operators: &BTreeMap<RegionId, Operator>,
    now_ms: u64,
) -> Option<Operator> {
    if (operators.values()).any(|op| op.kind == OperatorKind::BalanceRegion) {
        return None;
    }
    let counts = projected_replicas(cluster, operators, now_ms);
    let mut sizes: BTreeMap<StoreId, u64> = counts.keys().map(|s| (*s, 0)).collect();
    for r in cluster.regions.values() {
        for v in &r.voters {
            if let Some(b) = sizes.get_mut(v) {
                *b += r.bytes;
            }
        }
    }
    let ((source, most), (target, fewest)) =
        extremes(&sizes, operators, cluster.config.schedule_limit)?;
    let gap = most - fewest;
    let counts_after = (counts[&target] + 1) - (counts[&source] - 1);
    if gap < SIZE_TOLERANCE || counts_after > REGION_TOLERANCE {
        return None;
    }
    let region = (cluster.regions.values())
        .filter(|r| {
            movable(cluster, operators, r, (source, target), now_ms)
                && r.bytes > 0
                && r.bytes.saturating_mul(2) < gap
        })
        .max_by_key(|r| (r.bytes, r.leader != Some(source), std::cmp::Reverse(r.id)))?;
    move_region(cluster, region, (source, target), now_ms)
}

/// Moves one voter from the store with the most replicas to the one with
/// the fewest, when they differ by more than two and neither is at its
/// operator limit. Regions the source does not lead go first.
fn by_count(
    cluster: &Cluster,
    operators: &BTreeMap<RegionId, Operator>,
    now_ms: u64,
) -> Option<Operator> {
    let projected = projected_replicas(cluster, operators, now_ms);
    let ((source, most), (target, fewest)) =
        extremes(&projected, operators, cluster.config.schedule_limit)?;
    // A difference of two is left alone: with every region's counts
    // reported a heartbeat apart, a tighter bound moves replicas back and
    // forth.
    if most - fewest <= REGION_TOLERANCE {
        return None;
    }
    let movable = |r: &&RegionInfo| movable(cluster, operators, r, (source, target), now_ms);
    let region = (cluster.regions.values())
        .filter(movable)
        .find(|r| r.leader != Some(source))
        .or_else(|| cluster.regions.values().find(movable))?;
    move_region(cluster, region, (source, target), now_ms)
}
