//! One region peer: a raft-rs `RawNode` over [`PeerStorage`], driven from
//! outside — ticks, incoming messages and proposals go in; the Ready handling
//! persists the log, returns the messages to send, and applies committed
//! entries to the KV engine. No threads, no clock: tests drive it by hand.
//!
//! Proposal contract: the leader runs a transaction command once, against
//! its engine, and proposes the command's [`Effects`] — its writes and its
//! answer, conflicts included. To run it on a current state, the leader
//! waits until it has applied an entry of its own term, and until no entry
//! still unapplied touches the command's keys (latches, released when the
//! entry applies). Entries carry the region epoch they were computed under;
//! one that a split overtook is refused alike everywhere.
//!
//! Apply contract: every replica writes the same effects and gives the same
//! answer. An engine failure during apply panics; it is never reported to a
//! client after the entry committed.
//!
//! By concern: [`propose`], [`lock_wait`], [`one_pc`], [`read`], [`apply`],
//! and [`log`] (applied writes read back from the log).

mod apply;
mod lock_wait;
mod log;
mod merge;
mod one_pc;
mod propose;
mod read;

pub use log::{Logged, Replay, applied_writes, logged_writes};
pub use merge::HeldMerge;
pub use one_pc::raise_floor;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use duet_storage::engine::{Cf, Engine, Modify, WriteBatch, WriteOptions};
use duet_storage::txn::commands::{Command, Response};
use raft::prelude::{ConfChangeV2, ConfState, Entry, Message, MessageType};
use raft::{Config, RawNode, StateRole};

use crate::error::{Error, Result};
use crate::keys;
use crate::region::{MergeState, Region};
use crate::storage::PeerStorage;

/// The outcome of an applied command, as its proposer sees it.
pub type ApplyResult = std::result::Result<Response, Error>;

/// Called once with the outcome of a proposal.
pub type Callback = Box<dyn FnOnce(ApplyResult) + Send>;

/// Called once with a read index this peer has applied up to (or an error).
pub type ReadCallback = Box<dyn FnOnce(Result<u64>) + Send>;

struct PendingRead {
    /// Known once the leader confirmed it.
    index: Option<u64>,
    callback: ReadCallback,
    /// Ticks since the request was (re)sent without an answer.
    waited: usize,
    /// Times it was sent; past [`READ_MAX_SENDS`] the read fails.
    sent: usize,
    /// When a leader asked, and in which term: a confirmed answer proves
    /// it still led then, which starts a lease (see [`Lease`]).
    asked: Option<(Instant, u64)>,
    /// The timestamp the read is for (see [`one_pc`]).
    ts: u64,
}

/// Whether a peer may serve a linearizable read from its own engine, with
/// no ReadIndex round. Only a leader that applied an entry of its own term
/// may (it then applied everything any earlier leader acknowledged): for
/// good when it is the region's only voter — nobody else can be elected —
/// and otherwise until its lease ends. A lease starts when a ReadIndex
/// asked by the leader is confirmed by a quorum, and lasts less than an
/// election timeout: the voters that confirmed it refuse to elect anyone
/// else (check-quorum) until that long after they last heard from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    None,
    Until(Instant),
    Forever,
}

impl Lease {
    /// Whether a read at `now` may be served locally.
    pub fn covers(&self, now: Instant) -> bool {
        match self {
            Lease::None => false,
            Lease::Until(t) => now < *t,
            Lease::Forever => true,
        }
    }
}

/// What the learner API reports for each applied entry.
#[derive(Debug)]
pub enum Applied<'a> {
    /// A transaction command: whether it took effect, and the row store's
    /// writes it made (its MVCC effects: locks, values, commit records).
    Command {
        ok: bool,
        writes: &'a [duet_storage::engine::Modify],
    },
    /// A membership change.
    ConfChange(&'a ConfState),
    /// The region split: it keeps `left`, and `right` is a new region.
    Split { left: &'a Region, right: &'a Region },
    /// An entry with no command (e.g. a new leader's empty entry).
    Empty,
    /// A command logged before effects were: a peer that keeps no data
    /// cannot know what it wrote.
    Opaque,
}

/// What a peer installed from a snapshot: the region as of the
/// snapshot's index, and every data key of its range as a put — the range
/// holds nothing else afterwards.
#[derive(Debug)]
pub struct Installed<'a> {
    pub region: &'a Region,
    pub data: &'a [Modify],
}

/// Receives, in log order, every entry a peer applies (the columnar learner
/// subscribes here).
pub trait ApplyObserver: Send + Sync {
    fn on_applied(&self, region_id: u64, index: u64, term: u64, applied: &Applied<'_>);
    /// The peer replaced its copy of the region by a snapshot taken at
    /// `index`; `installed` is what the snapshot carried.
    fn on_snapshot(&self, _region_id: u64, _index: u64, _term: u64, _installed: &Installed<'_>) {}
    /// How far the subscriber has itself applied `region_id` (it may apply
    /// asynchronously behind the peer); `None` if it keeps up synchronously.
    fn progress(&self, _region_id: u64) -> Option<u64> {
        None
    }
    /// The index up to which the subscriber's own state of `region_id` is
    /// durable: it replays the log from there after a crash, so the peer
    /// keeps the entries after it (within [`LOG_RETAIN_FACTOR`] times the
    /// compaction thresholds). `None` if it needs none kept.
    fn durable(&self, _region_id: u64) -> Option<u64> {
        None
    }
    /// Whether the subscriber needs a fresh copy of `region`'s data (it
    /// has none of some of its keys): a follower peer then asks the leader
    /// for a snapshot, and takes no entries until it arrives (see
    /// [`Peer::tick`]).
    fn wants_snapshot(&self, _region: &Region) -> bool {
        false
    }
    /// The store removed its replica of `region` (it left the region, or
    /// the region merged away): the subscriber forgets what it kept of it —
    /// its data too unless `data_kept` (another replica here holds the
    /// range, such as a merge's target).
    fn on_destroyed(&self, _region: &Region, _data_kept: bool) {}
}

/// How far past its compaction thresholds a log is kept for a subscriber
/// that replays it (see [`ApplyObserver::durable`]); beyond that it is
/// compacted anyway and the subscriber rebuilds instead.
pub const LOG_RETAIN_FACTOR: u64 = 4;

/// Raft timing of a peer, in ticks.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    pub election_tick: usize,
    pub heartbeat_tick: usize,
    /// Compact the log once more applied entries than this are kept;
    /// followers behind the compacted log catch up by snapshot.
    pub log_gc_threshold: u64,
    /// Compact the log also once the applied entries kept since the last
    /// compaction hold more bytes than this (the log is cached in memory).
    pub log_gc_bytes: u64,
    /// How long a confirmed ReadIndex lets a leader read locally (see
    /// [`Lease`]); zero for never. Must stay below the wall time of
    /// `election_tick` ticks: the store sets it to two ticks less.
    pub lease: Duration,
    /// Whether applied entries write the region's data to the engine. A
    /// peer that keeps no data (a columnar learner's) applies only its Raft
    /// state there and hands every command's writes, and every snapshot's
    /// data, to its observers; it never leads, so never sends a snapshot.
    pub stores_data: bool,
}

impl Default for PeerConfig {
    fn default() -> Self {
        PeerConfig {
            election_tick: 10,
            heartbeat_tick: 3,
            log_gc_threshold: 4096,
            log_gc_bytes: 32 << 20,
            lease: Duration::ZERO,
            stores_data: true,
        }
    }
}

/// A membership change from `(kind, node)` pairs; several at once go
/// through a joint configuration, left automatically.
pub fn conf_change(changes: &[(raft::prelude::ConfChangeType, u64)]) -> ConfChangeV2 {
    let singles: Vec<raft::prelude::ConfChangeSingle> = changes
        .iter()
        .map(|(kind, node)| {
            let mut single = raft::prelude::ConfChangeSingle::default();
            single.set_change_type(*kind);
            single.node_id = *node;
            single
        })
        .collect();
    let mut cc = ConfChangeV2::default();
    cc.set_changes(singles.into());
    cc
}

/// A Ready taken by [`Peer::begin_ready`] whose log writes are not yet
/// durable.
pub struct PendingReady {
    ready: raft::Ready,
    /// Whether the batch holding its writes must be synced.
    pub must_sync: bool,
    /// Messages that may go out before the log is durable (a leader's
    /// appends: followers persist in parallel with it).
    pub early: Vec<Message>,
}

struct Proposal {
    index: u64,
    term: u64,
    callback: Callback,
}

/// A command the leader has not run yet (see the proposal contract).
struct Waiting {
    command: Command,
    callback: Callback,
    /// Woken from a lock wait: runs again once, and is not parked again.
    woken: bool,
}

/// A replica of one region.
pub struct Peer<E: Engine> {
    region_id: u64,
    id: u64,
    node: RawNode<PeerStorage>,
    engine: Arc<E>,
    proposals: VecDeque<Proposal>,
    /// Commands waiting for latches or for this leader's first apply.
    waiting: VecDeque<Waiting>,
    /// Commands parked on another transaction's lock (see [`lock_wait`]).
    parked: Vec<lock_wait::Parked>,
    /// Keys of the proposed, not yet applied commands: key → entry index.
    latches: HashMap<Vec<u8>, u64>,
    /// The term the latches were taken in.
    latch_term: u64,
    observers: Vec<Arc<dyn ApplyObserver>>,
    applied: u64,
    reads: HashMap<u64, PendingRead>,
    next_read: u64,
    log_gc_threshold: u64,
    log_gc_bytes: u64,
    /// Bytes of the entries applied since the log was last compacted.
    log_bytes: u64,
    region: Region,
    /// Regions this peer's splits created, for the store to open.
    splits: Vec<Region>,
    lease: Duration,
    /// Commit records applied since the peer opened: an upper bound on how
    /// many keys the region gained (the split check's trigger).
    written_keys: u64,
    /// Bytes of data (keys and values, `write` and `default`) applied since
    /// the peer opened: an upper bound on how much the region grew.
    written_bytes: u64,
    /// The latest confirmed leadership: when it was asked, in which term.
    lease_from: Option<(Instant, u64)>,
    /// The term in which a ReadIndex asked only to renew the lease is in flight.
    renewing: Option<u64>,
    /// See [`PeerConfig::stores_data`].
    stores_data: bool,
    /// The Raft state a peer that keeps no data applied, written once per
    /// apply.
    deferred: WriteBatch,
    /// The merge this region is in as a source (persisted), if any.
    merging: Option<MergeState>,
    /// On a leader: the index of the PrepareMerge it proposed, until it
    /// applies (no change of peers may slip in before it).
    preparing: Option<u64>,
    /// Committed entries held back from a CommitMerge on, until the store
    /// clears it (see [`merge`]).
    held: Vec<Entry>,
    /// The CommitMerge the store cleared to apply.
    merge_cleared: u64,
    /// Sources this peer absorbed, for the store to destroy.
    merged: Vec<u64>,
    /// One-phase commits and the reads they wait for (see [`one_pc`]).
    one_pc: one_pc::OnePc,
}

impl<E: Engine> Peer<E> {
    /// Opens peer `id` of `region_id`, restoring its log and applied index
    /// from `engine` (or bootstrapping with `voters`/`learners`). With no
    /// stored state and no members, the peer is uninitialized: it waits for
    /// its leader's snapshot (see [`crate::storage::INIT_INDEX`]).
    pub fn open(
        engine: Arc<E>,
        region_id: u64,
        id: u64,
        voters: &[u64],
        learners: &[u64],
        cfg: &PeerConfig,
        logger: &slog::Logger,
    ) -> Result<Self> {
        let region = match Region::load(engine.as_ref(), region_id)? {
            Some(r) => r,
            None if voters.is_empty() && learners.is_empty() => Region::uninitialized(region_id),
            None => {
                // Bootstrap at the same initial index as a split, so a store
                // added later gets the region by snapshot, never by replaying
                // a log that lacks the founding membership.
                let r = Region::bootstrap(region_id, voters, learners);
                let mut cs = ConfState::default();
                cs.set_voters(voters.to_vec());
                cs.set_learners(learners.to_vec());
                let mut batch = WriteBatch::new();
                crate::storage::write_initial_state(
                    &engine.snapshot(),
                    region_id,
                    &cs,
                    &mut batch,
                )?;
                r.save(&mut batch);
                engine.write(&batch, WriteOptions { sync: true })?;
                r
            }
        };
        let mut storage = PeerStorage::open(engine.as_ref(), region_id, voters, learners)?;
        let source = Arc::clone(&engine);
        let stores_data = cfg.stores_data;
        storage.set_snapshot_source(Box::new(move || {
            if !stores_data {
                return Err(Error::NoData { region_id });
            }
            crate::snapshot::build(source.as_ref(), region_id)
        }));
        let applied = match engine.get(Cf::Raft, &keys::apply_state_key(region_id))? {
            Some(b) => {
                u64::from_be_bytes(b.as_slice().try_into().map_err(|_| Error::Corruption {
                    what: "apply state",
                    detail: format!("{} bytes instead of 8", b.len()),
                })?)
            }
            None => 0,
        };
        let config = Config {
            id,
            election_tick: cfg.election_tick,
            heartbeat_tick: cfg.heartbeat_tick,
            // A fixed election timeout keeps hand-driven tests deterministic;
            // clusters spread elections by starting campaigns at different ticks.
            min_election_tick: cfg.election_tick,
            max_election_tick: cfg.election_tick + 1,
            applied,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            check_quorum: true,
            pre_vote: true,
            ..Config::default()
        };
        let node = RawNode::new(&config, storage, logger)?;
        let merging = Self::load_merging(engine.as_ref(), region_id)?;
        Ok(Peer {
            region_id,
            id,
            node,
            engine,
            proposals: VecDeque::new(),
            waiting: VecDeque::new(),
            parked: Vec::new(),
            latches: HashMap::new(),
            latch_term: 0,
            observers: Vec::new(),
            applied,
            reads: HashMap::new(),
            next_read: 0,
            log_gc_threshold: cfg.log_gc_threshold,
            log_gc_bytes: cfg.log_gc_bytes,
            log_bytes: 0,
            region,
            splits: Vec::new(),
            lease: cfg.lease,
            written_keys: 0,
            written_bytes: 0,
            lease_from: None,
            renewing: None,
            stores_data: cfg.stores_data,
            deferred: WriteBatch::new(),
            merging,
            preparing: None,
            held: Vec::new(),
            merge_cleared: 0,
            merged: Vec::new(),
            one_pc: one_pc::OnePc::default(),
        })
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn region_id(&self) -> u64 {
        self.region_id
    }

    /// Subscribes `observer` to every entry applied from now on.
    pub fn observe(&mut self, observer: Arc<dyn ApplyObserver>) {
        self.observers.push(observer);
    }

    pub fn is_leader(&self) -> bool {
        self.node.raft.state == StateRole::Leader
    }

    /// The leader this peer knows of.
    pub fn leader(&self) -> Option<u64> {
        let l = self.node.raft.leader_id;
        (l != raft::INVALID_ID).then_some(l)
    }

    pub fn term(&self) -> u64 {
        self.node.raft.term
    }

    pub fn commit_index(&self) -> u64 {
        self.node.raft.raft_log.committed
    }

    /// The index of the last entry in this peer's log.
    pub fn last_index(&self) -> u64 {
        self.node.raft.raft_log.last_index()
    }

    pub fn applied_index(&self) -> u64 {
        self.applied
    }

    /// Commit records (MVCC versions) this peer applied since it opened.
    pub fn written_keys(&self) -> u64 {
        self.written_keys
    }

    /// Bytes of data this peer applied since it opened.
    pub fn written_bytes(&self) -> u64 {
        self.written_bytes
    }

    /// The lowest progress any observer reports (the learner's applied index).
    pub fn observer_applied(&self) -> Option<u64> {
        self.observers
            .iter()
            .filter_map(|o| o.progress(self.region_id))
            .min()
    }

    /// The first index still in the log (after compaction).
    pub fn first_log_index(&self) -> u64 {
        self.node.store().first_index_now()
    }

    /// Changes when the log is compacted (see [`PeerConfig::log_gc_threshold`]).
    pub fn set_log_gc_bytes(&mut self, bytes: u64) {
        self.log_gc_bytes = bytes;
    }

    pub fn set_log_gc_threshold(&mut self, entries: u64) {
        self.log_gc_threshold = entries;
    }

    /// Advances the peer's logical clock one tick. A follower whose
    /// observers [want a snapshot](ApplyObserver::wants_snapshot) asks its
    /// leader for one (again each tick until the request is out).
    pub fn tick(&mut self) {
        self.node.tick();
        self.tick_one_pc();
        self.request_snapshot_if_wanted();
        self.pump();
        let (mut again, mut expired) = (Vec::new(), Vec::new());
        for (ctx, r) in self.reads.iter_mut().filter(|(_, r)| r.index.is_none()) {
            r.waited += 1;
            if r.waited >= READ_RETRY_TICKS {
                r.waited = 0;
                r.sent += 1;
                if r.sent > READ_MAX_SENDS {
                    expired.push(*ctx);
                } else {
                    again.push(*ctx);
                }
            }
        }
        for ctx in again {
            self.send_read_index(ctx);
        }
        for ctx in expired {
            if let Some(r) = self.reads.remove(&ctx) {
                if r.asked.is_some_and(|(_, term)| self.renewing == Some(term)) {
                    self.renewing = None;
                }
                (r.callback)(Err(Error::ProposalDropped {
                    region_id: self.region_id,
                }));
            }
        }
    }

    fn request_snapshot_if_wanted(&mut self) {
        let raft = &self.node.raft;
        let can_ask = raft.state != raft::StateRole::Leader
            && raft.leader_id != raft::INVALID_ID
            && raft.pending_request_snapshot == raft::INVALID_INDEX
            && raft.snap().is_none();
        if can_ask
            && self
                .observers
                .iter()
                .any(|o| o.wants_snapshot(&self.region))
        {
            // Refused while the last entry is of an older term: asked
            // again next tick.
            let _ = self.node.request_snapshot();
        }
    }

    /// Starts an election now.
    pub fn campaign(&mut self) -> Result<()> {
        Ok(self.node.campaign()?)
    }

    /// The voter other than this leader whose log matches furthest (the
    /// lowest id among equals): where leadership goes when it steps aside.
    pub fn transfer_target(&self) -> Option<u64> {
        if !self.is_leader() {
            return None;
        }
        let voters = self.node.raft.prs().conf().to_conf_state().voters;
        let prs = self.node.raft.prs();
        (voters.into_iter())
            .filter(|v| *v != self.id)
            .filter_map(|v| Some((prs.get(v)?.matched, std::cmp::Reverse(v))))
            .max()
            .map(|(_, std::cmp::Reverse(v))| v)
    }

    /// On the leader, the other peers (voters and learners) whose log is
    /// more than a few entries behind its own: a learner there is not
    /// promoted yet, nor leadership handed to it.
    pub fn pending_peers(&self) -> Vec<u64> {
        if !self.is_leader() {
            return Vec::new();
        }
        let last = self.node.raft.raft_log.last_index();
        let mut behind: Vec<u64> = (self.node.raft.prs().iter())
            .filter(|(id, pr)| **id != self.id && pr.matched + PENDING_ENTRIES < last)
            .map(|(id, _)| *id)
            .collect();
        behind.sort_unstable();
        behind
    }

    /// Starts handing leadership to voter `to` (raft-rs sends it the log it
    /// lacks, then tells it to campaign; proposals meanwhile are dropped).
    pub fn transfer_leader(&mut self, to: u64) {
        self.node.transfer_leader(to);
    }

    /// Feeds a message from another peer of this region.
    pub fn step(&mut self, msg: Message) -> Result<()> {
        if msg.get_msg_type() == MessageType::MsgReadIndex {
            if self.hold_read_index(&msg) {
                return Ok(());
            }
            return self.step_read_index(msg);
        }
        Ok(self.node.step(msg)?)
    }

    /// Answers another peer's ReadIndex, under the lease or through Raft.
    fn step_read_index(&mut self, msg: Message) -> Result<()> {
        if self.answer_under_lease(&msg, Instant::now()) {
            return Ok(());
        }
        Ok(self.node.step(msg)?)
    }

    /// The region's descriptor as of the last applied entry.
    pub fn region(&self) -> &Region {
        &self.region
    }

    /// Whether this peer applied a membership change that leaves it out of
    /// the region (neither voter, in the incoming or outgoing half of a
    /// joint configuration, nor learner): its store then destroys it.
    pub fn is_removed(&self) -> bool {
        self.region.is_initialized()
            && !self.region.peers.iter().any(|p| p.store_id == self.id)
            && !self.has_member(self.id)
    }

    /// Whether peer `id` is in the region's membership as this peer applied
    /// it: a voter (either half of a joint configuration) or a learner.
    pub fn has_member(&self, id: u64) -> bool {
        let cs = self.node.raft.prs().conf().to_conf_state();
        [
            &cs.voters,
            &cs.voters_outgoing,
            &cs.learners,
            &cs.learners_next,
        ]
        .iter()
        .any(|ids| ids.contains(&id))
    }

    /// Tells Raft a snapshot to `to` went out (see the store's Ready loop).
    pub fn report_snapshot_sent(&mut self, to: u64) {
        self.node.report_snapshot(to, raft::SnapshotStatus::Finish);
    }

    /// The current membership: (voters, learners), sorted.
    pub fn membership(&self) -> (Vec<u64>, Vec<u64>) {
        let cs = self.node.raft.prs().conf().to_conf_state();
        let (mut voters, mut learners) = (cs.voters.clone(), cs.learners.clone());
        voters.sort_unstable();
        learners.sort_unstable();
        (voters, learners)
    }

    pub fn has_ready(&self) -> bool {
        self.node.has_ready()
    }

    /// Persists, applies and advances one Ready; returns the messages to send.
    pub fn handle_ready(&mut self) -> Result<Vec<Message>> {
        let mut batch = WriteBatch::new();
        let Some(mut ready) = self.begin_ready(&mut batch)? else {
            return Ok(Vec::new());
        };
        if !batch.is_empty() {
            let sync = ready.must_sync;
            self.engine.write(&batch, WriteOptions { sync })?;
        }
        let mut out = std::mem::take(&mut ready.early);
        out.extend(self.finish_ready(ready)?);
        Ok(out)
    }

    /// The first half of handling a Ready: takes it, notes confirmed reads,
    /// installs a snapshot, and adds the new log entries and hard state to
    /// `batch`. The caller writes `batch` (one write, and one sync, for
    /// every region of the store), may send [`PendingReady::early`] at once,
    /// and then calls [`finish_ready`](Self::finish_ready).
    pub fn begin_ready(&mut self, batch: &mut WriteBatch) -> Result<Option<PendingReady>> {
        if !self.node.has_ready() {
            return Ok(None);
        }
        let mut rd = self.node.ready();
        for rs in rd.take_read_states() {
            let ctx = rs
                .request_ctx
                .get(8..16)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            if let Some(r) = self.reads.get_mut(&ctx) {
                r.index.get_or_insert(rs.index);
            }
        }
        let early = rd.take_messages();
        if !rd.snapshot().is_empty() {
            self.install_snapshot(rd.snapshot().clone())?;
        }
        let store = self.node.store();
        store.append(rd.entries(), batch)?;
        if let Some(hs) = rd.hs() {
            store.set_hard_state(hs, batch);
        }
        Ok(Some(PendingReady {
            must_sync: rd.must_sync(),
            early,
            ready: rd,
        }))
    }

    /// The second half, once the batch of [`begin_ready`](Self::begin_ready)
    /// is durable: applies committed entries, advances, answers reads, and
    /// returns the messages that had to wait for the log to persist.
    pub fn finish_ready(&mut self, pending: PendingReady) -> Result<Vec<Message>> {
        let mut rd = pending.ready;
        let mut out = rd.take_persisted_messages();
        let committed = rd.take_committed_entries();
        self.apply(committed);
        let mut light = self.node.advance(rd);
        if let Some(commit) = light.commit_index() {
            let mut batch = WriteBatch::new();
            self.node.store().set_commit(commit, &mut batch);
            self.engine.write(&batch, WriteOptions::default())?;
        }
        out.extend(light.take_messages());
        self.apply(light.take_committed_entries());
        self.node.advance_apply();
        self.settle_one_pc();
        self.finish_reads();
        self.pump();
        self.maybe_compact_log()?;
        Ok(out)
    }

    /// Compacts the log once it holds more applied entries, or bytes, than
    /// the thresholds; up to what the subscribers have made durable and (on
    /// a leader) what every peer has, unless that keeps it
    /// [`LOG_RETAIN_FACTOR`] times past them.
    fn maybe_compact_log(&mut self) -> Result<()> {
        let first = self.node.store().first_index_now();
        let kept = self.applied.saturating_sub(first);
        if kept <= self.log_gc_threshold && (kept == 0 || self.log_bytes <= self.log_gc_bytes) {
            return Ok(());
        }
        let durable = self
            .observers
            .iter()
            .filter_map(|o| o.durable(self.region_id))
            .min();
        // A leader also keeps what its slowest peer (a learner busy with
        // its own work, say) still lacks: a snapshot costs it far more.
        let slowest = self
            .is_leader()
            .then(|| {
                self.node
                    .raft
                    .prs()
                    .iter()
                    .filter(|(id, _)| **id != self.id)
                    .map(|(_, pr)| pr.matched)
                    .min()
            })
            .flatten();
        let keep_from = match (durable, slowest) {
            (Some(d), Some(s)) => Some(d.min(s)),
            (d, s) => d.or(s),
        };
        let over = kept > self.log_gc_threshold.saturating_mul(LOG_RETAIN_FACTOR)
            || self.log_bytes > self.log_gc_bytes.saturating_mul(LOG_RETAIN_FACTOR);
        match keep_from {
            Some(d) if !over && d < self.applied => {
                if d > first {
                    let mut batch = WriteBatch::new();
                    self.node.store().compact(d, &mut batch)?;
                    self.engine.write(&batch, WriteOptions::default())?;
                }
                Ok(())
            }
            _ => self.compact_log(),
        }
    }

    /// Compacts the log up to the applied index.
    pub fn compact_log(&mut self) -> Result<()> {
        let mut batch = WriteBatch::new();
        self.node.store().compact(self.applied, &mut batch)?;
        self.engine.write(&batch, WriteOptions::default())?;
        self.log_bytes = 0;
        Ok(())
    }
}

/// A read unanswered after this many sends fails (its caller has long given up).
const READ_MAX_SENDS: usize = 20;
/// A peer this many entries behind the leader's last is pending.
const PENDING_ENTRIES: u64 = 10;

/// Unanswered read requests are sent again after this many ticks: raft-rs
/// drops a ReadIndex that reaches a leader before it committed in its term.
const READ_RETRY_TICKS: usize = 3;
