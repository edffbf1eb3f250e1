//! The serving side of the node service: delivers the Raft streams to this
//! node's stores, and hands forwarded requests and KV calls to the
//! handlers the node sets once its stores run. Every handler that may wait
//! (a proposal, a ReadIndex round) runs on a blocking thread, so the
//! network runtime only moves bytes.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use crossbeam::channel::Sender;
use duet_storage::txn::commands::effects::{Failure, Outcome};
use duet_storage::txn::commands::{Command, Response as TxnResponse};
use duet_storage::txn::read::{Answer, Read, Scan};
use protobuf::Message as _;
use raft::prelude::Message;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::warn;

use super::messages::*;
use super::pd::*;
use super::service::node_server::Node;
use super::{ColumnarHandler, KvHandler, PdHandler, RequestHandler};
use crate::error::Error;
use crate::store::StoreMsg;
use crate::transport::RegionTag;

/// A chunked message may not grow beyond this on the receiving side.
const MAX_CHUNKED: usize = 1 << 30;
/// Pairs per `KvScan` batch when the request names none.
const SCAN_BATCH: u32 = 1024;

/// Where Raft messages for this node's stores go: the main store's inbox,
/// or that of another store of the node (its columnar learner store).
pub struct Inboxes {
    main: Sender<StoreMsg>,
    locals: RwLock<HashMap<u64, Sender<StoreMsg>>>,
}

impl Inboxes {
    pub fn new(main: Sender<StoreMsg>) -> Self {
        Inboxes {
            main,
            locals: RwLock::new(HashMap::new()),
        }
    }

    pub fn add_local(&self, store_id: u64, inbox: Sender<StoreMsg>) {
        (self.locals.write().unwrap_or_else(|e| e.into_inner())).insert(store_id, inbox);
    }

    /// The inbox of `store_id` if it is a store of this node other than
    /// the main one.
    pub fn local(&self, store_id: u64) -> Option<Sender<StoreMsg>> {
        (self.locals.read().unwrap_or_else(|e| e.into_inner()))
            .get(&store_id)
            .cloned()
    }

    fn deliver(&self, to: u64, msg: StoreMsg) -> bool {
        let inbox = self.local(to).unwrap_or_else(|| self.main.clone());
        inbox.send(msg).is_ok()
    }
}

/// The handlers a node sets once its stores run.
#[derive(Default)]
pub struct Handlers {
    pub forward: OnceLock<Arc<dyn RequestHandler>>,
    pub kv: OnceLock<Arc<dyn KvHandler>>,
    pub pd: OnceLock<Arc<dyn PdHandler>>,
    pub columnar: OnceLock<Arc<dyn ColumnarHandler>>,
}

/// Serves `duet.node.Node` for one node.
pub struct NodeService {
    cluster_id: u64,
    inboxes: Arc<Inboxes>,
    handlers: Arc<Handlers>,
}

impl NodeService {
    pub fn new(cluster_id: u64, inboxes: Arc<Inboxes>, handlers: Arc<Handlers>) -> Self {
        NodeService {
            cluster_id,
            inboxes,
            handlers,
        }
    }

    fn check_cluster(&self, cluster_id: u64) -> Result<(), Status> {
        if cluster_id == self.cluster_id {
            Ok(())
        } else {
            Err(Status::failed_precondition(format!(
                "a request of cluster {cluster_id} (this is cluster {})",
                self.cluster_id
            )))
        }
    }

    /// The KV handler and the checked context of a request.
    fn kv(&self, context: Option<Context>) -> Result<(Arc<dyn KvHandler>, Context), Status> {
        let context = context.ok_or_else(|| Status::invalid_argument("no context"))?;
        self.check_cluster(context.cluster_id)?;
        let kv = (self.handlers.kv.get().cloned())
            .ok_or_else(|| Status::unavailable("this node is starting"))?;
        Ok((kv, context))
    }

    /// Runs a placement call on the node's placement handler.
    async fn pd<Q: Send + 'static, A: Send + 'static>(
        &self,
        cluster_id: u64,
        request: Q,
        call: fn(&dyn PdHandler, Q) -> A,
    ) -> Result<Response<A>, Status> {
        self.check_cluster(cluster_id)?;
        let pd = (self.handlers.pd.get().cloned())
            .ok_or_else(|| Status::unavailable("this node is starting"))?;
        Ok(Response::new(
            blocking(move || call(pd.as_ref(), request)).await?,
        ))
    }

    async fn read(&self, context: Option<Context>, read: Read) -> Result<ReadResponse, Status> {
        let (kv, ctx) = self.kv(context)?;
        blocking(move || read_response(ctx.region_id, kv.read(ctx.region_id, ctx.epoch, &read)))
            .await
    }

    async fn execute(
        &self,
        (context, command): (Option<Context>, Option<Command>),
    ) -> Result<Response<CommandResponse>, Status> {
        let (kv, ctx) = self.kv(context)?;
        let command = command.ok_or_else(|| Status::invalid_argument("no command"))?;
        let response = blocking(move || {
            command_response(ctx.region_id, kv.execute(ctx.region_id, ctx.epoch, command))
        })
        .await?;
        Ok(Response::new(response))
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("handler failed: {e}")))
}

/// The answer to a read as it goes back.
fn read_response(region_id: u64, result: Result<Answer, Error>) -> ReadResponse {
    let mut response = ReadResponse::default();
    match result {
        Ok(answer) => response.answer = Some(answer),
        Err(e) => {
            if let Some(region_error) = RegionError::from_error(region_id, &e) {
                response.region_error = Some(region_error);
            } else if let Error::Storage(s) = &e
                && let Some(failure) = Failure::from_error(s)
            {
                response.failure = Some(failure);
            } else {
                response.other = e.to_string();
            }
        }
    }
    response
}

/// A command's answer as it goes back.
fn command_response(region_id: u64, result: Result<TxnResponse, Error>) -> CommandResponse {
    let mut response = CommandResponse::default();
    let result = match result {
        Ok(r) => Ok(r),
        Err(e) => {
            if let Some(region_error) = RegionError::from_error(region_id, &e) {
                response.region_error = Some(region_error);
                return response;
            }
            match e {
                Error::Storage(e) => Err(e),
                e => {
                    response.other = e.to_string();
                    return response;
                }
            }
        }
    };
    match Outcome::from_result(result) {
        Ok(outcome) => response.outcome = outcome,
        Err(e) => response.other = e.to_string(),
    }
    response
}

/// Reassembles messages that arrive in chunks, in order, on one stream.
#[derive(Default)]
struct Reassembly {
    partial: Vec<u8>,
    count: u32,
}

impl Reassembly {
    /// The whole message once `env` completes one; an error ends the stream.
    fn push(&mut self, env: Envelope) -> Result<Option<Vec<u8>>, String> {
        if env.chunks == 0 {
            return Ok(Some(env.message));
        }
        if env.chunk != self.count || env.chunk >= env.chunks {
            return Err(format!(
                "chunk {} of {} out of order",
                env.chunk, env.chunks
            ));
        }
        if self.partial.len() + env.message.len() > MAX_CHUNKED {
            return Err("chunked message over the limit".into());
        }
        self.count += 1;
        self.partial.extend_from_slice(&env.message);
        if self.count < env.chunks {
            return Ok(None);
        }
        self.count = 0;
        Ok(Some(std::mem::take(&mut self.partial)))
    }
}

#[tonic::async_trait]
impl Node for NodeService {
    async fn raft(
        &self,
        request: Request<Streaming<RaftBatch>>,
    ) -> Result<Response<RaftDone>, Status> {
        let peer = request.remote_addr();
        let mut stream = request.into_inner();
        let mut reassembly = Reassembly::default();
        let refuse = |reason: String| {
            warn!(?peer, %reason, "raft stream refused");
            Status::invalid_argument(reason)
        };
        while let Some(batch) = stream.message().await? {
            if batch.cluster_id != self.cluster_id {
                return Err(refuse(format!(
                    "messages of cluster {} (this is cluster {})",
                    batch.cluster_id, self.cluster_id
                )));
            }
            for env in batch.envelopes {
                let tag = RegionTag {
                    region_id: env.region_id,
                    conf_ver: env.conf_ver,
                };
                let (to, msg) = if env.tombstone_to != 0 {
                    (env.tombstone_to, StoreMsg::Tombstone { tag })
                } else {
                    let Some(bytes) = reassembly.push(env).map_err(refuse)? else {
                        continue;
                    };
                    let message = Message::parse_from_bytes(&bytes)
                        .map_err(|e| refuse(format!("bad raft message: {e}")))?;
                    let to = message.to;
                    let message = Box::new(message);
                    (to, StoreMsg::Raft { tag, message })
                };
                if !self.inboxes.deliver(to, msg) {
                    return Err(Status::unavailable("this node is stopping"));
                }
            }
        }
        Ok(Response::new(RaftDone {}))
    }

    async fn forward(
        &self,
        request: Request<super::messages::Request>,
    ) -> Result<Response<Reply>, Status> {
        let request = request.into_inner();
        self.check_cluster(request.cluster_id)?;
        let handler = (self.handlers.forward.get().cloned())
            .ok_or_else(|| Status::unavailable("this node is starting"))?;
        Ok(Response::new(
            blocking(move || handler.handle(request)).await?,
        ))
    }

    async fn locate_region(
        &self,
        request: Request<LocateRequest>,
    ) -> Result<Response<LocateResponse>, Status> {
        let request = request.into_inner();
        self.check_cluster(request.cluster_id)?;
        let kv = (self.handlers.kv.get().cloned())
            .ok_or_else(|| Status::unavailable("this node is starting"))?;
        // Naming the leader asks the store's thread: not on this runtime.
        let found = blocking(move || kv.locate(&request.key)).await?;
        Ok(Response::new(LocateResponse {
            leader: found.as_ref().and_then(|(_, l)| *l).unwrap_or(0),
            region: found.map(|(r, _)| r),
        }))
    }

    async fn kv_get(&self, request: Request<GetRequest>) -> Result<Response<ReadResponse>, Status> {
        let r = request.into_inner();
        let read = duet_storage::txn::read::Get {
            key: r.key,
            ts: r.version,
        };
        Ok(Response::new(self.read(r.context, read.into()).await?))
    }

    async fn kv_batch_get(
        &self,
        request: Request<BatchGetRequest>,
    ) -> Result<Response<ReadResponse>, Status> {
        let r = request.into_inner();
        // Each key is a `Get`: a lock in the way is reported as for one.
        let (kv, ctx) = self.kv(r.context)?;
        let response = blocking(move || {
            let mut answer = Answer::default();
            for key in r.keys {
                let read = duet_storage::txn::read::Get { key, ts: r.version };
                match kv.read(ctx.region_id, ctx.epoch, &read.into()) {
                    Ok(a) => answer.append(a),
                    Err(e) => return read_response(ctx.region_id, Err(e)),
                }
            }
            read_response(ctx.region_id, Ok(answer))
        })
        .await?;
        Ok(Response::new(response))
    }

    type ColumnarScanStream = ReceiverStream<Result<ColumnarScanResponse, Status>>;

    async fn columnar_scan(
        &self,
        request: Request<ColumnarScanRequest>,
    ) -> Result<Response<Self::ColumnarScanStream>, Status> {
        let r = request.into_inner();
        self.check_cluster(r.cluster_id)?;
        let columnar = (self.handlers.columnar.get().cloned())
            .ok_or_else(|| Status::unavailable("this node has no columnar replica"))?;
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tokio::task::spawn_blocking(move || {
            columnar.scan(r, &mut |message| tx.blocking_send(Ok(message)).is_ok());
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    type KvScanStream = ReceiverStream<Result<ReadResponse, Status>>;

    async fn kv_scan(
        &self,
        request: Request<ScanRequest>,
    ) -> Result<Response<Self::KvScanStream>, Status> {
        let r = request.into_inner();
        let (kv, ctx) = self.kv(r.context.clone())?;
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tokio::task::spawn_blocking(move || scan_batches(kv.as_ref(), &ctx, r, &tx));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn kv_read(
        &self,
        request: Request<ReadRequest>,
    ) -> Result<Response<ReadResponse>, Status> {
        let r = request.into_inner();
        let read = r.read.ok_or_else(|| Status::invalid_argument("no read"))?;
        Ok(Response::new(self.read(r.context, read).await?))
    }

    async fn kv_prewrite(
        &self,
        request: Request<PrewriteRequest>,
    ) -> Result<Response<CommandResponse>, Status> {
        self.execute(request.into_inner().into_parts()).await
    }

    async fn kv_commit(
        &self,
        request: Request<CommitRequest>,
    ) -> Result<Response<CommandResponse>, Status> {
        self.execute(request.into_inner().into_parts()).await
    }

    async fn kv_check_txn_status(
        &self,
        request: Request<CheckTxnStatusRequest>,
    ) -> Result<Response<CommandResponse>, Status> {
        self.execute(request.into_inner().into_parts()).await
    }

    async fn kv_resolve_lock(
        &self,
        request: Request<ResolveLockRequest>,
    ) -> Result<Response<CommandResponse>, Status> {
        self.execute(request.into_inner().into_parts()).await
    }

    async fn kv_pessimistic_lock(
        &self,
        request: Request<PessimisticLockRequest>,
    ) -> Result<Response<CommandResponse>, Status> {
        self.execute(request.into_inner().into_parts()).await
    }

    async fn kv_pessimistic_rollback(
        &self,
        request: Request<PessimisticRollbackRequest>,
    ) -> Result<Response<CommandResponse>, Status> {
        self.execute(request.into_inner().into_parts()).await
    }

    async fn kv_execute(
        &self,
        request: Request<CommandRequest>,
    ) -> Result<Response<CommandResponse>, Status> {
        self.execute(request.into_inner().into_parts()).await
    }

    async fn split_region(
        &self,
        request: Request<SplitRegionRequest>,
    ) -> Result<Response<CommandResponse>, Status> {
        let request = request.into_inner();
        let (kv, ctx) = self.kv(request.context)?;
        let response = blocking(move || {
            let split = kv.split(
                ctx.region_id,
                ctx.epoch,
                &request.split_key,
                request.new_region_id,
            );
            command_response(ctx.region_id, split.map(|()| TxnResponse::Done))
        })
        .await?;
        Ok(Response::new(response))
    }

    async fn merge_region(
        &self,
        request: Request<MergeRegionRequest>,
    ) -> Result<Response<CommandResponse>, Status> {
        let request = request.into_inner();
        let (kv, ctx) = self.kv(request.context)?;
        let commit = request
            .commit
            .ok_or_else(|| Status::invalid_argument("no merge"))?;
        let response = blocking(move || {
            let merged = kv.commit_merge(ctx.region_id, &commit);
            command_response(ctx.region_id, merged.map(|()| TxnResponse::Done))
        })
        .await?;
        Ok(Response::new(response))
    }

    async fn join(&self, request: Request<JoinRequest>) -> Result<Response<JoinResponse>, Status> {
        let r = request.into_inner();
        self.pd(r.cluster_id, r, |pd, r| pd.join(r)).await
    }

    async fn store_heartbeat(
        &self,
        request: Request<StoreHeartbeatRequest>,
    ) -> Result<Response<StoreHeartbeatResponse>, Status> {
        let r = request.into_inner();
        self.pd(r.cluster_id, r, |pd, r| pd.store_heartbeat(r))
            .await
    }

    async fn region_heartbeat(
        &self,
        request: Request<RegionHeartbeatRequest>,
    ) -> Result<Response<RegionHeartbeatResponse>, Status> {
        let r = request.into_inner();
        self.pd(r.cluster_id, r, |pd, r| pd.region_heartbeat(r))
            .await
    }

    async fn get_cluster(
        &self,
        request: Request<GetClusterRequest>,
    ) -> Result<Response<GetClusterResponse>, Status> {
        let r = request.into_inner();
        self.pd(r.cluster_id, r, |pd, r| pd.get_cluster(r)).await
    }

    async fn remove_store(
        &self,
        request: Request<RemoveStoreRequest>,
    ) -> Result<Response<RemoveStoreResponse>, Status> {
        let r = request.into_inner();
        self.pd(r.cluster_id, r, |pd, r| pd.remove_store(r)).await
    }
}

/// Streams a scan in batches, each read at the scan's timestamp (so the
/// batches are one consistent view), until the limit, the range's end, an
/// error, or the receiver leaves.
fn scan_batches(
    kv: &dyn KvHandler,
    ctx: &Context,
    r: ScanRequest,
    tx: &tokio::sync::mpsc::Sender<Result<ReadResponse, Status>>,
) {
    let batch = u64::from(if r.batch_size == 0 {
        SCAN_BATCH
    } else {
        r.batch_size
    });
    let mut remaining = if r.limit == 0 { u64::MAX } else { r.limit };
    let mut start = r.start;
    while remaining > 0 {
        let read = Scan {
            start: start.clone(),
            end: r.end.clone(),
            ts: r.version,
            limit: batch.min(remaining),
        };
        let result = kv.read(ctx.region_id, ctx.epoch, &read.into());
        let (last, count) = match &result {
            Ok(a) => (a.pairs.last().map(|p| p.key.clone()), a.pairs.len() as u64),
            Err(_) => (None, 0),
        };
        let failed = result.is_err();
        if tx
            .blocking_send(Ok(read_response(ctx.region_id, result)))
            .is_err()
            || failed
        {
            return;
        }
        remaining = remaining.saturating_sub(count);
        match last {
            Some(mut key) if count == batch.min(remaining + count) => {
                key.push(0);
                start = key;
            }
            _ => return,
        }
    }
}
