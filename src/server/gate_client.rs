//! The client side of `POST /api/v1/gate` (`flakehound upload --gate`): post a run's
//! packed reports, retrying like an upload, and read the verdict.

use std::time::Duration;

use super::client::{backoff, summary_from_json, Options};
use crate::gate::Verdict;
use crate::ingest::Summary;

/// What the server made of a gate request.
#[derive(Debug, Clone)]
pub enum GateOutcome {
    /// 200: the verdict, and the ingest summary when the run was stored.
    Judged(Box<Verdict>, Option<Summary>),
    /// The request was refused (401/403 or another 4xx), with the server's message.
    Refused(String),
    /// The server could not be reached or kept failing (after the retries).
    Unavailable(String),
}

fn message(status: u16, body: &str) -> String {
    let text = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| body.trim().chars().take(300).collect());
    format!("HTTP {status}: {text}")
}

/// Post the body to `/api/v1/gate` with the run metadata (and `ingest`, `window`) as query.
pub fn gate(options: &Options, query: &[(String, String)], body: &[u8]) -> GateOutcome {
    // The upload's client: same timeouts, and redirects never followed (the token stays).
    let agent = super::client::agent(options);
    let url = format!("{}/api/v1/gate", options.server.trim_end_matches('/'));
    let mut last_error = String::new();
    for attempt in 0..=options.retries {
        let asked = match super::client::post(&agent, &url, options, query).send_bytes(body) {
            Ok(response) => {
                let text = response.into_string().unwrap_or_default();
                let json: serde_json::Value = match serde_json::from_str(&text) {
                    Ok(j) => j,
                    Err(e) => return GateOutcome::Unavailable(format!("unreadable answer: {e}")),
                };
                let summary = json
                    .get("summary")
                    .filter(|s| !s.is_null())
                    .map(summary_from_json);
                return match serde_json::from_value::<Verdict>(json) {
                    Ok(v) => GateOutcome::Judged(Box::new(v), summary),
                    Err(e) => GateOutcome::Unavailable(format!("unreadable verdict: {e}")),
                };
            }
            Err(ureq::Error::Status(status, response)) => {
                let asked = response
                    .header("Retry-After")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s.min(120)));
                let text = response.into_string().unwrap_or_default();
                match status {
                    408 | 429 | 500..=599 => {
                        last_error = message(status, &text);
                        asked
                    }
                    _ => return GateOutcome::Refused(message(status, &text)),
                }
            }
            Err(ureq::Error::Transport(t)) => {
                last_error = t.to_string();
                None
            }
        };
        if attempt < options.retries {
            let wait = backoff(options.backoff, attempt, asked);
            tracing::warn!(error = %last_error, retry_in_ms = wait.as_millis() as u64, "gate request failed; retrying");
            std::thread::sleep(wait);
        }
    }
    GateOutcome::Unavailable(format!(
        "{last_error} (after {} attempt(s))",
        options.retries + 1
    ))
}
