//! A table's rows in the KV store: the row key of a row (its handle), the
//! row value (its columns by column id, NULLs included), the index entries
//! a row owns, and the checks that make a write keep them consistent
//! (duplicate keys). Every write to a table's data goes through here.
//!
//! - row: `t{table}_r{handle}` → row value;
//! - unique index with no NULL in its values: `t{table}_i{index}{values}` →
//!   the row key;
//! - any other index entry: `t{table}_i{index}{values}{handle}` → `0`.
//!
//! This folder is the table layer: row layout (here), key ranges from
//! filters ([`ranges`]), the [`source::RowSource`] seam scans read through,
//! statistics ([`stats`]), the keys `SPLIT TABLE` cuts at ([`split`]) and
//! the rows of `information_schema`
//! ([`infoschema`]). It imports the catalog and below.

pub(crate) mod infoschema;
pub(crate) mod ranges;
pub(crate) mod source;
pub(crate) mod split;
pub(crate) mod stats;

use duet_storage::codec::key::{self, Handle};
use duet_storage::codec::{Datum, decode_row_columns, encode_row};

use crate::catalog;
use crate::catalog::StoredValue::Null;
use crate::catalog::{ColumnInfo, DefaultValue, HandleKind, IndexInfo, TableInfo};
use crate::error::{Error, Result};
use crate::interrupt;
use crate::kv::KvTxn;
use crate::table::ranges::HandleSet;
use crate::types::{datum_to_value, value_text};

/// One row: a datum per column, in the table's column order.
pub type Row = Vec<Datum>;

/// Rows with their row keys, in key order.
pub type KeyedRows = Vec<(Vec<u8>, Row)>;

fn storage(e: duet_storage::Error) -> Error {
    Error::from_storage(e)
}

fn codec(e: duet_storage::codec::CodecError) -> Error {
    Error::Internal(format!("row codec: {e}"))
}

/// The handle of `row`; `rowid` is used when the table has no primary key.
pub fn handle_of(table: &TableInfo, row: &Row, rowid: i64) -> Result<Handle> {
    Ok(match &table.handle {
        HandleKind::RowId => Handle::Int(rowid),
        HandleKind::IntPk(offset) => Handle::Int(match &row[*offset] {
            Datum::Int(i) => *i,
            Datum::UInt(u) => *u as i64,
            other => return Err(Error::Internal(format!("integer key holds {other:?}"))),
        }),
        HandleKind::Clustered => {
            let pk = table
                .primary_index()
                .ok_or_else(|| Error::Internal("clustered table without primary key".into()))?;
            Handle::Common(
                pk.columns
                    .iter()
                    .map(|c| collated(&table.columns[*c], row[*c].clone()))
                    .collect(),
            )
        }
    })
}

pub fn row_key(table: &TableInfo, handle: &Handle) -> Result<Vec<u8>> {
    key::row_key_for_handle(table.id, handle).map_err(codec)
}

/// The handle of a row key of `table`.
pub fn decode_handle(table: &TableInfo, row_key: &[u8]) -> Result<Handle> {
    let common = matches!(table.handle, HandleKind::Clustered);
    key::decode_row_key(row_key, common)
        .map(|(_, h)| h)
        .map_err(codec)
}

/// A row's value: every column, a NULL included. Only a column the row
/// predates is absent from it (see [`decode_value`]).
pub fn encode_value(table: &TableInfo, row: &Row) -> Result<Vec<u8>> {
    let columns: Vec<(u32, Datum)> = table
        .columns
        .iter()
        .zip(row)
        .map(|(c, d)| (c.id, d.clone()))
        .collect();
    encode_row(&columns).map_err(codec)
}

/// Decodes a row value; a column the row lacks (added to the table after
/// the row was written) takes its default. A stored NULL stays NULL.
///
/// Rows written before NULLs were stored left their NULL columns out, so a
/// NULL of such a row in a column with a non-NULL default reads as that
/// default: what was lost there cannot be told from the value.
pub fn decode_value(table: &TableInfo, value: &[u8]) -> Result<Row> {
    let ids: Vec<u32> = table.columns.iter().map(|c| c.id).collect();
    let found = decode_row_columns(value, &ids).map_err(codec)?;
    Ok(found
        .into_iter()
        .zip(&table.columns)
        .map(|(d, c)| match d {
            Some(d) => d,
            None => match &c.default {
                Some(DefaultValue::Value(v)) if !c.nullable || !matches!(v, Null) => {
                    c.ty.coerce(&v.to_value(), &c.name).unwrap_or(Datum::Null)
                }
                _ => Datum::Null,
            },
        })
        .collect())
}

/// Key part `i` of `index` for a column value, as the index stores it:
/// the value or its prefix, as the sort key of the column's collation.
pub fn key_part(table: &TableInfo, index: &IndexInfo, i: usize, value: &Datum) -> Datum {
    collated(
        &table.columns[index.columns[i]],
        key_prefix(table, index, i, value),
    )
}

/// A column value as keys hold it: a text value of a `_ci` column as its
/// collation's sort key, so keys equal under the collation are one key.
pub fn collated(column: &ColumnInfo, value: Datum) -> Datum {
    match value {
        Datum::Bytes(b) if !column.collation.is_binary() => {
            Datum::Bytes(column.collation.sort_key_bytes(&b))
        }
        other => other,
    }
}

/// Key part `i` of `index` for a column value as written: the value, or
/// its prefix (characters of text, bytes of binary strings).
fn key_prefix(table: &TableInfo, index: &IndexInfo, i: usize, value: &Datum) -> Datum {
    match (index.prefix(i), value) {
        (Some(n), Datum::Bytes(b)) => {
            let column = &table.columns[index.columns[i]];
            let end = if column.ty.is_binary() {
                n.min(b.len())
            } else {
                match std::str::from_utf8(b) {
                    Ok(text) => text.char_indices().nth(n).map_or(b.len(), |(at, _)| at),
                    Err(_) => n.min(b.len()),
                }
            };
            Datum::Bytes(b[..end].to_vec())
        }
        _ => value.clone(),
    }
}

/// The key and value of `index`'s entry for a row.
fn index_entry(
    table: &TableInfo,
    index: &IndexInfo,
    row: &Row,
    handle: &Handle,
) -> Result<(Vec<u8>, Vec<u8>, bool)> {
    let values: Vec<Datum> = index
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| key_part(table, index, i, &row[*c]))
        .collect();
    let unique = index.unique && !values.iter().any(|d| matches!(d, Datum::Null));
    if unique {
        let k = key::index_key(table.id, index.id, &values, None).map_err(codec)?;
        Ok((k, row_key(table, handle)?, true))
    } else {
        let k = key::index_key(table.id, index.id, &values, Some(handle)).map_err(codec)?;
        Ok((k, b"0".to_vec(), false))
    }
}

/// `Duplicate entry 'v1-v2' for key 'table.index'`.
fn duplicate(table: &TableInfo, index: Option<&IndexInfo>, row: &Row, handle: &Handle) -> Error {
    let values: Vec<String> = match index {
        Some(i) => i
            .columns
            .iter()
            .enumerate()
            .map(|(n, c)| value_text(&datum_to_value(&key_prefix(table, i, n, &row[*c]))))
            .collect(),
        None => match (handle, table.primary_index()) {
            (Handle::Common(_), Some(pk)) => pk
                .columns
                .iter()
                .map(|c| value_text(&datum_to_value(&row[*c])))
                .collect(),
            (Handle::Int(h), _) => vec![h.to_string()],
            (Handle::Common(d), None) => d.iter().map(|d| value_text(&datum_to_value(d))).collect(),
        },
    };
    let name = index.map_or("PRIMARY", |i| {
        if i.primary {
            "PRIMARY"
        } else {
            i.name.as_str()
        }
    });
    Error::DuplicateEntry {
        value: values.join("-"),
        key: format!("{}.{}", table.name, name),
    }
}

/// Rows and index entries are written as `table`'s definition says: the
/// transaction must not commit them if a schema change replaced it
/// meanwhile (1412, retryable).
fn watch_definition(txn: &mut dyn KvTxn, table: &TableInfo) -> Result<()> {
    if table.altering.is_some() {
        return Err(Error::TableDefChanged);
    }
    txn.watch(&catalog::definition_key(table)).map_err(storage)
}

/// Adds a new row: fails with 1062 if its key or a unique index value is
/// taken (now, or by a concurrent transaction at commit). A pessimistic
/// caller has locked the keys first ([`lock_for_insert`]).
pub fn insert_row(
    txn: &mut dyn KvTxn,
    table: &TableInfo,
    row: &Row,
    handle: &Handle,
) -> Result<()> {
    watch_definition(txn, table)?;
    let key = row_key(table, handle)?;
    if txn.get(&key).map_err(storage)?.is_some() {
        let pk = table
            .primary_index()
            .filter(|_| !matches!(table.handle, HandleKind::RowId));
        return Err(duplicate(table, pk, row, handle));
    }
    let mut entries = Vec::new();
    for index in table.secondary_indexes() {
        let (k, v, unique) = index_entry(table, index, row, handle)?;
        let unique = unique && index.write_only.is_none();
        if unique && txn.get(&k).map_err(storage)?.is_some() {
            return Err(duplicate(table, Some(index), row, handle));
        }
        entries.push((k, v, unique));
    }
    txn.insert(key, encode_value(table, row)?);
    for (k, v, unique) in entries {
        write_entry(txn, k, v, unique);
    }
    Ok(())
}

/// In a pessimistic transaction, locks the keys that inserting `rows`
/// needs free (a row handle not drawn by the transaction itself, unique
/// index values), in key order and in one round, before they are checked:
/// a concurrent insert of the same value makes the statement wait, and
/// the check then sees the latest commit, so a duplicate fails the
/// statement, not the commit. Keys already locked cost nothing again.
pub fn lock_for_insert<'a>(
    txn: &mut dyn KvTxn,
    table: &TableInfo,
    rows: impl IntoIterator<Item = (&'a Row, &'a Handle)>,
) -> Result<()> {
    if !txn.is_pessimistic() {
        return Ok(());
    }
    let mut keys = Vec::new();
    for (row, handle) in rows {
        if !matches!(table.handle, HandleKind::RowId) {
            keys.push(row_key(table, handle)?);
        }
        for index in table.secondary_indexes() {
            let (k, _, unique) = index_entry(table, index, row, handle)?;
            if unique && index.write_only.is_none() {
                keys.push(k);
            }
        }
    }
    keys.sort_unstable();
    keys.dedup();
    if !keys.is_empty() {
        txn.lock_for_update(&keys).map_err(storage)?;
    }
    Ok(())
}

/// Removes a row and its index entries.
pub fn delete_row(
    txn: &mut dyn KvTxn,
    table: &TableInfo,
    row: &Row,
    handle: &Handle,
) -> Result<()> {
    watch_definition(txn, table)?;
    for index in table.secondary_indexes() {
        let (k, _, _) = index_entry(table, index, row, handle)?;
        txn.delete(k);
    }
    txn.delete(row_key(table, handle)?);
    Ok(())
}

/// Replaces `old` by `new` (same table; the handle may change).
pub fn update_row(
    txn: &mut dyn KvTxn,
    table: &TableInfo,
    old: &Row,
    old_handle: &Handle,
    new: &Row,
    new_handle: &Handle,
) -> Result<()> {
    watch_definition(txn, table)?;
    if old_handle != new_handle {
        delete_row(txn, table, old, old_handle)?;
        lock_for_insert(txn, table, [(new, new_handle)])?;
        return insert_row(txn, table, new, new_handle);
    }
    for index in table.secondary_indexes() {
        let (old_key, _, _) = index_entry(table, index, old, old_handle)?;
        let (new_key, v, unique) = index_entry(table, index, new, new_handle)?;
        let unique = unique && index.write_only.is_none();
        if old_key == new_key {
            continue;
        }
        if unique && txn.is_pessimistic() {
            txn.lock_for_update(std::slice::from_ref(&new_key))
                .map_err(storage)?;
        }
        if unique && txn.get(&new_key).map_err(storage)?.is_some() {
            return Err(duplicate(table, Some(index), new, new_handle));
        }
        txn.delete(old_key);
        write_entry(txn, new_key, v, unique);
    }
    txn.put(row_key(table, new_handle)?, encode_value(table, new)?);
    Ok(())
}

/// Every row of `table` as `txn` sees it, in handle order.
pub fn scan_rows(txn: &dyn KvTxn, table: &TableInfo) -> Result<Vec<(Handle, Row)>> {
    scan_keyed_rows(txn, table)?
        .into_iter()
        .map(|(k, row)| Ok((decode_handle(table, &k)?, row)))
        .collect()
}

/// Every row of `table` with its row key, in key order.
pub fn scan_keyed_rows(txn: &dyn KvTxn, table: &TableInfo) -> Result<Vec<(Vec<u8>, Row)>> {
    let prefix = key::row_prefix(table.id);
    scan_key_range(txn, table, &prefix, &key::prefix_end(&prefix), usize::MAX)
}

/// The rows whose integer handles lie in `lo..=hi`, in handle order; at
/// most `limit` of them.
pub fn rows_in_handle_range(
    txn: &dyn KvTxn,
    table: &TableInfo,
    lo: i64,
    hi: i64,
    limit: usize,
) -> Result<Vec<(Vec<u8>, Row)>> {
    if lo > hi {
        return Ok(Vec::new());
    }
    let start = key::row_key(table.id, lo);
    let end = match hi.checked_add(1) {
        Some(next) => key::row_key(table.id, next),
        None => key::prefix_end(&key::row_prefix(table.id)),
    };
    scan_key_range(txn, table, &start, &end, limit)
}

/// Calls `each` with the rows of `table` in key order, `page` at a time,
/// so that a large table is never held whole.
pub fn for_each_row_page(
    txn: &dyn KvTxn,
    table: &TableInfo,
    page: usize,
    mut each: impl FnMut(&[(Vec<u8>, Row)]) -> Result<()>,
) -> Result<()> {
    let prefix = key::row_prefix(table.id);
    let end = key::prefix_end(&prefix);
    let mut start = prefix;
    loop {
        let rows = scan_key_range(txn, table, &start, &end, page)?;
        each(&rows)?;
        match rows.last() {
            Some((last, _)) if rows.len() == page => {
                start = last.clone();
                start.push(0);
            }
            _ => return Ok(()),
        }
    }
}

/// Rows read from storage at once: between two reads, the statement may
/// be stopped.
const SCAN_PAGE: usize = 4096;

/// The rows of `[start, end)`, at most `limit`, read a page at a time.
pub fn scan_key_range(
    txn: &dyn KvTxn,
    table: &TableInfo,
    start: &[u8],
    end: &[u8],
    limit: usize,
) -> Result<Vec<(Vec<u8>, Row)>> {
    let mut rows: Vec<(Vec<u8>, Row)> = Vec::new();
    let mut from = start.to_vec();
    loop {
        interrupt::check_current()?;
        let want = SCAN_PAGE.min(limit - rows.len());
        let page = txn.scan(&from, end, want).map_err(storage)?;
        let full = page.len() == want;
        for (k, v) in page {
            let row = decode_value(table, &v)?;
            rows.push((k, row));
        }
        match rows.last() {
            Some((last, _)) if full && rows.len() < limit => {
                from = last.clone();
                from.push(0);
            }
            _ => return Ok(rows),
        }
    }
}

/// The rows whose entries in `index` start with one of `prefixes` (key
/// parts of the index's leading columns as [`key_part`] gives them), in
/// row-key order. When `index` is the
/// clustered primary key, the prefixes are prefixes of the row keys
/// themselves and no index entry is read. The caller re-checks the full
/// condition: a prefix of a column prefix index finds more rows than match.
pub fn rows_by_index(
    txn: &dyn KvTxn,
    table: &TableInfo,
    index: &IndexInfo,
    prefixes: &[Vec<Datum>],
    range: Option<(i64, i64)>,
) -> Result<Vec<(Vec<u8>, Row)>> {
    // `[start, end)` of one encoded prefix, narrowed by `range` on the next
    // (integer) column: its key encoding keeps the order of the values.
    let bounds = |prefix: Vec<u8>| -> Result<(Vec<u8>, Vec<u8>)> {
        let Some((lo, hi)) = range else {
            let end = key::prefix_end(&prefix);
            return Ok((prefix, end));
        };
        if lo > hi {
            return Ok((prefix.clone(), prefix));
        }
        let mut start = prefix.clone();
        duet_storage::codec::encode_key(&Datum::Int(lo), &mut start).map_err(codec)?;
        let end = match hi.checked_add(1) {
            Some(next) => {
                let mut end = prefix;
                duet_storage::codec::encode_key(&Datum::Int(next), &mut end).map_err(codec)?;
                end
            }
            None => key::prefix_end(&prefix),
        };
        Ok((start, end))
    };
    let clustered = index.primary && matches!(table.handle, HandleKind::Clustered);
    if clustered {
        let mut rows = std::collections::BTreeMap::new();
        for prefix in prefixes {
            // A whole key: one point get, cheaper than a scan.
            if range.is_none() && prefix.len() == index.columns.len() && index.prefix_free() {
                let k = key::row_key_common(table.id, prefix).map_err(codec)?;
                if let Some(row) = get_row_by_key(txn, table, &k)? {
                    rows.insert(k, row);
                }
                continue;
            }
            let (start, end) = bounds(key::row_key_common(table.id, prefix).map_err(codec)?)?;
            rows.extend(scan_key_range(txn, table, &start, &end, usize::MAX)?);
        }
        return Ok(rows.into_iter().collect());
    }
    let handle_len = match (&table.handle, table.primary_index()) {
        (HandleKind::Clustered, Some(pk)) => pk.columns.len(),
        _ => 1,
    };
    let mut keys = std::collections::BTreeSet::new();
    let prefixes: std::collections::BTreeSet<Vec<u8>> = prefixes
        .iter()
        .map(|values| {
            let mut encoded = key::index_prefix(table.id, index.id);
            for v in values {
                duet_storage::codec::encode_key(v, &mut encoded).map_err(codec)?;
            }
            Ok(encoded)
        })
        .collect::<Result<_>>()?;
    for prefix in prefixes {
        let (start, end) = bounds(prefix)?;
        for (k, value) in txn.scan(&start, &end, usize::MAX).map_err(storage)? {
            if value != b"0" {
                // A unique entry: its value is the row key.
                keys.insert(value);
                continue;
            }
            let key::TableKey::Index { values, .. } = key::decode_key(&k).map_err(codec)? else {
                continue;
            };
            let handle = match &table.handle {
                HandleKind::Clustered => {
                    Handle::Common(values[values.len().saturating_sub(handle_len)..].to_vec())
                }
                _ => match values.last() {
                    Some(Datum::Int(h)) => Handle::Int(*h),
                    _ => return Err(Error::Internal("index entry without a row id".into())),
                },
            };
            keys.insert(row_key(table, &handle)?);
        }
    }
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        if let Some(row) = get_row_by_key(txn, table, &k)? {
            out.push((k, row));
        }
    }
    Ok(out)
}

/// The rows of an integer-keyed table whose handles are in `set`.
pub fn rows_by_handles(
    txn: &dyn KvTxn,
    table: &TableInfo,
    set: &HandleSet,
) -> Result<Vec<(Vec<u8>, Row)>> {
    match set {
        _ if set.is_empty() => Ok(Vec::new()),
        HandleSet::Points(points) => {
            let mut out = Vec::with_capacity(points.len());
            for p in points {
                let k = key::row_key(table.id, *p);
                if let Some(row) = get_row_by_key(txn, table, &k)? {
                    out.push((k, row));
                }
            }
            Ok(out)
        }
        HandleSet::Range(lo, hi) => {
            let (start, end) = handle_range_keys(table, *lo, *hi);
            scan_key_range(txn, table, &start, &end, usize::MAX)
        }
    }
}

/// The row keys `[start, end)` of the handles `lo..=hi` (clamped to the
/// integers a handle may be; equal keys if none lie between).
pub fn handle_range_keys(table: &TableInfo, lo: i128, hi: i128) -> (Vec<u8>, Vec<u8>) {
    let prefix = key::row_prefix(table.id);
    let start = match i64::try_from(lo) {
        Ok(lo) => key::row_key(table.id, lo),
        Err(_) if lo < 0 => prefix.clone(),
        Err(_) => key::prefix_end(&prefix),
    };
    let end = match i64::try_from(hi) {
        Ok(h) if h < i64::MAX => key::row_key(table.id, h + 1),
        Err(_) if hi < 0 => prefix,
        _ => key::prefix_end(&prefix),
    };
    if start >= end {
        return (start.clone(), start);
    }
    (start, end)
}

/// The row keys `[start, end)` of every row of `table`.
pub fn table_row_keys(table: &TableInfo) -> (Vec<u8>, Vec<u8>) {
    let prefix = key::row_prefix(table.id);
    let end = key::prefix_end(&prefix);
    (prefix, end)
}

/// The row stored under `row_key`, if any.
pub fn get_row_by_key(txn: &dyn KvTxn, table: &TableInfo, row_key: &[u8]) -> Result<Option<Row>> {
    match txn.get(row_key).map_err(storage)? {
        Some(v) => Ok(Some(decode_value(table, &v)?)),
        None => Ok(None),
    }
}

/// The existing row that `row` (with `handle`) would collide with — on the
/// primary key or a unique index — if any: its handle and values.
pub fn find_conflict(
    txn: &dyn KvTxn,
    table: &TableInfo,
    row: &Row,
    handle: &Handle,
) -> Result<Option<(Handle, Row)>> {
    if !matches!(table.handle, HandleKind::RowId)
        && let Some(existing) = get_row(txn, table, handle)?
    {
        return Ok(Some((handle.clone(), existing)));
    }
    for index in table.secondary_indexes() {
        let (k, _, unique) = index_entry(table, index, row, handle)?;
        // An index being built is checked by its back-fill.
        if !unique || index.write_only.is_some() {
            continue;
        }
        if let Some(row_key) = txn.get(&k).map_err(storage)? {
            let existing_handle = decode_handle(table, &row_key)?;
            if let Some(existing) = get_row_by_key(txn, table, &row_key)? {
                return Ok(Some((existing_handle, existing)));
            }
        }
    }
    Ok(None)
}

/// The row with this handle, if any.
pub fn get_row(txn: &dyn KvTxn, table: &TableInfo, handle: &Handle) -> Result<Option<Row>> {
    match txn.get(&row_key(table, handle)?).map_err(storage)? {
        Some(v) => Ok(Some(decode_value(table, &v)?)),
        None => Ok(None),
    }
}

/// Writes the entries of a new index for every existing row (back-fill).
/// Entries writers of the write-only index already made are kept.
pub fn backfill_index(txn: &mut dyn KvTxn, table: &TableInfo, index: &IndexInfo) -> Result<()> {
    for (handle, row) in scan_rows(txn, table)? {
        let (k, v, unique) = index_entry(table, index, &row, &handle)?;
        match txn.get(&k).map_err(storage)? {
            Some(existing) if existing == v => continue,
            Some(_) if unique => return Err(duplicate(table, Some(index), &row, &handle)),
            _ => write_entry(txn, k, v, unique),
        }
    }
    Ok(())
}

/// Writes an index entry; a unique one must not exist at commit.
fn write_entry(txn: &mut dyn KvTxn, key: Vec<u8>, value: Vec<u8>, unique: bool) {
    if unique {
        txn.insert(key, value);
    } else {
        txn.put(key, value);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::dialect::MySql;
    use datafusion::sql::sqlparser::ast::Statement;
    use datafusion::sql::sqlparser::parser::Parser;

    /// The table a `CREATE TABLE` statement defines (id 100).
    pub(crate) fn table(sql: &str) -> TableInfo {
        let Statement::CreateTable(ct) = Parser::parse_sql(&MySql, sql).unwrap().remove(0) else {
            panic!("not a CREATE TABLE: {sql}")
        };
        crate::ddl::table_info(&ct, 1, 100, "t").unwrap().0
    }

    #[test]
    fn a_stored_null_reads_as_null_and_a_missing_column_as_its_default() {
        let t =
            table("CREATE TABLE t (id INT PRIMARY KEY, i INT DEFAULT 7, s VARCHAR(3) DEFAULT 'x')");
        let row = vec![Datum::Int(1), Datum::Null, Datum::Null];
        assert_eq!(
            decode_value(&t, &encode_value(&t, &row).unwrap()).unwrap(),
            row
        );
        // A row written before `i` and `s` existed (or, before NULLs were
        // stored, with both NULL) has neither column: both read as their
        // defaults.
        let old = encode_row(&[(t.columns[0].id, Datum::Int(1))]).unwrap();
        assert_eq!(
            decode_value(&t, &old).unwrap(),
            vec![Datum::Int(1), Datum::Int(7), Datum::Bytes(b"x".to_vec())]
        );
    }
}
