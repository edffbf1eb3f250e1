//! `information_schema`: MySQL's views of the catalog (`SCHEMATA`, `TABLES`,
//! `COLUMNS`, `STATISTICS`, and the primary and unique keys as
//! `TABLE_CONSTRAINTS` and `KEY_COLUMN_USAGE`, which ORMs read) and Duet's
//! `DUET_COLUMNAR_REPLICAS`, built from the catalog version the statement
//! reads, so they agree with `SHOW` and with the tables the statement sees.
//! They are queried like any table (joins, filters, aggregates), through
//! the query engine. `DUET_STORES` and `DUET_REGIONS` show the cluster's
//! layout as the placement driver reports it; `DUET_DEADLOCKS` the last
//! deadlocks this node's transactions were refused for (TiDB's `DEADLOCKS`).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Builder, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;

use crate::catalog::describe;
use crate::catalog::{Catalog, TableInfo};
use crate::table::source::RowSource;
use crate::types::value_text;
use crate::value::Value;

pub(crate) const NAME: &str = "information_schema";

/// The views, by lower-case name.
pub(crate) const TABLES: &[&str] = &[
    "columns",
    "duet_columnar_replicas",
    "duet_deadlocks",
    "duet_regions",
    "duet_stores",
    "key_column_usage",
    "schemata",
    "statistics",
    "table_constraints",
    "tables",
];

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Int,
}

use Kind::{Int, Text};

/// The view `name` (lower case), as a table of the catalog's rows now.
pub(crate) fn table(
    catalog: &Catalog,
    source: &dyn RowSource,
    name: &str,
) -> Option<Arc<dyn TableProvider>> {
    let (columns, rows) = match name {
        "schemata" => schemata(catalog),
        "tables" => tables(catalog, source),
        "columns" => columns(catalog),
        "statistics" => statistics(catalog, source),
        "table_constraints" => table_constraints(catalog),
        "key_column_usage" => key_column_usage(catalog),
        "duet_columnar_replicas" => columnar_replicas(catalog, source),
        "duet_stores" => stores(source),
        "duet_regions" => regions(source),
        "duet_deadlocks" => deadlocks(source),
        _ => return None,
    };
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, kind)| {
                let ty = match kind {
                    Text => DataType::Utf8,
                    Int => DataType::Int64,
                };
                Field::new(name.to_ascii_lowercase(), ty, true)
            })
            .collect::<Vec<_>>(),
    ));
    let arrays: Vec<ArrayRef> = columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| match kind {
            Text => {
                let mut b = StringBuilder::new();
                for row in &rows {
                    match &row[i] {
                        Value::Null => b.append_null(),
                        v => b.append_value(value_text(v)),
                    }
                }
                Arc::new(b.finish()) as ArrayRef
            }
            Int => {
                let mut b = Int64Builder::new();
                for row in &rows {
                    match &row[i] {
                        Value::Int(v) => b.append_value(*v),
                        Value::UInt(v) => b.append_value(i64::try_from(*v).unwrap_or(i64::MAX)),
                        _ => b.append_null(),
                    }
                }
                Arc::new(b.finish()) as ArrayRef
            }
        })
        .collect();
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays).ok()?;
    let table = MemTable::try_new(schema, vec![vec![batch]]).ok()?;
    Some(Arc::new(table))
}

type View = (Vec<(&'static str, Kind)>, Vec<Vec<Value>>);

fn text(s: impl Into<String>) -> Value {
    Value::Str(s.into())
}

/// Every database, the built-in ones included, in name order.
fn database_names(catalog: &Catalog) -> Vec<String> {
    let mut names: Vec<String> = catalog.databases().map(|d| d.name.clone()).collect();
    names.extend(["information_schema".to_string(), "mysql".to_string()]);
    names.sort();
    names
}

/// Every user table with its database, in name order.
fn all_tables(catalog: &Catalog) -> Vec<(String, Arc<TableInfo>)> {
    let mut out = Vec::new();
    for db in database_names(catalog) {
        let mut tables = catalog.tables(&db);
        tables.sort_by(|a, b| a.name.cmp(&b.name));
        out.extend(tables.into_iter().map(|t| (db.clone(), t)));
    }
    out
}

fn schemata(catalog: &Catalog) -> View {
    let columns = vec![
        ("CATALOG_NAME", Text),
        ("SCHEMA_NAME", Text),
        ("DEFAULT_CHARACTER_SET_NAME", Text),
        ("DEFAULT_COLLATION_NAME", Text),
        ("SQL_PATH", Text),
    ];
    let rows = database_names(catalog)
        .into_iter()
        .map(|db| {
            vec![
                text("def"),
                text(db),
                text("utf8mb4"),
                text("utf8mb4_bin"),
                Value::Null,
            ]
        })
        .collect();
    (columns, rows)
}

fn tables(catalog: &Catalog, source: &dyn RowSource) -> View {
    let columns = vec![
        ("TABLE_CATALOG", Text),
        ("TABLE_SCHEMA", Text),
        ("TABLE_NAME", Text),
        ("TABLE_TYPE", Text),
        ("ENGINE", Text),
        ("VERSION", Int),
        ("ROW_FORMAT", Text),
        ("TABLE_ROWS", Int),
        ("AVG_ROW_LENGTH", Int),
        ("DATA_LENGTH", Int),
        ("MAX_DATA_LENGTH", Int),
        ("INDEX_LENGTH", Int),
        ("DATA_FREE", Int),
        ("AUTO_INCREMENT", Int),
        ("CREATE_TIME", Text),
        ("UPDATE_TIME", Text),
        ("CHECK_TIME", Text),
        ("TABLE_COLLATION", Text),
        ("CHECKSUM", Int),
        ("CREATE_OPTIONS", Text),
        ("TABLE_COMMENT", Text),
    ];
    let rows = all_tables(catalog)
        .into_iter()
        .map(|(db, t)| {
            // The router's estimate, as MySQL's TABLE_ROWS is InnoDB's.
            let estimate = source
                .stats(&t)
                .map_or(Value::Null, |s| Value::UInt(s.rows));
            vec![
                text("def"),
                text(db),
                text(t.name.clone()),
                text(if t.view.is_some() {
                    "VIEW"
                } else {
                    "BASE TABLE"
                }),
                text("Duet"),
                Value::Int(10),
                text("Dynamic"),
                estimate,
                Value::Int(0),
                Value::Int(0),
                Value::Int(0),
                Value::Int(0),
                Value::Int(0),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                text(t.collation.name()),
                Value::Null,
                text(""),
                text(""),
            ]
        })
        .collect();
    (columns, rows)
}

fn columns(catalog: &Catalog) -> View {
    let columns = vec![
        ("TABLE_CATALOG", Text),
        ("TABLE_SCHEMA", Text),
        ("TABLE_NAME", Text),
        ("COLUMN_NAME", Text),
        ("ORDINAL_POSITION", Int),
        ("COLUMN_DEFAULT", Text),
        ("IS_NULLABLE", Text),
        ("DATA_TYPE", Text),
        ("CHARACTER_MAXIMUM_LENGTH", Int),
        ("CHARACTER_OCTET_LENGTH", Int),
        ("NUMERIC_PRECISION", Int),
        ("NUMERIC_SCALE", Int),
        ("DATETIME_PRECISION", Int),
        ("CHARACTER_SET_NAME", Text),
        ("COLLATION_NAME", Text),
        ("COLUMN_TYPE", Text),
        ("COLUMN_KEY", Text),
        ("EXTRA", Text),
        ("PRIVILEGES", Text),
        ("COLUMN_COMMENT", Text),
    ];
    let mut rows = Vec::new();
    for (db, t) in all_tables(catalog) {
        // SHOW FULL COLUMNS' rows: Field, Type, Collation, Null, Key,
        // Default, Extra, Privileges, Comment.
        let described = describe::describe(&t, true);
        for (i, (c, d)) in t.columns.iter().zip(described.rows).enumerate() {
            let column_type = c.ty.sql_name();
            let data_type = column_type
                .split(['(', ' '])
                .next()
                .unwrap_or("")
                .to_string();
            let text_type = c.ty.is_text();
            let (precision, scale) = if c.ty.is_integer() {
                (Value::Int(integer_digits(&data_type)), Value::Int(0))
            } else if data_type == "decimal" {
                (
                    Value::Int(i64::from(c.ty.precision)),
                    Value::Int(i64::from(c.ty.scale)),
                )
            } else if data_type == "double" {
                (Value::Int(22), Value::Null)
            } else if data_type == "float" {
                (Value::Int(12), Value::Null)
            } else {
                (Value::Null, Value::Null)
            };
            let char_length = if text_type || c.ty.is_binary() {
                let n = match data_type.as_str() {
                    "tinytext" | "tinyblob" => 255,
                    "text" | "blob" => 65535,
                    "mediumtext" | "mediumblob" => 16_777_215,
                    "longtext" | "longblob" => 4_294_967_295,
                    _ => i64::from(c.ty.length),
                };
                Value::Int(n)
            } else {
                Value::Null
            };
            let octets = match (&char_length, text_type) {
                (Value::Int(n), true) if *n < 4_294_967_295 / 4 => Value::Int(n * 4),
                (v, _) => v.clone(),
            };
            let temporal = matches!(data_type.as_str(), "datetime" | "timestamp" | "time");
            rows.push(vec![
                text("def"),
                text(db.clone()),
                text(t.name.clone()),
                text(c.name.clone()),
                Value::Int(i as i64 + 1),
                d[5].clone(),
                d[3].clone(),
                text(data_type),
                char_length,
                octets,
                precision,
                scale,
                if temporal {
                    Value::Int(i64::from(c.ty.precision))
                } else {
                    Value::Null
                },
                if text_type {
                    text("utf8mb4")
                } else {
                    Value::Null
                },
                d[2].clone(),
                text(column_type),
                d[4].clone(),
                d[6].clone(),
                d[7].clone(),
                d[8].clone(),
            ]);
        }
    }
    (columns, rows)
}

/// Decimal digits of an integer type, as MySQL reports its precision.
fn integer_digits(data_type: &str) -> i64 {
    match data_type {
        "tinyint" => 3,
        "smallint" => 5,
        "mediumint" => 7,
        "int" => 10,
        _ => 19,
    }
}

fn statistics(catalog: &Catalog, source: &dyn RowSource) -> View {
    let columns = vec![
        ("TABLE_CATALOG", Text),
        ("TABLE_SCHEMA", Text),
        ("TABLE_NAME", Text),
        ("NON_UNIQUE", Int),
        ("INDEX_SCHEMA", Text),
        ("INDEX_NAME", Text),
        ("SEQ_IN_INDEX", Int),
        ("COLUMN_NAME", Text),
        ("COLLATION", Text),
        ("CARDINALITY", Int),
        ("SUB_PART", Int),
        ("PACKED", Text),
        ("NULLABLE", Text),
        ("INDEX_TYPE", Text),
        ("COMMENT", Text),
        ("INDEX_COMMENT", Text),
    ];
    let mut rows = Vec::new();
    for (db, t) in all_tables(catalog) {
        let stats = source.stats(&t);
        for ix in &t.indexes {
            for (seq, offset) in ix.columns.iter().enumerate() {
                let c = &t.columns[*offset];
                let cardinality = stats
                    .as_ref()
                    .and_then(|s| s.ndv(c.id))
                    .map_or(Value::Null, Value::UInt);
                rows.push(vec![
                    text("def"),
                    text(db.clone()),
                    text(t.name.clone()),
                    Value::Int(i64::from(!ix.unique)),
                    text(db.clone()),
                    text(ix.name.clone()),
                    Value::Int(seq as i64 + 1),
                    text(c.name.clone()),
                    text("A"),
                    cardinality,
                    ix.prefix(seq).map_or(Value::Null, |n| Value::Int(n as i64)),
                    Value::Null,
                    text(if c.nullable { "YES" } else { "" }),
                    text("BTREE"),
                    text(""),
                    text(""),
                ]);
            }
        }
    }
    (columns, rows)
}

/// The constraints of base tables: their primary and unique keys (a
/// primary key's constraint is named `PRIMARY`, as in MySQL).
fn constraints(catalog: &Catalog) -> Vec<(String, Arc<TableInfo>, usize)> {
    let mut out = Vec::new();
    for (db, t) in all_tables(catalog) {
        if t.view.is_some() {
            continue;
        }
        for (i, ix) in t.indexes.iter().enumerate() {
            if ix.primary || ix.unique {
                out.push((db.clone(), Arc::clone(&t), i));
            }
        }
    }
    out
}

fn table_constraints(catalog: &Catalog) -> View {
    let columns = vec![
        ("CONSTRAINT_CATALOG", Text),
        ("CONSTRAINT_SCHEMA", Text),
        ("CONSTRAINT_NAME", Text),
        ("TABLE_SCHEMA", Text),
        ("TABLE_NAME", Text),
        ("CONSTRAINT_TYPE", Text),
        ("ENFORCED", Text),
    ];
    let rows = constraints(catalog)
        .into_iter()
        .map(|(db, t, i)| {
            let ix = &t.indexes[i];
            vec![
                text("def"),
                text(db.clone()),
                text(ix.name.clone()),
                text(db),
                text(t.name.clone()),
                text(if ix.primary { "PRIMARY KEY" } else { "UNIQUE" }),
                text("YES"),
            ]
        })
        .collect();
    (columns, rows)
}

fn key_column_usage(catalog: &Catalog) -> View {
    let columns = vec![
        ("CONSTRAINT_CATALOG", Text),
        ("CONSTRAINT_SCHEMA", Text),
        ("CONSTRAINT_NAME", Text),
        ("TABLE_CATALOG", Text),
        ("TABLE_SCHEMA", Text),
        ("TABLE_NAME", Text),
        ("COLUMN_NAME", Text),
        ("ORDINAL_POSITION", Int),
        ("POSITION_IN_UNIQUE_CONSTRAINT", Int),
        ("REFERENCED_TABLE_SCHEMA", Text),
        ("REFERENCED_TABLE_NAME", Text),
        ("REFERENCED_COLUMN_NAME", Text),
    ];
    let mut rows = Vec::new();
    for (db, t, i) in constraints(catalog) {
        let ix = &t.indexes[i];
        for (seq, offset) in ix.columns.iter().enumerate() {
            rows.push(vec![
                text("def"),
                text(db.clone()),
                text(ix.name.clone()),
                text("def"),
                text(db.clone()),
                text(t.name.clone()),
                text(t.columns[*offset].name.clone()),
                Value::Int(seq as i64 + 1),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
            ]);
        }
    }
    (columns, rows)
}

/// `DUET_COLUMNAR_REPLICAS`: per base table, whether it has a columnar
/// replica, whether that replica can serve reads now, its rows, and how far
/// the replica lagged the row store when asked: the log entries it had yet
/// to apply (over all regions) and how long its oldest waiting entry had
/// waited, in seconds (NULL when the replica cannot serve).
fn columnar_replicas(catalog: &Catalog, source: &dyn RowSource) -> View {
    let columns = vec![
        ("TABLE_SCHEMA", Text),
        ("TABLE_NAME", Text),
        ("REPLICA_COUNT", Int),
        ("AVAILABLE", Text),
        ("TABLE_ROWS", Int),
        ("APPLIED_INDEX_LAG", Int),
        ("SECONDS_BEHIND", Int),
    ];
    let mut rows = Vec::new();
    for (db, t) in all_tables(catalog) {
        if t.view.is_some() {
            continue;
        }
        let replica = source.columnar_replica_status(&t);
        let available = replica.as_ref().is_some_and(|r| r.available);
        let lag = |v: i64| {
            if available {
                Value::Int(v)
            } else {
                Value::Null
            }
        };
        rows.push(vec![
            text(db.clone()),
            text(t.name.clone()),
            Value::Int(
                t.columnar_count
                    .map_or(i64::from(t.columnar_replica), |n| n as i64),
            ),
            text(if available { "YES" } else { "NO" }),
            replica
                .as_ref()
                .and_then(|r| r.rows)
                .map_or(Value::Null, |n| Value::Int(n as i64)),
            lag(replica
                .as_ref()
                .and_then(|r| r.lag)
                .map_or(0, |l| i64::try_from(l).unwrap_or(i64::MAX))),
            lag(replica
                .as_ref()
                .map_or(0, |r| r.seconds_behind.ceil() as i64)),
        ]);
    }
    (columns, rows)
}

/// `DUET_STORES`: the cluster's stores as the placement driver reports
/// them (`GET /cluster`'s `stores`): id, addresses, role, state, and the
/// regions, leaders and bytes each holds. Empty when no report is
/// available.
fn stores(source: &dyn RowSource) -> View {
    let columns = vec![
        ("STORE_ID", Int),
        ("RAFT_ADDR", Text),
        ("MYSQL_ADDR", Text),
        ("ROLE", Text),
        ("STATE", Text),
        ("REGION_COUNT", Int),
        ("LEADER_COUNT", Int),
        ("BYTES", Int),
    ];
    let report = source.cluster_report().unwrap_or_default();
    let rows = (report["stores"].as_array().into_iter().flatten())
        .map(|s| {
            vec![
                json_int(&s["id"]),
                json_text(&s["raft_addr"]),
                json_text(&s["mysql_addr"]),
                json_text(&s["role"]),
                json_text(&s["state"]),
                json_int(&s["regions"]),
                json_int(&s["leaders"]),
                json_int(&s["bytes"]),
            ]
        })
        .collect();
    (columns, rows)
}

/// `DUET_REGIONS`: every region (`GET /cluster`'s `regions`): id, key range
/// in hex, voters and learners (store ids, comma-separated), leader,
/// approximate keys and bytes.
fn regions(source: &dyn RowSource) -> View {
    let columns = vec![
        ("REGION_ID", Int),
        ("START_KEY", Text),
        ("END_KEY", Text),
        ("VOTERS", Text),
        ("LEARNERS", Text),
        ("LEADER_STORE_ID", Int),
        ("APPROXIMATE_KEYS", Int),
        ("APPROXIMATE_BYTES", Int),
    ];
    let report = source.cluster_report().unwrap_or_default();
    let ids = |v: &serde_json::Value| {
        let ids: Vec<String> = (v.as_array().into_iter().flatten())
            .filter_map(|x| x.as_u64())
            .map(|x| x.to_string())
            .collect();
        text(ids.join(","))
    };
    let rows = (report["regions"].as_array().into_iter().flatten())
        .map(|r| {
            vec![
                json_int(&r["id"]),
                json_text(&r["start_key"]),
                json_text(&r["end_key"]),
                ids(&r["voters"]),
                ids(&r["learners"]),
                json_int(&r["leader"]),
                json_int(&r["keys"]),
                json_int(&r["bytes"]),
            ]
        })
        .collect();
    (columns, rows)
}

/// `DUET_DEADLOCKS`: one row per transaction of each deadlock this node's
/// transactions were refused for (1213), as TiDB's `DEADLOCKS`: the
/// deadlock's id and time, then the refused waiter (`TRY_LOCK_TRX_ID`,
/// with the key it asked for, in hex, and the holder) and the cycle's
/// other transactions, each waiting for the next (`TRX_HOLDING_LOCK`).
fn deadlocks(source: &dyn RowSource) -> View {
    let columns = vec![
        ("DEADLOCK_ID", Int),
        ("OCCUR_TIME", Text),
        ("RETRYABLE", Int),
        ("TRY_LOCK_TRX_ID", Int),
        ("KEY", Text),
        ("TRX_HOLDING_LOCK", Int),
    ];
    let mut rows = Vec::new();
    for d in source.deadlocks() {
        let micros = i64::try_from(d.at_unix_ms).unwrap_or(i64::MAX / 1000) * 1000;
        let at = text(crate::rules::time::from_unix_micros(micros).to_string());
        let id = Value::Int(i64::try_from(d.id).unwrap_or(i64::MAX));
        let ts = |t: u64| Value::Int(i64::try_from(t).unwrap_or(i64::MAX));
        rows.push(vec![
            id.clone(),
            at.clone(),
            Value::Int(0),
            ts(d.waiter),
            text(hex(&d.key)),
            ts(d.holder),
        ]);
        // Each of the others waits for the next; the last for the waiter.
        let waits_for = d.cycle.iter().skip(1).copied().chain([d.waiter]);
        for (trx, holder) in d.cycle.iter().zip(waits_for) {
            rows.push(vec![
                id.clone(),
                at.clone(),
                Value::Int(0),
                ts(*trx),
                Value::Null,
                ts(holder),
            ]);
        }
    }
    (columns, rows)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn json_int(v: &serde_json::Value) -> Value {
    v.as_u64().map_or(Value::Null, |n| {
        Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
    })
}

fn json_text(v: &serde_json::Value) -> Value {
    v.as_str().map_or(Value::Null, text)
}
