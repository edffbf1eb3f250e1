//! Reads: whether the replica can serve a table, a scan at a snapshot,
//! and the status of each table's copy.

use super::{Replica, TableStatus, lock};
use crate::error::{Error, Result};
use crate::table::{ScanOutput, ScanRequest};
use std::time::{Duration, Instant};

impl Replica {
    /// Whether `table_id` can be read here, with these Arrow fields (the
    /// caller's view of the table; a replica that has not reached the same
    /// definition yet is not used). A table whose rows await snapshots is
    /// not, unless `wait` and they arrive within the read wait.
    pub fn available(
        &self,
        table_id: i64,
        fields: &[(String, datafusion::arrow::datatypes::DataType)],
        wait: bool,
    ) -> bool {
        self.available_in(table_id, fields, wait, None)
    }

    /// [`available`](Self::available) for the rows in `keys` alone (the
    /// part of the table another node asks this one for).
    pub fn available_in(
        &self,
        table_id: i64,
        fields: &[(String, datafusion::arrow::datatypes::DataType)],
        wait: bool,
        keys: Option<&(Vec<u8>, Vec<u8>)>,
    ) -> bool {
        if self.stopped().is_some() || !self.covers_table(table_id, keys) {
            return false;
        }
        // The replica already has the caller's definition: the scan itself
        // waits until it is current. Otherwise a definition change
        // committed before is awaited; a learner too far behind makes the
        // table unavailable here.
        if !self.has_definition(table_id, fields)
            && (self.catch_up(0).is_err() || !self.has_definition(table_id, fields))
        {
            return false;
        }
        if !wait {
            return !self.awaits_table(table_id, keys);
        }
        let deadline = Instant::now() + self.config.read_wait;
        while self.awaits_table(table_id, keys) {
            if Instant::now() >= deadline || self.stopped().is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }

    /// Whether the replica holds `table_id` with these Arrow fields.
    pub(super) fn has_definition(
        &self,
        table_id: i64,
        fields: &[(String, datafusion::arrow::datatypes::DataType)],
    ) -> bool {
        let Some(table) = self.existing(table_id) else {
            return false;
        };
        let t = lock(&table);
        let Some(codec) = &t.codec else {
            return false;
        };
        let schema = codec.schema();
        schema.fields().len() == fields.len()
            && schema
                .fields()
                .iter()
                .zip(fields)
                .all(|(f, (name, ty))| f.name() == name && f.data_type() == ty)
    }

    /// The rows of `table_id` visible at `request.read_ts` (those in
    /// `request.keys` if given: that range alone must be held here). The scan first
    /// makes the replica current ([`catch_up`](Self::catch_up): a read
    /// index through the learner peers, within the read wait). A lock that hides a version is reported
    /// ([`Error::Locked`]), never skipped.
    pub fn scan(&self, table_id: i64, request: &ScanRequest) -> Result<ScanOutput> {
        let unavailable = |reason: String| Error::Unavailable { table_id, reason };
        if let Some(why) = self.stopped() {
            return Err(unavailable(why));
        }
        if !self.covers_table(table_id, request.keys.as_ref()) {
            return Err(unavailable(
                "some of its regions have no columnar learner on this node".into(),
            ));
        }
        self.catch_up(request.read_ts)?;
        if let Some(why) = self.stopped() {
            return Err(unavailable(why));
        }
        if self.awaits_table(table_id, request.keys.as_ref()) {
            return Err(unavailable(
                "part of its rows awaits a snapshot of their region".into(),
            ));
        }
        let table = self
            .existing(table_id)
            .ok_or_else(|| unavailable("no replica".into()))?;
        let snapshot = {
            let mut t = lock(&table);
            if let Some((key, lock)) = t.blocking_lock(request.read_ts) {
                return Err(Error::Locked(Box::new(lock.info(&key))));
            }
            t.snapshot()
                .ok_or_else(|| unavailable("its definition has not arrived".into()))?
        };
        snapshot.scan(request)
    }

    /// Status of every table with a replica.
    pub fn status(&self) -> Vec<TableStatus> {
        let stopped = self.stopped().is_some();
        let tables = self.table_list();
        let mut out: Vec<TableStatus> = tables
            .iter()
            .map(|(id, t)| {
                let awaits = self.awaits_table(*id, None);
                let t = lock(t);
                TableStatus {
                    table_id: *id,
                    available: !stopped && !awaits && t.codec.is_some(),
                    rows: None,
                    versions: t.versions(),
                    delta_versions: t.delta_versions(),
                    delta_bytes: t.delta_bytes(),
                    chunks: t.chunks(),
                    lag: None,
                    seconds_behind: 0.0,
                }
            })
            .collect();
        out.sort_by_key(|s| s.table_id);
        out
    }

    /// The status of one table's replica, with its rows visible now.
    pub fn table_status(&self, table_id: i64) -> Option<TableStatus> {
        // How far behind it is before the read below waits for it.
        let lag = self.lag();
        let seconds_behind = self.seconds_behind();
        // Counted as of what is committed now, if the learner gets there
        // in time.
        let _ = self.catch_up(0);
        let stopped = self.stopped().is_some() || self.awaits_table(table_id, None);
        let table = self.existing(table_id)?;
        let (status, snapshot) = {
            let mut t = lock(&table);
            let status = TableStatus {
                table_id,
                available: !stopped && t.codec.is_some(),
                rows: None,
                versions: t.versions(),
                delta_versions: t.delta_versions(),
                delta_bytes: t.delta_bytes(),
                chunks: t.chunks(),
                lag,
                seconds_behind,
            };
            (status, t.snapshot())
        };
        let rows = snapshot.and_then(|s| {
            s.scan(&ScanRequest {
                projection: Some(Vec::new()),
                read_ts: u64::MAX,
                ..ScanRequest::default()
            })
            .ok()
        });
        Some(TableStatus {
            rows: rows.map(|r| r.rows),
            ..status
        })
    }
}
