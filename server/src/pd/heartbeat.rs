//! Every node's side of placement: each round it finds the placement
//! driver (the first region's leader), sends its store heartbeat (learning
//! the members' addresses from the answer), reports every region it leads,
//! and proposes the steps the driver answers — membership changes through
//! the region's own log, leadership through raft-rs's transfer. A lost
//! answer is no matter: the next round reports the region again and the
//! driver hands out whatever step is still not done.
//!
//! A node that joins with `--join` first calls `Join` at the address given
//! ([`join`]), following the answers to the driver, and learns the members.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use duet_raft::cluster::{ClusterStore, ClusterTso};
use duet_raft::region::PeerAddress;
use duet_raft::rpc::PdHandler;
use duet_raft::rpc::pd::*;
use duet_raft::store::{LEARNER_STORE_BIT, RaftStore, RegionStatus, learner_store_id};
use duet_raft::transport::grpc::{GrpcTransport, NodeChannel};
use duet_storage::engine::rocks::RocksEngine;
use raft::prelude::ConfChangeType;
use tracing::{debug, info, warn};

use super::Driver;

/// A region's size as a split check counted it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegionSize {
    pub keys: u64,
    pub bytes: u64,
}

/// The size of each region this node led when its split check last
/// counted it (what its heartbeats report).
pub type RegionSizes = Arc<std::sync::Mutex<std::collections::HashMap<u64, RegionSize>>>;

/// How long one placement call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

type Call<A> = Pin<Box<dyn Future<Output = Result<tonic::Response<A>, tonic::Status>> + Send>>;

/// A node's link to the placement driver.
pub struct PdClient {
    node_id: u64,
    cluster_id: u64,
    me: StoreMeta,
    data_dir: PathBuf,
    store: Arc<RaftStore<RocksEngine>>,
    transport: Arc<GrpcTransport>,
    tso: Arc<ClusterTso<RocksEngine>>,
    driver: Arc<Driver>,
    /// Region sizes as the split check last counted them.
    region_sizes: RegionSizes,
    /// Where merges are committed (on the target's leader, wherever).
    txn_store: Arc<ClusterStore<RocksEngine>>,
}

impl PdClient {
    pub fn new(
        me: StoreMeta,
        data_dir: PathBuf,
        (store, txn_store): (Arc<RaftStore<RocksEngine>>, Arc<ClusterStore<RocksEngine>>),
        transport: Arc<GrpcTransport>,
        tso: Arc<ClusterTso<RocksEngine>>,
        driver: Arc<Driver>,
        region_sizes: RegionSizes,
    ) -> Self {
        PdClient {
            node_id: me.id,
            cluster_id: transport.cluster_id(),
            me,
            data_dir,
            store,
            transport,
            tso,
            driver,
            region_sizes,
            txn_store,
        }
    }

    /// The tables' columnar counts (this node's learner loop keeps them
    /// fresh; its driver reads them while it runs).
    pub fn columnar_counts(&self) -> Arc<crate::pd::counts::ColumnarCounts> {
        Arc::clone(self.driver.counts())
    }

    /// Sends one placement call to the driver: this node's own when it
    /// leads the first region, else the leader it knows, following
    /// `not_leader` answers, else each known node in turn.
    fn call<A: PdAnswer + Send + 'static>(
        &self,
        local: &dyn Fn(&Driver) -> A,
        remote: &dyn Fn(NodeChannel) -> Call<A>,
    ) -> Result<A, String> {
        let mut candidates: Vec<u64> = self.tso.first_leader().into_iter().collect();
        candidates.extend(self.transport.known_nodes());
        candidates.push(self.node_id);
        let mut tried = Vec::new();
        let mut last = "no node answered".to_string();
        let mut next = None;
        while let Some(to) = next
            .take()
            .or_else(|| candidates.iter().copied().find(|c| !tried.contains(c)))
        {
            if tried.contains(&to) {
                continue;
            }
            tried.push(to);
            let answer = if to == self.node_id {
                local(&self.driver)
            } else {
                let Some(client) = self.transport.client(to) else {
                    continue;
                };
                match self.transport.wait(remote(client), CALL_TIMEOUT) {
                    Ok(Ok(answer)) => answer.into_inner(),
                    Ok(Err(status)) => {
                        last = format!("node {to}: {}", status.message());
                        continue;
                    }
                    Err(e) => {
                        last = format!("node {to}: {e}");
                        continue;
                    }
                }
            };
            match answer.header() {
                Some(h) if h.not_leader => {
                    if h.leader != 0 {
                        if let Ok(addr) = h.leader_addr.parse::<SocketAddr>() {
                            self.transport.learn_address(h.leader, addr);
                        }
                        next = Some(h.leader);
                    }
                    last = format!("node {to} does not run the placement driver");
                }
                _ => {
                    if to != self.node_id {
                        self.tso.learn_first_leader(Some(to));
                    }
                    return Ok(answer);
                }
            }
        }
        Err(last)
    }

    /// One round: store heartbeat, region heartbeat, the steps answered,
    /// and the driver's own tick when it runs here.
    pub fn round(&self) {
        self.store_heartbeat();
        let led: Vec<RegionStatus> = (self.store.status().into_iter())
            .filter(|r| r.is_leader)
            .collect();
        if !led.is_empty() {
            self.region_heartbeat(&led);
        }
        for r in &led {
            if let Some(commit) = &r.commit_merge {
                super::merge::finish(&self.store, &self.txn_store, r, commit);
            }
        }
        self.driver.tick();
    }

    fn store_heartbeat(&self) {
        let space = crate::disk::space(&self.data_dir).ok();
        let request = StoreHeartbeatRequest {
            cluster_id: self.cluster_id,
            store: Some(self.me.clone()),
            capacity_bytes: space.map_or(0, |s| s.capacity),
            used_bytes: dir_bytes(&self.data_dir.join("kv")),
            available_bytes: space.map_or(0, |s| s.available),
            disk_full: self.store.disk_full(),
        };
        let answer = self.call(&|d| d.store_heartbeat(request.clone()), &|mut c| {
            let r = request.clone();
            Box::pin(async move { c.store_heartbeat(r).await })
        });
        match answer {
            Ok(a) => match a.header.filter(|h| !h.error.is_empty()) {
                Some(h) => warn!(error = %h.error, "the placement driver refused this store"),
                None => {
                    self.learn_members(&a.members);
                    if a.state == "removed" {
                        warn!("this store was removed from the cluster; it holds no replica");
                    }
                }
            },
            Err(e) => debug!(error = %e, "store heartbeat not delivered"),
        }
    }

    fn learn_members(&self, members: &[StoreMeta]) {
        for m in members {
            if let Ok(addr) = m.raft_addr.parse::<SocketAddr>() {
                self.transport.learn_address(m.id, addr);
            }
        }
    }

    fn region_heartbeat(&self, led: &[RegionStatus]) {
        let request = RegionHeartbeatRequest {
            cluster_id: self.cluster_id,
            store_id: self.node_id,
            regions: {
                let sizes = self.region_sizes.lock().unwrap_or_else(|e| e.into_inner());
                (led.iter())
                    .map(|r| report(r, sizes.get(&r.region_id).copied().unwrap_or_default()))
                    .collect()
            },
        };
        let answer = self.call(&|d| d.region_heartbeat(request.clone()), &|mut c| {
            let r = request.clone();
            Box::pin(async move { c.region_heartbeat(r).await })
        });
        match answer {
            Ok(a) => {
                if let Some(h) = a.header.filter(|h| !h.error.is_empty()) {
                    warn!(error = %h.error, "region heartbeat refused");
                }
                for step in &a.steps {
                    self.execute(step);
                }
            }
            Err(e) => debug!(error = %e, "region heartbeat not delivered"),
        }
    }

    /// Proposes one step in the region it names (this node leads it). A
    /// step that would remove this node's own voter hands leadership away
    /// instead; the new leader gets the step on its next heartbeat.
    fn execute(&self, step: &StepOrder) {
        let Some(region) = self.store.view().get(step.region_id) else {
            return;
        };
        let member = |id: u64| region.peers.iter().any(|p| p.store_id == id);
        // A node's columnar learner leaves with its voter, unless the
        // driver places the region's learners (a columnar count).
        let counted = (self.driver.counts()).wanted(&region.start_key, &region.end_key);
        let with_columnar = |id: u64, mut changes: Vec<(ConfChangeType, u64)>| {
            if id & LEARNER_STORE_BIT == 0 && counted.is_none() && member(learner_store_id(id)) {
                changes.push((ConfChangeType::RemoveNode, learner_store_id(id)));
            }
            changes
        };
        let kind = StepKind::try_from(step.kind).unwrap_or(StepKind::Unknown);
        let changes = match kind {
            StepKind::AddLearner => vec![(ConfChangeType::AddLearnerNode, step.store)],
            StepKind::PromoteLearner => vec![(ConfChangeType::AddNode, step.store)],
            StepKind::ReplaceVoter if step.remove == self.node_id => {
                self.store.step_aside(step.region_id);
                return;
            }
            StepKind::ReplaceVoter => with_columnar(
                step.remove,
                vec![
                    (ConfChangeType::AddNode, step.store),
                    (ConfChangeType::RemoveNode, step.remove),
                ],
            ),
            StepKind::RemovePeer if step.store == self.node_id => {
                self.store.step_aside(step.region_id);
                return;
            }
            StepKind::RemovePeer => {
                with_columnar(step.store, vec![(ConfChangeType::RemoveNode, step.store)])
            }
            StepKind::TransferLeader => {
                self.store.transfer_leader(step.region_id, step.store);
                return;
            }
            StepKind::MergeInto => {
                super::merge::prepare(&self.store, step.region_id, step.target_region);
                return;
            }
            StepKind::Unknown => return,
        };
        let addrs: Vec<PeerAddress> = (!step.raft_addr.is_empty() && !member(step.store))
            .then(|| PeerAddress {
                store_id: step.store,
                addr: step.raft_addr.clone(),
            })
            .into_iter()
            .collect();
        info!(
            region_id = step.region_id,
            ?kind,
            store = step.store,
            remove = step.remove,
            "placement step"
        );
        if let Err(e) = self
            .store
            .change_membership(step.region_id, &changes, &addrs)
        {
            info!(region_id = step.region_id, error = %e, "placement step not proposed");
        }
    }
}

/// Why an administrative placement call failed.
#[derive(Debug)]
pub enum PdError {
    /// The driver said no (an unknown store, the last row store …).
    Refused(String),
    /// No placement driver answered.
    Unreachable(String),
}

impl PdClient {
    /// The driver's counters and report, when it runs on this node.
    pub fn local_driver(
        &self,
    ) -> Option<(
        duet_placement::schedulers::Counters,
        duet_placement::ClusterReport,
    )> {
        self.driver.snapshot()
    }

    /// The report `GET /cluster` serves, as JSON.
    pub fn cluster_report(&self) -> Result<String, String> {
        let request = GetClusterRequest {
            cluster_id: self.cluster_id,
        };
        let answer = self.call(&|d| d.get_cluster(request.clone()), &|mut c| {
            let r = request.clone();
            Box::pin(async move { c.get_cluster(r).await })
        })?;
        match answer.header.filter(|h| !h.error.is_empty()) {
            Some(h) => Err(h.error),
            None => Ok(answer.report_json),
        }
    }

    /// Asks the driver to drain and retire store `id`.
    pub fn remove_store(&self, id: u64) -> Result<(), PdError> {
        let request = RemoveStoreRequest {
            cluster_id: self.cluster_id,
            store_id: id,
        };
        let answer = self
            .call(&|d| d.remove_store(request.clone()), &|mut c| {
                let r = request.clone();
                Box::pin(async move { c.remove_store(r).await })
            })
            .map_err(PdError::Unreachable)?;
        match answer.header.filter(|h| !h.error.is_empty()) {
            Some(h) => Err(PdError::Refused(h.error)),
            None => Ok(()),
        }
    }
}

/// A led region as the driver wants it.
fn report(r: &RegionStatus, size: RegionSize) -> RegionReport {
    RegionReport {
        id: r.region_id,
        start_key: r.start_key.clone(),
        end_key: r.end_key.clone(),
        conf_ver: r.epoch.0,
        version: r.epoch.1,
        voters: r.voters.clone(),
        learners: r.learners.clone(),
        leader: r.peer_id,
        pending: r.pending.clone(),
        keys: size.keys,
        bytes: size.bytes,
    }
}

/// Bytes of the files under `dir` (the store's RocksDB).
fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// Every `every`, one round of [`PdClient::round`] (on a blocking thread:
/// the calls wait for answers).
pub async fn pd_loop(client: Arc<PdClient>, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let client = Arc::clone(&client);
        if let Err(e) = tokio::task::spawn_blocking(move || client.round()).await {
            warn!(error = %e, "a placement round failed");
        }
    }
}

/// Asks the cluster that `seed` (any member's Raft address) belongs to to
/// admit `me`, following `not_leader` answers to the placement driver;
/// learns the members' addresses. Fails with the driver's reason (a node
/// id already taken, another cluster …) or when no member answers.
pub async fn join(
    transport: &GrpcTransport,
    seed: SocketAddr,
    me: &StoreMeta,
) -> Result<Vec<StoreMeta>, String> {
    let request = JoinRequest {
        cluster_id: transport.cluster_id(),
        store: Some(me.clone()),
    };
    let mut target: Option<u64> = None;
    let mut last = String::new();
    for _ in 0..40 {
        let client = match target {
            Some(node) => transport.client(node),
            None => transport.client_at(seed),
        };
        let Some(mut client) = client else {
            return Err(format!("no address for node {target:?}"));
        };
        let answer = tokio::time::timeout(CALL_TIMEOUT, client.join(request.clone())).await;
        match answer {
            Ok(Ok(a)) => {
                let a = a.into_inner();
                match a.header {
                    Some(h) if h.not_leader => {
                        match (h.leader, h.leader_addr.parse::<SocketAddr>()) {
                            (leader, Ok(addr)) if leader != 0 => {
                                transport.learn_address(leader, addr);
                                target = Some(leader);
                            }
                            _ => target = None,
                        }
                        last = "no placement driver answered".into();
                    }
                    Some(h) if !h.error.is_empty() => return Err(h.error),
                    _ => {
                        for m in &a.members {
                            if let Ok(addr) = m.raft_addr.parse::<SocketAddr>() {
                                transport.learn_address(m.id, addr);
                            }
                        }
                        return Ok(a.members);
                    }
                }
            }
            Ok(Err(status)) if status.code() == tonic::Code::FailedPrecondition => {
                return Err(status.message().to_string());
            }
            Ok(Err(status)) => last = status.message().to_string(),
            Err(_) => last = "no answer in time".into(),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!("joining through {seed} failed: {last}"))
}
