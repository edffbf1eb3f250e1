//! The SQL layer's one error type. Every variant knows the MySQL error code and
//! SQLSTATE a client should see, so the server never has to guess.

/// Result alias for the SQL layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

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
    #[error("Incorrect parameter count in the call to native function '{0}'")]
    WrongArgumentCount(String),
    #[error("Unknown prepared statement handler ({id}) given to {command}")]
    UnknownStatement { id: u32, command: &'static str },
    #[error("Incorrect arguments to {0}")]
    WrongArguments(&'static str),
    #[error("{kind} value is out of range in '{expr}'")]
    OutOfRange { kind: &'static str, expr: String },
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
            Error::UnknownFunction(_) => 1305,
            Error::WrongArgumentCount(_) => 1582,
            Error::UnknownStatement { .. } => 1243,
            Error::WrongArguments(_) => 1210,
            Error::OutOfRange { .. } => 1690,
            Error::UnknownTimeZone(_) => 1298,
            Error::UnknownCharset(_) => 1115,
            Error::UnknownCollation(_) => 1273,
            Error::NoTablesUsed => 1096,
            Error::Internal(_) => 1105,
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
            | Error::WrongArgumentCount(_)
            | Error::UnknownCharset(_) => "42000",
            Error::NoDatabaseSelected => "3D000",
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
            | Error::Internal(_) => "HY000",
        }
    }

    pub(crate) fn not_supported(feature: impl Into<String>) -> Self {
        Error::NotSupported {
            feature: feature.into(),
        }
    }
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
    }
}
