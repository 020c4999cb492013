//! The scan: the window's runs, and every result in them counted per test and job.
//!
//! Failures are rare, so they are read first; the big scan over results then only counts,
//! and keeps more than counts (per commit, and each run in order) only for tests that
//! failed somewhere in the window.
//!
//! Whole days inside the window that are rolled up are read from the daily aggregate
//! (`store/aggregate.rs`) instead: one row per (day, job, test), plus the runs where the
//! test's result was not one clean pass, from which the per-run detail of a test that
//! failed somewhere is rebuilt exactly. Only the window's partial edge days and days
//! written since their rollup are scanned raw. The result is the same `History` either
//! way (`ScoreOptions::raw_scan` is the oracle).

use foldhash::{HashMap, HashMapExt};

use super::changepoint::Obs;
use super::ScoreOptions;
use crate::error::Result;
use crate::store::{day_of, decode_odd, OddRun, ResultRow, RunFilter, RunRow, Store, ABSENT};

/// What the scan found, for the stages after it.
pub(crate) struct History {
    pub as_of: i64,
    pub since: i64,
    /// Runs (of the branch and job asked about) started before `since`: the history covers
    /// the whole window, and its first run inside it says nothing about where it starts.
    pub covers_window: bool,
    /// Per job (as `jobs`): the same, for that job's own runs. A job that started inside
    /// the window has its per-day figures over its own days, not diluted by the window's.
    pub job_covers_window: Vec<bool>,
    /// Job names, sorted; `job_of` indexes them.
    pub jobs: Vec<String>,
    /// Per run: its job.
    pub job_of: Vec<u32>,
    /// Per run: its commit, as a dense id.
    pub commit_of: Vec<u32>,
    pub accs: FastMap<(i64, u32), Acc>,
    /// (test, job, commit) where the test failed at least once.
    pub cells: FastMap<(i64, u32, u32), Cell>,
    /// For tests that failed somewhere: each run (position, attempts, failures) of each
    /// job they failed in, in order; in their other jobs, the runs on commits they failed
    /// on, which answer whether a failure's matrix twin passed without a row lookup each.
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
    /// (run position, test) where the test failed the run.
    failed_tests: Vec<(usize, i64)>,
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

pub(crate) type FastMap<K, V> =
    std::collections::HashMap<K, V, std::hash::BuildHasherDefault<FastHasher>>;

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

/// The attempts of one CI run follow each other: an attempt that starts before the attempt
/// it re-runs (a runner's clock behind, or a backfill that stored attempt 2 first without a
/// start time, so it got the earlier ingest time) is read as starting with it, and sorts
/// after it. Otherwise its failed attempt 1 would seem to come after the passing retry, and
/// the retry it caused would be lost. Only this reading changes, and only within the stored
/// start's day (whose aggregate row counts the run); the stored start does not.
pub(crate) fn attempts_in_order(runs: &mut [RunRow]) {
    let mut by_run: Vec<usize> = (0..runs.len()).collect();
    by_run.sort_by(|&a, &b| {
        let (x, y) = (&runs[a], &runs[b]);
        (&x.job, &x.run_id, &x.commit, x.attempt).cmp(&(&y.job, &y.run_id, &y.commit, y.attempt))
    });
    let mut moved = false;
    for pair in by_run.windows(2) {
        let (prev, next) = (&runs[pair[0]], &runs[pair[1]]);
        let same_run =
            prev.job == next.job && prev.run_id == next.run_id && prev.commit == next.commit;
        // Within the day only: the daily aggregate counts a run on its stored start's day.
        if same_run
            && next.started_at < prev.started_at
            && day_of(next.started_at) == day_of(prev.started_at)
        {
            runs[pair[1]].started_at = runs[pair[0]].started_at;
            moved = true;
        }
    }
    if moved {
        runs.sort_by(RunRow::stored_order);
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
    let filter = RunFilter {
        since: Some(since),
        until: Some(as_of),
        branch: opts.branch.clone(),
        job: opts.job.clone(),
    };
    let mut runs = store.runs(&filter)?;
    let covers_window = store.has_runs_before(&filter)?;
    attempts_in_order(&mut runs);
    // A day's aggregate row counts every run of that day: the days of excluded runs are
    // scanned raw instead, where each run can be left out on its own.
    let mut excluded_days = Vec::new();
    if !opts.exclude_runs.is_empty() {
        runs.retain(|r| {
            let keep = !opts.exclude_runs.contains(&r.run_key);
            if !keep {
                excluded_days.push(day_of(r.started_at));
            }
            keep
        });
    }
    let keys: Vec<i64> = runs.iter().map(|r| r.run_key).collect();
    let key_pos: FastMap<i64, usize> = keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();

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

    // Whole days of the window read from the daily aggregate; the rest is scanned raw.
    let agg = aggregate_days(store, !opts.raw_scan && opts.branch.is_none(), since, as_of)?.map(
        |mut a| {
            a.pending.extend(excluded_days);
            a
        },
    );
    let on_agg_day = |pos: usize| {
        agg.as_ref()
            .is_some_and(|a| a.covers(day_of(runs[pos].started_at)))
    };
    let raw: Vec<usize> = (0..runs.len()).filter(|&p| !on_agg_day(p)).collect();
    let raw_keys: Vec<i64> = raw.iter().map(|&p| keys[p]).collect();

    let failed_somewhere: FastMap<i64, ()> = last_failure.keys().map(|&(t, _)| (t, ())).collect();
    // The commits each test failed on, in any job: what its matrix twins are asked about
    // (one job has no twins).
    let failed_on: FastMap<(i64, u32), ()> = if jobs.len() > 1 {
        cells.keys().map(|&(t, _, c)| ((t, c), ())).collect()
    } else {
        FastMap::default()
    };
    let cell_keys: Vec<(i64, u32, u32)> = cells.keys().copied().collect();
    let new_part = || {
        let mut part = Partial {
            series: FastMap::default(),
            accs: FastMap::default(),
            cells: cell_keys.iter().map(|k| (*k, Cell::default())).collect(),
            failed_tests: Vec::new(),
        };
        for (&(test, job), &lf) in &last_failure {
            part.accs.entry((test, job)).or_default().last_failure_at = Some(lf);
        }
        part
    };
    // The per-run detail of one result of a test that failed somewhere in the window.
    let detail = |part: &mut Partial, pos: usize, test: i64, r: &OddRun| {
        let job = job_of[pos];
        let started = runs[pos].started_at;
        let obs = Obs {
            attempts: r.attempts,
            failures: r.failures.min(r.attempts),
        };
        let Some((acc, lf)) = part
            .accs
            .get_mut(&(test, job))
            .and_then(|acc| acc.last_failure_at.map(|lf| (acc, lf)))
        else {
            // Failed in another job only: its run here is a twin's result, needed only on a
            // commit it failed on (so a wide matrix keeps little more than before).
            if failed_on.contains_key(&(test, commit_of[pos])) {
                part.series.entry((test, job)).or_default().push((pos, obs));
            }
            return;
        };
        if acc.latest.is_none_or(|(t, p, _)| (started, pos) > (t, p)) {
            acc.latest = Some((started, pos, r.outcome));
        }
        if started > lf {
            acc.attempts_after_last_failure += r.attempts;
        }
        part.series.entry((test, job)).or_default().push((pos, obs));
        if let Some(cell) = part.cells.get_mut(&(test, job, commit_of[pos])) {
            cell.runs += 1;
            cell.attempts += r.attempts;
            cell.failures += r.failures;
            if cell
                .first_run
                .is_none_or(|p| (runs[p].started_at, p) > (started, pos))
            {
                cell.first_run = Some(pos);
            }
            if r.failures > 0 {
                cell.failed_runs.push(pos);
            }
        }
    };

    // The raw scan, on this store's connection only: a second connection would read
    // outside the caller's snapshot (`Store::read_snapshot`) and could see other runs.
    let mut parts: Vec<Partial> = vec![{
        let mut part = new_part();
        store.for_each_result(&raw_keys, |i, r| {
            let pos = raw[i];
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
                part.failed_tests.push((pos, r.test_id));
            }
            // Only tests that failed somewhere in the window need more than counts.
            if failed_somewhere.contains_key(&r.test_id) {
                let odd = OddRun {
                    run_key: r.run_key,
                    outcome: r.outcome,
                    attempts: r.attempts,
                    failures: r.failures,
                };
                detail(&mut part, pos, r.test_id, &odd);
            }
        })?;
        part
    }];

    // The aggregated days: counts from the rows; for a test that failed somewhere in the
    // window, each run of the job that day, clean unless its row lists it.
    if let Some(agg) = &agg {
        let mut part = new_part();
        let ids = store.job_ids()?;
        let job_index: FastMap<i64, u32> = ids
            .iter()
            .filter_map(|(id, name)| {
                jobs.binary_search(&name.as_str())
                    .ok()
                    .map(|j| (*id, j as u32))
            })
            .collect();
        let job_filter = opts.job.as_ref().map(|name| {
            ids.iter()
                .find(|(_, n)| *n == name)
                .map_or(i64::MIN, |(id, _)| *id)
        });
        let mut day_runs: FastMap<(i64, u32), Vec<usize>> = FastMap::default();
        for pos in 0..runs.len() {
            if on_agg_day(pos) {
                day_runs
                    .entry((day_of(runs[pos].started_at), job_of[pos]))
                    .or_default()
                    .push(pos);
            }
        }
        let mut odd_of: FastMap<i64, OddRun> = FastMap::default();
        store.for_each_day_row(agg.first, agg.last, job_filter, |row| {
            if !agg.covers(row.day) {
                return;
            }
            let Some(&job) = job_index.get(&row.job_id) else {
                return;
            };
            let acc = part.accs.entry((row.test_id, job)).or_default();
            acc.runs += row.runs;
            acc.attempts += row.attempts;
            acc.failures += row.failures;
            acc.failed_runs += row.failed_runs;
            acc.duration_ms += row.duration_ms;
            acc.in_run_reruns += row.attempts - row.runs;
            acc.last_seen = acc.last_seen.max(row.last_seen);
            let wants_detail = failed_somewhere.contains_key(&row.test_id);
            if !wants_detail && row.failed_runs == 0 {
                return;
            }
            odd_of.clear();
            odd_of.extend(decode_odd(&row.odd).into_iter().map(|o| (o.run_key, o)));
            let Some(positions) = day_runs.get(&(row.day, job)) else {
                return;
            };
            for &pos in positions {
                let r = odd_of
                    .get(&keys[pos])
                    .copied()
                    .unwrap_or_else(|| OddRun::clean(keys[pos]));
                if r.attempts == 0 {
                    continue;
                }
                if r.outcome == 2 {
                    part.failed_tests.push((pos, row.test_id));
                }
                if wants_detail {
                    detail(&mut part, pos, row.test_id, &r);
                }
            }
        })?;
        parts.push(part);
    }

    let mut accs: FastMap<(i64, u32), Acc> = FastMap::default();
    let mut series: FastMap<(i64, u32), Vec<(usize, Obs)>> = FastMap::default();
    let mut failed_tests: Vec<Vec<i64>> = vec![Vec::new(); runs.len()];
    for part in parts {
        for (pos, test) in part.failed_tests {
            failed_tests[pos].push(test);
        }
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
                    .is_none_or(|q| (runs[q].started_at, q) > (runs[p].started_at, p))
                {
                    cell.first_run = Some(p);
                }
            }
        }
    }
    // Each run's failing tests by id, each test's runs in order, as one raw scan gives them.
    for tests in &mut failed_tests {
        tests.sort_unstable();
    }
    for s in series.values_mut() {
        s.sort_unstable_by_key(|(pos, _)| *pos);
    }
    for cell in cells.values_mut() {
        cell.failed_runs.sort_unstable();
    }
    let jobs: Vec<String> = jobs.into_iter().map(str::to_string).collect();
    // One indexed lookup per job; with one job asked for, the window's answer is its own.
    let job_covers_window = jobs
        .iter()
        .map(|job| {
            if !covers_window || opts.job.is_some() {
                return Ok(covers_window);
            }
            store.has_runs_before(&RunFilter {
                job: Some(job.clone()),
                ..filter.clone()
            })
        })
        .collect::<Result<Vec<bool>>>()?;
    Ok(History {
        as_of,
        since,
        covers_window,
        job_covers_window,
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

/// The whole days of a window that the daily aggregate answers.
struct AggregateDays {
    first: i64,
    last: i64,
    pending: std::collections::HashSet<i64>,
}

impl AggregateDays {
    fn covers(&self, day: i64) -> bool {
        (self.first..=self.last).contains(&day) && !self.pending.contains(&day)
    }
}

/// `None` when the aggregate cannot answer: not `enabled` (the raw oracle, or a branch
/// filter: the aggregate is per job, not per branch), or a database without it.
fn aggregate_days(
    store: &Store,
    enabled: bool,
    since: i64,
    as_of: i64,
) -> Result<Option<AggregateDays>> {
    if !enabled {
        return Ok(None);
    }
    // Days that start at or after `since` and end at or before `as_of`.
    let first = day_of(since) + i64::from(since.rem_euclid(86_400) != 0);
    let last = day_of(as_of + 1) - 1;
    if first > last {
        return Ok(None);
    }
    Ok(store.pending_days()?.map(|pending| AggregateDays {
        first,
        last,
        pending: pending.into_iter().collect(),
    }))
}

/// Every result of the given tests in a window's runs (`runs`, oldest first, all of one
/// scan's window `since..=as_of`), in run order then test id, as `for_each_result` gives
/// them: raw, or rebuilt from the daily aggregate for the days it covers (`aggregate`
/// false reads everything raw). A rebuilt result has no duration (0): the aggregate keeps
/// durations per day only.
pub(crate) fn for_each_result_of(
    store: &Store,
    runs: &[RunRow],
    since: i64,
    as_of: i64,
    aggregate: bool,
    tests: &std::collections::HashSet<i64>,
    mut f: impl FnMut(usize, ResultRow),
) -> Result<()> {
    let agg = aggregate_days(store, aggregate, since, as_of)?;
    let covered = |pos: usize| {
        agg.as_ref()
            .is_some_and(|a| a.covers(day_of(runs[pos].started_at)))
    };
    let raw: Vec<usize> = (0..runs.len()).filter(|&p| !covered(p)).collect();
    let raw_keys: Vec<i64> = raw.iter().map(|&p| runs[p].run_key).collect();
    let mut out: Vec<(usize, ResultRow)> = Vec::new();
    store.for_each_result(&raw_keys, |i, r| {
        if tests.contains(&r.test_id) {
            out.push((raw[i], r));
        }
    })?;
    if let Some(agg) = &agg {
        let ids = store.job_ids()?;
        let mut day_runs: HashMap<(i64, &str), Vec<usize>> = HashMap::new();
        for pos in (0..runs.len()).filter(|&p| covered(p)) {
            day_runs
                .entry((day_of(runs[pos].started_at), runs[pos].job.as_str()))
                .or_default()
                .push(pos);
        }
        store.for_each_day_row(agg.first, agg.last, None, |row| {
            if !agg.covers(row.day) || !tests.contains(&row.test_id) {
                return;
            }
            let Some(positions) = ids
                .get(&row.job_id)
                .and_then(|job| day_runs.get(&(row.day, job.as_str())))
            else {
                return;
            };
            let odd: HashMap<i64, OddRun> = decode_odd(&row.odd)
                .into_iter()
                .map(|o| (o.run_key, o))
                .collect();
            for &pos in positions {
                let key = runs[pos].run_key;
                let r = odd.get(&key).copied().unwrap_or_else(|| OddRun::clean(key));
                if r.outcome == ABSENT {
                    continue;
                }
                out.push((
                    pos,
                    ResultRow {
                        run_key: key,
                        test_id: row.test_id,
                        outcome: r.outcome,
                        attempts: r.attempts,
                        failures: r.failures,
                        duration_ms: 0,
                    },
                ));
            }
        })?;
    }
    out.sort_unstable_by_key(|(pos, r)| (*pos, r.test_id));
    for (pos, r) in out {
        f(pos, r);
    }
    Ok(())
}
