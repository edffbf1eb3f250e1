//! Runs a phase: OLTP terminals, OLAP streams and the freshness probe at
//! once for a set duration. Each worker keeps its own counters and
//! histograms, merged when the phase ends, so measuring takes no locks.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use mysql_async::prelude::Queryable;
use tokio::sync::watch;
use tokio::time::Instant;

use super::Target;
use super::queries::QUERIES;
use super::random::TpccRng;
use super::tpcc::{Outcome, Terminal, TxnKind, retryable};
use crate::error::Result;

/// Attempts before a transaction that keeps aborting is given up.
const MAX_ATTEMPTS: u32 = 100;
/// Distinct error messages kept per phase.
const MAX_ERRORS: usize = 20;

/// What a phase runs.
#[derive(Debug, Clone)]
pub struct PhasePlan {
    pub name: &'static str,
    pub duration: Duration,
    pub oltp_workers: usize,
    pub olap_workers: usize,
    pub warehouses: u32,
    pub seed: u64,
}

/// Latencies in microseconds, 1 µs to 1 hour, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// One transaction type's figures.
#[derive(Debug, Clone)]
pub struct TxnStats {
    pub committed: u64,
    /// Rolled back by the transaction's logic (New-Order's unused item).
    pub rolled_back: u64,
    /// Attempts the server aborted and the terminal retried.
    pub retries: u64,
    /// Transactions given up: a non-retryable error or too many aborts.
    pub failed: u64,
    pub latency: Histogram<u64>,
}

impl Default for TxnStats {
    fn default() -> Self {
        TxnStats {
            committed: 0,
            rolled_back: 0,
            retries: 0,
            failed: 0,
            latency: histogram(),
        }
    }
}

impl TxnStats {
    fn merge(&mut self, other: &TxnStats) {
        self.committed += other.committed;
        self.rolled_back += other.rolled_back;
        self.retries += other.retries;
        self.failed += other.failed;
        let _ = self.latency.add(&other.latency);
    }
}

/// One analytical query's figures.
#[derive(Debug, Clone, Default)]
pub struct QueryStats {
    /// Seconds of each completed run.
    pub runs: Vec<f64>,
    pub failed: u64,
}

/// Everything a phase measured.
#[derive(Debug, Clone, Default)]
pub struct PhaseStats {
    pub plan_name: String,
    pub seconds: f64,
    pub txns: BTreeMap<TxnKind, TxnStats>,
    pub queries: Vec<QueryStats>,
    /// Per second of the phase: New-Orders committed, transactions
    /// committed, analytical queries completed.
    pub new_orders_per_second: Vec<u64>,
    pub txns_per_second: Vec<u64>,
    pub queries_per_second: Vec<u64>,
    /// `(seconds into the phase, delay in ms)` of each freshness sample.
    pub freshness: Vec<(f64, f64)>,
    /// The engine the freshness probe read ("columnar" on Duet).
    pub freshness_engine: String,
    /// Distinct error messages with their counts.
    pub errors: BTreeMap<String, u64>,
    pub oltp_workers: usize,
    pub olap_workers: usize,
}

impl PhaseStats {
    fn merge(&mut self, other: PhaseStats) {
        for (kind, stats) in &other.txns {
            self.txns.entry(*kind).or_default().merge(stats);
        }
        if self.queries.len() < other.queries.len() {
            self.queries
                .resize(other.queries.len(), QueryStats::default());
        }
        for (mine, theirs) in self.queries.iter_mut().zip(other.queries) {
            mine.runs.extend(theirs.runs);
            mine.failed += theirs.failed;
        }
        add_series(
            &mut self.new_orders_per_second,
            &other.new_orders_per_second,
        );
        add_series(&mut self.txns_per_second, &other.txns_per_second);
        add_series(&mut self.queries_per_second, &other.queries_per_second);
        self.freshness.extend(other.freshness);
        if !other.freshness_engine.is_empty() {
            self.freshness_engine = other.freshness_engine;
        }
        for (message, count) in other.errors {
            if self.errors.len() < MAX_ERRORS || self.errors.contains_key(&message) {
                *self.errors.entry(message).or_default() += count;
            }
        }
    }

    fn error(&mut self, e: &impl std::fmt::Display) {
        let message = e.to_string();
        if self.errors.len() < MAX_ERRORS || self.errors.contains_key(&message) {
            *self.errors.entry(message).or_default() += 1;
        }
    }

    /// New-Orders committed per minute.
    pub fn tpmc(&self) -> f64 {
        let committed = self.txns.get(&TxnKind::NewOrder).map_or(0, |s| s.committed);
        per_minute(committed, self.seconds)
    }

    /// Analytical queries completed per hour.
    pub fn qph(&self) -> f64 {
        let done: usize = self.queries.iter().map(|q| q.runs.len()).sum();
        if self.seconds > 0.0 {
            done as f64 * 3600.0 / self.seconds
        } else {
            0.0
        }
    }
}

fn per_minute(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 * 60.0 / seconds
    } else {
        0.0
    }
}

fn add_series(into: &mut Vec<u64>, from: &[u64]) {
    if into.len() < from.len() {
        into.resize(from.len(), 0);
    }
    for (a, b) in into.iter_mut().zip(from) {
        *a += b;
    }
}

fn bump(series: &mut Vec<u64>, started: Instant) {
    let second = started.elapsed().as_secs() as usize;
    if series.len() <= second {
        series.resize(second + 1, 0);
    }
    series[second] += 1;
}

/// A committed New-Order the freshness probe looks for.
#[derive(Debug, Clone, Copy)]
struct Committed {
    w: i64,
    d: i64,
    o_id: i64,
    at: Instant,
}

/// Runs one phase to its end and returns its merged figures.
pub async fn run_phase(target: &Target, plan: &PhasePlan) -> Result<PhaseStats> {
    // Connect everything before the clock starts.
    let mut terminals = Vec::new();
    for n in 0..plan.oltp_workers {
        terminals.push(Terminal {
            conn: target.connect().await?,
            rng: TpccRng::new(plan.seed.wrapping_add(1 + n as u64), target.constants),
            w: (n as i64 % i64::from(plan.warehouses)) + 1,
            warehouses: i64::from(plan.warehouses),
        });
    }
    let mut streams = Vec::new();
    for _ in 0..plan.olap_workers {
        streams.push(target.connect().await?);
    }
    let probe = if plan.oltp_workers > 0 {
        Some(target.connect().await?)
    } else {
        None
    };

    let started = Instant::now();
    let deadline = started + plan.duration;
    let (publish, watch) = watch::channel(None::<Committed>);
    let publish = Arc::new(publish);
    let mut tasks = tokio::task::JoinSet::new();
    for terminal in terminals {
        let publish = Arc::clone(&publish);
        tasks.spawn(oltp_worker(terminal, started, deadline, publish));
    }
    for (n, conn) in streams.into_iter().enumerate() {
        tasks.spawn(olap_worker(conn, n, started, deadline));
    }
    if let Some(conn) = probe {
        tasks.spawn(freshness_probe(conn, watch, started, deadline));
    }
    drop(publish);
    let mut stats = PhaseStats {
        plan_name: plan.name.to_string(),
        queries: vec![QueryStats::default(); QUERIES.len()],
        oltp_workers: plan.oltp_workers,
        olap_workers: plan.olap_workers,
        ..PhaseStats::default()
    };
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(worker) => stats.merge(worker),
            Err(e) => stats.error(&format!("worker panicked: {e}")),
        }
    }
    stats.seconds = plan.duration.as_secs_f64();
    Ok(stats)
}

async fn oltp_worker(
    mut terminal: Terminal,
    started: Instant,
    deadline: Instant,
    publish: Arc<watch::Sender<Option<Committed>>>,
) -> PhaseStats {
    let mut stats = PhaseStats::default();
    while Instant::now() < deadline {
        let kind = TxnKind::pick(&mut terminal.rng);
        let input = terminal.input(kind);
        let begun = Instant::now();
        let mut attempts = 0;
        let outcome = loop {
            attempts += 1;
            match terminal.execute(&input).await {
                Ok(outcome) => break Some(outcome),
                Err(e) if retryable(&e) && attempts < MAX_ATTEMPTS => {
                    stats.txns.entry(kind).or_default().retries += 1;
                    if Instant::now() >= deadline {
                        break None;
                    }
                }
                Err(e) => {
                    stats.error(&format!("{}: {e}", kind.name()));
                    stats.txns.entry(kind).or_default().failed += 1;
                    if !retryable(&e)
                        && matches!(e, mysql_async::Error::Io(_) | mysql_async::Error::Driver(_))
                    {
                        // The connection is gone: this terminal is done.
                        return stats;
                    }
                    break None;
                }
            }
        };
        let entry = stats.txns.entry(kind).or_default();
        match outcome {
            Some(Outcome::RolledBack) => entry.rolled_back += 1,
            Some(outcome) => {
                entry.committed += 1;
                let micros = begun.elapsed().as_micros() as u64;
                let _ = entry.latency.record(micros.max(1));
                bump(&mut stats.txns_per_second, started);
                if let Outcome::NewOrder { w, d, o_id } = outcome {
                    bump(&mut stats.new_orders_per_second, started);
                    publish.send_replace(Some(Committed {
                        w,
                        d,
                        o_id,
                        at: Instant::now(),
                    }));
                }
            }
            None => {}
        }
    }
    stats
}

async fn olap_worker(
    mut conn: mysql_async::Conn,
    stream: usize,
    started: Instant,
    deadline: Instant,
) -> PhaseStats {
    let mut stats = PhaseStats {
        queries: vec![QueryStats::default(); QUERIES.len()],
        ..PhaseStats::default()
    };
    // Streams start at different queries so that they overlap less.
    let mut next = stream * 7 % QUERIES.len();
    loop {
        let begun = Instant::now();
        match tokio::time::timeout_at(deadline, conn.query_drop(QUERIES[next])).await {
            // Unfinished at the end of the phase: not counted. Dropping the
            // connection abandons the query.
            Err(_) => break,
            Ok(Ok(())) => {
                stats.queries[next].runs.push(begun.elapsed().as_secs_f64());
                bump(&mut stats.queries_per_second, started);
            }
            Ok(Err(e)) => {
                stats.queries[next].failed += 1;
                stats.error(&format!("Q{}: {e}", next + 1));
                if matches!(e, mysql_async::Error::Io(_) | mysql_async::Error::Driver(_)) {
                    break;
                }
            }
        }
        next = (next + 1) % QUERIES.len();
    }
    stats
}

/// After each committed New-Order it is told of, polls an analytical read
/// (on the columnar engine where the server has one) until the order is
/// visible, and records the delay from the commit's acknowledgement.
async fn freshness_probe(
    mut conn: mysql_async::Conn,
    mut watch: watch::Receiver<Option<Committed>>,
    started: Instant,
    deadline: Instant,
) -> PhaseStats {
    let engine = match conn
        .query_drop("SET SESSION duet_isolation_read_engines = 'columnar'")
        .await
    {
        Ok(()) => "columnar",
        Err(_) => "server default",
    };
    let mut stats = PhaseStats {
        freshness_engine: engine.into(),
        ..PhaseStats::default()
    };
    let sql = "SELECT COUNT(*) FROM orders WHERE o_w_id = ? AND o_d_id = ? AND o_id = ?";
    loop {
        // Wait for the next New-Order, sampling at most every 100 ms.
        tokio::time::sleep(Duration::from_millis(100)).await;
        match tokio::time::timeout_at(deadline, watch.changed()).await {
            Ok(Ok(())) => {}
            _ => break,
        }
        let Some(order) = *watch.borrow_and_update() else {
            continue;
        };
        loop {
            if Instant::now() >= deadline {
                return stats;
            }
            let found: std::result::Result<Option<i64>, _> =
                conn.exec_first(sql, (order.w, order.d, order.o_id)).await;
            match found {
                Ok(Some(n)) if n > 0 => {
                    let delay = order.at.elapsed().as_secs_f64() * 1000.0;
                    let at = (order.at - started).as_secs_f64();
                    stats.freshness.push((at, delay));
                    break;
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(1)).await,
                Err(e) => {
                    stats.error(&format!("freshness probe: {e}"));
                    return stats;
                }
            }
        }
    }
    stats
}

/// Runs query `n` (1-based) once and returns its rows, as text.
pub async fn run_query(conn: &mut mysql_async::Conn, n: usize) -> Result<Vec<Vec<Option<String>>>> {
    use crate::error::Context;
    let rows: Vec<mysql_async::Row> = conn
        .query(QUERIES[n - 1])
        .await
        .context(|| format!("Q{n}"))?;
    Ok(rows
        .into_iter()
        .map(|row| {
            (0..row.len())
                .map(|i| row.get::<Option<String>, _>(i).flatten())
                .collect()
        })
        .collect())
}
