//! The query outputs shared by the CLI and the HTTP server: one function renders any
//! of `flaky`, `backlog`, `report` and `quarantine` from query parameters, so that
//! `GET /api/v1/flaky?format=json` and `flakehound flaky --format json` print the same bytes.

use std::path::Path;

/// Which output to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Flaky,
    Backlog,
    Report,
    Quarantine,
}

/// A rendered output and its media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// Why a query could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A bad parameter: HTTP 400.
    #[error("{0}")]
    BadRequest(String),
    /// Anything else: HTTP 500.
    #[error(transparent)]
    Internal(#[from] crate::error::Error),
}

/// Render an endpoint from query parameters named like the CLI flags without dashes
/// (`format`, `window`, `branch`, `job`, `as_of`, `p1`, `min_retries_per_day`, …).
pub fn render(
    db: &Path,
    endpoint: Endpoint,
    params: &[(String, String)],
) -> Result<Rendered, ApiError> {
    let _ = (db, endpoint, params);
    Err(ApiError::BadRequest("not implemented yet".into()))
}
