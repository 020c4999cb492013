//! The store: the only module that speaks SQL.
//!
//! [`Store`] runs on SQLite (a file path) or PostgreSQL (a `postgresql://` URL); see
//! `dispatch.rs`. On SQLite, writes go through a batch (one `BEGIN IMMEDIATE` transaction,
//! prepared statements, retried on `SQLITE_BUSY`), so a crash leaves whole report files or
//! nothing; PostgreSQL keeps the same promise in `pg/`. Reads are plain methods on
//! [`Store`] that return domain rows.

pub(crate) mod aggregate;
mod dispatch;
mod fresh;
mod lookup;
mod migrate;
pub mod pg;
mod quarantine;
mod read;
mod write;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::{DbError, Error, Result};

pub use aggregate::{day_of, decode_odd, last_closed_day, DayRow, OddRun, ABSENT};
pub use dispatch::{is_postgres_url, Batch, Store};
pub use fresh::NewDatabase;
pub use lookup::normalize_commit;
pub use migrate::SCHEMA_VERSION;
pub use quarantine::{QuarantineChange, QuarantineEventRow, QuarantineRow};
pub use read::{FailureRow, FingerprintRow, ResultRow, RunFilter, RunRow, TestCounts, TestRow};
pub(crate) use write::SqliteBatch;
pub use write::{prepare, prepare_with_ids, FileTally, Prepared};

/// How long a writer waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);
/// WAL pages a bulk ingest lets accumulate before a checkpoint (64 MiB of 4 KiB pages):
/// fewer checkpoints, and still little committed work that a power loss could drop.
const BULK_WAL_PAGES: i64 = 16_384;

/// A SQLite database file: the default backend.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// Test key → public test id (`test.test_key` → `test.test_id`), read from committed
    /// rows only (a batch borrows the store mutably, so no read runs inside one) and
    /// extended when a key is not in it yet: keys are never reused or changed.
    test_ids: std::cell::RefCell<Vec<Option<i64>>>,
    /// Days a bulk ingest built as it stored them, for the rollup at its end.
    tally: Option<Box<aggregate::DayTally>>,
}

impl SqliteStore {
    /// Open (creating if needed) and migrate a database for reading and writing.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let conn = Connection::open(path).map_err(|e| db_error(path, "cannot open", e))?;
        Self::setup(conn, path, true)
    }

    /// Open an existing database without ever writing to it.
    pub fn open_read_only(path: &Path) -> Result<SqliteStore> {
        if !path.exists() {
            return Err(Error::Usage(format!(
                "database {} does not exist; run `flakehound ingest` first",
                path.display()
            )));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| db_error(path, "cannot open", e))?;
        match Self::setup(conn, path, false) {
            // A WAL database on a read-only mount cannot create its -shm file. With no
            // -wal file to replay, the database file is complete and nobody can change
            // it, so read it as immutable (which needs no -shm).
            Err(Error::Db { source, .. })
                if source.sqlite_error_code() == Some(rusqlite::ErrorCode::CannotOpen)
                    && is_read_only(path)
                    && !wal_has_frames(path) =>
            {
                let uri =
                    immutable_uri(path).ok_or_else(|| db_error(path, "cannot open", source))?;
                let conn = Connection::open_with_flags(
                    uri,
                    OpenFlags::SQLITE_OPEN_READ_ONLY
                        | OpenFlags::SQLITE_OPEN_NO_MUTEX
                        | OpenFlags::SQLITE_OPEN_URI,
                )
                .map_err(|e| db_error(path, "cannot open", e))?;
                Self::setup(conn, path, false)
            }
            other => other,
        }
    }

    /// An in-memory database, for tests and benches.
    pub fn open_in_memory() -> Result<SqliteStore> {
        let conn = Connection::open_in_memory()
            .map_err(|e| db_error(Path::new(":memory:"), "cannot open", e))?;
        Self::setup(conn, Path::new(":memory:"), true)
    }

    fn setup(conn: Connection, path: &Path, writable: bool) -> Result<SqliteStore> {
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| db_error(path, "cannot set busy timeout", e))?;
        // Refuse a newer schema before anything (even the WAL switch) touches the file.
        migrate::check_version(&conn, path)?;
        if writable {
            enable_wal(&conn, path)?;
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(|e| db_error(path, "cannot set synchronous", e))?;
            migrate::migrate(&conn, path)?;
        } else if migrate::current_version(&conn, path)? < SCHEMA_VERSION {
            // An older database: migrate it once through a writing connection (a reader
            // should not have to know), then read as asked.
            drop(conn);
            if SqliteStore::open(path).is_ok() {
                return SqliteStore::open_read_only(path);
            }
            return Err(Error::Usage(format!(
                "database {} is at an older schema; open it once with a writing command (e.g. `flakehound ingest`) to migrate it",
                path.display()
            )));
        }
        Self::with_connection(conn, path, writable)
    }

    /// The store over a connection already set up and migrated.
    fn with_connection(conn: Connection, path: &Path, writable: bool) -> Result<SqliteStore> {
        // Writers keep B-tree pages hot across a batch; readers mostly stream once.
        let cache_kib: i64 = if writable { 64_000 } else { 16_000 };
        conn.pragma_update(None, "cache_size", -cache_kib)
            .map_err(|e| db_error(path, "cannot set cache size", e))?;
        Ok(SqliteStore {
            conn,
            path: path.to_path_buf(),
            test_ids: Default::default(),
            tally: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// For a bulk ingest: let the WAL grow to [`BULK_WAL_PAGES`] before it is copied back
    /// into the database. The default (1,000 pages) checkpoints, with two `fsync`s, after
    /// nearly every batch, and again after the rollup rewrites the same days; the last
    /// connection's close checkpoints whatever is left.
    pub fn checkpoint_less_often(&self) -> Result<()> {
        self.conn
            .pragma_update(None, "wal_autocheckpoint", BULK_WAL_PAGES)
            .map_err(|e| self.err("cannot set wal_autocheckpoint", e))?;
        // When another connection (a `serve`) keeps the WAL alive past this one, shrink
        // the file back after each checkpoint instead of leaving it at its peak.
        self.conn
            .pragma_update(None, "journal_size_limit", BULK_WAL_PAGES * 4096)
            .map_err(|e| self.err("cannot set journal_size_limit", e))
    }

    /// For a bulk ingest: build the days it stores as it goes, for the rollup at its end
    /// (see [`aggregate::DayTally`]). `newest_start`: the latest start among the runs to
    /// come, if known.
    pub fn tally_days(&mut self, newest_start: Option<i64>) -> Result<()> {
        let tally = aggregate::DayTally::new(&self.conn, newest_start)
            .map_err(|e| self.err("cannot read the runs", e))?;
        self.tally = Some(Box::new(tally));
        Ok(())
    }

    /// Run `PRAGMA integrity_check`; `Ok(())` when the database is sound.
    pub fn integrity_check(&self) -> Result<()> {
        let verdict: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(|e| self.err("integrity check failed", e))?;
        if verdict == "ok" {
            Ok(())
        } else {
            Err(Error::Other(format!(
                "database {} is corrupt: {verdict}",
                self.path.display()
            )))
        }
    }

    fn err(&self, context: &str, source: rusqlite::Error) -> Error {
        db_error(&self.path, context, source)
    }
}

/// A run is stored once: another ingest of it that names another branch is told the stored
/// branch is kept, not silently ignored (a run's results and verdicts never move branch).
pub(crate) fn warn_if_other_branch(meta: &crate::model::RunMeta, stored: &str) {
    if stored != meta.branch && !meta.branch.is_empty() {
        tracing::warn!(
            "run {} attempt {} of job {} is stored with branch {:?}; this ingest says {:?}: the stored branch is kept",
            crate::escape::terminal(&meta.run_id),
            meta.attempt,
            crate::escape::terminal(&meta.job),
            crate::escape::terminal(stored),
            crate::escape::terminal(&meta.branch),
        );
    }
}

pub(crate) fn db_error(path: &Path, context: &str, source: impl Into<DbError>) -> Error {
    let source = source.into();
    let context = match source.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => format!("{context}: the disk is full"),
        Some(rusqlite::ErrorCode::ReadOnly) => {
            format!("{context}: the database is read-only (check file and folder permissions)")
        }
        // A WAL database whose -wal and -shm files cannot be created (a read-only mount)
        // fails to open rather than opening read-only: say so, not "does the folder exist".
        Some(rusqlite::ErrorCode::CannotOpen) if is_read_only(path) => {
            format!("{context}: the database is read-only (a read-only file or mount; SQLite also needs its folder writable for the -wal and -shm files)")
        }
        Some(rusqlite::ErrorCode::CannotOpen) => {
            format!("{context}: cannot open the file (does the folder exist?)")
        }
        Some(rusqlite::ErrorCode::NotADatabase) => {
            format!("{context}: the file is not a SQLite database")
        }
        _ => context.to_string(),
    };
    Error::Db {
        path: path.to_path_buf(),
        context,
        source,
    }
}

/// Whether an existing database file cannot be opened for writing because it, or the
/// file system it is on, is read-only. Opening for writing without truncating changes
/// nothing.
fn is_read_only(path: &Path) -> bool {
    path.is_file()
        && matches!(
            std::fs::OpenOptions::new().write(true).open(path),
            Err(e) if matches!(
                e.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            )
        )
}

/// Switch the database to WAL (a no-op once it is). Processes that open a fresh database
/// at once race to convert it: each holds a read lock and wants the write lock, and SQLite
/// breaks that deadlock by failing all but one with SQLITE_BUSY at once, without waiting
/// for the busy timeout. The winner's conversion is short, so retry.
fn enable_wal(conn: &Connection, path: &Path) -> Result<()> {
    let mut tries = 0u64;
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Ok(()) => return Ok(()),
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && tries < 100 =>
            {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10 * tries.min(20)));
            }
            Err(e) => return Err(db_error(path, "cannot enable WAL", e)),
        }
    }
}

/// Whether the database's -wal file holds anything a reader would have to replay.
fn wal_has_frames(path: &Path) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).is_ok_and(|m| m.len() > 0)
}

/// `file:<path>?immutable=1`, or `None` for a path that is not UTF-8.
fn immutable_uri(path: &Path) -> Option<String> {
    let text = path.to_str()?;
    let mut uri = String::from("file:");
    for c in text.chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?immutable=1");
    Some(uri)
}

#[cfg(test)]
mod tests;
