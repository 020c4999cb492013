//! Small statistics helpers.

use statrs::distribution::{Beta, ContinuousCDF};

/// Posterior mean and 95% equal-tailed interval of a rate from `failures` out of `trials`,
/// with the Jeffreys prior Beta(½, ½): honest for small counts, close to f/n for large.
pub fn beta_interval(failures: u32, trials: u32) -> (f64, f64, f64) {
    let f = f64::from(failures.min(trials));
    let n = f64::from(trials);
    let a = f + 0.5;
    let b = n - f + 0.5;
    let mean = a / (a + b);
    match Beta::new(a, b) {
        Ok(beta) => {
            // The interval's ends are pinned at 0 or 1 when nothing (or everything) failed.
            let low = if failures == 0 {
                0.0
            } else {
                beta.inverse_cdf(0.025)
            };
            let high = if failures >= trials {
                1.0
            } else {
                beta.inverse_cdf(0.975)
            };
            (mean, low, high)
        }
        Err(_) => (mean, 0.0, 1.0),
    }
}

/// The largest probability of being wrong that any one selected test may have: a verdict
/// that acts on CI (a quarantine released, a failure forgiven) must hold for the test
/// itself, not only on average.
const MAX_FALSE: f64 = 0.2;

/// Which tests to call something (fixed, flaky), given each one's posterior probability
/// that the call is right: the largest set, most certain first, whose expected share of
/// wrong calls (a Bayesian false discovery rate) is at most `level`, each test in it at
/// least 80% likely right.
pub(crate) fn bayes_fdr_select(p_right: &[f64], level: f64) -> Vec<bool> {
    bayes_fdr_extend(p_right, &vec![false; p_right.len()], level)
}

/// [`bayes_fdr_select`] that keeps the tests `chosen` already holds and adds others, most
/// certain first, while the whole set's expected share of wrong calls stays within `level`:
/// a later round of judging never takes back a call that earlier ones built on.
pub(crate) fn bayes_fdr_extend(p_right: &[f64], chosen: &[bool], level: f64) -> Vec<bool> {
    let mut chosen = chosen.to_vec();
    let held = chosen.iter().filter(|&&c| c).count();
    let mut false_sum: f64 = (0..p_right.len())
        .filter(|&i| chosen[i])
        .map(|i| 1.0 - p_right[i])
        .sum();
    let mut order: Vec<usize> = (0..p_right.len()).filter(|&i| !chosen[i]).collect();
    order.sort_by(|&a, &b| p_right[b].total_cmp(&p_right[a]).then(a.cmp(&b)));
    for (taken, i) in (held..).zip(order) {
        let q = 1.0 - p_right[i];
        if q > MAX_FALSE || (false_sum + q) / (taken + 1) as f64 > level {
            break;
        }
        false_sum += q;
        chosen[i] = true;
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::{bayes_fdr_extend, bayes_fdr_select, beta_interval};

    #[test]
    fn extending_a_selection_keeps_what_it_held() {
        // B (0.92) was chosen; C rose to 0.93 once B was known flaky. Selecting afresh
        // would drop B for C, though C's rise rests on B.
        let p = [0.99, 0.92, 0.93];
        assert_eq!(bayes_fdr_select(&p, 0.05), vec![true, false, true]);
        assert_eq!(
            bayes_fdr_extend(&p, &[true, true, false], 0.05),
            vec![true, true, false]
        );
        // With room in the budget, C is added.
        assert_eq!(
            bayes_fdr_extend(&[0.999, 0.99, 0.95], &[true, true, false], 0.05),
            vec![true, true, true]
        );
    }

    #[test]
    fn interval_brackets_the_rate_and_narrows_with_data() {
        let (m, lo, hi) = beta_interval(5, 100);
        assert!(lo < 0.05 && 0.05 < hi, "{lo} {hi}");
        assert!((m - 5.5 / 101.0).abs() < 1e-12);
        let (_, lo2, hi2) = beta_interval(50, 1000);
        assert!(hi2 - lo2 < hi - lo);
        let (_, lo0, hi0) = beta_interval(0, 50);
        assert_eq!(lo0, 0.0);
        assert!(hi0 < 0.06 && hi0 > 0.0);
        assert_eq!(beta_interval(0, 0).2, 1.0);
    }

    #[test]
    fn selection_keeps_the_expected_false_share_within_the_level() {
        let p = [0.999, 0.2, 0.97, 0.92, 0.6, 0.99];
        let chosen = bayes_fdr_select(&p, 0.05);
        // 0.999, 0.99, 0.97 (mean false 0.0137), 0.92 (0.030); 0.6 is below 80% alone.
        assert_eq!(chosen, vec![true, false, true, true, false, true]);
        // A loose level still asks each test to be 80% likely right.
        assert_eq!(bayes_fdr_select(&[0.95, 0.75], 0.5), vec![true, false]);
        // A strict level takes only the near-certain: 0.99 would make the mean 0.0055.
        assert_eq!(
            bayes_fdr_select(&p, 0.005),
            vec![true, false, false, false, false, false]
        );
        assert!(bayes_fdr_select(&[0.4], 1.0).iter().all(|c| !c));
    }
}
