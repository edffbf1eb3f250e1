//! The row value format: a row's columns keyed by column id.
//!
//! Layout (version 1): the version byte, a varint column count, then for each
//! column in increasing id order a varint id and the [`encode_value`] datum.
//! A NULL is a column whose datum is NULL. A column added to a table after
//! a row was written is absent from that row, and readers substitute the
//! column's default, so adding a column never rewrites rows.

use super::datum::{Datum, decode_value, encode_value, skip_value};
use super::error::CodecError;
use super::number::{decode_var_u64, encode_var_u64, read_u8};

/// The only row format version so far.
pub const ROW_FORMAT_V1: u8 = 1;

/// The fewest bytes one encoded column takes: a one-byte id and a flag.
const MIN_COLUMN_LEN: usize = 2;

/// Encodes a row. Columns may come in any order; they are written sorted by
/// id. Fails if an id appears twice or a datum cannot be encoded (see
/// [`encode_value`]).
pub fn encode_row(columns: &[(u32, Datum)]) -> Result<Vec<u8>, CodecError> {
    let mut sorted: Vec<&(u32, Datum)> = columns.iter().collect();
    sorted.sort_unstable_by_key(|(id, _)| *id);
    if let Some(pair) = sorted.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(CodecError::DuplicateColumn { id: pair[0].0 });
    }
    let mut buf = Vec::with_capacity(2 + columns.len() * 10);
    buf.push(ROW_FORMAT_V1);
    encode_var_u64(sorted.len() as u64, &mut buf);
    for (id, datum) in sorted {
        encode_var_u64(u64::from(*id), &mut buf);
        encode_value(datum, &mut buf)?;
    }
    Ok(buf)
}

/// Decodes every column of a row, in id order.
pub fn decode_row(bytes: &[u8]) -> Result<Vec<(u32, Datum)>, CodecError> {
    let mut reader = RowReader::new(bytes)?;
    let mut columns = Vec::with_capacity(reader.remaining);
    while let Some(id) = reader.next_id()? {
        columns.push((id, decode_value(&mut reader.rest)?));
    }
    reader.finish()?;
    Ok(columns)
}

/// Decodes the `wanted` columns of a row: one entry per `wanted` id, in the
/// same order, `None` where the row lacks the column (the caller applies the
/// column's default). Other columns are stepped over without being built,
/// though the whole row is still checked to be well framed.
pub fn decode_row_columns(bytes: &[u8], wanted: &[u32]) -> Result<Vec<Option<Datum>>, CodecError> {
    let mut by_id: Vec<usize> = (0..wanted.len()).collect();
    by_id.sort_unstable_by_key(|&i| wanted[i]);
    let mut out = vec![None; wanted.len()];
    let mut next = 0; // first position in `by_id` not yet matched
    let mut reader = RowReader::new(bytes)?;
    while let Some(id) = reader.next_id()? {
        while next < by_id.len() && wanted[by_id[next]] < id {
            next += 1;
        }
        if next == by_id.len() || wanted[by_id[next]] != id {
            skip_value(&mut reader.rest)?;
            continue;
        }
        let datum = decode_value(&mut reader.rest)?;
        while next < by_id.len() && wanted[by_id[next]] == id {
            out[by_id[next]] = Some(datum.clone());
            next += 1;
        }
    }
    reader.finish()?;
    Ok(out)
}

/// Walks the column ids of a row, checking the header, the id order and that
/// nothing follows the last column. The caller consumes each value from
/// `rest` after its id.
struct RowReader<'a> {
    rest: &'a [u8],
    remaining: usize,
    last_id: Option<u32>,
}

impl<'a> RowReader<'a> {
    fn new(bytes: &'a [u8]) -> Result<Self, CodecError> {
        let mut rest = bytes;
        let version = read_u8(&mut rest, "row version")?;
        if version != ROW_FORMAT_V1 {
            return Err(CodecError::BadRowVersion(version));
        }
        let count = decode_var_u64(&mut rest)?;
        // Bounds the count before anything is allocated from it.
        let remaining = usize::try_from(count)
            .ok()
            .filter(|&n| n <= rest.len() / MIN_COLUMN_LEN)
            .ok_or(CodecError::Truncated {
                what: "row columns",
            })?;
        Ok(RowReader {
            rest,
            remaining,
            last_id: None,
        })
    }

    /// The next column's id, or `None` after the last column.
    fn next_id(&mut self) -> Result<Option<u32>, CodecError> {
        if self.remaining == 0 {
            return Ok(None);
        }
        self.remaining -= 1;
        let id = decode_var_u64(&mut self.rest)?;
        let id = u32::try_from(id).map_err(|_| CodecError::OutOfRange { what: "column id" })?;
        if self.last_id.is_some_and(|last| id <= last) {
            return Err(CodecError::UnsortedColumn { id });
        }
        self.last_id = Some(id);
        Ok(Some(id))
    }

    fn finish(self) -> Result<(), CodecError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(CodecError::TrailingBytes { what: "row" })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::datum::tests::datum;
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn sample() -> Vec<(u32, Datum)> {
        vec![
            (1, Datum::Int(-5)),
            (2, Datum::Null),
            (4, Datum::Bytes(b"hello".to_vec())),
            (300, Datum::Decimal("-0012.50".into())),
            (u32::MAX, Datum::Float(1.5)),
        ]
    }

    #[test]
    fn layout() {
        let row = encode_row(&[(3, Datum::Int(1)), (1, Datum::Null)]).unwrap();
        // version, count, id 1, Null flag, id 3, Int flag, zigzag(1)
        assert_eq!(row, [1, 2, 1, 0x00, 3, 0x03, 2]);
        assert_eq!(encode_row(&[]).unwrap(), [1, 0]);
        assert_eq!(decode_row(&[1, 0]).unwrap(), []);
    }

    #[test]
    fn round_trip_sorts_columns() {
        let mut shuffled = sample();
        shuffled.reverse();
        let row = encode_row(&shuffled).unwrap();
        assert_eq!(row, encode_row(&sample()).unwrap());
        assert_eq!(decode_row(&row).unwrap(), sample());
    }

    #[test]
    fn encode_rejects_duplicates_and_bad_values() {
        let dup = [(2, Datum::Int(1)), (1, Datum::Null), (2, Datum::Null)];
        assert_eq!(encode_row(&dup), Err(CodecError::DuplicateColumn { id: 2 }));
        let bad = [(1, Datum::Decimal("x".into()))];
        assert!(matches!(
            encode_row(&bad),
            Err(CodecError::BadDecimal { .. })
        ));
    }

    #[test]
    fn wanted_columns() {
        let row = encode_row(&sample()).unwrap();
        let got = decode_row_columns(&row, &[300, 3, 1, 300, u32::MAX, 0]).unwrap();
        let decimal = Some(Datum::Decimal("-0012.50".into()));
        let expected = vec![
            decimal.clone(),
            None,
            Some(Datum::Int(-5)),
            decimal,
            Some(Datum::Float(1.5)),
            None,
        ];
        assert_eq!(got, expected);
        assert_eq!(decode_row_columns(&row, &[]).unwrap(), []);
    }

    #[test]
    fn decode_rejects_corrupt_rows() {
        let row = encode_row(&sample()).unwrap();
        let mut v2 = row.clone();
        v2[0] = 2;
        assert_eq!(decode_row(&v2), Err(CodecError::BadRowVersion(2)));
        let mut trailing = row.clone();
        trailing.push(0);
        assert_eq!(
            decode_row(&trailing),
            Err(CodecError::TrailingBytes { what: "row" })
        );
        assert!(decode_row_columns(&trailing, &[1]).is_err());
        // ids 3 then 1; then 1 twice
        let unsorted = [1, 2, 3, 0x00, 1, 0x00];
        assert_eq!(
            decode_row(&unsorted),
            Err(CodecError::UnsortedColumn { id: 1 })
        );
        let duplicate = [1, 2, 1, 0x00, 1, 0x00];
        assert_eq!(
            decode_row(&duplicate),
            Err(CodecError::UnsortedColumn { id: 1 })
        );
        assert!(decode_row_columns(&duplicate, &[1]).is_err());
        // A count no input could hold must not allocate.
        let huge = [
            1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,
        ];
        assert_eq!(
            decode_row(&huge),
            Err(CodecError::Truncated {
                what: "row columns"
            })
        );
        // Column id beyond u32.
        let wide_id = [1, 1, 0x80, 0x80, 0x80, 0x80, 0x10, 0x00];
        assert_eq!(
            decode_row(&wide_id),
            Err(CodecError::OutOfRange { what: "column id" })
        );
        assert!(decode_row(&[]).is_err());
    }

    #[test]
    fn truncated_rows_never_decode() {
        let row = encode_row(&sample()).unwrap();
        for len in 0..row.len() {
            assert!(decode_row(&row[..len]).is_err(), "{len}");
            assert!(decode_row_columns(&row[..len], &[1, 4]).is_err(), "{len}");
        }
    }

    fn columns() -> impl Strategy<Value = BTreeMap<u32, Datum>> {
        proptest::collection::btree_map(prop_oneof![0u32..20, any::<u32>()], datum(), 0..8)
    }

    /// What a value round trip returns: only a negative zero time changes.
    fn normal_form(d: &Datum) -> Datum {
        match d {
            Datum::Time { micros: 0, .. } => Datum::Time {
                negative: false,
                micros: 0,
            },
            other => other.clone(),
        }
    }

    proptest! {
        #[test]
        fn rows_round_trip(cols in columns()) {
            let input: Vec<(u32, Datum)> = cols.iter().rev().map(|(i, d)| (*i, d.clone())).collect();
            let row = encode_row(&input)?;
            let expected: Vec<(u32, Datum)> =
                cols.iter().map(|(i, d)| (*i, normal_form(d))).collect();
            prop_assert_eq!(decode_row(&row)?, expected);
        }

        #[test]
        fn wanted_columns_match_a_lookup(
            cols in columns(),
            wanted in proptest::collection::vec(prop_oneof![0u32..20, any::<u32>()], 0..6),
        ) {
            let input: Vec<(u32, Datum)> = cols.iter().map(|(i, d)| (*i, d.clone())).collect();
            let row = encode_row(&input)?;
            let expected: Vec<Option<Datum>> =
                wanted.iter().map(|id| cols.get(id).map(normal_form)).collect();
            prop_assert_eq!(decode_row_columns(&row, &wanted)?, expected);
        }

        #[test]
        fn truncated_random_rows_never_decode(cols in columns()) {
            let input: Vec<(u32, Datum)> = cols.into_iter().collect();
            let row = encode_row(&input)?;
            for len in 0..row.len() {
                prop_assert!(decode_row(&row[..len]).is_err());
            }
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut with_version = vec![ROW_FORMAT_V1];
            with_version.extend_from_slice(&bytes);
            let _ = decode_row(&with_version);
            let _ = decode_row_columns(&with_version, &[0, 1, 2]);
        }
    }
}
