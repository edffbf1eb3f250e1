//! Cluster timestamps: [`ClusterTso`] hands them out on the first region's
//! leader only, each window above a high-water mark replicated through the
//! log (`TsoLimit`), so a new leader starts above everything an old one
//! issued; other nodes forward their requests to the leader.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender};
use duet_storage::engine::{Cf, Engine};
use duet_storage::mvcc::{TS_LOGICAL_BITS, compose_ts};
use duet_storage::tso::{LIMIT_KEY, TimestampSource, wall_clock_ms};
use duet_storage::txn::commands::TsoLimit;

use super::{PAUSE, RETRY_FOR};
use crate::error::Error;
use crate::regions::Leadership;
use crate::rpc::messages::Request;
use crate::store::{FIRST_REGION, RaftStore};
use crate::transport::grpc::GrpcTransport;

struct TsoState {
    /// The term this node leads in, if it has served timestamps in it.
    term: u64,
    physical: u64,
    /// When `physical` last moved: while the wall clock reads behind it
    /// (stepped, or an earlier leader's ran ahead), it moves on at the
    /// monotonic pace from here, so that lock lifetimes keep running out.
    advanced: Instant,
    logical: u64,
    limit: u64,
}

/// Cluster timestamps: served by the region leader, forwarded otherwise.
pub struct ClusterTso<E: Engine> {
    store: Arc<RaftStore<E>>,
    route: Arc<Route>,
    state: Mutex<TsoState>,
    window_ms: u64,
    /// The queue of the thread that forwards requests to the leader, made
    /// on first use.
    asks: OnceLock<Sender<Ask>>,
}

/// How a node that does not lead the first region reaches the one that
/// does.
struct Route {
    transport: Option<Arc<GrpcTransport>>,
    /// The first region's leader as last learned, for a node that holds no
    /// replica of it (0: unknown).
    first_leader: AtomicU64,
    /// Which known node to ask next when the leader is unknown.
    rotation: AtomicUsize,
}

/// One caller's request for `n` timestamps, waiting for the last of them.
struct Ask {
    n: u64,
    reply: Sender<Result<u64, String>>,
}

/// At most this many timestamps in one forwarded request (the leader
/// refuses a batch that does not fit the logical bits).
const MAX_FORWARDED: u64 = 1 << (TS_LOGICAL_BITS - 2);

impl<E: Engine> ClusterTso<E> {
    pub fn new(store: Arc<RaftStore<E>>, transport: Option<Arc<GrpcTransport>>) -> Self {
        let state = TsoState {
            term: 0,
            physical: 0,
            advanced: Instant::now(),
            logical: 0,
            limit: 0,
        };
        ClusterTso {
            store,
            route: Arc::new(Route {
                transport,
                first_leader: AtomicU64::new(0),
                rotation: AtomicUsize::new(0),
            }),
            state: Mutex::new(state),
            window_ms: 3000,
            asks: OnceLock::new(),
        }
    }

    /// The node leading the first region (which serves the oracle and the
    /// placement driver), as this node knows it: from its own replica, or
    /// as last learned from another node.
    pub fn first_leader(&self) -> Option<u64> {
        if let Some(r) = first_region(&self.store) {
            return if r.is_leader {
                Some(self.store.store_id())
            } else {
                r.leader
            };
        }
        self.route.learned()
    }

    /// Records the first region's leader as another node named it.
    pub fn learn_first_leader(&self, leader: Option<u64>) {
        self.route.learn(leader);
    }

    /// Asks the leader for `n` timestamps, in one request with those of
    /// every other caller waiting meanwhile: under load a follower node
    /// sends one request per round trip, not one per transaction.
    fn forward(&self, n: u64) -> Result<u64, String> {
        let asks = self.asks.get_or_init(|| {
            let (tx, rx) = crossbeam::channel::unbounded();
            let route = Arc::clone(&self.route);
            let store = Arc::clone(&self.store);
            let spawned = std::thread::Builder::new()
                .name("tso-forward".into())
                .spawn(move || forward_batches(&route, &store, &rx));
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start the timestamp forwarder");
            }
            tx
        });
        let (reply, answer) = crossbeam::channel::bounded(1);
        asks.send(Ask { n, reply })
            .map_err(|_| "the timestamp forwarder stopped".to_string())?;
        answer
            .recv_timeout(FORWARD_TIMEOUT + Duration::from_millis(100))
            .unwrap_or_else(|_| Err("no timestamp in time".into()))
    }

    /// Allocates on the leader of `term`.
    pub(super) fn allocate(&self, n: u64, term: u64) -> Result<u64, Error> {
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
                advanced: Instant::now(),
                logical: 0,
                limit,
            };
        }
        let flowing = st.physical + st.advanced.elapsed().as_millis() as u64;
        let now = wall_clock_ms().max(flowing);
        if now > st.physical {
            st.physical = now;
            st.advanced = Instant::now();
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
                _ => self.forward(n),
            };
            match attempt {
                Ok(ts) => return Ok(ts),
                Err(e) if Instant::now() >= deadline => return Err(duet_storage::Error::Tso(e)),
                Err(_) => std::thread::sleep(PAUSE),
            }
        }
    }
}

/// How long one forwarded request may take.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);

/// The forwarder's loop: takes every request queued, asks the leader for
/// all of them at once, and hands each caller its consecutive share (the
/// leader's answer is the last of the batch). Requests that arrive while
/// one is in flight go in the next, so each caller's timestamps are issued
/// after it asked.
fn forward_batches<E: Engine>(route: &Route, store: &RaftStore<E>, asks: &Receiver<Ask>) {
    while let Ok(first) = asks.recv() {
        let mut batch = vec![first];
        let mut total = batch[0].n;
        while total < MAX_FORWARDED {
            match asks.try_recv() {
                Ok(a) => {
                    total += a.n;
                    batch.push(a);
                }
                Err(_) => break,
            }
        }
        match route.ask(store, total) {
            Ok(last) => {
                let ns: Vec<u64> = batch.iter().map(|a| a.n).collect();
                for (a, ts) in batch.into_iter().zip(shares(last, &ns)) {
                    let _ = a.reply.send(Ok(ts));
                }
            }
            Err(e) => {
                for a in batch {
                    let _ = a.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Splits the batch of timestamps ending at `last` among callers asking
/// for `ns` of them, in order: the last timestamp of each one's share.
fn shares(last: u64, ns: &[u64]) -> Vec<u64> {
    let mut next = last + 1 - ns.iter().sum::<u64>();
    (ns.iter())
        .map(|n| {
            next += n;
            next - 1
        })
        .collect()
}

impl Route {
    fn learned(&self) -> Option<u64> {
        Some(self.first_leader.load(Ordering::Relaxed)).filter(|l| *l != 0)
    }

    fn learn(&self, leader: Option<u64>) {
        (self.first_leader).store(leader.unwrap_or(0), Ordering::Relaxed);
    }

    /// Asks whoever leads the first region for `n` timestamps: the leader
    /// this node's replica names, else the one last learned, else each
    /// known node in turn until one names it.
    fn ask<E: Engine>(&self, store: &RaftStore<E>, n: u64) -> Result<u64, String> {
        let to = match store.view().leadership(FIRST_REGION) {
            Some(r) => r.leader.filter(|l| *l != store.store_id()),
            None => self.learned().or_else(|| {
                let nodes = (self.transport.as_ref()).map_or_else(Vec::new, |t| t.known_nodes());
                let at = self.rotation.fetch_add(1, Ordering::Relaxed) % nodes.len().max(1);
                nodes.get(at).copied()
            }),
        };
        let to = to.ok_or("no leader")?;
        let t = self.transport.as_ref().ok_or("no other node")?;
        let request = Request {
            region_id: FIRST_REGION,
            ts_count: u32::try_from(n).unwrap_or(u32::MAX),
            ..Request::default()
        };
        match t.call(to, request, FORWARD_TIMEOUT) {
            Ok(reply) if reply.ts > 0 => {
                self.learn(Some(to));
                Ok(reply.ts)
            }
            Ok(reply) => {
                self.learn(Some(reply.leader).filter(|l| *l != to && *l != 0));
                Err(reply.error)
            }
            Err(e) => {
                self.learn(None);
                Err(e)
            }
        }
    }
}

/// Who leads the first region, which serves the oracle, as this store's
/// replica of it last knew (none: no replica here). Read from the store's
/// view, with no round through its thread.
pub(super) fn first_region<E: Engine>(store: &RaftStore<E>) -> Option<Leadership> {
    store.view().leadership(FIRST_REGION)
}

#[cfg(test)]
mod tests {
    use super::shares;

    #[test]
    fn a_forwarded_batch_is_shared_out_in_order_without_overlap() {
        // Timestamps 91..=100 for callers asking 1, 4, 2 and 3.
        assert_eq!(shares(100, &[1, 4, 2, 3]), [91, 95, 97, 100]);
        assert_eq!(shares(7, &[1]), [7]);
    }
}
