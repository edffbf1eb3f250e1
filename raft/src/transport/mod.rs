//! How Raft messages travel between stores. A [`Transport`] takes messages
//! addressed to peers (peer id = store id for now) and delivers them to the
//! store that hosts the peer. [`LocalRouter`] connects stores in one process
//! and can drop traffic between chosen stores, for tests; [`grpc`] connects
//! stores across processes, over the node service.

pub mod grpc;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crossbeam::channel::Sender;
use raft::prelude::Message;

pub use crate::region::RegionTag;
use crate::store::StoreMsg;

/// Delivers Raft messages to other stores. Delivery is best effort: Raft
/// retries what is lost.
pub trait Transport: Send + Sync + 'static {
    fn send(&self, tag: RegionTag, msgs: Vec<Message>);
    /// Tells store `to` that region `tag.region_id`, at membership version
    /// `tag.conf_ver`, no longer has a replica on it.
    fn send_tombstone(&self, tag: RegionTag, to: u64);
}

#[derive(Default)]
struct Routes {
    stores: HashMap<u64, Sender<StoreMsg>>,
    cut: HashSet<(u64, u64)>,
}

/// In-process delivery between stores, with partitions on demand.
#[derive(Clone, Default)]
pub struct LocalRouter {
    routes: Arc<Mutex<Routes>>,
}

impl LocalRouter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `store_id` reachable through `sender`.
    pub fn register(&self, store_id: u64, sender: Sender<StoreMsg>) {
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stores
            .insert(store_id, sender);
    }

    /// Removes a store (as if its process died).
    pub fn unregister(&self, store_id: u64) {
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stores
            .remove(&store_id);
    }

    /// Drops all traffic between the two groups, both ways.
    pub fn partition(&self, a: &[u64], b: &[u64]) {
        let mut r = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        for x in a {
            for y in b {
                r.cut.insert((*x, *y));
                r.cut.insert((*y, *x));
            }
        }
    }

    pub fn heal(&self) {
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cut
            .clear();
    }
}

impl Transport for LocalRouter {
    fn send(&self, tag: RegionTag, msgs: Vec<Message>) {
        let r = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        for m in msgs {
            if r.cut.contains(&(m.from, m.to)) {
                continue;
            }
            if let Some(tx) = r.stores.get(&m.to) {
                let _ = tx.send(StoreMsg::Raft {
                    tag,
                    message: Box::new(m),
                });
            }
        }
    }

    fn send_tombstone(&self, tag: RegionTag, to: u64) {
        let r = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = r.stores.get(&to) {
            let _ = tx.send(StoreMsg::Tombstone { tag });
        }
    }
}
