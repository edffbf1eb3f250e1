//! Cluster timestamps: [`ClusterTso`] hands them out on the first region's
//! leader only, each window above a high-water mark replicated through the
//! log (`TsoLimit`), so a new leader starts above everything an old one
//! issued; other nodes forward their requests to the leader.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use duet_storage::engine::{Cf, Engine};
use duet_storage::mvcc::{TS_LOGICAL_BITS, compose_ts};
use duet_storage::tso::{LIMIT_KEY, TimestampSource, wall_clock_ms};
use duet_storage::txn::commands::TsoLimit;

use super::{PAUSE, RETRY_FOR};
use crate::error::Error;
use crate::rpc::messages::Request;
use crate::store::{FIRST_REGION, RaftStore};
use crate::transport::grpc::GrpcTransport;

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
    transport: Option<Arc<GrpcTransport>>,
    state: Mutex<TsoState>,
    window_ms: u64,
    /// The first region's leader as last learned, for a node that holds no
    /// replica of it (0: unknown).
    first_leader: AtomicU64,
    /// Which known node to ask next when the leader is unknown.
    rotation: AtomicUsize,
}

impl<E: Engine> ClusterTso<E> {
    pub fn new(store: Arc<RaftStore<E>>, transport: Option<Arc<GrpcTransport>>) -> Self {
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
            first_leader: AtomicU64::new(0),
            rotation: AtomicUsize::new(0),
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
        Some(self.first_leader.load(Ordering::Relaxed)).filter(|l| *l != 0)
    }

    /// Records the first region's leader as another node named it.
    pub fn learn_first_leader(&self, leader: Option<u64>) {
        (self.first_leader).store(leader.unwrap_or(0), Ordering::Relaxed);
    }

    /// Asks node `to` for `n` timestamps.
    fn forward(&self, to: u64, n: u64) -> Result<u64, String> {
        let t = self.transport.as_ref().ok_or("no other node")?;
        let request = Request {
            region_id: FIRST_REGION,
            ts_count: n as u32,
            ..Request::default()
        };
        match t.call(to, request, Duration::from_secs(3)) {
            Ok(reply) if reply.ts > 0 => {
                self.learn_first_leader(Some(to));
                Ok(reply.ts)
            }
            Ok(reply) => {
                self.learn_first_leader(Some(reply.leader).filter(|l| *l != to && *l != 0));
                Err(reply.error)
            }
            Err(e) => {
                self.learn_first_leader(None);
                Err(e)
            }
        }
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
                Some(r) => match r.leader {
                    Some(l) => self.forward(l, n),
                    None => Err("no leader".into()),
                },
                // No replica here: the leader last heard of, else each
                // known node in turn until one names it.
                None => match self.first_leader() {
                    Some(l) => self.forward(l, n),
                    None => {
                        let nodes =
                            (self.transport.as_ref()).map_or_else(Vec::new, |t| t.known_nodes());
                        match nodes
                            .get(self.rotation.fetch_add(1, Ordering::Relaxed) % nodes.len().max(1))
                        {
                            Some(&to) => self.forward(to, n),
                            None => Err("no region".into()),
                        }
                    }
                },
            };
            match attempt {
                Ok(ts) => return Ok(ts),
                Err(e) if Instant::now() >= deadline => return Err(duet_storage::Error::Tso(e)),
                Err(_) => std::thread::sleep(PAUSE),
            }
        }
    }
}

/// This store's view of the first region, which serves the oracle.
pub(super) fn first_region<E: Engine>(store: &RaftStore<E>) -> Option<crate::store::RegionStatus> {
    store
        .status()
        .into_iter()
        .find(|r| r.region_id == FIRST_REGION)
}
