//! The SQL layer's one error type. Every variant knows the MySQL error code and
//! SQLSTATE a client should see, so the server never has to guess.

/// Result alias for the SQL layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

use crate::rules::json::JsonError;

/// An error from parsing, binding or executing a statement.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The statement does not parse.
    #[error(
        "You have an error in your SQL syntax; check the manual that corresponds to your Duet version for the right syntax to use: {message}"
    )]
    Parse { message: String },
    /// The statement is valid MySQL that Duet does not implement yet.
    #[error("This version of Duet doesn't yet support '{feature}'")]
    NotSupported { feature: String },
    /// The client sent an empty query.
    #[error("Query was empty")]
    EmptyQuery,
    #[error("Unknown system variable '{0}'")]
    UnknownSystemVariable(String),
    #[error("Variable '{name}' can't be set to the value of '{value}'")]
    WrongValueForVariable { name: String, value: String },
    #[error("Incorrect argument type to variable '{0}'")]
    WrongTypeForVariable(String),
    #[error("Variable '{0}' is a read only variable")]
    ReadOnlyVariable(String),
    #[error("Variable '{0}' is a GLOBAL variable and should be set with SET GLOBAL")]
    GlobalOnlyVariable(String),
    #[error("Variable '{0}' is a SESSION variable and can't be used with SET GLOBAL")]
    SessionOnlyVariable(String),
    #[error("Unknown or incorrect time zone: '{0}'")]
    UnknownTimeZone(String),
    #[error("Unknown character set: '{0}'")]
    UnknownCharset(String),
    #[error("Unknown collation: '{0}'")]
    UnknownCollation(String),
    #[error("No tables used")]
    NoTablesUsed,
    #[error("Unknown database '{0}'")]
    UnknownDatabase(String),
    #[error("No database selected")]
    NoDatabaseSelected,
    #[error("Table '{database}.{table}' doesn't exist")]
    NoSuchTable { database: String, table: String },
    #[error("Unknown column '{0}' in 'field list'")]
    UnknownColumn(String),
    #[error("FUNCTION {0} does not exist")]
    UnknownFunction(String),
    #[error("SAVEPOINT {0} does not exist")]
    UnknownSavepoint(String),
    #[error(
        "Deadlock found when trying to get user-level lock; try rolling back transaction/releasing locks and restarting lock acquisition."
    )]
    UserLockDeadlock,
    #[error("There is no such grant defined for user '{user}' on host '{host}'")]
    NoSuchGrant { user: String, host: String },
    #[error("Incorrect parameter count in the call to native function '{0}'")]
    WrongArgumentCount(String),
    #[error("Unknown prepared statement handler ({id}) given to {command}")]
    UnknownStatement { id: u32, command: &'static str },
    #[error("Incorrect arguments to {0}")]
    WrongArguments(&'static str),
    #[error("{kind} value is out of range in '{expr}'")]
    OutOfRange { kind: &'static str, expr: String },
    #[error("Can't create database '{0}'; database exists")]
    DatabaseExists(String),
    #[error("Can't drop database '{0}'; database doesn't exist")]
    DropMissingDatabase(String),
    #[error("Table '{0}' already exists")]
    TableExists(String),
    #[error("Unknown table '{0}'")]
    UnknownTable(String),
    #[error("Duplicate column name '{0}'")]
    DuplicateColumn(String),
    #[error("Duplicate key name '{0}'")]
    DuplicateKeyName(String),
    #[error("Multiple primary key defined")]
    MultiplePrimaryKey,
    #[error("Key column '{0}' doesn't exist in table")]
    KeyColumnMissing(String),
    #[error(
        "Incorrect table definition; there can be only one auto column and it must be defined as a key"
    )]
    BadAutoIncrement,
    #[error("A table must have at least 1 column")]
    NoColumns,
    #[error("Column length too big for column '{0}' (max = {1}); use BLOB or TEXT instead")]
    TooBigLength(String, u32),
    #[error("Too big precision {0} specified. Maximum is {1}.")]
    TooBigPrecision(u64, u32),
    #[error("Too big scale {0} specified. Maximum is {1}.")]
    TooBigScale(u64, u32),
    #[error("Invalid default value for '{0}'")]
    InvalidDefault(String),
    #[error("Invalid JSON text: \"{detail}\" in value for column '{column}'.")]
    InvalidJson { column: String, detail: String },
    #[error(
        "JSON column '{0}' supports indexing only via generated columns on a specified JSON path."
    )]
    JsonKey(String),
    /// A JSON function's error, which knows its MySQL code.
    #[error(transparent)]
    Json(#[from] JsonError),
    #[error("Can't DROP '{0}'; check that column/key exists")]
    CantDrop(String),
    #[error("Duplicate entry '{value}' for key '{key}'")]
    DuplicateEntry { value: String, key: String },
    #[error("Column '{0}' cannot be null")]
    BadNull(String),
    #[error("Field '{0}' doesn't have a default value")]
    NoDefault(String),
    #[error("Column count doesn't match value count at row {0}")]
    ColumnCountMismatch(usize),
    #[error("Out of range value for column '{0}' at row 1")]
    OutOfRangeColumn(String),
    #[error("Data too long for column '{0}' at row 1")]
    DataTooLong(String),
    /// A value an `ALTER TABLE` cannot keep in a column's new type.
    #[error("Out of range value for column '{column}' at row {row}")]
    OutOfRangeAt { column: String, row: u64 },
    #[error("Data truncated for column '{column}' at row {row}")]
    DataTruncated { column: String, row: u64 },
    #[error("Invalid use of NULL value")]
    InvalidNull,
    /// A transaction's rows were shaped by a table definition that a
    /// schema change replaced before the transaction committed.
    #[error("Table definition has changed, please retry transaction")]
    TableDefChanged,
    #[error("Incorrect {kind} value: '{value}' for column '{column}' at row 1")]
    IncorrectValue {
        kind: &'static str,
        value: String,
        column: String,
    },
    #[error("Unknown column '{column}' in '{clause}'")]
    UnknownColumnIn { column: String, clause: String },
    #[error("Column '{0}' in field list is ambiguous")]
    AmbiguousColumn(String),
    #[error("Subquery returns more than 1 row")]
    SubqueryRows,
    #[error("Operand should contain {0} column(s)")]
    OperandColumns(usize),
    /// A write conflict or a deadlock: the transaction is rolled back.
    #[error("Deadlock found when trying to get lock; try restarting transaction")]
    Deadlock,
    #[error("Lock wait timeout exceeded; try restarting transaction")]
    LockWaitTimeout,
    /// The node that would store the write is short of disk space.
    #[error("Disk full (node {0}); writes are refused until space is freed")]
    DiskFull(u64),
    /// Storage or replication failed (no leader, timeout, I/O).
    #[error("Storage error: {0}")]
    Storage(#[source] duet_storage::Error),
    /// A query feature the engine refused while planning or executing.
    #[error("{0}")]
    Query(String),
    /// `CREATE VIEW v (a, b)` with another number of columns than its query.
    #[error("View's SELECT and view's field list have different column counts")]
    ViewColumnCount,
    /// A select-list or HAVING column that is neither grouped nor
    /// aggregated (`ONLY_FULL_GROUP_BY`).
    #[error("{0}; this is incompatible with sql_mode=only_full_group_by")]
    NotGrouped(String),
    /// A statement for tables named a view.
    #[error("'{0}' is not BASE TABLE")]
    NotBaseTable(String),
    /// `SELECT … INTO @var` found more than one row.
    #[error("Result consisted of more than one row")]
    TooManyRows,
    /// `SELECT … INTO` names fewer or more variables than it selects.
    #[error("The used SELECT statements have a different number of columns")]
    IntoColumnCount,
    /// `SHOW CREATE VIEW` named a base table.
    #[error("'{0}' is not VIEW")]
    NotView(String),
    /// A prefix key part on a non-string column, or longer than it.
    #[error(
        "Incorrect prefix key; the used key part isn't a string, the used length is longer than the key part, or the storage engine doesn't support unique prefix keys"
    )]
    WrongPrefix,
    /// No engine the session allows can serve a table.
    #[error(
        "No access path for table '{table}' is found with 'duet_isolation_read_engines' = '{engines}'; the row store is the only engine with a replica of it"
    )]
    NoAccessPath { table: String, engines: String },
    /// The columnar replica did not catch up with the row store within
    /// `columnar_read_wait_ms` (TiDB's 9012 for TiFlash).
    #[error("Columnar replica timeout: {0}")]
    ColumnarTimeout(String),
    /// The columnar replica cannot serve a table it was expected to (it
    /// learned, catching up, that the table is being copied anew).
    #[error("No access path: {0}")]
    ColumnarUnavailable(String),
    /// `KILL QUERY`, `KILL CONNECTION`, the client gone or a shutdown
    /// stopped the statement.
    #[error("Query execution was interrupted")]
    Interrupted,
    /// The statement ran past `max_execution_time` or its
    /// `MAX_EXECUTION_TIME` hint.
    #[error("Query execution was interrupted, maximum statement execution time exceeded")]
    ExecutionTimeExceeded,
    /// The statement nests deeper than a statement's thread can follow.
    #[error(
        "Thread stack overrun: the statement nests more than {limit} levels deep; write it with fewer nested operations"
    )]
    StackOverrun { limit: usize },
    /// Subqueries nested in expressions deeper than Duet plans them.
    #[error("Too high level of nesting for select: subqueries may nest {limit} deep")]
    TooManyNestedSubqueries { limit: usize },
    /// The query needed more memory than `duet_mem_quota_query` allows
    /// (TiDB's 8175).
    #[error(
        "Your query has been cancelled due to exceeding the allowed memory limit for a single SQL query. Please try narrowing your query scope or increase the duet_mem_quota_query limit and try again. ({0})"
    )]
    MemoryQuotaExceeded(String),
    #[error("Unknown thread id: {0}")]
    UnknownThread(u64),
    #[error("You are not owner of thread {0}")]
    NotThreadOwner(u64),
    /// A bug or an unexpected state inside Duet; never the client's fault.
    #[error("Internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The MySQL error code sent in the ERR packet.
    pub fn code(&self) -> u16 {
        match self {
            Error::Parse { .. } => 1064,
            Error::NotSupported { .. } => 1235,
            Error::EmptyQuery => 1065,
            Error::UnknownSystemVariable(_) => 1193,
            Error::WrongValueForVariable { .. } => 1231,
            Error::WrongTypeForVariable(_) => 1232,
            Error::ReadOnlyVariable(_) => 1238,
            Error::GlobalOnlyVariable(_) => 1229,
            Error::SessionOnlyVariable(_) => 1228,
            Error::UnknownDatabase(_) => 1049,
            Error::NoDatabaseSelected => 1046,
            Error::NoSuchTable { .. } => 1146,
            Error::UnknownColumn(_) => 1054,
            Error::UnknownFunction(_) | Error::UnknownSavepoint(_) => 1305,
            Error::NoSuchGrant { .. } => 1141,
            Error::UserLockDeadlock => 3058,
            Error::WrongArgumentCount(_) => 1582,
            Error::UnknownStatement { .. } => 1243,
            Error::WrongArguments(_) => 1210,
            Error::OutOfRange { .. } => 1690,
            Error::UnknownTimeZone(_) => 1298,
            Error::UnknownCharset(_) => 1115,
            Error::UnknownCollation(_) => 1273,
            Error::NoTablesUsed => 1096,
            Error::DatabaseExists(_) => 1007,
            Error::DropMissingDatabase(_) => 1008,
            Error::TableExists(_) => 1050,
            Error::UnknownTable(_) => 1051,
            Error::DuplicateColumn(_) => 1060,
            Error::DuplicateKeyName(_) => 1061,
            Error::MultiplePrimaryKey => 1068,
            Error::KeyColumnMissing(_) => 1072,
            Error::BadAutoIncrement => 1075,
            Error::NoColumns => 1113,
            Error::TooManyRows => 1172,
            Error::IntoColumnCount => 1222,
            Error::TooBigLength(..) => 1074,
            Error::TooBigPrecision(..) => 1426,
            Error::TooBigScale(..) => 1425,
            Error::InvalidDefault(_) => 1067,
            Error::InvalidJson { .. } => 3140,
            Error::JsonKey(_) => 3152,
            Error::Json(e) => e.code(),
            Error::CantDrop(_) => 1091,
            Error::DuplicateEntry { .. } => 1062,
            Error::BadNull(_) => 1048,
            Error::NoDefault(_) => 1364,
            Error::ColumnCountMismatch(_) => 1136,
            Error::OutOfRangeColumn(_) => 1264,
            Error::DataTooLong(_) => 1406,
            Error::OutOfRangeAt { .. } => 1264,
            Error::DataTruncated { .. } => 1265,
            Error::InvalidNull => 1138,
            Error::TableDefChanged => 1412,
            Error::IncorrectValue { .. } => 1366,
            Error::UnknownColumnIn { .. } => 1054,
            Error::AmbiguousColumn(_) => 1052,
            Error::SubqueryRows => 1242,
            Error::OperandColumns(_) => 1241,
            Error::Deadlock => 1213,
            Error::LockWaitTimeout => 1205,
            Error::DiskFull(_) => 1021,
            Error::NoAccessPath { .. } | Error::ColumnarUnavailable(_) => 1815,
            Error::ColumnarTimeout(_) => 9012,
            Error::WrongPrefix => 1089,
            Error::NotBaseTable(_) | Error::NotView(_) => 1347,
            Error::NotGrouped(_) => 1055,
            Error::ViewColumnCount => 1353,
            Error::Interrupted => 1317,
            Error::ExecutionTimeExceeded => 3024,
            Error::StackOverrun { .. } => 1436,
            Error::TooManyNestedSubqueries { .. } => 1473,
            Error::MemoryQuotaExceeded(_) => 8175,
            Error::UnknownThread(_) => 1094,
            Error::NotThreadOwner(_) => 1095,
            Error::Storage(_) | Error::Query(_) | Error::Internal(_) => 1105,
        }
    }

    /// The five-character SQLSTATE sent in the ERR packet.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            Error::Parse { .. }
            | Error::NotSupported { .. }
            | Error::EmptyQuery
            | Error::WrongValueForVariable { .. }
            | Error::WrongTypeForVariable(_)
            | Error::UnknownDatabase(_)
            | Error::UnknownFunction(_)
            | Error::UnknownSavepoint(_)
            | Error::NoSuchGrant { .. }
            | Error::WrongArgumentCount(_)
            | Error::UnknownCharset(_) => "42000",
            Error::NoDatabaseSelected => "3D000",
            Error::DuplicateColumn(_)
            | Error::DuplicateKeyName(_)
            | Error::MultiplePrimaryKey
            | Error::KeyColumnMissing(_)
            | Error::BadAutoIncrement
            | Error::NoColumns
            | Error::TooBigLength(..)
            | Error::TooBigPrecision(..)
            | Error::TooBigScale(..)
            | Error::InvalidDefault(_)
            | Error::CantDrop(_)
            | Error::WrongPrefix
            | Error::NotGrouped(_)
            | Error::TooManyRows
            | Error::OperandColumns(_) => "42000",
            Error::TableExists(_) => "42S01",
            Error::UnknownTable(_) => "42S02",
            Error::UnknownColumnIn { .. } => "42S22",
            Error::AmbiguousColumn(_) => "23000",
            Error::DuplicateEntry { .. } | Error::BadNull(_) => "23000",
            Error::ColumnCountMismatch(_) => "21S01",
            Error::SubqueryRows | Error::IntoColumnCount => "21000",
            Error::OutOfRangeColumn(_) => "22003",
            Error::DataTooLong(_) => "22001",
            Error::OutOfRangeAt { .. } => "22003",
            Error::DataTruncated { .. } => "01000",
            Error::InvalidNull => "22004",
            Error::InvalidJson { .. } => "22032",
            Error::JsonKey(_) => "42000",
            Error::Json(
                JsonError::InvalidText { .. }
                | JsonError::InvalidValue(_)
                | JsonError::NullMemberName,
            ) => "22032",
            Error::Json(_) => "42000",
            Error::Deadlock | Error::UserLockDeadlock => "40001",
            Error::DatabaseExists(_)
            | Error::DropMissingDatabase(_)
            | Error::NoDefault(_)
            | Error::IncorrectValue { .. }
            | Error::LockWaitTimeout
            | Error::Storage(_)
            | Error::Query(_) => "HY000",
            Error::NoSuchTable { .. } => "42S02",
            Error::UnknownColumn(_) => "42S22",
            Error::OutOfRange { .. } => "22003",
            Error::UnknownSystemVariable(_)
            | Error::ReadOnlyVariable(_)
            | Error::GlobalOnlyVariable(_)
            | Error::SessionOnlyVariable(_)
            | Error::UnknownStatement { .. }
            | Error::WrongArguments(_)
            | Error::UnknownTimeZone(_)
            | Error::UnknownCollation(_)
            | Error::NoTablesUsed
            | Error::NoAccessPath { .. }
            | Error::NotBaseTable(_)
            | Error::NotView(_)
            | Error::ViewColumnCount
            | Error::ColumnarTimeout(_)
            | Error::ColumnarUnavailable(_)
            | Error::TableDefChanged
            | Error::ExecutionTimeExceeded
            | Error::StackOverrun { .. }
            | Error::TooManyNestedSubqueries { .. }
            | Error::MemoryQuotaExceeded(_)
            | Error::UnknownThread(_)
            | Error::NotThreadOwner(_)
            | Error::DiskFull(_)
            | Error::Internal(_) => "HY000",
            Error::Interrupted => "70100",
        }
    }

    /// A storage failure as a client sees it: conflicts are retryable 1213s.
    pub(crate) fn from_storage(e: duet_storage::Error) -> Self {
        use duet_storage::Error as S;
        match e {
            S::WriteConflict { .. }
            | S::RolledBack { .. }
            | S::TxnLockNotFound { .. }
            | S::Deadlock { .. } => Error::Deadlock,
            S::KeyIsLocked(_) => Error::LockWaitTimeout,
            S::WatchedKeyChanged { .. } => Error::TableDefChanged,
            S::DiskFull { node_id } => Error::DiskFull(node_id),
            other => Error::Storage(other),
        }
    }

    /// Whether the transaction this error ended must be retried by the client.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Deadlock | Error::LockWaitTimeout | Error::TableDefChanged
        )
    }

    pub(crate) fn not_supported(feature: impl Into<String>) -> Self {
        Error::NotSupported {
            feature: feature.into(),
        }
    }
}

/// A note attached to the last statement (`SHOW WARNINGS`).
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    pub level: &'static str,
    pub code: u16,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_states_follow_mysql() {
        assert_eq!(Error::not_supported("x").code(), 1235);
        assert_eq!(Error::UnknownDatabase("d".into()).sqlstate(), "42000");
        assert_eq!(Error::NoDatabaseSelected.sqlstate(), "3D000");
        let e = Error::UnknownSystemVariable("nope".into());
        assert_eq!((e.code(), e.sqlstate()), (1193, "HY000"));
        assert_eq!(e.to_string(), "Unknown system variable 'nope'");
        let full = Error::from_storage(duet_storage::Error::DiskFull { node_id: 2 });
        assert_eq!((full.code(), full.sqlstate()), (1021, "HY000"));
        assert!(full.to_string().starts_with("Disk full (node 2)"), "{full}");
    }
}
