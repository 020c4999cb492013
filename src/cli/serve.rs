//! `flakehound serve`: the upload and query server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use flakehound::error::{exit, Result};
use flakehound::server::{self, parse_size, Config};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Request logs (method, path, status, duration; never query strings or headers) are at info
level: run `flakehound -v serve` (or set RUST_LOG=info) to see them.
Routes: POST /api/v1/uploads, POST /api/v1/gate, GET /api/v1/{flaky,quarantine,report,backlog}, GET /healthz (see docs/openapi.yaml);
for browsers GET / (dashboard), GET /tests/{test_id}, GET|POST /login, POST /logout.
Without --token-file nothing is authenticated and only a loopback --listen is allowed.
SIGTERM or Ctrl-C finishes the requests in flight (waiting at most --request-timeout) and stores
every accepted upload before exiting. SIGHUP re-reads --token-file (a file that does not parse
keeps the tokens in use).")]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is printed)
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Token file: lines of `NAME SCOPE blake3:HASH` (see `flakehound token add`)
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Largest request body (413 beyond), e.g. 64MiB
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    pub max_body: u64,
    /// Largest decompressed size of one upload (413 beyond), e.g. 1GiB
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    pub max_unpacked: u64,
    /// Uploads handled at once; more are answered 503 with Retry-After
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_concurrent_uploads: u64,
    /// Seconds a request may take in all (408 beyond)
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout: u64,
    /// Queued uploads stored per transaction, at most
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub batch_max: u64,
    /// Mark the browser session cookie Secure (set this when users reach the server over
    /// https; it is also set when a proxy sends `X-Forwarded-Proto: https`)
    #[arg(long)]
    pub secure_cookies: bool,
    #[command(flatten)]
    pub links: super::query::LinkArgs,
    /// Memory all uploads in progress may hold together (bodies, decompressed reports,
    /// parsed results); beyond, 503 with Retry-After (413 if one upload alone needs more)
    #[arg(long, default_value = "2GiB", value_parser = parse_size)]
    pub max_memory: u64,
    /// Connections open at once; more are closed when accepted [default: 1024, or less to
    /// fit the open-file limit]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: Option<u64>,
    /// Seconds a client has to send a request's head; also how long an idle keep-alive
    /// connection stays open
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout: u64,
    /// PostgreSQL only: read connections kept open for queries, the dashboard and the
    /// gate; more reads at once wait for one (uploads have their own connection)
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub pg_read_pool: u64,
    /// Memory for cached read answers (the read API and the dashboard), kept until an
    /// upload or quarantine change alters the database (0 keeps none)
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    pub read_cache: u64,
    /// Read answers computed at once (identical requests share one computation); a request
    /// needing one more gets 503 with Retry-After [default: the number of cores]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub max_concurrent_reads: Option<u64>,
}

pub fn run(db: &Path, args: ServeArgs) -> Result<u8> {
    let mut config = Config::new(args.listen, db.to_path_buf());
    config.token_file = args.token_file;
    config.max_body = args.max_body;
    config.max_unpacked = args.max_unpacked;
    config.max_concurrent_uploads = args.max_concurrent_uploads as usize;
    config.request_timeout = Duration::from_secs(args.request_timeout);
    config.batch_max = args.batch_max as usize;
    config.max_memory = args.max_memory;
    if let Some(n) = args.max_connections {
        config.max_connections = n as usize;
    }
    config.header_timeout = Duration::from_secs(args.header_timeout);
    config.pg_read_pool = args.pg_read_pool as usize;
    config.read_cache = args.read_cache;
    if let Some(n) = args.max_concurrent_reads {
        config.max_concurrent_reads = n as usize;
    }
    config.links = args.links.links()?;
    config.secure_cookies = args.secure_cookies;
    server::serve(config, |started| {
        match started.tokens {
            Some(n) => eprintln!("flakehound: {n} token(s) loaded; every API request needs one"),
            None => eprintln!(
                "flakehound: no --token-file: authentication is OFF; listening on loopback only"
            ),
        }
        eprintln!("listening on http://{}", started.addr);
    })?;
    eprintln!("flakehound: stopped; every accepted upload is stored");
    Ok(exit::OK)
}
