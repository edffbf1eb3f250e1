//! The peers of one store and everything that creates them: the first
//! region's bootstrap, rediscovery of every region on restart, the new peer
//! each applied split creates, and the empty peer a message from an unknown
//! region's leader creates (it then receives a snapshot). Also the store's
//! [`RegionView`]: the regions as this store last applied them, which the
//! client side routes requests by. No threads, no clock: the store's thread
//! drives it, and so do deterministic tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use duet_storage::engine::{
    Cf, Engine, EngineIterator, IterOptions, Snapshot as _, WriteBatch, WriteOptions,
};
use raft::prelude::{Message, MessageType};
use tracing::warn;

use crate::error::Result;
use crate::keys;
use crate::peer::{ApplyObserver, Lease, Peer, PeerConfig, raise_floor};
use crate::region::{Region, RegionTag};
use crate::stale::{self, Verdict};

/// The one region every store starts with; it keeps its id through splits
/// (a split's left part) and always starts at the empty key.
pub const FIRST_REGION: u64 = 1;

/// The regions a store has applied, shared with the routing side. Regions
/// that split elsewhere may still look whole here; a request routed by a
/// stale view is refused with `EpochNotMatch` and routed again. It also
/// holds each peer's [`Leadership`] as of the store's last Ready, so a
/// reader learns without a round trip through the store's thread whether
/// the local engine may serve it, and who leads.
#[derive(Clone, Default)]
pub struct RegionView {
    regions: Arc<RwLock<BTreeMap<u64, Region>>>,
    leaders: Arc<RwLock<HashMap<u64, Leadership>>>,
    /// The largest timestamp a read of this store asked for (see
    /// [`crate::peer`]'s one-phase commits).
    floor: Arc<AtomicU64>,
    /// Per region, its leader's one-phase commits in flight.
    one_pc: Arc<RwLock<HashMap<u64, Arc<AtomicU64>>>>,
}

/// Who leads a region as one store's peer last knew it, and that peer's
/// read lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leadership {
    pub term: u64,
    /// The leader's peer id, if one is known.
    pub leader: Option<u64>,
    pub is_leader: bool,
    pub lease: Lease,
}

impl RegionView {
    /// The region that holds `key`.
    pub fn locate(&self, key: &[u8]) -> Option<Region> {
        self.read().values().find(|r| r.contains(key)).cloned()
    }

    pub fn get(&self, region_id: u64) -> Option<Region> {
        self.read().get(&region_id).cloned()
    }

    /// Whether region `region_id` covers exactly `[start, end)` here.
    pub fn has_range(&self, region_id: u64, start: &[u8], end: &[u8]) -> bool {
        self.read()
            .get(&region_id)
            .is_some_and(|r| r.start_key == start && r.end_key == end)
    }

    /// Whether the regions held here cover every key of `[start, end)`
    /// (empty `end`: no bound), with no gap.
    pub fn covers(&self, start: &[u8], end: &[u8]) -> bool {
        let mut at = start.to_vec();
        for r in self.regions() {
            if !end.is_empty() && at.as_slice() >= end {
                return true;
            }
            if !r.end_key.is_empty() && r.end_key <= at {
                continue;
            }
            if r.start_key > at {
                return false;
            }
            if r.end_key.is_empty() {
                return true;
            }
            at = r.end_key.clone();
        }
        !end.is_empty() && at.as_slice() >= end
    }

    /// Every region, ordered by start key.
    pub fn regions(&self) -> Vec<Region> {
        let mut all: Vec<Region> = self.read().values().cloned().collect();
        all.sort_by(|a, b| a.start_key.cmp(&b.start_key));
        all
    }

    /// Whether this store may serve a linearizable read of `region_id` at
    /// `now` from its own engine.
    pub fn local_read(&self, region_id: u64, now: Instant) -> bool {
        self.leadership(region_id)
            .is_some_and(|l| l.lease.covers(now))
    }

    /// Whether this store may serve a linearizable read at timestamp `ts`
    /// of `region_id` at `now` from its own engine: it raises the store's
    /// read floor to `ts` first, and a region whose leader has one-phase
    /// commits in flight is read through a read index instead, which
    /// waits for them (the order matters, see [`crate::peer`]'s `one_pc`).
    pub fn local_read_at(&self, region_id: u64, ts: u64, now: Instant) -> bool {
        raise_floor(&self.floor, ts);
        self.local_read(region_id, now) && self.one_pc_in_flight(region_id) == 0
    }

    /// One-phase commits in flight on this store's leader of `region_id`.
    pub fn one_pc_in_flight(&self, region_id: u64) -> u64 {
        let counts = self.one_pc.read().unwrap_or_else(|e| e.into_inner());
        counts
            .get(&region_id)
            .map_or(0, |c| c.load(Ordering::SeqCst))
    }

    /// The region's count of one-phase commits in flight, new if need be.
    fn one_pc_counter(&self, region_id: u64) -> Arc<AtomicU64> {
        let mut counts = self.one_pc.write().unwrap_or_else(|e| e.into_inner());
        Arc::clone(counts.entry(region_id).or_default())
    }

    /// Who leads `region_id`, as this store's peer knew at its last Ready.
    pub fn leadership(&self, region_id: u64) -> Option<Leadership> {
        let leaders = self.leaders.read().unwrap_or_else(|e| e.into_inner());
        leaders.get(&region_id).copied()
    }

    fn set_leadership(&self, region_id: u64, now: Leadership) {
        let known = {
            let leaders = self.leaders.read().unwrap_or_else(|e| e.into_inner());
            leaders.get(&region_id).copied()
        };
        if known != Some(now) {
            let mut leaders = self.leaders.write().unwrap_or_else(|e| e.into_inner());
            leaders.insert(region_id, now);
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u64, Region>> {
        self.regions.read().unwrap_or_else(|e| e.into_inner())
    }

    fn remove(&self, region_id: u64) {
        (self.regions.write().unwrap_or_else(|e| e.into_inner())).remove(&region_id);
        (self.leaders.write().unwrap_or_else(|e| e.into_inner())).remove(&region_id);
        (self.one_pc.write().unwrap_or_else(|e| e.into_inner())).remove(&region_id);
    }

    fn update(&self, region: &Region) {
        let mut map = self.regions.write().unwrap_or_else(|e| e.into_inner());
        if region.is_initialized() && map.get(&region.id) != Some(region) {
            map.insert(region.id, region.clone());
        }
    }
}

fn leadership_of<E: Engine>(p: &Peer<E>) -> Leadership {
    Leadership {
        term: p.term(),
        leader: p.leader(),
        is_leader: p.is_leader(),
        lease: p.lease(),
    }
}

/// The peers of one store.
pub struct Regions<E: Engine> {
    store_id: u64,
    engine: Arc<E>,
    peers: HashMap<u64, Peer<E>>,
    config: PeerConfig,
    logger: slog::Logger,
    observers: Vec<Arc<dyn ApplyObserver>>,
    view: RegionView,
    /// Messages dropped so far per unknown region (see [`Regions::step`]).
    unknown: HashMap<u64, u32>,
    /// A store that keeps no data writes its log without syncing and holds
    /// back its acknowledgements of entries until a periodic sync (see
    /// [`Regions::flush_acks`]); here are those held, by region.
    held_acks: Vec<(RegionTag, Vec<Message>)>,
    /// Stores to tell that a region no longer has a replica on them.
    tombstones: Vec<(RegionTag, u64)>,
    /// When the held acknowledgements are due.
    acks_due: Option<Instant>,
}

/// How long a store that keeps no data may hold acknowledgements of its
/// log entries before it syncs the log and sends them.
pub const ACK_SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

/// How many messages from an unknown region's leader a store that keeps no
/// data drops before it creates an empty peer for it (see
/// [`Regions::step`]).
const UNKNOWN_REGION_GRACE: u32 = 64;

impl<E: Engine> Regions<E> {
    /// Opens every region stored in `engine`; a store with none bootstraps
    /// [`FIRST_REGION`] with `voters` and `learners` if it is one of them —
    /// otherwise it is joining a running cluster, and starts with no region
    /// until a leader adds it and sends it a snapshot.
    pub fn open(
        engine: Arc<E>,
        store_id: u64,
        voters: &[u64],
        learners: &[u64],
        config: PeerConfig,
        observers: Vec<Arc<dyn ApplyObserver>>,
    ) -> Result<Self> {
        let mut regions = Regions {
            store_id,
            engine,
            peers: HashMap::new(),
            config,
            logger: crate::logger(),
            observers,
            view: RegionView::default(),
            unknown: HashMap::new(),
            held_acks: Vec::new(),
            tombstones: Vec::new(),
            acks_due: None,
        };
        let mut ids = stored_regions(regions.engine.as_ref())?;
        let founder = voters.contains(&store_id) || learners.contains(&store_id);
        if ids.is_empty() && founder {
            ids.push(FIRST_REGION);
        }
        for id in ids {
            regions.open_peer(id, voters, learners)?;
        }
        Ok(regions)
    }

    fn open_peer(&mut self, region_id: u64, voters: &[u64], learners: &[u64]) -> Result<()> {
        let mut peer = Peer::open(
            Arc::clone(&self.engine),
            region_id,
            self.store_id,
            voters,
            learners,
            &self.config,
            &self.logger,
        )?;
        for o in &self.observers {
            peer.observe(Arc::clone(o));
        }
        peer.share_one_pc(
            Arc::clone(&self.view.floor),
            self.view.one_pc_counter(region_id),
        );
        self.view.update(peer.region());
        self.peers.insert(region_id, peer);
        Ok(())
    }

    pub fn view(&self) -> RegionView {
        self.view.clone()
    }

    /// Publishes who leads `region_id` and the peer's lease as they are now.
    pub fn publish_leadership(&self, region_id: u64) {
        if let Some(p) = self.peers.get(&region_id) {
            self.view.set_leadership(region_id, leadership_of(p));
        }
    }

    /// The leaders (region, term) that want a fresh timestamp before they
    /// commit in one phase (see [`Peer::take_ts_request`]).
    pub fn take_ts_requests(&mut self) -> Vec<(u64, u64)> {
        (self.peers.iter_mut())
            .filter_map(|(id, p)| p.take_ts_request().map(|term| (*id, term)))
            .collect()
    }

    /// Hands a timestamp taken after `requests` were made to their peers.
    pub fn ts_taken(&mut self, requests: &[(u64, u64)], ts: Option<u64>) {
        for (region_id, term) in requests {
            if let Some(p) = self.peers.get_mut(region_id) {
                p.ts_taken(*term, ts);
            }
        }
    }

    pub fn get_mut(&mut self, region_id: u64) -> Option<&mut Peer<E>> {
        self.peers.get_mut(&region_id)
    }

    pub fn get(&self, region_id: u64) -> Option<&Peer<E>> {
        self.peers.get(&region_id)
    }

    pub fn peers(&self) -> impl Iterator<Item = &Peer<E>> {
        self.peers.values()
    }

    pub fn peers_mut(&mut self) -> impl Iterator<Item = &mut Peer<E>> {
        self.peers.values_mut()
    }

    /// Ticks every peer; leaders whose lease runs short at `now` ask for
    /// its renewal.
    pub fn tick(&mut self, now: Instant) {
        for p in self.peers.values_mut() {
            p.tick();
            p.renew_lease(now);
            p.expire_lock_waits(now);
        }
    }

    /// Feeds a Raft message to its region's peer. A message from the leader
    /// of a region this store does not know yet (a split it has not applied,
    /// or missed while away) creates an empty peer that will be caught up by
    /// snapshot — unless this store removed its replica of the region at a
    /// membership version the sender has not reached (a stale leader). A
    /// message from a store the region no longer has, sent at an older
    /// membership version, is answered with a tombstone notice: that store
    /// missed its own removal.
    pub fn step(&mut self, tag: RegionTag, message: Message) -> Result<()> {
        let region_id = tag.region_id;
        if let Some(p) = self.peers.get(&region_id) {
            let region = p.region();
            let listed = region.peers.iter().any(|m| m.store_id == message.from);
            let stale = region.is_initialized() && tag.conf_ver < region.epoch().conf_ver;
            if stale && !listed && !p.has_member(message.from) {
                let notice = RegionTag {
                    region_id,
                    conf_ver: region.epoch().conf_ver,
                };
                self.tombstones.push((notice, message.from));
                return Ok(());
            }
        } else {
            let from_leader = matches!(
                message.get_msg_type(),
                MessageType::MsgAppend | MessageType::MsgHeartbeat | MessageType::MsgSnapshot
            );
            if !from_leader {
                warn!(region_id, "raft message for an unknown region");
                return Ok(());
            }
            if let Some(removed_at) = self.tombstone_of(region_id)?
                && tag.conf_ver <= removed_at
            {
                return Ok(());
            }
            // A store that keeps no data (a columnar learner's) is usually
            // just behind on the split that creates the region: applying
            // it starts the region's log where the leader's begins, while
            // a peer created now would need a snapshot, which such a store
            // can only take by rebuilding its observers' copy. It waits a
            // while for the split before it gives in.
            if !self.config.stores_data {
                let seen = self.unknown.entry(region_id).or_default();
                *seen += 1;
                if *seen <= UNKNOWN_REGION_GRACE {
                    return Ok(());
                }
            }
            self.unknown.remove(&region_id);
            self.open_peer(region_id, &[], &[])?;
        }
        match self.peers.get_mut(&region_id).map(|p| p.step(message)) {
            // The last words of a replica that has just left: nothing to do.
            Some(Err(crate::Error::Raft(raft::Error::StepPeerNotFound))) | None => Ok(()),
            Some(r) => r,
        }
    }

    /// The membership version at which this store removed its replica of
    /// `region_id`, if it did.
    fn tombstone_of(&self, region_id: u64) -> Result<Option<u64>> {
        let value = self.engine.get(Cf::Raft, &keys::tombstone_key(region_id))?;
        Ok(value.and_then(|v| Some(u64::from_be_bytes(v.as_slice().try_into().ok()?))))
    }

    /// A member of the region says this store has no replica of it at
    /// `tag.conf_ver`: destroys the replica if it is older than that.
    pub fn tombstone(&mut self, tag: RegionTag) -> Result<()> {
        match self.peers.get(&tag.region_id) {
            // A peer still waiting for its first snapshot was created by a
            // leader newer than any removal this store went through (see
            // `step`): a notice about the replica it replaced is stale.
            Some(p) if !p.region().is_initialized() => Ok(()),
            Some(p) if p.region().epoch().conf_ver < tag.conf_ver => {
                self.destroy(tag.region_id, tag.conf_ver)
            }
            _ => Ok(()),
        }
    }

    /// Destroys this store's replica of `region_id` if `answer` (what
    /// another node holds at its start key) proves it removed or merged
    /// away, judged against the replica as it is now (see
    /// [`crate::stale::judge`]). A replica that has a leader again is kept.
    pub fn destroy_if_stale(&mut self, region_id: u64, answer: &Region) -> Result<bool> {
        let Some(p) = self.peers.get(&region_id) else {
            return Ok(false);
        };
        if p.leader().is_some() {
            return Ok(false);
        }
        let holds_answer = answer.id != region_id && self.peers.contains_key(&answer.id);
        let ours = p.region().clone();
        match stale::judge(&ours, self.store_id, answer, holds_answer) {
            Verdict::Keep => Ok(false),
            Verdict::Removed { conf_ver } => {
                self.destroy(region_id, conf_ver)?;
                Ok(true)
            }
            Verdict::MergedAway => {
                self.destroy(region_id, ours.epoch().conf_ver)?;
                Ok(true)
            }
        }
    }

    /// The notices to send (see [`step`](Self::step)): (region, store).
    pub fn take_tombstones(&mut self) -> Vec<(RegionTag, u64)> {
        std::mem::take(&mut self.tombstones)
    }

    /// Removes this store's replica of `region_id`, removed from the
    /// region at membership version `conf_ver`: its Raft state, and its
    /// data unless another replica here holds part of the range (a stale
    /// range), in one write with a tombstone that keeps stale leaders from
    /// creating it again. Its observers forget the region.
    fn destroy(&mut self, region_id: u64, conf_ver: u64) -> Result<()> {
        let Some(peer) = self.peers.remove(&region_id) else {
            return Ok(());
        };
        let region = peer.region().clone();
        drop(peer);
        // Out of the view before the data goes: a read that took its engine
        // snapshot after the delete then finds the range gone when it checks
        // (and routes again), instead of reading an empty range.
        self.view.remove(region_id);
        let mut batch = WriteBatch::new();
        let (start, end) = keys::one_region_range(region_id);
        batch.delete_range(Cf::Raft, start, end);
        batch.put(
            Cf::Raft,
            keys::tombstone_key(region_id),
            conf_ver.to_be_bytes().to_vec(),
        );
        let shared = (self.peers.values()).any(|p| p.region().overlaps(&region));
        if self.config.stores_data && region.is_initialized() && !shared {
            crate::snapshot::clear(self.engine.as_ref(), &region, &mut batch)?;
        }
        self.engine.write(&batch, WriteOptions { sync: true })?;
        self.unknown.remove(&region_id);
        self.held_acks.retain(|(t, _)| t.region_id != region_id);
        for o in &self.observers {
            o.on_destroyed(&region, shared || !region.is_initialized());
        }
        tracing::info!(
            region_id,
            conf_ver,
            store = self.store_id,
            "replica removed"
        );
        Ok(())
    }

    /// Handles every peer's Ready: persists, applies, opens the peers that
    /// splits created. Returns the messages to send, by region. Snapshot
    /// delivery is not tracked: snapshots are reported as sent, and the
    /// leader probes again (and resends) if the follower still lacks one.
    pub fn handle_ready(&mut self) -> Result<Vec<(RegionTag, Vec<Message>)>> {
        let mut out = Vec::new();
        let mut send = |region_id, msgs| out.push((region_id, msgs));
        self.handle_ready_with(&mut send)?;
        // Driven by hand: no timer to wait for.
        self.flush_acks(Instant::now(), true, &mut send)?;
        Ok(out)
    }

    /// Handles every peer's Ready with one write, and at most one sync, for
    /// all their new log entries (group commit across regions). `send`
    /// gets each region's messages: leaders' appends before the write, the
    /// rest after.
    pub fn handle_ready_with(
        &mut self,
        send: &mut dyn FnMut(RegionTag, Vec<Message>),
    ) -> Result<()> {
        let mut batch = WriteBatch::new();
        let mut pending = Vec::new();
        let mut must_sync = false;
        for (region_id, p) in self.peers.iter_mut() {
            if let Some(mut ready) = p.begin_ready(&mut batch)? {
                must_sync |= ready.must_sync;
                let early = std::mem::take(&mut ready.early);
                if !early.is_empty() {
                    report_snapshots(p, &early);
                    send(tag_of(p), early);
                }
                pending.push((*region_id, ready));
            }
        }
        // A learner that keeps no data is not part of any quorum: its log
        // may be synced a little later, as long as nothing acknowledges an
        // entry before that (see `flush_acks`).
        let sync = must_sync && self.config.stores_data;
        if !batch.is_empty() {
            self.engine.write(&batch, WriteOptions { sync })?;
        }
        let mut created = Vec::new();
        let mut removed = Vec::new();
        for (region_id, ready) in pending {
            let Some(p) = self.peers.get_mut(&region_id) else {
                continue;
            };
            let msgs = p.finish_ready(ready)?;
            self.finish_merges(region_id)?;
            let Some(p) = self.peers.get_mut(&region_id) else {
                continue;
            };
            for right in p.take_splits() {
                created.push((right, p.is_leader()));
            }
            self.view.update(p.region());
            if p.is_removed() {
                removed.push((region_id, p.region().epoch().conf_ver));
            }
            let tag = tag_of(p);
            let msgs = if self.config.stores_data {
                msgs
            } else {
                let (acks, rest): (Vec<Message>, Vec<Message>) = msgs
                    .into_iter()
                    .partition(|m| m.get_msg_type() == MessageType::MsgAppendResponse);
                if !acks.is_empty() {
                    self.held_acks.push((tag, acks));
                    self.acks_due
                        .get_or_insert_with(|| Instant::now() + ACK_SYNC_INTERVAL);
                }
                rest
            };
            if !msgs.is_empty() {
                report_snapshots(p, &msgs);
                send(tag, msgs);
            }
        }
        for (region_id, conf_ver) in removed {
            self.destroy(region_id, conf_ver)?;
        }
        // Leases change with ticks and elections too, not only with a Ready.
        for (region_id, p) in self.peers.iter() {
            self.view.set_leadership(*region_id, leadership_of(p));
        }
        for (right, was_leader) in created {
            // Replaces an empty peer a message created meanwhile, if any.
            self.unknown.remove(&right.id);
            self.peers.remove(&right.id);
            self.open_peer(right.id, &[], &[])?;
            if was_leader {
                // The parent's leader leads the new region first: no wait
                // for an election timeout.
                if let Some(p) = self.peers.get_mut(&right.id) {
                    let _ = p.campaign();
                }
            }
        }
        Ok(())
    }
}

impl<E: Engine> Regions<E> {
    /// Lets `target` apply the CommitMerges its apply stopped at: first this
    /// store's replica of each source applies its own log up to the
    /// prepare, then the target goes on, then the absorbed source is
    /// destroyed (its Raft state; its data is the target's now).
    fn finish_merges(&mut self, target: u64) -> Result<()> {
        loop {
            let held = match self.peers.get(&target) {
                Some(p) => p.held_merge()?,
                None => None,
            };
            let Some(held) = held else {
                return Ok(());
            };
            if held.applies {
                let source =
                    self.peers
                        .get_mut(&held.source)
                        .ok_or_else(|| crate::Error::Corruption {
                            what: "merge source",
                            detail: format!(
                                "region {target} absorbs region {}, which store {} lacks",
                                held.source, self.store_id
                            ),
                        })?;
                source.apply_own_log_to(held.prepare_index)?;
                // The source may itself have stopped at a merge it absorbs.
                self.finish_merges(held.source)?;
                let applied = (self.peers.get(&held.source)).map_or(0, |p| p.applied_index());
                if applied < held.prepare_index {
                    return Err(crate::Error::Corruption {
                        what: "merge source log",
                        detail: format!(
                            "region {} reached {applied} of the prepare at {}",
                            held.source, held.prepare_index
                        ),
                    });
                }
            }
            let Some(p) = self.peers.get_mut(&target) else {
                return Ok(());
            };
            p.resume_apply();
            let merged = p.take_merged();
            self.view.update(p.region());
            for source in merged {
                let conf_ver = (self.peers.get(&source)).map_or(0, |s| s.region().epoch().conf_ver);
                self.destroy(source, conf_ver)?;
            }
        }
    }

    /// When held acknowledgements are due (see [`flush_acks`](Self::flush_acks)).
    pub fn acks_due(&self) -> Option<Instant> {
        self.acks_due
    }

    /// Syncs the log and sends the acknowledgements held since the last
    /// sync, if they are due at `now` (or `force`).
    pub fn flush_acks(
        &mut self,
        now: Instant,
        force: bool,
        send: &mut dyn FnMut(RegionTag, Vec<Message>),
    ) -> Result<()> {
        match self.acks_due {
            Some(due) if force || now >= due => {}
            _ => return Ok(()),
        }
        self.engine.sync()?;
        self.acks_due = None;
        for (tag, acks) in std::mem::take(&mut self.held_acks) {
            send(tag, acks);
        }
        Ok(())
    }
}

/// The tag of `peer`'s messages.
fn tag_of<E: Engine>(peer: &Peer<E>) -> RegionTag {
    RegionTag {
        region_id: peer.region().id,
        conf_ver: peer.region().epoch().conf_ver,
    }
}

/// Tells `peer` which of its outgoing messages carry a snapshot.
fn report_snapshots<E: Engine>(peer: &mut Peer<E>, msgs: &[Message]) {
    for m in msgs {
        if m.get_msg_type() == MessageType::MsgSnapshot {
            peer.report_snapshot_sent(m.to);
        }
    }
}

/// Whether `engine` holds any region (a store opened on it does not
/// bootstrap).
pub fn has_regions<E: Engine>(engine: &E) -> Result<bool> {
    Ok(!stored_regions(engine)?.is_empty())
}

/// The ids of the regions whose descriptors `engine` holds.
fn stored_regions<E: Engine>(engine: &E) -> Result<Vec<u64>> {
    let snap = engine.snapshot();
    let mut ids = Vec::new();
    let (start, end) = crate::keys::region_range();
    let mut it = snap.iter(Cf::Raft, IterOptions::range(start.clone(), end))?;
    let mut ok = it.seek(&start)?;
    while ok {
        let Some(id) = crate::keys::region_of(it.key()) else {
            break;
        };
        if snap
            .get(Cf::Raft, &crate::keys::region_state_key(id))?
            .is_some()
        {
            ids.push(id);
        }
        match id.checked_add(1) {
            Some(next) => ok = it.seek(&crate::keys::region_prefix(next))?,
            None => break,
        }
    }
    Ok(ids)
}

/// How big a region may grow before it splits: user keys, and bytes of its
/// data (keys and values of every version, in both data column families).
/// Zero means no limit of that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitLimits {
    pub keys: u64,
    pub bytes: u64,
}

impl SplitLimits {
    fn exceeded(&self, keys: u64, bytes: u64) -> bool {
        (self.keys > 0 && keys > self.keys) || (self.bytes > 0 && bytes > self.bytes)
    }
}

/// What a split check found: where to split, if the region is too big, and
/// how many user keys and bytes it counted (all of them when there is no
/// split; up to the limit that was passed otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitCheck {
    pub split_key: Option<Vec<u8>>,
    pub keys: u64,
    pub bytes: u64,
}

/// Where to split `region` if it holds more user keys or bytes than
/// `limits` allow: the key that starts the second half of the limit passed
/// (by count of keys in the `write` column family, each key once however
/// many versions it has; by bytes of `write` and `default` entries, each
/// value counted at its key). Costs one scan of the region up to the limit.
pub fn find_split_key<E: Engine>(
    engine: &E,
    region: &Region,
    limits: SplitLimits,
) -> Result<SplitCheck> {
    let snap = engine.snapshot();
    let (start, end) = region.data_bounds();
    let opts = IterOptions {
        lower: Some(start.clone()),
        upper: end,
        ..IterOptions::default()
    };
    let mut writes = snap.iter(Cf::Write, opts.clone())?;
    let mut values = snap.iter(Cf::Default, opts)?;
    let (mut ok, mut values_ok) = (writes.seek(&start)?, values.seek(&start)?);
    let (mut keys, mut bytes, mut previous) = (0u64, 0u64, Vec::new());
    // The keys that start the second half by count and by bytes.
    let (mut middle_by_keys, mut middle_by_bytes) = (None, None);
    while ok {
        let (encoded, _) = duet_storage::mvcc::split_ts(writes.key())?;
        if encoded != previous.as_slice() {
            keys += 1;
            previous = encoded.to_vec();
            if keys == limits.keys.div_ceil(2) + 1 {
                middle_by_keys = Some(duet_storage::mvcc::decode_key(encoded)?);
            }
            if middle_by_bytes.is_none() && limits.bytes > 0 && bytes >= limits.bytes / 2 {
                middle_by_bytes = Some(duet_storage::mvcc::decode_key(encoded)?);
            }
        }
        bytes += (writes.key().len() + writes.value().len()) as u64;
        // The values of this key and of any before it (a lock's value
        // written before its commit record).
        while values_ok && duet_storage::mvcc::split_ts(values.key())?.0 <= encoded {
            bytes += (values.key().len() + values.value().len()) as u64;
            values_ok = values.next()?;
        }
        if limits.exceeded(keys, bytes) {
            let middle = if limits.keys > 0 && keys > limits.keys {
                middle_by_keys
            } else {
                middle_by_bytes
            };
            return Ok(SplitCheck {
                split_key: middle.filter(|m| region.split(m, u64::MAX).is_some()),
                keys,
                bytes,
            });
        }
        ok = writes.next()?;
    }
    while values_ok {
        bytes += (values.key().len() + values.value().len()) as u64;
        values_ok = values.next()?;
    }
    Ok(SplitCheck {
        split_key: None,
        keys,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(ranges: &[(&[u8], &[u8])]) -> RegionView {
        let view = RegionView::default();
        for (i, (start, end)) in ranges.iter().enumerate() {
            let mut r = Region::bootstrap(i as u64 + 1, &[1], &[]);
            r.start_key = start.to_vec();
            r.end_key = end.to_vec();
            (view.regions.write().unwrap()).insert(r.id, r);
        }
        view
    }

    #[test]
    fn covers_needs_every_key_of_the_range() {
        let whole = view(&[(b"", b"g"), (b"g", b"p"), (b"p", b"")]);
        assert!(whole.covers(b"a", b"z"));
        assert!(whole.covers(b"", b""));
        let gap = view(&[(b"", b"g"), (b"p", b"")]);
        assert!(gap.covers(b"a", b"f"));
        assert!(gap.covers(b"p", b""));
        assert!(!gap.covers(b"a", b"h"));
        assert!(!gap.covers(b"g", b"q"));
        let tail_missing = view(&[(b"", b"g"), (b"g", b"p")]);
        assert!(tail_missing.covers(b"h", b"p"));
        assert!(!tail_missing.covers(b"h", b"q"));
        assert!(!tail_missing.covers(b"h", b""));
        assert!(!view(&[]).covers(b"a", b"b"));
    }
}
