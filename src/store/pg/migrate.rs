//! PostgreSQL migrations from `schema/postgres/`, recorded by name in
//! `flakehound_migrations`. Applied under an advisory lock, so replicas that start
//! together apply each migration once and the others wait, then see it applied.

use std::path::Path;

use postgres::Client;

use super::pg_error;
use crate::error::{Error, Result};

/// Forward-only migrations, in order.
pub(crate) const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_init.sql",
        include_str!("../../../schema/postgres/0001_init.sql"),
    ),
    (
        "0002_quarantine.sql",
        include_str!("../../../schema/postgres/0002_quarantine.sql"),
    ),
    (
        "0003_daily_aggregate.sql",
        include_str!("../../../schema/postgres/0003_daily_aggregate.sql"),
    ),
    (
        "0004_generation.sql",
        include_str!("../../../schema/postgres/0004_generation.sql"),
    ),
];

/// The advisory lock key of migrations ("flakehnd").
const MIGRATION_LOCK: i64 = 0x666c_616b_6568_6e64;

/// The applied migrations' names, or `None` when the database has no flakehound tables.
pub(crate) fn applied(client: &mut Client, shown: &Path) -> Result<Option<Vec<String>>> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('flakehound_migrations') IS NOT NULL",
            &[],
        )
        .map_err(|e| pg_error(shown, "cannot read the schema version", e))?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let rows = client
        .query("SELECT name FROM flakehound_migrations ORDER BY name", &[])
        .map_err(|e| pg_error(shown, "cannot read the schema version", e))?;
    Ok(Some(rows.iter().map(|r| r.get(0)).collect()))
}

/// Refuse a database migrated by a newer flakehound.
pub(crate) fn check_known(names: &[String], shown: &Path) -> Result<()> {
    let unknown = names
        .iter()
        .any(|n| !MIGRATIONS.iter().any(|(known, _)| known == n));
    if unknown {
        return Err(Error::SchemaTooNew {
            path: shown.to_path_buf(),
            found: names.len() as i64,
            supported: MIGRATIONS.len() as i64,
        });
    }
    Ok(())
}

pub(crate) fn migrate(client: &mut Client, shown: &Path) -> Result<()> {
    // Nothing to do (the common case for every replica after the first): no lock taken.
    if let Some(names) = applied(client, shown)? {
        check_known(&names, shown)?;
        if names.len() == MIGRATIONS.len() {
            return Ok(());
        }
    }
    let mut tx = client
        .transaction()
        .map_err(|e| pg_error(shown, "cannot start a migration", e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(|e| pg_error(shown, "cannot take the migration lock", e))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS flakehound_migrations (
             name       text PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .map_err(|e| pg_error(shown, "cannot create the migrations table", e))?;
    let done: Vec<String> = tx
        .query("SELECT name FROM flakehound_migrations", &[])
        .map_err(|e| pg_error(shown, "cannot read the schema version", e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    check_known(&done, shown)?;
    for (name, sql) in MIGRATIONS {
        if done.iter().any(|d| d == name) {
            continue;
        }
        tx.batch_execute(sql)
            .map_err(|e| pg_error(shown, &format!("migration {name} failed"), e))?;
        tx.execute(
            "INSERT INTO flakehound_migrations (name) VALUES ($1)",
            &[name],
        )
        .map_err(|e| pg_error(shown, &format!("migration {name} failed"), e))?;
        tracing::info!(migration = name, "applied PostgreSQL schema migration");
    }
    tx.commit()
        .map_err(|e| pg_error(shown, "cannot finish migrations", e))
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    #[test]
    fn migration_list_matches_schema_folder() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/postgres");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|(n, _)| *n).collect();
        assert_eq!(files, listed);
    }
}
