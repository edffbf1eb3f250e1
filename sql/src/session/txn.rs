//! A session's transactions: autocommit and explicit ones, savepoints,
//! the automatic retry of an autocommit statement that lost a write
//! conflict, and [`TxnSource`], the transaction as the row source of a plan.

use std::sync::{Arc, Mutex};

use duet_storage::codec::Datum;

use crate::catalog::IndexInfo;
use crate::catalog::{Catalog, TableInfo};
use crate::error::{Error, Result};
use crate::kv::{KvTxn, SharedTxn, lock};
use crate::session::{Database, Session};
use crate::table::ranges::HandleSet;
use crate::table::source::{ColumnarPart, RemoteError, RemoteScan, RowSource, Span};
use crate::table::stats::TableStats;
use crate::table::{self, Row};
use crate::types;
use crate::value::Value;

/// Times an autocommit statement is retried after a write conflict.
pub(super) const AUTOCOMMIT_RETRIES: usize = 10;

pub(super) struct TxnSource(pub(super) SharedTxn, pub(super) Arc<Database>);

impl RowSource for TxnSource {
    fn stats(&self, table: &TableInfo) -> Option<TableStats> {
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
        index: &IndexInfo,
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
        if replica.available(table.id, &fields, wait) {
            return true;
        }
        // Some regions' columnar learners are on other nodes: readable if
        // every region has one somewhere and this node's are current (the
        // other nodes check their own when asked).
        match self.remote_spans(table) {
            Some(spans) => spans.iter().filter(|s| s.here).all(|s| {
                let keys = (s.start.clone(), s.end.clone());
                replica.available_in(table.id, &fields, wait, Some(&keys))
            }),
            None => false,
        }
    }

    fn columnar_replica_status(&self, table: &TableInfo) -> Option<duet_columnar::TableStatus> {
        self.1.columnar.as_ref()?.table_status(table.id)
    }

    fn deadlocks(&self) -> Vec<duet_storage::txn::deadlock::DeadlockRecord> {
        self.1.kv.deadlocks()
    }

    fn cluster_report(&self) -> Option<serde_json::Value> {
        match self.1.cluster.as_ref()?.report() {
            Ok(report) => Some(report),
            Err(e) => {
                tracing::warn!(error = %e, "the cluster's layout is not available");
                None
            }
        }
    }

    fn has_writes(&self, table: &TableInfo) -> bool {
        let prefix = duet_storage::codec::key::table_prefix(table.id);
        lock(&self.0).has_writes_in(&prefix, &duet_storage::codec::key::prefix_end(&prefix))
    }

    fn columnar_scan(
        &self,
        table: &TableInfo,
        mut request: duet_columnar::ScanRequest,
    ) -> Result<Vec<ColumnarPart>> {
        let replica = self
            .1
            .columnar
            .as_ref()
            .ok_or_else(|| Error::Internal("no columnar replica".into()))?;
        let spans = self.remote_spans(table);
        let txn = lock(&self.0);
        request.read_ts = txn.start_ts();
        let mut out = None;
        let mut failed = None;
        txn.read_with(&mut || {
            let parts = match &spans {
                Some(spans) => self.columnar_parts(table, &request, spans),
                None => replica
                    .scan(table.id, &request)
                    .map(|o| o.partitions.into_iter().map(ColumnarPart::Here).collect()),
            };
            match parts {
                Ok(parts) => {
                    out = Some(parts);
                    Ok(())
                }
                Err(duet_columnar::Error::Locked(info)) => {
                    Err(duet_storage::Error::KeyIsLocked(info))
                }
                Err(e) => {
                    failed = Some(e);
                    Ok(())
                }
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

impl TxnSource {
    /// The table's rows cut by region, if some regions' columnar learners
    /// are on other nodes only (`None`: this node's replica serves the
    /// whole table, or no remote reads are possible).
    fn remote_spans(&self, table: &TableInfo) -> Option<Vec<Span>> {
        let remote = self.1.remote_columnar.as_ref()?;
        let start = duet_storage::codec::key::row_prefix(table.id);
        let end = duet_storage::codec::key::prefix_end(&start);
        remote
            .plan(&start, &end)
            .filter(|spans| spans.iter().any(|s| !s.here))
    }

    /// One scan of each span: of this node's replica, or streamed from a
    /// node holding it.
    fn columnar_parts(
        &self,
        table: &TableInfo,
        request: &duet_columnar::ScanRequest,
        spans: &[Span],
    ) -> duet_columnar::Result<Vec<ColumnarPart>> {
        let unavailable = |reason: String| duet_columnar::Error::Unavailable {
            table_id: table.id,
            reason,
        };
        let (replica, remote) = match (&self.1.columnar, &self.1.remote_columnar) {
            (Some(r), Some(m)) => (r, m),
            _ => return Err(unavailable("no columnar replica".into())),
        };
        let schema = crate::plan::arrow::arrow_schema(table, "", false);
        let mut parts = Vec::new();
        for span in spans {
            if span.here {
                let here = duet_columnar::ScanRequest {
                    keys: Some((span.start.clone(), span.end.clone())),
                    partitions: 1,
                    ..request.clone()
                };
                let out = replica.scan(table.id, &here)?;
                parts.extend(out.partitions.into_iter().map(ColumnarPart::Here));
                continue;
            }
            let scan = RemoteScan {
                table_id: table.id,
                schema: &schema,
                start: &span.start,
                end: &span.end,
                read_ts: request.read_ts,
                projection: request.projection.as_deref(),
            };
            match remote.scan(&scan) {
                Ok(batches) => parts.push(ColumnarPart::Elsewhere(Mutex::new(Some(batches)))),
                Err(RemoteError::Locked(info)) => return Err(duet_columnar::Error::Locked(info)),
                Err(RemoteError::Unavailable(why)) => return Err(unavailable(why)),
            }
        }
        Ok(parts)
    }
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
    pub(super) fn own_txn<T>(
        &mut self,
        mut f: impl FnMut(&mut Session, &SharedTxn) -> Result<T>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let txn: SharedTxn =
                Arc::new(Mutex::new(self.db.kv.begin().map_err(Error::from_storage)?));
            let one_pc = self.one_pc_enabled();
            let outcome = f(self, &txn).and_then(|v| {
                let mut txn = lock(&txn);
                txn.set_one_pc(one_pc);
                txn.commit().map_err(Error::from_storage)?;
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
    /// The transaction is pessimistic or optimistic as `duet_txn_mode`
    /// says now.
    pub(crate) fn begin(&mut self) -> Result<()> {
        self.commit()?;
        let mut txn = self.db.kv.begin().map_err(Error::from_storage)?;
        let mode = self.vars.get(&self.db.globals, "duet_txn_mode", None)?;
        if types::value_text(&mode).eq_ignore_ascii_case("pessimistic") {
            txn.set_pessimistic();
        }
        self.txn = Some(Arc::new(Mutex::new(txn)));
        Ok(())
    }

    /// `innodb_lock_wait_timeout`: how long a statement waits for a row
    /// lock before it fails with 1205.
    pub(super) fn lock_wait_timeout(&self) -> Result<std::time::Duration> {
        let secs = match self
            .vars
            .get(&self.db.globals, "innodb_lock_wait_timeout", None)?
        {
            Value::Int(n) => u64::try_from(n).unwrap_or(1),
            Value::UInt(n) => n,
            _ => 50,
        };
        Ok(std::time::Duration::from_secs(secs))
    }

    /// `COMMIT` (and the implicit commit before DDL and `BEGIN`).
    pub(crate) fn commit(&mut self) -> Result<()> {
        self.savepoints.clear();
        let one_pc = self.one_pc_enabled();
        match self.txn.take() {
            Some(txn) => {
                let mut txn = lock(&txn);
                txn.set_one_pc(one_pc);
                txn.commit().map(|_| ()).map_err(Error::from_storage)
            }
            None => Ok(()),
        }
    }

    /// `duet_enable_1pc`: whether a commit may be one-phase.
    fn one_pc_enabled(&self) -> bool {
        self.vars
            .get(&self.db.globals, "duet_enable_1pc", None)
            .map(|v| crate::eval::truthy(&v))
            .unwrap_or(true)
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
}
