//! `ALTER TABLE`: one function per operation (add, modify or change,
//! rename, alter, drop a column; add or drop an index), each applied to a
//! copy of the table's definition, and the column conversions a type change
//! needs.

use datafusion::sql::sqlparser::ast::{
    self, AlterTableOperation, ColumnDef, ColumnOption, TableConstraint,
};

use crate::catalog::{ColumnInfo, HandleKind, SchemaWriter, TableInfo};
use crate::ddl::{
    add_index, build_index, column_info, default_value, drop_index, ident_name, index_columns,
};
use crate::error::{Error, Result};
use crate::kv::KvTxn;
use crate::table;
use crate::types::{ColumnType, datum_to_value};

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
            } => add_column(
                writer,
                &mut next,
                column_def,
                *if_not_exists,
                column_position,
            )?,
            AlterTableOperation::ModifyColumn {
                col_name,
                data_type,
                options,
                column_position,
            } => modify_column(
                writer,
                &mut next,
                col_name,
                &column_def(col_name, data_type, options),
                column_position,
            )?,
            AlterTableOperation::ChangeColumn {
                old_name,
                new_name,
                data_type,
                options,
                column_position,
            } => modify_column(
                writer,
                &mut next,
                old_name,
                &column_def(new_name, data_type, options),
                column_position,
            )?,
            AlterTableOperation::RenameColumn {
                old_column_name,
                new_column_name,
            } => {
                let at = existing_column(&next, &old_column_name.value)?;
                rename_column(&mut next, at, &new_column_name.value)?;
            }
            AlterTableOperation::AlterColumn { column_name, op } => {
                alter_column(&mut next, column_name, op)?;
            }
            AlterTableOperation::DropColumn {
                column_names,
                if_exists,
                ..
            } => {
                for name in column_names {
                    drop_column(&mut next, &name.value, *if_exists)?;
                }
            }
            AlterTableOperation::AddConstraint { constraint, .. } => {
                add_constraint(writer, &mut next, constraint)?;
            }
            AlterTableOperation::DropIndex { name, .. } => {
                drop_index(writer, &mut next, &name.value)?;
            }
            other => return Err(Error::not_supported(format!("ALTER TABLE {other}"))),
        }
    }
    Ok(next)
}

/// `ADD COLUMN`: a nullable column or one with a default (existing rows
/// need a value), unique if declared so (its index back-filled).
fn add_column(
    writer: &mut SchemaWriter<'_>,
    next: &mut TableInfo,
    column_def: &ColumnDef,
    if_not_exists: bool,
    position: &Option<ast::MySQLColumnPosition>,
) -> Result<()> {
    if next.column_offset(&column_def.name.value).is_some() {
        if if_not_exists {
            return Ok(());
        }
        return Err(Error::DuplicateColumn(column_def.name.value.clone()));
    }
    let (column, primary, unique) = column_info(column_def, next.next_column_id, next.collation)?;
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
        let ix = add_index(next, Some(name.clone()), &[(name, 0)], true, false)?;
        build_index(writer, next, &ix)?;
    }
    if let Some(position) = position {
        let last = next.columns.len() - 1;
        move_column(next, last, position)?;
    }
    Ok(())
}

/// `MODIFY COLUMN` and `CHANGE COLUMN`: column `old_name` becomes `def`,
/// then moves to `position` if one is given.
fn modify_column(
    writer: &mut SchemaWriter<'_>,
    next: &mut TableInfo,
    old_name: &ast::Ident,
    def: &ColumnDef,
    position: &Option<ast::MySQLColumnPosition>,
) -> Result<()> {
    change_column(writer, next, &old_name.value, def)?;
    if let Some(position) = position {
        let at = next.column_offset(&def.name.value).unwrap_or_default();
        move_column(next, at, position)?;
    }
    Ok(())
}

/// `ALTER COLUMN … SET DEFAULT` and `DROP DEFAULT`.
fn alter_column(
    next: &mut TableInfo,
    column_name: &ast::Ident,
    op: &ast::AlterColumnOperation,
) -> Result<()> {
    let at = existing_column(next, &column_name.value)?;
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
    Ok(())
}

/// `DROP COLUMN`: not one an index uses, nor the last. Stored rows keep
/// the value under the column id; it is never read again.
fn drop_column(next: &mut TableInfo, name: &str, if_exists: bool) -> Result<()> {
    let Some(offset) = next.column_offset(name) else {
        if if_exists {
            return Ok(());
        }
        return Err(Error::CantDrop(name.to_string()));
    };
    if next.indexes.iter().any(|ix| ix.columns.contains(&offset)) {
        return Err(Error::not_supported("dropping a column that an index uses"));
    }
    if next.columns.len() == 1 {
        return Err(Error::not_supported("dropping the last column"));
    }
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
    Ok(())
}

/// `ADD UNIQUE` / `ADD INDEX`: the index, back-filled.
fn add_constraint(
    writer: &mut SchemaWriter<'_>,
    next: &mut TableInfo,
    constraint: &TableConstraint,
) -> Result<()> {
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
    let ix = add_index(next, name, &cols, unique, false)?;
    build_index(writer, next, &ix)
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
    txn: &mut dyn KvTxn,
    before: &TableInfo,
    after: &TableInfo,
    at: usize,
    keyed: bool,
) -> Result<()> {
    use duet_storage::codec::Datum;
    let column = &after.columns[at];
    let mut row_number = 0u64;
    let mut changed = Vec::new();
    table::for_each_row_page(&*txn, before, 4096, |rows| {
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
        let handle = table::decode_handle(after, &key)?;
        table::update_row(txn, after, &old, &handle, &new, &handle)?;
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
