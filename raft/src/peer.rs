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

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use duet_storage::engine::{Cf, Engine, Modify, WriteBatch, WriteOptions};
use duet_storage::txn::commands::{self, Command, Effects, Response};
use protobuf::Message as _;
use raft::prelude::{ConfChangeV2, ConfState, Entry, EntryType, Message};
use raft::{Config, RawNode, StateRole};

use crate::error::{Error, Result};
use crate::keys;
use crate::region::{Region, RegionEpoch};
use crate::storage::PeerStorage;

/// The outcome of an applied command, as its proposer sees it.
pub type ApplyResult = std::result::Result<Response, Error>;

/// Called once with where a proposal entered the log: `(index, term)`.
pub type PositionCallback = Box<dyn FnOnce((u64, u64)) + Send>;

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

/// A read unanswered after this many sends fails (its caller has long given up).
const READ_MAX_SENDS: usize = 20;

/// Unanswered read requests are sent again after this many ticks: raft-rs
/// drops a ReadIndex that reaches a leader before it committed in its term.
const READ_RETRY_TICKS: usize = 3;

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

/// What applying one entry did, owned, before the observers see it as
/// [`Applied`].
enum Kind {
    Empty,
    Opaque,
    Command { ok: bool },
    Split(Region, Region),
    ConfChange(ConfState),
}

/// One entry's apply: what it did, the writes to make, and the answer
/// to its proposal (none for entries no proposal waits on).
struct Outcome {
    kind: Kind,
    batch: WriteBatch,
    result: Option<ApplyResult>,
}

impl Outcome {
    /// An outcome with no writes.
    fn new(kind: Kind, result: Option<ApplyResult>) -> Outcome {
        Outcome {
            kind,
            batch: WriteBatch::new(),
            result,
        }
    }
}

/// What a peer installed from a snapshot: the region as of the
/// snapshot's index, and every data key of its range as a put — the range
/// holds nothing else afterwards.
#[derive(Debug)]
pub struct Installed<'a> {
    pub region: &'a Region,
    pub data: &'a [Modify],
}

/// A committed entry as a replayer reads it back from the log (see
/// [`logged_writes`]).
#[derive(Debug)]
pub enum Logged {
    /// A command's effects, computed under region epoch `version`: they
    /// applied if the region was at that version when the entry applied
    /// (a split in between refused them), and then only if `ok`.
    Effects {
        version: u64,
        ok: bool,
        writes: Vec<Modify>,
    },
    /// A split that would create region `new_region_id`; it applied (and
    /// raised the epoch version by one) if that region exists.
    Split { new_region_id: u64 },
    /// No row data: an empty entry or a membership change.
    Nothing,
    /// A command logged before effects were: the log alone cannot replay it.
    Opaque,
}

/// Reads back entries `after + 1 ..= upto` of `region_id` from the raft log
/// in `snap`. `None` if any of them is no longer in the log.
pub fn logged_writes<S: duet_storage::engine::Snapshot>(
    snap: &S,
    region_id: u64,
    after: u64,
    upto: u64,
) -> Result<Option<Vec<Logged>>> {
    let mut out = Vec::new();
    for index in after + 1..=upto {
        let Some(bytes) = snap.get(Cf::Raft, &keys::entry_key(region_id, index))? else {
            return Ok(None);
        };
        let entry = Entry::parse_from_bytes(&bytes).map_err(|e| Error::Corruption {
            what: "log entry",
            detail: e.to_string(),
        })?;
        let context = entry.get_context();
        out.push(match entry.get_entry_type() {
            EntryType::EntryNormal if context == crate::region::SPLIT_CONTEXT => {
                let request: crate::region::SplitRequest =
                    prost::Message::decode(entry.data.as_ref()).map_err(|e| Error::Corruption {
                        what: "split request",
                        detail: e.to_string(),
                    })?;
                Logged::Split {
                    new_region_id: request.new_region_id,
                }
            }
            EntryType::EntryNormal if entry.data.is_empty() => Logged::Nothing,
            EntryType::EntryNormal if context.starts_with(EFFECTS_CONTEXT) => {
                let version = effects_version(context)?;
                let (writes, response) = Effects::from_bytes(&entry.data)?.into_parts()?;
                Logged::Effects {
                    version,
                    ok: response.is_ok(),
                    writes: writes.modifies,
                }
            }
            EntryType::EntryNormal => Logged::Opaque,
            EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => Logged::Nothing,
        });
    }
    Ok(Some(out))
}

/// What a replayer can learn from the log alone: the writes each entry
/// applied, in order, with its index.
#[derive(Debug)]
pub enum Replay {
    Writes(Vec<(u64, Vec<Modify>)>),
    /// Some entry is no longer in the log.
    Compacted,
    /// An entry logged before effects were.
    Opaque,
}

/// The writes that entries `after + 1 ..= upto` of `region_id` applied, as
/// its apply decided: effects count if the region's epoch version when they
/// applied was the one they were computed under. That version is the
/// region's now (in `snap`) less one per split applied after the entry (a
/// split applied if the region it creates exists).
pub fn applied_writes<S: duet_storage::engine::Snapshot>(
    snap: &S,
    region_id: u64,
    after: u64,
    upto: u64,
) -> Result<Replay> {
    let Some(region) = Region::read(snap, region_id)? else {
        return Ok(Replay::Compacted);
    };
    let Some(logged) = logged_writes(snap, region_id, after, upto)? else {
        return Ok(Replay::Compacted);
    };
    let mut version = region.epoch().version;
    let mut out = Vec::new();
    let indexed: Vec<(u64, Logged)> = (after + 1..=upto).zip(logged).collect();
    for (index, entry) in indexed.into_iter().rev() {
        match entry {
            Logged::Effects {
                version: v,
                ok: true,
                writes,
            } if v == version => out.push((index, writes)),
            Logged::Effects { .. } | Logged::Nothing => {}
            Logged::Split { new_region_id } => {
                if Region::read(snap, new_region_id)?.is_some() {
                    version = version.saturating_sub(1);
                }
            }
            Logged::Opaque => return Ok(Replay::Opaque),
        }
    }
    out.reverse();
    Ok(Replay::Writes(out))
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
    position: Option<PositionCallback>,
    callback: Callback,
}

/// An entry that carries [`Effects`] has this context, followed by the
/// region epoch version they were computed under (8 bytes, big-endian).
const EFFECTS_CONTEXT: &[u8] = b"duet:fx";

/// The context of an entry of effects computed under epoch `version`.
fn effects_context(version: u64) -> Vec<u8> {
    let mut context = EFFECTS_CONTEXT.to_vec();
    context.extend_from_slice(&version.to_be_bytes());
    context
}

/// The epoch version in an [`effects_context`].
fn effects_version(context: &[u8]) -> Result<u64> {
    context
        .get(EFFECTS_CONTEXT.len()..)
        .and_then(|v| v.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| Error::Corruption {
            what: "effects epoch",
            detail: format!("{} bytes", context.len()),
        })
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
    /// The latest confirmed leadership: when it was asked, in which term.
    lease_from: Option<(Instant, u64)>,
    /// The term in which a ReadIndex asked only to renew the lease is in flight.
    renewing: Option<u64>,
    /// See [`PeerConfig::stores_data`].
    stores_data: bool,
    /// The Raft state a peer that keeps no data applied, written once per
    /// apply.
    deferred: WriteBatch,
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
        Ok(Peer {
            region_id,
            id,
            node,
            engine,
            proposals: VecDeque::new(),
            waiting: VecDeque::new(),
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
            lease_from: None,
            renewing: None,
            stores_data: cfg.stores_data,
            deferred: WriteBatch::new(),
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

    pub fn applied_index(&self) -> u64 {
        self.applied
    }

    /// Commit records (MVCC versions) this peer applied since it opened.
    pub fn written_keys(&self) -> u64 {
        self.written_keys
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

    /// Feeds a message from another peer of this region.
    pub fn step(&mut self, msg: Message) -> Result<()> {
        Ok(self.node.step(msg)?)
    }

    /// Proposes `command`; `callback` runs once it applied (or failed).
    pub fn propose(&mut self, command: &Command, callback: Callback) {
        self.submit(Waiting {
            command: command.clone(),
            position: None,
            callback,
        });
    }

    /// [`propose`](Self::propose), telling `position` the log position the
    /// command's effects take once the leader ran it (a command refused
    /// before that hears only through `callback`).
    pub fn propose_at(
        &mut self,
        command: &Command,
        position: PositionCallback,
        callback: Callback,
    ) {
        self.submit(Waiting {
            command: command.clone(),
            position: Some(position),
            callback,
        });
    }

    fn not_leader(&self) -> Error {
        Error::NotLeader {
            region_id: self.region_id,
            leader: self.leader(),
        }
    }

    fn submit(&mut self, w: Waiting) {
        if !self.is_leader() {
            (w.callback)(Err(self.not_leader()));
            return;
        }
        self.waiting.push_back(w);
        self.pump();
    }

    /// Runs, in arrival order, the waiting commands that may run now.
    fn pump(&mut self) {
        if self.waiting.is_empty() {
            return;
        }
        if !self.is_leader() {
            for w in std::mem::take(&mut self.waiting) {
                (w.callback)(Err(self.not_leader()));
            }
            return;
        }
        // Until a leader applied an entry of its term, earlier terms'
        // entries may still be unapplied here.
        if self.applied_term() != Some(self.term()) {
            return;
        }
        if self.latch_term != self.term() {
            self.latches.clear();
            self.latch_term = self.term();
        }
        let applied = self.applied;
        self.latches.retain(|_, index| *index > applied);
        let mut i = 0;
        while i < self.waiting.len() {
            let command = &self.waiting[i].command;
            let free = if command.is_barrier() {
                self.applied >= self.node.raft.raft_log.last_index()
            } else {
                command
                    .latch_keys()
                    .iter()
                    .all(|k| !self.latches.contains_key(*k))
            };
            if free {
                let w = self.waiting.remove(i).expect("in range");
                self.run(w);
            } else if command.is_barrier() {
                // Nothing overtakes a barrier.
                break;
            } else {
                i += 1;
            }
        }
    }

    /// Runs `w` on the engine and proposes its effects.
    fn run(&mut self, w: Waiting) {
        if !w
            .command
            .within(&self.region.start_key, &self.region.end_key)
        {
            (w.callback)(Err(self.epoch_not_match()));
            return;
        }
        let effects = match Effects::compute(&self.engine.snapshot(), &w.command) {
            Ok(effects) => effects,
            Err(e) => {
                (w.callback)(Err(Error::Storage(e)));
                return;
            }
        };
        let context = effects_context(self.region.epoch().version);
        if let Some(at) = self.propose_entry(context, effects.to_bytes(), w.callback) {
            for key in w.command.latch_keys() {
                self.latches.insert(key.to_vec(), at.0);
            }
            if let Some(position) = w.position {
                position(at);
            }
        }
    }

    /// Proposes splitting this region at `split_key`; the new right-hand
    /// region gets `new_region_id`. `callback` runs once it applied; a key
    /// outside the range (the region changed meanwhile) answers
    /// `EpochNotMatch`.
    pub fn propose_split(&mut self, split_key: &[u8], new_region_id: u64, callback: Callback) {
        if self.region.split(split_key, new_region_id).is_none() {
            callback(Err(self.epoch_not_match()));
            return;
        }
        let request = crate::region::SplitRequest {
            split_key: split_key.to_vec(),
            new_region_id,
        };
        let data = prost::Message::encode_to_vec(&request);
        let _ = self.propose_entry(crate::region::SPLIT_CONTEXT.to_vec(), data, callback);
    }

    fn epoch_not_match(&self) -> Error {
        Error::EpochNotMatch {
            region_id: self.region_id,
            current: Box::new(self.region.clone()),
        }
    }

    /// The regions created by splits applied since the last call.
    pub fn take_splits(&mut self) -> Vec<Region> {
        std::mem::take(&mut self.splits)
    }

    fn propose_entry(
        &mut self,
        context: Vec<u8>,
        data: Vec<u8>,
        callback: Callback,
    ) -> Option<(u64, u64)> {
        if !self.is_leader() {
            callback(Err(self.not_leader()));
            return None;
        }
        let index = self.node.raft.raft_log.last_index() + 1;
        let term = self.term();
        if let Err(e) = self.node.propose(context, data) {
            callback(Err(e.into()));
            return None;
        }
        if self.node.raft.raft_log.last_index() < index {
            callback(Err(Error::ProposalDropped {
                region_id: self.region_id,
            }));
            return None;
        }
        self.enqueue(index, term, callback);
        Some((index, term))
    }

    /// Calls back with the outcome of the entry at `(index, term)` when this
    /// peer applies it — the same outcome the leader saw, since apply is
    /// deterministic. Used for commands forwarded to the leader. If the entry
    /// is already applied here the outcome is unknown and reported as
    /// dropped; callers retry (transaction commands are idempotent).
    pub fn watch(&mut self, index: u64, term: u64, callback: Callback) {
        if index <= self.applied {
            callback(Err(Error::ProposalDropped {
                region_id: self.region_id,
            }));
            return;
        }
        self.enqueue(index, term, callback);
    }

    /// Waits for the entry at `(index, term)`, kept in index order: after a
    /// leadership change, older proposals at higher indexes may still wait
    /// (they will be answered as dropped).
    fn enqueue(&mut self, index: u64, term: u64, callback: Callback) {
        let at = self.proposals.partition_point(|p| p.index <= index);
        self.proposals.insert(
            at,
            Proposal {
                index,
                term,
                callback,
            },
        );
    }

    /// The region's descriptor as of the last applied entry.
    pub fn region(&self) -> &Region {
        &self.region
    }

    /// Proposes `command` for a caller that saw the region at `epoch`: a
    /// change of range since then answers `EpochNotMatch` with the region now.
    pub fn propose_in_epoch(&mut self, command: &Command, epoch: RegionEpoch, callback: Callback) {
        if epoch.version != self.region.epoch().version {
            callback(Err(self.epoch_not_match()));
            return;
        }
        self.propose(command, callback);
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

    /// Proposes a membership change (joint consensus when it changes several peers).
    pub fn propose_conf_change(&mut self, cc: ConfChangeV2) -> Result<()> {
        if !self.is_leader() {
            return Err(Error::NotLeader {
                region_id: self.region_id,
                leader: self.leader(),
            });
        }
        Ok(self.node.propose_conf_change(vec![], cc)?)
    }

    /// ReadIndex: asks the leader (itself, or through Raft) for the commit
    /// index, and calls back once this peer has applied that far — a read of
    /// the local engine after that is linearizable. Followers and learners
    /// use it to serve fresh reads; on a leader a confirmed answer also
    /// starts a lease from `now`.
    pub fn read_index(&mut self, callback: ReadCallback, now: Instant) {
        if self.leader().is_none() {
            callback(Err(Error::NotLeader {
                region_id: self.region_id,
                leader: None,
            }));
            return;
        }
        self.next_read += 1;
        let ctx = self.next_read;
        let asked = self.is_leader().then_some((now, self.term()));
        self.reads.insert(
            ctx,
            PendingRead {
                index: None,
                callback,
                waited: 0,
                sent: 1,
                asked,
            },
        );
        self.send_read_index(ctx);
    }

    /// Whether, and until when, this peer may serve reads locally at `now`.
    pub fn lease(&self) -> Lease {
        if !self.is_leader() || self.applied_term() != Some(self.term()) {
            return Lease::None;
        }
        if self.is_sole_voter() {
            return Lease::Forever;
        }
        match self.lease_from {
            Some((at, term)) if term == self.term() && !self.lease.is_zero() => {
                Lease::Until(at + self.lease)
            }
            _ => Lease::None,
        }
    }

    /// Asks a quorum to confirm this leader's lease when it is missing or
    /// past half its length at `now` (the store calls this every tick, so a
    /// busy leader rarely waits for a ReadIndex round).
    pub fn renew_lease(&mut self, now: Instant) {
        let term = self.term();
        if self.lease.is_zero()
            || self.renewing == Some(term)
            || !self.is_leader()
            || self.is_sole_voter()
        {
            return;
        }
        let fresh = matches!(self.lease(), Lease::Until(t) if t > now + self.lease / 2);
        if !fresh {
            self.renewing = Some(term);
            self.read_index(Box::new(|_| {}), now);
        }
    }

    /// The term of the last applied entry.
    fn applied_term(&self) -> Option<u64> {
        self.node.raft.raft_log.term(self.applied).ok()
    }

    /// This peer is the only voter, outside any joint configuration.
    fn is_sole_voter(&self) -> bool {
        let voters = self.node.raft.prs().conf().voters();
        voters.is_singleton() && voters.contains(self.id)
    }

    fn send_read_index(&mut self, ctx: u64) {
        // The leader keys pending reads by context: make it unique cluster-wide.
        let mut rctx = self.id.to_be_bytes().to_vec();
        rctx.extend_from_slice(&ctx.to_be_bytes());
        self.node.read_index(rctx);
    }

    /// Answers the reads whose index is confirmed and applied.
    fn finish_reads(&mut self) {
        let applied = self.applied;
        let done: Vec<u64> = self
            .reads
            .iter()
            .filter(|(_, r)| r.index.is_some_and(|i| i <= applied))
            .map(|(c, _)| *c)
            .collect();
        for ctx in done {
            if let Some(r) = self.reads.remove(&ctx) {
                if let Some((at, term)) = r.asked {
                    if self.renewing == Some(term) {
                        self.renewing = None;
                    }
                    let newer = match self.lease_from {
                        Some((t, lt)) => lt != term || t < at,
                        None => true,
                    };
                    if term == self.term() && self.is_leader() && newer {
                        self.lease_from = Some((at, term));
                    }
                }
                (r.callback)(Ok(r.index.unwrap_or(applied)));
            }
        }
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

    /// Replaces this peer's data and log by a snapshot from the leader (a
    /// peer that keeps no data replaces only its log and descriptor, and
    /// its observers take the data).
    fn install_snapshot(&mut self, snap: raft::prelude::Snapshot) -> Result<()> {
        let (index, term) = (snap.get_metadata().index, snap.get_metadata().term);
        let mut batch = WriteBatch::new();
        self.node.store().apply_snapshot(&snap, &mut batch)?;
        let mut contents = crate::snapshot::decode(&snap.data)?;
        let installed = if self.stores_data {
            Some(crate::snapshot::install(
                self.engine.as_ref(),
                &mut contents,
                &mut batch,
            )?)
        } else {
            if let Some(region) = &contents.region {
                region.save(&mut batch);
            }
            None
        };
        batch.put(
            Cf::Raft,
            keys::apply_state_key(self.region_id),
            index.to_be_bytes().to_vec(),
        );
        self.engine.write(&batch, WriteOptions { sync: true })?;
        self.applied = index;
        if let Some(region) = contents.region {
            self.region = region;
        }
        let installed = Installed {
            region: &self.region,
            data: match installed {
                Some(range) => &batch.modifies[range],
                None => &contents.writes,
            },
        };
        for o in &self.observers {
            o.on_snapshot(self.region_id, index, term, &installed);
        }
        Ok(())
    }

    /// Applies committed entries in order. Panics if the engine fails: an
    /// apply must never diverge between replicas.
    fn apply(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            self.log_bytes += entry.data.len() as u64;
            if let Err(e) = self.apply_entry(&entry) {
                panic!(
                    "region {} peer {}: cannot apply entry {}: {e}",
                    self.region_id, self.id, entry.index
                );
            }
        }
        if !self.deferred.is_empty() {
            let batch = std::mem::take(&mut self.deferred);
            if let Err(e) = self.engine.write(&batch, WriteOptions::default()) {
                panic!(
                    "region {} peer {}: cannot record the applied state: {e}",
                    self.region_id, self.id
                );
            }
        }
    }

    fn apply_entry(&mut self, entry: &Entry) -> Result<()> {
        let Outcome {
            kind,
            mut batch,
            result,
        } = match entry.get_entry_type() {
            EntryType::EntryNormal if entry.get_context() == crate::region::SPLIT_CONTEXT => {
                self.apply_split_entry(entry)?
            }
            EntryType::EntryNormal if entry.data.is_empty() => Outcome::new(Kind::Empty, None),
            EntryType::EntryNormal if entry.get_context().starts_with(EFFECTS_CONTEXT) => {
                self.apply_effects(entry)?
            }
            // An entry written before effects were replicated: the command
            // itself, which a peer without data cannot run.
            EntryType::EntryNormal if !self.stores_data => Outcome::new(
                Kind::Opaque,
                Some(Err(Error::NoData {
                    region_id: self.region_id,
                })),
            ),
            EntryType::EntryNormal => self.apply_command(entry)?,
            EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                self.apply_conf_change_entry(entry)?
            }
        };
        // The command's writes come first in the batch; a peer that keeps no
        // data writes only the Raft state behind them.
        let effects = if self.stores_data {
            batch.modifies.len()
        } else {
            let (data, raft): (Vec<Modify>, Vec<Modify>) = std::mem::take(&mut batch.modifies)
                .into_iter()
                .partition(|m| m.cf() != Cf::Raft);
            let effects = data.len();
            batch.modifies = data;
            batch.modifies.extend(raft);
            effects
        };
        self.written_keys += batch.modifies[..effects]
            .iter()
            .filter(|m| matches!(m, Modify::Put { cf: Cf::Write, .. }))
            .count() as u64;
        batch.put(
            Cf::Raft,
            keys::apply_state_key(self.region_id),
            entry.index.to_be_bytes().to_vec(),
        );
        if self.stores_data {
            self.engine.write(&batch, WriteOptions::default())?;
        } else {
            // Written once for all the entries of this apply (it answers
            // no proposal, and nothing reads it before then).
            let kept = batch.modifies.split_off(effects);
            self.deferred.modifies.extend(kept);
        }
        self.applied = entry.index;
        // Observers see the command's own writes, not the apply state.
        let applied = match &kind {
            Kind::Empty => Applied::Empty,
            Kind::Opaque => Applied::Opaque,
            Kind::Command { ok } => Applied::Command {
                ok: *ok,
                writes: &batch.modifies[..effects],
            },
            Kind::Split(left, right) => Applied::Split { left, right },
            Kind::ConfChange(cs) => Applied::ConfChange(cs),
        };
        for o in &self.observers {
            o.on_applied(self.region_id, entry.index, entry.term, &applied);
        }
        self.answer_proposals(entry, result);
        Ok(())
    }

    /// A split entry: the region narrowed and the new one written, or
    /// refused alike everywhere if the range changed since the proposal.
    fn apply_split_entry(&mut self, entry: &Entry) -> Result<Outcome> {
        let request: crate::region::SplitRequest = prost::Message::decode(entry.data.as_ref())
            .map_err(|e| Error::Corruption {
                what: "split request",
                detail: e.to_string(),
            })?;
        let mut batch = WriteBatch::new();
        Ok(match self.apply_split(&request, &mut batch)? {
            Some(right) => Outcome {
                kind: Kind::Split(self.region.clone(), right),
                batch,
                result: Some(Ok(Response::Done)),
            },
            None => Outcome::new(Kind::Empty, Some(Err(self.epoch_not_match()))),
        })
    }

    /// A command's effects as the leader logged them, unless a split
    /// applied since the leader ran it (its keys may no longer all be this
    /// region's).
    fn apply_effects(&mut self, entry: &Entry) -> Result<Outcome> {
        let version = effects_version(entry.get_context())?;
        if version != self.region.epoch().version {
            return Ok(Outcome::new(
                Kind::Command { ok: false },
                Some(Err(self.epoch_not_match())),
            ));
        }
        let (writes, response) = Effects::from_bytes(&entry.data)?.into_parts()?;
        Ok(Outcome {
            kind: Kind::Command {
                ok: response.is_ok(),
            },
            batch: writes,
            result: Some(response.map_err(Error::Storage)),
        })
    }

    /// A command logged before effects were, run here; one routed by a
    /// stale view of the regions is refused with no writes.
    fn apply_command(&mut self, entry: &Entry) -> Result<Outcome> {
        let command = Command::from_bytes(&entry.data)?;
        if !command.within(&self.region.start_key, &self.region.end_key) {
            return Ok(Outcome::new(
                Kind::Command { ok: false },
                Some(Err(self.epoch_not_match())),
            ));
        }
        Ok(match commands::apply(&self.engine.snapshot(), &command) {
            Ok((writes, response)) => Outcome {
                kind: Kind::Command { ok: true },
                batch: writes,
                result: Some(Ok(response)),
            },
            Err(e) if is_engine_failure(&e) => return Err(e.into()),
            Err(e) => Outcome::new(Kind::Command { ok: false }, Some(Err(Error::Storage(e)))),
        })
    }

    /// A membership change, with the addresses of joining stores in its
    /// context. An invalid change (e.g. removing every voter) fails the
    /// same way on every replica: it is skipped, not fatal.
    fn apply_conf_change_entry(&mut self, entry: &Entry) -> Result<Outcome> {
        let bad = |e: protobuf::ProtobufError| Error::Corruption {
            what: "conf change",
            detail: e.to_string(),
        };
        let (changed, context) = if entry.get_entry_type() == EntryType::EntryConfChange {
            let cc = raft::prelude::ConfChange::parse_from_bytes(&entry.data).map_err(bad)?;
            (self.node.apply_conf_change(&cc), cc.get_context().to_vec())
        } else {
            let cc = ConfChangeV2::parse_from_bytes(&entry.data).map_err(bad)?;
            (self.node.apply_conf_change(&cc), cc.get_context().to_vec())
        };
        // A context that does not decode decodes alike nowhere, and adds
        // no address.
        let addrs = <crate::region::PeerAddresses as prost::Message>::decode(context.as_slice())
            .map(|a| a.peers)
            .unwrap_or_default();
        let mut batch = WriteBatch::new();
        let conf_state = match changed {
            Ok(cs) => {
                self.node.store().set_conf_state(&cs, &mut batch);
                let (voters, learners) = (&cs.voters, &cs.learners);
                self.region = self.region.with_membership(voters, learners, &addrs);
                self.region.save(&mut batch);
                cs
            }
            Err(e) => {
                tracing::warn!(region_id = self.region_id, index = entry.index, error = %e, "membership change refused");
                self.node.raft.prs().conf().to_conf_state()
            }
        };
        Ok(Outcome {
            kind: Kind::ConfChange(conf_state),
            batch,
            result: None,
        })
    }

    /// Applies a split to this replica: narrows the region and, unless this
    /// store already holds the new region (it caught up on it by snapshot),
    /// writes the new region's descriptor and initial Raft state. The store
    /// opens the new peer (see [`take_splits`](Self::take_splits)). Returns
    /// the new region, or `None` if the split no longer fits the range.
    fn apply_split(
        &mut self,
        request: &crate::region::SplitRequest,
        batch: &mut WriteBatch,
    ) -> Result<Option<Region>> {
        let Some((left, right)) = self.region.split(&request.split_key, request.new_region_id)
        else {
            tracing::warn!(
                region_id = self.region_id,
                new_region_id = request.new_region_id,
                "split refused: the key is outside the region"
            );
            return Ok(None);
        };
        left.save(batch);
        let known =
            Region::load(self.engine.as_ref(), right.id)?.is_some_and(|r| r.is_initialized());
        if !known {
            let conf_state = self.node.raft.prs().conf().to_conf_state();
            crate::storage::write_initial_state(
                &self.engine.snapshot(),
                right.id,
                &conf_state,
                batch,
            )?;
            right.save(batch);
            self.splits.push(right.clone());
        }
        self.region = left;
        Ok(Some(right))
    }

    /// Answers the proposal at this entry's index; proposals overtaken by a
    /// different entry at their index were dropped by a leader change.
    fn answer_proposals(&mut self, entry: &Entry, result: Option<ApplyResult>) {
        let mut result = Some(result.unwrap_or(Ok(Response::Done)));
        while let Some(p) = self.proposals.front() {
            if p.index > entry.index {
                break;
            }
            let p = self.proposals.pop_front().expect("front exists");
            if p.index == entry.index && p.term == entry.term {
                // A second waiter on the same entry learns only that it is unknown.
                let r = result.take().unwrap_or(Err(Error::ProposalDropped {
                    region_id: self.region_id,
                }));
                (p.callback)(r);
            } else {
                (p.callback)(Err(Error::ProposalDropped {
                    region_id: self.region_id,
                }));
            }
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

/// Errors that come from the engine rather than from the command's logic.
fn is_engine_failure(e: &duet_storage::Error) -> bool {
    matches!(e, duet_storage::Error::Engine(_))
}
