//! Property tests: random reports round-trip through the parser and `ingest --json` with
//! exactly the generated counts; truncated or mutated reports never panic and a truncated
//! one is never accepted; and the order runs are ingested in changes no score.

mod common;

use std::collections::HashMap;
use std::path::Path;

use flakehound::junit;
use flakehound::model::AttemptOutcome;
use proptest::prelude::*;

use common::{flakehound, History, O};

/// How one `<testcase>` element ends.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Pass,
    Fail,
    Error,
    Skip,
    /// Surefire: `k` flakyFailure/flakyError attempts, then a pass.
    Flaky(u8),
    /// Surefire: a failure, then `k` rerunFailure attempts that failed too.
    FailRerun(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum A {
    P,
    F,
    E,
    S,
}

impl Shape {
    fn attempts(self) -> Vec<A> {
        match self {
            Shape::Pass => vec![A::P],
            Shape::Fail => vec![A::F],
            Shape::Error => vec![A::E],
            Shape::Skip => vec![A::S],
            Shape::Flaky(k) => (0..k)
                .map(|i| if i % 2 == 0 { A::F } else { A::E })
                .chain([A::P])
                .collect(),
            Shape::FailRerun(k) => std::iter::repeat_n(A::F, 1 + k as usize).collect(),
        }
    }
}

#[derive(Debug, Clone)]
struct Case {
    classname: String,
    name: String,
    shape: Shape,
    message: String,
    cdata: bool,
    time_ms: u32,
}

#[derive(Debug, Clone)]
struct Suite {
    name: String,
    cases: Vec<Case>,
}

#[derive(Debug, Clone)]
struct Gen {
    wrapped: bool,
    suites: Vec<Suite>,
}

/// Text with everything XML must escape, non-ASCII, and spaces.
fn text() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-zA-Z0-9_.&<>\"'é中€\\-][a-zA-Z0-9 _.&<>\"'é中€\\-]{0,11}")
        .unwrap()
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        6 => Just(Shape::Pass),
        2 => Just(Shape::Fail),
        1 => Just(Shape::Error),
        1 => Just(Shape::Skip),
        2 => (1u8..4).prop_map(Shape::Flaky),
        1 => (1u8..3).prop_map(Shape::FailRerun),
    ]
}

fn case(names: Vec<String>) -> impl Strategy<Value = Case> {
    // Names come from a small pool so that repeated <testcase>s (reruns written as
    // repeated elements) happen often.
    (
        0..names.len(),
        prop_oneof![
            Just("com.acme.A".to_string()),
            Just("B & <C>".to_string()),
            text()
        ],
        shape(),
        text(),
        any::<bool>(),
        0u32..5000,
    )
        .prop_map(move |(n, classname, shape, message, cdata, time_ms)| Case {
            classname,
            name: names[n].clone(),
            shape,
            message,
            cdata,
            time_ms,
        })
}

fn report() -> impl Strategy<Value = Gen> {
    proptest::collection::vec(text(), 1..8).prop_flat_map(|names| {
        let suite = (
            proptest::string::string_regex("s-[a-c]{1,2}").unwrap(),
            proptest::collection::vec(case(names), 0..12),
        )
            .prop_map(|(name, cases)| Suite { name, cases });
        (any::<bool>(), proptest::collection::vec(suite, 1..4)).prop_map(|(wrapped, suites)| Gen {
            wrapped: wrapped || suites.len() > 1,
            suites,
        })
    })
}

fn esc(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    for c in t.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            'é' => out.push_str("&#xE9;"),
            '€' => out.push_str("&#8364;"),
            c => out.push(c),
        }
    }
    out
}

fn xml(g: &Gen) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    if g.wrapped {
        s.push_str("<testsuites>\n");
    }
    for suite in &g.suites {
        s.push_str(&format!("<testsuite name=\"{}\">\n", esc(&suite.name)));
        for c in &suite.cases {
            s.push_str(&format!(
                "  <testcase classname=\"{}\" name=\"{}\" time=\"{}.{:03}\">",
                esc(&c.classname),
                esc(&c.name),
                c.time_ms / 1000,
                c.time_ms % 1000
            ));
            let body = if c.cdata {
                format!("<![CDATA[at {} <&>]]>", c.message.replace("]]>", ""))
            } else {
                format!("at {}", esc(&c.message))
            };
            let msg = esc(&c.message);
            match c.shape {
                Shape::Pass => s.push_str("<system-out>ok &amp; fine</system-out>"),
                Shape::Fail => s.push_str(&format!(
                    "<failure message=\"{msg}\" type=\"AssertionError\">{body}</failure>"
                )),
                Shape::Error => s.push_str(&format!(
                    "<error message=\"{msg}\" type=\"IOException\">{body}</error>"
                )),
                Shape::Skip => s.push_str("<skipped message=\"later\"/>"),
                Shape::Flaky(k) => {
                    for i in 0..k {
                        let tag = if i % 2 == 0 {
                            "flakyFailure"
                        } else {
                            "flakyError"
                        };
                        s.push_str(&format!(
                            "<{tag} message=\"{msg}\" type=\"T\"><stackTrace>{body}</stackTrace></{tag}>"
                        ));
                    }
                }
                Shape::FailRerun(k) => {
                    s.push_str(&format!(
                        "<failure message=\"{msg}\" type=\"T\">{body}</failure>"
                    ));
                    for _ in 0..k {
                        s.push_str(&format!(
                            "<rerunFailure message=\"{msg}\" type=\"T\"><stackTrace>{body}</stackTrace></rerunFailure>"
                        ));
                    }
                }
            }
            s.push_str("</testcase>\n");
        }
        s.push_str("</testsuite>\n");
    }
    if g.wrapped {
        s.push_str("</testsuites>\n");
    }
    s
}

/// A test's `(classname, name)`.
type Named = (String, String);

/// The generated truth: attempts per test identity, merged in first-seen order.
/// The tests a reader should see: a repeated case in a suite of the same name whose
/// earlier attempts all failed is a rerun of it; a repeat after a pass or a skip, or in a
/// suite of another name, is another test, named `name [#n]`.
fn truth(g: &Gen) -> Vec<(Named, Vec<A>)> {
    let mut order: Vec<Named> = Vec::new();
    let mut by: HashMap<Named, Vec<A>> = HashMap::new();
    // The test a name stands for in the suites of one name.
    let mut in_suite: HashMap<(Named, &str), Named> = HashMap::new();
    let mut repeats: HashMap<Named, u32> = HashMap::new();
    for (suite, c) in g
        .suites
        .iter()
        .flat_map(|s| s.cases.iter().map(move |c| (s.name.as_str(), c)))
    {
        let named = (c.classname.clone(), c.name.clone());
        let mut apart = || {
            let n = repeats.entry(named.clone()).or_insert(1);
            *n += 1;
            (c.classname.clone(), format!("{} [#{}]", c.name, n))
        };
        let key = match in_suite.get(&(named.clone(), suite)) {
            Some(at) if by[at].iter().all(|a| matches!(a, A::F | A::E)) => at.clone(),
            Some(_) => apart(),
            None => {
                let key = if by.contains_key(&named) {
                    apart()
                } else {
                    named.clone()
                };
                in_suite.insert((named.clone(), suite), key.clone());
                key
            }
        };
        if !by.contains_key(&key) {
            order.push(key.clone());
        }
        by.entry(key).or_default().extend(c.shape.attempts());
    }
    order
        .into_iter()
        .map(|k| {
            let a = by.remove(&k).unwrap();
            (k, a)
        })
        .collect()
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    tests: u64,
    attempts: u64,
    passed: u64,
    flaky: u64,
    failed: u64,
    skipped: u64,
}

fn counts(t: &[((String, String), Vec<A>)]) -> Counts {
    let mut c = Counts::default();
    for (_, attempts) in t {
        let executed = attempts.iter().filter(|a| **a != A::S).count() as u64;
        let failed = attempts.iter().filter(|a| matches!(a, A::F | A::E)).count() as u64;
        c.tests += 1;
        c.attempts += executed;
        if executed == 0 {
            c.skipped += 1;
        } else if failed == 0 {
            c.passed += 1;
        } else if failed < executed {
            c.passed += 1;
            c.flaky += 1;
        } else {
            c.failed += 1;
        }
    }
    c
}

fn outcome(a: AttemptOutcome) -> A {
    match a {
        AttemptOutcome::Passed => A::P,
        AttemptOutcome::Failed => A::F,
        AttemptOutcome::Errored => A::E,
        AttemptOutcome::Skipped => A::S,
    }
}

fn ingest_json(db: &Path, report: &Path) -> serde_json::Value {
    let out = flakehound(
        db,
        &[
            "ingest",
            "--commit",
            "c",
            "--job",
            "j",
            "--run-id",
            "1",
            "--started-at",
            "2026-11-20T10:00:00Z",
            "--json",
            report.to_str().unwrap(),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The parser sees exactly the generated cases, attempts, names and messages.
    #[test]
    fn parser_round_trips_generated_reports(g in report()) {
        let text = xml(&g);
        let report = junit::parse_bytes(text.as_bytes()).map_err(|e| {
            TestCaseError::fail(format!("{e}\n{text}"))
        })?;
        let elements: usize = g.suites.iter().map(|s| s.cases.len()).sum();
        prop_assert_eq!(report.info.testcases, elements as u64);
        prop_assert_eq!(report.info.suites, g.suites.len() as u64);
        let want = truth(&g);
        prop_assert_eq!(report.cases.len(), want.len());
        for (case, ((classname, name), attempts)) in report.cases.iter().zip(&want) {
            prop_assert_eq!(&case.classname, classname);
            prop_assert_eq!(&case.name, name);
            let got: Vec<A> = case.attempts.iter().map(|a| outcome(a.outcome)).collect();
            prop_assert_eq!(&got, attempts);
        }
        // Every failed attempt carries its message, unescaped.
        let messages: Vec<&str> = g
            .suites
            .iter()
            .flat_map(|s| &s.cases)
            .filter(|c| !matches!(c.shape, Shape::Pass | Shape::Skip))
            .map(|c| c.message.as_str())
            .collect();
        for case in &report.cases {
            for a in case.attempts.iter().filter(|a| a.outcome.is_failure()) {
                let m = a.failure.as_ref().and_then(|f| f.message.as_deref()).unwrap_or("");
                prop_assert!(messages.contains(&m), "unexpected message {:?}", m);
            }
        }
    }

    /// A truncated report is never accepted, and no mutation makes the parser panic.
    #[test]
    fn truncated_or_mutated_reports_never_pass_or_panic(
        g in report(),
        cut in any::<prop::sample::Index>(),
        edits in proptest::collection::vec(
            (any::<prop::sample::Index>(), prop_oneof![
                Just(&b"<"[..]), Just(&b">"[..]), Just(&b"&"[..]), Just(&b"\0"[..]),
                Just(&b"\xFF\xFE"[..]), Just(&b"]]>"[..]), Just(&b"<![CDATA["[..]),
                Just(&b"</testcase>"[..]), Just(&b"<testcase name=\"x\">"[..]),
                Just(&b"<!DOCTYPE x [<!ENTITY e \"&e;\">]>"[..]), Just(&b"&e;"[..]),
                Just(&b"\x1f\x8b"[..]), Just(&b"\""[..]),
            ]),
            0..6,
        ),
    ) {
        let text = xml(&g).into_bytes();
        let end = text.iter().rposition(|&b| b == b'>').unwrap() + 1;
        let at = cut.index(end);
        let truncated = &text[..at];
        prop_assert!(junit::parse_bytes(truncated).is_err(), "accepted a truncated report: {:?}", String::from_utf8_lossy(truncated));
        let mut mutated = text.clone();
        for (i, token) in &edits {
            let at = i.index(mutated.len() + 1);
            mutated.splice(at..at, token.iter().copied());
        }
        match junit::parse_bytes(&mutated) {
            Ok(r) => prop_assert!(r.cases.len() as u64 <= r.info.testcases),
            Err(e) => { let _ = junit::located_in(&mutated, &e); }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// `ingest --json` reports, and the database holds, exactly the generated counts.
    #[test]
    fn ingest_summary_equals_generated_counts(g in report()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.xml");
        std::fs::write(&path, xml(&g)).unwrap();
        let db = dir.path().join("f.db");
        let s = ingest_json(&db, &path);
        let want = counts(&truth(&g));
        let got = Counts {
            tests: s["tests"].as_u64().unwrap(),
            attempts: s["attempts"].as_u64().unwrap(),
            passed: s["passed"].as_u64().unwrap(),
            flaky: s["flaky"].as_u64().unwrap(),
            failed: s["failed"].as_u64().unwrap(),
            skipped: s["skipped"].as_u64().unwrap(),
        };
        prop_assert_eq!(&got, &want);
        prop_assert_eq!(s["rejected"].as_u64(), Some(0));
        let conn = rusqlite::Connection::open(&db).unwrap();
        let (rows, attempts): (i64, i64) = conn
            .query_row("SELECT COUNT(*), COALESCE(SUM(attempts), 0) FROM result", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        prop_assert_eq!(rows as u64, want.tests);
        prop_assert_eq!(attempts as u64, want.attempts);
        // The same report into PostgreSQL: the same summary, the same stored counts.
        if let Some(pg_db) = pg_scratch() {
            let p = ingest_json(&pg_db, &path);
            prop_assert_eq!(&p, &s);
            let store = flakehound::store::Store::open_read_only(&pg_db).unwrap();
            let stored = store.test_counts().unwrap();
            let sqlite = flakehound::store::Store::open_read_only(&db).unwrap();
            prop_assert_eq!(&stored, &sqlite.test_counts().unwrap());
            prop_assert_eq!(stored.iter().map(|t| t.runs).sum::<u64>(), want.tests);
            prop_assert_eq!(stored.iter().map(|t| t.attempts).sum::<u64>(), want.attempts);
        }
    }
}

/// An empty PostgreSQL database when a test server is set (see tests/postgres.rs).
fn pg_scratch() -> Option<std::path::PathBuf> {
    let url = flakehound::store::pg::test_server("proptest round trip on PostgreSQL")?;
    Some(flakehound::store::pg::scratch_database(&url).unwrap())
}

#[derive(Debug, Clone)]
struct RunSpec {
    job: usize,
    commit: usize,
    attempt: u32,
    hours: u8,
    outcomes: Vec<O>,
}

fn outcome_strategy() -> impl Strategy<Value = O> {
    prop_oneof![
        12 => Just(O::Pass),
        2 => Just(O::Fail),
        2 => Just(O::FlakyInRun),
        1 => Just(O::FailRerun),
        1 => Just(O::Skip),
    ]
}

fn history() -> impl Strategy<Value = Vec<RunSpec>> {
    proptest::collection::vec(
        (
            0usize..2,
            0usize..5,
            1u32..3,
            // A small range, so that runs often start at the same time.
            0u8..12,
            proptest::collection::vec(outcome_strategy(), 6),
        )
            .prop_map(|(job, commit, attempt, hours, outcomes)| RunSpec {
                job,
                commit,
                attempt,
                hours,
                outcomes,
            }),
        4..16,
    )
    .prop_map(|mut runs| {
        // One run per (job, commit, attempt): a run is identified by those.
        let mut seen = std::collections::HashSet::new();
        runs.retain(|r| seen.insert((r.job, r.commit, r.attempt)));
        runs
    })
}

const TESTS: [(&str, &str); 6] = [
    ("com.acme.PaymentIT", "refunds"),
    ("com.acme.PaymentIT", "charges"),
    ("com.acme.Cart", "total"),
    ("com.acme.Cart", "empty"),
    ("web.Login", "redirects"),
    ("web.Login", "locks out"),
];

fn build(runs: &[RunSpec], order: &[usize]) -> History {
    let mut h = History::new();
    add_runs(&mut h, runs, order);
    drop(h.ingest());
    h
}

fn add_runs(h: &mut History, runs: &[RunSpec], order: &[usize]) {
    for &i in order {
        let r = &runs[i];
        let cases: Vec<(&str, &str, O)> = TESTS
            .iter()
            .zip(&r.outcomes)
            .map(|(&(c, n), &o)| (c, n, o))
            .collect();
        let job = ["unit", "it"][r.job];
        h.run(
            job,
            "main",
            &format!("c{}", r.commit),
            &format!("{}-{}", job, r.commit),
            r.attempt,
            f64::from(r.hours),
            &cases,
        );
    }
}

fn outputs(db: &Path) -> Vec<Vec<u8>> {
    [
        &["flaky", "--format", "json"][..],
        &["backlog"][..],
        &["backlog", "--format", "md"][..],
        &["tests", "--format", "json"][..],
    ]
    .iter()
    .map(|args| {
        let out = flakehound(db, args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    })
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Ingesting the same runs in two orders gives byte-identical scores and backlogs.
    #[test]
    fn ingest_order_does_not_change_any_score(
        runs in history(),
        shuffle in any::<u64>(),
    ) {
        let forward: Vec<usize> = (0..runs.len()).collect();
        let mut shuffled = forward.clone();
        let mut x = shuffle | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let h = build(&runs, &forward);
        let a = outputs(&h.db());
        let b = outputs(&build(&runs, &shuffled).db());
        // And the same history on PostgreSQL, shuffled: byte-identical to SQLite.
        if let Some(pg_db) = pg_scratch() {
            let mut p = History::new();
            add_runs(&mut p, &runs, &shuffled);
            let mut store = flakehound::store::Store::open(&pg_db).unwrap();
            p.ingest_into(&mut store);
            drop(store);
            let c = outputs(&pg_db);
            for (what, (x, y)) in ["flaky", "backlog csv", "backlog md", "tests"].iter().zip(a.iter().zip(&c)) {
                prop_assert!(
                    x == y,
                    "{} differs on PostgreSQL:\n{}\n---\n{}",
                    what,
                    String::from_utf8_lossy(x),
                    String::from_utf8_lossy(y)
                );
            }
        }
        for (what, (x, y)) in ["flaky", "backlog csv", "backlog md", "tests"].iter().zip(a.iter().zip(&b)) {
            prop_assert!(
                x == y,
                "{} differs with order {:?}:\n{}\n---\n{}",
                what,
                shuffled,
                String::from_utf8_lossy(x),
                String::from_utf8_lossy(y)
            );
        }
    }
}
