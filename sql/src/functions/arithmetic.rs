//! MySQL arithmetic the query engine does not share: `/` is exact decimal
//! division (scale of the dividend plus `div_precision_increment`, rounded
//! half away from zero) for exact operands and DOUBLE otherwise, `DIV` is
//! integer division truncated toward zero, and both give NULL on a zero
//! divisor instead of failing; and `CAST(x AS SIGNED | UNSIGNED)`, which
//! rounds exact and approximate numbers half away from zero and reads a
//! string's leading integer; and the bit operators `& | ^ << >> ~`, on
//! 64-bit unsigned integers whatever their operands (a negative number
//! wraps, a decimal rounds, a shift of 64 or more gives 0). The
//! preparation of a query rewrites the operators and casts into calls of
//! these functions. `TRUNCATE(x, d)` is registered under its own name.

use std::sync::Arc;

use crate::functions::comparison;
use crate::functions::comparison::ToDouble;
use crate::rules::number::{leading_integer, saturate};
use crate::rules::time;
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
pub(crate) const TO_SIGNED: &str = "duet_to_signed";
pub(crate) const TO_UNSIGNED: &str = "duet_to_unsigned";
pub(crate) const BIT_AND: &str = "duet_bit_and";
pub(crate) const BIT_OR: &str = "duet_bit_or";
pub(crate) const BIT_XOR: &str = "duet_bit_xor";
pub(crate) const SHIFT_LEFT: &str = "duet_shift_left";
pub(crate) const SHIFT_RIGHT: &str = "duet_shift_right";
pub(crate) const BIT_NOT: &str = "duet_bit_not";

/// The functions, for registration with the query engine.
pub(crate) fn all() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::from(Division::new(DIV)),
        ScalarUDF::from(Division::new(INT_DIV)),
        ScalarUDF::from(ToInteger::new(TO_SIGNED)),
        ScalarUDF::from(ToInteger::new(TO_UNSIGNED)),
        ScalarUDF::from(Truncate::new()),
        ScalarUDF::from(BitOp::new(BIT_AND)),
        ScalarUDF::from(BitOp::new(BIT_OR)),
        ScalarUDF::from(BitOp::new(BIT_XOR)),
        ScalarUDF::from(BitOp::new(SHIFT_LEFT)),
        ScalarUDF::from(BitOp::new(SHIFT_RIGHT)),
        ScalarUDF::from(BitOp::new(BIT_NOT)),
    ]
}

/// `TRUNCATE(x, d)`: `x` cut toward zero to `d` decimals (to a multiple of
/// `10^-d` for a negative `d`). An exact number stays exact, with scale
/// `d` when `d` is a constant; an integer stays an integer; anything else
/// is a DOUBLE (a string read as its leading number).
#[derive(Debug, PartialEq, Eq, Hash)]
struct Truncate {
    signature: Signature,
}

impl Truncate {
    fn new() -> Self {
        Truncate {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }

    fn result_type(x: &DataType, d: Option<i64>) -> DataType {
        match x {
            DataType::Decimal128(p, s) => {
                let scale = d.map_or(*s, |d| d.clamp(0, i64::from(*s)) as i8);
                let precision = (i16::from(*p) - i16::from(*s) + i16::from(scale)).clamp(1, 38);
                DataType::Decimal128(precision as u8, scale)
            }
            DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
                DataType::UInt64
            }
            t if t.is_integer() => DataType::Int64,
            _ => DataType::Float64,
        }
    }
}

impl ScalarUDFImpl for Truncate {
    fn name(&self) -> &str {
        "truncate"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(Truncate::result_type(&args[0], None))
    }

    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs<'_>,
    ) -> Result<datafusion::arrow::datatypes::FieldRef> {
        let x = args
            .arg_fields
            .first()
            .ok_or_else(|| DataFusionError::Plan("TRUNCATE takes two arguments".into()))?;
        let d = args
            .scalar_arguments
            .get(1)
            .copied()
            .flatten()
            .and_then(|v| v.cast_to(&DataType::Int64).ok())
            .and_then(|v| match v {
                datafusion::common::ScalarValue::Int64(d) => d,
                _ => None,
            });
        Ok(Arc::new(datafusion::arrow::datatypes::Field::new(
            self.name(),
            Truncate::result_type(x.data_type(), d),
            true,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (x, d) = (&arrays[0], cast(&arrays[1], &DataType::Int64)?);
        let d = d
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| DataFusionError::Internal("cast to bigint failed".into()))?;
        let out = args.return_field.data_type().clone();
        // Exact values as i128 at `scale`, cut to `d` decimals.
        let cut = |v: i128, scale: i8, d: i64| -> i128 {
            let k = i64::from(scale) - d;
            match u32::try_from(k) {
                Ok(0) | Err(_) => v,
                Ok(k) => 10i128.checked_pow(k).map_or(0, |m| v / m * m),
            }
        };
        let result: ArrayRef = match (x.data_type(), &out) {
            (DataType::Decimal128(_, s), DataType::Decimal128(p2, s2)) => {
                let v = as_decimal(x, *s)?;
                let down = pow10(s - s2).unwrap_or(1);
                let values: Decimal128Array = v
                    .iter()
                    .zip(d.iter())
                    .map(|(v, d)| Some(cut(v?, *s, d?) / down))
                    .collect();
                Arc::new(values.with_precision_and_scale(*p2, *s2)?)
            }
            (_, DataType::Int64) => {
                let v = cast(x, &DataType::Int64)?;
                let v = v
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .ok_or_else(|| DataFusionError::Internal("cast to bigint failed".into()))?;
                let values: Int64Array = v
                    .iter()
                    .zip(d.iter())
                    .map(|(v, d)| Some(saturate(cut(i128::from(v?), 0, d?))))
                    .collect();
                Arc::new(values)
            }
            (_, DataType::UInt64) => {
                let v = cast(x, &DataType::UInt64)?;
                let v = v
                    .as_any()
                    .downcast_ref::<datafusion::arrow::array::UInt64Array>()
                    .ok_or_else(|| DataFusionError::Internal("cast to unsigned failed".into()))?;
                let values: datafusion::arrow::array::UInt64Array = v
                    .iter()
                    .zip(d.iter())
                    .map(|(v, d)| Some(cut(i128::from(v?), 0, d?) as u64))
                    .collect();
                Arc::new(values)
            }
            _ => {
                let v = match x.data_type() {
                    t if comparison::is_string(t) => ToDouble::new()
                        .invoke_with_args(ScalarFunctionArgs {
                            args: vec![ColumnarValue::Array(Arc::clone(x))],
                            ..args
                        })?
                        .into_array(x.len())?,
                    _ => cast(x, &DataType::Float64)?,
                };
                let values: Float64Array = float(&v)?
                    .iter()
                    .zip(d.iter())
                    .map(|(v, d)| {
                        let (v, d) = (v?, d?.clamp(-308, 308) as i32);
                        Some(if d >= 0 {
                            let m = 10f64.powi(d);
                            (v * m).trunc() / m
                        } else {
                            let m = 10f64.powi(-d);
                            (v / m).trunc() * m
                        })
                    })
                    .collect();
                Arc::new(values)
            }
        };
        Ok(ColumnarValue::Array(result))
    }
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

/// `CAST(x AS SIGNED)` and `CAST(x AS UNSIGNED)` as MySQL computes them
/// (an unsigned cast of a negative number wraps around 2^64).
#[derive(Debug, PartialEq, Eq, Hash)]
struct ToInteger {
    name: &'static str,
    signature: Signature,
}

impl ToInteger {
    fn new(name: &'static str) -> Self {
        ToInteger {
            name,
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for ToInteger {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(if self.name == TO_SIGNED {
            DataType::Int64
        } else {
            DataType::UInt64
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let a = &arrays[0];
        if self.name == TO_UNSIGNED && a.data_type() == &DataType::UInt64 {
            return Ok(ColumnarValue::Array(Arc::clone(a)));
        }
        let ints = integers(a)?;
        let out: ArrayRef = if self.name == TO_SIGNED {
            Arc::new(Int64Array::from(ints))
        } else {
            Arc::new(datafusion::arrow::array::UInt64Array::from(
                ints.into_iter()
                    .map(|v| v.map(|v| v as u64))
                    .collect::<Vec<_>>(),
            ))
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// The integers MySQL reads from `a` where it wants one: exact and
/// approximate numbers rounded half away from zero, a string's leading
/// integer, a date as `YYYYMMDD`.
fn integers(a: &ArrayRef) -> Result<Vec<Option<i64>>> {
    Ok(match a.data_type() {
        DataType::Decimal128(_, scale) => {
            let d = as_decimal(a, *scale)?;
            let one = pow10(*scale).unwrap_or(1);
            d.iter()
                .map(|v| v.map(|v| saturate(round_div(v, one))))
                .collect()
        }
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            let f = cast(a, &DataType::Float64)?;
            float(&f)?
                .iter()
                .map(|v| v.map(|v| v.round() as i64))
                .collect()
        }
        DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View
        | DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView => {
            let b = cast(a, &DataType::Binary)?;
            let b = b
                .as_any()
                .downcast_ref::<datafusion::arrow::array::BinaryArray>()
                .ok_or_else(|| DataFusionError::Internal("cast to binary failed".into()))?;
            b.iter().map(|v| v.map(leading_integer)).collect()
        }
        DataType::Date32 => {
            let d = cast(a, &DataType::Int32)?;
            let d = d
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Int32Array>()
                .ok_or_else(|| DataFusionError::Internal("cast of a date failed".into()))?;
            d.iter()
                .map(|v| {
                    v.map(|days| {
                        let (y, m, d) = time::civil_from_days(i64::from(days));
                        y * 10_000 + i64::from(m) * 100 + i64::from(d)
                    })
                })
                .collect()
        }
        _ => {
            let i = cast(a, &DataType::Int64)?;
            let i = i
                .as_any()
                .downcast_ref::<Int64Array>()
                .ok_or_else(|| DataFusionError::Internal("cast to integer failed".into()))?;
            i.iter().collect()
        }
    })
}

/// A bit operator (one of the `BIT_*` and `SHIFT_*` names): its operands
/// read as 64-bit unsigned integers, its result one.
#[derive(Debug, PartialEq, Eq, Hash)]
struct BitOp {
    name: &'static str,
    signature: Signature,
}

impl BitOp {
    fn new(name: &'static str) -> Self {
        let arity = if name == BIT_NOT { 1 } else { 2 };
        BitOp {
            name,
            signature: Signature::any(arity, Volatility::Immutable),
        }
    }

    fn apply(&self, a: u64, b: u64) -> u64 {
        match self.name {
            BIT_AND => a & b,
            BIT_OR => a | b,
            BIT_XOR => a ^ b,
            SHIFT_LEFT => a
                .checked_shl(u32::try_from(b).unwrap_or(u32::MAX))
                .unwrap_or(0),
            SHIFT_RIGHT => a
                .checked_shr(u32::try_from(b).unwrap_or(u32::MAX))
                .unwrap_or(0),
            _ => !a,
        }
    }
}

/// An operand of a bit operator as MySQL reads it: an unsigned integer as
/// it is, anything else as the integer it reads, wrapped to 64 bits.
fn unsigned_operand(a: &ArrayRef) -> Result<Vec<Option<u64>>> {
    if let Some(u) = a
        .as_any()
        .downcast_ref::<datafusion::arrow::array::UInt64Array>()
    {
        return Ok(u.iter().collect());
    }
    if a.data_type().is_unsigned_integer() {
        let u = cast(a, &DataType::UInt64)?;
        return unsigned_operand(&u);
    }
    Ok(integers(a)?
        .into_iter()
        .map(|v| v.map(|v| v as u64))
        .collect())
}

impl ScalarUDFImpl for BitOp {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::UInt64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let a = unsigned_operand(&arrays[0])?;
        let out: Vec<Option<u64>> = match arrays.get(1) {
            Some(b) => a
                .into_iter()
                .zip(unsigned_operand(b)?)
                .map(|(a, b)| Some(self.apply(a?, b?)))
                .collect(),
            None => a.into_iter().map(|a| a.map(|a| self.apply(a, 0))).collect(),
        };
        Ok(ColumnarValue::Array(Arc::new(
            datafusion::arrow::array::UInt64Array::from(out),
        )))
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
    fn integer_casts_round_numbers_and_read_a_strings_leading_integer() {
        use datafusion::arrow::array::StringArray;
        use datafusion::arrow::datatypes::Field;
        let cast_with = |name, a: ArrayRef| {
            let f = ToInteger::new(name);
            let rows = a.len();
            let arg_fields = vec![Arc::new(Field::new("a", a.data_type().clone(), true))];
            let out = f
                .invoke_with_args(ScalarFunctionArgs {
                    args: vec![ColumnarValue::Array(a)],
                    arg_fields,
                    number_rows: rows,
                    return_field: Arc::new(Field::new("r", f.return_type(&[]).unwrap(), true)),
                    config_options: Arc::default(),
                })
                .unwrap();
            let ColumnarValue::Array(out) = out else {
                panic!("an array")
            };
            cast(&out, &DataType::Utf8)
                .unwrap()
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .iter()
                .map(|v| v.unwrap_or("NULL").to_string())
                .collect::<Vec<_>>()
        };
        let decimals = Decimal128Array::from(vec![Some(250), Some(-250), Some(249), None])
            .with_precision_and_scale(10, 2)
            .unwrap();
        assert_eq!(
            cast_with(TO_SIGNED, Arc::new(decimals)),
            ["3", "-3", "2", "NULL"]
        );
        let floats = Float64Array::from(vec![2.5, -2.5, 1.4]);
        assert_eq!(cast_with(TO_SIGNED, Arc::new(floats)), ["3", "-3", "1"]);
        let strings = StringArray::from(vec!["2.7", " -12abc", "abc", "+5"]);
        assert_eq!(
            cast_with(TO_SIGNED, Arc::new(strings)),
            ["2", "-12", "0", "5"]
        );
        let negative = Int64Array::from(vec![-1]);
        assert_eq!(
            cast_with(TO_UNSIGNED, Arc::new(negative)),
            ["18446744073709551615"]
        );
    }

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
