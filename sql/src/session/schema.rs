//! The session's schema statements: databases, tables, views and indexes
//! created, changed and dropped through [`crate::ddl`], each in a
//! transaction of its own; and the statements that read the catalog.

use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{self, ObjectName, Query, Statement};

use crate::catalog::ViewDef;
use crate::catalog::{Catalog, HandleKind, SchemaWriter, TableInfo, describe};
use crate::ddl;
use crate::error::{Error, Result, Warning};
use crate::kv::lock;
use crate::parse;
use crate::rules::like::like;
use crate::session;
use crate::session::Session;
use crate::session::exec::{name_of, note};
use crate::value::{Column, FieldType, OkStatus, Output, ResultSet, Value};

impl Session {
    /// Runs a schema change in its own transaction after committing any
    /// open one (MySQL's implicit commit), retrying on conflicts.
    pub(super) fn ddl(
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

    pub(super) fn create_database(&mut self, name: &str, if_not_exists: bool) -> Result<Output> {
        if session::is_builtin_database(name) {
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

    pub(super) fn drop_database(&mut self, name: &str, if_exists: bool) -> Result<Output> {
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

    pub(super) fn create_table(&mut self, create: &ast::CreateTable) -> Result<Output> {
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
    pub(super) fn create_table_as(
        &mut self,
        create: &ast::CreateTable,
        query: &Query,
    ) -> Result<Output> {
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
                    describe::result_column_type(c),
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
        let Statement::CreateTable(definition) = parse::parse_one(&ddl_sql)? else {
            return Err(Error::Internal("CREATE TABLE did not parse as one".into()));
        };
        self.create_table(&definition)?;
        // The INSERT takes the parsed query itself: printed back as text, a
        // string literal would lose its escapes.
        let insert_sql = format!("INSERT INTO {table} SELECT 1");
        let filled = parse::parse_one(&insert_sql)
            .and_then(|mut insert| {
                if let Statement::Insert(i) = &mut insert {
                    i.source = Some(Box::new(query.clone()));
                }
                self.run(&insert_sql, &insert, &[])
            })
            .and_then(|out| self.commit().map(|()| out));
        if filled.is_err() {
            let _ = self.rollback();
            let _ = parse::parse_one(&format!("DROP TABLE {table}"))
                .and_then(|drop| self.run("DROP TABLE", &drop, &[]));
        }
        filled
    }

    /// `DROP TABLE` (`views` false) or `DROP VIEW` (true): each name must be
    /// of that kind.
    pub(super) fn drop_tables(
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
    pub(super) fn existing_table(
        catalog: &Catalog,
        database: &str,
        name: &str,
    ) -> Result<Arc<TableInfo>> {
        let table = Self::existing_relation(catalog, database, name)?;
        if table.view.is_some() {
            return Err(Error::NotBaseTable(format!("{database}.{}", table.name)));
        }
        Ok(table)
    }

    /// The table or view `database.name`.
    pub(super) fn existing_relation(
        catalog: &Catalog,
        database: &str,
        name: &str,
    ) -> Result<Arc<TableInfo>> {
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
    pub(super) fn create_view(&mut self, sql: &str, view: &ast::CreateView) -> Result<Output> {
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
        let definition = ViewDef {
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
                columnar_count: None,
                altering: None,
                collation: Default::default(),
            })?;
            Ok(vec![])
        })
    }

    pub(super) fn create_index(&mut self, ci: &ast::CreateIndex) -> Result<Output> {
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
    pub(super) fn change_table(
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

    pub(super) fn drop_index(&mut self, table: &ObjectName, index: &str) -> Result<Output> {
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
    pub(super) fn drop_index_by_name(&mut self, index: &str) -> Result<Output> {
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

    pub(super) fn alter_table(
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
            ddl::alter::alter_table(w, table, operations)
        })
    }

    /// `ALTER TABLE t SET COLUMNAR REPLICA n`: how many columnar copies of
    /// each of the table's regions the cluster keeps (the placement driver
    /// moves learners to match); 0 removes the table's columnar replica, a
    /// first copy is back-filled from the row store, then follows the log.
    /// `n` may not exceed the stores that are up.
    pub(crate) fn set_columnar_replica(
        &mut self,
        name: &ObjectName,
        count: Option<u64>,
    ) -> Result<Output> {
        const WRONG: &str = "SET COLUMNAR REPLICA: the count must be a number no larger than the \
                             number of stores that are up";
        let count = count.ok_or(Error::WrongArguments(WRONG))?;
        if self.stores_up().is_some_and(|up| count > up) {
            return Err(Error::WrongArguments(WRONG));
        }
        let (database, name) = ddl::qualified(name, self.current_db.as_deref())?;
        self.ddl(|w, catalog, _| {
            let table = Self::existing_table(catalog, &database, &name)?;
            if table.view.is_some() {
                return Err(Error::NotBaseTable(format!("{database}.{name}")));
            }
            let mut next = (*table).clone();
            next.columnar_replica = count > 0;
            next.columnar_count = Some(count);
            w.put_table(&next)?;
            Ok(vec![])
        })
    }

    /// The stores of the cluster that are up (1 for a node alone); `None`
    /// if the cluster cannot tell now.
    fn stores_up(&self) -> Option<u64> {
        let Some(cluster) = &self.db.cluster else {
            return Some(1);
        };
        let report = cluster.report().ok()?;
        let stores = report["stores"].as_array()?;
        Some(stores.iter().filter(|s| s["state"] == "up").count() as u64)
    }

    /// `TRUNCATE`: the table is recreated empty under a new id (so its
    /// auto-increment counter restarts), its old data deleted.
    pub(super) fn truncate(&mut self, name: &ObjectName) -> Result<Output> {
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

    pub(super) fn read_catalog(&mut self) -> Result<Arc<Catalog>> {
        self.with_txn(|s, txn| s.catalog(lock(txn).as_ref()))
    }

    pub(super) fn show_tables(
        &mut self,
        full: bool,
        options: &ast::ShowStatementOptions,
    ) -> Result<Output> {
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
        let mut rs = describe::show_tables(&catalog, &database, full);
        if let Some(ast::ShowStatementFilterPosition::Suffix(ast::ShowStatementFilter::Like(p))) =
            &options.filter_position
        {
            rs.rows
                .retain(|r| matches!(&r[0], Value::Str(n) if like(n, p, true)));
        }
        Ok(Output::Rows(rs))
    }

    pub(crate) fn table_named(&mut self, name: &ObjectName) -> Result<Arc<TableInfo>> {
        let (database, table) = ddl::qualified(name, self.current_db.as_deref())?;
        let catalog = self.read_catalog()?;
        Self::existing_relation(&catalog, &database, &table)
    }

    pub(super) fn describe(&mut self, name: &ObjectName, full: bool) -> Result<Output> {
        let table = self.table_named(name)?;
        if let Some(view) = &table.view {
            // A view's columns are its query's, described in the view's
            // database (where its names resolve), named as the view says.
            let (database, _) = ddl::qualified(name, self.current_db.as_deref())?;
            let Statement::Query(q) = parse::parse_one(&view.sql)? else {
                return Err(Error::Internal("a view that is not a query".into()));
            };
            let current = self.current_db.replace(database);
            let described = self.describe_query(&view.sql, &q, 0);
            self.current_db = current;
            let mut columns = described?;
            for (c, name) in columns.iter_mut().zip(&view.columns) {
                c.name.clone_from(name);
            }
            return Ok(Output::Rows(describe::describe_columns(&columns, full)));
        }
        Ok(Output::Rows(describe::describe(&table, full)))
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
    pub(super) fn show_create_table(&mut self, name: &ObjectName, view: bool) -> Result<Output> {
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
                    Value::Str(describe::show_create_view(&table.name, def)),
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
                Value::Str(describe::show_create(&table)),
            ]],
        }))
    }

    pub(crate) fn show_index(&mut self, name: &ObjectName) -> Result<Output> {
        let table = self.table_named(name)?;
        Ok(Output::Rows(describe::show_index(&table)))
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
}
