//! SQLite's sqllogictest corpus (`shared/sqllogictest/`, read in place) over
//! the MySQL protocol: every file runs with `duet_isolation_read_engines` set
//! to `row`, to `columnar`, and left routed (and routed once more with each
//! query a prepared statement, its compared literals lifted into
//! parameters); each run reports `N passed, N failed` per file, and the
//! runs must agree record for record. Pass counts may only grow:
//! each file must pass at least as many records as `tests/slt-baseline.txt`
//! records.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use duet_tests::TestServer;
use duet_tests::slt::{self, Outcome, Protocol};
use mysql_async::prelude::*;

/// The corpus: `$DUET_SLT_DIR`, else `shared/sqllogictest` in an ancestor
/// of this crate.
fn corpus() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DUET_SLT_DIR") {
        return Some(PathBuf::from(dir));
    }
    let here = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").ok()?);
    here.ancestors()
        .map(|a| a.join("shared").join("sqllogictest"))
        .find(|p| p.join("select1.test").is_file())
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in [dir.to_path_buf(), dir.join("evidence")] {
        if let Ok(entries) = std::fs::read_dir(&sub) {
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "test") {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    out
}

/// The minimum pass count per file.
fn baseline() -> BTreeMap<String, usize> {
    let path = Path::new(duet_tests::DATA_DIR).join("slt-baseline.txt");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (name, n) = l.split_once(char::is_whitespace)?;
            Some((name.to_string(), n.trim().parse().ok()?))
        })
        .collect()
}

async fn run_mode(
    t: &TestServer,
    engines: Option<&str>,
    protocol: Protocol,
    files: &[PathBuf],
    root: &Path,
) -> BTreeMap<String, (usize, usize, Vec<Outcome>)> {
    let mut results = BTreeMap::new();
    for (n, file) in files.iter().enumerate() {
        let name = file
            .strip_prefix(root)
            .unwrap_or(file)
            .display()
            .to_string();
        let text = std::fs::read_to_string(file).expect("readable test file");
        let records = slt::parse(&text);
        let mut conn = t.connect().await;
        let db = format!("slt_{}_{:?}_{n}", engines.unwrap_or("routed"), protocol);
        conn.query_drop(format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
        conn.query_drop(format!("USE {db}")).await.unwrap();
        if let Some(e) = engines {
            conn.query_drop(format!("SET duet_isolation_read_engines = '{e}'"))
                .await
                .unwrap();
        }
        let report = slt::run(&mut conn, &records, protocol).await;
        results.insert(name, (report.passed, report.failed, report.outcomes));
        let _ = conn.disconnect().await;
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqllogictest_corpus_row_and_routed_agree() {
    let Some(root) = corpus() else {
        panic!("the sqllogictest corpus was not found: set DUET_SLT_DIR to shared/sqllogictest");
    };
    let files = files(&root);
    assert!(!files.is_empty(), "no .test files in {}", root.display());
    let only = std::env::var("DUET_SLT_ONLY").ok();
    let files: Vec<PathBuf> = files
        .into_iter()
        .filter(|f| {
            only.as_deref()
                .is_none_or(|o| f.to_string_lossy().contains(o))
        })
        .collect();
    let t = TestServer::start().await;
    let row = run_mode(&t, Some("row"), Protocol::Text, &files, &root).await;
    let columnar = run_mode(&t, Some("columnar"), Protocol::Text, &files, &root).await;
    let routed = run_mode(&t, None, Protocol::Text, &files, &root).await;
    // Routed again, each query as a prepared statement with its compared
    // literals as parameters: the kept plans answer as the text does.
    let prepared = run_mode(&t, None, Protocol::Prepared, &files, &root).await;
    let floor = baseline();
    let mut regressions = Vec::new();
    let (mut total_pass, mut total_fail) = (0, 0);
    for (name, (passed, failed, outcomes)) in &row {
        eprintln!("sqllogictest {name}: {passed} passed, {failed} failed");
        if std::env::var_os("DUET_SLT_VERBOSE").is_some() {
            for o in outcomes.iter().filter(|o| !o.passed).take(40) {
                eprintln!("  line {}: {}", o.line, o.detail);
            }
        }
        total_pass += passed;
        total_fail += failed;
        for (mode, run) in [
            ("columnar", &columnar),
            ("routed", &routed),
            ("prepared", &prepared),
        ] {
            let (_, _, other) = &run[name];
            let differ: Vec<String> = outcomes
                .iter()
                .zip(other)
                .filter(|(a, b)| a.passed != b.passed)
                .map(|(a, b)| {
                    format!(
                        "line {}: {}",
                        a.line,
                        if a.passed { &b.detail } else { &a.detail }
                    )
                })
                .take(5)
                .collect();
            assert!(
                differ.is_empty() && outcomes.len() == other.len(),
                "{name}: the row and {mode} runs differ: {differ:?}"
            );
        }
        if let Some(min) = floor.get(name)
            && passed < min
        {
            regressions.push(format!("{name}: {passed} passed, baseline {min}"));
        }
    }
    eprintln!("sqllogictest total: {total_pass} passed, {total_fail} failed");
    assert!(total_pass > 0, "nothing passed");
    assert!(
        regressions.is_empty(),
        "fewer records pass than before: {regressions:?}"
    );
}

/// Duet's own files (`tests/slt/*.slt`): every record passes, with the row
/// engine forced, the columnar replica forced, and routed. Each file runs
/// in a fresh database `slt`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duet_slt_files_pass() {
    let dir = Path::new(duet_tests::DATA_DIR).join("slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/slt exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(files.len() >= 17, "Duet's own .slt files are missing");
    let t = TestServer::start().await;
    let mut failures = Vec::new();
    for mode in [Some("row"), Some("columnar"), None] {
        for file in &files {
            let records = slt::parse(&std::fs::read_to_string(file).expect("readable file"));
            let mut conn = t.connect().await;
            conn.query_drop("DROP DATABASE IF EXISTS slt")
                .await
                .unwrap();
            conn.query_drop("CREATE DATABASE slt").await.unwrap();
            conn.query_drop("USE slt").await.unwrap();
            if let Some(e) = mode {
                conn.query_drop(format!("SET duet_isolation_read_engines = '{e}'"))
                    .await
                    .unwrap();
            }
            let report = slt::run(&mut conn, &records, Protocol::Text).await;
            let name = file
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            eprintln!(
                "{name} ({}): {} passed, {} failed",
                mode.unwrap_or("routed"),
                report.passed,
                report.failed
            );
            for o in report.outcomes.iter().filter(|o| !o.passed) {
                failures.push(format!("{name}:{}: {}", o.line, o.detail));
            }
            let _ = conn.disconnect().await;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
