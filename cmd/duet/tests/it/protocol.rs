//! The MySQL protocol as mysql_async sees it: connect-time statements, text
//! and prepared queries, errors, accounts.

use duet_tests::{TestServer, user};
use mysql_async::prelude::*;
use mysql_async::{Params, Value};

async fn one<T: FromValue + Send + 'static>(conn: &mut mysql_async::Conn, sql: &str) -> T {
    conn.query_first::<T, _>(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .expect("a row")
}

fn code(e: mysql_async::Error) -> u16 {
    match e {
        mysql_async::Error::Server(s) => s.code,
        other => panic!("expected a server error, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_ping_and_select_one() {
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    c.ping().await.unwrap();
    assert_eq!(one::<i64>(&mut c, "SELECT 1").await, 1);
    let (a, b): (i64, String) = c.query_first("select 1+2, 'x'").await.unwrap().unwrap();
    assert_eq!((a, b.as_str()), (3, "x"));
    let version: String = one(&mut c, "SELECT VERSION()").await;
    assert!(version.starts_with("8.0.11-Duet-"), "{version}");
    assert!(c.server_version() >= (8, 0, 11));
    c.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_time_statements_answer_from_session_state() {
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    for sql in [
        "SET NAMES utf8mb4",
        "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci",
        "SET autocommit=0",
        "SET sql_mode='STRICT_TRANS_TABLES'",
        "SET sql_mode=CONCAT(@@sql_mode, ',ANSI_QUOTES')",
        "SET time_zone='+00:00'",
        "SET SESSION transaction_isolation='REPEATABLE-READ'",
        "SET SESSION tx_isolation='REPEATABLE-READ'",
        "SET character_set_results = NULL",
    ] {
        c.query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    assert_eq!(one::<i64>(&mut c, "SELECT @@autocommit").await, 0);
    assert_eq!(
        one::<String>(&mut c, "SELECT @@session.sql_mode").await,
        "STRICT_TRANS_TABLES,ANSI_QUOTES"
    );
    assert_eq!(one::<String>(&mut c, "SELECT @@time_zone").await, "+00:00");
    assert_eq!(
        one::<String>(&mut c, "SELECT @@system_time_zone").await,
        "UTC"
    );
    assert_eq!(
        one::<String>(&mut c, "SELECT @@collation_connection").await,
        "utf8mb4_unicode_ci"
    );
    assert_eq!(
        one::<String>(&mut c, "SELECT @@transaction_isolation").await,
        "REPEATABLE-READ"
    );
    assert_eq!(
        one::<u64>(&mut c, "SELECT @@auto_increment_increment").await,
        1
    );
    let comment: String = one(&mut c, "SELECT @@version_comment LIMIT 1").await;
    assert!(comment.contains("Duet"), "{comment}");
    let (packet, wait, socket): (u64, u64, Option<String>) = c
        .query_first("SELECT @@max_allowed_packet,@@wait_timeout,@@socket")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((packet, wait, socket), (64 << 20, 28800, None));
    let rows: Vec<(String, String)> = c.query("SHOW VARIABLES LIKE 'sql_mode'").await.unwrap();
    assert_eq!(
        rows,
        vec![(
            "sql_mode".to_string(),
            "STRICT_TRANS_TABLES,ANSI_QUOTES".to_string()
        )]
    );
    let rows: Vec<(String, String)> = c
        .query("SHOW SESSION VARIABLES WHERE Variable_name = 'autocommit'")
        .await
        .unwrap();
    assert_eq!(rows, vec![("autocommit".to_string(), "OFF".to_string())]);
    assert_eq!(
        one::<Option<String>>(&mut c, "SELECT DATABASE()").await,
        None
    );
    c.query_drop("USE test").await.unwrap();
    assert_eq!(one::<String>(&mut c, "SELECT DATABASE()").await, "test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn column_names_are_the_expression_text() {
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    let result = c
        .query_iter("SELECT @@version_comment LIMIT 1")
        .await
        .unwrap();
    let names: Vec<String> = result
        .columns_ref()
        .iter()
        .map(|c| c.name_str().into_owned())
        .collect();
    assert_eq!(names, vec!["@@version_comment"]);
    drop(result);
    let result = c.query_iter("select 1 AS one, 2+3").await.unwrap();
    let names: Vec<String> = result
        .columns_ref()
        .iter()
        .map(|c| c.name_str().into_owned())
        .collect();
    assert_eq!(names, vec!["one", "2+3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_round_trip_every_parameter_type() {
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    let params: Vec<Value> = vec![
        Value::Int(-42),
        Value::UInt(u64::MAX),
        Value::Double(2.5),
        Value::Float(1.25),
        Value::Bytes(b"hello".to_vec()),
        Value::NULL,
        Value::Date(2026, 11, 28, 0, 0, 0, 0),
        Value::Date(2026, 11, 28, 13, 14, 15, 123456),
        Value::Time(true, 1, 2, 3, 4, 5),
    ];
    let marks = vec!["?"; params.len()].join(", ");
    let stmt = c.prep(format!("SELECT {marks}")).await.unwrap();
    assert_eq!(stmt.num_params() as usize, params.len());
    let row: mysql_async::Row = c
        .exec_first(&stmt, Params::Positional(params.clone()))
        .await
        .unwrap()
        .unwrap();
    let got: Vec<Value> = row.unwrap();
    let expected = vec![
        Value::Int(-42),
        Value::UInt(u64::MAX),
        Value::Double(2.5),
        Value::Double(1.25),
        Value::Bytes(b"hello".to_vec()),
        Value::NULL,
        Value::Date(2026, 11, 28, 0, 0, 0, 0),
        Value::Date(2026, 11, 28, 13, 14, 15, 123456),
        Value::Time(true, 1, 2, 3, 4, 5),
    ];
    assert_eq!(got, expected);
    // The same statement again, with new values, then closed.
    let n: Option<i64> = c.exec_first("SELECT ? + 1", (41,)).await.unwrap();
    assert_eq!(n, Some(42));
    c.close(stmt).await.unwrap();
    assert_eq!(one::<i64>(&mut c, "SELECT 7").await, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_mysql_codes() {
    let t = TestServer::start().await;
    let mut c = t.connect().await;
    assert_eq!(code(c.query_drop("SELEC 1").await.unwrap_err()), 1064);
    assert_eq!(
        code(c.query_drop("CREATE TABLE t (a INT)").await.unwrap_err()),
        1046
    );
    assert_eq!(
        code(
            c.query_drop("CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET @x = 1")
                .await
                .unwrap_err()
        ),
        1235
    );
    assert_eq!(
        code(c.query_drop("SELECT @@no_such_variable").await.unwrap_err()),
        1193
    );
    assert_eq!(
        code(c.query_drop("SET autocommit = 7").await.unwrap_err()),
        1231
    );
    assert_eq!(
        code(c.query_drop("USE no_such_db").await.unwrap_err()),
        1049
    );
    assert_eq!(
        code(c.query_drop("SELECT * FROM t").await.unwrap_err()),
        1046
    );
    assert_eq!(
        code(
            c.query_drop("SET time_zone = 'Mars/Base'")
                .await
                .unwrap_err()
        ),
        1298
    );
    assert_eq!(
        code(c.query_drop("SET NAMES klingon").await.unwrap_err()),
        1115
    );
    assert_eq!(code(c.query_drop("").await.unwrap_err()), 1065);
    // The session survives every error.
    assert_eq!(one::<i64>(&mut c, "SELECT 1").await, 1);
    let warnings: Vec<(String, u32, String)> = {
        c.query_drop("SELECT @@nope").await.unwrap_err();
        c.query("SHOW WARNINGS").await.unwrap()
    };
    assert_eq!(warnings.len(), 1);
    assert_eq!((warnings[0].0.as_str(), warnings[0].1), ("Error", 1193));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_and_passwords() {
    let t = TestServer::start_with(|c| {
        c.users.push(user("app", "s3cret", "%"));
    })
    .await;
    let mut ok = mysql_async::Conn::from_url(t.url("app", "s3cret"))
        .await
        .unwrap();
    assert_eq!(
        one::<String>(&mut ok, "SELECT CURRENT_USER()").await,
        "app@%"
    );
    let err = mysql_async::Conn::from_url(t.url("app", "wrong"))
        .await
        .unwrap_err();
    assert_eq!(code(err), 1045);
    let err = mysql_async::Conn::from_url(t.url("nobody", ""))
        .await
        .unwrap_err();
    assert_eq!(code(err), 1045);
    let err = mysql_async::Conn::from_url(t.url("root", "not-empty"))
        .await
        .unwrap_err();
    assert_eq!(code(err), 1045);
    // The refused logins did not disturb the established session.
    assert_eq!(one::<i64>(&mut ok, "SELECT 1").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_named_at_connect() {
    let t = TestServer::start().await;
    let mut c = mysql_async::Conn::from_url(format!("{}/test", t.url("root", "")))
        .await
        .unwrap();
    assert_eq!(one::<String>(&mut c, "SELECT DATABASE()").await, "test");
    let err = mysql_async::Conn::from_url(format!("{}/missing", t.url("root", "")))
        .await
        .unwrap_err();
    assert_eq!(code(err), 1049);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_refuses_the_extra_client_only() {
    let t = TestServer::start_with(|c| {
        c.max_connections = 2;
        c.users.push(duet_tests::user("app", "", "localhost"));
    })
    .await;
    let mut a = t.connect().await;
    let _b = t.connect().await;
    let err = mysql_async::Conn::from_url(t.url("app", ""))
        .await
        .unwrap_err();
    assert_eq!(code(err), 1040);
    // An administrator has one slot more, and no other.
    let _admin = t.connect().await;
    let err = mysql_async::Conn::from_url(t.url("root", ""))
        .await
        .unwrap_err();
    assert_eq!(code(err), 1040);
    assert_eq!(one::<i64>(&mut a, "SELECT 1").await, 1);
}
