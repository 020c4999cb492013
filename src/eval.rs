//! How well the scorer and the impact model match a simulated history's known truth.

use std::collections::HashMap;

use serde::Serialize;

use crate::score::{Scored, Status};
use crate::sim::{Kind, Truth};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Evaluation {
    /// Tests (per job) flagged `flaky`.
    pub flagged: usize,
    /// Of those, really flaky.
    pub true_positives: usize,
    pub precision: f64,
    /// Flaky tests that failed at least once through flakiness.
    pub observable_flaky: usize,
    pub recall: f64,
    /// Flagged tests that are really broken-sometimes or platform-broken: the trap.
    pub breakages_flagged: usize,
    /// Spearman rank correlation between estimated and true retries/day, over the
    /// flagged tests that are really flaky.
    pub spearman: f64,
    pub estimated_retries_per_day: f64,
    pub true_retries_per_day: f64,
    /// `estimated / true − 1` of the two totals above.
    pub total_error: f64,
    /// Tests scored `fixed` that are still flaky (never fixed, or flaky through a shared
    /// cause that stayed).
    pub false_fixed: usize,
    /// Tests scored `fixed`.
    pub scored_fixed: usize,
    /// Real fixes visible enough to find: ≥ 4 flaky failures expected after the fix.
    pub visible_fixes: usize,
    /// Of those, scored `fixed`.
    pub fixes_found: usize,
}

/// Compare a score with the truth of the simulation that produced the history.
pub fn evaluate(scored: &Scored, truth: &Truth) -> Evaluation {
    let by_key: HashMap<(&str, &str), &crate::sim::TestTruth> = truth
        .tests
        .iter()
        .map(|t| ((t.id.as_str(), t.job.as_str()), t))
        .collect();
    let flagged: Vec<_> = scored
        .tests
        .iter()
        .filter(|t| t.status == Status::Flaky)
        .collect();
    let mut pairs: Vec<(f64, f64)> = Vec::new();
    let mut tp = 0;
    let mut breakages = 0;
    for t in &flagged {
        match by_key.get(&(t.test_id.as_str(), t.job.as_str())) {
            Some(tt) if tt.kind == Kind::Flaky => {
                tp += 1;
                pairs.push((t.retries_per_day, tt.true_retries_per_day));
            }
            Some(tt) if matches!(tt.kind, Kind::BrokenSometimes | Kind::PlatformBroken) => {
                breakages += 1
            }
            _ => {}
        }
    }
    let observable: Vec<_> = truth
        .tests
        .iter()
        .filter(|t| t.kind == Kind::Flaky && t.flaky_failures > 0)
        .collect();
    let status_of = |t: &crate::sim::TestTruth| {
        scored
            .tests
            .iter()
            .find(|s| s.test_id == t.id && s.job == t.job)
            .map(|s| s.status)
    };
    // A fixed test scored `fixed` was found too: it was told apart as flaky, then fixed.
    let found = observable
        .iter()
        .filter(|t| {
            let found = match status_of(t) {
                Some(Status::Flaky) => true,
                Some(Status::Fixed) => t.fixed(),
                _ => false,
            };
            if !found {
                tracing::debug!(job = %t.job, test = %t.name, id = %t.id, flaky_failures = t.flaky_failures, status = ?status_of(t), "flaky test missed");
            }
            found
        })
        .count();
    let scored_fixed: Vec<_> = scored
        .tests
        .iter()
        .filter(|t| t.status == Status::Fixed)
        .collect();
    let false_fixed = scored_fixed
        .iter()
        .filter(|s| {
            let wrong = by_key
                .get(&(s.test_id.as_str(), s.job.as_str()))
                .is_some_and(|t| t.kind == Kind::Flaky && !t.fixed());
            tracing::debug!(wrong, p = ?s.fix_posterior, job = %s.job, test = %s.readable(), reason = %s.reason, "scored fixed");
            wrong
        })
        .count();
    let visible: Vec<_> = truth
        .tests
        .iter()
        .filter(|t| t.fixed() && t.flaky_failures > 0 && t.expected_failures_after_fix >= 4.0)
        .collect();
    let fixes_found = visible
        .iter()
        .filter(|t| {
            let found = status_of(t) == Some(Status::Fixed);
            if !found {
                let s = scored
                    .tests
                    .iter()
                    .find(|s| s.test_id == t.id && s.job == t.job);
                tracing::debug!(
                    job = %t.job,
                    test = %t.name,
                    expected = t.expected_failures_after_fix,
                    status = ?s.map(|s| s.status),
                    p = ?s.and_then(|s| s.fix_posterior),
                    "real fix not found"
                );
            }
            found
        })
        .count();
    let estimated: f64 = pairs.iter().map(|p| p.0).sum();
    let real: f64 = pairs.iter().map(|p| p.1).sum();
    Evaluation {
        flagged: flagged.len(),
        true_positives: tp,
        precision: ratio(tp, flagged.len()),
        observable_flaky: observable.len(),
        recall: ratio(found, observable.len()),
        breakages_flagged: breakages,
        spearman: spearman(&pairs),
        estimated_retries_per_day: estimated,
        true_retries_per_day: real,
        total_error: if real > 0.0 {
            estimated / real - 1.0
        } else {
            0.0
        },
        false_fixed,
        scored_fixed: scored_fixed.len(),
        visible_fixes: visible.len(),
        fixes_found,
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

/// Average ranks (ties share their mean rank).
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            ranks[order[k]] = rank;
        }
        i = j + 1;
    }
    ranks
}

/// Spearman's rank correlation: Pearson's correlation of the ranks.
pub fn spearman(pairs: &[(f64, f64)]) -> f64 {
    if pairs.len() < 2 {
        return 0.0;
    }
    let a = ranks(&pairs.iter().map(|p| p.0).collect::<Vec<_>>());
    let b = ranks(&pairs.iter().map(|p| p.1).collect::<Vec<_>>());
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(&b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    if va == 0.0 || vb == 0.0 {
        0.0
    } else {
        cov / (va * vb).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::spearman;

    #[test]
    fn spearman_of_monotone_and_reversed() {
        let up = [(1.0, 10.0), (2.0, 20.0), (3.0, 35.0), (4.0, 36.0)];
        assert!((spearman(&up) - 1.0).abs() < 1e-12);
        let down = [(1.0, 4.0), (2.0, 3.0), (3.0, 2.0), (4.0, 1.0)];
        assert!((spearman(&down) + 1.0).abs() < 1e-12);
        let ties = [(1.0, 1.0), (1.0, 2.0), (2.0, 3.0)];
        assert!(spearman(&ties) > 0.8);
    }
}
