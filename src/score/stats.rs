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

#[cfg(test)]
mod tests {
    use super::beta_interval;

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
}
