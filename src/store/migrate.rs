//! Numbered migrations from `schema/`, applied on open; the version lives in `user_version`.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::db_error;
use crate::error::{Error, Result};
use crate::model::TestIdentity;

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
    (
        "0007_checkout_relative_files.sql",
        include_str!("../../schema/0007_checkout_relative_files.sql"),
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
            .and_then(|()| match name {
                "0007_checkout_relative_files.sql" => strip_checkout_folders(conn),
                _ => Ok(()),
            })
            .and_then(|()| conn.pragma_update(None, "user_version", version + 1))
            .and_then(|()| conn.execute_batch("COMMIT"));
        if let Err(e) = applied {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(db_error(path, &format!("migration {name} failed"), e));
        }
        tracing::info!(migration = name, "applied schema migration");
    }
}

/// Migration 0007's data step (see the SQL file): stored test files lose their CI
/// checkout folder, and their ids follow.
fn strip_checkout_folders(conn: &Connection) -> rusqlite::Result<()> {
    let tests: Vec<(i64, i64, String, String, String)> = conn
        .prepare(
            "SELECT test_key, test_id, classname, name, file FROM test
             WHERE file LIKE '/%' OR file LIKE '_:%' ORDER BY test_key",
        )?
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut find = conn.prepare("SELECT test_key FROM test WHERE test_id = ?1")?;
    let mut rename = conn.prepare("UPDATE test SET test_id = ?2, file = ?3 WHERE test_key = ?1")?;
    let mut merge =
        conn.prepare("INSERT INTO checkout_merge (old_key, new_key) VALUES (?1, ?2)")?;
    let mut quarantined =
        conn.prepare("UPDATE OR IGNORE quarantine SET test_id = ?2, file = ?3 WHERE test_id = ?1")?;
    let mut collided = conn.prepare(
        "UPDATE quarantine SET test_id = ?2, file = ?3,
             released_at = coalesce(released_at, since),
             release_reason = coalesce(release_reason, 'merged')
         WHERE test_id = ?1",
    )?;
    let mut events = conn.prepare("UPDATE quarantine_event SET test_id = ?2 WHERE test_id = ?1")?;
    let (mut renamed, mut merged) = (0u64, 0u64);
    for (key, old_id, classname, name, file) in tests {
        let stripped = crate::junit::strip_checkout(&file);
        if stripped == file {
            continue;
        }
        let new_id = TestIdentity::new(&classname, &name, Some(&stripped)).0;
        match find
            .query_row([new_id], |r| r.get::<_, i64>(0))
            .optional()?
        {
            Some(survivor) => {
                merge.execute([key, survivor])?;
                merged += 1;
            }
            None => {
                rename.execute(params![key, new_id, stripped.as_ref()])?;
                renamed += 1;
            }
        }
        quarantined.execute(params![old_id, new_id, stripped.as_ref()])?;
        collided.execute(params![old_id, new_id, stripped.as_ref()])?;
        events.execute([old_id, new_id])?;
    }
    if merged > 0 {
        conn.execute_batch(
            "INSERT OR IGNORE INTO day_pending (day)
                 SELECT DISTINCT day FROM result_day
                 WHERE test_key IN (SELECT old_key FROM checkout_merge);
             DELETE FROM result_day WHERE test_key IN (SELECT old_key FROM checkout_merge);
             DELETE FROM failure
                 WHERE test_key IN (SELECT old_key FROM checkout_merge)
                 AND EXISTS (SELECT 1 FROM checkout_merge m
                             JOIN result r ON r.run_key = failure.run_key
                             LEFT JOIN checkout_merge m2 ON m2.old_key = r.test_key
                             WHERE m.old_key = failure.test_key
                             AND (r.test_key = m.new_key
                                  OR (m2.new_key = m.new_key AND r.test_key < failure.test_key)));
             DELETE FROM result
                 WHERE test_key IN (SELECT old_key FROM checkout_merge)
                 AND EXISTS (SELECT 1 FROM checkout_merge m
                             JOIN result r ON r.run_key = result.run_key
                             LEFT JOIN checkout_merge m2 ON m2.old_key = r.test_key
                             WHERE m.old_key = result.test_key
                             AND (r.test_key = m.new_key
                                  OR (m2.new_key = m.new_key AND r.test_key < result.test_key)));
             UPDATE result
                 SET test_key = (SELECT new_key FROM checkout_merge WHERE old_key = test_key)
                 WHERE test_key IN (SELECT old_key FROM checkout_merge);
             UPDATE failure
                 SET test_key = (SELECT new_key FROM checkout_merge WHERE old_key = test_key)
                 WHERE test_key IN (SELECT old_key FROM checkout_merge);
             DELETE FROM test WHERE test_key IN (SELECT old_key FROM checkout_merge);",
        )?;
    }
    conn.execute_batch("DROP TABLE checkout_merge")?;
    if renamed + merged > 0 {
        tracing::info!(
            renamed,
            merged,
            "test files without their CI checkout folder"
        );
    }
    Ok(())
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
