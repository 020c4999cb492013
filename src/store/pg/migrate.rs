//! PostgreSQL migrations from `schema/postgres/`, recorded by name in
//! `flakehound_migrations`. Applied under an advisory lock, so replicas that start
//! together apply each migration once and the others wait, then see it applied.

use std::path::Path;

use postgres::Client;

use super::pg_error;
use crate::error::{Error, Result};
use crate::model::TestIdentity;

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
    (
        "0005_compact_results.sql",
        include_str!("../../../schema/postgres/0005_compact_results.sql"),
    ),
    (
        "0006_checkout_relative_files.sql",
        include_str!("../../../schema/postgres/0006_checkout_relative_files.sql"),
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
            .and_then(|()| match *name {
                "0006_checkout_relative_files.sql" => strip_checkout_folders(&mut tx),
                _ => Ok(()),
            })
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

/// Migration 0006's data step (see the SQL file).
fn strip_checkout_folders(tx: &mut postgres::Transaction<'_>) -> Result<(), postgres::Error> {
    let tests = tx.query(
        "SELECT test_id, classname, name, file FROM test
         WHERE file LIKE '/%' OR file LIKE '_:%' ORDER BY test_id",
        &[],
    )?;
    let mut taken = std::collections::HashSet::new();
    let insert = tx.prepare(
        "INSERT INTO checkout_rename (old_id, new_id, file, merged) VALUES ($1, $2, $3, $4)",
    )?;
    let exists = tx.prepare("SELECT 1 FROM test WHERE test_id = $1")?;
    for row in &tests {
        let (old_id, classname, name, file): (i64, &str, &str, &str) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let stripped = crate::junit::strip_checkout(file);
        if stripped == file {
            continue;
        }
        let new_id = TestIdentity::new(classname, name, Some(&stripped)).0;
        let merged = !taken.insert(new_id) || !tx.query(&exists, &[&new_id])?.is_empty();
        tx.execute(&insert, &[&old_id, &new_id, &stripped.as_ref(), &merged])?;
    }
    if taken.is_empty() {
        return Ok(());
    }
    // A run keeps one result of a test: the survivor's, else the copy with the lowest old id.
    tx.batch_execute(
        "INSERT INTO test (test_id, classname, name, file, suite)
             SELECT m.new_id, t.classname, t.name, m.file, t.suite
             FROM checkout_rename m JOIN test t ON t.test_id = m.old_id
             WHERE NOT m.merged;
         DELETE FROM test t USING checkout_rename m WHERE t.test_id = m.old_id;
         DELETE FROM failure x USING checkout_rename m
             WHERE x.test_id = m.old_id AND EXISTS (
                 SELECT 1 FROM result r LEFT JOIN checkout_rename m2 ON m2.old_id = r.test_id
                 WHERE r.day = x.day AND r.run_key = x.run_key
                 AND (r.test_id = m.new_id OR (m2.new_id = m.new_id AND r.test_id < x.test_id)));
         DELETE FROM result x USING checkout_rename m
             WHERE x.test_id = m.old_id AND EXISTS (
                 SELECT 1 FROM result r LEFT JOIN checkout_rename m2 ON m2.old_id = r.test_id
                 WHERE r.day = x.day AND r.run_key = x.run_key
                 AND (r.test_id = m.new_id OR (m2.new_id = m.new_id AND r.test_id < x.test_id)));
         UPDATE failure x SET test_id = m.new_id FROM checkout_rename m WHERE x.test_id = m.old_id;
         UPDATE result x SET test_id = m.new_id FROM checkout_rename m WHERE x.test_id = m.old_id;
         INSERT INTO day_pending (day)
             SELECT DISTINCT d.day FROM result_day d JOIN checkout_rename m ON d.test_id = m.old_id
             WHERE m.merged
             ON CONFLICT DO NOTHING;
         DELETE FROM result_day d USING checkout_rename m WHERE d.test_id = m.old_id AND m.merged;
         UPDATE result_day d SET test_id = m.new_id FROM checkout_rename m WHERE d.test_id = m.old_id;
         UPDATE quarantine x SET released_at = x.since, release_reason = 'merged'
             FROM checkout_rename m
             WHERE x.test_id = m.old_id AND x.released_at IS NULL AND EXISTS (
                 SELECT 1 FROM quarantine q LEFT JOIN checkout_rename m2 ON m2.old_id = q.test_id
                 WHERE q.job = x.job AND q.released_at IS NULL
                 AND q.quarantine_id <> x.quarantine_id
                 AND (q.test_id = m.new_id
                      OR (m2.new_id = m.new_id AND q.quarantine_id < x.quarantine_id)));
         UPDATE quarantine x SET test_id = m.new_id, file = m.file
             FROM checkout_rename m WHERE x.test_id = m.old_id;
         UPDATE quarantine_event x SET test_id = m.new_id
             FROM checkout_rename m WHERE x.test_id = m.old_id;
         UPDATE flakehound_generation SET n = n + 1;",
    )?;
    tracing::info!(
        tests = taken.len(),
        "test files without their CI checkout folder"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::MIGRATIONS;
    use crate::model::RunMeta;
    use crate::store::{RunFilter, Store};

    /// A database at schema v4 (results with an int8 run key and a stored outcome, the
    /// daily aggregate) upgrades to v5 with every result, failure and aggregate row kept,
    /// outcomes read back the same, and writes to an old run merge.
    #[test]
    fn v4_database_upgrades_keeping_its_data() {
        let Some(url) = super::super::test_server("v4_database_upgrades_keeping_its_data") else {
            return;
        };
        let db: PathBuf = super::super::scratch_database(&url).unwrap();
        let day = 1_700_000_000 / 86_400; // 19675, 2023-11-14
        let t = crate::model::TestIdentity::new("C", "t", None).0;
        let u = crate::model::TestIdentity::new("C", "u", None).0;
        {
            let mut c = postgres::Client::connect(db.to_str().unwrap(), postgres::NoTls).unwrap();
            c.batch_execute(
                "CREATE TABLE flakehound_migrations (
                     name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
            )
            .unwrap();
            for (name, sql) in &MIGRATIONS[..4] {
                c.batch_execute(sql).unwrap();
                c.execute(
                    "INSERT INTO flakehound_migrations (name) VALUES ($1)",
                    &[name],
                )
                .unwrap();
            }
            // As the v4 writer made them: LIKE + ATTACH, one per day and table.
            c.batch_execute(&format!(
                "CREATE TABLE result_20231114 (LIKE result INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
                 ALTER TABLE result ATTACH PARTITION result_20231114 FOR VALUES FROM ({day}) TO ({next});
                 CREATE TABLE failure_20231114 (LIKE failure INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
                 ALTER TABLE failure ATTACH PARTITION failure_20231114 FOR VALUES FROM ({day}) TO ({next});
                 INSERT INTO run (run_key, commit_sha, branch, job, ci_run_id, attempt, started_at, tests_time_s)
                 VALUES (5, 'abc123', 'main', 'unit', '77', 1, 1700000000, 1.5),
                        (9, 'def456', 'main', 'unit', '78', 1, 1700000100, 0);
                 SELECT setval(pg_get_serial_sequence('run', 'run_key'), 9);
                 INSERT INTO test (test_id, classname, name) VALUES ({t}, 'C', 't'), ({u}, 'C', 'u');
                 INSERT INTO result (run_key, test_id, day, duration_ms, attempts, failures, outcome)
                 VALUES (5, {t}, {day}, 30, 2, 1, 1), (5, {u}, {day}, 5, 1, 1, 2),
                        (9, {t}, {day}, 10, 1, 0, 0), (9, {u}, {day}, 0, 0, 0, 3);
                 INSERT INTO fingerprint VALUES (7, 'AssertionError: boom', 'boom');
                 INSERT INTO failure (run_key, test_id, fingerprint, day, attempt, is_error, type, message)
                 VALUES (5, {t}, 7, {day}, 1, false, 'AssertionError', 'boom'),
                        (5, {u}, 7, {day}, 1, true, NULL, 'boom');
                 INSERT INTO report_file VALUES (5, '\\x00112233445566778899aabbccddeeff', 'r.xml', 2);
                 INSERT INTO job_name (job_id, job) VALUES (1, 'unit');
                 INSERT INTO result_day (day, job_id, test_id, runs, attempts, failures, failed_runs,
                                         duration_ms, last_seen, odd)
                 VALUES ({day}, 1, {t}, 2, 3, 1, 1, 40, 1700000100, '\\x01'),
                        ({day}, 1, {u}, 2, 1, 1, 1, 5, 1700000100, NULL);",
                next = day + 1
            ))
            .unwrap();
        }

        let mut store = Store::open(&db).unwrap();
        let mut rows = Vec::new();
        store
            .for_each_result(&[5, 9], |_, r| {
                rows.push((
                    r.run_key,
                    r.test_id,
                    r.outcome,
                    r.attempts,
                    r.failures,
                    r.duration_ms,
                ))
            })
            .unwrap();
        rows.sort();
        let mut want = vec![
            (5, t, 1, 2, 1, 30),
            (5, u, 2, 1, 1, 5),
            (9, t, 0, 1, 0, 10),
            (9, u, 3, 0, 0, 0),
        ];
        want.sort();
        assert_eq!(rows, want);
        let mut failures: Vec<_> = store
            .failures(&[5])
            .unwrap()
            .iter()
            .map(|f| (f.run_key, f.test_id, f.attempt, f.is_error, f.fingerprint))
            .collect();
        failures.sort();
        let mut want = vec![(5, t, 1, false, 7), (5, u, 1, true, 7)];
        want.sort();
        assert_eq!(failures, want);
        let mut day_rows = Vec::new();
        store
            .for_each_day_row(day, day, None, |r| {
                day_rows.push((r.test_id, r.runs, r.attempts, r.failures, r.odd.clone()))
            })
            .unwrap();
        day_rows.sort();
        let mut want = vec![(t, 2, 3, 1, vec![1]), (u, 2, 1, 1, vec![])];
        want.sort();
        assert_eq!(day_rows, want);

        // Another report of run 5: C.t fails again, numbered after the two stored attempts.
        let xml = r#"<testsuite name="S"><testcase classname="C" name="t" time="0.02">
            <failure type="AssertionError" message="boom"/></testcase></testsuite>"#;
        let report = crate::junit::parse_bytes(xml.as_bytes()).unwrap();
        let meta = RunMeta {
            commit: "abc123".into(),
            branch: "main".into(),
            job: "unit".into(),
            run_id: "77".into(),
            attempt: 1,
            started_at: 1_700_000_000,
            duration_s: None,
            run_url: None,
        };
        let mut batch = store.batch().unwrap();
        let (key, _) = batch.run(&meta).unwrap();
        assert_eq!(key, 5);
        assert!(batch
            .has_file(
                5,
                "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
            )
            .unwrap());
        batch
            .add_file(5, &"ff".repeat(32), "s.xml", &report.cases, 1, Some(0.02))
            .unwrap();
        // A run on a later day: its partitions are made on demand.
        let later = RunMeta {
            run_id: "79".into(),
            started_at: 1_700_000_000 + 2 * 86_400,
            ..meta
        };
        let (k, _) = batch.run(&later).unwrap();
        assert!(k > 9);
        batch
            .add_file(k, &"ee".repeat(32), "r.xml", &report.cases, 1, Some(0.02))
            .unwrap();
        batch.commit().unwrap();
        // 3 attempts of which 2 failed: flaky (1), derived from the counts.
        let r = store.result(5, t).unwrap().unwrap();
        assert_eq!(
            (r.outcome, r.attempts, r.failures, r.duration_ms),
            (1, 3, 2, 50)
        );
        let attempts: Vec<u32> = store
            .failure_messages(5, t)
            .unwrap()
            .iter()
            .map(|m| m.0)
            .collect();
        assert_eq!(attempts, vec![1, 3]);
        // The old day is rolled up again from its (new) rows.
        assert_eq!(store.rollup(day + 2).unwrap(), 2);
        let mut attempts_42 = 0;
        store
            .for_each_day_row(day, day, None, |r| {
                if r.test_id == t {
                    attempts_42 = r.attempts;
                }
            })
            .unwrap();
        assert_eq!(attempts_42, 4);
        let runs = store.runs(&RunFilter::default()).unwrap();
        assert_eq!(runs.len(), 3);
        drop(store);

        let mut c = postgres::Client::connect(db.to_str().unwrap(), postgres::NoTls).unwrap();
        let parts: Vec<(String, String)> = c
            .query(
                "SELECT p.relname::text, c.relname::text
                 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                 JOIN pg_class p ON p.oid = i.inhparent
                 WHERE c.relkind = 'r'
                   AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
                 ORDER BY 1, 2",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let want: Vec<(String, String)> = [
            ("failure", "failure_20231114"),
            ("failure", "failure_20231116"),
            ("result", "result_20231114"),
            ("result", "result_20231116"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(parts, want);
    }

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
