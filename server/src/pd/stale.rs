//! The node's watch for replicas that missed their own end (the raft
//! crate's `stale` module decides): each of the node's stores — row and
//! columnar learner — is looked at every few seconds; a replica that has
//! known no leader for `max_leader_missing_secs` asks every other known
//! node which region holds its start key (`LocateRegion`) and hands the
//! answers to its store, which destroys the replica only if one proves it
//! removed or merged away. Then it waits as long again before asking anew.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use duet_raft::rpc::messages::LocateRequest;
use duet_raft::store::{RaftStore, RegionStatus};
use duet_raft::transport::grpc::GrpcTransport;
use duet_storage::engine::rocks::RocksEngine;
use tracing::info;

/// How long one `LocateRegion` call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// Since when each (store, region) has known no leader.
#[derive(Default)]
struct Leaderless {
    since: HashMap<(u64, u64), Instant>,
}

impl Leaderless {
    /// Notes what store `id` reported (`status`) at `now`; returns the
    /// regions leaderless for at least `after` (their clock restarts: the
    /// next ask is `after` later).
    fn due(&mut self, id: u64, status: &[RegionStatus], now: Instant, after: Duration) -> Vec<u64> {
        let leaderless = |r: &u64| {
            status
                .iter()
                .any(|x| x.region_id == *r && x.leader.is_none())
        };
        self.since.retain(|(s, r), _| *s != id || leaderless(r));
        let mut due = Vec::new();
        for r in status.iter().filter(|r| r.leader.is_none()) {
            let since = self.since.entry((id, r.region_id)).or_insert(now);
            if now.duration_since(*since) >= after {
                *since = now;
                due.push(r.region_id);
            }
        }
        due
    }
}

/// Every few seconds, asks about the replicas of `stores` leaderless for
/// `after`.
pub async fn stale_loop(
    stores: Vec<Arc<RaftStore<RocksEngine>>>,
    transport: Arc<GrpcTransport>,
    after: Duration,
) {
    let every = (after / 4).clamp(Duration::from_millis(500), Duration::from_secs(10));
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut leaderless = Leaderless::default();
    loop {
        interval.tick().await;
        for store in &stores {
            // The status waits for the store's thread: off the runtime.
            let status = {
                let store = Arc::clone(store);
                tokio::task::spawn_blocking(move || store.status())
                    .await
                    .unwrap_or_default()
            };
            let due = leaderless.due(store.store_id(), &status, Instant::now(), after);
            for region_id in due {
                ask(store, &transport, region_id).await;
            }
        }
    }
}

/// Asks every other known node which region holds the start key of this
/// store's replica of `region_id`, and hands each answer to the store.
async fn ask(store: &RaftStore<RocksEngine>, transport: &GrpcTransport, region_id: u64) {
    let Some(ours) = store.view().get(region_id) else {
        return;
    };
    info!(
        region_id,
        store = store.store_id(),
        "replica without a leader; asking the others"
    );
    for node in transport.known_nodes() {
        let Some(mut client) = transport.client(node) else {
            continue;
        };
        let request = LocateRequest {
            cluster_id: transport.cluster_id(),
            key: ours.start_key.clone(),
        };
        let answer = tokio::time::timeout(CALL_TIMEOUT, client.locate_region(request)).await;
        if let Ok(Ok(answer)) = answer
            && let Some(region) = answer.into_inner().region
        {
            store.check_stale(region_id, region);
        }
    }
}
