//! Errors and the process exit codes they map to.

use std::path::PathBuf;

/// Exit codes, documented in the README.
pub mod exit {
    /// Everything asked for was done.
    pub const OK: u8 = 0;
    /// Some input was rejected (a report that is malformed or not JUnit); the rest was stored.
    pub const REJECTED: u8 = 1;
    /// Usage, database or I/O error: nothing more was done.
    pub const FAILURE: u8 = 2;
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{0}")]
    Usage(String),
    #[error("database {path}: {context}")]
    Db {
        path: PathBuf,
        context: String,
        #[source]
        source: DbError,
    },
    #[error(
        "database {path} has schema version {found}, newer than this flakehound understands ({supported}); it was not modified — upgrade flakehound"
    )]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("{path}: {context}")]
    Io {
        path: PathBuf,
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        exit::FAILURE
    }

    /// Whether the database is unreachable for now (see [`DbError::is_connection_loss`]):
    /// a server answers 503 and the client retries, rather than a failure.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Db { source, .. } if source.is_connection_loss())
    }

    pub fn io(
        path: impl Into<PathBuf>,
        context: impl Into<String>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            path: path.into(),
            context: context.into(),
            source,
        }
    }
}

/// The database engine's own error, whichever backend the store runs on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Postgres(#[from] postgres::Error),
}

impl DbError {
    /// The SQLite error code, when the error came from SQLite.
    pub fn sqlite_error_code(&self) -> Option<rusqlite::ErrorCode> {
        match self {
            DbError::Sqlite(e) => e.sqlite_error_code(),
            _ => None,
        }
    }

    /// Whether the database could not be reached or dropped the connection (a server
    /// restart, a failover, a network cut) rather than refused the work: retrying later,
    /// on a new connection, may succeed.
    pub fn is_connection_loss(&self) -> bool {
        match self {
            DbError::Postgres(e) => pg_connection_loss(e),
            _ => false,
        }
    }
}

fn pg_connection_loss(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        let code = code.code();
        // Class 08: connection exception; 57P01-57P03: shut down by an administrator,
        // crash shutdown, starting up (cannot connect now).
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03");
    }
    // An I/O error on the socket, or one while connecting.
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
