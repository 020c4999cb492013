//! The upload server: CI jobs post their reports over HTTP and fetch the quarantine list.
//!
//! axum on tokio. Request bodies are unpacked and parsed on the blocking pool; one writer
//! thread owns the [`Store`] and stores queued uploads in shared transactions
//! ([`writer`]); queries open their own read-only connection through [`crate::api`], so
//! reads never wait for uploads (the database is in WAL mode).
//!
//! Routes (see `docs/openapi.yaml`): `POST /api/v1/uploads`, `POST /api/v1/gate`, `GET /api/v1/flaky`,
//! `/api/v1/quarantine`, `/api/v1/report`, `/api/v1/backlog`, and `GET /healthz`.

pub mod auth;
pub mod cache;
pub mod client;
mod dashboard;
pub mod gate_client;
mod http;
pub mod limits;
mod listen;
pub mod unpack;
pub mod writer;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::store::Store;

pub use auth::{Scope, Tokens};

/// Default `--max-body`: 64 MiB.
pub const DEFAULT_MAX_BODY: u64 = 64 << 20;
/// Default `--max-unpacked`: 1 GiB.
pub const DEFAULT_MAX_UNPACKED: u64 = 1 << 30;
/// Default `--max-memory`: 2 GiB.
pub const DEFAULT_MAX_MEMORY: u64 = 2 << 30;
/// Default `--max-connections`, lowered to fit the process's file-descriptor limit.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default `--header-timeout`.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Default `--read-cache`: 64 MiB of answers.
pub const DEFAULT_READ_CACHE: u64 = 64 << 20;

/// Default `--max-concurrent-reads`: one computation per core.
pub fn default_max_concurrent_reads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// How a server runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub db: PathBuf,
    /// Without one, nothing is authenticated and only a loopback address is allowed.
    pub token_file: Option<PathBuf>,
    /// Largest request body, in bytes (413 beyond).
    pub max_body: u64,
    /// Largest total of decompressed bytes in one upload (413 beyond).
    pub max_unpacked: u64,
    /// Uploads handled at once; more are answered 503 with `Retry-After`.
    pub max_concurrent_uploads: usize,
    /// Whole-request deadline (408 beyond).
    pub request_timeout: Duration,
    /// Uploads stored per transaction at most, when they queue up.
    pub batch_max: usize,
    /// Owners and commit links on the dashboard and in the API's outputs.
    pub links: crate::links::Links,
    /// Mark the dashboard's session cookie `Secure` (also done when `X-Forwarded-Proto: https`).
    pub secure_cookies: bool,
    /// Bytes all uploads in progress may hold together (bodies, decompressed reports,
    /// parsed results); beyond, 503 with `Retry-After` (413 for one upload alone).
    pub max_memory: u64,
    /// Open connections at most; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// A request's head must arrive within this; also the keep-alive idle timeout.
    pub header_timeout: Duration,
    /// PostgreSQL connections for reads (queries, dashboard, gate), kept open between
    /// requests; more reads at once wait. The writer has its own connection.
    pub pg_read_pool: usize,
    /// Bytes of read answers kept per database version (0: none kept).
    pub read_cache: u64,
    /// Read answers computed at once; a request needing one more gets 503 with `Retry-After`.
    pub max_concurrent_reads: usize,
}

impl Config {
    pub fn new(listen: SocketAddr, db: PathBuf) -> Config {
        Config {
            listen,
            db,
            token_file: None,
            max_body: DEFAULT_MAX_BODY,
            max_unpacked: DEFAULT_MAX_UNPACKED,
            max_concurrent_uploads: 16,
            request_timeout: Duration::from_secs(120),
            batch_max: 64,
            links: crate::links::Links::default(),
            secure_cookies: false,
            max_memory: DEFAULT_MAX_MEMORY,
            max_connections: default_max_connections(),
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            pg_read_pool: crate::store::pg::pool::DEFAULT_SIZE,
            read_cache: DEFAULT_READ_CACHE,
            max_concurrent_reads: default_max_concurrent_reads(),
        }
    }
}

/// What [`serve`] reports as it starts.
#[derive(Debug, Clone)]
pub struct Started {
    pub addr: SocketAddr,
    /// Token lines loaded, or `None` when authentication is off.
    pub tokens: Option<usize>,
}

/// Run a server until SIGTERM or Ctrl-C; then finish the requests in flight, store every
/// accepted upload and return. `on_start` is called once the socket listens.
pub fn serve(config: Config, on_start: impl FnOnce(&Started)) -> Result<()> {
    let tokens = match &config.token_file {
        Some(path) => Some(Tokens::load(path)?),
        None => {
            if !config.listen.ip().is_loopback() {
                return Err(Error::Usage(format!(
                    "refusing to listen on {} without authentication: pass --token-file (see `flakehound token add`), or listen on a loopback address such as 127.0.0.1",
                    config.listen
                )));
            }
            None
        }
    };
    if let Some(t) = &tokens {
        if t.is_empty() {
            tracing::warn!("the token file has no tokens: every API request will be refused");
        }
    }
    crate::store::pg::pool::set_size(config.pg_read_pool);
    let store = Store::open(&config.db)?;
    Store::sweep_unfinished_builds(&config.db);
    let (writer, writer_thread) = writer::spawn(
        store,
        config.max_concurrent_uploads.max(1) * 2,
        config.batch_max,
    )
    .map_err(|e| Error::Other(format!("cannot start the writer thread: {e}")))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("flakehound-http")
        .build()
        .map_err(|e| Error::Other(format!("cannot start the async runtime: {e}")))?;
    let token_count = tokens.as_ref().map(Tokens::len);
    let state = http::State::new(&config, tokens, writer);
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| Error::Other(format!("cannot listen on {}: {e}", config.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Other(format!("cannot read the bound address: {e}")))?;
        on_start(&Started {
            addr,
            tokens: token_count,
        });
        let app = http::router(state.clone(), &config);
        #[cfg(unix)]
        tokio::spawn(reload_tokens_on_sighup(config.token_file.clone(), state));
        listen::serve(
            listener,
            app,
            listen::ConnLimits {
                header_timeout: config.header_timeout,
                max_connections: config.max_connections,
                // No request may take longer than the request timeout: waiting longer
                // would only wait for clients that stall.
                drain_deadline: config.request_timeout + Duration::from_secs(1),
            },
            shutdown_signal(),
        )
        .await;
        Ok::<(), Error>(())
    });
    // Requests in flight are done; let blocking work still running (a parse whose client
    // went away) finish, so its upload reaches the queue or is dropped before the writer
    // drains.
    runtime.shutdown_timeout(Duration::from_secs(30));
    if writer_thread.join().is_err() {
        return Err(Error::Other("the writer thread panicked".into()));
    }
    tracing::info!("all accepted uploads are stored; stopped");
    served
}

/// The open-file limit leaves room for the database, the log and a margin.
fn default_max_connections() -> usize {
    #[cfg(unix)]
    {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        if let Some(soft) = limit.current {
            return (soft.saturating_sub(64) as usize).clamp(16, DEFAULT_MAX_CONNECTIONS);
        }
    }
    DEFAULT_MAX_CONNECTIONS
}

/// SIGHUP re-reads the token file; a file that does not parse keeps the tokens in use.
#[cfg(unix)]
async fn reload_tokens_on_sighup(path: Option<PathBuf>, state: http::State) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: the token file is read only at start");
        return;
    };
    while hup.recv().await.is_some() {
        let Some(path) = &path else {
            tracing::warn!("SIGHUP: no --token-file to reload; ignored");
            continue;
        };
        match Tokens::load(path) {
            Ok(tokens) => {
                let n = tokens.len();
                state.set_tokens(tokens);
                tracing::warn!(tokens = n, "SIGHUP: token file reloaded");
            }
            Err(e) => {
                tracing::error!(error = %e, "SIGHUP: cannot reload the token file; keeping the tokens in use")
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    // SIGHUP is handled (token reload) so that it never kills the server.
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::warn!("shutting down: finishing the requests in flight");
}

/// Parse a size such as `64MiB`, `1GiB`, `500k` or `1048576` (bytes).
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 64MiB, 1GiB, 1048576)"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?} (use KiB, MiB or GiB)")),
    };
    let bytes = value * factor as f64;
    if !(bytes.is_finite() && bytes >= 1.0) {
        return Err(format!("{text:?}: the size must be at least one byte"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("1.5k"), Ok(1536));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("0").is_err());
    }
}
