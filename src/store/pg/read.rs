//! The PostgreSQL read path: the same rows, in the same order, as the SQLite one
//! (`COLLATE "C"` text and explicit `NULLS FIRST` where SQLite's order differs from
//! PostgreSQL's default).

use std::collections::HashMap;

use postgres::types::ToSql;

use super::write::outcome;
use super::PgStore;
use crate::error::Result;
use crate::model::TestIdentity;
use crate::store::read::FailureMessage;
use crate::store::{
    FailureRow, FingerprintRow, QuarantineChange, QuarantineEventRow, QuarantineRow, ResultRow,
    RunFilter, RunRow, TestCounts, TestRow,
};

/// Runs per query when reading results run by run.
const RUNS_PER_QUERY: usize = 256;

/// Runs per query when reading failures. Each query is planned over every partition of
/// `failure` (about 7 ms at 260 days), and failures are few per run, so fewer, larger
/// queries: on 10M results, whole-history `flaky` read 25k runs' failures in 99 queries
/// (0.70 s of its 1.02 s in PostgreSQL).
const FAILURE_RUNS_PER_QUERY: usize = 4096;

/// The day of a run, from its start, in SQL (the partition key).
const RUN_DAY: &str = "floor(started_at::float8 / 86400)::int4";

/// The filter's branch and job as `AND` clauses with their numbered arguments.
fn scope_clauses(filter: &RunFilter, sql: &mut String, args: &mut Vec<Box<dyn ToSql + Sync>>) {
    if let Some(branch) = &filter.branch {
        args.push(Box::new(branch.clone()));
        sql.push_str(&format!(" AND branch = ${}", args.len()));
    }
    if let Some(job) = &filter.job {
        args.push(Box::new(job.clone()));
        sql.push_str(&format!(" AND job = ${}", args.len()));
    }
}

impl PgStore {
    /// As on SQLite: runs more than a day ahead of the clock never set the default "now".
    pub fn newest_run_start(&self) -> Result<Option<i64>> {
        let horizon = chrono::Utc::now().timestamp() + crate::model::MAX_FUTURE_S;
        let row = self
            .client
            .borrow_mut()
            .query_one(
                "SELECT COALESCE((SELECT MAX(started_at) FROM run WHERE started_at <= $1),
                                 (SELECT MAX(started_at) FROM run))",
                &[&horizon],
            )
            .map_err(|e| self.err("cannot read runs", e))?;
        Ok(row.get(0))
    }

    /// The database's generation (see `schema/postgres/0004_generation.sql`): bumped by
    /// every write of every connection, this one's included.
    pub fn data_version(&self) -> Result<i64> {
        let row = self
            .client
            .borrow_mut()
            .query_one("SELECT n FROM flakehound_generation WHERE id = 1", &[])
            .map_err(|e| self.err("cannot read the database's generation", e))?;
        Ok(row.get(0))
    }

    /// See `lookup::full_commit_on`: the same rule on PostgreSQL.
    pub fn full_commit(&self, job: &str, commit: &str) -> Result<String> {
        full_commit_pg(&mut self.client.borrow_mut(), job, commit)
            .map_err(|e| self.err("cannot look up commits", e))
    }

    pub fn jobs(&self) -> Result<Vec<String>> {
        self.distinct(r#"SELECT DISTINCT job COLLATE "C" FROM run ORDER BY 1"#)
    }

    pub fn branches(&self) -> Result<Vec<String>> {
        self.distinct(r#"SELECT DISTINCT branch COLLATE "C" FROM run ORDER BY 1"#)
    }

    fn distinct(&self, sql: &str) -> Result<Vec<String>> {
        let rows = self
            .client
            .borrow_mut()
            .query(sql, &[])
            .map_err(|e| self.err("cannot read runs", e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// As on SQLite: `f` reads one consistent state, in one REPEATABLE READ transaction.
    pub fn read_snapshot<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        if self.snapshot.get() {
            return f();
        }
        self.client
            .borrow_mut()
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .map_err(|e| self.err("cannot start a read", e))?;
        self.snapshot.set(true);
        // Ends the read even when `f` fails or panics: a pooled connection must not go
        // back inside a transaction.
        struct End<'s>(&'s PgStore);
        impl Drop for End<'_> {
            fn drop(&mut self) {
                self.0.snapshot.set(false);
                if let Ok(mut client) = self.0.client.try_borrow_mut() {
                    let _ = client.batch_execute("ROLLBACK");
                }
            }
        }
        let _end = End(self);
        f()
    }

    /// As on SQLite.
    pub fn has_runs_before(&self, filter: &RunFilter) -> Result<bool> {
        let Some(since) = filter.since else {
            return Ok(false);
        };
        let mut sql = String::from("SELECT EXISTS (SELECT 1 FROM run WHERE started_at < $1");
        let mut args: Vec<Box<dyn ToSql + Sync>> = vec![Box::new(since)];
        scope_clauses(filter, &mut sql, &mut args);
        sql.push(')');
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref()).collect();
        let row = self
            .client
            .borrow_mut()
            .query_one(&sql, &params)
            .map_err(|e| self.err("cannot read runs", e))?;
        Ok(row.get(0))
    }

    pub fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRow>> {
        let mut sql = String::from(
            "SELECT run_key, commit_sha, branch, job, ci_run_id, attempt, started_at, duration_s, tests_time_s, run_url
             FROM run WHERE true",
        );
        let mut args: Vec<Box<dyn ToSql + Sync>> = Vec::new();
        if let Some(since) = filter.since {
            args.push(Box::new(since));
            sql.push_str(&format!(" AND started_at >= ${}", args.len()));
        }
        if let Some(until) = filter.until {
            args.push(Box::new(until));
            sql.push_str(&format!(" AND started_at <= ${}", args.len()));
        }
        scope_clauses(filter, &mut sql, &mut args);
        sql.push_str(" ORDER BY started_at, job, ci_run_id, attempt, commit_sha");
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref()).collect();
        let rows = self
            .client
            .borrow_mut()
            .query(&sql, &params)
            .map_err(|e| self.err("cannot read runs", e))?;
        Ok(rows
            .iter()
            .map(|r| RunRow {
                run_key: r.get(0),
                commit: r.get(1),
                branch: r.get(2),
                job: r.get(3),
                run_id: r.get(4),
                attempt: r.get::<_, i32>(5) as u32,
                started_at: r.get(6),
                duration_s: r.get(7),
                tests_time_s: r.get(8),
                run_url: r.get(9),
            })
            .collect())
    }

    pub fn report_counts(&self) -> Result<HashMap<i64, u64>> {
        let rows = self
            .client
            .borrow_mut()
            .query(
                "SELECT run_key, COUNT(*) FROM report_file GROUP BY run_key",
                &[],
            )
            .map_err(|e| self.err("cannot read reports", e))?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get::<_, i64>(1) as u64))
            .collect())
    }

    /// Each run's day, for partition pruning.
    fn run_days(&self, run_keys: &[i64]) -> Result<HashMap<i64, i32>> {
        let rows = self
            .client
            .borrow_mut()
            .query(
                &format!("SELECT run_key, {RUN_DAY} FROM run WHERE run_key = ANY($1)"),
                &[&run_keys],
            )
            .map_err(|e| self.err("cannot read runs", e))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub fn for_each_result(
        &self,
        run_keys: &[i64],
        mut f: impl FnMut(usize, ResultRow),
    ) -> Result<()> {
        let days = self.run_days(run_keys)?;
        let mut client = self.client.borrow_mut();
        // One scan per chunk of runs over the partitions of their days, put in the
        // caller's order here (a join per run costs a round of partition pruning each).
        let stmt = self
            .statement(
                &mut client,
                "SELECT run_key::int8, test_id, attempts, failures, duration_ms FROM result
                 WHERE day = ANY($1::int4[]) AND run_key = ANY($2::int8[])",
            )
            .map_err(|e| self.err("cannot read results", e))?;
        for (chunk_no, chunk) in run_keys.chunks(RUNS_PER_QUERY).enumerate() {
            let position: HashMap<i64, usize> = chunk
                .iter()
                .enumerate()
                .map(|(i, &k)| (k, chunk_no * RUNS_PER_QUERY + i))
                .collect();
            let mut chunk_days: Vec<i32> =
                chunk.iter().filter_map(|k| days.get(k).copied()).collect();
            chunk_days.sort_unstable();
            chunk_days.dedup();
            let keys: Vec<i64> = chunk.to_vec();
            let mut rows: Vec<(usize, ResultRow)> = client
                .query(&stmt, &[&chunk_days, &keys])
                .map_err(|e| self.err("cannot read results", e))?
                .iter()
                .map(|r| {
                    let run_key: i64 = r.get(0);
                    let attempts = r.get::<_, i16>(2) as u32;
                    let failures = r.get::<_, i16>(3) as u32;
                    (
                        position[&run_key],
                        ResultRow {
                            run_key,
                            test_id: r.get(1),
                            outcome: outcome(attempts, failures),
                            attempts,
                            failures,
                            duration_ms: i64::from(r.get::<_, i32>(4)),
                        },
                    )
                })
                .collect();
            rows.sort_unstable_by_key(|(pos, r)| (*pos, r.test_id));
            for (pos, r) in rows {
                f(pos, r);
            }
        }
        Ok(())
    }

    pub fn result(&self, run_key: i64, test_id: i64) -> Result<Option<ResultRow>> {
        let row = self
            .client
            .borrow_mut()
            .query_opt(
                &format!(
                    "SELECT attempts, failures, duration_ms FROM result
                     WHERE day = (SELECT {RUN_DAY} FROM run WHERE run_key = $1::int8)
                       AND run_key = $1::int8 AND test_id = $2"
                ),
                &[&run_key, &test_id],
            )
            .map_err(|e| self.err("cannot read a result", e))?;
        Ok(row.map(|r| result_row(run_key, test_id, &r, 0)))
    }

    /// As on SQLite, in one query per chunk: a query per pair is a round trip and a
    /// round of partition pruning each (most of `flaky`'s time on the demo).
    pub fn results_of(&self, pairs: &[(i64, i64)]) -> Result<HashMap<(i64, i64), ResultRow>> {
        let mut keys: Vec<i64> = pairs.iter().map(|p| p.0).collect();
        keys.sort_unstable();
        keys.dedup();
        let days = self.run_days(&keys)?;
        let mut client = self.client.borrow_mut();
        let stmt = self
            .statement(
                &mut client,
                "SELECT k.run_key, k.test_id, r.attempts, r.failures, r.duration_ms
                 FROM unnest($1::int8[], $2::int4[], $3::int8[]) AS k(run_key, day, test_id)
                 CROSS JOIN LATERAL (
                   SELECT attempts, failures, duration_ms FROM result
                   WHERE result.day = k.day AND result.run_key = k.run_key
                     AND result.test_id = k.test_id
                 ) r",
            )
            .map_err(|e| self.err("cannot read results", e))?;
        let mut out = HashMap::with_capacity(pairs.len());
        for chunk in pairs.chunks(FAILURE_RUNS_PER_QUERY) {
            let run_keys: Vec<i64> = chunk.iter().map(|p| p.0).collect();
            let chunk_days: Vec<i32> = chunk
                .iter()
                .map(|p| days.get(&p.0).copied().unwrap_or(i32::MIN))
                .collect();
            let test_ids: Vec<i64> = chunk.iter().map(|p| p.1).collect();
            let rows = client
                .query(&stmt, &[&run_keys, &chunk_days, &test_ids])
                .map_err(|e| self.err("cannot read results", e))?;
            for r in &rows {
                let (run_key, test_id): (i64, i64) = (r.get(0), r.get(1));
                out.insert((run_key, test_id), result_row(run_key, test_id, r, 2));
            }
        }
        Ok(out)
    }

    pub fn failures(&self, run_keys: &[i64]) -> Result<Vec<FailureRow>> {
        let days = self.run_days(run_keys)?;
        let mut client = self.client.borrow_mut();
        let stmt = client
            .prepare(
                "SELECT k.pos, f.test_id, f.attempt, f.is_error, f.fingerprint
                 FROM unnest($1::int8[], $2::int4[]) WITH ORDINALITY AS k(run_key, day, pos)
                 CROSS JOIN LATERAL (
                   SELECT test_id, attempt, is_error, fingerprint FROM failure
                   WHERE failure.day = k.day AND failure.run_key = k.run_key
                 ) f
                 ORDER BY k.pos, f.test_id, f.attempt",
            )
            .map_err(|e| self.err("cannot read failures", e))?;
        let mut out = Vec::new();
        for (chunk_no, chunk) in run_keys.chunks(FAILURE_RUNS_PER_QUERY).enumerate() {
            let keys: Vec<i64> = chunk.to_vec();
            let chunk_days: Vec<i32> = chunk
                .iter()
                .map(|k| days.get(k).copied().unwrap_or(i32::MIN))
                .collect();
            let rows = client
                .query(&stmt, &[&keys, &chunk_days])
                .map_err(|e| self.err("cannot read failures", e))?;
            out.extend(rows.iter().map(|r| {
                let pos = chunk_no * FAILURE_RUNS_PER_QUERY + (r.get::<_, i64>(0) as usize - 1);
                FailureRow {
                    run_key: run_keys[pos],
                    test_id: r.get(1),
                    attempt: r.get::<_, i16>(2) as u32,
                    is_error: r.get(3),
                    fingerprint: r.get(4),
                }
            }));
        }
        Ok(out)
    }

    pub fn failure_messages(&self, run_key: i64, test_id: i64) -> Result<Vec<FailureMessage>> {
        let rows = self
            .client
            .borrow_mut()
            .query(
                &format!(
                    "SELECT attempt, type, message FROM failure
                     WHERE day = (SELECT {RUN_DAY} FROM run WHERE run_key = $1::int8)
                       AND run_key = $1::int8 AND test_id = $2 ORDER BY attempt"
                ),
                &[&run_key, &test_id],
            )
            .map_err(|e| self.err("cannot read failures", e))?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, i16>(0) as u32, r.get(1), r.get(2)))
            .collect())
    }

    pub fn fingerprints(&self, ids: &[i64]) -> Result<HashMap<i64, FingerprintRow>> {
        let rows = self
            .client
            .borrow_mut()
            .query(
                "SELECT fingerprint, normalized, sample FROM fingerprint WHERE fingerprint = ANY($1)",
                &[&ids],
            )
            .map_err(|e| self.err("cannot read fingerprints", e))?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    FingerprintRow {
                        normalized: r.get(1),
                        sample: r.get(2),
                    },
                )
            })
            .collect())
    }

    pub fn tests_by_id(&self, ids: &[i64]) -> Result<HashMap<i64, TestRow>> {
        let rows = self
            .client
            .borrow_mut()
            .query(
                "SELECT test_id, classname, name, file, suite FROM test WHERE test_id = ANY($1)",
                &[&ids],
            )
            .map_err(|e| self.err("cannot read tests", e))?;
        Ok(rows
            .iter()
            .map(|r| {
                let t = test_row(r);
                (t.test_id, t)
            })
            .collect())
    }

    pub fn find_tests(&self, query: &str) -> Result<Vec<TestRow>> {
        if let Some(id) = TestIdentity::from_hex(query) {
            let found = self.tests_by_id(&[id.0])?;
            if let Some(t) = found.into_values().next() {
                return Ok(vec![t]);
            }
        }
        let found = self
            .client
            .borrow_mut()
            .query(
                "SELECT test_id, classname, name, file, suite FROM test
                 WHERE strpos(classname || '.' || name, $1) > 0 OR strpos(name, $1) > 0",
                &[&query],
            )
            .map_err(|e| self.err("cannot search tests", e))?;
        let mut rows: Vec<TestRow> = found.iter().map(test_row).collect();
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

    pub fn test_counts(&self) -> Result<Vec<TestCounts>> {
        let rows = self
            .client
            .borrow_mut()
            .query(
                "SELECT t.test_id, t.classname, t.name, t.file,
                        COUNT(*), SUM(r.attempts)::int8,
                        COUNT(*) FILTER (WHERE r.attempts > 0 AND r.failures = 0),
                        COUNT(*) FILTER (WHERE r.failures > 0 AND r.failures < r.attempts),
                        COUNT(*) FILTER (WHERE r.failures > 0 AND r.failures >= r.attempts),
                        COUNT(*) FILTER (WHERE r.attempts = 0)
                 FROM result r JOIN test t ON t.test_id = r.test_id
                 GROUP BY t.test_id, t.classname, t.name, t.file
                 ORDER BY t.classname, t.name, t.file NULLS FIRST, t.test_id",
                &[],
            )
            .map_err(|e| self.err("cannot read tests", e))?;
        let n = |r: &postgres::Row, i: usize| r.get::<_, i64>(i) as u64;
        Ok(rows
            .iter()
            .map(|r| TestCounts {
                test_id: TestIdentity(r.get(0)).hex(),
                classname: r.get(1),
                name: r.get(2),
                file: r.get(3),
                runs: n(r, 4),
                attempts: n(r, 5),
                passed: n(r, 6),
                flaky: n(r, 7),
                failed: n(r, 8),
                skipped: n(r, 9),
            })
            .collect())
    }

    /// Stored result rows and the bytes of flakehound's tables and indexes.
    pub fn storage_stats(&self) -> Result<(u64, u64)> {
        let row = self
            .client
            .borrow_mut()
            .query_one(
                "SELECT (SELECT COUNT(*) FROM result),
                        (SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::int8
                         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                         WHERE n.nspname = current_schema() AND c.relkind = 'r')",
                &[],
            )
            .map_err(|e| self.err("cannot count results", e))?;
        Ok((row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64))
    }

    pub fn quarantine_rows(&self) -> Result<Vec<QuarantineRow>> {
        let rows = self
            .client
            .borrow_mut()
            .query(
                "SELECT quarantine_id, test_id, job, classname, name, file, since, until, reason,
                        retries_per_day, flake_rate, last_flake_at, released_at, release_reason
                 FROM quarantine ORDER BY since, job, test_id, quarantine_id",
                &[],
            )
            .map_err(|e| self.err("cannot read the quarantine", e))?;
        Ok(rows
            .iter()
            .map(|r| QuarantineRow {
                quarantine_id: r.get(0),
                test_id: r.get(1),
                job: r.get(2),
                classname: r.get(3),
                name: r.get(4),
                file: r.get(5),
                since: r.get(6),
                until: r.get(7),
                reason: r.get(8),
                retries_per_day: r.get(9),
                flake_rate: r.get(10),
                last_flake_at: r.get(11),
                released_at: r.get(12),
                release_reason: r.get(13),
            })
            .collect())
    }

    pub fn quarantine_events(&self) -> Result<Vec<QuarantineEventRow>> {
        let rows = self
            .client
            .borrow_mut()
            .query(
                "SELECT at, test_id, job, classname, name, action, reason, until
                 FROM quarantine_event ORDER BY at, event_id",
                &[],
            )
            .map_err(|e| self.err("cannot read the quarantine history", e))?;
        Ok(rows
            .iter()
            .map(|r| QuarantineEventRow {
                at: r.get(0),
                test_id: r.get(1),
                job: r.get(2),
                classname: r.get(3),
                name: r.get(4),
                action: r.get(5),
                reason: r.get(6),
                until: r.get(7),
            })
            .collect())
    }

    pub fn apply_quarantine_changes(&mut self, changes: &[QuarantineChange]) -> Result<()> {
        let mut client = self.client.borrow_mut();
        let mut tx = client
            .transaction()
            .map_err(|e| self.err("cannot start a write transaction", e))?;
        for c in changes {
            let r = &c.row;
            if r.quarantine_id == 0 {
                tx.execute(
                    "INSERT INTO quarantine (test_id, job, classname, name, file, since, until,
                        reason, retries_per_day, flake_rate, last_flake_at, released_at, release_reason)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                    &[
                        &r.test_id,
                        &r.job,
                        &r.classname,
                        &r.name,
                        &r.file,
                        &r.since,
                        &r.until,
                        &r.reason,
                        &r.retries_per_day,
                        &r.flake_rate,
                        &r.last_flake_at,
                        &r.released_at,
                        &r.release_reason,
                    ],
                )
                .map_err(|e| self.err("cannot add to the quarantine", e))?;
            } else {
                tx.execute(
                    "UPDATE quarantine SET until = $2, reason = $3, retries_per_day = $4,
                        flake_rate = $5, last_flake_at = $6, released_at = $7, release_reason = $8
                     WHERE quarantine_id = $1",
                    &[
                        &r.quarantine_id,
                        &r.until,
                        &r.reason,
                        &r.retries_per_day,
                        &r.flake_rate,
                        &r.last_flake_at,
                        &r.released_at,
                        &r.release_reason,
                    ],
                )
                .map_err(|e| self.err("cannot update the quarantine", e))?;
            }
            let e = &c.event;
            tx.execute(
                "INSERT INTO quarantine_event (at, test_id, job, classname, name, action, reason, until)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[&e.at, &e.test_id, &e.job, &e.classname, &e.name, &e.action, &e.reason, &e.until],
            )
            .map_err(|e| self.err("cannot record a quarantine event", e))?;
        }
        tx.batch_execute(super::write::BUMP_GENERATION)
            .map_err(|e| self.err("cannot commit the quarantine", e))?;
        tx.commit()
            .map_err(|e| self.err("cannot commit the quarantine", e))
    }
}

fn test_row(r: &postgres::Row) -> TestRow {
    TestRow {
        test_id: r.get(0),
        classname: r.get(1),
        name: r.get(2),
        file: r.get(3),
        suite: r.get(4),
    }
}

/// The normalised commit, with a short SHA replaced by the one stored full SHA of the job
/// it prefixes (when exactly one does).
pub(super) fn full_commit_pg(
    client: &mut postgres::Client,
    job: &str,
    commit: &str,
) -> std::result::Result<String, postgres::Error> {
    use crate::store::lookup::{is_full_sha, normalize_commit, MIN_PREFIX};
    let c = normalize_commit(commit);
    if c.len() < MIN_PREFIX || is_full_sha(&c) || !c.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(c);
    }
    let upper = format!("{c}g");
    let rows = client.query(
        r#"SELECT DISTINCT commit_sha FROM run
           WHERE job = $1 AND commit_sha COLLATE "C" >= $2 AND commit_sha COLLATE "C" < $3 LIMIT 3"#,
        &[&job, &c, &upper],
    )?;
    let full: Vec<String> = rows
        .iter()
        .map(|r| r.get::<_, String>(0))
        .filter(|f| is_full_sha(f))
        .collect();
    Ok(match full.as_slice() {
        [one] => one.clone(),
        _ => c,
    })
}

/// A result from `attempts, failures, duration_ms` at columns `at`, `at + 1`, `at + 2`.
fn result_row(run_key: i64, test_id: i64, r: &postgres::Row, at: usize) -> ResultRow {
    let attempts = r.get::<_, i16>(at) as u32;
    let failures = r.get::<_, i16>(at + 1) as u32;
    ResultRow {
        run_key,
        test_id,
        outcome: outcome(attempts, failures),
        attempts,
        failures,
        duration_ms: i64::from(r.get::<_, i32>(at + 2)),
    }
}
