use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use super::engine::{self, AttemptRec, PASS};
use super::world::World;
use super::*;
use crate::model::{AttemptOutcome, RunOutcome, TestCase};

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Every file under `dir`, relative path → blake3 of its content.
fn hash_tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().to_string();
                out.insert(
                    rel,
                    blake3::hash(&std::fs::read(&p).unwrap())
                        .to_hex()
                        .to_string(),
                );
            }
        }
    }
    out
}

#[test]
fn same_seed_same_bytes() {
    let (a, b, c) = (tempdir(), tempdir(), tempdir());
    let cfg = SimConfig::small(11);
    let out_a = simulate(&cfg, a.path()).unwrap();
    simulate(&cfg, b.path()).unwrap();
    let ha = hash_tree(a.path());
    assert_eq!(ha, hash_tree(b.path()));
    assert!(ha.len() as u64 > out_a.files);
    simulate(&SimConfig::small(12), c.path()).unwrap();
    assert_ne!(ha, hash_tree(c.path()));
    // Simulating again into the same folder replaces the previous output.
    simulate(&cfg, a.path()).unwrap();
    assert_eq!(ha, hash_tree(a.path()));
}

#[test]
fn config_round_trips_and_defaults() {
    for cfg in [
        SimConfig::demo(3),
        SimConfig::small(4),
        SimConfig::bench(10, 20, 5),
    ] {
        let json = serde_json::to_string(&cfg).unwrap();
        assert_eq!(serde_json::from_str::<SimConfig>(&json).unwrap(), cfg);
    }
    let partial: SimConfig = serde_json::from_str(
        r#"{"seed": 9, "days": 2, "cofailure_groups": [], "jobs": [{"name": "unit", "tests": 5}]}"#,
    )
    .unwrap();
    assert_eq!(
        (partial.seed, partial.days, partial.jobs[0].tests),
        (9, 2, 5)
    );
    assert!(truth(&partial).is_ok());
    let mut bad = SimConfig::small(1);
    bad.jobs[5].matrix_of = Some("nope".into());
    assert_eq!(
        truth(&bad).unwrap_err().kind(),
        std::io::ErrorKind::InvalidInput
    );
}

#[test]
fn refuses_a_foreign_reports_folder() {
    let dir = tempdir();
    std::fs::create_dir_all(dir.path().join("reports/mine")).unwrap();
    let err = simulate(&SimConfig::small(1), dir.path()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    assert!(dir.path().join("reports/mine").is_dir());
}

fn expected_outcome(tries: &[u8], skipped: bool) -> RunOutcome {
    let failed = tries.iter().filter(|&&c| c != PASS).count();
    if skipped {
        RunOutcome::Skipped
    } else if failed == 0 {
        RunOutcome::Passed
    } else if failed < tries.len() {
        RunOutcome::Flaky
    } else {
        RunOutcome::Failed
    }
}

/// Parse every report of `rec` and check it says what the simulator decided.
fn check_attempt(
    w: &World,
    rec: &AttemptRec,
    out: &Path,
    seen: &mut HashMap<(Dialect, RunOutcome), u64>,
) {
    let dir = out.join(write::attempt_dir(w, rec));
    let mut parsed: HashMap<(String, String), TestCase> = HashMap::new();
    let mut files = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        files += 1;
        let bytes = std::fs::read(&p).unwrap();
        let report = crate::junit::parse_bytes(&bytes).unwrap_or_else(|e| {
            panic!("{}: {}", p.display(), crate::junit::located_in(&bytes, &e))
        });
        for c in report.cases {
            let k = (c.classname.clone(), c.name.clone());
            assert!(
                parsed.insert(k, c).is_none(),
                "{} repeats a test",
                p.display()
            );
        }
    }
    if !rec.has_report() {
        assert_eq!(files, 0);
        return;
    }
    assert_eq!(
        parsed.len() as u64,
        write::results_of(w, rec),
        "{}",
        dir.display()
    );
    let dialect = w.dialect(rec.job as usize);
    let time = w.commits[w.runs[rec.run as usize].commit as usize].time;
    for t in w.jobs[rec.job as usize].tests.clone() {
        let test = &w.tests[t as usize];
        if !test.exists_at(time) {
            continue;
        }
        let case = parsed
            .get(&(test.classname.clone(), test.name.clone()))
            .unwrap_or_else(|| panic!("{}: {} missing", dir.display(), test.name));
        assert_eq!(case.identity(), test.identity);
        assert_eq!(case.file, test.file);
        let tries: Vec<u8> = rec
            .fail_of(t)
            .map(|f| f.tries.clone())
            .unwrap_or_else(|| vec![PASS]);
        let want = expected_outcome(&tries, test.skipped);
        let what = format!(
            "{} {} {:?} {:?}",
            dir.display(),
            test.name,
            tries,
            case.attempts
        );
        assert_eq!(case.run_outcome(), want, "{what}");
        *seen.entry((dialect, want)).or_default() += 1;
        if test.skipped {
            continue;
        }
        assert_eq!(case.executed_attempts(), tries.len(), "{what}");
        let failed = tries.iter().filter(|&&c| c != PASS).count();
        assert_eq!(case.failed_attempts(), failed, "{what}");
        for (r, (&cause, attempt)) in tries.iter().zip(&case.attempts).enumerate() {
            assert_eq!(cause != PASS, attempt.outcome.is_failure(), "{what}");
            if cause == PASS || !test.children.is_empty() {
                continue;
            }
            let msg = write::failure_msg(w, rec, t, r, cause);
            let failure = attempt.failure.as_ref().expect("failure details");
            match dialect {
                Dialect::Surefire | Dialect::Compact => {
                    let want = if msg.error {
                        AttemptOutcome::Errored
                    } else {
                        AttemptOutcome::Failed
                    };
                    assert_eq!(attempt.outcome, want, "{what}");
                    assert_eq!(failure.message.as_deref(), Some(msg.message.as_str()));
                    assert_eq!(failure.kind.as_deref(), Some(msg.kind));
                }
                Dialect::Pytest if r + 1 == tries.len() => {
                    assert_eq!(failure.message.as_deref(), Some(msg.message.as_str()));
                }
                Dialect::Gotestsum | Dialect::Nextest | Dialect::Jest => {
                    let body = failure.body.as_deref().unwrap_or("");
                    let first = msg.message.lines().next().unwrap_or("");
                    assert!(body.contains(first), "{what}: {body:?} lacks {first:?}");
                }
                _ => {}
            }
        }
    }
}

#[test]
fn reports_parse_to_what_the_simulator_decided() {
    let rerun_dialects = [
        Dialect::Surefire,
        Dialect::Pytest,
        Dialect::Gotestsum,
        Dialect::Nextest,
    ];
    let outcomes = [RunOutcome::Flaky, RunOutcome::Failed, RunOutcome::Passed];
    let covered = |seen: &HashMap<(Dialect, RunOutcome), u64>| {
        rerun_dialects
            .iter()
            .all(|&d| outcomes.iter().all(|&o| seen.contains_key(&(d, o))))
    };
    let mut seen: HashMap<(Dialect, RunOutcome), u64> = HashMap::new();
    for seed in 1..=10 {
        if seed > 2 && covered(&seen) {
            break;
        }
        let cfg = SimConfig::small(seed);
        let dir = tempdir();
        let out = simulate(&cfg, dir.path()).unwrap();
        let w = World::build(&cfg).unwrap();
        let recs = engine::simulate(&w, &[], None);
        assert_eq!(recs.len(), out.runs);
        for rec in &recs {
            check_attempt(&w, rec, dir.path(), &mut seen);
        }
    }
    // The check exercised every rerun form of every dialect.
    assert!(covered(&seen), "{seen:?}");
    assert!(seen.contains_key(&(Dialect::Jest, RunOutcome::Failed)));
    assert!(!seen.contains_key(&(Dialect::Jest, RunOutcome::Flaky)));
}

#[test]
fn bench_reports_are_compact_and_exact() {
    let cfg = SimConfig::bench(60, 80, 5);
    let dir = tempdir();
    let out = simulate(&cfg, dir.path()).unwrap();
    assert_eq!(out.runs, 60);
    assert_eq!(out.files, 60);
    assert_eq!(out.results, 60 * 80);
    let per_case = out.bytes as f64 / out.results as f64;
    assert!(per_case < 160.0, "{per_case} bytes per testcase");
    let w = World::build(&cfg).unwrap();
    let mut seen = HashMap::new();
    for rec in engine::simulate(&w, &[], None) {
        check_attempt(&w, &rec, dir.path(), &mut seen);
    }
    // Every run starts before the fixed end day, so ingest never refuses it as future-dated.
    let runs = std::fs::read_to_string(dir.path().join("runs.csv")).unwrap();
    let last = runs
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(6).unwrap().to_string())
        .max();
    assert!(last.unwrap().as_str() < "2026-10-22T00:00:00Z");
}

#[test]
fn a_long_bench_history_ends_on_the_same_past_day() {
    // 10M results (12,500 runs of 800 tests) must not run into the future either.
    for runs in [60, 12_500] {
        let cfg = SimConfig::bench(runs, 800, 1);
        let start = chrono::DateTime::parse_from_rfc3339(&cfg.start).unwrap();
        let end = start + chrono::Duration::days(i64::from(cfg.days));
        assert_eq!(end.to_rfc3339(), "2026-10-22T00:00:00+00:00", "{runs} runs");
    }
}

#[test]
fn runs_csv_is_the_ingest_manifest() {
    let dir = tempdir();
    let out = simulate(&SimConfig::small(3), dir.path()).unwrap();
    let text = std::fs::read_to_string(dir.path().join("runs.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("path,commit,branch,job,run_id,attempt,started_at,duration_s")
    );
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let mut prev: Option<(String, String)> = None;
    let mut keys = HashSet::new();
    let mut n = 0;
    for row in rdr.records() {
        let row = row.unwrap();
        n += 1;
        let (path, commit, branch, job, run_id, attempt, started, dur) = (
            &row[0], &row[1], &row[2], &row[3], &row[4], &row[5], &row[6], &row[7],
        );
        assert!(dir.path().join(path).is_dir(), "{path}");
        assert_eq!(path, format!("reports/{job}/{run_id}-{attempt}"));
        assert!(commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(branch == "main" || branch.starts_with("pr/"), "{branch}");
        assert!(started.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(started).is_ok());
        assert!(dur.parse::<u64>().unwrap() > 0);
        assert!(keys.insert((job.to_string(), run_id.to_string(), attempt.to_string())));
        let key = (started.to_string(), job.to_string());
        if let Some(p) = &prev {
            assert!(p <= &key, "rows not sorted: {p:?} then {key:?}");
        }
        prev = Some(key);
    }
    assert_eq!(n, out.runs);
    let truth: Truth =
        serde_json::from_slice(&std::fs::read(dir.path().join("truth.json")).unwrap()).unwrap();
    assert_eq!(truth, out.truth);
}

#[test]
fn fixing_a_test_changes_only_what_follows_from_it() {
    let cfg = SimConfig::small(4);
    let truth = truth(&cfg).unwrap();
    let base = replay(&cfg, &[]);
    for j in &truth.jobs {
        assert_eq!(base.job(&j.job).unwrap().retries, j.retries);
    }
    assert!(base.unmatched.is_empty());
    let mut checked = 0;
    for t in truth.flaky().filter(|t| t.flaky_failures > 0) {
        let key = t.key();
        let cf = replay(&cfg, std::slice::from_ref(&key));
        assert_eq!(cf.test(&key).unwrap().flaky_failures, 0, "{key:?}");
        // Same schedule: the same runs start at the same time; no attempt appears that
        // the baseline did not have.
        let firsts = |r: &Replay| -> Vec<(u64, u16, i64)> {
            r.attempts
                .iter()
                .filter(|a| a.attempt == 1)
                .map(|a| (a.run_id, a.job, a.started_at))
                .collect()
        };
        assert_eq!(firsts(&base), firsts(&cf));
        let base_set: HashSet<(u64, u16, u32)> = base
            .attempts
            .iter()
            .map(|a| (a.run_id, a.job, a.attempt))
            .collect();
        assert!(cf
            .attempts
            .iter()
            .all(|a| base_set.contains(&(a.run_id, a.job, a.attempt))));
        // Other jobs are untouched; the same job only loses failures.
        for (b, c) in base.tests.iter().zip(&cf.tests) {
            if b.key.job != key.job {
                assert_eq!(b, c);
            } else {
                assert!(c.failures <= b.failures);
            }
        }
        let saved = base.job(&t.job).unwrap().retries - cf.job(&t.job).unwrap().retries;
        assert!((saved as f64 / truth.days - t.true_retries_per_day).abs() < 1e-9);
        checked += 1;
    }
    assert!(checked >= 3, "{checked}");
    let unknown = TestKey::new("nope", "a", "b");
    assert_eq!(
        replay(&cfg, std::slice::from_ref(&unknown)).unmatched,
        vec![unknown]
    );
}

#[test]
fn demo_truth_has_every_kind_and_realistic_volume() {
    let cfg = SimConfig::demo(42);
    let truth = truth(&cfg).unwrap();
    let mut kinds: HashMap<Kind, usize> = HashMap::new();
    for t in &truth.tests {
        *kinds.entry(t.kind).or_default() += 1;
    }
    for k in [
        Kind::Flaky,
        Kind::Stable,
        Kind::BrokenSometimes,
        Kind::PlatformBroken,
    ] {
        assert!(kinds.get(&k).copied().unwrap_or(0) > 0, "{k:?}: {kinds:?}");
    }
    let platform: Vec<&TestTruth> = truth
        .tests
        .iter()
        .filter(|t| t.kind == Kind::PlatformBroken)
        .collect();
    assert!(platform.iter().all(|t| t.job == "e2e-macos"));
    // The same test on the sibling job is not platform-broken.
    for p in &platform {
        let sibling = truth
            .test(&TestKey::new("e2e-linux", &p.classname, &p.name))
            .unwrap();
        assert_ne!(sibling.kind, Kind::PlatformBroken);
    }
    let leaves = truth.tests.len() as f64;
    let flaky = kinds[&Kind::Flaky] as f64 / leaves;
    assert!((0.04..0.12).contains(&flaky), "flaky share {flaky}");
    assert!(truth.tests.iter().any(|t| t.cofailure_group.is_some()));
    for j in &truth.jobs {
        assert!(
            (15.0..80.0).contains(&j.attempts_per_day),
            "{}: {} attempts/day",
            j.job,
            j.attempts_per_day
        );
        assert!(j.retries_per_day > 0.0, "{}", j.job);
    }
    assert!(truth.total_true_retries_per_day > 0.0);
    // Only flaky tests both fail and pass on one commit in one job; most show it.
    let flaky_rows: Vec<&TestTruth> = truth.flaky().collect();
    let evident = flaky_rows.iter().filter(|t| t.evidence_commits > 0).count();
    assert!(evident as f64 >= 0.8 * flaky_rows.len() as f64);
    for t in truth.tests.iter().filter(|t| t.kind != Kind::Flaky) {
        assert_eq!(t.evidence_commits, 0, "{t:?}");
    }
    // True savings never exceed the job's retries, and non-flaky tests save nothing.
    for t in &truth.tests {
        let job = truth.job(&t.job).unwrap();
        assert!(t.true_retries_per_day <= job.retries_per_day + 1e-9);
        if t.kind != Kind::Flaky {
            assert_eq!(t.true_retries_per_day, 0.0);
            assert_eq!(t.flaky_failures, 0);
        }
    }
}

/// Timings and sizes; run with
/// `cargo test --release --lib sim::tests::timings -- --ignored --nocapture`.
#[test]
#[ignore]
fn timings() {
    for (name, cfg) in [
        ("small", SimConfig::small(1)),
        ("demo", SimConfig::demo(1)),
        ("bench(1000,800)", SimConfig::bench(1000, 800, 1)),
    ] {
        let dir = tempdir();
        let t0 = std::time::Instant::now();
        let out = simulate(&cfg, dir.path()).unwrap();
        let el = t0.elapsed();
        let flaky = out.truth.flaky().count();
        let evident = out.truth.flaky().filter(|t| t.evidence_commits > 0).count();
        println!(
            "{name}: {:.2?}, {} runs, {} results, {} files, {:.1} MB ({:.0} B/result), {} tests, {flaky} flaky ({evident} with evidence), {:.2} true retries/day",
            el,
            out.runs,
            out.results,
            out.files,
            out.bytes as f64 / 1e6,
            out.bytes as f64 / out.results as f64,
            out.truth.tests.len(),
            out.truth.total_true_retries_per_day,
        );
        for j in &out.truth.jobs {
            println!(
                "  {:<11} {:>4} tests, {:>5.1} attempts/day, {:>4.2} retries/day, {:>5.0} s mean, {:.2} true",
                j.job, j.tests, j.attempts_per_day, j.retries_per_day, j.mean_duration_s, j.true_retries_per_day
            );
        }
    }
}

/// Writes the demo (or `SIM_CONFIG=small`/`bench`) to `$SIM_OUT`, for inspection and
/// ingest timing.
#[test]
#[ignore]
fn write_demo_to_env_dir() {
    let Ok(dir) = std::env::var("SIM_OUT") else {
        return;
    };
    let cfg = match std::env::var("SIM_CONFIG").as_deref() {
        Ok("small") => SimConfig::small(1),
        Ok("bench") => SimConfig::bench(1000, 800, 1),
        _ => SimConfig::demo(1),
    };
    let out = simulate(&cfg, Path::new(&dir)).unwrap();
    println!("{} runs, {} results", out.runs, out.results);
}

#[test]
fn fixed_flakiness_stops_and_late_flakiness_starts() {
    let mut cfg = SimConfig::small(5);
    cfg.fix_fraction = 0.5;
    cfg.onset_fraction = 0.5;
    let world = World::build(&cfg).unwrap();
    let recs = engine::simulate(&world, &[], None);
    let (mut fixed, mut late) = (0, 0);
    for (i, t) in world.tests.iter().enumerate() {
        if t.own_rate == 0.0 || t.group.is_some() {
            continue;
        }
        fixed += usize::from(t.flaky_until != i64::MAX);
        late += usize::from(t.flaky_from != i64::MIN);
        for rec in &recs {
            let made = world.commits[world.runs[rec.run as usize].commit as usize].time;
            if let Some(f) = rec.fail_of(i as u32) {
                if !t.flaky_at(made) {
                    assert!(
                        f.tries.iter().all(|&c| c != engine::FLAKY),
                        "{} flaked outside its flaky period",
                        t.name
                    );
                }
            }
        }
    }
    assert!(fixed > 0 && late > 0, "fixed {fixed}, late {late}");
    // Truth names the fixes, and how visible each is.
    let truth = truth(&cfg).unwrap();
    assert!(truth
        .tests
        .iter()
        .any(|t| t.fixed() && t.expected_failures_after_fix > 0.0));
    // Without churn the world is the one it always was.
    let plain = World::build(&SimConfig::small(5)).unwrap();
    for (a, b) in plain.tests.iter().zip(&world.tests) {
        assert_eq!(a.own_rate, b.own_rate);
    }
}
