//! Requests for regions this node holds no replica of. Where they are is a
//! [`RegionCache`], filled by asking other nodes (`LocateRegion`) and
//! corrected by what refusals say; a part for such a region goes to its
//! leader (or, not knowing it, to each voter in turn) over the node service
//! and is retried as client-go does: at once where the refusal named a
//! better target, after a growing pause where it did not, and back to
//! routing where the region's range changed.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use duet_storage::txn::commands::effects::Outcome;
use duet_storage::txn::commands::{Command, Response};
use duet_storage::txn::read::{Answer, Read};

use crate::error::Error;
use crate::region::Region;
use crate::region_cache::{Backoff, RegionCache, Retry};
use crate::rpc::messages::{
    CommandRequest, CommandResponse, Context, LocateRequest, MergeRegionRequest, ReadRequest,
    ReadResponse, RegionError, SplitRegionRequest,
};
use crate::transport::grpc::GrpcTransport;

/// How long one call to another node may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What became of a part sent to a region elsewhere.
pub(super) enum Sent<T> {
    Done(T),
    /// The region's range changed, or no peer of it answers: route the
    /// part again.
    Reroute,
    /// The answer is an error: the part's own (a lock, a conflict), or
    /// none came in time.
    Failed(Error),
}

/// One answer to a call, before the retry loop judges it.
pub(super) enum Answered<T> {
    Ok(T),
    Region(RegionError),
    Failed(duet_storage::Error),
    /// The asked node failed (its engine, a timeout): ask another.
    Other,
}

/// The regions elsewhere and the way to them.
pub(super) struct Remote {
    transport: Arc<GrpcTransport>,
    cache: Mutex<RegionCache>,
}

impl Remote {
    pub(super) fn new(transport: Arc<GrpcTransport>) -> Self {
        Remote {
            transport,
            cache: Mutex::new(RegionCache::new()),
        }
    }

    fn cache(&self) -> MutexGuard<'_, RegionCache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lookups of a key the cache did not hold.
    pub(super) fn misses(&self) -> u64 {
        self.cache().misses
    }

    /// The region holding `key`: from the cache, or else from the first
    /// of `nodes` that knows it.
    pub(super) fn locate(&self, key: &[u8], nodes: &[u64]) -> Option<Region> {
        if let Some(l) = self.cache().locate(key) {
            return Some(l.region);
        }
        for &node in nodes {
            let Some(mut client) = self.transport.client(node) else {
                continue;
            };
            let request = LocateRequest {
                cluster_id: self.transport.cluster_id(),
                key: key.to_vec(),
            };
            let answer = self.transport.wait(
                async move { client.locate_region(request).await },
                CALL_TIMEOUT,
            );
            let Ok(Ok(answer)) = answer else {
                continue;
            };
            let answer = answer.into_inner();
            if let Some(region) = answer.region.filter(|r| r.contains(key)) {
                let leader = (answer.leader != 0).then_some(answer.leader);
                self.cache().insert(region.clone(), leader);
                return Some(region);
            }
        }
        None
    }

    /// Answers `part` from a replica of `region` on another node.
    /// Notes that `leader` leads `region` (learned from this node's own
    /// replica), so the next call goes there first.
    pub(super) fn learn_leader(&self, region: &Region, leader: u64) {
        self.cache().insert(region.clone(), Some(leader));
    }

    pub(super) fn read(&self, region: &Region, part: &Read, deadline: Instant) -> Sent<Answer> {
        self.call(region, deadline, |to, context| {
            let mut client = self.transport.client(to).ok_or(())?;
            let request = ReadRequest {
                context: Some(context),
                read: Some(part.clone()),
            };
            let answer = self
                .transport
                .wait(async move { client.kv_read(request).await }, CALL_TIMEOUT);
            let answer: ReadResponse = answer.map_err(|_| ())?.map_err(|_| ())?.into_inner();
            Ok(match answer {
                ReadResponse {
                    region_error: Some(e),
                    ..
                } => Answered::Region(e),
                ReadResponse {
                    failure: Some(f), ..
                } => match f.into_error() {
                    Ok(e) | Err(e) => Answered::Failed(e),
                },
                ReadResponse {
                    answer: Some(a), ..
                } => Answered::Ok(a),
                _ => Answered::Other,
            })
        })
    }

    /// Runs `part` on the leader of `region`, on another node.
    pub(super) fn execute(
        &self,
        region: &Region,
        part: &Command,
        deadline: Instant,
    ) -> Sent<Response> {
        self.call(region, deadline, |to, context| {
            execute_on(&self.transport, to, context, part, CALL_TIMEOUT)
        })
    }

    /// Splits `region`, on its leader on another node, at `split_key`.
    pub(super) fn split(
        &self,
        region: &Region,
        split: (&[u8], u64),
        deadline: Instant,
    ) -> Sent<Response> {
        self.call(region, deadline, |to, context| {
            split_on(&self.transport, to, context, split, CALL_TIMEOUT)
        })
    }

    /// Sends to `region`'s leader (or each voter in turn) until an answer,
    /// a change of range, or `deadline`.
    fn call<T>(
        &self,
        region: &Region,
        deadline: Instant,
        send: impl Fn(u64, Context) -> Result<Answered<T>, ()>,
    ) -> Sent<T> {
        let mut backoff = Backoff::new(Duration::from_millis(20), Duration::from_secs(1), 30);
        let mut tried: Vec<u64> = Vec::new();
        let voters: Vec<u64> = (region.peers.iter())
            .filter(|p| !p.learner)
            .map(|p| p.store_id)
            .collect();
        loop {
            if Instant::now() >= deadline {
                return Sent::Failed(Error::ServerIsBusy {
                    region_id: region.id,
                    reason: "no replica answered in time".into(),
                });
            }
            let cached = self.cache().target(region.id, &tried);
            let Some(to) = cached.or_else(|| voters.iter().copied().find(|v| !tried.contains(v)))
            else {
                // Every peer refused or failed: perhaps the region moved.
                self.cache().invalidate(region.id);
                std::thread::sleep(Duration::from_millis(50));
                return Sent::Reroute;
            };
            let context = Context {
                cluster_id: self.transport.cluster_id(),
                region_id: region.id,
                epoch: region.epoch,
            };
            let retry = match send(to, context) {
                Ok(Answered::Ok(v)) => {
                    tracing::debug!(region_id = region.id, to, "answered by another node");
                    return Sent::Done(v);
                }
                Ok(Answered::Failed(e)) => return Sent::Failed(Error::Storage(e)),
                Ok(Answered::Region(e)) => {
                    let e = e.into_error();
                    let rerouted =
                        matches!(e, Error::EpochNotMatch { .. } | Error::RegionNotFound(_));
                    if matches!(
                        e,
                        Error::NotLeader { leader: None, .. } | Error::RegionNotFound(_)
                    ) {
                        tried.push(to);
                    }
                    let retry = self.cache().on_error(region.id, &e, &mut backoff);
                    if rerouted {
                        return Sent::Reroute;
                    }
                    retry
                }
                Ok(Answered::Other) | Err(()) => {
                    tried.push(to);
                    backoff.retry()
                }
            };
            match retry {
                Retry::Now => {}
                Retry::After(pause) => std::thread::sleep(pause),
                Retry::GiveUp => {
                    return Sent::Failed(Error::ServerIsBusy {
                        region_id: region.id,
                        reason: "retries spent".into(),
                    });
                }
            }
        }
    }
}

/// One `KvExecute` of `command` on store `to`, in `context`; `Err` when no
/// answer came within `timeout`.
pub(super) fn execute_on(
    transport: &GrpcTransport,
    to: u64,
    context: Context,
    command: &Command,
    timeout: Duration,
) -> Result<Answered<Response>, ()> {
    let mut client = transport.client(to).ok_or(())?;
    let request = CommandRequest {
        context: Some(context),
        command: Some(command.clone()),
    };
    let answer = transport.wait(async move { client.kv_execute(request).await }, timeout);
    Ok(command_answer(
        answer.map_err(|_| ())?.map_err(|_| ())?.into_inner(),
    ))
}

/// One `SplitRegion` of the region in `context` at `split_key` on store
/// `to`; `Err` when no answer came within `timeout`.
pub(super) fn split_on(
    transport: &GrpcTransport,
    to: u64,
    context: Context,
    (split_key, new_region_id): (&[u8], u64),
    timeout: Duration,
) -> Result<Answered<Response>, ()> {
    let mut client = transport.client(to).ok_or(())?;
    let request = SplitRegionRequest {
        context: Some(context),
        split_key: split_key.to_vec(),
        new_region_id,
    };
    let answer = transport.wait(async move { client.split_region(request).await }, timeout);
    Ok(command_answer(
        answer.map_err(|_| ())?.map_err(|_| ())?.into_inner(),
    ))
}

/// One `MergeRegion` of `commit` on store `to`, the target's leader;
/// `Err` when no answer came within `timeout`.
pub(super) fn merge_on(
    transport: &GrpcTransport,
    to: u64,
    context: Context,
    commit: &crate::region::CommitMerge,
    timeout: Duration,
) -> Result<Answered<Response>, ()> {
    let mut client = transport.client(to).ok_or(())?;
    let request = MergeRegionRequest {
        context: Some(context),
        commit: Some(commit.clone()),
    };
    let answer = transport.wait(async move { client.merge_region(request).await }, timeout);
    Ok(command_answer(
        answer.map_err(|_| ())?.map_err(|_| ())?.into_inner(),
    ))
}

/// A command's answer as the retry loop judges it.
fn command_answer(answer: CommandResponse) -> Answered<Response> {
    match answer {
        CommandResponse {
            region_error: Some(e),
            ..
        } => Answered::Region(e),
        CommandResponse { other, .. } if !other.is_empty() => Answered::Other,
        CommandResponse { outcome, .. } => match Outcome::into_result(outcome) {
            Ok(Ok(r)) => Answered::Ok(r),
            Ok(Err(e)) | Err(e) => Answered::Failed(e),
        },
    }
}
