//! The codec owns Duet's key layout and value encodings: which bytes every
//! table key is made of, the memcomparable encodings keys are built from, and
//! the compact encodings of values and rows. Every key kind is listed here,
//! and no other module builds table keys by hand. It does not own MVCC (the
//! mvcc module wraps these keys with timestamps), the engine, or the schema:
//! nothing here knows which column has which type.
//!
//! Key kinds (`T` is a table id, `I` an index id, both [`encode_i64`]):
//!
//! * Row key, int handle: `t` T `_r` [`encode_i64`]`(handle)` — [`row_key`].
//! * Row key, common handle (a clustered primary key that is not one
//!   integer): `t` T `_r` key-encoded datums — [`row_key_common`].
//! * Unique index entry: `t` T `_i` I key-encoded values — [`index_key`]
//!   with no handle; the row's handle is stored in the entry's value.
//! * Non-unique index entry: as unique, followed by the key-encoded handle
//!   (an int handle as a `Datum::Int`) — [`index_key`] with a handle.
//! * Range prefixes: [`table_prefix`] (`t` T), [`row_prefix`] (`t` T `_r`),
//!   [`index_prefix`] (`t` T `_i` I), with [`prefix_end`] as the exclusive
//!   upper bound of a prefix scan.
//! * MVCC versions: the mvcc module adds timestamp suffixes to these keys,
//!   encoding the user key with [`encode_bytes`] (so it stays prefix-free
//!   and ordered) followed by [`encode_u64_desc`] of the timestamp (so newer
//!   versions of a key sort first).
//!
//! Encodings: memcomparable numbers and byte strings in [`number`], SQL
//! values as [`Datum`] with a memcomparable key encoding and a compact value
//! encoding in [`datum`], the decimal text format, its normalization and its
//! memcomparable encoding in [`decimal`], and rows keyed by column id in
//! [`row`].
//!
//! Both `key::decode_key` (a whole table key) and `datum::decode_key` (one
//! datum) exist; at this level the datum one is [`decode_key`] and the table
//! one is [`decode_table_key`].

pub mod datum;
pub mod decimal;
pub mod error;
pub mod key;
pub mod number;
pub mod row;

pub use datum::{Datum, decode_key, decode_value, encode_key, encode_value};
pub use decimal::{decode_decimal, encode_decimal, normalize_decimal};
pub use error::CodecError;
pub use key::{
    Handle, INDEX_SEPARATOR, ROW_SEPARATOR, TABLE_PREFIX, TableKey, decode_key as decode_table_key,
    decode_row_key, index_key, index_prefix, prefix_end, row_key, row_key_common,
    row_key_for_handle, row_prefix, table_prefix,
};
pub use number::{
    decode_bytes, decode_f64, decode_i64, decode_u64, decode_u64_desc, decode_var_i64,
    decode_var_u64, encode_bytes, encode_f64, encode_i64, encode_u64, encode_u64_desc,
    encode_var_i64, encode_var_u64,
};
pub use row::{ROW_FORMAT_V1, decode_row, decode_row_columns, encode_row};
