//! The binary as users and scripts run it: exit codes, summaries, stable outputs.

mod common;

use common::{flakehound, surefire_xml, History, O};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn ingest_summary_rejections_and_idempotence() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.db");
    let reports = dir.path().join("reports");
    std::fs::create_dir(&reports).unwrap();
    std::fs::write(
        reports.join("TEST-a.xml"),
        surefire_xml(&[
            ("A", "x", O::Pass),
            ("A", "y", O::FlakyInRun),
            ("A", "z", O::Skip),
        ]),
    )
    .unwrap();
    std::fs::write(
        reports.join("TEST-bad.xml"),
        "<testsuite>\n  <testcase name=\"t\">\n",
    )
    .unwrap();
    std::fs::write(reports.join("notes.txt"), "not a report").unwrap();
    let args = [
        "ingest",
        "--commit",
        "abc",
        "--branch",
        "main",
        "--job",
        "unit",
        "--run-id",
        "9",
        "--attempt",
        "1",
        "--started-at",
        "2026-11-20T10:04:00Z",
        "--json",
    ];
    let mut with_path: Vec<&str> = args.to_vec();
    let r = reports.to_str().unwrap();
    with_path.push(r);
    let out = flakehound(&db, &with_path);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("TEST-bad.xml:3:1: unexpected end of file"),
        "{err}"
    );
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    for key in [
        "files", "runs", "tests", "attempts", "passed", "failed", "skipped", "rejected",
    ] {
        assert!(summary.get(key).is_some(), "missing {key}");
    }
    assert_eq!(summary["files"], 2);
    assert_eq!(summary["tests"], 3);
    assert_eq!(summary["attempts"], 3);
    assert_eq!(summary["passed"], 2);
    assert_eq!(summary["skipped"], 1);
    assert_eq!(summary["rejected"], 1);

    let tests_before = stdout(&flakehound(&db, &["tests", "--format", "json"]));
    // The same reports again: nothing new is stored.
    std::fs::remove_file(reports.join("TEST-bad.xml")).unwrap();
    let again = flakehound(&db, &with_path);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&again)).unwrap();
    assert_eq!(summary["tests"], 0);
    assert_eq!(summary["unchanged"], 1);
    assert_eq!(
        stdout(&flakehound(&db, &["tests", "--format", "json"])),
        tests_before
    );
    let tests: serde_json::Value = serde_json::from_str(&tests_before).unwrap();
    assert_eq!(tests.as_array().unwrap().len(), 3);
    assert_eq!(tests[1]["name"], "y");
    assert_eq!(tests[1]["flaky"], 1);

    // The same run under another branch: kept as stored, and said so.
    let other: Vec<&str> = with_path
        .iter()
        .map(|a| if *a == "main" { "feature/x" } else { *a })
        .collect();
    let out = flakehound(&db, &other);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("stored with branch \"main\"; this ingest says \"feature/x\""),
        "{err}"
    );
    let runs = stdout(&flakehound(&db, &["runs", "--format", "json"]));
    assert!(
        runs.contains("\"branch\": \"main\"") && !runs.contains("feature/x"),
        "{runs}"
    );

    // A file that cannot be read has no place in it to name.
    let missing = dir.path().join("missing.xml");
    let mut args_missing: Vec<&str> = args.to_vec();
    args_missing.push(missing.to_str().unwrap());
    let out = flakehound(&db, &args_missing);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("missing.xml: cannot read: "), "{err}");
    assert!(!err.contains(":0:0"), "{err}");
}

#[test]
fn manifest_backfill_and_stable_listings() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.db");
    for (i, o) in [O::Pass, O::Fail, O::Pass].iter().enumerate() {
        let run = dir.path().join(format!("runs/{i}"));
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("r.xml"), surefire_xml(&[("A", "t", *o)])).unwrap();
    }
    std::fs::write(
        dir.path().join("runs.csv"),
        "path,commit,branch,job,run_id,attempt,started_at,duration_s\n\
         runs/0,c1,main,unit,100,1,2026-11-20T10:00:00Z,300\n\
         runs/1,c2,main,unit,101,1,2026-11-20T11:00:00Z,310\n\
         runs/2,c2,main,unit,101,2,2026-11-20T11:20:00Z,305\n",
    )
    .unwrap();
    let m = dir.path().join("runs.csv");
    let out = flakehound(&db, &["ingest", "--manifest", m.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("3 files, 3 runs, 3 tests"),
        "{}",
        stdout(&out)
    );
    let csv1 = stdout(&flakehound(&db, &["runs", "--format", "csv"]));
    assert_eq!(csv1.lines().count(), 4);
    assert!(csv1.starts_with("started_at,job,branch,commit,run_id,attempt,duration_s,reports"));
    assert_eq!(csv1, stdout(&flakehound(&db, &["runs", "--format", "csv"])));

    let flaky = flakehound(&db, &["flaky", "--format", "json"]);
    let flaky: serde_json::Value = serde_json::from_slice(&flaky.stdout).unwrap();
    let t = &flaky[0];
    for key in [
        "classname",
        "name",
        "file",
        "job",
        "status",
        "runs",
        "attempts",
        "failures",
        "flaky_commits",
        "flake_rate",
        "flake_rate_low",
        "flake_rate_high",
        "first_flake_at",
        "last_flake_at",
        "retries_per_day",
        "ci_minutes_per_day",
        "fingerprints",
        "observed_retries",
        "job_failure_rate",
    ] {
        assert!(t.get(key).is_some(), "missing {key}");
    }
    assert_eq!(t["status"], "flaky");
    assert_eq!(t["flaky_commits"], 1);
    assert_eq!(t["first_flake_at"], "2026-11-20T11:00:00Z");
    let csv = stdout(&flakehound(&db, &["flaky", "--format", "csv"]));
    assert!(csv.starts_with(
        "classname,name,file,job,status,runs,attempts,failures,flaky_commits,flake_rate"
    ));
    // Every flat JSON key is a CSV column too (the lists `evidence` and `flakes_by_day` are
    // JSON only); new columns come after the first ones, whose positions scripts rely on.
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    for key in t.as_object().unwrap().keys() {
        if !["evidence", "flakes_by_day"].contains(&key.as_str()) {
            assert!(header.contains(key), "{key} is not a column: {header:?}");
        }
    }
    assert_eq!(header[19], "test_id");
    assert_eq!(header[20], "owners");
    let row = reader.records().next().unwrap().unwrap();
    let at = |k: &str| {
        row.get(header.iter().position(|h| h == k).unwrap())
            .unwrap()
            .to_string()
    };
    assert_eq!(at("flaky_evidence"), "same-sha");
    assert_eq!(at("reason"), t["reason"].as_str().unwrap());
}

#[test]
fn bad_manifest_and_usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.db");
    std::fs::write(dir.path().join("m.csv"), "path,commit\nx,y\n").unwrap();
    let m = dir.path().join("m.csv");
    let out = flakehound(&db, &["ingest", "--manifest", m.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("lacks column `branch`"),
        "{}",
        stderr(&out)
    );
    let out = flakehound(&db, &["ingest", "--job", "j", "x.xml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no commit"), "{}", stderr(&out));
    let out = flakehound(&dir.path().join("missing.db"), &["flaky"]);
    assert_eq!(out.status.code(), Some(2));
    // A refused ingest creates no database, and leaves nothing of the one it started.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["m.csv"]);
}

#[test]
fn newer_schema_is_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "user_version", 999).unwrap();
    }
    std::fs::write(
        dir.path().join("r.xml"),
        surefire_xml(&[("A", "t", O::Pass)]),
    )
    .unwrap();
    let r = dir.path().join("r.xml");
    let out = flakehound(
        &db,
        &["ingest", "--commit", "c", "--job", "j", r.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("newer than this flakehound"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn read_only_database_is_a_clear_error() {
    let mut h = History::new();
    h.run("unit", "main", "c", "1", 1, 0.0, &[("A", "t", O::Pass)]);
    drop(h.ingest());
    let db = h.db();
    let mut perms = std::fs::metadata(&db).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&db, perms).unwrap();
    let r = h.dir.path().join("r1.xml");
    let out = flakehound(
        &db,
        &["ingest", "--commit", "d", "--job", "j", r.to_str().unwrap()],
    );
    // root can write a read-only file; only assert when the OS enforced it.
    if out.status.code() != Some(0) {
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("read-only"), "{}", stderr(&out));
    }
}

#[test]
fn backlog_snapshot() {
    let mut h = History::new();
    // PaymentServiceIT flakes on two commits across job re-runs; Cart flakes once in-run.
    for i in 0..12 {
        let c = format!("c{i}");
        let id = format!("{i}");
        let pay = if i == 3 || i == 8 { O::Fail } else { O::Pass };
        let cart = if i == 5 { O::FlakyInRun } else { O::Pass };
        h.run(
            "it",
            "main",
            &c,
            &id,
            1,
            f64::from(i),
            &[
                ("com.acme.PaymentServiceIT", "refundsTwice", pay),
                ("com.acme.CartTest", "total, with \"quotes\"", cart),
                ("com.acme.CartTest", "empty", O::Pass),
            ],
        );
        if pay == O::Fail {
            h.run(
                "it",
                "main",
                &c,
                &id,
                2,
                f64::from(i) + 0.3,
                &[
                    ("com.acme.PaymentServiceIT", "refundsTwice", O::Pass),
                    ("com.acme.CartTest", "total, with \"quotes\"", O::Pass),
                    ("com.acme.CartTest", "empty", O::Pass),
                ],
            );
        }
    }
    drop(h.ingest());
    let db = h.db();
    let csv = flakehound(&db, &["backlog"]);
    assert_eq!(csv.status.code(), Some(0), "{}", stderr(&csv));
    insta::assert_snapshot!("backlog_csv", stdout(&csv));
    let md = flakehound(&db, &["backlog", "--format", "md", "--p1", "0.1"]);
    insta::assert_snapshot!("backlog_md", stdout(&md));
    // RFC 4180: quotes doubled, fields with commas quoted, CRLF line ends.
    let text = stdout(&csv);
    assert!(text.contains("\"Fix flaky com.acme.CartTest.total, with \"\"quotes\"\" (it)\""));
    assert!(text.contains("\r\n"));
}

/// `show` on a test that broke and was fixed: stable, but not "no failures"; the text lists
/// each failed run's messages like the JSON does.
#[test]
fn show_tells_a_fixed_breakage_from_no_failures_and_prints_messages() {
    let mut h = History::new();
    for (i, o) in [O::Pass, O::Fail, O::Fail, O::Pass].into_iter().enumerate() {
        let commit = format!("c{i}");
        let run = format!("{i}");
        h.run(
            "unit",
            "main",
            &commit,
            &run,
            1,
            i as f64,
            &[("C", "x", o), ("C", "y", O::Pass)],
        );
    }
    h.ingest();
    let out = flakehound(&h.db(), &["show", "C.x"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("stable in every job: 2 failed run(s) in the window"),
        "{text}"
    );
    assert_eq!(
        text.matches("attempt 1: AssertionError: expected 1 but was 2")
            .count(),
        2,
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&flakehound(&h.db(), &["show", "C.x", "--format", "json"]).stdout)
            .unwrap();
    assert_eq!(json["window_failed_runs"], 2);
    let out = flakehound(&h.db(), &["show", "C.y"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("stable in every job: no failures in the window"),
        "{text}"
    );
}

/// Logs written to a CI log file or a pipe carry no colour codes, and a rejected report is
/// printed once, as `path:line:column: reason`, not again as a warning.
#[test]
fn logs_to_a_pipe_have_no_colour_and_a_rejection_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.db");
    let bad = dir.path().join("bad.xml");
    std::fs::write(&bad, "<testsuite><testcase name=\"a\">").unwrap();
    let out = std::process::Command::new(common::BIN)
        .args([
            "--db",
            db.to_str().unwrap(),
            "ingest",
            "--commit",
            "abc1234",
            "--job",
            "unit",
        ])
        .arg(&bad)
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = stderr(&out);
    assert!(!err.contains('\u{1b}'), "{err:?}");
    let name = bad.to_str().unwrap();
    assert_eq!(
        err.lines().filter(|l| l.starts_with(name)).count(),
        1,
        "{err}"
    );
    let quiet = flakehound(
        &db,
        &["ingest", "--commit", "abc1234", "--job", "unit", name],
    );
    assert_eq!(stderr(&quiet).lines().count(), 1, "{}", stderr(&quiet));
}
