//! Conformance of the JUnit parser against the corpus of real reports in
//! `fixtures/corpus/` (see its README.md and `docs/conformance.md`).
//!
//! * every positive report parses;
//! * every negative report (`malformed`, `non-junit-root`, `empty`) is rejected with a
//!   located error;
//! * where `<report>.expected.json` exists, our counts equal publish-unit-test-result-action's,
//!   or the difference is in [`KNOWN_DIFFERENCES`] (mirrored in `docs/conformance.md`);
//! * every report with rerun elements yields the attempts those elements imply;
//! * external entities are never resolved.
//!
//! When the corpus is absent (or its manifest names a file that is not there) the tests
//! fail: a missing corpus must never read as a passing parser.
//!
//! How our model maps to the expected counts. Those are publish-unit-test-result-action's
//! published stats: `testcases`/`passed`/`failed`/`errors`/`skipped` are its "runs"
//! (`<testcase>` entries, taken from the suites' declared `tests=`/`failures=`/… when
//! present; rerun elements ignored), `unique_tests` its "tests", `suites` its leaf suites.
//!
//! | field | ours |
//! | --- | --- |
//! | `testcases` | `Report::testcase_elements()`: `<testcase>` elements in the file |
//! | `passed`, `failed`, `errors`, `skipped` | one per `<testcase>` element, from the [`TestCase`] that [`parse_any`] hands over for that element (before repeated cases of one test are merged; the `SUITE_ERROR_CASE` stand-ins for suite-level errors left out): `skipped` if [`RunOutcome::Skipped`]; `passed` if `Passed` or `Flaky` (a Surefire/nextest `flakyFailure` case passed in the end); if `Failed`, `errors` or `failed` by whether its first executed attempt is `Errored` or `Failed` (the element's own `<error>`/`<failure>`: rerun attempts follow it) |
//! | `unique_tests` | `Report::cases.len()`: tests after merging repeated `<testcase>`s by identity (classname, name, file) |
//! | `suites` | `ReportInfo::leaf_suites`: `<testsuite>`s holding `<testcase>`s directly or no other suite |

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use flakehound::junit::{self, parse_any, parse_file, FileError, SUITE_ERROR_CASE};
use flakehound::model::{AttemptOutcome, RunOutcome, TestCase};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/corpus");

/// A difference from publish-unit-test-result-action that we keep on purpose.
struct Known {
    file: &'static str,
    field: &'static str,
    ours: i64,
    theirs: i64,
    reason: &'static str,
}

const DUPLICATES: &str = "the same classname and name appear again after a passing case; a runner reruns a test only after it failed, so the repeat is another test with the same name and counts as its own unique test; their unique count merges same-named cases";
const MULTI: &str = "their run counts tally result elements (3 <skipped>, 2 <failure>, 1 <error> in 4 testcases; passed = 4 - 6 = -2); a testcase is one result, the most severe of its children; their per-test counts (1/1/1/1) equal ours";
const NOCASES: &str = "the suite declares tests=6 failures=1 skipped=2 but holds no <testcase>; their run counts come from the declared attributes, ours from the cases present";
const DISABLED: &str = "5 cases have status='disabled' and no result element: not run, so skipped; their run counts come from the suites' declared counts, which add disabled= only when skipped= is nonzero (here skipped='0'), so the 5 count as passed";
const INCONCLUSIVE: &str = "the NUnit 'Inconclusive' case holds a <skipped> child, so skipped; their run counts come from the suites' declared skipped=\"0\" (their own case-level result for it is 'skipped')";
const MSTEST: &str = "MSTest conversion: the outer suite declares tests=3 failures=1 skipped=1 but the converter kept only the passing <testcase>; their run counts come from the declared attributes, ours from the one case present";

/// Mirrors the table in `docs/conformance.md`; keep both in step.
const KNOWN_DIFFERENCES: &[Known] = &[
    Known {
        file: "publish-unit-test-result-action/python__test__files__junit-xml__mocha__latex-utensils.xml",
        field: "unique_tests",
        ours: 109,
        theirs: 101,
        reason: DUPLICATES,
    },
    Known {
        file: "publish-unit-test-result-action/python__test__files__nunit__nunit3__jenkins__NUnit-correct2.junit-xml",
        field: "unique_tests",
        ours: 218,
        theirs: 183,
        reason: DUPLICATES,
    },
    Known {
        file: "publish-unit-test-result-action/python__test__files__xunit__mstest__fixie.junit-xml",
        field: "unique_tests",
        ours: 7,
        theirs: 5,
        reason: DUPLICATES,
    },
    Known {
        file: "publish-unit-test-result-action/python__test__files__xunit__mstest__pickles.junit-xml",
        field: "unique_tests",
        ours: 4,
        theirs: 3,
        reason: DUPLICATES,
    },
    Known {
        file: "publish-unit-test-result-action/python__test__files__junit-xml__junit.multiresult.xml",
        field: "passed",
        ours: 1,
        theirs: -2,
        reason: MULTI,
    },
    Known {
        file: "publish-unit-test-result-action/python__test__files__junit-xml__junit.multiresult.xml",
        field: "failed",
        ours: 1,
        theirs: 2,
        reason: MULTI,
    },
    Known {
        file: "publish-unit-test-result-action/python__test__files__junit-xml__junit.multiresult.xml",
        field: "skipped",
        ours: 1,
        theirs: 3,
        reason: MULTI,
    },
    Known {
        file: "publish-unit-test-result-action/python__test__files__junit-xml__no-cases-but-tests.xml",
        field: "testcases",
        ours: 0,
        theirs: 6,
        reason: NOCASES,
    },
    Known {
        file: "publish-unit-test-result-action/python__test__files__junit-xml__no-cases-but-tests.xml",
        field: "passed",
        ours: 0,
        theirs: 3,
        reason: NOCASES,
    },
    Known {
        file: "publish-unit-test-result-action/python__test__files__junit-xml__no-cases-but-tests.xml",
        field: "failed",
        ours: 0,
        theirs: 1,
        reason: NOCASES,
    },
    Known {
        file: "publish-unit-test-result-action/python__test__files__junit-xml__no-cases-but-tests.xml",
        field: "skipped",
        ours: 0,
        theirs: 2,
        reason: NOCASES,
    },
    Known {
        file: "publish-unit-test-result-action/python__test__files__junit-xml__no-cases-but-tests.xml",
        field: "unique_tests",
        ours: 0,
        theirs: 6,
        reason: NOCASES,
    },
    Known {
        file: "publish-unit-test-result-action/python__test__files__junit-xml__tst__disabled.xml",
        field: "passed",
        ours: 6,
        theirs: 11,
        reason: DISABLED,
    },
    Known {
        file: "publish-unit-test-result-action/python__test__files__junit-xml__tst__disabled.xml",
        field: "skipped",
        ours: 5,
        theirs: 0,
        reason: DISABLED,
    },
    Known {
        file: "publish-unit-test-result-action/python__test__files__nunit__nunit3__jenkins__NUnit-issue33493.junit-xml",
        field: "passed",
        ours: 1,
        theirs: 2,
        reason: INCONCLUSIVE,
    },
    Known {
        file: "publish-unit-test-result-action/python__test__files__nunit__nunit3__jenkins__NUnit-issue33493.junit-xml",
        field: "skipped",
        ours: 1,
        theirs: 0,
        reason: INCONCLUSIVE,
    },
    Known {
        file: "publish-unit-test-result-action/python__test__files__xunit__mstest__jenkinsci__testcase2.junit-xml",
        field: "testcases",
        ours: 1,
        theirs: 3,
        reason: MSTEST,
    },
    Known {
        file: "publish-unit-test-result-action/python__test__files__xunit__mstest__jenkinsci__testcase2.junit-xml",
        field: "failed",
        ours: 0,
        theirs: 1,
        reason: MSTEST,
    },
    Known {
        file: "publish-unit-test-result-action/python__test__files__xunit__mstest__jenkinsci__testcase2.junit-xml",
        field: "skipped",
        ours: 0,
        theirs: 1,
        reason: MSTEST,
    },
];

const NEGATIVE_FEATURES: &[&str] = &["malformed", "non-junit-root", "empty"];
const RERUN_ELEMENTS: &[&str] = &["flakyFailure", "flakyError", "rerunFailure", "rerunError"];
const FIELDS: &[&str] = &[
    "testcases",
    "passed",
    "failed",
    "errors",
    "skipped",
    "unique_tests",
    "suites",
];

struct Row {
    file: String,
    producer: String,
    features: Vec<String>,
    expected_results: Vec<String>,
}

impl Row {
    fn has(&self, feature: &str) -> bool {
        self.features.iter().any(|f| f == feature)
    }

    fn negative(&self) -> bool {
        NEGATIVE_FEATURES.iter().any(|f| self.has(f))
    }

    fn path(&self) -> PathBuf {
        corpus().join(&self.file)
    }

    fn expected_json(&self) -> Option<PathBuf> {
        let dir = self.path().parent()?.to_path_buf();
        self.expected_results
            .iter()
            .find(|e| e.ends_with(".expected.json"))
            .map(|e| dir.join(e))
    }
}

fn corpus() -> PathBuf {
    PathBuf::from(CORPUS)
}

/// The manifest rows. Panics when the corpus is not there: the tests fail, never skip.
fn manifest() -> Vec<Row> {
    let path = corpus().join("MANIFEST.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "conformance corpus missing: cannot read {} ({e}); it is part of the repository (fixtures/corpus/), restore it with `git checkout -- fixtures/corpus`",
            path.display()
        )
    });
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("manifest header").split('\t').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("manifest has no `{name}` column"))
    };
    let (file, producer, features, expected) = (
        col("file"),
        col("producer"),
        col("features"),
        col("expected_results"),
    );
    let split = |s: &str| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let rows: Vec<Row> = lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cells: Vec<&str> = line.split('\t').collect();
            let cell = |i: usize| cells.get(i).copied().unwrap_or("");
            Row {
                file: cell(file).to_string(),
                producer: cell(producer).to_string(),
                features: split(cell(features)),
                expected_results: split(cell(expected)),
            }
        })
        .collect();
    assert!(!rows.is_empty(), "empty manifest {}", path.display());
    rows
}

/// Per-element tallies, mapped as described at the top of this file.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct ElementTally {
    passed: u64,
    failed: u64,
    errors: u64,
    skipped: u64,
}

fn tally(case: &TestCase, t: &mut ElementTally) {
    match case.run_outcome() {
        RunOutcome::Skipped => t.skipped += 1,
        RunOutcome::Passed | RunOutcome::Flaky => t.passed += 1,
        RunOutcome::Failed => {
            let first = case
                .attempts
                .iter()
                .find(|a| a.outcome != AttemptOutcome::Skipped)
                .map(|a| a.outcome);
            if first == Some(AttemptOutcome::Errored) {
                t.errors += 1;
            } else {
                t.failed += 1;
            }
        }
    }
}

/// Every case the parser hands over before merging: one per `<testcase>` element, plus
/// one [`SUITE_ERROR_CASE`] per suite with its own `<error>` (see [`testcase_elements`]).
fn elements(path: &Path) -> Vec<TestCase> {
    let file = std::fs::File::open(path).expect("open");
    let mut out = Vec::new();
    parse_any(file, |case, _| {
        out.push(case);
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    out
}

/// The cases of the `<testcase>` elements only, in document order.
fn testcase_elements(path: &Path) -> Vec<TestCase> {
    elements(path)
        .into_iter()
        .filter(|c| c.name != SUITE_ERROR_CASE)
        .collect()
}

fn our_counts(path: &Path) -> BTreeMap<&'static str, i64> {
    let report = parse_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut t = ElementTally::default();
    for case in testcase_elements(path) {
        tally(&case, &mut t);
    }
    let n = |v: u64| i64::try_from(v).expect("count fits i64");
    BTreeMap::from([
        ("testcases", n(report.testcase_elements())),
        ("passed", n(t.passed)),
        ("failed", n(t.failed)),
        ("errors", n(t.errors)),
        ("skipped", n(t.skipped)),
        ("unique_tests", n(report.cases.len() as u64)),
        ("suites", n(report.info.leaf_suites)),
    ])
}

/// Their counts. Signed: one of their expectations is negative (see KNOWN_DIFFERENCES).
fn their_counts(path: &Path) -> BTreeMap<&'static str, i64> {
    let text = std::fs::read_to_string(path).expect("read expected.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("expected.json is JSON");
    FIELDS
        .iter()
        .map(|f| {
            let v = json[*f]
                .as_i64()
                .unwrap_or_else(|| panic!("{}: no integer `{f}`", path.display()));
            (*f, v)
        })
        .collect()
}

#[test]
fn positive_reports_parse() {
    let rows = manifest();
    let mut failures = String::new();
    let mut parsed = 0;
    for row in rows.iter().filter(|r| !r.negative()) {
        match parse_file(&row.path()) {
            Ok(report) => {
                parsed += 1;
                // The streamed cases are the <testcase> elements plus one per broken suite.
                let n = elements(&row.path()).len() as u64;
                if n != report.testcase_elements() + report.info.suite_errors {
                    let _ = writeln!(
                        failures,
                        "{}: {} cases streamed, {} <testcase> elements and {} suite errors",
                        row.file,
                        n,
                        report.testcase_elements(),
                        report.info.suite_errors
                    );
                }
            }
            Err(e) => {
                let _ = writeln!(failures, "{} ({}): {e}", row.file, row.producer);
            }
        }
    }
    println!("{parsed} positive reports parsed");
    assert!(
        failures.is_empty(),
        "positive reports rejected:\n{failures}"
    );
}

#[test]
fn negative_reports_are_rejected_with_a_location() {
    let rows = manifest();
    let mut failures = String::new();
    let mut rejected = 0;
    for row in rows.iter().filter(|r| r.negative()) {
        match parse_file(&row.path()) {
            Ok(report) => {
                let _ = writeln!(
                    failures,
                    "{} ({}): accepted with {} test case(s)",
                    row.file,
                    row.features.join(","),
                    report.testcase_elements()
                );
            }
            Err(FileError::Io(e)) => {
                let _ = writeln!(
                    failures,
                    "{}: I/O error instead of a parse error: {e}",
                    row.file
                );
            }
            Err(FileError::Parse(e)) => {
                if e.line < 1 || e.column < 1 || e.reason.trim().is_empty() {
                    let _ = writeln!(failures, "{}: badly located error {e:?}", row.file);
                } else {
                    rejected += 1;
                    println!("rejected {}: {e}", row.file);
                }
                // Where they give counts for a negative report, they rejected it too.
                if let Some(expected) = row.expected_json() {
                    let theirs = their_counts(&expected);
                    if theirs.values().any(|v| *v != 0) {
                        let _ = writeln!(
                            failures,
                            "{}: rejected, but expected counts {theirs:?}",
                            row.file
                        );
                    }
                }
            }
        }
    }
    println!("{rejected} negative reports rejected");
    assert!(
        failures.is_empty(),
        "negative reports not rejected properly:\n{failures}"
    );
}

#[test]
fn counts_match_publish_unit_test_result_action() {
    let rows = manifest();
    let mut unexplained = String::new();
    let mut used = vec![false; KNOWN_DIFFERENCES.len()];
    let mut compared = 0;
    for row in rows.iter().filter(|r| !r.negative()) {
        let Some(expected) = row.expected_json() else {
            continue;
        };
        compared += 1;
        let ours = our_counts(&row.path());
        let theirs = their_counts(&expected);
        for field in FIELDS {
            let (o, t) = (ours[field], theirs[field]);
            if o == t {
                continue;
            }
            let known = KNOWN_DIFFERENCES.iter().position(|k| {
                k.file == row.file && k.field == *field && k.ours == o && k.theirs == t
            });
            match known {
                Some(i) => {
                    used[i] = true;
                    println!(
                        "known difference {} {field}: ours {o}, theirs {t} ({})",
                        row.file, KNOWN_DIFFERENCES[i].reason
                    );
                }
                None => {
                    let _ = writeln!(
                        unexplained,
                        "{} ({}) {field}: ours {o}, theirs {t}",
                        row.file, row.producer
                    );
                }
            }
        }
    }
    println!("{compared} reports compared with expected counts");
    for (k, used) in KNOWN_DIFFERENCES.iter().zip(used) {
        if !used {
            let _ = writeln!(
                unexplained,
                "stale allow-list entry {} {}: ours {}, theirs {} no longer differs that way",
                k.file, k.field, k.ours, k.theirs
            );
        }
    }
    assert!(
        unexplained.is_empty(),
        "unexplained count differences:\n{unexplained}"
    );
}

/// What the rerun elements of one `<testcase>` say, read independently of the parser.
#[derive(Debug, Default, Clone, Copy)]
struct RerunShape {
    flaky_failures: usize,
    flaky_errors: usize,
    rerun_failures: usize,
    rerun_errors: usize,
    /// A `<failure>` or `<error>` child.
    failed: bool,
}

/// Scan a report with a bare quick-xml reader, noting every `<testcase>`'s rerun children.
fn rerun_shapes(path: &Path) -> Vec<RerunShape> {
    use quick_xml::events::Event;
    let file = std::fs::File::open(path).expect("open");
    let mut reader = quick_xml::Reader::from_reader(BufReader::new(file));
    let mut buf = Vec::new();
    let mut shapes = Vec::new();
    let mut depth = 0usize;
    let mut case_depth: Option<usize> = None;
    let mut current = RerunShape::default();
    loop {
        let event = reader.read_event_into(&mut buf).expect("well-formed");
        match &event {
            Event::Start(e) | Event::Empty(e) => {
                let empty = matches!(event, Event::Empty(_));
                let name = e.local_name().as_ref().to_vec();
                depth += 1;
                match (case_depth, name.as_slice()) {
                    (None, b"testcase") => {
                        case_depth = Some(depth);
                        current = RerunShape::default();
                    }
                    (Some(d), child) if depth == d + 1 => match child {
                        b"flakyFailure" => current.flaky_failures += 1,
                        b"flakyError" => current.flaky_errors += 1,
                        b"rerunFailure" => current.rerun_failures += 1,
                        b"rerunError" => current.rerun_errors += 1,
                        b"failure" | b"error" => current.failed = true,
                        _ => {}
                    },
                    _ => {}
                }
                if empty {
                    if case_depth == Some(depth) {
                        shapes.push(current);
                        case_depth = None;
                    }
                    depth -= 1;
                }
            }
            Event::End(_) => {
                if case_depth == Some(depth) {
                    shapes.push(current);
                    case_depth = None;
                }
                depth -= 1;
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    shapes
}

#[test]
fn rerun_elements_become_attempts() {
    let rows = manifest();
    let mut failures = String::new();
    let mut checked = 0;
    let mut attempts_seen = 0;
    for row in rows
        .iter()
        .filter(|r| !r.negative() && RERUN_ELEMENTS.iter().any(|f| r.has(f)))
    {
        checked += 1;
        let path = row.path();
        let shapes = rerun_shapes(&path);
        let cases = testcase_elements(&path);
        if shapes.len() != cases.len() {
            let _ = writeln!(
                failures,
                "{}: {} <testcase> elements, parser gave {}",
                row.file,
                shapes.len(),
                cases.len()
            );
            continue;
        }
        let mut total_reruns = 0;
        for (i, (shape, case)) in shapes.iter().zip(&cases).enumerate() {
            let flaky = shape.flaky_failures + shape.flaky_errors;
            let reruns = shape.rerun_failures + shape.rerun_errors;
            total_reruns += flaky + reruns;
            let outcomes: Vec<AttemptOutcome> = case.attempts.iter().map(|a| a.outcome).collect();
            let mut expect = Vec::new();
            // Flaky attempts ran (and failed) before the final result, reruns after it.
            expect.extend(std::iter::repeat_n(
                AttemptOutcome::Failed,
                shape.flaky_failures,
            ));
            expect.extend(std::iter::repeat_n(
                AttemptOutcome::Errored,
                shape.flaky_errors,
            ));
            let final_outcome = outcomes.get(flaky).copied();
            expect.push(final_outcome.unwrap_or(AttemptOutcome::Passed));
            expect.extend(std::iter::repeat_n(
                AttemptOutcome::Failed,
                shape.rerun_failures,
            ));
            expect.extend(std::iter::repeat_n(
                AttemptOutcome::Errored,
                shape.rerun_errors,
            ));
            let sorted = |v: &[AttemptOutcome]| {
                let mut v: Vec<String> = v.iter().map(|o| format!("{o:?}")).collect();
                v[..].sort();
                v
            };
            // Order within the flaky group and within the rerun group follows the document;
            // compare those groups as multisets, the final attempt exactly.
            let ok = outcomes.len() == expect.len()
                && sorted(&outcomes[..flaky]) == sorted(&expect[..flaky])
                && sorted(&outcomes[flaky + 1..]) == sorted(&expect[flaky + 1..])
                && (shape.failed == final_outcome.is_some_and(AttemptOutcome::is_failure));
            if !ok {
                let _ = writeln!(
                    failures,
                    "{} testcase #{i} {}: expected attempts {expect:?} from {shape:?}, got {outcomes:?}",
                    row.file, case.name
                );
            }
            if flaky > 0
                && !shape.failed
                && final_outcome == Some(AttemptOutcome::Passed)
                && case.run_outcome() != RunOutcome::Flaky
            {
                let _ = writeln!(failures, "{} #{i}: not flaky", row.file);
            }
            if reruns > 0 && shape.failed && case.run_outcome() != RunOutcome::Failed {
                let _ = writeln!(failures, "{} #{i}: reruns failed but not Failed", row.file);
            }
            attempts_seen += case.attempts.len();
        }
        if total_reruns == 0 {
            let _ = writeln!(
                failures,
                "{}: tagged with rerun elements but has none",
                row.file
            );
        }
        // Merging repeated cases never loses an attempt (outside pytest, whose split
        // teardown errors are folded into the attempt they belong to).
        let report = parse_file(&path).expect("parses");
        if report.info.dialect == junit::Dialect::Pytest {
            continue;
        }
        let merged: usize = report.cases.iter().map(|c| c.attempts.len()).sum();
        let per_element: usize = cases.iter().map(|c| c.attempts.len()).sum();
        if merged != per_element {
            let _ = writeln!(
                failures,
                "{}: {per_element} attempts in elements, {merged} after merging",
                row.file
            );
        }
    }
    println!("{checked} reports with rerun elements checked, {attempts_seen} attempts");
    assert!(checked > 0 || rows.is_empty());
    assert!(failures.is_empty(), "rerun attempts wrong:\n{failures}");
}

#[test]
fn external_entities_are_not_resolved() {
    let rows = manifest();
    let xxe: Vec<&Row> = rows.iter().filter(|r| r.has("xxe")).collect();
    assert!(!xxe.is_empty(), "the corpus has no `xxe` report");
    for row in xxe {
        let path = row.path();
        let bytes = std::fs::read(&path).expect("read");
        // The report itself is not a JUnit report: rejected, and nothing of it leaks.
        match parse_file(&path) {
            Err(FileError::Parse(e)) => assert!(e.line >= 1 && e.column >= 1, "{e:?}"),
            other => panic!("{}: must be rejected, got {other:?}", row.file),
        }

        // The same DOCTYPE in front of a JUnit report: its entities must stay unexpanded.
        // The external entity points at a file whose content we can recognise.
        let text = String::from_utf8_lossy(&bytes);
        let doctype_end = text.find("]>").expect("xxe report has an internal subset") + 2;
        let doctype_start = text.find("<!DOCTYPE").expect("xxe report has a DOCTYPE");
        let secret_dir = tempfile::tempdir().expect("tempdir");
        let secret = secret_dir.path().join("secret.txt");
        std::fs::write(&secret, "TOP-SECRET-CONTENT").unwrap();
        let subset = text[doctype_start..doctype_end]
            .replace("$OOB_LINK$", &format!("file://{}", secret.display()))
            .replace("]>", "");
        let report = format!(
            "<?xml version=\"1.0\"?>\n{subset}\n<!ENTITY xxe SYSTEM \"file://{}\">\n]>\n\
             <testsuite name=\"&xxe;\"><testcase classname=\"c\" name=\"t&xxe;\">\
             <failure message=\"&xxe;\">&xxe;&oob;</failure></testcase></testsuite>",
            secret.display()
        );
        let parsed = junit::parse_bytes(report.as_bytes()).expect("the JUnit variant parses");
        let case = &parsed.cases[0];
        let failure = case.attempts[0].failure.as_ref().expect("failure");
        let seen = format!(
            "{} {} {:?} {:?} {:?}",
            case.classname, case.name, case.suite, failure.message, failure.body
        );
        assert!(
            !seen.contains("TOP-SECRET"),
            "external entity resolved: {seen}"
        );
        assert_eq!(case.name, "t&xxe;", "entity reference kept as written");
        assert_eq!(failure.body.as_deref(), Some("&xxe;&oob;"));
    }
}

/// The corpus in the repository is whole: every manifest row's report is there with the
/// manifest's byte size (so no checkout rewrote line endings or a BOM), every expected
/// result beside it, every source folder with its licence, and no file over 2 MB.
#[test]
fn corpus_is_complete_and_byte_identical() {
    let path = corpus().join("MANIFEST.tsv");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("conformance corpus missing: {} ({e})", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("manifest header").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (file, bytes, expected) = (col("file"), col("bytes"), col("expected_results"));
    let mut checked = 0;
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let cells: Vec<&str> = line.split('\t').collect();
        let report = corpus().join(cells[file]);
        let meta = std::fs::metadata(&report)
            .unwrap_or_else(|e| panic!("{}: listed in MANIFEST.tsv but {e}", report.display()));
        let want: u64 = cells[bytes].parse().expect("bytes column");
        assert_eq!(
            meta.len(),
            want,
            "{}: size differs from MANIFEST.tsv",
            report.display()
        );
        for e in cells[expected]
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let p = report.parent().unwrap().join(e);
            assert!(p.is_file(), "{}: expected result missing", p.display());
        }
        checked += 1;
    }
    assert!(checked > 600, "only {checked} manifest rows");
    let mut folders = 0;
    for entry in std::fs::read_dir(corpus()).unwrap() {
        let entry = entry.unwrap();
        if !entry.file_type().unwrap().is_dir() {
            continue;
        }
        let dir = entry.path();
        let licence = if entry.file_name() == "_schemas" {
            dir.join("LICENSES")
        } else {
            dir.join("LICENSE")
        };
        assert!(licence.exists(), "{}: no licence", dir.display());
        folders += 1;
    }
    assert!(folders > 30, "only {folders} source folders");
    let mut stack = vec![corpus()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                let len = entry.metadata().unwrap().len();
                assert!(
                    len <= 2 << 20,
                    "{}: {len} bytes, over 2 MB",
                    entry.path().display()
                );
            }
        }
    }
}
