//! `flakehound runs` and `flakehound tests`: what is stored, in a stable order.

use std::io::Write;
use std::path::Path;

use flakehound::error::{exit, Error, Result};
use flakehound::store::{RunFilter, Store};

use super::output::{Format, Rows};

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Output format: a table for people, JSON or CSV
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

fn time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

pub fn runs(db: &Path, args: ListArgs, out: &mut dyn Write) -> Result<u8> {
    let store = Store::open_read_only(db)?;
    let runs = store.runs(&RunFilter::default())?;
    let files = store.report_counts()?;
    #[derive(serde::Serialize)]
    struct Item<'a> {
        started_at: String,
        job: &'a str,
        branch: &'a str,
        commit: &'a str,
        run_id: &'a str,
        attempt: u32,
        duration_s: f64,
        reports: u64,
        run_url: Option<&'a str>,
    }
    let items: Vec<Item> = runs
        .iter()
        .map(|r| Item {
            started_at: time(r.started_at),
            job: &r.job,
            branch: &r.branch,
            commit: &r.commit,
            run_id: &r.run_id,
            attempt: r.attempt,
            duration_s: (r.wall_time_s() * 10.0).round() / 10.0,
            reports: files.get(&r.run_key).copied().unwrap_or(0),
            run_url: r.run_url.as_deref(),
        })
        .collect();
    let cells = items
        .iter()
        .map(|i| {
            vec![
                i.started_at.clone(),
                i.job.to_string(),
                i.branch.to_string(),
                if args.format == Format::Table {
                    i.commit.chars().take(12).collect()
                } else {
                    i.commit.to_string()
                },
                i.run_id.to_string(),
                i.attempt.to_string(),
                format!("{:.1}", i.duration_s),
                i.reports.to_string(),
                i.run_url.unwrap_or_default().to_string(),
            ]
        })
        .collect();
    Rows {
        header: vec![
            "started_at",
            "job",
            "branch",
            "commit",
            "run_id",
            "attempt",
            "duration_s",
            "reports",
            "run_url",
        ],
        cells,
        items: &items,
        squeeze: None,
    }
    .write(args.format, out)
    .map_err(|e| Error::io("stdout", "cannot write", e))?;
    Ok(exit::OK)
}

pub fn tests(db: &Path, args: ListArgs, out: &mut dyn Write) -> Result<u8> {
    let store = Store::open_read_only(db)?;
    let tests = store.test_counts()?;
    let cells = tests
        .iter()
        .map(|t| {
            vec![
                t.test_id.clone(),
                flakehound::model::readable_name(&t.classname, &t.name),
                t.runs.to_string(),
                t.passed.to_string(),
                t.flaky.to_string(),
                t.failed.to_string(),
                t.skipped.to_string(),
            ]
        })
        .collect();
    Rows {
        header: vec![
            "test_id", "test", "runs", "passed", "flaky", "failed", "skipped",
        ],
        cells,
        items: &tests,
        squeeze: Some((1, 70)),
    }
    .write(args.format, out)
    .map_err(|e| Error::io("stdout", "cannot write", e))?;
    Ok(exit::OK)
}
