//! Where commands execute. [`TxnStore`] is the seam that Raft implements in a
//! cluster (propose, then apply on every replica); [`LocalStore`] applies
//! commands directly to one engine, one at a time, which is the same order
//! guarantee Raft's apply gives.

use std::sync::{Arc, Mutex};

use super::commands::{self, Command, Response};
use super::read::{Answer, Read, serve};
use crate::engine::{Engine, WriteOptions};
use crate::error::Result;

/// Executes transaction commands in a single total order and answers reads.
pub trait TxnStore: Send + Sync + 'static {
    /// Answers `read` at a linearizable point: it reflects every command
    /// executed (anywhere) before the call, wherever the keys live.
    fn read(&self, read: &Read) -> Result<Answer>;
    /// Returns once this node has applied every command executed (anywhere)
    /// before the call, in every region it holds: the point that readers of
    /// the node's own replicas (the columnar replica) wait for. `read_ts`
    /// is the timestamp they will read at (0: none): nothing commits at or
    /// below it afterwards.
    fn catch_up(&self, read_ts: u64) -> Result<()>;
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
    fn read(&self, read: &Read) -> Result<Answer> {
        serve(&self.engine.snapshot(), read)
    }

    fn catch_up(&self, _read_ts: u64) -> Result<()> {
        Ok(())
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
