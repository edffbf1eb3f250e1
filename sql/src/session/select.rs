//! The session's queries: `SELECT` through the query engines (with
//! `FOR UPDATE` locks and parameters bound), `EXPLAIN`, and the
//! description of a prepared query's result.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{
    self, Expr, Query, SetExpr, TableFactor, VisitMut, VisitorMut,
};

use crate::error::{Error, Result};
use crate::eval::{self, SessionFn};
use crate::kv::lock;
use crate::plan::rewrite::prepare;
use crate::plan::scope::Scope;
use crate::plan::{explain, run};
use crate::point;
use crate::router::Routing;
use crate::session::Session;
use crate::session::exec::{Clauses, bind_params, literal};
use crate::session::txn::TxnSource;
use crate::table::source::RowSource;
use crate::types;
use crate::value::Collect;
use crate::value::RowSink;
use crate::value::{Column, Output, Value};

impl Session {
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
                let made = point::plan(
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
            let scope = Scope {
                routing: Arc::clone(&routing),
                ..Scope::new(source, None)
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
            let names = prepare(sql, &mut q)?;
            s.send_rows(|sink| run::stream(catalog, scope, current.as_deref(), q, names, sink))
        });
        self.warnings.extend(routing.take_warnings());
        rs
    }

    /// Runs `f`, which makes a result and sends its rows to the sink it is
    /// given: the session's, if it has one (the rows stream to the client
    /// as they come), else one that keeps them.
    pub(crate) fn send_rows(
        &mut self,
        f: impl FnOnce(&mut dyn RowSink) -> Result<u64>,
    ) -> Result<Output> {
        match self.sink.take() {
            Some(mut sink) => {
                let sent = f(sink.as_mut());
                self.sink = Some(sink);
                Ok(Output::Streamed { rows: sent? })
            }
            None => {
                let mut all = Collect::default();
                f(&mut all)?;
                Ok(Output::Rows(all.0))
            }
        }
    }

    /// Locks the rows `SELECT … FOR UPDATE` (or `FOR SHARE`, held the same
    /// way) selects from its one table: every row its `WHERE` matches.
    pub(super) fn lock_selected_rows(&mut self, q: &Query, params: &[Value]) -> Result<()> {
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
        self.change_rows(name, &clauses, params, true, |_, _, _, _| Ok(()))
    }

    /// The router's rules for one query: the session's engines and the
    /// query's hints.
    pub(super) fn routing(&self, q: &Query) -> Result<Routing> {
        Ok(Routing::new(&self.engines()?, q))
    }

    /// The session's `duet_isolation_read_engines`.
    pub(super) fn engines(&self) -> Result<String> {
        let engines = self
            .vars
            .get(&self.db.globals, "duet_isolation_read_engines", None)?;
        Ok(types::value_text(&engines))
    }

    /// `EXPLAIN [ANALYZE] query`: one row per plan operator.
    pub(crate) fn explain(&mut self, sql: &str, q: &Query, analyze: bool) -> Result<Output> {
        let mut prepared = q.clone();
        let _ = prepare(sql, &mut prepared)?;
        let current = self.current_db.clone();
        let routing = Arc::new(self.routing(&prepared)?);
        let rs = self.with_txn(|s, txn| {
            let catalog = s.catalog(lock(txn).as_ref())?;
            let fast = point::plan(q, &[], &catalog, current.as_deref(), Some(&routing), sql);
            if let Some(get) = fast {
                let database = get.database_of(&catalog);
                let actual = if analyze {
                    Some(get.run(lock(txn).as_ref(), &database)?.rows.len())
                } else {
                    None
                };
                return Ok(explain::point_get(&get, &database, actual));
            }
            let source: Arc<dyn RowSource> =
                Arc::new(TxnSource(Arc::clone(txn), Arc::clone(&s.db)));
            let scope = Scope {
                routing: Arc::clone(&routing),
                ..Scope::new(source, None)
            };
            explain::explain(
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
        let names = prepare(sql, &mut prepared)?;
        let current = self.current_db.clone();
        self.with_txn(|s, txn| {
            let catalog = s.catalog(lock(txn).as_ref())?;
            let fast = point::plan(q, &placeholders, &catalog, current.as_deref(), None, sql);
            if let Some(get) = fast {
                return Ok(get.columns(&get.database_of(&catalog)));
            }
            run::describe(catalog, current.as_deref(), prepared.clone(), &names)
        })
    }

    /// Replaces each call of a [`SessionFn`] with no
    /// argument by its value.
    pub(super) fn bind_session_functions(&self, q: &mut Query, params: &[Value]) -> Result<()> {
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
                if no_args && SessionFn::named(&f.name.to_string()).is_some() {
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
