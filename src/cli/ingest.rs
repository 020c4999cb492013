//! `flakehound ingest`: report files (or a manifest of archived runs) → the store.

use std::io::Write;
use std::path::{Path, PathBuf};

use flakehound::ci_env::{parse_timestamp, CiEnv};
use flakehound::error::{exit, Error, Result};
use flakehound::ingest::{ingest, list_reports, Rejection, RunInput, Summary};
use flakehound::model::RunMeta;
use flakehound::store::Store;
use rayon::prelude::*;

/// The run's metadata flags, shared by `ingest` and `upload`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunMetaArgs {
    /// Commit SHA the run tested (default: from the CI environment)
    #[arg(long)]
    pub commit: Option<String>,
    /// Branch (default: from the CI environment)
    #[arg(long)]
    pub branch: Option<String>,
    /// Job name: runs are only compared within one job (default: from the CI environment)
    #[arg(long)]
    pub job: Option<String>,
    /// The CI provider's run id (default: from the CI environment)
    #[arg(long)]
    pub run_id: Option<String>,
    /// Attempt of the run: 1, then 2, 3, … for job re-runs (default: from the CI environment, else 1)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub attempt: Option<u32>,
    /// When the run started, RFC 3339 (default: CI environment, else the reports' timestamp, else now)
    #[arg(long)]
    pub started_at: Option<String>,
    /// The job's wall time in seconds (default: the sum of the reports' times: a report's root time, else its suites', else its test cases')
    #[arg(long)]
    pub duration_s: Option<f64>,
    /// Link to the run's page on the CI provider, http(s) (default: from the CI environment)
    #[arg(long)]
    pub run_url: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub meta: RunMetaArgs,
    /// Backfill from a CSV manifest: path,commit,branch,job,run_id,attempt,started_at[,duration_s][,run_url]
    #[arg(long, conflicts_with_all = ["commit", "branch", "job", "run_id", "attempt", "started_at", "duration_s", "run_url", "paths"])]
    pub manifest: Option<PathBuf>,
    /// Print the summary as a JSON object
    #[arg(long)]
    pub json: bool,
    /// Report files or folders (searched for *.xml, *.junit-xml, *.xml.gz)
    pub paths: Vec<PathBuf>,
}

/// Build the run metadata from flags, then the CI environment, then defaults.
pub fn run_meta(args: &RunMetaArgs) -> Result<(RunMeta, bool)> {
    let env = CiEnv::detect();
    if let Some(provider) = env.provider {
        tracing::info!(provider, "read run metadata from the CI environment");
    }
    let missing = |what: &str, flag: &str| {
        Error::Usage(format!(
            "no {what}: pass {flag} (no supported CI provider variables were found; see docs/ci-providers.md)"
        ))
    };
    let commit = args
        .commit
        .clone()
        .or(env.commit)
        .map(|c| flakehound::store::normalize_commit(&c))
        .filter(|c| !c.is_empty())
        .ok_or_else(|| missing("commit", "--commit"))?;
    // An empty job would pool every unnamed pipeline's runs into one environment.
    let job = args
        .job
        .clone()
        .or(env.job)
        .map(|j| j.trim().to_string())
        .filter(|j| !j.is_empty())
        .ok_or_else(|| missing("job", "--job"))?;
    let branch = args.branch.clone().or(env.branch).unwrap_or_default();
    let (started_at, known) = match (&args.started_at, env.started_at) {
        (Some(text), _) => (
            flakehound::timefmt::parse_started_at(text, chrono::Utc::now().timestamp())
                .map_err(|e| Error::Usage(format!("--started-at {text:?}: {e}")))?,
            true,
        ),
        (None, Some(t)) => (t, true),
        (None, None) => (chrono::Utc::now().timestamp(), false),
    };
    if let Some(why) = flakehound::ingest::future_start(started_at) {
        return Err(Error::Usage(format!("the run's start time: {why}")));
    }
    let run_id = args
        .run_id
        .clone()
        .or(env.run_id)
        .unwrap_or_else(flakehound::ingest::default_run_id);
    let run_url = match &args.run_url {
        Some(u) => Some(
            flakehound::links::check_url(u).map_err(|e| Error::Usage(format!("--run-url: {e}")))?,
        ),
        None => env.run_url,
    };
    Ok((
        RunMeta {
            commit,
            branch,
            job,
            run_id,
            attempt: args.attempt.or(env.attempt).unwrap_or(1),
            started_at,
            duration_s: args.duration_s,
            run_url,
        },
        known,
    ))
}

#[derive(serde::Deserialize)]
struct ManifestRow {
    path: String,
    commit: String,
    branch: String,
    job: String,
    run_id: String,
    attempt: u32,
    started_at: String,
    #[serde(default)]
    duration_s: Option<f64>,
    #[serde(default)]
    run_url: Option<String>,
}

/// Read a backfill manifest; paths are relative to its folder.
pub fn read_manifest(path: &Path) -> Result<(Vec<RunInput>, Vec<Rejection>)> {
    let base = path.parent().unwrap_or(Path::new("."));
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
    let headers = reader
        .headers()
        .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?
        .clone();
    for needed in [
        "path",
        "commit",
        "branch",
        "job",
        "run_id",
        "attempt",
        "started_at",
    ] {
        if !headers.iter().any(|h| h == needed) {
            return Err(Error::Usage(format!(
                "{}:1:1: manifest header lacks column `{needed}` (expected path,commit,branch,job,run_id,attempt,started_at[,duration_s][,run_url])",
                path.display()
            )));
        }
    }
    let listed_at = std::time::Instant::now();
    let mut rows = Vec::new();
    for record in reader.deserialize::<ManifestRow>() {
        let row = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            Error::Usage(format!(
                "{}:{line}:1: bad manifest row: {e}",
                path.display()
            ))
        })?;
        let started_at = parse_timestamp(&row.started_at).map_err(|e| {
            Error::Usage(format!(
                "{}: bad started_at {:?} for {}: {e}",
                path.display(),
                row.started_at,
                row.path
            ))
        })?;
        if let Some(why) = flakehound::ingest::future_start(started_at) {
            return Err(Error::Usage(format!(
                "{}: started_at of {}: {why}",
                path.display(),
                row.path
            )));
        }
        let run_url = match row.run_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(u) => Some(flakehound::links::check_url(u).map_err(|e| {
                Error::Usage(format!(
                    "{}: bad run_url for {}: {e}",
                    path.display(),
                    row.path
                ))
            })?),
        };
        let bad = |what: &str| Error::Usage(format!("{}: {what} for {}", path.display(), row.path));
        if row.attempt == 0 {
            return Err(bad("attempt 0 (attempts count from 1)"));
        }
        if row.commit.trim().is_empty() || row.job.trim().is_empty() {
            return Err(bad("an empty commit or job"));
        }
        let report_path = base.join(&row.path);
        rows.push((
            report_path,
            RunMeta {
                commit: flakehound::store::normalize_commit(&row.commit),
                branch: row.branch,
                job: row.job.trim().to_string(),
                run_id: row.run_id,
                attempt: row.attempt,
                started_at,
                duration_s: row.duration_s,
                run_url,
            },
        ));
    }
    // Listing thousands of job folders is thousands of directory reads: spread them over
    // the cores (the order of the rows is kept).
    let listed: Vec<_> = rows
        .into_par_iter()
        .map(|(report_path, meta)| (list_reports(&report_path), report_path, meta))
        .collect();
    let mut runs = Vec::with_capacity(listed.len());
    let mut rejected = Vec::new();
    for (found, report_path, meta) in listed {
        match found {
            Ok(listed) => {
                let (paths, found) = if listed.searched {
                    (Vec::new(), listed.files)
                } else {
                    (listed.files, Vec::new())
                };
                runs.push(RunInput {
                    meta,
                    started_at_known: true,
                    paths,
                    found,
                })
            }
            Err(e) => rejected.push(Rejection {
                path: report_path.display().to_string(),
                line: 0,
                column: 0,
                reason: format!("cannot read: {e}"),
            }),
        }
    }
    tracing::debug!(
        runs = runs.len(),
        ms = listed_at.elapsed().as_millis() as u64,
        "read the manifest and listed its report folders"
    );
    Ok((runs, rejected))
}

/// The most report files an ingest into a new database builds aside (see
/// `Store::start_new`): about two seconds of work here, all lost if it is killed.
const MAX_FILES_BUILT_ASIDE: usize = 100_000;

pub fn run(db: &Path, args: IngestArgs, out: &mut dyn Write) -> Result<u8> {
    // A database that does not exist yet is created (and migrated) beside its path while
    // the inputs are listed.
    let (new, inputs) = std::thread::scope(|scope| {
        let new = scope.spawn(|| Store::start_new(db));
        let inputs = read_inputs(&args, out);
        (
            new.join().expect("creating a database does not panic"),
            inputs,
        )
    });
    let (runs, mut rejected) = match inputs? {
        Inputs::Runs(runs, rejected) => (runs, rejected),
        Inputs::Nothing(code) => return Ok(code),
    };
    // A backfill long enough that losing it to a kill would hurt is stored in place, where
    // the next ingest resumes from what was committed.
    let files: usize = runs.iter().map(RunInput::files).sum();
    let new = new.filter(|_| files <= MAX_FILES_BUILT_ASIDE);
    let (mut summary, file_rejections) = match new {
        Some((mut store, new)) => {
            let stored = store_runs(&mut store, &runs)?;
            if store.put_in_place(new)? {
                stored
            } else {
                tracing::info!(
                    "database {} was not put in place (another process created it during this ingest, or the file system cannot rename without replacing); storing into the database at that path",
                    db.display()
                );
                store_runs(&mut Store::open(db)?, &runs)?
            }
        }
        None => store_runs(&mut Store::open(db)?, &runs)?,
    };
    summary.rejected += rejected.len() as u64;
    rejected.extend(file_rejections);
    for r in &rejected {
        eprintln!("{r}");
    }
    print_summary(&summary, args.json, out)?;
    Ok(if rejected.is_empty() {
        exit::OK
    } else {
        exit::REJECTED
    })
}

enum Inputs {
    Runs(Vec<RunInput>, Vec<Rejection>),
    /// Nothing to store; the exit code.
    Nothing(u8),
}

/// The runs to store: the manifest's, or one run of the reports named.
fn read_inputs(args: &IngestArgs, out: &mut dyn Write) -> Result<Inputs> {
    if let Some(manifest) = &args.manifest {
        let (runs, rejected) = read_manifest(manifest)?;
        return Ok(Inputs::Runs(runs, rejected));
    }
    if args.paths.is_empty() {
        return Err(Error::Usage(
            "nothing to ingest: give report files or folders, or --manifest".into(),
        ));
    }
    let (meta, known) = run_meta(&args.meta)?;
    let mut paths = Vec::new();
    let mut found = Vec::new();
    let mut rejected = Vec::new();
    for p in &args.paths {
        match list_reports(p) {
            Ok(listed) if listed.searched => found.extend(listed.files),
            Ok(listed) => paths.extend(listed.files),
            Err(e) => rejected.push(Rejection {
                path: p.display().to_string(),
                line: 0,
                column: 0,
                reason: format!("cannot read: {e}"),
            }),
        }
    }
    if paths.is_empty() && found.is_empty() {
        // A crashed job leaves no reports: storing a clean run would count it as a
        // pass forever. Store nothing and fail the step.
        for r in &rejected {
            eprintln!("{r}");
        }
        eprintln!(
            "error: no report files (*.xml, *.junit-xml, *.xml.gz) in {}; nothing stored (did the tests run?)",
            shown_paths(&args.paths)
        );
        print_summary(
            &Summary {
                rejected: rejected.len() as u64,
                ..Summary::default()
            },
            args.json,
            out,
        )?;
        return Ok(Inputs::Nothing(exit::REJECTED));
    }
    Ok(Inputs::Runs(
        vec![RunInput {
            meta,
            started_at_known: known,
            paths,
            found,
        }],
        rejected,
    ))
}

/// Store the runs and roll up the days they close.
fn store_runs(store: &mut Store, runs: &[RunInput]) -> Result<(Summary, Vec<Rejection>)> {
    let total: u64 = runs.iter().map(|r| r.files() as u64).sum();
    // Days closing in this ingest are built as they are stored. A run whose start is read
    // from its report may start later than its row says; the days that then close too are
    // read back at the rollup, never built wrong.
    store.bulk_ingest(runs.iter().map(|r| r.meta.started_at).max())?;
    let bar = super::progress_bar(total, "ingesting");
    let tick = |done: u64| {
        if let Some(b) = &bar {
            b.set_position(done);
        }
    };
    let stored = ingest(store, runs, Some(&tick))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    roll_up(store);
    Ok(stored)
}

/// Roll up the days that closed (see `flakehound compact`). The reports are stored
/// whatever happens here: a day not rolled up is read raw, so a failure is only a warning.
pub fn roll_up(store: &mut Store) {
    let started = std::time::Instant::now();
    match store.rollup_closed() {
        Ok(0) => {}
        Ok(days) => tracing::info!(
            days,
            ms = started.elapsed().as_millis() as u64,
            "rolled up closed days into the daily aggregate"
        ),
        Err(e) => {
            tracing::warn!("cannot roll up the daily aggregate (queries read those days raw): {e}")
        }
    }
}

/// The paths as given, for messages.
pub fn shown_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn print_summary(summary: &Summary, json: bool, out: &mut dyn Write) -> Result<()> {
    let written = if json {
        serde_json::to_writer(&mut *out, summary)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        writeln!(out, "{}", summary.line())
    };
    written.map_err(|e| Error::io("stdout", "cannot write", e))
}
