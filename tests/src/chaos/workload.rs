//! The workloads of a fault run and what they record: bank transfers,
//! whose total every successful read must see (routed, from the row store
//! and from the columnar replicas), unique inserts, every acknowledged
//! one of which must be there at the end, on every node and both engines,
//! and list appends ([`append`](super::append)) for the snapshot
//! isolation checker.
//! Every call has a deadline: a paused node holds its connections open and
//! silent.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mysql_async::prelude::*;

use super::append;
use super::elle::Txn;

pub const ACCOUNTS: i64 = 10;
pub const OPENING: i64 = 100;
pub const CALL: Duration = Duration::from_secs(5);

/// What the clients saw.
#[derive(Debug, Default)]
pub struct Record {
    pub transfers: u64,
    pub failed_transfers: u64,
    pub reads: u64,
    /// Reads that saw a wrong total or account count, with what they saw.
    pub bad_reads: Vec<String>,
    /// Inserts acknowledged.
    pub acked: BTreeSet<i64>,
    /// Inserts that failed: they may or may not have happened.
    pub unknown: BTreeSet<i64>,
    /// The list-append transactions, for [`elle::check`].
    pub history: Vec<Txn>,
}

/// The clients of a run; they stop when [`Workload::stop`] is called.
pub struct Workload {
    pub record: Arc<Mutex<Record>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

pub type Outcome<T> = Result<T, String>;

pub async fn call<T>(f: impl Future<Output = Result<T, mysql_async::Error>>) -> Outcome<T> {
    match tokio::time::timeout(CALL, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

pub async fn connect(url: &str) -> Outcome<mysql_async::Conn> {
    call(mysql_async::Conn::from_url(url)).await
}

/// The tables, through `url`.
pub async fn setup(url: &str) -> Outcome<()> {
    let mut c = connect(url).await?;
    let values: Vec<String> = (0..ACCOUNTS).map(|i| format!("({i}, {OPENING})")).collect();
    for statement in [
        "CREATE DATABASE IF NOT EXISTS chaos".to_string(),
        "CREATE TABLE chaos.bank (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)".into(),
        format!("INSERT INTO chaos.bank VALUES {}", values.join(",")),
        "CREATE TABLE chaos.s (id BIGINT PRIMARY KEY, node BIGINT NOT NULL)".into(),
        append::TABLE.into(),
    ] {
        call(c.query_drop(statement)).await?;
    }
    let _ = c.disconnect().await;
    Ok(())
}

/// One row of text values.
async fn row(c: &mut mysql_async::Conn, q: &str) -> Outcome<Vec<String>> {
    let rows: Vec<mysql_async::Row> = call(c.query(q)).await?;
    let first = rows.into_iter().next().ok_or("no row")?;
    Ok((first.unwrap().into_iter())
        .map(|v| match v {
            mysql_async::Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
            mysql_async::Value::NULL => "NULL".into(),
            other => format!("{other:?}"),
        })
        .collect())
}

/// The reads that check the bank: routed, row store, columnar replicas.
const TOTALS: [&str; 3] = [
    "SELECT COUNT(*), SUM(balance) FROM chaos.bank",
    "SELECT /*+ READ_FROM_STORAGE(ROW[bank]) */ COUNT(*), SUM(balance) FROM chaos.bank",
    "SELECT /*+ READ_FROM_STORAGE(COLUMNAR[bank]) */ COUNT(*), SUM(balance) FROM chaos.bank",
];

fn total_is_right(seen: &[String]) -> bool {
    seen == [ACCOUNTS.to_string(), (ACCOUNTS * OPENING).to_string()]
}

impl Workload {
    /// Per node: a transferring client, a reading one, an appending one
    /// and an inserting one.
    pub fn start(rt: &tokio::runtime::Handle, urls: &[String]) -> Workload {
        let record = Arc::new(Mutex::new(Record::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let next_id = Arc::new(AtomicI64::new(1));
        let next_value = Arc::new(AtomicU64::new(1));
        let mut tasks = Vec::new();
        for (n, url) in urls.iter().enumerate() {
            let (url, r, s) = (url.clone(), Arc::clone(&record), Arc::clone(&stop));
            tasks.push(rt.spawn(transfers(url.clone(), n as u64, r.clone(), s.clone())));
            tasks.push(rt.spawn(reads(url.clone(), r.clone(), s.clone())));
            let next = Arc::clone(&next_value);
            tasks.push(rt.spawn(append::client(
                url.clone(),
                n as u64,
                next,
                r.clone(),
                s.clone(),
            )));
            tasks.push(rt.spawn(inserts(url, n as i64, r, s, Arc::clone(&next_id))));
        }
        Workload {
            record,
            stop,
            tasks,
        }
    }

    /// Stops the clients and waits for them.
    pub async fn stop(self) -> Arc<Mutex<Record>> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            let _ = t.await;
        }
        self.record
    }
}

pub fn lock(record: &Mutex<Record>) -> std::sync::MutexGuard<'_, Record> {
    record.lock().unwrap_or_else(|e| e.into_inner())
}

pub async fn pause() {
    tokio::time::sleep(Duration::from_millis(20)).await;
}

async fn transfers(url: String, seed: u64, record: Arc<Mutex<Record>>, stop: Arc<AtomicBool>) {
    let mut n = seed;
    while !stop.load(Ordering::SeqCst) {
        let Ok(mut c) = connect(&url).await else {
            pause().await;
            continue;
        };
        while !stop.load(Ordering::SeqCst) {
            n = n
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let from = (n >> 33) as i64 % ACCOUNTS;
            let to = (from + 1 + (n >> 40) as i64 % (ACCOUNTS - 1)) % ACCOUNTS;
            let amount = 1 + (n >> 50) as i64 % 5;
            let done: Outcome<()> = async {
                call(c.query_drop("BEGIN")).await?;
                let take =
                    format!("UPDATE chaos.bank SET balance = balance - {amount} WHERE id = {from}");
                let give =
                    format!("UPDATE chaos.bank SET balance = balance + {amount} WHERE id = {to}");
                call(c.query_drop(take)).await?;
                call(c.query_drop(give)).await?;
                call(c.query_drop("COMMIT")).await
            }
            .await;
            let mut r = lock(&record);
            if done.is_ok() {
                r.transfers += 1;
            } else {
                r.failed_transfers += 1;
                drop(r);
                break;
            }
        }
    }
}

async fn reads(url: String, record: Arc<Mutex<Record>>, stop: Arc<AtomicBool>) {
    let mut turn = 0;
    while !stop.load(Ordering::SeqCst) {
        let Ok(mut c) = connect(&url).await else {
            pause().await;
            continue;
        };
        while !stop.load(Ordering::SeqCst) {
            turn += 1;
            let q = TOTALS[turn % TOTALS.len()];
            match row(&mut c, q).await {
                Ok(seen) => {
                    let mut r = lock(&record);
                    r.reads += 1;
                    if !total_is_right(&seen) {
                        r.bad_reads.push(format!("{url}: {q}: {seen:?}"));
                    }
                }
                Err(_) => break,
            }
            pause().await;
        }
    }
}

async fn inserts(
    url: String,
    node: i64,
    record: Arc<Mutex<Record>>,
    stop: Arc<AtomicBool>,
    next_id: Arc<AtomicI64>,
) {
    while !stop.load(Ordering::SeqCst) {
        let Ok(mut c) = connect(&url).await else {
            pause().await;
            continue;
        };
        while !stop.load(Ordering::SeqCst) {
            let id = next_id.fetch_add(1, Ordering::SeqCst);
            let insert = format!("INSERT INTO chaos.s VALUES ({id}, {node})");
            let done = call(c.query_drop(insert)).await;
            let mut r = lock(&record);
            if done.is_ok() {
                r.acked.insert(id);
            } else {
                r.unknown.insert(id);
                drop(r);
                break;
            }
        }
    }
}

/// Checks, through `url`, the bank's total on each engine and that the
/// inserted rows are exactly the acknowledged ones and some of the
/// unknown; returns what is wrong.
pub async fn final_check(url: &str, record: &Record) -> Outcome<Vec<String>> {
    let mut c = connect(url).await?;
    let mut wrong = Vec::new();
    for q in TOTALS {
        let seen = row(&mut c, q).await?;
        if !total_is_right(&seen) {
            wrong.push(format!("{url}: {q}: {seen:?}"));
        }
    }
    for hint in ["ROW", "COLUMNAR"] {
        let q = format!("SELECT /*+ READ_FROM_STORAGE({hint}[s]) */ id FROM chaos.s");
        let ids: Vec<i64> = call(c.query(q.as_str())).await?;
        let present: BTreeSet<i64> = ids.iter().copied().collect();
        if present.len() != ids.len() {
            wrong.push(format!("{url} {hint}: a row twice"));
        }
        let lost: Vec<&i64> = record.acked.difference(&present).collect();
        if !lost.is_empty() {
            wrong.push(format!("{url} {hint}: acknowledged inserts lost: {lost:?}"));
        }
        let invented: Vec<&i64> = (present.iter())
            .filter(|id| !record.acked.contains(id) && !record.unknown.contains(id))
            .collect();
        if !invented.is_empty() {
            wrong.push(format!("{url} {hint}: rows never inserted: {invented:?}"));
        }
    }
    let _ = c.disconnect().await;
    Ok(wrong)
}
