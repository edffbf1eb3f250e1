//! Where commands execute. [`TxnStore`] is the seam that Raft implements in a
//! cluster (propose, then apply on every replica); [`LocalStore`] applies
//! commands directly to one engine, one at a time, which is the same order
//! guarantee Raft's apply gives.

use std::sync::{Arc, Mutex};

use super::commands::{self, Command, Response};
use crate::engine::{Engine, WriteOptions};
use crate::error::Result;

/// Executes transaction commands in a single total order and serves snapshots.
pub trait TxnStore: Send + Sync + 'static {
    type Engine: Engine;

    /// A snapshot that reflects every command executed (anywhere) before the
    /// call: a linearizable read point.
    fn snapshot(&self) -> Result<<Self::Engine as Engine>::Snapshot>;
    /// Executes one command.
    fn execute(&self, cmd: Command) -> Result<Response>;
}

/// Commands applied straight to one engine.
pub struct LocalStore<E: Engine> {
    engine: Arc<E>,
    apply: Mutex<()>,
    write_options: WriteOptions,
}

impl<E: Engine> LocalStore<E> {
    /// `sync` makes every command durable before it returns.
    pub fn new(engine: Arc<E>, sync: bool) -> Self {
        LocalStore {
            engine,
            apply: Mutex::new(()),
            write_options: WriteOptions { sync },
        }
    }

    pub fn engine(&self) -> &Arc<E> {
        &self.engine
    }
}

impl<E: Engine> TxnStore for LocalStore<E> {
    type Engine = E;

    fn snapshot(&self) -> Result<E::Snapshot> {
        Ok(self.engine.snapshot())
    }

    fn execute(&self, cmd: Command) -> Result<Response> {
        let _order = self.apply.lock().unwrap_or_else(|e| e.into_inner());
        let snap = self.engine.snapshot();
        let (batch, response) = commands::apply(&snap, &cmd)?;
        if !batch.is_empty() {
            self.engine.write(&batch, self.write_options)?;
        }
        Ok(response)
    }
}
