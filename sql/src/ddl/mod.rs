//! Schema statements: `CREATE/DROP DATABASE`, `CREATE/DROP TABLE`,
//! `CREATE/DROP INDEX` (with back-fill), `ALTER TABLE ADD/DROP COLUMN|INDEX`,
//! `MODIFY`/`CHANGE`/`RENAME COLUMN` and column defaults,
//! `TRUNCATE`, and the `SHOW`/`DESCRIBE` statements that read the catalog.
//! Each change runs in its own transaction that writes the catalog (and,
//! for indexes and drops, the data) — one commit through the Raft log.

use std::collections::HashSet;

use datafusion::sql::sqlparser::ast::{
    self, AlterTableOperation, ColumnDef, ColumnOption, CreateTable, Expr, IndexColumn, ObjectName,
    TableConstraint,
};

use crate::catalog::{
    Catalog, ColumnInfo, DefaultValue, HandleKind, IndexInfo, SchemaWriter, StoredValue, TableInfo,
};
use crate::collation::Collation;
use crate::error::{Error, Result};
use crate::session::Warning;
use crate::types::{ColumnType, datum_to_value, value_text};
use crate::value::{Column, FieldType, ResultSet, Value};

/// The unquoted name of a column or index.
fn ident_name(i: &ast::Ident) -> String {
    i.value.clone()
}

/// A key part: a column, and the length of its prefix if only a prefix
/// is indexed (0 for the whole value).
pub(crate) type KeyPart = (String, u32);

/// The key parts of an index definition: `a` or `a(10)`.
pub(crate) fn index_columns(columns: &[IndexColumn]) -> Result<Vec<KeyPart>> {
    columns
        .iter()
        .map(|c| match &c.column.expr {
            Expr::Identifier(i) => Ok((i.value.clone(), 0)),
            Expr::Function(f) => {
                let length = match &f.args {
                    ast::FunctionArguments::List(l) => match l.args.as_slice() {
                        [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(Expr::Value(v)))] => {
                            match &v.value {
                                ast::Value::Number(n, _) => n.parse::<u32>().ok(),
                                _ => None,
                            }
                        }
                        _ => None,
                    },
                    _ => None,
                };
                match (f.name.0.as_slice(), length) {
                    ([name], Some(n)) if n > 0 => Ok((
                        name.as_ident()
                            .map_or_else(|| name.to_string(), |i| i.value.clone()),
                        n,
                    )),
                    _ => Err(Error::not_supported(format!("index on expression {f}"))),
                }
            }
            other => Err(Error::not_supported(format!("index on expression {other}"))),
        })
        .collect()
}

/// Whether a column option is MySQL's `AUTO_INCREMENT`.
fn is_auto_increment(option: &ColumnOption) -> bool {
    matches!(option, ColumnOption::DialectSpecific(tokens)
        if tokens.iter().any(|t| t.to_string().eq_ignore_ascii_case("AUTO_INCREMENT")))
}

/// A column of a `CREATE TABLE` or `ADD COLUMN`, and the keys it declares
/// inline (`PRIMARY KEY`, `UNIQUE`).
/// A text column without a `COLLATE` of its own takes `collation`, the
/// table's.
pub(crate) fn column_info(
    def: &ColumnDef,
    id: u32,
    collation: Collation,
) -> Result<(ColumnInfo, bool, bool)> {
    let name = ident_name(&def.name);
    let ty = ColumnType::from_sql(&def.data_type).map_err(|e| match e {
        Error::TooBigLength(_, max) => Error::TooBigLength(name.clone(), max),
        other => other,
    })?;
    let mut column = ColumnInfo {
        id,
        name: name.clone(),
        ty,
        nullable: true,
        default: None,
        auto_increment: false,
        comment: String::new(),
        collation: if ty.is_text() {
            collation
        } else {
            Collation::Bin
        },
    };
    let (mut primary, mut unique) = (false, false);
    let mut default_expr = None;
    for option in def.options.iter().map(|o| &o.option) {
        match option {
            ColumnOption::Null => column.nullable = true,
            ColumnOption::NotNull => column.nullable = false,
            ColumnOption::Default(e) => default_expr = Some(e.clone()),
            ColumnOption::PrimaryKey(_) => primary = true,
            ColumnOption::Unique(_) => unique = true,
            ColumnOption::Comment(c) => column.comment = c.clone(),
            ColumnOption::Collation(name) => {
                let c = Collation::from_name(&name.to_string())?;
                if column.ty.is_text() {
                    column.collation = c;
                }
            }
            ColumnOption::CharacterSet(name) => check_charset(&name.to_string())?,
            ColumnOption::OnUpdate(_) => {}
            o if is_auto_increment(o) => column.auto_increment = true,
            other => return Err(Error::not_supported(format!("column option {other}"))),
        }
    }
    if primary {
        column.nullable = false;
    }
    if let Some(e) = default_expr {
        column.default = Some(default_value(&column, &e)?);
    }
    Ok((column, primary, unique))
}

/// A character set Duet can store: it keeps all text as utf8mb4, which
/// holds every character of these.
fn check_charset(name: &str) -> Result<()> {
    if crate::vars::is_known_charset(name) || name.eq_ignore_ascii_case("utf8") {
        Ok(())
    } else {
        Err(Error::UnknownCharset(name.to_string()))
    }
}

/// The collation `CREATE TABLE`'s options give its text columns
/// (`[DEFAULT] COLLATE [=] name`; `utf8mb4_bin` without one), and whether
/// it has options Duet ignores.
fn table_collation(options: &ast::CreateTableOptions) -> Result<(Collation, bool)> {
    let list = match options {
        ast::CreateTableOptions::None => return Ok((Collation::Bin, false)),
        ast::CreateTableOptions::With(l)
        | ast::CreateTableOptions::Options(l)
        | ast::CreateTableOptions::Plain(l)
        | ast::CreateTableOptions::TableProperties(l) => l,
    };
    let (mut collation, mut ignored) = (Collation::Bin, false);
    for option in list {
        let ast::SqlOption::KeyValue { key, value } = option else {
            ignored = true;
            continue;
        };
        let value = value.to_string();
        let value = value.trim_matches(|c| c == '\'' || c == '"' || c == '`');
        match key.value.to_ascii_uppercase().as_str() {
            "COLLATE" | "DEFAULT COLLATE" => collation = Collation::from_name(value)?,
            "CHARSET" | "DEFAULT CHARSET" | "CHARACTER SET" | "DEFAULT CHARACTER SET" => {
                check_charset(value)?
            }
            "ENGINE" => {}
            _ => ignored = true,
        }
    }
    Ok((collation, ignored))
}

/// A `DEFAULT` converted to its column's type.
fn default_value(column: &ColumnInfo, e: &Expr) -> Result<DefaultValue> {
    let invalid = || Error::InvalidDefault(column.name.clone());
    let text = e.to_string().to_ascii_uppercase();
    if matches!(
        text.as_str(),
        "CURRENT_TIMESTAMP" | "CURRENT_TIMESTAMP()" | "NOW()" | "LOCALTIMESTAMP"
    ) {
        if !matches!(
            column.ty.kind,
            crate::types::TypeKind::DateTime | crate::types::TypeKind::Timestamp
        ) {
            return Err(invalid());
        }
        return Ok(DefaultValue::CurrentTimestamp);
    }
    let value = crate::eval::eval(&crate::eval::NoEnv, e).map_err(|_| invalid())?;
    if matches!(value, Value::Null) {
        if !column.nullable {
            return Err(invalid());
        }
        return Ok(DefaultValue::Value(StoredValue::Null));
    }
    let datum = column
        .ty
        .coerce(&value, &column.name)
        .map_err(|_| invalid())?;
    Ok(DefaultValue::Value(StoredValue::from_value(
        &datum_to_value(&datum),
    )))
}

/// The table a `CREATE TABLE` describes, with warnings for options Duet
/// accepts and ignores.
pub(crate) fn table_info(
    create: &CreateTable,
    database_id: i64,
    table_id: i64,
    name: &str,
) -> Result<(TableInfo, Vec<Warning>)> {
    let mut warnings = Vec::new();
    if create.columns.is_empty() {
        return Err(Error::NoColumns);
    }
    if create.query.is_some() || create.like.is_some() {
        return Err(Error::not_supported("CREATE TABLE … AS SELECT / LIKE"));
    }
    let (collation, ignored_options) = table_collation(&create.table_options)?;
    let mut columns: Vec<ColumnInfo> = Vec::new();
    let mut keys: Vec<(Option<String>, Vec<KeyPart>, bool, bool)> = Vec::new();
    for (i, def) in create.columns.iter().enumerate() {
        let (column, primary, unique) = column_info(def, i as u32 + 1, collation)?;
        if columns
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(&column.name))
        {
            return Err(Error::DuplicateColumn(column.name));
        }
        if primary {
            keys.push((None, vec![(column.name.clone(), 0)], true, true));
        } else if unique {
            keys.push((
                Some(column.name.clone()),
                vec![(column.name.clone(), 0)],
                true,
                false,
            ));
        }
        columns.push(column);
    }
    for constraint in &create.constraints {
        match constraint {
            TableConstraint::PrimaryKey(pk) => {
                keys.push((None, index_columns(&pk.columns)?, true, true));
            }
            TableConstraint::Unique(u) => {
                let name = u.index_name.as_ref().or(u.name.as_ref()).map(ident_name);
                keys.push((name, index_columns(&u.columns)?, true, false));
            }
            TableConstraint::Index(ix) => {
                keys.push((
                    ix.name.as_ref().map(ident_name),
                    index_columns(&ix.columns)?,
                    false,
                    false,
                ));
            }
            TableConstraint::ForeignKey(_) | TableConstraint::Check(_) => warnings.push(Warning {
                level: "Warning",
                code: 1235,
                message: format!("Duet does not enforce {constraint}; it was ignored"),
            }),
            other => return Err(Error::not_supported(format!("constraint {other}"))),
        }
    }
    if ignored_options {
        warnings.push(Warning {
            level: "Warning",
            code: 1478,
            message:
                "Table options other than ENGINE, CHARSET and COLLATE are accepted and ignored"
                    .into(),
        });
    }
    let mut table = TableInfo {
        id: table_id,
        database_id,
        name: name.to_string(),
        next_column_id: columns.len() as u32 + 1,
        columns,
        indexes: Vec::new(),
        handle: HandleKind::RowId,
        next_index_id: 1,
        comment: String::new(),
        view: None,
        columnar_replica: true,
        altering: None,
        collation,
    };
    for (name, cols, unique, primary) in keys {
        add_index(&mut table, name, &cols, unique, primary)?;
    }
    let autos: Vec<usize> = (0..table.columns.len())
        .filter(|i| table.columns[*i].auto_increment)
        .collect();
    match autos.as_slice() {
        [] => {}
        [one] => {
            let leads_a_key = table
                .indexes
                .iter()
                .any(|ix| ix.columns.first() == Some(one));
            if !leads_a_key || !table.columns[*one].ty.is_integer() {
                return Err(Error::BadAutoIncrement);
            }
        }
        _ => return Err(Error::BadAutoIncrement),
    }
    Ok((table, warnings))
}

/// Adds an index definition to `table` (checking names and columns); the
/// primary key also decides how rows are keyed.
pub(crate) fn add_index(
    table: &mut TableInfo,
    name: Option<String>,
    parts: &[KeyPart],
    unique: bool,
    primary: bool,
) -> Result<IndexInfo> {
    let offsets: Vec<usize> = parts
        .iter()
        .map(|(c, _)| {
            table
                .column_offset(c)
                .ok_or_else(|| Error::KeyColumnMissing(c.clone()))
        })
        .collect::<Result<_>>()?;
    // A prefix is of a string, shorter than the column (MySQL's 1089).
    for ((_, prefix), o) in parts.iter().zip(&offsets) {
        let ty = &table.columns[*o].ty;
        if ty.kind == crate::types::TypeKind::Json {
            return Err(Error::JsonKey(table.columns[*o].name.clone()));
        }
        let fixed = ty.length > 0
            && !matches!(
                ty.sql_name().split('(').next(),
                Some(
                    "text"
                        | "blob"
                        | "tinytext"
                        | "tinyblob"
                        | "mediumtext"
                        | "mediumblob"
                        | "longtext"
                        | "longblob"
                )
            );
        if *prefix > 0 && (!(ty.is_text() || ty.is_binary()) || (fixed && *prefix > ty.length)) {
            return Err(Error::WrongPrefix);
        }
    }
    let prefixes: Vec<u32> = if parts.iter().any(|(_, p)| *p > 0) {
        if primary {
            return Err(Error::not_supported("a PRIMARY KEY on a column prefix"));
        }
        parts.iter().map(|(_, p)| *p).collect()
    } else {
        Vec::new()
    };
    if primary {
        if table.indexes.iter().any(|i| i.primary) {
            return Err(Error::MultiplePrimaryKey);
        }
        for o in &offsets {
            table.columns[*o].nullable = false;
        }
    }
    let name = if primary {
        "PRIMARY".to_string()
    } else {
        match name {
            Some(n) => n,
            None => {
                // MySQL names an unnamed key after its first column.
                let base = table.columns[offsets[0]].name.clone();
                let mut candidate = base.clone();
                let mut n = 2;
                while table
                    .indexes
                    .iter()
                    .any(|i| i.name.eq_ignore_ascii_case(&candidate))
                {
                    candidate = format!("{base}_{n}");
                    n += 1;
                }
                candidate
            }
        }
    };
    if table
        .indexes
        .iter()
        .any(|i| i.name.eq_ignore_ascii_case(&name))
    {
        return Err(Error::DuplicateKeyName(name));
    }
    let index = IndexInfo {
        id: table.next_index_id,
        name,
        columns: offsets.clone(),
        unique: unique || primary,
        primary,
        prefixes,
        write_only: None,
    };
    table.next_index_id += 1;
    if primary {
        table.handle = match offsets.as_slice() {
            [one] if table.columns[*one].ty.is_integer() => HandleKind::IntPk(*one),
            _ => HandleKind::Clustered,
        };
    }
    table.indexes.push(index.clone());
    Ok(index)
}

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
pub(crate) fn show_create_view(name: &str, view: &crate::catalog::ViewDef) -> String {
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

/// Applies `ALTER TABLE` operations to a copy of `table`, writing index
/// back-fills and drops through `writer`. Returns the new definition.
pub(crate) fn alter_table(
    writer: &mut SchemaWriter<'_>,
    table: &TableInfo,
    operations: &[AlterTableOperation],
) -> Result<TableInfo> {
    let mut next = table.clone();
    for op in operations {
        match op {
            AlterTableOperation::AddColumn {
                column_def,
                if_not_exists,
                column_position,
                ..
            } => {
                if next.column_offset(&column_def.name.value).is_some() {
                    if *if_not_exists {
                        continue;
                    }
                    return Err(Error::DuplicateColumn(column_def.name.value.clone()));
                }
                let (column, primary, unique) =
                    column_info(column_def, next.next_column_id, next.collation)?;
                if primary || column.auto_increment {
                    return Err(Error::not_supported(
                        "ADD COLUMN with PRIMARY KEY or AUTO_INCREMENT",
                    ));
                }
                if !column.nullable && column.default.is_none() {
                    // Existing rows need a value: MySQL uses the type's zero.
                    return Err(Error::not_supported(
                        "ADD COLUMN … NOT NULL without DEFAULT",
                    ));
                }
                next.next_column_id += 1;
                let name = column.name.clone();
                next.columns.push(column);
                if unique {
                    let ix = add_index(&mut next, Some(name.clone()), &[(name, 0)], true, false)?;
                    build_index(writer, &mut next, &ix)?;
                }
                if let Some(position) = column_position {
                    let last = next.columns.len() - 1;
                    move_column(&mut next, last, position)?;
                }
            }
            AlterTableOperation::ModifyColumn {
                col_name: old_name,
                data_type,
                options,
                column_position,
            }
            | AlterTableOperation::ChangeColumn {
                old_name,
                data_type,
                options,
                column_position,
                ..
            } => {
                let new_name = match op {
                    AlterTableOperation::ChangeColumn { new_name, .. } => new_name,
                    _ => old_name,
                };
                let def = column_def(new_name, data_type, options);
                change_column(writer, &mut next, &old_name.value, &def)?;
                if let Some(position) = column_position {
                    let at = next.column_offset(&new_name.value).unwrap_or_default();
                    move_column(&mut next, at, position)?;
                }
            }
            AlterTableOperation::RenameColumn {
                old_column_name,
                new_column_name,
            } => {
                let at = existing_column(&next, &old_column_name.value)?;
                rename_column(&mut next, at, &new_column_name.value)?;
            }
            AlterTableOperation::AlterColumn { column_name, op } => {
                let at = existing_column(&next, &column_name.value)?;
                let column = &mut next.columns[at];
                match op {
                    ast::AlterColumnOperation::SetDefault { value } => {
                        column.default = Some(default_value(column, value)?);
                    }
                    ast::AlterColumnOperation::DropDefault => column.default = None,
                    other => {
                        return Err(Error::not_supported(format!(
                            "ALTER TABLE … ALTER COLUMN {other}"
                        )));
                    }
                }
            }
            AlterTableOperation::DropColumn {
                column_names,
                if_exists,
                ..
            } => {
                for name in column_names {
                    let Some(offset) = next.column_offset(&name.value) else {
                        if *if_exists {
                            continue;
                        }
                        return Err(Error::CantDrop(name.value.clone()));
                    };
                    if next.indexes.iter().any(|ix| ix.columns.contains(&offset)) {
                        return Err(Error::not_supported("dropping a column that an index uses"));
                    }
                    if next.columns.len() == 1 {
                        return Err(Error::not_supported("dropping the last column"));
                    }
                    // Stored rows keep the value under the column id; it is never read again.
                    next.columns.remove(offset);
                    for ix in next.indexes.iter_mut() {
                        for c in ix.columns.iter_mut() {
                            if *c > offset {
                                *c -= 1;
                            }
                        }
                    }
                    if let HandleKind::IntPk(o) = &mut next.handle
                        && *o > offset
                    {
                        *o -= 1;
                    }
                }
            }
            AlterTableOperation::AddConstraint { constraint, .. } => {
                let (name, cols, unique) = match constraint {
                    TableConstraint::Unique(u) => (
                        u.index_name.as_ref().or(u.name.as_ref()).map(ident_name),
                        index_columns(&u.columns)?,
                        true,
                    ),
                    TableConstraint::Index(ix) => (
                        ix.name.as_ref().map(ident_name),
                        index_columns(&ix.columns)?,
                        false,
                    ),
                    other => return Err(Error::not_supported(format!("ALTER TABLE ADD {other}"))),
                };
                let ix = add_index(&mut next, name, &cols, unique, false)?;
                build_index(writer, &mut next, &ix)?;
            }
            AlterTableOperation::DropIndex { name, .. } => {
                drop_index(writer, &mut next, &name.value)?;
            }
            other => return Err(Error::not_supported(format!("ALTER TABLE {other}"))),
        }
    }
    Ok(next)
}

/// Fills the new index `ix` of `table` from its rows, or, when `writer`
/// defers back-fills, leaves it write-only for [`publish_indexes`].
pub(crate) fn build_index(
    writer: &mut SchemaWriter<'_>,
    table: &mut TableInfo,
    ix: &IndexInfo,
) -> Result<()> {
    if let Some(node) = writer.defer_backfill {
        if let Some(index) = table.indexes.iter_mut().find(|i| i.id == ix.id) {
            index.write_only = Some(node);
        }
        return Ok(());
    }
    crate::table::backfill_index(writer.txn, table, ix)
}

/// Back-fills every write-only index of `table` and opens it to readers.
pub(crate) fn publish_indexes(writer: &mut SchemaWriter<'_>, table: &mut TableInfo) -> Result<()> {
    let building: Vec<IndexInfo> = table
        .indexes
        .iter()
        .filter(|i| i.write_only.is_some())
        .cloned()
        .collect();
    for ix in &building {
        crate::table::backfill_index(writer.txn, table, ix)?;
    }
    for index in &mut table.indexes {
        index.write_only = None;
    }
    Ok(())
}

/// A column definition from the parts `MODIFY` and `CHANGE` give.
fn column_def(name: &ast::Ident, data_type: &ast::DataType, options: &[ColumnOption]) -> ColumnDef {
    ColumnDef {
        name: name.clone(),
        data_type: data_type.clone(),
        options: options
            .iter()
            .map(|o| ast::ColumnOptionDef {
                name: None,
                option: o.clone(),
            })
            .collect(),
    }
}

/// The offset of column `name` of `table`, or 1054.
fn existing_column(table: &TableInfo, name: &str) -> Result<usize> {
    table
        .column_offset(name)
        .ok_or_else(|| Error::UnknownColumnIn {
            column: name.to_string(),
            clause: table.name.clone(),
        })
}

/// Renames the column at `at`: 1060 if another column has the name.
fn rename_column(table: &mut TableInfo, at: usize, name: &str) -> Result<()> {
    if table.column_offset(name).is_some_and(|o| o != at) {
        return Err(Error::DuplicateColumn(name.to_string()));
    }
    table.columns[at].name = name.to_string();
    Ok(())
}

/// Which stored form a type's values take: a column changes type only
/// within one (its values are checked, and converted where the form's
/// details differ, such as a decimal's scale).
fn storage_family(ty: &ColumnType) -> u8 {
    use crate::types::TypeKind as K;
    match ty.kind {
        _ if ty.is_integer() => 1 + u8::from(ty.unsigned),
        K::Decimal => 3,
        K::Float | K::Double => 4,
        _ if ty.is_text() => 5,
        _ if ty.is_binary() => 6,
        K::Date => 7,
        K::DateTime | K::Timestamp => 8,
        K::Time => 9,
        K::Json => 10,
        _ => 0,
    }
}

/// `MODIFY`/`CHANGE` of column `name` to `def` (which may rename it): the
/// type may change within its stored form, every row's value is checked
/// against the new type (as an `INSERT` in strict mode would be, naming
/// the row: 1264, 1265, and 1138 for a NULL in a column made `NOT NULL`)
/// and rewritten, with its index entries, where its stored value changes.
fn change_column(
    writer: &mut SchemaWriter<'_>,
    table: &mut TableInfo,
    name: &str,
    def: &ColumnDef,
) -> Result<()> {
    let at = existing_column(table, name)?;
    let old = table.columns[at].clone();
    let (mut column, primary, unique) = column_info(def, old.id, table.collation)?;
    if column.collation != old.collation && table.indexes.iter().any(|i| i.columns.contains(&at)) {
        return Err(Error::not_supported(format!(
            "changing the collation of indexed column '{}' (its index entries hold sort keys; drop the index first)",
            old.name
        )));
    }
    let keyed = table
        .indexes
        .iter()
        .any(|i| i.primary && i.columns.contains(&at));
    if primary && !keyed {
        return Err(Error::not_supported(
            "MODIFY/CHANGE … PRIMARY KEY of a column outside the primary key",
        ));
    }
    if keyed {
        // A primary key column is NOT NULL, as in MySQL.
        column.nullable = false;
    }
    if column.auto_increment && !old.auto_increment {
        return Err(Error::not_supported(
            "adding AUTO_INCREMENT with MODIFY/CHANGE",
        ));
    }
    if storage_family(&column.ty) != storage_family(&old.ty) || storage_family(&old.ty) == 0 {
        return Err(Error::not_supported(format!(
            "changing column '{}' from {} to {}",
            old.name,
            old.ty.sql_name(),
            column.ty.sql_name()
        )));
    }
    let before = table.clone();
    let new_name = column.name.clone();
    table.columns[at] = ColumnInfo {
        name: old.name.clone(),
        ..column
    };
    rename_column(table, at, &new_name)?;
    if old.ty != table.columns[at].ty || (old.nullable && !table.columns[at].nullable) {
        convert_column(writer.txn, &before, table, at, keyed)?;
    }
    if unique {
        let ix = add_index(table, Some(new_name.clone()), &[(new_name, 0)], true, false)?;
        build_index(writer, table, &ix)?;
    }
    Ok(())
}

/// Checks every row's value of column `at` against its definition in
/// `after`, and rewrites the rows whose stored value the new type changes
/// (refused for a primary key column, whose values are the row keys).
fn convert_column(
    txn: &mut dyn crate::kv::KvTxn,
    before: &TableInfo,
    after: &TableInfo,
    at: usize,
    keyed: bool,
) -> Result<()> {
    use duet_storage::codec::Datum;
    let column = &after.columns[at];
    let mut row_number = 0u64;
    let mut changed = Vec::new();
    crate::table::for_each_row_page(&*txn, before, 4096, |rows| {
        for (key, row) in rows {
            row_number += 1;
            let stored = &row[at];
            if matches!(stored, Datum::Null) {
                if !column.nullable {
                    return Err(Error::InvalidNull);
                }
                continue;
            }
            let converted = column
                .ty
                .coerce(&datum_to_value(stored), &column.name)
                .map_err(|e| match e {
                    Error::OutOfRangeColumn(c) => Error::OutOfRangeAt {
                        column: c,
                        row: row_number,
                    },
                    Error::DataTooLong(c) | Error::IncorrectValue { column: c, .. } => {
                        Error::DataTruncated {
                            column: c,
                            row: row_number,
                        }
                    }
                    other => other,
                })?;
            if converted != *stored {
                if keyed {
                    return Err(Error::not_supported(
                        "changing the stored values of a primary key column",
                    ));
                }
                let mut new = row.clone();
                new[at] = converted;
                changed.push((key.clone(), row.clone(), new));
            }
        }
        Ok(())
    })?;
    for (key, old, new) in changed {
        let handle = crate::table::decode_handle(after, &key)?;
        crate::table::update_row(txn, after, &old, &handle, &new, &handle)?;
    }
    Ok(())
}

/// Moves the column at `from` to `position` (`FIRST`, `AFTER c`); rows
/// keep their values by column id, and indexes follow their columns.
fn move_column(
    table: &mut TableInfo,
    from: usize,
    position: &ast::MySQLColumnPosition,
) -> Result<()> {
    let mut order: Vec<usize> = (0..table.columns.len()).collect();
    order.remove(from);
    let to = match position {
        ast::MySQLColumnPosition::First => 0,
        ast::MySQLColumnPosition::After(name) => {
            let after = existing_column(table, &name.value)?;
            if after == from {
                return Err(Error::UnknownColumnIn {
                    column: name.value.clone(),
                    clause: table.name.clone(),
                });
            }
            order.iter().position(|&o| o == after).unwrap_or_default() + 1
        }
    };
    order.insert(to, from);
    let new_offset = |old: usize| order.iter().position(|&o| o == old).unwrap_or(old);
    let columns = order.iter().map(|&o| table.columns[o].clone()).collect();
    table.columns = columns;
    for ix in &mut table.indexes {
        for c in &mut ix.columns {
            *c = new_offset(*c);
        }
    }
    if let HandleKind::IntPk(o) = &mut table.handle {
        *o = new_offset(*o);
    }
    Ok(())
}

/// Removes index `name` from `table`; its entries are destroyed later.
pub(crate) fn drop_index(
    writer: &mut SchemaWriter<'_>,
    table: &mut TableInfo,
    name: &str,
) -> Result<()> {
    table.change_running()?;
    let Some(at) = table
        .indexes
        .iter()
        .position(|i| i.name.eq_ignore_ascii_case(name) && !i.primary)
    else {
        return Err(Error::CantDrop(name.to_string()));
    };
    let ix = table.indexes.remove(at);
    writer.retire_prefix(duet_storage::codec::key::index_prefix(table.id, ix.id));
    Ok(())
}

/// The table names a `DROP TABLE` or `TRUNCATE` lists, with their databases.
pub(crate) fn qualified(name: &ObjectName, current: Option<&str>) -> Result<(String, String)> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| {
            p.as_ident()
                .map_or_else(|| p.to_string(), |i| i.value.clone())
        })
        .collect();
    match parts.as_slice() {
        [t] => Ok((
            current.ok_or(Error::NoDatabaseSelected)?.to_string(),
            t.clone(),
        )),
        [d, t] => Ok((d.clone(), t.clone())),
        _ => Err(Error::Parse {
            message: format!("near '{name}': not a table name"),
        }),
    }
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

/// Checks that no two tables in a `DROP TABLE` list are the same.
pub(crate) fn distinct_tables(names: &[(String, String)]) -> bool {
    let mut seen = HashSet::new();
    names
        .iter()
        .all(|(d, t)| seen.insert((d.to_ascii_lowercase(), t.to_ascii_lowercase())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::MySql;
    use datafusion::sql::sqlparser::ast::Statement;
    use datafusion::sql::sqlparser::parser::Parser;

    fn create(sql: &str) -> Result<(TableInfo, Vec<Warning>)> {
        let stmt = Parser::parse_sql(&MySql, sql).unwrap().remove(0);
        let Statement::CreateTable(ct) = stmt else {
            panic!("create table")
        };
        table_info(&ct, 1, 100, "t")
    }

    #[test]
    fn keys_decide_the_handle() {
        let (t, _) = create("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))").unwrap();
        assert_eq!(t.handle, HandleKind::IntPk(0));
        assert!(!t.columns[0].nullable);
        let (t, _) = create("CREATE TABLE t (a INT, b VARCHAR(5), PRIMARY KEY (a, b))").unwrap();
        assert_eq!(t.handle, HandleKind::Clustered);
        let (t, _) = create("CREATE TABLE t (a INT, b INT, UNIQUE KEY ub (b), KEY (a))").unwrap();
        assert_eq!(t.handle, HandleKind::RowId);
        assert_eq!(
            t.indexes
                .iter()
                .map(|i| (i.name.as_str(), i.unique))
                .collect::<Vec<_>>(),
            vec![("ub", true), ("a", false)]
        );
    }

    #[test]
    fn bad_definitions_get_mysql_errors() {
        let code = |sql: &str| create(sql).unwrap_err().code();
        assert_eq!(code("CREATE TABLE t (a INT, A INT)"), 1060);
        assert_eq!(
            code("CREATE TABLE t (a INT PRIMARY KEY, b INT, PRIMARY KEY (b))"),
            1068
        );
        assert_eq!(code("CREATE TABLE t (a INT, KEY (nope))"), 1072);
        assert_eq!(code("CREATE TABLE t (a INT AUTO_INCREMENT)"), 1075);
        assert_eq!(code("CREATE TABLE t (a INT NOT NULL DEFAULT NULL)"), 1067);
        assert_eq!(code("CREATE TABLE t (a TINYINT DEFAULT 300)"), 1067);
        assert_eq!(code("CREATE TABLE t (a CHAR(300))"), 1074);
    }

    #[test]
    fn show_create_spells_the_definition() {
        let (t, warnings) = create(
            "CREATE TABLE t (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, name VARCHAR(20) NOT NULL DEFAULT 'x', d DECIMAL(10,2), PRIMARY KEY (id), UNIQUE KEY uk (name)) ENGINE=InnoDB",
        )
        .unwrap();
        assert_eq!(warnings.len(), 1, "ENGINE is accepted with a warning");
        assert_eq!(
            show_create(&t),
            "CREATE TABLE `t` (\n  `id` bigint unsigned NOT NULL AUTO_INCREMENT,\n  `name` varchar(20) NOT NULL DEFAULT 'x',\n  `d` decimal(10,2) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `uk` (`name`)\n) ENGINE=Duet DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
        );
    }
}
