//! Queries through DataFusion. A prepared MySQL query ([`rewrite`]) is
//! planned against the catalog's providers ([`providers`]); each table
//! access asks [`crate::router`] for its engine and path and reads the row
//! store ([`row_table`], [`scans`]) or the columnar replica ([`columnar`]);
//! analyzer rules give comparisons MySQL's coercions ([`coerce`]) and text
//! its collation ([`collate`]); [`decorrelate`] unnests subqueries before
//! planning; [`run`] makes the context, runs the plan and turns its Arrow
//! batches into client rows ([`arrow`]); [`explain`] prints it.
//!
//! This layer may import everything below it (functions, the router,
//! tables, the catalog, rules and values), never the session or the
//! statement handlers above it.

pub(crate) mod access;
pub(crate) mod arrow;
pub(crate) mod coerce;
pub(crate) mod collate;
pub mod columnar;
pub(crate) mod decorrelate;
pub(crate) mod explain;
pub(crate) mod mysql_functions;
pub(crate) mod providers;
pub(crate) mod rewrite;
pub(crate) mod row_table;
pub(crate) mod run;
pub(crate) mod scans;
pub(crate) mod scope;
