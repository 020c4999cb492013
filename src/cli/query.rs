//! `flaky`, `backlog` and `show`: the scorer's answers. `flaky` and `backlog` go through
//! `api::render`, so the CLI and the HTTP API print the same bytes.

use std::io::Write;
use std::path::Path;

use flakehound::api::{self, ApiError, Endpoint};
use flakehound::error::{exit, Error, Result};
use flakehound::score::{self, rfc3339, ScoreOptions};
use flakehound::store::{RunFilter, Store};

/// Owners and commit links in the outputs.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LinkArgs {
    /// CODEOWNERS file that names each test's owners (default: the first of .github/CODEOWNERS, CODEOWNERS, docs/CODEOWNERS, .gitlab/CODEOWNERS in the current folder)
    #[arg(long, value_name = "PATH")]
    pub codeowners: Option<std::path::PathBuf>,
    /// Commit page URL with {sha}, e.g. https://github.com/o/r/commit/{sha} (default: $FLAKEHOUND_COMMIT_URL_TEMPLATE, else GitHub Actions' $GITHUB_SERVER_URL/$GITHUB_REPOSITORY, else guessed from each run's URL on GitHub or GitLab)
    #[arg(long, value_name = "URL")]
    pub commit_url_template: Option<String>,
}

impl LinkArgs {
    pub fn links(&self) -> Result<flakehound::links::Links> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
        let owners = flakehound::codeowners::CodeOwners::find(self.codeowners.as_deref(), &cwd)
            .map_err(Error::Usage)?;
        let commits =
            flakehound::links::CommitLinks::from_flag_or_env(self.commit_url_template.as_deref())
                .map_err(|e| Error::Usage(format!("--commit-url-template: {e}")))?;
        Ok(flakehound::links::Links { owners, commits })
    }
}

/// The scorer's window, filters and thresholds.
#[derive(Debug, Clone, clap::Args)]
pub struct ScoreArgs {
    /// How far back from --as-of to look (e.g. 30d, 12h, 2w)
    #[arg(long, default_value = "30d")]
    pub window: String,
    /// Only runs on this branch
    #[arg(long)]
    pub branch: Option<String>,
    /// Only runs of this job
    #[arg(long)]
    pub job: Option<String>,
    /// End of the window, RFC 3339 (default: start of the newest run in the database)
    #[arg(long)]
    pub as_of: Option<String>,
    /// Commits with both a pass and a failure needed to call a test flaky
    #[arg(long, default_value_t = ScoreOptions::default().min_flaky_commits)]
    pub min_flaky_commits: u32,
    /// Isolated lone failures with one fingerprint that make a test flaky without same-commit evidence
    #[arg(long, default_value_t = ScoreOptions::default().min_isolated_failures)]
    pub min_isolated_failures: u32,
    /// False-fixed rate allowed across all tests: `fixed` tests are chosen while their mean posterior probability of still being flaky stays within this
    #[arg(long, default_value_t = ScoreOptions::default().fixed_alpha)]
    pub fixed_alpha: f64,
    /// Tests called flaky on lone failures alone (no retry on their commits): the share of them allowed to be wrong, expected across all tests judged at once
    #[arg(long, default_value_t = ScoreOptions::default().lone_alpha)]
    pub lone_alpha: f64,
    /// The posterior probability of being flaky that each such test must reach on its own
    #[arg(long, default_value_t = ScoreOptions::default().lone_posterior)]
    pub lone_posterior: f64,
    /// SLO: share of job attempts allowed to fail only because of flaky tests (1% or 0.01)
    #[arg(long, default_value_t = ScoreOptions::default().slo, value_parser = slo_arg)]
    pub slo: f64,
}

fn slo_arg(text: &str) -> std::result::Result<f64, String> {
    api::parse_share(text)
}

impl ScoreArgs {
    pub fn params(&self) -> Vec<(String, String)> {
        let mut p = vec![
            ("window".to_string(), self.window.clone()),
            (
                "min_flaky_commits".into(),
                self.min_flaky_commits.to_string(),
            ),
            (
                "min_isolated_failures".into(),
                self.min_isolated_failures.to_string(),
            ),
            ("fixed_alpha".into(), self.fixed_alpha.to_string()),
            ("lone_alpha".into(), self.lone_alpha.to_string()),
            ("lone_posterior".into(), self.lone_posterior.to_string()),
            ("slo".into(), self.slo.to_string()),
        ];
        for (k, v) in [
            ("branch", &self.branch),
            ("job", &self.job),
            ("as_of", &self.as_of),
        ] {
            if let Some(v) = v {
                p.push((k.to_string(), v.clone()));
            }
        }
        p
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FlakyFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, clap::Args)]
pub struct FlakyArgs {
    #[command(flatten)]
    pub score: ScoreArgs,
    #[command(flatten)]
    pub links: LinkArgs,
    /// Output format: a table for people, JSON or CSV
    #[arg(long, value_enum, default_value = "table")]
    pub format: FlakyFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BacklogFormat {
    Csv,
    Md,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct BacklogArgs {
    #[command(flatten)]
    pub score: ScoreArgs,
    #[command(flatten)]
    pub links: LinkArgs,
    /// Output format: CSV (RFC 4180), a Markdown table, or JSON
    #[arg(long, value_enum, default_value = "csv")]
    pub format: BacklogFormat,
    /// Retries/day saved at or above which an item is P1
    #[arg(long, default_value_t = 2.0)]
    pub p1: f64,
    /// Retries/day saved at or above which an item is P2 (below: P3)
    #[arg(long, default_value_t = 0.5)]
    pub p2: f64,
}

fn bad(e: ApiError) -> Error {
    match e {
        ApiError::BadRequest(m) => Error::Usage(m),
        ApiError::Internal(e) => e,
    }
}

pub fn emit(
    db: &Path,
    endpoint: Endpoint,
    params: &[(String, String)],
    links: &flakehound::links::Links,
    out: &mut dyn Write,
) -> Result<u8> {
    let rendered = api::render_with(db, endpoint, params, links).map_err(|e| match e {
        ApiError::BadRequest(m) => Error::Usage(m),
        ApiError::Internal(e) => e,
    })?;
    out.write_all(&rendered.body)
        .map_err(|e| Error::io("stdout", "cannot write", e))?;
    Ok(exit::OK)
}

pub fn flaky(db: &Path, args: FlakyArgs, out: &mut dyn Write) -> Result<u8> {
    let mut params = args.score.params();
    let fmt = match args.format {
        FlakyFormat::Table => "table",
        FlakyFormat::Json => "json",
        FlakyFormat::Csv => "csv",
    };
    params.push(("format".into(), fmt.into()));
    emit(db, Endpoint::Flaky, &params, &args.links.links()?, out)
}

pub fn backlog(db: &Path, args: BacklogArgs, out: &mut dyn Write) -> Result<u8> {
    let mut params = args.score.params();
    let fmt = match args.format {
        BacklogFormat::Csv => "csv",
        BacklogFormat::Md => "md",
        BacklogFormat::Json => "json",
    };
    params.push(("format".into(), fmt.into()));
    params.push(("p1".into(), args.p1.to_string()));
    params.push(("p2".into(), args.p2.to_string()));
    emit(db, Endpoint::Backlog, &params, &args.links.links()?, out)
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// A test: `Class.method`, its 16-hex-digit test id, or part of its name
    pub test: String,
    #[command(flatten)]
    pub score: ScoreArgs,
    #[command(flatten)]
    pub links: LinkArgs,
    /// Recent runs to list per job
    #[arg(long, default_value_t = 20)]
    pub last: usize,
    /// Output format: text for people, or JSON
    #[arg(long, value_enum, default_value = "text")]
    pub format: ShowFormat,
    /// Same as --format json (kept for scripts written before --format)
    #[arg(long, hide = true)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ShowFormat {
    Text,
    Json,
}

pub fn show(db: &Path, args: ShowArgs, out: &mut dyn Write) -> Result<u8> {
    let store = Store::open_read_only(db)?;
    let found = store.find_tests(&args.test)?;
    let test = match found.as_slice() {
        [] => {
            return Err(Error::Usage(format!(
                "no test matches {:?}; `flakehound tests` lists them",
                args.test
            )))
        }
        [one] => one.clone(),
        many => {
            let names: Vec<String> = many
                .iter()
                .take(10)
                .map(|t| format!("  {}  {}", t.identity().hex(), t.readable()))
                .collect();
            return Err(Error::Usage(format!(
                "{} tests match {:?}; give one exactly (name or test id):\n{}",
                many.len(),
                args.test,
                names.join("\n")
            )));
        }
    };
    let links = args.links.links()?;
    let owners = links.owners_of(&test.classname, test.file.as_deref());
    let params = args.score.params();
    let p = api::Params::new(&params);
    let opts = api::score_options(&p, 30 * 86_400).map_err(|e| Error::Usage(e.to_string()))?;
    api::check_filters(&store, opts.job.as_deref(), opts.branch.as_deref()).map_err(bad)?;
    let scored = score::score(&store, &opts)?;
    let hex = test.identity().hex();
    let scores: Vec<_> = scored.tests.iter().filter(|t| t.test_id == hex).collect();
    // A stable test may still have failed (a breakage that was fixed): say so.
    let window_failed_runs = scored
        .failed_tests()
        .iter()
        .filter(|failed| failed.contains(&test.test_id))
        .count();

    // Recent history of the test, per job, newest first.
    let runs = store.runs(&RunFilter {
        since: None,
        until: None,
        branch: opts.branch.clone(),
        job: opts.job.clone(),
    })?;
    let mut run_url_of: std::collections::HashMap<(&str, &str), &str> = Default::default();
    for run in &runs {
        if let Some(u) = run.run_url.as_deref() {
            run_url_of.entry((&run.job, &run.commit)).or_insert(u);
        }
    }
    let commit_url = |job: &str, commit: &str| {
        links
            .commits
            .commit_url(commit, run_url_of.get(&(job, commit)).copied())
    };
    let mut history: Vec<serde_json::Value> = Vec::new();
    for (run, r) in store.results_in(runs.iter().rev(), test.test_id, args.last * 4)? {
        let outcome = flakehound::model::RunOutcome::from_code(r.outcome)
            .map(|o| o.as_str())
            .unwrap_or("?");
        let messages: Vec<String> = store
            .failure_messages(run.run_key, test.test_id)?
            .into_iter()
            .map(|(a, ty, m)| {
                format!(
                    "attempt {a}: {}{}",
                    ty.map(|t| format!("{t}: ")).unwrap_or_default(),
                    m.unwrap_or_default()
                )
            })
            .collect();
        history.push(serde_json::json!({
            "started_at": rfc3339(run.started_at),
            "job": run.job,
            "branch": run.branch,
            "commit": run.commit,
            "run_id": run.run_id,
            "attempt": run.attempt,
            "run_url": run.run_url,
            "commit_url": commit_url(&run.job, &run.commit),
            "outcome": outcome,
            "attempts": r.attempts,
            "failures": r.failures,
            "failure_messages": messages,
        }));
    }
    let write = |out: &mut dyn Write, text: String| {
        out.write_all(text.as_bytes())
            .map_err(|e| Error::io("stdout", "cannot write", e))
    };
    if args.json || args.format == ShowFormat::Json {
        let value = serde_json::json!({
            "test_id": hex,
            "classname": test.classname,
            "name": test.name,
            "file": test.file,
            "owners": owners,
            "scores": scores,
            "window_failed_runs": window_failed_runs,
            "history": history,
        });
        let text = serde_json::to_string_pretty(&value).unwrap_or_default();
        write(out, format!("{text}\n"))?;
        return Ok(exit::OK);
    }
    let mut text = format!(
        "{}\n  test id {}{}\n  window {} .. {}\n",
        test.readable(),
        hex,
        test.file
            .as_deref()
            .map(|f| format!(", file {f}"))
            .unwrap_or_default(),
        scored.since,
        scored.as_of
    );
    if !owners.is_empty() {
        text.push_str(&format!("  owners {}\n", owners.join(" ")));
    }
    if scores.is_empty() {
        text.push_str(&match window_failed_runs {
            0 => "\n  stable in every job: no failures in the window\n".to_string(),
            n => format!(
                "\n  stable in every job: {n} failed run(s) in the window, none on a commit where it also passed in that job (breakages, not flakes)\n"
            ),
        });
    }
    for s in &scores {
        text.push_str(&format!(
            "\n[{}] {}: {}\n  flake rate {:.2}% per attempt [95%: {:.2}–{:.2}%], {:.2}% per run after in-run reruns\n  {} runs, {} attempts, {} failures; {} flaky commit(s), {} broken commit(s), {} lone failure(s)\n  saves {:.2} retries/day, {:.1} CI min/day if fixed (observed retries caused only by it: {})\n",
            s.job,
            s.status.as_str(),
            s.reason,
            s.flake_rate * 100.0,
            s.flake_rate_low * 100.0,
            s.flake_rate_high * 100.0,
            s.run_flake_rate * 100.0,
            s.runs,
            s.attempts,
            s.failures,
            s.flaky_commits,
            s.broken_commits,
            s.single_failures,
            s.retries_per_day,
            s.ci_minutes_per_day,
            s.observed_retries,
        ));
        for e in s.evidence.iter().take(10) {
            text.push_str(&format!(
                "    commit {} ({}) {}: {} pass(es), {} failure(s) in {} run(s)\n",
                &e.commit[..e.commit.len().min(12)],
                e.branch,
                e.at,
                e.passes,
                e.failures,
                e.runs
            ));
            if let Some(url) = commit_url(&s.job, &e.commit) {
                text.push_str(&format!("      {url}\n"));
            }
        }
        for f in &s.fingerprints {
            text.push_str(&format!("    {}x  {}\n", f.count, f.message));
        }
    }
    text.push_str("\nrecent runs (newest first):\n");
    for h in history.iter().take(args.last) {
        text.push_str(&format!(
            "  {}  {:<14} {:<16} {}  run {} attempt {}  {} ({}/{} failed)\n",
            h["started_at"].as_str().unwrap_or(""),
            h["job"].as_str().unwrap_or(""),
            h["branch"].as_str().unwrap_or(""),
            &h["commit"].as_str().unwrap_or("")[..h["commit"].as_str().unwrap_or("").len().min(10)],
            h["run_id"].as_str().unwrap_or(""),
            h["attempt"],
            h["outcome"].as_str().unwrap_or(""),
            h["failures"],
            h["attempts"],
        ));
        if let Some(url) = h["run_url"].as_str() {
            text.push_str(&format!("      {url}\n"));
        }
        for m in h["failure_messages"].as_array().into_iter().flatten() {
            text.push_str(&format!(
                "      {}\n",
                one_line(m.as_str().unwrap_or(""), 160)
            ));
        }
    }
    write(out, text)?;
    Ok(exit::OK)
}

/// The first line of `text`, at most `max` characters, marked when cut; control
/// characters (a failure message comes from a report) are shown, not sent to the terminal.
fn one_line(text: &str, max: usize) -> String {
    let first = text.lines().next().unwrap_or("");
    let cut: String = first.chars().take(max).collect();
    let shown = flakehound::escape::terminal(&cut).into_owned();
    if cut.len() < text.trim_end().len() {
        format!("{shown} …")
    } else {
        shown
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Md,
    Html,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The reported window, back from --as-of
    #[arg(long, default_value = "7d")]
    pub window: String,
    /// The previous window it is compared with, ending where this one starts
    #[arg(long, default_value = "7d")]
    pub compare_window: String,
    /// Output format: Markdown, a self-contained HTML page, or JSON
    #[arg(long, value_enum, default_value = "md")]
    pub format: ReportFormat,
    /// Write the report here instead of stdout
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// End of the window, RFC 3339 (default: start of the newest run)
    #[arg(long)]
    pub as_of: Option<String>,
    /// Only runs on this branch
    #[arg(long)]
    pub branch: Option<String>,
    /// Only runs of this job
    #[arg(long)]
    pub job: Option<String>,
    /// Tests called flaky on lone failures alone (no retry on their commits): the share of them allowed to be wrong, expected across all tests judged at once
    #[arg(long, default_value_t = ScoreOptions::default().lone_alpha)]
    pub lone_alpha: f64,
    /// The posterior probability of being flaky that each such test must reach on its own
    #[arg(long, default_value_t = ScoreOptions::default().lone_posterior)]
    pub lone_posterior: f64,
    /// SLO: share of job attempts allowed to fail only because of flaky tests (1% or 0.01)
    #[arg(long, default_value_t = 0.01, value_parser = slo_arg)]
    pub slo: f64,
    /// Rows in the top flaky tests table
    #[arg(long, default_value_t = 25)]
    pub top: usize,
    #[command(flatten)]
    pub links: LinkArgs,
}

pub fn report(db: &Path, args: ReportArgs, out: &mut dyn Write) -> Result<u8> {
    let fmt = match args.format {
        ReportFormat::Md => "md",
        ReportFormat::Html => "html",
        ReportFormat::Json => "json",
    };
    let mut params = vec![
        ("format".to_string(), fmt.to_string()),
        ("window".into(), args.window.clone()),
        ("compare_window".into(), args.compare_window.clone()),
        ("slo".into(), args.slo.to_string()),
        ("top".into(), args.top.to_string()),
        ("lone_alpha".into(), args.lone_alpha.to_string()),
        ("lone_posterior".into(), args.lone_posterior.to_string()),
    ];
    for (k, v) in [
        ("as_of", &args.as_of),
        ("branch", &args.branch),
        ("job", &args.job),
    ] {
        if let Some(v) = v {
            params.push((k.to_string(), v.clone()));
        }
    }
    let links = args.links.links()?;
    match &args.out {
        None => emit(db, Endpoint::Report, &params, &links, out),
        Some(path) => {
            let rendered =
                api::render_with(db, Endpoint::Report, &params, &links).map_err(|e| match e {
                    ApiError::BadRequest(m) => Error::Usage(m),
                    ApiError::Internal(e) => e,
                })?;
            // Write beside the target and rename, so a reader never sees half a report.
            let tmp = path.with_extension("tmp~");
            std::fs::write(&tmp, &rendered.body)
                .and_then(|()| std::fs::rename(&tmp, path))
                .map_err(|e| Error::io(path, "cannot write the report", e))?;
            Ok(exit::OK)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QuarantineFormatArg {
    List,
    Json,
    Pytest,
    Nextest,
    Maven,
    Gradle,
    Go,
    Jest,
}

#[derive(Debug, clap::Args)]
pub struct QuarantineArgs {
    /// Output format: a list, JSON, or the arguments a test runner takes as they are
    #[arg(long, value_enum, default_value = "list")]
    pub format: QuarantineFormatArg,
    /// Quarantine only tests whose fix would save at least this many retries/day
    #[arg(long, default_value_t = flakehound::quarantine::QuarantineOptions::default().min_retries_per_day)]
    pub min_retries_per_day: f64,
    /// At most this many quarantined tests
    #[arg(long, default_value_t = flakehound::quarantine::QuarantineOptions::default().max)]
    pub max: usize,
    /// A quarantine expires this long after it was added or renewed
    #[arg(long, default_value = "14d")]
    pub expire_after: String,
    /// Store the changes (add, renew, release) in the quarantine table
    #[arg(long, conflicts_with = "history")]
    pub apply: bool,
    /// Show what changed and when, instead of the list
    #[arg(long)]
    pub history: bool,
    #[command(flatten)]
    pub score: ScoreArgs,
    #[command(flatten)]
    pub links: LinkArgs,
}

pub fn quarantine(db: &Path, args: QuarantineArgs, out: &mut dyn Write) -> Result<u8> {
    let fmt = format!("{:?}", args.format).to_lowercase();
    let mut params = args.score.params();
    params.extend([
        ("format".to_string(), fmt.clone()),
        (
            "min_retries_per_day".into(),
            args.min_retries_per_day.to_string(),
        ),
        ("max".into(), args.max.to_string()),
        ("expire_after".into(), args.expire_after.clone()),
    ]);
    if args.history {
        params.push(("history".into(), "true".into()));
    }
    // An unknown job or branch only warns: the empty list it gives makes the runner run
    // every test, which is right for a job with no history yet.
    if args.score.job.is_some() || args.score.branch.is_some() {
        if let Ok(store) = Store::open_read_only(db) {
            let (job, branch) = (args.score.job.as_deref(), args.score.branch.as_deref());
            if let Err(ApiError::BadRequest(m)) = api::check_filters(&store, job, branch) {
                eprintln!("warning: {m}; nothing of it is quarantined");
            }
        }
    }
    let links = args.links.links()?;
    if !args.apply {
        return emit(db, Endpoint::Quarantine, &params, &links, out);
    }
    let p = api::Params::new(&params);
    let opts = api::quarantine_options(&p).map_err(bad)?;
    let score_opts = api::score_options(&p, 30 * 86_400).map_err(bad)?;
    let mut store = Store::open(db)?;
    let scored = score::score(&store, &score_opts)?;
    let events = flakehound::quarantine::apply(&mut store, &scored, &opts)?;
    // What changed goes to stderr, so stdout stays the list a runner consumes.
    eprint!("{}", flakehound::quarantine::render_history(&events));
    let format: flakehound::quarantine::QuarantineFormat = fmt.parse().map_err(Error::Usage)?;
    let entries = flakehound::quarantine::active(&store)?;
    out.write_all(api::render_quarantine(&entries, format, &links).as_bytes())
        .map_err(|e| Error::io("stdout", "cannot write", e))?;
    Ok(exit::OK)
}
