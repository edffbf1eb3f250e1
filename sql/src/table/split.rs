//! Where `SPLIT TABLE` cuts a table's rows (TiDB's pre-split): the row
//! keys at which new regions start, from the bounds and count of
//! `BETWEEN (lo) AND (hi) REGIONS n` or the handles of `BY (v), …`. Values
//! in, keys out: the session evaluates the statement's values and the
//! cluster makes the splits.

use duet_storage::codec::Datum;
use duet_storage::codec::key::{self, Handle};

use crate::catalog::{HandleKind, TableInfo};
use crate::error::{Error, Result};
use crate::table::{collated, row_key};
use crate::types::{ColumnType, TypeKind};
use crate::value::Value;

/// The most regions one statement may ask for (TiDB's default limit).
pub const MAX_SPLIT_REGIONS: u64 = 1000;

/// The row keys that cut `[lower, upper)` of an integer-keyed table (its
/// integer primary key, or its hidden row id) into `regions` ranges of
/// equal width: `lower` and `regions - 1` more, fewer where the range is
/// narrower than the count.
pub fn between_keys(
    table: &TableInfo,
    lower: &[Value],
    upper: &[Value],
    regions: u64,
) -> Result<Vec<Vec<u8>>> {
    if !(1..=MAX_SPLIT_REGIONS).contains(&regions) {
        return Err(Error::WrongArguments(
            "SPLIT TABLE: the region count must be between 1 and 1000",
        ));
    }
    if matches!(table.handle, HandleKind::Clustered) {
        return Err(Error::WrongArguments(
            "SPLIT TABLE … BETWEEN: the table's primary key is not one integer; \
             split it with SPLIT TABLE … BY (…), …",
        ));
    }
    let (lo, hi) = (int_handle(table, lower)?, int_handle(table, upper)?);
    if lo >= hi {
        return Err(Error::WrongArguments(
            "SPLIT TABLE: the lower value must be less than the upper value",
        ));
    }
    let width = i128::from(hi) - i128::from(lo);
    let mut handles: Vec<i64> = (0..i128::from(regions))
        .map(|i| i64::try_from(i128::from(lo) + width * i / i128::from(regions)))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::Internal("split point out of range".into()))?;
    handles.dedup();
    Ok(handles
        .into_iter()
        .map(|h| key::row_key(table.id, h))
        .collect())
}

/// The row keys of the given handles (each a value per primary key
/// column; a leading part of a composite key cuts before every row that
/// starts with it), in key order, without repeats.
pub fn by_keys(table: &TableInfo, points: &[Vec<Value>]) -> Result<Vec<Vec<u8>>> {
    if points.is_empty() || points.len() as u64 > MAX_SPLIT_REGIONS {
        return Err(Error::WrongArguments(
            "SPLIT TABLE … BY: give between 1 and 1000 values",
        ));
    }
    let mut keys = points
        .iter()
        .map(|p| match table.handle {
            HandleKind::Clustered => common_key(table, p),
            _ => Ok(key::row_key(table.id, int_handle(table, p)?)),
        })
        .collect::<Result<Vec<_>>>()?;
    keys.sort();
    keys.dedup();
    Ok(keys)
}

/// The integer handle one value names.
fn int_handle(table: &TableInfo, values: &[Value]) -> Result<i64> {
    let [value] = values else {
        return Err(Error::WrongArguments(
            "SPLIT TABLE: give one value per primary key column",
        ));
    };
    let (ty, name) = match table.handle {
        HandleKind::IntPk(offset) => {
            let column = &table.columns[offset];
            (column.ty, column.name.as_str())
        }
        _ => (ColumnType::of(TypeKind::BigInt), "_tidb_rowid"),
    };
    match ty.coerce(value, name)? {
        Datum::Int(i) => Ok(i),
        // The row key holds an unsigned key's bits (see `handle_of`).
        Datum::UInt(u) => Ok(u as i64),
        _ => Err(Error::WrongArguments(
            "SPLIT TABLE: a split value may not be NULL",
        )),
    }
}

/// The row key (or key prefix) of a clustered primary key's leading
/// values.
fn common_key(table: &TableInfo, values: &[Value]) -> Result<Vec<u8>> {
    let pk = table
        .primary_index()
        .ok_or_else(|| Error::Internal("clustered table without primary key".into()))?;
    if values.is_empty() || values.len() > pk.columns.len() {
        return Err(Error::WrongArguments(
            "SPLIT TABLE: give one value per primary key column",
        ));
    }
    let datums = (pk.columns.iter().zip(values))
        .map(|(&c, v)| {
            let column = &table.columns[c];
            match column.ty.coerce(v, &column.name)? {
                Datum::Null => Err(Error::WrongArguments(
                    "SPLIT TABLE: a split value may not be NULL",
                )),
                d => Ok(collated(column, d)),
            }
        })
        .collect::<Result<Vec<Datum>>>()?;
    row_key(table, &Handle::Common(datums))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::tests::table;

    fn ints(keys: &[Vec<u8>]) -> Vec<i64> {
        keys.iter()
            .map(|k| match key::decode_row_key(k, false).unwrap().1 {
                Handle::Int(h) => h,
                other => panic!("not an integer handle: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn between_cuts_an_integer_range_into_equal_parts() {
        let t = table("CREATE TABLE t (id BIGINT PRIMARY KEY, v INT)");
        let keys = between_keys(&t, &[Value::Int(0)], &[Value::Int(100)], 4).unwrap();
        assert_eq!(ints(&keys), vec![0, 25, 50, 75]);
        // Negative bounds, and a text bound read as the key's type.
        let keys = between_keys(&t, &[Value::Int(-10)], &[Value::Str("10".into())], 2).unwrap();
        assert_eq!(ints(&keys), vec![-10, 0]);
        // A range narrower than the count gives each handle once.
        let keys = between_keys(&t, &[Value::Int(0)], &[Value::Int(3)], 10).unwrap();
        assert_eq!(ints(&keys), vec![0, 1, 2]);
        // The whole range of a BIGINT does not overflow.
        let keys = between_keys(&t, &[Value::Int(i64::MIN)], &[Value::Int(i64::MAX)], 2).unwrap();
        assert_eq!(ints(&keys), vec![i64::MIN, -1]);
    }

    #[test]
    fn a_table_without_primary_key_splits_by_row_id() {
        let t = table("CREATE TABLE t (a VARCHAR(10), b INT)");
        let keys = between_keys(&t, &[Value::Int(0)], &[Value::Int(1000)], 2).unwrap();
        assert_eq!(ints(&keys), vec![0, 500]);
        assert!(keys.iter().all(|k| k.starts_with(&key::row_prefix(t.id))));
    }

    #[test]
    fn bad_bounds_and_counts_are_refused_with_a_reason() {
        let t = table("CREATE TABLE t (id INT PRIMARY KEY)");
        let refused = |lo: i64, hi: i64, n: u64| {
            let e = between_keys(&t, &[Value::Int(lo)], &[Value::Int(hi)], n).unwrap_err();
            assert_eq!(e.code(), 1210, "{e}");
            e.to_string()
        };
        assert!(refused(10, 5, 2).contains("lower value must be less"));
        assert!(refused(5, 5, 2).contains("lower value must be less"));
        assert!(refused(0, 10, 0).contains("between 1 and 1000"));
        assert!(refused(0, 10, 1001).contains("between 1 and 1000"));
        let two = between_keys(&t, &[Value::Int(1), Value::Int(2)], &[Value::Int(3)], 2);
        assert!(two.unwrap_err().to_string().contains("one value per"));
        let null = between_keys(&t, &[Value::Null], &[Value::Int(3)], 2);
        assert!(null.unwrap_err().to_string().contains("NULL"));
        // A value the key's type cannot hold is the type's error.
        assert!(between_keys(&t, &[Value::Str("x".into())], &[Value::Int(3)], 2).is_err());
    }

    #[test]
    fn by_cuts_a_clustered_key_at_the_values_given() {
        let t = table("CREATE TABLE t (a VARCHAR(10), b INT, c INT, PRIMARY KEY (a, b))");
        let between = between_keys(&t, &[Value::Int(0)], &[Value::Int(9)], 2);
        assert!(between.unwrap_err().to_string().contains("BY"));
        let points = vec![
            vec![Value::Str("m".into()), Value::Int(5)],
            vec![Value::Str("c".into())],
            vec![Value::Str("m".into()), Value::Int(5)],
        ];
        let keys = by_keys(&t, &points).unwrap();
        assert_eq!(keys.len(), 2, "repeats are cut once");
        assert!(keys[0] < keys[1], "in key order");
        // A prefix cuts before every full key that starts with it.
        let full = by_keys(
            &t,
            &[vec![
                Value::Str("c".into()),
                Value::Int(i64::from(i32::MIN)),
            ]],
        )
        .unwrap();
        assert!(full[0].starts_with(&keys[0]) && keys[0] < full[0]);
        let too_many = vec![vec![Value::Str("a".into()), Value::Int(1), Value::Int(2)]];
        assert!(by_keys(&t, &too_many).is_err());
        assert!(by_keys(&t, &[]).is_err());
    }

    #[test]
    fn by_on_an_integer_key_gives_its_row_keys() {
        let t = table("CREATE TABLE t (id INT PRIMARY KEY)");
        let keys = by_keys(&t, &[vec![Value::Int(30)], vec![Value::Int(-4)]]).unwrap();
        assert_eq!(ints(&keys), vec![-4, 30]);
    }
}
