//! MySQL scalar functions the query engine has no counterpart for, each
//! evaluated a row at a time on scalar values: `HEX`/`UNHEX`, `BIN`, `OCT`,
//! `CONV`, `BIT_COUNT`, `TO_BASE64`/`FROM_BASE64`, `SHA1`/`SHA`, `CRC32`,
//! `QUOTE`, `SOUNDEX`, `INSERT`, `INET_ATON`/`INET_NTOA`, `LAST_DAY`,
//! `MAKEDATE` and `WEEK`. A NULL argument gives NULL (except to `QUOTE`),
//! and so does an argument the function cannot read, as in MySQL.

use std::sync::Arc;

use crate::rules::number;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::scalar::ScalarValue;

/// One function: its name, how many arguments it takes, what it returns,
/// and how it computes one row.
struct RowFunction {
    name: &'static str,
    signature: Signature,
    returns: DataType,
    eval: fn(&[ScalarValue]) -> ScalarValue,
}

impl std::fmt::Debug for RowFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for RowFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for RowFunction {}

impl std::hash::Hash for RowFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for RowFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(self.returns.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        per_row(&args, &self.returns, |row| {
            typed((self.eval)(row), &self.returns)
        })
    }
}

/// `v` in the type `returns` (NULL of that type for NULL).
pub(crate) fn typed(v: ScalarValue, returns: &DataType) -> Result<ScalarValue> {
    if v.is_null() {
        return ScalarValue::try_from(returns);
    }
    v.cast_to(returns)
}

/// A function evaluated a row at a time: `f` gets each row's arguments
/// as scalars and gives its value, of type `returns`; all-constant
/// arguments give a constant.
pub(crate) fn per_row(
    args: &ScalarFunctionArgs,
    returns: &DataType,
    f: impl Fn(&[ScalarValue]) -> Result<ScalarValue>,
) -> Result<ColumnarValue> {
    let all_scalar = args
        .args
        .iter()
        .all(|a| matches!(a, ColumnarValue::Scalar(_)));
    let row = |i: usize| -> Result<Vec<ScalarValue>> {
        args.args
            .iter()
            .map(|a| match a {
                ColumnarValue::Scalar(s) => Ok(s.clone()),
                ColumnarValue::Array(arr) => ScalarValue::try_from_array(arr, i),
            })
            .collect()
    };
    if all_scalar {
        return Ok(ColumnarValue::Scalar(f(&row(0)?)?));
    }
    let values = (0..args.number_rows)
        .map(|i| f(&row(i)?))
        .collect::<Result<Vec<_>>>()?;
    if values.is_empty() {
        return Ok(ColumnarValue::Array(
            datafusion::arrow::array::new_empty_array(returns),
        ));
    }
    Ok(ColumnarValue::Array(ScalarValue::iter_to_array(values)?))
}

pub(crate) fn function(
    name: &'static str,
    arities: &[usize],
    returns: DataType,
    eval: fn(&[ScalarValue]) -> ScalarValue,
) -> ScalarUDF {
    let signature = match arities {
        [n] => Signature::any(*n, Volatility::Immutable),
        many => Signature::one_of(
            many.iter()
                .map(|n| datafusion::logical_expr::TypeSignature::Any(*n))
                .collect(),
            Volatility::Immutable,
        ),
    };
    ScalarUDF::new_from_shared_impl(Arc::new(RowFunction {
        name,
        signature,
        returns,
        eval,
    }))
}

/// A function taking from `min` to `max` arguments.
pub(crate) fn variadic(
    name: &'static str,
    min: usize,
    max: usize,
    returns: DataType,
    eval: fn(&[ScalarValue]) -> ScalarValue,
) -> ScalarUDF {
    let arities: Vec<usize> = (min..=max).collect();
    function(name, &arities, returns, eval)
}

pub(crate) const NULL: ScalarValue = ScalarValue::Null;

pub(crate) fn text(s: String) -> ScalarValue {
    ScalarValue::Utf8(Some(s))
}

/// A value's bytes as MySQL would read it as a string (numbers in their
/// decimal form); `None` for NULL.
pub(crate) fn bytes(v: &ScalarValue) -> Option<Vec<u8>> {
    if v.is_null() {
        return None;
    }
    match v {
        ScalarValue::Binary(Some(b))
        | ScalarValue::LargeBinary(Some(b))
        | ScalarValue::BinaryView(Some(b))
        | ScalarValue::FixedSizeBinary(_, Some(b)) => Some(b.clone()),
        other => Some(other.to_string().into_bytes()),
    }
}

/// A value as a 64-bit integer, as MySQL reads an argument that must be
/// one: numbers rounded, strings by their leading integer.
pub(crate) fn integer(v: &ScalarValue) -> Option<i128> {
    if v.is_null() {
        return None;
    }
    match v.cast_to(&DataType::Int64) {
        Ok(ScalarValue::Int64(Some(i))) if !v.data_type().is_floating() => Some(i128::from(i)),
        _ => match v {
            ScalarValue::UInt64(Some(u)) => Some(i128::from(*u)),
            ScalarValue::Float64(Some(f)) => Some(f.round() as i128),
            ScalarValue::Float32(Some(f)) => Some(f.round() as i128),
            ScalarValue::Decimal128(Some(d), _, s) => {
                let scale = 10i128.checked_pow(u32::try_from(*s).ok()?)?;
                let (q, r) = (d / scale, d % scale);
                Some(if r.abs() * 2 >= scale {
                    q + d.signum()
                } else {
                    q
                })
            }
            _ => Some(i128::from(number::leading_integer(&bytes(v)?))),
        },
    }
}

/// MySQL's 64-bit view of an integer: negatives in two's complement.
pub(crate) fn as_u64(i: i128) -> u64 {
    if i < 0 {
        i64::try_from(i).unwrap_or(i64::MIN) as u64
    } else {
        u64::try_from(i).unwrap_or(u64::MAX)
    }
}

pub(crate) fn is_number(v: &ScalarValue) -> bool {
    let t = v.data_type();
    t.is_integer() || t.is_floating() || matches!(t, DataType::Decimal128(..))
}
