//! Routes, authentication, limits and request logging.

mod gate;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Query, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tower_http::timeout::TimeoutLayer;

use super::auth::{Denied, Scope, Tokens};
use super::cache::{Answer, ReadCache};
use super::limits::{case_bytes, prepared_bytes, Charge, Exhausted, MemoryBudget};
use super::unpack::{unpack, Meter, UnpackError};
use super::writer::{Job, Parsed, Upload};
use super::Config;
use crate::api::{self, ApiError, Endpoint};
use crate::ingest::Rejection;
use crate::junit;
use crate::model::RunMeta;

/// Seconds a client is told to wait when the server is busy.
const RETRY_AFTER_S: u64 = 2;

#[derive(Clone)]
pub struct State(Arc<Inner>);

struct Inner {
    db: PathBuf,
    dashboard: super::dashboard::Dashboard,
    secure_cookies: bool,
    /// Swapped whole on SIGHUP.
    tokens: Option<RwLock<Arc<Tokens>>>,
    writer: mpsc::Sender<Job>,
    /// Taken once an upload's body is whole, held while it is parsed and stored.
    uploads: Arc<Semaphore>,
    max_body: u64,
    max_unpacked: u64,
    memory: Arc<MemoryBudget>,
    /// Read answers by database version; the cap on score computations.
    reads: Arc<ReadCache>,
}

impl State {
    pub fn new(config: &Config, tokens: Option<Tokens>, writer: mpsc::Sender<Job>) -> State {
        State(Arc::new(Inner {
            db: config.db.clone(),
            dashboard: super::dashboard::Dashboard::new(config.links.clone()),
            secure_cookies: config.secure_cookies,
            tokens: tokens.map(|t| RwLock::new(Arc::new(t))),
            writer,
            uploads: Arc::new(Semaphore::new(config.max_concurrent_uploads.max(1))),
            max_body: config.max_body,
            max_unpacked: config.max_unpacked,
            memory: MemoryBudget::new(config.max_memory),
            reads: Arc::new(ReadCache::new(
                config.db.clone(),
                config.read_cache,
                config.max_concurrent_reads,
                RETRY_AFTER_S,
            )),
        }))
    }

    /// Replace the tokens (SIGHUP); requests already authenticated go on.
    pub fn set_tokens(&self, tokens: Tokens) -> bool {
        match &self.0.tokens {
            Some(lock) => {
                *lock.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(tokens);
                true
            }
            None => false,
        }
    }

    fn tokens(&self) -> Option<Arc<Tokens>> {
        self.0
            .tokens
            .as_ref()
            .map(|l| l.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

// For the dashboard (src/server/dashboard.rs).
impl State {
    pub(super) fn db(&self) -> &std::path::Path {
        &self.0.db
    }

    pub(super) fn dashboard(&self) -> &super::dashboard::Dashboard {
        &self.0.dashboard
    }

    pub(super) fn reads(&self) -> &Arc<ReadCache> {
        &self.0.reads
    }

    pub(super) fn secure_cookies(&self) -> bool {
        self.0.secure_cookies
    }

    /// Whether requests need a token (a token file was given).
    pub(super) fn auth_on(&self) -> bool {
        self.0.tokens.is_some()
    }

    pub(super) fn check_token(&self, token: &str, needed: Scope) -> Result<(), Denied> {
        match self.tokens() {
            None => Ok(()),
            Some(t) => t
                .check(Some(token).filter(|t| !t.is_empty()), needed)
                .map(|_| ()),
        }
    }

    pub(super) fn check_bearer(&self, headers: &HeaderMap, needed: Scope) -> Result<(), Denied> {
        match self.tokens() {
            None => Ok(()),
            Some(t) => t.check(bearer(headers), needed).map(|_| ()),
        }
    }
}

pub fn router(state: State, config: &Config) -> Router {
    let reads = Router::new()
        .route("/api/v1/flaky", get(flaky))
        .route("/api/v1/quarantine", get(quarantine))
        .route("/api/v1/report", get(report))
        .route("/api/v1/backlog", get(backlog))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_read));
    let uploads = Router::new()
        .route("/api/v1/uploads", post(upload))
        .route("/api/v1/gate", post(gate::gate))
        .route_layer(middleware::from_fn_with_state(state.clone(), admit_upload))
        .layer(DefaultBodyLimit::max(
            usize::try_from(config.max_body).unwrap_or(usize::MAX),
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .merge(super::dashboard::routes())
        .merge(reads)
        .merge(uploads)
        .fallback(not_found)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.request_timeout,
        ))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

fn busy(message: &str) -> Response {
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, message);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_S));
    r
}

/// Method, path (never the query string, never headers), status and duration.
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let start = Instant::now();
    let response = next.run(req).await;
    let ms = format!("{:.2}", start.elapsed().as_secs_f64() * 1000.0);
    let status = response.status().as_u16();
    if response.status().is_server_error() {
        tracing::warn!(%method, path, status, %ms, "request");
    } else {
        tracing::info!(%method, path, status, %ms, "request");
    }
    response
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// `None` when the request may go on, else the refusal.
fn refusal(state: &State, headers: &HeaderMap, needed: Scope) -> Option<Response> {
    let tokens = state.tokens()?;
    match tokens.check(bearer(headers), needed) {
        Ok(name) => {
            tracing::debug!(token = name, "authenticated");
            None
        }
        Err(Denied::Unauthenticated) => {
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "missing or unknown token: send `Authorization: Bearer TOKEN`",
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"flakehound\""),
            );
            Some(r)
        }
        Err(Denied::Forbidden) => {
            let mut r = error(
                StatusCode::FORBIDDEN,
                format!(
                    "this token's scope does not allow this: it needs the `{}` scope",
                    needed.as_str()
                ),
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(
                    "Bearer realm=\"flakehound\", error=\"insufficient_scope\"",
                ),
            );
            Some(r)
        }
    }
}

async fn require_read(
    axum::extract::State(state): axum::extract::State<State>,
    req: Request,
    next: Next,
) -> Response {
    match refusal(&state, req.headers(), Scope::Read) {
        None => next.run(req).await,
        Some(r) => r,
    }
}

/// Authenticate, and refuse a declared body over `--max-body` before reading any of it
/// (so a client that sent `Expect: 100-continue` gets 413, never `100 Continue`).
async fn admit_upload(
    axum::extract::State(state): axum::extract::State<State>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(r) = refusal(&state, req.headers(), Scope::Upload) {
        return r;
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().parse::<u64>());
    match declared {
        Some(Ok(n)) if n > state.0.max_body => too_large_body(state.0.max_body),
        Some(Err(_)) => error(StatusCode::BAD_REQUEST, "bad Content-Length"),
        _ => next.run(req).await,
    }
}

fn too_large_body(max_body: u64) -> Response {
    let mut r = error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body is larger than the server's --max-body ({max_body} bytes)"),
    );
    // The rest of the body is not read: the connection cannot be reused.
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// Why a body could not be read whole.
enum BodyError {
    TooLarge,
    Memory(Exhausted),
    Broken(String),
}

/// An upload's whole body (within `--max-body` and the memory budget, charged to `Charge`)
/// and its upload slot, or the answer that refuses it. The slot is taken only once the
/// body is whole: a slow client holds a connection, never an upload slot.
pub(super) async fn admit_body(
    state: &State,
    req: Request,
) -> Result<(Vec<u8>, Charge, tokio::sync::OwnedSemaphorePermit), Response> {
    let charge = state.0.memory.charge();
    let body = match read_body(req.into_body(), state.0.max_body, &charge).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => return Err(too_large_body(state.0.max_body)),
        Err(BodyError::Memory(e)) => return Err(memory_refusal(e, state.0.memory.limit())),
        Err(BodyError::Broken(m)) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                format!("cannot read the body: {m}"),
            ))
        }
    };
    if body.is_empty() {
        return Err(error(StatusCode::BAD_REQUEST, "the body is empty"));
    }
    let Ok(permit) = state.0.uploads.clone().try_acquire_owned() else {
        return Err(busy("too many uploads in progress; retry later"));
    };
    Ok((body, charge, permit))
}

/// Read the body chunk by chunk, charging each against the memory budget.
async fn read_body(
    body: axum::body::Body,
    max_body: u64,
    charge: &Charge,
) -> Result<Vec<u8>, BodyError> {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Broken(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if (out.len() + data.len()) as u64 > max_body {
            return Err(BodyError::TooLarge);
        }
        charge
            .try_add(data.len() as u64)
            .map_err(BodyError::Memory)?;
        out.extend_from_slice(&data);
    }
    Ok(out)
}

fn memory_refusal(e: Exhausted, max_memory: u64) -> Response {
    match e {
        Exhausted::Busy => busy("the server's memory budget for uploads is in use; retry later"),
        Exhausted::TooLarge => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the upload needs more memory than the server's --max-memory ({max_memory} bytes)"
            ),
        ),
    }
}

/// Sets the flag when dropped: the request's future is gone (timed out, or the client
/// left), so the parse working for it should stop.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

async fn healthz(axum::extract::State(state): axum::extract::State<State>) -> Response {
    if state.0.writer.is_closed() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the writer has stopped");
    }
    // A load balancer should stop sending uploads to a replica that cannot reach its
    // database (it answers 503 to them until the connection is back).
    let db = state.0.db.clone();
    match tokio::task::spawn_blocking(move || crate::store::Store::check_reachable(&db)).await {
        Ok(Ok(())) => Json(serde_json::json!({ "status": "ok" })).into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: database unreachable");
            busy("the database is unreachable")
        }
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "the health check failed"),
    }
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such endpoint; see docs/openapi.yaml",
    )
}

type Pairs = Result<Query<Vec<(String, String)>>, QueryRejection>;

fn query_pairs(q: Pairs) -> Result<Vec<(String, String)>, String> {
    q.map(|Query(p)| p)
        .map_err(|e| format!("bad query string: {}", e.body_text()))
}

async fn query(state: State, endpoint: Endpoint, q: Pairs) -> Response {
    let params = match query_pairs(q) {
        Ok(p) => p,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let db = state.0.db.clone();
    let links = state.0.dashboard.links();
    let route = match endpoint {
        Endpoint::Flaky => "/api/v1/flaky",
        Endpoint::Quarantine => "/api/v1/quarantine",
        Endpoint::Report => "/api/v1/report",
        Endpoint::Backlog => "/api/v1/backlog",
    };
    let p = params.clone();
    state
        .0
        .reads
        .serve(route, &params, move || {
            match api::render_with(&db, endpoint, &p, &links) {
                Ok(rendered) => Answer::new(StatusCode::OK, rendered.content_type, rendered.body),
                Err(ApiError::BadRequest(m)) => json_answer(StatusCode::BAD_REQUEST, m),
                Err(ApiError::Internal(e)) if e.is_unavailable() => {
                    tracing::warn!(error = %e, "query: database unavailable");
                    let mut a = json_answer(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the database is unavailable; retry".into(),
                    );
                    a.headers
                        .push((header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_S)));
                    a
                }
                Err(ApiError::Internal(e)) => {
                    tracing::error!(error = %e, "query failed");
                    // The cause may name the server's files: it stays in the log.
                    json_answer(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "the query failed; see the server's log".into(),
                    )
                }
            }
        })
        .await
}

fn json_answer(status: StatusCode, message: String) -> Answer {
    Answer::new(
        status,
        "application/json",
        serde_json::json!({ "error": message }).to_string(),
    )
}

async fn flaky(s: axum::extract::State<State>, q: Pairs) -> Response {
    query(s.0, Endpoint::Flaky, q).await
}
async fn quarantine(s: axum::extract::State<State>, q: Pairs) -> Response {
    query(s.0, Endpoint::Quarantine, q).await
}
async fn report(s: axum::extract::State<State>, q: Pairs) -> Response {
    query(s.0, Endpoint::Report, q).await
}
async fn backlog(s: axum::extract::State<State>, q: Pairs) -> Response {
    query(s.0, Endpoint::Backlog, q).await
}

/// The run metadata from an upload's query string: the same as `ingest`'s flags.
fn upload_meta(params: &[(String, String)]) -> Result<(RunMeta, bool, String), String> {
    let mut commit = None;
    let mut branch = None;
    let mut job = None;
    let mut run_id = None;
    let mut attempt = None;
    let mut started_at = None;
    let mut duration_s = None;
    let mut run_url = None;
    let mut name = None;
    for (k, v) in params {
        let slot = match k.as_str() {
            "commit" => &mut commit,
            "branch" => &mut branch,
            "job" => &mut job,
            "run_id" => &mut run_id,
            "attempt" => &mut attempt,
            "started_at" => &mut started_at,
            "duration_s" => &mut duration_s,
            "run_url" => &mut run_url,
            "name" => &mut name,
            other => {
                return Err(format!(
                    "unknown parameter {other:?} (expected commit, branch, job, run_id, attempt, started_at, duration_s, run_url, name)"
                ))
            }
        };
        if slot.replace(v.clone()).is_some() {
            return Err(format!("parameter {k:?} given twice"));
        }
    }
    let required = |v: Option<String>, what: &str| {
        v.filter(|s| !s.trim().is_empty())
            .ok_or_else(|| format!("missing parameter `{what}`"))
    };
    let commit = required(commit, "commit")?;
    let job = required(job, "job")?;
    let run_id = required(run_id, "run_id")?;
    let attempt = match attempt {
        None => 1,
        Some(a) => a
            .parse::<u32>()
            .ok()
            .filter(|&a| a >= 1)
            .ok_or_else(|| format!("attempt {a:?}: expected a whole number from 1"))?,
    };
    let (started_at, known) = match started_at {
        None => (chrono::Utc::now().timestamp(), false),
        Some(t) => {
            let secs = crate::timefmt::parse_started_at(&t, chrono::Utc::now().timestamp())
                .map_err(|e| format!("started_at: {e}"))?;
            (secs, true)
        }
    };
    let duration_s = match duration_s {
        None => None,
        Some(d) => Some(
            d.parse::<f64>()
                .ok()
                .filter(|d| d.is_finite() && *d >= 0.0)
                .ok_or_else(|| format!("duration_s {d:?}: expected seconds"))?,
        ),
    };
    let run_url = match run_url.filter(|u| !u.trim().is_empty()) {
        None => None,
        Some(u) => Some(crate::links::check_url(&u).map_err(|e| format!("run_url: {e}"))?),
    };
    let name = name.unwrap_or_else(|| "upload.xml".to_string());
    Ok((
        RunMeta {
            commit,
            branch: branch.unwrap_or_default(),
            job,
            run_id,
            attempt,
            started_at,
            duration_s,
            run_url,
        },
        known,
        name,
    ))
}

/// Unpack and parse an upload's body (blocking work). Decompressed bytes and parsed
/// results are charged to `charge`; the parsed results of one upload may hold at most
/// `max_unpacked` bytes, like its decompressed reports.
fn prepare(
    body: &[u8],
    meta: RunMeta,
    known: bool,
    single_name: &str,
    max_unpacked: u64,
    charge: Charge,
    cancel: &AtomicBool,
) -> Result<Upload, UnpackError> {
    let mut files: Vec<Parsed> = Vec::new();
    let mut rejected = Vec::new();
    let mut copies = crate::ingest::TestNgCopies::<Parsed>::default();
    let mut not_junit = 0u64;
    let mut refused: Option<UnpackError> = None;
    let mut parsed_bytes = 0u64;
    let meter = Meter::new(max_unpacked, Some(&charge));
    let options = junit::ParseOptions {
        cancel: Some(cancel),
        environment: None,
    };
    unpack(body, single_name, &meter, |entry| {
        if refused.is_some() {
            return;
        }
        if !junit::is_plain(&entry.xml) {
            // Transcoded text is up to three times as long (a one-byte half-width kana of
            // Shift_JIS is three bytes of UTF-8): counted like the rest.
            if let Err(e) = charge.add(entry.xml.len() as u64 * 3) {
                refused = Some(memory_error(e, charge.limit()));
                return;
            }
        }
        let mut count = |case: &crate::model::TestCase| {
            let n = case_bytes(case);
            parsed_bytes += n;
            let over = if parsed_bytes > max_unpacked {
                Some(UnpackError::TooLarge(format!(
                    "the upload's parsed results need more than {max_unpacked} bytes (the server's --max-unpacked)"
                )))
            } else {
                charge.add(n).err().map(|e| memory_error(e, charge.limit()))
            };
            match over {
                None => Ok(()),
                Some(e) => {
                    refused = Some(e);
                    Err(junit::ParseError {
                        offset: 0,
                        reason: "refused".into(),
                    })
                }
            }
        };
        let environment = junit::path_environment(&entry.name);
        let options = junit::ParseOptions {
            environment,
            ..options
        };
        let parsed = if junit::is_plain(&entry.xml) {
            junit::parse_plain(&entry.xml, options, &mut count)
        } else {
            parse_transcoded(&entry.xml, options, &mut count)
        };
        if refused.is_some() {
            return;
        }
        if cancel.load(Ordering::Relaxed) {
            refused = Some(UnpackError::Malformed("the request timed out".into()));
            return;
        }
        match parsed {
            Ok(report) => {
                // The rows the writer binds, computed here (in parallel across uploads)
                // and charged like the results they come from.
                // Two variants' byte-identical reports are two reports (see ingest).
                let key = junit::report_key(entry.hash, environment);
                let file = Parsed::new(entry.name, key, report);
                if let Err(e) = charge.add(prepared_bytes(&file.prepared)) {
                    refused = Some(memory_error(e, charge.limit()));
                    return;
                }
                let name = std::path::PathBuf::from(&file.name);
                match file.report.info.testng {
                    Some(r) => copies.hold(&name, r, file),
                    None => {
                        copies.plain(&name);
                        files.push(file);
                    }
                }
            }
            Err(e) if entry.packed && e.is_foreign_root() => {
                tracing::info!(name = entry.name, reason = %e, "skipped: not a JUnit report");
                not_junit += 1;
            }
            Err(e) => {
                let at = junit::located_in(&entry.xml, &e);
                rejected.push(Rejection {
                    path: entry.name,
                    line: at.line,
                    column: at.column,
                    reason: at.reason,
                });
            }
        }
    })?;
    if let Some(e) = refused {
        return Err(e);
    }
    // One copy of TestNG's results, as `ingest` keeps.
    let (keep, skip) = copies.resolve();
    files.extend(keep);
    let duplicates = skip.len() as u64;
    Ok(Upload {
        meta,
        started_at_known: known,
        files,
        rejected,
        not_junit,
        duplicates,
        hold: Some(charge),
    })
}

/// A report in UTF-16 or another declared encoding: transcoded, then parsed like any other.
fn parse_transcoded(
    xml: &[u8],
    options: junit::ParseOptions<'_>,
    count: &mut dyn FnMut(&crate::model::TestCase) -> Result<(), junit::ParseError>,
) -> Result<junit::Report, junit::ParseError> {
    use std::io::Read;
    let mut text = Vec::new();
    junit::decoded_reader(xml)
        .and_then(|mut r| r.read_to_end(&mut text))
        .map_err(|e| junit::ParseError {
            offset: 0,
            reason: format!("cannot read report: {e}"),
        })?;
    if junit::is_gzip(&text) {
        return Err(junit::ParseError {
            offset: 0,
            reason: "a gzip'd report inside a gzip'd report is not read".into(),
        });
    }
    junit::parse_plain(&text, options, count)
}

fn memory_error(e: Exhausted, max_memory: u64) -> UnpackError {
    match e {
        Exhausted::Busy => UnpackError::Busy(
            "the server's memory budget for uploads (--max-memory) is in use; retry later".into(),
        ),
        Exhausted::TooLarge => UnpackError::TooLarge(format!(
            "the upload needs more memory than the server's --max-memory ({max_memory} bytes)"
        )),
    }
}

async fn upload(
    axum::extract::State(state): axum::extract::State<State>,
    q: Pairs,
    req: Request,
) -> Response {
    let params = match query_pairs(q) {
        Ok(p) => p,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let (meta, known, name) = match upload_meta(&params) {
        Ok(m) => m,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let (body, charge, permit) = match admit_body(&state, req).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal,
    };
    let max_unpacked = state.0.max_unpacked;
    let cancel = Arc::new(AtomicBool::new(false));
    let _cancel_on_drop = CancelOnDrop(cancel.clone());
    let prepared = tokio::task::spawn_blocking(move || {
        prepare(&body, meta, known, &name, max_unpacked, charge, &cancel)
    })
    .await;
    let upload = match prepared {
        Ok(Ok(u)) => u,
        Ok(Err(UnpackError::TooLarge(m))) => return error(StatusCode::PAYLOAD_TOO_LARGE, m),
        Ok(Err(UnpackError::Unsafe(m))) => return error(StatusCode::UNPROCESSABLE_ENTITY, m),
        Ok(Err(UnpackError::Malformed(m))) => return error(StatusCode::BAD_REQUEST, m),
        Ok(Err(UnpackError::Busy(m))) => return busy(&m),
        Err(e) => {
            tracing::error!(error = %e, "parse task failed");
            return error(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the upload");
        }
    };
    if upload.files.is_empty() && upload.rejected.is_empty() {
        let why = if upload.not_junit > 0 {
            format!(
                "the upload holds no JUnit reports: its {} XML file(s) are other tools' (root element not <testsuites> or <testsuite>)",
                upload.not_junit
            )
        } else {
            "the upload holds no report files (*.xml, *.junit-xml, *.xml.gz)".into()
        };
        return error(StatusCode::BAD_REQUEST, why);
    }
    let (reply, answer) = oneshot::channel();
    if state.0.writer.send(Job { upload, reply }).await.is_err() {
        return busy("the server is shutting down");
    }
    // The upload comes back with its answer and is freed here, off the writer.
    let answer = answer.await.map(|a| a.reply);
    drop(permit);
    match answer {
        Ok(Ok(stored)) if stored.rejected.is_empty() => Json(stored.summary).into_response(),
        Ok(Ok(stored)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({
                "error": format!("{} report file(s) rejected", stored.rejected.len()),
                "rejected": stored.rejected,
                "summary": stored.summary,
            })),
        )
            .into_response(),
        // Not stored, nothing acknowledged: the client's retry stores it (once, as
        // its files are recognised by hash).
        Ok(Err(f)) if f.unavailable => busy("the database is unavailable; retry the upload"),
        // The cause (with the database's path) is in the server's log, not the answer.
        Ok(Err(_)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the upload could not be stored; see the server's log",
        ),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the writer stopped before storing the upload",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn meta_from_query() {
        let (m, known, _) = upload_meta(&p(&[
            ("commit", "abc"),
            ("job", "unit"),
            ("run_id", "7"),
            ("attempt", "2"),
            ("started_at", "2026-01-02T03:04:05Z"),
        ]))
        .unwrap();
        assert_eq!(m.attempt, 2);
        assert!(known);
        assert_eq!(m.started_at, 1767323045);
        assert!(upload_meta(&p(&[("commit", "a"), ("job", "j")]))
            .unwrap_err()
            .contains("run_id"));
        for bad in ["1767323045000", "4102444800", "2099-01-01T00:00:00Z"] {
            let err = upload_meta(&p(&[
                ("commit", "a"),
                ("job", "j"),
                ("run_id", "1"),
                ("started_at", bad),
            ]))
            .unwrap_err();
            assert!(err.contains("started_at"), "{err}");
        }
        assert!(upload_meta(&p(&[("token", "x")]))
            .unwrap_err()
            .contains("unknown"));
    }

    fn meta() -> RunMeta {
        upload_meta(&p(&[("commit", "a"), ("job", "j"), ("run_id", "1")]))
            .unwrap()
            .0
    }

    #[test]
    fn a_cancelled_upload_stops_parsing() {
        let mut xml = String::from("<testsuite>");
        for i in 0..5000 {
            xml.push_str(&format!("<testcase classname=\"C\" name=\"t{i}\"/>"));
        }
        xml.push_str("</testsuite>");
        let budget = MemoryBudget::new(1 << 30);
        let go = AtomicBool::new(false);
        let u = prepare(
            xml.as_bytes(),
            meta(),
            true,
            "u.xml",
            1 << 30,
            budget.charge(),
            &go,
        )
        .unwrap();
        assert_eq!(u.files[0].report.cases.len(), 5000);
        drop(u);
        // The request timed out: the parse gives up instead of finishing for nobody.
        let stop = AtomicBool::new(true);
        let err = prepare(
            xml.as_bytes(),
            meta(),
            true,
            "u.xml",
            1 << 30,
            budget.charge(),
            &stop,
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("timed out"), "{err}");
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn parsed_results_count_against_the_upload_limit() {
        // 64 KiB suite name copied into each of 2,000 cases: 128 MiB parsed from 64 KiB.
        let mut xml = format!("<testsuite name=\"{}\">", "s".repeat(60 << 10));
        for i in 0..2000 {
            xml.push_str(&format!("<testcase name=\"t{i}\"/>"));
        }
        xml.push_str("</testsuite>");
        let budget = MemoryBudget::new(1 << 30);
        let go = AtomicBool::new(false);
        let err = prepare(
            xml.as_bytes(),
            meta(),
            true,
            "u.xml",
            16 << 20,
            budget.charge(),
            &go,
        )
        .err()
        .unwrap();
        assert!(
            matches!(err, UnpackError::TooLarge(ref m) if m.contains("parsed")),
            "{err}"
        );
    }

    #[test]
    fn bearer_header() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
    }
}
