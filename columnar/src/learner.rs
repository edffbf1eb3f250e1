//! The replica's side of the node's learner store: a Raft store whose peers
//! are learners of every region and keep no data of their own (see
//! `duet_raft::peer::PeerConfig::stores_data`). [`Learner`] observes their
//! apply and hands every entry to the [`Replica`] on a thread of its own,
//! in log order, so a slow replica never holds up the row store's apply;
//! [`LearnerReads`] gives a columnar read its read index through the same
//! peers.
//!
//! Where the log alone cannot build the copy (no usable checkpoint at
//! start, a learner peer caught up by a Raft snapshot, a table that just
//! got a replica) the thread copies from the node's row store, once the row
//! store has applied at least as far as the replica in every region; the
//! replica then skips the entries that copy already holds.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender};
use duet_raft::peer::{Applied, ApplyObserver, Installed};
use duet_raft::store::RaftStore;
use duet_storage::engine::{Engine, Modify};

use crate::error::{Error, Result};
use crate::replica::{ReadPoint, Replica, applied_indices};

/// One entry for the learner's thread.
enum Job {
    /// A command's writes.
    Writes(Vec<Modify>),
    /// Rebuild the copy from the row store (the peer installed a snapshot,
    /// or the replica started with no usable checkpoint).
    Rebuild,
    /// An entry with nothing for the replica.
    Skip,
    /// A command whose writes the peer could not tell.
    Unreadable,
}

/// A job with the region and log index of its entry.
type Queued = (u64, u64, Job);

/// Entries the learner may fall behind the learner peers' apply by before
/// their apply waits for it.
const LEARNER_QUEUE: usize = 65_536;

/// How long a copy from the row store waits for the row store to apply as
/// far as the replica; past it the learner stops (its tables are then
/// served by the row store).
const ROW_STORE_WAIT: Duration = Duration::from_secs(60);

/// How long a read waits for a region the learner store does not hold.
const MISSING_REGION_WAIT: Duration = Duration::from_secs(2);

/// Feeds a [`Replica`] from the learner peers' apply on a thread of its
/// own, in log order.
pub struct Learner<E: Engine> {
    replica: Arc<Replica>,
    jobs: Option<Sender<Queued>>,
    worker: Option<JoinHandle<()>>,
    _rows: std::marker::PhantomData<E>,
}

impl<E: Engine> Learner<E> {
    /// A learner feeding `replica`, copying from `rows` (the node's row
    /// store) when the log cannot. A replica that
    /// [needs a rebuild](Replica::needs_rebuild) is rebuilt first.
    pub fn new(replica: Arc<Replica>, rows: Arc<E>) -> Self {
        let (tx, rx) = crossbeam::channel::bounded(LEARNER_QUEUE);
        let r = Arc::clone(&replica);
        let worker = std::thread::Builder::new()
            .name("columnar-learner".into())
            .spawn(move || work(&r, rows.as_ref(), &rx))
            .expect("spawn the columnar learner");
        let learner = Learner {
            replica,
            jobs: Some(tx),
            worker: Some(worker),
            _rows: std::marker::PhantomData,
        };
        if learner.replica.needs_rebuild() {
            learner.send(0, 0, Job::Rebuild);
        }
        learner
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
fn work<E: Engine>(replica: &Replica, rows: &E, rx: &Receiver<Queued>) {
    while let Ok((region, index, job)) = rx.recv() {
        let mut handled = 1;
        let outcome = match job {
            Job::Writes(writes) => replica.apply_entry(region, index, &writes).and_then(|new| {
                if new.is_empty() {
                    return Ok(());
                }
                let snap = caught_up(rows, &replica.positions())?;
                new.into_iter().try_for_each(|t| replica.backfill(&snap, t))
            }),
            Job::Rebuild => {
                let mut positions = replica.positions();
                let mut note = |r: u64, i: u64| {
                    if r != 0 {
                        let at = positions.entry(r).or_default();
                        *at = (*at).max(i);
                    }
                };
                note(region, index);
                // What is queued behind it is in the copy it reads.
                while let Ok((r, i, _)) = rx.try_recv() {
                    note(r, i);
                    handled += 1;
                }
                caught_up(rows, &positions).and_then(|snap| replica.rebuild_from(&snap))
            }
            Job::Skip => {
                replica.note_applied(region, index);
                Ok(())
            }
            Job::Unreadable => Err(Error::Internal(
                "a command logged before effects were: its writes are unknown here".into(),
            )),
        };
        if let Err(e) = outcome {
            replica.stop(region, index, &e);
        }
        for _ in 0..handled {
            replica.done();
        }
    }
}

/// A snapshot of the row store once it has applied at least `positions`
/// (region → index) in every region.
fn caught_up<E: Engine>(rows: &E, positions: &HashMap<u64, u64>) -> Result<E::Snapshot> {
    let deadline = Instant::now() + ROW_STORE_WAIT;
    loop {
        let snap = rows.snapshot();
        let applied = applied_indices(&snap)?;
        let behind = positions
            .iter()
            .filter(|(r, i)| applied.get(r).is_none_or(|a| a < i))
            .count();
        if behind == 0 {
            return Ok(snap);
        }
        if Instant::now() >= deadline {
            return Err(Error::Internal(format!(
                "the row store did not apply as far as the columnar learner in {behind} regions within {}s",
                ROW_STORE_WAIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

impl<E: Engine> Drop for Learner<E> {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

impl<E: Engine> ApplyObserver for Learner<E> {
    fn on_applied(&self, region_id: u64, index: u64, _term: u64, applied: &Applied<'_>) {
        let job = match applied {
            Applied::Command { writes, ok: true } => Job::Writes(writes.to_vec()),
            Applied::Opaque => Job::Unreadable,
            _ => Job::Skip,
        };
        self.send(region_id, index, job);
    }

    fn on_snapshot(&self, region_id: u64, index: u64, _term: u64, _installed: &Installed<'_>) {
        self.send(region_id, index, Job::Rebuild);
    }

    fn progress(&self, region_id: u64) -> Option<u64> {
        self.replica.applied(region_id)
    }

    fn durable(&self, region_id: u64) -> Option<u64> {
        self.replica.durable_index(region_id)
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

impl<E: Engine> ReadPoint for LearnerReads<E> {
    /// Asks every region's leader for its commit index through the learner
    /// peers (all at once) and returns once each peer applied that far; a
    /// region that cannot answer yet (no leader known, not created here
    /// yet) is asked again until `wait` runs out.
    fn catch_up(&self, wait: Duration) -> Result<()> {
        let start = Instant::now();
        let deadline = start + wait;
        let mut ids: BTreeSet<u64> = self
            .learners
            .view()
            .regions()
            .iter()
            .map(|r| r.id)
            .collect();
        ids.extend(self.voters.view().regions().iter().map(|r| r.id));
        let (tx, rx) = crossbeam::channel::unbounded();
        let ask = |id: u64| {
            let tx = tx.clone();
            self.learners.read_index_async(
                id,
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

    fn lag(&self) -> Option<u64> {
        let replica: HashMap<u64, u64> = self
            .learners
            .status()
            .into_iter()
            .filter_map(|r| Some((r.region_id, r.observer_applied?)))
            .collect();
        Some(
            self.voters
                .status()
                .iter()
                .map(|r| {
                    let done = replica.get(&r.region_id).copied().unwrap_or(0);
                    r.applied_index.saturating_sub(done)
                })
                .sum(),
        )
    }
}
