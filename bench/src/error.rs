//! The harness's one error type: what can stop a load, a run or a check.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// The server under test refused a statement or the connection failed.
    #[error("{context}: {source}")]
    Mysql {
        context: String,
        #[source]
        source: mysql_async::Error,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The command line or the target URL is not usable.
    #[error("{0}")]
    Config(String),
    /// The embedded Duet did not start.
    #[error("embedded duet: {0}")]
    Embedded(String),
    /// The database failed a TPC-C consistency condition after the run.
    #[error("consistency check failed: {0}")]
    Inconsistent(String),
    #[error("cannot write {path}: {message}")]
    Output { path: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches what the harness was doing to a client error.
pub(crate) trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, mysql_async::Error> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Mysql {
            context: what(),
            source,
        })
    }
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: what(),
            source,
        })
    }
}
