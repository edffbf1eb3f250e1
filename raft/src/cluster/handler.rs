//! What a node answers other nodes: forwarded membership changes and
//! timestamp requests ([`RequestHandler`]), and the KV calls of
//! transactions, served from this node's replicas ([`KvHandler`]).

use std::sync::Arc;

use duet_storage::engine::Engine;
use duet_storage::txn::commands::{Command, Response};
use duet_storage::txn::deadlock::LocalDetector;
use duet_storage::txn::read::{Answer, Read, serve};
use protobuf::Message as _;
use raft::prelude::ConfChangeV2;

use super::tso::{ClusterTso, first_region};
use crate::error::Error;
use crate::region::{CommitMerge, Region, RegionEpoch};
use crate::rpc::messages::{Reply, Request};
use crate::rpc::{KvHandler, RequestHandler};
use crate::store::{MergeStep, RaftStore};

/// Answers other nodes: forwarded membership changes and timestamps (when
/// this node leads), and the KV calls of transactions.
pub struct Handler<E: Engine> {
    pub store: Arc<RaftStore<E>>,
    pub tso: Arc<ClusterTso<E>>,
    /// The deadlock detector's graph, served while this node leads the
    /// first region.
    pub detector: Arc<LocalDetector>,
}

impl<E: Engine> RequestHandler for Handler<E> {
    fn handle(&self, request: Request) -> Reply {
        let mut reply = Reply::default();
        if !request.conf_change.is_empty() {
            let proposed = ConfChangeV2::parse_from_bytes(&request.conf_change)
                .map_err(|e| Error::Corruption {
                    what: "forwarded membership change",
                    detail: e.to_string(),
                })
                .and_then(|cc| self.store.propose_conf_change(request.region_id, cc));
            match proposed {
                Ok(()) => {}
                Err(Error::NotLeader { leader, .. }) => {
                    reply.leader = leader.unwrap_or(0);
                    reply.error = "not leader".into();
                }
                Err(e) => reply.error = e.to_string(),
            }
            return reply;
        }
        // The oracle and the deadlock detector are served by the first
        // region's leader.
        let region = first_region(&self.store);
        let Some(region) = region.filter(|r| r.is_leader) else {
            reply.leader = region.and_then(|r| r.leader).unwrap_or(0);
            reply.error = "not leader".into();
            return reply;
        };
        if let Some(answer) = super::deadlock::serve(&self.detector, &request) {
            return answer;
        }
        match (self.tso).allocate(u64::from(request.ts_count.max(1)), region.term) {
            Ok(ts) => reply.ts = ts,
            Err(e) => reply.error = e.to_string(),
        }
        reply
    }
}

impl<E: Engine> Handler<E> {
    /// Region `region_id` as this node has it, if `epoch` (when given) is
    /// still its range's: a command or read routed by an older range may
    /// hold keys the region no longer has. A membership change does not
    /// move keys, so only the range's version is compared.
    fn region_at(&self, region_id: u64, epoch: Option<RegionEpoch>) -> Result<Region, Error> {
        let region = (self.store.view().get(region_id)).ok_or(Error::RegionNotFound(region_id))?;
        match epoch {
            Some(e) if e.version != region.epoch().version => Err(Error::EpochNotMatch {
                region_id,
                current: Box::new(region),
            }),
            _ => Ok(region),
        }
    }
}

impl<E: Engine> KvHandler for Handler<E> {
    fn read(
        &self,
        region_id: u64,
        epoch: Option<RegionEpoch>,
        read: &Read,
    ) -> Result<Answer, Error> {
        let region = self.region_at(region_id, epoch)?;
        let moved = || Error::EpochNotMatch {
            region_id,
            current: Box::new(region.clone()),
        };
        if read.restrict(&region.start_key, &region.end_key).as_ref() != Some(read) {
            return Err(moved());
        }
        if !self.store.local_read_at(region_id, read.ts()) {
            self.store.read_index_at(region_id, read.ts())?;
        }
        let snap = self.store.engine().snapshot();
        // A split applied since the check moves part of the range away.
        if !(self.store.view()).has_range(region_id, &region.start_key, &region.end_key) {
            return Err(moved());
        }
        let answer = serve(&snap, read)?;
        tracing::debug!(
            region_id,
            pairs = answer.pairs.len(),
            start = ?read.span().0,
            "read served for another node"
        );
        Ok(answer)
    }

    fn execute(
        &self,
        region_id: u64,
        epoch: Option<RegionEpoch>,
        command: Command,
    ) -> Result<Response, Error> {
        self.region_at(region_id, epoch)?;
        self.store.propose(region_id, command)
    }

    fn split(
        &self,
        region_id: u64,
        epoch: Option<RegionEpoch>,
        split_key: &[u8],
        new_region_id: u64,
    ) -> Result<(), Error> {
        self.region_at(region_id, epoch)?;
        self.store.split(region_id, split_key, new_region_id)
    }

    fn commit_merge(&self, region_id: u64, commit: &CommitMerge) -> Result<(), Error> {
        self.store
            .merge(region_id, MergeStep::Commit(commit.clone()))
    }

    fn locate(&self, key: &[u8]) -> Option<(Region, Option<u64>)> {
        let region = self.store.view().locate(key)?;
        let leader = (self.store.view().leadership(region.id)).and_then(|l| l.leader);
        Some((region, leader))
    }
}
