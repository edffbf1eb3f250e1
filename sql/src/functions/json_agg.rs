//! `JSON_ARRAYAGG(x)` and `JSON_OBJECTAGG(k, v)`: a group's values as one
//! JSON array or object.

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Signature, Volatility};
use datafusion::scalar::ScalarValue;
use serde_json::{Map, Value as Json};

use crate::error::Error;
use std::sync::Arc;

use crate::functions::json::{Arg, JSON_META, is_json_field, json_text, string, to_json};
use crate::rules::json::{JsonError, parse, to_text};

/// `JSON_ARRAYAGG(x)` and `JSON_OBJECTAGG(k, v)`: a group's values as one
/// JSON array or object (NULL for an empty group). Partial states are the
/// JSON text built so far, merged by parsing it back.
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonAggregate {
    object: bool,
    signature: Signature,
}

impl datafusion::logical_expr::AggregateUDFImpl for JsonAggregate {
    fn name(&self) -> &str {
        if self.object {
            "json_objectagg"
        } else {
            "json_arrayagg"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field(&self, _: &[FieldRef]) -> Result<FieldRef> {
        Ok(Arc::new(
            Field::new(self.name(), DataType::Utf8, true)
                .with_metadata([(JSON_META.to_string(), "1".to_string())].into()),
        ))
    }

    fn accumulator(
        &self,
        args: datafusion::logical_expr::function::AccumulatorArgs<'_>,
    ) -> Result<Box<dyn datafusion::logical_expr::Accumulator>> {
        Ok(Box::new(JsonAccumulator {
            object: self.object,
            json_args: args.expr_fields.iter().map(|f| is_json_field(f)).collect(),
            items: Vec::new(),
            members: Map::new(),
            rows: 0,
            bytes: 0,
        }))
    }
}

#[derive(Debug)]
struct JsonAccumulator {
    object: bool,
    /// Which arguments are JSON text.
    json_args: Vec<bool>,
    items: Vec<Json>,
    members: Map<String, Json>,
    /// Rows taken in (an empty group answers NULL).
    rows: usize,
    /// About how much memory the values take (their text's length).
    bytes: usize,
}

/// A partial state that is not the JSON this aggregate builds: a fault of
/// the engine, never of the user's data.
fn partial_state_error(what: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::External(Box::new(Error::Internal(format!(
        "a JSON aggregate's partial state is not JSON: {what}"
    ))))
}

fn aggregate_error(e: JsonError) -> DataFusionError {
    DataFusionError::External(Box::new(Error::Json(e)))
}

impl JsonAccumulator {
    fn value(
        &self,
        arrays: &[datafusion::arrow::array::ArrayRef],
        arg: usize,
        row: usize,
    ) -> Result<Json> {
        let value = ScalarValue::try_from_array(&arrays[arg], row)?;
        let json = self.json_args.get(arg).copied().unwrap_or(false);
        to_json(&Arg {
            value: &value,
            json,
        })
        .map_err(aggregate_error)
    }

    fn result(&self) -> Json {
        if self.object {
            Json::Object(self.members.clone())
        } else {
            Json::Array(self.items.clone())
        }
    }
}

impl datafusion::logical_expr::Accumulator for JsonAccumulator {
    fn update_batch(&mut self, values: &[datafusion::arrow::array::ArrayRef]) -> Result<()> {
        let Some(first) = values.first() else {
            return Ok(());
        };
        for row in 0..first.len() {
            self.rows += 1;
            if !self.object {
                let v = self.value(values, 0, row)?;
                self.bytes += to_text(&v).len();
                self.items.push(v);
                continue;
            }
            let key = ScalarValue::try_from_array(first, row)?;
            let Some(key) = string(&key) else {
                return Err(aggregate_error(JsonError::NullMemberName));
            };
            // A repeated key keeps its last value, as in MySQL.
            let v = self.value(values, 1, row)?;
            self.bytes += key.len() + to_text(&v).len();
            self.members.insert(key, v);
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(if self.rows == 0 {
            ScalarValue::Utf8(None)
        } else {
            json_text(&self.result())
        })
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.bytes
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.evaluate().map(|v| vec![v])
    }

    fn merge_batch(&mut self, states: &[datafusion::arrow::array::ArrayRef]) -> Result<()> {
        let Some(texts) = states.first() else {
            return Ok(());
        };
        for row in 0..texts.len() {
            let Some(text) = string(&ScalarValue::try_from_array(texts, row)?) else {
                continue;
            };
            let part = parse(&text).map_err(partial_state_error)?;
            self.bytes += text.len();
            match part {
                Json::Object(members) if self.object => {
                    self.rows += members.len().max(1);
                    self.members.extend(members);
                }
                Json::Array(items) if !self.object => {
                    self.rows += items.len().max(1);
                    self.items.extend(items);
                }
                other => return Err(partial_state_error(other)),
            }
        }
        Ok(())
    }
}

/// The JSON aggregates, for registration with the query engine.
pub(crate) fn aggregates() -> Vec<datafusion::logical_expr::AggregateUDF> {
    [(false, 1), (true, 2)]
        .into_iter()
        .map(|(object, args)| {
            datafusion::logical_expr::AggregateUDF::new_from_impl(JsonAggregate {
                object,
                signature: Signature::any(args, Volatility::Immutable),
            })
        })
        .collect()
}
