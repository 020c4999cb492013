//! Quarantine: which flaky tests to skip, for how long, and in the syntax each runner takes.
//!
//! # Who is quarantined
//! A **candidate** is a test whose status is `flaky` in its job (never `broken`, `suspect`
//! or `fixed`) and whose model estimate of retries saved per day is at least
//! [`QuarantineOptions::min_retries_per_day`] (default 0.1: one job re-run every ten days).
//! Candidates are ranked by retries/day (then CI minutes/day, flake rate, name) and capped
//! at [`QuarantineOptions::max`] (default 50) quarantined tests in all.
//!
//! # State
//! The `quarantine` table holds one row per quarantine period of a (test, job) and
//! `quarantine_event` what changed. Every time is the scorer's `as_of` (the newest run in
//! the window), never the wall clock, so applying the same database twice is a no-op.
//! [`apply`] takes the scored window and, for each job in it:
//! - **releases** an active entry when its status is `fixed` (reason `fixed`), else when
//!   `as_of > until` (reason `expired`), else when it is no longer flaky in the window:
//!   suspect, broken, stable or gone (reason `no longer flaky`);
//! - **releases** an active Go parent test (`TestX`) once a flaky subtest of it
//!   (`TestX/case`) is active in its place (reason [`RELEASE_SUBTEST`]); until then, with the
//!   quarantine full, the parent keeps its place and keeps skipping what flakes;
//! - **renews** an active entry still flaky whose newest flake is newer than the one seen
//!   when it was added or last renewed (it still flakes where it runs): `until` moves to
//!   `as_of + expire_after`;
//! - **adds** candidates not yet quarantined, with `until = as_of + expire_after`, while
//!   fewer than `max` are active. A test released before is added again only once it has
//!   flaked after its release: a quarantined test does not run, so its window keeps the old
//!   evidence, and expiry is how it gets to prove itself again;
//! - keeps the rest unchanged.
//!
//! # Without `--apply`
//! [`plan`] computes the same changes without writing them. Its entries — what
//! `flakehound quarantine` prints — are the quarantine **as it would be after applying**:
//! the stored active entries that would be kept or renewed (state `active`) merged with the
//! candidates that would be added (state `new`), highest retries/day first. Entries
//! `apply` would release are left out; the plan's events say why.

mod format;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::error::Result;
use crate::model::TestIdentity;
use crate::score::{rfc3339, Scored, Status, TestScore};
use crate::store::{QuarantineChange, QuarantineEventRow, QuarantineRow, Store};

pub use format::{
    go_skip_pattern, gradle_pattern, jest_escape, nextest_escape, pytest_node_id, render,
    shell_quote, surefire_pattern, QuarantineFormat,
};

/// The knobs of `flakehound quarantine`; each is a CLI flag with this default.
#[derive(Debug, Clone)]
pub struct QuarantineOptions {
    /// Candidates need at least this many model retries/day saved (default 0.1).
    pub min_retries_per_day: f64,
    /// At most this many active entries (default 50).
    pub max: usize,
    /// A new or renewed entry expires this long after `as_of` (default 14 days).
    pub expire_after_s: i64,
    /// Only this job (default: every job in the scored window).
    pub job: Option<String>,
}

impl Default for QuarantineOptions {
    fn default() -> Self {
        QuarantineOptions {
            min_retries_per_day: 0.1,
            max: 50,
            expire_after_s: 14 * 86_400,
            job: None,
        }
    }
}

/// One quarantined test in one job: the record behind every output format.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuarantineEntry {
    pub test_id: String,
    pub job: String,
    pub classname: String,
    pub name: String,
    pub file: Option<String>,
    pub reason: String,
    /// When it was quarantined (RFC 3339).
    pub since: String,
    /// When it expires (RFC 3339).
    pub until: String,
    pub retries_per_day: f64,
    pub flake_rate: f64,
    /// `active` (stored) or `new` (a candidate that `--apply` would add).
    pub state: String,
}

/// What happened to a quarantine entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QuarantineAction {
    Added,
    Renewed,
    Released,
}

impl QuarantineAction {
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineAction::Added => "added",
            QuarantineAction::Renewed => "renewed",
            QuarantineAction::Released => "released",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "added" => QuarantineAction::Added,
            "renewed" => QuarantineAction::Renewed,
            "released" => QuarantineAction::Released,
            _ => return None,
        })
    }
}

/// One change of the quarantine. `reason` is, for a release, `fixed`, `expired` or
/// `no longer flaky`; for an add or renewal, the scorer's reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuarantineEvent {
    /// The scorer's as_of when it happened (RFC 3339).
    pub at: String,
    pub action: QuarantineAction,
    pub test_id: String,
    pub job: String,
    pub classname: String,
    pub name: String,
    pub reason: String,
    /// The expiry after the change (none for a release).
    pub until: Option<String>,
}

/// The outcome of [`plan`]: the quarantine after the changes, and the changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuarantinePlan {
    pub as_of: String,
    pub entries: Vec<QuarantineEntry>,
    pub events: Vec<QuarantineEvent>,
    #[serde(skip)]
    changes: Vec<QuarantineChange>,
}

/// Release reasons, as stored.
pub const RELEASE_FIXED: &str = "fixed";
pub const RELEASE_EXPIRED: &str = "expired";
pub const RELEASE_NOT_FLAKY: &str = "no longer flaky";
/// A Go parent test released because its flaky subtest is quarantined instead: skipping
/// the parent skipped every subtest.
pub const RELEASE_SUBTEST: &str = "its flaky subtest is quarantined instead";

fn parse_time(s: &str) -> Result<i64> {
    match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(d) => Ok(d.timestamp()),
        Err(e) => {
            // A time out of RFC 3339's years ("" or "+57974-…": a run stored with a start
            // in milliseconds by an older version): plan as of now rather than fail every
            // read.
            tracing::warn!(time = s, error = %e, "the scores' as-of time is out of range (runs stored with odd start times?); using the current time");
            Ok(chrono::Utc::now().timestamp())
        }
    }
}

/// An active entry of a test still flaky, kept: renewed (with its change) when its newest
/// flake is newer than the one seen when it was added or last renewed.
fn kept(
    row: QuarantineRow,
    s: &TestScore,
    as_of: i64,
    until: i64,
) -> Result<(QuarantineRow, Option<QuarantineChange>)> {
    let newest = s.last_flake_at.as_deref().map(parse_time).transpose()?;
    let mut row = row;
    if s.status == Status::Flaky {
        // The list shows (and ranks by) what the test costs now; the stored row keeps what it
        // cost when it was added or last renewed. A silent test keeps its last known figures.
        row.retries_per_day = s.retries_per_day;
        row.flake_rate = s.flake_rate;
    }
    if newest.is_none() || newest <= row.last_flake_at {
        return Ok((row, None));
    }
    let mut r = row;
    r.until = until;
    r.reason = s.reason.clone();
    r.retries_per_day = s.retries_per_day;
    r.flake_rate = s.flake_rate;
    r.last_flake_at = newest;
    let reason = format!("flaked again: {}", s.reason);
    let renewed = change(
        r.clone(),
        as_of,
        QuarantineAction::Renewed,
        &reason,
        Some(until),
    );
    Ok((r, Some(renewed)))
}

fn test_key(t: &TestScore) -> i64 {
    u64::from_str_radix(&t.test_id, 16).unwrap_or(0) as i64
}

/// Flaky tests above the threshold, highest impact first (the scorer's order), uncapped.
pub fn candidates<'a>(scored: &'a Scored, opts: &QuarantineOptions) -> Vec<&'a TestScore> {
    let flaky: Vec<&TestScore> = scored
        .tests
        .iter()
        .filter(|t| t.status == Status::Flaky)
        .filter(|t| t.retries_per_day >= opts.min_retries_per_day)
        .filter(|t| opts.job.as_ref().is_none_or(|j| &t.job == j))
        .collect();
    // Skipping a Go parent (`-skip '^TestX$'`) skips every one of its subtests: its flaky
    // subtests are quarantined instead; the parent once it flakes with none left to blame.
    crate::score::without_go_parents(flaky)
}

/// Compute what [`apply`] would change, without writing. See the module docs.
pub fn plan(store: &Store, scored: &Scored, opts: &QuarantineOptions) -> Result<QuarantinePlan> {
    let as_of = parse_time(&scored.as_of)?;
    let until = as_of + opts.expire_after_s;
    let rows = store.quarantine_rows()?;
    let in_scope = |job: &str| {
        opts.job.as_ref().is_none_or(|j| j == job) && scored.jobs.iter().any(|s| s.job == job)
    };
    let scores: HashMap<(i64, &str), &TestScore> = scored
        .tests
        .iter()
        .map(|t| ((test_key(t), t.job.as_str()), t))
        .collect();
    let cands = candidates(scored, opts);

    let mut changes: Vec<QuarantineChange> = Vec::new();
    // Active after the changes, by key, with its state label.
    let mut active: BTreeMap<(i64, String), (QuarantineRow, &'static str)> = BTreeMap::new();
    // Newest release time per key, for re-adds.
    let mut released: HashMap<(i64, String), i64> = HashMap::new();

    for row in rows {
        let key = (row.test_id, row.job.clone());
        if let Some(at) = row.released_at {
            let e = released.entry(key).or_insert(at);
            *e = (*e).max(at);
            continue;
        }
        if !in_scope(&row.job) {
            active.insert(key, (row, "active"));
            continue;
        }
        let score = scores.get(&(row.test_id, row.job.as_str())).copied();
        let release = match score.map(|s| s.status) {
            Some(Status::Fixed) => Some(RELEASE_FIXED),
            _ if as_of > row.until => Some(RELEASE_EXPIRED),
            // Silent since it was quarantined: no evidence of anything, so it stays.
            Some(Status::Flaky | Status::Quarantined) => None,
            _ => Some(RELEASE_NOT_FLAKY),
        };
        if let Some(reason) = release {
            let mut r = row.clone();
            r.released_at = Some(as_of);
            r.release_reason = Some(reason.to_string());
            released.insert(key, as_of);
            changes.push(change(r, as_of, QuarantineAction::Released, reason, None));
            continue;
        }
        let s = score.expect("flaky entries have a score");
        let (r, renewed) = kept(row, s, as_of, until)?;
        changes.extend(renewed);
        active.insert(key, (r, "active"));
    }

    // Whether a Go subtest of (job, classname, name) is active: skipping the test would
    // skip that subtest and every other one of it.
    let has_active_subtest = |active: &BTreeMap<(i64, String), (QuarantineRow, &str)>,
                              job: &str,
                              class: &str,
                              name: &str| {
        active.values().any(|(r, _)| {
            r.job == job && r.classname == class && crate::score::is_go_subtest_of(&r.name, name)
        })
    };
    // Add candidates while there is room; then release each Go parent whose subtest is
    // active in its place (until then, with the quarantine full, the parent keeps its place
    // and keeps skipping what flakes), and fill the places it leaves.
    loop {
        for &t in &cands {
            if active.len() >= opts.max {
                break;
            }
            let id = test_key(t);
            let key = (id, t.job.clone());
            if active.contains_key(&key)
                || has_active_subtest(&active, &t.job, &t.classname, &t.name)
            {
                continue;
            }
            let newest = t.last_flake_at.as_deref().map(parse_time).transpose()?;
            if let Some(&rel) = released.get(&key) {
                if newest.is_none_or(|n| n <= rel) {
                    continue; // no flake since its release
                }
            }
            let row = QuarantineRow {
                quarantine_id: 0,
                test_id: id,
                job: t.job.clone(),
                classname: t.classname.clone(),
                name: t.name.clone(),
                file: t.file.clone(),
                since: as_of,
                until,
                reason: t.reason.clone(),
                retries_per_day: t.retries_per_day,
                flake_rate: t.flake_rate,
                last_flake_at: newest,
                released_at: None,
                release_reason: None,
            };
            changes.push(change(
                row.clone(),
                as_of,
                QuarantineAction::Added,
                &t.reason,
                Some(until),
            ));
            active.insert(key, (row, "new"));
        }
        let parents: Vec<(i64, String)> = active
            .iter()
            .filter(|((_, job), (r, _))| {
                in_scope(job) && has_active_subtest(&active, job, &r.classname, &r.name)
            })
            .map(|(key, _)| key.clone())
            .collect();
        if parents.is_empty() {
            break;
        }
        for key in parents {
            let (row, _) = active.remove(&key).expect("listed as active");
            // Its renewal (or its adding) in this plan is moot.
            changes.retain(|c| !(c.row.test_id == key.0 && c.row.job == key.1));
            released.insert(key, as_of);
            if row.quarantine_id == 0 {
                continue; // added above: never stored
            }
            let mut r = row;
            r.released_at = Some(as_of);
            r.release_reason = Some(RELEASE_SUBTEST.to_string());
            changes.push(change(
                r,
                as_of,
                QuarantineAction::Released,
                RELEASE_SUBTEST,
                None,
            ));
        }
    }

    let mut entries: Vec<QuarantineEntry> = active
        .into_values()
        .map(|(r, state)| QuarantineEntry {
            test_id: TestIdentity(r.test_id).hex(),
            job: r.job,
            classname: r.classname,
            name: r.name,
            file: r.file,
            reason: r.reason,
            since: rfc3339(r.since),
            until: rfc3339(r.until),
            retries_per_day: r.retries_per_day,
            flake_rate: r.flake_rate,
            state: state.to_string(),
        })
        .collect();
    sort_entries(&mut entries);
    let events = changes.iter().map(|c| event_of(&c.event)).collect();
    Ok(QuarantinePlan {
        as_of: scored.as_of.clone(),
        entries,
        events,
        changes,
    })
}

/// Highest retries/day first; ties by name and job, so the output is stable.
fn sort_entries(entries: &mut [QuarantineEntry]) {
    entries.sort_by(|a, b| {
        b.retries_per_day
            .total_cmp(&a.retries_per_day)
            .then_with(|| a.classname.cmp(&b.classname))
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.job.cmp(&b.job))
            .then_with(|| a.test_id.cmp(&b.test_id))
    });
}

fn change(
    row: QuarantineRow,
    at: i64,
    action: QuarantineAction,
    reason: &str,
    until: Option<i64>,
) -> QuarantineChange {
    QuarantineChange {
        event: QuarantineEventRow {
            at,
            test_id: row.test_id,
            job: row.job.clone(),
            classname: row.classname.clone(),
            name: row.name.clone(),
            action: action.as_str().to_string(),
            reason: reason.to_string(),
            until,
        },
        row,
    }
}

fn event_of(e: &QuarantineEventRow) -> QuarantineEvent {
    QuarantineEvent {
        at: rfc3339(e.at),
        action: QuarantineAction::parse(&e.action).unwrap_or(QuarantineAction::Released),
        test_id: TestIdentity(e.test_id).hex(),
        job: e.job.clone(),
        classname: e.classname.clone(),
        name: e.name.clone(),
        reason: e.reason.clone(),
        until: e.until.map(rfc3339),
    }
}

/// Update the stored quarantine from a scored window (see the module docs) and return
/// what changed. Applying the same scores again changes nothing.
pub fn apply(
    store: &mut Store,
    scored: &Scored,
    opts: &QuarantineOptions,
) -> Result<Vec<QuarantineEvent>> {
    let plan = plan(store, scored, opts)?;
    store.apply_quarantine_changes(&plan.changes)?;
    Ok(plan.events)
}

/// The active stored entries (after the last apply), highest retries/day first.
pub fn active(store: &Store) -> Result<Vec<QuarantineEntry>> {
    let mut entries: Vec<QuarantineEntry> = store
        .quarantine_rows()?
        .into_iter()
        .filter(|r| r.released_at.is_none())
        .map(|r| QuarantineEntry {
            test_id: TestIdentity(r.test_id).hex(),
            job: r.job,
            classname: r.classname,
            name: r.name,
            file: r.file,
            reason: r.reason,
            since: rfc3339(r.since),
            until: rfc3339(r.until),
            retries_per_day: r.retries_per_day,
            flake_rate: r.flake_rate,
            state: "active".to_string(),
        })
        .collect();
    sort_entries(&mut entries);
    Ok(entries)
}

/// Every recorded change, in the order it happened.
pub fn history(store: &Store) -> Result<Vec<QuarantineEvent>> {
    Ok(store.quarantine_events()?.iter().map(event_of).collect())
}

/// `--history` as text: one event a line, `<at> <action> <job> <readable name>: <reason>`.
pub fn render_history(events: &[QuarantineEvent]) -> String {
    let mut out = String::new();
    for e in events {
        out.push_str(&format!(
            "{} {:<8} {} {}: {}{}\n",
            e.at,
            e.action.as_str(),
            e.job,
            crate::model::readable_name(&e.classname, &e.name),
            e.reason,
            e.until
                .as_ref()
                .map(|u| format!(" (until {u})"))
                .unwrap_or_default()
        ));
    }
    out
}
