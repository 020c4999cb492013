//! A database that does not exist yet is built beside its path and put in place whole.
//!
//! A first backfill writes every page once into its own file, with no WAL and no `fsync`
//! per checkpoint, then one `fsync` and an atomic rename that never replaces a file. In
//! WAL mode each page is written twice (WAL, then the checkpoint on close) and synced
//! twice. Nothing is lost if it fails: until the rename the database does not exist; a
//! crash leaves only the side file, removed by the next build (see [`sweep_stale`]).
//!
//! The builder holds an exclusive `flock` on its side file from creation to rename: a
//! sweep removes only side files nobody holds, which works across PID namespaces (a
//! container and its host sharing a folder), where a process id says nothing.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use rustix::fs::{flock, FlockOperation};

use super::{db_error, enable_wal, migrate, SqliteStore};
use crate::error::{Error, Result};

/// What a side file's name adds to the database's, before its builder's process id and a
/// random part.
const SIDE_MARK: &str = ".flakehound-new-";

/// Files SQLite keeps beside a database. Left behind by a database that was deleted
/// without them, SQLite would replay them into a new file that is not empty: a database
/// that has any of them is created in place, where SQLite discards them.
const COMPANIONS: [&str; 3] = ["-wal", "-journal", "-shm"];

/// A database being built beside `dest`. Dropped without [`NewDatabase::put_in_place`],
/// its side file is removed.
pub struct NewDatabase {
    side: PathBuf,
    dest: PathBuf,
    /// The side file as created, holding the builder's lock: synced through this handle,
    /// and checked to be still the file at `side` before the rename.
    file: File,
    placed: bool,
}

impl NewDatabase {
    /// Start a database for `dest`, or `None` to open `dest` in place: it exists (even as
    /// a dangling link), SQLite files of an earlier database are beside it, it is a
    /// `file:` URI, or its folder takes no new file.
    pub(crate) fn start(dest: &Path) -> Option<(SqliteStore, NewDatabase)> {
        if dest.symlink_metadata().is_ok()
            || has_companions(dest)
            || dest.as_os_str().as_encoded_bytes().starts_with(b"file:")
        {
            return None;
        }
        let name = dest.file_name()?;
        sweep_stale(dest, name);
        let mut side_name = name.to_owned();
        side_name.push(format!(
            "{SIDE_MARK}{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let side = dest.with_file_name(side_name);
        // create_new: never build into a file someone else has. 0644 before the umask, as
        // SQLite creates a database.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&side)
            .ok()?;
        let new = NewDatabase {
            side,
            dest: dest.to_path_buf(),
            file,
            placed: false,
        };
        // Locked, and still ours: a sweep between the create and the lock removes it.
        if flock(&new.file, FlockOperation::NonBlockingLockExclusive).is_err()
            || !new.still_at_side()
        {
            return None;
        }
        match open_side(&new.side) {
            Ok(store) => Some((store, new)),
            Err(e) => {
                tracing::debug!("cannot build the new database aside ({e}); opening it in place");
                None
            }
        }
    }

    /// Close the built database and give it its path. `Ok(false)`: nothing was written
    /// there, the side file is removed, and the caller stores the same reports into the
    /// database at the path instead. That happens when the path was taken meanwhile
    /// (another process created the database), when SQLite files appeared beside it, or
    /// when the file system cannot rename without replacing.
    pub(crate) fn put_in_place(mut self, store: SqliteStore) -> Result<bool> {
        // The file a later writer opens is the same as one made in place: a WAL database.
        enable_wal(&store.conn, &self.side)?;
        store
            .conn
            .close()
            .map_err(|(_, e)| db_error(&self.side, "cannot close", e))?;
        self.file
            .sync_all()
            .map_err(|e| Error::io(&self.side, "cannot sync", e))?;
        if !self.still_at_side() || has_companions(&self.dest) {
            return Ok(false);
        }
        if !rename_no_replace(&self.side, &self.dest) {
            return Ok(false);
        }
        self.placed = true;
        // The new name is durable only once its folder is.
        let folder = folder_of(&self.dest);
        if let Err(e) = File::open(folder).and_then(|f| f.sync_all()) {
            tracing::warn!(
                "cannot sync folder {} after creating the database in it: {e}",
                folder.display()
            );
        }
        Ok(true)
    }

    /// Whether the file at `side` is still the one this builder created and holds.
    fn still_at_side(&self) -> bool {
        match (self.file.metadata(), self.side.symlink_metadata()) {
            (Ok(ours), Ok(there)) => ours.dev() == there.dev() && ours.ino() == there.ino(),
            _ => false,
        }
    }
}

impl Drop for NewDatabase {
    fn drop(&mut self) {
        if !self.placed && self.still_at_side() {
            let _ = std::fs::remove_file(&self.side);
        }
    }
}

/// The side file as a SQLite database: its rollback journal in memory (ROLLBACK TO a
/// savepoint must still work) and no `fsync` until it is complete.
fn open_side(side: &Path) -> Result<SqliteStore> {
    // Not a URI: the side file is opened by its name, whatever it looks like.
    let conn = Connection::open_with_flags(
        side,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| db_error(side, "cannot open", e))?;
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

fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Whether SQLite files of a database at `dest` (a WAL, a rollback journal, a shared-memory
/// index) are there.
fn has_companions(dest: &Path) -> bool {
    COMPANIONS.iter().any(|suffix| {
        let mut name: OsString = dest.as_os_str().to_owned();
        name.push(suffix);
        Path::new(&name).symlink_metadata().is_ok()
    })
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

/// Remove side files of `dest` that no builder holds: see [`sweep_stale`]. For the
/// maintenance paths (`compact`, `serve` starting): a side file left by a killed build
/// stays when the database was then created another way (a `serve`, an in-place ingest,
/// the winner of a race), and an ingest into an existing database does not look, so that
/// a CI post-step does not list the database's folder each time.
pub(crate) fn sweep_unfinished_builds(dest: &Path) {
    if dest.as_os_str().as_encoded_bytes().starts_with(b"file:") {
        return;
    }
    if let Some(name) = dest.file_name() {
        sweep_stale(dest, name);
    }
}

/// Remove side files of `dest` that no builder holds (left by a crash, a kill, Ctrl-C),
/// with any SQLite file beside them.
fn sweep_stale(dest: &Path, name: &OsStr) {
    let folder = folder_of(dest);
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    let mut prefix: OsString = name.to_owned();
    prefix.push(SIDE_MARK);
    let prefix = prefix.as_encoded_bytes();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let bytes = file_name.as_encoded_bytes();
        if !bytes.starts_with(prefix) {
            continue;
        }
        let path = entry.path();
        // A -wal or -shm of a side file: removed with it, or here once it is gone.
        if let Some(base) = COMPANIONS
            .iter()
            .find_map(|s| bytes.strip_suffix(s.as_bytes()))
        {
            let base = folder.join(OsStr::from_bytes(base));
            if base.symlink_metadata().is_err() {
                let _ = std::fs::remove_file(&path);
            }
            continue;
        }
        // Opened for writing: on NFS, Linux emulates `flock` with `fcntl` locks, and an
        // exclusive one needs a writable descriptor (read-only, every file looks held).
        let Ok(file) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
        else {
            continue;
        };
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            continue; // a builder at work
        }
        if std::fs::remove_file(&path).is_err() {
            continue;
        }
        tracing::info!(
            "removed {}, left by an ingest that did not finish",
            path.display()
        );
        for suffix in COMPANIONS {
            let mut companion = path.clone().into_os_string();
            companion.push(suffix);
            let _ = std::fs::remove_file(companion);
        }
    }
}
