//! Each scheduler's decisions, stores and regions in, operator out; and a
//! small simulated cluster — every region's truth kept here, each step the
//! placement driver hands out applied to it, heartbeats every simulated
//! second — that must settle where the issue says and never lose a quorum
//! on the way.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::cluster::{AdminState, Role, Store, StoreState, StoreStats};
use crate::operator::is_safe;
use crate::{Config, Error};

const SEC: u64 = 1000;

fn config() -> Config {
    Config {
        max_replicas: 3,
        max_store_down_time_ms: 60 * SEC,
        region_merge_keys: 100,
        region_split_keys: 2000,
        split_merge_interval_ms: 0,
        schedule_limit: 4,
        warm_up_ms: 5 * SEC,
        add_peer_timeout_ms: 600 * SEC,
        operator_timeout_ms: 30 * SEC,
    }
}

fn stores(n: u64) -> Vec<Store> {
    (1..=n)
        .map(|id| {
            Store::new(
                id,
                &format!("127.0.0.1:{}", 20160 + id),
                &format!("127.0.0.1:{}", 4000 + id),
                Role::Row,
            )
        })
        .collect()
}

/// Region `id` over `[start, end)` (one byte each; 0 = unbounded).
fn region(id: u64, start: u8, end: u8, voters: &[u64], keys: u64) -> RegionInfo {
    RegionInfo {
        id,
        start_key: if start == 0 { vec![] } else { vec![start] },
        end_key: if end == 0 { vec![] } else { vec![end] },
        conf_ver: 1,
        version: 1,
        voters: voters.to_vec(),
        learners: vec![],
        leader: voters.first().copied(),
        pending: vec![],
        keys,
        bytes: keys * 100,
        ..RegionInfo::default()
    }
}

/// A placement driver over `n` stores, already warm at time `now`.
fn warm(n: u64, config: Config) -> (Placement, u64) {
    let mut cluster = Cluster::new(config, stores(n), 0);
    let now = cluster.config.warm_up_ms;
    for id in 1..=n {
        cluster
            .store_heartbeat(id, StoreStats::default(), now)
            .unwrap();
    }
    (Placement::new(cluster, 0), now)
}

/// A cluster whose regions are the truth, driven by heartbeats.
struct Sim {
    pd: Placement,
    regions: BTreeMap<RegionId, RegionInfo>,
    dead: BTreeSet<StoreId>,
    /// Stores that report being short of disk space.
    full: BTreeSet<StoreId>,
    now: u64,
    steps: usize,
}

impl Sim {
    fn new(n: u64, config: Config, regions: Vec<RegionInfo>) -> Sim {
        Sim::of(stores(n), config, regions)
    }

    /// Over these stores (ids 1..=n).
    fn of(stores: Vec<Store>, config: Config, regions: Vec<RegionInfo>) -> Sim {
        let cluster = Cluster::new(config, stores, 0);
        Sim {
            pd: Placement::new(cluster, 0),
            regions: regions.into_iter().map(|r| (r.id, r)).collect(),
            dead: BTreeSet::new(),
            full: BTreeSet::new(),
            now: 0,
            steps: 0,
        }
    }

    fn alive_quorum(&self, voters: &[StoreId]) -> bool {
        let alive = voters.iter().filter(|v| !self.dead.contains(v)).count();
        alive > voters.len() / 2
    }

    /// One simulated second: stores heartbeat, learners catch up, regions
    /// with a dead leader elect another, every led region heartbeats and
    /// takes the step it is given, then the driver ticks.
    fn round(&mut self) {
        self.now += SEC;
        for id in 1..=self.pd.cluster.stores.len() as u64 {
            if !self.dead.contains(&id) {
                let stats = StoreStats {
                    disk_full: self.full.contains(&id),
                    ..StoreStats::default()
                };
                let _ = self.pd.cluster.store_heartbeat(id, stats, self.now);
            }
        }
        let ids: Vec<RegionId> = self.regions.keys().copied().collect();
        for id in ids {
            let Some(mut r) = self.regions.get(&id).cloned() else {
                continue;
            };
            r.pending.retain(|p| self.dead.contains(p));
            r.columnar_pending.retain(|p| self.dead.contains(p));
            if r.leader.is_none_or(|l| self.dead.contains(&l)) {
                r.leader = None;
                if self.alive_quorum(&r.voters) {
                    r.leader = r.voters.iter().copied().find(|v| !self.dead.contains(v));
                }
            }
            self.regions.insert(id, r.clone());
            if r.leader.is_none() {
                continue;
            }
            if let Some(step) = self.pd.region_heartbeat(r.clone(), self.now) {
                assert!(
                    is_safe(&step, &r, &self.pd.cluster, self.now),
                    "unsafe step {step:?} for {r:?}"
                );
                self.apply(id, step);
            }
        }
        self.pd.tick(self.now);
    }

    fn apply(&mut self, id: RegionId, step: Step) {
        self.steps += 1;
        if let Step::MergeInto(target) = step {
            let source = self.regions.remove(&id).unwrap();
            let t = self.regions.get_mut(&target).unwrap();
            if t.start_key == source.end_key {
                t.start_key = source.start_key;
            } else {
                t.end_key = source.end_key;
            }
            t.keys += source.keys;
            t.version = t.version.max(source.version) + 1;
            return;
        }
        let analytics = |s: StoreId| self.pd.cluster.stores[&s].role == Role::Analytics;
        let r = self.regions.get_mut(&id).unwrap();
        // As a node's executor does: a row node's columnar learner leaves
        // with its voter, unless the driver places them (a count).
        if let Step::RemovePeer(s) | Step::ReplaceVoter { remove: s, .. } = step
            && r.columnar_wanted.is_none()
        {
            r.columnar.retain(|c| *c != s);
        }
        match step {
            Step::AddColumnar(s) => {
                r.columnar.push(s);
                r.columnar_pending.push(s);
                if analytics(s) {
                    r.learners.push(s);
                }
            }
            Step::RemoveColumnar(s) => {
                r.columnar.retain(|c| *c != s);
                r.learners.retain(|l| *l != s);
            }
            Step::AddLearner(s) => {
                r.learners.push(s);
                r.pending.push(s);
            }
            Step::PromoteLearner(s) => {
                r.learners.retain(|l| *l != s);
                r.voters.push(s);
            }
            Step::ReplaceVoter { add, remove } => {
                r.learners.retain(|l| *l != add);
                r.voters.retain(|v| *v != remove);
                r.voters.push(add);
            }
            Step::RemovePeer(s) => {
                r.learners.retain(|l| *l != s);
                r.voters.retain(|v| *v != s);
            }
            Step::TransferLeader(s) => {
                r.leader = Some(s);
                return;
            }
            Step::MergeInto(_) => unreachable!(),
        }
        r.conf_ver += 1;
        let r = r.clone();
        assert!(self.alive_quorum(&r.voters), "quorum lost: {r:?}");
    }

    /// Runs rounds until nothing changes for longer than a store takes to
    /// be declared down.
    fn settle(&mut self) {
        let mut quiet = 0;
        for _ in 0..2000 {
            let before = self.steps;
            self.round();
            quiet = if self.steps == before { quiet + 1 } else { 0 };
            if quiet > 100 {
                return;
            }
        }
        panic!("never settled: {:?}", self.regions);
    }

    fn per_store(&self, f: impl Fn(&RegionInfo) -> Vec<StoreId>) -> BTreeMap<StoreId, usize> {
        let mut counts = BTreeMap::new();
        for r in self.regions.values() {
            for s in f(r) {
                *counts.entry(s).or_default() += 1;
            }
        }
        counts
    }
}

fn spread(counts: &BTreeMap<StoreId, usize>, stores: &[StoreId]) -> usize {
    let values: Vec<usize> = stores
        .iter()
        .map(|s| counts.get(s).copied().unwrap_or(0))
        .collect();
    values.iter().max().unwrap() - values.iter().min().unwrap()
}

/// Twenty regions that all started on stores 1..=3 (as after splits).
fn twenty_regions(voters: &[u64]) -> Vec<RegionInfo> {
    (1..=20u8)
        .map(|i| {
            let start = if i == 1 { 0 } else { i * 10 };
            let end = if i == 20 { 0 } else { (i + 1) * 10 };
            region(u64::from(i), start, end, voters, 1000)
        })
        .collect()
}

#[test]
fn five_stores_settle_with_three_voters_each_and_even_counts() {
    let mut sim = Sim::new(5, config(), twenty_regions(&[1]));
    sim.settle();
    for r in sim.regions.values() {
        let distinct: BTreeSet<_> = r.voters.iter().collect();
        assert_eq!((r.voters.len(), distinct.len()), (3, 3), "{r:?}");
        assert!(r.learners.is_empty(), "{r:?}");
    }
    let all: Vec<StoreId> = (1..=5).collect();
    assert!(spread(&sim.per_store(|r| r.voters.clone()), &all) <= 2);
    assert!(spread(&sim.per_store(|r| r.leader.into_iter().collect()), &all) <= 1);
    assert!(sim.pd.counters.failed.is_empty(), "{:?}", sim.pd.counters);
}

#[test]
fn a_region_gains_its_missing_voters_one_learner_at_a_time() {
    let (mut pd, now) = warm(3, config());
    let mut r = region(7, 0, 0, &[1], 10);
    r.keys = 1000;
    assert_eq!(
        pd.region_heartbeat(r.clone(), now),
        Some(Step::AddLearner(2))
    );
    // The learner is still catching up: nothing to do yet.
    r.learners.push(2);
    r.pending.push(2);
    r.conf_ver += 1;
    assert_eq!(pd.region_heartbeat(r.clone(), now), None);
    r.pending.clear();
    assert_eq!(
        pd.region_heartbeat(r.clone(), now),
        Some(Step::PromoteLearner(2))
    );
}

#[test]
fn nothing_is_scheduled_during_warm_up() {
    let cluster = Cluster::new(config(), stores(3), 0);
    let mut pd = Placement::new(cluster, 0);
    let r = region(1, 0, 0, &[1], 10);
    assert_eq!(pd.region_heartbeat(r.clone(), SEC), None);
    assert_eq!(
        pd.cluster.regions.len(),
        1,
        "the heartbeat still fills the map"
    );
    // Stores known from the metadata but not heard from are not chosen.
    assert_eq!(pd.region_heartbeat(r.clone(), 5 * SEC), None);
    for id in 1..=3 {
        pd.cluster
            .store_heartbeat(id, StoreStats::default(), 5 * SEC)
            .unwrap();
    }
    assert_eq!(pd.region_heartbeat(r, 5 * SEC), Some(Step::AddLearner(2)));
}

#[test]
fn a_silent_store_is_down_only_after_max_store_down_time() {
    let (mut pd, now) = warm(4, config());
    let r = region(1, 0, 0, &[1, 2, 3], 1000);
    for id in [1, 2, 4] {
        pd.cluster
            .store_heartbeat(id, StoreStats::default(), now)
            .unwrap();
    }
    assert_eq!(pd.cluster.store_state(3, now), Some(StoreState::Up));
    assert_eq!(pd.region_heartbeat(r.clone(), now), None);
    let later = now + 60 * SEC;
    for id in [1, 2, 4] {
        pd.cluster
            .store_heartbeat(id, StoreStats::default(), later)
            .unwrap();
    }
    assert_eq!(pd.cluster.store_state(3, later), Some(StoreState::Down));
    assert_eq!(pd.region_heartbeat(r, later), Some(Step::AddLearner(4)));
    let op = pd.operators().next().unwrap();
    assert_eq!(op.kind, OperatorKind::ReplaceDown);
    assert_eq!(
        op.steps,
        vec![
            Step::AddLearner(4),
            Step::ReplaceVoter { add: 4, remove: 3 }
        ]
    );
}

#[test]
fn a_dead_node_s_regions_return_to_three_voters_on_the_others() {
    let mut sim = Sim::new(5, config(), twenty_regions(&[1, 2, 3]));
    sim.settle();
    sim.dead.insert(2);
    sim.settle();
    for r in sim.regions.values() {
        assert!(!r.has_peer(2), "{r:?}");
        assert_eq!(r.voters.len(), 3, "{r:?}");
    }
    assert!(sim.pd.counters.started.contains_key("replace-down"));
}

#[test]
fn with_nowhere_to_go_a_down_voter_is_kept() {
    let (mut pd, _) = warm(3, config());
    let now = 120 * SEC;
    for id in [1, 2] {
        pd.cluster
            .store_heartbeat(id, StoreStats::default(), now)
            .unwrap();
    }
    assert_eq!(pd.cluster.store_state(3, now), Some(StoreState::Down));
    assert_eq!(
        pd.region_heartbeat(region(1, 0, 0, &[1, 2, 3], 10), now),
        None
    );
    assert_eq!(pd.operators().count(), 0);
}

#[test]
fn no_step_that_would_lose_a_quorum_is_handed_out() {
    let (mut pd, _) = warm(5, config());
    let now = 120 * SEC;
    // Stores 2 and 3 are down: the region has one live voter of three.
    for id in [1, 4, 5] {
        pd.cluster
            .store_heartbeat(id, StoreStats::default(), now)
            .unwrap();
    }
    let mut r = region(1, 0, 0, &[1, 2, 3], 10);
    assert_eq!(
        pd.region_heartbeat(r.clone(), now),
        Some(Step::AddLearner(4))
    );
    r.learners.push(4);
    r.conf_ver += 1;
    // Replacing 2 by 4 jointly would need a live majority of {1,2,3}.
    assert_eq!(pd.region_heartbeat(r.clone(), now), None);
    let removal = Step::RemovePeer(2);
    assert!(!is_safe(&removal, &r, &pd.cluster, now));
}

#[test]
fn a_removed_store_is_drained_then_retired() {
    let mut sim = Sim::new(4, config(), twenty_regions(&[1, 2, 3]));
    sim.settle();
    sim.pd.cluster.remove_store(1).unwrap();
    sim.settle();
    for r in sim.regions.values() {
        assert!(!r.has_peer(1), "{r:?}");
        assert_eq!(r.voters.len(), 3);
    }
    assert_eq!(sim.pd.cluster.stores[&1].admin, AdminState::Removed);
    assert_eq!(
        sim.pd
            .cluster
            .store_heartbeat(1, StoreStats::default(), sim.now),
        Ok(AdminState::Removed)
    );
}

#[test]
fn removing_the_leader_s_store_hands_leadership_away_first() {
    let (mut pd, now) = warm(4, config());
    pd.cluster.remove_store(1).unwrap();
    let r = region(1, 0, 0, &[1, 2, 3], 10);
    assert_eq!(pd.region_heartbeat(r, now), Some(Step::TransferLeader(2)));
    let op = pd.operators().next().unwrap();
    assert_eq!(op.kind, OperatorKind::ReplaceRemoving);
    assert_eq!(
        op.steps[1..],
        [
            Step::AddLearner(4),
            Step::ReplaceVoter { add: 4, remove: 1 }
        ]
    );
}

#[test]
fn with_three_stores_a_departing_one_s_voters_are_removed() {
    let (mut pd, now) = warm(3, config());
    pd.cluster.remove_store(3).unwrap();
    assert_eq!(pd.cluster.desired_voters(), 2);
    let r = region(1, 0, 0, &[1, 2, 3], 10);
    assert_eq!(pd.region_heartbeat(r, now), Some(Step::RemovePeer(3)));
}

#[test]
fn leaders_leave_a_store_that_evicts_them() {
    let mut sim = Sim::new(3, config(), twenty_regions(&[1, 2, 3]));
    sim.settle();
    sim.pd.cluster.stores.get_mut(&1).unwrap().evict_leaders = true;
    sim.settle();
    assert!(sim.regions.values().all(|r| r.leader != Some(1)));
    assert_eq!(
        sim.regions
            .values()
            .filter(|r| r.voters.contains(&1))
            .count(),
        20
    );
}

#[test]
fn a_store_short_of_space_sheds_leaders_and_takes_no_replicas() {
    // Store 4 is new and empty: balance would fill it, but it is full.
    let mut sim = Sim::new(4, config(), twenty_regions(&[1, 2, 3]));
    sim.full.insert(4);
    sim.full.insert(1);
    sim.settle();
    assert!(sim.regions.values().all(|r| !r.has_peer(4)));
    assert!(sim.regions.values().all(|r| r.leader != Some(1)));
    // Space back: store 4 receives replicas, store 1 leaders again.
    sim.full.clear();
    sim.settle();
    assert!(sim.regions.values().any(|r| r.voters.contains(&4)));
    assert!(sim.regions.values().any(|r| r.leader == Some(1)));
}

#[test]
fn small_neighbours_merge_and_the_first_region_stays() {
    let mut regions = twenty_regions(&[1, 2, 3]);
    for r in regions.iter_mut().filter(|r| r.id <= 5) {
        r.keys = 10;
    }
    let mut sim = Sim::new(3, config(), regions);
    sim.settle();
    assert!(
        sim.regions.contains_key(&1),
        "the first region is never merged away"
    );
    // Regions 2..=5 merge into neighbours; the total stays under the split size.
    assert!(sim.regions.len() < 20, "{}", sim.regions.len());
    assert!(sim.regions.values().all(|r| r.keys < 2000));
    let mut sorted: Vec<&RegionInfo> = sim.regions.values().collect();
    sorted.sort_by(|a, b| a.start_key.cmp(&b.start_key));
    let mut expected: &[u8] = b"";
    for r in sorted {
        assert_eq!(
            r.start_key, expected,
            "the regions still tile the key space"
        );
        expected = &r.end_key;
    }
    assert!(expected.is_empty());
}

#[test]
fn a_region_split_lately_is_not_merged_yet() {
    // Shorter than the time a silent store takes to be down.
    let patient = Config {
        split_merge_interval_ms: 20 * SEC,
        ..config()
    };
    let (mut pd, now) = warm(3, patient.clone());
    pd.region_heartbeat(region(1, 0, 10, &[1, 2, 3], 1000), 0);
    pd.region_heartbeat(region(3, 20, 0, &[1, 2, 3], 1000), 0);
    let small = region(2, 10, 20, &[1, 2, 3], 10);
    assert_eq!(pd.region_heartbeat(small.clone(), now), None, "new");
    let later = now + 21 * SEC;
    assert_eq!(
        pd.region_heartbeat(small.clone(), later),
        Some(Step::MergeInto(3))
    );
    // A new range (the region split again) starts the wait afresh.
    let (mut pd, now) = warm(3, patient);
    pd.region_heartbeat(region(1, 0, 10, &[1, 2, 3], 1000), 0);
    pd.region_heartbeat(region(3, 20, 0, &[1, 2, 3], 1000), 0);
    pd.region_heartbeat(small.clone(), 0);
    let narrowed = RegionInfo {
        version: 2,
        end_key: vec![15],
        ..small
    };
    assert_eq!(pd.region_heartbeat(narrowed, now), None);
}

#[test]
fn a_small_region_on_other_stores_moves_a_replica_before_merging() {
    let (mut pd, now) = warm(4, config());
    pd.region_heartbeat(region(1, 0, 10, &[1, 2, 3], 1000), 0);
    pd.region_heartbeat(region(3, 20, 0, &[1, 2, 3], 1000), 0);
    let small = region(2, 10, 20, &[1, 2, 4], 10);
    assert_eq!(pd.region_heartbeat(small, now), Some(Step::AddLearner(3)));
    assert_eq!(
        pd.operators().next().unwrap().kind,
        OperatorKind::AlignForMerge
    );
}

#[test]
fn an_operator_that_stalls_is_dropped_as_failed() {
    let (mut pd, now) = warm(3, config());
    let r = region(1, 0, 0, &[1], 1000);
    assert_eq!(
        pd.region_heartbeat(r.clone(), now),
        Some(Step::AddLearner(2))
    );
    pd.tick(now + 600 * SEC);
    assert_eq!(pd.operators().count(), 0);
    assert_eq!(pd.counters.failed.get("add-replica"), Some(&1));
}

#[test]
fn an_operator_adding_to_a_store_that_dies_is_dropped_and_its_learner_removed() {
    let (mut pd, now) = warm(4, config());
    let mut r = region(1, 0, 0, &[1, 2], 1000);
    assert_eq!(
        pd.region_heartbeat(r.clone(), now),
        Some(Step::AddLearner(3))
    );
    r.learners.push(3);
    r.pending.push(3);
    r.conf_ver += 1;
    // Store 3 falls silent before its learner caught up.
    let later = now + config().max_store_down_time_ms + SEC;
    for s in [1, 2, 4] {
        pd.cluster
            .store_heartbeat(s, StoreStats::default(), later)
            .unwrap();
    }
    assert_eq!(
        pd.region_heartbeat(r.clone(), later),
        Some(Step::RemovePeer(3))
    );
    assert_eq!(pd.counters.failed.get("add-replica"), Some(&1));
    r.learners.clear();
    r.pending.clear();
    r.conf_ver += 1;
    assert_eq!(
        pd.region_heartbeat(r.clone(), later + SEC),
        Some(Step::AddLearner(4))
    );
}

#[test]
fn a_step_that_would_remove_the_new_leader_moves_leadership_first() {
    let (mut pd, now) = warm(4, config());
    // Store 4 holds nothing: region 1 moves a voter there.
    let mut r = region(1, 0, 10, &[1, 2, 3], 1000);
    r.leader = Some(2);
    let mut others: Vec<RegionInfo> = (2..=4)
        .map(|id| region(id, id as u8 * 10, id as u8 * 10 + 10, &[1, 2, 3], 1000))
        .collect();
    for o in &mut others {
        pd.region_heartbeat(o.clone(), now);
        o.leader = Some(1);
    }
    pd.region_heartbeat(r.clone(), now);
    pd.tick(now);
    let op = pd
        .operators()
        .find(|o| o.kind == OperatorKind::BalanceRegion)
        .cloned();
    let Some(op) = op else {
        panic!(
            "a balance operator: {:?}",
            pd.operators().collect::<Vec<_>>()
        );
    };
    let Step::ReplaceVoter { add, remove } = *op.steps.last().unwrap() else {
        panic!("{op:?}");
    };
    // Its learner caught up, but leadership has moved to the voter it
    // removes: the leader hands leadership away first.
    let mut moved = pd.cluster.regions[&op.region_id].clone();
    moved.learners.push(add);
    moved.leader = Some(remove);
    moved.conf_ver += 1;
    let step = pd.region_heartbeat(moved.clone(), now + SEC);
    assert!(
        matches!(step, Some(Step::TransferLeader(to)) if to != remove && moved.voters.contains(&to)),
        "{step:?}"
    );
}

#[test]
fn a_balance_operator_gives_way_to_repair() {
    let (mut pd, now) = warm(4, config());
    let mut r = region(1, 0, 0, &[1, 2, 3], 1000);
    let op = Operator::new(
        1,
        OperatorKind::BalanceRegion,
        vec![
            Step::AddLearner(4),
            Step::ReplaceVoter { add: 4, remove: 3 },
        ],
        now,
        600 * SEC,
    );
    pd.region_heartbeat(r.clone(), now);
    pd.operators.insert(1, op);
    // Store 2 falls silent.
    let later = now + config().max_store_down_time_ms + SEC;
    for s in [1, 3, 4] {
        pd.cluster
            .store_heartbeat(s, StoreStats::default(), later)
            .unwrap();
    }
    r.conf_ver += 1;
    assert_eq!(pd.region_heartbeat(r, later), Some(Step::AddLearner(4)));
    assert_eq!(pd.counters.failed.get("balance-region"), Some(&1));
    let op = pd.operators().next().unwrap();
    assert_eq!(op.kind, OperatorKind::ReplaceDown);
}

#[test]
fn a_stale_report_is_ignored_and_a_split_replaces_its_parent() {
    let mut cluster = Cluster::new(config(), stores(3), 0);
    let mut parent = region(1, 0, 0, &[1, 2, 3], 10);
    parent.version = 2;
    assert!(cluster.region_heartbeat(parent.clone()));
    let mut old = parent.clone();
    old.version = 1;
    assert!(!cluster.region_heartbeat(old));
    let mut left = region(1, 0, 50, &[1, 2, 3], 5);
    left.version = 3;
    let mut right = region(9, 50, 0, &[1, 2, 3], 5);
    right.version = 3;
    // The new region reports first: it replaces the parent's stale range.
    assert!(cluster.region_heartbeat(right));
    assert_eq!(cluster.regions.keys().copied().collect::<Vec<_>>(), vec![9]);
    assert!(
        !cluster.region_heartbeat(parent),
        "older than what replaced it"
    );
    assert!(cluster.region_heartbeat(left));
    assert_eq!(cluster.regions.len(), 2);
}

#[test]
fn joins_are_checked() {
    let mut cluster = Cluster::new(config(), stores(3), 0);
    let mut six = Store::new(6, "127.0.0.1:20166", "127.0.0.1:4006", Role::Row);
    assert_eq!(cluster.join(six.clone(), 1), Ok(true));
    assert_eq!(
        cluster.join(six.clone(), 2),
        Ok(false),
        "joining again is fine"
    );
    six.raft_addr = "127.0.0.1:1".into();
    assert_eq!(cluster.join(six, 3), Err(Error::StoreIdTaken(6)));
    let copy = Store::new(7, "127.0.0.1:20161", "", Role::Row);
    assert!(matches!(
        cluster.join(copy, 3),
        Err(Error::AddressTaken { store: 1, .. })
    ));
    assert_eq!(
        cluster.join(Store::new(0, "a", "b", Role::Row), 3),
        Err(Error::InvalidStoreId(0))
    );
    assert_eq!(cluster.remove_store(42), Err(Error::UnknownStore(42)));
    assert_eq!(
        cluster.store_heartbeat(42, StoreStats::default(), 3),
        Err(Error::UnknownStore(42))
    );
}

#[test]
fn the_last_row_store_cannot_be_removed() {
    let mut cluster = Cluster::new(config(), stores(1), 0);
    assert_eq!(cluster.remove_store(1), Err(Error::LastRowStore(1)));
}

#[test]
fn the_report_names_stores_regions_and_what_cannot_be_placed() {
    let (mut pd, now) = warm(2, config());
    pd.region_heartbeat(region(1, 0, 0x7f, &[1, 2], 10), now);
    let report = pd.cluster.report(now);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["max_replicas"], 3);
    assert_eq!(json["stores"][0]["state"], "up");
    assert_eq!(json["stores"][0]["role"], "row");
    assert_eq!(json["stores"][1]["regions"], 1);
    assert_eq!(json["regions"][0]["end_key"], "7f");
    assert_eq!(json["regions"][0]["voters"], serde_json::json!([1, 2]));
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
}

#[test]
fn one_node_wants_one_voter_and_schedules_nothing() {
    let (mut pd, now) = warm(1, config());
    assert_eq!(pd.cluster.desired_voters(), 1);
    for r in twenty_regions(&[1]) {
        assert_eq!(pd.region_heartbeat(r, now), None);
    }
    pd.tick(now);
    assert_eq!(pd.operators().count(), 0);
}

#[test]
fn an_analytics_store_gets_a_columnar_learner_of_every_region_and_no_voter() {
    let mut stores = stores(3);
    stores.push(Store::new(
        4,
        "127.0.0.1:20164",
        "127.0.0.1:4004",
        Role::Analytics,
    ));
    let mut cluster = Cluster::new(config(), stores, 0);
    let now = cluster.config.warm_up_ms;
    for id in 1..=4 {
        cluster
            .store_heartbeat(id, StoreStats::default(), now)
            .unwrap();
    }
    let mut pd = Placement::new(cluster, 0);
    // A region short of a voter takes a row store, never the analytics one.
    let short = region(1, 0, 10, &[1, 2], 1000);
    assert_eq!(pd.region_heartbeat(short, now), Some(Step::AddLearner(3)));
    // A region with its voters gets a columnar learner on store 4.
    let full = region(2, 10, 0, &[1, 2, 3], 1000);
    assert_eq!(
        pd.region_heartbeat(full.clone(), now),
        Some(Step::AddColumnar(4))
    );
    let with_learner = RegionInfo {
        learners: vec![4],
        columnar: vec![4],
        conf_ver: 2,
        ..full
    };
    assert_eq!(pd.region_heartbeat(with_learner.clone(), now), None);
    assert_eq!(
        pd.cluster.report(now).stores[3].regions,
        1,
        "an analytics store counts its learners"
    );
    // Store 4 leaves: its learners go, then it is removed.
    pd.cluster.remove_store(4).unwrap();
    assert_eq!(
        pd.region_heartbeat(with_learner.clone(), now),
        Some(Step::RemoveColumnar(4))
    );
    let without = RegionInfo {
        learners: vec![],
        columnar: vec![],
        conf_ver: 3,
        ..with_learner
    };
    assert_eq!(pd.region_heartbeat(without, now), None);
    pd.tick(now);
    assert_eq!(pd.cluster.store_state(4, now), Some(StoreState::Removed));
}

#[test]
fn with_counts_even_a_region_moves_from_the_store_holding_the_most_bytes() {
    const MB: u64 = 1 << 20;
    let (mut pd, now) = warm(4, config());
    // Six voters on every store; stores 1-3 hold 85 MB, store 4 30 MB.
    let layout: [(u64, &[u64], u64, u64); 8] = [
        (1, &[1, 2, 3], 25, 2),
        (2, &[1, 2, 4], 5, 1),
        (3, &[1, 3, 4], 5, 1),
        (4, &[2, 3, 4], 5, 4),
        (5, &[1, 2, 3], 40, 3),
        (6, &[1, 2, 4], 5, 4),
        (7, &[1, 3, 4], 5, 3),
        (8, &[2, 3, 4], 5, 2),
    ];
    for (id, voters, mb, leader) in layout {
        let r = RegionInfo {
            leader: Some(leader),
            bytes: mb * MB,
            ..region(id, 10 * id as u8, 10 * id as u8 + 10, voters, 1000)
        };
        assert_eq!(pd.region_heartbeat(r, now), None, "region {id}");
    }
    pd.tick(now);
    let ops: Vec<&Operator> = pd.operators().collect();
    assert_eq!(ops.len(), 1, "{ops:?}");
    // Region 5 (40 MB) would reverse the 55 MB gap; region 1 (25 MB)
    // narrows it, from store 1 to store 4.
    assert_eq!(ops[0].region_id, 1);
    assert_eq!(ops[0].kind, OperatorKind::BalanceRegion);
    assert!(
        ops[0]
            .steps
            .contains(&Step::ReplaceVoter { add: 4, remove: 1 }),
        "{:?}",
        ops[0].steps
    );
}

/// Region `id` of twenty (ten keys apart) on `voters`, with columnar
/// learners on `columnar` and a count of `wanted`.
fn counted(id: u8, voters: &[u64], columnar: &[u64], wanted: Option<usize>) -> RegionInfo {
    let end = if id == 20 { 0 } else { (id + 1) * 10 };
    RegionInfo {
        columnar: columnar.to_vec(),
        columnar_wanted: wanted,
        ..region(u64::from(id), id * 10, end, voters, 1000)
    }
}

fn sorted(mut ids: Vec<StoreId>) -> Vec<StoreId> {
    ids.sort_unstable();
    ids
}

#[test]
fn a_counted_region_keeps_exactly_its_count_of_columnar_learners() {
    let mut sim = Sim::new(
        3,
        config(),
        vec![
            // Learners beside every voter, as the nodes added them.
            counted(1, &[1, 2, 3], &[1, 2, 3], Some(1)),
            counted(2, &[1, 2, 3], &[], Some(2)),
            counted(3, &[1, 2, 3], &[1, 2, 3], Some(0)),
            // No count: the nodes' learners stay, nothing is added.
            counted(4, &[1, 2, 3], &[1, 3], None),
        ],
    );
    sim.settle();
    let r = |id| sim.regions[&id].clone();
    assert_eq!(r(1).columnar.len(), 1, "{:?}", r(1));
    assert_eq!(r(2).columnar.len(), 2, "{:?}", r(2));
    for s in r(1).columnar.iter().chain(&r(2).columnar) {
        assert!(r(1).voters.contains(s), "a learner beside a voter first");
    }
    assert!(r(3).columnar.is_empty(), "{:?}", r(3));
    assert_eq!(sorted(r(4).columnar), vec![1, 3]);
    assert!(sim.pd.counters.failed.is_empty(), "{:?}", sim.pd.counters);
}

#[test]
fn counted_learners_go_to_analytics_stores_first_and_leave_a_dead_store() {
    let mut stores = stores(4);
    stores.push(Store::new(
        5,
        "127.0.0.1:20165",
        "127.0.0.1:4005",
        Role::Analytics,
    ));
    let regions = (1..=4)
        .map(|id| counted(id, &[1, 2, 3], &[1], Some(2)))
        .collect();
    let mut sim = Sim::of(stores, config(), regions);
    sim.settle();
    for r in sim.regions.values() {
        assert_eq!(sorted(r.columnar.clone()), vec![1, 5], "{r:?}");
        assert_eq!(r.learners, vec![5], "an analytics learner is a learner");
    }
    // Store 1 dies: once it is down, each region gets another learner,
    // then the dead one goes.
    sim.dead.insert(1);
    sim.settle();
    for r in sim.regions.values() {
        assert_eq!(r.columnar.len(), 2, "{r:?}");
        assert!(r.columnar.contains(&5) && !r.columnar.contains(&1), "{r:?}");
    }
}

#[test]
fn the_region_of_the_definitions_has_a_learner_wherever_any_region_has() {
    let catalog = RegionInfo {
        holds_catalog: true,
        ..counted(1, &[1, 2, 3], &[1, 2, 3], None)
    };
    let regions = vec![catalog, counted(2, &[3, 4, 5], &[], Some(2))];
    let mut sim = Sim::new(5, config(), regions);
    sim.settle();
    let table = &sim.regions[&2];
    assert_eq!(table.columnar.len(), 2, "{table:?}");
    let catalog = &sim.regions[&1];
    for s in &table.columnar {
        assert!(catalog.columnar.contains(s), "{catalog:?} lacks {s}");
    }
}

#[test]
fn columnar_steps_are_done_when_the_learner_store_shows_them() {
    let mut r = counted(1, &[1, 2, 3], &[1], Some(2));
    assert!(!Step::AddColumnar(2).is_done(&r));
    assert!(!Step::RemoveColumnar(1).is_done(&r));
    r.columnar.push(2);
    assert!(Step::AddColumnar(2).is_done(&r));
    // A voter's columnar learner is not its voter.
    assert!(!Step::AddLearner(2).is_done(&counted(1, &[1], &[2], None)));
    let mut op = Operator::new(
        1,
        OperatorKind::AddColumnar,
        vec![Step::AddColumnar(4)],
        0,
        1,
    );
    assert!(op.involves(4) && op.target().is_none(), "no voter counted");
    let (pd, now) = warm(4, config());
    assert_eq!(
        op.advance(&r, &pd.cluster, now),
        Progress::Next(Step::AddColumnar(4))
    );
}
