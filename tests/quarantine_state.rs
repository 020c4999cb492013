//! The stored quarantine: adds, keeps, renews and releases, with times taken from the
//! scores (never the wall clock), on the fixture history.

mod common;
mod report_fixture;

use flakehound::quarantine::{
    self, QuarantineAction, QuarantineFormat, QuarantineOptions, RELEASE_EXPIRED,
};
use flakehound::score::{score, ScoreOptions, Status};
use report_fixture::{standard_store, BASE};

const DAY: i64 = 86_400;

fn scored_at(store: &flakehound::store::Store, as_of: Option<i64>) -> flakehound::score::Scored {
    score(
        store,
        &ScoreOptions {
            as_of,
            ..ScoreOptions::default()
        },
    )
    .unwrap()
}

/// One commit `c` of a Go package's job, `hours` in: attempt 1 with `fails` failing and,
/// when any failed, a passing attempt 2.
fn go_commit(
    h: &mut common::History,
    pkg: &str,
    c: u32,
    hours: f64,
    names: &[&str],
    fails: &[&str],
) {
    use common::O;
    let (commit, id) = (format!("c{c}"), format!("{c}"));
    let first: Vec<(&str, &str, O)> = names
        .iter()
        .map(|n| (pkg, *n, if fails.contains(n) { O::Fail } else { O::Pass }))
        .collect();
    h.run("go", "main", &commit, &id, 1, hours, &first);
    if !fails.is_empty() {
        let again: Vec<(&str, &str, O)> = names.iter().map(|n| (pkg, *n, O::Pass)).collect();
        h.run("go", "main", &commit, &id, 2, hours + 0.2, &again);
    }
}

#[test]
fn apply_adds_keeps_and_releases() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = standard_store(dir.path());
    let opts = QuarantineOptions {
        min_retries_per_day: 0.0,
        ..QuarantineOptions::default()
    };

    let scored = scored_at(&store, None);
    // A dry run shows what apply would add, without writing.
    let plan = quarantine::plan(&store, &scored, &opts).unwrap();
    assert!(!plan.entries.is_empty());
    assert!(plan.entries.iter().all(|e| e.state == "new"));
    assert!(quarantine::history(&store).unwrap().is_empty());

    let events = quarantine::apply(&mut store, &scored, &opts).unwrap();
    assert!(events.iter().all(|e| e.action == QuarantineAction::Added));
    let flaky: Vec<_> = scored.flaky().collect();
    assert_eq!(events.len(), flaky.len());
    assert!(events.iter().all(|e| e.at == scored.as_of));
    // Broken tests are never quarantined.
    let broken: Vec<_> = scored
        .tests
        .iter()
        .filter(|t| t.status == Status::Broken)
        .collect();
    assert!(!broken.is_empty());
    let active = quarantine::active(&store).unwrap();
    for b in &broken {
        assert!(!active
            .iter()
            .any(|e| e.test_id == b.test_id && e.job == b.job));
    }
    assert!(active.iter().all(|e| e.state == "active"));
    // Highest impact first.
    assert!(active
        .windows(2)
        .all(|w| w[0].retries_per_day >= w[1].retries_per_day));

    // Applying the same scores again changes nothing.
    assert!(quarantine::apply(&mut store, &scored, &opts)
        .unwrap()
        .is_empty());
    let again = quarantine::plan(&store, &scored, &opts).unwrap();
    assert_eq!(again.entries, active);

    // 20 days later without new runs: every entry has expired.
    let as_of = BASE + 14 * DAY + 20 * DAY;
    let later = scored_at(&store, Some(as_of));
    let events = quarantine::apply(&mut store, &later, &opts).unwrap();
    let released: Vec<_> = events
        .iter()
        .filter(|e| e.action == QuarantineAction::Released)
        .collect();
    assert_eq!(released.len(), active.len(), "{events:?}");
    for e in &released {
        assert!(
            e.reason == RELEASE_EXPIRED || e.reason == "fixed" || e.reason == "no longer flaky",
            "{e:?}"
        );
    }
    assert!(released.iter().any(|e| e.reason == RELEASE_EXPIRED));
    // Only tests that were not quarantined before can be added now: the 30-day window
    // has moved, and a released test needs a flake after its release to come back.
    let added: Vec<_> = events
        .iter()
        .filter(|e| e.action == QuarantineAction::Added)
        .collect();
    for e in &added {
        assert!(!active
            .iter()
            .any(|a| a.test_id == e.test_id && a.job == e.job));
    }
    assert_eq!(quarantine::active(&store).unwrap().len(), added.len());
    assert!(quarantine::apply(&mut store, &later, &opts)
        .unwrap()
        .is_empty());

    let history = quarantine::history(&store).unwrap();
    assert_eq!(history.len(), active.len() * 2 + added.len());
    let text = quarantine::render_history(&history);
    assert!(text.contains("released"));
}

#[test]
fn a_fixed_test_is_released_as_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = standard_store(dir.path());
    let opts = QuarantineOptions {
        min_retries_per_day: 0.0,
        ..QuarantineOptions::default()
    };
    // After day 5, CacheTest.evictsOldest flakes no more.
    let early = scored_at(&store, Some(BASE + 5 * DAY + 23 * 3_600));
    let events = quarantine::apply(&mut store, &early, &opts).unwrap();
    assert!(
        events.iter().any(|e| e.name == "evictsOldest"),
        "{events:?}"
    );
    let now = scored_at(&store, None);
    let status = now
        .tests
        .iter()
        .find(|t| t.name == "evictsOldest")
        .map(|t| t.status);
    let events = quarantine::apply(&mut store, &now, &opts).unwrap();
    let released = events
        .iter()
        .find(|e| e.name == "evictsOldest")
        .expect("released");
    assert_eq!(released.action, QuarantineAction::Released);
    let want = if status == Some(Status::Fixed) {
        "fixed"
    } else {
        "no longer flaky"
    };
    assert_eq!(released.reason, want, "status {status:?}");
    // Tests that kept flaking were renewed.
    assert!(events.iter().any(|e| e.action == QuarantineAction::Renewed));
}

#[test]
fn threshold_and_cap() {
    let dir = tempfile::tempdir().unwrap();
    let store = standard_store(dir.path());
    let scored = scored_at(&store, None);
    let capped = quarantine::plan(
        &store,
        &scored,
        &QuarantineOptions {
            min_retries_per_day: 0.0,
            max: 2,
            ..QuarantineOptions::default()
        },
    )
    .unwrap();
    assert_eq!(capped.entries.len(), 2);
    let top: Vec<&str> = scored.flaky().take(2).map(|t| t.name.as_str()).collect();
    let got: Vec<&str> = capped.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(got, top);
    let none = quarantine::plan(
        &store,
        &scored,
        &QuarantineOptions {
            min_retries_per_day: 1e9,
            ..QuarantineOptions::default()
        },
    )
    .unwrap();
    assert!(none.entries.is_empty());
    let list = quarantine::render(&capped.entries, QuarantineFormat::List);
    assert_eq!(list.lines().count(), 2);
}

/// A Go parent test fails whenever its flaky subtest does, so it is flaky too; but
/// quarantining it would skip every subtest (`go test -skip '^TestQueue$'`). The subtest
/// is quarantined; a flaky test with no flaky subtest still is.
#[test]
fn a_go_parent_is_not_quarantined_for_its_flaky_subtest() {
    use common::{History, O};
    let mut h = History::new();
    let pkg = "github.com/acme/queue";
    for c in 0..8 {
        let commit = format!("c{c}");
        let run = format!("{c}");
        let t = f64::from(c);
        if c < 5 {
            h.run(
                "go",
                "main",
                &commit,
                &run,
                1,
                t,
                &[
                    (pkg, "TestQueue", O::Fail),
                    (pkg, "TestQueue/empty_input", O::Fail),
                    (pkg, "TestQueue/full", O::Pass),
                    (pkg, "TestClock", if c % 2 == 0 { O::Fail } else { O::Pass }),
                ],
            );
        }
        h.run(
            "go",
            "main",
            &commit,
            &run,
            if c < 5 { 2 } else { 1 },
            t + 0.2,
            &[
                (pkg, "TestQueue", O::Pass),
                (pkg, "TestQueue/empty_input", O::Pass),
                (pkg, "TestQueue/full", O::Pass),
                (pkg, "TestClock", O::Pass),
            ],
        );
    }
    let store = h.ingest();
    let scored = score(&store, &ScoreOptions::default()).unwrap();
    let flaky: Vec<&str> = scored
        .tests
        .iter()
        .filter(|t| t.status == Status::Flaky)
        .map(|t| t.name.as_str())
        .collect();
    assert!(flaky.contains(&"TestQueue"), "{flaky:?}");
    let opts = QuarantineOptions {
        min_retries_per_day: 0.0,
        ..QuarantineOptions::default()
    };
    let mut names: Vec<&str> = quarantine::candidates(&scored, &opts)
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["TestClock", "TestQueue/empty_input"]);
    let plan = quarantine::plan(&store, &scored, &opts).unwrap();
    let go = quarantine::render(&plan.entries, QuarantineFormat::Go);
    assert!(
        !go.contains("^TestQueue$|") && go.contains("^TestQueue$/^empty_input$"),
        "{go}"
    );
    // The backlog has one item for the two: fixing the subtest fixes the parent's failures.
    let mut items: Vec<String> =
        flakehound::backlog::rows(&scored, flakehound::backlog::Thresholds::default())
            .into_iter()
            .map(|r| r.item)
            .collect();
    items.sort_unstable();
    assert_eq!(
        items,
        [
            "Fix flaky github.com/acme/queue.TestClock (go)",
            "Fix flaky github.com/acme/queue.TestQueue/empty_input (go)"
        ]
    );
    // So does the report's table of top flaky tests.
    let report = flakehound::report::build(&store, &Default::default()).unwrap();
    let mut top: Vec<&str> = report.top.iter().map(|t| t.name.as_str()).collect();
    top.sort_unstable();
    assert_eq!(top, ["TestClock", "TestQueue/empty_input"]);
    // The headline counts the parent as a flaky test; the table says where it went, so
    // that "3 flaky tests" over a table of 2 adds up.
    assert_eq!(report.headline.current.flaky_tests, 3);
    assert_eq!(
        (report.flaky_total, report.go_parents_in_subtest_rows),
        (2, 1)
    );
    let md = flakehound::report::to_markdown(&report);
    assert!(
        md.contains("(2 of 2)")
            && md.contains("1 flaky Go parent test(s) are counted in their flaky subtest's row"),
        "{md}"
    );
    let html = flakehound::report::to_html(&report);
    assert!(html.contains("1 flaky Go parent test(s)"), "{html}");
    // Eight hours of history: no runs in the previous week, so nothing moved from anything
    // (not every flaky test "new").
    assert_eq!(report.movement, Default::default());
    assert!(
        md.contains("No runs in the previous window: nothing to compare with.")
            && !md.contains("### New flaky tests"),
        "{md}"
    );
}

/// The movement tables fold a Go parent into its flaky subtest, as the top table does.
#[test]
fn a_go_parent_moves_with_its_flaky_subtest() {
    let mut h = common::History::new();
    let pkg = "github.com/acme/queue";
    let names = ["TestQueue", "TestQueue/empty_input", "TestClock"];
    // A clean week, then a week in which the subtest (and so its parent) flakes.
    for c in 0..6 {
        go_commit(&mut h, pkg, c, f64::from(c) * 24.0, &names, &[]);
    }
    for c in 6..12 {
        let fails: &[&str] = if c % 2 == 0 {
            &["TestQueue", "TestQueue/empty_input"]
        } else {
            &[]
        };
        go_commit(
            &mut h,
            pkg,
            c,
            7.0 * 24.0 + f64::from(c - 6) * 24.0,
            &names,
            fails,
        );
    }
    let store = h.ingest();
    let report = flakehound::report::build(&store, &Default::default()).unwrap();
    let new: Vec<&str> = report
        .movement
        .new_flaky
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(new, ["TestQueue/empty_input"]);
    assert_eq!(report.headline.current.flaky_tests, 2);
    assert_eq!(report.go_parents_in_subtest_rows, 1);
}

/// A Go parent quarantined while it flaked alone is released once a subtest of it flakes:
/// the subtest is quarantined in its place, and the parent no longer skips every subtest.
#[test]
fn a_quarantined_go_parent_is_released_for_its_flaky_subtest() {
    use common::{History, O};
    use flakehound::quarantine::{QuarantineAction, RELEASE_SUBTEST};
    let pkg = "github.com/acme/queue";
    let mut h = History::new();
    let run = |h: &mut History, c: u32, first: [O; 2]| {
        let (commit, id, t) = (format!("c{c}"), format!("{c}"), f64::from(c));
        h.run(
            "go",
            "main",
            &commit,
            &id,
            1,
            t,
            &[
                (pkg, "TestQueue", first[0]),
                (pkg, "TestQueue/empty", first[1]),
            ],
        );
        h.run(
            "go",
            "main",
            &commit,
            &id,
            2,
            t + 0.2,
            &[
                (pkg, "TestQueue", O::Pass),
                (pkg, "TestQueue/empty", O::Pass),
            ],
        );
    };
    // The parent flakes on its own (its setup), its subtest passes.
    for c in 0..4 {
        run(&mut h, c, [O::Fail, O::Pass]);
    }
    let mut store = h.ingest();
    let opts = QuarantineOptions {
        min_retries_per_day: 0.0,
        ..QuarantineOptions::default()
    };
    let scored = scored_at(&store, None);
    let events = quarantine::apply(&mut store, &scored, &opts).unwrap();
    let added: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(added, ["TestQueue"]);
    drop(store);
    // Then the subtest flakes, failing its parent with it.
    for c in 4..8 {
        run(&mut h, c, [O::Fail, O::Fail]);
    }
    let mut store = h.ingest();
    let scored = scored_at(&store, None);
    let events = quarantine::apply(&mut store, &scored, &opts).unwrap();
    let parent = events.iter().find(|e| e.name == "TestQueue").unwrap();
    assert_eq!(parent.action, QuarantineAction::Released, "{events:?}");
    assert_eq!(parent.reason, RELEASE_SUBTEST);
    let sub = events.iter().find(|e| e.name == "TestQueue/empty").unwrap();
    assert_eq!(sub.action, QuarantineAction::Added, "{events:?}");
}

/// With the quarantine full, a Go parent is released only once its flaky subtest is added
/// in its place: released first, it left a place that a higher-ranked test took, and then
/// neither the parent nor its subtest was skipped.
#[test]
fn a_go_parent_keeps_its_place_until_its_subtest_takes_it() {
    use common::History;
    use flakehound::quarantine::RELEASE_SUBTEST;
    let pkg = "github.com/acme/queue";
    let mut h = History::new();
    let names = ["TestQueue", "TestQueue/empty", "TestOther"];
    let run = |h: &mut History, c: u32, fails: &[&str]| {
        go_commit(h, pkg, c, f64::from(c), &names, fails);
    };
    // The parent flakes on its own and is quarantined.
    for c in 0..4 {
        run(&mut h, c, &["TestQueue"]);
    }
    let mut store = h.ingest();
    let one = QuarantineOptions {
        min_retries_per_day: 0.0,
        max: 1,
        ..QuarantineOptions::default()
    };
    let scored = scored_at(&store, None);
    let events = quarantine::apply(&mut store, &scored, &one).unwrap();
    let added: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(added, ["TestQueue"]);
    drop(store);
    // Then its subtest flakes, and another test flakes more often than either.
    for c in 4..8 {
        run(&mut h, c, &names);
    }
    for c in 8..14 {
        run(&mut h, c, &["TestOther"]);
    }
    let mut store = h.ingest();
    let scored = scored_at(&store, None);
    let cands: Vec<&str> = quarantine::candidates(&scored, &one)
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(cands, ["TestOther", "TestQueue/empty"]);
    // One place, held by the parent: it stays, so the flaky subtest is still skipped.
    let events = quarantine::apply(&mut store, &scored, &one).unwrap();
    assert!(
        events
            .iter()
            .all(|e| e.action != QuarantineAction::Released),
        "{events:?}"
    );
    let active: Vec<String> = quarantine::active(&store)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(active, ["TestQueue"]);
    // Room for both candidates: the subtest is added and the parent released for it.
    let three = QuarantineOptions { max: 3, ..one };
    let events = quarantine::apply(&mut store, &scored, &three).unwrap();
    let parent = events.iter().find(|e| e.name == "TestQueue").unwrap();
    assert_eq!(parent.action, QuarantineAction::Released, "{events:?}");
    assert_eq!(parent.reason, RELEASE_SUBTEST);
    let mut active: Vec<String> = quarantine::active(&store)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    active.sort_unstable();
    assert_eq!(active, ["TestOther", "TestQueue/empty"]);
}

/// A Go parent above `--min-retries-per-day` whose flaky subtests are each below it is
/// itself the candidate; once quarantined, applying again keeps it (it was added twice,
/// and the store refused the second row).
#[test]
fn a_go_parent_over_the_threshold_is_kept_not_added_again() {
    use common::History;
    let pkg = "example.com/pkg";
    let mut h = History::new();
    let run = |h: &mut History, c: u32| {
        let fails: &[&str] = match c % 4 {
            0 => &["TestP", "TestP/a"],
            2 => &["TestP", "TestP/b"],
            _ => &[],
        };
        let names = ["TestP", "TestP/a", "TestP/b", "TestQ"];
        go_commit(h, pkg, c, f64::from(c) * 24.0, &names, fails);
    };
    for c in 0..24 {
        run(&mut h, c);
    }
    let mut store = h.ingest();
    let scored = scored_at(&store, None);
    let rate = |name: &str| {
        scored
            .tests
            .iter()
            .find(|t| t.name == name && t.status == Status::Flaky)
            .map(|t| t.retries_per_day)
            .unwrap_or_else(|| panic!("{name} is not flaky"))
    };
    let threshold = (rate("TestP") + rate("TestP/a").max(rate("TestP/b"))) / 2.0;
    assert!(rate("TestP/a") < threshold && threshold < rate("TestP"));
    let opts = QuarantineOptions {
        min_retries_per_day: threshold,
        ..QuarantineOptions::default()
    };
    let events = quarantine::apply(&mut store, &scored, &opts).unwrap();
    let added: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(added, ["TestP"]);
    drop(store);
    run(&mut h, 24);
    let mut store = h.ingest();
    let scored = scored_at(&store, None);
    quarantine::apply(&mut store, &scored, &opts).expect("applies again");
    let active: Vec<String> = quarantine::active(&store)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(active, ["TestP"]);
}

/// Two quarantined Go parents whose subtests start to flake, with room for only one more
/// test: each subtest is added as its parent's place frees, and no parent is left skipping
/// a quarantined subtest (`-skip '^TestR$'` would hide it and every other subtest).
#[test]
fn every_go_parent_gives_way_to_its_subtest() {
    use common::History;
    let pkg = "example.com/pkg";
    let names = ["TestP", "TestP/a", "TestR", "TestR/a"];
    let mut h = History::new();
    let run = |h: &mut History, c: u32, fails: &[&str]| {
        go_commit(h, pkg, c, f64::from(c) * 24.0, &names, fails);
    };
    for c in 0..12 {
        let fails: &[&str] = match (c % 2, c % 4) {
            (0, _) => &["TestP"],
            (_, 1) => &["TestR"],
            _ => &[],
        };
        run(&mut h, c, fails);
    }
    let mut store = h.ingest();
    let opts = QuarantineOptions {
        min_retries_per_day: 0.0,
        max: 3,
        ..QuarantineOptions::default()
    };
    let scored = scored_at(&store, None);
    quarantine::apply(&mut store, &scored, &opts).unwrap();
    let mut active: Vec<String> = quarantine::active(&store)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    active.sort_unstable();
    assert_eq!(active, ["TestP", "TestR"]);
    drop(store);
    for c in 12..24 {
        let fails: &[&str] = match (c % 2, c % 4) {
            (0, _) => &["TestP", "TestP/a"],
            (_, 1) => &["TestR", "TestR/a"],
            _ => &[],
        };
        run(&mut h, c, fails);
    }
    let mut store = h.ingest();
    let scored = scored_at(&store, None);
    let events = quarantine::apply(&mut store, &scored, &opts).unwrap();
    let mut active: Vec<String> = quarantine::active(&store)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    active.sort_unstable();
    assert_eq!(active, ["TestP/a", "TestR/a"], "{events:?}");
    // Each parent is released once, and not renewed first.
    for parent in ["TestP", "TestR"] {
        let actions: Vec<QuarantineAction> = events
            .iter()
            .filter(|e| e.name == parent)
            .map(|e| e.action)
            .collect();
        assert_eq!(
            actions,
            [QuarantineAction::Released],
            "{parent}: {events:?}"
        );
    }
    // Applying again changes nothing.
    let again = quarantine::apply(&mut store, &scored, &opts).unwrap();
    assert!(again.is_empty(), "{again:?}");
}

/// Quarantining a test does not rewrite the window's past: the attempts it failed before it
/// went silent were flaky failures, and the pipeline's flake rate, wasted retries and daily
/// trend count them so, with or without the quarantine row.
#[test]
fn quarantine_does_not_rewrite_the_flake_rate_of_the_past() {
    let build = |quarantine: bool| {
        let mut h = common::History::new();
        let pkg = "github.com/acme/queue";
        let all = ["TestClock", "TestQueue"];
        for c in 0..10 {
            let fails: &[&str] = if c % 2 == 0 { &["TestQueue"] } else { &[] };
            go_commit(&mut h, pkg, c, f64::from(c) * 6.0, &all, fails);
        }
        let mut store = h.ingest();
        if quarantine {
            let opts = QuarantineOptions {
                min_retries_per_day: 0.0,
                ..QuarantineOptions::default()
            };
            let scored = scored_at(&store, None);
            quarantine::apply(&mut store, &scored, &opts).unwrap();
        }
        // Later runs deselect the quarantined test: it produces no results.
        for c in 10..14 {
            go_commit(&mut h, pkg, c, f64::from(c) * 6.0, &["TestClock"], &[]);
        }
        h.ingest_into(&mut store);
        (h, store)
    };
    let (_a, plain) = build(false);
    let (_b, quarantined) = build(true);
    let statuses = |store: &flakehound::store::Store| {
        let s = scored_at(store, None);
        s.tests
            .iter()
            .find(|t| t.name == "TestQueue")
            .map(|t| t.status)
    };
    assert_eq!(statuses(&quarantined), Some(Status::Quarantined));
    let report = |store: &flakehound::store::Store| {
        flakehound::report::build(store, &Default::default()).unwrap()
    };
    let (a, b) = (report(&plain), report(&quarantined));
    assert_eq!(b.headline.current.flaky_failed_attempts, 5);
    assert_eq!(
        a.headline.current.flaky_failed_attempts,
        b.headline.current.flaky_failed_attempts
    );
    assert_eq!(
        a.headline.current.wasted_retries_per_day,
        b.headline.current.wasted_retries_per_day
    );
    let trend_ff = |r: &flakehound::report::Report| -> u32 {
        r.trend.iter().map(|d| d.flaky_failed_attempts).sum()
    };
    assert_eq!(trend_ff(&b), 5);
    assert_eq!(trend_ff(&a), trend_ff(&b));
}

/// An active entry shows (and is ranked by) what its test costs now, as `flaky` says it, not
/// what it cost when it was added: a quarantined test that keeps running (run but ignored)
/// and passing has a lower flake rate than when it went in, though no entry was renewed.
#[test]
fn an_active_entry_shows_the_figures_of_now() {
    let mut h = common::History::new();
    let pkg = "github.com/acme/queue";
    let all = ["TestClock", "TestQueue"];
    for c in 0..6 {
        let fails: &[&str] = if c % 2 == 0 { &["TestQueue"] } else { &[] };
        go_commit(&mut h, pkg, c, f64::from(c) * 6.0, &all, fails);
    }
    let mut store = h.ingest();
    let opts = QuarantineOptions {
        min_retries_per_day: 0.0,
        ..QuarantineOptions::default()
    };
    let added = scored_at(&store, None);
    quarantine::apply(&mut store, &added, &opts).unwrap();
    for c in 6..10 {
        go_commit(&mut h, pkg, c, f64::from(c) * 6.0, &all, &[]);
    }
    h.ingest_into(&mut store);
    let now = scored_at(&store, None);
    let t = now.tests.iter().find(|t| t.name == "TestQueue").unwrap();
    assert_eq!(t.status, Status::Flaky);
    let then = added.tests.iter().find(|t| t.name == "TestQueue").unwrap();
    assert!(
        t.flake_rate < then.flake_rate,
        "{} vs {}",
        t.flake_rate,
        then.flake_rate
    );
    let plan = quarantine::plan(&store, &now, &opts).unwrap();
    let e = plan.entries.iter().find(|e| e.name == "TestQueue").unwrap();
    assert_eq!(e.state, "active");
    assert_eq!(
        (e.retries_per_day, e.flake_rate),
        (t.retries_per_day, t.flake_rate)
    );
}
