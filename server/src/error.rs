//! The server crate's error type.

/// Result alias for the server crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors that stop the server from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// `--join` failed: no member answered, or the placement driver
    /// refused this node (its id taken, another cluster …).
    #[error("cannot join the cluster: {0}")]
    Join(String),
    /// The placement driver refused an administrative call.
    #[error("{0}")]
    Refused(String),
    /// No placement driver answered.
    #[error("the placement driver is unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Sql(#[from] duet_sql::Error),
}
