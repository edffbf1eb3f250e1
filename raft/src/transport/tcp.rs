//! Raft messages over TCP between stores: length-prefixed frames of
//! prost-encoded batches, one connection per destination store, batching of
//! whatever is queued, and reconnection with backoff. A frame that does not
//! decode, is too large, or comes from another cluster closes that connection
//! and is logged; the store carries on.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam::channel::Sender;
use prost::Message as _;
use protobuf::Message as _;
use raft::prelude::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::Transport;
use crate::store::StoreMsg;

/// Largest frame accepted (a batch of Raft messages).
const MAX_FRAME: usize = 64 << 20;
/// Messages per frame at most.
const MAX_BATCH: usize = 256;
/// A frame stops taking messages past this many bytes.
const FRAME_TARGET: usize = 4 << 20;
/// Messages larger than this (snapshots) are sent in chunks of this size.
const CHUNK: usize = 1 << 20;
/// A chunked message may not grow beyond this on the receiving side.
const MAX_MESSAGE: usize = 1 << 30;

/// One frame: messages from one store, for one cluster.
#[derive(Clone, PartialEq, prost::Message)]
struct RaftBatch {
    #[prost(uint64, tag = "1")]
    cluster_id: u64,
    #[prost(uint64, tag = "2")]
    from_store: u64,
    #[prost(message, repeated, tag = "3")]
    envelopes: Vec<Envelope>,
    #[prost(message, repeated, tag = "4")]
    requests: Vec<Request>,
    #[prost(message, repeated, tag = "5")]
    replies: Vec<Reply>,
}

/// A request to another store: a transaction command to propose (it must
/// lead the region), or, with an empty command, `ts_count` timestamps.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Request {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(uint64, tag = "2")]
    pub region_id: u64,
    #[prost(bytes = "vec", tag = "3")]
    pub command: Vec<u8>,
    #[prost(uint32, tag = "4")]
    pub ts_count: u32,
    /// A membership change (a protobuf `ConfChangeV2`) to propose instead.
    #[prost(bytes = "vec", tag = "5")]
    pub conf_change: Vec<u8>,
}

/// The answer to a [`Request`]: where the command was proposed, or the last
/// timestamp of the batch, or the leader to ask instead, or an error.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Reply {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(uint64, tag = "2")]
    pub index: u64,
    #[prost(uint64, tag = "3")]
    pub term: u64,
    #[prost(uint64, tag = "4")]
    pub ts: u64,
    /// Non-zero: not the leader; this one is (as far as the replier knows).
    #[prost(uint64, tag = "5")]
    pub leader: u64,
    #[prost(string, tag = "6")]
    pub error: String,
    /// The command no longer fits the region (a split): route it again.
    #[prost(bool, tag = "7")]
    pub epoch_not_match: bool,
}

/// Serves requests from other stores (runs on a blocking thread).
pub trait RequestHandler: Send + Sync {
    fn handle(&self, from_store: u64, request: Request) -> Reply;
}

enum Outgoing {
    Raft(Envelope),
    Request(Request),
    Reply(Reply),
}

#[derive(Clone, PartialEq, prost::Message)]
struct Envelope {
    #[prost(uint64, tag = "1")]
    region_id: u64,
    /// A raft-rs `Message`, protobuf-encoded — or one chunk of it.
    #[prost(bytes = "vec", tag = "2")]
    message: Vec<u8>,
    /// For a message sent in chunks (snapshots): how many chunks, and which
    /// this is. Chunks travel in order on one connection.
    #[prost(uint32, tag = "3")]
    chunks: u32,
    #[prost(uint32, tag = "4")]
    chunk: u32,
}

/// The TCP transport of one store.
pub struct TcpTransport {
    cluster_id: u64,
    store_id: u64,
    peers: HashMap<u64, SocketAddr>,
    queues: Mutex<HashMap<u64, mpsc::UnboundedSender<Outgoing>>>,
    runtime: tokio::runtime::Handle,
    pending: Mutex<HashMap<u64, crossbeam::channel::Sender<Reply>>>,
    next_request: std::sync::atomic::AtomicU64,
    handler: std::sync::OnceLock<Arc<dyn RequestHandler>>,
    resolver: std::sync::OnceLock<Resolver>,
    /// Other stores of this node (its learner store), by id: messages to
    /// them, from here or from the network, go straight to their inbox.
    locals: std::sync::RwLock<HashMap<u64, Sender<StoreMsg>>>,
}

/// Finds the address of a store that is not a founder (one that joined).
pub type Resolver = Arc<dyn Fn(u64) -> Option<SocketAddr> + Send + Sync>;

impl TcpTransport {
    /// Serves `listener` (delivering to `inbox`) and prepares connections to
    /// `peers` (store id → raft address), on `runtime`.
    pub fn start(
        cluster_id: u64,
        store_id: u64,
        listener: TcpListener,
        peers: HashMap<u64, SocketAddr>,
        inbox: Sender<StoreMsg>,
        runtime: tokio::runtime::Handle,
    ) -> Arc<Self> {
        let transport = Arc::new(TcpTransport {
            cluster_id,
            store_id,
            peers,
            queues: Mutex::new(HashMap::new()),
            runtime: runtime.clone(),
            pending: Mutex::new(HashMap::new()),
            next_request: std::sync::atomic::AtomicU64::new(1),
            handler: std::sync::OnceLock::new(),
            resolver: std::sync::OnceLock::new(),
            locals: std::sync::RwLock::new(HashMap::new()),
        });
        runtime.spawn(serve(listener, Arc::clone(&transport), inbox));
        transport
    }

    /// Sets where addresses of stores outside the founding peers come from
    /// (once): the region descriptors, which record joining stores.
    pub fn set_resolver(&self, resolver: Resolver) {
        let _ = self.resolver.set(resolver);
    }

    /// Adds another store of this node (its learner store, sharing the
    /// node's address): messages to `store_id` are delivered to `inbox`.
    pub fn add_local(&self, store_id: u64, inbox: Sender<StoreMsg>) {
        self.locals
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(store_id, inbox);
    }

    /// The inbox of a store of this node other than the main one.
    fn local(&self, store_id: u64) -> Option<Sender<StoreMsg>> {
        self.locals
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&store_id)
            .cloned()
    }

    /// Sets who answers requests from other stores (once).
    pub fn set_handler(&self, handler: Arc<dyn RequestHandler>) {
        let _ = self.handler.set(handler);
    }

    /// Sends `request` to store `to` and waits for its reply.
    pub fn call(&self, to: u64, mut request: Request, timeout: Duration) -> Result<Reply, String> {
        let id = self
            .next_request
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        request.id = id;
        let (tx, rx) = crossbeam::channel::bounded(1);
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        let sent = self
            .queue(to)
            .is_some_and(|q| q.send(Outgoing::Request(request)).is_ok());
        let reply = if sent {
            rx.recv_timeout(timeout)
                .map_err(|_| format!("store {to} did not answer"))
        } else {
            Err(format!("no route to store {to}"))
        };
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        reply
    }

    fn deliver_reply(&self, reply: Reply) {
        if let Some(tx) = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&reply.id)
        {
            let _ = tx.send(reply);
        }
    }

    /// The connection to the node hosting store `to` (one per node, shared
    /// by its stores).
    fn queue(&self, to: u64) -> Option<mpsc::UnboundedSender<Outgoing>> {
        let to = crate::store::node_of(to);
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(q) = queues.get(&to).filter(|q| !q.is_closed()) {
            return Some(q.clone());
        }
        let addr = match self.peers.get(&to) {
            Some(a) => *a,
            None => (self.resolver.get()?)(to)?,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        self.runtime
            .spawn(connection(addr, self.cluster_id, self.store_id, rx));
        queues.insert(to, tx.clone());
        Some(tx)
    }
}

impl Transport for TcpTransport {
    fn send(&self, region_id: u64, msgs: Vec<Message>) {
        for m in msgs {
            if let Some(inbox) = self.local(m.to) {
                let _ = inbox.send(StoreMsg::Raft {
                    region_id,
                    message: Box::new(m),
                });
                continue;
            }
            let Some(q) = self.queue(m.to) else {
                debug!(to = m.to, "no address for store");
                continue;
            };
            let message = m.write_to_bytes().unwrap_or_default();
            for e in envelopes(region_id, message) {
                let _ = q.send(Outgoing::Raft(e));
            }
        }
    }
}

/// One envelope for a message, or several chunks for a large one.
fn envelopes(region_id: u64, message: Vec<u8>) -> Vec<Envelope> {
    if message.len() <= CHUNK {
        return vec![Envelope {
            region_id,
            message,
            chunks: 0,
            chunk: 0,
        }];
    }
    let parts: Vec<&[u8]> = message.chunks(CHUNK).collect();
    let chunks = parts.len() as u32;
    parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| Envelope {
            region_id,
            message: part.to_vec(),
            chunks,
            chunk: i as u32,
        })
        .collect()
}

/// Keeps a connection to `addr` and writes batches of queued envelopes,
/// reconnecting with backoff. Messages that cannot be written are dropped.
async fn connection(
    addr: SocketAddr,
    cluster_id: u64,
    from_store: u64,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
) {
    let mut backoff = Duration::from_millis(50);
    let mut stream: Option<TcpStream> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = RaftBatch {
            cluster_id,
            from_store,
            ..Default::default()
        };
        let mut next = Some(first);
        let (mut count, mut bytes) = (0, 0);
        while let Some(item) = next.take() {
            match item {
                Outgoing::Raft(e) => {
                    bytes += e.message.len();
                    batch.envelopes.push(e);
                }
                Outgoing::Request(r) => {
                    bytes += r.command.len();
                    batch.requests.push(r);
                }
                Outgoing::Reply(r) => batch.replies.push(r),
            }
            count += 1;
            if count < MAX_BATCH && bytes < FRAME_TARGET {
                next = rx.try_recv().ok();
            }
        }
        if stream.is_none() {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    stream = Some(s);
                    backoff = Duration::from_millis(50);
                }
                Err(e) => {
                    debug!(%addr, error = %e, "raft connection failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            }
        }
        let frame = encode_frame(&batch);
        if let Some(s) = stream.as_mut()
            && let Err(e) = s.write_all(&frame).await
        {
            debug!(%addr, error = %e, "raft connection lost");
            stream = None;
        }
    }
}

fn encode_frame(batch: &RaftBatch) -> Vec<u8> {
    let body = batch.encode_to_vec();
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

async fn serve(listener: TcpListener, transport: Arc<TcpTransport>, inbox: Sender<StoreMsg>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let (inbox, transport) = (inbox.clone(), Arc::clone(&transport));
                tokio::spawn(async move {
                    if let Err(reason) = receive(stream, transport, inbox).await {
                        warn!(%peer, %reason, "raft connection refused");
                    }
                });
            }
            Err(e) => {
                warn!(error = %e, "raft accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Reads frames until the peer closes (Ok) or sends something invalid (Err).
async fn receive(
    mut stream: TcpStream,
    transport: Arc<TcpTransport>,
    inbox: Sender<StoreMsg>,
) -> Result<(), String> {
    let cluster_id = transport.cluster_id;
    // A message arriving in chunks, reassembled in order.
    let mut partial: Vec<u8> = Vec::new();
    let mut partial_count: u32 = 0;
    loop {
        let mut len = [0u8; 4];
        if stream.read_exact(&mut len).await.is_err() {
            return Ok(());
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_FRAME {
            return Err(format!("frame of {len} bytes is over the limit"));
        }
        let mut body = vec![0u8; len];
        stream
            .read_exact(&mut body)
            .await
            .map_err(|e| format!("truncated frame: {e}"))?;
        let batch = RaftBatch::decode(body.as_slice()).map_err(|e| format!("bad frame: {e}"))?;
        if batch.cluster_id != cluster_id {
            return Err(format!(
                "frame from cluster {} (this is cluster {cluster_id})",
                batch.cluster_id
            ));
        }
        for env in batch.envelopes {
            let bytes = if env.chunks == 0 {
                env.message
            } else {
                if env.chunk != partial_count || env.chunk >= env.chunks {
                    return Err(format!(
                        "chunk {} of {} out of order",
                        env.chunk, env.chunks
                    ));
                }
                if partial.len() + env.message.len() > MAX_MESSAGE {
                    return Err("chunked message over the limit".into());
                }
                partial_count += 1;
                partial.extend_from_slice(&env.message);
                if partial_count < env.chunks {
                    continue;
                }
                partial_count = 0;
                std::mem::take(&mut partial)
            };
            let message =
                Message::parse_from_bytes(&bytes).map_err(|e| format!("bad raft message: {e}"))?;
            let inbox = transport.local(message.to).unwrap_or_else(|| inbox.clone());
            if inbox
                .send(StoreMsg::Raft {
                    region_id: env.region_id,
                    message: Box::new(message),
                })
                .is_err()
            {
                return Ok(());
            }
        }
        for reply in batch.replies {
            transport.deliver_reply(reply);
        }
        for request in batch.requests {
            let (transport, from) = (Arc::clone(&transport), batch.from_store);
            let Some(handler) = transport.handler.get().cloned() else {
                continue;
            };
            tokio::task::spawn_blocking(move || {
                let reply = handler.handle(from, request);
                if let Some(q) = transport.queue(from) {
                    let _ = q.send(Outgoing::Reply(reply));
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam::channel;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    fn msg(to: u64, from: u64, term: u64) -> Message {
        Message {
            to,
            from,
            term,
            ..Default::default()
        }
    }

    #[test]
    fn delivers_and_refuses_garbage_and_strangers() {
        let rt = runtime();
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let (inbox, received) = channel::unbounded();
        let _server =
            TcpTransport::start(7, 2, listener, HashMap::new(), inbox, rt.handle().clone());
        let mut peers = HashMap::new();
        peers.insert(2, addr);
        let other_listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let (other_inbox, _) = channel::unbounded();
        let client = TcpTransport::start(
            7,
            1,
            other_listener,
            peers,
            other_inbox,
            rt.handle().clone(),
        );
        client.send(1, vec![msg(2, 1, 5), msg(2, 1, 6)]);
        for term in [5, 6] {
            match received.recv_timeout(Duration::from_secs(10)).unwrap() {
                StoreMsg::Raft { region_id, message } => {
                    assert_eq!((region_id, message.term), (1, term))
                }
                _ => panic!("expected a raft message"),
            }
        }
        // Garbage, an oversized frame, and another cluster: each connection is closed, nothing delivered.
        rt.block_on(async {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).await.unwrap();
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
            let mut s = TcpStream::connect(addr).await.unwrap();
            let stranger = RaftBatch {
                cluster_id: 99,
                from_store: 1,
                envelopes: vec![Envelope {
                    region_id: 1,
                    message: msg(2, 1, 1).write_to_bytes().unwrap(),
                    chunks: 0,
                    chunk: 0,
                }],
                ..Default::default()
            };
            s.write_all(&encode_frame(&stranger)).await.unwrap();
        });
        assert!(
            received.recv_timeout(Duration::from_millis(300)).is_err(),
            "nothing from bad frames"
        );
        // A message larger than a chunk (a snapshot) arrives whole.
        let mut big = msg(2, 1, 9);
        big.mut_snapshot()
            .set_data(vec![7u8; 5 * CHUNK + 123].into());
        client.send(3, vec![big]);
        match received.recv_timeout(Duration::from_secs(10)).unwrap() {
            StoreMsg::Raft { region_id, message } => {
                assert_eq!((region_id, message.term), (3, 9));
                assert_eq!(message.get_snapshot().get_data().len(), 5 * CHUNK + 123);
            }
            _ => panic!("expected a raft message"),
        }
        // The transport still works afterwards.
        client.send(1, vec![msg(2, 1, 8)]);
        match received.recv_timeout(Duration::from_secs(10)).unwrap() {
            StoreMsg::Raft { message, .. } => assert_eq!(message.term, 8),
            _ => panic!("expected a raft message"),
        }
    }
}
