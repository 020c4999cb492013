//! History → per test and job: flaky, suspect, broken, fixed or stable, with a flake rate.
//!
//! The definitive evidence is a **commit on which the test both passed and failed in the
//! same job** (across runs, or across attempts within one run). A commit on which it failed
//! every attempt (at least two) is a real breakage and is excluded from the flake rate. A
//! lone failure with no retry is ambiguous; it moves a test to flaky only when its failure
//! fingerprint matches the test's known flaky failures, or when the same failure hits
//! several unrelated commits with passes before and after, and to suspect otherwise.

mod impact;
mod stats;

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::error::Result;
use crate::model::TestIdentity;
use crate::store::{RunFilter, RunRow, Store};

pub use impact::{JobImpact, PipelineImpact};
pub use stats::beta_interval;

/// Thresholds of the scorer; each is a CLI flag with this default.
#[derive(Debug, Clone)]
pub struct ScoreOptions {
    /// End of the window (Unix seconds); default: start of the newest run.
    pub as_of: Option<i64>,
    pub window_s: i64,
    pub branch: Option<String>,
    pub job: Option<String>,
    /// Commits with both outcomes needed to call a test flaky.
    pub min_flaky_commits: u32,
    /// Isolated single failures with one fingerprint (passes before and after, on unrelated
    /// commits) that make a test flaky without same-commit evidence.
    pub min_isolated_failures: u32,
    /// A flaky test is `fixed` when, at its estimated flake rate, the clean attempts since
    /// its last flake would happen with probability below this.
    pub fixed_alpha: f64,
    /// The job-failure SLO: share of job attempts allowed to fail only because of flaky tests.
    pub slo: f64,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        ScoreOptions {
            as_of: None,
            window_s: 30 * 86_400,
            branch: None,
            job: None,
            min_flaky_commits: 1,
            min_isolated_failures: 3,
            fixed_alpha: 0.05,
            slo: 0.01,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Flaky,
    Suspect,
    Broken,
    Fixed,
    Stable,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Flaky => "flaky",
            Status::Suspect => "suspect",
            Status::Broken => "broken",
            Status::Fixed => "fixed",
            Status::Stable => "stable",
        }
    }
}

/// Evidence from one commit: how the test fared there in this job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommitEvidence {
    pub commit: String,
    pub branch: String,
    pub runs: u32,
    pub passes: u32,
    pub failures: u32,
    /// When the first of its runs started (RFC 3339).
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FingerprintCount {
    pub fingerprint: String,
    pub message: String,
    pub count: u32,
}

/// The score of one test in one job. Field names are the `flaky --format json` contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestScore {
    pub test_id: String,
    pub classname: String,
    pub name: String,
    pub file: Option<String>,
    pub job: String,
    pub status: Status,
    /// Why the status, in words.
    pub reason: String,
    pub runs: u32,
    pub attempts: u32,
    pub failures: u32,
    /// Commits on which the test both passed and failed in this job.
    pub flaky_commits: u32,
    /// Commits on which it failed every attempt (a real breakage).
    pub broken_commits: u32,
    /// Failures with no retry on their commit.
    pub single_failures: u32,
    /// Probability that one attempt fails when the code is fine (posterior mean).
    pub flake_rate: f64,
    pub flake_rate_low: f64,
    pub flake_rate_high: f64,
    /// Probability that a whole run fails because of this test, after in-run reruns.
    pub run_flake_rate: f64,
    pub run_flake_rate_low: f64,
    pub run_flake_rate_high: f64,
    pub first_flake_at: Option<String>,
    pub last_flake_at: Option<String>,
    /// Model estimate: job re-runs per day that fixing this test would save.
    pub retries_per_day: f64,
    /// Model estimate: CI minutes per day saved (job re-runs plus in-run reruns).
    pub ci_minutes_per_day: f64,
    /// Of which: minutes per day spent rerunning the test inside its runs.
    pub in_run_rerun_minutes_per_day: f64,
    /// Observed: retries in the window whose failed attempt failed only because of this test.
    pub observed_retries: u32,
    /// Share of the job's attempts that this test fails (after in-run reruns).
    pub job_failure_rate: f64,
    pub fingerprints: Vec<FingerprintCount>,
    /// The flaky commits, newest first.
    pub evidence: Vec<CommitEvidence>,
    /// Days in the window with a flake, as YYYY-MM-DD → flaky attempts, for charts.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub flakes_by_day: BTreeMap<String, u32>,
    #[serde(skip)]
    pub(crate) mean_attempt_s: f64,
    #[serde(skip)]
    pub(crate) in_run_reruns: u32,
    /// Share of runs this test failed (after in-run reruns), breakages excluded: the
    /// maximum-likelihood estimate the impact model uses, so that a test whose flakes are
    /// always absorbed by in-run reruns costs no job retries.
    #[serde(skip)]
    pub(crate) run_failure_share: f64,
}

impl TestScore {
    pub fn readable(&self) -> String {
        crate::model::readable_name(&self.classname, &self.name)
    }
}

/// Everything the scorer found in the window.
#[derive(Debug, Clone, Serialize)]
pub struct Scored {
    pub as_of: String,
    pub since: String,
    pub window_days: f64,
    /// Every test that is not stable, sorted: flaky by retries/day, then the rest.
    pub tests: Vec<TestScore>,
    pub stable_tests: u32,
    pub pipeline: PipelineImpact,
    pub jobs: Vec<JobImpact>,
    #[serde(skip)]
    pub(crate) runs: Vec<RunRow>,
    /// Per run (same order as `runs`): the tests that failed it.
    #[serde(skip)]
    pub(crate) failed_tests: Vec<Vec<i64>>,
}

impl Scored {
    pub fn flaky(&self) -> impl Iterator<Item = &TestScore> {
        self.tests.iter().filter(|t| t.status == Status::Flaky)
    }

    pub fn runs(&self) -> &[RunRow] {
        &self.runs
    }

    pub fn failed_tests(&self) -> &[Vec<i64>] {
        &self.failed_tests
    }
}

pub fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn day(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// A (test, job, commit) where the test failed at least once.
#[derive(Default)]
struct Cell {
    runs: u32,
    attempts: u32,
    failures: u32,
    first_run: Option<usize>,
    fingerprints: Vec<i64>,
    /// Run positions where it failed.
    failed_runs: Vec<usize>,
}

/// What one scan thread gathered.
struct Partial {
    accs: FastMap<(i64, u32), Acc>,
    cells: FastMap<(i64, u32, u32), Cell>,
    failed_tests: Vec<Vec<i64>>,
}

/// Test ids are already uniform hashes, so a multiply-rotate hasher is enough and far
/// cheaper than SipHash on the scan's hot path.
#[derive(Default, Clone, Copy)]
struct FastHasher(u64);

impl std::hash::Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_i64(&mut self, v: i64) {
        self.write_u64(v as u64);
    }

    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }

    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FastHasher>>;

#[derive(Default)]
struct Acc {
    runs: u32,
    attempts: u32,
    failures: u32,
    failed_runs: u32,
    duration_ms: i64,
    in_run_reruns: u32,
    /// Latest run (by start) with its outcome.
    latest: Option<(i64, usize, u8)>,
    /// Attempts after the last failure seen in the window.
    attempts_after_last_failure: u32,
    last_failure_at: Option<i64>,
}

impl Acc {
    fn merge(&mut self, o: Acc) {
        self.runs += o.runs;
        self.attempts += o.attempts;
        self.failures += o.failures;
        self.failed_runs += o.failed_runs;
        self.duration_ms += o.duration_ms;
        self.in_run_reruns += o.in_run_reruns;
        self.attempts_after_last_failure += o.attempts_after_last_failure;
        if let Some(l) = o.latest {
            if self.latest.is_none_or(|m| (l.0, l.1) > (m.0, m.1)) {
                self.latest = Some(l);
            }
        }
        if o.last_failure_at.is_some() {
            self.last_failure_at = o.last_failure_at;
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum CellKind {
    Flaky,
    Broken,
    Single,
}

/// Score every test in the window.
pub fn score(store: &Store, opts: &ScoreOptions) -> Result<Scored> {
    let as_of = match opts.as_of {
        Some(t) => t,
        None => store.newest_run_start()?.unwrap_or(0),
    };
    let since = as_of - opts.window_s;
    let runs = store.runs(&RunFilter {
        since: Some(since),
        until: Some(as_of),
        branch: opts.branch.clone(),
        job: opts.job.clone(),
    })?;
    let keys: Vec<i64> = runs.iter().map(|r| r.run_key).collect();
    let key_pos: HashMap<i64, usize> = keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();

    let mut jobs: Vec<&str> = runs.iter().map(|r| r.job.as_str()).collect();
    jobs.sort_unstable();
    jobs.dedup();
    let job_of: Vec<u32> = runs
        .iter()
        .map(|r| jobs.binary_search(&r.job.as_str()).unwrap_or(0) as u32)
        .collect();
    let mut commit_ids: HashMap<&str, u32> = HashMap::new();
    let commit_of: Vec<u32> = runs
        .iter()
        .map(|r| {
            let next = commit_ids.len() as u32;
            *commit_ids.entry(r.commit.as_str()).or_insert(next)
        })
        .collect();

    // Failures are rare: read them first, so the big result scan only has to count.
    let failures = store.failures(&keys)?;
    let mut cells: FastMap<(i64, u32, u32), Cell> = FastMap::default();
    let mut last_failure: FastMap<(i64, u32), i64> = FastMap::default();
    for f in &failures {
        let pos = key_pos[&f.run_key];
        let key = (f.test_id, job_of[pos], commit_of[pos]);
        cells
            .entry(key)
            .or_default()
            .fingerprints
            .push(f.fingerprint);
        let t = last_failure
            .entry((f.test_id, job_of[pos]))
            .or_insert(i64::MIN);
        *t = (*t).max(runs[pos].started_at);
    }

    // The big scan, split over two connections: results dominate the cost.
    let cell_keys: Vec<(i64, u32, u32)> = cells.keys().copied().collect();
    let scan_part = |store: &Store, lo: usize, hi: usize| -> Result<Partial> {
        let mut part = Partial {
            accs: FastMap::default(),
            cells: cell_keys.iter().map(|k| (*k, Cell::default())).collect(),
            failed_tests: vec![Vec::new(); hi - lo],
        };
        for (&(test, job), &lf) in &last_failure {
            part.accs.entry((test, job)).or_default().last_failure_at = Some(lf);
        }
        store.for_each_result(&keys[lo..hi], |i, r| {
            let pos = lo + i;
            let job = job_of[pos];
            let started = runs[pos].started_at;
            let acc = part.accs.entry((r.test_id, job)).or_default();
            if r.attempts == 0 {
                return; // skipped
            }
            acc.runs += 1;
            acc.attempts += r.attempts;
            acc.failures += r.failures;
            acc.duration_ms += r.duration_ms;
            acc.in_run_reruns += r.attempts - 1;
            if r.outcome == 2 {
                acc.failed_runs += 1;
                part.failed_tests[i].push(r.test_id);
            }
            // Only tests that failed somewhere in the window need more than counts.
            if let Some(lf) = acc.last_failure_at {
                if acc.latest.is_none_or(|(t, p, _)| (started, pos) > (t, p)) {
                    acc.latest = Some((started, pos, r.outcome));
                }
                if started > lf {
                    acc.attempts_after_last_failure += r.attempts;
                }
                if let Some(cell) = part.cells.get_mut(&(r.test_id, job, commit_of[pos])) {
                    cell.runs += 1;
                    cell.attempts += r.attempts;
                    cell.failures += r.failures;
                    if cell.first_run.is_none_or(|p| runs[p].started_at > started) {
                        cell.first_run = Some(pos);
                    }
                    if r.failures > 0 {
                        cell.failed_runs.push(pos);
                    }
                }
            }
        })?;
        Ok(part)
    };
    let parallel = keys.len() >= 64 && store.path() != std::path::Path::new(":memory:");
    let parts: Vec<Partial> = if parallel {
        let mid = keys.len() / 2;
        let path = store.path().to_path_buf();
        let (a, b) = std::thread::scope(|scope| {
            let b = scope.spawn(|| {
                let other = Store::open_read_only(&path)?;
                scan_part(&other, mid, keys.len())
            });
            let a = scan_part(store, 0, mid);
            (a, b.join().expect("scan thread panicked"))
        });
        vec![a?, b?]
    } else {
        vec![scan_part(store, 0, keys.len())?]
    };
    let mut accs: FastMap<(i64, u32), Acc> = FastMap::default();
    let mut failed_tests: Vec<Vec<i64>> = Vec::with_capacity(runs.len());
    for part in parts {
        failed_tests.extend(part.failed_tests);
        for (key, a) in part.accs {
            accs.entry(key).or_default().merge(a);
        }
        for (key, c) in part.cells {
            let cell = cells.get_mut(&key).expect("same keys");
            cell.runs += c.runs;
            cell.attempts += c.attempts;
            cell.failures += c.failures;
            cell.failed_runs.extend(c.failed_runs);
            if let Some(p) = c.first_run {
                if cell
                    .first_run
                    .is_none_or(|q| runs[q].started_at > runs[p].started_at)
                {
                    cell.first_run = Some(p);
                }
            }
        }
    }
    for cell in cells.values_mut() {
        cell.failed_runs.sort_unstable();
    }

    // Runs of each (job, branch) in time order, to find a failure's neighbours.
    let mut lanes: HashMap<(u32, &str), Vec<usize>> = HashMap::new();
    for (pos, r) in runs.iter().enumerate() {
        lanes
            .entry((job_of[pos], r.branch.as_str()))
            .or_default()
            .push(pos);
    }

    // Group cells by (test, job).
    let mut by_test: FastMap<(i64, u32), Vec<(u32, Cell)>> = FastMap::default();
    for ((test, job, commit), cell) in cells {
        by_test.entry((test, job)).or_default().push((commit, cell));
    }

    let mut flagged: Vec<((i64, u32), TestScore)> = Vec::new();
    let mut fingerprint_ids: HashSet<i64> = HashSet::new();
    let mut stable_tests = 0u32;
    let mut keys_sorted: Vec<&(i64, u32)> = accs.keys().collect();
    keys_sorted.sort_unstable();
    for key in keys_sorted {
        let acc = &accs[key];
        let Some(test_cells) = by_test.get(key) else {
            stable_tests += 1;
            continue;
        };
        let (test_id, job) = *key;
        let mut kinds: Vec<(CellKind, &Cell)> = Vec::new();
        for (_, cell) in test_cells {
            if cell.runs == 0 {
                continue;
            }
            let passes = cell.attempts - cell.failures;
            let kind = if passes > 0 && cell.failures > 0 {
                CellKind::Flaky
            } else if cell.attempts >= 2 {
                CellKind::Broken
            } else {
                CellKind::Single
            };
            kinds.push((kind, cell));
        }
        let flaky_fps: HashSet<i64> = kinds
            .iter()
            .filter(|(k, _)| *k == CellKind::Flaky)
            .flat_map(|(_, c)| c.fingerprints.iter().copied())
            .collect();

        // Ambiguous single failures: known flaky fingerprint, isolated, or in a streak.
        let mut matched_singles = 0u32;
        let mut isolated: HashMap<i64, u32> = HashMap::new();
        let mut streak_cells: HashSet<usize> = HashSet::new();
        for (i, (kind, cell)) in kinds.iter().enumerate() {
            if *kind != CellKind::Single {
                continue;
            }
            if cell.fingerprints.iter().any(|f| flaky_fps.contains(f)) {
                matched_singles += 1;
                continue;
            }
            let pos = cell.failed_runs[0];
            let lane = &lanes[&(job, runs[pos].branch.as_str())];
            let at = lane.binary_search(&pos).unwrap_or(0);
            let before = neighbour_outcome(store, &runs, lane, at, test_id, -1)?;
            let after = neighbour_outcome(store, &runs, lane, at, test_id, 1)?;
            match (before, after) {
                (Some(true), Some(true)) => {
                    for f in &cell.fingerprints {
                        *isolated.entry(*f).or_default() += 1;
                    }
                }
                (Some(false), _) | (_, Some(false)) => {
                    streak_cells.insert(i);
                }
                _ => {}
            }
        }
        let isolated_total: u32 = kinds
            .iter()
            .enumerate()
            .filter(|(i, (k, c))| {
                *k == CellKind::Single
                    && !streak_cells.contains(i)
                    && !c.fingerprints.iter().any(|f| flaky_fps.contains(f))
            })
            .count() as u32;
        let statistically_flaky = isolated.values().any(|&n| n >= opts.min_isolated_failures);

        let flaky_commits = kinds.iter().filter(|(k, _)| *k == CellKind::Flaky).count() as u32;
        let broken_commits = kinds.iter().filter(|(k, _)| *k == CellKind::Broken).count() as u32;
        let single_failures = kinds.iter().filter(|(k, _)| *k == CellKind::Single).count() as u32;

        // Flake rate: everything but the commits where the test was really broken.
        let mut excluded_attempts = 0u32;
        let mut excluded_failures = 0u32;
        let mut excluded_runs = 0u32;
        let mut excluded_failed_runs = 0u32;
        for (i, (kind, cell)) in kinds.iter().enumerate() {
            if *kind == CellKind::Broken || streak_cells.contains(&i) {
                excluded_attempts += cell.attempts;
                excluded_failures += cell.failures;
                excluded_runs += cell.runs;
                excluded_failed_runs += cell.failed_runs.len() as u32;
            }
        }
        let n = acc.attempts.saturating_sub(excluded_attempts);
        let f = acc.failures.saturating_sub(excluded_failures);
        let (rate, low, high) = beta_interval(f, n);
        let run_n = acc.runs.saturating_sub(excluded_runs);
        let run_f = acc
            .failed_runs
            .saturating_sub(excluded_failed_runs.min(acc.failed_runs));
        let (run_rate, run_low, run_high) = beta_interval(run_f.min(run_n), run_n);

        // Flake times and evidence.
        let mut evidence: Vec<(i64, CommitEvidence)> = Vec::new();
        let mut flake_times: Vec<i64> = Vec::new();
        let mut flakes_by_day: BTreeMap<String, u32> = BTreeMap::new();
        let mut fp_counts: HashMap<i64, u32> = HashMap::new();
        for (i, (kind, cell)) in kinds.iter().enumerate() {
            let counts_as_flake = match kind {
                CellKind::Flaky => true,
                CellKind::Single => !streak_cells.contains(&i),
                CellKind::Broken => false,
            };
            if !counts_as_flake {
                continue;
            }
            for f in &cell.fingerprints {
                *fp_counts.entry(*f).or_default() += 1;
            }
            for &p in &cell.failed_runs {
                flake_times.push(runs[p].started_at);
                *flakes_by_day.entry(day(runs[p].started_at)).or_default() += 1;
            }
            if *kind == CellKind::Flaky {
                let first = cell.first_run.unwrap_or(cell.failed_runs[0]);
                evidence.push((
                    runs[first].started_at,
                    CommitEvidence {
                        commit: runs[first].commit.clone(),
                        branch: runs[first].branch.clone(),
                        runs: cell.runs,
                        passes: cell.attempts - cell.failures,
                        failures: cell.failures,
                        at: rfc3339(runs[first].started_at),
                    },
                ));
            }
        }
        evidence.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.commit.cmp(&b.1.commit)));
        flake_times.sort_unstable();

        let is_flaky_evidence = flaky_commits >= opts.min_flaky_commits || statistically_flaky;
        let latest_broken = acc.latest.is_some_and(|(_, pos, outcome)| {
            outcome == 2
                && kinds
                    .iter()
                    .any(|(k, c)| *k == CellKind::Broken && c.failed_runs.contains(&pos))
        });
        let (status, reason) = if latest_broken {
            (
                Status::Broken,
                format!(
                    "failed every attempt on its latest commit ({} broken commit(s) in the window)",
                    broken_commits
                ),
            )
        } else if is_flaky_evidence {
            // Judge a fix by the rate while it was flaky (up to its last failure), not a
            // rate diluted by the clean streak being judged.
            let clean = acc.attempts_after_last_failure;
            let before = n.saturating_sub(clean).max(f);
            // The interval's low end: a fix is claimed only if even a milder flake would
            // almost surely have shown up by now.
            let (_, rate_while_flaky, _) = beta_interval(f, before);
            let p_clean = (1.0 - rate_while_flaky).powi(clean as i32);
            let why = if flaky_commits > 0 {
                format!(
                    "passed and failed on {flaky_commits} commit(s){}",
                    if matched_singles > 0 {
                        format!(", plus {matched_singles} lone failure(s) with a known flaky fingerprint")
                    } else {
                        String::new()
                    }
                )
            } else {
                let n = isolated.values().max().copied().unwrap_or(0);
                format!(
                    "the same failure on {n} unrelated commits, with passes before and after each"
                )
            };
            if clean > 0 && p_clean < opts.fixed_alpha {
                (
                    Status::Fixed,
                    format!(
                        "{why}; since the last flake {clean} clean attempts (P = {p_clean:.3} if still flaky at {:.1}%)",
                        rate_while_flaky * 100.0
                    ),
                )
            } else {
                (Status::Flaky, why)
            }
        } else if isolated_total + matched_singles > 0 {
            (
                Status::Suspect,
                format!(
                    "{isolated_total} lone failure(s) with no retry on their commit and passes around them; not enough to call it flaky"
                ),
            )
        } else {
            // Only breakages (or failures inside a streak of failing commits): not flaky.
            stable_tests += 1;
            if broken_commits == 0 && streak_cells.is_empty() {
                continue;
            }
            (
                Status::Stable,
                format!("{broken_commits} broken commit(s), fixed since; no flaky evidence"),
            )
        };
        if status == Status::Stable {
            continue;
        }
        let mut fps: Vec<(i64, u32)> = fp_counts.into_iter().collect();
        fps.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        fps.truncate(5);
        fingerprint_ids.extend(fps.iter().map(|(id, _)| *id));
        let attempts_total = acc.attempts.max(1);
        flagged.push((
            *key,
            TestScore {
                test_id: TestIdentity(test_id).hex(),
                classname: String::new(),
                name: String::new(),
                file: None,
                job: jobs[job as usize].to_string(),
                status,
                reason,
                runs: acc.runs,
                attempts: acc.attempts,
                failures: acc.failures,
                flaky_commits,
                broken_commits,
                single_failures,
                flake_rate: impact::round(rate, 6),
                flake_rate_low: impact::round(low, 6),
                flake_rate_high: impact::round(high, 6),
                run_flake_rate: impact::round(run_rate, 6),
                run_flake_rate_low: impact::round(run_low, 6),
                run_flake_rate_high: impact::round(run_high, 6),
                first_flake_at: flake_times.first().map(|t| rfc3339(*t)),
                last_flake_at: flake_times.last().map(|t| rfc3339(*t)),
                retries_per_day: 0.0,
                ci_minutes_per_day: 0.0,
                in_run_rerun_minutes_per_day: 0.0,
                observed_retries: 0,
                job_failure_rate: 0.0,
                fingerprints: fps
                    .iter()
                    .map(|(id, count)| FingerprintCount {
                        fingerprint: format!("{:016x}", *id as u64),
                        message: String::new(),
                        count: *count,
                    })
                    .collect(),
                evidence: evidence.into_iter().map(|(_, e)| e).collect(),
                flakes_by_day,
                mean_attempt_s: acc.duration_ms as f64 / 1000.0 / f64::from(attempts_total),
                in_run_reruns: acc.in_run_reruns,
                run_failure_share: if run_n > 0 {
                    f64::from(run_f.min(run_n)) / f64::from(run_n)
                } else {
                    0.0
                },
            },
        ));
    }

    // Names and messages for the flagged tests only.
    let ids: Vec<i64> = flagged.iter().map(|(k, _)| k.0).collect();
    let names = store.tests_by_id(&ids)?;
    let fp_ids: Vec<i64> = fingerprint_ids.into_iter().collect();
    let messages = store.fingerprints(&fp_ids)?;
    let mut tests: Vec<TestScore> = flagged
        .into_iter()
        .map(|((id, _), mut t)| {
            if let Some(n) = names.get(&id) {
                t.classname = n.classname.clone();
                t.name = n.name.clone();
                t.file = n.file.clone();
            }
            for fp in &mut t.fingerprints {
                let id = u64::from_str_radix(&fp.fingerprint, 16).unwrap_or(0) as i64;
                if let Some(m) = messages.get(&id) {
                    fp.message = m.normalized.clone();
                }
            }
            t
        })
        .collect();

    let window_days = impact::window_days(&runs, since, as_of);
    let (pipeline, job_stats) = impact::estimate(
        &mut tests,
        &runs,
        &failed_tests,
        &jobs,
        &job_of,
        window_days,
        opts.slo,
    );
    sort_tests(&mut tests);
    Ok(Scored {
        as_of: rfc3339(as_of),
        since: rfc3339(since),
        window_days,
        tests,
        stable_tests,
        pipeline,
        jobs: job_stats,
        runs,
        failed_tests,
    })
}

/// Flaky first by retries/day saved, then the other statuses; ties by name for stable output.
fn sort_tests(tests: &mut [TestScore]) {
    tests.sort_by(|a, b| {
        a.status
            .cmp(&b.status)
            .then(b.retries_per_day.total_cmp(&a.retries_per_day))
            .then(b.ci_minutes_per_day.total_cmp(&a.ci_minutes_per_day))
            .then(b.flake_rate.total_cmp(&a.flake_rate))
            .then_with(|| a.classname.cmp(&b.classname))
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.job.cmp(&b.job))
    });
}

/// Did the test pass in the nearest run before (dir = -1) or after (+1) on the same
/// job and branch, on another commit? `None` when there is no such run.
fn neighbour_outcome(
    store: &Store,
    runs: &[RunRow],
    lane: &[usize],
    at: usize,
    test_id: i64,
    dir: isize,
) -> Result<Option<bool>> {
    let commit = &runs[lane[at]].commit;
    let mut i = at as isize;
    for _ in 0..8 {
        i += dir;
        if i < 0 || i as usize >= lane.len() {
            return Ok(None);
        }
        let run = &runs[lane[i as usize]];
        if &run.commit == commit {
            continue;
        }
        if let Some(r) = store.result(run.run_key, test_id)? {
            if r.attempts > 0 {
                return Ok(Some(r.outcome != 2));
            }
        }
    }
    Ok(None)
}
