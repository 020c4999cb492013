use super::*;
use crate::junit::parse_bytes;
use crate::model::RunMeta;

/// An in-memory SQLite store and, when a test server is set, an empty PostgreSQL one:
/// every test here holds on both backends.
fn stores() -> Vec<Store> {
    let mut out = vec![Store::open_in_memory().unwrap()];
    if let Some(url) = pg::test_server("store tests") {
        let db = pg::scratch_database(&url).unwrap();
        out.push(Store::open(&db).unwrap());
    }
    out
}

fn meta(attempt: u32) -> RunMeta {
    RunMeta {
        commit: "abc123".into(),
        branch: "main".into(),
        job: "unit".into(),
        run_id: "77".into(),
        attempt,
        started_at: 1_700_000_000,
        duration_s: Some(600.0),
        run_url: None,
    }
}

const REPORT: &str = r#"<testsuite name="S">
  <testcase classname="C" name="passes" time="0.5"/>
  <testcase classname="C" name="flakes" time="1"><flakyFailure message="timeout 30ms" type="T"/></testcase>
  <testcase classname="C" name="fails"><failure message="expected 1 got 2"/><rerunFailure message="expected 1 got 3" type="A"/></testcase>
  <testcase classname="C" name="skips"><skipped/></testcase>
</testsuite>"#;

#[test]
fn stores_results_failures_and_fingerprints() {
    for mut store in stores() {
        let report = parse_bytes(REPORT.as_bytes()).unwrap();
        let mut batch = store.batch().unwrap();
        let (run_key, created) = batch.run(&meta(1)).unwrap();
        assert!(created);
        let tally = batch
            .add_file(run_key, "h1", "r.xml", &report.cases, 4, Some(1.5))
            .unwrap();
        batch.commit().unwrap();
        assert_eq!(
            (
                tally.tests,
                tally.attempts,
                tally.passed,
                tally.flaky,
                tally.failed,
                tally.skipped
            ),
            (4, 5, 1, 1, 1, 1)
        );
        let failures = store.failures(&[run_key]).unwrap();
        assert_eq!(failures.len(), 3);
        // Both failed attempts of "fails" share a fingerprint (numbers masked)... only when
        // the type matches: the rerun has type A, the first none, so they differ.
        let counts = store.test_counts().unwrap();
        assert_eq!(counts.len(), 4);
        let runs = store.runs(&RunFilter::default()).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].tests_time_s, 1.5);
        assert_eq!(runs[0].wall_time_s(), 600.0);
    }
}

#[test]
fn same_file_is_recognised_and_attempt_is_a_new_run() {
    for mut store in stores() {
        let mut batch = store.batch().unwrap();
        let (k1, _) = batch.run(&meta(1)).unwrap();
        batch.add_file(k1, "h1", "r.xml", &[], 0, None).unwrap();
        assert!(batch.has_file(k1, "h1").unwrap());
        let (k1_again, created) = batch.run(&meta(1)).unwrap();
        assert_eq!((k1_again, created), (k1, false));
        let (k2, created) = batch.run(&meta(2)).unwrap();
        assert!(created);
        assert_ne!(k1, k2);
        assert!(!batch.has_file(k2, "h1").unwrap());
        batch.commit().unwrap();
    }
}

#[test]
fn cases_of_one_test_in_two_files_of_a_run_add_attempts() {
    for mut store in stores() {
        let first = parse_bytes(br#"<testsuite><testcase classname="C" name="t"><failure message="x"/></testcase></testsuite>"#).unwrap();
        let second =
            parse_bytes(br#"<testsuite><testcase classname="C" name="t"/></testsuite>"#).unwrap();
        let mut batch = store.batch().unwrap();
        let (k, _) = batch.run(&meta(1)).unwrap();
        batch
            .add_file(k, "a", "a.xml", &first.cases, 1, None)
            .unwrap();
        batch
            .add_file(k, "b", "b.xml", &second.cases, 1, None)
            .unwrap();
        batch.commit().unwrap();
        let mut rows = Vec::new();
        store.for_each_result(&[k], |_, r| rows.push(r)).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].attempts, rows[0].failures, rows[0].outcome),
            (2, 1, 1)
        );
    }
}

#[test]
fn dropped_batch_stores_nothing() {
    for mut store in stores() {
        let report = parse_bytes(REPORT.as_bytes()).unwrap();
        {
            let mut batch = store.batch().unwrap();
            let (k, _) = batch.run(&meta(1)).unwrap();
            batch
                .add_file(k, "h", "r.xml", &report.cases, 4, None)
                .unwrap();
            // no commit
        }
        assert!(store.runs(&RunFilter::default()).unwrap().is_empty());
        assert!(store.test_counts().unwrap().is_empty());
    }
}

#[test]
fn newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 5)
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = Store::open(&path).err().expect("refused");
    assert!(err.to_string().contains("newer"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert!(!dir.path().join("future.db-wal").exists());
}

#[test]
fn overlapping_files_of_a_run_merge_through_the_bulk_insert_path() {
    // More cases than one multi-row INSERT, all present in both files.
    let mut xml_a = String::from("<testsuite>");
    let mut xml_b = String::from("<testsuite>");
    for i in 0..70 {
        xml_a.push_str(&format!(
            "<testcase classname=\"C\" name=\"t{i}\"><failure message=\"m{i}\"/></testcase>"
        ));
        xml_b.push_str(&format!("<testcase classname=\"C\" name=\"t{i}\"/>"));
    }
    xml_a.push_str("</testsuite>");
    xml_b.push_str("</testsuite>");
    let a = parse_bytes(xml_a.as_bytes()).unwrap();
    let b = parse_bytes(xml_b.as_bytes()).unwrap();
    for mut store in stores() {
        let mut batch = store.batch().unwrap();
        let (k, _) = batch.run(&meta(1)).unwrap();
        batch.add_file(k, "a", "a.xml", &a.cases, 70, None).unwrap();
        batch.add_file(k, "b", "b.xml", &b.cases, 70, None).unwrap();
        batch.commit().unwrap();
        let mut rows = Vec::new();
        store.for_each_result(&[k], |_, r| rows.push(r)).unwrap();
        assert_eq!(rows.len(), 70);
        assert!(rows
            .iter()
            .all(|r| (r.attempts, r.failures, r.outcome) == (2, 1, 1)));
        assert_eq!(store.failures(&[k]).unwrap().len(), 70);
    }
}

#[test]
fn postgres_newer_schema_is_refused_untouched() {
    let Some(url) = pg::test_server("postgres_newer_schema_is_refused_untouched") else {
        return;
    };
    let db = pg::scratch_database(&url).unwrap();
    drop(Store::open(&db).unwrap());
    pg::record_migration_for_test(&db, "9999_future.sql").unwrap();
    let err = Store::open(&db).err().expect("refused");
    assert!(err.to_string().contains("newer"), "{err}");
    let err = Store::open_read_only(&db).err().expect("refused");
    assert!(err.to_string().contains("newer"), "{err}");
}

#[test]
fn postgres_rerun_of_a_run_in_a_later_batch_numbers_attempts_after_the_stored_ones() {
    let Some(url) = pg::test_server("postgres attempts across batches") else {
        return;
    };
    let mut store = Store::open(&pg::scratch_database(&url).unwrap()).unwrap();
    let first = parse_bytes(br#"<testsuite><testcase classname="C" name="t"><failure message="x"/></testcase></testsuite>"#).unwrap();
    for (hash, time) in [("a", 1.25), ("b", 2.5)] {
        let mut batch = store.batch().unwrap();
        let (k, _) = batch.run(&meta(1)).unwrap();
        batch
            .add_file(k, hash, "r.xml", &first.cases, 1, Some(time))
            .unwrap();
        batch.commit().unwrap();
    }
    let runs = store.runs(&RunFilter::default()).unwrap();
    assert_eq!(runs[0].tests_time_s, 3.75);
    let attempts: Vec<u32> = store
        .failures(&[runs[0].run_key])
        .unwrap()
        .iter()
        .map(|f| f.attempt)
        .collect();
    assert_eq!(attempts, [1, 2]);
    let r = store
        .result(runs[0].run_key, first.cases[0].identity().0)
        .unwrap()
        .unwrap();
    assert_eq!((r.attempts, r.failures, r.outcome), (2, 2, 2));
}

/// Two files of one run stored in the batch that creates the run (rows held and written
/// sorted at the flush) and in two batches (the second merges into stored rows) give the
/// same results, failures with attempts numbered across the files, and report times.
#[test]
fn a_run_stored_in_one_batch_or_two_gives_the_same_rows() {
    let a = parse_bytes(br#"<testsuite time="2"><testcase classname="C" name="t" time="1"><failure message="x 1"/></testcase><testcase classname="C" name="u"/></testsuite>"#).unwrap();
    let b = parse_bytes(br#"<testsuite time="3"><testcase classname="C" name="t" time="2"><failure message="x 2"/></testcase><testcase classname="C" name="v"><skipped/></testcase></testsuite>"#).unwrap();
    let mut seen = Vec::new();
    for split in [false, true] {
        let mut store = Store::open_in_memory().unwrap();
        let mut batch = store.batch().unwrap();
        let (k, _) = batch.run(&meta(1)).unwrap();
        batch
            .add_file(k, "a", "a.xml", &a.cases, 2, a.info.time_s)
            .unwrap();
        // The same report again in the same run is recognised before the flush too.
        assert!(batch.has_file(k, "a").unwrap());
        if split {
            batch.commit().unwrap();
            batch = store.batch().unwrap();
            assert!(batch.has_file(k, "a").unwrap());
        }
        batch
            .add_file(k, "b", "b.xml", &b.cases, 2, b.info.time_s)
            .unwrap();
        batch.commit().unwrap();
        let mut rows = Vec::new();
        store.for_each_result(&[k], |_, r| rows.push(r)).unwrap();
        rows.sort_by_key(|r| r.test_id);
        let rows: Vec<_> = rows
            .iter()
            .map(|r| (r.test_id, r.outcome, r.attempts, r.failures, r.duration_ms))
            .collect();
        let mut failures: Vec<_> = store
            .failures(&[k])
            .unwrap()
            .into_iter()
            .map(|f| (f.test_id, f.attempt))
            .collect();
        failures.sort();
        let run = store.runs(&RunFilter::default()).unwrap();
        seen.push((rows, failures, run[0].tests_time_s));
    }
    assert_eq!(seen[0], seen[1]);
    let (rows, failures, time) = &seen[0];
    assert_eq!(rows.len(), 3);
    // t failed in both files: two failed attempts of one result, numbered 1 and 2.
    assert!(rows.iter().any(|r| (r.1, r.2, r.3, r.4) == (2, 2, 2, 3000)));
    assert_eq!(failures.iter().map(|f| f.1).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(*time, 5.0);
}

/// A database at schema v3 (before the run table was rebuilt) upgrades with every run,
/// result and report kept, and a re-ingest of the same run still finds it.
#[test]
fn v3_database_upgrades_keeping_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v3.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        for (_, sql) in &migrate::MIGRATIONS[..3] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 3).unwrap();
        conn.execute_batch(
            "INSERT INTO run (run_key, commit_sha, branch, job, ci_run_id, attempt, started_at, duration_s, tests_time_s, run_url)
             VALUES (5, 'abc123', 'main', 'unit', '77', 1, 1700000000, 600.0, 1.5, 'https://ci/77'),
                    (9, 'def456', 'dev', 'unit', '78', 2, 1700000100, NULL, 0, NULL);
             INSERT INTO test (test_id, classname, name) VALUES (42, 'C', 't');
             INSERT INTO result VALUES (5, 42, 1, 2, 1, 30), (9, 42, 0, 1, 0, 10);
             INSERT INTO report_file VALUES (5, x'00112233445566778899aabbccddeeff', 'r.xml', 1);",
        )
        .unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    let runs = store.runs(&RunFilter::default()).unwrap();
    let got: Vec<_> = runs
        .iter()
        .map(|r| {
            (
                r.run_key,
                r.commit.as_str(),
                r.branch.as_str(),
                r.run_id.as_str(),
                r.attempt,
                r.duration_s,
                r.tests_time_s,
                r.run_url.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                5,
                "abc123",
                "main",
                "77",
                1,
                Some(600.0),
                1.5,
                Some("https://ci/77")
            ),
            (9, "def456", "dev", "78", 2, None, 0.0, None)
        ]
    );
    let mut rows = Vec::new();
    store
        .for_each_result(&[5, 9], |_, r| {
            rows.push((r.attempts, r.failures, r.duration_ms))
        })
        .unwrap();
    rows.sort();
    assert_eq!(rows, vec![(1, 0, 10), (2, 1, 30)]);
    let mut batch = store.batch().unwrap();
    assert_eq!(batch.run(&meta(1)).unwrap(), (5, false));
    assert!(batch
        .has_file(
            5,
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
        )
        .unwrap());
    batch.commit().unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'run' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(indexes, vec!["run_by_time", "sqlite_autoindex_run_1"]);
}

/// A database at schema v6 whose tests carry CI checkout folders in their files upgrades to
/// stripped files: one test seen in two Jenkins workspace copies becomes one test with both
/// runs (a failed attempt in `shop` and its passing retry in `shop@2` on one commit: a
/// flake that was invisible before), its quarantine moves with it, and its daily rows are
/// rebuilt from the results.
#[test]
fn v6_database_drops_checkout_folders_and_merges_the_copies_of_a_test() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v6.db");
    let id = |c: &str, n: &str, f: &str| crate::model::TestIdentity::new(c, n, Some(f)).0;
    let (jenkins, copy) = (
        "/var/lib/jenkins/workspace/shop/t/ATest.php",
        "/var/lib/jenkins/workspace/shop@2/t/ATest.php",
    );
    let github = "/home/runner/work/shop/shop/t/BTest.php";
    // A third copy that, impossibly, ran in the same run as the second: one result stays.
    let third = "/var/lib/jenkins/workspace/shop@3/t/ATest.php";
    let a3 = id("A", "a", third);
    let (a1, a2, b, c) = (
        id("A", "a", jenkins),
        id("A", "a", copy),
        id("B", "b", github),
        id("C", "c", "t/CTest.php"),
    );
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        for (_, sql) in &migrate::MIGRATIONS[..6] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 6).unwrap();
        conn.execute_batch(&format!(
            "INSERT INTO run (run_key, commit_sha, branch, job, ci_run_id, attempt, started_at)
             VALUES (5, 'abc123', 'main', 'unit', '77', 1, 1700000000),
                    (9, 'abc123', 'main', 'unit', '77', 2, 1700000100);
             INSERT INTO test (test_key, test_id, classname, name, file) VALUES
                 (1, {a1}, 'A', 'a', '{jenkins}'), (2, {a2}, 'A', 'a', '{copy}'),
                 (3, {b}, 'B', 'b', '{github}'), (4, {c}, 'C', 'c', 't/CTest.php'),
                 (5, {a3}, 'A', 'a', '{third}');
             INSERT INTO result VALUES (5, 1, 2, 1, 1, 30), (9, 2, 0, 1, 0, 20),
                                       (5, 3, 0, 1, 0, 5), (9, 3, 0, 1, 0, 5), (9, 4, 0, 1, 0, 5),
                                       (9, 5, 2, 1, 1, 9);
             INSERT INTO failure VALUES (5, 1, 1, 0, 11, 'T', 'boom'), (9, 5, 1, 0, 11, 'T', 'boom');
             INSERT INTO fingerprint VALUES (11, 'boom', 'boom');
             INSERT INTO job_name (job_id, job) VALUES (1, 'unit');
             INSERT INTO result_day VALUES (19675, 1, 1, 1, 1, 1, 1, 30, 1700000000, NULL),
                                           (19675, 1, 2, 1, 1, 0, 0, 20, 1700000100, NULL);
             DELETE FROM day_pending;
             INSERT INTO quarantine (test_id, job, classname, name, file, since, until, reason,
                                     retries_per_day, flake_rate)
             VALUES ({a1}, 'unit', 'A', 'a', '{jenkins}', 100, 900, 'flaky', 1, 0.5),
                    ({a2}, 'unit', 'A', 'a', '{copy}', 200, 900, 'flaky', 1, 0.5);
             INSERT INTO quarantine_event (at, test_id, job, classname, name, action, reason)
             VALUES (100, {a1}, 'unit', 'A', 'a', 'added', 'flaky');"
        ))
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let (a, b) = (id("A", "a", "t/ATest.php"), id("B", "b", "t/BTest.php"));
    let mut rows = Vec::new();
    store
        .for_each_result(&[5, 9], |_, r| {
            rows.push((r.run_key, r.test_id, r.outcome, r.failures))
        })
        .unwrap();
    rows.sort();
    let mut want = vec![
        (5, a, 2, 1),
        (9, a, 0, 0),
        (5, b, 0, 0),
        (9, b, 0, 0),
        (9, c, 0, 0),
    ];
    want.sort();
    assert_eq!(rows, want);
    let failures: Vec<_> = store
        .failures(&[5, 9])
        .unwrap()
        .into_iter()
        .map(|f| (f.run_key, f.test_id, f.attempt))
        .collect();
    assert_eq!(failures, vec![(5, a, 1)]);
    let mut tests: Vec<_> = store
        .test_counts()
        .unwrap()
        .into_iter()
        .map(|t| (t.classname, t.file, t.runs))
        .collect();
    tests.sort();
    assert_eq!(
        tests,
        vec![
            ("A".into(), Some("t/ATest.php".into()), 2),
            ("B".into(), Some("t/BTest.php".into()), 2),
            ("C".into(), Some("t/CTest.php".into()), 1),
        ]
    );
    // The merged test's day is read from its results until it is rolled up again.
    assert_eq!(store.pending_days().unwrap(), Some(vec![19675]));
    let quarantine: Vec<_> = store
        .quarantine_rows()
        .unwrap()
        .into_iter()
        .map(|q| (q.test_id, q.file, q.released_at, q.release_reason))
        .collect();
    assert_eq!(
        quarantine,
        vec![
            (a, Some("t/ATest.php".into()), None, None),
            (
                a,
                Some("t/ATest.php".into()),
                Some(200),
                Some("merged".into())
            ),
        ]
    );
    let events: Vec<_> = store
        .quarantine_events()
        .unwrap()
        .into_iter()
        .map(|e| e.test_id)
        .collect();
    assert_eq!(events, vec![a]);
}

/// A database at schema v5 (hashed test ids in every result, failure and aggregate row;
/// whole paths in report_file) upgrades to small test keys and split paths with every row
/// kept: reads give the same test ids, in the same order, and the same paths.
#[test]
fn v5_database_upgrades_to_test_keys_keeping_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v5.db");
    let report = parse_bytes(
        br#"<testsuite><testcase classname="C" name="a"/><testcase classname="C" name="new"/></testsuite>"#,
    )
    .unwrap();
    // `a` is the id of C.a, which the report below runs again; `new` gets a key after it.
    let (a, new) = (report.cases[0].identity().0, report.cases[1].identity().0);
    let b = i64::MAX;
    let paths = [
        "",
        "r.xml",
        "dir/",
        "out/x//y.xml",
        "ci/reports/unit/4102-1/TEST-com.acme.FooTest.xml",
        "ci/reports/unit/4103-1/TEST-com.acme.FooTest.xml",
        "/abs/ü/t.xml",
    ];
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        for (_, sql) in &migrate::MIGRATIONS[..5] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 5).unwrap();
        conn.execute_batch(&format!(
            "INSERT INTO run (run_key, commit_sha, branch, job, ci_run_id, attempt, started_at)
             VALUES (5, 'abc123', 'main', 'unit', '77', 1, 1700000000),
                    (9, 'def456', 'main', 'unit', '78', 1, 1700000100);
             INSERT INTO test (test_id, classname, name, file) VALUES ({b}, 'C', 'b', 'c.rs'), ({a}, 'C', 'a', NULL);
             INSERT INTO result VALUES (5, {a}, 1, 2, 1, 30), (5, {b}, 0, 1, 0, 10), (9, {b}, 2, 1, 1, 7);
             INSERT INTO failure VALUES (5, {a}, 1, 0, 11, 'T', 'boom'), (9, {b}, 1, 1, 12, NULL, 'bang');
             INSERT INTO fingerprint VALUES (11, 'boom', 'boom'), (12, 'bang', 'bang');
             INSERT INTO job_name (job_id, job) VALUES (1, 'unit');
             INSERT INTO result_day (day, job_id, test_id, runs, attempts, failures, failed_runs, duration_ms, last_seen, odd)
             VALUES (19675, 1, {a}, 1, 2, 1, 0, 30, 1700000000, x'01'), (19675, 1, {b}, 2, 2, 1, 1, 17, 1700000100, NULL);
             DELETE FROM day_pending;"
        ))
        .unwrap();
        for (i, p) in paths.iter().enumerate() {
            conn.execute(
                "INSERT INTO report_file VALUES (5, ?1, ?2, ?3)",
                rusqlite::params![vec![i as u8; 16], p, i as i64],
            )
            .unwrap();
        }
    }
    let mut store = Store::open(&path).unwrap();
    let mut rows = Vec::new();
    store
        .for_each_result(&[5, 9], |pos, r| {
            rows.push((
                pos,
                r.run_key,
                r.test_id,
                r.outcome,
                r.attempts,
                r.failures,
                r.duration_ms,
            ))
        })
        .unwrap();
    assert_eq!(
        rows,
        vec![
            (0, 5, a, 1, 2, 1, 30),
            (0, 5, b, 0, 1, 0, 10),
            (1, 9, b, 2, 1, 1, 7)
        ]
    );
    let failures: Vec<_> = store
        .failures(&[5, 9])
        .unwrap()
        .into_iter()
        .map(|f| (f.run_key, f.test_id, f.attempt, f.is_error, f.fingerprint))
        .collect();
    assert_eq!(failures, vec![(5, a, 1, false, 11), (9, b, 1, true, 12)]);
    assert_eq!(
        store.failure_messages(5, a).unwrap(),
        vec![(1, Some("T".to_string()), Some("boom".to_string()))]
    );
    assert_eq!(store.result(9, b).unwrap().map(|r| r.duration_ms), Some(7));
    assert_eq!(store.result(9, a).unwrap(), None);
    let mut days = Vec::new();
    store
        .for_each_day_row(19675, 19675, None, |d| {
            days.push((d.test_id, d.runs, d.duration_ms, d.odd.clone()))
        })
        .unwrap();
    days.sort();
    assert_eq!(days, vec![(a, 1, 30, vec![1]), (b, 2, 17, vec![])]);
    let counts: Vec<_> = store
        .test_counts()
        .unwrap()
        .into_iter()
        .map(|t| (t.test_id, t.runs))
        .collect();
    assert_eq!(
        counts,
        vec![
            (crate::model::TestIdentity(a).hex(), 1),
            (crate::model::TestIdentity(b).hex(), 2)
        ]
    );
    // A new run of a stored test and a new test: the stored test keeps its key, and the
    // run's results still come by test id.
    let mut batch = store.batch().unwrap();
    let (run, created) = batch
        .run(&RunMeta {
            run_id: "79".into(),
            ..meta(1)
        })
        .unwrap();
    assert!(created);
    batch
        .add_file(run, "ff", "t.xml", &report.cases, 2, None)
        .unwrap();
    batch.commit().unwrap();
    let mut ids = Vec::new();
    store
        .for_each_result(&[run], |_, r| ids.push(r.test_id))
        .unwrap();
    let mut sorted = vec![a, new];
    sorted.sort();
    assert_eq!(ids, sorted);
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let keys: Vec<(i64, i64)> = conn
        .prepare("SELECT test_key, test_id FROM test ORDER BY test_key")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let mut by_id = [(1, a), (2, b)];
    by_id.sort_by_key(|k| k.1);
    let by_id: Vec<(i64, i64)> = by_id
        .iter()
        .enumerate()
        .map(|(i, k)| (i as i64 + 1, k.1))
        .collect();
    assert_eq!(keys, [by_id, vec![(3, new)]].concat());
    let stored: Vec<(i64, String)> = conn
        .prepare(
            "SELECT f.testcases, p.part || f.folder || n.part FROM report_file f
             JOIN path_part p ON p.part_id = f.prefix JOIN path_part n ON n.part_id = f.name
             WHERE f.run_key = 5 ORDER BY f.testcases",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let want: Vec<(i64, String)> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| (i as i64, p.to_string()))
        .collect();
    assert_eq!(stored, want);
}

/// Paths are split losslessly into the parts the store interns, the same way in Rust as
/// the v6 migration does in SQL.
#[test]
fn report_paths_split_into_prefix_folder_and_name() {
    use write::split_path;
    for (p, want) in [
        ("", ("", "", "")),
        ("r.xml", ("", "", "r.xml")),
        ("dir/", ("", "dir/", "")),
        ("a/b.xml", ("", "a/", "b.xml")),
        ("a/b/c/d.xml", ("a/b/", "c/", "d.xml")),
        ("x//y", ("x/", "/", "y")),
        ("/t.xml", ("", "/", "t.xml")),
    ] {
        assert_eq!(split_path(p), want, "{p}");
    }
}

/// Reports past the size from which the writer walks the test table instead of looking
/// each test up: into a store holding some of their tests, all of them, or far more tests
/// than the report (the walk gives up part-way and the rest are looked up). Every test is
/// stored once, with its own names, and counted in every run that reported it.
#[test]
fn big_reports_store_each_test_once_whatever_the_store_already_holds() {
    fn report(tests: impl Iterator<Item = usize>) -> crate::junit::Report {
        let mut xml = String::from("<testsuite name=\"S\">");
        for t in tests {
            xml.push_str(&format!(
                "<testcase classname=\"pkg.C{}\" name=\"t{t}\"/>",
                t % 7
            ));
        }
        xml.push_str("</testsuite>");
        parse_bytes(xml.as_bytes()).unwrap()
    }
    for mut store in stores() {
        let runs = [
            report(0..3000),
            report((0..3000).step_by(10).chain(3000..3300)),
            report(0..3300),
            report(3300..3600),
        ];
        for (i, r) in runs.iter().enumerate() {
            let mut batch = store.batch().unwrap();
            let (k, _) = batch.run(&meta(i as u32 + 1)).unwrap();
            batch
                .add_file(k, &format!("h{i}"), "r.xml", &r.cases, 0, None)
                .unwrap();
            batch.commit().unwrap();
        }
        let counts = store.test_counts().unwrap();
        assert_eq!(counts.len(), 3600);
        for c in &counts {
            let t: usize = c.name.strip_prefix('t').unwrap().parse().unwrap();
            assert_eq!(c.classname, format!("pkg.C{}", t % 7), "{}", c.name);
            let expected_runs = match t {
                0..=2999 if t % 10 == 0 => 3,
                0..=3299 => 2,
                _ => 1,
            };
            assert_eq!(c.runs, expected_runs, "{}", c.name);
            assert_eq!(c.passed, expected_runs, "{}", c.name);
        }
    }
}

/// A file-backed SQLite database and, when a test server is set, a PostgreSQL one: paths
/// that two stores can open at once. The temporary folder must outlive the stores.
fn shared_databases(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.join("shared.db")];
    if let Some(url) = pg::test_server("store tests") {
        out.push(pg::scratch_database(&url).unwrap());
    }
    out
}

fn store_run(store: &mut Store, attempt: u32) -> i64 {
    let report = parse_bytes(REPORT.as_bytes()).unwrap();
    let mut batch = store.batch().unwrap();
    let (run_key, _) = batch.run(&meta(attempt)).unwrap();
    batch
        .add_file(run_key, "h1", "r.xml", &report.cases, 4, Some(1.5))
        .unwrap();
    batch.commit().unwrap();
    run_key
}

#[test]
fn results_of_reads_the_pairs_that_exist_as_single_reads_do() {
    for mut store in stores() {
        let keys = [store_run(&mut store, 1), store_run(&mut store, 2)];
        let mut all = Vec::new();
        store.for_each_result(&keys, |_, r| all.push(r)).unwrap();
        assert_eq!(all.len(), 8);
        let mut pairs: Vec<(i64, i64)> = all.iter().map(|r| (r.run_key, r.test_id)).collect();
        // A test the run did not report and a run that does not exist: left out, no error.
        pairs.push((keys[0], 0x7777));
        pairs.push((keys[1] + 1000, all[0].test_id));
        let got = store.results_of(&pairs).unwrap();
        assert_eq!(got.len(), all.len());
        for r in &all {
            let one = store.result(r.run_key, r.test_id).unwrap().unwrap();
            let batched = &got[&(r.run_key, r.test_id)];
            assert_eq!(
                (
                    batched.outcome,
                    batched.attempts,
                    batched.failures,
                    batched.duration_ms
                ),
                (one.outcome, one.attempts, one.failures, one.duration_ms)
            );
        }
        assert!(store.results_of(&[]).unwrap().is_empty());
        // What REPORT says, per test: (outcome, attempts, failures, duration).
        let names = store
            .tests_by_id(&all.iter().map(|r| r.test_id).collect::<Vec<_>>())
            .unwrap();
        let mut seen: Vec<(String, (u8, u32, u32, i64))> = all
            .iter()
            .filter(|r| r.run_key == keys[0])
            .map(|r| {
                let b = &got[&(r.run_key, r.test_id)];
                (
                    names[&r.test_id].name.clone(),
                    (b.outcome, b.attempts, b.failures, b.duration_ms),
                )
            })
            .collect();
        seen.sort();
        let of = |name: &str| seen.iter().find(|(n, _)| n == name).unwrap().1;
        assert_eq!(of("passes").1, 1);
        assert_eq!((of("passes").2, of("passes").3), (0, 500));
        assert_eq!((of("flakes").1, of("flakes").2), (2, 1));
        assert_eq!((of("fails").1, of("fails").2), (2, 2));
        assert_eq!((of("skips").1, of("skips").2), (0, 0));
    }
}

#[test]
fn a_read_snapshot_does_not_see_a_run_committed_during_it() {
    let dir = tempfile::tempdir().unwrap();
    for db in shared_databases(dir.path()) {
        let mut writer = Store::open(&db).unwrap();
        store_run(&mut writer, 1);
        let reader = Store::open(&db).unwrap();
        let all = RunFilter::default();
        let (before, during) = reader
            .read_snapshot(|| {
                let before = reader.runs(&all)?.len();
                store_run(&mut writer, 2);
                // Nested snapshots share the outer one.
                let during = reader.read_snapshot(|| Ok(reader.runs(&all)?.len()))?;
                Ok((before, during))
            })
            .unwrap();
        assert_eq!((before, during), (1, 1), "{}", db.display());
        assert_eq!(reader.runs(&all).unwrap().len(), 2, "{}", db.display());
    }
}

/// Results stored before checkout folders were stripped (absolute files in test ids), then
/// migrated, on both backends: a failed attempt in Jenkins' `workspace/shop` and its passing
/// retry in `workspace/shop@2` on one commit become one test with both results, its
/// quarantine follows, and its daily rows are rebuilt from the results.
#[test]
fn stored_checkout_folders_are_stripped_by_the_migration_on_both_backends() {
    use crate::model::{Attempt, AttemptOutcome, Failure, TestCase, TestIdentity};
    let dir = tempfile::tempdir().unwrap();
    let mut dbs = vec![dir.path().join("old.db")];
    if let Some(url) = pg::test_server("stored_checkout_folders_are_stripped") {
        dbs.push(pg::scratch_database(&url).unwrap());
    }
    let jenkins = "/var/lib/jenkins/workspace/shop/t/ATest.php";
    let copy = "/var/lib/jenkins/workspace/shop@2/t/ATest.php";
    let case = |file: &str, outcome: AttemptOutcome| TestCase {
        classname: "A".into(),
        name: "a".into(),
        file: Some(file.into()),
        suite: None,
        attempts: vec![Attempt {
            outcome,
            duration_s: Some(0.5),
            failure: (outcome == AttemptOutcome::Failed).then(|| Failure {
                kind: None,
                message: Some("boom".into()),
                body: None,
            }),
        }],
    };
    let (old, old_copy) = (
        TestIdentity::new("A", "a", Some(jenkins)).0,
        TestIdentity::new("A", "a", Some(copy)).0,
    );
    let new = TestIdentity::new("A", "a", Some("t/ATest.php")).0;
    let day = 1_700_000_000 / 86_400;
    for db in dbs {
        let pg = !db.to_string_lossy().ends_with(".db");
        {
            let mut store = Store::open(&db).unwrap();
            let mut batch = store.batch().unwrap();
            for (attempt, file, outcome) in [
                (1, jenkins, AttemptOutcome::Failed),
                (2, copy, AttemptOutcome::Passed),
            ] {
                let (run, _) = batch.run(&meta(attempt)).unwrap();
                batch
                    .add_file(
                        run,
                        &format!("{attempt:064}"),
                        "r.xml",
                        &[case(file, outcome)],
                        1,
                        None,
                    )
                    .unwrap();
            }
            batch.commit().unwrap();
            store.rollup(day).unwrap();
            assert_eq!(store.pending_days().unwrap(), Some(vec![]));
            let undo = format!(
                "INSERT INTO quarantine (test_id, job, classname, name, file, since, until, reason,
                                         retries_per_day, flake_rate)
                 VALUES ({old}, 'unit', 'A', 'a', '{jenkins}', 100, 900, 'flaky', 1, 0.5),
                        ({old_copy}, 'unit', 'A', 'a', '{copy}', 200, 900, 'flaky', 1, 0.5);"
            );
            drop(store);
            if pg {
                let mut c =
                    postgres::Client::connect(db.to_str().unwrap(), postgres::NoTls).unwrap();
                c.batch_execute(&undo).unwrap();
                c.execute(
                    "DELETE FROM flakehound_migrations WHERE name = '0006_checkout_relative_files.sql'",
                    &[],
                )
                .unwrap();
            } else {
                let c = rusqlite::Connection::open(&db).unwrap();
                c.execute_batch(&undo).unwrap();
                c.pragma_update(None, "user_version", 6).unwrap();
            }
        }
        let mut store = Store::open(&db).unwrap();
        let runs: Vec<i64> = store
            .runs(&RunFilter::default())
            .unwrap()
            .iter()
            .map(|r| r.run_key)
            .collect();
        let mut rows = Vec::new();
        store
            .for_each_result(&runs, |_, r| rows.push((r.test_id, r.outcome, r.failures)))
            .unwrap();
        rows.sort();
        assert_eq!(rows, vec![(new, 0, 0), (new, 2, 1)], "{db:?}");
        let failures: Vec<i64> = store
            .failures(&runs)
            .unwrap()
            .iter()
            .map(|f| f.test_id)
            .collect();
        assert_eq!(failures, vec![new]);
        assert_eq!(store.pending_days().unwrap(), Some(vec![day]), "{db:?}");
        let quarantine: Vec<_> = store
            .quarantine_rows()
            .unwrap()
            .into_iter()
            .map(|q| (q.test_id, q.file, q.released_at, q.release_reason))
            .collect();
        assert_eq!(
            quarantine,
            vec![
                (new, Some("t/ATest.php".into()), None, None),
                (
                    new,
                    Some("t/ATest.php".into()),
                    Some(200),
                    Some("merged".into())
                ),
            ],
            "{db:?}"
        );
        // The rebuilt day holds both runs of the one test.
        store.rollup(day).unwrap();
        let mut day_rows = Vec::new();
        store
            .for_each_day_row(day, day, None, |d| {
                day_rows.push((d.test_id, d.runs, d.failures))
            })
            .unwrap();
        assert_eq!(day_rows, vec![(new, 2, 1)], "{db:?}");
    }
}

/// A run stored under a short SHA joins the commit when its full SHA arrives, on both
/// backends: attempt 1 failed under `9f8e7d6`, attempt 2 passed under the full SHA.
#[test]
fn a_short_sha_stored_first_joins_its_full_sha() {
    let full = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432";
    for mut store in stores() {
        let mut batch = store.batch().unwrap();
        for (attempt, commit) in [(1, "9F8E7D6"), (2, full)] {
            batch
                .run(&RunMeta {
                    commit: commit.into(),
                    ..meta(attempt)
                })
                .unwrap();
        }
        batch.commit().unwrap();
        let commits: Vec<String> = store
            .runs(&RunFilter::default())
            .unwrap()
            .into_iter()
            .map(|r| r.commit)
            .collect();
        assert_eq!(commits, [full, full]);
    }
}

/// `.cargo/config.toml` builds the bundled SQLite without allocation statistics and
/// without the shared page-cache group: both take a global mutex on hot paths (every
/// allocation; every page-cache call of every `serve` connection). A build that lost the
/// flags (an `[env]` not applied, a system SQLite) would be slower without failing.
#[test]
fn bundled_sqlite_is_built_without_global_allocation_locks() {
    let store = SqliteStore::open_in_memory().unwrap();
    let mut stmt = store.conn.prepare("PRAGMA compile_options").unwrap();
    let options: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
        "{options:?}"
    );
    assert!(
        !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
        "{options:?}"
    );
}

/// The files in a folder, by name.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn store_report(store: &mut Store) {
    let report = parse_bytes(REPORT.as_bytes()).unwrap();
    let mut batch = store.batch().unwrap();
    let (run, _) = batch.run(&meta(1)).unwrap();
    batch
        .add_file(run, "h", "r.xml", &report.cases, 4, None)
        .unwrap();
    batch.commit().unwrap();
}

#[test]
fn a_new_database_appears_whole_in_wal_mode_with_nothing_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let (mut store, new) = Store::start_new(&db).unwrap();
    store_report(&mut store);
    assert!(
        !db.exists(),
        "the path stays free until the database is complete"
    );
    assert!(store.put_in_place(new).unwrap());
    assert_eq!(names_in(dir.path()), ["h.db"]);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let store = Store::open_read_only(&db).unwrap();
    assert_eq!(store.runs(&RunFilter::default()).unwrap().len(), 1);
}

#[test]
fn a_database_created_meanwhile_is_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let (mut built, new) = Store::start_new(&db).unwrap();
    store_report(&mut built);
    // Another process (a `serve`, another ingest) creates the database and stores a run.
    let mut other = Store::open(&db).unwrap();
    let mut batch = other.batch().unwrap();
    let mut m = meta(1);
    m.run_id = "other".into();
    batch.run(&m).unwrap();
    batch.commit().unwrap();
    assert!(!built.put_in_place(new).unwrap());
    let runs = other.runs(&RunFilter::default()).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].run_id, "other");
    drop(other);
    assert_eq!(names_in(dir.path()), ["h.db"], "the side file is removed");
}

#[test]
fn an_existing_or_dangling_path_or_a_uri_is_opened_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    drop(Store::open(&db).unwrap());
    assert!(Store::start_new(&db).is_none());
    let dangling = dir.path().join("link.db");
    std::os::unix::fs::symlink(dir.path().join("missing/x.db"), &dangling).unwrap();
    assert!(Store::start_new(&dangling).is_none());
    assert!(Store::start_new(&dir.path().join("no-such-folder/h.db")).is_none());
    // SQLite reads `file:` as a URI: a side file of that name would be another file.
    assert!(Store::start_new(Path::new("file:u.db")).is_none());
    assert_eq!(names_in(dir.path()), ["h.db", "link.db"]);
}

#[test]
fn files_of_a_deleted_database_are_never_replayed_into_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    // A database deleted without its WAL: SQLite would replay that WAL into a new file
    // that is not empty, bringing the deleted database's pages back.
    for companion in ["h.db-wal", "h.db-journal"] {
        std::fs::write(dir.path().join(companion), b"left behind").unwrap();
        assert!(Store::start_new(&db).is_none(), "{companion}");
        std::fs::remove_file(dir.path().join(companion)).unwrap();
    }
    // One that appears while the database is built: not put in place.
    let (mut store, new) = Store::start_new(&db).unwrap();
    store_report(&mut store);
    std::fs::write(dir.path().join("h.db-wal"), b"left behind").unwrap();
    assert!(!store.put_in_place(new).unwrap());
    assert_eq!(names_in(dir.path()), ["h.db-wal"]);
}
#[test]
fn an_unfinished_build_leaves_nothing_and_a_dead_builders_side_files_are_swept() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    // Dropped before it is put in place (an error, a panic): nothing stays.
    let (mut store, new) = Store::start_new(&db).unwrap();
    store_report(&mut store);
    drop(store);
    drop(new);
    assert!(names_in(dir.path()).is_empty());
    // A killed builder's side file and its WAL, a WAL whose side file is gone, a side
    // file a builder holds (its lock, in another process or container), and a file that
    // only looks alike.
    let dead = "h.db.flakehound-new-77-0badcafe";
    let orphan = "h.db.flakehound-new-78-00000000-wal";
    let held = "h.db.flakehound-new-1-12345678";
    let other = "h.db.flakehound-newer";
    for name in [dead, &format!("{dead}-wal"), orphan, held, other] {
        std::fs::write(dir.path().join(name), b"").unwrap();
    }
    let holder = std::fs::File::open(dir.path().join(held)).unwrap();
    rustix::fs::flock(&holder, rustix::fs::FlockOperation::LockExclusive).unwrap();
    let (store, new) = Store::start_new(&db).unwrap();
    drop((store, new));
    assert_eq!(names_in(dir.path()), [held, other]);
}
