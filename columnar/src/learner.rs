//! The replica's side of the node's learner store: a Raft store whose peers
//! are learners of every region and keep no data of their own (see
//! `duet_raft::peer::PeerConfig::stores_data`). [`Learner`] observes their
//! apply and hands every entry, and every snapshot they install, to the
//! [`Replica`] on a thread of its own, in log order, so a slow replica
//! never holds up the row store's apply; it asks for a snapshot of a region
//! whose data the replica lacks ([`Replica::wants_snapshot`]).
//! [`LearnerReads`] gives a columnar read its read index through the same
//! peers.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender};
use duet_raft::peer::{Applied, ApplyObserver, Installed};
use duet_raft::region::Region;
use duet_raft::store::RaftStore;
use duet_storage::engine::{Engine, Modify};

use crate::error::{Error, Result};
use crate::replica::{ReadPoint, Replica};

/// One entry for the learner's thread.
enum Job {
    /// A command's writes.
    Writes(Vec<Modify>),
    /// A snapshot's data for the key range `[start, end)`, which replaces
    /// the replica's copy of it.
    Install {
        start: Vec<u8>,
        end: Vec<u8>,
        data: Vec<Modify>,
    },
    /// The learner store no longer holds the region: forget its position,
    /// and its rows in `[start, end)` unless another region holds them.
    Forget {
        start: Vec<u8>,
        end: Vec<u8>,
        data_kept: bool,
    },
    /// An entry with nothing for the replica.
    Skip,
    /// A command whose writes the peer could not tell.
    Unreadable,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A job with the region and log index of its entry.
type Queued = (u64, u64, Job);

/// Entries the learner may fall behind the learner peers' apply by before
/// their apply waits for it.
const LEARNER_QUEUE: usize = 65_536;

/// How long a read waits for a region the learner store does not hold.
const MISSING_REGION_WAIT: Duration = Duration::from_secs(2);

/// Feeds a [`Replica`] from the learner peers' apply on a thread of its
/// own, in log order.
pub struct Learner {
    replica: Arc<Replica>,
    /// Regions whose installed snapshot is queued for the replica: they
    /// want no other.
    installing: Arc<Mutex<HashSet<u64>>>,
    jobs: Option<Sender<Queued>>,
    worker: Option<JoinHandle<()>>,
}

impl Learner {
    /// A learner feeding `replica`.
    pub fn new(replica: Arc<Replica>) -> Self {
        let (tx, rx) = crossbeam::channel::bounded(LEARNER_QUEUE);
        let r = Arc::clone(&replica);
        let installing = Arc::new(Mutex::new(HashSet::new()));
        let queued = Arc::clone(&installing);
        let worker = std::thread::Builder::new()
            .name("columnar-learner".into())
            .spawn(move || work(&r, &rx, &queued))
            .expect("spawn the columnar learner");
        Learner {
            replica,
            installing,
            jobs: Some(tx),
            worker: Some(worker),
        }
    }

    fn send(&self, region_id: u64, index: u64, job: Job) {
        self.replica.queued();
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|tx| tx.send((region_id, index, job)).is_ok());
        if !sent {
            self.replica.done();
        }
    }
}

/// The learner's thread.
fn work(replica: &Replica, rx: &Receiver<Queued>, installing: &Mutex<HashSet<u64>>) {
    while let Ok((region, index, job)) = rx.recv() {
        let outcome = match job {
            Job::Writes(writes) => replica.apply_entry(region, index, &writes),
            Job::Install { start, end, data } => {
                let done = replica.install_region(region, index, &start, &end, &data);
                lock(installing).remove(&region);
                done
            }
            Job::Skip => {
                replica.note_applied(region, index);
                Ok(())
            }
            Job::Forget {
                start,
                end,
                data_kept,
            } => replica.forget_region(region, &start, &end, data_kept),
            Job::Unreadable => Err(Error::Internal(
                "a command logged before effects were: its writes are unknown here".into(),
            )),
        };
        if let Err(e) = outcome {
            replica.stop(region, index, &e);
        }
        replica.done();
    }
}

impl Drop for Learner {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

impl ApplyObserver for Learner {
    fn on_applied(&self, region_id: u64, index: u64, _term: u64, applied: &Applied<'_>) {
        let job = match applied {
            Applied::Command { writes, ok: true } => Job::Writes(writes.to_vec()),
            Applied::Opaque => Job::Unreadable,
            _ => Job::Skip,
        };
        self.send(region_id, index, job);
    }

    fn on_snapshot(&self, region_id: u64, index: u64, _term: u64, installed: &Installed<'_>) {
        lock(&self.installing).insert(region_id);
        let job = Job::Install {
            start: installed.region.start_key.clone(),
            end: installed.region.end_key.clone(),
            data: installed.data.to_vec(),
        };
        self.send(region_id, index, job);
    }

    fn on_destroyed(&self, region: &Region, data_kept: bool) {
        let job = Job::Forget {
            start: region.start_key.clone(),
            end: region.end_key.clone(),
            data_kept,
        };
        self.send(region.id, 0, job);
    }

    fn progress(&self, region_id: u64) -> Option<u64> {
        self.replica.applied(region_id)
    }

    fn durable(&self, region_id: u64) -> Option<u64> {
        self.replica.durable_index(region_id)
    }

    fn wants_snapshot(&self, region: &Region) -> bool {
        !lock(&self.installing).contains(&region.id)
            && self
                .replica
                .wants_snapshot(&region.start_key, &region.end_key)
    }
}

/// Read indexes through the node's learner peers.
pub struct LearnerReads<E: Engine> {
    learners: Arc<RaftStore<E>>,
    /// The node's row store: a region it holds that the learner store
    /// does not hold yet is waited for as well.
    voters: Arc<RaftStore<E>>,
}

impl<E: Engine> LearnerReads<E> {
    pub fn new(learners: Arc<RaftStore<E>>, voters: Arc<RaftStore<E>>) -> Self {
        LearnerReads { learners, voters }
    }
}

impl<E: Engine> LearnerReads<E> {
    /// The regions of the row store that list this node's learner store
    /// as a peer (in a cluster, the placement driver may put a region's
    /// columnar learners on other nodes).
    fn placed_here(&self) -> impl Iterator<Item = Region> {
        let me = self.learners.store_id();
        (self.voters.view().regions().into_iter())
            .filter(move |r| r.peers.iter().any(|p| p.store_id == me))
    }
}

impl<E: Engine> ReadPoint for LearnerReads<E> {
    /// Asks every region's leader for its commit index through the learner
    /// peers (all at once) and returns once each peer applied that far; a
    /// region that cannot answer yet (no leader known, not created here
    /// yet) is asked again until `wait` runs out.
    fn catch_up(&self, wait: Duration, read_ts: u64) -> Result<()> {
        let start = Instant::now();
        let deadline = start + wait;
        let mut ids: BTreeSet<u64> = self
            .learners
            .view()
            .regions()
            .iter()
            .map(|r| r.id)
            .collect();
        ids.extend(self.placed_here().map(|r| r.id));
        let (tx, rx) = crossbeam::channel::unbounded();
        let ask = |id: u64| {
            let tx = tx.clone();
            self.learners.read_index_async_at(
                id,
                read_ts,
                Box::new(move |r| {
                    let _ = tx.send((id, r));
                }),
            );
        };
        for id in &ids {
            ask(*id);
        }
        let mut left = ids.len();
        let mut last = String::new();
        while left > 0 {
            match rx.recv_deadline(deadline) {
                Ok((_, Ok(_))) => left -= 1,
                Ok((id, Err(e))) => {
                    // A region this store does not hold yet is usually one
                    // a split just made; past a short wait, the learner is
                    // not part of it (it is being added) and the read goes
                    // elsewhere.
                    if matches!(e, duet_raft::Error::RegionNotFound(_))
                        && start.elapsed() >= MISSING_REGION_WAIT
                    {
                        return Err(Error::NoReadIndex {
                            waited: start.elapsed(),
                            regions: left,
                            detail: e.to_string(),
                        });
                    }
                    last = e.to_string();
                    std::thread::sleep(
                        Duration::from_millis(5)
                            .min(deadline.saturating_duration_since(Instant::now())),
                    );
                    ask(id);
                }
                Err(_) => {
                    return Err(Error::NoReadIndex {
                        waited: start.elapsed(),
                        regions: left,
                        detail: last,
                    });
                }
            }
        }
        Ok(())
    }

    /// The learner store must hold every region over the range; until it
    /// does (its regions are placed elsewhere, or its learner is still
    /// being added) the table is read from the row store.
    fn covers(&self, start: &[u8], end: &[u8]) -> bool {
        self.learners.view().covers(start, end)
    }

    fn lag(&self) -> Option<u64> {
        let replica: HashMap<u64, u64> = self
            .learners
            .status()
            .into_iter()
            .filter_map(|r| Some((r.region_id, r.observer_applied?)))
            .collect();
        let placed: BTreeSet<u64> = self.placed_here().map(|r| r.id).collect();
        Some(
            self.voters
                .status()
                .iter()
                .filter(|r| placed.contains(&r.region_id))
                .map(|r| {
                    let done = replica.get(&r.region_id).copied().unwrap_or(0);
                    r.applied_index.saturating_sub(done)
                })
                .sum(),
        )
    }
}
