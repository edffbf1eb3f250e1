//! Table keys: where rows and index entries live in the KV keyspace.
//!
//! Every key of table `T` starts with `t` + [`encode_i64`]`(T)`, so a table
//! is one contiguous range, and its rows and each of its indexes are
//! contiguous sub-ranges under `_r` and `_i` + [`encode_i64`]`(index id)`.
//! All parts are memcomparable, so the KV order is table, then index (rows
//! after all indexes, as `_i` < `_r`), then the values in column order.

use super::datum::{self, Datum};
use super::error::CodecError;
use super::number::{decode_i64, encode_i64, read_array, read_u8};

/// First byte of every table key.
pub const TABLE_PREFIX: u8 = b't';
/// Separates the table id from a row handle.
pub const ROW_SEPARATOR: [u8; 2] = *b"_r";
/// Separates the table id from an index id.
pub const INDEX_SEPARATOR: [u8; 2] = *b"_i";

/// Length of `t` + table id + separator.
const TABLE_AND_SEPARATOR_LEN: usize = 1 + 8 + 2;
/// Length of an int handle.
const INT_HANDLE_LEN: usize = 8;

/// How a row is identified within its table.
#[derive(Debug, Clone, PartialEq)]
pub enum Handle {
    /// The row id or integer primary key.
    Int(i64),
    /// The values of a composite (or non-integer) clustered primary key.
    Common(Vec<Datum>),
}

/// A decoded table key.
#[derive(Debug, Clone, PartialEq)]
pub enum TableKey {
    /// A row of a table.
    Row { table_id: i64, handle: Handle },
    /// An index entry. For a non-unique index the row's handle datums come
    /// last in `values`; only the schema can tell where they start.
    Index {
        table_id: i64,
        index_id: i64,
        values: Vec<Datum>,
    },
}

/// `t` + table id: the prefix of every key of the table.
pub fn table_prefix(table_id: i64) -> Vec<u8> {
    let mut key = Vec::with_capacity(TABLE_AND_SEPARATOR_LEN + 8);
    key.push(TABLE_PREFIX);
    encode_i64(table_id, &mut key);
    key
}

/// `t` + table id + `_r`: the prefix of every row key of the table.
pub fn row_prefix(table_id: i64) -> Vec<u8> {
    let mut key = table_prefix(table_id);
    key.extend_from_slice(&ROW_SEPARATOR);
    key
}

/// `t` + table id + `_i` + index id: the prefix of every entry of the index.
pub fn index_prefix(table_id: i64, index_id: i64) -> Vec<u8> {
    let mut key = table_prefix(table_id);
    key.extend_from_slice(&INDEX_SEPARATOR);
    encode_i64(index_id, &mut key);
    key
}

/// Row key with an int handle: `t` + table id + `_r` + [`encode_i64`] of
/// the handle (8 bytes, no datum flag).
pub fn row_key(table_id: i64, handle: i64) -> Vec<u8> {
    let mut key = row_prefix(table_id);
    encode_i64(handle, &mut key);
    key
}

/// Row key with a common handle (a clustered primary key that is not a
/// single integer): `t` + table id + `_r` + the key-encoded datums.
/// `handle` must not be empty (that would be the row prefix itself).
pub fn row_key_common(table_id: i64, handle: &[Datum]) -> Result<Vec<u8>, CodecError> {
    let mut key = row_prefix(table_id);
    for datum in handle {
        datum::encode_key(datum, &mut key)?;
    }
    Ok(key)
}

/// [`row_key`] or [`row_key_common`], whichever `handle` calls for.
pub fn row_key_for_handle(table_id: i64, handle: &Handle) -> Result<Vec<u8>, CodecError> {
    match handle {
        Handle::Int(h) => Ok(row_key(table_id, *h)),
        Handle::Common(datums) => row_key_common(table_id, datums),
    }
}

/// Index entry key: `t` + table id + `_i` + index id + the key-encoded
/// `values`. A unique index passes no handle (the row's handle goes in the
/// entry's value); a non-unique index appends the row's `handle` so entries
/// with equal values stay distinct. An int handle is appended as a key-encoded
/// `Datum::Int` (with its flag), unlike in [`row_key`].
pub fn index_key(
    table_id: i64,
    index_id: i64,
    values: &[Datum],
    handle: Option<&Handle>,
) -> Result<Vec<u8>, CodecError> {
    let mut key = index_prefix(table_id, index_id);
    for datum in values {
        datum::encode_key(datum, &mut key)?;
    }
    match handle {
        None => {}
        Some(Handle::Int(h)) => datum::encode_key(&Datum::Int(*h), &mut key)?,
        Some(Handle::Common(datums)) => {
            for datum in datums {
                datum::encode_key(datum, &mut key)?;
            }
        }
    }
    Ok(key)
}

/// The smallest key greater than every key that starts with `prefix`, for
/// the exclusive end of a prefix scan: trailing 0xFF bytes are dropped and
/// the last remaining byte is incremented. Empty when no such key exists
/// (`prefix` empty or all 0xFF), meaning "no upper bound".
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last != 0xFF {
            end.push(last + 1);
            break;
        }
    }
    end
}

/// Decodes a table key.
///
/// Without the schema, a row key's handle is taken to be an int handle when
/// exactly 8 bytes follow `_r`, and a common handle otherwise. The only
/// common handles that encode to 8 bytes consist of NULLs and zero decimals
/// (e.g. four zero DECIMAL columns); use [`decode_row_key`] with the table's
/// handle kind where that can matter.
pub fn decode_key(key: &[u8]) -> Result<TableKey, CodecError> {
    let mut rest = key;
    let table_id = decode_table_prefix(&mut rest)?;
    match read_array::<2>(&mut rest, "key separator")? {
        ROW_SEPARATOR => {
            let handle = decode_handle(rest, rest.len() != INT_HANDLE_LEN)?;
            Ok(TableKey::Row { table_id, handle })
        }
        INDEX_SEPARATOR => {
            let index_id = decode_i64(&mut rest)?;
            let values = decode_datums(rest)?;
            Ok(TableKey::Index {
                table_id,
                index_id,
                values,
            })
        }
        _ => Err(CodecError::BadKeyPrefix {
            what: "key separator",
        }),
    }
}

/// Decodes a row key of a table whose handle kind is known: returns the
/// table id and the handle.
pub fn decode_row_key(key: &[u8], common_handle: bool) -> Result<(i64, Handle), CodecError> {
    let mut rest = key;
    let table_id = decode_table_prefix(&mut rest)?;
    if read_array::<2>(&mut rest, "key separator")? != ROW_SEPARATOR {
        return Err(CodecError::BadKeyPrefix {
            what: "row separator",
        });
    }
    Ok((table_id, decode_handle(rest, common_handle)?))
}

fn decode_table_prefix(rest: &mut &[u8]) -> Result<i64, CodecError> {
    if read_u8(rest, "table prefix")? != TABLE_PREFIX {
        return Err(CodecError::BadKeyPrefix {
            what: "table prefix",
        });
    }
    decode_i64(rest)
}

/// The table of a row key, without decoding its handle; `None` for any
/// other key (an index entry, metadata).
pub fn row_key_table(key: &[u8]) -> Option<i64> {
    if key.len() <= TABLE_AND_SEPARATOR_LEN || key[9..11] != ROW_SEPARATOR {
        return None;
    }
    let mut rest = key;
    decode_table_prefix(&mut rest).ok()
}

/// Decodes everything after `_r`.
fn decode_handle(mut rest: &[u8], common: bool) -> Result<Handle, CodecError> {
    if !common {
        let handle = decode_i64(&mut rest)?;
        if !rest.is_empty() {
            return Err(CodecError::TrailingBytes { what: "row handle" });
        }
        return Ok(Handle::Int(handle));
    }
    if rest.is_empty() {
        return Err(CodecError::Truncated { what: "row handle" });
    }
    decode_datums(rest).map(Handle::Common)
}

/// Decodes key-encoded datums until the input ends.
fn decode_datums(mut rest: &[u8]) -> Result<Vec<Datum>, CodecError> {
    let mut datums = Vec::new();
    while !rest.is_empty() {
        datums.push(datum::decode_key(&mut rest)?);
    }
    Ok(datums)
}

#[cfg(test)]
mod tests {
    use super::super::datum::tests::{datum, key as datum_key, ref_cmp};
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Ordering;

    #[test]
    fn row_key_layout() {
        let mut expected = vec![b't', 0x80, 0, 0, 0, 0, 0, 0, 1, b'_', b'r'];
        expected.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(row_key(1, 2), expected);
        assert_eq!(row_key_for_handle(1, &Handle::Int(2)).unwrap(), expected);
    }

    #[test]
    fn index_key_layout() {
        let values = [Datum::Int(7)];
        let key = index_key(1, 3, &values, Some(&Handle::Int(9))).unwrap();
        let mut expected = index_prefix(1, 3);
        assert_eq!(expected[9..11], *b"_i");
        expected.extend(datum_key(&Datum::Int(7)));
        expected.extend(datum_key(&Datum::Int(9)));
        assert_eq!(key, expected);
    }

    #[test]
    fn prefix_end_cases() {
        assert_eq!(prefix_end(&[1, 2]), [1, 3]);
        assert_eq!(prefix_end(&[1, 0xFF]), [2]);
        assert_eq!(prefix_end(&[1, 0xFE, 0xFF, 0xFF]), [1, 0xFF]);
        assert_eq!(prefix_end(&[0xFF, 0xFF]), [0u8; 0]);
        assert_eq!(prefix_end(&[]), [0u8; 0]);
    }

    #[test]
    fn ranges_nest_and_do_not_overlap() {
        let (table, index) = (table_prefix(5), index_prefix(5, 1));
        let rows = row_prefix(5);
        let in_range = |key: &[u8], prefix: &[u8]| {
            key >= prefix && key < prefix_end(prefix).as_slice() && key.starts_with(prefix)
        };
        let row = row_key(5, -1);
        let entry = index_key(5, 1, &[Datum::Bytes(vec![0xFF; 20])], None).unwrap();
        assert!(in_range(&row, &rows) && in_range(&row, &table) && !in_range(&row, &index));
        assert!(in_range(&entry, &index) && in_range(&entry, &table) && !in_range(&entry, &rows));
        assert!(prefix_end(&index) <= rows, "indexes sort before rows");
        assert!(prefix_end(&table) <= table_prefix(6));
        assert!(!in_range(&row_key(6, i64::MIN), &table));
        assert!(!in_range(&row_key(4, i64::MAX), &table));
    }

    #[test]
    fn decode_round_trips() {
        let int = decode_key(&row_key(-3, 42)).unwrap();
        assert_eq!(
            int,
            TableKey::Row {
                table_id: -3,
                handle: Handle::Int(42)
            }
        );
        let pk = vec![Datum::Bytes(b"a".to_vec()), Datum::Int(1)];
        let common = decode_key(&row_key_common(7, &pk).unwrap()).unwrap();
        assert_eq!(
            common,
            TableKey::Row {
                table_id: 7,
                handle: Handle::Common(pk.clone())
            }
        );
        let handle = Handle::Common(pk.clone());
        let entry = index_key(7, 2, &[Datum::Null], Some(&handle)).unwrap();
        let mut values = vec![Datum::Null];
        values.extend(pk);
        assert_eq!(
            decode_key(&entry).unwrap(),
            TableKey::Index {
                table_id: 7,
                index_id: 2,
                values
            }
        );
    }

    #[test]
    fn decode_row_key_resolves_the_eight_byte_ambiguity() {
        let zeros = vec![Datum::Decimal("0".into()); 4];
        let key = row_key_common(1, &zeros).unwrap();
        assert!(matches!(
            decode_key(&key).unwrap(),
            TableKey::Row {
                handle: Handle::Int(_),
                ..
            }
        ));
        assert_eq!(
            decode_row_key(&key, true).unwrap(),
            (1, Handle::Common(zeros))
        );
        assert_eq!(
            decode_row_key(&row_key(1, 5), false).unwrap(),
            (1, Handle::Int(5))
        );
        let index = index_prefix(1, 1);
        assert!(matches!(
            decode_row_key(&index, false),
            Err(CodecError::BadKeyPrefix { .. })
        ));
        let mut long = row_key(1, 5);
        long.push(0);
        assert!(matches!(
            decode_row_key(&long, false),
            Err(CodecError::TrailingBytes { .. })
        ));
    }

    #[test]
    fn decode_rejects_foreign_keys() {
        let bad = |key: &[u8]| decode_key(key).unwrap_err();
        assert_eq!(
            bad(b"m\x80\0\0\0\0\0\0\x01_r"),
            CodecError::BadKeyPrefix {
                what: "table prefix"
            }
        );
        let mut wrong_sep = table_prefix(1);
        wrong_sep.extend_from_slice(b"_x");
        assert_eq!(
            bad(&wrong_sep),
            CodecError::BadKeyPrefix {
                what: "key separator"
            }
        );
        assert_eq!(
            bad(&row_prefix(1)),
            CodecError::Truncated { what: "row handle" }
        );
        let mut bad_datum = index_prefix(1, 1);
        bad_datum.push(0xEE);
        assert!(matches!(bad(&bad_datum), CodecError::BadFlag { .. }));
    }

    #[test]
    fn truncated_keys_fail_or_decode_shorter() {
        let handle = Handle::Common(vec![Datum::Bytes(b"abc".to_vec())]);
        let values = [Datum::Decimal("-1.5".into()), Datum::Int(3)];
        let keys = [
            row_key(1, 2),
            row_key_common(1, &[Datum::Bytes(b"xyz".to_vec()), Datum::Int(3)]).unwrap(),
            index_key(1, 2, &values, Some(&handle)).unwrap(),
        ];
        for key in keys {
            for len in 0..key.len() {
                let result = decode_key(&key[..len]);
                if len < TABLE_AND_SEPARATOR_LEN {
                    assert!(result.is_err(), "{len}: {result:?}");
                }
                // Longer prefixes may be shorter valid keys (an index key cut
                // between datums); they must not panic, and must not decode
                // to the original.
                assert_ne!(result, decode_key(&key));
            }
        }
    }

    fn handle() -> impl Strategy<Value = Handle> {
        prop_oneof![
            any::<i64>().prop_map(Handle::Int),
            proptest::collection::vec(datum(), 1..3).prop_map(Handle::Common),
        ]
    }

    proptest! {
        #[test]
        fn row_keys_sort_by_table_then_handle(t1 in -2i64..2, h1: i64, t2 in -2i64..2, h2: i64) {
            prop_assert_eq!(row_key(t1, h1).cmp(&row_key(t2, h2)), (t1, h1).cmp(&(t2, h2)));
        }

        #[test]
        fn index_keys_sort_by_id_then_values(
            i1 in 0i64..3,
            i2 in 0i64..3,
            v1 in proptest::collection::vec(datum(), 0..3),
            v2 in proptest::collection::vec(datum(), 0..3),
        ) {
            let expected = i1.cmp(&i2).then_with(|| {
                v1.iter()
                    .zip(&v2)
                    .map(|(a, b)| ref_cmp(a, b))
                    .find(|o| o.is_ne())
                    .unwrap_or(v1.len().cmp(&v2.len()))
            });
            let (k1, k2) = (index_key(1, i1, &v1, None)?, index_key(1, i2, &v2, None)?);
            prop_assert_eq!(k1.cmp(&k2), expected);
            if expected == Ordering::Equal {
                prop_assert_eq!(k1, k2);
            }
        }

        #[test]
        fn keys_round_trip(table_id: i64, index_id: i64, h in handle(),
                           values in proptest::collection::vec(datum(), 0..3)) {
            // Round trips normalize datums, so compare by re-encoding.
            let row = row_key_for_handle(table_id, &h)?;
            let (t, exact) = decode_row_key(&row, matches!(h, Handle::Common(_)))?;
            prop_assert_eq!(t, table_id);
            prop_assert_eq!(row_key_for_handle(t, &exact)?, row.clone());
            let TableKey::Row { table_id: t, handle: guessed } = decode_key(&row)? else {
                panic!("not a row key");
            };
            prop_assert_eq!(row_key_for_handle(t, &guessed)?, row);

            let entry = index_key(table_id, index_id, &values, Some(&h))?;
            let TableKey::Index { table_id: t, index_id: i, values: all } = decode_key(&entry)? else {
                panic!("not an index key");
            };
            prop_assert_eq!((t, i), (table_id, index_id));
            prop_assert!(all.len() >= values.len());
            prop_assert_eq!(index_key(t, i, &all, None)?, entry);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = decode_key(&bytes);
            let _ = decode_row_key(&bytes, true);
            let _ = decode_row_key(&bytes, false);
        }
    }
}
