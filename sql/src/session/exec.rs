//! Statements that touch tables: transactions (autocommit, `BEGIN` …
//! `COMMIT`, statement atomicity inside a transaction, automatic retry of
//! an autocommit statement that lost a write conflict), DDL, DML and
//! queries. Reads run at the transaction's start timestamp; writes are
//! buffered in it and committed with two-phase commit through Raft.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{
    self, Assignment, AssignmentTarget, Expr, FromTable, ObjectName, ObjectType, OnInsert, SetExpr,
    Statement, TableFactor, TableObject, VisitMut, VisitorMut,
};
use duet_storage::codec::Datum;

use crate::catalog::ColumnInfo;
use crate::catalog::{Catalog, DefaultValue, HandleKind, TableInfo};
use crate::ddl;
use crate::error::{Error, Result, Warning};
use crate::eval::{self, SessionFn};
use crate::kv::{SharedTxn, lock};
use crate::parse;
use crate::plan::rewrite::prepare;
use crate::plan::run;
use crate::plan::scope::{HANDLE_COLUMN, Scope};
use crate::point;
use crate::rules::time;
use crate::session::Session;
use crate::session::txn::TxnSource;
use crate::table::source::RowSource;
use crate::table::{self, Row};
use crate::types::{datum_to_value, value_text};
use crate::value::ResultSet;
use crate::value::{OkStatus, Output, Value};
use crate::vars::VarScope;

/// The clauses of an `UPDATE` or `DELETE` that choose its rows.
#[derive(Clone, Copy)]
pub(super) struct Clauses<'a> {
    pub(super) alias: Option<&'a str>,
    pub(super) selection: Option<&'a Expr>,
    pub(super) order_by: &'a [ast::OrderByExpr],
    pub(super) limit: Option<&'a Expr>,
}

/// The table a DML statement names, resolved.
pub(super) struct Target {
    table: Arc<TableInfo>,
    /// The name to use in generated SQL (`db`.`t`).
    sql_name: String,
}

impl Session {
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
                    parse::statement_kind(&other.to_string())
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

    pub(super) fn resolve_target(&self, catalog: &Catalog, name: &ObjectName) -> Result<Target> {
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

    pub(super) fn insert(&mut self, insert: &ast::Insert, params: &[Value]) -> Result<Output> {
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
    pub(super) fn insert_source(
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
    pub(super) fn values_by_engine(
        &self,
        exprs: Vec<Expr>,
        params: &[Value],
        txn: &SharedTxn,
        catalog: &Arc<Catalog>,
    ) -> Result<Vec<Value>> {
        let mut q = match parse::parse_one("SELECT 1")? {
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
    pub(super) fn run_query(
        &self,
        mut q: ast::Query,
        params: &[Value],
        txn: &SharedTxn,
        catalog: &Arc<Catalog>,
    ) -> Result<ResultSet> {
        bind_params(&mut q, params)?;
        let names = prepare("", &mut q)?;
        let source: Arc<dyn RowSource> = Arc::new(TxnSource(Arc::clone(txn), Arc::clone(&self.db)));
        run::run(
            Arc::clone(catalog),
            Scope::new(source, None),
            self.current_db.as_deref(),
            q,
            names,
        )
    }

    /// Completes, converts and writes inserted rows, with `IGNORE`,
    /// `REPLACE` and `ON DUPLICATE KEY UPDATE` semantics.
    pub(super) fn write_rows(
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
        let mut prepared = Vec::with_capacity(rows.len());
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
            prepared.push((row, handle));
        }
        // The statement's locks in one round, not one per row.
        let keyed = prepared.iter().map(|(r, h)| (r, h));
        table::lock_for_insert(lock(txn).as_mut(), table, keyed)?;
        for (row, handle) in prepared {
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
    pub(super) fn complete_row(
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
    pub(super) fn apply_assignments(
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
    pub(super) fn matching_rows(
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
            && let Some(rows) = point::dml_rows(
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
        let Statement::Query(mut q) = parse::parse_one(&sql)? else {
            return Err(Error::Internal(
                "generated query did not parse as a query".into(),
            ));
        };
        bind_params(&mut q, params)?;
        let names = prepare(&sql, &mut q)?;
        let source: Arc<dyn RowSource> = Arc::new(TxnSource(Arc::clone(txn), Arc::clone(&self.db)));
        let rs = run::run(
            Arc::clone(catalog),
            Scope::new(source, Some(target.table.id)),
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
    /// hands them to `change`, in the session's transaction. In a
    /// pessimistic transaction, or when `lock` asks (a locking read), the
    /// rows are locked first and `change` sees their latest committed
    /// versions.
    pub(super) fn change_rows<T>(
        &mut self,
        name: &ObjectName,
        clauses: &Clauses<'_>,
        params: &[Value],
        lock_rows: bool,
        mut change: impl FnMut(&Session, &SharedTxn, &TableInfo, Vec<(Vec<u8>, Row)>) -> Result<T>,
    ) -> Result<T> {
        self.with_txn(|s, txn| {
            let catalog = s.catalog(lock(txn).as_ref())?;
            let target = s.resolve_target(&catalog, name)?;
            let mut rows = s.matching_rows(&target, clauses, params, txn, &catalog)?;
            if !(lock_rows || lock(txn).is_pessimistic()) {
                return change(s, txn, &target.table, rows);
            }
            if s.lock_missing_keys(&target, clauses, params, txn, &rows)? {
                rows = s.matching_rows(&target, clauses, params, txn, &catalog)?;
            }
            rows = s.lock_matching(&target, clauses, params, txn, &catalog, rows)?;
            let keys: Vec<Vec<u8>> = rows.iter().map(|(k, _)| k.clone()).collect();
            lock(txn).build_on_locked(&keys);
            let outcome = change(s, txn, &target.table, rows);
            lock(txn).build_on_locked(&[]);
            outcome
        })
    }

    /// Locks the keys the statement's `WHERE` names one by one whose rows
    /// it did not find (see [`point::named_keys`]), so that nobody inserts
    /// them under it; `true` if it locked any (its rows are then read
    /// again, through the locks).
    fn lock_missing_keys(
        &self,
        target: &Target,
        clauses: &Clauses<'_>,
        params: &[Value],
        txn: &SharedTxn,
        rows: &[(Vec<u8>, Row)],
    ) -> Result<bool> {
        let Some(keys) = point::named_keys(&target.table, clauses.alias, clauses.selection, params)
        else {
            return Ok(false);
        };
        let missing: Vec<Vec<u8>> = (keys.into_iter())
            .filter(|k| !rows.iter().any(|(found, _)| found == k))
            .collect();
        if missing.is_empty() {
            return Ok(false);
        }
        let wait = self.lock_wait_timeout()?;
        let mut guard = lock(txn);
        guard.set_lock_wait(wait);
        guard
            .lock_for_update(&missing)
            .map_err(Error::from_storage)?;
        Ok(true)
    }

    /// Locks `rows` (as `SELECT … FOR UPDATE` does), then finds the
    /// statement's rows again: a locked row reads as its latest committed
    /// version, so the statement changes what it locked, and one that no
    /// longer matches drops out. A row that newly matches is locked in the
    /// next round (a few at most; past them its write is checked at commit).
    fn lock_matching(
        &mut self,
        target: &Target,
        clauses: &Clauses<'_>,
        params: &[Value],
        txn: &SharedTxn,
        catalog: &Arc<Catalog>,
        mut rows: Vec<(Vec<u8>, Row)>,
    ) -> Result<Vec<(Vec<u8>, Row)>> {
        const ROUNDS: usize = 3;
        let wait = self.lock_wait_timeout()?;
        lock(txn).set_lock_wait(wait);
        let mut locked: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
        for _ in 0..ROUNDS {
            let new: Vec<Vec<u8>> = (rows.iter())
                .map(|(k, _)| k)
                .filter(|k| !locked.contains(*k))
                .cloned()
                .collect();
            if new.is_empty() {
                break;
            }
            lock(txn)
                .lock_for_update(&new)
                .map_err(Error::from_storage)?;
            locked.extend(new);
            rows = self.matching_rows(target, clauses, params, txn, catalog)?;
        }
        Ok(rows)
    }

    pub(super) fn update(
        &mut self,
        sql: &str,
        update: &ast::Update,
        params: &[Value],
    ) -> Result<Output> {
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
            self.change_rows(name, &clauses, params, false, |s, txn, table, rows| {
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

    pub(super) fn delete(&mut self, delete: &ast::Delete, params: &[Value]) -> Result<Output> {
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
        let deleted = self.change_rows(name, &clauses, params, false, |s, txn, table, rows| {
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
pub(super) fn note(e: Error) -> Warning {
    Warning {
        level: "Note",
        code: e.code(),
        message: e.to_string(),
    }
}

/// The integer row id of a handle (0 for a clustered key, which never needs it).
pub(super) fn handle_int(h: &duet_storage::codec::key::Handle) -> i64 {
    match h {
        duet_storage::codec::key::Handle::Int(i) => *i,
        duet_storage::codec::key::Handle::Common(_) => 0,
    }
}

/// The column an assignment sets.
/// Whether `e` is the keyword `DEFAULT` (a value in `VALUES` or `SET`).
pub(super) fn is_default_keyword(e: &Expr) -> bool {
    matches!(e, Expr::Identifier(id)
        if id.value.eq_ignore_ascii_case("DEFAULT") && id.quote_style.is_none())
}

/// The value an omitted column, or `DEFAULT`, gives `col`: its default,
/// NULL for a nullable column without one (or an auto-increment column,
/// which NULL makes generate), else error 1364.
pub(super) fn column_default(col: &ColumnInfo) -> Result<Value> {
    Ok(match &col.default {
        Some(DefaultValue::Value(v)) => v.to_value(),
        Some(DefaultValue::CurrentTimestamp) => Value::DateTime(time::now()),
        None if col.nullable || col.auto_increment => Value::Null,
        None => return Err(Error::NoDefault(col.name.clone())),
    })
}

pub(super) fn assignment_column(table: &TableInfo, a: &Assignment) -> Result<usize> {
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

/// Replaces each column of the row (`name`, or `t.name`) in `e` by the
/// literal of its value.
pub(super) fn bind_row(e: &mut Expr, row: &[(String, Value)]) {
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
pub(super) struct RowEnv<'a> {
    session: &'a Session,
    params: &'a [Value],
    row: &'a [(String, Value)],
    inserted: Option<&'a [(String, Value)]>,
}

impl eval::Env for RowEnv<'_> {
    fn system_var(&self, name: &str, scope: Option<VarScope>) -> Result<Value> {
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

    fn session_fn(&self, f: SessionFn) -> Option<Value> {
        self.session.ctx(self.params).session_fn(f)
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

/// Replaces parameter markers (`$1`, …) with the values bound to them.
pub(super) fn bind_params<N: VisitMut>(q: &mut N, params: &[Value]) -> Result<()> {
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
