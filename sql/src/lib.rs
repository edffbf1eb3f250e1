//! Duet's SQL layer: it turns MySQL-dialect statements into work for the row
//! store and the columnar replica. The server reaches it through one seam, a
//! [`Session`] that executes one statement at a time and answers with an
//! [`Output`] or an [`Error`] that carries its MySQL code and SQLSTATE.
//!
//! This crate owns MySQL semantics (types, system variables, error codes),
//! the catalog, DDL, DML and the query engines' integration; it reaches
//! storage only through the transactional key-value seam in [`kv`], and
//! does not own the wire protocol (that is `duet-server`).

mod catalog;
mod ddl;
mod dialect;
mod error;
mod eval;
mod functions;
mod interrupt;
pub mod kv;
mod names;
mod nesting;
mod parse;
mod plan;
mod point;
mod router;
mod rules;
mod session;
mod table;
mod types;
mod value;
mod vars;

pub use catalog::{
    ColumnarCount, DROPPED_PREFIX, columnar_counts, definitions_range, dropped_range,
    schema_version,
};
pub use error::{Error, Result, Warning};
pub use interrupt::Interrupt;
pub use plan::columnar;
pub use rules::json::JsonError;
pub use session::{
    ClusterView, Database, DatabaseOptions, Identity, SERVER_VERSION, STATEMENT_STACK_SIZE,
    Session, SessionStatus, StatementMeta,
};
pub use table::source::{RemoteBatches, RemoteColumnar, RemoteError, RemoteScan, Span};
pub use value::{
    Column, Date, DateTime, FieldType, OkStatus, Output, ResultSet, RowSink, Time, Value,
    format_double,
};
