//! The read path: runs, tests, results and failures as domain rows, in a stable order.

use std::collections::HashMap;

use rusqlite::{params, params_from_iter};
use serde::Serialize;

use super::SqliteStore;
use crate::error::Result;
use crate::model::{readable_name, TestIdentity};

/// Which runs to read.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Runs that started at or after this time (Unix seconds).
    pub since: Option<i64>,
    /// Runs that started at or before this time.
    pub until: Option<i64>,
    pub branch: Option<String>,
    pub job: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRow {
    #[serde(skip)]
    pub run_key: i64,
    pub commit: String,
    pub branch: String,
    pub job: String,
    pub run_id: String,
    pub attempt: u32,
    pub started_at: i64,
    pub duration_s: Option<f64>,
    /// Sum of the report times, the fallback for the job's duration.
    pub tests_time_s: f64,
    /// The run's page on the CI provider, when it was known at ingest.
    pub run_url: Option<String>,
}

impl RunRow {
    /// The job's wall time: as given at ingest, else the sum of its reports' times.
    pub fn wall_time_s(&self) -> f64 {
        self.duration_s.unwrap_or(self.tests_time_s)
    }

    /// The order runs are listed in: start, then job, CI run, attempt, commit. The last
    /// four are unique, so the order is total.
    pub fn stored_order(&self, other: &RunRow) -> std::cmp::Ordering {
        fn key(r: &RunRow) -> (i64, &str, &str, u32, &str) {
            (r.started_at, &r.job, &r.run_id, r.attempt, &r.commit)
        }
        key(self).cmp(&key(other))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultRow {
    pub run_key: i64,
    pub test_id: i64,
    pub outcome: u8,
    pub attempts: u32,
    pub failures: u32,
    pub duration_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureRow {
    pub run_key: i64,
    pub test_id: i64,
    pub attempt: u32,
    pub is_error: bool,
    pub fingerprint: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FingerprintRow {
    pub normalized: String,
    pub sample: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestRow {
    #[serde(skip)]
    pub test_id: i64,
    pub classname: String,
    pub name: String,
    pub file: Option<String>,
    pub suite: Option<String>,
}

impl TestRow {
    pub fn identity(&self) -> TestIdentity {
        TestIdentity(self.test_id)
    }

    pub fn readable(&self) -> String {
        readable_name(&self.classname, &self.name)
    }
}

/// A test with its result counts over the whole history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestCounts {
    pub test_id: String,
    pub classname: String,
    pub name: String,
    pub file: Option<String>,
    pub runs: u64,
    pub attempts: u64,
    pub passed: u64,
    pub flaky: u64,
    pub failed: u64,
    pub skipped: u64,
}

/// A failed attempt's number, type and message.
pub type FailureMessage = (u32, Option<String>, Option<String>);

/// Keep SQL parameter lists well under SQLite's limit.
const CHUNK: usize = 500;

/// The filter's branch and job as `AND` clauses with their arguments.
fn scope_clauses(filter: &RunFilter, sql: &mut String, args: &mut Vec<rusqlite::types::Value>) {
    if let Some(branch) = &filter.branch {
        sql.push_str(" AND branch = ?");
        args.push(branch.clone().into());
    }
    if let Some(job) = &filter.job {
        sql.push_str(" AND job = ?");
        args.push(job.clone().into());
    }
}

impl SqliteStore {
    /// The start of the newest run, the default "now" of every query. Runs that start
    /// more than [`crate::model::MAX_FUTURE_S`] after the wall clock are ignored (a runner
    /// with a broken clock must not move "now" years ahead and empty every window); ingest
    /// refuses such runs, so for a database it wrote the answer depends on the data only.
    pub fn newest_run_start(&self) -> Result<Option<i64>> {
        let horizon = chrono::Utc::now().timestamp() + crate::model::MAX_FUTURE_S;
        self.conn
            .query_row(
                "SELECT COALESCE((SELECT MAX(started_at) FROM run WHERE started_at <= ?1),
                                 (SELECT MAX(started_at) FROM run))",
                params![horizon],
                |r| r.get(0),
            )
            .map_err(|e| self.err("cannot read runs", e))
    }

    /// `PRAGMA data_version`: changes whenever another connection (of any process)
    /// commits a write. This connection's own writes do not change it, so a cache should
    /// watch through a connection of its own that never writes.
    pub fn data_version(&self) -> Result<i64> {
        self.conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(|e| self.err("cannot read the data version", e))
    }

    /// Run `f` inside one read transaction, so every read in it sees the same committed
    /// state (a scan must not count a run whose failures it read before another process
    /// added them). Inside one already, just run `f`.
    pub fn read_snapshot<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        if !self.conn.is_autocommit() {
            return f();
        }
        self.conn
            .execute_batch("BEGIN DEFERRED")
            .map_err(|e| self.err("cannot start a read", e))?;
        // Ends the read even when `f` fails or panics: an open read would pin old pages.
        struct End<'c>(&'c rusqlite::Connection);
        impl Drop for End<'_> {
            fn drop(&mut self) {
                if !self.0.is_autocommit() {
                    let _ = self.0.execute_batch("ROLLBACK");
                }
            }
        }
        let _end = End(&self.conn);
        f()
    }

    /// Runs matching the filter, oldest first, in a stable order.
    pub fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRow>> {
        let mut sql = String::from(
            "SELECT run_key, commit_sha, branch, job, ci_run_id, attempt, started_at, duration_s, tests_time_s, run_url
             FROM run WHERE 1 = 1",
        );
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(since) = filter.since {
            sql.push_str(" AND started_at >= ?");
            args.push(since.into());
        }
        if let Some(until) = filter.until {
            sql.push_str(" AND started_at <= ?");
            args.push(until.into());
        }
        scope_clauses(filter, &mut sql, &mut args);
        let mut stmt = self
            .conn
            .prepare(&sql)
            .map_err(|e| self.err("cannot read runs", e))?;
        let mut rows: Vec<RunRow> = stmt
            .query_map(params_from_iter(args), |r| {
                Ok(RunRow {
                    run_key: r.get(0)?,
                    commit: r.get(1)?,
                    branch: r.get(2)?,
                    job: r.get(3)?,
                    run_id: r.get(4)?,
                    attempt: r.get(5)?,
                    started_at: r.get(6)?,
                    duration_s: r.get(7)?,
                    tests_time_s: r.get(8)?,
                    run_url: r.get(9)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err("cannot read runs", e))?;
        // Sorted here, not by `ORDER BY`: SQLite would copy every row into a temporary
        // B-tree (a seventh of `flaky`'s reading). The columns are NOT NULL and TEXT
        // compares as bytes in both, so the order is the one `ORDER BY started_at, job,
        // ci_run_id, attempt, commit_sha` gave.
        rows.sort_unstable_by(RunRow::stored_order);
        Ok(rows)
    }

    /// See [`crate::store::Store::has_runs_before`].
    pub fn has_runs_before(&self, filter: &RunFilter) -> Result<bool> {
        let Some(since) = filter.since else {
            return Ok(false);
        };
        // With a job, SQLite searches the run identity index (it starts with the job): only
        // that job's runs are looked at. Otherwise `run_by_time` walks back from `since`.
        let mut sql = String::from("SELECT EXISTS (SELECT 1 FROM run WHERE started_at < ?");
        let mut args: Vec<rusqlite::types::Value> = vec![since.into()];
        scope_clauses(filter, &mut sql, &mut args);
        sql.push(')');
        self.conn
            .query_row(&sql, params_from_iter(args), |r| r.get(0))
            .map_err(|e| self.err("cannot read runs", e))
    }

    /// Number of report files stored per run key.
    pub fn report_counts(&self) -> Result<HashMap<i64, u64>> {
        let mut stmt = self
            .conn
            .prepare("SELECT run_key, COUNT(*) FROM report_file GROUP BY run_key")
            .map_err(|e| self.err("cannot read reports", e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect::<Result<HashMap<_, _>, _>>())
            .map_err(|e| self.err("cannot read reports", e))?;
        Ok(rows)
    }

    /// The test key → test id map, extended with the tests stored since it was last read.
    pub(crate) fn test_ids(&self) -> Result<std::cell::Ref<'_, Vec<Option<i64>>>> {
        {
            let mut map = self.test_ids.borrow_mut();
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT test_key, test_id FROM test WHERE test_key >= ?1 ORDER BY test_key",
                )
                .map_err(|e| self.err("cannot read tests", e))?;
            let mut rows = stmt
                .query(params![map.len() as i64])
                .map_err(|e| self.err("cannot read tests", e))?;
            while let Some(r) = rows.next().map_err(|e| self.err("cannot read tests", e))? {
                let key: i64 = r.get(0).map_err(|e| self.err("cannot read tests", e))?;
                let id: i64 = r.get(1).map_err(|e| self.err("cannot read tests", e))?;
                let Ok(at) = usize::try_from(key) else {
                    continue;
                };
                if at >= map.len() {
                    map.resize(at + 1, None);
                }
                map[at] = Some(id);
            }
        }
        Ok(self.test_ids.borrow())
    }

    /// The test id of a test key, from `ids` (see [`SqliteStore::test_ids`]) or, for a
    /// test stored since (by another connection), from the database.
    pub(crate) fn test_id_of(&self, ids: &[Option<i64>], key: i64) -> Result<i64> {
        if let Some(&Some(id)) = usize::try_from(key).ok().and_then(|k| ids.get(k)) {
            return Ok(id);
        }
        use rusqlite::OptionalExtension;
        self.conn
            .prepare_cached("SELECT test_id FROM test WHERE test_key = ?1")
            .and_then(|mut s| s.query_row(params![key], |r| r.get(0)).optional())
            .map_err(|e| self.err("cannot read tests", e))?
            .ok_or_else(|| {
                crate::error::Error::Other(format!(
                    "database {} is inconsistent: test key {key} has no test row",
                    self.path.display()
                ))
            })
    }

    /// Call `f(position of the run in run_keys, result)` for every result of the given
    /// runs, run by run, and by test id within a run.
    pub fn for_each_result(
        &self,
        run_keys: &[i64],
        mut f: impl FnMut(usize, ResultRow),
    ) -> Result<()> {
        let ids = self.test_ids()?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT test_key, outcome, attempts, failures, duration_ms FROM result WHERE run_key = ?1",
            )
            .map_err(|e| self.err("cannot read results", e))?;
        let mut run: Vec<ResultRow> = Vec::new();
        for (position, &run_key) in run_keys.iter().enumerate() {
            let mut rows = stmt
                .query(params![run_key])
                .map_err(|e| self.err("cannot read results", e))?;
            run.clear();
            while let Some(r) = rows
                .next()
                .map_err(|e| self.err("cannot read results", e))?
            {
                // The hot loop of every score: read integers without per-value conversions.
                let int = |i: usize| r.get_ref(i).ok().and_then(|v| v.as_i64().ok()).unwrap_or(0);
                run.push(ResultRow {
                    run_key,
                    test_id: self.test_id_of(&ids, int(0))?,
                    outcome: int(1) as u8,
                    attempts: int(2) as u32,
                    failures: int(3) as u32,
                    duration_ms: int(4),
                });
            }
            // Rows are stored by test key; callers get them by test id, as before keys.
            run.sort_unstable_by_key(|r| r.test_id);
            for r in run.drain(..) {
                f(position, r);
            }
        }
        Ok(())
    }

    /// One test's result in one run, if it ran there.
    pub fn result(&self, run_key: i64, test_id: i64) -> Result<Option<ResultRow>> {
        Ok(self
            .results_of(&[(run_key, test_id)])?
            .remove(&(run_key, test_id)))
    }

    /// The results of the given (run key, test id) pairs that exist, keyed by the pair.
    pub fn results_of(&self, pairs: &[(i64, i64)]) -> Result<HashMap<(i64, i64), ResultRow>> {
        use rusqlite::OptionalExtension;
        let mut out = HashMap::with_capacity(pairs.len());
        // Indexed point lookups are cheap in-process; only PostgreSQL needs them batched.
        // A pair names a test by id: each test's key is looked up once, so each pair costs
        // one seek of the result table's primary key.
        let mut keys: HashMap<i64, Option<i64>> = HashMap::new();
        let mut by_key = self
            .conn
            .prepare_cached("SELECT test_key FROM test WHERE test_id = ?1")
            .map_err(|e| self.err("cannot read tests", e))?;
        let mut result = self
            .conn
            .prepare_cached(
                "SELECT outcome, attempts, failures, duration_ms FROM result
                 WHERE run_key = ?1 AND test_key = ?2",
            )
            .map_err(|e| self.err("cannot read a result", e))?;
        for &(run_key, test_id) in pairs {
            let key = match keys.get(&test_id) {
                Some(&key) => key,
                None => {
                    let key = by_key
                        .query_row(params![test_id], |r| r.get(0))
                        .optional()
                        .map_err(|e| self.err("cannot read tests", e))?;
                    keys.insert(test_id, key);
                    key
                }
            };
            let Some(key) = key else { continue };
            let row = result
                .query_row(params![run_key, key], |r| {
                    Ok(ResultRow {
                        run_key,
                        test_id,
                        outcome: r.get(0)?,
                        attempts: r.get(1)?,
                        failures: r.get(2)?,
                        duration_ms: r.get(3)?,
                    })
                })
                .optional()
                .map_err(|e| self.err("cannot read a result", e))?;
            if let Some(r) = row {
                out.insert((run_key, test_id), r);
            }
        }
        Ok(out)
    }

    /// Every failed attempt in the given runs, ordered by run, test and attempt.
    pub fn failures(&self, run_keys: &[i64]) -> Result<Vec<FailureRow>> {
        let ids = self.test_ids()?;
        let mut out = Vec::new();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT test_key, attempt, is_error, fingerprint FROM failure WHERE run_key = ?1",
            )
            .map_err(|e| self.err("cannot read failures", e))?;
        for &run_key in run_keys {
            let rows = stmt
                .query_map(params![run_key], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        FailureRow {
                            run_key,
                            test_id: 0,
                            attempt: r.get(1)?,
                            is_error: r.get(2)?,
                            fingerprint: r.get(3)?,
                        },
                    ))
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(|e| self.err("cannot read failures", e))?;
            let start = out.len();
            for (key, mut row) in rows {
                row.test_id = self.test_id_of(&ids, key)?;
                out.push(row);
            }
            out[start..].sort_unstable_by_key(|f| (f.test_id, f.attempt));
        }
        Ok(out)
    }

    /// Failure messages of one test in one run (type, message), by attempt.
    pub fn failure_messages(&self, run_key: i64, test_id: i64) -> Result<Vec<FailureMessage>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT attempt, type, message FROM failure
                 WHERE run_key = ?1 AND test_key = (SELECT test_key FROM test WHERE test_id = ?2)
                 ORDER BY attempt",
            )
            .map_err(|e| self.err("cannot read failures", e))?;
        let rows = stmt
            .query_map(params![run_key, test_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err("cannot read failures", e))?;
        Ok(rows)
    }

    pub fn fingerprints(&self, ids: &[i64]) -> Result<HashMap<i64, FingerprintRow>> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT fingerprint, normalized, sample FROM fingerprint WHERE fingerprint IN ({})",
                placeholders(chunk.len())
            );
            let mut stmt = self
                .conn
                .prepare(&sql)
                .map_err(|e| self.err("cannot read fingerprints", e))?;
            let rows = stmt
                .query_map(params_from_iter(chunk), |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        FingerprintRow {
                            normalized: r.get(1)?,
                            sample: r.get(2)?,
                        },
                    ))
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(|e| self.err("cannot read fingerprints", e))?;
            out.extend(rows);
        }
        Ok(out)
    }

    pub fn tests_by_id(&self, ids: &[i64]) -> Result<HashMap<i64, TestRow>> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT test_id, classname, name, file, suite FROM test WHERE test_id IN ({})",
                placeholders(chunk.len())
            );
            let mut stmt = self
                .conn
                .prepare(&sql)
                .map_err(|e| self.err("cannot read tests", e))?;
            let rows = stmt
                .query_map(params_from_iter(chunk), test_row)
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(|e| self.err("cannot read tests", e))?;
            out.extend(rows.into_iter().map(|t| (t.test_id, t)));
        }
        Ok(out)
    }

    /// Tests matching a user's query: a 16-hex-digit test id, an exact readable name
    /// (`Class.method`), or else a substring of it. Sorted by readable name.
    pub fn find_tests(&self, query: &str) -> Result<Vec<TestRow>> {
        if let Some(id) = TestIdentity::from_hex(query) {
            let found = self.tests_by_id(&[id.0])?;
            if let Some(t) = found.into_values().next() {
                return Ok(vec![t]);
            }
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT test_id, classname, name, file, suite FROM test
                 WHERE instr(classname || '.' || name, ?1) > 0 OR instr(name, ?1) > 0",
            )
            .map_err(|e| self.err("cannot search tests", e))?;
        let mut rows = stmt
            .query_map(params![query], test_row)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err("cannot search tests", e))?;
        let exact: Vec<TestRow> = rows
            .iter()
            .filter(|t| t.readable() == query || t.name == query)
            .cloned()
            .collect();
        if !exact.is_empty() {
            rows = exact;
        }
        rows.sort_by_key(|t| (t.readable(), t.test_id));
        Ok(rows)
    }

    /// Every test with its result counts over the whole history, sorted by name.
    pub fn test_counts(&self) -> Result<Vec<TestCounts>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT t.test_id, t.classname, t.name, t.file,
                        COUNT(*), SUM(r.attempts),
                        SUM(CASE WHEN r.outcome = 0 THEN 1 ELSE 0 END),
                        SUM(CASE WHEN r.outcome = 1 THEN 1 ELSE 0 END),
                        SUM(CASE WHEN r.outcome = 2 THEN 1 ELSE 0 END),
                        SUM(CASE WHEN r.outcome = 3 THEN 1 ELSE 0 END)
                 FROM result r JOIN test t ON t.test_key = r.test_key
                 GROUP BY t.test_id, t.classname, t.name, t.file
                 ORDER BY t.classname, t.name, t.file, t.test_id",
            )
            .map_err(|e| self.err("cannot read tests", e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(TestCounts {
                    test_id: TestIdentity(r.get(0)?).hex(),
                    classname: r.get(1)?,
                    name: r.get(2)?,
                    file: r.get(3)?,
                    runs: r.get(4)?,
                    attempts: r.get(5)?,
                    passed: r.get(6)?,
                    flaky: r.get(7)?,
                    failed: r.get(8)?,
                    skipped: r.get(9)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err("cannot read tests", e))?;
        Ok(rows)
    }

    /// Stored result rows and the database size in bytes (page_count × page_size).
    pub fn storage_stats(&self) -> Result<(u64, u64)> {
        let results: u64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM result", [], |r| r.get(0))
            .map_err(|e| self.err("cannot count results", e))?;
        let pages: u64 = self
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .map_err(|e| self.err("cannot read page count", e))?;
        let page_size: u64 = self
            .conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(|e| self.err("cannot read page size", e))?;
        Ok((results, pages * page_size))
    }
}

fn test_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TestRow> {
    Ok(TestRow {
        test_id: r.get(0)?,
        classname: r.get(1)?,
        name: r.get(2)?,
        file: r.get(3)?,
        suite: r.get(4)?,
    })
}

fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 2);
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push('?');
    }
    s
}
