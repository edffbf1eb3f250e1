//! Between Arrow and MySQL values: a table's Arrow schema (with the
//! declared MySQL type of each column in its field metadata), row-store
//! rows as record batches, and result batches as client values and columns.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder,
    RecordBatch, StringBuilder, TimestampMicrosecondBuilder, UInt64Builder,
};
use datafusion::arrow::datatypes::{DataType as ArrowType, Field, Schema, SchemaRef, TimeUnit};
use duet_storage::codec::Datum;

use crate::catalog::TableInfo;
use crate::error::{Error, Result};
use crate::functions::json;
use crate::functions::json::JSON_META;
use crate::plan::rewrite::DUPLICATE_NAME;
use crate::plan::scope::HANDLE_COLUMN;
use crate::rules::collation::COLLATION_META;
use crate::rules::number;
use crate::rules::time::{civil_from_days, days_from_civil};
use crate::table::Row;
use crate::types;
use crate::types::ColumnType;
use crate::types::TypeKind::Json;
use crate::value::{Column, Date, DateTime, FieldType, Value};

/// Field metadata naming a table column's declaration, so that a result
/// column that is the column itself is described to clients as declared.
pub(crate) const DECLARED_TYPE: &str = "duet.type";

pub(crate) const DECLARED_COLUMN: &str = "duet.column";

pub(crate) const DECLARED_TABLE: &str = "duet.table";

pub(crate) const DECLARED_DATABASE: &str = "duet.database";

/// The Arrow schema of a table: one field per column, lower-case names,
/// and the row key last if `with_handle`.
pub(crate) fn arrow_schema(t: &TableInfo, database: &str, with_handle: bool) -> SchemaRef {
    let mut fields: Vec<Field> = t
        .columns
        .iter()
        .map(|c| {
            let declared = std::collections::HashMap::from([
                (
                    DECLARED_TYPE.to_string(),
                    serde_json::to_string(&c.ty).unwrap_or_default(),
                ),
                (DECLARED_COLUMN.to_string(), c.name.clone()),
                (DECLARED_TABLE.to_string(), t.name.clone()),
                (DECLARED_DATABASE.to_string(), database.to_string()),
            ]);
            let mut declared = declared;
            if c.ty.kind == Json {
                declared.insert(JSON_META.to_string(), "1".to_string());
            }
            if !c.collation.is_binary() {
                declared.insert(COLLATION_META.to_string(), c.collation.name().to_string());
            }
            Field::new(c.name.to_ascii_lowercase(), c.ty.arrow(), c.nullable)
                .with_metadata(declared)
        })
        .collect();
    if with_handle {
        fields.push(Field::new(HANDLE_COLUMN, ArrowType::Binary, false));
    }
    Arc::new(Schema::new(fields))
}

/// Rows of `table` as one Arrow batch of `schema`.
pub(crate) fn rows_to_batch(
    table: &TableInfo,
    schema: &SchemaRef,
    rows: &[(Vec<u8>, Row)],
    with_handle: bool,
) -> Result<RecordBatch> {
    let mut arrays = table_arrays(table, rows.iter().map(|(_, r)| r))?;
    if with_handle {
        let mut keys = BinaryBuilder::new();
        for (k, _) in rows {
            keys.append_value(k);
        }
        arrays.push(Arc::new(keys.finish()));
    }
    RecordBatch::try_new(Arc::clone(schema), arrays)
        .map_err(|e| Error::Internal(format!("building a batch: {e}")))
}

/// Rows of `table` (no keys) as one Arrow batch of `schema`: the columnar
/// replica builds its columns with this, so both engines convert alike.
pub(crate) fn datums_to_batch(
    table: &TableInfo,
    schema: &SchemaRef,
    rows: &[Row],
) -> Result<RecordBatch> {
    let arrays = table_arrays(table, rows.iter())?;
    RecordBatch::try_new_with_options(
        Arc::clone(schema),
        arrays,
        &datafusion::arrow::record_batch::RecordBatchOptions::new()
            .with_row_count(Some(rows.len())),
    )
    .map_err(|e| Error::Internal(format!("building a batch: {e}")))
}

/// One Arrow array per column of `table`.
pub(crate) fn table_arrays<'a>(
    table: &TableInfo,
    rows: impl Iterator<Item = &'a Row> + Clone,
) -> Result<Vec<ArrayRef>> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| column_array(&c.ty.arrow(), rows.clone().map(|r| &r[i])))
        .collect()
}

pub(crate) fn column_array<'a>(
    ty: &ArrowType,
    values: impl Iterator<Item = &'a Datum>,
) -> Result<ArrayRef> {
    let bad = |d: &Datum| Error::Internal(format!("a {ty} column holds {d:?}"));
    Ok(match ty {
        ArrowType::Int64 => {
            let mut b = Int64Builder::new();
            for d in values {
                match d {
                    Datum::Null => b.append_null(),
                    Datum::Int(v) => b.append_value(*v),
                    Datum::UInt(v) => b.append_value(*v as i64),
                    other => return Err(bad(other)),
                }
            }
            Arc::new(b.finish())
        }
        ArrowType::UInt64 => {
            let mut b = UInt64Builder::new();
            for d in values {
                match d {
                    Datum::Null => b.append_null(),
                    Datum::UInt(v) => b.append_value(*v),
                    Datum::Int(v) => b.append_value(*v as u64),
                    other => return Err(bad(other)),
                }
            }
            Arc::new(b.finish())
        }
        ArrowType::Float64 => {
            let mut b = Float64Builder::new();
            for d in values {
                match d {
                    Datum::Null => b.append_null(),
                    Datum::Float(v) => b.append_value(*v),
                    other => return Err(bad(other)),
                }
            }
            Arc::new(b.finish())
        }
        ArrowType::Decimal128(p, s) => {
            let mut b = Decimal128Builder::new();
            for d in values {
                match d {
                    Datum::Null => b.append_null(),
                    Datum::Decimal(text) => b.append_value(decimal_to_i128(text, *s as usize)?),
                    other => return Err(bad(other)),
                }
            }
            Arc::new(
                b.finish()
                    .with_precision_and_scale(*p, *s)
                    .map_err(|e| Error::Internal(e.to_string()))?,
            )
        }
        ArrowType::Utf8 => {
            let mut b = StringBuilder::new();
            for d in values {
                match d {
                    Datum::Null => b.append_null(),
                    Datum::Bytes(v) => b.append_value(String::from_utf8_lossy(v)),
                    Datum::Time { .. } => {
                        b.append_value(types::value_text(&types::datum_to_value(d)))
                    }
                    other => return Err(bad(other)),
                }
            }
            Arc::new(b.finish())
        }
        ArrowType::Binary => {
            let mut b = BinaryBuilder::new();
            for d in values {
                match d {
                    Datum::Null => b.append_null(),
                    Datum::Bytes(v) => b.append_value(v),
                    other => return Err(bad(other)),
                }
            }
            Arc::new(b.finish())
        }
        ArrowType::Date32 => {
            let mut b = Date32Builder::new();
            for d in values {
                match d {
                    Datum::Date { year, month, day } if *month > 0 && *day > 0 => b.append_value(
                        days_from_civil(i64::from(*year), u32::from(*month), u32::from(*day))
                            as i32,
                    ),
                    Datum::Null | Datum::Date { .. } => b.append_null(),
                    other => return Err(bad(other)),
                }
            }
            Arc::new(b.finish())
        }
        ArrowType::Timestamp(TimeUnit::Microsecond, None) => {
            let mut b = TimestampMicrosecondBuilder::new();
            for d in values {
                match d {
                    Datum::DateTime {
                        year,
                        month,
                        day,
                        hour,
                        minute,
                        second,
                        micros,
                    } if *month > 0 && *day > 0 => {
                        let days =
                            days_from_civil(i64::from(*year), u32::from(*month), u32::from(*day));
                        let secs = days * 86_400
                            + i64::from(*hour) * 3600
                            + i64::from(*minute) * 60
                            + i64::from(*second);
                        b.append_value(secs * 1_000_000 + i64::from(*micros));
                    }
                    Datum::Null | Datum::DateTime { .. } => b.append_null(),
                    other => return Err(bad(other)),
                }
            }
            Arc::new(b.finish())
        }
        other => return Err(Error::Internal(format!("no Arrow column for {other}"))),
    })
}

/// A decimal literal as an Arrow Decimal128 value of `scale`.
pub(crate) fn decimal_to_i128(text: &str, scale: usize) -> Result<i128> {
    let rounded = number::round_decimal(text, scale)
        .ok_or_else(|| Error::Internal(format!("bad stored decimal {text:?}")))?;
    rounded
        .replace('.', "")
        .parse()
        .map_err(|_| Error::Internal(format!("decimal {text:?} too wide")))
}

/// Client column descriptions of a result schema.
pub(crate) fn columns(schema: &SchemaRef, names: &[Option<String>]) -> Vec<Column> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let name = names.get(i).cloned().flatten().unwrap_or_else(|| {
                let name = f.name();
                name.split_once(DUPLICATE_NAME)
                    .map_or(name.clone(), |(n, _)| n.to_string())
            });
            declared(&name, f).unwrap_or_else(|| {
                if json::is_json_field(f) {
                    Column::expr(name, FieldType::Json)
                } else {
                    column_for(name, f.data_type())
                }
            })
        })
        .collect()
}

/// A result column that is a table column, described as declared (type,
/// width, sign, origin), if `field` carries the declaration and still has
/// the column's type.
pub(crate) fn declared(name: &str, field: &Field) -> Option<Column> {
    let meta = field.metadata();
    let ty: ColumnType = serde_json::from_str(meta.get(DECLARED_TYPE)?).ok()?;
    if ty.arrow() != *field.data_type() {
        return None;
    }
    Some(declared_column(
        name,
        &ty,
        field.is_nullable(),
        meta.get(DECLARED_COLUMN)?,
        meta.get(DECLARED_TABLE)?,
        meta.get(DECLARED_DATABASE)?,
    ))
}

/// The client's description of a result column that is table column
/// `column` of `database.table`, shown as `name`.
pub(crate) fn declared_column(
    name: &str,
    ty: &ColumnType,
    nullable: bool,
    column: &str,
    table: &str,
    database: &str,
) -> Column {
    let mut c = Column::expr(name, ty.field_type());
    c.org_name = column.to_string();
    c.table = table.to_string();
    c.org_table = table.to_string();
    c.schema = database.to_string();
    c.unsigned = ty.unsigned;
    c.not_null = !nullable;
    c.binary = ty.is_binary();
    c.decimals = ty.scale;
    if c.field_type == FieldType::NewDecimal {
        // Digits, the point and the sign, as MySQL counts a decimal's width.
        c.length = u32::from(ty.precision) + 1 + u32::from(ty.scale > 0);
    } else if (ty.is_text() || ty.is_binary()) && ty.length > 0 {
        c.length = ty.length;
    } else {
        // MySQL's display widths: digits and sign.
        let signed = u32::from(!ty.unsigned);
        c.length = match c.field_type {
            FieldType::Tiny => 3 + signed,
            FieldType::Short => 5 + signed,
            FieldType::Int24 => 8 + signed,
            FieldType::Long => 10 + signed,
            FieldType::LongLong => 20,
            FieldType::Year => 4,
            FieldType::Float => 12,
            FieldType::Double => 22,
            _ => c.length,
        };
    }
    c
}

/// Arrow results as a client result set.
/// The rows of a batch as client values.
pub(crate) fn batch_rows(batch: &RecordBatch) -> Result<Vec<Vec<Value>>> {
    (0..batch.num_rows())
        .map(|r| {
            batch
                .columns()
                .iter()
                .map(|a| array_value(a, r))
                .collect::<Result<Vec<_>>>()
        })
        .collect()
}

pub(crate) fn column_for(name: String, ty: &ArrowType) -> Column {
    let field_type = match ty {
        ArrowType::Int8 | ArrowType::Int16 | ArrowType::Int32 | ArrowType::Int64 => {
            FieldType::LongLong
        }
        ArrowType::UInt8 | ArrowType::UInt16 | ArrowType::UInt32 | ArrowType::UInt64 => {
            FieldType::LongLong
        }
        ArrowType::Boolean => FieldType::LongLong,
        ArrowType::Float16 | ArrowType::Float32 | ArrowType::Float64 => FieldType::Double,
        ArrowType::Decimal128(..) | ArrowType::Decimal256(..) => FieldType::NewDecimal,
        ArrowType::Binary | ArrowType::LargeBinary | ArrowType::BinaryView => FieldType::Blob,
        ArrowType::Date32 | ArrowType::Date64 => FieldType::Date,
        ArrowType::Timestamp(..) => FieldType::DateTime,
        ArrowType::Null => FieldType::Null,
        _ => FieldType::VarString,
    };
    let mut c = Column::expr(name, field_type);
    c.unsigned = matches!(
        ty,
        ArrowType::UInt8 | ArrowType::UInt16 | ArrowType::UInt32 | ArrowType::UInt64
    );
    if let ArrowType::Decimal128(p, s) = ty {
        c.decimals = (*s).max(0) as u8;
        c.length = u32::from(*p) + 2;
    }
    c
}

/// One cell of an Arrow array as a client value.
pub(crate) fn array_value(array: &ArrayRef, row: usize) -> Result<Value> {
    use datafusion::arrow::array::*;
    // A `NullArray` has no validity buffer: `is_null` says false.
    if array.is_null(row) || array.data_type() == &ArrowType::Null {
        return Ok(Value::Null);
    }
    let any = array.as_any();
    macro_rules! get {
        ($t:ty) => {
            any.downcast_ref::<$t>()
                .ok_or_else(|| Error::Internal("array type mismatch".into()))?
                .value(row)
        };
    }
    Ok(match array.data_type() {
        ArrowType::Boolean => Value::Int(i64::from(get!(BooleanArray))),
        ArrowType::Int8 => Value::Int(i64::from(get!(Int8Array))),
        ArrowType::Int16 => Value::Int(i64::from(get!(Int16Array))),
        ArrowType::Int32 => Value::Int(i64::from(get!(Int32Array))),
        ArrowType::Int64 => Value::Int(get!(Int64Array)),
        ArrowType::UInt8 => Value::UInt(u64::from(get!(UInt8Array))),
        ArrowType::UInt16 => Value::UInt(u64::from(get!(UInt16Array))),
        ArrowType::UInt32 => Value::UInt(u64::from(get!(UInt32Array))),
        ArrowType::UInt64 => Value::UInt(get!(UInt64Array)),
        ArrowType::Float32 => Value::Double(f64::from(get!(Float32Array))),
        ArrowType::Float64 => Value::Double(get!(Float64Array)),
        ArrowType::Decimal128(_, s) => {
            let v = get!(Decimal128Array);
            Value::Decimal(format_decimal(v, *s))
        }
        ArrowType::Utf8 => Value::Str(get!(StringArray).to_string()),
        ArrowType::LargeUtf8 => Value::Str(get!(LargeStringArray).to_string()),
        ArrowType::Utf8View => Value::Str(get!(StringViewArray).to_string()),
        ArrowType::Binary => Value::Bytes(get!(BinaryArray).to_vec()),
        ArrowType::LargeBinary => Value::Bytes(get!(LargeBinaryArray).to_vec()),
        ArrowType::BinaryView => Value::Bytes(get!(BinaryViewArray).to_vec()),
        ArrowType::Date32 => {
            let (y, m, d) = civil_from_days(i64::from(get!(Date32Array)));
            Value::Date(Date {
                year: y as u16,
                month: m as u8,
                day: d as u8,
            })
        }
        ArrowType::Timestamp(unit, _) => {
            let raw = match unit {
                TimeUnit::Second => get!(TimestampSecondArray) * 1_000_000,
                TimeUnit::Millisecond => get!(TimestampMillisecondArray) * 1000,
                TimeUnit::Microsecond => get!(TimestampMicrosecondArray),
                TimeUnit::Nanosecond => get!(TimestampNanosecondArray) / 1000,
            };
            let (days, micros) = (
                raw.div_euclid(86_400_000_000),
                raw.rem_euclid(86_400_000_000),
            );
            let (y, m, d) = civil_from_days(days);
            let secs = micros / 1_000_000;
            Value::DateTime(DateTime {
                date: Date {
                    year: y as u16,
                    month: m as u8,
                    day: d as u8,
                },
                hour: (secs / 3600) as u8,
                minute: ((secs / 60) % 60) as u8,
                second: (secs % 60) as u8,
                micros: (micros % 1_000_000) as u32,
            })
        }
        _ => {
            let formatter = datafusion::arrow::util::display::ArrayFormatter::try_new(
                array.as_ref(),
                &Default::default(),
            )
            .map_err(|e| Error::Internal(e.to_string()))?;
            Value::Str(formatter.value(row).to_string())
        }
    })
}

/// An unscaled Decimal128 value as text with `scale` digits.
pub(crate) fn format_decimal(v: i128, scale: i8) -> String {
    let negative = v < 0;
    let digits = v.unsigned_abs().to_string();
    let scale = scale.max(0) as usize;
    let text = if scale == 0 {
        digits
    } else if digits.len() > scale {
        format!(
            "{}.{}",
            &digits[..digits.len() - scale],
            &digits[digits.len() - scale..]
        )
    } else {
        format!("0.{}{}", "0".repeat(scale - digits.len()), digits)
    };
    if negative { format!("-{text}") } else { text }
}
