//! `flakehound gate`: after the tests ran, fail the job only for failures that are not
//! known flakes (see `flakehound::gate` for the rules).

use std::io::Write;
use std::path::{Path, PathBuf};

use flakehound::error::{exit, Error, Result};
use flakehound::gate::{judge, GateOptions, Verdict};
use flakehound::ingest::{ingest, list_reports, Rejection, RunInput, TestNgCopies};
use flakehound::junit::{self, FileError};
use flakehound::model::{RunMeta, TestCase};
use flakehound::store::Store;

use super::ingest::{print_summary, run_meta, shown_paths, RunMetaArgs};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Exit status:
  0  every failed test is known flaky or quarantined in this job (or nothing failed)
  1  a failure is not forgiven (new, or broken: a broken test is never forgiven), a
     report could not be read, or no report files were found
  2  usage, database or I/O error

By default the run is also stored, like `ingest`, so that the evidence keeps flowing
(run-but-ignore quarantine); --no-ingest only judges. The Markdown summary is appended
to $GITHUB_STEP_SUMMARY when it is set, and written to --summary FILE when given.")]
pub struct GateArgs {
    #[command(flatten)]
    pub meta: RunMetaArgs,
    /// History scored to decide whether a test is known flaky (e.g. 30d, 2w)
    #[arg(long, default_value = "30d")]
    pub window: String,
    /// Only judge: do not store this run (default: store it, like `ingest`)
    #[arg(long)]
    pub no_ingest: bool,
    /// Write the Markdown summary to this file (GitHub Actions: $GITHUB_STEP_SUMMARY is used when set)
    #[arg(long)]
    pub summary: Option<PathBuf>,
    /// Forgive only tests proven flaky by a pass and a failure on one commit (`flaky_evidence: "same-sha"`), not tests flaky on the statistics of their lone failures
    #[arg(long)]
    pub require_same_sha: bool,
    /// Print the verdict as a JSON object instead of text
    #[arg(long)]
    pub json: bool,
    /// Report files or folders of this run (searched for *.xml, *.junit-xml, *.xml.gz)
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

/// A run's reports as the gate reads them.
pub struct RunReports {
    /// Report files named on their own.
    pub paths: Vec<PathBuf>,
    /// Report files found by searching folders.
    pub found: Vec<PathBuf>,
    /// The test cases judged: another tool's XML found in a folder, and TestNG's copies
    /// of results another report holds, left out as `ingest` leaves them out.
    pub cases: Vec<TestCase>,
    pub rejected: Vec<Rejection>,
    /// Files found in folders that are another tool's XML.
    pub not_junit: usize,
    /// The start `ingest` stores the run with when none is given: the timestamp of the
    /// first report it stores (`None`: it has none, or it is streamed, and the time of
    /// ingest is used).
    pub timestamp: Option<i64>,
}

impl RunReports {
    /// No report at all: nothing found, or only other tools' XML.
    pub fn is_empty(&self) -> bool {
        self.paths.len() + self.found.len() == self.not_junit
    }
}

/// The run's report files and their parsed cases; unreadable ones as rejections.
pub fn read_reports(args: &[PathBuf]) -> RunReports {
    let mut paths = Vec::new();
    let mut found = Vec::new();
    let mut rejected = Vec::new();
    for p in args {
        match list_reports(p) {
            Ok(listed) if listed.searched => {
                found.extend(listed.files.into_iter().map(|f| (f, true)))
            }
            Ok(listed) => paths.extend(listed.files.into_iter().map(|f| (f, false))),
            Err(e) => rejected.push(Rejection {
                path: p.display().to_string(),
                line: 0,
                column: 0,
                reason: format!("cannot read: {e}"),
            }),
        }
    }
    let mut copies = TestNgCopies::default();
    let mut cases = Vec::new();
    let mut not_junit = 0;
    let mut first_plain: Option<Option<i64>> = None;
    for (f, searched) in paths.iter().chain(found.iter()) {
        match junit::parse_file(f) {
            Ok(report) => match report.info.testng {
                Some(r) => copies.hold(f, r, report.cases),
                None => {
                    copies.plain(f);
                    // Mirrors ingest: plain reports are stored before TestNG's kept
                    // copies, and a streamed report (or a kept copy) gives no timestamp.
                    first_plain.get_or_insert_with(|| {
                        let streamed = std::fs::metadata(f)
                            .is_ok_and(|m| m.len() >= flakehound::ingest::STREAM_THRESHOLD);
                        flakehound::ingest::report_timestamp(&report.info).filter(|_| !streamed)
                    });
                    cases.extend(report.cases);
                }
            },
            Err(FileError::Parse(e)) if *searched && junit::is_other_tools_xml(&e.reason) => {
                tracing::info!(path = %f.display(), reason = %e.reason, "skipped: not a JUnit report");
                not_junit += 1;
            }
            Err(e) => {
                let (line, column, reason) = match e {
                    FileError::Io(e) => (0, 0, format!("cannot read: {e}")),
                    FileError::Parse(e) => (e.line, e.column, e.reason),
                };
                rejected.push(Rejection {
                    path: f.display().to_string(),
                    line,
                    column,
                    reason,
                });
            }
        }
    }
    cases.extend(copies.resolve().0.into_iter().flatten());
    RunReports {
        paths: paths.into_iter().map(|(f, _)| f).collect(),
        found: found.into_iter().map(|(f, _)| f).collect(),
        cases,
        rejected,
        not_junit,
        timestamp: first_plain.flatten(),
    }
}

/// Print the verdict, write the summaries, and give the exit code.
pub fn publish(
    verdict: &Verdict,
    json: bool,
    summary: Option<&Path>,
    out: &mut dyn Write,
) -> Result<u8> {
    let text = if json {
        let mut t = serde_json::to_string_pretty(verdict).unwrap_or_default();
        t.push('\n');
        t
    } else {
        verdict.to_text()
    };
    out.write_all(text.as_bytes())
        .map_err(|e| Error::io("stdout", "cannot write", e))?;
    let markdown = verdict.to_markdown();
    if let Some(step) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty()) {
        // GitHub collects every step's summary from this one file: append, never replace.
        let step = PathBuf::from(step);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&step)
            .and_then(|mut f| f.write_all(format!("{markdown}\n").as_bytes()))
            .map_err(|e| Error::io(&step, "cannot append the step summary", e))?;
    }
    if let Some(path) = summary {
        std::fs::write(path, &markdown)
            .map_err(|e| Error::io(path, "cannot write the summary", e))?;
    }
    Ok(if verdict.pass {
        exit::OK
    } else {
        exit::REJECTED
    })
}

/// The verdict for a run that left no report files.
pub fn no_reports(meta: &RunMeta, rejected: Vec<Rejection>, paths: &[PathBuf]) -> Verdict {
    eprintln!(
        "error: no report files (*.xml, *.junit-xml, *.xml.gz) in {}; the gate fails (did the tests run?)",
        shown_paths(paths)
    );
    Verdict {
        pass: false,
        job: meta.job.clone(),
        commit: meta.commit.clone(),
        branch: meta.branch.clone(),
        run_id: meta.run_id.clone(),
        attempt: meta.attempt,
        tests: 0,
        failed: 0,
        unforgiven: vec![],
        forgiven: vec![],
        flaky_in_run: vec![],
        rejected,
        since: None,
        as_of: None,
    }
}

pub fn run(db: &Path, args: GateArgs, out: &mut dyn Write) -> Result<u8> {
    let (meta, known) = run_meta(&args.meta)?;
    let window_s = flakehound::api::parse_duration(&args.window)
        .map_err(|e| Error::Usage(format!("--window: {e}")))?;
    let reports = read_reports(&args.paths);
    let empty = reports.is_empty();
    let RunReports {
        paths,
        found,
        cases,
        rejected,
        timestamp,
        ..
    } = reports;
    // Judged at the start the run is stored with, so that asking again once it is stored
    // measures the same history.
    let judged = RunMeta {
        started_at: timestamp.filter(|_| !known).unwrap_or(meta.started_at),
        ..meta.clone()
    };
    for r in &rejected {
        eprintln!("{r}");
    }
    if empty {
        let verdict = no_reports(&meta, rejected, &args.paths);
        return publish(&verdict, args.json, args.summary.as_deref(), out);
    }
    let opts = GateOptions {
        window_s,
        require_same_sha: args.require_same_sha,
    };
    let verdict = if args.no_ingest {
        // Without a database nothing is known flaky yet; judging must not create one. A
        // PostgreSQL URL is no file: it was judged without its history.
        let store = if flakehound::store::is_postgres_url(db) || db.exists() {
            Some(Store::open_read_only(db)?)
        } else {
            None
        };
        judge(store.as_ref(), &judged, &cases, rejected, &opts)?
    } else {
        let mut store = Store::open(db)?;
        // Judged on the history before this run, then the run is stored.
        let verdict = judge(Some(&store), &judged, &cases, rejected, &opts)?;
        let input = RunInput {
            meta: meta.clone(),
            started_at_known: known,
            paths,
            found,
        };
        let (summary, _) = ingest(&mut store, &[input], None)?;
        // The ingest summary goes to stderr: stdout is the verdict.
        let mut line = Vec::new();
        print_summary(&summary, false, &mut line)?;
        eprint!("stored: {}", String::from_utf8_lossy(&line));
        verdict
    };
    publish(&verdict, args.json, args.summary.as_deref(), out)
}

/// `upload --gate`: the same verdict, judged by the server against its history.
pub fn upload_gate(
    args: &super::upload::UploadArgs,
    meta: RunMeta,
    known: bool,
    out: &mut dyn Write,
) -> Result<u8> {
    use flakehound::server::client::{self, Options};
    use flakehound::server::gate_client::{self, GateOutcome};

    flakehound::api::parse_duration(&args.window)
        .map_err(|e| Error::Usage(format!("--window: {e}")))?;
    // Read the reports here too: to refuse an empty run before asking, and to know what
    // failed should the server not answer.
    let reports = read_reports(&args.paths);
    let empty = reports.is_empty();
    let RunReports {
        cases, rejected, ..
    } = reports;
    for r in &rejected {
        eprintln!("{r}");
    }
    if empty {
        let verdict = no_reports(&meta, rejected, &args.paths);
        return publish(&verdict, args.json, args.summary.as_deref(), out);
    }
    let packed = client::pack(&args.paths)
        .map_err(|e| Error::Other(format!("cannot pack the reports: {e}")))?;
    let mut query = vec![
        ("commit".to_string(), meta.commit.clone()),
        ("branch".to_string(), meta.branch.clone()),
        ("job".to_string(), meta.job.clone()),
        ("run_id".to_string(), meta.run_id.clone()),
        ("attempt".to_string(), meta.attempt.to_string()),
        ("window".to_string(), args.window.clone()),
        ("ingest".to_string(), (!args.no_ingest).to_string()),
    ];
    if args.require_same_sha {
        query.push(("require_same_sha".into(), "true".into()));
    }
    if known {
        query.push(("started_at".into(), meta.started_at.to_string()));
    }
    if let Some(d) = meta.duration_s {
        query.push(("duration_s".into(), d.to_string()));
    }
    let options = Options {
        server: args.server.clone(),
        token: args.token.clone().filter(|t| !t.is_empty()),
        retries: args.retries,
        timeout: std::time::Duration::from_secs(args.timeout.max(1)),
        backoff: std::time::Duration::from_millis(500),
    };
    let why = match gate_client::gate(&options, &query, &packed.body) {
        GateOutcome::Judged(mut verdict, summary) => {
            if let Some(s) = summary {
                let mut line = Vec::new();
                print_summary(&s, false, &mut line)?;
                eprint!("stored: {}", String::from_utf8_lossy(&line));
            }
            // Paths that could not be read here were never sent: they fail the gate too.
            let local: Vec<Rejection> = rejected
                .into_iter()
                .filter(|r| !verdict.rejected.contains(r))
                .collect();
            verdict.pass &= local.is_empty();
            verdict.rejected.extend(local);
            return publish(&verdict, args.json, args.summary.as_deref(), out);
        }
        GateOutcome::Refused(m) => format!("the server refused the gate request ({m})"),
        GateOutcome::Unavailable(m) => format!("cannot reach {} ({m})", args.server),
    };
    // Without the server's history nothing is known flaky: every failure stands.
    let verdict = judge(None, &meta, &cases, rejected, &GateOptions::default())?;
    if args.strict {
        eprintln!("error: {why}");
        return Ok(exit::FAILURE);
    }
    eprintln!(
        "warning: {why}; judging without history: {} failed test(s) cannot be forgiven",
        verdict.failed
    );
    publish(&verdict, args.json, args.summary.as_deref(), out)
}
