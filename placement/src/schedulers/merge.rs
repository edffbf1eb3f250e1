//! The merge checker: a region with fewer than `region_merge_keys` keys
//! merges into its right neighbour (else its left one) when the two together
//! stay under `region_split_keys`. The two must have their voters on the
//! same stores; until they do, one replica of the small region moves to a
//! store of the neighbour's. The region holding the lowest keys (the
//! metadata, the placement driver's own) is never the one merged away, and
//! neither region may have changed range within `split_merge_interval_ms`.

use std::collections::BTreeMap;

use super::{load, move_voter, operator};
use crate::RegionId;
use crate::cluster::{Cluster, RegionInfo};
use crate::operator::{Operator, OperatorKind, Step};

pub(super) fn check(
    cluster: &Cluster,
    region: &RegionInfo,
    operators: &BTreeMap<RegionId, Operator>,
    now_ms: u64,
) -> Option<Operator> {
    let config = &cluster.config;
    let settled =
        |r: &RegionInfo| now_ms.saturating_sub(r.range_since_ms) >= config.split_merge_interval_ms;
    if region.start_key.is_empty()
        || !settled(region)
        || region.keys >= config.region_merge_keys
        || !region.pending.is_empty()
        || region.voters.len() != cluster.desired_voters()
    {
        return None;
    }
    let right = (!region.end_key.is_empty())
        .then(|| {
            cluster
                .regions
                .values()
                .find(|r| r.start_key == region.end_key)
        })
        .flatten();
    let left = cluster
        .regions
        .values()
        .find(|r| !r.end_key.is_empty() && r.end_key == region.start_key);
    let neighbour = [right, left].into_iter().flatten().find(|n| {
        settled(n)
            && !operators.contains_key(&n.id)
            && n.pending.is_empty()
            && n.keys + region.keys < config.region_split_keys
    })?;
    let misplaced = region.voters.iter().find(|v| !neighbour.voters.contains(v));
    let Some(&from) = misplaced else {
        return Some(operator(
            cluster,
            region.id,
            OperatorKind::Merge,
            vec![Step::MergeInto(neighbour.id)],
            now_ms,
        ));
    };
    let to = neighbour
        .voters
        .iter()
        .copied()
        .filter(|s| !region.has_peer(*s) && cluster.is_up(*s, now_ms))
        .find(|s| load(operators, *s) < config.schedule_limit)?;
    let steps = move_voter(cluster, region, from, to, now_ms)?;
    Some(operator(
        cluster,
        region.id,
        OperatorKind::AlignForMerge,
        steps,
        now_ms,
    ))
}
