//! The client side of the node service, and its server's start: Raft
//! messages go to each other node on one `Raft` stream (batched from what
//! is queued, snapshots in chunks, the stream opened again with backoff
//! when it breaks; what was lost Raft sends again), and requests are unary
//! calls over the same HTTP/2 connection. Everything runs on the runtime
//! the transport is given; [`GrpcTransport::wait`] lets a plain thread wait
//! for a call.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use crossbeam::channel::Sender;
use protobuf::Message as _;
use raft::prelude::Message;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::transport::{Channel, Endpoint, Server};
use tracing::{debug, warn};

use super::{RegionTag, Transport};
use crate::rpc::messages::{Envelope, RaftBatch, Reply, Request};
use crate::rpc::server::{Handlers, Inboxes, NodeService};
use crate::rpc::service::node_client::NodeClient;
use crate::rpc::service::node_server::NodeServer;
use crate::rpc::{KvHandler, MAX_MESSAGE, PdHandler, RequestHandler};
use crate::store::StoreMsg;

/// Messages per batch at most.
const MAX_BATCH: usize = 256;
/// A batch stops taking messages past this many bytes.
const BATCH_TARGET: usize = 4 << 20;
/// Messages larger than this (snapshots) are sent in chunks of this size.
const CHUNK: usize = 1 << 20;
/// HTTP/2 flow-control windows: wide enough that a batch of appends or a
/// snapshot's chunks are not held back a round trip per 64 KiB.
const STREAM_WINDOW: u32 = 4 << 20;
const CONNECTION_WINDOW: u32 = 16 << 20;

/// Finds the address of a store that is not a founder (one that joined).
pub type Resolver = Arc<dyn Fn(u64) -> Option<SocketAddr> + Send + Sync>;

/// A client of another node's service.
pub type NodeChannel = NodeClient<Channel>;

/// The node service of one node: its server, and its connections to others.
pub struct GrpcTransport {
    cluster_id: u64,
    store_id: u64,
    peers: HashMap<u64, SocketAddr>,
    runtime: tokio::runtime::Handle,
    /// One HTTP/2 connection per other node, shared by every call.
    channels: Mutex<HashMap<u64, Channel>>,
    /// The queue of each other node's `Raft` stream.
    streams: Mutex<HashMap<u64, mpsc::UnboundedSender<Envelope>>>,
    inboxes: Arc<Inboxes>,
    handlers: Arc<Handlers>,
    resolver: OnceLock<Resolver>,
    /// Addresses learned since the start (the placement driver's members).
    book: RwLock<HashMap<u64, SocketAddr>>,
}

impl GrpcTransport {
    /// Serves the node service on `listener` (Raft messages to `inbox`) and
    /// prepares connections to `peers` (store id → raft address), on
    /// `runtime`.
    pub fn start(
        cluster_id: u64,
        store_id: u64,
        listener: TcpListener,
        peers: HashMap<u64, SocketAddr>,
        inbox: Sender<StoreMsg>,
        runtime: tokio::runtime::Handle,
    ) -> Arc<Self> {
        let inboxes = Arc::new(Inboxes::new(inbox));
        let handlers = Arc::new(Handlers::default());
        let service = NodeServer::new(NodeService::new(
            cluster_id,
            Arc::clone(&inboxes),
            Arc::clone(&handlers),
        ))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
        runtime.spawn(async move {
            let incoming = TcpListenerStream::new(listener).map(|s| {
                if let Ok(s) = &s {
                    let _ = s.set_nodelay(true);
                }
                s
            });
            if let Err(e) = Server::builder()
                .initial_stream_window_size(Some(STREAM_WINDOW))
                .initial_connection_window_size(Some(CONNECTION_WINDOW))
                .add_service(service)
                .serve_with_incoming(incoming)
                .await
            {
                warn!(error = %e, "node service stopped");
            }
        });
        Arc::new(GrpcTransport {
            cluster_id,
            store_id,
            peers,
            runtime,
            channels: Mutex::new(HashMap::new()),
            streams: Mutex::new(HashMap::new()),
            inboxes,
            handlers,
            resolver: OnceLock::new(),
            book: RwLock::new(HashMap::new()),
        })
    }

    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    /// The other nodes this one knows the address of: those it was started
    /// with and those learned since.
    pub fn known_nodes(&self) -> Vec<u64> {
        let mut nodes: Vec<u64> = self.peers.keys().copied().collect();
        nodes.extend(self.book.read().unwrap_or_else(|e| e.into_inner()).keys());
        nodes.retain(|n| *n != self.store_id);
        nodes.sort_unstable();
        nodes.dedup();
        nodes
    }

    /// Records where node `node` listens (from the placement driver's list
    /// of members); a changed address drops the old connection.
    pub fn learn_address(&self, node: u64, addr: SocketAddr) {
        if node == self.store_id || self.peers.get(&node) == Some(&addr) {
            return;
        }
        let mut book = self.book.write().unwrap_or_else(|e| e.into_inner());
        if book.insert(node, addr).is_some_and(|old| old != addr) {
            (self.channels.lock().unwrap_or_else(|e| e.into_inner())).remove(&node);
            (self.streams.lock().unwrap_or_else(|e| e.into_inner())).remove(&node);
        }
    }

    /// Sets who answers the placement driver's messages (once).
    pub fn set_pd_handler(&self, handler: Arc<dyn PdHandler>) {
        let _ = self.handlers.pd.set(handler);
    }

    /// Sets where addresses of stores outside the founding peers come from
    /// (once): the region descriptors, which record joining stores.
    pub fn set_resolver(&self, resolver: Resolver) {
        let _ = self.resolver.set(resolver);
    }

    /// Adds another store of this node (its learner store, sharing the
    /// node's address): messages to `store_id` are delivered to `inbox`.
    pub fn add_local(&self, store_id: u64, inbox: Sender<StoreMsg>) {
        self.inboxes.add_local(store_id, inbox);
    }

    /// Sets who answers `ColumnarScan` (once).
    pub fn set_columnar_handler(&self, handler: Arc<dyn crate::rpc::ColumnarHandler>) {
        let _ = self.handlers.columnar.set(handler);
    }

    /// Sets who answers forwarded requests and KV calls (once).
    pub fn set_handlers<H: RequestHandler + KvHandler + 'static>(&self, handler: Arc<H>) {
        let _ = self.handlers.forward.set(handler.clone());
        let _ = self.handlers.kv.set(handler);
    }

    /// Where node `node` listens, as this node knows it.
    pub fn address(&self, node: u64) -> Option<SocketAddr> {
        if let Some(a) = self.peers.get(&node) {
            return Some(*a);
        }
        if let Some(a) = self
            .book
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&node)
        {
            return Some(*a);
        }
        (self.resolver.get()?)(node)
    }

    /// A client of whatever node listens at `addr` (a `--join` address,
    /// whose node id is not known yet).
    pub fn client_at(&self, addr: SocketAddr) -> Option<NodeChannel> {
        let _runtime = self.runtime.enter();
        let channel = endpoint(addr)?.connect_lazy();
        Some(
            NodeClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
    }

    /// The connection to the node hosting store `to` (made lazily: the
    /// first call connects, a broken one reconnects).
    fn channel(&self, to: u64) -> Option<Channel> {
        let node = crate::store::node_of(to);
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = channels.get(&node) {
            return Some(c.clone());
        }
        let addr = self.address(node)?;
        let _runtime = self.runtime.enter();
        let channel = endpoint(addr)?.connect_lazy();
        channels.insert(node, channel.clone());
        Some(channel)
    }

    /// A client of the node hosting store `to`.
    pub fn client(&self, to: u64) -> Option<NodeChannel> {
        Some(
            NodeClient::new(self.channel(to)?)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
    }

    /// Runs `call` on the transport's runtime and waits for it, for at most
    /// `timeout`.
    pub fn wait<T: Send + 'static>(
        &self,
        call: impl Future<Output = T> + Send + 'static,
        timeout: Duration,
    ) -> Result<T, String> {
        let (tx, rx) = crossbeam::channel::bounded(1);
        self.runtime.spawn(async move {
            if let Ok(out) = tokio::time::timeout(timeout, call).await {
                let _ = tx.send(out);
            }
        });
        rx.recv_timeout(timeout + Duration::from_millis(100))
            .map_err(|_| "no answer in time".to_string())
    }

    /// Sends `request` to store `to` and waits for its reply.
    pub fn call(&self, to: u64, mut request: Request, timeout: Duration) -> Result<Reply, String> {
        request.cluster_id = self.cluster_id;
        let mut client = self.client(to).ok_or(format!("no route to store {to}"))?;
        let reply = self.wait(async move { client.forward(request).await }, timeout)?;
        reply
            .map(tonic::Response::into_inner)
            .map_err(|status| format!("store {to}: {}", status.message()))
    }

    /// The queue of the `Raft` stream to the node hosting store `to`.
    fn stream(&self, to: u64) -> Option<mpsc::UnboundedSender<Envelope>> {
        let node = crate::store::node_of(to);
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(q) = streams.get(&node).filter(|q| !q.is_closed()) {
            return Some(q.clone());
        }
        let channel = self.channel(to)?;
        let (tx, rx) = mpsc::unbounded_channel();
        self.runtime
            .spawn(raft_stream(channel, self.cluster_id, self.store_id, rx));
        streams.insert(node, tx.clone());
        Some(tx)
    }
}

/// How this node connects to another.
fn endpoint(addr: SocketAddr) -> Option<Endpoint> {
    Some(
        Endpoint::from_shared(format!("http://{addr}"))
            .ok()?
            .connect_timeout(Duration::from_secs(2))
            .initial_stream_window_size(Some(STREAM_WINDOW))
            .initial_connection_window_size(Some(CONNECTION_WINDOW))
            .tcp_nodelay(true),
    )
}

impl Transport for GrpcTransport {
    fn send(&self, tag: RegionTag, msgs: Vec<Message>) {
        for m in msgs {
            if let Some(inbox) = self.inboxes.local(m.to) {
                let message = Box::new(m);
                let _ = inbox.send(StoreMsg::Raft { tag, message });
                continue;
            }
            let Some(q) = self.stream(m.to) else {
                debug!(to = m.to, "no address for store");
                continue;
            };
            let message = m.write_to_bytes().unwrap_or_default();
            for e in envelopes(tag, message) {
                let _ = q.send(e);
            }
        }
    }

    fn send_tombstone(&self, tag: RegionTag, to: u64) {
        if let Some(inbox) = self.inboxes.local(to) {
            let _ = inbox.send(StoreMsg::Tombstone { tag });
        } else if let Some(q) = self.stream(to) {
            let _ = q.send(Envelope {
                region_id: tag.region_id,
                conf_ver: tag.conf_ver,
                tombstone_to: to,
                ..Envelope::default()
            });
        }
    }
}

/// One envelope for a message, or several chunks for a large one.
fn envelopes(tag: RegionTag, message: Vec<u8>) -> Vec<Envelope> {
    let envelope = Envelope {
        region_id: tag.region_id,
        conf_ver: tag.conf_ver,
        ..Envelope::default()
    };
    if message.len() <= CHUNK {
        return vec![Envelope {
            message,
            ..envelope
        }];
    }
    let parts: Vec<&[u8]> = message.chunks(CHUNK).collect();
    let chunks = parts.len() as u32;
    parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| Envelope {
            message: part.to_vec(),
            chunks,
            chunk: i as u32,
            ..envelope.clone()
        })
        .collect()
}

/// Keeps a `Raft` stream open to one node and feeds it batches of what is
/// queued; when the stream breaks, opens another after a backoff.
/// Messages queued meanwhile wait; those in a broken stream are lost.
async fn raft_stream(
    channel: Channel,
    cluster_id: u64,
    from_store: u64,
    mut queue: mpsc::UnboundedReceiver<Envelope>,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        // A stream is opened only once there is something to send.
        let Some(first) = queue.recv().await else {
            return;
        };
        let mut next = Some(first);
        let (tx, rx) = mpsc::channel::<RaftBatch>(16);
        let mut client = NodeClient::new(channel.clone()).max_encoding_message_size(MAX_MESSAGE);
        let opened = Instant::now();
        let call = tokio::spawn(async move { client.raft(ReceiverStream::new(rx)).await });
        loop {
            let first = match next.take() {
                Some(e) => e,
                None => match queue.recv().await {
                    Some(e) => e,
                    None => return,
                },
            };
            let batch = gather(cluster_id, from_store, first, &mut queue);
            if tx.send(batch).await.is_err() {
                break;
            }
        }
        if let Ok(Err(status)) = call.await {
            debug!(code = ?status.code(), message = status.message(), "raft stream ended");
        }
        if opened.elapsed() > Duration::from_secs(2) {
            backoff = Duration::from_millis(50);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// A batch of `first` and whatever else is queued, within the limits.
fn gather(
    cluster_id: u64,
    from_store: u64,
    first: Envelope,
    queue: &mut mpsc::UnboundedReceiver<Envelope>,
) -> RaftBatch {
    let mut bytes = first.message.len();
    let mut envelopes = vec![first];
    while envelopes.len() < MAX_BATCH && bytes < BATCH_TARGET {
        match queue.try_recv() {
            Ok(e) => {
                bytes += e.message.len();
                envelopes.push(e);
            }
            Err(_) => break,
        }
    }
    RaftBatch {
        cluster_id,
        from_store,
        envelopes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam::channel;
    use tokio::io::AsyncWriteExt;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    fn tag(region_id: u64) -> RegionTag {
        RegionTag {
            region_id,
            conf_ver: 1,
        }
    }

    fn msg(to: u64, from: u64, term: u64) -> Message {
        Message {
            to,
            from,
            term,
            ..Default::default()
        }
    }

    fn next_term(received: &channel::Receiver<StoreMsg>) -> (u64, u64, usize) {
        match received.recv_timeout(Duration::from_secs(10)).unwrap() {
            StoreMsg::Raft { tag, message } => (
                tag.region_id,
                message.term,
                message.get_snapshot().get_data().len(),
            ),
            _ => panic!("expected a raft message"),
        }
    }

    #[test]
    fn delivers_and_refuses_garbage_and_strangers() {
        let rt = runtime();
        let bind = || rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let listener = bind();
        let addr = listener.local_addr().unwrap();
        let (inbox, received) = channel::unbounded();
        let _server =
            GrpcTransport::start(7, 2, listener, HashMap::new(), inbox, rt.handle().clone());
        let peers = HashMap::from([(2, addr)]);
        let (other_inbox, _) = channel::unbounded();
        let client = GrpcTransport::start(
            7,
            1,
            bind(),
            peers.clone(),
            other_inbox.clone(),
            rt.handle().clone(),
        );
        client.send(tag(1), vec![msg(2, 1, 5), msg(2, 1, 6)]);
        assert_eq!(next_term(&received), (1, 5, 0));
        assert_eq!(next_term(&received), (1, 6, 0));

        // Garbage on a raw connection, and a node of another cluster: their
        // streams are refused, nothing is delivered.
        rt.block_on(async {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).await.unwrap();
        });
        let stranger = GrpcTransport::start(99, 3, bind(), peers, other_inbox, rt.handle().clone());
        stranger.send(tag(1), vec![msg(2, 3, 1)]);
        let reply = client.call(2, Request::default(), Duration::from_secs(5));
        assert!(
            reply.unwrap_err().contains("starting"),
            "no handler set yet"
        );
        let refused = stranger.call(2, Request::default(), Duration::from_secs(5));
        assert!(refused.unwrap_err().contains("cluster 99"));
        assert!(
            received.recv_timeout(Duration::from_millis(300)).is_err(),
            "nothing from strangers"
        );

        // A message larger than a chunk (a snapshot) arrives whole.
        let mut big = msg(2, 1, 9);
        big.mut_snapshot()
            .set_data(vec![7u8; 5 * CHUNK + 123].into());
        client.send(tag(3), vec![big]);
        assert_eq!(next_term(&received), (3, 9, 5 * CHUNK + 123));
        // The transport still works afterwards.
        client.send(tag(1), vec![msg(2, 1, 8)]);
        assert_eq!(next_term(&received), (1, 8, 0));
        // A tombstone notice travels the same stream.
        let notice = RegionTag {
            region_id: 4,
            conf_ver: 9,
        };
        client.send_tombstone(notice, 2);
        match received.recv_timeout(Duration::from_secs(10)).unwrap() {
            StoreMsg::Tombstone { tag } => assert_eq!(tag, notice),
            _ => panic!("expected a tombstone notice"),
        }
    }

    #[test]
    fn a_stream_to_a_node_that_comes_back_resumes() {
        let rt = runtime();
        // Reserve an address, then free it: the peer is down at first.
        let addr = rt
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .unwrap()
            .local_addr()
            .unwrap();
        let (other_inbox, _) = channel::unbounded();
        let client = GrpcTransport::start(
            7,
            1,
            rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap(),
            HashMap::from([(2, addr)]),
            other_inbox,
            rt.handle().clone(),
        );
        client.send(tag(1), vec![msg(2, 1, 1)]);
        std::thread::sleep(Duration::from_millis(200));
        let (inbox, received) = channel::unbounded();
        let listener = rt.block_on(TcpListener::bind(addr)).unwrap();
        let _server =
            GrpcTransport::start(7, 2, listener, HashMap::new(), inbox, rt.handle().clone());
        // Raft sends again what was lost; here: keep sending until one arrives.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            client.send(tag(1), vec![msg(2, 1, 4)]);
            if let Ok(StoreMsg::Raft { message, .. }) =
                received.recv_timeout(Duration::from_millis(200))
            {
                assert_eq!(message.term, 4);
                break;
            }
            assert!(Instant::now() < deadline, "the stream never resumed");
        }
    }
}
