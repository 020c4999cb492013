//! Ground truth: what each test really is, what it did, and what fixing it would save.

use std::collections::HashMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::config::Dialect;
use super::engine::{self, AttemptRec, BROKEN, FLAKY, GROUP, PASS};
use super::world::World;

/// What a test really is, on one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Fails by chance when the code is fine (`flake_rate` > 0), whatever else it does.
    Flaky,
    /// Never fails (or only fails when the whole attempt does for infra reasons).
    Stable,
    /// Fails deterministically on some commits (a PR break, a main regression).
    BrokenSometimes,
    /// Fails deterministically on this job only (one side of a matrix), on some commits.
    PlatformBroken,
}

/// A test on a job, as `replay` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TestKey {
    pub job: String,
    pub classname: String,
    pub name: String,
}

impl TestKey {
    pub fn new(job: &str, classname: &str, name: &str) -> Self {
        TestKey {
            job: job.into(),
            classname: classname.into(),
            name: name.into(),
        }
    }
}

/// One test on one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestTruth {
    /// [`crate::model::TestIdentity`] in hex, as the store computes it from the report.
    pub id: String,
    pub classname: String,
    pub name: String,
    pub file: Option<String>,
    pub job: String,
    pub kind: Kind,
    /// Per-attempt failure probability when the code is fine (own flakiness and its
    /// co-failure group's; for a Go parent, any of its subtests'). 0 unless flaky.
    pub flake_rate: f64,
    /// Failed attempts (in-run reruns included) in the written reports.
    pub failures: u64,
    /// Those of `failures` caused by flakiness rather than a broken commit.
    pub flaky_failures: u64,
    /// Commits on which this test both failed and passed in this job (in-run or across
    /// attempts and runs): the evidence a scorer can see that it is flaky.
    pub evidence_commits: u64,
    /// Commits on which it failed because the commit broke it.
    pub broken_commits: u64,
    /// The job's runner reruns failed tests within the run.
    pub in_run_reruns: bool,
    /// For flaky tests: the job's retries per day in the baseline minus with this test
    /// fixed (every other draw identical). 0 otherwise.
    pub true_retries_per_day: f64,
    /// Tests sharing a flaky cause have the same group number.
    pub cofailure_group: Option<u32>,
    /// Always skipped.
    pub skipped: bool,
    /// Its own flakiness was fixed by the commits made from this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flaky_until: Option<String>,
    /// Its own flakiness started with the commits made from this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flaky_from: Option<String>,
    /// For a fixed test: the flaky failures its attempts after the fix would have shown
    /// had it not been fixed (first tries, own rate). How visible the fix is.
    #[serde(default)]
    pub expected_failures_after_fix: f64,
}

impl TestTruth {
    /// Fixed part-way (its own flakiness only; a co-failure group's cause stays).
    pub fn fixed(&self) -> bool {
        self.flaky_until.is_some()
    }
}

impl TestTruth {
    pub fn key(&self) -> TestKey {
        TestKey::new(&self.job, &self.classname, &self.name)
    }
}

/// Per-job totals of the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobTruth {
    pub job: String,
    pub dialect: Dialect,
    pub tests: usize,
    pub in_run_reruns: u32,
    pub attempts: u64,
    /// Attempts with attempt number ≥ 2.
    pub retries: u64,
    pub attempts_per_day: f64,
    pub retries_per_day: f64,
    pub mean_duration_s: f64,
    /// Baseline retries/day minus retries/day with all of this job's flaky tests fixed.
    pub true_retries_per_day: f64,
}

/// The ground truth written to `truth.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    pub seed: u64,
    pub start: String,
    pub days: f64,
    /// Rows of `runs.csv` (job attempts).
    pub runs: u64,
    /// Test results in the reports (one per test per attempt, reruns merged).
    pub results: u64,
    /// Baseline retries/day minus retries/day with every flaky test fixed.
    pub total_true_retries_per_day: f64,
    pub jobs: Vec<JobTruth>,
    pub tests: Vec<TestTruth>,
}

impl Truth {
    pub fn job(&self, name: &str) -> Option<&JobTruth> {
        self.jobs.iter().find(|j| j.job == name)
    }

    pub fn test(&self, key: &TestKey) -> Option<&TestTruth> {
        self.tests
            .iter()
            .find(|t| t.job == key.job && t.classname == key.classname && t.name == key.name)
    }

    pub fn flaky(&self) -> impl Iterator<Item = &TestTruth> {
        self.tests.iter().filter(|t| t.kind == Kind::Flaky)
    }
}

/// Per-test counts over attempts that left a report.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub failures: u64,
    pub flaky_failures: u64,
}

pub fn count_failures(w: &World, recs: &[AttemptRec]) -> Vec<Counts> {
    let mut out = vec![Counts::default(); w.tests.len()];
    for rec in recs.iter().filter(|r| r.has_report()) {
        for f in &rec.fails {
            let c = &mut out[f.test as usize];
            for &cause in &f.tries {
                if cause != PASS {
                    c.failures += 1;
                }
                if cause == FLAKY || cause == GROUP {
                    c.flaky_failures += 1;
                }
            }
        }
    }
    out
}

/// Leaves whose flakiness makes up test `t`'s (itself, or a parent's subtests).
pub fn flaky_sources(w: &World, t: u32) -> Vec<u32> {
    let test = &w.tests[t as usize];
    if test.children.is_empty() {
        if test.draws() {
            vec![t]
        } else {
            Vec::new()
        }
    } else {
        test.children
            .iter()
            .copied()
            .filter(|&c| w.tests[c as usize].draws())
            .collect()
    }
}

/// Marginal per-attempt chance that leaf `t` fails by chance.
fn leaf_rate(w: &World, t: u32) -> f64 {
    let test = &w.tests[t as usize];
    let group = test
        .group
        .map(|g| w.groups[g as usize].event_prob * w.groups[g as usize].member_prob)
        .unwrap_or(0.0);
    1.0 - (1.0 - test.own_rate) * (1.0 - group)
}

pub fn retries_by_job(w: &World, recs: &[AttemptRec]) -> Vec<u64> {
    let mut out = vec![0u64; w.jobs.len()];
    for r in recs.iter().filter(|r| r.attempt >= 2) {
        out[r.job as usize] += 1;
    }
    out
}

fn mask(w: &World, tests: &[u32]) -> Vec<bool> {
    let mut m = vec![false; w.tests.len()];
    for &t in tests {
        m[t as usize] = true;
    }
    m
}

/// Build the truth from the baseline attempts (replaying counterfactuals as needed).
pub fn compute(w: &World, cfg_start: &str, recs: &[AttemptRec]) -> Truth {
    let days = w.days as f64;
    let counts = count_failures(w, recs);
    let base_retries = retries_by_job(w, recs);

    // Evidence and breakages per (test, commit).
    let mut reports: HashMap<(u16, u32), u32> = HashMap::new();
    // (had in-run pass, attempts whose final try failed, any flaky try, any broken try)
    let mut seen: HashMap<(u32, u32), (bool, u32, bool, bool)> = HashMap::new();
    for rec in recs.iter().filter(|r| r.has_report()) {
        let commit = w.runs[rec.run as usize].commit;
        *reports.entry((rec.job, commit)).or_default() += 1;
        for f in &rec.fails {
            let e = seen.entry((f.test, commit)).or_default();
            if f.tries.last() == Some(&PASS) {
                e.0 = true;
            } else {
                e.1 += 1;
            }
            e.2 |= f.tries.iter().any(|&c| c == FLAKY || c == GROUP);
            e.3 |= f.tries.contains(&BROKEN);
        }
    }
    let mut evidence = vec![0u64; w.tests.len()];
    let mut broken_commits = vec![0u64; w.tests.len()];
    for (&(t, commit), &(inrun_pass, final_fails, _, broken)) in &seen {
        let job = w.tests[t as usize].job as u16;
        let total = reports.get(&(job, commit)).copied().unwrap_or(0);
        if inrun_pass || total > final_fails {
            evidence[t as usize] += 1;
        }
        if broken {
            broken_commits[t as usize] += 1;
        }
    }

    // Counterfactuals: one per flaky test (its job only), one per job with all fixed.
    let flaky_tests: Vec<u32> = (0..w.tests.len() as u32)
        .filter(|&t| !flaky_sources(w, t).is_empty())
        .collect();
    let per_test: HashMap<u32, u64> = flaky_tests
        .par_iter()
        .map(|&t| {
            let job = w.tests[t as usize].job;
            let m = mask(w, &flaky_sources(w, t));
            let cf = engine::simulate(w, &m, Some(job));
            let retries = cf.iter().filter(|r| r.attempt >= 2).count() as u64;
            (t, base_retries[job] - retries.min(base_retries[job]))
        })
        .collect();
    let all_flaky: Vec<u32> = (0..w.tests.len() as u32)
        .filter(|&t| w.tests[t as usize].draws())
        .collect();
    let all_fixed = engine::simulate(w, &mask(w, &all_flaky), None);
    let fixed_retries = retries_by_job(w, &all_fixed);

    let mut jobs = Vec::new();
    let mut attempts_by_job = vec![0u64; w.jobs.len()];
    let mut duration_by_job = vec![0f64; w.jobs.len()];
    for r in recs {
        attempts_by_job[r.job as usize] += 1;
        duration_by_job[r.job as usize] += r.duration_s;
    }
    for (ji, j) in w.jobs.iter().enumerate() {
        let attempts = attempts_by_job[ji];
        jobs.push(JobTruth {
            job: j.cfg.name.clone(),
            dialect: j.cfg.dialect,
            tests: j.tests.len(),
            in_run_reruns: j.cfg.in_run_reruns,
            attempts,
            retries: base_retries[ji],
            attempts_per_day: attempts as f64 / days,
            retries_per_day: base_retries[ji] as f64 / days,
            mean_duration_s: if attempts > 0 {
                duration_by_job[ji] / attempts as f64
            } else {
                0.0
            },
            true_retries_per_day: base_retries[ji].saturating_sub(fixed_retries[ji]) as f64 / days,
        });
    }

    // When each test's flakiness was fixed (a Go parent: when its last flaky subtest was),
    // and its first tries, with a report, on commits made after that.
    let fixed_at: Vec<Option<i64>> = (0..w.tests.len() as u32)
        .map(|t| {
            let sources = flaky_sources(w, t);
            let all_fixed = !sources.is_empty()
                && sources.iter().all(|&s| {
                    let leaf = &w.tests[s as usize];
                    leaf.group.is_none() && leaf.flaky_until != i64::MAX
                });
            all_fixed.then(|| {
                sources
                    .iter()
                    .map(|&s| w.tests[s as usize].flaky_until)
                    .max()
                    .unwrap_or(i64::MAX)
            })
        })
        .collect();
    let mut after_fix = vec![0u64; w.tests.len()];
    for rec in recs.iter().filter(|r| r.has_report()) {
        let made = w.commits[w.runs[rec.run as usize].commit as usize].time;
        for t in w.jobs[rec.job as usize].tests.clone() {
            if fixed_at[t as usize].is_some_and(|f| made >= f)
                && w.tests[t as usize].exists_at(made)
            {
                after_fix[t as usize] += 1;
            }
        }
    }
    let iso = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0).map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
    };

    let mut tests = Vec::with_capacity(w.tests.len());
    for (i, t) in w.tests.iter().enumerate() {
        let ti = i as u32;
        let sources = flaky_sources(w, ti);
        let flake_rate = 1.0
            - sources
                .iter()
                .map(|&s| 1.0 - leaf_rate(w, s))
                .product::<f64>();
        let kind = if !sources.is_empty() {
            Kind::Flaky
        } else if t.platform_broken && broken_commits[i] > 0 {
            Kind::PlatformBroken
        } else if broken_commits[i] > 0 {
            Kind::BrokenSometimes
        } else {
            Kind::Stable
        };
        let job = &w.jobs[t.job];
        tests.push(TestTruth {
            id: t.identity.hex(),
            classname: t.classname.clone(),
            name: t.name.clone(),
            file: t.file.clone(),
            job: job.cfg.name.clone(),
            kind,
            flake_rate: if sources.is_empty() { 0.0 } else { flake_rate },
            failures: counts[i].failures,
            flaky_failures: counts[i].flaky_failures,
            evidence_commits: evidence[i],
            broken_commits: broken_commits[i],
            in_run_reruns: job.cfg.in_run_reruns > 0,
            true_retries_per_day: per_test.get(&ti).copied().unwrap_or(0) as f64 / days,
            cofailure_group: t.group,
            skipped: t.skipped,
            flaky_until: fixed_at[i].and_then(iso),
            flaky_from: (t.own_rate > 0.0 && t.flaky_from != i64::MIN)
                .then(|| iso(t.flaky_from))
                .flatten(),
            expected_failures_after_fix: after_fix[i] as f64 * flake_rate,
        });
    }

    let base_total: u64 = base_retries.iter().sum();
    let fixed_total: u64 = fixed_retries.iter().sum();
    Truth {
        seed: w.seed,
        start: cfg_start.to_string(),
        days,
        runs: recs.len() as u64,
        results: recs.iter().map(|r| super::write::results_of(w, r)).sum(),
        total_true_retries_per_day: base_total.saturating_sub(fixed_total) as f64 / days,
        jobs,
        tests,
    }
}
