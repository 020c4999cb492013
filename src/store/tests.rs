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
