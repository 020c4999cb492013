//! Flags that catch mistakes instead of answering a different question quietly.

mod common;

use common::{flakehound, History, O};

fn history() -> History {
    let mut h = History::new();
    h.run("unit", "main", "c1", "1", 1, 0.0, &[("C", "x", O::Pass)])
        .run("unit", "main", "c1", "2", 1, 1.0, &[("C", "x", O::Fail)])
        .run("lint", "dev", "c1", "3", 1, 1.0, &[("C", "x", O::Pass)]);
    h.ingest();
    h
}

fn usage_error(h: &History, args: &[&str]) -> String {
    let out = flakehound(&h.db(), args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(out.stdout.is_empty(), "{args:?} printed an answer");
    err
}

#[test]
fn durations_need_a_unit() {
    let h = history();
    for cmd in ["flaky", "backlog"] {
        let err = usage_error(&h, &[cmd, "--window", "30"]);
        assert!(err.contains("add a unit: 30d"), "{err}");
    }
    let err = usage_error(&h, &["report", "--compare-window", "7"]);
    assert!(err.contains("add a unit: 7d"), "{err}");
    let err = usage_error(&h, &["quarantine", "--expire-after", "14"]);
    assert!(err.contains("add a unit: 14d"), "{err}");
    for ok in ["30d", "720h", "2w", "43200m", "2592000s"] {
        let out = flakehound(&h.db(), &["flaky", "--window", ok, "--format", "json"]);
        assert_eq!(out.status.code(), Some(0), "{ok}");
        let flaky: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(flaky.len(), 1, "{ok}");
    }
}

#[test]
fn slo_is_a_percentage_or_a_fraction_up_to_one() {
    let h = history();
    let json = |slo: &str| {
        let out = flakehound(&h.db(), &["report", "--format", "json", "--slo", slo]);
        assert_eq!(out.status.code(), Some(0), "{slo}: {out:?}");
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let percent = json("2%");
    let fraction = json("0.02");
    assert_eq!(percent, fraction);
    assert!(percent.to_string().contains("0.02"));
    for bad in ["1.5", "150%", "NaN", "-0.1", "one"] {
        let err = usage_error(&h, &["flaky", &format!("--slo={bad}")]);
        assert!(err.contains("share"), "{bad}: {err}");
    }
}

#[test]
fn unknown_job_or_branch_names_the_ones_that_exist() {
    let h = history();
    for cmd in ["flaky", "backlog", "report"] {
        let err = usage_error(&h, &[cmd, "--job", "unti"]);
        assert!(
            err.contains("no runs of job \"unti\"") && err.contains("\"lint\", \"unit\""),
            "{cmd}: {err}"
        );
    }
    let err = usage_error(&h, &["flaky", "--branch", "master"]);
    assert!(err.contains("\"dev\", \"main\""), "{err}");
    let err = usage_error(&h, &["show", "C.x", "--job", "nope"]);
    assert!(err.contains("jobs in the database"), "{err}");
    // The quarantine list a runner consumes only warns: a new job has nothing quarantined.
    let out = flakehound(
        &h.db(),
        &["quarantine", "--job", "unti", "--format", "pytest"],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warning: no runs of job \"unti\""), "{err}");
    // Known values still answer.
    let out = flakehound(&h.db(), &["flaky", "--job", "unit", "--branch", "main"]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn show_takes_format_json_and_keeps_json_as_an_alias() {
    let h = history();
    let a = flakehound(&h.db(), &["show", "C.x", "--format", "json"]);
    let b = flakehound(&h.db(), &["show", "C.x", "--json"]);
    assert_eq!(a.status.code(), Some(0));
    assert_eq!(a.stdout, b.stdout);
    let v: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(v["name"], "x");
    let text = flakehound(&h.db(), &["show", "C.x"]);
    assert!(String::from_utf8_lossy(&text.stdout).starts_with("C.x\n"));
    let help = flakehound(&h.db(), &["show", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--format") && !help.contains("--json"),
        "{help}"
    );
}

#[test]
fn attempt_zero_and_an_empty_job_are_refused_on_the_command_line_and_in_a_manifest() {
    let h = history();
    let report = h.dir.path().join("r1.xml");
    let report = report.to_str().unwrap();
    let err = usage_error(
        &h,
        &[
            "ingest",
            "--commit",
            "abc1234",
            "--job",
            "unit",
            "--attempt",
            "0",
            report,
        ],
    );
    assert!(err.contains("--attempt"), "{err}");
    let err = usage_error(&h, &["ingest", "--commit", "abc1234", "--job", " ", report]);
    assert!(err.contains("no job"), "{err}");
    for (row, why) in [
        (
            "r1.xml,abc1234,main,unit,9,0,2026-11-20T10:00:00Z",
            "attempt 0",
        ),
        (
            "r1.xml,abc1234,main,,9,1,2026-11-20T10:00:00Z",
            "empty commit or job",
        ),
    ] {
        let manifest = h.dir.path().join("runs.csv");
        std::fs::write(
            &manifest,
            format!("path,commit,branch,job,run_id,attempt,started_at\n{row}\n"),
        )
        .unwrap();
        let err = usage_error(&h, &["ingest", "--manifest", manifest.to_str().unwrap()]);
        assert!(err.contains(why), "{err}");
    }
    // Nothing was stored by the refused calls.
    let out = flakehound(&h.db(), &["runs", "--format", "json"]);
    let runs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs.len(), 3);
}

/// `report` takes the scorer's lone-failure flags as `flaky` does: with them, it counts the
/// flaky tests `flaky` lists. It once accepted them and scored with the defaults.
#[test]
fn report_judges_lone_failures_with_the_flags_flaky_takes() {
    let dir = tempfile::tempdir().unwrap();
    let demo = std::process::Command::new(env!("CARGO_BIN_EXE_flakehound"))
        .args(["demo", "--retries", "rare", "--days", "14", "--seed", "3"])
        .current_dir(dir.path())
        .env("CI", "true")
        .output()
        .unwrap();
    assert_eq!(demo.status.code(), Some(0), "{demo:?}");
    let db = dir.path().join("flakehound-demo").join("flakehound.db");
    let count = |strict: bool| {
        let mut flags = vec!["--window", "30d", "--format", "json"];
        if strict {
            flags.extend(["--lone-posterior", "0.999999", "--lone-alpha", "0.000001"]);
        }
        let run = |cmd: &str| {
            let out = flakehound(&db, &[&[cmd][..], &flags].concat());
            assert_eq!(out.status.code(), Some(0), "{cmd}: {out:?}");
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
        };
        let listed = run("flaky").as_array().unwrap().len() as u64;
        let report = run("report");
        let counted = report["headline"]["current"]["flaky_tests"]
            .as_u64()
            .unwrap();
        assert_eq!(listed, counted, "strict: {strict}");
        listed
    };
    let (default, strict) = (count(false), count(true));
    assert!(
        strict < default,
        "the flags changed nothing: {strict} vs {default}"
    );
}
