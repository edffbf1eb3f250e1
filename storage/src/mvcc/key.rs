//! MVCC keys: the user key in memcomparable bytes encoding (so no key is a
//! prefix of another), followed for `write`/`default` keys by the timestamp
//! bit-inverted (newest first).

use crate::codec::number::{decode_bytes, decode_u64_desc, encode_bytes, encode_u64_desc};
use crate::error::{Error, Result};

/// The `lock` CF key of `user_key`, and the prefix of its versions.
pub fn encode_key(user_key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(user_key.len() + user_key.len() / 8 + 9);
    encode_bytes(user_key, &mut out);
    out
}

/// An encoded key with a timestamp: a `write` or `default` CF key.
pub fn append_ts(encoded: &[u8], ts: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded.len() + 8);
    out.extend_from_slice(encoded);
    encode_u64_desc(ts, &mut out);
    out
}

/// Splits a `write`/`default` CF key into its encoded user key and timestamp.
pub fn split_ts(key: &[u8]) -> Result<(&[u8], u64)> {
    if key.len() < 8 {
        return Err(Error::Corruption {
            what: "mvcc key",
            detail: format!("{} bytes, shorter than a timestamp", key.len()),
        });
    }
    let (encoded, mut ts) = key.split_at(key.len() - 8);
    Ok((encoded, decode_u64_desc(&mut ts)?))
}

/// The user key back from its encoded form.
pub fn decode_key(encoded: &[u8]) -> Result<Vec<u8>> {
    let mut slice = encoded;
    let key = decode_bytes(&mut slice)?;
    if !slice.is_empty() {
        return Err(Error::Corruption {
            what: "mvcc key",
            detail: "trailing bytes after the user key".into(),
        });
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_newest_first_and_keys_stay_apart() {
        let a = encode_key(b"a");
        let ab = encode_key(b"ab");
        let (a10, a20, ab1) = (append_ts(&a, 10), append_ts(&a, 20), append_ts(&ab, 1));
        assert!(a20 < a10, "newer version first");
        assert!(a10 < ab1, "every version of 'a' before any of 'ab'");
        assert_eq!(split_ts(&a10).unwrap(), (a.as_slice(), 10));
        assert_eq!(decode_key(&a).unwrap(), b"a");
        assert!(split_ts(b"short").is_err());
    }
}
