//! CH-benCHmark against an embedded Duet at one warehouse: the loader, each
//! TPC-C transaction, each of the 22 analytical queries, a short mixed run
//! with its report, and the consistency checks passing on good data and
//! failing on deliberately broken data. Correctness, not speed.

use std::time::Duration;

use duet_bench::ch::check::check;
use duet_bench::ch::driver::{PhasePlan, run_phase, run_query};
use duet_bench::ch::load::load;
use duet_bench::ch::queries::QUERIES;
use duet_bench::ch::random::TpccRng;
use duet_bench::ch::report::Report;
use duet_bench::ch::tpcc::{Outcome, Terminal, TxnKind};
use duet_bench::ch::{Embedded, Target};
use mysql_async::prelude::Queryable;

async fn count(conn: &mut mysql_async::Conn, sql: &str) -> i64 {
    conn.query_first::<i64, _>(sql).await.unwrap().unwrap()
}

fn failed(conditions: &[duet_bench::ch::check::Condition]) -> Vec<u8> {
    conditions
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ch_benchmark_loads_runs_and_checks_one_warehouse() {
    let dir = tempfile::tempdir().unwrap();
    let node = Embedded::start(&dir.path().join("duet-data"), true)
        .await
        .unwrap();
    let target: Target = node.target("ch", 7).unwrap();

    // The loader: every table at its TPC-C size for W=1.
    let loaded = load(&target, 1, 4, 7, false).await.unwrap();
    let mut conn = target.connect().await.unwrap();
    for (table, rows) in [
        ("warehouse", 1),
        ("district", 10),
        ("customer", 30_000),
        ("history", 30_000),
        ("orders", 30_000),
        ("new_order", 9_000),
        ("item", 100_000),
        ("stock", 100_000),
        ("supplier", 10_000),
        ("nation", 62),
        ("region", 5),
    ] {
        let n = count(&mut conn, &format!("SELECT COUNT(*) FROM {table}")).await;
        assert_eq!(n, rows, "{table}");
    }
    let lines = count(&mut conn, "SELECT COUNT(*) FROM order_line").await;
    assert_eq!(
        loaded.rows as i64,
        30_000 * 3 + 9_000 + 200_000 + 11 + 10_067 + lines
    );
    assert!((250_000..=350_000).contains(&lines), "{lines} order lines");
    let fresh = check(&mut conn).await.unwrap();
    assert!(failed(&fresh).is_empty(), "{fresh:?}");

    // Each transaction, on its own terminal, commits and does its work.
    let mut terminal = Terminal {
        conn: target.connect().await.unwrap(),
        rng: TpccRng::new(99, target.constants),
        w: 1,
        warehouses: 1,
    };
    let mut new_orders = 0;
    while new_orders < 3 {
        let input = terminal.input(TxnKind::NewOrder);
        match terminal.execute(&input).await.unwrap() {
            Outcome::NewOrder { w, d, o_id } => {
                new_orders += 1;
                let sql = format!(
                    "SELECT COUNT(*) FROM new_order WHERE no_w_id = {w} AND no_d_id = {d} AND no_o_id = {o_id}"
                );
                assert_eq!(count(&mut conn, &sql).await, 1);
            }
            Outcome::RolledBack => {}
            Outcome::Committed => panic!("a New-Order reports its order"),
        }
    }
    let ytd = count(
        &mut conn,
        "SELECT CAST(w_ytd * 100 AS SIGNED) FROM warehouse",
    )
    .await;
    let input = terminal.input(TxnKind::Payment);
    assert_eq!(terminal.execute(&input).await.unwrap(), Outcome::Committed);
    assert!(
        count(
            &mut conn,
            "SELECT CAST(w_ytd * 100 AS SIGNED) FROM warehouse"
        )
        .await
            > ytd
    );
    assert_eq!(
        count(&mut conn, "SELECT COUNT(*) FROM history").await,
        30_001
    );
    let undelivered = count(&mut conn, "SELECT COUNT(*) FROM new_order").await;
    let input = terminal.input(TxnKind::Delivery);
    assert_eq!(terminal.execute(&input).await.unwrap(), Outcome::Committed);
    assert_eq!(
        count(&mut conn, "SELECT COUNT(*) FROM new_order").await,
        undelivered - 10,
        "one order delivered per district"
    );
    for kind in [TxnKind::OrderStatus, TxnKind::StockLevel] {
        let input = terminal.input(kind);
        assert_eq!(terminal.execute(&input).await.unwrap(), Outcome::Committed);
    }
    let after = check(&mut conn).await.unwrap();
    assert!(failed(&after).is_empty(), "{after:?}");

    // Every analytical query runs; the ones over all order lines see rows.
    for n in 1..=QUERIES.len() {
        let rows = run_query(&mut conn, n).await.unwrap();
        if [1, 4, 6, 12].contains(&n) {
            assert!(!rows.is_empty(), "Q{n} found nothing");
        }
    }
    let q1 = run_query(&mut conn, 1).await.unwrap();
    let counted: i64 = q1
        .iter()
        .map(|r| r[5].as_ref().unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(
        counted,
        count(
            &mut conn,
            "SELECT COUNT(*) FROM order_line WHERE ol_delivery_d IS NOT NULL"
        )
        .await
    );

    // A short mixed run: both sides make progress and the report holds it.
    let plan = PhasePlan {
        name: "mixed",
        duration: Duration::from_secs(8),
        oltp_workers: 2,
        olap_workers: 1,
        warehouses: 1,
        seed: 7,
    };
    let phase = run_phase(&target, &plan).await.unwrap();
    assert!(phase.errors.is_empty(), "{:?}", phase.errors);
    let committed: u64 = phase.txns.values().map(|s| s.committed).sum();
    assert!(committed > 0);
    let report = Report {
        config: serde_json::json!({"warehouses": 1}),
        server_version: target.server_version().await.unwrap(),
        load: Some(loaded),
        phases: vec![phase],
        consistency: check(&mut conn).await.unwrap(),
    };
    assert!(report.consistent(), "{}", report.summary());
    let out = dir.path().join("out");
    report.write(&out).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    assert!(json["server_version"].as_str().unwrap().contains("Duet"));
    assert_eq!(json["phases"][0]["name"], "mixed");
    assert_eq!(json["consistency"]["passed"], true);
    for plot in ["throughput.svg", "latency_cdf.svg", "freshness.svg"] {
        let svg = std::fs::read_to_string(out.join(plot)).unwrap();
        assert!(svg.starts_with("<svg"), "{plot}");
    }
    assert!(report.summary().contains("tpmC"));

    // Broken data fails the conditions it breaks, and only those.
    conn.query_drop("UPDATE district SET d_ytd = d_ytd + 1 WHERE d_w_id = 1 AND d_id = 3")
        .await
        .unwrap();
    assert_eq!(failed(&check(&mut conn).await.unwrap()), vec![1]);
    conn.query_drop("UPDATE district SET d_ytd = d_ytd - 1 WHERE d_w_id = 1 AND d_id = 3")
        .await
        .unwrap();
    let middle = count(
        &mut conn,
        "SELECT MIN(no_o_id) + 1 FROM new_order WHERE no_w_id = 1 AND no_d_id = 4",
    )
    .await;
    conn.query_drop(format!(
        "DELETE FROM new_order WHERE no_w_id = 1 AND no_d_id = 4 AND no_o_id = {middle}"
    ))
    .await
    .unwrap();
    assert_eq!(failed(&check(&mut conn).await.unwrap()), vec![3]);
    conn.query_drop(
        "UPDATE district SET d_next_o_id = d_next_o_id + 1 WHERE d_w_id = 1 AND d_id = 5",
    )
    .await
    .unwrap();
    conn.query_drop("DELETE FROM order_line WHERE ol_w_id = 1 AND ol_d_id = 6 AND ol_o_id = 1 AND ol_number = 1")
        .await
        .unwrap();
    assert_eq!(failed(&check(&mut conn).await.unwrap()), vec![2, 3, 4]);
    drop(conn);
    node.stop().await;
}
