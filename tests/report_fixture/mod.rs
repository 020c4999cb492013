//! A deterministic CI history for the report and quarantine tests, ingested from JUnit XML
//! through the public ingest API: two jobs, four commits a day, job re-runs after a
//! failure, tests that flake (some only in one window, one in two jobs, two that fail
//! together), a broken test and names full of `<`, `&` and quotes.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::Path;

use flakehound::ingest::{ingest, RunInput};
use flakehound::model::RunMeta;
use flakehound::store::Store;

/// 2026-01-01T00:00:00Z.
pub const BASE: i64 = 1_767_225_600;

/// splitmix64: a fixed hash, so the history never depends on a library's RNG.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A uniform number in [0, 1) from the parts.
fn roll(parts: &[u64]) -> f64 {
    let mut h = 0x5151_u64;
    for p in parts {
        h = mix(h ^ p);
    }
    (h >> 11) as f64 / (1u64 << 53) as f64
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// How a test behaves: per-attempt failure probability by day, in-run reruns, message.
pub struct Spec {
    pub classname: String,
    pub name: String,
    pub file: Option<String>,
    pub jobs: Vec<&'static str>,
    /// Failure probability of one attempt on `day` (0-based).
    pub p: Box<dyn Fn(u32) -> f64>,
    /// Fails every attempt from this day on (a real breakage).
    pub broken_from: Option<u32>,
    /// Tests with the same group fail together (one roll for the group).
    pub group: Option<u64>,
    /// The runner reruns it inside the run (Surefire `rerunFailingTestsCount`).
    pub in_run_rerun: bool,
    pub message: String,
}

impl Spec {
    pub fn stable(classname: &str, name: &str, jobs: Vec<&'static str>) -> Spec {
        Spec {
            classname: classname.into(),
            name: name.into(),
            file: None,
            jobs,
            p: Box::new(|_| 0.0),
            broken_from: None,
            group: None,
            in_run_rerun: false,
            message: String::new(),
        }
    }
}

/// The standard fixture: 14 days, so both 7-day windows have data.
pub fn standard_specs() -> Vec<Spec> {
    let mut specs = Vec::new();
    for i in 0..12 {
        specs.push(Spec::stable(
            "com.acme.core.LedgerTest",
            &format!("posts_{i:02}"),
            vec!["unit"],
        ));
        specs.push(Spec::stable(
            "com.acme.api.OrderIT",
            &format!("creates_{i:02}"),
            vec!["integration"],
        ));
    }
    // Flaky in both windows, worse in the current one.
    specs.push(Spec {
        p: Box::new(|d| if d < 7 { 0.06 } else { 0.3 }),
        message: "java.net.SocketTimeoutException: Read timed out after 3000 ms".into(),
        ..Spec::stable(
            "com.acme.PaymentServiceIT",
            "refundsTwice",
            vec!["integration"],
        )
    });
    // New in the current window; a name that needs escaping everywhere.
    specs.push(Spec {
        file: Some("tests/test_api.py".into()),
        p: Box::new(|d| if d < 7 { 0.0 } else { 0.25 }),
        message: "AssertionError: assert <Response [503]> == 200 & \"ok\"".into(),
        ..Spec::stable(
            "tests.test_api.TestUpload",
            "test_upload[<big> & \"quoted\" 'x']",
            vec!["unit"],
        )
    });
    // Flaky until day 6 (the previous window) only: fixed.
    specs.push(Spec {
        p: Box::new(|d| if d < 7 { 0.25 } else { 0.0 }),
        message: "expected:<3> but was:<2>".into(),
        ..Spec::stable("com.acme.cache.CacheTest", "evictsOldest", vec!["unit"])
    });
    // Flaky in two jobs.
    specs.push(Spec {
        p: Box::new(|_| 0.12),
        message: "clock skew 41 ms exceeds 25 ms".into(),
        ..Spec::stable(
            "com.acme.util.ClockTest",
            "ticksMonotonically",
            vec!["unit", "integration"],
        )
    });
    // Two tests that fail together, rerun inside the run.
    for name in ["migratesUp", "migratesDown"] {
        specs.push(Spec {
            p: Box::new(|_| 0.12),
            group: Some(7),
            in_run_rerun: true,
            message: "org.postgresql.util.PSQLException: deadlock detected".into(),
            ..Spec::stable("com.acme.db.MigrationIT", name, vec!["integration"])
        });
    }
    // Broken for the last three days.
    specs.push(Spec {
        broken_from: Some(11),
        message: "java.time.format.DateTimeParseException: Text '2026-13-01' could not be parsed"
            .into(),
        ..Spec::stable(
            "com.acme.legacy.DateParserTest",
            "parsesIsoDates",
            vec!["unit"],
        )
    });
    specs
}

/// Write the history as JUnit files under `dir` and ingest it into `store`.
pub fn ingest_history(
    store: &mut Store,
    dir: &Path,
    specs: &[Spec],
    days: u32,
    commits_per_day: u32,
) {
    let mut inputs = Vec::new();
    let jobs = ["integration", "unit"];
    for day in 0..days {
        for c in 0..commits_per_day {
            let k = u64::from(day * 100 + c);
            let commit = format!(
                "{:016x}{:016x}{:08x}",
                mix(k),
                mix(k ^ 0xabc),
                day * 100 + c
            );
            let started = BASE + i64::from(day) * 86_400 + 3_600 + i64::from(c) * 5 * 3_600;
            for (j, job) in jobs.iter().enumerate() {
                let mut attempt = 1u32;
                loop {
                    let (xml, failed) = run_xml(specs, job, day, &commit, attempt);
                    let path = dir.join(format!("{day:02}-{c}-{job}-{attempt}.xml"));
                    std::fs::write(&path, xml).unwrap();
                    inputs.push(RunInput {
                        meta: RunMeta {
                            commit: commit.clone(),
                            branch: "main".into(),
                            job: job.to_string(),
                            run_id: format!("{day}-{c}-{j}"),
                            attempt,
                            started_at: started + i64::from(attempt - 1) * 1_200 + j as i64 * 60,
                            duration_s: Some(if *job == "unit" { 300.0 } else { 900.0 }),
                            run_url: None,
                        },
                        started_at_known: true,
                        paths: vec![path],
                        found: Vec::new(),
                    });
                    if !failed || attempt == 3 {
                        break;
                    }
                    attempt += 1;
                }
            }
        }
    }
    let (summary, rejected) = ingest(store, &inputs, None).unwrap();
    assert!(rejected.is_empty(), "{rejected:?}");
    assert!(summary.runs > 0);
}

/// One run's report; true when a test failed the run.
fn run_xml(specs: &[Spec], job: &str, day: u32, commit: &str, attempt: u32) -> (String, bool) {
    let seed = mix(commit.len() as u64 ^ u64::from_str_radix(&commit[..15], 16).unwrap());
    let job_seed = job.len() as u64;
    let mut body = String::new();
    let mut failed_run = false;
    for (i, s) in specs.iter().enumerate() {
        if !s.jobs.contains(&job) {
            continue;
        }
        let key = s.group.unwrap_or(1000 + i as u64);
        let mut attempts: Vec<bool> = Vec::new(); // true = failed
        let tries = if s.in_run_rerun { 2 } else { 1 };
        for k in 0..tries {
            let fail = if s.broken_from.is_some_and(|b| day >= b) {
                true
            } else {
                roll(&[seed, job_seed, key, u64::from(attempt), k]) < (s.p)(day)
            };
            attempts.push(fail);
            if !fail {
                break;
            }
        }
        let attr_file = s
            .file
            .as_ref()
            .map(|f| format!(" file=\"{}\"", esc(f)))
            .unwrap_or_default();
        let _ = write!(
            body,
            "  <testcase classname=\"{}\" name=\"{}\"{attr_file} time=\"0.250\"",
            esc(&s.classname),
            esc(&s.name)
        );
        let all_failed = attempts.iter().all(|f| *f);
        if !attempts[0] {
            body.push_str("/>\n");
            continue;
        }
        body.push_str(">\n");
        let msg = esc(&s.message);
        if all_failed {
            failed_run = true;
            let _ = writeln!(
                body,
                "    <failure message=\"{msg}\" type=\"AssertionError\">at {}</failure>",
                esc(&s.classname)
            );
            if attempts.len() > 1 {
                let _ = writeln!(
                    body,
                    "    <rerunFailure message=\"{msg}\" type=\"AssertionError\"/>"
                );
            }
        } else {
            let _ = writeln!(
                body,
                "    <flakyFailure message=\"{msg}\" type=\"AssertionError\"/>"
            );
        }
        body.push_str("  </testcase>\n");
    }
    (
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"{job}\">\n{body}</testsuite>\n"),
        failed_run,
    )
}

/// The standard fixture in a fresh in-memory store.
pub fn standard_store(dir: &Path) -> Store {
    let mut store = Store::open_in_memory().unwrap();
    ingest_history(&mut store, dir, &standard_specs(), 14, 4);
    store
}
