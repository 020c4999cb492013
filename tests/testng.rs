//! TestNG's output folders (real ones, `fixtures/junit/testng/`): a folder search counts
//! each result once, and other tools' XML found beside the reports is skipped, not
//! rejected.

mod common;

use std::path::{Path, PathBuf};

use common::flakehound;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/junit/testng")
        .join(rel)
}

fn ingest(db: &Path, paths: &[&Path]) -> (Option<i32>, serde_json::Value, String) {
    let mut args = vec![
        "ingest", "--json", "--commit", "abc1234", "--job", "unit", "--run-id", "1",
    ];
    args.extend(paths.iter().map(|p| p.to_str().unwrap()));
    let out = flakehound(db, &args);
    let summary = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code(),
        summary,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// (folder, tests stored, other tools' XML, TestNG copies skipped). The tests are what
/// Surefire's own `TEST-*.xml` holds (or TestNG's JUnitXMLReporter without Surefire); a
/// TestNG retry is still two entries, `flakyOnce` and `flakyOnce [#2]`.
const FOLDERS: &[(&str, u64, u64, u64)] = &[
    ("surefire/default", 5, 3, 2),
    ("surefire/two-classes", 9, 3, 3),
    // Each fork is its own TestNG run: TestNG's suite-wide files keep only the class that
    // finished last, Surefire's files have both.
    ("surefire/two-classes-forkCount-2", 9, 3, 3),
    ("surefire/dataprovider", 4, 3, 2),
    ("surefire/rerunFailingTestsCount-1", 4, 3, 2),
    // TestNG alone: JUnitXMLReporter's file is kept, junitreports/ is the copy.
    ("direct/testng-xml", 5, 3, 1),
    // TestNG crashed before its other reporters: the one file it wrote is all there is.
    ("direct/testng-xml-unpatched-debian-jar", 5, 0, 0),
    ("surefire/unpatched-debian-jar", 5, 0, 0),
];

#[test]
fn a_testng_folder_counts_each_result_once_and_skips_other_xml() {
    let dir = tempfile::tempdir().unwrap();
    for (i, &(folder, tests, not_junit, duplicates)) in FOLDERS.iter().enumerate() {
        let db = dir.path().join(format!("{i}.db"));
        let (code, s, err) = ingest(&db, &[&fixture(folder)]);
        assert_eq!(code, Some(0), "{folder}: {err}");
        assert_eq!(s["tests"], tests, "{folder}: {s}");
        assert_eq!(s["distinct_tests"], tests, "{folder}: {s}");
        assert_eq!(s["not_junit"], not_junit, "{folder}: {s}");
        assert_eq!(s["duplicates"], duplicates, "{folder}: {s}");
        assert_eq!(s["rejected"], 0, "{folder}: {s}");
    }
}

/// The same folder twice (two `ingest` calls, one run id) stores nothing new: the kept
/// copy is the same file each time, whatever order TestNG wrote its copies in.
#[test]
fn reingesting_a_testng_folder_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.db");
    let folder = fixture("surefire/two-classes-forkCount-2/surefire-reports");
    let (_, first, _) = ingest(&db, &[&folder]);
    let (code, again, err) = ingest(&db, &[&folder]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(first["tests"], 9);
    assert_eq!(again["tests"], 0, "{again}");
    assert_eq!(again["unchanged"], 2, "{again}");
}

/// A file named on its own must be a report: another tool's XML is an error (exit 1) with
/// its line and column, and so is a folder that holds only other tools' XML (a job that
/// crashed before its tests wrote anything must not pass as a clean run).
#[test]
fn other_xml_named_or_alone_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.db");
    let results = fixture("surefire/default/surefire-reports/testng-results.xml");
    let (code, s, err) = ingest(&db, &[&results]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(s["rejected"], 1, "{s}");
    assert!(
        err.contains(
            "testng-results.xml:2:1: not a JUnit report: root element is <testng-results>"
        ),
        "{err}"
    );

    let only = dir.path().join("target");
    std::fs::create_dir_all(&only).unwrap();
    std::fs::write(
        only.join("pom.xml"),
        "<project><modelVersion>4.0.0</modelVersion></project>",
    )
    .unwrap();
    let (code, s, err) = ingest(&db, &[&only]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(s["not_junit"], 1, "{s}");
    assert_eq!(s["rejected"], 1, "{s}");
    assert_eq!(s["runs"], 0, "{s}");
    assert!(
        err.contains("target: no JUnit reports: the 1 XML file(s) found are other tools'"),
        "{err}"
    );

    // An HTML page saved as a report (a failed artifact download) is never skipped.
    std::fs::write(
        only.join("report.xml"),
        "<!DOCTYPE html><html><body>502</body></html>",
    )
    .unwrap();
    let (code, s, err) = ingest(&db, &[&only]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(s["rejected"], 1, "{s}");
    assert!(err.contains("root element is <html>"), "{err}");
}

/// The gate judges the same cases ingest stores: TestNG's copies of a failure are not
/// counted again.
#[test]
fn the_gate_reads_a_testng_folder_like_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.db");
    let folder = fixture("surefire/default/surefire-reports");
    let out = flakehound(
        &db,
        &[
            "gate",
            "--json",
            "--no-ingest",
            "--commit",
            "abc1234",
            "--job",
            "unit",
            folder.to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        verdict["rejected"].as_array().map(Vec::len),
        Some(0),
        "{verdict} {err}"
    );
    assert_eq!(verdict["tests"], 5, "{verdict}");
    assert_eq!(verdict["failed"], 1, "{verdict}");
    assert_eq!(verdict["unforgiven"][0]["name"], "alwaysFails", "{verdict}");
    assert_eq!(
        out.status.code(),
        Some(1),
        "a real failure fails the gate: {err}"
    );
}

/// A manifest row whose folder holds only other tools' XML is rejected (exit 1), not
/// dropped silently; the other rows are stored.
#[test]
fn a_manifest_row_of_only_other_xml_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let only = dir.path().join("crashed");
    std::fs::create_dir_all(&only).unwrap();
    std::fs::write(only.join("pom.xml"), "<project/>").unwrap();
    let good = fixture("surefire/default/surefire-reports");
    let manifest = dir.path().join("runs.csv");
    std::fs::write(
        &manifest,
        format!(
            "path,commit,branch,job,run_id,attempt,started_at\n{},abc1234,main,unit,1,1,2026-11-20T10:00:00Z\ncrashed,abc1234,main,unit,2,1,2026-11-20T11:00:00Z\n",
            good.display()
        ),
    )
    .unwrap();
    let db = dir.path().join("f.db");
    let out = flakehound(
        &db,
        &["ingest", "--json", "--manifest", manifest.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (s["runs"].as_u64(), s["tests"].as_u64()),
        (Some(1), Some(5)),
        "{s}"
    );
    assert_eq!(s["rejected"], 1, "{s}");
    assert!(err.contains("crashed: no JUnit reports"), "{err}");
}

/// Reports too big to hold (streamed) follow the same rules: a huge TestNG copy is left
/// out when Surefire's report is there, and a huge `testng-results.xml` is skipped.
#[test]
fn huge_testng_copies_and_other_xml_follow_the_same_rules() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("surefire-reports");
    let src = fixture("surefire/default/surefire-reports");
    for f in flakehound::ingest::report_files(&src).unwrap() {
        let to = folder.join(f.strip_prefix(&src).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&f, &to).unwrap();
    }
    let pad = flakehound::ingest::STREAM_THRESHOLD as usize + 1024;
    for big in ["Surefire suite/Surefire test.xml", "testng-results.xml"] {
        let p = folder.join(big);
        let mut text = std::fs::read(&p).unwrap();
        text.resize(text.len() + pad, b'\n');
        std::fs::write(&p, text).unwrap();
    }
    let db = dir.path().join("f.db");
    let (code, s, err) = ingest(&db, &[&folder]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(s["tests"], 5, "{s}");
    assert_eq!(s["not_junit"], 3, "{s}");
    assert_eq!(s["duplicates"], 2, "{s}");
    // Without Surefire's report the huge JUnitXMLReporter copy is the one kept, streamed.
    std::fs::remove_file(folder.join("TEST-example.FlakyTest.xml")).unwrap();
    let db = dir.path().join("g.db");
    let (code, s, err) = ingest(&db, &[&folder]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(s["tests"], 5, "{s}");
    assert_eq!(s["duplicates"], 1, "{s}");
}
