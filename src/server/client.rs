//! The upload client: pack report files into one gzip'd tar and post it, retrying with
//! exponential backoff and jitter on 429, 5xx and connection errors.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use rand::Rng;

use crate::ingest::{report_files, Rejection, Summary};

/// Report files packed for one upload.
pub struct Packed {
    /// A gzip'd tar.
    pub body: Vec<u8>,
    /// Entry names, in the order packed.
    pub names: Vec<String>,
    /// Paths that could not be read (printed like `ingest` prints them).
    pub rejected: Vec<Rejection>,
}

impl Packed {
    /// Count the files that could not be read here into the server's summary.
    pub fn add_local(&self, summary: &mut Summary) {
        let rejected = self.rejected.len() as u64;
        summary.rejected += rejected;
        summary.files += rejected;
    }
}

/// The name a file gets inside the tar: its path as given, made relative and without
/// `..`, so the server accepts it and the stored path reads like the one given locally.
fn entry_name(path: &Path) -> String {
    let parts: Vec<String> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    if parts.is_empty() {
        "report.xml".into()
    } else {
        parts.join("/")
    }
}

/// Pack the report files under `paths` (files, or folders searched like `ingest` does).
pub fn pack(paths: &[PathBuf]) -> std::io::Result<Packed> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(5));
    let mut tar = tar::Builder::new(gz);
    let mut names: Vec<String> = Vec::new();
    let mut rejected = Vec::new();
    let cannot_read = |p: &Path, e: std::io::Error| Rejection {
        path: p.display().to_string(),
        line: 0,
        column: 0,
        reason: format!("cannot read: {e}"),
    };
    // Every file found is sent: the server skips other tools' XML and TestNG's copies
    // as `ingest` does, from the same full parse (a quick look here could not tell a
    // truncated Surefire report, whose TestNG copy is then the one to keep).
    for arg in paths {
        let files = match report_files(arg) {
            Ok(f) => f,
            Err(e) => {
                rejected.push(cannot_read(arg, e));
                continue;
            }
        };
        for file in files {
            let data = match std::fs::read(&file) {
                Ok(d) => d,
                Err(e) => {
                    rejected.push(cannot_read(&file, e));
                    continue;
                }
            };
            let mut name = entry_name(&file);
            if !name.contains('/') {
                // A report given from inside its Gradle task's folder keeps that folder:
                // it names the tests' environment (see `junit::path_environment`).
                if let Some(env) = crate::junit::local_path_environment(&file) {
                    name = format!("{env}/{name}");
                }
            }
            if names.contains(&name) {
                // Two arguments led to the same relative name: keep both.
                name = format!("{}/{name}", names.len());
            }
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, &name, data.as_slice())?;
            names.push(name);
        }
    }
    let gz = tar.into_inner()?;
    let body = gz.finish()?;
    Ok(Packed {
        body,
        names,
        rejected,
    })
}

/// How to reach the server.
#[derive(Debug, Clone)]
pub struct Options {
    /// Base URL, e.g. `https://flakes.internal:8080`.
    pub server: String,
    pub token: Option<String>,
    /// Retries after the first attempt.
    pub retries: u32,
    /// Per-attempt deadline.
    pub timeout: Duration,
    /// First backoff; doubled on each retry, capped at 30 s, with jitter.
    pub backoff: Duration,
}

/// What the server made of an upload.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// 200: stored (or already stored).
    Stored(Summary),
    /// 422 with rejected reports: the rest was stored.
    Rejected {
        summary: Option<Summary>,
        rejected: Vec<Rejection>,
        message: String,
    },
    /// 401 or 403.
    Denied { status: u16, message: String },
    /// Another 4xx: the request itself was refused (too large, malformed, unsafe tar).
    Refused { status: u16, message: String },
    /// The server could not be reached or kept failing (after the retries).
    Unavailable(String),
    /// A reply that is not the server's answer to an upload: a redirect (never followed,
    /// so the token is never sent elsewhere), an HTML login page from a proxy, JSON that is
    /// not an ingest summary. Nothing says the reports were stored.
    Unexpected(String),
}

/// The summary in a 200 reply, or why the reply is not one.
fn stored_summary(content_type: &str, text: &str) -> Result<Summary, String> {
    let shown: String = text.trim().chars().take(120).collect();
    if !content_type.to_ascii_lowercase().contains("json") {
        return Err(format!(
            "HTTP 200 with a {content_type:?} body, not the server's JSON summary (a proxy or login page?): {shown:?}"
        ));
    }
    let json: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("HTTP 200 with a body that is not JSON ({e}): {shown:?}"))?;
    let is_summary = ["files", "runs", "tests", "rejected", "unchanged"]
        .iter()
        .all(|k| json.get(k).is_some_and(serde_json::Value::is_u64));
    if !is_summary {
        return Err(format!(
            "HTTP 200 with JSON that is not an ingest summary: {shown:?}"
        ));
    }
    Ok(summary_from_json(&json))
}

fn num(v: &serde_json::Value, key: &str) -> u64 {
    v.get(key).and_then(serde_json::Value::as_u64).unwrap_or(0)
}

/// A summary from the server's JSON (the same fields as `ingest --json`).
pub fn summary_from_json(v: &serde_json::Value) -> Summary {
    Summary {
        files: num(v, "files"),
        runs: num(v, "runs"),
        tests: num(v, "tests"),
        attempts: num(v, "attempts"),
        passed: num(v, "passed"),
        failed: num(v, "failed"),
        skipped: num(v, "skipped"),
        flaky: num(v, "flaky"),
        rejected: num(v, "rejected"),
        unchanged: num(v, "unchanged"),
        not_junit: num(v, "not_junit"),
        duplicates: num(v, "duplicates"),
        distinct_tests: num(v, "distinct_tests"),
    }
}

fn rejections_from_json(v: &serde_json::Value) -> Vec<Rejection> {
    v.get("rejected")
        .and_then(serde_json::Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|r| Rejection {
                    path: r
                        .get("path")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    line: num(r, "line"),
                    column: num(r, "column"),
                    reason: r
                        .get("reason")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn error_message(status: u16, body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let text = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| body.trim().chars().take(300).collect());
    if text.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {text}")
    }
}

/// Seconds from a `Retry-After` header (the delta form; dates are ignored).
fn retry_after(response: &ureq::Response) -> Option<Duration> {
    response
        .header("Retry-After")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.min(120)))
}

/// The wait before retry number `n` (0-based): exponential with "equal jitter", at least
/// what the server asked for.
pub fn backoff(base: Duration, n: u32, server_asked: Option<Duration>) -> Duration {
    let exp = base
        .saturating_mul(1u32 << n.min(16))
        .min(Duration::from_secs(30));
    let half = exp / 2;
    let jitter = rand::thread_rng().gen_range(0..=half.as_millis() as u64);
    let wait = half + Duration::from_millis(jitter);
    match server_asked {
        Some(asked) if asked > wait => asked + Duration::from_millis(jitter / 4),
        _ => wait,
    }
}

/// The HTTP client of `upload` and `upload --gate`. One agent keeps its connections
/// open between requests: pass the same one to [`upload_with`] for many uploads.
pub fn agent(options: &Options) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(10).min(options.timeout))
        .timeout(options.timeout)
        // A redirect could carry the token to another host: never followed.
        .redirects(0)
        .build()
}

/// A POST of a packed body to `url` with the token and the run metadata as query.
pub(super) fn post(
    agent: &ureq::Agent,
    url: &str,
    options: &Options,
    query: &[(String, String)],
) -> ureq::Request {
    let mut request = agent.post(url).set("Content-Type", "application/gzip").set(
        "User-Agent",
        concat!("flakehound/", env!("CARGO_PKG_VERSION")),
    );
    if let Some(t) = &options.token {
        request = request.set("Authorization", &format!("Bearer {t}"));
    }
    for (k, v) in query {
        request = request.query(k, v);
    }
    request
}

/// Post a packed body, retrying as [`Options`] says. `query` is the run metadata.
pub fn upload(options: &Options, query: &[(String, String)], body: &[u8]) -> Outcome {
    upload_with(&agent(options), options, query, body)
}

/// [`upload`] through `agent` (from [`agent`]), whose open connection is reused.
pub fn upload_with(
    agent: &ureq::Agent,
    options: &Options,
    query: &[(String, String)],
    body: &[u8],
) -> Outcome {
    let url = format!("{}/api/v1/uploads", options.server.trim_end_matches('/'));
    let mut last_error = String::new();
    for attempt in 0..=options.retries {
        let asked = match post(agent, &url, options, query).send_bytes(body) {
            Ok(response) => {
                let status = response.status();
                if !(200..300).contains(&status) {
                    let to = response.header("Location").unwrap_or("nowhere").to_string();
                    return Outcome::Unexpected(format!(
                        "HTTP {status}: the server redirects to {to:?}; redirects are not followed (check --server)"
                    ));
                }
                let content_type = response.content_type().to_string();
                let text = match response.into_string() {
                    Ok(t) => t,
                    Err(e) => {
                        return Outcome::Unexpected(format!(
                            "HTTP {status}: cannot read the reply: {e}"
                        ))
                    }
                };
                return match stored_summary(&content_type, &text) {
                    Ok(summary) => Outcome::Stored(summary),
                    Err(m) => Outcome::Unexpected(m),
                };
            }
            Err(ureq::Error::Status(status, response)) => {
                let asked = retry_after(&response);
                let text = response.into_string().unwrap_or_default();
                match status {
                    408 | 429 | 500..=599 => {
                        last_error = error_message(status, &text);
                        asked
                    }
                    401 | 403 => {
                        return Outcome::Denied {
                            status,
                            message: error_message(status, &text),
                        }
                    }
                    422 => {
                        let json: serde_json::Value =
                            serde_json::from_str(&text).unwrap_or_default();
                        let rejected = rejections_from_json(&json);
                        if rejected.is_empty() {
                            return Outcome::Refused {
                                status,
                                message: error_message(status, &text),
                            };
                        }
                        return Outcome::Rejected {
                            summary: json.get("summary").map(summary_from_json),
                            rejected,
                            message: error_message(status, &text),
                        };
                    }
                    _ => {
                        return Outcome::Refused {
                            status,
                            message: error_message(status, &text),
                        }
                    }
                }
            }
            Err(ureq::Error::Transport(t)) => {
                last_error = t.to_string();
                None
            }
        };
        if attempt < options.retries {
            let wait = backoff(options.backoff, attempt, asked);
            tracing::warn!(
                error = %last_error,
                retry_in_ms = wait.as_millis() as u64,
                "upload failed; retrying"
            );
            std::thread::sleep(wait);
        }
    }
    Outcome::Unavailable(format!(
        "{last_error} (after {} attempt{})",
        options.retries + 1,
        if options.retries == 0 { "" } else { "s" }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_are_relative() {
        assert_eq!(
            entry_name(Path::new("/tmp/r/TEST-a.xml")),
            "tmp/r/TEST-a.xml"
        );
        assert_eq!(entry_name(Path::new("../r/./a.xml")), "r/a.xml");
        assert_eq!(entry_name(Path::new("a.xml")), "a.xml");
    }

    #[test]
    fn only_a_json_summary_counts_as_stored() {
        let ok = r#"{"files":1,"runs":1,"tests":3,"attempts":3,"passed":3,"failed":0,"skipped":0,"flaky":0,"rejected":0,"unchanged":0,"distinct_tests":3}"#;
        assert_eq!(stored_summary("application/json", ok).unwrap().tests, 3);
        let html = "<html><body>Sign in</body></html>";
        assert!(stored_summary("text/html", html)
            .unwrap_err()
            .contains("login"));
        assert!(stored_summary("application/json", html)
            .unwrap_err()
            .contains("not JSON"));
        assert!(stored_summary("application/json", r#"{"ok":true}"#)
            .unwrap_err()
            .contains("not an ingest summary"));
    }

    #[test]
    fn backoff_grows_and_honours_retry_after() {
        let base = Duration::from_millis(100);
        for n in 0..5 {
            let w = backoff(base, n, None);
            let full = base * (1 << n);
            assert!(w >= full / 2 && w <= full, "{n}: {w:?}");
        }
        assert!(backoff(base, 0, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
        assert!(backoff(base, 30, None) <= Duration::from_secs(30));
    }
}
