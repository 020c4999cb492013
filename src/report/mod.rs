//! The nightly report: headline against the SLO, movement since the previous window, the
//! top flaky tests, tests that fail together, and broken tests — as JSON
//! (`serde_json::to_string_pretty(&report)`), Markdown ([`to_markdown`], fits a GitHub
//! comment) and one self-contained HTML file with charts ([`to_html`]).
//!
//! Everything is computed from the database and the options alone: the report's "now" is
//! the scorer's `as_of` (the newest run unless given), lists have total orders, and numbers
//! are rounded before they are stored, so the same database gives byte-identical outputs.

mod cofail;
mod html;
pub(crate) mod markdown;

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::error::Result;
use crate::links::Links;
use crate::model::{readable_name, RunOutcome};
use crate::score::{self, FingerprintCount, ScoreOptions, Scored, Status, TestScore};
use crate::store::Store;

pub use cofail::{CoFailureGroup, CoFailureMember, CoFailurePair};
pub use html::{escape as html_escape, to_html, to_html_with};
pub use markdown::{to_markdown, MARKDOWN_LIMIT};

/// What the report covers; each is a CLI flag with this default.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Length of the reported window (default 7 days).
    pub window_s: i64,
    /// Length of the previous window it is compared with, which ends where this one starts
    /// (default 7 days).
    pub compare_window_s: i64,
    /// End of the window (Unix seconds); default: the start of the newest run.
    pub as_of: Option<i64>,
    pub branch: Option<String>,
    pub job: Option<String>,
    /// The job-failure SLO: share of job attempts allowed to fail only because of flaky
    /// tests (default 1%).
    pub slo: f64,
    /// Rows in the top flaky tests table (default 25).
    pub top: usize,
    /// The scorer's judgement of lone failures, as `flaky` takes them (see
    /// [`ScoreOptions::lone_alpha`] and [`ScoreOptions::lone_posterior`]), so that the report
    /// can list what `flaky` and `backlog` list.
    pub lone_alpha: f64,
    pub lone_posterior: f64,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            window_s: 7 * 86_400,
            compare_window_s: 7 * 86_400,
            as_of: None,
            branch: None,
            job: None,
            slo: 0.01,
            top: 25,
            lone_alpha: ScoreOptions::default().lone_alpha,
            lone_posterior: ScoreOptions::default().lone_posterior,
        }
    }
}

/// The whole report. Field names are the JSON contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// End of the window (RFC 3339).
    pub as_of: String,
    pub since: String,
    pub window_days: f64,
    pub branch: Option<String>,
    pub job: Option<String>,
    pub headline: Headline,
    pub movement: Movement,
    /// Top flaky tests: one row per (test, job), by model retries/day saved.
    pub top: Vec<TopTest>,
    /// Flaky (test, job) pairs in the window; `top` shows the first `top_limit`.
    pub flaky_total: usize,
    /// Flaky Go parent tests not counted in `flaky_total`: a parent with a flaky subtest
    /// is that subtest's row (it fails whenever the subtest does); the headline's
    /// `flaky_tests` counts them.
    pub go_parents_in_subtest_rows: usize,
    pub top_limit: usize,
    pub co_failures: CoFailures,
    pub broken: Vec<BrokenTest>,
    /// Daily pipeline flake rate over the window, oldest first.
    pub trend: Vec<TrendDay>,
}

impl Report {
    /// The window's length for a heading. When the history starts inside the window, the
    /// per-day figures are over the part that holds runs, and the heading says so: a
    /// 3650-day window over two weeks of runs is not "3650 days" of data.
    pub fn window_text(&self) -> String {
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|d| d.timestamp())
        };
        let asked = match (at(&self.since), at(&self.as_of)) {
            (Some(a), Some(b)) => (b - a) as f64 / 86_400.0,
            _ => self.window_days,
        };
        if asked - self.window_days >= 0.05 {
            format!(
                "{asked:.1} days; per-day figures are over its last {:.1}, where the runs are",
                self.window_days
            )
        } else {
            format!("{:.1} days", self.window_days)
        }
    }
}

/// Pipeline numbers of one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowNumbers {
    pub as_of: String,
    pub since: String,
    /// Job attempts in the window.
    pub attempts: u32,
    /// Attempts that failed only because of flaky tests.
    pub flaky_failed_attempts: u32,
    /// `flaky_failed_attempts / attempts`.
    pub flake_rate: f64,
    /// Share of job attempts that failed for any reason: beside the flake rate, so that a
    /// broken test failing every attempt cannot make the flake rate look good.
    pub job_failure_rate: f64,
    /// Share of job attempts that failed for reasons other than flaky tests; these mask
    /// flaky tests' retries.
    pub masked_share: f64,
    pub meets_slo: bool,
    /// Observed: job re-runs per day whose failed attempt failed only because of flaky tests.
    pub wasted_retries_per_day: f64,
    /// Observed: CI minutes per day spent on those re-runs.
    pub wasted_ci_minutes_per_day: f64,
    /// Model: job re-runs per day caused by all flaky tests together.
    pub model_retries_per_day: f64,
    /// Flaky (test, job) pairs.
    pub flaky_tests: u32,
    /// Broken (test, job) pairs.
    pub broken_tests: u32,
}

/// This window against the previous one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Headline {
    pub slo: f64,
    pub current: WindowNumbers,
    /// None when the previous window has no runs.
    pub previous: Option<WindowNumbers>,
    /// `current − previous`, when there is a previous window.
    pub change: Option<Change>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub flake_rate: f64,
    pub wasted_retries_per_day: f64,
    pub wasted_ci_minutes_per_day: f64,
    pub model_retries_per_day: f64,
    pub flaky_tests: i64,
    pub broken_tests: i64,
}

/// Tests whose status moved between the windows: empty when the previous window has no
/// runs (nothing moved from anything). A Go parent with a flaky subtest is the subtest's row,
/// as in the top table.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Movement {
    /// Flaky now and not flaky in the previous window (their first flake is in this window).
    pub new_flaky: Vec<MovedTest>,
    /// Flaky in the previous window; now fixed (its clean attempts rule the old rate out)
    /// or without any flake in this window.
    pub fixed: Vec<MovedTest>,
    /// Flaky in both windows and materially worse: retries/day up by at least half and by
    /// at least 0.1, or a flake-rate interval entirely above the previous one.
    pub worse: Vec<MovedTest>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MovedTest {
    pub test_id: String,
    pub classname: String,
    pub name: String,
    pub job: String,
    /// `no flakes` when the test had no flagged status in that window (stable, or it did
    /// not run).
    pub status: String,
    pub previous_status: String,
    pub flake_rate: f64,
    pub previous_flake_rate: f64,
    pub retries_per_day: f64,
    pub previous_retries_per_day: f64,
    pub first_flake_at: Option<String>,
    pub last_flake_at: Option<String>,
}

/// A row of the top flaky tests table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopTest {
    pub rank: usize,
    pub test_id: String,
    pub classname: String,
    pub name: String,
    pub file: Option<String>,
    pub job: String,
    /// Other jobs in which the same test is flaky too (each has its own row).
    pub also_flaky_in: Vec<String>,
    pub flake_rate: f64,
    pub flake_rate_low: f64,
    pub flake_rate_high: f64,
    pub retries_per_day: f64,
    pub ci_minutes_per_day: f64,
    pub observed_retries: u32,
    pub flaky_commits: u32,
    /// Up to 3 flaky commits (short SHAs, newest first); `more_commits` counts the rest.
    pub flaky_shas: Vec<String>,
    pub more_commits: u32,
    /// Up to 3 most frequent failure fingerprints.
    pub fingerprints: Vec<FingerprintCount>,
    pub first_flake_at: Option<String>,
    pub last_flake_at: Option<String>,
    /// One character per run of the test in its job, oldest first: `p` passed, `f` flaky
    /// in the run (passed after a failed attempt), `x` failed, `s` skipped.
    pub strip: String,
    /// Owners from CODEOWNERS (empty without one).
    pub owners: Vec<String>,
    /// The flaky commits of `flaky_shas` in full, with their pages when known.
    pub commits: Vec<CommitLink>,
    /// Up to 3 newest runs in the window in which the test failed or flaked, newest first.
    pub failed_runs: Vec<RunLink>,
}

/// A commit and its page (from `--commit-url-template`, the CI environment, or the run's URL).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommitLink {
    pub sha: String,
    pub url: Option<String>,
}

/// A run of a test and its page on the CI provider, when stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunLink {
    pub run_id: String,
    pub attempt: u32,
    pub started_at: String,
    pub commit: String,
    /// `flaky` (failed, then passed on a rerun in the run) or `failed`.
    pub outcome: String,
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoFailures {
    /// Runs looked at (job attempts with at most `max_failed_per_run` failing tests).
    pub runs: u32,
    /// Runs left out because too many tests failed in them (a broken build, not a flake).
    pub runs_left_out: u32,
    pub max_failed_per_run: u32,
    /// How a pair qualifies, in words.
    pub criterion: String,
    pub groups: Vec<CoFailureGroup>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BrokenTest {
    pub test_id: String,
    pub classname: String,
    pub name: String,
    pub job: String,
    pub broken_commits: u32,
    pub runs: u32,
    pub failures: u32,
    pub reason: String,
    pub fingerprints: Vec<FingerprintCount>,
}

/// One UTC day of the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendDay {
    pub day: String,
    pub attempts: u32,
    pub flaky_failed_attempts: u32,
    /// None on a day without runs.
    pub flake_rate: Option<f64>,
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    let r = (x * f).round() / f;
    if r == 0.0 {
        0.0 // no "-0"
    } else {
        r
    }
}

fn test_key(t: &TestScore) -> i64 {
    u64::from_str_radix(&t.test_id, 16).unwrap_or(0) as i64
}

fn day_of(t: i64) -> String {
    // A stored time out of chrono's range (odd data written by an older version) must
    // not panic a report.
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "unknown day".into())
}

fn numbers(s: &Scored) -> WindowNumbers {
    let p = &s.pipeline;
    WindowNumbers {
        as_of: s.as_of.clone(),
        since: s.since.clone(),
        attempts: p.attempts,
        flaky_failed_attempts: p.flaky_failed_attempts,
        flake_rate: p.flake_rate,
        job_failure_rate: p.failure_rate,
        masked_share: p.masked_share,
        meets_slo: p.meets_slo,
        wasted_retries_per_day: p.wasted_retries_per_day,
        wasted_ci_minutes_per_day: p.wasted_ci_minutes_per_day,
        model_retries_per_day: p.model_retries_per_day,
        flaky_tests: p.flaky_tests,
        broken_tests: s
            .tests
            .iter()
            .filter(|t| t.status == Status::Broken)
            .count() as u32,
    }
}

/// Build the report: score this window and the previous one, then compare.
pub fn build(store: &Store, opts: &ReportOptions) -> Result<Report> {
    build_with(store, opts, &Links::default())
}

/// [`build`], with owners and commit links.
pub fn build_with(store: &Store, opts: &ReportOptions, links: &Links) -> Result<Report> {
    // Both windows and the trend read one committed state.
    store.read_snapshot(|| build_in(store, opts, links))
}

fn build_in(store: &Store, opts: &ReportOptions, links: &Links) -> Result<Report> {
    let as_of = match opts.as_of {
        Some(t) => t,
        None => store.newest_run_start()?.unwrap_or(0),
    };
    let score_opts = |as_of: i64, window_s: i64| ScoreOptions {
        as_of: Some(as_of),
        window_s,
        branch: opts.branch.clone(),
        job: opts.job.clone(),
        slo: opts.slo,
        lone_alpha: opts.lone_alpha,
        lone_posterior: opts.lone_posterior,
        ..ScoreOptions::default()
    };
    let cur = score::score(store, &score_opts(as_of, opts.window_s))?;
    // The previous window ends a second before this one starts, so no run is in both.
    let prev = score::score(
        store,
        &score_opts(
            as_of.saturating_sub(opts.window_s).saturating_sub(1),
            opts.compare_window_s,
        ),
    )?;
    let has_prev = !prev.runs().is_empty();

    let current = numbers(&cur);
    let previous = has_prev.then(|| numbers(&prev));
    let change = previous.as_ref().map(|p| Change {
        flake_rate: round(current.flake_rate - p.flake_rate, 6),
        wasted_retries_per_day: round(current.wasted_retries_per_day - p.wasted_retries_per_day, 3),
        wasted_ci_minutes_per_day: round(
            current.wasted_ci_minutes_per_day - p.wasted_ci_minutes_per_day,
            2,
        ),
        model_retries_per_day: round(current.model_retries_per_day - p.model_retries_per_day, 3),
        flaky_tests: i64::from(current.flaky_tests) - i64::from(p.flaky_tests),
        broken_tests: i64::from(current.broken_tests) - i64::from(p.broken_tests),
    });
    let headline = Headline {
        slo: opts.slo,
        current,
        previous,
        change,
    };

    let movement = movement(&cur, has_prev.then_some(&prev));

    // Top flaky tests, one row per (test, job), in the scorer's order (retries/day first);
    // a Go parent with a flaky subtest is the subtest's row, as in the backlog.
    let flaky: Vec<&TestScore> = crate::score::without_go_parents(cur.flaky().collect());
    let mut jobs_of: HashMap<i64, Vec<&str>> = HashMap::new();
    for t in &flaky {
        jobs_of.entry(test_key(t)).or_default().push(&t.job);
    }
    // A run's URL for each (job, commit), to link commit pages from it.
    let mut run_url_of: HashMap<(&str, &str), &str> = HashMap::new();
    for run in cur.runs() {
        if let Some(u) = run.run_url.as_deref() {
            run_url_of
                .entry((run.job.as_str(), run.commit.as_str()))
                .or_insert(u);
        }
    }
    let mut top: Vec<TopTest> = flaky
        .iter()
        .take(opts.top)
        .enumerate()
        .map(|(i, t)| {
            let mut also: Vec<String> = jobs_of[&test_key(t)]
                .iter()
                .filter(|j| **j != t.job)
                .map(|j| j.to_string())
                .collect();
            also.sort();
            TopTest {
                rank: i + 1,
                test_id: t.test_id.clone(),
                classname: t.classname.clone(),
                name: t.name.clone(),
                file: t.file.clone(),
                job: t.job.clone(),
                also_flaky_in: also,
                flake_rate: t.flake_rate,
                flake_rate_low: t.flake_rate_low,
                flake_rate_high: t.flake_rate_high,
                retries_per_day: t.retries_per_day,
                ci_minutes_per_day: t.ci_minutes_per_day,
                observed_retries: t.observed_retries,
                flaky_commits: t.flaky_commits,
                flaky_shas: t
                    .evidence
                    .iter()
                    .take(3)
                    .map(|e| e.commit.chars().take(7).collect())
                    .collect(),
                more_commits: (t.evidence.len() as u32).saturating_sub(3),
                fingerprints: t.fingerprints.iter().take(3).cloned().collect(),
                first_flake_at: t.first_flake_at.clone(),
                last_flake_at: t.last_flake_at.clone(),
                strip: String::new(),
                owners: links.owners_of(&t.classname, t.file.as_deref()),
                commits: t
                    .evidence
                    .iter()
                    .take(3)
                    .map(|e| CommitLink {
                        sha: e.commit.clone(),
                        url: links.commits.commit_url(
                            &e.commit,
                            run_url_of
                                .get(&(t.job.as_str(), e.commit.as_str()))
                                .copied(),
                        ),
                    })
                    .collect(),
                failed_runs: Vec::new(),
            }
        })
        .collect();
    let aggregate = opts.branch.is_none() && !ScoreOptions::default().raw_scan;
    let window = (as_of - opts.window_s, as_of, aggregate);
    strips(store, &cur, window, &mut top)?;

    let co_failures = cofail::co_failures(store, &cur)?;

    let broken = cur
        .tests
        .iter()
        .filter(|t| t.status == Status::Broken)
        .map(|t| BrokenTest {
            test_id: t.test_id.clone(),
            classname: t.classname.clone(),
            name: t.name.clone(),
            job: t.job.clone(),
            broken_commits: t.broken_commits,
            runs: t.runs,
            failures: t.failures,
            reason: t.reason.clone(),
            fingerprints: t.fingerprints.iter().take(2).cloned().collect(),
        })
        .collect();

    Ok(Report {
        as_of: cur.as_of.clone(),
        since: cur.since.clone(),
        window_days: round(cur.window_days, 3),
        branch: opts.branch.clone(),
        job: opts.job.clone(),
        headline,
        movement,
        top,
        flaky_total: flaky.len(),
        go_parents_in_subtest_rows: cur.flaky().count() - flaky.len(),
        top_limit: opts.top,
        co_failures,
        broken,
        trend: trend(&cur, as_of, opts.window_s),
    })
}

fn moved(now: Option<&TestScore>, before: Option<&TestScore>) -> MovedTest {
    let t = now.or(before).expect("one side exists");
    let status =
        |s: Option<&TestScore>| s.map_or("no flakes".to_string(), |s| s.status.as_str().into());
    MovedTest {
        test_id: t.test_id.clone(),
        classname: t.classname.clone(),
        name: t.name.clone(),
        job: t.job.clone(),
        status: status(now),
        previous_status: status(before),
        flake_rate: now.map_or(0.0, |s| s.flake_rate),
        previous_flake_rate: before.map_or(0.0, |s| s.flake_rate),
        retries_per_day: now.map_or(0.0, |s| s.retries_per_day),
        previous_retries_per_day: before.map_or(0.0, |s| s.retries_per_day),
        first_flake_at: now.and_then(|s| s.first_flake_at.clone()),
        last_flake_at: now
            .and_then(|s| s.last_flake_at.clone())
            .or_else(|| before.and_then(|s| s.last_flake_at.clone())),
    }
}

fn movement(cur: &Scored, prev: Option<&Scored>) -> Movement {
    let Some(prev) = prev else {
        return Movement::default();
    };
    let index = |s: &Scored| -> HashMap<(i64, String), usize> {
        s.tests
            .iter()
            .enumerate()
            .map(|(i, t)| ((test_key(t), t.job.clone()), i))
            .collect()
    };
    let cur_ix = index(cur);
    let prev_ix = index(prev);
    let get_prev = |t: &TestScore| {
        prev_ix
            .get(&(test_key(t), t.job.clone()))
            .map(|&i| &prev.tests[i])
    };
    let mut new_flaky = Vec::new();
    let mut worse = Vec::new();
    for t in crate::score::without_go_parents(cur.flaky().collect()) {
        let before = get_prev(t);
        match before {
            Some(b) if b.status == Status::Flaky => {
                let rpd_up = t.retries_per_day >= b.retries_per_day * 1.5
                    && t.retries_per_day - b.retries_per_day >= 0.1;
                let rate_up = t.flake_rate_low > b.flake_rate_high;
                if rpd_up || rate_up {
                    worse.push(moved(Some(t), Some(b)));
                }
            }
            _ => new_flaky.push(moved(Some(t), before)),
        }
    }
    let mut fixed = Vec::new();
    for b in crate::score::without_go_parents(prev.flaky().collect()) {
        let now = cur_ix
            .get(&(test_key(b), b.job.clone()))
            .map(|&i| &cur.tests[i]);
        let is_fixed = match now {
            None => cur.jobs.iter().any(|j| j.job == b.job),
            Some(n) => matches!(n.status, Status::Fixed | Status::Stable),
        };
        if is_fixed {
            fixed.push(moved(now, Some(b)));
        }
    }
    let by_impact = |v: &mut Vec<MovedTest>, now: bool| {
        v.sort_by(|a, b| {
            let (x, y) = if now {
                (a.retries_per_day, b.retries_per_day)
            } else {
                (a.previous_retries_per_day, b.previous_retries_per_day)
            };
            y.total_cmp(&x)
                .then_with(|| a.classname.cmp(&b.classname))
                .then_with(|| a.name.cmp(&b.name))
                .then_with(|| a.job.cmp(&b.job))
        })
    };
    by_impact(&mut new_flaky, true);
    by_impact(&mut worse, true);
    by_impact(&mut fixed, false);
    Movement {
        new_flaky,
        fixed,
        worse,
    }
}

/// Per-test pass/fail strips of the top tests over the window.
/// `window`: its start, end, and whether the daily aggregate may answer.
fn strips(
    store: &Store,
    cur: &Scored,
    window: (i64, i64, bool),
    top: &mut [TopTest],
) -> Result<()> {
    if top.is_empty() {
        return Ok(());
    }
    let runs = cur.runs();
    let tests: HashSet<i64> = top
        .iter()
        .map(|t| u64::from_str_radix(&t.test_id, 16).unwrap_or(0) as i64)
        .collect();
    let wanted: HashMap<(i64, &str), usize> = top
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                (
                    u64::from_str_radix(&t.test_id, 16).unwrap_or(0) as i64,
                    t.job.as_str(),
                ),
                i,
            )
        })
        .collect();
    // Runs come oldest first, so cells are in time order.
    let mut cells: Vec<String> = vec![String::new(); top.len()];
    let mut failed: Vec<Vec<RunLink>> = vec![Vec::new(); top.len()];
    let (since, as_of, aggregate) = window;
    crate::score::for_each_result_of(store, runs, since, as_of, aggregate, &tests, |pos, r| {
        let run = &runs[pos];
        if let Some(&i) = wanted.get(&(r.test_id, run.job.as_str())) {
            let outcome = RunOutcome::from_code(r.outcome);
            cells[i].push(match outcome {
                Some(RunOutcome::Passed) => 'p',
                Some(RunOutcome::Flaky) => 'f',
                Some(RunOutcome::Failed) => 'x',
                _ => 's',
            });
            if matches!(outcome, Some(RunOutcome::Flaky | RunOutcome::Failed)) {
                failed[i].push(RunLink {
                    run_id: run.run_id.clone(),
                    attempt: run.attempt,
                    started_at: crate::score::rfc3339(run.started_at),
                    commit: run.commit.clone(),
                    outcome: outcome.map(|o| o.as_str()).unwrap_or("failed").to_string(),
                    url: run.run_url.clone(),
                });
            }
        }
    })?;
    for ((t, c), mut f) in top.iter_mut().zip(cells).zip(failed) {
        t.strip = c;
        f.reverse();
        f.truncate(3);
        t.failed_runs = f;
    }
    Ok(())
}

/// Share of job attempts per UTC day failing only because of flaky tests.
fn trend(cur: &Scored, as_of: i64, window_s: i64) -> Vec<TrendDay> {
    // As the headline counts them: a test quarantined or fixed since still flaked then.
    let flaky: HashSet<(i64, &str)> = cur
        .tests
        .iter()
        .filter(|t| t.status.flaked_in_window())
        .map(|t| (test_key(t), t.job.as_str()))
        .collect();
    let mut days: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    // Every day of the window, runs or not.
    // Checked: a run stored at the end of time (odd data from an older version) makes
    // `as_of` so large that stepping past it would wrap around and never end.
    let mut t = as_of.saturating_sub(window_s);
    while t <= as_of {
        days.entry(day_of(t)).or_default();
        match t.checked_add(86_400) {
            Some(next) => t = next,
            None => break,
        }
    }
    days.entry(day_of(as_of)).or_default();
    for (run, failed) in cur.runs().iter().zip(cur.failed_tests()) {
        let d = days.entry(day_of(run.started_at)).or_default();
        d.0 += 1;
        if !failed.is_empty()
            && failed
                .iter()
                .all(|id| flaky.contains(&(*id, run.job.as_str())))
        {
            d.1 += 1;
        }
    }
    days.into_iter()
        .map(|(day, (attempts, ff))| TrendDay {
            day,
            attempts,
            flaky_failed_attempts: ff,
            flake_rate: (attempts > 0).then(|| round(f64::from(ff) / f64::from(attempts), 5)),
        })
        .collect()
}

/// The readable name used in every output.
pub(crate) fn display_name(classname: &str, name: &str) -> String {
    readable_name(classname, name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Attempt, AttemptOutcome, RunMeta, TestCase};

    fn store_with_runs_at(starts: &[i64]) -> Store {
        let mut store = Store::open_in_memory().unwrap();
        let mut batch = store.batch().unwrap();
        for (i, &started_at) in starts.iter().enumerate() {
            let (run, _) = batch
                .run(&RunMeta {
                    commit: "a".repeat(40),
                    branch: "main".into(),
                    job: "unit".into(),
                    run_id: i.to_string(),
                    attempt: 1,
                    started_at,
                    duration_s: None,
                    run_url: None,
                })
                .unwrap();
            let case = TestCase {
                classname: "C".into(),
                name: "t".into(),
                file: None,
                suite: None,
                attempts: vec![Attempt {
                    outcome: AttemptOutcome::Passed,
                    duration_s: None,
                    failure: None,
                }],
            };
            batch
                .add_file(run, &format!("h{i}"), "r.xml", &[case], 1, None)
                .unwrap();
        }
        batch.commit().unwrap();
        store
    }

    #[test]
    fn a_run_at_the_end_of_time_does_not_stall_the_report() {
        // Stored by an older version: as_of becomes i64::MAX, and the trend's day steps
        // used to wrap around past it and loop for ever.
        for starts in [&[i64::MAX][..], &[1_767_323_045, i64::MAX], &[i64::MAX - 1]] {
            let store = store_with_runs_at(starts);
            for window_s in [86_400, 3650 * 86_400] {
                let opts = ReportOptions {
                    window_s,
                    ..ReportOptions::default()
                };
                let report = build(&store, &opts).unwrap();
                assert!(report.trend.len() <= 3651, "{}", report.trend.len());
                assert!(!to_markdown(&report).is_empty());
            }
        }
        // A far past as_of does not underflow either.
        let store = store_with_runs_at(&[1_767_323_045]);
        let opts = ReportOptions {
            as_of: Some(i64::MIN + 5),
            ..ReportOptions::default()
        };
        build(&store, &opts).unwrap();
    }
}
