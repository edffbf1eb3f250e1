//! The codec's error type.
//!
//! Messages name what was being read or written, never the bytes themselves:
//! keys and values are user data, and errors travel to logs and clients.

/// Why a value could not be encoded or decoded.
///
/// Decode errors mean corrupt or foreign bytes; encode errors (`NaN`,
/// `OutOfRange`, `BadDecimal`, `DuplicateColumn`) mean the caller handed over
/// a value the format cannot represent.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum CodecError {
    /// The input ended in the middle of `what`.
    #[error("truncated {what}")]
    Truncated { what: &'static str },
    /// A type or sign flag that no encoding uses.
    #[error("unknown {what} flag {flag:#04x}")]
    BadFlag { what: &'static str, flag: u8 },
    /// A group of the memcomparable bytes encoding has a bad marker or
    /// non-zero padding.
    #[error("malformed memcomparable bytes group")]
    BadBytesGroup,
    /// A varint longer than ten bytes or larger than `u64::MAX`.
    #[error("varint overflows u64")]
    VarintOverflow,
    /// A decimal string or encoded decimal that is not well formed.
    #[error("malformed decimal: {reason}")]
    BadDecimal { reason: &'static str },
    /// Text that should be UTF-8 is not.
    #[error("{what} is not valid UTF-8")]
    BadUtf8 { what: &'static str },
    /// A field outside the range the format can hold (a month of 13, a time
    /// beyond `i64` microseconds, a column id beyond `u32`).
    #[error("{what} out of range")]
    OutOfRange { what: &'static str },
    /// NaN has no place in a memcomparable order.
    #[error("NaN cannot be encoded in a key")]
    NaN,
    /// A key that does not start with a known prefix or separator.
    #[error("not a table key: bad {what}")]
    BadKeyPrefix { what: &'static str },
    /// A row written by an unknown version of the row format.
    #[error("unknown row format version {0}")]
    BadRowVersion(u8),
    /// A row handed to `encode_row` names the same column twice.
    #[error("column id {id} given twice")]
    DuplicateColumn { id: u32 },
    /// An encoded row whose column ids are not strictly increasing.
    #[error("column id {id} out of order in row")]
    UnsortedColumn { id: u32 },
    /// Bytes left over after a complete `what`.
    #[error("trailing bytes after {what}")]
    TrailingBytes { what: &'static str },
}

#[cfg(test)]
mod tests {
    use super::super::key::decode_key;

    #[test]
    fn messages_never_echo_key_bytes() {
        for key in [
            &b"secret-user-key"[..],
            b"tsecret",
            b"t\x80\0\0\0\0\0\0\x01_xsecret",
        ] {
            let message = decode_key(key).unwrap_err().to_string();
            assert!(!message.contains("secret"), "{message}");
        }
    }
}
