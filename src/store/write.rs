//! The write path: one transaction per batch of report files.

use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use super::{db_error, SqliteStore};
use crate::error::Result;
use crate::fingerprint;
use crate::model::{RunMeta, TestCase};

// The writer's maps are keyed by blake3-derived test ids and fingerprints, row keys and a
// report's path parts, with a per-process random seed: foldhash instead of SipHash, which
// cost ~10M of the ~77M instructions spent storing a 10,000-test report.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type HashSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;

/// What one stored report added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileTally {
    pub tests: u64,
    pub attempts: u64,
    pub passed: u64,
    pub flaky: u64,
    pub failed: u64,
    pub skipped: u64,
}

/// An open write transaction. Dropping it without [`Batch::commit`] rolls everything back.
pub struct SqliteBatch<'s> {
    tx: &'s Connection,
    finished: bool,
    store_path: &'s std::path::Path,
    // Per batch, so that a rolled-back batch leaves no stale "already stored" entries.
    /// Test id → test key (`test.test_key`, what result rows hold) of tests seen in the batch.
    known_tests: HashMap<i64, i64>,
    known_fingerprints: HashSet<i64>,
    /// Interned path parts (`path_part`) seen in the batch → their ids.
    known_parts: HashMap<String, i64>,
    /// The known sets at the savepoint, restored on rollback so that no test row that was
    /// rolled back is taken as stored.
    saved: Option<Known>,
    /// Runs whose day this batch marked pending for the daily aggregate.
    marked: HashSet<i64>,
    /// The run created last in this batch, whose result rows wait for its last file.
    fresh: Option<FreshRun>,
    /// The store's day tally, during a bulk ingest.
    tally: Option<&'s mut super::aggregate::DayTally>,
}

/// What a batch knows is stored: tests (id → key), fingerprints, path parts (text → id).
type Known = (HashMap<i64, i64>, HashSet<i64>, HashMap<String, i64>);

/// The rows of a run created in this batch, held until another run starts or the batch
/// commits, then inserted sorted by test key. A new run has the largest run key, so its
/// rows go in at the right edge of the `result` B-tree in key order: pages fill (about 3
/// bytes a result less than inserting file by file, where files of one run interleave
/// their test keys) and many rows share a statement. Nothing of the run is in the database
/// but the run row until then, so its duplicate-file check is answered here.
struct FreshRun {
    run_key: i64,
    job: String,
    started_at: i64,
    /// test key → (attempts, failures, duration_ms, outcome), reruns across files merged.
    rows: HashMap<i64, (u32, u32, i64, u8)>,
    /// (content hash key, path, testcases)
    files: Vec<(Vec<u8>, String, i64)>,
    hashes: HashSet<Vec<u8>>,
    tests_time_s: Option<f64>,
}

/// A report's failures and their fingerprints; `keys` are the rows' test keys, `offsets`
/// move each row's attempt numbers past the attempts earlier files of the run stored for
/// the same test.
fn store_failures(
    tx: &rusqlite::Connection,
    path: &std::path::Path,
    known_fingerprints: &mut HashSet<i64>,
    run_key: i64,
    prepared: &Prepared,
    keys: &[i64],
    offsets: &[i64],
) -> Result<()> {
    if prepared.failures.is_empty() {
        return Ok(());
    }
    let prep = |sql: &str| {
        tx.prepare_cached(sql)
            .map_err(|e| db_error(path, "cannot prepare", e))
    };
    let mut add_fingerprint = prep(
        "INSERT INTO fingerprint (fingerprint, normalized, sample) VALUES (?1, ?2, ?3)
         ON CONFLICT (fingerprint) DO NOTHING",
    )?;
    let mut add_failure = prep(
        "INSERT INTO failure (run_key, test_key, attempt, is_error, fingerprint, type, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (run_key, test_key, attempt) DO NOTHING",
    )?;
    for f in &prepared.failures {
        if known_fingerprints.insert(f.fingerprint) {
            add_fingerprint
                .execute(params![f.fingerprint, f.normalized, f.sample])
                .map_err(|e| db_error(path, "cannot store a fingerprint", e))?;
        }
        add_failure
            .execute(params![
                run_key,
                keys[f.row],
                offsets[f.row] + i64::from(f.attempt),
                f.is_error,
                f.fingerprint,
                f.kind,
                f.message
            ])
            .map_err(|e| db_error(path, "cannot store a failure", e))?;
    }
    Ok(())
}

/// A result's outcome from its merged attempts, as `prepare` and the merging upsert give it.
fn merged_outcome(attempts: u32, failures: u32) -> u8 {
    if attempts == 0 {
        3
    } else if failures == 0 {
        0
    } else if failures < attempts {
        1
    } else {
        2
    }
}

/// Attempts to take the write lock before giving up; each waits up to the busy timeout.
const LOCK_RETRIES: u32 = 20;

impl SqliteStore {
    /// Start a write batch. Takes the write lock at once (`BEGIN IMMEDIATE`), so that
    /// concurrent writers queue instead of failing later with "database is locked".
    pub fn batch(&mut self) -> Result<SqliteBatch<'_>> {
        let mut tries = 0;
        loop {
            match self.conn.execute_batch("BEGIN IMMEDIATE") {
                Ok(()) => break,
                Err(e)
                    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                        && tries < LOCK_RETRIES =>
                {
                    tries += 1;
                    tracing::debug!(tries, "database busy, retrying");
                    std::thread::sleep(Duration::from_millis(50 * u64::from(tries)));
                }
                Err(e) => return Err(db_error(&self.path, "cannot start a write transaction", e)),
            }
        }
        Ok(SqliteBatch {
            tx: &self.conn,
            finished: false,
            store_path: &self.path,
            known_tests: Default::default(),
            known_fingerprints: Default::default(),
            known_parts: Default::default(),
            saved: None,
            marked: Default::default(),
            fresh: None,
            tally: self.tally.as_deref_mut(),
        })
    }
}

impl SqliteBatch<'_> {
    fn err(&self, context: &str, e: rusqlite::Error) -> crate::error::Error {
        db_error(self.store_path, context, e)
    }

    pub(crate) fn conn(&self) -> &Connection {
        self.tx
    }

    /// A write to a run's day makes the day's aggregate stale: mark it pending.
    fn mark(&mut self, run_key: i64) -> Result<()> {
        if self.marked.insert(run_key) {
            super::aggregate::mark_run_day(self.tx, run_key)
                .map_err(|e| self.err("cannot mark the day for the daily aggregate", e))?;
        }
        Ok(())
    }

    /// The run's key, creating the run if it is new. Returns `(run_key, created)`. The
    /// commit is stored normalised (see `lookup::full_commit_on`): lower case, and a
    /// short SHA as the one full SHA of the job it prefixes.
    pub fn run(&mut self, meta: &RunMeta) -> Result<(i64, bool)> {
        let commit = super::lookup::full_commit_on(self.tx, &meta.job, &meta.commit)
            .map_err(|e| self.err("cannot look up commits", e))?;
        let normalized;
        let meta = if commit == meta.commit {
            meta
        } else {
            normalized = RunMeta {
                commit,
                ..meta.clone()
            };
            &normalized
        };
        let existing: Option<(i64, Option<f64>, Option<String>, String)> = self
            .tx
            .prepare_cached(
                "SELECT run_key, duration_s, run_url, branch FROM run
                 WHERE job = ?1 AND ci_run_id = ?2 AND attempt = ?3 AND commit_sha = ?4",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![meta.job, meta.run_id, meta.attempt, meta.commit],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()
            })
            .map_err(|e| self.err("cannot look up the run", e))?;
        if let Some((key, duration, url, branch)) = existing {
            super::warn_if_other_branch(meta, &branch);
            if duration.is_none() && meta.duration_s.is_some() {
                self.tx
                    .execute(
                        "UPDATE run SET duration_s = ?1 WHERE run_key = ?2",
                        params![meta.duration_s, key],
                    )
                    .map_err(|e| self.err("cannot update the run", e))?;
            }
            // A later upload of the same run may know its link when the first did not.
            if url.is_none() && meta.run_url.is_some() {
                self.tx
                    .execute(
                        "UPDATE run SET run_url = ?1 WHERE run_key = ?2",
                        params![meta.run_url, key],
                    )
                    .map_err(|e| self.err("cannot update the run", e))?;
            }
            return Ok((key, false));
        }
        self.tx
            .prepare_cached(
                "INSERT INTO run (commit_sha, branch, job, ci_run_id, attempt, started_at, duration_s, run_url)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    meta.commit,
                    meta.branch,
                    meta.job,
                    meta.run_id,
                    meta.attempt,
                    meta.started_at,
                    meta.duration_s,
                    meta.run_url
                ])
            })
            .map_err(|e| self.err("cannot store the run", e))?;
        let key = self.tx.last_insert_rowid();
        if super::lookup::is_full_sha(&meta.commit) {
            // Runs stored earlier under a short form of this SHA are this commit too: an
            // attempt that failed under `1a2b3c4` and its retry under the full SHA are one
            // commit's pass and fail. (A run the same as this one under both forms stays.)
            self.tx
                .prepare_cached(
                    "UPDATE OR IGNORE run SET commit_sha = ?1
                     WHERE job = ?2 AND commit_sha >= ?3 AND commit_sha < ?1
                     AND substr(?1, 1, length(commit_sha)) = commit_sha",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        meta.commit,
                        meta.job,
                        &meta.commit[..super::lookup::MIN_PREFIX]
                    ])
                })
                .map_err(|e| self.err("cannot store the run", e))?;
        }
        self.flush_fresh()?;
        self.mark(key)?;
        self.fresh = Some(FreshRun {
            run_key: key,
            job: meta.job.clone(),
            started_at: meta.started_at,
            rows: Default::default(),
            files: Vec::new(),
            hashes: Default::default(),
            tests_time_s: None,
        });
        Ok((key, true))
    }

    /// Whether this exact report (by content hash) is already stored for the run.
    pub fn has_file(&self, run_key: i64, content_hash: &str) -> Result<bool> {
        if let Some(f) = self.fresh.as_ref().filter(|f| f.run_key == run_key) {
            return Ok(f.hashes.contains(&hash_key(content_hash)));
        }
        self.tx
            .prepare_cached("SELECT 1 FROM report_file WHERE run_key = ?1 AND content_hash = ?2")
            .and_then(|mut s| s.exists(params![run_key, hash_key(content_hash)]))
            .map_err(|e| self.err("cannot look up the report", e))
    }

    /// Store one report's test cases for a run. Cases of a test already stored for the
    /// run (another file of the same run) add their attempts to it.
    pub fn add_file(
        &mut self,
        run_key: i64,
        content_hash: &str,
        path: &str,
        cases: &[TestCase],
        testcase_elements: u64,
        report_time_s: Option<f64>,
    ) -> Result<FileTally> {
        let prepared = prepare(cases);
        self.add_file_prepared(
            run_key,
            content_hash,
            path,
            cases,
            &prepared,
            testcase_elements,
            report_time_s,
        )
    }

    /// [`Batch::add_file`] with rows computed by [`prepare`] beforehand.
    #[allow(clippy::too_many_arguments)]
    pub fn add_file_prepared(
        &mut self,
        run_key: i64,
        content_hash: &str,
        path: &str,
        cases: &[TestCase],
        prepared: &Prepared,
        testcase_elements: u64,
        report_time_s: Option<f64>,
    ) -> Result<FileTally> {
        if self.fresh.as_ref().is_some_and(|f| f.run_key == run_key) {
            return self.add_fresh(
                content_hash,
                path,
                cases,
                prepared,
                testcase_elements,
                report_time_s,
            );
        }
        let tally = self.add_prepared(run_key, cases, prepared)?;
        store_file(
            self.tx,
            self.store_path,
            &mut self.known_parts,
            run_key,
            &hash_key(content_hash),
            path,
            testcase_elements as i64,
        )?;
        if let Some(t) = report_time_s {
            self.tx
                .prepare_cached(
                    "UPDATE run SET tests_time_s = tests_time_s + ?1 WHERE run_key = ?2",
                )
                .and_then(|mut s| s.execute(params![t, run_key]))
                .map_err(|e| self.err("cannot update the run", e))?;
        }
        Ok(tally)
    }

    /// Store test cases for a run without recording a report file (used when a huge
    /// report is streamed in chunks; the last chunk goes through [`Batch::add_file`]).
    pub fn add_cases(&mut self, run_key: i64, cases: &[TestCase]) -> Result<FileTally> {
        if self.fresh.as_ref().is_some_and(|f| f.run_key == run_key) {
            // Chunks of one report may repeat a test: merge them in the database.
            self.flush_fresh()?;
        }
        let prepared = prepare(cases);
        self.add_prepared(run_key, cases, &prepared)
    }

    /// Store cases whose rows were computed by [`prepare`] (on a parsing thread, so the
    /// single writer only binds and steps statements).
    pub fn add_prepared(
        &mut self,
        run_key: i64,
        cases: &[TestCase],
        prepared: &Prepared,
    ) -> Result<FileTally> {
        self.mark(run_key)?;
        if let Some(t) = self.tally.as_mut() {
            t.written_elsewhere(run_key);
        }
        let path = self.store_path;
        let tx = self.tx;
        let prep = |sql: &str| {
            tx.prepare_cached(sql)
                .map_err(|e| db_error(path, "cannot prepare", e))
        };
        let mut add_result = prep(
            "INSERT INTO result (run_key, test_key, outcome, attempts, failures, duration_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        // A conflict must undo the statement's own rows: they are then taken one by one.
        let mut add_results = prep(multi_row_insert())?;
        let mut merge_result = prep(
            "INSERT INTO result (run_key, test_key, outcome, attempts, failures, duration_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (run_key, test_key) DO UPDATE SET
               attempts = result.attempts + excluded.attempts,
               failures = result.failures + excluded.failures,
               duration_ms = result.duration_ms + excluded.duration_ms,
               outcome = CASE
                 WHEN result.attempts + excluded.attempts = 0 THEN 3
                 WHEN result.failures + excluded.failures = 0 THEN 0
                 WHEN result.failures + excluded.failures < result.attempts + excluded.attempts THEN 1
                 ELSE 2 END
             RETURNING attempts - ?4",
        )?;

        let keys = store_tests(tx, path, &mut self.known_tests, cases, prepared)?;

        // Attempt number offset of each row: 0 unless another file of this run already
        // stored attempts of the same test.
        let mut offsets = vec![0i64; prepared.rows.len()];
        for (chunk_no, chunk) in prepared.rows.chunks(INSERT_ROWS).enumerate() {
            if chunk.len() == INSERT_ROWS {
                let mut values: Vec<i64> = Vec::with_capacity(INSERT_ROWS * 6);
                for (i, r) in chunk.iter().enumerate() {
                    values.extend([
                        run_key,
                        keys[chunk_no * INSERT_ROWS + i],
                        i64::from(r.outcome),
                        i64::from(r.attempts),
                        i64::from(r.failures),
                        r.duration_ms,
                    ]);
                }
                match add_results.execute(rusqlite::params_from_iter(values.iter())) {
                    Ok(_) => continue,
                    // A conflict rolls the statement back; take the rows one by one.
                    Err(e)
                        if e.sqlite_error_code()
                            == Some(rusqlite::ErrorCode::ConstraintViolation) => {}
                    Err(e) => return Err(db_error(path, "cannot store results", e)),
                }
            }
            for (i, r) in chunk.iter().enumerate() {
                let values = params![
                    run_key,
                    keys[chunk_no * INSERT_ROWS + i],
                    r.outcome,
                    r.attempts,
                    r.failures,
                    r.duration_ms
                ];
                offsets[chunk_no * INSERT_ROWS + i] = match add_result.execute(values) {
                    Ok(_) => 0,
                    Err(e)
                        if e.sqlite_error_code()
                            == Some(rusqlite::ErrorCode::ConstraintViolation) =>
                    {
                        merge_result
                            .query_row(values, |r| r.get(0))
                            .map_err(|e| db_error(path, "cannot merge a result", e))?
                    }
                    Err(e) => return Err(db_error(path, "cannot store a result", e)),
                };
            }
        }

        store_failures(
            tx,
            path,
            &mut self.known_fingerprints,
            run_key,
            prepared,
            &keys,
            &offsets,
        )?;
        Ok(prepared.tally)
    }

    /// Store a report of the fresh run: tests, fingerprints and failures now (failures
    /// need the attempts stored before them), its result rows and file record at the flush.
    fn add_fresh(
        &mut self,
        content_hash: &str,
        path: &str,
        cases: &[TestCase],
        prepared: &Prepared,
        testcase_elements: u64,
        report_time_s: Option<f64>,
    ) -> Result<FileTally> {
        let store_path = self.store_path;
        let tx = self.tx;
        let mut fresh = self.fresh.take().expect("a fresh run");
        let run_key = fresh.run_key;
        let outcome = (|| -> Result<()> {
            let keys = store_tests(tx, store_path, &mut self.known_tests, cases, prepared)?;
            // Attempts of each row stored by earlier files of the run: failure numbers follow them.
            let mut offsets = vec![0i64; prepared.rows.len()];
            for (i, r) in prepared.rows.iter().enumerate() {
                use std::collections::hash_map::Entry;
                match fresh.rows.entry(keys[i]) {
                    Entry::Vacant(v) => {
                        v.insert((r.attempts, r.failures, r.duration_ms, r.outcome));
                    }
                    Entry::Occupied(mut o) => {
                        let (a, f, d, _) = *o.get();
                        offsets[i] = i64::from(a);
                        let (a, f) = (a + r.attempts, f + r.failures);
                        o.insert((a, f, d + r.duration_ms, merged_outcome(a, f)));
                    }
                }
            }
            store_failures(
                tx,
                store_path,
                &mut self.known_fingerprints,
                run_key,
                prepared,
                &keys,
                &offsets,
            )
        })();
        let key = hash_key(content_hash);
        fresh.hashes.insert(key.clone());
        fresh
            .files
            .push((key, path.to_string(), testcase_elements as i64));
        if let Some(t) = report_time_s {
            *fresh.tests_time_s.get_or_insert(0.0) += t;
        }
        self.fresh = Some(fresh);
        outcome?;
        Ok(prepared.tally)
    }

    /// Write the fresh run's held rows: results and file records in key order.
    fn flush_fresh(&mut self) -> Result<()> {
        let Some(fresh) = self.fresh.take() else {
            return Ok(());
        };
        let path = self.store_path;
        let tx = self.tx;
        let prep = |sql: &str| {
            tx.prepare_cached(sql)
                .map_err(|e| db_error(path, "cannot prepare", e))
        };
        let mut rows: Vec<super::aggregate::HeldResult> = fresh.rows.into_iter().collect();
        rows.sort_unstable_by_key(|r| r.0);
        if let Some(t) = self.tally.as_mut() {
            t.add_run(tx, fresh.run_key, &fresh.job, fresh.started_at, &rows)
                .map_err(|e| db_error(path, "cannot tally the day", e))?;
        }
        // Most results are single passes (outcome 0, one attempt, no failure): their rows
        // bind only the test and the duration, a third of the values a row binds otherwise.
        let (passes, others): (Vec<_>, Vec<_>) = rows
            .iter()
            .partition(|&&(_, (a, f, _, o))| o == 0 && a == 1 && f == 0);
        let mut add_passes = prep(fresh_insert(Shape::Passes))?;
        let mut chunks = passes.chunks_exact(INSERT_ROWS);
        let mut values: Vec<i64> = Vec::with_capacity(1 + INSERT_ROWS * 5);
        for chunk in chunks.by_ref() {
            values.clear();
            values.push(fresh.run_key);
            for &&(test_key, (_, _, d, _)) in chunk {
                values.extend([test_key, d]);
            }
            add_passes
                .execute(rusqlite::params_from_iter(values.iter()))
                .map_err(|e| db_error(path, "cannot store results", e))?;
        }
        let rest: Vec<&super::aggregate::HeldResult> =
            chunks.remainder().iter().copied().chain(others).collect();
        let mut add_results = prep(fresh_insert(Shape::Any))?;
        let mut chunks = rest.chunks_exact(INSERT_ROWS);
        for chunk in chunks.by_ref() {
            values.clear();
            values.push(fresh.run_key);
            for &&(test_key, (a, f, d, o)) in chunk {
                values.extend([test_key, i64::from(o), i64::from(a), i64::from(f), d]);
            }
            add_results
                .execute(rusqlite::params_from_iter(values.iter()))
                .map_err(|e| db_error(path, "cannot store results", e))?;
        }
        let mut add_result = prep(
            "INSERT INTO result (run_key, test_key, outcome, attempts, failures, duration_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for &&(test_key, (a, f, d, o)) in chunks.remainder() {
            add_result
                .execute(params![fresh.run_key, test_key, o, a, f, d])
                .map_err(|e| db_error(path, "cannot store a result", e))?;
        }
        let mut files = fresh.files;
        files.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (hash, p, testcases) in &files {
            store_file(
                tx,
                path,
                &mut self.known_parts,
                fresh.run_key,
                hash,
                p,
                *testcases,
            )?;
        }
        if let Some(t) = fresh.tests_time_s {
            prep("UPDATE run SET tests_time_s = tests_time_s + ?1 WHERE run_key = ?2")?
                .execute(params![t, fresh.run_key])
                .map_err(|e| db_error(path, "cannot update the run", e))?;
        }
        Ok(())
    }

    /// Mark a point to roll back to if the file being streamed turns out to be bad.
    pub fn savepoint(&mut self) -> Result<()> {
        // Rolling back must not reach rows held in memory from before the savepoint.
        self.flush_fresh()?;
        self.saved = Some((
            self.known_tests.clone(),
            self.known_fingerprints.clone(),
            self.known_parts.clone(),
        ));
        self.tx
            .execute_batch("SAVEPOINT report")
            .map_err(|e| self.err("cannot set a savepoint", e))
    }

    pub fn release_savepoint(&mut self) -> Result<()> {
        self.saved = None;
        self.tx
            .execute_batch("RELEASE report")
            .map_err(|e| self.err("cannot release a savepoint", e))
    }

    pub fn rollback_to_savepoint(&mut self) -> Result<()> {
        // The rollback may undo a mark: mark again on the next write.
        self.marked.clear();
        // A run the tally was given may be undone (a streamed run's day is read back
        // anyway, as its chunks are written elsewhere): trust none of it.
        if let Some(t) = self.tally.as_mut() {
            t.give_up();
        }
        // A run created after the savepoint is rolled back with everything it held.
        self.fresh = None;
        if let Some((tests, fingerprints, parts)) = self.saved.take() {
            self.known_tests = tests;
            self.known_fingerprints = fingerprints;
            self.known_parts = parts;
        }
        self.tx
            .execute_batch("ROLLBACK TO report; RELEASE report")
            .map_err(|e| self.err("cannot roll back a report", e))
    }

    /// Test ids written in this batch so far.
    pub fn tests_seen(&self) -> impl Iterator<Item = i64> + '_ {
        self.known_tests.keys().copied()
    }

    /// Make the batch durable.
    pub fn commit(mut self) -> Result<()> {
        self.flush_fresh()?;
        self.finished = true;
        if let Err(e) = self.tx.execute_batch("COMMIT") {
            let _ = self.tx.execute_batch("ROLLBACK");
            if let Some(t) = self.tally.as_mut() {
                t.give_up();
            }
            return Err(db_error(self.store_path, "cannot commit", e));
        }
        Ok(())
    }
}

impl Drop for SqliteBatch<'_> {
    fn drop(&mut self) {
        if !self.finished {
            // An error or a panic mid-batch: nothing of the batch is kept.
            let _ = self.tx.execute_batch("ROLLBACK");
            if let Some(t) = self.tally.as_mut() {
                t.give_up();
            }
        }
    }
}

/// The test key of every row, storing the tests not stored yet. Most already exist (every
/// run of a job repeats its tests): an integer lookup finds them, where an upsert would
/// bind and copy four strings per test only to do nothing; tests seen in the batch are
/// answered from `known`.
fn store_tests(
    tx: &Connection,
    path: &std::path::Path,
    known: &mut HashMap<i64, i64>,
    cases: &[TestCase],
    prepared: &Prepared,
) -> Result<Vec<i64>> {
    let prep = |sql: &str| {
        tx.prepare_cached(sql)
            .map_err(|e| db_error(path, "cannot prepare", e))
    };
    let mut keys = Vec::with_capacity(prepared.rows.len());
    let mut lookup = None;
    let mut add_test = None;
    let mut wanted: Vec<i64> = prepared
        .rows
        .iter()
        .map(|r| r.test_id)
        .filter(|id| !known.contains_key(id))
        .collect();
    let (walked, decided_up_to) = if wanted.len() >= TEST_WALK_MIN {
        wanted.sort_unstable();
        wanted.dedup();
        stored_test_keys(tx, path, &wanted)?
    } else {
        (HashMap::default(), None)
    };
    for row in &prepared.rows {
        if let Some(&key) = known.get(&row.test_id) {
            keys.push(key);
            continue;
        }
        let stored: Option<i64> = if decided_up_to.is_some_and(|last| row.test_id <= last) {
            walked.get(&row.test_id).copied()
        } else {
            let lookup = match &mut lookup {
                Some(s) => s,
                None => lookup.insert(prep("SELECT test_key FROM test WHERE test_id = ?1")?),
            };
            lookup
                .query_row([row.test_id], |r| r.get(0))
                .optional()
                .map_err(|e| db_error(path, "cannot look up a test", e))?
        };
        let key = match stored {
            Some(key) => key,
            None => {
                let add_test = match &mut add_test {
                    Some(s) => s,
                    None => add_test.insert(prep(
                        "INSERT INTO test (test_id, classname, name, file, suite)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?),
                };
                let case = &cases[row.case];
                add_test
                    .execute(params![
                        row.test_id,
                        case.classname,
                        case.name,
                        case.file,
                        case.suite
                    ])
                    .map_err(|e| db_error(path, "cannot store a test", e))?;
                tx.last_insert_rowid()
            }
        };
        known.insert(row.test_id, key);
        keys.push(key);
    }
    Ok(keys)
}

/// From this many tests not yet known to the batch on, [`stored_test_keys`] walks the
/// test id index instead of looking each test up.
const TEST_WALK_MIN: usize = 256;

/// The keys of the stored tests among `wanted` (sorted, distinct test ids), found by
/// walking the unique index on `test.test_id` (which holds the key too) in id order from
/// the first: a step per stored test instead of a B-tree descent per wanted one (a
/// 10,000-test CI report into a database of about as many tests). The walk stops after
/// twice as many steps as tests wanted (a big report into a table of far more tests).
/// Returns the keys found and the largest wanted id the walk decided: every wanted id up to
/// it is stored exactly when it has a key; the rest are left to single lookups.
fn stored_test_keys(
    tx: &Connection,
    path: &std::path::Path,
    wanted: &[i64],
) -> Result<(HashMap<i64, i64>, Option<i64>)> {
    let fail = |e| db_error(path, "cannot look up a test", e);
    let mut found = HashMap::with_capacity_and_hasher(wanted.len(), Default::default());
    let Some(&first) = wanted.first() else {
        return Ok((found, None));
    };
    let mut walk = tx
        .prepare_cached("SELECT test_id, test_key FROM test WHERE test_id >= ?1 ORDER BY test_id")
        .map_err(|e| db_error(path, "cannot prepare", e))?;
    let mut rows = walk.query([first]).map_err(fail)?;
    let mut at = 0;
    let mut budget = 2 * wanted.len();
    while at < wanted.len() && budget > 0 {
        budget -= 1;
        let Some(row) = rows.next().map_err(fail)? else {
            // Past the table's last test: none of the rest is stored.
            at = wanted.len();
            break;
        };
        let id: i64 = row.get(0).map_err(fail)?;
        while at < wanted.len() && wanted[at] < id {
            at += 1;
        }
        if at < wanted.len() && wanted[at] == id {
            found.insert(id, row.get(1).map_err(fail)?);
            at += 1;
        }
    }
    Ok((found, at.checked_sub(1).map(|i| wanted[i])))
}

/// A report path as stored: (prefix, folder, name), where `name` follows the last '/',
/// `folder` is the last component of what precedes it (with its '/') and `prefix` the
/// rest; `prefix + folder + name` is the path. See `schema/0006_compact_keys.sql`, which
/// splits stored paths the same way.
pub(crate) fn split_path(path: &str) -> (&str, &str, &str) {
    let name_at = path.rfind('/').map_or(0, |i| i + 1);
    let up_to_name = &path[..name_at];
    let folder_at = up_to_name[..name_at.saturating_sub(1)]
        .rfind('/')
        .map_or(0, |i| i + 1);
    (
        &path[..folder_at],
        &path[folder_at..name_at],
        &path[name_at..],
    )
}

/// Record a stored report file, its path's prefix and name interned in `path_part`.
fn store_file(
    tx: &Connection,
    path: &std::path::Path,
    known_parts: &mut HashMap<String, i64>,
    run_key: i64,
    hash: &[u8],
    file_path: &str,
    testcases: i64,
) -> Result<()> {
    let (prefix, folder, name) = split_path(file_path);
    let mut part_id = |part: &str| -> Result<i64> {
        if let Some(&id) = known_parts.get(part) {
            return Ok(id);
        }
        let found: Option<i64> = tx
            .prepare_cached("SELECT part_id FROM path_part WHERE part = ?1")
            .and_then(|mut s| s.query_row([part], |r| r.get(0)).optional())
            .map_err(|e| db_error(path, "cannot look up a report path", e))?;
        let id = match found {
            Some(id) => id,
            None => {
                tx.prepare_cached("INSERT INTO path_part (part) VALUES (?1)")
                    .and_then(|mut s| s.execute([part]))
                    .map_err(|e| db_error(path, "cannot record a report path", e))?;
                tx.last_insert_rowid()
            }
        };
        known_parts.insert(part.to_string(), id);
        Ok(id)
    };
    let (prefix, name) = (part_id(prefix)?, part_id(name)?);
    tx.prepare_cached(
        "INSERT INTO report_file (run_key, content_hash, prefix, folder, name, testcases)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| s.execute(params![run_key, hash, prefix, folder, name, testcases]))
    .map_err(|e| db_error(path, "cannot record the report", e))?;
    Ok(())
}

pub(crate) fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

/// Result rows per multi-row INSERT: fewer statement executions per row.
const INSERT_ROWS: usize = 32;

/// The INSERT of [`INSERT_ROWS`] result rows, for a run that may already hold some.
fn multi_row_insert() -> &'static str {
    // Built once: a batch asks for it at every run it stores.
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let rows = vec!["(?,?,?,?,?,?)"; INSERT_ROWS].join(",");
        format!(
            "INSERT INTO result (run_key, test_key, outcome, attempts, failures, duration_ms) VALUES {rows}"
        )
    });
    &SQL
}

/// The rows of a [`fresh_insert`].
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// Single passes: each row binds its test and duration.
    Passes,
    /// Any result: each row binds its test, outcome, attempts, failures and duration.
    Any,
}

/// The INSERT of [`INSERT_ROWS`] result rows of a run new in this batch; the run's key is
/// bound once, as `?1`. Its rows cannot conflict, and an error rolls the whole batch back
/// anyway: `OR FAIL` says so. A statement that writes many rows and may abort halfway
/// makes SQLite copy every page it changes to a statement journal first, so that it can
/// undo its own rows; `OR FAIL` keeps them instead, and needs no such copy.
fn fresh_insert(shape: Shape) -> &'static str {
    // Built once: a batch asks for them at every run it stores. A bare `?` takes the
    // number after the largest one so far, so every row's own values get their own.
    static SQL: std::sync::LazyLock<[String; 2]> = std::sync::LazyLock::new(|| {
        [Shape::Passes, Shape::Any].map(|shape| {
            let row = match shape {
                Shape::Passes => "(?1,?,0,1,0,?)",
                Shape::Any => "(?1,?,?,?,?,?)",
            };
            format!(
                "INSERT OR FAIL INTO result (run_key, test_key, outcome, attempts, failures, duration_ms) VALUES {}",
                vec![row; INSERT_ROWS].join(",")
            )
        })
    });
    &SQL[shape as usize]
}

/// A report's rows, computed away from the writer: identities hashed, outcomes counted,
/// failures fingerprinted, rows sorted by test id.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    pub(crate) rows: Vec<PreparedRow>,
    pub(crate) failures: Vec<PreparedFailure>,
    pub(crate) tally: FileTally,
}

#[derive(Debug, Clone)]
pub(crate) struct PreparedRow {
    pub(crate) test_id: i64,
    pub(crate) case: usize,
    pub(crate) outcome: u8,
    pub(crate) attempts: u32,
    pub(crate) failures: u32,
    pub(crate) duration_ms: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct PreparedFailure {
    pub(crate) row: usize,
    /// 1-based attempt number within the case.
    pub(crate) attempt: u32,
    pub(crate) is_error: bool,
    pub(crate) fingerprint: i64,
    pub(crate) normalized: String,
    pub(crate) sample: String,
    pub(crate) kind: Option<String>,
    pub(crate) message: Option<String>,
}

/// Compute the rows of a report's cases (pure; no database).
pub fn prepare(cases: &[TestCase]) -> Prepared {
    let ids: Vec<i64> = cases.iter().map(|c| c.identity().0).collect();
    prepare_with_ids(cases, &ids)
}

/// [`prepare`] with each case's identity already known (see [`crate::junit::Report::ids`]).
pub fn prepare_with_ids(cases: &[TestCase], ids: &[i64]) -> Prepared {
    use crate::model::{AttemptOutcome, RunOutcome};
    assert_eq!(cases.len(), ids.len(), "one identity per case");
    let mut order: Vec<(i64, usize)> = ids.iter().copied().zip(0..).collect();
    // Rows in a stable order (the writer stores them by test key).
    order.sort_unstable();
    let mut out = Prepared {
        rows: Vec::with_capacity(order.len()),
        ..Default::default()
    };
    for (test_id, index) in order {
        let case = &cases[index];
        let outcome = case.run_outcome();
        let attempts = case.executed_attempts() as u32;
        let failures = case.failed_attempts() as u32;
        let t = &mut out.tally;
        t.tests += 1;
        t.attempts += u64::from(attempts);
        match outcome {
            RunOutcome::Passed => t.passed += 1,
            RunOutcome::Flaky => t.flaky += 1,
            RunOutcome::Failed => t.failed += 1,
            RunOutcome::Skipped => t.skipped += 1,
        }
        let row = out.rows.len();
        out.rows.push(PreparedRow {
            test_id,
            case: index,
            outcome: outcome.code(),
            attempts,
            failures,
            duration_ms: (case.duration_s() * 1000.0).round() as i64,
        });
        if failures == 0 {
            continue;
        }
        let mut attempt_no = 0u32;
        for attempt in &case.attempts {
            if attempt.outcome == AttemptOutcome::Skipped {
                continue;
            }
            attempt_no += 1;
            if !attempt.outcome.is_failure() {
                continue;
            }
            let failure = attempt.failure.clone().unwrap_or_default();
            let normalized = fingerprint::normalize(
                failure.kind.as_deref(),
                failure.message.as_deref(),
                failure.body.as_deref(),
            );
            let sample = failure
                .message
                .clone()
                .or_else(|| {
                    failure.body.as_deref().and_then(|b| {
                        b.lines()
                            .map(str::trim)
                            .find(|l| !l.is_empty())
                            .map(String::from)
                    })
                })
                .unwrap_or_default();
            out.failures.push(PreparedFailure {
                row,
                attempt: attempt_no,
                is_error: attempt.outcome == AttemptOutcome::Errored,
                fingerprint: fingerprint::id(&normalized),
                normalized,
                sample: truncate(&sample, 500).to_string(),
                kind: failure.kind,
                message: failure
                    .message
                    .as_deref()
                    .map(|m| truncate(m, 1000).to_string()),
            });
        }
    }
    out
}

/// The stored form of a report's content hash: the first 16 bytes of the blake3 digest,
/// from its hex form.
pub(crate) fn hash_key(hex: &str) -> Vec<u8> {
    let hex = hex.as_bytes();
    let nibble = |c: u8| match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    };
    if hex.len() < 32 || !hex.iter().all(u8::is_ascii_hexdigit) {
        // Not a digest (tests use short labels): keep the text as it is.
        return hex.to_vec();
    }
    hex[..32]
        .chunks(2)
        .map(|p| nibble(p[0]) << 4 | nibble(p[1]))
        .collect()
}
