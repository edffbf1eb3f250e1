//! What one statement's plan reads through: its [`Scope`], found by the
//! table providers in the session config.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::interrupt;
use crate::interrupt::Bounds;
use crate::router::Engine::Row;
use crate::router::Routing;
use crate::table::source::RowSource;

/// The hidden column that carries each row's key, in the scans of the
/// table an `UPDATE` or `DELETE` changes.
pub(crate) const HANDLE_COLUMN: &str = "_duet_handle";

/// Runs `f` to completion from synchronous code inside the runtime.
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

/// What one statement's plan reads through: the rows at its snapshot, the
/// table whose scans also return [`HANDLE_COLUMN`] (UPDATE and DELETE), and
/// the router's rules.
pub(crate) struct Scope {
    pub source: Arc<dyn RowSource>,
    pub handle_table: Option<i64>,
    pub routing: Arc<Routing>,
    /// Set when the plan names an `information_schema` table, whose rows
    /// are read as the plan is made: such a plan is not kept.
    pub catalog_read: AtomicBool,
    /// What bounds the statement (its stop signal, memory, spill files):
    /// those of the statement the creating thread runs, if any.
    pub bounds: Option<Bounds>,
}

impl Scope {
    /// A scope for reading `source` with the session's engines and no hints.
    pub(crate) fn new(source: Arc<dyn RowSource>, handle_table: Option<i64>) -> Self {
        Scope {
            source,
            handle_table,
            routing: Arc::new(Routing {
                allowed: vec![Row],
                ..Routing::default()
            }),
            catalog_read: AtomicBool::new(false),
            bounds: interrupt::current(),
        }
    }
}
