//! A store: the regions one node hosts ([`Regions`]), driven by one thread
//! that runs the Ready loop — it takes proposals and Raft messages from a
//! channel, ticks every peer on a timer, and handles every peer's Ready in
//! turn. Proposals that arrive together land in one Ready and share one log
//! sync (group commit). Callers propose to a region and wait until the entry
//! applied; routing commands to regions is the cluster side's job
//! (`ClusterStore`, in the cluster module, which is built on this one).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{self, Receiver, RecvTimeoutError, Sender};
use duet_storage::engine::Engine;
use duet_storage::tso::TimestampSource;
use duet_storage::txn::commands::{Command, Response};
use raft::prelude::Message;
use tracing::warn;

use crate::error::{Error, Result};
use crate::peer::{ApplyObserver, Callback, PeerConfig, ReadCallback};
use crate::region::{CommitMerge, MergeState, Region, RegionEpoch};
use crate::regions::{RegionView, Regions};
use crate::transport::{RegionTag, Transport};

pub use crate::regions::FIRST_REGION;

/// A new channel for a store's messages.
pub fn inbox() -> (Sender<StoreMsg>, Receiver<StoreMsg>) {
    channel::unbounded()
}

/// What a store's thread is asked to do.
pub enum StoreMsg {
    Propose {
        region_id: u64,
        command: Command,
        callback: Callback,
    },
    Raft {
        tag: RegionTag,
        message: Box<Message>,
    },
    /// A member of the region says this store's replica was removed.
    Tombstone {
        tag: RegionTag,
    },
    /// Another node holds `answer` at the start key of this store's
    /// leaderless replica of `region_id`: destroy the replica if that
    /// proves it gone (see [`crate::stale`]).
    Stale {
        region_id: u64,
        answer: Box<Region>,
    },
    Campaign {
        region_id: u64,
    },
    /// Hand the region's leadership to its most caught-up other voter.
    StepAside {
        region_id: u64,
    },
    /// Hand the region's leadership to voter `to`.
    TransferLeader {
        region_id: u64,
        to: u64,
    },
    ChangeMembership {
        region_id: u64,
        change: raft::prelude::ConfChangeV2,
        reply: Sender<Result<()>>,
    },
    ReadIndex {
        region_id: u64,
        /// The read's timestamp (0: none; see [`crate::peer`]'s `one_pc`).
        ts: u64,
        callback: ReadCallback,
    },
    Status {
        reply: Sender<Vec<RegionStatus>>,
    },
    /// A step of a merge, proposed by `region_id`'s leader.
    Merge {
        region_id: u64,
        step: MergeStep,
        callback: Callback,
    },
    /// Split `region_id` at `split_key`; the right part becomes `new_region_id`.
    Split {
        region_id: u64,
        split_key: Vec<u8>,
        new_region_id: u64,
        callback: Callback,
    },
    /// A timestamp taken for leaders that asked for one (see
    /// [`Regions::take_ts_requests`]); `None` if none could be.
    TsTaken {
        requests: Vec<(u64, u64)>,
        ts: Option<u64>,
    },
    Stop,
}

/// A step of a merge (see [`crate::peer`]'s merge module), for the region
/// it is proposed in.
#[derive(Debug, Clone)]
pub enum MergeStep {
    /// Freeze this region (the source) to merge into this target.
    Prepare(Region),
    /// Absorb the source this request names (this region is the target).
    Commit(CommitMerge),
    /// Undo this region's prepared merge: its target is at this epoch now.
    Rollback(RegionEpoch),
}

/// One region as this store sees it (for `/status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionStatus {
    pub region_id: u64,
    pub peer_id: u64,
    pub leader: Option<u64>,
    pub is_leader: bool,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    /// How far this store's observers (the columnar learner) have applied.
    pub observer_applied: Option<u64>,
    /// MVCC versions applied since the store started (see
    /// [`crate::peer::Peer::written_keys`]).
    pub written_keys: u64,
    /// Bytes of data applied since the store started (see
    /// [`crate::peer::Peer::written_bytes`]).
    pub written_bytes: u64,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    /// On the leader: the peers whose log is behind its own.
    pub pending: Vec<u64>,
    /// The region's epoch: (conf_ver, version).
    pub epoch: (u64, u64),
    /// The merge this region is in as a source: its target and prepare.
    pub merging: Option<MergeState>,
    /// On a merging source's leader, once every peer has the prepare: the
    /// request for the target's leader.
    pub commit_merge: Option<CommitMerge>,
    /// The key range `[start_key, end_key)`; empty `end_key` = no bound.
    pub start_key: Vec<u8>,
    pub end_key: Vec<u8>,
}

/// The bit that marks a columnar learner store's id: node `n`'s learner
/// store is `n | LEARNER_STORE_BIT`, which is also its peer id in every
/// region. Both stores of a node share its Raft address.
pub const LEARNER_STORE_BIT: u64 = 1 << 62;

/// The id of node `node_id`'s learner store.
pub fn learner_store_id(node_id: u64) -> u64 {
    node_id | LEARNER_STORE_BIT
}

/// The node hosting store `store_id` (a voter's store is its node's id).
pub fn node_of(store_id: u64) -> u64 {
    store_id & !LEARNER_STORE_BIT
}

/// How a store runs.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// This node's id; also its peer id in every region.
    pub store_id: u64,
    /// Founding voters (node ids) of the first region; regions split from it
    /// have the same peers.
    pub voters: Vec<u64>,
    /// Founding learners of the first region.
    pub learners: Vec<u64>,
    /// Wall time of one Raft tick.
    pub tick_interval: Duration,
    pub peer: PeerConfig,
    /// How long `execute` waits for a proposal to apply.
    pub proposal_timeout: Duration,
}

impl StoreConfig {
    /// A single voter: the embedded default.
    pub fn single(store_id: u64) -> Self {
        StoreConfig {
            store_id,
            voters: vec![store_id],
            learners: vec![],
            tick_interval: Duration::from_millis(100),
            peer: PeerConfig::default(),
            proposal_timeout: Duration::from_secs(10),
        }
    }

    /// Node `node_id`'s learner store: its peers are learners that keep no
    /// data (see [`PeerConfig::stores_data`]), founded with `voters` and
    /// `learners` (empty for a store that joins later).
    pub fn learner(node_id: u64, voters: &[u64], learners: &[u64]) -> Self {
        let mut config = StoreConfig::single(learner_store_id(node_id));
        config.voters = voters.to_vec();
        config.learners = learners.to_vec();
        config.peer.stores_data = false;
        config
    }
}

/// A running store.
pub struct RaftStore<E: Engine> {
    engine: Arc<E>,
    sender: Sender<StoreMsg>,
    thread: Mutex<Option<JoinHandle<()>>>,
    proposal_timeout: Duration,
    view: RegionView,
    store_id: u64,
    /// Set while the node is short of disk space (see
    /// [`RaftStore::set_disk_full`]).
    disk_full: Arc<AtomicBool>,
    /// See [`RaftStore::set_ts_source`].
    ts_source: Arc<OnceLock<Arc<dyn TimestampSource>>>,
}

impl<E: Engine> RaftStore<E> {
    /// Opens the store's regions from `engine` and starts its thread, which
    /// reads `inbox` (see [`inbox`]; transports deliver into its sender).
    /// `observers` see every entry applied by this store's peers.
    pub fn start(
        engine: Arc<E>,
        config: &StoreConfig,
        transport: Arc<dyn Transport>,
        observers: Vec<Arc<dyn ApplyObserver>>,
        inbox: (Sender<StoreMsg>, Receiver<StoreMsg>),
    ) -> Result<Self> {
        // A lease two ticks shorter than the shortest election timeout.
        let mut peer_config = config.peer.clone();
        peer_config.lease = config.tick_interval
            * u32::try_from(config.peer.election_tick.saturating_sub(2)).unwrap_or(0);
        let mut regions = Regions::open(
            Arc::clone(&engine),
            config.store_id,
            &config.voters,
            &config.learners,
            peer_config,
            observers,
        )?;
        let single = config.voters == [config.store_id];
        if single {
            for p in regions.peers_mut() {
                p.campaign()?;
            }
        }
        let view = regions.view();
        let (tx, rx) = inbox;
        let tick = config.tick_interval;
        let disk_full = Arc::new(AtomicBool::new(false));
        let full = Arc::clone(&disk_full);
        let ts_source: Arc<OnceLock<Arc<dyn TimestampSource>>> = Arc::default();
        let clock = Clock {
            source: Arc::clone(&ts_source),
            inbox: tx.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("raft-store-{}", config.store_id))
            .spawn(move || {
                // A failed persist or apply must stop the node, never leave it
                // serving with a dead Raft thread (see the apply contract).
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run(regions, rx, transport, tick, &full, &clock)
                }));
                if outcome.is_err() {
                    tracing::error!("raft store thread failed: stopping the node");
                    std::process::abort();
                }
            })
            .map_err(|e| Error::Corruption {
                what: "store thread",
                detail: e.to_string(),
            })?;
        Ok(RaftStore {
            engine,
            sender: tx,
            thread: Mutex::new(Some(thread)),
            proposal_timeout: config.proposal_timeout,
            view,
            store_id: config.store_id,
            disk_full,
            ts_source,
        })
    }

    /// This store's id (its peer id in every region).
    pub fn store_id(&self) -> u64 {
        self.store_id
    }

    pub fn engine(&self) -> &Arc<E> {
        &self.engine
    }

    /// The regions as this store has applied them (for routing).
    pub fn view(&self) -> &RegionView {
        &self.view
    }

    /// Splits `region_id` at `split_key` (on its leader) and waits until the
    /// split applied here; the right part becomes region `new_region_id`,
    /// which must be unique in the cluster.
    pub fn split(&self, region_id: u64, split_key: &[u8], new_region_id: u64) -> Result<()> {
        let (tx, rx) = channel::bounded(1);
        let callback: Callback = Box::new(move |r| {
            let _ = tx.send(r);
        });
        self.sender
            .send(StoreMsg::Split {
                region_id,
                split_key: split_key.to_vec(),
                new_region_id,
                callback,
            })
            .map_err(|_| Error::RegionNotFound(region_id))?;
        match rx.recv_timeout(self.proposal_timeout) {
            Ok(r) => r.map(|_| ()),
            Err(_) => Err(Error::ProposalDropped { region_id }),
        }
    }

    /// Proposes a merge step in `region_id` (on its leader) and waits until
    /// it applied here.
    pub fn merge(&self, region_id: u64, step: MergeStep) -> Result<()> {
        let (tx, rx) = channel::bounded(1);
        let callback: Callback = Box::new(move |r| {
            let _ = tx.send(r);
        });
        self.sender
            .send(StoreMsg::Merge {
                region_id,
                step,
                callback,
            })
            .map_err(|_| Error::RegionNotFound(region_id))?;
        match rx.recv_timeout(self.proposal_timeout) {
            Ok(r) => r.map(|_| ()),
            Err(_) => Err(Error::ProposalDropped { region_id }),
        }
    }

    /// Marks the node short of disk space, or no longer. While it is, this
    /// store refuses commands that bring new data ([`Command::adds_data`])
    /// with `DiskFull`, and its followers drop the leaders' appends and
    /// snapshots (they catch up once space is back); commits, rollbacks,
    /// GC, timestamps and membership still run on the space held in
    /// reserve.
    pub fn set_disk_full(&self, full: bool) {
        self.disk_full.store(full, Ordering::SeqCst);
    }

    pub fn disk_full(&self) -> bool {
        self.disk_full.load(Ordering::SeqCst)
    }

    /// Proposes `command` to `region_id` and waits until it applied.
    pub fn propose(&self, region_id: u64, command: Command) -> Result<Response> {
        // Only a leader here refuses: elsewhere the peer answers NotLeader
        // and the caller goes to a leader that has room.
        let leads = (self.view.leadership(region_id)).is_some_and(|l| l.is_leader);
        if command.adds_data() && self.disk_full() && leads {
            let node_id = node_of(self.store_id);
            return Err(Error::Storage(duet_storage::Error::DiskFull { node_id }));
        }
        let (tx, rx) = channel::bounded(1);
        let callback: Callback = Box::new(move |r| {
            let _ = tx.send(r);
        });
        self.sender
            .send(StoreMsg::Propose {
                region_id,
                command,
                callback,
            })
            .map_err(|_| Error::RegionNotFound(region_id))?;
        match rx.recv_timeout(self.proposal_timeout) {
            Ok(r) => r,
            Err(_) => Err(Error::ProposalDropped { region_id }),
        }
    }

    /// ReadIndex through this store's peer: returns once the peer has applied
    /// everything committed when the call was made.
    pub fn read_index(&self, region_id: u64) -> Result<u64> {
        self.read_index_at(region_id, 0)
    }

    /// [`read_index`](Self::read_index) for a read at timestamp `ts`, which
    /// also sees every one-phase commit at or below `ts`.
    pub fn read_index_at(&self, region_id: u64, ts: u64) -> Result<u64> {
        let (tx, rx) = channel::bounded(1);
        self.read_index_async_at(
            region_id,
            ts,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv_timeout(self.proposal_timeout)
            .unwrap_or(Err(Error::ProposalDropped { region_id }))
    }

    /// Starts a ReadIndex through this store's peer; `callback` hears once
    /// the peer applied that far (or why it cannot).
    pub fn read_index_async(&self, region_id: u64, callback: ReadCallback) {
        self.read_index_async_at(region_id, 0, callback);
    }

    /// [`read_index_async`](Self::read_index_async) for a read at `ts`.
    pub fn read_index_async_at(&self, region_id: u64, ts: u64, callback: ReadCallback) {
        if let Err(channel::SendError(StoreMsg::ReadIndex { callback, .. })) =
            self.sender.send(StoreMsg::ReadIndex {
                region_id,
                ts,
                callback,
            })
        {
            callback(Err(Error::RegionNotFound(region_id)));
        }
    }

    /// Whether this store may serve a linearizable read of `region_id` from
    /// its engine right now, with no ReadIndex round (see [`crate::peer::Lease`]).
    pub fn local_read(&self, region_id: u64) -> bool {
        self.view.local_read(region_id, Instant::now())
    }

    /// [`local_read`](Self::local_read) for a read at timestamp `ts` (see
    /// [`RegionView::local_read_at`]).
    pub fn local_read_at(&self, region_id: u64, ts: u64) -> bool {
        self.view.local_read_at(region_id, ts, Instant::now())
    }

    /// Where this store's leaders take the timestamp that lets them commit
    /// in one phase after an election (without one they never do).
    pub fn set_ts_source(&self, source: Arc<dyn TimestampSource>) {
        let _ = self.ts_source.set(source);
    }

    /// Proposes a membership change on the leader: each `(kind, node)` adds a
    /// voter, adds a learner (or demotes a voter), or removes a peer. Several
    /// changes at once go through joint consensus and leave it automatically.
    /// `addrs` are the Raft addresses of joining stores. Returns once
    /// proposed; raft-rs drops a change proposed while another is pending,
    /// so callers check the membership they wanted (see
    /// `ClusterStore::change_membership`).
    pub fn change_membership(
        &self,
        region_id: u64,
        changes: &[(raft::prelude::ConfChangeType, u64)],
        addrs: &[crate::region::PeerAddress],
    ) -> Result<()> {
        let mut change = crate::peer::conf_change(changes);
        if !addrs.is_empty() {
            let book = crate::region::PeerAddresses {
                peers: addrs.to_vec(),
            };
            change.context = prost::Message::encode_to_vec(&book).into();
        }
        self.propose_conf_change(region_id, change)
    }

    /// Proposes an encoded membership change (one forwarded by another store).
    pub fn propose_conf_change(
        &self,
        region_id: u64,
        change: raft::prelude::ConfChangeV2,
    ) -> Result<()> {
        let (tx, rx) = channel::bounded(1);
        self.sender
            .send(StoreMsg::ChangeMembership {
                region_id,
                change,
                reply: tx,
            })
            .map_err(|_| Error::RegionNotFound(region_id))?;
        rx.recv_timeout(self.proposal_timeout)
            .unwrap_or(Err(Error::ProposalDropped { region_id }))
    }

    /// Tells the store that another node holds `answer` at the start key of
    /// its replica of `region_id`; the store destroys the replica if that
    /// proves it was removed or merged away (see [`crate::stale`]).
    pub fn check_stale(&self, region_id: u64, answer: Region) {
        let answer = Box::new(answer);
        let _ = self.sender.send(StoreMsg::Stale { region_id, answer });
    }

    /// Asks this store's peer of `region_id` to campaign.
    pub fn campaign(&self, region_id: u64) {
        let _ = self.sender.send(StoreMsg::Campaign { region_id });
    }

    /// Hands every region this store leads (that has another voter) to
    /// another voter, and waits until it leads none of them or `timeout`
    /// passed; returns how many it still leads. A node about to stop does
    /// this so that its regions have a leader at once, instead of after an
    /// election timeout and a lease (a rolling restart's clients see
    /// retries, not errors).
    pub fn drain_leaders(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let led: Vec<u64> = (self.status().into_iter())
                .filter(|r| r.is_leader && r.voters.len() > 1)
                .map(|r| r.region_id)
                .collect();
            if led.is_empty() || Instant::now() >= deadline {
                return led.len();
            }
            for region_id in led {
                let _ = self.sender.send(StoreMsg::StepAside { region_id });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Asks this store's peer of `region_id`, if it leads, to hand
    /// leadership to its most caught-up other voter.
    pub fn step_aside(&self, region_id: u64) {
        let _ = self.sender.send(StoreMsg::StepAside { region_id });
    }

    /// Asks this store's peer of `region_id`, if it leads, to hand
    /// leadership to voter `to` (a placement step; the next heartbeat shows
    /// whether it moved).
    pub fn transfer_leader(&self, region_id: u64, to: u64) {
        let _ = self.sender.send(StoreMsg::TransferLeader { region_id, to });
    }

    /// The regions of this store.
    pub fn status(&self) -> Vec<RegionStatus> {
        let (tx, rx) = channel::bounded(1);
        if self.sender.send(StoreMsg::Status { reply: tx }).is_err() {
            return Vec::new();
        }
        rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default()
    }

    /// Stops the thread; proposals in flight are answered as dropped.
    pub fn stop(&self) {
        let _ = self.sender.send(StoreMsg::Stop);
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

impl<E: Engine> Drop for RaftStore<E> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where the store thread takes timestamps for its leaders, off the
/// thread: the answer comes back through the inbox.
struct Clock {
    source: Arc<OnceLock<Arc<dyn TimestampSource>>>,
    inbox: Sender<StoreMsg>,
}

impl Clock {
    fn take_for(&self, requests: Vec<(u64, u64)>) {
        let Some(source) = self.source.get().cloned() else {
            return;
        };
        let inbox = self.inbox.clone();
        let spawned = std::thread::Builder::new()
            .name("raft-store-ts".into())
            .spawn(move || {
                let ts = source.get_ts().ok();
                let _ = inbox.send(StoreMsg::TsTaken { requests, ts });
            });
        if let Err(e) = spawned {
            warn!(error = %e, "no thread to take a timestamp");
        }
    }
}

/// The Ready loop of one store.
fn run<E: Engine>(
    mut peers: Regions<E>,
    rx: Receiver<StoreMsg>,
    transport: Arc<dyn Transport>,
    tick: Duration,
    disk_full: &AtomicBool,
    clock: &Clock,
) {
    let mut next_tick = Instant::now() + tick;
    loop {
        let until = peers.acks_due().map_or(next_tick, |due| due.min(next_tick));
        let wait = until.saturating_duration_since(Instant::now());
        let first = match rx.recv_timeout(wait) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        // Take everything already queued: one Ready, one sync for all of it.
        for msg in first
            .into_iter()
            .chain(std::iter::from_fn(|| rx.try_recv().ok()).take(4096))
        {
            if is_refused_append(&msg, disk_full) {
                continue;
            }
            if !handle(&mut peers, msg) {
                return;
            }
        }
        let now = Instant::now();
        if now >= next_tick {
            peers.tick(now);
            // A thread held up (paused, starved) does not make up the
            // ticks it missed in a burst: a follower would count an
            // election timeout in no time and vote while the leader's
            // lease, measured in real time, still runs.
            next_tick = (next_tick + tick).max(now);
        }
        for (tag, to) in peers.take_tombstones() {
            transport.send_tombstone(tag, to);
        }
        let mut send = |tag, msgs| transport.send(tag, msgs);
        if let Err(e) = peers.handle_ready_with(&mut send) {
            panic!("cannot persist raft state: {e}");
        }
        if let Err(e) = peers.flush_acks(Instant::now(), false, &mut send) {
            panic!("cannot persist raft state: {e}");
        }
        let requests = peers.take_ts_requests();
        if !requests.is_empty() {
            clock.take_for(requests);
        }
    }
}

/// Whether `msg` brings log entries or a snapshot to a store whose node is
/// short of disk space: such a follower falls behind instead of filling
/// the disk, and its leader probes it again later.
fn is_refused_append(msg: &StoreMsg, disk_full: &AtomicBool) -> bool {
    use raft::prelude::MessageType;
    let StoreMsg::Raft { message, .. } = msg else {
        return false;
    };
    let brings_data = match message.get_msg_type() {
        // An append without entries only moves the commit index.
        MessageType::MsgAppend => !message.entries.is_empty(),
        MessageType::MsgSnapshot => true,
        _ => false,
    };
    brings_data && disk_full.load(Ordering::SeqCst)
}

/// Handles one message; `false` to stop.
fn handle<E: Engine>(peers: &mut Regions<E>, msg: StoreMsg) -> bool {
    match msg {
        StoreMsg::Propose {
            region_id,
            command,
            callback,
        } => match peers.get_mut(region_id) {
            Some(p) => p.propose(&command, callback),
            None => callback(Err(Error::RegionNotFound(region_id))),
        },
        StoreMsg::Raft { tag, message } => {
            if let Err(e) = peers.step(tag, *message) {
                warn!(region_id = tag.region_id, error = %e, "raft message refused");
            }
        }
        StoreMsg::Tombstone { tag } => {
            if let Err(e) = peers.tombstone(tag) {
                panic!("cannot remove a replica: {e}");
            }
        }
        StoreMsg::Stale { region_id, answer } => {
            if let Err(e) = peers.destroy_if_stale(region_id, &answer) {
                panic!("cannot remove a replica: {e}");
            }
        }
        StoreMsg::Merge {
            region_id,
            step,
            callback,
        } => match (peers.get_mut(region_id), step) {
            (Some(p), MergeStep::Prepare(target)) => p.propose_prepare_merge(&target, callback),
            (Some(p), MergeStep::Commit(request)) => p.propose_commit_merge(&request, callback),
            (Some(p), MergeStep::Rollback(now)) => p.propose_rollback_merge(now, callback),
            (None, _) => callback(Err(Error::RegionNotFound(region_id))),
        },
        StoreMsg::Split {
            region_id,
            split_key,
            new_region_id,
            callback,
        } => match peers.get_mut(region_id) {
            Some(p) => p.propose_split(&split_key, new_region_id, callback),
            None => callback(Err(Error::RegionNotFound(region_id))),
        },
        StoreMsg::ReadIndex {
            region_id,
            ts,
            callback,
        } => match peers.get_mut(region_id) {
            Some(p) => p.read_index_at(callback, Instant::now(), ts),
            None => callback(Err(Error::RegionNotFound(region_id))),
        },
        StoreMsg::TsTaken { requests, ts } => peers.ts_taken(&requests, ts),
        StoreMsg::ChangeMembership {
            region_id,
            change,
            reply,
        } => {
            let r = match peers.get_mut(region_id) {
                Some(p) => p.propose_conf_change(change),
                None => Err(Error::RegionNotFound(region_id)),
            };
            let _ = reply.send(r);
        }
        StoreMsg::Campaign { region_id } => {
            if let Some(p) = peers.get_mut(region_id) {
                let _ = p.campaign();
            }
        }
        StoreMsg::StepAside { region_id } => {
            if let Some(p) = peers.get_mut(region_id)
                && let Some(to) = p.transfer_target()
            {
                p.transfer_leader(to);
                // No read under the lease from here on, before the
                // transferee hears it may campaign.
                peers.publish_leadership(region_id);
            }
        }
        StoreMsg::TransferLeader { region_id, to } => {
            if let Some(p) = peers.get_mut(region_id)
                && p.is_leader()
                && to != p.id()
            {
                p.transfer_leader(to);
                peers.publish_leadership(region_id);
            }
        }
        StoreMsg::Status { reply } => {
            let mut all: Vec<RegionStatus> = peers
                .peers()
                .filter(|p| p.region().is_initialized())
                .map(|p| RegionStatus {
                    region_id: p.region_id(),
                    peer_id: p.id(),
                    leader: p.leader(),
                    is_leader: p.is_leader(),
                    term: p.term(),
                    commit_index: p.commit_index(),
                    applied_index: p.applied_index(),
                    observer_applied: p.observer_applied(),
                    written_keys: p.written_keys(),
                    written_bytes: p.written_bytes(),
                    voters: p.membership().0,
                    learners: p.membership().1,
                    pending: p.pending_peers(),
                    epoch: (p.region().epoch().conf_ver, p.region().epoch().version),
                    merging: p.merging().cloned(),
                    commit_merge: p.commit_merge_request(),
                    start_key: p.region().start_key.clone(),
                    end_key: p.region().end_key.clone(),
                })
                .collect();
            all.sort_by_key(|s| s.region_id);
            let _ = reply.send(all);
        }
        StoreMsg::Stop => return false,
    }
    true
}
