//! What to simulate: the CI world's knobs, and three presets.

use serde::{Deserialize, Serialize};

/// Which tool writes a job's reports, and so how reruns look in them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dialect {
    /// Maven Surefire, `rerunFailingTestsCount`: `TEST-<class>.xml` per class; reruns as
    /// `<flakyFailure>` (passed in the end) or `<failure>` + `<rerunFailure>`.
    Surefire,
    /// pytest junitxml (`junit_family=xunit1`, with `file`) + pytest-rerunfailures: a
    /// rerun attempt is a bare `<testcase/>`, then the final attempt.
    Pytest,
    /// gotestsum `--rerun-fails`: one `<testsuite>` per package, every attempt its own
    /// `<testcase>` (failures first, as gotestsum orders them).
    Gotestsum,
    /// jest-junit: `classname` and `name` both `"<describe> <title>"`, no reruns.
    Jest,
    /// cargo-nextest with retries: `<flakyFailure>` / `<rerunFailure>`, panic text as body.
    Nextest,
    /// Surefire semantics in one small file per attempt, short messages: benchmarks.
    Compact,
}

impl Dialect {
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Surefire => "surefire",
            Dialect::Pytest => "pytest",
            Dialect::Gotestsum => "gotestsum",
            Dialect::Jest => "jest",
            Dialect::Nextest => "nextest",
            Dialect::Compact => "compact",
        }
    }
}

/// One CI job. Fields left out of a serialized config take [`JobConfig::default`]'s values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobConfig {
    pub name: String,
    pub dialect: Dialect,
    /// Test cases in the job (for Go, parents of subtests included). Ignored for a
    /// matrix sibling, which has its primary's tests.
    pub tests: usize,
    /// In-run reruns of a failed test (Surefire `rerunFailingTestsCount`, pytest
    /// `--reruns`, gotestsum `--rerun-fails`, nextest retries). 0: none.
    pub in_run_reruns: u32,
    /// gotestsum `--rerun-fails-max-failures`: no reruns when more tests than this failed.
    pub rerun_max_failures: Option<u32>,
    /// Chance that a failed job attempt is retried (same run id, attempt + 1).
    pub retry_prob: f64,
    /// Mean wall time of an attempt, seconds.
    pub mean_duration_s: f64,
    /// Tests running at once (test time / parallelism = job time spent in tests).
    pub parallelism: u32,
    /// Whether PR commits run this job (main commits and nightlies always do).
    pub on_prs: bool,
    /// Another job of the same matrix: same tests, same flaky tests, own draws.
    pub matrix_of: Option<String>,
    /// A matrix sibling's flake rates are its primary's times this.
    pub flake_rate_factor: f64,
    /// Tests that fail deterministically on this job only, on commits in a window.
    pub platform_breaks: Vec<PlatformBreak>,
}

/// Some tests fail on every attempt of this job for commits made in `[from_day, to_day)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlatformBreak {
    pub tests: usize,
    pub from_day: f64,
    pub to_day: f64,
}

/// Tests of one job sharing a flaky cause (a flaky service): in an attempt the cause
/// strikes with `event_prob`, and each member then fails with `member_prob`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoFailureGroup {
    pub job: String,
    pub size: usize,
    pub event_prob: f64,
    pub member_prob: f64,
}

/// Everything the simulation depends on. Same config, same output, byte for byte.
/// Fields left out of a serialized config take [`SimConfig::demo`]`(0)`'s values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimConfig {
    pub seed: u64,
    /// Start of the history, RFC 3339 UTC.
    pub start: String,
    pub days: u32,
    /// Mean commits landing on `main` per weekday.
    pub main_commits_per_weekday: f64,
    /// Exactly this many main commits, evenly spread (benchmarks); overrides the rate.
    pub main_commits_total: Option<usize>,
    /// Mean PRs opened per weekday; each gets 1–4 commits.
    pub prs_per_weekday: f64,
    /// Activity on Saturdays and Sundays relative to weekdays.
    pub weekend_factor: f64,
    /// A scheduled run on main's head every night (same-commit evidence).
    pub nightly: bool,
    /// Chance that a pushed commit's run is re-run by hand later (new run id), whatever
    /// its outcome.
    pub manual_rerun_prob: f64,
    /// Attempts per run and job, retries included.
    pub max_attempts: u32,
    /// Chance an attempt fails for a reason outside the tests (runner lost, network).
    pub infra_failure_prob: f64,
    /// Share of infra failures that leave no report (the attempt's folder is empty).
    pub infra_no_report_prob: f64,
    /// Share of tests that are flaky (per job, leaves only).
    pub flaky_fraction: f64,
    /// At least this many flaky tests per job (when it has enough tests).
    pub min_flaky_per_job: usize,
    /// Per-attempt failure rates are log-uniform in this range.
    pub flake_rate_min: f64,
    pub flake_rate_max: f64,
    /// Chance that a PR with 2+ commits has a commit breaking 1–3 tests (fixed by the
    /// PR's next commit).
    pub pr_break_prob: f64,
    /// Regressions on main, each breaking 1–2 tests for 2–4 main commits (PRs tested
    /// meanwhile inherit them).
    pub main_regressions: u32,
    /// Share of tests added partway through the history.
    pub new_test_fraction: f64,
    /// Share of tests that are always skipped (`@Disabled`, `pytest.mark.skip`).
    pub skipped_fraction: f64,
    pub cofailure_groups: Vec<CoFailureGroup>,
    pub jobs: Vec<JobConfig>,
    /// Share of flaky tests whose flakiness is fixed part-way: commits made after a time
    /// drawn in 30–70% of the history no longer flake.
    pub fix_fraction: f64,
    /// Share of (the other) flaky tests whose flakiness starts part-way: only commits made
    /// after a time drawn in 20–60% of the history flake.
    pub onset_fraction: f64,
}

fn job(name: &str, dialect: Dialect, tests: usize, reruns: u32, mean_s: f64) -> JobConfig {
    JobConfig {
        name: name.into(),
        dialect,
        tests,
        in_run_reruns: reruns,
        rerun_max_failures: None,
        retry_prob: 0.85,
        mean_duration_s: mean_s,
        parallelism: 2,
        on_prs: true,
        matrix_of: None,
        flake_rate_factor: 1.0,
        platform_breaks: Vec::new(),
    }
}

impl Default for JobConfig {
    fn default() -> Self {
        job("tests", Dialect::Surefire, 50, 0, 300.0)
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig::demo(0)
    }
}

/// The day every bench history ends on (exclusive).
const BENCH_END: &str = "2026-10-22T00:00:00Z";

impl SimConfig {
    /// About 30 days of a busy repository: six jobs in five report dialects, a Linux/macOS
    /// matrix, PRs, nightlies, retries, real breakages and a co-failure group.
    pub fn demo(seed: u64) -> Self {
        let mut go = job("go", Dialect::Gotestsum, 70, 2, 360.0);
        go.rerun_max_failures = Some(10);
        go.parallelism = 4;
        go.retry_prob = 0.8;
        let mut integration = job("integration", Dialect::Pytest, 60, 1, 840.0);
        integration.parallelism = 1;
        let mut frontend = job("frontend", Dialect::Jest, 60, 0, 300.0);
        frontend.retry_prob = 0.9;
        let linux = job("e2e-linux", Dialect::Nextest, 36, 1, 1320.0);
        let mut macos = job("e2e-macos", Dialect::Nextest, 36, 1, 1500.0);
        macos.matrix_of = Some("e2e-linux".into());
        macos.flake_rate_factor = 1.4;
        macos.platform_breaks = vec![
            PlatformBreak {
                tests: 2,
                from_day: 8.0,
                to_day: 11.5,
            },
            PlatformBreak {
                tests: 1,
                from_day: 19.0,
                to_day: 22.0,
            },
        ];
        SimConfig {
            seed,
            start: "2026-10-22T00:00:00Z".into(),
            days: 30,
            main_commits_per_weekday: 11.0,
            main_commits_total: None,
            prs_per_weekday: 6.0,
            weekend_factor: 0.15,
            nightly: true,
            manual_rerun_prob: 0.04,
            max_attempts: 3,
            infra_failure_prob: 0.005,
            infra_no_report_prob: 0.5,
            flaky_fraction: 0.065,
            min_flaky_per_job: 1,
            flake_rate_min: 0.003,
            flake_rate_max: 0.25,
            pr_break_prob: 0.3,
            main_regressions: 2,
            new_test_fraction: 0.03,
            skipped_fraction: 0.015,
            fix_fraction: 0.0,
            onset_fraction: 0.0,
            cofailure_groups: vec![
                CoFailureGroup {
                    job: "integration".into(),
                    size: 4,
                    event_prob: 0.015,
                    member_prob: 0.85,
                },
                CoFailureGroup {
                    job: "unit-tests".into(),
                    size: 3,
                    event_prob: 0.008,
                    member_prob: 0.9,
                },
            ],
            jobs: vec![
                job("unit-tests", Dialect::Surefire, 110, 2, 540.0),
                integration,
                go,
                frontend,
                linux,
                macos,
            ],
        }
    }

    /// Four days, 40 tests over every dialect and kind: for integration tests.
    pub fn small(seed: u64) -> Self {
        let mut demo = SimConfig::demo(seed);
        let sizes = [10, 8, 8, 6, 4, 4];
        for (j, n) in demo.jobs.iter_mut().zip(sizes) {
            j.tests = n;
        }
        demo.jobs[5].platform_breaks = vec![PlatformBreak {
            tests: 1,
            from_day: 1.0,
            to_day: 2.5,
        }];
        SimConfig {
            days: 4,
            main_commits_per_weekday: 8.0,
            prs_per_weekday: 4.0,
            weekend_factor: 1.0,
            manual_rerun_prob: 0.08,
            flaky_fraction: 0.1,
            flake_rate_min: 0.03,
            flake_rate_max: 0.25,
            pr_break_prob: 0.4,
            main_regressions: 1,
            new_test_fraction: 0.0,
            skipped_fraction: 0.02,
            cofailure_groups: vec![CoFailureGroup {
                job: "integration".into(),
                size: 3,
                event_prob: 0.05,
                member_prob: 0.9,
            }],
            ..demo
        }
    }

    /// One job, `runs` attempts on as many main commits (no retries, so runs.csv has
    /// exactly `runs` rows), `tests` tests, compact one-file reports.
    pub fn bench(runs: usize, tests: usize, seed: u64) -> Self {
        let mut j = job("bench", Dialect::Compact, tests, 2, 600.0);
        j.retry_prob = 0.0;
        j.parallelism = 4;
        let days = runs.div_ceil(48).max(1) as u32;
        // The history ends on a fixed past day, however long it is: ingest refuses runs that
        // start in the future, and a fixed anchor keeps the data reproducible.
        let end = chrono::DateTime::parse_from_rfc3339(BENCH_END).expect("a valid constant");
        let start = end - chrono::Duration::days(i64::from(days));
        SimConfig {
            seed,
            start: start.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            days,
            main_commits_per_weekday: 0.0,
            main_commits_total: Some(runs),
            prs_per_weekday: 0.0,
            weekend_factor: 1.0,
            nightly: false,
            manual_rerun_prob: 0.0,
            max_attempts: 1,
            infra_failure_prob: 0.0,
            infra_no_report_prob: 0.0,
            flaky_fraction: 0.05,
            min_flaky_per_job: 0,
            flake_rate_min: 0.003,
            flake_rate_max: 0.25,
            pr_break_prob: 0.0,
            main_regressions: 0,
            new_test_fraction: 0.0,
            skipped_fraction: 0.01,
            cofailure_groups: Vec::new(),
            jobs: vec![j],
            fix_fraction: 0.0,
            onset_fraction: 0.0,
        }
    }

    /// The demo history with more flaky tests and churn: a third of the flaky tests fixed part-way, and some
    /// flakiness that starts part-way. Judges `fixed` against real fixes.
    pub fn churn(seed: u64) -> Self {
        SimConfig {
            flaky_fraction: 0.15,
            fix_fraction: 0.3,
            onset_fraction: 0.15,
            ..SimConfig::demo(seed)
        }
    }

    /// Sparse retries: only 15% of failed jobs are re-run, no nightly, no manual re-runs
    /// (in-run reruns stay as the runners have them). Lone failures dominate the evidence.
    pub fn sparse(mut self) -> Self {
        self.nightly = false;
        self.manual_rerun_prob = 0.0;
        for j in &mut self.jobs {
            j.retry_prob = 0.15;
        }
        self
    }

    /// Rare retries, the hard case: failed jobs re-run 10–20% of the time (by job), no
    /// in-run reruns, no nightly, no manual re-runs. Nearly every failure is a lone one;
    /// only the matrix twins and the rare retry see a commit twice.
    pub fn rare(mut self) -> Self {
        self.nightly = false;
        self.manual_rerun_prob = 0.0;
        for (i, j) in self.jobs.iter_mut().enumerate() {
            j.retry_prob = [0.1, 0.15, 0.2][i % 3];
            j.in_run_reruns = 0;
        }
        self
    }
}
