//! A node's view of the cluster for transactions: [`ClusterStore`] cuts
//! each command and read by region and sends each part where it can be
//! served — a region this node holds a replica of to its leader (itself, or
//! another node by `KvExecute`) or to its own replica (reads, at a
//! linearizable point), and a region it holds none of, found in its region
//! cache, to a node that does ([`remote`]). [`ClusterTso`] hands out
//! timestamps ([`tso`]) and [`ClusterDetector`] finds deadlocks among lock
//! waits ([`deadlock`]), both on the first region's leader; [`Handler`]
//! answers other nodes ([`handler`]).

mod deadlock;
mod handler;
mod remote;
mod tso;

pub use deadlock::{ClusterDetector, WAIT_TTL};
pub use handler::Handler;
pub use tso::ClusterTso;

use std::sync::Arc;
use std::time::{Duration, Instant};

use duet_storage::engine::Engine;
use duet_storage::txn::TxnStore;
use duet_storage::txn::commands::{Command, Response};
use duet_storage::txn::read::{Answer, Read, serve};

use protobuf::Message as _;
use raft::prelude::{ConfChangeType, ConfChangeV2};

use crate::error::Error;
use crate::region::{CommitMerge, PeerAddress, PeerAddresses, Region};
use crate::rpc::messages::{Context, Request};
use crate::store::{MergeStep, RaftStore};
use crate::transport::grpc::GrpcTransport;
use remote::{Answered, Remote, Sent};

/// How long one operation keeps retrying through leader changes.
const RETRY_FOR: Duration = Duration::from_secs(10);
/// How long one attempt to commit a merge may take (the source's leader
/// asks again on its next heartbeat round).
const MERGE_CALL_FOR: Duration = Duration::from_secs(3);
const PAUSE: Duration = Duration::from_millis(30);

fn unavailable(e: impl std::fmt::Display) -> duet_storage::Error {
    duet_storage::Error::Unavailable(e.to_string())
}

/// A storage error as it is; any other as `Unavailable`.
fn storage_error(e: Error) -> duet_storage::Error {
    match e {
        Error::Storage(e) => e,
        e => unavailable(e),
    }
}

/// How long a replica here may know no leader before a request for its
/// region is sent to the other nodes instead (a replica removed while it
/// was away, a learner whose leader stopped talking to it).
const LEADERLESS_FOR: Duration = Duration::from_secs(1);

/// Transaction commands for one node of a cluster (or a single node).
pub struct ClusterStore<E: Engine> {
    node_id: u64,
    store: Arc<RaftStore<E>>,
    transport: Option<Arc<GrpcTransport>>,
    remote: Option<Remote>,
}

/// Where a part of a request goes: a region this node holds a replica of,
/// or one it knows only from its region cache.
enum Route {
    Local(Region),
    Remote(Region),
}

impl Route {
    fn region(&self) -> &Region {
        match self {
            Route::Local(r) | Route::Remote(r) => r,
        }
    }
}

/// The outcome of one attempt in one region: `Err(None)` when nothing better
/// than "try again" is known.
type Attempt = Result<Response, Option<Error>>;

/// A call to another node's leader as one attempt.
fn attempt(answer: Result<Answered<Response>, ()>) -> Attempt {
    match answer {
        Ok(Answered::Ok(r)) => Ok(r),
        Ok(Answered::Failed(e)) => Err(Some(Error::Storage(e))),
        Ok(Answered::Region(e)) => Err(Some(e.into_error())),
        Ok(Answered::Other) | Err(()) => Err(None),
    }
}

impl<E: Engine> ClusterStore<E> {
    pub fn new(
        node_id: u64,
        store: Arc<RaftStore<E>>,
        transport: Option<Arc<GrpcTransport>>,
    ) -> Self {
        let remote = transport.as_ref().map(|t| Remote::new(Arc::clone(t)));
        ClusterStore {
            node_id,
            store,
            transport,
            remote,
        }
    }

    /// Lookups of regions this node holds no replica of that its region
    /// cache could not answer.
    pub fn region_cache_misses(&self) -> u64 {
        self.remote.as_ref().map_or(0, Remote::misses)
    }

    /// The other nodes this one knows of: the founders, and every store in
    /// its regions' descriptors.
    fn nodes(&self) -> Vec<u64> {
        let mut nodes = (self.transport.as_ref()).map_or_else(Vec::new, |t| t.known_nodes());
        for region in self.store.view().regions() {
            for p in region.peers {
                let node = crate::store::node_of(p.store_id);
                if !nodes.contains(&node) {
                    nodes.push(node);
                }
            }
        }
        nodes.retain(|n| *n != self.node_id);
        nodes
    }

    /// The regions that cover `[start, end)` (an empty `end` means no
    /// bound), in key order: this node's own replicas, and the region
    /// cache (or another node) for the keys they miss. `None` while some
    /// keys have no known region (a split being applied here; no node
    /// answered).
    fn plan(&self, start: &[u8], end: &[u8]) -> Option<Vec<Route>> {
        let mut routes = Vec::new();
        let mut key = start.to_vec();
        let mut nodes = None;
        loop {
            let mut route = self.route_of(&key, &mut nodes)?;
            // A cached range that reaches back over keys already planned
            // (it is staler than this node's own replicas) is taken from
            // `key` on: parts never overlap, and the node asked refuses the
            // part if its region moved.
            if let Route::Remote(region) = &mut route
                && region.start_key < key
            {
                region.start_key = key.clone();
            }
            let next = route.region().end_key.clone();
            routes.push(route);
            if next.is_empty() || (!end.is_empty() && next.as_slice() >= end) {
                return Some(routes);
            }
            if next <= key {
                return None;
            }
            key = next;
        }
    }

    /// The region holding `key`: this node's replica of it, or else the
    /// region cache's (asking `nodes`, the other nodes, listed on first
    /// need).
    fn route_of(&self, key: &[u8], nodes: &mut Option<Vec<u64>>) -> Option<Route> {
        if let Some(r) = self.store.view().locate(key) {
            return Some(Route::Local(r));
        }
        let nodes = nodes.get_or_insert_with(|| self.nodes());
        Some(Route::Remote(self.remote.as_ref()?.locate(key, nodes)?))
    }

    /// The regions over `[start, end)` (an empty `end`: no bound), in key
    /// order, each cut to the span: from this node's replicas and its
    /// region cache, retried while some keys have no known region. Their
    /// peers say where each region's replicas are, columnar learners too.
    pub fn regions_over(&self, start: &[u8], end: &[u8]) -> duet_storage::Result<Vec<Region>> {
        let routes = self.plan_until((start.to_vec(), end.to_vec()), Instant::now() + RETRY_FOR)?;
        Ok(routes
            .into_iter()
            .map(|route| {
                let mut region = route.region().clone();
                if region.start_key.as_slice() < start {
                    region.start_key = start.to_vec();
                }
                if !end.is_empty() && (region.end_key.is_empty() || region.end_key.as_slice() > end)
                {
                    region.end_key = end.to_vec();
                }
                region
            })
            .collect())
    }

    /// [`plan`](Self::plan), retried until `deadline`.
    fn plan_until(
        &self,
        (start, end): (Vec<u8>, Vec<u8>),
        deadline: Instant,
    ) -> duet_storage::Result<Vec<Route>> {
        loop {
            match self.plan(&start, &end) {
                Some(routes) => return Ok(routes),
                None if Instant::now() >= deadline => {
                    return Err(unavailable("no region is known for some of the keys"));
                }
                None => std::thread::sleep(PAUSE),
            }
        }
    }

    /// Sends `command` to store `leader` (`KvExecute`), which proposes it
    /// and answers once it applied; until `deadline` at most.
    fn forward(
        &self,
        leader: u64,
        region_id: u64,
        command: &Command,
        deadline: Instant,
    ) -> Attempt {
        self.call_leader((region_id, None), deadline, |t, context, timeout| {
            remote::execute_on(t, leader, context, command, timeout)
        })
    }

    /// One call to a region's leader on another node, in the region's
    /// context (`(id, epoch routed by)`), given what is left until
    /// `deadline` (a second at least).
    fn call_leader(
        &self,
        (region_id, epoch): (u64, Option<crate::region::RegionEpoch>),
        deadline: Instant,
        call: impl FnOnce(&GrpcTransport, Context, Duration) -> Result<Answered<Response>, ()>,
    ) -> Attempt {
        let transport = self.transport.as_ref().ok_or(None)?;
        let context = Context {
            cluster_id: transport.cluster_id(),
            region_id,
            epoch,
        };
        let timeout = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1));
        attempt(call(transport, context, timeout))
    }

    /// Executes every part of `command` in its region, in parallel; the
    /// first error (in key order) wins.
    fn execute_routed(
        &self,
        command: &Command,
        deadline: Instant,
    ) -> duet_storage::Result<Response> {
        let parts: Vec<(Route, Command)> = (self.plan_until(command.span(), deadline)?)
            .into_iter()
            .filter_map(|route| {
                let r = route.region();
                let part = command.restrict(&r.start_key, &r.end_key)?;
                Some((route, part))
            })
            .collect();
        let outcomes: Vec<duet_storage::Result<Response>> = match parts.as_slice() {
            [] => return Err(unavailable("no region holds the command's keys")),
            [(route, part)] => vec![self.execute_part(route, part, deadline)],
            _ => std::thread::scope(|scope| {
                let handles: Vec<_> = parts
                    .iter()
                    .map(|(route, part)| {
                        scope.spawn(move || self.execute_part(route, part, deadline))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(unavailable("a routed part panicked")))
                    })
                    .collect()
            }),
        };
        let mut response = Response::Done;
        for outcome in outcomes {
            match outcome? {
                Response::Done => {}
                status => response = status,
            }
        }
        Ok(response)
    }

    fn execute_part(
        &self,
        route: &Route,
        part: &Command,
        deadline: Instant,
    ) -> duet_storage::Result<Response> {
        match (route, &self.remote) {
            (Route::Local(r), _) => self.execute_in(r.id, part, deadline),
            (Route::Remote(r), Some(remote)) => match remote.execute(r, part, deadline) {
                Sent::Done(response) => Ok(response),
                Sent::Reroute => self.execute_routed(part, deadline),
                Sent::Failed(e) => Err(storage_error(e)),
            },
            (Route::Remote(_), None) => Err(unavailable("no route to other nodes")),
        }
    }

    /// Executes `part` in `region_id`, on its leader, retrying through
    /// leader changes; a region that changed under the request (a split)
    /// sends the part back to routing.
    fn execute_in(
        &self,
        region_id: u64,
        part: &Command,
        deadline: Instant,
    ) -> duet_storage::Result<Response> {
        let started = Instant::now();
        loop {
            let outcome = match self.store.propose(region_id, part.clone()) {
                Err(Error::NotLeader {
                    leader: Some(l), ..
                }) if l != self.node_id => self.forward(l, region_id, part, deadline),
                // A replica here that has known no leader for a while may
                // have been removed without hearing of it: ask the others.
                Err(Error::NotLeader { leader: None, .. })
                    if started.elapsed() >= LEADERLESS_FOR
                        && let (Some(remote), Some(region)) =
                            (&self.remote, self.store.view().get(region_id)) =>
                {
                    return match remote.execute(&region, part, deadline) {
                        Sent::Done(response) => Ok(response),
                        Sent::Reroute => self.execute_routed(part, deadline),
                        Sent::Failed(e) => Err(storage_error(e)),
                    };
                }
                other => other.map_err(Some),
            };
            match outcome {
                Ok(r) => return Ok(r),
                Err(Some(Error::Storage(e))) => return Err(e),
                Err(e) if Instant::now() >= deadline => {
                    return Err(unavailable(
                        e.map_or("no leader answered".to_string(), |e| e.to_string()),
                    ));
                }
                Err(Some(Error::EpochNotMatch { .. } | Error::RegionNotFound(_))) => {
                    // This node's view is behind: catch up on the region's
                    // log (which applies the split here), then route again.
                    let _ = self.store.read_index(region_id);
                    std::thread::sleep(PAUSE);
                    return self.execute_routed(part, deadline);
                }
                // No leader yet, a leader change, or an unknown outcome:
                // transaction commands are idempotent, so try again.
                Err(_) => std::thread::sleep(PAUSE),
            }
        }
    }

    /// Splits the region holding `split_key` there, on the region's leader
    /// wherever it is (this node, or another by `SplitRegion`); the new
    /// region takes `new_region_id` (unique in the cluster: take it from
    /// the timestamp oracle). Retries through leader changes and through
    /// splits that move the key to another region. `Ok(false)` when a
    /// region already starts at the key.
    pub fn split(&self, split_key: &[u8], new_region_id: u64) -> Result<bool, Error> {
        let deadline = Instant::now() + RETRY_FOR;
        loop {
            let Some(route) = self.route_of(split_key, &mut None) else {
                if Instant::now() >= deadline {
                    return Err(Error::RegionNotFound(0));
                }
                std::thread::sleep(PAUSE);
                continue;
            };
            let region = route.region().clone();
            if region.start_key == split_key {
                return Ok(false);
            }
            let split = (split_key, new_region_id);
            let outcome = match (&route, &self.remote) {
                (Route::Local(r), _) => match self.store.split(r.id, split_key, new_region_id) {
                    Err(Error::NotLeader {
                        leader: Some(l), ..
                    }) if l != self.node_id => {
                        self.call_leader((r.id, r.epoch), deadline, |t, context, timeout| {
                            remote::split_on(t, l, context, split, timeout)
                        })
                    }
                    other => other.map(|()| Response::Done).map_err(Some),
                },
                (Route::Remote(r), Some(remote)) => match remote.split(r, split, deadline) {
                    Sent::Done(r) => Ok(r),
                    Sent::Reroute => Err(None),
                    Sent::Failed(e) => Err(Some(e)),
                },
                (Route::Remote(_), None) => return Err(Error::RegionNotFound(region.id)),
            };
            match outcome {
                Ok(_) => return Ok(true),
                Err(Some(e @ Error::Storage(_))) => return Err(e),
                Err(e) if Instant::now() >= deadline => {
                    return Err(e.unwrap_or(Error::ProposalDropped {
                        region_id: region.id,
                    }));
                }
                Err(Some(Error::EpochNotMatch { .. } | Error::RegionNotFound(_))) => {
                    // This node's view is behind (or the key moved): catch
                    // up on the region's log, then locate the key again.
                    if let Route::Local(r) = &route {
                        let _ = self.store.read_index(r.id);
                    }
                    std::thread::sleep(PAUSE);
                }
                Err(_) => std::thread::sleep(PAUSE),
            }
        }
    }

    /// Commits a merge into `target` on the target's leader, wherever it
    /// is (this node holds a replica of it: a merge's regions share their
    /// stores). `EpochNotMatch` carries the target as it is now.
    pub fn commit_merge(&self, target: u64, commit: &CommitMerge) -> Result<(), Error> {
        let deadline = Instant::now() + MERGE_CALL_FOR;
        loop {
            let outcome = match self.store.merge(target, MergeStep::Commit(commit.clone())) {
                Err(Error::NotLeader {
                    leader: Some(l), ..
                }) if l != self.node_id => {
                    let deadline = Instant::now() + MERGE_CALL_FOR;
                    self.call_leader((target, None), deadline, |t, context, timeout| {
                        remote::merge_on(t, l, context, commit, timeout)
                    })
                }
                other => other.map(|()| Response::Done).map_err(Some),
            };
            match outcome {
                Ok(_) => return Ok(()),
                Err(Some(
                    e @ (Error::EpochNotMatch { .. }
                    | Error::MergeRefused { .. }
                    | Error::RegionNotFound(_)
                    | Error::Storage(_)),
                )) => return Err(e),
                Err(e) if Instant::now() >= deadline => {
                    return Err(e.unwrap_or(Error::ProposalDropped { region_id: target }));
                }
                Err(_) => std::thread::sleep(PAUSE),
            }
        }
    }

    /// Changes the membership of every region — `(kind, node)` as in
    /// [`RaftStore::change_membership`], `addrs` the Raft addresses of
    /// joining stores — on each region's leader (forwarding when that is
    /// another node), and returns once this node applied the change in
    /// every region.
    pub fn change_membership(
        &self,
        changes: &[(ConfChangeType, u64)],
        addrs: &[PeerAddress],
    ) -> Result<(), Error> {
        let all: Vec<u64> = self.store.view().regions().iter().map(|r| r.id).collect();
        self.change_membership_of(&all, changes, addrs)
    }

    /// [`change_membership`](Self::change_membership) in the regions
    /// `region_ids` that this node holds.
    pub fn change_membership_of(
        &self,
        region_ids: &[u64],
        changes: &[(ConfChangeType, u64)],
        addrs: &[PeerAddress],
    ) -> Result<(), Error> {
        let deadline = Instant::now() + RETRY_FOR * 2;
        let mut change = crate::peer::conf_change(changes);
        if !addrs.is_empty() {
            let book = PeerAddresses {
                peers: addrs.to_vec(),
            };
            change.context = prost::Message::encode_to_vec(&book).into();
        }
        let regions = self.store.view().regions();
        for region in regions.iter().filter(|r| region_ids.contains(&r.id)) {
            let mut last_error = None;
            while !self.has_membership(region.id, changes) {
                if Instant::now() >= deadline {
                    return Err(last_error.unwrap_or(Error::ProposalDropped {
                        region_id: region.id,
                    }));
                }
                match self.store.propose_conf_change(region.id, change.clone()) {
                    Err(Error::NotLeader {
                        leader: Some(l), ..
                    }) if l != self.node_id => {
                        if let Err(e) = self.forward_conf_change(l, region.id, &change) {
                            last_error = Some(e);
                        }
                    }
                    Err(e) => last_error = Some(e),
                    Ok(()) => {}
                }
                // Wait for the change to apply here (raft-rs ignores a change
                // proposed while another is pending: then propose it again).
                let until = Instant::now() + Duration::from_secs(2);
                while Instant::now() < until && !self.has_membership(region.id, changes) {
                    std::thread::sleep(PAUSE);
                }
            }
        }
        Ok(())
    }

    fn forward_conf_change(
        &self,
        leader: u64,
        region_id: u64,
        change: &ConfChangeV2,
    ) -> Result<(), Error> {
        let Some(transport) = &self.transport else {
            return Err(Error::NotLeader {
                region_id,
                leader: Some(leader),
            });
        };
        let request = Request {
            region_id,
            conf_change: change.write_to_bytes().unwrap_or_default(),
            ..Request::default()
        };
        let reply = transport
            .call(leader, request, Duration::from_secs(3))
            .map_err(|e| Error::Corruption {
                what: "forwarded membership change",
                detail: e,
            })?;
        if reply.error.is_empty() {
            Ok(())
        } else {
            Err(Error::NotLeader {
                region_id,
                leader: (reply.leader != 0).then_some(reply.leader),
            })
        }
    }

    /// Whether this node's replica of `region_id` has applied `changes`.
    fn has_membership(&self, region_id: u64, changes: &[(ConfChangeType, u64)]) -> bool {
        let Some(r) = self
            .store
            .status()
            .into_iter()
            .find(|r| r.region_id == region_id)
        else {
            // Gone from this store: done if the change removed this node
            // (its peer is destroyed as soon as it applies the change).
            return (changes.iter())
                .any(|(kind, node)| *kind == ConfChangeType::RemoveNode && *node == self.node_id);
        };
        changes.iter().all(|(kind, node)| match kind {
            ConfChangeType::AddNode => r.voters.contains(node),
            ConfChangeType::AddLearnerNode => r.learners.contains(node),
            ConfChangeType::RemoveNode => !r.voters.contains(node) && !r.learners.contains(node),
        })
    }
}

impl<E: Engine> ClusterStore<E> {
    /// Answers every part of `read` in its region, in key order, counting a
    /// scan's limit down from part to part.
    fn read_routed(&self, read: &Read, deadline: Instant) -> duet_storage::Result<Answer> {
        // A read of one key held here needs only its region: the point
        // read's path.
        if let Some(key) = read.single_key()
            && let Some(region) = self.store.view().locate(key)
        {
            return self.read_in(&region, read, deadline);
        }
        let mut answer = Answer::default();
        for route in self.plan_until(read.span(), deadline)? {
            let region = route.region();
            let Some(part) = read.restrict(&region.start_key, &region.end_key) else {
                continue;
            };
            let part = match read.remaining(&answer) {
                Some(0) => break,
                Some(n) => part.with_limit(n),
                None => part,
            };
            let got = self.read_part(&route, &part, deadline)?;
            tracing::debug!(
                region_id = region.id,
                local = matches!(route, Route::Local(_)),
                pairs = got.pairs.len(),
                "read part"
            );
            answer.append(got);
        }
        Ok(answer)
    }

    fn read_part(
        &self,
        route: &Route,
        part: &Read,
        deadline: Instant,
    ) -> duet_storage::Result<Answer> {
        match (route, &self.remote) {
            (Route::Local(r), _) => self.read_in(r, part, deadline),
            (Route::Remote(r), Some(remote)) => self.read_remote(remote, r, part, deadline),
            (Route::Remote(_), None) => Err(unavailable("no route to other nodes")),
        }
    }

    /// Answers `part` from a replica of `region` on another node.
    fn read_remote(
        &self,
        remote: &Remote,
        region: &Region,
        part: &Read,
        deadline: Instant,
    ) -> duet_storage::Result<Answer> {
        match remote.read(region, part, deadline) {
            Sent::Done(answer) => Ok(answer),
            Sent::Reroute => self.read_routed(part, deadline),
            Sent::Failed(e) => Err(storage_error(e)),
        }
    }

    /// Answers `part` from this node's replica of `region` once it is at a
    /// linearizable point: at once under the leader's lease, else after a
    /// ReadIndex round. A region that changed under the read (a split) sends
    /// the part back to routing.
    fn read_in(
        &self,
        region: &Region,
        part: &Read,
        deadline: Instant,
    ) -> duet_storage::Result<Answer> {
        // A node short of disk space falls behind on purpose (its followers
        // drop appends): it reads from the region's leader instead.
        if self.store.disk_full()
            && let Some(remote) = &self.remote
            && let Some(leader) = (self.store.view().leadership(region.id))
                .and_then(|l| l.leader)
                .filter(|l| *l != self.node_id)
        {
            remote.learn_leader(region, leader);
            return self.read_remote(remote, region, part, deadline);
        }
        let started = Instant::now();
        loop {
            let ready = if self.store.local_read_at(region.id, part.ts()) {
                Ok(0)
            } else {
                self.store.read_index_at(region.id, part.ts())
            };
            let outcome = ready.and_then(|_| {
                let snap = self.store.engine().snapshot();
                // The range read must still be this region's: a split
                // applied since routing moves part of it elsewhere.
                if (self.store.view()).has_range(region.id, &region.start_key, &region.end_key) {
                    Ok(snap)
                } else {
                    Err(Error::RegionNotFound(region.id))
                }
            });
            match outcome {
                Ok(snap) => return serve(&snap, part),
                // A replica here that has known no leader for a while may
                // have been removed without hearing of it: ask the others.
                Err(Error::NotLeader { leader: None, .. })
                    if started.elapsed() >= LEADERLESS_FOR
                        && let Some(remote) = &self.remote =>
                {
                    return self.read_remote(remote, region, part, deadline);
                }
                Err(e) if Instant::now() >= deadline => return Err(unavailable(e)),
                Err(Error::EpochNotMatch { .. } | Error::RegionNotFound(_)) => {
                    std::thread::sleep(PAUSE);
                    return self.read_routed(part, deadline);
                }
                Err(_) => std::thread::sleep(PAUSE),
            }
        }
    }
}

impl<E: Engine> TxnStore for ClusterStore<E> {
    /// Linearizable: each region the read touches is read on this node once
    /// it has applied everything committed before the call.
    fn read(&self, read: &Read) -> duet_storage::Result<Answer> {
        self.read_routed(read, Instant::now() + RETRY_FOR)
    }

    /// Every region this node may not read locally (it leads it under a
    /// lease, see [`crate::peer::Lease`]) gets a ReadIndex round — all at
    /// once, answered on one channel — so even a follower has applied
    /// everything committed before the call.
    fn catch_up(&self, read_ts: u64) -> duet_storage::Result<()> {
        // A node short of disk space keeps its row replicas behind on
        // purpose; its own reads go to the leaders (see `read_in`) and the
        // columnar replica waits on its learners, which go on applying.
        if self.store.disk_full() {
            return Ok(());
        }
        let deadline = Instant::now() + RETRY_FOR;
        let mut pending: Vec<u64> = self
            .store
            .view()
            .regions()
            .iter()
            .map(|r| r.id)
            .filter(|id| !self.store.local_read_at(*id, read_ts))
            .collect();
        while !pending.is_empty() {
            let (tx, rx) = crossbeam::channel::unbounded();
            for &region_id in &pending {
                let tx = tx.clone();
                self.store.read_index_async_at(
                    region_id,
                    read_ts,
                    Box::new(move |r| {
                        let _ = tx.send((region_id, r));
                    }),
                );
            }
            drop(tx);
            let (mut failed, mut last_error) = (Vec::new(), None);
            for _ in 0..pending.len() {
                match rx.recv_deadline(deadline) {
                    Ok((_, Ok(_))) => {}
                    Ok((region_id, Err(e))) => {
                        failed.push(region_id);
                        last_error = Some(e);
                    }
                    Err(_) => return Err(unavailable("no read index before the deadline")),
                }
            }
            if let Some(e) = last_error
                && Instant::now() >= deadline
            {
                return Err(unavailable(e));
            }
            if !failed.is_empty() {
                std::thread::sleep(PAUSE);
            }
            pending = failed;
        }
        Ok(())
    }

    fn execute(&self, command: Command) -> duet_storage::Result<Response> {
        self.execute_routed(&command, Instant::now() + RETRY_FOR)
    }
}
