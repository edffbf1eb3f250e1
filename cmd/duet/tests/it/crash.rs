//! A process killed in the middle of two-phase commit: the test re-runs its
//! own binary as a child that commits through a real RocksDB directory and
//! aborts (no destructors, no flush) right after prewrite or right after the
//! primary's commit. After the "restart", readers must see each transaction
//! all or nothing.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use duet_storage::engine::rocks::{RocksConfig, RocksEngine};
use duet_storage::tso::Tso;
use duet_storage::txn::{CommitFault, LocalStore, TxnClient, TxnOptions};

type Client = TxnClient<LocalStore<RocksEngine>>;

const CHILD_DIR: &str = "DUET_CRASH_CHILD_DIR";
const CHILD_STAGE: &str = "DUET_CRASH_CHILD_STAGE";
const TEST_NAME: &str = "crash::process_abort_mid_commit_is_all_or_nothing";

fn client(dir: &Path) -> Client {
    let engine = Arc::new(RocksEngine::open(dir, &RocksConfig::default()).expect("open"));
    let tso = Arc::new(Tso::open(Arc::clone(&engine)).expect("tso"));
    let store = Arc::new(LocalStore::new(engine, true));
    let options = TxnOptions {
        lock_ttl_ms: 1,
        pessimistic_lock_ttl_ms: 20_000,
        lock_wait: Duration::from_secs(5),
        backoff: Duration::from_millis(2),
        one_pc: true,
    };
    TxnClient::new(store, tso, options)
}

fn keys(prefix: u8) -> Vec<Vec<u8>> {
    (0..10u8).map(|i| vec![prefix, i]).collect()
}

/// In the child: one full commit, then a commit cut short by `abort`.
fn child(dir: &Path, stage: &str) -> ! {
    let c = client(dir);
    let mut done = c.begin().expect("begin");
    for k in keys(b'a') {
        done.put(k.clone(), k);
    }
    done.commit().expect("first commit");
    let mut cut = c.begin().expect("begin");
    for k in keys(b'b') {
        // Long values go to the default CF, so rollback has more to clean.
        cut.put(k, vec![9u8; 300]);
    }
    let fault = if stage == "prewrite" {
        CommitFault::AfterPrewrite
    } else {
        CommitFault::AfterPrimary
    };
    cut.commit_with_fault(Some(fault)).expect("partial commit");
    std::process::abort();
}

#[test]
fn process_abort_mid_commit_is_all_or_nothing() {
    if let (Some(dir), Some(stage)) = (std::env::var_os(CHILD_DIR), std::env::var_os(CHILD_STAGE)) {
        child(Path::new(&dir), &stage.to_string_lossy());
    }
    for stage in ["prewrite", "primary"] {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_STAGE, stage)
            .status()
            .expect("child runs");
        assert!(!status.success(), "the child must die by abort");
        let c = client(dir.path());
        std::thread::sleep(Duration::from_millis(5)); // past the 1 ms lock TTL
        let t = c.begin().unwrap();
        for k in keys(b'a') {
            assert_eq!(
                t.get(&k).unwrap(),
                Some(k.clone()),
                "{stage}: committed transaction intact"
            );
        }
        let expected = (stage == "primary").then(|| vec![9u8; 300]);
        for k in keys(b'b') {
            assert_eq!(
                t.get(&k).unwrap(),
                expected,
                "{stage}: cut transaction is all or nothing"
            );
        }
    }
}
