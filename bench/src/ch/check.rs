//! TPC-C's consistency conditions 1–4 (clause 3.3.2), checked on the whole
//! database after a load or a run:
//! 1. `W_YTD` = sum of `D_YTD` of the warehouse's districts;
//! 2. `D_NEXT_O_ID - 1` = max `O_ID` = max `NO_O_ID` of the district;
//! 3. max `NO_O_ID` - min `NO_O_ID` + 1 = rows in `NEW_ORDER` of the district;
//! 4. sum of `O_OL_CNT` = rows in `ORDER_LINE` of the district.

use std::collections::BTreeMap;

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use serde::Serialize;

use super::tpcc::parse_cents;
use crate::error::{Context, Result};

/// One condition's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Condition {
    pub id: u8,
    pub description: &'static str,
    pub passed: bool,
    /// The first few violations, or how much was checked.
    pub detail: String,
}

const DESCRIPTIONS: [&str; 4] = [
    "W_YTD = sum(D_YTD)",
    "D_NEXT_O_ID - 1 = max(O_ID) = max(NO_O_ID)",
    "max(NO_O_ID) - min(NO_O_ID) + 1 = count(NEW_ORDER)",
    "sum(O_OL_CNT) = count(ORDER_LINE)",
];

/// Keeps the first violations of a condition and counts them all.
#[derive(Default)]
struct Violations {
    examples: Vec<String>,
    count: usize,
    checked: usize,
}

impl Violations {
    fn check(&mut self, ok: bool, example: impl FnOnce() -> String) {
        self.checked += 1;
        if !ok {
            self.count += 1;
            if self.examples.len() < 3 {
                self.examples.push(example());
            }
        }
    }

    fn verdict(self, id: u8, unit: &str) -> Condition {
        Condition {
            id,
            description: DESCRIPTIONS[usize::from(id) - 1],
            passed: self.count == 0 && self.checked > 0,
            detail: if self.checked == 0 {
                format!("no {unit} to check")
            } else if self.count == 0 {
                format!("{} {unit} checked", self.checked)
            } else {
                format!(
                    "{} of {} {unit} violate it, e.g. {}",
                    self.count,
                    self.checked,
                    self.examples.join("; ")
                )
            },
        }
    }
}

type District = (i64, i64);

async fn by_district(conn: &mut Conn, sql: &str) -> Result<BTreeMap<District, Vec<String>>> {
    let rows: Vec<mysql_async::Row> = conn
        .query(sql)
        .await
        .context(|| format!("checking: {sql}"))?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let values: Vec<String> = (0..row.len())
                .map(|i| {
                    row.get::<Option<String>, _>(i)
                        .flatten()
                        .unwrap_or_default()
                })
                .collect();
            let w = values.first()?.parse().ok()?;
            let d = values.get(1)?.parse().ok()?;
            Some(((w, d), values[2..].to_vec()))
        })
        .collect())
}

fn int(values: Option<&Vec<String>>, at: usize) -> Option<i64> {
    values?.get(at)?.parse().ok()
}

/// Checks conditions 1–4 over every warehouse and district.
pub async fn check(conn: &mut Conn) -> Result<Vec<Condition>> {
    // Condition 1, per warehouse (the district column is a constant 0).
    let warehouses = by_district(conn, "SELECT w_id, 0, w_ytd FROM warehouse").await?;
    let district_sums = by_district(
        conn,
        "SELECT d_w_id, 0, SUM(d_ytd) FROM district GROUP BY d_w_id",
    )
    .await?;
    let mut one = Violations::default();
    for (key, w_ytd) in &warehouses {
        let w = parse_cents(&w_ytd[0]);
        let d = district_sums.get(key).and_then(|v| parse_cents(&v[0]));
        one.check(w.is_some() && w == d, || {
            format!(
                "warehouse {}: W_YTD {} vs {:?}",
                key.0,
                w_ytd[0],
                d.map(|c| c as f64 / 100.0)
            )
        });
    }

    let districts = by_district(conn, "SELECT d_w_id, d_id, d_next_o_id FROM district").await?;
    let orders = by_district(
        conn,
        "SELECT o_w_id, o_d_id, MAX(o_id), SUM(o_ol_cnt) FROM orders GROUP BY o_w_id, o_d_id",
    )
    .await?;
    let new_orders = by_district(
        conn,
        "SELECT no_w_id, no_d_id, MAX(no_o_id), MIN(no_o_id), COUNT(*) FROM new_order \
         GROUP BY no_w_id, no_d_id",
    )
    .await?;
    let lines = by_district(
        conn,
        "SELECT ol_w_id, ol_d_id, COUNT(*) FROM order_line GROUP BY ol_w_id, ol_d_id",
    )
    .await?;

    let mut two = Violations::default();
    let mut three = Violations::default();
    let mut four = Violations::default();
    for (key, values) in &districts {
        let next = int(Some(values), 0);
        let max_o = int(orders.get(key), 0);
        let max_no = int(new_orders.get(key), 0);
        // A district whose new orders were all delivered has no max(NO_O_ID).
        let no_ok = max_no.is_none() || max_no == next.map(|n| n - 1);
        two.check(next.is_some() && next.map(|n| n - 1) == max_o && no_ok, || {
            format!(
                "district {key:?}: D_NEXT_O_ID {next:?}, max(O_ID) {max_o:?}, max(NO_O_ID) {max_no:?}"
            )
        });
        if let Some(no) = new_orders.get(key) {
            let (max, min, count) = (int(Some(no), 0), int(Some(no), 1), int(Some(no), 2));
            let span = max.zip(min).map(|(max, min)| max - min + 1);
            three.check(span.is_some() && span == count, || {
                format!("district {key:?}: span {span:?} vs {count:?} new orders")
            });
        }
        let ol_cnt = int(orders.get(key), 1);
        let line_count = int(lines.get(key), 0);
        four.check(ol_cnt == line_count, || {
            format!("district {key:?}: sum(O_OL_CNT) {ol_cnt:?} vs {line_count:?} order lines")
        });
    }
    Ok(vec![
        one.verdict(1, "warehouses"),
        two.verdict(2, "districts"),
        three.verdict(3, "districts"),
        four.verdict(4, "districts"),
    ])
}
