//! A node's view of the cluster for transactions: [`ClusterStore`] executes a
//! command on whichever store leads the region — locally, or by forwarding
//! it to the leader and waiting until this node applies the same entry (apply
//! is deterministic, so the local outcome is the leader's) — and reads
//! through ReadIndex; [`ClusterTso`] hands out timestamps from the region
//! leader only, with a high-water mark replicated through Raft.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use duet_storage::engine::{Cf, Engine};
use duet_storage::mvcc::{TS_LOGICAL_BITS, compose_ts};
use duet_storage::tso::{LIMIT_KEY, TimestampSource, wall_clock_ms};
use duet_storage::txn::TxnStore;
use duet_storage::txn::commands::{Command, Response, TsoLimit};
use duet_storage::txn::read::{Answer, Read, serve};

use protobuf::Message as _;
use raft::prelude::{ConfChangeType, ConfChangeV2};

use crate::error::Error;
use crate::region::{PeerAddress, PeerAddresses};
use crate::store::{FIRST_REGION, RaftStore};
use crate::transport::tcp::{Reply, Request, RequestHandler, TcpTransport};

/// How long one operation keeps retrying through leader changes.
const RETRY_FOR: Duration = Duration::from_secs(10);
const PAUSE: Duration = Duration::from_millis(30);

fn unavailable(e: impl std::fmt::Display) -> duet_storage::Error {
    duet_storage::Error::Unavailable(e.to_string())
}

/// Transaction commands for one node of a cluster (or a single node).
pub struct ClusterStore<E: Engine> {
    node_id: u64,
    store: Arc<RaftStore<E>>,
    transport: Option<Arc<TcpTransport>>,
}

/// The outcome of one attempt in one region: `Err(None)` when nothing better
/// than "try again" is known.
type Attempt = Result<Response, Option<Error>>;

impl<E: Engine> ClusterStore<E> {
    pub fn new(
        node_id: u64,
        store: Arc<RaftStore<E>>,
        transport: Option<Arc<TcpTransport>>,
    ) -> Self {
        ClusterStore {
            node_id,
            store,
            transport,
        }
    }

    /// Forwards `command` to store `leader`; the outcome is read from this
    /// node's own apply of the same entry.
    fn forward(&self, leader: u64, region_id: u64, command: &Command) -> Attempt {
        let Some(transport) = &self.transport else {
            return Err(None);
        };
        let request = Request {
            region_id,
            command: command.to_bytes(),
            ..Request::default()
        };
        let reply = transport
            .call(leader, request, Duration::from_secs(3))
            .map_err(|_| None)?;
        if reply.epoch_not_match {
            let current = (self.store.view().regions().into_iter())
                .find(|r| r.id == region_id)
                .unwrap_or_default();
            return Err(Some(Error::EpochNotMatch {
                region_id,
                current: Box::new(current),
            }));
        }
        if reply.index == 0 {
            return Err(None);
        }
        self.store
            .watch(region_id, reply.index, reply.term)
            .map_err(Some)
    }

    /// The parts of `command`, one per region of the local view that it
    /// touches; `None` while the view does not tile the key space (a split
    /// is being applied here, or the node has not learned its regions):
    /// routing then would drop the keys of the missing range.
    fn route(&self, command: &Command) -> Option<Vec<(u64, Command)>> {
        let regions = self.store.view().regions();
        if !tiles(&regions) {
            return None;
        }
        Some(
            regions
                .into_iter()
                .filter_map(|r| Some((r.id, command.restrict(&r.start_key, &r.end_key)?)))
                .collect(),
        )
    }

    /// Executes every part of `command` in its region, in parallel; the
    /// first error (in key order) wins.
    fn execute_routed(
        &self,
        command: &Command,
        deadline: Instant,
    ) -> duet_storage::Result<Response> {
        let parts = loop {
            match self.route(command) {
                Some(parts) => break parts,
                None if Instant::now() >= deadline => {
                    return Err(unavailable("this node's regions do not cover the keys"));
                }
                None => std::thread::sleep(PAUSE),
            }
        };
        let outcomes: Vec<duet_storage::Result<Response>> = match parts.as_slice() {
            [] => return Err(unavailable("no region holds the command's keys")),
            [(region_id, part)] => vec![self.execute_in(*region_id, part, deadline)],
            _ => std::thread::scope(|scope| {
                let handles: Vec<_> = parts
                    .iter()
                    .map(|(region_id, part)| {
                        scope.spawn(move || self.execute_in(*region_id, part, deadline))
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

    /// Executes `part` in `region_id`, on its leader, retrying through
    /// leader changes; a region that changed under the request (a split)
    /// sends the part back to routing.
    fn execute_in(
        &self,
        region_id: u64,
        part: &Command,
        deadline: Instant,
    ) -> duet_storage::Result<Response> {
        loop {
            let outcome = match self.store.propose(region_id, part.clone()) {
                Err(Error::NotLeader {
                    leader: Some(l), ..
                }) if l != self.node_id => self.forward(l, region_id, part),
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

    /// Splits the region holding `split_key` there; the new region takes
    /// `new_region_id` (unique in the cluster: take it from the timestamp
    /// oracle). Forwarding is not needed: it runs on the region's leader or
    /// reports `NotLeader`.
    pub fn split(&self, split_key: &[u8], new_region_id: u64) -> Result<(), Error> {
        let region = self
            .store
            .view()
            .locate(split_key)
            .ok_or(Error::RegionNotFound(0))?;
        if region.start_key == split_key {
            return Ok(());
        }
        self.store.split(region.id, split_key, new_region_id)
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
        let deadline = Instant::now() + RETRY_FOR * 2;
        let mut change = crate::peer::conf_change(changes);
        if !addrs.is_empty() {
            let book = PeerAddresses {
                peers: addrs.to_vec(),
            };
            change.context = prost::Message::encode_to_vec(&book).into();
        }
        for region in self.store.view().regions() {
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
            return false;
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
        let regions = loop {
            // A read of one key needs only its region (and no copy of the
            // others: this is the point read's path).
            let (regions, covered) = match read.single_key() {
                Some(key) => {
                    let found: Vec<_> = self.store.view().locate(key).into_iter().collect();
                    let covered = !found.is_empty();
                    (found, covered)
                }
                None => {
                    let all = self.store.view().regions();
                    let covered = tiles(&all);
                    (all, covered)
                }
            };
            if covered {
                break regions;
            }
            if Instant::now() >= deadline {
                return Err(unavailable("this node's regions do not cover the keys"));
            }
            std::thread::sleep(PAUSE);
        };
        let mut answer = Answer::default();
        for region in regions {
            if read.single_key().is_some() {
                // The located region holds the key: the read is its part.
                answer.append(self.read_in(&region, read, deadline)?);
                continue;
            }
            let Some(part) = read.restrict(&region.start_key, &region.end_key) else {
                continue;
            };
            let part = match read.remaining(&answer) {
                Some(0) => break,
                Some(n) => part.with_limit(n),
                None => part,
            };
            answer.append(self.read_in(&region, &part, deadline)?);
        }
        Ok(answer)
    }

    /// Answers `part` from this node's replica of `region` once it is at a
    /// linearizable point: at once under the leader's lease, else after a
    /// ReadIndex round. A region that changed under the read (a split) sends
    /// the part back to routing.
    fn read_in(
        &self,
        region: &crate::region::Region,
        part: &Read,
        deadline: Instant,
    ) -> duet_storage::Result<Answer> {
        loop {
            let ready = if self.store.local_read(region.id) {
                Ok(0)
            } else {
                self.store.read_index(region.id)
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
    fn catch_up(&self) -> duet_storage::Result<()> {
        let deadline = Instant::now() + RETRY_FOR;
        let mut pending: Vec<u64> = self
            .store
            .view()
            .regions()
            .iter()
            .map(|r| r.id)
            .filter(|id| !self.store.local_read(*id))
            .collect();
        while !pending.is_empty() {
            let (tx, rx) = crossbeam::channel::unbounded();
            for &region_id in &pending {
                let tx = tx.clone();
                self.store.read_index_async(
                    region_id,
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

struct TsoState {
    /// The term this node leads in, if it has served timestamps in it.
    term: u64,
    physical: u64,
    logical: u64,
    limit: u64,
}

/// Cluster timestamps: served by the region leader, forwarded otherwise.
pub struct ClusterTso<E: Engine> {
    store: Arc<RaftStore<E>>,
    transport: Option<Arc<TcpTransport>>,
    state: Mutex<TsoState>,
    window_ms: u64,
}

impl<E: Engine> ClusterTso<E> {
    pub fn new(store: Arc<RaftStore<E>>, transport: Option<Arc<TcpTransport>>) -> Self {
        let state = TsoState {
            term: 0,
            physical: 0,
            logical: 0,
            limit: 0,
        };
        ClusterTso {
            store,
            transport,
            state: Mutex::new(state),
            window_ms: 3000,
        }
    }

    /// Allocates on the leader of `term`.
    fn allocate(&self, n: u64, term: u64) -> Result<u64, Error> {
        if n == 0 || n >= 1 << TS_LOGICAL_BITS {
            return Err(Error::Corruption {
                what: "timestamp request",
                detail: format!("a batch of {n} timestamps"),
            });
        }
        let ts = self.reserve(n, term)?;
        // A deposed leader must not hand out timestamps below a new leader's:
        // confirm leadership with a quorum round after reserving. A voter that
        // acknowledges it has not yet voted for a successor, so every
        // timestamp a successor issues comes later. A leader under a lease
        // knows that without asking.
        if !self.store.local_read(FIRST_REGION) {
            self.store.read_index(FIRST_REGION)?;
        }
        match first_region(&self.store) {
            Some(r) if r.is_leader && r.term == term => Ok(ts),
            _ => Err(Error::NotLeader {
                region_id: FIRST_REGION,
                leader: None,
            }),
        }
    }

    /// Reserves `n` timestamps in the leader's window, extending it through
    /// the log when needed.
    fn reserve(&self, n: u64, term: u64) -> Result<u64, Error> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.term != term {
            // A new leadership: catch up on everything committed, then start
            // above the replicated limit, which bounds all earlier timestamps.
            self.store.read_index(FIRST_REGION)?;
            let limit = match self.store.engine().get(Cf::Raft, LIMIT_KEY)? {
                Some(b) => u64::from_be_bytes(b.as_slice().try_into().unwrap_or_default()),
                None => 0,
            };
            *st = TsoState {
                term,
                physical: wall_clock_ms().max(limit),
                logical: 0,
                limit,
            };
        }
        let now = wall_clock_ms();
        if now > st.physical {
            st.physical = now;
            st.logical = 0;
        }
        if st.logical + n >= 1 << TS_LOGICAL_BITS {
            st.physical += 1;
            st.logical = 0;
        }
        if st.physical >= st.limit {
            let limit = st.physical + self.window_ms;
            self.store
                .propose(FIRST_REGION, TsoLimit { limit }.into())?;
            st.limit = limit;
        }
        st.logical += n;
        Ok(compose_ts(st.physical, st.logical))
    }
}

impl<E: Engine> TimestampSource for ClusterTso<E> {
    fn get_batch(&self, n: u32) -> duet_storage::Result<u64> {
        let n = u64::from(n.max(1));
        let deadline = Instant::now() + RETRY_FOR;
        loop {
            let attempt = match first_region(&self.store) {
                Some(r) if r.is_leader => self.allocate(n, r.term).map_err(|e| e.to_string()),
                Some(r) => match (r.leader, &self.transport) {
                    (Some(l), Some(t)) => {
                        let request = Request {
                            region_id: FIRST_REGION,
                            ts_count: n as u32,
                            ..Request::default()
                        };
                        match t.call(l, request, Duration::from_secs(3)) {
                            Ok(reply) if reply.ts > 0 => Ok(reply.ts),
                            Ok(reply) => Err(reply.error),
                            Err(e) => Err(e),
                        }
                    }
                    _ => Err("no leader".into()),
                },
                None => Err("no region".into()),
            };
            match attempt {
                Ok(ts) => return Ok(ts),
                Err(e) if Instant::now() >= deadline => return Err(duet_storage::Error::Tso(e)),
                Err(_) => std::thread::sleep(PAUSE),
            }
        }
    }
}

/// Answers other stores: proposes forwarded commands (reporting where they
/// went) and serves timestamps, when this node leads.
pub struct Handler<E: Engine> {
    pub store: Arc<RaftStore<E>>,
    pub tso: Arc<ClusterTso<E>>,
}

impl<E: Engine> RequestHandler for Handler<E> {
    fn handle(&self, _from: u64, request: Request) -> Reply {
        let mut reply = Reply {
            id: request.id,
            ..Default::default()
        };
        if !request.conf_change.is_empty() {
            let proposed = ConfChangeV2::parse_from_bytes(&request.conf_change)
                .map_err(|e| Error::Corruption {
                    what: "forwarded membership change",
                    detail: e.to_string(),
                })
                .and_then(|cc| self.store.propose_conf_change(request.region_id, cc));
            match proposed {
                Ok(()) => {}
                Err(Error::NotLeader { leader, .. }) => {
                    reply.leader = leader.unwrap_or(0);
                    reply.error = "not leader".into();
                }
                Err(e) => reply.error = e.to_string(),
            }
            return reply;
        }
        if request.command.is_empty() {
            // The oracle is served by the first region's leader.
            let region = first_region(&self.store);
            let Some(region) = region.clone().filter(|r| r.is_leader) else {
                reply.leader = region.and_then(|r| r.leader).unwrap_or(0);
                reply.error = "not leader".into();
                return reply;
            };
            match self
                .tso
                .allocate(u64::from(request.ts_count.max(1)), region.term)
            {
                Ok(ts) => reply.ts = ts,
                Err(e) => reply.error = e.to_string(),
            }
            return reply;
        }
        let command = match Command::from_bytes(&request.command) {
            Ok(c) => c,
            Err(e) => {
                reply.error = e.to_string();
                return reply;
            }
        };
        match self.store.propose_at(request.region_id, command) {
            Ok((index, term)) => {
                reply.index = index;
                reply.term = term;
            }
            Err(Error::NotLeader { leader, .. }) => {
                reply.leader = leader.unwrap_or(0);
                reply.error = "not leader".into();
            }
            Err(e) => {
                reply.epoch_not_match = matches!(e, Error::EpochNotMatch { .. });
                reply.error = e.to_string();
            }
        }
        reply
    }
}

/// This store's view of the first region, which serves the oracle.
fn first_region<E: Engine>(store: &RaftStore<E>) -> Option<crate::store::RegionStatus> {
    store
        .status()
        .into_iter()
        .find(|r| r.region_id == FIRST_REGION)
}

/// Whether `regions` (ordered by start key) cover every key exactly once.
fn tiles(regions: &[crate::region::Region]) -> bool {
    let mut expected: &[u8] = b"";
    for (i, r) in regions.iter().enumerate() {
        if r.start_key.as_slice() != expected {
            return false;
        }
        if r.end_key.is_empty() {
            return i + 1 == regions.len();
        }
        expected = &r.end_key;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::region::Region;

    fn region(id: u64, start: &[u8], end: &[u8]) -> Region {
        Region {
            id,
            start_key: start.to_vec(),
            end_key: end.to_vec(),
            ..Region::default()
        }
    }

    #[test]
    fn a_view_mid_split_does_not_tile_the_key_space() {
        assert!(tiles(&[region(1, b"", b"")]));
        assert!(tiles(&[region(1, b"", b"m"), region(2, b"m", b"")]));
        // The parent narrowed, the new region not yet known here.
        assert!(!tiles(&[region(1, b"", b"m")]));
        // Both the old parent and the new region.
        assert!(!tiles(&[region(1, b"", b""), region(2, b"m", b"")]));
        assert!(!tiles(&[]));
    }
}
