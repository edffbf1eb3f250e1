//! The placement driver's picture of the cluster: the stores admitted (with
//! their administrative state, which the caller persists through Raft, and
//! their last heartbeat, which it does not) and the region map, a cache fed
//! by the region leaders' heartbeats in which a newer epoch replaces what it
//! overlaps.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::{Config, RegionId, StoreId};

/// Store ids at or above this bit are the columnar learner stores of row
/// nodes (the raft crate's `LEARNER_STORE_BIT`); they are not admitted here.
const LEARNER_STORE_BIT: u64 = 1 << 62;

/// What a store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Region voters (and columnar learners when there is no analytics store).
    Row,
    /// Columnar learners only.
    Analytics,
}

/// The state an operator set, persisted with the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminState {
    Up,
    /// Being drained: its replicas move away, then it is `Removed`.
    Removing,
    /// Retired: holds nothing and may not come back under its id.
    Removed,
}

/// A store's state as reported: the administrative state, or `Down` for an
/// `Up` store silent longer than `max_store_down_time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreState {
    Up,
    Down,
    Removing,
    Removed,
}

impl Role {
    /// The name `--role` and the reports use.
    pub fn name(self) -> &'static str {
        match self {
            Role::Row => "row",
            Role::Analytics => "analytics",
        }
    }

    /// The role named `name` (empty: `row`, the default).
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "row" | "" => Some(Role::Row),
            "analytics" => Some(Role::Analytics),
            _ => None,
        }
    }
}

impl AdminState {
    pub fn name(self) -> &'static str {
        match self {
            AdminState::Up => "up",
            AdminState::Removing => "removing",
            AdminState::Removed => "removed",
        }
    }
}

impl StoreState {
    /// The name the reports and metrics use.
    pub fn name(self) -> &'static str {
        match self {
            StoreState::Up => "up",
            StoreState::Down => "down",
            StoreState::Removing => "removing",
            StoreState::Removed => "removed",
        }
    }
}

/// What a store reports of itself in each heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub capacity_bytes: u64,
    pub used_bytes: u64,
    pub available_bytes: u64,
    /// Short of disk space: it takes no new replicas, and its leaders move
    /// away (it refuses new data while it is).
    pub disk_full: bool,
}

/// One admitted store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    pub id: StoreId,
    pub raft_addr: String,
    pub mysql_addr: String,
    pub role: Role,
    pub admin: AdminState,
    /// Its leaders should move away (it is about to stop).
    pub evict_leaders: bool,
    pub stats: StoreStats,
    /// When the placement driver last heard from it (ms).
    pub last_heartbeat_ms: u64,
    /// Whether this placement driver has heard from it at all: a store
    /// known only from the metadata counts as not down (it may not have
    /// had the time to report) but is not chosen for anything until it
    /// reports.
    pub heard: bool,
}

impl Store {
    /// Whether its leaders should move away and none come to it: it evicts
    /// them (about to stop) or is short of disk space.
    pub fn sheds_leaders(&self) -> bool {
        self.evict_leaders || self.stats.disk_full
    }

    pub fn new(id: StoreId, raft_addr: &str, mysql_addr: &str, role: Role) -> Store {
        Store {
            id,
            raft_addr: raft_addr.to_string(),
            mysql_addr: mysql_addr.to_string(),
            role,
            admin: AdminState::Up,
            evict_leaders: false,
            stats: StoreStats::default(),
            last_heartbeat_ms: 0,
            heard: false,
        }
    }
}

/// One region as its leader last reported it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegionInfo {
    pub id: RegionId,
    pub start_key: Vec<u8>,
    /// Empty: no upper bound.
    pub end_key: Vec<u8>,
    pub conf_ver: u64,
    pub version: u64,
    pub voters: Vec<StoreId>,
    pub learners: Vec<StoreId>,
    pub leader: Option<StoreId>,
    /// Peers the leader reports as not caught up with its log.
    pub pending: Vec<StoreId>,
    pub keys: u64,
    pub bytes: u64,
    /// When the region took its current range (as this placement driver
    /// saw it): a region split or merged lately is not merged again yet.
    pub range_since_ms: u64,
    /// The stores holding a columnar learner of the region: row nodes
    /// (their learner store) and analytics stores.
    pub columnar: Vec<StoreId>,
    /// Which of `columnar` are not caught up with the log.
    pub columnar_pending: Vec<StoreId>,
    /// How many columnar learners the region should have (`ALTER TABLE …
    /// SET COLUMNAR REPLICA n` of the tables over it). `None`: the default
    /// placement — one beside each voter, which the row node adds itself,
    /// and one on every analytics store.
    pub columnar_wanted: Option<usize>,
    /// It holds the table definitions, which every columnar replica needs
    /// to decode rows: it has a columnar learner wherever any region has.
    pub holds_catalog: bool,
}

impl RegionInfo {
    /// Whether `store` holds a replica (voter or learner).
    pub fn has_peer(&self, store: StoreId) -> bool {
        self.voters.contains(&store) || self.learners.contains(&store)
    }

    fn overlaps(&self, other: &RegionInfo) -> bool {
        let below_end = |key: &[u8], end: &[u8]| end.is_empty() || key < end;
        below_end(&self.start_key, &other.end_key) && below_end(&other.start_key, &self.end_key)
    }
}

/// The stores and the region map.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    pub config: Config,
    pub stores: BTreeMap<StoreId, Store>,
    pub regions: BTreeMap<RegionId, RegionInfo>,
}

impl Cluster {
    /// A cluster of the stores the metadata recorded; each counts as heard
    /// from at `now_ms`, so a new placement driver declares none down
    /// before it could have heard from it.
    pub fn new(config: Config, stores: impl IntoIterator<Item = Store>, now_ms: u64) -> Cluster {
        let stores = stores
            .into_iter()
            .map(|mut s| {
                s.last_heartbeat_ms = now_ms;
                (s.id, s)
            })
            .collect();
        Cluster {
            config,
            stores,
            regions: BTreeMap::new(),
        }
    }

    /// Admits `store`, or recognises it joining again with the same
    /// addresses. Returns whether it is new (the caller then persists it).
    pub fn join(&mut self, store: Store, now_ms: u64) -> Result<bool> {
        if store.id == 0 || store.id >= LEARNER_STORE_BIT {
            return Err(Error::InvalidStoreId(store.id));
        }
        if let Some(known) = self.stores.get_mut(&store.id) {
            if known.admin == AdminState::Removed {
                return Err(Error::StoreRemoved(store.id));
            }
            if known.raft_addr != store.raft_addr {
                return Err(Error::StoreIdTaken(store.id));
            }
            known.last_heartbeat_ms = now_ms;
            known.heard = true;
            return Ok(false);
        }
        let taken = self.stores.values().find(|s| {
            s.admin != AdminState::Removed
                && (s.raft_addr == store.raft_addr
                    || (!store.mysql_addr.is_empty() && s.mysql_addr == store.mysql_addr))
        });
        if let Some(other) = taken {
            let addr = if other.raft_addr == store.raft_addr {
                store.raft_addr
            } else {
                store.mysql_addr
            };
            return Err(Error::AddressTaken {
                addr,
                store: other.id,
            });
        }
        let mut store = store;
        store.admin = AdminState::Up;
        store.last_heartbeat_ms = now_ms;
        store.heard = true;
        self.stores.insert(store.id, store);
        Ok(true)
    }

    /// Records a store's heartbeat; answers its administrative state (a
    /// `Removed` store stops).
    pub fn store_heartbeat(
        &mut self,
        id: StoreId,
        stats: StoreStats,
        now_ms: u64,
    ) -> Result<AdminState> {
        let store = self.stores.get_mut(&id).ok_or(Error::UnknownStore(id))?;
        store.stats = stats;
        store.last_heartbeat_ms = now_ms;
        store.heard = true;
        Ok(store.admin)
    }

    /// Records a region leader's heartbeat. A report older than what the map
    /// holds (a deposed leader's) is ignored; a newer one replaces every
    /// region it overlaps (the parent of a split, merged neighbours).
    /// Returns whether the report was taken.
    pub fn region_heartbeat(&mut self, info: RegionInfo) -> bool {
        if let Some(known) = self.regions.get(&info.id)
            && (info.version, info.conf_ver) < (known.version, known.conf_ver)
        {
            return false;
        }
        let stale_overlaps: Vec<RegionId> = self
            .regions
            .values()
            .filter(|r| r.id != info.id && r.overlaps(&info))
            .map(|r| r.id)
            .collect();
        if stale_overlaps
            .iter()
            .any(|id| self.regions[id].version > info.version)
        {
            // This report is older than a region that replaced its range.
            return false;
        }
        for id in stale_overlaps {
            self.regions.remove(&id);
        }
        self.regions.insert(info.id, info);
        true
    }

    /// Marks a store for draining (`POST /admin/stores/N/remove`).
    pub fn remove_store(&mut self, id: StoreId) -> Result<()> {
        let store = self.stores.get(&id).ok_or(Error::UnknownStore(id))?;
        match store.admin {
            AdminState::Removed => return Err(Error::StoreRemoved(id)),
            AdminState::Removing => return Ok(()),
            AdminState::Up => {}
        }
        let other_row_stores = self
            .stores
            .values()
            .filter(|s| s.id != id && s.role == Role::Row && s.admin == AdminState::Up)
            .count();
        if store.role == Role::Row && other_row_stores == 0 {
            return Err(Error::LastRowStore(id));
        }
        if let Some(s) = self.stores.get_mut(&id) {
            s.admin = AdminState::Removing;
        }
        Ok(())
    }

    /// Retires every `Removing` store that holds no replica any more;
    /// returns their ids (the caller persists the change).
    pub fn finish_removals(&mut self) -> Vec<StoreId> {
        let emptied: Vec<StoreId> = self
            .stores
            .values()
            .filter(|s| s.admin == AdminState::Removing)
            .filter(|s| {
                !(self.regions.values()).any(|r| r.has_peer(s.id) || r.columnar.contains(&s.id))
            })
            .map(|s| s.id)
            .collect();
        for id in &emptied {
            if let Some(s) = self.stores.get_mut(id) {
                s.admin = AdminState::Removed;
            }
        }
        emptied
    }

    /// A store's state at `now_ms`; `None` for a store never admitted.
    pub fn store_state(&self, id: StoreId, now_ms: u64) -> Option<StoreState> {
        let s = self.stores.get(&id)?;
        Some(match s.admin {
            AdminState::Removed => StoreState::Removed,
            AdminState::Removing => StoreState::Removing,
            AdminState::Up
                if now_ms.saturating_sub(s.last_heartbeat_ms)
                    >= self.config.max_store_down_time_ms =>
            {
                StoreState::Down
            }
            AdminState::Up => StoreState::Up,
        })
    }

    /// Whether `id` is an up store (heard from lately by this placement
    /// driver, not being removed).
    pub fn is_up(&self, id: StoreId, now_ms: u64) -> bool {
        self.store_state(id, now_ms) == Some(StoreState::Up)
            && self.stores.get(&id).is_some_and(|s| s.heard)
    }

    /// Whether `id` may receive a new replica: it is not short of space.
    pub fn has_room(&self, id: StoreId) -> bool {
        self.stores.get(&id).is_some_and(|s| !s.stats.disk_full)
    }

    /// Whether `id` answers (up, or being drained but not silent).
    pub fn is_alive(&self, id: StoreId, now_ms: u64) -> bool {
        self.stores.get(&id).is_some_and(|s| {
            s.admin != AdminState::Removed
                && s.heard
                && now_ms.saturating_sub(s.last_heartbeat_ms) < self.config.max_store_down_time_ms
        })
    }

    /// The row stores that may receive replicas, by id.
    pub fn up_row_stores(&self, now_ms: u64) -> Vec<StoreId> {
        self.stores
            .values()
            .filter(|s| s.role == Role::Row && self.is_up(s.id, now_ms))
            .map(|s| s.id)
            .collect()
    }

    /// How many voters each region should have: `max_replicas`, capped by
    /// the row stores that are not being removed (down ones count: their
    /// replicas are kept until they can be replaced), at least 1.
    pub fn desired_voters(&self) -> usize {
        let row_stores = self
            .stores
            .values()
            .filter(|s| s.role == Role::Row && s.admin == AdminState::Up)
            .count();
        self.config.max_replicas.min(row_stores).max(1)
    }

    /// Voter replicas per store (every admitted store, zero included).
    pub fn replica_counts(&self) -> BTreeMap<StoreId, usize> {
        let mut counts: BTreeMap<StoreId, usize> = self.stores.keys().map(|id| (*id, 0)).collect();
        for r in self.regions.values() {
            for v in &r.voters {
                *counts.entry(*v).or_default() += 1;
            }
        }
        counts
    }

    /// Leaders per store (every admitted store, zero included).
    pub fn leader_counts(&self) -> BTreeMap<StoreId, usize> {
        let mut counts: BTreeMap<StoreId, usize> = self.stores.keys().map(|id| (*id, 0)).collect();
        for l in self.regions.values().filter_map(|r| r.leader) {
            *counts.entry(l).or_default() += 1;
        }
        counts
    }

    /// The cluster as `GET /cluster` shows it.
    pub fn report(&self, now_ms: u64) -> ClusterReport {
        let replicas = self.replica_counts();
        let leaders = self.leader_counts();
        let stores: Vec<StoreReport> = self
            .stores
            .values()
            .map(|s| StoreReport {
                id: s.id,
                raft_addr: s.raft_addr.clone(),
                mysql_addr: s.mysql_addr.clone(),
                role: s.role,
                state: self
                    .store_state(s.id, now_ms)
                    .unwrap_or(StoreState::Removed),
                // An analytics store holds columnar learners, no voters.
                regions: match s.role {
                    Role::Row => replicas.get(&s.id).copied().unwrap_or(0),
                    Role::Analytics => (self.regions.values())
                        .filter(|r| r.learners.contains(&s.id))
                        .count(),
                },
                leaders: leaders.get(&s.id).copied().unwrap_or(0),
                bytes: s.stats.used_bytes,
            })
            .collect();
        let mut regions: Vec<&RegionInfo> = self.regions.values().collect();
        regions.sort_by(|a, b| a.start_key.cmp(&b.start_key));
        let regions = regions
            .into_iter()
            .map(|r| RegionReport {
                id: r.id,
                start_key: hex(&r.start_key),
                end_key: hex(&r.end_key),
                voters: r.voters.clone(),
                learners: r.learners.clone(),
                columnar: r.columnar.clone(),
                leader: r.leader,
                keys: r.keys,
                bytes: r.bytes,
            })
            .collect();
        let mut warnings = Vec::new();
        let row_stores = self.up_row_stores(now_ms).len();
        if self.config.max_replicas > row_stores {
            warnings.push(format!(
                "max_replicas is {} but {row_stores} row store(s) are up: regions keep fewer voters",
                self.config.max_replicas
            ));
        }
        ClusterReport {
            max_replicas: self.config.max_replicas,
            stores,
            regions,
            warnings,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The body of `GET /cluster`.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterReport {
    pub max_replicas: usize,
    pub stores: Vec<StoreReport>,
    pub regions: Vec<RegionReport>,
    /// What placement cannot do as configured (e.g. too few stores).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StoreReport {
    pub id: StoreId,
    pub raft_addr: String,
    pub mysql_addr: String,
    pub role: Role,
    pub state: StoreState,
    pub regions: usize,
    pub leaders: usize,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RegionReport {
    pub id: RegionId,
    pub start_key: String,
    pub end_key: String,
    pub voters: Vec<StoreId>,
    pub learners: Vec<StoreId>,
    /// The stores holding a columnar learner (a row node's learner store
    /// by the node's id).
    pub columnar: Vec<StoreId>,
    pub leader: Option<StoreId>,
    pub keys: u64,
    pub bytes: u64,
}
