//! `flakehound gate` as a CI step runs it: forgiven flakes exit 0, new or broken failures
//! exit 1, quarantined tests are forgiven, and the Markdown summary is written.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{flakehound, surefire_xml, History, BIN, O};

/// `C.flaky` passed and failed on commit c1 of job `unit`: known flaky there. `C.steady`
/// always passed. The job `lint` never saw a failure.
fn history() -> History {
    let mut h = History::new();
    h.run(
        "unit",
        "main",
        "c1",
        "1",
        1,
        0.0,
        &[("C", "flaky", O::Pass), ("C", "steady", O::Pass)],
    )
    .run(
        "unit",
        "main",
        "c1",
        "2",
        1,
        1.0,
        &[("C", "flaky", O::Fail), ("C", "steady", O::Pass)],
    )
    .run(
        "lint",
        "main",
        "c1",
        "3",
        1,
        1.0,
        &[("C", "flaky", O::Pass), ("C", "steady", O::Pass)],
    );
    h.ingest();
    h
}

fn reports(h: &History, name: &str, cases: &[(&str, &str, O)]) -> PathBuf {
    let dir = h.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("TEST-C.xml"), surefire_xml(cases)).unwrap();
    dir
}

/// Run `gate` with the metadata of a new run of `job` on `commit`; `extra` before the paths.
fn gate(db: &Path, job: &str, commit: &str, run_id: &str, extra: &[&str], path: &Path) -> Output {
    let mut args = vec![
        "gate",
        "--commit",
        commit,
        "--branch",
        "main",
        "--job",
        job,
        "--run-id",
        run_id,
        "--started-at",
        "2025-11-21T00:00:00Z",
    ];
    args.extend_from_slice(extra);
    args.push(path.to_str().unwrap());
    std::process::Command::new(BIN)
        .arg("--db")
        .arg(db)
        .args(&args)
        .env_remove("FLAKEHOUND_DB")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env("CI", "true")
        .output()
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn run_count(db: &Path) -> usize {
    let out = flakehound(db, &["runs", "--format", "json"]);
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout)
        .unwrap()
        .len()
}

#[test]
fn a_known_flaky_failure_is_forgiven_and_the_run_is_stored() {
    let h = history();
    let db = h.db();
    let dir = reports(
        &h,
        "r",
        &[("C", "flaky", O::Fail), ("C", "steady", O::Pass)],
    );
    let summary = h.dir.path().join("summary.md");
    let before = run_count(&db);
    let out = gate(
        &db,
        "unit",
        "c2",
        "10",
        &["--summary", summary.to_str().unwrap()],
        &dir,
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("PASS"), "{stdout}");
    assert!(
        stdout.contains("FORGIVEN    C.flaky  known flaky: flake rate"),
        "{stdout}"
    );
    assert!(!stdout.contains("FAILED "), "{stdout}");
    // Evidence keeps flowing: the run is stored by default.
    assert_eq!(run_count(&db), before + 1);
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.starts_with("### flakehound gate: passed"), "{md}");
    assert!(md.contains("**1 forgiven**, **0 not forgiven**"), "{md}");
    assert!(md.contains("| `C.flaky` | known flaky: flake rate"), "{md}");
    assert!(md.contains("expected 1 but was 2"), "{md}");
    assert!(!md.contains("Not forgiven"), "{md}");
}

#[test]
fn a_new_failure_fails_and_no_ingest_stores_nothing() {
    let h = history();
    let db = h.db();
    let before = run_count(&db);
    // `steady` never failed; `flaky` is flaky in `unit` only, not in `lint`.
    let dir = reports(
        &h,
        "r",
        &[("C", "flaky", O::Pass), ("C", "steady", O::Fail)],
    );
    let out = gate(&db, "unit", "c2", "10", &["--no-ingest", "--json"], &dir);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["pass"], false);
    assert_eq!(v["unforgiven"][0]["name"], "steady");
    assert_eq!(v["unforgiven"][0]["why"], "new");
    assert_eq!(run_count(&db), before, "--no-ingest stored a run");

    let dir = reports(
        &h,
        "lint",
        &[("C", "flaky", O::Fail), ("C", "steady", O::Pass)],
    );
    let out = gate(&db, "lint", "c2", "11", &[], &dir);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "another job's flakes are not this job's: {stdout}{stderr}"
    );
    assert!(
        stdout.contains("FAILED      C.flaky  new failure: it is not known flaky in job lint"),
        "{stdout}"
    );
}

#[test]
fn a_broken_test_is_never_forgiven() {
    let h = history();
    let db = h.db();
    // A known flake fails once on c3: forgiven. The job is re-run and it fails again on
    // the same commit: broken there, not forgiven.
    let dir = reports(
        &h,
        "again",
        &[("C", "flaky", O::Fail), ("C", "steady", O::Pass)],
    );
    let first = gate(&db, "unit", "c3", "20", &[], &dir);
    assert_eq!(first.status.code(), Some(0), "{:?}", text(&first));
    let second = gate(&db, "unit", "c3", "21", &[], &dir);
    let (stdout, _) = text(&second);
    assert_eq!(second.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAILED      C.flaky  broken: failed every attempt on commit c3 (2 attempts in 2 run(s))"),
        "{stdout}"
    );
    // Known flaky elsewhere, but it failed the first attempt and the in-run rerun: broken.
    let h = history();
    let db = h.db();
    let dir = reports(
        &h,
        "r",
        &[("C", "flaky", O::FailRerun), ("C", "steady", O::Pass)],
    );
    let out = gate(&db, "unit", "c2", "10", &[], &dir);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("FAILED      C.flaky  broken: failed every attempt on commit c2 (2 attempts in 1 run(s))"),
        "{stdout}"
    );
    // Until it passes again it is broken in the job: a single failure on the next commit
    // is not forgiven either.
    let dir = reports(
        &h,
        "next",
        &[("C", "flaky", O::Fail), ("C", "steady", O::Pass)],
    );
    let out = gate(&db, "unit", "c4", "11", &[], &dir);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAILED      C.flaky  broken in job unit"),
        "{stdout}"
    );
}

#[test]
fn a_quarantined_test_is_forgiven_and_github_step_summary_is_appended() {
    let h = history();
    let db = h.db();
    let q = flakehound(
        &db,
        &[
            "quarantine",
            "--apply",
            "--job",
            "unit",
            "--min-retries-per-day",
            "0",
        ],
    );
    assert_eq!(q.status.code(), Some(0), "{:?}", text(&q));
    let list = flakehound(&db, &["quarantine", "--job", "unit", "--format", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list[0]["name"], "flaky", "{list}");
    assert_eq!(list[0]["state"], "active", "{list}");
    let dir = reports(
        &h,
        "r",
        &[("C", "flaky", O::Fail), ("C", "steady", O::Pass)],
    );
    let step = h.dir.path().join("step_summary.md");
    std::fs::write(&step, "## an earlier step\n").unwrap();
    let out = std::process::Command::new(BIN)
        .arg("--db")
        .arg(&db)
        .args([
            "gate", "--commit", "c2", "--job", "unit", "--run-id", "10", "--json",
        ])
        .args(["--started-at", "2025-11-21T00:00:00Z"])
        .arg(&dir)
        .env_remove("FLAKEHOUND_DB")
        .env("GITHUB_STEP_SUMMARY", &step)
        .env("CI", "true")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["forgiven"][0]["why"], "quarantined");
    assert!(
        v["forgiven"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("quarantined since 2025-11-"),
        "{v}"
    );
    assert!(v["forgiven"][0]["quarantined_since"].is_string());
    let md = std::fs::read_to_string(&step).unwrap();
    assert!(
        md.starts_with("## an earlier step\n### flakehound gate: passed"),
        "{md}"
    );
    assert!(md.contains("quarantined since"), "{md}");
}

#[test]
fn no_reports_fail_the_gate_and_ingest_and_store_nothing() {
    let h = history();
    let db = h.db();
    let before = run_count(&db);
    let empty = h.dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = gate(&db, "unit", "c2", "10", &[], &empty);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("no report files"), "{stderr}");
    for path in [empty.clone(), h.dir.path().join("missing")] {
        let out = flakehound(
            &db,
            &[
                "ingest",
                "--commit",
                "c2",
                "--job",
                "unit",
                path.to_str().unwrap(),
            ],
        );
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
        assert!(
            stderr.contains("no report files") && stderr.contains("nothing stored"),
            "{stderr}"
        );
        assert!(stdout.contains("0 runs"), "{stdout}");
    }
    assert_eq!(run_count(&db), before);
}

#[test]
fn require_same_sha_refuses_to_forgive_a_test_flaky_only_on_statistics() {
    // C.iso failed alone on three commits, with passes before and after each and no retry:
    // flaky on statistical evidence, never proven by a pass and a failure on one commit.
    let mut h = History::new();
    for i in 0..7u32 {
        let o = if i % 2 == 1 { O::Fail } else { O::Pass };
        h.run(
            "unit",
            "main",
            &format!("c{i}"),
            &i.to_string(),
            1,
            f64::from(i),
            &[("C", "iso", o), ("C", "steady", O::Pass)],
        );
    }
    h.ingest();
    let db = h.db();
    let status = flakehound(&db, &["flaky", "--format", "json", "--window", "3650d"]);
    let flaky: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let iso = &flaky.as_array().unwrap()[0];
    assert_eq!(iso["name"], "iso", "{flaky}");
    assert_eq!(iso["flaky_evidence"], "statistical", "{flaky}");

    let dir = reports(&h, "r", &[("C", "iso", O::Fail), ("C", "steady", O::Pass)]);
    let out = gate(
        &db,
        "unit",
        "c9",
        "20",
        &["--no-ingest", "--window", "3650d"],
        &dir,
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("FORGIVEN    C.iso"), "{stdout}");

    let strict = ["--no-ingest", "--window", "3650d", "--require-same-sha"];
    let out = gate(&db, "unit", "c9", "20", &strict, &dir);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("statistical evidence only") && stdout.contains("FAILED"),
        "{stdout}"
    );
}

#[test]
fn gating_the_same_run_twice_gives_the_same_verdict() {
    // Attempt 1 of run 7 on c5: `t` passed, `u` failed. Attempt 2 fails `t`: a new
    // failure, judged on the history before it. Once the first call has stored attempt
    // 2, its own failure (beside attempt 1's pass) must not make `t` known flaky.
    let mut h = History::new();
    h.run(
        "unit",
        "main",
        "c5",
        "7",
        1,
        20.0,
        &[("K", "t", O::Pass), ("K", "u", O::Fail)],
    );
    h.ingest();
    let db = h.db();
    let dir = reports(&h, "a2", &[("K", "t", O::Fail), ("K", "u", O::Pass)]);
    let verdicts: Vec<(Option<i32>, String)> = (0..3)
        .map(|i| {
            let mut extra = vec!["--attempt", "2", "--json"];
            if i == 2 {
                extra.push("--no-ingest");
            }
            let out = gate(&db, "unit", "c5", "7", &extra, &dir);
            (out.status.code(), text(&out).0)
        })
        .collect();
    let (code, json) = &verdicts[0];
    assert_eq!(*code, Some(1), "{json}");
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["unforgiven"][0]["name"], "t", "{v}");
    assert_eq!(v["unforgiven"][0]["why"], "new", "{v}");
    for (i, again) in verdicts.iter().enumerate().skip(1) {
        assert_eq!(again, &verdicts[0], "call {} differs from the first", i + 1);
    }
    assert_eq!(run_count(&db), 2, "the run is stored once");

    // Once stored, the run's start is the stored one: a call that is given none judges
    // the same history.
    let out = std::process::Command::new(BIN)
        .arg("--db")
        .arg(&db)
        .args([
            "gate", "--commit", "c5", "--branch", "main", "--job", "unit",
        ])
        .args(["--run-id", "7", "--attempt", "2", "--json"])
        .arg(&dir)
        .env_remove("FLAKEHOUND_DB")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env("CI", "true")
        .output()
        .unwrap();
    assert_eq!((out.status.code(), text(&out).0), verdicts[0]);
}

#[test]
fn without_a_start_the_run_is_judged_at_its_reports_timestamp_as_ingest_stores_it() {
    let h = history();
    let db = h.db();
    let dir = h.dir.path().join("stamped");
    std::fs::create_dir_all(&dir).unwrap();
    // Surefire's own timestamp: no zone, read as UTC.
    let xml = surefire_xml(&[("C", "steady", O::Fail)]).replace(
        "<testsuite name=\"suite\">",
        "<testsuite name=\"suite\" timestamp=\"2025-11-20T22:00:00\">",
    );
    std::fs::write(dir.join("TEST-C.xml"), xml).unwrap();
    let ask = || {
        let out = std::process::Command::new(BIN)
            .arg("--db")
            .arg(&db)
            .args([
                "gate", "--commit", "c2", "--branch", "main", "--job", "unit",
            ])
            .args(["--run-id", "30", "--json"])
            .arg(&dir)
            .env_remove("CI_JOB_STARTED_AT")
            .env_remove("SYSTEM_PIPELINESTARTTIME")
            .env_remove("FLAKEHOUND_DB")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env("CI", "true")
            .output()
            .unwrap();
        (out.status.code(), text(&out).0)
    };
    let first = ask();
    let v: serde_json::Value = serde_json::from_str(&first.1).unwrap();
    assert_eq!(v["as_of"], "2025-11-20T22:00:00Z", "{v}");
    assert_eq!(ask(), first);
}

#[test]
fn without_history_the_window_is_null_and_the_summary_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new.db");
    let r = dir.path().join("r");
    std::fs::create_dir_all(&r).unwrap();
    std::fs::write(
        r.join("TEST-C.xml"),
        surefire_xml(&[("C", "t", O::Fail), ("C", "u", O::Pass)]),
    )
    .unwrap();
    let summary = dir.path().join("summary.md");
    let summary_arg = summary.to_str().unwrap();
    // A new database, then one that holds only another job's run (the first call's).
    for job in ["unit", "lint"] {
        let out = gate(
            &db,
            job,
            "c1",
            "1",
            &["--json", "--summary", summary_arg],
            &r,
        );
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        for key in ["since", "as_of"] {
            assert!(v.get(key).is_some_and(|x| x.is_null()), "{key}: {v}");
        }
        let md = std::fs::read_to_string(&summary).unwrap();
        assert!(
            md.contains(&format!(
                "Known flaky: there was no history of job `{job}` before this run to score"
            )),
            "{md}"
        );
        assert!(!md.contains("1970") && !md.contains("1969"), "{md}");
    }
    // With a run of the job before it, the window is the history's.
    let out = gate(&db, "unit", "c2", "2", &["--json"], &r);
    let v: serde_json::Value = serde_json::from_str(&text(&out).0).unwrap();
    assert_eq!(v["as_of"], "2025-11-21T00:00:00Z", "{v}");
    assert_eq!(v["since"], "2025-10-22T00:00:00Z", "{v}");
}

#[test]
fn a_test_failing_in_one_android_variant_is_broken_there_not_flaky() {
    // `gradle test` on Android runs each unit test once per variant, one report folder per
    // task. Failing in release and passing in debug is not a rerun that passed: the gate
    // must fail the job, as Gradle did.
    let h = history();
    let db = h.db();
    let app = h.dir.path().join("app");
    for (task, outcome) in [
        ("testDebugUnitTest", O::Pass),
        ("testReleaseUnitTest", O::Fail),
    ] {
        let dir = app.join("build/test-results").join(task);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("TEST-C.xml"),
            surefire_xml(&[("C", "config", outcome), ("C", "steady", O::Pass)]),
        )
        .unwrap();
    }
    let out = gate(&db, "android", "c2", "20", &["--json"], &app);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["pass"], false);
    assert_eq!(v["unforgiven"][0]["name"], "[testReleaseUnitTest] › config");
    assert_eq!(v["unforgiven"].as_array().unwrap().len(), 1, "{stdout}");

    // What the gate stored reads the same: four tests, one failed, none flaky.
    let out = flakehound(&db, &["tests", "--format", "json"]);
    let tests: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut names: Vec<&str> = tests
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .filter(|n| n.starts_with('['))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "[testDebugUnitTest] › config",
            "[testDebugUnitTest] › steady",
            "[testReleaseUnitTest] › config",
            "[testReleaseUnitTest] › steady"
        ]
    );
    let out = flakehound(&db, &["flaky", "--job", "android", "--format", "json"]);
    let flaky: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(flaky.as_array().map(Vec::len), Some(0), "{flaky}");
}

#[test]
fn variant_reports_keep_their_environment_however_the_paths_are_spelled() {
    // Byte-identical reports in two variant folders are two reports, and a path with `//`
    // or `./`, or a bare name given from inside the task's folder, names the same tests.
    let h = History::new();
    let db = h.db();
    let results = h.dir.path().join("app/build/test-results");
    let xml = surefire_xml(&[("C", "same", O::Pass)]);
    for task in ["testDebugUnitTest", "testReleaseUnitTest"] {
        std::fs::create_dir_all(results.join(task)).unwrap();
        std::fs::write(results.join(task).join("TEST-C.xml"), &xml).unwrap();
    }
    let ingest = |cwd: &Path, run: &str, paths: &[&str]| {
        let out = std::process::Command::new(BIN)
            .current_dir(cwd)
            .arg("--db")
            .arg(&db)
            .args([
                "ingest", "--commit", "c9", "--branch", "main", "--job", "android",
            ])
            .args(["--run-id", run, "--json"])
            .args(paths)
            .env("CI", "true")
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        (v["tests"].as_u64(), v["unchanged"].as_u64())
    };
    assert_eq!(
        ingest(h.dir.path(), "1", &["app/build/test-results//"]),
        (Some(2), Some(0))
    );
    assert_eq!(
        ingest(
            &results.join("testDebugUnitTest"),
            "2",
            &["TEST-C.xml", "./../testReleaseUnitTest/TEST-C.xml"]
        ),
        (Some(2), Some(0))
    );
    let out = flakehound(&db, &["tests", "--format", "json"]);
    let tests: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut names: Vec<&str> = tests.iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(
        names,
        ["[testDebugUnitTest] › same", "[testReleaseUnitTest] › same"]
    );
}
