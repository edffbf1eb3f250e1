//! The cluster's deadlock detector: one waits-for graph, kept by the node
//! leading the first region (where the oracle is), since a cycle of waits
//! may run through transactions begun on any node. Other nodes forward
//! each wait and each end of a wait to it ([`Request`]'s `wait_*` and
//! `clean_up` fields). A new leader starts with an empty graph; waiters
//! report their waits again while they wait, so it fills within a report
//! interval. A detector that cannot be reached finds no deadlock: the
//! waits then end by their timeout, as without a detector.

use std::sync::Arc;
use std::time::Duration;

use duet_storage::engine::Engine;
use duet_storage::txn::deadlock::{DeadlockDetector, LocalDetector};

use super::tso::{ClusterTso, first_region};
use crate::rpc::messages::{Reply, Request};
use crate::store::{FIRST_REGION, RaftStore};
use crate::transport::grpc::GrpcTransport;

/// How long a forwarded report may take.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a wait stands in the graph without being reported again.
pub const WAIT_TTL: Duration = Duration::from_secs(3);

/// A node's way to the cluster's detector.
pub struct ClusterDetector<E: Engine> {
    store: Arc<RaftStore<E>>,
    tso: Arc<ClusterTso<E>>,
    transport: Arc<GrpcTransport>,
    /// The graph, used while this node leads the first region.
    local: Arc<LocalDetector>,
}

impl<E: Engine> ClusterDetector<E> {
    pub fn new(
        store: Arc<RaftStore<E>>,
        tso: Arc<ClusterTso<E>>,
        transport: Arc<GrpcTransport>,
        local: Arc<LocalDetector>,
    ) -> Self {
        ClusterDetector {
            store,
            tso,
            transport,
            local,
        }
    }

    fn leads(&self) -> bool {
        first_region(&self.store).is_some_and(|r| r.is_leader)
    }

    /// Sends `request` to the first region's leader; its reply, if any.
    fn forward(&self, request: Request) -> Option<Reply> {
        let to = self.tso.first_leader()?;
        let request = Request {
            region_id: FIRST_REGION,
            ..request
        };
        match self.transport.call(to, request, FORWARD_TIMEOUT) {
            Ok(reply) if reply.error.is_empty() => Some(reply),
            Ok(reply) => {
                if reply.leader != 0 {
                    self.tso.learn_first_leader(Some(reply.leader));
                }
                None
            }
            Err(e) => {
                tracing::debug!(error = %e, "the deadlock detector is out of reach");
                None
            }
        }
    }
}

impl<E: Engine> DeadlockDetector for ClusterDetector<E> {
    fn wait_for(&self, waiter: u64, holder: u64, key_hash: u64) -> duet_storage::Result<()> {
        if self.leads() {
            return self.local.wait_for(waiter, holder, key_hash);
        }
        let request = Request {
            wait_waiter: waiter,
            wait_holder: holder,
            wait_key_hash: key_hash,
            ..Request::default()
        };
        match self.forward(request) {
            Some(reply) if !reply.deadlock.is_empty() => Err(duet_storage::Error::Deadlock {
                start_ts: waiter,
                cycle: reply.deadlock,
            }),
            _ => Ok(()),
        }
    }

    fn clean_up(&self, waiter: u64) {
        if self.leads() {
            return self.local.clean_up(waiter);
        }
        let request = Request {
            clean_up: waiter,
            ..Request::default()
        };
        let _ = self.forward(request);
    }
}

/// Answers a forwarded wait or end of a wait on the leader; `None` if
/// `request` is neither.
pub(super) fn serve(local: &LocalDetector, request: &Request) -> Option<Reply> {
    let mut reply = Reply::default();
    if request.clean_up != 0 {
        local.clean_up(request.clean_up);
    } else if request.wait_waiter != 0 {
        if let Some(cycle) = local.detect(
            request.wait_waiter,
            request.wait_holder,
            request.wait_key_hash,
        ) {
            reply.deadlock = cycle.txns;
        }
    } else {
        return None;
    }
    Some(reply)
}
