//! Tests that fail together: pairs of tests (in the same job) that fail in the same job
//! attempt far more often than chance, merged into groups.
//!
//! A run's failed set is every test with a failed attempt in it — tests that failed the
//! run and tests that passed on an in-run rerun alike (`Store::failures`). For tests a and
//! b of one job with `N` runs, `n_a` and `n_b` failing runs and `k` runs where both failed,
//! the chance that they share `k` or more failing runs if they fail independently is the
//! hypergeometric tail `P(X ≥ k)`, X ~ Hypergeometric(N, n_a, n_b). A pair qualifies when
//! `k ≥ 3`, the lift `k·N / (n_a·n_b)` is at least 3, and the tail times the number of
//! pairs tested (Bonferroni) is below 0.01. Qualifying pairs are merged into groups
//! (connected components).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use statrs::function::gamma::ln_gamma;

use super::{round, CoFailures};
use crate::error::Result;
use crate::model::TestIdentity;
use crate::score::Scored;
use crate::store::Store;

/// Runs with more failing tests than this are left out: a broken build, not a shared flake.
pub const MAX_FAILED_PER_RUN: usize = 50;
const MIN_TOGETHER: u32 = 3;
const MIN_LIFT: f64 = 3.0;
const ALPHA: f64 = 0.01;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoFailureMember {
    pub test_id: String,
    pub classname: String,
    pub name: String,
    /// Runs of the job in which it failed (any attempt).
    pub failed_runs: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoFailurePair {
    pub a: String,
    pub b: String,
    /// Runs where both failed.
    pub together: u32,
    /// Expected under independence: `n_a · n_b / N`.
    pub expected: f64,
    pub lift: f64,
    /// Bonferroni-adjusted hypergeometric tail, capped at 1.
    pub p_value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoFailureGroup {
    pub job: String,
    /// Runs of the job looked at.
    pub runs: u32,
    pub members: Vec<CoFailureMember>,
    /// Runs in which every member failed.
    pub all_together: u32,
    /// Expected number of such runs if the members failed independently.
    pub all_expected: f64,
    /// Runs in which at least two members failed.
    pub two_or_more: u32,
    /// The qualifying pairs, strongest first.
    pub pairs: Vec<CoFailurePair>,
}

/// ln C(n, k).
fn ln_choose(n: u32, k: u32) -> f64 {
    ln_gamma(f64::from(n) + 1.0) - ln_gamma(f64::from(k) + 1.0) - ln_gamma(f64::from(n - k) + 1.0)
}

/// P(X ≥ k) for X ~ Hypergeometric(population n, successes a, draws b).
pub(crate) fn hypergeometric_tail(n: u32, a: u32, b: u32, k: u32) -> f64 {
    let hi = a.min(b);
    if k > hi {
        return 0.0;
    }
    let lo = (a + b).saturating_sub(n);
    if k <= lo {
        return 1.0;
    }
    let denom = ln_choose(n, b);
    let mut p = 0.0;
    for x in k..=hi {
        if b - x > n - a {
            continue;
        }
        p += (ln_choose(a, x) + ln_choose(n - a, b - x) - denom).exp();
    }
    p.min(1.0)
}

struct UnionFind(Vec<usize>);

impl UnionFind {
    fn find(&mut self, x: usize) -> usize {
        let mut r = x;
        while self.0[r] != r {
            r = self.0[r];
        }
        let mut y = x;
        while self.0[y] != r {
            let next = self.0[y];
            self.0[y] = r;
            y = next;
        }
        r
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            let (lo, hi) = (ra.min(rb), ra.max(rb));
            self.0[hi] = lo;
        }
    }
}

pub(crate) fn co_failures(store: &Store, cur: &Scored) -> Result<CoFailures> {
    let runs = cur.runs();
    let keys: Vec<i64> = runs.iter().map(|r| r.run_key).collect();
    let pos_of: HashMap<i64, usize> = keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
    let mut failed: Vec<BTreeSet<i64>> = vec![BTreeSet::new(); runs.len()];
    for f in store.failures(&keys)? {
        failed[pos_of[&f.run_key]].insert(f.test_id);
    }

    // Per job: runs looked at, failing runs per test, runs per pair.
    let mut runs_of_job: BTreeMap<&str, u32> = BTreeMap::new();
    let mut test_runs: HashMap<(&str, i64), u32> = HashMap::new();
    let mut pair_runs: HashMap<(&str, i64, i64), u32> = HashMap::new();
    let mut left_out = 0u32;
    for (run, set) in runs.iter().zip(&failed) {
        if set.len() > MAX_FAILED_PER_RUN {
            left_out += 1;
            continue;
        }
        let job = run.job.as_str();
        *runs_of_job.entry(job).or_default() += 1;
        let ids: Vec<i64> = set.iter().copied().collect();
        for (i, &a) in ids.iter().enumerate() {
            *test_runs.entry((job, a)).or_default() += 1;
            for &b in &ids[i + 1..] {
                *pair_runs.entry((job, a, b)).or_default() += 1;
            }
        }
    }
    // Pairs tested: every pair of tests that failed at least once in the same job.
    let mut per_job_tests: HashMap<&str, u64> = HashMap::new();
    for (job, _) in test_runs.keys() {
        *per_job_tests.entry(job).or_default() += 1;
    }
    let tested: f64 = per_job_tests
        .values()
        .map(|&k| (k * k.saturating_sub(1) / 2) as f64)
        .sum::<f64>()
        .max(1.0);

    let mut pairs: Vec<(&str, i64, i64, CoFailurePair)> = Vec::new();
    for (&(job, a, b), &k) in &pair_runs {
        if k < MIN_TOGETHER {
            continue;
        }
        let n = runs_of_job[job];
        let (na, nb) = (test_runs[&(job, a)], test_runs[&(job, b)]);
        let expected = f64::from(na) * f64::from(nb) / f64::from(n);
        let lift = f64::from(k) / expected;
        if lift < MIN_LIFT {
            continue;
        }
        let p = (hypergeometric_tail(n, na, nb, k) * tested).min(1.0);
        if p >= ALPHA {
            continue;
        }
        pairs.push((
            job,
            a,
            b,
            CoFailurePair {
                a: TestIdentity(a).hex(),
                b: TestIdentity(b).hex(),
                together: k,
                expected: round(expected, 4),
                lift: round(lift, 2),
                p_value: sig(p),
            },
        ));
    }
    pairs.sort_by(|x, y| (x.0, x.1, x.2).cmp(&(y.0, y.1, y.2)));

    // Connected components over (job, test).
    let mut nodes: BTreeMap<(&str, i64), usize> = BTreeMap::new();
    for (job, a, b, _) in &pairs {
        for t in [*a, *b] {
            let next = nodes.len();
            nodes.entry((job, t)).or_insert(next);
        }
    }
    let mut uf = UnionFind((0..nodes.len()).collect());
    for (job, a, b, _) in &pairs {
        uf.union(nodes[&(*job, *a)], nodes[&(*job, *b)]);
    }
    let mut comps: BTreeMap<usize, Vec<(&str, i64)>> = BTreeMap::new();
    let node_list: Vec<((&str, i64), usize)> = nodes.iter().map(|(k, v)| (*k, *v)).collect();
    for (key, ix) in node_list {
        let root = uf.find(ix);
        comps.entry(root).or_default().push(key);
    }
    let all_ids: Vec<i64> = nodes.keys().map(|(_, t)| *t).collect();
    let names = store.tests_by_id(&all_ids)?;

    let mut groups: Vec<CoFailureGroup> = Vec::new();
    for members in comps.into_values() {
        let job = members[0].0;
        let n = runs_of_job[job];
        let ids: BTreeSet<i64> = members.iter().map(|(_, t)| *t).collect();
        let mut all_together = 0u32;
        let mut two_or_more = 0u32;
        for (run, set) in runs.iter().zip(&failed) {
            if run.job != job || set.len() > MAX_FAILED_PER_RUN {
                continue;
            }
            let c = ids.iter().filter(|t| set.contains(t)).count();
            if c == ids.len() {
                all_together += 1;
            }
            if c >= 2 {
                two_or_more += 1;
            }
        }
        let all_expected = ids.iter().fold(f64::from(n), |acc, t| {
            acc * f64::from(test_runs[&(job, *t)]) / f64::from(n)
        });
        let mut ms: Vec<CoFailureMember> = ids
            .iter()
            .map(|t| {
                let row = names.get(t);
                CoFailureMember {
                    test_id: TestIdentity(*t).hex(),
                    classname: row.map(|r| r.classname.clone()).unwrap_or_default(),
                    name: row.map(|r| r.name.clone()).unwrap_or_default(),
                    failed_runs: test_runs[&(job, *t)],
                }
            })
            .collect();
        ms.sort_by(|a, b| {
            (&a.classname, &a.name, &a.test_id).cmp(&(&b.classname, &b.name, &b.test_id))
        });
        let mut ps: Vec<CoFailurePair> = pairs
            .iter()
            .filter(|(j, a, _, _)| *j == job && ids.contains(a))
            .map(|(_, _, _, p)| p.clone())
            .collect();
        ps.sort_by(|x, y| {
            y.together
                .cmp(&x.together)
                .then(y.lift.total_cmp(&x.lift))
                .then_with(|| (&x.a, &x.b).cmp(&(&y.a, &y.b)))
        });
        groups.push(CoFailureGroup {
            job: job.to_string(),
            runs: n,
            members: ms,
            all_together,
            all_expected: sig(all_expected),
            two_or_more,
            pairs: ps,
        });
    }
    groups.sort_by(|a, b| {
        b.two_or_more
            .cmp(&a.two_or_more)
            .then(b.members.len().cmp(&a.members.len()))
            .then_with(|| a.job.cmp(&b.job))
            .then_with(|| a.members[0].test_id.cmp(&b.members[0].test_id))
    });
    Ok(CoFailures {
        runs: runs_of_job.values().sum(),
        runs_left_out: left_out,
        max_failed_per_run: MAX_FAILED_PER_RUN as u32,
        criterion: format!(
            "failed together in at least {MIN_TOGETHER} runs of the same job, at least {MIN_LIFT}× as often as independent failures would, with a Bonferroni-adjusted hypergeometric p < {ALPHA}"
        ),
        groups,
    })
}

/// Round to 3 significant digits, for small probabilities and expectations.
fn sig(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return 0.0;
    }
    let digits = 2 - x.abs().log10().floor() as i32;
    round(x, digits.clamp(0, 300))
}

#[cfg(test)]
mod tests {
    use super::hypergeometric_tail;

    #[test]
    fn tail_matches_small_cases() {
        // N=10, a=2, b=2: P(X>=1) = 1 - C(8,2)/C(10,2) = 1 - 28/45.
        let p = hypergeometric_tail(10, 2, 2, 1);
        assert!((p - 17.0 / 45.0).abs() < 1e-9, "{p}");
        // P(X>=2) = 1/45.
        assert!((hypergeometric_tail(10, 2, 2, 2) - 1.0 / 45.0).abs() < 1e-9);
        assert_eq!(hypergeometric_tail(10, 2, 2, 3), 0.0);
        assert_eq!(hypergeometric_tail(10, 2, 2, 0), 1.0);
    }
}
