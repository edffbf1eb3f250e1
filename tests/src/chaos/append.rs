//! The list-append workload that feeds [`elle`](super::elle): transactions
//! of a few appends to and reads of short lists, kept as text in
//! `chaos.lists` (`k` → `"v1,v2,…"`), each append a value never used
//! before, through every node. What each transaction did and how it ended
//! is recorded as the checker's history. A transaction whose `COMMIT`
//! answer was lost, or failed with anything but a conflict, is `Unknown`:
//! it may have committed. Keys rotate (a window of [`KEYS`] keys moves on
//! every [`PER_KEY`] values) so that lists stay short and reads cheap.
//!
//! Half the clients run optimistic transactions with plain reads; the
//! others run pessimistic ones (the default) whose reads lock
//! (`FOR UPDATE`). A pessimistic transaction's plain read sees its start
//! snapshot while its writes see the latest rows (as InnoDB's repeatable
//! read does), so a history of those may hold a G-single that snapshot
//! isolation forbids and the checker would rightly flag; locking reads
//! keep the whole history within snapshot isolation. With
//! `DUET_CHAOS_TRACE` set, each transaction's number in the history and its
//! client's mode are printed, to tell which ran an anomaly's transactions.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mysql_async::prelude::*;

use super::elle::{Mop, Outcome as TxnOutcome, Txn};
use super::workload::{CALL, Outcome, Record, connect, lock, pause};

/// Keys in use at once.
pub const KEYS: u64 = 4;
/// Values appended before the window of keys moves on by one.
pub const PER_KEY: u64 = 40;

pub const TABLE: &str = "CREATE TABLE chaos.lists (k BIGINT PRIMARY KEY, v TEXT NOT NULL)";

/// MySQL errors after which a transaction surely did not commit: a
/// conflict (1213) or a lock wait given up (1205).
const ABORTS: [u16; 2] = [1213, 1205];

/// How a client runs its transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `duet_txn_mode = 'optimistic'`, plain reads.
    Optimistic,
    /// The default mode, reads `FOR UPDATE`.
    Pessimistic,
}

impl Mode {
    /// Every other client is optimistic.
    pub fn of(client: u64) -> Mode {
        if client.is_multiple_of(2) {
            Mode::Optimistic
        } else {
            Mode::Pessimistic
        }
    }
}

/// One client's loop through `url` until `stop`; its transactions go to
/// the record's history.
pub async fn client(
    url: String,
    seed: u64,
    next: Arc<AtomicU64>,
    record: Arc<Mutex<Record>>,
    stop: Arc<AtomicBool>,
) {
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while !stop.load(Ordering::SeqCst) {
        let mode = Mode::of(seed);
        let Ok(mut c) = connect(&url).await else {
            pause().await;
            continue;
        };
        if mode == Mode::Optimistic
            && timed(c.query_drop("SET duet_txn_mode = 'optimistic'"))
                .await
                .is_err()
        {
            pause().await;
            continue;
        }
        while !stop.load(Ordering::SeqCst) {
            let ops = plan(&mut rng, &next);
            let (txn, connection_lives) = run(&mut c, ops, mode).await;
            {
                let mut r = lock(&record);
                if std::env::var_os("DUET_CHAOS_TRACE").is_some() {
                    eprintln!("append: T{} {mode:?} seed {seed}", r.history.len());
                }
                r.history.push(txn);
            }
            if !connection_lives {
                break;
            }
            pause().await;
        }
    }
}

fn step(rng: &mut u64) -> u64 {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    *rng
}

/// One to four operations on the keys of the current window.
fn plan(rng: &mut u64, next: &AtomicU64) -> Vec<Mop> {
    let n = 1 + step(rng) % 4;
    (0..n)
        .map(|_| {
            let window = next.load(Ordering::SeqCst) / PER_KEY;
            let key = window + step(rng) % KEYS;
            if step(rng).is_multiple_of(2) {
                Mop::Append {
                    key,
                    value: next.fetch_add(1, Ordering::SeqCst),
                }
            } else {
                Mop::Read { key, value: None }
            }
        })
        .collect()
}

/// How a statement failed: the server answered with an error (the
/// connection is in step), or the answer was lost (a timeout, a broken
/// socket; a dropped call may leave its answer on the wire, so the
/// connection must not carry another statement).
enum Failed {
    Server(u16),
    Lost,
}

async fn timed<T>(f: impl Future<Output = Result<T, mysql_async::Error>>) -> Result<T, Failed> {
    match tokio::time::timeout(CALL, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(mysql_async::Error::Server(e))) => Err(Failed::Server(e.code)),
        _ => Err(Failed::Lost),
    }
}

/// Runs one transaction; what it saw, how it ended, and whether the
/// connection can carry the next one.
async fn run(c: &mut mysql_async::Conn, mut ops: Vec<Mop>, mode: Mode) -> (Txn, bool) {
    let ended = |ops: Vec<Mop>, outcome: TxnOutcome| Txn { ops, outcome };
    if let Err(f) = timed(c.query_drop("BEGIN")).await {
        return (
            ended(ops, TxnOutcome::Aborted),
            matches!(f, Failed::Server(_)),
        );
    }
    for i in 0..ops.len() {
        match op(c, &mut ops[i], mode).await {
            Ok(()) => {}
            // Nothing was committed; the rollback only frees the session.
            Err(Failed::Server(_)) => {
                let lives = timed(c.query_drop("ROLLBACK")).await.is_ok();
                return (ended(ops, TxnOutcome::Aborted), lives);
            }
            // Without a COMMIT the server rolls back when the client goes.
            Err(Failed::Lost) => return (ended(ops, TxnOutcome::Aborted), false),
        }
    }
    match timed(c.query_drop("COMMIT")).await {
        Ok(()) => (ended(ops, TxnOutcome::Committed), true),
        Err(Failed::Server(code)) if ABORTS.contains(&code) => {
            (ended(ops, TxnOutcome::Aborted), true)
        }
        Err(Failed::Server(_)) => (ended(ops, TxnOutcome::Unknown), true),
        Err(Failed::Lost) => (ended(ops, TxnOutcome::Unknown), false),
    }
}

async fn op(c: &mut mysql_async::Conn, op: &mut Mop, mode: Mode) -> Result<(), Failed> {
    match op {
        Mop::Append { key, value } => {
            let q = format!(
                "INSERT INTO chaos.lists VALUES ({key}, '{value}') \
                 ON DUPLICATE KEY UPDATE v = CONCAT(v, ',{value}')"
            );
            timed(c.query_drop(q)).await
        }
        Mop::Read { key, value } => {
            let lock = match mode {
                Mode::Optimistic => "",
                Mode::Pessimistic => " FOR UPDATE",
            };
            let q = format!("SELECT v FROM chaos.lists WHERE k = {key}{lock}");
            let rows: Vec<String> = timed(c.query(q)).await?;
            let list = match rows.first() {
                None => Vec::new(),
                Some(text) => parse(text).map_err(|_| Failed::Lost)?,
            };
            *value = Some(list);
            Ok(())
        }
    }
}

fn parse(text: &str) -> Outcome<Vec<u64>> {
    (text.split(','))
        .map(|v| {
            v.parse()
                .map_err(|_| format!("a list value {v:?} in {text:?}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_plans_stay_in_the_window() {
        assert_eq!(parse("3,10,11").unwrap(), vec![3, 10, 11]);
        assert!(parse("3,,4").is_err());
        let next = AtomicU64::new(5 * PER_KEY);
        let mut rng = 7;
        for _ in 0..100 {
            for op in plan(&mut rng, &next) {
                let key = match op {
                    Mop::Append { key, value } => {
                        assert!(value >= 5 * PER_KEY);
                        key
                    }
                    Mop::Read { key, value } => {
                        assert_eq!(value, None);
                        key
                    }
                };
                let window = next.load(Ordering::SeqCst) / PER_KEY;
                assert!(key >= 5 && key < window + KEYS, "{key}");
            }
        }
    }
}
