//! The scorer's core promises: flaky only on same-commit evidence; breakages are not flaky.

mod common;

use common::{History, O};
use flakehound::score::{score, ScoreOptions, Status};
use flakehound::store::{day_of, pg, RunFilter, Store};

fn status_of(store: &flakehound::store::Store, name: &str, job: &str) -> Status {
    let scored = score(store, &ScoreOptions::default()).unwrap();
    scored
        .tests
        .iter()
        .find(|t| t.name == name && t.job == job)
        .map(|t| t.status)
        .unwrap_or(Status::Stable)
}

#[test]
fn pass_and_fail_on_one_commit_is_flaky() {
    let mut h = History::new();
    // Commit c1: attempt 1 fails, the job re-run passes.
    h.run(
        "unit",
        "main",
        "c1",
        "1",
        1,
        0.0,
        &[("A", "t", O::Fail), ("A", "ok", O::Pass)],
    );
    h.run(
        "unit",
        "main",
        "c1",
        "1",
        2,
        0.2,
        &[("A", "t", O::Pass), ("A", "ok", O::Pass)],
    );
    for i in 0..10 {
        h.run(
            "unit",
            "main",
            &format!("c{}", i + 2),
            &format!("{}", i + 2),
            1,
            1.0 + f64::from(i),
            &[("A", "t", O::Pass), ("A", "ok", O::Pass)],
        );
    }
    let store = h.ingest();
    let scored = score(&store, &ScoreOptions::default()).unwrap();
    let t = scored.tests.iter().find(|t| t.name == "t").unwrap();
    assert_eq!(t.status, Status::Flaky);
    assert_eq!(t.flaky_commits, 1);
    assert_eq!(t.evidence[0].commit, "c1");
    assert_eq!((t.evidence[0].passes, t.evidence[0].failures), (1, 1));
    assert!(t.flake_rate_low < t.flake_rate && t.flake_rate < t.flake_rate_high);
    assert_eq!(
        t.observed_retries, 1,
        "the one retry was caused only by this test"
    );
    assert!(t.retries_per_day > 0.0);
    assert!(scored.tests.iter().all(|t| t.name != "ok"));
}

#[test]
fn broken_then_fixed_is_never_flaky() {
    let mut h = History::new();
    h.run("unit", "pr/7", "p1", "1", 1, 0.0, &[("A", "t", O::Pass)]);
    // p2 breaks the test: the job is retried and fails again.
    h.run("unit", "pr/7", "p2", "2", 1, 1.0, &[("A", "t", O::Fail)]);
    h.run("unit", "pr/7", "p2", "2", 2, 1.1, &[("A", "t", O::Fail)]);
    // p3 fixes it.
    h.run("unit", "pr/7", "p3", "3", 1, 2.0, &[("A", "t", O::Pass)]);
    h.run("unit", "pr/7", "p4", "4", 1, 3.0, &[("A", "t", O::Pass)]);
    let store = h.ingest();
    assert_ne!(status_of(&store, "t", "unit"), Status::Flaky);
}

#[test]
fn a_regression_on_main_lasting_commits_is_not_flaky() {
    let mut h = History::new();
    let seq = [
        O::Pass,
        O::Pass,
        O::Fail,
        O::Fail,
        O::Fail,
        O::Pass,
        O::Pass,
    ];
    for (i, o) in seq.iter().enumerate() {
        h.run(
            "unit",
            "main",
            &format!("m{i}"),
            &format!("{i}"),
            1,
            i as f64,
            &[("A", "t", *o)],
        );
    }
    let store = h.ingest();
    let s = status_of(&store, "t", "unit");
    assert!(s != Status::Flaky && s != Status::Suspect, "{s:?}");
}

#[test]
fn broken_on_one_platform_passing_on_another_is_not_flaky() {
    let mut h = History::new();
    for i in 0..4 {
        let c = format!("c{i}");
        let id = format!("{i}");
        h.run(
            "e2e-linux",
            "main",
            &c,
            &id,
            1,
            f64::from(i),
            &[("E", "t", O::Pass)],
        );
        h.run(
            "e2e-macos",
            "main",
            &c,
            &id,
            1,
            f64::from(i),
            &[("E", "t", O::FailRerun)],
        );
    }
    let store = h.ingest();
    assert_eq!(status_of(&store, "t", "e2e-macos"), Status::Broken);
    assert_ne!(status_of(&store, "t", "e2e-linux"), Status::Flaky);
    let scored = score(&store, &ScoreOptions::default()).unwrap();
    assert!(scored.flaky().next().is_none());
}

#[test]
fn in_run_reruns_absorb_flakes_into_minutes_not_retries() {
    let mut h = History::new();
    for i in 0..40 {
        let o = if i % 4 == 0 { O::FlakyInRun } else { O::Pass };
        h.run(
            "unit",
            "main",
            &format!("c{i}"),
            &format!("{i}"),
            1,
            f64::from(i),
            &[("S", "absorbed", o), ("S", "other", O::Pass)],
        );
    }
    let store = h.ingest();
    let scored = score(&store, &ScoreOptions::default()).unwrap();
    let t = scored.tests.iter().find(|t| t.name == "absorbed").unwrap();
    assert_eq!(t.status, Status::Flaky);
    assert_eq!(t.flaky_commits, 10);
    assert!(
        t.retries_per_day < 0.05,
        "retries/day {}",
        t.retries_per_day
    );
    assert!(t.in_run_rerun_minutes_per_day > 0.0);
    assert!(t.ci_minutes_per_day >= t.in_run_rerun_minutes_per_day);
    assert!(t.flake_rate > 0.1 && t.run_flake_rate < 0.05);
}

#[test]
fn lone_failures_with_passes_around_are_suspect_then_flaky() {
    let mut h = History::new();
    let mut fails = 0;
    for i in 0..30 {
        let o = if i % 10 == 5 { O::Fail } else { O::Pass };
        if o == O::Fail {
            fails += 1;
        }
        h.run(
            "unit",
            "main",
            &format!("c{i}"),
            &format!("{i}"),
            1,
            f64::from(i),
            &[("A", "t", o)],
        );
    }
    assert_eq!(fails, 3);
    let store = h.ingest();
    assert_eq!(status_of(&store, "t", "unit"), Status::Flaky);
    let opts = ScoreOptions {
        min_isolated_failures: 4,
        ..Default::default()
    };
    let scored = score(&store, &opts).unwrap();
    assert_eq!(scored.tests[0].status, Status::Suspect);
}

/// Two flakes, then a day of clean runs: a 1% flake rate explains that as well as a fix
/// does, and one day leaves little room for a fix. (The old rule, judging the streak at
/// the rate "while flaky", 2 in 4 attempts, called this fixed.)
#[test]
fn two_early_flakes_then_a_clean_day_is_not_yet_a_fix() {
    let mut h = History::new();
    h.run(
        "unit",
        "main",
        "c0",
        "0",
        1,
        0.0,
        &[("A", "t", O::FlakyInRun)],
    );
    h.run(
        "unit",
        "main",
        "c1",
        "1",
        1,
        1.0,
        &[("A", "t", O::FlakyInRun)],
    );
    for i in 2..200 {
        h.run(
            "unit",
            "main",
            &format!("c{i}"),
            &format!("{i}"),
            1,
            f64::from(i) * 0.1 + 1.0,
            &[("A", "t", O::Pass)],
        );
    }
    let store = h.ingest();
    let scored = score(&store, &ScoreOptions::default()).unwrap();
    let t = scored.tests.iter().find(|t| t.name == "t").unwrap();
    assert_eq!(t.status, Status::Flaky, "{}", t.reason);
    assert!(t.fix_posterior.unwrap() < 0.8, "{t:?}");
}

/// A week of a 1-in-3 flaky test `t` (failed attempt re-run), then a week in which the
/// runner deselects it because flakehound quarantined it.
fn quarantined_then_silent() -> (common::History, flakehound::store::Store) {
    let mut h = History::new();
    for i in 0..28 {
        let (c, id, at) = (format!("c{i}"), format!("{i}"), f64::from(i) * 6.0);
        if i % 3 == 0 {
            h.run(
                "unit",
                "main",
                &c,
                &id,
                1,
                at,
                &[("A", "t", O::Fail), ("A", "ok", O::Pass)],
            );
            h.run(
                "unit",
                "main",
                &c,
                &id,
                2,
                at + 0.2,
                &[("A", "t", O::Pass), ("A", "ok", O::Pass)],
            );
        } else {
            h.run(
                "unit",
                "main",
                &c,
                &id,
                1,
                at,
                &[("A", "t", O::Pass), ("A", "ok", O::Pass)],
            );
        }
    }
    let mut store = h.ingest();
    let scored = score(&store, &ScoreOptions::default()).unwrap();
    let opts = flakehound::quarantine::QuarantineOptions {
        min_retries_per_day: 0.0,
        ..Default::default()
    };
    let events = flakehound::quarantine::apply(&mut store, &scored, &opts).unwrap();
    assert!(events.iter().any(|e| e.name == "t"), "{events:?}");
    drop(store);
    for i in 28..56 {
        let (c, id, at) = (format!("c{i}"), format!("{i}"), f64::from(i) * 6.0);
        h.run("unit", "main", &c, &id, 1, at, &[("A", "ok", O::Pass)]);
    }
    let store = h.ingest();
    (h, store)
}

#[test]
fn a_quarantined_test_that_stops_reporting_is_not_fixed() {
    let (_h, mut store) = quarantined_then_silent();
    let scored = score(&store, &ScoreOptions::default()).unwrap();
    let t = scored.tests.iter().find(|t| t.name == "t").unwrap();
    assert_eq!(t.status, Status::Quarantined, "{}", t.reason);
    assert!(t.quarantined_since.is_some());
    assert!(t.fixed_since.is_none());
    // The week-over-week report does not call silence a fix.
    let report =
        flakehound::report::build(&store, &flakehound::report::ReportOptions::default()).unwrap();
    assert!(
        report.movement.fixed.iter().all(|m| m.name != "t"),
        "{:?}",
        report.movement.fixed
    );
    // And the quarantine keeps it.
    let opts = flakehound::quarantine::QuarantineOptions {
        min_retries_per_day: 0.0,
        ..Default::default()
    };
    let events = flakehound::quarantine::apply(&mut store, &scored, &opts).unwrap();
    assert!(
        events.iter().all(
            |e| e.name != "t" || e.action != flakehound::quarantine::QuarantineAction::Released
        ),
        "{events:?}"
    );
}

#[test]
fn a_real_fix_is_found_with_its_change_point_and_a_lucky_streak_is_not() {
    let mut h = History::new();
    // "fixed": 1 in 4 attempts fails for 120 runs, then 80 clean runs (20 failures missing).
    // "lucky": 1 in 4 throughout, but its last 10 runs happen to be clean.
    for i in 0..200u32 {
        let (c, id, at) = (format!("c{i}"), format!("{i}"), f64::from(i) * 2.0);
        let flakes = i % 4 == 1;
        let fixed = if flakes && i < 120 { O::Fail } else { O::Pass };
        let lucky = if flakes && i < 190 { O::Fail } else { O::Pass };
        h.run(
            "unit",
            "main",
            &c,
            &id,
            1,
            at,
            &[("A", "fixed", fixed), ("A", "lucky", lucky)],
        );
        if flakes {
            h.run(
                "unit",
                "main",
                &c,
                &id,
                2,
                at + 0.2,
                &[("A", "fixed", O::Pass), ("A", "lucky", O::Pass)],
            );
        }
    }
    let store = h.ingest();
    let scored = score(&store, &ScoreOptions::default()).unwrap();
    let get = |n: &str| scored.tests.iter().find(|t| t.name == n).unwrap();
    let fixed = get("fixed");
    assert_eq!(fixed.status, Status::Fixed, "{}", fixed.reason);
    assert_eq!(fixed.fixed_since_commit.as_deref(), Some("c118"));
    assert!(fixed.fix_posterior.unwrap() > 0.99, "{fixed:?}");
    assert!(
        fixed.reason.contains("clean since c118"),
        "{}",
        fixed.reason
    );
    let lucky = get("lucky");
    assert_eq!(lucky.status, Status::Flaky, "{}", lucky.reason);
    assert!(lucky.fix_posterior.unwrap() < 0.5, "{lucky:?}");
    assert!(lucky.fixed_since_commit.is_none());
}

#[test]
fn a_test_broken_every_run_does_not_hide_the_failure_rate() {
    let mut h = History::new();
    // "broken" fails every attempt from the start; "flaky" fails 2 in 5 first attempts.
    for i in 0..40u32 {
        let (c, id, at) = (format!("c{i}"), format!("{i}"), f64::from(i) * 3.0);
        let f = if i % 5 < 2 { O::Fail } else { O::Pass };
        h.run(
            "unit",
            "main",
            &c,
            &id,
            1,
            at,
            &[("A", "broken", O::Fail), ("A", "flaky", f)],
        );
        h.run(
            "unit",
            "main",
            &c,
            &id,
            2,
            at + 0.2,
            &[("A", "broken", O::Fail), ("A", "flaky", O::Pass)],
        );
    }
    let store = h.ingest();
    let scored = score(&store, &ScoreOptions::default()).unwrap();
    let p = &scored.pipeline;
    // No attempt failed *only* because of flaky tests, yet every attempt failed.
    assert_eq!(p.flake_rate, 0.0);
    assert_eq!(p.failure_rate, 1.0);
    assert_eq!(p.masked_share, 1.0);
    let flaky = scored.tests.iter().find(|t| t.name == "flaky").unwrap();
    assert_eq!(flaky.status, Status::Flaky);
    assert_eq!(flaky.masked_share, 1.0);
    // The report says so, beside the flake rate.
    let report =
        flakehound::report::build(&store, &flakehound::report::ReportOptions::default()).unwrap();
    let md = flakehound::report::to_markdown(&report);
    assert!(
        md.contains("Job failure rate, all causes: **100.00%**"),
        "{md}"
    );
    assert!(md.contains("**Masked**"), "{md}");
}

/// A run left out of the history (the gate's run, stored by an earlier call) scores as if
/// it had never been stored, also when its day is rolled up into the daily aggregate:
/// here it starts at the day's last second, so that the window ending at its start covers
/// the whole day.
fn an_excluded_run_counts_nowhere(open: impl Fn(&History) -> Store) {
    // 2025-11-20T23:59:59Z, as hours after the builder's epoch (2025-11-20T00:53:20Z).
    let last_second = (83_199.0 + 0.5) / 3600.0;
    let build = |with_judged: bool| {
        let mut h = History::new();
        h.run(
            "unit",
            "main",
            "c1",
            "1",
            1,
            1.0,
            &[("A", "t", O::Pass), ("A", "s", O::Pass)],
        )
        .run(
            "unit",
            "main",
            "c1",
            "2",
            1,
            2.0,
            &[("A", "t", O::Fail), ("A", "s", O::Pass)],
        )
        .run(
            "unit",
            "main",
            "c2",
            "3",
            1,
            3.0,
            &[("A", "t", O::Pass), ("A", "s", O::Pass)],
        );
        if with_judged {
            h.run(
                "unit",
                "main",
                "c3",
                "4",
                1,
                last_second,
                &[("A", "t", O::Fail), ("A", "s", O::Fail)],
            );
        }
        let mut store = open(&h);
        h.ingest_into(&mut store);
        let judged = store
            .runs(&RunFilter::default())
            .unwrap()
            .into_iter()
            .find(|r| r.run_id == "4");
        store.rollup(day_of(1_763_683_199)).unwrap();
        (h, store, judged)
    };
    let (_a, with, judged) = build(true);
    let (_b, without, _) = build(false);
    let judged = judged.expect("the judged run is stored");
    assert_eq!(judged.started_at, 1_763_683_199);
    let scored = |store: &Store, exclude: Vec<i64>, raw_scan: bool| {
        let s = score(
            store,
            &ScoreOptions {
                as_of: Some(judged.started_at),
                raw_scan,
                exclude_runs: exclude,
                ..ScoreOptions::default()
            },
        )
        .unwrap();
        serde_json::to_string(&s).unwrap()
    };
    let expected = scored(&without, vec![], true);
    assert_eq!(scored(&without, vec![], false), expected);
    assert_eq!(scored(&with, vec![judged.run_key], true), expected);
    assert_eq!(
        scored(&with, vec![judged.run_key], false),
        expected,
        "the aggregate counted the excluded run"
    );
    assert_ne!(scored(&with, vec![], false), expected);
}

#[test]
fn an_excluded_run_counts_nowhere_even_on_a_rolled_up_day() {
    an_excluded_run_counts_nowhere(|h| Store::open(&h.db()).unwrap());
}

#[test]
fn an_excluded_run_counts_nowhere_even_on_a_rolled_up_day_on_postgres() {
    let Some(url) = pg::test_server("an_excluded_run_counts_nowhere_on_postgres") else {
        return;
    };
    an_excluded_run_counts_nowhere(|_| Store::open(&pg::scratch_database(&url).unwrap()).unwrap());
}

/// A retry stored with an earlier start than the attempt it re-ran (a runner's clock behind,
/// or attempt 2 backfilled first and given the ingest time) is still the retry the flaky
/// failure caused.
#[test]
fn a_retry_that_seems_to_start_first_is_still_a_retry() {
    let mut h = History::new();
    // Attempt 2 (passing) stored as starting 5 minutes before attempt 1 (failing).
    h.run(
        "unit",
        "main",
        "c1",
        "1",
        1,
        0.2,
        &[("A", "t", O::Fail), ("A", "ok", O::Pass)],
    );
    h.run(
        "unit",
        "main",
        "c1",
        "1",
        2,
        0.1,
        &[("A", "t", O::Pass), ("A", "ok", O::Pass)],
    );
    for i in 0..10 {
        h.run(
            "unit",
            "main",
            &format!("c{}", i + 2),
            &format!("{}", i + 2),
            1,
            1.0 + f64::from(i),
            &[("A", "t", O::Pass), ("A", "ok", O::Pass)],
        );
    }
    let store = h.ingest();
    let scored = score(&store, &ScoreOptions::default()).unwrap();
    let t = scored.tests.iter().find(|t| t.name == "t").unwrap();
    assert_eq!(t.status, Status::Flaky);
    assert_eq!(t.observed_retries, 1, "{t:?}");
    assert!(t.retries_per_day > 0.0, "{t:?}");
    let unit = scored.jobs.iter().find(|j| j.job == "unit").unwrap();
    assert!(unit.wasted_retries_per_day > 0.0, "{unit:?}");
}

/// The posterior that test `B` is flaky, from one lone failure that says "Deadlock found",
/// in a history where test `A` failed both attempts of one commit with that message and
/// failed alone four times with `a_alone`.
fn lone_deadlock_posterior(a_alone: &'static str) -> Option<f64> {
    const DEADLOCK: &str = "Deadlock found when trying to get lock; try restarting transaction";
    let mut h = History::new();
    let fillers: Vec<String> = (0..100).map(|i| format!("t{i}")).collect();
    for c in 0..60 {
        let a = match c {
            5 | 15 | 25 | 35 => O::FailWith(a_alone),
            45 => O::FailWith(DEADLOCK),
            _ => O::Pass,
        };
        let b = if c == 52 {
            O::FailWith(DEADLOCK)
        } else {
            O::Pass
        };
        // A confirmed flake (C) and a confirmed breakage (E), to learn from.
        let flake = if c == 10 {
            O::FailWith("Timeout after 3000 ms")
        } else {
            O::Pass
        };
        let broken = if c == 30 { O::Fail } else { O::Pass };
        let mut cases = vec![
            ("S", "A", a),
            ("S", "B", b),
            ("S", "C", flake),
            ("S", "E", broken),
        ];
        cases.extend(fillers.iter().map(|t| ("S", t.as_str(), O::Pass)));
        let (commit, id) = (format!("c{c}"), format!("{c}"));
        h.run("unit", "main", &commit, &id, 1, f64::from(c), &cases);
        if matches!(c, 10 | 30 | 45) {
            // The failed job is re-run: C passes, E and A fail again.
            let again: Vec<_> = cases
                .iter()
                .map(|&(k, n, o)| (k, n, if n == "C" { O::Pass } else { o }))
                .collect();
            h.run("unit", "main", &commit, &id, 2, f64::from(c) + 0.5, &again);
        }
    }
    let store = h.ingest();
    let scored = score(&store, &ScoreOptions::default()).unwrap();
    let b = scored.tests.iter().find(|t| t.name == "B").unwrap();
    b.flaky_posterior
}

/// A test that fails alone often and failed both attempts of a commit with its usual
/// message most likely flaked twice: that commit is not learned as a breakage, so another
/// test failing alone with the same message is not judged a breakage for it.
#[test]
fn a_double_flake_is_not_learned_as_a_breakage() {
    let double_flake = lone_deadlock_posterior(
        "Deadlock found when trying to get lock; try restarting transaction",
    )
    .unwrap();
    let breakage = lone_deadlock_posterior("Connection pool exhausted for tenant").unwrap();
    assert!(double_flake > breakage, "{double_flake} vs {breakage}");
}

/// The posterior that test `B` is flaky from one lone failure on `linux`, in a two-job
/// matrix whose confirmed flakes passed on the other job and whose confirmed breakage
/// failed on both. `twin` is how B ended on `macos` on that commit (None: not run there).
/// `rolled`: every day rolled up into the daily aggregate first, as `compact --all` does.
fn lone_posterior_with_twin(twin: Option<O>, rolled: bool) -> Option<f64> {
    let mut h = History::new();
    let fillers: Vec<String> = (0..30).map(|i| format!("t{i}")).collect();
    for c in 0..60 {
        for job in ["linux", "macos"] {
            let on_linux = job == "linux";
            // Flakes strike one job; the breakage at commit 30 breaks both.
            let flake = |at: &[u32]| {
                if at.contains(&c) {
                    O::FailWith("Timeout after 3000 ms")
                } else {
                    O::Pass
                }
            };
            let c_case = if on_linux {
                flake(&[10, 20, 40])
            } else {
                flake(&[15, 25])
            };
            let e_case = if c == 30 { O::Fail } else { O::Pass };
            let mut cases = vec![("S", "A", O::Pass), ("S", "C", c_case), ("S", "E", e_case)];
            match (c, on_linux, twin) {
                (22, true, _) => cases.push(("S", "B", O::FailWith("expected 3 but was 4"))),
                (22, false, Some(o)) => cases.push(("S", "B", o)),
                (22, false, None) => {}
                _ => cases.push(("S", "B", O::Pass)),
            }
            cases.extend(fillers.iter().map(|t| ("S", t.as_str(), O::Pass)));
            let (commit, id) = (format!("c{c}"), format!("{job}-{c}"));
            h.run(job, "main", &commit, &id, 1, f64::from(c), &cases);
            if cases.iter().any(|(_, n, o)| *n != "B" && *o != O::Pass) {
                // The failed job is re-run: the flake passes, the breakage fails again.
                let again: Vec<_> = cases
                    .iter()
                    .map(|&(k, n, o)| (k, n, if n == "C" { O::Pass } else { o }))
                    .collect();
                h.run(job, "main", &commit, &id, 2, f64::from(c) + 0.5, &again);
            }
        }
    }
    let mut store = h.ingest();
    if rolled {
        store.rollup(i64::MAX).unwrap();
    }
    let scored = score(&store, &ScoreOptions::default()).unwrap();
    let b = scored
        .tests
        .iter()
        .find(|t| t.name == "B" && t.job == "linux")
        .unwrap();
    b.flaky_posterior
}

/// A lone failure whose matrix twin passed the same commit looks like a flake (a code bug
/// breaks every job): the twin's pass counts even where the test never failed in that job,
/// and whether its day is read raw or from the daily aggregate.
#[test]
fn a_matrix_twin_that_passed_the_same_commit_argues_for_a_flake() {
    let passed = lone_posterior_with_twin(Some(O::Pass), false).unwrap();
    let unknown = lone_posterior_with_twin(None, false).unwrap();
    assert!(
        passed > unknown,
        "twin passed {passed} vs no twin {unknown}"
    );
    let rolled = lone_posterior_with_twin(Some(O::Pass), true).unwrap();
    assert!(
        (rolled - passed).abs() < 1e-12,
        "rolled up {rolled} vs raw {passed}"
    );
}

/// Per-day figures are over the days the history covers. A history that started before
/// the window covers all of it, even when the window opens on a quiet weekend: its first
/// run inside the window is no start. A job that started inside the window (asked about on
/// its own) is counted from its first run.
fn per_day_figures_cover_the_window_the_history_covers(open: impl Fn(&History) -> Store) {
    let mut h = History::new();
    let case = [("A", "t", O::Pass)];
    // Job `old`: a run a day for five days, a quiet gap, then runs at 8.5 and 13 days.
    for (i, day) in [0.0, 1.0, 2.0, 3.0, 4.0, 8.5, 13.0].into_iter().enumerate() {
        h.run(
            "old",
            "main",
            &format!("o{i}"),
            &format!("o{i}"),
            1,
            day * 24.0,
            &case,
        );
    }
    // Job `new`: only at 10 and 13 days, on a branch of its own.
    for (i, day) in [10.0, 13.0].into_iter().enumerate() {
        h.run(
            "new",
            "next",
            &format!("n{i}"),
            &format!("n{i}"),
            1,
            day * 24.0,
            &case,
        );
    }
    let mut store = open(&h);
    h.ingest_into(&mut store);
    let days = |job: Option<&str>, branch: Option<&str>| {
        score(
            &store,
            &ScoreOptions {
                window_s: 7 * 86_400,
                job: job.map(str::to_string),
                branch: branch.map(str::to_string),
                ..ScoreOptions::default()
            },
        )
        .unwrap()
        .window_days
    };
    // The window is days 6–13. Before, the whole history read as 4.5 days (from 8.5).
    assert_eq!(days(None, None), 7.0);
    assert_eq!(days(Some("old"), None), 7.0);
    assert_eq!(days(None, Some("main")), 7.0);
    assert_eq!(days(Some("new"), None), 3.0);
    assert_eq!(days(None, Some("next")), 3.0);
    assert_eq!(
        days(Some("new"), Some("main")),
        1.0,
        "no runs: at least a day"
    );
    // Each job's per-day figures are over its own days, with or without `--job`: `new`'s two
    // runs are over its 3 days, `old`'s two over the 7 (rounded to two places).
    let per_day = |job: Option<&str>| {
        let s = score(
            &store,
            &ScoreOptions {
                window_s: 7 * 86_400,
                job: job.map(str::to_string),
                ..ScoreOptions::default()
            },
        )
        .unwrap();
        s.jobs
            .iter()
            .map(|j| (j.job.clone(), j.attempts_per_day))
            .collect::<Vec<_>>()
    };
    let jobs = per_day(None);
    assert_eq!(jobs, [("new".to_string(), 0.67), ("old".to_string(), 0.29)]);
    assert_eq!(per_day(Some("new")), jobs[..1]);
    // A window longer than the history is the history, from its first run.
    let all = score(
        &store,
        &ScoreOptions {
            window_s: 30 * 86_400,
            ..ScoreOptions::default()
        },
    )
    .unwrap();
    assert_eq!(all.window_days, 13.0);
}

#[test]
fn per_day_figures_cover_the_window_the_history_covers_on_sqlite() {
    per_day_figures_cover_the_window_the_history_covers(|h| Store::open(&h.db()).unwrap());
}

#[test]
fn per_day_figures_cover_the_window_the_history_covers_on_postgres() {
    let Some(url) = pg::test_server("per_day_figures_cover_the_window") else {
        return;
    };
    per_day_figures_cover_the_window_the_history_covers(|_| {
        Store::open(&pg::scratch_database(&url).unwrap()).unwrap()
    });
}

/// A push build and a pull-request build of one commit, started by the same push, are two
/// first attempts: the one that failed was never retried. The failure and the pass are still
/// same-commit evidence that the test is flaky.
#[test]
fn a_push_and_a_pull_request_build_of_one_commit_are_not_a_retry() {
    let mut h = History::new();
    let cases = |fail: bool| {
        [
            ("A", "t", if fail { O::Fail } else { O::Pass }),
            ("A", "ok", O::Pass),
        ]
    };
    for c in 0..8u32 {
        let (commit, hours) = (format!("c{c}"), f64::from(c) * 3.0);
        let fail = c % 2 == 0;
        h.run(
            "unit",
            "main",
            &commit,
            &format!("p{c}"),
            1,
            hours,
            &cases(fail),
        )
        .run(
            "unit",
            "feature",
            &commit,
            &format!("q{c}"),
            1,
            hours + 0.01,
            &cases(false),
        );
    }
    // One real retry: attempt 2 of a failed run.
    h.run("unit", "main", "c9", "p9", 1, 30.0, &cases(true))
        .run("unit", "main", "c9", "p9", 2, 30.5, &cases(false));
    let store = h.ingest();
    let scored = score(&store, &ScoreOptions::default()).unwrap();
    let t = scored.tests.iter().find(|t| t.name == "t").unwrap();
    assert_eq!(t.status, Status::Flaky);
    assert!(t.flaky_commits >= 4, "{t:?}");
    assert_eq!(t.observed_retries, 1, "{t:?}");
    let wasted: f64 = scored.jobs.iter().map(|j| j.wasted_retries_per_day).sum();
    assert!(
        (wasted - 1.0 / scored.window_days).abs() < 1e-3,
        "{wasted} over {} days",
        scored.window_days
    );
}
