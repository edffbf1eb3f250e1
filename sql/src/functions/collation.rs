//! The functions the plan's collation rewrite calls: the sort key of a
//! string under a collation, and its case fold.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BinaryBuilder, StringArray, StringBuilder, as_string_array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::rules::collation::{Collation, FOLD_FN, KEY_FN};

/// The query engine's functions over collations.
pub(crate) fn functions() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::from(Collate::new(KEY_FN)),
        ScalarUDF::from(Collate::new(FOLD_FN)),
    ]
}

/// `duet_collate_key(s, collation)` (binary) and `duet_collate_fold(s,
/// collation)` (text); NULL stays NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Collate {
    name: &'static str,
    signature: Signature,
}

impl Collate {
    fn new(name: &'static str) -> Self {
        Collate {
            name,
            signature: Signature::any(2, Volatility::Immutable),
        }
    }

    fn collation(arg: &ColumnarValue) -> DfResult<Collation> {
        match arg {
            ColumnarValue::Scalar(
                ScalarValue::Utf8(Some(n))
                | ScalarValue::LargeUtf8(Some(n))
                | ScalarValue::Utf8View(Some(n)),
            ) => Collation::from_name(n).map_err(|e| DataFusionError::Plan(e.to_string())),
            _ => Err(DataFusionError::Plan(format!(
                "the collation of {KEY_FN} must be a constant name"
            ))),
        }
    }
}

impl ScalarUDFImpl for Collate {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(if self.name == KEY_FN {
            DataType::Binary
        } else {
            DataType::Utf8
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let collation = Collate::collation(&args.args[1])?;
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let input = args.args[0].to_array(args.number_rows.max(1))?;
        let text = cast(&input, &DataType::Utf8)?;
        let text: &StringArray = as_string_array(&text);
        let out: ArrayRef = if self.name == KEY_FN {
            let mut b = BinaryBuilder::with_capacity(text.len(), text.len() * 8);
            for v in text.iter() {
                match v {
                    Some(s) => b.append_value(collation.sort_key(s)),
                    None => b.append_null(),
                }
            }
            Arc::new(b.finish())
        } else {
            let mut b = StringBuilder::with_capacity(text.len(), text.len() * 8);
            for v in text.iter() {
                match v {
                    Some(s) => b.append_value(collation.fold(s)),
                    None => b.append_null(),
                }
            }
            Arc::new(b.finish())
        };
        Ok(if scalar {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(out)
        })
    }
}
