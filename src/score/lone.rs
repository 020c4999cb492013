//! Lone failures judged statistically: a failure with no retry on its commit is weighed as
//! a flake or a breakage by what this history's own confirmed cases look like.
//!
//! Confirmed flakes (passed and failed on one commit) and confirmed breakages (failed every
//! attempt on one commit) are labelled examples. From them, per history:
//! - persistence: how often the next commit of the same job and branch passes after a
//!   flake vs after a breakage (on the busiest branch, where breakages are fixed by later
//!   commits, and on the others, where a PR's next commit often fixes its own break);
//! - matrix twins: how often the same test passed on the same commit in another job after
//!   a flake vs after a breakage that vanished (a code bug breaks every job of a matrix);
//! - failure messages: whether the message is nearer (token Jaccard, numbers and ids
//!   already masked) to confirmed flakes' messages than to confirmed breakages', and how
//!   often that holds for each kind (leave-one-test-out).
//!
//! A test's lone failures then give a Bayes factor "flaky with an unknown rate" (log-uniform
//! rate prior) against "fine, broken now and then" (breakages at the history's rate per
//! test run), times the features' likelihood ratios, with the share of tests confirmed
//! flaky as the prior. The result is a posterior, never same-commit evidence: the JSON
//! says `flaky_evidence: "statistical"` so a gate can insist on `"same-sha"`.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

/// What one failing commit of a test looked like around it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Features {
    /// On the branch with the most runs (breakages there persist until fixed).
    pub trunk: bool,
    /// Did the next run on another commit of the same job and branch pass?
    pub vanished: Option<bool>,
    /// Did the test pass on the same commit in another job that ran it?
    pub twin_passed: Option<bool>,
    /// Other tests failed the same run too, apart from the test's recurring companions
    /// (see [`recurring_companions`]) (a commit that breaks code often breaks
    /// several tests at once; flakes strike alone, unless they share a cause).
    pub crowded: bool,
    /// Words of the failure's normalised messages.
    pub words: HashSet<String>,
}

/// Pairs of tests (lower id first) that failed the same run on two or more commits, from
/// each run's failing tests (sorted) outside breakage streaks.
///
/// Such tests share a cause: a parent and its subtest, or one flaky resource behind a group.
/// Their company is no sign of a breaking change, which fails its tests together once (a
/// regression that persists is a streak, left out by the caller). Runs where more than
/// `MASS` tests failed are left out: a mass failure says nothing about pairs, and its pairs
/// would cost quadratic time.
pub(crate) fn recurring_companions(
    failed_tests: &[Vec<i64>],
    commit_of: &[u32],
) -> HashSet<(i64, i64)> {
    const MASS: usize = 64;
    // pair -> (the first commit it was seen on, seen on another commit too)
    let mut seen: HashMap<(i64, i64), (u32, bool)> = HashMap::new();
    for (pos, tests) in failed_tests.iter().enumerate() {
        if tests.len() < 2 || tests.len() > MASS {
            continue;
        }
        let commit = commit_of[pos];
        for (i, &a) in tests.iter().enumerate() {
            for &b in &tests[i + 1..] {
                let e = seen.entry((a.min(b), a.max(b))).or_insert((commit, false));
                e.1 |= e.0 != commit;
            }
        }
    }
    seen.into_iter()
        .filter(|(_, (_, twice))| *twice)
        .map(|(pair, _)| pair)
        .collect()
}

/// Pairs of tests (lower id first) where one is a Go subtest of the other (`TestX/case` of
/// `TestX` in one package), from `(test id, classname, name)`: the parent fails whenever its
/// subtest does, so their failing together is one failure.
pub(crate) fn nested_companions<'a>(
    tests: impl Iterator<Item = (i64, &'a str, &'a str)>,
) -> HashSet<(i64, i64)> {
    let named: Vec<(&str, &str, &str, i64)> = tests
        .map(|(id, class, name)| ("", class, name, id))
        .collect();
    super::impact::nested_pairs(&named, &[""])
        .into_iter()
        .map(|(_, a, b)| (a.min(b), a.max(b)))
        .collect()
}

/// Fingerprints that say nothing about a test, per job: ones shared by many of the job's
/// failing tests (a runner's "Failed", "exit status 1"), from (job, test, fingerprint) of
/// every failure. A cause that strikes a few tests (a shared resource) stays specific.
pub(crate) fn generic_fingerprints(
    failures: impl Iterator<Item = (u32, i64, i64)>,
) -> HashSet<(u32, i64)> {
    const MIN_TESTS: usize = 5;
    let mut tests_of: HashMap<(u32, i64), HashSet<i64>> = HashMap::new();
    let mut failing: HashMap<u32, HashSet<i64>> = HashMap::new();
    for (job, test, fp) in failures {
        tests_of.entry((job, fp)).or_default().insert(test);
        failing.entry(job).or_default().insert(test);
    }
    tests_of
        .into_iter()
        .filter(|((job, _), tests)| {
            tests.len() >= MIN_TESTS && tests.len() * 4 >= failing[job].len()
        })
        .map(|(key, _)| key)
        .collect()
}

/// Words (3+ letters) of a normalised message; masked numbers and ids are not words.
pub(crate) fn words(normalized: &str) -> HashSet<String> {
    normalized
        .split(|c: char| !(c.is_ascii_alphabetic() || c == '_'))
        .filter(|w| w.len() >= 3)
        .map(str::to_ascii_lowercase)
        .collect()
}

/// A message nearer to flakes' (F), to breakages' (B), or neither (U).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Near {
    F,
    B,
    U,
}

/// Beta(1, 1)-smoothed share. (Jeffreys' Beta(½, ½) found one more flaky test over five
/// simulated histories, but makes every feature more extreme where a history confirms
/// only a few breakages: a verdict the gate acts on should not rest on that.)
fn share(yes: u32, n: u32) -> f64 {
    (f64::from(yes) + 1.0) / (f64::from(n) + 2.0)
}

/// The labelled examples of one history, and what they teach.
#[derive(Default)]
pub(crate) struct Learned {
    /// (flake?, trunk?) → (vanished, with a next commit).
    vanish: HashMap<(bool, bool), (u32, u32)>,
    /// flake? → (twin passed, with a twin), among failures that vanished.
    twin: HashMap<bool, (u32, u32)>,
    /// flake? → (crowded, all).
    crowded: HashMap<bool, (u32, u32)>,
    /// Messages of confirmed flakes and breakages, by test.
    flakes: Messages,
    breakages: Messages,
    /// (flake?, near) → count, leave-one-test-out.
    near: HashMap<(bool, Near), u32>,
    /// flake? → (message names a transient cause, with a message).
    transient: HashMap<bool, (u32, u32)>,
    /// Breakages per test run, and the share of tests flaky: over the history and by job.
    breakage_rate: f64,
    flaky_prior: f64,
    job_prior: HashMap<u32, f64>,
}

impl Learned {
    /// Add a confirmed flake (`flake`) or breakage of test `key`.
    pub fn add(&mut self, key: (i64, u32), flake: bool, f: &Features) {
        let e = self.crowded.entry(flake).or_default();
        e.0 += u32::from(f.crowded);
        e.1 += 1;
        if let Some(v) = f.vanished {
            let e = self.vanish.entry((flake, f.trunk)).or_default();
            e.0 += u32::from(v);
            e.1 += 1;
            if let (true, Some(p)) = (v, f.twin_passed) {
                let e = self.twin.entry(flake).or_default();
                e.0 += u32::from(p);
                e.1 += 1;
            }
        }
        if !f.words.is_empty() {
            let list = if flake {
                &mut self.flakes
            } else {
                &mut self.breakages
            };
            list.add(key, &f.words);
        }
    }

    /// Finish learning. `breakages`: confirmed breakage commits (every attempt failed, or a
    /// streak) over `test_runs` test runs; `by_job`: job → (tests confirmed flaky, tests);
    /// and the tests left to judge, as (key, runs, lone failures). The breakage rate and
    /// the priors are estimated together with those tests' posteriors (EM): a lone failure
    /// counts towards breakages by the probability that its test is not flaky. A job's
    /// prior is its own share of flaky tests, shrunk towards the history's (empirical
    /// Bayes): jobs differ (an end-to-end suite flakes more than unit tests).
    pub fn finish(
        &mut self,
        breakages: u32,
        test_runs: u64,
        by_job: &HashMap<u32, (u32, u32)>,
        undecided: &[((i64, u32), u32, &[Features])],
    ) {
        // How many tests' worth of the history's share a job's own share is weighed against.
        const SHRINK: f64 = 20.0;
        let flaky_tests: u32 = by_job.values().map(|v| v.0).sum();
        let tests: u32 = by_job.values().map(|v| v.1).sum();
        let mut near = HashMap::new();
        // How often each kind's messages name a transient cause, counted once per test and
        // message as `near` is (a test flaking on 40 commits is one example). Weighed only
        // for unfamiliar messages, but learned from all: a history confirms too few
        // unfamiliar breakages to learn from those alone, and a cause is named about as
        // often in a kind's familiar messages as in its unfamiliar ones.
        let mut transient: HashMap<bool, (u32, u32)> = HashMap::new();
        for (flake, list) in [(true, &self.flakes), (false, &self.breakages)] {
            for (words, keys) in &list.sets {
                let words: HashSet<String> = words.iter().cloned().collect();
                let names_cause = names_transient_cause(&words);
                for key in keys {
                    let (f, b) = self.likeness(*key, &words);
                    *near.entry((flake, near_kind(f, b))).or_default() += 1;
                    let e = transient.entry(flake).or_default();
                    e.0 += u32::from(names_cause);
                    e.1 += 1;
                }
            }
        }
        self.near = near;
        self.transient = transient;
        // Features do not change between iterations: their likelihood ratios once.
        let lrs: Vec<f64> = undecided
            .iter()
            .map(|(key, _, lone)| lone.iter().map(|f| self.log_lr(*key, f)).sum())
            .collect();
        // Start pessimistic: every lone failure a breakage, no undecided test flaky.
        let mut post = vec![0.0; undecided.len()];
        for _ in 0..50 {
            let lone_breakages: f64 = undecided
                .iter()
                .zip(&post)
                .map(|((_, _, lone), p)| (1.0 - p) * lone.len() as f64)
                .sum();
            self.breakage_rate =
                (f64::from(breakages) + lone_breakages + 1.0) / (test_runs as f64 + 1.0);
            let flaky: f64 = f64::from(flaky_tests) + post.iter().sum::<f64>();
            self.flaky_prior = ((flaky + 1.0) / (f64::from(tests) + 2.0)).clamp(0.005, 0.5);
            let mut job_flaky: HashMap<u32, f64> = by_job
                .iter()
                .map(|(&job, &(f, _))| (job, f64::from(f)))
                .collect();
            for (((_, job), _, _), p) in undecided.iter().zip(&post) {
                *job_flaky.entry(*job).or_default() += p;
            }
            self.job_prior = job_flaky
                .into_iter()
                .map(|(job, f)| {
                    let n = f64::from(by_job.get(&job).map_or(0, |v| v.1));
                    let prior = (f + SHRINK * self.flaky_prior) / (n + SHRINK);
                    (job, prior.clamp(0.005, 0.5))
                })
                .collect();
            let next: Vec<f64> = undecided
                .iter()
                .zip(&lrs)
                .map(|((key, runs, lone), lr)| {
                    self.posterior_with(key.1, *runs, lone.len() as u32, *lr)
                })
                .collect();
            let moved = next
                .iter()
                .zip(&post)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            post = next;
            if moved < 1e-4 {
                break;
            }
        }
        tracing::debug!(
            breakage_rate = self.breakage_rate,
            flaky_prior = self.flaky_prior,
            job_prior = ?self.job_prior,
            vanish = ?self.vanish,
            twin = ?self.twin,
            crowded = ?self.crowded,
            near = ?self.near,
            transient = ?self.transient,
            "lone failures: learned"
        );
    }

    /// The highest likeness of a message to other tests' confirmed flakes and breakages.
    fn likeness(&self, key: (i64, u32), w: &HashSet<String>) -> (f64, f64) {
        (self.flakes.best(key, w), self.breakages.best(key, w))
    }

    #[cfg(test)]
    fn nearest(&self, key: (i64, u32), w: &HashSet<String>) -> Near {
        let (f, b) = self.likeness(key, w);
        near_kind(f, b)
    }

    /// Log likelihood ratio (flake vs breakage) of one lone failure's features.
    fn log_lr(&self, key: (i64, u32), f: &Features) -> f64 {
        self.explain(key, f).iter().sum()
    }

    /// The log likelihood ratios of one lone failure's features: crowding, vanishing, the
    /// twin, the message's likeness, the message's cause (for the debug log: which
    /// evidence decided).
    pub fn explain(&self, key: (i64, u32), f: &Features) -> [f64; 5] {
        let mut parts = [0.0; 5];
        let p = |flake| {
            let (c, n) = self.crowded.get(&flake).copied().unwrap_or((0, 0));
            share(c, n)
        };
        parts[0] = if f.crowded {
            (p(true) / p(false)).ln()
        } else {
            ((1.0 - p(true)) / (1.0 - p(false))).ln()
        };
        if f.vanished == Some(true) {
            let p = |flake| {
                let (v, n) = self
                    .vanish
                    .get(&(flake, f.trunk))
                    .copied()
                    .unwrap_or((0, 0));
                share(v, n)
            };
            parts[1] = (p(true) / p(false)).ln();
            if let Some(passed) = f.twin_passed {
                let p = |flake| {
                    let (v, n) = self.twin.get(&flake).copied().unwrap_or((0, 0));
                    share(v, n)
                };
                parts[2] = if passed {
                    (p(true) / p(false)).ln()
                } else {
                    ((1.0 - p(true)) / (1.0 - p(false))).ln()
                };
            }
        }
        if !f.words.is_empty() {
            let (flakes, breakages) = self.likeness(key, &f.words);
            let near = near_kind(flakes, breakages);
            let p = |flake: bool| {
                let n: u32 = [Near::F, Near::B, Near::U]
                    .iter()
                    .map(|&x| self.near.get(&(flake, x)).copied().unwrap_or(0))
                    .sum();
                (f64::from(self.near.get(&(flake, near)).copied().unwrap_or(0)) + 1.0)
                    / (f64::from(n) + 3.0)
            };
            parts[3] = (p(true) / p(false)).ln();
            // A message like no confirmed one: what it names (a timeout, a refused
            // connection) is the evidence left, as often as this history's confirmed
            // flakes and breakages name such a cause. A message like both kinds is no
            // evidence: the history has seen it break as well as flake.
            if flakes.max(breakages) < SIMILAR {
                let t = names_transient_cause(&f.words);
                let p = |flake| {
                    let (c, n) = self.transient.get(&flake).copied().unwrap_or((0, 0));
                    let yes = share(c, n);
                    if t {
                        yes
                    } else {
                        1.0 - yes
                    }
                };
                parts[4] = (p(true) / p(false)).ln();
            }
        }
        parts
    }

    /// Posterior probability that a test with these lone failures in `runs` runs is flaky.
    pub fn posterior(&self, key: (i64, u32), runs: u32, lone: &[Features]) -> f64 {
        let lr = lone.iter().map(|f| self.log_lr(key, f)).sum();
        self.posterior_with(key.1, runs, lone.len() as u32, lr)
    }

    fn posterior_with(&self, job: u32, runs: u32, k: u32, log_lr: f64) -> f64 {
        if k == 0 {
            return 0.0;
        }
        let (prior, count) = self.log_odds_before_features(job, runs, k);
        1.0 / (1.0 + (-(prior + count + log_lr)).exp())
    }

    /// The job's prior log odds that a test is flaky, and the log likelihood ratio of `k`
    /// lone failures in `runs` runs.
    pub fn log_odds_before_features(&self, job: u32, runs: u32, k: u32) -> (f64, f64) {
        let n = f64::from(runs.max(k));
        let prior = self
            .job_prior
            .get(&job)
            .copied()
            .unwrap_or(self.flaky_prior);
        (
            (prior / (1.0 - prior)).ln(),
            log_count_ratio(k, n, self.breakage_rate),
        )
    }
}

/// Whether a message's words name a cause that comes and goes, such as a timeout, a
/// database deadlock, a refused or reset connection, a failed DNS lookup.
/// Whether that sets flakes apart from breakages is learned per history; most flakes in
/// studies of real suites wait on time, a lock or the network (Luo et al., FSE 2014).
/// A message that states an expectation is an assertion's, whatever wraps it (Cypress's
/// "Timed out retrying after <n>ms: expected …", Playwright's "waiting for expect(…)").
pub(crate) fn names_transient_cause(words: &HashSet<String>) -> bool {
    let has = |w: &str| words.contains(w);
    if words
        .iter()
        .any(|w| w.contains("expect") || w.contains("assert"))
    {
        return false;
    }
    words.iter().any(|w| {
        w.contains("timeout")
            || w.contains("timedout")
            || w.contains("econnre")
            || (w.contains("unreach") && w.starts_with('e'))
            || w.contains("connectionerror")
            || w.contains("connectionaborted")
            || w.contains("brokenpipe")
            || w.contains("staleelementreference")
            || ["epipe", "eaddrinuse", "enotfound", "eai_again"].contains(&w.as_str())
    }) || has("timed")
        || has("deadline")
        || has("refused")
        || has("unavailable")
        || (has("reset") && has("connection"))
        || (has("unreachable") && ["host", "network", "address", "destination"].into_iter().any(has))
        || (has("broken") && has("pipe"))
        || (has("already") && has("use") && has("address"))
        || (has("such") && has("host"))
        || (has("hang") && has("socket"))
        // A database's serialization failure is retried by design (PostgreSQL 40001).
        || (has("serialize") && has("concurrent"))
        // A database's deadlock; Go's "all goroutines are asleep - deadlock!" is a bug.
        || (has("deadlock") && ["found", "detected", "victim"].into_iter().any(has))
}

/// Whether `failed_attempts` failures of a commit are likelier all flakes of a test that
/// fails alone at `lone_rate` per run than a breakage at `breakage_rate` per test run.
/// Such a commit teaches nothing about breakages: its message is a flake's.
pub(crate) fn likely_flake_every_attempt(
    lone_rate: f64,
    failed_attempts: u32,
    breakage_rate: f64,
) -> bool {
    lone_rate.powf(f64::from(failed_attempts)) > breakage_rate
}

/// Below this Jaccard two messages share only a few common words ("got", "want",
/// "expected"), which flakes and breakages of one language both use: no evidence.
const SIMILAR: f64 = 0.5;
/// How much nearer to one kind than to the other a message must be.
const MARGIN: f64 = 0.1;
/// Similarities below this cannot change [`Learned::nearest`]: with one kind at least
/// `SIMILAR`, the other matters only above `SIMILAR - MARGIN`.
const CUT: f64 = SIMILAR - MARGIN;

/// Which kind a message is nearer to, from its highest likeness to each kind's messages.
fn near_kind(flakes: f64, breakages: f64) -> Near {
    if flakes.max(breakages) < SIMILAR {
        Near::U
    } else if flakes > breakages + MARGIN {
        Near::F
    } else if breakages > flakes + MARGIN {
        Near::B
    } else {
        Near::U
    }
}

/// A test in a job: (test id, job index).
type TestKey = (i64, u32);

/// Confirmed messages of one kind, indexed by word: the most similar message of another
/// test is found among the messages sharing a word with it, not by comparing with all
/// (quadratic in confirmed cases: 18 s for 12,000 messages).
#[derive(Default)]
struct Messages {
    /// Distinct word sets (sorted) and the tests that had each (sorted, distinct).
    sets: Vec<(Vec<String>, Vec<TestKey>)>,
    set_of: HashMap<Vec<String>, usize>,
    /// Word → the sets that contain it.
    index: HashMap<String, Vec<usize>>,
}

impl Messages {
    fn add(&mut self, key: TestKey, words: &HashSet<String>) {
        let mut sorted: Vec<String> = words.iter().cloned().collect();
        sorted.sort_unstable();
        let at = match self.set_of.get(&sorted) {
            Some(&at) => at,
            None => {
                let at = self.sets.len();
                for w in &sorted {
                    self.index.entry(w.clone()).or_default().push(at);
                }
                self.set_of.insert(sorted.clone(), at);
                self.sets.push((sorted, Vec::new()));
                at
            }
        };
        let keys = &mut self.sets[at].1;
        if let Err(i) = keys.binary_search(&key) {
            keys.insert(i, key);
        }
    }

    /// The highest Jaccard similarity of `w` with a message of a test other than `key`,
    /// when it is at least [`CUT`] (below, any value up to the true one).
    ///
    /// A message with Jaccard ≥ `CUT` shares at least `⌈CUT·|w|⌉` of `w`'s words, so one
    /// of any `|w| − ⌈CUT·|w|⌉ + 1` of them (prefix filtering): only the sets holding the
    /// rarest words are compared, and words like "error" in every other message are not
    /// walked.
    fn best(&self, key: TestKey, w: &HashSet<String>) -> f64 {
        let mut lists: Vec<&[usize]> = w
            .iter()
            .map(|word| self.index.get(word).map_or(&[][..], Vec::as_slice))
            .collect();
        lists.sort_unstable_by_key(|l| l.len());
        let must_share = (CUT * w.len() as f64 - 1e-9).ceil().max(1.0) as usize;
        let probe = (w.len() + 1).saturating_sub(must_share);
        let mut seen: HashSet<usize> = HashSet::new();
        let mut best = 0.0f64;
        for &at in lists.iter().take(probe).flat_map(|l| l.iter()) {
            if !seen.insert(at) {
                continue;
            }
            let (words, keys) = &self.sets[at];
            if !keys.iter().any(|k| *k != key) {
                continue;
            }
            let inter = words.iter().filter(|x| w.contains(*x)).count();
            best = best.max(inter as f64 / (w.len() + words.len() - inter) as f64);
        }
        best
    }
}

/// Token-set similarity of two messages (Jaccard).
#[cfg(test)]
pub(crate) fn similarity(a: &HashSet<String>, b: &HashSet<String>) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let inter = a.intersection(b).count() as f64;
    inter / (a.len() as f64 + b.len() as f64 - inter)
}

/// ln P(k failures in n runs | flaky, rate log-uniform in [0.001, 0.5]) over
/// ln P(k | independent breakages at `lambda` per run, Poisson).
fn log_count_ratio(k: u32, n: f64, lambda: f64) -> f64 {
    let kf = f64::from(k);
    let ln_choose = ln_gamma(n + 1.0) - ln_gamma(kf + 1.0) - ln_gamma(n - kf + 1.0);
    let (lo, hi) = (0.001f64.ln(), 0.5f64.ln());
    let steps = 400;
    let mut sum = 0.0;
    for i in 0..=steps {
        let q = (lo + (hi - lo) * f64::from(i) / f64::from(steps)).exp();
        sum += (ln_choose + kf * q.ln() + (n - kf) * (1.0 - q).ln()).exp();
    }
    let flaky = sum / f64::from(steps + 1);
    let mu = n * lambda;
    let breakage = kf * mu.ln() - mu - ln_gamma(kf + 1.0);
    flaky.max(1e-300).ln() - breakage
}

/// Lanczos approximation of ln Γ(x), x > 0.
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lone(trunk: bool, vanished: bool, msg: &str) -> Features {
        Features {
            trunk,
            vanished: Some(vanished),
            twin_passed: None,
            crowded: false,
            words: words(msg),
        }
    }

    #[test]
    fn tests_failing_together_on_two_commits_are_companions() {
        // Runs 0 and 1 are one commit, run 2 another: (1, 2) failed together on two
        // commits, (1, 3) on one only (a breaking change fails its tests together once).
        let failed = vec![vec![1, 2, 3], vec![1, 2], vec![1, 2], vec![4]];
        let commits = [10, 10, 11, 12];
        assert_eq!(
            recurring_companions(&failed, &commits),
            HashSet::from_iter([(1, 2)])
        );
        // The same pair twice on one commit (a rerun) is no recurrence.
        assert!(recurring_companions(&failed[..2], &commits[..2]).is_empty());
    }

    #[test]
    fn a_go_subtest_and_its_parent_are_companions() {
        let tests = [
            (1, "pkg/a", "TestQueue"),
            (2, "pkg/a", "TestQueue/empty_input"),
            (3, "pkg/a", "TestQueue/empty_input/nil"),
            (4, "pkg/a", "TestQueueClose"), // a prefix, not a parent
            (5, "pkg/b", "TestQueue/empty_input"), // another package
        ];
        assert_eq!(
            nested_companions(tests.into_iter()),
            HashSet::from_iter([(1, 2), (1, 3), (2, 3)])
        );
    }

    #[test]
    fn a_message_most_failing_tests_of_a_job_share_is_generic() {
        // Job 0: tests 1–8 all fail with fingerprint 100 ("Failed"); tests 1 and 2 also
        // with 200 (their own cause). Job 1: fingerprint 100 on two tests only.
        let mut failures: Vec<(u32, i64, i64)> = (1..=8).map(|t| (0, t, 100)).collect();
        failures.extend([(0, 1, 200), (0, 2, 200), (1, 1, 100), (1, 2, 100)]);
        assert_eq!(
            generic_fingerprints(failures.into_iter()),
            HashSet::from_iter([(0, 100)])
        );
    }

    #[test]
    fn a_test_that_often_fails_alone_failing_both_attempts_is_no_clear_breakage() {
        // 17 lone failures in 276 runs: both attempts failing (0.4%) beats a breakage at
        // 0.06% per test run; one lone failure in 276 (0.001%) does not, nor do three
        // attempts of the frequent one (0.02%).
        assert!(likely_flake_every_attempt(17.0 / 276.0, 2, 0.0006));
        assert!(!likely_flake_every_attempt(1.0 / 276.0, 2, 0.0006));
        assert!(!likely_flake_every_attempt(17.0 / 276.0, 3, 0.0006));
        assert!(!likely_flake_every_attempt(0.0, 2, 0.0006));
    }

    #[test]
    fn messages_naming_a_timeout_lock_or_network_cause_are_told_apart() {
        for m in [
            "java.util.concurrent.TimeoutException: Timeout after <n> ms waiting for <hex>",
            "TimeoutError: timed out after <n>s waiting for /tmp/server.sock",
            "dial tcp <ip>: connect: connection refused",
            "context deadline exceeded after <n>s",
            "CannotAcquireLockException: Deadlock found when trying to get lock",
            "ERROR: deadlock detected",
            "read tcp <ip>: connection reset by peer",
            "Error: read ECONNRESET",
            "connect EHOSTUNREACH <ip>",
            "requests.exceptions.ConnectionError: Max retries exceeded with url: /api",
            "HTTP 503 Service Unavailable",
            "rpc error: code = Unavailable desc = connection closed",
            "Network is unreachable",
            "BrokenPipeError: [Errno <n>] Broken pipe",
            "write tcp <ip>: write: broken pipe",
            "listen tcp :<n>: bind: address already in use",
            "Error: getaddrinfo ENOTFOUND db",
            "dial tcp: lookup db on <ip>: no such host",
            "Error: socket hang up",
            "psycopg2.errors.SerializationFailure: could not serialize access due to concurrent update",
            "StaleElementReferenceException: element is not attached to the page document",
        ] {
            assert!(names_transient_cause(&words(m)), "{m}");
        }
        for m in [
            "org.opentest4j.AssertionFailedError: expected: <n> but was: <n>",
            "got status <n>, want <n>",
            "KeyError: 'currency'",
            "AssertionError: password reset token should be invalid",
            "java.util.concurrent.ExecutionException: java.lang.NullPointerException",
            // Assertions behind a retrying wrapper, bugs and business words.
            "AssertionError: Timed out retrying after <n>ms: expected '<div>' to have text",
            "Timed out <n>ms waiting for expect(locator).toHaveText(expected)",
            "fatal error: all goroutines are asleep - deadlock!",
            "internal error: entered unreachable code",
            "PaymentRefusedException: card declined",
            "RoomUnavailableException: no room on <date>",
        ] {
            assert!(!names_transient_cause(&words(m)), "{m}");
        }
    }

    /// A word of its own for example `i`, so that no two examples' messages are alike.
    fn tag(i: usize) -> String {
        format!(
            "svc{}{}",
            (b'a' + (i / 26) as u8) as char,
            (b'a' + (i % 26) as u8) as char
        )
    }

    /// 20 flakes, of which `flaky_causes` name a transient cause, and 20 breakages, of which
    /// `broken_causes` do; every message unlike the others. Plus one flake and one breakage
    /// with the same message, `socket timeout gateway`.
    fn taught_causes(flaky_causes: usize, broken_causes: usize) -> Learned {
        let mut l = Learned::default();
        for i in 0..20 {
            let flake = if i < flaky_causes { "timeout" } else { "held" };
            let flake = format!("{flake} {}", tag(i));
            l.add((i as i64, 0), true, &lone(true, true, &flake));
            let breakage = if i < broken_causes {
                "timeout"
            } else {
                "mismatch"
            };
            let breakage = format!("{breakage} {}", tag(100 + i));
            l.add((100 + i as i64, 0), false, &lone(true, false, &breakage));
        }
        l.add((500, 0), true, &lone(true, true, "socket timeout gateway"));
        l.add(
            (600, 0),
            false,
            &lone(true, false, "socket timeout gateway"),
        );
        l.finish(40, 100_000, &HashMap::from_iter([(0, (20, 400))]), &[]);
        l
    }

    #[test]
    fn an_unfamiliar_message_naming_a_transient_cause_argues_as_this_history_does() {
        let l = taught_causes(14, 0);
        let cause = |l: &Learned, m: &str| l.explain((1000, 0), &lone(true, true, m))[4];
        // 15 of the 21 flakes' messages name a cause, 1 of the 21 breakages' (the message
        // both kinds share).
        let deadlock = cause(&l, "CannotAcquireLockException: Deadlock found");
        let want = (share(15, 21) / share(1, 21)).ln();
        assert!((deadlock - want).abs() < 1e-9, "{deadlock} {want}");
        assert!(cause(&l, "NullPointerException: amount is null") < 0.0);
        // A familiar message is judged by its likeness alone; one like a flake's and a
        // breakage's both is no evidence.
        assert_eq!(cause(&l, &format!("timeout {}", tag(3))), 0.0);
        assert_eq!(cause(&l, "socket timeout gateway"), 0.0);
        // Where breakages name such causes as often as flakes, it is none either.
        let even = taught_causes(14, 14);
        assert!(cause(&even, "CannotAcquireLockException: Deadlock found").abs() < 1e-9);
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        assert!((ln_gamma(1.0)).abs() < 1e-10);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-10);
        assert!((ln_gamma(101.0) - (1..=100).map(|i| f64::from(i).ln()).sum::<f64>()).abs() < 1e-8);
    }

    #[test]
    fn words_ignore_masked_numbers_and_similarity_is_jaccard() {
        let a =
            words("java.util.concurrent.TimeoutException: Timeout after <n> ms waiting for <hex>");
        let b =
            words("java.util.concurrent.TimeoutException: Timeout after <n> ms waiting for <n>");
        assert!(a.contains("timeout") && !a.contains("ms"));
        assert!(similarity(&a, &b) > 0.8, "{a:?} {b:?}");
        let c = words("org.opentest4j.AssertionFailedError: expected: <n> but was: <n>");
        assert!(similarity(&a, &c) < 0.2);
    }

    /// 20 confirmed flakes with message `flake` and 20 breakages with `breakage`, on the
    /// trunk or not; flakes vanish on the next commit, breakage `i` when `vanishes(i)`.
    fn taught(trunk: bool, flake: &str, breakage: &str, vanishes: impl Fn(i64) -> bool) -> Learned {
        let mut l = Learned::default();
        for i in 0..20 {
            l.add((i, 0), true, &lone(trunk, true, flake));
            l.add((100 + i, 0), false, &lone(trunk, vanishes(i), breakage));
        }
        l.finish(40, 100_000, &HashMap::from_iter([(0, (20, 400))]), &[]);
        l
    }

    /// A history whose breakages persist on the trunk and whose flakes vanish.
    fn learned() -> Learned {
        taught(
            true,
            "TimeoutException: Timeout after <n> ms waiting",
            "AssertionFailedError: expected <n> but was <n>",
            |i| i % 5 == 0,
        )
    }

    #[test]
    fn repeated_vanishing_failures_with_a_flaky_message_are_flaky() {
        let l = learned();
        let flaky: Vec<Features> = (0..3)
            .map(|_| {
                lone(
                    true,
                    true,
                    "TimeoutException: Timeout after <n> ms waiting for <hex>",
                )
            })
            .collect();
        assert!(l.posterior((1000, 0), 300, &flaky) > 0.95);
    }

    #[test]
    fn one_failure_that_looks_like_a_breakage_is_not_flaky() {
        let l = learned();
        let one = [lone(
            false,
            true,
            "AssertionFailedError: expected <n> but was <n>",
        )];
        assert!(l.posterior((1000, 0), 300, &one) < 0.5);
        // A breakage that persisted is not vanishing evidence.
        let persisted = [lone(
            true,
            false,
            "TimeoutException: Timeout after <n> ms waiting",
        )];
        assert!(
            l.posterior((1000, 0), 300, &persisted)
                < l.posterior(
                    (1000, 0),
                    300,
                    &[lone(
                        true,
                        true,
                        "TimeoutException: Timeout after <n> ms waiting"
                    )]
                )
        );
    }

    #[test]
    fn a_message_sharing_only_common_words_with_flakes_is_no_evidence() {
        // Go flakes say "unexpected count: got <n>, want <n>"; a breakage's "got status
        // <n>, want <n>" shares two of its words (Jaccard 0.4) and no cause.
        let l = taught(
            false,
            "unexpected count: got <n>, want <n>",
            "Decode() error = unexpected EOF, wantErr false",
            |_| true,
        );
        assert_eq!(
            l.nearest((1000, 0), &words("got status <n>, want <n>")),
            Near::U
        );
        assert_eq!(
            l.nearest((1000, 0), &words("unexpected count: got <n>, want <n>")),
            Near::F
        );
    }

    #[test]
    fn the_word_index_finds_the_nearest_kind_as_comparing_with_every_message_does() {
        // Comparing a message with every confirmed one, as the index must agree with.
        fn brute(
            list: &[((i64, u32), HashSet<String>)],
            key: (i64, u32),
            w: &HashSet<String>,
        ) -> f64 {
            list.iter()
                .filter(|(k, _)| *k != key)
                .map(|(_, x)| similarity(w, x))
                .fold(0.0, f64::max)
        }
        let vocab = [
            "alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "error",
        ];
        let mut x: u64 = 7;
        let mut next = |n: usize| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) as usize % n
        };
        for round in 0..40 {
            let mut l = Learned::default();
            let (mut flakes, mut breakages) = (Vec::new(), Vec::new());
            for _ in 0..30 {
                let key = (next(12) as i64, 0);
                let words: HashSet<String> = (0..1 + next(6))
                    .map(|_| vocab[next(vocab.len())].to_string())
                    .collect();
                let flake = next(2) == 0;
                let mut f = lone(false, true, "");
                f.words = words.clone();
                l.add(key, flake, &f);
                if flake { &mut flakes } else { &mut breakages }.push((key, words));
            }
            for _ in 0..30 {
                let key = (next(14) as i64, 0);
                let w: HashSet<String> = (0..1 + next(6))
                    .map(|_| vocab[next(vocab.len())].to_string())
                    .collect();
                let (f, b) = (brute(&flakes, key, &w), brute(&breakages, key, &w));
                for (found, want) in [(l.flakes.best(key, &w), f), (l.breakages.best(key, &w), b)] {
                    // Exact at CUT and above; below, never more than the truth.
                    if want >= CUT {
                        assert_eq!(found, want, "round {round}: {w:?}");
                    } else {
                        assert!(found <= want, "round {round}: {w:?}");
                    }
                }
                assert_eq!(
                    l.nearest(key, &w),
                    near_kind(f, b),
                    "round {round}: {w:?} f {f} b {b}"
                );
            }
        }
    }

    #[test]
    fn a_message_exactly_at_the_cut_is_found() {
        // A message sharing 6 of 15 words (Jaccard 0.4, exactly the cut) must be compared: the
        // 9 words no message has fill the probe first, and one word fewer probed would miss
        // it, so a flake at 0.5 would be called nearer than it is.
        let w: HashSet<String> = (0..15)
            .map(|i| format!("word{}", (b'a' + i) as char))
            .collect();
        let mut sorted: Vec<&String> = w.iter().collect();
        sorted.sort();
        let six: HashSet<String> = sorted[..6].iter().map(|s| s.to_string()).collect();
        let mut l = Learned::default();
        let mut f = lone(false, true, "");
        f.words = six;
        l.add((1, 0), false, &f);
        assert_eq!(l.breakages.best((2, 0), &w), 0.4);
    }

    #[test]
    fn a_twin_that_failed_too_argues_for_a_breakage() {
        let mut l = Learned::default();
        for i in 0..10 {
            let mut f = lone(false, true, "x");
            f.twin_passed = Some(true);
            l.add((i, 0), true, &f);
            let mut b = lone(false, true, "y");
            b.twin_passed = Some(false);
            l.add((100 + i, 0), false, &b);
        }
        l.finish(20, 10_000, &HashMap::from_iter([(0, (10, 100))]), &[]);
        let mut passed = lone(false, true, "");
        passed.twin_passed = Some(true);
        let mut failed = passed.clone();
        failed.twin_passed = Some(false);
        assert!(l.posterior((7, 1), 200, &[passed]) > 3.0 * l.posterior((7, 1), 200, &[failed]));
    }
}
