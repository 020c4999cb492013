//! Routes, authentication, limits and request logging.

mod gate;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tower_http::timeout::TimeoutLayer;

use super::auth::{Denied, Scope, Tokens};
use super::unpack::{unpack, UnpackError};
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
    tokens: Option<Tokens>,
    writer: mpsc::Sender<Job>,
    uploads: Arc<Semaphore>,
    max_unpacked: u64,
}

impl State {
    pub fn new(config: &Config, tokens: Option<Tokens>, writer: mpsc::Sender<Job>) -> State {
        State(Arc::new(Inner {
            db: config.db.clone(),
            dashboard: super::dashboard::Dashboard::new(config.links.clone()),
            secure_cookies: config.secure_cookies,
            tokens,
            writer,
            uploads: Arc::new(Semaphore::new(config.max_concurrent_uploads.max(1))),
            max_unpacked: config.max_unpacked,
        }))
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

    pub(super) fn secure_cookies(&self) -> bool {
        self.0.secure_cookies
    }

    /// Whether requests need a token (a token file was given).
    pub(super) fn auth_on(&self) -> bool {
        self.0.tokens.is_some()
    }

    pub(super) fn check_token(&self, token: &str, needed: Scope) -> Result<(), Denied> {
        match &self.0.tokens {
            None => Ok(()),
            Some(t) => t
                .check(Some(token).filter(|t| !t.is_empty()), needed)
                .map(|_| ()),
        }
    }

    pub(super) fn check_bearer(&self, headers: &HeaderMap, needed: Scope) -> Result<(), Denied> {
        match &self.0.tokens {
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
    let Some(tokens) = &state.0.tokens else {
        return None;
    };
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

/// Authenticate, then take one of the upload slots (before the body is read).
async fn admit_upload(
    axum::extract::State(state): axum::extract::State<State>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(r) = refusal(&state, req.headers(), Scope::Upload) {
        return r;
    }
    let Ok(permit) = state.0.uploads.clone().try_acquire_owned() else {
        return busy("too many uploads in progress; retry later");
    };
    let response = next.run(req).await;
    drop(permit);
    response
}

async fn healthz(axum::extract::State(state): axum::extract::State<State>) -> Response {
    if state.0.writer.is_closed() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the writer has stopped");
    }
    Json(serde_json::json!({ "status": "ok" })).into_response()
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
    match tokio::task::spawn_blocking(move || api::render_with(&db, endpoint, &params, &links))
        .await
    {
        Ok(Ok(rendered)) => (
            [(header::CONTENT_TYPE, rendered.content_type)],
            rendered.body,
        )
            .into_response(),
        Ok(Err(ApiError::BadRequest(m))) => error(StatusCode::BAD_REQUEST, m),
        Ok(Err(ApiError::Internal(e))) => {
            tracing::error!(error = %e, "query failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
        Err(e) => {
            tracing::error!(error = %e, "query task failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "the query failed")
        }
    }
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
            let secs = match t.parse::<i64>() {
                Ok(s) => s,
                Err(_) => crate::ci_env::parse_timestamp(&t)
                    .map_err(|e| format!("started_at {t:?}: {e} (expected RFC 3339)"))?,
            };
            if let Some(why) = crate::ingest::future_start(secs) {
                return Err(format!("started_at {t:?}: {why}"));
            }
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

/// Unpack and parse an upload's body (blocking work).
fn prepare(
    body: &[u8],
    meta: RunMeta,
    known: bool,
    single_name: &str,
    max_unpacked: u64,
) -> Result<Upload, UnpackError> {
    let mut files = Vec::new();
    let mut rejected = Vec::new();
    unpack(
        body,
        single_name,
        max_unpacked,
        |entry| match junit::parse_bytes(&entry.xml) {
            Ok(report) => files.push(Parsed {
                name: entry.name,
                hash: entry.hash,
                report,
            }),
            Err(e) => {
                let at = junit::located_in(&entry.xml, &e);
                rejected.push(Rejection {
                    path: entry.name,
                    line: at.line,
                    column: at.column,
                    reason: at.reason,
                });
            }
        },
    )?;
    Ok(Upload {
        meta,
        started_at_known: known,
        files,
        rejected,
    })
}

async fn upload(
    axum::extract::State(state): axum::extract::State<State>,
    q: Pairs,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let params = match query_pairs(q) {
        Ok(p) => p,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let (meta, known, name) = match upload_meta(&params) {
        Ok(m) => m,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            let status = rejection.status();
            let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "the body is larger than the server's --max-body".to_string()
            } else {
                rejection.body_text()
            };
            return error(status, message);
        }
    };
    if body.is_empty() {
        return error(StatusCode::BAD_REQUEST, "the body is empty");
    }
    let max_unpacked = state.0.max_unpacked;
    let prepared =
        tokio::task::spawn_blocking(move || prepare(&body, meta, known, &name, max_unpacked)).await;
    let upload = match prepared {
        Ok(Ok(u)) => u,
        Ok(Err(UnpackError::TooLarge(m))) => return error(StatusCode::PAYLOAD_TOO_LARGE, m),
        Ok(Err(UnpackError::Unsafe(m))) => return error(StatusCode::UNPROCESSABLE_ENTITY, m),
        Ok(Err(UnpackError::Malformed(m))) => return error(StatusCode::BAD_REQUEST, m),
        Err(e) => {
            tracing::error!(error = %e, "parse task failed");
            return error(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the upload");
        }
    };
    if upload.files.is_empty() && upload.rejected.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "the upload holds no report files (*.xml, *.junit-xml, *.xml.gz)",
        );
    }
    let (reply, answer) = oneshot::channel();
    if state.0.writer.send(Job { upload, reply }).await.is_err() {
        return busy("the server is shutting down");
    }
    match answer.await {
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
        Ok(Err(m)) => error(StatusCode::INTERNAL_SERVER_ERROR, m),
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
        assert!(upload_meta(&p(&[("token", "x")]))
            .unwrap_err()
            .contains("unknown"));
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
