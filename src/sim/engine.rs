//! Outcomes: which tests fail in which attempt, which job attempts fail, which get
//! retried. Every draw is keyed (see [`super::rng`]), so fixing a test changes only what
//! follows from that test's own failures.

use rayon::prelude::*;

use super::rng::{key, lognormal, u, unit, Purpose};
use super::world::World;

/// Why one in-run attempt of a test ended as it did.
pub const PASS: u8 = 0;
/// The commit breaks the test: it fails every attempt.
pub const BROKEN: u8 = 1;
/// The test's own flakiness.
pub const FLAKY: u8 = 2;
/// The flaky cause it shares with its co-failure group.
pub const GROUP: u8 = 3;

/// A test that failed at least once in a job attempt; every other test passed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestFail {
    pub test: u32,
    /// One entry per in-run attempt (first run, then reruns), until one passes.
    pub tries: Vec<u8>,
}

impl TestFail {
    /// Failed every attempt it got: the job fails.
    pub fn final_fail(&self) -> bool {
        self.tries.last().is_some_and(|&c| c != PASS)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Infra {
    None,
    /// The attempt failed outside the tests, after writing its reports.
    WithReport,
    /// The attempt failed outside the tests and left no report.
    NoReport,
}

/// One job attempt.
#[derive(Debug, Clone)]
pub struct AttemptRec {
    pub run: u32,
    pub job: u16,
    pub attempt: u32,
    pub started_at: i64,
    pub duration_s: f64,
    pub infra: Infra,
    pub failed: bool,
    /// Sorted by test index; Go parents included (derived from their subtests).
    pub fails: Vec<TestFail>,
}

impl AttemptRec {
    pub fn has_report(&self) -> bool {
        self.infra != Infra::NoReport
    }

    pub fn fail_of(&self, test: u32) -> Option<&TestFail> {
        self.fails
            .binary_search_by_key(&test, |f| f.test)
            .ok()
            .map(|i| &self.fails[i])
    }
}

fn is_fixed(fixed: &[bool], t: u32) -> bool {
    fixed.get(t as usize).copied().unwrap_or(false)
}

/// How test `t` does in-run attempt `r` of a job attempt.
fn cause(
    w: &World,
    fixed: &[bool],
    run: usize,
    attempt: u32,
    t: u32,
    broken: bool,
    r: usize,
) -> u8 {
    if broken {
        return BROKEN;
    }
    if is_fixed(fixed, t) {
        return PASS;
    }
    let test = &w.tests[t as usize];
    let (ri, at, tt, rr) = (run as u64, attempt as u64, t as u64, r as u64);
    let made = w.commits[w.runs[run].commit as usize].time;
    if test.flaky_at(made) && u(w.seed, Purpose::Flake, &[ri, at, tt, rr]) < test.own_rate {
        return FLAKY;
    }
    if let Some(g) = test.group {
        let group = &w.groups[g as usize];
        if u(w.seed, Purpose::GroupEvent, &[g as u64, ri, at, rr]) < group.event_prob
            && u(w.seed, Purpose::GroupMember, &[ri, at, tt, rr]) < group.member_prob
        {
            return GROUP;
        }
    }
    PASS
}

/// The tests that failed in one job attempt, with their in-run reruns.
fn attempt_fails(w: &World, fixed: &[bool], run: usize, job: usize, attempt: u32) -> Vec<TestFail> {
    let j = &w.jobs[job];
    let commit = &w.commits[w.runs[run].commit as usize];
    let lo = commit.broken.partition_point(|&t| t < j.tests.start);
    let hi = commit.broken.partition_point(|&t| t < j.tests.end);
    let broken = &commit.broken[lo..hi];

    // Candidates: broken on this commit, or able to fail by chance; merged in order.
    let mut cands: Vec<(u32, bool)> = Vec::with_capacity(broken.len() + j.draws.len());
    let (mut a, mut b) = (0, 0);
    let draws = &j.draws;
    while a < broken.len() || b < draws.len() {
        let next_broken = broken.get(a).copied().unwrap_or(u32::MAX);
        let next_draw = draws.get(b).copied().unwrap_or(u32::MAX);
        if next_broken <= next_draw {
            cands.push((next_broken, true));
            a += 1;
            if next_draw == next_broken {
                b += 1;
            }
        } else {
            if w.tests[next_draw as usize].exists_at(commit.time) {
                cands.push((next_draw, false));
            }
            b += 1;
        }
    }

    let mut fails: Vec<(TestFail, bool)> = Vec::new();
    for &(t, is_broken) in &cands {
        let c = cause(w, fixed, run, attempt, t, is_broken, 0);
        if c != PASS {
            fails.push((
                TestFail {
                    test: t,
                    tries: vec![c],
                },
                is_broken,
            ));
        }
    }
    if fails.is_empty() {
        return Vec::new();
    }

    let mut parents: Vec<u32> = fails
        .iter()
        .filter_map(|(f, _)| w.tests[f.test as usize].parent)
        .collect();
    parents.sort_unstable();
    parents.dedup();

    let reruns = j.cfg.in_run_reruns as usize;
    let allowed = j
        .cfg
        .rerun_max_failures
        .is_none_or(|m| fails.len() + parents.len() <= m as usize);
    if allowed {
        for (f, is_broken) in &mut fails {
            for r in 1..=reruns {
                let c = cause(w, fixed, run, attempt, f.test, *is_broken, r);
                f.tries.push(c);
                if c == PASS {
                    break;
                }
            }
        }
    }
    let mut out: Vec<TestFail> = fails.into_iter().map(|(f, _)| f).collect();

    // A Go parent fails when a subtest does; gotestsum reruns it with its failed subtests.
    for p in parents {
        let kids: Vec<&TestFail> = out
            .iter()
            .filter(|f| w.tests[f.test as usize].parent == Some(p))
            .collect();
        let len = kids.iter().map(|f| f.tries.len()).max().unwrap_or(0);
        let tries = (0..len)
            .map(|r| {
                let failing = kids
                    .iter()
                    .filter_map(|f| f.tries.get(r).copied())
                    .filter(|&c| c != PASS);
                failing.fold(PASS, |acc, c| match (acc, c) {
                    (BROKEN, _) | (_, BROKEN) => BROKEN,
                    (PASS, c) => c,
                    (acc, _) => acc,
                })
            })
            .collect();
        out.push(TestFail { test: p, tries });
    }
    out.sort_by_key(|f| f.test);
    out
}

/// Every attempt of one job in one run, retries included.
fn job_run(w: &World, fixed: &[bool], run: usize, job: usize) -> Vec<AttemptRec> {
    let r = &w.runs[run];
    let j = &w.jobs[job];
    let (ri, ji) = (run as u64, job as u64);
    let mut start = r.started_at + 5 + (key(w.seed, Purpose::Queue, &[ri, ji]) % 175) as i64;
    let mut out = Vec::new();
    for attempt in 1..=w.max_attempts {
        let at = attempt as u64;
        let infra = if u(w.seed, Purpose::Infra, &[ri, ji, at]) < w.infra_failure_prob {
            if u(w.seed, Purpose::InfraReport, &[ri, ji, at]) < w.infra_no_report_prob {
                Infra::NoReport
            } else {
                Infra::WithReport
            }
        } else {
            Infra::None
        };
        let fails = attempt_fails(w, fixed, run, job, attempt);
        let failed = infra != Infra::None
            || fails
                .iter()
                .any(|f| f.final_fail() && w.tests[f.test as usize].children.is_empty());
        let mut duration = j.overhead_s
            * lognormal(key(w.seed, Purpose::Duration, &[ri, ji, at, 0]), 0.2)
            + j.tests_s * lognormal(key(w.seed, Purpose::Duration, &[ri, ji, at, 1]), 0.1);
        for f in &fails {
            let t = &w.tests[f.test as usize];
            if t.children.is_empty() {
                duration += (f.tries.len() - 1) as f64 * t.base_time;
            }
        }
        if infra == Infra::NoReport {
            duration *= 0.15 + 0.6 * unit(key(w.seed, Purpose::Duration, &[ri, ji, at, 2]));
        }
        let duration_s = duration.round().max(1.0);
        out.push(AttemptRec {
            run: run as u32,
            job: job as u16,
            attempt,
            started_at: start,
            duration_s,
            infra,
            failed,
            fails,
        });
        if !failed || attempt == w.max_attempts {
            break;
        }
        // One "re-run failed jobs" decision per run and attempt, shared by its jobs.
        if u(w.seed, Purpose::Retry, &[ri, at]) >= j.cfg.retry_prob {
            break;
        }
        let delay = 180.0 - (1.0 - u(w.seed, Purpose::RetryDelay, &[ri, ji, at])).ln() * 1200.0;
        start += duration_s as i64 + delay as i64;
    }
    out
}

/// Simulate every run (or only one job's attempts), with the `fixed` tests never failing
/// by chance. Attempts come out in run order, then job order.
pub fn simulate(w: &World, fixed: &[bool], only_job: Option<usize>) -> Vec<AttemptRec> {
    w.runs
        .par_iter()
        .enumerate()
        .flat_map_iter(|(ri, run)| {
            run.jobs
                .iter()
                .map(|&j| j as usize)
                .filter(move |&j| only_job.is_none_or(|o| o == j))
                .flat_map(move |j| job_run(w, fixed, ri, j))
        })
        .collect()
}
