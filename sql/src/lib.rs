//! Duet's SQL layer: it turns MySQL-dialect statements into work for the row
//! store and the columnar replica. The server reaches it through one seam, a
//! [`Session`] that executes one statement at a time and answers with an
//! [`Output`] or an [`Error`] that carries its MySQL code and SQLSTATE.
//!
//! This crate owns MySQL semantics (types, system variables, error codes),
//! the catalog, DDL, DML and the query engines' integration; it reaches
//! storage only through the transactional key-value seam in [`kv`], and
//! does not own the wire protocol (that is `duet-server`).

mod access;
mod autoid;
mod catalog;
mod coerce;
mod collate;
mod collation;
pub mod columnar;
mod ddl;
mod decorrelate;
mod dialect;
mod error;
mod eval;
mod exec;
mod explain;
mod functions;
mod infoschema;
mod interrupt;
mod json;
pub mod kv;
mod mysqlfn;
mod names;
mod nesting;
mod point;
mod processes;
mod query;
mod ranges;
mod scans;
mod session;
mod stats;
mod strfn;
mod table;
mod timefn;
mod types;
mod userlocks;
mod value;
mod vars;

pub use catalog::{DROPPED_PREFIX, dropped_range};
pub use error::{Error, Result};
pub use interrupt::Interrupt;
pub use session::{
    Database, DatabaseOptions, Identity, SERVER_VERSION, STATEMENT_STACK_SIZE, Session,
    SessionStatus, StatementMeta, Warning,
};
pub use value::{
    Column, Date, DateTime, FieldType, OkStatus, Output, ResultSet, RowSink, Time, Value,
    format_double,
};
