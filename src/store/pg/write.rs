//! The PostgreSQL write path. A batch opens a transaction for its runs at once (their keys
//! are needed) and keeps report rows in memory until [`PgBatch::commit`], which writes
//! them in one go: binary COPY into temporary staging tables, then `INSERT … ON CONFLICT`
//! into the real ones. A file rejected halfway is dropped from memory (and its run rolled
//! back to a savepoint) without ever touching the tables.

use std::collections::{HashMap, HashSet};

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use postgres::Client;

use super::{connect, day_of, PgStore};
use crate::error::Result;
use crate::model::{RunMeta, TestCase};
use crate::store::write::{hash_key, prepare, FileTally, Prepared};

/// Staging tables: one per connection, emptied at every commit.
/// Run in every write transaction: readers key their caches by this number.
pub(super) const BUMP_GENERATION: &str = "UPDATE flakehound_generation SET n = n + 1 WHERE id = 1";

const STAGING: &str = "
CREATE TEMP TABLE IF NOT EXISTS stage_test (
    test_id int8, classname text, name text, file text, suite text) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_fingerprint (
    fingerprint int8, normalized text, sample text) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_result (
    run_key int8, test_id int8, day int4, duration_ms int4, attempts int2, failures int2)
    ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_failure (
    run_key int8, test_id int8, fingerprint int8, day int4, attempt int2, is_error bool,
    type text, message text) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_file (
    run_key int8, content_hash bytea, path text, testcases int4) ON COMMIT DELETE ROWS;
";

/// Results merge with the ones already stored for the run (another file of the same run)
/// by SQLite's rule; each failed attempt is numbered after the attempts stored before, read
/// off the merge (new attempts less the staged ones) rather than looked up: a lookup per
/// failure re-prunes every day partition and took ~7 ms a row at 200 partitions.
const MERGE: &str = "
WITH merged AS (
  INSERT INTO result (test_id, run_key, day, duration_ms, attempts, failures)
  SELECT test_id, run_key, day, duration_ms, attempts, failures FROM stage_result
  ORDER BY day, run_key, test_id
  ON CONFLICT (day, run_key, test_id) DO UPDATE SET
    attempts = LEAST(result.attempts + excluded.attempts, 32767),
    failures = LEAST(result.failures + excluded.failures, 32767),
    duration_ms = LEAST(result.duration_ms::int8 + excluded.duration_ms, 2147483647)
  RETURNING day, run_key, test_id, attempts
)
INSERT INTO failure (run_key, test_id, fingerprint, day, attempt, is_error, type, message)
SELECT s.run_key, s.test_id, s.fingerprint, s.day,
       LEAST(s.attempt + GREATEST(m.attempts - st.attempts, 0), 32767),
       s.is_error, s.type, s.message
FROM stage_failure s
JOIN stage_result st ON st.day = s.day AND st.run_key = s.run_key AND st.test_id = s.test_id
JOIN merged m ON m.day = s.day AND m.run_key = s.run_key AND m.test_id = s.test_id
ORDER BY s.day, s.run_key, s.test_id, s.attempt
ON CONFLICT DO NOTHING";

struct Row {
    test_id: i64,
    outcome: u8,
    attempts: u32,
    failures: u32,
    duration_ms: i64,
}

struct Failure {
    /// Index into the chunk's rows.
    row: usize,
    attempt: u32,
    is_error: bool,
    fingerprint: i64,
    kind: Option<String>,
    message: Option<String>,
}

/// Cases of one run given in one call.
struct Chunk {
    run_key: i64,
    rows: Vec<Row>,
    failures: Vec<Failure>,
}

/// A report file and its cases (earlier chunks when it was streamed).
struct Pending {
    run_key: i64,
    /// `None` for cases stored without a report file.
    file: Option<(Vec<u8>, String, i32, Option<f64>)>,
    chunks: Vec<Chunk>,
}

/// The in-memory state a savepoint restores.
#[derive(Clone)]
struct Saved {
    files: usize,
    open: usize,
    known_tests: HashSet<i64>,
    known_fingerprints: HashSet<i64>,
    tests: usize,
    fingerprints: usize,
    hashes: HashSet<(i64, Vec<u8>)>,
}

type TestInfo = (i64, String, String, Option<String>, Option<String>);

pub struct PgBatch<'s> {
    store: &'s PgStore,
    finished: bool,
    run_days: HashMap<i64, i32>,
    /// Days written to, marked pending for the daily aggregate at commit.
    written_days: HashSet<i32>,
    files: Vec<Pending>,
    /// Chunks of a file being streamed, until its last chunk names the file.
    open: Vec<Chunk>,
    known_tests: HashSet<i64>,
    known_fingerprints: HashSet<i64>,
    tests: Vec<TestInfo>,
    fingerprints: Vec<(i64, String, String)>,
    hashes: HashSet<(i64, Vec<u8>)>,
    saved: Option<Saved>,
}

impl PgStore {
    pub fn batch(&mut self) -> Result<PgBatch<'_>> {
        if let Err(e) = self.begin() {
            // Lost since the last batch (e.g. the server restarted): nothing of this
            // batch was sent, so it can start over on a new connection.
            if !e.is_unavailable() {
                return Err(e);
            }
            tracing::warn!(error = %e, "PostgreSQL connection lost; reconnecting");
            self.reconnect()?;
            self.begin()?;
        }
        Ok(PgBatch {
            store: self,
            finished: false,
            run_days: HashMap::new(),
            written_days: HashSet::new(),
            files: Vec::new(),
            open: Vec::new(),
            known_tests: HashSet::new(),
            known_fingerprints: HashSet::new(),
            tests: Vec::new(),
            fingerprints: Vec::new(),
            hashes: HashSet::new(),
            saved: None,
        })
    }

    fn begin(&self) -> Result<()> {
        let mut client = self.client.borrow_mut();
        if !self.staged.get() {
            client
                .batch_execute(STAGING)
                .map_err(|e| self.err("cannot create the staging tables", e))?;
            self.staged.set(true);
        }
        client
            .batch_execute("BEGIN")
            .map_err(|e| self.err("cannot start a write transaction", e))
    }

    /// Create the day partitions of `result` and `failure` that do not exist yet, on the
    /// side connection: `ATTACH PARTITION` only takes a lock that writers and readers do
    /// not wait for, and committing it at once keeps the batch's own locks small.
    fn ensure_days(&self, days: &HashSet<i32>) -> Result<()> {
        let missing: Vec<i32> = {
            let known = self.days.borrow();
            let mut m: Vec<i32> = days
                .iter()
                .copied()
                .filter(|d| !known.contains(d))
                .collect();
            m.sort_unstable();
            m
        };
        if missing.is_empty() {
            return Ok(());
        }
        let mut slot = self.ddl.borrow_mut();
        if slot.is_none() {
            *slot = Some(connect(&self.config, &self.shown)?);
        }
        let ddl = slot.as_mut().expect("just connected");
        for day in missing {
            if let Err(e) = create_day(ddl, day) {
                // A lost side connection is opened again next time.
                *slot = None;
                return Err(self.err("cannot create a day partition", e));
            }
            self.days.borrow_mut().insert(day);
        }
        Ok(())
    }
}

/// Partition names carry the calendar date, e.g. `result_20261204`.
fn partition_suffix(day: i32) -> String {
    chrono::DateTime::from_timestamp(i64::from(day) * 86_400, 0)
        .map(|t| t.format("%Y%m%d").to_string())
        .unwrap_or_else(|| format!("d{day}"))
}

fn create_day(ddl: &mut Client, day: i32) -> std::result::Result<(), postgres::Error> {
    let suffix = partition_suffix(day);
    let mut tx = ddl.transaction()?;
    // One creator per day across every replica; the others find it made.
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&(0x666c_6b00_0000_0000_i64 + i64::from(day))],
    )?;
    for table in ["result", "failure"] {
        let name = format!("{table}_{suffix}");
        let exists: bool = tx
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])?
            .get(0);
        if exists {
            continue;
        }
        tx.batch_execute(&format!(
            "CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
             ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ({day}) TO ({next});",
            next = day + 1
        ))?;
    }
    tx.commit()
}

impl PgBatch<'_> {
    fn err(&self, context: &str, e: postgres::Error) -> crate::error::Error {
        self.store.err(context, e)
    }

    fn client(&self) -> std::cell::RefMut<'_, Client> {
        self.store.client.borrow_mut()
    }

    pub fn run(&mut self, meta: &RunMeta) -> Result<(i64, bool)> {
        let attempt = meta.attempt as i32;
        let store = self.store;
        let mut client = self.client();
        // Stored normalised, as on SQLite (see `lookup::full_commit_on`).
        let commit = super::read::full_commit_pg(&mut client, &meta.job, &meta.commit)
            .map_err(|e| store.err("cannot look up commits", e))?;
        let created = store
            .statement(
                &mut client,
                "INSERT INTO run (commit_sha, branch, job, ci_run_id, attempt, started_at, duration_s, run_url)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (job, ci_run_id, attempt, commit_sha) DO NOTHING
                 RETURNING run_key",
            )
            .and_then(|s| {
                client.query_opt(
                    &s,
                    &[
                        &commit,
                        &meta.branch,
                        &meta.job,
                        &meta.run_id,
                        &attempt,
                        &meta.started_at,
                        &meta.duration_s,
                        &meta.run_url,
                    ],
                )
            })
            .map_err(|e| store.err("cannot store the run", e))?;
        if let Some(row) = created {
            let key: i64 = row.get(0);
            if crate::store::lookup::is_full_sha(&commit) {
                // As on SQLite (`SqliteBatch::run`): runs stored under a short form of this
                // SHA are this commit.
                client
                    .execute(
                        "UPDATE run SET commit_sha = $1
                         WHERE job = $2 AND commit_sha >= $3 AND commit_sha < $1
                         AND substr($1, 1, length(commit_sha)) = commit_sha
                         AND NOT EXISTS (SELECT 1 FROM run r WHERE r.job = run.job
                             AND r.ci_run_id = run.ci_run_id AND r.attempt = run.attempt
                             AND r.commit_sha = $1)",
                        &[
                            &commit,
                            &meta.job,
                            &&commit[..crate::store::lookup::MIN_PREFIX],
                        ],
                    )
                    .map_err(|e| store.err("cannot store the run", e))?;
            }
            drop(client);
            self.run_days.insert(key, day_of(meta.started_at));
            self.written_days.insert(day_of(meta.started_at));
            return Ok((key, true));
        }
        let row = store
            .statement(
                &mut client,
                "SELECT run_key, duration_s, started_at, branch FROM run
                 WHERE job = $1 AND ci_run_id = $2 AND attempt = $3 AND commit_sha = $4",
            )
            .and_then(|s| client.query_one(&s, &[&meta.job, &meta.run_id, &attempt, &commit]))
            .map_err(|e| store.err("cannot look up the run", e))?;
        let key: i64 = row.get(0);
        crate::store::warn_if_other_branch(meta, row.get(3));
        let duration: Option<f64> = row.get(1);
        if duration.is_none() && meta.duration_s.is_some() {
            client
                .execute(
                    "UPDATE run SET duration_s = $1 WHERE run_key = $2",
                    &[&meta.duration_s, &key],
                )
                .map_err(|e| store.err("cannot update the run", e))?;
        }
        // A later upload of the same run may know its link when the first did not.
        if meta.run_url.is_some() {
            client
                .execute(
                    "UPDATE run SET run_url = $1 WHERE run_key = $2 AND run_url IS NULL",
                    &[&meta.run_url, &key],
                )
                .map_err(|e| store.err("cannot update the run", e))?;
        }
        drop(client);
        self.run_days.insert(key, day_of(row.get(2)));
        Ok((key, false))
    }

    pub fn has_file(&self, run_key: i64, content_hash: &str) -> Result<bool> {
        let hash = hash_key(content_hash);
        if self.hashes.contains(&(run_key, hash.clone())) {
            return Ok(true);
        }
        let mut client = self.client();
        let row = self
            .store
            .statement(
                &mut client,
                "SELECT 1 FROM report_file WHERE run_key = $1 AND content_hash = $2",
            )
            .and_then(|s| client.query_opt(&s, &[&run_key, &hash]))
            .map_err(|e| self.err("cannot look up the report", e))?;
        Ok(row.is_some())
    }

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
        let tally = self.add_prepared(run_key, cases, prepared)?;
        let hash = hash_key(content_hash);
        self.hashes.insert((run_key, hash.clone()));
        let chunks = std::mem::take(&mut self.open);
        self.files.push(Pending {
            run_key,
            file: Some((
                hash,
                path.to_string(),
                testcase_elements.min(i32::MAX as u64) as i32,
                report_time_s,
            )),
            chunks,
        });
        Ok(tally)
    }

    pub fn add_cases(&mut self, run_key: i64, cases: &[TestCase]) -> Result<FileTally> {
        let prepared = prepare(cases);
        self.add_prepared(run_key, cases, &prepared)
    }

    pub fn add_prepared(
        &mut self,
        run_key: i64,
        cases: &[TestCase],
        prepared: &Prepared,
    ) -> Result<FileTally> {
        for row in &prepared.rows {
            if self.known_tests.insert(row.test_id) {
                let case = &cases[row.case];
                self.tests.push((
                    row.test_id,
                    case.classname.clone(),
                    case.name.clone(),
                    case.file.clone(),
                    case.suite.as_deref().map(str::to_string),
                ));
            }
        }
        let mut chunk = Chunk {
            run_key,
            rows: Vec::with_capacity(prepared.rows.len()),
            failures: Vec::with_capacity(prepared.failures.len()),
        };
        for r in &prepared.rows {
            chunk.rows.push(Row {
                test_id: r.test_id,
                outcome: r.outcome,
                attempts: r.attempts,
                failures: r.failures,
                duration_ms: r.duration_ms,
            });
        }
        for f in &prepared.failures {
            if self.known_fingerprints.insert(f.fingerprint) {
                self.fingerprints
                    .push((f.fingerprint, f.normalized.clone(), f.sample.clone()));
            }
            chunk.failures.push(Failure {
                row: f.row,
                attempt: f.attempt,
                is_error: f.is_error,
                fingerprint: f.fingerprint,
                kind: f.kind.clone(),
                message: f.message.clone(),
            });
        }
        self.open.push(chunk);
        Ok(prepared.tally)
    }

    pub fn savepoint(&mut self) -> Result<()> {
        self.saved = Some(Saved {
            files: self.files.len(),
            open: self.open.len(),
            known_tests: self.known_tests.clone(),
            known_fingerprints: self.known_fingerprints.clone(),
            tests: self.tests.len(),
            fingerprints: self.fingerprints.len(),
            hashes: self.hashes.clone(),
        });
        self.client()
            .batch_execute("SAVEPOINT report")
            .map_err(|e| self.err("cannot set a savepoint", e))
    }

    pub fn release_savepoint(&mut self) -> Result<()> {
        self.saved = None;
        self.client()
            .batch_execute("RELEASE report")
            .map_err(|e| self.err("cannot release a savepoint", e))
    }

    pub fn rollback_to_savepoint(&mut self) -> Result<()> {
        if let Some(s) = self.saved.take() {
            self.files.truncate(s.files);
            self.open.truncate(s.open);
            self.known_tests = s.known_tests;
            self.known_fingerprints = s.known_fingerprints;
            self.tests.truncate(s.tests);
            self.fingerprints.truncate(s.fingerprints);
            self.hashes = s.hashes;
        }
        self.client()
            .batch_execute("ROLLBACK TO report; RELEASE report")
            .map_err(|e| self.err("cannot roll back a report", e))
    }

    pub fn tests_seen(&self) -> impl Iterator<Item = i64> + '_ {
        self.known_tests.iter().copied()
    }

    pub fn commit(mut self) -> Result<()> {
        self.finished = true;
        let flushed = self.flush().and_then(|()| self.mark_days());
        let mut client = self.client();
        if let Err(e) = flushed {
            let _ = client.batch_execute("ROLLBACK");
            return Err(e);
        }
        // Last, so the generation's row lock is held only for the commit itself.
        if let Err(e) = client.batch_execute(&format!("{BUMP_GENERATION}; COMMIT")) {
            let _ = client.batch_execute("ROLLBACK");
            return Err(self.store.err("cannot commit", e));
        }
        Ok(())
    }

    /// Mark the days written to pending, last (the row locks are held only to commit), in
    /// day order (writers lock them in the same order).
    fn mark_days(&mut self) -> Result<()> {
        if self.written_days.is_empty() {
            return Ok(());
        }
        let mut days: Vec<i32> = self.written_days.iter().copied().collect();
        days.sort_unstable();
        self.client()
            .execute(
                "INSERT INTO day_pending (day) SELECT unnest($1::int4[])
                 ON CONFLICT (day) DO UPDATE SET day = EXCLUDED.day",
                &[&days],
            )
            .map_err(|e| self.err("cannot mark the day for the daily aggregate", e))?;
        Ok(())
    }

    /// The day of each run written to, read from the database for a run this batch did
    /// not create or look up.
    fn day(&mut self, run_key: i64) -> Result<i32> {
        if let Some(d) = self.run_days.get(&run_key) {
            return Ok(*d);
        }
        let started: i64 = self
            .client()
            .query_one("SELECT started_at FROM run WHERE run_key = $1", &[&run_key])
            .map_err(|e| self.err("cannot look up the run", e))?
            .get(0);
        let d = day_of(started);
        self.run_days.insert(run_key, d);
        Ok(d)
    }

    fn flush(&mut self) -> Result<()> {
        let mut pending = std::mem::take(&mut self.files);
        let open = std::mem::take(&mut self.open);
        if !open.is_empty() {
            pending.push(Pending {
                run_key: open[0].run_key,
                file: None,
                chunks: open,
            });
        }
        if pending.is_empty() {
            return Ok(());
        }
        let mut days = HashSet::new();
        for p in &pending {
            for c in &p.chunks {
                days.insert(self.day(c.run_key)?);
            }
            days.insert(self.day(p.run_key)?);
        }
        self.store.ensure_days(&days)?;
        self.written_days.extend(days.iter().copied());

        // Writers of the same run (two replicas given the same retried upload) take turns
        // from here to commit, so attempt numbering and file dedup see each other.
        let mut keys: Vec<i64> = pending
            .iter()
            .flat_map(|p| std::iter::once(p.run_key).chain(p.chunks.iter().map(|c| c.run_key)))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let mut times: HashMap<i64, f64> = self
            .client()
            .query(
                "SELECT run_key, tests_time_s FROM run WHERE run_key = ANY($1)
                 ORDER BY run_key FOR UPDATE",
                &[&keys],
            )
            .map_err(|e| self.err("cannot lock the runs", e))?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();

        // A file another writer stored since `has_file` said no is not stored twice.
        let (file_keys, file_hashes): (Vec<i64>, Vec<Vec<u8>>) = pending
            .iter()
            .filter_map(|p| p.file.as_ref().map(|f| (p.run_key, f.0.clone())))
            .unzip();
        let stored: HashSet<(i64, Vec<u8>)> = self
            .client()
            .query(
                "SELECT f.run_key, f.content_hash FROM report_file f
                 JOIN unnest($1::int8[], $2::bytea[]) AS k(run_key, h)
                   ON f.run_key = k.run_key AND f.content_hash = k.h",
                &[&file_keys, &file_hashes],
            )
            .map_err(|e| self.err("cannot look up reports", e))?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        if !stored.is_empty() {
            tracing::info!(
                files = stored.len(),
                "reports stored meanwhile by another writer; not stored twice"
            );
            pending.retain(|p| {
                p.file
                    .as_ref()
                    .is_none_or(|f| !stored.contains(&(p.run_key, f.0.clone())))
            });
        }

        // Merge results of the same test in the same run within the batch, numbering
        // failed attempts after the ones before them, as one file after another would.
        let mut merged: HashMap<(i64, i64), (i32, Row)> = HashMap::new();
        let mut order: Vec<(i64, i64)> = Vec::new();
        let mut failures: Vec<(i64, i64, i32, u32, &Failure)> = Vec::new();
        let mut files: Vec<(i64, &[u8], &str, i32)> = Vec::new();
        for p in &pending {
            for c in &p.chunks {
                let day = self.run_days[&c.run_key];
                let mut offsets = Vec::with_capacity(c.rows.len());
                for r in &c.rows {
                    let key = (c.run_key, r.test_id);
                    match merged.get_mut(&key) {
                        Some((_, m)) => {
                            offsets.push(m.attempts);
                            m.attempts += r.attempts;
                            m.failures += r.failures;
                            m.duration_ms += r.duration_ms;
                            m.outcome = outcome(m.attempts, m.failures);
                        }
                        None => {
                            offsets.push(0);
                            order.push(key);
                            merged.insert(
                                key,
                                (
                                    day,
                                    Row {
                                        test_id: r.test_id,
                                        outcome: r.outcome,
                                        attempts: r.attempts,
                                        failures: r.failures,
                                        duration_ms: r.duration_ms,
                                    },
                                ),
                            );
                        }
                    }
                }
                for f in &c.failures {
                    let r = &c.rows[f.row];
                    failures.push((c.run_key, r.test_id, day, offsets[f.row] + f.attempt, f));
                }
            }
            if let Some((hash, path, testcases, time)) = &p.file {
                files.push((p.run_key, hash, path, *testcases));
                if let Some(t) = time {
                    // Added file by file, in order, as SQLite does: the same float sum.
                    *times.entry(p.run_key).or_insert(0.0) += t;
                }
            }
        }

        let store: &PgStore = self.store;
        let mut client = store.client.borrow_mut();
        let e = |context: &'static str| move |err| store.err(context, err);
        let staging = std::time::Instant::now();
        copy(
            &mut client,
            "COPY stage_test (test_id, classname, name, file, suite) FROM STDIN BINARY",
            &[Type::INT8, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT],
            self.tests
                .iter()
                .map(|t| [&t.0 as &(dyn ToSql + Sync), &t.1, &t.2, &t.3, &t.4]),
        )
        .map_err(e("cannot stage tests"))?;
        copy(
            &mut client,
            "COPY stage_fingerprint (fingerprint, normalized, sample) FROM STDIN BINARY",
            &[Type::INT8, Type::TEXT, Type::TEXT],
            self.fingerprints
                .iter()
                .map(|f| [&f.0 as &(dyn ToSql + Sync), &f.1, &f.2]),
        )
        .map_err(e("cannot stage fingerprints"))?;
        let result_rows: Vec<(i64, i64, i32, i32, i16, i16)> = order
            .iter()
            .map(|key| {
                let (day, r) = &merged[key];
                (
                    key.0,
                    r.test_id,
                    *day,
                    r.duration_ms.clamp(0, i64::from(i32::MAX)) as i32,
                    r.attempts.min(32767) as i16,
                    r.failures.min(32767) as i16,
                )
            })
            .collect();
        copy(
            &mut client,
            "COPY stage_result (run_key, test_id, day, duration_ms, attempts, failures)
             FROM STDIN BINARY",
            &[
                Type::INT8,
                Type::INT8,
                Type::INT4,
                Type::INT4,
                Type::INT2,
                Type::INT2,
            ],
            result_rows
                .iter()
                .map(|r| [&r.0 as &(dyn ToSql + Sync), &r.1, &r.2, &r.3, &r.4, &r.5]),
        )
        .map_err(e("cannot stage results"))?;
        type FailureCopy<'a> = (
            i64,
            i64,
            i64,
            i32,
            i16,
            bool,
            Option<&'a str>,
            Option<&'a str>,
        );
        let failure_rows: Vec<FailureCopy> = failures
            .iter()
            .map(|(run_key, test_id, day, attempt, f)| {
                (
                    *run_key,
                    *test_id,
                    f.fingerprint,
                    *day,
                    (*attempt).min(32767) as i16,
                    f.is_error,
                    f.kind.as_deref(),
                    f.message.as_deref(),
                )
            })
            .collect();
        copy(
            &mut client,
            "COPY stage_failure (run_key, test_id, fingerprint, day, attempt, is_error, type, message)
             FROM STDIN BINARY",
            &[
                Type::INT8,
                Type::INT8,
                Type::INT8,
                Type::INT4,
                Type::INT2,
                Type::BOOL,
                Type::TEXT,
                Type::TEXT,
            ],
            failure_rows.iter().map(|f| {
                [
                    &f.0 as &(dyn ToSql + Sync),
                    &f.1,
                    &f.2,
                    &f.3,
                    &f.4,
                    &f.5,
                    &f.6,
                    &f.7,
                ]
            }),
        )
        .map_err(e("cannot stage failures"))?;
        copy(
            &mut client,
            "COPY stage_file (run_key, content_hash, path, testcases) FROM STDIN BINARY",
            &[Type::INT8, Type::BYTEA, Type::TEXT, Type::INT4],
            files
                .iter()
                .map(|f| [&f.0 as &(dyn ToSql + Sync), &f.1, &f.2, &f.3]),
        )
        .map_err(e("cannot stage reports"))?;

        let staged = staging.elapsed();
        let merging = std::time::Instant::now();
        let (time_keys, time_values): (Vec<i64>, Vec<f64>) = times.into_iter().unzip();
        client
            .batch_execute(
                "INSERT INTO test SELECT test_id, classname, name, file, suite FROM stage_test
                 ORDER BY test_id ON CONFLICT (test_id) DO NOTHING;
                 INSERT INTO fingerprint SELECT fingerprint, normalized, sample FROM stage_fingerprint
                 ORDER BY fingerprint ON CONFLICT (fingerprint) DO NOTHING;",
            )
            .map_err(e("cannot store tests"))?;
        client
            .batch_execute(MERGE)
            .map_err(e("cannot store results"))?;
        client
            .batch_execute(
                "INSERT INTO report_file (run_key, content_hash, path, testcases)
                 SELECT run_key, content_hash, path, testcases FROM stage_file
                 ON CONFLICT DO NOTHING",
            )
            .map_err(e("cannot record the reports"))?;
        client
            .execute(
                "UPDATE run SET tests_time_s = k.t
                 FROM unnest($1::int8[], $2::float8[]) AS k(run_key, t)
                 WHERE run.run_key = k.run_key AND run.tests_time_s IS DISTINCT FROM k.t",
                &[&time_keys, &time_values],
            )
            .map_err(e("cannot update the runs"))?;
        // The two halves of the write, for measuring them apart (docs/scale-out.md).
        tracing::debug!(
            results = result_rows.len(),
            failures = failure_rows.len(),
            copy_ms = staged.as_secs_f64() * 1e3,
            merge_ms = merging.elapsed().as_secs_f64() * 1e3,
            "batch written: binary COPY into staging, then INSERT … ON CONFLICT"
        );
        Ok(())
    }
}

/// A result's outcome from its counts: stored results carry no outcome column (schema v5).
pub(super) fn outcome(attempts: u32, failures: u32) -> u8 {
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

/// Binary COPY of rows into a staging table (nothing sent for no rows).
fn copy<'a, const N: usize>(
    client: &mut Client,
    sql: &str,
    types: &[Type],
    rows: impl Iterator<Item = [&'a (dyn ToSql + Sync); N]>,
) -> std::result::Result<(), postgres::Error> {
    let mut rows = rows.peekable();
    if rows.peek().is_none() {
        return Ok(());
    }
    let sink = client.copy_in(sql)?;
    let mut writer = BinaryCopyInWriter::new(sink, types);
    for row in rows {
        writer.write(&row)?;
    }
    writer.finish()?;
    Ok(())
}

impl Drop for PgBatch<'_> {
    fn drop(&mut self) {
        if !self.finished {
            // An error or a panic mid-batch: nothing of the batch is kept.
            if let Ok(mut c) = self.store.client.try_borrow_mut() {
                let _ = c.batch_execute("ROLLBACK");
            }
        }
    }
}
