//! What the statements that read the catalog print: `SHOW CREATE TABLE`
//! and `SHOW CREATE VIEW`, `DESCRIBE` (of a table, or of a view's result
//! columns), `SHOW INDEX` and `SHOW [FULL] TABLES`, and the MySQL type name
//! of a result column.

use crate::catalog::{Catalog, DefaultValue, StoredValue, TableInfo, ViewDef};
use crate::types::value_text;
use crate::value::{Column, FieldType, ResultSet, Value};

/// The SQL type of a table column that holds a query's result column
/// (`CREATE TABLE … AS SELECT`): the type `DESCRIBE` names, but for the
/// widths a result column may not know or may exceed.
pub(crate) fn result_column_type(c: &Column) -> String {
    let long = |binary: bool| if binary { "longblob" } else { "longtext" }.to_string();
    match c.field_type {
        // A computed string's width is not known; a blob's size class is
        // not carried: the widest type.
        FieldType::VarChar | FieldType::VarString if c.org_table.is_empty() => long(c.binary),
        FieldType::Blob => long(c.binary),
        FieldType::NewDecimal => {
            // A decimal's width counts its digits, the point and the sign.
            let scale = u32::from(c.decimals).min(30);
            let digits = c.length.saturating_sub(1 + u32::from(scale > 0));
            format!("decimal({},{scale})", digits.clamp(scale.max(1), 65))
        }
        FieldType::String if c.binary => format!("binary({})", c.length.min(255)),
        FieldType::String if c.length > 255 => format!("varchar({})", c.length),
        FieldType::DateTime if (1..=6).contains(&c.decimals) => {
            format!("datetime({})", c.decimals)
        }
        _ => result_type_name(c),
    }
}

/// `CREATE VIEW` as MySQL prints it (with the view's column names, so
/// that running it makes the same view).
pub(crate) fn show_create_view(name: &str, view: &ViewDef) -> String {
    let columns: Vec<String> = view
        .columns
        .iter()
        .map(|c| format!("`{}`", c.replace('`', "``")))
        .collect();
    format!(
        "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`%` SQL SECURITY DEFINER VIEW `{}` ({}) AS {}",
        name.replace('`', "``"),
        columns.join(","),
        view.sql
    )
}

/// `CREATE TABLE` as MySQL prints it.
pub(crate) fn show_create(table: &TableInfo) -> String {
    let mut lines: Vec<String> = table
        .columns
        .iter()
        .map(|c| {
            let mut s = format!("  `{}` {}", c.name, c.ty.sql_name());
            if c.collation != table.collation && c.ty.is_text() {
                s.push_str(" COLLATE ");
                s.push_str(c.collation.name());
            }
            if !c.nullable {
                s.push_str(" NOT NULL");
            }
            match &c.default {
                Some(DefaultValue::CurrentTimestamp) => s.push_str(" DEFAULT CURRENT_TIMESTAMP"),
                Some(DefaultValue::Value(StoredValue::Null)) => s.push_str(" DEFAULT NULL"),
                Some(DefaultValue::Value(v)) => s.push_str(&format!(
                    " DEFAULT '{}'",
                    value_text(&v.to_value()).replace('\'', "''")
                )),
                None if c.nullable && !c.auto_increment => s.push_str(" DEFAULT NULL"),
                None => {}
            }
            if c.auto_increment {
                s.push_str(" AUTO_INCREMENT");
            }
            s
        })
        .collect();
    for ix in &table.indexes {
        let cols: Vec<String> = ix
            .columns
            .iter()
            .enumerate()
            .map(|(i, o)| match ix.prefix(i) {
                Some(n) => format!("`{}`({n})", table.columns[*o].name),
                None => format!("`{}`", table.columns[*o].name),
            })
            .collect();
        let cols = cols.join(",");
        lines.push(if ix.primary {
            format!("  PRIMARY KEY ({cols})")
        } else if ix.unique {
            format!("  UNIQUE KEY `{}` ({cols})", ix.name)
        } else {
            format!("  KEY `{}` ({cols})", ix.name)
        });
    }
    format!(
        "CREATE TABLE `{}` (\n{}\n) ENGINE=Duet DEFAULT CHARSET=utf8mb4 COLLATE={}",
        table.name,
        lines.join(",\n"),
        table.collation.name()
    )
}

/// `DESCRIBE v` of a view: its query's result columns, each nullable, with
/// no key or default.
pub(crate) fn describe_columns(columns: &[Column], full: bool) -> ResultSet {
    let mut described = describe_header(full);
    described.rows = columns
        .iter()
        .map(|c| {
            let mut row = vec![Value::Str(c.name.clone()), Value::Str(result_type_name(c))];
            if full {
                row.push(Value::Null);
            }
            row.extend([
                Value::Str(if c.not_null { "NO" } else { "YES" }.into()),
                Value::Str(String::new()),
                Value::Null,
                Value::Str(String::new()),
            ]);
            if full {
                row.extend([Value::Str("select".into()), Value::Str(String::new())]);
            }
            row
        })
        .collect();
    described
}

/// The MySQL type name of a result column, as `DESCRIBE` spells it.
fn result_type_name(c: &Column) -> String {
    let unsigned = if c.unsigned { " unsigned" } else { "" };
    match c.field_type {
        FieldType::Tiny => format!("tinyint{unsigned}"),
        FieldType::Short => format!("smallint{unsigned}"),
        FieldType::Int24 => format!("mediumint{unsigned}"),
        FieldType::Long => format!("int{unsigned}"),
        FieldType::LongLong => format!("bigint{unsigned}"),
        FieldType::Float => "float".into(),
        FieldType::Double => "double".into(),
        FieldType::NewDecimal => {
            let digits = c
                .length
                .saturating_sub(1 + u32::from(c.decimals > 0))
                .min(65);
            format!("decimal({digits},{}){unsigned}", c.decimals)
        }
        FieldType::Year => "year".into(),
        FieldType::Date => "date".into(),
        FieldType::DateTime => "datetime".into(),
        FieldType::Timestamp => "timestamp".into(),
        FieldType::Time => "time".into(),
        FieldType::VarChar | FieldType::VarString if c.binary => {
            format!("varbinary({})", c.length)
        }
        FieldType::VarChar | FieldType::VarString => format!("varchar({})", c.length),
        FieldType::String => format!("char({})", c.length),
        FieldType::Blob if c.binary => "blob".into(),
        FieldType::Blob => "text".into(),
        FieldType::Json => "json".into(),
        FieldType::Null => "binary(0)".into(),
    }
}

/// The columns of `DESCRIBE` (and of `SHOW FULL COLUMNS` when `full`).
fn describe_header(full: bool) -> ResultSet {
    let mut names = vec!["Field", "Type"];
    if full {
        names.push("Collation");
    }
    names.extend(["Null", "Key", "Default", "Extra"]);
    if full {
        names.extend(["Privileges", "Comment"]);
    }
    ResultSet {
        columns: names
            .iter()
            .map(|n| Column::expr(*n, FieldType::VarString))
            .collect(),
        rows: Vec::new(),
    }
}

/// `DESCRIBE t` / `SHOW COLUMNS FROM t`.
pub(crate) fn describe(table: &TableInfo, full: bool) -> ResultSet {
    let mut described = describe_header(full);
    described.rows = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let key = table
                .indexes
                .iter()
                .filter(|ix| ix.columns.first() == Some(&i))
                .map(|ix| {
                    if ix.primary {
                        "PRI"
                    } else if ix.unique && ix.columns.len() == 1 {
                        "UNI"
                    } else {
                        "MUL"
                    }
                })
                .min_by_key(|k| match *k {
                    "PRI" => 0,
                    "UNI" => 1,
                    _ => 2,
                })
                .unwrap_or("");
            let default = match &c.default {
                Some(DefaultValue::CurrentTimestamp) => Value::Str("CURRENT_TIMESTAMP".into()),
                Some(DefaultValue::Value(v)) => match v.to_value() {
                    Value::Null => Value::Null,
                    other => Value::Str(value_text(&other)),
                },
                None => Value::Null,
            };
            let mut row = vec![Value::Str(c.name.clone()), Value::Str(c.ty.sql_name())];
            if full {
                row.push(if c.ty.is_text() {
                    Value::Str(c.collation.name().into())
                } else {
                    Value::Null
                });
            }
            row.extend([
                Value::Str(if c.nullable { "YES" } else { "NO" }.into()),
                Value::Str(key.into()),
                default,
                Value::Str(
                    if c.auto_increment {
                        "auto_increment"
                    } else {
                        ""
                    }
                    .into(),
                ),
            ]);
            if full {
                row.extend([
                    Value::Str("select,insert,update,references".into()),
                    Value::Str(c.comment.clone()),
                ]);
            }
            row
        })
        .collect();
    described
}

/// `SHOW INDEX FROM t`.
pub(crate) fn show_index(table: &TableInfo) -> ResultSet {
    let names = [
        "Table",
        "Non_unique",
        "Key_name",
        "Seq_in_index",
        "Column_name",
        "Collation",
        "Cardinality",
        "Sub_part",
        "Packed",
        "Null",
        "Index_type",
        "Comment",
        "Index_comment",
        "Visible",
        "Expression",
    ];
    let columns = names
        .iter()
        .map(|n| Column::expr(*n, FieldType::VarString))
        .collect();
    let mut rows = Vec::new();
    for ix in &table.indexes {
        for (seq, o) in ix.columns.iter().enumerate() {
            let c = &table.columns[*o];
            rows.push(vec![
                Value::Str(table.name.clone()),
                Value::Int(i64::from(!ix.unique)),
                Value::Str(ix.name.clone()),
                Value::Int(seq as i64 + 1),
                Value::Str(c.name.clone()),
                Value::Str("A".into()),
                Value::Int(0),
                ix.prefix(seq).map_or(Value::Null, |n| Value::Int(n as i64)),
                Value::Null,
                Value::Str(if c.nullable { "YES" } else { "" }.into()),
                Value::Str("BTREE".into()),
                Value::Str(String::new()),
                Value::Str(String::new()),
                Value::Str("YES".into()),
                Value::Null,
            ]);
        }
    }
    ResultSet { columns, rows }
}

/// Tables of `database` in name order, for `SHOW TABLES`.
pub(crate) fn show_tables(catalog: &Catalog, database: &str, full: bool) -> ResultSet {
    let mut columns = vec![Column::expr(
        format!("Tables_in_{database}"),
        FieldType::VarString,
    )];
    if full {
        columns.push(Column::expr("Table_type", FieldType::VarString));
    }
    let mut names: Vec<(String, bool)> = catalog
        .tables(database)
        .iter()
        .map(|t| (t.name.clone(), t.view.is_some()))
        .collect();
    names.sort();
    let rows = names
        .into_iter()
        .map(|(n, view)| {
            let mut row = vec![Value::Str(n)];
            if full {
                row.push(Value::Str(if view { "VIEW" } else { "BASE TABLE" }.into()));
            }
            row
        })
        .collect();
    ResultSet { columns, rows }
}
