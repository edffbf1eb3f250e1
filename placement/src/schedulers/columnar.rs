//! The columnar checker: keeps each region's columnar learners where they
//! should be. A region with no count (no `SET COLUMNAR REPLICA` over it)
//! keeps the default placement: a learner beside each voter, which the row
//! node adds itself, so it is not placed here, and one on every analytics
//! store that is up (TiFlash's place: a node that keeps only columnar
//! copies). A region with a count `n` has exactly `n`: on analytics stores
//! first, then on row nodes' learner stores (a voter's node first, so a
//! read is local where it can be), those already holding one before
//! others, the emptiest before the fuller. The region holding the table
//! definitions also has a learner wherever any region has one, so every
//! columnar replica can decode what it holds. A learner on an analytics
//! store that is leaving goes first; an extra learner goes only once every
//! wanted one has caught up, so a region never loses its last good copy
//! to a move.

use std::collections::BTreeMap;

use super::{load, operator};
use crate::cluster::{AdminState, Cluster, RegionInfo, Role};
use crate::operator::{Operator, OperatorKind, Step};
use crate::{RegionId, StoreId};

pub(super) fn check(
    cluster: &Cluster,
    region: &RegionInfo,
    operators: &BTreeMap<RegionId, Operator>,
    now_ms: u64,
) -> Option<Operator> {
    let make = |kind, step| Some(operator(cluster, region.id, kind, vec![step], now_ms));
    let store = |s: StoreId| cluster.stores.get(&s);
    let leaving = (region.columnar.iter().copied()).find(|s| {
        store(*s).is_some_and(|s| s.role == Role::Analytics && s.admin != AdminState::Up)
    });
    if let Some(s) = leaving {
        return make(OperatorKind::RemoveColumnar, Step::RemoveColumnar(s));
    }
    // Columnar learners per store, which only a counted region ranks by.
    let held = match region.columnar_wanted {
        Some(_) => columnar_counts(cluster),
        None => BTreeMap::new(),
    };
    let wanted = wanted(cluster, region, &held, now_ms);
    let missing = (wanted.iter().copied()).find(|s| {
        !region.columnar.contains(s) && load(operators, *s) < cluster.config.schedule_limit
    });
    if let Some(s) = missing {
        return make(OperatorKind::AddColumnar, Step::AddColumnar(s));
    }
    // Extras go only from a counted region (a default one keeps the
    // learners its voters' nodes add), once every wanted one is good.
    region.columnar_wanted?;
    let settled = (wanted.iter())
        .all(|s| region.columnar.contains(s) && !region.columnar_pending.contains(s));
    if !settled {
        return None;
    }
    let extra = (region.columnar.iter().copied())
        .filter(|s| !wanted.contains(s))
        .max_by_key(|s| (held.get(s).copied().unwrap_or(0), *s))?;
    make(OperatorKind::RemoveColumnar, Step::RemoveColumnar(extra))
}

/// The up stores that should hold a columnar learner of `region`.
fn wanted(
    cluster: &Cluster,
    region: &RegionInfo,
    held: &BTreeMap<StoreId, usize>,
    now_ms: u64,
) -> Vec<StoreId> {
    let up = |role: Role| {
        (cluster.stores.values())
            .filter(move |s| s.role == role && s.admin == AdminState::Up)
            .map(|s| s.id)
            .filter(|id| cluster.is_up(*id, now_ms))
    };
    let mut wanted: Vec<StoreId> = match region.columnar_wanted {
        None => up(Role::Analytics).collect(),
        Some(n) => {
            let mut candidates: Vec<StoreId> = up(Role::Analytics).chain(up(Role::Row)).collect();
            candidates.sort_by_key(|s| {
                let row = cluster.stores[s].role == Role::Row;
                (
                    row,
                    !region.columnar.contains(s),
                    !region.voters.contains(s),
                    held.get(s).copied().unwrap_or(0),
                    *s,
                )
            });
            candidates.truncate(n);
            candidates
        }
    };
    if region.holds_catalog {
        let elsewhere = (cluster.regions.values())
            .filter(|r| r.id != region.id)
            .flat_map(|r| r.columnar.iter().copied())
            .filter(|s| cluster.is_up(*s, now_ms));
        for s in elsewhere {
            if !wanted.contains(&s) {
                wanted.push(s);
            }
        }
    }
    wanted
}

/// Columnar learners per store.
fn columnar_counts(cluster: &Cluster) -> BTreeMap<StoreId, usize> {
    let mut counts = BTreeMap::new();
    for s in cluster.regions.values().flat_map(|r| &r.columnar) {
        *counts.entry(*s).or_default() += 1;
    }
    counts
}
