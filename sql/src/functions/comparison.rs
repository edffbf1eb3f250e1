//! The functions behind MySQL's comparisons and arithmetic on strings:
//! [`ToDouble`] reads a string as the DOUBLE its numeric prefix is (for a
//! comparison of a number with a string), [`Numeric`] does the same for an
//! operand of arithmetic. The plan's comparison rewrite places them.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Float64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Operator, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::rules::number::leading_double;

/// The functions, for registration with the query engine.
pub(crate) fn all() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::from(ToDouble::new()),
        ScalarUDF::from(Numeric::new()),
        ScalarUDF::from(Numeric::exact_arg()),
    ]
}

pub(crate) const TO_DOUBLE: &str = "duet_to_double";

pub(crate) const NUMERIC: &str = "duet_numeric";

pub(crate) const EXACT_ARG: &str = "duet_exact_arg";

pub(crate) fn is_number(t: &DataType) -> bool {
    t.is_numeric()
}

pub(crate) fn is_string(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
    )
}

/// `duet_to_double(s)`: the number a string starts with, as MySQL reads
/// one (0 when it starts with none).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct ToDouble {
    signature: Signature,
}

impl ToDouble {
    pub(crate) fn new() -> Self {
        ToDouble {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for ToDouble {
    fn name(&self) -> &str {
        TO_DOUBLE
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let binary = datafusion::arrow::compute::cast(&arrays[0], &DataType::Binary)?;
        let binary = binary
            .as_any()
            .downcast_ref::<datafusion::arrow::array::BinaryArray>()
            .ok_or_else(|| {
                datafusion::error::DataFusionError::Internal("not castable to binary".into())
            })?;
        let out: Float64Array = (0..binary.len())
            .map(|i| (!binary.is_null(i)).then(|| leading_double(binary.value(i))))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
    }
}

/// `duet_numeric(x)`: an arithmetic operand as MySQL reads it — a string
/// as its leading number (DOUBLE), anything else unchanged. The query
/// engine types a plan before any analyzer rule runs and refuses `'3' + 4`
/// then, so the SQL rewrite wraps operands that may be strings in this.
///
/// `duet_exact_arg(x)` ([`Numeric::exact_arg`]) reads the argument of
/// `AVG` and `SUM` the same way and makes an integer an exact DECIMAL
/// besides, so that its average is a DECIMAL with four more digits of
/// scale (`AVG(2)` is `2.0000`, as the query engine averages decimals) and
/// its sum a DECIMAL that cannot overflow, as in MySQL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Numeric {
    name: &'static str,
    /// What an integer becomes (`None`: it stays as it is).
    integer_as: Option<DataType>,
    signature: Signature,
}

impl Numeric {
    pub(crate) fn new() -> Self {
        Numeric {
            name: NUMERIC,
            integer_as: None,
            signature: Signature::any(1, Volatility::Immutable),
        }
    }

    pub(crate) fn exact_arg() -> Self {
        Numeric {
            name: EXACT_ARG,
            integer_as: Some(DataType::Decimal128(20, 0)),
            ..Numeric::new()
        }
    }

    fn integer_as(&self, t: &DataType) -> Option<&DataType> {
        self.integer_as.as_ref().filter(|_| t.is_integer())
    }
}

impl ScalarUDFImpl for Numeric {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(match args.first() {
            Some(t) if is_string(t) => DataType::Float64,
            Some(t) => self.integer_as(t).unwrap_or(t).clone(),
            None => DataType::Null,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(arg) = args.args.first() else {
            return Ok(ColumnarValue::Scalar(ScalarValue::Null));
        };
        let t = arg.data_type();
        if is_string(&t) {
            return ToDouble::new().invoke_with_args(args);
        }
        match self.integer_as(&t) {
            Some(target) => arg.cast_to(target, None),
            None => Ok(arg.clone()),
        }
    }
}

/// Whether `op` compares two values (`=`, `<>`, `<`, `<=`, `>`, `>=`,
/// `<=>` and its negation).
pub(crate) fn is_comparison(op: Operator) -> bool {
    matches!(
        op,
        Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
            | Operator::IsDistinctFrom
            | Operator::IsNotDistinctFrom
    )
}
