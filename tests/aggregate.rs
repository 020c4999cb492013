//! The daily aggregate against the raw scan it replaces: simulated histories ingested in
//! parts, with rollups between the parts, late re-runs of old commits, the same report
//! uploaded twice, and another file of an old run arriving later; then every output
//! scored from the aggregate (the default) must be byte-identical to the raw scan
//! (`FLAKEHOUND_RAW_SCAN`), over whole-history, monthly, weekly and short windows, a
//! window ending mid-history, and job and branch filters. On SQLite and PostgreSQL.

use std::path::{Path, PathBuf};

use flakehound::sim::{simulate, SimConfig};
use flakehound::store::{pg, Store};

const BIN: &str = env!("CARGO_BIN_EXE_flakehound");

fn run(db: &Path, args: &[&str], raw: bool) -> Vec<u8> {
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("--db")
        .arg(db)
        .args(args)
        .env_remove("FLAKEHOUND_DB")
        .env_remove("FLAKEHOUND_RAW_SCAN")
        .env("CI", "true");
    if raw {
        cmd.env("FLAKEHOUND_RAW_SCAN", "1");
    }
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A manifest of `rows` (lines of the simulator's runs.csv) next to the reports.
fn manifest(dir: &Path, name: &str, header: &str, rows: &[String]) -> PathBuf {
    let path = dir.join(name);
    let mut text = format!("{header}\n");
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn ingest(db: &Path, manifest: &Path) {
    run(
        db,
        &["ingest", "--manifest", manifest.to_str().unwrap()],
        false,
    );
}

/// Fields of a runs.csv row: path, commit, branch, job, run_id, attempt, started_at, duration_s.
fn fields(row: &str) -> Vec<String> {
    row.split(',').map(str::to_string).collect()
}

/// Whether a run's report folder holds a failed test case.
fn has_failure(path: &Path) -> bool {
    let files: Vec<PathBuf> = if path.is_dir() {
        std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    } else {
        vec![path.to_path_buf()]
    };
    files.iter().any(|f| {
        std::fs::read(f).is_ok_and(|b| {
            let t = String::from_utf8_lossy(&b);
            t.contains("<failure") || t.contains("<error")
        })
    })
}

/// Ingest a simulated history into `db` the awkward way, and return what was simulated.
fn awkward_history(seed: u64, dir: &Path, db: &Path) -> Vec<String> {
    let config = SimConfig {
        days: 12,
        new_test_fraction: 0.05,
        ..SimConfig::small(seed)
    };
    simulate(&config, dir).unwrap();
    let text = std::fs::read_to_string(dir.join("runs.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_string();
    let rows: Vec<String> = lines.map(str::to_string).collect();
    let n = rows.len();
    assert!(n > 300, "{n} runs");
    let (a, b, c) = (&rows[..n / 3], &rows[n / 3..2 * n / 3], &rows[2 * n / 3..]);

    // The first third, everything rolled up (today's days too); the second third, rolled
    // up as ingest does it (closed days only).
    ingest(db, &manifest(dir, "a.csv", &header, a));
    run(db, &["compact", "--all"], false);
    ingest(db, &manifest(dir, "b.csv", &header, b));

    // Days later: a re-run of an old commit (a new attempt of an old run), the same
    // report uploaded again, and another report of an old run (its reruns merge into
    // the stored results).
    let old = fields(&a[a.len() / 4]);
    let mut rerun = old.clone();
    rerun[5] = (old[5].parse::<u32>().unwrap() + 10).to_string();
    let again = a[a.len() / 2].clone();
    let target = fields(&a[a.len() * 7 / 8]);
    // One with a failure in it, so that the merge shows in the scores.
    let other = a
        .iter()
        .chain(b)
        .map(|r| fields(r))
        .find(|f| f[3] == target[3] && f[0] != target[0] && has_failure(&dir.join(&f[0])))
        .expect("another run of the job with a failure");
    let mut merged = target.clone();
    merged[0] = other[0].clone();
    let late = [rerun.join(","), again, merged.join(",")];
    ingest(db, &manifest(dir, "late.csv", &header, &late));
    run(db, &["compact"], false);

    // The last third, then another late re-run of an old commit, left pending.
    ingest(db, &manifest(dir, "c.csv", &header, c));
    let mut rerun = fields(&b[b.len() / 2]);
    rerun[5] = "7".into();
    ingest(db, &manifest(dir, "late2.csv", &header, &[rerun.join(",")]));
    rows
}

/// Every output, scored from the aggregate and by the raw scan.
fn compare(db: &Path, rows: &[String]) -> Vec<(Vec<String>, Vec<u8>)> {
    let mid = fields(&rows[rows.len() / 2])[6].clone();
    let job = fields(&rows[0])[3].clone();
    let mut cases: Vec<Vec<String>> = Vec::new();
    for window in ["3650d", "30d", "7d", "2d", "36h"] {
        for cmd in [
            &["flaky", "--format", "json"][..],
            &["report", "--format", "json"],
            &["report"],
            &["backlog"],
        ] {
            let mut args: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
            args.extend(["--window".into(), window.into()]);
            cases.push(args);
        }
    }
    for extra in [
        vec!["--as-of", mid.as_str(), "--window", "3d"],
        vec!["--as-of", mid.as_str(), "--window", "3650d"],
        vec!["--job", job.as_str(), "--window", "3650d"],
        vec!["--branch", "main", "--window", "3650d"],
    ] {
        for cmd in ["flaky", "report"] {
            let mut args = vec![cmd.to_string(), "--format".into(), "json".into()];
            args.extend(extra.iter().map(|s| s.to_string()));
            cases.push(args);
        }
    }
    let mut out = Vec::new();
    for args in cases {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let agg = run(db, &refs, false);
        let raw = run(db, &refs, true);
        assert!(!agg.is_empty(), "{args:?} printed nothing");
        assert!(
            agg == raw,
            "{args:?}: the aggregate and the raw scan differ:\n{}\n---\n{}",
            String::from_utf8_lossy(&agg),
            String::from_utf8_lossy(&raw)
        );
        out.push((args, agg));
    }
    out
}

/// The aggregate is really in use: rolled-up days with rows, and pending days besides.
fn assert_aggregate_in_use(db: &Path) {
    let store = Store::open_read_only(db).unwrap();
    let pending = store
        .pending_days()
        .unwrap()
        .expect("a database with the aggregate");
    let mut rows = 0;
    let mut days = std::collections::BTreeSet::new();
    let mut odd = 0;
    store
        .for_each_day_row(i64::MIN, i64::MAX, None, |r| {
            if !pending.contains(&r.day) {
                rows += 1;
                days.insert(r.day);
                odd += usize::from(!r.odd.is_empty());
            }
        })
        .unwrap();
    assert!(days.len() >= 5, "rolled-up days: {days:?}");
    assert!(!pending.is_empty(), "no pending day left to read raw");
    assert!(rows > 100 && odd > 0, "{rows} rows, {odd} with odd runs");
}

#[test]
fn the_aggregate_scores_exactly_like_the_raw_scan_after_late_reruns_and_reuploads() {
    for seed in [1, 2, 3] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("f.db");
        let rows = awkward_history(seed, dir.path(), &db);
        assert_aggregate_in_use(&db);
        compare(&db, &rows);
    }
}

#[test]
fn the_aggregate_scores_exactly_like_the_raw_scan_on_postgres() {
    let Some(url) = pg::test_server("the_aggregate_scores_exactly_like_the_raw_scan_on_postgres")
    else {
        return;
    };
    let pg_db = pg::scratch_database(&url).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite_db = dir.path().join("f.db");
    let rows = awkward_history(4, dir.path(), &pg_db);
    assert_aggregate_in_use(&pg_db);
    let on_pg = compare(&pg_db, &rows);
    // The same steps on SQLite give the same bytes.
    let again = tempfile::tempdir().unwrap();
    awkward_history(4, again.path(), &sqlite_db);
    for (args, pg_out) in on_pg {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let sqlite_out = run(&sqlite_db, &refs, false);
        assert!(
            sqlite_out == pg_out,
            "{args:?} differs between SQLite and PostgreSQL"
        );
    }
}

/// `row` again with the report of another run of its job that has a failure: another
/// report of the same run, whose reruns merge into its stored results.
fn another_report_of(row: &str, rows: &[String], dir: &Path) -> String {
    let mut again = fields(row);
    let other = rows
        .iter()
        .map(|r| fields(r))
        .find(|f| f[3] == again[3] && f[0] != again[0] && has_failure(&dir.join(&f[0])))
        .expect("another run of the job with a failure");
    again[0] = other[0].clone();
    again.join(",")
}

/// Every row of the daily aggregate, in key order, column by column.
fn day_rows(db: &Path) -> Vec<Vec<rusqlite::types::Value>> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT day, job_id, test_key, runs, attempts, failures, failed_runs, duration_ms,
                    last_seen, odd
             FROM result_day ORDER BY day, job_id, test_key",
        )
        .unwrap();
    stmt.query_map([], |r| (0..10).map(|i| r.get(i)).collect())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Roll every day of the aggregate up again from the stored results (`compact`); its rows.
fn read_back_every_day(db: &Path) -> Vec<Vec<rusqlite::types::Value>> {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute(
        "INSERT OR IGNORE INTO day_pending (day) SELECT DISTINCT day FROM result_day",
        [],
    )
    .unwrap();
    drop(conn);
    run(db, &["compact"], false);
    day_rows(db)
}

#[test]
fn days_built_while_ingesting_equal_days_read_back() {
    // `ingest` builds the days it stores as it goes instead of reading them back. Here a
    // history arrives in two parts split mid-day (the second part's first day has runs of
    // the first: read back), with runs of several report files, a run with no report,
    // and a late re-upload into an old run (read back). Then every day is rolled up again
    // from the stored results: the rows must be the same, byte for byte.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.db");
    let config = SimConfig {
        days: 10,
        new_test_fraction: 0.05,
        ..SimConfig::small(7)
    };
    simulate(&config, dir.path()).unwrap();
    let text = std::fs::read_to_string(dir.path().join("runs.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_string();
    let mut rows: Vec<String> = lines.map(str::to_string).collect();
    let n = rows.len();
    // A job attempt that left no report (an empty folder) is still a run.
    let mut lost = fields(&rows[n / 5]);
    std::fs::create_dir_all(dir.path().join("reports/left-nothing")).unwrap();
    lost[0] = "reports/left-nothing".into();
    lost[4] = format!("{}-lost", lost[4]);
    rows.insert(n / 5 + 1, lost.join(","));
    let (a, b) = rows.split_at(rows.len() / 2);
    // The second part ends with another report of one of its own runs (read back).
    let mut b = b.to_vec();
    let twice = another_report_of(&b[b.len() / 4], &b, dir.path());
    b.push(twice);
    let b = &b[..];
    // How many days each part rolled up from the rows it built.
    let built_days = |part: &Path| {
        let out = std::process::Command::new(BIN)
            .arg("--db")
            .arg(&db)
            .args(["ingest", "--manifest"])
            .arg(part)
            .env_remove("FLAKEHOUND_DB")
            .env("CI", "true")
            .env("RUST_LOG", "flakehound::store=debug")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8_lossy(&out.stderr)
            .matches("from the rows the ingest built")
            .count()
    };
    assert!(built_days(&manifest(dir.path(), "a.csv", &header, a)) >= 3);
    built_days(&manifest(dir.path(), "b.csv", &header, b));
    let merged = another_report_of(&a[a.len() / 3], a, dir.path());
    ingest(&db, &manifest(dir.path(), "late.csv", &header, &[merged]));
    run(&db, &["compact"], false);

    let built = day_rows(&db);
    let days: std::collections::BTreeSet<String> =
        built.iter().map(|r| format!("{:?}", r[0])).collect();
    assert!(days.len() >= 6, "rolled-up days: {days:?}");
    assert!(
        built.iter().any(|r| r[9] != rusqlite::types::Value::Null),
        "no day lists odd runs"
    );
    let read_back = read_back_every_day(&db);
    assert_eq!(built.len(), read_back.len());
    for (b, r) in built.iter().zip(&read_back) {
        assert_eq!(b, r);
    }
}

/// The runs of a simulator's runs.csv, as `ingest --manifest` reads them.
fn run_inputs(dir: &Path) -> Vec<flakehound::ingest::RunInput> {
    let text = std::fs::read_to_string(dir.join("runs.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|row| {
            let f = fields(row);
            let listed = flakehound::ingest::list_reports(&dir.join(&f[0])).unwrap();
            assert!(listed.searched);
            flakehound::ingest::RunInput {
                meta: flakehound::model::RunMeta {
                    commit: f[1].clone(),
                    branch: f[2].clone(),
                    job: f[3].clone(),
                    run_id: f[4].clone(),
                    attempt: f[5].parse().unwrap(),
                    started_at: flakehound::ci_env::parse_timestamp(&f[6]).unwrap(),
                    duration_s: None,
                    run_url: None,
                },
                started_at_known: true,
                paths: Vec::new(),
                found: listed.files,
            }
        })
        .collect()
}

#[test]
fn a_day_written_by_another_connection_after_the_ingest_is_read_back() {
    // A `serve` on the same database merges another attempt into a result of the
    // ingest's first run between the ingest and its rollup: the days built while
    // ingesting no longer hold what is stored, and every day must be read back.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.db");
    let config = SimConfig {
        days: 8,
        ..SimConfig::small(11)
    };
    simulate(&config, dir.path()).unwrap();
    let runs = run_inputs(dir.path());
    let mut store = Store::open(&db).unwrap();
    store
        .bulk_ingest(runs.iter().map(|r| r.meta.started_at).max())
        .unwrap();
    flakehound::ingest::ingest(&mut store, &runs, None).unwrap();
    let other = rusqlite::Connection::open(&db).unwrap();
    let changed = other
        .execute(
            "UPDATE result SET attempts = attempts + 1, failures = failures + 1, outcome = 1
             WHERE run_key = (SELECT min(run_key) FROM result)",
            [],
        )
        .unwrap();
    assert!(changed > 0);
    drop(other);
    assert!(store.rollup_closed().unwrap() >= 3);
    drop(store);
    let built = day_rows(&db);
    assert_eq!(built, read_back_every_day(&db));
}
