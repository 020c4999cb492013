//! History → per test and job: flaky, suspect, broken, fixed or stable, with a flake rate.
//!
//! The definitive evidence is a **commit on which the test both passed and failed in the
//! same job** (across runs, or across attempts within one run). A commit on which it failed
//! every attempt (at least two) is a real breakage and is excluded from the flake rate. A
//! lone failure with no retry is ambiguous; it moves a test to flaky only when its failure
//! fingerprint matches the test's known flaky failures, or when the same failure hits
//! several unrelated commits with passes before and after, and to suspect otherwise.

mod changepoint;
mod gather;
mod impact;
mod lone;
mod stats;

pub(crate) use gather::FastHasher;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::Result;
use crate::model::TestIdentity;
use crate::store::{RunRow, Store};

use changepoint::Obs;
pub(crate) use gather::for_each_result_of;
use gather::{Acc, Cell, FastMap};

pub use impact::{is_go_subtest_of, JobImpact, PipelineImpact};
pub use stats::beta_interval;

/// The Go parent tests (`TestX`) among `tests` that have a subtest (`TestX/case`) of the
/// same job and package among them, as (job, classname, name). A parent fails whenever its
/// subtest does, so it scores as flaky with the same failures: one thing to fix, and to
/// quarantine, not two.
pub fn go_parents<'a>(tests: &[&'a TestScore]) -> HashSet<(&'a str, &'a str, &'a str)> {
    let mut parents = HashSet::new();
    for t in tests {
        for (cut, _) in t.name.match_indices('/') {
            if is_go_subtest_of(&t.name, &t.name[..cut]) {
                parents.insert((t.job.as_str(), t.classname.as_str(), &t.name[..cut]));
            }
        }
    }
    parents
}

/// `tests` without their [`go_parents`].
pub fn without_go_parents(tests: Vec<&TestScore>) -> Vec<&TestScore> {
    let parents = go_parents(&tests);
    tests
        .into_iter()
        .filter(|t| !parents.contains(&(t.job.as_str(), t.classname.as_str(), t.name.as_str())))
        .collect()
}

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
    /// The false-fixed rate allowed across all tests judged at once: tests are called
    /// `fixed`, most certain first, while the mean posterior probability that they are
    /// still flaky (the change-point model) stays within this.
    pub fixed_alpha: f64,
    /// The job-failure SLO: share of job attempts allowed to fail only because of flaky tests.
    pub slo: f64,
    /// Count every result of the window instead of reading closed days from the daily
    /// aggregate: the oracle the aggregate is tested against (default: set when the
    /// environment has `FLAKEHOUND_RAW_SCAN`). Scores are the same either way.
    pub raw_scan: bool,
    /// Posterior probability, from the history's own confirmed flakes and breakages, that
    /// a test with only lone failures (no retry on their commits) must reach to be called
    /// flaky on its own.
    pub lone_posterior: f64,
    /// The share of tests called flaky on lone failures alone that may not be flaky,
    /// expected across all tests judged at once (a Bayesian false discovery rate).
    pub lone_alpha: f64,
    /// Runs (run keys) left out of the history wherever they fall in the window: the gate
    /// scores the history before the run it judges, and that run may be stored already (a
    /// second call for the same run must not count its own failures as evidence).
    pub exclude_runs: Vec<i64>,
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
            raw_scan: std::env::var_os("FLAKEHOUND_RAW_SCAN").is_some(),
            lone_posterior: 0.8,
            lone_alpha: 0.05,
            exclude_runs: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Flaky,
    /// Quarantined by flakehound and silent since: no evidence either way.
    Quarantined,
    Suspect,
    Broken,
    Fixed,
    Stable,
}

impl Status {
    /// Flaky at some point of the window: flaky now, quarantined for it and silent since, or
    /// fixed part-way. Its failures in the window were flaky failures whatever it is today.
    pub fn flaked_in_window(self) -> bool {
        matches!(self, Status::Flaky | Status::Quarantined | Status::Fixed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Flaky => "flaky",
            Status::Quarantined => "quarantined",
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
    /// Posterior probability that the test was fixed (the change-point model), for tests
    /// with flaky evidence and at least one run after their last flake.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix_posterior: Option<f64>,
    /// For a fixed test: the commit of the first clean run after its last flake.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_since_commit: Option<String>,
    /// For a fixed test: when that run started (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_since: Option<String>,
    /// When flakehound quarantined the test (RFC 3339), while it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantined_since: Option<String>,
    /// Share of the job's attempts that failed for other reasons too (broken tests, other
    /// failures): retries this test would cause there are masked.
    pub masked_share: f64,
    /// For a flaky or fixed test, what the verdict rests on: `same-sha` (passed and failed
    /// on one commit in this job) or `statistical` (lone failures only, judged against this
    /// history's confirmed flakes and breakages; see `flaky_posterior`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flaky_evidence: Option<&'static str>,
    /// For a `statistical` verdict or a suspect: the posterior probability that the test
    /// is flaky.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flaky_posterior: Option<f64>,
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum CellKind {
    Flaky,
    Broken,
    Single,
}

/// Score every test in the window, in stages: the scan ([`gather`]) → evidence per commit
/// ([`commit_evidence`]) → classification of lone failures ([`classify`]) → rates
/// ([`rates`]) → lifecycle status ([`lifecycle`], fixes judged across all tests at once)
/// → impact ([`impact::estimate`]).
pub fn score(store: &Store, opts: &ScoreOptions) -> Result<Scored> {
    // Every stage reads one committed state, whatever is written meanwhile.
    store.read_snapshot(|| score_in(store, opts))
}

fn score_in(store: &Store, opts: &ScoreOptions) -> Result<Scored> {
    let h = gather::gather(store, opts)?;
    let runs = &h.runs;

    // Runs of each (job, branch) in time order, to find a failure's neighbours.
    let mut lanes: HashMap<(u32, &str), Vec<usize>> = HashMap::new();
    for (pos, r) in runs.iter().enumerate() {
        lanes
            .entry((h.job_of[pos], r.branch.as_str()))
            .or_default()
            .push(pos);
    }
    let mut by_test: FastMap<(i64, u32), Vec<(u32, &Cell)>> = FastMap::default();
    for ((test, job, commit), cell) in &h.cells {
        by_test
            .entry((*test, *job))
            .or_default()
            .push((*commit, cell));
    }
    for cells in by_test.values_mut() {
        cells.sort_unstable_by_key(|(c, _)| *c);
    }
    let quarantined = quarantined_since(store, &h)?;
    // Runs of each job in time order (every branch), and of each commit.
    let mut job_lanes: HashMap<u32, Vec<usize>> = HashMap::new();
    let mut commit_runs: HashMap<u32, Vec<usize>> = HashMap::new();
    let mut branch_runs: HashMap<&str, u32> = HashMap::new();
    for (pos, r) in runs.iter().enumerate() {
        job_lanes.entry(h.job_of[pos]).or_default().push(pos);
        commit_runs.entry(h.commit_of[pos]).or_default().push(pos);
        *branch_runs.entry(r.branch.as_str()).or_default() += 1;
    }
    let trunk = branch_runs
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(b, _)| *b)
        .unwrap_or("");
    let mut fp_ids: Vec<i64> = h
        .cells
        .values()
        .flat_map(|c| c.fingerprints.iter().copied())
        .collect();
    fp_ids.sort_unstable();
    fp_ids.dedup();
    let fp_rows = store.fingerprints(&fp_ids)?;
    // Failure texts that cannot tell causes apart (ctest's `Failed`): sharing one is no
    // sign of a shared cause.
    let says_nothing: HashSet<i64> = fp_rows
        .iter()
        .filter(|(_, row)| crate::fingerprint::says_nothing(&row.normalized))
        .map(|(id, _)| *id)
        .collect();
    let fp_words: HashMap<i64, HashSet<String>> = fp_rows
        .into_iter()
        .map(|(id, row)| (id, lone::words(&row.normalized)))
        .collect();
    let generic = lone::generic_fingerprints(
        h.cells
            .iter()
            .flat_map(|((test, job, _), c)| c.fingerprints.iter().map(|f| (*job, *test, *f))),
    );

    let mut judged: Vec<Judged> = Vec::new();
    let mut stable_tests = 0u32;
    let mut keys_sorted: Vec<(i64, u32)> = h.accs.keys().copied().collect();
    // A quarantined test that produced no result at all in the window is still judged.
    for key in quarantined.keys() {
        if !h.accs.contains_key(key) {
            keys_sorted.push(*key);
        }
    }
    keys_sorted.sort_unstable();
    let no_acc = Acc::default();

    // Evidence per commit and classification, then what the confirmed cases teach about
    // lone failures (see [`lone`]).
    let mut learned = lone::Learned::default();
    let (mut breakages, mut test_runs) = (0u32, 0u64);
    // (test, job), its classification, and its lone failures to weigh.
    let mut classes: Vec<((i64, u32), Classified, Vec<LoneCell>)> = Vec::new();
    // Each run's failures outside breakage streaks: what recurring companions are found in.
    let mut episode_failures: Vec<Vec<i64>> = vec![Vec::new(); runs.len()];
    // Tests seen flaking on one commit somewhere: their failures do not crowd a run.
    let mut known_flaky: HashSet<i64> = HashSet::new();
    let mut flaky_keys: Vec<(i64, u32)> = Vec::new();
    for key in keys_sorted {
        let (test_id, job) = key;
        let q_since = quarantined.get(&key).copied();
        test_runs += u64::from(h.accs.get(&key).map_or(0, |a| a.runs));
        let test_cells = by_test.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        if test_cells.is_empty() && q_since.is_none() {
            stable_tests += 1;
            continue;
        }
        let kinds = commit_evidence(test_cells);
        let class = classify(kinds, opts, &says_nothing, |cell| {
            let pos = cell.failed_runs[0];
            let lane = &lanes[&(job, runs[pos].branch.as_str())];
            let at = lane.binary_search(&pos).unwrap_or(0);
            Ok((
                neighbour_outcome(&h, lane, at, test_id, job, -1),
                neighbour_outcome(&h, lane, at, test_id, job, 1),
            ))
        })?;
        for (i, (_, cell)) in class.kinds.iter().enumerate() {
            if !class.streak_cells.contains(&i) {
                for &pos in &cell.failed_runs {
                    episode_failures[pos].push(test_id);
                }
            }
        }
        if class.flaky_commits > 0 {
            known_flaky.insert(test_id);
            flaky_keys.push(key);
        }
        breakages += class.isolated_broken;
        // Lone failures next to another failure of the test in this job (any branch) belong
        // to a breakage episode, not to the statistics.
        let mut lone = Vec::new();
        if class.flaky_commits < opts.min_flaky_commits && !class.statistically_flaky {
            let lane = &job_lanes[&job];
            for &(i, next) in &class.lone {
                let pos = class.kinds[i].1.failed_runs[0];
                let at = lane.binary_search(&pos).unwrap_or(0);
                if neighbour_outcome(&h, lane, at, test_id, job, -1) == Some(false)
                    || neighbour_outcome(&h, lane, at, test_id, job, 1) == Some(false)
                {
                    continue;
                }
                lone.push((i, next));
            }
        }
        classes.push((key, class, lone));
    }
    for tests in &mut episode_failures {
        tests.sort_unstable();
    }
    let mut companions = lone::recurring_companions(&episode_failures, &h.commit_of);
    // A Go parent test fails whenever its subtest does: the two failing together is one
    // failure, no sign of a breaking change.
    let mut failing: Vec<i64> = episode_failures.iter().flatten().copied().collect();
    failing.sort_unstable();
    failing.dedup();
    let failing_names = store.tests_by_id(&failing)?;
    companions.extend(lone::nested_companions(
        failing_names
            .iter()
            .map(|(&id, t)| (id, t.classname.as_str(), t.name.as_str())),
    ));
    // Whether another test failed run `pos` with `test_id`: one not known to flake (on one
    // commit anywhere, or on lone failures in this run's job: `found_flaky`, as it may be
    // broken on another platform), and not a recurring companion of it.
    let crowded_at = |found_flaky: &HashSet<(i64, u32)>, pos: usize, test_id: i64| {
        h.failed_tests[pos].iter().any(|&t| {
            t != test_id
                && !known_flaky.contains(&t)
                && !found_flaky.contains(&(t, h.job_of[pos]))
                && !companions.contains(&(t.min(test_id), t.max(test_id)))
        })
    };
    let mut found_flaky: HashSet<(i64, u32)> = HashSet::new();
    let features =
        |test_id: i64, job: u32, cell: &Cell, next: Option<Option<bool>>| -> lone::Features {
            let pos = cell.failed_runs[0];
            let vanished = match next {
                Some(n) => n,
                None => {
                    let lane = &lanes[&(job, runs[pos].branch.as_str())];
                    let at = lane.binary_search(&pos).unwrap_or(0);
                    neighbour_outcome(&h, lane, at, test_id, job, 1)
                }
            };
            let mut twin_passed = None;
            for &p in &commit_runs[&h.commit_of[pos]] {
                if h.job_of[p] == job {
                    continue;
                }
                // The test failed here, so the scan kept its every run in every job.
                let series = h
                    .series
                    .get(&(test_id, h.job_of[p]))
                    .map_or(&[][..], Vec::as_slice);
                if let Ok(k) = series.binary_search_by_key(&p, |(pos, _)| *pos) {
                    let obs = &series[k].1;
                    if obs.attempts > 0 {
                        let passed = obs.failures == 0;
                        twin_passed = Some(twin_passed.unwrap_or(false) || passed);
                    }
                }
            }
            lone::Features {
                crowded: crowded_at(&found_flaky, pos, test_id),
                trunk: runs[pos].branch == trunk,
                vanished,
                twin_passed,
                words: cell
                    .fingerprints
                    .iter()
                    .filter(|f| !generic.contains(&(job, **f)))
                    .filter_map(|f| fp_words.get(f))
                    .flatten()
                    .cloned()
                    .collect(),
            }
        };
    let mut classes_with_features = Vec::with_capacity(classes.len());
    // The run of each lone failure of each class, for crowding weighed again.
    let mut lone_runs: Vec<Vec<usize>> = Vec::with_capacity(classes.len());
    // A test's failing commits that failed once, with passes around them (no streak).
    fn isolated_singles<'a>(class: &Classified<'a>) -> Vec<&'a Cell> {
        class
            .kinds
            .iter()
            .enumerate()
            .filter(|(i, (kind, _))| *kind == CellKind::Single && !class.streak_cells.contains(i))
            .map(|(_, (_, cell))| *cell)
            .collect()
    }
    // Breakages per test run, counting every such failure as one: an upper bound, so a
    // breakage is taken for a flake that struck every attempt only when that is clearly
    // the likelier of the two.
    let singles_by_class: Vec<Vec<&Cell>> = classes
        .iter()
        .map(|(_, c, _)| isolated_singles(c))
        .collect();
    let singles_total: usize = singles_by_class.iter().map(Vec::len).sum();
    let breakage_rate_high =
        (f64::from(breakages) + singles_total as f64 + 1.0) / (test_runs as f64 + 1.0);
    for ((key, class, lone), singles) in classes.into_iter().zip(singles_by_class) {
        let (test_id, job) = key;
        let runs = h.accs.get(&key).map_or(0, |a| a.runs);
        let single_rate = singles.len() as f64 / f64::from(runs.max(1));
        let single_fps: HashSet<i64> = singles
            .iter()
            .flat_map(|c| c.fingerprints.iter().copied())
            .collect();
        for (i, (kind, cell)) in class.kinds.iter().enumerate() {
            // A flaky test failing every attempt of a commit may be a flake that struck
            // each retry: no clean example of a breakage. So may a commit of a test that
            // often fails alone, failing as it does alone, when that chance of every attempt
            // failing beats a breakage's. A streak is a breakage whatever the test's rate.
            let double_flake = *kind == CellKind::Broken
                && !class.streak_cells.contains(&i)
                && cell.fingerprints.iter().any(|f| single_fps.contains(f))
                && lone::likely_flake_every_attempt(single_rate, cell.failures, breakage_rate_high);
            let ambiguous = *kind != CellKind::Flaky && (class.flaky_commits > 0 || double_flake);
            if *kind != CellKind::Single && !ambiguous {
                learned.add(
                    key,
                    *kind == CellKind::Flaky,
                    &features(test_id, job, cell, None),
                );
            }
        }
        let mut lone_features = Vec::with_capacity(lone.len());
        let mut failed_at = Vec::with_capacity(lone.len());
        for (i, next) in lone {
            lone_features.push(features(test_id, job, class.kinds[i].1, Some(next)));
            failed_at.push(class.kinds[i].1.failed_runs[0]);
        }
        lone_runs.push(failed_at);
        classes_with_features.push((key, class, lone_features));
    }
    let mut classes = classes_with_features;
    let undecided: Vec<((i64, u32), u32, &[lone::Features])> = classes
        .iter()
        .filter(|(_, _, f)| !f.is_empty())
        .map(|(key, _, f)| (*key, h.accs.get(key).map_or(0, |a| a.runs), f.as_slice()))
        .collect();
    let mut by_job: HashMap<u32, (u32, u32)> = HashMap::new();
    for (_, job) in h.accs.keys() {
        by_job.entry(*job).or_default().1 += 1;
    }
    for (test, job) in &flaky_keys {
        if h.accs.contains_key(&(*test, *job)) {
            by_job.entry(*job).or_default().0 += 1;
        }
    }
    learned.finish(breakages, test_runs, &by_job, &undecided);

    // Statistical flakes, judged across all tests at once: the largest set, most certain
    // first, whose expected share of tests that are not flaky stays within `lone_alpha`,
    // each test at least `lone_posterior` likely flaky itself.
    // A test found flaky this way no longer crowds the runs it failed in (two flaky tests
    // failing one run together are no breaking change): the others are weighed again, until
    // no test is added (a few rounds at most).
    let posteriors = |classes: &[((i64, u32), Classified, Vec<lone::Features>)]| {
        classes
            .iter()
            .map(|(key, _, lone)| {
                let runs = h.accs.get(key).map_or(0, |a| a.runs);
                (!lone.is_empty()).then(|| learned.posterior(*key, runs, lone))
            })
            .collect::<Vec<Option<f64>>>()
    };
    // Candidates reach `lone_posterior` themselves; the set is chosen (or, in later rounds,
    // extended) by [`stats::bayes_fdr_extend`] over them.
    let select = |lone_posteriors: &[Option<f64>], before: &[bool]| {
        let candidates: Vec<usize> = (0..lone_posteriors.len())
            .filter(|&i| before[i] || lone_posteriors[i].is_some_and(|p| p >= opts.lone_posterior))
            .collect();
        let p: Vec<f64> = candidates
            .iter()
            .map(|&i| lone_posteriors[i].unwrap_or(0.0))
            .collect();
        let held: Vec<bool> = candidates.iter().map(|&i| before[i]).collect();
        let mut lone_flaky = vec![false; lone_posteriors.len()];
        for (k, chosen) in stats::bayes_fdr_extend(&p, &held, opts.lone_alpha)
            .into_iter()
            .enumerate()
        {
            lone_flaky[candidates[k]] = chosen;
        }
        lone_flaky
    };
    let mut lone_posteriors = posteriors(&classes);
    let mut lone_flaky = select(&lone_posteriors, &vec![false; classes.len()]);
    // A test found flaky this way no longer crowds the runs of its job it failed in (two
    // flaky tests failing one run together are no breaking change): the others are weighed
    // again and may be added, never taken back (a few rounds at most).
    for _ in 0..3 {
        let found: Vec<(i64, u32)> = (0..classes.len())
            .filter(|&c| lone_flaky[c] && !found_flaky.contains(&classes[c].0))
            .map(|c| classes[c].0)
            .collect();
        if found.is_empty() {
            break;
        }
        found_flaky.extend(found);
        for (c, (key, _, lone)) in classes.iter_mut().enumerate() {
            if !lone_flaky[c] {
                for (f, &pos) in lone.iter_mut().zip(&lone_runs[c]) {
                    f.crowded = crowded_at(&found_flaky, pos, key.0);
                }
            }
        }
        lone_posteriors = posteriors(&classes);
        lone_flaky = select(&lone_posteriors, &lone_flaky);
    }

    for (((key, class, lone_features), lone_posterior), lone_flaky) in
        classes.into_iter().zip(lone_posteriors).zip(lone_flaky)
    {
        let acc = h.accs.get(&key).unwrap_or(&no_acc);
        let q_since = quarantined.get(&key).copied();
        if let Some(p) = lone_posterior {
            tracing::debug!(test = %TestIdentity(key.0).hex(), job = %h.jobs[key.1 as usize], p, runs = acc.runs, prior_and_count = ?learned.log_odds_before_features(key.1, acc.runs, lone_features.len() as u32), lone = ?lone_features.iter().map(|f| (f.trunk, f.vanished, f.twin_passed, f.crowded, learned.explain(key, f).map(|x| (x * 100.0).round() / 100.0))).collect::<Vec<_>>(), "lone failures judged");
        }
        let rates = rates(acc, &class);
        let same_sha = class.flaky_commits >= opts.min_flaky_commits;
        // The test's runs with its breakages left out, for the change-point model.
        let excluded: HashSet<usize> = class
            .kinds
            .iter()
            .enumerate()
            .filter(|(i, (k, _))| *k == CellKind::Broken || class.streak_cells.contains(i))
            .flat_map(|(_, (_, c))| c.failed_runs.iter().copied())
            .collect();
        let excluded_commits: HashSet<u32> = excluded.iter().map(|&p| h.commit_of[p]).collect();
        let series: Vec<(usize, Obs)> = h
            .series
            .get(&key)
            .map(|s| {
                s.iter()
                    .filter(|(p, _)| !excluded_commits.contains(&h.commit_of[*p]))
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        let flaky_evidence = class.flaky_commits >= opts.min_flaky_commits
            || class.statistically_flaky
            || lone_flaky;
        let obs: Vec<Obs> = series.iter().map(|(_, o)| *o).collect();
        let fix = if flaky_evidence {
            changepoint::fix_evidence(&obs)
        } else {
            None
        };
        let latest_broken = acc.latest.is_some_and(|(_, pos, outcome)| {
            outcome == 2
                && class
                    .kinds
                    .iter()
                    .any(|(k, c)| *k == CellKind::Broken && c.failed_runs.contains(&pos))
        });
        let silent_since = q_since.filter(|&s| acc.last_seen.is_none_or(|t| t <= s));
        judged.push(Judged {
            key,
            class,
            rates,
            fix,
            // The fix is a commit: the first run after the last flake on another commit.
            clean_since: fix.and_then(|f| {
                let flaked_on = h.commit_of[series[f.clean_from - 1].0];
                series[f.clean_from..]
                    .iter()
                    .find(|(p, _)| h.commit_of[*p] != flaked_on)
                    .map(|(p, _)| *p)
            }),
            span: series
                .first()
                .zip(series.last())
                .map(|(a, b)| (runs[a.0].started_at, runs[b.0].started_at)),
            flaky_evidence,
            latest_broken,
            quarantined_since: q_since,
            silent_since,
            p_fixed: None,
            fixed: false,
            same_sha,
            lone_posterior,
            lone_count: lone_features.len() as u32,
        });
    }

    // Fixes, judged across all tests at once.
    let under_judgement =
        |j: &Judged| -> f64 { j.span.map_or(0.0, |(a, b)| (b - a) as f64 / 86_400.0) };
    let bfs: Vec<(f64, f64)> = judged
        .iter()
        .filter_map(|j| j.fix.map(|f| (f.bayes_factor, under_judgement(j))))
        .collect();
    let fix_rate = changepoint::learn_fix_rate(&bfs);
    for j in &mut judged {
        let prior = changepoint::prior_within(fix_rate, under_judgement(j));
        j.p_fixed = j.fix.map(|f| changepoint::posterior(f.bayes_factor, prior));
    }
    let candidates: Vec<usize> = (0..judged.len())
        .filter(|&i| judged[i].p_fixed.is_some() && !judged[i].latest_broken)
        .collect();
    let p: Vec<f64> = candidates
        .iter()
        .map(|&i| judged[i].p_fixed.unwrap_or(0.0))
        .collect();
    for (k, chosen) in stats::bayes_fdr_select(&p, opts.fixed_alpha)
        .into_iter()
        .enumerate()
    {
        judged[candidates[k]].fixed = chosen;
    }

    let mut flagged: Vec<((i64, u32), TestScore)> = Vec::new();
    let mut fingerprint_ids: HashSet<i64> = HashSet::new();
    for j in judged {
        let Some((status, reason)) = lifecycle(&j, runs) else {
            stable_tests += 1;
            continue;
        };
        let acc = h.accs.get(&j.key).unwrap_or(&no_acc);
        let t = test_score(&j, acc, status, reason, &h, &mut fingerprint_ids);
        flagged.push((j.key, t));
    }

    // Names and messages for the flagged tests only; most failed somewhere, and their
    // names were read above.
    let missing: Vec<i64> = flagged
        .iter()
        .map(|(k, _)| k.0)
        .filter(|id| !failing_names.contains_key(id))
        .collect();
    let mut names = failing_names;
    names.extend(store.tests_by_id(&missing)?);
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

    let jobs: Vec<&str> = h.jobs.iter().map(String::as_str).collect();
    let mut first_run: Vec<Option<i64>> = vec![None; jobs.len()];
    for (r, &j) in runs.iter().zip(&h.job_of) {
        let f = &mut first_run[j as usize];
        *f = Some(f.map_or(r.started_at, |t| t.min(r.started_at)));
    }
    let window_days = impact::window_days(
        first_run.iter().flatten().copied().min(),
        h.since,
        h.as_of,
        h.covers_window,
    );
    let job_days: Vec<f64> = first_run
        .iter()
        .zip(&h.job_covers_window)
        .map(|(&first, &covers)| impact::window_days(first, h.since, h.as_of, covers))
        .collect();
    let (pipeline, job_stats) = impact::estimate(
        &mut tests,
        runs,
        &h.failed_tests,
        &jobs,
        &h.job_of,
        &job_days,
        opts.slo,
    );
    sort_tests(&mut tests);
    Ok(Scored {
        as_of: rfc3339(h.as_of),
        since: rfc3339(h.since),
        window_days,
        tests,
        stable_tests,
        pipeline,
        jobs: job_stats,
        runs: h.runs,
        failed_tests: h.failed_tests,
    })
}

/// Active quarantine periods (by flakehound) of tests in the window's jobs: key → since.
fn quarantined_since(store: &Store, h: &gather::History) -> Result<FastMap<(i64, u32), i64>> {
    let mut out = FastMap::default();
    for row in store.quarantine_rows()? {
        if row.released_at.is_some() {
            continue;
        }
        if let Ok(job) = h.jobs.binary_search(&row.job) {
            let e = out.entry((row.test_id, job as u32)).or_insert(row.since);
            *e = (*e).min(row.since);
        }
    }
    Ok(out)
}

/// Everything the stages found about one test in one job.
struct Judged<'a> {
    key: (i64, u32),
    class: Classified<'a>,
    rates: Rates,
    fix: Option<changepoint::FixEvidence>,
    /// Run position of the first clean run after the last flake.
    clean_since: Option<usize>,
    /// First and last start of its runs (breakages left out): the time a fix had.
    span: Option<(i64, i64)>,
    flaky_evidence: bool,
    latest_broken: bool,
    quarantined_since: Option<i64>,
    /// Quarantined, with no result since it was: the time it was quarantined.
    silent_since: Option<i64>,
    p_fixed: Option<f64>,
    fixed: bool,
    /// Passed and failed on one commit (enough of them).
    same_sha: bool,
    /// Posterior that its lone failures are flakes, when it has any to judge.
    lone_posterior: Option<f64>,
    lone_count: u32,
}

/// Stage 1, evidence per commit: a commit where the test both passed and failed is
/// flaky evidence; one where it failed every attempt (at least two) a breakage; one
/// failure with no retry is a lone failure, for the next stage.
fn commit_evidence<'a>(cells: &[(u32, &'a Cell)]) -> Vec<(CellKind, &'a Cell)> {
    cells
        .iter()
        .filter(|(_, c)| c.runs > 0)
        .map(|(_, cell)| {
            let passes = cell.attempts - cell.failures;
            let kind = if passes > 0 && cell.failures > 0 {
                CellKind::Flaky
            } else if cell.attempts >= 2 {
                CellKind::Broken
            } else {
                CellKind::Single
            };
            (kind, *cell)
        })
        .collect()
}

/// A lone failure to weigh: its cell's index in the test's kinds, and whether the next run
/// on another commit passed.
type LoneCell = (usize, Option<bool>);

/// What the lone failures of a test amount to.
struct Classified<'a> {
    kinds: Vec<(CellKind, &'a Cell)>,
    flaky_commits: u32,
    broken_commits: u32,
    /// Broken commits with no failing commit of the test next to them: one-off breakages,
    /// the kind a lone failure is weighed against (a streak is one episode, not many).
    isolated_broken: u32,
    single_failures: u32,
    /// Lone failures with a fingerprint of the test's known flaky failures.
    matched_singles: u32,
    /// Isolated lone failures (passes before and after) by fingerprint.
    isolated: HashMap<i64, u32>,
    isolated_total: u32,
    /// Failing commits next to another failing commit (lone or broken): a breakage streak.
    streak_cells: HashSet<usize>,
    /// The other lone failures (not matched, not in a streak), with whether the next run
    /// on another commit passed.
    lone: Vec<(usize, Option<bool>)>,
    statistically_flaky: bool,
}

/// Stage 2, classification: a lone failure is flaky evidence when its fingerprint is
/// one of the test's known flaky failures; part of a breakage when a neighbouring run on
/// another commit failed too; isolated when the runs around it passed. `neighbours` gives
/// the outcome (passed?) of the nearest runs before and after a lone failure's.
fn classify<'a>(
    kinds: Vec<(CellKind, &'a Cell)>,
    opts: &ScoreOptions,
    says_nothing: &HashSet<i64>,
    mut neighbours: impl FnMut(&Cell) -> Result<(Option<bool>, Option<bool>)>,
) -> Result<Classified<'a>> {
    let flaky_fps: HashSet<i64> = kinds
        .iter()
        .filter(|(k, _)| *k == CellKind::Flaky)
        .flat_map(|(_, c)| c.fingerprints.iter().copied())
        .filter(|f| !says_nothing.contains(f))
        .collect();
    let mut matched_singles = 0u32;
    let mut isolated: HashMap<i64, u32> = HashMap::new();
    let mut isolated_total = 0u32;
    let mut streak_cells: HashSet<usize> = HashSet::new();
    let mut lone = Vec::new();
    let mut isolated_broken = 0u32;
    for (i, (kind, cell)) in kinds.iter().enumerate() {
        if *kind == CellKind::Broken {
            if matches!(neighbours(cell)?, (Some(false), _) | (_, Some(false))) {
                streak_cells.insert(i);
            } else {
                isolated_broken += 1;
            }
            continue;
        }
        if *kind != CellKind::Single {
            continue;
        }
        if cell.fingerprints.iter().any(|f| flaky_fps.contains(f)) {
            matched_singles += 1;
            continue;
        }
        match neighbours(cell)? {
            (Some(true), Some(true)) => {
                for f in cell
                    .fingerprints
                    .iter()
                    .filter(|f| !says_nothing.contains(f))
                {
                    *isolated.entry(*f).or_default() += 1;
                }
                isolated_total += 1;
                lone.push((i, Some(true)));
            }
            (Some(false), _) | (_, Some(false)) => {
                streak_cells.insert(i);
            }
            (_, next) => {
                isolated_total += 1;
                lone.push((i, next));
            }
        }
    }
    let count = |k: CellKind| kinds.iter().filter(|(c, _)| *c == k).count() as u32;
    Ok(Classified {
        flaky_commits: count(CellKind::Flaky),
        broken_commits: count(CellKind::Broken),
        isolated_broken,
        single_failures: count(CellKind::Single),
        statistically_flaky: isolated.values().any(|&n| n >= opts.min_isolated_failures),
        kinds,
        matched_singles,
        isolated,
        isolated_total,
        streak_cells,
        lone,
    })
}

/// Stage 3: the flake rate per attempt and per run, breakages left out.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rates {
    attempts: u32,
    failures: u32,
    rate: (f64, f64, f64),
    run_rate: (f64, f64, f64),
    /// Failed runs / runs, breakages left out (the impact model's input).
    run_share: f64,
}

fn rates(acc: &Acc, c: &Classified) -> Rates {
    let mut excluded = (0u32, 0u32, 0u32, 0u32);
    for (i, (kind, cell)) in c.kinds.iter().enumerate() {
        if *kind == CellKind::Broken || c.streak_cells.contains(&i) {
            excluded.0 += cell.attempts;
            excluded.1 += cell.failures;
            excluded.2 += cell.runs;
            excluded.3 += cell.failed_runs.len() as u32;
        }
    }
    let n = acc.attempts.saturating_sub(excluded.0);
    let f = acc.failures.saturating_sub(excluded.1);
    let run_n = acc.runs.saturating_sub(excluded.2);
    let run_f = acc
        .failed_runs
        .saturating_sub(excluded.3.min(acc.failed_runs))
        .min(run_n);
    Rates {
        attempts: n,
        failures: f,
        rate: beta_interval(f, n),
        run_rate: beta_interval(run_f, run_n),
        run_share: if run_n > 0 {
            f64::from(run_f) / f64::from(run_n)
        } else {
            0.0
        },
    }
}

/// Stage 4, lifecycle: broken (its latest commit fails every attempt), quarantined and
/// silent (no result since, so no evidence either way), flaky, fixed (chosen by the
/// change-point model across all tests), suspect, or stable (`None`: not listed).
fn lifecycle(j: &Judged, runs: &[RunRow]) -> Option<(Status, String)> {
    let c = &j.class;
    if j.latest_broken {
        return Some((
            Status::Broken,
            format!(
                "failed every attempt on its latest commit ({} broken commit(s) in the window)",
                c.broken_commits
            ),
        ));
    }
    if let Some(since) = j.silent_since {
        return Some((
            Status::Quarantined,
            format!(
                "quarantined since {}; no result since (deselected), so no evidence of a fix: run it and ignore its outcome to keep evidence coming",
                rfc3339(since)
            ),
        ));
    }
    if j.flaky_evidence {
        let why = if c.flaky_commits > 0 {
            format!(
                "passed and failed on {} commit(s){}",
                c.flaky_commits,
                if c.matched_singles > 0 {
                    format!(
                        ", plus {} lone failure(s) with a known flaky fingerprint",
                        c.matched_singles
                    )
                } else {
                    String::new()
                }
            )
        } else if c.statistically_flaky {
            let n = c.isolated.values().max().copied().unwrap_or(0);
            format!("the same failure on {n} unrelated commits, with passes before and after each")
        } else {
            format!(
                "{} lone failure(s) on unrelated commits with no retry, weighed against this history's confirmed flakes and breakages: P(flaky) = {:.3} (no same-commit evidence)",
                j.lone_count,
                j.lone_posterior.unwrap_or(0.0)
            )
        };
        if let (true, Some(fix), Some(pos), Some(p)) = (j.fixed, j.fix, j.clean_since, j.p_fixed) {
            let run = &runs[pos];
            return Some((
                Status::Fixed,
                format!(
                    "{why}; clean since {} ({}): {} clean attempts, P(fixed) = {:.3}",
                    short(&run.commit),
                    rfc3339(run.started_at),
                    fix.clean_attempts,
                    p
                ),
            ));
        }
        let why = match (j.fix, j.p_fixed) {
            (Some(fix), Some(p)) if fix.clean_attempts > 0 => format!(
                "{why}; {} clean attempts since the last flake are not yet evidence of a fix (P(fixed) = {p:.3})",
                fix.clean_attempts
            ),
            _ => why,
        };
        return Some((Status::Flaky, why));
    }
    if c.isolated_total + c.matched_singles > 0 {
        return Some((
            Status::Suspect,
            format!(
                "{} lone failure(s) with no retry on their commit and no failure in the runs just before or after; not enough to call it flaky{}",
                c.isolated_total,
                j.lone_posterior
                    .map(|p| format!(" (P(flaky) = {p:.3})"))
                    .unwrap_or_default()
            ),
        ));
    }
    if j.quarantined_since.is_some() {
        return Some((
            Status::Quarantined,
            "quarantined; no flaky evidence in the window yet".to_string(),
        ));
    }
    None
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// The output row of one judged test (names and messages are filled in later).
fn test_score(
    j: &Judged,
    acc: &Acc,
    status: Status,
    reason: String,
    h: &gather::History,
    fingerprint_ids: &mut HashSet<i64>,
) -> TestScore {
    let runs = &h.runs;
    let c = &j.class;
    let mut evidence: Vec<(i64, CommitEvidence)> = Vec::new();
    let mut flake_times: Vec<i64> = Vec::new();
    let mut flakes_by_day: BTreeMap<String, u32> = BTreeMap::new();
    let mut fp_counts: HashMap<i64, u32> = HashMap::new();
    for (i, (kind, cell)) in c.kinds.iter().enumerate() {
        let counts_as_flake = match kind {
            CellKind::Flaky => true,
            CellKind::Single => !c.streak_cells.contains(&i),
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
    let mut fps: Vec<(i64, u32)> = fp_counts.into_iter().collect();
    fps.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    fps.truncate(5);
    fingerprint_ids.extend(fps.iter().map(|(id, _)| *id));
    let r = &j.rates;
    let fixed_run = (status == Status::Fixed)
        .then_some(j.clean_since)
        .flatten()
        .map(|p| &runs[p]);
    TestScore {
        test_id: TestIdentity(j.key.0).hex(),
        classname: String::new(),
        name: String::new(),
        file: None,
        job: h.jobs[j.key.1 as usize].clone(),
        status,
        reason,
        runs: acc.runs,
        attempts: acc.attempts,
        failures: acc.failures,
        flaky_commits: c.flaky_commits,
        broken_commits: c.broken_commits,
        single_failures: c.single_failures,
        flake_rate: impact::round(r.rate.0, 6),
        flake_rate_low: impact::round(r.rate.1, 6),
        flake_rate_high: impact::round(r.rate.2, 6),
        run_flake_rate: impact::round(r.run_rate.0, 6),
        run_flake_rate_low: impact::round(r.run_rate.1, 6),
        run_flake_rate_high: impact::round(r.run_rate.2, 6),
        first_flake_at: flake_times.first().map(|t| rfc3339(*t)),
        last_flake_at: flake_times.last().map(|t| rfc3339(*t)),
        retries_per_day: 0.0,
        ci_minutes_per_day: 0.0,
        in_run_rerun_minutes_per_day: 0.0,
        observed_retries: 0,
        job_failure_rate: 0.0,
        fix_posterior: j.p_fixed.map(|p| impact::round(p, 4)),
        fixed_since_commit: fixed_run.map(|r| r.commit.clone()),
        fixed_since: fixed_run.map(|r| rfc3339(r.started_at)),
        quarantined_since: j.quarantined_since.map(rfc3339),
        masked_share: 0.0,
        flaky_evidence: matches!(status, Status::Flaky | Status::Fixed).then_some(if j.same_sha {
            "same-sha"
        } else {
            "statistical"
        }),
        flaky_posterior: (!j.same_sha
            && matches!(status, Status::Flaky | Status::Fixed | Status::Suspect))
        .then_some(j.lone_posterior)
        .flatten()
        .map(|p| impact::round(p, 4)),
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
        mean_attempt_s: acc.duration_ms as f64 / 1000.0 / f64::from(acc.attempts.max(1)),
        in_run_reruns: acc.in_run_reruns,
        run_failure_share: r.run_share,
    }
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
    h: &gather::History,
    lane: &[usize],
    at: usize,
    test_id: i64,
    job: u32,
    dir: isize,
) -> Option<bool> {
    let runs = &h.runs;
    // The test failed in this job, so the scan kept its every run here: no row lookups,
    // which on a whole-history window cost more than the rest of the scoring.
    let series = h.series.get(&(test_id, job)).map_or(&[][..], Vec::as_slice);
    let commit = &runs[lane[at]].commit;
    let mut i = at as isize;
    for _ in 0..8 {
        i += dir;
        if i < 0 || i as usize >= lane.len() {
            return None;
        }
        let pos = lane[i as usize];
        if &runs[pos].commit == commit {
            continue;
        }
        if let Ok(k) = series.binary_search_by_key(&pos, |(p, _)| *p) {
            let obs = &series[k].1;
            if obs.attempts > 0 {
                return Some(obs.failures < obs.attempts);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(attempts: u32, failures: u32, fps: &[i64], failed_runs: &[usize]) -> Cell {
        Cell {
            runs: 1,
            attempts,
            failures,
            first_run: failed_runs.first().copied(),
            fingerprints: fps.to_vec(),
            failed_runs: failed_runs.to_vec(),
        }
    }

    #[test]
    fn commit_evidence_tells_flaky_broken_and_lone_commits_apart() {
        let (a, b, c) = (
            cell(2, 1, &[1], &[0]),
            cell(3, 3, &[2], &[1]),
            cell(1, 1, &[3], &[2]),
        );
        let kinds: Vec<CellKind> = commit_evidence(&[(0, &a), (1, &b), (2, &c)])
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert!(kinds == [CellKind::Flaky, CellKind::Broken, CellKind::Single]);
        // A commit the test never ran on (runs == 0) says nothing.
        let mut none = cell(0, 0, &[], &[]);
        none.runs = 0;
        assert!(commit_evidence(&[(0, &none)]).is_empty());
    }

    #[test]
    fn classify_matches_known_fingerprints_and_finds_streaks_and_isolated_failures() {
        let flaky = cell(2, 1, &[7], &[0]);
        let known = cell(1, 1, &[7], &[1]);
        let isolated = cell(1, 1, &[8], &[2]);
        let streak = cell(1, 1, &[9], &[3]);
        let kinds = commit_evidence(&[(0, &flaky), (1, &known), (2, &isolated), (3, &streak)]);
        let c = classify(kinds, &ScoreOptions::default(), &HashSet::new(), |cell| {
            Ok(if cell.fingerprints == [9] {
                (Some(false), Some(true))
            } else {
                (Some(true), Some(true))
            })
        })
        .unwrap();
        assert_eq!((c.flaky_commits, c.single_failures), (1, 3));
        assert_eq!(c.matched_singles, 1);
        assert_eq!(c.isolated_total, 1);
        assert_eq!(c.isolated.get(&8), Some(&1));
        assert!(c.streak_cells.contains(&3));
        assert!(!c.statistically_flaky);
    }

    #[test]
    fn isolated_failures_that_say_nothing_are_no_shared_cause() {
        // Three isolated failures with one fingerprint make a test flaky, unless that
        // fingerprint is a text like ctest's `Failed`, which every failure has.
        let cells: Vec<Cell> = (0..3).map(|i| cell(1, 1, &[5], &[i * 2])).collect();
        let evidence: Vec<(u32, &Cell)> = cells.iter().zip(0..).map(|(c, i)| (i * 2, c)).collect();
        let judge = |nothing: HashSet<i64>| {
            classify(
                commit_evidence(&evidence),
                &ScoreOptions::default(),
                &nothing,
                |_| Ok((Some(true), Some(true))),
            )
            .unwrap()
        };
        assert!(judge(HashSet::new()).statistically_flaky);
        let c = judge(HashSet::from_iter([5]));
        assert!(!c.statistically_flaky);
        assert_eq!(
            c.isolated_total, 3,
            "still lone failures, judged statistically"
        );
    }

    #[test]
    fn a_failure_text_that_says_nothing_matches_no_known_flake() {
        // One flaky commit failing `Failed`, then a regression failing `Failed` on single
        // attempts: a streak (a breakage), not failures "with a known flaky fingerprint".
        let flaky = cell(2, 1, &[5], &[0]);
        let streak: Vec<Cell> = (1..4).map(|i| cell(1, 1, &[5], &[i])).collect();
        let mut evidence = vec![(0, &flaky)];
        evidence.extend(streak.iter().zip(1..).map(|(c, i)| (i, c)));
        let judge = |nothing: HashSet<i64>| {
            classify(
                commit_evidence(&evidence),
                &ScoreOptions::default(),
                &nothing,
                |_| Ok((Some(false), Some(false))),
            )
            .unwrap()
        };
        assert_eq!(judge(HashSet::new()).matched_singles, 3);
        let c = judge(HashSet::from_iter([5]));
        assert_eq!(c.matched_singles, 0);
        assert_eq!(c.streak_cells.len(), 3);
    }

    #[test]
    fn only_one_off_breakages_count_towards_the_breakage_rate() {
        // Three commits of one regression (each retried, each failed) and one breakage with
        // passes around it: lone failures are weighed against one-off breakages, so only
        // the last counts, not four.
        let streak: Vec<Cell> = (0..3).map(|i| cell(2, 2, &[1], &[i])).collect();
        let one_off = cell(2, 2, &[2], &[9]);
        let mut evidence: Vec<(u32, &Cell)> = streak.iter().zip(0..).map(|(c, i)| (i, c)).collect();
        evidence.push((9, &one_off));
        let c = classify(
            commit_evidence(&evidence),
            &ScoreOptions::default(),
            &HashSet::new(),
            |cell| {
                Ok(if cell.fingerprints == [1] {
                    (Some(false), Some(false))
                } else {
                    (Some(true), Some(true))
                })
            },
        )
        .unwrap();
        assert_eq!((c.broken_commits, c.isolated_broken), (4, 1));
    }

    #[test]
    fn rates_leave_breakages_out() {
        let broken = cell(3, 3, &[1], &[5]);
        let flaky = cell(2, 1, &[2], &[6]);
        let kinds = commit_evidence(&[(0, &broken), (1, &flaky)]);
        let c = classify(kinds, &ScoreOptions::default(), &HashSet::new(), |_| {
            Ok((None, None))
        })
        .unwrap();
        let acc = Acc {
            runs: 20,
            attempts: 25,
            failures: 4,
            failed_runs: 1,
            ..Acc::default()
        };
        let r = rates(&acc, &c);
        // 25 − 3 attempts, 4 − 3 failures: the broken commit is not flakiness.
        assert_eq!((r.attempts, r.failures), (22, 1));
        assert_eq!(r.run_share, 0.0);
    }

    #[test]
    fn lifecycle_orders_broken_silence_fixed_and_flaky() {
        let flaky = cell(2, 1, &[2], &[0]);
        let judged = |latest_broken, silent: Option<i64>, fixed| {
            let kinds = commit_evidence(&[(0, &flaky)]);
            let class = classify(kinds, &ScoreOptions::default(), &HashSet::new(), |_| {
                Ok((None, None))
            })
            .unwrap();
            let acc = Acc::default();
            Judged {
                key: (1, 0),
                rates: rates(&acc, &class),
                class,
                fix: Some(changepoint::FixEvidence {
                    bayes_factor: 1e6,
                    clean_from: 1,
                    clean_attempts: 50,
                }),
                clean_since: Some(0),
                span: Some((0, 86_400 * 30)),
                flaky_evidence: true,
                latest_broken,
                quarantined_since: silent,
                silent_since: silent,
                p_fixed: Some(0.999),
                fixed,
                same_sha: true,
                lone_posterior: None,
                lone_count: 0,
            }
        };
        let runs = vec![RunRow {
            run_key: 1,
            commit: "abcdef0123456789".into(),
            branch: "main".into(),
            job: "unit".into(),
            run_id: "1".into(),
            attempt: 1,
            started_at: 0,
            duration_s: None,
            tests_time_s: 0.0,
            run_url: None,
        }];
        let status = |j: Judged| lifecycle(&j, &runs).map(|(s, _)| s);
        assert_eq!(status(judged(true, None, true)), Some(Status::Broken));
        assert_eq!(
            status(judged(false, Some(5), true)),
            Some(Status::Quarantined)
        );
        let (s, why) = lifecycle(&judged(false, None, true), &runs).unwrap();
        assert_eq!(s, Status::Fixed);
        assert!(why.contains("clean since abcdef012345"), "{why}");
        // Not chosen by the selection across tests: still flaky, whatever its own posterior.
        assert_eq!(status(judged(false, None, false)), Some(Status::Flaky));
    }
}
