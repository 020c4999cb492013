//! The scan: the window's runs, and every result in them counted per test and job.
//!
//! Failures are rare, so they are read first; the big scan over results then only counts,
//! and keeps more than counts (per commit, and each run in order) only for tests that
//! failed somewhere in the window.

use std::collections::HashMap;

use super::changepoint::Obs;
use super::ScoreOptions;
use crate::error::Result;
use crate::store::{RunFilter, RunRow, Store};

/// What the scan found, for the stages after it.
pub(crate) struct History {
    pub as_of: i64,
    pub since: i64,
    /// Job names, sorted; `job_of` indexes them.
    pub jobs: Vec<String>,
    /// Per run: its job.
    pub job_of: Vec<u32>,
    /// Per run: its commit, as a dense id.
    pub commit_of: Vec<u32>,
    pub accs: FastMap<(i64, u32), Acc>,
    /// (test, job, commit) where the test failed at least once.
    pub cells: FastMap<(i64, u32, u32), Cell>,
    /// For tests that failed somewhere: each run (position, attempts, failures), in order.
    pub series: FastMap<(i64, u32), Vec<(usize, Obs)>>,
    /// Per run: the tests that failed it.
    pub failed_tests: Vec<Vec<i64>>,
    pub runs: Vec<RunRow>,
}

/// A (test, job, commit) where the test failed at least once.
#[derive(Default)]
pub(crate) struct Cell {
    pub(crate) runs: u32,
    pub(crate) attempts: u32,
    pub(crate) failures: u32,
    pub(crate) first_run: Option<usize>,
    pub(crate) fingerprints: Vec<i64>,
    /// Run positions where it failed.
    pub(crate) failed_runs: Vec<usize>,
}

/// What one scan thread gathered.
struct Partial {
    series: FastMap<(i64, u32), Vec<(usize, Obs)>>,
    accs: FastMap<(i64, u32), Acc>,
    cells: FastMap<(i64, u32, u32), Cell>,
    failed_tests: Vec<Vec<i64>>,
}

/// Test ids are already uniform hashes, so a multiply-rotate hasher is enough and far
/// cheaper than SipHash on the scan's hot path.
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

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

pub(crate) type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FastHasher>>;

#[derive(Default)]
pub(crate) struct Acc {
    pub(crate) runs: u32,
    pub(crate) attempts: u32,
    pub(crate) failures: u32,
    pub(crate) failed_runs: u32,
    pub(crate) duration_ms: i64,
    pub(crate) in_run_reruns: u32,
    /// Latest run (by start) with its outcome.
    pub(crate) latest: Option<(i64, usize, u8)>,
    /// Attempts after the last failure seen in the window.
    pub(crate) attempts_after_last_failure: u32,
    pub(crate) last_failure_at: Option<i64>,
    /// Start of the newest run with a result (not skipped).
    pub(crate) last_seen: Option<i64>,
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
        self.last_seen = self.last_seen.max(o.last_seen);
    }
}

/// The scan: every result of the window counted per (test, job), and per (test, job,
/// commit) where the test failed somewhere.
pub(crate) fn gather(store: &Store, opts: &ScoreOptions) -> Result<History> {
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
            series: FastMap::default(),
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
            acc.last_seen = acc.last_seen.max(Some(started));
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
                part.series.entry((r.test_id, job)).or_default().push((
                    pos,
                    Obs {
                        attempts: r.attempts,
                        failures: r.failures.min(r.attempts),
                    },
                ));
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
    let mut series: FastMap<(i64, u32), Vec<(usize, Obs)>> = FastMap::default();
    let mut failed_tests: Vec<Vec<i64>> = Vec::with_capacity(runs.len());
    for part in parts {
        failed_tests.extend(part.failed_tests);
        // Parts cover consecutive ranges of runs, in order: the series stay in run order.
        for (key, s) in part.series {
            series.entry(key).or_default().extend(s);
        }
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
    let jobs: Vec<String> = jobs.into_iter().map(str::to_string).collect();
    Ok(History {
        as_of,
        since,
        jobs,
        job_of,
        commit_of,
        accs,
        cells,
        series,
        failed_tests,
        runs,
    })
}
