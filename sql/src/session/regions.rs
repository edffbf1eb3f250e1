//! The statements about where a table's rows live in the cluster: `SHOW
//! TABLE t REGIONS` (the regions holding them, from
//! `information_schema.duet_regions`) and `SPLIT TABLE` (TiDB's pre-split:
//! new regions cut at the keys [`crate::table::split`] computes, made by
//! the cluster through [`ClusterView::split`]; the placement driver then
//! spreads them over the stores).

use datafusion::sql::sqlparser::ast::{Expr, ObjectName};

use crate::error::{Error, Result};
use crate::eval;
use crate::parse;
use crate::session::words::{SplitCut, SplitTable};
use crate::session::{ClusterView, Session};
use crate::table::split::{between_keys, by_keys};
use crate::value::{Column, FieldType, Output, ResultSet, Value};

impl Session {
    /// `SHOW TABLE t REGIONS`: the regions holding the table's rows and
    /// indexes (those whose range meets the table's keys), from
    /// `information_schema.duet_regions`, in key order.
    pub(crate) fn show_table_regions(&mut self, name: &ObjectName) -> Result<Output> {
        let table = self.table_named(name)?;
        let start = duet_storage::codec::key::table_prefix(table.id);
        let end = duet_storage::codec::key::prefix_end(&start);
        let hex = |k: &[u8]| k.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let query = "SELECT region_id AS REGION_ID, start_key AS START_KEY, \
                     end_key AS END_KEY, leader_store_id AS LEADER_STORE_ID, \
                     voters AS VOTERS, learners AS LEARNERS, \
                     approximate_keys AS APPROXIMATE_KEYS, \
                     approximate_bytes AS APPROXIMATE_BYTES \
                     FROM information_schema.duet_regions \
                     WHERE (end_key = '' OR end_key > ?) AND start_key < ? ORDER BY start_key";
        let mut statement = parse::parse_one(query)?;
        parse::number_placeholders(&mut statement);
        let params = [Value::Str(hex(&start)), Value::Str(hex(&end))];
        self.run(query, &statement, &params)
    }

    /// `SPLIT TABLE t BETWEEN (lo) AND (hi) REGIONS n` / `BY (v), …`: the
    /// table's regions cut at the keys asked for, each split made by the
    /// region's leader wherever it is. One row, as TiDB answers:
    /// `TOTAL_SPLIT_REGION` (the new regions; a key where a region already
    /// starts makes none) and `SCATTER_FINISH_RATIO` (NULL: the placement
    /// driver spreads the new regions in its own time).
    pub(super) fn split_table(&mut self, statement: &SplitTable) -> Result<Output> {
        let table = self.table_named(&statement.table)?;
        if table.view.is_some() {
            return Err(Error::WrongArguments("SPLIT TABLE: a view has no regions"));
        }
        let keys = match &statement.cut {
            SplitCut::Between {
                lower,
                upper,
                regions,
            } => {
                let regions = match self
                    .values(std::slice::from_ref(regions.as_ref()))?
                    .as_slice()
                {
                    [Value::Int(n)] if *n >= 0 => *n as u64,
                    [Value::UInt(n)] => *n,
                    _ => {
                        return Err(Error::WrongArguments(
                            "SPLIT TABLE: the region count must be between 1 and 1000",
                        ));
                    }
                };
                between_keys(&table, &self.values(lower)?, &self.values(upper)?, regions)?
            }
            SplitCut::By(points) => {
                let points = (points.iter())
                    .map(|p| self.values(p))
                    .collect::<Result<Vec<_>>>()?;
                by_keys(&table, &points)?
            }
        };
        let cluster: &dyn ClusterView = (self.db.cluster.as_deref())
            .ok_or_else(|| Error::not_supported("SPLIT TABLE without a cluster"))?;
        let made = cluster.split(&keys).map_err(|e| {
            Error::Storage(duet_storage::Error::Unavailable(format!(
                "SPLIT TABLE: {e}"
            )))
        })?;
        Ok(Output::Rows(ResultSet {
            columns: vec![
                Column::expr("TOTAL_SPLIT_REGION", FieldType::LongLong),
                Column::expr("SCATTER_FINISH_RATIO", FieldType::Double),
            ],
            rows: vec![vec![Value::Int(made as i64), Value::Null]],
        }))
    }

    /// The values of constant expressions, as the session evaluates them.
    fn values(&self, exprs: &[Expr]) -> Result<Vec<Value>> {
        let env = self.ctx(&[]);
        exprs.iter().map(|e| eval::eval(&env, e)).collect()
    }
}
