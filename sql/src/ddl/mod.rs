//! Schema statements: `CREATE/DROP DATABASE`, `CREATE/DROP TABLE`,
//! `CREATE/DROP INDEX` (with back-fill), `ALTER TABLE ADD/DROP COLUMN|INDEX`,
//! `MODIFY`/`CHANGE`/`RENAME COLUMN` and column defaults,
//! and `TRUNCATE`.
//! Each change runs in its own transaction that writes the catalog (and,
//! for indexes and drops, the data) — one commit through the Raft log.

pub(crate) mod alter;

use std::collections::HashSet;

use datafusion::sql::sqlparser::ast::{
    self, ColumnDef, ColumnOption, CreateTable, Expr, IndexColumn, ObjectName, TableConstraint,
};

use crate::catalog::{
    ColumnInfo, DefaultValue, HandleKind, IndexInfo, SchemaWriter, StoredValue, TableInfo,
};
use crate::error::{Error, Result, Warning};
use crate::eval;
use crate::eval::NoEnv;
use crate::rules::collation::Collation;
use crate::table;
use crate::types::TypeKind::DateTime;
use crate::types::TypeKind::Json;
use crate::types::TypeKind::Timestamp;
use crate::types::{ColumnType, datum_to_value};
use crate::value::Value;
use crate::vars;

/// The unquoted name of a column or index.
pub(crate) fn ident_name(i: &ast::Ident) -> String {
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
    if vars::is_known_charset(name) || name.eq_ignore_ascii_case("utf8") {
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
pub(crate) fn default_value(column: &ColumnInfo, e: &Expr) -> Result<DefaultValue> {
    let invalid = || Error::InvalidDefault(column.name.clone());
    let text = e.to_string().to_ascii_uppercase();
    if matches!(
        text.as_str(),
        "CURRENT_TIMESTAMP" | "CURRENT_TIMESTAMP()" | "NOW()" | "LOCALTIMESTAMP"
    ) {
        if !matches!(column.ty.kind, DateTime | Timestamp) {
            return Err(invalid());
        }
        return Ok(DefaultValue::CurrentTimestamp);
    }
    let value = eval::eval(&NoEnv, e).map_err(|_| invalid())?;
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
        columnar_count: None,
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
        if ty.kind == Json {
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
    table::backfill_index(writer.txn, table, ix)
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
        table::backfill_index(writer.txn, table, ix)?;
    }
    for index in &mut table.indexes {
        index.write_only = None;
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
            crate::catalog::describe::show_create(&t),
            "CREATE TABLE `t` (\n  `id` bigint unsigned NOT NULL AUTO_INCREMENT,\n  `name` varchar(20) NOT NULL DEFAULT 'x',\n  `d` decimal(10,2) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `uk` (`name`)\n) ENGINE=Duet DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
        );
    }
}
