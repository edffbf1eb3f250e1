//! A concurrent bank on the row store: writer threads move money between
//! accounts (retrying conflicts), reader threads check that every snapshot
//! sums to the same total. Bounded in count; real threads and real RocksDB.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use duet_storage::Error;
use duet_storage::engine::rocks::{RocksConfig, RocksEngine};
use duet_storage::tso::Tso;
use duet_storage::txn::{LocalStore, TxnClient, TxnOptions};

const ACCOUNTS: u64 = 8;
const START: u64 = 100;

fn account(i: u64) -> Vec<u8> {
    format!("acct{i}").into_bytes()
}

fn balance(v: Option<Vec<u8>>) -> u64 {
    String::from_utf8(v.expect("account exists"))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn concurrent_transfers_keep_every_snapshot_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(RocksEngine::open(dir.path(), &RocksConfig::default()).unwrap());
    let tso = Arc::new(Tso::open(Arc::clone(&engine)).unwrap());
    let store = Arc::new(LocalStore::new(engine, false));
    let options = TxnOptions {
        lock_ttl_ms: 3000,
        pessimistic_lock_ttl_ms: 20_000,
        lock_wait: Duration::from_secs(10),
        backoff: Duration::from_millis(1),
        one_pc: true,
    };
    let client = TxnClient::new(store, tso, options);
    let mut init = client.begin().unwrap();
    for i in 0..ACCOUNTS {
        init.put(account(i), START.to_string());
    }
    init.commit().unwrap();

    let committed = Arc::new(AtomicU64::new(0));
    let conflicts = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for w in 0..4u64 {
        let (client, committed, conflicts) = (
            client.clone(),
            Arc::clone(&committed),
            Arc::clone(&conflicts),
        );
        threads.push(std::thread::spawn(move || {
            for n in 0..150u64 {
                let (from, to) = ((w + n) % ACCOUNTS, (w * 3 + n * 5 + 1) % ACCOUNTS);
                if from == to {
                    continue;
                }
                loop {
                    let mut t = client.begin().unwrap();
                    let (a, b) = (
                        balance(t.get(&account(from)).unwrap()),
                        balance(t.get(&account(to)).unwrap()),
                    );
                    let amount = a.min(n % 7 + 1);
                    t.put(account(from), (a - amount).to_string());
                    t.put(account(to), (b + amount).to_string());
                    match t.commit() {
                        Ok(_) => {
                            committed.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Err(e) if e.is_retryable() => {
                            conflicts.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("transfer failed: {e}"),
                    }
                }
            }
        }));
    }
    for _ in 0..2 {
        let client = client.clone();
        threads.push(std::thread::spawn(move || {
            for _ in 0..100 {
                let t = client.begin().unwrap();
                let rows = match t.scan(b"acct", Some(b"acct~"), 100) {
                    Ok(rows) => rows,
                    Err(Error::KeyIsLocked(_)) => continue,
                    Err(e) => panic!("scan failed: {e}"),
                };
                let total: u64 = rows.into_iter().map(|(_, v)| balance(Some(v))).sum();
                assert_eq!(
                    total,
                    ACCOUNTS * START,
                    "a snapshot saw money appear or vanish"
                );
            }
        }));
    }
    for t in threads {
        t.join().expect("thread panicked");
    }
    let t = client.begin().unwrap();
    let total: u64 = (0..ACCOUNTS)
        .map(|i| balance(t.get(&account(i)).unwrap()))
        .sum();
    assert_eq!(total, ACCOUNTS * START);
    assert!(
        committed.load(Ordering::Relaxed) > 500,
        "most transfers commit"
    );
    eprintln!(
        "bank: {} transfers, {} retried conflicts",
        committed.load(Ordering::Relaxed),
        conflicts.load(Ordering::Relaxed)
    );
}
