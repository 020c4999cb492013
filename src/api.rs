//! The query outputs shared by the CLI and the HTTP server: one function renders any
//! of `flaky`, `backlog`, `report` and `quarantine` from query parameters, so that
//! `GET /api/v1/flaky?format=json` and `flakehound flaky --format json` print the same bytes.

use std::collections::HashMap;
use std::path::Path;

use crate::backlog;
use crate::links::Links;
use crate::score::{self, ScoreOptions, Scored, TestScore};
use crate::store::Store;

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
    /// A bad parameter: HTTP 400, exit code 2.
    #[error("{0}")]
    BadRequest(String),
    /// Anything else: HTTP 500, exit code 2.
    #[error(transparent)]
    Internal(#[from] crate::error::Error),
}

/// Parse a duration like `30d`, `12h`, `2w`, `90m` or plain seconds (see
/// [`crate::timefmt::parse_duration`]).
pub fn parse_duration(text: &str) -> Result<i64, String> {
    crate::timefmt::parse_duration(text)
}

/// Parse a share such as an SLO: `1%` or `0.01`, between 0 and 1 (100%).
pub fn parse_share(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let value = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| {
        format!("{text:?} is not a share: give a percentage like 1% or a fraction like 0.01")
    })?;
    if !value.is_finite() || !(0.0..=1.0).contains(&value) {
        return Err(format!(
            "{text:?} is out of range: a share is between 0 and 1 (0% and 100%); for one percent write 1% or 0.01"
        ));
    }
    Ok(value)
}

/// Refuse a `job` or `branch` filter that names nothing in the database, saying which exist
/// (a typo would otherwise answer an empty list that reads as "no flaky tests").
pub fn check_filters(
    store: &Store,
    job: Option<&str>,
    branch: Option<&str>,
) -> Result<(), ApiError> {
    for (what, value, known) in [
        ("job", job, job.map(|_| store.jobs()).transpose()?),
        (
            "branch",
            branch,
            branch.map(|_| store.branches()).transpose()?,
        ),
    ] {
        let (Some(value), Some(known)) = (value, known) else {
            continue;
        };
        if known.iter().any(|k| k == value) {
            continue;
        }
        let listed = if known.is_empty() {
            "the database has no runs yet".to_string()
        } else {
            let shown: Vec<String> = known.iter().take(30).map(|k| format!("{k:?}")).collect();
            let plural = if what.ends_with("ch") { "es" } else { "s" };
            format!(
                "{what}{plural} in the database: {}{}",
                shown.join(", "),
                if known.len() > 30 { ", …" } else { "" }
            )
        };
        return Err(ApiError::BadRequest(format!(
            "no runs of {what} {value:?}; {listed}"
        )));
    }
    Ok(())
}

/// Query parameters by name; a repeated name keeps the last value (like a repeated flag).
pub struct Params<'a> {
    map: HashMap<&'a str, &'a str>,
    /// The names the endpoint has looked up, for [`Params::check_unknown`].
    read: std::cell::RefCell<std::collections::BTreeSet<String>>,
}

impl<'a> Params<'a> {
    pub fn new(params: &'a [(String, String)]) -> Self {
        Params {
            map: params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            read: Default::default(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.read.borrow_mut().insert(key.to_string());
        self.map.get(key).copied().filter(|v| !v.is_empty())
    }

    /// Refuse a parameter the endpoint did not read, once it has read all of its own: a
    /// typo (`windw=7d`) would otherwise answer for the default window as if it were asked.
    pub fn check_unknown(&self) -> Result<(), ApiError> {
        let read = self.read.borrow();
        let mut unknown: Vec<&str> = self
            .map
            .keys()
            .copied()
            .filter(|k| !read.contains(*k))
            .collect();
        unknown.sort_unstable();
        match unknown.first() {
            None => Ok(()),
            Some(k) => Err(ApiError::BadRequest(format!(
                "unknown parameter {k:?}: this endpoint reads {}",
                read.iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    pub fn parse<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, ApiError> {
        self.get(key)
            .map(|v| {
                v.parse()
                    .map_err(|_| ApiError::BadRequest(format!("bad value {v:?} for {key}")))
            })
            .transpose()
    }

    /// A fraction strictly between 0 and 1 (`slo`, `fixed_alpha`): NaN is refused.
    pub fn fraction(&self, key: &str) -> Result<Option<f64>, ApiError> {
        self.get(key)
            .map(|v| {
                crate::timefmt::parse_fraction(v)
                    .map_err(|e| ApiError::BadRequest(format!("{key}: {e}")))
            })
            .transpose()
    }

    pub fn duration(&self, key: &str) -> Result<Option<i64>, ApiError> {
        self.get(key)
            .map(|v| parse_duration(v).map_err(|e| ApiError::BadRequest(format!("{key}: {e}"))))
            .transpose()
    }

    pub fn share(&self, key: &str) -> Result<Option<f64>, ApiError> {
        self.get(key)
            .map(|v| parse_share(v).map_err(|e| ApiError::BadRequest(format!("{key}: {e}"))))
            .transpose()
    }

    pub fn time(&self, key: &str) -> Result<Option<i64>, ApiError> {
        self.get(key)
            .map(|v| {
                crate::ci_env::parse_timestamp(v)
                    .map_err(|e| ApiError::BadRequest(format!("{key}: {e}")))
            })
            .transpose()
    }
}

/// The scorer's options from parameters (`window`, `branch`, `job`, `as_of`, thresholds).
pub fn score_options(p: &Params<'_>, default_window_s: i64) -> Result<ScoreOptions, ApiError> {
    let defaults = ScoreOptions::default();
    Ok(ScoreOptions {
        as_of: p.time("as_of")?,
        window_s: p.duration("window")?.unwrap_or(default_window_s),
        branch: p.get("branch").map(String::from),
        job: p.get("job").map(String::from),
        min_flaky_commits: p
            .parse("min_flaky_commits")?
            .unwrap_or(defaults.min_flaky_commits),
        min_isolated_failures: p
            .parse("min_isolated_failures")?
            .unwrap_or(defaults.min_isolated_failures),
        fixed_alpha: p.fraction("fixed_alpha")?.unwrap_or(defaults.fixed_alpha),
        slo: p.share("slo")?.unwrap_or(defaults.slo),
        raw_scan: defaults.raw_scan,
        lone_posterior: p
            .fraction("lone_posterior")?
            .unwrap_or(defaults.lone_posterior),
        lone_alpha: p.fraction("lone_alpha")?.unwrap_or(defaults.lone_alpha),
        exclude_runs: Vec::new(),
    })
}

const JSON: &str = "application/json";
const CSV: &str = "text/csv; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";
const MARKDOWN: &str = "text/markdown; charset=utf-8";

fn format<'a>(p: &Params<'a>, default: &'a str, allowed: &[&str]) -> Result<&'a str, ApiError> {
    let f = p.get("format").unwrap_or(default);
    if allowed.contains(&f) {
        Ok(f)
    } else {
        Err(ApiError::BadRequest(format!(
            "unknown format {f:?}: expected one of {}",
            allowed.join(", ")
        )))
    }
}

/// Render an endpoint from query parameters named like the CLI flags with `_` for `-`
/// (`format`, `window`, `branch`, `job`, `as_of`, `p1`, `min_retries_per_day`, …).
pub fn render(
    db: &Path,
    endpoint: Endpoint,
    params: &[(String, String)],
) -> Result<Rendered, ApiError> {
    render_with(db, endpoint, params, &Links::default())
}

/// [`render`], with owners (CODEOWNERS) and commit links.
pub fn render_with(
    db: &Path,
    endpoint: Endpoint,
    params: &[(String, String)],
    links: &Links,
) -> Result<Rendered, ApiError> {
    let p = Params::new(params);
    match endpoint {
        Endpoint::Flaky => {
            let fmt = format(&p, "table", &["table", "json", "csv"])?;
            let opts = score_options(&p, 30 * 86_400)?;
            p.check_unknown()?;
            let store = Store::open_read_only(db)?;
            check_filters(&store, opts.job.as_deref(), opts.branch.as_deref())?;
            let scored = score::score(&store, &opts)?;
            Ok(flaky_output(&scored, fmt, links))
        }
        Endpoint::Backlog => {
            let fmt = format(&p, "csv", &["csv", "md", "json"])?;
            let opts = score_options(&p, 30 * 86_400)?;
            let defaults = backlog::Thresholds::default();
            let thresholds = backlog::Thresholds {
                p1: p.parse("p1")?.unwrap_or(defaults.p1),
                p2: p.parse("p2")?.unwrap_or(defaults.p2),
            };
            p.check_unknown()?;
            let store = Store::open_read_only(db)?;
            check_filters(&store, opts.job.as_deref(), opts.branch.as_deref())?;
            let scored = score::score(&store, &opts)?;
            let rows = backlog::rows_with(&scored, thresholds, links);
            Ok(match fmt {
                "md" => Rendered {
                    content_type: MARKDOWN,
                    body: backlog::to_markdown(&rows).into_bytes(),
                },
                "json" => json(&rows),
                _ => Rendered {
                    content_type: CSV,
                    body: backlog::to_csv(&rows),
                },
            })
        }
        Endpoint::Report => {
            let fmt = format(&p, "md", &["md", "html", "json"])?;
            let opts = report_options(&p)?;
            p.check_unknown()?;
            let store = Store::open_read_only(db)?;
            check_filters(&store, opts.job.as_deref(), opts.branch.as_deref())?;
            let report = crate::report::build_with(&store, &opts, links)?;
            Ok(match fmt {
                "html" => Rendered {
                    content_type: "text/html; charset=utf-8",
                    body: crate::report::to_html(&report).into_bytes(),
                },
                "json" => json(&report),
                _ => Rendered {
                    content_type: MARKDOWN,
                    body: crate::report::to_markdown(&report).into_bytes(),
                },
            })
        }
        Endpoint::Quarantine => {
            let fmt: crate::quarantine::QuarantineFormat = p
                .get("format")
                .unwrap_or("list")
                .parse()
                .map_err(ApiError::BadRequest)?;
            let history = p.get("history").is_some_and(|v| v == "true" || v == "1");
            let opts = quarantine_options(&p)?;
            let score_opts = score_options(&p, 30 * 86_400)?;
            p.check_unknown()?;
            let store = Store::open_read_only(db)?;
            if history {
                let events = crate::quarantine::history(&store)?;
                return Ok(if fmt == crate::quarantine::QuarantineFormat::Json {
                    json(&events)
                } else {
                    Rendered {
                        content_type: TEXT,
                        body: crate::quarantine::render_history(&events).into_bytes(),
                    }
                });
            }
            // No check_filters here: a runner asking for a job with no runs yet must get
            // the empty list (run every test), not an error that breaks its command line.
            let scored = score::score(&store, &score_opts)?;
            let plan = crate::quarantine::plan(&store, &scored, &opts)?;
            Ok(Rendered {
                content_type: if fmt == crate::quarantine::QuarantineFormat::Json {
                    JSON
                } else {
                    TEXT
                },
                body: render_quarantine(&plan.entries, fmt, links).into_bytes(),
            })
        }
    }
}

/// The report's options from parameters (`window`, `compare_window`, `as_of`, `branch`,
/// `job`, `slo`, `top`).
pub fn report_options(p: &Params<'_>) -> Result<crate::report::ReportOptions, ApiError> {
    let defaults = crate::report::ReportOptions::default();
    Ok(crate::report::ReportOptions {
        window_s: p.duration("window")?.unwrap_or(defaults.window_s),
        compare_window_s: p
            .duration("compare_window")?
            .unwrap_or(defaults.compare_window_s),
        as_of: p.time("as_of")?,
        branch: p.get("branch").map(String::from),
        job: p.get("job").map(String::from),
        slo: p.share("slo")?.unwrap_or(defaults.slo),
        top: p.parse("top")?.unwrap_or(defaults.top),
        lone_alpha: p.fraction("lone_alpha")?.unwrap_or(defaults.lone_alpha),
        lone_posterior: p
            .fraction("lone_posterior")?
            .unwrap_or(defaults.lone_posterior),
    })
}

/// The quarantine's options from parameters (`min_retries_per_day`, `max`, `expire_after`, `job`).
pub fn quarantine_options(
    p: &Params<'_>,
) -> Result<crate::quarantine::QuarantineOptions, ApiError> {
    let defaults = crate::quarantine::QuarantineOptions::default();
    Ok(crate::quarantine::QuarantineOptions {
        min_retries_per_day: p
            .parse("min_retries_per_day")?
            .unwrap_or(defaults.min_retries_per_day),
        max: p.parse("max")?.unwrap_or(defaults.max),
        expire_after_s: p
            .duration("expire_after")?
            .unwrap_or(defaults.expire_after_s),
        job: p.get("job").map(String::from),
    })
}

/// A quarantine list; the JSON format gains each entry's `owners`.
pub fn render_quarantine(
    entries: &[crate::quarantine::QuarantineEntry],
    fmt: crate::quarantine::QuarantineFormat,
    links: &Links,
) -> String {
    if fmt != crate::quarantine::QuarantineFormat::Json {
        return crate::quarantine::render(entries, fmt);
    }
    let values: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| with_owners(e, links.owners_of(&e.classname, e.file.as_deref())))
        .collect();
    let mut s = serde_json::to_string_pretty(&values).unwrap_or_else(|_| "[]".into());
    s.push('\n');
    s
}

/// A serialised object with an `owners` key added.
fn with_owners<T: serde::Serialize>(value: &T, owners: Vec<String>) -> serde_json::Value {
    let mut v = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
    if let Some(map) = v.as_object_mut() {
        map.insert("owners".into(), owners.into());
    }
    v
}

fn json<T: serde::Serialize>(value: &T) -> Rendered {
    let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
    body.push(b'\n');
    Rendered {
        content_type: JSON,
        body,
    }
}

/// Columns of `flaky --format csv` after `owners`, the JSON keys the first columns left out
/// (appended, so that scripts reading columns by position keep working).
pub const FLAKY_MORE_COLUMNS: [&str; 14] = [
    "reason",
    "broken_commits",
    "single_failures",
    "run_flake_rate",
    "run_flake_rate_low",
    "run_flake_rate_high",
    "in_run_rerun_minutes_per_day",
    "masked_share",
    "flaky_evidence",
    "flaky_posterior",
    "fix_posterior",
    "fixed_since_commit",
    "fixed_since",
    "quarantined_since",
];

/// An optional number as a CSV cell: empty when absent.
fn opt(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// The CSV and JSON columns of `flaky`, in order.
pub const FLAKY_COLUMNS: [&str; 20] = [
    "classname",
    "name",
    "file",
    "job",
    "status",
    "runs",
    "attempts",
    "failures",
    "flaky_commits",
    "flake_rate",
    "flake_rate_low",
    "flake_rate_high",
    "first_flake_at",
    "last_flake_at",
    "retries_per_day",
    "ci_minutes_per_day",
    "observed_retries",
    "job_failure_rate",
    "fingerprints",
    "test_id",
];

fn flaky_output(scored: &Scored, fmt: &str, links: &Links) -> Rendered {
    let flaky: Vec<&TestScore> = scored.flaky().collect();
    let owners = |t: &TestScore| links.owners_of(&t.classname, t.file.as_deref());
    match fmt {
        "json" => json(
            &flaky
                .iter()
                .map(|t| with_owners(t, owners(t)))
                .collect::<Vec<_>>(),
        ),
        "csv" => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let _ = w.write_record(
                FLAKY_COLUMNS
                    .iter()
                    .chain(&["owners"])
                    .chain(&FLAKY_MORE_COLUMNS),
            );
            for t in &flaky {
                let fps = t
                    .fingerprints
                    .iter()
                    .map(|f| format!("{} ({})", f.message, f.count))
                    .collect::<Vec<_>>()
                    .join("; ");
                let _ = w.write_record(
                    [
                        t.classname.clone(),
                        t.name.clone(),
                        t.file.clone().unwrap_or_default(),
                        t.job.clone(),
                        t.status.as_str().to_string(),
                        t.runs.to_string(),
                        t.attempts.to_string(),
                        t.failures.to_string(),
                        t.flaky_commits.to_string(),
                        t.flake_rate.to_string(),
                        t.flake_rate_low.to_string(),
                        t.flake_rate_high.to_string(),
                        t.first_flake_at.clone().unwrap_or_default(),
                        t.last_flake_at.clone().unwrap_or_default(),
                        t.retries_per_day.to_string(),
                        t.ci_minutes_per_day.to_string(),
                        t.observed_retries.to_string(),
                        t.job_failure_rate.to_string(),
                        fps,
                        t.test_id.clone(),
                    ]
                    .iter()
                    .map(|c| crate::escape::csv_cell(c))
                    // Owners come from the team's own CODEOWNERS, where `@team` is the
                    // norm, not from uploaded reports: kept as written.
                    .chain(std::iter::once(owners(t).join(" ")))
                    .chain(
                        [
                            t.reason.clone(),
                            t.broken_commits.to_string(),
                            t.single_failures.to_string(),
                            t.run_flake_rate.to_string(),
                            t.run_flake_rate_low.to_string(),
                            t.run_flake_rate_high.to_string(),
                            t.in_run_rerun_minutes_per_day.to_string(),
                            t.masked_share.to_string(),
                            t.flaky_evidence.unwrap_or_default().to_string(),
                            opt(t.flaky_posterior),
                            opt(t.fix_posterior),
                            t.fixed_since_commit.clone().unwrap_or_default(),
                            t.fixed_since.clone().unwrap_or_default(),
                            t.quarantined_since.clone().unwrap_or_default(),
                        ]
                        .iter()
                        .map(|c| crate::escape::csv_cell(c)),
                    ),
                );
            }
            Rendered {
                content_type: CSV,
                body: w.into_inner().unwrap_or_default(),
            }
        }
        _ => Rendered {
            content_type: TEXT,
            body: flaky_table(scored, &flaky).into_bytes(),
        },
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let keep: String = s.chars().take(max - 1).collect();
        format!("{keep}…")
    }
}

/// A table for people, within 120 columns.
fn flaky_table(scored: &Scored, flaky: &[&TestScore]) -> String {
    let mut out = String::new();
    let p = &scored.pipeline;
    out.push_str(&format!(
        "{} flaky test(s) from {} to {}; pipeline flake rate {:.2}% of job attempts (SLO {:.2}%: {}); {:.1} retries/day, {:.0} CI min/day wasted\n\n",
        flaky.len(),
        scored.since,
        scored.as_of,
        p.flake_rate * 100.0,
        p.slo * 100.0,
        if p.meets_slo { "met" } else { "missed" },
        p.wasted_retries_per_day,
        p.wasted_ci_minutes_per_day,
    ));
    if flaky.is_empty() {
        return out;
    }
    out.push_str(&format!(
        "{:<52} {:<14} {:>17} {:>6} {:>9} {:>8} {:>7}\n",
        "TEST", "JOB", "FLAKE RATE [95%]", "SHAS", "RETRY/D", "MIN/D", "OBS"
    ));
    for t in flaky {
        out.push_str(&format!(
            "{:<52} {:<14} {:>17} {:>6} {:>9.2} {:>8.1} {:>7}\n",
            cut(&t.readable(), 52),
            cut(&t.job, 14),
            format!(
                "{:.1}% [{:.1}-{:.1}]",
                t.flake_rate * 100.0,
                t.flake_rate_low * 100.0,
                t.flake_rate_high * 100.0
            ),
            t.flaky_commits,
            t.retries_per_day,
            t.ci_minutes_per_day,
            t.observed_retries,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d"), Ok(30 * 86_400));
        assert_eq!(parse_duration("12h"), Ok(12 * 3600));
        assert_eq!(parse_duration("2w"), Ok(14 * 86_400));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("90m"), Ok(90 * 60));
        assert!(parse_duration("3y").is_err());
        assert!(parse_duration("0d").is_err());
        let bare = parse_duration("30").unwrap_err();
        assert!(bare.contains("add a unit: 30d"), "{bare}");
    }

    #[test]
    fn shares() {
        use super::parse_share;
        assert_eq!(parse_share("1%"), Ok(0.01));
        assert_eq!(parse_share("0.01"), Ok(0.01));
        assert_eq!(parse_share("100%"), Ok(1.0));
        assert_eq!(parse_share("0"), Ok(0.0));
        for bad in ["1.5", "150%", "-0.1", "NaN", "inf", "one", ""] {
            assert!(parse_share(bad).is_err(), "{bad}");
        }
        assert!(parse_share("1").is_ok(), "1 is 100%, allowed");
    }
}
