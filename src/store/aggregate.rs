//! The daily aggregate: one row per (day, job, test) with the counts the scorer keeps for
//! a test, so a window of many days reads rows per test and day instead of per result.
//!
//! A day is the Unix day (UTC) of a run's start. Closed days are rolled up in batches
//! ([`last_closed_day`]): at the end of `ingest`, by the server after a write, or by
//! `flakehound compact`. Every write to a day (a new run, a late re-run, another file of
//! a run) marks the day pending in the same transaction, and a pending day is read raw
//! until it is rolled up again, so the aggregate is never stale.
//!
//! Besides counts, a row keeps the job's runs of the day where the test's result was not
//! one clean passing attempt ([`OddRun`], packed in `odd`): with the day's runs, that
//! gives every run's result of a test that failed somewhere in a window, which the
//! change-point model and the per-commit evidence need, without reading raw results.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension};

use super::{ResultRow, SqliteStore};
use crate::error::Result;

/// The Unix day (UTC) of a time.
pub fn day_of(t: i64) -> i64 {
    t.div_euclid(86_400)
}

/// The newest day rolled up when the newest run started at `newest_run_start`: days
/// before yesterday, so late uploads of yesterday's runs do not undo a fresh rollup.
pub fn last_closed_day(newest_run_start: i64) -> i64 {
    day_of(newest_run_start) - 2
}

/// One aggregate row: a test's results in the runs of one job that started on one day.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DayRow {
    pub day: i64,
    pub job_id: i64,
    pub test_id: i64,
    /// Results with at least one executed attempt.
    pub runs: u32,
    pub attempts: u32,
    pub failures: u32,
    /// Results with outcome failed.
    pub failed_runs: u32,
    pub duration_ms: i64,
    /// Start of the newest run with an executed attempt.
    pub last_seen: Option<i64>,
    /// Packed [`OddRun`]s, empty when every run of the job that day was clean.
    pub odd: Vec<u8>,
}

/// A run of the row's job and day where the test's result was not one clean passing
/// attempt; `attempts == 0` for a skipped test, and `outcome == ABSENT` too for one that
/// has no result in that run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OddRun {
    pub run_key: i64,
    pub outcome: u8,
    pub attempts: u32,
    pub failures: u32,
}

impl OddRun {
    /// The result of a run not listed: one passing attempt.
    pub fn clean(run_key: i64) -> OddRun {
        OddRun {
            run_key,
            outcome: 0,
            attempts: 1,
            failures: 0,
        }
    }

    fn is_clean(&self) -> bool {
        self.outcome == 0 && self.attempts == 1 && self.failures == 0
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = *bytes.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

/// Runs in ascending run key: each key as the difference to the one before.
fn encode_odd(runs: &[OddRun]) -> Vec<u8> {
    let mut out = Vec::with_capacity(runs.len() * 4);
    let mut prev = 0i64;
    for r in runs {
        put_varint(&mut out, r.run_key.wrapping_sub(prev) as u64);
        prev = r.run_key;
        out.push(r.outcome);
        put_varint(&mut out, u64::from(r.attempts));
        put_varint(&mut out, u64::from(r.failures));
    }
    out
}

/// The runs packed in a row's `odd`. A truncated tail (never written) is ignored.
pub fn decode_odd(bytes: &[u8]) -> Vec<OddRun> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut prev = 0i64;
    while at < bytes.len() {
        let Some(delta) = get_varint(bytes, &mut at) else {
            break;
        };
        let Some(&outcome) = bytes.get(at) else {
            break;
        };
        at += 1;
        let (Some(attempts), Some(failures)) =
            (get_varint(bytes, &mut at), get_varint(bytes, &mut at))
        else {
            break;
        };
        prev = prev.wrapping_add(delta as i64);
        out.push(OddRun {
            run_key: prev,
            outcome,
            attempts: attempts as u32,
            failures: failures as u32,
        });
    }
    out
}

/// Builds one day's rows from its runs and their results, given run by run in run-key
/// order.
pub(crate) struct DayBuilder {
    day: i64,
    /// Per run (in run-key order): its key, its job (index into `jobs`), start and
    /// position among its job's runs.
    runs: Vec<(i64, usize, i64, usize)>,
    /// Per job: its id and its runs' keys, in run-key order.
    jobs: Vec<(i64, Vec<i64>)>,
    /// Per (job index, test id): the row's index in `rows`. Every result of the day goes
    /// through it, and the keys are small integers: foldhash instead of SipHash.
    index: HashMap<(usize, i64), usize, foldhash::fast::RandomState>,
    /// Per row: the row, its odd runs so far, its job index and the position of the job's
    /// next run it has not accounted for.
    rows: Vec<(DayRow, Vec<OddRun>, usize, usize)>,
    /// Odd runs held in all rows.
    odd_runs: usize,
}

impl DayBuilder {
    /// `runs`: (run key, job id, started_at) of every run that started on `day`.
    pub(crate) fn new(day: i64, mut runs: Vec<(i64, i64, i64)>) -> DayBuilder {
        runs.sort_unstable();
        let mut builder = DayBuilder::open(day);
        for (key, job, started) in runs {
            builder.push_run(key, job, started);
        }
        builder
    }

    /// A day whose runs are given one by one ([`DayBuilder::push_run`]).
    pub(crate) fn open(day: i64) -> DayBuilder {
        DayBuilder {
            day,
            runs: Vec::new(),
            jobs: Vec::new(),
            index: HashMap::default(),
            rows: Vec::new(),
            odd_runs: 0,
        }
    }

    /// Add a run of the day, after every run of a smaller key; its index for
    /// [`DayBuilder::add`].
    pub(crate) fn push_run(&mut self, key: i64, job: i64, started: i64) -> usize {
        debug_assert!(self.runs.last().is_none_or(|r| r.0 < key));
        // A day has a handful of jobs: a scan beats hashing.
        let j = match self.jobs.iter().position(|(id, _)| *id == job) {
            Some(j) => j,
            None => {
                self.jobs.push((job, Vec::new()));
                self.jobs.len() - 1
            }
        };
        let list = &mut self.jobs[j].1;
        list.push(key);
        self.runs.push((key, j, started, list.len() - 1));
        self.runs.len() - 1
    }

    /// Estimated bytes the builder holds.
    pub(crate) fn held(&self) -> usize {
        self.rows.len() * 200 + self.odd_runs * std::mem::size_of::<OddRun>()
    }

    /// Run keys in the order results must be given.
    pub(crate) fn run_keys(&self) -> Vec<i64> {
        self.runs.iter().map(|r| r.0).collect()
    }

    /// One result of the run at `index` (into [`DayBuilder::run_keys`]).
    pub(crate) fn add(&mut self, index: usize, r: &ResultRow) {
        let (run_key, job, started, local) = self.runs[index];
        let slot = *self.index.entry((job, r.test_id)).or_insert_with(|| {
            self.rows.push((
                DayRow {
                    day: self.day,
                    job_id: self.jobs[job].0,
                    test_id: r.test_id,
                    ..DayRow::default()
                },
                Vec::new(),
                job,
                0,
            ));
            self.rows.len() - 1
        });
        let (row, odd, _, next) = &mut self.rows[slot];
        let odd_before = odd.len();
        // Runs of the job it did not appear in since its last result.
        for &k in &self.jobs[job].1[*next..local] {
            odd.push(absent(k));
        }
        *next = local + 1;
        let this = OddRun {
            run_key,
            outcome: r.outcome,
            attempts: r.attempts,
            failures: r.failures,
        };
        if !this.is_clean() {
            odd.push(this);
        }
        self.odd_runs += odd.len() - odd_before;
        if r.attempts == 0 {
            return;
        }
        row.runs += 1;
        row.attempts += r.attempts;
        row.failures += r.failures;
        row.duration_ms += r.duration_ms;
        if r.outcome == 2 {
            row.failed_runs += 1;
        }
        row.last_seen = row.last_seen.max(Some(started));
    }

    /// The day's rows, by job id and test id.
    pub(crate) fn finish(self) -> Vec<DayRow> {
        let jobs = self.jobs;
        let mut out: Vec<DayRow> = self
            .rows
            .into_iter()
            .map(|(mut row, mut odd, job, next)| {
                for &k in &jobs[job].1[next..] {
                    odd.push(absent(k));
                }
                row.odd = encode_odd(&odd);
                row
            })
            .collect();
        out.sort_unstable_by_key(|r| (r.job_id, r.test_id));
        out
    }
}

/// A run's result as the writer holds it: test key, (attempts, failures, duration_ms,
/// outcome).
pub(crate) type HeldResult = (i64, (u32, u32, i64, u8));

/// Bytes the day tally may hold (rows of about 200 bytes with their index entry, odd runs
/// of 24, runs of about 100): a backfill of more reads the days past it back instead.
const TALLY_BYTES: usize = 64 << 20;

/// What a run costs the tally: its entries in the builder's run lists and in `run_days`.
const RUN_BYTES: usize = 100;

/// Day rows built while a bulk ingest stores its runs, so that rolling the closed days up
/// at the end need not read their results back (a tenth of a backfill's work, all of it on
/// one thread). A day is built only while every run of it is one this ingest created and
/// flushed whole; any other write to the day (a file added to an existing run, a streamed
/// report, a run stored before) leaves it to be read back, as does a commit by another
/// connection (`PRAGMA data_version`).
pub(crate) struct DayTally {
    /// Runs stored before the tally began have keys up to this.
    before: i64,
    /// The newest day that can close in this ingest: later days are not built.
    through: i64,
    data_version: i64,
    /// Per day touched: its builder, or `None` when it must be read back.
    days: HashMap<i64, Option<DayBuilder>, foldhash::fast::RandomState>,
    /// (run key, day) of each run given on a day being built, in key order.
    run_days: Vec<(i64, i64)>,
    job_ids: HashMap<String, i64>,
    /// Estimated bytes held by the builders.
    held: usize,
    given_up: bool,
}

impl DayTally {
    /// `newest_start`: the latest start of the runs to be ingested, if known (a day closes
    /// two days before the newest run's).
    pub(crate) fn new(
        conn: &rusqlite::Connection,
        newest_start: Option<i64>,
    ) -> rusqlite::Result<DayTally> {
        // The version first: a commit by another connection after it is seen at the rollup.
        let data_version = data_version(conn)?;
        let (before, stored): (i64, Option<i64>) = conn.query_row(
            "SELECT coalesce(max(run_key), 0), max(started_at) FROM run",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(DayTally {
            before,
            through: stored.max(newest_start).map_or(i64::MIN, last_closed_day),
            data_version,
            days: HashMap::default(),
            run_days: Vec::new(),
            job_ids: HashMap::new(),
            held: 0,
            given_up: false,
        })
    }

    /// A run created by this ingest, with all its rows (test key → attempts, failures,
    /// duration, outcome), in run-key order.
    pub(crate) fn add_run(
        &mut self,
        tx: &rusqlite::Connection,
        run_key: i64,
        job: &str,
        started_at: i64,
        rows: &[HeldResult],
    ) -> rusqlite::Result<()> {
        if self.given_up {
            return Ok(());
        }
        let day = day_of(started_at);
        if day > self.through {
            // It stays open: the rollup will not ask for it.
            self.days.entry(day).or_insert(None);
            return Ok(());
        }
        if !self.days.contains_key(&day) {
            let lo = day * 86_400;
            let older: bool = tx
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM run WHERE started_at BETWEEN ?1 AND ?2 AND run_key <= ?3)",
                )?
                .query_row(params![lo, lo + 86_399, self.before], |r| r.get(0))?;
            self.days
                .insert(day, (!older).then(|| DayBuilder::open(day)));
        }
        if !matches!(self.days.get(&day), Some(Some(_))) {
            return Ok(());
        }
        let job_id = match self.job_ids.get(job) {
            Some(&id) => id,
            None => {
                let id = job_id(tx, job)?;
                self.job_ids.insert(job.to_string(), id);
                id
            }
        };
        let Some(Some(builder)) = self.days.get_mut(&day) else {
            return Ok(());
        };
        let held = builder.held();
        let index = builder.push_run(run_key, job_id, started_at);
        for &(test_key, (attempts, failures, duration_ms, outcome)) in rows {
            builder.add(
                index,
                &ResultRow {
                    run_key,
                    test_id: test_key,
                    outcome,
                    attempts,
                    failures,
                    duration_ms,
                },
            );
        }
        let grown = builder.held() - held;
        // Keys only grow: a sorted list, searched by halves.
        self.run_days.push((run_key, day));
        self.held += grown + RUN_BYTES;
        if self.held > TALLY_BYTES {
            // Past the cap the growing day is read back; days built so far are kept.
            self.drop_day(day);
        }
        Ok(())
    }

    fn drop_day(&mut self, day: i64) {
        if let Some(Some(b)) = self.days.insert(day, None) {
            self.held -= b.held() + RUN_BYTES * b.runs.len();
        }
    }

    /// The run's results were written some other way: its day is read back. Only runs on
    /// days being built are listed; every run this ingest created was given here before
    /// another path could write to it (only the newest run is held unflushed, and it is
    /// flushed before a streamed chunk is stored), so a run not listed is on no such day.
    pub(crate) fn written_elsewhere(&mut self, run_key: i64) {
        if let Ok(at) = self.run_days.binary_search_by_key(&run_key, |r| r.0) {
            self.drop_day(self.run_days[at].1);
        }
    }

    pub(crate) fn give_up(&mut self) {
        self.given_up = true;
        self.days.clear();
        self.held = 0;
    }

    /// The day's builder, if the tally holds the whole day and no other connection wrote
    /// to the database since the tally began.
    fn take(
        &mut self,
        conn: &rusqlite::Connection,
        day: i64,
    ) -> rusqlite::Result<Option<DayBuilder>> {
        if !self.given_up && data_version(conn)? != self.data_version {
            self.give_up();
        }
        Ok(self.days.remove(&day).flatten())
    }
}

fn data_version(conn: &rusqlite::Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA data_version", [], |r| r.get(0))
}

/// The aggregate's id of a job, given one if it has none yet.
fn job_id(tx: &rusqlite::Connection, job: &str) -> rusqlite::Result<i64> {
    tx.prepare_cached("INSERT INTO job_name (job) VALUES (?1) ON CONFLICT (job) DO NOTHING")?
        .execute(params![job])?;
    tx.prepare_cached("SELECT job_id FROM job_name WHERE job = ?1")?
        .query_row(params![job], |r| r.get(0))
}

/// The outcome of a run the test has no result in.
pub const ABSENT: u8 = u8::MAX;

fn absent(run_key: i64) -> OddRun {
    OddRun {
        run_key,
        outcome: ABSENT,
        attempts: 0,
        failures: 0,
    }
}

/// The day of a run's start in SQLite SQL (floor division, as [`day_of`]).
const SQL_DAY: &str = "(started_at - ((started_at % 86400) + 86400) % 86400) / 86400";

impl SqliteStore {
    /// Days written since they were rolled up, or `None` for a database without the
    /// aggregate (an older schema opened read-only).
    pub fn pending_days(&self) -> Result<Option<Vec<i64>>> {
        let version = super::migrate::current_version(&self.conn, &self.path)?;
        if version < 4 {
            return Ok(None);
        }
        let mut stmt = self
            .conn
            .prepare_cached("SELECT day FROM day_pending ORDER BY day")
            .map_err(|e| self.err("cannot read the daily aggregate", e))?;
        let days = stmt
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect::<std::result::Result<Vec<i64>, _>>())
            .map_err(|e| self.err("cannot read the daily aggregate", e))?;
        Ok(Some(days))
    }

    /// Job ids of the aggregate and their names.
    pub fn job_ids(&self) -> Result<HashMap<i64, String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT job_id, job FROM job_name")
            .map_err(|e| self.err("cannot read the daily aggregate", e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect::<std::result::Result<HashMap<_, _>, _>>())
            .map_err(|e| self.err("cannot read the daily aggregate", e))?;
        Ok(rows)
    }

    /// Call `f` for every aggregate row of days `first..=last` (of one job when given),
    /// pending days included (the caller skips those).
    pub fn for_each_day_row(
        &self,
        first: i64,
        last: i64,
        job_id: Option<i64>,
        mut f: impl FnMut(&DayRow),
    ) -> Result<()> {
        let ids = self.test_ids()?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT day, job_id, test_key, runs, attempts, failures, failed_runs, duration_ms,
                        last_seen, odd
                 FROM result_day WHERE day BETWEEN ?1 AND ?2 AND (?3 IS NULL OR job_id = ?3)",
            )
            .map_err(|e| self.err("cannot read the daily aggregate", e))?;
        let mut rows = stmt
            .query(params![first, last, job_id])
            .map_err(|e| self.err("cannot read the daily aggregate", e))?;
        let mut row = DayRow::default();
        while let Some(r) = rows
            .next()
            .map_err(|e| self.err("cannot read the daily aggregate", e))?
        {
            let int = |i: usize| r.get_ref(i).ok().and_then(|v| v.as_i64().ok()).unwrap_or(0);
            row.day = int(0);
            row.job_id = int(1);
            row.test_id = self.test_id_of(&ids, int(2))?;
            row.runs = int(3) as u32;
            row.attempts = int(4) as u32;
            row.failures = int(5) as u32;
            row.failed_runs = int(6) as u32;
            row.duration_ms = int(7);
            row.last_seen = r
                .get_ref(8)
                .ok()
                .and_then(|v| v.as_i64_or_null().ok())
                .flatten();
            row.odd.clear();
            if let Ok(Some(b)) = r.get_ref(9).map(|v| v.as_blob_or_null().ok().flatten()) {
                row.odd.extend_from_slice(b);
            }
            f(&row);
        }
        Ok(())
    }

    /// Roll up every pending day up to `through` (inclusive), one transaction per day.
    /// Returns the number of days rolled up.
    pub fn rollup(&mut self, through: i64) -> Result<u32> {
        let days: Vec<i64> = match self.pending_days()? {
            Some(days) => days.into_iter().filter(|&d| d <= through).collect(),
            None => return Ok(0),
        };
        let mut done = 0;
        // Given once: what a bulk ingest built of its days.
        let mut tally = self.tally.take();
        for day in days {
            let path = self.path.clone();
            let batch = self.batch()?;
            let tx = batch.conn();
            let err = |e| super::db_error(&path, "cannot roll up a day", e);
            // Another process may have rolled it up since.
            let pending: Option<i64> = tx
                .query_row(
                    "SELECT day FROM day_pending WHERE day = ?1",
                    params![day],
                    |r| r.get(0),
                )
                .optional()
                .map_err(err)?;
            if pending.is_none() {
                continue;
            }
            let lo = day * 86_400;
            let runs: Vec<(i64, String, i64)> = tx
                .prepare_cached(
                    "SELECT run_key, job, started_at FROM run WHERE started_at BETWEEN ?1 AND ?2",
                )
                .and_then(|mut s| {
                    s.query_map(params![lo, lo + 86_399], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .and_then(|rows| rows.collect::<std::result::Result<Vec<_>, _>>())
                })
                .map_err(err)?;
            let tallied = match tally.as_mut() {
                Some(t) => t.take(tx, day).map_err(err)?,
                None => None,
            };
            // The tally's day must hold exactly the runs stored for it (its keys are in
            // order already).
            let tallied = tallied.filter(|b| {
                let mut stored: Vec<i64> = runs.iter().map(|r| r.0).collect();
                stored.sort_unstable();
                b.run_keys() == stored
            });
            let builder = match tallied {
                Some(b) => {
                    tracing::debug!(day, "rolled up a day from the rows the ingest built");
                    b
                }
                None => read_day(tx, day, &runs).map_err(err)?,
            };
            tx.execute("DELETE FROM result_day WHERE day = ?1", params![day])
                .map_err(err)?;
            insert_day_rows(tx, day, &builder.finish()).map_err(err)?;
            tx.execute("DELETE FROM day_pending WHERE day = ?1", params![day])
                .map_err(err)?;
            batch.commit()?;
            done += 1;
        }
        Ok(done)
    }
}

/// Day rows per multi-row INSERT: fewer statement executions per row (the rollup runs
/// alone at the end of an ingest, so its time is all wall time).
const DAY_INSERT_ROWS: usize = 32;

/// Store a day's rows (the day bound once, as `?1`).
fn insert_day_rows(tx: &rusqlite::Connection, day: i64, rows: &[DayRow]) -> rusqlite::Result<()> {
    const COLUMNS: &str = "(day, job_id, test_key, runs, attempts, failures, failed_runs, duration_ms, last_seen, odd)";
    // A bare `?` takes the number after the largest one so far: each row's own values get
    // their own, after the shared `?1`.
    static MANY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let rows = vec!["(?1,?,?,?,?,?,?,?,?,?)"; DAY_INSERT_ROWS].join(",");
        format!("INSERT INTO result_day {COLUMNS} VALUES {rows}")
    });
    let values = |r: &DayRow| -> [rusqlite::types::Value; 9] {
        [
            r.job_id.into(),
            r.test_id.into(),
            r.runs.into(),
            r.attempts.into(),
            r.failures.into(),
            r.failed_runs.into(),
            r.duration_ms.into(),
            r.last_seen.into(),
            // Empty when every run was clean: stored as NULL.
            (!r.odd.is_empty()).then(|| r.odd.clone()).into(),
        ]
    };
    let mut many = tx.prepare_cached(&MANY)?;
    let mut chunks = rows.chunks_exact(DAY_INSERT_ROWS);
    let mut bound: Vec<rusqlite::types::Value> = Vec::with_capacity(1 + DAY_INSERT_ROWS * 9);
    for chunk in chunks.by_ref() {
        bound.clear();
        bound.push(day.into());
        for r in chunk {
            bound.extend(values(r));
        }
        many.execute(rusqlite::params_from_iter(bound.iter()))?;
    }
    let mut one = tx.prepare_cached(&format!(
        "INSERT INTO result_day {COLUMNS} VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))?;
    for r in chunks.remainder() {
        bound.clear();
        bound.push(day.into());
        bound.extend(values(r));
        one.execute(rusqlite::params_from_iter(bound.iter()))?;
    }
    Ok(())
}

/// A day's rows from its stored runs and their results.
fn read_day(
    tx: &rusqlite::Connection,
    day: i64,
    runs: &[(i64, String, i64)],
) -> rusqlite::Result<DayBuilder> {
    let mut ids: HashMap<&str, i64> = HashMap::new();
    let mut with_ids = Vec::with_capacity(runs.len());
    for (key, job, started) in runs {
        let id = match ids.get(job.as_str()) {
            Some(&id) => id,
            None => *ids.entry(job).or_insert(job_id(tx, job)?),
        };
        with_ids.push((*key, id, *started));
    }
    let mut builder = DayBuilder::new(day, with_ids);
    // Rows are rolled up by test key (as result_day stores them): the builder's test_id is
    // the key here.
    let mut stmt = tx.prepare_cached(
        "SELECT test_key, outcome, attempts, failures, duration_ms FROM result WHERE run_key = ?1",
    )?;
    for (index, run_key) in builder.run_keys().into_iter().enumerate() {
        let mut rows = stmt.query(params![run_key])?;
        while let Some(r) = rows.next()? {
            let int = |i: usize| r.get_ref(i).ok().and_then(|v| v.as_i64().ok()).unwrap_or(0);
            builder.add(
                index,
                &ResultRow {
                    run_key,
                    test_id: int(0),
                    outcome: int(1) as u8,
                    attempts: int(2) as u32,
                    failures: int(3) as u32,
                    duration_ms: int(4),
                },
            );
        }
    }
    Ok(builder)
}

/// Mark the day of a run pending, in the writer's transaction.
pub(crate) fn mark_run_day(
    tx: &rusqlite::Connection,
    run_key: i64,
) -> std::result::Result<(), rusqlite::Error> {
    tx.prepare_cached(&format!(
        "INSERT INTO day_pending (day) SELECT {SQL_DAY} FROM run WHERE run_key = ?1
         ON CONFLICT (day) DO NOTHING"
    ))?
    .execute(params![run_key])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_runs_round_trip() {
        let runs = vec![
            OddRun {
                run_key: 3,
                outcome: 2,
                attempts: 3,
                failures: 3,
            },
            absent(300),
            OddRun {
                run_key: 1 << 40,
                outcome: 1,
                attempts: 200,
                failures: 199,
            },
        ];
        assert_eq!(decode_odd(&encode_odd(&runs)), runs);
        assert!(decode_odd(&[]).is_empty());
    }

    #[test]
    fn a_day_lists_the_runs_a_test_missed_or_did_not_pass_cleanly() {
        // Job 1 has runs 10, 11, 12; job 2 has run 20.
        let mut b = DayBuilder::new(
            5,
            vec![(12, 1, 500), (10, 1, 100), (20, 2, 50), (11, 1, 300)],
        );
        assert_eq!(b.run_keys(), vec![10, 11, 12, 20]);
        let row = |run_key, test_id, outcome, attempts, failures| ResultRow {
            run_key,
            test_id,
            outcome,
            attempts,
            failures,
            duration_ms: 7,
        };
        b.add(0, &row(10, 1, 0, 1, 0));
        b.add(1, &row(11, 1, 1, 2, 1));
        b.add(1, &row(11, 2, 3, 0, 0));
        b.add(3, &row(20, 1, 2, 1, 1));
        let rows = b.finish();
        assert_eq!(rows.len(), 3);
        let (a, skipped, other_job) = (&rows[0], &rows[1], &rows[2]);
        assert_eq!((a.job_id, a.test_id), (1, 1));
        assert_eq!(
            (a.runs, a.attempts, a.failures, a.failed_runs),
            (2, 3, 1, 0)
        );
        assert_eq!((a.duration_ms, a.last_seen), (14, Some(300)));
        // Run 10 was clean; 11 re-ran; it did not run in 12.
        assert_eq!(
            decode_odd(&a.odd),
            vec![
                OddRun {
                    run_key: 11,
                    outcome: 1,
                    attempts: 2,
                    failures: 1
                },
                absent(12)
            ]
        );
        assert_eq!((skipped.runs, skipped.last_seen), (0, None));
        let skip = OddRun {
            run_key: 11,
            outcome: 3,
            attempts: 0,
            failures: 0,
        };
        assert_eq!(decode_odd(&skipped.odd), vec![absent(10), skip, absent(12)]);
        assert_eq!((other_job.job_id, other_job.failed_runs), (2, 1));
    }

    #[test]
    fn days_are_floor_divided_and_closed_with_a_day_of_grace() {
        assert_eq!(day_of(-1), -1);
        assert_eq!(day_of(86_399), 0);
        assert_eq!(day_of(86_400), 1);
        assert_eq!(last_closed_day(10 * 86_400 + 5), 8);
    }
}
