//! The seam between the server and SQL: a [`Database`] shared by every
//! connection, and a [`Session`] per connection that executes one statement at
//! a time (text or prepared) and returns rows, an OK, or a typed error.
//!
//! The session answers what needs no table itself — the statements clients
//! send on connect, `SET` and `SHOW` ([`show`]), constant `SELECT`s, `USE`
//! — and hands statements on tables to [`exec`], which runs DML itself and
//! passes schema statements to [`schema`], queries to [`select`] (and on to
//! DataFusion, [`crate::plan`]) and transaction control to [`txn`].
//! [`words`] reads the statements the parser does not know.
//!
//! This folder is the top layer, the only one that knows the session; it
//! may import every layer below. Here is the [`Session`] and its
//! [`Database`]; the files beside it add its methods by concern and import
//! this one, never the other way round.

pub(crate) mod exec;
pub(crate) mod processes;
pub(crate) mod regions;
pub(crate) mod schema;
pub(crate) mod select;
pub(crate) mod show;
pub(crate) mod txn;
pub(crate) mod userlocks;
pub(crate) mod words;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use datafusion::execution::disk_manager::{DiskManager, DiskManagerBuilder, DiskManagerMode};
use datafusion::sql::sqlparser::ast::{self, Expr, ObjectName, SelectItem, SetExpr, Statement};

use crate::catalog::Catalog;
use crate::catalog::IndexInfo;
use crate::catalog::SchemaWriter;
use crate::catalog::autoid::AutoIds;
use crate::error::{Error, Result, Warning};
use crate::eval::{self, Env, SessionFn};
use crate::interrupt;
use crate::interrupt::{Bounds, Interrupt, Running};
use crate::kv;
use crate::kv::Checkpoint;
use crate::kv::{Kv, KvTxn, SharedTxn};
use crate::names;
use crate::parse::{expr_text, number_placeholders, parse_one, statement_kind};
use crate::plan::run::GenericPlan;
use crate::point::PointGet;
use crate::session::processes::Processes;
use crate::session::userlocks::UserLocks;
use crate::session::words::{
    columnar_replica_target, do_expressions, is_consistent_snapshot_start, is_dual,
    is_show_engines, is_show_warnings, keys_toggle_target, max_execution_time_hint, name_parts,
    show_create_database_target, show_grants_target, show_index_target, show_table_regions_target,
    split_table_statement, table_lock_statement, table_status_query, use_target,
};
use crate::table::source::RemoteColumnar;
use crate::table::stats::Stats;
use crate::types;
use crate::value::{Column, OkStatus, Output, ResultSet, RowSink, Value};
use crate::vars::{Globals, SessionVars, VarScope};

/// The version string Duet reports to clients (`SELECT VERSION()`, handshake).
pub const SERVER_VERSION: &str = concat!("8.0.11-Duet-", env!("CARGO_PKG_VERSION"));

/// Databases every instance shows that are not in the catalog.
pub(super) const BUILTIN_DATABASES: &[&str] = &["information_schema", "mysql"];

/// The database created on first start, as MySQL installs one.
const DEFAULT_DATABASE: &str = "test";

/// Whether `name` is a built-in (virtual) database.
pub(crate) fn is_builtin_database(name: &str) -> bool {
    BUILTIN_DATABASES
        .iter()
        .any(|d| d.eq_ignore_ascii_case(name))
}

/// The spill files of queries over their memory quota: a directory
/// `spill` in the data directory, emptied of what an earlier run left.
/// `None` (queries over quota fail) if it cannot be made.
fn spill_files(data_dir: &str) -> Option<Arc<DiskManager>> {
    let dir = std::path::Path::new(data_dir).join("spill");
    let _ = std::fs::remove_dir_all(&dir);
    let made = std::fs::create_dir_all(&dir)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            DiskManagerBuilder::default()
                .with_mode(DiskManagerMode::Directories(vec![dir.clone()]))
                .build()
                .map_err(|e| e.to_string())
        });
    match made {
        Ok(manager) => Some(Arc::new(manager)),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "queries cannot spill");
            None
        }
    }
}

/// Settings of a database instance that sessions can observe.
#[derive(Debug, Clone)]
pub struct DatabaseOptions {
    /// The MySQL port, reported as `@@port`.
    pub mysql_port: u16,
    /// Largest packet accepted, reported as `@@max_allowed_packet`.
    pub max_allowed_packet: u64,
    /// Reported as `@@max_connections`.
    pub max_connections: u64,
    /// Reported as `@@datadir`.
    pub data_dir: String,
    /// The columnar replica of this node's regions, if it keeps one.
    pub columnar: Option<Arc<duet_columnar::Replica>>,
    /// This node's id in its cluster (1 for a single node).
    pub node_id: u64,
    /// Threads of the query engine's runtime (0: one per core).
    pub query_threads: usize,
    /// The cluster's stores and regions as the placement driver reports
    /// them (`information_schema.duet_stores`, `duet_regions`).
    pub cluster: Option<Arc<dyn ClusterView>>,
    /// Other nodes' columnar replicas, for the regions whose columnar
    /// learners are not on this node.
    pub remote_columnar: Option<Arc<dyn RemoteColumnar>>,
}

/// Where the SQL layer reads the cluster's layout from: the report that
/// `GET /cluster` serves (`{"stores": [...], "regions": [...]}`).
pub trait ClusterView: Send + Sync {
    fn report(&self) -> std::result::Result<serde_json::Value, String>;
    /// Splits the regions holding `keys` at each of them (on each region's
    /// leader, wherever it is) and returns how many regions it made (a key
    /// where a region already starts makes none).
    fn split(&self, keys: &[Vec<u8>]) -> std::result::Result<usize, String>;
}

impl std::fmt::Debug for dyn ClusterView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterView")
    }
}

/// The stack of a thread that runs statements (a connection's statement
/// thread, a worker of the query engine's runtime): deep enough for a
/// statement nested [`crate::nesting::MAX_DEPTH`] levels, in an
/// unoptimized build, with room to spare. Only what a statement touches is
/// ever resident.
pub const STATEMENT_STACK_SIZE: usize = 64 << 20;

/// The query engine's runtime: the threads that run the parts of a query
/// that the query engine spreads out (partitions, exchanges), apart from
/// the network's and from the statement threads, so that analytic work
/// never holds up a connection's I/O or another connection's point reads.
struct QueryRuntime(Option<tokio::runtime::Runtime>);

impl QueryRuntime {
    fn start(threads: usize) -> Result<QueryRuntime> {
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("duet-query")
            .thread_stack_size(STATEMENT_STACK_SIZE)
            .enable_all()
            .build()
            .map(|rt| QueryRuntime(Some(rt)))
            .map_err(|e| Error::Internal(format!("cannot start the query runtime: {e}")))
    }

    fn handle(&self) -> Option<&tokio::runtime::Handle> {
        self.0.as_ref().map(tokio::runtime::Runtime::handle)
    }
}

impl Drop for QueryRuntime {
    /// Dropped wherever the last session goes, perhaps inside another
    /// runtime: its threads are let go, not waited for.
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// State shared by every session of one Duet instance.
pub struct Database {
    pub(crate) globals: Globals,
    pub(crate) kv: Arc<dyn Kv>,
    /// The newest schema any session loaded.
    catalog: RwLock<Arc<Catalog>>,
    pub(crate) autoids: AutoIds,
    pub(crate) stats: Stats,
    /// This node's id, which marks the schema changes it runs.
    pub(crate) node_id: u64,
    pub(crate) processes: Processes,
    pub(crate) user_locks: UserLocks,
    pub(crate) columnar: Option<Arc<duet_columnar::Replica>>,
    pub(crate) cluster: Option<Arc<dyn ClusterView>>,
    pub(crate) remote_columnar: Option<Arc<dyn RemoteColumnar>>,
    runtime: QueryRuntime,
    /// Where queries that outgrow their memory quota spill.
    pub(crate) spill: Option<Arc<DiskManager>>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").finish_non_exhaustive()
    }
}

impl Database {
    /// Opens the instance over `kv`, creating the `test` database on first start.
    pub fn open(options: &DatabaseOptions, kv: Arc<dyn Kv>) -> Result<Arc<Self>> {
        let globals = Globals::new(&[
            ("port", Value::UInt(u64::from(options.mysql_port))),
            (
                "max_allowed_packet",
                Value::UInt(options.max_allowed_packet),
            ),
            ("max_connections", Value::UInt(options.max_connections)),
            ("datadir", Value::Str(options.data_dir.clone())),
            ("version", Value::Str(SERVER_VERSION.into())),
        ]);
        let db = Arc::new(Database {
            runtime: QueryRuntime::start(options.query_threads)?,
            spill: spill_files(&options.data_dir),
            globals,
            autoids: AutoIds::new(Arc::clone(&kv)),
            stats: Stats::default(),
            processes: Processes::default(),
            user_locks: UserLocks::default(),
            columnar: options.columnar.clone(),
            cluster: options.cluster.clone(),
            remote_columnar: options.remote_columnar.clone(),
            node_id: options.node_id,
            kv,
            catalog: RwLock::new(Arc::new(Catalog::default())),
        });
        // A node that is joining a cluster has no region yet: the default
        // database comes from the founders, so a failure here is not fatal.
        if let Err(e) = db.bootstrap() {
            tracing::warn!(error = %e, "could not create the default database");
        }
        match db.release_schema_changes() {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                tables = n,
                "writes reopened on tables a schema change of this node left marked"
            ),
            Err(e) => tracing::warn!(error = %e, "could not check for unfinished schema changes"),
        }
        Ok(db)
    }

    /// Stops every session's running statement and closes its connection
    /// (the end of a shutdown's grace period).
    pub fn interrupt_all(&self) {
        for interrupt in self.processes.interrupts() {
            interrupt.kill_connection();
        }
    }

    /// The query engine's runtime: a thread that runs statements enters
    /// it (`Handle::enter`) for as long as it runs them.
    pub fn runtime(&self) -> tokio::runtime::Handle {
        match self.runtime.handle() {
            Some(h) => h.clone(),
            None => tokio::runtime::Handle::current(),
        }
    }

    /// Undoes what this node's unfinished schema changes left: a change
    /// that was running when the node stopped is gone with it (its second
    /// step never committed). Its `altering` mark would refuse writes to
    /// the table for ever, and its write-only index would be kept and
    /// never used: the mark goes, and so does the index (its entries with
    /// its prefix). Returns how many tables were released.
    fn release_schema_changes(&self) -> Result<usize> {
        let mine = Some(self.node_id);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut txn = self.kv.begin().map_err(Error::from_storage)?;
            let catalog = self.catalog(txn.as_ref())?;
            let mut writer = SchemaWriter {
                txn: txn.as_mut(),
                defer_backfill: None,
            };
            let mut released = 0;
            for database in catalog.databases() {
                for table in catalog.tables(&database.name) {
                    let building = |i: &IndexInfo| i.write_only == mine;
                    if table.altering != mine && !table.indexes.iter().any(building) {
                        continue;
                    }
                    let mut next = (*table).clone();
                    if next.altering == mine {
                        next.altering = None;
                    }
                    for ix in table.indexes.iter().filter(|i| building(i)) {
                        writer
                            .retire_prefix(duet_storage::codec::key::index_prefix(table.id, ix.id));
                    }
                    next.indexes.retain(|i| !building(i));
                    writer.put_table(&next)?;
                    released += 1;
                }
            }
            if released == 0 {
                return Ok(0);
            }
            match txn.commit().map_err(Error::from_storage) {
                Err(e) if e.is_retryable() && attempt < 5 => continue,
                other => return other.map(|_| released),
            }
        }
    }

    /// Creates the default database if the catalog has never been written.
    fn bootstrap(&self) -> Result<()> {
        for _ in 0..20 {
            let mut txn = self.kv.begin().map_err(Error::from_storage)?;
            if Catalog::read_version(txn.as_ref())? > 0 {
                return Ok(());
            }
            SchemaWriter {
                txn: txn.as_mut(),
                defer_backfill: None,
            }
            .create_database(DEFAULT_DATABASE)?;
            match txn.commit() {
                Ok(_) => return Ok(()),
                Err(e) if e.is_retryable() => continue,
                Err(e) => return Err(Error::from_storage(e)),
            }
        }
        Err(Error::Deadlock)
    }

    /// Analyzes every table whose statistics the writes since made stale
    /// (see [`crate::table::stats`]), each in its own transaction; returns the
    /// tables analyzed, as `database.table`. A table that fails (a conflict)
    /// is logged and skipped.
    pub fn auto_analyze(&self) -> Result<Vec<String>> {
        let due = self.stats.due();
        let mut analyzed = Vec::new();
        for id in due {
            let mut txn = self.kv.begin().map_err(Error::from_storage)?;
            let catalog = self.catalog(txn.as_ref())?;
            let found = catalog.databases().find_map(|db| {
                catalog
                    .tables(&db.name)
                    .into_iter()
                    .find(|t| t.id == id)
                    .map(|t| (db.name.clone(), t))
            });
            let Some((database, table)) = found else {
                self.stats.forget(id);
                continue;
            };
            // One table's failure leaves it for a later round, not the rest;
            // statistics not stored are not kept either.
            let done = self
                .stats
                .analyze(txn.as_mut(), &table)
                .and_then(|_| txn.commit().map_err(Error::from_storage));
            match done {
                Ok(_) => analyzed.push(format!("{database}.{}", table.name)),
                Err(e) => {
                    self.stats.forget(id);
                    tracing::warn!(table = %table.name, error = %e, "automatic analysis failed");
                }
            }
        }
        Ok(analyzed)
    }

    /// The schema `txn` sees: the shared copy when its version matches.
    pub(crate) fn catalog(&self, txn: &dyn KvTxn) -> Result<Arc<Catalog>> {
        let version = Catalog::read_version(txn)?;
        {
            let cached = self.catalog.read().unwrap_or_else(|e| e.into_inner());
            if cached.version == version {
                return Ok(Arc::clone(&cached));
            }
        }
        let loaded = Arc::new(Catalog::load(txn)?);
        let mut cached = self.catalog.write().unwrap_or_else(|e| e.into_inner());
        if loaded.version > cached.version {
            *cached = Arc::clone(&loaded);
        }
        Ok(loaded)
    }

    /// A new session for an authenticated connection.
    pub fn session(self: &Arc<Self>, identity: Identity) -> Session {
        let interrupt = Interrupt::new();
        self.processes.connect(
            identity.connection_id,
            &identity.user,
            &identity.client_host,
            Arc::clone(&interrupt),
        );
        Session {
            interrupt,
            sink: None,
            db: Arc::clone(self),
            identity,
            vars: SessionVars::default(),
            user_vars: HashMap::new(),
            current_db: None,
            txn: None,
            warnings: Vec::new(),
            savepoints: Vec::new(),
            prepared: HashMap::new(),
            executing: None,
            next_statement_id: 1,
            last_insert_id: 0,
            row_count: -1,
            found_rows: 0,
        }
    }
}

/// Who a session belongs to.
#[derive(Debug, Clone)]
pub struct Identity {
    pub connection_id: u32,
    /// The user name the client logged in with.
    pub user: String,
    /// The client's address.
    pub client_host: String,
    /// The host part of the account that matched (`localhost`, `%`, …).
    pub account_host: String,
    /// Whether the account administers the instance: it may `KILL` any
    /// connection (others only their own).
    pub admin: bool,
}

/// What the server needs to know about a prepared statement.
#[derive(Debug, Clone)]
pub struct StatementMeta {
    pub id: u32,
    pub params: u16,
    /// Result columns when known at prepare time; empty otherwise.
    pub columns: Vec<Column>,
}

/// Transaction state flags the server reports in OK packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionStatus {
    pub autocommit: bool,
    pub in_transaction: bool,
}

struct Prepared {
    sql: String,
    statement: Statement,
    params: usize,
    /// The row executor's plan, kept from the first execution that used
    /// it: later executions bind only their keys and limits to it.
    point: Option<Kept<PointGet>>,
    /// The query engine's logical plan, kept from the first execution the
    /// row executor did not serve (`None` in it: the statement has none
    /// that serves every execution, see [`GenericPlan`]).
    query: Option<Kept<Option<Arc<GenericPlan>>>>,
}

/// A prepared statement's plan and what it was made under: it serves
/// while the schema, the session's engines and its current database are
/// unchanged.
struct Kept<P> {
    catalog_version: u64,
    engines: String,
    current_db: Option<String>,
    plan: P,
}

impl<P> Kept<P> {
    fn serves(&self, catalog_version: u64, engines: &str, current_db: &Option<String>) -> bool {
        self.catalog_version == catalog_version
            && self.engines == engines
            && &self.current_db == current_db
    }
}

/// One connection's SQL state.
pub struct Session {
    pub(crate) db: Arc<Database>,
    identity: Identity,
    pub(crate) vars: SessionVars,
    user_vars: HashMap<String, Value>,
    pub(crate) current_db: Option<String>,
    /// The open transaction (`BEGIN`, or autocommit off).
    pub(crate) txn: Option<SharedTxn>,
    pub(crate) warnings: Vec<Warning>,
    /// The open transaction's savepoints, oldest first.
    pub(crate) savepoints: Vec<(String, Checkpoint)>,
    prepared: HashMap<u32, Prepared>,
    /// The prepared statement running now, if any.
    executing: Option<u32>,
    next_statement_id: u32,
    pub(crate) last_insert_id: u64,
    /// `ROW_COUNT()`: what the previous statement changed (-1 after one
    /// that returned rows, or failed).
    pub(crate) row_count: i64,
    /// `FOUND_ROWS()`: the rows the last statement returning rows returned.
    pub(crate) found_rows: u64,
    /// What stops the running statement (`KILL`, the client gone, a time
    /// limit, shutdown).
    interrupt: Arc<Interrupt>,
    /// Where query results stream to, if anywhere (else they come back
    /// whole).
    pub(crate) sink: Option<Box<dyn RowSink>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Drop for Session {
    /// A connection that goes away rolls its open transaction back, so its
    /// locks do not stand in others' way until they expire.
    fn drop(&mut self) {
        if self.in_transaction() {
            let multi_thread = tokio::runtime::Handle::try_current()
                .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
            let _ = if multi_thread {
                tokio::task::block_in_place(|| self.rollback())
            } else {
                self.rollback()
            };
        }
        self.db.user_locks.release_all(self.identity.connection_id);
        self.db.processes.disconnect(self.identity.connection_id);
    }
}

impl Session {
    /// Executes one statement of text protocol. Storage and the query
    /// engine block: the caller's thread runs the statement (the query
    /// engine's work also on the runtime it entered, see
    /// [`Database::runtime`]). Query results go to the sink, if the session
    /// has one.
    pub fn execute(&mut self, sql: &str) -> Result<Output> {
        self.db
            .processes
            .begin(self.identity.connection_id, self.current_db.as_deref(), sql);
        let _running = self.start_statement();
        let result = match show_index_target(sql) {
            Some(table) => {
                self.warnings.clear();
                self.show_index(&table)
            }
            None if is_show_engines(sql) => {
                self.warnings.clear();
                self.show_engines()
            }
            // Every transaction reads one consistent snapshot already.
            None if is_consistent_snapshot_start(sql) => {
                parse_one("START TRANSACTION").and_then(|stmt| self.run(sql, &stmt, &[]))
            }
            None if let Some((table, count)) = columnar_replica_target(sql) => {
                self.warnings.clear();
                self.set_columnar_replica(&table, count)
            }
            None if let Some(split) = split_table_statement(sql) => {
                self.warnings.clear();
                split.and_then(|split| self.split_table(&split))
            }
            None if let Some(table) = show_table_regions_target(sql) => {
                self.warnings.clear();
                self.show_table_regions(&table)
            }
            None if let Some(query) = table_status_query(sql, self.current_db.as_deref()) => query
                .and_then(|(q, params)| {
                    let mut stmt = parse_one(&q)?;
                    number_placeholders(&mut stmt);
                    self.run(&q, &stmt, &params)
                }),
            // Table locks are accepted and not enforced (transactions
            // isolate instead); taking them commits, as in MySQL. Dump
            // files wrap their inserts in them.
            None if let Some(lock) = table_lock_statement(sql) => {
                self.warnings.clear();
                if lock {
                    self.commit().map(|()| Output::ok())
                } else {
                    Ok(Output::ok())
                }
            }
            // Indexes are always maintained: a note, as InnoDB gives.
            None if let Some(table) = keys_toggle_target(sql) => {
                self.warnings.clear();
                self.table_named(&table).map(|t| {
                    self.warnings.push(Warning {
                        level: "Note",
                        code: 1031,
                        message: format!(
                            "Table storage engine for '{}' doesn't have this option",
                            t.name
                        ),
                    });
                    Output::ok()
                })
            }
            None if let Some(user) = show_grants_target(sql) => {
                self.warnings.clear();
                self.show_grants(user.as_deref())
            }
            None if let Some(database) = show_create_database_target(sql) => {
                self.warnings.clear();
                self.show_create_database(&database)
            }
            // `DO expr, …`: evaluated as a SELECT, the rows dropped.
            None if let Some(exprs) = do_expressions(sql) => {
                let select = format!("SELECT {exprs}");
                parse_one(&select)
                    .and_then(|stmt| self.without_sink(|s| s.run(&select, &stmt, &[])))
                    .map(|_| {
                        Output::Ok(OkStatus {
                            affected_rows: 0,
                            last_insert_id: 0,
                            info: String::new(),
                        })
                    })
            }
            None => parse_one(sql).and_then(|stmt| self.run(sql, &stmt, &[])),
        };
        self.finish(result)
    }

    /// `KILL [CONNECTION | QUERY] id`: a user may stop their own
    /// connections' statements, an administrator anyone's. The target's
    /// statement stops where it next looks (between batches, scan chunks,
    /// in a wait); a killed connection closes after it.
    pub(super) fn kill(&mut self, modifier: Option<ast::KillType>, id: u64) -> Result<Output> {
        let target = u32::try_from(id)
            .ok()
            .and_then(|id| self.db.processes.target(id));
        let Some((user, interrupt)) = target else {
            return Err(Error::UnknownThread(id));
        };
        if user != self.identity.user && !self.identity.admin {
            return Err(Error::NotThreadOwner(id));
        }
        match modifier {
            Some(ast::KillType::Query) => interrupt.kill_query(),
            Some(ast::KillType::Mutation) => return Err(Error::not_supported("KILL MUTATION")),
            Some(ast::KillType::Connection) | None => interrupt.kill_connection(),
        }
        Ok(Output::ok())
    }

    /// The instance the session belongs to.
    pub fn database(&self) -> &Arc<Database> {
        &self.db
    }

    /// The signal that stops this session's running statement.
    pub fn interrupt(&self) -> Arc<Interrupt> {
        Arc::clone(&self.interrupt)
    }

    /// Streams query results to `sink` from now on.
    pub fn set_sink(&mut self, sink: Box<dyn RowSink>) {
        self.sink = Some(sink);
    }

    /// Runs `f` with the results it makes coming back whole (a statement
    /// inside another one).
    pub(crate) fn without_sink<T>(&mut self, f: impl FnOnce(&mut Session) -> T) -> T {
        let sink = self.sink.take();
        let out = f(self);
        self.sink = sink;
        out
    }

    /// A statement starts: a `KILL QUERY` of before is forgotten, and the
    /// statement's bounds hold on this thread until the guard drops.
    pub(super) fn start_statement(&self) -> Running {
        self.interrupt.start(None);
        let mem_quota = self
            .vars
            .get(&self.db.globals, "duet_mem_quota_query", None)
            .ok()
            .and_then(|v| match v {
                Value::Int(n) => usize::try_from(n).ok(),
                Value::UInt(n) => usize::try_from(n).ok(),
                _ => None,
            })
            .unwrap_or(usize::MAX);
        Running::enter(Bounds {
            interrupt: Arc::clone(&self.interrupt),
            mem_quota,
            spill: self.db.spill.clone(),
        })
    }

    /// Parses and keeps a statement for later execution with parameters.
    pub fn prepare(&mut self, sql: &str) -> Result<StatementMeta> {
        let _running = self.start_statement();
        let mut statement = parse_one(sql)?;
        let params = number_placeholders(&mut statement);
        let params_u16 = u16::try_from(params).map_err(|_| Error::Parse {
            message: "too many parameter markers".into(),
        })?;
        // Clients (libmysqlclient) need a query's result columns now.
        let columns = match &statement {
            Statement::Query(q) if !is_dual(q) => self.describe_query(sql, q, params)?,
            _ => Vec::new(),
        };
        let id = self.next_statement_id;
        self.next_statement_id = self.next_statement_id.wrapping_add(1).max(1);
        self.prepared.insert(
            id,
            Prepared {
                sql: sql.to_string(),
                statement,
                params,
                point: None,
                query: None,
            },
        );
        Ok(StatementMeta {
            id,
            params: params_u16,
            columns,
        })
    }

    /// Executes a prepared statement with one value per parameter marker.
    pub fn execute_prepared(&mut self, id: u32, params: &[Value]) -> Result<Output> {
        let prepared = self.prepared.get(&id).ok_or(Error::UnknownStatement {
            id,
            command: "mysqld_stmt_execute",
        })?;
        if prepared.params != params.len() {
            return Err(Error::WrongArguments("mysqld_stmt_execute"));
        }
        let (sql, statement) = (prepared.sql.clone(), prepared.statement.clone());
        self.db.processes.begin(
            self.identity.connection_id,
            self.current_db.as_deref(),
            &sql,
        );
        self.executing = Some(id);
        let result = {
            let _running = self.start_statement();
            self.run(&sql, &statement, params)
        };
        self.executing = None;
        self.finish(result)
    }

    /// The plan the running prepared statement kept, bound to `params`, if
    /// it was made under `catalog_version` and `engines`.
    pub(crate) fn kept_point(
        &self,
        catalog_version: u64,
        engines: &str,
        q: &ast::Query,
        params: &[Value],
    ) -> Option<PointGet> {
        let kept = self.prepared.get(&self.executing?)?.point.as_ref()?;
        if !kept.serves(catalog_version, engines, &self.current_db) {
            return None;
        }
        kept.plan.rebind(q, params)
    }

    /// The running prepared statement's query-engine plan, made now if it
    /// has none that serves, with whether it was kept from before; `None`
    /// outside a prepared statement or where the statement has no such
    /// plan.
    pub(crate) fn generic_plan(
        &mut self,
        catalog: &Arc<Catalog>,
        engines: &str,
        sql: &str,
        q: &ast::Query,
    ) -> Option<(Arc<GenericPlan>, bool)> {
        let prepared = self.prepared.get_mut(&self.executing?)?;
        if let Some(kept) = &prepared.query
            && kept.serves(catalog.version, engines, &self.current_db)
        {
            return kept.plan.clone().map(|p| (p, true));
        }
        let plan =
            GenericPlan::new(Arc::clone(catalog), self.current_db.as_deref(), sql, q).map(Arc::new);
        prepared.query = Some(Kept {
            catalog_version: catalog.version,
            engines: engines.to_string(),
            current_db: self.current_db.clone(),
            plan: plan.clone(),
        });
        plan.map(|p| (p, false))
    }

    /// Keeps `plan` for the running prepared statement, if any.
    pub(crate) fn keep_point(&mut self, catalog_version: u64, engines: &str, plan: &PointGet) {
        let Some(prepared) = self.executing.and_then(|id| self.prepared.get_mut(&id)) else {
            return;
        };
        prepared.point = Some(Kept {
            catalog_version,
            engines: engines.to_string(),
            current_db: self.current_db.clone(),
            plan: plan.clone(),
        });
    }

    /// Forgets a prepared statement; unknown ids are ignored, as in MySQL.
    pub fn close_prepared(&mut self, id: u32) {
        self.prepared.remove(&id);
    }

    /// `COM_INIT_DB` and `USE db`.
    pub fn use_database(&mut self, name: &str) -> Result<()> {
        let known = is_builtin_database(name)
            || self.with_txn(|s, txn| {
                Ok(s.catalog(kv::lock(txn).as_ref())?.database(name).is_some())
            })?;
        if !known {
            return Err(Error::UnknownDatabase(name.to_string()));
        }
        self.current_db = Some(name.to_string());
        Ok(())
    }

    /// `COM_FIELD_LIST`: the columns of a table in the current database.
    pub fn field_list(&mut self, table: &str) -> Result<Vec<Column>> {
        let database = self.current_db.clone().ok_or(Error::NoDatabaseSelected)?;
        let info = self.with_txn(|s, txn| {
            let catalog = s.catalog(kv::lock(txn).as_ref())?;
            Ok(catalog.table(&database, table).cloned())
        })?;
        let info = info.ok_or_else(|| Error::NoSuchTable {
            database: database.clone(),
            table: table.to_string(),
        })?;
        Ok(info
            .columns
            .iter()
            .map(|c| {
                let mut col = Column::expr(c.name.clone(), c.ty.field_type());
                col.org_name = c.name.clone();
                col.table = info.name.clone();
                col.org_table = info.name.clone();
                col.schema = database.clone();
                col.unsigned = c.ty.unsigned;
                col.not_null = !c.nullable;
                col
            })
            .collect())
    }

    /// `COM_RESET_CONNECTION`: back to a fresh session, same login.
    pub fn reset(&mut self) {
        self.vars.reset();
        self.user_vars.clear();
        let _ = self.rollback();
        self.warnings.clear();
        self.prepared.clear();
        self.last_insert_id = 0;
        self.row_count = -1;
        self.found_rows = 0;
    }

    /// Autocommit and transaction flags for OK packets.
    pub fn status(&self) -> SessionStatus {
        let autocommit = self
            .vars
            .get(&self.db.globals, "autocommit", None)
            .map(|v| eval::truthy(&v))
            .unwrap_or(true);
        SessionStatus {
            autocommit,
            in_transaction: self.in_transaction(),
        }
    }

    /// Warnings left by the last statement.
    pub fn warning_count(&self) -> u16 {
        u16::try_from(self.warnings.len()).unwrap_or(u16::MAX)
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn current_database(&self) -> Option<&str> {
        self.current_db.as_deref()
    }

    /// Records an error as the statement's diagnostics, as MySQL does; a
    /// result built whole goes to the sink, if the session has one.
    pub(super) fn finish(&mut self, result: Result<Output>) -> Result<Output> {
        self.db
            .processes
            .end(self.identity.connection_id, self.current_db.as_deref());
        let result = match result {
            Ok(Output::Rows(rs)) if self.sink.is_some() => self.send_rows(|sink| {
                sink.columns(&rs.columns)?;
                let rows = rs.rows.len() as u64;
                let mut rest = rs.rows;
                while !rest.is_empty() {
                    let tail = rest.split_off(rest.len().min(1024));
                    sink.rows(std::mem::replace(&mut rest, tail))?;
                }
                Ok(rows)
            }),
            other => other,
        };
        match &result {
            Ok(Output::Rows(rows)) => {
                self.row_count = -1;
                self.found_rows = rows.rows.len() as u64;
            }
            Ok(Output::Streamed { rows }) => {
                self.row_count = -1;
                self.found_rows = *rows;
            }
            Ok(Output::Ok(status)) => {
                self.row_count = i64::try_from(status.affected_rows).unwrap_or(i64::MAX);
            }
            Err(e) => {
                self.row_count = -1;
                self.warnings = vec![Warning {
                    level: "Error",
                    code: e.code(),
                    message: e.to_string(),
                }];
            }
        }
        result
    }

    pub(crate) fn run(&mut self, sql: &str, stmt: &Statement, params: &[Value]) -> Result<Output> {
        let keeps_diagnostics =
            matches!(stmt, Statement::ShowVariables { .. }) || is_show_warnings(sql);
        if is_show_warnings(sql) {
            return Ok(self.show_warnings());
        }
        if !keeps_diagnostics {
            self.warnings.clear();
        }
        match stmt {
            Statement::Query(q) => self.select(sql, q, params),
            Statement::Set(set) => self.set(set, params),
            Statement::ShowVariables { filter, global, .. } => {
                let scope = if *global {
                    VarScope::Global
                } else {
                    VarScope::Session
                };
                self.show_variables(filter.as_ref(), scope, params)
            }
            Statement::ShowDatabases { .. } => self.show_databases(),
            Statement::ShowStatus { filter, .. } => self.show_status(filter.as_ref(), params),
            Statement::ShowProcessList { full } => Ok(self.show_processlist(*full)),
            Statement::Kill { modifier, id } => self.kill(*modifier, *id),
            Statement::ShowCharset(c) => self.show_table(
                &["Charset", "Description", "Default collation", "Maxlen"],
                CHARSETS,
                c.filter.as_ref(),
                params,
            ),
            Statement::ShowCollation { filter } => self.show_table(
                &[
                    "Collation",
                    "Charset",
                    "Id",
                    "Default",
                    "Compiled",
                    "Sortlen",
                    "Pad_attribute",
                ],
                COLLATIONS,
                filter.as_ref(),
                params,
            ),
            Statement::Use(u) => {
                let name = use_target(u)?;
                self.use_database(&name)?;
                Ok(Output::ok())
            }
            Statement::StartTransaction { .. } => {
                self.begin()?;
                Ok(Output::ok())
            }
            Statement::Commit { .. } => {
                self.commit()?;
                Ok(Output::ok())
            }
            Statement::Rollback {
                savepoint: None, ..
            } => {
                self.rollback()?;
                Ok(Output::ok())
            }
            Statement::Rollback {
                savepoint: Some(name),
                ..
            } => {
                self.back_to_savepoint(&name.value, false)?;
                Ok(Output::ok())
            }
            Statement::Savepoint { name } => {
                self.savepoint(&name.value)?;
                Ok(Output::ok())
            }
            Statement::ReleaseSavepoint { name } => {
                self.back_to_savepoint(&name.value, true)?;
                Ok(Output::ok())
            }
            other => match self.run_table_statement(sql, other, params) {
                Some(result) => result,
                None => Err(Error::not_supported(statement_kind(sql))),
            },
        }
    }

    pub(crate) fn ctx<'a>(&'a self, params: &'a [Value]) -> Ctx<'a> {
        Ctx {
            session: self,
            params,
            row: &[],
        }
    }

    pub(super) fn select(&mut self, sql: &str, q: &ast::Query, params: &[Value]) -> Result<Output> {
        if let Some(ms) = self.execution_time_limit(q) {
            self.interrupt
                .set_deadline(std::time::Instant::now() + std::time::Duration::from_millis(ms));
        }
        if let SetExpr::Select(select) = q.body.as_ref()
            && let Some(into) = &select.into
        {
            return self.select_into(sql, q, params, &into.name);
        }
        if !is_dual(q) {
            return self.query(sql, q, params);
        }
        match self.select_constants(sql, q, params) {
            // What the session's evaluator lacks, the query engine has.
            Err(
                Error::UnknownFunction(_) | Error::NotSupported { .. } | Error::UnknownColumn(_),
            ) => {
                let mut tableless = q.clone();
                if let SetExpr::Select(select) = tableless.body.as_mut() {
                    select.from.clear();
                }
                self.query(sql, &tableless, params)
            }
            other => other,
        }
    }

    /// How long a `SELECT` may run, in milliseconds: its
    /// `MAX_EXECUTION_TIME(n)` hint, else `max_execution_time`; `None` for
    /// no limit (0).
    pub(super) fn execution_time_limit(&self, q: &ast::Query) -> Option<u64> {
        let hinted = match q.body.as_ref() {
            SetExpr::Select(select) => select
                .optimizer_hints
                .iter()
                .find_map(|h| max_execution_time_hint(&h.text)),
            _ => None,
        };
        let ms = hinted.or_else(|| {
            match self.vars.get(&self.db.globals, "max_execution_time", None) {
                Ok(Value::Int(n)) => u64::try_from(n).ok(),
                Ok(Value::UInt(n)) => Some(n),
                _ => None,
            }
        })?;
        (ms > 0).then_some(ms)
    }

    /// `SELECT … INTO @var`: the one row's values into user variables; no
    /// row leaves them as they were (warning 1329), several are error 1172.
    pub(super) fn select_into(
        &mut self,
        sql: &str,
        q: &ast::Query,
        params: &[Value],
        target: &ObjectName,
    ) -> Result<Output> {
        let var = match name_parts(target).as_slice() {
            [one] if one.starts_with('@') && !one.starts_with("@@") => {
                one[1..].to_ascii_lowercase()
            }
            _ => return Err(Error::not_supported("SELECT … INTO a table or a file")),
        };
        let mut plain = q.clone();
        if let SetExpr::Select(select) = plain.body.as_mut() {
            select.into = None;
        }
        let Output::Rows(rs) = self.without_sink(|s| s.select(sql, &plain, params))? else {
            return Err(Error::Internal("a SELECT without rows".into()));
        };
        if rs.columns.len() != 1 {
            return Err(Error::IntoColumnCount);
        }
        let affected = match rs.rows.as_slice() {
            [] => {
                self.warnings.push(Warning {
                    level: "Warning",
                    code: 1329,
                    message: "No data - zero rows fetched, selected, or processed".into(),
                });
                0
            }
            [row] => {
                self.user_vars.insert(var, row[0].clone());
                1
            }
            _ => return Err(Error::TooManyRows),
        };
        Ok(Output::Ok(OkStatus {
            affected_rows: affected,
            last_insert_id: 0,
            info: String::new(),
        }))
    }

    /// A `SELECT` with no table, evaluated by the session itself.
    pub(super) fn select_constants(
        &mut self,
        sql: &str,
        q: &ast::Query,
        params: &[Value],
    ) -> Result<Output> {
        let SetExpr::Select(select) = q.body.as_ref() else {
            return self.query(sql, q, params);
        };
        let grouped =
            !matches!(&select.group_by, ast::GroupByExpr::Expressions(e, _) if e.is_empty());
        if q.with.is_some() || q.order_by.is_some() || grouped || select.having.is_some() {
            return Err(Error::not_supported(
                "SELECT with WITH, ORDER BY or GROUP BY without tables",
            ));
        }
        let env = self.ctx(params);
        let mut columns = Vec::with_capacity(select.projection.len());
        let mut row = Vec::with_capacity(select.projection.len());
        let texts = names::select_items(sql).filter(|t| t.len() == select.projection.len());
        for (i, item) in select.projection.iter().enumerate() {
            let (expr, name) = match item {
                SelectItem::UnnamedExpr(e) => (
                    e,
                    texts
                        .as_ref()
                        .map_or_else(|| expr_text(sql, e), |t| t[i].clone()),
                ),
                SelectItem::ExprWithAlias { expr, alias } => (expr, alias.value.clone()),
                _ => return Err(Error::NoTablesUsed),
            };
            let value = eval::eval(&env, expr)?;
            let mut column = Column::expr(name, value.field_type());
            column.unsigned = matches!(value, Value::UInt(_));
            column.binary = matches!(value, Value::Bytes(_));
            columns.push(column);
            row.push(value);
        }
        let keep = match &select.selection {
            Some(cond) => eval::truthy(&eval::eval(&env, cond)?),
            None => true,
        };
        let keep = keep && limit_allows_one_row(&env, q.limit_clause.as_ref())?;
        let rows = if keep { vec![row] } else { vec![] };
        Ok(Output::Rows(ResultSet { columns, rows }))
    }
}

/// The evaluation environment of one statement in one session.
pub(crate) struct Ctx<'a> {
    session: &'a Session,
    params: &'a [Value],
    row: &'a [(&'a str, Value)],
}

impl Env for Ctx<'_> {
    fn system_var(&self, name: &str, scope: Option<VarScope>) -> Result<Value> {
        if name.eq_ignore_ascii_case("last_insert_id") || name.eq_ignore_ascii_case("identity") {
            return Ok(Value::UInt(self.session.last_insert_id));
        }
        if name.eq_ignore_ascii_case("warning_count") || name.eq_ignore_ascii_case("error_count") {
            return Ok(Value::UInt(self.session.warnings.len() as u64));
        }
        self.session.vars.get(&self.session.db.globals, name, scope)
    }

    fn user_var(&self, name: &str) -> Value {
        self.session
            .user_vars
            .get(&name.to_ascii_lowercase())
            .cloned()
            .unwrap_or(Value::Null)
    }

    fn param(&self, n: usize) -> Result<Value> {
        self.params
            .get(n)
            .cloned()
            .ok_or(Error::WrongArguments("mysqld_stmt_execute"))
    }

    fn session_fn(&self, f: SessionFn) -> Option<Value> {
        let id = &self.session.identity;
        Some(match f {
            SessionFn::Database => self
                .session
                .current_db
                .clone()
                .map_or(Value::Null, Value::Str),
            SessionFn::Version => Value::Str(SERVER_VERSION.into()),
            SessionFn::ConnectionId => Value::UInt(id.connection_id.into()),
            SessionFn::User => Value::Str(format!("{}@{}", id.user, id.client_host)),
            SessionFn::CurrentUser => Value::Str(format!("{}@{}", id.user, id.account_host)),
            SessionFn::LastInsertId => Value::UInt(self.session.last_insert_id),
            SessionFn::RowCount => Value::Int(self.session.row_count),
            SessionFn::FoundRows => Value::UInt(self.session.found_rows),
        })
    }

    fn session_call(&self, name: &str, args: &[Value]) -> Option<Result<Value>> {
        let locks = &self.session.db.user_locks;
        let me = self.session.identity.connection_id;
        let lock_name = |v: &Value| match v {
            Value::Null => None,
            v => types::value_text(v).into(),
        };
        let wanted = match name {
            "GET_LOCK" => 2,
            "RELEASE_LOCK" | "IS_FREE_LOCK" | "IS_USED_LOCK" => 1,
            "RELEASE_ALL_LOCKS" => 0,
            _ => return None,
        };
        if args.len() != wanted {
            return Some(Err(Error::WrongArgumentCount(name.to_string())));
        }
        let flag = |b: bool| Value::Int(i64::from(b));
        Some(match name {
            "GET_LOCK" => {
                let Some(lock) = lock_name(&args[0]) else {
                    return Some(Ok(Value::Null));
                };
                // A negative timeout waits for ever; NULL does not wait.
                let secs = eval::to_f64(&args[1]);
                let timeout = match args[1] {
                    Value::Null => Some(std::time::Duration::ZERO),
                    _ if secs < 0.0 => None,
                    _ => Some(std::time::Duration::from_secs_f64(secs.min(31_536_000.0))),
                };
                locks
                    .get(me, &lock, timeout)
                    .map_err(|_| Error::UserLockDeadlock)
                    // A wait cut short by a stop reports why.
                    .and_then(|got| interrupt::check_current().map(|()| flag(got)))
            }
            "RELEASE_LOCK" => Ok(lock_name(&args[0])
                .and_then(|lock| locks.release(me, &lock))
                .map_or(Value::Null, flag)),
            "IS_FREE_LOCK" => {
                Ok(lock_name(&args[0])
                    .map_or(Value::Null, |lock| flag(locks.holder(&lock).is_none())))
            }
            "IS_USED_LOCK" => Ok(lock_name(&args[0])
                .and_then(|lock| locks.holder(&lock))
                .map_or(Value::Null, |id| Value::UInt(id.into()))),
            _ => Ok(Value::UInt(locks.release_all(me))),
        })
    }

    fn column(&self, name: &str) -> Result<Value> {
        self.row
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .ok_or_else(|| Error::UnknownColumn(name.to_string()))
    }
}

/// `SHOW CHARACTER SET` rows: the character sets Duet accepts.
const CHARSETS: &[&[&str]] = &[
    &["ascii", "US ASCII", "ascii_general_ci", "1"],
    &["binary", "Binary pseudo charset", "binary", "1"],
    &["latin1", "cp1252 West European", "latin1_swedish_ci", "1"],
    &["utf8mb3", "UTF-8 Unicode", "utf8mb3_general_ci", "3"],
    &["utf8mb4", "UTF-8 Unicode", "utf8mb4_bin", "4"],
];

/// `SHOW COLLATION` rows: the collations a text column may have
/// ([`crate::collation`]); `utf8mb4_bin` is the default.
const COLLATIONS: &[&[&str]] = &[
    &["binary", "binary", "63", "Yes", "Yes", "1", "NO PAD"],
    &[
        "utf8mb4_bin",
        "utf8mb4",
        "46",
        "Yes",
        "Yes",
        "1",
        "PAD SPACE",
    ],
    &[
        "utf8mb4_general_ci",
        "utf8mb4",
        "45",
        "",
        "Yes",
        "1",
        "PAD SPACE",
    ],
    &[
        "utf8mb4_unicode_ci",
        "utf8mb4",
        "224",
        "",
        "Yes",
        "8",
        "PAD SPACE",
    ],
    &[
        "utf8mb4_0900_ai_ci",
        "utf8mb4",
        "255",
        "",
        "Yes",
        "0",
        "NO PAD",
    ],
];

fn limit_allows_one_row(env: &Ctx<'_>, limit: Option<&ast::LimitClause>) -> Result<bool> {
    let count = |e: &Expr| -> Result<i128> {
        match eval::eval(env, e)? {
            Value::Int(i) => Ok(i.into()),
            Value::UInt(u) => Ok(u.into()),
            _ => Err(Error::WrongArguments("LIMIT")),
        }
    };
    Ok(match limit {
        None => true,
        Some(ast::LimitClause::LimitOffset { limit, offset, .. }) => {
            let limit_ok = match limit {
                Some(l) => count(l)? > 0,
                None => true,
            };
            let offset_ok = match offset {
                Some(o) => count(&o.value)? == 0,
                None => true,
            };
            limit_ok && offset_ok
        }
        Some(ast::LimitClause::OffsetCommaLimit { offset, limit }) => {
            count(limit)? > 0 && count(offset)? == 0
        }
    })
}
