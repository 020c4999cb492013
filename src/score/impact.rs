//! What fixing each flaky test would save: job re-runs and CI minutes per day.
//!
//! Model, per job: a first attempt fails because of flaky tests with probability
//! `P = 1 − Π(1 − q_j)` over the job's flaky tests, where `q_j` is test j's per-run flake
//! rate (after in-run reruns). A failed attempt is retried with probability `r` (observed),
//! up to `M` attempts (observed), so flakiness causes `g(P) = Σ_{k=1}^{M−1} (P·r)^k` retries
//! per first attempt. Fixing test i saves `R₁ · (1 − b) · (g(P) − g(P₋ᵢ))` retries a day,
//! where `R₁` is first attempts per day, `b` the share of attempts that fail for reasons
//! other than flaky tests (those are retried anyway), and `P₋ᵢ` leaves test i out. Two
//! flaky tests failing the same attempt therefore share, not double-count, one retry.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use serde::Serialize;

use super::{Status, TestScore};
use crate::store::RunRow;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JobImpact {
    pub job: String,
    pub attempts: u32,
    pub attempts_per_day: f64,
    pub first_attempts_per_day: f64,
    /// Observed job re-runs (attempt ≥ 2) in the window.
    pub retries: u32,
    /// Share of failed attempts that were retried.
    pub retry_rate: f64,
    pub max_attempts: u32,
    pub mean_duration_min: f64,
    pub failed_attempts: u32,
    /// `failed_attempts / attempts`: every cause, breakages and infrastructure included.
    pub failure_rate: f64,
    /// Attempts that failed only because of flaky tests.
    pub flaky_failed_attempts: u32,
    /// `flaky_failed_attempts / attempts`.
    pub flake_rate: f64,
    /// Observed re-runs per day whose failed attempt failed only because of flaky tests.
    pub wasted_retries_per_day: f64,
    pub wasted_ci_minutes_per_day: f64,
    /// Model: re-runs per day caused by all of the job's flaky tests together.
    pub model_retries_per_day: f64,
    pub flaky_tests: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PipelineImpact {
    pub attempts: u32,
    /// Attempts that failed, whatever the cause.
    pub failed_attempts: u32,
    /// `failed_attempts / attempts`, shown beside the flake rate: a broken test failing
    /// every attempt hides flaky tests' failures without making CI any greener.
    pub failure_rate: f64,
    /// Share of attempts that failed for reasons other than flaky tests (broken tests,
    /// infrastructure): flaky tests' retries are counted only on the other attempts.
    pub masked_share: f64,
    pub flaky_failed_attempts: u32,
    /// Share of job attempts that failed only because of flaky tests.
    pub flake_rate: f64,
    pub slo: f64,
    pub meets_slo: bool,
    pub wasted_retries_per_day: f64,
    pub wasted_ci_minutes_per_day: f64,
    pub model_retries_per_day: f64,
    pub flaky_tests: u32,
}

/// Days covered: the window, or, when the history starts inside it (`covers_window`
/// false), the part from its first run (at least a day). A history that started before
/// the window covers all of it, however late its first run inside the window: a window
/// opening on a Friday evening would otherwise lose the quiet weekend and overstate every
/// per-day figure by as much.
/// `first_run`: the start of the first run inside the window, if any.
pub(crate) fn window_days(
    first_run: Option<i64>,
    since: i64,
    as_of: i64,
    covers_window: bool,
) -> f64 {
    let first = if covers_window {
        since
    } else {
        first_run.unwrap_or(as_of)
    };
    let span = (as_of - first.max(since)) as f64 / 86_400.0;
    span.max(1.0)
}

/// Pairs `(job, a, b)` of tests whose failures in one attempt are one failure: a Go parent
/// test fails whenever one of its subtests does (`TestX` and `TestX/case`, same package), so
/// neither is "another reason" for the other's retry, and fixing the subtest saves the
/// parent's retries too.
fn nested_tests(tests: &[TestScore], jobs: &[&str]) -> HashSet<(u32, i64, i64)> {
    let keys: Vec<(&str, &str, &str, i64)> = tests
        .iter()
        .map(|t| {
            let id = u64::from_str_radix(&t.test_id, 16).unwrap_or(0) as i64;
            (t.job.as_str(), t.classname.as_str(), t.name.as_str(), id)
        })
        .collect();
    nested_pairs(&keys, jobs)
}

/// [`nested_tests`] over `(job, classname, name, test id)`. Only Go names nest: the first
/// segment is a Go test function (`TestX`, `FuzzX`, `ExampleX`, `BenchmarkX`), so that
/// `GET /users` and `GET /users/{id}` of another framework are not taken for a parent and
/// its subtest. One name may carry several test ids (the same test with and without a
/// `file`): each is paired, whatever the input order.
pub(crate) fn nested_pairs(
    tests: &[(&str, &str, &str, i64)],
    jobs: &[&str],
) -> HashSet<(u32, i64, i64)> {
    let mut by_name: HashMap<(&str, &str, &str), Vec<i64>> = HashMap::new();
    for &(job, class, name, id) in tests {
        by_name.entry((job, class, name)).or_default().push(id);
    }
    let mut pairs = HashSet::new();
    for &(job, class, name, child) in tests.iter().filter(|t| is_go_subtest(t.2)) {
        let job_index = jobs.binary_search(&job).unwrap_or(0) as u32;
        for (cut, _) in name.match_indices('/') {
            for &parent in by_name
                .get(&(job, class, &name[..cut]))
                .into_iter()
                .flatten()
            {
                pairs.insert((job_index, child, parent));
                pairs.insert((job_index, parent, child));
            }
        }
    }
    pairs
}

/// Whether `child` is a Go subtest (at any depth) of the test named `parent`.
pub fn is_go_subtest_of(child: &str, parent: &str) -> bool {
    child
        .strip_prefix(parent)
        .is_some_and(|rest| rest.starts_with('/'))
        && is_go_subtest(child)
}

/// `TestX/case…` with `TestX` a Go test, fuzz, example or benchmark function name.
fn is_go_subtest(name: &str) -> bool {
    let Some((top, _)) = name.split_once('/') else {
        return false;
    };
    ["Test", "Fuzz", "Example", "Benchmark"]
        .iter()
        .any(|p| top.starts_with(p))
        && top.chars().all(|c| c.is_alphanumeric() || c == '_')
}

fn g(p: f64, r: f64, max_attempts: u32) -> f64 {
    (1..max_attempts).map(|k| (p * r).powi(k as i32)).sum()
}

pub(crate) fn estimate(
    tests: &mut [TestScore],
    runs: &[RunRow],
    failed_tests: &[Vec<i64>],
    jobs: &[&str],
    job_of: &[u32],
    job_days: &[f64],
    slo: f64,
) -> (PipelineImpact, Vec<JobImpact>) {
    // Flaky tests per job, by id; and those that flaked in the window (see
    // [`Status::flaked_in_window`]): an attempt they alone failed is flaky waste, and counting
    // it as "other reasons" made the flake rate drop the moment a test was quarantined.
    let mut flaky: HashMap<u32, HashSet<i64>> = HashMap::new();
    let mut was_flaky: HashMap<u32, HashSet<i64>> = HashMap::new();
    for t in tests.iter().filter(|t| t.status.flaked_in_window()) {
        let job = jobs.binary_search(&t.job.as_str()).unwrap_or(0) as u32;
        let id = u64::from_str_radix(&t.test_id, 16).unwrap_or(0) as i64;
        if t.status == Status::Flaky {
            flaky.entry(job).or_default().insert(id);
        }
        was_flaky.entry(job).or_default().insert(id);
    }
    let one_failure = nested_tests(tests, jobs);
    // The re-run of a failed attempt is the next run of the same job and branch on the same
    // commit: the next attempt of the CI run, or a new run (providers such as CircleCI and
    // Jenkins give a re-run a new id). Runs are in start order already.
    // A run is a retry when it follows, on the same job and commit, a run that failed (a
    // failing test) or that it re-runs (a higher attempt of the CI run, e.g. after an
    // infrastructure failure). A later run after a passing one (a nightly, a manual re-run)
    // starts a new chain: it is a first attempt that flakiness can fail in turn.
    let mut next_run: Vec<Option<usize>> = vec![None; runs.len()];
    let mut is_retry: Vec<bool> = vec![false; runs.len()];
    // 1 for the first attempt of a chain, 2 for its first retry, …
    let mut nth_attempt: Vec<u32> = vec![1; runs.len()];
    {
        // Keyed by branch too: a push build and a pull-request build of one commit (both
        // started by the same push) are two first attempts, not a failure and its retry.
        let mut last: HashMap<(u32, &str, &str), usize> = HashMap::new();
        for (pos, r) in runs.iter().enumerate() {
            let key = (job_of[pos], r.branch.as_str(), r.commit.as_str());
            if let Some(prev) = last.insert(key, pos) {
                let retry = !failed_tests[prev].is_empty()
                    || (r.run_id == runs[prev].run_id && r.attempt > runs[prev].attempt);
                if retry {
                    next_run[prev] = Some(pos);
                    is_retry[pos] = true;
                    nth_attempt[pos] = nth_attempt[prev] + 1;
                }
            }
        }
    }
    // The counterfactual, chain by chain: without test X's failures, the chain of attempts
    // would have stopped at the first attempt that failed only because of X, so the retries
    // after it are X's. An attempt failing for another reason too is retried anyway. X
    // failing every attempt of a chain is a breakage, not a flake: no retry is charged.
    let mut caused: HashMap<(u32, i64), u32> = HashMap::new();
    // Flaky tests that failed an attempt that was retried: the window shows what their
    // failures cost, so the count (even none, when others failed beside them) is the
    // evidence, not the model.
    let mut seen_retried: HashSet<(u32, i64)> = HashSet::new();
    for (pos, failed) in failed_tests.iter().enumerate() {
        if next_run[pos].is_some() {
            if let Some(flaky_here) = flaky.get(&job_of[pos]) {
                for &x in failed.iter().filter(|x| flaky_here.contains(x)) {
                    seen_retried.insert((job_of[pos], x));
                }
            }
        }
    }
    for start in (0..runs.len()).filter(|&p| !is_retry[p]) {
        let mut chain = vec![start];
        while let Some(n) = next_run[*chain.last().unwrap_or(&start)] {
            chain.push(n);
        }
        if chain.len() < 2 {
            continue;
        }
        let job = job_of[start];
        let Some(flaky_here) = flaky.get(&job) else {
            continue;
        };
        for &x in flaky_here {
            if chain.iter().all(|&p| failed_tests[p].contains(&x)) {
                continue;
            }
            let only_x = |p: usize| {
                failed_tests[p].contains(&x)
                    && failed_tests[p]
                        .iter()
                        .all(|&y| y == x || one_failure.contains(&(job, x, y)))
            };
            if let Some(k) = chain.iter().position(|&p| only_x(p)) {
                let retries_after = (chain.len() - 1 - k) as u32;
                if retries_after > 0 {
                    *caused.entry((job, x)).or_default() += retries_after;
                }
            }
        }
    }
    let mut stats: Vec<JobImpact> = jobs
        .iter()
        .map(|j| JobImpact {
            job: j.to_string(),
            ..Default::default()
        })
        .collect();
    let mut failed_retried = vec![0u32; jobs.len()];
    let mut failed_retriable = vec![0u32; jobs.len()];
    let mut first_attempts = vec![0u32; jobs.len()];
    let mut duration_s = vec![0f64; jobs.len()];
    let mut other_failures = vec![0u32; jobs.len()];
    let mut observed: HashMap<(u32, i64), u32> = HashMap::new();
    let mut wasted_minutes = vec![0f64; jobs.len()];
    let mut wasted_retries = vec![0u32; jobs.len()];
    let empty = HashSet::new();
    for (pos, r) in runs.iter().enumerate() {
        let job = job_of[pos];
        let s = &mut stats[job as usize];
        s.attempts += 1;
        s.max_attempts = s.max_attempts.max(r.attempt).max(nth_attempt[pos]);
        duration_s[job as usize] += r.wall_time_s();
        if is_retry[pos] {
            s.retries += 1;
        } else {
            first_attempts[job as usize] += 1;
        }
        let failed = &failed_tests[pos];
        if failed.is_empty() {
            // Retried with no failing test: it failed for another reason (the runner, the
            // build, a crash before any report). Such failures are retried whatever the
            // flaky tests do.
            if next_run[pos].is_some() {
                s.failed_attempts += 1;
                other_failures[job as usize] += 1;
                failed_retriable[job as usize] += 1;
                failed_retried[job as usize] += 1;
            }
            continue;
        }
        s.failed_attempts += 1;
        let flaky_here = was_flaky.get(&job).unwrap_or(&empty);
        let only_flaky = failed.iter().all(|t| flaky_here.contains(t));
        if only_flaky {
            s.flaky_failed_attempts += 1;
        } else {
            other_failures[job as usize] += 1;
        }
        let next = next_run[pos].as_ref();
        failed_retriable[job as usize] += 1;
        if let Some(&next_pos) = next {
            failed_retried[job as usize] += 1;
            if only_flaky {
                wasted_retries[job as usize] += 1;
                wasted_minutes[job as usize] += runs[next_pos].wall_time_s() / 60.0;
                for &x in failed {
                    if failed
                        .iter()
                        .all(|&y| y == x || one_failure.contains(&(job, x, y)))
                    {
                        *observed.entry((job, x)).or_default() += 1;
                    }
                }
            }
        }
    }

    let mut pipeline = PipelineImpact {
        slo,
        ..Default::default()
    };
    for (j, s) in stats.iter_mut().enumerate() {
        s.attempts_per_day = f64::from(s.attempts) / job_days[j];
        s.first_attempts_per_day = f64::from(first_attempts[j]) / job_days[j];
        // Laplace's rule keeps a job with one failure from claiming a certain retry.
        s.retry_rate =
            (f64::from(failed_retried[j]) + 0.5) / (f64::from(failed_retriable[j]) + 1.0);
        s.mean_duration_min = if s.attempts > 0 {
            duration_s[j] / f64::from(s.attempts) / 60.0
        } else {
            0.0
        };
        s.flake_rate = if s.attempts > 0 {
            f64::from(s.flaky_failed_attempts) / f64::from(s.attempts)
        } else {
            0.0
        };
        s.wasted_retries_per_day = f64::from(wasted_retries[j]) / job_days[j];
        s.wasted_ci_minutes_per_day = wasted_minutes[j] / job_days[j];
        s.failure_rate = if s.attempts > 0 {
            round(f64::from(s.failed_attempts) / f64::from(s.attempts), 5)
        } else {
            0.0
        };
        pipeline.attempts += s.attempts;
        pipeline.failed_attempts += s.failed_attempts;
        pipeline.flaky_failed_attempts += s.flaky_failed_attempts;
        pipeline.wasted_retries_per_day += s.wasted_retries_per_day;
        pipeline.wasted_ci_minutes_per_day += s.wasted_ci_minutes_per_day;
    }

    // The model, job by job.
    for (j, s) in stats.iter_mut().enumerate() {
        let job_tests: Vec<usize> = tests
            .iter()
            .enumerate()
            .filter(|(_, t)| t.status == Status::Flaky && t.job == s.job)
            .map(|(i, _)| i)
            .collect();
        s.flaky_tests = job_tests.len() as u32;
        let survive: f64 = job_tests
            .iter()
            .map(|&i| 1.0 - tests[i].run_failure_share)
            .product();
        let p_all = 1.0 - survive;
        // Attempts failing for other reasons are retried whatever the flaky tests do.
        let b = if s.attempts > 0 {
            f64::from(other_failures[j]) / f64::from(s.attempts)
        } else {
            0.0
        };
        let r1 = s.first_attempts_per_day;
        let g_all = g(p_all, s.retry_rate, s.max_attempts);
        s.model_retries_per_day = r1 * (1.0 - b) * g_all;
        pipeline.model_retries_per_day += s.model_retries_per_day;
        for &i in &job_tests {
            let q = tests[i].run_failure_share;
            let p_without = if q < 1.0 {
                1.0 - survive / (1.0 - q)
            } else {
                job_tests
                    .iter()
                    .filter(|&&k| k != i)
                    .fold(1.0, |acc, &k| acc * (1.0 - tests[k].run_failure_share))
                    .mul_add(-1.0, 1.0)
            };
            let saved =
                r1 * (1.0 - b) * (g_all - g(p_without.max(0.0), s.retry_rate, s.max_attempts));
            let t = &mut tests[i];
            let id = u64::from_str_radix(&t.test_id, 16).unwrap_or(0) as i64;
            // Retries seen and charged by the counterfactual, as a rate; the model only
            // where the window saw none (a retry policy too rare to show them).
            let counted = caused.get(&(j as u32, id)).copied().unwrap_or(0);
            let rate = if counted > 0 || seen_retried.contains(&(j as u32, id)) {
                f64::from(counted) / job_days[j]
            } else {
                saved.max(0.0)
            };
            t.retries_per_day = round(rate, 3);
            t.in_run_rerun_minutes_per_day = round(
                f64::from(t.in_run_reruns) * t.mean_attempt_s / 60.0 / job_days[j],
                2,
            );
            t.ci_minutes_per_day = round(
                t.retries_per_day * s.mean_duration_min + t.in_run_rerun_minutes_per_day,
                2,
            );
            t.job_failure_rate = round(q, 6);
            t.masked_share = round(b, 4);
            let id = u64::from_str_radix(&t.test_id, 16).unwrap_or(0) as i64;
            t.observed_retries = observed.get(&(j as u32, id)).copied().unwrap_or(0);
        }
        s.model_retries_per_day = round(s.model_retries_per_day, 3);
        s.wasted_retries_per_day = round(s.wasted_retries_per_day, 3);
        s.wasted_ci_minutes_per_day = round(s.wasted_ci_minutes_per_day, 2);
        s.retry_rate = round(s.retry_rate, 4);
        s.mean_duration_min = round(s.mean_duration_min, 2);
        s.attempts_per_day = round(s.attempts_per_day, 2);
        s.first_attempts_per_day = round(s.first_attempts_per_day, 2);
        s.flake_rate = round(s.flake_rate, 5);
    }
    pipeline.flaky_tests = stats.iter().map(|s| s.flaky_tests).sum();
    pipeline.flake_rate = if pipeline.attempts > 0 {
        round(
            f64::from(pipeline.flaky_failed_attempts) / f64::from(pipeline.attempts),
            5,
        )
    } else {
        0.0
    };
    pipeline.meets_slo = pipeline.flake_rate <= slo;
    if pipeline.attempts > 0 {
        let n = f64::from(pipeline.attempts);
        pipeline.failure_rate = round(f64::from(pipeline.failed_attempts) / n, 5);
        pipeline.masked_share = round(
            other_failures.iter().map(|&x| f64::from(x)).sum::<f64>() / n,
            5,
        );
    }
    pipeline.wasted_retries_per_day = round(pipeline.wasted_retries_per_day, 3);
    pipeline.wasted_ci_minutes_per_day = round(pipeline.wasted_ci_minutes_per_day, 2);
    pipeline.model_retries_per_day = round(pipeline.model_retries_per_day, 3);
    (pipeline, stats)
}

/// Round for output, so that printed numbers are stable across platforms.
pub(crate) fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

#[cfg(test)]
mod tests {
    use super::{g, nested_pairs};

    #[test]
    fn go_subtests_and_their_parents_are_one_failure() {
        let jobs = ["linux", "mac"];
        let tests = [
            ("linux", "pkg/a", "TestX", 1),
            ("linux", "pkg/a", "TestX/case_1", 2),
            ("linux", "pkg/a", "TestX/case_1/deep", 3),
            ("linux", "pkg/b", "TestX/case_1", 4), // another package: not nested
            ("mac", "pkg/a", "TestX/case_1", 5),   // another job: not nested
            ("linux", "pkg/a", "TestXY", 6),       // a prefix is not a parent
            // Not Go: an HTTP route and its sub-route in one suite are two tests.
            ("linux", "api", "GET /users", 7),
            ("linux", "api", "GET /users/{id}", 8),
            // The same parent under a second test id (written with a file): both nest.
            ("linux", "pkg/a", "TestX", 9),
        ];
        let pairs = nested_pairs(&tests, &jobs);
        for (a, b) in [(1, 2), (1, 3), (2, 3), (9, 2), (9, 3)] {
            assert!(pairs.contains(&(0, a, b)), "{a} and {b}");
            assert!(pairs.contains(&(0, b, a)), "{b} and {a}");
        }
        assert_eq!(pairs.len(), 10, "{pairs:?}");
        // Whatever the order the tests come in.
        let mut reversed = tests;
        reversed.reverse();
        assert_eq!(nested_pairs(&reversed, &jobs), pairs);
    }

    #[test]
    fn retries_follow_the_retry_chain() {
        // Always failing, always retried, at most 3 attempts: 2 retries.
        assert!((g(1.0, 1.0, 3) - 2.0).abs() < 1e-12);
        // Never retried: no retries.
        assert_eq!(g(0.5, 0.0, 3), 0.0);
        // One attempt allowed: no retries.
        assert_eq!(g(0.5, 1.0, 1), 0.0);
        assert!((g(0.1, 1.0, 3) - 0.11).abs() < 1e-12);
    }
}
