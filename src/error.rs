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
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
