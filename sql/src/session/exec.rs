//! Statements that touch tables: transactions (autocommit, `BEGIN` …
//! `COMMIT`, statement atomicity inside a transaction, automatic retry of
//! an autocommit statement that lost a write conflict), DDL, DML and
//! queries. Reads run at the transaction's start timestamp; writes are
//! buffered in it and committed with two-phase commit through Raft.

use std::sync::{Arc, Mutex, MutexGuard};

use datafusion::sql::sqlparser::ast::{
    self, Assignment, AssignmentTarget, Expr, FromTable, ObjectName, ObjectType, OnInsert, Query,
    SetExpr, Statement, TableFactor, TableObject, VisitMut, VisitorMut,
};
use duet_storage::codec::Datum;
use std::ops::ControlFlow;

use crate::catalog::{Catalog, DefaultValue, HandleKind, SchemaWriter, TableInfo};
use crate::ddl;
use crate::error::{Error, Result};
use crate::eval;
use crate::kv::KvTxn;
use crate::query::{self, HANDLE_COLUMN, RowSource};
use crate::ranges::HandleSet;
use crate::session::{Session, Warning};
use crate::table::{self, Row};
use crate::types::{datum_to_value, value_text};
use crate::value::{Column, FieldType, OkStatus, Output, ResultSet, Value};

/// A transaction shared between a session and the scans of its statement.
pub(crate) type SharedTxn = Arc<Mutex<Box<dyn KvTxn>>>;

pub(crate) fn lock(txn: &SharedTxn) -> MutexGuard<'_, Box<dyn KvTxn>> {
    txn.lock().unwrap_or_else(|e| e.into_inner())
}

/// Times an autocommit statement is retried after a write conflict.
const AUTOCOMMIT_RETRIES: usize = 10;

struct TxnSource(SharedTxn, Arc<crate::session::Database>);

impl RowSource for TxnSource {
    fn stats(&self, table: &TableInfo) -> Option<crate::stats::TableStats> {
        // Statistics guide the plan; failing to read them changes no answer.
        self.1
            .stats
            .get(lock(&self.0).as_ref(), table)
            .ok()
            .flatten()
    }

    fn rows_by_index(
        &self,
        table: &TableInfo,
        index: &crate::catalog::IndexInfo,
        prefixes: &[Vec<Datum>],
        range: Option<(i64, i64)>,
    ) -> Result<Vec<(Vec<u8>, Row)>> {
        table::rows_by_index(lock(&self.0).as_ref(), table, index, prefixes, range)
    }

    fn columnar_available(
        &self,
        table: &TableInfo,
        schema: &datafusion::arrow::datatypes::SchemaRef,
        wait: bool,
    ) -> bool {
        // The catalog this statement reads says whether the table has a
        // replica at all; the replica itself may not have applied that yet.
        if !table.columnar_replica {
            return false;
        }
        let Some(replica) = &self.1.columnar else {
            return false;
        };
        let fields: Vec<(String, datafusion::arrow::datatypes::DataType)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        replica.available(table.id, &fields, wait)
    }

    fn columnar_replica_status(&self, table: &TableInfo) -> Option<duet_columnar::TableStatus> {
        self.1.columnar.as_ref()?.table_status(table.id)
    }

    fn has_writes(&self, table: &TableInfo) -> bool {
        let prefix = duet_storage::codec::key::table_prefix(table.id);
        lock(&self.0).has_writes_in(&prefix, &duet_storage::codec::key::prefix_end(&prefix))
    }

    fn columnar_scan(
        &self,
        table: &TableInfo,
        mut request: duet_columnar::ScanRequest,
    ) -> Result<duet_columnar::ScanOutput> {
        let replica = self
            .1
            .columnar
            .as_ref()
            .ok_or_else(|| Error::Internal("no columnar replica".into()))?;
        let txn = lock(&self.0);
        request.read_ts = txn.start_ts();
        let mut out = None;
        let mut failed = None;
        txn.read_with(&mut || match replica.scan(table.id, &request) {
            Ok(o) => {
                out = Some(o);
                Ok(())
            }
            Err(duet_columnar::Error::Locked(info)) => Err(duet_storage::Error::KeyIsLocked(info)),
            Err(e) => {
                failed = Some(e);
                Ok(())
            }
        })
        .map_err(Error::from_storage)?;
        match (out, failed) {
            (Some(o), _) => Ok(o),
            (None, Some(e @ duet_columnar::Error::Behind { .. })) => {
                Err(Error::ColumnarTimeout(e.to_string()))
            }
            (None, Some(e @ duet_columnar::Error::Unavailable { .. })) => {
                Err(Error::ColumnarUnavailable(e.to_string()))
            }
            (None, Some(e)) => Err(Error::Internal(e.to_string())),
            (None, None) => Err(Error::Internal("the columnar read returned nothing".into())),
        }
    }

    fn rows(&self, table: &TableInfo, handles: &HandleSet) -> Result<Vec<(Vec<u8>, Row)>> {
        table::rows_by_handles(lock(&self.0).as_ref(), table, handles)
    }

    fn rows_between(
        &self,
        table: &TableInfo,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Row)>> {
        table::scan_key_range(lock(&self.0).as_ref(), table, start, end, limit)
    }
}

/// The clauses of an `UPDATE` or `DELETE` that choose its rows.
#[derive(Clone, Copy)]
struct Clauses<'a> {
    alias: Option<&'a str>,
    selection: Option<&'a Expr>,
    order_by: &'a [ast::OrderByExpr],
    limit: Option<&'a Expr>,
}

/// The table a DML statement names, resolved.
struct Target {
    table: Arc<TableInfo>,
    /// The name to use in generated SQL (`db`.`t`).
    sql_name: String,
}

impl Session {
    /// Runs `f` in the session's transaction — the open one, or a new one
    /// committed at the end (autocommit), retried if it lost a conflict.
    /// Inside an open transaction a failed statement leaves no writes
    /// behind; a conflict (1213) rolls the whole transaction back, as in
    /// MySQL.
    pub(crate) fn with_txn<T>(
        &mut self,
        mut f: impl FnMut(&mut Session, &SharedTxn) -> Result<T>,
    ) -> Result<T> {
        if self.txn.is_none() && !self.status().autocommit {
            self.begin()?;
        }
        if let Some(txn) = self.txn.clone() {
            let checkpoint = lock(&txn).checkpoint();
            let outcome = f(self, &txn);
            if let Err(e) = &outcome {
                // As in MySQL: a deadlock (here, a lost write conflict)
                // rolls the transaction back; a lock wait timeout only the
                // statement.
                if matches!(e, Error::Deadlock) {
                    let _ = lock(&txn).rollback();
                    self.txn = None;
                    self.savepoints.clear();
                } else {
                    lock(&txn).restore(checkpoint);
                }
            }
            return outcome;
        }
        self.own_txn(f)
    }

    /// Runs `f` in a transaction of its own, committed at the end and
    /// retried if it lost a conflict (autocommit statements and DDL).
    fn own_txn<T>(
        &mut self,
        mut f: impl FnMut(&mut Session, &SharedTxn) -> Result<T>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let txn: SharedTxn =
                Arc::new(Mutex::new(self.db.kv.begin().map_err(Error::from_storage)?));
            let outcome = f(self, &txn).and_then(|v| {
                lock(&txn).commit().map_err(Error::from_storage)?;
                Ok(v)
            });
            match outcome {
                // A conflict is retried at a new snapshot; a lock wait has
                // already waited as long as it may.
                Err(Error::Deadlock) if attempt < AUTOCOMMIT_RETRIES => {
                    let _ = lock(&txn).rollback();
                    self.warnings.clear();
                    continue;
                }
                Err(e) => {
                    let _ = lock(&txn).rollback();
                    return Err(e);
                }
                ok => return ok,
            }
        }
    }

    /// `BEGIN` / `START TRANSACTION`: commits an open transaction first.
    pub(crate) fn begin(&mut self) -> Result<()> {
        self.commit()?;
        let txn = self.db.kv.begin().map_err(Error::from_storage)?;
        self.txn = Some(Arc::new(Mutex::new(txn)));
        Ok(())
    }

    /// `COMMIT` (and the implicit commit before DDL and `BEGIN`).
    pub(crate) fn commit(&mut self) -> Result<()> {
        self.savepoints.clear();
        match self.txn.take() {
            Some(txn) => lock(&txn).commit().map(|_| ()).map_err(Error::from_storage),
            None => Ok(()),
        }
    }

    /// `ROLLBACK`.
    pub(crate) fn rollback(&mut self) -> Result<()> {
        self.savepoints.clear();
        match self.txn.take() {
            Some(txn) => lock(&txn).rollback().map_err(Error::from_storage),
            None => Ok(()),
        }
    }

    /// `SAVEPOINT name`: marks the transaction's writes so far (one of
    /// the same name is replaced). Outside a transaction it marks nothing.
    pub(crate) fn savepoint(&mut self, name: &str) -> Result<()> {
        if self.txn.is_none() && !self.status().autocommit {
            self.begin()?;
        }
        let Some(txn) = &self.txn else {
            return Ok(());
        };
        let checkpoint = lock(txn).checkpoint();
        self.savepoints
            .retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.savepoints.push((name.to_string(), checkpoint));
        Ok(())
    }

    /// `ROLLBACK TO [SAVEPOINT] name` (`release` false): forgets the writes
    /// since, and the savepoints set after it; the row locks taken since
    /// stay, as in InnoDB. `RELEASE SAVEPOINT name` (true): forgets the
    /// savepoint and those set after it.
    pub(crate) fn back_to_savepoint(&mut self, name: &str, release: bool) -> Result<()> {
        let at = self
            .savepoints
            .iter()
            .rposition(|(n, _)| n.eq_ignore_ascii_case(name))
            .ok_or_else(|| Error::UnknownSavepoint(name.to_string()))?;
        if release {
            self.savepoints.truncate(at);
            return Ok(());
        }
        let checkpoint = self.savepoints[at].1.clone();
        self.savepoints.truncate(at + 1);
        if let Some(txn) = &self.txn {
            lock(txn).restore(checkpoint);
        }
        Ok(())
    }

    pub(crate) fn in_transaction(&self) -> bool {
        self.txn.is_some()
    }

    /// The schema `txn` sees (the shared cache when it is current).
    pub(crate) fn catalog(&self, txn: &dyn KvTxn) -> Result<Arc<Catalog>> {
        self.db.catalog(txn)
    }

    /// Runs a schema change in its own transaction after committing any
    /// open one (MySQL's implicit commit), retrying on conflicts.
    fn ddl(
        &mut self,
        mut change: impl FnMut(&mut SchemaWriter<'_>, &Catalog, Option<&str>) -> Result<Vec<Warning>>,
    ) -> Result<Output> {
        self.commit()?;
        let current = self.current_db.clone();
        let warnings = self.own_txn(|session, txn| {
            let mut guard = lock(txn);
            let catalog = session.catalog(guard.as_ref())?;
            let mut writer = SchemaWriter {
                txn: guard.as_mut(),
                defer_backfill: None,
            };
            change(&mut writer, &catalog, current.as_deref())
        })?;
        self.warnings.extend(warnings);
        Ok(Output::ok())
    }

    /// Statements on tables and databases; `None` if `stmt` is none of them.
    pub(crate) fn run_table_statement(
        &mut self,
        sql: &str,
        stmt: &Statement,
        params: &[Value],
    ) -> Option<Result<Output>> {
        Some(match stmt {
            Statement::CreateDatabase {
                db_name,
                if_not_exists,
                ..
            } => self.create_database(&name_of(db_name), *if_not_exists),
            Statement::CreateSchema {
                schema_name,
                if_not_exists,
                ..
            } => self.create_database(&schema_name.to_string().replace('`', ""), *if_not_exists),
            Statement::Drop {
                object_type,
                if_exists,
                names,
                table,
                ..
            } => match object_type {
                ObjectType::Database | ObjectType::Schema => match names.as_slice() {
                    [name] => self.drop_database(&name_of(name), *if_exists),
                    _ => Err(Error::not_supported("DROP DATABASE with several names")),
                },
                ObjectType::Table => self.drop_tables(names, *if_exists, false),
                ObjectType::View => self.drop_tables(names, *if_exists, true),
                ObjectType::Index => match (names.as_slice(), table) {
                    ([index], Some(table)) => self.drop_index(table, &name_of(index)),
                    ([index], None) => self.drop_index_by_name(&name_of(index)),
                    _ => Err(Error::not_supported("DROP INDEX of several indexes")),
                },
                other => Err(Error::not_supported(format!("DROP {other}"))),
            },
            Statement::CreateTable(create) => self.create_table(create),
            Statement::CreateView(view) => self.create_view(sql, view),
            Statement::CreateIndex(ci) => self.create_index(ci),
            Statement::AlterTable(alter) => self.alter_table(&alter.name, &alter.operations),
            Statement::RenameTable(pairs) => self.rename_tables(
                &pairs
                    .iter()
                    .map(|p| (p.old_name.clone(), p.new_name.clone()))
                    .collect::<Vec<_>>(),
            ),
            Statement::Truncate(t) => match t.table_names.as_slice() {
                [target] => self.truncate(&target.name),
                _ => Err(Error::not_supported("TRUNCATE of several tables")),
            },
            Statement::ShowTables {
                full, show_options, ..
            } => self.show_tables(*full, show_options),
            Statement::ShowColumns {
                full, show_options, ..
            } => match show_options
                .show_in
                .as_ref()
                .and_then(|s| s.parent_name.as_ref())
            {
                Some(name) => self.describe(name, *full),
                None => Err(Error::not_supported("SHOW COLUMNS without FROM")),
            },
            Statement::ExplainTable { table_name, .. } => self.describe(table_name, false),
            Statement::ShowCreate { obj_type, obj_name } => match obj_type {
                ast::ShowCreateObject::Table => self.show_create_table(obj_name, false),
                ast::ShowCreateObject::View => self.show_create_table(obj_name, true),
                other => Err(Error::not_supported(format!("SHOW CREATE {other}"))),
            },
            Statement::Explain {
                statement, analyze, ..
            } => match statement.as_ref() {
                Statement::Query(q) => self.explain(sql, q, *analyze),
                other => Err(Error::not_supported(format!(
                    "EXPLAIN of {}",
                    crate::session::statement_kind(&other.to_string())
                ))),
            },
            Statement::Analyze(a) => match &a.table_name {
                Some(name) => self.analyze_table(name),
                None => Err(Error::not_supported("ANALYZE without a table")),
            },
            Statement::Insert(insert) => self.insert(insert, params),
            Statement::Update(update) => self.update(sql, update, params),
            Statement::Delete(delete) => self.delete(delete, params),
            _ => return None,
        })
    }

    fn create_database(&mut self, name: &str, if_not_exists: bool) -> Result<Output> {
        if crate::session::is_builtin_database(name) {
            return Err(Error::DatabaseExists(name.to_string()));
        }
        let name = name.to_string();
        self.ddl(move |w, catalog, _| {
            if catalog.database(&name).is_some() {
                if if_not_exists {
                    return Ok(vec![note(Error::DatabaseExists(name.clone()))]);
                }
                return Err(Error::DatabaseExists(name.clone()));
            }
            w.create_database(&name)?;
            Ok(vec![])
        })?;
        Ok(Output::Ok(OkStatus {
            affected_rows: 1,
            ..OkStatus::default()
        }))
    }

    fn drop_database(&mut self, name: &str, if_exists: bool) -> Result<Output> {
        let name = name.to_string();
        let mut dropped_tables = 0;
        self.ddl(|w, catalog, _| {
            let Some(db) = catalog.database(&name) else {
                if if_exists {
                    return Ok(vec![note(Error::DropMissingDatabase(name.clone()))]);
                }
                return Err(Error::DropMissingDatabase(name.clone()));
            };
            let tables = catalog.tables(&db.name);
            dropped_tables = tables.len() as u64;
            w.drop_database(db, &tables)?;
            Ok(vec![])
        })?;
        if self
            .current_db
            .as_deref()
            .is_some_and(|d| d.eq_ignore_ascii_case(&name))
        {
            self.current_db = None;
        }
        Ok(Output::Ok(OkStatus {
            affected_rows: dropped_tables,
            ..OkStatus::default()
        }))
    }

    fn create_table(&mut self, create: &ast::CreateTable) -> Result<Output> {
        if create.temporary {
            return Err(Error::not_supported("CREATE TEMPORARY TABLE"));
        }
        if let Some(query) = &create.query {
            return self.create_table_as(create, query);
        }
        let (database, name) = ddl::qualified(&create.name, self.current_db.as_deref())?;
        // `CREATE TABLE t LIKE s`: s's columns, keys and options, no rows.
        let like = match &create.like {
            Some(
                ast::CreateTableLikeKind::Plain(like)
                | ast::CreateTableLikeKind::Parenthesized(like),
            ) => Some(ddl::qualified(&like.name, self.current_db.as_deref())?),
            None => None,
        };
        self.ddl(|w, catalog, _| {
            let db = catalog
                .database(&database)
                .ok_or_else(|| Error::UnknownDatabase(database.clone()))?;
            if catalog.table(&database, &name).is_some() {
                if create.if_not_exists {
                    return Ok(vec![note(Error::TableExists(name.clone()))]);
                }
                return Err(Error::TableExists(name.clone()));
            }
            let id = w.next_id()?;
            let (info, warnings) = match &like {
                Some((source_db, source)) => {
                    let source_info =
                        catalog
                            .table(source_db, source)
                            .ok_or_else(|| Error::NoSuchTable {
                                database: source_db.clone(),
                                table: source.clone(),
                            })?;
                    if source_info.view.is_some() {
                        return Err(Error::NotBaseTable(format!("{source_db}.{source}")));
                    }
                    let info = crate::catalog::TableInfo {
                        id,
                        database_id: db.id,
                        name: name.clone(),
                        ..(**source_info).clone()
                    };
                    (info, Vec::new())
                }
                None => ddl::table_info(create, db.id, id, &name)?,
            };
            w.put_table(&info)?;
            Ok(warnings)
        })
    }

    /// `CREATE TABLE t AS SELECT …`: a table with the query's result
    /// columns (their types, widths and nullability), filled with its rows
    /// and committed; if the rows cannot be written, no table is left.
    fn create_table_as(&mut self, create: &ast::CreateTable, query: &Query) -> Result<Output> {
        if !create.columns.is_empty() || create.like.is_some() {
            return Err(Error::not_supported(
                "CREATE TABLE … AS SELECT with column definitions or LIKE",
            ));
        }
        let (database, name) = ddl::qualified(&create.name, self.current_db.as_deref())?;
        let query_sql = query.to_string();
        let columns = self.describe_query(&query_sql, query, 0)?;
        let exists = self.with_txn(|s, txn| {
            Ok(s.catalog(lock(txn).as_ref())?
                .table(&database, &name)
                .is_some())
        })?;
        if exists {
            if create.if_not_exists {
                self.warnings.push(note(Error::TableExists(name.clone())));
                return Ok(Output::ok());
            }
            return Err(Error::TableExists(name));
        }
        let definitions: Vec<String> = columns
            .iter()
            .map(|c| {
                format!(
                    "`{}` {}{}",
                    c.name.replace('`', "``"),
                    ddl::result_column_type(c),
                    if c.not_null { " NOT NULL" } else { "" }
                )
            })
            .collect();
        let table = format!(
            "`{}`.`{}`",
            database.replace('`', "``"),
            name.replace('`', "``")
        );
        let ddl_sql = format!("CREATE TABLE {table} ({})", definitions.join(", "));
        let Statement::CreateTable(definition) = crate::session::parse_one(&ddl_sql)? else {
            return Err(Error::Internal("CREATE TABLE did not parse as one".into()));
        };
        self.create_table(&definition)?;
        // The INSERT takes the parsed query itself: printed back as text, a
        // string literal would lose its escapes.
        let insert_sql = format!("INSERT INTO {table} SELECT 1");
        let filled = crate::session::parse_one(&insert_sql)
            .and_then(|mut insert| {
                if let Statement::Insert(i) = &mut insert {
                    i.source = Some(Box::new(query.clone()));
                }
                self.run(&insert_sql, &insert, &[])
            })
            .and_then(|out| self.commit().map(|()| out));
        if filled.is_err() {
            let _ = self.rollback();
            let _ = crate::session::parse_one(&format!("DROP TABLE {table}"))
                .and_then(|drop| self.run("DROP TABLE", &drop, &[]));
        }
        filled
    }

    /// `DROP TABLE` (`views` false) or `DROP VIEW` (true): each name must be
    /// of that kind.
    fn drop_tables(
        &mut self,
        names: &[ObjectName],
        if_exists: bool,
        views: bool,
    ) -> Result<Output> {
        let current = self.current_db.clone();
        let targets: Vec<(String, String)> = names
            .iter()
            .map(|n| ddl::qualified(n, current.as_deref()))
            .collect::<Result<_>>()?;
        if !ddl::distinct_tables(&targets) {
            return Err(Error::not_supported("DROP TABLE naming a table twice"));
        }
        self.ddl(|w, catalog, _| {
            let mut missing = Vec::new();
            let mut found = Vec::new();
            for (d, t) in &targets {
                match catalog.table(d, t) {
                    Some(info) if info.view.is_some() == views => found.push(Arc::clone(info)),
                    _ => missing.push(format!("{d}.{t}")),
                }
            }
            if !missing.is_empty() && !if_exists {
                return Err(Error::UnknownTable(missing.join(",")));
            }
            for t in found {
                w.drop_table(&t)?;
            }
            Ok(missing
                .into_iter()
                .map(|m| note(Error::UnknownTable(m)))
                .collect())
        })
    }

    /// The base table `database.name` (a view is refused with 1347).
    fn existing_table(catalog: &Catalog, database: &str, name: &str) -> Result<Arc<TableInfo>> {
        let table = Self::existing_relation(catalog, database, name)?;
        if table.view.is_some() {
            return Err(Error::NotBaseTable(format!("{database}.{}", table.name)));
        }
        Ok(table)
    }

    /// The table or view `database.name`.
    fn existing_relation(catalog: &Catalog, database: &str, name: &str) -> Result<Arc<TableInfo>> {
        if catalog.database(database).is_none() {
            return Err(Error::UnknownDatabase(database.to_string()));
        }
        catalog
            .table(database, name)
            .cloned()
            .ok_or_else(|| Error::NoSuchTable {
                database: database.to_string(),
                table: name.to_string(),
            })
    }

    /// `CREATE [OR REPLACE] VIEW v [(columns)] AS query`: the query is
    /// planned now (to find its columns and refuse a bad one) and kept as
    /// text; each statement that reads the view plans it in its own
    /// snapshot.
    fn create_view(&mut self, sql: &str, view: &ast::CreateView) -> Result<Output> {
        if view.materialized {
            return Err(Error::not_supported("materialized views"));
        }
        let (database, name) = ddl::qualified(&view.name, self.current_db.as_deref())?;
        let described = self.describe_query(sql, &view.query, 0)?;
        let columns: Vec<String> = if view.columns.is_empty() {
            described.into_iter().map(|c| c.name).collect()
        } else if view.columns.len() == described.len() {
            view.columns.iter().map(|c| c.name.value.clone()).collect()
        } else {
            return Err(Error::ViewColumnCount);
        };
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = columns
            .iter()
            .find(|c| !seen.insert(c.to_ascii_lowercase()))
        {
            return Err(Error::DuplicateColumn(dup.clone()));
        }
        let definition = crate::catalog::ViewDef {
            sql: view.query.to_string(),
            columns,
        };
        let (or_replace, if_not_exists) = (view.or_replace, view.if_not_exists);
        self.ddl(|w, catalog, _| {
            let db = catalog
                .database(&database)
                .ok_or_else(|| Error::UnknownDatabase(database.clone()))?;
            let id = match catalog.table(&database, &name) {
                Some(old) if or_replace && old.view.is_some() => old.id,
                Some(_) if if_not_exists => {
                    return Ok(vec![note(Error::TableExists(name.clone()))]);
                }
                Some(_) => return Err(Error::TableExists(name.clone())),
                None => w.next_id()?,
            };
            w.put_table(&TableInfo {
                id,
                database_id: db.id,
                name: name.clone(),
                columns: Vec::new(),
                indexes: Vec::new(),
                handle: HandleKind::RowId,
                next_column_id: 1,
                next_index_id: 1,
                comment: String::new(),
                view: Some(definition.clone()),
                columnar_replica: true,
                altering: None,
                collation: Default::default(),
            })?;
            Ok(vec![])
        })
    }

    fn create_index(&mut self, ci: &ast::CreateIndex) -> Result<Output> {
        let (database, name) = ddl::qualified(&ci.table_name, self.current_db.as_deref())?;
        let index_name = ci.name.as_ref().map(name_of);
        let columns = ddl::index_columns(&ci.columns)?;
        self.change_table(&database, &name, false, |w, table| {
            let mut next = table.clone();
            if let Some(n) = &index_name
                && ci.if_not_exists
                && next.indexes.iter().any(|i| i.name.eq_ignore_ascii_case(n))
            {
                return Ok(next);
            }
            let ix = ddl::add_index(&mut next, index_name.clone(), &columns, ci.unique, false)?;
            ddl::build_index(w, &mut next, &ix)?;
            Ok(next)
        })
    }

    /// Changes the definition of table `database.name` by `change` so that
    /// no transaction commits rows shaped by the definition it replaces
    /// (each writer watches the definition of the tables it writes; see
    /// [`crate::table`]), in two steps where one would leave a gap:
    ///
    /// - `blocking` (the rows are rewritten): the first step marks the
    ///   table `altering`, which refuses writes and fails every writer
    ///   still on the old definition; the second makes the change from a
    ///   snapshot that holds every row written before.
    /// - otherwise the change commits in one step, with any new index
    ///   write-only (its writers keep its entries from then on); a second
    ///   step back-fills it from a snapshot that holds every row written
    ///   without them, and opens it to readers.
    ///
    /// A failed second step puts the definition back as it was. One change
    /// of a table runs at a time: another waits for none, it is a 1205.
    fn change_table(
        &mut self,
        database: &str,
        name: &str,
        blocking: bool,
        mut change: impl FnMut(&mut SchemaWriter<'_>, &TableInfo) -> Result<TableInfo>,
    ) -> Result<Output> {
        let mut original = None;
        let mut building = false;
        let node_id = self.db.node_id;
        self.ddl(|w, catalog, _| {
            let table = Self::existing_table(catalog, database, name)?;
            table.change_running()?;
            original = Some((*table).clone());
            let next = if blocking {
                TableInfo {
                    altering: Some(node_id),
                    ..(*table).clone()
                }
            } else {
                w.defer_backfill = Some(node_id);
                change(w, &table)?
            };
            building = next.indexes.iter().any(|i| i.write_only.is_some());
            w.put_table(&next)?;
            Ok(vec![])
        })?;
        if !blocking && !building {
            return Ok(Output::ok());
        }
        // A conflict with a concurrent writer is retried from a newer
        // snapshot, as any statement's own transaction is.
        let second = self.ddl(|w, catalog, _| {
            let table = Self::existing_table(catalog, database, name)?;
            let mut next = if blocking {
                let unmarked = TableInfo {
                    altering: None,
                    ..(*table).clone()
                };
                change(w, &unmarked)?
            } else {
                (*table).clone()
            };
            ddl::publish_indexes(w, &mut next)?;
            w.put_table(&next)?;
            Ok(vec![])
        });
        if second.is_err()
            && let Some(original) = original
        {
            // Back as it was (no other change of the table ran meanwhile);
            // ids stay taken, and the entries of an index that was being
            // built are destroyed with its prefix.
            let mut restored = Ok(Output::ok());
            for _ in 0..5 {
                restored = self.ddl(|w, catalog, _| {
                    let table = Self::existing_table(catalog, database, name)?;
                    for ix in table.indexes.iter().filter(|i| i.write_only.is_some()) {
                        w.retire_prefix(duet_storage::codec::key::index_prefix(table.id, ix.id));
                    }
                    w.put_table(&TableInfo {
                        next_index_id: table.next_index_id,
                        next_column_id: table.next_column_id,
                        ..original.clone()
                    })?;
                    Ok(vec![])
                });
                if restored.is_ok() {
                    break;
                }
            }
            if let Err(e) = restored {
                tracing::warn!(table = %format!("{database}.{name}"), error = %e,
                    "could not put back the definition of a failed schema change");
            }
        }
        second
    }

    fn drop_index(&mut self, table: &ObjectName, index: &str) -> Result<Output> {
        let (database, name) = ddl::qualified(table, self.current_db.as_deref())?;
        let index = index.to_string();
        self.ddl(|w, catalog, _| {
            let table = Self::existing_table(catalog, &database, &name)?;
            let mut next = (*table).clone();
            ddl::drop_index(w, &mut next, &index)?;
            w.put_table(&next)?;
            Ok(vec![])
        })
    }

    /// `DROP INDEX name` without `ON table` (SQLite's form): the index of
    /// that name in the current database, if exactly one table has it.
    fn drop_index_by_name(&mut self, index: &str) -> Result<Output> {
        let database = self.current_db.clone().ok_or(Error::NoDatabaseSelected)?;
        let catalog = self.read_catalog()?;
        let owners: Vec<String> = catalog
            .tables(&database)
            .iter()
            .filter(|t| {
                t.indexes
                    .iter()
                    .any(|i| !i.primary && i.name.eq_ignore_ascii_case(index))
            })
            .map(|t| t.name.clone())
            .collect();
        match owners.as_slice() {
            [table] => {
                let name = ObjectName::from(vec![ast::Ident::new(table.clone())]);
                self.drop_index(&name, index)
            }
            [] => Err(Error::CantDrop(index.to_string())),
            _ => Err(Error::not_supported(
                "DROP INDEX without ON when several tables have an index of that name",
            )),
        }
    }

    /// `RENAME TABLE a TO b, c TO d …`: in order, in one schema change
    /// (so `a TO tmp, b TO a, tmp TO b` swaps two tables); a table may move
    /// to another database. A missing source is 1146, a taken name 1050.
    pub(crate) fn rename_tables(&mut self, pairs: &[(ObjectName, ObjectName)]) -> Result<Output> {
        let current = self.current_db.clone();
        let pairs: Vec<((String, String), (String, String))> = pairs
            .iter()
            .map(|(from, to)| {
                Ok((
                    ddl::qualified(from, current.as_deref())?,
                    ddl::qualified(to, current.as_deref())?,
                ))
            })
            .collect::<Result<_>>()?;
        self.ddl(|w, catalog, _| {
            // The names as the earlier renames of this statement left them.
            let mut moved: std::collections::HashMap<
                (String, String),
                Option<Arc<crate::catalog::TableInfo>>,
            > = std::collections::HashMap::new();
            let key = |db: &str, name: &str| (db.to_ascii_lowercase(), name.to_ascii_lowercase());
            for ((from_db, from), (to_db, to)) in &pairs {
                let source = match moved.get(&key(from_db, from)) {
                    Some(entry) => entry.clone(),
                    None => catalog.table(from_db, from).cloned(),
                }
                .ok_or_else(|| Error::NoSuchTable {
                    database: from_db.clone(),
                    table: from.clone(),
                })?;
                let taken = match moved.get(&key(to_db, to)) {
                    Some(entry) => entry.is_some(),
                    None => catalog.table(to_db, to).is_some(),
                };
                if taken {
                    return Err(Error::TableExists(to.clone()));
                }
                let db = catalog
                    .database(to_db)
                    .ok_or_else(|| Error::UnknownDatabase(to_db.clone()))?;
                let renamed = Arc::new(crate::catalog::TableInfo {
                    database_id: db.id,
                    name: to.clone(),
                    ..(*source).clone()
                });
                w.rename_table(&source, &renamed)?;
                moved.insert(key(from_db, from), None);
                moved.insert(key(to_db, to), Some(renamed));
            }
            Ok(vec![])
        })
    }

    fn alter_table(
        &mut self,
        name: &ObjectName,
        operations: &[ast::AlterTableOperation],
    ) -> Result<Output> {
        if let [ast::AlterTableOperation::RenameTable { table_name }] = operations {
            let (ast::RenameTableNameKind::To(to) | ast::RenameTableNameKind::As(to)) = table_name;
            return self.rename_tables(&[(name.clone(), to.clone())]);
        }
        let (database, name) = ddl::qualified(name, self.current_db.as_deref())?;
        // A column's new type rewrites (or checks) every row.
        let blocking = operations.iter().any(|op| {
            matches!(
                op,
                ast::AlterTableOperation::ModifyColumn { .. }
                    | ast::AlterTableOperation::ChangeColumn { .. }
            )
        });
        self.change_table(&database, &name, blocking, |w, table| {
            ddl::alter_table(w, table, operations)
        })
    }

    /// `ALTER TABLE t SET COLUMNAR REPLICA 0|1`: removes or adds the
    /// table's columnar replica (an added one is back-filled from the row
    /// store, then follows the log).
    pub(crate) fn set_columnar_replica(
        &mut self,
        name: &ObjectName,
        count: Option<u64>,
    ) -> Result<Output> {
        let wanted = match count {
            Some(0) => false,
            Some(1) => true,
            _ => {
                return Err(Error::not_supported(
                    "a columnar replica count other than 0 or 1",
                ));
            }
        };
        let (database, name) = ddl::qualified(name, self.current_db.as_deref())?;
        self.ddl(|w, catalog, _| {
            let table = Self::existing_table(catalog, &database, &name)?;
            if table.view.is_some() {
                return Err(Error::NotBaseTable(format!("{database}.{name}")));
            }
            let mut next = (*table).clone();
            next.columnar_replica = wanted;
            w.put_table(&next)?;
            Ok(vec![])
        })
    }

    /// `TRUNCATE`: the table is recreated empty under a new id (so its
    /// auto-increment counter restarts), its old data deleted.
    fn truncate(&mut self, name: &ObjectName) -> Result<Output> {
        let (database, name) = ddl::qualified(name, self.current_db.as_deref())?;
        self.ddl(|w, catalog, _| {
            let table = Self::existing_table(catalog, &database, &name)?;
            w.drop_table(&table)?;
            let mut fresh = (*table).clone();
            fresh.id = w.next_id()?;
            w.put_table(&fresh)?;
            Ok(vec![])
        })
    }

    fn read_catalog(&mut self) -> Result<Arc<Catalog>> {
        self.with_txn(|s, txn| s.catalog(lock(txn).as_ref()))
    }

    fn show_tables(&mut self, full: bool, options: &ast::ShowStatementOptions) -> Result<Output> {
        let database = match options
            .show_in
            .as_ref()
            .and_then(|s| s.parent_name.as_ref())
        {
            Some(name) => name_of(name),
            None => self.current_db.clone().ok_or(Error::NoDatabaseSelected)?,
        };
        let catalog = self.read_catalog()?;
        if catalog.database(&database).is_none() {
            return Err(Error::UnknownDatabase(database));
        }
        let mut rs = ddl::show_tables(&catalog, &database, full);
        if let Some(ast::ShowStatementFilterPosition::Suffix(ast::ShowStatementFilter::Like(p))) =
            &options.filter_position
        {
            rs.rows
                .retain(|r| matches!(&r[0], Value::Str(n) if eval::like(n, p, true)));
        }
        Ok(Output::Rows(rs))
    }

    pub(crate) fn table_named(&mut self, name: &ObjectName) -> Result<Arc<TableInfo>> {
        let (database, table) = ddl::qualified(name, self.current_db.as_deref())?;
        let catalog = self.read_catalog()?;
        Self::existing_relation(&catalog, &database, &table)
    }

    fn describe(&mut self, name: &ObjectName, full: bool) -> Result<Output> {
        let table = self.table_named(name)?;
        if let Some(view) = &table.view {
            // A view's columns are its query's, described in the view's
            // database (where its names resolve), named as the view says.
            let (database, _) = ddl::qualified(name, self.current_db.as_deref())?;
            let Statement::Query(q) = crate::session::parse_one(&view.sql)? else {
                return Err(Error::Internal("a view that is not a query".into()));
            };
            let current = self.current_db.replace(database);
            let described = self.describe_query(&view.sql, &q, 0);
            self.current_db = current;
            let mut columns = described?;
            for (c, name) in columns.iter_mut().zip(&view.columns) {
                c.name.clone_from(name);
            }
            return Ok(Output::Rows(ddl::describe_columns(&columns, full)));
        }
        Ok(Output::Rows(ddl::describe(&table, full)))
    }

    /// `SHOW CREATE DATABASE db`.
    pub(crate) fn show_create_database(&mut self, name: &str) -> Result<Output> {
        let exists = self.with_txn(|s, txn| {
            let catalog = s.catalog(lock(txn).as_ref())?;
            Ok(catalog
                .databases()
                .find(|d| d.name.eq_ignore_ascii_case(name))
                .map(|d| d.name.clone()))
        })?;
        let Some(database) = exists else {
            return Err(Error::UnknownDatabase(name.to_string()));
        };
        let text = |name: &str| Column::expr(name, FieldType::VarString);
        Ok(Output::Rows(ResultSet {
            columns: vec![text("Database"), text("Create Database")],
            rows: vec![vec![
                Value::Str(database.clone()),
                Value::Str(format!(
                    "CREATE DATABASE `{}` /*!40100 DEFAULT CHARACTER SET utf8mb4 COLLATE \
                     utf8mb4_bin */ /*!80016 DEFAULT ENCRYPTION='N' */",
                    database.replace('`', "``")
                )),
            ]],
        }))
    }

    /// `SHOW CREATE TABLE` (`view` false) or `SHOW CREATE VIEW`: a view
    /// answers in the view's form either way, as in MySQL.
    fn show_create_table(&mut self, name: &ObjectName, view: bool) -> Result<Output> {
        let table = self.table_named(name)?;
        let text = |name: &str| Column::expr(name, FieldType::VarString);
        if let Some(def) = &table.view {
            return Ok(Output::Rows(ResultSet {
                columns: vec![
                    text("View"),
                    text("Create View"),
                    text("character_set_client"),
                    text("collation_connection"),
                ],
                rows: vec![vec![
                    Value::Str(table.name.clone()),
                    Value::Str(ddl::show_create_view(&table.name, def)),
                    Value::Str("utf8mb4".into()),
                    Value::Str("utf8mb4_bin".into()),
                ]],
            }));
        }
        if view {
            let (database, _) = ddl::qualified(name, self.current_db.as_deref())?;
            return Err(Error::NotView(format!("{database}.{}", table.name)));
        }
        Ok(Output::Rows(ResultSet {
            columns: vec![text("Table"), text("Create Table")],
            rows: vec![vec![
                Value::Str(table.name.clone()),
                Value::Str(ddl::show_create(&table)),
            ]],
        }))
    }

    pub(crate) fn show_index(&mut self, name: &ObjectName) -> Result<Output> {
        let table = self.table_named(name)?;
        Ok(Output::Rows(ddl::show_index(&table)))
    }

    /// A `SELECT` with tables, through DataFusion.
    pub(crate) fn query(&mut self, sql: &str, q: &Query, params: &[Value]) -> Result<Output> {
        // A locking read locks the rows it selects, then reads them (at
        // their latest versions) like any query. Outside a transaction the
        // statement's own snapshot is already the latest: nothing to hold.
        let unlocked;
        let original = if q.locks.is_empty() {
            q
        } else {
            if self.txn.is_some() || !self.status().autocommit {
                self.lock_selected_rows(q, params)?;
            }
            let mut stripped = q.clone();
            stripped.locks.clear();
            unlocked = stripped;
            &unlocked
        };
        let current = self.current_db.clone();
        let routing = Arc::new(self.routing(original)?);
        let engines = self.engines()?;
        let rs = self.with_txn(|s, txn| {
            let catalog = s.catalog(lock(txn).as_ref())?;
            // The row executor's key reads need no plan (and none of the
            // rewriting below); a prepared statement keeps its plan.
            let kept = s.kept_point(catalog.version, &engines, original, params);
            if kept.is_some() {
                s.db.processes.plan_reused();
            }
            let fast = kept.or_else(|| {
                let made = crate::point::plan(
                    original,
                    params,
                    &catalog,
                    current.as_deref(),
                    Some(&routing),
                    sql,
                );
                if let Some(plan) = &made {
                    s.keep_point(catalog.version, &engines, plan);
                }
                made
            });
            if let Some(get) = fast {
                return get
                    .run(lock(txn).as_ref(), &get.database_of(&catalog))
                    .map(Output::Rows);
            }
            let source: Arc<dyn RowSource> =
                Arc::new(TxnSource(Arc::clone(txn), Arc::clone(&s.db)));
            let scope = query::Scope {
                routing: Arc::clone(&routing),
                ..query::Scope::new(source, None)
            };
            // A prepared statement runs its kept logical plan with this
            // execution's values where it can.
            if let Some((generic, kept)) = s.generic_plan(&catalog, &engines, sql, original) {
                let literals: Vec<Expr> = params.iter().map(literal).collect();
                if let Some(values) = generic.values(&literals) {
                    if kept {
                        s.db.processes.plan_reused();
                    }
                    return s.send_rows(|sink| {
                        generic.stream(catalog, scope, current.as_deref(), values, sink)
                    });
                }
            }
            let mut q = original.clone();
            bind_params(&mut q, params)?;
            s.bind_session_functions(&mut q, params)?;
            let names = query::prepare(sql, &mut q)?;
            s.send_rows(|sink| query::stream(catalog, scope, current.as_deref(), q, names, sink))
        });
        self.warnings.extend(routing.take_warnings());
        rs
    }

    /// Runs `f`, which makes a result and sends its rows to the sink it is
    /// given: the session's, if it has one (the rows stream to the client
    /// as they come), else one that keeps them.
    pub(crate) fn send_rows(
        &mut self,
        f: impl FnOnce(&mut dyn crate::value::RowSink) -> Result<u64>,
    ) -> Result<Output> {
        match self.sink.take() {
            Some(mut sink) => {
                let sent = f(sink.as_mut());
                self.sink = Some(sink);
                Ok(Output::Streamed { rows: sent? })
            }
            None => {
                let mut all = crate::value::Collect::default();
                f(&mut all)?;
                Ok(Output::Rows(all.0))
            }
        }
    }

    /// Locks the rows `SELECT … FOR UPDATE` (or `FOR SHARE`, held the same
    /// way) selects from its one table: every row its `WHERE` matches.
    fn lock_selected_rows(&mut self, q: &Query, params: &[Value]) -> Result<()> {
        let SetExpr::Select(select) = q.body.as_ref() else {
            return Err(Error::not_supported("a locking read of a set operation"));
        };
        let [from] = select.from.as_slice() else {
            return Err(Error::not_supported("a locking read of several tables"));
        };
        let TableFactor::Table { name, alias, .. } = &from.relation else {
            return Err(Error::not_supported("a locking read of a derived table"));
        };
        if !from.joins.is_empty() {
            return Err(Error::not_supported("a locking read of several tables"));
        }
        // `ORDER BY … LIMIT n` locks the n rows it reads, not every match
        // (with an OFFSET, the skipped rows are locked too).
        let order_by = match q.order_by.as_ref().map(|o| &o.kind) {
            Some(ast::OrderByKind::Expressions(list)) => list.as_slice(),
            _ => &[],
        };
        let limit = match &q.limit_clause {
            Some(ast::LimitClause::LimitOffset {
                limit: Some(limit),
                offset: None,
                limit_by,
            }) if limit_by.is_empty() => Some(limit),
            _ => None,
        };
        let clauses = Clauses {
            alias: alias.as_ref().map(|a| a.name.value.as_str()),
            selection: select.selection.as_ref(),
            order_by: if limit.is_some() { order_by } else { &[] },
            limit,
        };
        self.change_rows(name, &clauses, params, |_, txn, _, rows| {
            let keys: Vec<Vec<u8>> = rows.into_iter().map(|(k, _)| k).collect();
            lock(txn)
                .lock_for_update(&keys)
                .map_err(Error::from_storage)
        })
    }

    /// The router's rules for one query: the session's engines and the
    /// query's hints.
    fn routing(&self, q: &Query) -> Result<crate::access::Routing> {
        Ok(crate::access::Routing::new(&self.engines()?, q))
    }

    /// The session's `duet_isolation_read_engines`.
    fn engines(&self) -> Result<String> {
        let engines = self
            .vars
            .get(&self.db.globals, "duet_isolation_read_engines", None)?;
        Ok(crate::types::value_text(&engines))
    }

    /// `EXPLAIN [ANALYZE] query`: one row per plan operator.
    pub(crate) fn explain(&mut self, sql: &str, q: &Query, analyze: bool) -> Result<Output> {
        let mut prepared = q.clone();
        let _ = query::prepare(sql, &mut prepared)?;
        let current = self.current_db.clone();
        let routing = Arc::new(self.routing(&prepared)?);
        let rs = self.with_txn(|s, txn| {
            let catalog = s.catalog(lock(txn).as_ref())?;
            let fast =
                crate::point::plan(q, &[], &catalog, current.as_deref(), Some(&routing), sql);
            if let Some(get) = fast {
                let database = get.database_of(&catalog);
                let actual = if analyze {
                    Some(get.run(lock(txn).as_ref(), &database)?.rows.len())
                } else {
                    None
                };
                return Ok(crate::explain::point_get(&get, &database, actual));
            }
            let source: Arc<dyn RowSource> =
                Arc::new(TxnSource(Arc::clone(txn), Arc::clone(&s.db)));
            let scope = query::Scope {
                routing: Arc::clone(&routing),
                ..query::Scope::new(source, None)
            };
            crate::explain::explain(
                catalog,
                scope,
                current.as_deref(),
                prepared.clone(),
                analyze,
            )
        });
        self.warnings.extend(routing.take_warnings());
        Ok(Output::Rows(rs?))
    }

    /// `ANALYZE TABLE t`: exact statistics for the router, stored for every
    /// node; MySQL's one status row per table.
    pub(crate) fn analyze_table(&mut self, name: &ObjectName) -> Result<Output> {
        let table = self.table_named(name)?;
        let (database, _) = ddl::qualified(name, self.current_db.as_deref())?;
        self.with_txn(|s, txn| {
            let mut guard = lock(txn);
            s.db.stats.analyze(guard.as_mut(), &table)?;
            Ok(())
        })?;
        Ok(Output::Rows(ResultSet {
            columns: ["Table", "Op", "Msg_type", "Msg_text"]
                .into_iter()
                .map(|c| Column::expr(c, FieldType::VarString))
                .collect(),
            rows: vec![vec![
                Value::Str(format!("{database}.{}", table.name)),
                Value::Str("analyze".into()),
                Value::Str("status".into()),
                Value::Str("OK".into()),
            ]],
        }))
    }

    /// The result columns of a query, without running it (for `PREPARE`).
    pub(crate) fn describe_query(
        &mut self,
        sql: &str,
        q: &Query,
        params: usize,
    ) -> Result<Vec<Column>> {
        let placeholders = vec![Value::Int(0); params];
        let mut prepared = q.clone();
        // The session's functions are values, as at each execution.
        self.bind_session_functions(&mut prepared, &placeholders)?;
        let names = query::prepare(sql, &mut prepared)?;
        let current = self.current_db.clone();
        self.with_txn(|s, txn| {
            let catalog = s.catalog(lock(txn).as_ref())?;
            let fast =
                crate::point::plan(q, &placeholders, &catalog, current.as_deref(), None, sql);
            if let Some(get) = fast {
                return Ok(get.columns(&get.database_of(&catalog)));
            }
            query::describe(catalog, current.as_deref(), prepared.clone(), &names)
        })
    }

    fn resolve_target(&self, catalog: &Catalog, name: &ObjectName) -> Result<Target> {
        let (database, table) = ddl::qualified(name, self.current_db.as_deref())?;
        let info = Self::existing_table(catalog, &database, &table)?;
        Ok(Target {
            sql_name: format!(
                "`{}`.`{}`",
                database.replace('`', "``"),
                table.replace('`', "``")
            ),
            table: info,
        })
    }

    fn insert(&mut self, insert: &ast::Insert, params: &[Value]) -> Result<Output> {
        let TableObject::TableName(name) = &insert.table else {
            return Err(Error::not_supported("INSERT INTO a table function"));
        };
        let name = name.clone();
        let insert = insert.clone();
        let params = params.to_vec();
        let (status, warnings) = self.with_txn(|s, txn| {
            let catalog = s.catalog(lock(txn).as_ref())?;
            let target = s.resolve_target(&catalog, &name)?;
            let rows = s.insert_source(&insert, &target, &params, txn, &catalog)?;
            s.write_rows(&insert, &target, rows, &params, txn)
        })?;
        self.warnings.extend(warnings);
        if status.last_insert_id > 0 {
            self.last_insert_id = status.last_insert_id;
        }
        Ok(Output::Ok(status))
    }

    /// The rows an `INSERT` supplies, as values for the named columns
    /// (offsets into the table), one `Vec` per row.
    fn insert_source(
        &self,
        insert: &ast::Insert,
        target: &Target,
        params: &[Value],
        txn: &SharedTxn,
        catalog: &Arc<Catalog>,
    ) -> Result<(Vec<usize>, Vec<Vec<Value>>)> {
        let table = &target.table;
        let columns: Vec<usize> = if insert.columns.is_empty() {
            (0..table.columns.len()).collect()
        } else {
            insert
                .columns
                .iter()
                .map(|c| {
                    let n = name_of(c);
                    table.column_offset(&n).ok_or(Error::UnknownColumnIn {
                        column: n,
                        clause: "field list".into(),
                    })
                })
                .collect::<Result<_>>()?
        };
        if !insert.assignments.is_empty() {
            // INSERT … SET a = 1, b = 2
            let mut cols = Vec::new();
            let mut row = Vec::new();
            for a in &insert.assignments {
                let c = assignment_column(table, a)?;
                cols.push(c);
                row.push(if is_default_keyword(&a.value) {
                    column_default(&table.columns[c])?
                } else {
                    eval::eval(&self.ctx(params), &a.value)?
                });
            }
            return Ok((cols, vec![row]));
        }
        let Some(source) = &insert.source else {
            return Err(Error::not_supported("INSERT without VALUES"));
        };
        let rows = match source.body.as_ref() {
            SetExpr::Values(values) => {
                let env = self.ctx(params);
                let default = |j: usize| column_default(&table.columns[columns[j]]);
                values
                    .rows
                    .iter()
                    .enumerate()
                    .map(|(i, row)| {
                        if row.len() != columns.len() {
                            return Err(Error::ColumnCountMismatch(i + 1));
                        }
                        let direct: Result<Vec<Value>> = row
                            .iter()
                            .enumerate()
                            .map(|(j, e)| {
                                if is_default_keyword(e) {
                                    default(j)
                                } else {
                                    eval::eval(&env, e)
                                }
                            })
                            .collect();
                        match direct {
                            // What the session's evaluator lacks, the
                            // query engine has: the row as a SELECT.
                            Err(Error::UnknownFunction(_) | Error::NotSupported { .. }) => {
                                let exprs = row
                                    .iter()
                                    .map(|e| {
                                        if is_default_keyword(e) {
                                            Expr::value(ast::Value::Null)
                                        } else {
                                            e.clone()
                                        }
                                    })
                                    .collect();
                                let mut values =
                                    self.values_by_engine(exprs, params, txn, catalog)?;
                                for (j, e) in row.iter().enumerate() {
                                    if is_default_keyword(e) {
                                        values[j] = default(j)?;
                                    }
                                }
                                Ok(values)
                            }
                            other => other,
                        }
                    })
                    .collect::<Result<Vec<Vec<Value>>>>()?
            }
            _ => {
                // INSERT … SELECT: read at the statement's snapshot first.
                let rs = self.run_query((**source).clone(), params, txn, catalog)?;
                if rs.columns.len() != columns.len() {
                    return Err(Error::ColumnCountMismatch(1));
                }
                rs.rows
            }
        };
        Ok((columns, rows))
    }

    /// One `VALUES` row evaluated by the query engine, as `SELECT` of its
    /// expressions at the statement's snapshot.
    fn values_by_engine(
        &self,
        exprs: Vec<Expr>,
        params: &[Value],
        txn: &SharedTxn,
        catalog: &Arc<Catalog>,
    ) -> Result<Vec<Value>> {
        let mut q = match crate::session::parse_one("SELECT 1")? {
            ast::Statement::Query(q) => *q,
            _ => return Err(Error::Internal("SELECT 1 is a query".into())),
        };
        if let SetExpr::Select(select) = q.body.as_mut() {
            select.projection = exprs
                .into_iter()
                .map(ast::SelectItem::UnnamedExpr)
                .collect();
        }
        self.run_query(q, params, txn, catalog)?
            .rows
            .into_iter()
            .next()
            .ok_or_else(|| Error::Internal("a VALUES row gave no row".into()))
    }

    /// Runs query `q` (its parameters bound) through the query engine at
    /// the transaction's snapshot.
    fn run_query(
        &self,
        mut q: ast::Query,
        params: &[Value],
        txn: &SharedTxn,
        catalog: &Arc<Catalog>,
    ) -> Result<crate::value::ResultSet> {
        bind_params(&mut q, params)?;
        let names = query::prepare("", &mut q)?;
        let source: Arc<dyn RowSource> = Arc::new(TxnSource(Arc::clone(txn), Arc::clone(&self.db)));
        query::run(
            Arc::clone(catalog),
            query::Scope::new(source, None),
            self.current_db.as_deref(),
            q,
            names,
        )
    }

    /// Completes, converts and writes inserted rows, with `IGNORE`,
    /// `REPLACE` and `ON DUPLICATE KEY UPDATE` semantics.
    fn write_rows(
        &self,
        insert: &ast::Insert,
        target: &Target,
        (columns, rows): (Vec<usize>, Vec<Vec<Value>>),
        params: &[Value],
        txn: &SharedTxn,
    ) -> Result<(OkStatus, Vec<Warning>)> {
        let table = &target.table;
        let odku = match &insert.on {
            Some(OnInsert::DuplicateKeyUpdate(a)) => Some(a.as_slice()),
            Some(OnInsert::OnConflict(_)) => return Err(Error::not_supported("ON CONFLICT")),
            _ => None,
        };
        let mut warnings = Vec::new();
        let (mut affected, mut duplicates, mut first_id) = (0u64, 0u64, 0u64);
        let (mut inserted, mut replaced) = (0u64, 0u64);
        let multi = rows.len() > 1;
        for values in rows {
            let (row, generated) = self.complete_row(table, &columns, values)?;
            if first_id == 0
                && let Some(id) = generated
            {
                first_id = id as u64;
            }
            let rowid = match table.handle {
                HandleKind::RowId => self.db.autoids.next(table.id)?,
                _ => 0,
            };
            let handle = table::handle_of(table, &row, rowid)?;
            let mut guard = lock(txn);
            let t = guard.as_mut();
            if (insert.replace_into || odku.is_some())
                && let Some((old_handle, old)) = table::find_conflict(t, table, &row, &handle)?
            {
                duplicates += 1;
                if insert.replace_into {
                    table::delete_row(t, table, &old, &old_handle)?;
                    affected += 1;
                    replaced += 1;
                } else if let Some(assignments) = odku {
                    let new =
                        self.apply_assignments(table, &old, assignments, params, Some(&row), txn)?;
                    if new != old {
                        let new_handle = table::handle_of(table, &new, handle_int(&old_handle))?;
                        table::update_row(t, table, &old, &old_handle, &new, &new_handle)?;
                        affected += 2;
                    }
                    continue;
                }
            }
            match table::insert_row(t, table, &row, &handle) {
                Ok(()) => {
                    affected += 1;
                    inserted += 1;
                }
                Err(e @ Error::DuplicateEntry { .. }) if insert.ignore => {
                    duplicates += 1;
                    warnings.push(Warning {
                        level: "Warning",
                        code: 1062,
                        message: e.to_string(),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        self.db.stats.changed(table.id, inserted, replaced);
        let info = if multi || duplicates > 0 {
            format!(
                "Records: {}  Duplicates: {duplicates}  Warnings: {}",
                affected.max(duplicates),
                warnings.len()
            )
        } else {
            String::new()
        };
        Ok((
            OkStatus {
                affected_rows: affected,
                last_insert_id: first_id,
                info,
            },
            warnings,
        ))
    }

    /// A full row from the supplied columns: defaults, auto-increment,
    /// conversion to column types, NOT NULL. Also the generated id, if any.
    fn complete_row(
        &self,
        table: &TableInfo,
        columns: &[usize],
        values: Vec<Value>,
    ) -> Result<(Row, Option<i64>)> {
        let mut supplied: Vec<Option<Value>> = vec![None; table.columns.len()];
        for (c, v) in columns.iter().zip(values) {
            supplied[*c] = Some(v);
        }
        let mut generated = None;
        let mut row = Vec::with_capacity(table.columns.len());
        for (i, col) in table.columns.iter().enumerate() {
            let value = match supplied[i].take() {
                Some(v) => v,
                None => column_default(col)?,
            };
            let datum = if col.auto_increment {
                let explicit = match &value {
                    Value::Null => None,
                    v => match col.ty.coerce(v, &col.name)? {
                        Datum::Int(0) | Datum::UInt(0) => None,
                        d => Some(d),
                    },
                };
                match explicit {
                    Some(d) => {
                        let n = match &d {
                            Datum::Int(i) => *i,
                            Datum::UInt(u) => *u as i64,
                            _ => 0,
                        };
                        self.db.autoids.rebase(table.id, n)?;
                        d
                    }
                    None => {
                        let id = self.db.autoids.next(table.id)?;
                        generated = Some(id);
                        col.ty.coerce(&Value::Int(id), &col.name)?
                    }
                }
            } else {
                col.ty.coerce(&value, &col.name)?
            };
            if matches!(datum, Datum::Null) && !col.nullable {
                return Err(Error::BadNull(col.name.clone()));
            }
            row.push(datum);
        }
        Ok((row, generated))
    }

    /// `old` with `assignments` applied (left to right, each seeing the
    /// previous ones); `inserted` is the row `VALUES(col)` refers to.
    fn apply_assignments(
        &self,
        table: &TableInfo,
        old: &Row,
        assignments: &[Assignment],
        params: &[Value],
        inserted: Option<&Row>,
        txn: &SharedTxn,
    ) -> Result<Row> {
        let mut new = old.clone();
        for a in assignments {
            let c = assignment_column(table, a)?;
            let value = if is_default_keyword(&a.value) {
                column_default(&table.columns[c])?
            } else {
                let named: Vec<(String, Value)> = table
                    .columns
                    .iter()
                    .zip(&new)
                    .map(|(col, d)| (col.name.to_ascii_lowercase(), datum_to_value(d)))
                    .collect();
                let inserted: Option<Vec<(String, Value)>> = inserted.map(|r| {
                    table
                        .columns
                        .iter()
                        .zip(r)
                        .map(|(col, d)| (col.name.to_ascii_lowercase(), datum_to_value(d)))
                        .collect()
                });
                let env = RowEnv {
                    session: self,
                    params,
                    row: &named,
                    inserted: inserted.as_deref(),
                };
                match eval::eval(&env, &a.value) {
                    // What the session's evaluator lacks, the query engine
                    // has: the expression over the row's values.
                    Err(Error::UnknownFunction(_) | Error::NotSupported { .. }) => {
                        let mut e = a.value.clone();
                        bind_row(&mut e, &named);
                        let catalog = Arc::new(Catalog::default());
                        self.values_by_engine(vec![e], params, txn, &catalog)?
                            .pop()
                            .unwrap_or(Value::Null)
                    }
                    other => other?,
                }
            };
            let col = &table.columns[c];
            let datum = col.ty.coerce(&value, &col.name)?;
            if matches!(datum, Datum::Null) && !col.nullable {
                return Err(Error::BadNull(col.name.clone()));
            }
            new[c] = datum;
        }
        Ok(new)
    }

    /// The row keys (and current rows) an `UPDATE`/`DELETE` touches: the
    /// `WHERE`, `ORDER BY` and `LIMIT` run through the query engine over a
    /// scan that carries each row's key.
    fn matching_rows(
        &self,
        target: &Target,
        clauses: &Clauses<'_>,
        params: &[Value],
        txn: &SharedTxn,
        catalog: &Arc<Catalog>,
    ) -> Result<Vec<(Vec<u8>, Row)>> {
        let Clauses {
            alias,
            selection,
            order_by,
            limit,
        } = *clauses;
        // A `WHERE` that names only keys reads them directly.
        if order_by.is_empty()
            && let Some(rows) = crate::point::dml_rows(
                lock(txn).as_ref(),
                &target.table,
                alias,
                selection,
                limit,
                params,
            )
        {
            return rows;
        }
        let mut sql = format!("SELECT {HANDLE_COLUMN} FROM {}", target.sql_name);
        if let Some(a) = alias {
            sql.push_str(&format!(" AS `{a}`"));
        }
        let bound = |e: &Expr| -> Result<String> {
            let mut e = e.clone();
            bind_params(&mut e, params)?;
            Ok(e.to_string())
        };
        if let Some(w) = selection {
            sql.push_str(&format!(" WHERE {}", bound(w)?));
        }
        if !order_by.is_empty() {
            let keys: Vec<String> = order_by
                .iter()
                .map(|o| {
                    let mut o = o.clone();
                    bind_params(&mut o.expr, params)?;
                    Ok(o.to_string())
                })
                .collect::<Result<_>>()?;
            sql.push_str(&format!(" ORDER BY {}", keys.join(", ")));
        }
        if let Some(l) = limit {
            sql.push_str(&format!(" LIMIT {}", bound(l)?));
        }
        let Statement::Query(mut q) = crate::session::parse_one(&sql)? else {
            return Err(Error::Internal(
                "generated query did not parse as a query".into(),
            ));
        };
        bind_params(&mut q, params)?;
        let names = query::prepare(&sql, &mut q)?;
        let source: Arc<dyn RowSource> = Arc::new(TxnSource(Arc::clone(txn), Arc::clone(&self.db)));
        let rs = query::run(
            Arc::clone(catalog),
            query::Scope::new(source, Some(target.table.id)),
            self.current_db.as_deref(),
            *q,
            names,
        )?;
        let guard = lock(txn);
        let mut out = Vec::with_capacity(rs.rows.len());
        for r in rs.rows {
            let Some(Value::Bytes(key)) = r.into_iter().next() else {
                return Err(Error::Internal("row key missing from a DML scan".into()));
            };
            if let Some(row) = table::get_row_by_key(guard.as_ref(), &target.table, &key)? {
                out.push((key, row));
            }
        }
        Ok(out)
    }

    /// Finds the rows an `UPDATE`/`DELETE` of table `name` touches and
    /// hands them to `change`, in the session's transaction.
    fn change_rows<T>(
        &mut self,
        name: &ObjectName,
        clauses: &Clauses<'_>,
        params: &[Value],
        mut change: impl FnMut(&Session, &SharedTxn, &TableInfo, Vec<(Vec<u8>, Row)>) -> Result<T>,
    ) -> Result<T> {
        self.with_txn(|s, txn| {
            let catalog = s.catalog(lock(txn).as_ref())?;
            let target = s.resolve_target(&catalog, name)?;
            let rows = s.matching_rows(&target, clauses, params, txn, &catalog)?;
            change(s, txn, &target.table, rows)
        })
    }

    fn update(&mut self, sql: &str, update: &ast::Update, params: &[Value]) -> Result<Output> {
        let _ = sql;
        if !update.table.joins.is_empty() || update.from.is_some() {
            return Err(Error::not_supported("UPDATE of several tables"));
        }
        let TableFactor::Table { name, alias, .. } = &update.table.relation else {
            return Err(Error::not_supported("UPDATE of a derived table"));
        };
        let alias = alias.as_ref().map(|a| a.name.value.as_str());
        let clauses = Clauses {
            alias,
            selection: update.selection.as_ref(),
            order_by: &update.order_by,
            limit: update.limit.as_ref(),
        };
        let (matched, changed) =
            self.change_rows(name, &clauses, params, |s, txn, table, rows| {
                let mut changed = 0u64;
                let matched = rows.len() as u64;
                for (key, old) in rows {
                    let new =
                        s.apply_assignments(table, &old, &update.assignments, params, None, txn)?;
                    if new == old {
                        continue;
                    }
                    let old_handle = table::decode_handle(table, &key)?;
                    let new_handle = table::handle_of(table, &new, handle_int(&old_handle))?;
                    let mut guard = lock(txn);
                    table::update_row(guard.as_mut(), table, &old, &old_handle, &new, &new_handle)?;
                    changed += 1;
                }
                Ok((matched, changed))
            })?;
        Ok(Output::Ok(OkStatus {
            affected_rows: changed,
            last_insert_id: 0,
            info: format!("Rows matched: {matched}  Changed: {changed}  Warnings: 0"),
        }))
    }

    fn delete(&mut self, delete: &ast::Delete, params: &[Value]) -> Result<Output> {
        let tables = match &delete.from {
            FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
        };
        if tables.len() != 1
            || !tables[0].joins.is_empty()
            || !delete.tables.is_empty()
            || delete.using.is_some()
        {
            return Err(Error::not_supported("DELETE from several tables"));
        }
        let TableFactor::Table { name, alias, .. } = &tables[0].relation else {
            return Err(Error::not_supported("DELETE from a derived table"));
        };
        let alias = alias.as_ref().map(|a| a.name.value.as_str());
        let clauses = Clauses {
            alias,
            selection: delete.selection.as_ref(),
            order_by: &delete.order_by,
            limit: delete.limit.as_ref(),
        };
        let deleted = self.change_rows(name, &clauses, params, |s, txn, table, rows| {
            let mut guard = lock(txn);
            for (key, row) in &rows {
                let handle = table::decode_handle(table, key)?;
                table::delete_row(guard.as_mut(), table, row, &handle)?;
            }
            s.db.stats.changed(table.id, 0, rows.len() as u64);
            Ok(rows.len() as u64)
        })?;
        Ok(Output::Ok(OkStatus {
            affected_rows: deleted,
            ..OkStatus::default()
        }))
    }
}

/// The note an `IF [NOT] EXISTS` statement leaves instead of `e`.
fn note(e: Error) -> Warning {
    Warning {
        level: "Note",
        code: e.code(),
        message: e.to_string(),
    }
}

/// The integer row id of a handle (0 for a clustered key, which never needs it).
fn handle_int(h: &duet_storage::codec::key::Handle) -> i64 {
    match h {
        duet_storage::codec::key::Handle::Int(i) => *i,
        duet_storage::codec::key::Handle::Common(_) => 0,
    }
}

/// The column an assignment sets.
/// Whether `e` is the keyword `DEFAULT` (a value in `VALUES` or `SET`).
fn is_default_keyword(e: &Expr) -> bool {
    matches!(e, Expr::Identifier(id)
        if id.value.eq_ignore_ascii_case("DEFAULT") && id.quote_style.is_none())
}

/// The value an omitted column, or `DEFAULT`, gives `col`: its default,
/// NULL for a nullable column without one (or an auto-increment column,
/// which NULL makes generate), else error 1364.
fn column_default(col: &crate::catalog::ColumnInfo) -> Result<Value> {
    Ok(match &col.default {
        Some(DefaultValue::Value(v)) => v.to_value(),
        Some(DefaultValue::CurrentTimestamp) => Value::DateTime(crate::session::now()),
        None if col.nullable || col.auto_increment => Value::Null,
        None => return Err(Error::NoDefault(col.name.clone())),
    })
}

fn assignment_column(table: &TableInfo, a: &Assignment) -> Result<usize> {
    let AssignmentTarget::ColumnName(name) = &a.target else {
        return Err(Error::not_supported("assigning a tuple"));
    };
    let n = name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.clone())
        .unwrap_or_default();
    table.column_offset(&n).ok_or(Error::UnknownColumnIn {
        column: n,
        clause: "field list".into(),
    })
}

/// The unquoted last part of a name.
pub(crate) fn name_of(name: &ObjectName) -> String {
    name.0
        .last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.clone())
        .unwrap_or_else(|| name.to_string())
}

/// Replaces parameter markers (`$1`, …) with the values bound to them.
fn bind_params<N: VisitMut>(q: &mut N, params: &[Value]) -> Result<()> {
    struct Binder<'a>(&'a [Value], Option<Error>);
    impl VisitorMut for Binder<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Expr::Value(v) = expr
                && let ast::Value::Placeholder(p) = &v.value
            {
                let n: Option<usize> = p.strip_prefix('$').and_then(|n| n.parse().ok());
                match n.and_then(|n| self.0.get(n - 1)) {
                    Some(value) => *expr = literal(value),
                    None => {
                        self.1 = Some(Error::WrongArguments("mysqld_stmt_execute"));
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut b = Binder(params, None);
    let _ = q.visit(&mut b);
    b.1.map_or(Ok(()), Err)
}

/// Functions of the session rather than of the data: the query engine
/// sees them as the literals they stand for in this statement.
pub(crate) const SESSION_FUNCTIONS: &[&str] = &[
    "DATABASE",
    "SCHEMA",
    "USER",
    "SESSION_USER",
    "SYSTEM_USER",
    "CURRENT_USER",
    "CONNECTION_ID",
    "LAST_INSERT_ID",
    "ROW_COUNT",
    "FOUND_ROWS",
    "VERSION",
];

impl Session {
    /// Replaces each call of a [`SESSION_FUNCTIONS`] function with no
    /// argument by its value.
    fn bind_session_functions(&self, q: &mut Query, params: &[Value]) -> Result<()> {
        struct Binder<'a> {
            env: &'a dyn eval::Env,
            error: Option<Error>,
        }
        impl VisitorMut for Binder<'_> {
            type Break = ();
            fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
                let Expr::Function(f) = &*expr else {
                    return ControlFlow::Continue(());
                };
                let no_args = match &f.args {
                    ast::FunctionArguments::None => true,
                    ast::FunctionArguments::List(l) => l.args.is_empty(),
                    ast::FunctionArguments::Subquery(_) => false,
                };
                let name = f.name.to_string().to_ascii_uppercase();
                if no_args && SESSION_FUNCTIONS.contains(&name.as_str()) {
                    match eval::eval(self.env, expr) {
                        Ok(v) => *expr = literal(&v),
                        Err(e) => {
                            self.error = Some(e);
                            return ControlFlow::Break(());
                        }
                    }
                }
                ControlFlow::Continue(())
            }
        }
        let env = self.ctx(params);
        let mut b = Binder {
            env: &env,
            error: None,
        };
        let _ = q.visit(&mut b);
        b.error.map_or(Ok(()), Err)
    }
}

/// Replaces each column of the row (`name`, or `t.name`) in `e` by the
/// literal of its value.
fn bind_row(e: &mut Expr, row: &[(String, Value)]) {
    struct Binder<'a>(&'a [(String, Value)]);
    impl VisitorMut for Binder<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let name = match &*expr {
                Expr::Identifier(id) => Some(&id.value),
                Expr::CompoundIdentifier(parts) => parts.last().map(|p| &p.value),
                _ => None,
            };
            if let Some(name) = name
                && let Some((_, v)) = self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                *expr = literal(v);
            }
            ControlFlow::Continue(())
        }
    }
    let _ = e.visit(&mut Binder(row));
}

/// A client value as a SQL literal.
pub(crate) fn literal(v: &Value) -> Expr {
    let value = match v {
        Value::Null => ast::Value::Null,
        Value::Int(_) | Value::UInt(_) | Value::Decimal(_) => {
            ast::Value::Number(value_text(v), false)
        }
        Value::Double(d) if d.is_finite() => ast::Value::Number(format!("{d:e}"), false),
        Value::Bytes(b) => match std::str::from_utf8(b) {
            Ok(s) => ast::Value::SingleQuotedString(s.to_string()),
            Err(_) => ast::Value::HexStringLiteral(b.iter().map(|x| format!("{x:02X}")).collect()),
        },
        other => ast::Value::SingleQuotedString(value_text(other)),
    };
    Expr::value(value)
}

/// Expressions over one row (and, for `ON DUPLICATE KEY UPDATE`, the row
/// that was to be inserted, as `VALUES(col)`).
struct RowEnv<'a> {
    session: &'a Session,
    params: &'a [Value],
    row: &'a [(String, Value)],
    inserted: Option<&'a [(String, Value)]>,
}

impl eval::Env for RowEnv<'_> {
    fn system_var(&self, name: &str, scope: Option<crate::vars::VarScope>) -> Result<Value> {
        self.session.ctx(self.params).system_var(name, scope)
    }

    fn user_var(&self, name: &str) -> Value {
        self.session.ctx(self.params).user_var(name)
    }

    fn param(&self, n: usize) -> Result<Value> {
        self.params
            .get(n)
            .cloned()
            .ok_or(Error::WrongArguments("mysqld_stmt_execute"))
    }

    fn session_fn(&self, name: &str) -> Option<Value> {
        self.session.ctx(self.params).session_fn(name)
    }

    fn column(&self, name: &str) -> Result<Value> {
        let name = name.rsplit('.').next().unwrap_or(name);
        self.row
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .ok_or_else(|| Error::UnknownColumnIn {
                column: name.to_string(),
                clause: "field list".into(),
            })
    }

    fn inserted(&self, name: &str) -> Option<Value> {
        self.inserted?
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
}
