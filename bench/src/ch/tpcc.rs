//! The five TPC-C transactions (clause 2), run by a terminal bound to a
//! home warehouse, in the standard mix. Inputs are drawn once and a
//! transaction the server aborts (deadlock, write conflict, lock wait
//! timeout) is retried with the same input; New-Order's 1% of orders for an
//! unused item roll back by design and count as such, not as aborts.
//!
//! Money travels as decimal literals in the statement text, never as
//! floating-point parameters, so `W_YTD` and the sums the consistency checks
//! compare stay exact.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use serde::Serialize;

use super::load::{DISTRICTS, ITEMS};
use super::random::{TpccRng, cents};

/// A transaction type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum TxnKind {
    NewOrder,
    Payment,
    OrderStatus,
    Delivery,
    StockLevel,
}

impl TxnKind {
    pub const ALL: [TxnKind; 5] = [
        TxnKind::NewOrder,
        TxnKind::Payment,
        TxnKind::OrderStatus,
        TxnKind::Delivery,
        TxnKind::StockLevel,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TxnKind::NewOrder => "New-Order",
            TxnKind::Payment => "Payment",
            TxnKind::OrderStatus => "Order-Status",
            TxnKind::Delivery => "Delivery",
            TxnKind::StockLevel => "Stock-Level",
        }
    }

    /// The standard mix: 45% New-Order, 43% Payment, 4% each of the rest.
    pub fn pick(rng: &mut TpccRng) -> TxnKind {
        match rng.uniform(0, 99) {
            0..=44 => TxnKind::NewOrder,
            45..=87 => TxnKind::Payment,
            88..=91 => TxnKind::OrderStatus,
            92..=95 => TxnKind::Delivery,
            _ => TxnKind::StockLevel,
        }
    }
}

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Committed,
    /// A New-Order committed as order `o_id` of district `(w, d)`.
    NewOrder {
        w: i64,
        d: i64,
        o_id: i64,
    },
    /// Rolled back by the transaction's own logic (New-Order's unused item).
    RolledBack,
}

/// Whether the server aborted the attempt in a way a retry can fix.
pub fn retryable(e: &mysql_async::Error) -> bool {
    match e {
        // Deadlock / write conflict, lock wait timeout, and the
        // "try restarting transaction" family.
        mysql_async::Error::Server(s) => matches!(s.code, 1205 | 1213 | 1637 | 8002 | 9007),
        _ => false,
    }
}

type TxResult<T> = std::result::Result<T, mysql_async::Error>;

/// The customer a Payment or Order-Status names: by last name (60%) or id.
#[derive(Debug, Clone)]
pub enum CustomerRef {
    Id(i64),
    Last(String),
}

/// A transaction's input, drawn before the first attempt.
#[derive(Debug, Clone)]
pub enum Input {
    NewOrder {
        d: i64,
        c: i64,
        /// `(item, supplying warehouse, quantity)`, sorted by item.
        lines: Vec<(i64, i64, i64)>,
    },
    Payment {
        d: i64,
        c_w: i64,
        c_d: i64,
        customer: CustomerRef,
        /// Hundredths.
        amount: i64,
    },
    OrderStatus {
        d: i64,
        customer: CustomerRef,
    },
    Delivery {
        carrier: i64,
    },
    StockLevel {
        d: i64,
        threshold: i64,
    },
}

/// A TPC-C terminal: one connection, one home warehouse.
pub struct Terminal {
    pub conn: Conn,
    pub rng: TpccRng,
    pub w: i64,
    pub warehouses: i64,
}

impl Terminal {
    /// Draws the input of a transaction of `kind` (clause 2.x.1).
    pub fn input(&mut self, kind: TxnKind) -> Input {
        let rng = &mut self.rng;
        match kind {
            TxnKind::NewOrder => {
                let count = rng.uniform(5, 15);
                let unused = rng.percent(1);
                let mut lines: Vec<(i64, i64, i64)> = (0..count)
                    .map(|_| {
                        let supply = if self.warehouses > 1 && rng.percent(1) {
                            other_warehouse(rng, self.w, self.warehouses)
                        } else {
                            self.w
                        };
                        (rng.item_id(), supply, rng.uniform(1, 10))
                    })
                    .collect();
                if unused {
                    // An id no item has: the transaction must roll back.
                    lines[count as usize - 1].0 = ITEMS + 1;
                }
                // Item order is lock order: it keeps terminals from deadlocking.
                lines.sort_unstable();
                Input::NewOrder {
                    d: rng.uniform(1, DISTRICTS),
                    c: rng.customer_id(),
                    lines,
                }
            }
            TxnKind::Payment => {
                let d = rng.uniform(1, DISTRICTS);
                let (c_w, c_d) = if self.warehouses > 1 && rng.percent(15) {
                    (
                        other_warehouse(rng, self.w, self.warehouses),
                        rng.uniform(1, DISTRICTS),
                    )
                } else {
                    (self.w, d)
                };
                Input::Payment {
                    d,
                    c_w,
                    c_d,
                    customer: customer_ref(rng),
                    amount: rng.uniform(100, 500_000),
                }
            }
            TxnKind::OrderStatus => Input::OrderStatus {
                d: rng.uniform(1, DISTRICTS),
                customer: customer_ref(rng),
            },
            TxnKind::Delivery => Input::Delivery {
                carrier: rng.uniform(1, 10),
            },
            TxnKind::StockLevel => Input::StockLevel {
                d: rng.uniform(1, DISTRICTS),
                threshold: rng.uniform(10, 20),
            },
        }
    }

    /// Runs one attempt of a transaction; on error the transaction is rolled
    /// back before the error is returned.
    pub async fn execute(&mut self, input: &Input) -> TxResult<Outcome> {
        self.conn.query_drop("BEGIN").await?;
        let result = match input {
            Input::NewOrder { d, c, lines } => self.new_order(*d, *c, lines).await,
            Input::Payment {
                d,
                c_w,
                c_d,
                customer,
                amount,
            } => self.payment(*d, *c_w, *c_d, customer, *amount).await,
            Input::OrderStatus { d, customer } => self.order_status(*d, customer).await,
            Input::Delivery { carrier } => self.delivery(*carrier).await,
            Input::StockLevel { d, threshold } => self.stock_level(*d, *threshold).await,
        };
        match result {
            Ok(Outcome::RolledBack) => {
                self.conn.query_drop("ROLLBACK").await?;
                Ok(Outcome::RolledBack)
            }
            Ok(outcome) => {
                self.conn.query_drop("COMMIT").await?;
                Ok(outcome)
            }
            Err(e) => {
                // The server may already have ended the transaction.
                let _ = self.conn.query_drop("ROLLBACK").await;
                Err(e)
            }
        }
    }

    async fn new_order(&mut self, d: i64, c: i64, lines: &[(i64, i64, i64)]) -> TxResult<Outcome> {
        let w = self.w;
        let conn = &mut self.conn;
        let w_tax: Option<f64> = conn
            .exec_first("SELECT w_tax FROM warehouse WHERE w_id = ?", (w,))
            .await?;
        let customer: Option<(f64, String, String)> = conn
            .exec_first(
                "SELECT c_discount, c_last, c_credit FROM customer \
                 WHERE c_w_id = ? AND c_d_id = ? AND c_id = ?",
                (w, d, c),
            )
            .await?;
        // Taking the order number by a relative update first makes
        // concurrent New-Orders of the district serialize on the district
        // row (a lock, or a write conflict under snapshot isolation), with
        // no locking read.
        conn.exec_drop(
            "UPDATE district SET d_next_o_id = d_next_o_id + 1 WHERE d_w_id = ? AND d_id = ?",
            (w, d),
        )
        .await?;
        let district: Option<(i64, f64)> = conn
            .exec_first(
                "SELECT d_next_o_id, d_tax FROM district WHERE d_w_id = ? AND d_id = ?",
                (w, d),
            )
            .await?;
        let (Some(_), Some(_), Some((next, _))) = (w_tax, customer, district) else {
            return Ok(Outcome::RolledBack);
        };
        let o_id = next - 1;
        let all_local = i64::from(lines.iter().all(|l| l.1 == w));
        let now = super::now_datetime();
        conn.exec_drop(
            "INSERT INTO orders (o_id, o_d_id, o_w_id, o_c_id, o_entry_d, o_carrier_id, \
             o_ol_cnt, o_all_local) VALUES (?, ?, ?, ?, ?, NULL, ?, ?)",
            (o_id, d, w, c, &now, lines.len() as i64, all_local),
        )
        .await?;
        conn.exec_drop(
            "INSERT INTO new_order (no_o_id, no_d_id, no_w_id) VALUES (?, ?, ?)",
            (o_id, d, w),
        )
        .await?;
        let dist_column = format!("s_dist_{d:02}");
        let mut values = Vec::with_capacity(lines.len());
        for (number, &(item, supply, quantity)) in lines.iter().enumerate() {
            let price: Option<String> = conn
                .exec_first("SELECT i_price FROM item WHERE i_id = ?", (item,))
                .await?;
            let Some(price) = price else {
                return Ok(Outcome::RolledBack);
            };
            let stock: Option<(i64, String)> = conn
                .exec_first(
                    format!(
                        "SELECT s_quantity, {dist_column} FROM stock \
                         WHERE s_i_id = ? AND s_w_id = ?"
                    ),
                    (item, supply),
                )
                .await?;
            let Some((_, dist_info)) = stock else {
                return Ok(Outcome::RolledBack);
            };
            // The quantity rule of clause 2.4.2.2, applied to the row as it
            // is when updated rather than as it was read.
            conn.exec_drop(
                "UPDATE stock SET s_quantity = IF(s_quantity >= ? + 10, s_quantity - ?, \
                 s_quantity - ? + 91), s_ytd = s_ytd + ?, \
                 s_order_cnt = s_order_cnt + 1, s_remote_cnt = s_remote_cnt + ? \
                 WHERE s_i_id = ? AND s_w_id = ?",
                (
                    quantity,
                    quantity,
                    quantity,
                    quantity,
                    i64::from(supply != w),
                    item,
                    supply,
                ),
            )
            .await?;
            let amount = cents(quantity * parse_cents(&price).unwrap_or(0) as i64);
            values.push(format!(
                "({o_id},{d},{w},{},{item},{supply},NULL,{quantity},{amount},'{}')",
                number + 1,
                dist_info.replace('\'', "''")
            ));
        }
        conn.query_drop(format!(
            "INSERT INTO order_line (ol_o_id, ol_d_id, ol_w_id, ol_number, ol_i_id, \
             ol_supply_w_id, ol_delivery_d, ol_quantity, ol_amount, ol_dist_info) VALUES {}",
            values.join(",")
        ))
        .await?;
        Ok(Outcome::NewOrder { w, d, o_id })
    }

    /// The id of the customer `customer` names in district `(w, d)`: by last
    /// name, the one in the middle of those sorted by first name.
    async fn customer_id(
        &mut self,
        w: i64,
        d: i64,
        customer: &CustomerRef,
    ) -> TxResult<Option<i64>> {
        match customer {
            CustomerRef::Id(id) => Ok(Some(*id)),
            CustomerRef::Last(last) => {
                let ids: Vec<i64> = self
                    .conn
                    .exec(
                        "SELECT c_id FROM customer WHERE c_w_id = ? AND c_d_id = ? AND c_last = ? \
                         ORDER BY c_first",
                        (w, d, last),
                    )
                    .await?;
                Ok(ids.get(ids.len().div_ceil(2).saturating_sub(1)).copied())
            }
        }
    }

    async fn payment(
        &mut self,
        d: i64,
        c_w: i64,
        c_d: i64,
        customer: &CustomerRef,
        amount: i64,
    ) -> TxResult<Outcome> {
        let w = self.w;
        let money = cents(amount);
        self.conn
            .exec_drop(
                format!("UPDATE warehouse SET w_ytd = w_ytd + {money} WHERE w_id = ?"),
                (w,),
            )
            .await?;
        let w_name: Option<String> = self
            .conn
            .exec_first("SELECT w_name FROM warehouse WHERE w_id = ?", (w,))
            .await?;
        self.conn
            .exec_drop(
                format!(
                    "UPDATE district SET d_ytd = d_ytd + {money} WHERE d_w_id = ? AND d_id = ?"
                ),
                (w, d),
            )
            .await?;
        let d_name: Option<String> = self
            .conn
            .exec_first(
                "SELECT d_name FROM district WHERE d_w_id = ? AND d_id = ?",
                (w, d),
            )
            .await?;
        let Some(c) = self.customer_id(c_w, c_d, customer).await? else {
            return Ok(Outcome::RolledBack);
        };
        let credit: Option<String> = self
            .conn
            .exec_first(
                "SELECT c_credit FROM customer WHERE c_w_id = ? AND c_d_id = ? AND c_id = ?",
                (c_w, c_d, c),
            )
            .await?;
        let Some(credit) = credit else {
            return Ok(Outcome::RolledBack);
        };
        if credit == "BC" {
            let data: Option<String> = self
                .conn
                .exec_first(
                    // Read to be rewritten: locked.
                    "SELECT c_data FROM customer WHERE c_w_id = ? AND c_d_id = ? AND c_id = ? \
                     FOR UPDATE",
                    (c_w, c_d, c),
                )
                .await?;
            let mut data = format!(
                "{c} {c_d} {c_w} {d} {w} {money} | {}",
                data.unwrap_or_default()
            );
            data.truncate(500);
            self.conn
                .exec_drop(
                    format!(
                        "UPDATE customer SET c_balance = c_balance - {money}, \
                         c_ytd_payment = c_ytd_payment + {money}, \
                         c_payment_cnt = c_payment_cnt + 1, c_data = ? \
                         WHERE c_w_id = ? AND c_d_id = ? AND c_id = ?"
                    ),
                    (data, c_w, c_d, c),
                )
                .await?;
        } else {
            self.conn
                .exec_drop(
                    format!(
                        "UPDATE customer SET c_balance = c_balance - {money}, \
                         c_ytd_payment = c_ytd_payment + {money}, \
                         c_payment_cnt = c_payment_cnt + 1 \
                         WHERE c_w_id = ? AND c_d_id = ? AND c_id = ?"
                    ),
                    (c_w, c_d, c),
                )
                .await?;
        }
        let h_data = format!(
            "{}    {}",
            w_name.unwrap_or_default(),
            d_name.unwrap_or_default()
        );
        self.conn
            .exec_drop(
                format!(
                    "INSERT INTO history (h_c_id, h_c_d_id, h_c_w_id, h_d_id, h_w_id, h_date, \
                     h_amount, h_data) VALUES (?, ?, ?, ?, ?, ?, {money}, ?)"
                ),
                (c, c_d, c_w, d, w, super::now_datetime(), h_data),
            )
            .await?;
        Ok(Outcome::Committed)
    }

    async fn order_status(&mut self, d: i64, customer: &CustomerRef) -> TxResult<Outcome> {
        let w = self.w;
        let Some(c) = self.customer_id(w, d, customer).await? else {
            return Ok(Outcome::RolledBack);
        };
        let _balance: Option<Row> = self
            .conn
            .exec_first(
                "SELECT c_balance, c_first, c_middle, c_last FROM customer \
                 WHERE c_w_id = ? AND c_d_id = ? AND c_id = ?",
                (w, d, c),
            )
            .await?;
        let order: Option<i64> = self
            .conn
            .exec_first(
                "SELECT o_id FROM orders WHERE o_w_id = ? AND o_d_id = ? AND o_c_id = ? \
                 ORDER BY o_id DESC LIMIT 1",
                (w, d, c),
            )
            .await?;
        if let Some(o_id) = order {
            let _lines: Vec<Row> = self
                .conn
                .exec(
                    "SELECT ol_i_id, ol_supply_w_id, ol_quantity, ol_amount, ol_delivery_d \
                     FROM order_line WHERE ol_w_id = ? AND ol_d_id = ? AND ol_o_id = ?",
                    (w, d, o_id),
                )
                .await?;
        }
        Ok(Outcome::Committed)
    }

    async fn delivery(&mut self, carrier: i64) -> TxResult<Outcome> {
        let w = self.w;
        let now = super::now_datetime();
        for d in 1..=DISTRICTS {
            let oldest: Option<i64> = self
                .conn
                .exec_first(
                    "SELECT no_o_id FROM new_order WHERE no_w_id = ? AND no_d_id = ? \
                     ORDER BY no_o_id LIMIT 1",
                    (w, d),
                )
                .await?;
            // A district with nothing to deliver is skipped (clause 2.7.4.2).
            let Some(o_id) = oldest else { continue };
            self.conn
                .exec_drop(
                    "DELETE FROM new_order WHERE no_w_id = ? AND no_d_id = ? AND no_o_id = ?",
                    (w, d, o_id),
                )
                .await?;
            // Another Delivery took this order first (under locking, the
            // delete finds it gone; under snapshot isolation the commit
            // conflicts instead): nothing to deliver here.
            if self.conn.affected_rows() == 0 {
                continue;
            }
            let customer: Option<i64> = self
                .conn
                .exec_first(
                    "SELECT o_c_id FROM orders WHERE o_w_id = ? AND o_d_id = ? AND o_id = ?",
                    (w, d, o_id),
                )
                .await?;
            self.conn
                .exec_drop(
                    "UPDATE orders SET o_carrier_id = ? WHERE o_w_id = ? AND o_d_id = ? AND o_id = ?",
                    (carrier, w, d, o_id),
                )
                .await?;
            self.conn
                .exec_drop(
                    "UPDATE order_line SET ol_delivery_d = ? \
                     WHERE ol_w_id = ? AND ol_d_id = ? AND ol_o_id = ?",
                    (&now, w, d, o_id),
                )
                .await?;
            let total: Option<Option<String>> = self
                .conn
                .exec_first(
                    "SELECT SUM(ol_amount) FROM order_line \
                     WHERE ol_w_id = ? AND ol_d_id = ? AND ol_o_id = ?",
                    (w, d, o_id),
                )
                .await?;
            let total = total.flatten().and_then(|t| parse_cents(&t)).unwrap_or(0);
            if let Some(c) = customer {
                self.conn
                    .exec_drop(
                        format!(
                            "UPDATE customer SET c_balance = c_balance + {}, \
                             c_delivery_cnt = c_delivery_cnt + 1 \
                             WHERE c_w_id = ? AND c_d_id = ? AND c_id = ?",
                            cents(total as i64)
                        ),
                        (w, d, c),
                    )
                    .await?;
            }
        }
        Ok(Outcome::Committed)
    }

    async fn stock_level(&mut self, d: i64, threshold: i64) -> TxResult<Outcome> {
        let w = self.w;
        let next: Option<i64> = self
            .conn
            .exec_first(
                "SELECT d_next_o_id FROM district WHERE d_w_id = ? AND d_id = ?",
                (w, d),
            )
            .await?;
        let Some(next) = next else {
            return Ok(Outcome::RolledBack);
        };
        // The items of the district's last 20 orders, then how many of
        // them are low in stock: the join of clause 2.8.2.2, in two reads
        // of the same snapshot, each an index range on the row store.
        let items: Vec<i64> = self
            .conn
            .exec(
                "SELECT DISTINCT ol_i_id FROM order_line \
                 WHERE ol_w_id = ? AND ol_d_id = ? AND ol_o_id < ? AND ol_o_id >= ?",
                (w, d, next, next - 20),
            )
            .await?;
        if !items.is_empty() {
            let list: Vec<String> = items.iter().map(i64::to_string).collect();
            // A text statement: its IN list differs every time.
            let _low: Option<i64> = self
                .conn
                .query_first(format!(
                    "SELECT COUNT(*) FROM stock WHERE s_w_id = {w} AND s_i_id IN ({}) \
                     AND s_quantity < {threshold}",
                    list.join(",")
                ))
                .await?;
        }
        Ok(Outcome::Committed)
    }
}

fn other_warehouse(rng: &mut TpccRng, home: i64, warehouses: i64) -> i64 {
    let other = rng.uniform(1, warehouses - 1);
    if other >= home { other + 1 } else { other }
}

fn customer_ref(rng: &mut TpccRng) -> CustomerRef {
    if rng.percent(60) {
        CustomerRef::Last(rng.last_name())
    } else {
        CustomerRef::Id(rng.customer_id())
    }
}

/// A decimal literal (`"-12.3"`, `"300000.00"`) in hundredths; `None` when
/// it is not a decimal. Digits past the second fraction digit are dropped.
pub fn parse_cents(text: &str) -> Option<i128> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut value: i128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut fraction = fraction.chars();
    for _ in 0..2 {
        let digit = match fraction.next() {
            Some(c) => c.to_digit(10)?,
            None => 0,
        };
        value = value * 10 + i128::from(digit);
    }
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_parse_from_decimal_text() {
        assert_eq!(parse_cents("300000.00"), Some(30_000_000));
        assert_eq!(parse_cents("-10.5"), Some(-1050));
        assert_eq!(parse_cents("7"), Some(700));
        assert_eq!(parse_cents(".25"), Some(25));
        assert_eq!(parse_cents("abc"), None);
        assert_eq!(parse_cents(""), None);
    }

    #[test]
    fn the_mix_is_the_standard_one() {
        let mut rng = TpccRng::new(11, TpccRng::constants(11));
        let mut counts = std::collections::BTreeMap::new();
        for _ in 0..100_000 {
            *counts.entry(TxnKind::pick(&mut rng)).or_insert(0) += 1;
        }
        let share = |k| f64::from(counts[&k]) / 1000.0;
        assert!((share(TxnKind::NewOrder) - 45.0).abs() < 1.0);
        assert!((share(TxnKind::Payment) - 43.0).abs() < 1.0);
        for k in [TxnKind::OrderStatus, TxnKind::Delivery, TxnKind::StockLevel] {
            assert!((share(k) - 4.0).abs() < 0.5);
        }
    }
}
