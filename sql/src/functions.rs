//! MySQL arithmetic the query engine does not share: `/` is exact decimal
//! division (scale of the dividend plus `div_precision_increment`, rounded
//! half away from zero) for exact operands and DOUBLE otherwise, `DIV` is
//! integer division truncated toward zero, and both give NULL on a zero
//! divisor instead of failing. The preparation of a query rewrites the
//! operators into calls of these functions.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Decimal128Array, Float64Array, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// MySQL's `div_precision_increment` default: digits added to the
/// dividend's scale.
const DIV_PRECISION_INCREMENT: i8 = 4;
/// MySQL's largest decimal scale.
const MAX_SCALE: i8 = 30;

pub(crate) const DIV: &str = "duet_div";
pub(crate) const INT_DIV: &str = "duet_intdiv";

/// The functions, for registration with the query engine.
pub(crate) fn all() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::from(Division::new(DIV)),
        ScalarUDF::from(Division::new(INT_DIV)),
        ScalarUDF::from(crate::coerce::ToDouble::new()),
        ScalarUDF::from(crate::coerce::Numeric::new()),
    ]
}

/// The scale of an exact numeric type (integers have 0); `None` for
/// approximate and non-numeric types, which divide as DOUBLE.
fn exact_scale(t: &DataType) -> Option<i8> {
    match t {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Boolean => Some(0),
        DataType::Decimal128(_, s) | DataType::Decimal256(_, s) => Some(*s),
        _ => None,
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Division {
    name: &'static str,
    signature: Signature,
}

impl Division {
    fn new(name: &'static str) -> Self {
        Division {
            name,
            signature: Signature::any(2, Volatility::Immutable),
        }
    }

    fn integer(&self) -> bool {
        self.name == INT_DIV
    }
}

impl ScalarUDFImpl for Division {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if self.integer() {
            return Ok(DataType::Int64);
        }
        Ok(match (exact_scale(&args[0]), exact_scale(&args[1])) {
            (Some(s), Some(_)) => {
                DataType::Decimal128(38, (s + DIV_PRECISION_INCREMENT).min(MAX_SCALE))
            }
            _ => DataType::Float64,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (a, b) = (&arrays[0], &arrays[1]);
        let scales = (exact_scale(a.data_type()), exact_scale(b.data_type()));
        let out: ArrayRef = match scales {
            (Some(sa), Some(sb)) => {
                let a = as_decimal(a, sa)?;
                let b = as_decimal(b, sb)?;
                if self.integer() {
                    let q = exact_quotients(&a, &b, |n, d| {
                        // value = (a·10^sb) / (b·10^sa), truncated.
                        let n = n.checked_mul(pow10(sb)?)?;
                        let d = d.checked_mul(pow10(sa)?)?;
                        i64::try_from(n / d).ok().map(i128::from)
                    })?;
                    let ints: Int64Array = q.iter().map(|v| v.map(|v| v as i64)).collect();
                    Arc::new(ints)
                } else {
                    let scale = (sa + DIV_PRECISION_INCREMENT).min(MAX_SCALE);
                    let shift = sb + scale - sa;
                    let q = exact_quotients(&a, &b, |n, d| {
                        let n = n.checked_mul(pow10(shift)?)?;
                        Some(round_div(n, d))
                    })?;
                    Arc::new(q.with_precision_and_scale(38, scale)?)
                }
            }
            _ => {
                let a = cast(a, &DataType::Float64)?;
                let b = cast(b, &DataType::Float64)?;
                let (a, b) = (float(&a)?, float(&b)?);
                let q: Float64Array = a
                    .iter()
                    .zip(b.iter())
                    .map(|(x, y)| match (x, y) {
                        (Some(x), Some(y)) if y != 0.0 => Some(x / y),
                        _ => None,
                    })
                    .collect();
                if self.integer() {
                    let q: Int64Array = q.iter().map(|v| v.map(|v| v.trunc() as i64)).collect();
                    Arc::new(q)
                } else {
                    Arc::new(q)
                }
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

fn pow10(exp: i8) -> Option<i128> {
    10i128.checked_pow(u32::try_from(exp).ok()?)
}

/// `n / d` rounded half away from zero.
fn round_div(n: i128, d: i128) -> i128 {
    let (q, r) = (n / d, n % d);
    if 2 * r.unsigned_abs() >= d.unsigned_abs() {
        q + if (n < 0) == (d < 0) { 1 } else { -1 }
    } else {
        q
    }
}

fn as_decimal(a: &ArrayRef, scale: i8) -> Result<Decimal128Array> {
    let d = cast(a, &DataType::Decimal128(38, scale))?;
    d.as_any()
        .downcast_ref::<Decimal128Array>()
        .cloned()
        .ok_or_else(|| DataFusionError::Internal("cast to decimal failed".into()))
}

fn float(a: &ArrayRef) -> Result<Float64Array> {
    a.as_any()
        .downcast_ref::<Float64Array>()
        .cloned()
        .ok_or_else(|| DataFusionError::Internal("cast to double failed".into()))
}

/// Applies `f(numerator, denominator)` row by row: NULL for a NULL operand
/// or a zero divisor, an error if the quotient does not fit.
fn exact_quotients(
    a: &Decimal128Array,
    b: &Decimal128Array,
    f: impl Fn(i128, i128) -> Option<i128>,
) -> Result<Decimal128Array> {
    let mut out = Vec::with_capacity(a.len());
    for (x, y) in a.iter().zip(b.iter()) {
        out.push(match (x, y) {
            (Some(_), Some(0)) | (None, _) | (_, None) => None,
            (Some(x), Some(y)) => Some(f(x, y).ok_or_else(|| {
                DataFusionError::Execution("DECIMAL value is out of range in '/'".into())
            })?),
        });
    }
    Ok(Decimal128Array::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotients_round_half_away_from_zero() {
        assert_eq!(round_div(35, 10), 4);
        assert_eq!(round_div(-35, 10), -4);
        assert_eq!(round_div(34, 10), 3);
        assert_eq!(round_div(7, -2), -4);
    }

    #[test]
    fn exact_operands_divide_to_the_dividends_scale_plus_four() {
        let d = Division::new(DIV);
        assert_eq!(
            d.return_type(&[DataType::Int64, DataType::Int32]).unwrap(),
            DataType::Decimal128(38, 4)
        );
        assert_eq!(
            d.return_type(&[DataType::Decimal128(10, 2), DataType::Int64])
                .unwrap(),
            DataType::Decimal128(38, 6)
        );
        assert_eq!(
            d.return_type(&[DataType::Float64, DataType::Int64])
                .unwrap(),
            DataType::Float64
        );
    }
}
