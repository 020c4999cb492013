//! Flaky tests → a prioritised improvement backlog (`Priority, Item, Estimated Impact, …`).

use serde::Serialize;

use crate::score::{Scored, TestScore};

/// Priority thresholds in retries/day saved.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub p1: f64,
    pub p2: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { p1: 2.0, p2: 0.5 }
    }
}

/// One backlog row; serialised with the CSV column names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BacklogRow {
    #[serde(rename = "Priority")]
    pub priority: String,
    #[serde(rename = "Item")]
    pub item: String,
    #[serde(rename = "Estimated Impact")]
    pub estimated_impact: String,
    #[serde(rename = "Retries/day")]
    pub retries_per_day: String,
    #[serde(rename = "CI minutes/day")]
    pub ci_minutes_per_day: String,
    #[serde(rename = "Flake rate")]
    pub flake_rate: String,
    #[serde(rename = "Evidence")]
    pub evidence: String,
    #[serde(rename = "Test ID")]
    pub test_id: String,
    /// Owners from CODEOWNERS, space-separated; empty without one.
    #[serde(rename = "Owner")]
    pub owner: String,
}

impl BacklogRow {
    /// The cells in [`COLUMNS`] order.
    pub fn cells(&self) -> [&String; 9] {
        [
            &self.priority,
            &self.item,
            &self.estimated_impact,
            &self.retries_per_day,
            &self.ci_minutes_per_day,
            &self.flake_rate,
            &self.evidence,
            &self.test_id,
            &self.owner,
        ]
    }
}

pub const COLUMNS: [&str; 9] = [
    "Priority",
    "Item",
    "Estimated Impact",
    "Retries/day",
    "CI minutes/day",
    "Flake rate",
    "Evidence",
    "Test ID",
    "Owner",
];

/// `-2.1`, or `0` when the rounded saving is nothing (never `-0.0`).
fn saving(value: f64, shown: String) -> String {
    if shown.trim_start_matches(['0', '.']).is_empty() || value <= 0.0 {
        "0".to_string()
    } else {
        format!("-{shown}")
    }
}

fn minutes(m: f64) -> String {
    if m >= 10.0 {
        format!("{m:.0}")
    } else {
        format!("{m:.1}")
    }
}

pub fn row(t: &TestScore, thresholds: Thresholds) -> BacklogRow {
    let priority = if t.retries_per_day >= thresholds.p1 {
        "P1"
    } else if t.retries_per_day >= thresholds.p2 {
        "P2"
    } else {
        "P3"
    };
    let shas: Vec<String> = t
        .evidence
        .iter()
        .take(3)
        .map(|e| e.commit.chars().take(10).collect())
        .collect();
    let evidence = if t.flaky_commits > 0 {
        format!(
            "passed and failed on {} commit(s): {}{}",
            t.flaky_commits,
            shas.join(", "),
            if t.flaky_commits > 3 { ", …" } else { "" }
        )
    } else {
        t.reason.clone()
    };
    BacklogRow {
        priority: priority.to_string(),
        item: format!("Fix flaky {} ({})", t.readable(), t.job),
        estimated_impact: format!(
            "{} retries/day, {} CI min/day",
            saving(t.retries_per_day, format!("{:.1}", t.retries_per_day)),
            saving(t.ci_minutes_per_day, minutes(t.ci_minutes_per_day))
        ),
        retries_per_day: format!("{:.2}", t.retries_per_day),
        ci_minutes_per_day: format!("{:.1}", t.ci_minutes_per_day),
        flake_rate: format!(
            "{:.2}% [{:.2}–{:.2}%]",
            t.flake_rate * 100.0,
            t.flake_rate_low * 100.0,
            t.flake_rate_high * 100.0
        ),
        evidence,
        test_id: t.test_id.clone(),
        owner: String::new(),
    }
}

/// One row per flaky test (and job), highest impact first.
pub fn rows(scored: &Scored, thresholds: Thresholds) -> Vec<BacklogRow> {
    rows_with(scored, thresholds, &crate::links::Links::default())
}

/// [`rows`], with each row's owners.
pub fn rows_with(
    scored: &Scored,
    thresholds: Thresholds,
    links: &crate::links::Links,
) -> Vec<BacklogRow> {
    // A Go parent with a flaky subtest is that subtest's item, not one more.
    crate::score::without_go_parents(scored.flaky().collect())
        .into_iter()
        .map(|t| BacklogRow {
            owner: links.owners_of(&t.classname, t.file.as_deref()).join(" "),
            ..row(t, thresholds)
        })
        .collect()
}

/// RFC 4180 CSV with a header row.
pub fn to_csv(rows: &[BacklogRow]) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = w.write_record(COLUMNS);
    for r in rows {
        // Item and Evidence carry names from uploaded reports; the other cells are ours
        // (numbers, and an impact we word ourselves) and stay as they are.
        let mut cells: Vec<String> = r.cells().iter().map(|c| c.to_string()).collect();
        for i in [1, 6] {
            cells[i] = crate::escape::csv_cell(&cells[i]);
        }
        let _ = w.write_record(&cells);
    }
    w.into_inner().unwrap_or_default()
}

/// A Markdown table for an issue or a wiki page.
pub fn to_markdown(rows: &[BacklogRow]) -> String {
    let ours = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut out = String::new();
    out.push_str("| ");
    out.push_str(&COLUMNS.join(" | "));
    out.push_str(" |\n|");
    out.push_str(&"---|".repeat(COLUMNS.len()));
    out.push('\n');
    for r in rows {
        let cells = r.cells();
        out.push_str("| ");
        // Item and Evidence carry names from uploaded reports: nothing in them renders.
        out.push_str(
            &cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i == 1 || i == 6 {
                        crate::escape::markdown(c)
                    } else {
                        ours(c)
                    }
                })
                .collect::<Vec<_>>()
                .join(" | "),
        );
        out.push_str(" |\n");
    }
    if rows.is_empty() {
        out.push_str("\nNo flaky tests in the window.\n");
    }
    out
}
