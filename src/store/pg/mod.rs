//! The PostgreSQL backend: one organisation-wide database shared by several `serve`
//! replicas and CLI runs. Same tables as SQLite with compact types; results and failures
//! are partitioned by the run's day (see `schema/postgres/`).
//!
//! Writes are buffered per batch and flushed at commit through binary COPY into temporary
//! staging tables and `INSERT … ON CONFLICT`, so that a rejected report never reaches the
//! database (PostgreSQL aborts a transaction on a constraint error, SQLite does not) and
//! concurrent writers of the same run serialise on the run's row lock.

mod aggregate;
mod migrate;
pub mod pool;
mod read;
mod write;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};

use crate::error::{Error, Result};

pub use pool::Handle;
pub use write::PgBatch;

/// How long a lost connection is retried (with backoff) before the work is refused as
/// unavailable; the next batch or read tries again.
const RECONNECT_FOR: Duration = Duration::from_secs(5);

/// A connection to a flakehound PostgreSQL database.
pub struct PgStore {
    client: RefCell<Client>,
    url: PathBuf,
    /// The URL with its password masked, for messages.
    shown: PathBuf,
    config: postgres::Config,
    /// A second, autocommit connection that creates day partitions, opened on first need
    /// (so a write batch never holds a lock that blocks every other writer).
    ddl: RefCell<Option<Client>>,
    /// Day partitions known to exist.
    days: RefCell<HashSet<i32>>,
    /// Prepared statements of the hot paths: a statement given as text costs a second
    /// round trip per call.
    statements: RefCell<HashMap<&'static str, postgres::Statement>>,
    /// Whether this connection's temporary staging tables exist.
    staged: std::cell::Cell<bool>,
    /// Whether a read snapshot (one REPEATABLE READ transaction) is open.
    snapshot: std::cell::Cell<bool>,
    writable: bool,
}

impl PgStore {
    pub fn open(url: &Path, writable: bool) -> Result<PgStore> {
        let text = url.to_str().unwrap_or_default();
        let shown = PathBuf::from(redact(text));
        let config = postgres::Config::from_str(text).map_err(|e| Error::Db {
            path: shown.clone(),
            context: "not a valid PostgreSQL URL".into(),
            source: e.into(),
        })?;
        let mut client = connect(&config, &shown)?;
        if writable {
            migrate::migrate(&mut client, &shown)?;
        } else {
            let applied = migrate::applied(&mut client, &shown)?;
            if applied.is_none() {
                return Err(Error::Usage(format!(
                    "database {} has no flakehound tables; run `flakehound ingest` first",
                    shown.display()
                )));
            }
            migrate::check_known(&applied.unwrap_or_default(), &shown)?;
            migrate::migrate(&mut client, &shown)?;
            client
                .batch_execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
                .map_err(|e| pg_error(&shown, "cannot open read-only", e))?;
        }
        Ok(PgStore {
            client: RefCell::new(client),
            url: url.to_path_buf(),
            shown,
            config,
            ddl: RefCell::new(None),
            days: RefCell::new(HashSet::new()),
            statements: RefCell::new(HashMap::new()),
            staged: std::cell::Cell::new(false),
            snapshot: std::cell::Cell::new(false),
            writable,
        })
    }

    /// Replace a lost connection (a server restart, a failover), retrying with backoff
    /// for a bounded time. What the old connection had (prepared statements, staging
    /// tables, the partition connection) is gone with it; known day partitions stay.
    pub(crate) fn reconnect(&self) -> Result<()> {
        let start = Instant::now();
        let mut delay = Duration::from_millis(50);
        let mut client = loop {
            match connect(&self.config, &self.shown) {
                Ok(c) => break c,
                Err(e) if e.is_unavailable() && start.elapsed() + delay < RECONNECT_FOR => {
                    tracing::warn!(error = %e, retry_ms = delay.as_millis() as u64, "PostgreSQL unreachable; retrying");
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(e),
            }
        };
        if !self.writable {
            client
                .batch_execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
                .map_err(|e| pg_error(&self.shown, "cannot open read-only", e))?;
        }
        *self.client.borrow_mut() = client;
        self.statements.borrow_mut().clear();
        self.staged.set(false);
        *self.ddl.borrow_mut() = None;
        tracing::warn!(
            ms = start.elapsed().as_millis() as u64,
            "reconnected to PostgreSQL"
        );
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.url
    }

    /// PostgreSQL checks its own pages; check that the schema is one this build knows.
    pub fn integrity_check(&self) -> Result<()> {
        let mut client = self.client.borrow_mut();
        match migrate::applied(&mut client, &self.shown)? {
            Some(names) => migrate::check_known(&names, &self.shown),
            None => Err(Error::Other(format!(
                "database {} has no flakehound tables",
                self.shown.display()
            ))),
        }
    }

    /// `sql` prepared once per connection.
    fn statement(
        &self,
        client: &mut Client,
        sql: &'static str,
    ) -> std::result::Result<postgres::Statement, postgres::Error> {
        if let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let s = client.prepare(sql)?;
        self.statements.borrow_mut().insert(sql, s.clone());
        Ok(s)
    }

    fn err(&self, context: &str, e: postgres::Error) -> Error {
        pg_error(&self.shown, context, e)
    }
}

fn connect(config: &postgres::Config, shown: &Path) -> Result<Client> {
    config
        .connect(NoTls)
        .map_err(|e| pg_error(shown, "cannot connect", e))
}

pub(crate) fn pg_error(shown: &Path, context: &str, source: postgres::Error) -> Error {
    // The server's own message (e.g. "relation does not exist") is the useful part.
    let context = match source.as_db_error() {
        Some(db) => format!("{context}: {}", db.message()),
        None => context.to_string(),
    };
    Error::Db {
        path: shown.to_path_buf(),
        context,
        source: source.into(),
    }
}

/// The URL with any password replaced by `***`.
fn redact(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            if let Some(colon) = rest[..at].find(':') {
                let start = scheme_end + 3 + colon + 1;
                let end = scheme_end + 3 + at;
                out.replace_range(start..end, "***");
            }
        }
    }
    for key in ["password="] {
        if let Some(i) = out.find(key) {
            let start = i + key.len();
            let end = out[start..].find('&').map_or(out.len(), |j| start + j);
            out.replace_range(start..end, "***");
        }
    }
    out
}

/// The test server named by `FLAKEHOUND_TEST_PG`, for tests that need PostgreSQL.
/// Locally without it they are skipped with a note; under `CI=true` its absence is a
/// failure, so that CI cannot pass without having run them.
#[doc(hidden)]
pub fn test_server(test: &str) -> Option<String> {
    match std::env::var("FLAKEHOUND_TEST_PG") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !in_ci,
                "{test} needs PostgreSQL: FLAKEHOUND_TEST_PG is not set under CI=true (.ci/run starts one)"
            );
            eprintln!(
                "note: {test}: skipped on PostgreSQL (set FLAKEHOUND_TEST_PG, e.g. from scripts/pg-test-server.sh)"
            );
            None
        }
    }
}

/// A new empty schema on the server at `url`, returned as a `--db` URL whose
/// search_path is that schema: an isolated database for one test.
#[doc(hidden)]
pub fn scratch_database(url: &str) -> Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let shown = PathBuf::from(redact(url));
    let config = postgres::Config::from_str(url).map_err(|e| Error::Db {
        path: shown.clone(),
        context: "not a valid PostgreSQL URL".into(),
        source: e.into(),
    })?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let schema = format!(
        "t{}_{}_{}",
        std::process::id(),
        nanos,
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let mut client = connect(&config, &shown)?;
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .map_err(|e| pg_error(&shown, "cannot create a scratch schema", e))?;
    let sep = if url.contains('?') { '&' } else { '?' };
    Ok(PathBuf::from(format!(
        "{url}{sep}options=-c%20search_path%3D{schema}"
    )))
}

/// Record a migration this build does not know, as a newer flakehound would have.
#[doc(hidden)]
pub fn record_migration_for_test(db: &Path, name: &str) -> Result<()> {
    let store = PgStore::open(db, true)?;
    store
        .client
        .borrow_mut()
        .execute(
            "INSERT INTO flakehound_migrations (name) VALUES ($1)",
            &[&name],
        )
        .map_err(|e| store.err("cannot record a migration", e))?;
    Ok(())
}

/// The Unix day (UTC) of a time in Unix seconds: the partition key.
pub(crate) fn day_of(started_at: i64) -> i32 {
    started_at.div_euclid(86_400) as i32
}

#[cfg(test)]
mod tests {
    use super::{day_of, redact};

    #[test]
    fn passwords_are_masked_in_messages() {
        assert_eq!(
            redact("postgresql://ci:s3cret@db.example/flake"),
            "postgresql://ci:***@db.example/flake"
        );
        assert_eq!(
            redact("postgres:///flake?host=/tmp/x&password=p@ss&user=u"),
            "postgres:///flake?host=/tmp/x&password=***&user=u"
        );
        assert_eq!(
            redact("postgresql:///flake?host=/tmp/x"),
            "postgresql:///flake?host=/tmp/x"
        );
    }

    #[test]
    fn days_are_utc_calendar_days() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(86_399), 0);
        assert_eq!(day_of(86_400), 1);
        assert_eq!(day_of(-1), -1);
    }
}
