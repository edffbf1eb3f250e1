//! The catalog: databases, tables, their columns and indexes, kept in the
//! KV store under `m` keys and changed only inside transactions — so a
//! schema change commits through the same Raft log as the rows it governs,
//! and every engine (the columnar learner included) sees it at the same log
//! position. Every DDL also bumps the schema version; a [`Catalog`] is the
//! whole schema at one version, cached and shared by sessions until the
//! version they read moves.
//!
//! Key layout (all values JSON):
//! - `m\x00next_id`: the last id handed out to a database or table;
//! - `m\x00version`: the schema version;
//! - `m\x01{database}`: a [`DatabaseInfo`];
//! - `m\x02{database id, 8 bytes BE}{table}`: a [`TableInfo`].
//!
//! This folder is the catalog layer: [`autoid`] hands out `AUTO_INCREMENT`
//! values, [`describe`] prints what the `SHOW` and `DESCRIBE` statements
//! show of it. It imports the rules, types and values below it and the
//! key-value seam, nothing that plans or runs a statement.

pub(crate) mod autoid;
pub(crate) mod describe;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::Error::LockWaitTimeout;
use crate::error::{Error, Result};
use crate::kv::KvTxn;
use crate::rules::collation::Collation;
use crate::types;
use crate::types::ColumnType;
use crate::value::Value;

// The meta key space `m`: `m\x00`–`m\x02` and `m\x05` here, `m\x03` table
// statistics (`stats.rs`), `m\x04` auto-increment counters (`autoid.rs`),
// `m\x06` each node's oldest running transaction (the server's GC).
const NEXT_ID_KEY: &[u8] = b"m\x00next_id";
const VERSION_KEY: &[u8] = b"m\x00version";
const DB_PREFIX: &[u8] = b"m\x01";
const TABLE_PREFIX: &[u8] = b"m\x02";
/// The key ranges of dropped tables and indexes, awaiting destruction:
/// `m\x05` + the range's start → its end. The dropping transaction writes
/// the record, so a drop is one small write however large the table; the
/// server's GC destroys the range once its safe point has passed the drop
/// (no snapshot can read the data any more), then deletes the record.
pub const DROPPED_PREFIX: &[u8] = b"m\x05";

/// The range a record under [`DROPPED_PREFIX`] stands for: `(start, end)`.
pub fn dropped_range(key: &[u8], value: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let start = key.strip_prefix(DROPPED_PREFIX)?;
    (!start.is_empty() && start < value).then(|| (start.to_vec(), value.to_vec()))
}

/// First id handed out: ids below are reserved.
const FIRST_ID: i64 = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseInfo {
    pub id: i64,
    pub name: String,
}

/// A column default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DefaultValue {
    /// A constant, already converted to the column's type.
    Value(StoredValue),
    /// `CURRENT_TIMESTAMP` / `NOW()`.
    CurrentTimestamp,
}

/// A value as the catalog stores it (JSON has no place for our `Value`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StoredValue {
    Null,
    Int(i64),
    UInt(u64),
    Double(f64),
    Text(String),
    Bytes(Vec<u8>),
}

impl StoredValue {
    pub fn from_value(v: &Value) -> StoredValue {
        match v {
            Value::Null => StoredValue::Null,
            Value::Int(i) => StoredValue::Int(*i),
            Value::UInt(u) => StoredValue::UInt(*u),
            Value::Double(d) => StoredValue::Double(*d),
            Value::Bytes(b) => StoredValue::Bytes(b.clone()),
            other => StoredValue::Text(types::value_text(other)),
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            StoredValue::Null => Value::Null,
            StoredValue::Int(i) => Value::Int(*i),
            StoredValue::UInt(u) => Value::UInt(*u),
            StoredValue::Double(d) => Value::Double(*d),
            StoredValue::Text(s) => Value::Str(s.clone()),
            StoredValue::Bytes(b) => Value::Bytes(b.clone()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnInfo {
    /// Stable id: the row format stores values by column id.
    pub id: u32,
    /// The name as declared (lookups ignore case).
    pub name: String,
    pub ty: ColumnType,
    pub nullable: bool,
    pub default: Option<DefaultValue>,
    pub auto_increment: bool,
    #[serde(default)]
    pub comment: String,
    /// How a text column's values compare (`utf8mb4_bin` for any other
    /// column). Its index entries hold the collation's sort keys.
    #[serde(default, skip_serializing_if = "is_bin")]
    pub collation: Collation,
}

fn is_bin(c: &Collation) -> bool {
    c.is_binary()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexInfo {
    pub id: i64,
    pub name: String,
    /// Offsets into the table's columns.
    pub columns: Vec<usize>,
    pub unique: bool,
    pub primary: bool,
    /// Per column, the characters (bytes for binary strings) of a prefix
    /// key part (`KEY (a(10))`), 0 for the whole value; empty if no part
    /// is a prefix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefixes: Vec<u32>,
    /// Being built by this node: writers keep its entries (unchecked for
    /// duplicates, which the back-fill finds), readers do not use it yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_only: Option<u64>,
}

impl IndexInfo {
    /// Whether every column is indexed whole (no prefix lengths).
    pub fn prefix_free(&self) -> bool {
        (0..self.columns.len()).all(|i| self.prefix(i).is_none())
    }

    /// The prefix length of key part `i`, if it is a prefix.
    pub fn prefix(&self, i: usize) -> Option<usize> {
        self.prefixes
            .get(i)
            .filter(|p| **p > 0)
            .map(|p| *p as usize)
    }
}

/// How a table's rows are keyed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HandleKind {
    /// A hidden row id (no primary key), allocated like an auto-increment.
    RowId,
    /// A single integer primary key column (its offset) is the row id.
    IntPk(usize),
    /// A clustered primary key of other types or several columns: its
    /// values (the primary index's columns) form the row key.
    Clustered,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableInfo {
    pub id: i64,
    pub database_id: i64,
    pub name: String,
    pub columns: Vec<ColumnInfo>,
    pub indexes: Vec<IndexInfo>,
    pub handle: HandleKind,
    pub next_column_id: u32,
    pub next_index_id: i64,
    #[serde(default)]
    pub comment: String,
    /// For a view, its definition (a view has no columns, indexes or rows
    /// of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<ViewDef>,
    /// Whether the table has a columnar replica (`ALTER TABLE … SET
    /// COLUMNAR REPLICA 0|1`); every table has one unless removed.
    #[serde(default = "one_replica")]
    pub columnar_replica: bool,
    /// How many columnar copies of each of the table's regions the cluster
    /// keeps (`SET COLUMNAR REPLICA n`); `None` until set: one beside each
    /// voter and one on each analytics node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columnar_count: Option<u64>,
    /// A schema change that rewrites the rows runs on this node: until it
    /// commits, writes to the table are refused (1412), as MySQL's copying
    /// `ALTER TABLE` blocks them. The node clears its own marks when it
    /// starts (a change it ran died with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub altering: Option<u64>,
    /// The collation of text columns declared without one (`CREATE TABLE
    /// … COLLATE=…`).
    #[serde(default, skip_serializing_if = "is_bin")]
    pub collation: Collation,
}

fn one_replica() -> bool {
    true
}

/// Whether `key` is where the catalog keeps a table definition.
pub(crate) fn is_table_key(key: &[u8]) -> bool {
    key.starts_with(TABLE_PREFIX)
}

/// What placement needs of one base table: its key range and how many
/// columnar copies of it the cluster should keep (`None`: the default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnarCount {
    pub start: Vec<u8>,
    pub end: Vec<u8>,
    pub count: Option<u64>,
}

/// Where the table definitions are kept, `[start, end)`: what every
/// columnar replica must learn to decode rows.
pub fn definitions_range() -> (Vec<u8>, Vec<u8>) {
    (TABLE_PREFIX.to_vec(), prefix_end(TABLE_PREFIX))
}

/// The schema version `txn` sees (cheap: one key), to tell whether
/// [`columnar_counts`] could have changed.
pub fn schema_version(txn: &dyn KvTxn) -> Result<u64> {
    Catalog::read_version(txn)
}

/// The columnar count of every base table as `txn` sees it, in key order.
pub fn columnar_counts(txn: &dyn KvTxn) -> Result<Vec<ColumnarCount>> {
    let catalog = Catalog::load(txn)?;
    let mut counts: Vec<ColumnarCount> = (catalog.tables.values())
        .flat_map(|tables| tables.values())
        .filter(|t| t.view.is_none())
        .map(|t| {
            let start = duet_storage::codec::key::table_prefix(t.id);
            ColumnarCount {
                end: prefix_end(&start),
                start,
                // A replica removed before counts existed is a count of 0.
                count: t.columnar_count.or((!t.columnar_replica).then_some(0)),
            }
        })
        .collect();
    counts.sort_by(|a, b| a.start.cmp(&b.start));
    Ok(counts)
}

/// A view: its `SELECT` as written and its column names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewDef {
    pub sql: String,
    pub columns: Vec<String>,
}

impl TableInfo {
    /// Whether a two-step schema change of the table is under way (its
    /// `altering` mark or a write-only index): another change waits for
    /// it, as a 1205.
    pub(crate) fn change_running(&self) -> Result<()> {
        if self.altering.is_some() || self.indexes.iter().any(|i| i.write_only.is_some()) {
            return Err(LockWaitTimeout);
        }
        Ok(())
    }

    /// The offset of the column named `name` (any case).
    pub fn column_offset(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }

    pub fn primary_index(&self) -> Option<&IndexInfo> {
        self.indexes.iter().find(|i| i.primary)
    }

    /// The indexes kept as separate entries (all but a clustered primary key).
    pub fn secondary_indexes(&self) -> impl Iterator<Item = &IndexInfo> {
        let clustered = !matches!(self.handle, HandleKind::RowId);
        self.indexes
            .iter()
            .filter(move |i| !(i.primary && clustered))
    }
}

/// The whole schema at one version.
#[derive(Debug, Default)]
pub struct Catalog {
    pub version: u64,
    databases: BTreeMap<String, DatabaseInfo>,
    /// Tables by database id, then name (lower case).
    tables: BTreeMap<i64, BTreeMap<String, Arc<TableInfo>>>,
}

fn storage(e: duet_storage::Error) -> Error {
    Error::from_storage(e)
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn parse<T: for<'a> Deserialize<'a>>(what: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Internal(format!("catalog {what}: {e}")))
}

fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    duet_storage::codec::key::prefix_end(prefix)
}

/// Where the definition of `table` is kept: what a transaction that
/// writes its rows watches.
pub(crate) fn definition_key(table: &TableInfo) -> Vec<u8> {
    table_key(table.database_id, &table.name)
}

fn table_key(database_id: i64, name: &str) -> Vec<u8> {
    let mut k = TABLE_PREFIX.to_vec();
    k.extend_from_slice(&database_id.to_be_bytes());
    k.extend_from_slice(name.to_ascii_lowercase().as_bytes());
    k
}

fn database_key(name: &str) -> Vec<u8> {
    let mut k = DB_PREFIX.to_vec();
    k.extend_from_slice(name.to_ascii_lowercase().as_bytes());
    k
}

impl Catalog {
    /// The schema version `txn` sees.
    pub fn read_version(txn: &dyn KvTxn) -> Result<u64> {
        Ok(match txn.get(VERSION_KEY).map_err(storage)? {
            Some(b) => parse("version", &b)?,
            None => 0,
        })
    }

    /// Loads the whole schema as `txn` sees it.
    pub fn load(txn: &dyn KvTxn) -> Result<Catalog> {
        let version = Self::read_version(txn)?;
        let mut catalog = Catalog {
            version,
            ..Catalog::default()
        };
        for (_, v) in txn
            .scan(DB_PREFIX, &prefix_end(DB_PREFIX), usize::MAX)
            .map_err(storage)?
        {
            let db: DatabaseInfo = parse("database", &v)?;
            catalog.databases.insert(db.name.to_ascii_lowercase(), db);
        }
        for (_, v) in txn
            .scan(TABLE_PREFIX, &prefix_end(TABLE_PREFIX), usize::MAX)
            .map_err(storage)?
        {
            let t: TableInfo = parse("table", &v)?;
            catalog
                .tables
                .entry(t.database_id)
                .or_default()
                .insert(t.name.to_ascii_lowercase(), Arc::new(t));
        }
        Ok(catalog)
    }

    pub fn database(&self, name: &str) -> Option<&DatabaseInfo> {
        self.databases.get(&name.to_ascii_lowercase())
    }

    pub fn databases(&self) -> impl Iterator<Item = &DatabaseInfo> {
        self.databases.values()
    }

    pub fn table(&self, database: &str, name: &str) -> Option<&Arc<TableInfo>> {
        let db = self.database(database)?;
        self.tables.get(&db.id)?.get(&name.to_ascii_lowercase())
    }

    /// The tables of a database, by name.
    pub fn tables(&self, database: &str) -> Vec<Arc<TableInfo>> {
        self.database(database)
            .and_then(|db| self.tables.get(&db.id))
            .map(|t| t.values().cloned().collect())
            .unwrap_or_default()
    }
}

/// Schema changes, inside a DDL transaction. Each bumps the version.
pub struct SchemaWriter<'a> {
    pub txn: &'a mut dyn KvTxn,
    /// New indexes are left write-only (marked with this node's id), their
    /// back-fill to a later step.
    pub defer_backfill: Option<u64>,
}

impl SchemaWriter<'_> {
    fn bump_version(&mut self) -> Result<()> {
        // Writers of rows watch the definitions a schema change writes.
        self.txn.writes_watched();
        let v = Catalog::read_version(self.txn)? + 1;
        self.txn.put(VERSION_KEY.to_vec(), json(&v));
        Ok(())
    }

    /// A new id for a database or table.
    pub fn next_id(&mut self) -> Result<i64> {
        let last: i64 = match self.txn.get(NEXT_ID_KEY).map_err(storage)? {
            Some(b) => parse("next id", &b)?,
            None => FIRST_ID - 1,
        };
        let id = last + 1;
        self.txn.put(NEXT_ID_KEY.to_vec(), json(&id));
        Ok(id)
    }

    pub fn create_database(&mut self, name: &str) -> Result<DatabaseInfo> {
        let id = self.next_id()?;
        let db = DatabaseInfo {
            id,
            name: name.to_string(),
        };
        self.txn.put(database_key(name), json(&db));
        self.bump_version()?;
        Ok(db)
    }

    pub fn drop_database(&mut self, db: &DatabaseInfo, tables: &[Arc<TableInfo>]) -> Result<()> {
        for t in tables {
            self.drop_table(t)?;
        }
        self.txn.delete(database_key(&db.name));
        self.bump_version()
    }

    pub fn put_table(&mut self, table: &TableInfo) -> Result<()> {
        self.txn
            .put(table_key(table.database_id, &table.name), json(table));
        self.bump_version()
    }

    /// Moves a table's definition to a new name (and database): its rows,
    /// keyed by its id, stay where they are. The new definition is written
    /// first, so that it is the transaction's primary key and commits
    /// first: the columnar replica, which drops a table whose definition
    /// is gone, always sees the new one before the old one goes.
    pub fn rename_table(&mut self, table: &TableInfo, renamed: &TableInfo) -> Result<()> {
        table.change_running()?;
        self.put_table(renamed)?;
        self.txn.delete(table_key(table.database_id, &table.name));
        Ok(())
    }

    /// Removes a table's definition; its rows and index entries are
    /// destroyed later (see [`DROPPED_PREFIX`]).
    pub fn drop_table(&mut self, table: &TableInfo) -> Result<()> {
        table.change_running()?;
        self.txn.delete(table_key(table.database_id, &table.name));
        self.retire_prefix(duet_storage::codec::key::table_prefix(table.id));
        self.bump_version()
    }

    /// Records that every key starting with `prefix` is to be destroyed.
    pub(crate) fn retire_prefix(&mut self, prefix: Vec<u8>) {
        let end = prefix_end(&prefix);
        let mut key = DROPPED_PREFIX.to_vec();
        key.extend_from_slice(&prefix);
        self.txn.put(key, end);
    }
}
