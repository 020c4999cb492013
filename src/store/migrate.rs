//! Numbered migrations from `schema/`, applied on open; the version lives in `user_version`.

use std::path::Path;

use rusqlite::Connection;

use super::db_error;
use crate::error::{Error, Result};

/// Forward-only migrations, in order. Migration `i` brings the schema to version `i + 1`.
pub(crate) const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init.sql", include_str!("../../schema/0001_init.sql")),
    (
        "0002_quarantine.sql",
        include_str!("../../schema/0002_quarantine.sql"),
    ),
    (
        "0003_run_url.sql",
        include_str!("../../schema/0003_run_url.sql"),
    ),
    (
        "0004_daily_aggregate.sql",
        include_str!("../../schema/0004_daily_aggregate.sql"),
    ),
    (
        "0005_compact_storage.sql",
        include_str!("../../schema/0005_compact_storage.sql"),
    ),
    (
        "0006_compact_keys.sql",
        include_str!("../../schema/0006_compact_keys.sql"),
    ),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub(crate) fn current_version(conn: &Connection, path: &Path) -> Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| db_error(path, "cannot read the schema version", e))
}

pub(crate) fn check_version(conn: &Connection, path: &Path) -> Result<()> {
    let found = current_version(conn, path)?;
    if found > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

pub(crate) fn migrate(conn: &Connection, path: &Path) -> Result<()> {
    loop {
        // Each migration and its version bump commit together; IMMEDIATE so that two
        // processes opening a fresh database do not both apply it.
        conn.execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| db_error(path, "cannot start a migration", e))?;
        let version = match current_version(conn, path) {
            Ok(v) => v,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        };
        if version >= SCHEMA_VERSION {
            conn.execute_batch("COMMIT")
                .map_err(|e| db_error(path, "cannot finish migrations", e))?;
            return Ok(());
        }
        let (name, sql) = MIGRATIONS[version as usize];
        let applied = conn
            .execute_batch(sql)
            .and_then(|()| conn.pragma_update(None, "user_version", version + 1))
            .and_then(|()| conn.execute_batch("COMMIT"));
        if let Err(e) = applied {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(db_error(path, &format!("migration {name} failed"), e));
        }
        tracing::info!(migration = name, "applied schema migration");
    }
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    #[test]
    fn migration_list_matches_schema_folder() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/schema");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|(n, _)| *n).collect();
        assert_eq!(files, listed);
        for (i, name) in listed.iter().enumerate() {
            assert!(
                name.starts_with(&format!("{:04}_", i + 1)),
                "{name} out of order"
            );
        }
    }
}
