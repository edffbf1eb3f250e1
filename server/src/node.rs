//! A node's storage stack: the RocksDB engine under `data_dir/kv`, the Raft
//! store hosting the node's regions (one voter by default; the founding
//! voters of `initial_cluster` otherwise, talking over TCP on `raft_addr`),
//! the timestamp oracle, the transaction client every session begins
//! through, and the background loops: split checks and the heartbeats of
//! transactions holding row locks here, GC and columnar compaction in
//! [`crate::gc`].

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use duet_raft::cluster::{ClusterDetector, ClusterStore, ClusterTso, Handler, WAIT_TTL};
use duet_raft::region::PeerAddress;
use duet_raft::regions::{SplitLimits, find_split_key, has_regions};
use duet_raft::store::{RaftStore, RegionStatus, StoreConfig, StoreMsg, inbox, learner_store_id};
use duet_raft::transport::grpc::GrpcTransport;
use duet_raft::transport::{LocalRouter, Transport};
use duet_storage::engine::Engine;
use duet_storage::engine::rocks::{RocksConfig, RocksEngine};
use duet_storage::tso::{TimestampSource, Tso};
use duet_storage::txn::deadlock::{DeadlockDetector, LocalDetector};
use duet_storage::txn::{TxnClient, TxnOptions};
use raft::prelude::ConfChangeType;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::pd::counts::ColumnarCounts;
use crate::pd::heartbeat::{RegionSize, RegionSizes};

/// The storage half of a running node.
pub struct Node {
    pub node_id: u64,
    pub data_dir: std::path::PathBuf,
    pub engine: Arc<RocksEngine>,
    pub store: Arc<RaftStore<RocksEngine>>,
    /// The Raft state of the node's columnar learner peers (no row data).
    pub learner_engine: Arc<RocksEngine>,
    /// The node's learner of every region, feeding the columnar replica.
    pub learner_store: Arc<RaftStore<RocksEngine>>,
    /// Transaction commands from this node, forwarded to the leader as needed.
    pub txn_store: Arc<ClusterStore<RocksEngine>>,
    pub tso: Arc<dyn TimestampSource>,
    /// The columnar copy of this node's regions, fed by their apply.
    pub columnar: Option<Arc<duet_columnar::Replica>>,
    /// Other nodes' columnar replicas, for the regions whose columnar
    /// learners are not here (in a cluster).
    pub remote_columnar: Option<Arc<dyn duet_sql::RemoteColumnar>>,
    /// Every transaction of this node begins here, so that GC knows the
    /// oldest one still running.
    pub client: TxnClient<ClusterStore<RocksEngine>>,
    /// The link to the placement driver (in a cluster).
    pd: Option<Arc<crate::pd::heartbeat::PdClient>>,
    /// The GC, split-check and compaction loops.
    background: Vec<tokio::task::JoinHandle<()>>,
    /// Ranges of dropped tables and indexes this node's GC destroyed.
    destroyed_ranges: Arc<std::sync::atomic::AtomicU64>,
    /// Held while the node runs: one process per data directory.
    _data_dir_lock: std::fs::File,
}

/// Takes the data directory for this process (an advisory lock on
/// `data_dir/LOCK`, released when the process ends, even by a crash): a
/// second node started on the same directory is refused with a clear error
/// instead of failing somewhere inside the engine.
fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File> {
    let io = |source| Error::Io {
        context: format!("data directory {}", dir.display()),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("LOCK"))
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Config(format!(
            "data directory {} is in use by another duet process",
            dir.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
    }
}

fn storage_err(e: duet_storage::Error) -> Error {
    Error::Io {
        context: "storage".into(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// The row store's and the learner store's configuration: the founding
/// voters (this node alone without a cluster) with a learner each; a node
/// that already holds regions, or joins a running cluster, founds nothing.
fn store_configs(
    node_id: u64,
    cluster: &BTreeMap<u64, SocketAddr>,
    joining: bool,
    fresh: bool,
) -> (StoreConfig, StoreConfig) {
    let mut store_config = StoreConfig::single(node_id);
    // Different timeouts per node make simultaneous campaigns unlikely.
    store_config.peer.election_tick = 10 + (node_id % 7) as usize;
    if !cluster.is_empty() {
        store_config.voters = cluster.keys().copied().collect();
    }
    // A node that joins founds nothing: its regions come from the others.
    if joining {
        store_config.voters.clear();
    }
    store_config.learners = store_config
        .voters
        .iter()
        .map(|v| learner_store_id(*v))
        .collect();
    let mut learner_config = if fresh {
        StoreConfig::learner(node_id, &store_config.voters, &store_config.learners)
    } else {
        StoreConfig::learner(node_id, &[], &[])
    };
    learner_config.peer.election_tick = store_config.peer.election_tick;
    (store_config, learner_config)
}

/// The file that marks a data directory whose node started once.
const FOUNDED: &str = "founded";

/// Whether this node is fresh (it never held a region), and whether it is
/// emptied: it held regions once and every replica moved away. An emptied
/// node founds nothing on a restart, as a joining one (founding the first
/// region again left a learner standing alone, never caught up, serving
/// stale columnar reads). The file `founded` in the data directory
/// remembers that it started once.
fn founding(config: &Config, engine: &RocksEngine) -> Result<(bool, bool)> {
    let holds = has_regions(engine).map_err(|e| Error::Io {
        context: "raft store".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let fresh = !holds && !config.data_dir.join(FOUNDED).exists();
    Ok((fresh, !holds && !fresh))
}

/// Marks the data directory as started once (see [`founding`]), after
/// the stores are up: their first regions are founded and durable.
fn mark_founded(config: &Config) -> Result<()> {
    let marker = config.data_dir.join(FOUNDED);
    std::fs::write(&marker, b"").map_err(|e| Error::Io {
        context: format!("writing {}", marker.display()),
        source: e,
    })
}

/// The learners' engine, which keeps only their Raft state, and the
/// columnar replica, started from its checkpoint and their log (or to be
/// rebuilt from region snapshots); it then applies every entry they
/// apply.
fn open_columnar(config: &Config) -> Result<(Arc<RocksEngine>, Arc<duet_columnar::Replica>)> {
    let learner_engine = Arc::new(
        RocksEngine::open(
            &config.data_dir.join("learner"),
            &RocksConfig {
                block_cache_bytes: 16 << 20,
                background_jobs: 1,
                ..RocksConfig::default()
            },
        )
        .map_err(storage_err)?,
    );
    let replica = duet_sql::columnar::open_replica(
        duet_columnar::LayerConfig {
            freeze_versions: config.columnar_delta_limit.clamp(1, 4096),
            delta_limit: config.columnar_delta_limit.max(1),
            delta_bytes: config.columnar_delta_bytes.max(1),
            chunk_rows: config.columnar_chunk_rows.max(1),
            read_wait: Duration::from_millis(config.columnar_read_wait_ms),
        },
        &config.data_dir.join("columnar"),
        &duet_storage::engine::Engine::snapshot(learner_engine.as_ref()),
    )
    .map_err(|e| Error::Io {
        context: "columnar replica".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok((learner_engine, replica))
}

/// What hands out timestamps and finds deadlocks: a single node keeps its
/// own; in a cluster the first region's leader serves both and the others
/// forward to it (the handler answers them).
struct Oracles {
    cluster_tso: Option<Arc<ClusterTso<RocksEngine>>>,
    tso: Arc<dyn TimestampSource>,
    detector: Arc<dyn DeadlockDetector>,
}

fn oracles(
    store: &Arc<RaftStore<RocksEngine>>,
    engine: &Arc<RocksEngine>,
    grpc: Option<&Arc<GrpcTransport>>,
) -> Result<Oracles> {
    let local = Arc::new(LocalDetector::new(WAIT_TTL));
    let Some(t) = grpc else {
        let tso: Arc<dyn TimestampSource> =
            Arc::new(Tso::open(Arc::clone(engine)).map_err(storage_err)?);
        // The store's leaders take a timestamp after each election before
        // they commit in one phase.
        store.set_ts_source(Arc::clone(&tso));
        return Ok(Oracles {
            cluster_tso: None,
            tso,
            detector: local,
        });
    };
    let tso = Arc::new(ClusterTso::new(Arc::clone(store), Some(Arc::clone(t))));
    t.set_handlers(Arc::new(Handler {
        store: Arc::clone(store),
        tso: Arc::clone(&tso),
        detector: Arc::clone(&local),
    }));
    let detector = ClusterDetector::new(Arc::clone(store), Arc::clone(&tso), Arc::clone(t), local);
    store.set_ts_source(tso.clone());
    Ok(Oracles {
        cluster_tso: Some(Arc::clone(&tso)),
        tso,
        detector: Arc::new(detector),
    })
}

/// The node's transport: in a cluster, the node service on `raft_addr`
/// (after asking the `join` member to admit this node); alone, an
/// in-process router. Messages for `main` and `learner` (store id and
/// inbox) go to this node's two stores.
async fn start_transport(
    config: &Config,
    founders: BTreeMap<u64, SocketAddr>,
    main: (u64, crossbeam::channel::Sender<StoreMsg>),
    learner: (u64, crossbeam::channel::Sender<StoreMsg>),
) -> Result<(Arc<dyn Transport>, Option<Arc<GrpcTransport>>)> {
    if !config.clustered() {
        let router = LocalRouter::new();
        router.register(main.0, main.1);
        router.register(learner.0, learner.1);
        return Ok((Arc::new(router), None));
    }
    let listener = tokio::net::TcpListener::bind(&config.raft_addr)
        .await
        .map_err(|source| Error::Bind {
            addr: config.raft_addr.clone(),
            source,
        })?;
    let peers = (founders.into_iter())
        .filter(|(id, _)| *id != config.node_id)
        .collect();
    info!(raft_addr = %config.raft_addr, "node service listening");
    let t = GrpcTransport::start(
        config.cluster_id,
        config.node_id,
        listener,
        peers,
        main.1.clone(),
        tokio::runtime::Handle::current(),
    );
    t.add_local(main.0, main.1);
    t.add_local(learner.0, learner.1);
    if let Ok(seed) = config.join.parse::<SocketAddr>() {
        let members = crate::pd::heartbeat::join(&t, seed, &store_meta(config))
            .await
            .map_err(Error::Join)?;
        info!(members = members.len(), "joined the cluster");
    }
    Ok((Arc::clone(&t) as Arc<dyn Transport>, Some(t)))
}

/// The placement driver this node runs while it leads the first region,
/// set as the node service's placement handler, and the node's link to
/// whichever node runs it.
fn placement_link(
    config: &Config,
    (store, txn_store): (
        &Arc<RaftStore<RocksEngine>>,
        &Arc<ClusterStore<RocksEngine>>,
    ),
    client: &TxnClient<ClusterStore<RocksEngine>>,
    (transport, tso): (&Arc<GrpcTransport>, &Arc<ClusterTso<RocksEngine>>),
    region_sizes: &RegionSizes,
) -> Arc<crate::pd::heartbeat::PdClient> {
    let driver = Arc::new(crate::pd::Driver::new(
        Arc::clone(store),
        client.clone(),
        config.placement(),
        Arc::clone(transport),
        Arc::clone(tso),
        Arc::default(),
    ));
    transport.set_pd_handler(Arc::clone(&driver) as Arc<dyn duet_raft::rpc::PdHandler>);
    Arc::new(crate::pd::heartbeat::PdClient::new(
        store_meta(config),
        config.data_dir.clone(),
        (Arc::clone(store), Arc::clone(txn_store)),
        Arc::clone(transport),
        Arc::clone(tso),
        driver,
        Arc::clone(region_sizes),
    ))
}

/// What the background loops work on.
struct Background<'a> {
    store: &'a Arc<RaftStore<RocksEngine>>,
    txn_store: &'a Arc<ClusterStore<RocksEngine>>,
    tso: &'a Arc<dyn TimestampSource>,
    client: &'a TxnClient<ClusterStore<RocksEngine>>,
    replica: &'a Arc<duet_columnar::Replica>,
    destroyed_ranges: &'a Arc<std::sync::atomic::AtomicU64>,
    region_sizes: &'a RegionSizes,
    /// In a cluster: the tables' columnar counts, which the learner loop
    /// keeps fresh.
    counts: Option<Arc<ColumnarCounts>>,
}

/// Starts the node's loops: learners added where missing, split checks,
/// lock heartbeats, GC (and the floors it reads), columnar compaction and
/// the disk space guard.
fn spawn_background(
    config: &Config,
    on: Background<'_>,
    heartbeat_every: Duration,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut background = Vec::new();
    background.push(tokio::spawn(crate::disk::guard_loop(
        config.data_dir.clone(),
        config.reserve_space_mb,
        Arc::clone(on.store),
    )));
    background.push(tokio::spawn(learner_loop(
        Arc::clone(on.store),
        Arc::clone(on.txn_store),
        config.node_id,
        on.counts.map(|c| (c, on.client.clone())),
    )));
    let limits = SplitLimits {
        keys: config.region_split_keys,
        bytes: config.region_split_bytes,
    };
    if (limits.keys > 0 || limits.bytes > 0) && config.split_check_interval_secs > 0 {
        background.push(tokio::spawn(split_loop(
            Arc::clone(on.store),
            Arc::clone(on.txn_store),
            Arc::clone(on.tso),
            Duration::from_secs(config.split_check_interval_secs),
            limits,
            Arc::clone(on.region_sizes),
        )));
    }
    background.push(tokio::spawn(heartbeat_loop(
        on.client.clone(),
        heartbeat_every,
    )));
    let life_ms = config.gc_life_time_secs.saturating_mul(1000);
    if config.gc_interval_secs > 0 {
        let every = Duration::from_secs(config.gc_interval_secs);
        // Floors fresher than the safe point's age: at most a minute old.
        let publish_every = every
            .min(Duration::from_secs(60))
            .min(Duration::from_millis(life_ms / 2).max(Duration::from_secs(1)));
        background.push(tokio::spawn(crate::gc::publish_loop(
            config.node_id,
            on.client.clone(),
            publish_every,
        )));
        background.push(tokio::spawn(crate::gc::gc_loop(
            Arc::clone(on.store),
            Arc::clone(on.txn_store),
            on.client.clone(),
            every,
            life_ms,
            Arc::clone(on.destroyed_ranges),
        )));
    }
    background.push(tokio::spawn(crate::gc::compaction_loop(
        Arc::clone(on.replica),
        Arc::clone(on.tso),
        on.client.clone(),
        life_ms,
        Duration::from_secs(config.columnar_checkpoint_secs),
    )));
    background
}

impl Node {
    /// Opens the engines and starts the node's two Raft stores: its voters
    /// (the row store) and its columnar learners.
    pub async fn start(config: &Config) -> Result<Node> {
        let data_dir_lock = lock_data_dir(&config.data_dir)?;
        let path = config.data_dir.join("kv");
        let engine =
            Arc::new(RocksEngine::open(&path, &RocksConfig::default()).map_err(storage_err)?);
        let raft_err = |context: &str| {
            let context = context.to_string();
            move |e: duet_raft::Error| Error::Io {
                context: context.clone(),
                source: std::io::Error::other(e.to_string()),
            }
        };
        // A node that has never held a region founds them with a learner
        // of each founder; one that has adds its learner by a membership
        // change (see `learner_loop`).
        let (fresh, emptied) = founding(config, engine.as_ref())?;
        let cluster = config.cluster()?;
        let (store_config, learner_config) = store_configs(
            config.node_id,
            &cluster,
            !config.join.is_empty() || emptied,
            fresh,
        );
        let learner_id = learner_store_id(config.node_id);
        let (tx, rx) = inbox();
        let (learner_tx, learner_rx) = inbox();
        let (transport, grpc) = start_transport(
            config,
            cluster,
            (config.node_id, tx.clone()),
            (learner_id, learner_tx.clone()),
        )
        .await?;
        let store = RaftStore::start(
            Arc::clone(&engine),
            &store_config,
            Arc::clone(&transport),
            Vec::new(),
            (tx, rx),
        )
        .map_err(raft_err("raft store"))?;
        let store = Arc::new(store);
        mark_founded(config)?;
        let (learner_engine, replica) = open_columnar(config)?;
        let learner: Arc<dyn duet_raft::peer::ApplyObserver> =
            Arc::new(duet_columnar::Learner::new(Arc::clone(&replica)));
        let learner_store = Arc::new(
            RaftStore::start(
                Arc::clone(&learner_engine),
                &learner_config,
                transport,
                vec![learner],
                (learner_tx, learner_rx),
            )
            .map_err(raft_err("learner store"))?,
        );
        replica.set_read_point(Arc::new(duet_columnar::LearnerReads::new(
            Arc::clone(&learner_store),
            Arc::clone(&store),
        )));
        if let Some(t) = &grpc {
            // Stores that joined after the founding: their addresses are in
            // the region descriptors.
            let view = store.view().clone();
            t.set_resolver(Arc::new(move |id| {
                view.regions()
                    .iter()
                    .find_map(|r| r.address_of(id)?.parse().ok())
            }));
        }
        let Oracles {
            cluster_tso,
            tso,
            detector,
        } = oracles(&store, &engine, grpc.as_ref())?;
        let txn_store = Arc::new(ClusterStore::new(
            config.node_id,
            Arc::clone(&store),
            grpc.clone(),
        ));
        let remote_columnar = (grpc.as_ref()).map(|t| {
            crate::columnar::link(t, &replica, config.node_id, (&learner_store, &txn_store))
        });
        let options = TxnOptions::default();
        // Four heartbeats per lock TTL: a lost one or two do not matter.
        let heartbeat_every = Duration::from_millis(options.pessimistic_lock_ttl_ms / 4);
        let client = TxnClient::new(Arc::clone(&txn_store), Arc::clone(&tso), options)
            .with_detector(detector);
        let destroyed_ranges = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let region_sizes = RegionSizes::default();
        let pd = (grpc.as_ref().zip(cluster_tso.as_ref())).map(|(t, tso)| {
            placement_link(
                config,
                (&store, &txn_store),
                &client,
                (t, tso),
                &region_sizes,
            )
        });
        let mut background = spawn_background(
            config,
            Background {
                store: &store,
                txn_store: &txn_store,
                tso: &tso,
                client: &client,
                replica: &replica,
                destroyed_ranges: &destroyed_ranges,
                region_sizes: &region_sizes,
                counts: pd.as_ref().map(|pd| pd.columnar_counts()),
            },
            heartbeat_every,
        );
        if let Some(pd) = &pd {
            background.push(tokio::spawn(crate::pd::heartbeat::pd_loop(
                Arc::clone(pd),
                Duration::from_millis(config.pd_heartbeat_ms),
            )));
        }
        if let Some(t) = &grpc
            && config.max_leader_missing_secs > 0
        {
            background.push(tokio::spawn(crate::pd::stale::stale_loop(
                vec![Arc::clone(&store), Arc::clone(&learner_store)],
                Arc::clone(t),
                Duration::from_secs(config.max_leader_missing_secs),
            )));
        }
        Ok(Node {
            _data_dir_lock: data_dir_lock,
            node_id: config.node_id,
            data_dir: config.data_dir.clone(),
            engine,
            store,
            learner_engine,
            learner_store,
            txn_store,
            tso,
            columnar: Some(replica),
            remote_columnar,
            client,
            pd,
            background,
            destroyed_ranges,
        })
    }

    pub fn regions(&self) -> Vec<RegionStatus> {
        self.store.status()
    }

    /// `GET /status`: the node's regions, its columnar replica (whether it
    /// started from its checkpoint, entries not applied yet, why it
    /// stopped) and what its GC destroyed.
    pub fn status_json(&self) -> serde_json::Value {
        let regions: Vec<serde_json::Value> = self
            .regions()
            .into_iter()
            .map(|r| {
                serde_json::json!({
                    "region_id": r.region_id,
                    "peer_id": r.peer_id,
                    "role": if r.is_leader {
                        "leader"
                    } else if r.learners.contains(&r.peer_id) {
                        "learner"
                    } else {
                        "follower"
                    },
                    "leader": r.leader,
                    "term": r.term,
                    "commit_index": r.commit_index,
                    "applied_index": r.applied_index,
                    "voters": r.voters,
                    "learners": r.learners,
                    "epoch": { "conf_ver": r.epoch.0, "version": r.epoch.1 },
                    "start_key": hex(&r.start_key),
                    "end_key": hex(&r.end_key),
                })
            })
            .collect();
        let learners: Vec<serde_json::Value> = self
            .learner_store
            .status()
            .into_iter()
            .map(|r| {
                serde_json::json!({
                    "region_id": r.region_id,
                    "peer_id": r.peer_id,
                    "leader": r.leader,
                    "commit_index": r.commit_index,
                    "applied_index": r.applied_index,
                    "replica_applied_index": r.observer_applied,
                })
            })
            .collect();
        let columnar = self.columnar.as_ref().map(|c| {
            serde_json::json!({
                "from_checkpoint": c.from_checkpoint(),
                "replayed": c.replayed(),
                "backlog": c.backlog(),
                "awaiting_snapshots": c.awaits_snapshots(),
                "stopped": c.stopped(),
            })
        });
        let destroyed = self
            .destroyed_ranges
            .load(std::sync::atomic::Ordering::Relaxed);
        serde_json::json!({
            "node_id": self.node_id,
            "regions": regions,
            "learner_regions": learners,
            "columnar": columnar,
            "gc": { "destroyed_ranges": destroyed },
        })
    }

    /// `GET /cluster`: the stores and regions as the placement driver knows
    /// them (asked of it, wherever it runs); a single node reports itself.
    pub fn cluster_json(&self) -> Result<serde_json::Value> {
        let Some(pd) = &self.pd else {
            return Ok(self.single_node_report());
        };
        let json = pd.cluster_report().map_err(Error::Unavailable)?;
        serde_json::from_str(&json).map_err(|e| Error::Unavailable(e.to_string()))
    }

    /// Splits the regions holding `keys` at each of them (`SPLIT TABLE`),
    /// on each region's leader, the new ids from the timestamp oracle;
    /// returns how many regions it made.
    pub fn split_at(&self, keys: &[Vec<u8>]) -> Result<usize> {
        let mut made = 0;
        for key in keys {
            let new_id = (self.tso.get_ts()).map_err(|e| Error::Unavailable(e.to_string()))?;
            let split = self.txn_store.split(key, new_id);
            if split.map_err(|e| Error::Unavailable(e.to_string()))? {
                made += 1;
                info!(new_region_id = new_id, "region split as asked");
            }
        }
        Ok(made)
    }

    /// The embedded node's report: one store holding every region.
    fn single_node_report(&self) -> serde_json::Value {
        let regions: Vec<duet_placement::RegionReport> = (self.regions().into_iter())
            .map(|r| duet_placement::RegionReport {
                id: r.region_id,
                start_key: hex(&r.start_key),
                end_key: hex(&r.end_key),
                voters: vec![self.node_id],
                learners: Vec::new(),
                columnar: vec![self.node_id],
                leader: Some(self.node_id),
                keys: 0,
                bytes: 0,
            })
            .collect();
        let store = duet_placement::StoreReport {
            id: self.node_id,
            raft_addr: String::new(),
            mysql_addr: String::new(),
            role: duet_placement::Role::Row,
            state: duet_placement::StoreState::Up,
            regions: regions.len(),
            leaders: regions.len(),
            bytes: 0,
        };
        let report = duet_placement::ClusterReport {
            max_replicas: 1,
            stores: vec![store],
            regions,
            warnings: Vec::new(),
        };
        serde_json::to_value(report).unwrap_or_default()
    }

    /// The placement driver's counters and report, when it runs here.
    pub fn placement_snapshot(
        &self,
    ) -> Option<(
        duet_placement::schedulers::Counters,
        duet_placement::ClusterReport,
    )> {
        self.pd.as_ref()?.local_driver()
    }

    /// `POST /admin/stores/N/remove`: the placement driver drains store
    /// `id` (its replicas move away) and then retires it.
    pub fn remove_store(&self, id: u64) -> Result<()> {
        let Some(pd) = &self.pd else {
            return Err(Error::Refused(
                "a single node has no other store to move its regions to".into(),
            ));
        };
        pd.remove_store(id).map_err(|e| match e {
            crate::pd::heartbeat::PdError::Refused(m) => Error::Refused(m),
            crate::pd::heartbeat::PdError::Unreachable(m) => Error::Unavailable(m),
        })
    }

    /// Adds a voter or a learner (with its Raft address) to every region, or
    /// removes a node from every region; returns once applied here.
    pub fn change_membership(&self, change: &MembershipChange) -> Result<serde_json::Value> {
        let kind = match change.change.as_str() {
            "add_voter" => ConfChangeType::AddNode,
            "add_learner" => ConfChangeType::AddLearnerNode,
            "remove" => ConfChangeType::RemoveNode,
            other => {
                return Err(Error::Config(format!(
                    "change {other:?} is not add_voter, add_learner or remove"
                )));
            }
        };
        let mut addrs = Vec::new();
        if let Some(addr) = &change.raft_addr {
            addr.parse::<std::net::SocketAddr>().map_err(|_| {
                Error::Config(format!("raft_addr {addr:?} is not an IP:PORT address"))
            })?;
            addrs.push(PeerAddress {
                store_id: change.node_id,
                addr: addr.clone(),
            });
        }
        if change.node_id == 0 {
            return Err(Error::Config("node_id must be at least 1".into()));
        }
        // A node leaves with its learner; one that joins adds its learner
        // itself once it holds the regions (see `learner_loop`).
        let mut changes = vec![(kind, change.node_id)];
        if kind == ConfChangeType::RemoveNode {
            changes.push((kind, learner_store_id(change.node_id)));
        }
        self.txn_store
            .change_membership(&changes, &addrs)
            .map_err(|e| Error::Io {
                context: "membership change".into(),
                source: std::io::Error::other(e.to_string()),
            })?;
        Ok(self.status_json())
    }

    /// Hands its leaders over, stops the Raft store, makes every write durable and checkpoints the
    /// columnar replica (the next start loads it instead of rebuilding).
    pub fn stop(&self) {
        // Leaders first: the other voters lead at once rather than after an
        // election timeout, so clients elsewhere see retries, not errors.
        let still_led = self.store.drain_leaders(DRAIN_TIMEOUT);
        if still_led > 0 {
            warn!(regions = still_led, "stopping while still leading");
        }
        for task in &self.background {
            task.abort();
        }
        self.learner_store.stop();
        self.store.stop();
        for engine in [&self.engine, &self.learner_engine] {
            if let Err(e) = engine.sync() {
                warn!(error = %e, "final sync failed");
            }
        }
        if let Some(replica) = &self.columnar {
            match replica.checkpoint() {
                Ok(true) => info!("columnar replica checkpointed"),
                Ok(false) => {}
                Err(e) => warn!(error = %e, "columnar checkpoint failed; the next start rebuilds"),
            }
        }
    }
}

/// How long a stopping node waits for the leaders it hands over.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Split checks count a region again at least every this many rounds.
const RESCAN_ROUNDS: u32 = 6;

/// Every `every`, splits each region this node leads that holds more keys
/// or bytes than `limits` allow. A region is scanned again only once what
/// it applied since its last scan could have taken it past a limit (each
/// applied version adds at most one key, and its bytes), so a busy store
/// does not rescan every region each round. New region ids come from the
/// timestamp oracle.
async fn split_loop(
    store: Arc<RaftStore<RocksEngine>>,
    txn_store: Arc<ClusterStore<RocksEngine>>,
    tso: Arc<dyn TimestampSource>,
    every: Duration,
    limits: SplitLimits,
    counted: RegionSizes,
) {
    // Per region: its size at its last scan, its written keys and bytes
    // then, and when.
    type Scanned = HashMap<u64, (RegionSize, (u64, u64), Instant)>;
    let scanned = Arc::new(std::sync::Mutex::new(Scanned::new()));
    let mut interval = tokio::time::interval(every);
    loop {
        interval.tick().await;
        let (store, txn_store, tso, scanned, counted) = (
            Arc::clone(&store),
            Arc::clone(&txn_store),
            Arc::clone(&tso),
            Arc::clone(&scanned),
            Arc::clone(&counted),
        );
        let outcome = tokio::task::spawn_blocking(move || {
            let mut scanned = scanned.lock().unwrap_or_else(|e| e.into_inner());
            for r in store.status().into_iter().filter(|r| r.is_leader) {
                // Counted afresh now and then all the same: deletes the GC
                // collected shrink a region without writes to show it.
                if let Some(&(size, (keys, bytes), at)) = scanned.get(&r.region_id)
                    && at.elapsed() < every * RESCAN_ROUNDS
                {
                    let could_be = RegionSize {
                        keys: size.keys + r.written_keys.saturating_sub(keys),
                        bytes: size.bytes + r.written_bytes.saturating_sub(bytes),
                    };
                    let within = |n: u64, limit: u64| limit == 0 || n <= limit;
                    if within(could_be.keys, limits.keys) && within(could_be.bytes, limits.bytes) {
                        continue;
                    }
                }
                let Some(region) = store.view().get(r.region_id) else {
                    continue;
                };
                let engine = store.engine().as_ref();
                let check = find_split_key(engine, &region, limits).map_err(|e| e.to_string())?;
                let size = RegionSize {
                    keys: check.keys,
                    bytes: check.bytes,
                };
                scanned.insert(
                    r.region_id,
                    (size, (r.written_keys, r.written_bytes), Instant::now()),
                );
                (counted.lock().unwrap_or_else(|e| e.into_inner())).insert(r.region_id, size);
                let Some(key) = check.split_key else {
                    continue;
                };
                let new_id = tso.get_ts().map_err(|e| e.to_string())?;
                txn_store.split(&key, new_id).map_err(|e| e.to_string())?;
                // Both halves are counted afresh next round.
                scanned.remove(&r.region_id);
                info!(
                    region_id = r.region_id,
                    new_region_id = new_id,
                    keys = check.keys,
                    bytes = check.bytes,
                    "region split"
                );
            }
            Ok::<_, String>(())
        })
        .await;
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "split check failed"),
            Err(e) => warn!(error = %e, "split check task failed"),
        }
    }
}

/// Every `every`, extends the primary lock of each of this node's running
/// transactions that hold row locks (`SELECT … FOR UPDATE`), so that they
/// keep them for as long as they last, as MySQL does.
async fn heartbeat_loop(client: TxnClient<ClusterStore<RocksEngine>>, every: Duration) {
    let mut interval = tokio::time::interval(every);
    loop {
        interval.tick().await;
        let client = client.clone();
        match tokio::task::spawn_blocking(move || client.keep_alive()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => warn!(error = %e, "a transaction heartbeat failed"),
            Err(e) => warn!(error = %e, "a transaction heartbeat panicked"),
        }
    }
}

/// Adds this node's learner store to every region that has this node's
/// voter but not its learner and no columnar count: at once, then every
/// second (regions founded before learners existed, regions of a node
/// that joined or that received a voter).
async fn learner_loop(
    store: Arc<RaftStore<RocksEngine>>,
    txn_store: Arc<ClusterStore<RocksEngine>>,
    node_id: u64,
    counts: Option<(Arc<ColumnarCounts>, TxnClient<ClusterStore<RocksEngine>>)>,
) {
    let learner = learner_store_id(node_id);
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    loop {
        interval.tick().await;
        // In a cluster, a region a columnar count applies to has its
        // learners placed by the driver instead.
        if let Some((counts, client)) = &counts {
            let (c, client) = (Arc::clone(counts), client.clone());
            let read = tokio::task::spawn_blocking(move || c.refresh(&client)).await;
            if let Ok(Err(e)) = &read {
                debug!(error = %e, "reading the columnar counts failed");
            }
            if !counts.known() {
                continue;
            }
        }
        let counted = |r: &duet_raft::region::Region| {
            (counts.as_ref()).is_some_and(|(c, _)| c.wanted(&r.start_key, &r.end_key).is_some())
        };
        let missing: Vec<u64> = (store.view().regions().iter())
            .filter(|r| {
                r.peers.iter().any(|p| p.store_id == node_id)
                    && !r.peers.iter().any(|p| p.store_id == learner)
                    && !counted(r)
            })
            .map(|r| r.id)
            .collect();
        if missing.is_empty() {
            continue;
        }
        let txn_store = Arc::clone(&txn_store);
        let outcome = tokio::task::spawn_blocking(move || {
            let add = [(ConfChangeType::AddLearnerNode, learner)];
            txn_store.change_membership_of(&missing, &add, &[])
        })
        .await;
        match outcome {
            Ok(Ok(())) => info!(learner, "columnar learner added beside this node's voters"),
            Ok(Err(e)) => warn!(error = %e, "adding the columnar learner failed; retrying"),
            Err(e) => warn!(error = %e, "adding the columnar learner failed; retrying"),
        }
    }
}

/// The cluster's layout for the SQL layer's `information_schema`.
pub struct ClusterLayout(pub Arc<Node>);

impl duet_sql::ClusterView for ClusterLayout {
    fn report(&self) -> std::result::Result<serde_json::Value, String> {
        self.0.cluster_json().map_err(|e| e.to_string())
    }

    fn split(&self, keys: &[Vec<u8>]) -> std::result::Result<usize, String> {
        self.0.split_at(keys).map_err(|e| e.to_string())
    }
}

/// This node's row store as it presents itself to the placement driver.
fn store_meta(config: &Config) -> duet_raft::rpc::pd::StoreMeta {
    duet_raft::rpc::pd::StoreMeta {
        id: config.node_id,
        raft_addr: config.raft_addr.clone(),
        mysql_addr: config.mysql_addr.clone(),
        role: config.role.clone(),
        state: String::new(),
    }
}

/// Lower-case hex of a key, for `/status`.
fn hex(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// The body of `POST /admin/membership`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembershipChange {
    /// `add_voter`, `add_learner` or `remove`.
    pub change: String,
    pub node_id: u64,
    /// The Raft address of a node being added that is not a founder.
    pub raft_addr: Option<String>,
}
