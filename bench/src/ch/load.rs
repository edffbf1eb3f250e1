//! The parallel loader: creates the twelve tables and fills them for W
//! warehouses as TPC-C's clause 4.3.3 describes (plus CH-benCHmark's
//! 10,000 suppliers, 62 nations and 5 regions), with one progress bar per
//! table. Warehouses load in parallel, each on its own connection, in
//! multi-row `INSERT`s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use mysql_async::prelude::Queryable;
use tokio::sync::Semaphore;

use super::Target;
use super::random::{TpccRng, basis, last_name};
use super::schema::{DDL, NATIONS, REGIONS, TABLES, nation_key};
use crate::error::{Context, Error, Result};

/// Items in the catalogue; customers and initial orders per district.
pub const ITEMS: i64 = 100_000;
pub const DISTRICTS: i64 = 10;
pub const CUSTOMERS: i64 = 3_000;
pub const SUPPLIERS: i64 = 10_000;
/// Initial orders above this id are undelivered (in `new_order`).
const DELIVERED: i64 = 2_100;
/// Rows per `INSERT` statement.
const BATCH: usize = 500;

/// What a load did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadReport {
    pub warehouses: u32,
    pub rows: u64,
    pub seconds: f64,
}

/// One unit of parallel work.
#[derive(Debug, Clone, Copy)]
enum Job {
    /// Items, suppliers, nations and regions.
    Shared,
    /// A warehouse's row, its districts and its stock.
    Stock(i64),
    /// A warehouse's customers and their history.
    Customers(i64),
    /// A warehouse's orders, order lines and new orders.
    Orders(i64),
}

/// Drops and recreates the target database, creates the tables, and loads
/// `warehouses` warehouses with `workers` connections at once.
pub async fn load(
    target: &Target,
    warehouses: u32,
    workers: usize,
    seed: u64,
    progress: bool,
) -> Result<LoadReport> {
    if warehouses == 0 {
        return Err(Error::Config("--warehouses must be at least 1".into()));
    }
    let started = Instant::now();
    target.recreate_database().await?;
    let mut conn = target.connect().await?;
    for ddl in DDL {
        conn.query_drop(ddl)
            .await
            .context(|| format!("creating table: {}", first_line(ddl)))?;
    }
    drop(conn);

    let bars = Bars::new(warehouses, progress);
    let w = i64::from(warehouses);
    let mut jobs = vec![Job::Shared];
    for w in 1..=w {
        jobs.extend([Job::Stock(w), Job::Customers(w), Job::Orders(w)]);
    }
    let permits = Arc::new(Semaphore::new(workers.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (n, job) in jobs.into_iter().enumerate() {
        let target = target.clone();
        let bars = bars.clone();
        let permits = Arc::clone(&permits);
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            run_job(&target, job, seed.wrapping_add(n as u64 * 7919), &bars).await
        });
    }
    let mut rows = 0;
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(n)) => rows += n,
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(Error::Config(format!("loader task failed: {e}"))),
        }
    }
    bars.finish();
    let mut conn = target.connect().await?;
    // Fresh statistics let the router and the optimizer see the loaded sizes.
    for table in TABLES {
        // Not every server needs (or accepts) ANALYZE; its absence is harmless.
        let _ = conn.query_drop(format!("ANALYZE TABLE {table}")).await;
    }
    Ok(LoadReport {
        warehouses,
        rows,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// One progress bar per table.
#[derive(Clone)]
struct Bars {
    multi: MultiProgress,
    bars: Vec<ProgressBar>,
}

impl Bars {
    fn new(warehouses: u32, visible: bool) -> Bars {
        let w = u64::from(warehouses);
        let multi = MultiProgress::with_draw_target(if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let style = ProgressStyle::with_template(
            "{prefix:>10} [{bar:32}] {pos:>9}/{len:9} {per_sec:>12} {elapsed}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let totals = [
            w,
            w * 10,
            w * 30_000,
            w * 30_000,
            w * 9_000,
            w * 30_000,
            w * 300_000,
            ITEMS as u64,
            w * ITEMS as u64,
            SUPPLIERS as u64,
            NATIONS.len() as u64,
            REGIONS.len() as u64,
        ];
        let bars = TABLES
            .iter()
            .zip(totals)
            .map(|(table, total)| {
                let bar = multi.add(ProgressBar::new(total));
                bar.set_style(style.clone());
                bar.set_prefix(*table);
                bar.enable_steady_tick(Duration::from_millis(500));
                bar
            })
            .collect();
        Bars { multi, bars }
    }

    fn bar(&self, table: &str) -> &ProgressBar {
        let at = TABLES.iter().position(|t| *t == table).unwrap_or(0);
        &self.bars[at]
    }

    fn finish(&self) {
        for bar in &self.bars {
            bar.set_length(bar.position());
            bar.finish();
        }
        let _ = self.multi.clear();
    }
}

/// Collects rows for one table and writes them in multi-row `INSERT`s.
struct Inserter<'a> {
    conn: &'a mut mysql_async::Conn,
    table: &'static str,
    rows: Vec<String>,
    bar: ProgressBar,
    written: u64,
}

impl<'a> Inserter<'a> {
    fn new(conn: &'a mut mysql_async::Conn, table: &'static str, bars: &Bars) -> Self {
        Inserter {
            conn,
            table,
            rows: Vec::with_capacity(BATCH),
            bar: bars.bar(table).clone(),
            written: 0,
        }
    }

    async fn push(&mut self, row: String) -> Result<()> {
        self.rows.push(row);
        if self.rows.len() >= BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<u64> {
        if !self.rows.is_empty() {
            let sql = format!("INSERT INTO {} VALUES {}", self.table, self.rows.join(","));
            self.conn
                .query_drop(sql)
                .await
                .context(|| format!("loading {}", self.table))?;
            let n = self.rows.len() as u64;
            self.bar.inc(n);
            self.written += n;
            self.rows.clear();
        }
        Ok(self.written)
    }
}

/// A SQL string literal.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// The load's timestamp literal.
fn now_literal() -> String {
    quote(&super::now_datetime())
}

async fn run_job(target: &Target, job: Job, seed: u64, bars: &Bars) -> Result<u64> {
    let mut conn = target.connect().await?;
    let mut rng = TpccRng::new(seed, target.constants);
    match job {
        Job::Shared => load_shared(&mut conn, &mut rng, bars).await,
        Job::Stock(w) => load_stock(&mut conn, &mut rng, bars, w).await,
        Job::Customers(w) => load_customers(&mut conn, &mut rng, bars, w).await,
        Job::Orders(w) => load_orders(&mut conn, &mut rng, bars, w).await,
    }
}

async fn load_shared(conn: &mut mysql_async::Conn, rng: &mut TpccRng, bars: &Bars) -> Result<u64> {
    let mut rows = 0;
    let mut region = Inserter::new(conn, "region", bars);
    for (key, name) in REGIONS.iter().enumerate() {
        let comment = rng.alnum(31, 115);
        region
            .push(format!("({key},{},{})", quote(name), quote(&comment)))
            .await?;
    }
    rows += region.flush().await?;
    let mut nation = Inserter::new(conn, "nation", bars);
    for (n, (name, region)) in NATIONS.iter().enumerate() {
        let comment = rng.alnum(31, 114);
        nation
            .push(format!(
                "({},{},{region},{})",
                nation_key(n),
                quote(name),
                quote(&comment)
            ))
            .await?;
    }
    rows += nation.flush().await?;
    let mut supplier = Inserter::new(conn, "supplier", bars);
    for key in 0..SUPPLIERS {
        let mut comment = rng.alnum(25, 100);
        if rng.uniform(0, 199) == 0 {
            // Q16 leaves out the suppliers with complaints.
            comment.replace_range(10..13, "bad");
        }
        let nation = nation_key(rng.uniform(0, NATIONS.len() as i64 - 1) as usize);
        let row = format!(
            "({key},{},{},{nation},{},{},{})",
            quote(&format!("Supplier#{key:09}")),
            quote(&rng.alnum(10, 40)),
            quote(&rng.digits(15)),
            rng.money(-99_999, 999_999),
            quote(&comment)
        );
        supplier.push(row).await?;
    }
    rows += supplier.flush().await?;
    let mut item = Inserter::new(conn, "item", bars);
    for id in 1..=ITEMS {
        let row = format!(
            "({id},{},{},{},{})",
            rng.uniform(1, 10_000),
            quote(&rng.alnum(14, 24)),
            rng.money(100, 10_000),
            quote(&rng.data_with_original())
        );
        item.push(row).await?;
    }
    rows += item.flush().await?;
    Ok(rows)
}

fn address(rng: &mut TpccRng) -> String {
    format!(
        "{},{},{},{},{}",
        quote(&rng.alnum(10, 20)),
        quote(&rng.alnum(10, 20)),
        quote(&rng.alnum(10, 20)),
        quote(&rng.state()),
        quote(&rng.zip())
    )
}

async fn load_stock(
    conn: &mut mysql_async::Conn,
    rng: &mut TpccRng,
    bars: &Bars,
    w: i64,
) -> Result<u64> {
    let mut rows = 0;
    let mut warehouse = Inserter::new(conn, "warehouse", bars);
    let row = format!(
        "({w},{},{},{},300000.00)",
        quote(&rng.alnum(6, 10)),
        address(rng),
        basis(rng.uniform(0, 2000))
    );
    warehouse.push(row).await?;
    rows += warehouse.flush().await?;
    let mut district = Inserter::new(conn, "district", bars);
    for d in 1..=DISTRICTS {
        let row = format!(
            "({d},{w},{},{},{},30000.00,{})",
            quote(&rng.alnum(6, 10)),
            address(rng),
            basis(rng.uniform(0, 2000)),
            CUSTOMERS + 1
        );
        district.push(row).await?;
    }
    rows += district.flush().await?;
    let mut stock = Inserter::new(conn, "stock", bars);
    for i in 1..=ITEMS {
        let dists: Vec<String> = (0..10).map(|_| quote(&rng.alnum(24, 24))).collect();
        let row = format!(
            "({i},{w},{},{},0,0,0,{})",
            rng.uniform(10, 100),
            dists.join(","),
            quote(&rng.data_with_original())
        );
        stock.push(row).await?;
    }
    rows += stock.flush().await?;
    Ok(rows)
}

async fn load_customers(
    conn: &mut mysql_async::Conn,
    rng: &mut TpccRng,
    bars: &Bars,
    w: i64,
) -> Result<u64> {
    let now = now_literal();
    let mut rows = 0;
    let mut customer = Inserter::new(conn, "customer", bars);
    for d in 1..=DISTRICTS {
        for c in 1..=CUSTOMERS {
            let last = if c <= 1000 {
                last_name(c - 1)
            } else {
                rng.last_name()
            };
            let credit = if rng.percent(10) { "BC" } else { "GC" };
            let row = format!(
                "({c},{d},{w},{},'OE',{},{},{},{now},'{credit}',50000.00,{},-10.00,10.00,1,0,{})",
                quote(&rng.alnum(8, 16)),
                quote(&last),
                address(rng),
                quote(&rng.digits(16)),
                basis(rng.uniform(0, 5000)),
                quote(&rng.alnum(300, 500))
            );
            customer.push(row).await?;
        }
    }
    rows += customer.flush().await?;
    let mut history = Inserter::new(conn, "history", bars);
    for d in 1..=DISTRICTS {
        for c in 1..=CUSTOMERS {
            let row = format!(
                "({c},{d},{w},{d},{w},{now},10.00,{})",
                quote(&rng.alnum(12, 24))
            );
            history.push(row).await?;
        }
    }
    rows += history.flush().await?;
    Ok(rows)
}

async fn load_orders(
    conn: &mut mysql_async::Conn,
    rng: &mut TpccRng,
    bars: &Bars,
    w: i64,
) -> Result<u64> {
    let now = now_literal();
    let mut rows = 0;
    for d in 1..=DISTRICTS {
        let mut customers: Vec<i64> = (1..=CUSTOMERS).collect();
        rng.shuffle(&mut customers);
        let mut lines = Vec::new();
        let mut orders = Inserter::new(conn, "orders", bars);
        for (o, &c) in (1..=CUSTOMERS).zip(&customers) {
            let delivered = o <= DELIVERED;
            let count = rng.uniform(5, 15);
            let carrier = if delivered {
                rng.uniform(1, 10).to_string()
            } else {
                "NULL".into()
            };
            orders
                .push(format!("({o},{d},{w},{c},{now},{carrier},{count},1)"))
                .await?;
            for n in 1..=count {
                let (delivery, amount) = if delivered {
                    (now.clone(), "0.00".to_string())
                } else {
                    ("NULL".to_string(), rng.money(1, 999_999))
                };
                lines.push(format!(
                    "({o},{d},{w},{n},{},{w},{delivery},5,{amount},{})",
                    rng.uniform(1, ITEMS),
                    quote(&rng.alnum(24, 24))
                ));
            }
        }
        rows += orders.flush().await?;
        let mut order_line = Inserter::new(conn, "order_line", bars);
        for line in lines {
            order_line.push(line).await?;
        }
        rows += order_line.flush().await?;
        let mut new_order = Inserter::new(conn, "new_order", bars);
        for o in DELIVERED + 1..=CUSTOMERS {
            new_order.push(format!("({o},{d},{w})")).await?;
        }
        rows += new_order.flush().await?;
    }
    Ok(rows)
}
