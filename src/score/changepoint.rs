//! Was a flaky test fixed? A change-point model over its attempt history, and a
//! false-fixed rate controlled across every test judged at once.
//!
//! The history is the test's runs in the job, in time order (commits where it was really
//! broken left out), each with its attempts and failures. Two models explain it:
//! - *still flaky*: one rate `p ~ Beta(½, ½)` throughout;
//! - *fixed*: the same, up to a change point `k` (uniform over the gaps between runs),
//!   and no failure at all from run `k` on.
//!
//! Both marginal likelihoods are Beta-Binomial, so the Bayes factor is exact:
//! `BF = mean_k B(a+F, b+N_k−F) / B(a+F, b+N−F)` over the change points after the last
//! failure (`N_k`: attempts before run `k`). A clean streak counts as evidence only in
//! proportion to how unlikely it is at the rate the test showed before it, and the average
//! over every possible change point charges for having looked at all of them. The prior
//! probability of a fix is `π = 1 − exp(−λ·D)` for a history of `D` days, with `λ` fixes
//! per test and day learned from all tests at once, so a short history leaves little room
//! for one; the posterior probability of a fix is `π·BF / (π·BF + 1 − π)`.
//!
//! Calling tests `fixed` is then a multiple-testing decision: [`select`] takes the largest
//! set, most certain first, whose mean posterior probability of *still flaky* (the
//! expected share of false fixes, a Bayesian FDR) stays within the level, each of them at
//! least 80% likely fixed.

use statrs::function::beta::ln_beta;

/// Jeffreys prior on the flake rate.
const A: f64 = 0.5;
const B: f64 = 0.5;

/// One run of the test: attempts and failed attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Obs {
    pub attempts: u32,
    pub failures: u32,
}

/// What the change-point model found for one test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FixEvidence {
    /// Bayes factor of "fixed after some run" against "the same rate throughout".
    pub bayes_factor: f64,
    /// The first clean run after the last failure: the earliest the fix can be.
    pub clean_from: usize,
    /// Attempts from `clean_from` on.
    pub clean_attempts: u32,
}

/// `ln` of the Beta-Binomial probability of one sequence with `f` failures in `n` attempts.
fn ln_marginal(f: u32, n: u32) -> f64 {
    ln_beta(A + f64::from(f), B + f64::from(n - f)) - ln_beta(A, B)
}

/// The Bayes factor for a fix, or `None` when no run after the last failure exists (or the
/// test never failed: nothing to be fixed).
pub(crate) fn fix_evidence(series: &[Obs]) -> Option<FixEvidence> {
    let last_fail = series.iter().rposition(|o| o.failures > 0)?;
    if last_fail + 1 >= series.len() {
        return None;
    }
    let f: u32 = series.iter().map(|o| o.failures).sum();
    let n: u32 = series.iter().map(|o| o.attempts).sum();
    let ln_constant = ln_marginal(f, n);
    // Change points k = 1..R−1 (rate 0 from run k on); only k > last_fail fit the data.
    let mut before: u32 = series[..=last_fail].iter().map(|o| o.attempts).sum();
    let mut terms = Vec::with_capacity(series.len() - last_fail - 1);
    for o in &series[last_fail + 1..] {
        terms.push(ln_marginal(f, before) - ln_constant);
        before += o.attempts;
    }
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = terms.iter().map(|t| (t - max).exp()).sum();
    let ln_bf = max + sum.ln() - ((series.len() - 1) as f64).ln();
    Some(FixEvidence {
        bayes_factor: ln_bf.exp(),
        clean_from: last_fail + 1,
        clean_attempts: n - series[..=last_fail].iter().map(|o| o.attempts).sum::<u32>(),
    })
}

/// Posterior probability of a fix at prior share `prior`.
pub(crate) fn posterior(bayes_factor: f64, prior: f64) -> f64 {
    if bayes_factor.is_infinite() {
        return 1.0;
    }
    let odds = prior / (1.0 - prior) * bayes_factor;
    odds / (1.0 + odds)
}

/// Fixes per test and day assumed before the history says otherwise (about one flaky
/// test in seven fixed a month), and how many fixes' worth of weight that guess has.
const DEFAULT_FIX_RATE: f64 = 0.005;
const PRIOR_FIXES: f64 = 2.0;

/// Prior probability that a test was fixed within `days`, at `fix_rate` fixes per test and
/// day: a short history gives little room for a fix, whatever its clean streak.
pub(crate) fn prior_within(fix_rate: f64, days: f64) -> f64 {
    (1.0 - (-fix_rate * days.max(0.0)).exp()).clamp(1e-6, 0.5)
}

/// The rate of fixes per test and day among tests with flaky evidence, learned from all of
/// them at once (empirical Bayes by EM: each test's posterior probability of a fix over its
/// days under judgement), shrunk towards [`DEFAULT_FIX_RATE`] so that a history with few
/// tests does not decide alone. `tests`: (Bayes factor, days) per test.
pub(crate) fn learn_fix_rate(tests: &[(f64, f64)]) -> f64 {
    let days: f64 = tests.iter().map(|t| t.1.max(0.0)).sum();
    let mut rate = DEFAULT_FIX_RATE;
    for _ in 0..100 {
        let fixes: f64 = tests
            .iter()
            .map(|&(bf, d)| posterior(bf, prior_within(rate, d)))
            .sum();
        let next = (fixes + PRIOR_FIXES) / (days + PRIOR_FIXES / DEFAULT_FIX_RATE);
        if (next - rate).abs() < 1e-9 {
            return next;
        }
        rate = next;
    }
    rate
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(pattern: &[(u32, u32)]) -> Vec<Obs> {
        pattern
            .iter()
            .map(|&(attempts, failures)| Obs { attempts, failures })
            .collect()
    }

    /// `flaky` runs failing every `every`th, then `clean` clean runs.
    fn history(flaky: usize, every: usize, clean: usize) -> Vec<Obs> {
        let mut v: Vec<(u32, u32)> = (0..flaky)
            .map(|i| (1, u32::from(i % every == every - 1)))
            .collect();
        v.extend(std::iter::repeat_n((1, 0), clean));
        runs(&v)
    }

    #[test]
    fn a_long_clean_streak_after_frequent_failures_is_a_fix() {
        // 20% flaky for 200 runs, then 100 clean runs: 20 expected failures missing.
        let e = fix_evidence(&history(200, 5, 100)).unwrap();
        assert!(e.bayes_factor > 1e4, "{e:?}");
        assert_eq!(e.clean_from, 200);
        assert_eq!(e.clean_attempts, 100);
        assert!(posterior(e.bayes_factor, 0.2) > 0.99);
    }

    #[test]
    fn a_streak_a_still_flaky_test_produces_by_chance_is_not() {
        // 2% flaky over 500 runs, 40 clean at the end: < 1 expected failure missing.
        let e = fix_evidence(&history(500, 50, 40)).unwrap();
        assert!(e.bayes_factor < 1.0, "{e:?}");
        assert!(posterior(e.bayes_factor, 0.2) < 0.2);
    }

    #[test]
    fn more_missing_failures_more_evidence() {
        let bf = |clean| fix_evidence(&history(300, 10, clean)).unwrap().bayes_factor;
        assert!(bf(20) < bf(60));
        assert!(bf(60) < bf(120));
    }

    #[test]
    fn nothing_to_judge_without_failures_or_runs_after_the_last() {
        assert!(fix_evidence(&runs(&[(1, 0), (1, 0)])).is_none());
        assert!(fix_evidence(&runs(&[(1, 0), (2, 1)])).is_none());
        assert!(fix_evidence(&[]).is_none());
    }

    #[test]
    fn in_run_attempts_count_as_evidence() {
        // Same runs, but each clean run had 3 attempts: more clean attempts, more evidence.
        let mut three = history(200, 5, 30);
        for o in &mut three[200..] {
            o.attempts = 3;
        }
        let one = fix_evidence(&history(200, 5, 30)).unwrap();
        let more = fix_evidence(&three).unwrap();
        assert!(more.bayes_factor > one.bayes_factor);
    }

    #[test]
    fn the_fix_rate_follows_the_clear_fixes_and_a_short_history_gives_little_room() {
        let month = |bfs: &[f64]| -> Vec<(f64, f64)> { bfs.iter().map(|&b| (b, 30.0)).collect() };
        let few = learn_fix_rate(&month(&[1e6, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]));
        let mut many_bfs = vec![1e6; 20];
        many_bfs.extend([0.1; 40]);
        let many = learn_fix_rate(&month(&many_bfs));
        assert!(few < many, "{few} {many}");
        // A third of 60 tests fixed within 30 days: about 20 / 1800 test-days.
        assert!((many - 20.0 / 1800.0).abs() < 0.003, "{many}");
        // Nothing learned: the default.
        assert_eq!(learn_fix_rate(&[]), DEFAULT_FIX_RATE);
        assert!(prior_within(many, 5.0) < prior_within(many, 30.0));
        assert!(prior_within(1.0, 1000.0) <= 0.5);
    }

    #[test]
    fn a_lucky_streak_early_in_a_short_history_is_not_a_fix() {
        // 25% flaky over 5 days (~40 runs), then 17 clean runs: 0.75^17 = 0.8% by chance,
        // a streak some test among many shows; the 5 days leave little room for a fix.
        let e = fix_evidence(&history(40, 4, 17)).unwrap();
        let p = posterior(e.bayes_factor, prior_within(DEFAULT_FIX_RATE, 5.0));
        assert!(p < 0.9, "{e:?} {p}");
    }
}
