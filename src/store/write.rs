//! The write path: one transaction per batch of report files.

use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use super::{db_error, Store};
use crate::error::Result;
use crate::fingerprint;
use crate::model::{RunMeta, TestCase};

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
pub struct Batch<'s> {
    tx: &'s Connection,
    finished: bool,
    store_path: &'s std::path::Path,
    // Per batch, so that a rolled-back batch leaves no stale "already stored" entries.
    known_tests: std::collections::HashSet<i64>,
    known_fingerprints: std::collections::HashSet<i64>,
    /// The known sets at the savepoint, restored on rollback so that no test row that was
    /// rolled back is taken as stored.
    saved: Option<(
        std::collections::HashSet<i64>,
        std::collections::HashSet<i64>,
    )>,
}

/// Attempts to take the write lock before giving up; each waits up to the busy timeout.
const LOCK_RETRIES: u32 = 20;

impl Store {
    /// Start a write batch. Takes the write lock at once (`BEGIN IMMEDIATE`), so that
    /// concurrent writers queue instead of failing later with "database is locked".
    pub fn batch(&mut self) -> Result<Batch<'_>> {
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
        Ok(Batch {
            tx: &self.conn,
            finished: false,
            store_path: &self.path,
            known_tests: Default::default(),
            known_fingerprints: Default::default(),
            saved: None,
        })
    }
}

impl Batch<'_> {
    fn err(&self, context: &str, e: rusqlite::Error) -> crate::error::Error {
        db_error(self.store_path, context, e)
    }

    /// The run's key, creating the run if it is new. Returns `(run_key, created)`.
    pub fn run(&mut self, meta: &RunMeta) -> Result<(i64, bool)> {
        let existing: Option<(i64, Option<f64>)> = self
            .tx
            .prepare_cached(
                "SELECT run_key, duration_s FROM run
                 WHERE job = ?1 AND ci_run_id = ?2 AND attempt = ?3 AND commit_sha = ?4",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![meta.job, meta.run_id, meta.attempt, meta.commit],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
            })
            .map_err(|e| self.err("cannot look up the run", e))?;
        if let Some((key, duration)) = existing {
            if duration.is_none() && meta.duration_s.is_some() {
                self.tx
                    .execute(
                        "UPDATE run SET duration_s = ?1 WHERE run_key = ?2",
                        params![meta.duration_s, key],
                    )
                    .map_err(|e| self.err("cannot update the run", e))?;
            }
            return Ok((key, false));
        }
        self.tx
            .prepare_cached(
                "INSERT INTO run (commit_sha, branch, job, ci_run_id, attempt, started_at, duration_s)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    meta.commit,
                    meta.branch,
                    meta.job,
                    meta.run_id,
                    meta.attempt,
                    meta.started_at,
                    meta.duration_s
                ])
            })
            .map_err(|e| self.err("cannot store the run", e))?;
        Ok((self.tx.last_insert_rowid(), true))
    }

    /// Whether this exact report (by content hash) is already stored for the run.
    pub fn has_file(&self, run_key: i64, content_hash: &str) -> Result<bool> {
        self.tx
            .prepare_cached("SELECT 1 FROM report_file WHERE run_key = ?1 AND content_hash = ?2")
            .and_then(|mut s| s.exists(params![run_key, content_hash]))
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
        let tally = self.add_cases(run_key, cases)?;
        self.tx
            .prepare_cached(
                "INSERT INTO report_file (run_key, content_hash, path, testcases) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![run_key, content_hash, path, testcase_elements as i64]))
            .map_err(|e| self.err("cannot record the report", e))?;
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
        let mut tally = FileTally::default();
        // Sorted inserts fill B-tree pages densely (the key is (run_key, test_id)).
        let mut order: Vec<(i64, usize)> = cases
            .iter()
            .enumerate()
            .map(|(i, c)| (c.identity().0, i))
            .collect();
        order.sort_unstable();

        let tx = self.tx;
        let mut add_test = tx
            .prepare_cached(
                "INSERT INTO test (test_id, classname, name, file, suite) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (test_id) DO NOTHING",
            )
            .map_err(|e| db_error(self.store_path, "cannot prepare", e))?;
        let mut add_result = tx
            .prepare_cached(
                "INSERT INTO result (run_key, test_id, outcome, attempts, failures, duration_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(|e| db_error(self.store_path, "cannot prepare", e))?;
        let mut merge_result = tx
            .prepare_cached(
                "INSERT INTO result (run_key, test_id, outcome, attempts, failures, duration_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (run_key, test_id) DO UPDATE SET
                   attempts = result.attempts + excluded.attempts,
                   failures = result.failures + excluded.failures,
                   duration_ms = result.duration_ms + excluded.duration_ms,
                   outcome = CASE
                     WHEN result.attempts + excluded.attempts = 0 THEN 3
                     WHEN result.failures + excluded.failures = 0 THEN 0
                     WHEN result.failures + excluded.failures < result.attempts + excluded.attempts THEN 1
                     ELSE 2 END
                 RETURNING attempts - ?4",
            )
            .map_err(|e| db_error(self.store_path, "cannot prepare", e))?;
        let mut add_failure = tx
            .prepare_cached(
                "INSERT INTO failure (run_key, test_id, attempt, is_error, fingerprint, type, message)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (run_key, test_id, attempt) DO NOTHING",
            )
            .map_err(|e| db_error(self.store_path, "cannot prepare", e))?;
        let mut add_fingerprint = tx
            .prepare_cached(
                "INSERT INTO fingerprint (fingerprint, normalized, sample) VALUES (?1, ?2, ?3)
                 ON CONFLICT (fingerprint) DO NOTHING",
            )
            .map_err(|e| db_error(self.store_path, "cannot prepare", e))?;

        for (test_id, index) in order {
            let case = &cases[index];
            if self.known_tests.insert(test_id) {
                add_test
                    .execute(params![
                        test_id,
                        case.classname,
                        case.name,
                        case.file,
                        case.suite
                    ])
                    .map_err(|e| db_error(self.store_path, "cannot store a test", e))?;
            }
            let outcome = case.run_outcome();
            let attempts = case.executed_attempts() as i64;
            let failures = case.failed_attempts() as i64;
            let duration_ms = (case.duration_s() * 1000.0).round() as i64;
            tally.tests += 1;
            tally.attempts += attempts as u64;
            match outcome {
                crate::model::RunOutcome::Passed => tally.passed += 1,
                crate::model::RunOutcome::Flaky => tally.flaky += 1,
                crate::model::RunOutcome::Failed => tally.failed += 1,
                crate::model::RunOutcome::Skipped => tally.skipped += 1,
            }
            // A plain insert only conflicts when another file of this run (or a repeated
            // case the caller did not merge) already has the test: then attempts add up.
            let first_attempt: i64 = {
                match add_result.execute(params![
                    run_key,
                    test_id,
                    outcome.code(),
                    attempts,
                    failures,
                    duration_ms
                ]) {
                    Ok(_) => 0,
                    Err(e)
                        if e.sqlite_error_code()
                            == Some(rusqlite::ErrorCode::ConstraintViolation) =>
                    {
                        merge_result
                            .query_row(
                                params![
                                    run_key,
                                    test_id,
                                    outcome.code(),
                                    attempts,
                                    failures,
                                    duration_ms
                                ],
                                |r| r.get(0),
                            )
                            .map_err(|e| db_error(self.store_path, "cannot merge a result", e))?
                    }
                    Err(e) => return Err(db_error(self.store_path, "cannot store a result", e)),
                }
            };
            if failures == 0 {
                continue;
            }
            let mut attempt_no = first_attempt;
            for attempt in &case.attempts {
                if attempt.outcome == crate::model::AttemptOutcome::Skipped {
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
                let fp = fingerprint::id(&normalized);
                if self.known_fingerprints.insert(fp) {
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
                    add_fingerprint
                        .execute(params![fp, normalized, truncate(&sample, 500)])
                        .map_err(|e| db_error(self.store_path, "cannot store a fingerprint", e))?;
                }
                let is_error = attempt.outcome == crate::model::AttemptOutcome::Errored;
                add_failure
                    .execute(params![
                        run_key,
                        test_id,
                        attempt_no,
                        is_error,
                        fp,
                        failure.kind,
                        failure.message.as_deref().map(|m| truncate(m, 1000))
                    ])
                    .map_err(|e| db_error(self.store_path, "cannot store a failure", e))?;
            }
        }
        Ok(tally)
    }

    /// Mark a point to roll back to if the file being streamed turns out to be bad.
    pub fn savepoint(&mut self) -> Result<()> {
        self.saved = Some((self.known_tests.clone(), self.known_fingerprints.clone()));
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
        if let Some((tests, fingerprints)) = self.saved.take() {
            self.known_tests = tests;
            self.known_fingerprints = fingerprints;
        }
        self.tx
            .execute_batch("ROLLBACK TO report; RELEASE report")
            .map_err(|e| self.err("cannot roll back a report", e))
    }

    /// Test ids written in this batch so far.
    pub fn tests_seen(&self) -> impl Iterator<Item = i64> + '_ {
        self.known_tests.iter().copied()
    }

    /// Make the batch durable.
    pub fn commit(mut self) -> Result<()> {
        self.finished = true;
        if let Err(e) = self.tx.execute_batch("COMMIT") {
            let _ = self.tx.execute_batch("ROLLBACK");
            return Err(db_error(self.store_path, "cannot commit", e));
        }
        Ok(())
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        if !self.finished {
            // An error or a panic mid-batch: nothing of the batch is kept.
            let _ = self.tx.execute_batch("ROLLBACK");
        }
    }
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}
