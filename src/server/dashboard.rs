//! The browsable server: `/` (the HTML report, its tests linking to their pages),
//! `/tests/{id}` (one test's status, history and failures) and browser sessions.
//!
//! A browser cannot send `Authorization: Bearer`, so `POST /login` exchanges a token with
//! the `read` scope for a session cookie (`HttpOnly; SameSite=Strict; Path=/`, and
//! `Secure` behind https). Session ids are 256 random bits kept in server memory only: a
//! restart logs everyone out. Without a token file (loopback only) the pages are open.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rand::RngCore;

use super::auth::{Denied, Scope};
use super::cache::Answer;
use super::http::State;
use crate::api::{self, ApiError, Params};
use crate::links::Links;
use crate::model::{readable_name, RunOutcome, TestIdentity};
use crate::report::html_escape as esc;
use crate::score::{self, rfc3339};
use crate::store::{RunFilter, Store};

/// The cookie's name.
pub const COOKIE: &str = "flakehound_session";
/// How long a session lasts.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; the oldest go first.
const MAX_SESSIONS: usize = 10_000;
/// Runs shown on a test's page.
const HISTORY: usize = 60;

/// Dashboard settings and the session table.
#[derive(Clone, Default)]
pub struct Dashboard {
    links: Arc<Links>,
    sessions: Arc<Mutex<HashMap<String, Instant>>>,
}

impl Dashboard {
    pub fn new(links: Links) -> Dashboard {
        Dashboard {
            links: Arc::new(links),
            sessions: Default::default(),
        }
    }

    pub(super) fn links(&self) -> Arc<Links> {
        self.links.clone()
    }

    fn create_session(&self) -> String {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        sessions.retain(|_, expires| *expires > now);
        if sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, e)| **e)
                .map(|(k, _)| k.clone())
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(id.clone(), now + SESSION_TTL);
        id
    }

    fn valid_session(&self, id: &str) -> bool {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.get(id).is_some_and(|e| *e > Instant::now())
    }

    fn end_session(&self, id: &str) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.remove(id);
    }
}

pub fn routes() -> Router<State> {
    Router::new()
        .route("/", get(index))
        .route("/tests/{id}", get(test_page))
        .route("/login", get(login_form).post(login))
        .route("/logout", axum::routing::post(logout))
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Whether the request may see the pages: open without tokens; else a session cookie or
/// a bearer token with the read scope.
fn allowed(state: &State, headers: &HeaderMap) -> bool {
    if !state.auth_on() {
        return true;
    }
    if let Some(id) = cookie_value(headers, COOKIE) {
        if state.dashboard().valid_session(id) {
            return true;
        }
    }
    state.check_bearer(headers, Scope::Read).is_ok()
}

fn to_login() -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, "/login")]).into_response()
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn page(title: &str, body: &str, logout: bool) -> String {
    let nav = if logout {
        r#"<form method="post" action="/logout" class="logout"><button type="submit">Log out</button></form>"#
    } else {
        ""
    };
    format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{}</title><style>{PAGE_CSS}</style></head><body><nav><a href="/">flakehound</a>{nav}</nav><main>{body}</main></body></html>"#,
        esc(title)
    )
}

const PAGE_CSS: &str = r#"
body { margin: 0; font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2328; }
nav { display: flex; justify-content: space-between; align-items: center; padding: 8px 24px; background: #f6f8fa; border-bottom: 1px solid #d1d9e0; }
nav a { font-weight: 600; color: #0969da; text-decoration: none; }
main { max-width: 1100px; margin: 0 auto; padding: 16px 24px 48px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 16px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #d1d9e0; vertical-align: top; }
code { font-size: 12px; background: #f6f8fa; padding: 1px 4px; border-radius: 4px; word-break: break-all; }
h1 code { font-size: 20px; background: none; }
.muted { color: #59636e; }
.strip { display: flex; flex-wrap: wrap; gap: 2px; margin: 8px 0; }
.strip a, .strip span { display: inline-block; width: 12px; height: 20px; border-radius: 2px; }
.p { background: #4ac26b; } .f { background: #e3a008; } .x { background: #d1242f; } .s { background: #c8ced5; }
.status { font-weight: 600; }
form.login { max-width: 420px; margin-top: 48px; }
form.login input { width: 100%; padding: 6px; margin: 8px 0; font: inherit; }
.error { color: #d1242f; }
"#;

/// Inject the navigation bar into a full HTML document (the report).
fn with_nav(doc: &str, logout: bool) -> String {
    let nav = format!(
        r#"<nav style="display:flex;justify-content:space-between;padding:8px 24px;background:#f6f8fa;border-bottom:1px solid #d1d9e0"><a href="/" style="font-weight:600;color:#0969da;text-decoration:none">flakehound</a>{}</nav>"#,
        if logout {
            r#"<form method="post" action="/logout" style="margin:0"><button type="submit">Log out</button></form>"#
        } else {
            ""
        }
    );
    match doc.find("<body>") {
        Some(i) => format!("{}{nav}{}", &doc[..i + 6], &doc[i + 6..]),
        None => doc.to_string(),
    }
}

fn bad_request(message: &str, logout: bool) -> Response {
    html(
        StatusCode::BAD_REQUEST,
        page(
            "Bad request",
            &format!(r#"<p class="error">{}</p>"#, esc(message)),
            logout,
        ),
    )
}

fn html_answer(status: StatusCode, body: String) -> Answer {
    let mut a = Answer::new(status, "text/html; charset=utf-8", body);
    a.headers
        .push((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    a
}

fn failed(e: ApiError, logout: bool) -> Answer {
    match e {
        ApiError::BadRequest(m) => html_answer(
            StatusCode::BAD_REQUEST,
            page(
                "Bad request",
                &format!(r#"<p class="error">{}</p>"#, esc(&m)),
                logout,
            ),
        ),
        ApiError::Internal(e) => {
            tracing::error!(error = %e, "page failed");
            html_answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                page(
                    "Error",
                    "<p class=\"error\">The page could not be built; see the server log.</p>",
                    logout,
                ),
            )
        }
    }
}

type Pairs = Result<Query<Vec<(String, String)>>, QueryRejection>;

async fn index(
    axum::extract::State(state): axum::extract::State<State>,
    headers: HeaderMap,
    q: Pairs,
) -> Response {
    if !allowed(&state, &headers) {
        return to_login();
    }
    let logout = state.auth_on();
    let Ok(Query(params)) = q else {
        return bad_request("bad query string", logout);
    };
    let db = state.db().to_path_buf();
    let links = state.dashboard().links.clone();
    let p = params.clone();
    state
        .reads()
        .serve("/", &params, move || {
            let built = (|| {
                let p = Params::new(&p);
                let opts = api::report_options(&p)?;
                p.check_unknown()?;
                let store = Store::open_read_only(&db)?;
                let report = crate::report::build_with(&store, &opts, &links)?;
                Ok(crate::report::to_html_with(&report, Some("/tests/")))
            })();
            match built {
                Ok(doc) => html_answer(StatusCode::OK, with_nav(&doc, logout)),
                Err(e) => failed(e, logout),
            }
        })
        .await
}

async fn test_page(
    axum::extract::State(state): axum::extract::State<State>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
    q: Pairs,
) -> Response {
    if !allowed(&state, &headers) {
        return to_login();
    }
    let logout = state.auth_on();
    let Some(identity) = TestIdentity::from_hex(&id) else {
        return html(
            StatusCode::NOT_FOUND,
            page(
                "Not found",
                "<p>No such test id: a test id is 16 hex digits.</p>",
                logout,
            ),
        );
    };
    let Ok(Query(params)) = q else {
        return bad_request("bad query string", logout);
    };
    let db = state.db().to_path_buf();
    let links = state.dashboard().links.clone();
    let p = params.clone();
    state
        .reads()
        .serve(
            "/tests/{id}",
            &with_id(&params, &id),
            move || match test_html(&db, identity, &p, &links) {
                Ok(Some(body)) => html_answer(StatusCode::OK, page(&body.0, &body.1, logout)),
                Ok(None) => html_answer(
                    StatusCode::NOT_FOUND,
                    page(
                        "Not found",
                        "<p>No test with this id is stored.</p>",
                        logout,
                    ),
                ),
                Err(e) => failed(e, logout),
            },
        )
        .await
}

/// A test page's cache key: its parameters and the test id (as a parameter no query can
/// send, so it cannot collide).
fn with_id(params: &[(String, String)], id: &str) -> Vec<(String, String)> {
    let mut p = params.to_vec();
    p.push(("/id".into(), id.to_ascii_lowercase()));
    p
}

/// A test's page: `(title, body)`, or `None` when the test is not stored.
pub fn test_html(
    db: &Path,
    id: TestIdentity,
    params: &[(String, String)],
    links: &Links,
) -> Result<Option<(String, String)>, ApiError> {
    let p = Params::new(params);
    let opts = api::score_options(&p, 30 * 86_400)?;
    p.check_unknown()?;
    let store = Store::open_read_only(db)?;
    let Some(test) = store.tests_by_id(&[id.0])?.remove(&id.0) else {
        return Ok(None);
    };
    let hex = id.hex();
    let scored = score::score(&store, &opts)?;
    let title = readable_name(&test.classname, &test.name);
    let owners = links.owners_of(&test.classname, test.file.as_deref());
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1><code>{}</code></h1><p class=\"muted\">test id <code>{}</code>{}{}</p>",
        esc(&title),
        esc(&hex),
        test.file
            .as_deref()
            .map(|f| format!(", file <code>{}</code>", esc(f)))
            .unwrap_or_default(),
        test.suite
            .as_deref()
            .map(|s| format!(", suite <code>{}</code>", esc(s)))
            .unwrap_or_default(),
    );
    let _ = write!(
        b,
        "<p>Owners: {}</p>",
        if owners.is_empty() {
            "<span class=\"muted\">none (no CODEOWNERS rule matches)</span>".to_string()
        } else {
            esc(&owners.join(" "))
        }
    );

    // Quarantine state, per job.
    let quarantined: Vec<_> = crate::quarantine::active(&store)?
        .into_iter()
        .filter(|e| e.test_id == hex)
        .collect();
    if quarantined.is_empty() {
        b.push_str("<p>Quarantine: <span class=\"status\">not quarantined</span></p>");
    } else {
        for q in &quarantined {
            let _ = write!(
                b,
                "<p>Quarantine: <span class=\"status\">quarantined in {}</span> since {} until {} — {}</p>",
                esc(&q.job),
                esc(&q.since),
                esc(&q.until),
                esc(&q.reason)
            );
        }
    }

    // Status per job in the window.
    let _ = write!(
        b,
        "<h2>Status per job</h2><p class=\"muted\">window {} .. {}</p>",
        esc(&scored.since),
        esc(&scored.as_of)
    );
    let scores: Vec<_> = scored.tests.iter().filter(|t| t.test_id == hex).collect();
    if scores.is_empty() {
        b.push_str("<p>Stable in every job: no failures in the window.</p>");
    } else {
        b.push_str("<table><thead><tr><th>Job</th><th>Status</th><th>Flake rate (95% interval)</th><th>Runs</th><th>Failures</th><th>Retries/day saved</th><th>Why</th></tr></thead><tbody>");
        for s in &scores {
            let _ = write!(
                b,
                "<tr><td>{}</td><td class=\"status\">{}</td><td>{:.2}% [{:.2}–{:.2}%]</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td></tr>",
                esc(&s.job),
                esc(s.status.as_str()),
                s.flake_rate * 100.0,
                s.flake_rate_low * 100.0,
                s.flake_rate_high * 100.0,
                s.runs,
                s.failures,
                s.retries_per_day,
                esc(&s.reason)
            );
        }
        b.push_str("</tbody></table>");
    }

    // History, newest first while collecting; shown oldest first in the strip.
    let runs = store.runs(&RunFilter {
        since: None,
        until: None,
        branch: opts.branch.clone(),
        job: opts.job.clone(),
    })?;
    let mut history = Vec::new();
    for (run, r) in store.results_in(runs.iter().rev(), id.0, HISTORY)? {
        let outcome = RunOutcome::from_code(r.outcome).unwrap_or(RunOutcome::Skipped);
        let messages = if matches!(outcome, RunOutcome::Flaky | RunOutcome::Failed) {
            store.failure_messages(run.run_key, id.0)?
        } else {
            Vec::new()
        };
        history.push((run, outcome, r, messages));
    }
    b.push_str("<h2>History</h2>");
    if history.is_empty() {
        b.push_str("<p>No runs.</p>");
    } else {
        let _ = write!(
            b,
            "<p class=\"muted\">The last {} runs, oldest first: green passed, amber flaky in the run, red failed, grey skipped.</p><div class=\"strip\">",
            history.len()
        );
        for (run, outcome, _, _) in history.iter().rev() {
            let class = match outcome {
                RunOutcome::Passed => "p",
                RunOutcome::Flaky => "f",
                RunOutcome::Failed => "x",
                RunOutcome::Skipped => "s",
            };
            let tip = format!(
                "{} {} run {} #{}: {}",
                rfc3339(run.started_at),
                run.job,
                run.run_id,
                run.attempt,
                outcome.as_str()
            );
            match &run.run_url {
                Some(u) => {
                    let _ = write!(
                        b,
                        r#"<a class="{class}" href="{}" title="{}" rel="noopener"></a>"#,
                        esc(u),
                        esc(&tip)
                    );
                }
                None => {
                    let _ = write!(b, r#"<span class="{class}" title="{}"></span>"#, esc(&tip));
                }
            }
        }
        b.push_str("</div><table><thead><tr><th>Started</th><th>Job</th><th>Branch</th><th>Commit</th><th>Run</th><th>Outcome</th><th>Failure messages</th></tr></thead><tbody>");
        for (run, outcome, r, messages) in &history {
            let short: String = run.commit.chars().take(10).collect();
            let commit = match links
                .commits
                .commit_url(&run.commit, run.run_url.as_deref())
            {
                Some(u) => format!(
                    r#"<a href="{}" rel="noopener"><code>{}</code></a>"#,
                    esc(&u),
                    esc(&short)
                ),
                None => format!("<code>{}</code>", esc(&short)),
            };
            let run_cell = format!("{} #{}", esc(&run.run_id), run.attempt);
            let run_cell = match &run.run_url {
                Some(u) => format!(r#"<a href="{}" rel="noopener">{run_cell}</a>"#, esc(u)),
                None => run_cell,
            };
            let msgs: String = messages
                .iter()
                .map(|(a, ty, m)| {
                    format!(
                        "<div>attempt {a}: <code>{}{}</code></div>",
                        ty.as_deref()
                            .map(|t| format!("{}: ", esc(t)))
                            .unwrap_or_default(),
                        esc(m.as_deref().unwrap_or(""))
                    )
                })
                .collect();
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{commit}</td><td>{run_cell}</td><td>{} ({}/{} failed)</td><td>{msgs}</td></tr>",
                esc(&rfc3339(run.started_at)),
                esc(&run.job),
                esc(&run.branch),
                esc(outcome.as_str()),
                r.failures,
                r.attempts,
            );
        }
        b.push_str("</tbody></table>");
    }
    Ok(Some((title, b)))
}

async fn login_form(axum::extract::State(state): axum::extract::State<State>) -> Response {
    if !state.auth_on() {
        // Nothing to log in to: the pages are open.
        return (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    }
    html(StatusCode::OK, page("Log in", LOGIN_FORM_BODY, false))
}

const LOGIN_FORM_BODY: &str = r#"<form class="login" method="post" action="/login"><h1>Log in</h1><p>Paste an API token with the <code>read</code> (or <code>upload</code>) scope. The browser keeps a session cookie, never the token.</p><label for="token">Token</label><input id="token" name="token" type="password" autocomplete="current-password" required autofocus><button type="submit">Log in</button></form>"#;

/// `application/x-www-form-urlencoded` value of `key`.
fn form_value(body: &[u8], key: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn behind_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

async fn login(
    axum::extract::State(state): axum::extract::State<State>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !state.auth_on() {
        return (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    }
    let token = form_value(&body, "token").unwrap_or_default();
    match state.check_token(token.trim(), Scope::Read) {
        Ok(()) => {
            let id = state.dashboard().create_session();
            let cookie = format!(
                "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
                SESSION_TTL.as_secs(),
                if state.secure_cookies() || behind_https(&headers) {
                    "; Secure"
                } else {
                    ""
                }
            );
            let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(denied) => {
            let why = match denied {
                Denied::Unauthenticated => "Unknown token.",
                Denied::Forbidden => "This token may not read.",
            };
            html(
                StatusCode::UNAUTHORIZED,
                page(
                    "Log in",
                    &format!(r#"<p class="error">{why}</p>{LOGIN_FORM_BODY}"#),
                    false,
                ),
            )
        }
    }
}

async fn logout(
    axum::extract::State(state): axum::extract::State<State>,
    headers: HeaderMap,
) -> Response {
    if let Some(id) = cookie_value(&headers, COOKIE) {
        state.dashboard().end_session(id);
    }
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/login")]).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "flakehound_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
        ),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_are_decoded() {
        assert_eq!(
            form_value(b"a=1&token=fh_ab%2Bc%3D+d", "token").as_deref(),
            Some("fh_ab+c= d")
        );
        assert_eq!(
            form_value(b"token=%zz%4", "token").as_deref(),
            Some("%zz%4")
        );
        assert_eq!(form_value(b"x=1", "token"), None);
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; flakehound_session=abc ; b=2"),
        );
        assert_eq!(cookie_value(&h, COOKIE), Some("abc"));
        assert_eq!(cookie_value(&h, "c"), None);
    }

    #[test]
    fn sessions_expire_and_end() {
        let d = Dashboard::default();
        let id = d.create_session();
        assert_eq!(id.len(), 64);
        assert!(d.valid_session(&id));
        assert!(!d.valid_session("nope"));
        d.end_session(&id);
        assert!(!d.valid_session(&id));
        assert_ne!(d.create_session(), d.create_session());
    }
}
