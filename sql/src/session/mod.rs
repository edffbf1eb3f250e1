//! The seam between the server and SQL: a [`Database`] shared by every
//! connection, and a [`Session`] per connection that executes one statement at
//! a time (text or prepared) and returns rows, an OK, or a typed error.
//!
//! The session answers what needs no table itself — the statements clients
//! send on connect, `SET`, `SHOW VARIABLES`, constant `SELECT`s, `USE` — and
//! hands statements on tables to [`crate::exec`] (DDL, DML, transactions)
//! and queries to DataFusion ([`crate::query`]).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use datafusion::execution::disk_manager::{DiskManager, DiskManagerBuilder, DiskManagerMode};

use crate::dialect::MySql;
use datafusion::sql::sqlparser::ast::{
    self, Expr, ObjectName, SelectItem, SetExpr, ShowStatementFilter, Statement, VisitMut,
    VisitorMut,
};
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Span;
use std::ops::ControlFlow;

use crate::autoid::AutoIds;
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::eval::{self, Env};
use crate::exec::SharedTxn;
use crate::interrupt::{Bounds, Interrupt, Running};
use crate::kv::{Kv, KvTxn};
use crate::query::GenericPlan;
use crate::value::{
    Column, Date, DateTime, FieldType, OkStatus, Output, ResultSet, RowSink, Value,
};
use crate::vars::{self, Globals, SessionVars, VarScope};

/// The version string Duet reports to clients (`SELECT VERSION()`, handshake).
pub const SERVER_VERSION: &str = concat!("8.0.11-Duet-", env!("CARGO_PKG_VERSION"));

/// Databases every instance shows that are not in the catalog.
const BUILTIN_DATABASES: &[&str] = &["information_schema", "mysql"];

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

/// The current local date and time (for `CURRENT_TIMESTAMP` defaults).
pub(crate) fn now() -> DateTime {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    let (days, rest) = (
        micros.div_euclid(86_400_000_000),
        micros.rem_euclid(86_400_000_000),
    );
    let (y, m, d) = crate::types::civil_from_days(days);
    let secs = rest / 1_000_000;
    DateTime {
        date: Date {
            year: y as u16,
            month: m as u8,
            day: d as u8,
        },
        hour: (secs / 3600) as u8,
        minute: ((secs / 60) % 60) as u8,
        second: (secs % 60) as u8,
        micros: (rest % 1_000_000) as u32,
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
    pub(crate) stats: crate::stats::Stats,
    /// This node's id, which marks the schema changes it runs.
    pub(crate) node_id: u64,
    pub(crate) processes: crate::processes::Processes,
    pub(crate) user_locks: crate::userlocks::UserLocks,
    pub(crate) columnar: Option<Arc<duet_columnar::Replica>>,
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
            stats: crate::stats::Stats::default(),
            processes: crate::processes::Processes::default(),
            user_locks: crate::userlocks::UserLocks::default(),
            columnar: options.columnar.clone(),
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
            let mut writer = crate::catalog::SchemaWriter {
                txn: txn.as_mut(),
                defer_backfill: None,
            };
            let mut released = 0;
            for database in catalog.databases() {
                for table in catalog.tables(&database.name) {
                    let building = |i: &crate::catalog::IndexInfo| i.write_only == mine;
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
            crate::catalog::SchemaWriter {
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
    /// (see [`crate::stats`]), each in its own transaction; returns the
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

/// A note attached to the last statement (`SHOW WARNINGS`).
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    pub level: &'static str,
    pub code: u16,
    pub message: String,
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
    point: Option<Kept<crate::point::PointGet>>,
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
    pub(crate) savepoints: Vec<(String, crate::kv::Checkpoint)>,
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
    fn kill(&mut self, modifier: Option<ast::KillType>, id: u64) -> Result<Output> {
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
    fn start_statement(&self) -> Running {
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

    /// `SHOW GRANTS`: every account may do everything (Duet has no
    /// privileges yet), for the current account; another is error 1141.
    fn show_grants(&mut self, user: Option<&str>) -> Result<Output> {
        let id = &self.identity;
        let me = format!("`{}`@`{}`", id.user, id.account_host);
        if let Some(named) = user {
            let (name, host) = named.split_once('@').unwrap_or((named, "%"));
            let unquote = |s: &str| {
                s.trim_matches(|c| c == '`' || c == '\'' || c == '"')
                    .to_string()
            };
            let (name, host) = (unquote(name), unquote(host));
            if name != id.user || host != id.account_host {
                return Err(Error::NoSuchGrant { user: name, host });
            }
        }
        Ok(Output::Rows(ResultSet {
            columns: vec![Column::expr(
                format!("Grants for {}@{}", id.user, id.account_host),
                FieldType::VarString,
            )],
            rows: vec![vec![Value::Str(format!(
                "GRANT ALL PRIVILEGES ON *.* TO {me} WITH GRANT OPTION"
            ))]],
        }))
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
    ) -> Option<crate::point::PointGet> {
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
    pub(crate) fn keep_point(
        &mut self,
        catalog_version: u64,
        engines: &str,
        plan: &crate::point::PointGet,
    ) {
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
                Ok(s.catalog(crate::exec::lock(txn).as_ref())?
                    .database(name)
                    .is_some())
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
            let catalog = s.catalog(crate::exec::lock(txn).as_ref())?;
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
    fn finish(&mut self, result: Result<Output>) -> Result<Output> {
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

    fn select(&mut self, sql: &str, q: &ast::Query, params: &[Value]) -> Result<Output> {
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
    fn execution_time_limit(&self, q: &ast::Query) -> Option<u64> {
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
    fn select_into(
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
    fn select_constants(&mut self, sql: &str, q: &ast::Query, params: &[Value]) -> Result<Output> {
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
        let texts = crate::names::select_items(sql).filter(|t| t.len() == select.projection.len());
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

    fn set(&mut self, set: &ast::Set, params: &[Value]) -> Result<Output> {
        use ast::Set as S;
        match set {
            S::SingleAssignment {
                scope,
                variable,
                values,
                ..
            } => {
                let [value] = values.as_slice() else {
                    return Err(Error::not_supported("SET with a list of values"));
                };
                self.assign(*scope, variable, value, params)?;
            }
            S::MultipleAssignments { assignments } => {
                for a in assignments {
                    self.assign(a.scope, &a.name, &a.value, params)?;
                }
            }
            S::SetNames {
                charset_name,
                collation_name,
            } => {
                self.set_names(&charset_name.value, collation_name.as_deref())?;
            }
            S::SetNamesDefault {} => self.set_names("utf8mb4", None)?,
            S::SetTimeZone { value, .. } => {
                let v = self.set_value(value, params)?;
                self.set_system("time_zone", VarScope::Session, v)?;
            }
            S::SetTransaction { modes, .. } => {
                for mode in modes {
                    let (name, value) = transaction_mode(mode);
                    self.set_system(name, VarScope::Session, Some(value))?;
                }
            }
            other => return Err(Error::not_supported(other.to_string())),
        }
        Ok(Output::ok())
    }

    fn assign(
        &mut self,
        scope: Option<ast::ContextModifier>,
        name: &ObjectName,
        value: &Expr,
        params: &[Value],
    ) -> Result<()> {
        let parts = name_parts(name);
        let (mut var_scope, var) = match parts.as_slice() {
            [one] if one.starts_with("@@") => (VarScope::Session, one[2..].to_string()),
            [one] if one.starts_with('@') => {
                let v = eval::eval(&self.ctx(params), value)?;
                self.user_vars.insert(one[1..].to_ascii_lowercase(), v);
                return Ok(());
            }
            [scope, var] if scope.starts_with("@@") => {
                let s = match scope[2..].to_ascii_lowercase().as_str() {
                    "global" => VarScope::Global,
                    "session" | "local" => VarScope::Session,
                    _ => return Err(Error::UnknownSystemVariable(parts.join("."))),
                };
                (s, var.clone())
            }
            [one] => (VarScope::Session, one.clone()),
            _ => return Err(Error::UnknownSystemVariable(parts.join("."))),
        };
        if scope == Some(ast::ContextModifier::Global) {
            var_scope = VarScope::Global;
        }
        let v = self.set_value(value, params)?;
        self.set_system(&var, var_scope, v)
    }

    /// The value of a `SET` right-hand side: bare words (`ON`, `utf8mb4`) are
    /// strings and `DEFAULT` is `None`.
    fn set_value(&self, value: &Expr, params: &[Value]) -> Result<Option<Value>> {
        if let Expr::Identifier(id) = value
            && id.quote_style.is_none()
            && !id.value.starts_with('@')
        {
            if id.value.eq_ignore_ascii_case("DEFAULT") {
                return Ok(None);
            }
            return Ok(Some(Value::Str(id.value.clone())));
        }
        eval::eval(&self.ctx(params), value).map(Some)
    }

    fn set_system(&mut self, name: &str, scope: VarScope, value: Option<Value>) -> Result<()> {
        let was_autocommit = self.status().autocommit;
        self.vars.set(&self.db.globals, name, scope, value)?;
        if name.eq_ignore_ascii_case("autocommit") && !was_autocommit && self.status().autocommit {
            // Turning autocommit on commits the open transaction.
            self.commit()?;
        }
        if name.eq_ignore_ascii_case("transaction_isolation")
            || name.eq_ignore_ascii_case("tx_isolation")
        {
            let level = self
                .vars
                .get(&self.db.globals, "transaction_isolation", None)?;
            if level != Value::Str("REPEATABLE-READ".into()) {
                self.warnings.push(Warning {
                    level: "Warning",
                    code: 1105,
                    message: "Duet runs every transaction under snapshot isolation (reported as REPEATABLE-READ)".into(),
                });
            }
        }
        Ok(())
    }

    fn set_names(&mut self, charset: &str, collation: Option<&str>) -> Result<()> {
        if !vars::is_known_charset(charset) {
            return Err(Error::UnknownCharset(charset.to_string()));
        }
        let collation = match collation {
            Some(c) if vars::is_known_collation(c) => c.to_string(),
            Some(c) => return Err(Error::UnknownCollation(c.to_string())),
            None => format!("{}_bin", charset.to_ascii_lowercase()),
        };
        for var in [
            "character_set_client",
            "character_set_connection",
            "character_set_results",
        ] {
            self.set_system(
                var,
                VarScope::Session,
                Some(Value::Str(charset.to_string())),
            )?;
        }
        self.set_system(
            "collation_connection",
            VarScope::Session,
            Some(Value::Str(collation)),
        )
    }

    fn show_variables(
        &self,
        filter: Option<&ShowStatementFilter>,
        scope: VarScope,
        params: &[Value],
    ) -> Result<Output> {
        self.name_values(self.vars.show(&self.db.globals, scope), filter, params)
    }

    /// A `Variable_name`/`Value` table (`SHOW VARIABLES`, `SHOW STATUS`),
    /// filtered by `LIKE` on the name or by `WHERE`.
    fn name_values(
        &self,
        pairs: impl IntoIterator<Item = (&'static str, String)>,
        filter: Option<&ShowStatementFilter>,
        params: &[Value],
    ) -> Result<Output> {
        let columns = vec![
            Column::expr("Variable_name", FieldType::VarString),
            Column::expr("Value", FieldType::VarString),
        ];
        let mut rows = Vec::new();
        for (name, value) in pairs {
            let row = [
                ("Variable_name", Value::Str(name.into())),
                ("Value", Value::Str(value)),
            ];
            if self.filter_accepts(filter, name, &row, params)? {
                rows.push(row.into_iter().map(|(_, v)| v).collect());
            }
        }
        Ok(Output::Rows(ResultSet { columns, rows }))
    }

    /// `SHOW [GLOBAL | SESSION] STATUS [LIKE … | WHERE …]`: the instance's
    /// counters (the session scope shows the same, as MySQL does for
    /// counters it keeps only globally).
    fn show_status(
        &self,
        filter: Option<&ShowStatementFilter>,
        params: &[Value],
    ) -> Result<Output> {
        self.name_values(self.db.processes.status(), filter, params)
    }

    /// A fixed `SHOW` table, filtered by `LIKE` on its first column or by
    /// `WHERE`.
    fn show_table(
        &self,
        names: &[&'static str],
        rows: &[&[&str]],
        filter: Option<&ShowStatementFilter>,
        params: &[Value],
    ) -> Result<Output> {
        let columns = names
            .iter()
            .map(|n| Column::expr(*n, FieldType::VarString))
            .collect();
        let mut out = Vec::new();
        for row in rows {
            let named: Vec<(&str, Value)> = names
                .iter()
                .zip(row.iter())
                .map(|(n, v)| (*n, Value::Str((*v).to_string())))
                .collect();
            if self.filter_accepts(filter, row[0], &named, params)? {
                out.push(named.into_iter().map(|(_, v)| v).collect());
            }
        }
        Ok(Output::Rows(ResultSet { columns, rows: out }))
    }

    /// `SHOW [STORAGE] ENGINES`.
    fn show_engines(&self) -> Result<Output> {
        self.show_table(
            &[
                "Engine",
                "Support",
                "Comment",
                "Transactions",
                "XA",
                "Savepoints",
            ],
            &[&[
                "Duet",
                "DEFAULT",
                "Raft-replicated row store (Percolator transactions) with a columnar replica",
                "YES",
                "NO",
                "YES",
            ]],
            None,
            &[],
        )
    }

    fn show_processlist(&self, full: bool) -> Output {
        let columns = vec![
            Column::expr("Id", FieldType::LongLong),
            Column::expr("User", FieldType::VarString),
            Column::expr("Host", FieldType::VarString),
            Column::expr("db", FieldType::VarString),
            Column::expr("Command", FieldType::VarString),
            Column::expr("Time", FieldType::Long),
            Column::expr("State", FieldType::VarString),
            Column::expr("Info", FieldType::VarString),
        ];
        Output::Rows(ResultSet {
            columns,
            rows: self.db.processes.list(full),
        })
    }

    fn show_databases(&mut self) -> Result<Output> {
        let catalog = self.with_txn(|s, txn| s.catalog(crate::exec::lock(txn).as_ref()))?;
        let mut names: Vec<String> = BUILTIN_DATABASES.iter().map(|d| d.to_string()).collect();
        names.extend(catalog.databases().map(|d| d.name.clone()));
        names.sort();
        Ok(Output::Rows(ResultSet {
            columns: vec![Column::expr("Database", FieldType::VarString)],
            rows: names.into_iter().map(|n| vec![Value::Str(n)]).collect(),
        }))
    }

    fn show_warnings(&self) -> Output {
        let columns = vec![
            Column::expr("Level", FieldType::VarString),
            Column::expr("Code", FieldType::Long),
            Column::expr("Message", FieldType::VarString),
        ];
        let rows = self
            .warnings
            .iter()
            .map(|w| {
                vec![
                    Value::Str(w.level.into()),
                    Value::Int(w.code.into()),
                    Value::Str(w.message.clone()),
                ]
            })
            .collect();
        Output::Rows(ResultSet { columns, rows })
    }

    fn filter_accepts(
        &self,
        filter: Option<&ShowStatementFilter>,
        name: &str,
        row: &[(&str, Value)],
        params: &[Value],
    ) -> Result<bool> {
        Ok(match filter {
            None => true,
            Some(ShowStatementFilter::Like(p) | ShowStatementFilter::ILike(p)) => {
                eval::like(name, p, true)
            }
            Some(ShowStatementFilter::Where(expr)) => {
                let env = Ctx {
                    session: self,
                    params,
                    row,
                };
                eval::truthy(&eval::eval(&env, expr)?)
            }
            Some(other) => return Err(Error::not_supported(other.to_string())),
        })
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

    fn session_fn(&self, name: &str) -> Option<Value> {
        let id = &self.session.identity;
        Some(match name {
            "DATABASE" | "SCHEMA" => self
                .session
                .current_db
                .clone()
                .map_or(Value::Null, Value::Str),
            "VERSION" => Value::Str(SERVER_VERSION.into()),
            "CONNECTION_ID" => Value::UInt(id.connection_id.into()),
            "USER" | "SESSION_USER" | "SYSTEM_USER" => {
                Value::Str(format!("{}@{}", id.user, id.client_host))
            }
            "CURRENT_USER" => Value::Str(format!("{}@{}", id.user, id.account_host)),
            "LAST_INSERT_ID" => Value::UInt(self.session.last_insert_id),
            "ROW_COUNT" => Value::Int(self.session.row_count),
            "FOUND_ROWS" => Value::UInt(self.session.found_rows),
            _ => return None,
        })
    }

    fn session_call(&self, name: &str, args: &[Value]) -> Option<Result<Value>> {
        let locks = &self.session.db.user_locks;
        let me = self.session.identity.connection_id;
        let lock_name = |v: &Value| match v {
            Value::Null => None,
            v => crate::types::value_text(v).into(),
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
                let secs = crate::eval::to_f64(&args[1]);
                let timeout = match args[1] {
                    Value::Null => Some(std::time::Duration::ZERO),
                    _ if secs < 0.0 => None,
                    _ => Some(std::time::Duration::from_secs_f64(secs.min(31_536_000.0))),
                };
                locks
                    .get(me, &lock, timeout)
                    .map_err(|_| Error::UserLockDeadlock)
                    // A wait cut short by a stop reports why.
                    .and_then(|got| crate::interrupt::check_current().map(|()| flag(got)))
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

/// The `n` of a `MAX_EXECUTION_TIME(n)` hint in a hint comment's text.
fn max_execution_time_hint(text: &str) -> Option<u64> {
    let upper = text.to_ascii_uppercase();
    let at = upper.find("MAX_EXECUTION_TIME")?;
    let rest = upper[at + "MAX_EXECUTION_TIME".len()..].trim_start();
    let inner = rest.strip_prefix('(')?;
    inner[..inner.find(')')?].trim().parse().ok()
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

/// Statements MySQL has and Duet does not: whatever their body, they are
/// refused by name (1235), not as a syntax error.
const UNSUPPORTED_KINDS: &[&str] = &[
    "CREATE TRIGGER",
    "DROP TRIGGER",
    "CREATE PROCEDURE",
    "DROP PROCEDURE",
    "CREATE FUNCTION",
    "DROP FUNCTION",
    "CREATE EVENT",
    "DROP EVENT",
    "CALL",
    "LOAD DATA",
    "HANDLER",
];

/// Parses exactly one statement, with MySQL's message for a syntax error;
/// one that nests too deep is refused (see [`crate::nesting`]).
pub(crate) fn parse_one(sql: &str) -> Result<Statement> {
    crate::nesting::scan(sql)?;
    let shared = share_mode(sql);
    let sql = shared.as_deref().unwrap_or(sql);
    let mut statements = Parser::new(&MySql)
        .with_recursion_limit(crate::nesting::PARSER_RECURSION)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| {
            let kind = statement_kind(sql);
            if UNSUPPORTED_KINDS
                .iter()
                .any(|k| kind == *k || kind.split(' ').next() == Some(*k))
            {
                Error::not_supported(kind)
            } else {
                syntax_error(sql, &e.to_string())
            }
        })?;
    match statements.len() {
        0 => Err(Error::EmptyQuery),
        1 => crate::nesting::check(statements.remove(0)),
        _ => {
            // Taken apart one by one, however deep.
            for statement in statements {
                let _ = crate::nesting::check(statement);
            }
            Err(Error::Parse {
                message: "multiple statements in one query need CLIENT_MULTI_STATEMENTS, which Duet does not offer".into(),
            })
        }
    }
}

/// Turns a parser message ending in `at Line: L, Column: C` into MySQL's
/// `near '…' at line L`.
fn syntax_error(sql: &str, message: &str) -> Error {
    let position = message.rfind("Line: ").and_then(|at| {
        let rest = &message[at + 6..];
        let (line, rest) = rest.split_once(", Column: ")?;
        let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
        Some((line.parse::<usize>().ok()?, column.parse::<usize>().ok()?))
    });
    let (line, near) = match position {
        Some((line, column)) => {
            let text = sql.lines().nth(line.saturating_sub(1)).unwrap_or("");
            let start: String = text.chars().skip(column.saturating_sub(1)).collect();
            let rest_lines: Vec<&str> = sql.lines().skip(line).collect();
            let mut near = start;
            for l in rest_lines {
                near.push('\n');
                near.push_str(l);
            }
            (line, near.chars().take(80).collect::<String>())
        }
        None => (1, String::new()),
    };
    Error::Parse {
        message: format!("near '{near}' at line {line}"),
    }
}

/// Replaces each `?` with `$1`, `$2`, … in textual order; returns how many.
pub(crate) fn number_placeholders(stmt: &mut Statement) -> usize {
    struct Numberer(usize);
    impl VisitorMut for Numberer {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Expr::Value(v) = expr
                && let ast::Value::Placeholder(p) = &mut v.value
                && p == "?"
            {
                self.0 += 1;
                *p = format!("${}", self.0);
            }
            ControlFlow::Continue(())
        }
    }
    let mut n = Numberer(0);
    let _ = stmt.visit(&mut n);
    n.0
}

/// The text a client typed for an expression, which MySQL uses as its column name.
pub(crate) fn expr_text(sql: &str, expr: &Expr) -> String {
    use datafusion::sql::sqlparser::ast::Spanned;
    let span: Span = expr.span();
    let Some((start, mut end)) = span_offsets(sql, span) else {
        return expr.to_string();
    };
    // Some spans stop short of closing parentheses (`COUNT(*)` ends at its
    // name, `f(a, (b)` before the last `)`): take the rest of the group.
    let mut depth: i64 = sql[start..end]
        .chars()
        .map(|c| match c {
            '(' => 1,
            ')' => -1,
            _ => 0,
        })
        .sum();
    if depth == 0 && matches!(expr, Expr::Function(_)) && !sql[start..end].ends_with(')') {
        let gap = sql[end..].len() - sql[end..].trim_start().len();
        if sql[end + gap..].starts_with('(') {
            end += gap;
        }
    }
    for c in sql[end..].chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => break,
            _ => {}
        }
        end += c.len_utf8();
        if depth == 0 {
            break;
        }
    }
    sql[start..end].to_string()
}

/// The byte offsets of a span in `sql`.
fn span_offsets(sql: &str, span: Span) -> Option<(usize, usize)> {
    if span.start.line == 0 || span.end.line == 0 {
        return None;
    }
    let offset = |line: u64, column: u64| -> Option<usize> {
        let mut at = 0;
        for (i, l) in sql.split_inclusive('\n').enumerate() {
            if i as u64 + 1 == line {
                let col = usize::try_from(column).ok()?.checked_sub(1)?;
                return Some(at + l.char_indices().nth(col).map_or(l.len(), |(b, _)| b));
            }
            at += l.len();
        }
        None
    };
    let (start, end) = (
        offset(span.start.line, span.start.column)?,
        offset(span.end.line, span.end.column)?,
    );
    (start < end).then_some((start, end))
}

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

/// A plain `SELECT` with no table (or `FROM DUAL`): the session evaluates it.
fn is_dual(q: &ast::Query) -> bool {
    let SetExpr::Select(select) = q.body.as_ref() else {
        return false;
    };
    // A subquery needs the query engine even without a FROM clause.
    let mut subquery = false;
    let _ = ast::Visit::visit(q.body.as_ref(), &mut SubqueryFinder(&mut subquery));
    !subquery
        && (select.from.is_empty()
            || (select.from.len() == 1
                && table_name(&select.from[0].relation)
                    .is_some_and(|t| t.eq_ignore_ascii_case("dual"))))
}

struct SubqueryFinder<'a>(&'a mut bool);

impl ast::Visitor for SubqueryFinder<'_> {
    type Break = ();
    fn pre_visit_query(&mut self, _: &ast::Query) -> std::ops::ControlFlow<()> {
        *self.0 = true;
        std::ops::ControlFlow::Break(())
    }
}

fn table_name(t: &ast::TableFactor) -> Option<String> {
    match t {
        ast::TableFactor::Table { name, .. } => Some(name_parts(name).join(".")),
        _ => Some("(subquery)".into()),
    }
}

/// The unquoted parts of a dotted name.
fn name_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| {
            p.as_ident()
                .map_or_else(|| p.to_string(), |i| i.value.clone())
        })
        .collect()
}

fn use_target(u: &ast::Use) -> Result<String> {
    match u {
        ast::Use::Object(name) | ast::Use::Database(name) | ast::Use::Schema(name) => {
            Ok(name_parts(name).join("."))
        }
        other => Err(Error::not_supported(other.to_string())),
    }
}

fn transaction_mode(mode: &ast::TransactionMode) -> (&'static str, Value) {
    use ast::{TransactionAccessMode as A, TransactionIsolationLevel as L, TransactionMode as M};
    match mode {
        M::AccessMode(A::ReadOnly) => ("transaction_read_only", Value::Int(1)),
        M::AccessMode(A::ReadWrite) => ("transaction_read_only", Value::Int(0)),
        M::IsolationLevel(level) => {
            let name = match level {
                L::ReadUncommitted => "READ-UNCOMMITTED",
                L::ReadCommitted => "READ-COMMITTED",
                L::Serializable => "SERIALIZABLE",
                _ => "REPEATABLE-READ",
            };
            ("transaction_isolation", Value::Str(name.into()))
        }
    }
}

/// The words of a statement the parser does not know, without a final `;`.
fn words(sql: &str) -> Vec<&str> {
    sql.trim()
        .trim_end_matches(';')
        .split_whitespace()
        .collect()
}

/// Whether `sql` is exactly `expected` (upper-case words), in any case.
fn is_words(sql: &str, expected: &[&str]) -> bool {
    let words = words(sql);
    words.len() == expected.len()
        && words
            .iter()
            .zip(expected)
            .all(|(w, e)| w.eq_ignore_ascii_case(e))
}

/// `SHOW [STORAGE] ENGINES`, which the parser does not know.
/// `… LOCK IN SHARE MODE` (MySQL's older spelling, which the parser does
/// not know) as `… FOR SHARE`.
fn share_mode(sql: &str) -> Option<String> {
    let trimmed = sql.trim_end().trim_end_matches(';').trim_end();
    let words: Vec<&str> = trimmed.rsplitn(5, char::is_whitespace).collect();
    let [mode, share, in_, lock, rest] = words.as_slice() else {
        return None;
    };
    let is = |w: &str, want: &str| w.eq_ignore_ascii_case(want);
    (is(lock, "LOCK") && is(in_, "IN") && is(share, "SHARE") && is(mode, "MODE"))
        .then(|| format!("{} FOR SHARE", rest.trim_end()))
}

/// The expressions of `DO expr, …`, which the parser does not know.
fn do_expressions(sql: &str) -> Option<&str> {
    let trimmed = sql.trim_start();
    let (first, rest) = trimmed.split_once(char::is_whitespace)?;
    first.eq_ignore_ascii_case("DO").then_some(rest)
}

/// The database of `SHOW CREATE {DATABASE|SCHEMA} [IF NOT EXISTS] db`,
/// which the parser does not know.
fn show_create_database_target(sql: &str) -> Option<String> {
    let words = words(sql);
    let is = |w: &str, want: &str| w.eq_ignore_ascii_case(want);
    let (show, create, kind, rest) = match words.as_slice() {
        [show, create, kind, rest @ ..] => (show, create, kind, rest),
        _ => return None,
    };
    if !(is(show, "SHOW") && is(create, "CREATE") && (is(kind, "DATABASE") || is(kind, "SCHEMA"))) {
        return None;
    }
    let name = match rest {
        [name] => name,
        [if_, not, exists, name] if is(if_, "IF") && is(not, "NOT") && is(exists, "EXISTS") => name,
        _ => return None,
    };
    Some(name.trim_matches('`').to_string())
}

/// `SHOW TABLE STATUS [{FROM|IN} db] [LIKE 'p']` (which the parser does
/// not know) as the query of `information_schema.tables` it stands for,
/// with the database and the pattern as its parameters; `None` for another
/// statement.
fn table_status_query(sql: &str, current_db: Option<&str>) -> Option<Result<(String, Vec<Value>)>> {
    let trimmed = sql.trim().trim_end_matches(';').trim_end();
    let mut rest = trimmed;
    for word in ["SHOW", "TABLE", "STATUS"] {
        let (first, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        if !first.eq_ignore_ascii_case(word) {
            return None;
        }
        rest = after.trim_start();
    }
    let mut database = current_db.map(str::to_string);
    let (first, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if first.eq_ignore_ascii_case("FROM") || first.eq_ignore_ascii_case("IN") {
        let after = after.trim_start();
        let (name, tail) = after.split_once(char::is_whitespace).unwrap_or((after, ""));
        if name.is_empty() {
            return Some(Err(syntax_error(sql, "a database name is missing")));
        }
        database = Some(name.trim_matches('`').to_string());
        rest = tail.trim_start();
    }
    let Some(database) = database else {
        return Some(Err(Error::NoDatabaseSelected));
    };
    let mut params = vec![Value::Str(database)];
    let (first, pattern) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let mut condition = None;
    let filter = if rest.is_empty() {
        ""
    } else if first.eq_ignore_ascii_case("LIKE") {
        // One string literal, read as the parser reads one.
        let Some(literal) = string_literal(pattern) else {
            return Some(Err(syntax_error(sql, pattern)));
        };
        params.push(Value::Str(literal));
        " AND table_name LIKE ?"
    } else if first.eq_ignore_ascii_case("WHERE") {
        // One expression on the output columns, as MySQL takes one; the
        // rows are filtered as a derived table.
        let Some(expr) = one_expression(pattern) else {
            return Some(Err(syntax_error(sql, pattern)));
        };
        condition = Some(expr);
        ""
    } else {
        return Some(Err(syntax_error(sql, rest)));
    };
    let query = format!(
        "SELECT table_name AS `Name`, engine AS `Engine`, version AS `Version`, \
             row_format AS `Row_format`, table_rows AS `Rows`, \
             avg_row_length AS `Avg_row_length`, data_length AS `Data_length`, \
             max_data_length AS `Max_data_length`, index_length AS `Index_length`, \
             data_free AS `Data_free`, auto_increment AS `Auto_increment`, \
             create_time AS `Create_time`, update_time AS `Update_time`, \
             check_time AS `Check_time`, table_collation AS `Collation`, \
             checksum AS `Checksum`, create_options AS `Create_options`, \
             table_comment AS `Comment` FROM information_schema.tables \
             WHERE table_schema = ?{filter}"
    );
    let query = match condition {
        Some(condition) => {
            format!("SELECT * FROM ({query}) AS `status` WHERE {condition} ORDER BY `Name`")
        }
        None => format!("{query} ORDER BY table_name"),
    };
    Some(Ok((query, params)))
}

/// `text` as exactly one expression, printed back.
fn one_expression(text: &str) -> Option<String> {
    let mut parser = Parser::new(&MySql).try_with_sql(text).ok()?;
    let expr = parser.parse_expr().ok()?;
    parser
        .expect_token(&datafusion::sql::sqlparser::tokenizer::Token::EOF)
        .ok()?;
    Some(expr.to_string())
}

/// `text` if it is exactly one string literal: its value.
fn string_literal(text: &str) -> Option<String> {
    let Ok(Statement::Query(q)) = parse_one(&format!("SELECT {text}")) else {
        return None;
    };
    let SetExpr::Select(select) = *q.body else {
        return None;
    };
    match select.projection.as_slice() {
        [SelectItem::UnnamedExpr(Expr::Value(v))] => match &v.value {
            ast::Value::SingleQuotedString(p) | ast::Value::DoubleQuotedString(p) => {
                Some(p.clone())
            }
            _ => None,
        },
        _ => None,
    }
}

/// `SHOW GRANTS [FOR user]` (which the parser does not know): the user
/// named, `None` for the current one; `Some(None)` is returned for this
/// statement without `FOR`.
fn show_grants_target(sql: &str) -> Option<Option<String>> {
    let words = words(sql);
    let is = |w: &str, want: &str| w.eq_ignore_ascii_case(want);
    match words.as_slice() {
        [show, grants] if is(show, "SHOW") && is(grants, "GRANTS") => Some(None),
        [show, grants, for_, user]
            if is(show, "SHOW") && is(grants, "GRANTS") && is(for_, "FOR") =>
        {
            let user = user.trim_end_matches("()");
            Some((!is(user, "CURRENT_USER")).then(|| user.to_string()))
        }
        _ => None,
    }
}

/// The statement inside a versioned comment `/*!NNNNN … */` (which MySQL
/// runs, and dump files are full of), else the text itself.
fn versioned_body(sql: &str) -> &str {
    let text = sql.trim().trim_end_matches(';').trim_end();
    match text.strip_prefix("/*!").and_then(|r| r.strip_suffix("*/")) {
        Some(inner) => inner
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .trim(),
        None => text,
    }
}

/// A name as one word of a statement: `t`, `db.t`, with or without
/// backquotes.
fn dotted_name(word: &str) -> ObjectName {
    ObjectName::from(
        word.split('.')
            .map(|w| ast::Ident::new(w.trim_matches('`')))
            .collect::<Vec<_>>(),
    )
}

/// `LOCK TABLES …` (true) or `UNLOCK TABLES` (false).
fn table_lock_statement(sql: &str) -> Option<bool> {
    let words = words(versioned_body(sql));
    let is = |w: &str, want: &str| w.eq_ignore_ascii_case(want);
    let tables = |w: &str| is(w, "TABLES") || is(w, "TABLE");
    match words.as_slice() {
        [lock, kind, _, ..] if is(lock, "LOCK") && tables(kind) => Some(true),
        [unlock, kind] if is(unlock, "UNLOCK") && tables(kind) => Some(false),
        _ => None,
    }
}

/// The table of `ALTER TABLE t {DISABLE|ENABLE} KEYS`.
fn keys_toggle_target(sql: &str) -> Option<ObjectName> {
    let words = words(versioned_body(sql));
    let is = |w: &str, want: &str| w.eq_ignore_ascii_case(want);
    let [alter, table, name, toggle, keys] = words.as_slice() else {
        return None;
    };
    if !(is(alter, "ALTER")
        && is(table, "TABLE")
        && (is(toggle, "DISABLE") || is(toggle, "ENABLE"))
        && is(keys, "KEYS"))
    {
        return None;
    }
    Some(dotted_name(name))
}

fn is_show_engines(sql: &str) -> bool {
    is_words(sql, &["SHOW", "ENGINES"]) || is_words(sql, &["SHOW", "STORAGE", "ENGINES"])
}

/// The table of `SHOW {INDEX|INDEXES|KEYS} {FROM|IN} t [{FROM|IN} db]`,
/// which the parser does not know.
fn show_index_target(sql: &str) -> Option<ObjectName> {
    let words = words(sql);
    let [show, kind, from, rest @ ..] = words.as_slice() else {
        return None;
    };
    let is = |w: &str, options: &[&str]| options.iter().any(|o| w.eq_ignore_ascii_case(o));
    if !is(show, &["SHOW"])
        || !is(kind, &["INDEX", "INDEXES", "KEYS"])
        || !is(from, &["FROM", "IN"])
    {
        return None;
    }
    let unquote = |w: &str| w.trim_matches('`').to_string();
    let parts: Vec<String> = match rest {
        [table] => table.split('.').map(unquote).collect(),
        [table, from_db, db] if is(from_db, &["FROM", "IN"]) => vec![unquote(db), unquote(table)],
        _ => return None,
    };
    Some(ObjectName::from(
        parts.into_iter().map(ast::Ident::new).collect::<Vec<_>>(),
    ))
}

/// `START TRANSACTION WITH CONSISTENT SNAPSHOT`, which the parser lacks.
fn is_consistent_snapshot_start(sql: &str) -> bool {
    is_words(
        sql,
        &["START", "TRANSACTION", "WITH", "CONSISTENT", "SNAPSHOT"],
    )
}

/// `ALTER TABLE t SET COLUMNAR REPLICA n` (Duet's own statement, which
/// the MySQL grammar does not have): the table and `n` (`None` if `n` is
/// not a number).
fn columnar_replica_target(sql: &str) -> Option<(ObjectName, Option<u64>)> {
    let words = words(sql);
    let [alter, table, name, set, columnar, replica, count] = words.as_slice() else {
        return None;
    };
    let is = |w: &str, want: &str| w.eq_ignore_ascii_case(want);
    if !(is(alter, "ALTER")
        && is(table, "TABLE")
        && is(set, "SET")
        && is(columnar, "COLUMNAR")
        && is(replica, "REPLICA"))
    {
        return None;
    }
    Some((dotted_name(name), count.parse().ok()))
}

fn is_show_warnings(sql: &str) -> bool {
    let words: Vec<String> = sql
        .split_whitespace()
        .take(3)
        .map(|w| w.to_ascii_uppercase())
        .collect();
    words.len() == 2 && words[0] == "SHOW" && words[1].trim_end_matches(';') == "WARNINGS"
}

/// The first words of a statement, naming the feature an unsupported one needs.
pub(crate) fn statement_kind(sql: &str) -> String {
    let words: Vec<String> = sql
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .take(2)
        .map(|w| w.to_ascii_uppercase())
        .collect();
    words.join(" ")
}
