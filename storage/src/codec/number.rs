//! Memcomparable encodings of numbers and byte strings, plus the varints of
//! the compact value format.
//!
//! Every `encode_*` appends to a buffer; every `decode_*` reads from the front
//! of a `&mut &[u8]` and advances it past what it consumed. For the
//! memcomparable encodings, comparing two encodings byte-wise gives the same
//! answer as comparing the values, and no encoding is a prefix of another, so
//! encodings can be concatenated into tuple keys that sort field by field.
//! The varints are compact but not order-preserving: they belong in values.

use super::error::CodecError;

const SIGN_BIT: u64 = 1 << 63;

/// Data bytes per group in the bytes encoding.
const GROUP_SIZE: usize = 8;
/// Marker after a group that is full and followed by another group. A final
/// group with `n` padding bytes gets `GROUP_MARKER_FULL - n`.
const GROUP_MARKER_FULL: u8 = 0xFF;

/// Takes the next `N` bytes.
pub(crate) fn read_array<const N: usize>(
    buf: &mut &[u8],
    what: &'static str,
) -> Result<[u8; N], CodecError> {
    let (head, rest) = buf
        .split_first_chunk::<N>()
        .ok_or(CodecError::Truncated { what })?;
    *buf = rest;
    Ok(*head)
}

/// Takes the next byte.
pub(crate) fn read_u8(buf: &mut &[u8], what: &'static str) -> Result<u8, CodecError> {
    let [byte] = read_array::<1>(buf, what)?;
    Ok(byte)
}

/// Takes the next `len` bytes.
pub(crate) fn read_slice<'a>(
    buf: &mut &'a [u8],
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], CodecError> {
    if buf.len() < len {
        return Err(CodecError::Truncated { what });
    }
    let (head, rest) = buf.split_at(len);
    *buf = rest;
    Ok(head)
}

fn read_be(buf: &mut &[u8], what: &'static str) -> Result<u64, CodecError> {
    read_array::<8>(buf, what).map(u64::from_be_bytes)
}

/// Appends `v` as 8 big-endian bytes with the sign bit flipped, so negative
/// numbers sort before positive ones.
pub fn encode_i64(v: i64, buf: &mut Vec<u8>) {
    encode_u64(v as u64 ^ SIGN_BIT, buf);
}

/// Reads an [`encode_i64`] value.
pub fn decode_i64(buf: &mut &[u8]) -> Result<i64, CodecError> {
    Ok((read_be(buf, "i64")? ^ SIGN_BIT) as i64)
}

/// Appends `v` as 8 big-endian bytes.
pub fn encode_u64(v: u64, buf: &mut Vec<u8>) {
    buf.extend_from_slice(&v.to_be_bytes());
}

/// Reads an [`encode_u64`] value.
pub fn decode_u64(buf: &mut &[u8]) -> Result<u64, CodecError> {
    read_be(buf, "u64")
}

/// Appends `v` so that larger values sort first (the bitwise NOT of
/// [`encode_u64`]). MVCC timestamps use this, so a key's newest version is
/// the first one a forward scan meets.
pub fn encode_u64_desc(v: u64, buf: &mut Vec<u8>) {
    encode_u64(!v, buf);
}

/// Reads an [`encode_u64_desc`] value.
pub fn decode_u64_desc(buf: &mut &[u8]) -> Result<u64, CodecError> {
    read_be(buf, "u64").map(|v| !v)
}

/// Appends the 8 bytes of `v`'s IEEE bits, transformed to sort like numbers:
/// positive values get their sign bit flipped (so they sort above all
/// negatives), negative values get every bit flipped (so larger magnitudes
/// sort lower). `-0.0` is written as `0.0`.
///
/// NaN has no place in the order; callers must refuse it (the `Datum` key
/// encoding does).
pub fn encode_f64(v: f64, buf: &mut Vec<u8>) {
    let v = if v == 0.0 { 0.0 } else { v };
    let bits = v.to_bits();
    let bits = if bits & SIGN_BIT == 0 {
        bits ^ SIGN_BIT
    } else {
        !bits
    };
    encode_u64(bits, buf);
}

/// Reads an [`encode_f64`] value.
pub fn decode_f64(buf: &mut &[u8]) -> Result<f64, CodecError> {
    let bits = read_be(buf, "f64")?;
    let bits = if bits & SIGN_BIT != 0 {
        bits ^ SIGN_BIT
    } else {
        !bits
    };
    Ok(f64::from_bits(bits))
}

/// Appends `data` in the memcomparable group format: 8-byte groups, each
/// followed by a marker byte. A full group with more data after it gets the
/// marker 255; the last group is padded with zeros to 8 bytes and gets
/// `255 - padding`. When `data.len()` is a multiple of 8 the last group is
/// all padding (marker 247).
///
/// Two encodings compare like the byte strings: within a group the data
/// bytes decide, and where one string ends its padding zeros compare below
/// (or equal to) the other's data, with the smaller marker breaking ties.
pub fn encode_bytes(data: &[u8], buf: &mut Vec<u8>) {
    buf.reserve((data.len() / GROUP_SIZE + 1) * (GROUP_SIZE + 1));
    let mut groups = data.chunks_exact(GROUP_SIZE);
    for group in &mut groups {
        buf.extend_from_slice(group);
        buf.push(GROUP_MARKER_FULL);
    }
    let last = groups.remainder();
    let padding = GROUP_SIZE - last.len();
    buf.extend_from_slice(last);
    buf.resize(buf.len() + padding, 0);
    buf.push(GROUP_MARKER_FULL - padding as u8);
}

/// Reads an [`encode_bytes`] value, rejecting markers below 247 and non-zero
/// padding so that every byte string has exactly one encoding.
pub fn decode_bytes(buf: &mut &[u8]) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    loop {
        let group = read_array::<{ GROUP_SIZE + 1 }>(buf, "bytes group")?;
        let (data, marker) = (&group[..GROUP_SIZE], group[GROUP_SIZE]);
        if marker == GROUP_MARKER_FULL {
            out.extend_from_slice(data);
            continue;
        }
        let padding = usize::from(GROUP_MARKER_FULL - marker);
        if padding > GROUP_SIZE {
            return Err(CodecError::BadBytesGroup);
        }
        let (kept, pad) = data.split_at(GROUP_SIZE - padding);
        if pad.iter().any(|&b| b != 0) {
            return Err(CodecError::BadBytesGroup);
        }
        out.extend_from_slice(kept);
        return Ok(out);
    }
}

/// Appends `v` as an LEB128 varint: 7 bits per byte, low bits first, the
/// high bit set on every byte but the last. Not memcomparable.
pub fn encode_var_u64(mut v: u64, buf: &mut Vec<u8>) {
    while v >= 0x80 {
        buf.push(v as u8 | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Reads an [`encode_var_u64`] value.
pub fn decode_var_u64(buf: &mut &[u8]) -> Result<u64, CodecError> {
    let mut v = 0u64;
    for i in 0..10 {
        let byte = read_u8(buf, "varint")?;
        // The tenth byte holds only bit 63.
        if i == 9 && byte > 1 {
            return Err(CodecError::VarintOverflow);
        }
        v |= u64::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(CodecError::VarintOverflow)
}

/// Appends `v` zigzag-mapped (0, -1, 1, -2, … to 0, 1, 2, 3, …) as a varint,
/// so small magnitudes of either sign stay short.
pub fn encode_var_i64(v: i64, buf: &mut Vec<u8>) {
    encode_var_u64(((v << 1) ^ (v >> 63)) as u64, buf);
}

/// Reads an [`encode_var_i64`] value.
pub fn decode_var_i64(buf: &mut &[u8]) -> Result<i64, CodecError> {
    let z = decode_var_u64(buf)?;
    Ok((z >> 1) as i64 ^ -((z & 1) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc<T: Copy>(f: fn(T, &mut Vec<u8>), v: T) -> Vec<u8> {
        let mut buf = Vec::new();
        f(v, &mut buf);
        buf
    }

    fn bytes(data: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_bytes(data, &mut buf);
        buf
    }

    /// Decodes all of `encoded`, requiring it to be consumed exactly.
    fn dec<T>(f: fn(&mut &[u8]) -> Result<T, CodecError>, encoded: &[u8]) -> T {
        let mut rest = encoded;
        let v = f(&mut rest).unwrap();
        assert!(rest.is_empty(), "{} bytes left", rest.len());
        v
    }

    /// Every strict prefix of `encoded` must fail to decode.
    fn assert_truncations_fail<T: std::fmt::Debug>(
        f: fn(&mut &[u8]) -> Result<T, CodecError>,
        encoded: &[u8],
    ) {
        for len in 0..encoded.len() {
            let result = f(&mut &encoded[..len]);
            assert!(
                result.is_err(),
                "prefix of {len} bytes decoded to {result:?}"
            );
        }
    }

    #[test]
    fn i64_edges() {
        let values = [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX];
        for w in values.windows(2) {
            assert!(enc(encode_i64, w[0]) < enc(encode_i64, w[1]));
        }
        for v in values {
            assert_eq!(dec(decode_i64, &enc(encode_i64, v)), v);
            assert_truncations_fail(decode_i64, &enc(encode_i64, v));
        }
        assert_eq!(enc(encode_i64, 0), [0x80, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            enc(encode_i64, -1),
            [0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        );
    }

    #[test]
    fn u64_edges() {
        for v in [0, 1, u64::MAX] {
            assert_eq!(dec(decode_u64, &enc(encode_u64, v)), v);
            assert_eq!(dec(decode_u64_desc, &enc(encode_u64_desc, v)), v);
            assert_truncations_fail(decode_u64, &enc(encode_u64, v));
            assert_truncations_fail(decode_u64_desc, &enc(encode_u64_desc, v));
        }
        assert_eq!(enc(encode_u64_desc, u64::MAX), [0; 8]);
        assert!(enc(encode_u64_desc, 2) < enc(encode_u64_desc, 1));
    }

    #[test]
    fn f64_edges() {
        assert_eq!(enc(encode_f64, -0.0), enc(encode_f64, 0.0));
        assert_eq!(
            dec(decode_f64, &enc(encode_f64, -0.0)).to_bits(),
            0.0f64.to_bits()
        );
        let values = [
            f64::NEG_INFINITY,
            f64::MIN,
            -1.5,
            -f64::MIN_POSITIVE,
            -1e-310, // subnormal
            0.0,
            1e-310,
            f64::MIN_POSITIVE,
            1.0,
            f64::MAX,
            f64::INFINITY,
        ];
        for w in values.windows(2) {
            assert!(
                enc(encode_f64, w[0]) < enc(encode_f64, w[1]),
                "{} < {}",
                w[0],
                w[1]
            );
        }
        for v in values {
            assert_eq!(dec(decode_f64, &enc(encode_f64, v)), v);
            assert_truncations_fail(decode_f64, &enc(encode_f64, v));
        }
    }

    #[test]
    fn bytes_layout() {
        assert_eq!(bytes(b""), [0, 0, 0, 0, 0, 0, 0, 0, 247]);
        assert_eq!(bytes(b"abc"), [b'a', b'b', b'c', 0, 0, 0, 0, 0, 250]);
        let mut eight = b"abcdefgh".to_vec();
        eight.extend_from_slice(&[255, 0, 0, 0, 0, 0, 0, 0, 0, 247]);
        assert_eq!(bytes(b"abcdefgh"), eight);
    }

    #[test]
    fn bytes_lengths() {
        for len in [0, 1, 7, 8, 9, 15, 16, 17] {
            let data: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(37)).collect();
            let encoded = bytes(&data);
            assert_eq!(encoded.len(), (len / 8 + 1) * 9, "len {len}");
            assert_eq!(dec(decode_bytes, &encoded), data);
            assert_truncations_fail(decode_bytes, &encoded);
        }
    }

    #[test]
    fn bytes_with_zeros_and_ff_sort_correctly() {
        let values: [&[u8]; 8] = [
            b"",
            b"\0",
            b"\0\0\0\0\0\0\0\0",
            b"\0\0\0\0\0\0\0\0\0",
            b"\x01",
            b"\xff\xff\xff\xff\xff\xff\xff",
            b"\xff\xff\xff\xff\xff\xff\xff\xff",
            b"\xff\xff\xff\xff\xff\xff\xff\xff\0",
        ];
        for w in values.windows(2) {
            assert!(bytes(w[0]) < bytes(w[1]), "{:?} < {:?}", w[0], w[1]);
        }
    }

    #[test]
    fn bytes_rejects_bad_groups() {
        let mut bad_marker = bytes(b"abc");
        *bad_marker.last_mut().unwrap() = 246;
        assert_eq!(
            decode_bytes(&mut &bad_marker[..]),
            Err(CodecError::BadBytesGroup)
        );
        let mut zero_marker = bytes(b"");
        *zero_marker.last_mut().unwrap() = 0;
        assert_eq!(
            decode_bytes(&mut &zero_marker[..]),
            Err(CodecError::BadBytesGroup)
        );
        let mut dirty_padding = bytes(b"abc");
        dirty_padding[5] = 1;
        assert_eq!(
            decode_bytes(&mut &dirty_padding[..]),
            Err(CodecError::BadBytesGroup)
        );
    }

    #[test]
    fn bytes_decode_leaves_the_rest() {
        let mut encoded = bytes(b"hello");
        encoded.extend_from_slice(b"rest");
        let mut input = &encoded[..];
        assert_eq!(decode_bytes(&mut input).unwrap(), b"hello");
        assert_eq!(input, b"rest");
    }

    #[test]
    fn varint_edges() {
        for (v, len) in [
            (0, 1),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (u64::MAX, 10),
        ] {
            let encoded = enc(encode_var_u64, v);
            assert_eq!(encoded.len(), len, "{v}");
            assert_eq!(dec(decode_var_u64, &encoded), v);
            assert_truncations_fail(decode_var_u64, &encoded);
        }
        for v in [i64::MIN, -1, 0, 1, i64::MAX] {
            assert_eq!(dec(decode_var_i64, &enc(encode_var_i64, v)), v);
            assert_truncations_fail(decode_var_i64, &enc(encode_var_i64, v));
        }
        assert_eq!(enc(encode_var_i64, -1), [1]);
        assert_eq!(enc(encode_var_i64, 1), [2]);
    }

    #[test]
    fn varint_overflow() {
        let too_big = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02];
        assert_eq!(
            decode_var_u64(&mut &too_big[..]),
            Err(CodecError::VarintOverflow)
        );
        let too_long = [0x80; 11];
        assert_eq!(
            decode_var_u64(&mut &too_long[..]),
            Err(CodecError::VarintOverflow)
        );
    }

    fn non_nan() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>().prop_filter("NaN", |f| !f.is_nan()),
            (-4i32..4).prop_map(f64::from),
            Just(-0.0),
        ]
    }

    proptest! {
        #[test]
        fn i64_round_trip_and_order(a: i64, b: i64) {
            prop_assert_eq!(dec(decode_i64, &enc(encode_i64, a)), a);
            prop_assert_eq!(enc(encode_i64, a).cmp(&enc(encode_i64, b)), a.cmp(&b));
        }

        #[test]
        fn u64_round_trip_and_order(a: u64, b: u64) {
            prop_assert_eq!(dec(decode_u64, &enc(encode_u64, a)), a);
            prop_assert_eq!(enc(encode_u64, a).cmp(&enc(encode_u64, b)), a.cmp(&b));
        }

        #[test]
        fn u64_desc_round_trip_and_reverse_order(a: u64, b: u64) {
            prop_assert_eq!(dec(decode_u64_desc, &enc(encode_u64_desc, a)), a);
            prop_assert_eq!(enc(encode_u64_desc, a).cmp(&enc(encode_u64_desc, b)), b.cmp(&a));
        }

        #[test]
        fn f64_round_trip_and_order(a in non_nan(), b in non_nan()) {
            let back = dec(decode_f64, &enc(encode_f64, a));
            prop_assert!(back == a && back.is_sign_negative() == (a < 0.0));
            let expected = a.partial_cmp(&b).unwrap();
            prop_assert_eq!(enc(encode_f64, a).cmp(&enc(encode_f64, b)), expected);
        }

        #[test]
        fn bytes_round_trip_and_order(
            a in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..40),
                proptest::collection::vec(prop_oneof![Just(0u8), Just(1), Just(255)], 0..20),
            ],
            b in proptest::collection::vec(prop_oneof![Just(0u8), Just(1), Just(255)], 0..20),
        ) {
            prop_assert_eq!(dec(decode_bytes, &bytes(&a)), a.clone());
            prop_assert_eq!(bytes(&a).cmp(&bytes(&b)), a.cmp(&b));
        }

        #[test]
        fn bytes_pairs_sort_as_tuples(
            a in proptest::collection::vec(0u8..3, 0..12),
            b in proptest::collection::vec(0u8..3, 0..12),
            c in proptest::collection::vec(0u8..3, 0..12),
            d in proptest::collection::vec(0u8..3, 0..12),
        ) {
            let mut ab = bytes(&a);
            ab.extend(bytes(&b));
            let mut cd = bytes(&c);
            cd.extend(bytes(&d));
            prop_assert_eq!(ab.cmp(&cd), (&a, &b).cmp(&(&c, &d)));
        }

        #[test]
        fn varints_round_trip(u: u64, i: i64) {
            prop_assert_eq!(dec(decode_var_u64, &enc(encode_var_u64, u)), u);
            prop_assert_eq!(dec(decode_var_i64, &enc(encode_var_i64, i)), i);
        }

        #[test]
        fn truncated_bytes_never_decode(data in proptest::collection::vec(any::<u8>(), 0..30)) {
            assert_truncations_fail(decode_bytes, &bytes(&data));
        }

        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..30)) {
            let _ = decode_bytes(&mut &data[..]);
            let _ = decode_var_u64(&mut &data[..]);
            let _ = decode_f64(&mut &data[..]);
        }
    }
}
