//! A database that does not exist yet is built beside its path and put in place whole.
//!
//! A first backfill writes every page once into its own file, with no WAL and no `fsync`
//! per checkpoint, then one `fsync` and an atomic rename that never replaces a file. In
//! WAL mode each page is written twice (WAL, then the checkpoint on close) and synced
//! twice. Nothing is lost if it fails: until the rename the database does not exist; a
//! crash leaves only the side file, removed by the next build (see [`sweep_stale`]).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::{db_error, migrate, SqliteStore};
use crate::error::{Error, Result};

/// What a side file's name adds to the database's, before the builder's process id.
const SIDE_MARK: &str = ".flakehound-new-";

/// A database being built beside `dest`. Dropped without [`NewDatabase::put_in_place`],
/// its side file is removed.
pub struct NewDatabase {
    side: PathBuf,
    dest: PathBuf,
    placed: bool,
}

impl NewDatabase {
    /// Start a database for `dest`, or `None` when `dest` exists (even as a dangling link)
    /// or its folder takes no new file: then the caller opens `dest` as usual.
    pub(crate) fn start(dest: &Path) -> Option<(SqliteStore, NewDatabase)> {
        if dest.symlink_metadata().is_ok() {
            return None;
        }
        let name = dest.file_name()?;
        sweep_stale(dest, name);
        let mut side_name = name.to_owned();
        side_name.push(format!("{SIDE_MARK}{}", std::process::id()));
        let side = dest.with_file_name(side_name);
        // create_new: never build into a file someone else has.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&side)
            .ok()?;
        let new = NewDatabase {
            side,
            dest: dest.to_path_buf(),
            placed: false,
        };
        match open_side(&new.side) {
            Ok(store) => Some((store, new)),
            Err(e) => {
                tracing::debug!("cannot build the new database aside ({e}); opening it in place");
                None
            }
        }
    }

    /// Close the built database and give it its path. `Ok(false)`: the path was taken
    /// meanwhile (another process created the database) or cannot be given atomically;
    /// nothing was written there, the side file is removed, and the caller stores the
    /// same reports into the database at the path instead.
    pub(crate) fn put_in_place(mut self, store: SqliteStore) -> Result<bool> {
        // The file a later writer opens is the same as one made in place: a WAL database.
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(|e| db_error(&self.side, "cannot enable WAL", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Usage(format!(
                "database {}: journal mode stayed {mode}",
                self.side.display()
            )));
        }
        store
            .conn
            .close()
            .map_err(|(_, e)| db_error(&self.side, "cannot close", e))?;
        let synced = std::fs::File::open(&self.side).and_then(|f| f.sync_all());
        synced.map_err(|e| Error::io(&self.side, "cannot sync", e))?;
        if !rename_no_replace(&self.side, &self.dest) {
            return Ok(false);
        }
        self.placed = true;
        // The new name is durable only once its folder is.
        let folder = match self.dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if let Err(e) = std::fs::File::open(folder).and_then(|f| f.sync_all()) {
            tracing::debug!("cannot sync folder {}: {e}", folder.display());
        }
        Ok(true)
    }
}

impl Drop for NewDatabase {
    fn drop(&mut self) {
        if !self.placed {
            let _ = std::fs::remove_file(&self.side);
        }
    }
}

/// The side file as a SQLite database: its rollback journal in memory (ROLLBACK TO a
/// savepoint must still work) and no `fsync` until it is complete.
fn open_side(side: &Path) -> Result<SqliteStore> {
    let conn = Connection::open(side).map_err(|e| db_error(side, "cannot open", e))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=MEMORY", [], |r| r.get(0))
        .map_err(|e| db_error(side, "cannot set the journal mode", e))?;
    if !mode.eq_ignore_ascii_case("memory") {
        return Err(Error::Usage(format!(
            "database {}: journal mode stayed {mode}",
            side.display()
        )));
    }
    conn.pragma_update(None, "synchronous", "OFF")
        .map_err(|e| db_error(side, "cannot set synchronous", e))?;
    migrate::migrate(&conn, side)?;
    SqliteStore::with_connection(conn, side, true)
}

/// Rename without replacing: `renameat2(RENAME_NOREPLACE)`, or where a file system lacks
/// it, a hard link (which fails on an existing name) and the side name removed.
fn rename_no_replace(from: &Path, to: &Path) -> bool {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    use rustix::io::Errno;
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => true,
        Err(Errno::EXIST) => false,
        Err(e) => {
            tracing::debug!("rename without replace: {e}; trying a hard link");
            if std::fs::hard_link(from, to).is_ok() {
                let _ = std::fs::remove_file(from);
                true
            } else {
                false
            }
        }
    }
}

/// Remove side files of `dest` left by builders that died (a crash, Ctrl-C): those whose
/// process id no longer runs.
fn sweep_stale(dest: &Path, name: &std::ffi::OsStr) {
    let folder = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    let mut prefix: OsString = name.to_owned();
    prefix.push(SIDE_MARK);
    let prefix = prefix.as_encoded_bytes();
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(pid) = file.as_encoded_bytes().strip_prefix(prefix) else {
            continue;
        };
        // The side file, or its -wal/-shm beside it.
        let pid = pid.split(|&b| b == b'-').next().unwrap_or_default();
        let Some(pid) = std::str::from_utf8(pid)
            .ok()
            .and_then(|p| p.parse::<i32>().ok())
            .and_then(rustix::process::Pid::from_raw)
        else {
            continue;
        };
        if rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH) {
            tracing::info!(
                "removing {}, left by an ingest that did not finish",
                entry.path().display()
            );
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
