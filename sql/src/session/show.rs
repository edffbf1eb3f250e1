//! `SET` (system and user variables, `NAMES`) and the `SHOW` statements
//! the session answers from its own state.

use datafusion::sql::sqlparser::ast::{self, Expr, ObjectName, ShowStatementFilter};

use crate::error::{Error, Result, Warning};
use crate::eval::{self};
use crate::kv;
use crate::rules::like::like;
use crate::session::words::{name_parts, transaction_mode};
use crate::session::{BUILTIN_DATABASES, Ctx, Session};
use crate::value::{Column, FieldType, Output, ResultSet, Value};
use crate::vars::{self, VarScope};

impl Session {
    /// `SHOW GRANTS`: every account may do everything (Duet has no
    /// privileges yet), for the current account; another is error 1141.
    pub(super) fn show_grants(&mut self, user: Option<&str>) -> Result<Output> {
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

    pub(super) fn set(&mut self, set: &ast::Set, params: &[Value]) -> Result<Output> {
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

    pub(super) fn assign(
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
    pub(super) fn set_value(&self, value: &Expr, params: &[Value]) -> Result<Option<Value>> {
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

    pub(super) fn set_system(
        &mut self,
        name: &str,
        scope: VarScope,
        value: Option<Value>,
    ) -> Result<()> {
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

    pub(super) fn set_names(&mut self, charset: &str, collation: Option<&str>) -> Result<()> {
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

    pub(super) fn show_variables(
        &self,
        filter: Option<&ShowStatementFilter>,
        scope: VarScope,
        params: &[Value],
    ) -> Result<Output> {
        self.name_values(self.vars.show(&self.db.globals, scope), filter, params)
    }

    /// A `Variable_name`/`Value` table (`SHOW VARIABLES`, `SHOW STATUS`),
    /// filtered by `LIKE` on the name or by `WHERE`.
    pub(super) fn name_values(
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
    pub(super) fn show_status(
        &self,
        filter: Option<&ShowStatementFilter>,
        params: &[Value],
    ) -> Result<Output> {
        self.name_values(self.db.processes.status(), filter, params)
    }

    /// A fixed `SHOW` table, filtered by `LIKE` on its first column or by
    /// `WHERE`.
    pub(super) fn show_table(
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
    pub(super) fn show_engines(&self) -> Result<Output> {
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

    pub(super) fn show_processlist(&self, full: bool) -> Output {
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

    pub(super) fn show_databases(&mut self) -> Result<Output> {
        let catalog = self.with_txn(|s, txn| s.catalog(kv::lock(txn).as_ref()))?;
        let mut names: Vec<String> = BUILTIN_DATABASES.iter().map(|d| d.to_string()).collect();
        names.extend(catalog.databases().map(|d| d.name.clone()));
        names.sort();
        Ok(Output::Rows(ResultSet {
            columns: vec![Column::expr("Database", FieldType::VarString)],
            rows: names.into_iter().map(|n| vec![Value::Str(n)]).collect(),
        }))
    }

    pub(super) fn show_warnings(&self) -> Output {
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

    pub(super) fn filter_accepts(
        &self,
        filter: Option<&ShowStatementFilter>,
        name: &str,
        row: &[(&str, Value)],
        params: &[Value],
    ) -> Result<bool> {
        Ok(match filter {
            None => true,
            Some(ShowStatementFilter::Like(p) | ShowStatementFilter::ILike(p)) => {
                like(name, p, true)
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
