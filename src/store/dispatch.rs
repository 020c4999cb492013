//! [`Store`] and [`Batch`]: one interface over the two backends. A `--db` that is a
//! `postgresql://` or `postgres://` URL opens PostgreSQL; anything else is a SQLite file.
//!
//! Every method keeps the signature callers had when SQLite was the only backend; each
//! backend implements it in its own module (SQLite in `read.rs`/`write.rs`/
//! `quarantine.rs`, PostgreSQL in `pg/`). A method added to the interface (such as a
//! daily aggregate read) is one more arm here and one implementation per backend.

use std::collections::HashMap;
use std::path::Path;

use super::aggregate::DayRow;
use super::pg::{Handle, PgBatch, PgStore};
use super::read::FailureMessage;
use super::{
    FailureRow, FileTally, FingerprintRow, NewDatabase, Prepared, QuarantineChange,
    QuarantineEventRow, QuarantineRow, ResultRow, RunFilter, RunRow, SqliteBatch, SqliteStore,
    TestCounts, TestRow,
};
use crate::error::Result;
use crate::model::{RunMeta, TestCase};

/// Whether `--db` names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres_url(db: &Path) -> bool {
    db.to_str()
        .is_some_and(|s| s.starts_with("postgresql://") || s.starts_with("postgres://"))
}

enum Backend {
    Sqlite(SqliteStore),
    Postgres(Handle),
}

/// An open database, SQLite or PostgreSQL.
pub struct Store {
    backend: Backend,
}

/// An open write transaction. Dropping it without [`Batch::commit`] rolls everything back.
// One batch lives at a time, on the stack of its writer: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Batch<'s> {
    #[doc(hidden)]
    Sqlite(SqliteBatch<'s>),
    #[doc(hidden)]
    Postgres(Box<PgBatch<'s>>),
}

macro_rules! both {
    ($self:expr, $s:ident => $e:expr) => {
        match &$self.backend {
            Backend::Sqlite($s) => $e,
            Backend::Postgres($s) => $e,
        }
    };
}

macro_rules! both_mut {
    ($self:expr, $s:ident => $e:expr) => {
        match &mut $self.backend {
            Backend::Sqlite($s) => $e,
            Backend::Postgres($s) => $e,
        }
    };
}

macro_rules! batch {
    ($self:expr, $b:ident => $e:expr) => {
        match $self {
            Batch::Sqlite($b) => $e,
            Batch::Postgres($b) => $e,
        }
    };
}

impl Store {
    /// Open (creating if needed) and migrate a database for reading and writing.
    pub fn open(db: &Path) -> Result<Store> {
        let backend = if is_postgres_url(db) {
            Backend::Postgres(Handle::owned(PgStore::open(db, true)?))
        } else {
            Backend::Sqlite(SqliteStore::open(db)?)
        };
        Ok(Store { backend })
    }

    /// Prepare for a bulk ingest of runs starting at the latest at `newest_start`, if
    /// known (SQLite: fewer checkpoints, see [`SqliteStore::checkpoint_less_often`], and
    /// days built as they are stored, see [`SqliteStore::tally_days`]; PostgreSQL needs
    /// nothing).
    pub fn bulk_ingest(&mut self, newest_start: Option<i64>) -> Result<()> {
        match &mut self.backend {
            Backend::Sqlite(s) => {
                s.checkpoint_less_often()?;
                s.tally_days(newest_start)
            }
            Backend::Postgres(_) => Ok(()),
        }
    }

    /// Remove what killed builds of a new SQLite database left beside `db` (side files
    /// nobody holds, see `fresh.rs`); nothing for PostgreSQL.
    pub fn sweep_unfinished_builds(db: &Path) {
        if !is_postgres_url(db) {
            super::fresh::sweep_unfinished_builds(db);
        }
    }

    /// For an ingest into a SQLite database that does not exist yet: the database, built
    /// beside its path until [`Store::put_in_place`] (see `fresh.rs`). `None`: open `db`
    /// with [`Store::open`] (it exists, is PostgreSQL, or its folder takes no side file).
    pub fn start_new(db: &Path) -> Option<(Store, NewDatabase)> {
        if is_postgres_url(db) {
            return None;
        }
        let (store, new) = NewDatabase::start(db)?;
        Some((
            Store {
                backend: Backend::Sqlite(store),
            },
            new,
        ))
    }

    /// Give a database from [`Store::start_new`] its path. `Ok(false)`: another process
    /// created the database meanwhile; nothing of this one is kept, so store the same
    /// reports again into the database at the path.
    pub fn put_in_place(self, new: NewDatabase) -> Result<bool> {
        match self.backend {
            Backend::Sqlite(s) => new.put_in_place(s),
            Backend::Postgres(_) => unreachable!("start_new builds SQLite only"),
        }
    }

    /// Open an existing database without ever writing to it.
    pub fn open_read_only(db: &Path) -> Result<Store> {
        let backend = if is_postgres_url(db) {
            Backend::Postgres(Handle::read(db)?)
        } else {
            Backend::Sqlite(SqliteStore::open_read_only(db)?)
        };
        Ok(Store { backend })
    }

    /// Whether the database answers now: PostgreSQL is asked over a read connection
    /// (kept ones are checked first); a SQLite file is local and always is.
    pub fn check_reachable(db: &Path) -> Result<()> {
        if is_postgres_url(db) {
            Handle::read(db).map(drop)
        } else {
            Ok(())
        }
    }

    /// An in-memory SQLite database, for tests and benches.
    pub fn open_in_memory() -> Result<Store> {
        Ok(Store {
            backend: Backend::Sqlite(SqliteStore::open_in_memory()?),
        })
    }

    /// Whether this store is on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// The `--db` it was opened with (a path, `:memory:` or a URL).
    pub fn path(&self) -> &Path {
        both!(self, s => s.path())
    }

    /// Check the database's integrity; `Ok(())` when it is sound.
    pub fn integrity_check(&self) -> Result<()> {
        both!(self, s => s.integrity_check())
    }

    /// Start a write batch.
    pub fn batch(&mut self) -> Result<Batch<'_>> {
        Ok(match &mut self.backend {
            Backend::Sqlite(s) => Batch::Sqlite(s.batch()?),
            Backend::Postgres(s) => Batch::Postgres(Box::new(s.batch()?)),
        })
    }

    /// The start of the newest run, the default "now" of every query.
    pub fn newest_run_start(&self) -> Result<Option<i64>> {
        both!(self, s => s.newest_run_start())
    }

    /// A number that changes whenever a write that can change an answer (an upload, a
    /// quarantine change) is committed by another connection or process; on PostgreSQL
    /// also by this one. Read answers may be cached by it: it is cheap (one pragma on
    /// SQLite, one one-row select on PostgreSQL). Only values from the same open store
    /// compare.
    pub fn data_version(&self) -> Result<i64> {
        both!(self, s => s.data_version())
    }

    /// The form a commit is stored and queried in: lower case, and a short SHA replaced by
    /// the one stored full SHA of the job it prefixes.
    pub fn full_commit(&self, job: &str, commit: &str) -> Result<String> {
        both!(self, s => s.full_commit(job, commit))
    }

    /// Every job with a stored run, sorted.
    pub fn jobs(&self) -> Result<Vec<String>> {
        both!(self, s => s.jobs())
    }

    /// Every branch with a stored run, sorted.
    pub fn branches(&self) -> Result<Vec<String>> {
        both!(self, s => s.branches())
    }

    /// Run `f` (which reads through this store) inside one read transaction, so all its
    /// reads see the same committed state. Nested calls share the outer one.
    pub fn read_snapshot<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        both!(self, s => s.read_snapshot(f))
    }

    /// Runs matching the filter, oldest first, in a stable order.
    pub fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRow>> {
        both!(self, s => s.runs(filter))
    }

    /// Whether a run matching the filter's branch and job started before its `since`:
    /// the history then covers the whole window (false without a `since`).
    pub fn has_runs_before(&self, filter: &RunFilter) -> Result<bool> {
        both!(self, s => s.has_runs_before(filter))
    }

    /// Number of report files stored per run key.
    pub fn report_counts(&self) -> Result<HashMap<i64, u64>> {
        both!(self, s => s.report_counts())
    }

    /// Call `f(position of the run in run_keys, result)` for every result of the given
    /// runs, run by run, each run's results by test id.
    pub fn for_each_result(&self, run_keys: &[i64], f: impl FnMut(usize, ResultRow)) -> Result<()> {
        both!(self, s => s.for_each_result(run_keys, f))
    }

    /// The results of the given (run key, test id) pairs that exist, keyed by the pair:
    /// one batched read instead of a [`Store::result`] per pair.
    pub fn results_of(&self, pairs: &[(i64, i64)]) -> Result<HashMap<(i64, i64), ResultRow>> {
        both!(self, s => s.results_of(pairs))
    }

    /// A test's results in the first `max` of `runs` (in their order) that have one, read a
    /// few hundred runs at a time: a test in one job of many would otherwise cost a read
    /// (a round trip on PostgreSQL) per run of the other jobs.
    pub fn results_in<'r>(
        &self,
        runs: impl Iterator<Item = &'r RunRow>,
        test_id: i64,
        max: usize,
    ) -> Result<Vec<(&'r RunRow, ResultRow)>> {
        const CHUNK: usize = 256;
        let mut found = Vec::new();
        let mut runs = runs.peekable();
        while found.len() < max && runs.peek().is_some() {
            let chunk: Vec<&RunRow> = runs.by_ref().take(CHUNK).collect();
            let pairs: Vec<(i64, i64)> = chunk.iter().map(|r| (r.run_key, test_id)).collect();
            let mut results = self.results_of(&pairs)?;
            for run in chunk {
                if found.len() >= max {
                    break;
                }
                if let Some(r) = results.remove(&(run.run_key, test_id)) {
                    found.push((run, r));
                }
            }
        }
        Ok(found)
    }

    /// Days of the daily aggregate written since their rollup (read those raw), or `None`
    /// for a database without the aggregate.
    pub fn pending_days(&self) -> Result<Option<Vec<i64>>> {
        both!(self, s => s.pending_days())
    }

    /// The aggregate's job ids and names.
    pub fn job_ids(&self) -> Result<HashMap<i64, String>> {
        both!(self, s => s.job_ids())
    }

    /// Every aggregate row of days `first..=last`, of one job when given, pending days
    /// included (their rows are stale: the caller skips them).
    pub fn for_each_day_row(
        &self,
        first: i64,
        last: i64,
        job_id: Option<i64>,
        f: impl FnMut(&DayRow),
    ) -> Result<()> {
        both!(self, s => s.for_each_day_row(first, last, job_id, f))
    }

    /// Roll up the pending days up to `through` (inclusive); returns how many.
    pub fn rollup(&mut self, through: i64) -> Result<u32> {
        both_mut!(self, s => s.rollup(through))
    }

    /// Roll up the closed pending days ([`super::last_closed_day`]): what `ingest`, the
    /// server after a write, and `compact` do.
    pub fn rollup_closed(&mut self) -> Result<u32> {
        match self.newest_run_start()? {
            Some(newest) => self.rollup(super::last_closed_day(newest)),
            None => Ok(0),
        }
    }

    /// One test's result in one run, if it ran there.
    pub fn result(&self, run_key: i64, test_id: i64) -> Result<Option<ResultRow>> {
        both!(self, s => s.result(run_key, test_id))
    }

    /// Every failed attempt in the given runs, ordered by run, test and attempt.
    pub fn failures(&self, run_keys: &[i64]) -> Result<Vec<FailureRow>> {
        both!(self, s => s.failures(run_keys))
    }

    /// Failure messages of one test in one run (type, message), by attempt.
    pub fn failure_messages(&self, run_key: i64, test_id: i64) -> Result<Vec<FailureMessage>> {
        both!(self, s => s.failure_messages(run_key, test_id))
    }

    pub fn fingerprints(&self, ids: &[i64]) -> Result<HashMap<i64, FingerprintRow>> {
        both!(self, s => s.fingerprints(ids))
    }

    pub fn tests_by_id(&self, ids: &[i64]) -> Result<HashMap<i64, TestRow>> {
        both!(self, s => s.tests_by_id(ids))
    }

    /// Tests matching a user's query: a 16-hex-digit test id, an exact readable name
    /// (`Class.method`), or else a substring of it. Sorted by readable name.
    pub fn find_tests(&self, query: &str) -> Result<Vec<TestRow>> {
        both!(self, s => s.find_tests(query))
    }

    /// Every test with its result counts over the whole history, sorted by name.
    pub fn test_counts(&self) -> Result<Vec<TestCounts>> {
        both!(self, s => s.test_counts())
    }

    /// Stored result rows and the database size in bytes.
    pub fn storage_stats(&self) -> Result<(u64, u64)> {
        both!(self, s => s.storage_stats())
    }

    /// Every quarantine period, active and released, oldest first.
    pub fn quarantine_rows(&self) -> Result<Vec<QuarantineRow>> {
        both!(self, s => s.quarantine_rows())
    }

    /// The quarantine history, in the order it happened.
    pub fn quarantine_events(&self) -> Result<Vec<QuarantineEventRow>> {
        both!(self, s => s.quarantine_events())
    }

    /// Write changes in one transaction: all of them or none.
    pub fn apply_quarantine_changes(&mut self, changes: &[QuarantineChange]) -> Result<()> {
        both_mut!(self, s => s.apply_quarantine_changes(changes))
    }
}

impl Batch<'_> {
    /// The run's key, creating the run if it is new. Returns `(run_key, created)`.
    pub fn run(&mut self, meta: &RunMeta) -> Result<(i64, bool)> {
        batch!(self, b => b.run(meta))
    }

    /// Whether this exact report (by content hash) is already stored for the run.
    pub fn has_file(&self, run_key: i64, content_hash: &str) -> Result<bool> {
        batch!(self, b => b.has_file(run_key, content_hash))
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
        batch!(self, b => b.add_file(run_key, content_hash, path, cases, testcase_elements, report_time_s))
    }

    /// [`Batch::add_file`] with rows computed by [`super::prepare`] beforehand.
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
        batch!(self, b => b.add_file_prepared(
            run_key,
            content_hash,
            path,
            cases,
            prepared,
            testcase_elements,
            report_time_s
        ))
    }

    /// Store test cases for a run without recording a report file (used when a huge
    /// report is streamed in chunks; the last chunk goes through [`Batch::add_file`]).
    pub fn add_cases(&mut self, run_key: i64, cases: &[TestCase]) -> Result<FileTally> {
        batch!(self, b => b.add_cases(run_key, cases))
    }

    /// Store cases whose rows were computed by [`super::prepare`].
    pub fn add_prepared(
        &mut self,
        run_key: i64,
        cases: &[TestCase],
        prepared: &Prepared,
    ) -> Result<FileTally> {
        batch!(self, b => b.add_prepared(run_key, cases, prepared))
    }

    /// Mark a point to roll back to if the file being streamed turns out to be bad.
    pub fn savepoint(&mut self) -> Result<()> {
        batch!(self, b => b.savepoint())
    }

    pub fn release_savepoint(&mut self) -> Result<()> {
        batch!(self, b => b.release_savepoint())
    }

    pub fn rollback_to_savepoint(&mut self) -> Result<()> {
        batch!(self, b => b.rollback_to_savepoint())
    }

    /// Test ids written in this batch so far.
    pub fn tests_seen(&self) -> Box<dyn Iterator<Item = i64> + '_> {
        batch!(self, b => Box::new(b.tests_seen()))
    }

    /// Make the batch durable.
    pub fn commit(self) -> Result<()> {
        match self {
            Batch::Sqlite(b) => b.commit(),
            Batch::Postgres(b) => b.commit(),
        }
    }
}
