//! The placement driver in a running node: [`Driver`] serves the
//! placement messages of the node service (`Join`, `StoreHeartbeat`,
//! `RegionHeartbeat`, `GetCluster`, `RemoveStore`) while this node leads
//! the first region, around the pure decisions of `duet_placement`; the
//! stores it admits are written through Raft under `m\x07s{id}` in that
//! region, so whichever node leads it next knows them. [`heartbeat`] is the
//! other half, run by every node: it reports to the driver and carries out
//! the steps it answers.
//!
//! Imports: the raft crate's node service and store, the transaction
//! client, `duet_placement`.

pub mod counts;
pub mod heartbeat;
mod merge;
pub mod stale;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use duet_placement::{
    AdminState, Cluster, Placement, RegionInfo, Role, Step, Store, StoreState, StoreStats,
};
use duet_raft::cluster::ClusterTso;
use duet_raft::rpc::PdHandler;
use duet_raft::rpc::pd::*;
use duet_raft::store::{FIRST_REGION, LEARNER_STORE_BIT, RaftStore};
use duet_raft::transport::grpc::GrpcTransport;
use duet_storage::engine::rocks::RocksEngine;
use duet_storage::tso::TimestampSource;
use tracing::{info, warn};

use crate::gc::Client;
use counts::ColumnarCounts;

/// Where the admitted stores live in the first region's metadata.
const STORE_PREFIX: &[u8] = b"m\x07s";

fn store_key(id: u64) -> Vec<u8> {
    let mut key = STORE_PREFIX.to_vec();
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// A store as it is persisted.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredStore {
    id: u64,
    raft_addr: String,
    mysql_addr: String,
    role: Role,
    admin: AdminState,
}

/// The placement driver's state while this node leads the first region.
struct Led {
    term: u64,
    placement: Placement,
}

/// Serves the placement messages on the leader of the first region.
pub struct Driver {
    store: Arc<RaftStore<RocksEngine>>,
    client: Client,
    config: duet_placement::Config,
    /// Where other nodes listen (to name the leader's address).
    transport: Arc<GrpcTransport>,
    /// Knows the first region's leader on a node with no replica of it.
    tso: Arc<ClusterTso<RocksEngine>>,
    /// The tables' columnar counts (kept fresh by the node's learner loop).
    counts: Arc<ColumnarCounts>,
    started: Instant,
    state: Mutex<Option<Led>>,
}

type Refusal = Option<PdHeader>;

impl Driver {
    pub fn new(
        store: Arc<RaftStore<RocksEngine>>,
        client: Client,
        config: duet_placement::Config,
        transport: Arc<GrpcTransport>,
        tso: Arc<ClusterTso<RocksEngine>>,
        counts: Arc<ColumnarCounts>,
    ) -> Self {
        Driver {
            store,
            client,
            config,
            transport,
            tso,
            counts,
            started: Instant::now(),
            state: Mutex::new(None),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// The tables' columnar counts this driver places learners by.
    pub fn counts(&self) -> &Arc<ColumnarCounts> {
        &self.counts
    }

    /// Runs `f` on the placement state if this node leads the first region
    /// (loading the stores afresh when it just became leader); otherwise
    /// the header that names the leader.
    fn with<T>(&self, f: impl FnOnce(&Self, &mut Placement, u64) -> T) -> Result<T, Refusal> {
        let first = (self.store.status().into_iter()).find(|r| r.region_id == FIRST_REGION);
        let mut state = self.lock();
        let term = match first {
            Some(r) if r.is_leader => r.term,
            other => {
                *state = None;
                drop(state);
                let leader = match other {
                    Some(r) => r.leader,
                    // No replica here: the oracle finds the leader (asking
                    // the nodes it knows in turn if it has to).
                    None => self.tso.first_leader().or_else(|| {
                        let _ = self.tso.get_ts();
                        self.tso.first_leader()
                    }),
                };
                let addr = leader.and_then(|l| self.transport.address(l));
                return Err(PdHeader::not_leader(leader, addr.map(|a| a.to_string())));
            }
        };
        let now = self.now_ms();
        if state.as_ref().is_none_or(|s| s.term != term) {
            let stores = self.load_stores().map_err(|e| {
                PdHeader::error(format!("the placement driver cannot read its stores: {e}"))
            })?;
            info!(term, stores = stores.len(), "placement driver starts here");
            let cluster = Cluster::new(self.config.clone(), stores, now);
            *state = Some(Led {
                term,
                placement: Placement::new(cluster, now),
            });
        }
        let led = state.as_mut().map(|s| &mut s.placement);
        Ok(f(self, led.expect("set above"), now))
    }

    fn load_stores(&self) -> duet_storage::Result<Vec<Store>> {
        let txn = self.client.begin()?;
        let end = duet_storage::codec::key::prefix_end(STORE_PREFIX);
        let pairs = txn.scan(STORE_PREFIX, Some(&end), usize::MAX)?;
        let mut stores = Vec::new();
        for (_, value) in pairs {
            let Ok(s) = serde_json::from_slice::<StoredStore>(&value) else {
                warn!("a stored store record does not parse; skipped");
                continue;
            };
            let mut store = Store::new(s.id, &s.raft_addr, &s.mysql_addr, s.role);
            store.admin = s.admin;
            stores.push(store);
        }
        Ok(stores)
    }

    fn persist(&self, store: &Store) -> duet_storage::Result<()> {
        let record = StoredStore {
            id: store.id,
            raft_addr: store.raft_addr.clone(),
            mysql_addr: store.mysql_addr.clone(),
            role: store.role,
            admin: store.admin,
        };
        let mut txn = self.client.begin()?;
        txn.put(
            store_key(store.id),
            serde_json::to_vec(&record).unwrap_or_default(),
        );
        txn.commit().map(|_| ())
    }

    /// Admits `meta` (or recognises it again), persisting a new store.
    fn admit(&self, p: &mut Placement, meta: &StoreMeta, now: u64) -> Result<(), String> {
        let role =
            Role::parse(&meta.role).ok_or_else(|| format!("unknown role {:?}", meta.role))?;
        let store = Store::new(meta.id, &meta.raft_addr, &meta.mysql_addr, role);
        let is_new = p.cluster.join(store, now).map_err(|e| e.to_string())?;
        if is_new {
            let admitted = p.cluster.stores[&meta.id].clone();
            if let Err(e) = self.persist(&admitted) {
                p.cluster.stores.remove(&meta.id);
                return Err(format!("recording store {} failed: {e}", meta.id));
            }
            info!(store = meta.id, raft_addr = %meta.raft_addr, "store admitted");
        }
        Ok(())
    }

    /// Periodic work when this node runs the placement driver: expires
    /// operators, balances, and records the stores it retired.
    pub fn tick(&self) {
        let retired = self.with(|d, p, now| {
            let retired = p.tick(now);
            for id in &retired {
                if let Some(s) = p.cluster.stores.get(id)
                    && let Err(e) = d.persist(s)
                {
                    warn!(store = id, error = %e, "recording a retired store failed");
                }
            }
            retired
        });
        if let Ok(retired) = retired {
            for id in retired {
                info!(store = id, "store removed: it holds no replica");
            }
        }
    }

    /// While this node runs the placement driver: the operators started,
    /// finished and failed since it took over, and its report (for
    /// metrics).
    pub fn snapshot(
        &self,
    ) -> Option<(
        duet_placement::schedulers::Counters,
        duet_placement::ClusterReport,
    )> {
        let now = self.now_ms();
        let state = self.lock();
        (state.as_ref()).map(|s| {
            (
                s.placement.counters.clone(),
                s.placement.cluster.report(now),
            )
        })
    }

    fn lock(&self) -> MutexGuard<'_, Option<Led>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Every admitted store, as the members list shows it.
fn members(p: &Placement, now: u64) -> Vec<StoreMeta> {
    (p.cluster.stores.values())
        .map(|s| StoreMeta {
            id: s.id,
            raft_addr: s.raft_addr.clone(),
            mysql_addr: s.mysql_addr.clone(),
            role: s.role.name().into(),
            state: (p.cluster.store_state(s.id, now))
                .unwrap_or(StoreState::Removed)
                .name()
                .into(),
        })
        .collect()
}

/// Drops columnar learner stores (`LEARNER_STORE_BIT` set).
fn row_stores(ids: &[u64]) -> Vec<u64> {
    ids.iter()
        .copied()
        .filter(|id| *id & LEARNER_STORE_BIT == 0)
        .collect()
}

/// The nodes whose columnar learner store is among `ids`.
fn columnar_stores(ids: &[u64]) -> Vec<u64> {
    (ids.iter())
        .filter(|id| *id & LEARNER_STORE_BIT != 0)
        .map(|id| id & !LEARNER_STORE_BIT)
        .collect()
}

/// Whether store `id` is an analytics store: its columnar learners are
/// placed by the driver, named by the store's id.
fn is_analytics(p: &Placement, id: u64) -> bool {
    (p.cluster.stores.get(&id)).is_some_and(|s| s.role == Role::Analytics)
}

/// A region as the driver sees it: voters and row learners by store, its
/// columnar learners by node (an analytics store's also among its
/// learners), with the count of them its tables ask for.
fn region_info(r: &RegionReport, p: &Placement, counts: &ColumnarCounts) -> RegionInfo {
    let columnar = columnar_stores(&r.learners);
    let mut learners = row_stores(&r.learners);
    learners.extend(columnar.iter().copied().filter(|n| is_analytics(p, *n)));
    RegionInfo {
        id: r.id,
        start_key: r.start_key.clone(),
        end_key: r.end_key.clone(),
        conf_ver: r.conf_ver,
        version: r.version,
        voters: row_stores(&r.voters),
        learners,
        leader: (r.leader != 0).then_some(r.leader),
        pending: row_stores(&r.pending),
        keys: r.keys,
        bytes: r.bytes,
        range_since_ms: 0,
        columnar,
        columnar_pending: columnar_stores(&r.pending),
        columnar_wanted: counts.wanted(&r.start_key, &r.end_key),
        holds_catalog: counts.holds_definitions(&r.start_key, &r.end_key),
    }
}

fn step_order(region_id: u64, step: Step, p: &Placement) -> Option<StepOrder> {
    let addr =
        |s: u64| (p.cluster.stores.get(&s)).map_or_else(String::new, |s| s.raft_addr.clone());
    let (kind, store, remove) = match step {
        Step::AddLearner(s) => (StepKind::AddLearner, s, 0),
        Step::PromoteLearner(s) => (StepKind::PromoteLearner, s, 0),
        Step::ReplaceVoter { add, remove } => (StepKind::ReplaceVoter, add, remove),
        Step::RemovePeer(s) => (StepKind::RemovePeer, s, 0),
        Step::TransferLeader(s) => (StepKind::TransferLeader, s, 0),
        // On the node's columnar learner store.
        Step::AddColumnar(s) => (StepKind::AddLearner, s | LEARNER_STORE_BIT, 0),
        Step::RemoveColumnar(s) => (StepKind::RemovePeer, s | LEARNER_STORE_BIT, 0),
        Step::MergeInto(target) => {
            return Some(StepOrder {
                region_id,
                kind: StepKind::MergeInto as i32,
                target_region: target,
                ..StepOrder::default()
            });
        }
    };
    Some(StepOrder {
        region_id,
        kind: kind as i32,
        store,
        remove,
        raft_addr: addr(store & !LEARNER_STORE_BIT),
        target_region: 0,
    })
}

impl PdHandler for Driver {
    fn join(&self, request: JoinRequest) -> JoinResponse {
        let Some(meta) = request.store else {
            return JoinResponse {
                header: PdHeader::error("a join names no store"),
                ..JoinResponse::default()
            };
        };
        let answer = self.with(|d, p, now| match d.admit(p, &meta, now) {
            Ok(()) => JoinResponse {
                header: None,
                members: members(p, now),
            },
            Err(e) => JoinResponse {
                header: PdHeader::error(e),
                members: Vec::new(),
            },
        });
        answer.unwrap_or_else(|header| JoinResponse {
            header,
            ..JoinResponse::default()
        })
    }

    fn store_heartbeat(&self, request: StoreHeartbeatRequest) -> StoreHeartbeatResponse {
        let Some(meta) = request.store else {
            return StoreHeartbeatResponse {
                header: PdHeader::error("a heartbeat names no store"),
                ..StoreHeartbeatResponse::default()
            };
        };
        let answer = self.with(|d, p, now| {
            // A store never admitted (a founder's first heartbeat) joins.
            if !p.cluster.stores.contains_key(&meta.id)
                && let Err(e) = d.admit(p, &meta, now)
            {
                return StoreHeartbeatResponse {
                    header: PdHeader::error(e),
                    ..StoreHeartbeatResponse::default()
                };
            }
            let stats = StoreStats {
                capacity_bytes: request.capacity_bytes,
                used_bytes: request.used_bytes,
                available_bytes: request.available_bytes,
                disk_full: request.disk_full,
            };
            match p.cluster.store_heartbeat(meta.id, stats, now) {
                Ok(admin) => StoreHeartbeatResponse {
                    header: None,
                    state: admin.name().into(),
                    members: members(p, now),
                },
                Err(e) => StoreHeartbeatResponse {
                    header: PdHeader::error(e.to_string()),
                    ..StoreHeartbeatResponse::default()
                },
            }
        });
        answer.unwrap_or_else(|header| StoreHeartbeatResponse {
            header,
            ..StoreHeartbeatResponse::default()
        })
    }

    fn region_heartbeat(&self, request: RegionHeartbeatRequest) -> RegionHeartbeatResponse {
        let answer = self.with(|_, p, now| {
            let steps = (request.regions.iter())
                .filter_map(|r| {
                    let step = p.region_heartbeat(region_info(r, p, &self.counts), now)?;
                    step_order(r.id, step, p)
                })
                .collect();
            RegionHeartbeatResponse {
                header: None,
                steps,
            }
        });
        answer.unwrap_or_else(|header| RegionHeartbeatResponse {
            header,
            ..RegionHeartbeatResponse::default()
        })
    }

    fn get_cluster(&self, _: GetClusterRequest) -> GetClusterResponse {
        let answer = self.with(|_, p, now| {
            let mut report = serde_json::to_value(p.cluster.report(now)).unwrap_or_default();
            // What is being done, for an operator watching a repair.
            let operators: Vec<serde_json::Value> = (p.operators())
                .map(|op| {
                    serde_json::json!({
                        "region_id": op.region_id,
                        "kind": op.kind.name(),
                        "steps": op.steps.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>(),
                        "current": op.current,
                    })
                })
                .collect();
            report["operators"] = operators.into();
            GetClusterResponse {
                header: None,
                report_json: report.to_string(),
            }
        });
        answer.unwrap_or_else(|header| GetClusterResponse {
            header,
            ..GetClusterResponse::default()
        })
    }

    fn remove_store(&self, request: RemoveStoreRequest) -> RemoveStoreResponse {
        let answer = self.with(|d, p, _| {
            let before = p.cluster.stores.get(&request.store_id).map(|s| s.admin);
            if let Err(e) = p.cluster.remove_store(request.store_id) {
                return PdHeader::error(e.to_string());
            }
            let store = p.cluster.stores[&request.store_id].clone();
            if before != Some(store.admin)
                && let Err(e) = d.persist(&store)
            {
                if let (Some(s), Some(admin)) =
                    (p.cluster.stores.get_mut(&request.store_id), before)
                {
                    s.admin = admin;
                }
                return PdHeader::error(format!("recording the removal failed: {e}"));
            }
            info!(store = request.store_id, "store is being removed");
            None
        });
        RemoveStoreResponse {
            header: answer.unwrap_or_else(|header| header),
        }
    }
}
