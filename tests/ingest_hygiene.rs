//! Ingest keeps the history honest: separate calls are separate runs, one commit is one
//! commit however it is spelt, one test is one test whichever CI checkout folder ran it,
//! and a runner's broken clock cannot move "now".

mod common;

use common::{flakehound, surefire_xml, History, O};

fn runs(db: &std::path::Path) -> Vec<serde_json::Value> {
    let out = flakehound(db, &["runs", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn separate_ingests_without_a_run_id_are_separate_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.db");
    let report = dir.path().join("TEST-a.xml");
    std::fs::write(&report, surefire_xml(&[("A", "x", O::Pass)])).unwrap();
    // The same start second, the same job and commit, no run id: two executions.
    for _ in 0..2 {
        let out = flakehound(
            &db,
            &[
                "ingest",
                "--commit",
                "abc1234",
                "--job",
                "unit",
                "--started-at",
                "2026-11-20T10:00:00Z",
                report.to_str().unwrap(),
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    }
    let rows = runs(&db);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_ne!(rows[0]["run_id"], rows[1]["run_id"]);
    assert!(rows[0]["run_id"].as_str().unwrap().starts_with("local-"));
}

#[test]
fn commits_are_normalised_and_short_shas_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.db");
    let report = dir.path().join("TEST-a.xml");
    std::fs::write(&report, surefire_xml(&[("A", "x", O::Pass)])).unwrap();
    let full = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d";
    let upper = full.to_uppercase();
    for (i, commit) in [upper.as_str(), "1a2b3c4", full, "1A2B3C4D5"]
        .iter()
        .enumerate()
    {
        let run_id = format!("{i}");
        let out = flakehound(
            &db,
            &[
                "ingest",
                "--commit",
                commit,
                "--job",
                "unit",
                "--run-id",
                &run_id,
                "--started-at",
                "2026-11-20T10:00:00Z",
                report.to_str().unwrap(),
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    }
    let rows = runs(&db);
    assert_eq!(rows.len(), 4);
    for r in &rows {
        assert_eq!(r["commit"], full, "{rows:?}");
    }
}

#[test]
fn a_start_more_than_a_day_ahead_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.db");
    let report = dir.path().join("TEST-a.xml");
    std::fs::write(&report, surefire_xml(&[("A", "x", O::Pass)])).unwrap();
    let ahead = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    let out = flakehound(
        &db,
        &[
            "ingest",
            "--commit",
            "abc",
            "--job",
            "unit",
            "--started-at",
            &ahead,
            report.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("more than a day in the future"), "{err}");
    assert!(!db.exists() || runs(&db).is_empty());
    // Within a day ahead (clock skew between machines) is fine.
    let soon = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let out = flakehound(
        &db,
        &[
            "ingest",
            "--commit",
            "abc",
            "--job",
            "unit",
            "--started-at",
            &soon,
            report.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn one_run_from_the_far_future_does_not_set_now() {
    let mut h = History::new();
    // A flaky test on one commit, then an (older database's) run stamped 50 years ahead.
    h.run("unit", "main", "c1", "1", 1, 0.0, &[("C", "x", O::Pass)])
        .run("unit", "main", "c1", "2", 1, 1.0, &[("C", "x", O::Fail)])
        .run(
            "unit",
            "main",
            "c2",
            "3",
            1,
            50.0 * 365.0 * 24.0,
            &[("C", "x", O::Pass)],
        );
    h.ingest();
    let out = flakehound(&h.db(), &["flaky", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let flaky: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(flaky.len(), 1, "the window must end at the newest sane run");
    assert_eq!(flaky[0]["name"], "x");
    let table = flakehound(&h.db(), &["flaky"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("to 2025-11-20T01:53:20Z"), "{text}");
}

/// PHPUnit writes absolute paths. Jenkins ran attempt 1 in `workspace/shop` and the retry in
/// `workspace/shop@2`; a self-hosted GitHub runner pool runs in per-runner folders. Each is
/// one test, and its fail-then-pass on one commit is a flake.
#[test]
fn a_test_is_one_test_in_every_ci_checkout_folder() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.db");
    let phpunit = |root: &str, failed: bool| {
        let failure = if failed {
            "<failure type=\"AssertionFailedError\">timeout</failure>"
        } else {
            ""
        };
        format!(
            r#"<testsuites><testsuite name="Cart" file="{root}/tests/CartTest.php" tests="1">
<testcase name="testTotal" class="Tests\\CartTest" classname="Tests.CartTest" file="{root}/tests/CartTest.php" line="12" time="0.1">{failure}</testcase>
</testsuite></testsuites>"#
        )
    };
    let roots = [
        (
            "jenkins",
            "/var/lib/jenkins/workspace/shop",
            "/var/lib/jenkins/workspace/shop@2",
        ),
        (
            "gha",
            "/opt/runner-1/_work/shop/shop",
            "/opt/runner-2/_work/shop/shop",
        ),
    ];
    for (job, first, retry) in roots {
        for (attempt, root, failed) in [(1, first, true), (2, retry, false)] {
            let report = dir.path().join(format!("{job}-{attempt}.xml"));
            std::fs::write(&report, phpunit(root, failed)).unwrap();
            let attempt = attempt.to_string();
            let out = flakehound(
                &db,
                &[
                    "ingest",
                    "--commit",
                    "abc1234",
                    "--job",
                    job,
                    "--run-id",
                    "7",
                    "--attempt",
                    &attempt,
                    "--started-at",
                    "2026-11-20T10:00:00Z",
                    report.to_str().unwrap(),
                ],
            );
            assert_eq!(out.status.code(), Some(0), "{out:?}");
        }
    }
    let out = flakehound(&db, &["tests", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let tests: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tests = tests.as_array().unwrap();
    assert_eq!(tests.len(), 1, "{tests:?}");
    assert_eq!(tests[0]["file"], "tests/CartTest.php");
    let out = flakehound(&db, &["flaky", "--format", "json", "--window", "3650d"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let flaky: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let jobs: Vec<&str> = flaky
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "flaky")
        .map(|t| t["job"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, ["gha", "jenkins"], "{flaky}");
}
