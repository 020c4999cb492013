//! The PostgreSQL backend against the SQLite one: the same history gives byte-identical
//! outputs, and concurrent writers (several `serve` replicas) store every report once.
//! Needs `FLAKEHOUND_TEST_PG` (see scripts/pg-test-server.sh); fails without it under CI.

mod common;

use std::path::{Path, PathBuf};

use common::{flakehound, surefire_xml, O};
use flakehound::model::RunMeta;
use flakehound::store::{pg, RunFilter, Store};

fn scratch(test: &str) -> Option<PathBuf> {
    let url = pg::test_server(test)?;
    Some(pg::scratch_database(&url).unwrap())
}

fn ok_stdout(db: &Path, args: &[&str]) -> Vec<u8> {
    let out = flakehound(db, args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn demo_history_gives_byte_identical_outputs_on_sqlite_and_postgres() {
    let Some(pg_db) = scratch("demo_history_gives_byte_identical_outputs") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("demo");
    ok_stdout(
        &dir.path().join("unused.db"),
        &["simulate", "--out", sim.to_str().unwrap()],
    );
    let manifest = sim.join("runs.csv");
    let sqlite_db = dir.path().join("demo.db");
    let ingest = ["ingest", "--manifest", manifest.to_str().unwrap(), "--json"];
    let a = ok_stdout(&sqlite_db, &ingest);
    let b = ok_stdout(&pg_db, &ingest);
    assert_eq!(a, b, "ingest summaries differ");
    let summary: serde_json::Value = serde_json::from_slice(&a).unwrap();
    assert!(summary["tests"].as_u64().unwrap() > 100_000, "{summary}");
    for args in [
        &["flaky"][..],
        &["flaky", "--format", "json"],
        &["backlog"],
        &["backlog", "--format", "md"],
        &["report"],
        &["report", "--format", "json"],
        &["report", "--format", "html"],
        &["quarantine"],
        &["quarantine", "--format", "json"],
        &["tests", "--format", "csv"],
        &["runs", "--format", "csv"],
    ] {
        let x = ok_stdout(&sqlite_db, args);
        let y = ok_stdout(&pg_db, args);
        assert!(!x.is_empty(), "{args:?} printed nothing");
        assert!(
            x == y,
            "{args:?} differs between SQLite and PostgreSQL:\n{}\n---\n{}",
            String::from_utf8_lossy(&x),
            String::from_utf8_lossy(&y)
        );
    }
}

#[test]
fn a_rejected_report_does_not_undo_the_others_on_postgres() {
    let Some(db) = scratch("a_rejected_report_does_not_undo_the_others") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("TEST-a.xml"),
        surefire_xml(&[("A", "x", O::Pass), ("A", "y", O::FlakyInRun)]),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("TEST-bad.xml"),
        "<testsuite>\n  <testcase name=\"t\">\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("TEST-c.xml"),
        surefire_xml(&[("C", "z", O::Fail)]),
    )
    .unwrap();
    let args = [
        "ingest",
        "--commit",
        "abc",
        "--job",
        "unit",
        "--run-id",
        "9",
        "--started-at",
        "2026-11-20T10:04:00Z",
        "--json",
        dir.path().to_str().unwrap(),
    ];
    let out = flakehound(&db, &args);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TEST-bad.xml:3:1"));
    let tests: serde_json::Value =
        serde_json::from_slice(&ok_stdout(&db, &["tests", "--format", "json"])).unwrap();
    assert_eq!(tests.as_array().unwrap().len(), 3, "{tests}");
    // The same files again: all recognised, nothing stored twice.
    let again: serde_json::Value = serde_json::from_slice(&flakehound(&db, &args).stdout).unwrap();
    assert_eq!(again["unchanged"].as_u64(), Some(2), "{again}");
    assert_eq!(again["tests"].as_u64(), Some(0), "{again}");
}

fn meta(run_id: String) -> RunMeta {
    RunMeta {
        commit: "c1".into(),
        branch: "main".into(),
        job: "unit".into(),
        run_id,
        attempt: 1,
        started_at: 1_763_600_000,
        duration_s: None,
        run_url: None,
    }
}

/// Store one upload (one report) the way the server's writer does.
fn upload(store: &mut Store, run_id: &str, hash: &str, xml: &str) {
    let report = flakehound::junit::parse_bytes(xml.as_bytes()).unwrap();
    let mut batch = store.batch().unwrap();
    let (k, _) = batch.run(&meta(run_id.into())).unwrap();
    if !batch.has_file(k, hash).unwrap() {
        batch
            .add_file(k, hash, "r.xml", &report.cases, 1, Some(0.5))
            .unwrap();
    }
    batch.commit().unwrap();
}

#[test]
fn writers_racing_on_the_same_run_store_each_report_once() {
    let Some(db) = scratch("writers_racing_on_the_same_run") else {
        return;
    };
    drop(Store::open(&db).unwrap());
    let xml_a = surefire_xml(&[("A", "x", O::Fail), ("A", "y", O::Pass)]);
    let xml_b = surefire_xml(&[("A", "x", O::Pass)]);
    // Eight writers (as eight replicas) each store both reports of runs 0..20: the same
    // report retried on several replicas, and two reports of one run at once.
    std::thread::scope(|s| {
        for w in 0..8 {
            let (db, xml_a, xml_b) = (&db, &xml_a, &xml_b);
            s.spawn(move || {
                let mut store = Store::open(db).unwrap();
                for run in 0..20 {
                    let run_id = format!("r{run}");
                    if (w + run) % 2 == 0 {
                        upload(&mut store, &run_id, "a", xml_a);
                        upload(&mut store, &run_id, "b", xml_b);
                    } else {
                        upload(&mut store, &run_id, "b", xml_b);
                        upload(&mut store, &run_id, "a", xml_a);
                    }
                }
            });
        }
    });
    let store = Store::open_read_only(&db).unwrap();
    let runs = store.runs(&RunFilter::default()).unwrap();
    assert_eq!(runs.len(), 20);
    let keys: Vec<i64> = runs.iter().map(|r| r.run_key).collect();
    let counts = store.report_counts().unwrap();
    assert!(keys.iter().all(|k| counts[k] == 2), "{counts:?}");
    let mut rows = Vec::new();
    store.for_each_result(&keys, |_, r| rows.push(r)).unwrap();
    assert_eq!(rows.len(), 40);
    for r in &rows {
        // x: failed in one report, passed in the other (2 attempts, flaky); y: once.
        assert!(
            (r.attempts, r.failures, r.outcome) == (2, 1, 1)
                || (r.attempts, r.failures, r.outcome) == (1, 0, 0),
            "{r:?}"
        );
    }
    assert_eq!(store.failures(&keys).unwrap().len(), 20);
    assert!(runs.iter().all(|r| r.tests_time_s == 1.0), "{runs:?}");
}

#[test]
fn every_write_of_any_replica_changes_the_version_read_caches_are_keyed_by() {
    let Some(db) = scratch("every_write_of_any_replica_changes_the_version") else {
        return;
    };
    let mut a = Store::open(&db).unwrap();
    let b = Store::open_read_only(&db).unwrap();
    let seen = b.data_version().unwrap();
    let xml = surefire_xml(&[("C", "t", O::Pass)]);
    upload(&mut a, "1", "h1", &xml);
    let after_upload = b.data_version().unwrap();
    assert_ne!(after_upload, seen, "another replica's upload is seen");
    assert_eq!(
        a.data_version().unwrap(),
        after_upload,
        "the writer sees its own"
    );
    // A quarantine change is a write that changes answers too (the bump is in its
    // transaction, whatever it changes).
    a.apply_quarantine_changes(&[]).unwrap();
    assert_ne!(b.data_version().unwrap(), after_upload);
    // Reading changes nothing.
    let now = b.data_version().unwrap();
    b.runs(&RunFilter::default()).unwrap();
    assert_eq!(b.data_version().unwrap(), now);
}

#[test]
fn the_gate_judges_a_run_the_same_when_asked_again_on_postgres_and_sqlite() {
    let Some(pg_db) = scratch("the_gate_judges_a_run_the_same_when_asked_again") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let a1 = dir.path().join("a1.xml");
    let a2 = dir.path().join("a2.xml");
    std::fs::write(
        &a1,
        surefire_xml(&[("K", "t", O::Pass), ("K", "u", O::Fail)]),
    )
    .unwrap();
    std::fs::write(
        &a2,
        surefire_xml(&[("K", "t", O::Fail), ("K", "u", O::Pass)]),
    )
    .unwrap();
    let run = |attempt: &str, at: &str| {
        vec![
            "--commit".to_string(),
            "1234567".into(),
            "--branch".into(),
            "main".into(),
            "--job".into(),
            "j".into(),
            "--run-id".into(),
            "1".into(),
            "--attempt".into(),
            attempt.into(),
            "--started-at".into(),
            at.into(),
        ]
    };
    let sqlite_db = dir.path().join("gate.db");
    let mut verdicts = Vec::new();
    for db in [&sqlite_db, &pg_db] {
        let mut ingest = vec!["ingest".to_string()];
        ingest.extend(run("1", "2026-11-20T10:00:00Z"));
        ingest.push(a1.to_str().unwrap().into());
        let ingest: Vec<&str> = ingest.iter().map(String::as_str).collect();
        ok_stdout(db, &ingest);
        let mut gate = vec!["gate".to_string(), "--json".into()];
        gate.extend(run("2", "2026-11-20T10:30:00Z"));
        gate.push(a2.to_str().unwrap().into());
        let gate: Vec<&str> = gate.iter().map(String::as_str).collect();
        for _ in 0..2 {
            let out = flakehound(db, &gate);
            verdicts.push((out.status.code(), out.stdout));
        }
    }
    let first: serde_json::Value = serde_json::from_slice(&verdicts[0].1).unwrap();
    assert_eq!(verdicts[0].0, Some(1), "{first}");
    assert_eq!(first["unforgiven"][0]["name"], "t", "{first}");
    for (i, v) in verdicts.iter().enumerate() {
        assert!(
            *v == verdicts[0],
            "call {i} (0, 1: SQLite; 2, 3: PostgreSQL) differs:\n{}",
            String::from_utf8_lossy(&v.1)
        );
    }
}

/// `gate --no-ingest` judges by the PostgreSQL database's history as by a SQLite file's (a
/// URL is no file: it was once judged as if there were no history, forgiving nothing).
#[test]
fn gate_no_ingest_reads_the_history_on_postgres_as_on_sqlite() {
    let Some(pg_db) = scratch("gate_no_ingest_reads_the_history_on_postgres") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fail = dir.path().join("fail.xml");
    let pass = dir.path().join("pass.xml");
    std::fs::write(&fail, surefire_xml(&[("K", "u", O::Fail)])).unwrap();
    std::fs::write(&pass, surefire_xml(&[("K", "u", O::Pass)])).unwrap();
    let meta = |commit: &str, run: &str, attempt: &str, at: &str| -> Vec<String> {
        [
            "--commit",
            commit,
            "--branch",
            "main",
            "--job",
            "j",
            "--run-id",
            run,
            "--attempt",
            attempt,
            "--started-at",
            at,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let sqlite_db = dir.path().join("gate.db");
    for db in [&sqlite_db, &pg_db] {
        // `u` failed and passed on one commit: known flaky.
        for (attempt, file, at) in [
            ("1", &fail, "2026-11-20T10:00:00Z"),
            ("2", &pass, "2026-11-20T10:20:00Z"),
        ] {
            let mut args = vec!["ingest".to_string()];
            args.extend(meta("1234567", "1", attempt, at));
            args.push(file.to_str().unwrap().into());
            ok_stdout(db, &args.iter().map(String::as_str).collect::<Vec<_>>());
        }
        let mut args = vec!["gate".to_string(), "--no-ingest".into(), "--json".into()];
        args.extend(meta("89abcde", "2", "1", "2026-11-21T10:00:00Z"));
        args.push(fail.to_str().unwrap().into());
        let out = flakehound(db, &args.iter().map(String::as_str).collect::<Vec<_>>());
        let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(0), "{}: {verdict}", db.display());
        assert_eq!(verdict["forgiven"][0]["name"], "u", "{verdict}");
    }
}
